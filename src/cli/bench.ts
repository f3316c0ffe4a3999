/**
 * `interprocess bench [suite...]`: the package's benchmark suites (bench/*.mjs),
 * one after the other, with progress on stderr, the comparison tables on
 * stdout, and each suite's JSON and SVG chart in an output directory.
 *
 * Each suite runs as a child process, in a process group of its own, exactly
 * as `npm run bench` runs it: its cases own the two cores, and this process
 * only reads. The suite reports progress as JSON lines on descriptor 3
 * (bench/lib.mjs's emit) and writes its results where --json-out says, so an
 * installed package writes nothing inside node_modules.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve, sep } from 'node:path';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { Argument, InvalidArgumentError, Option, type Command } from 'commander';
import cliProgress from 'cli-progress';
import Table from 'cli-table3';
import pc from 'picocolors';
import {
  channelChart,
  formatRatio,
  mutexChart,
  preciseRatio,
  renderChart,
  type ChannelResults,
  type ChannelRow,
  type MutexResults,
  type SuiteResults,
} from './chart.js';
import { CliError, Exit } from './target.js';

/** The package root: bench/, c/ and include/ sit beside dist/. */
const root = fileURLToPath(new URL('../../', import.meta.url));
const benchDir = join(root, 'bench');

/** The suites: every bench/*.mjs but the runner and the shared library (as bench/run.mjs sees them). */
export function suites(): string[] {
  try {
    return readdirSync(benchDir)
      .filter((f) => f.endsWith('.mjs') && !['run.mjs', 'lib.mjs'].includes(f))
      .map((f) => f.slice(0, -4))
      .sort();
  } catch {
    return [];
  }
}

export interface BenchOptions {
  only?: string[];
  runs?: number;
  quick?: boolean;
  out: string;
  json?: boolean;
  progress: boolean;
  list?: boolean;
}

type Colours = ReturnType<typeof pc.createColors>;

/** Colours for a stream: on a terminal, unless NO_COLOR; always with FORCE_COLOR. */
function coloursFor(stream: { isTTY?: boolean }): Colours {
  const env = process.env;
  const on = !env.NO_COLOR && (!!env.FORCE_COLOR || (!!stream.isTTY && env.TERM !== 'dumb'));
  return pc.createColors(on);
}

// ---- the progress protocol (bench/lib.mjs emit) --------------------------------

interface PlanEvent { event: 'plan'; suite: string; total: number; runs: number; quick: boolean; cases: Array<{ key: string; label: string }> }
interface StartEvent { event: 'start'; key: string; label: string; run: number }
interface DoneEvent { event: 'done'; key: string; label: string; run: number; seconds: number; error?: string; skipped?: string }
interface UsageEvent { event: 'usage'; message: string }
type SuiteEvent = PlanEvent | StartEvent | DoneEvent | UsageEvent;

/** What the person at the terminal sees while a suite runs. */
interface Progress {
  plan(e: PlanEvent): void;
  start(e: StartEvent): void;
  done(e: DoneEvent): void;
  /** A line the suite wrote on its stderr (a warning, an error). */
  log(line: string): void;
  /** Leaves the terminal as it was (cursor shown, bar line ended). */
  stop(): void;
}

function duration(s: number): string {
  if (!Number.isFinite(s) || s < 0) return '?';
  if (s < 60) return `${Math.round(s)}s`;
  return `${Math.floor(s / 60)}m${String(Math.round(s % 60)).padStart(2, '0')}s`;
}

/** A bar on a terminal: cases done / total, the case running, elapsed and ETA. */
class BarProgress implements Progress {
  #multi: cliProgress.MultiBar | undefined;
  #bar: cliProgress.SingleBar | undefined;
  #timer: NodeJS.Timeout | undefined;
  #started = Date.now();
  #done = 0;
  #total = 0;
  #label = '';
  constructor(private readonly suite: string, private readonly c: Colours) {}

  plan(e: PlanEvent): void {
    this.#total = e.total;
    this.#started = Date.now();
    this.#multi = new cliProgress.MultiBar({
      stream: process.stderr,
      format: `${this.c.bold(this.suite)} ${this.c.cyan('{bar}')} {value}/{total} cases | {elapsed} elapsed | ETA {remaining} | {label}`,
      barsize: 24,
      hideCursor: true,
      linewrap: false,
      gracefulExit: false, // our own SIGINT handler stops the bar and the suite
      fps: 5,
    });
    this.#bar = this.#multi.create(e.total, 0, this.#payload());
    // Elapsed and ETA move while one case runs for seconds.
    this.#timer = setInterval(() => this.#bar?.update(this.#payload()), 1000);
  }

  #payload(): { label: string; elapsed: string; remaining: string } {
    const elapsed = (Date.now() - this.#started) / 1000;
    // Cases take about as long as each other: the mean so far says the rest.
    const eta = this.#done ? duration((elapsed / this.#done) * (this.#total - this.#done)) : '?';
    return { label: this.#label, elapsed: duration(elapsed), remaining: eta };
  }

  start(e: StartEvent): void {
    this.#label = e.label;
    this.#bar?.update(this.#payload());
  }

  done(e: DoneEvent): void {
    this.#done++;
    if (e.error) this.log(`${this.suite}: ${e.label}: ${this.c.red('FAILED')}: ${e.error}`);
    this.#label = this.#done === this.#total ? 'done' : this.#label;
    this.#bar?.update(this.#done, this.#payload());
  }

  log(line: string): void {
    if (this.#multi) this.#multi.log(`${line}\n`);
    else process.stderr.write(`${line}\n`);
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#multi?.stop();
    this.#multi = undefined;
  }
}

/** Plain lines, for a log file or a pipe: one per finished case. */
class LineProgress implements Progress {
  #done = 0;
  #total = 0;
  #run = 1;
  constructor(private readonly suite: string) {}
  plan(e: PlanEvent): void {
    this.#total = e.total;
    const runs = e.runs > 1 ? ` x ${e.runs} runs` : '';
    process.stderr.write(`${this.suite}: ${e.cases.length} case${e.cases.length === 1 ? '' : 's'}${runs}${e.quick ? ' (quick)' : ''}\n`);
  }
  start(e: StartEvent): void {
    if (e.run !== this.#run) process.stderr.write(`${this.suite}: run ${(this.#run = e.run)}\n`);
  }
  done(e: DoneEvent): void {
    const what = e.error ? `FAILED: ${e.error}` : e.skipped ? `skipped (${e.skipped})` : 'done';
    process.stderr.write(`${this.suite} [${++this.#done}/${this.#total}] ${e.label}: ${what} (${e.seconds.toFixed(1)} s)\n`);
  }
  log(line: string): void {
    process.stderr.write(`${line}\n`);
  }
  stop(): void {}
}

/** --no-progress: only what the suite itself says on stderr (warnings, errors). */
class QuietProgress implements Progress {
  plan(): void {}
  start(): void {}
  done(): void {}
  log(line: string): void {
    process.stderr.write(`${line}\n`);
  }
  stop(): void {}
}

/** Calls `onLine` for each complete line of a stream. */
function lines(stream: Readable, onLine: (line: string) => void): void {
  let buf = '';
  stream.setEncoding('utf8');
  stream.on('data', (d: string) => {
    buf += d;
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      onLine(buf.slice(0, nl));
      buf = buf.slice(nl + 1);
    }
  });
  stream.on('end', () => {
    if (buf) onLine(buf);
  });
}

// ---- running a suite --------------------------------------------------------

/** The suite running now, for the signal handlers. */
let current: { child: ChildProcess; progress: Progress } | undefined;
let stopping: NodeJS.Signals | undefined;
const cleanups: Array<() => void> = [];

/** Signals the suite's whole process group: the script and every side it started. */
function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    process.kill(-child.pid!, signal);
  } catch {
    // Already gone.
  }
}

function onSignal(signal: NodeJS.Signals): void {
  if (!current) {
    for (const undo of cleanups) undo();
    process.exit(signal === 'SIGINT' ? 130 : 143);
  }
  if (stopping) {
    // A second Ctrl-C: no more waiting.
    signalGroup(current.child, 'SIGKILL');
    return;
  }
  stopping = signal;
  current.progress.stop();
  // The suite's own handler stops its sides and removes its Channels; a Ctrl-C on the
  // terminal reaches only this process (the suite has its own group), so pass it on.
  signalGroup(current.child, signal);
  const { child } = current;
  setTimeout(() => signalGroup(child, 'SIGKILL'), 5000).unref();
}

/** A suite's cases (its --list): quick, nothing runs. */
function listCases(suite: string): { cases: Array<{ key: string; label: string }>; runs: boolean } {
  const r = spawnSync(process.execPath, [join(benchDir, `${suite}.mjs`), '--list'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  if (r.status !== 0) throw new CliError(`could not list the cases of the ${suite} suite: ${r.stderr?.trim() || r.error?.message || `exit code ${r.status}`}`, Exit.error);
  try {
    const parsed = JSON.parse(r.stdout) as { cases: Array<{ key: string; label: string }>; runs?: boolean };
    return { cases: parsed.cases, runs: !!parsed.runs };
  } catch {
    throw new CliError(`the ${suite} suite does not list its cases (--list)`, Exit.error);
  }
}

interface SuiteRun {
  suite: string;
  json: string;
  svg?: string;
  results: SuiteResults;
  /** The suite's own report (what `npm run bench` prints), for suites this command cannot draw. */
  stdout: string;
}

async function runSuite(suite: string, args: string[], opts: BenchOptions, env: NodeJS.ProcessEnv, command: string): Promise<SuiteRun> {
  const out = resolve(opts.out);
  const jsonFile = join(out, `${suite}.json`);
  const script = join(benchDir, `${suite}.mjs`);
  const c = coloursFor(process.stderr);
  const progress: Progress = !opts.progress ? new QuietProgress() : process.stderr.isTTY ? new BarProgress(suite, c) : new LineProgress(suite);
  const child = spawn(process.execPath, [script, '--progress-fd', '3', '--json-out', jsonFile, ...args], {
    stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
    // Its own process group: one signal reaches the script and the sides it started.
    detached: true,
    env,
  });
  current = { child, progress };
  let usage: string | undefined;
  let stdout = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  lines(child.stderr!, (line) => progress.log(line));
  lines(child.stdio[3] as Readable, (line) => {
    let e: SuiteEvent;
    try {
      e = JSON.parse(line) as SuiteEvent;
    } catch {
      return; // not ours
    }
    if (e.event === 'plan') progress.plan(e);
    else if (e.event === 'start') progress.start(e);
    else if (e.event === 'done') progress.done(e);
    else if (e.event === 'usage') usage = e.message;
  });
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolveExit, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolveExit([code, signal]));
  });
  progress.stop();
  current = undefined;
  if (stopping) {
    for (const undo of cleanups) undo();
    process.stderr.write(`interprocess: interrupted: the ${suite} suite stopped\n`);
    process.exit(stopping === 'SIGINT' ? 130 : 143);
  }
  if (code === Exit.usage && usage !== undefined) throw new CliError(usage, Exit.usage);
  if (code !== 0) throw new CliError(`the ${suite} suite failed (${signal ? `killed by ${signal}` : `exit code ${code}`})`, Exit.error);

  let results: SuiteResults;
  try {
    results = JSON.parse(readFileSync(jsonFile, 'utf8')) as SuiteResults;
  } catch (err) {
    throw new CliError(`the ${suite} suite wrote no readable results to ${jsonFile}: ${(err as Error).message}`, Exit.error);
  }
  results.command = command;
  writeFileSync(jsonFile, `${JSON.stringify(results, null, 2)}\n`);
  const chart = suite === 'channel' ? channelChart(results as ChannelResults) : suite === 'mutex' ? mutexChart(results as MutexResults) : undefined;
  let svg: string | undefined;
  if (chart) {
    svg = join(out, `${suite}.svg`);
    writeFileSync(svg, renderChart(chart));
  }
  return { suite, json: jsonFile, ...(svg ? { svg } : {}), results, stdout };
}

// ---- tables -------------------------------------------------------------------

function newTable(head: string[], c: Colours, align: Array<'left' | 'right'>): Table.Table {
  return new Table({
    head: head.map((h) => c.bold(h)),
    colAligns: align,
    // Colours are ours (picocolors, terminal only): cli-table3's would ignore NO_COLOR.
    style: { head: [], border: [], compact: true },
  }) as Table.Table;
}

/** A ratio cell: green when it meets the target that judges it, red when not, plain when no target does. */
function ratioCell(v: number | undefined, goal: number | undefined, c: Colours, higherIsBetter = true): string {
  if (goal === undefined || v === undefined || !Number.isFinite(v)) return formatRatio(v);
  const met = higherIsBetter ? v >= goal : v <= goal;
  const text = preciseRatio(v, goal, higherIsBetter);
  return met ? c.green(text) : c.red(text);
}

function channelReport(res: ChannelResults, c: Colours): string {
  const out: string[] = [];
  if (res.quick) out.push(c.yellow('QUICK RUN (--quick): short runs for a smoke test; the figures are indicative only'), '');
  out.push(c.bold('Channel vs the alternatives') + `: 2 processes pinned to CPUs 0 and 1 (worker_threads: 1 process on CPUs 0,1)`);
  out.push(
    `RTT: 64-byte message there and back, ${res.rounds.toLocaleString('en')} timed; streaming: ${res.streamSeconds} s one way per size; ` +
      `x socket: times better than the unix socket${res.runs > 1 ? ` in the same run, median over ${res.runs} runs` : ''}`,
  );
  const t = newTable(['case', 'RTT median us', 'RTT p99 us', 'x socket', '64 B msg/s', 'x socket', '1 MiB GB/s', 'x socket'], c, [
    'left', 'right', 'right', 'right', 'right', 'right', 'right', 'right',
  ]);
  const fix = (v: number | undefined, d: number): string => (v === undefined || !Number.isFinite(v) ? '-' : v.toFixed(d));
  const intact = (i: ChannelRow['integrity64']): string => (!i || i.ok ? '' : c.red(` BAD(${i.bad}, ${i.received}/${i.sent})`));
  for (const r of res.summary.rows) {
    const label = r.label + ((r.othersBusy ?? 0) >= 0.1 ? ' *' : '');
    if (r.status !== 'ok') {
      const why = r.status === 'skipped' ? c.dim(`skipped: ${r.reason ?? ''}`) : c.red(`FAILED: ${r.reason ?? ''}`);
      t.push([label, { colSpan: 7, content: why }]);
      continue;
    }
    const g = r.goals ?? {};
    t.push([
      label,
      fix(r.rttMedianUs, 2),
      fix(r.rttP99Us, 2),
      ratioCell(r.rttRatio, g.rtt, c),
      (r.msgsPerSec === undefined ? '-' : Math.round(r.msgsPerSec).toLocaleString('en')) + intact(r.integrity64),
      ratioCell(r.msgsRatio, g.msgs, c),
      fix(r.GBps, 2) + intact(r.integrity1m),
      ratioCell(r.gbpsRatio, g.gbps, c),
    ]);
  }
  out.push(t.toString());
  if (res.summary.rows.some((r) => (r.othersBusy ?? 0) >= 0.1)) out.push('* other processes kept the CPUs at least 10% busy just before this case: its figures may be low');
  if (res.handoffNote) out.push('', c.dim(res.handoffNote));
  if (res.targets?.length) {
    out.push('', c.bold('Targets') + ' (informational)');
    const tt = newTable(['target', 'measured', 'met'], c, ['left', 'right', 'left']);
    for (const x of res.targets) {
      const paint = x.ok === true ? c.green : x.ok === false ? c.red : c.dim;
      const measured = x.value === undefined || x.value === null ? x.measured : x.measured.replace(/^[\d.]+x/, preciseRatio(x.value, x.goal, x.higherIsBetter));
      tt.push([x.target, paint(measured), paint(x.met)]);
    }
    out.push(tt.toString());
  }
  return out.join('\n');
}

function mutexReport(res: MutexResults, c: Colours): string {
  const out: string[] = [];
  if (res.quick) out.push(c.yellow('QUICK RUN (--quick): fewer iterations, a smoke test; the figures are indicative only'), '');
  const num = (v: number | undefined, f: (v: number) => string): string => (v === undefined ? '-' : f(v));
  if (res.uncontended.length) {
    out.push(c.bold('Uncontended lock+unlock') + ' (one process); x C: time per operation over C\'s');
    const t = newTable(['case', 'ns/op', 'x C'], c, ['left', 'right', 'right']);
    for (const r of res.uncontended) t.push([r.case, num(r.nsPerOp, (v) => v.toFixed(1)), formatRatio(r.ratioToC)]);
    out.push(t.toString());
  }
  if (res.contended.length) {
    if (out.length) out.push('');
    out.push(c.bold('Contended') + `: two processes, each ${(res.perProcess ?? 0).toLocaleString('en')} x (lock, count, unlock); x C: throughput over C's`);
    const t = newTable(['case', 'lock+unlock/s', 'x C', 'handoffs/s', 'count'], c, ['left', 'right', 'right', 'right', 'left']);
    for (const r of res.contended) {
      t.push([
        r.case,
        num(r.locksPerSec, (v) => Math.round(v).toLocaleString('en')),
        formatRatio(r.ratioToC),
        num(r.handoffsPerSec, (v) => Math.round(v).toLocaleString('en')),
        r.exact === false ? c.red('WRONG') : c.green('exact'),
      ]);
    }
    out.push(t.toString());
  }
  return out.join('\n');
}

// ---- the command ------------------------------------------------------------------

function parseRuns(text: string): number {
  if (!/^\d+$/.test(text) || Number(text) < 1) throw new InvalidArgumentError('Expected a whole number of at least 1.');
  return Number(text);
}

function parseCases(text: string): string[] {
  const keys = text.split(',').map((s) => s.trim()).filter(Boolean);
  if (!keys.length) throw new InvalidArgumentError('Expected case names, comma-separated (see --list).');
  return keys;
}

/**
 * mkdir -p. Not mkdirSync's own recursive mode: Node 20's loops forever where
 * mkdir(2) says ENOENT under an existing parent (/proc/x).
 */
function makeDirectory(dir: string): void {
  try {
    mkdirSync(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST' && statSync(dir).isDirectory()) return;
    if (code !== 'ENOENT' || dirname(dir) === dir) throw err;
    makeDirectory(dirname(dir));
    mkdirSync(dir);
  }
}

/** The command line as typed, for the JSON and the chart. */
function commandLine(): string {
  const quote = (a: string): string => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`);
  return ['interprocess', ...process.argv.slice(2).map(quote)].join(' ');
}

export async function runBench(which: string[], opts: BenchOptions): Promise<void> {
  const all = suites();
  if (!all.length) throw new CliError(`no benchmark suites found in ${benchDir}`, Exit.error);
  const chosen = which.length ? [...new Set(which)] : all;
  const stdoutColours = coloursFor(process.stdout);

  if (opts.list) {
    for (const suite of chosen) {
      const { cases } = listCases(suite);
      process.stdout.write(`${stdoutColours.bold(suite)}\n${cases.map((k) => `  ${k.key.padEnd(18)} ${k.label}`).join('\n')}\n`);
    }
    return;
  }

  // Which cases and flags each suite gets: --only names are checked against every chosen
  // suite up front, so a typo fails before minutes of benchmark, not after.
  const plan: Array<{ suite: string; args: string[] }> = [];
  const listed = opts.only || opts.runs !== undefined ? new Map(chosen.map((s) => [s, listCases(s)])) : undefined;
  if (opts.only) {
    const unknown = opts.only.filter((k) => ![...listed!.values()].some((l) => l.cases.some((x) => x.key === k)));
    if (unknown.length) {
      const known = [...listed!].map(([s, l]) => `${s}: ${l.cases.map((x) => x.key).join(', ')}`).join('; ');
      throw new CliError(`unknown case${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => `'${k}'`).join(', ')} in --only (${known})`, Exit.usage);
    }
  }
  if (opts.runs !== undefined && ![...listed!.values()].some((l) => l.runs)) {
    throw new CliError(`--runs: the ${chosen.join(' and ')} suite${chosen.length > 1 ? 's run' : ' runs'} each case once`, Exit.usage);
  }
  for (const suite of chosen) {
    const args: string[] = [];
    if (opts.only) {
      const mine = opts.only.filter((k) => listed!.get(suite)!.cases.some((x) => x.key === k));
      if (!mine.length) {
        // Named on the command line but given nothing to do: say so rather than run it all.
        if (which.includes(suite)) throw new CliError(`--only names no case of the ${suite} suite (see interprocess bench ${suite} --list)`, Exit.usage);
        continue;
      }
      args.push('--only', mine.join(','));
    }
    if (opts.runs !== undefined && listed!.get(suite)!.runs) args.push('--runs', String(opts.runs));
    if (opts.quick) args.push('--quick');
    plan.push({ suite, args });
  }

  const out = resolve(opts.out);
  try {
    makeDirectory(out);
  } catch (err) {
    throw new CliError(`cannot create the output directory ${out}: ${(err as Error).message}`, Exit.error);
  }
  // The C baselines are compiled by the suites; an installed package's node_modules may
  // be read-only (and is no place for build products): a temporary directory then.
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.IPX_BENCH_QUICK;
  if (root.split(sep).includes('node_modules')) {
    const build = mkdtempSync(join(tmpdir(), 'interprocess-bench-build-'));
    env.IPX_BENCH_BUILD_DIR = build;
    cleanups.push(() => rmSync(build, { recursive: true, force: true }));
  }
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const command = commandLine();
  const done: SuiteRun[] = [];
  try {
    for (const { suite, args } of plan) {
      const r = await runSuite(suite, args, opts, env, command);
      done.push(r);
      if (opts.json) continue;
      if (done.length > 1) process.stdout.write('\n');
      process.stdout.write(`${stdoutColours.bold(`== ${suite}`)}\n\n`);
      const report = suite === 'channel' ? channelReport(r.results as ChannelResults, stdoutColours)
        : suite === 'mutex' ? mutexReport(r.results as MutexResults, stdoutColours)
        : r.stdout.trimEnd();
      process.stdout.write(`${report}\n\n`);
      process.stdout.write(`data:  ${r.json}\n`);
      if (r.svg) process.stdout.write(`chart: ${r.svg}\n`);
    }
  } finally {
    for (const undo of cleanups.splice(0)) undo();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  if (opts.json) {
    process.stdout.write(`${JSON.stringify(Object.fromEntries(done.map((r) => [r.suite, r.results])), null, 2)}\n`);
    process.stderr.write(`results in ${out}\n`);
  } else {
    process.stdout.write(`\nresults in ${out} (open the .svg charts in a browser)\n`);
  }
}

export function registerBench(program: Command): void {
  const names = suites();
  program
    .command('bench')
    .description(
      'run the benchmark suites one after the other (each owns the CPUs while it runs), ' +
        'print their comparison tables and write each suite\'s JSON and SVG chart',
    )
    .addArgument(new Argument('[suite...]', 'which suites to run (default: all)').choices(names))
    .addOption(new Option('--only <cases>', 'only these cases, comma-separated (see --list)').argParser(parseCases))
    .addOption(new Option('--runs <n>', 'run each case n times and report medians (channel; default 3, 1 with --quick)').argParser(parseRuns))
    .option('--quick', 'short runs, a smoke test: the figures are marked as indicative only')
    .option('--out <dir>', 'where to write <suite>.json and <suite>.svg', 'interprocess-bench')
    .option('--json', 'print the results as JSON on stdout instead of tables')
    .option('--no-progress', 'no progress bar or progress lines on stderr')
    .option('--list', 'list the cases of each suite and exit')
    .addHelpText(
      'after',
      `
Progress goes to stderr: a bar on a terminal, one line per finished case otherwise.
Ctrl-C stops the suite, its processes and their kernel objects, and exits 130.

Examples:
  interprocess bench                      every suite, full length (minutes)
  interprocess bench channel --quick      a smoke test of the channel suite (seconds)
  interprocess bench channel --only socket,channel-sync --runs 5
  interprocess bench mutex --out /tmp/results`,
    )
    .action(async (which: string[], opts: BenchOptions) => {
      await runBench(which, opts);
    });
}
