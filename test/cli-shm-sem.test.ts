/**
 * `interprocess shm ...` and `interprocess sem ...`, driven as a shell script
 * would: the built CLI spawned, its stdout bytes and exit status checked
 * against real kernel objects, the real `hexdump -C`, and a C program
 * (test/peers/shm_bytes_peer.c) reading and writing the same memory.
 *
 * Every test removes what it made (t.after), pass or fail; the last hook
 * checks that nothing made by this file is left.
 */
import { describe, test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { posix, sysv, IpcError } from 'interprocess';
import { compilePeer, killOnExit, root, shmEntries, tempDir, uniqueName, until, withTimeout } from './helpers.js';

type TestContext = { after(fn: () => void | Promise<void>): void };

const cliPath = join(root, 'dist', 'cli', 'main.js');
const bytesPeer = compilePeer('shm_bytes_peer');
const holdPeer = compilePeer('shm_sysv_peer');
const tmp = tempDir('cli-shm-sem');
after(() => tmp.cleanup());

interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: string;
  pid: number;
  ms: number;
}

/** Collects a CLI process: stdout as bytes (it may be binary). */
function finish(child: ChildProcess): Promise<CliResult> {
  const start = performance.now();
  const out: Buffer[] = [];
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => out.push(d));
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  return withTimeout(
    new Promise<CliResult>((resolve, reject) => {
      child.on('error', reject);
      child.on('close', (code, signal) => resolve({ code, signal, stdout: Buffer.concat(out), stderr, pid: child.pid!, ms: performance.now() - start }));
    }),
    15_000,
    `interprocess ${child.spawnargs.slice(2).join(' ')} exits`,
    () => child.kill('SIGKILL'),
  );
}

function start(args: string[]): ChildProcess {
  return spawn(process.execPath, [cliPath, ...args], { cwd: root, stdio: ['pipe', 'pipe', 'pipe'] });
}

/** Runs `interprocess ARGS`, with `input` on stdin (default: stdin closed at once). */
function cli(args: string[], input?: Buffer | string): Promise<CliResult> {
  const child = start(args);
  child.stdin!.end(input);
  return finish(child);
}

/** Runs it, expecting success; returns stdout as text. */
async function ok(args: string[], input?: Buffer | string): Promise<string> {
  const r = await cli(args, input);
  assert.equal(r.code, 0, `interprocess ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  assert.equal(r.stderr, '', `interprocess ${args.join(' ')} wrote to stderr`);
  return r.stdout.toString();
}

/** A failure as a script sees it: the exit status, one line `interprocess: ...`, no stack trace, nothing on stdout. */
function failed(r: CliResult, code: number, message: RegExp, what: string): void {
  assert.equal(r.code, code, `${what}: exit ${r.code} (want ${code}), stderr: ${r.stderr}`);
  assert.match(r.stderr, /^interprocess: [^\n]+\n$/, `${what}: one line on stderr, got: ${JSON.stringify(r.stderr)}`);
  assert.match(r.stderr, message, what);
  assert.doesNotMatch(r.stderr, /\n\s+at |Error:/, `${what}: no stack trace`);
  assert.equal(r.stdout.length, 0, `${what}: nothing on stdout`);
}

async function fails(args: string[], code: number, message: RegExp): Promise<void> {
  failed(await cli(args), code, message, `interprocess ${args.join(' ')}`);
}

// ---- objects and their cleanup ----------------------------------------------

const gone = (err: unknown): boolean => err instanceof IpcError && (err.code === 'ENOENT' || err.code === 'EINVAL' || err.code === 'EIDRM');

function quietly(fn: () => void): void {
  try {
    fn();
  } catch (err) {
    if (!gone(err)) throw err;
  }
}

/** A POSIX shared memory name, unlinked when the test ends. */
function shmName(t: TestContext, tag: string): string {
  const name = uniqueName(tag);
  t.after(() => quietly(() => posix.SharedMemory.unlink(name)));
  return name;
}

/** A POSIX semaphore name, unlinked when the test ends. */
function semName(t: TestContext, tag: string): string {
  const name = uniqueName(tag);
  t.after(() => quietly(() => posix.Semaphore.unlink(name)));
  return name;
}

const usedKeys = new Set<number>();
function procKeys(kind: 'shm' | 'sem'): Map<number, number> {
  const rows = readFileSync(`/proc/sysvipc/${kind}`, 'utf8').trim().split('\n').slice(1);
  return new Map(rows.filter(Boolean).map((l) => l.trim().split(/\s+/).map(Number) as [number, number]));
}

/**
 * A System V key nobody uses, as the CLI writes it (0x...); whatever has this
 * key when the test ends (segment or set) is removed.
 */
function sysvKey(t: TestContext): string {
  let key: number;
  do key = 0x7c000000 + randomInt(0xffffff);
  while (usedKeys.has(key) || procKeys('shm').has(key) || procKeys('sem').has(key));
  usedKeys.add(key);
  t.after(() => {
    const shm = procKeys('shm').get(key);
    if (shm !== undefined) quietly(() => sysv.SharedMemory.remove(shm));
    const sem = procKeys('sem').get(key);
    if (sem !== undefined) quietly(() => sysv.SemaphoreSet.remove(sem));
  });
  return `0x${key.toString(16)}`;
}

/** The id from ipcmk-style output ("Shared memory id: 123"); removed when the test ends. */
function idFrom(t: TestContext, output: string, kind: 'shm' | 'sem'): number {
  const m = /^(Shared memory|Semaphore) id: (\d+)\n$/.exec(output);
  assert.ok(m, `ipcmk-style output, got ${JSON.stringify(output)}`);
  const id = Number(m[2]);
  t.after(() => quietly(() => (kind === 'shm' ? sysv.SharedMemory.remove(id) : sysv.SemaphoreSet.remove(id))));
  return id;
}

/** The bytes shm_bytes_peer.c writes for a seed (xorshift32, low byte). */
function pattern(size: number, seed: number): Buffer {
  const b = Buffer.alloc(size);
  let x = seed >>> 0;
  for (let i = 0; i < size; i++) {
    x = (x ^ (x << 13)) >>> 0;
    x = (x ^ (x >>> 17)) >>> 0;
    x = (x ^ (x << 5)) >>> 0;
    b[i] = x & 0xff;
  }
  return b;
}

async function peer(args: string[]): Promise<CliResult> {
  const child = spawn(await bytesPeer, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const r = await finish(child);
  assert.equal(r.code, 0, `shm_bytes_peer ${args.join(' ')}: ${r.stderr}`);
  return r;
}

/** The same bytes through the real `hexdump -C` (a file holding them, same -s and -n). */
async function realHexdump(bytes: Buffer, args: string[] = []): Promise<string> {
  const file = join(tmp.dir, `hexdump-${randomInt(1e9)}`);
  writeFileSync(file, bytes);
  const child = spawn('hexdump', ['-C', ...args, file], { stdio: ['ignore', 'pipe', 'pipe'] });
  const r = await finish(child);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.toString();
}

const semValue = (name: string): number => {
  const s = posix.Semaphore.open(name);
  try {
    return s.value;
  } finally {
    s.close();
  }
};

const setOf = (id: number): sysv.SemaphoreSet => sysv.SemaphoreSet.fromId(id);

/** Objects made with the library, for tests whose subject is another verb. */
function posixShm(t: TestContext, tag: string, size: number): { name: string; bytes: Uint8Array } {
  const name = shmName(t, tag);
  const shm = posix.SharedMemory.create(name, { size });
  t.after(() => shm.close());
  return { name, bytes: new Uint8Array(shm.buffer) };
}

function sysvShm(t: TestContext, size: number): { key: string; id: number; bytes: Uint8Array } {
  const key = sysvKey(t);
  const shm = sysv.SharedMemory.create({ key: Number(key), size });
  t.after(() => shm.close());
  return { key, id: shm.id, bytes: new Uint8Array(shm.buffer) };
}

function posixSem(t: TestContext, tag: string, value = 0): string {
  const name = semName(t, tag);
  posix.Semaphore.create(name, { value }).close();
  return name;
}

function sysvSet(t: TestContext, count = 1, value = 0): { key: string; id: number } {
  const key = sysvKey(t);
  const set = sysv.SemaphoreSet.create({ key: Number(key), count, value });
  set.close();
  return { key, id: set.id };
}

// Tests run a few at a time: each spends most of its time waiting for Node to
// start the CLI, and their objects have names and keys of their own.
describe('interprocess shm and sem', { concurrency: 4 }, () => {
  // ---- shared memory ------------------------------------------------------------

  test('shm on a POSIX object: create, write at offsets, read ranges, stat, and no silent growth', async (t) => {
    const name = shmName(t, 'shm');
    assert.equal(await ok(['shm', 'create', name, '--size', '1K', '--mode', '640']), '');
    const [json, text] = await Promise.all([
      ok(['shm', 'stat', name, '--json']),
      ok(['shm', 'stat', name]),
      ok(['shm', 'write', name, 'hello']),
      ok(['shm', 'write', name, 'world', '--offset', '0x10']),
      ok(['shm', 'write', name, '--offset', '1020', '--hex', 'de ad:be ef']),
    ]);
    const st = JSON.parse(json!) as Record<string, unknown>;
    assert.deepEqual([st['size'], st['mode'], st['uid'], st['path']], [1024, 0o640, process.getuid!(), `/dev/shm${name}`]);
    assert.match(text!, new RegExp(`^POSIX shared memory ${name} .*\\nuid=\\d+\\tgid=\\d+\\nmode=0640\\nbytes=1024\\n`));

    const [all, part, last, tooLong, fromStdin, readPast, larger] = await Promise.all([
      cli(['shm', 'read', name]),
      cli(['shm', 'read', name, '--offset', '16', '--length', '5']),
      cli(['shm', 'write', name, 'Z', '--offset', '1023']), // the last byte fits
      cli(['shm', 'write', name, 'XY', '--offset', '1023']), // one more does not
      cli(['shm', 'write', name], Buffer.alloc(1025, 0x41)),
      cli(['shm', 'read', name, '--offset', '1000', '--length', '25']),
      cli(['shm', 'create', name, '--size', '2K']), // exists, and smaller: not resized
    ]);
    assert.equal(all!.stdout.length, 1024);
    assert.equal(all!.stdout.subarray(0, 21).toString('latin1'), 'hello\0\0\0\0\0\0\0\0\0\0\0world');
    assert.equal(part!.stdout.toString(), 'world');
    assert.deepEqual([...all!.stdout.subarray(1020, 1023)], [0xde, 0xad, 0xbe]);
    assert.equal(last!.code, 0, last!.stderr);
    failed(tooLong!, 1, /2 bytes do not fit in .*: 1 bytes from offset 1023 .*nothing was written/, 'write past the end');
    failed(fromStdin!, 1, /do not fit .*nothing was written/, 'stdin past the end');
    failed(readPast!, 1, /25 bytes from offset 1000 go past the end of .* \(1024 bytes; at most 24/, 'read past the end');
    failed(larger!, 1, /exists with 1024 bytes, fewer than --size 2048/, 'create larger');

    const shm = posix.SharedMemory.open(name, { readOnly: true });
    t.after(() => shm.close());
    assert.equal(shm.size, 1024, 'never resized');
    assert.deepEqual([...new Uint8Array(shm.buffer, 1020)], [0xde, 0xad, 0xbe, 0x5a], 'the refused writes wrote nothing');
    assert.deepEqual([...new Uint8Array(shm.buffer, 0, 1024)].filter((b) => b === 0x41), [], 'nothing of the refused stdin');
  });

  test('shm on a System V segment: ipcmk-style create, by key and by id, stat as ipcs -m -i', async (t) => {
    const key = sysvKey(t);
    const created = await cli(['shm', 'create', key, '--size', '100']);
    assert.equal(created.code, 0, created.stderr);
    const id = idFrom(t, created.stdout.toString(), 'shm');
    assert.equal(procKeys('shm').get(Number(key)), id, 'the id printed is the key\'s segment');
    await ok(['shm', 'write', key, 'by key']);

    // A C peer holding it attached shows in nattch; stat itself does not attach.
    const holder = killOnExit(t, spawn(await holdPeer, ['hold', String(id)], { stdio: ['pipe', 'pipe', 'inherit'] }));
    await new Promise((resolve) => holder.stdout!.once('data', resolve));
    // stat alone first: the commands below attach the segment while they run, which nattch would count.
    const text = await cli(['shm', 'stat', key]);
    const [byId, reopened, larger, priv] = await Promise.all([
      cli(['shm', 'read', `id:${id}`]),
      cli(['shm', 'create', key, '--size', '50']),
      cli(['shm', 'create', key, '--size', '4096']),
      cli(['shm', 'create', '--private', '--size', '64']),
    ]);
    // Removed after the test whatever the assertions below say (idFrom registers it).
    const privId = idFrom(t, priv!.stdout.toString(), 'shm');
    assert.equal(byId!.stdout.length, 100, 'the segment\'s size, not a page');
    assert.equal(byId!.stdout.subarray(0, 7).toString(), 'by key\0');
    assert.match(text!.stdout.toString(), new RegExp(`^Shared memory Segment shmid=${id}\\nkey=${key}\\n`));
    assert.match(text!.stdout.toString(), new RegExp(`\\nmode=0600\\taccess_perms=0600\\nbytes=100\\tlpid=\\d+\\tcpid=${created.pid}\\tnattch=1\\n`));
    assert.match(text!.stdout.toString(), /\natt_time=\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}\ndet_time=.*\nchange_time=/);
    assert.equal(reopened!.stdout.toString(), `Shared memory id: ${id}\n`, 'an existing segment is opened');
    failed(larger!, 1, new RegExp(`segment ${id} with key ${key} exists with 100 bytes, fewer than --size 4096`), 'larger');
    assert.deepEqual([sysv.SharedMemory.stat(privId).key, sysv.SharedMemory.stat(privId).size], [0, 64]);

    holder.stdin!.end();
    await new Promise((resolve) => holder.on('exit', resolve));
    const st = JSON.parse(await ok(['shm', 'stat', String(id), '--json'])) as Record<string, unknown>;
    assert.deepEqual([st['id'], st['key'], st['size'], st['nattch'], st['cpid'], st['lpid'], st['dest']], [id, key, 100, 0, created.pid, holder.pid, false]);
  });

  test('all 256 byte values go in through stdin and come out of shm read unchanged', async (t) => {
    const bytes = Buffer.concat([Buffer.from([...Array(256).keys()]), Buffer.from([...Array(256).keys()].reverse()), Buffer.from('\n\r\0end')]);
    const hex = Buffer.from([...Array(256).keys()].reverse());
    const size = 600 + hex.length;
    await Promise.all(
      // System V: the C peer test below moves random megabytes both ways.
      [posixShm(t, 'bin', size).name].map(async (target) => {
        await Promise.all([ok(['shm', 'write', target, '--offset', '10'], bytes), ok(['shm', 'write', target, '--hex', '--offset', '600'], hex.toString('hex').replace(/(..)/g, '$1 '))]);
        const r = await cli(['shm', 'read', target]);
        assert.equal(r.code, 0, r.stderr);
        assert.ok(r.stdout.subarray(10, 10 + bytes.length).equals(bytes), `${target}: raw bytes differ`);
        assert.ok(r.stdout.subarray(600).equals(hex), `${target}: --hex bytes differ`);
      }),
    );
  });

  test('shm hexdump is byte for byte the output of hexdump -C, "*" runs and partial lines included', async (t) => {
    // Text, then a run of equal lines, then random bytes; 16 * 20 + 7 bytes.
    const bytes = Buffer.alloc(16 * 20 + 7);
    bytes.write('interprocess shm hexdump\ttest\x7f\x80\xff', 0, 'latin1');
    bytes.fill(0x41, 48, 48 + 16 * 6);
    randomBytes(16 * 8).copy(bytes, 16 * 12);
    const p = posixShm(t, 'hex', bytes.length);
    const s = sysvShm(t, bytes.length);
    p.bytes.set(bytes);
    s.bytes.set(bytes);

    const cases: [string[], string[]][] = [
      [[], []],
      [['--offset', '3', '--length', '70'], ['-s', '3', '-n', '70']],
      [['--offset', '0x30', '--length', '96'], ['-s', '48', '-n', '96']], // one line, repeated
      [['--offset', '45', '--length', '77'], ['-s', '45', '-n', '77']], // a run of equal lines, then a partial one
      [['--offset', String(bytes.length)], ['-s', String(bytes.length)]], // nothing left: the offset alone
      [['--length', '0'], ['-n', '0']],
    ];
    const [ours, sysvWhole, sysvPart, theirs] = await Promise.all([
      Promise.all(cases.map(([args]) => ok(['shm', 'hexdump', p.name, ...args]))),
      ok(['shm', 'hexdump', s.key]),
      ok(['shm', 'hexdump', String(s.id), ...cases[3]![0]]),
      Promise.all(cases.map(([, args]) => realHexdump(bytes, args))),
    ]);
    cases.forEach(([args], i) => assert.equal(ours[i], theirs[i], args.join(' ') || 'whole object'));
    assert.equal(sysvWhole, theirs[0], 'System V, whole segment');
    assert.equal(sysvPart, theirs[3], 'System V, a range');
    assert.match(theirs[0]!, /^\*$/m, 'the case with equal lines has a "*" line');
    assert.match(theirs[0]!, /\n00000140  [^\n]+\|\n00000147\n$/, 'a partial last line and the end offset');
  });

  test('a C program writes the memory and the CLI reads the exact bytes, and the other way, streamed past one chunk', async (t) => {
    // Over 2 MiB (the CLI copies 1 MiB at a time), not a multiple of a page.
    const size = 2 * 1024 * 1024 + 4099;
    const p = posixShm(t, 'c', size);
    const s = sysvShm(t, size);
    const cases = [[p.name, 'posix', p.name, 12345], [s.key, 'sysv', String(s.id), 0xabcdef]] as const;
    await Promise.all(
      cases.map(async ([target, kind, peerTarget, seed]) => {
        await peer(['fill', kind, peerTarget, String(seed)]);
        const r = await cli(['shm', 'read', target]);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.stdout.length, size);
        assert.ok(r.stdout.equals(pattern(size, seed)), `${kind}: the CLI read what C wrote`);

        const mine = randomBytes(size);
        await ok(['shm', 'write', target], mine);
        const dumped = await peer(['dump', kind, peerTarget]);
        assert.ok(dumped.stdout.equals(mine), `${kind}: C read what the CLI wrote`);
      }),
    );
  });

  test('shm: bad input is refused with one clear line and the exit status of its kind', async (t) => {
    const { name } = posixShm(t, 'bad', 64);
    const missing = uniqueName('missing');
    await Promise.all([
      // 2: the command line itself is wrong.
      fails(['shm', 'read', 'not-a-target'], 2, /shm read: .*'not-a-target' is not a target/),
      fails(['shm', 'hexdump', name, '--offset', 'ten'], 2, /shm hexdump: option '--offset <bytes>' argument 'ten' is invalid/),
      fails(['shm', 'write', name, '--hex', 'abc'], 2, /odd number of hex digits/),
      fails(['shm', 'stat', name, '--bogus'], 2, /shm stat: unknown option '--bogus'/),
      fails(['shm', 'create', '--size', '8'], 2, /say what to create/),
      fails(['shm', 'read', '0x0'], 2, /IPC_PRIVATE/),
      // 4: no such object.
      fails(['shm', 'read', missing], 4, new RegExp(`no POSIX shared memory object ${missing}`)),
      fails(['shm', 'stat', missing], 4, /no POSIX shared memory object/),
      fails(['shm', 'write', sysvKey(t), 'x'], 4, /no System V shared memory segment has key 0x/),
      fails(['shm', 'stat', 'id:2147483647'], 4, /no System V shared memory segment has id 2147483647/),
      // 1: well formed, but not for this object.
      fails(['shm', 'read', name, '--offset', '65'], 1, /--offset 65 is past the end of .* \(64 bytes\)/),
    ]);
  });

  // ---- semaphores -------------------------------------------------------------

  test('sem on a POSIX semaphore: create, get, post --by, wait --by, as numbers a script reads', async (t) => {
    const name = semName(t, 'sem');
    assert.equal(await ok(['sem', 'create', name, '--value', '2']), '');
    assert.equal(shmEntries(`sem.${name.slice(1)}`).length, 1, 'it lives in /dev/shm/sem.NAME');
    assert.equal(await ok(['sem', 'get', name]), '2\n');
    await Promise.all([ok(['sem', 'wait', name]), ok(['sem', 'post', name, '--by', '3'])]);
    assert.deepEqual(JSON.parse(await ok(['sem', 'get', name, '--json'])), { type: 'posix', name, value: 4 });
    // All or nothing: taking 5 of 4 takes none.
    failed(await cli(['sem', 'wait', name, '--by', '5', '--timeout', '0']), 3, /is 4, less than --by 5: waiting would block/, 'wait --by 5');
    assert.equal(semValue(name), 4);
    await ok(['sem', 'wait', name, '--by', '4', '--timeout', '0']);
    assert.equal(semValue(name), 0);
  });

  test('sem on a System V set: ipcmk-style create, --index, and ipcs -s -i values with waiters and pids', async (t) => {
    const key = sysvKey(t);
    const created = await cli(['sem', 'create', key, '--count', '3', '--value', '1', '--mode', '640']);
    assert.equal(created.code, 0, created.stderr);
    const id = idFrom(t, created.stdout.toString(), 'sem');
    assert.equal(sysv.SemaphoreSet.stat(id).mode & 0o777, 0o640);
    const [post, wait] = await Promise.all([cli(['sem', 'post', key, '--index', '2', '--by', '4']), cli(['sem', 'wait', String(id), '--index', '1'])]);
    assert.equal(post!.code, 0, post!.stderr);
    assert.equal(wait!.code, 0, wait!.stderr);
    assert.deepEqual(setOf(id).getAll(), [1, 0, 5]);

    // A waiter on semaphore 1 shows as ncount, as ipcs -s -i shows it.
    const waiter = killOnExit(t, start(['sem', 'wait', key, '--index', '1']));
    const waited = finish(waiter);
    await until(() => setOf(id).waiters(1).forIncrease === 1, 'the CLI waits in semop');
    const [value0, table, json] = await Promise.all([
      ok(['sem', 'get', key]),
      ok(['sem', 'get', `id:${id}`, '--all']),
      ok(['sem', 'get', key, '--index', '1', '--json']),
    ]);
    assert.equal(value0, '1\n');
    assert.equal(
      table,
      'semnum     value      ncount     zcount     pid\n' +
        `0          1          0          0          ${created.pid}\n` +
        `1          0          1          0          ${wait!.pid}\n` +
        `2          5          0          0          ${post!.pid}\n`,
    );
    assert.deepEqual(JSON.parse(json!), { type: 'sysv', id, key, nsems: 3, semaphores: [{ semnum: 1, value: 0, ncount: 1, zcount: 0, pid: wait!.pid }] });
    await ok(['sem', 'post', key, '--index', '1']);
    assert.equal((await waited).code, 0);
    assert.deepEqual(setOf(id).getAll(), [1, 0, 5]);

    // --by is one semop: all or nothing.
    const [tooMany, reopened, larger, priv] = await Promise.all([
      cli(['sem', 'wait', key, '--index', '2', '--by', '6', '--timeout', '0']),
      cli(['sem', 'create', key, '--count', '2']),
      cli(['sem', 'create', key, '--count', '4']),
      cli(['sem', 'create', '--private', '--count', '2']),
    ]);
    const privId = idFrom(t, priv!.stdout.toString(), 'sem'); // removed after the test whatever the assertions below say
    failed(tooMany!, 3, new RegExp(`semaphore 2 of set with key ${key} is 5, less than --by 6`), 'wait --by 6');
    assert.equal(reopened!.stdout.toString(), `Semaphore id: ${id}\n`, 'an existing set is opened');
    failed(larger!, 1, /exists with 3 semaphores, fewer than --count 4/, 'larger set');
    assert.equal(sysv.SemaphoreSet.stat(privId).nsems, 2);
    assert.deepEqual(setOf(id).getAll(), [1, 0, 5]);
  });

  test('sem wait --timeout: 0 fails at once with exit 3, N fails after about N ms, both taking nothing', async (t) => {
    const name = posixSem(t, 'timeout');
    const { key, id } = sysvSet(t);
    const [tryPosix, trySysv, timedPosix, timedSysv] = await Promise.all([
      cli(['sem', 'wait', name, '--timeout', '0']),
      cli(['sem', 'wait', key, '--timeout', '0']),
      cli(['sem', 'wait', name, '--timeout', '300']),
      cli(['sem', 'wait', key, '--timeout', '300']),
    ]);
    failed(tryPosix!, 3, /is 0: waiting would block \(--timeout 0\)/, 'POSIX trywait');
    failed(trySysv!, 3, /is 0: waiting would block/, 'System V trywait');
    for (const [r, what] of [[timedPosix!, 'POSIX'], [timedSysv!, 'System V']] as const) {
      failed(r, 3, /not available within 300 ms/, `${what} --timeout 300`);
      // The process's whole life: Node's start plus the wait.
      assert.ok(r.ms >= 300 && r.ms < 5000, `${what}: exited after ${Math.round(r.ms)} ms`);
    }
    assert.equal(semValue(name), 0);
    assert.equal(setOf(id).get(0), 0);
  });

  test('a waiting sem wait is released by sem post from another process, POSIX and System V', async (t) => {
    const name = posixSem(t, 'release');
    const { key, id } = sysvSet(t);
    const posixWaiter = killOnExit(t, start(['sem', 'wait', name, '--timeout', '10000']));
    const sysvWaiter = killOnExit(t, start(['sem', 'wait', key, '--timeout', '10000']));
    const [posixDone, sysvDone] = [finish(posixWaiter), finish(sysvWaiter)];
    await until(() => setOf(id).waiters(0).forIncrease === 1, 'the System V waiter is in semop');
    // A POSIX semaphore counts no waiters: give the CLI time to get into sem_wait.
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(posixWaiter.exitCode, null, 'the POSIX waiter still waits');
    await Promise.all([ok(['sem', 'post', name]), ok(['sem', 'post', key])]);
    const [p, s] = await Promise.all([posixDone, sysvDone]);
    assert.equal(p.code, 0, p.stderr);
    assert.equal(s.code, 0, s.stderr);
    assert.ok(p.ms < 8000 && s.ms < 8000, 'released by the post, not by the timeout');
    assert.equal(semValue(name), 0);
    assert.equal(setOf(id).get(0), 0);
  });

  test('sem wait --undo: the kernel gives the value back when the CLI exits, and when it is killed', async (t) => {
    const { key, id } = sysvSet(t, 1, 1);
    // Held while a command runs; SIGKILL of the CLI gives it back all the same.
    // The command prints its pid (sh execs sleep in place) so the test can end it.
    const holder = killOnExit(t, start(['sem', 'wait', key, '--undo', '--', 'sh', '-c', 'echo $$; exec sleep 30 >/dev/null 2>&1']));
    const held = finish(holder);
    const sleeper = Number(await new Promise<string>((resolve) => holder.stdout!.once('data', (d: Buffer) => resolve(d.toString()))));
    t.after(() => {
      try {
        process.kill(sleeper, 'SIGKILL');
      } catch {
        /* already gone */
      }
    });
    assert.equal(setOf(id).get(0), 0, 'held while the command runs');
    holder.kill('SIGKILL');
    assert.equal((await held).signal, 'SIGKILL');
    assert.equal(setOf(id).get(0), 1, 'the kernel undid the killed CLI\'s wait');
    // Alone, --undo gives it back as soon as the CLI exits.
    await ok(['sem', 'wait', key, '--undo', '--timeout', '0']);
    assert.equal(setOf(id).get(0), 1, 'given back at exit');
  });

  test('sem wait -- COMMAND runs it holding the semaphore, gives it back after, exits with its status', async (t) => {
    const name = posixSem(t, 'cmd', 2);
    const [r, cannot] = await Promise.all([
      cli(['sem', 'wait', name, '--by', '2', '--', process.execPath, '--input-type=module', '-e', `
        const { posix } = await import('interprocess');
        const s = posix.Semaphore.open(${JSON.stringify(name)});
        console.log('inside, value ' + s.value);
        process.exit(7);`]),
      cli(['sem', 'wait', name, '--timeout', '5000', '--', join(tmp.dir, 'no-such-command')]),
    ]);
    assert.equal(r!.code, 7, r!.stderr);
    assert.equal(r!.stdout.toString(), 'inside, value 0\n');
    failed(cannot!, 127, /cannot run/, 'a command that cannot start');
    assert.equal(semValue(name), 2, 'posted back after the commands');
  });

  test('sem zero waits for a System V semaphore to reach 0', async (t) => {
    const { key, id } = sysvSet(t, 2, 1);
    const zero = killOnExit(t, start(['sem', 'zero', key, '--index', '1', '--timeout', '10000']));
    const done = finish(zero);
    const [notZero, timedOut] = await Promise.all([cli(['sem', 'zero', key, '--index', '1', '--timeout', '0']), cli(['sem', 'zero', key, '--timeout', '200'])]);
    failed(notZero!, 3, /semaphore 1 of .* is 1, not 0/, 'zero --timeout 0');
    failed(timedOut!, 3, /did not reach 0 within 200 ms/, 'zero --timeout 200');
    await until(() => setOf(id).waiters(1).forZero === 1, 'the CLI waits for zero');
    await ok(['sem', 'wait', key, '--index', '1']);
    const r = await done;
    assert.equal(r.code, 0, r.stderr);
  });

  test('Ctrl-C during sem wait exits 130 having taken nothing', async (t) => {
    const { key, id } = sysvSet(t);
    const waiter = killOnExit(t, start(['sem', 'wait', key]));
    const done = finish(waiter);
    await until(() => setOf(id).waiters(0).forIncrease === 1, 'the CLI waits');
    waiter.kill('SIGINT');
    const r = await done;
    assert.equal(r.code, 130, `exit ${r.code} ${r.signal}: ${r.stderr}`);
    assert.equal(r.stderr, '');
    assert.equal(setOf(id).waiters(0).forIncrease, 0);
    setOf(id).post(0);
    assert.equal(setOf(id).get(0), 1, 'nothing was taken');
  });

  test('sem: bad input is refused with one clear line and the exit status of its kind', async (t) => {
    const name = posixSem(t, 'bad', 1);
    const { key } = sysvSet(t, 2);
    const missing = uniqueName('missing');
    await Promise.all([
      fails(['sem', 'get', 'lock'], 2, /sem get: .*'lock' is not a target/),
      fails(['sem', 'post', name, '--by', '0'], 2, /at least 1/),
      fails(['sem', 'post', key, '--by', '40000'], 2, /more than a System V semaphore holds \(32767\)/),
      fails(['sem', 'wait', name, '--undo'], 2, /--undo is SEM_UNDO of System V sets/),
      fails(['sem', 'zero', name], 2, /POSIX semaphores have no such wait/),
      fails(['sem', 'post', name, '--bogus'], 2, /sem post: unknown option '--bogus'/),
      fails(['sem', 'get', missing], 4, new RegExp(`no POSIX semaphore ${missing}`)),
      fails(['sem', 'post', sysvKey(t)], 4, /no System V semaphore set has key 0x/),
      fails(['sem', 'wait', 'id:2147483647'], 4, /no System V semaphore set has id 2147483647/),
      fails(['sem', 'wait', key, '--index', '2'], 1, new RegExp(`--index 2 is out of range: set with key ${key} has 2 semaphores \\(0 to 1\\)`)),
    ]);
    assert.equal(semValue(name), 1, 'nothing taken by the refused commands');
  });

  test('the verbs have --help with examples', async () => {
    const verbs = ['shm hexdump', 'sem wait'];
    const [top, ...helps] = await Promise.all([ok(['--help']), ...verbs.map((v) => ok([...v.split(' '), '--help']))]);
    verbs.forEach((v, i) => {
      assert.match(helps[i]!, new RegExp(`^Usage: interprocess ${v} `), v);
      assert.match(helps[i]!, new RegExp(`\\nExamples?[^\\n]*:\\n(  .*\\n)*  .*interprocess ${v} `), `${v} shows an example`);
    });
    assert.match(top!, /^  shm /m);
    assert.match(top!, /^  sem /m);
  });
});

after(() => {
  const prefix = `ipt-${process.pid}-`;
  assert.deepEqual(shmEntries(prefix), [], 'no POSIX shared memory left');
  assert.deepEqual(shmEntries(`sem.${prefix}`), [], 'no POSIX semaphore left');
  const left = [...usedKeys].filter((k) => procKeys('shm').has(k) || procKeys('sem').has(k));
  assert.deepEqual(left, [], 'no System V object left');
});
