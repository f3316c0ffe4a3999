// Length-prefixed frames (docs/framing.md) over real pipes, sockets and
// processes, with a C peer that speaks the documented wire format.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import { join } from 'node:path';
import { PassThrough, Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import v8 from 'node:v8';
import vm from 'node:vm';
import {
  DEFAULT_MAX_FRAME_SIZE,
  FRAME_HEADER_SIZE,
  FrameDecoder,
  FrameEncoder,
  FrameParser,
  FrameReader,
  IpcError,
  InvalidArgumentError,
  PeerGoneError,
  TooLargeError,
  encodeFrame,
  pipe,
  spawnWithPipes,
  writeFrame,
} from 'interprocess';
import { collect, compilePeer, root, tempDir } from './helpers.js';

/**
 * A child's exit status and stderr. Unlike collect(), it leaves stdout alone
 * (collect() decodes it as UTF-8, which would mangle frames read from it).
 */
function exitOf(child: ChildProcess): Promise<{ code: number | null; stderr: string }> {
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stderr }));
  });
}

const MiB = 1024 * 1024;
const PIPE_BUF = 4096;

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;
const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** A seeded generator of numbers in [0, 1): the same frames on every run. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `n` pseudo-random bytes from `seed` (xorshift32): a misplaced byte shows. */
function content(n: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  let x = (seed * 2654435761 + 1) >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

/** Frames of sizes 0, 1, around every boundary that matters, and random ones up to 1 MiB. */
function randomFrames(seed: number, count: number, max = MiB): Buffer[] {
  const rand = prng(seed);
  const sizes = [0, 1, 2, 3, 4, 5, 0, 255, 256, PIPE_BUF - 4, PIPE_BUF, 65535, 65536, 65537, max, 0];
  while (sizes.length < count) sizes.push(Math.floor(rand() ** 3 * (max + 1)));
  return sizes.map((n, i) => content(n, seed * 1000 + i));
}

function assertSameFrames(got: readonly Buffer[], expected: readonly Buffer[], what = 'frame'): void {
  assert.equal(got.length, expected.length, `number of ${what}s`);
  for (let i = 0; i < expected.length; i++) {
    assert.ok(Buffer.isBuffer(got[i]), `${what} ${i} is a Buffer`);
    assert.equal(got[i]!.length, expected[i]!.length, `${what} ${i}: length`);
    assert.ok(got[i]!.equals(expected[i]!), `${what} ${i} (${expected[i]!.length} bytes): content differs`);
  }
}

/** Every frame until the end of the stream. */
async function readAll(reader: FrameReader): Promise<Buffer[]> {
  const frames: Buffer[] = [];
  for await (const f of reader) frames.push(f);
  return frames;
}

/** Runs a parser over `chunks`, returning the frames and the oversize errors in order. */
function parse(chunks: Iterable<Uint8Array>, maxFrameSize?: number): { frames: Buffer[]; errors: TooLargeError[]; parser: FrameParser } {
  const frames: Buffer[] = [];
  const errors: TooLargeError[] = [];
  const parser = new FrameParser(maxFrameSize === undefined ? undefined : { maxFrameSize }, (f) => frames.push(f), (e) => errors.push(e));
  for (const c of chunks) parser.push(c);
  return { frames, errors, parser };
}

function header(length: number): Buffer {
  const h = Buffer.alloc(FRAME_HEADER_SIZE);
  h.writeUInt32BE(length);
  return h;
}

const tooLarge = (size?: number) => (err: unknown): boolean => {
  assert.ok(err instanceof TooLargeError, `expected a TooLargeError, got ${String(err)}`);
  assert.ok(err instanceof IpcError);
  assert.equal(err.code, 'EMSGSIZE');
  assert.equal(err.errno, -90);
  if (size !== undefined) assert.match(err.message, new RegExp(`\\b${size} bytes`));
  return true;
};

const truncatedError = (progress: RegExp) => (err: unknown): boolean => {
  assert.ok(err instanceof PeerGoneError, `expected a PeerGoneError, got ${String(err)}`);
  assert.equal(err.code, 'ERR_FRAME_TRUNCATED');
  assert.match(err.message, progress);
  return true;
};

const invalid = (err: unknown): boolean => {
  assert.ok(err instanceof InvalidArgumentError, `expected an InvalidArgumentError, got ${String(err)}`);
  return true;
};

// ---------------------------------------------------------------- the format

test('encodeFrame writes a 4-byte big-endian length, then the payload', () => {
  assert.deepEqual(encodeFrame('hi'), Buffer.from([0, 0, 0, 2, 0x68, 0x69]));
  assert.deepEqual(encodeFrame(Buffer.alloc(0)), Buffer.from([0, 0, 0, 0]));
  assert.deepEqual(encodeFrame(''), Buffer.from([0, 0, 0, 0]));
  const big = encodeFrame(Buffer.alloc(0x010203, 7));
  assert.deepEqual(big.subarray(0, 4), Buffer.from([0x00, 0x01, 0x02, 0x03]));
  assert.equal(big.length, 4 + 0x010203);
  assert.deepEqual(encodeFrame(new Uint8Array([1, 2, 3]).subarray(1)), Buffer.from([0, 0, 0, 2, 2, 3]));
  assert.deepEqual(encodeFrame('é'), Buffer.from([0, 0, 0, 2, 0xc3, 0xa9]), 'strings are sent as UTF-8; the length counts bytes');
  assert.equal(FRAME_HEADER_SIZE, 4);
  assert.equal(DEFAULT_MAX_FRAME_SIZE, 16 * MiB);
});

test('FrameParser yields exactly the frames, whatever two places the byte stream is split at', () => {
  const frames = [Buffer.alloc(0), Buffer.from('a'), Buffer.alloc(0), Buffer.from('hello, frames'), content(40, 1), Buffer.alloc(0)];
  const wire = Buffer.concat(frames.map((f) => encodeFrame(f)));
  // Where a frame ends, the parser must not be mid-frame; anywhere else it must.
  const boundaries = new Set<number>([0]);
  let at = 0;
  for (const f of frames) boundaries.add((at += FRAME_HEADER_SIZE + f.length));
  for (let i = 0; i <= wire.length; i++) {
    const { frames: got, parser } = parse([wire.subarray(0, i)]);
    assert.equal(parser.midFrame, !boundaries.has(i), `midFrame after ${i} bytes`);
    assert.equal(got.length, [...boundaries].filter((b) => b > 0 && b <= i).length, `frames after ${i} bytes`);
    for (let j = i; j <= wire.length; j++) {
      const r = parse([wire.subarray(0, i), wire.subarray(i, j), wire.subarray(j)]);
      assertSameFrames(r.frames, frames);
      assert.equal(r.parser.midFrame, false);
    }
  }
  // One byte at a time, as plain Uint8Arrays rather than Buffers.
  const bytewise = parse([...wire].map((b) => new Uint8Array([b])));
  assertSameFrames(bytewise.frames, frames);
});

test('FrameParser yields exactly the frames when fed random chunk sizes (empty chunks included)', () => {
  for (const seed of [1, 2, 3]) {
    const frames = randomFrames(seed, 120, 70_000);
    const wire = Buffer.concat(frames.map((f) => encodeFrame(f)));
    const rand = prng(seed + 100);
    const chunks: Buffer[] = [];
    for (let at = 0; at < wire.length; ) {
      const n = Math.min(wire.length - at, Math.floor(rand() ** 2 * 20_000));
      chunks.push(wire.subarray(at, at + n));
      at += n;
    }
    assertSameFrames(parse(chunks).frames, frames);
  }
});

test('frames of random sizes from 0 to 1 MiB cross a real pipe intact and in order', async () => {
  const frames = randomFrames(7, 60);
  const { readable, writable } = pipe();
  const reader = new FrameReader(readable, { maxFrameSize: MiB });
  const got = readAll(reader);
  for (const f of frames) await writeFrame(writable, f, { maxFrameSize: MiB });
  writable.end();
  assertSameFrames(await got, frames);
  assert.equal(await reader.read(), null, 'read() after the end stays null');
});

test('zero-length frames are frames: an empty Buffer, never null', async () => {
  const { readable, writable } = pipe();
  const reader = new FrameReader(readable);
  for (let i = 0; i < 5; i++) await writeFrame(writable, Buffer.alloc(0));
  await writeFrame(writable, 'x');
  await writeFrame(writable, '');
  writable.end();
  const got = await readAll(reader);
  assert.deepEqual(got.map((f) => f.toString()), ['', '', '', '', '', 'x', '']);
  assert.ok(got.every((f) => Buffer.isBuffer(f)));
  assertSameFrames(parse([Buffer.alloc(12)]).frames, [Buffer.alloc(0), Buffer.alloc(0), Buffer.alloc(0)]);
});

// ---------------------------------------------------------------- streams

test('FrameEncoder and FrameDecoder carry frames through stream.pipeline over a real pipe', async () => {
  const frames = randomFrames(11, 40);
  const { readable, writable } = pipe();
  const got: Buffer[] = [];
  const sink = new Writable({
    objectMode: true,
    write(frame: Buffer, _enc, cb) {
      got.push(frame);
      cb();
    },
  });
  await Promise.all([
    pipeline(Readable.from(frames), new FrameEncoder({ maxFrameSize: MiB }), writable),
    pipeline(readable, new FrameDecoder({ maxFrameSize: MiB }), sink),
  ]);
  assertSameFrames(got, frames);
});

test('FrameEncoder passes each frame of up to PIPE_BUF - 4 bytes on as one chunk (one write per frame)', async () => {
  const encoder = new FrameEncoder();
  const chunks: Buffer[] = [];
  encoder.on('data', (c: Buffer) => chunks.push(c));
  const payloads = [Buffer.alloc(0), Buffer.from('small'), content(PIPE_BUF - 4, 3)];
  for (const p of payloads) encoder.write(p);
  encoder.end();
  await once(encoder, 'end');
  assert.equal(chunks.length, payloads.length, 'one chunk per frame');
  chunks.forEach((c, i) => assert.deepEqual(c, encodeFrame(payloads[i]!)));
});

test('FrameReader reads frames with read() and for await over a Unix socket', async () => {
  const { dir, cleanup } = tempDir('frame-sock');
  const path = join(dir, 'sock');
  const frames = randomFrames(5, 30, 200_000);
  const server = net.createServer(async (sock) => {
    for (const f of frames) await writeFrame(sock, f);
    sock.end();
  });
  try {
    server.listen(path);
    await once(server, 'listening');
    const client = net.connect(path);
    const reader = new FrameReader(client);
    const first = await reader.read();
    const second = await reader.read();
    const rest = await readAll(reader);
    assertSameFrames([first!, second!, ...rest], frames);
    assert.equal(await reader.read(), null);
  } finally {
    server.close();
    cleanup();
  }
});

test('a reader that does not read stops the writer: the writes stop completing, memory stays bounded', async () => {
  const { readable, writable } = pipe();
  const reader = new FrameReader(readable, { highWaterMark: 4 });
  const frame = content(16 * 1024, 9);
  const total = 512; // 8 MiB
  let accepted = 0;
  const writing = (async () => {
    for (let i = 0; i < total; i++) {
      await writeFrame(writable, frame);
      accepted++;
    }
    writable.end();
  })();
  // The writer has stalled once no write completes for many turns of the event loop.
  let last = -1;
  for (let still = 0; still < 50 && accepted < total; ) {
    await nextTurn();
    if (accepted === last) still++;
    else [still, last] = [0, accepted];
  }
  const acceptedBytes = accepted * (frame.length + FRAME_HEADER_SIZE);
  assert.ok(accepted < total, 'every write completed although nobody read');
  assert.ok(acceptedBytes < MiB, `${acceptedBytes} bytes were accepted while nobody read`);
  assert.ok(readable.isPaused(), 'the reader paused its stream');
  assert.ok(readable.readableLength < 256 * 1024, `${readable.readableLength} bytes wait in the stream`);
  // Reading lets the writer go on to the end.
  let n = 0;
  for await (const f of reader) {
    assert.ok(f.equals(frame), `frame ${n}`);
    n++;
  }
  await writing;
  assert.equal(n, total);
});

// ---------------------------------------------------------------- oversize

test('oversize on write: encodeFrame, writeFrame and FrameEncoder throw TooLargeError at once and write nothing', async () => {
  const limit = { maxFrameSize: 100 };
  assert.throws(() => encodeFrame(Buffer.alloc(101), limit), tooLarge(101));
  assert.equal(encodeFrame(Buffer.alloc(100), limit).length, 104, 'exactly maxFrameSize is allowed');
  assert.throws(() => encodeFrame(Buffer.alloc(1), { maxFrameSize: 0 }), tooLarge(1));
  assert.equal(encodeFrame('', { maxFrameSize: 0 }).length, 4);

  const { readable, writable } = pipe();
  const reader = new FrameReader(readable, limit);
  // Thrown synchronously (not a rejected promise), before anything reaches the stream.
  assert.throws(() => writeFrame(writable, Buffer.alloc(101), limit), tooLarge(101));
  assert.throws(() => writeFrame(writable, 'é'.repeat(51), limit), tooLarge(102), 'the limit counts UTF-8 bytes');
  assert.equal(writable.writableLength, 0);
  assert.equal(writable.bytesWritten, 0);
  await writeFrame(writable, 'after', limit);
  await writeFrame(writable, Buffer.alloc(100, 7), limit);
  const big = Buffer.alloc(DEFAULT_MAX_FRAME_SIZE + 1);
  assert.throws(() => writeFrame(writable, big), tooLarge(DEFAULT_MAX_FRAME_SIZE + 1), 'the default limit is 16 MiB');

  const encoder = new FrameEncoder(limit);
  const encoded = pipeline(encoder, writable);
  assert.throws(() => encoder.write(Buffer.alloc(101)), tooLarge(101));
  encoder.write('from the encoder');
  assert.throws(() => encoder.end(Buffer.alloc(200)), tooLarge(200), 'end(chunk) is checked as write(chunk) is');
  encoder.end('last');
  await encoded;
  const got = await readAll(reader);
  assert.deepEqual(
    got.map((f) => f.toString()),
    ['after', '\x07'.repeat(100), 'from the encoder', 'last'],
  );
});

test('oversize on read: the frame is skipped, read() rejects once, the next read() returns the next frame', async () => {
  // 64 MiB announced to a reader whose limit is 1 MiB, sent in 1 MiB pieces.
  const { readable, writable } = pipe();
  const reader = new FrameReader(readable, { maxFrameSize: MiB });
  const writing = (async () => {
    await writeFrame(writable, 'before');
    writable.write(header(64 * MiB));
    const piece = Buffer.alloc(MiB, 0x5a);
    for (let i = 0; i < 64; i++) await new Promise<void>((resolve, reject) => writable.write(piece, (e) => (e ? reject(e) : resolve())));
    await writeFrame(writable, 'after');
    await writeFrame(writable, Buffer.alloc(MiB + 1)); // a second one, just over the limit
    await writeFrame(writable, 'last');
    writable.end();
  })();
  assert.equal((await reader.read())?.toString(), 'before');
  await assert.rejects(reader.read(), tooLarge(64 * MiB));
  assert.equal((await reader.read())?.toString(), 'after');
  // In a loop: the error ends the loop, a new loop goes on after the skipped frame.
  const seen: string[] = [];
  await assert.rejects(async () => {
    for await (const f of reader) seen.push(f.toString());
  }, tooLarge(MiB + 1));
  assert.equal(seen.length, 0);
  for await (const f of reader) seen.push(f.toString());
  assert.deepEqual(seen, ['last']);
  await writing;
});

test('oversize on read: the parser skips the frame without keeping any of its bytes', async () => {
  const errors: TooLargeError[] = [];
  const frames: Buffer[] = [];
  const parser = new FrameParser({ maxFrameSize: MiB }, (f) => frames.push(f), (e) => errors.push(e));
  const pieces: WeakRef<ArrayBuffer>[] = []; // the memory itself: a view of it would keep it too
  const feed = (n: number): void => {
    for (let i = 0; i < n; i++) {
      const piece = Buffer.alloc(MiB, i);
      pieces.push(new WeakRef(piece.buffer));
      parser.push(piece);
    }
  };
  parser.push(header(64 * MiB));
  assert.equal(errors.length, 1, 'reported as soon as the header is read');
  assert.match(errors[0]!.message, /frame of 67108864 bytes exceeds maxFrameSize 1048576/);
  feed(63);
  assert.equal(parser.midFrame, true);
  assert.equal(parser.progress, `an oversize frame with ${MiB} bytes still to skip`);
  await nextTurn(); // WeakRefs keep their targets until the current job ends
  gc();
  const kept = pieces.filter((p) => p.deref() !== undefined).length;
  assert.equal(kept, 0, `${kept} MiB of the oversize frame are still held`);
  parser.push(Buffer.concat([Buffer.alloc(MiB), encodeFrame('next')]));
  assert.equal(parser.midFrame, false);
  assert.deepEqual(frames.map(String), ['next']);
  assert.equal(errors.length, 1);

  // The same measure sees the pieces of a frame within the limit being held (it must be).
  pieces.length = 0;
  const control = new FrameParser({ maxFrameSize: 8 * MiB }, (f) => frames.push(f), (e) => errors.push(e));
  control.push(header(8 * MiB));
  for (let i = 0; i < 4; i++) {
    const piece = Buffer.alloc(MiB, i);
    pieces.push(new WeakRef(piece.buffer));
    control.push(piece);
  }
  await nextTurn();
  gc();
  assert.equal(pieces.filter((p) => p.deref() !== undefined).length, 4);
});

test("oversize on read: FrameDecoder emits 'oversize' and goes on with the next frame", async () => {
  const { readable, writable } = pipe();
  const decoder = new FrameDecoder({ maxFrameSize: 100 });
  const oversize: TooLargeError[] = [];
  decoder.on('oversize', (e: TooLargeError) => oversize.push(e));
  const got: string[] = [];
  const reading = pipeline(readable, decoder, async (source: AsyncIterable<Buffer>) => {
    for await (const f of source) got.push(f.toString());
  });
  await writeFrame(writable, 'a');
  await writeFrame(writable, Buffer.alloc(200, 1), { maxFrameSize: 200 });
  await writeFrame(writable, 'b');
  await writeFrame(writable, Buffer.alloc(101, 1), { maxFrameSize: 200 });
  await writeFrame(writable, Buffer.alloc(100, 0x63));
  writable.end();
  await reading;
  assert.deepEqual(got, ['a', 'b', 'c'.repeat(100)]);
  assert.equal(oversize.length, 2);
  tooLarge(200)(oversize[0]);
  tooLarge(101)(oversize[1]);
  assert.match(oversize[0]!.message, /maxFrameSize 100/);
});

// ---------------------------------------------------------------- endings

test('a stream ending inside a header or a payload fails with ERR_FRAME_TRUNCATED, then reads give null', async () => {
  const cases: Array<[Buffer, RegExp]> = [
    [Buffer.from([0, 0]), /2 of 4 header bytes/],
    [Buffer.concat([header(10), Buffer.from('abc')]), /3 of 10 payload bytes/],
    [header(10), /0 of 10 payload bytes/],
    [Buffer.concat([encodeFrame('whole'), Buffer.from([0, 0, 0])]), /3 of 4 header bytes/],
  ];
  for (const [bytes, progress] of cases) {
    const { readable, writable } = pipe();
    const reader = new FrameReader(readable);
    writable.end(bytes);
    if (bytes.length > 9) {
      const first = await reader.read();
      if (first?.toString() !== 'whole') assert.fail(`expected the whole frame first, got ${String(first)}`);
    }
    await assert.rejects(reader.read(), truncatedError(progress));
    assert.equal(await reader.read(), null);
  }
  // An oversize frame cut short: skipped, then truncated.
  const { readable, writable } = pipe();
  const reader = new FrameReader(readable, { maxFrameSize: 4 });
  writable.end(Buffer.concat([header(100), Buffer.alloc(10)]));
  await assert.rejects(reader.read(), tooLarge(100));
  await assert.rejects(reader.read(), truncatedError(/oversize frame with 90 bytes still to skip/));
  assert.equal(await reader.read(), null);
});

test('a truncated stream fails a FrameDecoder pipeline with ERR_FRAME_TRUNCATED', async () => {
  const { readable, writable } = pipe();
  const got: string[] = [];
  const reading = pipeline(readable, new FrameDecoder(), async (source: AsyncIterable<Buffer>) => {
    for await (const f of source) got.push(f.toString());
  });
  writable.end(Buffer.concat([encodeFrame('one'), header(5), Buffer.from('tw')]));
  await assert.rejects(reading, truncatedError(/2 of 5 payload bytes/));
  assert.deepEqual(got, ['one']);
});

test('a clean end resolves read() with null; close() ends pending reads with null', async () => {
  {
    const { readable, writable } = pipe();
    const reader = new FrameReader(readable);
    const pending = reader.read();
    writable.end();
    assert.equal(await pending, null);
    assert.equal(await reader.read(), null);
  }
  {
    const { readable, writable } = pipe();
    const reader = new FrameReader(readable);
    const pending = [reader.read(), reader.read()];
    reader.close();
    assert.deepEqual(await Promise.all(pending), [null, null]);
    assert.equal(readable.destroyed, true);
    assert.equal(await reader.read(), null);
    writable.destroy();
  }
  {
    // Frames that arrived but were never read are dropped by close().
    const { readable, writable } = pipe();
    const reader = new FrameReader(readable);
    await writeFrame(writable, 'one');
    await writeFrame(writable, 'two');
    assert.equal((await reader.read())?.toString(), 'one');
    reader.close();
    assert.equal(await reader.read(), null);
    writable.destroy();
  }
  {
    // A stream that has already closed gives null at once instead of hanging.
    const stream = new PassThrough();
    stream.destroy();
    await once(stream, 'close');
    assert.equal(await new FrameReader(stream).read(), null);
  }
});

// ---------------------------------------------------------------- arguments

test('invalid maxFrameSize, highWaterMark or payload is rejected with InvalidArgumentError', () => {
  const { readable, writable } = pipe();
  try {
    for (const maxFrameSize of [-1, 1.5, 2 ** 33, Number.NaN, Infinity]) {
      const o = { maxFrameSize };
      assert.throws(() => encodeFrame('x', o), invalid, `encodeFrame ${maxFrameSize}`);
      assert.throws(() => writeFrame(writable, 'x', o), invalid, `writeFrame ${maxFrameSize}`);
      assert.throws(() => new FrameEncoder(o), invalid);
      assert.throws(() => new FrameDecoder(o), invalid);
      assert.throws(() => new FrameParser(o, () => {}, () => {}), invalid);
      assert.throws(() => new FrameReader(readable, o), invalid);
    }
    for (const highWaterMark of [0, -1, 1.5]) assert.throws(() => new FrameReader(readable, { highWaterMark }), invalid, `highWaterMark ${highWaterMark}`);
    const notBytes = (err: unknown): boolean => invalid(err) && (err as IpcError).code === 'ERR_INVALID_ARG_TYPE';
    for (const payload of [42, null, undefined, { length: 1 }, [1, 2]]) {
      assert.throws(() => encodeFrame(payload as never), notBytes);
      assert.throws(() => writeFrame(writable, payload as never), notBytes);
    }
    assert.throws(() => new FrameEncoder().write(42), notBytes);
    assert.equal(writable.bytesWritten, 0, 'nothing was written');
  } finally {
    readable.destroy();
    writable.destroy();
  }
});

// ---------------------------------------------------------------- processes

/** Starts a Node child running `code` with pipes at descriptors 3 (to it) and 4 (from it). */
function nodeChildWithPipes(code: string): { child: ChildProcess; toChild: net.Socket; fromChild: net.Socket } {
  const { child, pipes, childFds } = spawnWithPipes(process.execPath, ['--input-type=module', '-e', code], {
    pipes: ['toChild', 'fromChild'],
    cwd: root,
  });
  assert.deepEqual(childFds, [3, 4]);
  return { child, toChild: pipes[0]!, fromChild: pipes[1]! };
}

test('a Node child echoes frames back over spawnWithPipes, and reports an oversize one without losing the next', { timeout: 30_000 }, async () => {
  const { child, toChild, fromChild } = nodeChildWithPipes(`
    import { FrameReader, writeFrame, pipeReader, pipeWriter } from 'interprocess';
    const reader = new FrameReader(pipeReader(3), { maxFrameSize: ${MiB} });
    const out = pipeWriter(4);
    for (;;) {
      let frame;
      try {
        frame = await reader.read();
      } catch (err) {
        await writeFrame(out, 'error ' + err.name + ' ' + err.code);
        continue;
      }
      if (frame === null) break;
      await writeFrame(out, frame);
    }
    out.end();
  `);
  const exited = collect(child);
  const frames = randomFrames(21, 40);
  const replies = readAll(new FrameReader(fromChild, { maxFrameSize: MiB }));
  for (const f of frames) await writeFrame(toChild, f);
  await writeFrame(toChild, Buffer.alloc(MiB + 1), { maxFrameSize: 2 * MiB });
  await writeFrame(toChild, 'still here');
  toChild.end();
  const got = await replies;
  const r = await exited;
  assert.equal(r.code, 0, r.stderr);
  assertSameFrames(got, [...frames, Buffer.from('error TooLargeError EMSGSIZE'), Buffer.from('still here')]);
});

test('frames from two writer processes sharing one pipe never interleave (each at most PIPE_BUF - 4 bytes)', { timeout: 30_000 }, async () => {
  const perWriter = 1000;
  const { readable, writable } = pipe();
  const code = `
    import { writeFrame, pipeWriter } from 'interprocess';
    const id = Number(process.argv[1]);
    const out = pipeWriter(3);
    let x = id;
    for (let seq = 0; seq < ${perWriter}; seq++) {
      x = (x * 1103515245 + 12345) >>> 0;
      const frame = Buffer.alloc(5 + (x % ${PIPE_BUF - 4 - 5 + 1}), (id * 31 + seq) & 0xff);
      frame[0] = id;
      frame.writeUInt32BE(seq, 1);
      await writeFrame(out, frame);   // awaited: one write(2) per frame
    }
    out.end();
  `;
  const children = [1, 2].map((id) =>
    spawn(process.execPath, ['--input-type=module', '-e', code, String(id)], { cwd: root, stdio: ['ignore', 'ignore', 'pipe', writable] }),
  );
  const exits = children.map((c) => collect(c));
  writable.destroy(); // the children hold the write end now: EOF comes when both are done
  const next = [0, 0, 0];
  for await (const f of new FrameReader(readable)) {
    const id = f[0]!;
    assert.ok(id === 1 || id === 2, `a frame starting with ${id}: bytes of two frames were mixed`);
    assert.equal(f.readUInt32BE(1), next[id], `writer ${id}: frame out of order`);
    const fill = (id * 31 + next[id]!) & 0xff;
    for (let i = 5; i < f.length; i++) if (f[i] !== fill) assert.fail(`writer ${id} frame ${next[id]}: byte ${i} is ${f[i]}, not ${fill}`);
    next[id]!++;
  }
  for (const r of await Promise.all(exits)) assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(next.slice(1), [perWriter, perWriter]);
});

const reversed = (b: Buffer): Buffer => Buffer.from(b).reverse();
const upper = (b: Buffer): Buffer => Buffer.from(b.map((c) => (c >= 0x61 && c <= 0x7a ? c - 0x20 : c)));

test('a C peer reads frames from descriptor 3 and writes them back reversed on descriptor 4', { timeout: 30_000 }, async () => {
  const peer = await compilePeer('frame_peer');
  const { child, pipes } = spawnWithPipes(peer, ['reverse'], { pipes: ['toChild', 'fromChild'], stdio: ['ignore', 'ignore', 'pipe'] });
  const [toChild, fromChild] = pipes as [net.Socket, net.Socket];
  const exited = collect(child);
  const frames = [Buffer.alloc(0), Buffer.from('Hello, C'), content(MiB, 77), Buffer.alloc(0), ...randomFrames(31, 30)];
  const replies = readAll(new FrameReader(fromChild, { maxFrameSize: MiB }));
  for (const f of frames) await writeFrame(toChild, f);
  toChild.end();
  const got = await replies;
  const r = await exited;
  assert.equal(r.code, 0, r.stderr);
  assertSameFrames(got, frames.map(reversed));
  const bytes = frames.reduce((n, f) => n + f.length, 0);
  assert.match(r.stderr, new RegExp(`^frame_peer: ${frames.length} frames, ${bytes} bytes$`, 'm'));
});

test('a C peer on stdin/stdout: FrameEncoder in, FrameDecoder out, uppercased', { timeout: 30_000 }, async () => {
  const peer = await compilePeer('frame_peer');
  const child = spawn(peer, ['upper'], { stdio: ['pipe', 'pipe', 'pipe'] });
  const exited = exitOf(child);
  const frames = [Buffer.from('hello, world'), Buffer.alloc(0), content(MiB, 5), Buffer.from('ça va? 0k'), Buffer.alloc(0)];
  const got: Buffer[] = [];
  await Promise.all([
    pipeline(Readable.from(frames), new FrameEncoder(), child.stdin!),
    pipeline(child.stdout!, new FrameDecoder({ maxFrameSize: MiB }), async (source: AsyncIterable<Buffer>) => {
      for await (const f of source) got.push(f);
    }),
  ]);
  const r = await exited;
  assert.equal(r.code, 0, r.stderr);
  assertSameFrames(got, frames.map(upper));
  assert.equal(got[0]!.toString(), 'HELLO, WORLD');
});

test('truncation across processes: a C writer stopping mid-frame, and a C reader seeing Node stop mid-frame', { timeout: 30_000 }, async () => {
  const peer = await compilePeer('frame_peer');
  {
    const child = spawn(peer, ['truncate'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = exitOf(child);
    const reader = new FrameReader(child.stdout!);
    assert.equal((await reader.read())?.toString(), 'ok');
    await assert.rejects(reader.read(), truncatedError(/9 of 100 payload bytes/));
    assert.equal(await reader.read(), null);
    assert.equal((await exited).code, 0);
  }
  {
    const child = spawn(peer, ['reverse'], { stdio: ['pipe', 'pipe', 'pipe'] });
    const exited = exitOf(child);
    const replies = readAll(new FrameReader(child.stdout!));
    child.stdin!.end(Buffer.concat([encodeFrame('abc'), encodeFrame('defgh').subarray(0, 6)]));
    assertSameFrames(await replies, [Buffer.from('cba')]);
    const r = await exited;
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, /truncated payload \(2 of 5 bytes\)/);
    assert.match(r.stderr, /1 frames, 3 bytes/);
  }
});
