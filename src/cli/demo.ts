/**
 * `interprocess demo [mechanism]`: the classic IPC tutorial, walked through
 * between real processes. The parent is this process; each child is this same
 * CLI started again with the hidden `demo-peer` command, so both sides are
 * real, separate processes using the library. Nothing is left behind.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  FrameReader,
  mkfifo,
  openFifoWriter,
  posix,
  spawnWithPipes,
  sysv,
  writeFrame,
} from '../index.js';
import { say, heading, type Out } from './output.js';

const cliPath = fileURLToPath(new URL('./main.js', import.meta.url));

export const mechanisms = ['pipe', 'fifo', 'shm'] as const;
export type Mechanism = (typeof mechanisms)[number];

const parent = (out: Out, text: string): void => say(out, `parent ${process.pid}`, text);

/**
 * Removals still owed, run by the walkthroughs' finally blocks, or on Ctrl-C
 * (a signal ends the process without running finally blocks).
 */
const owed = new Set<() => void>();
function owe(undo: () => void): () => void {
  owed.add(undo);
  return () => {
    owed.delete(undo);
    undo();
  };
}
function onSignal(signal: NodeJS.Signals): void {
  for (const undo of owed) {
    try { undo(); } catch { /* best effort on the way out */ }
  }
  process.exit(signal === 'SIGINT' ? 130 : 143);
}

function exited(child: ChildProcess): Promise<void> {
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (code, signal) =>
      code === 0 ? resolve() : reject(new Error(`child ${child.pid} exited with ${signal ?? `code ${code}`}`)),
    );
  });
}

function peer(role: string, args: string[], extra: { pipes?: Array<'toChild' | 'fromChild'> } = {}) {
  const argv = [cliPath, 'demo-peer', role, ...args];
  if (extra.pipes) return spawnWithPipes(process.execPath, argv, { pipes: extra.pipes, stdio: ['ignore', 'inherit', 'inherit'] });
  return { child: spawn(process.execPath, argv, { stdio: ['ignore', 'inherit', 'inherit'] }), pipes: [], childFds: [] };
}

async function pipeDemo(out: Out): Promise<void> {
  heading(out, 'Pipes: pipe() + fork(), then framed messages');
  parent(out, 'creating two pipes and spawning a child that inherits them as descriptors 3 and 4');
  const { child, pipes, childFds } = peer('pipe', [], { pipes: ['toChild', 'fromChild'] });
  const [toChild, fromChild] = pipes as [import('node:net').Socket, import('node:net').Socket];
  parent(out, `child ${child.pid} reads descriptor ${childFds[0]} and writes descriptor ${childFds[1]}`);
  const replies = new FrameReader(fromChild);
  for (const text of ['Hello, IPC', 'a second message', 'and a third']) {
    parent(out, `send frame: "${text}"`);
    await writeFrame(toChild, text);
    const reply = await replies.read();
    parent(out, `reply: "${reply?.toString()}"`);
  }
  toChild.end();
  parent(out, 'closed the write end: the child sees end-of-file and exits');
  await exited(child);
  replies.close();
}

async function fifoDemo(out: Out): Promise<void> {
  heading(out, 'FIFOs: mkfifo(), then unrelated processes open it by path');
  const dir = mkdtempSync(join(tmpdir(), 'interprocess-demo-'));
  const removeDir = owe(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'my_fifo');
  try {
    await mkfifo(path, 0o600);
    parent(out, `mkfifo ${path} (mode 0600)`);
    const { child } = peer('fifo', [path]);
    parent(out, 'opening for writing: waits, without blocking the event loop, until a reader opens it');
    const writer = await openFifoWriter(path, { timeout: 10_000 });
    parent(out, 'a reader is there; writing "Hello, FIFO" and closing');
    await new Promise<void>((resolve, reject) => writer.end('Hello, FIFO', () => resolve()).on('error', reject));
    await exited(child);
  } finally {
    removeDir();
    parent(out, `removed ${path}`);
  }
}

async function shmDemo(out: Out): Promise<void> {
  heading(out, 'POSIX shared memory: shm_open() + mmap(), as a SharedArrayBuffer');
  const name = `/interprocess-demo-${process.pid}`;
  const shm = posix.SharedMemory.create(name, { size: 4096 });
  const unlinkShm = owe(() => posix.SharedMemory.unlink(name));
  try {
    parent(out, `created ${name} (4096 bytes); writing "Hello, Shared Memory"`);
    const bytes = new Uint8Array(shm.buffer);
    const flag = new Int32Array(shm.buffer, 0, 1);
    bytes.set(Buffer.from('Hello, Shared Memory\0'), 4);
    const { child } = peer('shm', [name]);
    // Atomics.notify cannot wake a waiter in another process (V8 keeps its
    // wait queues in-process), so the child's answer is awaited through its exit.
    parent(out, 'waiting for the child to answer in the same memory');
    await exited(child);
    if (Atomics.load(flag, 0) !== 1) throw new Error('the child did not answer');
    const reply = Buffer.from(shm.buffer, 4, 64);
    parent(out, `read back: "${reply.subarray(0, reply.indexOf(0)).toString()}" (flag set with Atomics.store: ${Atomics.load(flag, 0)})`);
  } finally {
    shm.close();
    unlinkShm();
    parent(out, `unlinked ${name}`);
  }

  heading(out, 'System V shared memory: ftok() + shmget() + shmat()');
  const dir = mkdtempSync(join(tmpdir(), 'interprocess-demo-'));
  const removeKeyDir = owe(() => rmSync(dir, { recursive: true, force: true }));
  const keyFile = join(dir, 'shmfile');
  writeFileSync(keyFile, '');
  const key = sysv.ftok(keyFile, 65);
  const seg = sysv.SharedMemory.create({ key, size: 1024, mode: 0o600 });
  const removeSeg = owe(() => seg.remove());
  try {
    parent(out, `ftok("${keyFile}", 65) = 0x${(key >>> 0).toString(16)}; shmget -> id ${seg.id}`);
    Buffer.from(seg.buffer).write('Hello, Shared Memory\0');
    parent(out, 'wrote "Hello, Shared Memory"; the child attaches by the same key');
    const { child } = peer('sysv-shm', [keyFile]);
    await exited(child);
    const st = seg.stat();
    parent(out, `shmid_ds: size ${st.size}, creator pid ${st.cpid}, last attach/detach by pid ${st.lpid}, attached ${st.nattch}x`);
  } finally {
    removeSeg();
    seg.close();
    removeKeyDir();
    parent(out, `removed segment ${seg.id} (IPC_RMID)`);
  }
}

const walkthroughs: Record<Mechanism, (out: Out) => Promise<void>> = {
  pipe: pipeDemo,
  fifo: fifoDemo,
  shm: shmDemo,
};

export async function runDemo(which: Mechanism[] | undefined, out: Out): Promise<void> {
  process.once('SIGINT', onSignal).once('SIGTERM', onSignal);
  for (const m of which?.length ? which : mechanisms) await walkthroughs[m](out);
  out.write('\nDone: every object the demo created has been removed.\n');
}
