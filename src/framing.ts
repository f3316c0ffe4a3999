/**
 * Message framing over any byte stream (pipe, FIFO, socket, stdio).
 *
 * Wire format (docs/framing.md): each frame is a 4-byte unsigned big-endian
 * payload length followed by that many payload bytes. A zero-length frame is
 * a valid, empty message. Readers only ever see whole frames.
 *
 * Oversize frames are refused without breaking the stream:
 * - writing: {@link encodeFrame}, {@link writeFrame} and `FrameEncoder.write`
 *   throw a TooLargeError synchronously and write nothing;
 * - reading: the frame's bytes are skipped as they arrive (never buffered),
 *   {@link FrameReader.read} rejects once with a TooLargeError and the next
 *   read continues with the following frame; {@link FrameDecoder} emits
 *   'oversize' with the same error and goes on.
 */
import { Transform, type Readable, type Writable, type TransformCallback } from 'node:stream';
import { PeerGoneError, TooLargeError, invalidArgument } from './errors.js';
import { intInRange } from './internal/validate.js';

/** Bytes of a frame's header: the payload length, unsigned 32-bit big-endian. */
export const FRAME_HEADER_SIZE = 4;
/** Default largest accepted payload: 16 MiB. */
export const DEFAULT_MAX_FRAME_SIZE = 16 * 1024 * 1024;
/** The format's own bound: the length field is 32 bits. */
export const MAX_FRAME_SIZE = 0xffffffff;

/** Options of every framing call: the size limit, the same on both ends. */
export interface FramingOptions {
  /** Largest payload accepted, in bytes (default 16 MiB, at most 2^32 - 1). */
  maxFrameSize?: number;
}

/** A frame's payload: bytes (a Buffer or any Uint8Array, sent uncopied where possible), or a string sent as UTF-8. */
export type FramePayload = Uint8Array | string;

function maxOf(o: FramingOptions | undefined): number {
  return o?.maxFrameSize === undefined ? DEFAULT_MAX_FRAME_SIZE : intInRange(o.maxFrameSize, 'maxFrameSize', 0, MAX_FRAME_SIZE);
}

function toBytes(payload: FramePayload): Uint8Array {
  if (typeof payload === 'string') return Buffer.from(payload);
  if (payload instanceof Uint8Array) return payload;
  throw invalidArgument('a frame payload must be a Buffer, Uint8Array or string', 'ERR_INVALID_ARG_TYPE');
}

function oversize(size: number, max: number, direction: 'send' | 'receive'): TooLargeError {
  return new TooLargeError('EMSGSIZE', {
    errno: -90,
    message: `EMSGSIZE: frame of ${size} bytes exceeds maxFrameSize ${max} (${direction === 'send' ? 'nothing was written' : 'the frame was skipped'})`,
  });
}

function header(length: number): Buffer {
  const h = Buffer.allocUnsafe(FRAME_HEADER_SIZE);
  h.writeUInt32BE(length, 0);
  return h;
}

function checkedPayload(payload: FramePayload, max: number): Uint8Array {
  const bytes = toBytes(payload);
  if (bytes.byteLength > max) throw oversize(bytes.byteLength, max, 'send');
  return bytes;
}

/**
 * One frame (header + payload) as a single Buffer.
 *
 * @throws {TooLargeError} EMSGSIZE: the payload exceeds `maxFrameSize`.
 */
export function encodeFrame(payload: FramePayload, options?: FramingOptions): Buffer {
  const bytes = checkedPayload(payload, maxOf(options));
  const out = Buffer.allocUnsafe(FRAME_HEADER_SIZE + bytes.byteLength);
  out.writeUInt32BE(bytes.byteLength, 0);
  out.set(bytes, FRAME_HEADER_SIZE);
  return out;
}

/**
 * Writes one frame to `stream` without copying the payload; header and payload
 * go out in one write request, so frames from one process never interleave.
 * Resolves once the stream has accepted the data (its write callback).
 *
 * @example
 * ```ts
 * import { pipe, writeFrame, FrameReader } from 'interprocess';
 *
 * const { readable, writable } = pipe();
 * await writeFrame(writable, 'first message', { maxFrameSize: 1024 });
 * const frames = new FrameReader(readable, { maxFrameSize: 1024 });
 * console.log(`${await frames.read()}`);   // first message
 * ```
 *
 * @throws {TooLargeError} EMSGSIZE: the payload exceeds `maxFrameSize`; thrown synchronously, nothing written.
 */
export function writeFrame(stream: Writable, payload: FramePayload, options?: FramingOptions): Promise<void> {
  const bytes = checkedPayload(payload, maxOf(options));
  return new Promise((resolve, reject) => {
    stream.cork();
    stream.write(header(bytes.byteLength));
    stream.write(bytes, (err) => (err ? reject(err) : resolve()));
    stream.uncork();
  });
}

/**
 * Incremental frame parser: feed it chunks, it calls back with whole frames.
 * A frame that arrives in one chunk is passed on as a view of that chunk.
 * Oversize frames are skipped as their bytes arrive (never buffered) and
 * reported to `onOversize`. {@link FrameReader} and {@link FrameDecoder} are
 * built on it.
 */
export class FrameParser {
  readonly #max: number;
  readonly #header = Buffer.alloc(FRAME_HEADER_SIZE);
  #headerBytes = 0;
  #need = -1; // payload bytes expected, -1 while reading a header
  #parts: Buffer[] = [];
  #got = 0;
  #skip = 0;

  /**
   * @param onFrame Called with each whole frame's payload.
   * @param onOversize Called with a TooLargeError (EMSGSIZE) for each frame past `maxFrameSize`, which is skipped.
   */
  constructor(
    options: FramingOptions | undefined,
    private readonly onFrame: (frame: Buffer) => void,
    private readonly onOversize: (error: TooLargeError) => void,
  ) {
    this.#max = maxOf(options);
  }

  /** True when the input so far ends inside a frame. */
  get midFrame(): boolean {
    return this.#headerBytes > 0 || this.#skip > 0;
  }

  /** Describes the incomplete frame (for the error at end of stream). */
  get progress(): string {
    if (this.#need >= 0) return `${this.#got} of ${this.#need} payload bytes`;
    if (this.#skip > 0) return `an oversize frame with ${this.#skip} bytes still to skip`;
    return `${this.#headerBytes} of ${FRAME_HEADER_SIZE} header bytes`;
  }

  /** Feeds the next bytes of the stream; calls back for every frame they complete, in order. */
  push(input: Uint8Array): void {
    const chunk = Buffer.isBuffer(input) ? input : Buffer.from(input.buffer, input.byteOffset, input.byteLength);
    let at = 0;
    while (at < chunk.length) {
      if (this.#skip > 0) {
        const n = Math.min(this.#skip, chunk.length - at);
        this.#skip -= n;
        at += n;
        if (this.#skip === 0) this.#headerBytes = 0;
        continue;
      }
      if (this.#need < 0) {
        const n = Math.min(FRAME_HEADER_SIZE - this.#headerBytes, chunk.length - at);
        chunk.copy(this.#header, this.#headerBytes, at, at + n);
        this.#headerBytes += n;
        at += n;
        if (this.#headerBytes < FRAME_HEADER_SIZE) return;
        const length = this.#header.readUInt32BE(0);
        if (length > this.#max) {
          this.#skip = length;
          this.onOversize(oversize(length, this.#max, 'receive'));
          continue;
        }
        this.#need = length;
        this.#got = 0;
        this.#parts = [];
        if (length > 0) continue;
      } else {
        const n = Math.min(this.#need - this.#got, chunk.length - at);
        this.#parts.push(chunk.subarray(at, at + n));
        this.#got += n;
        at += n;
        if (this.#got < this.#need) return;
      }
      const frame = this.#parts.length === 1 ? this.#parts[0]! : Buffer.concat(this.#parts, this.#need);
      this.#parts = [];
      this.#need = -1;
      this.#headerBytes = 0;
      this.onFrame(frame);
    }
  }
}

function truncated(parser: FrameParser): PeerGoneError {
  return new PeerGoneError('ERR_FRAME_TRUNCATED', { message: `stream ended in the middle of a frame (${parser.progress})` });
}

/**
 * Frames up to this size leave a FrameEncoder as one chunk (header and payload
 * copied together), so the stream it is piped to makes one write() per frame;
 * larger payloads are passed on uncopied, after their header.
 */
const COALESCE_LIMIT = 64 * 1024;

/**
 * Transform: each written chunk (Buffer, Uint8Array or string) becomes one
 * frame. An oversize chunk makes `write()` (or `end(chunk)`) throw a
 * TooLargeError at once, as Node's streams do for a chunk of the wrong type;
 * the stream stays usable.
 */
export class FrameEncoder extends Transform {
  /** The largest payload written, in bytes. */
  readonly maxFrameSize: number;

  constructor(options?: FramingOptions) {
    super({ writableObjectMode: true });
    this.maxFrameSize = maxOf(options);
  }

  override write(chunk: unknown, encoding?: unknown, cb?: unknown): boolean {
    checkedPayload(chunk as FramePayload, this.maxFrameSize);
    return (super.write as (...a: unknown[]) => boolean)(chunk, encoding, cb);
  }

  // Writable.end(chunk) writes the chunk without going through this.write().
  override end(chunk?: unknown, encoding?: unknown, cb?: unknown): this {
    if (chunk !== undefined && chunk !== null && typeof chunk !== 'function') checkedPayload(chunk as FramePayload, this.maxFrameSize);
    return (super.end as (...a: unknown[]) => this)(chunk, encoding, cb);
  }

  /** Transform's hook, called by the stream machinery (not by you): one chunk in, one frame out. */
  override _transform(chunk: FramePayload, _encoding: BufferEncoding, callback: TransformCallback): void {
    const bytes = toBytes(chunk);
    if (bytes.byteLength <= COALESCE_LIMIT) {
      const frame = Buffer.allocUnsafe(FRAME_HEADER_SIZE + bytes.byteLength);
      frame.writeUInt32BE(bytes.byteLength, 0);
      frame.set(bytes, FRAME_HEADER_SIZE);
      this.push(frame);
    } else {
      this.push(header(bytes.byteLength));
      this.push(bytes);
    }
    callback();
  }
}

/**
 * Transform: bytes in, whole frames out (object mode, one Buffer per frame).
 * Oversize frames are skipped and reported with an 'oversize' event carrying a
 * TooLargeError; a stream that ends mid-frame fails with ERR_FRAME_TRUNCATED.
 */
export class FrameDecoder extends Transform {
  readonly #parser: FrameParser;

  constructor(options?: FramingOptions) {
    super({ readableObjectMode: true });
    this.#parser = new FrameParser(
      options,
      (frame) => this.push(frame),
      (err) => this.emit('oversize', err),
    );
  }

  /** Transform's hook, called by the stream machinery (not by you): bytes in, whole frames pushed out. */
  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#parser.push(chunk);
    callback();
  }

  /** Transform's hook at the end of input: fails the stream with ERR_FRAME_TRUNCATED (a PeerGoneError) if it ended mid-frame. */
  override _flush(callback: TransformCallback): void {
    callback(this.#parser.midFrame ? truncated(this.#parser) : null);
  }
}

type Slot = { frame: Buffer } | { error: Error };

/**
 * Reads whole frames from a byte stream: `await reader.read()` (null at the
 * end) or `for await (const frame of reader)`. Flow control follows the
 * consumer: the stream is paused while `highWaterMark` frames wait unread.
 *
 * An oversize frame rejects one read with a TooLargeError and is skipped; the
 * reader stays usable (call read() again, or iterate again). Breaking out of a
 * loop does not destroy the stream; {@link FrameReader.close} does.
 */
export class FrameReader implements AsyncIterable<Buffer> {
  readonly #stream: Readable;
  readonly #parser: FrameParser;
  readonly #queue: Slot[] = [];
  readonly #waiters: Array<{ resolve: (f: Buffer | null) => void; reject: (e: Error) => void }> = [];
  readonly #highWaterMark: number;
  #done = false;

  constructor(stream: Readable, options?: FramingOptions & { highWaterMark?: number }) {
    this.#stream = stream;
    this.#highWaterMark = options?.highWaterMark === undefined ? 16 : intInRange(options.highWaterMark, 'highWaterMark', 1, 2 ** 31 - 1);
    this.#parser = new FrameParser(options, (frame) => this.#deliver({ frame }), (error) => this.#deliver({ error }));
    stream.on('data', (chunk: Buffer | string) => {
      this.#parser.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
      if (this.#queue.length >= this.#highWaterMark) stream.pause();
    });
    stream.on('end', () => this.#finish(this.#parser.midFrame ? truncated(this.#parser) : undefined));
    stream.on('error', (err) => this.#finish(err));
    stream.on('close', () => this.#finish(this.#parser.midFrame ? truncated(this.#parser) : undefined));
    // Already ended or destroyed: no data will come, and 'end' may be past.
    if (stream.readableEnded || stream.destroyed) this.#finish(undefined);
  }

  #deliver(slot: Slot): void {
    const w = this.#waiters.shift();
    if (!w) {
      this.#queue.push(slot);
      return;
    }
    if ('frame' in slot) w.resolve(slot.frame);
    else w.reject(slot.error);
  }

  #finish(error: Error | undefined): void {
    if (this.#done) return;
    this.#done = true;
    if (error) this.#deliver({ error });
    for (const w of this.#waiters.splice(0)) w.resolve(null);
  }

  /** The next whole frame, or null once the stream has ended. */
  read(): Promise<Buffer | null> {
    const slot = this.#queue.shift();
    if (this.#queue.length < this.#highWaterMark && this.#stream.isPaused() && !this.#done) this.#stream.resume();
    if (slot) return 'frame' in slot ? Promise.resolve(slot.frame) : Promise.reject(slot.error);
    if (this.#done) return Promise.resolve(null);
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }

  /** `for await (const frame of reader)`: {@link FrameReader.read} until null; an oversize frame's TooLargeError ends the loop (iterate again to go on). */
  async *[Symbol.asyncIterator](): AsyncIterator<Buffer> {
    for (;;) {
      const frame = await this.read();
      if (frame === null) return;
      yield frame;
    }
  }

  /** Destroys the underlying stream; pending and later reads resolve with null (unread frames are dropped). */
  close(): void {
    this.#queue.length = 0;
    this.#stream.destroy();
    this.#finish(undefined);
  }
}
