// Anonymous pipes: pipe(), spawnWithPipes, pipeReader/pipeWriter, with real
// child processes (Node and compiled C) on the other end.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, openSync } from 'node:fs';
import { join } from 'node:path';
import type { Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { pipe, pipeReader, pipeWriter, spawnWithPipes, InvalidArgumentError, IpcError } from 'interprocess';
import * as helpers from './helpers.js';
import { compilePeer, root, spawnNode, tempDir, waitForLine, type RunResult } from './helpers.js';

/** Everything a stream yields until 'end'; rejects on 'error' or on 'close' without 'end'. */
function readAll(stream: Readable): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let ended = false;
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => {
      ended = true;
      resolve(Buffer.concat(chunks));
    });
    stream.on('error', reject);
    stream.on('close', () => {
      if (!ended) reject(new Error('stream closed without end of file'));
    });
  });
}

/** Rejects if `child` has not exited within `ms` (and kills it), so a hang fails the test instead of the run. */
function exitWithin(child: ChildProcess, ms: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((resolve, reject) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve({ code: child.exitCode, signal: child.signalCode });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`child ${child.pid} did not exit within ${ms} ms`));
    }, ms);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal });
    });
  });
}

// Children still running when the file ends (a test failed while a peer
// waited in open() or read()) are killed, so a failure leaves nothing behind.
const live = new Set<ChildProcess>();
after(() => {
  for (const c of live) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

/** helpers.collect, remembering the child until it exits. */
function collect(child: ChildProcess): Promise<RunResult> {
  live.add(child);
  child.on('exit', () => live.delete(child));
  return helpers.collect(child);
}
const run = (cmd: string, args: string[], options: SpawnOptions = {}): Promise<RunResult> =>
  collect(spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options }));

/** Every test has a time limit, so a hang (a missing end of file) fails instead of stalling the run. */
const T = { timeout: 30_000 };

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

describe('pipe()', () => {
  test('data written to one end comes out of the other, then end of file', T, async () => {
    const { readable, writable } = pipe();
    const got = readAll(readable);
    writable.write('Hello, ');
    writable.end('IPC');
    assert.equal((await got).toString(), 'Hello, IPC');
  });

  test('1 MiB of random bytes arrives intact and in order', T, async () => {
    const { readable, writable } = pipe();
    const data = randomBytes(1 << 20);
    const got = readAll(readable);
    writable.end(data);
    const buf = await got;
    assert.equal(buf.length, data.length);
    assert.ok(buf.equals(data), 'bytes differ');
  });

  test('each call makes a new pipe: two pipes do not mix', T, async () => {
    const a = pipe();
    const b = pipe();
    const gotA = readAll(a.readable);
    const gotB = readAll(b.readable);
    a.writable.end('to a');
    b.writable.end('to b');
    assert.equal((await gotA).toString(), 'to a');
    assert.equal((await gotB).toString(), 'to b');
  });

  test('the ends are one-way', T, () => {
    const { readable, writable } = pipe();
    try {
      assert.equal(readable.writable, false);
      assert.equal(writable.readable, false);
    } finally {
      readable.destroy();
      writable.destroy();
    }
  });
});

describe('spawnWithPipes', () => {
  let cReader: string;
  before(async () => {
    cReader = await compilePeer('pipe_child_reader');
  });

  test('a Node child reads descriptor 3 and answers on descriptor 4; end of file reaches it', T, async () => {
    // The child upper-cases everything it reads from 3 onto 4, and reports end of file.
    const code = `
      import { pipeReader, pipeWriter } from 'interprocess';
      const input = pipeReader(3);
      const output = pipeWriter(4);
      let n = 0;
      input.on('data', (c) => { n += c.length; output.write(c.toString('latin1').toUpperCase()); });
      input.on('end', () => { console.log('EOF after ' + n + ' bytes'); output.end(); });
    `;
    const { child, pipes, childFds } = spawnWithPipes(process.execPath, ['--input-type=module', '-e', code], {
      cwd: root,
      pipes: ['toChild', 'fromChild'],
    });
    assert.deepEqual(childFds, [3, 4]);
    const [toChild, fromChild] = pipes as [Socket, Socket];
    const result = collect(child);
    const reply = readAll(fromChild);
    toChild.write('hello, ');
    toChild.end('child');
    assert.equal((await reply).toString(), 'HELLO, CHILD');
    const r = await result;
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^EOF after 12 bytes$/m);
  });

  test('1 MiB each way through a Node child', T, async () => {
    // The child echoes its input back and prints the digest of what it saw.
    const code = `
      import { pipeReader, pipeWriter } from 'interprocess';
      import { createHash } from 'node:crypto';
      const h = createHash('sha256');
      const input = pipeReader(3);
      const output = pipeWriter(4);
      input.on('data', (c) => h.update(c));
      input.on('end', () => console.log('sha256 ' + h.digest('hex')));
      input.pipe(output);
    `;
    const { child, pipes } = spawnWithPipes(process.execPath, ['--input-type=module', '-e', code], {
      cwd: root,
      pipes: ['toChild', 'fromChild'],
    });
    const [toChild, fromChild] = pipes as [Socket, Socket];
    const result = collect(child);
    const data = randomBytes(1 << 20);
    const echoed = readAll(fromChild);
    toChild.end(data);
    const back = await echoed;
    assert.equal(back.length, data.length);
    assert.ok(back.equals(data), 'echoed bytes differ');
    const r = await result;
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^sha256 ${sha256(data)}$`, 'm'));
  });

  test("the tutorial's parent -> child: a C child does blocking read() on descriptor 3", T, async () => {
    const { child, pipes: [toChild] } = spawnWithPipes(cReader, [], { pipes: ['toChild'] });
    const result = collect(child);
    // The child is about to read() when it says ready: on a non-blocking
    // descriptor that read() would fail with EAGAIN instead of waiting.
    await waitForLine(child, /^ready$/);
    toChild!.end('Hello, IPC');
    const r = await result;
    assert.equal(r.code, 0, `exit ${r.code}: ${r.stderr}`);
    assert.match(r.stdout, /^Received: Hello, IPC$/m);
    assert.match(r.stdout, /^end of file after 10 bytes$/m);
  });

  test('a C child answers on a fromChild pipe with blocking write()', T, async () => {
    const { child, pipes } = spawnWithPipes(cReader, [], { pipes: ['toChild', 'fromChild'], stdio: ['ignore', 'pipe', 'pipe'] });
    const [toChild, fromChild] = pipes as [Socket, Socket];
    const result = collect(child);
    const reply = readAll(fromChild);
    toChild.end('Hello, IPC, again');
    assert.equal((await reply).toString(), 'read 17 bytes');
    const r = await result;
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^Received: Hello, IPC, again$/m);
  });

  test('the parent keeps no copy of the child ends: the child exiting gives the parent end of file', T, async () => {
    // The child never touches descriptor 3; if the parent still held the
    // write end, this read would never end.
    const { child, pipes: [fromChild] } = spawnWithPipes(process.execPath, ['-e', ''], { pipes: ['fromChild'], stdio: 'ignore' });
    const got = readAll(fromChild!);
    const { code } = await exitWithin(child, 10_000);
    assert.equal(code, 0);
    assert.equal((await got).length, 0);
  });

  test('a child spawned later inherits neither pipe() ends nor another child\'s pipe: end of file still arrives', T, async () => {
    // A waits on its pipe; B is spawned afterwards and waits on its own. If B
    // had inherited the parent's end of A's pipe (or of the in-process pipe),
    // neither A nor the in-process reader would ever see end of file.
    const local = pipe();
    const a = spawnWithPipes(cReader, [], { pipes: ['toChild'] });
    const aResult = collect(a.child);
    await waitForLine(a.child, /^ready$/);
    const b = spawnWithPipes(cReader, [], { pipes: ['toChild'] });
    const bResult = collect(b.child);
    await waitForLine(b.child, /^ready$/);

    const localText = readAll(local.readable);
    local.writable.end('local');
    assert.equal((await localText).toString(), 'local');
    a.pipes[0]!.end('to A');
    const ra = await aResult;
    assert.equal(ra.code, 0, ra.stderr);
    assert.match(ra.stdout, /^Received: to A$/m);
    assert.equal(b.child.exitCode, null, 'B should still be waiting for its own input');

    b.pipes[0]!.end('to B');
    const rb = await bResult;
    assert.equal(rb.code, 0, rb.stderr);
    assert.match(rb.stdout, /^Received: to B$/m);
  });

  test('the descriptors follow the stdio entries', T, async () => {
    const code = `
      import { pipeWriter } from 'interprocess';
      pipeWriter(Number(process.argv[1])).end('via ' + process.argv[1]);
    `;
    const { child, pipes, childFds } = spawnWithPipes(process.execPath, ['--input-type=module', '-e', code, '4'], {
      cwd: root,
      pipes: ['fromChild'],
      stdio: ['ignore', 'inherit', 'inherit', 'ignore'],
    });
    assert.deepEqual(childFds, [4]);
    const got = readAll(pipes[0]!);
    assert.equal((await got).toString(), 'via 4');
    assert.equal((await exitWithin(child, 10_000)).code, 0);
  });

  test('a command that cannot start: an error on the child, end of file on its pipes', T, async () => {
    const { child, pipes } = spawnWithPipes(join(root, 'no-such-program'), [], { pipes: ['fromChild', 'toChild'], stdio: 'ignore' });
    const failed = new Promise<NodeJS.ErrnoException>((resolve) => child.once('error', resolve));
    const [fromChild, toChild] = pipes as [Socket, Socket];
    const got = readAll(fromChild);
    // Whether this write fails with EPIPE depends on how soon the forked
    // child's copy of the read end goes away; either way the stream closes.
    toChild.on('error', () => {});
    const closed = new Promise((resolve) => toChild.once('close', resolve));
    toChild.end('nobody reads this');
    assert.equal((await failed).code, 'ENOENT');
    assert.equal((await got).length, 0);
    await closed;
  });

  test('bad pipes options are rejected before anything is spawned', T, () => {
    assert.throws(() => spawnWithPipes(process.execPath, [], { pipes: 'toChild' as never }), InvalidArgumentError);
    assert.throws(() => spawnWithPipes(process.execPath, [], { pipes: ['sideways' as never] }), InvalidArgumentError);
  });
});

test('the tutorial reversed: a C parent pipes "Hello, IPC" to node reading pipeReader(3)', T, async () => {
  const parent = await compilePeer('pipe_parent_exec');
  const code = `
    import { pipeReader } from 'interprocess';
    let text = '';
    for await (const chunk of pipeReader(3)) text += chunk;
    console.log('Received: ' + text);
  `;
  const r = await run(parent, [process.execPath, '--input-type=module', '-e', code], { cwd: root });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'Received: Hello, IPC\n');
});

describe('process lifetime', () => {
  // The process must exit on its own once the pipes are done with: no
  // process.exit(), so a handle left referenced would make it hang.
  test('a process using pipe() exits by itself after the data has flowed', T, async () => {
    const child = spawnNode(`
      import { pipe } from 'interprocess';
      const { readable, writable } = pipe();
      let text = '';
      readable.setEncoding('utf8').on('data', (d) => (text += d)).on('end', () => console.log('Received: ' + text));
      writable.end('Hello, IPC');
    `);
    const result = collect(child);
    const { code } = await exitWithin(child, 8000);
    const r = await result;
    assert.equal(code, 0, r.stderr);
    assert.equal(r.stdout, 'Received: Hello, IPC\n');
  });

  test('a parent using spawnWithPipes exits by itself once its child is done', T, async () => {
    const parent = spawnNode(
      `
      import { spawnWithPipes } from 'interprocess';
      const { child, pipes: [toChild, fromChild] } = spawnWithPipes(process.execPath, ['--input-type=module', '-e',
        "import { pipeReader, pipeWriter } from 'interprocess'; pipeReader(3).pipe(pipeWriter(4));"],
        { pipes: ['toChild', 'fromChild'], stdio: 'inherit' });
      let text = '';
      fromChild.setEncoding('utf8').on('data', (d) => (text += d)).on('end', () => console.log('echoed: ' + text));
      child.on('exit', (code) => console.log('child exited with ' + code));
      toChild.end('round trip');
    `,
      [],
      { cwd: root },
    );
    const result = collect(parent);
    const { code } = await exitWithin(parent, 8000);
    const r = await result;
    assert.equal(code, 0, r.stderr);
    assert.match(r.stdout, /^echoed: round trip$/m);
    assert.match(r.stdout, /^child exited with 0$/m);
  });
});

describe('pipeReader / pipeWriter argument checks', () => {
  const tmp = tempDir('pipe');
  after(() => tmp.cleanup());

  test('descriptor numbers that cannot be descriptors are rejected', T, () => {
    for (const bad of [-1, 1.5, NaN, Infinity, 2 ** 31, '3', null, undefined]) {
      assert.throws(() => pipeReader(bad as number), InvalidArgumentError, `pipeReader(${String(bad)})`);
      assert.throws(() => pipeWriter(bad as number), InvalidArgumentError, `pipeWriter(${String(bad)})`);
    }
  });

  test('a regular file or a directory is not a pipe', T, () => {
    const file = join(tmp.dir, 'plain');
    const w = openSync(file, 'w');
    const r = openSync(file, 'r');
    const d = openSync(tmp.dir, 'r');
    try {
      for (const [fn, fd] of [[pipeReader, r], [pipeWriter, w], [pipeReader, d]] as const) {
        assert.throws(() => fn(fd), (e: unknown) => {
          assert.ok(e instanceof InvalidArgumentError, String(e));
          assert.equal(e.code, 'EINVAL');
          assert.match(e.message, /not a pipe or FIFO/);
          return true;
        });
      }
    } finally {
      // The checks must leave a rejected descriptor open (the caller still owns it).
      closeSync(w);
      closeSync(r);
      closeSync(d);
    }
  });

  test('a descriptor that is not open fails with EBADF', T, () => {
    const fd = openSync(join(tmp.dir, 'gone'), 'w');
    closeSync(fd);
    assert.throws(() => pipeReader(fd), (e: unknown) => e instanceof IpcError && e.code === 'EBADF');
  });

  test('a pipe end used the wrong way round is rejected (in a child that inherited real pipe ends)', T, async () => {
    // Descriptor 3 is a read end, 4 a write end. The child tries each the
    // wrong way, then shows both still work the right way.
    const code = `
      import { pipeReader, pipeWriter, InvalidArgumentError } from 'interprocess';
      for (const [name, fn, fd] of [['pipeWriter', pipeWriter, 3], ['pipeReader', pipeReader, 4]]) {
        try { fn(fd); console.log(name + '(' + fd + ') accepted'); }
        catch (e) { console.log(name + '(' + fd + ') ' + (e instanceof InvalidArgumentError ? 'InvalidArgumentError' : e.name) + ': ' + e.message); }
      }
      const input = pipeReader(3);
      const output = pipeWriter(4);
      input.pipe(output);
    `;
    const { child, pipes } = spawnWithPipes(process.execPath, ['--input-type=module', '-e', code], {
      cwd: root,
      pipes: ['toChild', 'fromChild'],
    });
    const [toChild, fromChild] = pipes as [Socket, Socket];
    const result = collect(child);
    const echoed = readAll(fromChild);
    toChild.end('still usable');
    assert.equal((await echoed).toString(), 'still usable');
    const r = await result;
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^pipeWriter\(3\) InvalidArgumentError: descriptor 3 is not open for writing$/m);
    assert.match(r.stdout, /^pipeReader\(4\) InvalidArgumentError: descriptor 4 is not open for reading$/m);
  });
});
