/**
 * Mutex (a robust, process-shared pthread mutex) against real processes: a
 * compiled C peer (test/peers/mutex_peer.c) making the pthread calls on the
 * same bytes, Node children, worker threads, and SIGKILL at random moments.
 *
 * Waits are observed, not slept on: the lock word (glibc's futex word: owner
 * tid | FUTEX_WAITERS | FUTEX_OWNER_DIED) says who holds the lock and whether
 * someone sleeps on it, /proc/PID/task/TID/wchan says a thread sleeps in a
 * futex, and /proc/self/status counts this process's threads. Every object is
 * removed by the test that made it, even when the test fails; the last hook
 * checks that no /dev/shm entry of this process is left.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, statSync, promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import {
  Mutex,
  MUTEX_SIZE,
  MUTEX_ALIGN,
  posix,
  sysv,
  AbortError,
  AlreadyExistsError,
  DeadlockError,
  InvalidArgumentError,
  IpcError,
  NotFoundError,
  NotRecoverableError,
  PermissionError,
  TimeoutError,
  type LockResult,
} from 'interprocess';
import { compilePeer, root, shmEntries, spawnNode, tempDir, uniqueName } from './helpers.js';
import { checkError, rejectsLike, throwsLike, unlinkQuietly } from './helpers.js';

type TestContext = { after(fn: () => void | Promise<void>): void; diagnostic(message: string): void };

const FUTEX_WAITERS = 0x80000000 | 0;
const FUTEX_OWNER_DIED = 0x40000000;
const FUTEX_TID_MASK = 0x3fffffff;
const thisFile = fileURLToPath(import.meta.url);
const prefix = `/ipt-${process.pid}-`;
const madeSysv = new Set<number>();
const tmp = tempDir('mutex');

// ---------------------------------------------------------------------------
// Assertions and waiting




function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
  });
  return Promise.race([p, expired]).finally(() => clearTimeout(timer));
}

/** Polls `cond` until it holds (failing after `ms`), letting the event loop run. */
async function until(cond: () => boolean, what: string | (() => string), ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${typeof what === 'string' ? what : what()}`);
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

const nap = new Int32Array(new SharedArrayBuffer(4));
/** As until(), but blocking this thread: no callback of the event loop runs meanwhile. */
function blockUntil(cond: () => boolean, what: string, ms = 15_000): void {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out (blocking) waiting until ${what}`);
    Atomics.wait(nap, 0, 0, 1);
  }
}

function threadCount(pid: number | 'self' = 'self'): number {
  return Number(/^Threads:\s+(\d+)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);
}

function tasks(): Set<number> {
  return new Set(readdirSync('/proc/self/task').map(Number));
}

/** Whether thread `tid` of process `pid` sleeps in a futex (pthread_mutex_lock, a watcher, Atomics.wait). */
function inFutex(pid: number | 'self', tid: number = pid === 'self' ? process.pid : pid): boolean {
  try {
    return /futex/.test(readFileSync(`/proc/${pid}/task/${tid}/wchan`, 'utf8'));
  } catch {
    return false;
  }
}

/** The lock word at `offset` of `buffer`. */
function lockWord(buffer: SharedArrayBuffer, offset: number): () => number {
  const w = new Int32Array(buffer, offset, 1);
  return () => Atomics.load(w, 0);
}

/** Marks `p` handled now: its rejection is reported where the test awaits it, not as unhandled meanwhile. */
function later<T>(p: Promise<T>): Promise<T> {
  p.catch(() => {});
  return p;
}

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

// ---------------------------------------------------------------------------
// Kernel objects, removed after each test


function posixShm(t: TestContext, size = 4096): { name: string; shm: posix.SharedMemory; buffer: SharedArrayBuffer } {
  const name = uniqueName('mx');
  const shm = posix.SharedMemory.create(name, { size });
  t.after(() => {
    shm.close();
    unlinkQuietly(name);
  });
  return { name, shm, buffer: shm.buffer };
}

function removeSysvQuietly(id: number): void {
  try {
    sysv.SharedMemory.remove(id);
  } catch (err) {
    if (!(err instanceof InvalidArgumentError)) throw err;
  }
}

function sysvShm(t: TestContext, size = 4096): sysv.SharedMemory {
  const shm = sysv.SharedMemory.create({ size });
  madeSysv.add(shm.id);
  t.after(() => {
    removeSysvQuietly(shm.id);
    shm.close();
  });
  return shm;
}

/** Closes the handle after the test. */
function closing<T extends { close(): void }>(t: TestContext, h: T): T {
  t.after(() => h.close());
  return h;
}

// ---------------------------------------------------------------------------
// Peers: one command a line in, one answer a line out

class Lines {
  readonly what: string;
  #lines: string[] = [];
  #waiting: { resolve: (l: string) => void; reject: (e: Error) => void }[] = [];
  #ended: Error | undefined;

  constructor(what: string) {
    this.what = what;
  }

  protected push(line: string): void {
    const w = this.#waiting.shift();
    if (w) w.resolve(line);
    else this.#lines.push(line);
  }

  protected end(err: Error): void {
    this.#ended = err;
    for (const w of this.#waiting.splice(0)) w.reject(err);
  }

  /** The next line (failing after `ms`). */
  line(ms = 15_000): Promise<string> {
    const l = this.#lines.shift();
    if (l !== undefined) return Promise.resolve(l);
    if (this.#ended) return Promise.reject(this.#ended);
    return new Promise((resolve, reject) => {
      const w = {
        resolve: (x: string) => {
          clearTimeout(timer);
          resolve(x);
        },
        reject: (e: Error) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      const timer = setTimeout(() => {
        this.#waiting.splice(this.#waiting.indexOf(w), 1);
        reject(new Error(`${this.what}: no line within ${ms} ms${this.details()}`));
      }, ms);
      this.#waiting.push(w);
    });
  }

  protected details(): string {
    return '';
  }
}

class Peer extends Lines {
  readonly child: ChildProcess;
  #stderr = '';

  constructor(child: ChildProcess, what: string) {
    super(what);
    this.child = child;
    let buf = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      buf += d;
      for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
        this.push(buf.slice(0, i));
        buf = buf.slice(i + 1);
      }
    });
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (this.#stderr += d));
    child.on('close', (code, signal) => this.end(new Error(`${what} exited (${code ?? signal})${this.details()}`)));
    child.on('error', (err) => this.end(err));
  }

  protected override details(): string {
    return this.#stderr ? `; stderr: ${this.#stderr}` : '';
  }

  get pid(): number {
    return this.child.pid!;
  }

  send(cmd: string): void {
    this.child.stdin!.write(cmd + '\n');
  }

  ask(cmd: string, ms?: number): Promise<string> {
    this.send(cmd);
    return this.line(ms);
  }

  /** SIGKILL, resolved once the process is gone (and the kernel has marked the locks it held). */
  async kill(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = once(this.child, 'exit');
    this.child.kill('SIGKILL');
    await exited;
  }
}

const peerPath = compilePeer('mutex_peer', ['-pthread', `-I${join(root, 'include')}`]);
peerPath.catch(() => {}); // reported by the tests that await it

/** Starts mutex_peer on WHERE (named:/N, posix:/N:OFF, sysv:ID:OFF); killed after the test. */
async function cPeer(t: TestContext, where: string, ...more: string[]): Promise<Peer> {
  const child = spawn(await peerPath, [where, ...more], { stdio: ['pipe', 'pipe', 'pipe'] });
  const peer = new Peer(child, `mutex_peer ${where} ${more.join(' ')}`);
  t.after(() => peer.kill());
  return peer;
}

/** The Node peer: the same commands as mutex_peer, answered with the Mutex API's results or error names. */
const NODE_PEER = `
import { Mutex, posix, sysv } from 'interprocess';
import { createInterface } from 'node:readline';
const where = process.argv[1];
let m;
let buf;
if (where.startsWith('named:')) m = Mutex.open(where.slice(6));
else {
  const [kind, ref, off] = where.split(':');
  buf = (kind === 'posix' ? posix.SharedMemory.open(ref) : sysv.SharedMemory.attach(Number(ref))).buffer;
  m = Mutex.at(buf, Number(off));
}
const opts = (ms) => (ms === undefined ? undefined : { timeout: Number(ms) });
async function count(n, at, mode) {
  const c = new Int32Array(buf, Number(at), 1);
  let died = 0;
  for (let i = 0; i < n; i++) {
    const r = mode === 'sync' ? m.lockSync() : await m.lock();
    if (r === 'owner-died') { died++; m.markConsistent(); }
    c[0] = c[0] + 1;
    m.unlock();
  }
  return 'done ' + died;
}
// Until killed: lock, a += 1, b += 1, unlock. Under the lock a === b.
async function loop(at, mode) {
  const c = new Int32Array(buf, Number(at), 2);
  for (let i = 0; ; i++) {
    if (mode === 'sync') m.lockSync(); else await m.lock();
    c[0] = c[0] + 1;
    c[1] = c[1] + 1;
    m.unlock();
    if (i === 1000) console.log('running');
  }
}
const ops = {
  tryLock: () => m.tryLock(),
  lockSync: (ms) => m.lockSync(opts(ms)),
  lock: (ms) => m.lock(opts(ms)),
  unlock: () => (m.unlock(), 'OK'),
  consistent: () => (m.markConsistent(), 'OK'),
  owner: () => m.ownerTid,
  count: (n, at, mode) => count(Number(n), at, mode),
  loop,
};
console.log('ready');
for await (const line of createInterface({ input: process.stdin })) {
  const [cmd, ...args] = line.trim().split(' ');
  let out;
  try { out = await ops[cmd](...args); } catch (e) { out = e.name + ' ' + e.code; }
  console.log(cmd + ' ' + out);
}
`;

/** Starts a Node peer on WHERE and waits until it is ready; killed after the test. */
async function nodePeer(t: TestContext, where: string): Promise<Peer> {
  const peer = new Peer(spawnNode(NODE_PEER, [where], { stdio: ['pipe', 'pipe', 'pipe'] }), `node peer ${where}`);
  t.after(() => peer.kill());
  assert.equal(await peer.line(30_000), 'ready');
  return peer;
}

const WORKER_CODE = `
const { parentPort, workerData } = require('node:worker_threads');
const { sab, off, url } = workerData;
const nap = new Int32Array(new SharedArrayBuffer(4));
import(url).then(({ Mutex }) => {
  const m = Mutex.at(sab, off);
  const word = new Int32Array(sab, off, 1);
  const ops = {
    tryLock: () => m.tryLock(),
    lock: () => m.lock({ timeout: 20000 }),
    lockSync: () => m.lockSync({ timeout: 20000 }),
    unlock: () => (m.unlock(), 'OK'),
    owner: () => m.ownerTid,
    // Unlocks once someone sleeps on the lock (FUTEX_WAITERS set).
    handoff: () => {
      const end = Date.now() + 20000;
      while (!(Atomics.load(word, 0) & 0x80000000) && Date.now() < end) Atomics.wait(nap, 0, 0, 1);
      m.unlock();
      return 'OK';
    },
  };
  let chain = Promise.resolve();
  parentPort.on('message', (cmd) => {
    chain = chain.then(async () => {
      let out;
      try { out = await ops[cmd](); } catch (e) { out = e.name + ' ' + e.code; }
      parentPort.postMessage(cmd + ' ' + out);
    });
  });
  parentPort.postMessage('ready');
});
`;

class WorkerPeer extends Lines {
  readonly worker: Worker;
  constructor(sab: SharedArrayBuffer, off: number) {
    super('worker');
    this.worker = new Worker(WORKER_CODE, { eval: true, workerData: { sab, off, url: pathToFileURL(join(root, 'dist', 'index.js')).href } });
    this.worker.on('message', (l: string) => this.push(l));
    this.worker.on('error', (err) => this.end(err));
    this.worker.on('exit', (code) => this.end(new Error(`worker exited (${code})`)));
  }
  send(cmd: string): void {
    this.worker.postMessage(cmd);
  }
  ask(cmd: string, ms?: number): Promise<string> {
    this.send(cmd);
    return this.line(ms);
  }
}

after(() => {
  tmp.cleanup();
  const left = shmEntries(prefix);
  for (const f of left) unlinkQuietly('/' + f);
  assert.deepEqual(left, [], '/dev/shm entries left behind');
  for (const id of madeSysv) {
    let mode: number;
    try {
      mode = sysv.SharedMemory.stat(id).mode;
    } catch (err) {
      if (err instanceof InvalidArgumentError) continue; // gone
      throw err;
    }
    // Still attached somewhere (this process until GC): it must be marked for removal (SHM_DEST).
    assert.ok(mode & 0o1000, `System V segment ${id} left behind`);
  }
});

// ---------------------------------------------------------------------------

test("MUTEX_SIZE and MUTEX_ALIGN are glibc's pthread_mutex_t; init/at check the buffer, alignment and room before touching memory", () => {
  assert.equal(MUTEX_SIZE, 40);
  assert.equal(MUTEX_ALIGN, 8);
  const sab = new SharedArrayBuffer(128);
  const bytes = new Uint8Array(sab).fill(0xa5);
  for (const make of [Mutex.init, Mutex.at]) {
    throwsLike(() => make(sab, 4), InvalidArgumentError, { code: 'ERR_INVALID_ARG_VALUE', message: 'byteOffset must be a multiple of 8, got 4' });
    throwsLike(() => make(sab, 92), InvalidArgumentError, { message: /multiple of 8/ });
    throwsLike(() => make(sab, 96), InvalidArgumentError, { message: 'a mutex needs 40 bytes at offset 96; the buffer has 128' });
    throwsLike(() => make(sab, 128), InvalidArgumentError, { message: /needs 40 bytes/ });
    throwsLike(() => make(new SharedArrayBuffer(32)), InvalidArgumentError, { message: /needs 40 bytes at offset 0; the buffer has 32/ });
    for (const bad of [-8, 1.5, NaN, '8']) throwsLike(() => make(sab, bad as number), InvalidArgumentError, { message: /byteOffset/ });
    throwsLike(() => make(new ArrayBuffer(64) as unknown as SharedArrayBuffer), InvalidArgumentError, { code: 'ERR_INVALID_ARG_TYPE', message: /SharedArrayBuffer/ });
    throwsLike(() => make(new Uint8Array(64) as unknown as SharedArrayBuffer), InvalidArgumentError, { code: 'ERR_INVALID_ARG_TYPE' });
  }
  assert.ok(bytes.every((b) => b === 0xa5), 'a rejected init wrote nothing');
  // The last aligned place that fits, and the default offset 0.
  const last = Mutex.init(sab, 88);
  const first = Mutex.init(sab);
  assert.equal(last.name, undefined);
  assert.equal(last.tryLock(), 'locked');
  assert.equal(first.tryLock(), 'locked');
  assert.equal(last.ownerTid, process.pid);
  last.unlock();
  first.unlock();
  assert.equal(Mutex.at(sab, 88).ownerTid, 0);
});

test('named mutex: create (mode, exclusive), the header C relies on, open by Node and C processes, unlink', async (t) => {
  const name = uniqueName('named');
  t.after(() => unlinkQuietly(name));
  const m = closing(t, Mutex.create(name, { mode: 0o640 }));
  assert.equal(m.name, name);
  const st = statSync(`/dev/shm${name}`);
  assert.equal(st.mode & 0o777, 0o640 & ~process.umask());
  assert.equal(st.size, 128);
  const raw = closing(t, posix.SharedMemory.open(name));
  const dv = new DataView(raw.buffer);
  assert.equal(dv.getUint32(0, true), 0x786d7069, 'magic');
  assert.equal(dv.getUint16(4, true), 1, 'layout version');
  assert.equal(dv.getUint16(6, true), 1, 'kind: mutex');
  assert.equal(dv.getInt32(8, true), process.pid, 'creator pid');
  assert.ok(new Uint8Array(raw.buffer, 16, 48).every((b) => b === 0), 'reserved bytes are zero');

  // The lock is at offset 64: its word names this (main) thread while held.
  assert.equal(m.tryLock(), 'locked');
  assert.equal(m.held, true);
  assert.equal(dv.getInt32(64, true) & FUTEX_TID_MASK, process.pid);
  assert.equal(m.ownerTid, process.pid);

  const c = await cPeer(t, `named:${name}`);
  assert.equal(await c.ask('trylock'), 'trylock EBUSY');
  c.send('lock');
  await until(() => inFutex(c.pid), 'the C peer sleeps in pthread_mutex_lock');
  m.unlock();
  assert.equal(await c.line(), 'lock OK');
  assert.equal(m.ownerTid, c.pid);
  assert.equal(m.tryLock(), 'busy');

  const n = await nodePeer(t, `named:${name}`);
  assert.equal(await n.ask('owner'), `owner ${c.pid}`);
  assert.equal(await n.ask('tryLock'), 'tryLock busy');
  assert.equal(await c.ask('unlock'), 'unlock OK');
  assert.equal(await n.ask('tryLock'), 'tryLock locked');
  assert.equal(m.ownerTid, n.pid);
  assert.equal(await c.ask('trylock'), 'trylock EBUSY');
  assert.equal(await n.ask('unlock'), 'unlock OK');

  // Exclusive by default; exclusive:false and open() reach the same lock.
  throwsLike(() => Mutex.create(name), AlreadyExistsError, { code: 'EEXIST', syscall: 'shm_open', path: name });
  const again = closing(t, Mutex.create(name, { exclusive: false }));
  const opened = closing(t, Mutex.open(name));
  assert.equal(again.name, name);
  assert.equal(again.tryLock(), 'locked');
  assert.equal(await c.ask('trylock'), 'trylock EBUSY');
  assert.equal(opened.tryLock(), 'busy');
  again.unlock();
  assert.equal(opened.tryLock(), 'locked');
  assert.equal(await n.ask('tryLock'), 'tryLock busy');
  opened.unlock();
  assert.equal(dv.getInt32(8, true), process.pid, 'opening did not rewrite the header');

  // Default mode 0o600; exclusive:false on a free name creates.
  const other = uniqueName('named');
  t.after(() => unlinkQuietly(other));
  const made = closing(t, Mutex.create(other, { exclusive: false }));
  assert.equal(statSync(`/dev/shm${other}`).mode & 0o777, 0o600);
  assert.equal(made.tryLock(), 'locked');
  made.unlock();

  // unlink removes the name; handles already open keep sharing the lock.
  Mutex.unlink(name);
  assert.equal(existsSync(`/dev/shm${name}`), false);
  assert.equal(m.tryLock(), 'locked');
  assert.equal(await c.ask('trylock'), 'trylock EBUSY');
  assert.equal(await n.ask('tryLock'), 'tryLock busy');
  m.unlock();
  throwsLike(() => Mutex.open(name), NotFoundError, { code: 'ENOENT', errno: -2, syscall: 'shm_open', path: name });
  throwsLike(() => Mutex.unlink(name), NotFoundError, { code: 'ENOENT', syscall: 'shm_unlink', path: name });
  throwsLike(() => Mutex.create('no-slash'), InvalidArgumentError);
});

test('opening something that is not a mutex fails at once with a clear error, leaving it alone and no descriptor behind', async (t) => {
  const header = (buffer: SharedArrayBuffer, kind: number, version = 1): void => {
    const dv = new DataView(buffer);
    dv.setUint16(4, version, true);
    dv.setUint16(6, kind, true);
    dv.setInt32(8, process.pid, true);
    Atomics.store(new Int32Array(buffer, 0, 1), 0, 0x786d7069);
  };
  const junk = posixShm(t, 128);
  new Uint8Array(junk.buffer).fill(0x5a);
  const cond = posixShm(t, 128);
  header(cond.buffer, 2);
  const future = posixShm(t, 128);
  header(future.buffer, 1, 2);
  const tiny = posixShm(t, 16); // no room for a header
  const short = posixShm(t, 96); // a mutex header, no room for the mutex
  header(short.buffer, 1);

  const fds = (): number => readdirSync('/proc/self/fd').length;
  const before = fds();
  const t0 = performance.now();
  for (let i = 0; i < 10; i++) {
    throwsLike(() => Mutex.open(junk.name), InvalidArgumentError, { message: `'${junk.name}' is not an interprocess mutex (no valid header)` });
    throwsLike(() => Mutex.create(junk.name, { exclusive: false }), InvalidArgumentError, { message: /is not an interprocess mutex/ });
    throwsLike(() => Mutex.open(cond.name), InvalidArgumentError, { message: `'${cond.name}' is an interprocess condition, not a mutex` });
    throwsLike(() => Mutex.open(future.name), IpcError, { code: 'ERR_LAYOUT_VERSION', path: future.name, message: /has layout version 2; this build understands 1/ });
    throwsLike(() => Mutex.open(tiny.name), InvalidArgumentError, { message: /is not an interprocess mutex \(no valid header\)/ });
    throwsLike(() => Mutex.open(short.name), InvalidArgumentError, { message: 'a mutex needs 40 bytes at offset 64; the buffer has 96' });
  }
  assert.equal(fds(), before, 'every failed open closed its descriptor');
  assert.ok(performance.now() - t0 < 1000, 'no waiting for a header that is already wrong');
  assert.ok(new Uint8Array(junk.buffer).every((b) => b === 0x5a), 'the object was not written');
  assert.ok(existsSync(`/dev/shm${junk.name}`), 'nor unlinked');
  assert.equal(new DataView(cond.buffer).getUint16(6, true), 2);

  // The C side's check (ipx_named_object) refuses them too.
  for (const bad of [junk.name, cond.name, future.name]) {
    const c = await cPeer(t, `named:${bad}`);
    await rejectsLike(c.line(), Error, { message: new RegExp(`exited \\(1\\).*${bad} is not a named mutex`) });
  }
});

test('an opener racing the creator waits for the header (C creator, Node opener); a header that never comes fails after 2 s', async (t) => {
  const OPENER = `
    import { Mutex, posix } from 'interprocess';
    const name = process.argv[1];
    const raw = posix.SharedMemory.open(name);
    console.log('magic ' + Atomics.load(new Int32Array(raw.buffer, 0, 1), 0));
    const t0 = performance.now();
    try {
      const m = Mutex.open(name);
      const r = m.tryLock();
      const owner = m.ownerTid;
      m.unlock();
      console.log('opened ' + r + ' ' + owner);
    } catch (e) {
      console.log('failed ' + Math.round(performance.now() - t0) + ' ' + e.name + ' ' + e.message);
    }`;
  // An object whose creator never finishes: all zero.
  const stuck = posixShm(t, 128);
  const stuckOpener = new Peer(spawnNode(OPENER, [stuck.name]), 'stuck opener');
  t.after(() => stuckOpener.kill());

  const name = uniqueName('race');
  t.after(() => unlinkQuietly(name));
  const creator = await cPeer(t, 'create', name);
  assert.equal(await creator.line(), 'sized');
  const opener = new Peer(spawnNode(OPENER, [name]), 'opener');
  t.after(() => opener.kill());
  assert.equal(await opener.line(30_000), 'magic 0');
  // Its main thread can sleep in a futex now only in the header wait.
  await until(() => inFutex(opener.pid), 'the opener waits for the header');
  creator.send('go');
  assert.equal(await creator.line(), 'created');
  assert.equal(await opener.line(), `opened locked ${opener.pid}`);

  // This process uses the C-created named mutex too, with C's header.
  const m = closing(t, Mutex.open(name));
  assert.equal(m.tryLock(), 'locked');
  m.unlock();
  const raw = closing(t, posix.SharedMemory.open(name));
  assert.equal(new DataView(raw.buffer).getInt32(8, true), creator.pid);

  assert.equal(await stuckOpener.line(30_000), 'magic 0');
  const failed = await stuckOpener.line(30_000);
  const match = /^failed (\d+) InvalidArgumentError (.*)$/.exec(failed);
  assert.ok(match, failed);
  assert.equal(match[2], `'${stuck.name}' is not an interprocess mutex (no valid header)`);
  assert.ok(Number(match[1]) >= 1900 && Number(match[1]) < 10_000, `gave up after ${match[1]} ms`);
});

test('Mutex.create(name, { exclusive: false }) from 6 Node processes at once: one creates, all share one lock (exact count)', async (t) => {
  const P = 6;
  const N = 20_000;
  const name = uniqueName('crowd');
  t.after(() => unlinkQuietly(name));
  const data = posixShm(t);
  const counter = new Int32Array(data.buffer, 0, 1);
  const code = `
    import { Mutex, posix } from 'interprocess';
    const [name, dataName, n] = process.argv.slice(1);
    const c = new Int32Array(posix.SharedMemory.open(dataName).buffer, 0, 1);
    console.log('ready');
    process.stdin.once('data', () => {
      const m = Mutex.create(name, { exclusive: false });
      for (let i = 0; i < Number(n); i++) { m.lockSync(); c[0] = c[0] + 1; m.unlock(); }
      console.log('done');
      process.exit(0);
    });`;
  const peers = range(P).map((i) => {
    const p = new Peer(spawnNode(code, [name, data.name, String(N)], { stdio: ['pipe', 'pipe', 'pipe'] }), `creator ${i}`);
    t.after(() => p.kill());
    return p;
  });
  for (const p of peers) assert.equal(await p.line(30_000), 'ready');
  for (const p of peers) p.send('go');
  for (const p of peers) assert.equal(await p.line(30_000), 'done');
  assert.equal(Atomics.load(counter, 0), P * N);
  const raw = closing(t, posix.SharedMemory.open(name));
  const creator = new DataView(raw.buffer).getInt32(8, true);
  assert.ok(peers.some((p) => p.pid === creator), `the header names one of them as creator (${creator})`);
  assert.equal(lockWord(raw.buffer, 64)(), 0);
});

test('a mutex placed in POSIX and in System V shared memory is shared with a C process and a Node process; one C initialised is used by Node', async (t) => {
  const places = [
    { kind: 'posix', ...(() => { const p = posixShm(t); return { buffer: p.buffer, where: `posix:${p.name}` }; })() },
    { kind: 'sysv', ...(() => { const s = sysvShm(t); return { buffer: s.buffer, where: `sysv:${s.id}` }; })() },
  ];
  for (const { kind, buffer, where } of places) {
    // Initialised here, at offset 64.
    const m = closing(t, Mutex.init(buffer, 64));
    const word = lockWord(buffer, 64);
    const c = await cPeer(t, `${where}:64`);
    const n = await nodePeer(t, `${where}:64`);
    assert.equal(m.tryLock(), 'locked', kind);
    assert.equal(await c.ask('trylock'), 'trylock EBUSY', kind);
    assert.equal(await n.ask('tryLock'), 'tryLock busy', kind);
    assert.equal(await n.ask('owner'), `owner ${process.pid}`, kind);
    n.send('lock');
    await until(() => (word() & FUTEX_WAITERS) !== 0, `${kind}: the Node process waits`);
    m.unlock();
    assert.equal(await n.line(), 'lock locked', kind);
    assert.equal(m.ownerTid, n.pid, kind);
    c.send('lock');
    await until(() => inFutex(c.pid), `${kind}: the C process waits`);
    assert.equal(await n.ask('unlock'), 'unlock OK', kind);
    assert.equal(await c.line(), 'lock OK', kind);
    assert.equal(m.tryLock(), 'busy', kind);
    assert.equal(m.ownerTid, c.pid, kind);
    assert.equal(await c.ask('unlock'), 'unlock OK', kind);
    assert.equal(m.ownerTid, 0, kind);

    // Initialised by C (ipx_mutex_init) over garbage, at offset 128.
    new Uint8Array(buffer, 128, MUTEX_SIZE).fill(0xff);
    const c2 = await cPeer(t, `${where}:128`);
    assert.equal(await c2.ask('init'), 'init OK', kind);
    assert.equal(await c2.ask('lock'), 'lock OK', kind);
    const m2 = closing(t, Mutex.at(buffer, 128));
    assert.equal(m2.tryLock(), 'busy', kind);
    assert.equal(m2.ownerTid, c2.pid, kind);
    const waiting = later(m2.lock({ timeout: 20_000 }));
    await until(() => (lockWord(buffer, 128)() & FUTEX_WAITERS) !== 0, `${kind}: lock() waits`);
    assert.equal(await c2.ask('unlock'), 'unlock OK', kind);
    assert.equal(await waiting, 'locked', kind);
    assert.equal(await c2.ask('trylock'), 'trylock EBUSY', kind);
    m2.unlock();
    assert.equal(await c2.ask('trylock'), 'trylock OK', kind);
    assert.equal(await c2.ask('unlock'), 'unlock OK', kind);
    assert.equal(m.ownerTid, 0, `${kind}: the two mutexes are distinct`);
  }
});

test('lock(), lockSync() and tryLock(): results, held and ownerTid, timeouts (also C timing out on Node), options checked', async (t) => {
  const { name, buffer } = posixShm(t);
  const m = closing(t, Mutex.init(buffer, 0));
  assert.equal(m.held, false);
  assert.equal(m.ownerTid, 0);
  assert.equal(await m.lock(), 'locked');
  assert.equal(m.held, true);
  assert.equal(m.ownerTid, process.pid);
  m.unlock();
  assert.equal(m.held, false);
  assert.equal(m.ownerTid, 0);
  assert.equal(m.lockSync(), 'locked');
  m.unlock();
  assert.equal(m.lockSync({ timeout: 0 }), 'locked', 'timeout 0 tries once');
  m.unlock();
  assert.equal(await m.lock({ timeout: 0 }), 'locked');
  m.unlock();
  assert.equal(await m.lock({ timeout: 1000, signal: new AbortController().signal }), 'locked');
  m.unlock();

  const c = await cPeer(t, `posix:${name}:0`);
  assert.equal(await c.ask('lock'), 'lock OK');
  assert.equal(m.tryLock(), 'busy');
  assert.equal(m.held, false);
  let t0 = performance.now();
  throwsLike(() => m.lockSync({ timeout: 100 }), TimeoutError, {
    code: 'ETIMEDOUT',
    errno: -110,
    syscall: 'pthread_mutex_clocklock',
    message: 'ETIMEDOUT: timed out, pthread_mutex_clocklock',
  });
  let elapsed = performance.now() - t0;
  assert.ok(elapsed >= 95 && elapsed < 5000, `lockSync timed out after ${elapsed} ms`);
  throwsLike(() => m.lockSync({ timeout: 0 }), TimeoutError);
  t0 = performance.now();
  await rejectsLike(m.lock({ timeout: 100 }), TimeoutError, { code: 'ETIMEDOUT', errno: -110, syscall: 'pthread_mutex_lock' });
  elapsed = performance.now() - t0;
  assert.ok(elapsed >= 95 && elapsed < 5000, `lock timed out after ${elapsed} ms`);
  await rejectsLike(m.lock({ timeout: 0 }), TimeoutError);
  assert.equal(m.held, false);
  assert.equal(m.ownerTid, c.pid);

  // lockSync blocks this thread until C (which unlocks once it sees a sleeper) lets go.
  c.send('handoff');
  assert.equal(m.lockSync({ timeout: 20_000 }), 'locked');
  assert.equal(await c.line(), 'handoff OK');
  assert.equal(await c.ask('timedlock 50'), 'timedlock ETIMEDOUT');
  c.send('timedlock 20000');
  await until(() => inFutex(c.pid), 'C waits in pthread_mutex_clocklock');
  m.unlock();
  assert.equal(await c.line(), 'timedlock OK');
  c.send('handoff');
  assert.equal(m.lockSync(), 'locked');
  assert.equal(await c.line(), 'handoff OK');
  m.unlock();

  // Options are checked before anything is tried.
  await rejectsLike(m.lock({ timeout: -1 }), InvalidArgumentError, { code: 'ERR_OUT_OF_RANGE', message: /timeout must be a non-negative number/ });
  await rejectsLike(m.lock({ timeout: NaN }), InvalidArgumentError, { code: 'ERR_OUT_OF_RANGE' });
  throwsLike(() => m.lockSync({ timeout: -5 }), InvalidArgumentError, { code: 'ERR_OUT_OF_RANGE' });
  await rejectsLike(m.lock({ signal: {} as AbortSignal }), InvalidArgumentError, { code: 'ERR_INVALID_ARG_TYPE', message: /AbortSignal/ });
  const reason = new Error('changed my mind');
  const aborted = await rejectsLike(m.lock({ signal: AbortSignal.abort(reason) }), AbortError, { code: 'ABORT_ERR', name: 'AbortError' });
  assert.equal(aborted.cause, reason);
  assert.equal(m.held, false);
  assert.equal(m.ownerTid, 0, 'nothing was taken');
});

test('withLock(fn) and acquire(): the value, release on return and on throw; `using guard = await m.acquire()`', async (t) => {
  const { name, buffer } = posixShm(t);
  const m = closing(t, Mutex.init(buffer, 0));
  const c = await cPeer(t, `posix:${name}:0`);

  const value = await m.withLock(async (r) => {
    assert.equal(r, 'locked');
    assert.equal(m.held, true);
    assert.equal(await c.ask('trylock'), 'trylock EBUSY');
    return 42;
  });
  assert.equal(value, 42);
  assert.equal(m.held, false);
  assert.equal(m.ownerTid, 0);
  await rejectsLike(
    m.withLock(() => {
      throw new RangeError('boom');
    }),
    RangeError,
    { message: 'boom' },
  );
  assert.equal(m.held, false);
  assert.equal(m.ownerTid, 0);
  assert.equal(await m.withLock((r) => r), 'locked', 'a synchronous fn');

  {
    using guard = await m.acquire();
    assert.equal(guard.result, 'locked');
    assert.equal(m.held, true);
    assert.equal(await c.ask('trylock'), 'trylock EBUSY');
  }
  assert.equal(m.held, false);
  assert.equal(await c.ask('trylock'), 'trylock OK');

  // While C holds: acquire and withLock wait, or time out without calling fn.
  let called = false;
  await rejectsLike(
    m.withLock(() => (called = true), { timeout: 50 }),
    TimeoutError,
  );
  assert.equal(called, false);
  await rejectsLike(m.acquire({ timeout: 50 }), TimeoutError);
  const acquiring = later(m.acquire({ timeout: 20_000 }));
  await until(() => (lockWord(buffer, 0)() & FUTEX_WAITERS) !== 0, 'acquire() waits');
  assert.equal(await c.ask('unlock'), 'unlock OK');
  {
    using guard = await acquiring;
    assert.equal(guard.result, 'locked');
    assert.equal(m.ownerTid, process.pid);
  }
  assert.equal(m.ownerTid, 0);

  // A block left by an exception releases too; release() is idempotent with the disposal.
  await assert.rejects(async () => {
    using guard = await m.acquire();
    assert.equal(guard.result, 'locked');
    throw new Error('inside');
  }, /inside/);
  assert.equal(m.ownerTid, 0);
  const g = await m.acquire();
  g.release();
  assert.equal(m.held, false);
  g.release();
  g[Symbol.dispose]();
  assert.equal(await c.ask('trylock'), 'trylock OK', 'a second release did not unlock C');
  assert.equal(await c.ask('unlock'), 'unlock OK');
});

test('a non-atomic counter incremented under the lock by 2, then 8 Node processes x 100 000 (sync and async): the count is exact', async (t) => {
  const N = 100_000;
  const { name, buffer } = posixShm(t);
  closing(t, Mutex.init(buffer, 0));
  const counter = new Int32Array(buffer, 64, 1);
  const peers = await Promise.all(range(8).map(() => nodePeer(t, `posix:${name}:0`)));
  for (const [k, mode] of [
    [2, 'sync'],
    [2, 'async'],
    [8, 'sync'],
    [8, 'async'],
  ] as const) {
    Atomics.store(counter, 0, 0);
    const t0 = performance.now();
    const answers = await Promise.all(peers.slice(0, k).map((p) => p.ask(`count ${N} 64 ${mode}`, 55_000)));
    const ms = performance.now() - t0;
    assert.deepEqual(answers, Array(k).fill('count done 0'));
    assert.equal(Atomics.load(counter, 0), k * N, `${k} processes, ${mode}`);
    t.diagnostic(`${k} processes x ${N} ${mode}: ${ms.toFixed(0)} ms`);
    assert.ok(ms < 50_000, `${k} x ${N} ${mode} took ${ms} ms`);
  }
  assert.equal(lockWord(buffer, 0)() & FUTEX_TID_MASK, 0);
});

test('a C process, a Node process (sync), a Node process (async) and this process share one counter in System V memory: exact count', async (t) => {
  const N = 100_000;
  const MINE = 30_000;
  const seg = sysvShm(t);
  const where = `sysv:${seg.id}:0`;
  const c = await cPeer(t, where);
  assert.equal(await c.ask('init'), 'init OK');
  const m = closing(t, Mutex.at(seg.buffer, 0));
  const counter = new Int32Array(seg.buffer, 64, 1);
  const [syncPeer, asyncPeer] = await Promise.all([nodePeer(t, where), nodePeer(t, where)]);
  const t0 = performance.now();
  const answers = later(Promise.all([c.ask(`count ${N} 64`, 55_000), syncPeer.ask(`count ${N} 64 sync`, 55_000), asyncPeer.ask(`count ${N} 64 async`, 55_000)]));
  for (let i = 0; i < MINE; i++) {
    assert.equal(await m.lock({ timeout: 20_000 }), 'locked');
    counter[0] = counter[0] + 1;
    m.unlock();
  }
  assert.deepEqual(await answers, ['count done 0', 'count done 0', 'count done 0']);
  t.diagnostic(`C + 2 Node processes x ${N} + this process x ${MINE}: ${(performance.now() - t0).toFixed(0)} ms`);
  assert.equal(Atomics.load(counter, 0), 3 * N + MINE);
  assert.equal(m.ownerTid, 0);
});

test('kill -9 of a Node holder at random moments, 30 rounds: the survivor always gets the lock, "owner-died" exactly when the child died holding it', async (t) => {
  const ROUNDS = 30;
  const { name, buffer } = posixShm(t);
  const m = closing(t, Mutex.init(buffer, 0));
  const word = lockWord(buffer, 0);
  const pair = new Int32Array(buffer, 64, 2); // a, b: the child keeps a === b under the lock
  const where = `posix:${name}:0`;
  let next: Promise<Peer> = later(nodePeer(t, where));
  const tally = { 'owner-died': 0, locked: 0 };
  const t0 = performance.now();
  for (let round = 0; round < ROUNDS; round++) {
    const child = await next;
    if (round + 1 < ROUNDS) next = later(nodePeer(t, where)); // starts while this round runs
    const before = pair[0];
    const mode = round % 2 === 0 ? 'sync' : 'async';
    child.send(`loop 64 ${mode}`);
    assert.equal(await child.line(), 'running', `round ${round}`);
    await new Promise((resolve) => setTimeout(resolve, randomInt(0, 12)));
    await child.kill();

    const w = word();
    const diedHolding = (w & FUTEX_OWNER_DIED) !== 0;
    assert.equal(w & FUTEX_TID_MASK, 0, `round ${round}: the kernel cleared the dead owner (word ${w.toString(16)})`);
    const how = ['lock', 'lockSync', 'tryLock'][round % 3];
    const r: LockResult | 'busy' = how === 'lock' ? await m.lock({ timeout: 10_000 }) : how === 'lockSync' ? m.lockSync({ timeout: 10_000 }) : m.tryLock();
    assert.equal(r, diedHolding ? 'owner-died' : 'locked', `round ${round} (${mode} child, survivor ${how})`);
    const [a, b] = [pair[0], pair[1]];
    assert.ok(a > before, `round ${round}: the child made progress`);
    if (r === 'owner-died') {
      assert.ok(a - b === 0 || a - b === 1, `round ${round}: a=${a} b=${b}`);
      pair[1] = a; // repair
      m.markConsistent();
    } else {
      assert.equal(a, b, `round ${round}: consistent`);
    }
    tally[r as LockResult]++;
    m.unlock();
    assert.equal(word(), 0);
  }
  t.diagnostic(`${ROUNDS} rounds in ${(performance.now() - t0).toFixed(0)} ms: ${tally['owner-died']} owner-died, ${tally.locked} locked`);
  assert.ok(tally['owner-died'] >= 1, 'some child died holding the lock');
  assert.equal(m.tryLock(), 'locked', 'consistent at the end');
  m.unlock();
});

test('a holder killed while this process waits in lock(): the wait resolves "owner-died" (event loop ticking); a Node holder killed while C waits: EOWNERDEAD in C', async (t) => {
  const { name, buffer } = posixShm(t);
  const where = `posix:${name}:0`;
  const m = closing(t, Mutex.init(buffer, 0));
  const word = lockWord(buffer, 0);

  const holder = await cPeer(t, where);
  assert.equal(await holder.ask('lock'), 'lock OK');
  let ticks = 0;
  const interval = setInterval(() => ticks++, 1);
  t.after(() => clearInterval(interval));
  const waiting = later(m.lock({ timeout: 20_000 }));
  await until(() => (word() & FUTEX_WAITERS) !== 0, 'lock() waits');
  const seen = ticks;
  await until(() => ticks >= seen + 5, 'the event loop ticks while lock() waits');
  await holder.kill();
  assert.equal(await withTimeout(waiting, 5000, 'the wait ends'), 'owner-died');
  assert.equal(m.held, true);
  assert.equal(m.ownerTid, process.pid);
  m.markConsistent();
  m.unlock();
  assert.equal(m.tryLock(), 'locked', 'repaired');
  m.unlock();

  // The other way: a Node process dies holding it while a C process sleeps in pthread_mutex_lock.
  const n = await nodePeer(t, where);
  assert.equal(await n.ask('lock'), 'lock locked');
  const c = await cPeer(t, where);
  c.send('lock');
  await until(() => inFutex(c.pid), 'C waits');
  await n.kill();
  assert.equal(await c.line(), 'lock EOWNERDEAD');
  assert.equal(m.ownerTid, c.pid);
  assert.equal(m.tryLock(), 'busy');
  assert.equal(await c.ask('consistent'), 'consistent OK');
  assert.equal(await c.ask('unlock'), 'unlock OK');
  assert.equal(m.tryLock(), 'locked');
  m.unlock();

  // And a Node holder killed with no waiter: C's next lock learns it.
  const n2 = await nodePeer(t, where);
  assert.equal(await n2.ask('lockSync'), 'lockSync locked');
  await n2.kill();
  assert.equal(await c.ask('lock'), 'lock EOWNERDEAD');
  assert.equal(await c.ask('consistent'), 'consistent OK');
  assert.equal(await c.ask('unlock'), 'unlock OK');
});

test('not repaired: unlocked without markConsistent(), every lock in every process fails with NotRecoverableError, promptly; pending waits end too', async (t) => {
  const { name, buffer } = posixShm(t);
  const where = `posix:${name}:0`;
  const m = closing(t, Mutex.init(buffer, 0));
  const word = lockWord(buffer, 0);
  const holder = await cPeer(t, where);
  assert.equal(await holder.ask('lock'), 'lock OK');
  await holder.kill();
  assert.equal(word(), FUTEX_OWNER_DIED);

  const x = await nodePeer(t, where);
  assert.equal(await x.ask('lock'), 'lock owner-died');
  // Waiting meanwhile: this process (lock()), a C process (pthread_mutex_lock), another Node process (lock()).
  const baseline = threadCount();
  const mine = m.lock({ timeout: 20_000 }).then(
    (r) => r,
    (e: unknown) => e,
  );
  await until(() => threadCount() > baseline && (word() & FUTEX_WAITERS) !== 0, 'lock() waits');
  const cw = await cPeer(t, where);
  cw.send('lock');
  await until(() => inFutex(cw.pid), 'C waits');
  const y = await nodePeer(t, where);
  const yThreads = threadCount(y.pid);
  y.send('lock');
  await until(() => threadCount(y.pid) > yThreads, 'the other Node process waits');

  const t0 = performance.now();
  assert.equal(await x.ask('unlock'), 'unlock OK');
  const notRecoverable = { code: 'ENOTRECOVERABLE', errno: -131, message: /ENOTRECOVERABLE: .*markConsistent\(\)/ };
  checkError(await withTimeout(mine, 5000, 'the pending lock() ends'), NotRecoverableError, { ...notRecoverable, syscall: 'pthread_mutex_trylock' });
  assert.equal(await cw.line(5000), 'lock ENOTRECOVERABLE');
  assert.equal(await y.line(5000), 'lock NotRecoverableError ENOTRECOVERABLE');
  assert.ok(performance.now() - t0 < 5000);

  // Every later attempt, in every process, in every form.
  for (let i = 0; i < 3; i++) {
    throwsLike(() => m.tryLock(), NotRecoverableError, notRecoverable);
    throwsLike(() => m.lockSync(), NotRecoverableError, { ...notRecoverable, syscall: 'pthread_mutex_lock' });
    throwsLike(() => m.lockSync({ timeout: 5000 }), NotRecoverableError, notRecoverable);
    await rejectsLike(m.lock(), NotRecoverableError, notRecoverable);
    await rejectsLike(m.withLock(() => 1), NotRecoverableError, notRecoverable);
    assert.equal(m.held, false);
    assert.equal(m.ownerTid, 0, 'a failed attempt leaves the lock word free');
  }
  for (const p of [x, y]) {
    for (const cmd of ['tryLock', 'lockSync', 'lock', 'lockSync 5000', 'tryLock', 'lock 5000']) {
      assert.equal(await p.ask(cmd, 5000), `${cmd.split(' ')[0]} NotRecoverableError ENOTRECOVERABLE`);
    }
  }
  for (const cmd of ['lock', 'timedlock 5000', 'lock']) {
    assert.equal(await cw.ask(cmd, 5000), `${cmd.split(' ')[0]} ENOTRECOVERABLE`);
  }
  assert.equal(m.ownerTid, 0);
  // glibc's own trylock would leave the C thread's id in the word here (and
  // every later locker would hang); interprocess.h's ipx_mutex_trylock repairs it.
  assert.equal(await cw.ask('ipx_trylock', 5000), 'ipx_trylock ENOTRECOVERABLE');
  assert.equal(m.ownerTid, 0, 'ipx_mutex_trylock leaves the lock word free');
  throwsLike(() => m.lockSync({ timeout: 2000 }), NotRecoverableError, notRecoverable);
  throwsLike(() => m.unlock(), PermissionError, { code: 'EPERM' });
  throwsLike(() => m.markConsistent(), InvalidArgumentError, { code: 'EINVAL', errno: -22, syscall: 'pthread_mutex_consistent' });
});

test('withLock(fn) after an owner died: fn returning marks the mutex consistent, fn throwing leaves it unrecoverable; acquire() hands "owner-died" over', async (t) => {
  const { name, buffer } = posixShm(t);
  const where = `posix:${name}:0`;
  const m = closing(t, Mutex.init(buffer, 0));
  const state = new Int32Array(buffer, 64, 1);
  const dieHolding = async (): Promise<void> => {
    const holder = await cPeer(t, where);
    assert.equal(await holder.ask('lock'), 'lock OK');
    state[0] = -1; // half-written
    await holder.kill();
  };

  await dieHolding();
  const seen = await m.withLock((r) => {
    state[0] = 1; // repaired
    return r;
  });
  assert.equal(seen, 'owner-died');
  assert.equal(m.tryLock(), 'locked', 'consistent again');
  m.unlock();

  await dieHolding();
  {
    using guard = await m.acquire();
    assert.equal(guard.result, 'owner-died');
    state[0] = 2;
    guard.markConsistent();
  }
  assert.equal(m.tryLock(), 'locked');
  m.unlock();

  await dieHolding();
  await rejectsLike(
    m.withLock((r) => {
      assert.equal(r, 'owner-died');
      throw new Error('could not repair');
    }),
    Error,
    { message: 'could not repair' },
  );
  assert.equal(m.held, false);
  throwsLike(() => m.tryLock(), NotRecoverableError, { code: 'ENOTRECOVERABLE' });
  const c = await cPeer(t, where);
  assert.equal(await c.ask('lock', 5000), 'lock ENOTRECOVERABLE');
});

test('lock() waits without blocking the event loop or a libuv pool thread: 50 pending calls while C holds each get the lock once, one at a time; queued behind this thread they go in order', async (t) => {
  const N = 50;
  const { name, buffer } = posixShm(t);
  const m = closing(t, Mutex.init(buffer, 0));
  const c = await cPeer(t, `posix:${name}:0`);
  await fsp.readFile(thisFile); // start libuv's pool before counting threads
  const baseline = threadCount();

  assert.equal(await c.ask('lock'), 'lock OK');
  assert.equal(m.tryLock(), 'busy');
  let ticks = 0;
  const interval = setInterval(() => ticks++, 1);
  t.after(() => clearInterval(interval));
  let inside = 0;
  let overlaps = 0;
  const got: number[] = [];
  const calls = range(N).map((i) =>
    later(m.lock({ timeout: 60_000 })).then(async (r) => {
      assert.equal(r, 'locked');
      if (inside++ !== 0) overlaps++;
      got.push(i);
      await new Promise((resolve) => setImmediate(resolve));
      inside--;
      m.unlock();
    }),
  ).map(later);
  await until(() => threadCount() >= baseline + N, () => `${N} waiter threads (now ${threadCount() - baseline})`);
  const seen = ticks;
  await until(() => ticks >= seen + 10, 'the event loop ticks');
  const t0 = performance.now();
  await withTimeout(Promise.all([...range(8).map(() => fsp.readFile(thisFile, 'utf8')), fsp.stat(thisFile), fsp.readdir(tmp.dir)]), 5000, 'fs calls complete');
  const fsMs = performance.now() - t0;
  assert.ok(fsMs < 2000, `fs took ${fsMs} ms while ${N} lock() calls waited`);
  t.diagnostic(`fs calls took ${fsMs.toFixed(1)} ms with ${N} lock() calls pending`);
  assert.deepEqual(got, [], 'nobody got it while C holds it');

  assert.equal(await c.ask('unlock'), 'unlock OK');
  await withTimeout(Promise.all(calls), 20_000, `all ${N} lock() calls get the lock`);
  assert.equal(overlaps, 0, 'never two at once');
  assert.deepEqual([...got].sort((a, b) => a - b), range(N), 'each exactly once');
  assert.equal(m.ownerTid, 0);
  await until(() => threadCount() <= baseline, () => `the waiter threads end (${threadCount() - baseline} left)`);
  assert.equal(await c.ask('trylock'), 'trylock OK');
  assert.equal(await c.ask('unlock'), 'unlock OK');

  // Behind this thread's own hold they queue in order, without threads.
  assert.equal(m.lockSync(), 'locked');
  const order: number[] = [];
  const queued = range(N).map((i) =>
    m.lock().then(async (r) => {
      assert.equal(r, 'locked');
      order.push(i);
      await new Promise((resolve) => setImmediate(resolve));
      m.unlock();
    }),
  ).map(later);
  assert.ok(threadCount() <= baseline, 'no thread for calls queued behind this thread');
  m.unlock();
  await withTimeout(Promise.all(queued), 20_000, 'the queued calls');
  assert.deepEqual(order, range(N));
  assert.equal(m.ownerTid, 0);
});

test('timeout and abort leave the lock not taken: the holder releases, another process takes it, ownerTid 0; no thread outlives its wait', async (t) => {
  const { name, buffer } = posixShm(t);
  const where = `posix:${name}:0`;
  const m = closing(t, Mutex.init(buffer, 0));
  const c = await cPeer(t, where);
  const other = await cPeer(t, where);
  await fsp.readFile(thisFile);
  const baseline = threadCount();

  assert.equal(await c.ask('lock'), 'lock OK');
  const acs = range(20).map(() => new AbortController());
  const aborted = acs.map((ac) => m.lock({ signal: ac.signal }));
  const timed = range(20).map((i) => m.lock({ timeout: 100 + i }));
  // Each busy lock() starts its waiter thread before returning its promise.
  assert.ok(threadCount() >= baseline + 40, `40 waits pending (${threadCount() - baseline} threads)`);
  const reason = new Error('stop');
  const settled = [...aborted.map((p) => rejectsLike(p, AbortError, { code: 'ABORT_ERR' })), ...timed.map((p) => rejectsLike(p, TimeoutError, { code: 'ETIMEDOUT', syscall: 'pthread_mutex_lock' }))];
  for (const ac of acs) ac.abort(reason);
  for (const e of (await Promise.all(settled)).slice(0, 20)) assert.equal(e.cause, reason);
  throwsLike(() => m.lockSync({ timeout: 50 }), TimeoutError);
  assert.equal(m.held, false);
  await until(() => threadCount() <= baseline, () => `no thread left (${threadCount() - baseline} more than before)`);
  assert.equal(await c.ask('unlock'), 'unlock OK');
  assert.equal(m.ownerTid, 0);
  assert.equal(await other.ask('trylock'), 'trylock OK', 'nothing was taken by the cancelled waits');
  assert.equal(await other.ask('unlock'), 'unlock OK');

  // Queued behind this thread's own hold: the same.
  assert.equal(m.lockSync(), 'locked');
  const ac = new AbortController();
  const queuedAbort = rejectsLike(m.lock({ signal: ac.signal }), AbortError);
  const queuedTimeout = rejectsLike(m.lock({ timeout: 30 }), TimeoutError);
  ac.abort();
  await queuedAbort;
  await queuedTimeout;
  m.unlock();
  assert.equal(m.ownerTid, 0);
  assert.equal(await other.ask('trylock'), 'trylock OK');
  assert.equal(await other.ask('unlock'), 'unlock OK');
  assert.ok(threadCount() <= baseline);
});

test('a lock() whose wait ended but which then gives up (close, abort, timeout) hands the wake-up on: the C waiter queued behind it is not stranded', async (t) => {
  const { name, buffer } = posixShm(t);
  const where = `posix:${name}:0`;
  closing(t, Mutex.init(buffer, 0));
  const word = lockWord(buffer, 0);
  const holder = await cPeer(t, where);
  const behind = await cPeer(t, where);
  const grabber = await cPeer(t, where);

  for (const how of ['close', 'abort', 'timeout'] as const) {
    assert.equal(await holder.ask('lock'), 'lock OK', how);
    // Our waiter sleeps first in the futex queue, the C waiter second: the unlock wakes ours only.
    const h = Mutex.at(buffer, 0);
    const ac = new AbortController();
    const before = tasks();
    const start = performance.now();
    const pending = later(h.lock({ signal: ac.signal, timeout: how === 'timeout' ? 200 : 60_000 }));
    let watcher = 0;
    await until(() => {
      watcher = [...tasks()].find((tid) => !before.has(tid) && inFutex('self', tid)) ?? 0;
      return watcher !== 0 && (word() & FUTEX_WAITERS) !== 0;
    }, `${how}: our waiter thread sleeps on the lock`);
    behind.send('lock');
    await until(() => inFutex(behind.pid), `${how}: C waits behind it`);

    holder.send('unlock');
    // Without letting the event loop run: the unlock wakes our waiter, which sees the lock free and ends.
    blockUntil(() => word() === 0 && !existsSync(`/proc/self/task/${watcher}`), `${how}: our waiter ended, the lock free`);
    if (how === 'close') h.close();
    if (how === 'abort') ac.abort();
    if (how === 'timeout') {
      // Someone else takes the free lock (no FUTEX_WAITERS: nobody asked yet), and our deadline passes.
      grabber.send('lock');
      blockUntil(() => (word() & FUTEX_TID_MASK) === grabber.pid, 'the grabber holds it');
      blockUntil(() => performance.now() - start > 250, 'the deadline passed');
    }
    if (how === 'close') await rejectsLike(pending, IpcError, { code: 'EBADF' });
    if (how === 'abort') await rejectsLike(pending, AbortError);
    if (how === 'timeout') await rejectsLike(pending, TimeoutError);
    assert.equal(await holder.line(), 'unlock OK');
    if (how === 'timeout') {
      assert.equal(await grabber.line(), 'lock OK');
      assert.equal(await grabber.ask('unlock'), 'unlock OK');
    }
    assert.equal(await behind.line(5000), 'lock OK', `${how}: the C waiter got the lock`);
    assert.equal(await behind.ask('unlock'), 'unlock OK');
    assert.equal(h.held, false);
    h.close();
    assert.equal(word() & FUTEX_TID_MASK, 0);
  }
});

test('lock() calls queued behind this thread: one that gives up after its turn came passes the turn on', async (t) => {
  const { name, buffer } = posixShm(t);
  const m = closing(t, Mutex.init(buffer, 0));
  const c = await cPeer(t, `posix:${name}:0`);
  assert.equal(m.lockSync(), 'locked');
  const first = later(m.lock({ timeout: 300 }));
  const second = later(m.lock({ timeout: 20_000 }));
  c.send('lock');
  await until(() => inFutex(c.pid), 'C waits');
  m.unlock(); // the turn goes to `first`; C is woken too and takes the lock before `first` runs
  blockUntil(() => m.ownerTid === c.pid, 'C holds it');
  await rejectsLike(first, TimeoutError);
  assert.equal(await c.line(), 'lock OK');
  assert.equal(await c.ask('unlock'), 'unlock OK');
  assert.equal(await withTimeout(second, 5000, 'the second queued lock() gets the lock'), 'locked');
  m.unlock();
  assert.equal(m.ownerTid, 0);
});

test('recursion and foreign unlock: DeadlockError, PermissionError; two handles in one thread; another process cannot unlock', async (t) => {
  const { name, buffer } = posixShm(t);
  const where = `posix:${name}:0`;
  const m = closing(t, Mutex.init(buffer, 0));
  assert.equal(m.lockSync(), 'locked');
  const deadlock = { code: 'EDEADLK', errno: -35, syscall: 'pthread_mutex_lock', message: /^EDEADLK: this thread already holds the mutex/ };
  throwsLike(() => m.lockSync(), DeadlockError, deadlock);
  throwsLike(() => m.lockSync({ timeout: 10 }), DeadlockError, deadlock);
  assert.equal(m.tryLock(), 'busy');
  m.unlock();
  const eperm = { code: 'EPERM', errno: -1, syscall: 'pthread_mutex_unlock', message: /^EPERM: this thread does not hold the mutex/ };
  throwsLike(() => m.unlock(), PermissionError, eperm);
  assert.equal(m.ownerTid, 0);

  // A second handle on the same bytes, same thread: the same owner.
  const other = closing(t, Mutex.at(buffer, 0));
  assert.equal(m.lockSync(), 'locked');
  throwsLike(() => other.lockSync(), DeadlockError, { code: 'EDEADLK' });
  throwsLike(() => other.lockSync({ timeout: 10 }), DeadlockError, { code: 'EDEADLK' });
  assert.equal(other.tryLock(), 'busy');
  throwsLike(() => other.unlock(), PermissionError, eperm);
  assert.equal(m.ownerTid, process.pid);
  assert.equal(m.held, true);

  // Other processes cannot release it.
  const c = await cPeer(t, where);
  const n = await nodePeer(t, where);
  assert.equal(await c.ask('unlock'), 'unlock EPERM');
  assert.equal(await n.ask('unlock'), 'unlock PermissionError EPERM');
  assert.equal(m.ownerTid, process.pid);
  throwsLike(() => m.markConsistent(), InvalidArgumentError, { code: 'EINVAL', errno: -22, syscall: 'pthread_mutex_consistent', message: /not in the owner-died state/ });
  m.unlock();
  assert.equal(await c.ask('lock'), 'lock OK');
  assert.equal(m.tryLock(), 'busy');
  throwsLike(() => m.unlock(), PermissionError, eperm);
  assert.equal(await c.ask('unlock'), 'unlock OK');
});

test('a worker thread is another owner: it waits for the main thread and the main thread for it; a worker ending while holding leaves "owner-died"', async (t) => {
  const sab = new SharedArrayBuffer(64);
  const m = Mutex.init(sab, 8);
  const word = lockWord(sab, 8);
  const w = new WorkerPeer(sab, 8);
  t.after(() => w.worker.terminate());
  assert.equal(await w.line(20_000), 'ready');

  assert.equal(m.lockSync(), 'locked');
  assert.equal(await w.ask('tryLock'), 'tryLock busy', 'not EDEADLK: the worker is not the owner');
  assert.equal(await w.ask('unlock'), 'unlock PermissionError EPERM');
  w.send('lock');
  await until(() => (word() & FUTEX_WAITERS) !== 0, "the worker's lock() waits");
  m.unlock();
  assert.equal(await w.line(), 'lock locked');
  const workerTid = m.ownerTid;
  assert.notEqual(workerTid, process.pid);
  assert.ok(existsSync(`/proc/self/task/${workerTid}`), 'the owner is a thread of this process');
  assert.equal(await w.ask('owner'), `owner ${workerTid}`);
  assert.equal(m.tryLock(), 'busy');
  throwsLike(() => m.unlock(), PermissionError);

  // The main thread blocks in lockSync until the worker (which waits to see it sleep) unlocks.
  w.send('handoff');
  assert.equal(m.lockSync({ timeout: 20_000 }), 'locked');
  assert.equal(await w.line(), 'handoff OK');
  // The worker blocks in lockSync until the main thread unlocks.
  w.send('lockSync');
  await until(() => inFutex('self', workerTid) && (word() & FUTEX_WAITERS) !== 0, 'the worker sleeps in lockSync');
  m.unlock();
  assert.equal(await w.line(), 'lockSync locked');
  assert.equal(m.ownerTid, workerTid);

  await w.worker.terminate();
  assert.equal(await m.lock({ timeout: 5000 }), 'owner-died');
  m.markConsistent();
  m.unlock();
  assert.equal(m.tryLock(), 'locked');
  m.unlock();
});

test('close(): releases a held lock; the handle\'s pending lock() calls reject with EBADF having taken nothing; later calls throw EBADF', async (t) => {
  const { name, buffer } = posixShm(t);
  const where = `posix:${name}:0`;
  const m = closing(t, Mutex.init(buffer, 0));
  const c = await cPeer(t, where);
  const ebadf = { code: 'EBADF', errno: -9, message: /^EBADF: mutex handle is closed/ };
  await fsp.readFile(thisFile);
  const baseline = threadCount();

  // Held, with calls queued behind the hold.
  const h = Mutex.at(buffer, 0);
  assert.equal(h.lockSync(), 'locked');
  const queued = [h.lock(), h.lock({ timeout: 60_000 }), h.lock({ signal: new AbortController().signal }), h.withLock(() => 1)].map((p) => rejectsLike(p, IpcError, ebadf));
  h.close();
  assert.equal(h.closed, true);
  assert.equal(h.held, false);
  assert.equal(m.ownerTid, 0, 'close released it');
  await Promise.all(queued);
  assert.equal(m.ownerTid, 0, 'no queued call took it');
  assert.equal(await c.ask('trylock'), 'trylock OK');

  // Waiting on a lock another process holds.
  const h2 = Mutex.at(buffer, 0);
  const waits = [h2.lock(), h2.lock({ timeout: 60_000 }), h2.withLock(() => 1), h2.acquire()].map((p) => rejectsLike(p, IpcError, ebadf));
  await until(() => threadCount() >= baseline + 4 && (m.ownerTid === c.pid), 'the waits are pending');
  h2.close();
  await Promise.all(waits);
  await until(() => threadCount() <= baseline, 'their threads ended');
  assert.equal(await c.ask('unlock'), 'unlock OK');
  assert.equal(m.ownerTid, 0);
  assert.equal(await c.ask('trylock'), 'trylock OK', 'nothing was taken');
  assert.equal(await c.ask('unlock'), 'unlock OK');

  // Everything after close is EBADF; close is idempotent.
  for (const closed of [h, h2]) {
    closed.close();
    closed[Symbol.dispose]();
    throwsLike(() => closed.tryLock(), IpcError, ebadf);
    throwsLike(() => closed.lockSync(), IpcError, ebadf);
    throwsLike(() => closed.unlock(), IpcError, ebadf);
    throwsLike(() => closed.markConsistent(), IpcError, ebadf);
    throwsLike(() => closed.ownerTid, IpcError, ebadf);
    await rejectsLike(closed.lock(), IpcError, ebadf);
    await rejectsLike(closed.withLock(() => 1), IpcError, ebadf);
    await rejectsLike(closed.acquire(), IpcError, ebadf);
  }
  assert.equal(m.tryLock(), 'locked', 'the other handle is unaffected');
  m.unlock();

  // A named handle: close keeps the object; `using` closes (and releases).
  const named = uniqueName('close');
  t.after(() => unlinkQuietly(named));
  closing(t, Mutex.create(named));
  const cn = await cPeer(t, `named:${named}`);
  {
    using scoped = Mutex.open(named);
    assert.equal(scoped.lockSync(), 'locked');
    assert.equal(await cn.ask('trylock'), 'trylock EBUSY');
  }
  assert.equal(await cn.ask('trylock'), 'trylock OK');
  assert.equal(await cn.ask('unlock'), 'unlock OK');
  await rejectsLike(
    (async () => {
      const x = Mutex.open(named);
      x.close();
      return x.lock();
    })(),
    IpcError,
    { ...ebadf, path: named },
  );
});

const hasStrace = spawnSync('strace', ['-V'], { stdio: 'ignore' }).status === 0;

test('uncontended: 100 000 tryLock+unlock pairs take well under a second', (t) => {
  const m = Mutex.init(new SharedArrayBuffer(64));
  for (let i = 0; i < 10_000; i++) {
    m.tryLock();
    m.unlock();
  }
  const t0 = performance.now();
  for (let i = 0; i < 100_000; i++) {
    m.tryLock();
    m.unlock();
  }
  const ms = performance.now() - t0;
  t.diagnostic(`100 000 tryLock+unlock: ${ms.toFixed(1)} ms`);
  assert.ok(ms < 1000, `${ms} ms`);
});

test('uncontended lock/unlock makes no system call (strace of a Node process)', { skip: !hasStrace && 'strace is not installed: the system-call check cannot run' }, async (t) => {
  const out = join(tmp.dir, 'strace.txt');
  const code = `
    import { Mutex } from 'interprocess';
    import { writeSync } from 'node:fs';
    const m = Mutex.init(new SharedArrayBuffer(64), 0);
    for (let i = 0; i < 20000; i++) { m.tryLock(); m.unlock(); m.lockSync(); m.unlock(); await m.lock(); m.unlock(); }
    writeSync(1, 'tryLock\\n');
    for (let i = 0; i < 100000; i++) { m.tryLock(); m.unlock(); }
    writeSync(1, 'lockSync\\n');
    for (let i = 0; i < 100000; i++) { m.lockSync(); m.unlock(); }
    writeSync(1, 'lock\\n');
    for (let i = 0; i < 100000; i++) { await m.lock(); m.unlock(); }
    writeSync(1, 'end\\n');`;
  const child = spawn('strace', ['-f', '-qq', '-o', out, process.execPath, '--input-type=module', '-e', code], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const [status] = (await withTimeout(once(child, 'close'), 60_000, 'the traced process exits')) as [number];
  assert.equal(status, 0, stderr);
  // Only the JavaScript thread's calls between the markers count; V8's garbage
  // collector makes a few of its own there (private futexes with its helper
  // threads, madvise, getpid): a process-shared mutex would make shared ones.
  const lines = readFileSync(out, 'utf8').split('\n');
  const begin = lines.findIndex((l) => /write\(1, "tryLock\\n"/.test(l));
  assert.ok(begin >= 0, 'markers found');
  const tid = lines[begin].split(/\s+/)[0];
  const sections: Record<string, string[]> = {};
  let section = '';
  for (const l of lines.slice(begin)) {
    if (l.split(/\s+/)[0] !== tid || /^\S+\s+<\.\.\. /.test(l)) continue;
    const marker = /write\(1, "(\w+)\\n"/.exec(l);
    if (marker) {
      section = marker[1];
      if (section === 'end') break;
      sections[section] = [];
    } else {
      sections[section].push(l.replace(/^\S+\s+/, ''));
    }
  }
  assert.deepEqual(Object.keys(sections), ['tryLock', 'lockSync', 'lock'], 'markers found');
  for (const [what, calls] of Object.entries(sections)) {
    const names: Record<string, number> = {};
    for (const c of calls) names[/^(\w+)\(/.exec(c)?.[1] ?? c] = (names[/^(\w+)\(/.exec(c)?.[1] ?? c] ?? 0) + 1;
    t.diagnostic(`100 000 ${what}()+unlock(): ${calls.length} system calls of the JavaScript thread ${JSON.stringify(names)}`);
    const shared = calls.filter((c) => /^futex\(/.test(c) && !/_PRIVATE/.test(c));
    assert.deepEqual(shared, [], `${what}: no process-shared futex call`);
    assert.ok(calls.length < (what === 'lock' ? 1000 : 50), `${what}: ${calls.length} system calls for 100 000 lock/unlock pairs`);
  }
});
