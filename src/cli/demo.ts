/**
 * `interprocess demo [mechanism]`: the classic IPC tutorial, walked through
 * between real processes. The parent is this process; each child is this same
 * CLI started again with the hidden `demo-peer` command, so both sides are
 * real, separate processes using the library. Nothing is left behind.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  Channel,
  FrameReader,
  Mutex,
  PeerGoneError,
  mkfifo,
  openFifoWriter,
  posix,
  spawnWithPipes,
  sysv,
  writeFrame,
} from '../index.js';
import { waitForLine } from './lines.js';
import { pollUntil } from '../internal/wait.js';
import { say, heading, type Out } from './output.js';
import { qemuDemo } from './demo-qemu.js';

const cliPath = fileURLToPath(new URL('./main.js', import.meta.url));

export const mechanisms = ['pipe', 'fifo', 'shm', 'msg', 'sem', 'mutex', 'channel', 'qemu'] as const;
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
  leave(signal === 'SIGINT' ? 130 : 143);
}
/** Ends the process now, after the removals still owed (exit skips the walkthroughs' finally blocks). */
function leave(code: number): never {
  for (const child of peers) child.kill('SIGKILL');
  for (const undo of owed) {
    try { undo(); } catch { /* best effort on the way out */ }
  }
  process.exit(code);
}
/** Nobody reads the demo any more (`interprocess demo | head`): stop quietly, as other tools do, leaving nothing behind. */
function onStdoutError(err: NodeJS.ErrnoException): void {
  if (err.code === 'EPIPE') leave(0);
  throw err;
}

function exited(child: ChildProcess): Promise<void> {
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (code, signal) =>
      code === 0 ? resolve() : reject(new Error(`child ${child.pid} exited with ${signal ?? `code ${code}`}`)),
    );
  });
}

/** The peers still running, stopped by leave() before it removes what they use. */
const peers = new Set<ChildProcess>();

function peer(role: string, args: string[], extra: { pipes?: Array<'toChild' | 'fromChild'>; watch?: boolean } = {}) {
  const argv = [cliPath, 'demo-peer', role, ...args];
  const tracked = <T extends { child: ChildProcess }>(p: T): T => {
    peers.add(p.child);
    p.child.once('exit', () => peers.delete(p.child));
    return p;
  };
  if (extra.pipes) return tracked(spawnWithPipes(process.execPath, argv, { pipes: extra.pipes, stdio: ['ignore', 'inherit', 'inherit'] }));
  // watch: the child's output is read here (and passed on) to follow its progress.
  const child = spawn(process.execPath, argv, { stdio: ['ignore', extra.watch ? 'pipe' : 'inherit', 'inherit'] });
  if (extra.watch) child.stdout!.on('data', (d: Buffer) => process.stdout.write(d));
  return tracked({ child, pipes: [], childFds: [] });
}

function keyFileIn(dir: string, name: string): string {
  const file = join(dir, name);
  writeFileSync(file, '');
  return file;
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

async function msgDemo(out: Out): Promise<void> {
  heading(out, 'System V message queues: ftok() + msgget(), typed messages');
  const dir = mkdtempSync(join(tmpdir(), 'interprocess-demo-'));
  const removeDir = owe(() => rmSync(dir, { recursive: true, force: true }));
  try {
    const keyFile = keyFileIn(dir, 'progfile');
    const q = sysv.MessageQueue.create({ key: { path: keyFile, projId: 65 }, mode: 0o600 });
    const removeQueue = owe(() => q.remove());
    try {
      parent(out, `ftok("${keyFile}", 65) -> msgget -> queue ${q.id}`);
      const { child } = peer('sysv-msg', [keyFile]);
      parent(out, 'msgsnd type 1: "Hello, Message Queue"');
      await q.send(1, 'Hello, Message Queue');
      parent(out, 'msgrcv type 2: waiting on a waiter thread, the event loop stays free');
      const reply = await q.receive({ type: 2, timeout: 10_000 });
      parent(out, `got type ${reply.type}: "${reply.data.toString()}"`);
      await exited(child);
      const st = q.stat();
      parent(out, `msqid_ds: ${st.qnum} messages left, last sender pid ${st.lspid}, last receiver pid ${st.lrpid}`);
    } finally {
      removeQueue();
      parent(out, `removed queue ${q.id} (IPC_RMID)`);
    }
  } finally {
    removeDir();
  }

  heading(out, 'POSIX message queues: mq_open(), priorities');
  const name = `/interprocess-demo-mq-${process.pid}`;
  const mq = posix.MessageQueue.create(name, { maxMessages: 8, messageSize: 256 });
  const unlinkMq = owe(() => posix.MessageQueue.unlink(name));
  try {
    for (const [text, prio] of [['routine', 1], ['urgent', 9], ['normal', 5]] as const) {
      await mq.send(text, prio);
      parent(out, `mq_send "${text}" with priority ${prio}`);
    }
    const { child } = peer('posix-mq', [name]);
    await exited(child);
  } finally {
    mq.close();
    unlinkMq();
    parent(out, `unlinked ${name}`);
  }
}

async function semDemo(out: Out): Promise<void> {
  heading(out, 'System V semaphores: two processes take turns in a critical section (SEM_UNDO)');
  const dir = mkdtempSync(join(tmpdir(), 'interprocess-demo-'));
  const removeDir = owe(() => rmSync(dir, { recursive: true, force: true }));
  try {
    const keyFile = keyFileIn(dir, 'semfile');
    const set = sysv.SemaphoreSet.create({ key: { path: keyFile, projId: 65 }, count: 1, value: 1, mode: 0o600 });
    const removeSet = owe(() => set.remove());
    try {
      await set.wait(0, { undo: true });
      parent(out, 'entering critical section');
      const { child } = peer('sysv-sem', [keyFile, 'turn'], { watch: true });
      await waitForLine(child, /waiting to enter/);
      // The child says so just before its semop blocks: wait until the kernel counts it.
      const waiting = await pollUntil(() => set.waiters(0).forIncrease || undefined, { timeout: 10_000 }, () => new Error('the child never waited'));
      parent(out, `the child waits: semctl(GETNCNT) = ${waiting}`);
      parent(out, 'leaving critical section');
      set.post(0, { undo: true });
      await exited(child);

      heading(out, 'SEM_UNDO: a process killed inside the critical section gives the semaphore back');
      const holder = peer('sysv-sem', [keyFile, 'hold'], { watch: true }).child;
      await waitForLine(holder, /holding the semaphore/);
      parent(out, `value now ${set.get(0)}; killing child ${holder.pid} with SIGKILL while it holds it`);
      holder.kill('SIGKILL');
      await once(holder, 'exit');
      await set.wait(0, { undo: true, timeout: 10_000 });
      parent(out, 'entered: the kernel undid the dead child\'s operation');
      set.post(0, { undo: true });
    } finally {
      removeSet();
      parent(out, `removed semaphore set ${set.id}`);
    }
  } finally {
    removeDir();
  }

  heading(out, 'POSIX named semaphores: ping-pong between two processes');
  const ping = `/interprocess-demo-ping-${process.pid}`;
  const pong = `/interprocess-demo-pong-${process.pid}`;
  const a = posix.Semaphore.create(ping, { value: 0 });
  const b = posix.Semaphore.create(pong, { value: 0 });
  const unlinkBoth = owe(() => { posix.Semaphore.unlink(ping); posix.Semaphore.unlink(pong); });
  try {
    const { child } = peer('posix-sem', [ping, pong]);
    for (let round = 1; round <= 3; round++) {
      parent(out, `ping ${round} (sem_post ${ping})`);
      a.post();
      await b.wait({ timeout: 10_000 });
    }
    await exited(child);
  } finally {
    a.close();
    b.close();
    unlinkBoth();
    parent(out, `unlinked ${ping} and ${pong}`);
  }
}

async function mutexDemo(out: Out): Promise<void> {
  heading(out, 'Robust mutex: two processes take turns in a critical section');
  const name = `/interprocess-demo-mutex-${process.pid}`;
  const m = Mutex.create(name, { mode: 0o600 });
  const unlinkMutex = owe(() => Mutex.unlink(name));
  try {
    parent(out, `created ${name}: a process-shared, robust pthread mutex in shared memory`);
    await m.lock();
    parent(out, 'entering critical section');
    const { child } = peer('mutex', [name, 'turn'], { watch: true });
    await waitForLine(child, /waiting for the mutex/);
    parent(out, 'leaving critical section');
    m.unlock();
    await waitForLine(child, /leaving critical section/);
    await m.lock();
    parent(out, 'entering critical section again, after the child left');
    m.unlock();
    await exited(child);

    heading(out, 'Crash recovery: the holder is killed; the next locker is told and repairs');
    const holder = peer('mutex', [name, 'hold'], { watch: true }).child;
    await waitForLine(holder, /holding the mutex/);
    parent(out, `tryLock(): ${m.tryLock()}; killing child ${holder.pid} with SIGKILL while it holds the mutex`);
    holder.kill('SIGKILL');
    await once(holder, 'exit');
    const result = await m.lock({ timeout: 10_000 });
    parent(out, `lock() resolved '${result}': the kernel marked the mutex when its owner died`);
    parent(out, 'repairing the protected state, then markConsistent()');
    m.markConsistent();
    m.unlock();
    parent(out, `the mutex works on: tryLock() = '${m.tryLock()}'`);
    m.unlock();
  } finally {
    m.close();
    unlinkMutex();
    parent(out, `unlinked ${name}`);
  }
}

async function channelDemo(out: Out): Promise<void> {
  heading(out, 'Channel: messages through a ring buffer in shared memory, no system call per message');
  const stamp = `${process.pid}`;
  const [reqName, repName] = [`/interprocess-demo-requests-${stamp}`, `/interprocess-demo-replies-${stamp}`];
  const requests = Channel.create(reqName, { capacity: 1 << 16 });
  const replies = Channel.create(repName, { capacity: 1 << 16 });
  const unlinkBoth = owe(() => {
    for (const n of [reqName, repName]) {
      try { Channel.unlink(n); } catch { /* gone already */ }
    }
  });
  try {
    parent(out, `created ${reqName} and ${repName} (64 KiB rings; messages up to ${requests.maxMessage} bytes)`);
    const { child } = peer('channel', [reqName, repName], { watch: true });
    for (const text of ['Hello, Channel', 'messages keep their order and their bounds']) {
      await requests.send(text);
      parent(out, `sent: ${text}`);
      parent(out, `reply: ${(await replies.receive({ timeout: 10_000 })).toString()}`);
    }
    const text = 'written in place (zero-copy)';
    const view = await requests.reserve(Buffer.byteLength(text));
    view.set(Buffer.from(text));
    requests.commit();
    parent(out, `reserved ${view.length} bytes in the ring, wrote them there, committed`);
    parent(out, `reply: ${(await replies.receive({ timeout: 10_000 })).toString()}`);

    heading(out, 'Round trips: both sides spin briefly, then sleep on a futex');
    await requests.send('echo');
    await waitForLine(child, /echoing/);
    const times: number[] = [];
    const ping = Buffer.alloc(64);
    for (let i = 0; i < 20_000; i++) {
      const t0 = performance.now();
      requests.sendSync(ping);
      replies.receiveSync({ timeout: 10_000 });
      times.push(performance.now() - t0);
    }
    requests.sendSync('stop');
    times.sort((a, b) => a - b);
    parent(out, `20000 round trips of 64 bytes: median ${(times[10_000]! * 1000).toFixed(1)} us (npm run bench compares with sockets)`);

    heading(out, 'Peer death: the sender is killed; the waiting receiver is told instead of hanging');
    parent(out, `last message from the child: ${(await replies.receive({ timeout: 10_000 })).toString()}`);
    parent(out, `killing child ${child.pid} with SIGKILL while this process waits in receive()`);
    const waiting = replies.receive({ timeout: 10_000 });
    child.kill('SIGKILL');
    try {
      await waiting;
      throw new Error('receive() resolved after the sender died');
    } catch (err) {
      if (!(err instanceof PeerGoneError)) throw err;
      parent(out, `receive() rejected: ${err.message}`);
    }
  } finally {
    requests.close();
    replies.close();
    unlinkBoth();
    parent(out, `unlinked ${reqName} and ${repName}`);
  }
}

const walkthroughs: Record<Mechanism, (out: Out) => Promise<void>> = {
  pipe: pipeDemo,
  fifo: fifoDemo,
  shm: shmDemo,
  msg: msgDemo,
  sem: semDemo,
  mutex: mutexDemo,
  channel: channelDemo,
  qemu: (out) => qemuDemo(out, owe),
};

export async function runDemo(which: Mechanism[] | undefined, out: Out): Promise<void> {
  process.once('SIGINT', onSignal).once('SIGTERM', onSignal);
  process.stdout.on('error', onStdoutError);
  // All walkthroughs by default; the QEMU one where QEMU and a guest kernel are
  // installed (otherwise it says, in one line, why it is skipped and how to get it).
  for (const m of which?.length ? which : mechanisms) await walkthroughs[m](out);
  out.write('\nDone: every object the demo created has been removed.\n');
}
