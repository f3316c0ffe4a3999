// POSIX shared memory options: an exclusive create, create-or-open, a
// read-only (copy-on-write) mapping, stat(), and unlink while mapped.
import { posix } from 'interprocess';

const name = `/example-shm-options-${process.pid}`;
const shm = posix.SharedMemory.create(name, { size: 4096, mode: 0o600 });   // O_CREAT | O_EXCL
let unlinked = false;
try {
  try {
    posix.SharedMemory.create(name, { size: 4096 });
  } catch (err) {
    console.log(`create again: ${err.name} ${err.code} ${err.path === name}`);   // AlreadyExistsError EEXIST
  }
  const same = posix.SharedMemory.create(name, { size: 8192, exclusive: false });   // opens it, keeps its size
  console.log(`exclusive: false gives created=${same.created}, size ${same.size}`);
  same.close();

  const bytes = new Uint8Array(shm.buffer);
  bytes[0] = 1;
  const ro = posix.SharedMemory.open(name, { readOnly: true });
  const view = new Uint8Array(ro.buffer);
  view[1] = 2;                                        // copy-on-write: stays in this mapping
  console.log(`read-only view: ${view[0]},${view[1]}; the object: ${bytes[0]},${bytes[1]}`);
  ro.close();

  const { size, mode } = shm.stat();                  // fstat, as fs.Stats
  console.log(`stat: ${size} bytes, mode ${(mode & 0o777).toString(8)}`);

  posix.SharedMemory.unlink(name);                    // shm_unlink: the name goes now...
  unlinked = true;
  bytes[2] = 3;                                       // ...the memory when the last mapping goes
  try {
    posix.SharedMemory.open(name);
  } catch (err) {
    console.log(`open after unlink: ${err.name} ${err.code}; still mapped here: ${bytes[2]}`);   // NotFoundError ENOENT
  }
} finally {
  shm.close();
  if (!unlinked) posix.SharedMemory.unlink(name);
}
