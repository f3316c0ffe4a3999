/**
 * The header at the start of every named object this package keeps in POSIX
 * shared memory (mutexes, conditions, read-write locks, later channels), so
 * tools (`interprocess ls`) and C programs can recognise them:
 *
 *   offset 0  u32  magic 0x786d7069 ("ipmx" in memory order)
 *   offset 4  u16  layout version of the kind (mutex, condition, rwlock: 1; channel: 2)
 *   offset 6  u16  kind (1 mutex, 2 condition, 3 rwlock, 4 channel)
 *   offset 8  i32  pid of the creating process
 *   offset 12 u32  kind-specific (rwlock: reader slots)
 *   offset 16..63  reserved, zero
 *
 * The creator writes the magic last (a release store), once the object is
 * initialised; an opener that sees magic 0 waits for it.
 */
import { IpcError, invalidArgument } from '../errors.js';
import { sleepSync } from './wait.js';
import { SharedMemory } from '../posix/shared-memory.js';

export const HEADER_SIZE = 64;
export const MAGIC = 0x786d7069;
export const Kind = { mutex: 1, condition: 2, rwlock: 3, channel: 4 } as const;
export type KindName = keyof typeof Kind;
/** The layout version of each kind (channel 2: records carry a stamp, docs/channel.md). */
export const VERSIONS: Readonly<Record<KindName, number>> = { mutex: 1, condition: 1, rwlock: 1, channel: 3 };

export function writeHeader(buffer: SharedArrayBuffer, kind: KindName, extra = 0): void {
  const dv = new DataView(buffer);
  dv.setUint16(4, VERSIONS[kind], true);
  dv.setUint16(6, Kind[kind], true);
  dv.setInt32(8, process.pid, true);
  dv.setUint32(12, extra, true);
  Atomics.store(new Int32Array(buffer, 0, 1), 0, MAGIC | 0);
}

export interface Header {
  kind: KindName;
  version: number;
  creatorPid: number;
  extra: number;
}

export function readHeader(buffer: SharedArrayBuffer): Header | undefined {
  if (buffer.byteLength < HEADER_SIZE) return undefined;
  if (Atomics.load(new Int32Array(buffer, 0, 1), 0) !== (MAGIC | 0)) return undefined;
  const dv = new DataView(buffer);
  const kind = (Object.keys(Kind) as KindName[]).find((k) => Kind[k] === dv.getUint16(6, true));
  if (!kind) return undefined;
  return { kind, version: dv.getUint16(4, true), creatorPid: dv.getInt32(8, true), extra: dv.getUint32(12, true) };
}

/**
 * The header of an object someone else may still be initialising: waits up to
 * `timeoutMs` for the magic, then checks kind and version.
 */
export function awaitHeader(buffer: SharedArrayBuffer, kind: KindName, name: string, timeoutMs = 2000): Header {
  const start = performance.now();
  for (;;) {
    const magic = buffer.byteLength >= HEADER_SIZE ? Atomics.load(new Int32Array(buffer, 0, 1), 0) : -1;
    if (magic === (MAGIC | 0)) break;
    if (magic !== 0 || performance.now() - start > timeoutMs) {
      throw invalidArgument(`'${name}' is not an interprocess ${kind} (no valid header)`);
    }
    sleepSync(1);
  }
  const h = readHeader(buffer)!;
  if (h.kind !== kind) throw invalidArgument(`'${name}' is an interprocess ${h.kind}, not a ${kind}`);
  if (h.version !== VERSIONS[kind]) {
    throw new IpcError('ERR_LAYOUT_VERSION', { path: name, message: `'${name}' has layout version ${h.version}; this build understands ${VERSIONS[kind]}` });
  }
  return h;
}

export interface NamedObjectOptions {
  /** Bytes of the whole object, header included. */
  size: number;
  /** Permission bits, default 0o600. */
  mode?: number;
  /** true (default): AlreadyExistsError if the name exists; false: open it instead. */
  exclusive?: boolean;
  /** The header's kind-specific word. */
  extra?: number;
}

/**
 * Creates a named object of `kind` (or, with `exclusive: false`, opens the
 * existing one): `init` lays out the object (only when this call created it),
 * then the header is written, then `attach` builds the handle. On failure
 * nothing is left behind: an object this call created is unlinked.
 */
export function createNamed<T>(
  name: string,
  kind: KindName,
  options: NamedObjectOptions,
  init: (buffer: SharedArrayBuffer) => void,
  attach: (shm: SharedMemory, header: Header) => T,
): T {
  const shm = SharedMemory.create(name, { size: options.size, mode: options.mode ?? 0o600, exclusive: options.exclusive ?? true });
  if (!shm.created) return attachNamed(name, kind, shm, attach);
  try {
    init(shm.buffer);
    writeHeader(shm.buffer, kind, options.extra ?? 0);
    return attach(shm, readHeader(shm.buffer)!);
  } catch (err) {
    shm.close();
    SharedMemory.unlink(name);
    throw err;
  }
}

/** Opens the existing named object of `kind` (waiting for a creator still initialising it). */
export function openNamed<T>(name: string, kind: KindName, attach: (shm: SharedMemory, header: Header) => T): T {
  return attachNamed(name, kind, SharedMemory.open(name), attach);
}

function attachNamed<T>(name: string, kind: KindName, shm: SharedMemory, attach: (shm: SharedMemory, header: Header) => T): T {
  try {
    return attach(shm, awaitHeader(shm.buffer, kind, name));
  } catch (err) {
    shm.close();
    throw err;
  }
}
