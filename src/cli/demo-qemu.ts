/**
 * `interprocess demo qemu`: this process and a Linux guest under QEMU, through
 * a FIFO (`-chardev pipe` on the guest's ttyS1) and shared memory (an
 * `ivshmem-plain` device over a POSIX shared memory object). The guest is a
 * kernel from build/qemu (scripts/qemu-assets.sh) and a busybox initramfs
 * built here; its /init is a shell script, so no compiler is needed.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { posix } from '../index.js';
import { buildInitramfs, findGuestAssets, launchQemu, type LaunchedQemu } from '../qemu/index.js';
import { say, heading, type Out } from './output.js';

const host = (out: Out, text: string): void => say(out, `host ${process.pid}`, text);
const guest = (out: Out, text: string): void => say(out, 'guest', text);

/** The memory's layout, shared by the host code below and the guest's /init. */
const SIZE = 4096; // ivshmem wants a power of two
const STATE = 0; // u32: 0 empty, 1 the host wrote, 2 the guest answered
const NUMBER = 4; // u32 from the host
const ANSWER = 8; // u32 from the guest
const TEXT_LEN = 16; // u32
const REPLY_LEN = 20; // u32
const TEXT = 32; // the host's text (up to 96 bytes)
const REPLY = 128; // the guest's text
const SWITCH = 'over to shared memory';

/**
 * The guest's /init (busybox sh, PID 1). (1) ttyS1 in raw mode, READY, then
 * every line echoed uppercased until SWITCH. (2) the ivshmem device's BAR2
 * found in sysfs and read and written with devmem. Then power-off, which ends
 * QEMU (-no-reboot). Its narration goes to the host over ttyS1 too.
 */
const init = String.raw`#!/bin/sh
export PATH=/bin HOME=/ TERM=dumb
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
# Whatever happens to the host, this guest does not outlive the demo by much.
(sleep 60; poweroff -f) &
t=/dev/ttyS1
# Hold ttyS1 open for the whole script: each last close shuts the UART down,
# and bytes the host sends before the next open (its FIFO, its buffer) are lost.
exec 3<>$t
stty -F $t raw -echo
say() { echo "$*" > $t; }
say "READY: $(uname -sr), up $(cut -d' ' -f1 /proc/uptime) s; /init echoes lines from ttyS1 uppercased"

# (1) The FIFO: QEMU passes ttyS1's bytes to and from the host's FIFOs.
while read -r line; do
  [ "$line" = "${SWITCH}" ] && break
  echo "$line" | tr a-z A-Z
done < $t > $t

# (2) Shared memory: the ivshmem-plain device (PCI 1af4:1110); BAR2 is the host's object.
dev=
for d in /sys/bus/pci/devices/*; do
  [ "$(cat $d/vendor)" = 0x1af4 ] && [ "$(cat $d/device)" = 0x1110 ] && dev=$d
done
[ -n "$dev" ] || { say "no ivshmem device"; poweroff -f; }
bar2=$(sed -n 3p $dev/resource | cut -d' ' -f1)
base=$((bar2))
say "found the ivshmem device at PCI $(basename $dev); BAR2 (line 3 of its sysfs resource) is at $bar2"
i=0
while [ $(($(devmem $base 32))) -ne 1 ] && [ $i -lt 1000 ]; do usleep 10000; i=$((i + 1)); done
n=$(($(devmem $((base + ${NUMBER})) 32)))
len=$(($(devmem $((base + ${TEXT_LEN})) 32)))
text= i=0
while [ $i -lt $len ]; do
  text="$text$(printf "\\$(printf %o $(($(devmem $((base + ${TEXT} + i)) 8))))")"
  i=$((i + 1))
done
say "devmem read state 1, the number $n and the text \"$text\""
devmem $((base + ${ANSWER})) 32 $((n * 2))
reply=$(echo "$text" | tr a-z A-Z)
i=0
for c in $(printf %s "$reply" | od -An -tu1); do devmem $((base + ${REPLY} + i)) 8 $c; i=$((i + 1)); done
devmem $((base + ${REPLY_LEN})) 32 $i
devmem $base 32 2
say "devmem wrote $((n * 2)) and \"$reply\" back, then state 2"
say "powering off"
poweroff -f
`;

/** Why the walkthrough cannot run here, or undefined when it can. */
function unavailable(): string | undefined {
  const assets = findGuestAssets();
  return assets.ok ? undefined : `missing ${assets.missing.join(', ')}`;
}

function within<T>(p: Promise<T>, ms: number, what: string, describe: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}\n${describe()}`)), ms);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

export async function qemuDemo(out: Out, owe: (undo: () => void) => () => void): Promise<void> {
  const why = unavailable();
  if (why) {
    out.write(`\nQEMU walkthrough skipped: ${why}. To get it, run \`bash scripts/qemu-assets.sh\` as root on Debian (it installs qemu-system-x86 and busybox-static and unpacks a guest kernel into build/qemu).\n`);
    return;
  }
  const assets = findGuestAssets();
  if (!assets.ok) return;

  heading(out, 'QEMU: a Linux guest and this process, through a FIFO and through shared memory');
  const dir = mkdtempSync(join(tmpdir(), 'interprocess-demo-'));
  let vm: LaunchedQemu | undefined;
  // On Ctrl-C: QEMU killed (by its pid file if launchQemu has not returned yet), FIFOs and files removed.
  const removeAll = owe(() => {
    try {
      if (vm) vm.child.kill('SIGKILL');
      else process.kill(Number(readFileSync(join(dir, 'qemu.pid'), 'utf8')), 'SIGKILL');
    } catch { /* not started, or gone */ }
    rmSync(dir, { recursive: true, force: true });
  });
  const name = `/interprocess-demo-qemu-${process.pid}`;
  const shm = posix.SharedMemory.create(name, { size: SIZE, mode: 0o600 });
  const unlinkShm = owe(() => posix.SharedMemory.unlink(name));
  const consolePath = join(dir, 'console.log');
  const describe = (): string => {
    let tail = '';
    try {
      tail = readFileSync(consolePath, 'utf8').split('\n').slice(-15).join('\n');
    } catch { /* no console yet */ }
    return `--- guest console (tail) ---\n${tail}\n---`;
  };
  try {
    host(out, `created ${name} (${SIZE} bytes, mapped here as a SharedArrayBuffer): QEMU maps it as the guest's ivshmem BAR2`);
    const initrd = join(dir, 'initrd.cpio');
    const image = buildInitramfs({ busybox: assets.busybox, init });
    writeFileSync(initrd, image);
    host(out, `built a ${Math.round(image.length / 1024)} KiB initramfs: static busybox and a shell-script /init (buildInitramfs)`);
    host(out, `starting ${assets.manifest.version} under ${assets.qemu} (TCG, q35); ttyS1 is -chardev pipe on ${join(dir, 'ttyS1')}.in/.out`);
    const startedAt = performance.now();
    vm = await launchQemu({
      binary: assets.qemu,
      args: [
        '-accel', 'tcg', '-M', 'q35', '-nodefaults', '-display', 'none', '-no-reboot', '-m', '256',
        '-pidfile', join(dir, 'qemu.pid'),
        '-kernel', assets.kernel, '-initrd', initrd,
        '-append', 'console=ttyS0 panic=-1 quiet',
        '-serial', `file:${consolePath}`,
      ],
      serialPipes: { ser1: join(dir, 'ttyS1') },
      ivshmem: [{ name, size: SIZE }],
      connect: { timeout: 20_000 },
    });
    const pipe = vm.pipes.ser1!;
    host(out, `QEMU ${vm.child.pid} opened the FIFOs: connected (QemuPipe via launchQemu); waiting for the guest to boot`);
    const lines = pipe.lines()[Symbol.asyncIterator]();
    const line = async (what: string, ms = 10_000): Promise<string> => {
      const r = await within(lines.next(), ms, what, describe);
      if (r.done) throw new Error(`QEMU exited while waiting for ${what}\n${describe()}\n${(await vm!.exited).stderr}`);
      return r.value;
    };

    heading(out, 'QEMU, FIFO: host -> P.in -> guest ttyS1 -> P.out -> host');
    guest(out, await line('the guest to boot (READY)', 60_000));
    host(out, `the guest booted in ${((performance.now() - startedAt) / 1000).toFixed(1)} s`);
    for (const text of ['hello from the host', 'QEMU relays the bytes of ttyS1', 'one line, one answer']) {
      host(out, `send: "${text}"`);
      await pipe.writeLine(text);
      host(out, `answer: "${await line(`the echo of "${text}"`)}"`);
    }

    heading(out, 'QEMU, shared memory: the host\'s POSIX object is the guest\'s PCI BAR2');
    const mem = Buffer.from(shm.buffer);
    const words = new Uint32Array(shm.buffer, 0, 32);
    const text = 'hello through shared memory';
    mem.writeUInt32LE(21, NUMBER);
    mem.writeUInt32LE(Buffer.byteLength(text), TEXT_LEN);
    mem.write(text, TEXT);
    Atomics.store(words, STATE / 4, 1);
    host(out, `wrote the number 21 and "${text}" into ${name}, then state 1 (Atomics.store)`);
    host(out, `send: "${SWITCH}"`);
    await pipe.writeLine(SWITCH);
    for (let i = 0; i < 3; i++) guest(out, await line('the guest\'s shared memory steps', 30_000));
    const deadline = performance.now() + 5000;
    while (Atomics.load(words, STATE / 4) !== 2) {
      if (performance.now() > deadline) throw new Error(`the guest's answer never reached ${name}\n${describe()}`);
      await new Promise((r) => setTimeout(r, 5));
    }
    const reply = mem.subarray(REPLY, REPLY + mem.readUInt32LE(REPLY_LEN)).toString();
    host(out, `read the SharedArrayBuffer: state ${Atomics.load(words, STATE / 4)}, answer ${mem.readUInt32LE(ANSWER)}, text "${reply}"`);
    guest(out, await line('the guest to power off'));

    const end = await within(lines.next(), 20_000, 'QEMU to exit', describe);
    if (!end.done) throw new Error(`unexpected line from the guest: ${end.value}`);
    const exit = await vm.exited;
    host(out, `end of stream on ${pipe.outPath}: QEMU exited (${exit.signal ?? `code ${exit.code}`}) after the guest's power-off, ${((performance.now() - startedAt) / 1000).toFixed(1)} s after it started`);
  } finally {
    await vm?.stop();
    shm.close();
    unlinkShm();
    removeAll();
    host(out, `unlinked ${name}; removed the FIFOs, the initramfs and ${dir}`);
  }
}

