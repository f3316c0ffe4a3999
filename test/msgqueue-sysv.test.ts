/**
 * System V message queues (sysv.MessageQueue) against real processes:
 * compiled C peers (test/peers/msg_tutorial.c, the tutorial's
 * msg_queue_example.c, and test/peers/msg_peer.c) and Node children.
 *
 * Waits are observed, not slept on: /proc/PID/task/TID/syscall says when a
 * thread is blocked in msgrcv or msgsnd on a given queue, so a test (or the C
 * peer, for another process) acts exactly while the wait is in the kernel.
 * Every queue is removed by the test that made it, even when the test fails;
 * the last hook checks that no queue made or used by this file is left.
 */
import { test as nodeTest, after, type TestContext as NodeTestContext, type TestOptions } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync, promises as fsp } from 'node:fs';
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
} from 'interprocess';
import * as sysvEntry from 'interprocess/sysv';
import { MessageQueue as EntryMessageQueue } from 'interprocess/sysv';
import { collect, compilePeer, isRoot, NOBODY, spawnNode, tempDir, type RunResult } from './helpers.js';
import { checkError, rejectsLike, throwsLike, withTimeout } from './helpers.js';

const { MessageQueue, MSGMAX, MSGMNB, IPC_PRIVATE, ftok } = sysv;
type Queue = sysv.MessageQueue;
type TestContext = { after(fn: () => void | Promise<void>): void };

const HELLO = 'Hello, Message Queue';
const tmp = tempDir('msg-sysv');
const thisFile = fileURLToPath(import.meta.url);

/** Every process this file starts: a queue they sent to or received from counts as ours. */
const creators = new Set<number>([process.pid]);
/** Every queue id this file created or was told about. */
const madeIds = new Set<number>();

interface QueueRow {
  key: number;
  id: number;
  perms: number;
  cbytes: number;
  qnum: number;
  lspid: number;
  lrpid: number;
}

/** /proc/sysvipc/msg, parsed. */
function queues(): QueueRow[] {
  return readFileSync('/proc/sysvipc/msg', 'utf8')
    .split('\n')
    .slice(1)
    .filter((l) => l.trim())
    .map((l) => {
      const f = l.trim().split(/\s+/);
      return { key: Number(f[0]), id: Number(f[1]), perms: parseInt(f[2], 8), cbytes: Number(f[3]), qnum: Number(f[4]), lspid: Number(f[5]), lrpid: Number(f[6]) };
    });
}

const ours = (): QueueRow[] => queues().filter((q) => madeIds.has(q.id) || creators.has(q.lspid) || creators.has(q.lrpid));

/** Removes a queue if it still exists (cleanup must not hide the real failure). */
function removeQuietly(id: number): void {
  try {
    MessageQueue.remove(id);
  } catch (err) {
    if (!(err instanceof InvalidArgumentError) && !(err instanceof RemovedError)) throw err; // EINVAL/EIDRM: already gone
  }
}

/** Removes the queue when the test ends, pass or fail. */
function track<T extends Queue | number>(t: TestContext, q: T): T {
  const id = typeof q === 'number' ? q : q.id;
  madeIds.add(id);
  t.after(() => {
    removeQuietly(id);
    if (typeof q !== 'number') q.close();
  });
  return q;
}

/** A key no queue uses yet, in a range unlikely to meet other programs' keys. */
function createWithFreshKey(t: TestContext, options: Omit<sysv.MessageQueueCreateOptions, 'key'> = {}, base = 0x4d510000): { q: Queue; key: number } {
  for (let attempt = 0; ; attempt++) {
    const key = base + randomInt(0x10000);
    try {
      return { q: track(t, MessageQueue.create({ ...options, key })), key: key | 0 };
    } catch (err) {
      if (!(err instanceof AlreadyExistsError) || attempt > 20) throw err;
    }
  }
}

/** A key in [base, base + 0xffff] that no queue uses now. */
function unusedKey(base: number): number {
  const used = new Set(queues().map((r) => r.key));
  for (;;) {
    const key = (base + randomInt(0x10000)) | 0;
    if (!used.has(key)) return key;
  }
}

/** A fresh file to give ftok, whose key with projId 65 no queue uses yet. */
let files = 0;
function ftokFile(): string {
  const used = new Set(queues().map((r) => r.key));
  for (;;) {
    const file = join(tmp.dir, `progfile-${++files}`);
    writeFileSync(file, '');
    if (!used.has(ftok(file, 65))) return file;
  }
}




/** FNV-1a 32, as msg_peer prints it. */
function fnv(bytes: Uint8Array): string {
  let h = 0x811c9dc5;
  for (const b of bytes) h = Math.imul(h ^ b, 16777619) >>> 0;
  return h.toString(16).padStart(8, '0');
}

/** msg_peer's send-pattern bytes. */
function pattern(len: number): Buffer {
  const b = Buffer.alloc(len);
  for (let i = 0; i < len; i++) b[i] = (i * 7 + Math.floor(i / 256)) & 0xff;
  return b;
}

const msgPeer = compilePeer('msg_peer');
const tutorialPeer = compilePeer('msg_tutorial');
// Reported by the tests that await them, not as unhandled rejections.
msgPeer.catch(() => {});
tutorialPeer.catch(() => {});

/** Each child's output and exit status, collected from the moment it starts (an exit is never missed). */
const outcomes = new WeakMap<ChildProcess, Promise<RunResult>>();
/** Each child's stdout so far. */
const outputs = new WeakMap<ChildProcess, { text: string }>();

function started<T extends ChildProcess>(child: T): T {
  if (child.pid !== undefined) creators.add(child.pid);
  const result = collect(child);
  result.catch(() => {});
  outcomes.set(child, result);
  const out = { text: '' };
  child.stdout?.on('data', (d: string) => (out.text += d));
  outputs.set(child, out);
  return child;
}

/** Resolves with the first stdout line matching `pattern`, printed before or after this call. */
function lineOf(child: ChildProcess, pattern: RegExp, timeoutMs = 10_000): Promise<string> {
  const out = outputs.get(child)!;
  const find = (): string | undefined => out.text.split('\n').slice(0, -1).find((l) => pattern.test(l));
  return new Promise((resolve, reject) => {
    const onData = (): void => {
      const line = find();
      if (line === undefined) return;
      clearTimeout(timer);
      child.stdout?.off('data', onData);
      resolve(line);
    };
    const timer = setTimeout(() => {
      child.stdout?.off('data', onData);
      reject(new Error(`timed out waiting for ${pattern}; got: ${out.text}`));
    }, timeoutMs);
    child.stdout?.on('data', onData);
    onData();
  });
}

function outcome(child: ChildProcess): Promise<RunResult> {
  return outcomes.get(child)!;
}

/** Starts msg_peer with a sequence of steps; stdin is a pipe (send-lines reads it). */
async function spawnPeer(t: TestContext, ...args: (string | number)[]): Promise<ChildProcess> {
  const child = started(spawn(await msgPeer, args.map(String), { stdio: ['pipe', 'pipe', 'pipe'] }));
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return child;
}

/** Runs msg_peer to completion; returns its stdout lines and pid. */
async function runPeer(...args: (string | number)[]): Promise<{ lines: string[]; pid: number }> {
  const child = started(spawn(await msgPeer, args.map(String), { stdio: ['ignore', 'pipe', 'pipe'] }));
  const r = await outcome(child);
  assert.equal(r.code, 0, `msg_peer ${args.join(' ')} failed: ${r.stderr}`);
  return { lines: r.stdout.trimEnd().split('\n'), pid: child.pid! };
}

/** Resolves with the peer's result, failing if it ends badly. */
async function finished(child: ChildProcess, what: string, timeoutMs = 15_000): Promise<RunResult> {
  const r = await withTimeout(outcome(child), timeoutMs, `${what} did not exit`, () => child.kill('SIGKILL'));
  return r;
}


/** Starts a Node child running `code` (import { sysv } from 'interprocess' works). */
function nodeChild(t: TestContext, code: string, args: (string | number)[] = [], options: Parameters<typeof spawnNode>[2] = {}): ChildProcess {
  const child = started(spawnNode(code, args.map(String), options));
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return child;
}

// Syscall numbers, as the kernel shows them in /proc/PID/task/TID/syscall.
const sysno = runPeer('sysno').then(({ lines }) => {
  const m = /^msgsnd=(\d+) msgrcv=(\d+)$/.exec(lines[0]);
  assert.ok(m, lines[0]);
  return { msgsnd: Number(m[1]), msgrcv: Number(m[2]) };
});
sysno.catch(() => {});

/** The ids of this process's threads blocked in `call` on queue `id`. */
async function tidsIn(call: 'msgrcv' | 'msgsnd', id: number): Promise<number[]> {
  const nr = (await sysno)[call];
  const tids: number[] = [];
  for (const tid of readdirSync('/proc/self/task')) {
    let f: string[];
    try {
      f = readFileSync(`/proc/self/task/${tid}/syscall`, 'utf8').split(' ');
    } catch {
      continue; // the thread ended meanwhile
    }
    if (Number(f[0]) === nr && Number(f[1]) === id) tids.push(Number(tid));
  }
  return tids;
}

/** How many threads of this process are blocked in `call` on queue `id`. */
async function threadsIn(call: 'msgrcv' | 'msgsnd', id: number): Promise<number> {
  return (await tidsIn(call, id)).length;
}

/** Polls `cond` until it holds (failing after `ms`). */
async function until(cond: () => boolean | Promise<boolean>, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

const blocked = (call: 'msgrcv' | 'msgsnd', id: number, n = 1): Promise<void> =>
  until(async () => (await threadsIn(call, id)) >= n, `${n} thread(s) block in ${call} on queue ${id}`);

/** Marks a promise that a test awaits later as handled now (it may reject before). */
function held<T>(p: Promise<T>): Promise<T> {
  p.catch(() => {});
  return p;
}

/** CAP_SYS_RESOURCE (raising a queue past msgmnb) is in this process's effective set. */
const hasSysResource = (BigInt('0x' + /^CapEff:\s+([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'))![1]) >> 24n) & 1n ? true : false;

function threadCount(): number {
  return Number(/^Threads:\s+(\d+)$/m.exec(readFileSync('/proc/self/status', 'utf8'))![1]);
}

/** Child code that finds its own thread blocked in a call on a queue. */
const CHILD_PRELUDE = `
  import { sysv } from 'interprocess';
  import { readdirSync, readFileSync } from 'node:fs';
  const blockedIn = (nr, id) => readdirSync('/proc/self/task').some((t) => {
    try {
      const f = readFileSync('/proc/self/task/' + t + '/syscall', 'utf8').split(' ');
      return Number(f[0]) === nr && Number(f[1]) === id;
    } catch { return false; }
  });
  const whenBlocked = (nr, id, fn) => (blockedIn(nr, id) ? fn() : setTimeout(() => whenBlocked(nr, id, fn), 1));
`;

after(() => {
  tmp.cleanup();
  const left = ours();
  for (const q of left) removeQuietly(q.id);
  assert.deepEqual(left, [], 'queues left behind');
});

/** Every test gets a time limit, so a wait that never ends fails instead of hanging the file. */
type Body = (t: NodeTestContext) => void | Promise<void>;
function test(name: string, fn: Body): void;
function test(name: string, options: TestOptions, fn: Body): void;
function test(name: string, a: TestOptions | Body, b?: Body): void {
  const [options, fn] = typeof a === 'function' ? [{}, a] : [a, b!];
  void nodeTest(name, { timeout: 20_000, ...options }, fn);
}

// ---------------------------------------------------------------------------

test('the subpath export is the same API; MSGMAX and MSGMNB are the kernel limits', () => {
  assert.equal(sysvEntry.MessageQueue, MessageQueue);
  assert.equal(EntryMessageQueue, MessageQueue);
  assert.equal(sysvEntry.MSGMAX, MSGMAX);
  assert.equal(MSGMAX, Number(readFileSync('/proc/sys/kernel/msgmax', 'utf8')));
  assert.equal(MSGMNB, Number(readFileSync('/proc/sys/kernel/msgmnb', 'utf8')));
  assert.equal(IPC_PRIVATE, 0);
});

test('create with a key number: exclusive by default (AlreadyExistsError with the key); exclusive:false and open() find it', async (t) => {
  const { q, key } = createWithFreshKey(t, { mode: 0o640 });
  assert.equal(q.key, key);
  assert.ok(q.id >= 0);
  assert.ok(queues().some((r) => r.id === q.id && r.key === key && (r.perms & 0o777) === 0o640));

  throwsLike(() => MessageQueue.create({ key }), AlreadyExistsError, {
    code: 'EEXIST',
    errno: -17,
    syscall: 'msgget',
    key,
    message: `EEXIST: file already exists, msgget key ${formatKey(key)}`,
  });
  throwsLike(() => MessageQueue.create({ key, exclusive: true }), AlreadyExistsError, { key });

  const again = MessageQueue.create({ key, exclusive: false });
  t.after(() => again.close());
  const opened = MessageQueue.open(key);
  t.after(() => opened.close());
  const unsigned = MessageQueue.open(key >>> 0);
  t.after(() => unsigned.close());
  assert.equal(again.id, q.id);
  assert.equal(opened.id, q.id);
  assert.equal(opened.key, key);
  assert.equal(unsigned.id, q.id);

  // A C process sends through the id; every handle sees the same queue.
  await runPeer('send', q.id, 7, 'through the id');
  assert.equal(opened.stat().qnum, 1);
  const m = await again.receive();
  assert.equal(m.type, 7);
  assert.equal(m.data.toString(), 'through the id');

  // On a key nobody uses, exclusive:false creates.
  const fresh = unusedKey(0x4d520000);
  const made = track(t, MessageQueue.create({ key: fresh, exclusive: false }));
  assert.equal(made.stat().key, fresh);
});

test('a key above 0x7fffffff is C\'s negative key_t; open of a missing key is NotFoundError; open(IPC_PRIVATE) is rejected', (t) => {
  const { q, key } = createWithFreshKey(t, {}, 0xdead0000);
  assert.ok(key < 0);
  assert.equal(q.stat().key, key);
  assert.ok(queues().some((r) => r.id === q.id && r.key === key));

  const missing = unusedKey(0x4d530000);
  throwsLike(() => MessageQueue.open(missing), NotFoundError, {
    code: 'ENOENT',
    errno: -2,
    syscall: 'msgget',
    key: missing,
    message: `ENOENT: no such file or directory, msgget key ${formatKey(missing)}`,
  });
  throwsLike(() => MessageQueue.open({ path: ftokFile(), projId: 65 }), NotFoundError, { syscall: 'msgget' });
  throwsLike(() => MessageQueue.open({ path: join(tmp.dir, 'no-such-file'), projId: 65 }), NotFoundError, { syscall: 'ftok' });
  throwsLike(() => MessageQueue.open(IPC_PRIVATE), InvalidArgumentError, { message: /IPC_PRIVATE/ });
});

test('IPC_PRIVATE (the default) makes a new queue each time; a Node child reaches it with fromId', async (t) => {
  const a = track(t, MessageQueue.create());
  const b = track(t, MessageQueue.create({ key: IPC_PRIVATE }));
  const c = track(t, MessageQueue.create({ key: IPC_PRIVATE, exclusive: false }));
  assert.equal(new Set([a.id, b.id, c.id]).size, 3);
  for (const q of [a, b, c]) {
    assert.equal(q.key, 0);
    assert.equal(q.stat().key, 0);
  }

  const byId = MessageQueue.fromId(a.id);
  t.after(() => byId.close());
  assert.equal(byId.id, a.id);
  assert.equal(byId.key, 0);

  await a.send(1, 'to the child');
  const child = nodeChild(
    t,
    `import { sysv } from 'interprocess';
     const q = sysv.MessageQueue.fromId(Number(process.argv[1]));
     const m = await q.receive({ type: 1 });
     await q.send(2, 'child ' + process.pid + ' got: ' + m.data.toString());`,
    [a.id],
  );
  // Take the reply once it is queued, so this receive does not wait (a waited
  // receive records the waiter thread as msg_lrpid: see the stat test).
  await until(() => a.stat().lspid === child.pid && a.stat().qnum === 1, 'the child replied');
  const reply = await byId.receive({ type: 2, timeout: 10_000 });
  assert.equal(reply.data.toString(), `child ${child.pid} got: to the child`);
  const r = await finished(child, 'child');
  assert.equal(r.code, 0, r.stderr);
  const st = a.stat();
  assert.equal(st.lspid, child.pid);
  assert.equal(st.lrpid, process.pid);

  // An id that names no queue: EINVAL from msgctl(IPC_STAT).
  assert.ok(!queues().some((r) => r.id === 0x7ffffff0));
  throwsLike(() => MessageQueue.fromId(0x7ffffff0), InvalidArgumentError, { code: 'EINVAL', errno: -22, syscall: 'msgctl' });
});

test('the tutorial: C (ftok(file, 65), msgget 0666|IPC_CREAT) sends "Hello, Message Queue" as type 1; Node replies with type 2', async (t) => {
  const file = ftokFile();
  const key = ftok(file, 65);
  const q = track(t, MessageQueue.create({ key: { path: file, projId: 65 }, mode: 0o666 }));
  assert.equal(q.key, key);
  assert.equal(q.stat().key, key);

  const peer = started(spawn(await tutorialPeer, [file], { stdio: ['ignore', 'pipe', 'pipe'] }));
  t.after(() => {
    if (peer.exitCode === null) peer.kill('SIGKILL');
  });
  const done = outcome(peer);
  // Let the message be queued first, so this receive does not wait (see below
  // for what the kernel records when it does).
  await until(() => q.stat().qnum === 1, 'the C peer has sent');
  const m = await q.receive({ type: 1, timeout: 10_000 });
  assert.equal(m.type, 1);
  // The tutorial's struct has char msg_text[100]; the peer sends all of it.
  assert.equal(m.data.length, 100);
  assert.equal(m.data.subarray(0, m.data.indexOf(0)).toString(), HELLO);
  assert.ok(m.data.subarray(HELLO.length).every((b) => b === 0));
  let st = q.stat();
  assert.equal(st.lspid, peer.pid, 'the C process sent it');
  assert.equal(st.lrpid, process.pid, 'this process received it');
  assert.equal(st.qnum, 0);

  await q.send(2, 'Hello from Node');
  const r = await withTimeout(done, 10_000, 'msg_tutorial exits');
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, `id=${q.id}\nReceived: Hello from Node\n`);
  st = q.stat();
  assert.equal(st.lspid, process.pid);
  assert.equal(st.lrpid, peer.pid);
  assert.equal(st.qnum, 0);
  assert.equal(st.cbytes, 0);
});

test('the tutorial the other way: C creates the queue, Node opens it with { path, projId } and answers', async (t) => {
  const file = ftokFile();
  const peer = started(spawn(await tutorialPeer, [file], { stdio: ['ignore', 'pipe', 'pipe'] }));
  t.after(() => {
    if (peer.exitCode === null) peer.kill('SIGKILL');
  });
  const done = outcome(peer);
  const line = await lineOf(peer, /^id=\d+$/);
  const id = track(t, Number(line.slice(3)));

  const q = MessageQueue.open({ path: file, projId: 65 });
  t.after(() => q.close());
  assert.equal(q.id, id);
  assert.equal(q.key, ftok(file, 65));
  // 0x141 is the same project id as 65 for ftok.
  assert.equal(MessageQueue.open({ path: file, projId: 0x141 }).id, id);
  const st = q.stat();
  assert.equal(st.mode & 0o777, 0o666);
  assert.equal(st.cuid, process.getuid!());

  const m = await q.receive({ type: 1, timeout: 10_000 });
  assert.equal(m.data.subarray(0, m.data.indexOf(0)).toString(), HELLO);
  // A C string with its NUL: the peer prints up to it.
  await q.send(2, 'Reply with a NUL\0and more');
  const r = await withTimeout(done, 10_000, 'msg_tutorial exits');
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, `id=${id}\nReceived: Reply with a NUL\n`);
});

test('binary data with NUL bytes, empty messages and exactly MSGMAX bytes cross both ways unchanged', async (t) => {
  const q = track(t, MessageQueue.create());
  // Node -> C: random bytes with many NULs, exactly msgmax long.
  const big = randomBytes(MSGMAX);
  for (let i = 0; i < big.length; i += 3) big[i] = 0;
  big[big.length - 1] = 0;
  await q.send(3, big);
  await q.send(4, new Uint8Array(0));
  await q.send(5, Buffer.from([0, 0, 1, 0, 255, 0]));
  const { lines } = await runPeer('recv', q.id, 3, MSGMAX, 'recv', q.id, 4, MSGMAX, 'echo', q.id, 5, 6, 100);
  assert.deepEqual(lines, [
    `type=3 len=${MSGMAX} fnv=${fnv(big)} head=${big.subarray(0, 16).toString('hex')}`,
    `type=4 len=0 fnv=${fnv(new Uint8Array(0))} head=`,
    `echoed type=5 len=6 fnv=${fnv(Buffer.from([0, 0, 1, 0, 255, 0]))}`,
  ]);
  const echoed = await q.receive({ type: 6 });
  assert.deepEqual([...echoed.data], [0, 0, 1, 0, 255, 0]);

  // C -> Node.
  const sent = await runPeer('send-pattern', q.id, 9, MSGMAX, 'send-pattern', q.id, 10, 0);
  assert.deepEqual(sent.lines, [`sent len=${MSGMAX} fnv=${fnv(pattern(MSGMAX))}`, `sent len=0 fnv=${fnv(new Uint8Array(0))}`]);
  const fromC = await q.receive({ type: 9 });
  assert.equal(fromC.data.length, MSGMAX);
  assert.ok(fromC.data.equals(pattern(MSGMAX)), 'the bytes C sent');
  const empty = await q.receive();
  assert.equal(empty.type, 10);
  assert.equal(empty.data.length, 0);

  // One byte more than msgmax is refused before msgsnd, and the queue still works.
  throwsLike(() => q.trySend(1, Buffer.alloc(MSGMAX + 1)), TooLargeError, { syscall: 'msgsnd', message: /exceeds msgmax/ });
  assert.equal(q.stat().qnum, 0);
  q.trySend(1, 'still works');
  assert.equal((await runPeer('recv', q.id, 1, 100)).lines[0], `type=1 len=11 fnv=${fnv(Buffer.from('still works'))} head=${Buffer.from('still works').toString('hex')}`);
});

test('send() takes a Buffer, any TypedArray, a DataView or a string: mtext is exactly their bytes', async (t) => {
  const q = track(t, MessageQueue.create());
  const backing = new ArrayBuffer(64);
  new Uint8Array(backing).forEach((_, i, a) => (a[i] = i));
  const payloads: [string, Uint8Array | ArrayBufferView | string, Buffer][] = [
    ['Buffer slice', Buffer.from('xxHello, Buffer').subarray(2), Buffer.from('Hello, Buffer')],
    ['Uint16Array', new Uint16Array([0x0201, 0x0403]), Buffer.from(new Uint16Array([0x0201, 0x0403]).buffer)],
    ['Float64Array view at an offset', new Float64Array(backing, 8, 2), Buffer.from(backing, 8, 16)],
    ['DataView', new DataView(backing, 3, 5), Buffer.from(backing, 3, 5)],
    ['Uint8Array', new Uint8Array([9, 0, 8]), Buffer.from([9, 0, 8])],
    ['string (UTF-8)', 'héllo ✓', Buffer.from('héllo ✓', 'utf8')],
  ];
  for (const [i, [, data]] of payloads.entries()) await q.send(i + 1, data);
  const steps = payloads.flatMap(() => ['recv', q.id, 0, 100]);
  const { lines } = await runPeer(...steps);
  assert.deepEqual(
    lines,
    payloads.map(([, , want], i) => `type=${i + 1} len=${want.length} fnv=${fnv(want)} head=${want.subarray(0, 16).toString('hex')}`),
  );
  // The other forms send the same bytes.
  for (const [i, [, data, want]] of payloads.entries()) {
    assert.equal(q.trySend(i + 1, data), true);
    q.sendSync(i + 1, data);
    assert.ok(q.tryReceive()!.data.equals(want));
    assert.ok(q.receiveSync().data.equals(want));
  }
});

test('receive selects by type: 0 is FIFO, > 0 exact, < 0 lowest up to |type|, except skips a type', async (t) => {
  const q = track(t, MessageQueue.create());
  await runPeer('send', q.id, 3, 'c1', 'send', q.id, 1, 'a1', 'send', q.id, 2, 'b1', 'send', q.id, 3, 'c2', 'send', q.id, 1, 'a2', 'send', q.id, 5, 'e1');
  const take = async (o?: sysv.ReceiveOptions): Promise<string> => {
    const m = await q.receive(o);
    return `${m.type}:${m.data.toString()}`;
  };
  assert.equal(await take({ type: 3 }), '3:c1');
  assert.equal(await take({ type: -2 }), '1:a1', 'lowest type up to 2, first of it');
  assert.equal(await take({ type: 1, except: true }), '2:b1', 'first message not of type 1');
  assert.equal(await take(), '3:c2', 'type 0: the oldest of any type');
  assert.equal(q.tryReceive({ type: 4 }), undefined);
  assert.equal(await take({ type: -5 }), '1:a2');
  assert.equal(q.tryReceive({ type: -4 }), undefined, 'only type 5 is left');
  assert.equal(q.tryReceive({ type: 5, except: true }), undefined);
  assert.equal(q.receiveSync({ type: -5 }).data.toString(), 'e1');
  assert.equal(q.stat().qnum, 0);

  // FIFO within a type and across types with type 0, from another process.
  await runPeer('send-many', q.id, 1, 5);
  const order: string[] = [];
  for (let i = 0; i < 5; i++) order.push(await take());
  assert.deepEqual(order, ['1:message 1', '2:message 2', '3:message 3', '4:message 4', '5:message 5']);

  // The same selections hold for receives that wait for the message to arrive.
  const except = held(take({ type: 2, except: true }));
  const lowest = held(take({ type: -3 }));
  await blocked('msgrcv', q.id, 2);
  await runPeer('send', q.id, 2, 'two', 'send', q.id, 5, 'five', 'send', q.id, 7, 'seven', 'send', q.id, 3, 'three');
  assert.equal(await except, '5:five');
  assert.equal(await lowest, '2:two');
  assert.equal(await take({ type: -3 }), '3:three');
  assert.equal(await take(), '7:seven');
});

test('noError truncates; without it a too-long message is TooLargeError (E2BIG) and stays in the queue', async (t) => {
  const q = track(t, MessageQueue.create());
  await runPeer('send', q.id, 1, '0123456789');
  const e2big = { code: 'E2BIG', errno: -7, syscall: 'msgrcv', key: 0, message: /maxSize \(4 bytes\).*stays in the queue/ };
  throwsLike(() => q.tryReceive({ maxSize: 4 }), TooLargeError, e2big);
  throwsLike(() => q.receiveSync({ maxSize: 4 }), TooLargeError, e2big);
  throwsLike(() => q.receiveSync({ maxSize: 4, timeout: 1000 }), TooLargeError, e2big);
  await rejectsLike(q.receive({ maxSize: 4 }), TooLargeError, e2big);
  assert.equal(q.stat().qnum, 1, 'still there');
  const whole = await q.receive({ maxSize: 10 });
  assert.equal(whole.data.toString(), '0123456789');

  await runPeer('send', q.id, 2, 'abcdefghij');
  const cut = await q.receive({ maxSize: 4, noError: true });
  assert.equal(cut.type, 2);
  assert.equal(cut.data.toString(), 'abcd');
  assert.equal(q.stat().qnum, 0, 'the rest is discarded, as in C');
  assert.equal(q.stat().cbytes, 0);

  // While waiting: the message that arrives is too long.
  const pending = held(q.receive({ maxSize: 4 }));
  await blocked('msgrcv', q.id);
  await runPeer('send', q.id, 3, 'too long for four');
  await rejectsLike(pending, TooLargeError, e2big);
  assert.equal(q.stat().qnum, 1);
  assert.equal(q.tryReceive({ maxSize: 0, noError: true })!.data.length, 0);
  assert.equal(q.stat().qnum, 0);
});

test('stat(): the msqid_ds fields follow the sending and receiving processes', async (t) => {
  const t0 = Math.floor(Date.now() / 1000);
  const { q, key } = createWithFreshKey(t, { mode: 0o640 });
  const st0 = q.stat();
  assert.equal(st0.id, q.id);
  assert.equal(st0.key, key);
  assert.equal(st0.mode & 0o777, 0o640, 'System V ignores the umask');
  assert.equal(st0.uid, process.getuid!());
  assert.equal(st0.gid, process.getgid!());
  assert.equal(st0.cuid, process.getuid!());
  assert.equal(st0.cgid, process.getgid!());
  assert.equal(st0.qnum, 0);
  assert.equal(st0.cbytes, 0);
  assert.equal(st0.qbytes, MSGMNB);
  assert.equal(st0.lspid, 0);
  assert.equal(st0.lrpid, 0);
  assert.equal(st0.stime, null);
  assert.equal(st0.rtime, null);
  assert.ok(st0.ctime instanceof Date);
  assert.deepEqual(MessageQueue.stat(q.id), st0);

  const sender = await runPeer('send', q.id, 7, 'abc', 'send', q.id, 8, 'hello');
  const st1 = q.stat();
  assert.equal(st1.qnum, 2);
  assert.equal(st1.cbytes, 8);
  assert.equal(st1.lspid, sender.pid);
  assert.equal(st1.lrpid, 0);
  assert.ok(st1.stime instanceof Date);
  assert.equal(st1.rtime, null);

  assert.equal((await q.receive()).data.toString(), 'abc');
  const st2 = q.stat();
  assert.equal(st2.qnum, 1);
  assert.equal(st2.cbytes, 5);
  assert.equal(st2.lrpid, process.pid);
  assert.equal(st2.lspid, sender.pid);
  assert.ok(st2.rtime instanceof Date);

  const receiver = await runPeer('recv', q.id, 0, 100);
  const st3 = q.stat();
  assert.equal(st3.qnum, 0);
  assert.equal(st3.cbytes, 0);
  assert.equal(st3.lrpid, receiver.pid);

  // A receive that waited: the sender hands the message straight to the
  // sleeping waiter thread, and the kernel records that *thread's* id as
  // msg_lrpid (docs/sysv-message-queue.md). stat() reports what the kernel says.
  const waiting = held(q.receive());
  await blocked('msgrcv', q.id);
  const [waiterTid] = await tidsIn('msgrcv', q.id);
  assert.notEqual(waiterTid, process.pid);
  const late = await runPeer('send', q.id, 9, 'late');
  assert.equal((await waiting).data.toString(), 'late');
  const st4 = q.stat();
  assert.equal(st4.lspid, late.pid);
  assert.equal(st4.lrpid, waiterTid);
  assert.ok(queues().some((r) => r.id === q.id && r.lrpid === waiterTid), 'ipcs (/proc/sysvipc/msg) shows the same');
  // The kernel stamps whole seconds from its coarse clock: allow one second.
  const now = Math.ceil(Date.now() / 1000);
  for (const d of [st3.stime, st3.rtime, st3.ctime]) {
    const sec = d!.getTime() / 1000;
    assert.ok(sec >= t0 - 1 && sec <= now, `${sec} is within [${t0 - 1}, ${now}]`);
  }
});

test('set({ maxBytes }) and setMaxBytes change the capacity with IPC_SET (lowering works as root too); stat shows it', async (t) => {
  const q = track(t, MessageQueue.create({ mode: 0o644 }));
  q.setMaxBytes(100);
  assert.equal(q.stat().qbytes, 100);
  q.set({ maxBytes: 50, mode: 0o600 });
  let st = q.stat();
  assert.equal(st.qbytes, 50);
  assert.equal(st.mode & 0o777, 0o600);
  assert.equal(st.uid, process.getuid!());
  q.set({ mode: 0o660 });
  assert.equal(q.stat().qbytes, 50, 'unchanged fields keep their value');
  assert.equal(q.stat().mode & 0o777, 0o660);

  // The kernel enforces the new capacity, for C senders too.
  assert.equal(q.trySend(1, Buffer.alloc(40)), true);
  assert.equal(q.trySend(1, Buffer.alloc(11)), false, 'full at 50 bytes');
  const c = await spawnPeer(t, 'send', q.id, 2, 'x'.repeat(11));
  // The C sender blocks until room is made.
  const nr = (await sysno).msgsnd;
  await until(() => {
    try {
      return Number(readFileSync(`/proc/${c.pid}/syscall`, 'utf8').split(' ')[0]) === nr;
    } catch {
      return false;
    }
  }, 'the C sender blocks');
  assert.equal((await q.receive()).data.length, 40);
  const r = await finished(c, 'msg_peer send');
  assert.equal(r.code, 0, r.stderr);
  st = q.stat();
  assert.equal(st.qnum, 1);
  assert.equal(st.cbytes, 11);
  assert.equal(st.lspid, c.pid);

  // Raising past msgmnb needs CAP_SYS_RESOURCE (root in a container may lack it).
  if (hasSysResource) {
    q.setMaxBytes(MSGMNB * 2);
    assert.equal(q.stat().qbytes, MSGMNB * 2);
  } else {
    throwsLike(() => q.setMaxBytes(MSGMNB * 2), PermissionError, { code: 'EPERM', syscall: 'msgctl' });
  }
  q.setMaxBytes(MSGMNB);
  assert.equal(q.stat().qbytes, MSGMNB);
  for (const bad of [-1, 1.5, NaN, '100', 2 ** 32]) {
    throwsLike(() => q.set({ maxBytes: bad as number }), InvalidArgumentError, { message: /maxBytes/ });
  }
  throwsLike(() => q.set({ mode: 0o1000 }), InvalidArgumentError, { message: /mode/ });
  assert.equal(q.stat().qbytes, MSGMNB);
});

test('async receive and send time out with a TimeoutError and take nothing', async (t) => {
  const q = track(t, MessageQueue.create());
  let t0 = performance.now();
  await rejectsLike(q.receive({ timeout: 50 }), TimeoutError, { code: 'ETIMEDOUT', syscall: 'msgrcv', key: 0, message: /ETIMEDOUT: timed out, msgrcv key 0x00000000/ });
  assert.ok(performance.now() - t0 >= 45, 'waited for the timeout');
  await rejectsLike(q.receive({ timeout: 0 }), TimeoutError, { syscall: 'msgrcv' });
  assert.equal(q.pendingWaits, 0);
  await runPeer('send', q.id, 1, 'after the timeout');
  assert.equal(q.stat().qnum, 1, 'the timed-out receives took nothing');
  assert.equal((await q.receive({ timeout: 0 })).data.toString(), 'after the timeout');

  q.setMaxBytes(8);
  q.trySend(1, '12345678');
  t0 = performance.now();
  await rejectsLike(q.send(2, 'x', { timeout: 50 }), TimeoutError, { code: 'ETIMEDOUT', syscall: 'msgsnd' });
  assert.ok(performance.now() - t0 >= 45);
  const st = q.stat();
  assert.equal(st.qnum, 1, 'the timed-out send added nothing');
  assert.equal(st.cbytes, 8);
  assert.equal(q.pendingWaits, 0);
});

test('AbortSignal: an already aborted signal rejects at once, taking and sending nothing; aborting mid-wait rejects promptly', async (t) => {
  const q = track(t, MessageQueue.create());
  const reason = new Error('stop');
  const aborted = AbortSignal.abort(reason);
  await runPeer('send', q.id, 1, 'waiting');
  const abortFields = { name: 'AbortError', code: 'ABORT_ERR', cause: reason };
  await rejectsLike(q.receive({ signal: aborted }), AbortError, abortFields);
  assert.equal(q.stat().qnum, 1, 'an aborted receive leaves the waiting message');
  await rejectsLike(q.send(2, 'not sent', { signal: aborted }), AbortError, abortFields);
  assert.equal(q.stat().qnum, 1, 'an aborted send sends nothing');
  assert.equal((await q.receive()).data.toString(), 'waiting');

  // Mid-wait: the receive is in the kernel when the signal fires.
  const ac = new AbortController();
  const pending = held(q.receive({ signal: ac.signal }));
  await blocked('msgrcv', q.id);
  assert.equal(q.pendingWaits, 1);
  const t0 = performance.now();
  ac.abort(reason);
  await rejectsLike(pending, AbortError, abortFields);
  assert.ok(performance.now() - t0 < 1000, `rejected after ${performance.now() - t0} ms`);
  assert.equal(q.pendingWaits, 0);
  assert.equal(await threadsIn('msgrcv', q.id), 0);
  await runPeer('send', q.id, 1, 'after the abort');
  assert.equal(q.stat().qnum, 1, 'the aborted receive took nothing');
  assert.equal((await q.receive()).data.toString(), 'after the abort');

  // A send waiting on a full queue, aborted.
  q.setMaxBytes(4);
  q.trySend(1, 'full');
  const ac2 = new AbortController();
  const sending = held(q.send(2, 'more', { signal: ac2.signal }));
  await blocked('msgsnd', q.id);
  ac2.abort();
  await rejectsLike(sending, AbortError, { code: 'ABORT_ERR' });
  assert.equal(q.stat().qnum, 1);
  assert.equal(q.tryReceive()!.data.toString(), 'full');
  assert.equal(q.tryReceive(), undefined, 'the aborted send sent nothing');
});

test('try forms return undefined/false; receiveSync and sendSync time out', (t) => {
  const q = track(t, MessageQueue.create());
  assert.equal(q.tryReceive(), undefined);
  assert.equal(q.tryReceive({ type: 3 }), undefined);
  let t0 = performance.now();
  throwsLike(() => q.receiveSync({ timeout: 30 }), TimeoutError, { code: 'ETIMEDOUT', syscall: 'msgrcv' });
  assert.ok(performance.now() - t0 >= 25);
  throwsLike(() => q.receiveSync({ timeout: 0 }), TimeoutError);
  q.setMaxBytes(3);
  assert.equal(q.trySend(1, 'abc'), true);
  assert.equal(q.trySend(1, 'd'), false);
  t0 = performance.now();
  throwsLike(() => q.sendSync(1, 'd', { timeout: 30 }), TimeoutError, { code: 'ETIMEDOUT', syscall: 'msgsnd' });
  assert.ok(performance.now() - t0 >= 25);
  assert.equal(q.stat().qnum, 1);
  assert.equal(q.receiveSync({ timeout: 30 }).data.toString(), 'abc');
  q.sendSync(2, 'd', { timeout: 30 });
  assert.equal(q.receiveSync().data.toString(), 'd');
});

test('receiveSync and sendSync block a Node child until a C process acts (with and without a timeout)', async (t) => {
  const qa = track(t, MessageQueue.create());
  const qb = track(t, MessageQueue.create());
  qb.setMaxBytes(16);
  qb.trySend(9, 'sixteen bytes!!!');
  const child = nodeChild(
    t,
    `import { sysv } from 'interprocess';
     const [a, b] = process.argv.slice(1).map(Number);
     const qa = sysv.MessageQueue.fromId(a), qb = sysv.MessageQueue.fromId(b);
     const m = qa.receiveSync({ type: 1 });
     console.log('received ' + m.type + ' ' + m.data);
     qb.sendSync(2, 'from the child');
     console.log('sent');
     console.log('polling');
     const n = qa.receiveSync({ type: 4, timeout: 10000 });
     console.log('received ' + n.type + ' ' + n.data);`,
    [qa.id, qb.id],
  );
  const done = outcome(child);
  const peer = await spawnPeer(t, 'wait-blocked', child.pid!, 'msgrcv', qa.id, 1, 'send', qa.id, 1, 'hello child', 'wait-blocked', child.pid!, 'msgsnd', qb.id, 1, 'recv', qb.id, 9, 100);
  const peerDone = outcome(peer);
  await lineOf(child, /^polling$/);
  await runPeer('send', qa.id, 4, 'after polling');
  const r = await withTimeout(done, 15_000, 'child exits');
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'received 1 hello child\nsent\npolling\nreceived 4 after polling\n');
  const p = await withTimeout(peerDone, 15_000, 'peer exits');
  assert.equal(p.code, 0, p.stderr);
  assert.equal(p.stdout, `blocked 1\nsent\nblocked 1\ntype=9 len=16 fnv=${fnv(Buffer.from('sixteen bytes!!!'))} head=${Buffer.from('sixteen bytes!!!').toString('hex')}\n`);
  const m = qb.tryReceive()!;
  assert.equal(m.type, 2);
  assert.equal(m.data.toString(), 'from the child');
  assert.equal(qb.stat().lspid, child.pid);
});

test('a signal handled while receiveSync/sendSync block does not end them (EINTR is retried)', async (t) => {
  const qa = track(t, MessageQueue.create());
  const qb = track(t, MessageQueue.create());
  qb.setMaxBytes(4);
  qb.trySend(9, 'full');
  const child = nodeChild(
    t,
    `import { sysv } from 'interprocess';
     // A handled signal (without a handler SIGUSR2 would end the process).
     process.on('SIGUSR2', () => {});
     const [a, b] = process.argv.slice(1).map(Number);
     const qa = sysv.MessageQueue.fromId(a), qb = sysv.MessageQueue.fromId(b);
     try {
       console.log('received ' + qa.receiveSync().data);
       qb.sendSync(2, 'sent');
       console.log('sent');
     } catch (e) {
       console.log(e.name + ' ' + e.code);
     }`,
    [qa.id, qb.id],
  );
  const done = outcome(child);
  const peer = await spawnPeer(t, 'interrupt', child.pid!, 'msgrcv', qa.id, 'send', qa.id, 1, 'after the signal', 'interrupt', child.pid!, 'msgsnd', qb.id, 'recv', qb.id, 9, 10);
  const peerDone = outcome(peer);
  const r = await withTimeout(done, 15_000, 'child exits');
  const p = await withTimeout(peerDone, 15_000, 'peer exits');
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'received after the signal\nsent\n');
  assert.equal(p.code, 0, p.stderr);
  // The peer saw each signal taken while the call was in progress, and the call resumed.
  assert.equal(p.stdout, `interrupted\nsent\ninterrupted\ntype=9 len=4 fnv=${fnv(Buffer.from('full'))} head=${Buffer.from('full').toString('hex')}\n`);
  assert.equal(qb.tryReceive()!.data.toString(), 'sent');
});

test('send on a full queue waits until another process receives; a message larger than the capacity is TooLargeError', async (t) => {
  const q = track(t, MessageQueue.create());
  q.setMaxBytes(64);
  assert.equal(q.trySend(1, 'A'.repeat(32)), true);
  assert.equal(q.trySend(2, 'B'.repeat(32)), true);
  assert.equal(q.trySend(3, 'C'), false, 'full');
  let settled = false;
  const sending = held(q.send(3, 'C'.repeat(16)).then(() => (settled = true)));
  await blocked('msgsnd', q.id);
  assert.equal(settled, false);
  assert.equal(q.pendingWaits, 1);
  const { lines, pid } = await runPeer('recv', q.id, 1, 100);
  assert.match(lines[0], /^type=1 len=32 /);
  await withTimeout(sending, 10_000, 'the waiting send completes');
  const st = q.stat();
  assert.equal(st.qnum, 2);
  assert.equal(st.cbytes, 48);
  assert.equal(st.lspid, process.pid);
  assert.equal(st.lrpid, pid);
  assert.equal((await q.receive({ type: 3 })).data.toString(), 'C'.repeat(16));

  // Larger than the whole queue: never fits, so it fails instead of waiting, empty or not.
  const tooLarge = { code: 'EINVAL', syscall: 'msgsnd', message: /can never fit in this queue \(capacity 64 bytes\)/ };
  throwsLike(() => q.trySend(1, Buffer.alloc(65)), TooLargeError, tooLarge);
  throwsLike(() => q.sendSync(1, Buffer.alloc(65)), TooLargeError, tooLarge);
  throwsLike(() => q.sendSync(1, Buffer.alloc(65), { timeout: 1000 }), TooLargeError, tooLarge);
  await rejectsLike(q.send(1, Buffer.alloc(65)), TooLargeError, tooLarge);
  q.tryReceive();
  assert.equal(q.stat().qnum, 0);
  await rejectsLike(q.send(1, Buffer.alloc(65)), TooLargeError, tooLarge);
  await q.send(1, Buffer.alloc(64));
  // A capacity of 0 holds not even an empty message.
  q.tryReceive();
  q.setMaxBytes(0);
  await rejectsLike(q.send(1, ''), TooLargeError, { syscall: 'msgsnd' });
  assert.equal(q.pendingWaits, 0);
});

test('removing the queue while receives and a send wait rejects them with RemovedError (EIDRM), promptly', async (t) => {
  const q1 = track(t, MessageQueue.create());
  const q2 = track(t, MessageQueue.create());
  q2.setMaxBytes(10);
  q2.trySend(1, '0123456789');
  const removedFields = (syscall: string, key = 0) => ({ code: 'EIDRM', errno: -43, syscall, key, message: new RegExp(`^EIDRM: identifier removed, ${syscall} key`) });
  const receives = [q1.receive(), q1.receive({ type: 5 }), q1.receive({ type: -3, timeout: 60_000 })].map(held);
  const sending = held(q2.send(2, 'x'));
  await blocked('msgrcv', q1.id, 3);
  await blocked('msgsnd', q2.id, 1);
  // Another process removes both.
  const { lines } = await runPeer('rm', q1.id, 'rm', q2.id);
  assert.deepEqual(lines, ['removed', 'removed']);
  const t0 = performance.now();
  for (const p of receives) await rejectsLike(p, RemovedError, removedFields('msgrcv'));
  await rejectsLike(sending, RemovedError, removedFields('msgsnd'));
  assert.ok(performance.now() - t0 < 1000, `took ${performance.now() - t0} ms`);
  assert.equal(q1.pendingWaits + q2.pendingWaits, 0);
  assert.ok(!queues().some((r) => r.id === q1.id || r.id === q2.id));
  // The id is gone now: EINVAL, not a wait.
  throwsLike(() => q1.tryReceive(), InvalidArgumentError, { code: 'EINVAL' });

  // msgctl(IPC_RMID) from this process, through another handle.
  const { q: q3, key } = createWithFreshKey(t);
  const waiting = held(q3.receive());
  await blocked('msgrcv', q3.id);
  const t1 = performance.now();
  MessageQueue.remove(q3.id);
  await rejectsLike(waiting, RemovedError, removedFields('msgrcv', key));
  assert.ok(performance.now() - t1 < 1000);

  // A Node child blocked in receiveSync, removed by a C process.
  const q4 = track(t, MessageQueue.create());
  const child = nodeChild(
    t,
    `import { sysv } from 'interprocess';
     try { sysv.MessageQueue.fromId(Number(process.argv[1])).receiveSync(); }
     catch (e) { console.log(e.name + ' ' + e.code + ' ' + e.syscall); }`,
    [q4.id],
  );
  const peer = await runPeer('wait-blocked', child.pid!, 'msgrcv', q4.id, 1, 'rm', q4.id);
  assert.deepEqual(peer.lines, ['blocked 1', 'removed']);
  const r = await finished(child, 'child');
  assert.equal(r.stdout, 'RemovedError EIDRM msgrcv\n', r.stderr);

  // The instance form removes too.
  const q5 = track(t, MessageQueue.create());
  q5.remove();
  assert.ok(!queues().some((r) => r.id === q5.id));
});

test('close(): pending waits reject with EBADF and take nothing; later calls throw EBADF; the queue stays', async (t) => {
  const q = track(t, MessageQueue.create());
  const full = track(t, MessageQueue.create());
  full.setMaxBytes(1);
  full.trySend(1, 'x');
  const h = MessageQueue.fromId(q.id);
  const hFull = MessageQueue.fromId(full.id);
  const waits = [h.receive(), h.receive({ type: 2 }), h.receive({ signal: new AbortController().signal, timeout: 60_000 })].map(held);
  const sending = held(hFull.send(1, 'y'));
  await blocked('msgrcv', q.id, 3);
  await blocked('msgsnd', full.id, 1);
  assert.equal(h.pendingWaits, 3);
  h.close();
  hFull.close();
  const ebadf = { code: 'EBADF', errno: -9, message: /closed/ };
  for (const p of waits) await rejectsLike(p, IpcError, ebadf);
  await rejectsLike(sending, IpcError, ebadf);
  assert.equal(h.pendingWaits, 0);
  assert.equal(h.closed, true);
  assert.equal(await threadsIn('msgrcv', q.id), 0);

  await runPeer('send', q.id, 2, 'after close');
  assert.equal(q.stat().qnum, 1, 'the closed handle took nothing');
  assert.equal(full.stat().qnum, 1, 'and sent nothing');

  // The handle refuses everything; close is idempotent.
  h.close();
  h[Symbol.dispose]();
  throwsLike(() => h.tryReceive(), IpcError, ebadf);
  throwsLike(() => h.receiveSync({ timeout: 10 }), IpcError, ebadf);
  throwsLike(() => h.trySend(1, 'z'), IpcError, ebadf);
  throwsLike(() => h.sendSync(1, 'z'), IpcError, ebadf);
  throwsLike(() => h.stat(), IpcError, ebadf);
  throwsLike(() => h.setMaxBytes(10), IpcError, ebadf);
  throwsLike(() => h.remove(), IpcError, ebadf);
  await rejectsLike(h.receive(), IpcError, ebadf);
  await rejectsLike(h.send(1, 'z'), IpcError, ebadf);

  // The queue itself is still there, message and all.
  assert.ok(queues().some((r) => r.id === q.id && r.qnum === 1));
  assert.equal((await q.receive()).data.toString(), 'after close');
  // using: disposing closes.
  {
    using scoped = MessageQueue.fromId(q.id);
    assert.equal(scoped.closed, false);
    t.after(() => assert.equal(scoped.closed, true));
  }
});

test('messages() and for await yield messages in order and end quietly on abort or close(); removal ends them with RemovedError', async (t) => {
  const q = track(t, MessageQueue.create());
  await runPeer('send', q.id, 1, 'one', 'send', q.id, 2, 'two', 'send', q.id, 1, 'three', 'send', q.id, 3, 'four');
  const ac = new AbortController();
  const got: string[] = [];
  for await (const m of q.messages({ signal: ac.signal, type: -2 })) {
    got.push(`${m.type}:${m.data.toString()}`);
    if (got.length === 3) void blocked('msgrcv', q.id).then(() => ac.abort());
  }
  assert.deepEqual(got, ['1:one', '1:three', '2:two'], 'a negative type takes the lowest type first');
  assert.equal(q.pendingWaits, 0);
  assert.equal(q.stat().qnum, 1, 'type 3 was not taken');

  const h = MessageQueue.fromId(q.id);
  const seen: string[] = [];
  const peer = await spawnPeer(t, 'send-lines', q.id, 4);
  for await (const m of h) {
    seen.push(m.data.toString());
    if (seen.length === 1) peer.stdin!.write('five\nsix\n');
    if (seen.length === 3) void blocked('msgrcv', q.id).then(() => h.close());
  }
  assert.deepEqual(seen, ['four', 'five', 'six']);
  assert.equal(h.closed, true);
  peer.stdin!.end();
  assert.equal((await finished(peer, 'peer')).stdout, 'total 2\n');

  const gone = track(t, MessageQueue.create());
  const loop = held(
    (async () => {
      for await (const m of gone.messages()) void m;
    })(),
  );
  await blocked('msgrcv', gone.id);
  await runPeer('rm', gone.id);
  await rejectsLike(loop, RemovedError, { code: 'EIDRM' });
});

test('a timed-out or aborted receive takes nothing: 200 aborts raced against a sending process lose no message', async (t) => {
  const q = track(t, MessageQueue.create());
  const peer = await spawnPeer(t, 'send-lines', q.id, 1);
  const total = held(lineOf(peer, /^total \d+$/, 30_000));
  const sent: string[] = [];
  const received: string[] = [];
  let aborts = 0;
  let timeouts = 0;
  for (let i = 0; i < 200; i++) {
    const ac = new AbortController();
    const useTimeout = i % 5 === 4;
    const p = q.receive(useTimeout ? { timeout: randomInt(3) } : { signal: ac.signal }).then(
      (m) => void received.push(m.data.toString()),
      (e: unknown) => {
        if (e instanceof AbortError) aborts++;
        else if (e instanceof TimeoutError) timeouts++;
        else throw e;
      },
    );
    if (randomInt(3) > 0) {
      sent.push(`m${i}`);
      peer.stdin!.write(`m${i}\n`);
    }
    const when = randomInt(4);
    if (when === 0) ac.abort();
    else if (when === 1) setImmediate(() => ac.abort());
    else setTimeout(() => ac.abort(), when - 2);
    await p;
  }
  peer.stdin!.end();
  assert.equal(await total, `total ${sent.length}`);
  const left: string[] = [];
  for (let m = q.tryReceive(); m; m = q.tryReceive()) left.push(m.data.toString());
  assert.equal(sent.length, received.length + left.length, `sent ${sent.length}, received ${received.length}, left ${left.length}`);
  assert.deepEqual([...received, ...left].sort(), [...sent].sort(), 'every message once');
  assert.ok(aborts + timeouts > 0 && received.length > 0, `both outcomes happen (${aborts} aborts, ${timeouts} timeouts, ${received.length} received)`);
  assert.equal(q.pendingWaits, 0);
});

test('no thread outlives its wait: after timeouts and aborts the thread count returns to its baseline and pendingWaits to 0', async (t) => {
  const q = track(t, MessageQueue.create());
  // Warm up what starts threads lazily (libuv's pool, the waiter machinery).
  await fsp.readFile(thisFile);
  await rejectsLike(q.receive({ timeout: 1 }), TimeoutError);
  const baseline = threadCount();
  const acs = Array.from({ length: 20 }, () => new AbortController());
  const waits = [
    ...acs.map((ac, i) => q.receive({ signal: ac.signal, type: i + 1 })),
    ...Array.from({ length: 20 }, (_, i) => q.receive({ timeout: 50, type: 100 + i })),
  ].map(held);
  await blocked('msgrcv', q.id, 40);
  assert.equal(q.pendingWaits, 40);
  assert.ok(threadCount() >= baseline + 40, `${threadCount()} threads while 40 wait`);
  for (const ac of acs) ac.abort();
  const results = await Promise.allSettled(waits);
  assert.deepEqual(
    results.map((r) => (r.status === 'rejected' ? (r.reason as Error).name : 'fulfilled')),
    [...Array(20).fill('AbortError'), ...Array(20).fill('TimeoutError')],
  );
  assert.equal(q.pendingWaits, 0);
  await until(() => threadCount() <= baseline, `threads return to ${baseline} (now ${threadCount()})`, 2000);
  assert.equal(await threadsIn('msgrcv', q.id), 0);
});

test('150 concurrent receives on one queue wait without starving fs, and each gets its own message', async (t) => {
  const q = track(t, MessageQueue.create());
  const N = 150;
  const waits = Array.from({ length: N }, (_, i) => held(q.receive({ type: i + 1, timeout: 60_000 })));
  await blocked('msgrcv', q.id, N);
  assert.equal(q.pendingWaits, N);
  // With the waits on libuv's four pool threads, these would never complete.
  const t0 = performance.now();
  const fsResults = await withTimeout(
    Promise.all([...Array.from({ length: 8 }, () => fsp.readFile(thisFile, 'utf8')), fsp.stat(tmp.dir), fsp.readdir(tmp.dir)]),
    5000,
    'fs calls complete',
  );
  const elapsed = performance.now() - t0;
  assert.ok(elapsed < 1000, `fs took ${elapsed} ms while ${N} receives waited`);
  assert.ok((fsResults[0] as string).includes('150 concurrent receives'));

  const { lines } = await runPeer('send-many', q.id, 1, N);
  assert.deepEqual(lines, [`sent ${N}`]);
  const got = await withTimeout(Promise.all(waits), 15_000, 'all receives complete');
  got.forEach((m, i) => {
    assert.equal(m.type, i + 1);
    assert.equal(m.data.toString(), `message ${i + 1}`);
  });
  assert.equal(q.pendingWaits, 0);
  assert.equal(q.stat().qnum, 0);
});

test('bad input is rejected before any system call, and the queue still works', async (t) => {
  const q = track(t, MessageQueue.create());
  const before = q.stat();
  for (const type of [0, -1, 1.5, NaN, Infinity, '1', 2 ** 53, undefined]) {
    const T = type as number;
    throwsLike(() => q.trySend(T, 'x'), InvalidArgumentError, { message: /message type must be an integer/ });
    throwsLike(() => q.sendSync(T, 'x'), InvalidArgumentError);
    await rejectsLike(q.send(T, 'x'), InvalidArgumentError);
  }
  for (const data of [42, {}, null, undefined, [1, 2], new ArrayBuffer(4)]) {
    const D = data as string;
    throwsLike(() => q.trySend(1, D), InvalidArgumentError, { code: 'ERR_INVALID_ARG_TYPE' });
    await rejectsLike(q.send(1, D), InvalidArgumentError, { code: 'ERR_INVALID_ARG_TYPE' });
  }
  const oversize = Buffer.alloc(MSGMAX + 1);
  throwsLike(() => q.trySend(1, oversize), TooLargeError, { syscall: 'msgsnd', key: 0 });
  throwsLike(() => q.sendSync(1, oversize), TooLargeError);
  await rejectsLike(q.send(1, oversize), TooLargeError);
  await rejectsLike(q.send(1, 'x'.repeat(MSGMAX + 1)), TooLargeError);

  for (const key of [1.5, 2 ** 40, 'x', NaN, -(2 ** 31) - 1, null]) {
    const K = key as number;
    throwsLike(() => MessageQueue.create({ key: K }), InvalidArgumentError, { message: /key must be a 32-bit integer/ });
    throwsLike(() => MessageQueue.open(K), InvalidArgumentError);
  }
  throwsLike(() => MessageQueue.create({ key: { path: ftokFile(), projId: 1.5 } }), InvalidArgumentError, { message: /projId/ });
  throwsLike(() => MessageQueue.create({ mode: 0o1000 }), InvalidArgumentError, { message: /mode/ });
  throwsLike(() => MessageQueue.create({ mode: -1 }), InvalidArgumentError);
  throwsLike(() => MessageQueue.create({ exclusive: 'yes' as unknown as boolean }), InvalidArgumentError);
  for (const id of [-1, 1.5, NaN, '3', 2 ** 31]) {
    const I = id as number;
    throwsLike(() => MessageQueue.fromId(I), InvalidArgumentError, { message: /id must be an integer/ });
    throwsLike(() => MessageQueue.stat(I), InvalidArgumentError);
    throwsLike(() => MessageQueue.remove(I), InvalidArgumentError);
  }

  for (const o of [{ except: true }, { type: 0, except: true }, { type: -3, except: true }]) {
    throwsLike(() => q.tryReceive(o), InvalidArgumentError, { message: /except \(MSG_EXCEPT\) needs a positive type/ });
    await rejectsLike(q.receive(o), InvalidArgumentError);
  }
  for (const maxSize of [-1, 1.5, NaN, '10', 2 ** 31, Infinity]) {
    const o = { maxSize: maxSize as number };
    throwsLike(() => q.tryReceive(o), InvalidArgumentError, { message: /maxSize/ });
    throwsLike(() => q.receiveSync(o), InvalidArgumentError);
    await rejectsLike(q.receive(o), InvalidArgumentError);
  }
  for (const type of [1.5, NaN, 'x', 2 ** 53]) {
    throwsLike(() => q.tryReceive({ type: type as number }), InvalidArgumentError, { message: /type must be an integer/ });
  }
  throwsLike(() => q.tryReceive({ noError: 1 as unknown as boolean }), InvalidArgumentError, { message: /noError/ });
  throwsLike(() => q.tryReceive({ except: 'yes' as unknown as boolean, type: 1 }), InvalidArgumentError, { message: /except/ });
  // Wait options are checked even when a message is there to take.
  q.trySend(1, 'ready');
  for (const timeout of [-1, NaN, '10']) {
    await rejectsLike(q.receive({ timeout: timeout as number }), InvalidArgumentError, { message: /timeout/ });
    await rejectsLike(q.send(1, 'x', { timeout: timeout as number }), InvalidArgumentError, { message: /timeout/ });
    throwsLike(() => q.receiveSync({ timeout: timeout as number }), InvalidArgumentError, { message: /timeout/ });
  }
  await rejectsLike(q.receive({ signal: {} as AbortSignal }), InvalidArgumentError, { message: /signal/ });
  await rejectsLike(q.send(1, 'x', { signal: {} as AbortSignal }), InvalidArgumentError, { message: /signal/ });

  const st = q.stat();
  assert.equal(st.qnum, 1, 'only the good message was sent, and nothing taken');
  assert.equal(st.lspid, process.pid);
  assert.deepEqual([st.lrpid, st.rtime], [before.lrpid, before.rtime], 'no receive reached the kernel');
  const { lines } = await runPeer('recv', q.id, 0, 100);
  assert.match(lines[0], /^type=1 len=5 /);
  // A huge maxSize is allowed and costs no more than the message.
  q.trySend(1, 'small');
  const t0 = performance.now();
  assert.equal(q.tryReceive({ maxSize: 0x7fffffff })!.data.toString(), 'small');
  assert.ok(performance.now() - t0 < 500, `a 2 GiB maxSize took ${performance.now() - t0} ms`);
});

test('permission: an unprivileged process can open a 0o600 queue by key but not use it (EACCES); it can use a 0o666 one', { skip: !isRoot && 'needs root to run a child as nobody' }, async (t) => {
  const secret = createWithFreshKey(t, { mode: 0o600 });
  const open = createWithFreshKey(t, { mode: 0o666 });
  secret.q.trySend(1, 'secret');
  const child = nodeChild(
    t,
    `import { sysv } from 'interprocess';
     const attempt = (f) => { try { return f(); } catch (e) { return e.name + ' ' + e.code; } };
     const [secretKey, secretId, openKey] = process.argv.slice(1).map(Number);
     const secret = sysv.MessageQueue.open(secretKey); // msgget asks for no access: it works
     console.log(JSON.stringify({
       open: secret.id === secretId,
       receive: attempt(() => secret.tryReceive()),
       sendTo: attempt(() => secret.trySend(1, 'x')),
       stat: attempt(() => sysv.MessageQueue.stat(secretId).qnum),
       setMax: attempt(() => { const q = sysv.MessageQueue.open(openKey); q.setMaxBytes(10); return 'changed'; }),
       send: attempt(() => sysv.MessageQueue.open(openKey).trySend(5, 'from nobody')),
     }));`,
    [secret.key, secret.q.id, open.key],
    { uid: NOBODY, gid: NOBODY },
  );
  const r = await finished(child, 'child');
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), {
    open: true,
    receive: 'PermissionError EACCES',
    sendTo: 'PermissionError EACCES',
    stat: 'PermissionError EACCES',
    setMax: 'PermissionError EPERM',
    send: true,
  });
  assert.equal(open.q.stat().lspid, child.pid);
  assert.equal(open.q.tryReceive()!.data.toString(), 'from nobody');
  assert.equal(secret.q.stat().qnum, 1);
});

test('process exit is not held by a receive that was aborted, timed out, or satisfied', async (t) => {
  const q = track(t, MessageQueue.create());
  const nr = (await sysno).msgrcv;
  const aborter = nodeChild(
    t,
    `${CHILD_PRELUDE}
     const [id, nr] = process.argv.slice(1).map(Number);
     const q = sysv.MessageQueue.fromId(id);
     const ac = new AbortController();
     q.receive({ signal: ac.signal, type: 77 }).then(() => console.log('got'), (e) => console.log(e.name + ' ' + q.pendingWaits));
     whenBlocked(nr, id, () => ac.abort());`,
    [q.id, nr],
  );
  const timer = nodeChild(
    t,
    `import { sysv } from 'interprocess';
     const q = sysv.MessageQueue.fromId(Number(process.argv[1]));
     q.receive({ timeout: 30, type: 78 }).catch((e) => console.log(e.name));`,
    [q.id],
  );
  const satisfied = nodeChild(
    t,
    `${CHILD_PRELUDE}
     const [id, nr] = process.argv.slice(1).map(Number);
     const q = sysv.MessageQueue.fromId(id);
     q.receive({ type: 79 }).then((m) => console.log('got ' + m.data));
     whenBlocked(nr, id, () => console.log('waiting'));`,
    [q.id, nr],
  );
  const satisfiedDone = finished(satisfied, 'the satisfied child');
  await lineOf(satisfied, /^waiting$/);
  await runPeer('send', q.id, 79, 'hello');
  const [a, b, c] = await Promise.all([finished(aborter, 'the aborting child'), finished(timer, 'the timed-out child'), satisfiedDone]);
  assert.deepEqual([a.code, a.stdout], [0, 'AbortError 0\n'], a.stderr);
  assert.deepEqual([b.code, b.stdout], [0, 'TimeoutError\n'], b.stderr);
  assert.deepEqual([c.code, c.stdout], [0, 'waiting\ngot hello\n'], c.stderr);
  assert.equal(q.stat().qnum, 0);
});
