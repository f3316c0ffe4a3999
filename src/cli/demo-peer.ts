/**
 * The child side of each demo walkthrough (`interprocess demo-peer ROLE ...`),
 * started by demo.ts as a separate process.
 */
import {
  FrameReader,
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

export async function runPeer(role: string, args: string[], out: Out): Promise<void> {
  switch (role) {
    case 'pipe': return pipePeer(out);
    case 'fifo': return fifoPeer(out, args[0]!);
    case 'shm': return shmPeer(out, args[0]!);
    case 'sysv-shm': return sysvShmPeer(out, args[0]!);
    default: throw new Error(`unknown demo peer role: ${role}`);
  }
}
