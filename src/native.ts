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
  // System V keys (native/ipckey.cc)
  ftok(path: string, projId: number): number | { errno: number };
  maxMappingLength: number;
}

const require = createRequire(import.meta.url);
const root = join(dirname(fileURLToPath(import.meta.url)), '..');

export const native: NativeBinding = require('node-gyp-build')(root);
