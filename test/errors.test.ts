// The error classes: shaped like Node's own system errors, one subclass per
// family, built from real failures where a real failure is cheap to provoke.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openSync, readFileSync, statSync } from 'node:fs';
import { constants } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { inspect, getSystemErrorMap } from 'node:util';
import * as ipc from 'interprocess';
import {
  AbortError,
  AlreadyExistsError,
  DeadlockError,
  InvalidArgumentError,
  IpcError,
  NotFoundError,
  NotRecoverableError,
  PeerGoneError,
  PermissionError,
  RemovedError,
  TimeoutError,
  TooLargeError,
  WouldBlockError,
  errnoName,
  formatKey,
  mkfifoSync,
  openFifoReader,
  openFifoWriter,
} from 'interprocess';
// The package's own helpers for building errors: not public API, so imported from the build.
import { check, fromNodeError, invalidArgument, systemError, unwrap } from '#errors';
import { tempDir } from './helpers.js';

const families = {
  AlreadyExistsError,
  NotFoundError,
  PermissionError,
  WouldBlockError,
  TimeoutError,
  TooLargeError,
  InvalidArgumentError,
  RemovedError,
  PeerGoneError,
  DeadlockError,
  NotRecoverableError,
};

/** The error a real system call made, as Node reports it. */
function nodeError(fn: () => unknown): NodeJS.ErrnoException {
  try {
    fn();
  } catch (err) {
    return err as NodeJS.ErrnoException;
  }
  assert.fail('expected the call to fail');
}

test('every family extends IpcError, which extends Error, and is named after its class', () => {
  const exported = Object.entries(ipc).filter(([name, v]) => typeof v === 'function' && /^[A-Z]\w*Error$/.test(name) && name !== 'AbortError');
  assert.deepEqual(exported.map(([n]) => n).sort(), ['IpcError', ...Object.keys(families)].sort(), 'the exported error classes');
  assert.ok(Object.getPrototypeOf(IpcError.prototype) === Error.prototype);
  for (const [name, Cls] of Object.entries(families)) {
    assert.ok(Object.getPrototypeOf(Cls.prototype) === IpcError.prototype, `${name} extends IpcError directly`);
    const e = new Cls('ESOMETHING', { message: 'it failed' });
    assert.ok(e instanceof Cls && e instanceof IpcError && e instanceof Error);
    assert.equal(e.name, name);
    assert.equal(e.code, 'ESOMETHING');
    assert.equal(e.message, 'it failed');
    assert.ok(e.stack?.startsWith(`${name}: it failed\n`), `stack starts with the name and message: ${e.stack?.split('\n')[0]}`);
    assert.equal(Object.prototype.toString.call(e), '[object Error]');
  }
  assert.equal(new IpcError('X').name, 'IpcError');
});

test("systemError(-2, 'open', { path }) is a NotFoundError worded exactly like Node's own fs error", () => {
  const e = systemError(-2, 'open', { path: '/x' });
  assert.ok(e instanceof NotFoundError);
  assert.equal(e.code, 'ENOENT');
  assert.equal(e.errno, -2);
  assert.equal(e.syscall, 'open');
  assert.equal(e.path, '/x');
  assert.equal(e.message, "ENOENT: no such file or directory, open '/x'");
  assert.equal('key' in e, false, 'absent fields are absent, not undefined');
  assert.deepEqual(Object.keys(e).sort(), ['code', 'errno', 'path', 'syscall']);
  // The same words, field for field, as a real failed open().
  const path = '/nonexistent-interprocess-test/x';
  const real = nodeError(() => openSync(path, 'r'));
  const ours = systemError(real.errno!, 'open', { path });
  assert.equal(ours.message, real.message);
  for (const f of ['code', 'errno', 'syscall', 'path'] as const) assert.equal(ours[f], real[f], f);
  // A positive errno (as C's errno) is stored negative, as Node does.
  assert.equal(systemError(2, 'open', { path: '/x' }).errno, -2);
});

test('System V keys are shown as ipcs shows them: 0x and 8 hex digits, negative keys as unsigned', () => {
  assert.equal(formatKey(0), '0x00000000');
  assert.equal(formatKey(0x1234), '0x00001234');
  assert.equal(formatKey(0xdeadbeef), '0xdeadbeef');
  assert.equal(formatKey(-1), '0xffffffff');
  assert.equal(formatKey(-0x80000000), '0x80000000');
  assert.equal(formatKey(0x51006e2a | 0), '0x51006e2a');
  const e = systemError(-2, 'shmget', { key: -2 });
  assert.equal(e.message, 'ENOENT: no such file or directory, shmget key 0xfffffffe');
  assert.equal(e.key, -2);
  assert.equal('path' in e, false);
  // A path wins over a key in the message; both stay on the error.
  const both = systemError(-13, 'ftok', { path: '/p', key: 1 });
  assert.equal(both.message, "EACCES: permission denied, ftok '/p'");
  assert.equal(both.key, 1);
  assert.equal(systemError(-22, 'semctl').message, 'EINVAL: invalid argument, semctl');
});

test('each errno maps to its family, with its name and description', () => {
  const table: Array<[string, new (...a: never[]) => IpcError, string]> = [
    ['EEXIST', AlreadyExistsError, 'file already exists'],
    ['ENOENT', NotFoundError, 'no such file or directory'],
    ['EACCES', PermissionError, 'permission denied'],
    ['EPERM', PermissionError, 'operation not permitted'],
    ['EAGAIN', WouldBlockError, 'resource temporarily unavailable'],
    ['ENOMSG', WouldBlockError, 'no message of desired type'],
    ['ETIMEDOUT', TimeoutError, 'connection timed out'],
    ['E2BIG', TooLargeError, 'argument list too long'],
    ['EMSGSIZE', TooLargeError, 'message too long'],
    ['EFBIG', TooLargeError, 'file too large'],
    ['EINVAL', InvalidArgumentError, 'invalid argument'],
    ['ENAMETOOLONG', InvalidArgumentError, 'name too long'],
    ['EIDRM', RemovedError, 'identifier removed'],
    ['EPIPE', PeerGoneError, 'broken pipe'],
    ['EDEADLK', DeadlockError, 'resource deadlock avoided'],
  ];
  for (const [code, Cls, text] of table) {
    const errno = (constants.errno as Record<string, number>)[code]!;
    assert.equal(typeof errno, 'number', code);
    assert.equal(errnoName(-errno), code);
    assert.equal(errnoName(errno), code, `${code}: a positive errno names the same`);
    const e = systemError(errno, 'call', { key: 7 });
    assert.ok(e instanceof Cls, `${code} gives ${Cls.name}, got ${e.constructor.name}`);
    assert.equal(e.code, code);
    assert.equal(e.errno, -errno);
    assert.equal(e.message, `${code}: ${text}, call key 0x00000007`);
    // Where Node knows the errno, the words are Node's own.
    const node = getSystemErrorMap().get(-errno);
    if (node) assert.deepEqual(node, [code, text]);
  }
  // ENOTRECOVERABLE (131 on Linux) is missing from os.constants.errno but has its family.
  const notRecoverable = systemError(-131, 'pthread_mutex_lock');
  assert.ok(notRecoverable instanceof NotRecoverableError);
  assert.equal(notRecoverable.message, 'ENOTRECOVERABLE: state not recoverable, pthread_mutex_lock');
  // Errnos without a family stay plain IpcErrors, still fully described.
  const busy = systemError(-constants.errno.EBUSY, 'shmctl');
  assert.equal(Object.getPrototypeOf(busy), IpcError.prototype);
  assert.equal(busy.message, 'EBUSY: resource busy or locked, shmctl');
  // A family forced by the caller, for an errno that means "too large" in that call.
  const nospc = systemError(-constants.errno.ENOSPC, 'posix_fallocate', { path: '/shm' }, TooLargeError);
  assert.ok(nospc instanceof TooLargeError);
  assert.equal(nospc.code, 'ENOSPC');
  // The mutex errnos libuv does not name either.
  assert.equal(errnoName(-130), 'EOWNERDEAD');
  assert.equal(errnoName(-constants.errno.EDEADLK), 'EDEADLK');
  assert.equal(systemError(-131, 'pthread_mutex_lock').message, 'ENOTRECOVERABLE: state not recoverable, pthread_mutex_lock');
});

test('check() and unwrap() turn a negative result into the error and pass anything else through', () => {
  assert.equal(check(0, 'close'), 0);
  assert.equal(check(5, 'open'), 5);
  assert.throws(() => check(-constants.errno.EEXIST, 'shm_open', { path: '/seg' }), (e: unknown) => {
    assert.ok(e instanceof AlreadyExistsError);
    assert.equal(e.message, "EEXIST: file already exists, shm_open '/seg'");
    return true;
  });
  const obj = { fd: 3 };
  assert.equal(unwrap(obj, 'open'), obj);
  assert.throws(() => unwrap(-constants.errno.EIDRM, 'semop', { key: 5 }), RemovedError);
  assert.throws(() => unwrap(3, 'open'), TypeError);
});

test('fromNodeError converts a real fs error into its family, keeping every field and the message', () => {
  const real = nodeError(() => readFileSync('/nonexistent-interprocess-test/file'));
  const e = fromNodeError(real) as IpcError;
  assert.ok(e instanceof NotFoundError);
  assert.equal(e.message, real.message);
  assert.equal(e.code, 'ENOENT');
  assert.equal(e.errno, real.errno);
  assert.equal(e.syscall, 'open');
  assert.equal(e.path, real.path);
  // EISDIR has no family: a plain IpcError, same words.
  const dir = nodeError(() => readFileSync('/'));
  const d = fromNodeError(dir) as IpcError;
  assert.equal(Object.getPrototypeOf(d), IpcError.prototype);
  assert.equal(d.code, 'EISDIR');
  assert.equal(d.message, dir.message);
  // The caller's path wins (the name the user gave, not a resolved one).
  assert.equal((fromNodeError(real, { path: '/mine' }) as IpcError).path, '/mine');
  const keyed = fromNodeError(real, { key: 0x2a }) as IpcError;
  assert.equal(keyed.key, 0x2a);
  // Anything that is not a system error comes back untouched.
  const plain = new Error('plain');
  assert.equal(fromNodeError(plain), plain);
  const typeErr = new TypeError('x');
  assert.equal(fromNodeError(typeErr), typeErr);
  assert.equal(fromNodeError('a string'), 'a string');
  assert.equal(fromNodeError(undefined), undefined);
});

test('invalidArgument() gives an InvalidArgumentError with a Node-style code', () => {
  const e = invalidArgument('size must be positive');
  assert.ok(e instanceof InvalidArgumentError);
  assert.equal(e.code, 'ERR_INVALID_ARG_VALUE');
  assert.equal(e.message, 'size must be positive');
  assert.equal('errno' in e, false);
  const t = invalidArgument('name must be a string', 'ERR_INVALID_ARG_TYPE');
  assert.equal(t.code, 'ERR_INVALID_ARG_TYPE');
  const einval = invalidArgument('bad', 'EINVAL');
  assert.equal(einval.errno, -constants.errno.EINVAL);
});

test("AbortError looks like Node's: name, code, message, cause, instanceof Error", async () => {
  const reason = new Error('stop');
  const ac = new AbortController();
  ac.abort(reason);
  const node = await delay(1000, null, { signal: ac.signal }).then(
    () => assert.fail('should have been aborted'),
    (e: Error & { code?: string }) => e,
  );
  const ours = new AbortError(undefined, { cause: reason });
  assert.ok(ours instanceof Error);
  assert.equal(ours instanceof IpcError, false);
  for (const f of ['name', 'code', 'message', 'cause'] as const) assert.equal(ours[f], node[f], f);
  assert.equal(ours.name, 'AbortError');
  assert.equal(ours.code, 'ABORT_ERR');
  assert.match(inspect(ours), /^AbortError: The operation was aborted/);
  assert.equal(new AbortError('custom').message, 'custom');
});

test('a real wait that runs out of time rejects with a TimeoutError; an aborted one with an AbortError', async () => {
  const { dir, cleanup } = tempDir('errors-fifo');
  try {
    const path = join(dir, 'fifo');
    mkfifoSync(path);
    const start = performance.now();
    const err = await openFifoWriter(path, { timeout: 50 }).then(
      () => assert.fail('nobody reads the FIFO: the open must time out'),
      (e: unknown) => e,
    );
    const waited = performance.now() - start;
    assert.ok(err instanceof TimeoutError, `got ${String(err)}`);
    assert.ok(err instanceof IpcError);
    assert.equal(err.code, 'ETIMEDOUT');
    assert.equal(err.errno, -constants.errno.ETIMEDOUT);
    assert.equal(err.syscall, 'open');
    assert.equal(err.path, path);
    assert.equal(err.message, `ETIMEDOUT: timed out, open '${path}'`);
    assert.ok(waited >= 49, `gave up after ${waited.toFixed(1)} ms, before the 50 ms timeout`);

    const ac = new AbortController();
    const reason = new Error('changed my mind');
    const pending = openFifoWriter(path, { signal: ac.signal });
    ac.abort(reason);
    await assert.rejects(pending, (e: unknown) => {
      assert.ok(e instanceof AbortError, `got ${String(e)}`);
      assert.equal(e.code, 'ABORT_ERR');
      assert.equal(e.cause, reason);
      return true;
    });

    // With a reader present the same call succeeds: the timeout was about the missing reader.
    const reader = openFifoReader(path);
    const writer = await openFifoWriter(path, { timeout: 1000 });
    writer.destroy();
    reader.destroy();
  } finally {
    cleanup();
  }
});

test('a missing FIFO is a NotFoundError carrying the path, as fs reports it', async () => {
  const path = '/nonexistent-interprocess-test/fifo';
  await assert.rejects(openFifoWriter(path, { timeout: 0 }), (e: unknown) => {
    assert.ok(e instanceof NotFoundError, `got ${String(e)}`);
    assert.equal(e.path, path);
    assert.equal(e.message, nodeError(() => statSync(path)).message);
    return true;
  });
});
