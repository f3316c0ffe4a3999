// A POSIX message queue's limits: a full queue, a message too large, the
// attributes, and a receive loop that ends with an AbortSignal.
import { posix } from 'interprocess';

const name = `/example-mq-full-${process.pid}`;
const mq = posix.MessageQueue.create(name, { maxMessages: 2, messageSize: 16, mode: 0o600 });
try {
  console.log(`trySend: ${mq.trySend('a')} ${mq.trySend('b')} ${mq.trySend('c')}`);   // true true false: full
  try {
    await mq.send('c', 0, { timeout: 20 });
  } catch (err) {
    console.log(`send to a full queue: ${err.name} ${err.code}`);   // TimeoutError ETIMEDOUT
  }
  try {
    await mq.send('x'.repeat(17));
  } catch (err) {
    console.log(`17 bytes: ${err.name} ${err.code}`);              // TooLargeError EMSGSIZE
  }
  console.log(JSON.stringify(mq.attributes()));                    // mq_getattr

  const controller = new AbortController();
  setTimeout(() => controller.abort(), 50);
  for await (const { data } of mq.messages({ signal: controller.signal })) {
    console.log(`received ${data}`);                               // a, b, then waits until the abort
  }
  console.log('the loop ended with the abort');
} finally {
  mq.close();
  posix.MessageQueue.unlink(name);
}
