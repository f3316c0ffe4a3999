// Host <-> QEMU guest over FIFOs (`-chardev pipe`), on a real guest: a Linux
// kernel and a busybox initramfs booted under TCG (test/qemu/guest.ts). The
// guest runs guest/port_echo.c on its second serial port (ttyS1)
// and on a virtio-serial port; the host end is QemuPipe from
// 'interprocess/qemu'. Each boot takes 2-3 s; without QEMU (not root, no
// apt) every test here is skipped with the reason.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { QemuPipe } from 'interprocess/qemu';
import type { TestContext } from 'node:test';
import { tempDir, withTimeout } from './helpers.js';
import { bootGuest, buildInitramfs, requireQemu, type Guest } from './qemu/guest.js';

/** Each test boots one or two guests; this bounds a hang, well above the 2-3 s a boot takes. */
const T = { timeout: 60_000 };
const PORT = 'org.ipx.0';

/** A FIFO pair in a directory of its own, closed and removed after the test. */
function newPipe(t: TestContext, name: string): QemuPipe {
  const tmp = tempDir('qemu-fifo');
  const pipe = QemuPipe.create(join(tmp.dir, name), { mode: 0o600 });
  t.after(() => {
    pipe.close();
    pipe.unlink();
    tmp.cleanup();
  });
  return pipe;
}

/** QEMU arguments: `serial` on ttyS1, `vport` on the virtio-serial port org.ipx.0. */
function deviceArgs(serial: QemuPipe, vport: QemuPipe): string[] {
  return [
    ...serial.chardevArgs('ser'), '-serial', 'chardev:ser',
    '-device', 'virtio-serial',
    ...vport.chardevArgs('vs'), '-device', `virtserialport,chardev=vs,name=${PORT}`,
  ];
}

/** /init commands: port_echo (with `flags`) on both ports; their exit statuses go to the console. */
function echoInit(flags = ''): string {
  return `
port_echo ${flags} /dev/ttyS1 & s=$!
port_echo ${flags} "$(virtio_port ${PORT})" & v=$!
wait $s; echo "ipx-test: serial exit $?"
wait $v; echo "ipx-test: virtio exit $?"`;
}

/** Connects the pipes to QEMU; fails at once (with the console) if QEMU exits first. */
async function connect(guest: Guest, ...pipes: QemuPipe[]): Promise<void> {
  const ac = new AbortController();
  const gone = guest.exited.then((e) => {
    throw new Error(`QEMU exited (code ${e.code}, signal ${e.signal}) before the pipes connected\n${guest.describe()}`);
  });
  try {
    await Promise.race([Promise.all(pipes.map((p) => p.connect({ timeout: 20_000, signal: ac.signal }))), gone]);
  } finally {
    ac.abort();
  }
}

/** Line-at-a-time reading of a pipe's lines(), with time limits that report the guest's console. */
function lineReader(guest: Guest, pipe: QemuPipe) {
  const it = pipe.lines()[Symbol.asyncIterator]();
  const next = async (what: string, ms: number): Promise<IteratorResult<string>> => {
    try {
      return await withTimeout(it.next(), ms, what);
    } catch (err) {
      throw new Error(`${(err as Error).message} on ${pipe.path}\n${guest.describe()}`);
    }
  };
  return {
    async line(what: string, ms = 10_000): Promise<string> {
      const r = await next(what, ms);
      if (r.done) throw new Error(`end of stream on ${pipe.path} while waiting for ${what}\n${guest.describe()}`);
      return r.value;
    },
    async end(ms = 5_000): Promise<void> {
      const r = await next('end of stream', ms);
      assert.equal(r.done, true, `expected the end of stream on ${pipe.path}, got the line ${JSON.stringify(r.value)}`);
    },
  };
}
type LineReader = ReturnType<typeof lineReader>;

const upper = (s: string): string => s.replace(/[a-z]/g, (c) => c.toUpperCase());
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Lines through one port: single lines, an empty one, UTF-8, several per write, round trips, ~20 KB pipelined. */
async function exchangeLines(t: TestContext, pipe: QemuPipe, lines: LineReader): Promise<void> {
  for (const text of ['hello, guest', '', 'mixed Case 123 !?', 'ünïcödé: only ASCII letters change']) {
    await pipe.writeLine(text);
    assert.equal(await lines.line(`the echo of ${JSON.stringify(text)}`), upper(text));
  }
  // Several lines in one write, and one line split over several writes.
  pipe.writable.write('one\ntwo\nthree\n');
  assert.deepEqual([await lines.line('ONE'), await lines.line('TWO'), await lines.line('THREE')], ['ONE', 'TWO', 'THREE']);
  pipe.writable.write('spl');
  await new Promise((r) => setTimeout(r, 20));
  await pipe.writeLine('it line');
  assert.equal(await lines.line('SPLIT LINE'), 'SPLIT LINE');

  const rtts: number[] = [];
  for (let i = 0; i < 50; i++) {
    const t0 = performance.now();
    await pipe.writeLine(`ping ${i}`);
    assert.equal(await lines.line(`pong ${i}`), `PING ${i}`);
    rtts.push(performance.now() - t0);
  }

  // 200 lines of 100 bytes written at once: all come back, in order, intact.
  const bulk = Array.from({ length: 200 }, (_, i) => `${String(i).padStart(4, '0')} ${randomBytes(48).toString('hex').slice(0, 95)}`);
  const t0 = performance.now();
  pipe.writable.write(bulk.map((l) => `${l}\n`).join(''));
  for (const [i, l] of bulk.entries()) assert.equal(await lines.line(`bulk line ${i}`), upper(l));
  const bulkMs = performance.now() - t0;
  t.diagnostic(`${pipe.path.split('/').pop()}: round trip median ${median(rtts).toFixed(2)} ms (50 lines), 20 KB each way in ${bulkMs.toFixed(0)} ms`);
}

test('a guest echoes lines uppercased on ttyS1 and on a virtio-serial port; its power-off ends both streams', T, async (t) => {
  if (!requireQemu(t)) return;
  const serial = newPipe(t, 'serial');
  const vport = newPipe(t, 'vport');
  const initrd = await buildInitramfs(t, { programs: ['port_echo'], init: echoInit() });
  const guest = bootGuest(t, { initrd, extraArgs: deviceArgs(serial, vport) });
  await connect(guest, serial, vport);
  const sl = lineReader(guest, serial);
  const vl = lineReader(guest, vport);
  // Nothing is sent before the guest says it is ready: early bytes on a tty
  // not yet in raw mode would be mangled or echoed.
  assert.equal(await sl.line('READY on ttyS1', 20_000), 'READY /dev/ttyS1');
  assert.match(await vl.line(`READY on ${PORT}`, 20_000), /^READY \/dev\/vport\d+p1$/);
  t.diagnostic(`QEMU start to both READY lines: ${(performance.now() - guest.startedAt).toFixed(0)} ms`);

  await t.test('ttyS1 (8250 serial, raw mode, no echo)', () => exchangeLines(t, serial, sl));
  await t.test(`virtio-serial port ${PORT}`, () => exchangeLines(t, vport, vl));

  await t.test('QUIT: the guest says BYE and powers off; lines() ends, `ended` settles, writes fail, QEMU exits 0', async () => {
    await Promise.all([serial.writeLine('QUIT'), vport.writeLine('QUIT')]);
    assert.equal(await sl.line('BYE on ttyS1'), 'BYE');
    assert.equal(await vl.line(`BYE on ${PORT}`), 'BYE');
    const bye = performance.now();
    await Promise.all([sl.end(10_000), vl.end(10_000)]);
    await withTimeout(Promise.all([serial.ended, vport.ended]), 1_000, '`ended` settles after the end of stream');
    const exit = await withTimeout(guest.exited, 10_000, 'QEMU exits after the power-off');
    assert.equal(exit.timedOut, false);
    assert.equal(exit.code, 0, `QEMU's exit status\n${guest.describe()}`);
    assert.match(guest.console(), /ipx-test: serial exit 0/);
    assert.match(guest.console(), /ipx-test: virtio exit 0/);
    await assert.rejects(serial.writeLine('too late'), 'a write after QEMU left fails');
    await assert.rejects(vport.writeLine('too late'), 'a write after QEMU left fails');
    t.diagnostic(`BYE to end of stream and QEMU exit: ${(performance.now() - bye).toFixed(0)} ms; whole boot ${exit.ms.toFixed(0)} ms`);
  });
});

test('QEMU killed with SIGKILL: both streams end at once; the same FIFOs serve the next QEMU after connect() again', T, async (t) => {
  if (!requireQemu(t)) return;
  const serial = newPipe(t, 'serial');
  const vport = newPipe(t, 'vport');
  const initrd = await buildInitramfs(t, { programs: ['port_echo'], init: echoInit() });

  // First QEMU: echo a line, then kill it mid-session.
  const first = bootGuest(t, { initrd, extraArgs: deviceArgs(serial, vport) });
  await connect(first, serial, vport);
  let sl = lineReader(first, serial);
  let vl = lineReader(first, vport);
  assert.equal(await sl.line('READY on ttyS1', 20_000), 'READY /dev/ttyS1');
  assert.match(await vl.line(`READY on ${PORT}`, 20_000), /^READY /);
  await serial.writeLine('before the kill');
  await vport.writeLine('before the kill');
  assert.equal(await sl.line('echo on ttyS1'), 'BEFORE THE KILL');
  assert.equal(await vl.line(`echo on ${PORT}`), 'BEFORE THE KILL');
  first.kill('SIGKILL');
  const killed = performance.now();
  await Promise.all([sl.end(2_000), vl.end(2_000)]);
  await withTimeout(Promise.all([serial.ended, vport.ended]), 1_000, '`ended` settles after QEMU was killed');
  const exit = await first.exited;
  assert.equal(exit.signal, 'SIGKILL');
  const endMs = performance.now() - killed;
  await assert.rejects(serial.writeLine('nobody there'));

  // Second QEMU on the same FIFOs (never recreated: QEMU may still hold an old one).
  const second = bootGuest(t, { initrd, extraArgs: deviceArgs(serial, vport) });
  await connect(second, serial, vport);
  sl = lineReader(second, serial);
  vl = lineReader(second, vport);
  assert.equal(await sl.line('READY on ttyS1 again', 20_000), 'READY /dev/ttyS1', 'nothing of the first session is left in the FIFOs');
  assert.match(await vl.line(`READY on ${PORT} again`, 20_000), /^READY /);
  await serial.writeLine('after the reconnect');
  await vport.writeLine('after the reconnect');
  assert.equal(await sl.line('echo on ttyS1'), 'AFTER THE RECONNECT');
  assert.equal(await vl.line(`echo on ${PORT}`), 'AFTER THE RECONNECT');
  await Promise.all([serial.writeLine('QUIT'), vport.writeLine('QUIT')]);
  assert.equal(await sl.line('BYE'), 'BYE');
  assert.equal(await vl.line('BYE'), 'BYE');
  await Promise.all([sl.end(10_000), vl.end(10_000)]);
  const exit2 = await withTimeout(second.exited, 10_000, 'the second QEMU exits after the power-off');
  assert.equal(exit2.code, 0, second.describe());
  t.diagnostic(`SIGKILL to end of both streams: ${endMs.toFixed(1)} ms; second boot ${exit2.ms.toFixed(0)} ms`);
});

test('frames (docs/framing.md) through both ports: binary payloads come back reversed, and the power-off is a clean end', T, async (t) => {
  if (!requireQemu(t)) return;
  const serial = newPipe(t, 'serial');
  const vport = newPipe(t, 'vport');
  const initrd = await buildInitramfs(t, { programs: ['port_echo'], init: echoInit('--frames') });
  const guest = bootGuest(t, { initrd, extraArgs: deviceArgs(serial, vport) });
  await connect(guest, serial, vport);

  const check = async (pipe: QemuPipe, big: number): Promise<void> => {
    const frames = pipe.frames();
    const read = async (what: string): Promise<Buffer> => {
      const f = await withTimeout(frames.read(), 20_000, `${what} on ${pipe.path}`, () => console.error(guest.describe()));
      assert.ok(f, `end of stream on ${pipe.path} while waiting for ${what}\n${guest.describe()}`);
      return f;
    };
    assert.match((await read('READY')).toString(), /^READY \/dev\/(ttyS1|vport\d+p1)$/);
    // Every byte value (a tty in raw mode passes all 8 bits: no XON/XOFF, no CR/LF mapping), empty, and a larger one.
    const payloads = [Buffer.from('hello'), Buffer.alloc(0), Buffer.from(Array.from({ length: 256 }, (_, i) => i)), randomBytes(big)];
    const t0 = performance.now();
    for (const p of payloads) await pipe.writeFrame(p);
    for (const [i, p] of payloads.entries()) assert.deepEqual(await read(`frame ${i}`), Buffer.from(p).reverse(), `frame ${i} (${p.length} bytes)`);
    const ms = performance.now() - t0;
    await pipe.writeFrame('QUIT');
    assert.equal((await read('BYE')).toString(), 'BYE');
    assert.equal(await withTimeout(frames.read(), 10_000, `the end of stream on ${pipe.path}`), null, 'a clean end at a frame boundary');
    t.diagnostic(`${pipe.path.split('/').pop()}: 4 frames (${big + 261} bytes) each way in ${ms.toFixed(0)} ms`);
  };
  // The guest powers off once both programs have quit, so both run at once.
  await Promise.all([check(serial, 16 * 1024), check(vport, 256 * 1024)]);
  const exit = await withTimeout(guest.exited, 10_000, 'QEMU exits after the power-off');
  assert.equal(exit.code, 0, guest.describe());
  assert.match(guest.console(), /ipx-test: serial exit 0/);
  assert.match(guest.console(), /ipx-test: virtio exit 0/);
});

test('the initramfs base is cached in build/qemu and reused', T, async (t) => {
  if (!requireQemu(t)) return;
  const t0 = performance.now();
  const a = await buildInitramfs(t, { init: 'true' });
  const b = await buildInitramfs(t, { init: 'true', programs: ['port_echo'] });
  const ms = performance.now() - t0;
  assert.notEqual(a, b);
  assert.ok(statSync(b).size > statSync(a).size, 'the program is added to the cached base');
  // Both were built from the cache the earlier tests made (or one of them made it): well under a second.
  assert.ok(ms < 2_000, `two initramfs builds took ${ms.toFixed(0)} ms`);
});
