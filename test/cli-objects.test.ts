// `interprocess ls`, `rm` and `clean --stale`, driven as a user would: a child
// process creates one object of every kind, the CLI is spawned and its output
// parsed; then the child is killed and the stale path is taken.
import { test } from 'node:test';
import { spawn, spawnSync } from 'node:child_process';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { killOnExit, root, run, shmEntries, spawnNode, sysvIds, uniqueName, until, waitForLine } from './helpers.js';
import { posix, sysv } from 'interprocess';

const cli = join(root, 'dist', 'cli', 'main.js');
const T = { timeout: 60_000 };

interface Obj {
  type: string;
  family: string;
  id?: number;
  key?: number;
  name?: string;
  user: string;
  mode: number;
  size: number;
  messages?: number;
  values?: number[];
  attached: number[];
  nattch?: number;
  creatorPid?: number;
  creatorAlive?: boolean;
  pids: Record<string, number>;
  stale?: boolean;
  detail: string;
}

const mqueueMounted = (): boolean =>
  readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .some((l) => l.split(' ')[1] === '/dev/mqueue' && l.split(' ')[2] === 'mqueue');

/** SHM_DEST: IPC_RMID was called; the segment goes when its last attachment does. */
function segmentMarkedForRemoval(id: number): boolean {
  const row = readFileSync('/proc/sysvipc/shm', 'utf8')
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .find((f) => Number(f[1]) === id);
  return row !== undefined && (parseInt(row[2]!, 8) & 0o1000) !== 0;
}

async function ls(...args: string[]): Promise<{ objects: Obj[]; notes: string[] }> {
  const r = await run(process.execPath, [cli, 'ls', '--json', ...args]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as { objects: Obj[]; notes: string[] };
}

/**
 * A process holding one object of every kind: a System V queue (2 messages),
 * segment (attached) and set (values 1 and 5); a POSIX shm object (mapped), a
 * semaphore (value 3) and a queue (1 message); a Channel it receives on with
 * 1 message queued; a Mutex it holds.
 */
function owner(base: string) {
  const child = spawnNode(
    `
    import { Channel, Mutex, posix, sysv } from 'interprocess';
    const base = process.argv[1];
    const q = sysv.MessageQueue.create({ mode: 0o640 });
    q.trySend(1, 'first'); q.trySend(2, 'second');
    const seg = sysv.SharedMemory.create({ size: 8192 });
    const set = sysv.SemaphoreSet.create({ count: 2, value: [1, 5] });
    const shm = posix.SharedMemory.create(base + '-shm', { size: 4096 });
    const sem = posix.Semaphore.create(base + '-sem', { value: 3 });
    const mq = posix.MessageQueue.create(base + '-mq');
    mq.trySend('queued', 4);
    const ch = Channel.create(base + '-ch', { capacity: 4096 });
    ch.tryReceive(); // attach as the receiver
    ch.trySend('hello');
    const m = Mutex.create(base + '-mx');
    m.lockSync();
    // Reachable for good: a mapping lives only as long as its handle (after this module has run,
    // its bindings may be collected, and the segment's nattch drop to 0).
    globalThis.keep = [q, seg, set, shm, sem, mq, ch, m];
    console.log(JSON.stringify({ pid: process.pid, msg: q.id, shm: seg.id, sem: set.id, shmKey: seg.key }));
    setInterval(() => {}, 1000);
    `,
    [base],
  );
  return child;
}

/** Removes what owner() made, whatever the test got to. */
function cleanup(base: string, ids: { msg?: number; shm?: number; sem?: number }): void {
  const quietly = (fn: () => void): void => {
    try {
      fn();
    } catch {
      /* already gone */
    }
  };
  if (ids.msg !== undefined) quietly(() => sysv.MessageQueue.remove(ids.msg!));
  if (ids.shm !== undefined) quietly(() => sysv.SharedMemory.remove(ids.shm!));
  if (ids.sem !== undefined) quietly(() => sysv.SemaphoreSet.remove(ids.sem!));
  for (const s of ['-shm', '-ch', '-mx']) quietly(() => posix.SharedMemory.unlink(base + s));
  quietly(() => posix.Semaphore.unlink(base + '-sem'));
  quietly(() => posix.MessageQueue.unlink(base + '-mq'));
}

test('ls shows every kind of object with its owner, mode, size, depth, values, users and creator; kill -9 of the owner makes its channel and mutex stale; clean --stale removes exactly those', T, async (t) => {
  const base = uniqueName('cli-ls');
  const child = killOnExit(t, owner(base));
  const ids = JSON.parse(await waitForLine(child, /^\{/)) as { pid: number; msg: number; shm: number; sem: number; shmKey: number };
  t.after(() => cleanup(base, ids));

  const { objects, notes } = await ls();
  const by = (type: string, match: (o: Obj) => boolean): Obj => {
    const found = objects.filter((o) => o.type === type && match(o));
    assert.equal(found.length, 1, `one ${type} in ${JSON.stringify(objects.filter((o) => o.type === type))}`);
    return found[0]!;
  };
  const me = process.getuid!() === 0 ? 'root' : String(process.getuid!());

  const msg = by('msg', (o) => o.id === ids.msg);
  assert.equal(msg.messages, 2);
  assert.equal(msg.size, 'first'.length + 'second'.length);
  assert.equal(msg.mode, 0o640);
  assert.equal(msg.pids.lastSender, ids.pid);
  if (me === 'root') assert.equal(msg.user, 'root');

  const seg = by('shm', (o) => o.id === ids.shm);
  assert.equal(seg.size, 8192);
  assert.equal(seg.nattch, 1);
  assert.equal(seg.creatorPid, ids.pid);
  assert.equal(seg.creatorAlive, true);

  assert.deepEqual(by('sem', (o) => o.id === ids.sem).values, [1, 5]);

  const shm = by('posix-shm', (o) => o.name === base + '-shm');
  assert.equal(shm.size, 4096);
  assert.deepEqual(shm.attached, [ids.pid]);
  assert.equal(shm.mode, 0o600);

  const sem = by('posix-sem', (o) => o.name === base + '-sem');
  assert.deepEqual(sem.values, [3]);
  assert.deepEqual(sem.attached, [ids.pid]);

  if (mqueueMounted()) {
    const mq = by('posix-mq', (o) => o.name === base + '-mq');
    assert.equal(mq.messages, 1);
    assert.equal(mq.size, 'queued'.length);
    assert.deepEqual(mq.attached, [ids.pid]);
  } else {
    assert.ok(notes.some((n) => /mount -t mqueue none \/dev\/mqueue/.test(n)), 'says how to mount /dev/mqueue');
    t.diagnostic('/dev/mqueue is not mounted here: POSIX queues are not listed (the note saying how was checked)');
  }

  const ch = by('channel', (o) => o.name === base + '-ch');
  assert.equal(ch.creatorPid, ids.pid);
  assert.equal(ch.creatorAlive, true);
  assert.equal(ch.pids.receiver, ids.pid);
  assert.equal(ch.stale, false);
  assert.match(ch.detail, /ring 4096 B, 16 B queued; receiver \d+, 1 sender/);

  const mx = by('mutex', (o) => o.name === base + '-mx');
  assert.equal(mx.pids.owner, ids.pid); // the main thread's tid is the pid
  assert.match(mx.detail, /^locked by thread \d+/);
  assert.equal(mx.stale, false);

  // The table: one row per object, with the columns ipcs users look for.
  const table = await run(process.execPath, [cli, 'ls']);
  assert.equal(table.code, 0, table.stderr);
  assert.match(table.stdout, /^TYPE +ID\/NAME +KEY +OWNER +PERMS +SIZE +USE +ATTACH +CREATOR +STATE$/m);
  assert.match(table.stdout, new RegExp(`^msg +${ids.msg} +0x00000000 +\\S+ +640 +11 +2 msg `, 'm'));
  assert.match(table.stdout, new RegExp(`^channel +${base}-ch .* ${ids.pid} alive +ring 4096 B`, 'm'));

  // Filters: -q queues only, --ours this package's objects only.
  const queues = (await ls('-q')).objects;
  assert.ok(queues.every((o) => ['msg', 'posix-mq', 'channel'].includes(o.type)));
  assert.ok(queues.some((o) => o.id === ids.msg));
  const ours = (await ls('--ours')).objects.filter((o) => o.name?.startsWith(base));
  assert.deepEqual(ours.map((o) => o.type).sort(), ['channel', 'mutex']);
  assert.deepEqual((await ls('--stale')).objects.filter((o) => o.name?.startsWith(base)), [], 'nothing stale while the owner lives');
  const dryLive = await run(process.execPath, [cli, 'clean', '--stale', '--dry-run', `${base}-ch`, `${base}-mx`]);
  assert.equal(dryLive.stdout, 'nothing stale\n');

  // The owner dies: its package objects are stale; the kernel's robust list freed the mutex.
  child.kill('SIGKILL');
  await until(() => !existsSync(`/proc/${ids.pid}`) || /^\d+ \(.*\) Z/.test(readFileSync(`/proc/${ids.pid}/stat`, 'utf8')), 'the owner is dead');
  const after = (await ls()).objects;
  const chAfter = after.find((o) => o.name === base + '-ch')!;
  const mxAfter = after.find((o) => o.name === base + '-mx')!;
  assert.equal(chAfter.creatorAlive, false);
  assert.equal(chAfter.stale, true);
  assert.match(chAfter.detail, /receiver \d+ \(gone\)/);
  assert.equal(mxAfter.stale, true);
  assert.match(mxAfter.detail, /owner died/);
  assert.equal(after.find((o) => o.name === base + '-shm')!.stale, undefined, 'plain POSIX objects are never called stale: nothing says who owns them');
  assert.equal(after.find((o) => o.id === ids.shm)!.creatorAlive, false);

  const dry = await run(process.execPath, [cli, 'clean', '--stale', '--dry-run', `${base}-ch`, `${base}-mx`]);
  assert.equal(dry.code, 0, dry.stderr);
  assert.match(dry.stdout, new RegExp(`^would remove channel ${base}-ch \\(creator ${ids.pid} dead`, 'm'));
  assert.match(dry.stdout, new RegExp(`^would remove mutex ${base}-mx `, 'm'));
  assert.equal(shmEntries(base).length, 3, 'a dry run removes nothing'); // -shm, -ch, -mx

  const noTty = await run(process.execPath, [cli, 'clean', '--stale', `${base}-ch`, `${base}-mx`]);
  assert.equal(noTty.code, 2);
  assert.match(noTty.stderr, /^interprocess: 2 stale objects; not removing without --yes/);
  assert.equal(shmEntries(base).length, 3);

  const clean = await run(process.execPath, [cli, 'clean', '--stale', '--yes', `${base}-ch`, `${base}-mx`]);
  assert.equal(clean.code, 0, clean.stderr);
  assert.match(clean.stdout, new RegExp(`^removed channel ${base}-ch`, 'm'));
  assert.match(clean.stdout, new RegExp(`^removed mutex ${base}-mx`, 'm'));
  assert.deepEqual(shmEntries(base), [`${base.slice(1)}-shm`], 'only the stale package objects went');
  assert.deepEqual(shmEntries(`sem.${base.slice(1)}`), [`sem.${base.slice(1)}-sem`]);
  assert.ok(sysvIds('msg').has(ids.msg), 'clean leaves System V objects alone');
});

test('a channel whose creator died is not stale while its receiver lives', T, async (t) => {
  const name = uniqueName('cli-ls-recv');
  t.after(() => {
    try {
      posix.SharedMemory.unlink(name);
    } catch {
      /* gone */
    }
  });
  const creator = await run(process.execPath, ['--input-type=module', '-e', `import { Channel } from 'interprocess'; Channel.create(process.argv[1]).close();`, name], { cwd: root });
  assert.equal(creator.code, 0, creator.stderr);
  const receiver = killOnExit(
    t,
    spawnNode(`import { Channel } from 'interprocess'; const ch = Channel.open(process.argv[1]); ch.tryReceive(); console.log('attached'); setInterval(() => {}, 1000);`, [name]),
  );
  await waitForLine(receiver, /attached/);
  const ch = (await ls('--ours')).objects.find((o) => o.name === name)!;
  assert.equal(ch.creatorAlive, false);
  assert.equal(ch.stale, false);
  assert.deepEqual(ch.attached, [receiver.pid]);
  const dry = await run(process.execPath, [cli, 'clean', '--stale', '--dry-run', name]);
  assert.equal(dry.stdout, 'nothing stale\n');
  receiver.kill('SIGKILL');
  await until(() => !existsSync(`/proc/${receiver.pid}`), 'the receiver is gone');
  const again = (await ls('--ours')).objects.find((o) => o.name === name)!;
  assert.equal(again.stale, true);
});

test('rm removes by id, key, ftok, ipcrm flags and POSIX name; asks for --type when a name is two objects; says what is missing', T, async (t) => {
  const base = uniqueName('cli-rm');
  const made: Array<() => void> = [];
  t.after(() => {
    for (const undo of made) {
      try {
        undo();
      } catch {
        /* removed by the test */
      }
    }
  });
  const key = 0x5100_0000 + (process.pid & 0xffff);
  const q = sysv.MessageQueue.create({ key });
  made.push(() => sysv.MessageQueue.remove(q.id));
  const q2 = sysv.MessageQueue.create();
  made.push(() => sysv.MessageQueue.remove(q2.id));
  const seg = sysv.SharedMemory.create({ size: 4096 });
  made.push(() => sysv.SharedMemory.remove(seg.id));
  seg.close();
  const set = sysv.SemaphoreSet.create({ count: 1 });
  made.push(() => sysv.SemaphoreSet.remove(set.id));
  posix.SharedMemory.create(base, { size: 64 }).close();
  posix.Semaphore.create(base, { value: 0 }).close();
  made.push(() => posix.SharedMemory.unlink(base), () => posix.Semaphore.unlink(base));

  const rm = (...args: string[]) => run(process.execPath, [cli, 'rm', ...args]);
  let r = await rm('-v', `0x${key.toString(16)}`);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, `removed msg ${q.id} (key 0x${key.toString(16).padStart(8, '0')})\n`);
  assert.ok(!sysvIds('msg').has(q.id));

  r = await rm('-q', String(q2.id), '-m', String(seg.id), '-s', String(set.id));
  assert.equal(r.code, 0, r.stderr);
  assert.ok(!sysvIds('msg').has(q2.id) && !sysvIds('sem').has(set.id));
  // This process may still map the segment (a mapping lives until its last view is collected): removed = gone or marked.
  assert.ok(!sysvIds('shm').has(seg.id) || segmentMarkedForRemoval(seg.id), 'the segment is removed');

  // /base is both a shm object and a semaphore: which one?
  r = await rm(base);
  assert.equal(r.code, 2);
  assert.equal(r.stderr, `interprocess: ${base} names more than one object (posix-shm, posix-sem): say which with --type\n`);
  r = await rm('--type', 'posix-sem', '-v', base);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, `removed posix-sem ${base}\n`);
  assert.deepEqual(shmEntries(base), [base.slice(1)]);
  assert.deepEqual(shmEntries(`sem.${base.slice(1)}`), []);
  r = await rm(base);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(shmEntries(base), []);

  // Missing objects: exit 4, and the others are still removed.
  const q3 = sysv.MessageQueue.create();
  made.push(() => sysv.MessageQueue.remove(q3.id));
  r = await rm(`${base}-none`, String(q3.id));
  assert.equal(r.code, 4);
  assert.equal(r.stderr, `interprocess: no IPC object named ${base}-none\n`);
  assert.ok(!sysvIds('msg').has(q3.id), 'the next target was still removed');
  r = await rm('-s', '2147483000');
  assert.equal(r.code, 4);
  assert.equal(r.stderr, 'interprocess: no System V sem with id 2147483000\n');
  r = await rm('ftok:/nonexistent/file:1');
  assert.equal(r.code, 2);
  assert.match(r.stderr, /ftok\('\/nonexistent\/file', 1\): ENOENT/);
});

test('bad command lines exit 2 with one clear line', T, async () => {
  const cases: Array<[string[], RegExp]> = [
    [['ls', '--type', 'bogus'], /^interprocess: unknown type 'bogus' \(types: msg, shm, sem, /],
    [['ls', '--frobnicate'], /^interprocess: unknown option '--frobnicate' \(see --help\)\n$/],
    [['rm'], /^interprocess: nothing to remove: give a target/],
    [['rm', 'bad/name'], /^interprocess: 'bad\/name' is not a target: use \/name/],
    [['rm', '/a/b'], /^interprocess: a POSIX name is '\/' and then a name without '\/'/],
    [['rm', 'key:0x1ffffffff'], /^interprocess: 'key:0x1ffffffff' is not a 32-bit System V key/],
    [['rm', '--type', 'posix-mq', '12'], /^interprocess: a System V id names a msg, shm or sem object, not posix-mq/],
    [['clean'], /^interprocess: say what to clean: 'interprocess clean --stale'/],
    [['clean', '--stale', '123'], /^interprocess: '123' is not a POSIX name/],
  ];
  for (const [args, message] of cases) {
    const r = await run(process.execPath, [cli, ...args]);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message, args.join(' '));
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  }
  for (const cmd of ['ls', 'rm', 'clean']) {
    const r = await run(process.execPath, [cli, cmd, '--help']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, new RegExp(`^Usage: interprocess ${cmd} `, 'm'));
    assert.match(r.stdout, /Examples:/);
  }
});

const noScript = spawnSync('sh', ['-c', 'command -v script']).status !== 0 && 'no script(1) here to give the command a terminal';

test('clean --stale on a terminal lists what it would remove and asks: n keeps, y removes', { ...T, skip: noScript }, async (t) => {
  const name = uniqueName('cli-clean-ask');
  t.after(() => {
    try {
      posix.SharedMemory.unlink(name);
    } catch {
      /* removed by the test */
    }
  });
  // A channel whose creator has exited and that nobody attached to: stale.
  const made = await run(process.execPath, ['--input-type=module', '-e', `import { Channel } from 'interprocess'; Channel.create(process.argv[1]).close();`, name], { cwd: root });
  assert.equal(made.code, 0, made.stderr);
  /** The command on a pseudo-terminal (script(1)), `answer` typed at its prompt. */
  const onTerminal = async (answer: string): Promise<{ code: number | null; out: string }> => {
    const child = spawn('script', ['-qfec', `${process.execPath} ${cli} clean --stale ${name}`, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    await until(() => out.includes('[y/N]'), () => `the question, in: ${JSON.stringify(out)}`);
    child.stdin.write(`${answer}\r`);
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    return { code, out: out.replace(/\r/g, '').replace(/\x1b\[[0-9;]*[A-Za-z]/g, '') }; // readline's cursor moves
  };
  const no = await onTerminal('n');
  assert.equal(no.code, 0, no.out);
  assert.match(no.out, new RegExp(`^  channel ${name} \\(creator \\d+ dead; `, 'm'));
  assert.match(no.out, /Remove 1 stale object\? \[y\/N\] n?\n?nothing removed$/m);
  assert.equal(shmEntries(name).length, 1, 'n keeps it');
  const yes = await onTerminal('y');
  assert.equal(yes.code, 0, yes.out);
  assert.match(yes.out, new RegExp(`^removed channel ${name} `, 'm'));
  assert.deepEqual(shmEntries(name), []);
});

test('a reader that goes away (ls | head -1) ends the listing quietly: exit 0, nothing on stderr', T, async (t) => {
  const base = uniqueName('cli-epipe');
  const names = Array.from({ length: 1500 }, (_, i) => `${base}-${i}`);
  t.after(() => {
    for (const n of names) {
      try {
        posix.SharedMemory.unlink(n);
      } catch {
        /* not made */
      }
    }
  });
  for (const n of names) posix.SharedMemory.create(n, { size: 64 }).close();
  for (const args of [['ls'], ['ls', '--json']]) {
    const child = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const code = new Promise<number | null>((resolve) => child.on('close', resolve));
    await new Promise((resolve) => child.stdout.once('data', resolve));
    child.stdout.destroy(); // as head does after its first line
    assert.equal(await code, 0, `${args.join(' ')}: ${stderr}`);
    assert.doesNotMatch(stderr, /EPIPE|\n\s+at /, args.join(' '));
  }
});
