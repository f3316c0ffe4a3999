/**
 * `interprocess/qemu`: the host side of IPC with QEMU guests: FIFOs
 * (`-chardev pipe`), shared memory (`ivshmem-plain`) and doorbells
 * (`ivshmem-doorbell` and the ivshmem server protocol). Guide: docs/qemu.md.
 *
 * @module interprocess/qemu
 */
export { QemuPipe, type QemuPipeOptions } from './pipe.js';
export {
  chardevPipeArgs,
  serialPipeArgs,
  virtioSerialPortArgs,
  virtioSerialBusArgs,
  ivshmemPlainArgs,
  ivshmemDoorbellArgs,
  type IvshmemPlainOptions,
  type IvshmemDoorbellOptions,
} from './args.js';
export { IvshmemServer, IvshmemPeer, IVSHMEM_PROTOCOL_VERSION, type IvshmemServerOptions } from './ivshmem.js';
export {
  CpioWriter,
  buildInitramfs,
  initramfsBase,
  initramfsFiles,
  findGuestAssets,
  readGuestManifest,
  isStaticExecutable,
  type InitramfsOptions,
  type InitramfsBaseOptions,
  type InitramfsFile,
  type GuestAssets,
  type GuestAssetsMissing,
  type GuestAssetsOptions,
  type GuestManifest,
} from './initramfs.js';
export { launchQemu, type QemuLaunchOptions, type LaunchedQemu, type QemuExit } from './launch.js';
