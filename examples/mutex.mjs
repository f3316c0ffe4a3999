// A robust mutex between Node processes: two children add to a counter in
// POSIX shared memory under the lock; then a child dies holding the lock, and
// the parent is told so, repairs the counter and goes on.
import { Mutex, posix } from 'interprocess';
import { spawn } from 'node:child_process';

const [, script, role, name] = process.argv;
if (role === 'count' || role === 'die') {
  const shm = posix.SharedMemory.open(name);
  const m = Mutex.at(shm.buffer, 0);                  // the mutex the parent initialised
  const counter = new Int32Array(shm.buffer, 64, 1);
  if (role === 'count') {
    for (let i = 0; i < 1000; i++) await m.withLock(() => counter[0]++);   // always unlocks
  } else {
    m.lockSync();
    counter[0] = -1;                                  // half-done work...
    process.exit(1);                                  // ...and the holder dies
  }
  m.close();
  shm.close();
} else {
  const name = `/example-mutex-${process.pid}`;
  const shm = posix.SharedMemory.create(name, { size: 4096, mode: 0o600 });
  const run = (role) => new Promise((resolve) => spawn(process.execPath, [script, role, name], { stdio: 'inherit' }).on('exit', resolve));
  try {
    const m = Mutex.init(shm.buffer, 0);              // a pthread_mutex_t at offset 0
    const counter = new Int32Array(shm.buffer, 64, 1);
    await Promise.all([run('count'), run('count')]);
    console.log(`counter: ${counter[0]}`);            // 2000: no increment lost

    await run('die');
    const state = await m.lock({ timeout: 5000 });
    console.log(`lock: ${state}, counter ${counter[0]}`);   // owner-died, -1
    if (state === 'owner-died') {
      counter[0] = 2000;                              // repair what the lock protects...
      m.markConsistent();                             // ...then say so
    }
    m.unlock();
    console.log(`tryLock: ${m.tryLock()}`);           // locked
    try {
      m.lockSync();                                   // this thread holds it already
    } catch (err) {
      console.log(`lockSync again: ${err.name} ${err.code}`);   // DeadlockError EDEADLK
    }
    m.unlock();
    try {
      m.unlock();                                     // not held any more
    } catch (err) {
      console.log(`unlock again: ${err.name} ${err.code}`);     // PermissionError EPERM
    }

    await run('die');
    console.log(`lock: ${await m.lock()}`);           // owner-died
    m.unlock();                                       // without markConsistent()
    try {
      await m.lock();
    } catch (err) {
      console.log(`lock after that: ${err.name} ${err.code}`);  // NotRecoverableError ENOTRECOVERABLE
    }
    m.close();
  } finally {
    shm.close();
    posix.SharedMemory.unlink(name);
  }
}
