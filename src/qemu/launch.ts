/**
 * An optional launcher: starts QEMU with the host-side devices of this
 * package wired in and gives back the host ends, connected. The machine
 * itself (kernel, disks, accelerator) is the caller's `args`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { QemuPipe } from './pipe.js';
import { ivshmemPlainArgs, serialPipeArgs, virtioSerialBusArgs, virtioSerialPortArgs, type IvshmemPlainOptions } from './args.js';
import { invalidArgument } from '../errors.js';
import type { WaitOptions } from '../internal/wait.js';

export interface QemuLaunchOptions {
  /** The QEMU binary (default `qemu-system-x86_64`, looked up on PATH). */
  binary?: string;
  /** The machine: accelerator, memory, kernel or disks, console... */
  args: string[];
  /** Serial ports over `-chardev pipe`, in order (the guest's ttyS0, ttyS1... after any -serial in args): id -> FIFO base path. */
  serialPipes?: Record<string, string>;
  /** virtio-serial ports: id -> { path, name } (the guest's /dev/virtio-ports/NAME). */
  virtioPorts?: Record<string, { path: string; name: string }>;
  /** ivshmem-plain devices, in PCI order. */
  ivshmem?: IvshmemPlainOptions[];
  /** How long to wait for QEMU to open the FIFOs (default 10 s), and an AbortSignal. */
  connect?: WaitOptions;
}

export interface QemuExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface LaunchedQemu extends AsyncDisposable {
  child: ChildProcess;
  /** The connected host ends, by id (serial pipes and virtio ports alike). */
  pipes: Record<string, QemuPipe>;
  /** Settles when QEMU exits (with what it printed on standard error). */
  exited: Promise<QemuExit & { stderr: string }>;
  /** Ends QEMU (SIGTERM, then SIGKILL after 2 s), closes the host ends and removes the FIFOs. */
  stop(): Promise<QemuExit & { stderr: string }>;
}

/** Starts QEMU with the devices wired in; resolves once every pipe is connected. */
export async function launchQemu(options: QemuLaunchOptions): Promise<LaunchedQemu> {
  if (!Array.isArray(options.args)) throw invalidArgument('args must be an array of QEMU arguments');
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
  const outer = options.connect?.signal;
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
