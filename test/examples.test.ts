// Runs every program in examples/ (the README shows them) and checks what it
// prints, so the documented examples cannot rot.
import { test } from 'node:test';
import assert from 'node:assert/strict';
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
  'channel.mjs': [/^Received: Hello, Channel\nin place: 1,2,3,4,5\nthen: done\nstale after use\? false$/m],
  'sem-sysv.mjs': [/^Parent entering critical section\nParent leaving critical section\nChild entering critical section\nChild leaving critical section$/m],
};

for (const [file, patterns] of Object.entries(expectations)) {
  test(`examples/${file} runs and prints what the README says`, async () => {
    const segmentsBefore = sysvShmIds();
    const queuesBefore = sysvIds('msg');
    const setsBefore = sysvIds('sem');
    const r = await run(process.execPath, [join(root, 'examples', file)], { cwd: root });
    assert.equal(r.code, 0, `exit code ${r.code}; stderr:\n${r.stderr}`);
    for (const p of patterns) assert.match(r.stdout, p);
    assert.deepEqual(shmEntries('/example-'), [], 'no POSIX object left in /dev/shm');
    assert.deepEqual([...sysvShmIds()].filter((id) => !segmentsBefore.has(id)), [], 'no System V segment left');
    assert.deepEqual([...sysvIds('msg')].filter((id) => !queuesBefore.has(id)), [], 'no System V queue left');
    assert.deepEqual([...sysvIds('sem')].filter((id) => !setsBefore.has(id)), [], 'no System V semaphore set left');
  });
}
