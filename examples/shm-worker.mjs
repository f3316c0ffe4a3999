// Shared memory posted to a worker thread: its SharedArrayBuffer works with
// typed arrays and Atomics, wait/notify included, between threads.
import { posix } from 'interprocess';
import { Worker } from 'node:worker_threads';

const name = `/example-shm-worker-${process.pid}`;
const shm = posix.SharedMemory.create(name, { size: 4096, mode: 0o600 });
try {
  const flag = new Int32Array(shm.buffer, 0, 1);
  const worker = new Worker(
    `const { workerData } = require('node:worker_threads');
     const flag = new Int32Array(workerData, 0, 1);
     Atomics.store(flag, 0, 42);
     Atomics.notify(flag, 0);   // wakes waiters in this process; never another process's`,
    { eval: true, workerData: shm.buffer },                  // the same memory, not a copy
  );
  const exited = new Promise((resolve) => worker.on('exit', resolve));
  const { value } = Atomics.waitAsync(flag, 0, 0, 5000);     // until the worker changes it
  await value;
  console.log(`the worker wrote ${Atomics.load(flag, 0)}`);
  await exited;
} finally {
  shm.close();
  posix.SharedMemory.unlink(name);
}
