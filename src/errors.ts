/**
 * Errors, shaped like Node's own system errors: `code`, `errno` (negative, as
 * in Node), `syscall`, and `path` (named objects, FIFOs) or `key` (System V).
 *
 * Every failure of a system call becomes an {@link IpcError} here and nowhere
 * else; the subclass tells the family, so users can catch by meaning:
 *
 * ```ts
 * try { SharedMemory.create('/x', { size: 4096 }) }
 * catch (e) { if (e instanceof AlreadyExistsError) ... }
 * ```
 */
import { getSystemErrorMap } from 'node:util';
import { constants } from 'node:os';

/** What an {@link IpcError} is built from (the constructor's second argument). */
export interface IpcErrorOptions {
  /** errno as Node reports it: negative (e.g. -2 for ENOENT). */
  errno?: number;
  /** The system call that failed, e.g. 'shm_open'. */
  syscall?: string;
  /** The object's name or path (POSIX objects, FIFOs, sockets). */
  path?: string;
  /** The System V key (numeric key_t). */
  key?: number;
  /** Overrides the message derived from the errno description. */
  message?: string;
  /** The underlying error, set as the standard `cause`. */
  cause?: unknown;
}

/**
 * Base class of every error this package raises for a failed operation.
 *
 * Shaped like Node's own system errors: `code` (the errno name, e.g.
 * 'ENOENT', or a Node-style 'ERR_...' code for an argument rejected before
 * any system call), `errno` (negative, as in Node), `syscall`, and `path`
 * (named objects, FIFOs) or `key` (System V). Fields that do not apply are
 * absent, not undefined. The subclass tells the family, so callers can catch
 * by meaning rather than by code; an errno with no family (EBADF after
 * `close()`, for instance) is a plain IpcError.
 *
 * @example
 * ```ts
 * import { posix, AlreadyExistsError } from 'interprocess';
 *
 * try {
 *   posix.SharedMemory.create('/my-shm', { size: 4096 });
 * } catch (err) {
 *   if (!(err instanceof AlreadyExistsError)) throw err;
 *   console.log(err.code, err.syscall, err.path);   // EEXIST shm_open /my-shm
 * }
 * ```
 */
export class IpcError extends Error {
  /** The errno name ('ENOENT', 'EAGAIN'...) or, for a check made before any system call, a Node-style code ('ERR_OUT_OF_RANGE'...). */
  readonly code: string;
  // `declare`: absent fields stay absent (no own property set to undefined), as in Node's errors.
  /** The errno, negative as Node reports it (-2 for ENOENT); absent when no system call gave one. */
  declare readonly errno?: number;
  /** The system call that failed, e.g. 'shm_open' or 'msgrcv'. */
  declare readonly syscall?: string;
  /** The object's name or path: a POSIX object ('/my-shm'), a FIFO, a socket. */
  declare readonly path?: string;
  /** The System V key involved (print it with {@link formatKey}). */
  declare readonly key?: number;

  constructor(code: string, options: IpcErrorOptions = {}) {
    super(options.message ?? describe(code, options), options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    if (options.errno !== undefined) this.errno = options.errno;
    if (options.syscall !== undefined) this.syscall = options.syscall;
    if (options.path !== undefined) this.path = options.path;
    if (options.key !== undefined) this.key = options.key;
  }

  /** The class name, e.g. 'NotFoundError' (so `String(err)` and stack traces name the family). */
  override get name(): string {
    return this.constructor.name;
  }
}

/** EEXIST: an exclusive create found the object already there. */
export class AlreadyExistsError extends IpcError {}
/** ENOENT: no object by that name, key or path. */
export class NotFoundError extends IpcError {}
/** EACCES, EPERM: the mode or ownership forbids it. */
export class PermissionError extends IpcError {}
/** EAGAIN and friends: a non-blocking attempt would have had to wait. */
export class WouldBlockError extends IpcError {}
/** ETIMEDOUT: a wait ran out of time. */
export class TimeoutError extends IpcError {}
/** E2BIG, EMSGSIZE, EFBIG, or a size past a limit: a message or size too large. */
export class TooLargeError extends IpcError {}
/** EINVAL, ENAMETOOLONG, or an argument rejected before any system call. */
export class InvalidArgumentError extends IpcError {}
/** EIDRM: the object was removed while in use. */
export class RemovedError extends IpcError {}
/** The peer went away (EPIPE, or a framed stream ending mid-frame). */
export class PeerGoneError extends IpcError {}
/** EDEADLK: the calling thread already holds the lock it asked for. */
export class DeadlockError extends IpcError {}
/** ENOTRECOVERABLE: a lock whose owner died was released without being marked consistent. */
export class NotRecoverableError extends IpcError {}

type IpcErrorClass = new (code: string, options?: IpcErrorOptions) => IpcError;

const families: Record<string, IpcErrorClass> = {
  EEXIST: AlreadyExistsError,
  ENOENT: NotFoundError,
  EACCES: PermissionError,
  EPERM: PermissionError,
  EAGAIN: WouldBlockError,
  ENOMSG: WouldBlockError,
  ETIMEDOUT: TimeoutError,
  E2BIG: TooLargeError,
  EMSGSIZE: TooLargeError,
  EFBIG: TooLargeError,
  EINVAL: InvalidArgumentError,
  ENAMETOOLONG: InvalidArgumentError,
  EIDRM: RemovedError,
  EPIPE: PeerGoneError,
  EDEADLK: DeadlockError,
  ENOTRECOVERABLE: NotRecoverableError,
};

const systemErrors = getSystemErrorMap(); // a fresh Map on every call: ours to extend

// libuv's table (what Node's getSystemErrorMap returns) only knows the errnos
// of files and sockets: EIDRM, ENOMSG, EDEADLK, EOWNERDEAD... from System V
// and mutex calls are missing, and would otherwise come out as 'E43' and never
// reach their family. These fill the gap with glibc's strerror texts (in
// libuv's lower case); 130 and 131 are Linux's numbers, which
// os.constants.errno leaves out.
const otherErrnos: Record<string, [number | undefined, string]> = {
  EIDRM: [constants.errno.EIDRM, 'identifier removed'],
  ENOMSG: [constants.errno.ENOMSG, 'no message of desired type'],
  EDEADLK: [constants.errno.EDEADLK, 'resource deadlock avoided'],
  EOWNERDEAD: [130, 'owner died'],
  ENOTRECOVERABLE: [131, 'state not recoverable'],
  ENOLCK: [constants.errno.ENOLCK, 'no locks available'],
  ETIME: [constants.errno.ETIME, 'timer expired'],
};
for (const [name, [n, text]] of Object.entries(otherErrnos)) {
  if (n !== undefined && !systemErrors.has(-n)) systemErrors.set(-n, [name, text]);
}
// Any other errno this platform names still gets its name (its text stays generic).
for (const [name, n] of Object.entries(constants.errno)) {
  if (!systemErrors.has(-n)) systemErrors.set(-n, [name, 'system error']);
}

function describe(code: string, o: IpcErrorOptions): string {
  const text = o.errno !== undefined ? systemErrors.get(o.errno)?.[1] ?? 'unknown error' : 'error';
  let where = o.syscall ?? '';
  if (o.path !== undefined) where += ` '${o.path}'`;
  else if (o.key !== undefined) where += ` key ${formatKey(o.key)}`;
  return where ? `${code}: ${text}, ${where}` : `${code}: ${text}`;
}

/** A System V key as `ipcs` prints it: 0x followed by 8 hex digits. */
export function formatKey(key: number): string {
  return '0x' + (key >>> 0).toString(16).padStart(8, '0');
}

/** The errno name for a (positive or negative) errno number, e.g. 'ENOENT'. */
export function errnoName(errno: number): string {
  return systemErrors.get(-Math.abs(errno))?.[0] ?? `E${Math.abs(errno)}`;
}

/**
 * Builds the error for a failed system call. `errno` may be given positive or
 * negative; it is stored negative, as Node does. `family` forces a subclass
 * where the call gives the errno a specific meaning (ENOSPC from
 * posix_fallocate means "too large").
 */
export function systemError(
  errno: number,
  syscall: string,
  where: { path?: string; key?: number; message?: string } = {},
  family?: IpcErrorClass,
): IpcError {
  const n = -Math.abs(errno);
  const code = errnoName(n);
  const Cls = family ?? families[code] ?? IpcError;
  return new Cls(code, { errno: n, syscall, ...where });
}

/**
 * Native calls return a negative errno on failure (libuv's convention). These
 * two are the one place such a result becomes an exception.
 */
export function check(result: number, syscall: string, where?: { path?: string; key?: number }): number {
  if (result < 0) throw systemError(result, syscall, where);
  return result;
}

/** As {@link check}, for calls that return a value (an object) on success. */
export function unwrap<T>(result: T | number, syscall: string, where?: { path?: string; key?: number }): T {
  if (typeof result === 'number') {
    if (result < 0) throw systemError(result, syscall, where);
    throw new TypeError(`${syscall}: unexpected native result ${result}`);
  }
  return result;
}

/** Converts an error thrown by Node's fs (or net) into this package's family. */
export function fromNodeError(err: unknown, where?: { path?: string; key?: number }): unknown {
  if (!(err instanceof Error)) return err;
  const e = err as NodeJS.ErrnoException;
  if (typeof e.errno !== 'number' || typeof e.code !== 'string') return err;
  return systemError(e.errno, e.syscall ?? 'unknown', { path: where?.path ?? e.path, ...(where?.key !== undefined ? { key: where.key } : {}) });
}

/** An argument rejected before any system call. */
export function invalidArgument(message: string, code = 'ERR_INVALID_ARG_VALUE'): InvalidArgumentError {
  return new InvalidArgumentError(code, { message, errno: code === 'EINVAL' ? -constants.errno.EINVAL : undefined });
}

/**
 * Node's AbortError, as `fs/promises` and `timers/promises` reject with:
 * name 'AbortError', code 'ABORT_ERR', the signal's reason as `cause`.
 */
export class AbortError extends Error {
  /** Always 'ABORT_ERR', as Node's own AbortError. */
  readonly code = 'ABORT_ERR';
  constructor(message = 'The operation was aborted', options?: { cause?: unknown }) {
    super(message, options);
  }
  /** Always 'AbortError'. */
  override get name(): string {
    return 'AbortError';
  }
}
