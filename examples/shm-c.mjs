// Shared memory between Node and C: a POSIX object and a System V segment,
// each written by Node, then read and updated by examples/c/shm_peer.c.
import { posix, sysv } from 'interprocess';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compile } from './c/compile.mjs';

const { program, cleanup } = compile('shm_peer');
const dir = mkdtempSync(join(tmpdir(), 'shm-c-example-'));
const keyFile = join(dir, 'keyfile');
writeFileSync(keyFile, '');
const name = `/example-shm-c-${process.pid}`;
const shm = posix.SharedMemory.create(name, { size: 4096, mode: 0o600 });
try {
  const seg = sysv.SharedMemory.create({ key: sysv.ftok(keyFile, 65), size: 4096, mode: 0o600 });
  try {
    for (const [kind, memory, where] of [['posix', shm, name], ['sysv', seg, keyFile]]) {
      Buffer.from(memory.buffer).write(`Hello from Node (${kind})\0`);
      const counter = new Int32Array(memory.buffer, 64, 1);
      execFileSync(program, [kind, where], { stdio: 'inherit' });
      console.log(`${kind} counter after C: ${Atomics.load(counter, 0)}`);
    }
  } finally {
    seg.remove();
    seg.close();
  }
} finally {
  shm.close();
  posix.SharedMemory.unlink(name);
  rmSync(dir, { recursive: true });
  cleanup();
}
