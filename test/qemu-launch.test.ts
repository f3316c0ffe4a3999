// launchQemu: QEMU started with the package's host-side devices wired in,
// the host ends given back connected; on a real guest (test/qemu/guest.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { AbortError } from 'interprocess';
import { launchQemu } from 'interprocess/qemu';
import { tempDir, withTimeout } from './helpers.js';
import { buildInitramfs, qemuDir, requireQemu } from './qemu/guest.js';

test('launchQemu wires a serial pipe and a virtio port, connects them, and stop() ends QEMU and removes the FIFOs', async (t) => {
  if (!requireQemu(t)) return;
  const initrd = await buildInitramfs(t, {
    programs: ['port_echo'],
    init: 'port_echo /dev/ttyS1 & port_echo "$(virtio_port org.ipx.1)" & wait',
  });
  const { dir, cleanup } = tempDir('qemu-launch');
  t.after(cleanup);
  const vm = await launchQemu({
    args: [
      '-accel', 'tcg', '-M', 'q35', '-nodefaults', '-display', 'none', '-no-reboot', '-m', '256',
      '-kernel', join(qemuDir, 'vmlinuz'), '-initrd', initrd,
      '-append', 'console=ttyS0 panic=-1 quiet', '-serial', `file:${join(dir, 'console.log')}`,
    ],
    serialPipes: { ser1: join(dir, 'ser1') },
    virtioPorts: { vp: { path: join(dir, 'vp'), name: 'org.ipx.1' } },
    connect: { timeout: 20_000 },
  });
  t.after(() => vm.stop());
  for (const id of ['ser1', 'vp']) {
    const pipe = vm.pipes[id]!;
    const lines = pipe.lines()[Symbol.asyncIterator]();
    assert.match((await withTimeout(lines.next(), 30_000, `${id} ready`)).value as string, /^READY /);
    await pipe.writeLine(`hello ${id}`);
    assert.equal((await withTimeout(lines.next(), 10_000, `${id} echo`)).value, `HELLO ${id.toUpperCase()}`);
  }
  const exit = await vm.stop();
  assert.ok(exit.signal === 'SIGTERM' || exit.code === 0, `QEMU ended: ${JSON.stringify(exit)}`);
  await withTimeout(vm.pipes.ser1!.ended, 5000, 'the stream ended with QEMU');
  const { existsSync } = await import('node:fs');
  assert.ok(!existsSync(join(dir, 'ser1.in')) && !existsSync(join(dir, 'vp.out')), 'FIFOs removed');
});

test('launchQemu fails clearly when QEMU exits before opening its pipes, and leaves nothing', async (t) => {
  if (!requireQemu(t)) return;
  const { dir, cleanup } = tempDir('qemu-launch');
  t.after(cleanup);
  await assert.rejects(
    launchQemu({ args: ['-no-such-option'], serialPipes: { s: join(dir, 's') }, connect: { timeout: 20_000 } }),
    /QEMU exited .* before opening its pipes/,
  );
  const { readdirSync } = await import('node:fs');
  assert.deepEqual(readdirSync(dir), []);
});

test('launchQemu with an already aborted connect.signal rejects at once (AbortError, cause: the reason), making and starting nothing', async (t) => {
  // No QEMU needed: a stand-in that would record being started, then never open its pipes.
  const { dir, cleanup } = tempDir('qemu-launch');
  t.after(cleanup);
  const started = join(dir, 'started');
  const reason = new Error('no longer wanted');
  const t0 = performance.now();
  const err = await withTimeout(
    launchQemu({
      binary: process.execPath,
      args: ['-e', `require('fs').writeFileSync(${JSON.stringify(started)}, ''); setTimeout(() => {}, 30_000)`, '--'],
      serialPipes: { s: join(dir, 's') },
      connect: { timeout: 3000, signal: AbortSignal.abort(reason) },
    }).then(() => assert.fail('launchQemu resolved'), (e: unknown) => e),
    10_000,
    'launchQemu settles',
  );
  assert.ok(err instanceof AbortError, `expected AbortError, got ${String(err)}`);
  assert.equal(err.cause, reason);
  assert.ok(performance.now() - t0 < 1000, `rejected after ${Math.round(performance.now() - t0)} ms, not at once`);
  assert.deepEqual(readdirSync(dir), [], 'no FIFO made, nothing started');
});
