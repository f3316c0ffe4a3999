// The tutorial's fifo_example.c: a FIFO at a path, a writer and a reader in
// two unrelated processes.
import { mkfifo, openFifoReader, openFifoWriter } from 'interprocess';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

if (process.argv[2] === 'reader') {
  let text = '';
  for await (const chunk of openFifoReader(process.argv[3])) text += chunk;   // opens at once
  console.log(`Received: ${text}`);
} else {
  const dir = mkdtempSync(join(tmpdir(), 'fifo-example-'));
  const path = join(dir, 'my_fifo');
  try {
    await mkfifo(path, 0o600);
    const reader = spawn(process.execPath, [process.argv[1], 'reader', path], { stdio: 'inherit' });
    const writer = await openFifoWriter(path, { timeout: 5000 });  // waits for the reader, loop stays free
    writer.end('Hello, FIFO');
    await new Promise((resolve) => reader.on('exit', resolve));
  } finally {
    rmSync(dir, { recursive: true });
  }
}
