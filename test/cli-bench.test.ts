// `interprocess bench`, driven as a user would: spawned, its tables, JSON and
// SVG chart read back. Only --quick runs (a few seconds each), one at a time:
// the suites want the two cores to themselves.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { collect, killOnExit, root, run, shmEntries, tempDir, until, withTimeout, type RunResult } from './helpers.js';

const cli = join(root, 'dist', 'cli', 'main.js');
const benchObjects = (): string[] => shmEntries('ipx-bench-');
const hasXmllint = spawnSync('sh', ['-c', 'command -v xmllint']).status === 0;

// ---- a strict XML reader, enough to say an SVG file is well-formed ------------

interface XmlElement {
  name: string;
  attrs: Record<string, string>;
  text: string;
  children: XmlElement[];
}

const entity = /&(amp|lt|gt|quot|apos|#\d+|#x[\da-fA-F]+);/g;
const unescape = (s: string): string =>
  s.replace(entity, (_, e: string) =>
    e === 'amp' ? '&' : e === 'lt' ? '<' : e === 'gt' ? '>' : e === 'quot' ? '"' : e === 'apos' ? "'" : String.fromCodePoint(e[1] === 'x' ? parseInt(e.slice(2), 16) : Number(e.slice(1))),
  );

/** Parses `xml` or throws saying where it is not well-formed (tags, attributes, entities, one root). */
function parseXml(xml: string): XmlElement {
  let i = 0;
  const fail = (why: string): never => {
    throw new Error(`not well-formed at ${i} (${why}): ${JSON.stringify(xml.slice(Math.max(0, i - 40), i + 40))}`);
  };
  const checkText = (s: string): void => {
    if (/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/.test(s)) fail('control character');
    if (s.replace(entity, '').includes('&')) fail('bare &');
    if (s.includes('<')) fail('< in text or attribute');
  };
  if (xml.startsWith('<?xml')) {
    const end = xml.indexOf('?>');
    if (end < 0) fail('unterminated declaration');
    i = end + 2;
  }
  const name = /^[A-Za-z_:][\w:.-]*/;
  const stack: XmlElement[] = [];
  let rootElement: XmlElement | undefined;
  while (i < xml.length) {
    const lt = xml.indexOf('<', i);
    const textEnd = lt < 0 ? xml.length : lt;
    const text = xml.slice(i, textEnd);
    checkText(text.replace(/>/g, ''));
    if (stack.length) stack[stack.length - 1]!.text += unescape(text);
    else if (text.trim()) fail('text outside the root element');
    if (lt < 0) break;
    i = lt;
    if (xml.startsWith('<!--', i)) {
      const end = xml.indexOf('-->', i);
      if (end < 0) fail('unterminated comment');
      i = end + 3;
      continue;
    }
    if (xml.startsWith('</', i)) {
      const m = name.exec(xml.slice(i + 2));
      if (!m) fail('bad closing tag');
      const open = stack.pop();
      if (!open || open.name !== m![0]) fail(`</${m![0]}> closes <${open?.name ?? 'nothing'}>`);
      i += 2 + m![0].length;
      while (/\s/.test(xml[i] ?? '')) i++;
      if (xml[i] !== '>') fail('junk in closing tag');
      i++;
      continue;
    }
    const m = name.exec(xml.slice(i + 1));
    if (!m) fail('bad tag name');
    const el: XmlElement = { name: m![0], attrs: {}, text: '', children: [] };
    i += 1 + m![0].length;
    for (;;) {
      const ws = /^\s*/.exec(xml.slice(i))![0].length;
      i += ws;
      if (xml.startsWith('/>', i) || xml[i] === '>') break;
      if (!ws) fail('no space before attribute');
      const a = /^([A-Za-z_:][\w:.-]*)\s*=\s*("([^"]*)"|'([^']*)')/.exec(xml.slice(i));
      if (!a) fail('bad attribute');
      if (a![1]! in el.attrs) fail(`duplicate attribute ${a![1]}`);
      const value = a![3] ?? a![4] ?? '';
      checkText(value);
      el.attrs[a![1]!] = unescape(value);
      i += a![0].length;
    }
    if (stack.length) stack[stack.length - 1]!.children.push(el);
    else if (rootElement) fail('second root element');
    else rootElement = el;
    if (xml.startsWith('/>', i)) i += 2;
    else {
      i++;
      stack.push(el);
    }
  }
  if (stack.length) fail(`<${stack[stack.length - 1]!.name}> never closed`);
  if (!rootElement) fail('no root element');
  return rootElement!;
}

function all(el: XmlElement, pick: (e: XmlElement) => boolean): XmlElement[] {
  return [...(pick(el) ? [el] : []), ...el.children.flatMap((c) => all(c, pick))];
}

/** Reads an SVG chart and checks what any chart must be: well-formed, self-contained. */
function readChart(file: string): { svg: XmlElement; source: string; bars: XmlElement[]; texts: string[] } {
  const source = readFileSync(file, 'utf8');
  const svg = parseXml(source);
  assert.equal(svg.name, 'svg');
  assert.equal(svg.attrs.xmlns, 'http://www.w3.org/2000/svg');
  if (hasXmllint) {
    const r = spawnSync('xmllint', ['--noout', file], { encoding: 'utf8' });
    assert.equal(r.status, 0, `xmllint: ${r.stderr}`);
  }
  // Self-contained: nothing to fetch or run.
  assert.deepEqual(all(svg, (e) => ['script', 'image', 'a', 'foreignObject', 'style', 'use'].includes(e.name)).map((e) => e.name), []);
  assert.doesNotMatch(source, /href|url\(|@import|@font-face|on\w+=/i);
  const bars = all(svg, (e) => e.name === 'rect' && e.attrs.class === 'bar');
  const texts = all(svg, (e) => e.name === 'text').map((e) => e.text);
  return { svg, source, bars, texts };
}

/** The cells of a cli-table3 row whose first cell is `label` (stdout is not a terminal: no colour). */
function tableRow(stdout: string, label: string): string[] {
  // A label may carry ' *': other processes were busy then (this machine is shared).
  const line = stdout.split('\n').find((l) => l.startsWith('│') && l.split('│')[1]?.trim().replace(/ \*$/, '') === label);
  assert.ok(line, `no table row '${label}' in:\n${stdout}`);
  return line!.split('│').slice(1, -1).map((c) => c.trim());
}

// ---- runs -----------------------------------------------------------------------

test('bench channel --quick: table with ratio columns, JSON and an SVG chart in --out, progress lines, nothing left in /dev/shm', async (t) => {
  const { dir, cleanup } = tempDir('bench');
  t.after(cleanup);
  const before = benchObjects();
  const packageResults = join(root, 'bench', 'results', 'channel.json');
  const packageResultsMtime = existsSync(packageResults) ? statSync(packageResults).mtimeMs : undefined;
  // Characters XML must escape, in the output directory's name: the command in the chart carries them.
  const out = join(dir, `out <&> "it's"`);

  const r = await run(process.execPath, [cli, 'bench', 'channel', '--quick', '--only', 'socket,channel-sync', '--out', out], { cwd: dir });
  assert.equal(r.code, 0, r.stderr);

  // The table: one row per case, three "x socket" ratio columns; no colour off a terminal.
  assert.doesNotMatch(r.stdout, /\x1b\[/);
  assert.match(r.stdout, /QUICK RUN/);
  const head = tableRow(r.stdout, 'case');
  assert.deepEqual(head, ['case', 'RTT median us', 'RTT p99 us', 'x socket', '64 B msg/s', 'x socket', '1 MiB GB/s', 'x socket']);
  const socket = tableRow(r.stdout, 'unix socket, 4-byte length framing');
  const channel = tableRow(r.stdout, 'Channel sync');
  assert.deepEqual([socket[3], socket[5], socket[7]], ['1.0x', '1.0x', '1.0x']);
  for (const i of [3, 5, 7]) assert.match(channel[i]!, /^\d+(\.\d+)?x$/, `ratio column ${i}: ${channel.join(' | ')}`);
  for (const i of [1, 2, 4, 6]) assert.match(channel[i]!, /^[\d,]+(\.\d+)?$/, `figure column ${i}`);
  assert.match(r.stdout, /Targets/);
  assert.match(r.stdout, /^Core-to-core hand-off \(C, one cache line there and back between CPUs 0 and 1, before each round\): \d+ ns\./m);
  assert.ok(r.stdout.includes(`chart: ${out}/channel.svg`), r.stdout);

  // Progress, one line per finished case, on stderr.
  assert.match(r.stderr, /^channel: 2 cases \(quick\)$/m);
  assert.match(r.stderr, /^channel \[1\/2\] unix socket, 4-byte length framing: done \(\d+\.\d s\)$/m);
  assert.match(r.stderr, /^channel \[2\/2\] Channel sync: done \(\d+\.\d s\)$/m);

  // The JSON: the cases asked for, marked quick, with the command that made it.
  const json = JSON.parse(readFileSync(join(out, 'channel.json'), 'utf8')) as {
    quick: boolean; runs: number; command: string; machine: { cpus: number }; handoffNs: number[]; cases: Record<string, { rtt?: { median: number } }>;
    summary: { rows: Array<{ key: string; status: string; rttRatio?: number }> };
  };
  assert.equal(json.quick, true);
  assert.equal(json.runs, 1);
  assert.deepEqual(Object.keys(json.cases).sort(), ['channel-sync', 'socket']);
  assert.ok(json.cases.socket!.rtt!.median > 0 && json.cases['channel-sync']!.rtt!.median > 0);
  assert.deepEqual(json.summary.rows.map((x) => [x.key, x.status]), [['socket', 'ok'], ['channel-sync', 'ok']]);
  assert.match(json.command, /^interprocess bench channel --quick --only socket,channel-sync --out /);
  assert.ok(json.machine.cpus >= 1);
  assert.equal(json.handoffNs.length, 1, 'one hand-off measurement per round');
  assert.ok(json.handoffNs[0]! > 1 && json.handoffNs[0]! < 100_000, `hand-off ${json.handoffNs[0]} ns`);

  // The chart: three panels of one bar per case, labels, the baseline marked, the quick warning.
  const chart = readChart(join(out, 'channel.svg'));
  const bars = chart.bars.map((b) => `${b.attrs['data-panel']}:${b.attrs['data-case']}`).sort();
  assert.deepEqual(bars, ['gbps:channel-sync', 'gbps:socket', 'msgs:channel-sync', 'msgs:socket', 'rtt:channel-sync', 'rtt:socket']);
  for (const b of chart.bars) assert.ok(Number(b.attrs.width) > 0 && Number(b.attrs['data-value']) > 0, `bar ${b.attrs['data-case']} has a length`);
  for (const label of ['unix socket, 4-byte length framing', 'Channel sync']) assert.equal(chart.texts.filter((x) => x.replace(/ \*$/, '') === label).length, 3, label);
  assert.ok(chart.texts.some((x) => /^Round trip/.test(x)) && chart.texts.some((x) => /lower is better/.test(x)));
  assert.equal(chart.texts.filter((x) => /1\.0x \(baseline\)$/.test(x)).length, 3, 'the socket bar is the baseline in each panel');
  assert.ok(chart.texts.some((x) => /QUICK RUN/.test(x)));
  assert.ok(chart.texts.includes(`$ ${json.command}`), 'the command is in the chart, as typed');
  assert.ok(json.command.endsWith(`--out '${out.replace(/'/g, `'\\''`)}'`), json.command);
  // The ratio printed at each Channel bar's end is the table's.
  const figures = chart.texts.filter((x) => /·/.test(x));
  for (const ratio of [channel[3], channel[5], channel[7]]) assert.ok(figures.some((f) => f.replace(/\s+/g, ' ').endsWith(`· ${ratio}`)), `${ratio} in ${figures.join(' | ')}`);

  assert.deepEqual(benchObjects().filter((n) => !before.includes(n)), []);
  assert.deepEqual(readdirSync(out).sort(), ['channel.json', 'channel.svg']);
  // Results go to --out, not into the package.
  assert.equal(existsSync(packageResults) ? statSync(packageResults).mtimeMs : undefined, packageResultsMtime);
});

test('bench mutex --quick writes to ./interprocess-bench by default: tables, JSON, chart', async (t) => {
  const { dir, cleanup } = tempDir('bench');
  t.after(cleanup);
  const before = benchObjects();
  const r = await run(process.execPath, [cli, 'bench', 'mutex', '--quick'], { cwd: dir });
  assert.equal(r.code, 0, r.stderr);
  const out = join(dir, 'interprocess-bench');
  assert.match(r.stdout, new RegExp(`results in ${out}`));
  assert.deepEqual(tableRow(r.stdout, 'C pthread_mutex_lock+unlock').slice(2), ['1.0x']);
  assert.match(tableRow(r.stdout, 'Node lockSync()+unlock()')[2]!, /^\d+(\.\d+)?x$/);
  assert.deepEqual(tableRow(r.stdout, 'Node lockSync, 2 processes').slice(-1), ['exact']);
  assert.match(r.stderr, /^mutex \[7\/7\] Node await lock, 2 processes: done/m);

  const json = JSON.parse(readFileSync(join(out, 'mutex.json'), 'utf8')) as { quick: boolean; uncontended: Array<{ key: string }>; contended: Array<{ key: string; exact: boolean }> };
  assert.equal(json.quick, true);
  assert.deepEqual(json.uncontended.map((x) => x.key), ['c', 'try-lock', 'lock-sync', 'lock-async']);
  assert.deepEqual(json.contended.map((x) => [x.key, x.exact]), [['contended-c', true], ['contended-sync', true], ['contended-async', true]]);

  const chart = readChart(join(out, 'mutex.svg'));
  const count = (panel: string): number => chart.bars.filter((b) => b.attrs['data-panel'] === panel).length;
  assert.deepEqual([count('uncontended'), count('contended'), count('handoffs')], [4, 3, 3]);
  assert.ok(chart.texts.includes('Node await lock()+unlock()') && chart.texts.includes('C pthread, 2 processes'));
  assert.deepEqual(benchObjects().filter((n) => !before.includes(n)), []);
});

test('bench mutex --only c,try-lock --json --no-progress: only JSON on stdout, no progress on stderr', async (t) => {
  const { dir, cleanup } = tempDir('bench');
  t.after(cleanup);
  const out = join(dir, 'out');
  const r = await run(process.execPath, [cli, 'bench', 'mutex', '--quick', '--only', 'c,try-lock', '--json', '--no-progress', '--out', out], { cwd: dir });
  assert.equal(r.code, 0, r.stderr);
  const json = JSON.parse(r.stdout) as { mutex: { command: string; uncontended: Array<{ key: string; ratioToC: number }>; contended: unknown[] } };
  assert.deepEqual(Object.keys(json), ['mutex']);
  assert.deepEqual(json.mutex.uncontended.map((x) => x.key), ['c', 'try-lock']);
  assert.equal(json.mutex.uncontended[0]!.ratioToC, 1);
  assert.deepEqual(json.mutex.contended, []);
  assert.deepEqual(JSON.parse(readFileSync(join(out, 'mutex.json'), 'utf8')), json.mutex, 'the file holds what was printed');
  assert.equal(r.stderr, `results in ${out}\n`);
  assert.equal(readChart(join(out, 'mutex.svg')).bars.length, 2);
});

// ---- bad input --------------------------------------------------------------------

for (const [args, message] of [
  [['nope'], /^interprocess: command-argument value 'nope' is invalid for argument 'suite'\. Allowed choices are channel, mutex\. \(see --help\)$/],
  [['channel', '--only', 'socket,nope'], /^interprocess: unknown case 'nope' in --only \(channel: socket, cp-json, .*\)$/],
  [['--only', 'sock'], /^interprocess: unknown case 'sock' in --only \(channel: .*; mutex: c, .*\)$/],
  [['channel', '--runs', '0'], /^interprocess: option '--runs <n>' argument '0' is invalid\. Expected a whole number of at least 1\. \(see --help\)$/],
  [['channel', '--runs', 'x'], /^interprocess: option '--runs <n>' argument 'x' is invalid\. Expected a whole number of at least 1\. \(see --help\)$/],
  [['mutex', '--runs', '2'], /^interprocess: --runs: the mutex suite runs each case once$/],
] as Array<[string[], RegExp]>) {
  test(`bench ${args.join(' ')}: exit 2, one clear line, nothing run`, async (t) => {
    const { dir, cleanup } = tempDir('bench');
    t.after(cleanup);
    const r = await run(process.execPath, [cli, 'bench', ...args, '--quick', '--out', join(dir, 'out')], { cwd: dir });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr.split('\n')[0]!, message);
    assert.doesNotMatch(r.stderr, /^\s+at /m, 'no stack trace');
    assert.equal(r.stdout, '');
    assert.equal(existsSync(join(dir, 'out')), false, 'no suite ran');
  });
}

test('bench --out where no directory can be made: exit 1, one line', async (t) => {
  const { dir, cleanup } = tempDir('bench');
  t.after(cleanup);
  const r = await run(process.execPath, [cli, 'bench', 'mutex', '--quick', '--out', '/dev/null/results'], { cwd: dir });
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /^interprocess: cannot create the output directory \/dev\/null\/results: ENOTDIR/);
  assert.equal(r.stderr.trim().split('\n').length, 1);
});

// ---- Ctrl-C -----------------------------------------------------------------------------

/** Processes whose command line mentions `text`. */
function processesMentioning(text: string): number[] {
  const pids: number[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p) || Number(p) === process.pid) continue;
    try {
      // Arguments are NUL-separated there.
      if (readFileSync(`/proc/${p}/cmdline`, 'utf8').replace(/\0/g, ' ').includes(text)) pids.push(Number(p));
    } catch {
      // Exited meanwhile.
    }
  }
  return pids;
}

test('SIGINT while a case runs: exit 130, the sides stopped, their Channels removed', async (t) => {
  const { dir, cleanup } = tempDir('bench');
  t.after(cleanup);
  const before = benchObjects();
  const child = killOnExit(t, spawn(process.execPath, [cli, 'bench', 'channel', '--quick', '--only', 'channel-sync', '--runs', '10', '--out', join(dir, 'out')], { stdio: ['ignore', 'pipe', 'pipe'] }));
  const result = collect(child);
  // The case is under way once its Channels exist and both sides run.
  let mine: string[] = [];
  await until(() => (mine = benchObjects().filter((n) => !before.includes(n) && n.startsWith('ipx-bench-channel-sync-'))).length === 2, 'the case created its Channels', 20_000);
  const tag = mine[0]!; // names the suite's pid: the sides' command lines carry it
  await until(() => processesMentioning(`node B channel-sync /${tag}`).length > 0 && processesMentioning(`node A channel-sync /${tag}`).length > 0, 'both sides run', 10_000);
  child.kill('SIGINT');
  const r = await withTimeout(result, 15_000, 'bench exits after SIGINT');
  assert.equal(r.code, 130, r.stderr);
  assert.match(r.stderr, /^interprocess: interrupted: the channel suite stopped$/m);
  assert.doesNotMatch(r.stderr, /^\s+at /m);
  assert.deepEqual(benchObjects().filter((n) => !before.includes(n)), [], 'no Channel left in /dev/shm');
  // Stopped, not left to finish: ten runs take far longer than it took to exit.
  assert.equal(existsSync(join(dir, 'out', 'channel.json')), false, 'the suite stopped before its end');
  await until(() => processesMentioning(`/${tag}`).length === 0, 'the sides are gone', 5_000);
  await until(() => processesMentioning(join(dir, 'out')).length === 0, 'the suite is gone', 5_000);
});

const noScript = spawnSync('sh', ['-c', 'command -v script']).status !== 0 && 'no script(1) for a pseudo-terminal';

/** Runs the CLI on a pseudo-terminal (script(1)): what a person at a terminal sees, and a keyboard. */
function onTerminal(t: { after(fn: () => void): void }, args: string[]): { screen: () => string; type: (keys: string) => void; result: Promise<RunResult> } {
  const env: NodeJS.ProcessEnv = { ...process.env, TERM: 'xterm' };
  delete env.NO_COLOR;
  delete env.FORCE_COLOR;
  const cmd = [process.execPath, cli, ...args].map((a) => `'${a}'`).join(' ');
  const child = killOnExit(t, spawn('script', ['-qfec', cmd, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'], env }));
  let screen = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (screen += d));
  return { screen: () => screen, type: (keys) => child.stdin!.write(keys), result: collect(child) };
}

test('on a terminal: a progress bar on stderr, ratios green or red against their targets, the cursor shown again', { skip: noScript }, async (t) => {
  const { dir, cleanup } = tempDir('bench');
  t.after(cleanup);
  const term = onTerminal(t, ['bench', 'channel', '--quick', '--only', 'socket,channel-sync', '--out', join(dir, 'out')]);
  const r = await withTimeout(term.result, 30_000, 'bench on a terminal');
  const screen = term.screen();
  assert.equal(r.code, 0, screen);
  // The bar: cases done / total, elapsed, ETA, the case running.
  assert.match(screen, /0\/2 cases \| \d+s elapsed \| ETA \? \| unix socket, 4-byte length framing/);
  assert.match(screen, /1\/2 cases \| \d+s elapsed \| ETA \d+s \| Channel sync/);
  assert.match(screen, /2\/2 cases/);
  assert.ok(screen.indexOf('\x1b[?25l') >= 0 && screen.lastIndexOf('\x1b[?25h') > screen.indexOf('\x1b[?25l'), 'the cursor is hidden, then shown again');
  // Channel sync's three ratios each have a target: green (met) or red (not); the socket's have none.
  const row = (label: string): string => screen.split('\n').find((l) => l.startsWith(`│ ${label}`)) ?? '';
  assert.equal(row('Channel sync').match(/\x1b\[3[12]m\d+(\.\d+)?x\x1b\[39m/g)?.length, 3, row('Channel sync'));
  assert.doesNotMatch(row('unix socket'), /\x1b\[3[12]m/);
  assert.match(screen, /\x1b\[3[12]m(met|NOT met)\x1b\[39m/);
});

test('on a terminal: Ctrl-C stops the bar and the suite, shows the cursor again, exits 130', { skip: noScript }, async (t) => {
  const { dir, cleanup } = tempDir('bench');
  t.after(cleanup);
  const before = benchObjects();
  const term = onTerminal(t, ['bench', 'channel', '--quick', '--only', 'channel-sync', '--runs', '10', '--out', join(dir, 'out')]);
  await until(() => /0\/10 cases \| \d+s elapsed \| ETA \? \| Channel sync/.test(term.screen()), () => `a progress bar; screen: ${JSON.stringify(term.screen())}`, 20_000);
  await until(() => benchObjects().some((n) => !before.includes(n)), 'the case created its Channels', 20_000);
  // ^C on the terminal: SIGINT to its foreground process group, as a person's Ctrl-C.
  term.type('\x03');
  const r = await withTimeout(term.result, 15_000, 'bench exits after ^C');
  const screen = term.screen();
  assert.equal(r.code, 130, screen);
  assert.ok(screen.lastIndexOf('\x1b[?25h') > screen.indexOf('\x1b[?25l'), 'the cursor is shown again');
  assert.match(screen, /interprocess: interrupted: the channel suite stopped/);
  assert.equal(existsSync(join(dir, 'out', 'channel.json')), false, 'the suite stopped before its end');
  assert.deepEqual(benchObjects().filter((n) => !before.includes(n)), []);
});
