/**
 * Process-shared robust mutexes.
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

/** Bytes a Mutex occupies in memory (sizeof(pthread_mutex_t)), and its alignment. */
export const MUTEX_SIZE: number = native.MUTEX_SIZE;
export const MUTEX_ALIGN: number = native.MUTEX_ALIGN;
/** Size of a named mutex object: the header, then the pthread_mutex_t at offset 64. */
const NAMED_SIZE = HEADER_SIZE + 64;

/** trylock attempts (about 10 µs) before a busy async lock() parks a watcher thread. */
const SPIN_TRIES = 100;

/** How a lock was acquired: normally, or from a holder that died holding it. */
export type LockResult = 'locked' | 'owner-died';

export interface CreateOptions {
  /** Permission bits, default 0o600. */
  mode?: number;
  /** true (default): AlreadyExistsError if the name exists; false: open it instead. */
  exclusive?: boolean;
}

/** What `acquire()` gives: the lock, released by `using` or `release()`. */
export interface MutexGuard extends Disposable {
  readonly result: LockResult;
  markConsistent(): void;
  release(): void;
}

function view(buffer: SharedArrayBuffer, byteOffset: number): Uint8Array {
  if (!(buffer instanceof SharedArrayBuffer)) throw invalidArgument('buffer must be a SharedArrayBuffer (e.g. SharedMemory.buffer)', 'ERR_INVALID_ARG_TYPE');
  v.nonNegativeInt(byteOffset, 'byteOffset', Number.MAX_SAFE_INTEGER);
  if (byteOffset % MUTEX_ALIGN !== 0) throw invalidArgument(`byteOffset must be a multiple of ${MUTEX_ALIGN}, got ${byteOffset}`);
  if (byteOffset + MUTEX_SIZE > buffer.byteLength) throw invalidArgument(`a mutex needs ${MUTEX_SIZE} bytes at offset ${byteOffset}; the buffer has ${buffer.byteLength}`);
  return new Uint8Array(buffer, byteOffset, MUTEX_SIZE);
}

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

  /** Initialises a new mutex at `byteOffset` of `buffer` (which must be shared memory for other processes to see it). */
  static init(buffer: SharedArrayBuffer, byteOffset = 0): Mutex {
    const m = view(buffer, byteOffset);
    const r = native.mutexInit(m);
    if (r < 0) throw systemError(r, 'pthread_mutex_init', {});
    return new Mutex(m);
  }

  /** A handle on a mutex already initialised at `byteOffset` of `buffer` (by init(), or a C program). */
  static at(buffer: SharedArrayBuffer, byteOffset = 0): Mutex {
    return new Mutex(view(buffer, byteOffset));
  }

  /** Creates a named mutex (a POSIX shared memory object holding it). */
  static create(name: string, options: CreateOptions = {}): Mutex {
    return createNamed(name, 'mutex', { ...options, size: NAMED_SIZE }, (b) => Mutex.init(b, HEADER_SIZE), (shm) => Mutex.#named(name, shm));
  }

  /** Opens a named mutex. */
  static open(name: string): Mutex {
    return openNamed(name, 'mutex', (shm) => Mutex.#named(name, shm));
  }

  static #named(name: string, shm: SharedMemory): Mutex {
    return new Mutex(view(shm.buffer, HEADER_SIZE), name, shm);
  }

  /** Removes a named mutex's name; handles already open keep working. */
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

  /** The thread id the lock word names as owner (0 when free), for diagnostics. */
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

  /** Takes the lock if it is free now: 'busy' if not (also when this thread holds it). */
  tryLock(): LockResult | 'busy' {
    this.#check();
    if (this.#held) return 'busy';
    const r = native.mutexTryLock(this.#view);
    if (r === -EDEADLK) return 'busy';
    return this.#result(r, 'pthread_mutex_trylock') ?? 'busy';
  }

  /** Takes the lock, blocking this thread while it is busy. */
  lockSync(options?: { timeout?: number }): LockResult {
    this.#check();
    const timeout = timeoutOf(options);
    if (this.#held) return this.#result(-EDEADLK, 'pthread_mutex_lock')!;
    const r = native.mutexLockSync(this.#view, timeout === Infinity ? -1 : Math.ceil(timeout));
    if (r === -ETIMEDOUT) throw timeoutError('pthread_mutex_clocklock', this.#where);
    return this.#result(r, 'pthread_mutex_lock')!;
  }

  /** Takes the lock without blocking the event loop. */
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

  /** Releases the lock. PermissionError if this thread (handle) does not hold it. */
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
   * marks the mutex consistent, so it keeps working after unlock().
   */
  markConsistent(): void {
    this.#check();
    const r = native.mutexConsistent(this.#view);
    if (r === -EINVAL) {
      throw new InvalidArgumentError('EINVAL', { errno: r, syscall: 'pthread_mutex_consistent', ...this.#where, message: `EINVAL: the mutex is not in the owner-died state (or this thread does not hold it), pthread_mutex_consistent` });
    }
    if (r < 0) throw systemError(r, 'pthread_mutex_consistent', this.#where);
  }

  /** Takes the lock; `using guard = await m.acquire()` releases it at the end of the scope. */
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

  [Symbol.dispose](): void {
    this.close();
  }
}
