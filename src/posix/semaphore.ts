/**
 * POSIX named semaphores: sem_open, sem_post, sem_wait, sem_trywait,
 * sem_getvalue, sem_close, sem_unlink.
 *
 * `wait()` first tries sem_trywait on the calling thread; only when the value
 * is 0 does it wait, on a waiter thread (never a libuv pool thread). A timeout
 * or abort ends the wait having decremented nothing.
 */
import { constants } from 'node:os';
import { native, type SemHandle } from '../native.js';
import { check, systemError, unwrap, TooLargeError } from '../errors.js';
import { closedError } from '../internal/handle.js';
import { PendingWaits, waitOnThread } from '../internal/blocking.js';
import { abortError, signalOf, timeoutError, timeoutOf, type WaitOptions } from '../internal/wait.js';
import * as v from '../internal/validate.js';
import { constants as fsc } from 'node:fs';

const { EAGAIN, EEXIST, ENOENT, EOVERFLOW, ETIMEDOUT } = constants.errno;

/** glibc prefixes "sem." to the name: 251 bytes remain after the leading '/'. */
export const MAX_NAME_BYTES = 251;
/** The largest value a POSIX semaphore can hold. */
export const SEM_VALUE_MAX: number = native.semConstants.SEM_VALUE_MAX;

export interface CreateOptions {
  /** Initial value, 0 (default) to SEM_VALUE_MAX. */
  value?: number;
  /** Permission bits, default 0o600 (the umask applies). */
  mode?: number;
  /** true (default): AlreadyExistsError if the name exists; false: open it instead (value ignored then). */
  exclusive?: boolean;
}

export class Semaphore implements Disposable {
  readonly name: string;
  /** True if this handle created the semaphore. */
  readonly created: boolean;
  #sem: SemHandle | undefined;
  readonly #pending = new PendingWaits();

  private constructor(name: string, sem: SemHandle, created: boolean) {
    this.name = name;
    this.#sem = sem;
    this.created = created;
  }

  static create(name: string, options: CreateOptions = {}): Semaphore {
    v.posixName(name, 'semaphore', MAX_NAME_BYTES);
    const value = Semaphore.#initialValue(options.value);
    const mode = v.mode(options.mode, 0o600);
    const exclusive = v.bool(options.exclusive, 'exclusive', true);
    const where = { path: name };
    for (;;) {
      const sem = native.semOpen(name, fsc.O_CREAT | fsc.O_EXCL, mode, value);
      if (typeof sem !== 'number') return new Semaphore(name, sem, true);
      if (exclusive || sem !== -EEXIST) check(sem, 'sem_open', where);
      const existing = native.semOpen(name, 0, 0, 0);
      if (existing === -ENOENT) continue; // unlinked meanwhile: create again
      return new Semaphore(name, unwrap(existing, 'sem_open', where), false);
    }
  }

  static #initialValue(value: unknown): number {
    if (value === undefined) return 0;
    if (typeof value === 'number' && Number.isInteger(value) && value > SEM_VALUE_MAX) {
      throw new TooLargeError('ERR_OUT_OF_RANGE', { message: `value ${value} exceeds SEM_VALUE_MAX (${SEM_VALUE_MAX})` });
    }
    return v.intInRange(value, 'value', 0, SEM_VALUE_MAX);
  }

  static open(name: string): Semaphore {
    v.posixName(name, 'semaphore', MAX_NAME_BYTES);
    return new Semaphore(name, unwrap(native.semOpen(name, 0, 0, 0), 'sem_open', { path: name }), false);
  }

  /** Removes the name (`sem_unlink`); open handles keep working. */
  static unlink(name: string): void {
    v.posixName(name, 'semaphore', MAX_NAME_BYTES);
    check(native.semUnlink(name), 'sem_unlink', { path: name });
  }

  get #where(): { path: string } {
    return { path: this.name };
  }

  #handle(): SemHandle {
    if (!this.#sem) throw closedError('semaphore handle', this.#where);
    return this.#sem;
  }

  /** sem_getvalue. */
  get value(): number {
    return check(native.semGetValue(this.#handle()), 'sem_getvalue', this.#where);
  }

  /** sem_post: adds one, waking a waiter. TooLargeError at SEM_VALUE_MAX. */
  post(): void {
    const r = native.semPost(this.#handle());
    if (r === -EOVERFLOW) {
      throw systemError(r, 'sem_post', { ...this.#where, message: `EOVERFLOW: semaphore '${this.name}' is at its maximum value (${SEM_VALUE_MAX}), sem_post` }, TooLargeError);
    }
    check(r, 'sem_post', this.#where);
  }

  /** sem_trywait: true if it took one, false if the value was 0. */
  tryWait(): boolean {
    const r = native.semTryWait(this.#handle());
    if (r === -EAGAIN) return false;
    check(r, 'sem_trywait', this.#where);
    return true;
  }

  /**
   * sem_wait without blocking the event loop. An already aborted signal
   * rejects without taking anything, even if a token is there.
   */
  async wait(options?: WaitOptions): Promise<void> {
    timeoutOf(options);
    const signal = signalOf(options);
    if (signal?.aborted) throw abortError(signal);
    if (this.tryWait()) return;
    const sem = this.#handle();
    await waitOnThread<number>((done) => native.semWait(sem, done), options, 'sem_wait', this.#where, this.#pending);
  }

  /** sem_wait (or sem_clockwait with a timeout), blocking this thread. */
  waitSync(options?: { timeout?: number }): void {
    const timeout = timeoutOf(options);
    const r = native.semWaitSync(this.#handle(), timeout === Infinity ? -1 : Math.ceil(timeout));
    if (r === -ETIMEDOUT) throw timeoutError('sem_clockwait', this.#where);
    check(r, 'sem_wait', this.#where);
  }

  /** Removes this semaphore's name (see {@link Semaphore.unlink}). */
  unlink(): void {
    Semaphore.unlink(this.name);
  }

  get closed(): boolean {
    return this.#sem === undefined;
  }

  /**
   * sem_close. Pending waits reject (EBADF) having taken nothing; the native
   * side unmaps the semaphore once their threads have let go of it (see
   * native/sem.cc). Idempotent.
   */
  close(): void {
    const sem = this.#sem;
    if (!sem) return;
    this.#sem = undefined;
    this.#pending.cancelAll(closedError('semaphore handle', this.#where));
    native.semClose(sem);
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
