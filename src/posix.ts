/** The POSIX flavours: `import { posix } from 'interprocess'` or `from 'interprocess/posix'`. */
export { SharedMemory, MAX_NAME_BYTES as SHM_MAX_NAME_BYTES } from './posix/shared-memory.js';
export type { CreateOptions as SharedMemoryCreateOptions, OpenOptions as SharedMemoryOpenOptions } from './posix/shared-memory.js';
