// The `interprocess` command, driven as a user would: spawned, output read.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { root, run, shmEntries, sysvIds, sysvShmIds } from './helpers.js';

const cli = join(root, 'dist', 'cli', 'main.js');
const demoTempDirs = (): string[] => readdirSync(tmpdir()).filter((f) => f.startsWith('interprocess-demo-'));

test('demo walks through pipes, FIFOs and shared memory between real processes and leaves nothing behind', async () => {
  const segmentsBefore = sysvShmIds();
  const queuesBefore = sysvIds('msg');
  const setsBefore = sysvIds('sem');
  const dirsBefore = demoTempDirs();
  const r = await run(process.execPath, [cli, 'demo']);
  assert.equal(r.code, 0, r.stderr);
  const out = r.stdout;
  const pid = (who: 'parent' | 'child', text: RegExp): Set<string> =>
    new Set([...out.matchAll(new RegExp(`^\\[${who} (\\d+)\\] ${text.source}`, 'gm'))].map((m) => m[1]!));

  // Pipes: three framed round trips with a child process, then EOF.
  assert.match(out, /^\[child \d+\] Received: Hello, IPC$/m);
  assert.match(out, /^\[parent \d+\] reply: "HELLO, IPC"$/m);
  assert.match(out, /^\[parent \d+\] reply: "AND A THIRD"$/m);
  assert.match(out, /^\[child \d+\] end of file on descriptor 3: exiting$/m);
  // FIFO and shared memory: the message crossed into another process.
  assert.match(out, /^\[child \d+\] Received: Hello, FIFO$/m);
  assert.match(out, /^\[child \d+\] opened \/interprocess-demo-\d+; Received: Hello, Shared Memory$/m);
  assert.match(out, /^\[parent \d+\] read back: "Hello back from the child"/m);
  assert.match(out, /^\[child \d+\] attached segment \d+ by key; Received: Hello, Shared Memory$/m);
  // Message queues: typed System V messages both ways; POSIX delivery in priority order.
  assert.match(out, /^\[child \d+\] msgrcv type 1 from queue \d+; Received: Hello, Message Queue$/m);
  assert.match(out, /^\[parent \d+\] got type 2: "Hello back, type 2"$/m);
  assert.match(out, /mq_receive: "urgent" \(priority 9\)\n.*mq_receive: "normal" \(priority 5\)\n.*mq_receive: "routine" \(priority 1\)/);
  // Semaphores: strict turns, SEM_UNDO recovery after SIGKILL, ping-pong.
  assert.match(out, /leaving critical section\n\[child \d+\] entering critical section\n\[child \d+\] leaving critical section/);
  assert.match(out, /semctl\(GETNCNT\) = 1$/m);
  assert.match(out, /^\[parent \d+\] entered: the kernel undid the dead child's operation$/m);
  assert.match(out, /pong 3 \(sem_post/);
  // Mutex: turns, then the owner-died path after SIGKILL, repaired.
  assert.match(out, /\[parent \d+\] leaving critical section\n\[child \d+\] entering critical section\n\[child \d+\] leaving critical section\n\[parent \d+\] entering critical section again/);
  assert.match(out, /^\[parent \d+\] tryLock\(\): busy; killing child \d+ with SIGKILL/m);
  assert.match(out, /^\[parent \d+\] lock\(\) resolved 'owner-died'/m);
  assert.match(out, /^\[parent \d+\] the mutex works on: tryLock\(\) = 'locked'$/m);

  // Every child is a different process from the parent, and from each other.
  const parents = pid('parent', /.*/);
  const children = pid('child', /.*/);
  assert.equal(parents.size, 1);
  assert.ok(children.size >= 11, `expected at least 11 child processes, saw ${children.size}`);
  for (const c of children) assert.ok(!parents.has(c));

  assert.deepEqual(shmEntries('/interprocess-demo-'), []);
  assert.deepEqual(shmEntries('/sem.interprocess-demo-'), [], 'no POSIX semaphore left');
  assert.deepEqual([...sysvShmIds()].filter((id) => !segmentsBefore.has(id)), []);
  assert.deepEqual([...sysvIds('msg')].filter((id) => !queuesBefore.has(id)), [], 'no System V queue left');
  assert.deepEqual([...sysvIds('sem')].filter((id) => !setsBefore.has(id)), [], 'no System V semaphore set left');
  assert.deepEqual(demoTempDirs().filter((d) => !dirsBefore.includes(d)), []);
});

test('demo runs a single walkthrough by name', async () => {
  const r = await run(process.execPath, [cli, 'demo', 'fifo']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /FIFOs/);
  assert.doesNotMatch(r.stdout, /Pipes:|shared memory/);
});

test('an unknown mechanism is rejected with a clear message and a non-zero exit', async () => {
  const r = await run(process.execPath, [cli, 'demo', 'carrier-pigeon']);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /carrier-pigeon/);
  assert.match(r.stderr, /pipe, fifo, shm, msg, sem, mutex/);
});

test('--help lists the demo command, --version prints the package version', async () => {
  const help = await run(process.execPath, [cli, '--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /^  demo \[mechanism\.\.\.\] +walk through/m);
  assert.doesNotMatch(help.stdout, /demo-peer/);
  const version = await run(process.execPath, [cli, '--version']);
  assert.match(version.stdout.trim(), /^\d+\.\d+\.\d+$/);
});

test('Ctrl-C during the demo removes what it created', async () => {
  const { spawn } = await import('node:child_process');
  const { waitForLine, collect } = await import('./helpers.js');
  const child = spawn(process.execPath, [cli, 'demo', 'shm'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const done = collect(child);
  const line = await waitForLine(child, /created \/interprocess-demo-\d+/);
  const name = line.match(/\/interprocess-demo-\d+/)![0];
  child.kill('SIGINT');
  const r = await done;
  assert.equal(r.code, 130, `exit ${r.code} ${r.signal}\n${r.stderr}`);
  assert.deepEqual(shmEntries(name), [], `${name} was left in /dev/shm`);
});

test('a reader that goes away (demo | head) ends the demo quietly: exit 0, no stack trace, peers stopped, nothing left', async () => {
  const { spawn } = await import('node:child_process');
  const { waitForLine, until } = await import('./helpers.js');
  const segmentsBefore = sysvShmIds();
  const queuesBefore = sysvIds('msg');
  const setsBefore = sysvIds('sem');
  const dirsBefore = demoTempDirs();
  const child = spawn(process.execPath, [cli, 'demo', 'shm', 'msg', 'sem'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exit = new Promise<number | null>((resolve) => child.on('close', resolve));
  // Read until the System V part has objects to remove, then hang up, as head does.
  const line = await waitForLine(child, /created \/interprocess-demo-\d+/);
  const name = line.match(/\/interprocess-demo-\d+/)![0];
  child.stdout.destroy();
  const code = await exit;
  assert.equal(code, 0, stderr);
  assert.equal(stderr, '', 'nothing on stderr');
  await until(() => !readdirSync('/proc').some((p) => /^\d+$/.test(p) && readFileSafe(`/proc/${p}/cmdline`).includes('demo-peer')), 'the peers are gone', 5000);
  assert.deepEqual(shmEntries(name), []);
  assert.deepEqual([...sysvShmIds()].filter((id) => !segmentsBefore.has(id)), []);
  assert.deepEqual([...sysvIds('msg')].filter((id) => !queuesBefore.has(id)), []);
  assert.deepEqual([...sysvIds('sem')].filter((id) => !setsBefore.has(id)), []);
  assert.deepEqual(demoTempDirs().filter((d) => !dirsBefore.includes(d)), []);
});

function readFileSafe(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}
