// `interprocess top`, driven as a user drives it: in a real terminal (a tmux
// pane on a private server), keys sent with send-keys, the screen read back
// with capture-pane; and `--once` / bad command lines through pipes. The
// objects it shows are real: a System V queue holding 3 messages, a POSIX
// semaphore at 2, a channel a child process streams into while this process
// receives, and a mutex this process holds, with a child waiting for it and
// for a second semaphore, at 0.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { Channel, Mutex, posix, sysv } from 'interprocess';
import { root, run, spawnNode, tempDir, uniqueName, unlinkQuietly, waitForLine } from './helpers.js';

const cli = join(root, 'dist', 'cli', 'main.js');
const execFileAsync = promisify(execFile);

const noTmux = spawnSync('tmux', ['-V'], { stdio: 'ignore' }).status === 0 ? false : 'tmux is not installed: the live view needs a real terminal to be tested (CI installs tmux through .ci/run)';

// Sender: 100-byte messages, 2 every 10 ms. A record takes align8(8 + 100) = 112 ring bytes.
const PAYLOAD = 100;
const RECORD = 112;

let queue: sysv.MessageQueue;
let sem: posix.Semaphore;
let channel: Channel;
let sender: ChildProcess;
let mutex: Mutex;
let empty: posix.Semaphore;
let waiter: ChildProcess;
const semName = uniqueName('topsem');
const chName = uniqueName('topch');
const mutexName = uniqueName('topmx');
const emptyName = uniqueName('topsem0');
const receiving = new AbortController();
let received = 0;

before(async () => {
  queue = sysv.MessageQueue.create();
  for (let i = 0; i < 3; i++) queue.sendSync(1, '0123456789');
  sem = posix.Semaphore.create(semName, { value: 2 });
  channel = Channel.create(chName, { capacity: 65536 });
  // This process receives, so the ring keeps moving (a full ring would show a rate of 0).
  void (async () => {
    for (;;) {
      await channel.receive({ signal: receiving.signal });
      received++;
    }
  })().catch(() => {});
  sender = spawnNode(
    `import { Channel } from 'interprocess';
     const ch = Channel.open(process.argv[1]);
     const m = Buffer.alloc(${PAYLOAD}, 7);
     ch.sendSync(m);
     setInterval(() => { ch.trySend(m); ch.trySend(m); }, 10);
     process.stdout.write('sending\\n');`,
    [chName],
  );
  mutex = Mutex.create(mutexName);
  mutex.lockSync();
  empty = posix.Semaphore.create(emptyName, { value: 0 });
  waiter = spawnNode(
    `import { Mutex, posix } from 'interprocess';
     const m = Mutex.open(process.argv[1]);
     const s = posix.Semaphore.open(process.argv[2]);
     process.stdout.write('waiting\\n');
     await Promise.all([m.lock(), s.wait()]);`,
    [mutexName, emptyName],
  );
  await Promise.all([waitForLine(sender, /^sending$/), waitForLine(waiter, /^waiting$/)]);
});

after(() => {
  sender?.kill('SIGKILL');
  waiter?.kill('SIGKILL');
  receiving.abort();
  channel?.close();
  try {
    mutex?.unlock();
  } catch {
    /* not locked */
  }
  mutex?.close();
  for (const name of [chName, mutexName]) unlinkQuietly(name);
  for (const s of [sem, empty]) s?.close();
  for (const name of [semName, emptyName]) {
    try {
      posix.Semaphore.unlink(name);
    } catch {
      /* never created */
    }
  }
  queue?.remove();
});

// ---- the screen's rows ---------------------------------------------------------------

/** A row of the table: the line that starts with this type and this id or name. */
function rowOf(screen: string, type: string, label: string | number): string | undefined {
  return screen.split('\n').find((l) => new RegExp(`^${type} +${String(label).replace(/[/.]/g, '\\$&')} `).test(l));
}

const UNITS: Record<string, number> = { B: 1, KiB: 1024, MiB: 1024 ** 2 };
const SUFFIX: Record<string, number> = { '': 1, k: 1e3, M: 1e6 };

/** A channel row's rate: messages and bytes per second. */
function channelRate(row: string): { messages: number; estimated: boolean; bytes: number } | undefined {
  const m = /(~?)([\d.]+)([kM]?) msg\/s, ([\d.]+) (B|KiB|MiB)\/s/.exec(row);
  return m ? { messages: Number(m[2]) * SUFFIX[m[3]!]!, estimated: m[1] === '~', bytes: Number(m[4]) * UNITS[m[5]!]! } : undefined;
}

/** The queue, the semaphore at 2 and the moving channel as `top` must show them. */
function checkObjects(screen: string): void {
  assert.match(rowOf(screen, 'msg', queue.id) ?? '', /^msg +\d+ +3 msg, 30 B /, screen);
  assert.match(rowOf(screen, 'posix-sem', semName) ?? '', / 2 /, screen);
  const row = rowOf(screen, 'channel', chName) ?? '';
  assert.match(row, /recv:(bell|awake) send:1/, screen);
  const rate = channelRate(row);
  assert.ok(rate && rate.messages > 0, `channel moving: ${row}`);
  // A few KiB between two refreshes: counted, not estimated; and counted messages and bytes agree,
  // every record being 112 bytes (to the 3 significant digits shown).
  assert.ok(!rate.estimated, `counted: ${row}`);
  assert.ok(Math.abs(rate.bytes / rate.messages - RECORD) < RECORD * 0.03, `bytes per message in ${row}`);
}

// ---- tmux ------------------------------------------------------------------------------

// A server of our own (its socket in a directory of our own), without the user's configuration.
const socketDir = tempDir('top');
const socket = join(socketDir.dir, 'tmux');
let tmuxStarted = false;

async function tmux(...args: string[]): Promise<string> {
  const { stdout } = await execFileAsync('tmux', ['-S', socket, '-f', '/dev/null', ...args], { encoding: 'utf8' });
  return stdout;
}

after(async () => {
  if (tmuxStarted) await tmux('kill-server').catch(() => {});
  socketDir.cleanup();
});

const quote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

/**
 * A pane running top inside a shell that says how it ended and whether the
 * terminal's settings (stty) came back as they were, then stays open.
 */
async function startTop(session: string, args: string[] = []): Promise<void> {
  const script =
    `saved=$(stty -g); ${quote(process.execPath)} ${quote(cli)} top --interval 300 ${args.join(' ')}; echo "EXITED $?"; ` +
    `if [ "$(stty -g)" = "$saved" ]; then echo TTY-SAME; else echo TTY-CHANGED; fi; sleep 60`;
  await tmux('new-session', '-d', '-s', session, '-x', '160', '-y', '60', 'sh', '-c', script);
  tmuxStarted = true;
}

const screenOf = (session: string): Promise<string> => tmux('capture-pane', '-p', '-t', session);
const paneFlag = async (session: string, flag: string): Promise<string> => (await tmux('display', '-p', '-t', session, `#{${flag}}`)).trim();

/** Polls the pane until `cond` holds for its screen; returns that screen. */
async function screenWhen(session: string, cond: (screen: string) => boolean, what: string, ms = 10_000): Promise<string> {
  const deadline = Date.now() + ms;
  let screen = '';
  while (Date.now() < deadline) {
    screen = await screenOf(session);
    if (cond(screen)) return screen;
    await sleep(50);
  }
  throw new Error(`timed out waiting for ${what}; the screen:\n${screen}`);
}

/** Whether checkObjects passes (the first refreshes have no rates yet). */
function objectsShown(screen: string): boolean {
  try {
    checkObjects(screen);
    return true;
  } catch {
    return false;
  }
}

/** After top has quit: the shell's lines are back, top's screen and settings are gone. */
async function checkRestored(session: string, code: number): Promise<void> {
  const screen = await screenWhen(session, (s) => /^TTY-/m.test(s), 'top to exit');
  assert.match(screen, new RegExp(`^EXITED ${code}$`, 'm'), screen);
  // Raw mode off again (top turns it off; Node resets the terminal at exit as well).
  assert.match(screen, /^TTY-SAME$/m, 'stty settings restored');
  assert.doesNotMatch(screen, /interprocess top|^TYPE /m, 'the alternate screen was left: the table is gone');
  assert.equal(await paneFlag(session, 'alternate_on'), '0');
  assert.equal(await paneFlag(session, 'cursor_flag'), '1', 'cursor shown again');
  assert.equal(await paneFlag(session, 'history_size'), '0', 'nothing scrolled into the main screen');
}

test('top in a terminal: objects with depths, values and a channel rate, redrawn in place; p, resize, s; q restores the terminal', { skip: noTmux }, async () => {
  await startTop('main');
  const first = await screenWhen('main', objectsShown, 'the queue, the semaphore and a moving channel');
  assert.equal(await paneFlag('main', 'alternate_on'), '1');
  assert.equal(await paneFlag('main', 'cursor_flag'), '0', 'cursor hidden');

  // Redrawn in place: the header on the first row, the column titles on the second, once each, with a new time
  // (waited for: on a loaded machine the next second's redraw can come more than a second later).
  const time = (s: string): string => /\d\d:\d\d:\d\d/.exec(s)?.[0] ?? '';
  const second = await screenWhen('main', (s) => time(s) !== '' && time(s) !== time(first) && objectsShown(s), 'a redraw with a new time');
  for (const screen of [first, second]) {
    const lines = screen.split('\n');
    assert.match(lines[0]!, /^interprocess top +\d\d:\d\d:\d\d +every 300 ms +\d+ objects? .*q quit +p pause +s sort: type$/, screen);
    assert.match(lines[1]!, /^TYPE +ID\/NAME +USE +RATE +WAITING +DETAIL/, screen);
    assert.equal(lines.filter((l) => l.startsWith('interprocess top')).length, 1, screen);
    assert.equal(lines.filter((l) => l.startsWith('TYPE ')).length, 1, screen);
  }
  assert.notEqual(time(second), time(first), 'the view refreshes');
  checkObjects(second);
  assert.equal(await paneFlag('main', 'history_size'), '0');

  // p pauses: the time stands still.
  await tmux('send-keys', '-t', 'main', 'p');
  const paused = await screenWhen('main', (s) => /PAUSED +q quit +p resume/.test(s), 'PAUSED');
  await sleep(700);
  assert.equal(time(await screenOf('main')), time(paused), 'no refresh while paused');

  // A narrower terminal, still paused: redrawn at once (not at the next refresh), every line fits, the detail is cut.
  assert.ok(second.split('\n').some((l) => l.length > 100), 'some line is wider than 100 columns at 160');
  await tmux('resize-window', '-t', 'main', '-x', '100', '-y', '30');
  const narrow = await screenWhen('main', (s) => (rowOf(s, 'channel', chName) ?? '').endsWith('…'), 'the channel row cut to 100 columns');
  for (const line of narrow.split('\n')) assert.ok(line.length <= 100, `fits 100 columns: ${line}`);
  assert.match(narrow.split('\n')[1]!, /^TYPE +ID\/NAME/);
  assert.equal(time(narrow), time(paused), 'redrawn on resize, not refreshed');

  // p again resumes; s changes the sort.
  await tmux('send-keys', '-t', 'main', 'p');
  await screenWhen('main', (s) => !s.includes('PAUSED') && time(s) !== time(paused), 'refreshes again');
  await tmux('send-keys', '-t', 'main', 's');
  await screenWhen('main', (s) => /s sort: name$/m.test(s), 'sort: name');

  await tmux('send-keys', '-t', 'main', 'q');
  await checkRestored('main', 0);
});

test('top: Ctrl-C quits as q does, and SIGTERM restores the terminal and exits 143', { skip: noTmux }, async () => {
  await startTop('ctrlc', ['--ours']);
  await startTop('term', ['-q']);
  for (const s of ['ctrlc', 'term']) await screenWhen(s, (screen) => rowOf(screen, 'channel', chName) !== undefined, `${s}: the channel`);
  const ours = await screenOf('ctrlc');
  assert.equal(rowOf(ours, 'msg', queue.id), undefined, '--ours hides the System V queue');
  assert.equal(rowOf(ours, 'posix-sem', semName), undefined, '--ours hides the semaphore');

  await tmux('send-keys', '-t', 'ctrlc', 'C-c');
  await checkRestored('ctrlc', 0);

  // top is the shell's child in the pane.
  const shell = Number(await paneFlag('term', 'pane_pid'));
  const top = Number(readFileSync(`/proc/${shell}/task/${shell}/children`, 'utf8').trim().split(/\s+/)[0]);
  assert.ok(top > 0);
  process.kill(top, 'SIGTERM');
  await checkRestored('term', 143);
});

// ---- without a terminal ----------------------------------------------------------------

test('top --once prints one plain snapshot with rates over one interval', async () => {
  const r = await run(process.execPath, [cli, 'top', '--once', '--interval', '300']);
  assert.equal(r.code, 0, r.stderr);
  assert.doesNotMatch(r.stdout, /\x1b/, 'no escape codes');
  const lines = r.stdout.split('\n');
  assert.match(lines[0]!, /^interprocess top +\d\d:\d\d:\d\d +every 300 ms +\d+ objects? \(.*msg \d+.*\)$/);
  assert.doesNotMatch(lines[0]!, /q quit/, 'no keys without the live view');
  assert.match(lines[1]!, /^TYPE +ID\/NAME +USE +RATE +WAITING +DETAIL$/);
  checkObjects(r.stdout);
  // Not cut: the whole detail is there.
  assert.match(rowOf(r.stdout, 'channel', chName)!, /ring 65536 B, \d+ B queued; receiver \d+, 1 sender; mapped by \d+/);
  assert.ok(received > 0);
  // Waiters: the child sleeps on the mutex this process holds (this thread's id is the pid) and on the empty semaphore.
  assert.match(rowOf(r.stdout, 'mutex', mutexName) ?? '', new RegExp(`^mutex +\\S+ +locked by ${process.pid} +- +waiters `), r.stdout);
  assert.match(rowOf(r.stdout, 'posix-sem', emptyName) ?? '', /^posix-sem +\S+ +0 +- +1 waiting /, r.stdout);

  const s = await run(process.execPath, [cli, 'top', '--once', '-s', '--interval', '100']);
  assert.equal(s.code, 0, s.stderr);
  assert.ok(rowOf(s.stdout, 'posix-sem', semName), s.stdout);
  assert.equal(rowOf(s.stdout, 'msg', queue.id), undefined, '-s shows semaphores only');
  assert.equal(rowOf(s.stdout, 'channel', chName), undefined, '-s shows semaphores only');
});

test('top refuses to draw without a terminal, and rejects a bad --interval, with exit code 2', async () => {
  const r = await run(process.execPath, [cli, 'top']);
  assert.equal(r.code, 2);
  assert.equal(r.stdout, '');
  assert.match(r.stderr, /^interprocess: top draws on a terminal and stdout is not one; use --once/);
  for (const bad of ['abc', '0', '99', '1.5', '-300']) {
    const b = await run(process.execPath, [cli, 'top', '--once', '--interval', bad]);
    assert.equal(b.code, 2, `--interval ${bad}`);
    assert.match(b.stderr, /interval is a whole number of milliseconds from 100/, `--interval ${bad}`);
    assert.doesNotMatch(b.stderr, /^\s+at /m, 'no stack trace');
  }
});
