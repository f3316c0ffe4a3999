// System V semaphore sets beyond P and V: SEM_UNDO when a process dies,
// several operations applied atomically, waiting for zero, waiter counts.
import { sysv } from 'interprocess';
import { spawnSync } from 'node:child_process';

if (process.argv[2] === 'child') {
  const set = sysv.SemaphoreSet.fromId(Number(process.argv[3]));
  await set.wait(0, { undo: true });            // P with SEM_UNDO...
  process.exit(1);                              // ...and the process dies without V
} else {
  const set = sysv.SemaphoreSet.create({ count: 2, value: [1, 0], mode: 0o600 });   // IPC_PRIVATE
  try {
    spawnSync(process.execPath, [process.argv[1], 'child', String(set.id)], { stdio: 'inherit' });
    console.log(`after the child died: ${set.getAll()}`);   // 1,0: the kernel undid its -1

    await set.op([{ num: 0, op: -1 }, { num: 1, op: 1 }]);  // both at once, or neither
    console.log(`after one atomic op: ${set.getAll()}`);     // 0,1
    console.log(`tryOp -1 on semaphore 0: ${set.tryOp({ num: 0, op: -1 })}`);   // false, nothing applied

    const zero = set.waitForZero(1, { timeout: 5000 });      // semop { 1, 0 }: waits while it is 1
    while (set.waiters(1).forZero === 0) await new Promise((resolve) => setTimeout(resolve, 1));
    console.log(`waiters on 1: ${JSON.stringify(set.waiters(1))}`);   // GETNCNT, GETZCNT
    set.set(1, 0);                                           // SETVAL wakes the waiter
    await zero;
    console.log('semaphore 1 reached zero');

    try {
      await set.wait(0, { timeout: 20 });
    } catch (err) {
      console.log(`wait on semaphore 0: ${err.name} ${err.code}`);   // TimeoutError ETIMEDOUT
    }
  } finally {
    set.remove();                                            // IPC_RMID
  }
}
