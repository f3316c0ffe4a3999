/**
 * POSIX shared memory (posix.SharedMemory) against real processes: a compiled
 * C peer (test/peers/shm_posix_peer.c), Node children and a worker thread.
 * Every object is named '/ipt-<pid>-...' and removed by the test that made
 * it, even when the test fails; the last test checks that none is left.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { ftruncateSync, readFileSync, statSync, statfsSync, Stats } from 'node:fs';
import { Worker } from 'node:worker_threads';
import {
  posix,
  IpcError,
  AlreadyExistsError,
  NotFoundError,
  InvalidArgumentError,
  PermissionError,
  TooLargeError,
} from 'interprocess';
import * as posixEntry from 'interprocess/posix';
import { compilePeer, isRoot, NOBODY, run, runNode, shmEntries, uniqueName } from './helpers.js';

const { SharedMemory } = posix;
type Shm = posix.SharedMemory;

const PREFIX = `ipt-${process.pid}-`;
const HELLO = 'Hello, Shared Memory';

/** Removes a name if it is still there (cleanup must not throw over the real failure). */
function unlinkQuietly(name: string): void {
  try {
    SharedMemory.unlink(name);
  } catch (err) {
    if (!(err instanceof NotFoundError)) throw err;
  }
}

/** A fresh name whose object is unlinked when the test ends, pass or fail. */
function freshName(t: { after(fn: () => void): void }, tag: string): string {
  const name = uniqueName(tag);
  t.after(() => unlinkQuietly(name));
  return name;
}

/** The NUL-terminated string at `offset`, as a C program reads it. */
function cString(buffer: SharedArrayBuffer, offset = 0): string {
  const bytes = new Uint8Array(buffer, offset);
  const end = bytes.indexOf(0);
  return Buffer.from(bytes.subarray(0, end < 0 ? bytes.length : end)).toString('utf8');
}

/** Stores `text` and a NUL at `offset`, as strcpy does. */
function putCString(buffer: SharedArrayBuffer, text: string, offset = 0): void {
  const bytes = Buffer.from(text + '\0', 'utf8');
  new Uint8Array(buffer, offset, bytes.length).set(bytes);
}

/** Asserts `fn` throws an instance of `Cls` whose fields match `fields` (RegExp for the message). */
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

function umask(): number {
  const line = readFileSync('/proc/self/status', 'utf8').split('\n').find((l) => l.startsWith('Umask:'));
  assert.ok(line, 'no Umask line in /proc/self/status');
  return parseInt(line.split(/\s+/)[1], 8);
}

const peer = compilePeer('shm_posix_peer');
peer.catch(() => {}); // reported by the tests that await it, not as an unhandled rejection

async function runPeer(...args: string[]): Promise<string> {
  const r = await run(await peer, args);
  assert.equal(r.code, 0, `shm_posix_peer ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}

after(() => {
  // Nothing this file created may outlive it: report leftovers, then remove them.
  const left = shmEntries(PREFIX);
  for (const f of left) unlinkQuietly('/' + f);
  assert.deepEqual(left, [], 'objects left behind');
});

test('the subpath export is the same class', () => {
  assert.equal(posixEntry.SharedMemory, SharedMemory);
  assert.equal(posixEntry.SHM_MAX_NAME_BYTES, posix.SHM_MAX_NAME_BYTES);
});

test('create is exclusive by default; a second create fails with EEXIST', (t) => {
  const name = freshName(t, 'excl');
  const shm = SharedMemory.create(name, { size: 4096 });
  t.after(() => shm.close());
  assert.equal(shm.name, name);
  assert.equal(shm.size, 4096);
  assert.equal(shm.created, true);
  assert.equal(shm.readOnly, false);
  assert.equal(shm.closed, false);
  assert.ok(shm.fd >= 0);
  assert.ok(shm.buffer instanceof SharedArrayBuffer);
  assert.equal(shm.buffer.byteLength, 4096);
  assert.deepEqual(shmEntries(name), [name.slice(1)]);

  const err = throwsLike(() => SharedMemory.create(name, { size: 4096 }), AlreadyExistsError, {
    code: 'EEXIST',
    errno: -17,
    syscall: 'shm_open',
    path: name,
    message: /^EEXIST: .*shm_open '\/ipt-/,
  });
  assert.equal(err.name, 'AlreadyExistsError');
  // The failed create did not disturb the object.
  assert.deepEqual(shmEntries(name), [name.slice(1)]);
  assert.equal(shm.stat().size, 4096);
});

test('create with exclusive:false opens the existing object and keeps its size', (t) => {
  const name = freshName(t, 'nonexcl');
  const first = SharedMemory.create(name, { size: 8192 });
  t.after(() => first.close());
  putCString(first.buffer, 'from the first handle');

  const second = SharedMemory.create(name, { size: 4096, exclusive: false });
  t.after(() => second.close());
  assert.equal(second.created, false);
  assert.equal(second.size, 8192, 'the existing size wins over the size asked for');
  assert.equal(cString(second.buffer), 'from the first handle');
  putCString(second.buffer, 'from the second handle', 100);
  assert.equal(cString(first.buffer, 100), 'from the second handle');

  // On a name that does not exist yet, exclusive:false creates it.
  const fresh = freshName(t, 'nonexcl-new');
  const third = SharedMemory.create(fresh, { size: 4096, exclusive: false });
  t.after(() => third.close());
  assert.equal(third.created, true);
  assert.equal(third.stat().size, 4096);
});

test('exclusive:false sizes an object its creator left at size 0; open refuses it', async (t) => {
  const name = freshName(t, 'zero');
  await runPeer('create', name, '0');
  throwsLike(() => SharedMemory.open(name), InvalidArgumentError, { code: 'EINVAL', errno: -22, path: name, message: /size 0/ });
  const shm = SharedMemory.create(name, { size: 6000, exclusive: false });
  t.after(() => shm.close());
  assert.equal(shm.created, false);
  assert.equal(shm.size, 6000);
  putCString(shm.buffer, HELLO, 5000);
  assert.equal(await runPeer('read-at', name, '5000'), `read: ${HELLO}\n`);
});

test('mode is honoured, with the umask applied as in C', (t) => {
  const mask = umask();
  for (const mode of [0o600, 0o640, 0o666, 0o400]) {
    const name = freshName(t, 'mode');
    const shm = SharedMemory.create(name, { size: 4096, mode });
    try {
      assert.equal(shm.stat().mode & 0o777, mode & ~mask, `mode ${mode.toString(8)} umask ${mask.toString(8)}`);
    } finally {
      shm.close();
      SharedMemory.unlink(name);
    }
  }
  // The default is 0o600.
  const name = freshName(t, 'mode-default');
  const shm = SharedMemory.create(name, { size: 4096 });
  t.after(() => shm.close());
  assert.equal(shm.stat().mode & 0o777, 0o600 & ~mask);
});

test('open maps an existing object; open of a missing name is NotFoundError', (t) => {
  const name = freshName(t, 'open');
  const creator = SharedMemory.create(name, { size: 10000 });
  t.after(() => creator.close());
  putCString(creator.buffer, HELLO);

  const opened = SharedMemory.open(name);
  t.after(() => opened.close());
  assert.equal(opened.created, false);
  assert.equal(opened.readOnly, false);
  assert.equal(opened.size, 10000);
  assert.equal(cString(opened.buffer), HELLO);
  // Two mappings of one object: a write through one is read through the other.
  new Uint32Array(opened.buffer)[100] = 0xdeadbeef;
  assert.equal(new Uint32Array(creator.buffer)[100], 0xdeadbeef);

  const missing = uniqueName('missing');
  throwsLike(() => SharedMemory.open(missing), NotFoundError, { code: 'ENOENT', errno: -2, syscall: 'shm_open', path: missing, message: /^ENOENT: .*shm_open '\/ipt-/ });
  assert.deepEqual(shmEntries(missing), []);
});

test('unlink, static and instance', (t) => {
  const a = freshName(t, 'unlink-static');
  SharedMemory.create(a, { size: 4096 }).close();
  assert.deepEqual(shmEntries(a), [a.slice(1)]);
  SharedMemory.unlink(a);
  assert.deepEqual(shmEntries(a), []);
  throwsLike(() => SharedMemory.unlink(a), NotFoundError, { code: 'ENOENT', syscall: 'shm_unlink', path: a });
  throwsLike(() => SharedMemory.open(a), NotFoundError, { code: 'ENOENT' });

  const b = freshName(t, 'unlink-instance');
  const shm = SharedMemory.create(b, { size: 4096 });
  t.after(() => shm.close());
  shm.unlink();
  assert.deepEqual(shmEntries(b), []);
  // The name can be used again at once.
  const again = SharedMemory.create(b, { size: 4096 });
  again.close();
  SharedMemory.unlink(b);
});

test('stat() returns fs.Stats for the object', (t) => {
  const name = freshName(t, 'stat');
  const shm = SharedMemory.create(name, { size: 12345 });
  t.after(() => shm.close());
  const st = shm.stat();
  assert.ok(st instanceof Stats);
  assert.equal(st.size, 12345);
  assert.ok(st.isFile());
  assert.equal(st.uid, process.getuid!());
  assert.equal(st.nlink, 1);
  shm.unlink();
  assert.equal(shm.stat().nlink, 0, 'unlinked, still open');
});

test('C reads what Node wrote, and Node reads what C wrote back', async (t) => {
  const name = freshName(t, 'c');
  const shm = SharedMemory.create(name, { size: 1024 });
  t.after(() => shm.close());
  putCString(shm.buffer, HELLO);

  // One C process: prints what it finds, then replaces it.
  const out = await runPeer('exchange', name, 'Hello back from C');
  assert.equal(out, `read: ${HELLO}\nwrote: Hello back from C\n`);
  assert.equal(cString(shm.buffer), 'Hello back from C');

  // And at an offset past the first page, through a second C process.
  await runPeer('write-at', name, '900', 'tail written by C');
  assert.equal(cString(shm.buffer, 900), 'tail written by C');
  putCString(shm.buffer, 'tail written by Node', 900);
  assert.equal(await runPeer('read-at', name, '900'), 'read: tail written by Node\n');
});

test('Node opens what C created and wrote', async (t) => {
  const name = freshName(t, 'c-created');
  await runPeer('create', name, '3000', HELLO);
  const shm = SharedMemory.open(name);
  t.after(() => shm.close());
  assert.equal(shm.created, false);
  assert.equal(shm.size, 3000);
  assert.equal(cString(shm.buffer), HELLO);
  assert.equal(shm.stat().mode & 0o777, 0o600 & ~umask());
});

test('two Node processes share the memory both ways', async (t) => {
  const name = freshName(t, 'node');
  const shm = SharedMemory.create(name, { size: 4096 });
  t.after(() => shm.close());
  putCString(shm.buffer, HELLO);
  const r = await runNode(
    `import { posix } from 'interprocess';
     const shm = posix.SharedMemory.open(process.argv[1]);
     const bytes = new Uint8Array(shm.buffer);
     console.log('child read: ' + Buffer.from(bytes.subarray(0, bytes.indexOf(0))).toString());
     bytes.set(Buffer.from('Hello from the child\\0'));
     shm.close();`,
    [name],
  );
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, `child read: ${HELLO}\n`);
  assert.equal(cString(shm.buffer), 'Hello from the child');
});

test('the buffer can be posted to a Worker: Atomics.add / notify are seen by the main thread', async (t) => {
  const name = freshName(t, 'worker');
  const shm = SharedMemory.create(name, { size: 4096 });
  t.after(() => shm.close());
  const other = SharedMemory.open(name); // a second, independent mapping of the object
  t.after(() => other.close());
  const view = new Int32Array(shm.buffer);

  const worker = new Worker(
    `const { workerData } = require('node:worker_threads');
     const view = new Int32Array(workerData.buffer);
     if (Atomics.wait(view, 0, 0, 10000) === 'timed-out') process.exit(3);
     for (let i = 0; i < 10000; i++) Atomics.add(view, 1, 1);
     Atomics.store(view, 2, 1);
     Atomics.notify(view, 2);`,
    { eval: true, workerData: { buffer: shm.buffer } },
  );
  const exited = once(worker, 'exit');
  const done = Atomics.waitAsync(view, 2, 0, 10000);
  assert.equal(done.async, true);
  Atomics.store(view, 0, 1);
  Atomics.notify(view, 0);
  for (let i = 0; i < 10000; i++) Atomics.add(view, 1, 1);
  assert.equal(await done.value, 'ok');
  assert.deepEqual(await exited, [0]);
  // No increment was lost, and the worker's writes reached the object itself.
  assert.equal(Atomics.load(view, 1), 20000);
  assert.equal(Atomics.load(new Int32Array(other.buffer), 1), 20000);
  assert.equal(Atomics.load(new Int32Array(other.buffer), 2), 1);
});

test('readOnly open: reads see the object; writes are private copies that never reach it', async (t) => {
  // Two 64 KiB halves: a page boundary between them for 4 KiB and 64 KiB pages alike.
  const HALF = 65536;
  const name = freshName(t, 'ro');
  const rw = SharedMemory.create(name, { size: 2 * HALF });
  t.after(() => rw.close());
  putCString(rw.buffer, 'original');
  putCString(rw.buffer, 'second half', HALF);

  const ro = SharedMemory.open(name, { readOnly: true });
  t.after(() => ro.close());
  assert.equal(ro.readOnly, true);
  assert.equal(ro.created, false);
  assert.equal(ro.size, 2 * HALF);
  assert.equal(cString(ro.buffer), 'original');
  assert.equal(cString(ro.buffer, HALF), 'second half');

  // A write does not crash the process, and stays in this mapping only.
  putCString(ro.buffer, 'scribble');
  assert.equal(cString(ro.buffer), 'scribble');
  assert.equal(cString(rw.buffer), 'original', 'the object is unchanged (same process, shared mapping)');
  assert.equal(await runPeer('read', name), 'read: original\n', 'the object is unchanged (another process)');

  // Copy-on-write semantics: a page this process has not written keeps
  // showing later changes to the object; the written page is a private copy
  // and no longer does.
  await runPeer('write-at', name, String(HALF), 'changed by C');
  await runPeer('write', name, 'also changed by C');
  assert.equal(cString(ro.buffer, HALF), 'changed by C');
  assert.equal(cString(ro.buffer), 'scribble');
  assert.equal(cString(rw.buffer), 'also changed by C');

  // The descriptor really is O_RDONLY: the object cannot be resized through it.
  assert.throws(() => ftruncateSync(ro.fd, 4 * HALF), { code: 'EINVAL' });
  assert.equal(rw.stat().size, 2 * HALF);
});

test('bad names are rejected before any system call', () => {
  const before = shmEntries(PREFIX);
  const base = `/ipt-${process.pid}-`;
  const cases: [unknown, RegExp, string][] = [
    [`ipt-${process.pid}-noslash`, /must start with '\/'/, 'ERR_INVALID_ARG_VALUE'],
    [`${base}a/b`, /must not contain '\/'/, 'ERR_INVALID_ARG_VALUE'],
    ['/', /at least one character after '\/'/, 'ERR_INVALID_ARG_VALUE'],
    ['', /must start with '\/'/, 'ERR_INVALID_ARG_VALUE'],
    ['/.', /must not be '\/\.' or '\/\.\.'/, 'ERR_INVALID_ARG_VALUE'],
    ['/..', /must not be '\/\.' or '\/\.\.'/, 'ERR_INVALID_ARG_VALUE'],
    [`${base}nul\0x`, /NUL/, 'ERR_INVALID_ARG_VALUE'],
    [base + 'x'.repeat(256 - base.length + 1), /too long: 256 bytes after '\/', at most 255/, 'ENAMETOOLONG'],
    // 128 characters but 256 bytes in UTF-8: the limit is in bytes.
    ['/' + 'é'.repeat(128), /too long: 256 bytes/, 'ENAMETOOLONG'],
    [42, /must be a string, got 42/, 'ERR_INVALID_ARG_TYPE'],
    [undefined, /must be a string, got undefined/, 'ERR_INVALID_ARG_TYPE'],
    [null, /must be a string, got null/, 'ERR_INVALID_ARG_TYPE'],
    [Buffer.from('/x'), /must be a string/, 'ERR_INVALID_ARG_TYPE'],
  ];
  for (const [name, message, code] of cases) {
    for (const call of [
      () => SharedMemory.create(name as string, { size: 4096 }),
      () => SharedMemory.create(name as string, { size: 4096, exclusive: false }),
      () => SharedMemory.open(name as string),
      () => SharedMemory.unlink(name as string),
    ]) {
      const err = throwsLike(call, InvalidArgumentError, { code, message });
      assert.equal(err.syscall, undefined, 'rejected before any system call');
    }
  }
  assert.deepEqual(shmEntries(PREFIX), before, 'nothing was created');
});

test('the longest name the system accepts is accepted, one byte more is not', (t) => {
  assert.equal(posix.SHM_MAX_NAME_BYTES, 255);
  const base = `/ipt-${process.pid}-long-`;
  const longest = base + 'x'.repeat(1 + 255 - base.length);
  assert.equal(Buffer.byteLength(longest) - 1, 255);
  t.after(() => unlinkQuietly(longest));
  const shm = SharedMemory.create(longest, { size: 4096 });
  try {
    assert.deepEqual(shmEntries(longest), [longest.slice(1)]);
    putCString(shm.buffer, 'long name');
    const again = SharedMemory.open(longest);
    assert.equal(cString(again.buffer), 'long name');
    again.close();
  } finally {
    shm.close();
    SharedMemory.unlink(longest);
  }
  // Multi-byte characters up to exactly 255 bytes are fine too.
  const utf8 = `/ipt-${process.pid}-` + 'é'.repeat(100);
  const rest = 255 - Buffer.byteLength(utf8.slice(1));
  const utf8Longest = utf8 + 'y'.repeat(rest);
  assert.equal(Buffer.byteLength(utf8Longest.slice(1)), 255);
  t.after(() => unlinkQuietly(utf8Longest));
  SharedMemory.create(utf8Longest, { size: 4096 }).close();
  SharedMemory.unlink(utf8Longest);

  const tooLong = longest + 'x';
  throwsLike(() => SharedMemory.create(tooLong, { size: 4096 }), InvalidArgumentError, { code: 'ENAMETOOLONG' });
  assert.deepEqual(shmEntries(base), []);
});

test('bad sizes and options are rejected before any system call', (t) => {
  const name = uniqueName('badsize');
  t.after(() => unlinkQuietly(name));
  const bad: [unknown, new (...a: never[]) => Error, string, RegExp][] = [
    [{ size: 0 }, InvalidArgumentError, 'ERR_OUT_OF_RANGE', /size must be greater than 0, got 0/],
    [{ size: -1 }, InvalidArgumentError, 'ERR_OUT_OF_RANGE', /size must be greater than 0, got -1/],
    [{ size: 1.5 }, InvalidArgumentError, 'ERR_OUT_OF_RANGE', /size must be an integer, got 1\.5/],
    [{ size: NaN }, InvalidArgumentError, 'ERR_OUT_OF_RANGE', /size must be an integer, got NaN/],
    [{ size: Infinity }, InvalidArgumentError, 'ERR_OUT_OF_RANGE', /size must be an integer/],
    [{ size: '10' }, InvalidArgumentError, 'ERR_INVALID_ARG_TYPE', /size must be a number, got "10"/],
    [{ size: 10n }, InvalidArgumentError, 'ERR_INVALID_ARG_TYPE', /size must be a number, got 10n/],
    [{}, InvalidArgumentError, 'ERR_INVALID_ARG_TYPE', /size must be a number, got undefined/],
    [{ size: 2 ** 60 }, TooLargeError, 'ERR_OUT_OF_RANGE', /size 1152921504606847000 is too large \(at most 9007199254740991\)/],
    [{ size: 2 ** 53 }, TooLargeError, 'ERR_OUT_OF_RANGE', /too large/],
    [undefined, InvalidArgumentError, 'ERR_INVALID_ARG_TYPE', /options with a size are required/],
    [null, InvalidArgumentError, 'ERR_INVALID_ARG_TYPE', /options with a size are required/],
    [4096, InvalidArgumentError, 'ERR_INVALID_ARG_TYPE', /options with a size are required/],
    [{ size: 4096, mode: 0o1000 }, InvalidArgumentError, 'ERR_OUT_OF_RANGE', /mode must be an integer from 0 to 0o777/],
    [{ size: 4096, mode: '0600' }, InvalidArgumentError, 'ERR_OUT_OF_RANGE', /mode must be an integer/],
    [{ size: 4096, exclusive: 'yes' }, InvalidArgumentError, 'ERR_INVALID_ARG_TYPE', /exclusive must be a boolean/],
  ];
  for (const [options, Cls, code, message] of bad) {
    const err = throwsLike(() => SharedMemory.create(name, options as { size: number }), Cls, { code, message });
    assert.equal(err.syscall, undefined);
    assert.deepEqual(shmEntries(name), [], `nothing created for ${String(options)}`);
  }
  throwsLike(() => SharedMemory.open(name, { readOnly: 1 as unknown as boolean }), InvalidArgumentError, { code: 'ERR_INVALID_ARG_TYPE', message: /readOnly must be a boolean/ });
  throwsLike(() => SharedMemory.open(name, null as unknown as {}), InvalidArgumentError, { code: 'ERR_INVALID_ARG_TYPE', message: /options must be an object/ });
});

test('a size larger than the free space of /dev/shm is TooLargeError (ENOSPC), nothing left behind', async (t) => {
  const fs = statfsSync('/dev/shm');
  if (fs.blocks === 0) {
    t.skip('/dev/shm has no size limit');
    return;
  }
  // More than the whole filesystem, so more than what is free whatever others use.
  const size = Math.max(fs.blocks, fs.bavail) * fs.bsize + 1024 * 1024;
  for (const exclusive of [true, false]) {
    const name = freshName(t, 'enospc');
    throwsLike(() => SharedMemory.create(name, { size, exclusive }), TooLargeError, {
      code: 'ENOSPC',
      errno: -28,
      syscall: 'posix_fallocate',
      path: name,
      message: new RegExp(`^ENOSPC: ${size} bytes do not fit`),
    });
    assert.deepEqual(shmEntries(name), [], 'the half-made object was unlinked');
  }
  // An existing object left at size 0 by its creator gets the same reservation
  // when exclusive:false sizes it; on failure it stays as it was (not ours to unlink).
  const zero = freshName(t, 'enospc-zero');
  await runPeer('create', zero, '0');
  throwsLike(() => SharedMemory.create(zero, { size, exclusive: false }), TooLargeError, { code: 'ENOSPC', syscall: 'posix_fallocate', path: zero });
  assert.deepEqual(shmEntries(zero), [zero.slice(1)]);
  assert.equal(statSync('/dev/shm' + zero).size, 0, 'not sized without its pages');
  const sized = SharedMemory.create(zero, { size: 4096, exclusive: false });
  t.after(() => sized.close());
  assert.equal(sized.size, 4096);
});

test('close(): views made before it stay usable; the handle refuses further use', (t) => {
  const name = freshName(t, 'close');
  const shm = SharedMemory.create(name, { size: 4096 });
  const bytes = new Uint8Array(shm.buffer);
  const words = new Int32Array(shm.buffer);
  bytes[0] = 1;
  shm.close();
  assert.equal(shm.closed, true);
  assert.equal(shm.fd, -1);
  shm.close(); // idempotent
  shm[Symbol.dispose]();
  throwsLike(() => shm.buffer, IpcError, { code: 'EBADF', errno: -9, path: name, message: /closed/ });
  throwsLike(() => shm.stat(), IpcError, { code: 'EBADF', path: name });

  // The views still map the object: writes after close() reach it.
  bytes[1] = 2;
  Atomics.add(words, 1, 41);
  Atomics.add(words, 1, 1);
  const again = SharedMemory.open(name);
  t.after(() => again.close());
  assert.deepEqual([...new Uint8Array(again.buffer, 0, 2)], [1, 2]);
  assert.equal(new Int32Array(again.buffer)[1], 42);
  putCString(again.buffer, 'after close', 100);
  assert.equal(Buffer.from(bytes.subarray(100, 111)).toString(), 'after close');
});

test('using: the handle is closed at the end of the block', (t) => {
  const name = freshName(t, 'dispose');
  let outside: Shm;
  {
    using shm = SharedMemory.create(name, { size: 4096 });
    outside = shm;
    assert.equal(shm.closed, false);
  }
  assert.equal(outside.closed, true);
});

test('unlink while mapped: the memory stays usable, the name is gone', async (t) => {
  const name = freshName(t, 'unlink-mapped');
  const shm = SharedMemory.create(name, { size: 4096 });
  t.after(() => shm.close());
  const other = SharedMemory.open(name);
  t.after(() => other.close());
  const view = new Uint8Array(shm.buffer);
  SharedMemory.unlink(name);
  assert.deepEqual(shmEntries(name), []);
  throwsLike(() => SharedMemory.open(name), NotFoundError, { code: 'ENOENT' });
  const r = await run(await peer, ['read', name]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /shm_open: No such file or directory/);

  putCString(shm.buffer, 'still shared');
  assert.equal(cString(other.buffer), 'still shared');
  view[4095] = 0x7f;
  assert.equal(new Uint8Array(other.buffer)[4095], 0x7f);
  assert.equal(shm.stat().nlink, 0);
});

test('GC stress: thousands of mappings created and dropped; all released, nothing left in /dev/shm', async () => {
  const prefix = `${PREFIX}gc-`;
  const r = await runNode(
    `import { posix } from 'interprocess';
     import { readFileSync, readdirSync } from 'node:fs';
     const prefix = process.argv[1];
     const mapped = () => readFileSync('/proc/self/maps', 'utf8').split('\\n').filter((l) => l.includes('/dev/shm/' + prefix)).length;
     const gc = globalThis.gc;
     // The work runs in functions that have returned by the time we collect:
     // a suspended async frame may keep its last values alive.
     function churn(kept) {
       for (let i = 0; i < 2000; i++) {
         const shm = posix.SharedMemory.create('/' + prefix + i, { size: 4096 });
         const view = new Uint8Array(shm.buffer);
         view[0] = i & 0xff;
         view[4095] = 0xa5;
         shm.close();
         shm.unlink();
         // A few views outlive their handle, their name and many collections.
         if (i % 250 === 0) kept.push({ i, view });
         if (i % 100 === 99) gc();
       }
     }
     function holdAndDrop() {
       const held = [];
       for (let i = 0; i < 200; i++) {
         const shm = posix.SharedMemory.create('/' + prefix + 'held-' + i, { size: 4096 });
         held.push(new Uint8Array(shm.buffer));
         shm.close();
         shm.unlink();
       }
       return mapped();
     }
     // V8 runs the deleters (munmap) after a full GC, possibly on a background
     // thread: collect and look again until the count is reached or 10 s pass.
     async function settle(want) {
       const deadline = Date.now() + 10000;
       for (;;) {
         gc();
         const n = mapped();
         if (n <= want || Date.now() > deadline) return n;
         await new Promise((resolve) => setImmediate(resolve));
       }
     }
     const kept = [];
     churn(kept);
     const whileHeld = holdAndDrop();
     const afterGc = await settle(kept.length);
     for (const { i, view } of kept) {
       if (view[0] !== (i & 0xff) || view[4095] !== 0xa5) throw new Error('kept view ' + i + ' lost its content');
       view[1] = 7;
     }
     const left = readdirSync('/dev/shm').filter((f) => f.startsWith(prefix)).length;
     console.log(JSON.stringify({ whileHeld, afterGc, kept: kept.length, left }));`,
    [prefix],
    { nodeArgs: ['--expose-gc'] },
  );
  try {
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.signal, null);
    const result = JSON.parse(r.stdout) as { whileHeld: number; afterGc: number; kept: number; left: number };
    assert.equal(result.kept, 8);
    assert.ok(result.whileHeld >= 200 + result.kept, `mapped while held: ${result.whileHeld}`);
    assert.equal(result.afterGc, result.kept, 'every dropped mapping was unmapped; the kept ones were not');
    assert.equal(result.left, 0);
  } finally {
    for (const f of shmEntries(prefix)) unlinkQuietly('/' + f);
  }
  assert.deepEqual(shmEntries(prefix), []);
});

test('permission: an unprivileged process cannot open a 0o600 object (EACCES)', { skip: !isRoot && 'needs root to run a child as nobody' }, async (t) => {
  const name = freshName(t, 'perm');
  const shm = SharedMemory.create(name, { size: 4096, mode: 0o600 });
  t.after(() => shm.close());
  putCString(shm.buffer, 'secret');
  const open = freshName(t, 'perm-open');
  const pub = SharedMemory.create(open, { size: 4096, mode: 0o644 });
  t.after(() => pub.close());
  putCString(pub.buffer, 'public');

  const r = await runNode(
    `import { posix } from 'interprocess';
     const attempt = (name, options) => {
       try {
         const shm = posix.SharedMemory.open(name, options);
         const bytes = new Uint8Array(shm.buffer);
         return { ok: Buffer.from(bytes.subarray(0, bytes.indexOf(0))).toString() };
       } catch (e) {
         return { name: e.name, code: e.code, errno: e.errno, syscall: e.syscall, path: e.path };
       }
     };
     const [secret, pub] = process.argv.slice(1);
     console.log(JSON.stringify({
       uid: process.getuid(),
       rw: attempt(secret),
       ro: attempt(secret, { readOnly: true }),
       pubRo: attempt(pub, { readOnly: true }),
       pubRw: attempt(pub),
     }));`,
    [name, open],
    { uid: NOBODY, gid: NOBODY },
  );
  assert.equal(r.code, 0, r.stderr);
  const res = JSON.parse(r.stdout);
  assert.equal(res.uid, NOBODY);
  const denied = (path: string) => ({ name: PermissionError.name, code: 'EACCES', errno: -13, syscall: 'shm_open', path });
  assert.deepEqual(res.rw, denied(name));
  assert.deepEqual(res.ro, denied(name));
  assert.deepEqual(res.pubRo, { ok: 'public' }, 'a 0o644 object is readable by others');
  assert.deepEqual(res.pubRw, denied(open));
});

test('mappings count as external memory: dropped ones are unmapped without an explicit gc()', async () => {
  // Without reporting mappings to V8, nothing makes the collector run here
  // (the JavaScript heap stays tiny) and all 300 mappings would stay mapped.
  const r = await runNode(`
    import { posix, sysv } from 'interprocess';
    import { readFileSync } from 'node:fs';
    const count = (re) => readFileSync('/proc/self/maps', 'utf8').split('\\n').filter((l) => re.test(l)).length;
    for (let i = 0; i < 300; i++) {
      const name = '/${PREFIX}churn-' + i;
      const s = posix.SharedMemory.create(name, { size: 64 << 20, reserve: false });
      new Uint8Array(s.buffer)[0] = 1;
      s.close();
      posix.SharedMemory.unlink(name);
    }
    const posixLive = count(/\\/dev\\/shm\\/${PREFIX}churn-/);
    for (let i = 0; i < 300; i++) {
      const s = sysv.SharedMemory.create({ size: 64 << 20 });
      new Uint8Array(s.buffer)[0] = 1;
      s.remove();
      s.close();
    }
    console.log(JSON.stringify({ posixLive, sysvLive: count(/SYSV/) }));
  `);
  assert.equal(r.code, 0, r.stderr);
  const { posixLive, sysvLive } = JSON.parse(r.stdout) as { posixLive: number; sysvLive: number };
  assert.ok(posixLive < 100, `${posixLive} of 300 dropped POSIX mappings still mapped`);
  assert.ok(sysvLive < 100, `${sysvLive} of 300 dropped System V attachments still attached`);
});
