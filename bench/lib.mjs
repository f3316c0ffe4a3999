// Shared bits of the benchmarks: compiling C baselines, running processes,
// formatting tables. Benchmarks print ratios against baselines measured in
// the same run; nothing here is a pass/fail test.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..');

export function compile(name) {
  const src = join(root, 'bench', 'peers', `${name}.c`);
  const lib = join(root, 'c', 'interprocess.c');
  const out = join(root, 'build', 'bench', name);
  const newest = Math.max(...[src, lib, join(root, 'include', 'interprocess.h')].map((f) => statSync(f).mtimeMs));
  if (!existsSync(out) || statSync(out).mtimeMs < newest) {
    mkdirSync(dirname(out), { recursive: true });
    const r = spawnSync('cc', ['-O2', '-std=gnu11', '-Wall', '-I', join(root, 'include'), '-o', out, src, lib, '-pthread'], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`compiling ${name}.c failed:\n${r.stderr}`);
  }
  return out;
}

/** Runs a command, resolves with its stdout (rejects on a non-zero exit). */
export function run(cmd, args, options = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'], ...options });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.on('error', reject);
    child.on('exit', (code, signal) => (code === 0 ? resolve(out) : reject(new Error(`${cmd} exited with ${signal ?? code}`))));
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

export function saveJson(name, data) {
  const dir = join(root, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${name}.json`);
  writeFileSync(file, JSON.stringify({ date: new Date().toISOString(), node: process.version, ...data }, null, 2));
  return file;
}
