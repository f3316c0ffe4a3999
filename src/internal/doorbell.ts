/**
 * Doorbells (native/doorbell.cc): one process binds a name and waits on it
 * with libuv (no thread); any process rings it. Used by the Channel for
 * asynchronous waits: one sleep/wake hand-off, as a Unix socket takes.
 */
import { constants } from 'node:os';
import { native, type NativePoller } from '../native.js';
import { AlreadyExistsError, invalidArgument, systemError } from '../errors.js';
import { abortError, deadlineTimer, signalOf, timeoutError, timeoutOf, type WaitOptions } from './wait.js';

const { EADDRINUSE, ECONNREFUSED, EAGAIN, ENAMETOOLONG } = constants.errno;

function checkName(name: string): void {
  if (Buffer.byteLength(name) === 0 || Buffer.byteLength(name) > native.BELL_MAX_NAME) {
    throw invalidArgument(`a doorbell name takes 1 to ${native.BELL_MAX_NAME} bytes`);
  }
}

/** Rings the doorbell `name`: true if someone has it bound (it will wake), false if nobody does. */
export function ring(name: string): boolean {
  const r = native.bellRing(name); // checks the name's length too (ENAMETOOLONG)
  if (r === -ENAMETOOLONG) checkName(name);
  if (r === 0 || r === -EAGAIN) return true; // EAGAIN: rung already, its queue is full
  if (r === -ECONNREFUSED) return false;
  throw systemError(r, 'sendto', { path: name });
}

export class Doorbell {
  readonly name: string;
  #fd: number;
  #poller: NativePoller | undefined;
  #pending: { resolve(): void; reject(e: Error): void } | undefined;
  #listener: ((err?: Error) => void) | undefined;
  /** The descriptor is closed when this thread ends, if not before (a worker terminated holding it). */
  readonly #closeAtEnd: number;

  private constructor(name: string, fd: number) {
    this.name = name;
    this.#fd = fd;
    this.#closeAtEnd = native.closeAtEnd(fd);
  }

  /** Binds `name`; AlreadyExistsError if another socket has it. */
  static bind(name: string): Doorbell {
    checkName(name);
    const fd = native.bellBind(name);
    if (fd === -EADDRINUSE) throw systemError(fd, 'bind', { path: name, message: `EADDRINUSE: the doorbell '${name}' is already bound, bind` }, AlreadyExistsError);
    if (fd < 0) throw systemError(fd, 'bind', { path: name });
    return new Doorbell(name, fd);
  }

  /** Consumes rings already received; true if there were any. */
  drain(): boolean {
    return native.bellDrain(this.#fd) > 0;
  }

  /**
   * The poller, created on first use; it takes a ring (one datagram) before
   * each call, and calls only when it took one; the call serves the
   * listener, else the pending wait. Rings left queued call again.
   */
  #poll(): NativePoller {
    this.#poller ??= new native.Poller(
      this.#fd,
      (status) => {
        if (status < 0) {
          const err = systemError(status, 'poll', { path: this.name });
          if (this.#listener) this.#listener(err);
          else this.#pending?.reject(err);
        } else if (this.#listener) this.#listener();
        else this.#pending?.resolve();
      },
      true,
    );
    return this.#poller;
  }

  /**
   * Calls `onRing` after each ring, the ring consumed first (rings that
   * queued up meanwhile take one call each at most; never a call without one),
   * until unlisten() or close(): the poll stays armed between rings, which
   * saves re-arming it per wait. `keepAlive` as for a socket's ref().
   */
  listen(onRing: (err?: Error) => void, keepAlive = true): void {
    if (this.#fd < 0) throw invalidArgument('the doorbell is closed');
    if (this.#pending) throw invalidArgument('a doorbell has one waiter at a time');
    this.#listener = onRing;
    const poller = this.#poll();
    poller.start(true, false);
    poller.ref(keepAlive);
  }

  /** Whether the listening poll keeps the event loop alive. */
  keepAlive(on: boolean): void {
    this.#poller?.ref(on);
  }

  unlisten(): void {
    if (!this.#listener) return;
    this.#listener = undefined;
    this.#poller?.stop();
    this.#poller?.ref(true);
  }

  /** Resolves once rung (consuming the rings); one wait at a time. */
  wait(options?: WaitOptions): Promise<void> {
    if (this.#fd < 0) return Promise.reject(invalidArgument('the doorbell is closed'));
    if (this.#pending || this.#listener) return Promise.reject(invalidArgument('a doorbell has one waiter at a time'));
    const timeout = timeoutOf(options);
    const signal = signalOf(options);
    if (signal?.aborted) return Promise.reject(abortError(signal));
    if (this.drain()) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const onAbort = (): void => finish(abortError(signal!));
      const timer = deadlineTimer(timeout, () => finish(timeoutError('recv', { path: this.name })));
      const finish = (err?: Error): void => {
        timer.clear();
        signal?.removeEventListener('abort', onAbort);
        this.#poller?.stop();
        this.#pending = undefined;
        if (err) reject(err);
        else resolve();
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#pending = { resolve: () => finish(), reject: (e) => finish(e) };
      this.#poll().start(true, false);
    });
  }

  /** Unbinds the name and ends a pending wait. */
  close(): void {
    if (this.#fd < 0) return;
    this.#pending?.reject(invalidArgument('the doorbell was closed'));
    this.#listener = undefined;
    this.#poller?.close();
    this.#poller = undefined;
    native.releaseCancel(this.#closeAtEnd);
    native.closeFd(this.#fd);
    this.#fd = -1;
  }
}
