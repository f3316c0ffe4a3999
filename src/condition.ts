/**
 * Process-shared condition variables, paired with a {@link Mutex}. User
 * documentation is on {@link Condition}.
 *
 * Layout (8 bytes, 4-aligned; docs/mutex.md): a 32-bit sequence number that
 * notify() increments, then a 32-bit count of waiters. wait() reads the
 * sequence, releases the mutex, sleeps on the sequence word with a futex
 * (FUTEX_WAIT, shared) until it changes, and takes the mutex again. A notify
 * between the release and the sleep changes the word, so the sleep returns at
 * once: no wake-up is lost. Like pthread_cond_wait, wait() may return without a
 * notify: always re-check the condition in a loop.
 */
import { constants } from 'node:os';
import { native } from './native.js';
import { invalidArgument, systemError } from './errors.js';
import { SharedMemory } from './posix/shared-memory.js';
import { closedError } from './internal/handle.js';
import { PendingWaits, waitOnThread } from './internal/blocking.js';
import { signalOf, timeoutError, timeoutOf, type WaitOptions } from './internal/wait.js';
import { HEADER_SIZE, createNamed, openNamed } from './internal/object-header.js';
import * as v from './internal/validate.js';
import type { LockResult, Mutex } from './mutex.js';

const { EAGAIN, ETIMEDOUT, EINTR } = constants.errno;

/** Bytes a Condition occupies in memory (4-byte aligned): a sequence word and a waiter count (docs/mutex.md). */
export const CONDITION_SIZE = 8;
const SEQ = 0;
const WAITERS = 1;

/**
 * A process-shared condition variable, used with a {@link Mutex} as
 * `pthread_cond_wait` is with a `pthread_mutex_t`: {@link Condition.wait}
 * releases the mutex, sleeps until {@link Condition.notify} or
 * {@link Condition.notifyAll}, and takes the mutex again. It is not a
 * `pthread_cond_t`: 8 bytes (a sequence number and a waiter count) that
 * waiters sleep on with a shared futex; C programs use the helpers of
 * include/interprocess.h (layout in docs/mutex.md).
 *
 * Where it lives: in a named POSIX shared memory object of its own
 * ({@link Condition.create} / {@link Condition.open}, removed with
 * {@link Condition.unlink}), or at an offset of any SharedArrayBuffer you map
 * ({@link Condition.init} / {@link Condition.at}). {@link Condition.close}
 * ends this handle.
 *
 * Waiting: `wait()` sleeps on a waiter thread (never one of libuv's pool
 * threads), with a timeout and an AbortSignal; `waitSync()` blocks the
 * calling thread. No notify between the release and the sleep is lost; like
 * `pthread_cond_wait`, a wait may also return without a notify: always
 * re-check the condition in a loop.
 *
 * @example
 * ```ts
 * import { Condition, Mutex, posix } from 'interprocess';
 *
 * const m = Mutex.create('/my-lock', { mode: 0o600 });
 * const changed = Condition.create('/my-changed', { mode: 0o600 });
 * const shm = posix.SharedMemory.create('/my-state', { size: 4096, mode: 0o600 });
 * const state = new Int32Array(shm.buffer, 0, 1);     // guarded by m
 *
 * // waiting side:
 * await m.withLock(async () => {
 *   while (state[0] < 3) await changed.wait(m, { timeout: 5000 });   // re-check after each wake-up
 * });
 *
 * // changing side (another process, with Mutex.open, Condition.open, posix.SharedMemory.open):
 * await m.withLock(() => {
 *   state[0] = 3;
 *   changed.notifyAll();
 * });
 * ```
 */
export class Condition implements Disposable {
  /** The name of a named condition, or undefined for one placed in your memory. */
  readonly name: string | undefined;
  readonly #words: Int32Array;
  #shm: SharedMemory | undefined;
  #closed = false;
  readonly #pending = new PendingWaits();

  private constructor(words: Int32Array, name?: string, shm?: SharedMemory) {
    this.#words = words;
    this.name = name;
    this.#shm = shm;
  }

  static #view(buffer: SharedArrayBuffer, byteOffset: number): Int32Array {
    if (!(buffer instanceof SharedArrayBuffer)) throw invalidArgument('buffer must be a SharedArrayBuffer', 'ERR_INVALID_ARG_TYPE');
    v.nonNegativeInt(byteOffset, 'byteOffset', Number.MAX_SAFE_INTEGER);
    if (byteOffset % 4 !== 0) throw invalidArgument(`byteOffset must be a multiple of 4, got ${byteOffset}`);
    if (byteOffset + CONDITION_SIZE > buffer.byteLength) throw invalidArgument(`a condition needs ${CONDITION_SIZE} bytes at offset ${byteOffset}`);
    return new Int32Array(buffer, byteOffset, 2);
  }

  /**
   * Initialises a condition at `byteOffset` of `buffer` (zeroes its 8 bytes), before anyone uses it.
   *
   * @param byteOffset A multiple of 4, with {@link CONDITION_SIZE} bytes from there in `buffer`.
   * @throws {InvalidArgumentError} `buffer` is not a SharedArrayBuffer, or the offset is misaligned or too close to its end.
   */
  static init(buffer: SharedArrayBuffer, byteOffset = 0): Condition {
    const w = Condition.#view(buffer, byteOffset);
    Atomics.store(w, SEQ, 0);
    Atomics.store(w, WAITERS, 0);
    return new Condition(w);
  }

  /**
   * A handle on a condition already at `byteOffset` of `buffer` (by init(), or a C program).
   *
   * @throws {InvalidArgumentError} `buffer` is not a SharedArrayBuffer, or the offset is misaligned or too close to its end.
   */
  static at(buffer: SharedArrayBuffer, byteOffset = 0): Condition {
    return new Condition(Condition.#view(buffer, byteOffset));
  }

  /**
   * Creates a named condition (a POSIX shared memory object holding a header
   * and the condition). With `exclusive: false`, opens it instead if the name exists.
   *
   * @param options `mode`: permission bits, default 0o600; `exclusive`: true (default) fails if the name exists.
   * @throws {AlreadyExistsError} EEXIST: the name exists (and `exclusive` is not false).
   * @throws {InvalidArgumentError} A bad name or option, or (with `exclusive: false`) the object is not a condition.
   */
  static create(name: string, options: { mode?: number; exclusive?: boolean } = {}): Condition {
    return createNamed(name, 'condition', { ...options, size: HEADER_SIZE + 64 }, () => {}, (shm) => Condition.#named(name, shm));
  }

  /**
   * Opens a named condition (waiting up to 2 s for a creator still initialising it).
   *
   * @throws {NotFoundError} ENOENT: no object by that name.
   * @throws {InvalidArgumentError} The object is not an interprocess condition.
   * @throws {IpcError} ERR_LAYOUT_VERSION: it was made by an incompatible version.
   */
  static open(name: string): Condition {
    return openNamed(name, 'condition', (shm) => Condition.#named(name, shm));
  }

  static #named(name: string, shm: SharedMemory): Condition {
    return new Condition(Condition.#view(shm.buffer, HEADER_SIZE), name, shm);
  }

  /**
   * Removes a named condition's name (`shm_unlink`); handles already open keep working.
   *
   * @throws {NotFoundError} ENOENT: no object by that name.
   */
  static unlink(name: string): void {
    SharedMemory.unlink(name);
  }

  get #where(): { path?: string } {
    return this.name === undefined ? {} : { path: this.name };
  }

  #check(): void {
    if (this.#closed) throw closedError('condition handle', this.#where);
  }

  /** Processes and threads currently in wait() (as they registered themselves). */
  get waiters(): number {
    return Atomics.load(this.#words, WAITERS);
  }

  /**
   * Counts this waiter in, then releases the mutex: a notifier that takes it
   * next sees the count. An unlock that fails (EPERM: the lock word no longer
   * names this thread) takes the count back.
   */
  #register(mutex: Mutex): void {
    Atomics.add(this.#words, WAITERS, 1);
    try {
      mutex.unlock();
    } catch (err) {
      Atomics.sub(this.#words, WAITERS, 1);
      throw err;
    }
  }

  /**
   * Releases `mutex` (which this thread must hold), waits for a notify (or the
   * timeout / abort), and takes `mutex` again before returning or throwing:
   * even a TimeoutError or AbortError leaves the mutex held, as
   * pthread_cond_timedwait does. Resolves with how the mutex was re-taken.
   * The wait runs on a waiter thread, not the event loop.
   *
   * @throws {InvalidArgumentError} This handle of `mutex` does not hold it (checked before anything is released).
   * @throws {PermissionError} EPERM: releasing the mutex failed, its lock word no longer naming this thread
   *   (someone re-initialised it); thrown without waiting or re-taking it, the waiter count as it was.
   * @throws {TimeoutError} ETIMEDOUT: no notify within `timeout` ms (the mutex is held again).
   * @throws {AbortError} `signal` aborted (the mutex is held again).
   * @throws {IpcError} EBADF: the handle is closed (also when closed while waiting, after re-taking the mutex).
   */
  async wait(mutex: Mutex, options?: WaitOptions): Promise<LockResult> {
    this.#check();
    if (!mutex.held) throw invalidArgument('wait() needs the mutex held by this thread');
    // Bad options are refused before the mutex is released, not after.
    timeoutOf(options);
    signalOf(options);
    const seq = Atomics.load(this.#words, SEQ);
    this.#register(mutex);
    let failure: unknown;
    try {
      await waitOnThread<number>((done) => native.futexWait(this.#words, SEQ, seq, done), options, 'futex', this.#where, this.#pending);
    } catch (err) {
      // EAGAIN: notified between our release and our sleep.
      if ((err as { errno?: number }).errno !== -EAGAIN) failure = err;
    } finally {
      Atomics.sub(this.#words, WAITERS, 1);
    }
    const relocked = await mutex.lock();
    if (failure) throw failure;
    return relocked;
  }

  /**
   * wait() that blocks this thread (timeout only), taking the mutex again with
   * {@link Mutex.lockSync} before returning or throwing.
   *
   * @throws {InvalidArgumentError} This handle of `mutex` does not hold it.
   * @throws {PermissionError} EPERM: releasing the mutex failed (as for wait()).
   * @throws {TimeoutError} ETIMEDOUT: no notify within `timeout` ms (the mutex is held again).
   * @throws {IpcError} EBADF: the handle is closed.
   */
  waitSync(mutex: Mutex, options?: { timeout?: number }): LockResult {
    this.#check();
    if (!mutex.held) throw invalidArgument('waitSync() needs the mutex held by this thread');
    const timeout = timeoutOf(options);
    const seq = Atomics.load(this.#words, SEQ);
    this.#register(mutex);
    let r: number;
    try {
      r = native.futexWaitSync(this.#words, SEQ, seq, timeout === Infinity ? -1 : Math.ceil(timeout));
    } finally {
      Atomics.sub(this.#words, WAITERS, 1);
    }
    const relocked = mutex.lockSync();
    if (r === -ETIMEDOUT) throw timeoutError('futex', this.#where);
    if (r < 0 && r !== -EAGAIN && r !== -EINTR) throw systemError(r, 'futex', this.#where);
    return relocked;
  }

  /**
   * Wakes one waiter (if any is waiting: no system call otherwise). Call it
   * holding the mutex, after changing the state, as with pthread_cond_signal.
   *
   * @throws {IpcError} EBADF: the handle is closed.
   */
  notify(): void {
    this.#wake(1);
  }

  /**
   * Wakes every waiter (each then re-takes the mutex in turn).
   *
   * @throws {IpcError} EBADF: the handle is closed.
   */
  notifyAll(): void {
    this.#wake(0x7fffffff);
  }

  #wake(count: number): void {
    this.#check();
    Atomics.add(this.#words, SEQ, 1);
    if (Atomics.load(this.#words, WAITERS) > 0) native.futexWake(this.#words, SEQ, count);
  }

  /** Whether {@link Condition.close} has been called. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Ends pending waits of this handle (EBADF, after re-taking their mutex) and drops its memory. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#pending.cancelAll(closedError('condition handle', this.#where));
    this.#shm?.close();
    this.#shm = undefined;
  }

  /** Calls {@link Condition.close}, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }
}
