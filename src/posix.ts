/**
 * The POSIX flavours: `import { posix } from 'interprocess'` or `from 'interprocess/posix'`.
 *
 * @module interprocess/posix
 */
export { SharedMemory, MAX_NAME_BYTES as SHM_MAX_NAME_BYTES } from './posix/shared-memory.js';
export type { CreateOptions as SharedMemoryCreateOptions, OpenOptions as SharedMemoryOpenOptions } from './posix/shared-memory.js';
export { MessageQueue, MQ_PRIO_MAX, MAX_NAME_BYTES as MQ_MAX_NAME_BYTES } from './posix/message-queue.js';
export type { CreateOptions as MessageQueueCreateOptions, Attributes as MessageQueueAttributes, Message as MessageQueueMessage, Access as MessageQueueAccess, Payload as MessageQueuePayload } from './posix/message-queue.js';
export { Semaphore, SEM_VALUE_MAX, MAX_NAME_BYTES as SEM_MAX_NAME_BYTES } from './posix/semaphore.js';
export type { CreateOptions as SemaphoreCreateOptions } from './posix/semaphore.js';
