import { IpcError } from '../errors.js';

/** The error for a method called on a handle after close(), as Node's FileHandle does. */
export function closedError(what: string, where: { path?: string; key?: number } = {}): IpcError {
  return new IpcError('EBADF', { errno: -9, message: `EBADF: ${what} is closed`, ...where });
}
