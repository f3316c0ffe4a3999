// A Channel between the host and a real guest through ivshmem-plain memory:
// the host's POSIX shared memory objects are the guest's PCI BAR2, byte for
// byte; a static C program in the guest (guest/ivshmem_channel.c,
// include/interprocess.h) echoes the host's messages reversed. Neither side
// can wake the other (no common kernel), so both poll (pollInterval) and
// neither judges the other's pids (foreignPeers).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Channel } from 'interprocess';
import { ivshmemPlainArgs } from 'interprocess/qemu';
import { bootGuest, buildInitramfs, requireQemu } from './qemu/guest.js';
import { shmEntries, uniqueName, withTimeout } from './helpers.js';

const CAPACITY = 1 << 16;
const SIZE = 1 << 17; // ivshmem wants a power of two: the object is larger than the channel needs

test('messages of random sizes cross host -> guest -> host through ivshmem memory, in order and intact', async (t) => {
  if (!requireQemu(t)) return;
  const names = [uniqueName('ivs-h2g'), uniqueName('ivs-g2h')];
  const opts = { capacity: CAPACITY, size: SIZE, pollInterval: 1, foreignPeers: true };
  const toGuest = Channel.create(names[0]!, opts);
  const fromGuest = Channel.create(names[1]!, opts);
  t.after(() => {
    toGuest.close();
    fromGuest.close();
    for (const n of names) Channel.unlink(n);
  });
  const N = 300;
  const initrd = await buildInitramfs(t, { programs: ['ivshmem_channel'], init: `ivshmem_channel ${N}` });
  const guest = bootGuest(t, {
    initrd,
    timeoutMs: 60_000,
    extraArgs: [...ivshmemPlainArgs({ id: 'm0', name: names[0]!, size: SIZE }), ...ivshmemPlainArgs({ id: 'm1', name: names[1]!, size: SIZE })],
  });
  await guest.waitForConsole(/ivshmem ready/, 30_000);
  const sent = createHash('sha256');
  const got = createHash('sha256');
  const sizes = [0, 1, toGuest.maxMessage];
  for (let i = sizes.length; i < N; i++) sizes.push(i % 17 === 0 ? toGuest.maxMessage - (i % 8) : (i * 7919) % 3000);
  let received = 0;
  const receiving = (async () => {
    for (; received < N; received++) {
      const m = await fromGuest.receive({ timeout: 30_000 });
      const back = Buffer.from(m).reverse();
      assert.equal(back.length, sizes[received], `message ${received}: length`);
      got.update(back);
    }
  })();
  for (let i = 0; i < N; i++) {
    const m = randomBytes(sizes[i]!);
    if (m.length >= 4) m.writeUInt32LE(i, 0);
    sent.update(m);
    await toGuest.send(m, { timeout: 30_000 });
  }
  await withTimeout(receiving, 60_000, `echoes (got ${received} of ${N}); guest:\n${guest.describe()}`);
  assert.equal(got.digest('hex'), sent.digest('hex'), 'the same bytes came back, in order');
  await guest.waitForConsole(/ivshmem echoed 300/, 10_000);
  const exit = await guest.exited;
  assert.equal(exit.timedOut, false, guest.describe());
});

test('nothing is left behind in /dev/shm', () => {
  assert.deepEqual(shmEntries(`ipt-${process.pid}-`), []);
});
