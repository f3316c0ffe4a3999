/**
 * System V shared memory: `shmget` + `shmat`, exposed as a SharedArrayBuffer.
 * User documentation is on {@link SharedMemory}.
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

/** Options of {@link SharedMemory.create}. */
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
  /** The segment id (shmid). */
  id: number;
  /** shm_segsz: the size asked for at creation, in bytes. */
  size: number;
  /** Last attach (null if never). */
  atime: Date | null;
  /** Last detach (null if never). */
  dtime: Date | null;
  /** Last change (creation, IPC_SET, IPC_RMID). */
  ctime: Date;
  /** Creator pid. */
  cpid: number;
  /** Pid of the last shmat or shmdt. */
  lpid: number;
  /** Number of current attaches. */
  nattch: number;
}

function toStat(id: number, r: ShmStatRaw): ShmStat {
  return { id, ...r, atime: ipcTime(r.atime), dtime: ipcTime(r.dtime), ctime: ipcTime(r.ctime)! };
}

/**
 * A System V shared memory segment (`shmget`, `shmat`, `shmctl`), attached
 * and exposed as a SharedArrayBuffer: typed arrays and `Atomics` work on
 * {@link SharedMemory.buffer} directly, and a C program attaching the same
 * key or id sees the same bytes.
 *
 * Lifecycle: {@link SharedMemory.create} makes a segment (a new IPC_PRIVATE
 * one by default, or under a key; exclusive by default) and attaches it;
 * {@link SharedMemory.open} attaches an existing one by key,
 * {@link SharedMemory.attach} by id. {@link SharedMemory.close} drops this
 * handle's reference (the segment is detached once no view of it is
 * reachable), and {@link SharedMemory.remove} (`IPC_RMID`) marks the segment
 * for deletion, which the kernel performs once the last process detaches.
 * A segment nobody removes outlives every process (`ipcs -m` lists it). All
 * calls are synchronous.
 *
 * @example
 * ```ts
 * import { sysv } from 'interprocess';
 *
 * const key = sysv.ftok('shmfile', 65);          // the same key as C's ftok
 * const seg = sysv.SharedMemory.create({ key, size: 1024, mode: 0o600 });
 * Buffer.from(seg.buffer).write('Hello, System V');
 *
 * // another process (or C with shmget + shmat):
 * const other = sysv.SharedMemory.open(key);     // or { path: 'shmfile', projId: 65 }
 * console.log(Buffer.from(other.buffer, 0, 15).toString());
 * other.close();
 *
 * seg.remove();                                  // IPC_RMID
 * seg.close();
 * ```
 */
export class SharedMemory implements Disposable {
  /** The segment id (shmid), as `ipcs -m` shows it. */
  readonly id: number;
  /** The key it was created or opened with; when attached by id, the segment's own key (0 for IPC_PRIVATE, or once removed). */
  readonly key: number;
  /** The attached size in bytes: the segment's size (which may exceed the `size` asked for when opening an existing one). */
  readonly size: number;
  #buffer: SharedArrayBuffer | undefined;

  private constructor(id: number, key: number, buffer: SharedArrayBuffer) {
    this.id = id;
    this.key = key;
    this.#buffer = buffer;
    this.size = buffer.byteLength;
  }

  /**
   * `shmget(key, size, IPC_CREAT [| IPC_EXCL] | mode)` then `shmat`. With
   * `exclusive: false` an existing segment under `key` is attached instead
   * (`size` must not exceed its size). If attaching fails, the segment is
   * removed when this call surely made it (exclusive, or IPC_PRIVATE).
   *
   * @throws {AlreadyExistsError} EEXIST: a segment has this key (and `exclusive` is not false).
   * @throws {InvalidArgumentError} A bad option, or EINVAL: `size` outside SHMMIN..SHMMAX, or larger than the existing segment.
   * @throws {TooLargeError} ERR_OUT_OF_RANGE: `size` past the largest mapping.
   * @throws {PermissionError} EACCES: an existing segment's mode forbids it.
   */
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

  /**
   * Attaches the existing segment with this key (`shmget(key, 0, 0)` + `shmat`).
   *
   * @throws {NotFoundError} ENOENT: no segment has this key.
   * @throws {PermissionError} EACCES: the segment's mode forbids it.
   * @throws {InvalidArgumentError} The key is IPC_PRIVATE (use {@link SharedMemory.attach} with the id).
   */
  static open(key: Key): SharedMemory {
    const k = resolveKey(key);
    if (k === IPC_PRIVATE) throw invalidArgument('IPC_PRIVATE names no existing segment: use SharedMemory.attach(id)');
    const id = check(native.shmget(k, 0, 0), 'shmget', { key: k });
    return SharedMemory.#attach(id, k);
  }

  /**
   * Attaches a segment by id (as printed by `ipcs -m`, or passed from another process).
   *
   * @throws {InvalidArgumentError} EINVAL: no segment has this id.
   * @throws {PermissionError} EACCES: the segment's mode forbids it.
   */
  static attach(id: number): SharedMemory {
    v.nonNegativeInt(id, 'id');
    return SharedMemory.#attach(id, SharedMemory.stat(id).key);
  }

  /**
   * `shmctl(id, IPC_STAT)`: the segment's `shmid_ds`, without attaching it.
   *
   * @throws {InvalidArgumentError} EINVAL: no segment has this id.
   */
  static stat(id: number): ShmStat {
    v.nonNegativeInt(id, 'id');
    return toStat(id, unwrap(native.shmStat(id), 'shmctl', {}));
  }

  /**
   * `shmctl(id, IPC_RMID)`: deleted once the last process detaches.
   *
   * @throws {InvalidArgumentError} EINVAL: no segment has this id.
   * @throws {PermissionError} EPERM: only the owner, the creator or root may remove it.
   */
  static remove(id: number): void {
    v.nonNegativeInt(id, 'id');
    check(native.shmRemove(id), 'shmctl', {});
  }

  static #attach(id: number, key: number): SharedMemory {
    return new SharedMemory(id, key, unwrap(native.shmat(id), 'shmat', { key }));
  }

  /**
   * The attached memory. Views on it stay valid even after close().
   *
   * @throws {IpcError} EBADF: read after close().
   */
  get buffer(): SharedArrayBuffer {
    if (!this.#buffer) throw closedError('shared memory handle', { key: this.key });
    return this.#buffer;
  }

  /** Whether {@link SharedMemory.close} has been called. */
  get closed(): boolean {
    return this.#buffer === undefined;
  }

  /** The segment's current `shmid_ds` (works on a closed handle too: it goes by id). */
  stat(): ShmStat {
    return toStat(this.id, unwrap(native.shmStat(this.id), 'shmctl', { key: this.key }));
  }

  /**
   * Marks the segment for removal (IPC_RMID); attached processes keep it until
   * they detach. Works on a closed handle too (it goes by id).
   *
   * @throws {PermissionError} EPERM: only the owner, the creator or root may remove it.
   */
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

  /** Calls {@link SharedMemory.close}, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }
}
