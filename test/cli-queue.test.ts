// `interprocess queue ...` and `interprocess channel ...`, driven as a shell script would:
// the built CLI spawned, its stdout bytes, stderr and exit code read. Real queues, real
// channels, a real C program on the other end of a System V queue.
import { describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { Channel, posix, sysv } from 'interprocess';
import { compilePeer, finished, killOnExit, root, uniqueName, until, withTimeout, type RunResult } from './helpers.js';

const cli = join(root, 'dist', 'cli', 'main.js');

interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: string;
  /** Wall time from spawn to exit, in ms. */
  ms: number;
}

/** Starts the CLI; stdin is a pipe (ended at once unless `keepStdin`), stdout and stderr are collected. */
function start(t: TestContext, args: string[], input?: string | Buffer): { child: ChildProcess; done: Promise<CliResult> } {
  const began = performance.now();
  const child = killOnExit(t, spawn(process.execPath, [cli, ...args], { stdio: ['pipe', 'pipe', 'pipe'] }));
  child.stdin!.on('error', () => {}); // a command that exits before reading stdin
  child.stdin!.end(input);
  const out: Buffer[] = [];
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => out.push(d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const done = new Promise<CliResult>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout: Buffer.concat(out), stderr, ms: performance.now() - began }));
  });
  return { child, done: withTimeout(done, 15_000, `interprocess ${args.join(' ')} exits`, () => child.kill('SIGKILL')) };
}

function ipx(t: TestContext, args: string[], input?: string | Buffer): Promise<CliResult> {
  return start(t, args, input).done;
}

/** Runs the command and expects success; returns stdout as text. */
async function ok(t: TestContext, args: string[], input?: string | Buffer): Promise<string> {
  const r = await ipx(t, args, input);
  assert.equal(r.code, 0, `interprocess ${args.join(' ')}: exit ${r.code}, stderr: ${r.stderr}`);
  return r.stdout.toString();
}

/** A failure: this exit code, a first stderr line matching `pattern`, no stack trace. */
function failed(r: CliResult, code: number, pattern: RegExp, what: string): void {
  assert.equal(r.code, code, `${what}: exit ${r.code}, stderr: ${r.stderr}`);
  const first = r.stderr.split('\n')[0]!;
  assert.match(first, /^(interprocess|error): /, `${what}: ${r.stderr}`);
  assert.match(first, pattern, what);
  assert.doesNotMatch(r.stderr, /^\s+at .*:\d+/m, `${what}: stack trace on stderr`);
  if (first.startsWith('interprocess:')) assert.equal(r.stderr, `${first}\n`, `${what}: one line on stderr`);
}

/** A System V key nobody else uses (checked: the queue is created --exclusive). */
const freshKey = (): string => `0x${randomInt(0x10000000, 0x7fffffff).toString(16)}`;

/** Creates a System V queue by key through the CLI; removed after the test, even if it fails. */
async function sysvQueue(t: TestContext, extra: string[] = []): Promise<{ key: string; id: number }> {
  const key = freshKey();
  t.after(() => {
    try {
      sysv.MessageQueue.open(Number(key)).remove();
    } catch { /* never created, or removed by the test */ }
  });
  const out = await ok(t, ['queue', 'create', key, '--exclusive', ...extra]);
  const m = /^Message queue id: (\d+)\n$/.exec(out);
  assert.ok(m, `create printed ${JSON.stringify(out)}`);
  return { key, id: Number(m[1]) };
}

/** A System V queue made with the library (for tests whose subject is not `create`), removed after. */
function sysvFixture(t: TestContext): { key: string; q: sysv.MessageQueue } {
  const key = freshKey();
  const q = sysv.MessageQueue.create({ key: Number(key) });
  t.after(() => {
    try {
      q.remove();
    } catch { /* removed by the test */ }
    q.close();
  });
  return { key, q };
}

function posixFixture(t: TestContext, tag: string): { name: string; q: posix.MessageQueue } {
  const name = posixQueueName(t, tag);
  const q = posix.MessageQueue.create(name, { maxMessages: 8, messageSize: 256 });
  t.after(() => q.close());
  return { name, q };
}

function posixQueueName(t: TestContext, tag: string): string {
  const name = uniqueName(tag);
  t.after(() => {
    try {
      posix.MessageQueue.unlink(name);
    } catch { /* not created */ }
  });
  return name;
}

function channelName(t: TestContext, tag: string): string {
  const name = uniqueName(tag);
  t.after(() => {
    try {
      Channel.unlink(name);
    } catch { /* not created */ }
  });
  return name;
}

async function statJson(t: TestContext, verb: 'queue' | 'channel', target: string): Promise<Record<string, unknown>> {
  return JSON.parse(await ok(t, [verb, 'stat', target, '--json'])) as Record<string, unknown>;
}

const SYS_MSGRCV: Record<string, number> = { x64: 70, arm64: 188 };

/** Whether a thread of `pid` is blocked in msgrcv on queue `qid` (from /proc/PID/task/TID/syscall). */
function inMsgrcv(pid: number, qid: number): boolean {
  const nr = SYS_MSGRCV[process.arch];
  if (nr === undefined) return true; // unknown syscall number: the test then only relies on timing
  try {
    return readdirSync(`/proc/${pid}/task`).some((tid) => {
      try {
        const [got, arg] = readFileSync(`/proc/${pid}/task/${tid}/syscall`, 'latin1').split(' ');
        return Number(got) === nr && Number(arg) === qid;
      } catch {
        return false;
      }
    });
  } catch {
    return false;
  }
}

/** Whether process `pid` holds POSIX queue `name` open (its descriptor links to the name). */
function holdsQueue(pid: number, name: string): boolean {
  try {
    return readdirSync(`/proc/${pid}/fd`).some((fd) => {
      try {
        return readlinkSync(`/proc/${pid}/fd/${fd}`) === name;
      } catch {
        return false;
      }
    });
  } catch {
    return false;
  }
}

function readdirSafe(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

const BINARY = Buffer.from([0x68, 0x69, 0x00, 0x0a, 0xff, 0xfe, 0x0a, 0x00, 0x21]); // "hi\0\n\xff\xfe\n\0!"

// Two tests at a time: most of the time goes into starting node for each command, and the
// other core would otherwise idle while a test waits for one.
describe('interprocess queue and channel verbs', { concurrency: 2 }, () => {
  // ---- System V -------------------------------------------------------------------

  it('queue create/send/recv/stat on a System V queue by key: lines in, lines out, the kernel agrees', async (t) => {
    const { key, id } = await sysvQueue(t, ['--mode', '640']);
    assert.equal(sysv.MessageQueue.open(Number(key)).id, id, 'the id printed is the queue the key names');

    // Idempotent without --exclusive (same id); --exclusive refuses.
    assert.equal(await ok(t, ['queue', 'create', key]), `Message queue id: ${id}\n`);
    failed(await ipx(t, ['queue', 'create', key, '--exclusive']), 1, /already exists/, 'create --exclusive on an existing key');

    // Four lines, one empty, the last without its newline: four messages.
    assert.equal(await ok(t, ['queue', 'send', key], 'alpha\nbeta\n\nlast'), '');
    const st = await statJson(t, 'queue', key);
    assert.equal(st.messages, 4);
    assert.equal(st.bytes, 'alpha'.length + 'beta'.length + 'last'.length);
    assert.equal(st.id, id);
    assert.equal(st.mode, '0640');
    assert.equal(st.maxBytes, sysv.MessageQueue.stat(id).qbytes);
    assert.equal(typeof st.lastSendPid, 'number');
    assert.notEqual(st.lastSendPid, 0);
    assert.equal(st.receiveTime, null);

    // One message by default (the oldest); the rest with --all; the id works as well as the key.
    assert.equal(await ok(t, ['queue', 'recv', key]), 'alpha\n');
    assert.equal(await ok(t, ['queue', 'recv', `id:${id}`, '--all']), 'beta\n\nlast\n');
    const human = await ok(t, ['queue', 'stat', String(id)]);
    assert.match(human, new RegExp(`^System V message queue ${key.replace('0x', '0x0*')} \\(id ${id}\\)$`, 'm'));
    assert.match(human, /^ {2}messages +0 \(0 bytes of \d+/m);
    assert.match(human, /^ {2}mode +0640$/m);
    assert.match(human, /^ {2}last receive +\d{4}-\d\d-\d\d \d\d:\d\d:\d\d by pid \d+$/m);
    const after = sysv.MessageQueue.stat(id);
    assert.equal(after.qnum, 0);
    assert.notEqual(after.lrpid, 0);
  });

  it('queue create 0 and --private make IPC_PRIVATE queues, reachable by the id printed', async (t) => {
    const ids: number[] = [];
    t.after(() => {
      for (const id of ids) {
        try {
          sysv.MessageQueue.remove(id);
        } catch { /* already gone */ }
      }
    });
    for (const args of [['0'], ['--private']]) {
      const m = /^Message queue id: (\d+)\n$/.exec(await ok(t, ['queue', 'create', ...args]));
      assert.ok(m);
      ids.push(Number(m[1]));
    }
    assert.notEqual(ids[0], ids[1]);
    for (const id of ids) assert.equal(sysv.MessageQueue.stat(id).key, 0);
    await ok(t, ['queue', 'send', String(ids[0]), 'to the first']);
    assert.deepEqual(sysv.MessageQueue.fromId(ids[0]!).tryReceive()?.data.toString(), 'to the first');
  });

  it('queue recv --type selects as msgrcv does; --show-type and --json carry the type', async (t) => {
    const { key, q } = sysvFixture(t);
    for (const [type, text] of [[3, 'three'], [1, 'one'], [2, 'two-a'], [5, 'five'], [2, 'two-b']] as const) await q.send(type, text);
    // Type 2 exactly, in order; then the lowest type up to 4; then anything (the oldest).
    assert.equal(await ok(t, ['queue', 'recv', key, '--type', '2', '--count', '2', '--show-type']), '2\ttwo-a\n2\ttwo-b\n');
    assert.equal(await ok(t, ['queue', 'recv', key, '--type', '-4', '--show-type']), '1\tone\n');
    assert.equal(await ok(t, ['queue', 'recv', key, '--type=-4']), 'three\n');
    // No message of type 9: --timeout 0 exits 3 and names the type.
    failed(await ipx(t, ['queue', 'recv', key, '--type', '9', '--timeout', '0']), 3, /no message of type 9 in System V queue/, 'recv --type 9');
    // --type on send: the message goes in with that type.
    await ok(t, ['queue', 'send', key, '--type', '8'], 'eight\n');
    const lines = (await ok(t, ['queue', 'recv', key, '--all', '--json'])).trim().split('\n');
    assert.deepEqual(lines.map((l) => JSON.parse(l) as unknown), [{ type: 5, data: 'five' }, { type: 8, data: 'eight' }]);
  });

  it('queue --raw keeps binary bytes (NUL, newline, invalid UTF-8) exactly; --json gives them as base64', async (t) => {
    const { key, q } = sysvFixture(t);
    await ok(t, ['queue', 'send', key, '--raw', '--type', '4'], BINARY);
    assert.deepEqual([q.stat().qnum, q.stat().cbytes], [1, BINARY.length], 'a --raw send is one message of all of stdin');
    await q.send(4, BINARY);
    const raw = await ipx(t, ['queue', 'recv', key, '--raw']);
    assert.equal(raw.code, 0, raw.stderr);
    assert.deepEqual(raw.stdout, BINARY);
    assert.equal(await ok(t, ['queue', 'recv', key, '--json']), `${JSON.stringify({ type: 4, data: BINARY.toString('base64'), encoding: 'base64' })}\n`);

    const p = posixFixture(t, 'raw');
    await ok(t, ['queue', 'send', p.name, '--raw', '--priority', '3'], BINARY);
    const got = p.q.tryReceive();
    assert.deepEqual([got?.data, got?.priority], [BINARY, 3]);
    await p.q.send(BINARY, 2);
    assert.deepEqual((await ipx(t, ['queue', 'recv', p.name, '--raw'])).stdout, BINARY);
  });

  it('an empty queue: --all prints nothing and exits 0, --timeout 0 exits 3 at once, --timeout 200 after about 200 ms', async (t) => {
    const { key, q } = sysvFixture(t);
    const p = posixFixture(t, 'empty');
    const [allSysv, allPosix, now, later, laterPosix] = await Promise.all([
      ipx(t, ['queue', 'recv', key, '--all']),
      ipx(t, ['queue', 'recv', p.name, '--all']),
      ipx(t, ['queue', 'recv', key, '--timeout', '0']),
      ipx(t, ['queue', 'recv', key, '--timeout', '200']),
      ipx(t, ['queue', 'recv', p.name, '--timeout', '200']),
    ]);
    for (const r of [allSysv, allPosix]) {
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.length, 0);
      assert.equal(r.stderr, '');
    }
    failed(now, 3, /no message in System V queue 0x0*[\da-f]+ \(--timeout 0: not waiting\)$/, 'recv --timeout 0');
    failed(later, 3, /no message in System V queue .* within 200 ms$/, 'recv --timeout 200');
    failed(laterPosix, 3, new RegExp(`no message in POSIX queue ${p.name} within 200 ms$`), 'recv --timeout 200 (POSIX)');
    for (const r of [later, laterPosix]) {
      assert.ok(r.ms >= 200, `exited after ${r.ms} ms`);
      assert.ok(r.ms < 200 + 5000, `exited after ${r.ms} ms`);
    }
    // The timed-out waits took nothing and left no waiter behind: a message sent now stays.
    await q.send(1, 'still here');
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(q.tryReceive()?.data.toString(), 'still here');
  });

  it('a recv that waits is woken by a send from another process; Ctrl-C ends a wait (130) having taken nothing', async (t) => {
    const { key, q } = sysvFixture(t);
    const waiting = start(t, ['queue', 'recv', key]);
    await until(() => inMsgrcv(waiting.child.pid!, q.id), 'the receiver waits in msgrcv', 5000);
    assert.equal(waiting.child.exitCode, null);
    await ok(t, ['queue', 'send', key, 'wake up']);
    const r = await waiting.done;
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.toString(), 'wake up\n');

    const interrupted = start(t, ['queue', 'recv', key, '--follow']);
    await until(() => inMsgrcv(interrupted.child.pid!, q.id), 'the follower waits in msgrcv', 5000);
    interrupted.child.kill('SIGINT');
    const i = await interrupted.done;
    assert.equal(i.code, 130);
    assert.equal(i.stderr, '');
    await q.send(1, 'after Ctrl-C');
    assert.equal(q.tryReceive()?.data.toString(), 'after Ctrl-C', 'the cancelled receive took nothing');

    // POSIX: the same, the receiver polling the queue descriptor.
    const p = posixFixture(t, 'wake');
    const posixWaiting = start(t, ['queue', 'recv', p.name, '--show-priority']);
    await until(() => holdsQueue(posixWaiting.child.pid!, p.name), 'the receiver has the queue open', 5000);
    await ok(t, ['queue', 'send', p.name, 'posix wake', '--priority', '7']);
    const w = await posixWaiting.done;
    assert.equal(w.code, 0, w.stderr);
    assert.equal(w.stdout.toString(), '7\tposix wake\n');
  });

  it('a C program and the CLI share a System V queue: each receives exactly what the other sent', async (t) => {
    const peer = await compilePeer('msg_cli_peer');
    // Its msgrcv waits for ever: a message of the wrong type must fail the test, not hang it.
    const runPeer = (args: string[]): Promise<RunResult> => finished(killOnExit(t, spawn(peer, args, { stdio: ['ignore', 'pipe', 'pipe'] })), 'msg_cli_peer', 5000);
    const { key } = sysvFixture(t);
    const hex = (b: Buffer | string): string => Buffer.from(b).toString('hex');
    // C sends (msgsnd: mtype + bytes), the CLI receives by type.
    const sent = await runPeer(['send', key, '5', hex('five'), 'send', key, '1', hex(BINARY), 'send', key, '3', hex('three\n'), 'send', key, '1', '']);
    assert.equal(sent.code, 0, sent.stderr);
    assert.equal(sent.stdout, 'sent\n'.repeat(4));
    assert.equal(await ok(t, ['queue', 'recv', key, '--type', '5']), 'five\n');
    const raw = await ipx(t, ['queue', 'recv', key, '--type', '1', '--raw']);
    assert.deepEqual(raw.stdout, BINARY);
    const rest = (await ok(t, ['queue', 'recv', key, '--all', '--json'])).trim().split('\n').map((l) => JSON.parse(l) as unknown);
    assert.deepEqual(rest, [{ type: 3, data: 'three\n' }, { type: 1, data: '' }]);

    // The CLI sends, C receives (msgrcv by type): the bytes, and the type, as given.
    await ok(t, ['queue', 'send', key, '--raw', '--type', '7'], BINARY);
    await ok(t, ['queue', 'send', key, '--type', '9'], 'line one\nline two\n');
    const got = await runPeer(['recv', key, '7', 'recv', key, '9', 'recv', key, '-9']);
    assert.equal(got.code, 0, got.stderr);
    assert.equal(got.stdout, `type=7 hex=${hex(BINARY)}\ntype=9 hex=${hex('line one')}\ntype=9 hex=${hex('line two')}\n`);
  });

  // ---- POSIX ------------------------------------------------------------------------

  it('queue create/send/recv/stat on a POSIX queue: limits, priority order, a full queue', async (t) => {
    const name = posixQueueName(t, 'mq');
    assert.equal(await ok(t, ['queue', 'create', name, '--max-msgs', '4', '--msg-size', '128', '--mode', '0640']), `Message queue: ${name} (4 messages of at most 128 bytes)\n`);
    assert.match(await ok(t, ['queue', 'create', name]), /already existed\)$/m);
    failed(await ipx(t, ['queue', 'create', name, '--exclusive']), 1, new RegExp(`POSIX message queue ${name} already exists`), 'create --exclusive');

    await ok(t, ['queue', 'send', name, 'routine', '--priority', '1']);
    await ok(t, ['queue', 'send', name, '--priority', '9'], 'urgent\nurgent too\n');
    await ok(t, ['queue', 'send', name, 'normal', '-p', '5']);
    // Full (4 messages): --timeout 0 exits 3 at once, --timeout 100 after waiting.
    const [now, later] = await Promise.all([ipx(t, ['queue', 'send', name, 'no room', '--timeout', '0']), ipx(t, ['queue', 'send', name, '--timeout', '100'], 'x\n')]);
    failed(now, 3, new RegExp(`POSIX queue ${name} is full: no room \\(--timeout 0`), 'send to a full queue');
    failed(later, 3, /is full: no room within 100 ms/, 'send --timeout 100 to a full queue');

    const st = await statJson(t, 'queue', name);
    assert.equal(st.messages, 4);
    assert.equal(st.maxMessages, 4);
    assert.equal(st.messageSize, 128);
    assert.equal(st.mode, '0640');
    // /dev/mqueue (when mounted) gives the bytes queued.
    const mounted = readdirSafe('/dev/mqueue').includes(name.slice(1));
    assert.equal(st.bytes, mounted ? 'routine'.length + 'urgent'.length + 'urgent too'.length + 'normal'.length : null);
    assert.match(await ok(t, ['queue', 'stat', name]), /^ {2}limits +4 messages of at most 128 bytes$/m);

    // Highest priority first, oldest first within one priority.
    assert.equal(await ok(t, ['queue', 'recv', name, '--count', '3', '--show-priority']), '9\turgent\n9\turgent too\n5\tnormal\n');
    assert.equal(await ok(t, ['queue', 'recv', name, '--all', '--json']), `${JSON.stringify({ priority: 1, data: 'routine' })}\n`);
    // A message longer than mq_msgsize is refused, clearly.
    failed(await ipx(t, ['queue', 'send', name, 'x'.repeat(129)]), 1, /exceeds the queue's message size \(128\)/, 'send too large');
  });

  // ---- channels ---------------------------------------------------------------------

  it('channel create/send/recv/stat between CLI processes; the channel outlives its creator', async (t) => {
    const name = channelName(t, 'ch');
    assert.equal(await ok(t, ['channel', 'create', name, '--capacity', '8K']), `Channel: ${name} (8192-byte ring, messages up to 4088 bytes)\n`);
    assert.match(await ok(t, ['channel', 'create', name]), /already existed\)$/m);
    failed(await ipx(t, ['channel', 'create', name, '--exclusive']), 1, /already exists/, 'channel create --exclusive');

    await ok(t, ['channel', 'send', name], 'one\ntwo\n');
    await ok(t, ['channel', 'send', name, '--raw'], BINARY);
    const st = await statJson(t, 'channel', name);
    assert.equal(st.capacity, 8192);
    assert.equal(st.maxMessage, 4088);
    const record = (n: number): number => (8 + n + 7) & ~7; // docs/channel.md: length, reserved word, payload, 8-aligned
    assert.equal(st.used, record(3) + record(3) + record(BINARY.length));
    assert.equal(st.receiverPid, 0);
    assert.deepEqual(st.senderPids, [], 'a send command detaches when it ends');
    assert.equal(st.creatorAlive, false);
    assert.match(await ok(t, ['channel', 'stat', name]), new RegExp(`^ {2}ring +8192 bytes, ${st.used} in use; messages up to 4088 bytes$`, 'm'));

    assert.equal(await ok(t, ['channel', 'recv', name, '--count', '2']), 'one\ntwo\n');
    assert.deepEqual((await ipx(t, ['channel', 'recv', name, '--raw'])).stdout, BINARY);
    const sender = Channel.open(name);
    t.after(() => sender.close());
    await sender.send(BINARY);
    sender.close();
    assert.equal(await ok(t, ['channel', 'recv', name, '--json', '--all']), `${JSON.stringify({ data: BINARY.toString('base64'), encoding: 'base64' })}\n`);
    failed(await ipx(t, ['channel', 'recv', name, '--timeout', '0']), 3, new RegExp(`no message in channel ${name} \\(--timeout 0`), 'channel recv --timeout 0');
  });

  it('channel recv waits for a send from another process, and a second receiver is refused', async (t) => {
    const name = channelName(t, 'rx');
    Channel.create(name, { capacity: 4096 }).close();
    const receiver = start(t, ['channel', 'recv', name, '--count', '2']);
    await until(() => {
      try {
        return Channel.inspect(name).receiverPid === receiver.child.pid;
      } catch {
        return false;
      }
    }, 'the receiver attaches', 5000);
    const second = await ipx(t, ['channel', 'recv', name, '--timeout', '0']);
    failed(second, 1, new RegExp(`channel '${name}' already has a receiver \\(pid ${receiver.child.pid}\\)`), 'a second receiver');
    await ok(t, ['channel', 'send', name], 'first\nsecond\n');
    const r = await receiver.done;
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.toString(), 'first\nsecond\n');
    assert.equal(Channel.inspect(name).receiverPid, 0, 'the receiver detached when it ended');
  });

  it('channel recv --follow outlives a sender killed with SIGKILL: says so once on stderr and goes on with the next sender', async (t) => {
    const name = channelName(t, 'follow');
    Channel.create(name, { capacity: 4096 }).close();
    const follower = start(t, ['channel', 'recv', name, '--follow']);
    const out: string[] = [];
    follower.child.stdout!.on('data', (d: Buffer) => out.push(d.toString()));
    // A sender that sends one line, then is killed while attached.
    const doomed = killOnExit(t, spawn(process.execPath, [cli, 'channel', 'send', name], { stdio: ['pipe', 'ignore', 'ignore'] }));
    doomed.stdin!.write('first\n');
    await until(() => out.join('') === 'first\n', () => `the first line, got ${JSON.stringify(out.join(''))}`, 5000);
    doomed.kill('SIGKILL');
    await finished(doomed, 'the killed sender');
    await ok(t, ['channel', 'send', name, 'second']);
    await until(() => out.join('') === 'first\nsecond\n', () => `the second line, got ${JSON.stringify(out.join(''))}`, 5000);
    await new Promise((r) => setTimeout(r, 400)); // a few of the follower's 100 ms looks with no live sender
    follower.child.kill('SIGINT');
    const r = await follower.done;
    assert.equal(r.code, 130, r.stderr);
    const notes = r.stderr.split('\n').filter(Boolean);
    assert.deepEqual(notes, [`interprocess: EPIPE: the sender (pid ${doomed.pid}) of channel '${name}' died; still following`], 'said once');
  });

  // ---- bad input ----------------------------------------------------------------------

  it('bad input: each verb fails with its exit code and a clear message, no stack trace', async (t) => {
    const { key, q } = sysvFixture(t);
    const p = posixFixture(t, 'bad');
    const ch = channelName(t, 'badch');
    Channel.create(ch, { capacity: 4096 }).close();
    const missingKey = freshKey();
    const missingName = uniqueName('missing');
    const cases: Array<[string[], number, RegExp]> = [
      // Targets.
      [['queue', 'send', 'not-a-target', 'x'], 2, /'not-a-target' is not a target/],
      [['queue', 'recv', '/a/b'], 2, /a POSIX name is '\/' and then a name without '\/'/],
      [['queue', 'send', '0x0', 'x'], 2, /IPC_PRIVATE/],
      [['channel', 'send', '0x1234', 'x'], 2, /a channel is named \/name/],
      // Missing objects: exit 4.
      [['queue', 'send', missingKey, 'x'], 4, new RegExp(`no System V message queue with key ${missingKey.replace('0x', '0x0*')}$`)],
      [['queue', 'stat', 'id:2147483000'], 4, /no System V message queue with id 2147483000$/],
      [['queue', 'recv', missingName, '--timeout', '0'], 4, new RegExp(`no POSIX message queue named ${missingName}$`)],
      [['queue', 'stat', missingName], 4, /no POSIX message queue named/],
      [['channel', 'send', missingName, 'x'], 4, new RegExp(`no channel named ${missingName}$`)],
      [['channel', 'recv', missingName], 4, /no channel named/],
      [['channel', 'stat', missingName], 4, /no channel named/],
      // Types, counts, priorities, modes, sizes, timeouts.
      [['queue', 'recv', key, '--type', 'abc'], 2, /argument 'abc' is invalid.*message type selector is an integer/],
      [['queue', 'send', key, 'x', '--type', '0'], 2, /a message type \(mtype\) is a positive integer \(got '0'\)/],
      [['queue', 'recv', p.name, '--type', '2'], 2, new RegExp(`--type is for System V queues; ${p.name} is a POSIX queue`)],
      [['queue', 'send', key, 'x', '--priority', '3'], 2, /--priority is for POSIX queues/],
      [['queue', 'recv', key, '--count', '-1'], 2, /expected a non-negative integer \(got '-1'\)/],
      [['channel', 'recv', ch, '--count', '0'], 2, /a count is at least 1/],
      [['queue', 'recv', key, '--all', '--count', '3'], 2, /cannot be used with/],
      [['queue', 'recv', key, '--follow', '--timeout', '100'], 2, /--follow waits for ever/],
      [['channel', 'send', ch, 'x', '--timeout', 'soon'], 2, /a timeout is a number of milliseconds/],
      [['queue', 'create', '5'], 2, /5 is a queue id, which names an existing queue/],
      [['queue', 'create', missingName, '--mode', '999'], 2, /a mode is octal permission bits/],
      [['queue', 'create', missingKey, '--max-msgs', '3'], 2, /--max-msgs is for POSIX queues/],
      [['channel', 'create', missingName, '--capacity', '5000'], 2, /a capacity is a power of two/],
      // Unknown options and verbs.
      [['queue', 'recv', key, '--bogus'], 2, /unknown option '--bogus'/],
      [['channel', 'recv', ch, '--type', '1'], 2, /unknown option '--type'/],
      [['queue', 'frobnicate', key], 2, /unknown command 'frobnicate'/],
    ];
    // A few at a time: two cores are shared with other suites.
    for (let i = 0; i < cases.length; i += 6) {
      const batch = cases.slice(i, i + 6);
      const results = await Promise.all(batch.map(([args]) => ipx(t, args)));
      batch.forEach(([args, code, pattern], k) => failed(results[k]!, code, pattern, `interprocess ${args.join(' ')}`));
    }
    // None of them sent, took or created anything.
    assert.equal(q.stat().qnum, 0);
    assert.equal(p.q.attributes().currentMessages, 0);
    assert.throws(() => posix.MessageQueue.open(missingName), { code: 'ENOENT' });
    assert.throws(() => Channel.open(missingName), { code: 'ENOENT' });
    assert.throws(() => sysv.MessageQueue.open(Number(missingKey)), { code: 'ENOENT' });
  });

  it('--help of each verb explains it with examples', async (t) => {
    const verbs = [['queue', 'create'], ['queue', 'send'], ['queue', 'recv'], ['queue', 'stat'], ['channel', 'create'], ['channel', 'send'], ['channel', 'recv'], ['channel', 'stat']];
    const results = await Promise.all(verbs.map((v) => ipx(t, [...v, '--help'])));
    results.forEach((r, k) => {
      const out = r.stdout.toString();
      assert.equal(r.code, 0, r.stderr);
      assert.match(out, new RegExp(`^Usage: interprocess ${verbs[k]!.join(' ')}`), out);
      assert.match(out, /Examples?:\n {2}\$ interprocess /, `${verbs[k]!.join(' ')} --help has examples`);
      if (verbs[k]![0] === 'queue') assert.match(out, /ftok:PATH:PROJ/, 'the target forms are explained');
    });
  });
});
