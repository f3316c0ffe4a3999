// FIFOs (named pipes) between unrelated processes: mkfifo, the reader and
// writer opens, timeouts and AbortSignals, errors, the event loop and process
// lifetime, with compiled C peers and Node children on the other end.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, readFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import {
  mkfifo,
  mkfifoSync,
  openFifoReader,
  openFifoWriter,
  openFifoWriterSync,
  tryOpenFifoWriter,
  FrameReader,
  AlreadyExistsError,
  InvalidArgumentError,
  NotFoundError,
  PermissionError,
  TimeoutError,
} from 'interprocess';
import * as helpers from './helpers.js';
import { compilePeer, isRoot, NOBODY, spawnNode, tempDir, waitForLine, type RunResult } from './helpers.js';

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
const runNode = (code: string, args: string[] = [], options: SpawnOptions = {}): Promise<RunResult> =>
  collect(spawnNode(code, args, options));

/** Every test has a time limit, so a hang (a missing end of file) fails instead of stalling the run. */
const T = { timeout: 30_000 };

const tmp = tempDir('fifo');
after(() => tmp.cleanup());

let counter = 0;
/** A fresh path in this file's temporary directory. */
const fresh = (tag: string): string => join(tmp.dir, `${tag}-${++counter}`);
/** A fresh FIFO (mode 0o600). */
function newFifo(tag: string): string {
  const p = fresh(tag);
  mkfifoSync(p);
  return p;
}

/** Everything a stream yields until 'end'; rejects on 'error' or on 'close' without 'end'. */
function readAll(stream: Readable): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    let ended = false;
    stream.setEncoding('utf8');
    stream.on('data', (c: string) => (text += c));
    stream.on('end', () => {
      ended = true;
      resolve(text);
    });
    stream.on('error', reject);
    stream.on('close', () => {
      if (!ended) reject(new Error('stream closed without end of file'));
    });
  });
}

/** Resolves with the exit status, or kills the child and rejects after `ms`. */
function exitWithin(child: ChildProcess, ms: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((resolve, reject) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve({ code: child.exitCode, signal: child.signalCode });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`child ${child.pid} did not exit by itself within ${ms} ms`));
    }, ms);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal });
    });
  });
}

/** This process's umask, read without changing it. */
function umask(): number {
  const m = /^Umask:\s*([0-7]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'));
  assert.ok(m, 'no Umask line in /proc/self/status');
  return parseInt(m[1]!, 8);
}

const permissions = (p: string): number => statSync(p).mode & 0o777;

/** Checks an error's class and its Node-style fields. */
function isError(cls: abstract new (...a: never[]) => Error, fields: Record<string, unknown>) {
  return (e: unknown): boolean => {
    assert.ok(e instanceof cls, `expected ${cls.name}, got ${String(e)}`);
    for (const [k, v] of Object.entries(fields)) assert.equal((e as unknown as Record<string, unknown>)[k], v, `${k} of ${String(e)}`);
    return true;
  };
}

let cWriter: string;
let cReader: string;
before(async () => {
  [cWriter, cReader] = await Promise.all([compilePeer('fifo_writer'), compilePeer('fifo_reader')]);
});

describe('mkfifo', () => {
  test('mkfifo and mkfifoSync create a FIFO with mode 0o600 less the umask', T, async () => {
    const a = fresh('async');
    const s = fresh('sync');
    await mkfifo(a);
    mkfifoSync(s);
    for (const p of [a, s]) {
      assert.ok(statSync(p).isFIFO(), `${p} is not a FIFO`);
      assert.equal(permissions(p), 0o600 & ~umask());
    }
  });

  test('with umask 0: the default mode is exactly 0o600, an explicit mode is used as given', T, async () => {
    const dir = fresh('modes');
    mkdirSync(dir);
    const code = `
      import { mkfifo, mkfifoSync } from 'interprocess';
      import { statSync } from 'node:fs';
      process.umask(0);
      const d = process.argv[1];
      await mkfifo(d + '/a-default');
      mkfifoSync(d + '/s-default');
      await mkfifo(d + '/a-640', 0o640);
      mkfifoSync(d + '/s-666', 0o666);
      await mkfifo(new URL('file://' + d + '/url-604'), 0o604);
      for (const n of ['a-default', 's-default', 'a-640', 's-666', 'url-604']) {
        const st = statSync(d + '/' + n);
        console.log(n + ' ' + (st.isFIFO() ? 'fifo' : 'not-fifo') + ' ' + (st.mode & 0o777).toString(8));
      }
    `;
    const r = await runNode(code, [dir]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, ['a-default fifo 600', 's-default fifo 600', 'a-640 fifo 640', 's-666 fifo 666', 'url-604 fifo 604', ''].join('\n'));
  });

  test('an existing path: AlreadyExistsError with code, errno, syscall and path', T, async () => {
    const p = newFifo('exists');
    const file = fresh('file');
    writeFileSync(file, 'not a fifo');
    for (const q of [p, file]) {
      const expected = isError(AlreadyExistsError, { code: 'EEXIST', errno: -17, syscall: 'mkfifo', path: q });
      await assert.rejects(mkfifo(q), expected);
      assert.throws(() => mkfifoSync(q), expected);
    }
    assert.equal(readFileSync(file, 'utf8'), 'not a fifo');
  });

  test('a missing directory: NotFoundError', T, async () => {
    const p = join(tmp.dir, 'no-such-dir', 'f');
    const expected = isError(NotFoundError, { code: 'ENOENT', errno: -2, syscall: 'mkfifo', path: p });
    await assert.rejects(mkfifo(p), expected);
    assert.throws(() => mkfifoSync(p), expected);
  });

  test('bad modes and paths are rejected before any system call', T, async () => {
    for (const mode of [-1, 0o1000, 1.5, '600']) {
      await assert.rejects(mkfifo(fresh('mode'), mode as number), InvalidArgumentError);
      assert.throws(() => mkfifoSync(fresh('mode'), mode as number), InvalidArgumentError);
    }
    for (const p of ['', 'a\0b', 42]) assert.throws(() => mkfifoSync(p as string), InvalidArgumentError);
  });
});

describe('the tutorial between processes', () => {
  test('openFifoReader returns at once with no writer; a C writer\'s "Hello, FIFO" arrives, then end of file', T, async () => {
    const p = newFifo('c-writer');
    const start = performance.now();
    const reader = openFifoReader(p);
    assert.ok(performance.now() - start < 1000, 'openFifoReader waited for a writer');
    const text = readAll(reader);
    // The C writer's blocking open() returns at once: the reader is already there.
    const r = await run(cWriter, [p]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'opening\nwrote 11 bytes\n');
    assert.equal(await text, 'Hello, FIFO');
  });

  test('a C writer waiting in its blocking open() is released by openFifoReader', T, async () => {
    const p = newFifo('c-writer-first');
    const writer = spawn(cWriter, [p, 'written before the reader came'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const result = collect(writer);
    await waitForLine(writer, /^opening$/);
    const text = readAll(openFifoReader(p));
    const r = await result;
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await text, 'written before the reader came');
  });

  test('openFifoWriter waits for a C reader in a blocking open() without blocking the event loop', T, async () => {
    const p = newFifo('c-reader');
    // The waiting writer runs in a child, so an implementation that blocked
    // its thread fails this test (no "ticks" line) instead of hanging the run.
    const code = `
      import { openFifoWriter } from 'interprocess';
      let ticks = 0;
      const timer = setInterval(() => { if (++ticks === 10) console.log('still waiting after 10 ticks'); }, 5);
      const writer = await openFifoWriter(process.argv[1], { timeout: 20000 });
      clearInterval(timer);
      console.log('opened after ' + ticks + ' ticks');
      writer.end('Hello, FIFO');
    `;
    const writer = spawnNode(code, [p]);
    const writerDone = collect(writer);
    await waitForLine(writer, /^still waiting after 10 ticks$/);
    const reader = await run(cReader, [p]);
    assert.equal(reader.code, 0, reader.stderr);
    assert.equal(reader.stdout, 'opening\nReceived: Hello, FIFO\n');
    const w = await writerDone;
    assert.equal(w.code, 0, w.stderr);
    const ticks = Number(/^opened after (\d+) ticks$/m.exec(w.stdout)?.[1]);
    assert.ok(ticks >= 10, `the writer opened after ${ticks} ticks, before any reader came:\n${w.stdout}`);
  });

  test('openFifoWriter waits for a Node reader in another process', T, async () => {
    const p = newFifo('node-reader');
    let opened = false;
    const pending = openFifoWriter(p, { timeout: 20000 }).then((w) => {
      opened = true;
      return w;
    });
    const code = `
      import { openFifoReader } from 'interprocess';
      let text = '';
      for await (const chunk of openFifoReader(process.argv[1])) text += chunk;
      console.log('Received: ' + text);
    `;
    // The writer cannot have opened yet: nobody has the FIFO open for reading.
    assert.equal(tryOpenFifoWriter(p), undefined);
    assert.equal(opened, false);
    const child = spawnNode(code, [p]);
    const result = collect(child);
    const writer = await pending;
    writer.end('Hello, FIFO');
    const r = await result;
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'Received: Hello, FIFO\n');
  });

  test('a Node writer in another process reaches a Node reader here', T, async () => {
    const p = newFifo('node-writer');
    const reader = openFifoReader(p);
    const text = readAll(reader);
    const r = await runNode(
      `import { openFifoWriter } from 'interprocess';
       (await openFifoWriter(process.argv[1], { timeout: 20000 })).end('from pid ' + process.pid);`,
      [p],
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(await text, /^from pid \d+$/);
    assert.notEqual(await text, `from pid ${process.pid}`);
  });
});

describe('descriptors and children', () => {
  test('a child spawned while a FIFO is open does not inherit it: the reader still sees end of file', T, async () => {
    const p = newFifo('cloexec');
    const reader = openFifoReader(p);
    const text = readAll(reader);
    const writer = await openFifoWriter(p, { timeout: 5000 });
    // A child that outlives the writer. If it had inherited the write end, the
    // FIFO would keep a writer and the reader would never see end of file.
    const child = spawnNode(`console.log('started'); setTimeout(() => {}, 60000);`);
    const done = collect(child);
    try {
      await waitForLine(child, /^started$/);
      writer.end('no leak');
      assert.equal(await text, 'no leak');
      assert.equal(child.exitCode, null);
    } finally {
      child.kill();
      await done;
    }
  });
});

describe('tryOpenFifoWriter', () => {
  test('returns undefined while nobody reads, a working stream once a reader (another process) has the FIFO open', T, async () => {
    const p = newFifo('try');
    assert.equal(tryOpenFifoWriter(p), undefined);
    assert.equal(tryOpenFifoWriter(p), undefined, 'a failed try must not leave the FIFO half-open');
    const child = spawnNode(
      `import { openFifoReader } from 'interprocess';
       const r = openFifoReader(process.argv[1]);
       console.log('open');
       let text = '';
       for await (const c of r) text += c;
       console.log('Received: ' + text);`,
      [p],
    );
    const result = collect(child);
    await waitForLine(child, /^open$/);
    const writer = tryOpenFifoWriter(p);
    assert.ok(writer, 'no stream although a reader has the FIFO open');
    writer.end('Hello, FIFO');
    const r = await result;
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^Received: Hello, FIFO$/m);
  });

  test('a reader in this process counts too', T, async () => {
    const p = newFifo('try-here');
    const reader = openFifoReader(p);
    const text = readAll(reader);
    const writer = tryOpenFifoWriter(p);
    assert.ok(writer);
    writer.end('same process');
    assert.equal(await text, 'same process');
  });
});

describe('timeouts and AbortSignal', () => {
  test('openFifoWriter with no reader rejects with TimeoutError after about the timeout, the loop running meanwhile', T, async () => {
    const p = newFifo('timeout');
    let ticks = 0;
    const timer = setInterval(() => ticks++, 5);
    const start = performance.now();
    try {
      await assert.rejects(
        openFifoWriter(p, { timeout: 100 }),
        isError(TimeoutError, { code: 'ETIMEDOUT', errno: -110, syscall: 'open', path: p }),
      );
    } finally {
      clearInterval(timer);
    }
    const elapsed = performance.now() - start;
    assert.ok(elapsed >= 95, `rejected after ${elapsed.toFixed(1)} ms, before the timeout`);
    assert.ok(elapsed < 3000, `rejected only after ${elapsed.toFixed(1)} ms`);
    assert.ok(ticks >= 2, `only ${ticks} interval ticks during a 100 ms wait`);
  });

  test('openFifoWriterSync with no reader throws TimeoutError after about the timeout', T, () => {
    const p = newFifo('timeout-sync');
    const start = performance.now();
    assert.throws(() => openFifoWriterSync(p, { timeout: 100 }), isError(TimeoutError, { code: 'ETIMEDOUT', syscall: 'open', path: p }));
    const elapsed = performance.now() - start;
    assert.ok(elapsed >= 95 && elapsed < 3000, `threw after ${elapsed.toFixed(1)} ms`);
  });

  test('timeout 0 tries once: fails at once without a reader, succeeds with one', T, async () => {
    const p = newFifo('timeout-0');
    await assert.rejects(openFifoWriter(p, { timeout: 0 }), TimeoutError);
    assert.throws(() => openFifoWriterSync(p, { timeout: 0 }), TimeoutError);
    const reader = openFifoReader(p);
    const text = readAll(reader);
    const a = await openFifoWriter(p, { timeout: 0 });
    const b = openFifoWriterSync(p, { timeout: 0 });
    await new Promise<void>((resolve) => a.end('a', () => resolve()));
    b.end('b');
    assert.equal(await text, 'ab');
  });

  test('openFifoWriterSync returns once a reader in another process opens', T, async () => {
    const p = newFifo('sync-open');
    // The reader starts first; the synchronous wait then blocks this thread
    // only until the child has opened its end.
    const child = spawnNode(
      `import { openFifoReader } from 'interprocess';
       const r = openFifoReader(process.argv[1]);
       console.log('open');
       let text = '';
       for await (const c of r) text += c;
       console.log('Received: ' + text);`,
      [p],
    );
    const result = collect(child);
    await waitForLine(child, /^open$/);
    const writer = openFifoWriterSync(p, { timeout: 20000 });
    writer.end('Hello, FIFO');
    const r = await result;
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^Received: Hello, FIFO$/m);
  });

  test('an already-aborted signal rejects at once with AbortError, even when a reader is there', T, async () => {
    const p = newFifo('aborted');
    const reason = new Error('changed my mind');
    const expected = (e: unknown): boolean => {
      assert.ok(e instanceof Error);
      assert.equal(e.name, 'AbortError');
      assert.equal((e as NodeJS.ErrnoException).code, 'ABORT_ERR');
      assert.equal(e.cause, reason);
      return true;
    };
    const start = performance.now();
    await assert.rejects(openFifoWriter(p, { signal: AbortSignal.abort(reason) }), expected);
    assert.ok(performance.now() - start < 1000);
    const reader = openFifoReader(p);
    try {
      await assert.rejects(openFifoWriter(p, { signal: AbortSignal.abort(reason) }), expected);
    } finally {
      reader.destroy();
    }
  });

  test('aborting while openFifoWriter waits rejects promptly', T, async () => {
    const p = newFifo('abort-wait');
    const ac = new AbortController();
    const reason = new Error('stop waiting');
    let abortedAt = 0;
    const pending = openFifoWriter(p, { signal: ac.signal });
    // Abort once the writer has been waiting for a few timer turns.
    let ticks = 0;
    const timer = setInterval(() => {
      if (++ticks === 5) {
        clearInterval(timer);
        abortedAt = performance.now();
        ac.abort(reason);
      }
    }, 5);
    await assert.rejects(pending, (e: unknown) => {
      assert.ok(e instanceof Error);
      assert.equal(e.name, 'AbortError');
      assert.equal((e as NodeJS.ErrnoException).code, 'ABORT_ERR');
      assert.equal(e.cause, reason);
      return true;
    });
    const late = performance.now() - abortedAt;
    assert.ok(abortedAt > 0 && late < 500, `rejected ${late.toFixed(1)} ms after the abort`);
  });

  test('a FIFO removed while openFifoWriter waits: NotFoundError', T, async () => {
    const p = newFifo('removed');
    const pending = openFifoWriter(p, { timeout: 20000 });
    let ticks = 0;
    const timer = setInterval(() => {
      if (++ticks === 3) {
        clearInterval(timer);
        unlinkSync(p);
      }
    }, 5);
    await assert.rejects(pending, isError(NotFoundError, { code: 'ENOENT', path: p }));
  });

  test('options are checked, and an aborted signal honoured, before the path is looked at', T, async () => {
    const missing = fresh('never-created');
    const reason = new Error('no');
    await assert.rejects(openFifoWriter(missing, { signal: AbortSignal.abort(reason) }), (e: unknown) => {
      assert.ok(e instanceof Error);
      assert.equal(e.name, 'AbortError');
      assert.equal(e.cause, reason);
      return true;
    });
    await assert.rejects(openFifoWriter(missing, { timeout: -1 }), InvalidArgumentError);
    assert.throws(() => openFifoWriterSync(missing, { timeout: -1 }), InvalidArgumentError);
  });

  test('bad timeout and signal options are rejected', T, async () => {
    const p = newFifo('bad-options');
    await assert.rejects(openFifoWriter(p, { timeout: -1 }), InvalidArgumentError);
    await assert.rejects(openFifoWriter(p, { timeout: NaN }), InvalidArgumentError);
    await assert.rejects(openFifoWriter(p, { signal: {} as AbortSignal }), InvalidArgumentError);
    assert.throws(() => openFifoWriterSync(p, { timeout: -1 }), InvalidArgumentError);
  });
});

describe('errors', () => {
  test('a regular file or a directory is not a FIFO: InvalidArgumentError, for readers and writers', T, async () => {
    const file = fresh('regular');
    writeFileSync(file, '');
    const dir = fresh('directory');
    mkdirSync(dir);
    for (const p of [file, dir]) {
      const expected = isError(InvalidArgumentError, { code: 'EINVAL', errno: -22, syscall: 'open', path: p });
      assert.throws(() => openFifoReader(p), expected);
      assert.throws(() => tryOpenFifoWriter(p), expected);
      await assert.rejects(openFifoWriter(p, { timeout: 1000 }), expected);
      assert.throws(() => openFifoWriterSync(p, { timeout: 1000 }), expected);
    }
    assert.throws(() => openFifoReader(file), /not a FIFO \(it is a regular file\)/);
    assert.throws(() => openFifoReader(dir), /not a FIFO \(it is a directory\)/);
  });

  test('a missing path: NotFoundError, for readers and writers', T, async () => {
    const p = fresh('missing');
    const expected = isError(NotFoundError, { code: 'ENOENT', errno: -2, path: p });
    assert.throws(() => openFifoReader(p), expected);
    assert.throws(() => tryOpenFifoWriter(p), expected);
    await assert.rejects(openFifoWriter(p, { timeout: 1000 }), expected);
    assert.throws(() => openFifoWriterSync(p, { timeout: 1000 }), expected);
  });

  test('no permission: PermissionError, for readers and writers', T, async () => {
    const p = newFifo('denied');
    const code = `
      import { openFifoReader, tryOpenFifoWriter, openFifoWriter, openFifoWriterSync } from 'interprocess';
      const p = process.argv[1];
      const attempts = {
        openFifoReader: async () => openFifoReader(p),
        tryOpenFifoWriter: async () => tryOpenFifoWriter(p),
        openFifoWriter: () => openFifoWriter(p, { timeout: 1000 }),
        openFifoWriterSync: async () => openFifoWriterSync(p, { timeout: 1000 }),
      };
      const out = {};
      for (const [name, fn] of Object.entries(attempts)) {
        try { const s = await fn(); out[name] = 'opened'; s?.destroy(); }
        catch (e) { out[name] = { name: e.name, code: e.code, errno: e.errno, syscall: e.syscall, path: e.path }; }
      }
      console.log(JSON.stringify(out));
    `;
    let r;
    if (isRoot) {
      // Root may open anything: ask as nobody, who can reach the FIFO
      // (the directory is traversable) but not open it (mode 0o600, owner root).
      chmodSync(tmp.dir, 0o755);
      chmodSync(p, 0o600);
      r = await runNode(code, [p], { uid: NOBODY, gid: NOBODY });
    } else {
      chmodSync(p, 0);
      r = await runNode(code, [p]);
    }
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as Record<string, unknown>;
    const denied = { name: PermissionError.name, code: 'EACCES', errno: -13, syscall: 'open', path: p };
    assert.deepEqual(out, { openFifoReader: denied, tryOpenFifoWriter: denied, openFifoWriter: denied, openFifoWriterSync: denied });
  });
});

describe('process lifetime', () => {
  // Each child does its work and then must exit on its own, with no
  // process.exit(): an open or half-closed FIFO handle must not keep it alive.
  // [what the child does, its code, what it must print]
  const cases: Array<[string, string, string]> = [
    [
      'reader first, then writer; the writer ends, the reader reads to end of file',
      `const r = openFifoReader(p);
       const w = await openFifoWriter(p, { timeout: 5000 });
       let text = '';
       r.setEncoding('utf8').on('data', (d) => (text += d)).on('end', () => console.log('Received: ' + text));
       w.end('ping');`,
      'Received: ping\n',
    ],
    [
      'writer first (waiting), then reader; the writer ends',
      `const pending = openFifoWriter(p, { timeout: 5000 });
       const r = openFifoReader(p);
       const w = await pending;
       let text = '';
       r.setEncoding('utf8').on('data', (d) => (text += d)).on('end', () => console.log('Received: ' + text));
       w.end('ping');`,
      'Received: ping\n',
    ],
    [
      'the reader is destroyed after the message while the writer is open, then the writer',
      `const r = openFifoReader(p);
       const w = tryOpenFifoWriter(p);
       r.setEncoding('utf8').once('data', (d) => {
         console.log('Received: ' + d);
         r.destroy();
         w.destroy();
       });
       w.write('ping');`,
      'Received: ping\n',
    ],
    [
      'a reader opened, reading, and destroyed with no writer ever',
      `const r = openFifoReader(p);
       r.on('data', () => console.log('unexpected data')).on('end', () => console.log('unexpected end'));
       r.on('close', () => console.log('closed'));
       setImmediate(() => r.destroy());`,
      'closed\n',
    ],
    [
      'a wait for a reader that is aborted',
      `const ac = new AbortController();
       const pending = openFifoWriter(p, { signal: ac.signal });
       setTimeout(() => ac.abort(), 20);
       try { await pending; console.log('opened?'); } catch (e) { console.log(e.name); }`,
      'AbortError\n',
    ],
    [
      'a wait for a reader that times out',
      `try { await openFifoWriter(p, { timeout: 20 }); console.log('opened?'); } catch (e) { console.log(e.name); }`,
      'TimeoutError\n',
    ],
    [
      'a synchronous writer and a reader in the same process',
      `const r = openFifoReader(p);
       const w = openFifoWriterSync(p, { timeout: 5000 });
       let text = '';
       r.setEncoding('utf8').on('data', (d) => (text += d)).on('end', () => console.log('Received: ' + text));
       w.end('ping');`,
      'Received: ping\n',
    ],
  ];
  for (const [name, body, expected] of cases) {
    test(name, T, async () => {
      const p = newFifo('alive');
      const child = spawnNode(
        `import { openFifoReader, openFifoWriter, openFifoWriterSync, tryOpenFifoWriter } from 'interprocess';
         const p = process.argv[1];
         ${body}`,
        [p],
      );
      const result = collect(child);
      const { code } = await exitWithin(child, 8000);
      const r = await result;
      assert.equal(code, 0, r.stderr);
      assert.equal(r.stdout, expected);
    });
  }
});

test('framing over a FIFO: 1000 frames of random sizes from another process arrive whole and in order', T, async () => {
  const p = newFifo('frames');
  const reader = openFifoReader(p);
  const frames = new FrameReader(reader);
  // Each frame: 4-byte sequence number, SHA-256 of the body, then the body.
  // Most bodies are small; every 40th is larger than the pipe's buffer.
  const child = spawnNode(
    `import { openFifoWriter, writeFrame } from 'interprocess';
     import { createHash, randomBytes, randomInt } from 'node:crypto';
     const w = await openFifoWriter(process.argv[1], { timeout: 20000 });
     let bytes = 0;
     for (let i = 0; i < 1000; i++) {
       const size = i % 40 === 7 ? randomInt(65536, 200000) : i % 100 === 3 ? 0 : randomInt(1, 4000);
       const body = randomBytes(size);
       const head = Buffer.alloc(4);
       head.writeUInt32BE(i);
       const frame = Buffer.concat([head, createHash('sha256').update(body).digest(), body]);
       bytes += frame.length;
       await writeFrame(w, frame);
     }
     w.end(() => console.log('sent 1000 frames, ' + bytes + ' payload bytes'));`,
    [p],
  );
  const result = collect(child);
  let n = 0;
  let bytes = 0;
  for await (const frame of frames) {
    assert.ok(frame.length >= 36, `frame ${n} has only ${frame.length} bytes`);
    assert.equal(frame.readUInt32BE(0), n, 'frames out of order');
    const body = frame.subarray(36);
    assert.ok(createHash('sha256').update(body).digest().equals(frame.subarray(4, 36)), `frame ${n} corrupted`);
    n++;
    bytes += frame.length;
  }
  assert.equal(n, 1000);
  const r = await result;
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, `sent 1000 frames, ${bytes} payload bytes\n`);
});
