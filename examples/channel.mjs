// Channel: ordered messages between processes through a ring buffer in shared memory.
import { Channel } from 'interprocess';
import { spawn } from 'node:child_process';

if (process.argv[2] === 'child') {
  const out = Channel.open(process.argv[3]);               // the sender's side
  await out.send('Hello, Channel');                         // copies into the ring; waits (no thread) when full
  const view = await out.reserve(5);                        // zero-copy: write in place, then commit
  view.set([1, 2, 3, 4, 5]);
  out.commit();
  await out.send('into your buffer');
  out.sendSync('done');                                     // spins briefly, then sleeps on a futex
  out.close();
} else {
  const name = `/example-channel-${process.pid}`;
  const ch = Channel.create(name, { capacity: 1 << 16, mode: 0o600 });
  try {
    const child = spawn(process.execPath, [process.argv[1], 'child', name], { stdio: 'inherit' });
    const exited = new Promise((resolve) => child.on('exit', resolve));   // listen now: it may exit before we look
    console.log(`Received: ${await ch.receive({ timeout: 10_000 })}`);
    const view = await ch.receiveView({ timeout: 10_000 });    // a view into the ring, valid until release()
    console.log(`in place: ${[...view].join(',')}`);
    ch.release();
    const buffer = Buffer.alloc(ch.maxMessage);               // reused: nothing allocated per message
    const n = await ch.receiveInto(buffer, { timeout: 10_000 }); // copies the message in, returns its length
    console.log(`into a buffer: ${buffer.toString('utf8', 0, n)}`);
    for await (const msg of ch) {                             // until close(); a dead sender throws PeerGoneError
      console.log(`then: ${msg}`);
      if (msg.toString() === 'done') break;
    }
    await exited;
    console.log(`stale after use? ${Channel.inspect(name).stale}`);   // creator (this process) alive: no
  } finally {
    ch.close();
    Channel.unlink(name);
  }
}
