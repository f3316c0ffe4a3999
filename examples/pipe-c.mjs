// A C child with a pipe each way: the parent writes to the child's
// descriptor 3 and reads what the child writes to its descriptor 4
// (examples/c/pipe_child.c, compiled first).
import { spawnWithPipes } from 'interprocess';
import { once } from 'node:events';
import { compile } from './c/compile.mjs';

const { program, cleanup } = compile('pipe_child');
try {
  const { child, pipes: [toChild, fromChild], childFds } = spawnWithPipes(program, [], {
    pipes: ['toChild', 'fromChild'],
    stdio: 'inherit',
  });
  const exited = once(child, 'exit');          // listen now: it may exit before we look
  console.log(`the child reads descriptor ${childFds[0]} and writes descriptor ${childFds[1]}`);
  toChild.end('hello from node');            // end(): the child's read() returns 0
  let reply = '';
  for await (const chunk of fromChild) reply += chunk;
  const [code] = await exited;
  console.log(`Received: ${reply} (child exit code ${code})`);
} finally {
  cleanup();
}
