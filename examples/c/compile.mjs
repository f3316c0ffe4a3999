// Compiles one of the C programs in examples/c/ for the examples that pair
// Node with C: `cc -std=gnu11 -I include NAME.c [c/interprocess.c]`, into a
// temporary directory that cleanup() removes.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');

export function compile(name, { withLibrary = false } = {}) {
  const dir = mkdtempSync(join(tmpdir(), `example-${name}-`));
  const program = join(dir, name);
  const sources = [join(here, `${name}.c`), ...(withLibrary ? [join(root, 'c', 'interprocess.c')] : [])];
  try {
    execFileSync('cc', ['-std=gnu11', '-O2', '-Wall', '-Werror', '-I', join(root, 'include'), '-o', program, ...sources, '-pthread', '-lrt'], {
      stdio: 'inherit',
    });
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return { program, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
