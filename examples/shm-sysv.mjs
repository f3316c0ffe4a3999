// The tutorial's shm_example.c: System V shared memory found through ftok().
import { sysv } from 'interprocess';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

if (process.argv[2] === 'child') {
  const key = sysv.ftok(process.argv[3], 65);          // the same key a C program computes
  const seg = sysv.SharedMemory.open(key);
  const text = Buffer.from(seg.buffer, 0, 64);
  console.log(`Received: ${text.subarray(0, text.indexOf(0))}`);
  seg.close();
} else {
  const dir = mkdtempSync(join(tmpdir(), 'shm-example-'));
  const keyFile = join(dir, 'shmfile');
  writeFileSync(keyFile, '');
  const seg = sysv.SharedMemory.create({ key: sysv.ftok(keyFile, 65), size: 1024, mode: 0o600 });
  try {
    Buffer.from(seg.buffer).write('Hello, Shared Memory\0');
    execFileSync(process.execPath, [process.argv[1], 'child', keyFile], { stdio: 'inherit' });
    const { nattch, cpid, lpid } = seg.stat();
    console.log(`attached: ${nattch}, created by ${cpid}, last attach/detach by ${lpid}`);
  } finally {
    seg.remove();                                      // IPC_RMID: gone once everyone detached
    seg.close();
    rmSync(dir, { recursive: true });
  }
}
