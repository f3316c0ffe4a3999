// POSIX message queues: priorities, and waiting without any thread.
import { posix } from 'interprocess';

const name = `/example-mq-${process.pid}`;
const mq = posix.MessageQueue.create(name, { maxMessages: 8, messageSize: 256, mode: 0o600 });
try {
  const first = mq.receive({ timeout: 5000 });   // pending: libuv polls the queue descriptor
  await mq.send('routine', 1);
  console.log(`first: ${(await first).data}`);
  await mq.send('routine again', 1);
  await mq.send('urgent', 9);
  for (let i = 0; i < 2; i++) {
    const { data, priority } = await mq.receive();
    console.log(`${data} (priority ${priority})`);   // highest priority first
  }
} finally {
  mq.close();
  posix.MessageQueue.unlink(name);
}
