/**
 * Process-shared condition variables, paired with a {@link Mutex}.
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

export const CONDITION_SIZE = 8;
const SEQ = 0;
const WAITERS = 1;

export class Condition implements Disposable {
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

  /** Initialises a condition at `byteOffset` of `buffer` (zeroes its 8 bytes). */
  static init(buffer: SharedArrayBuffer, byteOffset = 0): Condition {
    const w = Condition.#view(buffer, byteOffset);
    Atomics.store(w, SEQ, 0);
    Atomics.store(w, WAITERS, 0);
    return new Condition(w);
  }

  /** A handle on a condition already at `byteOffset` of `buffer`. */
  static at(buffer: SharedArrayBuffer, byteOffset = 0): Condition {
    return new Condition(Condition.#view(buffer, byteOffset));
  }

  /** Creates a named condition (a POSIX shared memory object). */
  static create(name: string, options: { mode?: number; exclusive?: boolean } = {}): Condition {
    return createNamed(name, 'condition', { ...options, size: HEADER_SIZE + 64 }, () => {}, (shm) => Condition.#named(name, shm));
  }

  static open(name: string): Condition {
    return openNamed(name, 'condition', (shm) => Condition.#named(name, shm));
  }

  static #named(name: string, shm: SharedMemory): Condition {
    return new Condition(Condition.#view(shm.buffer, HEADER_SIZE), name, shm);
  }

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
   * Releases `mutex` (which this thread must hold), waits for a notify (or the
   * timeout / abort), and takes `mutex` again before returning or throwing:
   * even a TimeoutError or AbortError leaves the mutex held, as
   * pthread_cond_timedwait does. Resolves with how the mutex was re-taken.
   */
  async wait(mutex: Mutex, options?: WaitOptions): Promise<LockResult> {
    this.#check();
    if (!mutex.held) throw invalidArgument('wait() needs the mutex held by this thread');
    // Bad options are refused before the mutex is released, not after.
    timeoutOf(options);
    signalOf(options);
    const seq = Atomics.load(this.#words, SEQ);
    Atomics.add(this.#words, WAITERS, 1);
    mutex.unlock();
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

  /** wait() that blocks this thread (timeout only). */
  waitSync(mutex: Mutex, options?: { timeout?: number }): LockResult {
    this.#check();
    if (!mutex.held) throw invalidArgument('waitSync() needs the mutex held by this thread');
    const timeout = timeoutOf(options);
    const seq = Atomics.load(this.#words, SEQ);
    Atomics.add(this.#words, WAITERS, 1);
    mutex.unlock();
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

  /** Wakes one waiter (if any is waiting: no system call otherwise). */
  notify(): void {
    this.#wake(1);
  }

  /** Wakes every waiter. */
  notifyAll(): void {
    this.#wake(0x7fffffff);
  }

  #wake(count: number): void {
    this.#check();
    Atomics.add(this.#words, SEQ, 1);
    if (Atomics.load(this.#words, WAITERS) > 0) native.futexWake(this.#words, SEQ, count);
  }

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

  [Symbol.dispose](): void {
    this.close();
  }
}
