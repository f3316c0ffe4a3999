/**
 * POSIX named semaphores (posix.Semaphore) against real processes: a compiled
 * C peer (test/peers/sem_posix_peer.c: sem_open, sem_wait, sem_post) and Node
 * children.
 *
 * Waits are observed, not slept on: glibc maps /dev/shm/sem.NAME and a waiter
 * sleeps in futex() on the first word of that mapping, so /proc/PID/maps and
 * /proc/PID/task/TID/syscall say exactly how many threads of a process wait on
 * a given semaphore. Every semaphore is unlinked by the test that made it, even
 * when the test fails; the last hook checks that none made by this file is left.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, readdirSync, readFileSync, statSync, promises as fsp } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  posix,
  AbortError,
  AlreadyExistsError,
  InvalidArgumentError,
  IpcError,
  NotFoundError,
  PermissionError,
  TimeoutError,
  TooLargeError,
} from 'interprocess';
import * as posixEntry from 'interprocess/posix';
import { collect, compilePeer, isRoot, NOBODY, shmEntries, spawnNode, uniqueName, type RunResult } from './helpers.js';
import { checkError, rejectsLike, throwsLike, withTimeout } from './helpers.js';

const { Semaphore, SEM_VALUE_MAX, SEM_MAX_NAME_BYTES } = posix;
type Sem = posix.Semaphore;
type TestContext = { after(fn: () => void | Promise<void>): void };

const thisFile = fileURLToPath(import.meta.url);
/** Names of this file's semaphores start so (helpers.uniqueName). */
const ourPrefix = `sem.ipt-${process.pid}-`;

const peerPath = compilePeer('sem_posix_peer', ['-pthread']);
// Reported by the tests that await it, not as an unhandled rejection.
peerPath.catch(() => {});

// ---------------------------------------------------------------------------
// Helpers

/** The file glibc keeps a named semaphore in. */
const semFile = (name: string): string => `/dev/shm/sem.${name.slice(1)}`;

/** Unlinks a semaphore if it still exists (cleanup must not hide the real failure). */
function unlinkQuietly(name: string): void {
  try {
    Semaphore.unlink(name);
  } catch (err) {
    if (!(err instanceof NotFoundError)) throw err;
  }
}

/** Unlinks the name (and closes the handle) when the test ends, pass or fail. */
function track<T extends Sem | string>(t: TestContext, sem: T): T {
  const name = typeof sem === 'string' ? sem : sem.name;
  t.after(() => {
    if (typeof sem !== 'string') sem.close();
    unlinkQuietly(name);
  });
  return sem;
}

/** A new semaphore with a unique name, removed after the test. */
function fresh(t: TestContext, tag: string, options: posix.SemaphoreCreateOptions = {}): Sem {
  return track(t, Semaphore.create(uniqueName(tag), options));
}





/** Polls `cond` until it holds (failing after `ms`). */
async function until(cond: () => boolean | Promise<boolean>, what: string | (() => string), ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${typeof what === 'string' ? what : what()}`);
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

/** Runs the C peer to completion; returns its stdout lines. */
async function runPeer(...args: (string | number)[]): Promise<string[]> {
  const r = await withTimeout(collect(spawn(await peerPath, args.map(String), { stdio: ['ignore', 'pipe', 'pipe'] })), 20_000, `sem_posix_peer ${args.join(' ')} exits`);
  assert.equal(r.code, 0, `sem_posix_peer ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout.trimEnd().split('\n');
}

/** Starts the C peer; killed after the test if it is still running. */
async function spawnPeer(t: TestContext, ...args: (string | number)[]): Promise<ChildProcess> {
  const child = spawn(await peerPath, args.map(String), { stdio: ['ignore', 'pipe', 'pipe'] });
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return child;
}

/** Starts a Node child running `code`; killed after the test if still running. */
function nodeChild(t: TestContext, code: string, args: (string | number)[] = [], options: Parameters<typeof spawnNode>[2] = {}): ChildProcess {
  const child = spawnNode(code, args.map(String), options);
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return child;
}

function finished(child: ChildProcess, what: string, ms = 15_000): Promise<RunResult> {
  return withTimeout(collect(child), ms, `${what} exits`, () => child.kill('SIGKILL'));
}

// The futex syscall number, as /proc/PID/task/TID/syscall shows it.
const FUTEX = await runPeer('sysno').then((lines) => {
  const m = /^futex=(\d+)$/.exec(lines[0]);
  assert.ok(m, lines[0]);
  return Number(m[1]);
});

/**
 * Where process `pid` mapped the semaphore `name` (its futex word), if it has.
 * Found by inode: the process that created it mapped glibc's temporary file
 * (/dev/shm/sem.XXXXXX, deleted) before linking it under its name.
 */
function mappedAt(pid: number | 'self', name: string): bigint | undefined {
  let ino: number;
  let maps: string;
  try {
    ino = statSync(semFile(name)).ino;
    maps = readFileSync(`/proc/${pid}/maps`, 'utf8');
  } catch {
    return undefined;
  }
  for (const line of maps.split('\n')) {
    const f = line.split(/\s+/);
    if (Number(f[4]) === ino && f[5]?.startsWith('/dev/shm/')) return BigInt('0x' + f[0].split('-')[0]);
  }
  return undefined;
}

/** How many threads of `pid` sleep in futex() on the semaphore `name`. */
function threadsWaitingOn(pid: number | 'self', name: string): number {
  const addr = mappedAt(pid, name);
  if (addr === undefined) return 0;
  let n = 0;
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return 0;
  }
  for (const tid of tids) {
    let f: string[];
    try {
      f = readFileSync(`/proc/${pid}/task/${tid}/syscall`, 'utf8').split(' ');
    } catch {
      continue; // the thread ended meanwhile
    }
    if (Number(f[0]) === FUTEX && f[1] !== undefined && BigInt(f[1]) === addr) n++;
  }
  return n;
}

const waiting = (name: string, n: number, pid: number | 'self' = 'self'): Promise<void> =>
  until(() => threadsWaitingOn(pid, name) >= n, () => `${n} thread(s) of ${pid} wait on ${name} (now ${threadsWaitingOn(pid, name)})`);

function threadCount(): number {
  return Number(/^Threads:\s+(\d+)$/m.exec(readFileSync('/proc/self/status', 'utf8'))![1]);
}

function umask(): number {
  return parseInt(/^Umask:\s+([0-7]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'))![1], 8);
}

after(() => {
  const left = shmEntries(ourPrefix);
  for (const f of left) unlinkQuietly('/' + f.slice('sem.'.length));
  assert.deepEqual(left, [], 'semaphores left behind in /dev/shm');
});

// ---------------------------------------------------------------------------

test('the subpath export is the same class; SEM_VALUE_MAX is the C library\'s, names take 251 bytes', () => {
  assert.equal(posixEntry.Semaphore, Semaphore);
  assert.equal(SEM_VALUE_MAX, 2147483647);
  assert.equal(SEM_MAX_NAME_BYTES, 251);
});

test('create: mode (less the umask) and initial value as asked, seen by C; exclusive by default', async (t) => {
  const name = uniqueName('create');
  const sem = track(t, Semaphore.create(name, { value: 3, mode: 0o640 }));
  assert.equal(sem.name, name);
  assert.equal(sem.created, true);
  assert.equal(sem.closed, false);
  assert.equal(sem.value, 3);
  assert.equal(statSync(semFile(name)).mode & 0o777, 0o640 & ~umask());
  assert.deepEqual(await runPeer('value', name), ['value=3']);
  // The default mode is 0o600.
  const plain = fresh(t, 'mode');
  assert.equal(statSync(semFile(plain.name)).mode & 0o777, 0o600 & ~umask());
  assert.equal(plain.value, 0, 'the default initial value is 0');

  throwsLike(() => Semaphore.create(name), AlreadyExistsError, {
    code: 'EEXIST',
    errno: -17,
    syscall: 'sem_open',
    path: name,
    message: `EEXIST: file already exists, sem_open '${name}'`,
  });
  throwsLike(() => Semaphore.create(name, { value: 1, exclusive: true }), AlreadyExistsError);
  assert.equal(sem.value, 3, 'the failed creates changed nothing');

  // exclusive:false opens the existing one; its value wins.
  const again = track(t, Semaphore.create(name, { exclusive: false, value: 9 }));
  assert.equal(again.created, false);
  assert.equal(again.value, 3);
  again.post();
  assert.equal(sem.value, 4, 'the same semaphore');
  // ... and creates a missing one, with the value asked for.
  const made = track(t, Semaphore.create(uniqueName('nonexcl'), { exclusive: false, value: 2 }));
  assert.equal(made.created, true);
  assert.equal(made.value, 2);
});

test('open: an existing semaphore (one C created); a missing one is NotFoundError', async (t) => {
  const name = track(t, uniqueName('open'));
  assert.deepEqual(await runPeer('create', name, '600', 5), ['created']);
  const sem = Semaphore.open(name);
  t.after(() => sem.close());
  assert.equal(sem.created, false);
  assert.equal(sem.value, 5);
  assert.equal(sem.tryWait(), true);
  assert.deepEqual(await runPeer('value', name), ['value=4']);

  const missing = uniqueName('missing');
  throwsLike(() => Semaphore.open(missing), NotFoundError, {
    code: 'ENOENT',
    errno: -2,
    syscall: 'sem_open',
    path: missing,
    message: `ENOENT: no such file or directory, sem_open '${missing}'`,
  });
  assert.equal(existsSync(semFile(missing)), false, 'open created nothing');
});

test('post, tryWait and value agree with a C process acting in between', async (t) => {
  const sem = fresh(t, 'post');
  assert.equal(sem.tryWait(), false, 'nothing to take at 0');
  assert.equal(sem.value, 0);
  sem.post();
  sem.post();
  assert.equal(sem.value, 2);
  assert.deepEqual(await runPeer('trywait', sem.name, 'value', sem.name), ['took', 'value=1']);
  assert.equal(sem.tryWait(), true);
  assert.equal(sem.tryWait(), false);
  assert.deepEqual(await runPeer('trywait', sem.name), ['EAGAIN']);
  assert.deepEqual(await runPeer('post', sem.name, 3), ['posted 3']);
  assert.equal(sem.value, 3);
  await sem.wait(); // a token is there: no waiting
  assert.equal(sem.value, 2);
  sem.waitSync();
  assert.equal(sem.value, 1);
});

test('unlink, static and instance: the name goes at once, open handles keep working', async (t) => {
  const sem = fresh(t, 'unlink', { value: 1 });
  const name = sem.name;
  const other = Semaphore.open(name);
  t.after(() => other.close());
  sem.unlink();
  assert.equal(existsSync(semFile(name)), false);
  throwsLike(() => Semaphore.open(name), NotFoundError, { code: 'ENOENT' });
  throwsLike(() => Semaphore.unlink(name), NotFoundError, { code: 'ENOENT', errno: -2, syscall: 'sem_unlink', path: name });
  throwsLike(() => sem.unlink(), NotFoundError, { syscall: 'sem_unlink' });
  // Both handles still share the unlinked semaphore.
  sem.post();
  assert.equal(other.value, 2);
  assert.equal(other.tryWait(), true);
  assert.equal(sem.value, 1);
  // The name can be used again, for a different semaphore.
  const next = track(t, Semaphore.create(name, { value: 7 }));
  assert.equal(next.value, 7);
  sem.post();
  assert.equal(next.value, 7);
  assert.equal(sem.value, 2);

  const byStatic = fresh(t, 'unlink-static');
  Semaphore.unlink(byStatic.name);
  assert.equal(existsSync(semFile(byStatic.name)), false);
  byStatic.post();
  assert.equal(byStatic.value, 1);
  // A name C made, unlinked from Node; C no longer finds it.
  const fromC = track(t, uniqueName('unlink-c'));
  await runPeer('create', fromC, '600', 0);
  Semaphore.unlink(fromC);
  assert.deepEqual(await runPeer('try-open', fromC), ['ok'], 'the name is free again');
});

test('ping-pong: a C process and Node hand a token back and forth 300 times', async (t) => {
  const N = 300;
  const ping = fresh(t, 'ping');
  const pong = fresh(t, 'pong');
  const peer = await spawnPeer(t, 'pingpong', ping.name, pong.name, N);
  const done = finished(peer, 'pingpong peer', 20_000);
  let rounds = 0;
  for (let i = 0; i < N; i++) {
    assert.equal(pong.value, 0, `round ${i}: the token is not back early`);
    ping.post();
    await pong.wait({ timeout: 15_000 });
    rounds++;
  }
  const r = await done;
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, `rounds ${N}\n`);
  assert.equal(rounds, N);
  assert.equal(ping.value, 0);
  assert.equal(pong.value, 0);
});

test('wait() does not block the event loop: a timer keeps ticking until another process posts', async (t) => {
  const sem = fresh(t, 'loop');
  let ticks = 0;
  const timer = setInterval(() => ticks++, 2);
  t.after(() => clearInterval(timer));
  let resolved = false;
  const pending = sem.wait({ timeout: 20_000 }).then(() => (resolved = true));
  await waiting(sem.name, 1);
  const start = ticks;
  await until(() => ticks >= start + 10, 'the timer ticks 10 times while the wait is pending');
  assert.equal(resolved, false);
  assert.equal(threadsWaitingOn('self', sem.name), 1, 'the wait is still in the kernel');
  assert.deepEqual(await runPeer('post', sem.name), ['posted 1']);
  await withTimeout(pending, 5000, 'the wait ends');
  assert.equal(sem.value, 0, 'the wait took the token');
  clearInterval(timer);
});

test('120 concurrent waits take no libuv pool thread: fs calls still complete; 120 posts resolve them all', async (t) => {
  const N = 120;
  const sem = fresh(t, 'many');
  const waits = Array.from({ length: N }, () => sem.wait({ timeout: 60_000 }));
  let settled = 0;
  for (const w of waits) void w.then(() => settled++, () => settled++);
  await waiting(sem.name, N);
  assert.equal(threadsWaitingOn('self', sem.name), N);
  // With the waits on libuv's four pool threads, these would never complete.
  const t0 = performance.now();
  const fsResults = await withTimeout(
    Promise.all([...Array.from({ length: 8 }, () => fsp.readFile(thisFile, 'utf8')), fsp.stat(thisFile), fsp.readdir('/dev/shm')]),
    5000,
    'fs calls complete',
  );
  const elapsed = performance.now() - t0;
  assert.ok(elapsed < 2000, `fs took ${elapsed} ms while ${N} waits were pending`);
  assert.ok((fsResults[0] as string).includes('120 concurrent waits'));
  assert.equal(settled, 0);

  assert.deepEqual(await runPeer('post', sem.name, N), [`posted ${N}`]);
  await withTimeout(Promise.all(waits), 15_000, 'all waits resolve');
  assert.equal(sem.value, 0, 'each wait took exactly one');
  assert.equal(threadsWaitingOn('self', sem.name), 0);
});

test('waitSync in this process: takes a token at once; { timeout } ends with TimeoutError', (t) => {
  const sem = fresh(t, 'sync', { value: 1 });
  sem.waitSync();
  assert.equal(sem.value, 0);
  let t0 = performance.now();
  throwsLike(() => sem.waitSync({ timeout: 30 }), TimeoutError, {
    code: 'ETIMEDOUT',
    errno: -110,
    syscall: 'sem_clockwait',
    path: sem.name,
    message: `ETIMEDOUT: timed out, sem_clockwait '${sem.name}'`,
  });
  assert.ok(performance.now() - t0 >= 25, 'waited for the timeout');
  t0 = performance.now();
  throwsLike(() => sem.waitSync({ timeout: 0 }), TimeoutError);
  assert.ok(performance.now() - t0 < 1000);
  sem.post();
  sem.waitSync({ timeout: 0 });
  assert.equal(sem.value, 0);
  throwsLike(() => sem.waitSync({ timeout: -1 }), InvalidArgumentError, { message: /timeout must be a non-negative number/ });
});

test('waitSync blocks a Node child, with and without a timeout, until a C process posts; a handled signal does not end it', async (t) => {
  const sem = fresh(t, 'sync-child');
  const child = nodeChild(
    t,
    `import { posix } from 'interprocess';
     let signals = 0;
     process.on('SIGUSR2', () => { signals++; });
     const sem = posix.Semaphore.open(process.argv[1]);
     sem.waitSync();
     console.log('acquired forever-wait');
     sem.waitSync({ timeout: 20000 });
     console.log('acquired timed wait');
     const t0 = performance.now();
     try { sem.waitSync({ timeout: 50 }); console.log('took?'); }
     catch (e) { console.log(e.name + ' ' + e.code + ' ' + (performance.now() - t0 >= 45)); }
     // The handler runs once the event loop turns again.
     const report = (n) => (signals >= 2 || n > 2000 ? console.log('signals ' + signals + ' value ' + sem.value) : setTimeout(report, 2, n + 1));
     report(0);`,
    [sem.name],
  );
  const done = finished(child, 'child');
  // The peer waits until the child's main thread sleeps on the semaphore,
  // interrupts it with a signal the child handles, sees it wait again, posts.
  const lines = await runPeer('interrupt', child.pid!, sem.name, 'post', sem.name, 'interrupt', child.pid!, sem.name, 'post', sem.name);
  assert.deepEqual(lines, ['interrupted', 'posted 1', 'interrupted', 'posted 1']);
  const r = await done;
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'acquired forever-wait\nacquired timed wait\nTimeoutError ETIMEDOUT true\nsignals 2 value 0\n');
  assert.equal(sem.value, 0);
});

test('wait({ timeout }) rejects with TimeoutError and decrements nothing', async (t) => {
  const sem = fresh(t, 'timeout');
  const t0 = performance.now();
  await rejectsLike(sem.wait({ timeout: 50 }), TimeoutError, {
    code: 'ETIMEDOUT',
    errno: -110,
    syscall: 'sem_wait',
    path: sem.name,
    message: `ETIMEDOUT: timed out, sem_wait '${sem.name}'`,
  });
  assert.ok(performance.now() - t0 >= 45, 'waited for the timeout');
  await rejectsLike(sem.wait({ timeout: 0 }), TimeoutError, { syscall: 'sem_wait' });
  await until(() => threadsWaitingOn('self', sem.name) === 0, 'no thread waits any more');
  assert.deepEqual(await runPeer('post', sem.name), ['posted 1']);
  assert.equal(sem.value, 1, 'the timed-out waits took nothing');
  // timeout 0 still takes a token that is there.
  await sem.wait({ timeout: 0 });
  assert.equal(sem.value, 0);
  // A timeout past setTimeout's limit (2^31 - 1 ms) waits; it does not fire at once.
  const long = sem.wait({ timeout: 2 ** 32 });
  await waiting(sem.name, 1);
  await runPeer('post', sem.name);
  await withTimeout(long, 5000, 'the long wait takes the token');
  assert.equal(sem.value, 0);
});

test('{ signal }: already aborted rejects at once and takes nothing; an abort mid-wait rejects promptly, taking nothing', async (t) => {
  const sem = fresh(t, 'abort', { value: 1 });
  const reason = new Error('stop');
  const abortFields = { name: 'AbortError', code: 'ABORT_ERR', cause: reason };
  await rejectsLike(sem.wait({ signal: AbortSignal.abort(reason) }), AbortError, abortFields);
  assert.equal(sem.value, 1, 'an already aborted wait takes nothing, even when it could');
  assert.equal(sem.tryWait(), true);
  await rejectsLike(sem.wait({ signal: AbortSignal.abort(reason) }), AbortError, abortFields);

  // Mid-wait: the thread is in the kernel when the signal fires.
  const ac = new AbortController();
  const pending = sem.wait({ signal: ac.signal });
  await waiting(sem.name, 1);
  const t0 = performance.now();
  ac.abort(reason);
  await rejectsLike(pending, AbortError, abortFields);
  assert.ok(performance.now() - t0 < 1000, `rejected after ${performance.now() - t0} ms`);
  await until(() => threadsWaitingOn('self', sem.name) === 0, 'no thread waits any more');
  assert.deepEqual(await runPeer('post', sem.name), ['posted 1']);
  assert.equal(sem.value, 1, 'the aborted wait took nothing');

  // Bad options are rejected whatever the value.
  await rejectsLike(sem.wait({ timeout: -1 }), InvalidArgumentError, { message: /timeout must be a non-negative number/ });
  await rejectsLike(sem.wait({ signal: 'x' as unknown as AbortSignal }), InvalidArgumentError, { code: 'ERR_INVALID_ARG_TYPE' });
  assert.equal(sem.value, 1);
});

test('no thread outlives its wait: after aborts and timeouts the thread count returns to its baseline', async (t) => {
  const sem = fresh(t, 'threads');
  // Warm up what starts threads lazily (libuv's pool, the waiter machinery).
  await fsp.readFile(thisFile);
  await rejectsLike(sem.wait({ timeout: 1 }), TimeoutError);
  await until(() => threadsWaitingOn('self', sem.name) === 0, 'the warm-up wait is gone');
  const baseline = threadCount();
  const acs = Array.from({ length: 20 }, () => new AbortController());
  const waits = [...acs.map((ac) => sem.wait({ signal: ac.signal })), ...Array.from({ length: 20 }, () => sem.wait({ timeout: 300 }))];
  await waiting(sem.name, 20);
  assert.ok(threadCount() >= baseline + 20, `${threadCount()} threads while the waits are pending (baseline ${baseline})`);
  for (const ac of acs) ac.abort();
  const results = await Promise.allSettled(waits);
  assert.deepEqual(
    results.map((r) => (r.status === 'rejected' ? (r.reason as Error).name : 'fulfilled')),
    [...Array(20).fill('AbortError'), ...Array(20).fill('TimeoutError')],
  );
  await until(() => threadCount() <= baseline, () => `threads return to ${baseline} (now ${threadCount()})`, 3000);
  assert.equal(threadsWaitingOn('self', sem.name), 0);
  sem.post();
  assert.equal(sem.value, 1, 'none of the 40 took anything');
});

test('close() with waits pending: they reject with EBADF having taken nothing, then the semaphore is really closed', async (t) => {
  const name = track(t, uniqueName('close'));
  const h = Semaphore.create(name);
  const ebadf = { code: 'EBADF', errno: -9, path: name, message: /closed/ };
  const waits = [h.wait(), h.wait({ timeout: 60_000 }), h.wait({ signal: new AbortController().signal })].map((p) => rejectsLike(p, IpcError, ebadf));
  await waiting(name, 3);
  assert.ok(mappedAt('self', name) !== undefined);
  h.close();
  assert.equal(h.closed, true);
  await withTimeout(Promise.all(waits), 5000, 'the waits reject');
  // Closed as soon as the last wait's thread let go of it (not later, when
  // the garbage collector finalizes the handle).
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(mappedAt('self', name), undefined, 'sem_close unmapped the semaphore');
  assert.equal(threadsWaitingOn('self', name), 0);

  // The handle refuses everything; close is idempotent.
  h.close();
  h[Symbol.dispose]();
  throwsLike(() => h.value, IpcError, ebadf);
  throwsLike(() => h.post(), IpcError, ebadf);
  throwsLike(() => h.tryWait(), IpcError, ebadf);
  throwsLike(() => h.waitSync({ timeout: 10 }), IpcError, ebadf);
  await rejectsLike(h.wait(), IpcError, ebadf);
  // The semaphore lives on; the closed waits took nothing.
  assert.deepEqual(await runPeer('post', name, 'value', name), ['posted 1', 'value=1']);

  // Closing right after a wait resolved (in its continuation) closes for real too.
  const h2 = Semaphore.open(name);
  await h2.wait();
  const w = h2.wait();
  await waiting(name, 1);
  await runPeer('post', name);
  await w;
  h2.close();
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(mappedAt('self', name), undefined, 'sem_close unmapped the semaphore after a finished wait');
  assert.deepEqual(await runPeer('value', name), ['value=0']);
});

test('a Node child that closes its handle while a wait is pending exits by itself, with EBADF', async (t) => {
  const sem = fresh(t, 'close-child');
  const child = nodeChild(
    t,
    `import { posix } from 'interprocess';
     const sem = posix.Semaphore.open(process.argv[1]);
     sem.wait().then(() => console.log('took?'), (e) => console.log('rejected ' + e.code));
     setTimeout(() => sem.close(), 20);`,
    [sem.name],
  );
  const r = await finished(child, 'child');
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'rejected EBADF\n');
  assert.equal(sem.value, 0);
});

test('values past SEM_VALUE_MAX: create is refused before sem_open; post at the maximum is TooLargeError (EOVERFLOW)', (t) => {
  const name = uniqueName('max');
  throwsLike(() => Semaphore.create(name, { value: SEM_VALUE_MAX + 1 }), TooLargeError, { message: new RegExp(`SEM_VALUE_MAX|${SEM_VALUE_MAX}`) });
  assert.equal(existsSync(semFile(name)), false, 'nothing was created');
  const sem = track(t, Semaphore.create(name, { value: SEM_VALUE_MAX }));
  assert.equal(sem.value, SEM_VALUE_MAX);
  throwsLike(() => sem.post(), TooLargeError, {
    code: 'EOVERFLOW',
    errno: -75,
    syscall: 'sem_post',
    path: name,
    message: new RegExp(`^EOVERFLOW: .*maximum value \\(${SEM_VALUE_MAX}\\)`),
  });
  assert.equal(sem.value, SEM_VALUE_MAX, 'unchanged');
  assert.equal(sem.tryWait(), true);
  sem.post();
  assert.equal(sem.value, SEM_VALUE_MAX);
});

test('names: 251 bytes after the slash work (in Node and C), 252 are refused; names without a leading slash too', async (t) => {
  const base = uniqueName('long') + '-';
  const pad = (bytes: number): string => base + 'x'.repeat(bytes - (base.length - 1));
  const longest = pad(251);
  assert.equal(Buffer.byteLength(longest) - 1, 251);
  const sem = track(t, Semaphore.create(longest, { value: 2 }));
  assert.equal(sem.value, 2);
  assert.deepEqual(shmEntries(`sem.${longest.slice(1)}`), [`sem.${longest.slice(1)}`]);
  assert.equal(`sem.${longest.slice(1)}`.length, 255, 'the file name is NAME_MAX long');
  assert.deepEqual(await runPeer('value', longest, 'post', longest), ['value=2', 'posted 1']);
  assert.equal(sem.value, 3);

  // The limit is the C library's: "sem." + name must fit NAME_MAX (255).
  const tooLong = pad(252);
  assert.deepEqual(await runPeer('try-open', tooLong), ['ENAMETOOLONG'], 'C cannot use 252 bytes either');
  const multibyte = base + 'é'.repeat(126); // 2 bytes each: past 251 bytes although fewer characters
  for (const call of [() => Semaphore.create(tooLong), () => Semaphore.open(tooLong), () => Semaphore.unlink(tooLong), () => Semaphore.create(multibyte)]) {
    throwsLike(call, InvalidArgumentError, { code: 'ENAMETOOLONG', message: /too long: \d+ bytes after '\/', at most 251/ });
  }
  assert.equal(existsSync(semFile(tooLong)), false);

  const bad: [unknown, RegExp][] = [
    ['no-slash', /must start with '\/'/],
    ['', /must start with '\/'/],
    ['/', /at least one character/],
    ['/a/b', /must not contain '\/'/],
    ['/a\0b', /NUL/],
    ['/.', /must not be/],
    ['/..', /must not be/],
  ];
  for (const [name, message] of bad) {
    for (const call of [() => Semaphore.create(name as string), () => Semaphore.open(name as string), () => Semaphore.unlink(name as string)]) {
      const err = throwsLike(call, InvalidArgumentError, { message });
      assert.equal((err as IpcError).syscall, undefined, 'refused before any system call');
    }
  }
  throwsLike(() => Semaphore.create(42 as unknown as string), InvalidArgumentError, { code: 'ERR_INVALID_ARG_TYPE' });
  throwsLike(() => Semaphore.open(undefined as unknown as string), InvalidArgumentError, { code: 'ERR_INVALID_ARG_TYPE' });
});

test('bad options are rejected before sem_open', () => {
  const name = uniqueName('badopt');
  const bad: [unknown, RegExp][] = [
    [{ value: -1 }, /value must be an integer from 0/],
    [{ value: 1.5 }, /value must be an integer/],
    [{ value: '1' }, /value must be an integer/],
    [{ value: NaN }, /value must be an integer/],
    [{ mode: 0o1000 }, /mode must be an integer from 0 to 0o777/],
    [{ mode: -1 }, /mode must be an integer/],
    [{ exclusive: 1 }, /exclusive must be a boolean/],
  ];
  for (const [options, message] of bad) {
    const err = throwsLike(() => Semaphore.create(name, options as posix.SemaphoreCreateOptions), InvalidArgumentError, { message });
    assert.equal((err as IpcError).syscall, undefined);
  }
  assert.equal(existsSync(semFile(name)), false, 'nothing was created');
});

test('permission: an unprivileged process cannot open a 0o600 semaphore (EACCES); after chmod 0o666 it can', { skip: !isRoot && 'needs root to run a child as nobody' }, async (t) => {
  const sem = fresh(t, 'perm', { mode: 0o600, value: 1 });
  const code = `import { posix } from 'interprocess';
     const attempt = (f) => {
       try { const s = f(); s.post(); const v = s.value; s.close(); return { ok: v }; }
       catch (e) { return { name: e.name, code: e.code, errno: e.errno, syscall: e.syscall, path: e.path }; }
     };
     const name = process.argv[1];
     console.log(JSON.stringify({
       uid: process.getuid(),
       open: attempt(() => posix.Semaphore.open(name)),
       create: attempt(() => posix.Semaphore.create(name, { exclusive: false })),
     }));`;
  const r = await finished(nodeChild(t, code, [sem.name], { uid: NOBODY, gid: NOBODY }), 'child as nobody');
  assert.equal(r.code, 0, r.stderr);
  const res = JSON.parse(r.stdout);
  assert.equal(res.uid, NOBODY);
  for (const what of ['open', 'create']) {
    assert.deepEqual(res[what], { name: PermissionError.name, code: 'EACCES', errno: -13, syscall: 'sem_open', path: sem.name }, what);
  }
  assert.equal(sem.value, 1, 'nothing was posted');

  chmodSync(semFile(sem.name), 0o666);
  const r2 = await finished(nodeChild(t, code, [sem.name], { uid: NOBODY, gid: NOBODY }), 'child as nobody');
  assert.equal(r2.code, 0, r2.stderr);
  const res2 = JSON.parse(r2.stdout);
  assert.deepEqual(res2.open, { ok: 2 });
  assert.deepEqual(res2.create, { ok: 3 });
  assert.equal(sem.value, 3);
});

test('using: the handle is closed at the end of the block', (t) => {
  const name = track(t, uniqueName('using'));
  let outside: Sem;
  {
    using sem = Semaphore.create(name, { value: 1 });
    outside = sem;
    assert.equal(sem.closed, false);
    assert.equal(sem.tryWait(), true);
  }
  assert.equal(outside.closed, true);
  throwsLike(() => outside.value, IpcError, { code: 'EBADF' });
});
