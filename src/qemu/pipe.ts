/**
 * The host end of QEMU's `-chardev pipe,id=ID,path=P`. User documentation is
 * on {@link QemuPipe}.
 *
 * QEMU opens two FIFOs, `P.in` (the host writes, the guest reads) and `P.out`
 * (the guest writes, the host reads), both O_RDWR, when it starts, and fails
 * if they do not exist. Because QEMU holds each end for reading and writing,
 * the host learns that QEMU is there by a non-blocking open succeeding (a
 * writer on `P.in` needs a reader, which QEMU is), and learns that it left by
 * end-of-file on `P.out` (QEMU was its only writer). So `connect()` waits for
 * QEMU without blocking anything, `ended` settles when QEMU exits, and the
 * same FIFOs serve the next QEMU after `connect()` again. A guest reboot
 * (QEMU keeps running) is invisible here: the stream goes on.
 */
import { createInterface } from 'node:readline';
import { closeSync, constants as fsc, lstatSync, unlinkSync } from 'node:fs';
import { mkfifoSync, openFifoFd, openFifoReader, openFifoWriter } from '../fifo.js';
import type { PipeReader, PipeWriter } from '../pipe.js';
import { FrameReader, writeFrame, type FramePayload, type FramingOptions } from '../framing.js';
import { AlreadyExistsError, IpcError, invalidArgument } from '../errors.js';
import { closedError } from '../internal/handle.js';
import { chardevPipeArgs } from './args.js';
import { pollUntil, timeoutError, timeoutOf, type WaitOptions } from '../internal/wait.js';
import * as v from '../internal/validate.js';

/** Options of {@link QemuPipe.create}. */
export interface QemuPipeOptions {
  /** Permission bits of both FIFOs, default 0o600 (QEMU must be able to open them). */
  mode?: number;
  /** true (default): AlreadyExistsError if `P.in` or `P.out` exists; false: use existing FIFOs. */
  exclusive?: boolean;
}

/** True when a non-blocking open for writing succeeds: someone (QEMU) has `path` open for reading. */
function hasReader(path: string): boolean {
  const fd = openFifoFd(path, fsc.O_WRONLY);
  if (fd === undefined) return false;
  closeSync(fd); // opened by fs: closed by fs
  return true;
}

/**
 * The host end of QEMU's `-chardev pipe,id=ID,path=P`: QEMU opens two FIFOs,
 * `P.in` (the host writes, the guest reads) and `P.out` (the guest writes,
 * the host reads), when it starts, and refuses to start if they do not exist.
 * The guest sees the character device as a serial port or a virtio-serial
 * port, whichever it is attached to.
 *
 * Lifecycle: {@link QemuPipe.create} makes the two FIFOs (`mkfifo`) before
 * QEMU starts; {@link QemuPipe.connect} waits, without blocking anything,
 * until QEMU has opened them and opens the host ends; {@link QemuPipe.ended}
 * settles when QEMU exits, after which `connect()` again serves the next
 * QEMU. {@link QemuPipe.close} closes the host ends, {@link QemuPipe.unlink}
 * removes the FIFOs. A guest reboot (QEMU keeps running) is invisible here:
 * the stream goes on.
 *
 * @example
 * ```ts
 * import { spawn } from 'node:child_process';
 * import { QemuPipe } from 'interprocess/qemu';
 *
 * const machine = ['-nographic', '-kernel', 'bzImage', '-initrd', 'initrd.img'];   // your VM; ttyS0 is the console
 * const pipe = QemuPipe.create('/tmp/guest-serial');
 * spawn('qemu-system-x86_64', [...machine, ...pipe.chardevArgs('ser1'), '-serial', 'chardev:ser1']);
 * await pipe.connect({ timeout: 10_000 });
 * await pipe.writeLine('hello, guest');             // the guest reads it on /dev/ttyS1
 * for await (const line of pipe.lines()) console.log(`guest: ${line}`);   // until QEMU exits
 * pipe.close();
 * pipe.unlink();
 * ```
 */
export class QemuPipe implements AsyncDisposable {
  /** The `path=` QEMU is given. */
  readonly path: string;
  /** The FIFO the host writes and the guest reads. */
  readonly inPath: string;
  /** The FIFO the guest writes and the host reads. */
  readonly outPath: string;
  #writer: PipeWriter | undefined;
  #reader: PipeReader | undefined;
  #ended: Promise<void> = Promise.resolve();
  #closed = false;

  private constructor(path: string) {
    this.path = path;
    this.inPath = `${path}.in`;
    this.outPath = `${path}.out`;
  }

  /**
   * Makes the two FIFOs `path.in` and `path.out` (before QEMU starts: it
   * refuses to start without them). If the second cannot be made, the first
   * is removed again.
   *
   * @throws {AlreadyExistsError} EEXIST: a FIFO exists (and `exclusive` is not false).
   * @throws {InvalidArgumentError} A bad path or mode, or (with `exclusive: false`) something that is not a FIFO is in the way.
   */
  static create(path: string, options: QemuPipeOptions = {}): QemuPipe {
    const p = v.path(path, 'path');
    const pipe = new QemuPipe(p);
    const mode = v.mode(options.mode, 0o600);
    const made: string[] = [];
    try {
      for (const f of [pipe.inPath, pipe.outPath]) {
        try {
          mkfifoSync(f, mode);
          made.push(f);
        } catch (err) {
          if (!(err instanceof AlreadyExistsError) || (options.exclusive ?? true)) throw err;
          if (!lstatSync(f).isFIFO()) throw invalidArgument(`'${f}' exists and is not a FIFO`);
        }
      }
    } catch (err) {
      for (const f of made) unlinkSync(f);
      throw err;
    }
    return pipe;
  }

  /** QEMU arguments for this pipe as character device `id` (attach it with e.g. `-serial chardev:ID`). */
  chardevArgs(id: string): string[] {
    return chardevPipeArgs(id, this.path);
  }

  /**
   * Opens the host ends once QEMU has opened its ends (waiting for it to start,
   * without blocking the event loop); `timeout` and `signal` as everywhere.
   * After QEMU exits (`ended`), call it again for the next QEMU.
   *
   * @throws {TimeoutError} ETIMEDOUT: QEMU did not open the FIFOs within `timeout` ms.
   * @throws {AbortError} `signal` aborted.
   * @throws {InvalidArgumentError} Connected already (and QEMU has not exited).
   * @throws {IpcError} EBADF: the pipe is closed.
   */
  async connect(options?: WaitOptions): Promise<this> {
    if (this.#closed) throw closedError('QEMU pipe', { path: this.path });
    if (this.#writer && !this.#writer.destroyed) throw invalidArgument(`'${this.path}' is connected already`);
    this.#drop();
    // One deadline for both waits: `timeout` is for the whole connect.
    const deadline = performance.now() + timeoutOf(options);
    const writer = await openFifoWriter(this.inPath, options);
    try {
      // QEMU opens P.in, then P.out: wait for the second too, or the reader below would see EOF.
      const rest = { signal: options?.signal, timeout: Math.max(0, deadline - performance.now()) };
      await pollUntil(() => (hasReader(this.outPath) ? true : undefined), rest, () => timeoutError('open', { path: this.outPath }));
    } catch (err) {
      writer.destroy();
      throw err;
    }
    const reader = openFifoReader(this.outPath);
    writer.on('error', () => {}); // EPIPE once QEMU is gone: `ended` tells
    this.#ended = new Promise<void>((resolve) => {
      reader.once('close', () => resolve());
      reader.once('end', () => resolve());
    });
    void this.#ended.then(() => writer.destroy());
    this.#writer = writer;
    this.#reader = reader;
    return this;
  }

  /** Settles when QEMU closed its end (it exited): end of stream, nothing more comes. */
  get ended(): Promise<void> {
    return this.#ended;
  }

  /**
   * What the guest writes: the stream of `P.out`; it ends when QEMU exits.
   *
   * @throws {IpcError} ERR_NOT_CONNECTED: before connect().
   */
  get readable(): PipeReader {
    if (!this.#reader) throw notConnected(this.path);
    return this.#reader;
  }

  /**
   * What the guest reads: the stream of `P.in`.
   *
   * @throws {IpcError} ERR_NOT_CONNECTED: before connect().
   */
  get writable(): PipeWriter {
    if (!this.#writer) throw notConnected(this.path);
    return this.#writer;
  }

  /**
   * Lines the guest writes (without their end of line, `\r\n` or `\n`), until QEMU exits.
   *
   * @throws {IpcError} ERR_NOT_CONNECTED: before connect().
   */
  lines(): AsyncIterable<string> {
    return createInterface({ input: this.readable, crlfDelay: Infinity });
  }

  /**
   * Writes `text` and a newline; resolves once handed to the FIFO.
   *
   * @throws {IpcError} ERR_NOT_CONNECTED: before connect() (thrown, not a rejection).
   */
  writeLine(text: string): Promise<void> {
    const w = this.writable;
    return new Promise((resolve, reject) => w.write(`${text}\n`, (err) => (err ? reject(err) : resolve())));
  }

  /**
   * Length-prefixed messages (docs/framing.md) the guest writes, as a {@link FrameReader}.
   *
   * @throws {IpcError} ERR_NOT_CONNECTED: before connect().
   */
  frames(options?: FramingOptions): FrameReader {
    return new FrameReader(this.readable, options);
  }

  /**
   * Writes one length-prefixed message for the guest ({@link writeFrame} on {@link QemuPipe.writable}).
   *
   * @throws {TooLargeError} EMSGSIZE: the payload exceeds `maxFrameSize` (nothing written).
   * @throws {IpcError} ERR_NOT_CONNECTED: before connect().
   */
  writeFrame(payload: FramePayload, options?: FramingOptions): Promise<void> {
    return writeFrame(this.writable, payload, options);
  }

  #drop(): void {
    this.#writer?.destroy();
    this.#reader?.destroy();
    this.#writer = this.#reader = undefined;
  }

  /** Closes the host ends (QEMU sees nothing: it holds its own). The FIFOs stay until unlink(). */
  close(): void {
    this.#closed = true;
    this.#drop();
  }

  /** Removes the FIFOs. Only when no QEMU will open them again. */
  unlink(): void {
    for (const f of [this.inPath, this.outPath]) {
      try {
        unlinkSync(f);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
    }
  }

  /** Calls {@link QemuPipe.close} (the FIFOs stay), for `await using`. */
  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
  }
}

function notConnected(path: string): IpcError {
  return new IpcError('ERR_NOT_CONNECTED', { path, message: `QEMU pipe '${path}' is not connected: await connect() first` });
}
