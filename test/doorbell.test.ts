// Doorbells (native/doorbell.cc, src/internal/doorbell.ts): the wake-up the
// Channel's asynchronous waits are built on. Internal: imported through the package-private '#internal/*'.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { AbortError, AlreadyExistsError, TimeoutError } from 'interprocess';
import { Doorbell, ring } from '#internal/doorbell';
import { spawnNode, waitForLine, collect, until } from './helpers.js';

let n = 0;
const name = (): string => `ipx-test-bell-${process.pid}-${++n}`;
const threads = (): number => Number(/^Threads:\s+(\d+)/m.exec(readFileSync('/proc/self/status', 'utf8'))![1]);

test('another process rings, the waiting process wakes; ringing a name nobody holds says so', async () => {
  const bell = Doorbell.bind(name());
  try {
    const before = threads();
    const woke = bell.wait({ timeout: 10_000 });
    assert.equal(threads(), before, 'waiting takes no thread');
    const child = spawnNode(`import { ring } from '#internal/doorbell'; console.log(ring(process.argv[1]));`, [bell.name]);
    const r = await collect(child);
    assert.equal(r.stdout.trim(), 'true', r.stderr);
    await woke;
    assert.equal(ring(name()), false, 'nobody holds a fresh name');
  } finally {
    bell.close();
  }
});

test('a name is held by one socket; close() releases it and leaves no file behind', () => {
  const nm = name();
  const bell = Doorbell.bind(nm);
  assert.throws(() => Doorbell.bind(nm), (e: unknown) => e instanceof AlreadyExistsError && (e as AlreadyExistsError).code === 'EADDRINUSE');
  assert.ok(readFileSync('/proc/net/unix', 'utf8').includes(`@${nm}`), 'an abstract socket, not a file');
  bell.close();
  assert.equal(ring(nm), false);
  assert.ok(!readFileSync('/proc/net/unix', 'utf8').includes(`@${nm}`));
  Doorbell.bind(nm).close();
});

test('rings before the wait are not lost; many rings wake one wait', async () => {
  const bell = Doorbell.bind(name());
  try {
    for (let i = 0; i < 5; i++) assert.equal(ring(bell.name), true);
    await bell.wait({ timeout: 1000 });
    await assert.rejects(bell.wait({ timeout: 50 }), TimeoutError, 'all five were consumed by one wait');
  } finally {
    bell.close();
  }
});

test('a listener is called after each ring (rings queued meanwhile take a call each at most), never without one; every ring is taken', async () => {
  const bell = Doorbell.bind(name());
  try {
    let calls = 0;
    bell.listen(() => calls++);
    assert.equal(ring(bell.name), true);
    await until(() => calls === 1, () => `the first ring (${calls} calls)`);
    for (let i = 0; i < 4; i++) assert.equal(ring(bell.name), true); // queued before the loop turns
    await until(() => calls >= 2, () => `the queued rings (${calls} calls)`);
    await new Promise((r) => setTimeout(r, 100));
    const settled = calls;
    assert.ok(settled <= 5, `${settled} calls for 5 rings`);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(calls, settled, 'no call without a ring (the poll is not left readable)');
    bell.unlisten();
    await assert.rejects(bell.wait({ timeout: 50 }), TimeoutError, 'every ring was taken');
  } finally {
    bell.close();
  }
});

test('timeout and abort end a wait; close() ends a pending wait', async () => {
  const bell = Doorbell.bind(name());
  try {
    const t0 = performance.now();
    await assert.rejects(bell.wait({ timeout: 100 }), (e: unknown) => e instanceof TimeoutError && (e as TimeoutError).code === 'ETIMEDOUT');
    assert.ok(performance.now() - t0 >= 90);
    const ac = new AbortController();
    const p = bell.wait({ signal: ac.signal });
    ac.abort(new Error('stop'));
    await assert.rejects(p, (e: unknown) => e instanceof AbortError && (e.cause as Error).message === 'stop');
    const pending = bell.wait();
    bell.close();
    await assert.rejects(pending, /closed/);
  } finally {
    bell.close();
  }
});

test('a process waiting on a doorbell exits once its wait is over', async () => {
  const nm = name();
  const child = spawnNode(
    `import { Doorbell } from '#internal/doorbell';
     const bell = Doorbell.bind(process.argv[1]);
     console.log('waiting');
     await bell.wait({ timeout: 10000 });
     bell.close();
     console.log('rung');`,
    [nm],
  );
  const done = collect(child);
  await waitForLine(child, /waiting/);
  assert.equal(ring(nm), true);
  const r = await done;
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /rung/);
});
