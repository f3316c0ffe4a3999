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
import { constants as fsc } from 'node:fs';
import { constants } from 'node:os';
import { native, type NativePoller } from '../native.js';
import { check, invalidArgument, unwrap, systemError, TooLargeError } from '../errors.js';
import { closedError } from '../internal/handle.js';
import { abortError, signalOf, timeoutError, timeoutOf, type WaitOptions } from '../internal/wait.js';
import * as v from '../internal/validate.js';
import { procLimit } from '../internal/limits.js';

const { EAGAIN, EEXIST, ENOENT, EMSGSIZE } = constants.errno;

/** The kernel's NAME_MAX for queue names (after the leading '/'). */
export const MAX_NAME_BYTES = 255;
/** Priorities run from 0 to MQ_PRIO_MAX - 1 (Linux: 32768). */
export const MQ_PRIO_MAX = 32768;

export type Access = 'read' | 'write' | 'readwrite';

export interface CreateOptions {
  /** Permission bits, default 0o600 (the umask applies). */
  mode?: number;
  /** true (default): AlreadyExistsError if the name exists; false: open it instead. */
  exclusive?: boolean;
  /** mq_maxmsg: capacity in messages (default: /proc/sys/fs/mqueue/msg_default). */
  maxMessages?: number;
  /** mq_msgsize: largest message in bytes (default: /proc/sys/fs/mqueue/msgsize_default). */
  messageSize?: number;
  /** How this handle opens the queue (default 'readwrite'). */
  access?: Access;
}

export interface Attributes {
  /** mq_maxmsg */
  maxMessages: number;
  /** mq_msgsize */
  messageSize: number;
  /** mq_curmsgs: messages in the queue now. */
  currentMessages: number;
}

export interface Message {
  data: Buffer;
  priority: number;
}

type Payload = Uint8Array | ArrayBufferView | string;

function payload(data: unknown): Uint8Array {
  if (typeof data === 'string') return Buffer.from(data);
  if (data instanceof Uint8Array) return data;
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  throw invalidArgument('message data must be a Buffer, TypedArray, DataView or string', 'ERR_INVALID_ARG_TYPE');
}

function accessFlags(access: unknown): number {
  switch (access ?? 'readwrite') {
    case 'read': return fsc.O_RDONLY;
    case 'write': return fsc.O_WRONLY;
    case 'readwrite': return fsc.O_RDWR;
    default: throw invalidArgument(`access must be 'read', 'write' or 'readwrite', got ${String(access)}`);
  }
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

export class MessageQueue implements Disposable {
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

  private constructor(name: string, fd: number, created: boolean) {
    this.name = name;
    this.#fd = fd;
    this.created = created;
    const a = unwrap(native.mqGetattr(fd), 'mq_getattr', { path: name });
    this.messageSize = a.msgsize;
    this.maxMessages = a.maxmsg;
  }

  /** Creates a queue (or with `exclusive: false`, creates or opens it). */
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
    let fd = native.mqOpen(name, access | fsc.O_CREAT | fsc.O_EXCL, mode, maxmsg, msgsize);
    if (fd >= 0) return new MessageQueue(name, fd, true);
    if (exclusive || fd !== -EEXIST) check(fd, 'mq_open', where);
    fd = native.mqOpen(name, access, 0, 0, 0);
    if (fd === -ENOENT) return MessageQueue.create(name, options); // unlinked meanwhile: create again
    return new MessageQueue(name, check(fd, 'mq_open', where), false);
  }

  static #defaults(): { maxmsg: number; msgsize: number } {
    return {
      maxmsg: procLimit('/proc/sys/fs/mqueue/msg_default', 10),
      msgsize: procLimit('/proc/sys/fs/mqueue/msgsize_default', 8192),
    };
  }

  /** Opens an existing queue. */
  static open(name: string, options: { access?: Access } = {}): MessageQueue {
    v.posixName(name, 'message queue', MAX_NAME_BYTES);
    const fd = check(native.mqOpen(name, accessFlags(options.access), 0, 0, 0), 'mq_open', { path: name });
    return new MessageQueue(name, fd, false);
  }

  /** Removes the name (`mq_unlink`); the queue lives on until every descriptor is closed. */
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

  get closed(): boolean {
    return this.#fd < 0;
  }

  /** mq_getattr. */
  attributes(): Attributes {
    this.#open();
    const a = unwrap(native.mqGetattr(this.#fd), 'mq_getattr', this.#where);
    return { maxMessages: a.maxmsg, messageSize: a.msgsize, currentMessages: a.curmsgs };
  }

  #sendArgs(data: unknown, priority: unknown): [Uint8Array, number] {
    this.#open();
    const bytes = payload(data);
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

  #trySendRaw(bytes: Uint8Array, prio: number): boolean {
    const r = native.mqSend(this.#fd, bytes, prio);
    if (r === -EAGAIN) return false;
    check(r, 'mq_send', this.#where);
    return true;
  }

  /** mq_send without waiting: false if the queue is full (or earlier sends still wait). */
  trySend(data: Payload, priority = 0): boolean {
    const [bytes, prio] = this.#sendArgs(data, priority);
    if (this.#senders.length > 0) return false;
    return this.#trySendRaw(bytes, prio);
  }

  /** mq_send, waiting (polling the descriptor, no thread) while the queue is full. */
  send(data: Payload, priority = 0, options?: WaitOptions): Promise<void> {
    let bytes: Uint8Array;
    let prio: number;
    try {
      [bytes, prio] = this.#sendArgs(data, priority);
      if (this.#senders.length === 0 && this.#trySendRaw(bytes, prio)) return Promise.resolve();
    } catch (err) {
      return Promise.reject(err);
    }
    return this.#enqueue(this.#senders, options, 'mq_send', { bytes, priority: prio });
  }

  /** mq_send, blocking this thread while the queue is full. */
  sendSync(data: Payload, priority = 0, options?: { timeout?: number }): void {
    const [bytes, prio] = this.#sendArgs(data, priority);
    this.#blockUntil(() => this.#trySendRaw(bytes, prio) || undefined, false, options, 'mq_send');
  }

  #tryReceiveRaw(): Message | undefined {
    const r = native.mqReceive(this.#fd, this.messageSize);
    if (r === -EAGAIN) return undefined;
    return unwrap(r, 'mq_receive', this.#where);
  }

  /** mq_receive without waiting: the highest-priority oldest message, or undefined. */
  tryReceive(): Message | undefined {
    this.#open();
    if (this.#receivers.length > 0) return undefined;
    return this.#tryReceiveRaw();
  }

  /** mq_receive, waiting (polling the descriptor, no thread) until a message arrives. */
  receive(options?: WaitOptions): Promise<Message> {
    try {
      this.#open();
      if (this.#receivers.length === 0) {
        const m = this.#tryReceiveRaw();
        if (m) return Promise.resolve(m);
      }
    } catch (err) {
      return Promise.reject(err);
    }
    return this.#enqueue(this.#receivers, options, 'mq_receive', {});
  }

  /** mq_receive, blocking this thread until a message arrives. */
  receiveSync(options?: { timeout?: number }): Message {
    this.#open();
    return this.#blockUntil(() => this.#tryReceiveRaw(), true, options, 'mq_receive');
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
      check(native.pollFd(this.#fd, readable, !readable, left === Infinity ? -1 : Math.ceil(left)), 'poll', this.#where);
    }
  }

  #enqueue<T, W extends Waiter<T>>(list: W[], options: WaitOptions | undefined, syscall: string, extra: Omit<W, keyof Waiter<T>>): Promise<T> {
    let timeout: number;
    let signal: AbortSignal | undefined;
    try {
      timeout = timeoutOf(options);
      signal = signalOf(options);
    } catch (err) {
      return Promise.reject(err);
    }
    if (signal?.aborted) return Promise.reject(abortError(signal));
    return new Promise<T>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const onAbort = (): void => fail(abortError(signal!));
      const waiter = {
        ...extra,
        resolve: (value: T) => { waiter.cleanup(); resolve(value); },
        reject: (err: Error) => { waiter.cleanup(); reject(err); },
        cleanup: () => { clearTimeout(timer); signal?.removeEventListener('abort', onAbort); },
      } as unknown as W;
      const fail = (err: Error): void => {
        const i = list.indexOf(waiter);
        if (i >= 0) list.splice(i, 1);
        this.#updatePolling();
        waiter.reject(err);
      };
      if (timeout !== Infinity) timer = setTimeout(() => fail(timeoutError(syscall, this.#where)), timeout);
      signal?.addEventListener('abort', onAbort, { once: true });
      list.push(waiter);
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

  [Symbol.dispose](): void {
    this.close();
  }
}
