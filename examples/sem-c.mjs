// Semaphores shared with C (examples/c/sem_peer.c): a POSIX named semaphore
// the C program posts, and a System V set where SEM_UNDO gives back what a
// process took when it exits.
import { posix, sysv } from 'interprocess';
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { compile } from './c/compile.mjs';

const { program, cleanup } = compile('sem_peer');
const name = `/example-sem-c-${process.pid}`;
try {
  const sem = posix.Semaphore.create(name, { value: 0, mode: 0o600 });
  try {
    const exited = once(spawn(program, ['posix', name], { stdio: 'inherit' }), 'exit');
    await sem.wait({ timeout: 5000 });            // ends when the C program calls sem_post
    console.log('Node: the C program posted');
    await exited;
  } finally {
    sem.close();
    posix.Semaphore.unlink(name);
  }

  const set = sysv.SemaphoreSet.create({ count: 1, value: 1, mode: 0o600 });  // IPC_PRIVATE: reached by id
  try {
    execFileSync(program, ['sysv', String(set.id)], { stdio: 'inherit' });
    console.log(`Node: value after the C program exited: ${set.get(0)}`);     // 1 again
  } finally {
    set.remove();
  }
} finally {
  cleanup();
}
