/**
 * RwLock (robust, writer-preferring read-write lock built from robust pthread
 * mutexes) against real processes: Node children and a compiled C peer
 * (test/peers/rwlock_peer.c) using include/interprocess.h's ipx_rwlock_*.
 *
 * Every test gets a lock (named, or placed in a shared memory object) and a
 * data object of int32 words that all processes of the test share (the W_*
 * indices, the same as in rwlock_peer.c). Waits are observed, not slept on:
 * the gate's lock word shows who holds it (the owner's thread id; a Node
 * process's main thread has the process id) and whether someone sleeps on it
 * (FUTEX_WAITERS). Every object is unlinked by the test that made it, even
 * when the test fails; the last hook checks that /dev/shm holds nothing of
 * this process.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import {
  Mutex,
  RwLock,
  rwlockSize,
  DEFAULT_READER_SLOTS,
  MUTEX_ALIGN,
  posix,
  AbortError,
  AlreadyExistsError,
  DeadlockError,
  InvalidArgumentError,
  IpcError,
  NotFoundError,
  TimeoutError,
  type LockResult,
} from 'interprocess';
import { collect, compilePeer, root, shmEntries, spawnNode, uniqueName, waitForLine, type RunResult } from './helpers.js';
import { checkError, finished, killOnExit, rejectsLike, settled, throwsLike, unlinkQuietly, until, withTimeout } from './helpers.js';

type TestContext = { after(fn: () => void | Promise<void>): void; diagnostic(message: string): void };

const PREFIX = `ipt-${process.pid}-`;
const HEADER = 64;
const FUTEX_WAITERS = 0x80000000 | 0;
const FUTEX_OWNER_DIED = 0x40000000;
const TID_MASK = 0x3fffffff;

// Data words (rwlock_peer.c's W_*).
const W = {
  A: 0,
  B: 1,
  DIRTY: 2,
  READERS: 3,
  MAX_READERS: 4,
  BAD: 5,
  OWNER_DIED: 6,
  STOP: 7,
  ENTRIES: 8,
  WRITERS: 9,
  PHASE: 16,
  PROGRESS: 32,
  INSIDE: 48,
  DEAD: 64,
} as const;
const P = { IDLE: 0, WANT_WRITE: 1, WRITING: 2, WANT_READ: 3, READING: 4, END_WRITE: 5, END_READ: 6 } as const;

after(() => {
  const left = shmEntries(PREFIX);
  for (const f of left) unlinkQuietly('/' + f);
  assert.deepEqual(left, [], 'shared memory objects left behind');
});

// ---------------------------------------------------------------------------
// helpers

const rwPeer = compilePeer('rwlock_peer', ['-pthread', `-I${join(root, 'include')}`]);
rwPeer.catch(() => {}); // reported by the tests that await it

/** A test's lock and data words. `spec` is how a C peer finds the lock. */
interface Setup {
  rw: RwLock;
  /** How peers find the lock: a name, or NAME+OFFSET+SLOTS. */
  spec: string;
  dataName: string;
  d: Int32Array;
  /** The gate's lock word (owner tid | FUTEX_WAITERS | FUTEX_OWNER_DIED). */
  gate: Int32Array;
}

function dataObject(t: TestContext): { dataName: string; d: Int32Array } {
  const dataName = uniqueName('rwdata');
  const data = posix.SharedMemory.create(dataName, { size: 4096 });
  t.after(() => {
    data.close();
    unlinkQuietly(dataName);
  });
  return { dataName, d: new Int32Array(data.buffer, 0, 128) };
}

/** A named lock (and its data), removed after the test. */
function named(t: TestContext, slots?: number): Setup {
  const name = uniqueName('rw');
  t.after(() => unlinkQuietly(name));
  const rw = RwLock.create(name, slots === undefined ? {} : { slots });
  t.after(() => rw.close());
  const raw = posix.SharedMemory.open(name);
  t.after(() => raw.close());
  return { rw, spec: name, ...dataObject(t), gate: new Int32Array(raw.buffer, HEADER, 1) };
}

/**
 * A Node child playing the same steps as rwlock_peer.c. LOCK is a name or
 * NAME+OFFSET+SLOTS; mode 'sync' uses readLockSync/writeLockSync.
 */
const NODE_PEER = `
import { RwLock, posix } from 'interprocess';
const [spec, dataSpec, mode, step, x, y, z] = process.argv.slice(1);
let rw;
if (spec.includes('+')) {
  const [name, off, slots] = spec.split('+');
  rw = RwLock.at(posix.SharedMemory.open(name).buffer, Number(off), Number(slots));
} else {
  rw = RwLock.open(spec);
}
const [dataName, dataOff] = dataSpec.split('+');
const d = new Int32Array(posix.SharedMemory.open(dataName).buffer, Number(dataOff), 128);
const W = ${JSON.stringify(W)};
const P = ${JSON.stringify(P)};
const sync = mode === 'sync';
const rd = async () => { const r = sync ? rw.readLockSync() : await rw.readLock(); if (r === 'owner-died') Atomics.add(d, W.OWNER_DIED, 1); return r; };
const wr = async () => { const r = sync ? rw.writeLockSync() : await rw.writeLock(); if (r === 'owner-died') Atomics.add(d, W.OWNER_DIED, 1); return r; };
const died = (r) => (r === 'owner-died' ? ' owner-died' : '');
const stdinEnd = () => new Promise((resolve) => { process.stdin.on('end', resolve); process.stdin.resume(); });
const spin = (ms) => { const end = performance.now() + ms; while (performance.now() < end); };
const pause = new Int32Array(new SharedArrayBuffer(4));
const nap = async (ms) => (sync ? Atomics.wait(pause, 0, 0, ms) : await new Promise((r) => setTimeout(r, ms)));
const conflict = (me, want) => {
  for (let i = 0; i < 16; i++) {
    if (i === me || Atomics.load(d, W.DEAD + i)) continue;
    const inside = Atomics.load(d, W.INSIDE + i);
    if (inside === 2 || (inside === 1 && want === 2)) return true;
  }
  return false;
};
const n = Number(x);
if (step === 'read-hold') {
  const r = await rd();
  Atomics.add(d, W.READERS, 1);
  console.log('reading' + died(r));
  await stdinEnd();
  Atomics.sub(d, W.READERS, 1);
  rw.readUnlock();
  console.log('released');
} else if (step === 'write-hold') {
  const r = await wr();
  Atomics.add(d, W.WRITERS, 1);
  console.log('writing' + died(r));
  await stdinEnd();
  Atomics.sub(d, W.WRITERS, 1);
  rw.writeUnlock();
  console.log('released');
} else if (step === 'read-once') {
  const r = await rd();
  console.log('read ' + Atomics.load(d, W.A) + ' ' + Atomics.load(d, W.B) + died(r));
  rw.readUnlock();
} else if (step === 'write-once') {
  const r = await wr();
  Atomics.store(d, W.A, n);
  Atomics.store(d, W.B, n);
  console.log('wrote' + died(r));
  rw.writeUnlock();
} else if (step === 'overlap') {
  await rd();
  const inside = Atomics.add(d, W.READERS, 1) + 1;
  for (let max = Atomics.load(d, W.MAX_READERS); inside > max; max = Atomics.load(d, W.MAX_READERS)) {
    if (Atomics.compareExchange(d, W.MAX_READERS, max, inside) === max) break;
  }
  const end = Date.now() + 10000;
  while (Atomics.load(d, W.MAX_READERS) < n && Date.now() < end) await nap(1);
  console.log(Atomics.load(d, W.MAX_READERS) >= n ? 'overlapped ' + n : 'alone');
  Atomics.sub(d, W.READERS, 1);
  rw.readUnlock();
} else if (step === 'mix') {
  const id = n, count = Number(y), every = Number(z);
  let bad = 0;
  for (let i = 0; i < count; i++) {
    if (i % every === 0) {
      await wr();
      if (conflict(id, 2)) bad++;
      Atomics.store(d, W.INSIDE + id, 2);
      const v = Atomics.load(d, W.A) + 1;
      Atomics.store(d, W.A, v);
      spin(0.03);
      Atomics.store(d, W.B, v);
      if (conflict(id, 2)) bad++;
      Atomics.store(d, W.INSIDE + id, 0);
      rw.writeUnlock();
    } else {
      await rd();
      Atomics.store(d, W.INSIDE + id, 1);
      if (conflict(id, 1)) bad++;
      const a = Atomics.load(d, W.A);
      spin(0.03);
      if (Atomics.load(d, W.B) !== a || conflict(id, 1)) bad++;
      Atomics.store(d, W.INSIDE + id, 0);
      rw.readUnlock();
    }
    Atomics.add(d, W.PROGRESS + id, 1);
  }
  Atomics.add(d, W.BAD, bad);
  console.log('mix ' + count + ' bad ' + bad);
} else if (step === 'stream') {
  const id = n;
  let k = 0;
  while (!Atomics.load(d, W.STOP)) {
    await rd();
    Atomics.add(d, W.READERS, 1);
    if (Atomics.load(d, W.WRITERS)) Atomics.add(d, W.BAD, 1);
    const mine = Atomics.add(d, W.ENTRIES, 1) + 1;
    const end = performance.now() + 30;
    while (Atomics.load(d, W.ENTRIES) === mine && performance.now() < end && !Atomics.load(d, W.STOP)) await nap(1);
    if (Atomics.load(d, W.WRITERS)) Atomics.add(d, W.BAD, 1);
    Atomics.sub(d, W.READERS, 1);
    rw.readUnlock();
    Atomics.add(d, W.PROGRESS + id, 1);
    k++;
  }
  console.log('streamed ' + k);
} else if (step === 'robust') {
  const id = n;
  for (let round = 0; ; round++) {
    Atomics.store(d, W.PHASE + id, P.WANT_WRITE);
    await wr();
    Atomics.store(d, W.PHASE + id, P.WRITING);
    if (conflict(id, 2)) Atomics.add(d, W.BAD, 1);
    Atomics.store(d, W.INSIDE + id, 2);
    Atomics.store(d, W.DIRTY, 1);
    const v = Atomics.load(d, W.A) + 1;
    Atomics.store(d, W.A, v);
    spin(0.01);
    Atomics.store(d, W.B, v);
    Atomics.store(d, W.DIRTY, 0);
    Atomics.store(d, W.INSIDE + id, 0);
    Atomics.store(d, W.PHASE + id, P.END_WRITE);
    rw.writeUnlock();
    Atomics.store(d, W.PHASE + id, P.WANT_READ);
    await rd();
    Atomics.store(d, W.PHASE + id, P.READING);
    Atomics.store(d, W.INSIDE + id, 1);
    if (conflict(id, 1)) Atomics.add(d, W.BAD, 1);
    const a = Atomics.load(d, W.A);
    spin(0.01);
    if (!Atomics.load(d, W.DIRTY) && Atomics.load(d, W.B) !== a) Atomics.add(d, W.BAD, 1);
    Atomics.store(d, W.INSIDE + id, 0);
    Atomics.store(d, W.PHASE + id, P.END_READ);
    rw.readUnlock();
    Atomics.store(d, W.PHASE + id, P.IDLE);
    Atomics.add(d, W.PROGRESS + id, 1);
    if (round === 0) console.log('running');
    if (Atomics.load(d, W.STOP)) break;
    if (!sync && round % 16 === 0) await new Promise((r) => setImmediate(r));
  }
  console.log('stopped');
} else {
  throw new Error('unknown step ' + step);
}
`;

type PeerKind = 'c' | 'node-sync' | 'node-async';

/** Starts a peer (C, or a Node child) running `step` on the test's lock and data. */
async function peer(t: TestContext, s: Setup, kind: PeerKind, step: string, ...args: (string | number)[]): Promise<ChildProcess> {
  const data = `${s.dataName}+0`;
  if (kind === 'c') return killOnExit(t, spawn(await rwPeer, [s.spec, data, step, ...args.map(String)], { stdio: ['pipe', 'pipe', 'pipe'] }));
  return killOnExit(t, spawnNode(NODE_PEER, [s.spec, data, kind === 'node-sync' ? 'sync' : 'async', step, ...args.map(String)], { stdio: ['pipe', 'pipe', 'pipe'] }));
}

/** A peer started, with its output collected from the start. */
async function started(t: TestContext, s: Setup, kind: PeerKind, step: string, ...args: (string | number)[]): Promise<{ child: ChildProcess; done: Promise<RunResult> }> {
  const child = await peer(t, s, kind, step, ...args);
  return { child, done: finished(child, `${kind} ${step}`, 30_000) };
}

/** Runs a peer to completion; returns its stdout. */
async function runPeer(t: TestContext, s: Setup, kind: PeerKind, step: string, ...args: (string | number)[]): Promise<string> {
  const { child, done } = await started(t, s, kind, step, ...args);
  child.stdin!.end();
  const r = await done;
  assert.equal(r.code, 0, `${kind} ${step}: ${r.stderr}`);
  return r.stdout;
}

const gateOwner = (s: Setup): number => Atomics.load(s.gate, 0) & TID_MASK;
const gateSleepers = (s: Setup): boolean => (Atomics.load(s.gate, 0) & FUTEX_WAITERS) !== 0;

// ---------------------------------------------------------------------------

test('named: create writes the header (kind 3, slots), exclusive by default; open and exclusive:false find its slots; C opens it by name; unlink removes the name only', async (t) => {
  assert.equal(DEFAULT_READER_SLOTS, 32);
  assert.equal(rwlockSize(), 64 * 33);
  assert.equal(rwlockSize(3), 256);
  const s = named(t, 3);
  const name = s.spec;
  assert.equal(s.rw.name, name);
  assert.equal(s.rw.slots, 3);
  assert.equal(s.rw.readers, 0);
  assert.equal(s.rw.writing, false);
  const file = readFileSync(`/dev/shm${name}`);
  assert.ok(file.length >= HEADER + rwlockSize(3));
  assert.equal(file.readUInt32LE(0), 0x786d7069, 'magic');
  assert.equal(file.readUInt16LE(4), 1, 'layout version');
  assert.equal(file.readUInt16LE(6), 3, 'kind: rwlock');
  assert.equal(file.readInt32LE(8), process.pid);
  assert.equal(file.readUInt32LE(12), 3, 'reader slots');

  throwsLike(() => RwLock.create(name), AlreadyExistsError, { code: 'EEXIST', path: name });
  const again = RwLock.create(name, { exclusive: false, slots: 7 });
  t.after(() => again.close());
  assert.equal(again.slots, 3, 'the existing lock keeps its slots');
  const opened = RwLock.open(name);
  t.after(() => opened.close());
  assert.equal(opened.slots, 3);

  // The default: 32 slots.
  const dflt = named(t);
  assert.equal(dflt.rw.slots, 32);
  assert.equal(readFileSync(`/dev/shm${dflt.spec}`).readUInt32LE(12), 32);

  for (const slots of [0, -1, 1.5, 4097]) {
    throwsLike(() => RwLock.create(uniqueName('bad'), { slots }), InvalidArgumentError, { message: /slots/ });
  }
  assert.deepEqual(shmEntries(`${PREFIX}bad`), [], 'a refused create leaves nothing');

  // Handles share it; so does C (header checked, slots from the header).
  assert.equal(opened.tryReadLock(), 'locked');
  assert.equal(again.tryWriteLock(), 'busy');
  assert.equal(await runPeer(t, s, 'c', 'read-once'), 'read 0 0\n', 'a C reader enters beside a Node reader');
  opened.readUnlock();
  assert.equal(await runPeer(t, s, 'c', 'write-once', 42), 'wrote\n');
  assert.equal(Atomics.load(s.d, W.A), 42);
  assert.equal(again.tryWriteLock(), 'locked');
  assert.equal(s.rw.tryReadLock(), 'busy');
  again.writeUnlock();

  // A C program refuses an object of another kind.
  const mname = uniqueName('notrw');
  t.after(() => unlinkQuietly(mname));
  const m = Mutex.create(mname);
  t.after(() => m.close());
  const wrong = await collect(spawn(await rwPeer, [mname, `${s.dataName}+0`, 'read-once'], { stdio: ['ignore', 'pipe', 'pipe'] }));
  assert.equal(wrong.code, 1);
  assert.match(wrong.stderr, /not an interprocess rwlock/);
  throwsLike(() => RwLock.open(mname), InvalidArgumentError, { message: /is an interprocess mutex, not a rwlock/ });

  RwLock.unlink(name);
  throwsLike(() => RwLock.open(name), NotFoundError, { code: 'ENOENT', path: name });
  throwsLike(() => RwLock.unlink(name), NotFoundError);
  assert.equal(opened.tryWriteLock(), 'locked', 'open handles keep working');
  opened.writeUnlock();
});

test('placed: init/at with rwlockSize(slots) at an aligned offset; two locks side by side are independent, also for C; bad buffers and offsets are rejected', async (t) => {
  const name = uniqueName('rwplaced');
  const shm = posix.SharedMemory.create(name, { size: 4096 });
  t.after(() => {
    shm.close();
    unlinkQuietly(name);
  });
  const first = RwLock.init(shm.buffer, 0, 4);
  t.after(() => first.close());
  const secondAt = rwlockSize(4);
  const second = RwLock.init(shm.buffer, secondAt, 2);
  t.after(() => second.close());
  assert.equal(first.name, undefined);
  assert.equal(first.slots, 4);
  assert.equal(second.slots, 2);
  const firstAgain = RwLock.at(shm.buffer, 0, 4);
  t.after(() => firstAgain.close());

  const { dataName, d } = dataObject(t);
  const s2: Setup = { rw: second, spec: `${name}+${secondAt}+2`, dataName, d, gate: new Int32Array(shm.buffer, secondAt, 1) };
  const writer = await started(t, s2, 'c', 'write-hold');
  await waitForLine(writer.child, /^writing$/);
  assert.equal(gateOwner(s2), writer.child.pid, 'the C writer holds the second lock\'s gate');
  assert.equal(second.tryReadLock(), 'busy');
  assert.equal(first.tryWriteLock(), 'locked', 'the first lock is independent');
  assert.equal(firstAgain.tryReadLock(), 'busy');
  first.writeUnlock();
  writer.child.stdin!.end();
  assert.equal((await writer.done).stdout, 'writing\nreleased\n');
  assert.equal(second.tryReadLock(), 'locked');
  second.readUnlock();
  // A Node child finds the placed lock the same way.
  const s1: Setup = { rw: first, spec: `${name}+0+4`, dataName, d, gate: new Int32Array(shm.buffer, 0, 1) };
  assert.equal(await runPeer(t, s1, 'node-sync', 'write-once', 7), 'wrote\n');
  assert.equal(Atomics.load(d, W.B), 7);

  throwsLike(() => RwLock.init(shm.buffer, 4, 1), InvalidArgumentError, { message: new RegExp(`multiple of ${MUTEX_ALIGN}`) });
  throwsLike(() => RwLock.at(shm.buffer, 4096 - 64, 1), InvalidArgumentError, { message: /needs 128 bytes/ });
  throwsLike(() => RwLock.init(new SharedArrayBuffer(rwlockSize(2)), 0, 3), InvalidArgumentError, { message: /an RwLock with 3 slots needs 256 bytes/ });
  throwsLike(() => RwLock.init(new ArrayBuffer(4096) as unknown as SharedArrayBuffer), InvalidArgumentError, { code: 'ERR_INVALID_ARG_TYPE' });
  throwsLike(() => RwLock.init(shm.buffer, 0, 0), InvalidArgumentError, { message: /slots/ });
  const exact = RwLock.init(new SharedArrayBuffer(rwlockSize(1)), 0, 1);
  assert.equal(exact.tryWriteLock(), 'locked');
  exact.close();
});

test('the API in one process: read locks nest per handle, write excludes, try forms say busy, with* release on throw, unlocking what is not held is refused', async (t) => {
  const s = named(t, 4);
  const other = RwLock.open(s.spec);
  t.after(() => other.close());
  assert.equal(await s.rw.readLock(), 'locked');
  assert.equal(s.rw.readLockSync(), 'locked');
  assert.equal(s.rw.tryReadLock(), 'locked');
  assert.equal(await other.readLock({ timeout: 1000 }), 'locked');
  assert.equal(s.rw.readers, 3);
  assert.equal(other.readers, 1);
  assert.equal(other.tryWriteLock(), 'busy', 'its own read lock');
  s.rw.readUnlock();
  s.rw.readUnlock();
  s.rw.readUnlock();
  throwsLike(() => s.rw.readUnlock(), InvalidArgumentError, { message: /holds no read lock/ });
  assert.equal(s.rw.tryWriteLock(), 'busy', 'another handle still reads');
  other.readUnlock();

  assert.equal(await s.rw.writeLock(), 'locked');
  assert.equal(s.rw.writing, true);
  assert.equal(gateOwner(s), process.pid, 'the writer holds the gate');
  assert.equal(other.tryReadLock(), 'busy');
  assert.equal(other.tryWriteLock(), 'busy');
  s.rw.writeUnlock();
  assert.equal(s.rw.writing, false);
  assert.equal(Atomics.load(s.gate, 0), 0);
  throwsLike(() => s.rw.writeUnlock(), InvalidArgumentError, { message: /does not hold the write lock/ });
  assert.equal(s.rw.writeLockSync({ timeout: 1000 }), 'locked');
  s.rw.writeUnlock();
  assert.equal(s.rw.tryWriteLock(), 'locked');
  s.rw.writeUnlock();

  assert.equal(await s.rw.withReadLock((r) => `read ${r} ${s.rw.readers}`), 'read locked 1');
  assert.equal(await s.rw.withWriteLock(async (r) => `write ${r} ${s.rw.writing}`), 'write locked true');
  await assert.rejects(s.rw.withWriteLock(() => Promise.reject(new Error('boom'))), /boom/);
  await assert.rejects(
    s.rw.withReadLock(() => {
      throw new Error('bang');
    }),
    /bang/,
  );
  assert.equal(s.rw.readers, 0);
  assert.equal(s.rw.writing, false);
  assert.equal(other.tryWriteLock(), 'locked', 'everything was released');
  other.writeUnlock();
  await rejectsLike(s.rw.readLock({ timeout: -1 }), InvalidArgumentError, { code: 'ERR_OUT_OF_RANGE' });
  await rejectsLike(s.rw.writeLock({ signal: {} as AbortSignal }), InvalidArgumentError, { code: 'ERR_INVALID_ARG_TYPE' });
  assert.equal(Atomics.load(s.gate, 0), 0);
});

test('many readers at once across processes: two C, two Node (sync and async) and this process are all inside together', async (t) => {
  const s = named(t);
  const kinds: PeerKind[] = ['c', 'c', 'node-sync', 'node-async'];
  const peers = await Promise.all(kinds.map((k) => started(t, s, k, 'overlap', 5)));
  await s.rw.readLock({ timeout: 20_000 });
  const inside = Atomics.add(s.d, W.READERS, 1) + 1;
  for (let max = Atomics.load(s.d, W.MAX_READERS); inside > max; max = Atomics.load(s.d, W.MAX_READERS)) {
    if (Atomics.compareExchange(s.d, W.MAX_READERS, max, inside) === max) break;
  }
  await until(() => Atomics.load(s.d, W.MAX_READERS) >= 5, () => `five readers inside at once (at most ${Atomics.load(s.d, W.MAX_READERS)})`, 20_000);
  Atomics.sub(s.d, W.READERS, 1);
  s.rw.readUnlock();
  for (const [i, p] of peers.entries()) {
    const r = await p.done;
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'overlapped 5\n', `${kinds[i]} reader`);
  }
  assert.equal(Atomics.load(s.d, W.READERS), 0);
});

test('a writer excludes everyone: writers in C, Node and this process write two words that must match; readers in all of them never see them differ', async (t) => {
  const s = named(t, 8);
  const runs: [PeerKind, number][] = [
    ['c', 4000],
    ['c', 4000],
    ['node-sync', 600],
    ['node-async', 600],
  ];
  const EVERY = 4;
  const peers = await Promise.all(runs.map(([k, n], i) => started(t, s, k, 'mix', i + 1, n, EVERY)));
  const me = 0;
  const N = 600;
  let bad = 0;
  const conflict = (want: number): boolean => {
    for (let i = 1; i < 16; i++) {
      const inside = Atomics.load(s.d, W.INSIDE + i);
      if (inside === 2 || (inside === 1 && want === 2)) return true;
    }
    return false;
  };
  for (let i = 0; i < N; i++) {
    if (i % EVERY === 0) {
      await s.rw.writeLock({ timeout: 20_000 });
      if (conflict(2)) bad++;
      Atomics.store(s.d, W.INSIDE + me, 2);
      const v = Atomics.load(s.d, W.A) + 1;
      Atomics.store(s.d, W.A, v);
      await new Promise((resolve) => setImmediate(resolve)); // others run meanwhile
      Atomics.store(s.d, W.B, v);
      if (conflict(2)) bad++;
      Atomics.store(s.d, W.INSIDE + me, 0);
      s.rw.writeUnlock();
    } else {
      await s.rw.readLock({ timeout: 20_000 });
      Atomics.store(s.d, W.INSIDE + me, 1);
      if (conflict(1)) bad++;
      const a = Atomics.load(s.d, W.A);
      await new Promise((resolve) => setImmediate(resolve));
      if (Atomics.load(s.d, W.B) !== a || conflict(1)) bad++;
      Atomics.store(s.d, W.INSIDE + me, 0);
      s.rw.readUnlock();
    }
  }
  for (const [i, p] of peers.entries()) {
    const r = await p.done;
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `mix ${runs[i][1]} bad 0\n`, `${runs[i][0]} peer ${i + 1}`);
  }
  assert.equal(bad, 0, 'this process saw a conflict');
  const writes = [N, ...runs.map(([, n]) => n)].reduce((sum, n) => sum + Math.ceil(n / EVERY), 0);
  assert.equal(Atomics.load(s.d, W.A), writes, 'every increment of A survived: writes never overlapped');
  assert.equal(Atomics.load(s.d, W.B), writes);
});

test('writer-preferring: against a stream of overlapping readers from four processes (a reader leaves only once another came in), writers get in promptly, again and again', async (t) => {
  const s = named(t);
  const kinds: PeerKind[] = ['c', 'c', 'node-async', 'node-sync'];
  const streams = await Promise.all(kinds.map((k, i) => started(t, s, k, 'stream', i + 1)));
  t.after(() => Atomics.store(s.d, W.STOP, 1));
  await until(() => Atomics.load(s.d, W.ENTRIES) >= 200, 'the readers stream', 20_000);
  const latencies: number[] = [];
  for (let round = 0; round < 5; round++) {
    const before = Atomics.load(s.d, W.ENTRIES);
    await until(() => Atomics.load(s.d, W.ENTRIES) >= before + 20, 'the stream flows again', 20_000);
    const t0 = performance.now();
    await s.rw.writeLock({ timeout: 15_000 });
    latencies.push(performance.now() - t0);
    Atomics.add(s.d, W.WRITERS, 1);
    assert.equal(Atomics.load(s.d, W.READERS), 0, 'no reader is inside with the writer');
    const entries = Atomics.load(s.d, W.ENTRIES);
    await delay(10); // a write that takes a while
    assert.equal(Atomics.load(s.d, W.ENTRIES), entries, 'no reader entered during the write');
    Atomics.sub(s.d, W.WRITERS, 1);
    s.rw.writeUnlock();
  }
  // A C writer gets in too.
  const before = Atomics.load(s.d, W.ENTRIES);
  await until(() => Atomics.load(s.d, W.ENTRIES) >= before + 20, 'the stream flows again', 20_000);
  const t0 = performance.now();
  assert.equal(await runPeer(t, s, 'c', 'write-once', 5), 'wrote\n');
  const cLatency = performance.now() - t0;
  Atomics.store(s.d, W.STOP, 1);
  for (const [i, p] of streams.entries()) {
    const r = await p.done;
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^streamed \d+\n$/, kinds[i]);
  }
  assert.equal(Atomics.load(s.d, W.BAD), 0, 'a reader saw a writer inside');
  t.diagnostic(`writer latencies ${latencies.map((l) => l.toFixed(1)).join(', ')} ms; C writer (spawn included) ${cLatency.toFixed(1)} ms`);
  for (const l of latencies) assert.ok(l < 5000, `a writer waited ${l} ms`);
});

test('more readers than slots: the extra reader waits for whichever slot frees first (holding the gate, so later readers queue too); one handle holding every slot is a DeadlockError', async (t) => {
  const s = named(t, 2);
  const r1 = await started(t, s, 'c', 'read-hold');
  await waitForLine(r1.child, /^reading$/); // slot 0
  const r2 = await started(t, s, 'node-async', 'read-hold');
  await waitForLine(r2.child, /^reading$/); // slot 1
  assert.equal(s.rw.tryReadLock(), 'busy', 'both slots are taken');
  await rejectsLike(s.rw.readLock({ timeout: 30 }), TimeoutError, { code: 'ETIMEDOUT' });
  throwsLike(() => s.rw.readLockSync({ timeout: 30 }), TimeoutError);
  assert.equal(Atomics.load(s.gate, 0), 0, 'the timed-out readers left the gate');
  const mine = s.rw.readLock({ timeout: 20_000 });
  await until(() => gateOwner(s) === process.pid, 'this reader holds the gate while it waits for a slot');
  const late = await started(t, s, 'c', 'read-once');
  await until(() => gateSleepers(s), 'a later C reader queues at the gate');
  assert.equal(await settled(mine), false);
  // The second slot frees first (the first stays taken): that one is ours.
  r2.child.stdin!.end();
  assert.equal(await withTimeout(mine, 10_000, 'the reader gets the slot that was freed'), 'locked');
  assert.equal(s.rw.readers, 1);
  assert.equal((await r2.done).stdout, 'reading\nreleased\n');
  // The slots are full again (C and this process): the late reader waits in turn.
  await until(() => gateOwner(s) === late.child.pid, 'the late reader waits for a slot');
  s.rw.readUnlock();
  assert.equal((await late.done).stdout, 'read 0 0\n');
  r1.child.stdin!.end();
  assert.equal((await r1.done).stdout, 'reading\nreleased\n');

  // A C reader waits for whichever slot frees first as well.
  const h1 = await started(t, s, 'node-sync', 'read-hold');
  await waitForLine(h1.child, /^reading$/); // slot 0
  await s.rw.readLock(); // slot 1
  const cLate = await started(t, s, 'c', 'read-once');
  await until(() => gateOwner(s) === cLate.child.pid, 'the C reader waits for a slot');
  s.rw.readUnlock();
  assert.equal((await cLate.done).stdout, 'read 0 0\n', 'the C reader took the slot freed second');
  h1.child.stdin!.end();
  assert.equal((await h1.done).code, 0);

  const one = RwLock.init(new SharedArrayBuffer(rwlockSize(1)), 0, 1);
  t.after(() => one.close());
  await one.readLock();
  const deadlock = { code: 'EDEADLK', errno: -35, message: /already holds every reader slot/ };
  await rejectsLike(one.readLock({ timeout: 1000 }), DeadlockError, deadlock);
  throwsLike(() => one.readLockSync({ timeout: 1000 }), DeadlockError, deadlock);
  assert.equal(one.tryReadLock(), 'busy');
  assert.equal(one.readers, 1);
  one.readUnlock();
  assert.equal(one.tryWriteLock(), 'locked', 'the refused read locks took nothing');
  one.writeUnlock();

  // Every slot held by this thread through other handles: refused at once, not waited for.
  const mem = new SharedArrayBuffer(rwlockSize(2));
  const [a, b, c] = [RwLock.init(mem, 0, 2), RwLock.at(mem, 0, 2), RwLock.at(mem, 0, 2)];
  t.after(() => [a, b, c].forEach((h) => h.close()));
  await a.readLock();
  await b.readLock();
  await withTimeout(rejectsLike(c.readLock(), DeadlockError, deadlock), 5000, 'the refusal comes at once');
  throwsLike(() => c.readLockSync(), DeadlockError, deadlock);
  assert.equal(c.readers, 0);
  b.readUnlock();
  assert.equal(await c.readLock({ timeout: 1000 }), 'locked', 'a slot this thread released is taken');
  c.readUnlock();
  a.readUnlock();
});

test('robust: a reader killed holding the lock does not keep writers out; after a writer is killed holding it, the next locker (Node or C) gets owner-died, once, and the lock keeps working', async (t) => {
  const s = named(t, 4);
  for (const kind of ['c', 'node-async', 'node-sync'] as PeerKind[]) {
    const reader = await started(t, s, kind, 'read-hold');
    await waitForLine(reader.child, /^reading$/);
    assert.equal(s.rw.tryWriteLock(), 'busy');
    reader.child.kill('SIGKILL');
    assert.equal((await reader.done).signal, 'SIGKILL');
    assert.equal(await withTimeout(s.rw.writeLock(), 10_000, `a writer gets in after a ${kind} reader died`), 'locked', 'a dead reader is no dead writer');
    s.rw.writeUnlock();
  }
  // A Node writer after a dead C reader, and a C writer after a dead Node reader.
  const cReader = await started(t, s, 'c', 'read-hold');
  await waitForLine(cReader.child, /^reading$/);
  cReader.child.kill('SIGKILL');
  await cReader.done;
  assert.equal(await runPeer(t, s, 'node-sync', 'write-once', 1), 'wrote\n');
  const nReader = await started(t, s, 'node-async', 'read-hold');
  await waitForLine(nReader.child, /^reading$/);
  nReader.child.kill('SIGKILL');
  await nReader.done;
  assert.equal(await runPeer(t, s, 'c', 'write-once', 2), 'wrote\n');

  // Dead writers: each kind of writer, each kind of next locker.
  const cases: [PeerKind, PeerKind | 'this-read' | 'this-write'][] = [
    ['c', 'this-write'],
    ['node-async', 'this-read'],
    ['node-sync', 'c'],
    ['c', 'node-async'],
  ];
  for (const [writerKind, next] of cases) {
    const writer = await started(t, s, writerKind, 'write-hold');
    await waitForLine(writer.child, /^writing$/);
    assert.equal(gateOwner(s), writer.child.pid);
    writer.child.kill('SIGKILL');
    assert.equal((await writer.done).signal, 'SIGKILL');
    assert.ok((Atomics.load(s.gate, 0) & FUTEX_OWNER_DIED) !== 0, 'the kernel marked the gate');
    const what = `after a ${writerKind} writer died, ${next}`;
    if (next === 'this-write') {
      assert.equal(await s.rw.writeLock({ timeout: 10_000 }), 'owner-died', what);
      s.rw.writeUnlock();
    } else if (next === 'this-read') {
      assert.equal(await s.rw.readLock({ timeout: 10_000 }), 'owner-died', what);
      s.rw.readUnlock();
    } else if (next === 'c') {
      assert.equal(await runPeer(t, s, 'c', 'read-once'), 'read 2 2 owner-died\n', what);
    } else {
      assert.equal(await runPeer(t, s, next, 'write-once', 3), 'wrote owner-died\n', what);
    }
    // Only the first locker is told; the lock works as before.
    assert.equal(await s.rw.readLock(), 'locked');
    assert.equal(s.rw.readLockSync(), 'locked');
    s.rw.readUnlock();
    s.rw.readUnlock();
    assert.equal(await s.rw.writeLock(), 'locked');
    s.rw.writeUnlock();
    assert.equal(await runPeer(t, s, 'c', 'read-once'), `read ${Atomics.load(s.d, W.A)} ${Atomics.load(s.d, W.B)}\n`);
  }
});

test('robust, 20 rounds: processes killed at random points of their reads and writes; the survivors (C, Node, this process) always progress, never see a conflict, and owner-died is reported exactly when a writer died', async (t) => {
  const s = named(t, 4);
  const survivors = [await started(t, s, 'c', 'robust', 1), await started(t, s, 'node-async', 'robust', 2)];
  t.after(() => Atomics.store(s.d, W.STOP, 1));
  for (const sv of survivors) await waitForLine(sv.child, /^running$/, 15_000);
  const victimKinds: PeerKind[] = ['c', 'node-async', 'node-sync'];
  const phases: Record<string, number> = {};
  let ownerDiedRounds = 0;
  for (let round = 0; round < 20; round++) {
    const id = 3 + (round % 8);
    const kind = victimKinds[round % victimKinds.length];
    const victim = await started(t, s, kind, 'robust', id);
    await waitForLine(victim.child, /^running$/, 15_000);
    await delay(randomInt(12));
    const before = Atomics.load(s.d, W.OWNER_DIED);
    Atomics.store(s.d, W.DEAD + id, 1);
    victim.child.kill('SIGKILL');
    assert.equal((await victim.done).signal, 'SIGKILL');
    const phase = Atomics.load(s.d, W.PHASE + id);
    const name = Object.entries(P).find(([, v]) => v === phase)![0];
    phases[name] = (phases[name] ?? 0) + 1;

    // Whoever takes the gate first after the death is told; this writer takes it at the latest.
    const r: LockResult = await s.rw.writeLock({ timeout: 15_000 });
    if (r === 'owner-died') Atomics.add(s.d, W.OWNER_DIED, 1);
    const told = Atomics.load(s.d, W.OWNER_DIED) - before;
    const what = `round ${round}: a ${kind} process killed in phase ${name}`;
    if (phase === P.WRITING) assert.equal(told, 1, `${what}: a writer died, one locker must be told`);
    else if (phase === P.READING || phase === P.END_READ || phase === P.IDLE) assert.equal(told, 0, `${what}: no writer died, nobody may be told`);
    else assert.ok(told === 0 || told === 1, `${what}: told ${told} times`);
    if (told) ownerDiedRounds++;
    for (let i = 1; i < 16; i++) {
      if (Atomics.load(s.d, W.DEAD + i)) continue;
      assert.equal(Atomics.load(s.d, W.INSIDE + i), 0, `${what}: process ${i} is inside with the writer`);
    }
    // Repair what the dead one may have left half-done, and forget it.
    if (Atomics.load(s.d, W.DIRTY)) {
      Atomics.store(s.d, W.B, Atomics.load(s.d, W.A));
      Atomics.store(s.d, W.DIRTY, 0);
    }
    Atomics.store(s.d, W.INSIDE + id, 0);
    Atomics.store(s.d, W.PHASE + id, 0);
    Atomics.store(s.d, W.DEAD + id, 0);
    s.rw.writeUnlock();
    assert.equal(await s.rw.readLock({ timeout: 15_000 }), 'locked');
    assert.equal(Atomics.load(s.d, W.A), Atomics.load(s.d, W.B));
    s.rw.readUnlock();
    // Both survivors keep going.
    const progress = [1, 2].map((i) => Atomics.load(s.d, W.PROGRESS + i));
    await until(() => [1, 2].every((i, k) => Atomics.load(s.d, W.PROGRESS + i) > progress[k]), `${what}: the survivors progress`, 15_000);
  }
  Atomics.store(s.d, W.STOP, 1);
  for (const sv of survivors) {
    const r = await sv.done;
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'running\nstopped\n');
  }
  assert.equal(Atomics.load(s.d, W.BAD), 0, 'a process saw another inside with a writer, or a half-written pair');
  t.diagnostic(`phases at death: ${JSON.stringify(phases)}; owner-died reported in ${ownerDiedRounds} rounds`);
});

test('C and Node share the lock: a C writer keeps Node readers out (without blocking the event loop), a Node writer keeps C readers out; each sees the other\'s writes', async (t) => {
  const s = named(t);
  const writer = await started(t, s, 'c', 'write-hold');
  await waitForLine(writer.child, /^writing$/);
  assert.equal(s.rw.tryReadLock(), 'busy');
  assert.equal(s.rw.tryWriteLock(), 'busy');
  const reading = s.rw.readLock({ timeout: 20_000 });
  const nodeWriter = await started(t, s, 'node-async', 'write-once', 14);
  await until(() => gateSleepers(s), 'the Node lockers watch the gate');
  let ticks = 0;
  const interval = setInterval(() => ticks++, 1);
  t.after(() => clearInterval(interval));
  await until(() => ticks >= 20, 'timers run while the locks are pending');
  clearInterval(interval);
  assert.equal(await settled(reading), false);
  assert.equal(nodeWriter.child.exitCode, null, 'the Node writer waits');
  Atomics.store(s.d, W.A, 11);
  Atomics.store(s.d, W.B, 11);
  writer.child.stdin!.end();
  assert.equal((await writer.done).stdout, 'writing\nreleased\n');
  assert.equal(await withTimeout(reading, 10_000, 'the reader gets in after the C writer'), 'locked');
  const seen = Atomics.load(s.d, W.A);
  assert.ok(seen === 11 || seen === 14, `the reader sees a whole write (${seen})`);
  s.rw.readUnlock();
  assert.equal((await nodeWriter.done).stdout, 'wrote\n');

  // A Node writer keeps a C reader out.
  await s.rw.writeLock();
  const cReader = await started(t, s, 'c', 'read-once');
  await until(() => gateSleepers(s), 'the C reader sleeps on the gate');
  Atomics.store(s.d, W.A, 12);
  Atomics.store(s.d, W.B, 12);
  assert.equal(cReader.child.exitCode, null);
  s.rw.writeUnlock();
  assert.equal((await cReader.done).stdout, 'read 12 12\n');
  assert.equal(await s.rw.readLock(), 'locked');
  // And a C writer waits for a Node reader.
  const cWriter = await started(t, s, 'c', 'write-once', 13);
  await until(() => gateOwner(s) === cWriter.child.pid, 'the C writer holds the gate, waiting for the reader');
  assert.equal(s.rw.tryReadLock(), 'busy', 'new readers queue behind a waiting writer');
  assert.equal(Atomics.load(s.d, W.A), 12);
  s.rw.readUnlock();
  assert.equal((await cWriter.done).stdout, 'wrote\n');
  assert.equal(await s.rw.readLock(), 'locked');
  assert.equal(Atomics.load(s.d, W.A), 13);
  s.rw.readUnlock();
});

test('timeouts and aborts take nothing: a timed-out or aborted writeLock (which held the gate while it waited for readers) lets readers in again; a timed-out readLock leaves no slot taken', async (t) => {
  const s = named(t, 4);
  const reader = await started(t, s, 'c', 'read-hold');
  await waitForLine(reader.child, /^reading$/);
  const timedOut = { code: 'ETIMEDOUT', errno: -110 };

  // Async timeout while waiting for the reader.
  const p = s.rw.writeLock({ timeout: 100 });
  await until(() => gateOwner(s) === process.pid, 'the writer holds the gate, waiting for the reader');
  await rejectsLike(p, TimeoutError, timedOut);
  assert.equal(s.rw.writing, false);
  assert.equal(gateOwner(s), 0, 'the gate is free again');
  assert.equal(await runPeer(t, s, 'c', 'read-once'), 'read 0 0\n', 'a new reader gets in');
  assert.equal(await runPeer(t, s, 'node-async', 'read-once'), 'read 0 0\n');

  // Abort while waiting for the reader, with a new reader queued behind it.
  const ac = new AbortController();
  const q = s.rw.writeLock({ signal: ac.signal });
  await until(() => gateOwner(s) === process.pid, 'the writer holds the gate');
  const queued = await started(t, s, 'c', 'read-once');
  await until(() => gateSleepers(s), 'a C reader queues behind the waiting writer');
  assert.equal(queued.child.exitCode, null);
  ac.abort(new Error('changed my mind'));
  await rejectsLike(q, AbortError, { code: 'ABORT_ERR', cause: /changed my mind/ });
  assert.equal((await queued.done).stdout, 'read 0 0\n', 'the queued reader gets in');
  assert.equal(gateOwner(s), 0);
  await rejectsLike(s.rw.writeLock({ signal: AbortSignal.abort() }), AbortError);
  await rejectsLike(s.rw.readLock({ signal: AbortSignal.abort() }), AbortError);

  // Sync timeout.
  throwsLike(() => s.rw.writeLockSync({ timeout: 50 }), TimeoutError, timedOut);
  assert.equal(gateOwner(s), 0);
  assert.equal(await runPeer(t, s, 'node-sync', 'read-once'), 'read 0 0\n');
  assert.equal(s.rw.tryWriteLock(), 'busy', 'the reader is still inside');
  reader.child.stdin!.end();
  assert.equal((await reader.done).stdout, 'reading\nreleased\n');

  // Readers timing out or aborted behind a C writer take no slot.
  const writer = await started(t, s, 'c', 'write-hold');
  await waitForLine(writer.child, /^writing$/);
  await rejectsLike(s.rw.readLock({ timeout: 50 }), TimeoutError, timedOut);
  throwsLike(() => s.rw.readLockSync({ timeout: 50 }), TimeoutError, timedOut);
  const ac2 = new AbortController();
  const r = s.rw.readLock({ signal: ac2.signal });
  await until(() => gateSleepers(s), 'the reader watches the gate');
  ac2.abort();
  await rejectsLike(r, AbortError);
  assert.equal(s.rw.readers, 0);
  writer.child.stdin!.end();
  assert.equal((await writer.done).stdout, 'writing\nreleased\n');
  assert.equal(s.rw.tryWriteLock(), 'locked', 'no slot was left taken');
  s.rw.writeUnlock();
  assert.equal(await runPeer(t, s, 'c', 'write-once', 1), 'wrote\n', 'nor by C\'s account');
});

test('DeadlockError (EDEADLK) for readLock while holding the write lock and writeLock while holding a read lock, on the same handle; nothing changes', async (t) => {
  const s = named(t, 4);
  const deadlock = { code: 'EDEADLK', errno: -35 };
  await s.rw.writeLock();
  await rejectsLike(s.rw.readLock(), DeadlockError, { ...deadlock, message: /holds the write lock/ });
  throwsLike(() => s.rw.readLockSync(), DeadlockError, deadlock);
  await rejectsLike(s.rw.writeLock(), DeadlockError, { ...deadlock, message: /already holds the lock/ });
  throwsLike(() => s.rw.writeLockSync(), DeadlockError, deadlock);
  assert.equal(s.rw.tryReadLock(), 'busy');
  assert.equal(s.rw.tryWriteLock(), 'busy');
  assert.equal(s.rw.writing, true);
  assert.equal(s.rw.readers, 0);
  assert.equal(gateOwner(s), process.pid);
  s.rw.writeUnlock();

  await s.rw.readLock();
  await rejectsLike(s.rw.writeLock({ timeout: 10_000 }), DeadlockError, { ...deadlock, message: /already holds the lock/ });
  throwsLike(() => s.rw.writeLockSync({ timeout: 10_000 }), DeadlockError, deadlock);
  assert.equal(s.rw.tryWriteLock(), 'busy');
  assert.equal(s.rw.readers, 1);
  assert.equal(s.rw.writing, false);
  assert.equal(Atomics.load(s.gate, 0), 0, 'the refused writeLock took no gate');
  assert.equal(await runPeer(t, s, 'c', 'read-once'), 'read 0 0\n');
  s.rw.readUnlock();
  assert.equal(await runPeer(t, s, 'c', 'write-once', 1), 'wrote\n');
});

test('close() releases what the handle holds (read locks, the write lock: no owner-died for anyone), ends its pending locks with EBADF having taken nothing; later calls are EBADF', async (t) => {
  const s = named(t, 4);
  const h = RwLock.open(s.spec);
  await h.readLock();
  await h.readLock();
  assert.equal(h.tryWriteLock(), 'busy');
  h.close();
  assert.equal(h.closed, true);
  assert.equal(h.readers, 0);
  assert.equal(await runPeer(t, s, 'c', 'write-once', 1), 'wrote\n', 'the read locks were released');

  const w = RwLock.open(s.spec);
  await w.writeLock();
  w.close();
  assert.equal(await runPeer(t, s, 'c', 'read-once'), 'read 1 1\n', 'the write lock was released (and no owner died)');
  assert.equal(await s.rw.writeLock(), 'locked');
  s.rw.writeUnlock();

  // Pending locks of a closed handle end with EBADF and take nothing.
  const writer = await started(t, s, 'c', 'write-hold');
  await waitForLine(writer.child, /^writing$/);
  const p = RwLock.open(s.spec);
  const pending = [p.readLock(), p.writeLock({ timeout: 60_000 }), p.readLock({ signal: new AbortController().signal })].map((x) => rejectsLike(x, IpcError, { code: 'EBADF', message: /closed/ }));
  await until(() => gateSleepers(s), 'the pending locks watch the gate');
  p.close();
  await withTimeout(Promise.all(pending), 5000, 'the pending locks end');
  writer.child.stdin!.end();
  assert.equal((await writer.done).stdout, 'writing\nreleased\n');
  assert.equal(s.rw.tryWriteLock(), 'locked', 'the closed handle took nothing');
  s.rw.writeUnlock();

  // A handle closed while its writeLock waits for a reader lets the gate go.
  const reader = await started(t, s, 'c', 'read-hold');
  await waitForLine(reader.child, /^reading$/);
  const q = RwLock.open(s.spec);
  const waiting = rejectsLike(q.writeLock(), IpcError, { code: 'EBADF' });
  await until(() => gateOwner(s) === process.pid, 'the writer holds the gate');
  q.close();
  await withTimeout(waiting, 5000, 'the pending writeLock ends');
  assert.equal(gateOwner(s), 0, 'the gate was let go');
  assert.equal(await runPeer(t, s, 'c', 'read-once'), 'read 1 1\n');
  reader.child.stdin!.end();
  await reader.done;

  const ebadf = { code: 'EBADF', errno: -9, message: /rwlock handle is closed/ };
  h.close();
  h[Symbol.dispose]();
  for (const call of [() => h.readLockSync(), () => h.writeLockSync(), () => h.tryReadLock(), () => h.tryWriteLock(), () => h.readUnlock(), () => h.writeUnlock()]) {
    throwsLike(call, IpcError, ebadf);
  }
  await rejectsLike(h.readLock(), IpcError, ebadf);
  await rejectsLike(h.writeLock(), IpcError, ebadf);
  await rejectsLike(h.withReadLock(() => 1), IpcError, ebadf);
  {
    using scoped = RwLock.open(s.spec);
    await scoped.readLock();
    t.after(() => assert.equal(scoped.closed, true));
  }
  assert.equal(s.rw.tryWriteLock(), 'locked', 'using released the read lock');
  s.rw.writeUnlock();
});
