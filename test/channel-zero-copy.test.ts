// Channel zero-copy paths (reserve/commit/discard, receiveView/release), the
// ring's wrap edge under sustained load across real processes, and the order,
// abort and timeout rules of asynchronous calls queued on one handle
// (docs/channel.md). Positions in the ring are read from the shared memory
// itself (head at byte 128, tail at 192, the ring at 1024), so the tests see
// where records really landed, not what the API claims.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ChildProcess } from 'node:child_process';
import { AbortError, Channel, InvalidArgumentError, PeerGoneError, TimeoutError, TooLargeError, posix } from 'interprocess';
import { collect, finished, killOnExit, rejectsLike, settled, shmEntries, spawnNode, testChannel, throwsLike, until, waitForLine, withTimeout } from './helpers.js';

// Int32 indices of the control fields (docs/channel.md), and the ring's byte offset.
const RECEIVER_PID = 19;
const HEAD = 32;
const SEND_LOCK = 80;
const TAIL = 48;
const RING = 1024;
const WRAP = 0xffffffff;
const T = { timeout: 20_000 };

const align8 = (n: number): number => (n + 7) & ~7;

/** A channel made for one test, closed and unlinked after it. */
const channel = (t: TestContext, capacity = 4096): Channel => testChannel(t, 'zc', capacity);

/** Another handle on the same channel (this process), closed after the test. */
function reopen(t: TestContext, ch: Channel): Channel {
  const other = Channel.open(ch.name);
  t.after(() => other.close());
  return other;
}

/** A separate mapping of the channel's shared memory, to look at its control fields and ring. */
function raw(name: string): { i32: Int32Array; u8: Uint8Array; dv: DataView } {
  const shm = posix.SharedMemory.open(name);
  const b = shm.buffer;
  shm.close(); // the mapping lives as long as its views
  return { i32: new Int32Array(b), u8: new Uint8Array(b), dv: new DataView(b) };
}

// Message i: byte k is (i*131 + k*7 + 1) & 255, except that the first four
// bytes (if there are four) hold i, little-endian. The child scripts use the same rule.
function fillMessage(b: Uint8Array, i: number): Uint8Array {
  for (let k = 0; k < b.length; k++) b[k] = (i * 131 + k * 7 + 1) & 255;
  if (b.length >= 4) new DataView(b.buffer, b.byteOffset, 4).setUint32(0, i, true);
  return b;
}
const message = (i: number, n: number): Buffer => fillMessage(Buffer.alloc(n), i) as Buffer;
const seqOf = (m: Uint8Array): number => (m.length >= 4 ? new DataView(m.buffer, m.byteOffset, 4).getUint32(0, true) : -1);

const isBusy = (e: unknown): boolean => (e as { code?: string }).code === 'EBUSY';

const CHILD_COMMON = `
  import { Channel, posix } from 'interprocess';
  import { createHash } from 'node:crypto';
  const T = { timeout: 20000 };
  const align8 = (n) => (n + 7) & ~7;
  const rawI32 = (name) => { const shm = posix.SharedMemory.open(name); const b = shm.buffer; shm.close(); return new Int32Array(b); };
  function fill(b, i) {
    for (let k = 0; k < b.length; k++) b[k] = (i * 131 + k * 7 + 1) & 255;
    if (b.length >= 4) { b[0] = i & 255; b[1] = (i >>> 8) & 255; b[2] = (i >>> 16) & 255; b[3] = i >>> 24; }
    return b;
  }
  function check(m, i) {
    for (let k = m.length >= 4 ? 4 : 0; k < m.length; k++) {
      if (m[k] !== ((i * 131 + k * 7 + 1) & 255)) throw new Error('message ' + i + ' (' + m.length + ' bytes): byte ' + k + ' is ' + m[k]);
    }
    if (m.length >= 4) {
      const seq = (m[0] | (m[1] << 8) | (m[2] << 16) | (m[3] << 24)) >>> 0;
      if (seq !== i) throw new Error('message ' + i + ' (' + m.length + ' bytes) carries sequence number ' + seq + ': out of order');
    }
  }
  const lenBytes = Buffer.alloc(4);
  function account(h, m) { lenBytes.writeUInt32LE(m.length); h.update(lenBytes); h.update(m); }
  let seed = 1;
  const rnd = () => (seed = (Math.imul(seed, 1103515245) + 12345) & 0x7fffffff);
`;

/**
 * Sends `count` messages, choosing sizes to hit the ring's edges (profile
 * 'edge') or small ones ('small'); mode: one send method, or 'mixed' (each
 * message by a random one). Prints {hash, count}: sha256 over (u32 length, bytes) of each.
 */
const SENDER = `${CHILD_COMMON}
  const [name, mode, countArg, seedArg, profile] = process.argv.slice(1);
  const count = Number(countArg);
  seed = Number(seedArg);
  const ch = Channel.open(name);
  const i32 = rawI32(name);
  const cap = ch.capacity, max = ch.maxMessage;
  const h = createHash('sha256');
  // Ring offsets where records should end: the very end, 8 bytes before it, half the ring, ...
  const TARGETS = [cap, cap - 8, cap - 16, cap - 24, cap / 2, cap / 2 - 8, cap / 2 + 8, 8];
  function size() {
    if (profile === 'small') return rnd() % 41;
    const pos = Atomics.load(i32, 32) & (cap - 1); // this is the only sender: head is where the next record goes
    const r = rnd() % 100;
    if (r < 8) return 0;
    if (r < 14) return max;
    if (r < 55) {
      const d = TARGETS[rnd() % TARGETS.length] - pos;
      // a record of d bytes ends at the target: align8(8 + n) = d
      if (d >= 8 && d <= cap / 2) return Math.min(max, Math.max(0, d - 8 - (rnd() % 8)));
    }
    return rnd() % (r < 65 ? max + 1 : 600);
  }
  const MODES = ['trySend', 'sendSync', 'send', 'tryReserve', 'reserveSync', 'reserve'];
  async function reserve(how, n) {
    if (how === 'reserve') return ch.reserve(n, T);
    if (how === 'reserveSync') return ch.reserveSync(n, T);
    return ch.tryReserve(n) ?? ch.reserve(n, T);
  }
  for (let i = 0; i < count; i++) {
    const n = size();
    const how = mode === 'mixed' ? MODES[rnd() % MODES.length] : mode;
    if (how === 'send' || how === 'sendSync' || how === 'trySend') {
      const b = fill(Buffer.allocUnsafe(n), i);
      account(h, b);
      if (how === 'send') await ch.send(b, T);
      else if (how === 'sendSync' || !ch.trySend(b)) ch.sendSync(b, T);
      continue;
    }
    if (rnd() % 16 === 0) {
      // A reservation given back: its bytes (and any wrap marker it wrote) must never show.
      const junk = await reserve(how, rnd() % (max + 1));
      junk.fill(0xee);
      ch.discard();
    }
    // Sometimes reserve more than the message and commit only its length.
    const room = n < max && rnd() % 6 === 0 ? n + 1 + (rnd() % (max - n)) : n;
    const v = await reserve(how, room);
    if (!(v instanceof Uint8Array) || v.length !== room) throw new Error('reserve(' + room + ') gave ' + v?.length + ' bytes');
    const m = fill(v.subarray(0, n), i);
    account(h, m);
    if (room === n && rnd() % 2) ch.commit();
    else ch.commit(n);
  }
  console.log(JSON.stringify({ hash: h.digest('hex'), count }));
  ch.close();
`;

/**
 * Receives `count` messages (mode: one receive method, or 'mixed'), checks
 * each (order, bytes), checks from the tail field how far each one moved the
 * tail (its record, plus the skipped end of the ring if it wrapped) and counts
 * the edge cases met. Prints {hash, count, tally}.
 */
const RECEIVER = `${CHILD_COMMON}
  const [name, mode, countArg, seedArg] = process.argv.slice(1);
  const count = Number(countArg);
  seed = Number(seedArg) + 1;
  const ch = Channel.open(name);
  const i32 = rawI32(name);
  const cap = ch.capacity, max = ch.maxMessage;
  const h = createHash('sha256');
  const tally = { zero: 0, max: 0, maxAtHalf: 0, wraps: 0, wrapAtLast8: 0, wrapHalf: 0, endExact: 0, fitLast8: 0, views: 0, copies: 0 };
  const MODES = ['tryReceive', 'receiveSync', 'receive', 'tryReceiveView', 'receiveViewSync', 'receiveView'];
  for (let i = 0; i < count; i++) {
    const how = mode === 'mixed' ? MODES[rnd() % MODES.length] : mode;
    const before = Atomics.load(i32, 48) >>> 0;
    let m;
    switch (how) {
      case 'tryReceive': m = ch.tryReceive() ?? ch.receiveSync(T); break;
      case 'receiveSync': m = ch.receiveSync(T); break;
      case 'receive': m = await ch.receive(T); break;
      case 'tryReceiveView': m = ch.tryReceiveView() ?? (await ch.receiveView(T)); break;
      case 'receiveViewSync': m = ch.receiveViewSync(T); break;
      case 'receiveView': m = await ch.receiveView(T); break;
      default: throw new Error('unknown mode ' + how);
    }
    const view = how.includes('View');
    if (!(m instanceof Uint8Array)) throw new Error('message ' + i + ': ' + how + ' gave ' + m);
    if (view !== m.buffer instanceof SharedArrayBuffer) throw new Error('message ' + i + ': ' + how + (view ? ' gave a copy' : ' gave a view into the ring'));
    if (view && (Atomics.load(i32, 48) >>> 0) !== before) throw new Error('message ' + i + ': consumed before release()');
    check(m, i);
    account(h, m);
    if (view) { ch.release(); tally.views++; } else tally.copies++;
    const after = Atomics.load(i32, 48) >>> 0;
    const diff = (after - before) >>> 0, rec = align8(8 + m.length), start = before & (cap - 1);
    if (diff === rec) {
      if (start + rec > cap) throw new Error('message ' + i + ': a ' + rec + '-byte record at ring offset ' + start + ' crosses the end');
      if (start + rec === cap) tally.endExact++;
      if (start === cap - 8) tally.fitLast8++;
      if (m.length === max && start === cap / 2) tally.maxAtHalf++;
    } else if (start !== 0 && diff === cap - start + rec) {
      tally.wraps++;
      if (start === cap - 8) tally.wrapAtLast8++;
      if (cap - start >= cap / 2 - 8) tally.wrapHalf++;
    } else {
      throw new Error('message ' + i + ' (' + m.length + ' bytes at ring offset ' + start + ') moved the tail by ' + diff);
    }
    if (m.length === 0) tally.zero++;
    if (m.length === max) tally.max++;
  }
  const extra = ch.tryReceive();
  if (extra !== undefined) throw new Error('an extra message of ' + extra.length + ' bytes');
  console.log(JSON.stringify({ hash: h.digest('hex'), count, tally }));
  ch.close();
`;

/**
 * Receives `count` messages (async), sleeping `pauseMs` every `every`
 * messages; then waits `extraMs` and makes sure nothing else arrives.
 * Prints {seqs, lengths, extra}.
 */
const DRAIN = `${CHILD_COMMON}
  const [name, countArg, everyArg, pauseArg, extraArg] = process.argv.slice(1);
  const ch = Channel.open(name);
  const seqs = [], lengths = [];
  for (let k = 0; k < Number(countArg); k++) {
    if (k % Number(everyArg) === 0 && k > 0) await new Promise((r) => setTimeout(r, Number(pauseArg)));
    const m = await ch.receive(T);
    const seq = m.length >= 4 ? m.readUInt32LE(0) : -1;
    if (seq >= 0) check(m, seq);
    seqs.push(seq);
    lengths.push(m.length);
  }
  await new Promise((r) => setTimeout(r, Number(extraArg)));
  const extra = ch.tryReceive();
  console.log(JSON.stringify({ seqs, lengths, extra: extra === undefined ? null : extra.toString('hex') }));
  ch.close();
`;

/** Receives `count` messages and prints them as hex, then whether anything else came within `extraMs`. */
const DUMP = `
  import { Channel } from 'interprocess';
  const [name, countArg, extraArg] = process.argv.slice(1);
  const ch = Channel.open(name);
  const got = [];
  for (let k = 0; k < Number(countArg); k++) got.push((await ch.receive({ timeout: 20000 })).toString('hex'));
  await new Promise((r) => setTimeout(r, Number(extraArg)));
  const extra = ch.tryReceive();
  console.log(JSON.stringify({ got, extra: extra === undefined ? null : extra.toString('hex') }));
  ch.close();
`;

async function dumped(t: TestContext, name: string, count: number, extraMs = 200): Promise<{ got: string[]; extra: string | null }> {
  const r = await finished(killOnExit(t, spawnNode(DUMP, [name, String(count), String(extraMs)])), 'receiver');
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as { got: string[]; extra: string | null };
}

async function drained(child: ChildProcess): Promise<{ seqs: number[]; lengths: number[]; extra: string | null }> {
  const r = await finished(child, 'drainer', 30_000);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as { seqs: number[]; lengths: number[]; extra: string | null };
}

const range = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, k) => from + k);
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

// ---- zero-copy send ----------------------------------------------------------

test('tryReserve / reserveSync / reserve give a view of exactly n bytes in the ring; what is written there is what arrives', async (t) => {
  const ch = channel(t, 1 << 16);
  const { u8, dv, i32 } = raw(ch.name);
  // Records of 8 (0 bytes: only the header), 16 (1..8 bytes) and 24 bytes (9..16), the largest.
  const sizes = [0, 1, 7, 8, 9, 13, ch.maxMessage];
  const receiving = dumped(t, ch.name, 3 * sizes.length); // drains meanwhile: three maxMessage records need it
  receiving.catch(() => {}); // awaited below
  const want: string[] = [];
  let i = 0;
  const forms: Array<[string, (n: number) => Uint8Array | undefined | Promise<Uint8Array>]> = [
    ['tryReserve', (n) => ch.tryReserve(n)],
    ['reserveSync', (n) => ch.reserveSync(n, T)],
    ['reserve', (n) => ch.reserve(n, T)],
  ];
  for (const [form, reserve] of forms) {
    for (const n of sizes) {
      const headBefore = Atomics.load(i32, HEAD) >>> 0;
      const pos = headBefore % ch.capacity;
      const skip = align8(8 + n) > ch.capacity - pos ? ch.capacity - pos : 0;
      const v = await reserve(n);
      assert.ok(v instanceof Uint8Array, `${form}(${n}) gives a Uint8Array`);
      assert.equal(v.byteLength, n, `${form}(${n}) gives exactly ${n} bytes`);
      assert.ok(v.buffer instanceof SharedArrayBuffer, `${form}(${n}) is a view into the shared memory`);
      assert.equal(v.byteOffset, RING + (skip ? 0 : pos) + 8, `${form}(${n}): the payload follows the 8-byte record header at head (or at the ring start, if it wraps)`);
      assert.equal(v.byteOffset % 8, 0, `${form}(${n}): the payload is 8-byte aligned`);
      fillMessage(v, i);
      // Written in place: a separate mapping of the object sees the bytes already (before commit).
      assert.equal(hex(u8.subarray(v.byteOffset, v.byteOffset + n)), hex(v), `${form}(${n}) writes into the ring itself`);
      assert.equal(Atomics.load(i32, HEAD) >>> 0, headBefore, `${form}(${n}): nothing is published before commit()`);
      want.push(hex(v));
      ch.commit();
      assert.equal(dv.getUint32(v.byteOffset - 8, true), n, 'the length word');
      assert.equal(dv.getUint32(v.byteOffset - 4, true), ((headBefore + skip) | 1) >>> 0, "the stamp: the record's position | 1");
      if (skip) {
        assert.equal(dv.getUint32(RING + pos, true), 0xffffffff, 'the wrap marker');
        assert.equal(dv.getUint32(RING + pos + 4, true), (headBefore | 1) >>> 0, "the marker's stamp");
      }
      assert.equal(Atomics.load(i32, HEAD) >>> 0, headBefore + skip + align8(8 + n), 'head moves by align8(8 + n) (plus the skipped end)');
      i++;
    }
  }
  const r = await receiving;
  assert.deepEqual(r.got, want);
  assert.equal(r.extra, null, 'nothing else arrives');
});

test('commit(k) publishes only the first k bytes and takes only align8(8 + k) of the ring; commit rejects k > n', async (t) => {
  const ch = channel(t);
  const { i32 } = raw(ch.name);
  const v = ch.reserveSync(1000);
  fillMessage(v, 7);
  for (const bad of [1001, -1, 2.5, Number.NaN]) {
    assert.throws(() => ch.commit(bad), `commit(${bad}) is refused`);
  }
  assert.equal(Atomics.load(i32, HEAD), 0, 'a refused commit publishes nothing');
  ch.commit(10);
  assert.equal(Atomics.load(i32, HEAD), 24);
  assert.equal(ch.stat().used, 24, 'a 10-byte message takes 24 bytes, not 1008');
  const w = ch.tryReserve(100)!;
  fillMessage(w, 8);
  ch.commit(0); // zero bytes of a 100-byte reservation: an empty message
  assert.equal(Atomics.load(i32, HEAD), 32);
  const r = await dumped(t, ch.name, 2);
  assert.deepEqual(r.got, [hex(message(7, 1000).subarray(0, 10)), '']);
  assert.equal(r.extra, null);
});

test('discard() delivers nothing and gives the room back; a discarded wrap marker is overwritten cleanly', async (t) => {
  const ch = channel(t);
  const rx = reopen(t, ch);
  const { i32, dv } = raw(ch.name);
  const max = ch.maxMessage; // 2040: a record of 2048, half the ring
  ch.reserveSync(max).fill(0xee);
  ch.discard();
  assert.equal(Atomics.load(i32, HEAD), 0, 'head did not move');
  assert.equal(Atomics.load(i32, SEND_LOCK), 0, 'the send lock is free again');
  assert.equal(ch.stat().used, 0);
  assert.equal(rx.tryReceive(), undefined, 'nothing delivered');
  // The whole ring is usable again: two records of half the ring each fill it exactly.
  fillMessage(ch.tryReserve(max)!, 1);
  ch.commit();
  fillMessage(ch.tryReserve(max)!, 2);
  ch.commit();
  assert.equal(ch.stat().used, 4096, 'full');
  assert.equal(ch.tryReserve(0), undefined, 'not even an empty message fits now');
  assert.deepEqual(rx.tryReceive(), message(1, max));
  assert.deepEqual(rx.tryReceive(), message(2, max));

  // Bring head to 8 bytes before the ring's end, with the ring empty.
  ch.trySend(message(3, max)); // 2048
  ch.trySend(message(4, 2032)); // align8(8 + 2032) = 2040: head % 4096 = 4088
  rx.tryReceive();
  rx.tryReceive();
  assert.equal(Atomics.load(i32, HEAD) % 4096, 4088);
  // A reservation that does not fit in the last 8 bytes wraps: marker at 4088, payload at 0.
  const v = ch.tryReserve(100)!;
  assert.equal(v.byteOffset, RING + 8, 'wrapped to the ring start');
  assert.equal(dv.getUint32(RING + 4088, true), WRAP, 'wrap marker written');
  v.fill(0xee);
  ch.discard();
  // An empty message (a record of just the 8-byte header) fits in the last 8 bytes: its length overwrites the stale marker.
  assert.equal(ch.trySend(Buffer.alloc(0)), true);
  assert.equal(Atomics.load(i32, HEAD) >>> 0, 8192, 'the record ended exactly at the ring end');
  assert.equal(dv.getUint32(RING + 4088, true), 0, 'the stale marker was overwritten by the length');
  assert.deepEqual(rx.tryReceive(), Buffer.alloc(0));
  assert.equal(Atomics.load(i32, TAIL) >>> 0, 8192, 'the receiver took it from the last 8 bytes, not past a marker');

  // Again at 4088: this time a wrapped reservation committed with 0 bytes.
  ch.trySend(message(5, max));
  ch.trySend(message(6, 2032));
  rx.tryReceive();
  rx.tryReceive();
  assert.equal(Atomics.load(i32, HEAD) % 4096, 4088);
  ch.reserveSync(100).fill(0xee);
  ch.commit(0);
  assert.equal(Atomics.load(i32, HEAD) >>> 0, 3 * 4096 + 8, 'skip 8 bytes, then an 8-byte record at 0');
  assert.deepEqual(rx.tryReceive(), Buffer.alloc(0));
  assert.equal(Atomics.load(i32, TAIL) >>> 0, 3 * 4096 + 8, 'the receiver followed the marker');
  assert.equal(rx.tryReceive(), undefined);
});

test('commit() without a reservation fails (EBUSY); discard() without one is a no-op that leaves another sender\'s lock alone', async (t) => {
  const ch = channel(t);
  const { i32 } = raw(ch.name);
  throwsLike(() => ch.commit(), Error, { code: 'EBUSY' });
  throwsLike(() => ch.commit(0), Error, { code: 'EBUSY' });
  ch.discard();
  assert.equal(Atomics.load(i32, HEAD), 0);
  ch.tryReserve(3)!.set([1, 2, 3]);
  ch.commit();
  throwsLike(() => ch.commit(), Error, { code: 'EBUSY' }); // committed already
  ch.discard(); // nothing open: must not touch head
  assert.equal(Atomics.load(i32, HEAD), 16);

  // Another process holds a reservation (the send lock) until told to commit.
  const child = killOnExit(
    t,
    spawnNode(
      `import { Channel } from 'interprocess';
       const ch = Channel.open(process.argv[1]);
       const v = ch.reserveSync(5, { timeout: 10000 });
       v.set(Buffer.from('child'));
       console.log('reserved');
       process.stdin.once('data', () => { ch.commit(); console.log('committed'); ch.close(); process.exit(0); });`,
      [ch.name],
      { stdio: ['pipe', 'pipe', 'pipe'] },
    ),
  );
  const done = collect(child);
  await waitForLine(child, /reserved/);
  const lock = Atomics.load(i32, SEND_LOCK);
  assert.notEqual(lock, 0, 'the child holds the send lock');
  ch.discard();
  assert.equal(Atomics.load(i32, SEND_LOCK), lock, 'discard() without a reservation leaves the lock alone');
  assert.equal(ch.trySend('parent'), false, 'the lock is still the child\'s');
  const sending = ch.send('parent', T);
  await sleep(300);
  assert.equal(await settled(sending), false, 'send() waits for the child\'s commit');
  child.stdin!.end('go\n');
  await withTimeout(sending, 10_000, 'send after the child committed');
  assert.equal((await done).code, 0);
  const r = await dumped(t, ch.name, 3);
  assert.deepEqual(r.got, ['010203', hex(Buffer.from('child')), hex(Buffer.from('parent'))]);
});

test('while a reservation is open: sync sends and reserves fail with EBUSY; async send()/reserve() wait for commit and keep call order', async (t) => {
  const ch = channel(t);
  const { i32 } = raw(ch.name);
  const v = ch.reserveSync(50);
  fillMessage(v, 0);
  for (const [what, op] of [
    ['trySend', () => ch.trySend('x')],
    ['sendSync', () => ch.sendSync('x', { timeout: 100 })],
    ['tryReserve', () => ch.tryReserve(1)],
    ['reserveSync', () => ch.reserveSync(1, { timeout: 100 })],
  ] as const) {
    assert.throws(op, isBusy, `${what} during a reservation`);
  }
  const second = ch.send(message(1, 20), T);
  const third = ch.reserve(30, T).then((w) => {
    fillMessage(w, 2);
    ch.commit();
  });
  const fourth = ch.send(message(3, 40), T);
  await sleep(200);
  assert.equal(await settled(second), false, 'send() waits for the open reservation');
  assert.equal(await settled(third), false);
  assert.equal(Atomics.load(i32, HEAD), 0, 'nothing published yet');
  ch.commit();
  await withTimeout(Promise.all([second, third, fourth]), 10_000, 'the queued calls complete after commit()');
  // The same with discard(): the reserved message is dropped, the queued send goes.
  ch.reserveSync(10).fill(0xee);
  const fifth = ch.send(message(4, 8), T);
  await sleep(50);
  assert.equal(await settled(fifth), false);
  ch.discard();
  await withTimeout(fifth, 10_000, 'the queued send completes after discard()');
  const r = await dumped(t, ch.name, 5);
  assert.deepEqual(r.got, [hex(message(0, 50)), hex(message(1, 20)), hex(message(2, 30)), hex(message(3, 40)), hex(message(4, 8))]);
  assert.equal(r.extra, null);
});

test('a reservation over maxMessage is a TooLargeError in every form; maxMessage itself is fine', async (t) => {
  const ch = channel(t);
  const { i32 } = raw(ch.name);
  const fields = { code: 'EMSGSIZE' };
  throwsLike(() => ch.tryReserve(ch.maxMessage + 1), TooLargeError, fields);
  throwsLike(() => ch.reserveSync(ch.maxMessage + 1), TooLargeError, fields);
  throwsLike(() => ch.tryReserve(1 << 30), TooLargeError, fields);
  assert.equal(Atomics.load(i32, SEND_LOCK), 0, 'no lock left behind');
  const v = ch.tryReserve(ch.maxMessage)!;
  assert.equal(v.length, ch.maxMessage);
  ch.discard();
  assert.equal((await ch.reserve(ch.maxMessage, T)).length, ch.maxMessage);
  ch.discard();
  await rejectsLike(ch.reserve(ch.maxMessage + 1), TooLargeError, fields);
  await rejectsLike(ch.reserve(1 << 30), TooLargeError, fields);
  assert.equal(ch.trySend('ok'), true);
});

test('negative and non-integer lengths are rejected (async: a rejected promise), leaving nothing reserved', async (t) => {
  const ch = channel(t);
  const { i32 } = raw(ch.name);
  for (const bad of [-1, -8, 1.5, 0.1, Number.NaN, Infinity, -Infinity, '8', null, undefined, 2 ** 32]) {
    const n = bad as unknown as number;
    throwsLike(() => ch.tryReserve(n), InvalidArgumentError);
    throwsLike(() => ch.reserveSync(n, { timeout: 10 }), InvalidArgumentError);
    let p: Promise<Uint8Array> | undefined;
    assert.doesNotThrow(() => (p = ch.reserve(n, { timeout: 10 })), `reserve(${String(bad)}) rejects, not throws`);
    await rejectsLike(p!, InvalidArgumentError);
    assert.equal(Atomics.load(i32, SEND_LOCK), 0, `no lock left behind by ${String(bad)}`);
    throwsLike(() => ch.commit(), Error, { code: 'EBUSY' });
  }
  assert.equal(Atomics.load(i32, HEAD), 0);
  assert.equal(ch.trySend('fine'), true);
});

// ---- zero-copy receive -------------------------------------------------------

test('tryReceiveView / receiveViewSync / receiveView: a view of the message in the ring, consumed only by release()', async (t) => {
  const ch = channel(t);
  const { i32 } = raw(ch.name);
  const r = await finished(
    killOnExit(
      t,
      spawnNode(
        `import { Channel } from 'interprocess';
         const ch = Channel.open(process.argv[1]);
         const b = Buffer.alloc(1000); for (let k = 0; k < 1000; k++) b[k] = (k * 7 + 1) & 255;
         ch.sendSync('alpha'); ch.sendSync(b); ch.sendSync(''); ch.sendSync('omega'); ch.close();`,
        [ch.name],
      ),
    ),
    'sender',
  );
  assert.equal(r.code, 0, r.stderr);
  const big = Buffer.alloc(1000);
  for (let k = 0; k < 1000; k++) big[k] = (k * 7 + 1) & 255;
  const expect: Array<[string, Buffer, () => Uint8Array | undefined | Promise<Uint8Array>]> = [
    ['receiveViewSync', Buffer.from('alpha'), () => ch.receiveViewSync(T)],
    ['receiveView', big, () => ch.receiveView(T)],
    ['tryReceiveView', Buffer.alloc(0), () => ch.tryReceiveView()],
    ['tryReceiveView', Buffer.from('omega'), () => ch.tryReceiveView()],
  ];
  for (const [form, want, get] of expect) {
    const tail = Atomics.load(i32, TAIL);
    const used = ch.stat().used;
    const v = await get();
    assert.ok(v instanceof Uint8Array && v.buffer instanceof SharedArrayBuffer, `${form} gives a view into the ring`);
    assert.equal(v.byteOffset, RING + (tail % ch.capacity) + 8, `${form}: the payload at tail`);
    assert.deepEqual(Buffer.from(v), want, form);
    await sleep(20);
    assert.equal(Atomics.load(i32, TAIL), tail, `${form}: nothing consumed before release()`);
    assert.equal(ch.stat().used, used);
    ch.release();
    assert.equal(Atomics.load(i32, TAIL), tail + align8(8 + want.length), `${form}: release() moves the tail past the record`);
  }
  assert.equal(ch.tryReceiveView(), undefined);
  assert.equal(ch.stat().used, 0);
});

test('a held view keeps its room: a full ring stays full until release() (another handle, then another process)', async (t) => {
  const ch = channel(t);
  const tx = reopen(t, ch);
  let sent = 0;
  while (tx.trySend(message(sent, 1000))) sent++;
  assert.equal(sent, 4, 'four 1008-byte records fill a 4 KiB ring');
  const v = ch.tryReceiveView()!;
  assert.deepEqual(Buffer.from(v), message(0, 1000));
  assert.equal(tx.trySend(message(4, 1000)), false, 'no room while the view is held');
  assert.equal(tx.tryReserve(1000), undefined);
  await rejectsLike(tx.send(message(4, 1000), { timeout: 150 }), TimeoutError);
  assert.deepEqual(Buffer.from(v), message(0, 1000), 'the view is intact');
  ch.release();
  // 64 bytes at the end + the released 1008 at the start: exactly a wrapped 1008-byte record.
  assert.equal(tx.trySend(message(4, 1000)), true, 'room after release()');
  assert.equal(ch.stat().used, 4096);
  for (let k = 1; k <= 4; k++) assert.deepEqual(ch.tryReceive(), message(k, 1000));
  assert.equal(ch.tryReceive(), undefined);

  // The same with a sender in another process, waiting asynchronously for room.
  const child = killOnExit(
    t,
    spawnNode(
      `${CHILD_COMMON}
       const ch = Channel.open(process.argv[1]);
       let i = 0;
       while (ch.trySend(fill(Buffer.alloc(1000), i))) i++;
       console.log('full ' + i);
       await ch.send(fill(Buffer.alloc(1000), i), T);
       console.log('sent');
       ch.close();`,
      [ch.name],
    ),
  );
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  const done = collect(child);
  await until(() => /full \d+/.test(out), () => `the child fills the ring; it said: ${out}`);
  const n = Number(/full (\d+)/.exec(out)![1]);
  const w = ch.receiveViewSync(T);
  assert.equal(seqOf(w), 0);
  await sleep(500);
  assert.doesNotMatch(out, /sent/, 'the child cannot send while the view is held');
  ch.release();
  await until(() => /sent/.test(out), 'the child sends after release()');
  const r = await done;
  assert.equal(r.code, 0, r.stderr);
  for (let k = 1; k <= n; k++) assert.equal(seqOf(ch.receiveSync(T)), k);
});

test('while a view is out: sync and try receives fail with EBUSY; async receives wait for release() and get the next messages', async (t) => {
  const ch = channel(t);
  const tx = reopen(t, ch);
  for (let i = 0; i < 4; i++) tx.trySend(message(i, 10 + i));
  const v = ch.receiveViewSync(T);
  assert.equal(seqOf(v), 0);
  for (const [what, op] of [
    ['tryReceive', () => ch.tryReceive()],
    ['receiveSync', () => ch.receiveSync({ timeout: 100 })],
    ['tryReceiveView', () => ch.tryReceiveView()],
    ['receiveViewSync', () => ch.receiveViewSync({ timeout: 100 })],
  ] as const) {
    assert.throws(op, isBusy, `${what} with a view out`);
  }
  const next = ch.receive(T);
  const nextView = ch.receiveView(T);
  const last = ch.receive(T);
  await sleep(100);
  assert.equal(await settled(next), false, 'receive() waits for release()');
  assert.equal(seqOf(v), 0, 'the held view still shows message 0');
  ch.release();
  assert.deepEqual(await withTimeout(next, 5000, 'receive after release'), message(1, 11));
  const w = await withTimeout(nextView, 5000, 'receiveView after release');
  assert.deepEqual(Buffer.from(w), message(2, 12));
  await sleep(50);
  assert.equal(await settled(last), false, 'the receive queued behind a view waits for its release');
  ch.release();
  assert.deepEqual(await withTimeout(last, 5000, 'receive after the second release'), message(3, 13));
});

test('release() without a view out fails', (t) => {
  const ch = channel(t);
  throwsLike(() => ch.release(), Error, { code: 'EBUSY' });
  ch.trySend('x');
  ch.tryReceiveView();
  ch.release();
  throwsLike(() => ch.release(), Error, { code: 'EBUSY' }); // twice
  ch.trySend('y');
  ch.tryReceive();
  throwsLike(() => ch.release(), Error, { code: 'EBUSY' }); // after a copying receive
});

test('close() with a view out leaves that message for the next receiver; with a reservation open, the reservation is dropped', async (t) => {
  const ch = channel(t);
  const { i32 } = raw(ch.name);
  ch.trySend(message(0, 30));
  ch.trySend(message(1, 40));
  const rx = Channel.open(ch.name);
  t.after(() => rx.close());
  const v = rx.receiveViewSync(T);
  assert.equal(seqOf(v), 0);
  assert.equal(Atomics.load(i32, RECEIVER_PID), process.pid);
  const tx = Channel.open(ch.name);
  t.after(() => tx.close());
  tx.reserveSync(100).fill(0xee);
  tx.close();
  assert.equal(Atomics.load(i32, SEND_LOCK), 0, 'closing with a reservation open frees the send lock');
  rx.close();
  assert.equal(Atomics.load(i32, RECEIVER_PID), 0, 'the receiver place is free');
  assert.equal(Atomics.load(i32, TAIL), 0, 'the viewed message was not consumed');
  ch.trySend(message(2, 50));
  const r = await dumped(t, ch.name, 3);
  assert.deepEqual(r.got, [hex(message(0, 30)), hex(message(1, 40)), hex(message(2, 50))], 'a new receiver (another process) gets the viewed message first');
  assert.equal(r.extra, null, 'the dropped reservation never arrives');
});

test('a second receiver handle in this process cannot take the message another handle holds as a view', (t) => {
  const ch = channel(t);
  ch.trySend(message(0, 10));
  ch.trySend(message(1, 11));
  const a = reopen(t, ch);
  const b = reopen(t, ch);
  const v = a.tryReceiveView()!;
  assert.equal(seqOf(v), 0);
  // docs/channel.md: "another live receiver makes this fail (EBUSY)". Were b let in, it would
  // get message 0 a second time (tail has not moved), and its release() would free a's room.
  let got: Uint8Array | undefined;
  const err = (() => {
    try {
      got = b.tryReceiveView();
    } catch (e) {
      return e;
    }
    return undefined;
  })();
  assert.ok(err !== undefined && isBusy(err), `b is refused with EBUSY; instead it received ${got ? `message ${seqOf(got)}` : String(got)}`);
  a.release();
  assert.equal(seqOf(a.tryReceive()!), 1);
});

test('a receive queued behind a held view is not failed by a dead sender while messages remain', async (t) => {
  const ch = channel(t);
  // The sender sends three messages and dies (exits without close(): its slot keeps its pid).
  const r = await finished(
    killOnExit(
      t,
      spawnNode(
        `${CHILD_COMMON}
         const ch = Channel.open(process.argv[1]);
         for (let i = 0; i < 3; i++) ch.sendSync(fill(Buffer.alloc(20), i));
         process.exit(0);`,
        [ch.name],
      ),
    ),
    'sender',
  );
  assert.equal(r.code, 0, r.stderr);
  assert.equal(ch.stat().liveSenders, 0);
  const v = ch.receiveViewSync(T);
  assert.equal(seqOf(v), 0);
  const next = ch.receive({ timeout: 10_000 });
  next.catch(() => {});
  await sleep(400); // several of the pump's 100 ms peer checks
  ch.release();
  const m = await withTimeout(next, 5000, 'the queued receive');
  assert.equal(seqOf(m), 1, 'message 1 was there all along');
  assert.equal(seqOf(ch.tryReceive()!), 2);
  // With the ring empty, the dead sender does end the wait.
  await rejectsLike(ch.receive({ timeout: 10_000 }), PeerGoneError, { code: 'EPIPE' });
});

test('a send queued behind its own reservation is not failed by a dead receiver while there is room', async (t) => {
  const ch = channel(t);
  // A receiver attaches and dies (exits without close(): receiver_pid keeps its pid).
  const r = await finished(
    killOnExit(t, spawnNode(`import { Channel } from 'interprocess'; const ch = Channel.open(process.argv[1]); ch.tryReceive(); process.exit(0);`, [ch.name])),
    'receiver',
  );
  assert.equal(r.code, 0, r.stderr);
  assert.equal(ch.stat().receiverAlive, false);
  ch.reserveSync(10).fill(1);
  const queued = ch.send('queued', { timeout: 10_000 });
  queued.catch(() => {});
  await sleep(400);
  ch.commit();
  // docs/channel.md: "A sender never fails while there is room."
  await withTimeout(queued, 5000, 'the queued send');
  assert.equal(ch.stat().used, 24 + 16);
  // Without room, the dead receiver does end the wait.
  while (ch.trySend(Buffer.alloc(100)));
  await rejectsLike(ch.send(Buffer.alloc(100), { timeout: 10_000 }), PeerGoneError, { code: 'EPIPE' });
});

// ---- sustained load across processes ----------------------------------------

interface Tally {
  zero: number;
  max: number;
  maxAtHalf: number;
  wraps: number;
  wrapAtLast8: number;
  wrapHalf: number;
  endExact: number;
  fitLast8: number;
  views: number;
  copies: number;
}

/** Runs SENDER and RECEIVER in two child processes on a fresh channel; compares their hashes. */
async function pipeline(
  t: TestContext,
  o: { sender: string; receiver: string; count: number; seed: number; profile: 'edge' | 'small'; capacity?: number; prepare?: (ch: Channel) => void },
): Promise<Tally> {
  const ch = channel(t, o.capacity ?? 4096);
  o.prepare?.(ch);
  const rx = killOnExit(t, spawnNode(RECEIVER, [ch.name, o.receiver, String(o.count), String(o.seed)]));
  const tx = killOnExit(t, spawnNode(SENDER, [ch.name, o.sender, String(o.count), String(o.seed), o.profile]));
  const [r, s] = await Promise.all([finished(rx, 'receiver', 60_000), finished(tx, 'sender', 60_000)]);
  assert.equal(s.code, 0, `sender (${o.sender}): ${s.stderr}`);
  assert.equal(r.code, 0, `receiver (${o.receiver}): ${r.stderr}`);
  const sent = JSON.parse(s.stdout) as { hash: string; count: number };
  const got = JSON.parse(r.stdout) as { hash: string; count: number; tally: Tally };
  assert.equal(got.count, o.count);
  assert.equal(got.hash, sent.hash, 'sha256 over everything sent = over everything received, in order');
  return got.tally;
}

function assertEdges(tally: Tally): void {
  const text = JSON.stringify(tally);
  assert.ok(tally.zero > 0, `zero-length messages: ${text}`);
  assert.ok(tally.max > 0, `maxMessage messages: ${text}`);
  assert.ok(tally.maxAtHalf > 0, `a maxMessage record filling the second half exactly: ${text}`);
  assert.ok(tally.endExact > 20, `records ending exactly at the ring end: ${text}`);
  assert.ok(tally.fitLast8 > 0, `records fitting the last 8 bytes: ${text}`);
  assert.ok(tally.wraps > 20, `wrapped records: ${text}`);
  assert.ok(tally.wrapAtLast8 > 0, `records wrapping from the last 8 bytes: ${text}`);
  assert.ok(tally.wrapHalf > 0, `records wrapping over half the ring: ${text}`);
}

const EDGE_COUNT = 4000;
const pairs: Array<[string, string]> = [
  ['reserveSync', 'receiveViewSync'],
  ['reserve', 'receiveView'],
  ['reserveSync', 'receiveView'],
  ['reserve', 'receiveViewSync'],
  ['tryReserve', 'tryReceiveView'],
  ['sendSync', 'receiveViewSync'],
  ['send', 'receiveView'],
  ['reserveSync', 'receiveSync'],
  ['reserve', 'receive'],
  ['mixed', 'mixed'],
];
for (const [sender, receiver] of pairs) {
  test(`${EDGE_COUNT} messages of edge-hitting sizes, ${sender} -> ${receiver}, across processes: sha256 and order hold`, async (t) => {
    const tally = await pipeline(t, { sender, receiver, count: EDGE_COUNT, seed: 1 + sender.length * 31 + receiver.length, profile: 'edge' });
    t.diagnostic(JSON.stringify(tally));
    assertEdges(tally);
    if (receiver.includes('View')) assert.equal(tally.views, EDGE_COUNT);
  });
}

test('head and tail crossing 2^32 (mixed methods on both sides): nothing changes', async (t) => {
  const start = 0xfffff800; // 2 KiB before the indices wrap, at ring offset 2048
  let i32: Int32Array | undefined;
  const tally = await pipeline(t, {
    sender: 'mixed',
    receiver: 'mixed',
    count: 3000,
    seed: 99,
    profile: 'edge',
    prepare: (ch) => {
      i32 = raw(ch.name).i32;
      Atomics.store(i32, HEAD, start | 0);
      Atomics.store(i32, TAIL, start | 0);
    },
  });
  assertEdges(tally);
  const head = Atomics.load(i32!, HEAD) >>> 0;
  assert.ok(head < start, `head went round 2^32 (now ${head})`);
  assert.equal(Atomics.load(i32!, TAIL) >>> 0, head);
});

const MANY = 200_000;
for (const [sender, receiver] of [
  ['send', 'receiveSync'],
  ['sendSync', 'receive'],
  ['reserve', 'receiveViewSync'],
  ['reserveSync', 'receiveView'],
] as const) {
  test(`${MANY} small messages through a 4 KiB ring, ${sender} -> ${receiver}: constant wrap and back-pressure, checksum holds`, async (t) => {
    const tally = await pipeline(t, { sender, receiver, count: MANY, seed: 5, profile: 'small' });
    assert.ok(tally.wraps + tally.endExact > 1000, `went round the ring many times: ${JSON.stringify(tally)}`);
    assert.ok(tally.zero > 0);
  });
}

// ---- order of async calls on one handle -------------------------------------

test('1000 un-awaited send() calls (one reserve() among them) into a 4 KiB ring arrive in call order while a child drains slowly', async (t) => {
  const ch = channel(t);
  const N = 1000;
  const child = killOnExit(t, spawnNode(DRAIN, [ch.name, String(N), '25', '3', '200']));
  const resolved: number[] = [];
  const calls: Array<Promise<void>> = [];
  for (let i = 0; i < N; i++) {
    if (i === 500) {
      calls.push(
        ch.reserve(77, T).then((v) => {
          fillMessage(v, i);
          ch.commit();
          resolved.push(i);
        }),
      );
    } else {
      calls.push(ch.send(message(i, 60 + (i % 50)), T).then(() => void resolved.push(i)));
    }
  }
  await withTimeout(Promise.all(calls), 30_000, 'all sends complete');
  // Sends resolve in call order. (The reserve() promise may resolve a microtask or two ahead of
  // the sends settled just before it: send() adds a .then() hop; only the messages' order matters.)
  assert.deepEqual(
    resolved.filter((i) => i !== 500),
    range(0, N).filter((i) => i !== 500),
    'the send() promises resolve in call order',
  );
  const r = await drained(child);
  assert.deepEqual(r.seqs, range(0, N), 'the messages arrive in call order');
  assert.equal(r.lengths[500], 77);
  assert.equal(r.extra, null);
});

test('several un-awaited receive() calls (a receiveView() among them) resolve in call order with consecutive messages', async (t) => {
  const ch = channel(t);
  const N = 20;
  const order: number[] = [];
  const got: Array<Promise<Buffer>> = [];
  for (let k = 0; k < N; k++) {
    if (k === 10) {
      got.push(
        ch.receiveView(T).then((v) => {
          order.push(k);
          const copy = Buffer.from(v);
          ch.release();
          return copy;
        }),
      );
    } else {
      got.push(ch.receive(T).then((m) => (order.push(k), m)));
    }
  }
  await sleep(50);
  assert.equal(order.length, 0);
  const child = killOnExit(t, spawnNode(SENDER, [ch.name, 'sendSync', String(N), '3', 'small']));
  const messages = await withTimeout(Promise.all(got), 20_000, 'all receives resolve');
  assert.deepEqual(messages, smallMessages(3, N), 'receive #k got message k');
  assert.deepEqual(order, range(0, N), 'resolved in call order');
  assert.equal((await finished(child, 'sender')).code, 0);
});

test('aborting queued sends (the first, one in the middle, the last) rejects them with AbortError and they are never sent', async (t) => {
  const ch = channel(t);
  let filled = 0;
  while (ch.trySend(message(filled, 200))) filled++;
  const N = 100;
  const aborted = new Set([filled, filled + 50, filled + N - 1]);
  const controllers = new Map<number, AbortController>();
  const calls = new Map<number, Promise<void>>();
  for (let i = filled; i < filled + N; i++) {
    const ac = new AbortController();
    controllers.set(i, ac);
    calls.set(i, ch.send(message(i, 200), { ...T, signal: ac.signal }));
  }
  await sleep(50); // the queue's pump is waiting for room now
  for (const i of aborted) {
    controllers.get(i)!.abort(new Error(`abort ${i}`));
    const err = await rejectsLike(withTimeout(calls.get(i)!, 2000, `send ${i} rejects when aborted`), AbortError);
    assert.equal(err.name, 'AbortError');
  }
  const child = killOnExit(t, spawnNode(DRAIN, [ch.name, String(filled + N - aborted.size), '10', '2', '300']));
  for (const [i, p] of calls) if (!aborted.has(i)) await withTimeout(p, 20_000, `send ${i}`);
  const r = await drained(child);
  assert.deepEqual(r.seqs, range(0, filled + N).filter((i) => !aborted.has(i)));
  assert.equal(r.extra, null, 'the aborted messages do not come later either');
});

test('a queued receive with a timeout times out in its place; the calls around it get consecutive messages', async (t) => {
  const ch = channel(t);
  const a = ch.receive(T);
  const t0 = performance.now();
  const b = ch.receive({ timeout: 300 });
  const c = ch.receiveView(T);
  const ac = new AbortController();
  const d = ch.receive({ ...T, signal: ac.signal });
  const e = ch.receive(T);
  await rejectsLike(withTimeout(b, 10_000, 'the timed receive ends'), TimeoutError);
  assert.ok(performance.now() - t0 >= 250, 'not before its timeout');
  ac.abort();
  await rejectsLike(d, AbortError);
  assert.equal(await settled(a), false);
  const child = killOnExit(t, spawnNode(SENDER, [ch.name, 'sendSync', '3', '11', 'small']));
  const first = await withTimeout(a, 10_000, 'receive a');
  const view = await withTimeout(c, 10_000, 'receiveView c');
  const v = Buffer.from(view);
  ch.release();
  const third = await withTimeout(e, 10_000, 'receive e');
  assert.equal((await finished(child, 'sender')).code, 0);
  // SENDER with seed 11 / 'small': recompute what it sent to compare whole messages.
  const [m0, m1, m2] = smallMessages(11, 3);
  assert.deepEqual([first, v, third], [m0, m1, m2]);
});

/** The messages SENDER sends in its 'small' profile with a given seed (sizes rnd() % 41). */
function smallMessages(seed: number, count: number): Buffer[] {
  let s = seed;
  const rnd = (): number => (s = (Math.imul(s, 1103515245) + 12345) & 0x7fffffff);
  return range(0, count).map((i) => message(i, rnd() % 41));
}

test('a queued send with a timeout times out in its place and is not sent; the others are', async (t) => {
  const ch = channel(t);
  let filled = 0;
  while (ch.trySend(message(filled, 300))) filled++;
  const x = ch.send(message(filled, 300), T);
  const y = ch.send(message(filled + 1, 300), { timeout: 300 });
  const z = ch.send(message(filled + 2, 300), T);
  await rejectsLike(withTimeout(y, 10_000, 'the timed send ends'), TimeoutError);
  assert.equal(await settled(x), false);
  const child = killOnExit(t, spawnNode(DRAIN, [ch.name, String(filled + 2), '1000', '0', '300']));
  await withTimeout(Promise.all([x, z]), 20_000, 'the other sends');
  const r = await drained(child);
  assert.deepEqual(r.seqs, [...range(0, filled + 1), filled + 2]);
  assert.equal(r.extra, null);
});

// ---- the event loop keeps running ---------------------------------------------

for (const op of ['receive', 'receiveView', 'send', 'reserve'] as const) {
  test(`the event loop keeps running while ${op}() waits`, async (t) => {
    const ch = channel(t);
    const sending = op === 'send' || op === 'reserve';
    // Fill the ring completely: 8 records of 504, one of 56, one of 8 = 4096.
    if (sending) for (const n of [496, 48, 0]) while (ch.trySend(Buffer.alloc(n)));
    if (sending) assert.equal(ch.stat().used, 4096);
    // The peer acts when told: sends one message, or drains the ring.
    const child = killOnExit(
      t,
      spawnNode(
        `import { Channel } from 'interprocess';
         const ch = Channel.open(process.argv[1]);
         console.log('ready');
         process.stdin.once('data', () => {
           if (process.argv[2] === 'send') ch.sendSync('hello');
           else { let n = 0; while (ch.tryReceive()) n++; if (n === 0) throw new Error('ring empty'); }
           ch.close();
           process.exit(0);
         });`,
        [ch.name, sending ? 'drain' : 'send'],
        { stdio: ['pipe', 'pipe', 'pipe'] },
      ),
    );
    const done = collect(child);
    await waitForLine(child, /ready/, 15_000);
    let ticks = 0;
    const timer = setInterval(() => ticks++, 10);
    t.after(() => clearInterval(timer));
    const pending: Promise<unknown> =
      op === 'receive'
        ? ch.receive(T)
        : op === 'receiveView'
          ? ch.receiveView(T).then((v) => (ch.release(), v.length))
          : op === 'send'
            ? ch.send('late', T)
            : ch.reserve(500, T).then((v) => (v.fill(1), ch.commit(), v.length));
    await sleep(1000);
    assert.equal(await settled(pending), false, `${op}() is still waiting`);
    assert.ok(ticks >= 20, `setInterval ticked ${ticks} times in the second ${op}() waited`);
    child.stdin!.end('go\n');
    await withTimeout(pending, 10_000, `${op}() completes once the peer acts`);
    const r = await done;
    assert.equal(r.code, 0, r.stderr);
  });
}

test('nothing is left behind in /dev/shm', () => {
  assert.deepEqual(shmEntries(`/ipt-${process.pid}-zc`), []);
});


test('an async call given a signal already aborted, or a bad timeout, fails even when it could finish at once (and takes nothing)', async (t) => {
  const ch = channel(t);
  const aborted = AbortSignal.abort(new Error('stop'));
  const err = await rejectsLike(ch.send('x', { signal: aborted }), AbortError, { code: 'ABORT_ERR' });
  assert.equal((err.cause as Error).message, 'stop');
  await rejectsLike(ch.reserve(8, { signal: aborted }), AbortError, { code: 'ABORT_ERR' });
  await rejectsLike(ch.send('x', { timeout: -1 }), InvalidArgumentError, { code: 'ERR_OUT_OF_RANGE' });
  assert.equal(ch.tryReceive(), undefined, 'nothing was sent');
  ch.trySend('there');
  await rejectsLike(ch.receive({ signal: aborted }), AbortError, { code: 'ABORT_ERR' });
  await rejectsLike(ch.receiveView({ signal: aborted }), AbortError, { code: 'ABORT_ERR' });
  assert.equal(String(await ch.receive({ signal: new AbortController().signal, timeout: 0 })), 'there', 'the message stayed for the next receive');
});
