/**
 * Waits that run on a native waiter thread (native/waiter.cc): for calls with
 * no descriptor to poll (System V msgrcv/msgsnd/semop, POSIX sem_wait).
 *
 * The thread is never one of libuv's pool threads. A timeout or abort signals
 * the thread, whose call returns EINTR having taken nothing; the cancel is
 * repeated every 2 ms until the thread confirms, because a signal that lands
 * just before the thread enters its call is not seen by it. If the call
 * completes before it sees the signal, its result is delivered (a message a
 * receive took is returned, never dropped) even though the wait was
 * cancelled: the abort lost the race.
 */
import { constants } from 'node:os';
import { native } from '../native.js';
import { systemError, type IpcError } from '../errors.js';
import { abortError, deadlineTimer, signalOf, timeoutError, timeoutOf, type DeadlineTimer, type WaitOptions } from './wait.js';

const { ECANCELED, EAGAIN } = constants.errno;

/** Starts the native wait with a completion callback; returns the wait id (0 if no thread could start). */
export type StartWait<T> = (done: (result: T | number) => void) => number;

export interface Where {
  path?: string;
  key?: number;
}

/**
 * Registry of cancel functions for waits still pending on one handle, so
 * close() can end them (they reject with the error close() gives).
 */
export class PendingWaits {
  readonly #cancels = new Set<(why: Error) => void>();
  add(cancel: (why: Error) => void): () => void {
    this.#cancels.add(cancel);
    return () => this.#cancels.delete(cancel);
  }
  get size(): number {
    return this.#cancels.size;
  }
  cancelAll(why: Error): void {
    for (const c of [...this.#cancels]) c(why);
  }
}

export function waitOnThread<T>(
  start: StartWait<T>,
  options: WaitOptions | undefined,
  syscall: string,
  where: Where,
  pending?: PendingWaits,
): Promise<T> {
  const timeout = timeoutOf(options);
  const signal = signalOf(options);
  return new Promise<T>((resolve, reject) => {
    if (signal?.aborted) return reject(abortError(signal));
    let reason: Error | undefined;
    let timer: DeadlineTimer | undefined;
    let retry: NodeJS.Timeout | undefined;
    let forget: (() => void) | undefined;
    const onAbort = (): void => cancel(abortError(signal!));
    const id = start((r) => {
      timer?.clear();
      clearInterval(retry);
      signal?.removeEventListener('abort', onAbort);
      forget?.();
      if (typeof r === 'number' && r < 0) {
        reject(r === -ECANCELED && reason ? reason : systemError(r, syscall, where));
      } else {
        resolve(r as T);
      }
    });
    if (id === 0) return reject(systemError(-EAGAIN, 'pthread_create', where));
    function cancel(why: Error): void {
      if (reason) return;
      reason = why;
      native.cancelWait(id);
      retry = setInterval(() => native.cancelWait(id), 2);
    }
    timer = deadlineTimer(timeout, () => cancel(timeoutError(syscall, where)));
    signal?.addEventListener('abort', onAbort, { once: true });
    forget = pending?.add(cancel);
  });
}

export type { IpcError };
