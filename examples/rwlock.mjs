// A read-write lock across processes: readers share it, a writer waits for
// the readers inside, and a writer that dies mid-write is reported.
import { RwLock } from 'interprocess';
import { spawnSync } from 'node:child_process';

const [, script, role, name] = process.argv;
if (role === 'reader') {
  const rw = RwLock.open(name);
  console.log(`another reader: ${rw.tryReadLock()}`);   // locked: readers share
  rw.readUnlock();
  try {
    await rw.writeLock({ timeout: 50 });               // waits for the reader inside
  } catch (err) {
    console.log(`a writer meanwhile: ${err.name} ${err.code}`);   // TimeoutError ETIMEDOUT
  }
  rw.close();
} else if (role === 'dying-writer') {
  const rw = RwLock.open(name);
  await rw.writeLock();
  process.exit(1);                                     // dies mid-write
} else {
  const name = `/example-rwlock-${process.pid}`;
  const rw = RwLock.create(name, { slots: 4, mode: 0o600 });   // at most 4 readers at once
  const other = (role) => spawnSync(process.execPath, [script, role, name], { stdio: 'inherit' });
  try {
    await rw.readLock({ timeout: 1000 });
    other('reader');                                   // runs while this process reads
    rw.readUnlock();
    await rw.withWriteLock(() => console.log('writer: alone inside'));

    other('dying-writer');
    console.log(`read lock after a writer died: ${await rw.readLock({ timeout: 1000 })}`);   // owner-died
    rw.readUnlock();
    console.log(`and then: ${await rw.withReadLock((r) => r)}`);   // locked: recovered
  } finally {
    rw.close();
    RwLock.unlink(name);
  }
}
