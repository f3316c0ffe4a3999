/**
 * interprocess: the classic IPC mechanisms for Node.js, typed, async and
 * byte-compatible with C.
 *
 * - Pipes: {@link pipe}, {@link spawnWithPipes}, {@link pipeReader}, {@link pipeWriter}
 * - FIFOs: {@link mkfifo}, {@link openFifoReader}, {@link openFifoWriter}
 * - Framing over any byte stream: {@link FrameReader}, {@link writeFrame}, {@link FrameEncoder}, {@link FrameDecoder}
 * - Shared memory: {@link interprocess/posix!SharedMemory | posix.SharedMemory}, {@link interprocess/sysv!SharedMemory | sysv.SharedMemory}, {@link interprocess/sysv!ftok | sysv.ftok}
 * - Message queues: {@link interprocess/posix!MessageQueue | posix.MessageQueue}, {@link interprocess/sysv!MessageQueue | sysv.MessageQueue}
 * - Semaphores: {@link interprocess/posix!Semaphore | posix.Semaphore}, {@link interprocess/sysv!SemaphoreSet | sysv.SemaphoreSet}
 * - Locks across processes: {@link Mutex} (robust), {@link Condition}, {@link RwLock}
 * - A fast message channel in shared memory: {@link Channel}
 *
 * Guides, one per mechanism: docs/guides/README.md.
 *
 * @module interprocess
 */
export * as posix from './posix.js';
export * as sysv from './sysv.js';
export {
  IpcError,
  AlreadyExistsError,
  NotFoundError,
  PermissionError,
  WouldBlockError,
  TimeoutError,
  TooLargeError,
  InvalidArgumentError,
  RemovedError,
  PeerGoneError,
  DeadlockError,
  NotRecoverableError,
  AbortError,
  formatKey,
  errnoName,
} from './errors.js';
export type { IpcErrorOptions } from './errors.js';
export { pipe, pipeReader, pipeWriter, spawnWithPipes } from './pipe.js';
export type { Pipe, PipeReader, PipeWriter, PipeDirection, PipedSpawnOptions, PipedChild } from './pipe.js';
export { mkfifo, mkfifoSync, openFifoReader, openFifoWriter, openFifoWriterSync, tryOpenFifoWriter } from './fifo.js';
export type { FifoPath } from './fifo.js';
export {
  encodeFrame,
  writeFrame,
  FrameEncoder,
  FrameDecoder,
  FrameReader,
  FrameParser,
  FRAME_HEADER_SIZE,
  DEFAULT_MAX_FRAME_SIZE,
  MAX_FRAME_SIZE,
} from './framing.js';
export type { FramingOptions, FramePayload } from './framing.js';
export { Mutex, MUTEX_SIZE, MUTEX_ALIGN } from './mutex.js';
export type { LockResult, MutexGuard, CreateOptions as MutexCreateOptions } from './mutex.js';
export { Condition, CONDITION_SIZE } from './condition.js';
export { RwLock, rwlockSize, DEFAULT_READER_SLOTS } from './rwlock.js';
export type { RwLockCreateOptions } from './rwlock.js';
export { Channel, DEFAULT_CAPACITY as CHANNEL_DEFAULT_CAPACITY } from './channel.js';
export type { ChannelCreateOptions, ChannelOpenOptions, ChannelInfo } from './channel.js';
export type { WaitOptions } from './internal/wait.js';
