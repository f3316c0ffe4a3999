/**
 * Process-shared robust mutexes. User documentation is on {@link Mutex}.
 *
 * A Mutex is glibc's `pthread_mutex_t`, initialised PTHREAD_PROCESS_SHARED,
 * PTHREAD_MUTEX_ROBUST and PTHREAD_MUTEX_ERRORCHECK, in shared memory: a C
 * program calling pthread_mutex_lock on the same bytes shares the lock
 * (docs/mutex.md). It lives either in a named object of its own
 * (`Mutex.create('/name')`) or at an offset of any SharedArrayBuffer you map
 * (`Mutex.init(buffer, offset)` / `Mutex.at(buffer, offset)`).
 *
 * - Uncontended, lock + unlock are two native calls and no system call.
 * - `lock()` never blocks the event loop: when the lock is busy, a waiter
 *   thread watches the lock word (it never takes the lock) and this thread
 *   retries when it is released. A timeout or abort leaves nothing taken.
 * - When a holder dies, the kernel marks the lock; the next locker gets it
 *   with the result 'owner-died', repairs the protected state and calls
 *   markConsistent(). Unlocking without doing so makes the lock unrecoverable:
 *   every later lock fails with NotRecoverableError, never hangs.
 * - The owner is the thread: several async lock() calls in one thread queue
 *   up and take turns; lockSync() of a lock this thread holds is a
 *   DeadlockError; unlocking a lock this thread does not hold is a
 *   PermissionError.
 */
import { constants } from 'node:os';
import { native } from './native.js';
import { DeadlockError, InvalidArgumentError, NotRecoverableError, PermissionError, invalidArgument, systemError } from './errors.js';
import { SharedMemory } from './posix/shared-memory.js';
import { closedError } from './internal/handle.js';
import { PendingWaits, waitOnThread } from './internal/blocking.js';
import { abortError, deadlineTimer, signalOf, timeoutError, timeoutOf, type WaitOptions } from './internal/wait.js';
import { HEADER_SIZE, createNamed, openNamed } from './internal/object-header.js';
import * as v from './internal/validate.js';

const { EBUSY, EDEADLK, EPERM, ETIMEDOUT, EINVAL } = constants.errno;
const { EOWNERDEAD, ENOTRECOVERABLE } = native.lockErrno;

/** Bytes a Mutex occupies in memory: sizeof(pthread_mutex_t) on this platform (40 on x86-64 glibc). */
export const MUTEX_SIZE: number = native.MUTEX_SIZE;
/** The alignment a Mutex's byte offset must have: alignof(pthread_mutex_t). */
export const MUTEX_ALIGN: number = native.MUTEX_ALIGN;
/** Size of a named mutex object: the header, then the pthread_mutex_t at offset 64. */
const NAMED_SIZE = HEADER_SIZE + 64;

/** trylock attempts (about 10 µs) before a busy async lock() parks a watcher thread. */
const SPIN_TRIES = 100;

/** How a lock was acquired: normally, or from a holder that died holding it. */
export type LockResult = 'locked' | 'owner-died';

/** Options of {@link Mutex.create}. */
export interface CreateOptions {
  /** Permission bits, default 0o600. */
  mode?: number;
  /** true (default): AlreadyExistsError if the name exists; false: open it instead. */
  exclusive?: boolean;
}

/** What `acquire()` gives: the lock, released by `using` or `release()`. */
export interface MutexGuard extends Disposable {
  /** How the lock was acquired: 'owner-died' means repair the state, then {@link MutexGuard.markConsistent}. */
  readonly result: LockResult;
  /** {@link Mutex.markConsistent} on the guarded mutex. */
  markConsistent(): void;
  /** Unlocks the mutex; later calls (and the dispose at the end of a `using` scope) do nothing. */
  release(): void;
}

function view(buffer: SharedArrayBuffer, byteOffset: number): Uint8Array {
  if (!(buffer instanceof SharedArrayBuffer)) throw invalidArgument('buffer must be a SharedArrayBuffer (e.g. SharedMemory.buffer)', 'ERR_INVALID_ARG_TYPE');
  v.nonNegativeInt(byteOffset, 'byteOffset', Number.MAX_SAFE_INTEGER);
  if (byteOffset % MUTEX_ALIGN !== 0) throw invalidArgument(`byteOffset must be a multiple of ${MUTEX_ALIGN}, got ${byteOffset}`);
  if (byteOffset + MUTEX_SIZE > buffer.byteLength) throw invalidArgument(`a mutex needs ${MUTEX_SIZE} bytes at offset ${byteOffset}; the buffer has ${buffer.byteLength}`);
  return new Uint8Array(buffer, byteOffset, MUTEX_SIZE);
}

/**
 * A process-shared robust mutex: glibc's `pthread_mutex_t`, initialised
 * PTHREAD_PROCESS_SHARED, PTHREAD_MUTEX_ROBUST and PTHREAD_MUTEX_ERRORCHECK,
 * in shared memory, so a C program calling `pthread_mutex_lock` on the same
 * bytes shares the lock (docs/mutex.md; C helpers in include/interprocess.h).
 *
 * Where it lives: either in a named POSIX shared memory object of its own
 * ({@link Mutex.create} / {@link Mutex.open}, removed with
 * {@link Mutex.unlink}), or at an offset of any SharedArrayBuffer you map
 * ({@link Mutex.init} to initialise it, {@link Mutex.at} to use one already
 * there). {@link Mutex.close} ends this handle (releasing the lock if it
 * holds it); the mutex itself stays.
 *
 * Locking: {@link Mutex.lock} never blocks the event loop (a busy lock is
 * watched by a waiter thread that never takes it; this thread retries when it
 * is released), with a timeout and an AbortSignal, and leaves nothing taken
 * when it gives up. {@link Mutex.lockSync} blocks the calling thread,
 * {@link Mutex.tryLock} never waits; {@link Mutex.withLock} and
 * {@link Mutex.acquire} release it for you. Uncontended, lock + unlock make no
 * system call.
 *
 * Robustness: when a holder dies, the kernel marks the lock; the next locker
 * gets it with the result 'owner-died', repairs the protected state and calls
 * {@link Mutex.markConsistent}. Unlocking without doing so makes the lock
 * unrecoverable: every later lock fails with a NotRecoverableError, never hangs.
 *
 * The owner is the thread: several async lock() calls of one handle take
 * turns; lockSync() of a lock this thread holds is a DeadlockError;
 * unlocking a lock this handle does not hold is a PermissionError.
 *
 * @example
 * ```ts
 * import { Mutex, posix } from 'interprocess';
 *
 * const shm = posix.SharedMemory.create('/my-state', { size: 4096, mode: 0o600 });
 * const m = Mutex.init(shm.buffer, 0);                 // a pthread_mutex_t at offset 0
 * const counter = new Int32Array(shm.buffer, 64, 1);
 *
 * // any process that maps '/my-state' uses Mutex.at(shm.buffer, 0):
 * await m.withLock(() => counter[0]++);                // always unlocks
 *
 * const state = await m.lock({ timeout: 5000 });
 * if (state === 'owner-died') {
 *   counter[0] = 0;                                    // repair what the lock protects...
 *   m.markConsistent();                                // ...then say so
 * }
 * m.unlock();
 * m.close();
 * shm.close();
 * posix.SharedMemory.unlink('/my-state');
 * ```
 */
export class Mutex implements Disposable {
  /** The name of a named mutex, or undefined for one placed in your memory. */
  readonly name: string | undefined;
  readonly #view: Uint8Array;
  #shm: SharedMemory | undefined;
  #held = false;
  #closed = false;
  // lock() calls of this thread waiting for this thread to release it.
  readonly #local: Array<() => void> = [];
  readonly #watchers = new PendingWaits();

  private constructor(view: Uint8Array, name?: string, shm?: SharedMemory) {
    this.#view = view;
    this.name = name;
    this.#shm = shm;
  }

  /**
   * Initialises a new mutex at `byteOffset` of `buffer` (which must be shared
   * memory for other processes to see it): `pthread_mutex_init`. Only once,
   * before anyone uses it: initialising a mutex in use breaks it.
   *
   * @param byteOffset A multiple of {@link MUTEX_ALIGN}, with {@link MUTEX_SIZE} bytes from there in `buffer`.
   * @throws {InvalidArgumentError} `buffer` is not a SharedArrayBuffer, or the offset is misaligned or too close to its end.
   */
  static init(buffer: SharedArrayBuffer, byteOffset = 0): Mutex {
    const m = view(buffer, byteOffset);
    const r = native.mutexInit(m);
    if (r < 0) throw systemError(r, 'pthread_mutex_init', {});
    return new Mutex(m);
  }

  /**
   * A handle on a mutex already initialised at `byteOffset` of `buffer` (by init(), or a C program).
   *
   * @throws {InvalidArgumentError} `buffer` is not a SharedArrayBuffer, or the offset is misaligned or too close to its end.
   */
  static at(buffer: SharedArrayBuffer, byteOffset = 0): Mutex {
    return new Mutex(view(buffer, byteOffset));
  }

  /**
   * Creates a named mutex: a POSIX shared memory object holding a header and
   * the `pthread_mutex_t` (at offset 64). With `exclusive: false`, opens it
   * instead if the name exists.
   *
   * @throws {AlreadyExistsError} EEXIST: the name exists (and `exclusive` is not false).
   * @throws {InvalidArgumentError} A bad name or option, or (with `exclusive: false`) the object is not a mutex.
   */
  static create(name: string, options: CreateOptions = {}): Mutex {
    return createNamed(name, 'mutex', { ...options, size: NAMED_SIZE }, (b) => Mutex.init(b, HEADER_SIZE), (shm) => Mutex.#named(name, shm));
  }

  /**
   * Opens a named mutex (waiting up to 2 s for a creator still initialising it).
   *
   * @throws {NotFoundError} ENOENT: no object by that name.
   * @throws {InvalidArgumentError} The object is not an interprocess mutex.
   * @throws {IpcError} ERR_LAYOUT_VERSION: it was made by an incompatible version.
   */
  static open(name: string): Mutex {
    return openNamed(name, 'mutex', (shm) => Mutex.#named(name, shm));
  }

  static #named(name: string, shm: SharedMemory): Mutex {
    return new Mutex(view(shm.buffer, HEADER_SIZE), name, shm);
  }

  /**
   * Removes a named mutex's name (`shm_unlink`); handles already open keep working.
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
    if (this.#closed) throw closedError('mutex handle', this.#where);
  }

  /** Whether this handle (this thread) holds the lock now. */
  get held(): boolean {
    return this.#held;
  }

  /**
   * The thread id the lock word names as owner (0 when free), for diagnostics.
   *
   * @throws {IpcError} EBADF: the handle is closed.
   */
  get ownerTid(): number {
    this.#check();
    return native.mutexOwner(this.#view);
  }

  #result(r: number, syscall: string): LockResult | undefined {
    if (r === 0) {
      this.#held = true;
      return 'locked';
    }
    if (r === -EOWNERDEAD) {
      this.#held = true;
      return 'owner-died';
    }
    if (r === -EBUSY || r === -ETIMEDOUT) return undefined;
    if (r === -ENOTRECOVERABLE) {
      throw new NotRecoverableError('ENOTRECOVERABLE', {
        errno: r,
        syscall,
        ...this.#where,
        message: `ENOTRECOVERABLE: a holder died and the next one released the mutex without markConsistent(); it can never be locked again, ${syscall}${this.name ? ` '${this.name}'` : ''}`,
      });
    }
    if (r === -EDEADLK) {
      throw new DeadlockError('EDEADLK', { errno: r, syscall, ...this.#where, message: `EDEADLK: this thread already holds the mutex, ${syscall}${this.name ? ` '${this.name}'` : ''}` });
    }
    throw systemError(r, syscall, this.#where);
  }

  /**
   * `pthread_mutex_trylock`: takes the lock if it is free now; 'busy' if not
   * (also when this thread holds it). Never waits.
   *
   * @throws {NotRecoverableError} ENOTRECOVERABLE: see {@link Mutex.markConsistent}.
   * @throws {IpcError} EBADF: the handle is closed.
   */
  tryLock(): LockResult | 'busy' {
    this.#check();
    if (this.#held) return 'busy';
    const r = native.mutexTryLock(this.#view);
    if (r === -EDEADLK) return 'busy';
    return this.#result(r, 'pthread_mutex_trylock') ?? 'busy';
  }

  /**
   * `pthread_mutex_lock` (`pthread_mutex_clocklock` with a timeout): takes
   * the lock, blocking this thread while it is busy.
   *
   * @returns 'locked', or 'owner-died' if its holder died holding it (repair, then {@link Mutex.markConsistent}).
   * @throws {TimeoutError} ETIMEDOUT: still busy after `timeout` ms.
   * @throws {DeadlockError} EDEADLK: this thread holds it already.
   * @throws {NotRecoverableError} ENOTRECOVERABLE: see {@link Mutex.markConsistent}.
   * @throws {IpcError} EBADF: the handle is closed.
   */
  lockSync(options?: { timeout?: number }): LockResult {
    this.#check();
    const timeout = timeoutOf(options);
    if (this.#held) return this.#result(-EDEADLK, 'pthread_mutex_lock')!;
    const r = native.mutexLockSync(this.#view, timeout === Infinity ? -1 : Math.ceil(timeout));
    if (r === -ETIMEDOUT) throw timeoutError('pthread_mutex_clocklock', this.#where);
    return this.#result(r, 'pthread_mutex_lock')!;
  }

  /**
   * Takes the lock without blocking the event loop: a few `trylock`s, then a
   * waiter thread watches the lock word and this thread tries again when it
   * is released. Several lock() calls of one handle take turns. A timeout,
   * abort or close() leaves nothing taken.
   *
   * @returns 'locked', or 'owner-died' if its holder died holding it (repair, then {@link Mutex.markConsistent}).
   * @throws {TimeoutError} ETIMEDOUT: still busy after `timeout` ms.
   * @throws {AbortError} `signal` aborted.
   * @throws {DeadlockError} EDEADLK: this thread holds it through another handle.
   * @throws {NotRecoverableError} ENOTRECOVERABLE: see {@link Mutex.markConsistent}.
   * @throws {IpcError} EBADF: the handle is closed (also when closed while waiting).
   */
  async lock(options?: WaitOptions): Promise<LockResult> {
    this.#check();
    const timeout = timeoutOf(options);
    const signal = signalOf(options);
    if (signal?.aborted) throw abortError(signal);
    const start = performance.now();
    const left = (): number => timeout - (performance.now() - start);
    // A watcher of ours returned: the unlock that ended its watch woke it
    // alone, so another waiter may still sleep; that wake-up must be handed on.
    let woken = false;
    try {
      for (;;) {
        this.#check();
        // Nothing is taken yet: an abort seen after a wait wins over a retry.
        if (signal?.aborted) throw abortError(signal);
        if (this.#held) {
          await this.#localTurn(left(), signal);
          continue;
        }
        // Most holds are short: before parking a watcher thread (a thread start
        // and two sleep/wake hand-offs), retry for a few microseconds. This
        // took contended handoffs between two processes from ~4 k/s to ~1 M/s.
        let got = this.#result(native.mutexTryLock(this.#view), 'pthread_mutex_trylock');
        for (let i = 0; !got && i < SPIN_TRIES; i++) got = this.#result(native.mutexTryLock(this.#view), 'pthread_mutex_trylock');
        if (got) {
          // Keep FUTEX_WAITERS set so our unlock wakes the next waiter.
          if (woken) native.mutexMarkWaiters(this.#view);
          return got;
        }
        if (left() <= 0) throw timeoutError('pthread_mutex_lock', this.#where);
        const remaining = left();
        await waitOnThread<number>(
          (done) => native.mutexWatch(this.#view, done),
          { timeout: remaining, ...(signal ? { signal } : {}) },
          'pthread_mutex_lock',
          this.#where,
          this.#watchers,
        );
        woken = true;
      }
    } catch (err) {
      // Leaving without the lock (timeout, abort, close, error): hand on the
      // wake-up our watcher may have consumed, and this handle's turn, which
      // unlock() may have given us while others queue behind it.
      if (woken) native.mutexMarkWaiters(this.#view);
      if (!this.#held) this.#local.shift()?.();
      throw err;
    }
  }

  #localTurn(timeout: number, signal: AbortSignal | undefined): Promise<void> {
    return new Promise((resolve, reject) => {
      if (timeout <= 0) return reject(timeoutError('pthread_mutex_lock', this.#where));
      const turn = (): void => {
        timer.clear();
        signal?.removeEventListener('abort', onAbort);
        resolve();
      };
      const drop = (err: Error): void => {
        const i = this.#local.indexOf(turn);
        if (i >= 0) this.#local.splice(i, 1);
        signal?.removeEventListener('abort', onAbort);
        timer.clear();
        reject(err);
      };
      const onAbort = (): void => drop(abortError(signal!));
      const timer = deadlineTimer(timeout, () => drop(timeoutError('pthread_mutex_lock', this.#where)));
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#local.push(turn);
    });
  }

  /**
   * `pthread_mutex_unlock`: releases the lock, and hands this handle's turn to
   * its next waiting lock() call.
   *
   * @throws {PermissionError} EPERM: this handle does not hold it.
   * @throws {IpcError} EBADF: the handle is closed.
   */
  unlock(): void {
    this.#check();
    if (!this.#held) {
      throw new PermissionError('EPERM', { errno: -EPERM, syscall: 'pthread_mutex_unlock', ...this.#where, message: `EPERM: this thread does not hold the mutex, pthread_mutex_unlock${this.name ? ` '${this.name}'` : ''}` });
    }
    const r = native.mutexUnlock(this.#view);
    this.#held = false;
    if (r < 0) throw systemError(r, 'pthread_mutex_unlock', this.#where);
    this.#local.shift()?.();
  }

  /**
   * After a lock returned 'owner-died' and the protected state is repaired:
   * marks the mutex consistent (`pthread_mutex_consistent`), so it keeps
   * working after unlock(). Unlocking an owner-died mutex without this makes
   * it unrecoverable: every later lock, here or in C, fails with
   * ENOTRECOVERABLE.
   *
   * @throws {InvalidArgumentError} EINVAL: the mutex is not in the owner-died state, or this thread does not hold it.
   * @throws {IpcError} EBADF: the handle is closed.
   */
  markConsistent(): void {
    this.#check();
    const r = native.mutexConsistent(this.#view);
    if (r === -EINVAL) {
      throw new InvalidArgumentError('EINVAL', { errno: r, syscall: 'pthread_mutex_consistent', ...this.#where, message: `EINVAL: the mutex is not in the owner-died state (or this thread does not hold it), pthread_mutex_consistent` });
    }
    if (r < 0) throw systemError(r, 'pthread_mutex_consistent', this.#where);
  }

  /**
   * Takes the lock as {@link Mutex.lock} does (same options and errors);
   * `using guard = await m.acquire()` releases it at the end of the scope.
   */
  async acquire(options?: WaitOptions): Promise<MutexGuard> {
    const result = await this.lock(options);
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      this.unlock();
    };
    return { result, markConsistent: () => this.markConsistent(), release, [Symbol.dispose]: release };
  }

  /**
   * Runs `fn` holding the lock and always releases it. If the previous holder
   * died, `fn` gets 'owner-died' and must repair the state; returning normally
   * marks the mutex consistent, throwing leaves it to become unrecoverable.
   * Waits as {@link Mutex.lock} does (same options and errors); resolves with
   * what `fn` returns, or rejects with what it throws.
   */
  async withLock<T>(fn: (result: LockResult) => T | Promise<T>, options?: WaitOptions): Promise<T> {
    const result = await this.lock(options);
    try {
      const value = await fn(result);
      if (result === 'owner-died') this.markConsistent();
      return value;
    } finally {
      this.unlock();
    }
  }

  /** Whether {@link Mutex.close} has been called. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Releases the lock if this handle holds it, ends its pending lock() calls (EBADF), and drops its memory. Idempotent. */
  close(): void {
    if (this.#closed) return;
    if (this.#held) this.unlock();
    this.#closed = true;
    // Pending lock() calls of this handle end with EBADF, having taken nothing.
    this.#watchers.cancelAll(closedError('mutex handle', this.#where));
    for (const turn of this.#local.splice(0)) turn();
    this.#shm?.close();
    this.#shm = undefined;
  }

  /** Calls {@link Mutex.close}, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }
}
