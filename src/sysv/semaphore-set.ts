/**
 * System V semaphore sets: semget, semop/semtimedop, semctl. User
 * documentation is on {@link SemaphoreSet}.
 *
 * `op()` applies several operations atomically, as semop does. It first tries
 * with IPC_NOWAIT on the calling thread; only if that would block does it wait
 * on a waiter thread (never a libuv pool thread). A timeout or abort applies
 * nothing. Operations with `undo` (SEM_UNDO) are reverted by the kernel when
 * the process exits, crashes included.
 */
import { constants } from 'node:os';
import { native, type SemStatRaw } from '../native.js';
import { check, invalidArgument, systemError, unwrap, TooLargeError } from '../errors.js';
import { closedError } from '../internal/handle.js';
import { PendingWaits, waitOnThread } from '../internal/blocking.js';
import { abortError, signalOf, timeoutError, timeoutOf, type WaitOptions } from '../internal/wait.js';
import * as v from '../internal/validate.js';
import { procFields } from '../internal/limits.js';
import { ipcTime, resolveKey, IPC_PRIVATE, type IpcPerm, type Key } from './key.js';

const { IPC_CREAT, IPC_EXCL, IPC_NOWAIT } = native.sysvConstants;
const { SEM_UNDO, GETVAL, SETVAL, GETNCNT, GETZCNT, GETPID, IPC_RMID } = native.semConstants;
const { EAGAIN, ERANGE } = constants.errno;

/** The largest value a System V semaphore can hold (32767). */
export const SEMVMX: number = native.semConstants.SEMVMX;
// /proc/sys/kernel/sem: SEMMSL SEMMNS SEMOPM SEMMNI
const semLimits = procFields('/proc/sys/kernel/sem');
/** Most semaphores in one set (SEMMSL; Linux default 32000). */
export const SEMMSL = semLimits[0] ?? 32000;
/** Most operations in one semop call (SEMOPM; Linux default 500). */
export const SEMOPM = semLimits[2] ?? 500;

/** Options of {@link SemaphoreSet.create}. */
export interface CreateOptions {
  /** A key, `{ path, projId }` for ftok, or IPC_PRIVATE (the default): always a new set. */
  key?: Key;
  /** Number of semaphores in the set (nsems). */
  count: number;
  /** Permission bits, default 0o600. */
  mode?: number;
  /** true (default): AlreadyExistsError if the key exists; false: open it instead. */
  exclusive?: boolean;
  /** Initial values (one for all, or one each), set when this call created the set. */
  value?: number | number[];
}

/** One semop operation. */
export interface SemOp {
  /** Which semaphore in the set (default 0). */
  num?: number;
  /** > 0 adds, < 0 waits until it can subtract, 0 waits until the value is 0. */
  op: number;
  /** SEM_UNDO: the kernel reverts this operation when the process exits. */
  undo?: boolean;
  /** IPC_NOWAIT for this operation: fail with WouldBlockError instead of waiting. */
  noWait?: boolean;
}

/** The set's `semid_ds`, field names as in C without the `sem_` prefix. */
export interface SemStat extends IpcPerm {
  /** The set id (semid). */
  id: number;
  /** Last semop (null if never). */
  otime: Date | null;
  /** Last change (creation, IPC_SET, SETVAL, SETALL). */
  ctime: Date;
  /** Number of semaphores in the set. */
  nsems: number;
}

function toStat(id: number, r: SemStatRaw): SemStat {
  return { id, ...r, otime: ipcTime(r.otime), ctime: ipcTime(r.ctime)! };
}

/** A semaphore value, 0 to SEMVMX; above SEMVMX it is the ERANGE semctl would give. */
function semValue(value: unknown, what: string, where: { key?: number } = {}): number {
  if (typeof value === 'number' && Number.isInteger(value) && value > SEMVMX) {
    throw new TooLargeError('ERANGE', { errno: -ERANGE, message: `ERANGE: ${what} ${value} exceeds the maximum semaphore value (${SEMVMX})`, ...where });
  }
  return v.intInRange(value, what, 0, SEMVMX);
}

/**
 * A System V semaphore set (`semget`, `semop` / `semtimedop`, `semctl`):
 * `count` semaphores under one key or id, shared with C programs.
 *
 * Lifecycle: {@link SemaphoreSet.create} makes a set (a new IPC_PRIVATE one
 * by default, or under a key; exclusive by default) and sets the initial
 * values; {@link SemaphoreSet.open} opens one by key,
 * {@link SemaphoreSet.fromId} by id. {@link SemaphoreSet.close} ends only
 * this handle; the set lives in the kernel until {@link SemaphoreSet.remove}
 * (`IPC_RMID`), which also ends every process's waits on it with a
 * RemovedError.
 *
 * Operations: {@link SemaphoreSet.op} applies several operations atomically,
 * as semop does; operations with `undo` (SEM_UNDO) are reverted by the
 * kernel when the process exits, crashes included. `op` first tries with
 * IPC_NOWAIT on the calling thread and only if that would block waits on a
 * waiter thread (never one of libuv's pool threads), with a timeout and an
 * AbortSignal; a timed-out or aborted op has applied nothing. `tryOp` never
 * waits; `opSync` blocks the calling thread. `wait`, `post` and
 * `waitForZero` are the one-operation shorthands.
 *
 * @example
 * ```ts
 * import { sysv } from 'interprocess';
 *
 * const sems = sysv.SemaphoreSet.create({ key: sysv.ftok('semfile', 75), count: 2, value: [1, 0], mode: 0o600 });
 * await sems.wait(0, { undo: true, timeout: 1000 });   // P on semaphore 0, undone if we crash
 * sems.post(1);                                         // V on semaphore 1
 * await sems.op([{ num: 0, op: 1, undo: true }, { num: 1, op: -1 }]);   // both at once
 * console.log(sems.getAll());                           // [ 1, 0 ]
 * sems.remove();                                        // IPC_RMID
 * sems.close();
 * ```
 */
export class SemaphoreSet implements Disposable {
  /** The set id (semid), as `ipcs -s` shows it. */
  readonly id: number;
  /** The key it was created or opened with; from {@link SemaphoreSet.fromId}, the set's own key (0 for IPC_PRIVATE). */
  readonly key: number;
  /** Number of semaphores in the set. */
  readonly count: number;
  /** True if this handle created the set. */
  readonly created: boolean;
  #closed = false;
  readonly #pending = new PendingWaits();

  private constructor(id: number, key: number, count: number, created: boolean) {
    this.id = id;
    this.key = key;
    this.count = count;
    this.created = created;
  }

  /**
   * `semget(key, count, IPC_CREAT [| IPC_EXCL] | mode)`, then the initial
   * values (SETALL) if this call created the set. With `exclusive: false`,
   * opens the existing set under `key` instead (its values left as they are).
   * If setting the initial values fails, the new set is removed.
   *
   * @throws {AlreadyExistsError} EEXIST: a set has this key (and `exclusive` is not false).
   * @throws {TooLargeError} ERANGE: an initial value exceeds SEMVMX.
   * @throws {InvalidArgumentError} A bad option (`count` from 1 to SEMMSL, `value` one number or `count` of them),
   *   or EINVAL: an existing set has fewer than `count` semaphores.
   * @throws {PermissionError} EACCES: an existing set's mode forbids it.
   */
  static create(options: CreateOptions): SemaphoreSet {
    if (typeof options !== 'object' || options === null) throw invalidArgument('options with a count are required', 'ERR_INVALID_ARG_TYPE');
    const count = v.intInRange(options.count, 'count', 1, SEMMSL);
    const mode = v.mode(options.mode, 0o600);
    const exclusive = v.bool(options.exclusive, 'exclusive', true);
    const key = options.key === undefined ? IPC_PRIVATE : resolveKey(options.key);
    const initial = SemaphoreSet.#initialValues(options.value, count);
    let id = native.semget(key, count, IPC_CREAT | IPC_EXCL | mode);
    let created = id >= 0;
    if (!created) {
      if (exclusive || id !== -constants.errno.EEXIST) check(id, 'semget', { key });
      id = check(native.semget(key, count, mode), 'semget', { key });
      created = false;
    }
    const set = new SemaphoreSet(id, key, created ? count : SemaphoreSet.stat(id).nsems, created);
    if (created && initial) {
      try {
        set.setAll(initial);
      } catch (err) {
        native.semctlInt(id, 0, IPC_RMID);
        throw err;
      }
    }
    return set;
  }

  static #initialValues(value: number | number[] | undefined, count: number): number[] | undefined {
    if (value === undefined) return undefined;
    if (typeof value === 'number') return new Array<number>(count).fill(semValue(value, 'value'));
    if (!Array.isArray(value) || value.length !== count) throw invalidArgument(`value must be a number or an array of ${count} numbers`);
    return value.map((x, i) => semValue(x, `value[${i}]`));
  }

  /**
   * Opens the existing set with this key (`semget(key, 0, 0)`).
   *
   * @throws {NotFoundError} ENOENT: no set has this key.
   * @throws {PermissionError} EACCES: the set's mode forbids it.
   * @throws {InvalidArgumentError} The key is IPC_PRIVATE (use {@link SemaphoreSet.fromId}).
   */
  static open(key: Key): SemaphoreSet {
    const k = resolveKey(key);
    if (k === IPC_PRIVATE) throw invalidArgument('IPC_PRIVATE names no existing set: use SemaphoreSet.fromId(id)');
    const id = check(native.semget(k, 0, 0), 'semget', { key: k });
    return new SemaphoreSet(id, k, SemaphoreSet.stat(id).nsems, false);
  }

  /**
   * A handle on the set with this id (checked with IPC_STAT).
   *
   * @throws {InvalidArgumentError} EINVAL: no set has this id.
   * @throws {PermissionError} EACCES: the set's mode forbids reading it.
   */
  static fromId(id: number): SemaphoreSet {
    const st = SemaphoreSet.stat(id);
    return new SemaphoreSet(id, st.key, st.nsems, false);
  }

  /**
   * `semctl(id, 0, IPC_STAT)`: the set's `semid_ds`, without a handle.
   *
   * @throws {InvalidArgumentError} EINVAL: no set has this id.
   */
  static stat(id: number): SemStat {
    v.nonNegativeInt(id, 'id');
    return toStat(id, unwrap(native.semStat(id), 'semctl', {}));
  }

  /**
   * `semctl(id, 0, IPC_RMID)`: removes the set now; waiters get a RemovedError.
   *
   * @throws {InvalidArgumentError} EINVAL: no set has this id.
   * @throws {PermissionError} EPERM: only the owner, the creator or root may remove it.
   */
  static remove(id: number): void {
    v.nonNegativeInt(id, 'id');
    check(native.semctlInt(id, 0, IPC_RMID), 'semctl', {});
  }

  get #where(): { key: number } {
    return { key: this.key };
  }

  #open(): void {
    if (this.#closed) throw closedError('semaphore set handle', this.#where);
  }

  #num(num: unknown): number {
    return v.intInRange(num ?? 0, 'semaphore number', 0, this.count - 1);
  }

  #ctl(num: number, cmd: number, value?: number): number {
    this.#open();
    return check(native.semctlInt(this.id, num, cmd, value ?? 0), 'semctl', this.#where);
  }

  /**
   * GETVAL: the value of semaphore `num`.
   *
   * @throws {IpcError} EBADF: the handle is closed.
   */
  get(num = 0): number {
    return this.#ctl(this.#num(num), GETVAL);
  }

  /**
   * SETVAL (0 to SEMVMX); clears every process's undo entry for it, as in C,
   * and wakes the processes the new value lets through.
   *
   * @throws {TooLargeError} ERANGE: `value` exceeds SEMVMX.
   * @throws {IpcError} EBADF: the handle is closed.
   */
  set(num: number, value: number): void {
    const n = this.#num(num);
    this.#ctl(n, SETVAL, this.#value(value, 'value'));
  }

  #value(value: unknown, what: string): number {
    return semValue(value, what, this.#where);
  }

  /**
   * GETALL: every semaphore's value, in order.
   *
   * @throws {IpcError} EBADF: the handle is closed.
   */
  getAll(): number[] {
    this.#open();
    return unwrap(native.semGetAll(this.id), 'semctl', this.#where);
  }

  /**
   * SETALL: one value per semaphore (0 to SEMVMX), set at once; clears the undo entries, as SETVAL does.
   *
   * @throws {TooLargeError} ERANGE: a value exceeds SEMVMX.
   * @throws {InvalidArgumentError} `values` is not an array of {@link SemaphoreSet.count} numbers.
   * @throws {IpcError} EBADF: the handle is closed.
   */
  setAll(values: number[]): void {
    this.#open();
    if (!Array.isArray(values) || values.length !== this.count) throw invalidArgument(`values must be an array of ${this.count} numbers`);
    const a = Uint16Array.from(values.map((x, i) => this.#value(x, `values[${i}]`)));
    check(native.semSetAll(this.id, a), 'semctl', this.#where);
  }

  /** The number of processes waiting: for the value to grow (GETNCNT) and to reach 0 (GETZCNT). */
  waiters(num = 0): {
    /** GETNCNT: processes waiting for the value to grow (a decrement that cannot go yet). */
    forIncrease: number;
    /** GETZCNT: processes waiting for the value to be 0. */
    forZero: number;
  } {
    const n = this.#num(num);
    return { forIncrease: this.#ctl(n, GETNCNT), forZero: this.#ctl(n, GETZCNT) };
  }

  /** GETPID: the pid of the last process that operated on this semaphore. */
  lastPid(num = 0): number {
    return this.#ctl(this.#num(num), GETPID);
  }

  /**
   * The set's current `semid_ds`.
   *
   * @throws {IpcError} EBADF: the handle is closed.
   */
  stat(): SemStat {
    this.#open();
    return toStat(this.id, unwrap(native.semStat(this.id), 'semctl', this.#where));
  }

  #encode(ops: SemOp | SemOp[], forceNoWait: boolean): Int32Array {
    this.#open();
    const list = Array.isArray(ops) ? ops : [ops];
    if (list.length === 0) throw invalidArgument('at least one operation is required');
    if (list.length > SEMOPM) throw new TooLargeError('E2BIG', { errno: -constants.errno.E2BIG, message: `E2BIG: ${list.length} operations exceed SEMOPM (${SEMOPM})`, ...this.#where });
    const out = new Int32Array(list.length * 3);
    list.forEach((o, i) => {
      if (typeof o !== 'object' || o === null) throw invalidArgument(`operation ${i} must be an object { num, op, undo?, noWait? }`, 'ERR_INVALID_ARG_TYPE');
      out[3 * i] = this.#num(o.num);
      out[3 * i + 1] = v.intInRange(o.op, `operation ${i} op`, -SEMVMX, SEMVMX);
      out[3 * i + 2] = (v.bool(o.undo, 'undo', false) ? SEM_UNDO : 0) | (forceNoWait || v.bool(o.noWait, 'noWait', false) ? IPC_NOWAIT : 0);
    });
    return out;
  }

  #opResult(r: number): boolean {
    if (r === -EAGAIN) return false;
    if (r === -ERANGE) {
      throw systemError(r, 'semop', { ...this.#where, message: `ERANGE: the operation would take a semaphore past its maximum value (${SEMVMX}), semop key 0x${(this.key >>> 0).toString(16).padStart(8, '0')}` }, TooLargeError);
    }
    check(r, 'semop', this.#where);
    return true;
  }

  /**
   * `semop` with IPC_NOWAIT: true if applied, false if it would have to wait (nothing applied).
   *
   * @throws {TooLargeError} ERANGE: an operation would take a semaphore past SEMVMX; E2BIG: more than SEMOPM operations.
   * @throws {InvalidArgumentError} A bad operation (`num` outside the set, `op` past ±SEMVMX, none at all).
   * @throws {IpcError} EBADF: the handle is closed.
   */
  tryOp(ops: SemOp | SemOp[]): boolean {
    return this.#opResult(native.semop(this.id, this.#encode(ops, true), -1));
  }

  /**
   * `semop`: applies all operations atomically, waiting on a waiter thread
   * (not the event loop, not libuv's pool) until they can all go. An already
   * aborted signal rejects without applying anything, even if the operations
   * could complete at once.
   *
   * @throws {WouldBlockError} EAGAIN: an operation marked `noWait` would have to wait (nothing applied).
   * @throws {TimeoutError} ETIMEDOUT: they could not go within `timeout` ms (nothing applied).
   * @throws {AbortError} `signal` aborted (nothing applied).
   * @throws {TooLargeError} ERANGE: an operation would take a semaphore past SEMVMX; E2BIG: more than SEMOPM operations.
   * @throws {RemovedError} EIDRM: the set was removed while this call waited.
   * @throws {IpcError} EBADF: the handle is closed (also when closed while waiting).
   */
  async op(ops: SemOp | SemOp[], options?: WaitOptions): Promise<void> {
    timeoutOf(options);
    const signal = signalOf(options);
    const now = this.#encode(ops, true);
    if (signal?.aborted) throw abortError(signal);
    if (this.#opResult(native.semop(this.id, now, -1))) return;
    // The waiting call keeps the caller's own noWait flags: if one of those
    // operations is what blocks, the kernel answers EAGAIN at once.
    const later = this.#encode(ops, false);
    const r = await waitOnThread<number>((done) => native.semopWait(this.id, later, done), options, 'semop', this.#where, this.#pending).catch(
      (err: { errno?: number }) => {
        if (err.errno === -EAGAIN || err.errno === -ERANGE) return err.errno;
        throw err;
      },
    );
    if (!this.#opResult(r)) throw systemError(-EAGAIN, 'semop', this.#where);
  }

  /**
   * `semop` (`semtimedop` with a timeout), blocking this thread until all the operations can go.
   *
   * @throws {WouldBlockError} EAGAIN: an operation marked `noWait` would have to wait (nothing applied).
   * @throws {TimeoutError} ETIMEDOUT: they could not go within `timeout` ms (nothing applied).
   * @throws {TooLargeError} ERANGE: an operation would take a semaphore past SEMVMX; E2BIG: more than SEMOPM operations.
   * @throws {RemovedError} EIDRM: the set was removed while this call waited.
   * @throws {IpcError} EBADF: the handle is closed.
   */
  opSync(ops: SemOp | SemOp[], options?: { timeout?: number }): void {
    const encoded = this.#encode(ops, false);
    const timeout = timeoutOf(options);
    const r = native.semop(this.id, encoded, timeout === Infinity ? -1 : Math.ceil(timeout));
    if (this.#opResult(r)) return;
    // EAGAIN: a noWait operation would block, or semtimedop's time ran out.
    const noWait = (Array.isArray(ops) ? ops : [ops]).some((o) => o.noWait);
    throw noWait || timeout === Infinity
      ? systemError(-EAGAIN, 'semop', this.#where)
      : timeoutError('semtimedop', this.#where);
  }

  /**
   * Waits until semaphore `num` can be decremented by one (P), then does it:
   * {@link SemaphoreSet.op} with `{ num, op: -1, undo }`, same errors.
   */
  wait(num = 0, options?: WaitOptions & { undo?: boolean }): Promise<void> {
    return this.op({ num, op: -1, undo: options?.undo ?? false }, options);
  }

  /**
   * Increments semaphore `num` by one (V); never waits.
   *
   * @throws {TooLargeError} ERANGE: the value is at SEMVMX.
   * @throws {IpcError} EBADF: the handle is closed.
   */
  post(num = 0, options?: { undo?: boolean }): void {
    this.tryOp({ num, op: 1, undo: options?.undo ?? false });
  }

  /** Waits until semaphore `num` is zero: {@link SemaphoreSet.op} with `{ num, op: 0 }`, same errors. */
  waitForZero(num = 0, options?: WaitOptions): Promise<void> {
    return this.op({ num, op: 0 }, options);
  }

  /**
   * Removes the set now (IPC_RMID): every process's waits on it end with a RemovedError.
   *
   * @throws {PermissionError} EPERM: only the owner, the creator or root may remove it.
   * @throws {IpcError} EBADF: the handle is closed.
   */
  remove(): void {
    this.#ctl(0, IPC_RMID);
  }

  /** Whether {@link SemaphoreSet.close} has been called. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Ends this handle: pending waits reject (EBADF) having applied nothing. The set itself stays. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#pending.cancelAll(closedError('semaphore set handle', this.#where));
  }

  /** Calls {@link SemaphoreSet.close}, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }
}
