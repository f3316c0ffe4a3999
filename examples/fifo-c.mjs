// A Node writer and a C reader on one FIFO (examples/c/fifo_reader.c): the
// writer's open waits for a reader without blocking the event loop, and a C
// reader blocked in open() counts as one.
import { mkfifo, openFifoWriter, tryOpenFifoWriter } from 'interprocess';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compile } from './c/compile.mjs';

const { program, cleanup } = compile('fifo_reader');
const dir = mkdtempSync(join(tmpdir(), 'fifo-c-example-'));
const path = join(dir, 'my_fifo');
try {
  await mkfifo(path, 0o600);
  console.log(`no reader yet: tryOpenFifoWriter gives ${tryOpenFifoWriter(path)}`);
  try {
    await openFifoWriter(path, { timeout: 50 });
  } catch (err) {
    console.log(`no reader within 50 ms: ${err.name} ${err.code}`);   // TimeoutError ETIMEDOUT
  }
  const controller = new AbortController();
  setTimeout(() => controller.abort(), 50);
  try {
    await openFifoWriter(path, { signal: controller.signal });
  } catch (err) {
    console.log(`aborted: ${err.name} ${err.code}`);                  // AbortError ABORT_ERR
  }

  const reader = spawn(program, [path], { stdio: 'inherit' });
  const writer = await openFifoWriter(path, { timeout: 5000 });      // opens once the C reader is in open()
  writer.end('Hello from Node');                                      // the reader sees EOF after it
  await once(reader, 'exit');
} finally {
  rmSync(dir, { recursive: true });
  cleanup();
}
