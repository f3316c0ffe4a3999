// Channel with several senders, dying peers and stale channels, across real
// processes (docs/channel.md): slots and the send lock, a holder SIGKILLed
// mid-reservation, senders_waiting bookkeeping, peer death both ways, one
// receiver at a time, async iteration, Channel.inspect / replaceStale, and
// close() during pending waits.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, type Hash } from 'node:crypto';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { Worker } from 'node:worker_threads';
import { AlreadyExistsError, Channel, InvalidArgumentError, IpcError, PeerGoneError, TimeoutError, posix } from 'interprocess';
import { channelWorker, collect, killOnExit, rejectsLike, settled, shmEntries, spawnNode, runThenFill, testChannel, throwsLike, type RunResult, uniqueName, unlinkQuietly, until, waitForLine, withTimeout } from './helpers.js';

// ---- layout (docs/channel.md), as Int32 indices into the object ------------

const HEAD = 128 / 4;
const SEND_LOCK = 320 / 4;
const SENDERS_WAITING = 260 / 4;
const RECEIVER_PID = 76 / 4;
const RECEIVER_WAITING = 256 / 4;
const slotPid = (s: number): number => (384 + 8 * s) / 4;
const slotWaiting = (s: number): number => (384 + 8 * s + 4) / 4;

/** The raw words of a channel, through a plain POSIX shared memory mapping (it stays valid after close). */
function raw(name: string): Int32Array {
  const shm = posix.SharedMemory.open(name);
  try {
    return new Int32Array(shm.buffer);
  } finally {
    shm.close();
  }
}

/** The slot index holding `pid`, or -1. */
function slotOf(words: Int32Array, pid: number): number {
  for (let s = 0; s < 64; s++) if (Atomics.load(words, slotPid(s)) === pid) return s;
  return -1;
}

const align8 = (n: number): number => (n + 7) & ~7;

// ---- fixtures ----------------------------------------------------------------

/** A channel made for one test, closed and unlinked after it. */
const channel = (t: TestContext, capacity = 1 << 16): Channel => testChannel(t, 'cs', capacity);

/** Another handle on the channel (closed after the test). */
function handle(t: TestContext, name: string): Channel {
  const h = Channel.open(name);
  t.after(() => h.close());
  return h;
}

/** A child Node process running `code` (killed after the test), stdin piped when asked. */
function child(t: TestContext, code: string, args: string[], stdin = false): ChildProcess {
  return killOnExit(t, spawnNode(code, args, stdin ? { stdio: ['pipe', 'pipe', 'pipe'] } : {}));
}

/** SIGKILLs `c` and resolves once it is reaped (so that its pid no longer looks alive). */
async function kill(c: ChildProcess, done: Promise<RunResult>): Promise<RunResult> {
  c.kill('SIGKILL');
  const r = await withTimeout(done, 10_000, 'the killed child exits');
  assert.equal(r.signal, 'SIGKILL');
  return r;
}

/** Marks a promise that a test awaits later as handled now (no unhandledRejection if an assertion fails first). */
function later<T>(p: Promise<T>): Promise<T> {
  p.catch(() => {});
  return p;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function lastJson(r: RunResult): any {
  const lines = r.stdout.trim().split('\n').filter((l) => l.startsWith('{'));
  assert.ok(lines.length, `no JSON line from the child; stdout: ${r.stdout} stderr: ${r.stderr}`);
  return JSON.parse(lines[lines.length - 1]!);
}

// ---- child programs ---------------------------------------------------------

/** Sends `count` messages tagged (id, seq), of varied sizes, in one of four ways; prints its sha256. */
const TAGGED_SENDER = `
  import { Channel } from 'interprocess';
  import { createHash } from 'node:crypto';
  const [name, idArg, mode, countArg] = process.argv.slice(1);
  const id = Number(idArg), count = Number(countArg);
  const ch = Channel.open(name);
  const h = createHash('sha256');
  let seed = id * 7919 + 17;
  const rnd = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff);
  console.log('ready');
  await new Promise((resolve) => process.stdin.once('data', resolve));
  for (let i = 0; i < count; i++) {
    const len = i % 257 === 100 ? ch.maxMessage : 8 + (rnd() % 1500);
    const b = Buffer.allocUnsafe(len);
    b.writeUInt32LE(id, 0);
    b.writeUInt32LE(i, 4);
    for (let k = 8; k < len; k++) b[k] = (id * 31 + i + k * 7) & 255;
    h.update(b);
    if (mode === 'sendSync') ch.sendSync(b, { timeout: 20000 });
    else if (mode === 'send') await ch.send(b, { timeout: 20000 });
    else if (mode === 'reserveSync') { ch.reserveSync(len, { timeout: 20000 }).set(b); ch.commit(); }
    else { (await ch.reserve(len, { timeout: 20000 })).set(b); ch.commit(); }
  }
  console.log(JSON.stringify({ id, digest: h.digest('hex') }));
  ch.close();
`;

/** Receives senders × count tagged messages; reports per-sender next seq, digests, order errors. */
const TAGGED_RECEIVER = `
  import { Channel } from 'interprocess';
  import { createHash } from 'node:crypto';
  const [name, sendersArg, countArg] = process.argv.slice(1);
  const senders = Number(sendersArg), count = Number(countArg);
  const ch = Channel.open(name);
  const next = new Array(senders).fill(0);
  const hashes = next.map(() => createHash('sha256'));
  const errors = [];
  for (let n = 0; n < senders * count; n++) {
    const m = await ch.receive({ timeout: 20000 });
    const id = m.readUInt32LE(0), seq = m.readUInt32LE(4);
    if (!(id < senders) || seq !== next[id]) { errors.push({ n, id, seq, expected: next[id] }); if (errors.length > 10) break; continue; }
    next[id] = seq + 1;
    hashes[id].update(m);
  }
  const extra = ch.tryReceive();
  console.log(JSON.stringify({ next, digests: hashes.map((h) => h.digest('hex')), errors, extra: extra === undefined ? null : extra.length }));
  ch.close();
`;

/** Attaches as the receiver (without taking a message), says so, and stays. */
const ATTACHED_RECEIVER = `
  import { Channel } from 'interprocess';
  const [name, dieAfter] = process.argv.slice(1);
  const ch = Channel.open(name);
  if (ch.tryReceive() !== undefined) { console.log('unexpected message'); process.exit(1); }
  console.log('attached');
  if (dieAfter) setTimeout(() => process.kill(process.pid, 'SIGKILL'), Number(dieAfter));
  setInterval(() => {}, 1000);
`;

/** Sends one greeting, then each stdin line as a message; stays. */
const LINE_SENDER = `
  import { Channel } from 'interprocess';
  const [name, tag] = process.argv.slice(1);
  const ch = Channel.open(name);
  ch.sendSync('hello from ' + tag);
  console.log('sent');
  process.stdin.setEncoding('utf8').on('data', (d) => {
    for (const line of d.split('\\n').filter(Boolean)) {
      if (line === 'die') { ch.sendSync('last words'); process.kill(process.pid, 'SIGKILL'); }
      ch.sendSync(line);
      console.log('sent ' + line);
    }
  });
`;

/** Fills the ring with 500-byte messages, prints 'full <n>', then waits (sync or async) to send one more. */
const FILLER = `
  import { Channel } from 'interprocess';
  const [name, mode] = process.argv.slice(1);
  const ch = Channel.open(name);
  let n = 0;
  while (ch.trySend(Buffer.alloc(500, n & 255))) n++;
  while (ch.trySend(Buffer.alloc(0))) n++; // to the last byte
  console.log('full ' + n);
  const t0 = performance.now();
  try {
    if (mode === 'sync') ch.sendSync(Buffer.from('one more'), { timeout: 20000 });
    else await ch.send(Buffer.from('one more'), { timeout: 20000 });
    console.log(JSON.stringify({ sent: true, ms: performance.now() - t0 }));
  } catch (e) {
    console.log(JSON.stringify({ sent: false, error: e.constructor.name, code: e.code, ms: performance.now() - t0 }));
  }
  ch.close();
`;

// ---- several senders ---------------------------------------------------------

for (const receiveMode of ['async', 'sync'] as const) {
  test(`4 sender processes (sendSync, send, reserveSync+commit, reserve+commit) into one ${receiveMode} receiver: each message once, per-sender order, checksums`, async (t) => {
    const ch = channel(t, 1 << 16);
    const N = 3000;
    const modes = ['sendSync', 'send', 'reserveSync', 'reserve'];
    const senders = modes.map((mode, id) => child(t, TAGGED_SENDER, [ch.name, String(id), mode, String(N)], true));
    const done = senders.map((c) => collect(c));
    await Promise.all(senders.map((c) => waitForLine(c, /^ready/)));
    const info = Channel.inspect(ch.name);
    assert.equal(info.liveSenders, 0, 'opening is not attaching');
    for (const c of senders) c.stdin!.end('go\n'); // all start together

    const next = [0, 0, 0, 0];
    const hashes: Hash[] = modes.map(() => createHash('sha256'));
    let switches = 0;
    let previous = -1;
    for (let n = 0; n < 4 * N; n++) {
      const m = receiveMode === 'sync' ? ch.receiveSync({ timeout: 20000 }) : await ch.receive({ timeout: 20000 });
      assert.ok(m.length >= 8, `message ${n} has its tag (${m.length} bytes)`);
      const id = m.readUInt32LE(0);
      const seq = m.readUInt32LE(4);
      assert.ok(id < 4, `message ${n}: sender id ${id}`);
      assert.equal(seq, next[id], `message ${n}: sender ${id} sends its messages in order, exactly once`);
      next[id]!++;
      hashes[id]!.update(m);
      if (id !== previous) switches++;
      previous = id;
    }
    assert.equal(ch.tryReceive(), undefined, 'nothing more than was sent');
    assert.deepEqual(next, [N, N, N, N]);
    for (let id = 0; id < 4; id++) {
      const r = await withTimeout(done[id]!, 20_000, `sender ${id} exits`);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(hashes[id]!.digest('hex'), lastJson(r).digest, `sender ${id} (${modes[id]}): same bytes`);
    }
    assert.ok(switches > 4, `the senders' messages interleave (${switches} changes of sender)`);
    assert.equal(Atomics.load(raw(ch.name), SENDERS_WAITING), 0, 'no sender left marked asleep');
    assert.deepEqual(Channel.inspect(ch.name).senderPids, [], 'every sender gave its slot back on close');
  });
}

test('senders taking turns: each finds the head where the other left it (its own last look is stale), also at the ring\'s end', (t) => {
  const ch = channel(t, 4096);
  const a = handle(t, ch.name);
  const b = handle(t, ch.name);
  const words = raw(ch.name);
  let expect = 0;
  const sent: string[] = [];
  const send = (h: Channel, text: string): void => {
    h.sendSync(text);
    sent.push(text);
    const record = align8(8 + Buffer.byteLength(text));
    // A record that does not fit before the ring's end goes to its start (the rest skipped).
    if ((expect % 4096) + record > 4096) expect += 4096 - (expect % 4096);
    expect += record;
    assert.equal(Atomics.load(words, HEAD) >>> 0, expect, `head after '${text.slice(0, 12)}...'`);
  };
  // a, then b (a's last look at the head is now stale), then a again: it must not write over b's record.
  send(a, 'a1');
  send(b, 'b1 a little longer');
  send(a, 'a2');
  send(b, 'b2');
  // Near the ring's end: records that wrap, sent by each in turn.
  for (let i = 0; i < 40; i++) {
    send(i % 2 ? a : b, `${i % 2 ? 'a' : 'b'}${i} `.padEnd(90 + (i % 7) * 13, '.'));
    assert.deepEqual(ch.receiveSync({ timeout: 1000 }).toString(), sent[0]);
    sent.shift();
  }
  for (const text of sent) assert.equal(ch.receiveSync({ timeout: 1000 }).toString(), text);
  assert.equal(ch.tryReceive(), undefined);
});

// A sender keeps the tail it last read, and reads the receiver's tail again only when that is not
// enough room (src/channel.ts #room). A tail read gigabytes of other senders' messages ago says
// nothing: counted mod 2^32, head - tail is then any number, negative (2 to 4 GiB later) or small
// (about 4 GiB later). Holding the lock, a sender that finds others sent since it last looked
// reads the tail again.
test('a sender whose last look at the tail is 3 GiB, or just under 4 GiB, of other senders\' messages old finds a full ring full', (t) => {
  const ch = channel(t, 65536);
  const words = raw(ch.name);
  const TAIL = 192 / 4;
  const [early1, early2, busy] = [handle(t, ch.name), handle(t, ch.name), handle(t, ch.name)];
  for (const h of [early1, early2]) {
    h.sendSync('early');
    assert.equal(ch.receiveSync({ timeout: 2000 }).toString(), 'early');
  }
  const t0 = Atomics.load(words, TAIL) >>> 0; // (both early senders' last look)
  const check = (early: Channel, filled: Buffer[], when: string): void => {
    assert.equal(early.trySend(Buffer.alloc(0)), false, `${when}: the ring is full, the early sender must not write`);
    for (const [i, m] of filled.entries()) assert.deepEqual(ch.receiveSync({ timeout: 2000 }), m, `${when}: message ${i} intact`);
    assert.equal(ch.tryReceive(), undefined, `${when}: nothing more`);
  };
  check(early1, runThenFill(ch, busy, t0, 3 * 2 ** 30), '3 GiB later');
  check(early2, runThenFill(ch, busy, t0, 2 ** 32 - 32768), 'just under 4 GiB later');
});

test('4 handles in ONE process send concurrently, each in its own slot (send and reserve+commit); a receiver process gets each message once, in order', async (t) => {
  const ch = channel(t, 8192); // small: the handles keep waiting for room and for the lock
  const N = 1500;
  const receiver = child(t, TAGGED_RECEIVER, [ch.name, '4', String(N)]);
  const done = collect(receiver);
  const handles = [0, 1, 2, 3].map(() => handle(t, ch.name));
  const hashes: Hash[] = handles.map(() => createHash('sha256'));
  let seed = 99;
  const rnd = (): number => (seed = (seed * 1103515245 + 12345) & 0x7fffffff);
  const message = (id: number, i: number): Buffer => {
    const len = i % 300 === 7 ? ch.maxMessage : 8 + (rnd() % 700);
    const b = Buffer.alloc(len, (id * 13 + i) & 255);
    b.writeUInt32LE(id, 0);
    b.writeUInt32LE(i, 4);
    hashes[id]!.update(b);
    return b;
  };
  const sendOne = async (h: Channel, id: number, i: number): Promise<void> => {
    const b = message(id, i);
    if (id % 2 === 0) await h.send(b, { timeout: 20000 });
    else {
      const view = await h.reserve(b.length, { timeout: 20000 });
      view.set(b);
      // Now and then hold the lock across a turn of the event loop: the other handles must wait for it.
      if (i % 100 === 50) await sleep(0);
      h.commit();
    }
  };
  for (let id = 0; id < 4; id++) await sendOne(handles[id]!, id, 0);
  const info = Channel.inspect(ch.name);
  assert.deepEqual(info.senderPids, [process.pid, process.pid, process.pid, process.pid], 'four slots, one per handle');
  assert.equal(info.liveSenders, 4);
  await Promise.all(
    handles.map(async (h, id) => {
      for (let i = 1; i < N; i++) await sendOne(h, id, i);
    }),
  );
  const r = await withTimeout(done, 20_000, 'the receiver exits');
  assert.equal(r.code, 0, r.stderr);
  const got = lastJson(r);
  assert.deepEqual(got.errors, [], 'per-handle order, nothing lost or repeated');
  assert.deepEqual(got.next, [N, N, N, N]);
  assert.equal(got.extra, null, 'nothing extra');
  assert.deepEqual(got.digests, hashes.map((h) => h.digest('hex')));
  for (const h of handles) h.close();
  assert.deepEqual(Channel.inspect(ch.name).senderPids, [], 'closing gives the four slots back');
  assert.equal(Atomics.load(raw(ch.name), SENDERS_WAITING), 0);
});

test('64 sender slots: the 65th live sender (handle or process) gets EBUSY; a SIGKILLed sender\'s slot goes to the next sender', async (t) => {
  const ch = channel(t, 4096);
  const handles: Channel[] = [];
  for (let i = 0; i < 63; i++) {
    const h = handle(t, ch.name);
    assert.equal(h.trySend(`x${i}`), true);
    handles.push(h);
  }
  const holder = child(
    t,
    `import { Channel } from 'interprocess';
     const ch = Channel.open(process.argv[1]);
     ch.sendSync('from the 64th');
     console.log('attached');
     setInterval(() => {}, 1000);`,
    [ch.name],
  );
  const holderDone = collect(holder);
  await waitForLine(holder, /attached/);
  const words = raw(ch.name);
  const slot = slotOf(words, holder.pid!);
  assert.ok(slot >= 0, 'the 64th sender holds a slot');
  let info = Channel.inspect(ch.name);
  assert.equal(info.senderPids.length, 64);
  assert.equal(info.liveSenders, 64);

  const extra = handle(t, ch.name);
  throwsLike(() => extra.trySend('65th'), InvalidArgumentError, { code: 'EBUSY' });
  await rejectsLike(extra.send('65th', { timeout: 1000 }), InvalidArgumentError, { code: 'EBUSY' });
  const TRY = `import { Channel } from 'interprocess';
    const ch = Channel.open(process.argv[1]);
    try { ch.trySend('from another process'); console.log('attached'); } catch (e) { console.log(e.code); }
    ch.close();`;
  const r65 = await collect(child(t, TRY, [ch.name]));
  assert.equal(r65.stdout.trim(), 'EBUSY', r65.stderr);

  await kill(holder, holderDone);
  info = Channel.inspect(ch.name);
  assert.ok(info.senderPids.includes(holder.pid!), 'the dead sender still shows until replaced');
  assert.equal(info.liveSenders, 63);

  const rNext = await collect(child(t, TRY, [ch.name]));
  assert.equal(rNext.stdout.trim(), 'attached', `the dead sender's slot is reused: ${rNext.stderr}`);
  assert.equal(extra.trySend('65th, now in'), true, 'that process closed: its slot is free again');
  info = Channel.inspect(ch.name);
  assert.ok(!info.senderPids.includes(holder.pid!), 'the dead pid is gone from the slots');
  assert.equal(Atomics.load(words, slotPid(slot)), process.pid, 'the handle took the slot of the dead sender');

  const got: string[] = [];
  for (let m = ch.tryReceive(); m; m = ch.tryReceive()) got.push(m.toString());
  assert.deepEqual(got, [...handles.map((_, i) => `x${i}`), 'from the 64th', 'from another process', '65th, now in']);
});

// ---- a sender that dies holding the send lock ---------------------------------

const HOLDER = `
  import { Channel } from 'interprocess';
  const [name, len] = process.argv.slice(1);
  const ch = Channel.open(name);
  const view = ch.tryReserve(Number(len));
  if (!view) { console.log('no room'); process.exit(1); }
  view.fill(0x41);
  console.log('reserved');
  setInterval(() => {}, 1000);
`;

for (const variant of ['async send waiting in this process', 'sendSync waiting in another process', 'sendSync in this process after the kill'] as const) {
  test(`a sender SIGKILLed holding the send lock (tryReserve, no commit): ${variant} takes the lock over; the receiver sees no trace`, async (t) => {
    const ch = channel(t, 4096);
    // Bring head to 16 bytes before the end of the ring (7 records of 512, one
    // of 496): the holder's 100-byte record (112 bytes) must wrap, so it writes
    // a wrap marker there beyond head.
    for (const len of [500, 500, 500, 500, 500, 500, 500, 488]) {
      assert.equal(ch.trySend(Buffer.alloc(len, 0x30)), true);
      assert.equal(ch.tryReceive()!.length, len);
    }
    const words = raw(ch.name);
    assert.equal(Atomics.load(words, HEAD) & 4095, 4080);
    const holder = child(t, HOLDER, [ch.name, '100']);
    const holderDone = collect(holder);
    await waitForLine(holder, /reserved/);
    const holderSlot = slotOf(words, holder.pid!);
    assert.equal(Atomics.load(words, SEND_LOCK), holderSlot + 1, 'the holder has the send lock');
    assert.equal(ch.tryReceive(), undefined, 'nothing published');
    assert.equal(ch.trySend('x'), false, 'the lock is held');

    const message = 'takeover'; // a 16-byte record: exactly where the dead holder wrote its wrap marker
    let t0: number;
    if (variant === 'async send waiting in this process') {
      const p = later(ch.send(message, { timeout: 10000 }));
      await sleep(300);
      assert.equal(await settled(p), false, 'waits for the lock while the holder lives');
      t0 = performance.now();
      await kill(holder, holderDone);
      await withTimeout(p, 10_000, 'the send goes through');
    } else if (variant === 'sendSync waiting in another process') {
      const waiter = child(
        t,
        `import { Channel } from 'interprocess';
         const ch = Channel.open(process.argv[1]);
         ch.sendSync(process.argv[2], { timeout: 10000 });
         console.log('sent');
         ch.close();`,
        [ch.name, message],
      );
      const waiterDone = collect(waiter);
      await until(() => Atomics.load(words, SENDERS_WAITING) === 1, 'the second sender sleeps');
      await sleep(200);
      assert.equal(waiter.exitCode, null, 'it waits while the holder lives');
      t0 = performance.now();
      await kill(holder, holderDone);
      const r = await withTimeout(waiterDone, 10_000, 'the waiting sender finishes');
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /sent/);
    } else {
      t0 = performance.now();
      await kill(holder, holderDone);
      ch.sendSync(message, { timeout: 10000 });
    }
    const took = performance.now() - t0;
    assert.ok(took < 3000, `the lock was taken over in ${Math.round(took)} ms`);

    assert.equal(ch.trySend(Buffer.alloc(200, 0x42)), true, 'the lock is free again');
    const got: Buffer[] = [];
    for (let m = ch.tryReceive(); m; m = ch.tryReceive()) got.push(m);
    assert.deepEqual(got.map((m) => m.length), [message.length, 200], 'exactly the two messages sent after the death');
    assert.equal(got[0]!.toString(), message);
    assert.ok(got[1]!.every((b) => b === 0x42), 'no byte of the dead holder shows');
    assert.equal(Atomics.load(words, SEND_LOCK), 0);
    assert.equal(Atomics.load(words, SENDERS_WAITING), 0);
  });
}

for (const mode of ['sync', 'async'] as const) {
  test(`a sender SIGKILLed asleep waiting for room (${mode}) leaves senders_waiting (byte 260) at 0 once its slot is reused and nobody waits`, async (t) => {
    const ch = channel(t, 4096);
    const words = raw(ch.name);
    const first = child(t, FILLER, [ch.name, mode]);
    const firstDone = collect(first);
    const n1 = Number((await waitForLine(first, /^full /)).split(' ')[1]);
    assert.equal(slotOf(words, first.pid!), 0, 'the first sender has slot 0');
    await until(() => Atomics.load(words, SENDERS_WAITING) === 1 && Atomics.load(words, slotWaiting(0)) !== 0, 'the sender sleeps');
    assert.equal(Atomics.load(words, slotWaiting(0)), mode === 'sync' ? 1 : 2, 'on the futex (sync) or its doorbell (async)');
    await kill(first, firstDone);

    // Its messages are there; its last one never was.
    for (let i = 0; i < n1; i++) assert.notEqual(ch.tryReceive(), undefined);
    assert.equal(ch.tryReceive(), undefined);

    // The next sender takes slot 0 over, fills the ring and waits in turn.
    const second = child(t, FILLER, [ch.name, mode]);
    const secondDone = collect(second);
    const n2 = Number((await waitForLine(second, /^full /)).split(' ')[1]);
    assert.equal(slotOf(words, second.pid!), 0, 'the dead sender\'s slot is reused');
    // (With a correct count, senders_waiting is 0 until the second sender sleeps; give it time to.)
    await until(() => Atomics.load(words, SENDERS_WAITING) >= 1 && Atomics.load(words, slotWaiting(0)) !== 0, 'the second sender sleeps');
    await sleep(300);
    assert.equal(Atomics.load(words, SENDERS_WAITING), 1, 'one sender asleep: the dead one is no longer counted');
    assert.equal(Atomics.load(words, slotWaiting(0)), mode === 'sync' ? 1 : 2);
    for (let i = 0; i < n2; i++) assert.notEqual((await ch.receive({ timeout: 10000 })).toString(), 'one more');
    assert.equal((await ch.receive({ timeout: 10000 })).toString(), 'one more');
    const r = await withTimeout(secondDone, 10_000, 'the second sender exits');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(lastJson(r).sent, true);
    assert.equal(Atomics.load(words, SENDERS_WAITING), 0, 'nobody waits: senders_waiting is back to 0');
    assert.equal(Atomics.load(words, slotWaiting(0)), 0);
    assert.equal(Atomics.load(words, slotPid(0)), 0);
  });
}

for (const mode of ['sync', 'async'] as const) {
  test(`a sender SIGKILLed asleep waiting for room (${mode}) is freed by the receiver's next wake-ups, with no new sender needed`, async (t) => {
    const ch = channel(t, 4096);
    const words = raw(ch.name);
    const first = child(t, FILLER, [ch.name, mode]);
    const firstDone = collect(first);
    const n1 = Number((await waitForLine(first, /^full /)).split(' ')[1]);
    await until(() => Atomics.load(words, SENDERS_WAITING) === 1 && Atomics.load(words, slotWaiting(0)) !== 0, 'the sender sleeps');
    await kill(first, firstDone);
    for (let i = 0; i < n1; i++) assert.notEqual(ch.tryReceive(), undefined);
    // Draining past half the ring woke the senders: the futex woke nobody (or the doorbell was
    // refused), so the dead sleeper's slot was freed rather than woken in vain forever after.
    assert.equal(Atomics.load(words, SENDERS_WAITING), 0, 'senders_waiting back to 0');
    assert.equal(Atomics.load(words, slotWaiting(0)), 0);
    assert.equal(Atomics.load(words, slotPid(0)), 0, 'the slot is free');
    assert.deepEqual(Channel.inspect(ch.name).senderPids, []);
  });
}

// ---- peer death: the receiver's side -------------------------------------------

test('the only sender dies right after publishing: an async receiver waiting gets its last message first, then PeerGoneError EPIPE promptly', async (t) => {
  const ch = channel(t);
  const sender = child(t, LINE_SENDER, [ch.name, 'A'], true);
  const done = collect(sender);
  await waitForLine(sender, /^sent/);
  sender.stdin!.write('m1\nm2\n');
  await waitForLine(sender, /sent m2/);
  const got = [(await ch.receive({ timeout: 5000 })).toString(), (await ch.receive({ timeout: 5000 })).toString(), (await ch.receive({ timeout: 5000 })).toString()];
  assert.deepEqual(got, ['hello from A', 'm1', 'm2']);
  const waiting = later(ch.receive({ timeout: 10000 }));
  await sleep(200);
  assert.equal(await settled(waiting), false, 'waits while the sender lives');
  sender.stdin!.write('die\n'); // publishes 'last words', then SIGKILLs itself
  assert.equal((await withTimeout(waiting, 10_000, 'the waiting receive returns')).toString(), 'last words');
  const r = await withTimeout(done, 10_000, 'the sender dies');
  assert.equal(r.signal, 'SIGKILL');
  const t0 = performance.now();
  await rejectsLike(ch.receive({ timeout: 10000 }), PeerGoneError, { code: 'EPIPE' });
  assert.ok(performance.now() - t0 < 3000, 'noticed promptly');
});

test('the only sender SIGKILLed before the receiver reads: what it published arrives, then PeerGoneError (async and sync)', async (t) => {
  const ch = channel(t);
  const sender = child(t, LINE_SENDER, [ch.name, 'B'], true);
  const done = collect(sender);
  await waitForLine(sender, /^sent/);
  sender.stdin!.write('one\ntwo\n');
  await waitForLine(sender, /sent two/);
  await kill(sender, done);
  assert.equal((await ch.receive({ timeout: 5000 })).toString(), 'hello from B');
  assert.equal(ch.receiveSync({ timeout: 5000 }).toString(), 'one');
  assert.equal((await ch.receive({ timeout: 5000 })).toString(), 'two');
  let t0 = performance.now();
  throwsLike(() => ch.receiveSync({ timeout: 10000 }), PeerGoneError, { code: 'EPIPE' });
  assert.ok(performance.now() - t0 < 3000, 'noticed promptly (sync)');
  t0 = performance.now();
  await rejectsLike(ch.receive({ timeout: 10000 }), PeerGoneError, { code: 'EPIPE' });
  assert.ok(performance.now() - t0 < 3000, 'noticed promptly (async)');
});

/** A sync receiver: on 'go' receives with receiveSync until an error; prints what it got and the error. */
const SYNC_RECEIVER = `
  import { Channel } from 'interprocess';
  const ch = Channel.open(process.argv[1]);
  console.log('ready');
  await new Promise((resolve) => process.stdin.once('data', resolve));
  const got = [];
  let t0 = performance.now();
  for (;;) {
    try {
      got.push(ch.receiveSync({ timeout: 10000 }).toString());
      t0 = performance.now();
    } catch (e) {
      console.log(JSON.stringify({ got, error: e.constructor.name, code: e.code, ms: performance.now() - t0 }));
      break;
    }
  }
  ch.close();
  process.exit(0);
`;

test('the only sender dies while a receiveSync waits (receiver process not its parent): last message first, then PeerGoneError', async (t) => {
  const ch = channel(t);
  const words = raw(ch.name);
  const sender = child(t, LINE_SENDER, [ch.name, 'C'], true);
  const senderDone = collect(sender);
  await waitForLine(sender, /^sent/);
  const receiver = child(t, SYNC_RECEIVER, [ch.name], true);
  const receiverDone = collect(receiver);
  await waitForLine(receiver, /ready/);
  receiver.stdin!.end('go\n');
  await until(() => Atomics.load(words, RECEIVER_WAITING) === 1, 'the receiver sleeps on the futex');
  sender.stdin!.write('die\n');
  const rs = await withTimeout(senderDone, 10_000, 'the sender dies');
  assert.equal(rs.signal, 'SIGKILL');
  const r = await withTimeout(receiverDone, 10_000, 'the receiver ends');
  assert.equal(r.code, 0, r.stderr);
  const out = lastJson(r);
  assert.deepEqual(out.got, ['hello from C', 'last words']);
  assert.equal(out.error, 'PeerGoneError');
  assert.equal(out.code, 'EPIPE');
  assert.ok(out.ms < 3000, `noticed in ${Math.round(out.ms)} ms`);
});

test('the only sender dies while its PARENT waits in receiveSync: PeerGoneError all the same (the unreaped child is a zombie, not alive)', async (t) => {
  const ch = channel(t);
  const sender = child(
    t,
    `import { Channel } from 'interprocess';
     const ch = Channel.open(process.argv[1]);
     ch.sendSync('first');
     console.log('sent');
     setTimeout(() => { ch.sendSync('last words'); process.kill(process.pid, 'SIGKILL'); }, 300);
     setInterval(() => {}, 1000);`,
    [ch.name],
  );
  await waitForLine(sender, /sent/);
  assert.equal(ch.receiveSync({ timeout: 5000 }).toString(), 'first');
  // The event loop is blocked from here on: Node cannot reap the child.
  assert.equal(ch.receiveSync({ timeout: 5000 }).toString(), 'last words');
  const t0 = performance.now();
  let caught: unknown;
  try {
    ch.receiveSync({ timeout: 4000 });
  } catch (err) {
    caught = err;
  }
  const took = performance.now() - t0;
  assert.ok(!(caught instanceof TimeoutError), `the dead sender was never noticed: ${String(caught)} after ${Math.round(took)} ms`);
  assert.ok(caught instanceof PeerGoneError, `expected PeerGoneError, got ${String(caught)}`);
  assert.ok(took < 3000);
});

test('two senders, one SIGKILLed: the receiver keeps waiting (sync and async, no error) and gets the survivor\'s messages; PeerGoneError once both are dead', async (t) => {
  const ch = channel(t);
  const a = child(t, LINE_SENDER, [ch.name, 'A'], true);
  const b = child(t, LINE_SENDER, [ch.name, 'B'], true);
  const aDone = collect(a);
  const bDone = collect(b);
  await Promise.all([waitForLine(a, /^sent/), waitForLine(b, /^sent/)]);
  const hellos = [(await ch.receive({ timeout: 5000 })).toString(), (await ch.receive({ timeout: 5000 })).toString()].sort();
  assert.deepEqual(hellos, ['hello from A', 'hello from B']);
  await kill(a, aDone);
  assert.deepEqual(Channel.inspect(ch.name).liveSenders, 1);
  await rejectsLike(ch.receive({ timeout: 700 }), TimeoutError, { code: 'ETIMEDOUT' });
  throwsLike(() => ch.receiveSync({ timeout: 700 }), TimeoutError, { code: 'ETIMEDOUT' });
  const late = later(ch.receive({ timeout: 10000 }));
  await sleep(300);
  assert.equal(await settled(late), false);
  b.stdin!.write('late\n');
  assert.equal((await withTimeout(late, 10_000, 'the survivor\'s message arrives')).toString(), 'late');
  await kill(b, bDone);
  await rejectsLike(ch.receive({ timeout: 10000 }), PeerGoneError, { code: 'EPIPE' });
});

// ---- peer death: the sender's side --------------------------------------------

/** Fills the ring to the last byte (500-byte messages, then empty ones); returns how many it sent. */
function fill(ch: Channel): number {
  let n = 0;
  while (ch.trySend(Buffer.alloc(500, n & 255))) n++;
  while (ch.trySend(Buffer.alloc(0))) n++;
  assert.equal(Channel.inspect(ch.name).used, ch.capacity, 'the ring is full');
  return n;
}

test('the receiver SIGKILLed while an async send waits for room: PeerGoneError EPIPE; the messages stay for the next receiver', async (t) => {
  const ch = channel(t, 4096);
  const receiver = child(t, ATTACHED_RECEIVER, [ch.name]);
  const done = collect(receiver);
  await waitForLine(receiver, /attached/);
  const n = fill(ch);
  const p = later(ch.send('no room', { timeout: 10000 }));
  await sleep(300);
  assert.equal(await settled(p), false, 'waits while the receiver lives');
  const t0 = performance.now();
  await kill(receiver, done);
  await rejectsLike(p, PeerGoneError, { code: 'EPIPE' });
  assert.ok(performance.now() - t0 < 3000, 'noticed promptly');
  const next = handle(t, ch.name);
  let got = 0;
  for (let m = next.tryReceive(); m; m = next.tryReceive()) got++;
  assert.equal(got, n, 'the new receiver takes the dead one\'s place and gets every message');
  assert.equal(Channel.inspect(ch.name).receiverPid, process.pid);
});

test('the receiver SIGKILLed while a sendSync waits for room (sender process not its parent): PeerGoneError EPIPE', async (t) => {
  const ch = channel(t, 4096);
  const words = raw(ch.name);
  const receiver = child(t, ATTACHED_RECEIVER, [ch.name]);
  const receiverDone = collect(receiver);
  await waitForLine(receiver, /attached/);
  const sender = child(t, FILLER, [ch.name, 'sync']);
  const senderDone = collect(sender);
  await waitForLine(sender, /^full/);
  await until(() => Atomics.load(words, SENDERS_WAITING) === 1, 'the sender sleeps');
  await sleep(200);
  assert.equal(sender.exitCode, null);
  const t0 = performance.now();
  await kill(receiver, receiverDone);
  const r = await withTimeout(senderDone, 10_000, 'the sender ends');
  assert.ok(performance.now() - t0 < 3000, 'noticed promptly');
  assert.equal(r.code, 0, r.stderr);
  const out = lastJson(r);
  assert.equal(out.sent, false);
  assert.equal(out.error, 'PeerGoneError');
  assert.equal(out.code, 'EPIPE');
});

test('the receiver dies while its PARENT waits in sendSync for room: PeerGoneError all the same (the unreaped child is a zombie, not alive)', async (t) => {
  const ch = channel(t, 4096);
  const receiver = child(t, ATTACHED_RECEIVER, [ch.name, '300']);
  await waitForLine(receiver, /attached/);
  fill(ch);
  const t0 = performance.now();
  let caught: unknown;
  try {
    ch.sendSync('no room', { timeout: 4000 }); // the event loop is blocked: Node cannot reap the child
  } catch (err) {
    caught = err;
  }
  const took = performance.now() - t0;
  assert.ok(!(caught instanceof TimeoutError), `the dead receiver was never noticed: ${String(caught)} after ${Math.round(took)} ms`);
  assert.ok(caught instanceof PeerGoneError, `expected PeerGoneError, got ${String(caught)}`);
  assert.ok(took < 3000);
});

test('a receiver that closes properly is not "gone": senders keep waiting (no error) and a new receiver drains the ring', async (t) => {
  const ch = channel(t, 4096);
  const first = await collect(
    child(
      t,
      `import { Channel } from 'interprocess';
       const ch = Channel.open(process.argv[1]);
       ch.tryReceive(); console.log('attached ' + ch.stat().receiverPid); ch.close();`,
      [ch.name],
    ),
  );
  assert.equal(first.code, 0, first.stderr);
  assert.match(first.stdout, /attached [1-9]/);
  assert.equal(Channel.inspect(ch.name).receiverPid, 0, 'the receiver detached');
  const n = fill(ch);
  const p = later(ch.send('waited', { timeout: 15000 }));
  const other = handle(t, ch.name);
  throwsLike(() => other.sendSync('sync', { timeout: 600 }), TimeoutError, { code: 'ETIMEDOUT' });
  await sleep(300);
  assert.equal(await settled(p), false, 'the async send still waits, without error');
  const drainer = child(
    t,
    `import { Channel } from 'interprocess';
     const ch = Channel.open(process.argv[1]);
     let n = 0;
     for (;;) { const m = await ch.receive({ timeout: 10000 }); n++; if (m.toString() === 'waited') break; }
     console.log(n); ch.close();`,
    [ch.name],
  );
  await withTimeout(p, 15_000, 'the waiting send goes through');
  const r = await withTimeout(collect(drainer), 15_000, 'the drainer exits');
  assert.equal(r.code, 0, r.stderr);
  assert.equal(Number(r.stdout.trim()), n + 1);
});

// ---- one receiver at a time -----------------------------------------------------

test('a second live receiver (process) gets EBUSY; once the first is SIGKILLed a new one attaches and receives', async (t) => {
  const ch = channel(t);
  const first = child(t, ATTACHED_RECEIVER, [ch.name]);
  const firstDone = collect(first);
  await waitForLine(first, /attached/);
  throwsLike(() => ch.tryReceive(), InvalidArgumentError, { code: 'EBUSY' });
  throwsLike(() => ch.receiveSync({ timeout: 100 }), InvalidArgumentError, { code: 'EBUSY' });
  await rejectsLike(ch.receive({ timeout: 100 }), InvalidArgumentError, { code: 'EBUSY' });
  await rejectsLike(ch.receiveView({ timeout: 100 }), InvalidArgumentError, { code: 'EBUSY' });
  const second = await collect(
    child(
      t,
      `import { Channel } from 'interprocess';
       const ch = Channel.open(process.argv[1]);
       try { ch.tryReceive(); console.log('attached'); } catch (e) { console.log(e.code); }`,
      [ch.name],
    ),
  );
  assert.equal(second.stdout.trim(), 'EBUSY', second.stderr);
  let info = Channel.inspect(ch.name);
  assert.equal(info.receiverPid, first.pid);
  assert.equal(info.receiverAlive, true);
  assert.equal(ch.trySend('for the next receiver'), true);
  await kill(first, firstDone);
  info = Channel.inspect(ch.name);
  assert.equal(info.receiverAlive, false);
  assert.equal((await ch.receive({ timeout: 5000 })).toString(), 'for the next receiver');
  assert.equal(Channel.inspect(ch.name).receiverPid, process.pid);
  assert.equal(Atomics.load(raw(ch.name), RECEIVER_WAITING), 0);
});

test('one receiver at a time, also with two receiver handles in one process: closing one must not let another process attach while the other still receives', async (t) => {
  const ch = channel(t);
  const other = handle(t, ch.name);
  ch.trySend('one');
  ch.trySend('two');
  assert.equal(ch.tryReceive()!.toString(), 'one'); // ch is the receiver
  let otherAttached: boolean;
  try {
    assert.equal(other.tryReceive()!.toString(), 'two');
    otherAttached = true;
  } catch (err) {
    checkBusy(err);
    otherAttached = false;
  }
  ch.close();
  const r = await collect(
    child(
      t,
      `import { Channel } from 'interprocess';
       const ch = Channel.open(process.argv[1]);
       try { ch.tryReceive(); console.log('attached'); } catch (e) { console.log(e.code); }`,
      [ch.name],
    ),
  );
  if (otherAttached) {
    assert.equal(
      r.stdout.trim(),
      'EBUSY',
      'a second receiver handle in this process was accepted, and it still receives after the first closed: another process must not attach too',
    );
  } else {
    assert.equal(r.stdout.trim(), 'attached', r.stderr);
  }
});

test('one receiver at a time, also across worker threads of one process (same pid): a worker cannot attach while the main thread receives', async (t) => {
  const ch = channel(t);
  assert.equal(ch.tryReceive(), undefined); // the main thread is the receiver
  const url = import.meta.resolve('interprocess');
  const worker = new Worker(
    `const { parentPort, workerData } = require('node:worker_threads');
     import(workerData.url).then(({ Channel }) => {
       const ch = Channel.open(workerData.name);
       let out;
       try { ch.tryReceive(); out = 'attached'; } catch (e) { out = e.code; }
       ch.close();
       parentPort.postMessage(out);
     });`,
    { eval: true, workerData: { url, name: ch.name } },
  );
  t.after(() => worker.terminate());
  const [out] = (await withTimeout(once(worker, 'message'), 10_000, 'the worker answers')) as [string];
  assert.equal(out, 'EBUSY', 'the main thread of this process is the receiver');
  assert.equal(Channel.inspect(ch.name).receiverPid, process.pid, 'still attached');
  ch.trySend('still mine');
  assert.equal(ch.tryReceive()!.toString(), 'still mine');
});

// Each send to a receiver asleep on its doorbell rings it (native bellRing, which keeps a connected
// socket per doorbell name): worker threads ring at the same time as each other, each its own sockets.
// 80 channels make the kept sockets come and go (at most 64 are kept). In a child process, so that a
// crash shows as its signal.
const RING_FROM_WORKERS = `
  import { Worker } from 'node:worker_threads';
  import { Channel } from 'interprocess';
  const [prefix, channels, workers, each] = process.argv.slice(1);
  const names = Array.from({ length: Number(channels) }, (_, i) => prefix + '-' + i);
  const chans = names.map((n) => Channel.create(n, { capacity: 1 << 16 }));
  try {
    let got = 0;
    const loops = chans.map(async (ch) => { for (;;) { const m = await ch.receive({ timeout: 60000 }); if (m.length === 0) return; got++; } });
    // (A worker evaluates its code as this process does: a module.)
    const code = \`import { workerData as d } from 'node:worker_threads';
      const { Channel } = await import(d.url);
      const outs = d.names.map((n) => Channel.open(n));
      for (let k = 0; k < d.each; k++) outs[(k * 7 + d.w) % outs.length].sendSync('x');
      for (const o of outs) o.close();\`;
    const url = import.meta.resolve('interprocess');
    await Promise.all(Array.from({ length: Number(workers) }, (_, w) => new Promise((resolve, reject) => {
      const worker = new Worker(code, { eval: true, workerData: { url, names, w, each: Number(each) } });
      worker.on('exit', resolve);
      worker.on('error', reject);
    })));
    for (const ch of chans) ch.sendSync('');
    await Promise.all(loops);
    console.log(got);
  } finally {
    for (const [i, ch] of chans.entries()) { ch.close(); Channel.unlink(names[i]); }
  }
`;

test('worker threads ringing sleeping receivers at once (80 channels, 4 workers): every message arrives, nothing crashes', async (t) => {
  const prefix = uniqueName('rings');
  t.after(() => { for (let i = 0; i < 80; i++) unlinkQuietly(`${prefix}-${i}`); });
  const r = await withTimeout(collect(spawnNode(RING_FROM_WORKERS, [prefix, '80', '4', '10000'])), 60_000, 'the ringing process ends');
  assert.equal(r.signal ?? null, null, `the process died of ${r.signal}: ${r.stderr}`);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim(), '40000');
});

// A worker thread that ends, or is terminated, without closing its handles gives back what they held
// (native/release.cc): its pid lives on, so nobody else would.
test('70 worker threads, each sending with a handle it never closes, ending or terminated: each gives its sender slot back (64 slots)', async (t) => {
  const ch = channel(t);
  for (let i = 0; i < 70; i++) {
    const spin = i % 2 === 1;
    const w = channelWorker(t, `const tx = Channel.open(d.name); tx.sendSync('from ${i}'); parentPort.postMessage('sent'); ${spin ? 'for (;;) {}' : ''}`, ch.name);
    if (spin) {
      await once(w, 'message');
      await w.terminate();
    } else {
      await once(w, 'exit');
    }
    assert.equal(ch.receiveSync({ timeout: 5000 }).toString(), `from ${i}`);
  }
  const words = raw(ch.name);
  for (let s = 0; s < 64; s++) assert.equal(Atomics.load(words, slotPid(s)), 0, `slot ${s} free`);
});

test('a worker thread terminated holding the send lock (a reservation): the next sender takes it over, nothing of it arrives', async (t) => {
  const ch = channel(t, 4096);
  const w = channelWorker(t, `const tx = Channel.open(d.name); tx.tryReserve(100).fill(0x41); parentPort.postMessage('reserved'); for (;;) {}`, ch.name);
  await once(w, 'message');
  const words = raw(ch.name);
  assert.ok(Atomics.load(words, SEND_LOCK) > 0, 'the worker holds the lock');
  await w.terminate();
  const tx = handle(t, ch.name);
  tx.sendSync('after', { timeout: 5000 });
  assert.equal(ch.receiveSync({ timeout: 2000 }).toString(), 'after');
  assert.equal(ch.tryReceive(), undefined, 'nothing else');
  assert.equal(Atomics.load(words, SEND_LOCK), 0);
});

test('a worker thread terminated while its receive waits (async, on its doorbell): another thread of the process becomes the receiver', async (t) => {
  const ch = channel(t);
  const name = ch.name;
  ch.close(); // (the channel's own handle must not be the receiver)
  const w = channelWorker(t, `const rx = Channel.open(d.name); const p = rx.receive(); parentPort.postMessage('waiting'); await p;`, name);
  await once(w, 'message');
  const words = raw(name);
  await until(() => Atomics.load(words, RECEIVER_WAITING) === 2, 'the worker sleeps on its doorbell');
  assert.equal(Atomics.load(words, RECEIVER_PID), process.pid);
  await w.terminate();
  assert.equal(Atomics.load(words, RECEIVER_PID), 0, 'the receiver place is free');
  assert.equal(Atomics.load(words, RECEIVER_WAITING), 0, 'and awake');
  const rx = handle(t, name);
  const tx = handle(t, name);
  tx.sendSync('to the new receiver');
  assert.equal((await rx.receive({ timeout: 5000 })).toString(), 'to the new receiver');
});

function checkBusy(err: unknown): void {
  assert.ok(err instanceof InvalidArgumentError && err.code === 'EBUSY', `expected EBUSY, got ${String(err)}`);
}

// ---- async iteration -------------------------------------------------------------

test('for await over a channel ends when the handle is closed', async (t) => {
  const ch = channel(t);
  const sender = child(
    t,
    `import { Channel } from 'interprocess';
     const ch = Channel.open(process.argv[1]);
     for (const w of ['a', 'b', 'c']) ch.sendSync(w);
     console.log('sent');
     setInterval(() => {}, 1000);`,
    [ch.name],
  );
  await waitForLine(sender, /sent/);
  const got: string[] = [];
  await withTimeout(
    (async () => {
      for await (const m of ch) {
        got.push(m.toString());
        if (got.length === 3) setTimeout(() => ch.close(), 200); // while the next receive waits
      }
    })(),
    5000,
    'the loop ends',
  );
  assert.deepEqual(got, ['a', 'b', 'c']);
  assert.equal(ch.closed, true);
  assert.equal(Channel.inspect(ch.name).receiverPid, 0);
});

test('for await over a channel throws PeerGoneError once the only sender died, after its messages', async (t) => {
  const ch = channel(t);
  const sender = child(t, LINE_SENDER, [ch.name, 'D'], true);
  const done = collect(sender);
  await waitForLine(sender, /^sent/);
  sender.stdin!.write('x\n');
  await waitForLine(sender, /sent x/);
  const got: string[] = [];
  const loop = (async () => {
    for await (const m of ch) {
      got.push(m.toString());
      if (got.length === 2) sender.stdin!.write('die\n');
    }
  })();
  await rejectsLike(withTimeout(loop, 10_000, 'the loop ends'), PeerGoneError, { code: 'EPIPE' });
  assert.deepEqual(got, ['hello from D', 'x', 'last words']);
  assert.equal((await done).signal, 'SIGKILL');
});

// ---- inspect and stale channels ---------------------------------------------------

test('Channel.inspect reports capacity, used bytes, creator, receiver and senders, alive or dead', async (t) => {
  const ch = channel(t, 8192);
  let info = Channel.inspect(ch.name);
  assert.deepEqual(
    { ...info },
    {
      name: ch.name,
      capacity: 8192,
      maxMessage: 4088,
      used: 0,
      creatorPid: process.pid,
      creatorAlive: true,
      receiverPid: 0,
      receiverAlive: false,
      senderPids: [],
      liveSenders: 0,
      stale: false,
    },
  );
  const receiver = child(t, ATTACHED_RECEIVER, [ch.name]);
  const receiverDone = collect(receiver);
  await waitForLine(receiver, /attached/);
  const sender = child(
    t,
    `import { Channel } from 'interprocess';
     const ch = Channel.open(process.argv[1]);
     ch.sendSync('12345'); ch.sendSync(Buffer.alloc(100));
     console.log('sent');
     setInterval(() => {}, 1000);`,
    [ch.name],
  );
  const senderDone = collect(sender);
  await waitForLine(sender, /sent/);
  info = Channel.inspect(ch.name);
  assert.equal(info.used, align8(8 + 5) + align8(8 + 100));
  assert.equal(info.receiverPid, receiver.pid);
  assert.equal(info.receiverAlive, true);
  assert.deepEqual(info.senderPids, [sender.pid]);
  assert.equal(info.liveSenders, 1);
  assert.equal(info.stale, false);
  await kill(receiver, receiverDone);
  await kill(sender, senderDone);
  info = Channel.inspect(ch.name);
  assert.equal(info.receiverPid, receiver.pid, 'the dead receiver shows until replaced');
  assert.equal(info.receiverAlive, false);
  assert.deepEqual(info.senderPids, [sender.pid]);
  assert.equal(info.liveSenders, 0);
  assert.equal(info.creatorAlive, true);
  assert.equal(info.stale, false, 'its creator lives');
  assert.deepEqual({ ...ch.stat(), used: 0 }, { ...info, used: 0 }, 'stat() of a handle tells the same');
});

const CREATOR = `
  import { Channel } from 'interprocess';
  const [name, capacity] = process.argv.slice(1);
  const ch = Channel.create(name, { capacity: Number(capacity) });
  ch.sendSync('a'); ch.sendSync('bc');
  console.log('made');
  process.stdin.once('data', () => process.exit(0)); // exits without close() or unlink
`;

test('a channel whose creator exited, with nobody attached, is stale: create() fails with AlreadyExistsError, replaceStale replaces it with a fresh empty one', async (t) => {
  const name = uniqueName('cs');
  t.after(() => unlinkQuietly(name));
  const creator = child(t, CREATOR, [name, '8192'], true);
  const done = collect(creator);
  await waitForLine(creator, /made/);
  let info = Channel.inspect(name);
  assert.equal(info.creatorPid, creator.pid);
  assert.equal(info.creatorAlive, true);
  assert.equal(info.stale, false);
  throwsLike(() => Channel.create(name, { replaceStale: true }), AlreadyExistsError, { code: 'EEXIST' });
  creator.stdin!.end('exit\n');
  assert.equal((await withTimeout(done, 10_000, 'the creator exits')).code, 0);

  info = Channel.inspect(name);
  assert.equal(info.capacity, 8192);
  assert.equal(info.used, 32, "'a' and 'bc': two 16-byte records");
  assert.equal(info.creatorAlive, false);
  assert.equal(info.receiverPid, 0);
  assert.deepEqual(info.senderPids, [creator.pid]);
  assert.equal(info.liveSenders, 0);
  assert.equal(info.stale, true);
  throwsLike(() => Channel.create(name), AlreadyExistsError, { code: 'EEXIST' });
  throwsLike(() => Channel.create(name, { capacity: 4096 }), AlreadyExistsError, { code: 'EEXIST' });

  const fresh = Channel.create(name, { replaceStale: true, capacity: 4096 });
  t.after(() => fresh.close());
  assert.equal(fresh.capacity, 4096);
  assert.equal(fresh.tryReceive(), undefined, 'empty: the old messages went with the old object');
  info = Channel.inspect(name);
  assert.equal(info.creatorPid, process.pid);
  assert.equal(info.used, 0);
  assert.deepEqual(info.senderPids, []);
  assert.equal(info.stale, false);
  throwsLike(() => Channel.create(name, { replaceStale: true }), AlreadyExistsError, { code: 'EEXIST' });
});

test('creator dead but a live receiver or sender attached: not stale, replaceStale leaves it alone (the attached process goes on using it)', async (t) => {
  const name = uniqueName('cs');
  t.after(() => unlinkQuietly(name));
  const creator = child(t, CREATOR, [name, '4096'], true);
  const creatorDone = collect(creator);
  await waitForLine(creator, /made/);
  creator.stdin!.end('exit\n');
  await withTimeout(creatorDone, 10_000, 'the creator exits');
  const receiver = child(
    t,
    `import { Channel } from 'interprocess';
     const ch = Channel.open(process.argv[1]);
     ch.tryReceive(); ch.tryReceive();
     console.log('attached');
     for (;;) console.log('got ' + (await ch.receive()).toString());`,
    [name],
  );
  const receiverDone = collect(receiver);
  await waitForLine(receiver, /attached/);
  let info = Channel.inspect(name);
  assert.equal(info.creatorAlive, false);
  assert.equal(info.receiverAlive, true);
  assert.equal(info.stale, false);
  throwsLike(() => Channel.create(name, { replaceStale: true }), AlreadyExistsError, { code: 'EEXIST' });
  const sender = Channel.open(name);
  t.after(() => sender.close());
  const heard = waitForLine(receiver, /got still the same channel/);
  assert.equal(sender.trySend('still the same channel'), true);
  await heard;

  // Only a live sender (this process) left: still not stale.
  await kill(receiver, receiverDone);
  info = Channel.inspect(name);
  assert.equal(info.liveSenders, 1);
  assert.equal(info.stale, false);
  throwsLike(() => Channel.create(name, { replaceStale: true }), AlreadyExistsError, { code: 'EEXIST' });
  sender.close();
  assert.equal(Channel.inspect(name).stale, true, 'nobody left');
  const fresh = Channel.create(name, { replaceStale: true });
  t.after(() => fresh.close());
  assert.equal(Channel.inspect(name).used, 0);
});

test('replaceStale leaves a name holding a non-channel POSIX shared memory object alone', async (t) => {
  const name = uniqueName('cs');
  t.after(() => unlinkQuietly(name));
  const shm = posix.SharedMemory.create(name, { size: 4096 });
  const text = Buffer.from('not a channel: keep me');
  new Uint8Array(shm.buffer).set(text, 0);
  new Uint8Array(shm.buffer).set(text, 100);
  shm.close();
  throwsLike(() => Channel.inspect(name), InvalidArgumentError);
  throwsLike(() => Channel.create(name, { replaceStale: true }), AlreadyExistsError, { code: 'EEXIST' });
  const again = posix.SharedMemory.open(name);
  assert.equal(again.size, 4096, 'the same object');
  assert.deepEqual(Buffer.from(again.buffer, 0, text.length), text, 'untouched');
  assert.deepEqual(Buffer.from(again.buffer, 100, text.length), text);
  again.close();

  // All zeros (no header: maybe a creator still at work) is left alone too.
  const zeros = uniqueName('cs');
  t.after(() => unlinkQuietly(zeros));
  posix.SharedMemory.create(zeros, { size: 8192 }).close();
  throwsLike(() => Channel.create(zeros, { replaceStale: true }), AlreadyExistsError, { code: 'EEXIST' });
  const z = posix.SharedMemory.open(zeros);
  assert.equal(z.size, 8192);
  assert.ok(new Uint8Array(z.buffer).every((b) => b === 0));
  z.close();
});

test('two processes replacing the same stale channel at once: exactly one creates it, the other gets AlreadyExistsError', async (t) => {
  // Both start from a gate in shared memory (spinning, so they run together on two CPUs).
  const RACER = `
    import { Channel, posix } from 'interprocess';
    const [name, gateName] = process.argv.slice(1);
    const gate = new Int32Array(posix.SharedMemory.open(gateName).buffer);
    Atomics.add(gate, 1, 1);
    const until = performance.now() + 10000;
    while (Atomics.load(gate, 0) === 0 && performance.now() < until);
    let ch;
    try { ch = Channel.create(name, { replaceStale: true, capacity: 4096 }); console.log('created'); }
    catch (e) { console.log(e.code); }
    process.stdin.resume(); // keeps what it created alive (its creator lives) until the test ends stdin
    process.stdin.on('end', () => { ch?.close(); process.exit(0); });
  `;
  for (let round = 0; round < 8; round++) {
    const name = uniqueName('cs');
    const gateName = uniqueName('cs');
    t.after(() => unlinkQuietly(name));
    t.after(() => unlinkQuietly(gateName));
    const creator = await collect(
      child(t, `import { Channel } from 'interprocess'; Channel.create(process.argv[1], { capacity: 4096 });`, [name]),
    );
    assert.equal(creator.code, 0, creator.stderr);
    assert.equal(Channel.inspect(name).stale, true);
    const gateShm = posix.SharedMemory.create(gateName, { size: 4096 });
    const gate = new Int32Array(gateShm.buffer);
    gateShm.close();
    const racers = [0, 1].map(() => child(t, RACER, [name, gateName], true));
    const done = racers.map((c) => collect(c));
    const outcomes = racers.map((c) => waitForLine(c, /^\w+$/));
    await until(() => Atomics.load(gate, 1) === racers.length, 'both racers are at the gate');
    Atomics.store(gate, 0, 1);
    const got = (await Promise.all(outcomes)).sort();
    const info = Channel.inspect(name);
    for (const c of racers) c.stdin!.end();
    await Promise.all(done);
    assert.deepEqual(got, ['EEXIST', 'created'], `round ${round}: one racer replaces the stale channel, the other is told it exists`);
    assert.equal(info.stale, false);
    assert.ok(racers.some((c) => c.pid === info.creatorPid), 'the channel under the name is the one a racer created');
  }
});

// ---- close() during waits -----------------------------------------------------------

test('close() during waits rejects pending send/reserve/receive/receiveView of that handle (closed handle) and gives back its sender slot and receiver place', async (t) => {
  const full = channel(t, 4096);
  const fullWords = raw(full.name);
  const sender = Channel.open(full.name);
  t.after(() => sender.close());
  const n = fill(sender);
  const s1 = later(sender.send('waits', { timeout: 10000 }));
  const s2 = later(sender.reserve(100, { timeout: 10000 }));
  await sleep(100);
  assert.equal(await settled(s1), false);
  assert.deepEqual(Channel.inspect(full.name).senderPids, [process.pid]);
  assert.equal(Atomics.load(fullWords, SENDERS_WAITING), 1);
  sender.close();
  await rejectsLike(s1, IpcError, { code: 'EBADF' });
  await rejectsLike(s2, IpcError, { code: 'EBADF' });
  assert.deepEqual(Channel.inspect(full.name).senderPids, [], 'the slot is given back');
  assert.equal(Atomics.load(fullWords, SENDERS_WAITING), 0, 'no longer counted asleep');
  assert.equal(Atomics.load(fullWords, SEND_LOCK), 0);
  throwsLike(() => sender.trySend('x'), IpcError, { code: 'EBADF' });
  await rejectsLike(sender.send('x'), IpcError, { code: 'EBADF' });
  let got = 0;
  for (let m = full.tryReceive(); m; m = full.tryReceive()) got++;
  assert.equal(got, n, 'only what was sent before');

  const empty = channel(t, 4096);
  const emptyWords = raw(empty.name);
  const receiver = Channel.open(empty.name);
  t.after(() => receiver.close());
  const r1 = later(receiver.receive({ timeout: 10000 }));
  const r2 = later(receiver.receiveView({ timeout: 10000 }));
  await sleep(100);
  assert.equal(await settled(r1), false);
  assert.equal(Channel.inspect(empty.name).receiverPid, process.pid);
  assert.equal(Atomics.load(emptyWords, RECEIVER_WAITING), 2, 'asleep on its doorbell');
  receiver.close();
  await rejectsLike(r1, IpcError, { code: 'EBADF' });
  await rejectsLike(r2, IpcError, { code: 'EBADF' });
  assert.equal(Channel.inspect(empty.name).receiverPid, 0, 'the receiver place is given back');
  assert.equal(Atomics.load(emptyWords, RECEIVER_PID), 0);
  assert.equal(Atomics.load(emptyWords, RECEIVER_WAITING), 0);
  throwsLike(() => receiver.tryReceive(), IpcError, { code: 'EBADF' });

  // Its doorbell is gone too: another handle here can wait asynchronously, and
  // a receiver in another process may attach.
  const again = handle(t, empty.name);
  await rejectsLike(again.receive({ timeout: 150 }), TimeoutError);
  again.close();
  assert.equal(empty.trySend('after the close'), true);
  const r = await collect(
    child(
      t,
      `import { Channel } from 'interprocess';
       const ch = Channel.open(process.argv[1]);
       console.log((await ch.receive({ timeout: 5000 })).toString()); ch.close();`,
      [empty.name],
    ),
  );
  assert.equal(r.stdout.trim(), 'after the close', r.stderr);
});

test('nothing is left behind', () => {
  assert.deepEqual(shmEntries(`/ipt-${process.pid}-cs`), []);
});
