/**
 * The System V flavours: `import { sysv } from 'interprocess'` or `from 'interprocess/sysv'`.
 *
 * @module interprocess/sysv
 */
export { ftok, IPC_PRIVATE, type Key, type IpcPerm } from './sysv/key.js';
export { SharedMemory } from './sysv/shared-memory.js';
export type { CreateOptions as SharedMemoryCreateOptions, ShmStat } from './sysv/shared-memory.js';
export { MessageQueue, MSGMAX, MSGMNB } from './sysv/message-queue.js';
export type { CreateOptions as MessageQueueCreateOptions, ReceiveOptions, Message, MsqStat } from './sysv/message-queue.js';
export { SemaphoreSet, SEMVMX, SEMMSL, SEMOPM } from './sysv/semaphore-set.js';
export type { CreateOptions as SemaphoreSetCreateOptions, SemOp, SemStat } from './sysv/semaphore-set.js';
