#!/usr/bin/env node
// Runs the node:test suite (compiled to build/test) and then checks that it
// left no kernel IPC object behind: any System V segment, queue or semaphore
// set, /dev/shm entry or /dev/mqueue entry that exists after the run but not
// before is reported, removed, and fails the run.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';

function sysv(kind) {
  const file = `/proc/sysvipc/${kind}`;
  if (!existsSync(file)) return [];
  const lines = readFileSync(file, 'utf8').trim().split('\n').slice(1).filter(Boolean);
  return lines.map((l) => {
    const f = l.trim().split(/\s+/);
    return `${kind}:${f[1]}:key=0x${(Number(f[0]) >>> 0).toString(16).padStart(8, '0')}`;
  });
}

function dir(path) {
  return existsSync(path) ? readdirSync(path).map((n) => `${path}/${n}`) : [];
}

function snapshot() {
  return new Set([...sysv('shm'), ...sysv('msg'), ...sysv('sem'), ...dir('/dev/shm'), ...dir('/dev/mqueue')]);
}

// POSIX queues are visible (to this leak check, and to `interprocess ls`) only in an mqueue
// mount; mq_open works without one. As root, mount it where Linux documents it.
const mounted = () => readFileSync('/proc/self/mounts', 'utf8').split('\n').some((l) => l.split(' ')[1] === '/dev/mqueue' && l.split(' ')[2] === 'mqueue');
if (process.getuid?.() === 0 && !mounted()) {
  mkdirSync('/dev/mqueue', { recursive: true });
  const m = spawnSync('mount', ['-t', 'mqueue', 'none', '/dev/mqueue'], { encoding: 'utf8' });
  if (m.status !== 0) console.error(`note: could not mount /dev/mqueue (${m.stderr.trim()}): POSIX queues left behind would not be seen`);
}

const before = snapshot();
const args = process.argv.slice(2);
const files = args.length ? args : ['build/test/'];
const r = spawnSync(process.execPath, ['--test', '--test-timeout=120000', ...files], { stdio: 'inherit' });

const leaked = [...snapshot()].filter((o) => !before.has(o));
for (const o of leaked) {
  if (o.startsWith('/dev/')) rmSync(o, { force: true });
  else {
    const [kind, id] = o.split(':');
    spawnSync('ipcrm', [kind === 'shm' ? '-m' : kind === 'msg' ? '-q' : '-s', id]);
  }
}
if (leaked.length) {
  console.error(`\nleak check: FAILED, the suite left ${leaked.length} kernel object(s) behind (now removed):`);
  for (const o of leaked) console.error(`  ${o}`);
  process.exit(1);
}
console.log('leak check: ok, no System V object, /dev/shm or /dev/mqueue entry left behind');
process.exit(r.status ?? 1);
