/**
 * An optional launcher: starts QEMU with the host-side devices of this
 * package wired in and gives back the host ends, connected. The machine
 * itself (kernel, disks, accelerator) is the caller's `args`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { QemuPipe } from './pipe.js';
import { ivshmemPlainArgs, serialPipeArgs, virtioSerialBusArgs, virtioSerialPortArgs, type IvshmemPlainOptions } from './args.js';
import { invalidArgument } from '../errors.js';
import { abortError, signalOf, timeoutOf, type WaitOptions } from '../internal/wait.js';

/** Options of {@link launchQemu}. */
export interface QemuLaunchOptions {
  /** The QEMU binary (default `qemu-system-x86_64`, looked up on PATH). */
  binary?: string;
  /** The machine: accelerator, memory, kernel or disks, console... */
  args: string[];
  /** Serial ports over `-chardev pipe`, in order (the guest's ttyS0, ttyS1... after any -serial in args): id -> FIFO base path. */
  serialPipes?: Record<string, string>;
  /** virtio-serial ports: id -> { path, name } (the guest's /dev/virtio-ports/NAME). */
  virtioPorts?: Record<string, {
    /** The FIFO base path (`path.in`, `path.out`). */
    path: string;
    /** The port name the guest sees (/dev/virtio-ports/NAME). */
    name: string;
  }>;
  /** ivshmem-plain devices, in PCI order. */
  ivshmem?: IvshmemPlainOptions[];
  /** How long to wait for QEMU to open the FIFOs (default 10 s), and an AbortSignal. */
  connect?: WaitOptions;
}

/** How QEMU ended, as a ChildProcess 'exit' event tells. */
export interface QemuExit {
  /** The exit code, or null if a signal ended it (or it never started). */
  code: number | null;
  /** The signal that ended it, or null. */
  signal: NodeJS.Signals | null;
}

/** A running QEMU, as {@link launchQemu} gives it; `await using` stops it. */
export interface LaunchedQemu extends AsyncDisposable {
  /** The QEMU process (stdin and stdout ignored, stderr collected into `stderr`). */
  child: ChildProcess;
  /** The connected host ends, by id (serial pipes and virtio ports alike). */
  pipes: Record<string, QemuPipe>;
  /** Settles when QEMU exits (with what it printed on standard error). */
  exited: Promise<QemuExit & {
    /** What QEMU wrote on standard error. */
    stderr: string;
  }>;
  /** Ends QEMU (SIGTERM, then SIGKILL after 2 s), closes the host ends and removes the FIFOs. */
  stop(): Promise<QemuExit & {
    /** What QEMU wrote on standard error. */
    stderr: string;
  }>;
}

/**
 * Starts QEMU with the devices wired in: makes the FIFOs of every serial and
 * virtio-serial pipe ({@link QemuPipe.create}), adds their arguments and the
 * ivshmem devices' to `args`, spawns QEMU, and resolves once every pipe is
 * connected. If QEMU exits first, or the pipes do not connect in time, QEMU is
 * stopped, the FIFOs removed, and the promise rejects.
 *
 * @example
 * ```ts
 * import { launchQemu, findGuestAssets } from 'interprocess/qemu';
 *
 * const assets = findGuestAssets();
 * if (!assets.ok) throw new Error(`missing ${assets.missing.join(', ')}`);
 * const vm = await launchQemu({
 *   // initrd.img: written from buildInitramfs()
 *   args: ['-nographic', '-m', '256', '-kernel', assets.kernel, '-initrd', 'initrd.img', '-append', 'console=ttyS0'],
 *   serialPipes: { ser1: '/tmp/vm-ser1' },          // the guest's ttyS1 (ttyS0 is the console)
 * });
 * await vm.pipes.ser1.writeLine('hello, guest');
 * const { code, stderr } = await vm.stop();
 * ```
 *
 * @throws {Error} QEMU exited before opening its pipes (the message holds its stderr).
 * @throws {TimeoutError} ETIMEDOUT: the pipes did not connect within `connect.timeout` (default 10 s).
 * @throws {AbortError} `connect.signal` aborted (already aborted: before anything is made or started).
 * @throws {AlreadyExistsError} EEXIST: a pipe's FIFO exists already.
 * @throws {InvalidArgumentError} Bad arguments (an id used twice, a bad ivshmem size...).
 */
export async function launchQemu(options: QemuLaunchOptions): Promise<LaunchedQemu> {
  if (!Array.isArray(options.args)) throw invalidArgument('args must be an array of QEMU arguments');
  // Options are checked, and an already aborted signal honoured, before any
  // FIFO is made or QEMU started: as in fs/promises, an aborted call touches nothing.
  timeoutOf(options.connect);
  const outer = signalOf(options.connect);
  if (outer?.aborted) throw abortError(outer);
  const pipes: Record<string, QemuPipe> = {};
  const args = [...options.args];
  const made: QemuPipe[] = [];
  const cleanup = (): void => {
    for (const p of made) {
      p.close();
      p.unlink();
    }
  };
  try {
    for (const [id, path] of Object.entries(options.serialPipes ?? {})) {
      const p = QemuPipe.create(path);
      made.push(p);
      pipes[id] = p;
      args.push(...serialPipeArgs(id, path));
    }
    const ports = Object.entries(options.virtioPorts ?? {});
    if (ports.length) args.push(...virtioSerialBusArgs());
    for (const [id, { path, name }] of ports) {
      if (pipes[id]) throw invalidArgument(`id '${id}' is used twice`);
      const p = QemuPipe.create(path);
      made.push(p);
      pipes[id] = p;
      args.push(...virtioSerialPortArgs(id, path, name));
    }
    (options.ivshmem ?? []).forEach((m, i) => args.push(...ivshmemPlainArgs({ ...m, id: m.id ?? `ivshmem${i}` })));
  } catch (err) {
    cleanup();
    throw err;
  }

  const child = spawn(options.binary ?? 'qemu-system-x86_64', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<QemuExit & { stderr: string }>((resolve) => {
    child.once('error', (err) => {
      stderr += String(err);
      resolve({ code: null, signal: null, stderr });
    });
    child.once('exit', (code, signal) => resolve({ code, signal, stderr }));
  });
  const stop = async (): Promise<QemuExit & { stderr: string }> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 2000);
      await exited;
      clearTimeout(timer);
    }
    cleanup();
    return exited;
  };

  // Wait for the pipes, unless QEMU exits first (bad arguments, say).
  const ac = new AbortController();
  const onOuter = (): void => ac.abort(outer?.reason);
  outer?.addEventListener('abort', onOuter, { once: true });
  try {
    await Promise.race([
      Promise.all(made.map((p) => p.connect({ timeout: options.connect?.timeout ?? 10_000, signal: ac.signal }))),
      exited.then((e) => {
        throw new Error(`QEMU exited (${e.signal ?? `code ${e.code}`}) before opening its pipes: ${e.stderr.trim()}`);
      }),
    ]);
  } catch (err) {
    ac.abort();
    await stop();
    throw err;
  } finally {
    outer?.removeEventListener('abort', onOuter);
  }
  return { child, pipes, exited, stop, [Symbol.asyncDispose]: async () => void (await stop()) };
}
