// The ivshmem server protocol in TypeScript (IvshmemServer, IvshmemPeer), without
// QEMU: conformance against a C client that speaks to the socket exactly as
// QEMU's hw/misc/ivshmem.c does (socket/connect/recvmsg), Node peers in other
// processes, and the failure paths. test/qemu/ runs the same against real guests.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer, connect as netConnect, type Server, type Socket } from 'node:net';
import { closeSync, existsSync, openSync, readdirSync, readFileSync, writeFileSync, lstatSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { AbortError, AlreadyExistsError, InvalidArgumentError, IpcError, NotFoundError, PeerGoneError, TimeoutError, posix } from 'interprocess';
import { IvshmemServer, IvshmemPeer, type IvshmemServerOptions } from 'interprocess/qemu';
import { collect, compilePeer, killOnExit, root, settled, shmEntries, tempDir, uniqueName, unlinkQuietly, until, withTimeout, type RunResult } from './helpers.js';
import type { NativeBinding } from '../dist/native.js';

// The addon, the very module the library loads: a fake server passing
// descriptors needs it, and a test watches what the library's closes return.
const { native } = (await import(pathToFileURL(join(root, 'dist', 'native.js')).href)) as { native: NativeBinding };

const cClient = compilePeer('ivshmem_client');
cClient.catch(() => {});

type T = TestContext;
const MS = 10_000; // the bound on every await that should succeed at once

const fdCount = (): number => readdirSync('/proc/self/fd').length;
const decoder = new TextDecoder();
const cString = (buf: SharedArrayBuffer, offset: number): string => {
  const bytes = new Uint8Array(buf, offset, 256);
  const end = bytes.indexOf(0);
  return decoder.decode(bytes.slice(0, end < 0 ? bytes.length : end));
};
const putCString = (buf: SharedArrayBuffer, offset: number, text: string): void => {
  const b = Buffer.from(text + '\0');
  new Uint8Array(buf, offset, b.length).set(b);
};
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
/** An expected rejection, bounded too. */
const fails = (p: Promise<void>): Promise<void> => withTimeout(p, MS, 'the expected rejection');

/** A server on a fresh socket in a fresh directory with a fresh memory name; all removed after the test. */
function serve(t: T, options: Partial<IvshmemServerOptions> = {}): IvshmemServer {
  const { dir, cleanup } = tempDir('ivshmem');
  const name = options.name ?? uniqueName('ivs');
  const server = IvshmemServer.listen(join(dir, 'sock'), { size: 1 << 16, vectors: 2, ...options, name });
  t.after(() => {
    server.close();
    unlinkQuietly(name);
    cleanup();
  });
  return server;
}

/** Connects an IvshmemPeer in this process, closed after the test. */
async function peerIn(t: T, server: IvshmemServer, vectors = server.vectors): Promise<IvshmemPeer> {
  const p = await withTimeout(IvshmemPeer.connect(server.socketPath, { vectors, timeout: MS }), MS, 'peer connects');
  t.after(() => p.close());
  return p;
}

/** The next emission of `event` (with a timeout). */
function next<V = number>(emitter: NodeJS.EventEmitter, event: string, what = event): Promise<V> {
  return withTimeout(once(emitter, event), MS, what).then((args) => args[0] as V);
}

/** A child process driven by lines on stdin, read line by line on stdout. */
interface Proc {
  child: ChildProcess;
  lines: string[];
  /** The first line at or after the cursor matching `pattern`; the cursor moves past it. */
  line(pattern: RegExp, ms?: number): Promise<string>;
  send(command: string): void;
  done: Promise<RunResult>;
  end(ms?: number): Promise<RunResult>;
}

function proc(t: T, child: ChildProcess, what: string): Proc {
  killOnExit(t, child);
  const done = collect(child);
  const lines: string[] = [];
  let partial = '';
  let cursor = 0;
  const waiters = new Set<() => void>();
  child.stdout!.on('data', (d: string) => {
    partial += d;
    const parts = partial.split('\n');
    partial = parts.pop()!;
    lines.push(...parts);
    for (const w of [...waiters]) w();
  });
  const line = (pattern: RegExp, ms = MS): Promise<string> => {
    const p = new Promise<string>((resolve, reject) => {
      const check = (): boolean => {
        const i = lines.findIndex((l, k) => k >= cursor && pattern.test(l));
        if (i < 0) return false;
        waiters.delete(check);
        cursor = i + 1;
        resolve(lines[i]!);
        return true;
      };
      if (check()) return;
      waiters.add(check);
      void done.then((r) => {
        if (waiters.delete(check)) reject(new Error(`${what} exited (${r.code ?? r.signal}) without printing ${pattern}:\n${lines.join('\n')}\n${r.stderr}`));
      });
    });
    return withTimeout(p, ms, `${what} prints ${pattern} (so far:\n${lines.join('\n')})`);
  };
  return {
    child,
    lines,
    line,
    send: (command) => child.stdin!.write(command + '\n'),
    done,
    end: (ms = MS) => withTimeout(done, ms, `${what} exits`, () => child.kill('SIGKILL')),
  };
}

async function cProc(t: T, server: IvshmemServer): Promise<Proc> {
  const bin = await withTimeout(cClient, 60_000, 'ivshmem_client.c compiles');
  return proc(t, spawn(bin, [server.socketPath, String(server.vectors)], { stdio: ['pipe', 'pipe', 'pipe'] }), 'ivshmem_client');
}

// A Node peer in another process, driven by commands on stdin.
const NODE_PEER = `
import { IvshmemPeer } from 'interprocess/qemu';
import { createInterface } from 'node:readline';
const [sock, vectors] = process.argv.slice(1);
const out = (...a) => console.log(a.join(' '));
const peer = await IvshmemPeer.connect(sock, { vectors: Number(vectors), timeout: 10000 });
const i32 = new Int32Array(peer.memory);
peer.on('join', (id) => out('join', id, peer.vectorsOf(id)));
peer.on('leave', (id) => out('leave', id));
peer.on('disconnect', (err) => { out('disconnect', err.code); process.exit(0); });
out('ready', peer.id, peer.vectorsOf(), peer.peers.join(',') || '-', peer.memory.byteLength);
for await (const line of createInterface({ input: process.stdin })) {
  const [cmd, a, b] = line.split(' ');
  if (cmd === 'ring') { peer.ring(+a, +b); out('rang', a, b); }
  else if (cmd === 'wait') peer.wait(+a, b ? { timeout: +b } : undefined).then(() => out('woke', a, Atomics.load(i32, 1)), (e) => out('waitfail', a, e.name));
  else if (cmd === 'add') { for (let k = 0; k < +b; k++) Atomics.add(i32, +a, 1); out('added', a, b); }
  else if (cmd === 'store') { Atomics.store(i32, +a, +b); out('stored', a, b); }
  else if (cmd === 'close') { peer.close(); out('closed'); }
}
process.exit(0);
`;

async function nodeProc(t: T, server: IvshmemServer): Promise<{ p: Proc; id: number; peers: string }> {
  const child = spawn(process.execPath, ['--input-type=module', '-e', NODE_PEER, '--', server.socketPath, String(server.vectors)], {
    cwd: new URL('../..', import.meta.url).pathname,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const p = proc(t, child, 'node peer');
  const ready = await p.line(/^ready /);
  const [, id, vectors, peers, size] = ready.split(' ');
  assert.equal(Number(vectors), server.vectors, ready);
  assert.equal(Number(size), server.memory.size, ready);
  return { p, id: Number(id), peers: peers! };
}

// ---------------------------------------------------------------------------

test('listen rejects bad options before creating anything', (t) => {
  const { dir, cleanup } = tempDir('ivshmem');
  t.after(cleanup);
  const name = uniqueName('ivs');
  t.after(() => unlinkQuietly(name));
  const sock = join(dir, 'sock');
  for (const [options, pattern] of [
    [{ size: 1000 }, /power of two/],
    [{ size: 3 << 12 }, /power of two/],
    [{ size: 0 }, /size/],
    [{ size: -4096 }, /size/],
    [{ size: 4096, vectors: 0 }, /vectors/],
    [{ size: 4096, vectors: 1.5 }, /vectors/],
    [{ size: 4096, vectors: 1025 }, /vectors/],
  ] as const) {
    assert.throws(() => IvshmemServer.listen(sock, { name, ...options }), (e: unknown) => e instanceof InvalidArgumentError && pattern.test((e as Error).message), JSON.stringify(options));
  }
  assert.throws(() => IvshmemServer.listen('', { name, size: 4096 }), InvalidArgumentError);
  assert.deepEqual(shmEntries(name), [], 'no memory object created');
  assert.ok(!existsSync(sock), 'no socket created');
});

test('listen on an existing path fails with EADDRINUSE and leaves the path and nothing else behind; a live server is not disturbed', async (t) => {
  const { dir, cleanup } = tempDir('ivshmem');
  t.after(cleanup);
  const path = join(dir, 'taken');
  writeFileSync(path, 'not a socket');
  const name = uniqueName('ivs');
  t.after(() => unlinkQuietly(name));
  const before = fdCount();
  assert.throws(() => IvshmemServer.listen(path, { name, size: 4096 }), (e: unknown) => e instanceof AlreadyExistsError && (e as IpcError).code === 'EADDRINUSE' && (e as Error).message.includes(path));
  assert.equal(readFileSync(path, 'utf8'), 'not a socket');
  assert.deepEqual(shmEntries(name), [], 'a failed listen leaves no memory object');
  assert.equal(fdCount(), before, 'nor a descriptor');

  const server = serve(t);
  const name2 = uniqueName('ivs');
  t.after(() => unlinkQuietly(name2));
  assert.throws(() => IvshmemServer.listen(server.socketPath, { name: name2, size: 4096 }), (e: unknown) => e instanceof AlreadyExistsError && (e as IpcError).code === 'EADDRINUSE');
  assert.deepEqual(shmEntries(name2), []);
  assert.ok(lstatSync(server.socketPath).isSocket(), 'the live server keeps its socket');
  const p = await peerIn(t, server);
  assert.equal(p.id, 0);
});

test('an existing memory object is reused (exclusive: false) only if it has the size asked for', (t) => {
  const name = uniqueName('ivs');
  t.after(() => unlinkQuietly(name));
  const shm = posix.SharedMemory.create(name, { size: 8192 });
  putCString(shm.buffer, 0, 'kept');
  shm.close();
  const { dir, cleanup } = tempDir('ivshmem');
  t.after(cleanup);
  const sock = join(dir, 'sock');
  assert.throws(() => IvshmemServer.listen(sock, { name, size: 4096 }), (e: unknown) => e instanceof InvalidArgumentError && /8192/.test((e as Error).message));
  assert.ok(!existsSync(sock), 'no socket left by the refused listen');
  const server = IvshmemServer.listen(sock, { name, size: 8192 });
  t.after(() => server.close());
  assert.equal(server.memory.size, 8192);
  assert.equal(cString(server.memory.buffer, 0), 'kept');
  assert.equal(lstatSync(sock).mode & 0o777, 0o600, 'socket mode 0600 by default');
});

test('connect: a missing socket, a non-socket, a silent server, a wrong protocol and a server that hangs up give clear errors', async (t) => {
  const { dir, cleanup } = tempDir('ivshmem');
  t.after(cleanup);
  const missing = join(dir, 'missing');
  const e1 = await withTimeout(IvshmemPeer.connect(missing).catch((e: unknown) => e), MS, 'connect fails');
  assert.ok(e1 instanceof NotFoundError, String(e1));
  assert.match((e1 as Error).message, /ENOENT/);
  assert.ok((e1 as Error).message.includes(missing), (e1 as Error).message);
  const file = join(dir, 'file');
  writeFileSync(file, '');
  await withTimeout(assert.rejects(IvshmemPeer.connect(file), { code: 'ECONNREFUSED' }), MS, 'connect fails');

  // Fake servers speaking (or not) over node:net.
  const fake = async (onConnection: (s: Socket) => void): Promise<string> => {
    const path = join(dir, `fake${Math.random().toString(36).slice(2)}`);
    const srv: Server = createServer(onConnection);
    srv.listen(path);
    await withTimeout(once(srv, 'listening'), MS, 'fake server listens');
    t.after(() => srv.close());
    return path;
  };
  const int64 = (v: number): Buffer => {
    const b = Buffer.alloc(8);
    b.writeBigInt64LE(BigInt(v));
    return b;
  };
  const held: Socket[] = [];
  t.after(() => held.forEach((s) => s.destroy()));
  const silent = await fake((s) => held.push(s));
  const t0 = performance.now();
  await withTimeout(assert.rejects(IvshmemPeer.connect(silent, { timeout: 100 }), TimeoutError), MS, 'connect times out');
  assert.ok(performance.now() - t0 >= 90);
  const ac = new AbortController();
  const aborted = IvshmemPeer.connect(silent, { signal: ac.signal });
  setTimeout(() => ac.abort(), 20);
  await withTimeout(assert.rejects(aborted, AbortError), MS, 'connect aborts');
  await fails(assert.rejects(IvshmemPeer.connect(silent, { signal: AbortSignal.abort() }), AbortError));

  const version1 = await fake((s) => (held.push(s), s.write(int64(1))));
  await withTimeout(assert.rejects(IvshmemPeer.connect(version1, { timeout: MS }), (e: unknown) => e instanceof IpcError && (e as IpcError).code === 'EPROTO' && /version 1/.test((e as Error).message)), MS, 'EPROTO');
  const noMemory = await fake((s) => (held.push(s), s.write(Buffer.concat([int64(0), int64(7), int64(-1)]))));
  await withTimeout(assert.rejects(IvshmemPeer.connect(noMemory, { timeout: MS }), (e: unknown) => e instanceof IpcError && (e as IpcError).code === 'EPROTO' && /memory/.test((e as Error).message)), MS, 'EPROTO (no fd)');
  const hangsUp = await fake((s) => s.end(int64(0)));
  await withTimeout(assert.rejects(IvshmemPeer.connect(hangsUp, { timeout: MS }), PeerGoneError), MS, 'EPIPE');
});

test('conformance: a C client speaking as QEMU does gets version, id, memory, the peers\' eventfds in order and its own last; doorbells both ways; join and leave later', async (t) => {
  const server = serve(t, { vectors: 3, size: 1 << 20 });
  putCString(server.memory.buffer, 0, 'hello from node');
  const joins: number[] = [];
  const leaves: number[] = [];
  server.on('join', (id: number) => joins.push(id));
  server.on('leave', (id: number) => leaves.push(id));
  const a = await peerIn(t, server);
  const aJoins: number[] = [];
  a.on('join', (id: number) => aJoins.push(id));
  const bJoined = next(a, 'join');
  const b = await peerIn(t, server);
  assert.deepEqual([a.id, b.id], [0, 1]);
  assert.equal(await bJoined, 1);

  const c = await cProc(t, server);
  const ready = await c.line(/^ready /);
  const cId = Number(/id=(\d+)/.exec(ready)![1]);
  assert.equal(cId, 2);
  assert.equal(ready, `ready id=2 peers=0,1`);
  // Exactly the messages QEMU expects, in this order ("join P" once P's eventfds are all there).
  const fds = (id: number): string[] => Array<string>(3).fill(`msg ${id} fd`);
  assert.deepEqual(c.lines.slice(0, c.lines.indexOf(ready) + 1), [
    'msg 0 nofd', // protocol version
    'msg 2 nofd', // the client's id
    'id 2',
    'msg -1 fd', // the shared memory
    `memory size=${1 << 20} link=/dev/shm${server.memory.name}`,
    'read hello from node',
    ...fds(0),
    'join 0',
    ...fds(1),
    'join 1',
    ...fds(2), // its own, last
    ready,
  ]);
  await until(() => joins.includes(cId), 'the server reports the join');
  assert.deepEqual(joins, [0, 1, 2]);
  await until(() => aJoins.includes(cId), 'the Node peer is told');
  assert.deepEqual(aJoins, [1, 2]);
  assert.equal(a.vectorsOf(cId), 3);
  await until(() => b.peers.includes(cId), 'the other Node peer is told');
  assert.deepEqual(b.peers.sort(), [0, 2]);
  // The C client wrote into the memory: the server and the peers see it.
  assert.equal(cString(server.memory.buffer, 256), 'C client 2 was here');
  assert.equal(cString(a.memory, 256), 'C client 2 was here');

  // C rings the Node peer's vector 1: its wait(1) resolves, its wait(0) does not.
  const w0 = a.wait(0, { timeout: MS });
  const w1 = a.wait(1, { timeout: MS });
  c.send(`ring ${a.id} 1`);
  await c.line(/^rang 0 1$/);
  await withTimeout(w1, MS, 'Node peer woken on vector 1 by the C client');
  await sleep(30);
  assert.equal(await settled(w0), false, 'vector 1 does not wake vector 0');
  c.send(`ring ${a.id} 0`);
  await withTimeout(w0, MS, 'Node peer woken on vector 0 by the C client');
  // The Node peer rings the C client's own vectors: its poll() wakes.
  a.ring(cId, 2);
  assert.equal(await c.line(/^rung /), 'rung 2 1');
  b.ring(cId, 0);
  assert.equal(await c.line(/^rung /), 'rung 0 1');

  // Later: a peer joining, a peer leaving.
  const d = await peerIn(t, server);
  assert.equal(d.id, 3);
  await c.line(/^join 3$/);
  assert.deepEqual(c.lines.slice(-4), ['msg 3 fd', 'msg 3 fd', 'msg 3 fd', 'join 3']);
  assert.equal(d.vectorsOf(cId), 3, 'the newcomer got the C client\'s eventfds');
  d.ring(cId, 1);
  d.ring(cId, 1);
  assert.match(await c.line(/^rung 1 /), /^rung 1 [12]$/, 'rings before the read add up in the eventfd');
  const bLeft = next(a, 'leave');
  b.close();
  await c.line(/^leave 1$/);
  assert.equal(c.lines.at(-2), 'msg 1 nofd');
  assert.equal(await bLeft, 1);
  assert.deepEqual(leaves, [1]);
  // The C client leaving: the Node peers are told.
  const cLeft = next(a, 'leave');
  c.send('quit');
  assert.equal((await c.end()).code, 0);
  assert.equal(await cLeft, cId);
  assert.deepEqual(server.peers.sort(), [0, 3]);
  // And a second C client, after the first left, gets the current state; the server closing is its end of file.
  const c2 = await cProc(t, server);
  assert.equal(await c2.line(/^ready /), 'ready id=4 peers=0,3');
  server.close();
  await c2.line(/^eof$/);
  const r = await c2.end();
  assert.equal(r.code, 0, r.stderr);
});

test('Node peers in separate processes: same memory, distinct ids, join/leave, doorbells per vector both ways; SIGKILL is a leave', async (t) => {
  const server = serve(t, { vectors: 2 });
  const joins: number[] = [];
  const leaves: number[] = [];
  server.on('join', (id: number) => joins.push(id));
  server.on('leave', (id: number) => leaves.push(id));
  const one = await nodeProc(t, server);
  const two = await nodeProc(t, server);
  assert.notEqual(one.id, two.id);
  assert.equal(one.peers, '-');
  assert.equal(two.peers, String(one.id));
  assert.equal(await one.p.line(/^join /), `join ${two.id} 2`, 'told with all vectors');
  assert.deepEqual(joins, [one.id, two.id]);

  // The same memory: Atomics from both processes add up.
  one.p.send('add 0 50000');
  two.p.send('add 0 50000');
  await one.p.line(/^added /);
  await two.p.line(/^added /);
  assert.equal(Atomics.load(new Int32Array(server.memory.buffer), 0), 100000);

  // Doorbells, vector by vector, both ways; a store made before the ring is seen after the wake.
  for (const [from, to] of [
    [one, two],
    [two, one],
  ] as const) {
    to.p.send('wait 0');
    to.p.send('wait 1');
    await sleep(50); // the waits are armed (a ring before them would count too)
    from.p.send(`store 1 ${from.id + 100}`);
    from.p.send(`ring ${to.id} 1`);
    assert.equal(await to.p.line(/^woke /), `woke 1 ${from.id + 100}`);
    await sleep(50);
    assert.ok(!to.p.lines.some((l) => l.startsWith('woke 0')), 'vector 1 did not wake vector 0');
    from.p.send(`ring ${to.id} 0`);
    assert.equal(await to.p.line(/^woke /), `woke 0 ${from.id + 100}`);
  }
  // A timed wait in a child times out.
  one.p.send('wait 1 50');
  assert.equal(await one.p.line(/^waitfail /), 'waitfail 1 TimeoutError');

  // A third peer, in this process, joins and leaves cleanly.
  const three = await peerIn(t, server);
  assert.equal(await one.p.line(/^join /), `join ${three.id} 2`);
  assert.equal(await two.p.line(/^join /), `join ${three.id} 2`);
  three.ring(one.id, 0);
  one.p.send('wait 0');
  await one.p.line(/^woke 0/);
  three.close();
  assert.equal(await one.p.line(/^leave /), `leave ${three.id}`);
  assert.equal(await two.p.line(/^leave /), `leave ${three.id}`);

  // SIGKILL: the server drops the peer, the other is told.
  const left = next(server, 'leave');
  two.p.child.kill('SIGKILL');
  assert.equal(await left, two.id);
  assert.equal(await one.p.line(/^leave /), `leave ${two.id}`);
  assert.deepEqual(server.peers, [one.id]);
  assert.deepEqual(leaves, [three.id, two.id]);
  // close() in the child: a leave too.
  const left2 = next(server, 'leave');
  one.p.send('close');
  assert.equal(await left2, one.id);
  assert.deepEqual(server.peers, []);
});

test('wait: per vector, rings before the wait count once, one ring wakes every waiter, timeout, AbortSignal, close; ring and wait check their arguments', async (t) => {
  const server = serve(t, { vectors: 3 });
  const a = await peerIn(t, server);
  const bJoined = next(a, 'join');
  const b = await peerIn(t, server);
  assert.equal(await bJoined, b.id);
  assert.equal(a.vectorsOf(), 3);
  assert.equal(a.vectorsOf(b.id), 3);

  // Rung before waiting: the wait returns at once; two rings are one.
  b.ring(a.id, 2);
  b.ring(a.id, 2);
  await withTimeout(a.wait(2, { timeout: MS }), MS, 'wait after ring');
  await fails(assert.rejects(a.wait(2, { timeout: 30 }), TimeoutError));
  // One ring wakes every waiter of that vector, none of another.
  const w = [a.wait(1, { timeout: MS }), a.wait(1, { timeout: MS })];
  const other = a.wait(0, { timeout: 200 });
  b.ring(a.id, 1);
  await withTimeout(Promise.all(w), MS, 'both waiters woken');
  await fails(assert.rejects(other, TimeoutError));
  // Timeout: TimeoutError, not earlier than asked.
  const t0 = performance.now();
  await fails(assert.rejects(a.wait(0, { timeout: 80 }), (e: unknown) => e instanceof TimeoutError && (e as TimeoutError).code === 'ETIMEDOUT'));
  assert.ok(performance.now() - t0 >= 75);
  // AbortSignal: pending and already aborted; a later ring is not lost.
  const ac = new AbortController();
  const aborted = a.wait(0, { signal: ac.signal });
  ac.abort(new Error('stop'));
  await withTimeout(assert.rejects(aborted, (e: unknown) => e instanceof AbortError && (e as AbortError).cause instanceof Error), MS, 'abort');
  await fails(assert.rejects(a.wait(0, { signal: AbortSignal.abort() }), AbortError));
  b.ring(a.id, 0);
  await withTimeout(a.wait(0, { timeout: MS }), MS, 'ring after an aborted wait');
  // Arguments.
  assert.throws(() => a.ring(b.id, 3), InvalidArgumentError);
  assert.throws(() => a.ring(999), InvalidArgumentError);
  await fails(assert.rejects(a.wait(3), InvalidArgumentError));
  await fails(assert.rejects(a.wait(-1), InvalidArgumentError));
  // A peer rings itself.
  a.ring(a.id, 1);
  await withTimeout(a.wait(1, { timeout: MS }), MS, 'self ring');
  // close() rejects a pending wait; afterwards ring and wait refuse.
  const pending = a.wait(0);
  a.close();
  await withTimeout(assert.rejects(pending), MS, 'pending wait rejected by close');
  assert.throws(() => a.ring(b.id, 0));
  await fails(assert.rejects(a.wait(0)));
  assert.throws(() => a.memory);
  a.close(); // idempotent
});

test('connect without `vectors` learns them; a \'join\' listener can ring every vector of the newcomer at once', async (t) => {
  const server = serve(t, { vectors: 3 });
  const a = await withTimeout(IvshmemPeer.connect(server.socketPath, { timeout: MS }), MS, 'connect');
  t.after(() => a.close());
  assert.equal(a.vectorsOf(), 3);
  const rang = new Promise<number>((resolve, reject) => {
    a.once('join', (id: number) => {
      try {
        a.ring(id, 2);
        resolve(id);
      } catch (err) {
        reject(err);
      }
    });
  });
  const b = await withTimeout(IvshmemPeer.connect(server.socketPath, { timeout: MS }), MS, 'connect');
  t.after(() => b.close());
  assert.equal(b.vectorsOf(), 3);
  assert.equal(await withTimeout(rang, MS, 'join'), b.id);
  await withTimeout(b.wait(2, { timeout: MS }), MS, 'rung from the join listener');
});

test('many vectors and peers: the handshake does not overflow the socket buffer', async (t) => {
  // 300 vectors: the second peer's handshake is 3 + 300 + 300 messages with descriptors, more
  // than one Unix socket buffer holds (~278 here), so the server must wait for the socket to drain.
  const server = serve(t, { vectors: 300, size: 4096 });
  const errors: Error[] = [];
  server.on('error', (e: Error) => errors.push(e));
  const peers: IvshmemPeer[] = [];
  for (let i = 0; i < 3; i++) peers.push(await peerIn(t, server));
  for (const p of peers) for (const q of peers) assert.equal(p.vectorsOf(q.id), 300, `peer ${p.id} knows all of ${q.id}'s vectors`);
  peers[2]!.ring(peers[0]!.id, 299);
  await withTimeout(peers[0]!.wait(299, { timeout: MS }), MS, 'vector 299');
  const c = await cProc(t, server);
  assert.equal(await c.line(/^ready /), `ready id=3 peers=0,1,2`);
  peers[1]!.ring(3, 299);
  assert.equal(await c.line(/^rung /), 'rung 299 1');
  c.send('quit');
  assert.equal((await c.end()).code, 0);
  assert.deepEqual(errors, []);
});

test('clients that vanish during the handshake or send data are dropped; the server goes on', async (t) => {
  // No 'error' listener: a client gone before its handshake was sent must not
  // become an uncaught exception in the serving process.
  const server = serve(t);
  const a = await peerIn(t, server);
  for (let i = 0; i < 10; i++) {
    const s = netConnect(server.socketPath);
    s.on('error', () => {});
    s.destroy();
  }
  // A client that sends something (QEMU never does) is taken as gone.
  const leaves: number[] = [];
  server.on('leave', (id: number) => leaves.push(id));
  const talker = netConnect(server.socketPath);
  talker.on('error', () => {});
  let greeting = Buffer.alloc(0);
  talker.on('data', (d: Buffer) => (greeting = Buffer.concat([greeting, d])));
  await until(() => greeting.length >= 16, 'the talker gets its id');
  const talkerId = Number(greeting.readBigInt64LE(8));
  assert.ok(server.peers.includes(talkerId));
  talker.write('x');
  await until(() => leaves.includes(talkerId), 'the talker is dropped');
  talker.destroy();
  const b = await peerIn(t, server);
  await until(() => a.peers.includes(b.id), 'a hears of b');
  a.ring(b.id, 1);
  await withTimeout(b.wait(1, { timeout: MS }), MS, 'the server still works');
  await until(() => server.peers.length === 2, () => `vanished clients dropped (peers ${server.peers.join(',')})`);
  assert.deepEqual(server.peers.sort(), [a.id, b.id].sort());
});

test('close(): peers are disconnected (\'disconnect\'), the socket file is removed, later connects fail clearly', async (t) => {
  const server = serve(t);
  const child = await nodeProc(t, server);
  const a = await peerIn(t, server);
  const pending = a.wait(0);
  const disconnected = next<Error>(a, 'disconnect');
  server.close();
  const err = await disconnected;
  assert.ok(err instanceof PeerGoneError, String(err));
  assert.equal((err as IpcError).code, 'EPIPE');
  await withTimeout(assert.rejects(pending), MS, 'a pending wait ends with the connection');
  assert.equal(await child.p.line(/^disconnect /), 'disconnect EPIPE');
  assert.equal((await child.p.end()).code, 0);
  assert.ok(!existsSync(server.socketPath), 'socket file removed');
  assert.deepEqual(server.peers, []);
  server.close(); // idempotent
  await withTimeout(assert.rejects(IvshmemPeer.connect(server.socketPath), NotFoundError), MS, 'connect after close');
  assert.ok(shmEntries(server.memory.name).length === 1, 'the memory object stays (the caller unlinks it)');
});

test('each descriptor is closed exactly once: a memory descriptor that cannot be mapped, a \'join\' listener that throws', async (t) => {
  // Every close the library makes, with what close(2) said: EBADF means the
  // number was closed already (or, worse, it had been reused meanwhile).
  const closes: Array<{ fd: number; r: number }> = [];
  const closeFd = native.closeFd;
  native.closeFd = (fd) => {
    const r = closeFd(fd);
    closes.push({ fd, r });
    return r;
  };
  t.after(() => void (native.closeFd = closeFd));
  const failedCloses = (): Array<{ fd: number; r: number }> => closes.filter((c) => c.r < 0);
  const int64 = (v: number): Buffer => {
    const b = Buffer.alloc(8);
    b.writeBigInt64LE(BigInt(v));
    return b;
  };

  // A fake server passing a directory as the shared memory: mmap refuses it.
  const { dir, cleanup } = tempDir('ivshmem');
  t.after(cleanup);
  const listenFd = native.unixListen(join(dir, 'fake'), 4);
  assert.ok(listenFd >= 0, `listen: ${listenFd}`);
  t.after(() => void closeFd(listenFd));
  const dirFd = openSync(dir, 'r');
  t.after(() => closeSync(dirFd));
  const before = fdCount();
  const connecting = IvshmemPeer.connect(join(dir, 'fake'), { timeout: MS });
  const conn = native.unixAccept(listenFd); // connect() is synchronous: the connection is queued already
  assert.ok(conn >= 0, `accept: ${conn}`);
  t.after(() => void closeFd(conn));
  for (const [value, fd] of [[0, -1], [3, -1], [-1, dirFd]] as const) assert.equal(native.sendWithFd(conn, int64(value), fd), 8);
  const err = await withTimeout(connecting.then(() => assert.fail('connected'), (e: unknown) => e), MS, 'connect fails');
  assert.ok(err instanceof IpcError && err.syscall === 'mmap', `expected an mmap IpcError, got ${String(err)}`);
  assert.deepEqual(failedCloses(), [], 'no descriptor closed twice');
  assert.equal(fdCount(), before + 1, 'only the fake server\'s end stays open: the socket and the descriptor received are closed');

  // A 'join' listener that throws disconnects the peer, whose eventfds (the newcomer's included) are closed once.
  const server = serve(t);
  const a = await peerIn(t, server);
  const bug = new Error('a bug in a listener');
  a.on('join', () => {
    throw bug;
  });
  const disconnected = next<Error>(a, 'disconnect');
  await peerIn(t, server);
  assert.equal(await disconnected, bug);
  assert.deepEqual(failedCloses(), [], 'no descriptor closed twice');
});

test('no descriptor leaks: several peers connect, ring, wait and leave, failed connects, then the server closes', async () => {
  const cycle = async (): Promise<void> => {
    const { dir, cleanup } = tempDir('ivshmem');
    const name = uniqueName('ivs');
    try {
      const server = IvshmemServer.listen(join(dir, 'sock'), { name, size: 1 << 16, vectors: 3 });
      const peers: IvshmemPeer[] = [];
      for (let i = 0; i < 4; i++) peers.push(await withTimeout(IvshmemPeer.connect(server.socketPath, { vectors: 3, timeout: MS }), MS, 'connect'));
      for (const p of peers) {
        const woke = p.wait(1, { timeout: MS });
        peers[0]!.ring(p.id, 1);
        await withTimeout(woke, MS, 'wake');
        await fails(assert.rejects(p.wait(2, { timeout: 1 }), TimeoutError));
      }
      // Two leave by themselves, the others are disconnected by close().
      for (const p of peers.slice(0, 2)) {
        const left = next(server, 'leave');
        p.close();
        await left;
      }
      const gone = peers.slice(2).map((p) => next(p, 'disconnect'));
      await fails(assert.rejects(IvshmemPeer.connect(join(dir, 'missing')), NotFoundError));
      server.close();
      await Promise.all(gone);
    } finally {
      unlinkQuietly(name);
      cleanup();
    }
  };
  await cycle(); // warm up whatever Node opens once
  await sleep(10);
  const before = fdCount();
  await cycle();
  await cycle();
  await sleep(10);
  assert.equal(fdCount(), before, `descriptors: ${before} before, ${fdCount()} after`);
});
