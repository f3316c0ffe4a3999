// Mutex benchmark: uncontended lock+unlock cost, and contended lock traffic
// between two processes (throughput and how often the lock changes hands),
// for interprocess's Mutex beside a C program using the same robust,
// process-shared pthread mutex (the primitive Boost.Interprocess's
// interprocess_mutex wraps on Linux), measured in the same run.
import { Mutex, posix } from 'interprocess';
import { compile, pinned, run, saveJson, table } from './lib.mjs';

const role = process.argv[2];

if (role === 'contend') {
  const [, , , name, offset, n, id, mode] = process.argv;
  const shm = posix.SharedMemory.open(name);
  const m = Mutex.at(shm.buffer, Number(offset));
  const w = new Int32Array(shm.buffer, Number(offset) + 64, 4);
  const me = Number(id);
  while (Atomics.load(w, 0) === 0) { /* start together */ }
  for (let i = 0, end = Number(n); i < end; i++) {
    if (mode === 'async') await m.lock();
    else m.lockSync();
    if (w[2] !== me) { w[2] = me; w[3]++; }
    w[1]++;
    m.unlock();
  }
  process.exit(0);
}

const c = compile('mutex_bench');
const N = 1_000_000;

function uncontended(label, fn, n) {
  for (let i = 0; i < Math.min(n, 10_000); i++) fn();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) fn();
  return { case: label, 'ns/op': (Number(process.hrtime.bigint() - t0) / n).toFixed(1) };
}

const results = { uncontended: [], contended: [] };
const name = `/ipx-bench-mutex-${process.pid}`;
const shm = posix.SharedMemory.create(name, { size: 4096 });
try {
  const m = Mutex.init(shm.buffer, 0);
  const cNs = Number((await run(c, ['uncontended', String(N * 10)])).trim());
  results.uncontended.push({ case: 'C pthread_mutex_lock+unlock', 'ns/op': cNs.toFixed(1) });
  results.uncontended.push(uncontended('Node tryLock()+unlock()', () => { m.tryLock(); m.unlock(); }, N));
  results.uncontended.push(uncontended('Node lockSync()+unlock()', () => { m.lockSync(); m.unlock(); }, N));
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < N / 4; i++) { await m.lock(); m.unlock(); }
  results.uncontended.push({ case: 'Node await lock()+unlock()', 'ns/op': (Number(process.hrtime.bigint() - t0) / (N / 4)).toFixed(1) });
  for (const r of results.uncontended) r['x C'] = (Number(r['ns/op']) / cNs).toFixed(1);

  const per = 200_000;
  const words = new Int32Array(shm.buffer, 64, 4);
  for (const mode of ['C', 'sync', 'async']) {
    words.fill(0);
    const kids = [0, 1].map((id) => {
      const [cmd, args] = mode === 'C'
        ? pinned(id, c, ['contend', name, '0', String(per), String(id + 1)])
        : pinned(id, process.execPath, [process.argv[1], 'contend', name, '0', String(per), String(id + 1), mode]);
      return run(cmd, args);
    });
    await new Promise((r) => setTimeout(r, 300));
    const t0 = process.hrtime.bigint();
    Atomics.store(words, 0, 1);
    await Promise.all(kids);
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    if (words[1] !== 2 * per) throw new Error(`lost updates: ${words[1]} != ${2 * per}`);
    results.contended.push({
      case: mode === 'C' ? 'C pthread, 2 processes' : `Node ${mode === 'sync' ? 'lockSync' : 'await lock'}, 2 processes`,
      'lock+unlock/s': Math.round((2 * per) / s).toLocaleString('en'),
      'handoffs/s': Math.round(words[3] / s).toLocaleString('en'),
      count: words[1] === 2 * per ? 'exact' : 'WRONG',
    });
  }
} finally {
  shm.close();
  posix.SharedMemory.unlink(name);
}

console.log('Uncontended lock+unlock (one process)');
console.log(table(results.uncontended, ['case', 'ns/op', 'x C']));
console.log('\nContended: two processes, each 200,000 x (lock, count, unlock)');
console.log(table(results.contended, ['case', 'lock+unlock/s', 'handoffs/s', 'count']));
console.log(`\nresults: ${saveJson('mutex', results)}`);
