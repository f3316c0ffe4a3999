// The host end of QEMU's `-chardev pipe` (QemuPipe), against a C program that
// opens the two FIFOs exactly as QEMU's char-pipe.c does (both O_RDWR), so
// these run without QEMU; test/qemu-fifo.test.ts does the same with a guest.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { closeSync, constants as fsc, existsSync, lstatSync, openSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AlreadyExistsError, InvalidArgumentError, TimeoutError } from 'interprocess';
import { QemuPipe, serialPipeArgs, ivshmemPlainArgs, ivshmemDoorbellArgs, virtioSerialPortArgs } from 'interprocess/qemu';
import { compilePeer, killOnExit, tempDir, waitForLine, withTimeout } from './helpers.js';

const peer = compilePeer('qemu_pipe_peer');
peer.catch(() => {});

function pipeIn(t: import('node:test').TestContext): QemuPipe {
  const { dir, cleanup } = tempDir('qpipe');
  const p = QemuPipe.create(join(dir, 'serial'));
  t.after(() => {
    p.close();
    p.unlink();
    cleanup();
  });
  return p;
}

test('create makes P.in and P.out FIFOs (mode 0600); exclusive by default; exclusive:false reuses them', (t) => {
  const p = pipeIn(t);
  for (const f of [p.inPath, p.outPath]) {
    assert.ok(lstatSync(f).isFIFO());
    assert.equal(lstatSync(f).mode & 0o777, 0o600);
  }
  assert.throws(() => QemuPipe.create(p.path), AlreadyExistsError);
  const again = QemuPipe.create(p.path, { exclusive: false });
  assert.equal(again.inPath, p.inPath);
  const { dir, cleanup } = tempDir('qpipe');
  t.after(cleanup);
  writeFileSync(join(dir, 'x.in'), '');
  assert.throws(() => QemuPipe.create(join(dir, 'x'), { exclusive: false }), InvalidArgumentError);
  assert.ok(!existsSync(join(dir, 'x.out')), 'nothing made when refused');
});

test('connect waits for "QEMU" without blocking the event loop, then lines go both ways; QEMU exiting ends the stream; the next QEMU connects again', async (t) => {
  const p = pipeIn(t);
  const bin = await peer;
  for (const round of [1, 2]) {
    let ticks = 0;
    const ticker = setInterval(() => ticks++, 5);
    const connecting = p.connect({ timeout: 10_000 });
    await new Promise((r) => setTimeout(r, 100));
    const qemu = killOnExit(t, spawn(bin, [p.path], { stdio: ['ignore', 'pipe', 'inherit'] }));
    await withTimeout(connecting, 10_000, 'connect');
    clearInterval(ticker);
    assert.ok(ticks >= 10, `the event loop ran while connect() waited (${ticks} ticks)`);
    const lines = p.lines()[Symbol.asyncIterator]();
    for (const text of [`hello ${round}`, 'second line']) {
      await p.writeLine(text);
      assert.equal((await withTimeout(lines.next(), 5000, 'echo')).value, text.toUpperCase());
    }
    await p.writeLine('quit');
    await withTimeout(p.ended, 5000, 'end of stream after QEMU exited');
    assert.equal((await withTimeout(lines.next(), 5000, 'iterator end')).done, true, 'the lines end with QEMU');
    await new Promise((r) => qemu.once('exit', r));
  }
});

test('connect times out (TimeoutError) or aborts when no QEMU comes; frames cross too', async (t) => {
  const p = pipeIn(t);
  await assert.rejects(p.connect({ timeout: 100 }), TimeoutError);
  const ac = new AbortController();
  const c = p.connect({ signal: ac.signal });
  ac.abort();
  await assert.rejects(c, { name: 'AbortError' });
  const bin = await peer;
  const qemu = killOnExit(t, spawn(bin, [p.path, 'hold'], { stdio: ['ignore', 'pipe', 'inherit'] }));
  await waitForLine(qemu, /open/);
  await p.connect({ timeout: 5000 });
  await assert.rejects(p.connect({ timeout: 100 }), InvalidArgumentError, 'connected already');
  qemu.kill('SIGTERM');
  await withTimeout(p.ended, 5000, 'ended after QEMU was killed');
});

test('connect gives up after `timeout` in all, also when "QEMU" opens P.in late and P.out never', async (t) => {
  const p = pipeIn(t);
  const timeout = 500;
  const elapsed = async (): Promise<number> => {
    const t0 = performance.now();
    await withTimeout(assert.rejects(p.connect({ timeout }), { name: 'TimeoutError', code: 'ETIMEDOUT' }), 10_000, 'connect times out');
    return performance.now() - t0;
  };
  const alone = await elapsed();
  assert.ok(alone >= timeout * 0.9 && alone < timeout * 1.6, `nobody there: gave up after ${Math.round(alone)} ms, timeout ${timeout}`);
  // A QEMU that stalls between its two opens: P.in gains a reader near the end of the time.
  let reader: number | undefined;
  const late = setTimeout(() => (reader = openSync(p.inPath, fsc.O_RDONLY | fsc.O_NONBLOCK)), timeout * 0.8);
  t.after(() => {
    clearTimeout(late);
    if (reader !== undefined) closeSync(reader);
  });
  const half = await elapsed();
  assert.ok(reader !== undefined, 'P.in was opened meanwhile');
  assert.ok(half >= timeout * 0.9 && half < timeout * 1.6, `P.in opened late: gave up after ${Math.round(half)} ms, timeout ${timeout}`);
});

test('argument builders refuse what QEMU would refuse late or silently', () => {
  assert.deepEqual(serialPipeArgs('ser0', '/tmp/p'), ['-chardev', 'pipe,id=ser0,path=/tmp/p', '-serial', 'chardev:ser0']);
  assert.throws(() => serialPipeArgs('0bad', '/tmp/p'), InvalidArgumentError);
  assert.throws(() => serialPipeArgs('ser0', '/tmp/a,b'), InvalidArgumentError);
  assert.deepEqual(ivshmemPlainArgs({ name: '/ring', size: 1 << 20 }), [
    '-object', 'memory-backend-file,id=ivshmem0,share=on,mem-path=/dev/shm/ring,size=1048576',
    '-device', 'ivshmem-plain,memdev=ivshmem0',
  ]);
  assert.throws(() => ivshmemPlainArgs({ name: '/ring', size: 3 << 20 }), InvalidArgumentError, 'not a power of two');
  assert.deepEqual(ivshmemDoorbellArgs({ socketPath: '/tmp/ivs', vectors: 2 }).slice(-1), ['ivshmem-doorbell,chardev=ivshmem0,vectors=2']);
  assert.deepEqual(virtioSerialPortArgs('vs0', '/tmp/v', 'org.ipx.0').slice(-1), ['virtserialport,chardev=vs0,name=org.ipx.0']);
});
