/** The System V flavours: `import { sysv } from 'interprocess'` or `from 'interprocess/sysv'`. */
export { ftok, IPC_PRIVATE, type Key } from './sysv/key.js';
export { SharedMemory } from './sysv/shared-memory.js';
export type { CreateOptions as SharedMemoryCreateOptions, ShmStat } from './sysv/shared-memory.js';
