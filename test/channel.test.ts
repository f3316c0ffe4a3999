// Channel core: order and integrity across real processes (sync and async
// waits), the ring's wrap edge and maximum size, back-pressure, peer death,
// timeouts, and the layout bytes a C program relies on (docs/channel.md).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { AbortError, Channel, PeerGoneError, TimeoutError, TooLargeError, posix } from 'interprocess';
import { collect, shmEntries, spawnNode, testChannel, waitForLine } from './helpers.js';

const SENDER = `
  import { Channel } from 'interprocess';
  import { createHash } from 'node:crypto';
  const [name, mode, count] = process.argv.slice(1);
  const ch = Channel.open(name);
  const h = createHash('sha256');
  let seed = 7;
  const rnd = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff);
  for (let i = 0; i < Number(count); i++) {
    // Mostly small, every 97th the largest allowed, lengths that hit the wrap edge.
    const len = i % 97 === 0 ? ch.maxMessage : i % 13 === 0 ? 0 : rnd() % 2500;
    const b = Buffer.alloc(len);
    for (let k = 0; k < len; k += 61) b[k] = (i + k) & 255;
    if (len >= 4) b.writeUInt32LE(i, 0);
    h.update(b);
    if (mode === 'sync') ch.sendSync(b, { timeout: 20000 });
    else await ch.send(b, { timeout: 20000 });
  }
  console.log(h.digest('hex'));
  ch.close();
`;

/** A channel made for one test, closed and unlinked after it. */
const channel = (t: import('node:test').TestContext, capacity = 1 << 16): Channel => testChannel(t, 'ch', capacity);
const T = { timeout: 20_000 };

for (const [sendMode, receiveMode] of [['sync', 'sync'], ['async', 'async'], ['sync', 'async'], ['async', 'sync'], ['sync', 'into-sync'], ['async', 'into-async']] as const) {
  test(`20000 messages of random sizes cross processes in order and intact (${sendMode} sender, ${receiveMode} receiver)`, async (t) => {
    const ch = channel(t);
    const N = 20000;
    const child = spawnNode(SENDER, [ch.name, sendMode, String(N)]);
    const done = collect(child);
    const h = createHash('sha256');
    const into = Buffer.alloc(ch.maxMessage); // receive-into: one buffer for every message
    for (let i = 0; i < N; i++) {
      if (receiveMode === 'into-sync') h.update(into.subarray(0, ch.receiveIntoSync(into, { timeout: 20000 })));
      else if (receiveMode === 'into-async') h.update(into.subarray(0, await ch.receiveInto(into, { timeout: 20000 })));
      else h.update(receiveMode === 'sync' ? ch.receiveSync({ timeout: 20000 }) : await ch.receive({ timeout: 20000 }));
    }
    const r = await done;
    assert.equal(r.code, 0, r.stderr);
    assert.equal(h.digest('hex'), r.stdout.trim(), 'same bytes, same order');
    assert.equal(ch.tryReceive(), undefined, 'nothing extra');
  });
}

// Elsewhere than on x86 the Channel makes its loads and stores Atomics calls (src/channel.ts, `load`
// and `release`): that path runs here in processes that see another process.arch from the start.
const ARM64 = { nodeArgs: ['--import', `data:text/javascript,Object.defineProperty(process, 'arch', { value: 'arm64' })`] };
const ARM64_RECEIVER = `
  import { Channel } from 'interprocess';
  import { createHash } from 'node:crypto';
  if (process.arch !== 'arm64') throw new Error('process.arch was not replaced');
  const [name, count] = process.argv.slice(1);
  const ch = Channel.open(name);
  const h = createHash('sha256');
  const into = Buffer.alloc(ch.maxMessage);
  for (let i = 0; i < Number(count); i++) {
    if (i % 3 === 0) h.update(ch.receiveSync({ timeout: 20000 }));
    else if (i % 3 === 1) h.update(into.subarray(0, ch.receiveIntoSync(into, { timeout: 20000 })));
    else {
      h.update(ch.receiveViewSync({ timeout: 20000 }));
      ch.release();
    }
  }
  console.log(h.digest('hex'));
  ch.close();
`;

test('the Atomics path (process.arch other than x86): 20000 messages of random sizes cross processes in order and intact, each receive form', async (t) => {
  const ch = channel(t);
  const N = 20000;
  const [sent, received] = await Promise.all([
    collect(spawnNode(SENDER, [ch.name, 'sync', String(N)], ARM64)),
    collect(spawnNode(ARM64_RECEIVER, [ch.name, String(N)], ARM64)),
  ]);
  assert.equal(sent.code, 0, sent.stderr);
  assert.equal(received.code, 0, received.stderr);
  assert.equal(received.stdout.trim(), sent.stdout.trim(), 'same bytes, same order');
  assert.equal(ch.tryReceive(), undefined, 'nothing extra');
});

test('the layout a C program reads: header kind 4 version 3, capacity at 64, max message at 68', (t) => {
  const ch = channel(t, 8192);
  const view = new DataView(openBuffer(ch.name));
  assert.equal(view.getUint32(0, true), 0x786d7069);
  assert.equal(view.getUint16(4, true), 3);
  assert.equal(view.getUint16(6, true), 4);
  assert.equal(view.getInt32(8, true), process.pid);
  assert.equal(view.getUint32(64, true), 8192);
  assert.equal(view.getUint32(68, true), 8192 / 2 - 8);
  assert.equal(ch.capacity, 8192);
  assert.equal(ch.maxMessage, 4088);
});

function openBuffer(name: string): SharedArrayBuffer {
  const shm = posix.SharedMemory.open(name);
  const b = shm.buffer;
  shm.close();
  return b;
}

/**
 * Two records of maxMessage bytes that fill a 4096-byte ring, whose payloads
 * hold, at every 8-byte ring offset q, a length of 0 and the stamp that a
 * record at q would have one lap later: (q + 4096) | 1.
 */
function decoys(ch: Channel): Buffer[] {
  return [0, 1].map((r) => {
    const m = Buffer.alloc(ch.maxMessage);
    const payloadAt = r * (ch.capacity / 2) + 8; // ring offset of the payload
    for (let k = 0; k + 8 <= m.length; k += 8) m.writeUInt32LE(((payloadAt + k + ch.capacity) | 1) >>> 0, k + 4);
    return m;
  });
}

test('an old payload never passes for a record: a sender clears the stamp where the next record will start (docs/channel.md)', (t) => {
  const ch = channel(t, 4096);
  const tx = Channel.open(ch.name);
  t.after(() => tx.close());
  const lap1 = decoys(ch);
  for (const m of lap1) tx.sendSync(m, T); // (two half-ring records: the ring exactly full)
  assert.equal(ch.stat().used, ch.capacity, 'a ring can be filled to the last byte');
  for (const m of lap1) assert.ok(ch.receiveSync(T).equals(m));
  // Lap 2: 16-byte records, each received at once; where the next would start the old payload says "a record of 0 bytes, stamped for here".
  const into = Buffer.alloc(64);
  for (let i = 0; i < ch.capacity / 16 + 8; i++) {
    const m = Buffer.alloc(8, i);
    if (i % 3 === 0) tx.sendSync(m);
    else {
      tx.reserveSync(8).set(m);
      tx.commit();
    }
    const forms = [() => ch.tryReceive(), () => into.subarray(0, ch.tryReceiveInto(into) ?? 0), () => Buffer.from(ch.tryReceiveView()!)];
    assert.deepEqual(forms[i % 3]!(), m, `message ${i}`);
    if (i % 3 === 2) ch.release();
    assert.equal(ch.tryReceive(), undefined, `after message ${i}: nothing`);
  }
});

test('a channel of layout version 1 (no stamps) or 2 (lock takers count a dead holder\'s record) is refused: ERR_LAYOUT_VERSION', (t) => {
  const ch = channel(t, 4096);
  const b = openBuffer(ch.name);
  for (const old of [1, 2]) {
    new DataView(b).setUint16(4, old, true);
    assert.throws(() => Channel.open(ch.name), { code: 'ERR_LAYOUT_VERSION', message: new RegExp(`has layout version ${old}; this build understands 3`) });
  }
  new DataView(b).setUint16(4, 3, true);
  Channel.open(ch.name).close();
});

test('a message over the maximum is refused before anything is written; the channel goes on', async (t) => {
  const ch = channel(t, 4096);
  assert.throws(() => ch.trySend(Buffer.alloc(ch.maxMessage + 1)), (e: unknown) => e instanceof TooLargeError && (e as TooLargeError).code === 'EMSGSIZE');
  await assert.rejects(ch.send(Buffer.alloc(5000)), TooLargeError);
  assert.equal(ch.trySend(Buffer.alloc(ch.maxMessage, 7)), true);
  assert.equal(ch.tryReceive()!.length, ch.maxMessage);
  assert.equal(ch.tryReceive(), undefined);
});

test('a damaged record (a length past the maximum) is EBADMSG in every receive form, async ones as rejected promises, never a sync throw', async (t) => {
  const ch = channel(t, 4096);
  ch.sendSync(Buffer.alloc(10, 1));
  const ring = new DataView(openBuffer(ch.name), 1024);
  ring.setUint32(0, 0x7fffffff, true); // the first record's length word
  const isBadMsg = (e: unknown): boolean => (e as { code?: string }).code === 'EBADMSG';
  assert.throws(() => ch.tryReceive(), isBadMsg);
  assert.throws(() => ch.receiveSync({ timeout: 100 }), isBadMsg);
  assert.throws(() => ch.tryReceiveInto(Buffer.alloc(64)), isBadMsg);
  for (const call of [() => ch.receive({ timeout: 100 }), () => ch.receiveInto(Buffer.alloc(64), { timeout: 100 }), () => ch.receiveView({ timeout: 100 })]) {
    let p: Promise<unknown> | undefined;
    assert.doesNotThrow(() => (p = call()));
    await assert.rejects(p!, isBadMsg);
  }
});

test('a full ring holds the sender back until another process drains it', async (t) => {
  const ch = channel(t, 4096);
  let sent = 0;
  while (ch.trySend(Buffer.alloc(500, sent))) sent++;
  assert.ok(sent >= 6 && sent <= 8, `a 4 KiB ring takes ${sent} records of 512 bytes`);
  const pending = ch.send(Buffer.from('after the drain'), { timeout: 10000 });
  const drainer = spawnNode(
    `import { Channel } from 'interprocess';
     const ch = Channel.open(process.argv[1]);
     let n = 0;
     for (;;) { const m = await ch.receive({ timeout: 10000 }); n++; if (m.toString() === 'after the drain') break; }
     console.log(n); ch.close();`,
    [ch.name],
  );
  await pending;
  const r = await collect(drainer);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(Number(r.stdout.trim()), sent + 1);
});

test('timeouts and aborts end a waiting receive; nothing is lost', async (t) => {
  const ch = channel(t);
  await assert.rejects(ch.receive({ timeout: 50 }), TimeoutError);
  assert.throws(() => ch.receiveSync({ timeout: 50 }), TimeoutError);
  const ac = new AbortController();
  const p = ch.receive({ signal: ac.signal });
  ac.abort();
  await assert.rejects(p, AbortError);
  assert.equal(ch.trySend('still here'), true);
  assert.equal((await ch.receive({ timeout: 1000 })).toString(), 'still here');
});

test('a sender that dies: its last messages arrive, then the waiting receiver hears "peer gone"', async (t) => {
  const ch = channel(t);
  const child = spawnNode(
    `import { Channel } from 'interprocess';
     const ch = Channel.open(process.argv[1]);
     ch.trySend('last words');
     console.log('sent');
     setInterval(() => {}, 1000);`,
    [ch.name],
  );
  await waitForLine(child, /sent/);
  assert.equal((await ch.receive({ timeout: 5000 })).toString(), 'last words');
  const waiting = ch.receive({ timeout: 10000 });
  child.kill('SIGKILL');
  const t0 = performance.now();
  await assert.rejects(waiting, (e: unknown) => e instanceof PeerGoneError && (e as PeerGoneError).code === 'EPIPE');
  assert.ok(performance.now() - t0 < 2000, 'noticed promptly');
});

test('a sender that closes properly is not "gone": the receiver waits for the next one', async (t) => {
  const ch = channel(t);
  for (const word of ['first', 'second']) {
    const child = spawnNode(
      `import { Channel } from 'interprocess';
       const ch = Channel.open(process.argv[1]); ch.trySend(process.argv[2]); ch.close();`,
      [ch.name, word],
    );
    assert.equal((await ch.receive({ timeout: 10000 })).toString(), word);
    assert.equal((await collect(child)).code, 0);
  }
});

test('nothing is left behind', () => {
  assert.deepEqual(shmEntries(`/ipt-${process.pid}-ch`), []);
});

test('copies handed out are the receiver\'s own: they stay intact while the ring is reused, and messages not yet handed out stay for the next receiver', async (t) => {
  const ch = channel(t, 4096);
  for (let i = 0; i < 10; i++) assert.equal(ch.trySend(Buffer.alloc(40, i)), true);
  const first = [ch.receiveSync(), ch.receiveSync(), ch.receiveSync()];
  assert.deepEqual(first.map((m) => m[0]), [0, 1, 2]);
  ch.close(); // 7 messages were published, perhaps copied ahead, but not handed out
  const next = Channel.open(ch.name);
  t.after(() => next.close());
  for (let i = 3; i < 10; i++) assert.deepEqual(next.receiveSync({ timeout: 1000 }), Buffer.alloc(40, i), `message ${i} for the next receiver`);
  assert.equal(next.tryReceive(), undefined);
  // Reuse every byte of the ring many times over: what was handed out does not change.
  for (let round = 0; round < 50; round++) {
    for (let i = 0; i < 20; i++) assert.equal(next.trySend(Buffer.alloc(100, 200 + (i % 50))), true);
    for (let i = 0; i < 20; i++) assert.equal(next.receiveSync().length, 100);
  }
  first.forEach((m, i) => assert.deepEqual(m, Buffer.alloc(40, i), `copy ${i} unchanged`));
});

test('copies of small messages are Buffers of their own: every length from 0 to 140, from each receive form, kept across many receives, none sharing a byte with another', async (t) => {
  const ch = channel(t);
  const want = (i: number, n: number): Buffer => Buffer.from(Array.from({ length: n }, (_, k) => (i * 7 + k * 13 + 1) & 255));
  const copies: Buffer[] = [];
  let i = 0;
  for (let round = 0; round < 3; round++) {
    for (let n = 0; n <= 140; n++) {
      assert.equal(ch.trySend(want(i, n)), true);
      const form = (i + round) % 3;
      const got = form === 0 ? ch.tryReceive() : form === 1 ? ch.receiveSync(T) : await ch.receive(T);
      assert.ok(Buffer.isBuffer(got), `copy ${i} is a Buffer`);
      assert.equal(got!.length, n);
      copies.push(got!);
      i++;
    }
  }
  // Several small copies at once too (a burst published before the first receive).
  for (let k = 0; k < 300; k++) assert.equal(ch.trySend(want(i + k, k % 130)), true);
  for (let k = 0; k < 300; k++) copies.push(ch.receiveSync(T));
  // Check each copy, then scribble over all of it: a later copy sharing any byte would change.
  copies.forEach((m, k) => {
    assert.deepEqual(m, want(k, k < i ? m.length : (k - i) % 130), `copy ${k} intact`);
    m.fill(0xee);
  });
});
