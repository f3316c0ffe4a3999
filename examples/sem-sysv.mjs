// The tutorial's semaphore_example.c: parent and child take turns in a
// critical section guarded by a System V semaphore, with SEM_UNDO.
import { sysv } from 'interprocess';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const enter = async (set, who) => {
  await set.wait(0, { undo: true, timeout: 5000 });   // P: semop {0, -1, SEM_UNDO}
  console.log(`${who} entering critical section`);
  await new Promise((r) => setTimeout(r, 200));
  console.log(`${who} leaving critical section`);
  set.post(0, { undo: true });                        // V: semop {0, +1, SEM_UNDO}
};

if (process.argv[2] === 'child') {
  const set = sysv.SemaphoreSet.open({ path: process.argv[3], projId: 65 });
  await enter(set, 'Child');
  set.close();
} else {
  const dir = mkdtempSync(join(tmpdir(), 'sem-example-'));
  const keyFile = join(dir, 'semfile');
  writeFileSync(keyFile, '');
  const set = sysv.SemaphoreSet.create({ key: { path: keyFile, projId: 65 }, count: 1, value: 1, mode: 0o600 });
  try {
    const turn = enter(set, 'Parent');
    const child = spawn(process.argv[0], [process.argv[1], 'child', keyFile], { stdio: 'inherit' });
    await turn;
    await new Promise((resolve) => child.on('exit', resolve));
  } finally {
    set.remove();
    rmSync(dir, { recursive: true });
  }
}
