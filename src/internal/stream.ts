/**
 * Node streams over descriptors this package opened or inherited.
 *
 * A `net.Socket` over a pipe or FIFO descriptor is what Node itself uses for
 * piped stdio: libuv polls the descriptor, so reading or writing never parks
 * a thread, and the handle keeps the process alive only while a read or
 * write is actually pending. Closing the stream closes the descriptor.
 */
import net from 'node:net';
import { fstatSync } from 'node:fs';
import { invalidArgument, fromNodeError, InvalidArgumentError } from '../errors.js';
import { native } from '../native.js';
import { check } from '../errors.js';
import { constants as fsc } from 'node:fs';

export type Direction = 'read' | 'write';

/** Wraps `fd` as a one-way stream; the stream owns the descriptor from now on. */
export function streamFromFd(fd: number, direction: Direction): net.Socket {
  return new net.Socket({
    fd,
    readable: direction === 'read',
    writable: direction === 'write',
  });
}

/** Throws unless `fd` is a pipe/FIFO (or socket) open for `direction`. */
export function checkStreamFd(fd: number, direction: Direction, where: { path?: string } = {}): void {
  let st;
  try {
    st = fstatSync(fd);
  } catch (err) {
    throw fromNodeError(err, where);
  }
  if (!st.isFIFO() && !st.isSocket()) {
    throw new InvalidArgumentError('EINVAL', {
      errno: -22,
      syscall: 'fstat',
      ...where,
      message: `EINVAL: descriptor ${fd} is not a pipe or FIFO (it is ${fileKind(st.mode)})${where.path ? `, '${where.path}'` : ''}`,
    });
  }
  const acc = check(native.getFlags(fd), 'fcntl', where) & (fsc.O_WRONLY | fsc.O_RDWR); // O_ACCMODE
  const ok = direction === 'read' ? acc !== fsc.O_WRONLY : acc !== fsc.O_RDONLY;
  if (!ok) throw invalidArgument(`descriptor ${fd} is not open for ${direction === 'read' ? 'reading' : 'writing'}`);
}

export function fileKind(mode: number): string {
  switch (mode & fsc.S_IFMT) {
    case fsc.S_IFREG: return 'a regular file';
    case fsc.S_IFDIR: return 'a directory';
    case fsc.S_IFCHR: return 'a character device';
    case fsc.S_IFBLK: return 'a block device';
    case fsc.S_IFLNK: return 'a symbolic link';
    case fsc.S_IFSOCK: return 'a socket';
    case fsc.S_IFIFO: return 'a FIFO';
    default: return 'an unknown file type';
  }
}

/**
 * Closes a descriptor this package opened (not through fs: worker threads
 * warn when fs.closeSync closes a descriptor fs did not open). Errors mean
 * it is closed already: nothing to release.
 */
export function closeQuietly(fd: number): void {
  native.closeFd(fd);
}
