// Runs every program in examples/ (the README and docs/guides/ show them;
// docs.test.ts checks their snippets against them) and checks what it
// prints, so the documented examples cannot rot.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { root, run, shmEntries, sysvIds, sysvShmIds } from './helpers.js';

const expectations: Record<string, RegExp[]> = {
  'pipe.mjs': [/^Received: Hello, IPC$/m],
  'fifo.mjs': [/^Received: Hello, FIFO$/m],
  'framing.mjs': [
    /^writer refused an oversize frame: EMSGSIZE$/m,
    /^frame of 13 bytes\nreader skipped an oversize frame and goes on\nframe of 1000 bytes$/m,
  ],
  'shm-posix.mjs': [/^Received: Hello, Shared Memory$/m, /^counter after the child ran: 1$/m],
  'shm-sysv.mjs': [/^Received: Hello, Shared Memory$/m, /^attached: 1, created by (\d+), last attach\/detach by (\d+)$/m],
  'msg-queue-sysv.mjs': [/^Received: Hello, Message Queue\nreply of type 2: Hello back$/m],
  'mq-posix.mjs': [/^first: routine\nurgent \(priority 9\)\nroutine again \(priority 1\)$/m],
  'channel.mjs': [/^Received: Hello, Channel\nin place: 1,2,3,4,5\ninto a buffer: into your buffer\nthen: done\nstale after use\? false$/m],
  'sem-sysv.mjs': [/^Parent entering critical section\nParent leaving critical section\nChild entering critical section\nChild leaving critical section$/m],
  'sem-sysv-ops.mjs': [
    /^after the child died: 1,0\nafter one atomic op: 0,1\ntryOp -1 on semaphore 0: false\nwaiters on 1: \{"forIncrease":0,"forZero":1\}\nsemaphore 1 reached zero\nwait on semaphore 0: TimeoutError ETIMEDOUT$/m,
  ],
  'sem-posix.mjs': [
    /^value 0, tryWait: false\npost 1 received\npost 2 received\npost 3 received\nwait aborted: ABORT_ERR, value still 0\nwaitSync: TimeoutError ETIMEDOUT$/m,
  ],
  'mutex.mjs': [
    /^counter: 2000\nlock: owner-died, counter -1\ntryLock: locked\nlockSync again: DeadlockError EDEADLK\nunlock again: PermissionError EPERM\nlock: owner-died\nlock after that: NotRecoverableError ENOTRECOVERABLE$/m,
  ],
  'condition.mjs': [/^state is 3$/m],
  'rwlock.mjs': [
    /^another reader: locked\na writer meanwhile: TimeoutError ETIMEDOUT\nwriter: alone inside\nread lock after a writer died: owner-died\nand then: locked$/m,
  ],
  'msg-queue-sysv-types.mjs': [
    /^type 2: +2:two\ntype -4: +1:one\ntype 3, except: +5:five\nmaxSize 2: +TooLargeError E2BIG\nmaxSize 2, noError: 3:th\nempty: +undefined\nreceive, 20 ms: +TimeoutError ETIMEDOUT\nreceive, aborted: +AbortError ABORT_ERR\n0 messages left; last sent by this process: true$/m,
  ],
  'mq-posix-full.mjs': [
    /^trySend: true true false\nsend to a full queue: TimeoutError ETIMEDOUT\n17 bytes: TooLargeError EMSGSIZE\n\{"maxMessages":2,"messageSize":16,"currentMessages":2\}\nreceived a\nreceived b\nthe loop ended with the abort$/m,
  ],
  'shm-options.mjs': [
    /^create again: AlreadyExistsError EEXIST true\nexclusive: false gives created=false, size 4096\nread-only view: 1,2; the object: 1,0\nstat: 4096 bytes, mode 600\nopen after unlink: NotFoundError ENOENT; still mapped here: 3$/m,
  ],
  'shm-worker.mjs': [/^the worker wrote 42$/m],
  // Node with C programs (examples/c/, compiled by the example with cc).
  'pipe-c.mjs': [/^the child reads descriptor 3 and writes descriptor 4\nReceived: HELLO FROM NODE \(child exit code 0\)$/m],
  'fifo-c.mjs': [
    /^no reader yet: tryOpenFifoWriter gives undefined\nno reader within 50 ms: TimeoutError ETIMEDOUT\naborted: AbortError ABORT_ERR\nC reader got: Hello from Node$/m,
  ],
  'shm-c.mjs': [/^C read: Hello from Node \(posix\)\nposix counter after C: 1\nC read: Hello from Node \(sysv\)\nsysv counter after C: 1$/m],
  'msg-queue-c.mjs': [
    /^C received type 1: Hello from Node\nNode received type 2: 15 bytes received\nNode received urgent \(priority 9\)\nNode received routine \(priority 1\)$/m,
  ],
  'sem-c.mjs': [
    /^Node: the C program posted\nC took semaphore 0 \(value now 0\) and exits without giving it back\nNode: value after the C program exited: 1$/m,
  ],
  'mutex-c.mjs': [/^counter: 20000\nlock after the C holder died: owner-died\nand then: locked$/m],
  'channel-c.mjs': [/^Received: message 1 from C\nReceived: message 1000 from C\n17893 bytes in 1000 messages; the C sender exited with 0$/m],
};

/**
 * Where it can (root, or user namespaces), each example runs in an IPC
 * namespace of its own, with its own mqueue mount: System V objects and POSIX
 * queues left behind are then the example's for sure, whatever other suites
 * on the machine create meanwhile. The wrapper lists them on stderr after
 * MARK. (POSIX shared memory and semaphores live in /dev/shm, shared with
 * everyone: those are checked by name.)
 */
const MARK = '--- left in the IPC namespace ---';
const WRAPPER = `mount -t mqueue mqueue /dev/mqueue || exit 125
"$0" "$1"; rc=$?
echo '${MARK}' >&2
tail -q -n +2 /proc/sysvipc/shm /proc/sysvipc/msg /proc/sysvipc/sem >&2
ls -1 /dev/mqueue >&2
exit $rc`;
const isolated = spawnSync('unshare', ['--ipc', '--mount', '--', 'sh', '-c', 'mount -t mqueue mqueue /dev/mqueue'], { stdio: 'ignore' }).status === 0;

test('every program in examples/ is run here, and every C program in examples/c/ by one of them', () => {
  const programs = readdirSync(join(root, 'examples')).filter((f) => f.endsWith('.mjs'));
  assert.deepEqual(programs.filter((f) => !(f in expectations)), [], 'examples without an expectation here');
  assert.deepEqual(Object.keys(expectations).filter((f) => !programs.includes(f)), [], 'expectations without an example');
  const sources = programs.map((f) => readFileSync(join(root, 'examples', f), 'utf8'));
  const cPrograms = readdirSync(join(root, 'examples', 'c')).filter((f) => f.endsWith('.c'));
  for (const c of cPrograms) {
    const name = c.replace(/\.c$/, '');
    assert.ok(sources.some((s) => s.includes(`compile('${name}'`)), `examples/c/${c} is compiled by no example`);
  }
});

for (const [file, patterns] of Object.entries(expectations)) {
  test(`examples/${file} runs and prints what the docs say`, { timeout: 60_000 }, async () => {
    const program = join(root, 'examples', file);
    const before = isolated ? undefined : { shm: sysvShmIds(), msg: sysvIds('msg'), sem: sysvIds('sem') };
    const r = isolated
      ? await run('unshare', ['--ipc', '--mount', '--', 'sh', '-c', WRAPPER, process.execPath, program], { cwd: root })
      : await run(process.execPath, [program], { cwd: root });
    const [stderr, left] = r.stderr.split(`${MARK}\n`);
    assert.equal(r.code, 0, `exit code ${r.code}; stderr:\n${stderr}`);
    for (const p of patterns) assert.match(r.stdout, p);
    assert.deepEqual(shmEntries('/example-'), [], 'no POSIX shared memory object left in /dev/shm');
    assert.deepEqual(shmEntries('/sem.example-'), [], 'no POSIX semaphore left in /dev/shm');
    if (!before) {
      assert.equal(left, '', 'no System V object or POSIX message queue left');
    } else {
      // Without a namespace of its own: objects of other suites running meanwhile may show up here.
      assert.deepEqual([...sysvShmIds()].filter((id) => !before.shm.has(id)), [], 'no System V segment left');
      assert.deepEqual([...sysvIds('msg')].filter((id) => !before.msg.has(id)), [], 'no System V queue left');
      assert.deepEqual([...sysvIds('sem')].filter((id) => !before.sem.has(id)), [], 'no System V semaphore set left');
      if (existsSync('/dev/mqueue')) assert.deepEqual(readdirSync('/dev/mqueue').filter((f) => f.startsWith('example-')), [], 'no POSIX queue left');
    }
  });
}
