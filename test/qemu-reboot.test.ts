// A guest reboot is invisible to the host end of a -chardev pipe: QEMU keeps
// its FIFOs open, so the stream goes on across the reboot and ends only when
// QEMU exits. (Launched without -no-reboot, through launchQemu.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { launchQemu } from 'interprocess/qemu';
import { tempDir, withTimeout } from './helpers.js';
import { buildInitramfs, qemuDir, requireQemu } from './qemu/guest.js';

test('the host end of a serial pipe survives a guest reboot and ends when QEMU exits', async (t) => {
  if (!requireQemu(t)) return;
  const initrd = await buildInitramfs(t, {
    // ttyS1 is held open (fd 3) for the whole script: each last close shuts
    // the 8250 UART down, and bytes the host sends then are dropped (the
    // host's command could arrive between the echo's close and the read).
    init: `exec 3<>/dev/ttyS1
stty -F /dev/ttyS1 raw -echo
echo "READY boot $(cat /proc/sys/kernel/random/boot_id)" >&3
read -r cmd <&3
[ "$cmd" = reboot ] && reboot -f`,
  });
  const { dir, cleanup } = tempDir('qemu-reboot');
  t.after(cleanup);
  const vm = await launchQemu({
    args: [
      '-accel', 'tcg', '-M', 'q35', '-nodefaults', '-display', 'none', '-m', '256',
      '-kernel', join(qemuDir, 'vmlinuz'), '-initrd', initrd,
      '-append', 'console=ttyS0 panic=-1 quiet', '-serial', `file:${join(dir, 'console.log')}`,
    ],
    serialPipes: { ser1: join(dir, 'ser1') },
    connect: { timeout: 20_000 },
  });
  t.after(() => vm.stop());
  const pipe = vm.pipes.ser1!;
  const lines = pipe.lines()[Symbol.asyncIterator]();
  const first = (await withTimeout(lines.next(), 30_000, 'first boot')).value as string;
  assert.match(first, /^READY boot /);
  await pipe.writeLine('reboot');
  const second = (await withTimeout(lines.next(), 30_000, 'second boot')).value as string;
  assert.match(second, /^READY boot /);
  assert.notEqual(second, first, 'a new boot (another boot_id), on the same connection');
  let ended = false;
  void pipe.ended.then(() => (ended = true));
  assert.equal(ended, false);
  await pipe.writeLine('quit');
  await withTimeout(pipe.ended, 30_000, 'end of stream when QEMU exits');
  const exit = await vm.exited;
  assert.equal(exit.code, 0, exit.stderr);
});
