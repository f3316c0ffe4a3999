// A robust mutex shared by Node and C (examples/c/mutex_peer.c): both add to
// a counter under the same pthread_mutex_t, then the C program dies holding
// the lock and Node's next lock() is told so.
import { Mutex, posix } from 'interprocess';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { compile } from './c/compile.mjs';

const { program, cleanup } = compile('mutex_peer', { withLibrary: true });   // links c/interprocess.c
const name = `/example-mutex-c-${process.pid}`;
const shm = posix.SharedMemory.create(name, { size: 4096, mode: 0o600 });
try {
  const m = Mutex.init(shm.buffer, 0);               // a pthread_mutex_t at offset 0
  const counter = new Int32Array(shm.buffer, 64, 1);
  const child = spawn(program, [name, '10000'], { stdio: 'inherit' });
  const exited = once(child, 'exit');               // listen now: it may exit before the loop ends
  for (let i = 0; i < 10000; i++) await m.withLock(() => counter[0]++);
  await exited;
  console.log(`counter: ${counter[0]}`);             // 20000: no increment lost

  await once(spawn(program, [name, '0', 'die'], { stdio: 'inherit' }), 'exit');
  const state = await m.lock({ timeout: 5000 });
  console.log(`lock after the C holder died: ${state}`);   // 'owner-died'
  if (state === 'owner-died') m.markConsistent();    // (repair the data first)
  m.unlock();
  console.log(`and then: ${await m.withLock((r) => r)}`);  // 'locked'
  m.close();
} finally {
  shm.close();
  posix.SharedMemory.unlink(name);
  cleanup();
}
