/**
 * The native addon, loaded in this one module. Everything platform-specific
 * (system calls, their constants) is reached through here, so a port to
 * another POSIX system changes native/ and this file's types only.
 *
 * Convention: each function returns its result or a negative errno (see
 * src/errors.ts `check`/`unwrap`).
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

export interface ShmStatRaw {
  key: number;
  uid: number;
  gid: number;
  cuid: number;
  cgid: number;
  mode: number;
  size: number;
  atime: number;
  dtime: number;
  ctime: number;
  cpid: number;
  lpid: number;
  nattch: number;
}

export interface RawMessage {
  type: number;
  data: Buffer;
}

export interface MsgStatRaw {
  key: number; uid: number; gid: number; cuid: number; cgid: number; mode: number;
  stime: number; rtime: number; ctime: number;
  cbytes: number; qnum: number; qbytes: number; lspid: number; lrpid: number;
}

export interface MqAttrRaw {
  flags: number;
  maxmsg: number;
  msgsize: number;
  curmsgs: number;
}

export interface SemStatRaw {
  key: number; uid: number; gid: number; cuid: number; cgid: number; mode: number;
  otime: number; ctime: number; nsems: number;
}

export interface NativePoller {
  start(readable: boolean, writable: boolean): number;
  stop(): void;
  /** Whether an active poll keeps the event loop alive (default true). */
  ref(keepAlive: boolean): void;
  close(): void;
}

/** An opaque POSIX semaphore handle (sem_t* guarded in native/sem.cc). */
export type SemHandle = { readonly __semHandle: unique symbol };

export interface NativeBinding {
  // descriptors, pipes and FIFOs (native/fd.cc)
  pipe(): [number, number] | number;
  mkfifo(path: string, mode: number): number;
  mkfifoAsync(path: string, mode: number): Promise<number>;
  setBlocking(fd: number, blocking: boolean): number;
  getFlags(fd: number): number;
  // shared memory (native/shm.cc)
  shmOpen(name: string, oflag: number, mode: number): number;
  shmUnlink(name: string): number;
  fallocate(fd: number, length: number): number;
  map(fd: number, length: number, copyOnWrite: boolean): SharedArrayBuffer | number;
  shmget(key: number, size: number, flags: number): number;
  shmat(id: number): SharedArrayBuffer | number;
  shmStat(id: number): ShmStatRaw | number;
  shmRemove(id: number): number;
  sysvConstants: { IPC_CREAT: number; IPC_EXCL: number; IPC_NOWAIT: number; IPC_PRIVATE: number };
  // waits on waiter threads (native/waiter.cc)
  cancelWait(id: number): void;
  pendingWaits(): number;
  // System V message queues (native/msg.cc)
  msgget(key: number, flags: number): number;
  msgsnd(id: number, type: number, data: Uint8Array, flags: number): number;
  msgrcv(id: number, maxSize: number, type: number, flags: number): RawMessage | number;
  msgsndWait(id: number, type: number, data: Uint8Array, flags: number, done: (r: number) => void): number;
  msgrcvWait(id: number, maxSize: number, type: number, flags: number, done: (r: RawMessage | number) => void): number;
  msgStat(id: number): MsgStatRaw | number;
  msgSet(id: number, qbytes: number, uid: number, gid: number, mode: number): number;
  msgRemove(id: number): number;
  msgConstants: { MSG_NOERROR: number; MSG_EXCEPT: number };
  // POSIX message queues (native/mqueue.cc)
  mqOpen(name: string, oflag: number, mode: number, maxmsg: number, msgsize: number): number;
  mqClose(q: number): number;
  mqUnlink(name: string): number;
  mqGetattr(q: number): MqAttrRaw | number;
  mqSend(q: number, data: Uint8Array, priority: number): number;
  mqReceive(q: number, size: number): { data: Buffer; priority: number } | number;
  // descriptor readiness (native/poll.cc)
  /** `datagrams`: a doorbell's socket; one datagram is taken before each callback, which is skipped if there was none. */
  Poller: new (fd: number, callback: (status: number, readable: boolean, writable: boolean) => void, datagrams?: boolean) => NativePoller;
  pollFd(fd: number, readable: boolean, writable: boolean, timeoutMs: number): number;
  // semaphores (native/sem.cc)
  semOpen(name: string, oflag: number, mode: number, value: number): SemHandle | number;
  semClose(sem: SemHandle): number;
  semUnlink(name: string): number;
  semPost(sem: SemHandle): number;
  semTryWait(sem: SemHandle): number;
  semGetValue(sem: SemHandle): number;
  semWaitSync(sem: SemHandle, timeoutMs: number): number;
  semWait(sem: SemHandle, done: (r: number) => void): number;
  semget(key: number, nsems: number, flags: number): number;
  semop(id: number, ops: Int32Array, timeoutMs: number): number;
  semopWait(id: number, ops: Int32Array, done: (r: number) => void): number;
  semctlInt(id: number, num: number, cmd: number, value?: number): number;
  semGetAll(id: number): number[] | number;
  semSetAll(id: number, values: Uint16Array): number;
  semStat(id: number): SemStatRaw | number;
  semConstants: {
    SEM_UNDO: number; GETVAL: number; SETVAL: number; GETNCNT: number; GETZCNT: number; GETPID: number;
    IPC_RMID: number; SEM_VALUE_MAX: number; SEMVMX: number;
  };
  // futexes on shared memory (native/futex.cc)
  futexWake(word: Int32Array, index: number, count: number): number;
  futexWaitSync(word: Int32Array, index: number, expected: number, timeoutMs: number): number;
  futexWait(word: Int32Array, index: number, expected: number, done: (r: number) => void): number;
  // robust process-shared pthread mutexes (native/mutex.cc)
  mutexInit(view: Uint8Array): number;
  mutexTryLock(view: Uint8Array): number;
  mutexLockSync(view: Uint8Array, timeoutMs: number): number;
  mutexUnlock(view: Uint8Array): number;
  mutexConsistent(view: Uint8Array): number;
  mutexMarkWaiters(view: Uint8Array): void;
  mutexWatch(view: Uint8Array, done: (r: number) => void): number;
  mutexOwner(view: Uint8Array): number;
  gettid(): number;
  MUTEX_SIZE: number;
  MUTEX_ALIGN: number;
  lockErrno: { EOWNERDEAD: number; ENOTRECOVERABLE: number };
  // doorbells: abstract Unix datagram sockets (native/doorbell.cc)
  bellBind(name: string): number;
  bellRing(name: string): number;
  bellDrain(fd: number): number;
  BELL_MAX_NAME: number;
  // what a thread's handles hold, let go when the thread ends (native/release.cc)
  releaseAtEnd(buffer: SharedArrayBuffer, steps: Int32Array): number;
  closeAtEnd(fd: number): number;
  releaseCancel(id: number): void;
  // Unix stream sockets passing descriptors, eventfds (native/socket.cc)
  unixListen(path: string, backlog: number): number;
  unixAccept(fd: number): number;
  unixConnect(path: string): number;
  sendWithFd(fd: number, data: Uint8Array, passFd: number): number;
  recvWithFd(fd: number, size: number): { data: Buffer; fd: number } | number;
  eventfd(initial: number): number;
  eventfdWrite(fd: number, n: number): number;
  eventfdRead(fd: number): number;
  closeFd(fd: number): number;
  // System V keys (native/ipckey.cc)
  ftok(path: string, projId: number): number | { errno: number };
  maxMappingLength: number;
}

const require = createRequire(import.meta.url);
const root = join(dirname(fileURLToPath(import.meta.url)), '..');

export const native: NativeBinding = require('node-gyp-build')(root);
