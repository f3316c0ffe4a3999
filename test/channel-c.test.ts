// The Channel's C side (include/interprocess.h + c/interprocess.c) against
// itself and against Node, through test/peers/channel_peer.c: messages of
// random sizes (empty, max_message, placed at the wrap edge) checked by a
// checksum, copy and zero-copy calls, several senders, prompt wake-ups in
// both directions (futex and doorbell), peer death (EPIPE) as against a peer
// that closes (simply absent), a sender dying with the send lock held, one
// receiver at a time, 64 sender slots, timeouts (docs/channel.md).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { once } from 'node:events';
import { Channel, Mutex, PeerGoneError, posix } from 'interprocess';
import { channelWorker, collect, compilePeer, killOnExit, root, runThenFill, shmEntries, spawnNode, uniqueName, unlinkQuietly, until, withTimeout, type RunResult } from './helpers.js';

const cPeer = compilePeer('channel_peer', [`-I${join(root, 'include')}`]);
cPeer.catch(() => {}); // reported by the tests that await it

type T = import('node:test').TestContext;

interface Peer {
  child: ChildProcess;
  /** Exit status and output (collected from the start). */
  done: Promise<RunResult>;
  line(pattern: RegExp): Promise<string>;
  /** done, failing (and killing the peer) after `ms`. */
  end(ms?: number): Promise<RunResult>;
}

async function peer(t: T, args: (string | number)[], stdin: 'ignore' | 'pipe' = 'ignore'): Promise<Peer> {
  const child = killOnExit(t, spawn(await cPeer, args.map(String), { stdio: [stdin, 'pipe', 'pipe'] }));
  return wrap(child, `channel_peer ${args.slice(1).join(' ')}`);
}

/**
 * A C peer whose parent is a shell that reaps it when it dies: this test
 * process, blocked in a ...Sync call, could not reap it, and a zombie looks
 * alive to kill(pid, 0). pid: the peer's own.
 */
async function reapedPeer(t: T, args: (string | number)[]): Promise<Peer & { pid: number }> {
  const sh = spawn('sh', ['-c', '"$@" & echo "pid $!"; wait', 'sh', await cPeer, ...args.map(String)], { stdio: ['ignore', 'pipe', 'pipe'] });
  const p = wrap(killOnExit(t, sh), `channel_peer ${args.slice(1).join(' ')}`);
  const pid = Number((await p.line(/^pid \d+$/)).slice(4));
  t.after(() => {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone already
    }
  });
  return { ...p, pid };
}

function nodePeer(t: T, code: string, args: (string | number)[]): Peer {
  return wrap(killOnExit(t, spawnNode(code, args.map(String))), 'node peer');
}

function wrap(child: ChildProcess, what: string): Peer {
  const done = collect(child);
  let out = '';
  const found = (pattern: RegExp): string | undefined => out.split('\n').slice(0, -1).find((l) => pattern.test(l));
  const waiters = new Set<() => void>();
  child.stdout!.on('data', (d: string) => {
    out += d;
    for (const w of waiters) w();
  });
  // A complete line of stdout matching `pattern`, printed already or later.
  const line = (pattern: RegExp): Promise<string> => {
    const seen = found(pattern);
    if (seen !== undefined) return Promise.resolve(seen);
    const p = new Promise<string>((resolve, reject) => {
      const check = (): void => {
        const l = found(pattern);
        if (l !== undefined) {
          waiters.delete(check);
          resolve(l);
        }
      };
      waiters.add(check);
      void done.then(() => {
        if (waiters.delete(check)) reject(new Error(`${what} exited without printing ${pattern}: ${out}`));
      });
    });
    return withTimeout(p, 20_000, `${what} prints ${pattern}`);
  };
  return {
    child,
    done,
    line,
    end: (ms = 30_000) => withTimeout(done, ms, `${what} exits`, () => child.kill('SIGKILL')),
  };
}

/** A channel created by the C peer (no Node Channel involved). */
async function cChannel(t: T, capacity = 4096): Promise<string> {
  const name = uniqueName('chc');
  t.after(() => unlinkQuietly(name));
  const r = await (await peer(t, ['create', name, capacity])).end();
  assert.equal(r.stdout, 'created\n', r.stderr);
  return name;
}

/** A channel created by Node. */
function nodeChannel(t: T, capacity = 4096): Channel {
  const name = uniqueName('chc');
  const ch = Channel.create(name, { capacity });
  t.after(() => {
    ch.close();
    unlinkQuietly(name);
  });
  return ch;
}

function ok(r: RunResult, stdout?: string | RegExp): string {
  assert.equal(r.code, 0, `exit ${r.code ?? r.signal}: ${r.stdout}${r.stderr}`);
  if (typeof stdout === 'string') assert.equal(r.stdout, stdout);
  else if (stdout) assert.match(r.stdout, stdout);
  return r.stdout;
}

// FNV-1a (32 bits) over each message's length (u32 LE) and bytes: the peer's checksum.
const FNV_START = 2166136261;
function checksum(h: number, msg: Uint8Array): number {
  const n = msg.length;
  for (const b of [n & 255, (n >>> 8) & 255, (n >>> 16) & 255, n >>> 24]) h = Math.imul(h ^ b, 16777619) >>> 0;
  for (let i = 0; i < n; i++) h = Math.imul(h ^ msg[i]!, 16777619) >>> 0;
  return h;
}

/**
 * Messages a single sender sends into a fresh ring: random lengths, every
 * 50th the largest, every 13th empty, every 5th placed at the ring's end
 * (filling it exactly, 1 byte too long so it wraps, or leaving 8 bytes),
 * found by following the ring's position as docs/channel.md lays records out.
 */
function* messages(capacity: number, maxMessage: number, n: number, seed = 1): Generator<Buffer> {
  let pos = 0;
  let s = seed;
  const rnd = (): number => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) >>> 8;
  for (let k = 0; k < n; k++) {
    const rem = capacity - pos;
    let len = rnd() % Math.min(3000, maxMessage + 1);
    if (k % 50 === 1) len = maxMessage;
    else if (k % 13 === 5) len = 0;
    else if (k % 5 === 2 && rem - 7 <= maxMessage) len = [rem - 8, rem - 7, Math.max(0, rem - 16)][Math.floor(k / 5) % 3]!;
    const b = Buffer.alloc(len);
    const fill = rnd();
    for (let i = 0; i < len; i++) b[i] = (fill + i * 7 + (i >> 8)) & 255;
    const record = (8 + len + 7) & ~7;
    if (record > capacity - pos) pos = 0;
    pos = (pos + record) % capacity;
    yield b;
  }
}

function sumOf(parts: string): { count: number; sum: number } {
  const [count, sum] = parts.trim().split('\n')[0]!.split(' ');
  return { count: Number(count), sum: Number(sum) };
}

/** Waits ms: blocking this thread (sync) or not (async). */
function pause(mode: 'sync' | 'async', ms: number): Promise<void> | void {
  if (mode === 'sync') Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
  else return new Promise((resolve) => setTimeout(resolve, ms));
}

// ---- C with C -------------------------------------------------------------------

for (const [sendOpts, recvOpts] of [[[], []], [['zc'], ['view']], [[], ['probe']], [['zc'], []]] as const) {
  const how = `${sendOpts.join(' ') || 'copy'} -> ${recvOpts.join(' ') || 'copy'}`;
  test(`C to C: 20000 messages of random sizes (empty, max_message, the wrap edge) arrive whole and in order (${how})`, async (t) => {
    const name = await cChannel(t, 4096);
    const receiver = await peer(t, [name, 'recv', 20000, ...recvOpts]);
    const sender = await peer(t, [name, 'send', 20000, 'seed=7', ...sendOpts]);
    const sent = ok(await sender.end());
    const got = ok(await receiver.end());
    assert.equal(sumOf(sent).count, 20000);
    assert.equal(got, sent, 'same checksum on both sides');
  });
}

/** C senders that stay attached (a receiver seeing none attached would rightly end the stream). */
async function holdingSenders(t: T, name: string, n: number, ids: number[]): Promise<Peer[]> {
  return Promise.all(ids.map((id) => peer(t, [name, 'send', n, `id=${id}`, `seed=${id}`, ...(id === 2 ? ['zc'] : []), 'hold'], 'pipe')));
}

/** Their "<count> <checksum>" lines, then lets them close and exit. */
async function releaseSenders(senders: Peer[], n: number): Promise<{ count: number; sum: number }[]> {
  const sums = await Promise.all(senders.map(async (s) => sumOf(await s.line(new RegExp(`^${n} `)))));
  for (const s of senders) s.child.stdin!.end();
  for (const s of senders) ok(await s.end());
  return sums;
}

test('C to C: three C senders into one C receiver, each sender\'s messages in its order', async (t) => {
  const name = await cChannel(t, 8192);
  const receiver = await peer(t, [name, 'recv', 3 * 4000, 'ids']);
  const senders = await holdingSenders(t, name, 4000, [1, 2, 3]);
  const line = ok(await receiver.end()).trim();
  const sums = await releaseSenders(senders, 4000);
  assert.deepEqual(line.split(' ').slice(2), sums.map((s, i) => `${i + 1}:${s.sum}`));
});

for (const delayMs of [0, 300]) {
  test(`C to C: a sender killed holding the send lock (reserved, ${delayMs ? 'another sender waiting' : 'nobody waiting'}): the next sender takes the lock over, the half-written record never arrives`, async (t) => {
    const name = await cChannel(t, 4096);
    const dying = await peer(t, [name, 'reserve-die', 1000, delayMs]);
    await dying.line(/reserved/);
    const sender = await peer(t, [name, 'send', 300, 'seed=3', 'timeout=5000']);
    assert.equal((await dying.end()).signal, 'SIGKILL');
    const died = performance.now();
    // The receiver only once the sender sends: with nothing but a dead sender attached it would (rightly) fail.
    await until(() => Channel.inspect(name).used > 0, 'the next sender sends', 5000);
    assert.ok(performance.now() - died < 3000, 'the waiting sender noticed the dead holder within its 100 ms looks');
    const receiver = await peer(t, [name, 'recv', 300]);
    const sent = ok(await sender.end(10_000));
    assert.equal(ok(await receiver.end()), sent, 'the same messages: no 0xEE record among them');
    assert.equal(ok(await (await peer(t, [name, 'try-recv'])).end()), 'EAGAIN\n', 'nothing more');
  });
}

// A record is published by its stamp, then counted in head (docs/channel.md, Sending): a sender that dies
// between the two leaves a record the receiver may take, and that whoever frees the dead holder's lock must
// count, so that the next sender does not overwrite it (docs/channel.md, Attaching). The freeing comes two
// ways: a sender taking over the dead one's slot (a new Node handle), or one with a slot of its own reaping
// it (the Node handle that sent before, C).
const takers = { node: 'Node, taking over its slot', 'node-own-slot': 'Node, with a slot of its own', c: 'C, with a slot of its own' };
for (const [wrap, taker] of [[false, 'node'], [true, 'node'], [false, 'node-own-slot'], [true, 'node-own-slot'], [false, 'c'], [true, 'c']] as const) {
  test(`a sender killed after stamping its record${wrap ? ' (after a wrap marker)' : ''}, before counting it in head: it arrives once, and the next sender (${takers[taker]}) writes after it`, async (t) => {
    const ch = nodeChannel(t, 4096);
    const shm = posix.SharedMemory.open(ch.name);
    t.after(() => shm.close());
    const i32 = new Int32Array(shm.buffer);
    const [HEAD, TAIL] = [128 / 4, 192 / 4]; // docs/channel.md
    // The dying record (112 bytes) goes at ring offset 16, or wraps from offset 4032 (64 bytes left).
    for (const n of wrap ? [2008, 2008] : [8]) ch.sendSync(Buffer.alloc(n, 1));
    for (let i = 0; i < (wrap ? 2 : 1); i++) ch.receiveSync({ timeout: 2000 });
    const head = Atomics.load(i32, HEAD) >>> 0;
    const dying = await peer(t, [ch.name, 'publish-die', 100]);
    await dying.line(/published/);
    assert.equal((await dying.end()).signal, 'SIGKILL');
    assert.equal(Atomics.load(i32, HEAD) >>> 0, head, 'head does not count it');
    const after = Buffer.from('after');
    if (taker !== 'c') {
      assert.deepEqual(ch.receiveSync({ timeout: 2000 }), Buffer.alloc(100, 0xee), 'the receiver takes the stamped record');
      assert.equal(ch.stat().used, 0);
      let tx = ch; // (its slot taken when it sent above: the dead sender's is another)
      if (taker === 'node') {
        tx = Channel.open(ch.name);
        t.after(() => tx.close());
      }
      await tx.send(after, { timeout: 5000 }); // frees the dead sender's lock
      assert.deepEqual(ch.receiveSync({ timeout: 2000 }), after, 'the next message, not written over the taken one');
    } else {
      ok(await (await peer(t, [ch.name, 'send', 3, 'size=5', 'timeout=5000'])).end(), /^3 \d+\n$/);
      assert.deepEqual(ch.receiveSync({ timeout: 2000 }), Buffer.alloc(100, 0xee), 'the stamped record first');
      for (let i = 0; i < 3; i++) assert.equal(ch.receiveSync({ timeout: 2000 }).length, 5, `then C's message ${i}`);
    }
    assert.equal(ch.tryReceive(), undefined, 'nothing more');
    assert.equal(Atomics.load(i32, HEAD), Atomics.load(i32, TAIL), 'head and tail agree');
  });
}

// As test/channel-senders.test.ts for Node: a sender that kept a tail read gigabytes of other senders' messages
// ago must not trust it (the C sender reads the tail for every send; one that kept it, as the Node one does,
// would have to read it again holding the lock when others sent since it last held it).
test('C: a sender whose last look at the tail is 3 GiB, or just under 4 GiB, of other senders\' messages old finds a full ring full', async (t) => {
  const ch = nodeChannel(t, 65536);
  const shm = posix.SharedMemory.open(ch.name);
  t.after(() => shm.close());
  const words = new Int32Array(shm.buffer);
  const TAIL = 192 / 4; // docs/channel.md
  const early: Peer[] = [];
  for (let i = 0; i < 2; i++) {
    early.push(await peer(t, [ch.name, 'early-send'], 'pipe'));
    await early[i]!.line(/^sent$/);
    assert.equal(ch.receiveSync({ timeout: 2000 }).toString(), 'early');
  }
  const t0 = Atomics.load(words, TAIL) >>> 0; // (both early senders' last look, or later)
  const busy = Channel.open(ch.name);
  t.after(() => busy.close());
  for (const [i, bytes] of [3 * 2 ** 30, 2 ** 32 - 32768].entries()) {
    const filled = runThenFill(ch, busy, t0, bytes);
    early[i]!.child.stdin!.write('try\n');
    await early[i]!.line(/^EAGAIN$/);
    for (const [k, m] of filled.entries()) assert.deepEqual(ch.receiveSync({ timeout: 2000 }), m, `${bytes} bytes later: message ${k} intact`);
    assert.equal(ch.tryReceive(), undefined, 'nothing more');
    early[i]!.child.stdin!.write('try\n');
    await early[i]!.line(/^OK$/);
    assert.equal(ch.receiveSync({ timeout: 2000 }).length, 0, 'and with room it sends');
    early[i]!.child.stdin!.end();
    ok(await early[i]!.end());
  }
});

// A Node worker thread terminated mid-reservation gives its slot back (native/release.cc) while the send lock
// still names it: whoever takes that free slot, C here, counts what the holder left and frees the lock.
test('a Node worker thread terminated holding the send lock: a C sender taking its freed slot takes the lock over', async (t) => {
  const ch = nodeChannel(t, 4096);
  const worker = channelWorker(t, `const tx = Channel.open(d.name); tx.tryReserve(100).fill(0xee); parentPort.postMessage('reserved'); for (;;) {}`, ch.name);
  await once(worker, 'message');
  const shm = posix.SharedMemory.open(ch.name);
  t.after(() => shm.close());
  const words = new Int32Array(shm.buffer);
  const [SEND_LOCK, SLOT0_PID] = [320 / 4, 384 / 4]; // docs/channel.md
  assert.equal(Atomics.load(words, SEND_LOCK), 1, 'the worker (slot 0) holds the lock');
  await worker.terminate();
  assert.equal(Atomics.load(words, SLOT0_PID), 0, 'its slot is free');
  assert.equal(Atomics.load(words, SEND_LOCK), 1, 'and still named by the lock');
  ok(await (await peer(t, [ch.name, 'send', 3, 'size=5', 'timeout=5000'])).end(), /^3 \d+\n$/);
  for (let i = 0; i < 3; i++) assert.equal(ch.receiveSync({ timeout: 2000 }).length, 5, `C's message ${i}`);
  assert.equal(ch.tryReceive(), undefined, 'nothing of the reservation');
});

test('C: an old payload never passes for a record: the C sender clears the stamp where its next record will start', async (t) => {
  const ch = nodeChannel(t, 4096);
  // Lap 1 (Node): payloads holding, at every 8-byte ring offset q, a length 0 and the stamp (q + 4096) | 1.
  for (const r of [0, 1]) {
    const m = Buffer.alloc(ch.maxMessage);
    for (let k = 0; k + 8 <= m.length; k += 8) m.writeUInt32LE(((r * 2048 + 8 + k + 4096) | 1) >>> 0, k + 4);
    ch.sendSync(m);
    assert.ok(ch.receiveSync().equals(m));
  }
  ok(await (await peer(t, [ch.name, 'send', 100, 'size=8'])).end(), /^100 \d+\n$/);
  for (let i = 0; i < 100; i++) assert.equal(ch.receiveSync({ timeout: 2000 }).length, 8);
  assert.equal(ch.tryReceive(), undefined, 'no 0-byte message made of the old payload');
});

test('C to C: a sender that closes is simply absent: the waiting receiver waits for the next one', async (t) => {
  const name = await cChannel(t, 4096);
  const receiver = await peer(t, [name, 'recv', 1000, 'ids']);
  const first = ok(await (await peer(t, [name, 'send', 500, 'id=1', 'seed=1'])).end());
  await new Promise((resolve) => setTimeout(resolve, 300));
  assert.equal(receiver.child.exitCode, null, 'still waiting, with no sender attached');
  const second = ok(await (await peer(t, [name, 'send', 500, 'id=2', 'seed=2'])).end());
  const out = ok(await receiver.end()).trim().split(' ');
  assert.deepEqual(out.slice(2), [`1:${sumOf(first).sum}`, `2:${sumOf(second).sum}`]);
});

test('C to C: a receiver that closes is simply absent: the sender waits for room until the next one', async (t) => {
  const name = await cChannel(t, 4096);
  const sender = await peer(t, [name, 'send', 300, 'seed=4']);
  const part = sumOf(ok(await (await peer(t, [name, 'recv', 5])).end()));
  await new Promise((resolve) => setTimeout(resolve, 300));
  assert.equal(sender.child.exitCode, null, 'still waiting for room, with no receiver attached');
  const rest = ok(await (await peer(t, [name, 'recv', 295, `start=${part.sum}`])).end());
  assert.equal(sumOf(rest).sum, sumOf(ok(await sender.end())).sum);
});

test('C to C: a killed sender: the waiting receiver gets its last message, then EPIPE, promptly', async (t) => {
  const name = await cChannel(t, 4096);
  const receiver = await peer(t, [name, 'recv', -1]);
  const sender = await peer(t, [name, 'hold-send']);
  await sender.line(/sent/);
  await new Promise((resolve) => setTimeout(resolve, 200));
  sender.child.kill('SIGKILL');
  const t0 = performance.now();
  const out = ok(await receiver.end(5000));
  assert.ok(performance.now() - t0 < 2000, 'noticed within a few 100 ms looks');
  assert.equal(out, `1 ${checksum(FNV_START, Buffer.from('from C'))}\nend EPIPE\n`);
});

test('C to C: a sender waiting for room hears EPIPE when the receiver is killed; one receiver at a time (EBUSY), a dead one replaced', async (t) => {
  const name = await cChannel(t, 4096);
  const receiver = await peer(t, [name, 'hold-recv']);
  const sender = await peer(t, [name, 'send', 100000]);
  await receiver.line(/got/);
  assert.equal(ok(await (await peer(t, [name, 'try-recv'])).end()), 'EBUSY\n', 'a second receiver is refused');
  await new Promise((resolve) => setTimeout(resolve, 200));
  assert.equal(sender.child.exitCode, null, 'the sender waits for room');
  receiver.child.kill('SIGKILL');
  const r = await sender.end(5000);
  assert.equal(r.code, 4, r.stderr);
  assert.match(r.stdout, /^failed EPIPE at \d+\n$/);
  assert.match(ok(await (await peer(t, [name, 'try-recv'])).end()), /^got \d+\n$/, 'the dead receiver is replaced');
});

test('C: 64 sender slots; the 65th sender is refused (EBUSY) until one detaches', async (t) => {
  const name = await cChannel(t, 4096);
  ok(await (await peer(t, [name, 'slots'])).end(), 'slots 64 EBUSY OK\n');
});

/** The channel's control words, straight from the shared memory (docs/channel.md offsets). */
function controlWords(name: string): { sendLock: number; sendersWaiting: number; slot(i: number): { pid: number; waiting: number } } {
  const shm = posix.SharedMemory.open(name);
  const i32 = new Int32Array(shm.buffer);
  shm.close();
  return {
    sendLock: Atomics.load(i32, 320 / 4),
    sendersWaiting: Atomics.load(i32, 260 / 4),
    slot: (i) => ({ pid: Atomics.load(i32, (384 + 8 * i) / 4), waiting: Atomics.load(i32, (384 + 8 * i + 4) / 4) }),
  };
}

test('C: a sender taking over the slot of a sender killed holding the send lock frees the lock', async (t) => {
  const name = await cChannel(t, 4096);
  const crowd = await peer(t, [name, 'crowd', 63], 'pipe');
  await crowd.line(/crowd 63/);
  const dying = await peer(t, [name, 'reserve-die', 100]);
  assert.equal((await dying.end()).signal, 'SIGKILL');
  assert.deepEqual([controlWords(name).sendLock, controlWords(name).slot(63).pid], [64, dying.child.pid], 'slot 63 held the lock');
  // Its slot is the only one left: the next sender finds the lock naming its own slot.
  ok(await (await peer(t, [name, 'send', 1, 'timeout=2000'])).end(), /^1 \d+\n$/);
  assert.equal(controlWords(name).sendLock, 0);
  crowd.child.stdin!.end();
  ok(await crowd.end());
  assert.match(ok(await (await peer(t, [name, 'recv', 64])).end()), /^64 /);
});

test('C: a sender taking over the slot of a sender killed while asleep clears its waiting flag and count', async (t) => {
  const name = await cChannel(t, 4096);
  const crowd = await peer(t, [name, 'crowd', 63], 'pipe');
  await crowd.line(/crowd 63/);
  const sleeper = await peer(t, [name, 'send', 100000]);
  await until(() => controlWords(name).sendersWaiting === 1 && controlWords(name).slot(63).waiting === 1, 'the sender in slot 63 sleeps for room', 5000);
  sleeper.child.kill('SIGKILL');
  await sleeper.done;
  ok(await (await peer(t, [name, 'try-send'])).end(), 'EAGAIN\n');
  const w = controlWords(name);
  assert.deepEqual([w.sendersWaiting, w.slot(63).waiting, w.slot(63).pid], [0, 0, 0], 'cleared, then given back');
  crowd.child.stdin!.end();
  ok(await crowd.end());
});

test('C: blocking calls time out (ETIMEDOUT): receive on an empty ring, send on a full one', async (t) => {
  const name = await cChannel(t, 4096);
  let t0 = performance.now();
  let r = await (await peer(t, [name, 'recv', 1, 'timeout=250'])).end();
  assert.equal(r.stdout, 'failed ETIMEDOUT at 0\n', r.stderr);
  assert.ok(performance.now() - t0 >= 240);
  const receiver = await peer(t, [name, 'hold-recv']);
  ok(await (await peer(t, [name, 'send', 1])).end());
  await receiver.line(/got/);
  t0 = performance.now();
  r = await (await peer(t, [name, 'send', 1000, 'timeout=250'])).end();
  assert.match(r.stdout, /^failed ETIMEDOUT at \d+\n$/, r.stderr);
});

test('C: ipx_channel_open refuses what is not a channel (EINVAL) and a missing name (ENOENT)', async (t) => {
  const name = uniqueName('chc');
  Mutex.create(name).close();
  t.after(() => unlinkQuietly(name));
  let r = await (await peer(t, [name, 'try-recv'])).end();
  assert.equal(r.code, 1);
  assert.match(r.stderr, /ipx_channel_open: Invalid argument/);
  r = await (await peer(t, [uniqueName('chc'), 'try-recv'])).end();
  assert.match(r.stderr, /ipx_channel_open: No such file/);
});

// ---- C with Node ----------------------------------------------------------------

for (const mode of ['sync', 'async'] as const) {
  for (const sendOpts of [[], ['zc']] as const) {
    test(`C to Node: 5000 messages of random sizes arrive whole and in order (${sendOpts.length ? 'C zero-copy' : 'C copy'}, Node ${mode})`, async (t) => {
      const ch = nodeChannel(t, 4096);
      const sender = await peer(t, [ch.name, 'send', 5000, 'seed=11', ...sendOpts]);
      let sum = FNV_START;
      for (let k = 0; k < 5000; k++) {
        const m = mode === 'sync' ? ch.receiveSync({ timeout: 20_000 }) : await ch.receive({ timeout: 20_000 });
        sum = checksum(sum, m);
      }
      assert.deepEqual(sumOf(ok(await sender.end())), { count: 5000, sum });
      assert.equal(ch.tryReceive(), undefined, 'nothing extra');
    });
  }

  for (const recvOpts of [[], ['view'], ['probe']] as const) {
    test(`Node to C: 5000 messages of random sizes arrive whole and in order (Node ${mode}, C ${recvOpts[0] ?? 'copy'})`, async (t) => {
      const ch = nodeChannel(t, 4096);
      const receiver = await peer(t, [ch.name, 'recv', 5000, ...recvOpts]);
      let sum = FNV_START;
      for (const m of messages(ch.capacity, ch.maxMessage, 5000, 5)) {
        sum = checksum(sum, m);
        if (mode === 'sync') ch.sendSync(m, { timeout: 20_000 });
        else await ch.send(m, { timeout: 20_000 });
      }
      assert.deepEqual(sumOf(ok(await receiver.end())), { count: 5000, sum });
    });
  }

  test(`C and Node wake each other at once: a sleeping Node receiver (Node ${mode}: ${mode === 'sync' ? 'futex' : 'doorbell'}), a sleeping C receiver`, async (t) => {
    // Node waits 3 ms before each send, so the C receiver is asleep when it
    // comes; the C peer echoes it after 1 ms, so Node is asleep when the echo
    // comes. Had either not woken the other, it would look again only after 100 ms.
    const toC = nodeChannel(t, 8192);
    const fromC = nodeChannel(t, 8192);
    const N = 60;
    const echo = await peer(t, [toC.name, 'echo', N, fromC.name, 1000]);
    const trips: number[] = [];
    for (let k = 0; k < N; k++) {
      const msg = Buffer.alloc(k % 10 === 0 ? toC.maxMessage : k * 31, k);
      await pause(mode, 3);
      const t0 = performance.now();
      if (mode === 'sync') toC.sendSync(msg);
      else await toC.send(msg);
      const back = mode === 'sync' ? fromC.receiveSync({ timeout: 10_000 }) : await fromC.receive({ timeout: 10_000 });
      trips.push(performance.now() - t0);
      assert.deepEqual(back, Buffer.from(msg).reverse(), `message ${k}`);
    }
    ok(await echo.end(), `echoed ${N}\n`);
    trips.sort((a, b) => a - b);
    assert.ok(trips[N / 2]! < 25, `median round trip ${trips[N / 2]!.toFixed(1)} ms (1 ms of it the echo's delay)`);
  });

  test(`a C receiver wakes a Node sender waiting for room at once (Node ${mode}: ${mode === 'sync' ? 'futex' : 'doorbell'})`, async (t) => {
    const ch = nodeChannel(t, 4096);
    // Messages of the largest size: two fill the ring, so every send waits
    // for the C receiver, which dawdles 2 ms per message.
    const N = 60;
    const receiver = await peer(t, [ch.name, 'recv', N, 'pause=1:2000']);
    const waits: number[] = [];
    let sum = FNV_START;
    for (let k = 0; k < N; k++) {
      const msg = Buffer.alloc(ch.maxMessage, k);
      sum = checksum(sum, msg);
      const t0 = performance.now();
      if (mode === 'sync') ch.sendSync(msg, { timeout: 10_000 });
      else await ch.send(msg, { timeout: 10_000 });
      waits.push(performance.now() - t0);
    }
    assert.deepEqual(sumOf(ok(await receiver.end())), { count: N, sum });
    // Had C not woken it, a waiting sender would look again only after 100 ms
    // (and then find the ring empty: every other send would not wait at all).
    waits.sort((a, b) => a - b);
    const p75 = waits[Math.floor(N * 0.75)]!;
    assert.ok(p75 < 25, `75th percentile of the sends ${p75.toFixed(1)} ms`);
  });

  test(`a C sender committing wakes a Node sender waiting for the send lock at once (Node ${mode}: ${mode === 'sync' ? 'futex' : 'doorbell'})`, async (t) => {
    const ch = nodeChannel(t, 4096);
    const N = 10;
    const holder = await peer(t, [ch.name, 'reserve-hold', N, 20], 'pipe');
    const waits: number[] = [];
    for (let k = 0; k < N; k++) {
      await holder.line(new RegExp(`^reserved ${k}$`));
      const t0 = performance.now();
      if (mode === 'sync') ch.sendSync(`node ${k}`, { timeout: 10_000 });
      else await ch.send(`node ${k}`, { timeout: 10_000 });
      waits.push(performance.now() - t0);
      holder.child.stdin!.write('next\n');
    }
    holder.child.stdin!.end();
    ok(await holder.end());
    for (let k = 0; k < N; k++) {
      assert.deepEqual(ch.tryReceive(), Buffer.alloc(100, k), `C's message ${k} first`);
      assert.equal(ch.tryReceive()?.toString(), `node ${k}`);
    }
    waits.sort((a, b) => a - b);
    assert.ok(waits[N / 2]! < 60, `median wait for the lock ${waits[N / 2]!.toFixed(1)} ms (the C sender holds it 20 ms)`);
  });

  test(`Node wakes a C sender waiting for room at once (Node ${mode} receiver)`, async (t) => {
    // Largest messages: two fill the ring, so the C sender waits for each
    // receive, and Node dawdles 2 ms before each. Had the C sender slept
    // without saying so (slot waiting = 1), it would look again only after 100 ms.
    const ch = nodeChannel(t, 4096);
    const N = 60;
    const sender = await peer(t, [ch.name, 'send', N, 'size=max', 'stats']);
    let sum = FNV_START;
    for (let k = 0; k < N; k++) {
      await pause(mode, 2);
      sum = checksum(sum, mode === 'sync' ? ch.receiveSync({ timeout: 10_000 }) : await ch.receive({ timeout: 10_000 }));
    }
    const out = ok(await sender.end());
    assert.deepEqual(sumOf(out), { count: N, sum });
    const p75 = Number(/p75 (\d+)/.exec(out)![1]) / 1000;
    assert.ok(p75 < 25, `75th percentile of the C sends ${p75} ms`);
  });

  test(`a C sender killed -9 while Node waits to receive: PeerGoneError (Node ${mode})`, async (t) => {
    const ch = nodeChannel(t);
    const sender = await reapedPeer(t, [ch.name, 'hold-send']);
    await sender.line(/sent/);
    assert.equal((mode === 'sync' ? ch.receiveSync({ timeout: 5000 }) : await ch.receive({ timeout: 5000 })).toString(), 'from C');
    const t0 = performance.now();
    let caught: unknown;
    if (mode === 'sync') {
      // The event loop is blocked: a shell kills the peer.
      const killer = spawn('sh', ['-c', `sleep 0.3; kill -9 ${sender.pid}`], { stdio: 'ignore' });
      try {
        ch.receiveSync({ timeout: 10_000 });
      } catch (err) {
        caught = err;
      }
      await collect(killer);
    } else {
      setTimeout(() => process.kill(sender.pid, 'SIGKILL'), 300);
      caught = await ch.receive({ timeout: 10_000 }).catch((err: unknown) => err);
    }
    assert.ok(caught instanceof PeerGoneError, `PeerGoneError, got ${String(caught)}`);
    assert.equal(caught.code, 'EPIPE');
    assert.ok(performance.now() - t0 < 3000, 'noticed promptly');
  });

  test(`a C receiver killed -9 while a Node sender waits for room: PeerGoneError (Node ${mode})`, async (t) => {
    const ch = nodeChannel(t, 4096);
    const receiver = await reapedPeer(t, [ch.name, 'hold-recv']);
    assert.equal(ch.trySend('first'), true);
    await receiver.line(/got 5/);
    while (ch.trySend(Buffer.alloc(700))) {
      // fill the ring
    }
    const t0 = performance.now();
    let caught: unknown;
    if (mode === 'sync') {
      const killer = spawn('sh', ['-c', `sleep 0.3; kill -9 ${receiver.pid}`], { stdio: 'ignore' });
      try {
        ch.sendSync(Buffer.alloc(700), { timeout: 10_000 });
      } catch (err) {
        caught = err;
      }
      await collect(killer);
    } else {
      setTimeout(() => process.kill(receiver.pid, 'SIGKILL'), 300);
      caught = await ch.send(Buffer.alloc(700), { timeout: 10_000 }).catch((err: unknown) => err);
    }
    assert.ok(caught instanceof PeerGoneError, `PeerGoneError, got ${String(caught)}`);
    assert.equal(caught.code, 'EPIPE');
    assert.ok(performance.now() - t0 < 3000, 'noticed promptly');
  });
}

const NODE_SENDER = `
  import { Channel } from 'interprocess';
  const [name, mode, count, id] = process.argv.slice(1);
  const ch = Channel.open(name);
  let h = 2166136261;
  const mix = (b) => { h = Math.imul(h ^ b, 16777619) >>> 0; };
  let s = Number(id);
  const rnd = () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) >>> 8;
  for (let k = 0; k < Number(count); k++) {
    const len = k % 50 === 1 ? ch.maxMessage : 8 + (rnd() % 2000);
    const b = Buffer.alloc(len, k);
    b.writeUInt32LE(Number(id), 0);
    b.writeUInt32LE(k, 4);
    for (const x of [len & 255, (len >>> 8) & 255, (len >>> 16) & 255, len >>> 24]) mix(x);
    for (const x of b) mix(x);
    await ch.send(b, { timeout: 20000 });
  }
  console.log(count + ' ' + h);
  if (mode === 'hold') { console.log('done'); setInterval(() => {}, 1000); } else ch.close();
`;

test('two C senders and a Node sender into one Node receiver: every message, each sender\'s in its order', async (t) => {
  const ch = nodeChannel(t, 8192);
  const N = 3000;
  const cSenders = await holdingSenders(t, ch.name, N, [1, 2]);
  const nodeSender = nodePeer(t, NODE_SENDER, [ch.name, 'hold', N, 3]);
  const sums = new Map<number, number>();
  const next = new Map<number, number>();
  for (let i = 0; i < 3 * N; i++) {
    const m = await ch.receive({ timeout: 20_000 });
    assert.ok(m.length >= 8, `message ${i}: ${m.length} bytes`);
    const id = m.readUInt32LE(0);
    const k = m.readUInt32LE(4);
    assert.equal(k, next.get(id) ?? 0, `sender ${id} in order`);
    next.set(id, k + 1);
    sums.set(id, checksum(sums.get(id) ?? FNV_START, m));
  }
  const expected = [...(await releaseSenders(cSenders, N)), sumOf(await nodeSender.line(new RegExp(`^${N} `)))];
  assert.deepEqual(
    [1, 2, 3].map((id) => ({ count: next.get(id), sum: sums.get(id) })),
    expected,
  );
  assert.equal(ch.tryReceive(), undefined);
});

test('a Node sender killed -9 while a C receiver waits: C gets the last message, then EPIPE', async (t) => {
  const ch = nodeChannel(t);
  const receiver = await peer(t, [ch.name, 'recv', -1]);
  const sender = nodePeer(t, NODE_SENDER, [ch.name, 'hold', 10, 3]);
  const sent = await sender.line(/^10 /);
  await sender.line(/done/);
  await new Promise((resolve) => setTimeout(resolve, 200));
  assert.equal(receiver.child.exitCode, null, 'the receiver waits while the sender lives');
  sender.child.kill('SIGKILL');
  const t0 = performance.now();
  const out = ok(await receiver.end(5000));
  assert.ok(performance.now() - t0 < 2000, 'noticed promptly');
  assert.equal(out, `${sent}\nend EPIPE\n`);
});

test('a Node sender that closes is simply absent: the C receiver waits for the next one', async (t) => {
  const ch = nodeChannel(t);
  const receiver = await peer(t, [ch.name, 'recv', 400, 'ids', 'view']);
  const first = sumOf(ok(await nodePeer(t, NODE_SENDER, [ch.name, 'close', 200, 3]).end()));
  await new Promise((resolve) => setTimeout(resolve, 300));
  assert.equal(receiver.child.exitCode, null, 'still waiting, with no sender attached');
  const second = sumOf(ok(await nodePeer(t, NODE_SENDER, [ch.name, 'close', 200, 4]).end()));
  const out = ok(await receiver.end()).trim().split(' ');
  assert.deepEqual(out.slice(2), [`3:${first.sum}`, `4:${second.sum}`]);
});

test('a Node receiver killed -9 while a C sender waits for room: C gets EPIPE', async (t) => {
  const ch = nodeChannel(t, 4096);
  const receiver = nodePeer(
    t,
    `import { Channel } from 'interprocess';
     const ch = Channel.open(process.argv[1]);
     await ch.receive({ timeout: 10000 });
     console.log('got');
     setInterval(() => {}, 1000);`,
    [ch.name],
  );
  const sender = await peer(t, [ch.name, 'send', 100000]);
  await receiver.line(/got/);
  await new Promise((resolve) => setTimeout(resolve, 200));
  assert.equal(sender.child.exitCode, null, 'the C sender waits for room');
  receiver.child.kill('SIGKILL');
  const r = await sender.end(5000);
  assert.equal(r.code, 4, r.stderr);
  assert.match(r.stdout, /^failed EPIPE at \d+\n$/);
});

for (const mode of ['sync', 'async'] as const) {
  test(`a C sender killed holding the send lock: a Node sender waiting for it takes it over (Node ${mode})`, async (t) => {
    const ch = nodeChannel(t, 4096);
    const dying = await reapedPeer(t, [ch.name, 'reserve-die', 1000, 300]);
    await dying.line(/reserved/);
    const tx = Channel.open(ch.name);
    t.after(() => tx.close());
    const t0 = performance.now();
    if (mode === 'sync') tx.sendSync('after the crash', { timeout: 5000 });
    else await tx.send('after the crash', { timeout: 5000 });
    assert.ok(performance.now() - t0 >= 250, 'waited for the lock while its holder lived');
    await dying.end();
    assert.equal(ch.receiveSync({ timeout: 1000 }).toString(), 'after the crash');
    assert.equal(ch.tryReceive(), undefined, 'the half-written record never arrives');
  });
}

test('a Node sender killed holding a reservation: a C sender takes the lock over', async (t) => {
  const ch = nodeChannel(t, 4096);
  const dying = nodePeer(
    t,
    `import { Channel } from 'interprocess';
     const ch = Channel.open(process.argv[1]);
     const view = ch.tryReserve(1000);
     if (!view) throw new Error('no reservation');
     view.fill(0xee);
     console.log('reserved');
     setInterval(() => {}, 1000);`,
    [ch.name],
  );
  await dying.line(/reserved/);
  const sender = await peer(t, [ch.name, 'send', 200, 'timeout=5000']);
  await new Promise((resolve) => setTimeout(resolve, 200));
  assert.equal(sender.child.exitCode, null, 'the C sender waits while the holder lives');
  dying.child.kill('SIGKILL');
  let got = FNV_START;
  for (let k = 0; k < 200; k++) got = checksum(got, await ch.receive({ timeout: 5000 }));
  assert.deepEqual(sumOf(ok(await sender.end(10_000))), { count: 200, sum: got });
  assert.equal(ch.tryReceive(), undefined, 'the half-written record never arrives');
});

test('a channel created by C is one Node opens (header, layout, doorbell names)', async (t) => {
  const name = await cChannel(t, 8192);
  const ch = Channel.open(name);
  t.after(() => ch.close());
  assert.equal(ch.capacity, 8192);
  assert.equal(ch.maxMessage, 4088);
  const receiver = await peer(t, [name, 'recv', 300, 'view']);
  let sum = FNV_START;
  for (const m of messages(8192, 4088, 300, 9)) {
    sum = checksum(sum, m);
    await ch.send(m, { timeout: 10_000 });
  }
  assert.deepEqual(sumOf(ok(await receiver.end())), { count: 300, sum });
});

test('nothing is left behind', () => {
  assert.deepEqual(shmEntries(`/ipt-${process.pid}-chc`), []);
});
