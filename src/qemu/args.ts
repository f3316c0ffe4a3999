/**
 * QEMU command-line arguments for the devices the host side of this package
 * talks to. Each builder returns an argument array to spread into
 * `spawn('qemu-system-x86_64', [...])`; they check what QEMU would refuse
 * late or silently (sizes that are not powers of two, `share=on`).
 */
import { invalidArgument } from '../errors.js';

const ID = /^[A-Za-z][\w.-]*$/;

function id(value: string, what: string): string {
  if (!ID.test(value)) throw invalidArgument(`${what} must start with a letter and hold letters, digits, '_', '.', '-': got '${value}'`);
  return value;
}

function option(value: string, what: string): string {
  if (value.includes(',')) throw invalidArgument(`QEMU options cannot hold a comma: ${what} '${value}'`);
  return value;
}

/**
 * `-chardev pipe,id=ID,path=P` alone (attach it to a device yourself). QEMU
 * then opens the FIFOs `P.in` and `P.out` (see {@link QemuPipe}).
 *
 * @throws {InvalidArgumentError} An id that is not a letter then letters, digits, '_', '.', '-'; a path with a comma.
 */
export function chardevPipeArgs(chardevId: string, path: string): string[] {
  return ['-chardev', `pipe,id=${id(chardevId, 'chardev id')},path=${option(path, 'path')}`];
}

/**
 * `-chardev pipe` on a serial port: `-serial chardev:ID` (the guest's ttyS1
 * when ttyS0 is the console).
 *
 * @example
 * ```ts
 * import { serialPipeArgs } from 'interprocess/qemu';
 *
 * serialPipeArgs('ser1', '/tmp/guest-serial');
 * // ['-chardev', 'pipe,id=ser1,path=/tmp/guest-serial', '-serial', 'chardev:ser1']
 * ```
 *
 * @throws {InvalidArgumentError} A bad id, or a path with a comma.
 */
export function serialPipeArgs(chardevId: string, path: string): string[] {
  return [...chardevPipeArgs(chardevId, path), '-serial', `chardev:${chardevId}`];
}

/**
 * `-chardev pipe` on a virtio-serial port named `name` (the guest sees
 * /dev/virtio-ports/NAME). Add `-device virtio-serial` once per VM (see
 * virtioSerialBusArgs).
 *
 * @throws {InvalidArgumentError} A bad id, or a path or name with a comma.
 */
export function virtioSerialPortArgs(chardevId: string, path: string, name: string): string[] {
  return [...chardevPipeArgs(chardevId, path), '-device', `virtserialport,chardev=${chardevId},name=${option(name, 'port name')}`];
}

/** `-device virtio-serial`: the bus virtio-serial ports attach to, once per VM. */
export function virtioSerialBusArgs(): string[] {
  return ['-device', 'virtio-serial'];
}

/** Options of {@link ivshmemPlainArgs}. */
export interface IvshmemPlainOptions {
  /** An id for the memory backend (default `ivshmem0`). */
  id?: string;
  /** The POSIX shared memory object's name (`/NAME`, so the file is /dev/shm/NAME), or a file path. */
  name: string;
  /** Bytes: a power of two of at least 4096 (QEMU aborts otherwise); at least the object's size. */
  size: number;
}

function memPath(name: string): string {
  return name.startsWith('/dev/') || name.split('/').length > 2 ? name : `/dev/shm${name}`;
}

function powerOfTwo(size: number): number {
  if (!Number.isSafeInteger(size) || size < 4096 || !Number.isInteger(Math.log2(size))) {
    throw invalidArgument(`an ivshmem size must be a power of two of at least 4096 bytes, got ${size}`);
  }
  return size;
}

/**
 * An `ivshmem-plain` device over a shared memory object (shared with the host
 * and other VMs): `-object memory-backend-file,share=on,...` and `-device
 * ivshmem-plain`. The guest sees the memory as the device's BAR2; no
 * interrupts (for those, {@link ivshmemDoorbellArgs}).
 *
 * @throws {InvalidArgumentError} A size that is not a power of two of at least 4096, a bad id, a name with a comma.
 */
export function ivshmemPlainArgs(o: IvshmemPlainOptions): string[] {
  const mem = id(o.id ?? 'ivshmem0', 'memory backend id');
  return [
    '-object', `memory-backend-file,id=${mem},share=on,mem-path=${option(memPath(o.name), 'name')},size=${powerOfTwo(o.size)}`,
    '-device', `ivshmem-plain,memdev=${mem}`,
  ];
}

/** Options of {@link ivshmemDoorbellArgs}. */
export interface IvshmemDoorbellOptions {
  /** An id for the chardev (default `ivshmem0`). */
  id?: string;
  /** The ivshmem server's Unix socket (it must listen before QEMU starts). */
  socketPath: string;
  /** Interrupt vectors per peer (default 1). */
  vectors?: number;
}

/**
 * An `ivshmem-doorbell` device: memory and per-peer eventfds from an ivshmem
 * server ({@link IvshmemServer}, listening before QEMU starts):
 * `-chardev socket` and `-device ivshmem-doorbell`.
 *
 * @throws {InvalidArgumentError} `vectors` outside 1..1024, a bad id, a socket path with a comma.
 */
export function ivshmemDoorbellArgs(o: IvshmemDoorbellOptions): string[] {
  const chardev = id(o.id ?? 'ivshmem0', 'chardev id');
  const vectors = o.vectors ?? 1;
  if (!Number.isInteger(vectors) || vectors < 1 || vectors > 1024) throw invalidArgument(`vectors must be an integer from 1 to 1024, got ${vectors}`);
  return [
    '-chardev', `socket,id=${chardev},path=${option(o.socketPath, 'socketPath')}`,
    '-device', `ivshmem-doorbell,chardev=${chardev},vectors=${vectors}`,
  ];
}
