/**
 * Named pipes (FIFOs) between unrelated processes.
 *
 * C's `open(path, O_WRONLY)` on a FIFO blocks until a reader opens it, and
 * `open(path, O_RDONLY)` until a writer does. Here no thread ever waits in
 * open(): a reader opens with O_NONBLOCK and returns at once (its stream
 * simply has no data until a writer comes); a writer retries a non-blocking
 * open — which fails with ENXIO while there is no reader — with a short
 * backoff (1 ms doubling to 16 ms), since the kernel offers no event for "a
 * reader arrived" that works for readers blocked in open(). A C reader parked
 * in a blocking open() counts as a reader, so the tutorial's C programs
 * interoperate in both roles.
 */
import { closeSync, openSync, statSync, fstatSync, constants as fsc } from 'node:fs';
import { native } from './native.js';
import { check, fromNodeError, InvalidArgumentError } from './errors.js';
import { fileKind, streamFromFd } from './internal/stream.js';
import * as v from './internal/validate.js';
import { abortError, pollUntil, pollUntilSync, signalOf, timeoutError, timeoutOf, type WaitOptions } from './internal/wait.js';
import type { PipeReader, PipeWriter } from './pipe.js';

/** A FIFO's path: a string, a `file:` URL or a Buffer, as Node's fs takes. */
export type FifoPath = string | URL | Buffer;

/**
 * Creates a FIFO (`mkfifo(3)`), mode 0o600 unless given (the umask applies, as in C).
 *
 * @throws {AlreadyExistsError} EEXIST: something exists at `path`.
 * @throws {NotFoundError} ENOENT: the directory does not exist.
 * @throws {PermissionError} EACCES: the directory is not writable.
 */
export async function mkfifo(path: FifoPath, mode?: number): Promise<void> {
  const p = v.path(path, 'path');
  check(await native.mkfifoAsync(p, v.mode(mode, 0o600)), 'mkfifo', { path: p });
}

/** Synchronous {@link mkfifo}, with the same errors. */
export function mkfifoSync(path: FifoPath, mode?: number): void {
  const p = v.path(path, 'path');
  check(native.mkfifo(p, v.mode(mode, 0o600)), 'mkfifo', { path: p });
}

function notFifo(path: string, mode: number): InvalidArgumentError {
  return new InvalidArgumentError('EINVAL', {
    errno: -22,
    syscall: 'open',
    path,
    message: `EINVAL: not a FIFO (it is ${fileKind(mode)}), open '${path}'`,
  });
}

/** Rejects a path that exists but is not a FIFO, before opening it (opening a device can have effects). */
function requireFifo(path: string): void {
  let st;
  try {
    st = statSync(path);
  } catch (err) {
    throw fromNodeError(err, { path });
  }
  if (!st.isFIFO()) throw notFifo(path, st.mode);
}

/**
 * open(O_NONBLOCK), then fstat to be sure the path was not swapped meanwhile;
 * undefined when opening for writing finds no reader (ENXIO).
 */
export function openFifoFd(path: string, flags: number): number | undefined {
  let fd: number;
  try {
    fd = openSync(path, flags | fsc.O_NONBLOCK);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENXIO') return undefined; // a writer, and no reader yet
    throw fromNodeError(err, { path });
  }
  const st = fstatSync(fd);
  if (!st.isFIFO()) {
    closeSync(fd); // opened by fs: closed by fs (worker threads track those)
    throw notFifo(path, st.mode);
  }
  return fd;
}

/**
 * Opens a FIFO for reading; returns at once, whether or not a writer exists.
 * The stream ends (EOF) when the last writer closes, as read() returns 0 in C.
 *
 * @throws {NotFoundError} ENOENT: nothing at `path`.
 * @throws {InvalidArgumentError} EINVAL: `path` is not a FIFO (checked before opening it).
 * @throws {PermissionError} EACCES: the FIFO's mode forbids reading.
 */
export function openFifoReader(path: FifoPath): PipeReader {
  const p = v.path(path, 'path');
  requireFifo(p);
  return streamFromFd(openFifoFd(p, fsc.O_RDONLY)!, 'read');
}

/**
 * Opens a FIFO for writing if a reader has it open now; otherwise returns
 * undefined (C: `open(O_WRONLY | O_NONBLOCK)` failing with ENXIO).
 *
 * @throws {NotFoundError} ENOENT: nothing at `path`.
 * @throws {InvalidArgumentError} EINVAL: `path` is not a FIFO (checked before opening it).
 * @throws {PermissionError} EACCES: the FIFO's mode forbids writing.
 */
export function tryOpenFifoWriter(path: FifoPath): PipeWriter | undefined {
  const p = v.path(path, 'path');
  requireFifo(p);
  const fd = openFifoFd(p, fsc.O_WRONLY);
  return fd === undefined ? undefined : streamFromFd(fd, 'write');
}

/**
 * Opens a FIFO for writing, waiting until a reader opens it (as C's blocking
 * open does), without blocking the event loop or any thread. Rejects with a
 * TimeoutError after `timeout` ms, or an AbortError when `signal` aborts.
 * It retries a non-blocking open with a backoff from 1 to 16 ms, since the
 * kernel offers no event for "a reader arrived"; a C reader blocked in
 * `open()` counts as a reader.
 *
 * @throws {TimeoutError} ETIMEDOUT: no reader within `timeout` ms.
 * @throws {AbortError} `signal` aborted (an already aborted one before any system call).
 * @throws {NotFoundError} ENOENT: nothing at `path`.
 * @throws {InvalidArgumentError} EINVAL: `path` is not a FIFO (checked before opening it).
 * @throws {PermissionError} EACCES: the FIFO's mode forbids writing.
 */
export async function openFifoWriter(path: FifoPath, options?: WaitOptions): Promise<PipeWriter> {
  const p = v.path(path, 'path');
  // Options are checked, and an already-aborted signal honoured, before any
  // system call: as in fs/promises, an aborted call touches nothing.
  timeoutOf(options);
  const signal = signalOf(options);
  if (signal?.aborted) throw abortError(signal);
  requireFifo(p);
  const fd = await pollUntil(() => openFifoFd(p, fsc.O_WRONLY), options, () => timeoutError('open', { path: p }));
  return streamFromFd(fd, 'write');
}

/**
 * {@link openFifoWriter} that blocks the calling thread while it waits
 * (timeout only; without one it waits for a reader forever).
 *
 * @throws {TimeoutError} ETIMEDOUT: no reader within `timeout` ms.
 * @throws {NotFoundError} ENOENT: nothing at `path`.
 * @throws {InvalidArgumentError} EINVAL: `path` is not a FIFO.
 */
export function openFifoWriterSync(path: FifoPath, options?: { timeout?: number }): PipeWriter {
  const p = v.path(path, 'path');
  timeoutOf(options);
  requireFifo(p);
  const fd = pollUntilSync(() => openFifoFd(p, fsc.O_WRONLY), options, () => timeoutError('open', { path: p }));
  return streamFromFd(fd, 'write');
}

export type { WaitOptions };
