/**
 * Channel: ordered, variable-size messages from one or more senders to one
 * receiver through a ring buffer in a named POSIX shared memory object
 * (layout: docs/channel.md). User documentation is on {@link Channel}.
 *
 * The hot path is plain TypeScript over the SharedArrayBuffer with Atomics:
 * no native call per message. A side that finds nothing to do sleeps; the
 * other side wakes it only if it sleeps: a futex for synchronous waits
 * (`...Sync`, after a short spin), a doorbell (one hand-off to the event
 * loop, no thread) for asynchronous ones.
 *
 * Senders take turns through a lock word in the shared memory, held only
 * while a record is written (or between reserve() and commit()); a record is
 * published by the store of `head`, so a sender that dies holding the lock
 * leaves nothing half-visible and its lock is taken over.
 */
import { native } from './native.js';
import { AlreadyExistsError, InvalidArgumentError, IpcError, PeerGoneError, TooLargeError, invalidArgument } from './errors.js';
import { SharedMemory } from './posix/shared-memory.js';
import { closedError } from './internal/handle.js';
import { Doorbell, ring } from './internal/doorbell.js';
import { createNamed, openNamed, readHeader } from './internal/object-header.js';
import { abortError, signalOf, timeoutError, timeoutOf, type WaitOptions } from './internal/wait.js';
import * as v from './internal/validate.js';
import { constants } from 'node:os';
import { readFileSync } from 'node:fs';

const { ETIMEDOUT } = constants.errno;

// Int32 indices of the control fields (byte offset / 4); see docs/channel.md.
const CREATOR_PID = 2; // in the object header
const CAPACITY = 16;
const MAX_MESSAGE = 17;
const SENDER_SLOTS = 18;
const RECEIVER_PID = 19;
const HEAD = 32; // the senders' count of bytes published: the receiver reads it only to sleep (and for batches)
const TAIL = 48; // the receiver's line: written for every message
const RECEIVER_WAITING = 64; // the sleepers' line: written only around sleeps
const SENDERS_WAITING = 65;
const SENDER_SEQ = 66;
const SEND_LOCK = 80; // the senders' own line: the receiver never reads it
const SLOTS = 96; // byte 384: { pid, waiting } per sender
const SLOT_COUNT = 64;
const RING = 1024;
/** Copying receives of messages up to this size (and over WORD_COPY) copy what is published in batches of up to BATCH bytes. */
const SMALL_MESSAGE = 1024;
const BATCH = 16 * 1024;
const WORD_COPY = 128; // receives copy messages up to this long word by word (copying ones into a pool's slices)
const NO_TARGET = new Uint8Array(0); // (no receive-into target cached)
const POOL_SIZE = 8 * 1024; // copying receives of small messages hand out slices of a pool, as Buffer.allocUnsafe()

/** Bytes before each payload: its length and its stamp (the record's position | 1), so payloads are 8-byte aligned. */
const RECORD_HEADER = 8;
const WRAP = 0xffffffff;
const AWAKE = 0;
const ASLEEP_ON_FUTEX = 1;
const ASLEEP_ON_BELL = 2;
/** How often a sleeping side looks whether its peer is still alive. */
const PEER_CHECK_MS = 100;
/** Failed attempts before a synchronous wait sleeps (a few microseconds). */
const SPIN = 4000;

// The pool that copying receives of small messages slice their Buffers from.
let pool: ArrayBuffer;
let pool32: Int32Array;
let pool8: Uint8Array;
let poolUsed = 0;
newPool();

function newPool(): void {
  pool = new ArrayBuffer(POOL_SIZE);
  pool32 = new Int32Array(pool);
  pool8 = new Uint8Array(pool);
  poolUsed = 0;
}

/**
 * Copies `length` (<= WORD_COPY) bytes from byte `at` of the ring to byte `to`
 * (4-aligned) of a target, given as words and bytes. A loop of words costs
 * less than the source view that set() needs, and four words a turn half what
 * one does (64 bytes: ~18 ns against ~43 ns, and ~85 ns for set()).
 */
function copySmall(ring32: Int32Array, ring8: Uint8Array, at: number, to32: Int32Array, to8: Uint8Array, to: number, length: number): void {
  const n = length >> 2;
  const from = at >> 2;
  const dst = to >> 2;
  let k = 0;
  for (; k + 4 <= n; k += 4) {
    to32[dst + k] = ring32[from + k]!;
    to32[dst + k + 1] = ring32[from + k + 1]!;
    to32[dst + k + 2] = ring32[from + k + 2]!;
    to32[dst + k + 3] = ring32[from + k + 3]!;
  }
  for (; k < n; k++) to32[dst + k] = ring32[from + k]!;
  for (k = n << 2; k < length; k++) to8[to + k] = ring8[at + k]!;
}

/** Ring size, in bytes, of a channel created without `capacity`: 1 MiB. */
export const DEFAULT_CAPACITY = 1 << 20;

/** Options of {@link Channel.create}. */
export interface ChannelCreateOptions {
  /** Ring size in bytes: a power of two from 4096 to 1 GiB (default 1 MiB). The largest message is half of it, less 8. */
  capacity?: number;
  /** Permission bits, default 0o600. */
  mode?: number;
  /** true (default): AlreadyExistsError if the name exists; false: open it instead. */
  exclusive?: boolean;
  /** If a channel by this name exists but is stale (creator dead, nobody attached), unlink it and create a fresh one. */
  replaceStale?: boolean;
  /**
   * Bytes of the whole object (default 1024 + capacity): larger when something
   * else wants a particular size, e.g. a power of two for QEMU's ivshmem.
   */
  size?: number;
  /** See {@link ChannelOpenOptions.pollInterval}. */
  pollInterval?: number;
  /** See {@link ChannelOpenOptions.foreignPeers}. */
  foreignPeers?: boolean;
}

/** Options of {@link Channel.open} (and of this handle, in {@link Channel.create}): for peers in a virtual machine. */
export interface ChannelOpenOptions {
  /**
   * The peers run under another kernel (a guest VM sharing the memory): the
   * pids they record mean nothing here, so none is ever taken for dead (no
   * PeerGoneError, no taking over their slots or lock); `stat()` reports
   * them as alive.
   */
  foreignPeers?: boolean;
  /**
   * For a peer that cannot wake this side (a guest VM on ivshmem-plain
   * memory has no futex or doorbell in common with the host): while waiting,
   * look at the ring every `pollInterval` ms (1 to 100; default 100, the peer check).
   */
  pollInterval?: number;
}

/** What `Channel.inspect()` and `channel.stat()` report. */
export interface ChannelInfo {
  /** The channel's name. */
  name: string;
  /** Ring size in bytes. */
  capacity: number;
  /** Largest message in bytes. */
  maxMessage: number;
  /** Bytes of the ring in use (messages not yet received, with their framing). */
  used: number;
  /** Pid of the process that created the channel. */
  creatorPid: number;
  /** Whether that process still runs (always true with `foreignPeers`). */
  creatorAlive: boolean;
  /** 0 when no receiver is attached. */
  receiverPid: number;
  /** Whether a receiver is attached and its process runs (a zombie counts as dead). */
  receiverAlive: boolean;
  /** Pids of attached senders (dead ones included: they have not been replaced yet). */
  senderPids: number[];
  /** How many of `senderPids` still run. */
  liveSenders: number;
  /** Creator dead and no live process attached: nobody can be using it. */
  stale: boolean;
}

type Side = 'sender' | 'receiver';

/** A wait parked on this handle's doorbell (async calls), served in call order. */
interface Pending {
  attempt(): unknown;
  resolve(value: unknown): void;
  reject(err: Error): void;
  deadline: number;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

/**
 * Loads and stores of shared words that need no fence of their own (a
 * load that is an acquire, a store that is a release). On x86 every load and
 * store is one, and V8 keeps typed-array accesses in program order, so these
 * are plain accesses there: Node 20 does not inline Atomics.load, which costs
 * ~15 ns a call against ~1 for a read, and a message took six. Elsewhere
 * (arm64) they are Atomics calls. Every "store mine, then load yours"
 * handshake (docs/channel.md, Wake-ups) keeps an Atomics store, a full
 * fence, between the two. (TurboFan never merges typed-array loads: its load
 * elimination covers fields and JS array elements. Were a polling loop's load
 * ever hoisted, the wait would still end: it sleeps through native calls,
 * after which every load is made again.)
 */
const TSO = process.arch === 'x64' || process.arch === 'ia32';
const load: (words: Int32Array, index: number) => number = TSO ? (w, i) => w[i]! : (w, i) => Atomics.load(w, i);
const release: (words: Int32Array, index: number, value: number) => void = TSO
  ? (w, i, v) => {
      w[i] = v;
    }
  : (w, i, v) => {
      Atomics.store(w, i, v);
    };

const align8 = (n: number): number => (n + 7) & ~7;
/**
 * Bytes in use between `head` and `tail`; 0 when the tail is ahead: the
 * receiver took a record its sender had stamped but not yet counted in head
 * (or this handle's head is old). Holding the send lock, head is exact.
 */
const used = (head: number, tail: number): number => Math.max(0, (head - tail) | 0);
const recordSize = (length: number): number => align8(RECORD_HEADER + length);
/** What a queued send's attempt returns when done (undefined means "not yet"); the promise resolves to undefined. */
const SENT = Symbol('sent');

/**
 * Whether process `pid` still runs. kill(pid, 0) alone also succeeds on a
 * zombie: a dead child whose parent has not reaped it yet, as when the parent
 * is the peer blocked in receiveSync(); /proc tells those apart.
 */
function alive(pid: number): boolean {
  if (pid <= 0 || pid === process.pid) return true; // -1: a slot being freed (docs/channel.md)
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ESRCH';
  }
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code !== 'ENOENT' && code !== 'ESRCH'; // gone meanwhile; no /proc at all: trust kill()
  }
  const state = stat.charAt(stat.lastIndexOf(')') + 2);
  return state !== 'Z' && state !== 'X';
}

/**
 * Receiver doorbells of handles dropped without close(): closed when the
 * handle is collected (and the receiver place's release at the thread's end
 * forgotten: another handle of this process may take the place then).
 */
const orphanBells = new FinalizationRegistry<{ bell: Doorbell; release: number }>(({ bell, release }) => {
  native.releaseCancel(release);
  bell.close();
});

// Steps of native.releaseAtEnd (native/release.cc): [step, word, a, b].
const EXCHANGE_COUNT = 1; // word to a; if it was not a, word b loses 1
const COMPARE_EXCHANGE = 2; // word from a to b
const STORE = 3; // a into word

function busy(name: string, message: string): InvalidArgumentError {
  return new InvalidArgumentError('EBUSY', { errno: -16, path: name, message: `EBUSY: ${message}` });
}

/**
 * A channel: ordered, variable-size messages from up to 64 senders to one
 * receiver through a ring buffer in a named POSIX shared memory object. A
 * message is written into the ring by a sender and read out by the receiver
 * with plain memory accesses and `Atomics`: no system call per message (one
 * wakes the other side only when it sleeps). C programs join in with
 * include/interprocess.h (layout in docs/channel.md).
 *
 * Lifecycle: {@link Channel.create} makes the object (`shm_open`; exclusive
 * by default), {@link Channel.open} attaches to an existing one;
 * {@link Channel.close} detaches this handle (the channel and its unread
 * messages stay), {@link Channel.unlink} removes the name.
 * {@link Channel.inspect} reports who is attached without attaching.
 *
 * Roles: a handle becomes a sender on its first send or reserve (taking one
 * of 64 sender slots) and *the* receiver on its first receive; a second live
 * receiver is refused. One handle may do both.
 *
 * Waiting: every operation has an async form (waits on a doorbell polled by
 * libuv, no thread; `timeout` and `signal`), a `...Sync` form (spins
 * briefly, then sleeps on a futex, blocking the calling thread) and a
 * `try...` form (never waits). Async calls of one handle are served in call
 * order; one that times out or is aborted has sent or taken nothing. A peer
 * that dies ends a wait with a PeerGoneError (EPIPE) within about 100 ms: a
 * receiver on an empty ring whose senders have all died, a sender on a full
 * ring whose receiver died. A peer that merely closes its handle is absent,
 * not gone: the other side waits for the next one.
 *
 * Zero-copy: {@link Channel.reserve} gives a view into the ring to write a
 * message in place, then {@link Channel.commit}; {@link Channel.receiveView}
 * gives the next message in place, until {@link Channel.release}.
 *
 * @example
 * ```ts
 * import { Channel } from 'interprocess';
 *
 * const ch = Channel.create('/my-channel', { capacity: 1 << 16, mode: 0o600 });
 *
 * // a sender (another process, or C with include/interprocess.h):
 * const tx = Channel.open('/my-channel');
 * await tx.send('Hello, Channel');
 * const room = await tx.reserve(5);             // zero-copy: write in place...
 * room.set([1, 2, 3, 4, 5]);
 * tx.commit();                                  // ...then publish
 * tx.close();
 *
 * // the receiver:
 * console.log(`${await ch.receive({ timeout: 1000 })}`);   // Hello, Channel
 * const view = await ch.receiveView();          // the next message, in place...
 * console.log([...view]);                       // [ 1, 2, 3, 4, 5 ]
 * ch.release();                                 // ...until release()
 * ch.close();
 * Channel.unlink('/my-channel');
 * ```
 */
export class Channel implements Disposable {
  /** The channel's name, e.g. '/my-channel'. */
  readonly name: string;
  /** Ring size in bytes. */
  readonly capacity: number;
  /** Largest message in bytes (capacity / 2 - 8). */
  readonly maxMessage: number;
  #shm: SharedMemory | undefined;
  readonly #i32: Int32Array;
  readonly #u8: Uint8Array;
  readonly #dv: DataView;
  readonly #buffer: SharedArrayBuffer;
  readonly #bellPrefix: string;
  readonly #pollMs: number;
  readonly #foreign: boolean;
  readonly #receiverBell: string;
  #bells: Partial<Record<Side, Doorbell>> = {};
  /**
   * What close() gives back, registered to be given back when this thread
   * ends without close() (a worker thread that ends or is terminated): the
   * sender slot, the receiver place. -1: nothing registered.
   */
  #slotRelease = -1;
  #receiverRelease = -1;
  #closed = false;

  // Sender state: this handle's slot (-1: none yet), the indices last seen, and its open reservation.
  #slot = -1;
  #headSeen = 0;
  #tailSeen = 0;
  #reservedAt = -1; // byte offset of the reserved record's length word, -1: none
  #reservedStart = 0; // head value where the record starts (after any wrap)
  #reservedFrom = 0; // head value when reserved: where a wrap marker is, if #reservedStart differs
  #reservedLength = 0;

  // Receiver state: attached?, tail (only the receiver writes it), the message handed out as a view.
  #receiver = false;
  #tail = 0;
  #viewNextTail = -1; // tail after the viewed message, -1: no view out
  #nextTail = 0; // scratch of #peek()
  #batch: Buffer | undefined; // copies of published records (see #tryReceive)
  #batchAt = 0; // the ring index (like tail) of #batch[0]
  #length = 0;
  // The last target of a receive-into, as bytes and (when 4-byte aligned) as words: most callers reuse one.
  #intoTarget: ArrayBufferView = NO_TARGET;
  #intoBytes: Uint8Array = NO_TARGET;
  #intoWords: Int32Array | undefined;

  // Async waits, per side: FIFO of pending calls, whether the side is marked asleep on its
  // doorbell, and one timer for deadlines and peer checks.
  readonly #queues: Record<Side, Pending[]> = { sender: [], receiver: [] };
  readonly #asleep: Record<Side, boolean> = { sender: false, receiver: false };
  readonly #timers: Record<Side, { timer: NodeJS.Timeout; due: number } | undefined> = { sender: undefined, receiver: undefined };
  readonly #listening: Record<Side, boolean> = { sender: false, receiver: false };
  readonly #serving: Record<Side, boolean> = { sender: false, receiver: false };
  readonly #receiveAttempt = (): Buffer | undefined => this.#tryReceive();
  readonly #receiveViewAttempt = (): Uint8Array | undefined => this.#tryReceiveView();

  private constructor(name: string, shm: SharedMemory, options: ChannelOpenOptions = {}) {
    this.name = name;
    this.#pollMs = options.pollInterval === undefined ? PEER_CHECK_MS : v.intInRange(options.pollInterval, 'pollInterval', 1, PEER_CHECK_MS);
    this.#foreign = v.bool(options.foreignPeers, 'foreignPeers', false);
    this.#shm = shm;
    this.#buffer = shm.buffer;
    this.#i32 = new Int32Array(shm.buffer);
    this.#u8 = new Uint8Array(shm.buffer);
    this.#dv = new DataView(shm.buffer);
    const st = shm.stat();
    this.#bellPrefix = `ipx/${st.dev}:${st.ino}`;
    this.#receiverBell = `${this.#bellPrefix}/receiver`;
    this.capacity = this.#i32[CAPACITY]! >>> 0;
    this.maxMessage = this.#i32[MAX_MESSAGE]! >>> 0;
    if (
      this.capacity < 4096 ||
      (this.capacity & (this.capacity - 1)) !== 0 ||
      RING + this.capacity > shm.size ||
      this.maxMessage !== this.capacity / 2 - 8 ||
      this.#i32[SENDER_SLOTS] !== SLOT_COUNT
    ) {
      throw invalidArgument(`'${name}' has a damaged channel layout (capacity ${this.capacity})`);
    }
  }

  /**
   * Creates a channel: a POSIX shared memory object of `1024 + capacity`
   * bytes (or `size`) holding a header, the control words and the ring. With
   * `exclusive: false`, opens it instead if the name exists; with
   * `replaceStale`, replaces a stale one (creator dead, nobody attached).
   *
   * @throws {AlreadyExistsError} EEXIST: the name exists (and is not stale, with `replaceStale`).
   * @throws {InvalidArgumentError} A capacity that is not a power of two from 4096 to 1 GiB, a bad
   *   size, name or option, or (with `exclusive: false`) an object that is not a channel.
   * @throws {TooLargeError} ENOSPC: the object does not fit in /dev/shm.
   */
  static create(name: string, options: ChannelCreateOptions = {}): Channel {
    const capacity = options.capacity ?? DEFAULT_CAPACITY;
    v.intInRange(capacity, 'capacity', 4096, 2 ** 30);
    if ((capacity & (capacity - 1)) !== 0) throw invalidArgument(`capacity must be a power of two, got ${capacity}`);
    const { replaceStale, size, pollInterval, foreignPeers, ...rest } = options;
    const bytes = size === undefined ? RING + capacity : v.intInRange(size, 'size', RING + capacity, 2 ** 31);
    const make = (): Channel =>
      createNamed(
        name,
        'channel',
        { ...rest, size: bytes },
        (b) => {
          const i32 = new Int32Array(b);
          i32[CAPACITY] = capacity;
          i32[MAX_MESSAGE] = capacity / 2 - 8;
          i32[SENDER_SLOTS] = SLOT_COUNT;
        },
        (shm) => new Channel(name, shm, { pollInterval, foreignPeers }),
      );
    if (!replaceStale) return make();
    try {
      return make();
    } catch (err) {
      if (!(err instanceof AlreadyExistsError) || !Channel.#claimStale(name)) throw err;
      SharedMemory.unlink(name);
      return make();
    }
  }

  /**
   * Claims a stale channel for replacement: only one of several processes
   * replacing it at once may unlink it (else one would unlink the channel the
   * other just created). The claim moves the header's creator pid from the
   * dead creator to this process, on the very object found stale.
   */
  static #claimStale(name: string): boolean {
    let ch: Channel;
    try {
      ch = Channel.open(name);
    } catch {
      return false; // not a channel we understand, or gone meanwhile: leave it alone
    }
    try {
      const info = ch.stat();
      return info.stale && Atomics.compareExchange(ch.#i32, CREATOR_PID, info.creatorPid, process.pid) === info.creatorPid;
    } finally {
      ch.close();
    }
  }

  /**
   * Opens an existing channel (waiting up to 2 s for a creator still
   * initialising it). Attaching as sender or receiver happens on first use.
   *
   * @throws {NotFoundError} ENOENT: no object by that name.
   * @throws {InvalidArgumentError} The object is not a channel, or its layout is damaged.
   * @throws {IpcError} ERR_LAYOUT_VERSION: it was made by an incompatible version.
   */
  static open(name: string, options: ChannelOpenOptions = {}): Channel {
    return openNamed(name, 'channel', (shm) => new Channel(name, shm, options));
  }

  /**
   * Removes the name (`shm_unlink`); handles already open keep working, and
   * the memory goes with the last of them.
   *
   * @throws {NotFoundError} ENOENT: no object by that name.
   */
  static unlink(name: string): void {
    SharedMemory.unlink(name);
  }

  /**
   * Reports a channel's state (who is attached, alive, stale) without attaching to it.
   *
   * @throws {NotFoundError} ENOENT: no object by that name.
   * @throws {InvalidArgumentError} The object is not a channel.
   */
  static inspect(name: string): ChannelInfo {
    const ch = Channel.open(name);
    try {
      return ch.stat();
    } finally {
      ch.close();
    }
  }

  /**
   * The channel's state: ring use, creator, receiver and senders, and whether each still runs.
   *
   * @throws {IpcError} EBADF: the handle is closed.
   */
  stat(): ChannelInfo {
    this.#check();
    const creatorPid = readHeader(this.#buffer)!.creatorPid;
    const receiverPid = Atomics.load(this.#i32, RECEIVER_PID);
    const senderPids: number[] = [];
    for (let s = 0; s < SLOT_COUNT; s++) {
      const pid = Atomics.load(this.#i32, SLOTS + 2 * s);
      if (pid > 0) senderPids.push(pid);
    }
    const liveSenders = senderPids.filter((p) => this.#alive(p)).length;
    const creatorAlive = creatorPid !== 0 && this.#alive(creatorPid);
    const receiverAlive = receiverPid !== 0 && this.#alive(receiverPid);
    return {
      name: this.name,
      capacity: this.capacity,
      maxMessage: this.maxMessage,
      // (The receiver may take a record a moment before its sender counts it in head.)
      used: used(Atomics.load(this.#i32, HEAD), Atomics.load(this.#i32, TAIL)),
      creatorPid,
      creatorAlive,
      receiverPid,
      receiverAlive,
      senderPids,
      liveSenders,
      stale: !creatorAlive && !receiverAlive && liveSenders === 0,
    };
  }

  /** Whether the process `pid` recorded in the channel runs (always "yes" for foreign peers). */
  #alive(pid: number): boolean {
    return this.#foreign || alive(pid);
  }

  #check(): void {
    if (this.#closed) throw closedError('channel handle', { path: this.name });
  }

  // ---- attaching -----------------------------------------------------------

  /** Takes a sender slot for this handle (docs/channel.md, Attaching). */
  #attachSender(): void {
    if (this.#slot >= 0) return;
    const i32 = this.#i32;
    for (let s = 0; s < SLOT_COUNT; s++) {
      const at = SLOTS + 2 * s;
      const pid = Atomics.load(i32, at);
      if (pid !== 0 && (pid < 0 || pid === process.pid || this.#alive(pid))) continue;
      if (Atomics.compareExchange(i32, at, pid, process.pid) !== pid) continue;
      this.#slot = s;
      // As close() does, should this thread end first (a worker thread ending or terminated with the handle open).
      this.#slotRelease = native.releaseAtEnd(this.#buffer, Int32Array.of(EXCHANGE_COUNT, at + 1, AWAKE, SENDERS_WAITING, COMPARE_EXCHANGE, at, process.pid, 0));
      // (A free slot may still hold the lock: its handle's worker thread ended mid-reservation, native/release.cc.)
      if (pid !== 0 || Atomics.load(i32, SEND_LOCK) === s + 1) this.#undoDeadSender(s);
      this.#headSeen = Atomics.load(i32, HEAD) >>> 0;
      this.#tailSeen = Atomics.load(i32, TAIL) >>> 0;
      return;
    }
    throw busy(this.name, `all ${SLOT_COUNT} sender slots of channel '${this.name}' are taken by live processes`);
  }

  /**
   * Slot `s` is marked asleep on a doorbell nobody has bound: its owner
   * died asleep. Free the slot (and what it left) now rather than when
   * another sender takes it over, so wakes stop going to it.
   */
  #reap(s: number): void {
    const pid = Atomics.load(this.#i32, SLOTS + 2 * s);
    if (pid < 0 || (pid > 0 && this.#alive(pid))) return; // 0: free, yet perhaps holding the lock of a dead owner
    // -1 while undoing, so that no new owner's marks get undone with the dead one's.
    if (Atomics.compareExchange(this.#i32, SLOTS + 2 * s, pid, -1) !== pid) return;
    this.#undoDeadSender(s);
    Atomics.store(this.#i32, SLOTS + 2 * s, 0);
  }

  /**
   * Clears what the dead previous owner of slot `s` may have left: a waiting
   * mark, the send lock. Only the caller may release a lock that slot holds
   * (it owns the slot now, or marked it -1), so it first counts what the dead
   * holder published but did not count: lock takers trust `head`.
   */
  #undoDeadSender(s: number): void {
    const i32 = this.#i32;
    if (Atomics.exchange(i32, SLOTS + 2 * s + 1, AWAKE) !== AWAKE) Atomics.sub(i32, SENDERS_WAITING, 1);
    if (Atomics.load(i32, SEND_LOCK) !== s + 1) return;
    this.#countUncounted();
    if (Atomics.compareExchange(i32, SEND_LOCK, s + 1, 0) === s + 1) this.#wakeSenders();
  }

  /**
   * Takes the receiver place: receiver_pid for other processes, and the
   * receiver doorbell, bound from now until close(), for other handles of
   * this process and its worker threads (they share the pid, but an abstract
   * socket name is unique on the machine).
   */
  #attachReceiver(): void {
    if (this.#receiver) return;
    const pid = Atomics.load(this.#i32, RECEIVER_PID);
    if (pid !== 0 && pid !== process.pid && this.#alive(pid)) {
      throw busy(this.name, `channel '${this.name}' already has a receiver (pid ${pid})`);
    }
    const bell = this.#bindBell('receiver');
    if (Atomics.compareExchange(this.#i32, RECEIVER_PID, pid, process.pid) !== pid) {
      bell.close();
      throw busy(this.name, `another receiver attached to channel '${this.name}' at the same time`);
    }
    if (pid !== process.pid) Atomics.store(this.#i32, RECEIVER_WAITING, AWAKE);
    this.#tail = Atomics.load(this.#i32, TAIL) >>> 0;
    this.#bells.receiver = bell;
    // As close() does, should this thread end first (only while the bell is bound: then no other handle of this process is the receiver).
    this.#receiverRelease = native.releaseAtEnd(this.#buffer, Int32Array.of(STORE, RECEIVER_WAITING, AWAKE, 0, COMPARE_EXCHANGE, RECEIVER_PID, process.pid, 0));
    orphanBells.register(this, { bell, release: this.#receiverRelease }, this);
    this.#receiver = true;
  }

  /**
   * The doorbell of a side: named after the shared memory object's device
   * and inode (what fstat gives every opener, C included), so the name is
   * short and the same for everyone with this channel open.
   */
  #bellName(side: Side, slot = this.#slot): string {
    return side === 'receiver' ? this.#receiverBell : `${this.#bellPrefix}/sender/${slot}`;
  }

  // ---- waking --------------------------------------------------------------

  #wakeReceiver(): void {
    const how = load(this.#i32, RECEIVER_WAITING); // (after the Atomics store of the lock)
    if (how === ASLEEP_ON_FUTEX) native.futexWake(this.#i32, HEAD, 1);
    else if (how === ASLEEP_ON_BELL) ring(this.#bellName('receiver'));
  }

  /** Wakes every sleeping sender (other than this handle's own, which its caller serves). */
  #wakeSenders(): void {
    const i32 = this.#i32;
    Atomics.add(i32, SENDER_SEQ, 1);
    let onFutex: number[] | undefined;
    for (let s = 0; s < SLOT_COUNT; s++) {
      if (s === this.#slot) continue;
      const how = Atomics.load(i32, SLOTS + 2 * s + 1);
      if (how === ASLEEP_ON_FUTEX) (onFutex ??= []).push(s);
      else if (how === ASLEEP_ON_BELL && !ring(this.#bellName('sender', s))) this.#reap(s);
    }
    // Marked asleep on the futex, yet nobody was woken: a sender between its mark and its
    // sleep (alive: left alone), or one that died asleep (freed, or every wake would cost this).
    if (onFutex && native.futexWake(i32, SENDER_SEQ, 0x7fffffff) === 0) for (const s of onFutex) this.#reap(s);
  }

  // ---- sending -------------------------------------------------------------

  #bytes(data: unknown): Uint8Array {
    this.#check();
    const bytes = v.messageBytes(data);
    this.#checkLength(bytes.length); // (byteLength costs Node 20 three times length)
    return bytes;
  }

  #checkLength(length: number): void {
    if (length > this.maxMessage) {
      throw new TooLargeError('EMSGSIZE', {
        errno: -90,
        path: this.name,
        message: `EMSGSIZE: a message of ${length} bytes exceeds this channel's maximum (${this.maxMessage} bytes, half its ${this.capacity}-byte ring, less 8)`,
      });
    }
  }

  /**
   * Takes the send lock and room for a record of `length` bytes; returns the
   * byte offset of the payload in the buffer, or -1 (lock busy or no room).
   */
  #tryReserveAt(length: number): number {
    const i32 = this.#i32;
    // No room even now: leave the lock alone (taking and releasing it would wake the other senders for nothing).
    if (this.#room(this.#headSeen, length) < 0 && this.#room(Atomics.load(i32, HEAD) >>> 0, length) < 0) return -1; // (others may have sent meanwhile)
    if (Atomics.compareExchange(i32, SEND_LOCK, 0, this.#slot + 1) !== 0) return -1;
    const head = load(i32, HEAD) >>> 0; // (exact, holding the lock: #undoDeadSender)
    if (head !== this.#headSeen) {
      // Others sent since this handle last did, any number of bytes: the tail it saw may be of any age.
      this.#headSeen = head;
      this.#tailSeen = Atomics.load(i32, TAIL) >>> 0;
    }
    const skip = this.#room(head, length);
    if (skip < 0) {
      this.#unlock(); // another sender took the room meanwhile: it made progress, the others may look again
      return -1;
    }
    let pos = head & (this.capacity - 1);
    if (skip) {
      this.#dv.setUint32(RING + pos, WRAP, true);
      pos = 0;
    }
    this.#reservedAt = RING + pos;
    this.#reservedStart = (head + skip) >>> 0;
    this.#reservedFrom = head;
    this.#reservedLength = length;
    return RING + pos + RECORD_HEADER;
  }

  /**
   * Moves `head` past what a sender that died holding the send lock
   * published but did not count: a record (after a wrap marker, perhaps)
   * stamped at `head` (docs/channel.md, Attaching). Called only by whoever
   * frees that lock, before freeing it.
   */
  #countUncounted(): void {
    const i32 = this.#i32;
    const cap = this.capacity;
    const counted = Atomics.load(i32, HEAD) >>> 0; // (written only holding the lock)
    let head = counted;
    for (let k = 0; k < 2; k++) {
      const pos = head & (cap - 1);
      if (load(i32, (RING + pos + 4) >> 2) !== (head | 1)) break;
      const length = i32[(RING + pos) >> 2]! >>> 0;
      if (length === WRAP) head = (head + cap - pos) >>> 0;
      else if (length <= this.maxMessage && pos + recordSize(length) <= cap) head = (head + recordSize(length)) >>> 0;
      else break;
    }
    if (head !== counted) Atomics.store(i32, HEAD, head | 0);
  }

  /**
   * The bytes to skip (wrap) before a record of `length` at `head`, or -1 if
   * it does not fit. Uses the tail last seen, and reads `tail` again (a
   * cache line the receiver writes) only when that is not enough, or when
   * `head` is more than a ring ahead of it (it is older than `head`'s lap).
   */
  #room(head: number, length: number): number {
    const cap = this.capacity;
    const pos = head & (cap - 1);
    const record = recordSize(length);
    const skip = record > cap - pos ? cap - pos : 0;
    if (skip + record <= cap - ((head - this.#tailSeen) >>> 0)) return skip;
    this.#tailSeen = Atomics.load(this.#i32, TAIL) >>> 0;
    return skip + record <= cap - used(head, this.#tailSeen) ? skip : -1;
  }

  /**
   * Publishes the reserved record with `length` payload bytes and lets go of
   * the lock: clears the next record's stamp (unless the record fills the
   * ring: there is the tail's record), writes the length, stamps the record,
   * then the wrap marker before it if any (the receiver sees both or
   * neither), then counts it in `head`.
   */
  #commitAt(length: number): void {
    const i32 = this.#i32;
    const at = this.#reservedAt;
    const start = this.#reservedStart;
    const head = (start + recordSize(length)) >>> 0;
    this.#clearStampAt(head);
    i32[at >> 2] = length;
    release(i32, (at + 4) >> 2, start | 1);
    const from = this.#reservedFrom;
    if (from !== start) release(i32, (RING + (from & (this.capacity - 1)) + 4) >> 2, from | 1);
    this.#headSeen = head;
    release(i32, HEAD, head | 0);
    this.#reservedAt = -1;
    this.#unlock(true);
  }

  /**
   * Stores 0 in the stamp word of the record that will start at `head`,
   * unless the ring is full up to there: then the tail's record is there.
   */
  #clearStampAt(head: number): void {
    if ((head - this.#tailSeen) >>> 0 !== this.capacity) this.#i32[(RING + (head & (this.capacity - 1)) + 4) >> 2] = 0;
  }

  /**
   * Lets go of the lock, then wakes whoever sleeps (the receiver too if a
   * record was `published`): the lock's Atomics store is the fence between
   * this sender's stores (stamp, head, lock) and its loads of the sleepers' flags.
   */
  #unlock(published = false): void {
    Atomics.store(this.#i32, SEND_LOCK, 0);
    if (published) this.#wakeReceiver();
    if (load(this.#i32, SENDERS_WAITING) > 0) this.#wakeSenders();
    if (this.#queues.sender.length) this.#serve('sender');
  }

  #trySendBytes(bytes: Uint8Array): boolean {
    if (this.#reservedAt >= 0) return false;
    const length = bytes.length;
    const cap = this.capacity;
    const record = recordSize(length);
    const seen = this.#headSeen;
    const pos = seen & (cap - 1);
    // The usual send in one piece (#tryReserveAt and #commitAt, inlined by hand: V8 does not
    // inline them all, and a send then costs a sixth more): the record fits before the ring's
    // end in the room the tail last seen leaves, and nobody else has sent since this handle last
    // looked at the head. Anything else goes the general way below.
    if (record <= cap - pos && record <= cap - ((seen - this.#tailSeen) >>> 0)) {
      const i32 = this.#i32;
      if (Atomics.compareExchange(i32, SEND_LOCK, 0, this.#slot + 1) !== 0) return false;
      const at = RING + pos;
      // (head is exact once the lock is ours: #undoDeadSender. The record's line is not read before it
      // is written: a read would fetch it from the receiver's core, and the write take it again.)
      if (load(i32, HEAD) >>> 0 === seen) {
        this.#u8.set(bytes, at + RECORD_HEADER);
        const head = (seen + record) >>> 0;
        this.#clearStampAt(head); // the next record's
        i32[at >> 2] = length;
        release(i32, (at + 4) >> 2, seen | 1); // published
        this.#headSeen = head;
        release(i32, HEAD, head | 0); // (read by lock holders, and by the receiver before it sleeps)
        this.#unlock(true);
        return true;
      }
      this.#unlock(); // another sender went first: look again the general way
    }
    const at = this.#tryReserveAt(length);
    if (at < 0) return false;
    this.#u8.set(bytes, at);
    this.#commitAt(bytes.length);
    return true;
  }

  #readyToSend(): void {
    this.#check();
    this.#attachSender();
    if (this.#reservedAt >= 0) throw busy(this.name, 'commit() or discard() the reservation first');
  }

  /**
   * Sends if the ring has room now (and no send of this handle waits); false
   * otherwise, also while another sender holds the send lock (writing its
   * message, or between its reserve() and commit()). Never waits.
   *
   * @throws {TooLargeError} EMSGSIZE: the message is longer than {@link Channel.maxMessage}.
   * @throws {InvalidArgumentError} EBUSY: a reservation of this handle is open, or all 64 sender slots are taken.
   * @throws {IpcError} EBADF: the handle is closed.
   */
  trySend(data: Uint8Array | ArrayBufferView | string): boolean {
    const bytes = this.#bytes(data);
    this.#readyToSend();
    return this.#queues.sender.length === 0 && this.#trySendBytes(bytes);
  }

  /**
   * Copies the message into the ring, waiting without blocking the event loop
   * (no thread) while the ring is full. Sends of one handle keep their call
   * order; one that times out or is aborted has sent nothing. It waits for
   * this handle's own open reservation, if any, to be committed or discarded.
   *
   * @throws {TooLargeError} EMSGSIZE: the message is longer than {@link Channel.maxMessage}.
   * @throws {TimeoutError} ETIMEDOUT: the ring stayed full for `timeout` ms.
   * @throws {AbortError} `signal` aborted, before the call or while it waits.
   * @throws {PeerGoneError} EPIPE: the receiver died while the ring was full.
   * @throws {InvalidArgumentError} EBUSY: all 64 sender slots are taken by live processes.
   * @throws {IpcError} EBADF: the handle is closed (also when closed while waiting).
   */
  send(data: Uint8Array | ArrayBufferView | string, options?: WaitOptions): Promise<void> {
    let bytes: Uint8Array;
    try {
      bytes = this.#bytes(data);
      this.#check();
      this.#attachSender();
    } catch (err) {
      return Promise.reject(err);
    }
    return this.#nowOrQueued<unknown>('sender', () => (this.#trySendBytes(bytes) ? SENT : undefined), options) as Promise<void>;
  }

  /**
   * An async call on `side`: done at once if it can be and nothing of this
   * handle waits before it (call order), else queued for #serve.
   */
  #nowOrQueued<T>(side: Side, attempt: () => T | undefined, options: WaitOptions | undefined): Promise<T> {
    if (options !== undefined) {
      // As everywhere in Node: bad options, or a signal already aborted, fail the call even when it could finish at once.
      try {
        timeoutOf(options);
        const signal = signalOf(options);
        if (signal?.aborted) return Promise.reject(abortError(signal));
      } catch (err) {
        return Promise.reject(err);
      }
    }
    if (this.#queues[side].length === 0) {
      let now: T | undefined;
      try {
        now = attempt(); // may throw (EMSGSIZE of a receive-into, EBADMSG): a rejection, as when queued
      } catch (err) {
        return Promise.reject(err);
      }
      if (now !== undefined) return Promise.resolve((now === SENT ? undefined : now) as T);
    }
    return this.#park(side, attempt, options) as Promise<T>;
  }

  /**
   * Sends, spinning briefly then sleeping on a futex (blocking this thread)
   * while the ring is full.
   *
   * @throws {TooLargeError} EMSGSIZE: the message is longer than {@link Channel.maxMessage}.
   * @throws {TimeoutError} ETIMEDOUT: the ring stayed full for `timeout` ms.
   * @throws {PeerGoneError} EPIPE: the receiver died while the ring was full.
   * @throws {InvalidArgumentError} EBUSY: a reservation of this handle is open, async sends of this handle are waiting, or all sender slots are taken.
   * @throws {IpcError} EBADF: the handle is closed.
   */
  sendSync(data: Uint8Array | ArrayBufferView | string, options?: { timeout?: number }): void {
    const bytes = this.#bytes(data);
    if (this.#slot < 0 || this.#reservedAt >= 0 || this.#queues.sender.length) {
      this.#readyToSend();
      this.#noAsyncWaits('sender');
    }
    if (this.#trySendBytes(bytes)) return;
    this.#block('sender', () => (this.#trySendBytes(bytes) ? true : undefined), options);
  }

  #view(at: number, length: number): Uint8Array {
    return new Uint8Array(this.#buffer, at, length);
  }

  /**
   * Zero-copy send: room for a message of `length` bytes, as a view into the
   * ring to write the message into, then commit() (or discard()). Other
   * senders wait meanwhile: commit promptly. undefined if there is no room now.
   *
   * @throws {TooLargeError} EMSGSIZE: `length` exceeds {@link Channel.maxMessage}.
   * @throws {InvalidArgumentError} EBUSY: a reservation of this handle is open already, or all sender slots are taken.
   * @throws {IpcError} EBADF: the handle is closed.
   */
  tryReserve(length: number): Uint8Array | undefined {
    this.#reserveArgs(length);
    if (this.#queues.sender.length) return undefined;
    const at = this.#tryReserveAt(length);
    return at < 0 ? undefined : this.#view(at, length);
  }

  /**
   * As tryReserve(), waiting (without blocking the event loop) for room, and
   * for this handle's previous reservation to be committed or discarded.
   *
   * @throws {TooLargeError} EMSGSIZE: `length` exceeds {@link Channel.maxMessage}.
   * @throws {TimeoutError} ETIMEDOUT: no room within `timeout` ms.
   * @throws {AbortError} `signal` aborted, before the call or while it waits.
   * @throws {PeerGoneError} EPIPE: the receiver died while the ring was full.
   * @throws {InvalidArgumentError} EBUSY: all 64 sender slots are taken by live processes.
   * @throws {IpcError} EBADF: the handle is closed (also when closed while waiting).
   */
  reserve(length: number, options?: WaitOptions): Promise<Uint8Array> {
    try {
      this.#check();
      this.#attachSender();
      this.#checkLength(v.intInRange(length, 'length', 0, 2 ** 32 - 1));
    } catch (err) {
      return Promise.reject(err);
    }
    return this.#nowOrQueued(
      'sender',
      (): Uint8Array | undefined => {
        if (this.#reservedAt >= 0) return undefined; // the previous reservation of this handle first
        const at = this.#tryReserveAt(length);
        return at < 0 ? undefined : this.#view(at, length);
      },
      options,
    );
  }

  /**
   * As tryReserve(), spinning briefly then sleeping (this thread) until there is room.
   *
   * @throws {TooLargeError} EMSGSIZE: `length` exceeds {@link Channel.maxMessage}.
   * @throws {TimeoutError} ETIMEDOUT: no room within `timeout` ms.
   * @throws {PeerGoneError} EPIPE: the receiver died while the ring was full.
   * @throws {InvalidArgumentError} EBUSY: a reservation is open already, or async sends of this handle are waiting.
   * @throws {IpcError} EBADF: the handle is closed.
   */
  reserveSync(length: number, options?: { timeout?: number }): Uint8Array {
    this.#reserveArgs(length);
    this.#noAsyncWaits('sender');
    const at = this.#tryReserveAt(length);
    if (at >= 0) return this.#view(at, length);
    return this.#block(
      'sender',
      (): Uint8Array | undefined => {
        const next = this.#tryReserveAt(length);
        return next < 0 ? undefined : this.#view(next, length);
      },
      options,
    );
  }

  #reserveArgs(length: number): void {
    this.#readyToSend();
    this.#checkLength(v.intInRange(length, 'length', 0, 2 ** 32 - 1));
  }

  /**
   * Publishes the reserved message: its first `length` bytes (default: all it
   * reserved), and lets the other senders go on.
   *
   * @throws {InvalidArgumentError} EBUSY: nothing is reserved; or `length` exceeds what was reserved.
   * @throws {IpcError} EBADF: the handle is closed.
   */
  commit(length?: number): void {
    this.#check();
    if (this.#reservedAt < 0) throw busy(this.name, 'nothing is reserved: call reserve() first');
    const n = length === undefined ? this.#reservedLength : v.intInRange(length, 'length', 0, this.#reservedLength);
    this.#commitAt(n);
  }

  /** Gives the reserved room back unsent (nothing happens if nothing is reserved). */
  discard(): void {
    if (this.#reservedAt < 0) return;
    this.#reservedAt = -1;
    this.#unlock();
  }

  // ---- receiving -----------------------------------------------------------

  /**
   * Byte offset of the next message's payload (length in #length), or -1 if
   * the ring is empty: the record at the tail is published when its stamp
   * is its position | 1 (a word in the line the message is read from, so a
   * message costs the receiver one cache miss, not one for `head` and one
   * for the record).
   */
  #peek(): number {
    const cap = this.capacity;
    const i32 = this.#i32;
    let tail = this.#tail;
    let pos = tail & (cap - 1);
    if (load(i32, (RING + pos + 4) >> 2) !== (tail | 1)) return -1;
    let length = i32[(RING + pos) >> 2]! >>> 0;
    if (length === WRAP) {
      tail = (tail + cap - pos) >>> 0;
      pos = 0;
      // (A sender stamps the record at 0 before the marker.)
      length = load(i32, (RING + 4) >> 2) === (tail | 1) ? i32[RING >> 2]! >>> 0 : WRAP;
    }
    if (length > this.maxMessage || pos + recordSize(length) > cap) {
      throw new IpcError('EBADMSG', { errno: -74, path: this.name, message: `EBADMSG: channel '${this.name}' holds a damaged record (length ${length})` });
    }
    this.#length = length;
    this.#nextTail = (tail + recordSize(length)) >>> 0;
    return RING + pos + RECORD_HEADER;
  }

  #consume(nextTail: number): void {
    const i32 = this.#i32;
    this.#tail = nextTail;
    Atomics.store(i32, TAIL, nextTail | 0);
    if (load(i32, SENDERS_WAITING) > 0 && used(Atomics.load(i32, HEAD), nextTail) <= this.capacity / 2) {
      this.#wakeSenders();
      if (this.#queues.sender.length) this.#serve('sender'); // this handle sends too
    }
  }

  /**
   * A copying receive. Messages up to WORD_COPY bytes are copied word by word
   * into slices of a pool (as Buffer.allocUnsafe's). Other small messages are
   * copied out in batches: the published records from the tail on (up to BATCH bytes, never past the
   * ring's end) in one copy, each message then a slice of that copy, as
   * Buffer.allocUnsafe slices its pool. Each is consumed (tail moved) only
   * when handed out, so a handle closed with some still in its batch leaves
   * them to the next receiver. Published bytes never change before they are
   * consumed, so the copy stays true.
   */
  #tryReceive(): Buffer | undefined {
    if (this.#viewNextTail !== -1) return undefined;
    const b = this.#batch;
    if (b) {
      const pos = (this.#tail - this.#batchAt) >>> 0;
      if (pos + RECORD_HEADER <= b.length) {
        const length = b.readUInt32LE(pos);
        if (length !== WRAP && pos + RECORD_HEADER + length <= b.length) {
          this.#consume((this.#tail + recordSize(length)) >>> 0);
          return b.subarray(pos + RECORD_HEADER, pos + RECORD_HEADER + length);
        }
      }
      this.#batch = undefined;
    }
    const at = this.#peek();
    if (at < 0) return undefined;
    const length = this.#length;
    if (length <= WORD_COPY) {
      // A Buffer of the receive pool, the message copied in words: a Buffer costs Node 20 ~55 ns
      // however it is made, and then a copy of a view or a subarray of a batch ~40 ns more.
      if (poolUsed + length > POOL_SIZE) newPool();
      const message = Buffer.from(pool, poolUsed, length);
      copySmall(this.#i32, this.#u8, at, pool32, pool8, poolUsed, length);
      poolUsed += (length + 7) & ~7;
      this.#consume(this.#nextTail);
      return message;
    }
    if (length <= SMALL_MESSAGE) {
      const record = at - RECORD_HEADER;
      const start = (this.#nextTail - recordSize(length)) >>> 0;
      // (What head counts is published; a sender may count a stamped record a moment later.)
      const bytes = Math.min(used(Atomics.load(this.#i32, HEAD), start), RING + this.capacity - record, BATCH);
      if (bytes > recordSize(length)) {
        const batch = Buffer.allocUnsafeSlow(bytes);
        batch.set(new Uint8Array(this.#buffer, record, bytes));
        this.#batch = batch;
        this.#batchAt = start;
        this.#consume(this.#nextTail);
        return batch.subarray(RECORD_HEADER, RECORD_HEADER + length);
      }
    }
    const message = Buffer.allocUnsafe(length); // pooled when small; faster than Buffer.from(view)
    message.set(new Uint8Array(this.#buffer, at, length)); // (cheaper than subarray())
    this.#consume(this.#nextTail);
    return message;
  }

  /**
   * The target of a receive-into as bytes, made anew (and cached: most callers
   * reuse one buffer, see #tryReceiveInto).
   */
  #targetBytes(target: ArrayBufferView): Uint8Array {
    if (!ArrayBuffer.isView(target)) throw invalidArgument('target must be a Buffer, TypedArray or DataView', 'ERR_INVALID_ARG_TYPE');
    // (A detached target has no bytes, and no buffer to make a view of.)
    const bytes = target.byteLength === 0 ? NO_TARGET : new Uint8Array(target.buffer, target.byteOffset, target.byteLength);
    this.#intoWords = (bytes.byteOffset & 3) === 0 ? new Int32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength >> 2) : undefined;
    this.#intoTarget = target;
    this.#intoBytes = bytes;
    return bytes;
  }

  /**
   * Copies the next message into `target`: its length, or undefined if none;
   * EMSGSIZE (left in the ring) if it does not fit. The target's bytes are
   * the cached view when it is the last target (a property read such as
   * byteLength costs Node 20 ~18 ns); a target resized or detached since
   * then reads shorter (0) than the message, and is looked at again.
   */
  #tryReceiveInto(target: ArrayBufferView): number | undefined {
    if (this.#viewNextTail !== -1) return undefined;
    let into = target === this.#intoTarget ? this.#intoBytes : this.#targetBytes(target);
    const at = this.#peek();
    if (at < 0) return undefined;
    const length = this.#length;
    if (length > into.length) into = this.#targetBytes(target);
    if (length > into.length) {
      throw new TooLargeError('EMSGSIZE', {
        errno: -90,
        path: this.name,
        message: `EMSGSIZE: the next message of channel '${this.name}' has ${length} bytes, more than the ${into.length}-byte target (it stays in the channel)`,
      });
    }
    const words = this.#intoWords;
    if (length <= WORD_COPY && words !== undefined) {
      // (words: the same bytes as into, which is the cached target view, and holds the message.)
      copySmall(this.#i32, this.#u8, at, words, into, 0, length);
    } else {
      into.set(new Uint8Array(this.#buffer, at, length));
    }
    this.#consume(this.#nextTail);
    return length;
  }

  #tryReceiveView(): Uint8Array | undefined {
    if (this.#viewNextTail !== -1) return undefined;
    const at = this.#peek();
    if (at < 0) return undefined;
    this.#viewNextTail = this.#nextTail;
    return this.#view(at, this.#length);
  }

  #readyToReceive(): void {
    this.#check();
    this.#attachReceiver();
    if (this.#viewNextTail !== -1) throw busy(this.name, 'release() the message view first');
  }

  /**
   * The next message if one is there now (a copy), else undefined (also while
   * async receives of this handle wait). Never waits.
   *
   * @throws {InvalidArgumentError} EBUSY: another live receiver is attached, or a message view is not released.
   * @throws {IpcError} EBADF: the handle is closed; EBADMSG: the ring holds a damaged record.
   */
  tryReceive(): Buffer | undefined {
    this.#readyToReceive();
    return this.#queues.receiver.length ? undefined : this.#tryReceive();
  }

  /**
   * The next message (a copy), waiting without blocking the event loop (no
   * thread). Receives of one handle are served in call order; one that times
   * out or is aborted has taken nothing.
   *
   * @throws {TimeoutError} ETIMEDOUT: no message within `timeout` ms.
   * @throws {AbortError} `signal` aborted, before the call or while it waits.
   * @throws {PeerGoneError} EPIPE: every attached sender died (after what they published was received).
   * @throws {InvalidArgumentError} EBUSY: another live receiver is attached.
   * @throws {IpcError} EBADF: the handle is closed (also when closed while waiting).
   */
  receive(options?: WaitOptions): Promise<Buffer> {
    return this.#receiveAsync(this.#receiveAttempt, options);
  }

  /** The async receive forms: attached as the receiver, then as #nowOrQueued. */
  #receiveAsync<T>(attempt: () => T | undefined, options: WaitOptions | undefined): Promise<T> {
    try {
      this.#check();
      this.#attachReceiver();
    } catch (err) {
      return Promise.reject(err);
    }
    return this.#nowOrQueued('receiver', attempt, options);
  }

  /**
   * The next message (a copy), spinning briefly then sleeping on a futex (blocking this thread).
   *
   * @throws {TimeoutError} ETIMEDOUT: no message within `timeout` ms.
   * @throws {PeerGoneError} EPIPE: every attached sender died (after what they published was received).
   * @throws {InvalidArgumentError} EBUSY: another live receiver is attached, a view is not released, or async receives of this handle are waiting.
   * @throws {IpcError} EBADF: the handle is closed.
   */
  receiveSync(options?: { timeout?: number }): Buffer {
    if (!this.#receiver || this.#viewNextTail !== -1 || this.#queues.receiver.length || this.#closed) {
      this.#readyToReceive();
      this.#noAsyncWaits('receiver');
    }
    return this.#tryReceive() ?? this.#block('receiver', this.#receiveAttempt, options);
  }

  /**
   * Copies the next message, if one is there now, into `target` (from its
   * first byte) and returns its length in bytes; undefined if there is none
   * (also while async receives of this handle wait). Never waits. Nothing is
   * allocated: for loops that reuse one buffer, as `fs.readSync`.
   *
   * @throws {TooLargeError} EMSGSIZE: the next message is longer than `target`; it stays first in the channel ({@link Channel.maxMessage} bytes always suffice).
   * @throws {InvalidArgumentError} EBUSY: another live receiver is attached, or a message view is not released; ERR_INVALID_ARG_TYPE: `target` is not a Buffer, TypedArray or DataView.
   * @throws {IpcError} EBADF: the handle is closed; EBADMSG: the ring holds a damaged record.
   */
  tryReceiveInto(target: ArrayBufferView): number | undefined {
    if (target !== this.#intoTarget) this.#targetBytes(target); // (checks it)
    this.#readyToReceive();
    return this.#queues.receiver.length ? undefined : this.#tryReceiveInto(target);
  }

  /**
   * As {@link Channel.tryReceiveInto}, waiting without blocking the event loop
   * (no thread); errors as {@link Channel.receive}, and EMSGSIZE as
   * tryReceiveInto(). `target` must not be used until the promise settles.
   */
  receiveInto(target: ArrayBufferView, options?: WaitOptions): Promise<number> {
    try {
      if (target !== this.#intoTarget) this.#targetBytes(target); // (checks it)
    } catch (err) {
      return Promise.reject(err);
    }
    return this.#receiveAsync(() => this.#tryReceiveInto(target), options);
  }

  /**
   * As {@link Channel.tryReceiveInto}, spinning briefly then sleeping (this
   * thread); errors as {@link Channel.receiveSync}, and EMSGSIZE as
   * tryReceiveInto(). The lowest-latency receive: no allocation per message.
   */
  receiveIntoSync(target: ArrayBufferView, options?: { timeout?: number }): number {
    if (target !== this.#intoTarget) this.#targetBytes(target); // (checks it)
    if (!this.#receiver || this.#viewNextTail !== -1 || this.#queues.receiver.length || this.#closed) {
      this.#readyToReceive();
      this.#noAsyncWaits('receiver');
    }
    return this.#tryReceiveInto(target) ?? this.#block('receiver', () => this.#tryReceiveInto(target), options);
  }

  /**
   * Zero-copy receive: the next message as a view into the ring, valid until
   * release() (which gives its room back to the senders); undefined if none.
   * One view at a time.
   *
   * @throws {InvalidArgumentError} EBUSY: another live receiver is attached, or a view is not released.
   * @throws {IpcError} EBADF: the handle is closed.
   */
  tryReceiveView(): Uint8Array | undefined {
    this.#readyToReceive();
    return this.#queues.receiver.length ? undefined : this.#tryReceiveView();
  }

  /**
   * As tryReceiveView(), waiting without blocking the event loop (and, if a
   * view is out, for its release()). Errors as {@link Channel.receive}.
   */
  receiveView(options?: WaitOptions): Promise<Uint8Array> {
    return this.#receiveAsync(this.#receiveViewAttempt, options);
  }

  /**
   * As tryReceiveView(), spinning briefly then sleeping (this thread). Errors as
   * {@link Channel.receiveSync}.
   */
  receiveViewSync(options?: { timeout?: number }): Uint8Array {
    this.#readyToReceive();
    this.#noAsyncWaits('receiver');
    return this.#tryReceiveView() ?? this.#block('receiver', this.#receiveViewAttempt, options);
  }

  /**
   * Done with the view from receiveView(): its room goes back to the senders.
   * The view must not be used after this.
   *
   * @throws {InvalidArgumentError} EBUSY: no view is out.
   * @throws {IpcError} EBADF: the handle is closed.
   */
  release(): void {
    this.#check();
    if (this.#viewNextTail === -1) throw busy(this.name, 'no message view is out: call receiveView() first');
    const next = this.#viewNextTail;
    this.#viewNextTail = -1;
    this.#consume(next);
    if (this.#queues.receiver.length) this.#serve('receiver');
  }

  /** Messages as they arrive (copies), until close(); a dead sender ends it with PeerGoneError. */
  async *[Symbol.asyncIterator](): AsyncGenerator<Buffer, void, undefined> {
    while (!this.#closed) {
      let message: Buffer;
      try {
        message = await this.receive();
      } catch (err) {
        if (this.#closed) return;
        throw err;
      }
      yield message;
    }
  }

  // ---- waiting -------------------------------------------------------------

  #noAsyncWaits(side: Side): void {
    if (this.#queues[side].length) throw busy(this.name, `asynchronous ${side === 'sender' ? 'sends' : 'receives'} of this handle are waiting`);
  }

  /** undefined while the peer may still come through; the error to end the wait with if it died. */
  #peerGone(side: Side): PeerGoneError | undefined {
    const i32 = this.#i32;
    if (side === 'sender') {
      const pid = Atomics.load(i32, RECEIVER_PID);
      return pid !== 0 && !this.#alive(pid) ? this.#goneError('receiver', [pid]) : undefined;
    }
    const dead: number[] = [];
    for (let s = 0; s < SLOT_COUNT; s++) {
      const pid = Atomics.load(i32, SLOTS + 2 * s);
      if (pid === 0) continue;
      if (this.#alive(pid)) return undefined;
      dead.push(pid);
    }
    return dead.length ? this.#goneError('sender', dead) : undefined;
  }

  /**
   * Whether this side's wait is for its peer (the ring empty, or full), and not
   * for this handle itself (a view not released, a reservation not committed)
   * or for another live sender holding the lock: only then may a dead peer end it.
   */
  #waitsOnPeer(side: Side): boolean {
    if (side === 'receiver') return this.#viewNextTail === -1;
    return this.#reservedAt < 0 && Atomics.load(this.#i32, SEND_LOCK) === 0;
  }

  /** A sender of this handle that cannot get the lock: frees the holder's slot (and the lock) if the holder died. */
  #takeOverLock(): void {
    const holder = Atomics.load(this.#i32, SEND_LOCK);
    if (holder > 0 && holder <= SLOT_COUNT && holder !== this.#slot + 1) this.#reap(holder - 1);
  }

  #goneError(peer: Side, pids: number[]): PeerGoneError {
    const who = pids.length === 1 ? `the ${peer} (pid ${pids[0]})` : `the ${peer}s (pids ${pids.join(', ')})`;
    return new PeerGoneError('EPIPE', { errno: -32, path: this.name, message: `EPIPE: ${who} of channel '${this.name}' died` });
  }

  /** Marks this side asleep (how: futex or doorbell) so that the other side wakes it. */
  #sleeping(side: Side, how: number): void {
    if (side === 'receiver') Atomics.store(this.#i32, RECEIVER_WAITING, how);
    else {
      Atomics.add(this.#i32, SENDERS_WAITING, 1);
      Atomics.store(this.#i32, SLOTS + 2 * this.#slot + 1, how);
    }
  }

  #awake(side: Side): void {
    if (side === 'receiver') Atomics.store(this.#i32, RECEIVER_WAITING, AWAKE);
    else {
      Atomics.store(this.#i32, SLOTS + 2 * this.#slot + 1, AWAKE);
      Atomics.sub(this.#i32, SENDERS_WAITING, 1);
    }
  }

  /**
   * Sleeps (this thread) until `attempt` succeeds: spins first, then sleeps
   * on the futex word the other side moves, waking every PEER_CHECK_MS to
   * notice a dead peer.
   */
  #block<T>(side: Side, attempt: () => T | undefined, options: { timeout?: number } | undefined): T {
    const timeout = timeoutOf(options);
    for (let i = 0; i < SPIN; i++) {
      const value = attempt();
      if (value !== undefined) return value;
    }
    const word = side === 'receiver' ? HEAD : SENDER_SEQ;
    const end = performance.now() + timeout;
    this.#sleeping(side, ASLEEP_ON_FUTEX);
    try {
      for (;;) {
        const seen = Atomics.load(this.#i32, word);
        const value = attempt();
        if (value !== undefined) return value;
        const left = end - performance.now();
        if (left <= 0) throw timeoutError(side === 'receiver' ? 'receive' : 'send', { path: this.name });
        if (native.futexWaitSync(this.#i32, word, seen, Math.ceil(Math.min(left, this.#pollMs))) === -ETIMEDOUT) {
          if (side === 'sender') this.#takeOverLock();
          const gone = this.#waitsOnPeer(side) ? this.#peerGone(side) : undefined;
          if (gone) return lastTry(attempt, gone);
        }
      }
    } finally {
      this.#awake(side);
    }
  }

  /**
   * Queues an async call on `side`, served in call order by #serve: whenever
   * the side's doorbell rings, its timer fires, or this handle itself makes
   * room (release, commit). While calls are queued the side is marked asleep
   * on its doorbell, whose poll stays armed (re-arming it per wait would cost
   * a system call each time).
   */
  #park(side: Side, attempt: () => unknown, options: WaitOptions | undefined): Promise<unknown> {
    const timeout = timeoutOf(options);
    const signal = signalOf(options);
    if (signal?.aborted) return Promise.reject(abortError(signal));
    return new Promise((resolve, reject) => {
      const p: Pending = { attempt, resolve, reject, deadline: performance.now() + timeout, signal, onAbort: undefined };
      if (signal) {
        p.onAbort = (): void => this.#settle(side, p, abortError(signal));
        signal.addEventListener('abort', p.onAbort, { once: true });
      }
      this.#queues[side].push(p);
      try {
        this.#sleep(side);
      } catch (err) {
        this.#settle(side, p, err as Error);
        return;
      }
      this.#serve(side);
      this.#arm(side, p.deadline);
    });
  }

  /** Marks the side asleep on its doorbell (the peer rings it from now on). */
  #sleep(side: Side): void {
    if (this.#asleep[side]) return;
    if (this.#listening[side]) {
      this.#bells[side]!.keepAlive(true);
    } else {
      const bell = (this.#bells[side] ??= this.#bindBell(side));
      bell.listen((err) => (err ? this.#failAll(side, err) : this.#serve(side)));
      this.#listening[side] = true;
    }
    this.#sleeping(side, ASLEEP_ON_BELL);
    this.#asleep[side] = true;
  }

  /** Nothing queued: awake again; the poll stays armed but no longer keeps the process alive. */
  #wakeUp(side: Side): void {
    if (!this.#asleep[side]) return;
    this.#asleep[side] = false;
    this.#awake(side);
    this.#bells[side]?.keepAlive(false);
    // The timer stays: firing with nothing queued does nothing, and the next wait reuses it
    // (a timer per wait would cost more than the wait's other work).
  }

  /** Serves the side's queued calls in order, as far as they can go now. */
  #serve(side: Side): void {
    // An attempt may come back here (a commit lets go of the lock, which serves this side):
    // the loop already running goes on with the next call.
    if (this.#serving[side]) return;
    this.#serving[side] = true;
    try {
      this.#serveNow(side);
    } finally {
      this.#serving[side] = false;
    }
  }

  #serveNow(side: Side): void {
    const q = this.#queues[side];
    while (q.length) {
      const p = q[0]!;
      let value: unknown;
      try {
        value = p.attempt();
      } catch (err) {
        this.#settle(side, p, err as Error);
        continue;
      }
      if (value === undefined) return;
      this.#settle(side, p, undefined, value);
    }
    this.#wakeUp(side);
  }

  /** Makes sure the side's timer fires by `deadline` and within PEER_CHECK_MS. */
  #arm(side: Side, deadline: number): void {
    if (!this.#queues[side].length) return;
    const due = Math.min(deadline, performance.now() + this.#pollMs);
    const t = this.#timers[side];
    if (t && t.due <= due) return;
    if (t) clearTimeout(t.timer);
    const timer = setTimeout(() => this.#onTimer(side), Math.max(1, due - performance.now()));
    timer.unref(); // the armed doorbell keeps the process alive while calls wait
    this.#timers[side] = { timer, due };
  }

  /** Deadlines, a dead lock holder, a dead peer: what no ring announces. */
  #onTimer(side: Side): void {
    this.#timers[side] = undefined;
    const q = this.#queues[side];
    const now = performance.now();
    for (const p of [...q]) if (p.deadline <= now) this.#settle(side, p, timeoutError(side === 'receiver' ? 'receive' : 'send', { path: this.name }));
    if (side === 'sender' && q.length) this.#takeOverLock();
    this.#serve(side);
    if (q.length && this.#waitsOnPeer(side)) {
      const gone = this.#peerGone(side);
      if (gone) {
        this.#serve(side); // what a dead sender published is still delivered
        if (q.length) this.#failAll(side, gone);
      }
    }
    if (q.length) this.#arm(side, Math.min(...q.map((p) => p.deadline)));
  }

  #failAll(side: Side, err: Error): void {
    for (const p of [...this.#queues[side]]) this.#settle(side, p, err);
  }

  /** Takes `p` out of the queue and settles it; an emptied queue means awake. */
  #settle(side: Side, p: Pending, err: Error | undefined, value?: unknown): void {
    const q = this.#queues[side];
    const i = q.indexOf(p);
    if (i < 0) return; // settled already
    q.splice(i, 1);
    if (p.onAbort) p.signal!.removeEventListener('abort', p.onAbort);
    if (err) p.reject(err);
    else p.resolve(value === SENT ? undefined : value);
    if (!q.length) this.#wakeUp(side);
  }

  #bindBell(side: Side): Doorbell {
    try {
      return Doorbell.bind(this.#bellName(side));
    } catch (err) {
      if (err instanceof AlreadyExistsError) {
        throw busy(
          this.name,
          side === 'receiver'
            ? `channel '${this.name}' already has a receiver (another handle of this process or a worker thread)`
            : `another handle already waits as the sender in slot ${this.#slot}`,
        );
      }
      throw err;
    }
  }

  /** Whether {@link Channel.close} has been called. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Detaches (gives back the sender slot and the receiver place), ends this
   * handle's pending waits, releases its doorbells and memory. An open
   * reservation is discarded; a message view not released stays unreceived.
   * The channel itself stays until unlinked.
   */
  close(): void {
    if (this.#closed) return;
    const i32 = this.#i32;
    this.discard();
    this.#closed = true;
    for (const side of ['sender', 'receiver'] as const) {
      this.#failAll(side, closedError('channel handle', { path: this.name }));
      this.#wakeUp(side);
    }
    if (this.#slot >= 0) {
      native.releaseCancel(this.#slotRelease);
      const at = SLOTS + 2 * this.#slot;
      if (Atomics.exchange(i32, at + 1, AWAKE) !== AWAKE) Atomics.sub(i32, SENDERS_WAITING, 1);
      Atomics.compareExchange(i32, at, process.pid, 0);
      this.#slot = -1;
    }
    if (this.#receiver) {
      native.releaseCancel(this.#receiverRelease);
      Atomics.store(i32, RECEIVER_WAITING, AWAKE);
      Atomics.compareExchange(i32, RECEIVER_PID, process.pid, 0);
      orphanBells.unregister(this);
      this.#receiver = false;
    }
    for (const bell of Object.values(this.#bells)) bell?.close();
    this.#bells = {};
    this.#intoTarget = this.#intoBytes = NO_TARGET;
    this.#intoWords = undefined;
    this.#shm?.close();
    this.#shm = undefined;
  }

  /** Calls {@link Channel.close}, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }
}

/** The dead peer may have published something just before the check: take it, else fail. */
function lastTry<T>(attempt: () => T | undefined, gone: Error): T {
  const value = attempt();
  if (value === undefined) throw gone;
  return value;
}

