/** System limits read from /proc (Linux); the documented defaults elsewhere. */
import { readFileSync } from 'node:fs';

/** A positive integer from a /proc file, or `fallback` when it cannot be read. */
export function procLimit(file: string, fallback: number): number {
  try {
    const n = Number(readFileSync(file, 'utf8').trim());
    return Number.isSafeInteger(n) && n > 0 ? n : fallback;
  } catch {
    return fallback;
  }
}

/** The whitespace-separated integers of a /proc file (e.g. /proc/sys/kernel/sem), or [] when unreadable. */
export function procFields(file: string): number[] {
  try {
    return readFileSync(file, 'utf8').trim().split(/\s+/).map(Number).filter((n) => Number.isSafeInteger(n));
  } catch {
    return [];
  }
}
