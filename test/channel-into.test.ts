// Channel receive-into (tryReceiveInto / receiveIntoSync / receiveInto): the
// next message copied into the caller's buffer, its length returned, nothing
// allocated. What lands in the target is compared byte for byte, including
// the bytes after the message, which must stay as they were.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { AbortError, Channel, InvalidArgumentError, TimeoutError, TooLargeError } from 'interprocess';
import { collect, rejectsLike, spawnNode, testChannel, throwsLike } from './helpers.js';

const T = { timeout: 20_000 };

/** A channel made for one test, closed and unlinked after it. */
const channel = (t: TestContext, capacity = 1 << 16): Channel => testChannel(t, 'into', capacity);

/** Message i of n bytes: byte k is (i*31 + k*7 + 3) & 255. */
function message(i: number, n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let k = 0; k < n; k++) b[k] = (i * 31 + k * 7 + 3) & 255;
  return b;
}

const SENTINEL = 0xee;

/** The bytes of any view, as a Buffer over the same memory. */
const bytesOf = (v: ArrayBufferView): Buffer => Buffer.from(v.buffer, v.byteOffset, v.byteLength);

test('each length from 0 to 140 (words four at a time, odd tails, past the word-copy limit of 128), 1000 and maxMessage lands exactly, in aligned, unaligned, Int32Array and DataView targets; the bytes after it stay', (t) => {
  const ch = channel(t);
  const lengths = [...Array.from({ length: 141 }, (_, n) => n), 1000, ch.maxMessage];
  const backing = new ArrayBuffer(ch.maxMessage + 16);
  const targets: Array<[string, () => ArrayBufferView]> = [
    ['Buffer, reused', ((b) => () => b)(Buffer.alloc(ch.maxMessage + 8))],
    ['Uint8Array at byte offset 1, reused', ((b) => () => b)(new Uint8Array(backing, 1, ch.maxMessage + 4))],
    ['Int32Array, reused', ((b) => () => b)(new Int32Array((ch.maxMessage + 8) / 4))],
    ['DataView at byte offset 4, reused', ((b) => () => b)(new DataView(backing, 4, ch.maxMessage + 8))],
    ['a new Buffer each time', () => Buffer.alloc(ch.maxMessage + 8)],
  ];
  let i = 0;
  for (const [label, target] of targets) {
    for (const n of lengths) {
      const into = target();
      bytesOf(into).fill(SENTINEL);
      const want = message(i, n);
      assert.equal(ch.trySend(want), true);
      assert.equal(ch.tryReceiveInto(into), n, `${label}: ${n} bytes`);
      const got = bytesOf(into);
      assert.deepEqual(got.subarray(0, n), want, `${label}: the ${n} bytes`);
      assert.ok(got.subarray(n).every((x) => x === SENTINEL), `${label}: nothing written after ${n} bytes`);
      i++;
    }
  }
  assert.equal(ch.tryReceiveInto(Buffer.alloc(8)), undefined, 'empty: undefined');
});

test('a message longer than the target: TooLargeError EMSGSIZE in every form, nothing written, the message stays first', async (t) => {
  const ch = channel(t);
  const small = Buffer.alloc(16, SENTINEL);
  ch.sendSync(message(1, 17));
  ch.sendSync(message(2, 3));
  throwsLike(() => ch.tryReceiveInto(small), TooLargeError, { code: 'EMSGSIZE', path: ch.name, message: /17 bytes, more than the 16-byte target/ });
  throwsLike(() => ch.receiveIntoSync(small, T), TooLargeError, { code: 'EMSGSIZE' });
  await rejectsLike(ch.receiveInto(small, T), TooLargeError, { code: 'EMSGSIZE' });
  assert.ok(small.every((x) => x === SENTINEL), 'nothing written');
  assert.deepEqual(ch.receiveSync(T), message(1, 17), 'still first, intact');
  assert.equal(ch.tryReceiveInto(small), 3);
  assert.deepEqual(small.subarray(0, 3), message(2, 3));
});

test('a detached or resized target is seen at its current length (no write past it)', (t) => {
  const ch = channel(t);
  const target = new Uint8Array(64);
  ch.sendSync(message(1, 10));
  assert.equal(ch.tryReceiveInto(target), 10);
  structuredClone(target.buffer, { transfer: [target.buffer] }); // detaches: the view now has no bytes
  ch.sendSync(message(2, 10));
  throwsLike(() => ch.tryReceiveInto(target), TooLargeError, { code: 'EMSGSIZE', message: /more than the 0-byte target/ });
  const Resizable = ArrayBuffer as unknown as new (n: number, o: { maxByteLength: number }) => ArrayBuffer & { resize(n: number): void };
  const grow = new Resizable(8, { maxByteLength: 64 });
  const tracking = new Uint8Array(grow); // length-tracking
  throwsLike(() => ch.tryReceiveInto(tracking), TooLargeError, { code: 'EMSGSIZE', message: /the 8-byte target/ });
  grow.resize(64);
  assert.equal(ch.tryReceiveInto(tracking), 10, 'the grown target is seen grown');
  assert.deepEqual(Buffer.from(tracking.subarray(0, 10)), message(2, 10));
});

test('a target that is not a Buffer, TypedArray or DataView is refused (async: a rejected promise), nothing taken', async (t) => {
  const ch = channel(t);
  ch.sendSync('kept');
  for (const bad of [undefined, null, 'text', 64, new ArrayBuffer(8), [1, 2, 3], {}]) {
    throwsLike(() => ch.tryReceiveInto(bad as never), InvalidArgumentError, { code: 'ERR_INVALID_ARG_TYPE' });
    throwsLike(() => ch.receiveIntoSync(bad as never), InvalidArgumentError, { code: 'ERR_INVALID_ARG_TYPE' });
    await rejectsLike(ch.receiveInto(bad as never), InvalidArgumentError, { code: 'ERR_INVALID_ARG_TYPE' });
  }
  assert.equal(ch.receiveSync(T).toString(), 'kept');
});

test('receive-into mixes with copies and views in order; it waits its turn behind a view and behind queued async receives', async (t) => {
  const ch = channel(t);
  for (let i = 0; i < 12; i++) ch.sendSync(message(i, 20 + i));
  const into = Buffer.alloc(100);
  const next = (i: number, got: Uint8Array | number): void => {
    const bytes = typeof got === 'number' ? into.subarray(0, got) : got;
    assert.deepEqual(Buffer.from(bytes), message(i, 20 + i), `message ${i}`);
  };
  next(0, ch.receiveSync(T)); // copies small messages out in a batch
  next(1, ch.receiveIntoSync(into, T));
  next(2, ch.receiveSync(T));
  next(3, ch.tryReceiveInto(into)!);
  const view = ch.receiveViewSync(T);
  next(4, view);
  throwsLike(() => ch.tryReceiveInto(into), InvalidArgumentError, { code: 'EBUSY' });
  throwsLike(() => ch.receiveIntoSync(into), InvalidArgumentError, { code: 'EBUSY' });
  const waiting = ch.receiveInto(into, T); // waits for the release
  await sleep(20);
  ch.release();
  next(5, await waiting);
  // Async calls are served in call order, whatever their form.
  const a = ch.receive(T);
  const b = ch.receiveInto(into, T);
  const c = ch.receive(T);
  next(6, await a);
  next(7, await b);
  next(8, await c);
  const other = Buffer.alloc(100); // another target: what was cached for the first is not used
  const n9 = ch.tryReceiveInto(other)!;
  assert.deepEqual(other.subarray(0, n9), message(9, 29));
  next(10, await ch.receiveInto(into, T));
  next(11, ch.receiveSync(T));
  assert.equal(ch.tryReceiveInto(into), undefined);
});

test('waiting: receiveIntoSync and receiveInto time out (TimeoutError), receiveInto aborts (AbortError), taking nothing; both get a message from another process', async (t) => {
  const ch = channel(t);
  const into = Buffer.alloc(64, SENTINEL);
  throwsLike(() => ch.receiveIntoSync(into, { timeout: 30 }), TimeoutError, { code: 'ETIMEDOUT' });
  await rejectsLike(ch.receiveInto(into, { timeout: 30 }), TimeoutError, { code: 'ETIMEDOUT' });
  const ac = new AbortController();
  const aborted = ch.receiveInto(into, { signal: ac.signal });
  ac.abort();
  await rejectsLike(aborted, AbortError, {});
  ac.abort();
  await rejectsLike(ch.receiveInto(into, { signal: ac.signal }), AbortError, {});
  assert.ok(into.every((x) => x === SENTINEL), 'nothing written by calls that took nothing');

  const pending = ch.receiveInto(into, T);
  const sender = spawnNode(
    `import { Channel } from 'interprocess';
     const ch = Channel.open(process.argv[1]);
     await new Promise((r) => setTimeout(r, 50));
     ch.sendSync('from another process');
     await new Promise((r) => setTimeout(r, 50));
     ch.sendSync('and a second one');
     ch.close();`,
    [ch.name],
  );
  const n = await pending;
  assert.equal(into.subarray(0, n).toString(), 'from another process');
  const m = ch.receiveIntoSync(into, T);
  assert.equal(into.subarray(0, m).toString(), 'and a second one');
  const r = await collect(sender);
  assert.equal(r.code, 0, r.stderr);
});

test('a closed handle: EBADF in every form', async (t) => {
  const ch = channel(t);
  const other = Channel.open(ch.name);
  other.close();
  throwsLike(() => other.tryReceiveInto(Buffer.alloc(8)), Error, { code: 'EBADF' });
  throwsLike(() => other.receiveIntoSync(Buffer.alloc(8)), Error, { code: 'EBADF' });
  await rejectsLike(other.receiveInto(Buffer.alloc(8)), Error, { code: 'EBADF' });
});
