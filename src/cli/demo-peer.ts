/**
 * The child side of each demo walkthrough (`interprocess demo-peer ROLE ...`),
 * started by demo.ts as a separate process.
 */
import {
  Channel,
  FrameReader,
  Mutex,
  openFifoReader,
  pipeReader,
  pipeWriter,
  posix,
  sysv,
  writeFrame,
} from '../index.js';
import { say, type Out } from './output.js';

function child(out: Out, text: string): void {
  say(out, `child ${process.pid}`, text);
}

async function pipePeer(out: Out): Promise<void> {
  const requests = new FrameReader(pipeReader(3));
  const replies = pipeWriter(4);
  for await (const frame of requests) {
    child(out, `Received: ${frame.toString()}`);
    await writeFrame(replies, frame.toString().toUpperCase());
  }
  child(out, 'end of file on descriptor 3: exiting');
  replies.end();
}

async function fifoPeer(out: Out, path: string): Promise<void> {
  child(out, `opening ${path} for reading (returns at once)`);
  const reader = openFifoReader(path);
  let text = '';
  for await (const chunk of reader) text += chunk;
  child(out, `Received: ${text}`);
}

function shmPeer(out: Out, name: string): void {
  const shm = posix.SharedMemory.open(name);
  const msg = Buffer.from(shm.buffer, 4, 64);
  child(out, `opened ${name}; Received: ${msg.subarray(0, msg.indexOf(0)).toString()}`);
  Buffer.from(shm.buffer).write('Hello back from the child\0', 4);
  const flag = new Int32Array(shm.buffer, 0, 1);
  Atomics.store(flag, 0, 1);
  child(out, 'wrote a reply and set the flag word with Atomics.store');
  shm.close();
}

function sysvShmPeer(out: Out, keyFile: string): void {
  const seg = sysv.SharedMemory.open({ path: keyFile, projId: 65 });
  const text = Buffer.from(seg.buffer, 0, 64);
  child(out, `attached segment ${seg.id} by key; Received: ${text.subarray(0, text.indexOf(0)).toString()}`);
  seg.close();
}

async function sysvMsgPeer(out: Out, keyFile: string): Promise<void> {
  const q = sysv.MessageQueue.open({ path: keyFile, projId: 65 });
  const m = await q.receive({ type: 1, timeout: 10_000 });
  child(out, `msgrcv type 1 from queue ${q.id}; Received: ${m.data.toString()}`);
  await q.send(2, 'Hello back, type 2');
  child(out, 'msgsnd type 2: "Hello back, type 2"');
  q.close();
}

async function posixMqPeer(out: Out, name: string): Promise<void> {
  const mq = posix.MessageQueue.open(name, { access: 'read' });
  for (let i = 0; i < 3; i++) {
    const m = await mq.receive({ timeout: 10_000 });
    child(out, `mq_receive: "${m.data.toString()}" (priority ${m.priority})`);
  }
  mq.close();
}

async function sysvSemPeer(out: Out, keyFile: string, mode: string): Promise<void> {
  const set = sysv.SemaphoreSet.open({ path: keyFile, projId: 65 });
  if (mode === 'turn') {
    child(out, 'waiting to enter the critical section');
    await set.wait(0, { undo: true, timeout: 10_000 });
    child(out, 'entering critical section');
    child(out, 'leaving critical section');
    set.post(0, { undo: true });
  } else {
    await set.wait(0, { undo: true, timeout: 10_000 });
    child(out, 'holding the semaphore (SEM_UNDO) and never letting go');
    await new Promise(() => setInterval(() => {}, 1000));
  }
}

async function posixSemPeer(out: Out, ping: string, pong: string): Promise<void> {
  const a = posix.Semaphore.open(ping);
  const b = posix.Semaphore.open(pong);
  for (let round = 1; round <= 3; round++) {
    await a.wait({ timeout: 10_000 });
    child(out, `pong ${round} (sem_post ${pong})`);
    b.post();
  }
  a.close();
  b.close();
}

async function mutexPeer(out: Out, name: string, mode: string): Promise<void> {
  const m = Mutex.open(name);
  if (mode === 'turn') {
    child(out, 'waiting for the mutex (lock() does not block the event loop)');
    await m.lock({ timeout: 10_000 });
    child(out, 'entering critical section');
    child(out, 'leaving critical section');
    m.unlock();
    m.close();
  } else {
    m.lockSync();
    child(out, 'holding the mutex and never letting go');
    await new Promise(() => setInterval(() => {}, 1000));
  }
}

async function channelPeer(out: Out, reqName: string, repName: string): Promise<void> {
  const requests = Channel.open(reqName);
  const replies = Channel.open(repName);
  for (;;) {
    const text = (await requests.receive({ timeout: 10_000 })).toString();
    if (text === 'echo') break;
    child(out, `Received: ${text}`);
    await replies.send(text.toUpperCase());
  }
  child(out, 'echoing every message back until "stop"');
  for (;;) {
    const m = requests.receiveSync({ timeout: 10_000 });
    if (m.length === 4 && m.toString() === 'stop') break;
    replies.sendSync(m);
  }
  await replies.send('last words');
  await new Promise(() => setInterval(() => {}, 1000)); // until killed
}

export async function runPeer(role: string, args: string[], out: Out): Promise<void> {
  // The demo's reader went away (`interprocess demo | head`): the parent removes what is owed; a peer just ends.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0);
    throw err;
  });
  switch (role) {
    case 'pipe': return pipePeer(out);
    case 'fifo': return fifoPeer(out, args[0]!);
    case 'shm': return shmPeer(out, args[0]!);
    case 'sysv-shm': return sysvShmPeer(out, args[0]!);
    case 'sysv-msg': return sysvMsgPeer(out, args[0]!);
    case 'posix-mq': return posixMqPeer(out, args[0]!);
    case 'sysv-sem': return sysvSemPeer(out, args[0]!, args[1]!);
    case 'posix-sem': return posixSemPeer(out, args[0]!, args[1]!);
    case 'mutex': return mutexPeer(out, args[0]!, args[1]!);
    case 'channel': return channelPeer(out, args[0]!, args[1]!);
    default: throw new Error(`unknown demo peer role: ${role}`);
  }
}
