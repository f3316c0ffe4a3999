/**
 * POSIX message queues (posix.MessageQueue) against real processes: a
 * compiled C peer (test/peers/mq_peer.c) doing plain blocking mq_send and
 * mq_receive, and Node children. Every queue is named '/ipt-<pid>-...', closed
 * and unlinked by the test that made it, even when the test fails; at the end
 * every name this file used must be gone (/dev/mqueue is not needed for that:
 * MessageQueue.open must fail with NotFoundError).
 *
 * Queues are kept small (a few messages of a few hundred bytes): every queue
 * counts against the user's RLIMIT_MSGQUEUE, shared with whatever else runs.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { fstatSync, readFileSync, promises as fsp } from 'node:fs';
import { spawn, type ChildProcess } from 'node:child_process';
import { constants } from 'node:os';
import {
  posix,
  IpcError,
  AbortError,
  AlreadyExistsError,
  NotFoundError,
  InvalidArgumentError,
  PermissionError,
  TimeoutError,
  TooLargeError,
} from 'interprocess';
import * as posixEntry from 'interprocess/posix';
import { compilePeer, isRoot, NOBODY, root, run, spawnNode, uniqueName, collect, type RunResult } from './helpers.js';

const { MessageQueue } = posix;
type Queue = posix.MessageQueue;
type Ctx = { after(fn: () => void | Promise<void>): void };

const { ETIMEDOUT, EBADF, EINVAL, EMFILE, EMSGSIZE, EEXIST, ENOENT, EACCES } = constants.errno;
const T = { timeout: 30_000 };

// ---------------------------------------------------------------- helpers

/** Every name this file hands out; all must be gone at the end. */
const names = new Set<string>();

function unlinkQuietly(name: string): void {
  try {
    MessageQueue.unlink(name);
  } catch (err) {
    if (!(err instanceof NotFoundError)) throw err;
  }
}

/** A fresh name whose queue is unlinked when the test ends, pass or fail. */
function freshName(t: Ctx, tag: string): string {
  const name = uniqueName(`mq-${tag}`);
  names.add(name);
  t.after(() => unlinkQuietly(name));
  return name;
}

/** Closes `q` when the test ends (before the name is unlinked: hooks run in reverse). */
function closing<Q extends Queue>(t: Ctx, q: Q): Q {
  t.after(() => q.close());
  return q;
}

/** A small queue of its own for this test: created, closed and unlinked. */
function freshQueue(t: Ctx, tag: string, options: posix.MessageQueueCreateOptions = {}): Queue {
  return closing(t, MessageQueue.create(freshName(t, tag), { maxMessages: 8, messageSize: 256, ...options }));
}

function matchFields(caught: unknown, Cls: abstract new (...a: never[]) => Error, fields: Record<string, unknown>): void {
  assert.ok(caught instanceof Cls, `expected ${Cls.name}, got ${String(caught)}`);
  for (const [k, want] of Object.entries(fields)) {
    const got: unknown = (caught as unknown as Record<string, unknown>)[k];
    if (want instanceof RegExp) assert.match(String(got), want, `${k} of ${String(caught)}`);
    else assert.equal(got, want, `${k} of ${String(caught)}`);
  }
}

/** Asserts `fn` throws an instance of `Cls` whose fields match (RegExp for strings). */
function throwsLike<E extends Error>(fn: () => unknown, Cls: abstract new (...a: never[]) => E, fields: Record<string, unknown> = {}): E {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught !== undefined, `expected ${Cls.name}, nothing was thrown`);
  matchFields(caught, Cls, fields);
  return caught as E;
}

/** As throwsLike, for a promise; also checks that it is a promise (async methods never throw). */
async function rejectsLike<E extends Error>(p: Promise<unknown>, Cls: abstract new (...a: never[]) => E, fields: Record<string, unknown> = {}): Promise<E> {
  assert.ok(p instanceof Promise, 'an async method returns a promise, even for bad input');
  let caught: unknown;
  await p.then(
    (v) => assert.fail(`expected ${Cls.name}, resolved with ${JSON.stringify(v)}`),
    (err: unknown) => (caught = err),
  );
  matchFields(caught, Cls, fields);
  return caught as E;
}

const text = (m: { data: Buffer; priority: number }): [string, number] => [m.data.toString(), m.priority];

/** Polls `cond` every few milliseconds until it holds (a state change, never a fixed delay). */
async function until(what: string, cond: () => boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!cond()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** Lets the event loop pass its poll phase twice: anything a live poller would do is done by then. */
async function turnLoop(): Promise<void> {
  for (let i = 0; i < 2; i++) await new Promise((r) => setImmediate(r));
}

function statusField(pid: number | 'self', field: string): string {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith(field + ':'));
  assert.ok(line, `no ${field} in /proc/${pid}/status`);
  return line.slice(field.length + 1).trim();
}

const threads = (): number => Number(statusField('self', 'Threads'));

/** The kernel function the main thread of `pid` sleeps in ('' once it is gone). */
function wchan(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/wchan`, 'utf8');
  } catch {
    return '';
  }
}

/** True while `pid`'s main thread is blocked in poll()/ppoll() (not epoll: that is the idle event loop). */
const inPoll = (pid: number): boolean => wchan(pid).startsWith('poll_schedule_timeout');

function sigPending(pid: number, signo: number): boolean {
  try {
    const mask = BigInt('0x' + statusField(pid, 'ShdPnd')) | BigInt('0x' + statusField(pid, 'SigPnd'));
    return (mask & (1n << BigInt(signo - 1))) !== 0n;
  } catch {
    return false;
  }
}

/** Stdout lines of a child, awaited one pattern at a time; fails fast if the child exits first. */
class Lines {
  readonly lines: string[] = [];
  #buf = '';
  #stderr = '';
  #exited = false;
  #waiters = new Set<() => void>();
  readonly result: Promise<RunResult>;
  constructor(readonly child: ChildProcess) {
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      this.#buf += d;
      const parts = this.#buf.split('\n');
      this.#buf = parts.pop()!;
      this.lines.push(...parts);
      for (const w of this.#waiters) w();
    });
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (this.#stderr += d));
    this.result = new Promise<RunResult>((resolve, reject) => {
      child.on('error', reject);
      child.on('close', (code, signal) => {
        this.#exited = true;
        for (const w of this.#waiters) w();
        resolve({ code, signal, stdout: this.lines.join('\n') + (this.lines.length ? '\n' : '') + this.#buf, stderr: this.#stderr });
      });
    });
  }
  /** Resolves with the first line matching `pattern` (all lines so far count). */
  line(pattern: RegExp, timeoutMs = 15_000): Promise<string> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => done(new Error(`timed out waiting for ${pattern}; stdout: ${this.lines.join('|')}; stderr: ${this.#stderr}`)), timeoutMs);
      const check = (): void => {
        const found = this.lines.find((l) => pattern.test(l));
        if (found !== undefined) done(undefined, found);
        else if (this.#exited) done(new Error(`child exited before printing ${pattern}; stdout: ${this.lines.join('|')}; stderr: ${this.#stderr}`));
      };
      const done = (err?: Error, line?: string): void => {
        clearTimeout(timer);
        this.#waiters.delete(check);
        if (err) reject(err);
        else resolve(line!);
      };
      this.#waiters.add(check);
      check();
    });
  }
}

/** Kills a child if it is still running when the test ends. */
function reaping(t: Ctx, child: ChildProcess): ChildProcess {
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return child;
}

/** Waits for a child to exit by itself; a hang fails the test (and kills the child) after `ms`. */
async function exitsWithin(lines: Lines, ms: number): Promise<RunResult> {
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      lines.child.kill('SIGKILL');
      reject(new Error(`child did not exit within ${ms} ms; stdout: ${lines.lines.join('|')}`));
    }, ms);
  });
  try {
    return await Promise.race([lines.result, hung]);
  } finally {
    clearTimeout(timer);
  }
}

const peerPath = compilePeer('mq_peer');
peerPath.catch(() => {}); // reported by the tests that await it, not as an unhandled rejection

/** Runs the C peer to completion and returns its stdout lines. */
async function peer(...args: string[]): Promise<string[]> {
  const r = await run(await peerPath, args);
  assert.equal(r.code, 0, `mq_peer ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout.split('\n').filter(Boolean);
}

/** Starts the C peer (for calls that block until Node acts). */
async function peerSpawn(t: Ctx, ...args: string[]): Promise<Lines> {
  return new Lines(reaping(t, spawn(await peerPath, args, { stdio: ['ignore', 'pipe', 'pipe'] })));
}

/** A line of `mq_peer receive`: "PRIO LEN HEX TEXT". */
function received(line: string): { priority: number; length: number; hex: string; text: string } {
  const m = /^(\d+) (\d+) ([0-9a-f]*) (.*)$/s.exec(line);
  assert.ok(m, `unexpected peer line ${JSON.stringify(line)}`);
  return { priority: Number(m[1]), length: Number(m[2]), hex: m[3]!, text: m[4]! };
}

function umask(): number {
  return parseInt(statusField('self', 'Umask'), 8);
}

function procNumber(file: string): number {
  return Number(readFileSync(file, 'utf8').trim());
}

/** What mq_open uses when given no attributes. */
function systemDefaults(): { maxmsg: number; msgsize: number } {
  const q = (f: string) => procNumber(`/proc/sys/fs/mqueue/${f}`);
  return { maxmsg: Math.min(q('msg_default'), q('msg_max')), msgsize: Math.min(q('msgsize_default'), q('msgsize_max')) };
}

after(() => {
  // Nothing this file created may outlive it: report leftovers, then remove them.
  const left: string[] = [];
  for (const name of names) {
    try {
      MessageQueue.open(name).close();
      left.push(name);
      unlinkQuietly(name);
    } catch (err) {
      if (!(err instanceof NotFoundError)) throw err;
    }
  }
  assert.deepEqual(left, [], 'queues left behind');
});

// ------------------------------------------------------ create, open, unlink

test('the subpath export is the same class; the constants are the kernel\'s', () => {
  assert.equal(posixEntry.MessageQueue, MessageQueue);
  assert.equal(posix.MQ_PRIO_MAX, 32768);
  assert.equal(posix.MQ_MAX_NAME_BYTES, 255);
});

test('create: exclusive by default, attributes and mode as asked; a second create is AlreadyExistsError', (t) => {
  const name = freshName(t, 'create');
  const q = closing(t, MessageQueue.create(name, { maxMessages: 5, messageSize: 100, mode: 0o640 }));
  assert.equal(q.name, name);
  assert.equal(q.created, true);
  assert.equal(q.closed, false);
  assert.equal(q.maxMessages, 5);
  assert.equal(q.messageSize, 100);
  assert.deepEqual(q.attributes(), { maxMessages: 5, messageSize: 100, currentMessages: 0 });
  // The queue descriptor is a real file descriptor: fstat shows the mode (umask applied, as in C).
  assert.ok(q.fd >= 0);
  const st = fstatSync(q.fd);
  assert.equal(st.mode & 0o777, 0o640 & ~umask());
  assert.equal(st.uid, process.getuid!());

  q.sendSync('one');
  q.sendSync('two', 3);
  assert.equal(q.attributes().currentMessages, 2);

  const err = throwsLike(() => MessageQueue.create(name, { maxMessages: 5, messageSize: 100 }), AlreadyExistsError, {
    code: 'EEXIST',
    errno: -EEXIST,
    syscall: 'mq_open',
    path: name,
    message: /^EEXIST: .*mq_open '\/ipt-/,
  });
  assert.equal(err.name, 'AlreadyExistsError');
  // The failed create did not disturb the queue.
  assert.equal(q.attributes().currentMessages, 2);

  // Default mode 0o600; with only one attribute given, the other is the system default
  // (the kernel's: the default sysctl, capped by the max one).
  const other = freshName(t, 'create-defaults');
  const d = closing(t, MessageQueue.create(other, { maxMessages: 3 }));
  assert.equal(fstatSync(d.fd).mode & 0o777, 0o600 & ~umask());
  assert.deepEqual(d.attributes(), { maxMessages: 3, messageSize: systemDefaults().msgsize, currentMessages: 0 });
  const other2 = freshName(t, 'create-defaults');
  const d2 = closing(t, MessageQueue.create(other2, { messageSize: 64 }));
  assert.deepEqual(d2.attributes(), { maxMessages: systemDefaults().maxmsg, messageSize: 64, currentMessages: 0 });
});

test('create with exclusive:false opens an existing queue (its attributes win) or creates a missing one', async (t) => {
  const name = freshName(t, 'nonexcl');
  const first = closing(t, MessageQueue.create(name, { maxMessages: 4, messageSize: 50 }));
  const second = closing(t, MessageQueue.create(name, { maxMessages: 2, messageSize: 200, exclusive: false }));
  assert.equal(second.created, false);
  assert.deepEqual([second.maxMessages, second.messageSize], [4, 50]);
  await first.send('from the first handle', 7);
  assert.deepEqual(text((await second.receive())), ['from the first handle', 7]);
  second.sendSync('and back');
  assert.deepEqual(text(first.receiveSync()), ['and back', 0]);

  const fresh = freshName(t, 'nonexcl-new');
  const third = closing(t, MessageQueue.create(fresh, { maxMessages: 2, messageSize: 16, exclusive: false }));
  assert.equal(third.created, true);
  assert.deepEqual(third.attributes(), { maxMessages: 2, messageSize: 16, currentMessages: 0 });
});

test('open: an existing queue (one a C program created); a missing one is NotFoundError', async (t) => {
  const name = freshName(t, 'open');
  assert.deepEqual(await peer('create', name, '3', '40'), ['created']);
  const q = closing(t, MessageQueue.open(name));
  assert.equal(q.created, false);
  assert.deepEqual(q.attributes(), { maxMessages: 3, messageSize: 40, currentMessages: 0 });
  assert.equal(fstatSync(q.fd).mode & 0o777, 0o600 & ~umask());
  q.sendSync('node to C', 2);
  assert.deepEqual(await peer('attr', name), ['maxmsg 3 msgsize 40 curmsgs 1']);

  const missing = freshName(t, 'missing');
  for (const call of [() => MessageQueue.open(missing), () => MessageQueue.open(missing, { access: 'read' })]) {
    throwsLike(call, NotFoundError, { code: 'ENOENT', errno: -ENOENT, syscall: 'mq_open', path: missing, message: /^ENOENT: .*mq_open '\/ipt-/ });
  }
});

test('unlink, static and instance; an unlinked queue lives on for its open handles', async (t) => {
  const a = freshName(t, 'unlink-static');
  MessageQueue.create(a, { maxMessages: 1, messageSize: 8 }).close();
  MessageQueue.open(a).close();
  MessageQueue.unlink(a);
  throwsLike(() => MessageQueue.open(a), NotFoundError, { code: 'ENOENT' });
  throwsLike(() => MessageQueue.unlink(a), NotFoundError, { code: 'ENOENT', errno: -ENOENT, syscall: 'mq_unlink', path: a });

  const b = freshName(t, 'unlink-instance');
  const q = closing(t, MessageQueue.create(b, { maxMessages: 2, messageSize: 32 }));
  const other = closing(t, MessageQueue.open(b));
  q.unlink();
  throwsLike(() => MessageQueue.open(b), NotFoundError, { code: 'ENOENT' });
  const r = await run(await peerPath, ['attr', b]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /mq_open: No such file or directory/);
  // Both handles still reach the same (nameless) queue.
  await q.send('still here');
  assert.deepEqual(text(await other.receive({ timeout: 5000 })), ['still here', 0]);
  // The name can be used again at once, for a new queue.
  const again = closing(t, MessageQueue.create(b, { maxMessages: 1, messageSize: 8 }));
  assert.equal(again.created, true);
  assert.equal(again.attributes().currentMessages, 0);
});

test('access: a read-only handle cannot send (EBADF, said clearly), a write-only one cannot receive', async (t) => {
  const name = freshName(t, 'access');
  const owner = closing(t, MessageQueue.create(name, { maxMessages: 4, messageSize: 64, access: 'write' }));
  const reader = closing(t, MessageQueue.open(name, { access: 'read' }));
  const writer = closing(t, MessageQueue.open(name, { access: 'write' }));

  const sendFields = { code: 'EBADF', errno: -EBADF, syscall: 'mq_send', path: name, message: /^EBADF: .*opened for receiving only.*mq_send '\/ipt-/ };
  throwsLike(() => reader.sendSync('x'), IpcError, sendFields);
  throwsLike(() => reader.trySend('x'), IpcError, sendFields);
  await rejectsLike(reader.send('x'), IpcError, sendFields);
  const recvFields = { code: 'EBADF', errno: -EBADF, syscall: 'mq_receive', path: name, message: /^EBADF: .*opened for sending only.*mq_receive '\/ipt-/ };
  throwsLike(() => writer.tryReceive(), IpcError, recvFields);
  throwsLike(() => writer.receiveSync({ timeout: 0 }), IpcError, recvFields);
  await rejectsLike(writer.receive(), IpcError, recvFields);
  await rejectsLike(owner.receive({ timeout: 10 }), IpcError, recvFields);
  assert.equal(reader.attributes().currentMessages, 0, 'nothing was sent by the failed calls');

  // Each handle still does what it may.
  await writer.send('via the writer', 1);
  owner.sendSync('via the creator', 2);
  assert.deepEqual(text(reader.receiveSync()), ['via the creator', 2]);
  assert.deepEqual(text(await reader.receive()), ['via the writer', 1]);
  assert.equal(reader.tryReceive(), undefined);

  throwsLike(() => MessageQueue.open(name, { access: 'rw' as never }), InvalidArgumentError, { message: /access must be 'read', 'write' or 'readwrite'/ });
});

test('bad names are rejected before any system call', () => {
  const base = `/ipt-${process.pid}-`;
  const tooLong = base + 'x'.repeat(256 - base.length + 1);
  const cases: [unknown, RegExp, string][] = [
    [`ipt-${process.pid}-noslash`, /must start with '\/'/, 'ERR_INVALID_ARG_VALUE'],
    [`${base}a/b`, /must not contain '\/'/, 'ERR_INVALID_ARG_VALUE'],
    ['/', /at least one character after '\/'/, 'ERR_INVALID_ARG_VALUE'],
    ['', /must start with '\/'/, 'ERR_INVALID_ARG_VALUE'],
    ['/.', /must not be '\/\.' or '\/\.\.'/, 'ERR_INVALID_ARG_VALUE'],
    [`${base}nul\0x`, /NUL/, 'ERR_INVALID_ARG_VALUE'],
    [tooLong, /too long: 256 bytes after '\/', at most 255/, 'ENAMETOOLONG'],
    ['/' + 'é'.repeat(128), /too long: 256 bytes/, 'ENAMETOOLONG'],
    [42, /must be a string, got 42/, 'ERR_INVALID_ARG_TYPE'],
  ];
  for (const [name, message, code] of cases) {
    for (const call of [
      () => MessageQueue.create(name as string, { maxMessages: 1, messageSize: 8 }),
      () => MessageQueue.create(name as string, { exclusive: false }),
      () => MessageQueue.open(name as string),
      () => MessageQueue.unlink(name as string),
    ]) {
      const err = throwsLike(call, InvalidArgumentError, { code, message });
      assert.equal(err.syscall, undefined, 'rejected before any system call');
    }
  }
  // Nothing was made under the longest name the kernel would have accepted.
  throwsLike(() => MessageQueue.open(tooLong.slice(0, -1)), NotFoundError);
});

test('the longest name (255 bytes after the slash) works for real, in Node and in C', async (t) => {
  const base = `/ipt-${process.pid}-long-`;
  const longest = base + 'x'.repeat(256 - base.length);
  assert.equal(Buffer.byteLength(longest), 256);
  names.add(longest);
  t.after(() => unlinkQuietly(longest));
  const q = closing(t, MessageQueue.create(longest, { maxMessages: 2, messageSize: 32 }));
  q.sendSync('long name', 4);
  assert.deepEqual((await peer('receive', longest, '1')).map(received).map((m) => [m.text, m.priority]), [['long name', 4]]);
  const again = closing(t, MessageQueue.open(longest));
  assert.equal(again.maxMessages, 2);
  throwsLike(() => MessageQueue.create(longest + 'x'), InvalidArgumentError, { code: 'ENAMETOOLONG' });
  // Multi-byte characters count in bytes: exactly 255 is fine.
  const utf8 = `/ipt-${process.pid}-` + 'é'.repeat(100);
  const utf8Longest = utf8 + 'y'.repeat(256 - Buffer.byteLength(utf8));
  assert.equal(Buffer.byteLength(utf8Longest), 256);
  names.add(utf8Longest);
  t.after(() => unlinkQuietly(utf8Longest));
  MessageQueue.create(utf8Longest, { maxMessages: 1, messageSize: 8 }).close();
  MessageQueue.unlink(utf8Longest);
});

test('permission: an unprivileged process cannot open a 0o600 queue (EACCES)', { ...T, skip: !isRoot && 'needs root to run a child as nobody' }, async (t) => {
  const secret = freshName(t, 'perm');
  const sq = closing(t, MessageQueue.create(secret, { maxMessages: 2, messageSize: 32, mode: 0o600 }));
  sq.sendSync('secret');
  const pub = freshName(t, 'perm-pub');
  const pq = closing(t, MessageQueue.create(pub, { maxMessages: 2, messageSize: 32, mode: 0o644 }));
  pq.sendSync('public', 9);

  const child = spawnNode(
    `import { posix } from 'interprocess';
     const attempt = (fn) => {
       try { return { ok: fn() }; }
       catch (e) { return { name: e.name, code: e.code, errno: e.errno, syscall: e.syscall, path: e.path }; }
     };
     const [secret, pub] = process.argv.slice(1);
     const receive = (name, access) => { const q = posix.MessageQueue.open(name, { access }); try { const m = q.receiveSync({ timeout: 5000 }); return [m.data.toString(), m.priority]; } finally { q.close(); } };
     console.log(JSON.stringify({
       uid: process.getuid(),
       rw: attempt(() => receive(secret, 'readwrite')),
       ro: attempt(() => receive(secret, 'read')),
       wo: attempt(() => posix.MessageQueue.open(secret, { access: 'write' }).close()),
       nonexcl: attempt(() => posix.MessageQueue.create(secret, { exclusive: false }).close()),
       unlink: attempt(() => posix.MessageQueue.unlink(secret)),
       pubRo: attempt(() => receive(pub, 'read')),
       pubRw: attempt(() => receive(pub, 'readwrite')),
     }));`,
    [secret, pub],
    { uid: NOBODY, gid: NOBODY },
  );
  const r = await collect(reaping(t, child));
  assert.equal(r.code, 0, r.stderr);
  const res = JSON.parse(r.stdout);
  assert.equal(res.uid, NOBODY);
  const denied = (syscall: string, path: string) => ({ name: PermissionError.name, code: 'EACCES', errno: -EACCES, syscall, path });
  assert.deepEqual(res.rw, denied('mq_open', secret));
  assert.deepEqual(res.ro, denied('mq_open', secret));
  assert.deepEqual(res.wo, denied('mq_open', secret));
  assert.deepEqual(res.nonexcl, denied('mq_open', secret));
  assert.deepEqual(res.unlink, denied('mq_unlink', secret));
  assert.deepEqual(res.pubRo, { ok: ['public', 9] }, 'a 0o644 queue can be read by others');
  assert.deepEqual(res.pubRw, denied('mq_open', pub));
  // Nothing was taken from the secret queue.
  assert.deepEqual(text(sq.receiveSync({ timeout: 0 })), ['secret', 0]);
});

// ------------------------------------------------------------ data and order

test('C mq_send with priorities -> Node receives highest first, FIFO within a priority', async (t) => {
  const q = freshQueue(t, 'c-to-node', { maxMessages: 8, messageSize: 64 });
  const sent = ['1:low-a', '5:high-a', '1:low-b', '0:zero', '5:high-b', '32767:max', '1:low-c'];
  const out = await peer('send', q.name, ...sent);
  assert.equal(out.length, sent.length);
  assert.equal(q.attributes().currentMessages, 7);
  const got: [string, number][] = [];
  for (let i = 0; i < 4; i++) got.push(text(await q.receive()));
  for (let i = 0; i < 3; i++) got.push(text(q.receiveSync()));
  assert.deepEqual(got, [['max', 32767], ['high-a', 5], ['high-b', 5], ['low-a', 1], ['low-b', 1], ['low-c', 1], ['zero', 0]]);
  assert.equal(q.tryReceive(), undefined);
  assert.equal(q.attributes().currentMessages, 0);
});

test('Node sends with priorities -> C mq_receive gets them highest first, FIFO within a priority', async (t) => {
  const q = freshQueue(t, 'node-to-c', { maxMessages: 8, messageSize: 64 });
  await q.send('b-2', 2);
  q.sendSync('a-1', 1);
  assert.equal(q.trySend('c-2', 2), true);
  await q.send('d-0');
  await q.send('e-9', 9);
  q.sendSync('f-1', 1);
  await q.send('g-max', 32767);
  const got = (await peer('receive', q.name, '7')).map(received).map((m) => `${m.priority} ${m.text}`);
  assert.deepEqual(got, ['32767 g-max', '9 e-9', '2 b-2', '2 c-2', '1 a-1', '1 f-1', '0 d-0']);
});

test('the bytes arrive exactly, both ways: NULs, high bytes, empty and full-size messages, any view', async (t) => {
  const q = freshQueue(t, 'bytes', { maxMessages: 8, messageSize: 16 });
  // C -> Node
  await peer('send-hex', q.name, '3', '00ff0a4100');
  await peer('send-hex', q.name, '2', '');
  await peer('send-hex', q.name, '1', 'e282ac' + '41'.repeat(13));
  const a = await q.receive();
  assert.ok(Buffer.isBuffer(a.data));
  assert.deepEqual([a.data.toString('hex'), a.priority], ['00ff0a4100', 3]);
  const b = q.receiveSync();
  assert.deepEqual([b.data.length, b.priority], [0, 2]);
  const c = q.tryReceive()!;
  assert.equal(c.data.length, 16);
  assert.equal(c.data.toString(), '€' + 'A'.repeat(13));

  // Node -> C, from every kind of payload.
  const bytes = Buffer.from([0, 1, 2, 0xfe, 0xff, 0]);
  const big = new Uint16Array([0x0102, 0xfffe]);
  const backing = new Uint8Array([9, 9, 0x10, 0x20, 0x30, 9]);
  await q.send(bytes);
  await q.send(big);
  await q.send(new DataView(backing.buffer, 2, 3));
  await q.send('');
  await q.send('x'.repeat(16));
  await q.send('héllo');
  const got = (await peer('receive', q.name, '6')).map(received).map((m) => [m.length, m.hex]);
  assert.deepEqual(got, [
    [6, '000102feff00'],
    [4, Buffer.from(big.buffer).toString('hex')],
    [3, '102030'],
    [0, ''],
    [16, '78'.repeat(16)],
    [6, Buffer.from('héllo').toString('hex')],
  ]);
  await rejectsLike(q.send(42 as never), InvalidArgumentError, { code: 'ERR_INVALID_ARG_TYPE', message: /message data must be/ });
});

// --------------------------------------------------------- waiting, no threads

test('150 pending receives cost no thread; another process sends 150, each receive gets exactly one, in call order', T, async (t) => {
  const q = freshQueue(t, 'many', { maxMessages: 8, messageSize: 32 });
  await fsp.stat(root); // the thread pool exists before counting
  const before = threads();
  const settled: (string | undefined)[] = [];
  const order: number[] = [];
  const pending = Array.from({ length: 150 }, (_, i) =>
    q.receive().then((m) => {
      settled[i] = m.data.toString();
      order.push(i);
      return m.data.toString();
    }),
  );
  await turnLoop();
  const during = threads();
  assert.ok(during - before < 10, `threads grew from ${before} to ${during} for 150 pending receives`);
  assert.equal(settled.length, 0, 'nothing arrived yet');

  // The thread pool is free: fs.promises calls complete at once.
  const t0 = performance.now();
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    Promise.all(Array.from({ length: 40 }, () => fsp.readFile('/proc/self/status'))),
    new Promise((_, reject) => (timer = setTimeout(() => reject(new Error('fs.promises calls stuck behind pending receives')), 10_000))),
  ]).finally(() => clearTimeout(timer));
  const fsMs = performance.now() - t0;
  assert.ok(fsMs < 5000, `40 fs.promises reads took ${fsMs.toFixed(0)} ms`);

  // The C peer blocks whenever the 8-slot queue is full; our receives drain it.
  assert.deepEqual(await peer('send-seq', q.name, '150'), ['sent 150']);
  const got = await Promise.all(pending);
  assert.deepEqual(got, Array.from({ length: 150 }, (_, i) => `msg-${i}`), 'receive i got message i: none lost, none twice');
  assert.deepEqual(order, Array.from({ length: 150 }, (_, i) => i), 'delivered in the order the receives were made');
  assert.equal(q.attributes().currentMessages, 0);
  assert.equal(q.tryReceive(), undefined);
});

test('send on a full queue waits (no thread) until another process receives; sends keep their order', T, async (t) => {
  const q = freshQueue(t, 'full', { maxMessages: 2, messageSize: 32 });
  const before = threads();
  const done: number[] = [];
  const sends = Array.from({ length: 30 }, (_, i) => q.send(`s-${i}`).then(() => done.push(i)));
  await turnLoop();
  assert.deepEqual(done, [0, 1], 'two fitted, the rest wait');
  assert.equal(q.trySend('intruder'), false, 'trySend does not jump the queue of waiting sends');
  assert.equal(q.attributes().currentMessages, 2);
  assert.ok(threads() - before < 5, 'no thread per waiting send');

  const reader = await peerSpawn(t, 'receive', q.name, '30');
  await Promise.all(sends);
  const r = await reader.result;
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(
    reader.lines.map(received).map((m) => m.text),
    Array.from({ length: 30 }, (_, i) => `s-${i}`),
  );
  assert.deepEqual(done, Array.from({ length: 30 }, (_, i) => i));
  // A send that waited goes out (with its priority) as soon as one message is taken.
  q.sendSync('p0-a');
  q.sendSync('p0-b');
  let lateDone = false;
  const late = q.send('p5', 5).then(() => (lateDone = true));
  await turnLoop();
  assert.equal(lateDone, false);
  assert.deepEqual((await peer('receive', q.name, '1')).map(received).map((m) => m.text), ['p0-a']);
  await late;
  assert.deepEqual((await peer('receive', q.name, '2')).map(received).map((m) => [m.text, m.priority]), [['p5', 5], ['p0-b', 0]]);
});

// ---------------------------------------------------------- timeouts, aborts

test('receive/send { timeout } reject with TimeoutError (ETIMEDOUT) after about the timeout', T, async (t) => {
  const q = freshQueue(t, 'timeout', { maxMessages: 1, messageSize: 16 });
  let t0 = performance.now();
  await rejectsLike(q.receive({ timeout: 80 }), TimeoutError, {
    code: 'ETIMEDOUT', errno: -ETIMEDOUT, syscall: 'mq_receive', path: q.name, message: /^ETIMEDOUT: timed out, mq_receive '\/ipt-/,
  });
  let waited = performance.now() - t0;
  assert.ok(waited >= 60 && waited < 5000, `receive gave up after ${waited.toFixed(1)} ms`);

  await q.send('fills it');
  t0 = performance.now();
  await rejectsLike(q.send('no room', 0, { timeout: 80 }), TimeoutError, { code: 'ETIMEDOUT', errno: -ETIMEDOUT, syscall: 'mq_send', path: q.name });
  waited = performance.now() - t0;
  assert.ok(waited >= 60 && waited < 5000, `send gave up after ${waited.toFixed(1)} ms`);
  assert.deepEqual(text(q.receiveSync()), ['fills it', 0], 'the timed-out send sent nothing');

  // timeout 0 tries once.
  await rejectsLike(q.receive({ timeout: 0 }), TimeoutError, { code: 'ETIMEDOUT' });
  await q.send('here', 1, { timeout: 0 });
  assert.deepEqual(text(await q.receive({ timeout: 0 })), ['here', 1]);
  // A timeout that does not run out changes nothing.
  const p = q.receive({ timeout: 20_000 });
  await peer('send', q.name, '4:in time');
  assert.deepEqual(text(await p), ['in time', 4]);
  // Nor does one past setTimeout's range (2^31-1 ms), which a bare timer would fire after 1 ms.
  for (const timeout of [2 ** 32, Infinity]) {
    let settled = false;
    const long = q.receive({ timeout }).finally(() => (settled = true));
    await new Promise((r) => setTimeout(r, 30)); // far longer than the 1 ms such a timer would take
    assert.equal(settled, false, `timeout ${timeout} ran out early`);
    await peer('send', q.name, '5:late');
    assert.deepEqual(text(await long), ['late', 5]);
  }

  for (const timeout of [-1, NaN, '10']) {
    await rejectsLike(q.receive({ timeout } as never), InvalidArgumentError, { message: /timeout must be a non-negative number/ });
    await rejectsLike(q.send('x', 0, { timeout } as never), InvalidArgumentError, { message: /timeout must be a non-negative number/ });
  }
  await rejectsLike(q.receive({ signal: {} } as never), InvalidArgumentError, { message: /signal must be an AbortSignal/ });
});

test('{ signal }: already aborted rejects at once and takes/sends nothing; an abort mid-wait rejects promptly', T, async (t) => {
  const q = freshQueue(t, 'abort', { maxMessages: 1, messageSize: 16 });
  const isAbort = (reason: unknown) => (e: AbortError) => {
    assert.equal(e.name, 'AbortError');
    assert.equal(e.code, 'ABORT_ERR');
    assert.equal(e.cause, reason);
  };
  const reason = new Error('stop');
  const aborted = AbortSignal.abort(reason);
  // Already aborted: rejects even though the call could have completed at once.
  isAbort(reason)(await rejectsLike(q.send('not sent', 0, { signal: aborted }), AbortError));
  assert.equal(q.attributes().currentMessages, 0, 'an aborted send sent nothing');
  await peer('send', q.name, '3:kept');
  isAbort(reason)(await rejectsLike(q.receive({ signal: aborted }), AbortError));
  assert.equal(q.attributes().currentMessages, 1, 'an aborted receive took nothing');

  // Mid-wait: a send on the full queue, then a receive on an empty one.
  const ac = new AbortController();
  const p = q.send('waits', 0, { signal: ac.signal });
  await turnLoop();
  let t0 = performance.now();
  ac.abort('send abort');
  isAbort('send abort')(await rejectsLike(p, AbortError));
  assert.ok(performance.now() - t0 < 1000);
  assert.deepEqual(text(q.receiveSync()), ['kept', 3]);
  const ac2 = new AbortController();
  const r = q.receive({ signal: ac2.signal, timeout: 20_000 });
  await turnLoop();
  t0 = performance.now();
  ac2.abort();
  const e = await rejectsLike(r, AbortError);
  assert.ok(e.cause instanceof DOMException && e.cause.name === 'AbortError', 'the default reason is the cause');
  assert.ok(performance.now() - t0 < 1000);
});

test('a receive that timed out or was aborted takes nothing: the next message stays for the next receive', T, async (t) => {
  const q = freshQueue(t, 'nothing-taken', { maxMessages: 4, messageSize: 32 });
  const other = closing(t, MessageQueue.open(q.name));
  await rejectsLike(q.receive({ timeout: 30 }), TimeoutError);
  const ac = new AbortController();
  const aborted = q.receive({ signal: ac.signal });
  await turnLoop();
  ac.abort();
  await rejectsLike(aborted, AbortError);

  await peer('send', q.name, '1:after the timeout', '1:after the abort');
  await turnLoop(); // a poller left running would have taken them by now
  assert.equal(other.attributes().currentMessages, 2);
  assert.deepEqual(text(await q.receive({ timeout: 5000 })), ['after the timeout', 1]);
  // And another process sees the rest.
  assert.deepEqual((await peer('receive', q.name, '1')).map(received).map((m) => m.text), ['after the abort']);

  // Same for a send that timed out on a full queue: it never sends later.
  for (let i = 0; i < 4; i++) q.sendSync(`fill-${i}`);
  await rejectsLike(q.send('late', 0, { timeout: 30 }), TimeoutError);
  assert.deepEqual((await peer('receive', q.name, '4')).map(received).map((m) => m.text), ['fill-0', 'fill-1', 'fill-2', 'fill-3']);
  await turnLoop();
  assert.equal(other.attributes().currentMessages, 0, 'the timed-out send did not go out when room appeared');
});

test('receiveSync/sendSync and tryReceive/trySend in this process: immediate results and timeouts', (t) => {
  const q = freshQueue(t, 'sync', { maxMessages: 2, messageSize: 16 });
  assert.equal(q.tryReceive(), undefined, 'empty');
  let t0 = performance.now();
  throwsLike(() => q.receiveSync({ timeout: 60 }), TimeoutError, { code: 'ETIMEDOUT', errno: -ETIMEDOUT, syscall: 'mq_receive', path: q.name });
  assert.ok(performance.now() - t0 >= 55);
  throwsLike(() => q.receiveSync({ timeout: 0 }), TimeoutError, { code: 'ETIMEDOUT' });
  assert.equal(q.trySend('a', 1), true);
  q.sendSync('b', 2, { timeout: 0 });
  assert.equal(q.trySend('c'), false, 'full');
  t0 = performance.now();
  throwsLike(() => q.sendSync('c', 0, { timeout: 60 }), TimeoutError, { code: 'ETIMEDOUT', syscall: 'mq_send', path: q.name });
  assert.ok(performance.now() - t0 >= 55);
  assert.deepEqual(text(q.receiveSync({ timeout: 1000 })), ['b', 2]);
  assert.deepEqual(text(q.tryReceive()!), ['a', 1]);
  assert.equal(q.tryReceive(), undefined);
  throwsLike(() => q.receiveSync({ timeout: -5 }), InvalidArgumentError, { message: /timeout must be/ });
});

test('receiveSync/sendSync while async receives/sends of the same handle wait: EBUSY, taking/sending nothing, instead of jumping ahead of them', T, async (t) => {
  const q = freshQueue(t, 'syncbusy', { maxMessages: 1, messageSize: 16 });
  const other = closing(t, MessageQueue.open(q.name));

  // A message arrives for a waiting receive; its poller has not run yet.
  const waiting = q.receive({ timeout: 10_000 });
  assert.equal(other.trySend('first'), true);
  throwsLike(() => q.receiveSync({ timeout: 0 }), InvalidArgumentError, { code: 'EBUSY', errno: -constants.errno.EBUSY, syscall: 'mq_receive', path: q.name, message: /asynchronous receives of this handle are waiting/ });
  assert.deepEqual(text(await waiting), ['first', 0], 'the earlier receive got the message');
  assert.equal(other.trySend('second'), true);
  assert.deepEqual(text(q.receiveSync({ timeout: 1000 })), ['second', 0], 'with none waiting, receiveSync works');

  // Room opens for a waiting send; its poller has not run yet.
  assert.equal(q.trySend('a'), true);
  const sending = q.send('b');
  assert.deepEqual(text(other.tryReceive()!), ['a', 0]);
  throwsLike(() => q.sendSync('c', 9, { timeout: 0 }), InvalidArgumentError, { code: 'EBUSY', syscall: 'mq_send', path: q.name, message: /asynchronous sends of this handle are waiting/ });
  assert.equal(q.attributes().currentMessages, 0, 'the refused sendSync sent nothing');
  await sending;
  assert.deepEqual(text(other.tryReceive()!), ['b', 0], 'the earlier send went first');
  q.sendSync('c', 9, { timeout: 0 });
  assert.deepEqual(text(other.tryReceive()!), ['c', 9], 'with none waiting, sendSync works');
});

test('receiveSync/sendSync block a child process, with and without timeout, until a C peer acts; signals do not break the wait', T, async (t) => {
  const q = freshQueue(t, 'sync-child', { maxMessages: 2, messageSize: 32 });
  const child = new Lines(
    reaping(t, spawnNode(
      `import { posix } from 'interprocess';
       import { writeSync } from 'node:fs';
       let signals = 0;
       process.on('SIGUSR2', () => signals++);
       const say = (s) => writeSync(1, s + '\\n');
       const q = posix.MessageQueue.open(process.argv[1]);
       say('phase receive');
       let m = q.receiveSync();
       say('got ' + m.data + ' ' + m.priority);
       say('phase receive-timeout');
       m = q.receiveSync({ timeout: 60000 });
       say('got ' + m.data + ' ' + m.priority);
       q.sendSync('fill-1');
       q.sendSync('fill-2', 0, { timeout: 0 });
       say('phase send');
       q.sendSync('third');
       say('sent third');
       say('phase send-timeout');
       q.sendSync('fourth', 0, { timeout: 60000 });
       say('sent fourth');
       q.close();
       // The handlers run once the event loop turns again.
       const report = () => (signals >= 4 ? say('signals ' + signals) : setTimeout(report, 5));
       report();`,
      [q.name],
    )),
  );
  // Each phase: the child blocks in poll(); a signal interrupts it (its
  // handler runs, the wait goes on); only then does the peer act.
  const SIGUSR2 = constants.signals.SIGUSR2;
  const blockedAndSignalled = async (phase: string): Promise<void> => {
    await child.line(new RegExp(`^phase ${phase}$`));
    const pid = child.child.pid!;
    await until(`the child blocks (${phase})`, () => inPoll(pid) || child.child.exitCode !== null);
    process.kill(pid, 'SIGUSR2');
    await until(`the child takes the signal (${phase})`, () => !sigPending(pid, SIGUSR2) || child.child.exitCode !== null);
    await until(`the child blocks again (${phase})`, () => inPoll(pid) || child.child.exitCode !== null);
    if (child.child.exitCode !== null) assert.fail(`the child died in ${phase}: ${(await child.result).stderr}`);
    assert.equal(child.lines.at(-1), `phase ${phase}`, 'still waiting');
  };
  await blockedAndSignalled('receive');
  await peer('send', q.name, '6:first');
  assert.equal(await child.line(/^got first/), 'got first 6');
  await blockedAndSignalled('receive-timeout');
  await peer('send', q.name, '2:second');
  assert.equal(await child.line(/^got second/), 'got second 2');
  await blockedAndSignalled('send');
  assert.deepEqual((await peer('receive', q.name, '1')).map(received).map((m) => m.text), ['fill-1']);
  await child.line(/^sent third$/);
  await blockedAndSignalled('send-timeout');
  // fill-2 and third are queued; the peer's third receive waits for "fourth".
  assert.deepEqual((await peer('receive', q.name, '3')).map(received).map((m) => m.text), ['fill-2', 'third', 'fourth']);
  const r = await exitsWithin(child, 15_000);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^sent fourth\nsignals 4$/m);
});

// ---------------------------------------------------- iteration and close()

test('for await (const m of q) yields in queue order and ends cleanly on close()', T, async (t) => {
  const q = freshQueue(t, 'iterate', { maxMessages: 8, messageSize: 32 });
  await peer('send', q.name, '1:one', '3:three', '2:two');
  const got: [string, number][] = [];
  const loop = (async () => {
    for await (const m of q) got.push(text(m));
    return 'ended';
  })();
  await until('three messages arrive', () => got.length === 3);
  // Now the loop waits: each message is taken as it comes.
  await peer('send', q.name, '0:four');
  await until('four messages arrive', () => got.length === 4);
  await peer('send', q.name, '9:five');
  await until('five messages arrive', () => got.length === 5);
  q.close();
  assert.equal(await loop, 'ended');
  assert.deepEqual(got, [['three', 3], ['two', 2], ['one', 1], ['four', 0], ['five', 9]]);
});

test('q.messages({ signal }) ends cleanly on abort, taking nothing more; break leaves the rest queued', T, async (t) => {
  const q = freshQueue(t, 'iterate-abort', { maxMessages: 8, messageSize: 32 });
  const ac = new AbortController();
  const got: string[] = [];
  const loop = (async () => {
    for await (const m of q.messages({ signal: ac.signal })) got.push(m.data.toString());
    return 'ended';
  })();
  await peer('send', q.name, '0:a', '0:b');
  await until('two messages arrive', () => got.length === 2);
  ac.abort();
  assert.equal(await loop, 'ended');
  await peer('send', q.name, '0:c', '0:d', '0:e');
  await turnLoop();
  assert.equal(q.attributes().currentMessages, 3, 'the ended loop took nothing');
  // An already aborted signal yields nothing.
  for await (const m of q.messages({ signal: AbortSignal.abort() })) assert.fail(`yielded ${m.data}`);
  // break after one: the others stay.
  for await (const m of q) {
    assert.equal(m.data.toString(), 'c');
    break;
  }
  await turnLoop();
  assert.equal(q.attributes().currentMessages, 2);
  assert.deepEqual(got, ['a', 'b']);
  assert.equal(q.closed, false);
});

test('close() rejects pending receives and sends with EBADF, having taken/sent nothing; later calls fail with EBADF', T, async (t) => {
  const name = freshName(t, 'close');
  const other = closing(t, MessageQueue.create(name, { maxMessages: 2, messageSize: 16 }));
  const closed = (path: string) => ({ code: 'EBADF', errno: -EBADF, path, message: /^EBADF: message queue handle is closed/ });

  // Receives pending on an empty queue.
  const r = MessageQueue.open(name);
  t.after(() => r.close());
  const receives = [r.receive(), r.receive({ timeout: 20_000 }), r.receive({ signal: new AbortController().signal })];
  const iterated: string[] = [];
  const loop = (async () => {
    for await (const m of r) iterated.push(m.data.toString());
    return 'ended';
  })();
  await turnLoop();
  r.close();
  for (const p of receives) await rejectsLike(p, IpcError, closed(name));
  assert.equal(await loop, 'ended');
  other.sendSync('x');
  other.sendSync('y');
  await turnLoop();
  assert.equal(other.attributes().currentMessages, 2, 'the closed handle took nothing');
  assert.deepEqual(iterated, []);

  // Sends pending on the full queue.
  const s = MessageQueue.open(name, { access: 'write' });
  t.after(() => s.close());
  const sends = [s.send('s1'), s.send('s2', 1, { timeout: 20_000 }), s.send('s3', 2, { signal: new AbortController().signal })];
  await turnLoop();
  s.close();
  for (const p of sends) await rejectsLike(p, IpcError, closed(name));
  assert.deepEqual([text(other.receiveSync()), text(other.receiveSync())], [['x', 0], ['y', 0]]);
  await turnLoop();
  assert.equal(other.tryReceive(), undefined, 'the closed handle sent nothing when room appeared');

  // Afterwards: closed, fd -1, every call fails with EBADF; close() is idempotent.
  assert.equal(s.closed, true);
  assert.equal(s.fd, -1);
  s.close();
  s[Symbol.dispose]();
  throwsLike(() => s.sendSync('x'), IpcError, closed(name));
  throwsLike(() => s.trySend('x'), IpcError, closed(name));
  throwsLike(() => s.receiveSync(), IpcError, closed(name));
  throwsLike(() => s.tryReceive(), IpcError, closed(name));
  throwsLike(() => s.attributes(), IpcError, closed(name));
  await rejectsLike(s.send('x'), IpcError, closed(name));
  await rejectsLike(s.receive(), IpcError, closed(name));
  assert.deepEqual(await s.messages().next(), { value: undefined, done: true });
  // The name and the other handle are unaffected.
  other.sendSync('z');
  assert.deepEqual(text(closing(t, MessageQueue.open(name)).receiveSync()), ['z', 0]);
});

test('using: the handle is closed at the end of the block', (t) => {
  const name = freshName(t, 'dispose');
  let outside: Queue;
  {
    using q = MessageQueue.create(name, { maxMessages: 1, messageSize: 8 });
    outside = q;
    assert.equal(q.closed, false);
  }
  assert.equal(outside.closed, true);
});

// ---------------------------------------------------------- bad input, limits

test('a message larger than messageSize is TooLargeError (EMSGSIZE) before any system call; the queue still works', async (t) => {
  const q = freshQueue(t, 'too-large', { maxMessages: 2, messageSize: 10 });
  const fields = { code: 'EMSGSIZE', errno: -EMSGSIZE, syscall: 'mq_send', path: q.name, message: /message of 11 bytes exceeds the queue's message size \(10\)/ };
  throwsLike(() => q.sendSync('x'.repeat(11)), TooLargeError, fields);
  throwsLike(() => q.trySend(Buffer.alloc(11)), TooLargeError, fields);
  await rejectsLike(q.send(new Uint8Array(11)), TooLargeError, fields);
  // Before any system call: even a read-only handle (where mq_send fails with EBADF) says EMSGSIZE.
  const ro = closing(t, MessageQueue.open(q.name, { access: 'read' }));
  throwsLike(() => ro.sendSync('x'.repeat(11)), TooLargeError, fields);
  assert.equal(q.attributes().currentMessages, 0);
  await q.send('x'.repeat(10), 1);
  assert.deepEqual(text(await ro.receive()), ['x'.repeat(10), 1]);
});

test('priorities outside 0..MQ_PRIO_MAX-1 or not integers are InvalidArgumentError; 32767 works', async (t) => {
  const q = freshQueue(t, 'prio', { maxMessages: 2, messageSize: 16 });
  for (const prio of [-1, 1.5, 32768, NaN, Infinity, '1']) {
    const fields = { code: 'ERR_OUT_OF_RANGE', message: /priority must be an integer from 0 to 32767/ };
    throwsLike(() => q.sendSync('x', prio as number), InvalidArgumentError, fields);
    throwsLike(() => q.trySend('x', prio as number), InvalidArgumentError, fields);
    await rejectsLike(q.send('x', prio as number), InvalidArgumentError, fields);
  }
  assert.equal(q.attributes().currentMessages, 0);
  await q.send('top', 32767);
  assert.deepEqual(text(q.receiveSync()), ['top', 32767]);
});

test('maxMessages / messageSize: 0, negative, fractional are rejected before mq_open; beyond the system limits is a clear typed error', (t) => {
  const name = freshName(t, 'limits');
  for (const [key, value] of [['maxMessages', 0], ['maxMessages', -1], ['maxMessages', 1.5], ['messageSize', 0], ['messageSize', -8], ['messageSize', '8'], ['maxMessages', 2 ** 31]] as const) {
    const err = throwsLike(() => MessageQueue.create(name, { [key]: value }), InvalidArgumentError, { message: new RegExp(`^${key} must be an integer from 1 to`) });
    assert.equal(err.syscall, undefined);
    throwsLike(() => MessageQueue.open(name), NotFoundError, {});
  }

  const msgMax = procNumber('/proc/sys/fs/mqueue/msg_max');
  const msgsizeMax = procNumber('/proc/sys/fs/mqueue/msgsize_max');
  // The limits themselves are accepted.
  const atMax = MessageQueue.create(name, { maxMessages: msgMax, messageSize: 16 });
  assert.equal(atMax.attributes().maxMessages, msgMax);
  atMax.close();
  MessageQueue.unlink(name);
  const atSize = MessageQueue.create(name, { maxMessages: 1, messageSize: msgsizeMax });
  assert.equal(atSize.attributes().messageSize, msgsizeMax);
  atSize.close();
  MessageQueue.unlink(name);

  // A process with CAP_SYS_RESOURCE (in the initial user namespace) may go past
  // msg_max / msgsize_max, up to the kernel's hard limits; any other gets a
  // clear EINVAL. Ask the kernel which this process is.
  const HARD_MSGMAX = 65536;
  const HARD_MSGSIZEMAX = 16 * 1024 * 1024;
  const beyond = (options: { maxMessages: number; messageSize: number }, message: RegExp) =>
    throwsLike(() => MessageQueue.create(name, options), InvalidArgumentError, { code: 'EINVAL', errno: -EINVAL, syscall: 'mq_open', path: name, message });
  const overMax = { maxMessages: msgMax + 1, messageSize: 16 };
  let capable: Queue | undefined;
  try {
    capable = MessageQueue.create(name, overMax);
  } catch (err) {
    if (!(err instanceof InvalidArgumentError)) throw err;
  }
  if (capable) {
    assert.equal(capable.attributes().maxMessages, msgMax + 1);
    capable.close();
    MessageQueue.unlink(name);
  } else {
    beyond(overMax, new RegExp(`^EINVAL: maxMessages ${msgMax + 1} exceeds /proc/sys/fs/mqueue/msg_max \\(${msgMax}\\) \\(only a process with CAP_SYS_RESOURCE may go past it, up to the hard limits\\), mq_open '/ipt-`));
    beyond({ maxMessages: 1, messageSize: msgsizeMax + 1 }, new RegExp(`^EINVAL: messageSize ${msgsizeMax + 1} exceeds /proc/sys/fs/mqueue/msgsize_max \\(${msgsizeMax}\\)`));
    beyond({ maxMessages: msgMax + 1, messageSize: msgsizeMax + 1 }, /^EINVAL: maxMessages \d+ exceeds [^;]*msg_max[^;]*; messageSize \d+ exceeds .*msgsize_max/);
  }
  // The hard limits hold for everyone.
  beyond({ maxMessages: HARD_MSGMAX + 1, messageSize: 1 }, /^EINVAL: maxMessages 65537 exceeds the kernel's hard limit \(65536\), mq_open/);
  beyond({ maxMessages: 1, messageSize: HARD_MSGSIZEMAX + 1 }, /^EINVAL: messageSize 16777217 exceeds the kernel's hard limit \(16777216\), mq_open/);
  throwsLike(() => MessageQueue.open(name), NotFoundError, {});
});

test('a queue past RLIMIT_MSGQUEUE is TooLargeError (EMFILE) saying so, not "too many open files"', T, async (t) => {
  const name = freshName(t, 'rlimit');
  // bash's ulimit -q sets RLIMIT_MSGQUEUE for the child only. Both queues are
  // past 4096 bytes on their own, whatever other queues this user has.
  const child = spawn('bash', ['-c', 'ulimit -q 4096 && exec "$0" "$@"', process.execPath, '--input-type=module', '-e', `
    import { posix } from 'interprocess';
    const name = process.argv[1];
    const attempt = (options) => {
      try { posix.MessageQueue.create(name, options).close(); posix.MessageQueue.unlink(name); return 'created'; }
      catch (e) { return { name: e.name, code: e.code, errno: e.errno, syscall: e.syscall, path: e.path, message: e.message }; }
    };
    console.log(JSON.stringify({ big: attempt({ maxMessages: 4, messageSize: 2048 }), defaults: attempt({}) }));
  `, '--', name], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  const r = await collect(reaping(t, child));
  assert.equal(r.code, 0, r.stderr);
  const res = JSON.parse(r.stdout);
  for (const e of [res.big, res.defaults]) {
    assert.deepEqual({ ...e, message: undefined }, { name: 'TooLargeError', code: 'EMFILE', errno: -EMFILE, syscall: 'mq_open', path: name, message: undefined });
    assert.match(e.message, /^EMFILE: a queue of \d+ messages of \d+ bytes would take this user's message queues past RLIMIT_MSGQUEUE \(4096 bytes\), mq_open '\/ipt-/);
  }
  assert.match(res.big.message, / 4 messages of 2048 bytes /);
  // Without attributes the message names the kernel's defaults.
  const defaults = systemDefaults();
  assert.match(res.defaults.message, new RegExp(` ${defaults.maxmsg} messages of ${defaults.msgsize} bytes `));
  throwsLike(() => MessageQueue.open(name), NotFoundError, {});
});

// ------------------------------------------------------ the process can exit

test('a child with a pending receive exits by itself once it is satisfied, aborted or its queue closed', T, async (t) => {
  const q = freshQueue(t, 'exit', { maxMessages: 1, messageSize: 32 });
  const script = (how: string) => `
    import { posix } from 'interprocess';
    import { writeSync } from 'node:fs';
    const say = (s) => writeSync(1, s + '\\n');
    const q = posix.MessageQueue.open(process.argv[1]);
    const ac = new AbortController();
    ${how === 'abort' ? "process.on('SIGUSR2', () => ac.abort());" : how === 'close' ? "process.on('SIGUSR2', () => q.close());" : ''}
    const p = q.receive(${how === 'abort' ? '{ signal: ac.signal }' : ''});
    p.then((m) => say('got ' + m.data), (e) => say('rejected ' + e.name + ' ' + e.code));
    say('waiting');`;
  const children = Object.fromEntries(
    ['satisfied', 'abort', 'close'].map((how) => [how, new Lines(reaping(t, spawnNode(script(how), [q.name])))]),
  ) as Record<string, Lines>;
  for (const c of Object.values(children)) await c.line(/^waiting$/);
  // A pending receive keeps its process alive, like a pending socket read.
  for (const c of Object.values(children)) await until('the child is idle in its event loop', () => /epoll/.test(wchan(c.child.pid!)) || c.child.exitCode !== null);
  for (const c of Object.values(children)) assert.equal(c.child.exitCode, null);

  // Abort one, close the other; only then send, or either could take the message first.
  children.abort!.child.kill('SIGUSR2');
  children.close!.child.kill('SIGUSR2');
  const [ab, cl] = await Promise.all([children.abort!, children.close!].map((c) => exitsWithin(c, 15_000)));
  assert.equal(children.satisfied!.child.exitCode, null);
  await q.send('hello');
  const sat = await exitsWithin(children.satisfied!, 15_000);
  assert.deepEqual([sat!.code, sat!.stdout], [0, 'waiting\ngot hello\n']);
  assert.deepEqual([ab!.code, ab!.stdout], [0, 'waiting\nrejected AbortError ABORT_ERR\n']);
  assert.deepEqual([cl!.code, cl!.stdout], [0, 'waiting\nrejected IpcError EBADF\n']);
  assert.equal(q.attributes().currentMessages, 0, 'exactly one child took the message');
});

test('a child with a pending send on a full queue exits by itself once another process receives', T, async (t) => {
  const q = freshQueue(t, 'exit-send', { maxMessages: 1, messageSize: 32 });
  q.sendSync('first');
  const child = new Lines(reaping(t, spawnNode(
    `import { posix } from 'interprocess';
     import { writeSync } from 'node:fs';
     const q = posix.MessageQueue.open(process.argv[1], { access: 'write' });
     q.send('from the child', 3).then(() => writeSync(1, 'sent\\n'));
     writeSync(1, 'waiting\\n');`,
    [q.name],
  )));
  await child.line(/^waiting$/);
  const out = await peer('receive', q.name, '2');
  assert.deepEqual(out.map(received).map((m) => [m.text, m.priority]), [['first', 0], ['from the child', 3]]);
  const r = await exitsWithin(child, 15_000);
  assert.deepEqual([r.code, r.stdout], [0, 'waiting\nsent\n']);
});
