/**
 * Process-shared, writer-preferring, robust read-write locks. User
 * documentation is on {@link RwLock}.
 *
 * Built only from robust pthread mutexes (see {@link Mutex}), so the kernel
 * itself notices a dead reader or writer (docs/mutex.md):
 *
 *   offset 0             gate:    a Mutex; a writer holds it for its whole write
 *   offset 64 * (1 + i)  slot i:  a Mutex; a reader holds one for its whole read
 *
 * - Read: take the gate, take any free slot, release the gate. Readers never
 *   wait for each other.
 * - Write: take the gate (new readers now queue behind it: writers do not
 *   starve), then wait for every slot to be free once, then write.
 * - A dead writer leaves the gate owner-died; a dead reader its slot. Whoever
 *   meets such a mutex marks it consistent and goes on, so the lock always
 *   recovers. A lock taken after a writer died resolves 'owner-died': the
 *   data may be half-written.
 *
 * Up to `slots` readers (default 32) can read at once; more wait for a slot.
 */
import { invalidArgument } from './errors.js';
import { SharedMemory } from './posix/shared-memory.js';
import { DeadlockError, TimeoutError } from './errors.js';
import { closedError } from './internal/handle.js';
import { HEADER_SIZE, createNamed, openNamed } from './internal/object-header.js';
import { abortError, signalOf, timeoutOf, type WaitOptions } from './internal/wait.js';
import * as v from './internal/validate.js';
import { Mutex, MUTEX_ALIGN, type LockResult } from './mutex.js';

const STRIDE = 64;
/** Reader slots of an RwLock when none are given: at most this many readers hold it at once. */
export const DEFAULT_READER_SLOTS = 32;
/** How long (ms) a reader that found every slot taken watches one before trying all again. */
const SLOT_WATCH_MS = [1, 2, 4, 8, 16];

/** Bytes an RwLock with `slots` reader slots occupies. */
export function rwlockSize(slots = DEFAULT_READER_SLOTS): number {
  return STRIDE * (1 + slots);
}

/** Options of {@link RwLock.create}. */
export interface RwLockCreateOptions {
  /** Permission bits, default 0o600. */
  mode?: number;
  /** true (default): AlreadyExistsError if the name exists; false: open it instead. */
  exclusive?: boolean;
  /** How many readers may hold the lock at once, 1 to 4096 (default 32). Ignored when opening an existing lock. */
  slots?: number;
}

/**
 * A process-shared, writer-preferring, robust read-write lock, built only
 * from robust pthread mutexes (see {@link Mutex}), so the kernel itself
 * notices a reader or writer that dies holding it (layout in docs/mutex.md;
 * C helpers in include/interprocess.h).
 *
 * Any number of readers up to {@link RwLock.slots} (default 32) hold it at
 * once, or one writer. A writer first closes the gate (new readers queue
 * behind it, so writers do not starve), then waits for the readers inside to
 * leave. A dead reader or writer never blocks the lock: the next one to meet
 * its mutex repairs it and goes on; a lock taken after a writer died
 * resolves 'owner-died' (the data may be half-written).
 *
 * Where it lives: in a named POSIX shared memory object of its own
 * ({@link RwLock.create} / {@link RwLock.open}, removed with
 * {@link RwLock.unlink}), or at an offset of any SharedArrayBuffer you map
 * ({@link RwLock.init} / {@link RwLock.at}, {@link rwlockSize} bytes).
 * {@link RwLock.close} releases what this handle holds and ends it.
 *
 * Each way of locking has an async form (never blocks the event loop;
 * timeout and AbortSignal), a `...Sync` form (blocks the calling thread) and
 * a `try...` form (never waits), and `withReadLock` / `withWriteLock` release
 * it for you.
 *
 * @example
 * ```ts
 * import { RwLock } from 'interprocess';
 *
 * const lock = RwLock.create('/my-rwlock', { mode: 0o600 });   // others: RwLock.open('/my-rwlock')
 * await lock.withReadLock(() => {
 *   // read the shared state: other readers may be here too
 * });
 * await lock.withWriteLock((result) => {
 *   if (result === 'owner-died') {
 *     // a writer died mid-write: repair the shared state first
 *   }
 *   // write the shared state: alone
 * }, { timeout: 5000 });
 * lock.close();
 * RwLock.unlink('/my-rwlock');
 * ```
 */
export class RwLock implements Disposable {
  /** The name of a named lock, or undefined for one placed in your memory. */
  readonly name: string | undefined;
  /** Reader slots: the most readers that can hold the lock at once. */
  readonly slots: number;
  readonly #gate: Mutex;
  readonly #slot: Mutex[];
  #shm: SharedMemory | undefined;
  #closed = false;
  // Slots this handle holds for its readers, most recent last.
  readonly #reading: number[] = [];
  #writing = false;

  private constructor(buffer: SharedArrayBuffer, byteOffset: number, slots: number, name?: string, shm?: SharedMemory) {
    this.name = name;
    this.slots = slots;
    this.#gate = Mutex.at(buffer, byteOffset);
    this.#slot = Array.from({ length: slots }, (_, i) => Mutex.at(buffer, byteOffset + STRIDE * (1 + i)));
    this.#shm = shm;
  }

  static #check(buffer: SharedArrayBuffer, byteOffset: number, slots: number): void {
    if (!(buffer instanceof SharedArrayBuffer)) throw invalidArgument('buffer must be a SharedArrayBuffer', 'ERR_INVALID_ARG_TYPE');
    v.intInRange(slots, 'slots', 1, 4096);
    v.nonNegativeInt(byteOffset, 'byteOffset', Number.MAX_SAFE_INTEGER);
    if (byteOffset % MUTEX_ALIGN !== 0) throw invalidArgument(`byteOffset must be a multiple of ${MUTEX_ALIGN}`);
    if (byteOffset + rwlockSize(slots) > buffer.byteLength) {
      throw invalidArgument(`an RwLock with ${slots} slots needs ${rwlockSize(slots)} bytes at offset ${byteOffset}`);
    }
  }

  /**
   * Initialises a lock at `byteOffset` of `buffer` (rwlockSize(slots) bytes),
   * before anyone uses it. Every user must then give the same `slots`.
   *
   * @param byteOffset A multiple of {@link MUTEX_ALIGN}.
   * @param slots Reader slots, 1 to 4096.
   * @throws {InvalidArgumentError} `buffer` is not a SharedArrayBuffer, a bad offset or `slots`, or too few bytes from the offset.
   */
  static init(buffer: SharedArrayBuffer, byteOffset = 0, slots = DEFAULT_READER_SLOTS): RwLock {
    RwLock.#check(buffer, byteOffset, slots);
    Mutex.init(buffer, byteOffset);
    for (let i = 0; i < slots; i++) Mutex.init(buffer, byteOffset + STRIDE * (1 + i));
    return new RwLock(buffer, byteOffset, slots);
  }

  /**
   * A handle on a lock already initialised at `byteOffset` of `buffer` with `slots` slots (by init(), or a C program).
   *
   * @throws {InvalidArgumentError} `buffer` is not a SharedArrayBuffer, a bad offset or `slots`, or too few bytes from the offset.
   */
  static at(buffer: SharedArrayBuffer, byteOffset = 0, slots = DEFAULT_READER_SLOTS): RwLock {
    RwLock.#check(buffer, byteOffset, slots);
    return new RwLock(buffer, byteOffset, slots);
  }

  /**
   * Creates a named lock: a POSIX shared memory object holding a header (which
   * records `slots`) and the lock. With `exclusive: false`, opens it instead if
   * the name exists.
   *
   * @throws {AlreadyExistsError} EEXIST: the name exists (and `exclusive` is not false).
   * @throws {InvalidArgumentError} A bad name or option, or (with `exclusive: false`) the object is not an rwlock.
   */
  static create(name: string, options: RwLockCreateOptions = {}): RwLock {
    const slots = v.intInRange(options.slots ?? DEFAULT_READER_SLOTS, 'slots', 1, 4096);
    return createNamed(
      name,
      'rwlock',
      { ...options, size: HEADER_SIZE + rwlockSize(slots), extra: slots },
      (b) => RwLock.init(b, HEADER_SIZE, slots),
      (shm, h) => RwLock.#named(name, shm, h.extra),
    );
  }

  /**
   * Opens a named lock, with the slot count its creator recorded (waiting up
   * to 2 s for a creator still initialising it).
   *
   * @throws {NotFoundError} ENOENT: no object by that name.
   * @throws {InvalidArgumentError} The object is not an interprocess rwlock.
   * @throws {IpcError} ERR_LAYOUT_VERSION: it was made by an incompatible version.
   */
  static open(name: string): RwLock {
    return openNamed(name, 'rwlock', (shm, h) => RwLock.#named(name, shm, h.extra));
  }

  static #named(name: string, shm: SharedMemory, slots: number): RwLock {
    RwLock.#check(shm.buffer, HEADER_SIZE, slots);
    return new RwLock(shm.buffer, HEADER_SIZE, slots, name, shm);
  }

  /**
   * Removes a named lock's name (`shm_unlink`); handles already open keep working.
   *
   * @throws {NotFoundError} ENOENT: no object by that name.
   */
  static unlink(name: string): void {
    SharedMemory.unlink(name);
  }

  get #where(): { path?: string } {
    return this.name === undefined ? {} : { path: this.name };
  }

  #open(): void {
    if (this.#closed) throw closedError('rwlock handle', this.#where);
  }

  /** How many read locks this handle holds (one per readLock() not yet unlocked). */
  get readers(): number {
    return this.#reading.length;
  }

  /** Whether this handle holds the write lock. */
  get writing(): boolean {
    return this.#writing;
  }

  /** A mutex met in the owner-died state protects nothing of its own here: repair it at once. */
  static #recover(m: Mutex, r: LockResult): LockResult {
    if (r === 'owner-died') m.markConsistent();
    return r;
  }

  #deadline(options: WaitOptions | undefined): WaitOptions {
    const timeout = timeoutOf(options);
    const signal = signalOf(options);
    if (signal?.aborted) throw abortError(signal);
    const end = performance.now() + timeout;
    return {
      get timeout() {
        return Math.max(0, end - performance.now());
      },
      ...(signal ? { signal } : {}),
    } as WaitOptions;
  }

  /** Takes a slot that is free now; undefined if every slot is taken. */
  #tryTakeSlot(): number | undefined {
    for (let i = 0; i < this.slots; i++) {
      const r = this.#slot[i]!.tryLock();
      if (r !== 'busy') {
        RwLock.#recover(this.#slot[i]!, r);
        return i;
      }
    }
    return undefined;
  }

  #everySlotHeld(): DeadlockError {
    return new DeadlockError('EDEADLK', { errno: -35, ...this.#where, message: 'EDEADLK: this thread already holds every reader slot' });
  }

  /** The slots a reader that found none free may wait for: not this handle's own. */
  #watchable(): number[] {
    const mine = new Set(this.#reading);
    const others = [...Array(this.slots).keys()].filter((k) => !mine.has(k));
    if (others.length === 0) throw this.#everySlotHeld();
    return others;
  }

  /**
   * Takes a slot: a free one now, else whichever frees first. A watcher
   * follows one lock word, so the slots are watched in turn for a short while
   * each (SLOT_WATCH_MS), all of them tried between watches: waiting for one
   * particular slot would keep this reader (and, behind the gate it holds,
   * everyone) waiting on one long read while other slots are free.
   */
  async #takeSlot(options: WaitOptions): Promise<number> {
    const now = this.#tryTakeSlot();
    if (now !== undefined) return now;
    const others = this.#watchable();
    for (let round = 0; ; round++) {
      const k = others[round % others.length]!;
      const left = options.timeout!;
      const step = Math.min(left, SLOT_WATCH_MS[Math.min(round, SLOT_WATCH_MS.length - 1)]!);
      try {
        RwLock.#recover(this.#slot[k]!, await this.#slot[k]!.lock({ ...options, timeout: step }));
        return k;
      } catch (err) {
        if (err instanceof DeadlockError) {
          // Held by this thread through another handle: it cannot free it while we wait.
          others.splice(others.indexOf(k), 1);
          if (others.length === 0) throw this.#everySlotHeld();
        } else if (!(err instanceof TimeoutError) || step >= left) {
          throw err;
        }
      }
      const i = this.#tryTakeSlot();
      if (i !== undefined) return i;
    }
  }

  /** #takeSlot, blocking this thread. */
  #takeSlotSync(left: () => { timeout: number }): number {
    const now = this.#tryTakeSlot();
    if (now !== undefined) return now;
    const others = this.#watchable();
    for (let round = 0; ; round++) {
      const k = others[round % others.length]!;
      const remaining = left().timeout;
      const step = Math.min(remaining, SLOT_WATCH_MS[Math.min(round, SLOT_WATCH_MS.length - 1)]!);
      try {
        RwLock.#recover(this.#slot[k]!, this.#slot[k]!.lockSync({ timeout: step }));
        return k;
      } catch (err) {
        if (err instanceof DeadlockError) {
          others.splice(others.indexOf(k), 1);
          if (others.length === 0) throw this.#everySlotHeld();
        } else if (!(err instanceof TimeoutError) || step >= remaining) {
          throw err;
        }
      }
      const i = this.#tryTakeSlot();
      if (i !== undefined) return i;
    }
  }

  /**
   * Takes the lock for reading, without blocking the event loop. Resolves
   * 'owner-died' if a writer died holding it (the data may be half-written).
   * One handle may hold several read locks (each takes a slot).
   *
   * @throws {TimeoutError} ETIMEDOUT: not taken within `timeout` ms (nothing held).
   * @throws {AbortError} `signal` aborted (nothing held).
   * @throws {DeadlockError} EDEADLK: this thread holds the write lock (through this handle or another), or every reader slot.
   * @throws {IpcError} EBADF: the handle is closed.
   */
  async readLock(options?: WaitOptions): Promise<LockResult> {
    this.#open();
    if (this.#writing) throw new DeadlockError('EDEADLK', { errno: -35, ...this.#where, message: 'EDEADLK: this handle holds the write lock' });
    const o = this.#deadline(options);
    const gate = RwLock.#recover(this.#gate, await this.#gate.lock(o));
    try {
      this.#reading.push(await this.#takeSlot(o));
    } finally {
      this.#gate.unlock();
    }
    return gate;
  }

  /**
   * readLock() that blocks this thread (timeout only).
   *
   * @throws {TimeoutError} ETIMEDOUT: not taken within `timeout` ms (nothing held).
   * @throws {DeadlockError} EDEADLK: this thread holds the write lock (through this handle or another), or every reader slot.
   * @throws {IpcError} EBADF: the handle is closed.
   */
  readLockSync(options?: { timeout?: number }): LockResult {
    this.#open();
    if (this.#writing) throw new DeadlockError('EDEADLK', { errno: -35, ...this.#where, message: 'EDEADLK: this handle holds the write lock' });
    const timeout = timeoutOf(options);
    const end = performance.now() + timeout;
    const left = (): { timeout: number } => ({ timeout: Math.max(0, end - performance.now()) });
    const gate = RwLock.#recover(this.#gate, this.#gate.lockSync(left()));
    try {
      const slot = this.#takeSlotSync(left);
      this.#reading.push(slot);
    } finally {
      this.#gate.unlock();
    }
    return gate;
  }

  /**
   * Takes the lock for reading if that needs no waiting: 'busy' otherwise
   * (also while this handle holds the write lock).
   *
   * @throws {IpcError} EBADF: the handle is closed.
   */
  tryReadLock(): LockResult | 'busy' {
    this.#open();
    if (this.#writing) return 'busy';
    const gate = this.#gate.tryLock();
    if (gate === 'busy') return 'busy';
    RwLock.#recover(this.#gate, gate);
    try {
      for (let i = 0; i < this.slots; i++) {
        const r = this.#slot[i]!.tryLock();
        if (r !== 'busy') {
          RwLock.#recover(this.#slot[i]!, r);
          this.#reading.push(i);
          return gate;
        }
      }
      return 'busy';
    } finally {
      this.#gate.unlock();
    }
  }

  /**
   * Releases one read lock this handle holds (the most recent).
   *
   * @throws {InvalidArgumentError} This handle holds no read lock.
   * @throws {IpcError} EBADF: the handle is closed.
   */
  readUnlock(): void {
    this.#open();
    const slot = this.#reading.pop();
    if (slot === undefined) throw invalidArgument('readUnlock(): this handle holds no read lock');
    this.#slot[slot]!.unlock();
  }

  /**
   * Takes the lock for writing, without blocking the event loop: waits for
   * the gate, then for the readers inside to leave. Resolves 'owner-died' if
   * the previous writer died holding it.
   *
   * @throws {TimeoutError} ETIMEDOUT: not taken within `timeout` ms (nothing held).
   * @throws {AbortError} `signal` aborted (nothing held).
   * @throws {DeadlockError} EDEADLK: this thread holds the lock already, reading or writing, through this handle or another.
   * @throws {IpcError} EBADF: the handle is closed.
   */
  async writeLock(options?: WaitOptions): Promise<LockResult> {
    this.#open();
    if (this.#writing || this.#reading.length > 0) {
      throw new DeadlockError('EDEADLK', { errno: -35, ...this.#where, message: 'EDEADLK: this handle already holds the lock' });
    }
    const o = this.#deadline(options);
    const gate = RwLock.#recover(this.#gate, await this.#gate.lock(o));
    try {
      for (const slot of this.#slot) {
        RwLock.#recover(slot, await slot.lock({ ...o, timeout: o.timeout! }));
        slot.unlock();
      }
    } catch (err) {
      this.#gate.unlock();
      throw err;
    }
    this.#writing = true;
    return gate;
  }

  /**
   * writeLock() that blocks this thread (timeout only).
   *
   * @throws {TimeoutError} ETIMEDOUT: not taken within `timeout` ms (nothing held).
   * @throws {DeadlockError} EDEADLK: this thread holds the lock already, reading or writing, through this handle or another.
   * @throws {IpcError} EBADF: the handle is closed.
   */
  writeLockSync(options?: { timeout?: number }): LockResult {
    this.#open();
    if (this.#writing || this.#reading.length > 0) {
      throw new DeadlockError('EDEADLK', { errno: -35, ...this.#where, message: 'EDEADLK: this handle already holds the lock' });
    }
    const end = performance.now() + timeoutOf(options);
    const left = (): { timeout: number } => ({ timeout: Math.max(0, end - performance.now()) });
    const gate = RwLock.#recover(this.#gate, this.#gate.lockSync(left()));
    try {
      for (const slot of this.#slot) {
        RwLock.#recover(slot, slot.lockSync(left()));
        slot.unlock();
      }
    } catch (err) {
      this.#gate.unlock();
      throw err;
    }
    this.#writing = true;
    return gate;
  }

  /**
   * Takes the lock for writing if that needs no waiting: 'busy' otherwise
   * (also while this handle holds the lock).
   *
   * @throws {IpcError} EBADF: the handle is closed.
   */
  tryWriteLock(): LockResult | 'busy' {
    this.#open();
    if (this.#writing || this.#reading.length > 0) return 'busy';
    const gate = this.#gate.tryLock();
    if (gate === 'busy') return 'busy';
    RwLock.#recover(this.#gate, gate);
    for (const slot of this.#slot) {
      const r = slot.tryLock();
      if (r === 'busy') {
        this.#gate.unlock();
        return 'busy';
      }
      RwLock.#recover(slot, r);
      slot.unlock();
    }
    this.#writing = true;
    return gate;
  }

  /**
   * Releases the write lock.
   *
   * @throws {InvalidArgumentError} This handle does not hold the write lock.
   * @throws {IpcError} EBADF: the handle is closed.
   */
  writeUnlock(): void {
    this.#open();
    if (!this.#writing) throw invalidArgument('writeUnlock(): this handle does not hold the write lock');
    this.#writing = false;
    this.#gate.unlock();
  }

  /**
   * Runs `fn` holding a read lock; always releases it. Waits as
   * {@link RwLock.readLock} does (same options and errors); resolves with what
   * `fn` returns, or rejects with what it throws.
   */
  async withReadLock<T>(fn: (result: LockResult) => T | Promise<T>, options?: WaitOptions): Promise<T> {
    const r = await this.readLock(options);
    try {
      return await fn(r);
    } finally {
      this.readUnlock();
    }
  }

  /**
   * Runs `fn` holding the write lock; always releases it. Waits as
   * {@link RwLock.writeLock} does (same options and errors); resolves with what
   * `fn` returns, or rejects with what it throws.
   */
  async withWriteLock<T>(fn: (result: LockResult) => T | Promise<T>, options?: WaitOptions): Promise<T> {
    const r = await this.writeLock(options);
    try {
      return await fn(r);
    } finally {
      this.writeUnlock();
    }
  }

  /** Whether {@link RwLock.close} has been called. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Releases what this handle holds and drops its memory. Idempotent. */
  close(): void {
    if (this.#closed) return;
    while (this.#reading.length > 0) this.readUnlock();
    if (this.#writing) this.writeUnlock();
    this.#closed = true;
    this.#gate.close();
    for (const s of this.#slot) s.close();
    this.#shm?.close();
    this.#shm = undefined;
  }

  /** Calls {@link RwLock.close}, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }
}
