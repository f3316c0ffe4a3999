/** Argument checks that run before any system call. */
import { fileURLToPath } from 'node:url';
import { invalidArgument, TooLargeError } from '../errors.js';

function show(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? v.slice(0, 40) + '…' : v);
  if (typeof v === 'bigint') return `${v}n`;
  return typeof v === 'object' && v !== null ? Object.prototype.toString.call(v) : String(v);
}

/**
 * A POSIX IPC object name: '/' then 1..maxBytes bytes, no other '/', no NUL.
 * (shm_open and mq_open take 255 bytes (NAME_MAX), sem_open 251 (glibc adds "sem.").)
 */
export function posixName(name: unknown, what: string, maxBytes: number): string {
  if (typeof name !== 'string') throw invalidArgument(`${what} name must be a string, got ${show(name)}`, 'ERR_INVALID_ARG_TYPE');
  if (!name.startsWith('/')) throw invalidArgument(`${what} name must start with '/', got ${show(name)}`);
  const rest = name.slice(1);
  if (rest.length === 0) throw invalidArgument(`${what} name must have at least one character after '/'`);
  if (rest.includes('/')) throw invalidArgument(`${what} name must not contain '/' after the first character, got ${show(name)}`);
  if (rest.includes('\0')) throw invalidArgument(`${what} name must not contain NUL characters`);
  if (rest === '.' || rest === '..') throw invalidArgument(`${what} name must not be '/.' or '/..'`);
  const bytes = Buffer.byteLength(rest);
  if (bytes > maxBytes) {
    throw invalidArgument(`${what} name is too long: ${bytes} bytes after '/', at most ${maxBytes}`, 'ENAMETOOLONG');
  }
  return name;
}

/** A filesystem path (a FIFO, an ftok path). */
export function path(p: unknown, what: string): string {
  if (typeof p !== 'string' && !(p instanceof URL) && !Buffer.isBuffer(p)) {
    throw invalidArgument(`${what} must be a string, got ${show(p)}`, 'ERR_INVALID_ARG_TYPE');
  }
  if (p instanceof URL && p.protocol !== 'file:') throw invalidArgument(`${what} URL must use the file: protocol, got ${p.protocol}`);
  let s: string;
  try {
    s = p instanceof URL ? fileURLToPath(p) : p.toString();
  } catch (err) {
    throw invalidArgument(`${what}: ${(err as Error).message}`);
  }
  if (s.length === 0) throw invalidArgument(`${what} must not be empty`);
  if (s.includes('\0')) throw invalidArgument(`${what} must not contain NUL characters`);
  return s;
}

/** A size in bytes: a positive safe integer no larger than `max`. */
export function size(n: unknown, what: string, max: number): number {
  if (typeof n !== 'number') throw invalidArgument(`${what} must be a number, got ${show(n)}`, 'ERR_INVALID_ARG_TYPE');
  if (!Number.isInteger(n)) throw invalidArgument(`${what} must be an integer, got ${show(n)}`, 'ERR_OUT_OF_RANGE');
  if (n <= 0) throw invalidArgument(`${what} must be greater than 0, got ${n}`, 'ERR_OUT_OF_RANGE');
  if (!Number.isSafeInteger(n) || n > max) {
    throw new TooLargeError('ERR_OUT_OF_RANGE', { message: `${what} ${n} is too large (at most ${max})` });
  }
  return n;
}

/** Permission bits, 0 to 0o777. */
export function mode(m: unknown, fallback: number): number {
  if (m === undefined) return fallback;
  if (typeof m !== 'number' || !Number.isInteger(m) || m < 0 || m > 0o777) {
    throw invalidArgument(`mode must be an integer from 0 to 0o777, got ${show(m)}`, 'ERR_OUT_OF_RANGE');
  }
  return m;
}

/** A non-negative integer (descriptor, id). */
export function nonNegativeInt(n: unknown, what: string, max = 0x7fffffff): number {
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > max) {
    throw invalidArgument(`${what} must be an integer from 0 to ${max}, got ${show(n)}`, 'ERR_OUT_OF_RANGE');
  }
  return n;
}

/** An integer in a closed range. */
export function intInRange(n: unknown, what: string, min: number, max: number): number {
  if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max) {
    throw invalidArgument(`${what} must be an integer from ${min} to ${max}, got ${show(n)}`, 'ERR_OUT_OF_RANGE');
  }
  return n;
}

/** A System V key_t: an integer that fits 32 bits, returned as C's signed int. */
export function sysvKey(k: unknown): number {
  if (typeof k !== 'number' || !Number.isInteger(k) || k < -0x80000000 || k > 0xffffffff) {
    throw invalidArgument(`key must be a 32-bit integer, got ${show(k)}`, 'ERR_OUT_OF_RANGE');
  }
  return k | 0;
}

/** A boolean option (undefined means the fallback). */
export function bool(b: unknown, what: string, fallback: boolean): boolean {
  if (b === undefined) return fallback;
  if (typeof b !== 'boolean') throw invalidArgument(`${what} must be a boolean, got ${show(b)}`, 'ERR_INVALID_ARG_TYPE');
  return b;
}

/** A message's bytes: a string (UTF-8), or a view on the bytes of any TypedArray or DataView (no copy). */
export function messageBytes(data: unknown): Uint8Array {
  if (typeof data === 'string') return Buffer.from(data);
  if (data instanceof Uint8Array) return data;
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  throw invalidArgument('message data must be a Buffer, TypedArray, DataView or string', 'ERR_INVALID_ARG_TYPE');
}
