// POSIX shared memory as a SharedArrayBuffer, shared with a second process.
import { posix } from 'interprocess';
import { execFileSync } from 'node:child_process';

const name = `/example-${process.pid}`;
if (process.argv[2] === 'child') {
  const shm = posix.SharedMemory.open(process.argv[3]);
  const text = Buffer.from(shm.buffer, 0, 64);
  console.log(`Received: ${text.subarray(0, text.indexOf(0))}`);
  Atomics.add(new Int32Array(shm.buffer, 64, 1), 0, 1);   // typed arrays and Atomics work directly
  shm.close();                                            // or `using shm = ...` in TypeScript
} else {
  const shm = posix.SharedMemory.create(name, { size: 4096, mode: 0o600 });
  try {
    Buffer.from(shm.buffer).write('Hello, Shared Memory\0');
    execFileSync(process.execPath, [process.argv[1], 'child', name], { stdio: 'inherit' });
    console.log(`counter after the child ran: ${Atomics.load(new Int32Array(shm.buffer, 64, 1), 0)}`);
  } finally {
    shm.close();
    posix.SharedMemory.unlink(name);
  }
}
