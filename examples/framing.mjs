// Whole messages over a byte stream: length-prefixed frames over a pipe.
import { pipe, writeFrame, FrameReader, TooLargeError } from 'interprocess';

const limit = { maxFrameSize: 1024 };
const { readable, writable } = pipe();
const frames = new FrameReader(readable, limit);

await writeFrame(writable, 'first message', limit);
try {
  await writeFrame(writable, Buffer.alloc(4096), limit);   // refused before anything is written
} catch (err) {
  console.log(`writer refused an oversize frame: ${err.code}`);
}
await writeFrame(writable, Buffer.alloc(2048));            // a writer with a larger limit sends one
await writeFrame(writable, Buffer.alloc(1000, 'x'));
writable.end();

for (;;) {
  try {
    const frame = await frames.read();                   // never half a message
    if (frame === null) break;
    console.log(`frame of ${frame.length} bytes`);
  } catch (err) {
    if (!(err instanceof TooLargeError)) throw err;
    console.log('reader skipped an oversize frame and goes on');
  }
}
