// The tutorial's pipe_example.c with interprocess: the parent creates a pipe
// and starts a child that inherits its read end; the parent writes, the child
// reads. (Node cannot fork(), so the child is this same file started again.)
import { spawnWithPipes, pipeReader } from 'interprocess';

if (process.argv[2] === 'child') {
  const reader = pipeReader(3);            // the read end, inherited as descriptor 3
  let text = '';
  for await (const chunk of reader) text += chunk;
  console.log(`Received: ${text}`);
} else {
  const { child, pipes: [writer] } = spawnWithPipes(process.execPath, [process.argv[1], 'child'], {
    pipes: ['toChild'],
    stdio: 'inherit',
  });
  writer.end('Hello, IPC');                // closing the write end gives the child EOF
  child.on('exit', (code) => process.exit(code ?? 1));
}
