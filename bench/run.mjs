// `npm run bench`: every benchmark in this folder, one after the other (they
// must not share the two cores). Each prints its table and writes JSON to
// bench/results/. Pass names to run some: `npm run bench -- mutex`.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const wanted = process.argv.slice(2);
const all = readdirSync(here).filter((f) => f.endsWith('.mjs') && !['run.mjs', 'lib.mjs'].includes(f)).map((f) => f.slice(0, -4));
for (const name of wanted.length ? wanted : all) {
  if (!all.includes(name)) {
    console.error(`no benchmark named ${name} (have: ${all.join(', ')})`);
    process.exit(2);
  }
  console.log(`\n### ${name}\n`);
  const r = spawnSync(process.execPath, [join(here, `${name}.mjs`)], { stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
}
