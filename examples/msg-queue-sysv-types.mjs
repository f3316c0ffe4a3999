// System V receive selectors (msgrcv's msgtyp, MSG_EXCEPT, MSG_NOERROR) and
// how waits end: a message, a timeout, an abort.
import { sysv } from 'interprocess';

const q = sysv.MessageQueue.create({ mode: 0o600 });       // IPC_PRIVATE: a new queue, reached by its id
const show = (m) => (m ? `${m.type}:${m.data}` : m);
try {
  for (const [type, text] of [[3, 'three'], [1, 'one'], [2, 'two'], [5, 'five']]) await q.send(type, text);
  console.log(`type 2:             ${show(q.tryReceive({ type: 2 }))}`);                 // exactly type 2
  console.log(`type -4:            ${show(q.tryReceive({ type: -4 }))}`);                // the lowest type <= 4
  console.log(`type 3, except:     ${show(q.tryReceive({ type: 3, except: true }))}`);   // the first of another type
  try {
    q.tryReceive({ maxSize: 2 });
  } catch (err) {
    console.log(`maxSize 2:          ${err.name} ${err.code}`);                          // TooLargeError E2BIG; it stays
  }
  console.log(`maxSize 2, noError: ${show(q.tryReceive({ maxSize: 2, noError: true }))}`);   // truncated
  console.log(`empty:              ${show(q.tryReceive())}`);

  try {
    await q.receive({ timeout: 20 });
  } catch (err) {
    console.log(`receive, 20 ms:     ${err.name} ${err.code}`);                          // TimeoutError ETIMEDOUT
  }
  const controller = new AbortController();
  const pending = q.receive({ type: 7, signal: controller.signal });                     // waits on a waiter thread
  setTimeout(() => controller.abort(), 20);
  try {
    await pending;
  } catch (err) {
    console.log(`receive, aborted:   ${err.name} ${err.code}`);                          // AbortError ABORT_ERR
  }
  const { qnum, lspid } = q.stat();                                                      // msqid_ds
  console.log(`${qnum} messages left; last sent by this process: ${lspid === process.pid}`);
} finally {
  q.remove();
}
