// Doorbells between the host and real guests: a TypeScript IvshmemServer,
// the host joined as an IvshmemPeer, and QEMU `ivshmem-doorbell` devices
// driven in the guest from userspace through VFIO by a static C program
// (guest/ivshmem_doorbell.c): it binds the device to vfio-pci,
// maps BAR0/BAR2, turns on bus mastering and wires the MSI-X vectors to
// eventfds, then runs the script of commands it is given (see that file).
// Interrupts need an IOMMU in the guest: `-device intel-iommu`, intel_iommu=on.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { SharedMemory } from 'interprocess/posix';
import { IvshmemPeer, IvshmemServer, ivshmemDoorbellArgs } from 'interprocess/qemu';
import { bootGuest, buildInitramfs, requireQemu, type Guest } from './qemu/guest.js';
import { shmEntries, tempDir, uniqueName, withTimeout } from './helpers.js';

const SIZE = 1 << 20;
const VECTORS = 2;
const RINGS = 50;
const HOST_TEXT_AT = 0;
const GUEST_A_TEXT_AT = 4096;
const GUEST_B_TEXT_AT = 8192;

const decoder = new TextDecoder();

function writeText(memory: SharedArrayBuffer, offset: number, text: string): void {
  const bytes = Buffer.from(`${text}\0`);
  new Uint8Array(memory, offset, bytes.length).set(bytes);
}

function readText(memory: SharedArrayBuffer, offset: number, max = 256): string {
  const view = new Uint8Array(memory, offset, max);
  const end = view.indexOf(0);
  return decoder.decode(view.slice(0, end < 0 ? max : end));
}

/** The guest program's script, as arguments of /init's command line (one command each). */
function guestCommand(commands: string[]): string {
  return ['ivshmem_doorbell', ...commands.map((c) => `'${c}'`)].join(' ');
}

/** Resolves with the first id pushed onto `log` (by a listener on `emitter`'s `event`) after this call. */
function nextEvent(emitter: IvshmemPeer, event: 'join' | 'leave', log: number[], ms: number, what: () => string): Promise<number> {
  const start = log.length;
  return withTimeout(
    new Promise<number>((resolve) => {
      const check = (): void => {
        if (log.length > start) {
          emitter.off(event, check);
          resolve(log[start]!);
        }
      };
      emitter.on(event, check);
      check();
    }),
    ms,
    `a '${event}' on the host peer; ${what()}`,
  );
}

test('doorbells cross host <-> guest, and two VMs share one region through the TypeScript server', async (t) => {
  if (!requireQemu(t)) return;
  const { dir, cleanup } = tempDir('ivshmem-doorbell');
  const socketPath = join(dir, 'ivshmem.sock');
  const shmName = uniqueName('ivs-doorbell');
  const server = IvshmemServer.listen(socketPath, { name: shmName, size: SIZE, vectors: VECTORS });
  t.after(() => {
    server.close();
    SharedMemory.unlink(shmName);
    rmSync(socketPath, { force: true });
    cleanup();
  });
  const host = await IvshmemPeer.connect(socketPath, { vectors: VECTORS, timeout: 5000 });
  t.after(() => host.close());
  const joins: number[] = [];
  const leaves: number[] = [];
  host.on('join', (id: number) => joins.push(id));
  host.on('leave', (id: number) => leaves.push(id));
  const memory = host.memory;
  assert.equal(memory.byteLength, SIZE);

  const vm = (initrd: string): Guest =>
    bootGuest(t, {
      initrd,
      timeoutMs: 40_000,
      append: 'intel_iommu=on',
      extraArgs: ['-device', 'intel-iommu', ...ivshmemDoorbellArgs({ id: 'ivs', socketPath, vectors: VECTORS })],
    });

  // ---- VM A: the host rings it, it rings the host, memory both ways, ping-pong, then waits for VM B.
  const initrdA = await buildInitramfs(t, {
    programs: ['ivshmem_doorbell'],
    init: guestCommand([
      'id',
      'wait 0',
      `read ${HOST_TEXT_AT} 64`,
      `write ${GUEST_A_TEXT_AT} written by guest A`,
      `ring ${host.id} 0`,
      `pong ${RINGS} 0 ${host.id}`,
      'wait 1',
      `read ${GUEST_B_TEXT_AT} 64`,
    ]),
  });
  const a = vm(initrdA);
  let aExited = false;
  void a.exited.then(() => (aExited = true));
  const aId = await nextEvent(host, 'join', joins, 20_000, () => a.describe());
  const ready = await a.waitForConsole(/doorbell: ready/, 30_000);
  console.log(`guest A (peer ${aId}) ready ${((performance.now() - a.startedAt) / 1000).toFixed(2)} s after QEMU started: ${ready.trim()}`);
  assert.match(await a.waitForConsole(/doorbell: id \d+/), new RegExp(`doorbell: id ${aId}\\b`), 'BAR0 IVPosition is the id the server gave');
  assert.deepEqual(host.peers, [aId]);

  // (a) + (c) host -> guest: memory written, then the guest's vector 0 rung.
  writeText(memory, HOST_TEXT_AT, 'written by the host');
  const guestRang = host.wait(0, { timeout: 20_000 });
  host.ring(aId, 0);
  await a.waitForConsole(/doorbell: vector 0 fired/);
  assert.match(await a.waitForConsole(/doorbell: read 0:/), /doorbell: read 0: written by the host\s*$/);

  // (b) + (c) guest -> host: the guest writes, rings the host's vector 0 through BAR0; the host's await wakes.
  await withTimeout(guestRang, 20_000, `the guest's ring; ${a.describe()}`);
  assert.equal(readText(memory, GUEST_A_TEXT_AT), 'written by guest A');

  // Round trips host -> guest interrupt -> guest ring -> host.
  const times: number[] = [];
  for (let i = 0; i < RINGS; i++) {
    const t0 = performance.now();
    const back = host.wait(0, { timeout: 10_000 });
    host.ring(aId, 0);
    await back;
    times.push(performance.now() - t0);
  }
  await a.waitForConsole(/doorbell: ponged 50/);
  const sorted = [...times].sort((x, y) => x - y);
  const q = (p: number): string => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!.toFixed(3);
  console.log(`doorbell round trip host -> guest -> host over ${RINGS} rings (ms): first ${times[0]!.toFixed(3)}, min ${q(0)}, median ${q(0.5)}, p90 ${q(0.9)}, max ${q(1 - 1e-9)}`);

  // ---- (d) VM B, while A waits on vector 1: reads what A wrote, writes, rings A's vector 1.
  const initrdB = await buildInitramfs(t, {
    programs: ['ivshmem_doorbell'],
    init: guestCommand(['id', `read ${GUEST_A_TEXT_AT} 64`, `write ${GUEST_B_TEXT_AT} written by guest B`, `ring ${aId} 1`]),
  });
  const b = vm(initrdB);
  const bId = await nextEvent(host, 'join', joins, 20_000, () => b.describe());
  assert.notEqual(bId, aId);
  assert.equal(aExited, false, 'guest A is still running when guest B joins');
  assert.deepEqual(new Set(host.peers), new Set([aId, bId]));
  assert.match(await b.waitForConsole(/doorbell: read 4096:/, 30_000), /read 4096: written by guest A\s*$/, b.describe());
  assert.match(await a.waitForConsole(/doorbell: vector 1 fired/, 20_000), /vector 1 fired/);
  assert.match(await a.waitForConsole(/doorbell: read 8192:/), /read 8192: written by guest B\s*$/);
  assert.equal(readText(memory, GUEST_B_TEXT_AT), 'written by guest B');

  // Both power off; the host peer sees both leave.
  const [exitA, exitB] = await Promise.all([a.exited, b.exited]);
  assert.equal(exitA.timedOut, false, a.describe());
  assert.equal(exitB.timedOut, false, b.describe());
  assert.match(a.console(), /doorbell: done/, a.describe());
  assert.match(b.console(), /doorbell: done/, b.describe());
  await withTimeout(
    (async () => {
      while (!(leaves.includes(aId) && leaves.includes(bId))) await new Promise((r) => setTimeout(r, 10));
    })(),
    5000,
    `'leave' for ${aId} and ${bId} (saw ${leaves.join(', ') || 'none'})`,
  );
  assert.deepEqual(host.peers, []);
  console.log(`guest A ran ${(exitA.ms / 1000).toFixed(2)} s, guest B ${(exitB.ms / 1000).toFixed(2)} s (boot to power-off)`);
});

test('nothing is left behind in /dev/shm', () => {
  assert.deepEqual(shmEntries(`ipt-${process.pid}-`), []);
});
