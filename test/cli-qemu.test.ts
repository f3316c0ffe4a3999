// `interprocess demo qemu`, driven as a user would: spawned, output read. It
// boots a real guest (test/qemu/guest.ts's kernel, a busybox initramfs the CLI
// builds with the library's buildInitramfs) and talks to it through a FIFO and
// through ivshmem memory. Without QEMU the tests that boot are skipped with the
// reason (requireQemu); the skip message of the CLI itself is tested everywhere.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { collect, root, run, shmEntries, until, waitForLine } from './helpers.js';
import { requireQemu } from './qemu/guest.js';

const cli = join(root, 'dist', 'cli', 'main.js');
const T = { timeout: 90_000 };
const demoTempDirs = (): string[] => readdirSync(tmpdir()).filter((f) => f.startsWith('interprocess-demo-'));

/** True while `pid` is a live process (a zombie nobody reaps counts as gone). */
function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

test('demo qemu boots a guest, talks to it through a FIFO and ivshmem memory, and leaves nothing behind', T, async (t) => {
  if (!requireQemu(t)) return;
  const dirsBefore = demoTempDirs();
  const r = await run(process.execPath, [cli, 'demo', 'qemu']);
  assert.equal(r.code, 0, `${r.stderr}\n${r.stdout}`);
  const out = r.stdout;
  const host = String.raw`^\[host \d+\] `;
  const line = (who: string, text: string): RegExp => new RegExp(`${who}${text}$`, 'm');

  // The guest booted and its /init (busybox only) answered on ttyS1.
  assert.match(out, /^\[guest\] READY: Linux \S+, up [\d.]+ s/m);
  assert.match(out, line(host, String.raw`the guest booted in [\d.]+ s`));
  // FIFO: every line sent came back uppercased, in order.
  assert.match(out, line(host, 'send: "hello from the host"\n.*answer: "HELLO FROM THE HOST"'));
  assert.match(out, line(host, 'answer: "QEMU RELAYS THE BYTES OF TTYS1"'));
  assert.match(out, line(host, 'answer: "ONE LINE, ONE ANSWER"'));
  // Shared memory: the guest found BAR2 in sysfs, read the host's bytes with devmem, answered in the same memory.
  assert.match(out, /^\[guest\] found the ivshmem device at PCI [\da-f:.]+; BAR2 .* is at 0x[\da-f]+$/m);
  assert.match(out, /^\[guest\] devmem read state 1, the number 21 and the text "hello through shared memory"$/m);
  assert.match(out, line(host, 'read the SharedArrayBuffer: state 2, answer 42, text "HELLO THROUGH SHARED MEMORY"'));
  // Power-off: QEMU's exit is the end of the FIFO stream.
  assert.match(out, /^\[guest\] powering off\n\[host \d+\] end of stream on \S+ttyS1\.out: QEMU exited \(code 0\)/m);
  assert.match(out, /Done: every object the demo created has been removed/);
  // The two sides took turns in that order.
  const order = ['READY', 'HELLO FROM THE HOST', 'devmem read state 1', 'state 2, answer 42', 'powering off', 'end of stream'].map((s) => out.indexOf(s));
  assert.deepEqual(order, [...order].sort((a, b) => a - b), 'steps in order');

  assert.deepEqual(shmEntries('/interprocess-demo-'), [], 'nothing left in /dev/shm');
  assert.deepEqual(demoTempDirs().filter((d) => !dirsBefore.includes(d)), [], 'no temporary directory left');
  const qemuPid = Number(/QEMU (\d+) opened the FIFOs/.exec(out)?.[1]);
  assert.ok(qemuPid > 0 && !alive(qemuPid), 'QEMU is gone');
});

test('Ctrl-C during demo qemu kills QEMU and removes the shared memory, the FIFOs and the temporary directory', T, async (t) => {
  if (!requireQemu(t)) return;
  const dirsBefore = demoTempDirs();
  const child = spawn(process.execPath, [cli, 'demo', 'qemu'], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.after(() => child.kill('SIGKILL'));
  const done = collect(child);
  const started = await waitForLine(child, /QEMU \d+ opened the FIFOs/, 30_000);
  const qemuPid = Number(/QEMU (\d+)/.exec(started)![1]);
  await waitForLine(child, /the guest booted/, 60_000);
  child.kill('SIGINT');
  const r = await done;
  assert.equal(r.code, 130, `exit ${r.code} ${r.signal}\n${r.stderr}`);
  const shm = /created \/(interprocess-demo-qemu-\d+)/.exec(r.stdout)![1]!;
  assert.ok(!existsSync(join('/dev/shm', shm)), `${shm} was left in /dev/shm`);
  assert.deepEqual(demoTempDirs().filter((d) => !dirsBefore.includes(d)), [], 'no temporary directory (FIFOs, initramfs) left');
  await until(() => !alive(qemuPid), `QEMU ${qemuPid} still running after Ctrl-C`, 5000);
});

test('without QEMU, demo qemu says in one line why it is skipped and how to get it, and the demo goes on', async () => {
  const r = await run(process.execPath, [cli, 'demo', 'fifo', 'qemu'], { env: { ...process.env, PATH: '/nonexistent' } });
  assert.equal(r.code, 0, r.stderr);
  const skipped = r.stdout.split('\n').filter((l) => /QEMU/.test(l));
  assert.equal(skipped.length, 1, r.stdout);
  assert.match(skipped[0]!, /^QEMU walkthrough skipped: missing qemu-system-x86_64 .*run `bash scripts\/qemu-assets\.sh` as root on Debian/);
  assert.match(r.stdout, /Received: Hello, FIFO/);
  assert.match(r.stdout, /Done: every object the demo created has been removed/);
});

test('demo lists qemu among its walkthroughs', async () => {
  const r = await run(process.execPath, [cli, 'demo', 'carrier-pigeon']);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /channel, qemu/);
});
