/**
 * Timeouts and AbortSignals for every operation that can wait. One shape for
 * the whole package: `{ timeout?: number, signal?: AbortSignal }`, timeout in ms.
 */
import { AbortError, TimeoutError, formatKey, invalidArgument } from '../errors.js';
import { constants } from 'node:os';

/**
 * How long an operation that can wait may wait, for every async form in the
 * package (the `...Sync` forms take `timeout` only). Running out of time
 * rejects with a {@link TimeoutError} (code ETIMEDOUT); a timed-out or aborted
 * call has taken, sent or applied nothing. A negative or NaN `timeout`, or a
 * `signal` that is not an AbortSignal, is an {@link InvalidArgumentError}
 * (codes ERR_OUT_OF_RANGE, ERR_INVALID_ARG_TYPE).
 */
export interface WaitOptions {
  /** Milliseconds to wait at most; `Infinity` (the default) waits forever, 0 tries once. */
  timeout?: number;
  /** Aborting rejects the wait with an {@link AbortError} whose `cause` is the signal's reason. */
  signal?: AbortSignal;
}

export function timeoutOf(o: WaitOptions | undefined): number {
  const t = o?.timeout;
  if (t === undefined) return Infinity;
  if (typeof t !== 'number' || Number.isNaN(t) || t < 0) {
    throw invalidArgument(`timeout must be a non-negative number of milliseconds, got ${String(t)}`, 'ERR_OUT_OF_RANGE');
  }
  return t;
}

export function signalOf(o: WaitOptions | undefined): AbortSignal | undefined {
  const s = o?.signal;
  if (s === undefined) return undefined;
  if (!(s instanceof AbortSignal)) throw invalidArgument('signal must be an AbortSignal', 'ERR_INVALID_ARG_TYPE');
  return s;
}

export function abortError(signal: AbortSignal): AbortError {
  return new AbortError(undefined, { cause: signal.reason });
}

export function timeoutError(syscall: string, where: { path?: string; key?: number } = {}): TimeoutError {
  // libuv's text for ETIMEDOUT ("connection timed out") is about sockets.
  const place = where.path !== undefined ? ` '${where.path}'` : where.key !== undefined ? ` key ${formatKey(where.key)}` : '';
  return new TimeoutError('ETIMEDOUT', { errno: -constants.errno.ETIMEDOUT, syscall, ...where, message: `ETIMEDOUT: timed out, ${syscall}${place}` });
}

/**
 * Retries `attempt` until it returns something other than undefined, sleeping
 * between tries with exponential backoff (1 ms doubling up to `maxDelay`).
 * Costs no thread: for waits the kernel offers no event for (a FIFO gaining a
 * reader). Timers are ordinary, so a pending wait keeps the process alive, as
 * a pending connect() does; it ends on success, timeout or abort.
 */
export function pollUntil<T>(
  attempt: () => T | undefined,
  options: WaitOptions | undefined,
  onTimeout: () => Error,
  maxDelay = 16,
): Promise<T> {
  const timeout = timeoutOf(options);
  const signal = signalOf(options);
  return new Promise<T>((resolve, reject) => {
    if (signal?.aborted) return reject(abortError(signal));
    const start = performance.now();
    let delay = 1;
    let timer: NodeJS.Timeout | undefined;
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(abortError(signal!));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    const finish = (fn: () => void): void => {
      signal?.removeEventListener('abort', onAbort);
      fn();
    };
    const tick = (): void => {
      let value: T | undefined;
      try {
        value = attempt();
      } catch (err) {
        return finish(() => reject(err));
      }
      if (value !== undefined) return finish(() => resolve(value as T));
      const left = timeout - (performance.now() - start);
      if (left <= 0) return finish(() => reject(onTimeout()));
      timer = setTimeout(tick, Math.min(delay, left));
      delay = Math.min(delay * 2, maxDelay);
    };
    tick();
  });
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));

/** Blocks the calling thread for `ms` (the `...Sync` forms only). */
export function sleepSync(ms: number): void {
  Atomics.wait(sleeper, 0, 0, ms);
}

/** The synchronous twin of {@link pollUntil}: blocks the thread between tries. */
export function pollUntilSync<T>(attempt: () => T | undefined, options: { timeout?: number } | undefined, onTimeout: () => Error, maxDelay = 16): T {
  const timeout = timeoutOf(options);
  const start = performance.now();
  let delay = 1;
  for (;;) {
    const value = attempt();
    if (value !== undefined) return value;
    const left = timeout - (performance.now() - start);
    if (left <= 0) throw onTimeout();
    sleepSync(Math.min(delay, left));
    delay = Math.min(delay * 2, maxDelay);
  }
}

/** The longest delay setTimeout honours; a longer one fires after 1 ms. */
const MAX_TIMER_MS = 0x7fffffff;

export interface DeadlineTimer {
  clear(): void;
}

/**
 * Calls `onExpire` once `ms` milliseconds have passed (never for Infinity),
 * re-arming as often as needed for delays past setTimeout's limit.
 */
export function deadlineTimer(ms: number, onExpire: () => void): DeadlineTimer {
  if (ms === Infinity) return { clear() {} };
  const deadline = performance.now() + ms;
  let timer: NodeJS.Timeout;
  const arm = (left: number): void => {
    timer = setTimeout(() => {
      const rest = deadline - performance.now();
      if (rest <= 0) onExpire();
      else arm(rest);
    }, Math.min(Math.ceil(left), MAX_TIMER_MS));
  };
  arm(ms);
  return { clear: () => clearTimeout(timer) };
}
