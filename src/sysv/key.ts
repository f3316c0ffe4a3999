/** System V IPC keys: numbers, or a path + project id through ftok(3). */
import { native } from '../native.js';
import { systemError } from '../errors.js';
import * as v from '../internal/validate.js';

/**
 * A key as C passes it to shmget/msgget/semget (a 32-bit integer), or the
 * `{ path, projId }` pair given to {@link ftok} to compute one.
 */
export type Key =
  | number
  | {
      /** An existing file, as for ftok(3). */
      path: string;
      /** The project id; only its low 8 bits are used, as in C. */
      projId: number;
    };

/** IPC_PRIVATE: a key that always creates a new object, reachable only by its id. */
export const IPC_PRIVATE: number = native.sysvConstants.IPC_PRIVATE;

/**
 * `ftok(path, projId)`: the C library's own ftok, so the key is exactly what a
 * C program computes for the same file and id (a signed 32-bit key_t). Only
 * the low 8 bits of projId are used, as in C; the file must exist.
 *
 * @example
 * ```ts
 * import { sysv } from 'interprocess';
 *
 * const key = sysv.ftok('shmfile', 65);   // C: ftok("shmfile", 65)
 * const seg = sysv.SharedMemory.create({ key, size: 1024, mode: 0o600 });
 * ```
 *
 * @throws {NotFoundError} ENOENT: the file does not exist.
 * @throws {InvalidArgumentError} A bad path or projId.
 */
export function ftok(path: string, projId: number): number {
  const p = v.path(path, 'path');
  const id = v.intInRange(projId, 'projId', -0x80000000, 0x7fffffff);
  const r = native.ftok(p, id);
  if (typeof r === 'number') return r;
  throw systemError(r.errno, 'ftok', { path: p });
}

/** Resolves a {@link Key} to a key_t. */
export function resolveKey(key: Key): number {
  if (typeof key === 'object' && key !== null) return ftok(key.path, key.projId);
  return v.sysvKey(key);
}

/** The `ipc_perm` part every System V `*_ds` structure starts with (C names, no prefix). */
export interface IpcPerm {
  /** The key the object was created with (0 for IPC_PRIVATE, or once removed). */
  key: number;
  /** Owner's user id. */
  uid: number;
  /** Owner's group id. */
  gid: number;
  /** Creator's user id. */
  cuid: number;
  /** Creator's group id. */
  cgid: number;
  /** Permission bits (and the kernel's flag bits above 0o777, as `ipcs` shows). */
  mode: number;
}

/** A System V timestamp (seconds; 0 = never) as a Date, or null for never. */
export function ipcTime(seconds: number): Date | null {
  return seconds === 0 ? null : new Date(seconds * 1000);
}
