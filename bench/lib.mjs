// Shared bits of the benchmarks: compiling C baselines, running processes,
// formatting tables, the command line every suite shares and the progress
// protocol `interprocess bench` reads. Benchmarks print ratios against
// baselines measured in the same run; nothing here is a pass/fail test.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { cpus, release } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..');

// An installed package may sit in a read-only node_modules: `interprocess bench`
// then names a directory of its own for the compiled baselines.
const buildDir = process.env.IPX_BENCH_BUILD_DIR || join(root, 'build', 'bench');

export function compile(name) {
  const src = join(root, 'bench', 'peers', `${name}.c`);
  const lib = join(root, 'c', 'interprocess.c');
  const out = join(buildDir, name);
  const newest = Math.max(...[src, lib, join(root, 'include', 'interprocess.h')].map((f) => statSync(f).mtimeMs));
  if (!existsSync(out) || statSync(out).mtimeMs < newest) {
    mkdirSync(dirname(out), { recursive: true });
    const r = spawnSync('cc', ['-O2', '-std=gnu11', '-Wall', '-I', join(root, 'include'), '-o', out, src, lib, '-pthread'], { encoding: 'utf8' });
    if (r.error) throw new Error(`compiling ${name}.c failed: ${r.error.message}`);
    if (r.status !== 0) throw new Error(`compiling ${name}.c failed:\n${r.stderr}`);
  }
  return out;
}

/** Children started by run() and not yet exited (a suite stopped by a signal kills them). */
export const running = new Set();

/** Runs a command, resolves with its stdout (rejects on a non-zero exit). */
export function run(cmd, args, options = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'], ...options });
    running.add(child);
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      running.delete(child);
      if (code === 0) resolve(out); else reject(Object.assign(new Error(`${cmd} exited with ${signal ?? code}`), { signal }));
    });
  });
}

/** Pins a process to a CPU where taskset exists (one process per core). */
export function pinned(cpu, cmd, args) {
  const taskset = spawnSync('sh', ['-c', 'command -v taskset']).status === 0;
  return taskset ? ['taskset', ['-c', String(cpu), cmd, ...args]] : [cmd, args];
}

export function table(rows, columns) {
  const widths = columns.map((c) => Math.max(c.length, ...rows.map((r) => String(r[c] ?? '').length)));
  const line = (cells) => cells.map((c, i) => String(c ?? '').padEnd(widths[i])).join('  ');
  return [line(columns), line(widths.map((w) => '-'.repeat(w))), ...rows.map((r) => line(columns.map((c) => r[c])))].join('\n');
}

/** Writes a suite's results: to `file` when given (--json-out), else bench/results/NAME.json. */
export function saveJson(name, data, file) {
  file ??= join(root, 'bench', 'results', `${name}.json`);
  mkdirSync(dirname(file), { recursive: true });
  const cpu = cpus();
  const machine = { cpus: cpu.length, model: cpu[0]?.model.trim() ?? 'unknown', platform: process.platform, arch: process.arch, kernel: release() };
  writeFileSync(file, JSON.stringify({ date: new Date().toISOString(), node: process.version, machine, ...data }, null, 2));
  return file;
}

/**
 * The command line every suite takes (roles of its own child processes aside):
 *   --only a,b        some cases, by key
 *   --runs N          (suites that repeat) each case N times
 *   --quick           short runs for a smoke test: the figures are indicative only
 *   --list            print the cases as JSON ({ cases: [{ key, label }], runs: takes --runs }) and exit
 *   --json-out FILE   write the results there instead of bench/results/
 *   --progress-fd N   one JSON line per event on descriptor N (see progress below)
 * A bad command line exits 2 with one line on stderr, or a `usage` event with --progress-fd.
 * `--quick` is passed on to the suite's children in IPX_BENCH_QUICK.
 */
export function options(cases, { runs: defaultRuns, quickRuns = 1 } = {}) {
  const argv = process.argv.slice(2);
  const name = basename(process.argv[1], '.mjs');
  const opts = { only: undefined, runs: defaultRuns, quick: process.env.IPX_BENCH_QUICK === '1', list: false, jsonOut: undefined, fd: undefined };
  let progressFd;
  const usage = (message) => {
    // With a progress reader, the reader says it (once, in its own words).
    if (progressFd !== undefined) emit(progressFd, { event: 'usage', message });
    else process.stderr.write(`bench/${name}.mjs: ${message}\n`);
    process.exit(2);
  };
  const value = (i, flag) => {
    if (i + 1 >= argv.length || argv[i + 1].startsWith('--')) usage(`${flag} needs a value`);
    return argv[i + 1];
  };
  // The descriptor first: every later complaint goes there too.
  const fdAt = argv.indexOf('--progress-fd');
  if (fdAt >= 0) {
    progressFd = Number(argv[fdAt + 1]);
    if (!Number.isInteger(progressFd) || progressFd < 0) { progressFd = undefined; usage(`--progress-fd needs a descriptor number (got '${argv[fdAt + 1] ?? ''}')`); }
  }
  let runsGiven = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--only') {
      opts.only = value(i++, a).split(',').map((s) => s.trim()).filter(Boolean);
      const unknown = opts.only.filter((k) => !cases.some((c) => c.key === k));
      if (unknown.length) usage(`unknown case${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => `'${k}'`).join(', ')} in --only (cases: ${cases.map((c) => c.key).join(', ')})`);
      if (!opts.only.length) usage('--only needs at least one case');
    } else if (a === '--runs' && defaultRuns !== undefined) {
      const text = value(i++, a);
      if (!/^\d+$/.test(text) || Number(text) < 1) usage(`--runs needs a whole number of at least 1 (got '${text}')`);
      opts.runs = Number(text);
      runsGiven = true;
    } else if (a === '--quick') opts.quick = true;
    else if (a === '--list') opts.list = true;
    else if (a === '--json-out') opts.jsonOut = resolve(value(i++, a));
    else if (a === '--progress-fd') i++;
    else usage(`unknown option '${a}'`);
  }
  if (opts.quick) {
    process.env.IPX_BENCH_QUICK = '1';
    if (!runsGiven && defaultRuns !== undefined) opts.runs = quickRuns;
  }
  if (opts.list) {
    process.stdout.write(`${JSON.stringify({ cases: cases.map(({ key, label }) => ({ key, label })), runs: defaultRuns !== undefined })}\n`);
    process.exit(0);
  }
  opts.fd = progressFd;
  opts.selected = cases.filter((c) => !opts.only || opts.only.includes(c.key));
  return opts;
}

/**
 * One progress event as a JSON line on descriptor `fd` (nothing without one):
 *   { event: 'plan', suite, total, quick, cases: [{ key, label }] }  before the first case
 *   { event: 'start', key, label, run }                               a case begins
 *   { event: 'done', key, label, run, seconds, error?, skipped? }     a case ended
 *   { event: 'usage', message }                                       bad command line (exit 2)
 */
export function emit(fd, event) {
  if (fd === undefined) return;
  try {
    writeSync(fd, `${JSON.stringify(event)}\n`);
  } catch {
    // The reader went away (it was stopped): the suite goes on to its end or its signal.
  }
}
