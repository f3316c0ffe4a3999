// The tutorial's msg_queue_example.c: a System V queue found through ftok(),
// typed messages between a parent and a child process.
import { sysv } from 'interprocess';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

if (process.argv[2] === 'child') {
  const q = sysv.MessageQueue.open({ path: process.argv[3], projId: 65 });
  const msg = await q.receive({ type: 1, timeout: 5000 });   // waits on a waiter thread, not the event loop
  console.log(`Received: ${msg.data}`);
  await q.send(2, 'Hello back');
  q.close();
} else {
  const dir = mkdtempSync(join(tmpdir(), 'msg-example-'));
  const keyFile = join(dir, 'progfile');
  writeFileSync(keyFile, '');
  const q = sysv.MessageQueue.create({ key: { path: keyFile, projId: 65 }, mode: 0o600 });
  try {
    await q.send(1, 'Hello, Message Queue');                 // mtype 1, mtext = the bytes
    execFileSync(process.argv[0], [process.argv[1], 'child', keyFile], { stdio: 'inherit' });
    const reply = q.tryReceive({ type: 2 });                 // undefined if nothing is waiting
    console.log(`reply of type ${reply?.type}: ${reply?.data}`);
  } finally {
    q.remove();                                              // msgctl(IPC_RMID)
    rmSync(dir, { recursive: true });
  }
}
