// Message queues between Node and C (examples/c/msg_peer.c): a System V queue
// found through ftok(), and a POSIX queue by name.
import { posix, sysv } from 'interprocess';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compile } from './c/compile.mjs';

const { program, cleanup } = compile('msg_peer');
const dir = mkdtempSync(join(tmpdir(), 'msg-c-example-'));
const keyFile = join(dir, 'progfile');
writeFileSync(keyFile, '');
const name = `/example-mq-c-${process.pid}`;
try {
  const q = sysv.MessageQueue.create({ key: { path: keyFile, projId: 65 }, mode: 0o600 });
  try {
    await q.send(1, 'Hello from Node');                        // C: msgrcv(id, &m, size, 1, 0)
    execFileSync(program, ['sysv', keyFile], { stdio: 'inherit' });
    const reply = await q.receive({ type: 2, timeout: 5000 });
    console.log(`Node received type ${reply.type}: ${reply.data}`);
  } finally {
    q.remove();
  }

  const mq = posix.MessageQueue.create(name, { maxMessages: 4, messageSize: 64, mode: 0o600 });
  try {
    execFileSync(program, ['posix', name], { stdio: 'inherit' });
    for (let i = 0; i < 2; i++) {
      const { data, priority } = await mq.receive({ timeout: 5000 });
      console.log(`Node received ${data} (priority ${priority})`);  // highest priority first
    }
  } finally {
    mq.close();
    posix.MessageQueue.unlink(name);
  }
} finally {
  rmSync(dir, { recursive: true });
  cleanup();
}
