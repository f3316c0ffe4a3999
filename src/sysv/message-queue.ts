/**
 * System V message queues: msgget, msgsnd, msgrcv, msgctl. User
 * documentation is on {@link MessageQueue}.
 *
 * A message is C's `struct { long mtype; char mtext[]; }`: `send(type, data)`
 * puts exactly `data` in mtext, and a C program's msgsnd arrives here as
 * `{ type, data }` with its mtext bytes (docs/sysv-message-queue.md).
 *
 * Every call first tries without waiting (IPC_NOWAIT) on the calling thread;
 * only when it would block does the async form hand the call to a waiter
 * thread (src/internal/blocking.ts), never a libuv pool thread.
 */
import { constants } from 'node:os';
import { native, type MsgStatRaw, type RawMessage } from '../native.js';
import { check, formatKey, invalidArgument, systemError, unwrap, TooLargeError } from '../errors.js';
import { closedError } from '../internal/handle.js';
import { PendingWaits, waitOnThread } from '../internal/blocking.js';
import { abortError, pollUntilSync, signalOf, timeoutError, timeoutOf, type WaitOptions } from '../internal/wait.js';
import * as v from '../internal/validate.js';
import { procLimit } from '../internal/limits.js';
import { ipcTime, resolveKey, IPC_PRIVATE, type IpcPerm, type Key } from './key.js';

const { IPC_CREAT, IPC_EXCL, IPC_NOWAIT } = native.sysvConstants;
const { MSG_NOERROR, MSG_EXCEPT } = native.msgConstants;
const { EAGAIN, EINTR, ENOMSG, EINVAL, E2BIG } = constants.errno;

/** The largest message the kernel accepts (msgmax; Linux default 8192 bytes). */
export const MSGMAX = procLimit('/proc/sys/kernel/msgmax', 8192);
/** A new queue's default capacity in bytes (msgmnb; Linux default 16384). */
export const MSGMNB = procLimit('/proc/sys/kernel/msgmnb', 16384);

/** Options of {@link MessageQueue.create}. */
export interface CreateOptions {
  /** A key, `{ path, projId }` for ftok, or IPC_PRIVATE (the default): always a new queue. */
  key?: Key;
  /** Permission bits, default 0o600. */
  mode?: number;
  /** true (default): AlreadyExistsError if the key exists; false: open it instead. */
  exclusive?: boolean;
}

/** Which message a receive takes, and how large it may be (msgrcv's msgtyp, msgflg and msgsz). */
export interface ReceiveOptions {
  /**
   * Which message (msgrcv's msgtyp): 0 (default) the first of any type; > 0
   * the first of exactly that type; < 0 the first of the lowest type up to |type|.
   */
  type?: number;
  /** MSG_EXCEPT: with type > 0, the first message of any other type. */
  except?: boolean;
  /**
   * MSG_NOERROR: truncate a message longer than maxSize instead of failing.
   * Without it, such a message makes the receive fail with a TooLargeError
   * (E2BIG) and stays in the queue.
   */
  noError?: boolean;
  /** Largest mtext accepted, in bytes (default msgmax). */
  maxSize?: number;
}

/** A System V message: C's `struct { long mtype; char mtext[]; }`. */
export interface Message {
  /** mtype: a positive integer. */
  type: number;
  /** mtext. */
  data: Buffer;
}

/** The queue's `msqid_ds`, field names as in C without the `msg_` prefix. */
export interface MsqStat extends IpcPerm {
  /** The queue id (msqid). */
  id: number;
  /** Last msgsnd (null if never). */
  stime: Date | null;
  /** Last msgrcv (null if never). */
  rtime: Date | null;
  /** Last change (creation, IPC_SET). */
  ctime: Date;
  /** Bytes currently in the queue (__msg_cbytes). */
  cbytes: number;
  /** Messages currently in the queue. */
  qnum: number;
  /** The queue's capacity in bytes. */
  qbytes: number;
  /** Pid of the last msgsnd. */
  lspid: number;
  /** Pid of the last msgrcv. */
  lrpid: number;
}

function toStat(id: number, r: MsgStatRaw): MsqStat {
  return { id, ...r, stime: ipcTime(r.stime), rtime: ipcTime(r.rtime), ctime: ipcTime(r.ctime)! };
}

/**
 * Checks the wait options before the first attempt, so a bad timeout or
 * signal is an error even when no wait is needed, and an already aborted
 * signal takes or sends nothing (as fs/promises does with one).
 */
function checkWaitOptions(options: WaitOptions | undefined): void {
  timeoutOf(options);
  const signal = signalOf(options);
  if (signal?.aborted) throw abortError(signal);
}

interface ReceiveArgs {
  type: number;
  flags: number;
  maxSize: number;
}

/**
 * A System V message queue (`msgget`, `msgsnd`, `msgrcv`, `msgctl`):
 * messages with a positive type, received in order or selectively by type.
 * A message is C's `struct { long mtype; char mtext[]; }`:
 * `send(type, data)` puts exactly `data` in mtext, and a C program's msgsnd
 * arrives as `{ type, data }` (docs/sysv-message-queue.md).
 *
 * Lifecycle: {@link MessageQueue.create} makes a queue (a new IPC_PRIVATE
 * one by default, or under a key; exclusive by default),
 * {@link MessageQueue.open} opens one by key, {@link MessageQueue.fromId} by
 * id. {@link MessageQueue.close} ends only this handle; the queue lives in
 * the kernel until {@link MessageQueue.remove} (`IPC_RMID`), which also ends
 * every process's waits on it with a RemovedError.
 *
 * Waiting: every call first tries with IPC_NOWAIT on the calling thread;
 * only when it would block does {@link MessageQueue.send} or
 * {@link MessageQueue.receive} hand the call to a waiter thread (never one of
 * libuv's pool threads), with a timeout and an AbortSignal; one that times
 * out or is aborted has sent or taken nothing. `trySend` / `tryReceive`
 * never wait; `sendSync` / `receiveSync` block the calling thread.
 *
 * @example
 * ```ts
 * import { sysv } from 'interprocess';
 *
 * const q = sysv.MessageQueue.create({ key: sysv.ftok('progfile', 65), mode: 0o600 });
 * await q.send(1, 'Hello, queue');              // mtype 1
 *
 * // another process (or C with msgget + msgrcv):
 * const rx = sysv.MessageQueue.open({ path: 'progfile', projId: 65 });
 * const { type, data } = await rx.receive({ type: 1, timeout: 1000 });
 * console.log(type, data.toString());           // 1 Hello, queue
 * rx.close();
 *
 * q.remove();                                   // IPC_RMID
 * q.close();
 * ```
 */
export class MessageQueue implements Disposable {
  /** The queue id (msqid), as `ipcs -q` shows it. */
  readonly id: number;
  /** The key it was created or opened with; from {@link MessageQueue.fromId}, the queue's own key (0 for IPC_PRIVATE). */
  readonly key: number;
  #closed = false;
  readonly #pending = new PendingWaits();

  private constructor(id: number, key: number) {
    this.id = id;
    this.key = key;
  }

  /**
   * `msgget(key, IPC_CREAT [| IPC_EXCL] | mode)`: a new queue, or with
   * `exclusive: false` the existing one under `key`.
   *
   * @throws {AlreadyExistsError} EEXIST: a queue has this key (and `exclusive` is not false).
   * @throws {PermissionError} EACCES: an existing queue's mode forbids it.
   * @throws {InvalidArgumentError} A bad option.
   */
  static create(options: CreateOptions = {}): MessageQueue {
    const mode = v.mode(options.mode, 0o600);
    const exclusive = v.bool(options.exclusive, 'exclusive', true);
    const key = options.key === undefined ? IPC_PRIVATE : resolveKey(options.key);
    return new MessageQueue(check(native.msgget(key, IPC_CREAT | (exclusive ? IPC_EXCL : 0) | mode), 'msgget', { key }), key);
  }

  /**
   * Opens the existing queue with this key (`msgget(key, 0)`).
   *
   * @throws {NotFoundError} ENOENT: no queue has this key.
   * @throws {PermissionError} EACCES: the queue's mode forbids it.
   * @throws {InvalidArgumentError} The key is IPC_PRIVATE (use {@link MessageQueue.fromId}).
   */
  static open(key: Key): MessageQueue {
    const k = resolveKey(key);
    if (k === IPC_PRIVATE) throw invalidArgument('IPC_PRIVATE names no existing queue: use MessageQueue.fromId(id)');
    return new MessageQueue(check(native.msgget(k, 0), 'msgget', { key: k }), k);
  }

  /**
   * A handle on the queue with this id (checked with IPC_STAT).
   *
   * @throws {InvalidArgumentError} EINVAL: no queue has this id.
   * @throws {PermissionError} EACCES: the queue's mode forbids reading it.
   */
  static fromId(id: number): MessageQueue {
    v.nonNegativeInt(id, 'id');
    return new MessageQueue(id, MessageQueue.stat(id).key);
  }

  /**
   * `msgctl(id, IPC_STAT)`: the queue's `msqid_ds`, without a handle.
   *
   * @throws {InvalidArgumentError} EINVAL: no queue has this id.
   */
  static stat(id: number): MsqStat {
    v.nonNegativeInt(id, 'id');
    return toStat(id, unwrap(native.msgStat(id), 'msgctl', {}));
  }

  /**
   * `msgctl(id, IPC_RMID)`: removes the queue now; waiters get a RemovedError.
   *
   * @throws {InvalidArgumentError} EINVAL: no queue has this id.
   * @throws {PermissionError} EPERM: only the owner, the creator or root may remove it.
   */
  static remove(id: number): void {
    v.nonNegativeInt(id, 'id');
    check(native.msgRemove(id), 'msgctl', {});
  }

  get #where(): { key: number } {
    return { key: this.key };
  }

  #open(): void {
    if (this.#closed) throw closedError('message queue handle', this.#where);
  }

  /**
   * The queue's current `msqid_ds`.
   *
   * @throws {IpcError} EBADF: the handle is closed.
   */
  stat(): MsqStat {
    this.#open();
    return toStat(this.id, unwrap(native.msgStat(this.id), 'msgctl', this.#where));
  }

  /**
   * IPC_SET: change the capacity in bytes (raising it past msgmnb needs
   * CAP_SYS_RESOURCE), and optionally owner and mode; what is not given
   * keeps its current value.
   *
   * @throws {PermissionError} EPERM: not the owner or creator, or a capacity past msgmnb without CAP_SYS_RESOURCE.
   * @throws {IpcError} EBADF: the handle is closed.
   */
  set(changes: { maxBytes?: number; uid?: number; gid?: number; mode?: number }): void {
    this.#open();
    const cur = this.stat();
    const qbytes = changes.maxBytes === undefined ? cur.qbytes : v.nonNegativeInt(changes.maxBytes, 'maxBytes', 0xffffffff);
    const uid = changes.uid === undefined ? cur.uid : v.nonNegativeInt(changes.uid, 'uid', 0xffffffff);
    const gid = changes.gid === undefined ? cur.gid : v.nonNegativeInt(changes.gid, 'gid', 0xffffffff);
    const mode = v.mode(changes.mode, cur.mode & 0o777);
    check(native.msgSet(this.id, qbytes, uid, gid, mode), 'msgctl', this.#where);
  }

  /** Shorthand for `set({ maxBytes })`. */
  setMaxBytes(maxBytes: number): void {
    this.set({ maxBytes });
  }

  #sendArgs(type: unknown, data: unknown): Uint8Array {
    this.#open();
    v.intInRange(type, 'message type', 1, Number.MAX_SAFE_INTEGER);
    const bytes = v.messageBytes(data);
    if (bytes.byteLength > MSGMAX) {
      throw new TooLargeError('EINVAL', {
        errno: -EINVAL,
        syscall: 'msgsnd',
        ...this.#where,
        message: `message of ${bytes.byteLength} bytes exceeds msgmax (${MSGMAX} bytes), msgsnd key ${formatKey(this.key)}`,
      });
    }
    return bytes;
  }

  /** A message larger than the queue's capacity would wait forever: refuse it. */
  #checkFits(bytes: Uint8Array): void {
    const qbytes = this.stat().qbytes;
    // The kernel also counts messages against qbytes (one each), so a
    // capacity of 0 holds not even an empty message.
    if (bytes.byteLength > qbytes || qbytes === 0) {
      throw new TooLargeError('EINVAL', {
        errno: -EINVAL,
        syscall: 'msgsnd',
        ...this.#where,
        message: `message of ${bytes.byteLength} bytes can never fit in this queue (capacity ${qbytes} bytes), msgsnd key ${formatKey(this.key)}`,
      });
    }
  }

  /**
   * `msgsnd(IPC_NOWAIT)`: false if the queue is full.
   *
   * @param type mtype, a positive integer.
   * @param data mtext: bytes, any typed array or DataView, or a string (UTF-8).
   * @throws {TooLargeError} EINVAL: `data` exceeds msgmax, or can never fit in the queue's capacity.
   * @throws {InvalidArgumentError} EINVAL: the queue no longer exists (removed).
   * @throws {IpcError} EBADF: the handle is closed.
   */
  trySend(type: number, data: Uint8Array | ArrayBufferView | string): boolean {
    return this.#trySend(type, this.#sendArgs(type, data));
  }

  #trySend(type: number, bytes: Uint8Array): boolean {
    const r = native.msgsnd(this.id, type, bytes, IPC_NOWAIT);
    if (r === -EAGAIN) {
      this.#checkFits(bytes);
      return false;
    }
    check(r, 'msgsnd', this.#where);
    return true;
  }

  /**
   * `msgsnd`: sends a message, waiting while the queue is full on a waiter
   * thread (not the event loop, not libuv's pool). An already aborted signal
   * rejects without sending, even if there is room.
   *
   * @param type mtype, a positive integer.
   * @param data mtext: bytes, any typed array or DataView, or a string (UTF-8).
   * @throws {TooLargeError} EINVAL: `data` exceeds msgmax, or can never fit in the queue's capacity.
   * @throws {TimeoutError} ETIMEDOUT: the queue stayed full for `timeout` ms (nothing sent).
   * @throws {AbortError} `signal` aborted (nothing sent).
   * @throws {RemovedError} EIDRM: the queue was removed while this call waited.
   * @throws {InvalidArgumentError} EINVAL: the queue no longer exists (removed before the call).
   * @throws {IpcError} EBADF: the handle is closed (also when closed while waiting).
   */
  async send(type: number, data: Uint8Array | ArrayBufferView | string, options?: WaitOptions): Promise<void> {
    const bytes = this.#sendArgs(type, data);
    checkWaitOptions(options);
    if (this.#trySend(type, bytes)) return;
    await waitOnThread<number>((done) => native.msgsndWait(this.id, type, bytes, 0, done), options, 'msgsnd', this.#where, this.#pending);
  }

  /**
   * `msgsnd`, blocking this thread while the queue is full (with a
   * `timeout`, by retrying with IPC_NOWAIT at growing intervals up to 16 ms).
   *
   * @throws {TooLargeError} EINVAL: `data` exceeds msgmax, or can never fit in the queue's capacity.
   * @throws {TimeoutError} ETIMEDOUT: the queue stayed full for `timeout` ms (nothing sent).
   * @throws {RemovedError} EIDRM: the queue was removed while this call waited.
   * @throws {InvalidArgumentError} EINVAL: the queue no longer exists (removed before, or while retrying with a timeout).
   * @throws {IpcError} EBADF: the handle is closed.
   */
  sendSync(type: number, data: Uint8Array | ArrayBufferView | string, options?: { timeout?: number }): void {
    const bytes = this.#sendArgs(type, data);
    timeoutOf(options);
    if (this.#trySend(type, bytes)) return;
    if (options?.timeout === undefined) {
      // msgsnd is never restarted after a signal handler (signal(7)): a
      // signal Node handles (SIGCHLD, SIGUSR2...) must not end the wait.
      let r: number;
      do r = native.msgsnd(this.id, type, bytes, 0);
      while (r === -EINTR);
      check(r, 'msgsnd', this.#where);
      return;
    }
    pollUntilSync(() => (this.#trySend(type, bytes) ? true : undefined), options, () => timeoutError('msgsnd', this.#where));
  }

  #receiveArgs(o: ReceiveOptions | undefined): ReceiveArgs {
    this.#open();
    const type = o?.type === undefined ? 0 : v.intInRange(o.type, 'type', -Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
    const except = v.bool(o?.except, 'except', false);
    if (except && type <= 0) throw invalidArgument('except (MSG_EXCEPT) needs a positive type');
    const noError = v.bool(o?.noError, 'noError', false);
    const maxSize = o?.maxSize === undefined ? MSGMAX : v.nonNegativeInt(o.maxSize, 'maxSize', 0x7fffffff);
    return { type, flags: (except ? MSG_EXCEPT : 0) | (noError ? MSG_NOERROR : 0), maxSize };
  }

  #received(r: RawMessage | number, a: ReceiveArgs): Message | undefined {
    if (r === -ENOMSG) return undefined;
    if (r === -E2BIG) {
      throw systemError(r, 'msgrcv', {
        ...this.#where,
        message: `E2BIG: the next matching message is longer than maxSize (${a.maxSize} bytes); it stays in the queue (use noError to truncate), msgrcv key ${formatKey(this.key)}`,
      }, TooLargeError);
    }
    return unwrap(r, 'msgrcv', this.#where);
  }

  /**
   * `msgrcv(IPC_NOWAIT)`: undefined if no matching message is waiting.
   *
   * @throws {TooLargeError} E2BIG: the matching message is longer than `maxSize` (it stays in the queue; see `noError`).
   * @throws {InvalidArgumentError} EINVAL: the queue no longer exists (removed).
   * @throws {IpcError} EBADF: the handle is closed.
   */
  tryReceive(options?: ReceiveOptions): Message | undefined {
    const a = this.#receiveArgs(options);
    return this.#received(native.msgrcv(this.id, a.maxSize, a.type, a.flags | IPC_NOWAIT), a);
  }

  /**
   * Receives the next matching message, waiting on a waiter thread (not the
   * event loop, not libuv's pool) until one arrives. A timeout or abort
   * removes nothing from the queue; an already aborted signal rejects
   * without receiving, even with a message there.
   *
   * @throws {TooLargeError} E2BIG: the matching message is longer than `maxSize` (it stays in the queue; see `noError`).
   * @throws {TimeoutError} ETIMEDOUT: no matching message came within `timeout` ms.
   * @throws {AbortError} `signal` aborted.
   * @throws {RemovedError} EIDRM: the queue was removed while this call waited.
   * @throws {InvalidArgumentError} EINVAL: the queue no longer exists (removed before the call).
   * @throws {IpcError} EBADF: the handle is closed (also when closed while waiting).
   */
  async receive(options?: ReceiveOptions & WaitOptions): Promise<Message> {
    const a = this.#receiveArgs(options);
    checkWaitOptions(options);
    const now = this.#received(native.msgrcv(this.id, a.maxSize, a.type, a.flags | IPC_NOWAIT), a);
    if (now) return now;
    const r = await waitOnThread<RawMessage | number>(
      (done) => native.msgrcvWait(this.id, a.maxSize, a.type, a.flags, done),
      options,
      'msgrcv',
      this.#where,
      this.#pending,
    ).catch((err: unknown) => {
      if (err instanceof Error && (err as { errno?: number }).errno === -E2BIG) return -E2BIG;
      throw err;
    });
    return this.#received(r, a)!;
  }

  /**
   * `msgrcv`: the next matching message, blocking this thread until one
   * arrives (with a `timeout`, by retrying with IPC_NOWAIT at growing
   * intervals up to 16 ms).
   *
   * @throws {TooLargeError} E2BIG: the matching message is longer than `maxSize` (it stays in the queue).
   * @throws {TimeoutError} ETIMEDOUT: no matching message came within `timeout` ms.
   * @throws {RemovedError} EIDRM: the queue was removed while this call waited.
   * @throws {InvalidArgumentError} EINVAL: the queue no longer exists (removed before, or while retrying with a timeout).
   * @throws {IpcError} EBADF: the handle is closed.
   */
  receiveSync(options?: ReceiveOptions & { timeout?: number }): Message {
    const a = this.#receiveArgs(options);
    timeoutOf(options);
    if (options?.timeout === undefined) {
      // As in sendSync: msgrcv returns EINTR after any handled signal.
      let r: RawMessage | number;
      do r = native.msgrcv(this.id, a.maxSize, a.type, a.flags);
      while (r === -EINTR);
      return this.#received(r, a)!;
    }
    return pollUntilSync(() => this.#received(native.msgrcv(this.id, a.maxSize, a.type, a.flags | IPC_NOWAIT), a), options, () =>
      timeoutError('msgrcv', this.#where),
    );
  }

  /**
   * Messages as they arrive, until the handle is closed, the signal aborts
   * (the loop then ends quietly) or the queue is removed (RemovedError).
   */
  async *messages(options?: ReceiveOptions & { signal?: AbortSignal }): AsyncGenerator<Message, void, undefined> {
    const signal = options?.signal;
    while (!this.#closed && !signal?.aborted) {
      try {
        yield await this.receive(options);
      } catch (err) {
        if (this.#closed || signal?.aborted) return;
        throw err;
      }
    }
  }

  /** `for await (const m of q)`: {@link MessageQueue.messages} with no options (any type). */
  [Symbol.asyncIterator](): AsyncGenerator<Message, void, undefined> {
    return this.messages();
  }

  /**
   * Removes the queue now (IPC_RMID): its messages are lost and every
   * process's waits on it end with a RemovedError.
   *
   * @throws {PermissionError} EPERM: only the owner, the creator or root may remove it.
   * @throws {IpcError} EBADF: the handle is closed.
   */
  remove(): void {
    this.#open();
    check(native.msgRemove(this.id), 'msgctl', this.#where);
  }

  /** Whether {@link MessageQueue.close} has been called. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Number of async sends/receives still waiting on this handle. */
  get pendingWaits(): number {
    return this.#pending.size;
  }

  /** Ends this handle: pending waits reject (EBADF), taking nothing. The queue itself stays. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#pending.cancelAll(closedError('message queue handle', this.#where));
  }

  /** Calls {@link MessageQueue.close}, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }
}

