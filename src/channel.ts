/**
 * Channel: ordered, variable-size messages between two processes through a
 * ring buffer in a named POSIX shared memory object (layout: docs/channel.md).
 *
 * The hot path is plain TypeScript over the SharedArrayBuffer with Atomics:
 * no native call per message. A side that finds nothing to do sleeps; the
 * other side wakes it only if it sleeps: a futex for synchronous waits
 * (`...Sync`, after a short spin), a doorbell (one hand-off to the event
 * loop, no thread) for asynchronous ones.
 *
 * One sender and one receiver at a time (the pids they record let each side
 * notice the other's death while waiting).
 */
import { native } from './native.js';
import { InvalidArgumentError, PeerGoneError, TimeoutError, TooLargeError, invalidArgument } from './errors.js';
import { SharedMemory } from './posix/shared-memory.js';
import { closedError } from './internal/handle.js';
import { Doorbell, ring } from './internal/doorbell.js';
import { createNamed, openNamed } from './internal/object-header.js';
import { abortError, signalOf, timeoutError, timeoutOf, type WaitOptions } from './internal/wait.js';
import * as v from './internal/validate.js';

// Int32 indices of the control fields (byte offset / 4); see docs/channel.md.
const CAPACITY = 16;
const MAX_MESSAGE = 17;
const SENDER_PID = 18;
const RECEIVER_PID = 19;
const HEAD = 32;
const SENDER_WAITING = 33;
const TAIL = 48;
const RECEIVER_WAITING = 49;
const RING = 256;
const WRAP = 0xffffffff;
const ASLEEP_ON_FUTEX = 1;
const ASLEEP_ON_BELL = 2;
/** How often a sleeping side looks whether its peer is still alive. */
const PEER_CHECK_MS = 100;
/** Empty polls before a synchronous wait sleeps. */
const SPIN = 4000;

export const DEFAULT_CAPACITY = 1 << 20;

export interface ChannelCreateOptions {
  /** Ring size in bytes: a power of two, at least 4096 (default 1 MiB). */
  capacity?: number;
  /** Permission bits, default 0o600. */
  mode?: number;
  /** true (default): AlreadyExistsError if the name exists; false: open it instead. */
  exclusive?: boolean;
}

type Side = 'sender' | 'receiver';

const align8 = (n: number): number => (n + 7) & ~7;

function alive(pid: number): boolean {
  if (pid === 0 || pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

export class Channel implements Disposable {
  readonly name: string;
  /** Ring size in bytes. */
  readonly capacity: number;
  /** Largest message in bytes (capacity / 2 - 8). */
  readonly maxMessage: number;
  #shm: SharedMemory | undefined;
  readonly #i32: Int32Array;
  readonly #u8: Uint8Array;
  readonly #dv: DataView;
  #bells: Partial<Record<Side, Doorbell>> = {};
  readonly #bellPrefix: string;
  readonly #attached = new Set<Side>();
  #closed = false;

  private constructor(name: string, shm: SharedMemory) {
    this.name = name;
    this.#shm = shm;
    this.#i32 = new Int32Array(shm.buffer);
    this.#u8 = new Uint8Array(shm.buffer);
    this.#dv = new DataView(shm.buffer);
    const st = shm.stat();
    this.#bellPrefix = `ipx/${st.dev}:${st.ino}`;
    this.capacity = this.#i32[CAPACITY]! >>> 0;
    this.maxMessage = this.#i32[MAX_MESSAGE]! >>> 0;
    if (this.capacity < 4096 || (this.capacity & (this.capacity - 1)) !== 0 || RING + this.capacity > shm.size) {
      throw invalidArgument(`'${name}' has a damaged channel layout (capacity ${this.capacity})`);
    }
  }

  /** Creates a channel (a POSIX shared memory object holding the ring). */
  static create(name: string, options: ChannelCreateOptions = {}): Channel {
    const capacity = options.capacity ?? DEFAULT_CAPACITY;
    v.intInRange(capacity, 'capacity', 4096, 2 ** 30);
    if ((capacity & (capacity - 1)) !== 0) throw invalidArgument(`capacity must be a power of two, got ${capacity}`);
    return createNamed(
      name,
      'channel',
      { ...options, size: RING + capacity },
      (b) => {
        const i32 = new Int32Array(b);
        i32[CAPACITY] = capacity;
        i32[MAX_MESSAGE] = capacity / 2 - 8;
      },
      (shm) => new Channel(name, shm),
    );
  }

  /** Opens an existing channel. */
  static open(name: string): Channel {
    return openNamed(name, 'channel', (shm) => new Channel(name, shm));
  }

  static unlink(name: string): void {
    SharedMemory.unlink(name);
  }

  #check(): void {
    if (this.#closed) throw closedError('channel handle', { path: this.name });
  }

  /**
   * Records this process as the side's owner: its peer watches this pid, and
   * a pid that is gone (the process died without close()) means "peer gone".
   * close() clears it, so a peer that left properly is simply absent (0).
   */
  #attach(side: Side): void {
    const field = side === 'sender' ? SENDER_PID : RECEIVER_PID;
    if (Atomics.load(this.#i32, field) !== process.pid) Atomics.store(this.#i32, field, process.pid);
    this.#attached.add(side);
  }

  #peerGone(side: Side): boolean {
    return !alive(Atomics.load(this.#i32, side === 'sender' ? RECEIVER_PID : SENDER_PID));
  }

  /**
   * The doorbell of a side: named after the shared memory object's device
   * and inode (what fstat gives every opener, C included), so the name is
   * short and the same for everyone with this channel open.
   */
  #bellName(side: Side): string {
    return `${this.#bellPrefix}/${side}`;
  }

  /** Wakes the other side if it sleeps (flag set); no system call otherwise. */
  #wake(flag: number, word: number, side: Side): void {
    const how = Atomics.load(this.#i32, flag);
    if (how === ASLEEP_ON_FUTEX) native.futexWake(this.#i32, word, 1);
    else if (how === ASLEEP_ON_BELL) ring(this.#bellName(side));
  }

  #bytes(data: unknown): Uint8Array {
    this.#check();
    const bytes = v.messageBytes(data);
    if (bytes.byteLength > this.maxMessage) {
      throw new TooLargeError('EMSGSIZE', {
        errno: -90,
        path: this.name,
        message: `EMSGSIZE: a message of ${bytes.byteLength} bytes exceeds this channel's maximum (${this.maxMessage} bytes, half its ${this.capacity}-byte ring)`,
      });
    }
    return bytes;
  }

  #trySendBytes(bytes: Uint8Array): boolean {
    const cap = this.capacity;
    const head = Atomics.load(this.#i32, HEAD) >>> 0;
    const tail = Atomics.load(this.#i32, TAIL) >>> 0;
    const free = cap - ((head - tail) >>> 0);
    let pos = head & (cap - 1);
    const record = align8(4 + bytes.byteLength);
    const skip = record > cap - pos ? cap - pos : 0;
    if (skip + record > free) return false;
    if (skip) {
      this.#dv.setUint32(RING + pos, WRAP, true);
      pos = 0;
    }
    this.#dv.setUint32(RING + pos, bytes.byteLength, true);
    this.#u8.set(bytes, RING + pos + 4);
    Atomics.store(this.#i32, HEAD, (head + skip + record) | 0);
    this.#wake(RECEIVER_WAITING, HEAD, 'receiver');
    return true;
  }

  /** Sends if the ring has room now; false if it is full. */
  trySend(data: Uint8Array | ArrayBufferView | string): boolean {
    const bytes = this.#bytes(data);
    this.#attach('sender');
    return this.#trySendBytes(bytes);
  }

  #tryReceive(): Buffer | undefined {
    const cap = this.capacity;
    let tail = Atomics.load(this.#i32, TAIL) >>> 0;
    const head = Atomics.load(this.#i32, HEAD) >>> 0;
    if (head === tail) return undefined;
    let pos = tail & (cap - 1);
    let length = this.#dv.getUint32(RING + pos, true);
    if (length === WRAP) {
      tail += cap - pos;
      pos = 0;
      length = this.#dv.getUint32(RING, true);
    }
    const message = Buffer.from(this.#u8.subarray(RING + pos + 4, RING + pos + 4 + length));
    Atomics.store(this.#i32, TAIL, (tail + align8(4 + length)) | 0);
    this.#wake(SENDER_WAITING, TAIL, 'sender');
    return message;
  }

  /** The next message if one is there now (a copy), else undefined. */
  tryReceive(): Buffer | undefined {
    this.#check();
    this.#attach('receiver');
    return this.#tryReceive();
  }

  /**
   * Sleeps (this thread) until `attempt` succeeds: spins first, then sleeps
   * on the futex word the other side moves, waking every PEER_CHECK_MS to
   * notice a dead peer.
   */
  #blockUntil<T>(side: Side, attempt: () => T | undefined, options: { timeout?: number } | undefined): T {
    const timeout = timeoutOf(options);
    const [flag, word] = side === 'receiver' ? [RECEIVER_WAITING, HEAD] : [SENDER_WAITING, TAIL];
    for (let i = 0; i < SPIN; i++) {
      const value = attempt();
      if (value !== undefined) return value;
    }
    const end = performance.now() + timeout;
    for (;;) {
      const seen = Atomics.load(this.#i32, word);
      Atomics.store(this.#i32, flag, ASLEEP_ON_FUTEX);
      const value = attempt();
      if (value !== undefined) {
        Atomics.store(this.#i32, flag, 0);
        return value;
      }
      const left = end - performance.now();
      if (left <= 0) {
        Atomics.store(this.#i32, flag, 0);
        throw timeoutError(side === 'receiver' ? 'receive' : 'send', { path: this.name });
      }
      native.futexWaitSync(this.#i32, word, seen, Math.ceil(Math.min(left, PEER_CHECK_MS)));
      Atomics.store(this.#i32, flag, 0);
      if (this.#peerGone(side)) throw this.#goneError(side);
    }
  }

  /** As #blockUntil, without blocking the event loop: sleeps on this side's doorbell. */
  async #waitUntil<T>(side: Side, attempt: () => T | undefined, options: WaitOptions | undefined): Promise<T> {
    const timeout = timeoutOf(options);
    const signal = signalOf(options);
    if (signal?.aborted) throw abortError(signal);
    const now = attempt();
    if (now !== undefined) return now;
    const flag = side === 'receiver' ? RECEIVER_WAITING : SENDER_WAITING;
    const bell = (this.#bells[side] ??= this.#bindBell(side));
    const end = performance.now() + timeout;
    try {
      for (;;) {
        Atomics.store(this.#i32, flag, ASLEEP_ON_BELL);
        const value = attempt();
        if (value !== undefined) return value;
        const left = end - performance.now();
        if (left <= 0) throw timeoutError(side === 'receiver' ? 'receive' : 'send', { path: this.name });
        try {
          await bell.wait({ timeout: Math.min(left, PEER_CHECK_MS), ...(signal ? { signal } : {}) });
        } catch (err) {
          this.#check(); // close() ended the wait: EBADF
          if (!(err instanceof TimeoutError)) throw err;
        }
        // Awake: the peer need not ring while we look.
        Atomics.store(this.#i32, flag, 0);
        this.#check();
        if (this.#peerGone(side)) {
          const last = attempt();
          if (last !== undefined) return last;
          throw this.#goneError(side);
        }
      }
    } finally {
      Atomics.store(this.#i32, flag, 0);
    }
  }

  #bindBell(side: Side): Doorbell {
    try {
      return Doorbell.bind(this.#bellName(side));
    } catch (err) {
      if ((err as { code?: string }).code === 'EADDRINUSE') {
        throw new InvalidArgumentError('EBUSY', { path: this.name, message: `EBUSY: another process already waits as this channel's ${side}` });
      }
      throw err;
    }
  }

  #goneError(side: Side): PeerGoneError {
    const peer = side === 'sender' ? 'receiver' : 'sender';
    const pid = Atomics.load(this.#i32, side === 'sender' ? RECEIVER_PID : SENDER_PID);
    return new PeerGoneError('EPIPE', { errno: -32, path: this.name, message: `EPIPE: the ${peer} (pid ${pid}) of channel '${this.name}' is gone` });
  }

  /** Sends, waiting without blocking the event loop while the ring is full. */
  async send(data: Uint8Array | ArrayBufferView | string, options?: WaitOptions): Promise<void> {
    const bytes = this.#bytes(data);
    this.#attach('sender');
    await this.#waitUntil('sender', () => this.#trySendBytes(bytes) || undefined, options);
  }

  /** Sends, spinning briefly then sleeping (this thread) while the ring is full. */
  sendSync(data: Uint8Array | ArrayBufferView | string, options?: { timeout?: number }): void {
    const bytes = this.#bytes(data);
    this.#attach('sender');
    this.#blockUntil('sender', () => this.#trySendBytes(bytes) || undefined, options);
  }

  /** The next message (a copy), waiting without blocking the event loop. */
  receive(options?: WaitOptions): Promise<Buffer> {
    this.#check();
    this.#attach('receiver');
    return this.#waitUntil('receiver', () => this.#tryReceive(), options);
  }

  /** The next message, spinning briefly then sleeping (this thread). */
  receiveSync(options?: { timeout?: number }): Buffer {
    this.#check();
    this.#attach('receiver');
    return this.#blockUntil('receiver', () => this.#tryReceive(), options);
  }

  /** Messages as they arrive, until close() or the sender died with the ring empty. */
  async *[Symbol.asyncIterator](): AsyncGenerator<Buffer, void, undefined> {
    while (!this.#closed) {
      try {
        yield await this.receive();
      } catch (err) {
        if (this.#closed || err instanceof PeerGoneError) return;
        throw err;
      }
    }
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Detaches, releases this handle's doorbells and memory; the channel stays until unlinked. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const side of this.#attached) Atomics.compareExchange(this.#i32, side === 'sender' ? SENDER_PID : RECEIVER_PID, process.pid, 0);
    for (const bell of Object.values(this.#bells)) bell?.close();
    this.#bells = {};
    this.#shm?.close();
    this.#shm = undefined;
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
