// POSIX named semaphores (sem_open, sem_post, sem_wait): a child process
// signals its parent three times through /example-sem-PID.
import { posix } from 'interprocess';
import { spawn } from 'node:child_process';

if (process.argv[2] === 'child') {
  const sem = posix.Semaphore.open(process.argv[3]);
  for (let i = 0; i < 3; i++) {
    await new Promise((resolve) => setTimeout(resolve, 20));   // some work
    sem.post();                                                // sem_post: wakes the parent
  }
  sem.close();
} else {
  const name = `/example-sem-${process.pid}`;
  const sem = posix.Semaphore.create(name, { value: 0, mode: 0o600 });
  try {
    console.log(`value ${sem.value}, tryWait: ${sem.tryWait()}`);   // false: sem_trywait would block
    const child = spawn(process.execPath, [process.argv[1], 'child', name], { stdio: 'inherit' });
    const exited = new Promise((resolve) => child.on('exit', resolve));
    for (let i = 1; i <= 3; i++) {
      await sem.wait({ timeout: 5000 });                       // the event loop runs on meanwhile
      console.log(`post ${i} received`);
    }
    await exited;

    const controller = new AbortController();
    setTimeout(() => controller.abort(), 20);
    try {
      await sem.wait({ signal: controller.signal });
    } catch (err) {
      console.log(`wait aborted: ${err.code}, value still ${sem.value}`);   // ABORT_ERR: took nothing
    }
    try {
      sem.waitSync({ timeout: 20 });                           // sem_clockwait: blocks this thread
    } catch (err) {
      console.log(`waitSync: ${err.name} ${err.code}`);        // TimeoutError ETIMEDOUT
    }
  } finally {
    sem.close();
    posix.Semaphore.unlink(name);                              // sem_unlink: the name goes now
  }
}
