/**
 * POSIX message queues: mq_open, mq_send, mq_receive, mq_getattr, mq_unlink.
 *
 * On Linux a queue descriptor is a file descriptor. The queue is opened
 * O_NONBLOCK and waiting is libuv polling that descriptor: a pending receive,
 * or a send on a full queue, costs no thread at all, however many there are.
 * Waiting calls on one handle are served in the order they were made, so
 * sends from one handle keep their order, and a receive that timed out or was
 * aborted has taken nothing: messages are only taken for a receiver still
 * waiting.
 *
 * /dev/mqueue need not be mounted: mq_open works without it.
 */
import { closeSync, constants as fsc, openSync, readFileSync } from 'node:fs';
import { constants } from 'node:os';
import { native, type NativePoller } from '../native.js';
import { check, invalidArgument, unwrap, systemError, IpcError, InvalidArgumentError, TooLargeError } from '../errors.js';
import { closedError } from '../internal/handle.js';
import { abortError, deadlineTimer, signalOf, timeoutError, timeoutOf, type DeadlineTimer, type WaitOptions } from '../internal/wait.js';
import * as v from '../internal/validate.js';
import { procLimit } from '../internal/limits.js';

const { EAGAIN, EBADF, EBUSY, EEXIST, EINTR, EINVAL, EMFILE, ENOENT, EMSGSIZE } = constants.errno;

/** The kernel's NAME_MAX for queue names (after the leading '/'). */
export const MAX_NAME_BYTES = 255;
/** Priorities run from 0 to MQ_PRIO_MAX - 1 (Linux: 32768). */
export const MQ_PRIO_MAX = 32768;
/** Linux's HARD_MSGMAX and HARD_MSGSIZEMAX: the ceiling even with CAP_SYS_RESOURCE. */
const HARD_MSGMAX = 65536;
const HARD_MSGSIZEMAX = 16 * 1024 * 1024;

/** How a handle opens a queue: O_RDONLY ('read'), O_WRONLY ('write') or O_RDWR ('readwrite'). */
export type Access = 'read' | 'write' | 'readwrite';

/** Options of {@link MessageQueue.create}. */
export interface CreateOptions {
  /** Permission bits, default 0o600 (the umask applies). */
  mode?: number;
  /** true (default): AlreadyExistsError if the name exists; false: open it instead. */
  exclusive?: boolean;
  /**
   * mq_maxmsg: capacity in messages (default: /proc/sys/fs/mqueue/msg_default).
   * Past /proc/sys/fs/mqueue/msg_max only with CAP_SYS_RESOURCE.
   */
  maxMessages?: number;
  /** mq_msgsize: largest message in bytes (default: /proc/sys/fs/mqueue/msgsize_default). */
  messageSize?: number;
  /** How this handle opens the queue (default 'readwrite'). */
  access?: Access;
}

/** What {@link MessageQueue.attributes} reports (`struct mq_attr`). */
export interface Attributes {
  /** mq_maxmsg */
  maxMessages: number;
  /** mq_msgsize */
  messageSize: number;
  /** mq_curmsgs: messages in the queue now. */
  currentMessages: number;
}

/** A received message. */
export interface Message {
  /** The message's bytes (a fresh Buffer). */
  data: Buffer;
  /** Its priority, 0 to MQ_PRIO_MAX - 1. */
  priority: number;
}

/** What a message can be given as: bytes, any typed array or DataView, or a string (sent as UTF-8). */
export type Payload = Uint8Array | ArrayBufferView | string;

/**
 * mq_open's EINVAL, once the name has been checked, means the attributes are
 * past the limits; say which, and which limit.
 */
function attributesError(name: string, maxmsg: number, msgsize: number): IpcError {
  const procMax = procLimit('/proc/sys/fs/mqueue/msg_max', 10);
  const procSize = procLimit('/proc/sys/fs/mqueue/msgsize_max', 8192);
  const over = (what: string, n: number, proc: string, procValue: number, hard: number): string | undefined =>
    n > hard ? `${what} ${n} exceeds the kernel's hard limit (${hard})`
      : n > procValue ? `${what} ${n} exceeds ${proc} (${procValue})` : undefined;
  const parts = [
    over('maxMessages', maxmsg, '/proc/sys/fs/mqueue/msg_max', procMax, HARD_MSGMAX),
    over('messageSize', msgsize, '/proc/sys/fs/mqueue/msgsize_max', procSize, HARD_MSGSIZEMAX),
  ].filter((p): p is string => p !== undefined);
  if (parts.length === 0) return systemError(-EINVAL, 'mq_open', { path: name });
  const soft = maxmsg <= HARD_MSGMAX && msgsize <= HARD_MSGSIZEMAX ? ' (only a process with CAP_SYS_RESOURCE may go past it, up to the hard limits)' : '';
  return new InvalidArgumentError('EINVAL', {
    errno: -EINVAL,
    syscall: 'mq_open',
    path: name,
    message: `EINVAL: ${parts.join('; ')}${soft}, mq_open '${name}'`,
  });
}

/** The soft RLIMIT_MSGQUEUE of this process, from /proc/self/limits. */
function msgqueueRlimit(): string | undefined {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max msgqueue size'));
    return line?.slice('Max msgqueue size'.length).trim().split(/\s+/)[0];
  } catch {
    return undefined;
  }
}

/**
 * mq_open gives EMFILE both when the process is out of descriptors and when
 * the new queue would take the user's queues past RLIMIT_MSGQUEUE. If a
 * descriptor can still be had, it was the latter: say so.
 */
function emfileError(name: string, maxmsg: number, msgsize: number): IpcError {
  try {
    closeSync(openSync('/dev/null', 'r'));
  } catch {
    return systemError(-EMFILE, 'mq_open', { path: name });
  }
  const limit = msgqueueRlimit();
  return new TooLargeError('EMFILE', {
    errno: -EMFILE,
    syscall: 'mq_open',
    path: name,
    message: `EMFILE: a queue of ${maxmsg} messages of ${msgsize} bytes would take this user's message queues past RLIMIT_MSGQUEUE` +
      ` (${limit === undefined ? 'see ulimit -q' : limit === 'unlimited' ? 'unlimited' : `${limit} bytes`}), mq_open '${name}'`,
  });
}

function accessFlags(access: unknown): number {
  switch (access ?? 'readwrite') {
    case 'read': return fsc.O_RDONLY;
    case 'write': return fsc.O_WRONLY;
    case 'readwrite': return fsc.O_RDWR;
    default: throw invalidArgument(`access must be 'read', 'write' or 'readwrite', got ${String(access)}`);
  }
}

interface Wait {
  timeout: number;
  signal: AbortSignal | undefined;
}

/** Checks the wait options; throws for bad ones, or an AbortError if the signal is already aborted. */
function waitOf(options: WaitOptions | undefined): Wait {
  const timeout = timeoutOf(options);
  const signal = signalOf(options);
  if (signal?.aborted) throw abortError(signal);
  return { timeout, signal };
}

interface Waiter<T> {
  resolve(value: T): void;
  reject(err: Error): void;
  cleanup(): void;
}

interface SendWaiter extends Waiter<void> {
  bytes: Uint8Array;
  priority: number;
}

/**
 * A POSIX message queue (`mq_open`, `mq_send`, `mq_receive`, `mq_getattr`,
 * `mq_unlink`): whole messages with a priority, the highest priority (then
 * the oldest) received first, shared with C programs by name.
 *
 * Lifecycle: {@link MessageQueue.create} makes a queue (exclusive by default;
 * `maxMessages` and `messageSize` are fixed then), {@link MessageQueue.open}
 * opens an existing one; {@link MessageQueue.close} closes this handle's
 * descriptor, {@link MessageQueue.unlink} (`mq_unlink`) removes the name (the
 * queue lives on until every descriptor is closed).
 *
 * Waiting: {@link MessageQueue.send} and {@link MessageQueue.receive} wait
 * by polling the queue descriptor from the event loop (no thread, however
 * many are pending), with a timeout and an AbortSignal; the async calls of
 * one handle are served in call order, and one that times out or is aborted
 * has taken or sent nothing. `trySend` / `tryReceive` never wait;
 * `sendSync` / `receiveSync` block the calling thread (`poll()` on the
 * descriptor), and are refused (EBUSY) while async calls of the same kind
 * wait on the handle. /dev/mqueue need not be mounted.
 *
 * @example
 * ```ts
 * import { posix } from 'interprocess';
 *
 * const mq = posix.MessageQueue.create('/my-queue', { maxMessages: 10, messageSize: 256 });
 * await mq.send('urgent', 5);                       // priority 5
 * await mq.send('routine');                         // priority 0
 *
 * // another process (or C with mq_open + mq_receive):
 * const rx = posix.MessageQueue.open('/my-queue', { access: 'read' });
 * const { data, priority } = await rx.receive({ timeout: 1000 });
 * console.log(`${data} (priority ${priority})`);   // urgent (priority 5)
 * rx.close();
 *
 * mq.close();
 * posix.MessageQueue.unlink('/my-queue');
 * ```
 */
export class MessageQueue implements Disposable {
  /** The queue's name, e.g. '/my-queue'. */
  readonly name: string;
  /** mq_msgsize, fixed for the queue's life. */
  readonly messageSize: number;
  /** mq_maxmsg, fixed for the queue's life. */
  readonly maxMessages: number;
  /** True if this handle created the queue. */
  readonly created: boolean;
  #fd: number;
  #poller: NativePoller | undefined;
  readonly #receivers: Array<Waiter<Message>> = [];
  readonly #senders: SendWaiter[] = [];
  readonly #access: Access;

  private constructor(name: string, fd: number, created: boolean, access: Access | undefined) {
    this.name = name;
    this.#fd = fd;
    this.created = created;
    this.#access = access ?? 'readwrite';
    const a = unwrap(native.mqGetattr(fd), 'mq_getattr', { path: name });
    this.messageSize = a.msgsize;
    this.maxMessages = a.maxmsg;
  }

  /**
   * Creates a queue (`mq_open` with O_CREAT | O_EXCL); with `exclusive:
   * false`, opens it instead if the name exists (its attributes stay as they
   * are). Giving only one of `maxMessages` and `messageSize` takes the other
   * from the system defaults.
   *
   * @throws {AlreadyExistsError} EEXIST: the name exists (and `exclusive` is not false).
   * @throws {InvalidArgumentError} A bad name or option, or EINVAL: `maxMessages` or
   *   `messageSize` past the limits in /proc/sys/fs/mqueue (the message says which).
   * @throws {TooLargeError} EMFILE: the queue would take this user's queues past RLIMIT_MSGQUEUE.
   * @throws {PermissionError} EACCES: an existing queue's mode forbids the access asked for.
   */
  static create(name: string, options: CreateOptions = {}): MessageQueue {
    v.posixName(name, 'message queue', MAX_NAME_BYTES);
    const mode = v.mode(options.mode, 0o600);
    const exclusive = v.bool(options.exclusive, 'exclusive', true);
    const access = accessFlags(options.access);
    const maxmsg = options.maxMessages === undefined ? 0 : v.intInRange(options.maxMessages, 'maxMessages', 1, 0x7fffffff);
    const msgsize = options.messageSize === undefined ? 0 : v.intInRange(options.messageSize, 'messageSize', 1, 0x7fffffff);
    if ((maxmsg === 0) !== (msgsize === 0)) {
      // mq_open takes both attributes or neither; fill the other from the defaults.
      const defaults = MessageQueue.#defaults();
      return MessageQueue.create(name, { ...options, maxMessages: maxmsg || defaults.maxmsg, messageSize: msgsize || defaults.msgsize });
    }
    const where = { path: name };
    // O_EXCL first, then a plain open: `created` must tell whether this call made the queue.
    for (let attempt = 0; ; attempt++) {
      let fd = native.mqOpen(name, access | fsc.O_CREAT | fsc.O_EXCL, mode, maxmsg, msgsize);
      if (fd >= 0) return new MessageQueue(name, fd, true, options.access);
      if (exclusive || fd !== -EEXIST) {
        if (fd === -EINVAL && maxmsg > 0) throw attributesError(name, maxmsg, msgsize);
        if (fd === -EMFILE) {
          const size = maxmsg > 0 ? { maxmsg, msgsize } : MessageQueue.#defaults();
          throw emfileError(name, size.maxmsg, size.msgsize);
        }
        check(fd, 'mq_open', where);
      }
      fd = native.mqOpen(name, access, 0, 0, 0);
      if (fd === -ENOENT /* unlinked meanwhile */ && attempt < 3) continue;
      return new MessageQueue(name, check(fd, 'mq_open', where), false, options.access);
    }
  }

  /** What mq_open uses without attributes: min(default, max) of each. */
  static #defaults(): { maxmsg: number; msgsize: number } {
    return {
      maxmsg: Math.min(procLimit('/proc/sys/fs/mqueue/msg_default', 10), procLimit('/proc/sys/fs/mqueue/msg_max', 10)),
      msgsize: Math.min(procLimit('/proc/sys/fs/mqueue/msgsize_default', 8192), procLimit('/proc/sys/fs/mqueue/msgsize_max', 8192)),
    };
  }

  /**
   * Opens an existing queue (`mq_open` without O_CREAT), for `access`
   * (default 'readwrite').
   *
   * @throws {NotFoundError} ENOENT: no queue by that name.
   * @throws {PermissionError} EACCES: the queue's mode forbids that access.
   */
  static open(name: string, options: { access?: Access } = {}): MessageQueue {
    v.posixName(name, 'message queue', MAX_NAME_BYTES);
    const fd = check(native.mqOpen(name, accessFlags(options.access), 0, 0, 0), 'mq_open', { path: name });
    return new MessageQueue(name, fd, false, options.access);
  }

  /**
   * Removes the name (`mq_unlink`); the queue lives on until every descriptor is closed.
   *
   * @throws {NotFoundError} ENOENT: no queue by that name.
   */
  static unlink(name: string): void {
    v.posixName(name, 'message queue', MAX_NAME_BYTES);
    check(native.mqUnlink(name), 'mq_unlink', { path: name });
  }

  get #where(): { path: string } {
    return { path: this.name };
  }

  #open(): void {
    if (this.#fd < 0) throw closedError('message queue handle', this.#where);
  }

  /** The queue descriptor (a file descriptor on Linux), -1 once closed. */
  get fd(): number {
    return this.#fd;
  }

  /** Whether {@link MessageQueue.close} has been called. */
  get closed(): boolean {
    return this.#fd < 0;
  }

  /**
   * `mq_getattr`: the queue's capacity, message size, and messages in it now.
   *
   * @throws {IpcError} EBADF: the handle is closed.
   */
  attributes(): Attributes {
    this.#open();
    const a = unwrap(native.mqGetattr(this.#fd), 'mq_getattr', this.#where);
    return { maxMessages: a.maxmsg, messageSize: a.msgsize, currentMessages: a.curmsgs };
  }

  #sendArgs(data: unknown, priority: unknown): [Uint8Array, number] {
    this.#open();
    const bytes = v.messageBytes(data);
    const prio = priority === undefined ? 0 : v.intInRange(priority, 'priority', 0, MQ_PRIO_MAX - 1);
    if (bytes.byteLength > this.messageSize) {
      throw new TooLargeError('EMSGSIZE', {
        errno: -EMSGSIZE,
        syscall: 'mq_send',
        ...this.#where,
        message: `EMSGSIZE: message of ${bytes.byteLength} bytes exceeds the queue's message size (${this.messageSize}), mq_send '${this.name}'`,
      });
    }
    return [bytes, prio];
  }

  /** The kernel's EBADF for a call the handle's access mode forbids, said plainly. */
  #accessError(syscall: string): IpcError {
    const only = this.#access === 'read' ? 'receiving' : 'sending';
    return new IpcError('EBADF', {
      errno: -EBADF,
      syscall,
      ...this.#where,
      message: `EBADF: bad file descriptor: the handle was opened for ${only} only (access '${this.#access}'), ${syscall} '${this.name}'`,
    });
  }

  #trySendRaw(bytes: Uint8Array, prio: number): boolean {
    const r = native.mqSend(this.#fd, bytes, prio);
    if (r === -EAGAIN) return false;
    if (r === -EBADF && this.#access === 'read') throw this.#accessError('mq_send');
    check(r, 'mq_send', this.#where);
    return true;
  }

  /**
   * `mq_send` without waiting: false if the queue is full (or async sends of
   * this handle are still waiting: they go first).
   *
   * @param priority 0 (default) to MQ_PRIO_MAX - 1; higher is received first.
   * @throws {TooLargeError} EMSGSIZE: the message is longer than {@link MessageQueue.messageSize}.
   * @throws {IpcError} EBADF: the handle is closed or was opened with access 'read'.
   */
  trySend(data: Payload, priority = 0): boolean {
    const [bytes, prio] = this.#sendArgs(data, priority);
    if (this.#senders.length > 0) return false;
    return this.#trySendRaw(bytes, prio);
  }

  /**
   * `mq_send`, waiting while the queue is full (polling the descriptor from
   * the event loop, no thread). Sends of one handle keep their call order. An
   * already aborted signal rejects without sending, even if there is room.
   *
   * @param priority 0 (default) to MQ_PRIO_MAX - 1; higher is received first.
   * @throws {TooLargeError} EMSGSIZE: the message is longer than {@link MessageQueue.messageSize}.
   * @throws {TimeoutError} ETIMEDOUT: the queue stayed full for `timeout` ms (nothing sent).
   * @throws {AbortError} `signal` aborted (nothing sent).
   * @throws {IpcError} EBADF: the handle is closed (also when closed while waiting) or was opened with access 'read'.
   */
  send(data: Payload, priority = 0, options?: WaitOptions): Promise<void> {
    let bytes: Uint8Array;
    let prio: number;
    let wait: Wait;
    try {
      [bytes, prio] = this.#sendArgs(data, priority);
      // Options first: an already aborted signal sends nothing, even with room.
      wait = waitOf(options);
      if (this.#senders.length === 0 && this.#trySendRaw(bytes, prio)) return Promise.resolve();
    } catch (err) {
      return Promise.reject(err);
    }
    return this.#enqueue(this.#senders, wait, 'mq_send', { bytes, priority: prio });
  }

  /**
   * `mq_send`, blocking this thread (in `poll()`) while the queue is full.
   * Refused while async sends of this handle wait: it would go ahead of them,
   * and it cannot wait behind them without blocking the event loop they need.
   *
   * @throws {TooLargeError} EMSGSIZE: the message is longer than {@link MessageQueue.messageSize}.
   * @throws {TimeoutError} ETIMEDOUT: the queue stayed full for `timeout` ms (nothing sent).
   * @throws {InvalidArgumentError} EBUSY: async sends of this handle are waiting (nothing sent).
   * @throws {IpcError} EBADF: the handle is closed or was opened with access 'read'.
   */
  sendSync(data: Payload, priority = 0, options?: { timeout?: number }): void {
    const [bytes, prio] = this.#sendArgs(data, priority);
    this.#noAsyncWaits(this.#senders, 'mq_send');
    this.#blockUntil(() => this.#trySendRaw(bytes, prio) || undefined, false, options, 'mq_send');
  }

  #tryReceiveRaw(): Message | undefined {
    const r = native.mqReceive(this.#fd, this.messageSize);
    if (r === -EAGAIN) return undefined;
    if (r === -EBADF && this.#access === 'write') throw this.#accessError('mq_receive');
    return unwrap(r, 'mq_receive', this.#where);
  }

  /**
   * `mq_receive` without waiting: the highest-priority oldest message, or
   * undefined if there is none (or async receives of this handle are waiting).
   *
   * @throws {IpcError} EBADF: the handle is closed or was opened with access 'write'.
   */
  tryReceive(): Message | undefined {
    this.#open();
    if (this.#receivers.length > 0) return undefined;
    return this.#tryReceiveRaw();
  }

  /**
   * `mq_receive`, waiting until a message arrives (polling the descriptor
   * from the event loop, no thread). Receives of one handle are served in
   * call order; one that times out or is aborted has taken nothing. An
   * already aborted signal rejects without receiving, even with a message there.
   *
   * @throws {TimeoutError} ETIMEDOUT: no message came within `timeout` ms.
   * @throws {AbortError} `signal` aborted.
   * @throws {IpcError} EBADF: the handle is closed (also when closed while waiting) or was opened with access 'write'.
   */
  receive(options?: WaitOptions): Promise<Message> {
    let wait: Wait;
    try {
      this.#open();
      // Options first: an already aborted signal takes nothing, even with a message there.
      wait = waitOf(options);
      if (this.#receivers.length === 0) {
        const m = this.#tryReceiveRaw();
        if (m) return Promise.resolve(m);
      }
    } catch (err) {
      return Promise.reject(err);
    }
    return this.#enqueue(this.#receivers, wait, 'mq_receive', {});
  }

  /**
   * `mq_receive`, blocking this thread (in `poll()`) until a message arrives.
   * Refused while async receives of this handle wait: it would take their
   * message, and it cannot wait behind them without blocking the event loop
   * they need.
   *
   * @throws {TimeoutError} ETIMEDOUT: no message came within `timeout` ms.
   * @throws {InvalidArgumentError} EBUSY: async receives of this handle are waiting (nothing taken).
   * @throws {IpcError} EBADF: the handle is closed or was opened with access 'write'.
   */
  receiveSync(options?: { timeout?: number }): Message {
    this.#open();
    this.#noAsyncWaits(this.#receivers, 'mq_receive');
    return this.#blockUntil(() => this.#tryReceiveRaw(), true, options, 'mq_receive');
  }

  /** What a Sync call meets while async calls of the same kind wait on this handle. */
  #noAsyncWaits(waiting: readonly unknown[], syscall: 'mq_send' | 'mq_receive'): void {
    if (waiting.length === 0) return;
    const what = syscall === 'mq_send' ? 'sends' : 'receives';
    throw new InvalidArgumentError('EBUSY', {
      errno: -EBUSY,
      syscall,
      ...this.#where,
      message: `EBUSY: asynchronous ${what} of this handle are waiting, ${syscall} '${this.name}'`,
    });
  }

  /** Sync forms: poll() the descriptor on this thread between attempts. */
  #blockUntil<T>(attempt: () => T | undefined, readable: boolean, options: { timeout?: number } | undefined, syscall: string): T {
    const timeout = timeoutOf(options);
    const start = performance.now();
    for (;;) {
      const value = attempt();
      if (value !== undefined) return value;
      const left = timeout - (performance.now() - start);
      if (left <= 0) throw timeoutError(syscall, this.#where);
      const r = native.pollFd(this.#fd, readable, !readable, left === Infinity ? -1 : Math.ceil(left));
      // A signal handler ran (Node's own, for SIGCHLD, or one the program set): poll
      // is never restarted, so wait again for what is left of the timeout.
      if (r !== -EINTR) check(r, 'poll', this.#where);
    }
  }

  #enqueue<T, W extends Waiter<T>>(list: W[], { timeout, signal }: Wait, syscall: string, extra: Omit<W, keyof Waiter<T>>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      let timer: DeadlineTimer | undefined;
      const onAbort = (): void => fail(abortError(signal!));
      const waiter = {
        ...extra,
        resolve: (value: T) => { waiter.cleanup(); resolve(value); },
        reject: (err: Error) => { waiter.cleanup(); reject(err); },
        cleanup: () => { timer?.clear(); signal?.removeEventListener('abort', onAbort); },
      } as unknown as W;
      const fail = (err: Error): void => {
        const i = list.indexOf(waiter);
        if (i >= 0) list.splice(i, 1);
        this.#updatePolling();
        waiter.reject(err);
      };
      list.push(waiter);
      timer = deadlineTimer(timeout, () => fail(timeoutError(syscall, this.#where)));
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#updatePolling();
    });
  }

  #updatePolling(): void {
    const wantRead = this.#receivers.length > 0;
    const wantWrite = this.#senders.length > 0;
    if (!wantRead && !wantWrite) {
      this.#poller?.stop();
      return;
    }
    this.#poller ??= new native.Poller(this.#fd, (status, readable, writable) => this.#onReady(status, readable, writable));
    const r = this.#poller.start(wantRead, wantWrite);
    if (r < 0) this.#failAll(systemError(r, 'uv_poll_start', this.#where));
  }

  #onReady(status: number, readable: boolean, writable: boolean): void {
    if (status < 0) return this.#failAll(systemError(status, 'poll', this.#where));
    try {
      while (readable && this.#receivers.length > 0) {
        const m = this.#tryReceiveRaw();
        if (!m) break;
        this.#receivers.shift()!.resolve(m);
      }
      while (writable && this.#senders.length > 0) {
        const s = this.#senders[0]!;
        if (!this.#trySendRaw(s.bytes, s.priority)) break;
        this.#senders.shift()!.resolve();
      }
    } catch (err) {
      this.#failAll(err as Error);
    }
    this.#updatePolling();
  }

  #failAll(err: Error): void {
    for (const w of this.#receivers.splice(0)) w.reject(err);
    for (const w of this.#senders.splice(0)) w.reject(err);
    this.#poller?.stop();
  }

  /**
   * Messages as they arrive, in the queue's order (priority, then age), until
   * the handle is closed or the signal aborts; either ends the loop quietly.
   */
  async *messages(options?: { signal?: AbortSignal }): AsyncGenerator<Message, void, undefined> {
    const signal = options?.signal;
    while (!this.closed && !signal?.aborted) {
      try {
        yield await this.receive(signal ? { signal } : undefined);
      } catch (err) {
        if (this.closed || signal?.aborted) return;
        throw err;
      }
    }
  }

  /** `for await (const m of mq)`: {@link MessageQueue.messages} without a signal. */
  [Symbol.asyncIterator](): AsyncGenerator<Message, void, undefined> {
    return this.messages();
  }

  /** Removes this queue's name (see {@link MessageQueue.unlink}). */
  unlink(): void {
    MessageQueue.unlink(this.name);
  }

  /** Closes the descriptor; pending sends and receives reject (EBADF), having taken nothing. Idempotent. */
  close(): void {
    if (this.#fd < 0) return;
    this.#failAll(closedError('message queue handle', this.#where));
    this.#poller?.close();
    this.#poller = undefined;
    native.mqClose(this.#fd);
    this.#fd = -1;
  }

  /** Calls {@link MessageQueue.close}, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }
}
