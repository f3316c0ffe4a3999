// Mutex benchmark: uncontended lock+unlock cost, and contended lock traffic
// between two processes (throughput and how often the lock changes hands),
// for interprocess's Mutex beside a C program using the same robust,
// process-shared pthread mutex (the primitive Boost.Interprocess's
// interprocess_mutex wraps on Linux), measured in the same run.
// `node bench/mutex.mjs` runs everything; `--only c,lock-sync` some cases,
// `--quick` fewer iterations (the rest of the command line: lib.mjs's options()).
import { Mutex, posix } from 'interprocess';
import { compile, emit, options, pinned, run, running, saveJson, table } from './lib.mjs';

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

// The cases, in table order (`--only` takes their keys).
const CASES = [
  { key: 'c', label: 'C pthread_mutex_lock+unlock', kind: 'uncontended' },
  { key: 'try-lock', label: 'Node tryLock()+unlock()', kind: 'uncontended' },
  { key: 'lock-sync', label: 'Node lockSync()+unlock()', kind: 'uncontended' },
  { key: 'lock-async', label: 'Node await lock()+unlock()', kind: 'uncontended' },
  { key: 'contended-c', label: 'C pthread, 2 processes', kind: 'contended', mode: 'C' },
  { key: 'contended-sync', label: 'Node lockSync, 2 processes', kind: 'contended', mode: 'sync' },
  { key: 'contended-async', label: 'Node await lock, 2 processes', kind: 'contended', mode: 'async' },
];
const opts = options(CASES);
const { fd } = opts;

let c;
try {
  c = compile('mutex_bench');
} catch (err) {
  process.stderr.write(`C baseline not built (${String(err.message).split('\n')[0]}): C rows skipped\n`);
}
// --quick: a fifth of the uncontended iterations. The contended runs keep their length:
// shorter ones measure the contenders' start-up (cold JIT), and these take half a second.
const N = opts.quick ? 200_000 : 1_000_000;
const per = 200_000;

function uncontended(fn, n) {
  for (let i = 0; i < Math.min(n, 10_000); i++) fn();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) fn();
  return Number(process.hrtime.bigint() - t0) / n;
}

const results = { quick: opts.quick, iterations: N, perProcess: per, uncontended: [], contended: [] };
const name = `/ipx-bench-mutex-${process.pid}`;
// A signal ends the process without running finally blocks: stop the contenders
// (they would spin forever waiting for the start flag) and remove the object.
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    for (const child of running) child.kill('SIGKILL');
    try { posix.SharedMemory.unlink(name); } catch { /* not there yet, or gone */ }
    process.exit(130);
  });
}
emit(fd, { event: 'plan', suite: 'mutex', quick: opts.quick, runs: 1, total: opts.selected.length, cases: opts.selected.map(({ key, label }) => ({ key, label })) });
const shm = posix.SharedMemory.create(name, { size: 4096 });
try {
  const m = Mutex.init(shm.buffer, 0);
  const words = new Int32Array(shm.buffer, 64, 4);
  let cNs, cRate;
  for (const k of opts.selected) {
    emit(fd, { event: 'start', key: k.key, label: k.label, run: 1 });
    if (!c && (k.key === 'c' || k.mode === 'C')) {
      emit(fd, { event: 'done', key: k.key, label: k.label, run: 1, seconds: 0, skipped: 'the C baseline could not be built' });
      continue;
    }
    const started = Date.now();
    if (k.kind === 'uncontended') {
      let ns;
      if (k.key === 'c') ns = cNs = Number((await run(c, ['uncontended', String(N * 10)])).trim());
      else if (k.key === 'try-lock') ns = uncontended(() => { m.tryLock(); m.unlock(); }, N);
      else if (k.key === 'lock-sync') ns = uncontended(() => { m.lockSync(); m.unlock(); }, N);
      else {
        const t0 = process.hrtime.bigint();
        for (let i = 0; i < N / 4; i++) { await m.lock(); m.unlock(); }
        ns = Number(process.hrtime.bigint() - t0) / (N / 4);
      }
      results.uncontended.push({ key: k.key, case: k.label, 'ns/op': ns.toFixed(1), nsPerOp: ns });
    } else {
      const mode = k.mode;
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
      const rate = (2 * per) / s;
      if (mode === 'C') cRate = rate;
      results.contended.push({
        key: k.key,
        case: k.label,
        'lock+unlock/s': Math.round(rate).toLocaleString('en'),
        'handoffs/s': Math.round(words[3] / s).toLocaleString('en'),
        count: words[1] === 2 * per ? 'exact' : 'WRONG',
        locksPerSec: rate,
        handoffsPerSec: words[3] / s,
        exact: words[1] === 2 * per,
      });
    }
    emit(fd, { event: 'done', key: k.key, label: k.label, run: 1, seconds: (Date.now() - started) / 1000 });
  }
  // x C: the case's figure over C's (time per operation: higher is slower; throughput: lower is slower).
  for (const r of results.uncontended) {
    if (cNs === undefined) continue;
    r['x C'] = (r.nsPerOp / cNs).toFixed(1);
    r.ratioToC = r.nsPerOp / cNs;
  }
  for (const r of results.contended) if (cRate !== undefined) r.ratioToC = r.locksPerSec / cRate;
} finally {
  shm.close();
  posix.SharedMemory.unlink(name);
}

if (results.quick) console.log('QUICK RUN (--quick): fewer iterations, a smoke test; the figures are indicative only\n');
if (results.uncontended.length) {
  console.log('Uncontended lock+unlock (one process)');
  console.log(table(results.uncontended, ['case', 'ns/op', 'x C']));
}
if (results.contended.length) {
  console.log(`${results.uncontended.length ? '\n' : ''}Contended: two processes, each ${per.toLocaleString('en')} x (lock, count, unlock)`);
  console.log(table(results.contended, ['case', 'lock+unlock/s', 'handoffs/s', 'count']));
}
console.log(`\nresults: ${saveJson('mutex', results, opts.jsonOut)}`);
