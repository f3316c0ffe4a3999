/**
 * System V shared memory (sysv.SharedMemory, sysv.ftok) against real
 * processes: compiled C peers (test/peers/shm_sysv_peer.c, after the
 * tutorial's shm_example.c, and test/peers/ftok_peer.c) and Node children.
 * Every segment is removed by the test that made it, even when the test
 * fails; the last hook checks that no segment made by this file (or by a
 * process it started) is left.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { sysv, formatKey, IpcError, AlreadyExistsError, NotFoundError, InvalidArgumentError, PermissionError, TooLargeError } from 'interprocess';
import * as sysvEntry from 'interprocess/sysv';
import { collect, compilePeer, isRoot, NOBODY, spawnNode, tempDir, waitForLine, type RunResult } from './helpers.js';

const { SharedMemory, IPC_PRIVATE, ftok } = sysv;
type Shm = sysv.SharedMemory;
type TestContext = { after(fn: () => void | Promise<void>): void };

const HELLO = 'Hello, Shared Memory';
const SHM_DEST = 0o1000;

// A collection on demand, to see detaches that wait for the garbage collector.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const tmp = tempDir('shm-sysv');
/** Every process this file starts: a segment they created counts as ours. */
const creators = new Set<number>([process.pid]);

interface Segment {
  key: number;
  id: number;
  perms: number;
  size: number;
  cpid: number;
  lpid: number;
  nattch: number;
}

/** /proc/sysvipc/shm, parsed. */
function segments(): Segment[] {
  return readFileSync('/proc/sysvipc/shm', 'utf8')
    .split('\n')
    .slice(1)
    .filter((l) => l.trim())
    .map((l) => {
      const f = l.trim().split(/\s+/);
      return { key: Number(f[0]), id: Number(f[1]), perms: parseInt(f[2], 8), size: Number(f[3]), cpid: Number(f[4]), lpid: Number(f[5]), nattch: Number(f[6]) };
    });
}

const ours = (): Segment[] => segments().filter((s) => creators.has(s.cpid));

/** Marks a segment for removal if it still exists (cleanup must not hide the real failure). */
function removeQuietly(id: number): void {
  try {
    SharedMemory.remove(id);
  } catch (err) {
    if (!(err instanceof InvalidArgumentError)) throw err; // EINVAL: already gone
  }
}

/** Removes the segment when the test ends, pass or fail. */
function track<T extends Shm | number>(t: TestContext, shm: T): T {
  const id = typeof shm === 'number' ? shm : shm.id;
  t.after(() => {
    removeQuietly(id);
    if (typeof shm !== 'number') shm.close();
  });
  return shm;
}

/** A key no segment uses yet, in a range unlikely to meet other programs' keys. */
function createWithFreshKey(t: TestContext, options: Omit<sysv.SharedMemoryCreateOptions, 'key'>, base = 0x49500000): { shm: Shm; key: number } {
  for (let attempt = 0; ; attempt++) {
    const key = base + randomInt(0x10000);
    try {
      return { shm: track(t, SharedMemory.create({ ...options, key })), key: key | 0 };
    } catch (err) {
      if (!(err instanceof AlreadyExistsError) || attempt > 20) throw err;
    }
  }
}

/** A fresh file to give ftok. */
let files = 0;
function ftokFile(): string {
  const file = join(tmp.dir, `shmfile-${++files}`);
  writeFileSync(file, '');
  return file;
}

function cString(buffer: SharedArrayBuffer, offset = 0): string {
  const bytes = new Uint8Array(buffer, offset);
  const end = bytes.indexOf(0);
  return Buffer.from(bytes.subarray(0, end < 0 ? bytes.length : end)).toString('utf8');
}

function putCString(buffer: SharedArrayBuffer, text: string, offset = 0): void {
  const bytes = Buffer.from(text + '\0', 'utf8');
  new Uint8Array(buffer, offset, bytes.length).set(bytes);
}

function throwsLike(fn: () => unknown, Cls: abstract new (...a: never[]) => Error, fields: Record<string, unknown>): IpcError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught !== undefined, `expected ${Cls.name}, nothing was thrown`);
  assert.ok(caught instanceof Cls, `expected ${Cls.name}, got ${String(caught)}`);
  assert.ok(caught instanceof IpcError);
  for (const [k, want] of Object.entries(fields)) {
    const got: unknown = (caught as unknown as Record<string, unknown>)[k];
    if (want instanceof RegExp) assert.match(String(got), want, `${k} of ${String(caught)}`);
    else assert.equal(got, want, `${k} of ${String(caught)}`);
  }
  return caught as IpcError;
}

const shmPeer = compilePeer('shm_sysv_peer');
const ftokPeer = compilePeer('ftok_peer');
// Reported by the tests that await them, not as unhandled rejections.
shmPeer.catch(() => {});
ftokPeer.catch(() => {});

function started(child: ChildProcess): ChildProcess {
  if (child.pid !== undefined) creators.add(child.pid);
  return child;
}

async function spawnPeer(...args: string[]): Promise<ChildProcess> {
  return started(spawn(await shmPeer, args, { stdio: ['pipe', 'pipe', 'pipe'] }));
}

/** Runs the C peer to completion; returns its stdout and pid. */
async function runPeer(...args: string[]): Promise<{ stdout: string; pid: number }> {
  const child = started(spawn(await shmPeer, args, { stdio: ['ignore', 'pipe', 'pipe'] }));
  const r = await collect(child);
  assert.equal(r.code, 0, `shm_sysv_peer ${args.join(' ')} failed: ${r.stderr}`);
  return { stdout: r.stdout, pid: child.pid! };
}

function runNodeChild(code: string, args: string[] = [], options: Parameters<typeof spawnNode>[2] = {}): Promise<RunResult> {
  return collect(started(spawnNode(code, args, options)));
}

after(async () => {
  tmp.cleanup();
  // Removed segments vanish once the last attachment is gone; ours are
  // detached when their SharedArrayBuffers are collected.
  const deadline = Date.now() + 10_000;
  let left = ours();
  while (left.length > 0 && Date.now() < deadline) {
    gc();
    await new Promise((resolve) => setImmediate(resolve));
    left = ours();
  }
  for (const s of left) removeQuietly(s.id);
  assert.deepEqual(left, [], 'segments left behind');
});

test('the subpath export is the same API', () => {
  assert.equal(sysvEntry.SharedMemory, SharedMemory);
  assert.equal(sysvEntry.ftok, ftok);
  assert.equal(sysvEntry.IPC_PRIVATE, 0);
  assert.equal(IPC_PRIVATE, 0);
});

test('ftok gives the key C computes for the same file and ids, negative keys included', async () => {
  const file = ftokFile();
  const ids = [65, 1, 255, 0x141, 0x80, 0x7f];
  const r = await collect(spawn(await ftokPeer, [file, ...ids.map(String)], { stdio: ['ignore', 'pipe', 'pipe'] }));
  assert.equal(r.code, 0, r.stderr);
  const fromC = new Map(r.stdout.trim().split('\n').map((l) => l.split(' ').map(Number) as [number, number]));
  assert.equal(fromC.size, ids.length);
  for (const id of ids) {
    const key = ftok(file, id);
    assert.ok(Number.isInteger(fromC.get(id)), `C printed ${r.stdout}`);
    assert.equal(key, fromC.get(id), `ftok(file, ${id})`);
  }
  // Only the low 8 bits of the id count; 0x80 and above set the sign bit.
  assert.equal(ftok(file, 0x141), ftok(file, 65));
  assert.ok(ftok(file, 255) < 0);
  assert.ok(ftok(file, 0x80) < 0);
  assert.ok(ftok(file, 0x7f) > 0);
  // Another file, another key; the same file, the same key.
  assert.notEqual(ftok(ftokFile(), 65), ftok(file, 65));
  assert.equal(ftok(file, 65), ftok(file, 65));
});

test('ftok of a missing file is NotFoundError; bad arguments are rejected', () => {
  const missing = join(tmp.dir, 'no-such-file');
  throwsLike(() => ftok(missing, 65), NotFoundError, { code: 'ENOENT', errno: -2, syscall: 'ftok', path: missing, message: /^ENOENT: .*ftok '/ });
  throwsLike(() => SharedMemory.create({ key: { path: missing, projId: 65 }, size: 1024 }), NotFoundError, { syscall: 'ftok', path: missing });
  throwsLike(() => SharedMemory.open({ path: missing, projId: 65 }), NotFoundError, { syscall: 'ftok' });
  const file = ftokFile();
  throwsLike(() => ftok(file, 1.5), InvalidArgumentError, { code: 'ERR_OUT_OF_RANGE', message: /projId must be an integer/ });
  throwsLike(() => ftok(file, '65' as unknown as number), InvalidArgumentError, { message: /projId must be an integer/ });
  throwsLike(() => ftok('', 65), InvalidArgumentError, { message: /path must not be empty/ });
  throwsLike(() => ftok(42 as unknown as string, 65), InvalidArgumentError, { code: 'ERR_INVALID_ARG_TYPE' });
});

test('create with a key number; exclusive by default (EEXIST, key shown as 0x........)', (t) => {
  const { shm, key } = createWithFreshKey(t, { size: 4096 });
  assert.equal(shm.key, key);
  assert.equal(shm.size, 4096);
  assert.ok(shm.id >= 0);
  assert.ok(shm.buffer instanceof SharedArrayBuffer);
  assert.equal(shm.stat().key, key);
  assert.ok(segments().some((s) => s.id === shm.id && s.key === key));

  const err = throwsLike(() => SharedMemory.create({ key, size: 4096 }), AlreadyExistsError, {
    code: 'EEXIST',
    errno: -17,
    syscall: 'shmget',
    key,
    message: `EEXIST: file already exists, shmget key ${formatKey(key)}`,
  });
  assert.match(err.message, /key 0x4950[0-9a-f]{4}$/);
});

test('a key above 0x7fffffff is C\'s negative key_t, shown unsigned in messages', (t) => {
  const { shm, key } = createWithFreshKey(t, { size: 4096 }, 0xdead0000);
  assert.ok(key < 0);
  assert.equal(shm.key, key);
  assert.equal(shm.stat().key, key);
  assert.ok(segments().some((s) => s.id === shm.id && s.key === key), '/proc shows the same signed key');
  // The unsigned spelling names the same segment.
  const same = SharedMemory.open(key >>> 0);
  t.after(() => same.close());
  assert.equal(same.id, shm.id);
  throwsLike(() => SharedMemory.create({ key: key >>> 0, size: 4096 }), AlreadyExistsError, {
    key,
    message: new RegExp(`key 0xdead${((key >>> 0) & 0xffff).toString(16).padStart(4, '0')}$`),
  });
});

test('exclusive:false attaches the existing segment; a larger size is EINVAL', (t) => {
  const { shm, key } = createWithFreshKey(t, { size: 8192 });
  putCString(shm.buffer, HELLO);
  const again = SharedMemory.create({ key, size: 100, exclusive: false });
  t.after(() => again.close());
  assert.equal(again.id, shm.id);
  assert.equal(again.size, 8192, 'the whole segment is attached');
  assert.equal(cString(again.buffer), HELLO);
  putCString(again.buffer, 'through the second attachment', 4096);
  assert.equal(cString(shm.buffer, 4096), 'through the second attachment');
  assert.equal(shm.stat().nattch, 2);

  throwsLike(() => SharedMemory.create({ key, size: 8193, exclusive: false }), InvalidArgumentError, {
    code: 'EINVAL',
    errno: -22,
    syscall: 'shmget',
    key,
    message: `EINVAL: invalid argument, shmget key ${formatKey(key)}`,
  });
  assert.equal(shm.stat().nattch, 2, 'the failed call attached nothing');

  // On a key nobody uses, exclusive:false creates.
  const fresh = 0x49600000 + randomInt(0x10000);
  const made = track(t, SharedMemory.create({ key: fresh, size: 4096, exclusive: false }));
  assert.equal(made.stat().cpid, process.pid);
});

test('create with { path, projId } uses ftok; open finds it the same way', (t) => {
  const file = ftokFile();
  const shm = track(t, SharedMemory.create({ key: { path: file, projId: 65 }, size: 1024 }));
  assert.equal(shm.key, ftok(file, 65));
  assert.equal(shm.stat().key, ftok(file, 65));
  putCString(shm.buffer, HELLO);
  const opened = SharedMemory.open({ path: file, projId: 65 });
  t.after(() => opened.close());
  assert.equal(opened.id, shm.id);
  assert.equal(cString(opened.buffer), HELLO);
  // 0x141 is the same project id as 65 for ftok.
  assert.equal(SharedMemory.open({ path: file, projId: 0x141 }).id, shm.id);
});

test('IPC_PRIVATE (the default) always makes a new segment', (t) => {
  const a = track(t, SharedMemory.create({ size: 4096 }));
  const b = track(t, SharedMemory.create({ size: 4096, key: IPC_PRIVATE }));
  const c = track(t, SharedMemory.create({ size: 4096, key: IPC_PRIVATE, exclusive: false }));
  assert.equal(new Set([a.id, b.id, c.id]).size, 3);
  for (const s of [a, b, c]) {
    assert.equal(s.key, 0);
    assert.equal(s.stat().key, 0);
  }
  new Uint8Array(a.buffer)[0] = 1;
  assert.equal(new Uint8Array(b.buffer)[0], 0);
});

test('open of a missing key is NotFoundError; open(IPC_PRIVATE) is rejected', () => {
  let key: number;
  do key = 0x49700000 + randomInt(0x10000);
  while (segments().some((s) => s.key === key));
  throwsLike(() => SharedMemory.open(key), NotFoundError, {
    code: 'ENOENT',
    errno: -2,
    syscall: 'shmget',
    key,
    message: `ENOENT: no such file or directory, shmget key ${formatKey(key)}`,
  });
  for (const k of [IPC_PRIVATE, 0]) {
    const err = throwsLike(() => SharedMemory.open(k), InvalidArgumentError, { message: /IPC_PRIVATE names no existing segment/ });
    assert.equal(err.syscall, undefined);
  }
});

test('attach(id): a second attachment in this process and one in a Node child', async (t) => {
  const shm = track(t, SharedMemory.create({ size: 2048 }));
  const second = SharedMemory.attach(shm.id);
  t.after(() => second.close());
  assert.equal(second.id, shm.id);
  assert.equal(second.key, 0);
  assert.equal(second.size, 2048);
  putCString(shm.buffer, HELLO);
  assert.equal(cString(second.buffer), HELLO);

  const r = await runNodeChild(
    `import { sysv } from 'interprocess';
     const shm = sysv.SharedMemory.attach(Number(process.argv[1]));
     const bytes = new Uint8Array(shm.buffer);
     console.log('child read: ' + Buffer.from(bytes.subarray(0, bytes.indexOf(0))).toString());
     console.log('nattch ' + shm.stat().nattch);
     bytes.set(Buffer.from('Hello from the child\\0'), 100);`,
    [String(shm.id)],
  );
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, `child read: ${HELLO}\nnattch 3\n`);
  assert.equal(cString(shm.buffer, 100), 'Hello from the child');

  // attach of an id that names no segment: EINVAL from shmctl(IPC_STAT).
  assert.ok(!segments().some((s) => s.id === 0x7ffffff0));
  throwsLike(() => SharedMemory.attach(0x7ffffff0), InvalidArgumentError, { code: 'EINVAL', errno: -22, syscall: 'shmctl' });
});

test('stat(): key, size, mode, ids, pids, nattch and times; nattch counts a C peer', async (t) => {
  const t0 = Math.floor(Date.now() / 1000);
  const { shm, key } = createWithFreshKey(t, { size: 1000, mode: 0o640 });
  const st = shm.stat();
  assert.equal(st.id, shm.id);
  assert.equal(st.key, key);
  assert.equal(st.size, 1000, 'the size asked for, not rounded to pages');
  assert.equal(st.mode & 0o777, 0o640, 'System V ignores the umask');
  assert.equal(st.mode & SHM_DEST, 0);
  assert.equal(st.uid, process.getuid!());
  assert.equal(st.gid, process.getgid!());
  assert.equal(st.cuid, process.getuid!());
  assert.equal(st.cgid, process.getgid!());
  assert.equal(st.cpid, process.pid);
  assert.equal(st.lpid, process.pid);
  assert.equal(st.nattch, 1);
  assert.ok(st.atime instanceof Date);
  assert.equal(st.dtime, null, 'never detached yet');
  assert.ok(st.ctime instanceof Date);
  // The kernel stamps whole seconds from its coarse clock, which may lag
  // Date.now() by a tick across a second boundary: allow one second.
  const now = Math.ceil(Date.now() / 1000);
  for (const d of [st.atime, st.ctime]) {
    const sec = d!.getTime() / 1000;
    assert.ok(sec >= t0 - 1 && sec <= now, `${sec} is within [${t0 - 1}, ${now}]`);
  }
  assert.deepEqual(SharedMemory.stat(shm.id), st);

  const holder = await spawnPeer('hold', String(shm.id));
  const exited = once(holder, 'exit');
  try {
    await waitForLine(holder, /^attached$/);
    const held = shm.stat();
    assert.equal(held.nattch, 2);
    assert.equal(held.lpid, holder.pid);
    assert.equal(held.cpid, process.pid);
  } finally {
    holder.stdin!.end();
  }
  const [code] = await exited;
  assert.equal(code, 0);
  const after = shm.stat();
  assert.equal(after.nattch, 1);
  assert.equal(after.lpid, holder.pid, 'the last shmdt was the peer\'s');
  assert.ok(after.dtime instanceof Date);
  assert.ok(after.dtime.getTime() / 1000 >= t0 - 1);
});

test('the tutorial: Node creates with an ftok key, C attaches by the same key and writes', async (t) => {
  const file = ftokFile();
  const shm = track(t, SharedMemory.create({ key: { path: file, projId: 65 }, size: 1024, mode: 0o666 }));
  assert.equal(new Uint8Array(shm.buffer)[0], 0);
  const { stdout } = await runPeer('attach-write', file, '65', HELLO);
  assert.equal(stdout, `wrote id=${shm.id} key=${formatKey(ftok(file, 65))}\n`);
  assert.equal(cString(shm.buffer), HELLO);
  assert.equal(shm.stat().nattch, 1, 'the peer detached');
});

test('the tutorial the other way: C creates and writes, Node opens by key and reads, C reads the reply', async (t) => {
  const file = ftokFile();
  const { stdout, pid } = await runPeer('create-write', file, '65', '1024', HELLO);
  const m = /^created id=(\d+) key=(0x[0-9a-f]{8})\n$/.exec(stdout);
  assert.ok(m, stdout);
  const id = track(t, Number(m[1]));
  assert.equal(m[2], formatKey(ftok(file, 65)));

  const shm = SharedMemory.open({ path: file, projId: 65 });
  t.after(() => shm.close());
  assert.equal(shm.id, id);
  assert.equal(shm.size, 1024);
  assert.equal(cString(shm.buffer), HELLO);
  const st = shm.stat();
  assert.equal(st.cpid, pid);
  assert.equal(st.mode & 0o777, 0o600);
  assert.equal(st.nattch, 1);

  putCString(shm.buffer, 'Hello back from Node');
  assert.equal((await runPeer('read', String(id))).stdout, 'read: Hello back from Node\n');
});

test('remove(): the key is released at once, the memory when the last attachment goes', async (t) => {
  const { shm, key } = createWithFreshKey(t, { size: 4096 });
  const view = new Uint8Array(shm.buffer);
  shm.remove();
  const st = shm.stat();
  assert.equal(st.mode & SHM_DEST, SHM_DEST, 'marked for destruction');
  assert.equal(st.key, IPC_PRIVATE, 'the key no longer names it');
  throwsLike(() => SharedMemory.open(key), NotFoundError, { code: 'ENOENT', key });
  // The attachment still works, and Linux still lets another process attach by id.
  putCString(shm.buffer, 'after remove');
  view[4095] = 9;
  assert.equal((await runPeer('read', String(shm.id))).stdout, 'read: after remove\n');
  // The key can be used for a new segment right away.
  const next = track(t, SharedMemory.create({ key, size: 4096 }));
  assert.notEqual(next.id, shm.id);
  assert.equal(new Uint8Array(next.buffer)[4095], 0);

  // Static remove of a segment nobody is attached to: gone at once.
  const file = ftokFile();
  const { stdout } = await runPeer('create-write', file, '66', '64', 'doomed');
  const id = track(t, Number(/id=(\d+)/.exec(stdout)![1]));
  assert.equal(SharedMemory.stat(id).nattch, 0);
  SharedMemory.remove(id);
  assert.ok(!segments().some((s) => s.id === id));
  throwsLike(() => SharedMemory.stat(id), InvalidArgumentError, { code: 'EINVAL', errno: -22, syscall: 'shmctl' });
  throwsLike(() => SharedMemory.remove(id), InvalidArgumentError, { code: 'EINVAL', syscall: 'shmctl' });
  throwsLike(() => SharedMemory.attach(id), InvalidArgumentError, { code: 'EINVAL' });
});

test('bad input is rejected before any system call', () => {
  const before = ours().length;
  const badKeys: [unknown, RegExp][] = [
    [1.5, /key must be a 32-bit integer, got 1\.5/],
    [2 ** 40, /key must be a 32-bit integer, got 1099511627776/],
    [2 ** 32, /key must be a 32-bit integer/],
    [-(2 ** 31) - 1, /key must be a 32-bit integer/],
    [NaN, /key must be a 32-bit integer, got NaN/],
    ['x', /key must be a 32-bit integer, got "x"/],
    [null, /key must be a 32-bit integer, got null/],
  ];
  for (const [key, message] of badKeys) {
    for (const call of [() => SharedMemory.create({ key: key as number, size: 4096 }), () => SharedMemory.open(key as number)]) {
      const err = throwsLike(call, InvalidArgumentError, { code: 'ERR_OUT_OF_RANGE', message });
      assert.equal(err.syscall, undefined);
    }
  }
  const badOptions: [unknown, new (...a: never[]) => Error, RegExp][] = [
    [{ size: 0 }, InvalidArgumentError, /size must be greater than 0, got 0/],
    [{ size: -1 }, InvalidArgumentError, /size must be greater than 0/],
    [{ size: 1.5 }, InvalidArgumentError, /size must be an integer/],
    [{ size: '10' }, InvalidArgumentError, /size must be a number, got "10"/],
    [{}, InvalidArgumentError, /size must be a number, got undefined/],
    [{ size: 2 ** 60 }, TooLargeError, /too large/],
    [undefined, InvalidArgumentError, /options with a size are required/],
    [{ size: 4096, mode: 0o1000 }, InvalidArgumentError, /mode must be an integer from 0 to 0o777/],
    [{ size: 4096, exclusive: 1 }, InvalidArgumentError, /exclusive must be a boolean/],
  ];
  for (const [options, Cls, message] of badOptions) {
    const err = throwsLike(() => SharedMemory.create(options as sysv.SharedMemoryCreateOptions), Cls, { message });
    assert.equal(err.syscall, undefined);
  }
  for (const id of [-1, 1.5, 2 ** 31, 'x', undefined]) {
    for (const call of [() => SharedMemory.attach(id as number), () => SharedMemory.stat(id as number), () => SharedMemory.remove(id as number)]) {
      throwsLike(call, InvalidArgumentError, { code: 'ERR_OUT_OF_RANGE', message: /id must be an integer from 0/ });
    }
  }
  assert.equal(ours().length, before, 'no segment was created');
});

test('close(): views made before it stay usable; the handle refuses further use', (t) => {
  const shm = track(t, SharedMemory.create({ size: 4096 }));
  const bytes = new Uint8Array(shm.buffer);
  const words = new Int32Array(shm.buffer);
  bytes[0] = 1;
  shm.close();
  assert.equal(shm.closed, true);
  shm.close();
  shm[Symbol.dispose]();
  throwsLike(() => shm.buffer, IpcError, { code: 'EBADF', errno: -9, key: 0, message: /closed/ });
  // Still attached: the views hold the attachment, and writes reach the segment.
  assert.equal(shm.stat().nattch, 1);
  bytes[1] = 2;
  Atomics.add(words, 1, 42);
  const again = SharedMemory.attach(shm.id);
  t.after(() => again.close());
  assert.deepEqual([...new Uint8Array(again.buffer, 0, 2)], [1, 2]);
  assert.equal(new Int32Array(again.buffer)[1], 42);
});

test('GC stress: thousands of segments attached and dropped; all detached and destroyed', async () => {
  const child = started(
    spawnNode(
      `import { sysv } from 'interprocess';
       import { readFileSync } from 'node:fs';
       const gc = globalThis.gc;
       const attached = () => readFileSync('/proc/self/maps', 'utf8').split('\\n').filter((l) => l.includes('/SYSV')).length;
       const live = () => new Set(readFileSync('/proc/sysvipc/shm', 'utf8').split('\\n').slice(1).filter((l) => l.trim()).map((l) => Number(l.trim().split(/\\s+/)[1])));
       // Work in functions that have returned before we collect: a suspended
       // async frame may keep its last values alive.
       function churn(ids, kept) {
         for (let i = 0; i < 2000; i++) {
           const shm = sysv.SharedMemory.create({ size: 4096 });
           const view = new Uint8Array(shm.buffer);
           view[0] = i & 0xff;
           view[4095] = 0x5a;
           ids.push(shm.id);
           shm.remove();
           shm.close();
           if (i % 250 === 0) kept.push({ i, id: shm.id, view });
           if (i % 50 === 49) gc();
         }
       }
       function holdAndDrop(ids) {
         const held = [];
         for (let i = 0; i < 200; i++) {
           const shm = sysv.SharedMemory.create({ size: 4096 });
           ids.push(shm.id);
           held.push(new Uint8Array(shm.buffer));
           shm.remove();
           shm.close();
         }
         return attached();
       }
       function probe() {
         const shm = sysv.SharedMemory.create({ size: 4096 });
         new Uint8Array(shm.buffer)[0] = 1;
         shm.close();
         return shm.id;
       }
       async function until(done) {
         const deadline = Date.now() + 10000;
         for (;;) {
           gc();
           if (done() || Date.now() > deadline) return;
           await new Promise((resolve) => setImmediate(resolve));
         }
       }
       const ids = [], kept = [];
       churn(ids, kept);
       const whileHeld = holdAndDrop(ids);
       await until(() => attached() <= kept.length);
       const afterGc = attached();
       const keptIds = new Set(kept.map((k) => k.id));
       const alive = live();
       const leftover = ids.filter((id) => alive.has(id) && !keptIds.has(id)).length;
       const keptAlive = kept.filter((k) => alive.has(k.id)).length;
       for (const { i, view } of kept) {
         if (view[0] !== (i & 0xff) || view[4095] !== 0x5a) throw new Error('kept view ' + i + ' lost its content');
         view[1] = 7;
       }
       // A segment not removed: its nattch drops to 0 once its views are collected.
       const probeId = probe();
       const nattchBefore = sysv.SharedMemory.stat(probeId).nattch;
       await until(() => sysv.SharedMemory.stat(probeId).nattch === 0);
       const nattchAfter = sysv.SharedMemory.stat(probeId).nattch;
       sysv.SharedMemory.remove(probeId);
       console.log(JSON.stringify({ whileHeld, afterGc, kept: kept.length, keptAlive, leftover, nattchBefore, nattchAfter, probeGone: !live().has(probeId) }));`,
      [],
      { nodeArgs: ['--expose-gc'] },
    ),
  );
  const r = await collect(child);
  assert.equal(r.code, 0, r.stderr);
  const result = JSON.parse(r.stdout) as Record<string, number | boolean>;
  assert.equal(result.kept, 8);
  assert.ok((result.whileHeld as number) >= 200 + 8, `attached while held: ${result.whileHeld}`);
  assert.equal(result.afterGc, 8, 'every dropped segment was detached; the kept ones were not');
  assert.equal(result.keptAlive, 8, 'removed segments still attached survive');
  assert.equal(result.leftover, 0, 'removed and detached segments are destroyed');
  assert.equal(result.nattchBefore, 1);
  assert.equal(result.nattchAfter, 0);
  assert.equal(result.probeGone, true);
  assert.deepEqual(segments().filter((s) => s.cpid === child.pid), []);
});

test('permission: an unprivileged process cannot attach a 0o600 segment (EACCES)', { skip: !isRoot && 'needs root to run a child as nobody' }, async (t) => {
  const secret = createWithFreshKey(t, { size: 4096, mode: 0o600 });
  putCString(secret.shm.buffer, 'secret');
  const readable = createWithFreshKey(t, { size: 4096, mode: 0o644 });
  const open = createWithFreshKey(t, { size: 4096, mode: 0o666 });
  putCString(open.shm.buffer, 'open to all');

  const r = await runNodeChild(
    `import { sysv } from 'interprocess';
     const attempt = (f) => {
       try {
         const shm = f();
         const bytes = new Uint8Array(shm.buffer);
         return { ok: Buffer.from(bytes.subarray(0, bytes.indexOf(0))).toString() };
       } catch (e) {
         return { name: e.name, code: e.code, errno: e.errno, syscall: e.syscall };
       }
     };
     const [secretKey, secretId, readableKey, openKey] = process.argv.slice(1).map(Number);
     console.log(JSON.stringify({
       uid: process.getuid(),
       byKey: attempt(() => sysv.SharedMemory.open(secretKey)),
       byId: attempt(() => sysv.SharedMemory.attach(secretId)),
       create: attempt(() => sysv.SharedMemory.create({ key: secretKey, size: 16, exclusive: false })),
       readable: attempt(() => sysv.SharedMemory.open(readableKey)),
       open: attempt(() => sysv.SharedMemory.open(openKey)),
     }));`,
    [String(secret.key), String(secret.shm.id), String(readable.key), String(open.key)],
    { uid: NOBODY, gid: NOBODY },
  );
  assert.equal(r.code, 0, r.stderr);
  const res = JSON.parse(r.stdout);
  assert.equal(res.uid, NOBODY);
  for (const what of ['byKey', 'byId', 'create', 'readable']) {
    const e = res[what];
    assert.equal(e.name, PermissionError.name, `${what}: ${JSON.stringify(e)}`);
    assert.equal(e.code, 'EACCES');
    assert.equal(e.errno, -13);
    assert.match(e.syscall, /^(shmget|shmat|shmctl)$/);
  }
  // A read-write attach needs write permission too: 0o644 is not enough, 0o666 is.
  assert.deepEqual(res.open, { ok: 'open to all' });
  assert.equal(secret.shm.stat().nattch, 1, 'the refused attempts left no attachment');
});

test('cleanup check helpers see our segments', (t) => {
  // The leak check in after() relies on this: a segment we create is listed with our pid.
  const shm = track(t, SharedMemory.create({ size: 16 }));
  assert.ok(ours().some((s) => s.id === shm.id && s.cpid === process.pid));
});
