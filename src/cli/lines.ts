import type { ChildProcess } from 'node:child_process';

/** Resolves with the first line `child` prints that matches `pattern` (its stdout must be a pipe). */
export function waitForLine(child: ChildProcess, pattern: RegExp, timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => done(new Error(`no line matching ${pattern} from child ${child.pid}`)), timeoutMs);
    const onData = (d: Buffer): void => {
      buf += d.toString();
      const line = buf.split('\n').slice(0, -1).find((l) => pattern.test(l)); // whole lines: a chunk may end mid-line
      if (line !== undefined) done(undefined, line);
    };
    const onExit = (): void => done(new Error(`child ${child.pid} exited before printing ${pattern}`));
    function done(err?: Error, line?: string): void {
      clearTimeout(timer);
      child.stdout?.off('data', onData);
      child.off('exit', onExit);
      if (err) reject(err);
      else resolve(line!);
    }
    child.stdout?.on('data', onData);
    child.on('exit', onExit);
  });
}
