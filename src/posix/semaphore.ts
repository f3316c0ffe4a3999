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

/** Options of {@link Semaphore.create}. */
export interface CreateOptions {
  /** Initial value, 0 (default) to SEM_VALUE_MAX. */
  value?: number;
  /** Permission bits, default 0o600 (the umask applies). */
  mode?: number;
  /** true (default): AlreadyExistsError if the name exists; false: open it instead (value ignored then). */
  exclusive?: boolean;
}

/**
 * A POSIX named semaphore (`sem_open`, `sem_post`, `sem_wait`,
 * `sem_trywait`, `sem_getvalue`, `sem_close`, `sem_unlink`): a counter
 * shared by name with other processes, C programs included.
 *
 * Lifecycle: {@link Semaphore.create} makes one (exclusive by default, with
 * an initial value), {@link Semaphore.open} opens an existing one;
 * {@link Semaphore.close} (`sem_close`) releases this handle and
 * {@link Semaphore.unlink} (`sem_unlink`) removes the name (handles already
 * open keep working).
 *
 * Waiting: {@link Semaphore.wait} first tries `sem_trywait` on the calling
 * thread; only if the value is 0 does it wait on a waiter thread (never one
 * of libuv's pool threads), with a timeout and an AbortSignal; a timed-out or
 * aborted wait has decremented nothing. {@link Semaphore.tryWait} never
 * waits, {@link Semaphore.waitSync} blocks the calling thread.
 *
 * @example
 * ```ts
 * import { posix } from 'interprocess';
 *
 * const sem = posix.Semaphore.create('/my-sem', { value: 0, mode: 0o600 });
 *
 * // another process (or C with sem_open + sem_post):
 * const other = posix.Semaphore.open('/my-sem');
 * other.post();
 * other.close();
 *
 * await sem.wait({ timeout: 5000 });   // takes the token
 * console.log(sem.value);              // 0
 * sem.close();
 * posix.Semaphore.unlink('/my-sem');
 * ```
 */
export class Semaphore implements Disposable {
  /** The semaphore's name, e.g. '/my-sem'. */
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

  /**
   * Creates a semaphore with `options.value` (default 0): `sem_open` with
   * O_CREAT | O_EXCL. With `exclusive: false`, opens it instead if the name
   * exists (its value is left as it is).
   *
   * @throws {AlreadyExistsError} EEXIST: the name exists (and `exclusive` is not false).
   * @throws {TooLargeError} ERR_OUT_OF_RANGE: `value` exceeds SEM_VALUE_MAX.
   * @throws {InvalidArgumentError} A bad name or option.
   * @throws {PermissionError} EACCES: an existing semaphore's mode forbids it.
   */
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

  /**
   * Opens an existing semaphore (`sem_open` without O_CREAT).
   *
   * @throws {NotFoundError} ENOENT: no semaphore by that name.
   * @throws {PermissionError} EACCES: its mode forbids it.
   */
  static open(name: string): Semaphore {
    v.posixName(name, 'semaphore', MAX_NAME_BYTES);
    return new Semaphore(name, unwrap(native.semOpen(name, 0, 0, 0), 'sem_open', { path: name }), false);
  }

  /**
   * Removes the name (`sem_unlink`); open handles keep working.
   *
   * @throws {NotFoundError} ENOENT: no semaphore by that name.
   */
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

  /**
   * The current value (`sem_getvalue`); 0 when processes are waiting (Linux does not report waiters as a negative value).
   *
   * @throws {IpcError} EBADF: the handle is closed.
   */
  get value(): number {
    return check(native.semGetValue(this.#handle()), 'sem_getvalue', this.#where);
  }

  /**
   * `sem_post`: adds one, waking a waiter. Never waits.
   *
   * @throws {TooLargeError} EOVERFLOW: the value is at SEM_VALUE_MAX.
   * @throws {IpcError} EBADF: the handle is closed.
   */
  post(): void {
    const r = native.semPost(this.#handle());
    if (r === -EOVERFLOW) {
      throw systemError(r, 'sem_post', { ...this.#where, message: `EOVERFLOW: semaphore '${this.name}' is at its maximum value (${SEM_VALUE_MAX}), sem_post` }, TooLargeError);
    }
    check(r, 'sem_post', this.#where);
  }

  /**
   * `sem_trywait`: true if it took one, false if the value was 0. Never waits.
   *
   * @throws {IpcError} EBADF: the handle is closed.
   */
  tryWait(): boolean {
    const r = native.semTryWait(this.#handle());
    if (r === -EAGAIN) return false;
    check(r, 'sem_trywait', this.#where);
    return true;
  }

  /**
   * `sem_wait` without blocking the event loop: takes one at once if the
   * value is above 0, else waits on a waiter thread. An already aborted
   * signal rejects without taking anything, even if a token is there.
   *
   * @throws {TimeoutError} ETIMEDOUT: the value stayed 0 for `timeout` ms (nothing taken).
   * @throws {AbortError} `signal` aborted (nothing taken).
   * @throws {IpcError} EBADF: the handle is closed (also when closed while waiting).
   */
  async wait(options?: WaitOptions): Promise<void> {
    timeoutOf(options);
    const signal = signalOf(options);
    if (signal?.aborted) throw abortError(signal);
    if (this.tryWait()) return;
    const sem = this.#handle();
    await waitOnThread<number>((done) => native.semWait(sem, done), options, 'sem_wait', this.#where, this.#pending);
  }

  /**
   * `sem_wait` (or `sem_clockwait` with a timeout), blocking this thread.
   *
   * @throws {TimeoutError} ETIMEDOUT: the value stayed 0 for `timeout` ms (nothing taken).
   * @throws {IpcError} EBADF: the handle is closed.
   */
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

  /** Whether {@link Semaphore.close} has been called. */
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

  /** Calls {@link Semaphore.close}, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }
}
