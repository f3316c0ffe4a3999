// A condition variable across processes, as pthread_cond_wait: the parent
// waits under a named mutex until a child has moved the shared state to 3.
import { Condition, Mutex, posix } from 'interprocess';
import { spawn } from 'node:child_process';

const [, script, role, base] = process.argv;
if (role === 'child') {
  const m = Mutex.open(`${base}-lock`);
  const changed = Condition.open(`${base}-changed`);
  const shm = posix.SharedMemory.open(`${base}-state`);
  const state = new Int32Array(shm.buffer, 0, 1);
  for (let i = 1; i <= 3; i++) {
    await new Promise((resolve) => setTimeout(resolve, 20));   // some work
    await m.withLock(() => {
      state[0] = i;                                  // change the state under the lock...
      changed.notifyAll();                           // ...and tell the waiters
    });
  }
  for (const handle of [m, changed, shm]) handle.close();
} else {
  const base = `/example-cond-${process.pid}`;
  const m = Mutex.create(`${base}-lock`, { mode: 0o600 });
  const changed = Condition.create(`${base}-changed`, { mode: 0o600 });
  const shm = posix.SharedMemory.create(`${base}-state`, { size: 4096, mode: 0o600 });
  const state = new Int32Array(shm.buffer, 0, 1);
  try {
    const child = spawn(process.execPath, [script, 'child', base], { stdio: 'inherit' });
    const exited = new Promise((resolve) => child.on('exit', resolve));
    await m.withLock(async () => {
      while (state[0] < 3) {                         // wait() may return early: re-check
        await changed.wait(m, { timeout: 5000 });    // releases m while asleep, takes it again
      }
      console.log(`state is ${state[0]}`);
    });
    await exited;
  } finally {
    for (const handle of [m, changed, shm]) handle.close();
    Mutex.unlink(`${base}-lock`);
    Condition.unlink(`${base}-changed`);
    posix.SharedMemory.unlink(`${base}-state`);
  }
}
