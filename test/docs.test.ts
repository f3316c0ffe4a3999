// The documentation cannot rot:
// - TypeDoc builds the API reference (typedoc.json) with no warning or error,
//   so a broken {@link} or a public signature using an unexported type fails;
// - every code block of docs/guides/ and of the README's Examples section
//   presented as a program is cut, verbatim, from the example it names
//   (examples.test.ts runs those examples);
// - relative links in the guides and the README lead to files that exist.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { root, run, tempDir } from './helpers.js';

const guidesDir = join(root, 'docs', 'guides');
const guides = readdirSync(guidesDir).filter((f) => f.endsWith('.md'));

/** A Markdown file whose programs must be cut from examples/. */
interface Doc {
  path: string;
  /**
   * The `## ` sections where an unmarked block must not be a program; the
   * whole file when absent. Marked blocks are checked wherever they are.
   */
  sections?: string[];
  /** Whether it must show at least one marked example. */
  showsExample: boolean;
}

const docs: Doc[] = [
  ...guides.map((g) => ({ path: join(guidesDir, g), showsExample: g !== 'README.md' })),
  // The README's other sections may sketch a few lines (## Errors); its examples may not.
  { path: join(root, 'README.md'), sections: ['Examples'], showsExample: true },
];

interface Fence {
  file: string;
  line: number;
  info: string;
  body: string[];
  /** The path after `<!-- example: ... -->` on the line before the fence (blank lines allowed between). */
  example: string | undefined;
  /** The title of the `## ` section the fence is in, if any. */
  section: string | undefined;
}

/** The fenced code blocks of a Markdown file, with the example marker before each, if any. */
function fences(file: string): Fence[] {
  const lines = readFileSync(file, 'utf8').split('\n');
  const out: Fence[] = [];
  let section: string | undefined;
  for (let i = 0; i < lines.length; i++) {
    const heading = /^##\s+(.*?)\s*$/.exec(lines[i]!);
    if (heading) section = heading[1];
    const open = /^(\s*)(`{3,})(.*)$/.exec(lines[i]!);
    if (!open) continue;
    const [, indent, ticks, info] = open;
    const body: string[] = [];
    let j = i + 1;
    while (j < lines.length && !(lines[j]!.startsWith(indent! + ticks!) && lines[j]!.trim() === ticks)) {
      body.push(lines[j]!.startsWith(indent!) ? lines[j]!.slice(indent!.length) : lines[j]!);
      j++;
    }
    assert.ok(j < lines.length, `${relative(root, file)}:${i + 1}: unclosed code block`);
    let k = i - 1;
    while (k >= 0 && lines[k]!.trim() === '') k--;
    const marker = k >= 0 ? /^\s*<!--\s*example:\s*(\S+)\s*-->\s*$/.exec(lines[k]!) : null;
    out.push({ file, line: i + 1, info: info!.trim(), body, example: marker?.[1], section });
    i = j;
  }
  return out;
}

/**
 * Whether `block` is a run of consecutive whole lines of `source`, allowing
 * only one common indentation removed (a snippet cut from inside a function).
 */
function isExcerpt(source: string, block: string[]): boolean {
  const lines = source.split('\n');
  const first = block.findIndex((l) => l.trim() !== '');
  if (first < 0) return false;
  for (let i = first; i < lines.length; i++) {
    const line = lines[i]!;
    if (!line.endsWith(block[first]!)) continue;
    const indent = line.slice(0, line.length - block[first]!.length);
    if (indent.trim() !== '') continue;
    const start = i - first;
    if (start < 0 || start + block.length > lines.length) continue;
    const same = block.every((b, k) => {
      const l = lines[start + k]!;
      return b.trim() === '' ? l.trim() === '' : l === indent + b;
    });
    if (same) return true;
  }
  return false;
}

/** Code blocks that are not programs: shell commands, output and layouts, type signatures. */
const UNMARKED = new Set(['sh', 'console', 'text', 'ts']);

test('every program in docs/guides/ and the README examples is cut verbatim from the example it names', () => {
  assert.ok(guides.length > 0, 'docs/guides/ has guides');
  for (const doc of docs) {
    const name = relative(root, doc.path);
    const all = fences(doc.path);
    for (const section of doc.sections ?? []) {
      // A renamed heading would otherwise turn the check off without a word.
      assert.ok(all.some((f) => f.section === section), `${name} has no code block under "## ${section}"`);
    }
    let checked = 0;
    for (const f of all) {
      const where = `${name}:${f.line}`;
      if (f.example === undefined) {
        if (doc.sections && !doc.sections.includes(f.section!)) continue;
        assert.ok(UNMARKED.has(f.info), `${where}: a \`\`\`${f.info} block must be cut from an example (<!-- example: examples/NAME -->), or be sh, console, text or ts (signatures)`);
        if (f.info === 'ts') {
          // Type signatures only: a program in TypeScript would escape the check.
          assert.ok(!f.body.some((l) => /^\s*(import|await|const|let)\b/.test(l)), `${where}: a ts block holds signatures, not a program`);
        }
        continue;
      }
      const path = resolve(root, f.example);
      assert.ok(path.startsWith(join(root, 'examples') + '/') && existsSync(path), `${where}: ${f.example} is not a file in examples/`);
      assert.ok(
        isExcerpt(readFileSync(path, 'utf8'), f.body),
        `${where}: this block is not a verbatim excerpt of ${f.example} (copy it again from the example):\n${f.body.join('\n')}`,
      );
      checked++;
    }
    if (doc.showsExample) assert.ok(checked > 0, `${name} shows no runnable example`);
  }
});

test('the excerpt check fails when a snippet drifts from its example', () => {
  const marked = docs.flatMap((d) => fences(d.path)).filter((f) => f.example !== undefined);
  assert.ok(marked.some((f) => f.file === join(root, 'README.md')), 'the README has marked examples');
  for (const f of marked) {
    const where = `${relative(root, f.file)}:${f.line}`;
    const source = readFileSync(resolve(root, f.example!), 'utf8');
    assert.ok(isExcerpt(source, f.body), where);
    const k = f.body.findIndex((l) => /[a-z]/.test(l));
    const drifted = [...f.body];
    drifted[k] = drifted[k]!.replace(/[a-z]/, (c) => (c === 'x' ? 'y' : 'x'));
    assert.equal(isExcerpt(source, drifted), false, `a changed letter in ${where}`);
    assert.equal(isExcerpt(source, [...f.body, 'console.log("one more line");']), false, `an added line in ${where}`);
    if (f.body.length > 2) assert.equal(isExcerpt(source, [f.body[0]!, ...f.body.slice(2)]), false, `a dropped line in ${where}`);
  }
  assert.equal(isExcerpt('a\n  b\n  c\nd', ['b', 'c']), true, 'a common indentation may be removed');
  assert.equal(isExcerpt('a\n  b\n    c\nd', ['b', 'c']), false, 'but not a different one per line');
});

test('relative links in docs/guides/ and README.md lead to files that exist; the index lists every guide', () => {
  const files = [...guides.map((g) => join(guidesDir, g)), join(root, 'README.md')];
  for (const file of files) {
    const text = readFileSync(file, 'utf8').replace(/```[\s\S]*?```/g, '');
    for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
      if (/^[a-z]+:/i.test(target!) || target!.startsWith('#')) continue;
      const path = resolve(dirname(file), decodeURI(target!.replace(/#.*$/, '')));
      assert.ok(existsSync(path), `${relative(root, file)}: link to ${target} leads nowhere`);
    }
  }
  const index = readFileSync(join(guidesDir, 'README.md'), 'utf8');
  for (const g of guides.filter((g) => g !== 'README.md')) assert.ok(index.includes(`](${g})`), `docs/guides/README.md does not link ${g}`);
});

test('typedoc builds the API reference with no warning or error', { timeout: 120_000 }, async (t) => {
  const out = tempDir('typedoc');
  t.after(out.cleanup);
  const start = performance.now();
  const r = await run(process.execPath, [join(root, 'node_modules', 'typedoc', 'bin', 'typedoc'), '--out', out.dir], {
    cwd: root,
    env: { ...process.env, NO_COLOR: '1' },
  });
  t.diagnostic(`typedoc took ${Math.round(performance.now() - start)} ms`);
  const output = (r.stdout + r.stderr).replace(/\x1b\[[0-9;]*m/g, '');
  assert.equal(r.code, 0, output);
  assert.doesNotMatch(output, /\[(warning|error)\]/, output);
  // One module per package entry point, named as users import it.
  for (const page of ['interprocess', 'interprocess_posix', 'interprocess_sysv', 'interprocess_qemu']) {
    assert.ok(existsSync(join(out.dir, 'modules', `${page}.html`)), `no page for module ${page}`);
  }
  for (const page of ['interprocess.Channel', 'interprocess.Mutex', 'interprocess_posix.SharedMemory', 'interprocess_sysv.SemaphoreSet', 'interprocess_qemu.QemuPipe']) {
    assert.ok(existsSync(join(out.dir, 'classes', `${page}.html`)), `no page for class ${page}`);
  }
});
