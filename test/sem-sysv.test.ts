/**
 * System V semaphore sets (sysv.SemaphoreSet) against real processes:
 * compiled C peers (test/peers/sem_tutorial.c, the tutorial's
 * semaphore_example.c, and test/peers/sem_sysv_peer.c) and Node children.
 *
 * Waits are observed, not slept on: the kernel counts the processes waiting on
 * each semaphore (GETNCNT, GETZCNT), so a test acts exactly while a wait is in
 * the kernel. Every set is removed by the test that made it, even when the
 * test fails; the last hook checks that no set made or used by this file is left.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { appendFileSync, readFileSync, writeFileSync, promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  sysv,
  formatKey,
  AbortError,
  AlreadyExistsError,
  InvalidArgumentError,
  IpcError,
  NotFoundError,
  PermissionError,
  RemovedError,
  TimeoutError,
  TooLargeError,
  WouldBlockError,
} from 'interprocess';
import * as sysvEntry from 'interprocess/sysv';
import { collect, compilePeer, isRoot, NOBODY, spawnNode, tempDir, waitForLine, type RunResult } from './helpers.js';
import { checkError, rejectsLike, throwsLike, until, withTimeout } from './helpers.js';

const { SemaphoreSet, SEMVMX, SEMMSL, SEMOPM, IPC_PRIVATE, ftok } = sysv;
type SemSet = sysv.SemaphoreSet;
type TestContext = { after(fn: () => void | Promise<void>): void };

const tmp = tempDir('sem-sysv');
const thisFile = fileURLToPath(import.meta.url);
/** Every set id this file created or was told about. */
const madeIds = new Set<number>();

interface SetRow {
  key: number;
  id: number;
  perms: number;
  nsems: number;
  uid: number;
  cuid: number;
  otime: number;
}

/** /proc/sysvipc/sem, parsed. */
function sets(): SetRow[] {
  return readFileSync('/proc/sysvipc/sem', 'utf8')
    .split('\n')
    .slice(1)
    .filter((l) => l.trim())
    .map((l) => {
      const f = l.trim().split(/\s+/).map(Number);
      return { key: f[0], id: f[1], perms: parseInt(l.trim().split(/\s+/)[2], 8), nsems: f[3], uid: f[4], cuid: f[6], otime: f[8] };
    });
}

const ours = (): SetRow[] => sets().filter((s) => madeIds.has(s.id));
const exists = (id: number): boolean => sets().some((s) => s.id === id);

/** Removes a set if it still exists (cleanup must not hide the real failure). */
function removeQuietly(id: number): void {
  try {
    SemaphoreSet.remove(id);
  } catch (err) {
    if (!(err instanceof InvalidArgumentError) && !(err instanceof RemovedError)) throw err; // EINVAL/EIDRM: already gone
  }
}

/** Removes the set when the test ends, pass or fail. */
function track<T extends SemSet | number>(t: TestContext, set: T): T {
  const id = typeof set === 'number' ? set : set.id;
  madeIds.add(id);
  t.after(() => {
    removeQuietly(id);
    if (typeof set !== 'number') set.close();
  });
  return set;
}

/** A new IPC_PRIVATE set, removed after the test. */
function fresh(t: TestContext, count: number, value?: number | number[]): SemSet {
  return track(t, SemaphoreSet.create({ count, value }));
}

/** A key no set uses yet, in a range unlikely to meet other programs' keys. */
function createWithFreshKey(t: TestContext, options: Omit<sysv.SemaphoreSetCreateOptions, 'key'>, base = 0x53450000): { set: SemSet; key: number } {
  for (let attempt = 0; ; attempt++) {
    const key = base + randomInt(0x10000);
    try {
      return { set: track(t, SemaphoreSet.create({ ...options, key })), key: key | 0 };
    } catch (err) {
      if (!(err instanceof AlreadyExistsError) || attempt > 20) throw err;
    }
  }
}

/** A fresh file to give ftok, whose key (project 65) no set uses yet. */
let files = 0;
function ftokFile(): string {
  for (;;) {
    const file = join(tmp.dir, `semfile-${++files}`);
    writeFileSync(file, '');
    const key = ftok(file, 65);
    if (!sets().some((s) => s.key === key)) return file;
  }
}






/** Until at least `n` processes wait on semaphore `num` for an increase (or for zero). */
function waitersReach(set: SemSet, num: number, n: number, kind: 'forIncrease' | 'forZero' = 'forIncrease'): Promise<void> {
  return until(() => set.waiters(num)[kind] >= n, () => `${n} wait(s) ${kind} on semaphore ${num} (now ${set.waiters(num)[kind]})`);
}

function threadCount(): number {
  return Number(/^Threads:\s+(\d+)$/m.exec(readFileSync('/proc/self/status', 'utf8'))![1]);
}

const peerPath = compilePeer('sem_sysv_peer');
const tutorialPath = compilePeer('sem_tutorial');
// Reported by the tests that await them, not as unhandled rejections.
peerPath.catch(() => {});
tutorialPath.catch(() => {});

/** Runs sem_sysv_peer to completion; returns its stdout lines and pid. */
async function runPeer(...args: (string | number)[]): Promise<{ lines: string[]; pid: number }> {
  const child = spawn(await peerPath, args.map(String), { stdio: ['ignore', 'pipe', 'pipe'] });
  const r = await withTimeout(collect(child), 20_000, `sem_sysv_peer ${args.join(' ')} exits`, () => child.kill('SIGKILL'));
  assert.equal(r.code, 0, `sem_sysv_peer ${args.join(' ')} failed: ${r.stderr}`);
  return { lines: r.stdout.trimEnd().split('\n'), pid: child.pid! };
}

/** Starts sem_sysv_peer (stdin a pipe); killed after the test if it is still running. */
async function spawnPeer(t: TestContext, ...args: (string | number)[]): Promise<ChildProcess> {
  const child = spawn(await peerPath, args.map(String), { stdio: ['pipe', 'pipe', 'pipe'] });
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

after(() => {
  tmp.cleanup();
  const left = ours();
  for (const s of left) removeQuietly(s.id);
  assert.deepEqual(left, [], 'semaphore sets left behind');
});

// ---------------------------------------------------------------------------

test('the subpath export is the same API; SEMVMX, SEMMSL and SEMOPM are the kernel\'s', () => {
  assert.equal(sysvEntry.SemaphoreSet, SemaphoreSet);
  assert.equal(SEMVMX, 32767);
  const [msl, , opm] = readFileSync('/proc/sys/kernel/sem', 'utf8').trim().split(/\s+/).map(Number);
  assert.equal(SEMMSL, msl);
  assert.equal(SEMOPM, opm);
});

test('create with a key number: count, mode and initial values, seen by C; exclusive by default; exclusive:false and open() find it', async (t) => {
  const { set, key } = createWithFreshKey(t, { count: 3, mode: 0o640, value: [1, 2, 3] });
  assert.equal(set.key, key);
  assert.equal(set.count, 3);
  assert.equal(set.created, true);
  assert.deepEqual(set.getAll(), [1, 2, 3]);
  assert.deepEqual((await runPeer('get', set.id)).lines, ['values 1 2 3']);
  const row = sets().find((s) => s.id === set.id);
  assert.ok(row);
  assert.equal(row.key, key);
  assert.equal(row.nsems, 3);
  assert.equal(row.perms & 0o777, 0o640, 'System V ignores the umask');

  throwsLike(() => SemaphoreSet.create({ key, count: 3 }), AlreadyExistsError, {
    code: 'EEXIST',
    errno: -17,
    syscall: 'semget',
    key,
    message: `EEXIST: file already exists, semget key ${formatKey(key)}`,
  });
  // exclusive:false opens it: the count is the kernel's, the values are left alone.
  const again = SemaphoreSet.create({ key, count: 2, exclusive: false, value: 9 });
  t.after(() => again.close());
  assert.equal(again.created, false);
  assert.equal(again.id, set.id);
  assert.equal(again.count, 3);
  assert.deepEqual(again.getAll(), [1, 2, 3]);
  throwsLike(() => SemaphoreSet.create({ key, count: 4, exclusive: false }), InvalidArgumentError, { code: 'EINVAL', errno: -22, syscall: 'semget', key });

  const opened = SemaphoreSet.open(key);
  t.after(() => opened.close());
  assert.equal(opened.id, set.id);
  assert.equal(opened.count, 3);
  assert.equal(opened.created, false);
  assert.equal(SemaphoreSet.open(key >>> 0).id, set.id, 'the unsigned spelling names the same set');

  // One value for all; none given means 0.
  const all7 = createWithFreshKey(t, { count: 4, value: 7 }).set;
  assert.deepEqual(all7.getAll(), [7, 7, 7, 7]);
  const zeros = createWithFreshKey(t, { count: 2 }).set;
  assert.deepEqual(zeros.getAll(), [0, 0]);
  // On a key nobody uses, exclusive:false creates.
  const made = createWithFreshKey(t, { count: 1, exclusive: false, value: 5 }, 0x53460000).set;
  assert.equal(made.created, true);
  assert.equal(made.get(0), 5);
});

test('open of a missing key is NotFoundError; open(IPC_PRIVATE) is rejected; fromId of no set is EINVAL', () => {
  let key: number;
  do key = 0x53470000 + randomInt(0x10000);
  while (sets().some((s) => s.key === key));
  throwsLike(() => SemaphoreSet.open(key), NotFoundError, {
    code: 'ENOENT',
    errno: -2,
    syscall: 'semget',
    key,
    message: `ENOENT: no such file or directory, semget key ${formatKey(key)}`,
  });
  throwsLike(() => SemaphoreSet.open(IPC_PRIVATE), InvalidArgumentError, { message: /IPC_PRIVATE names no existing set/ });
  assert.ok(!exists(0x7ffffff0));
  throwsLike(() => SemaphoreSet.fromId(0x7ffffff0), InvalidArgumentError, { code: 'EINVAL', errno: -22, syscall: 'semctl' });
});

test('create with { path, projId } uses ftok; open finds it the same way', (t) => {
  const file = ftokFile();
  const set = track(t, SemaphoreSet.create({ key: { path: file, projId: 65 }, count: 2, value: [4, 5] }));
  assert.equal(set.key, ftok(file, 65));
  assert.equal(set.stat().key, ftok(file, 65));
  const opened = SemaphoreSet.open({ path: file, projId: 65 });
  t.after(() => opened.close());
  assert.equal(opened.id, set.id);
  assert.deepEqual(opened.getAll(), [4, 5]);
  throwsLike(() => SemaphoreSet.open({ path: join(tmp.dir, 'missing'), projId: 65 }), NotFoundError, { syscall: 'ftok' });
});

test('IPC_PRIVATE (the default) makes a new set each time; a Node child reaches it with fromId', async (t) => {
  const a = fresh(t, 2, [1, 1]);
  const b = track(t, SemaphoreSet.create({ key: IPC_PRIVATE, count: 2 }));
  assert.notEqual(a.id, b.id);
  assert.equal(a.key, 0);
  assert.equal(a.stat().key, 0);
  const child = nodeChild(
    t,
    `import { sysv } from 'interprocess';
     const set = sysv.SemaphoreSet.fromId(Number(process.argv[1]));
     console.log(set.count + ' ' + set.key + ' ' + set.getAll().join(','));
     set.post(1);
     set.tryOp({ num: 0, op: -1 });`,
    [a.id],
  );
  const r = await finished(child, 'child');
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, '2 0 1,1\n');
  assert.deepEqual(a.getAll(), [0, 2]);
  assert.deepEqual(b.getAll(), [0, 0]);
  assert.equal(a.lastPid(0), child.pid);
});

test('get/set one value and getAll/setAll agree with a C process acting in between', async (t) => {
  const set = fresh(t, 3);
  set.set(1, 5);
  assert.equal(set.get(1), 5);
  assert.deepEqual((await runPeer('get', set.id)).lines, ['values 0 5 0']);
  await runPeer('set', set.id, 2, 9);
  assert.equal(set.get(2), 9);
  assert.equal(set.get(), 0, 'num defaults to 0');
  set.setAll([3, 2, 1]);
  assert.deepEqual((await runPeer('get', set.id)).lines, ['values 3 2 1']);
  assert.deepEqual(set.getAll(), [3, 2, 1]);
  set.set(0, SEMVMX);
  assert.equal(set.get(0), SEMVMX);
  throwsLike(() => set.setAll([1, 2]), InvalidArgumentError, { message: /array of 3 numbers/ });
  throwsLike(() => set.setAll('123' as unknown as number[]), InvalidArgumentError);
  assert.deepEqual(set.getAll(), [SEMVMX, 2, 1]);
});

test('stat(): nsems, key, mode, owner and creator ids, otime/ctime (no cpid in semid_ds); lastPid follows the processes', async (t) => {
  const t0 = Math.floor(Date.now() / 1000);
  const { set, key } = createWithFreshKey(t, { count: 2, mode: 0o660 });
  const st = set.stat();
  assert.equal(st.id, set.id);
  assert.equal(st.key, key);
  assert.equal(st.nsems, 2);
  assert.equal(st.mode & 0o777, 0o660);
  assert.equal(st.uid, process.getuid!());
  assert.equal(st.gid, process.getgid!());
  assert.equal(st.cuid, process.getuid!());
  assert.equal(st.cgid, process.getgid!());
  assert.equal(st.otime, null, 'no semop yet');
  assert.ok(st.ctime instanceof Date);
  // The kernel stamps whole seconds from a coarse clock: allow one second.
  const now = (): number => Math.ceil(Date.now() / 1000);
  assert.ok(st.ctime.getTime() / 1000 >= t0 - 1 && st.ctime.getTime() / 1000 <= now());
  assert.ok(!('cpid' in st), 'semid_ds has no creator pid');
  assert.deepEqual(SemaphoreSet.stat(set.id), st);
  const row = sets().find((s) => s.id === set.id)!;
  assert.equal(row.uid, st.uid);
  assert.equal(row.cuid, st.cuid);

  assert.equal(set.lastPid(0), 0, 'nobody operated on it yet');
  await set.op({ num: 0, op: 1 });
  assert.equal(set.lastPid(0), process.pid);
  const otime = set.stat().otime;
  assert.ok(otime instanceof Date);
  assert.ok(otime.getTime() / 1000 >= t0 - 1 && otime.getTime() / 1000 <= now());
  const { pid } = await runPeer('op', set.id, '1:1');
  assert.equal(set.lastPid(1), pid);
  assert.equal(set.lastPid(0), process.pid);
});

test('op() with several operations is atomic: tokens moved back and forth with a C process, a C watcher never sees a state in between', async (t) => {
  const N = 200;
  const set = fresh(t, 2, [1, 0]);
  const watcher = await spawnPeer(t, 'watch', set.id, 1);
  const watched = finished(watcher, 'watcher', 30_000);
  await waitForLine(watcher, /^watching$/);
  // The C peer moves the token 1 -> 0; Node moves it 0 -> 1, in one semop each.
  const mover = await spawnPeer(t, 'transfer', set.id, 1, 0, N);
  const moved = finished(mover, 'mover', 30_000);
  for (let i = 0; i < N; i++) await set.op([{ num: 0, op: -1 }, { num: 1, op: +1 }], { timeout: 15_000 });
  const m = await moved;
  assert.equal(m.code, 0, m.stderr);
  assert.equal(m.stdout, `transferred ${N}\n`);
  watcher.stdin!.end();
  const w = await watched;
  assert.equal(w.code, 0, w.stderr);
  const r = /^watching\nreads (\d+) first (\d+) second (\d+) bad (\d+)\n$/.exec(w.stdout);
  assert.ok(r, w.stdout);
  assert.ok(Number(r[1]) > 0, 'the watcher read the set');
  assert.equal(Number(r[4]), 0, `the watcher saw a state with the token in neither or both places: ${w.stdout}`);
  assert.deepEqual(set.getAll(), [1, 0]);
});

test('an op that cannot complete applies nothing: tryOp, a pending op (seen from C), opSync and a timed-out op', async (t) => {
  const set = fresh(t, 2, [1, 0]);
  const both = [{ num: 0, op: -1 }, { num: 1, op: -1 }];
  assert.equal(set.tryOp(both), false);
  assert.deepEqual(set.getAll(), [1, 0], 'semaphore 0 was not taken');

  const pending = set.op(both, { timeout: 20_000 });
  await until(() => set.waiters(0).forIncrease + set.waiters(1).forIncrease >= 1, 'the op waits');
  assert.deepEqual((await runPeer('get', set.id)).lines, ['values 1 0'], 'while it waits, nothing is taken');
  assert.deepEqual((await runPeer('op', set.id, '1:1')).lines, ['done']);
  await withTimeout(pending, 5000, 'the op completes');
  assert.deepEqual(set.getAll(), [0, 0], 'both were taken together');

  set.setAll([1, 0]);
  throwsLike(() => set.opSync(both, { timeout: 20 }), TimeoutError, { code: 'ETIMEDOUT', syscall: 'semtimedop' });
  await rejectsLike(set.op(both, { timeout: 20 }), TimeoutError, { code: 'ETIMEDOUT', syscall: 'semop' });
  assert.deepEqual(set.getAll(), [1, 0]);
});

test('noWait (IPC_NOWAIT): op() rejects with WouldBlockError, tryOp() is false, opSync throws; nothing is applied', async (t) => {
  const set = fresh(t, 2, [0, 3]);
  const wouldBlock = { code: 'EAGAIN', errno: -11, syscall: 'semop', key: 0 };
  await rejectsLike(set.op({ num: 0, op: -1, noWait: true }), WouldBlockError, wouldBlock);
  await rejectsLike(set.op([{ num: 1, op: -1 }, { num: 0, op: -1, noWait: true }]), WouldBlockError, wouldBlock);
  throwsLike(() => set.opSync({ num: 0, op: -1, noWait: true }), WouldBlockError, wouldBlock);
  throwsLike(() => set.opSync([{ num: 1, op: -1 }, { num: 0, op: -1, noWait: true }]), WouldBlockError, wouldBlock);
  assert.equal(set.tryOp({ num: 0, op: -1 }), false);
  assert.equal(set.tryOp([{ num: 1, op: -3 }, { num: 0, op: -1 }]), false);
  assert.deepEqual(set.getAll(), [0, 3]);
  assert.equal(set.waiters(0).forIncrease, 0, 'nothing waits');
  // noWait on an operation that can complete changes nothing about it.
  await set.op([{ num: 1, op: -1, noWait: true }, { num: 0, op: 2, noWait: true }]);
  assert.deepEqual(set.getAll(), [2, 2]);
  assert.equal(set.tryOp({ num: 0, op: -2 }), true);
  assert.deepEqual(set.getAll(), [0, 2]);
});

test('undo (SEM_UNDO) is per operation: at exit the kernel reverts only the operations that asked for it (Node and C)', async (t) => {
  const set = fresh(t, 2, [1, 0]);
  const child = nodeChild(
    t,
    `import { sysv } from 'interprocess';
     const set = sysv.SemaphoreSet.fromId(Number(process.argv[1]));
     set.tryOp({ num: 0, op: -1, undo: true });
     set.post(0);
     set.post(0);
     await set.op([{ num: 1, op: 3, undo: true }, { num: 0, op: -1 }]);
     console.log('values ' + set.getAll().join(' '));`,
    [set.id],
  );
  const r = await finished(child, 'child');
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'values 1 3\n');
  // Undone: the -1 on 0 (gives +1) and the +3 on 1; kept: the posts and the other -1.
  assert.deepEqual(set.getAll(), [2, 0]);

  const { lines } = await runPeer('op', set.id, '0:-2:u,1:5', 'get', set.id);
  assert.deepEqual(lines, ['done', 'values 0 5']);
  assert.deepEqual(set.getAll(), [2, 5]);
});

test('THE SEM_UNDO CRASH CASE: a process killed while holding the semaphore with undo gives it back, and a pending wait completes; without undo it stays taken', async (t) => {
  const set = fresh(t, 1, 0);
  const holders: Record<string, (undo: boolean) => Promise<ChildProcess>> = {
    // The Node child's wait goes through its waiter thread (the value is 0 when it starts).
    node: async (undo) => {
      const child = nodeChild(
        t,
        `import { sysv } from 'interprocess';
         const set = sysv.SemaphoreSet.fromId(Number(process.argv[1]));
         await set.wait(0, { undo: process.argv[2] === 'undo' });
         console.log('holding');
         setInterval(() => {}, 60_000);`,
        [set.id, undo ? 'undo' : 'no-undo'],
      );
      await waitersReach(set, 0, 1);
      set.post(0);
      return child;
    },
    c: async (undo) => {
      set.post(0);
      return spawnPeer(t, 'hold', set.id, undo ? '0:-1:u' : '0:-1');
    },
  };
  for (const [who, start] of Object.entries(holders)) {
    for (const undo of [true, false]) {
      const what = `${who} holder, ${undo ? 'with' : 'without'} undo`;
      const holder = await start(undo);
      await waitForLine(holder, /^holding$/);
      assert.equal(set.get(0), 0, `${what}: held`);
      let done = false;
      const pending = set.wait(0, { timeout: 20_000 }).then(() => (done = true));
      await waitersReach(set, 0, 1);
      const exited = once(holder, 'exit');
      holder.kill('SIGKILL');
      const [, signal] = await exited;
      assert.equal(signal, 'SIGKILL');
      if (undo) {
        await withTimeout(pending, 5000, `${what}: the pending wait completes`);
        assert.equal(set.get(0), 0, `${what}: the token given back went to the waiter`);
      } else {
        assert.equal(set.get(0), 0, `${what}: still taken`);
        assert.equal(set.waiters(0).forIncrease, 1, `${what}: the wait still waits`);
        assert.equal(done, false);
        set.post(0);
        await withTimeout(pending, 5000, `${what}: the wait completes after a post`);
      }
      assert.equal(set.get(0), 0);
    }
  }
});

test('the tutorial: semaphore_example.c\'s parent and child, this process and a Node child take turns in the critical section with SEM_UNDO, never overlapping', async (t) => {
  const ROUNDS = 10;
  const file = ftokFile();
  const log = join(tmp.dir, 'critical.log');
  const tutorial = spawn(await tutorialPath, [file, String(ROUNDS), log], { stdio: ['pipe', 'pipe', 'pipe'] });
  t.after(() => {
    if (tutorial.exitCode === null && tutorial.signalCode === null) tutorial.kill('SIGKILL');
  });
  t.after(() => {
    // Whatever happened, the set the tutorial made by key goes too.
    const row = sets().find((s) => s.key === ftok(file, 65));
    if (row) removeQuietly(row.id);
  });
  const tutorialDone = finished(tutorial, 'semaphore_example', 30_000);
  const first = await waitForLine(tutorial, /^semid=/);
  const m = /^semid=(\d+) key=(0x[0-9a-f]{8})$/.exec(first);
  assert.ok(m, first);
  const id = track(t, Number(m[1]));
  assert.equal(m[2], formatKey(ftok(file, 65)));

  const set = SemaphoreSet.open({ path: file, projId: 65 });
  t.after(() => set.close());
  assert.equal(set.id, id);
  assert.equal(set.count, 1);
  assert.equal(set.get(0), 1, 'SETVAL 1');
  assert.equal(set.stat().mode & 0o777, 0o666);

  const child = nodeChild(
    t,
    `import { sysv } from 'interprocess';
     import { appendFileSync } from 'node:fs';
     const [file, rounds, log] = process.argv.slice(1);
     const set = sysv.SemaphoreSet.open({ path: file, projId: 65 });
     const pause = new Int32Array(new SharedArrayBuffer(4));
     console.log('ready');
     for (let i = 0; i < Number(rounds); i++) {
       set.opSync({ op: -1, undo: true });
       appendFileSync(log, 'Node child entering critical section\\n');
       Atomics.wait(pause, 0, 0, 2);
       appendFileSync(log, 'Node child leaving critical section\\n');
       set.opSync({ op: 1, undo: true });
     }`,
    [file, ROUNDS, log],
  );
  const childDone = finished(child, 'Node child', 30_000);
  await waitForLine(child, /^ready$/);
  tutorial.stdin!.write('go\n');
  for (let i = 0; i < ROUNDS; i++) {
    await set.wait(0, { undo: true, timeout: 20_000 });
    appendFileSync(log, 'Node parent entering critical section\n');
    await new Promise((resolve) => setTimeout(resolve, 2));
    appendFileSync(log, 'Node parent leaving critical section\n');
    set.post(0, { undo: true });
  }
  const [tr, cr] = await Promise.all([tutorialDone, childDone]);
  assert.equal(tr.code, 0, tr.stderr);
  assert.equal(cr.code, 0, cr.stderr);
  // The tutorial's own output.
  const out = tr.stdout.trimEnd().split('\n').slice(1);
  assert.equal(out.at(-1), 'done');
  for (const who of ['Parent', 'Child']) {
    assert.equal(out.filter((l) => l === `${who} entering critical section`).length, ROUNDS);
    assert.equal(out.filter((l) => l === `${who} leaving critical section`).length, ROUNDS);
  }
  // The shared record: every "entering" is followed by the same one "leaving".
  const lines = readFileSync(log, 'utf8').trimEnd().split('\n');
  assert.equal(lines.length, 4 * 2 * ROUNDS, lines.join('\n'));
  const counts = new Map<string, number>();
  for (let i = 0; i < lines.length; i += 2) {
    const enter = /^(.*) entering critical section$/.exec(lines[i]);
    assert.ok(enter, `line ${i + 1} should enter: ${lines[i]}\n${lines.join('\n')}`);
    assert.equal(lines[i + 1], `${enter[1]} leaving critical section`, `overlap at line ${i + 2}:\n${lines.join('\n')}`);
    counts.set(enter[1], (counts.get(enter[1]) ?? 0) + 1);
  }
  assert.deepEqual(Object.fromEntries(counts), { Parent: ROUNDS, Child: ROUNDS, 'Node parent': ROUNDS, 'Node child': ROUNDS });
  assert.equal(set.get(0), 1, 'every P was matched by a V; the undo entries cancel out');
});

test('waitForZero (op 0) resolves when another process brings the value to 0; a C waiter waits too', async (t) => {
  const set = fresh(t, 2, [2, 0]);
  await set.waitForZero(1); // already 0: at once
  let done = false;
  const pending = set.waitForZero(0, { timeout: 20_000 }).then(() => (done = true));
  const cWaiter = await spawnPeer(t, 'op', set.id, '0:0');
  const cDone = finished(cWaiter, 'C waiter');
  await waitersReach(set, 0, 2, 'forZero');
  assert.deepEqual(set.waiters(0), { forIncrease: 0, forZero: 2 });
  await runPeer('op', set.id, '0:-1');
  assert.equal(set.waiters(0).forZero, 2, 'still waiting at 1');
  assert.equal(done, false);
  await runPeer('op', set.id, '0:-1');
  await withTimeout(pending, 5000, 'waitForZero resolves');
  const c = await cDone;
  assert.equal(c.stdout, 'done\n');
  assert.deepEqual(set.waiters(0), { forIncrease: 0, forZero: 0 });
  set.post(1);
  await rejectsLike(set.waitForZero(1, { timeout: 20 }), TimeoutError, { syscall: 'semop' });
});

test('waiters(num) reports GETNCNT/GETZCNT: this process\'s own pending waits and a C process\'s, as C sees them too', async (t) => {
  const set = fresh(t, 2, [0, 1]);
  assert.deepEqual(set.waiters(0), { forIncrease: 0, forZero: 0 });
  const waits = [set.wait(0), set.wait(0, { timeout: 20_000 }), set.op({ num: 0, op: -2 }), set.waitForZero(1), set.waitForZero(1)];
  const cWaiter = await spawnPeer(t, 'op', set.id, '0:-1');
  const cDone = finished(cWaiter, 'C waiter');
  await waitersReach(set, 0, 4);
  await waitersReach(set, 1, 2, 'forZero');
  assert.deepEqual(set.waiters(0), { forIncrease: 4, forZero: 0 });
  assert.deepEqual(set.waiters(1), { forIncrease: 0, forZero: 2 });
  assert.deepEqual((await runPeer('ncnt', set.id, 0, 4, 'zcnt', set.id, 1, 2)).lines, ['ncnt 4', 'zcnt 2']);
  set.set(0, 5);
  set.set(1, 0);
  await withTimeout(Promise.all([...waits, cDone]), 5000, 'all waits complete');
  assert.deepEqual(set.getAll(), [0, 0]);
  assert.deepEqual(set.waiters(0), { forIncrease: 0, forZero: 0 });
  assert.deepEqual(set.waiters(1), { forIncrease: 0, forZero: 0 });
  throwsLike(() => set.waiters(2), InvalidArgumentError, { message: /semaphore number must be an integer from 0 to 1/ });
});

test('async op/wait { timeout } rejects with TimeoutError; opSync { timeout } (semtimedop) too; nothing is applied', async (t) => {
  const set = fresh(t, 2, [0, 5]);
  const ops = [{ num: 1, op: -1 }, { num: 0, op: -1 }];
  let t0 = performance.now();
  await rejectsLike(set.op(ops, { timeout: 50 }), TimeoutError, {
    code: 'ETIMEDOUT',
    errno: -110,
    syscall: 'semop',
    key: 0,
    message: 'ETIMEDOUT: timed out, semop key 0x00000000',
  });
  assert.ok(performance.now() - t0 >= 45, 'waited for the timeout');
  await rejectsLike(set.wait(0, { timeout: 0 }), TimeoutError, { syscall: 'semop' });
  await rejectsLike(set.waitForZero(1, { timeout: 20 }), TimeoutError);
  assert.deepEqual(set.getAll(), [0, 5]);
  await until(() => set.waiters(0).forIncrease === 0 && set.waiters(1).forZero === 0, 'no wait is left');

  t0 = performance.now();
  throwsLike(() => set.opSync(ops, { timeout: 30 }), TimeoutError, { code: 'ETIMEDOUT', errno: -110, syscall: 'semtimedop', key: 0 });
  assert.ok(performance.now() - t0 >= 25, 'waited for the timeout');
  throwsLike(() => set.opSync({ num: 0, op: -1 }, { timeout: 0 }), TimeoutError);
  assert.equal(set.tryOp(ops), false);
  assert.deepEqual(set.getAll(), [0, 5], 'nothing was applied');
  // With the value there, the timed forms succeed.
  set.opSync({ num: 1, op: -5 }, { timeout: 0 });
  await set.op({ num: 0, op: 0 }, { timeout: 0 });
  assert.deepEqual(set.getAll(), [0, 0]);
  // A timeout past setTimeout's limit (2^31 - 1 ms) waits; it does not fire at once.
  const long = set.wait(0, { timeout: 2 ** 32 });
  await waitersReach(set, 0, 1);
  await runPeer('op', set.id, '0:1');
  await withTimeout(long, 5000, 'the long wait completes');
  assert.deepEqual(set.getAll(), [0, 0]);
  throwsLike(() => set.opSync({ op: 1 }, { timeout: -1 }), InvalidArgumentError, { message: /timeout must be a non-negative number/ });
  await rejectsLike(set.op({ op: 1 }, { timeout: -1 }), InvalidArgumentError, { message: /timeout must be a non-negative number/ });
  assert.deepEqual(set.getAll(), [0, 0]);
});

test('{ signal }: already aborted rejects at once and applies nothing, even if it could; an abort mid-wait rejects promptly, having applied nothing', async (t) => {
  const set = fresh(t, 2, [1, 0]);
  const reason = new Error('stop');
  const abortFields = { name: 'AbortError', code: 'ABORT_ERR', cause: reason };
  await rejectsLike(set.op({ num: 0, op: -1 }, { signal: AbortSignal.abort(reason) }), AbortError, abortFields);
  await rejectsLike(set.wait(0, { signal: AbortSignal.abort(reason) }), AbortError, abortFields);
  await rejectsLike(set.waitForZero(1, { signal: AbortSignal.abort(reason) }), AbortError, abortFields);
  assert.deepEqual(set.getAll(), [1, 0], 'an already aborted op applies nothing');

  const ac = new AbortController();
  const pending = set.op([{ num: 0, op: -1 }, { num: 1, op: -1 }], { signal: ac.signal });
  await until(() => set.waiters(0).forIncrease + set.waiters(1).forIncrease >= 1, 'the op waits');
  const t0 = performance.now();
  ac.abort(reason);
  await rejectsLike(pending, AbortError, abortFields);
  assert.ok(performance.now() - t0 < 1000, `rejected after ${performance.now() - t0} ms`);
  await until(() => set.waiters(0).forIncrease + set.waiters(1).forIncrease === 0, 'the wait left the kernel');
  await runPeer('op', set.id, '1:1');
  assert.deepEqual(set.getAll(), [1, 1], 'the aborted op applied nothing');
  await rejectsLike(set.op({ op: 1 }, { signal: 'x' as unknown as AbortSignal }), InvalidArgumentError, { code: 'ERR_INVALID_ARG_TYPE' });
});

test('opSync blocks a Node child until a C process acts, with and without a timeout; a handled signal does not end it (EINTR is retried)', async (t) => {
  const set = fresh(t, 1, 0);
  const child = nodeChild(
    t,
    `import { sysv } from 'interprocess';
     let signals = 0;
     process.on('SIGUSR2', () => { signals++; });
     const set = sysv.SemaphoreSet.fromId(Number(process.argv[1]));
     try {
       set.opSync({ op: -1 });
       console.log('took');
       set.opSync({ op: -2 }, { timeout: 20000 });
       console.log('took 2 in time');
     } catch (e) {
       console.log(e.name + ' ' + e.code);
     }
     // The handler runs once the event loop turns again.
     const report = (n) => (signals >= 2 || n > 2000 ? console.log('signals ' + signals) : setTimeout(report, 2, n + 1));
     report(0);`,
    [set.id],
  );
  const done = finished(child, 'child');
  const { lines } = await runPeer('interrupt', child.pid!, set.id, 'op', set.id, '0:1', 'interrupt', child.pid!, set.id, 'op', set.id, '0:2');
  assert.deepEqual(lines, ['interrupted', 'done', 'interrupted', 'done']);
  const r = await done;
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'took\ntook 2 in time\nsignals 2\n');
  assert.equal(set.get(0), 0);
});

test('removing the set while async waits and a sync wait in a child are pending rejects them with RemovedError (EIDRM), promptly', async (t) => {
  const set = fresh(t, 2, [0, 1]);
  const removed = { code: 'EIDRM', errno: -43, syscall: 'semop', key: 0, message: /^EIDRM: identifier removed, semop key 0x00000000/ };
  const waits = [set.wait(0), set.op([{ num: 0, op: -1 }, { num: 1, op: -1 }], { timeout: 60_000 }), set.waitForZero(1)].map((p) =>
    rejectsLike(p, RemovedError, removed),
  );
  const child = nodeChild(
    t,
    `import { sysv } from 'interprocess';
     try { sysv.SemaphoreSet.fromId(Number(process.argv[1])).opSync({ op: -1 }); console.log('took?'); }
     catch (e) { console.log(e.name + ' ' + e.code + ' ' + e.syscall); }`,
    [set.id],
  );
  const childDone = finished(child, 'child');
  await waitersReach(set, 0, 3);
  await waitersReach(set, 1, 1, 'forZero');
  assert.deepEqual((await runPeer('rm', set.id)).lines, ['removed']);
  const t0 = performance.now();
  await withTimeout(Promise.all(waits), 5000, 'the waits reject');
  assert.ok(performance.now() - t0 < 1000, `took ${performance.now() - t0} ms`);
  const r = await childDone;
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'RemovedError EIDRM semop\n');
  assert.ok(!exists(set.id));
  // The id names nothing now: EINVAL, not a wait.
  throwsLike(() => set.get(0), InvalidArgumentError, { code: 'EINVAL', syscall: 'semctl' });
  throwsLike(() => set.tryOp({ op: 1 }), InvalidArgumentError, { code: 'EINVAL', syscall: 'semop' });
  await rejectsLike(set.wait(0), InvalidArgumentError, { code: 'EINVAL' });

  // Static remove from this process, by id, while a wait is pending.
  const { set: keyed, key } = createWithFreshKey(t, { count: 1 });
  const waiting = keyed.wait(0);
  await waitersReach(keyed, 0, 1);
  SemaphoreSet.remove(keyed.id);
  await withTimeout(rejectsLike(waiting, RemovedError, { code: 'EIDRM', key }), 2000, 'the wait rejects');
  throwsLike(() => SemaphoreSet.open(key), NotFoundError, { code: 'ENOENT', key });
  throwsLike(() => SemaphoreSet.remove(keyed.id), InvalidArgumentError, { code: 'EINVAL', syscall: 'semctl' });

  // The instance form.
  const other = fresh(t, 1);
  other.remove();
  assert.ok(!exists(other.id));
});

test('close(): pending waits reject with EBADF having applied nothing; later calls throw EBADF; the set stays', async (t) => {
  const set = fresh(t, 2, [0, 1]);
  const h = SemaphoreSet.fromId(set.id);
  const ebadf = { code: 'EBADF', errno: -9, message: /closed/ };
  const waits = [h.wait(0), h.op([{ num: 0, op: -1 }, { num: 1, op: -1 }], { timeout: 60_000 }), h.waitForZero(1, { signal: new AbortController().signal })].map((p) =>
    rejectsLike(p, IpcError, ebadf),
  );
  await waitersReach(set, 0, 2);
  await waitersReach(set, 1, 1, 'forZero');
  h.close();
  assert.equal(h.closed, true);
  await withTimeout(Promise.all(waits), 5000, 'the waits reject');
  await until(() => set.waiters(0).forIncrease === 0 && set.waiters(1).forZero === 0, 'the waits left the kernel');
  set.post(0);
  assert.deepEqual(set.getAll(), [1, 1], 'the closed waits applied nothing');

  h.close();
  h[Symbol.dispose]();
  for (const call of [
    () => h.get(0),
    () => h.set(0, 1),
    () => h.getAll(),
    () => h.setAll([1, 1]),
    () => h.waiters(0),
    () => h.lastPid(0),
    () => h.stat(),
    () => h.tryOp({ op: 1 }),
    () => h.opSync({ op: 1 }),
    () => h.post(0),
    () => h.remove(),
  ]) {
    throwsLike(call, IpcError, ebadf);
  }
  await rejectsLike(h.op({ op: 1 }), IpcError, ebadf);
  await rejectsLike(h.wait(0), IpcError, ebadf);
  assert.ok(exists(set.id));
  assert.deepEqual(set.getAll(), [1, 1]);
  {
    using scoped = SemaphoreSet.fromId(set.id);
    assert.equal(scoped.closed, false);
    t.after(() => assert.equal(scoped.closed, true));
  }
});

test('120 concurrent waits take no libuv pool thread; then no thread outlives its wait (aborts and timeouts included)', async (t) => {
  const N = 120;
  const set = fresh(t, 2);
  // Warm up what starts threads lazily (libuv's pool, the waiter machinery).
  await fsp.readFile(thisFile);
  await rejectsLike(set.wait(1, { timeout: 1 }), TimeoutError);
  await until(() => set.waiters(1).forIncrease === 0, 'the warm-up wait is gone');
  const baseline = threadCount();

  const waits = Array.from({ length: N }, () => set.wait(0, { timeout: 60_000 }));
  await waitersReach(set, 0, N);
  assert.ok(threadCount() >= baseline + N, `${threadCount()} threads while ${N} wait`);
  const t0 = performance.now();
  await withTimeout(Promise.all([...Array.from({ length: 8 }, () => fsp.readFile(thisFile, 'utf8')), fsp.stat(tmp.dir), fsp.readdir(tmp.dir)]), 5000, 'fs calls complete');
  const elapsed = performance.now() - t0;
  assert.ok(elapsed < 2000, `fs took ${elapsed} ms while ${N} waits were pending`);
  assert.deepEqual((await runPeer('op', set.id, `0:${N}`)).lines, ['done']);
  await withTimeout(Promise.all(waits), 15_000, 'all waits complete');
  assert.equal(set.get(0), 0, 'each wait took exactly one');

  set.set(1, 1);
  const acs = Array.from({ length: 20 }, () => new AbortController());
  const cancelled = [...acs.map((ac) => set.wait(0, { signal: ac.signal })), ...Array.from({ length: 20 }, () => set.waitForZero(1, { timeout: 300 }))];
  await waitersReach(set, 0, 20);
  for (const ac of acs) ac.abort();
  const results = await Promise.allSettled(cancelled);
  assert.deepEqual(
    results.map((r) => (r.status === 'rejected' ? (r.reason as Error).name : 'fulfilled')),
    [...Array(20).fill('AbortError'), ...Array(20).fill('TimeoutError')],
  );
  await until(() => threadCount() <= baseline, () => `threads return to ${baseline} (now ${threadCount()})`, 3000);
  assert.deepEqual(set.waiters(0), { forIncrease: 0, forZero: 0 });
  assert.deepEqual(set.waiters(1), { forIncrease: 0, forZero: 0 });
  assert.deepEqual(set.getAll(), [0, 1]);
});

test('values past SEMVMX are TooLargeError (ERANGE): before any system call for create/set/setAll, from semop for an op that would overflow', async (t) => {
  const before = ours().length;
  const erange = { code: 'ERANGE', errno: -34, message: /^ERANGE: .*32767/ };
  throwsLike(() => SemaphoreSet.create({ count: 1, value: SEMVMX + 1 }), TooLargeError, erange);
  throwsLike(() => SemaphoreSet.create({ count: 2, value: [1, 40000] }), TooLargeError, { ...erange, message: /value\[1\] 40000/ });
  assert.equal(ours().length, before);

  const set = fresh(t, 2, [SEMVMX, 1]);
  throwsLike(() => set.set(0, SEMVMX + 1), TooLargeError, { ...erange, key: 0 });
  throwsLike(() => set.setAll([1, SEMVMX + 1]), TooLargeError, erange);
  assert.deepEqual(set.getAll(), [SEMVMX, 1]);

  const overflow = { code: 'ERANGE', errno: -34, syscall: 'semop', message: /maximum value \(32767\)/ };
  throwsLike(() => set.post(0), TooLargeError, overflow);
  throwsLike(() => set.tryOp({ num: 1, op: SEMVMX }), TooLargeError, overflow);
  await rejectsLike(set.op([{ num: 1, op: -1 }, { num: 0, op: 1 }]), TooLargeError, overflow);
  throwsLike(() => set.opSync({ num: 1, op: SEMVMX }), TooLargeError, overflow);
  assert.deepEqual(set.getAll(), [SEMVMX, 1], 'nothing applied');
  // A waiting op that would overflow once it can proceed.
  set.setAll([SEMVMX, 0]);
  const pending = rejectsLike(set.op([{ num: 1, op: -1 }, { num: 0, op: 1 }]), TooLargeError, overflow);
  await until(() => set.waiters(1).forIncrease === 1, 'the op waits');
  await runPeer('op', set.id, '1:1');
  await withTimeout(pending, 5000, 'the op fails');
  assert.deepEqual(set.getAll(), [SEMVMX, 1]);
});

test('bad input is rejected before any system call, and the set still works', async (t) => {
  const before = ours().length;
  const counts: [unknown, RegExp][] = [
    [0, /count must be an integer from 1 to/],
    [-1, /count must be an integer/],
    [1.5, /count must be an integer/],
    [SEMMSL + 1, new RegExp(`count must be an integer from 1 to ${SEMMSL}`)],
    [undefined, /count must be an integer/],
    ['2', /count must be an integer/],
  ];
  for (const [count, message] of counts) throwsLike(() => SemaphoreSet.create({ count: count as number }), InvalidArgumentError, { message });
  throwsLike(() => SemaphoreSet.create(undefined as unknown as sysv.SemaphoreSetCreateOptions), InvalidArgumentError, { message: /options with a count are required/ });
  throwsLike(() => SemaphoreSet.create({ count: 1, value: -1 }), InvalidArgumentError, { message: /value must be an integer from 0/ });
  throwsLike(() => SemaphoreSet.create({ count: 2, value: [1] }), InvalidArgumentError, { message: /array of 2 numbers/ });
  throwsLike(() => SemaphoreSet.create({ count: 1, mode: 0o1000 }), InvalidArgumentError, { message: /mode must be/ });
  throwsLike(() => SemaphoreSet.create({ count: 1, exclusive: 1 as unknown as boolean }), InvalidArgumentError, { message: /exclusive must be a boolean/ });
  for (const key of [1.5, NaN, 'x', 2 ** 40, null]) {
    throwsLike(() => SemaphoreSet.create({ key: key as number, count: 1 }), InvalidArgumentError, { code: 'ERR_OUT_OF_RANGE', message: /key must be a 32-bit integer/ });
    throwsLike(() => SemaphoreSet.open(key as number), InvalidArgumentError, { message: /key must be a 32-bit integer/ });
  }
  for (const id of [-1, 1.5, 2 ** 31, 'x', undefined]) {
    for (const call of [() => SemaphoreSet.fromId(id as number), () => SemaphoreSet.stat(id as number), () => SemaphoreSet.remove(id as number)]) {
      throwsLike(call, InvalidArgumentError, { code: 'ERR_OUT_OF_RANGE', message: /id must be an integer from 0/ });
    }
  }
  assert.equal(ours().length, before, 'no set was created');

  const set = fresh(t, 2, [1, 1]);
  const numRange = /semaphore number must be an integer from 0 to 1/;
  for (const num of [2, -1, 1.5, 'x']) {
    throwsLike(() => set.get(num as number), InvalidArgumentError, { message: numRange });
    throwsLike(() => set.set(num as number, 1), InvalidArgumentError, { message: numRange });
    throwsLike(() => set.lastPid(num as number), InvalidArgumentError, { message: numRange });
    throwsLike(() => set.tryOp({ num: num as number, op: 1 }), InvalidArgumentError, { message: numRange });
    await rejectsLike(set.op([{ num: 0, op: -1 }, { num: num as number, op: 1 }]), InvalidArgumentError, { message: numRange });
  }
  throwsLike(() => set.set(0, -1), InvalidArgumentError, { message: /value must be an integer from 0/ });
  throwsLike(() => set.set(0, 1.5), InvalidArgumentError);
  throwsLike(() => set.tryOp([]), InvalidArgumentError, { message: /at least one operation/ });
  throwsLike(() => set.tryOp({ op: 1.5 }), InvalidArgumentError, { message: /operation 0 op must be an integer/ });
  throwsLike(() => set.tryOp({ op: 40000 }), InvalidArgumentError, { message: /op must be an integer from -32767 to 32767/ });
  throwsLike(() => set.tryOp([null as unknown as sysv.SemOp]), InvalidArgumentError, { code: 'ERR_INVALID_ARG_TYPE' });
  throwsLike(() => set.tryOp({ op: 1, undo: 'yes' as unknown as boolean }), InvalidArgumentError, { message: /undo must be a boolean/ });
  // SEMOPM operations in one call work; one more is TooLargeError (E2BIG).
  const many = Array.from({ length: SEMOPM }, (_, i) => ({ num: i % 2, op: i < 2 ? -1 : 0 }));
  throwsLike(() => set.tryOp([...many, { num: 0, op: 0 }]), TooLargeError, { code: 'E2BIG', errno: -7, message: new RegExp(`${SEMOPM + 1} operations exceed SEMOPM \\(${SEMOPM}\\)`) });
  await rejectsLike(set.op([...many, { num: 0, op: 0 }]), TooLargeError, { code: 'E2BIG' });
  assert.deepEqual(set.getAll(), [1, 1], 'nothing was applied');
  assert.equal(set.tryOp(many), true);
  assert.deepEqual(set.getAll(), [0, 0]);
});

test('permission: an unprivileged process cannot open a 0o600 set (EACCES) but can use a 0o666 one', { skip: !isRoot && 'needs root to run a child as nobody' }, async (t) => {
  const secret = createWithFreshKey(t, { count: 1, mode: 0o600, value: 1 });
  const shared = createWithFreshKey(t, { count: 1, mode: 0o666, value: 1 });
  const child = nodeChild(
    t,
    `import { sysv } from 'interprocess';
     const attempt = (f) => { try { return { ok: f() }; } catch (e) { return { name: e.name, code: e.code, errno: e.errno, syscall: e.syscall }; } };
     const [secretKey, secretId, sharedKey] = process.argv.slice(1).map(Number);
     console.log(JSON.stringify({
       uid: process.getuid(),
       byKey: attempt(() => sysv.SemaphoreSet.open(secretKey).get(0)),
       byId: attempt(() => sysv.SemaphoreSet.fromId(secretId).get(0)),
       shared: attempt(() => { const s = sysv.SemaphoreSet.open(sharedKey); s.post(0); return s.get(0); }),
     }));`,
    [secret.key, secret.set.id, shared.key],
    { uid: NOBODY, gid: NOBODY },
  );
  const r = await finished(child, 'child as nobody');
  assert.equal(r.code, 0, r.stderr);
  const res = JSON.parse(r.stdout);
  assert.equal(res.uid, NOBODY);
  // semget(key, 0, 0) asks for no permission, as in C; reading the count (IPC_STAT) is refused.
  assert.deepEqual(res.byKey, { name: PermissionError.name, code: 'EACCES', errno: -13, syscall: 'semctl' });
  assert.deepEqual(res.byId, { name: PermissionError.name, code: 'EACCES', errno: -13, syscall: 'semctl' });
  assert.deepEqual(res.shared, { ok: 2 });
  assert.equal(secret.set.get(0), 1);
});
