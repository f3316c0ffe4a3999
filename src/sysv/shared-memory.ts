/**
 * System V shared memory: `shmget` + `shmat`, exposed as a SharedArrayBuffer.
 *
 * Lifetime: the attachment belongs to the SharedArrayBuffer and is detached
 * (shmdt) only when no view of it is reachable from any thread. `close()`
 * drops this handle's reference; `remove()` marks the segment for deletion
 * (IPC_RMID), which the kernel performs once the last process detaches.
 */
import { native, type ShmStatRaw } from '../native.js';
import { check, invalidArgument, unwrap } from '../errors.js';
import { closedError } from '../internal/handle.js';
import * as v from '../internal/validate.js';
import { ipcTime, resolveKey, IPC_PRIVATE, type IpcPerm, type Key } from './key.js';

const { IPC_CREAT, IPC_EXCL } = native.sysvConstants;

export interface CreateOptions {
  /** A key, `{ path, projId }` for ftok, or IPC_PRIVATE (the default): always a new segment. */
  key?: Key;
  /** Size in bytes (> 0; the kernel rounds the allocation up to pages). */
  size: number;
  /** Permission bits, default 0o600. */
  mode?: number;
  /**
   * true (default): fail with AlreadyExistsError if the key exists (IPC_CREAT | IPC_EXCL).
   * false: attach the existing segment (as C, `size` must not exceed its size).
   */
  exclusive?: boolean;
}

/** The segment's `shmid_ds`, field names as in C without the `shm_` prefix. */
export interface ShmStat extends IpcPerm {
  id: number;
  /** shm_segsz: the size asked for at creation, in bytes. */
  size: number;
  /** Last attach, last detach (null if never), last change. */
  atime: Date | null;
  dtime: Date | null;
  ctime: Date;
  /** Creator pid, and pid of the last shmat/shmdt. */
  cpid: number;
  lpid: number;
  /** Number of current attaches. */
  nattch: number;
}

function toStat(id: number, r: ShmStatRaw): ShmStat {
  return { id, ...r, atime: ipcTime(r.atime), dtime: ipcTime(r.dtime), ctime: ipcTime(r.ctime)! };
}

export class SharedMemory implements Disposable {
  /** The segment id (shmid), as `ipcs -m` shows it. */
  readonly id: number;
  /** The key it was created or opened with (IPC_PRIVATE = 0 when attached by id). */
  readonly key: number;
  /** The segment's size in bytes. */
  readonly size: number;
  #buffer: SharedArrayBuffer | undefined;

  private constructor(id: number, key: number, buffer: SharedArrayBuffer) {
    this.id = id;
    this.key = key;
    this.#buffer = buffer;
    this.size = buffer.byteLength;
  }

  /** `shmget(key, size, IPC_CREAT [| IPC_EXCL] | mode)` then `shmat`. */
  static create(options: CreateOptions): SharedMemory {
    if (typeof options !== 'object' || options === null) throw invalidArgument('options with a size are required', 'ERR_INVALID_ARG_TYPE');
    const size = v.size(options.size, 'size', native.maxMappingLength);
    const mode = v.mode(options.mode, 0o600);
    const exclusive = v.bool(options.exclusive, 'exclusive', true);
    const key = options.key === undefined ? IPC_PRIVATE : resolveKey(options.key);
    const id = check(native.shmget(key, size, IPC_CREAT | (exclusive ? IPC_EXCL : 0) | mode), 'shmget', { key });
    try {
      return SharedMemory.#attach(id, key);
    } catch (err) {
      // Attaching failed: do not leave a segment nobody can reach behind.
      if (exclusive || key === IPC_PRIVATE) native.shmRemove(id);
      throw err;
    }
  }

  /** Attaches the existing segment with this key (`shmget(key, 0, 0)` + `shmat`). */
  static open(key: Key): SharedMemory {
    const k = resolveKey(key);
    if (k === IPC_PRIVATE) throw invalidArgument('IPC_PRIVATE names no existing segment: use SharedMemory.attach(id)');
    const id = check(native.shmget(k, 0, 0), 'shmget', { key: k });
    return SharedMemory.#attach(id, k);
  }

  /** Attaches a segment by id (as printed by `ipcs -m`, or passed from another process). */
  static attach(id: number): SharedMemory {
    v.nonNegativeInt(id, 'id');
    return SharedMemory.#attach(id, SharedMemory.stat(id).key);
  }

  /** `shmctl(id, IPC_STAT)`. */
  static stat(id: number): ShmStat {
    v.nonNegativeInt(id, 'id');
    return toStat(id, unwrap(native.shmStat(id), 'shmctl', {}));
  }

  /** `shmctl(id, IPC_RMID)`: deleted once the last process detaches. */
  static remove(id: number): void {
    v.nonNegativeInt(id, 'id');
    check(native.shmRemove(id), 'shmctl', {});
  }

  static #attach(id: number, key: number): SharedMemory {
    return new SharedMemory(id, key, unwrap(native.shmat(id), 'shmat', { key }));
  }

  /** The attached memory. Views on it stay valid even after close(). */
  get buffer(): SharedArrayBuffer {
    if (!this.#buffer) throw closedError('shared memory handle', { key: this.key });
    return this.#buffer;
  }

  get closed(): boolean {
    return this.#buffer === undefined;
  }

  /** The segment's current `shmid_ds`. */
  stat(): ShmStat {
    return toStat(this.id, unwrap(native.shmStat(this.id), 'shmctl', { key: this.key }));
  }

  /** Marks the segment for removal (IPC_RMID). */
  remove(): void {
    check(native.shmRemove(this.id), 'shmctl', { key: this.key });
  }

  /**
   * Drops this handle's reference to the memory. The segment is detached when
   * no view of it remains reachable (at the next garbage collection), never
   * while JavaScript could still touch it. Idempotent.
   */
  close(): void {
    this.#buffer = undefined;
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
