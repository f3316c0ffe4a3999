/**
 * The ivshmem server protocol (QEMU docs/specs/ivshmem-spec.rst, the one
 * contrib/ivshmem-server speaks), in TypeScript: an `ivshmem-doorbell`
 * device (and any host process, through IvshmemPeer) connects to a Unix
 * socket and receives the shared memory descriptor and every peer's
 * eventfds; ringing peer P's vector v is writing 1 to P's eventfd v.
 *
 * Wire format: each message is one little-endian int64, optionally with one
 * descriptor (SCM_RIGHTS), one message per sendmsg. On connect the server
 * sends the protocol version (0), the new peer's id, -1 with the memory's
 * descriptor, then for every other peer `vectors` messages "id + eventfd"
 * (and tells every other peer the same about the newcomer), then the
 * newcomer's own id with each of its eventfds. Later, "id + eventfd" means
 * a peer joined, "id" alone that it left. Peers never send; a peer's socket
 * becoming readable (data or end of file) means it is gone.
 *
 * Descriptor passing and eventfds are native calls (native/socket.cc); the
 * protocol is here. Sockets and eventfds are polled by libuv: no thread.
 */
import { EventEmitter } from 'node:events';
import { chmodSync, fstatSync, lstatSync, unlinkSync } from 'node:fs';
import { native, type NativePoller } from '../native.js';
import { AlreadyExistsError, IpcError, PeerGoneError, invalidArgument, systemError, check } from '../errors.js';
import { SharedMemory } from '../posix/shared-memory.js';
import { closedError } from '../internal/handle.js';
import { abortError, deadlineTimer, signalOf, timeoutError, timeoutOf, type WaitOptions } from '../internal/wait.js';
import * as v from '../internal/validate.js';
import { constants } from 'node:os';

const { EAGAIN } = constants.errno;
/** The ivshmem server protocol version this package speaks (the first message a server sends). */
export const IVSHMEM_PROTOCOL_VERSION = 0;
const MAX_PEERS = 65536;

function int64(value: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigInt64LE(BigInt(value));
  return b;
}

/** Options of {@link IvshmemServer.listen}. */
export interface IvshmemServerOptions {
  /** The POSIX shared memory object the peers share (`/NAME`); created if absent. */
  name: string;
  /** Its size in bytes (a power of two, as QEMU requires); used when creating it. */
  size: number;
  /** Interrupt vectors per peer (default 1); the devices' `vectors=` must match. */
  vectors?: number;
  /** Permission bits of the socket and of a created memory object (default 0o600). */
  mode?: number;
}

interface ServerPeer {
  id: number;
  fd: number;
  poller: NativePoller;
  eventfds: number[];
  /**
   * Messages not sent yet: a handshake is 3 + vectors * peers messages, each
   * with a descriptor, more than one socket buffer holds (~278 here) once
   * vectors * peers passes ~275; the rest goes when the socket drains.
   */
  queue: Array<{ value: number; fd: number }>;
  /** Ids of peers whose eventfds (at least one) this peer was actually sent: only those get a 'leave'. */
  told: Set<number>;
  /** A send failed: nothing more is sent; the peer is being dropped. */
  dead: boolean;
  /** Whether the poller watches writability (only while the queue is not empty). */
  writable: boolean;
}

/**
 * An ivshmem server: `ivshmem-doorbell` devices and IvshmemPeer host
 * processes connect to its socket. Events: 'join' (id), 'leave' (id),
 * 'error' (err, for a peer that could not be served; the server goes on).
 * 'error' is emitted only while someone listens for it: a client vanishing
 * during its handshake must not crash the process that serves the others.
 *
 * It speaks the protocol of QEMU's contrib/ivshmem-server
 * (docs/specs/ivshmem-spec.rst): each peer that connects gets the shared
 * memory's descriptor, an id, and the eventfds of every peer (one per
 * vector), so peers can interrupt each other without the server. Sockets are
 * polled by libuv: no thread.
 *
 * Lifecycle: {@link IvshmemServer.listen} binds the socket and creates (or
 * reuses) the memory object; start QEMU with {@link ivshmemDoorbellArgs}
 * after it. {@link IvshmemServer.close} disconnects every peer and removes
 * the socket file; the memory object stays until you unlink it
 * (`posix.SharedMemory.unlink(name)`).
 *
 * @example
 * ```ts
 * import { posix } from 'interprocess';
 * import { IvshmemServer, IvshmemPeer, ivshmemDoorbellArgs } from 'interprocess/qemu';
 *
 * const server = IvshmemServer.listen('/tmp/ivshmem.sock', { name: '/my-ivshmem', size: 1 << 20, vectors: 2 });
 * server.on('join', (id) => console.log(`peer ${id} joined`));
 * const deviceArgs = ivshmemDoorbellArgs({ socketPath: server.socketPath, vectors: 2 });   // for each QEMU
 *
 * const host = await IvshmemPeer.connect(server.socketPath, { vectors: 2, timeout: 5000 });
 * host.on('join', (id) => host.ring(id, 0));          // interrupt a guest on its vector 0
 * await host.wait(1);                                 // until someone rings our vector 1
 *
 * host.close();
 * server.close();
 * posix.SharedMemory.unlink('/my-ivshmem');
 * ```
 */
export class IvshmemServer extends EventEmitter implements AsyncDisposable {
  /** The Unix socket path the server listens on (give it to QEMU's `-chardev socket,path=`). */
  readonly socketPath: string;
  /** Interrupt vectors (eventfds) per peer. */
  readonly vectors: number;
  /** The POSIX shared memory object every peer is given (its descriptor, sent on connect). */
  readonly memory: SharedMemory;
  #listenFd: number;
  #poller: NativePoller | undefined;
  readonly #peers = new Map<number, ServerPeer>();
  #nextId = 0;
  #closed = false;

  private constructor(socketPath: string, vectors: number, memory: SharedMemory, listenFd: number) {
    super();
    this.socketPath = socketPath;
    this.vectors = vectors;
    this.memory = memory;
    this.#listenFd = listenFd;
  }

  /**
   * Listens on `socketPath` (which must not exist: a stale socket file is the
   * caller's to remove; EADDRINUSE otherwise). The memory object is created,
   * or reused if it exists with exactly `size` bytes. A failed listen leaves
   * nothing behind (no socket file, no memory object of its making).
   *
   * @throws {AlreadyExistsError} EADDRINUSE: something is at `socketPath`.
   * @throws {InvalidArgumentError} A size that is not a power of two, a bad option, or the memory object exists with another size.
   * @throws {TooLargeError} ENOSPC: the memory does not fit in /dev/shm.
   */
  static listen(socketPath: string, options: IvshmemServerOptions): IvshmemServer {
    const path = v.path(socketPath, 'socketPath');
    if (typeof options !== 'object' || options === null) throw invalidArgument('options with a name and a size are required', 'ERR_INVALID_ARG_TYPE');
    const vectors = v.intInRange(options.vectors ?? 1, 'vectors', 1, 1024);
    const size = v.size(options.size, 'size', native.maxMappingLength);
    if (!Number.isInteger(Math.log2(size))) throw invalidArgument(`size must be a power of two (QEMU requires it), got ${size}`);
    const mode = v.mode(options.mode, 0o600);
    // The socket first: if the path is taken, no memory object is made for nothing.
    const r = native.unixListen(path, 64);
    if (r < 0) throw systemError(r, 'bind', { path }, r === -constants.errno.EADDRINUSE ? AlreadyExistsError : undefined);
    const fd = r;
    let memory: SharedMemory | undefined;
    try {
      chmodSync(path, mode); // who may connect (and get the memory)
      memory = SharedMemory.create(options.name, { size, mode, exclusive: false });
      if (memory.size !== size) {
        throw invalidArgument(`shared memory object '${options.name}' exists with ${memory.size} bytes, not the ${size} asked for`);
      }
    } catch (err) {
      memory?.close();
      native.closeFd(fd);
      try {
        unlinkSync(path);
      } catch {
        /* gone already */
      }
      throw err;
    }
    const server = new IvshmemServer(path, vectors, memory, fd);
    server.#poller = new native.Poller(fd, (status) => server.#onAcceptable(status));
    server.#poller.start(true, false);
    return server;
  }

  /** Ids of the connected peers. */
  get peers(): number[] {
    return [...this.#peers.keys()];
  }

  /** Whether this server keeps the process alive (default: yes, as a net.Server). */
  ref(on = true): this {
    this.#poller?.ref(on);
    return this;
  }

  #error(err: unknown): void {
    if (this.listenerCount('error') > 0) this.emit('error', err);
  }

  #onAcceptable(status: number): void {
    if (status < 0) return;
    // A listener ('join', 'error') may close the server meanwhile.
    while (!this.#closed) {
      const fd = native.unixAccept(this.#listenFd);
      if (fd === -EAGAIN) return;
      if (fd < 0) {
        // EMFILE and friends leave the connection pending, so the socket stays readable:
        // pause accepting for a moment instead of spinning on it.
        this.#poller?.stop();
        setTimeout(() => {
          if (!this.#closed) this.#poller?.start(true, false);
        }, 100).unref();
        this.#error(systemError(fd, 'accept', { path: this.socketPath }));
        return;
      }
      this.#admit(fd);
    }
  }

  #freeId(): number {
    for (let i = 0; i < MAX_PEERS; i++) {
      const id = (this.#nextId + i) % MAX_PEERS;
      if (!this.#peers.has(id)) {
        this.#nextId = (id + 1) % MAX_PEERS;
        return id;
      }
    }
    throw new IpcError('EUSERS', { path: this.socketPath, message: `EUSERS: ivshmem server '${this.socketPath}' has ${MAX_PEERS} peers` });
  }

  /** Queues one message for `peer` and sends what its socket takes now. */
  #post(peer: ServerPeer, value: number, passFd = -1): void {
    if (peer.dead) return;
    peer.queue.push({ value, fd: passFd });
    if (peer.queue.length === 1) this.#flush(peer);
  }

  #flush(peer: ServerPeer): void {
    let sent = 0;
    while (sent < peer.queue.length) {
      const m = peer.queue[sent]!;
      const r = native.sendWithFd(peer.fd, int64(m.value), m.fd);
      if (r === -EAGAIN) break;
      if (r !== 8) {
        // Gone (EPIPE) or unusable: send nothing more, drop it (not from
        // inside whatever loop over the peers is posting to it now).
        peer.dead = true;
        peer.queue.length = 0;
        this.#watchWritable(peer, false);
        this.#error(systemError(r < 0 ? r : -constants.errno.EIO, 'sendmsg', { path: this.socketPath }));
        queueMicrotask(() => this.#drop(peer));
        return;
      }
      if (m.fd >= 0 && m.value >= 0) peer.told.add(m.value);
      sent++;
    }
    peer.queue.splice(0, sent);
    this.#watchWritable(peer, peer.queue.length > 0);
  }

  /** Writability is watched only while something waits to be sent. */
  #watchWritable(peer: ServerPeer, on: boolean): void {
    if (peer.writable === on) return;
    peer.writable = on;
    peer.poller.start(true, on);
  }

  #admit(fd: number): void {
    let id: number;
    const eventfds: number[] = [];
    let poller: NativePoller | undefined;
    try {
      id = this.#freeId();
      for (let i = 0; i < this.vectors; i++) eventfds.push(check(native.eventfd(0), 'eventfd'));
      poller = new native.Poller(fd, (status, readable, writable) => {
        // Peers never send: data or end of file (or an error) means gone.
        if (status < 0 || readable) this.#drop(peer);
        else if (writable) this.#flush(peer);
      });
      poller.start(true, false);
    } catch (err) {
      for (const e of eventfds) native.closeFd(e);
      native.closeFd(fd);
      this.#error(err);
      return;
    }
    const peer: ServerPeer = { id, fd, poller, eventfds, queue: [], told: new Set(), dead: false, writable: false };
    // The newcomer's whole handshake first; only then is it advertised, so
    // that no peer hears of one that never made it.
    this.#post(peer, IVSHMEM_PROTOCOL_VERSION);
    this.#post(peer, id);
    this.#post(peer, -1, this.memory.fd);
    for (const other of this.#peers.values()) {
      for (const e of other.eventfds) this.#post(peer, other.id, e);
    }
    for (const e of eventfds) this.#post(peer, id, e);
    if (peer.dead) {
      this.#release(peer);
      return;
    }
    for (const other of this.#peers.values()) {
      for (const e of eventfds) this.#post(other, id, e);
    }
    this.#peers.set(id, peer);
    this.emit('join', id);
  }

  #release(peer: ServerPeer): void {
    peer.dead = true;
    peer.queue.length = 0;
    peer.poller.close();
    native.closeFd(peer.fd);
    for (const e of peer.eventfds) native.closeFd(e);
  }

  /** A peer is gone: close what it had, tell the others that heard of it. */
  #drop(peer: ServerPeer): void {
    if (this.#peers.get(peer.id) !== peer) return;
    this.#peers.delete(peer.id);
    this.#release(peer);
    for (const other of this.#peers.values()) {
      // Its eventfds still queued for another peer are closed now: never send them.
      const kept = other.queue.filter((m) => !(m.value === peer.id && m.fd >= 0));
      if (kept.length !== other.queue.length) other.queue = kept;
      if (other.told.delete(peer.id)) this.#post(other, peer.id);
    }
    this.emit('leave', peer.id);
  }

  /** Disconnects every peer, stops listening, removes the socket file; the memory object stays (unlink it yourself). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#poller?.close();
    native.closeFd(this.#listenFd);
    for (const p of this.#peers.values()) this.#release(p);
    this.#peers.clear();
    try {
      if (lstatSync(this.socketPath).isSocket()) unlinkSync(this.socketPath);
    } catch {
      /* gone already */
    }
    this.memory.close();
  }

  /** Calls {@link IvshmemServer.close}, for `await using`. */
  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
  }
}

/**
 * A host process joining an ivshmem server as a peer, as a QEMU
 * `ivshmem-doorbell` device does: it maps the shared memory, can ring any
 * peer's vector, and awaits rings on its own vectors (eventfds polled by
 * libuv). Events: 'join' (id), 'leave' (id), and 'disconnect' (err) when
 * the server goes away or breaks the protocol after the connection was set
 * up (the peer is closed then).
 *
 * Lifecycle: {@link IvshmemPeer.connect} resolves once the server has sent
 * this peer's id, the memory and its own eventfds; {@link IvshmemPeer.close}
 * leaves (the server tells the others). The memory stays mapped while views
 * of it live. See {@link IvshmemServer} for an example.
 */
export class IvshmemPeer extends EventEmitter implements AsyncDisposable {
  /** The server's Unix socket path. */
  readonly socketPath: string;
  #fd: number;
  #poller: NativePoller | undefined;
  #id = -1;
  #memory: SharedArrayBuffer | undefined;
  /** Eventfds per peer id (this peer's own included). */
  readonly #eventfds = new Map<number, number[]>();
  #pending = Buffer.alloc(0);
  #pendingFd = -1;
  #stage = 0; // 0: version, 1: id, 2: memory, 3: peers
  #ready: { resolve(p: IvshmemPeer): void; reject(e: Error): void } | undefined;
  readonly #waits = new Map<number, { poller: NativePoller; waiters: Array<(err?: Error) => void> }>();
  #closed = false;
  #expectVectors = 0;

  private constructor(socketPath: string, fd: number) {
    super();
    this.socketPath = socketPath;
    this.#fd = fd;
  }

  /**
   * Connects and waits until the server has sent this peer's id, the memory
   * and its own eventfds. The protocol does not say how many vectors there
   * are: pass `vectors` (as QEMU's `vectors=`) to wait for all of them.
   * Without it, they are taken as complete once the burst that holds the
   * first has been read and this peer has as many as the other peers have.
   *
   * @throws {NotFoundError} ENOENT: no socket at `socketPath`.
   * @throws {IpcError} ECONNREFUSED: nobody listens there; EPROTO: the server broke the protocol.
   * @throws {PeerGoneError} EPIPE: the server closed the connection during the handshake.
   * @throws {TimeoutError} ETIMEDOUT: the handshake did not complete within `timeout` ms.
   * @throws {AbortError} `signal` aborted.
   */
  static connect(socketPath: string, options?: WaitOptions & { vectors?: number }): Promise<IvshmemPeer> {
    const path = v.path(socketPath, 'socketPath');
    const timeout = timeoutOf(options);
    const signal = signalOf(options);
    const vectors = options?.vectors === undefined ? 0 : v.intInRange(options.vectors, 'vectors', 1, 1024);
    if (signal?.aborted) return Promise.reject(abortError(signal));
    const fd = native.unixConnect(path);
    if (fd < 0) return Promise.reject(systemError(fd, 'connect', { path }));
    const peer = new IvshmemPeer(path, fd);
    peer.#expectVectors = vectors;
    return new Promise((resolve, reject) => {
      const timer = deadlineTimer(timeout, () => fail(timeoutError('connect', { path })));
      const onAbort = (): void => fail(abortError(signal!));
      signal?.addEventListener('abort', onAbort, { once: true });
      const fail = (err: Error): void => {
        timer.clear();
        signal?.removeEventListener('abort', onAbort);
        peer.close();
        reject(err);
      };
      peer.#ready = {
        resolve: (p) => {
          timer.clear();
          signal?.removeEventListener('abort', onAbort);
          resolve(p);
        },
        reject: fail,
      };
      peer.#poller = new native.Poller(fd, (status) => peer.#onReadable(status));
      peer.#poller.start(true, false);
    });
  }

  /** This peer's id (IVPosition). */
  get id(): number {
    return this.#id;
  }

  /**
   * The shared memory (BAR2 of the devices), as a SharedArrayBuffer.
   *
   * @throws {IpcError} EBADF: read after close() (views taken before stay valid).
   */
  get memory(): SharedArrayBuffer {
    if (!this.#memory) throw closedError('ivshmem peer', { path: this.socketPath });
    return this.#memory;
  }

  /** Ids of the other peers. */
  get peers(): number[] {
    return [...this.#eventfds.keys()].filter((id) => id !== this.#id);
  }

  /** Interrupt vectors of peer `id` (this peer's own: how many it can be rung on). */
  vectorsOf(id = this.#id): number {
    return this.#eventfds.get(id)?.length ?? 0;
  }

  /**
   * Rings vector `vector` of peer `id` (a guest gets an interrupt; a host
   * peer's {@link IvshmemPeer.wait} resolves): writes 1 to its eventfd.
   *
   * @throws {InvalidArgumentError} No such peer, or no such vector.
   * @throws {IpcError} EBADF: the peer is closed.
   */
  ring(id: number, vector = 0): void {
    if (this.#closed) throw closedError('ivshmem peer', { path: this.socketPath });
    const fds = this.#eventfds.get(id);
    if (!fds) throw invalidArgument(`no ivshmem peer ${id} (peers: ${this.peers.join(', ') || 'none'})`);
    const fd = fds[vector];
    if (fd === undefined) throw invalidArgument(`peer ${id} has ${fds.length} vectors; no vector ${vector}`);
    check(native.eventfdWrite(fd, 1), 'write');
  }

  /**
   * Resolves when a peer rings this peer's vector `vector`, polling its
   * eventfd from the event loop (no thread). Rings since the last wait count
   * once: a ring that came before the call resolves it at once.
   *
   * @throws {TimeoutError} ETIMEDOUT: no ring within `timeout` ms.
   * @throws {AbortError} `signal` aborted.
   * @throws {InvalidArgumentError} This peer has no such vector.
   * @throws {IpcError} EBADF: the peer is closed (also when closed while waiting).
   */
  wait(vector = 0, options?: WaitOptions): Promise<void> {
    if (this.#closed) return Promise.reject(closedError('ivshmem peer', { path: this.socketPath }));
    const fd = this.#eventfds.get(this.#id)?.[vector];
    if (fd === undefined) return Promise.reject(invalidArgument(`this peer has ${this.vectorsOf()} vectors; no vector ${vector}`));
    const timeout = timeoutOf(options);
    const signal = signalOf(options);
    if (signal?.aborted) return Promise.reject(abortError(signal));
    if (native.eventfdRead(fd) > 0) return Promise.resolve();
    let w = this.#waits.get(vector);
    if (!w) {
      const entry = {
        waiters: [] as Array<(err?: Error) => void>,
        poller: new native.Poller(fd, (status) => {
          if (status >= 0 && native.eventfdRead(fd) <= 0) return;
          const err = status < 0 ? systemError(status, 'poll', { path: this.socketPath }) : undefined;
          for (const settle of entry.waiters.splice(0)) settle(err);
          entry.poller.stop();
        }),
      };
      this.#waits.set(vector, entry);
      w = entry;
    }
    const entry = w;
    return new Promise<void>((resolve, reject) => {
      const settle = (err?: Error): void => {
        timer.clear();
        signal?.removeEventListener('abort', onAbort);
        if (err) reject(err);
        else resolve();
      };
      const leave = (err: Error): void => {
        const i = entry.waiters.indexOf(settle);
        if (i >= 0) entry.waiters.splice(i, 1);
        if (!entry.waiters.length) entry.poller.stop();
        settle(err);
      };
      const timer = deadlineTimer(timeout, () => leave(timeoutError('read', { path: this.socketPath })));
      const onAbort = (): void => leave(abortError(signal!));
      signal?.addEventListener('abort', onAbort, { once: true });
      entry.waiters.push(settle);
      entry.poller.start(true, false);
    });
  }

  #onReadable(status: number): void {
    if (this.#closed) return;
    if (status < 0) return this.#lost(systemError(status, 'poll', { path: this.socketPath }));
    // A 'join' or 'leave' listener may close this peer meanwhile.
    while (!this.#closed) {
      const r = native.recvWithFd(this.#fd, 8 - this.#pending.length);
      if (typeof r === 'number') {
        if (r === -EAGAIN) {
          if (this.#ready && !this.#expectVectors) {
            const own = this.vectorsOf();
            const others = this.peers.reduce((most, id) => Math.max(most, this.vectorsOf(id)), 0);
            if (own > 0 && own >= others) this.#setUp();
          }
          return;
        }
        return this.#lost(systemError(r, 'recvmsg', { path: this.socketPath }));
      }
      if (r.data.length === 0) {
        if (r.fd >= 0) native.closeFd(r.fd);
        return this.#lost(new PeerGoneError('EPIPE', { errno: -constants.errno.EPIPE, path: this.socketPath, message: `EPIPE: the ivshmem server '${this.socketPath}' closed the connection` }));
      }
      if (r.fd >= 0) {
        if (this.#pendingFd >= 0) native.closeFd(this.#pendingFd);
        this.#pendingFd = r.fd;
      }
      this.#pending = Buffer.concat([this.#pending, r.data]);
      if (this.#pending.length < 8) continue;
      const value = Number(this.#pending.readBigInt64LE(0));
      this.#pending = Buffer.alloc(0);
      // The descriptor stays in #pendingFd until #message takes it (closes or
      // keeps it): whatever throws, close() then closes it, once.
      try {
        this.#message(value, this.#pendingFd);
      } catch (err) {
        return this.#lost(err as Error);
      }
      if (this.#pendingFd >= 0) {
        native.closeFd(this.#pendingFd); // came with a message that carries none
        this.#pendingFd = -1;
      }
    }
  }

  #message(value: number, fd: number): void {
    const bad = (why: string): IpcError =>
      new IpcError('EPROTO', { errno: -71, path: this.socketPath, message: `EPROTO: ivshmem server '${this.socketPath}': ${why}` });
    switch (this.#stage) {
      case 0:
        if (value !== IVSHMEM_PROTOCOL_VERSION) throw bad(`protocol version ${value}, expected ${IVSHMEM_PROTOCOL_VERSION}`);
        this.#stage = 1;
        return;
      case 1:
        if (value < 0 || value >= MAX_PEERS || fd >= 0) throw bad(`bad peer id ${value}`);
        this.#id = value;
        this.#stage = 2;
        return;
      case 2: {
        if (value !== -1 || fd < 0) throw bad('expected the shared memory descriptor');
        this.#pendingFd = -1;
        let mapped: SharedArrayBuffer | number;
        try {
          mapped = native.map(fd, fstatSync(fd).size, false);
        } finally {
          native.closeFd(fd); // the mapping, if any, keeps the memory
        }
        if (typeof mapped === 'number') throw systemError(mapped, 'mmap', { path: this.socketPath });
        this.#memory = mapped;
        this.#stage = 3;
        return;
      }
      default: {
        if (value < 0 || value >= MAX_PEERS) throw bad(`bad peer id ${value}`);
        if (fd < 0) {
          const fds = this.#eventfds.get(value);
          this.#eventfds.delete(value);
          for (const e of fds ?? []) native.closeFd(e);
          this.emit('leave', value);
          return;
        }
        this.#pendingFd = -1;
        let fds = this.#eventfds.get(value);
        if (fds) fds.push(fd);
        else this.#eventfds.set(value, (fds = [fd]));
        // A peer that came after this one's own eventfds joined later: 'join'
        // once all its vectors are here, so that a listener can ring any of them.
        const own = this.vectorsOf();
        if (value !== this.#id && own > 0 && fds.length === own) this.emit('join', value);
        // Our own eventfds come last on connect: set up once `vectors` of them came
        // (or, not told how many, once the burst holding the first has been read).
        if (value === this.#id && this.#ready && this.#expectVectors && this.vectorsOf() >= this.#expectVectors) this.#setUp();
      }
    }
  }

  #setUp(): void {
    const ready = this.#ready!;
    this.#ready = undefined;
    ready.resolve(this);
  }

  #lost(err: Error): void {
    if (this.#ready) {
      const ready = this.#ready;
      this.#ready = undefined;
      ready.reject(err);
      return;
    }
    this.emit('disconnect', err);
    this.close();
  }

  /** Leaves: the server tells the other peers. The memory stays mapped while views of it live. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#poller?.close();
    native.closeFd(this.#fd);
    for (const w of this.#waits.values()) {
      for (const settle of w.waiters.splice(0)) settle(closedError('ivshmem peer', { path: this.socketPath }));
      w.poller.close();
    }
    this.#waits.clear();
    for (const fds of this.#eventfds.values()) for (const e of fds) native.closeFd(e);
    this.#eventfds.clear();
    if (this.#pendingFd >= 0) native.closeFd(this.#pendingFd);
    this.#pendingFd = -1;
    this.#memory = undefined;
  }

  /** Calls {@link IvshmemPeer.close}, for `await using`. */
  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
  }
}
