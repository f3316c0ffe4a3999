/**
 * POSIX shared memory: `shm_open` + `ftruncate` + `mmap`, exposed as a
 * SharedArrayBuffer. User documentation is on {@link SharedMemory}.
 *
 * Lifetime: the mapping belongs to the SharedArrayBuffer. It is unmapped only
 * when no view of it is reachable from any thread, so no sequence of calls can
 * make JavaScript touch unmapped memory. `close()` releases the descriptor and
 * the handle's own reference, nothing else.
 */
import { fstatSync, ftruncateSync, type Stats, constants as fsc } from 'node:fs';
import { native } from '../native.js';
import { check, fromNodeError, invalidArgument, systemError, unwrap, IpcError, InvalidArgumentError, TooLargeError } from '../errors.js';
import { constants } from 'node:os';
import { closeQuietly } from '../internal/stream.js';
import { closedError } from '../internal/handle.js';
import * as v from '../internal/validate.js';

const { EEXIST, ENOENT, ENOSPC, EFBIG, EINVAL } = constants.errno;

/**
 * Longest name accepted, in bytes after the leading '/': NAME_MAX (255), since
 * the object is the file /dev/shm/<name>. glibc 2.34 and later pass such a
 * name through (measured with glibc 2.36: 255 bytes is created, 256 fails with
 * ENAMETOOLONG from the kernel); older glibc stops at 253 and reports EINVAL
 * itself for 254 and 255. Checking for 253 here would reject names a C program
 * on a current system creates.
 */
export const MAX_NAME_BYTES = 255;

/** Options of {@link SharedMemory.create}. */
export interface CreateOptions {
  /** Size in bytes (> 0). */
  size: number;
  /** Permission bits, default 0o600 (the umask applies, as in C). */
  mode?: number;
  /**
   * true (default): fail with AlreadyExistsError if the name exists (O_CREAT | O_EXCL).
   * false: open the existing object instead, keeping its size (a zero-size
   * object, whose creator has not sized it yet, is given `size`).
   */
  exclusive?: boolean;
  /**
   * Reserve the pages now with posix_fallocate (default true), so a full
   * /dev/shm fails here with a TooLargeError instead of killing the process
   * with SIGBUS when the memory is first touched.
   */
  reserve?: boolean;
}

/** Options of {@link SharedMemory.open}. */
export interface OpenOptions {
  /**
   * Open O_RDONLY (for an object you may only read). The mapping is then
   * copy-on-write (MAP_PRIVATE): writes never reach the object and do not
   * fault; they stay private to this process. Reads see the object, including
   * later changes made by other processes, page by page until this process
   * writes to a page: from then on that page is a private copy and no longer
   * shows others' changes. (A truly read-only page would kill the process on
   * a stray write.)
   */
  readOnly?: boolean;
}

/**
 * Errors from Node's fs become this package's; errors already ours pass
 * unchanged (rebuilding them from their errno would drop their message, and
 * the family chosen for them, e.g. the "has size 0" explanation).
 */
function asIpcError(err: unknown, where: { path: string }): unknown {
  return err instanceof IpcError ? err : fromNodeError(err, where);
}

/**
 * A POSIX shared memory object (`shm_open` + `ftruncate` + `mmap`), mapped
 * whole and exposed as a SharedArrayBuffer: typed arrays and `Atomics` work on
 * {@link SharedMemory.buffer} directly, it can be posted to worker threads,
 * and a C program that maps the same name sees the same bytes.
 *
 * Lifecycle: {@link SharedMemory.create} makes the object (exclusive by
 * default) and sizes it, {@link SharedMemory.open} maps an existing one;
 * {@link SharedMemory.close} releases this handle's descriptor, and
 * {@link SharedMemory.unlink} (`shm_unlink`) removes the name. The memory
 * itself lives until the name is gone and no mapping is left: views of
 * `buffer` stay valid after `close()`, and the mapping is released only when
 * no view of it is reachable from any thread. All calls are synchronous.
 *
 * @example
 * ```ts
 * import { posix } from 'interprocess';
 *
 * const shm = posix.SharedMemory.create('/my-shm', { size: 4096, mode: 0o600 });
 * Buffer.from(shm.buffer).write('Hello, Shared Memory');
 *
 * // another process (Node, or C with shm_open + mmap):
 * const other = posix.SharedMemory.open('/my-shm');
 * Atomics.add(new Int32Array(other.buffer, 64, 1), 0, 1);
 * other.close();
 *
 * shm.close();
 * posix.SharedMemory.unlink('/my-shm');
 * ```
 */
export class SharedMemory implements Disposable {
  /** The object's name, e.g. '/my-shm'. */
  readonly name: string;
  /** The mapped length in bytes (the object's size when it was mapped). */
  readonly size: number;
  /** True if this handle created the object. */
  readonly created: boolean;
  /** True if opened with `readOnly`: the mapping is a private copy-on-write one (see {@link OpenOptions.readOnly}). */
  readonly readOnly: boolean;
  #fd: number;
  #buffer: SharedArrayBuffer | undefined;

  private constructor(name: string, fd: number, buffer: SharedArrayBuffer, created: boolean, readOnly: boolean) {
    this.name = name;
    this.#fd = fd;
    this.#buffer = buffer;
    this.size = buffer.byteLength;
    this.created = created;
    this.readOnly = readOnly;
  }

  /**
   * Creates an object of `options.size` bytes and maps it (`shm_open` with
   * O_CREAT | O_EXCL, `posix_fallocate` unless `reserve: false`, `ftruncate`,
   * `mmap`); with
   * `exclusive: false`, opens and maps the object instead if the name exists
   * (keeping its size). Nothing is left under the name if sizing or mapping
   * a new object fails.
   *
   * @throws {AlreadyExistsError} EEXIST: the name exists (and `exclusive` is not false).
   * @throws {TooLargeError} ENOSPC or EFBIG: the pages do not fit in /dev/shm (with `reserve`), or
   *   ERR_OUT_OF_RANGE: `size` past the largest mapping.
   * @throws {InvalidArgumentError} A bad name, size or option.
   * @throws {PermissionError} EACCES: an existing object's mode forbids it.
   */
  static create(name: string, options: CreateOptions): SharedMemory {
    v.posixName(name, 'shared memory', MAX_NAME_BYTES);
    if (typeof options !== 'object' || options === null) throw invalidArgument('options with a size are required', 'ERR_INVALID_ARG_TYPE');
    const size = v.size(options.size, 'size', native.maxMappingLength);
    const mode = v.mode(options.mode, 0o600);
    const exclusive = v.bool(options.exclusive, 'exclusive', true);
    const reserve = v.bool(options.reserve, 'reserve', true);
    const where = { path: name };

    // Learn whether we create the object: only a creator may size it.
    for (let attempt = 0; ; attempt++) {
      let fd = native.shmOpen(name, fsc.O_RDWR | fsc.O_CREAT | fsc.O_EXCL, mode);
      if (fd >= 0) return SharedMemory.#initNew(name, fd, size, reserve);
      if (exclusive || fd !== -EEXIST) check(fd, 'shm_open', where);
      fd = native.shmOpen(name, fsc.O_RDWR, 0);
      if (fd === -ENOENT /* unlinked meanwhile */ && attempt < 3) continue;
      check(fd, 'shm_open', where);
      try {
        // Sized like a new object, reservation included: another process
        // mapping it must not meet SIGBUS on a full /dev/shm either.
        if (fstatSync(fd).size === 0) SharedMemory.#setSize(name, fd, size, reserve);
        return SharedMemory.#mapExisting(name, fd, false, false);
      } catch (err) {
        closeQuietly(fd);
        throw asIpcError(err, where);
      }
    }
  }

  /**
   * Opens an existing object (`shm_open` O_RDWR, or O_RDONLY with
   * `readOnly`) and maps all of it; {@link SharedMemory.size} is its size now.
   *
   * @throws {NotFoundError} ENOENT: no object by that name.
   * @throws {PermissionError} EACCES: the object's mode forbids it.
   * @throws {InvalidArgumentError} A bad name, or EINVAL: the object has size 0 (its creator has not sized it yet).
   */
  static open(name: string, options: OpenOptions = {}): SharedMemory {
    v.posixName(name, 'shared memory', MAX_NAME_BYTES);
    if (typeof options !== 'object' || options === null) throw invalidArgument('options must be an object', 'ERR_INVALID_ARG_TYPE');
    const readOnly = v.bool(options.readOnly, 'readOnly', false);
    const fd = check(native.shmOpen(name, readOnly ? fsc.O_RDONLY : fsc.O_RDWR, 0), 'shm_open', { path: name });
    try {
      return SharedMemory.#mapExisting(name, fd, false, readOnly);
    } catch (err) {
      closeQuietly(fd);
      throw asIpcError(err, { path: name });
    }
  }

  /**
   * Removes the name (`shm_unlink`); memory stays until every mapping is gone.
   *
   * @throws {NotFoundError} ENOENT: no object by that name.
   */
  static unlink(name: string): void {
    v.posixName(name, 'shared memory', MAX_NAME_BYTES);
    check(native.shmUnlink(name), 'shm_unlink', { path: name });
  }

  static #initNew(name: string, fd: number, size: number, reserve: boolean): SharedMemory {
    const where = { path: name };
    try {
      SharedMemory.#setSize(name, fd, size, reserve);
      return new SharedMemory(name, fd, unwrap(native.map(fd, size, false), 'mmap', where), true, false);
    } catch (err) {
      // Nothing half-made is left behind under the name.
      native.shmUnlink(name);
      closeQuietly(fd);
      throw err;
    }
  }

  /**
   * Gives the object its size. With `reserve`, posix_fallocate comes first:
   * it sets the size only if every page could be reserved, so a failure
   * (ENOSPC) leaves the object as it was, never sized with missing pages.
   */
  static #setSize(name: string, fd: number, size: number, reserve: boolean): void {
    const where = { path: name };
    if (reserve) {
      const r = native.fallocate(fd, size);
      if (r < 0) {
        throw r === -ENOSPC || r === -EFBIG
          ? systemError(r, 'posix_fallocate', { ...where, message: `${r === -ENOSPC ? 'ENOSPC' : 'EFBIG'}: ${size} bytes do not fit in the shared memory filesystem, posix_fallocate '${name}'` }, TooLargeError)
          : systemError(r, 'posix_fallocate', where);
      }
    }
    try {
      ftruncateSync(fd, size); // exact size whatever fallocate did (a no-op after it on tmpfs)
    } catch (err) {
      throw fromNodeError(err, where);
    }
  }

  static #mapExisting(name: string, fd: number, created: boolean, readOnly: boolean): SharedMemory {
    const size = fstatSync(fd).size;
    if (size === 0) {
      throw new InvalidArgumentError('EINVAL', { errno: -EINVAL, syscall: 'mmap', path: name, message: `EINVAL: shared memory object '${name}' has size 0 (its creator has not sized it yet)` });
    }
    if (size > native.maxMappingLength) throw systemError(-EFBIG, 'mmap', { path: name }, TooLargeError);
    return new SharedMemory(name, fd, unwrap(native.map(fd, size, readOnly), 'mmap', { path: name }), created, readOnly);
  }

  /**
   * The mapping. Views on it stay valid even after close().
   *
   * @throws {IpcError} EBADF: read after close() (views taken before stay valid).
   */
  get buffer(): SharedArrayBuffer {
    if (!this.#buffer) throw closedError('shared memory handle', { path: this.name });
    return this.#buffer;
  }

  /** The descriptor from shm_open (-1 once closed). */
  get fd(): number {
    return this.#fd;
  }

  /** Whether {@link SharedMemory.close} has been called. */
  get closed(): boolean {
    return this.#buffer === undefined;
  }

  /**
   * fstat of the object: size, mode, owner, times, as Node's fs.Stats.
   *
   * @throws {IpcError} EBADF: the handle is closed.
   */
  stat(): Stats {
    if (this.closed) throw closedError('shared memory handle', { path: this.name });
    try {
      return fstatSync(this.#fd);
    } catch (err) {
      throw fromNodeError(err, { path: this.name });
    }
  }

  /** Removes this object's name (see {@link SharedMemory.unlink}); works on a closed handle too. */
  unlink(): void {
    SharedMemory.unlink(this.name);
  }

  /** Closes the descriptor and drops this handle's reference to the mapping. Idempotent. */
  close(): void {
    if (this.closed) return;
    closeQuietly(this.#fd);
    this.#fd = -1;
    this.#buffer = undefined;
  }

  /** Calls {@link SharedMemory.close}, for `using shm = posix.SharedMemory.open(...)`. */
  [Symbol.dispose](): void {
    this.close();
  }
}
