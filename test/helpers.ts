/**
 * Shared test helpers: real processes, real C peers, unique kernel object
 * names. Tests import the package by its own name ('interprocess'), so they
 * exercise the public exports exactly as users do.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { Channel, posix, NotFoundError } from 'interprocess';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestContext } from 'node:test';
import { Worker } from 'node:worker_threads';

/** The repository root (build/test/helpers.js is two levels below it). */
export const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

let counter = 0;
/** A POSIX object name unique to this process and call: '/ipt-<pid>-<tag>-<n>'. */
export function uniqueName(tag: string): string {
  return `/ipt-${process.pid}-${tag}-${++counter}`;
}

/** A fresh temporary directory, removed by the returned cleanup function. */
export function tempDir(tag = 'tmp'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), `ipt-${tag}-`));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

const peerDir = join(root, 'build', 'peers');

/**
 * Compiles test/peers/NAME.c with the system C compiler, together with
 * c/interprocess.c (again whenever it, test/peers/peer.h,
 * include/interprocess.h or c/interprocess.c changes) and returns the binary's path.
 */
export function compilePeer(name: string, extraArgs: string[] = []): Promise<string> {
  const src = join(root, 'test', 'peers', `${name}.c`);
  const out = join(peerDir, name);
  // Rebuild when the source or a header the peers include changed.
  const newest = Math.max(
    statSync(src).mtimeMs,
    statSync(join(root, 'include', 'interprocess.h')).mtimeMs,
    statSync(join(root, 'c', 'interprocess.c')).mtimeMs,
    statSync(join(root, 'test', 'peers', 'peer.h')).mtimeMs,
  );
  if (existsSync(out) && statSync(out).mtimeMs >= newest) return Promise.resolve(out);
  mkdirSync(peerDir, { recursive: true });
  return run('cc', ['-O2', '-Wall', '-Werror', '-std=gnu11', '-o', out, src, join(root, 'c', 'interprocess.c'), ...extraArgs]).then((r) => {
    if (r.code !== 0) throw new Error(`compiling ${name}.c failed:\n${r.stderr}`);
    return out;
  });
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Collects a child's output and exit status. */
export function collect(child: ChildProcess): Promise<RunResult> {
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

/** Runs a command to completion. */
export function run(cmd: string, args: string[], options: SpawnOptions = {}): Promise<RunResult> {
  return collect(spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options }));
}

/** Starts `node` running `code` as an ES module, from the repository root. */
export function spawnNode(code: string, args: string[] = [], options: SpawnOptions & { nodeArgs?: string[] } = {}): ChildProcess {
  const { nodeArgs = [], ...rest } = options;
  return spawn(process.execPath, [...nodeArgs, '--input-type=module', '-e', code, '--', ...args], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
    ...rest,
  });
}

/** Runs `node` on `code` to completion. */
export function runNode(code: string, args: string[] = [], options: SpawnOptions & { nodeArgs?: string[] } = {}): Promise<RunResult> {
  return collect(spawnNode(code, args, options));
}

/** Entries of /dev/shm whose names start with `prefix` (a POSIX name without its '/'). */
export function shmEntries(prefix: string): string[] {
  return readdirSync('/dev/shm').filter((f) => f.startsWith(prefix.replace(/^\//, '')));
}

/** Ids of all System V objects of one kind (from /proc/sysvipc/shm, msg or sem). */
export function sysvIds(kind: 'shm' | 'msg' | 'sem'): Set<number> {
  const lines = readFileSync(`/proc/sysvipc/${kind}`, 'utf8').trim().split('\n').slice(1);
  return new Set(lines.filter(Boolean).map((l) => Number(l.trim().split(/\s+/)[1])));
}

/** Ids of all System V shared memory segments. */
export function sysvShmIds(): Set<number> {
  return sysvIds('shm');
}

/** Resolves when `child` writes a line matching `pattern` to stdout. */
export function waitForLine(child: ChildProcess, pattern: RegExp, timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${pattern}; got: ${buf}`)), timeoutMs);
    const onData = (d: Buffer | string): void => {
      buf += d.toString();
      const line = buf.split('\n').slice(0, -1).find((l) => pattern.test(l)); // whole lines: a chunk may end mid-line
      if (line !== undefined) {
        clearTimeout(timer);
        child.stdout?.off('data', onData);
        resolve(line);
      }
    };
    child.stdout?.on('data', onData);
  });
}

/** True when this process may switch to another user (to provoke EACCES as root). */
export const isRoot = process.getuid?.() === 0;
/** The unprivileged uid/gid used for permission tests when running as root. */
export const NOBODY = 65534;

// ---- Assertions and waiting used by several suites ---------------------------

export function unlinkQuietly(name: string): void {
  try {
    posix.SharedMemory.unlink(name);
  } catch (err) {
    if (!(err instanceof NotFoundError)) throw err;
  }
}

/** A Channel made for one test (its name from `tag`), closed and unlinked after the test. */
export function testChannel(t: { after(fn: () => void): void }, tag: string, capacity: number): Channel {
  const name = uniqueName(tag);
  const ch = Channel.create(name, { capacity });
  t.after(() => {
    ch.close();
    unlinkQuietly(name);
  });
  return ch;
}

export function checkError(caught: unknown, Cls: abstract new (...a: never[]) => Error, fields: Record<string, unknown>): Error {
  assert.ok(caught !== undefined, `expected ${Cls.name}, nothing was thrown`);
  assert.ok(caught instanceof Cls, `expected ${Cls.name}, got ${String(caught)}`);
  for (const [k, want] of Object.entries(fields)) {
    const got: unknown = (caught as unknown as Record<string, unknown>)[k];
    if (want instanceof RegExp) assert.match(String(got), want, `${k} of ${String(caught)}`);
    else assert.equal(got, want, `${k} of ${String(caught)}`);
  }
  return caught as Error;
}

export function throwsLike(fn: () => unknown, Cls: abstract new (...a: never[]) => Error, fields: Record<string, unknown> = {}): Error {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  return checkError(caught, Cls, fields);
}

export async function rejectsLike(p: Promise<unknown>, Cls: abstract new (...a: never[]) => Error, fields: Record<string, unknown> = {}): Promise<Error> {
  let caught: unknown;
  try {
    await p;
  } catch (err) {
    caught = err;
  }
  return checkError(caught, Cls, fields);
}

export function withTimeout<T>(p: Promise<T>, ms: number, what: string, onTimeout?: () => void): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      onTimeout?.();
      reject(new Error(`${what} within ${ms} ms`));
    }, ms);
  });
  return Promise.race([p, expired]).finally(() => clearTimeout(timer));
}

/** Polls `cond` until it holds (failing after `ms`). */
export async function until(cond: () => boolean, what: string | (() => string), ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${typeof what === 'string' ? what : what()}`);
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

/** Whether `p` has settled, after letting pending callbacks run. */
export async function settled(p: Promise<unknown>): Promise<boolean> {
  let done = false;
  p.then(
    () => (done = true),
    () => (done = true),
  );
  await new Promise((resolve) => setImmediate(resolve));
  return done;
}

export function finished(child: ChildProcess, what: string, ms = 20_000): Promise<RunResult> {
  return withTimeout(collect(child), ms, `${what} exits`, () => child.kill('SIGKILL'));
}

export function killOnExit(t: { after(fn: () => void): void }, child: ChildProcess): ChildProcess {
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return child;
}

/**
 * For tests of a sender whose last look at the tail is gigabytes old: runs
 * `sender`'s largest messages through `ch` (each received at once) until
 * `head` is `bytes` past `from` (less than a record more), then fills the
 * ring to its last byte with `sender`'s messages of 1000, 100 and 0 bytes
 * (each filled with its index), which it returns in order.
 */
export function runThenFill(ch: Channel, sender: Channel, from: number, bytes: number): Buffer[] {
  const shm = posix.SharedMemory.open(ch.name);
  const words = new Int32Array(shm.buffer);
  shm.close(); // (the mapping lives while its buffer does)
  const HEAD = 128 / 4; // docs/channel.md
  const big = Buffer.alloc(ch.maxMessage, 0x5a);
  const into = Buffer.alloc(ch.maxMessage);
  while ((((Atomics.load(words, HEAD) >>> 0) - from) >>> 0) + ch.maxMessage + 8 <= bytes) {
    sender.sendSync(big);
    ch.receiveIntoSync(into);
  }
  const filled: Buffer[] = [];
  for (const size of [1000, 100, 0]) {
    for (let m = Buffer.alloc(size, filled.length); sender.trySend(m); m = Buffer.alloc(size, filled.length)) filled.push(m);
  }
  assert.equal(ch.stat().used, ch.capacity, 'full');
  return filled;
}

/**
 * A worker thread of this process running `body` (module code) with
 * `Channel` imported, `d.name` (the channel's name) and `parentPort` at hand;
 * terminated after the test.
 */
export function channelWorker(t: TestContext, body: string, name: string): Worker {
  const worker = new Worker(
    `import { workerData as d, parentPort } from 'node:worker_threads';
     const { Channel } = await import(d.url);
     ${body}`,
    { eval: true, workerData: { url: import.meta.resolve('interprocess'), name } },
  );
  t.after(() => worker.terminate());
  return worker;
}
