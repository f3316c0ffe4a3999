/**
 * Anonymous pipes: the tutorial's `pipe()` + `fork()`, for Node.
 *
 * - {@link pipe} gives both ends in this process as Node streams.
 * - {@link spawnWithPipes} starts a child with extra pipes at descriptors 3, 4, …,
 *   exactly as a C parent would after `pipe()`, `fork()` and `dup2()`: the child
 *   (C or Node) sees ordinary blocking pipe descriptors; the parent gets streams.
 * - {@link pipeReader} / {@link pipeWriter} turn an inherited descriptor into a
 *   stream, in a child started that way (or by a C parent).
 */
import type net from 'node:net';
import { spawn, type ChildProcess, type SpawnOptions, type StdioOptions } from 'node:child_process';
import { native } from './native.js';
import { check, invalidArgument } from './errors.js';
import { checkStreamFd, closeQuietly, streamFromFd } from './internal/stream.js';
import { nonNegativeInt } from './internal/validate.js';

/** A readable stream over the read end of a pipe or FIFO. */
export type PipeReader = net.Socket;
/** A writable stream over the write end of a pipe or FIFO. */
export type PipeWriter = net.Socket;

/** Both ends of an anonymous pipe, as {@link pipe} returns them. */
export interface Pipe {
  /** The read end: a readable stream that ends when every write end is closed. */
  readable: PipeReader;
  /** The write end: closing it (`end()`) gives the reader end-of-file. */
  writable: PipeWriter;
}

function rawPipe(): [number, number] {
  const r = native.pipe();
  if (typeof r === 'number') check(r, 'pipe');
  return r as [number, number];
}

/**
 * Creates an anonymous pipe (`pipe(2)`) with both ends as streams in this
 * process; libuv polls them, so reads and writes never block a thread.
 *
 * @example
 * ```ts
 * import { pipe } from 'interprocess';
 *
 * const { readable, writable } = pipe();
 * writable.end('Hello, pipe');
 * for await (const chunk of readable) console.log(`${chunk}`);
 * ```
 *
 * @throws {IpcError} EMFILE: out of descriptors.
 */
export function pipe(): Pipe {
  const [r, w] = rawPipe();
  return { readable: streamFromFd(r, 'read'), writable: streamFromFd(w, 'write') };
}

/**
 * Wraps an inherited descriptor (e.g. 3) holding the read end of a pipe (or
 * a FIFO or socket), as a child started by {@link spawnWithPipes} or by a C
 * parent finds it. The stream owns the descriptor from now on.
 *
 * @throws {InvalidArgumentError} The descriptor is not a pipe, FIFO or socket, or is not open for reading.
 * @throws {IpcError} EBADF: the descriptor is not open.
 */
export function pipeReader(fd: number): PipeReader {
  nonNegativeInt(fd, 'fd');
  checkStreamFd(fd, 'read');
  return streamFromFd(fd, 'read');
}

/**
 * Wraps an inherited descriptor (e.g. 4) holding the write end of a pipe (or
 * a FIFO or socket). The stream owns the descriptor from now on.
 *
 * @throws {InvalidArgumentError} The descriptor is not a pipe, FIFO or socket, or is not open for writing.
 * @throws {IpcError} EBADF: the descriptor is not open.
 */
export function pipeWriter(fd: number): PipeWriter {
  nonNegativeInt(fd, 'fd');
  checkStreamFd(fd, 'write');
  return streamFromFd(fd, 'write');
}

/** Which way data flows through an extra pipe, seen from the parent. */
export type PipeDirection = 'toChild' | 'fromChild';

/** Node's `spawn` options, plus the extra pipes to give the child. */
export interface PipedSpawnOptions extends SpawnOptions {
  /** One entry per extra pipe; the child sees them at consecutive descriptors after stdio. */
  pipes: PipeDirection[];
}

/** What {@link spawnWithPipes} returns. */
export interface PipedChild {
  /** The child, as `child_process.spawn` returns it (its stdio as asked for in the options). */
  child: ChildProcess;
  /** The parent's end of each pipe, in the order of `options.pipes`: writers for 'toChild', readers for 'fromChild'. */
  pipes: net.Socket[];
  /** The descriptor number at which the child finds each pipe (3, 4, … with default stdio). */
  childFds: number[];
}

function stdioArray(stdio: StdioOptions | undefined): unknown[] {
  if (stdio === undefined) return ['pipe', 'pipe', 'pipe'];
  if (typeof stdio === 'string') return [stdio, stdio, stdio];
  const a = [...stdio];
  while (a.length < 3) a.push(undefined);
  return a;
}

/**
 * Spawns `command` with extra anonymous pipes. The child's ends are plain
 * blocking descriptors, as C's pipe() makes them; the parent closes its copies
 * of them right after the spawn, so end-of-file works as in C: the reader sees
 * EOF once every writer has closed.
 *
 * @param options Node's spawn options (stdio defaults to three pipes, as
 *   spawn's), plus `pipes`: one direction per extra pipe.
 * @throws {InvalidArgumentError} `options.pipes` is not an array of 'toChild' / 'fromChild'.
 *
 * ```ts
 * const { child, pipes: [toChild] } = spawnWithPipes('./reader', [], { pipes: ['toChild'] });
 * toChild.end('Hello, IPC');   // the child reads it from descriptor 3
 * ```
 */
export function spawnWithPipes(command: string, args: readonly string[], options: PipedSpawnOptions): PipedChild {
  const { pipes: directions, ...spawnOptions } = options;
  if (!Array.isArray(directions)) throw invalidArgument('options.pipes must be an array of "toChild" | "fromChild"', 'ERR_INVALID_ARG_TYPE');
  for (const d of directions) {
    if (d !== 'toChild' && d !== 'fromChild') throw invalidArgument(`options.pipes entries must be "toChild" or "fromChild", got ${String(d)}`);
  }
  const stdio = stdioArray(spawnOptions.stdio);
  const created: Array<{ parentFd: number; childFd: number }> = [];
  try {
    for (const d of directions) {
      const [r, w] = rawPipe();
      created.push(d === 'toChild' ? { parentFd: w, childFd: r } : { parentFd: r, childFd: w });
    }
  } catch (err) {
    for (const p of created) { closeQuietly(p.parentFd); closeQuietly(p.childFd); }
    throw err;
  }
  const base = stdio.length;
  let child: ChildProcess;
  try {
    child = spawn(command, args, { ...spawnOptions, stdio: [...stdio, ...created.map((p) => p.childFd)] as StdioOptions });
  } catch (err) {
    for (const p of created) closeQuietly(p.parentFd);
    throw err;
  } finally {
    // The child holds its own copies now; ours would keep the pipe from ever
    // reaching EOF (a reader never sees EOF while any writer is open).
    for (const p of created) closeQuietly(p.childFd);
  }
  return {
    child,
    pipes: created.map((p, i) => streamFromFd(p.parentFd, directions[i] === 'toChild' ? 'write' : 'read')),
    childFds: created.map((_, i) => base + i),
  };
}
