// A C sender and a Node receiver on one Channel (examples/c/channel_sender.c).
import { Channel } from 'interprocess';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { compile } from './c/compile.mjs';

const { program, cleanup } = compile('channel_sender', { withLibrary: true });
const name = `/example-channel-c-${process.pid}`;
const ch = Channel.create(name, { capacity: 4096, mode: 0o600 });   // the smallest ring: the C sender waits for room
try {
  const child = spawn(program, [name, '1000'], { stdio: 'inherit' });
  const exited = once(child, 'exit');                               // listen now: it may exit before we look
  let bytes = 0;
  for (let i = 0; i < 1000; i++) {
    const msg = await ch.receive({ timeout: 5000 });
    bytes += msg.length;
    if (i === 0 || i === 999) console.log(`Received: ${msg}`);
  }
  const [code] = await exited;
  console.log(`${bytes} bytes in 1000 messages; the C sender exited with ${code}`);
} finally {
  ch.close();
  Channel.unlink(name);
  cleanup();
}
