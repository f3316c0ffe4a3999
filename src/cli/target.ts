/**
 * How the command names a kernel object, and the exit codes a shell tests.
 *
 * A target is written as `ipcs`/`ipcrm` users expect:
 *   /name             a POSIX object (shared memory, queue, semaphore, channel, mutex)
 *   0x1234abcd        a System V key, in hex as `ipcs` prints it (or key:N in any base)
 *   123  or  id:123   a System V id, as `ipcs` prints it
 *   ftok:PATH:PROJ    the key ftok(3) gives for PATH and project id PROJ
 */
import { InvalidArgumentError } from 'commander';
import { ftok } from '../sysv.js';

/** Exit codes of the `interprocess` command (documented in its --help). */
export const Exit = {
  ok: 0,
  /** An operation failed (permission, busy, system error). */
  error: 1,
  /** Bad command line: unknown option, malformed argument. */
  usage: 2,
  /** Nothing happened in time: a wait timed out, or a non-waiting call (--timeout 0) would have waited. */
  timeout: 3,
  /** The named object does not exist. */
  notFound: 4,
} as const;

export const exitCodesHelp = `
Exit codes: 0 success, 1 the operation failed, 2 bad command line,
            3 timed out or would wait (--timeout 0), 4 no such object.`;

export type Target =
  | { kind: 'posix'; name: string }
  | { kind: 'key'; key: number; text: string }
  | { kind: 'id'; id: number; text: string };

/** Parses a target argument (for commander's argParser: throws InvalidArgumentError on bad input). */
export function parseTarget(text: string): Target {
  if (text.startsWith('/')) {
    if (text.length < 2 || text.includes('/', 1)) throw new InvalidArgumentError(`a POSIX name is '/' and then a name without '/' (got '${text}')`);
    if (text.length > 255) throw new InvalidArgumentError(`a POSIX name is at most 255 characters (got ${text.length})`);
    return { kind: 'posix', name: text };
  }
  if (text.startsWith('ftok:')) {
    const m = /^ftok:(.+):(-?\d+|0x[\da-f]+)$/i.exec(text);
    if (!m) throw new InvalidArgumentError(`ftok targets are ftok:PATH:PROJ_ID (got '${text}')`);
    let key: number;
    try {
      key = ftok(m[1]!, Number(m[2]));
    } catch (err) {
      throw new InvalidArgumentError(`ftok('${m[1]}', ${m[2]}): ${(err as Error).message}`);
    }
    return { kind: 'key', key, text };
  }
  const keyText = /^key:(.+)$/i.exec(text)?.[1] ?? (/^-?0x[\da-f]+$/i.test(text) ? text : undefined);
  if (keyText !== undefined) {
    const key = parseInteger(keyText);
    // ipcs prints keys as unsigned hex; key_t is signed 32-bit: accept both.
    if (key === undefined || key < -0x80000000 || key > 0xffffffff) throw new InvalidArgumentError(`'${text}' is not a 32-bit System V key`);
    return { kind: 'key', key: key | 0, text };
  }
  const idText = /^id:(.+)$/i.exec(text)?.[1] ?? text;
  if (/^\d+$/.test(idText)) {
    const id = Number(idText);
    if (id > 0x7fffffff) throw new InvalidArgumentError(`'${text}' is too large for a System V id`);
    return { kind: 'id', id, text };
  }
  throw new InvalidArgumentError(`'${text}' is not a target: use /name (POSIX), 0xKEY or key:N (System V key), ID or id:N (System V id), or ftok:PATH:PROJ`);
}

function parseInteger(text: string): number | undefined {
  const neg = text.startsWith('-');
  const body = neg ? text.slice(1) : text;
  const n = /^0x[\da-f]+$/i.test(body) ? parseInt(body.slice(2), 16) : /^\d+$/.test(body) ? Number(body) : NaN;
  if (!Number.isSafeInteger(n)) return undefined;
  return neg ? -n : n;
}

export { formatKey } from '../errors.js';

/** Parses a timeout in milliseconds (commander argParser): a non-negative integer, or "inf"/"none". */
export function parseTimeout(text: string): number {
  if (/^(inf|infinity|none)$/i.test(text)) return Infinity;
  if (!/^\d+(\.\d+)?$/.test(text)) throw new InvalidArgumentError(`a timeout is a number of milliseconds or 'inf' (got '${text}')`);
  return Number(text);
}

/** Permission bits in octal, as chmod takes them: 600, 0644, 0o660 (commander argParser). */
export function parseMode(text: string): number {
  const m = /^(?:0o?)?([0-7]{1,3})$/i.exec(text);
  if (!m) throw new InvalidArgumentError(`a mode is octal permission bits such as 600 or 0644 (got '${text}')`);
  return parseInt(m[1]!, 8);
}

/** The `code` of whatever was thrown (a system error's 'ENOENT', Node's 'ABORT_ERR'), if it has one. */
export const codeOf = (err: unknown): unknown => (err as { code?: unknown } | null)?.code;

/** Parses a non-negative integer option (commander argParser). */
export function parseCount(text: string): number {
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(Number(text))) throw new InvalidArgumentError(`expected a non-negative integer (got '${text}')`);
  return Number(text);
}

/**
 * The exit code for an error thrown by the library: timeouts and would-wait
 * (EAGAIN, ETIMEDOUT) are 3, missing objects (ENOENT, EIDRM) are 4, anything
 * else 1. The kernel says EINVAL for a System V id that does not exist, and
 * for other bad arguments too: a verb that knows it looked up an id maps that
 * itself.
 */
export function exitCodeOf(err: unknown): number {
  const code = codeOf(err);
  if (code === 'ETIMEDOUT' || code === 'EAGAIN' || code === 'ABORT_ERR') return Exit.timeout;
  if (code === 'ENOENT' || code === 'EIDRM') return Exit.notFound;
  return Exit.error;
}

/**
 * Ends the command with a clear one-line message on stderr (no stack trace)
 * and the given exit code. Returns never so callers can `return fail(...)`.
 */
export function fail(message: string, code: number = Exit.error): never {
  throw new CliError(message, code);
}

/** An error the command reports as it is: its message on stderr and its exit code. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
    this.name = 'CliError';
  }
}
