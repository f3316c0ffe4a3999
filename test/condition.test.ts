/**
 * Condition (futex-based condition variable, paired with a Mutex) against real
 * processes: Node children and a compiled C peer (test/peers/cond_peer.c) that
 * uses include/interprocess.h's ipx_cond_wait / ipx_cond_notify.
 *
 * Most tests share one POSIX shared memory object laid out as
 *
 *   0    Mutex          (the pthread_mutex_t)
 *   64   Condition A    ("not empty", or the one condition of a test)
 *   72   Condition B    ("not full")
 *   128  int32 words    full, value, go, turn, woken, ready
 *
 * Waits are observed, not slept on: a Condition publishes how many threads are
 * in wait(), and the mutex word shows a watcher (FUTEX_WAITERS) while a
 * re-lock is pending. Every object is unlinked by the test that made it, even
 * when the test fails; the last hook checks that /dev/shm holds nothing of
 * this process.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import {
  Condition,
  CONDITION_SIZE,
  Mutex,
  posix,
  AbortError,
  AlreadyExistsError,
  InvalidArgumentError,
  IpcError,
  NotFoundError,
  TimeoutError,
} from 'interprocess';
import { collect, compilePeer, root, runNode, shmEntries, spawnNode, tempDir, uniqueName, waitForLine, type RunResult } from './helpers.js';
import { checkError, finished, killOnExit, rejectsLike, settled, throwsLike, unlinkQuietly, until, withTimeout } from './helpers.js';

type TestContext = { after(fn: () => void | Promise<void>): void };

const PREFIX = `ipt-${process.pid}-`;
const tmp = tempDir('cond');

// Layout of the shared object most tests use.
const MUTEX_AT = 0;
const A_AT = 64;
const B_AT = 72;
const DATA_AT = 128;
const FULL = 0;
const VALUE = 1;
const GO = 2;
const TURN = 3;
const WOKEN = 4;
const READY = 5;
/** FUTEX_WAITERS in a glibc mutex word: someone waits (or watches) for the lock. */
const FUTEX_WAITERS = 0x80000000 | 0;

after(() => {
  tmp.cleanup();
  const left = shmEntries(PREFIX);
  for (const f of left) unlinkQuietly('/' + f);
  assert.deepEqual(left, [], 'shared memory objects left behind');
});

// ---------------------------------------------------------------------------
// helpers

const condPeer = compilePeer('cond_peer', ['-pthread', `-I${join(root, 'include')}`]);
condPeer.catch(() => {}); // reported by the tests that await it

/** The shared object of a test: mutex, conditions A and B, data words; unlinked after the test. */
interface Shared {
  name: string;
  shm: posix.SharedMemory;
  m: Mutex;
  a: Condition;
  b: Condition;
  d: Int32Array;
  /** The mutex's lock word (owner tid | FUTEX_WAITERS | FUTEX_OWNER_DIED). */
  word: Int32Array;
}

function shared(t: TestContext): Shared {
  const name = uniqueName('cond');
  const shm = posix.SharedMemory.create(name, { size: 4096 });
  t.after(() => {
    shm.close();
    unlinkQuietly(name);
  });
  const m = Mutex.init(shm.buffer, MUTEX_AT);
  const a = Condition.init(shm.buffer, A_AT);
  const b = Condition.init(shm.buffer, B_AT);
  t.after(() => {
    a.close();
    b.close();
    m.close();
  });
  return { name, shm, m, a, b, d: new Int32Array(shm.buffer, DATA_AT, 16), word: new Int32Array(shm.buffer, MUTEX_AT, 1) };
}

/**
 * A Node child playing the same steps as cond_peer.c on the shared object;
 * `mode` 'sync' uses lockSync/waitSync, 'async' lock()/wait().
 */
const NODE_PEER = `
import { Mutex, Condition, posix } from 'interprocess';
const [name, mode, step, x, y] = process.argv.slice(1);
const shm = posix.SharedMemory.open(name);
const m = Mutex.at(shm.buffer, ${MUTEX_AT});
const A = Condition.at(shm.buffer, ${A_AT});
const B = Condition.at(shm.buffer, ${B_AT});
const d = new Int32Array(shm.buffer, ${DATA_AT}, 16);
const [FULL, VALUE, GO, TURN, WOKEN, READY] = [${FULL}, ${VALUE}, ${GO}, ${TURN}, ${WOKEN}, ${READY}];
const sync = mode === 'sync';
const fix = (r) => { if (r === 'owner-died') m.markConsistent(); };
const lock = async () => fix(sync ? m.lockSync() : await m.lock());
const wait = async (c) => fix(sync ? c.waitSync(m) : await c.wait(m));
const n = Number(x);
if (step === 'produce') {
  for (let i = 1; i <= n; i++) {
    await lock();
    while (Atomics.load(d, FULL)) await wait(B);
    Atomics.store(d, VALUE, i);
    Atomics.store(d, FULL, 1);
    A.notify();
    m.unlock();
  }
  console.log('produced ' + n);
} else if (step === 'consume') {
  let bad = 0;
  for (let i = 1; i <= n; i++) {
    await lock();
    while (!Atomics.load(d, FULL)) await wait(A);
    if (Atomics.load(d, VALUE) !== i) bad++;
    Atomics.store(d, FULL, 0);
    B.notify();
    m.unlock();
  }
  console.log('consumed ' + n + ' bad ' + bad);
} else if (step === 'wait-go') {
  await lock();
  Atomics.add(d, READY, 1);
  while (!Atomics.load(d, GO)) await wait(A);
  Atomics.add(d, WOKEN, 1);
  m.unlock();
  console.log('woken');
} else if (step === 'pingpong') {
  const me = n, rounds = Number(y);
  for (let i = 0; i < rounds; i++) {
    await lock();
    while (Atomics.load(d, TURN) !== me) await wait(A);
    Atomics.store(d, TURN, me ? 0 : 1);
    A.notify();
    m.unlock();
  }
  console.log('pingpong ' + rounds);
} else {
  throw new Error('unknown step ' + step);
}
`;

type PeerKind = 'c' | 'node-sync' | 'node-async';

/** Starts a peer (C, or a Node child) running `step` on the shared object `name`. */
async function peer(t: TestContext, kind: PeerKind, name: string, step: string, ...args: (string | number)[]): Promise<ChildProcess> {
  if (kind === 'c') {
    const specs = [`${name}+${MUTEX_AT}`, `${name}+${A_AT}`, `${name}+${B_AT}`, `${name}+${DATA_AT}`];
    return killOnExit(t, spawn(await condPeer, [...specs, step, ...args.map(String)], { stdio: ['pipe', 'pipe', 'pipe'] }));
  }
  return killOnExit(t, spawnNode(NODE_PEER, [name, kind === 'node-sync' ? 'sync' : 'async', step, ...args.map(String)]));
}

/** Runs a peer to completion; returns its stdout. */
async function runPeer(t: TestContext, kind: PeerKind, name: string, step: string, ...args: (string | number)[]): Promise<string> {
  const child = await peer(t, kind, name, step, ...args);
  child.stdin?.end();
  const r = await finished(child, `${kind} ${step}`);
  assert.equal(r.code, 0, `${kind} ${step}: ${r.stderr}`);
  return r.stdout;
}

// ---------------------------------------------------------------------------

test('named: create writes the header (kind 2), exclusive by default, open and exclusive:false share it with Node and C, unlink removes the name only', async (t) => {
  const name = uniqueName('ncond');
  const mname = uniqueName('nmutex');
  const dname = uniqueName('ndata');
  t.after(() => [name, mname, dname].forEach(unlinkQuietly));
  const c = Condition.create(name);
  t.after(() => c.close());
  const m = Mutex.create(mname);
  t.after(() => m.close());
  const data = posix.SharedMemory.create(dname, { size: 64 });
  t.after(() => data.close());
  const d = new Int32Array(data.buffer, 0, 16);

  assert.equal(CONDITION_SIZE, 8);
  assert.equal(c.name, name);
  assert.equal(c.waiters, 0);
  assert.equal(c.closed, false);
  const file = readFileSync(`/dev/shm${name}`);
  assert.ok(file.length >= 64 + CONDITION_SIZE);
  assert.equal(file.readUInt32LE(0), 0x786d7069, 'magic');
  assert.equal(file.readUInt16LE(4), 1, 'layout version');
  assert.equal(file.readUInt16LE(6), 2, 'kind: condition');
  assert.equal(file.readInt32LE(8), process.pid, 'creator pid');
  assert.deepEqual([file.readInt32LE(64), file.readInt32LE(68)], [0, 0], 'seq and waiters start at 0');

  throwsLike(() => Condition.create(name), AlreadyExistsError, { code: 'EEXIST', path: name });
  const again = Condition.create(name, { exclusive: false });
  t.after(() => again.close());
  const opened = Condition.open(name);
  t.after(() => opened.close());
  throwsLike(() => Condition.open(mname), InvalidArgumentError, { message: /is an interprocess mutex, not a condition/ });
  throwsLike(() => Mutex.open(name), InvalidArgumentError, { message: /is an interprocess condition, not a mutex/ });

  // A C program finds both by name (ipx_named_object checks the header) and waits;
  // a notify through another handle of the same name wakes it.
  const specs = [mname, name, name, `${dname}+0`];
  const cWaiter = killOnExit(t, spawn(await condPeer, [...specs, 'wait-go'], { stdio: ['ignore', 'pipe', 'pipe'] }));
  const cDone = finished(cWaiter, 'C waiter');
  await until(() => opened.waiters === 1 && Atomics.load(d, READY) === 1, 'the C peer waits on the named condition');
  assert.equal(again.waiters, 1, 'every handle sees the same waiters word');
  await m.lock();
  Atomics.store(d, GO, 1);
  again.notify();
  m.unlock();
  const r = await cDone;
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'woken\n');
  assert.equal(c.waiters, 0);

  // A C program given a mutex where a condition belongs refuses it.
  const wrong = await collect(spawn(await condPeer, [mname, mname, name, `${dname}+0`, 'go'], { stdio: ['ignore', 'pipe', 'pipe'] }));
  assert.equal(wrong.code, 1);
  assert.match(wrong.stderr, /not an interprocess object of that kind/);

  Condition.unlink(name);
  assert.deepEqual(shmEntries(name), []);
  throwsLike(() => Condition.open(name), NotFoundError, { code: 'ENOENT', path: name });
  throwsLike(() => Condition.unlink(name), NotFoundError, { code: 'ENOENT' });
  // Open handles keep working after the name is gone.
  await m.lock();
  const pending = c.wait(m, { timeout: 20_000 });
  opened.notify();
  assert.equal(await withTimeout(pending, 5000, 'the wait on an unlinked condition ends'), 'locked');
  assert.ok(m.held);
  m.unlock();
});

test('placed: init zeroes 8 bytes at a 4-aligned offset, at() shares them (a worker thread waits, this thread notifies); bad buffers and offsets are rejected', async (t) => {
  const buffer = new SharedArrayBuffer(256);
  new Uint8Array(buffer).fill(0xff);
  const c = Condition.init(buffer, 12);
  t.after(() => c.close());
  assert.equal(c.name, undefined);
  assert.deepEqual([...new Int32Array(buffer, 12, 2)], [0, 0]);
  assert.equal(new Uint8Array(buffer)[11], 0xff, 'nothing before it is touched');
  assert.equal(new Uint8Array(buffer)[20], 0xff, 'nothing after it is touched');
  assert.equal(c.waiters, 0);
  const m = Mutex.init(buffer, 64);
  t.after(() => m.close());
  Atomics.store(new Int32Array(buffer, 128, 1), 0, 0);

  const worker = new Worker(
    `const { workerData, parentPort } = require('node:worker_threads');
     import('interprocess').then(({ Mutex, Condition }) => {
       const m = Mutex.at(workerData, 64);
       const c = Condition.at(workerData, 12);
       const go = new Int32Array(workerData, 128, 1);
       m.lockSync();
       parentPort.postMessage('locked');
       while (!Atomics.load(go, 0)) c.waitSync(m, { timeout: 20000 });
       m.unlock();
       parentPort.postMessage('woken');
     });`,
    { eval: true, workerData: buffer },
  );
  t.after(() => worker.terminate());
  const messages: string[] = [];
  worker.on('message', (msg: string) => messages.push(msg));
  worker.on('error', (err) => messages.push(`error: ${String(err)}`));
  await until(() => messages.includes('locked') && c.waiters === 1, () => `the worker waits (${messages.join(', ')})`);
  await m.lock();
  Atomics.store(new Int32Array(buffer, 128, 1), 0, 1);
  c.notify();
  m.unlock();
  await until(() => messages.includes('woken'), 'the worker wakes');
  assert.equal(c.waiters, 0);

  throwsLike(() => Condition.init(buffer, 2), InvalidArgumentError, { message: /multiple of 4/ });
  throwsLike(() => Condition.at(buffer, 252), InvalidArgumentError, { message: /needs 8 bytes at offset 252/ });
  throwsLike(() => Condition.init(buffer, 256), InvalidArgumentError, { message: /needs 8 bytes/ });
  Condition.at(buffer, 248).close(); // the last 8 bytes fit
  throwsLike(() => Condition.init(buffer, -4), InvalidArgumentError);
  throwsLike(() => Condition.init(new ArrayBuffer(8) as unknown as SharedArrayBuffer), InvalidArgumentError, { code: 'ERR_INVALID_ARG_TYPE' });
  assert.equal(new Uint8Array(buffer)[250], 0xff);
});

type Side = 'this' | PeerKind;

/**
 * N items through a one-slot buffer guarded by a Mutex and two Conditions, for each
 * (producer, consumer) pair: this process, a Node peer (sync or async waits) or the C peer.
 * Each item must arrive exactly once and in order, and nobody be left waiting.
 */
async function producerConsumer(t: TestContext, pairs: ReadonlyArray<readonly [Side, Side]>, N = 1000): Promise<void> {
  for (const [producer, consumer] of pairs) {
    const s = shared(t);
    const children: Promise<string>[] = [];
    if (producer !== 'this') children.push(runPeer(t, producer, s.name, 'produce', N));
    if (consumer !== 'this') children.push(runPeer(t, consumer, s.name, 'consume', N));
    const seen: number[] = [];
    if (producer === 'this') {
      for (let i = 1; i <= N; i++) {
        await s.m.lock();
        while (Atomics.load(s.d, FULL)) await s.b.wait(s.m, { timeout: 20_000 });
        Atomics.store(s.d, VALUE, i);
        Atomics.store(s.d, FULL, 1);
        s.a.notify();
        s.m.unlock();
      }
    } else if (consumer === 'this') {
      for (let i = 1; i <= N; i++) {
        await s.m.lock();
        while (!Atomics.load(s.d, FULL)) await s.a.wait(s.m, { timeout: 20_000 });
        seen.push(Atomics.load(s.d, VALUE));
        Atomics.store(s.d, FULL, 0);
        s.b.notify();
        s.m.unlock();
      }
    }
    const out = (await Promise.all(children)).join('');
    if (producer !== 'this') assert.match(out, new RegExp(`^produced ${N}$`, 'm'));
    if (consumer !== 'this') assert.match(out, new RegExp(`^consumed ${N} bad 0$`, 'm'), `${producer} -> ${consumer}`);
    else assert.deepEqual(seen, Array.from({ length: N }, (_, i) => i + 1));
    assert.equal(Atomics.load(s.d, FULL), 0);
    assert.equal(s.a.waiters + s.b.waiters, 0, 'nobody is left waiting');
  }
}

test('producer/consumer between Node processes: 1000 items through a one-slot buffer, each exactly once and in order (async and sync waits)', async (t) => {
  await producerConsumer(t, [
    ['this', 'node-sync'],
    ['node-async', 'this'],
    ['node-sync', 'node-async'],
  ]);
});

test('producer/consumer between Node and C (ipx_cond_wait / ipx_cond_notify): 1000 items each way, each exactly once and in order', async (t) => {
  await producerConsumer(t, [
    ['c', 'this'],
    ['this', 'c'],
    ['c', 'node-sync'],
    ['node-async', 'c'],
  ]);
});

test('notifyAll wakes every waiter (C processes, Node processes sync and async, this process), whoever notifies; notify wakes one', async (t) => {
  // Round 1: a C process notifies all; this process is one of the waiters.
  {
    const s = shared(t);
    const kinds: PeerKind[] = ['c', 'c', 'node-sync', 'node-async'];
    const children = await Promise.all(kinds.map((k) => peer(t, k, s.name, 'wait-go')));
    const done = children.map((c, i) => finished(c, `${kinds[i]} waiter`));
    await s.m.lock();
    const mine = (async () => {
      while (!Atomics.load(s.d, GO)) await s.a.wait(s.m, { timeout: 30_000 });
      Atomics.add(s.d, WOKEN, 1);
      s.m.unlock();
    })();
    await until(() => s.a.waiters === 5 && Atomics.load(s.d, READY) === 4, () => `all five wait (waiters ${s.a.waiters}, ready ${Atomics.load(s.d, READY)})`);
    assert.equal(await runPeer(t, 'c', s.name, 'go'), 'notified\n');
    await withTimeout(mine, 20_000, 'this process is woken');
    for (const r of await Promise.all(done)) {
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, 'woken\n');
    }
    assert.equal(Atomics.load(s.d, WOKEN), 5);
    assert.equal(s.a.waiters, 0);
  }
  // Round 2: this process notifies all; then notify() wakes one of several.
  {
    const s = shared(t);
    const kinds: PeerKind[] = ['c', 'node-async', 'c', 'node-sync'];
    const children = await Promise.all(kinds.map((k) => peer(t, k, s.name, 'wait-go')));
    const done = children.map((c, i) => finished(c, `${kinds[i]} waiter`));
    await until(() => s.a.waiters === 4 && Atomics.load(s.d, READY) === 4, () => `all four wait (waiters ${s.a.waiters})`);
    await s.m.lock();
    Atomics.store(s.d, GO, 1);
    s.a.notifyAll();
    s.m.unlock();
    for (const r of await Promise.all(done)) {
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, 'woken\n');
    }
    assert.equal(Atomics.load(s.d, WOKEN), 4);
    assert.equal(s.a.waiters, 0);

    Atomics.store(s.d, GO, 0);
    Atomics.store(s.d, READY, 0);
    Atomics.store(s.d, WOKEN, 0);
    const more = await Promise.all((['c', 'node-async', 'c'] as PeerKind[]).map((k) => peer(t, k, s.name, 'wait-go')));
    const moreDone = more.map((c) => finished(c, 'waiter'));
    await until(() => s.a.waiters === 3 && Atomics.load(s.d, READY) === 3, 'three wait');
    await s.m.lock();
    Atomics.store(s.d, GO, 1);
    s.a.notify();
    s.m.unlock();
    await until(() => Atomics.load(s.d, WOKEN) >= 1, 'notify wakes one');
    await s.m.lock();
    s.a.notifyAll();
    s.m.unlock();
    for (const r of await Promise.all(moreDone)) assert.equal(r.code, 0, r.stderr);
    assert.equal(Atomics.load(s.d, WOKEN), 3);
    assert.equal(s.a.waiters, 0);
  }
});

/** Plays `rounds` ping-pong turns as player `me` in this process. */
async function pingpong(s: Shared, me: number, rounds: number): Promise<void> {
  for (let i = 0; i < rounds; i++) {
    await s.m.lock();
    while (Atomics.load(s.d, TURN) !== me) await s.a.wait(s.m, { timeout: 20_000 });
    Atomics.store(s.d, TURN, me ? 0 : 1);
    s.a.notify();
    s.m.unlock();
  }
}

test('no lost wake-up: a notify between wait() releasing the mutex and its thread sleeping ends the wait; ping-pong with one notify per turn never stalls (Node and C)', async (t) => {
  const s = shared(t);
  // wait() releases the mutex before it returns its promise; the sleep starts
  // later on the waiter thread. A notify in between must still end it.
  for (let i = 0; i < 300; i++) {
    await s.m.lock();
    const p = s.a.wait(s.m, { timeout: 20_000 });
    assert.equal(s.m.held, false);
    s.a.notify();
    assert.equal(await withTimeout(p, 10_000, `wait ${i} ends after a notify that came before its sleep`), 'locked');
    s.m.unlock();
  }
  assert.equal(s.a.waiters, 0);

  // Each turn is handed over by exactly one notify, typically while the other
  // side is between its unlock and its sleep: a lost wake-up stalls the game.
  const games: [PeerKind | 'this', PeerKind, number][] = [
    ['this', 'c', 2000],
    ['node-sync', 'c', 3000],
    ['node-async', 'node-sync', 1000],
  ];
  for (const [first, second, rounds] of games) {
    const g = shared(t);
    const runs = [first === 'this' ? pingpong(g, 0, rounds).then(() => `pingpong ${rounds}\n`) : runPeer(t, first, g.name, 'pingpong', 0, rounds), runPeer(t, second, g.name, 'pingpong', 1, rounds)];
    const out = await withTimeout(Promise.all(runs), 25_000, `${first} and ${second} play ${rounds} turns`);
    assert.deepEqual(out, [`pingpong ${rounds}\n`, `pingpong ${rounds}\n`]);
    assert.equal(g.a.waiters, 0);
  }
});

test('wait() never blocks the event loop, takes no libuv pool thread, and several waits of one thread wake together', async (t) => {
  const s = shared(t);
  const waits: Promise<void>[] = [];
  for (let i = 0; i < 8; i++) {
    await s.m.lock();
    waits.push(
      (async () => {
        while (!Atomics.load(s.d, GO)) await s.a.wait(s.m, { timeout: 30_000 });
        s.m.unlock();
      })(),
    );
  }
  await until(() => s.a.waiters === 8, 'eight waits are asleep');
  let ticks = 0;
  const interval = setInterval(() => ticks++, 1);
  t.after(() => clearInterval(interval));
  await until(() => ticks >= 20, 'timers run while the waits are pending');
  const file = join(tmp.dir, 'f');
  writeFileSync(file, 'x');
  const { readFile } = await import('node:fs/promises');
  await withTimeout(Promise.all(Array.from({ length: 8 }, () => readFile(file, 'utf8'))), 5000, 'fs calls complete while 8 waits are pending');
  assert.equal(s.a.waiters, 8);
  clearInterval(interval);
  assert.equal(await runPeer(t, 'c', s.name, 'go'), 'notified\n');
  await withTimeout(Promise.all(waits), 10_000, 'all eight waits end');
  assert.equal(s.a.waiters, 0);
  assert.equal(s.m.held, false);
});

test('timeout: TimeoutError (ETIMEDOUT) with the mutex held again, as pthread_cond_timedwait; waiters back to 0; it waits for the mutex if someone else has it', async (t) => {
  const s = shared(t);
  const timedOut = { code: 'ETIMEDOUT', errno: -110, syscall: 'futex' };
  await s.m.lock();
  const t0 = performance.now();
  await rejectsLike(s.a.wait(s.m, { timeout: 50 }), TimeoutError, timedOut);
  assert.ok(performance.now() - t0 >= 49, `timed out after ${performance.now() - t0} ms`);
  assert.equal(s.m.held, true);
  assert.equal(s.a.waiters, 0);
  assert.equal(await runPeer(t, 'c', s.name, 'trylock'), 'busy\n', 'this process holds the mutex');
  throwsLike(() => s.a.waitSync(s.m, { timeout: 30 }), TimeoutError, timedOut);
  assert.equal(s.m.held, true);
  await rejectsLike(s.a.wait(s.m, { timeout: 0 }), TimeoutError, timedOut);
  throwsLike(() => s.a.waitSync(s.m, { timeout: 0 }), TimeoutError, timedOut);
  assert.equal(s.m.held, true);
  assert.equal(s.a.waiters, 0);
  s.m.unlock();
  assert.equal(await runPeer(t, 'c', s.name, 'trylock'), 'free\n');

  // A named condition names itself in the error.
  const name = uniqueName('tcond');
  t.after(() => unlinkQuietly(name));
  const named = Condition.create(name);
  t.after(() => named.close());
  await s.m.lock();
  await rejectsLike(named.wait(s.m, { timeout: 10 }), TimeoutError, { ...timedOut, path: name, message: `ETIMEDOUT: timed out, futex '${name}'` });
  s.m.unlock();

  // The timeout passes while a C process holds the mutex: the wait ends only
  // once it has the mutex back. (If the C process is slower to take the mutex
  // than the timeout, try again with a longer one.)
  for (const timeout of [300, 1500, 6000]) {
    const holder = await peer(t, 'c', s.name, 'hold-after-line');
    const exited = finished(holder, 'holder', 30_000);
    await waitForLine(holder, /^ready$/);
    await s.m.lock();
    const p = s.a.wait(s.m, { timeout });
    await until(() => s.a.waiters === 1, 'the wait sleeps');
    holder.stdin!.write('go\n');
    await waitForLine(holder, /^holding$/);
    if (s.a.waiters === 0) {
      // The timeout came first: the wait re-took the mutex before the holder.
      await rejectsLike(p, TimeoutError, timedOut);
      s.m.unlock();
      holder.stdin!.end();
      await exited;
      continue;
    }
    await until(() => s.a.waiters === 0 && (Atomics.load(s.word, 0) & FUTEX_WAITERS) !== 0, 'the wait timed out and watches the mutex', timeout + 10_000);
    assert.equal(await settled(p), false, 'the wait has not ended without the mutex');
    assert.equal(s.m.held, false);
    holder.stdin!.end();
    await rejectsLike(p, TimeoutError, timedOut);
    assert.equal(s.m.held, true);
    assert.equal((await exited).stdout, 'ready\nholding\nreleased\n');
    s.m.unlock();
    return;
  }
  assert.fail('the C process never took the mutex within the timeout');
});

test('abort: AbortError (cause: the reason) with the mutex held again, waiters back to 0, also while another process holds the mutex; an aborted signal ends it at once', async (t) => {
  const s = shared(t);
  await s.m.lock();
  const ac = new AbortController();
  const p = s.a.wait(s.m, { signal: ac.signal });
  await until(() => s.a.waiters === 1, 'the wait sleeps');
  ac.abort('enough');
  await rejectsLike(p, AbortError, { code: 'ABORT_ERR', cause: 'enough' });
  assert.equal(s.m.held, true);
  assert.equal(s.a.waiters, 0);
  await rejectsLike(s.a.wait(s.m, { signal: AbortSignal.abort('before') }), AbortError, { cause: 'before' });
  assert.equal(s.m.held, true);
  assert.equal(s.a.waiters, 0);
  s.m.unlock();

  // Aborted while a C process holds the mutex: it ends once the mutex is back.
  const holder = await peer(t, 'c', s.name, 'hold-after-line');
  const exited = finished(holder, 'holder');
  await waitForLine(holder, /^ready$/);
  await s.m.lock();
  const ac2 = new AbortController();
  const p2 = s.a.wait(s.m, { signal: ac2.signal, timeout: 60_000 });
  await until(() => s.a.waiters === 1, 'the wait sleeps');
  holder.stdin!.write('go\n');
  await waitForLine(holder, /^holding$/);
  ac2.abort();
  await until(() => s.a.waiters === 0 && (Atomics.load(s.word, 0) & FUTEX_WAITERS) !== 0, 'the wait was aborted and watches the mutex');
  assert.equal(await settled(p2), false);
  holder.stdin!.end();
  await rejectsLike(p2, AbortError);
  assert.equal(s.m.held, true);
  assert.equal((await exited).code, 0);
  s.m.unlock();
  assert.equal(await runPeer(t, 'c', s.name, 'trylock'), 'free\n');
});

test('waiting without holding the mutex is an InvalidArgumentError that changes nothing (free, held by another process, held through another handle); bad options too', async (t) => {
  const s = shared(t);
  const notHeld = { code: 'ERR_INVALID_ARG_VALUE', message: /needs the mutex held by this thread/ };
  await rejectsLike(s.a.wait(s.m), InvalidArgumentError, notHeld);
  throwsLike(() => s.a.waitSync(s.m), InvalidArgumentError, notHeld);
  assert.equal(s.a.waiters, 0);
  assert.equal(Atomics.load(s.word, 0), 0, 'the mutex is still free');

  const holder = await peer(t, 'c', s.name, 'hold');
  const exited = finished(holder, 'holder');
  await waitForLine(holder, /^holding$/);
  await rejectsLike(s.a.wait(s.m, { timeout: 1000 }), InvalidArgumentError, notHeld);
  throwsLike(() => s.a.waitSync(s.m, { timeout: 1000 }), InvalidArgumentError, notHeld);
  assert.equal(s.a.waiters, 0);
  holder.stdin!.end();
  assert.equal((await exited).stdout, 'holding\nreleased\n', 'the holder kept the mutex until it released it');

  const other = Mutex.at(s.shm.buffer, MUTEX_AT);
  t.after(() => other.close());
  await s.m.lock();
  await rejectsLike(s.a.wait(other), InvalidArgumentError, notHeld);
  assert.equal(s.m.held, true);
  s.m.unlock();

  // Bad options are refused before the mutex is released: a C process
  // blocked on the mutex does not get it in between.
  const blocked = await peer(t, 'c', s.name, 'hold-after-line');
  const blockedDone = finished(blocked, 'blocked C process');
  await waitForLine(blocked, /^ready$/);
  await s.m.lock();
  blocked.stdin!.write('go\n');
  await until(() => (Atomics.load(s.word, 0) & FUTEX_WAITERS) !== 0, 'the C process sleeps on the mutex');
  await withTimeout(rejectsLike(s.a.wait(s.m, { timeout: -1 }), InvalidArgumentError, { code: 'ERR_OUT_OF_RANGE' }), 5000, 'a bad timeout is refused');
  await withTimeout(rejectsLike(s.a.wait(s.m, { signal: 'x' as unknown as AbortSignal }), InvalidArgumentError, { code: 'ERR_INVALID_ARG_TYPE' }), 5000, 'a bad signal is refused');
  throwsLike(() => s.a.waitSync(s.m, { timeout: NaN }), InvalidArgumentError, { code: 'ERR_OUT_OF_RANGE' });
  assert.equal(s.m.held, true);
  assert.equal(s.m.ownerTid, process.pid, 'this (main) thread still owns the mutex');
  assert.equal(s.a.waiters, 0);
  s.m.unlock();
  await waitForLine(blocked, /^holding$/);
  blocked.stdin!.end();
  assert.equal((await blockedDone).code, 0);
});

test('a mutex whose unlock fails (EPERM: its lock word no longer names this thread) makes wait()/waitSync() throw with the waiters count unchanged', async () => {
  // In a child: an unlock that failed leaves the mutex on the thread's robust
  // list (glibc takes it off only on success), not something for this process.
  const r = await runNode(`
    import { Mutex, Condition } from 'interprocess';
    const sab = new SharedArrayBuffer(256);
    const out = {};
    for (const [form, at] of [['wait', 0], ['waitSync', 64]]) {
      const m = Mutex.init(sab, at);
      const c = Condition.init(sab, 128 + at / 8);
      m.lockSync();
      // Another process re-initialised the mutex while this one held it.
      Atomics.store(new Int32Array(sab, at, 1), 0, 0);
      try {
        if (form === 'wait') await c.wait(m, { timeout: 2000 });
        else c.waitSync(m, { timeout: 2000 });
        out[form] = 'returned';
      } catch (e) {
        out[form] = { error: e.constructor.name, code: e.code, syscall: e.syscall, held: m.held, waiters: c.waiters, word: Atomics.load(new Int32Array(sab, 128 + at / 8, 2), 1) };
      }
    }
    console.log(JSON.stringify(out));
  `);
  assert.equal(r.code, 0, r.stderr);
  const failed = { error: 'PermissionError', code: 'EPERM', syscall: 'pthread_mutex_unlock', held: false, waiters: 0, word: 0 };
  assert.deepEqual(JSON.parse(r.stdout), { wait: failed, waitSync: failed });
});

test('close() ends the pending waits of that handle with EBADF after re-taking the mutex; later calls are EBADF; other handles and a C waiter are unaffected', async (t) => {
  const s = shared(t);
  const h = Condition.at(s.shm.buffer, A_AT);
  const cWaiter = await peer(t, 'c', s.name, 'wait-go');
  const cDone = finished(cWaiter, 'C waiter');
  await s.m.lock();
  const p1 = h.wait(s.m);
  await s.m.lock();
  const p2 = h.wait(s.m, { timeout: 60_000, signal: new AbortController().signal });
  await until(() => s.a.waiters === 3, 'two waits here and one in C');
  h.close();
  assert.equal(h.closed, true);
  const ebadf = { code: 'EBADF', errno: -9, message: /condition handle is closed/ };
  // Each wait ends holding the mutex; release it so the other can end too.
  const ends = [p1, p2].map((p) =>
    p.then(
      () => assert.fail('a wait on a closed handle resolved'),
      (err: unknown) => {
        const held = s.m.held;
        if (held) s.m.unlock();
        return { err, held };
      },
    ),
  );
  for (const { err, held } of await withTimeout(Promise.all(ends), 5000, 'both waits end')) {
    checkError(err, IpcError, ebadf);
    assert.equal(held, true, 'the wait ended with the mutex held again');
  }
  assert.equal(s.a.waiters, 1, 'only the C waiter is left');

  h.close();
  h[Symbol.dispose]();
  throwsLike(() => h.notify(), IpcError, ebadf);
  throwsLike(() => h.notifyAll(), IpcError, ebadf);
  await s.m.lock();
  await rejectsLike(h.wait(s.m), IpcError, ebadf);
  throwsLike(() => h.waitSync(s.m), IpcError, ebadf);
  assert.equal(s.m.held, true, 'a call on a closed handle does not touch the mutex');
  Atomics.store(s.d, GO, 1);
  s.a.notify();
  s.m.unlock();
  const r = await cDone;
  assert.equal(r.stdout, 'woken\n');
  assert.equal(s.a.waiters, 0);
  {
    using scoped = Condition.at(s.shm.buffer, B_AT);
    t.after(() => assert.equal(scoped.closed, true));
  }
});

test('notify with no waiters makes no system call (the waiters word is 0); with a waiter registered each notify is one FUTEX_WAKE (strace)', async (t) => {
  const probe = await collect(spawn('strace', ['-f', '-qq', '-e', 'trace=getpid', '/bin/true'], { stdio: ['ignore', 'pipe', 'pipe'] })).catch(() => undefined);
  if (!probe || probe.code !== 0) {
    t.skip('strace is not available (or ptrace is not permitted)');
    return;
  }
  const s = shared(t);
  const N = 3000;
  const log = join(tmp.dir, 'strace.log');
  const code = `
    import { Condition, posix } from 'interprocess';
    import { writeSync } from 'node:fs';
    const shm = posix.SharedMemory.open(process.argv[1]);
    const c = Condition.at(shm.buffer, ${A_AT});
    const words = new Int32Array(shm.buffer, ${A_AT}, 2);
    const n = Number(process.argv[2]);
    writeSync(1, 'none ' + c.waiters + '\\n');
    for (let i = 0; i < n; i++) { c.notify(); c.notifyAll(); }
    Atomics.add(words, 1, 1); // registered as wait() does, but asleep nowhere
    writeSync(1, 'registered ' + c.waiters + '\\n');
    for (let i = 0; i < n; i++) c.notify();
    Atomics.sub(words, 1, 1);
    writeSync(1, 'end\\n');`;
  const child = killOnExit(t, spawn('strace', ['-f', '-qq', '-e', 'trace=futex,write', '-o', log, process.execPath, '--input-type=module', '-e', code, '--', s.name, String(N)], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] }));
  const r = await finished(child, 'traced child', 30_000);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'none 0\nregistered 1\nend\n');
  assert.equal(new Int32Array(s.shm.buffer, A_AT, 1)[0], 3 * N, 'every notify advanced seq');
  const lines = readFileSync(log, 'utf8').split('\n');
  const at = (marker: string): number => lines.findIndex((l) => l.includes(`write(1, "${marker}`));
  const [none, registered, end] = [at('none'), at('registered'), at('end')];
  assert.ok(none >= 0 && registered > none && end > registered, 'markers in the trace');
  // Shared (not FUTEX_PRIVATE) wakes: this package's; glibc and V8 use private futexes.
  const wakes = (from: number, to: number): Map<string, number> => {
    const byAddress = new Map<string, number>();
    for (const l of lines.slice(from, to)) {
      const m = /futex\((0x[0-9a-f]+), FUTEX_WAKE, /.exec(l);
      if (m) byAddress.set(m[1], (byAddress.get(m[1]) ?? 0) + 1);
    }
    return byAddress;
  };
  const withWaiter = [...wakes(registered, end)].sort((x, y) => y[1] - x[1]);
  assert.ok(withWaiter.length > 0 && withWaiter[0][1] === N, `one FUTEX_WAKE per notify with a waiter registered: ${JSON.stringify(withWaiter)}`);
  const seqAddress = withWaiter[0][0];
  assert.equal(wakes(none, registered).get(seqAddress) ?? 0, 0, `no FUTEX_WAKE on seq for ${2 * N} notifies without waiters`);
  const otherShared = [...wakes(none, registered).values()].reduce((x, y) => x + y, 0);
  assert.ok(otherShared < 10, `${otherShared} shared FUTEX_WAKE calls without waiters`);
});

test('C ipx_cond_wait: a deadline passes with ETIMEDOUT and the mutex held; a Node notify ends it; a Node wait() resolves owner-died when the notifier dies holding the mutex', async (t) => {
  const s = shared(t);
  assert.equal(await runPeer(t, 'c', s.name, 'timedwait', 50), 'ETIMEDOUT held\n');
  assert.equal(s.a.waiters, 0);

  const timed = await peer(t, 'c', s.name, 'timedwait', 20_000);
  const timedDone = finished(timed, 'C timed waiter');
  await until(() => s.a.waiters === 1, 'the C process waits');
  await s.m.lock();
  s.a.notify();
  s.m.unlock();
  assert.equal((await timedDone).stdout, '0 held\n');
  assert.equal(s.a.waiters, 0);

  await s.m.lock();
  const p = s.a.wait(s.m, { timeout: 30_000 });
  const dier = await peer(t, 'c', s.name, 'lock-notify-die');
  await waitForLine(dier, /^holding$/);
  const gone = once(dier, 'exit');
  dier.kill('SIGKILL');
  await gone;
  assert.equal(await withTimeout(p, 10_000, 'the wait ends'), 'owner-died');
  assert.equal(s.m.held, true);
  assert.equal(Atomics.load(s.d, GO), 1);
  s.m.markConsistent();
  s.m.unlock();
  assert.equal(s.a.waiters, 0);
  assert.equal(await runPeer(t, 'c', s.name, 'trylock'), 'free\n');
});
