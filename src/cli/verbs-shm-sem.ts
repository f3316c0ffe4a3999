/**
 * `interprocess shm ...` and `interprocess sem ...`: shared memory and
 * semaphores from a shell script, POSIX (/name) and System V (key, id, ftok)
 * behind the same verbs.
 *
 * Output is made for pipes: `shm read` writes the bytes and nothing else,
 * `sem get` prints a bare number, `create` prints what ipcmk prints. Waits
 * are the library's async forms, so Ctrl-C ends them (exit 130) with nothing
 * taken.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, statSync, type Stats } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { Argument, Command, InvalidArgumentError } from 'commander';
import { posix, sysv, IpcError } from '../index.js';
import { Exit, fail, formatKey, parseCount, parseMode, parseTarget, parseTimeout, type Target } from './target.js';

export function registerShmSemCommands(program: Command): void {
  registerShm(program);
  registerSem(program);
}

// ---- command line ---------------------------------------------------------

/**
 * A verb group whose usage errors are one line, `interprocess: <message>`,
 * like the errors the actions raise. Subcommands made with `.command()`
 * inherit both settings.
 */
function group(program: Command, name: string, description: string): Command {
  return oneLineErrors(program.command(name).description(description).showHelpAfterError(false), name);
}

/** A verb of a group, its usage errors prefixed with `group verb:`. */
function verb(parent: Command, name: string): Command {
  return oneLineErrors(parent.command(name), `${parent.name()} ${name}`);
}

function oneLineErrors(cmd: Command, prefix: string): Command {
  return cmd.configureOutput({
    outputError: (text, write) => write(`interprocess: ${prefix}: ${text.replace(/^error: /, '').trim()}\n`),
  });
}

const targetArgument = (required = true): Argument =>
  new Argument(required ? '<target>' : '[target]', '/name (POSIX), 0xKEY or key:N (System V key), ID or id:N (System V id), ftok:PATH:PROJ').argParser(parseTarget);

const UNITS: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

/** A byte count: decimal, 0xHEX, or with a binary suffix (4K, 1M, 2GiB) as ipcmk takes it. */
function parseBytes(text: string): number {
  const m = /^(0x[\da-f]+|\d+)(?:([kmgt])(?:i?b)?)?$/i.exec(text.trim());
  const n = m ? Number(m[1]) * UNITS[(m[2] ?? '').toLowerCase()]! : NaN;
  if (!Number.isSafeInteger(n)) throw new InvalidArgumentError(`expected a number of bytes such as 4096, 0x1000 or 4K (got '${text}')`);
  return n;
}

function parseSize(text: string): number {
  const n = parseBytes(text);
  if (n === 0) throw new InvalidArgumentError('the size must be at least 1 byte');
  return n;
}

function parsePositive(text: string): number {
  const n = parseCount(text);
  if (n === 0) throw new InvalidArgumentError('expected an integer of at least 1 (got 0)');
  return n;
}

/** "de ad be ef", "deadbeef", "de:ad:be:ef" or "0xde 0xad": the bytes. */
function parseHex(text: string): Buffer {
  const digits = text.replace(/0x/gi, '').replace(/[\s:,-]/g, '');
  if (!/^[\da-f]*$/i.test(digits)) fail(`--hex data must be hex digits (optionally separated by spaces or ':'), got '${text.length > 40 ? text.slice(0, 40) + '…' : text}'`, Exit.usage);
  if (digits.length % 2) fail(`--hex data has an odd number of hex digits (${digits.length}): each byte is two digits`, Exit.usage);
  return Buffer.from(digits, 'hex');
}

const octal = (n: number): string => (n === 0 ? '0' : `0${n.toString(8)}`);

/** A time as ipcs prints it (ctime(3) in local time), or "Not set". */
function ctimeText(d: Date | null): string {
  if (!d) return 'Not set';
  const day = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'][d.getDay()];
  const month = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'][d.getMonth()];
  const two = (n: number): string => String(n).padStart(2, '0');
  return `${day} ${month} ${String(d.getDate()).padStart(2, ' ')} ${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())} ${d.getFullYear()}`;
}

const codeOf = (err: unknown): string | undefined => (err instanceof IpcError ? err.code : undefined);

/** Runs an open; ENOENT becomes `message` with exit 4 (the library's text names the system call, not the object). */
function orNotFound<T>(open: () => T, message: string): T {
  try {
    return open();
  } catch (err) {
    if (codeOf(err) === 'ENOENT') fail(message, Exit.notFound);
    throw err;
  }
}

/** Key 0 names no object: every IPC_PRIVATE object has it. */
function notPrivate(target: Target, what: string): void {
  if (target.kind === 'key' && target.key === 0) fail(`key 0 is IPC_PRIVATE, shared by every private ${what}: name it by its id`, Exit.usage);
}

/** A row of /proc/sysvipc/KIND for a key, read without opening the object (no attach, no lpid change). */
function procRowByKey(kind: 'shm' | 'sem', key: number): Record<string, number> | undefined {
  const [head, ...rows] = readFileSync(`/proc/sysvipc/${kind}`, 'utf8').trim().split('\n');
  const names = head!.trim().split(/\s+/);
  for (const row of rows) {
    const fields = row.trim().split(/\s+/).map(Number);
    if (fields[0] === key) return Object.fromEntries(names.map((n, i) => [n, fields[i]!]));
  }
  return undefined;
}

// ---- output ---------------------------------------------------------------

const out = process.stdout;

/**
 * A reader that goes away (`| head -c 16`) is not an error: stop quietly,
 * as cat does (by SIGPIPE, which Node ignores).
 */
let stdoutWatched = false;
function watchStdout(): void {
  if (stdoutWatched) return;
  stdoutWatched = true;
  out.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(Exit.ok);
    process.stderr.write(`interprocess: writing to stdout: ${err.message}\n`);
    process.exit(Exit.error);
  });
}

async function emit(chunk: Uint8Array | string): Promise<void> {
  if (!out.write(chunk)) await once(out, 'drain');
}

/** Bytes per copy out of a mapping: one large object is never one Buffer. */
const CHUNK = 1 << 20;

// ---- shared memory ----------------------------------------------------------

interface Mapped {
  /** The whole object, mapped. */
  bytes: Uint8Array;
  /** How messages name it: '/name', 'segment 123'. */
  label: string;
  close(): void;
}

function segmentLabel(target: Target & { kind: 'key' | 'id' }): string {
  return target.kind === 'id' ? `segment ${target.id}` : `segment with key ${formatKey(target.key)}`;
}

/** shmctl(IPC_STAT) on an id; a missing id is EINVAL (or EIDRM), which is "no such object" here. */
function segmentStat(id: number): sysv.ShmStat {
  try {
    return sysv.SharedMemory.stat(id);
  } catch (err) {
    if (codeOf(err) === 'EINVAL' || codeOf(err) === 'EIDRM') fail(`no System V shared memory segment has id ${id}`, Exit.notFound);
    throw err;
  }
}

function openShm(target: Target, readOnly: boolean): Mapped {
  if (target.kind === 'posix') {
    const shm = orNotFound(() => posix.SharedMemory.open(target.name, { readOnly }), `no POSIX shared memory object ${target.name}`);
    return { bytes: new Uint8Array(shm.buffer), label: target.name, close: () => shm.close() };
  }
  notPrivate(target, 'segment');
  let shm: sysv.SharedMemory;
  if (target.kind === 'key') shm = orNotFound(() => sysv.SharedMemory.open(target.key), `no System V shared memory segment has key ${formatKey(target.key)}`);
  else {
    segmentStat(target.id);
    shm = sysv.SharedMemory.attach(target.id);
  }
  return { bytes: new Uint8Array(shm.buffer), label: segmentLabel(target), close: () => shm.close() };
}

function withShm<T>(target: Target, readOnly: boolean, fn: (m: Mapped) => Promise<T>): Promise<T> {
  const m = openShm(target, readOnly);
  return fn(m).finally(() => m.close());
}

/** [start, end) of the bytes asked for, refused (exit 1) when it leaves the object. */
function range(m: Mapped, offset = 0, length?: number): [number, number] {
  const size = m.bytes.length;
  if (offset > size) fail(`--offset ${offset} is past the end of ${m.label} (${size} bytes)`);
  const len = length ?? size - offset;
  if (offset + len > size) fail(`${len} bytes from offset ${offset} go past the end of ${m.label} (${size} bytes; at most ${size - offset} from there)`);
  return [offset, offset + len];
}

async function shmRead(m: Mapped, start: number, end: number): Promise<void> {
  watchStdout();
  for (let at = start; at < end; at += CHUNK) {
    // A copy: the mapping may change while the write is in flight.
    await emit(Buffer.from(m.bytes.subarray(at, Math.min(at + CHUNK, end))));
  }
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/** One line of `hexdump -C`: offset, 16 bytes in two groups of 8, |ascii|. */
function hexLine(offset: number, line: Uint8Array): string {
  let hex = '';
  let ascii = '';
  for (let i = 0; i < 16; i++) {
    if (i === 8) hex += ' ';
    if (i < line.length) {
      const b = line[i]!;
      hex += `${HEX[b]} `;
      ascii += b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '.';
    } else {
      hex += '   ';
    }
  }
  return `${offset.toString(16).padStart(8, '0')}  ${hex} |${ascii}|\n`;
}

function sameLine(bytes: Uint8Array, a: number, b: number): boolean {
  for (let i = 0; i < 16; i++) if (bytes[a + i] !== bytes[b + i]) return false;
  return true;
}

/**
 * `hexdump -C` exactly: a full line equal to the one before is shown once,
 * then `*` for the run; the last line is the end offset. An empty range
 * prints nothing from offset 0 (or with --length 0), else its offset, as
 * util-linux does.
 */
async function shmHexdump(m: Mapped, start: number, end: number, explicitZeroLength: boolean): Promise<void> {
  watchStdout();
  const { bytes } = m;
  if (start === end) {
    if (start > 0 && !explicitZeroLength) await emit(`${start.toString(16).padStart(8, '0')}\n`);
    return;
  }
  let text = '';
  let starred = false;
  for (let at = start; at < end; at += 16) {
    const n = Math.min(16, end - at);
    if (n === 16 && at > start && sameLine(bytes, at - 16, at)) {
      if (!starred) text += '*\n';
      starred = true;
    } else {
      starred = false;
      text += hexLine(at, bytes.subarray(at, at + n));
    }
    if (text.length >= 1 << 16) {
      await emit(text);
      text = '';
    }
  }
  await emit(`${text}${end.toString(16).padStart(8, '0')}\n`);
}

/** Input from a pipe is held up to this much before the first byte is written (so a too-long input usually writes nothing). */
const HOLD = 64 << 20;

async function shmWrite(m: Mapped, offset: number, data: Buffer | undefined, hex: boolean): Promise<void> {
  const size = m.bytes.length;
  if (offset > size) fail(`--offset ${offset} is past the end of ${m.label} (${size} bytes)`);
  const room = size - offset;
  const tooLong = (n: string, written: number): never =>
    fail(
      `${n} bytes do not fit in ${m.label}: ${room} bytes from offset ${offset} to its end (${size} bytes); ` +
        (written ? `the first ${written} bytes were written` : 'nothing was written'),
    );
  if (data) {
    if (data.length > room) tooLong(String(data.length), 0);
    m.bytes.set(data, offset);
    return;
  }
  if (process.stdin.isTTY) fail('give the DATA to write as an argument, or pipe the bytes into stdin', Exit.usage);
  if (hex) {
    const chunks: Buffer[] = [];
    for await (const c of process.stdin) chunks.push(c as Buffer);
    const bytes = parseHex(Buffer.concat(chunks).toString('latin1'));
    if (bytes.length > room) tooLong(String(bytes.length), 0);
    m.bytes.set(bytes, offset);
    return;
  }
  // Raw stdin: held until its end (or HOLD bytes), so input that does not
  // fit is refused before anything is written; past HOLD, streamed.
  const held: Buffer[] = [];
  let heldBytes = 0;
  let written = 0;
  const flush = (): void => {
    for (const c of held) {
      m.bytes.set(c, offset + written);
      written += c.length;
    }
    held.length = 0;
    heldBytes = 0;
  };
  for await (const c of process.stdin) {
    const chunk = c as Buffer;
    if (written + heldBytes + chunk.length > room) tooLong(`more than ${room}`, written);
    held.push(chunk);
    heldBytes += chunk.length;
    if (heldBytes >= HOLD) flush();
  }
  flush();
}

/** What a create may name: a target, or none with --private (a System V object with no key). */
function checkCreateTarget(target: Target | undefined, isPrivate: boolean | undefined, what: 'segment' | 'set'): void {
  if (isPrivate) {
    if (target) fail(`--private makes a new ${what} with no key: give no target with it`, Exit.usage);
  } else if (!target) fail(`say what to create: a target (/name, 0xKEY, ftok:PATH:PROJ), or --private for a System V ${what} with no key`, Exit.usage);
}

function existingId(what: 'segment' | 'set'): never {
  return fail(`a System V id names an existing ${what}; create by key (0xKEY, key:N, ftok:PATH:PROJ) or with --private`, Exit.usage);
}

interface CreateOpts {
  size: number;
  mode?: number;
  exclusive?: boolean;
  private?: boolean;
}

function shmCreate(target: Target | undefined, o: CreateOpts): void {
  checkCreateTarget(target, o.private, 'segment');
  if (target?.kind === 'posix') {
    const shm = posix.SharedMemory.create(target.name, { size: o.size, mode: o.mode, exclusive: o.exclusive ?? false });
    try {
      // As shmget does for a key that exists: a smaller object than asked for is an error.
      if (!shm.created && shm.size < o.size) fail(`${target.name} exists with ${shm.size} bytes, fewer than --size ${o.size}`);
    } finally {
      shm.close();
    }
    return;
  }
  if (target?.kind === 'id') existingId('segment');
  if (target) notPrivate(target, 'segment');
  const key = target?.key;
  let shm: sysv.SharedMemory;
  try {
    shm = sysv.SharedMemory.create({ key, size: o.size, mode: o.mode, exclusive: o.exclusive ?? false });
  } catch (err) {
    const existing = key === undefined ? undefined : procRowByKey('shm', key);
    if (codeOf(err) === 'EINVAL' && existing && existing['size']! < o.size) {
      fail(`segment ${existing['shmid']} with key ${formatKey(key!)} exists with ${existing['size']} bytes, fewer than --size ${o.size}`);
    }
    throw err;
  }
  shm.close();
  out.write(`Shared memory id: ${shm.id}\n`);
}

function posixStat(name: string): Stats {
  const path = `/dev/shm/${name.slice(1)}`;
  try {
    return statSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') fail(`no POSIX shared memory object ${name} (${path} does not exist)`, Exit.notFound);
    throw err;
  }
}

function shmStat(target: Target, json: boolean): void {
  if (target.kind === 'posix') {
    const st = posixStat(target.name);
    const path = `/dev/shm/${target.name.slice(1)}`;
    if (json) {
      const info = { type: 'posix', name: target.name, path, size: st.size, uid: st.uid, gid: st.gid, mode: st.mode & 0o777, atime: st.atime, mtime: st.mtime, ctime: st.ctime };
      out.write(`${JSON.stringify(info, null, 2)}\n`);
      return;
    }
    out.write(
      `POSIX shared memory ${target.name} (${path})\n` +
        `uid=${st.uid}\tgid=${st.gid}\n` +
        `mode=${octal(st.mode & 0o777)}\n` +
        `bytes=${st.size}\n` +
        `access_time=${ctimeText(st.atime)}\n` +
        `modify_time=${ctimeText(st.mtime)}\n` +
        `change_time=${ctimeText(st.ctime)}\n`,
    );
    return;
  }
  notPrivate(target, 'segment');
  let id: number;
  if (target.kind === 'id') id = target.id;
  else {
    const row = procRowByKey('shm', target.key);
    if (!row) fail(`no System V shared memory segment has key ${formatKey(target.key)}`, Exit.notFound);
    id = row['shmid']!;
  }
  const st = segmentStat(id);
  if (json) {
    const info = {
      type: 'sysv', id, key: formatKey(st.key), size: st.size, uid: st.uid, gid: st.gid, cuid: st.cuid, cgid: st.cgid, mode: st.mode & 0o777,
      // SHM_DEST and SHM_LOCKED, ipcs's "status" column.
      dest: (st.mode & 0o1000) !== 0, locked: (st.mode & 0o2000) !== 0,
      nattch: st.nattch, cpid: st.cpid, lpid: st.lpid, atime: st.atime, dtime: st.dtime, ctime: st.ctime,
    };
    out.write(`${JSON.stringify(info, null, 2)}\n`);
    return;
  }
  // The layout of `ipcs -m -i ID`, with the key added.
  out.write(
    `Shared memory Segment shmid=${id}\n` +
      `key=${formatKey(st.key)}\n` +
      `uid=${st.uid}\tgid=${st.gid}\tcuid=${st.cuid}\tcgid=${st.cgid}\n` +
      `mode=${octal(st.mode)}\taccess_perms=${octal(st.mode & 0o777)}\n` +
      `bytes=${st.size}\tlpid=${st.lpid}\tcpid=${st.cpid}\tnattch=${st.nattch}\n` +
      `att_time=${ctimeText(st.atime)}\n` +
      `det_time=${ctimeText(st.dtime)}\n` +
      `change_time=${ctimeText(st.ctime)}\n`,
  );
}

function registerShm(program: Command): void {
  const shm = group(program, 'shm', 'read, write and inspect shared memory: POSIX objects (/name) and System V segments (key, id)');
  shm.addHelpText(
    'after',
    `
Targets: /name is a POSIX object (/dev/shm/name); 0x1234, key:4660, ftok:PATH:PROJ
name a System V segment by key, 123 or id:123 by its id (as ipcs -m prints it).

Example, a counter file in memory between two scripts:
  interprocess shm create /state --size 4K
  echo -n ready | interprocess shm write /state
  interprocess shm read /state --length 5`,
  );

  verb(shm, 'create')
    .description('create a POSIX object or System V segment (or open it if it exists, unless --exclusive)')
    .addArgument(targetArgument(false))
    .requiredOption('--size <bytes>', 'size in bytes (4096, 0x1000, 64K, 1M)', parseSize)
    .option('--mode <octal>', 'permission bits (default 600; the umask applies to POSIX objects)', parseMode)
    .option('--exclusive', 'fail (exit 1) if it exists already, instead of opening it')
    .option('--private', 'a new System V segment with no key (IPC_PRIVATE), reachable by its id only')
    .addHelpText(
      'after',
      `
System V: prints "Shared memory id: ID" as ipcmk does. POSIX: prints nothing.
An existing object is opened, not resized: smaller than --size is an error.
New memory is zeroed.

Examples:
  interprocess shm create /frames --size 1M --mode 660
  id=$(interprocess shm create --private --size 4096 | awk '{print $NF}')
  interprocess shm create ftok:/etc/hosts:7 --size 64K --exclusive`,
    )
    .action((target: Target | undefined, o: CreateOpts) => shmCreate(target, o));

  verb(shm, 'read')
    .description('write the bytes of a shared memory object to stdout, as they are')
    .addArgument(targetArgument())
    .option('--offset <bytes>', 'first byte to read (default 0)', parseBytes)
    .option('--length <bytes>', 'how many bytes (default: to the end)', parseBytes)
    .addHelpText(
      'after',
      `
A range that goes past the end is an error (exit 1), not a short read.

Examples:
  interprocess shm read /frames --offset 4096 --length 4096 > frame1.raw
  interprocess shm read 0x0000abcd | sha256sum`,
    )
    .action((target: Target, o: { offset?: number; length?: number }) =>
      withShm(target, true, (m) => shmRead(m, ...range(m, o.offset, o.length))),
    );

  verb(shm, 'write')
    .description('write DATA (or stdin) into a shared memory object, never past its end')
    .addArgument(targetArgument())
    .argument('[data]', 'text to write (UTF-8, no newline added), or hex bytes with --hex; default: stdin')
    .option('--offset <bytes>', 'where the first byte goes (default 0)', parseBytes)
    .option('--hex', 'DATA (or stdin) is hex bytes: "de ad be ef", deadbeef, de:ad:be:ef')
    .addHelpText(
      'after',
      `
The object keeps its size: data that would go past its end is refused (exit 1) and
nothing is written (input piped on stdin is held up to 64 MiB to make sure; a longer
input is written as it comes and stops at the end, the message says how much went).

Examples:
  interprocess shm write /state "hello"
  interprocess shm write /state --hex "00 ff 10" --offset 0x100
  interprocess shm write 0x0000abcd < image.bin`,
    )
    .action((target: Target, data: string | undefined, o: { offset?: number; hex?: boolean }) => {
      const bytes = data === undefined ? undefined : o.hex ? parseHex(data) : Buffer.from(data, 'utf8');
      return withShm(target, false, (m) => shmWrite(m, o.offset ?? 0, bytes, o.hex === true));
    });

  verb(shm, 'hexdump')
    .description('show the bytes in the canonical hex+ASCII format of hexdump -C')
    .addArgument(targetArgument())
    .option('--offset <bytes>', 'first byte shown (default 0); offsets printed are from the object\'s start', parseBytes)
    .option('--length <bytes>', 'how many bytes (default: to the end)', parseBytes)
    .addHelpText(
      'after',
      `
Same output as "hexdump -C -s OFFSET -n LENGTH" on the object's bytes: equal lines
collapse into "*", the last line is the end offset.

Examples:
  interprocess shm hexdump /state --length 64
  interprocess shm hexdump 123 --offset 0x1000 --length 0x100`,
    )
    .action((target: Target, o: { offset?: number; length?: number }) =>
      withShm(target, true, (m) => shmHexdump(m, ...range(m, o.offset, o.length), o.length === 0)),
    );

  verb(shm, 'stat')
    .description('size, owner, mode; for System V also attach count and creator/last pids (as ipcs -m -i)')
    .addArgument(targetArgument())
    .option('--json', 'one JSON object (times in ISO 8601, null when never)')
    .addHelpText(
      'after',
      `
Reads without attaching: nattch and lpid are what others did.

Examples:
  interprocess shm stat 0x0000abcd
  interprocess shm stat /frames --json | jq .size`,
    )
    .action((target: Target, o: { json?: boolean }) => shmStat(target, o.json === true));
}

// ---- semaphores ---------------------------------------------------------------

type Sem = { kind: 'posix'; sem: posix.Semaphore; label: string } | { kind: 'sysv'; set: sysv.SemaphoreSet; label: string };

function openSem(target: Target): Sem {
  if (target.kind === 'posix') return { kind: 'posix', sem: orNotFound(() => posix.Semaphore.open(target.name), `no POSIX semaphore ${target.name}`), label: target.name };
  notPrivate(target, 'semaphore set');
  if (target.kind === 'key') {
    const set = orNotFound(() => sysv.SemaphoreSet.open(target.key), `no System V semaphore set has key ${formatKey(target.key)}`);
    return { kind: 'sysv', set, label: `set with key ${formatKey(target.key)}` };
  }
  try {
    return { kind: 'sysv', set: sysv.SemaphoreSet.fromId(target.id), label: `set ${target.id}` };
  } catch (err) {
    if (codeOf(err) === 'EINVAL' || codeOf(err) === 'EIDRM') fail(`no System V semaphore set has id ${target.id}`, Exit.notFound);
    throw err;
  }
}

function closeSem(s: Sem): void {
  if (s.kind === 'posix') s.sem.close();
  else s.set.close();
}

/** The semaphore --index names in a set, checked against its size (exit 1 when it has fewer). */
function indexIn(s: Sem, index: number | undefined): number {
  if (s.kind === 'posix') {
    if (index !== undefined) fail(`--index is for System V sets; ${s.label} is a single POSIX semaphore`, Exit.usage);
    return 0;
  }
  const i = index ?? 0;
  if (i >= s.set.count) fail(`--index ${i} is out of range: ${s.label} has ${s.set.count} semaphore${s.set.count === 1 ? '' : 's'} (0 to ${s.set.count - 1})`);
  return i;
}

/** A System V semop value is at most SEMVMX. */
function checkBy(s: Sem, by: number): void {
  if (s.kind === 'sysv' && by > sysv.SEMVMX) fail(`--by ${by} is more than a System V semaphore holds (${sysv.SEMVMX})`, Exit.usage);
}

/**
 * Ctrl-C (or SIGTERM) during a wait aborts it: the library then takes
 * nothing, the handle is closed, and the exit status says which signal.
 */
class Interrupt {
  readonly controller = new AbortController();
  by: NodeJS.Signals | undefined;
  readonly #onSignal = (signal: NodeJS.Signals): void => {
    this.by = signal;
    this.controller.abort();
  };
  constructor() {
    process.on('SIGINT', this.#onSignal).on('SIGTERM', this.#onSignal);
  }
  get signal(): AbortSignal {
    return this.controller.signal;
  }
  stop(): void {
    process.off('SIGINT', this.#onSignal).off('SIGTERM', this.#onSignal);
  }
  exitIfInterrupted(): void {
    if (this.by) process.exit(128 + (osConstants.signals[this.by] ?? 2));
  }
}

/** What happened to a wait: done, or it would have had to wait (--timeout 0), or time ran out. */
type WaitResult = 'done' | 'busy' | 'timeout';

async function waitResult(p: Promise<void>): Promise<WaitResult> {
  try {
    await p;
    return 'done';
  } catch (err) {
    if (codeOf(err) === 'ETIMEDOUT') return 'timeout';
    throw err;
  }
}

/** Takes `by` from the semaphore, all or nothing, within `timeout`. */
async function take(s: Sem, index: number, by: number, timeout: number, undo: boolean, signal: AbortSignal): Promise<WaitResult> {
  if (s.kind === 'sysv') {
    // One semop: atomic, so a timeout takes nothing.
    const op = { num: index, op: -by, undo };
    if (timeout === 0) return s.set.tryOp(op) ? 'done' : 'busy';
    return waitResult(s.set.op(op, { timeout, signal }));
  }
  // POSIX has no "take N": N waits against one deadline; if they do not all
  // succeed, the ones taken are given back, so a failed wait takes nothing.
  const deadline = performance.now() + timeout;
  let taken = 0;
  try {
    for (; taken < by; taken++) {
      if (timeout === 0) {
        if (!s.sem.tryWait()) return 'busy';
        continue;
      }
      const left = Math.max(0, deadline - performance.now());
      const r = await waitResult(s.sem.wait({ timeout: left, signal }));
      if (r !== 'done') return r;
    }
    return 'done';
  } finally {
    if (taken < by) for (let i = 0; i < taken; i++) s.sem.post();
  }
}

function give(s: Sem, index: number, by: number): void {
  if (s.kind === 'sysv') {
    s.set.tryOp({ num: index, op: by });
    return;
  }
  const value = s.sem.value;
  if (value + by > posix.SEM_VALUE_MAX) fail(`${s.label} is ${value}: adding ${by} would pass SEM_VALUE_MAX (${posix.SEM_VALUE_MAX})`);
  for (let i = 0; i < by; i++) s.sem.post();
}

function semLabel(s: Sem, index: number): string {
  return s.kind === 'posix' ? s.label : `semaphore ${index} of ${s.label}`;
}

function semValue(s: Sem, index: number): number {
  return s.kind === 'posix' ? s.sem.value : s.set.get(index);
}

interface WaitOpts {
  index?: number;
  by?: number;
  timeout?: number;
  undo?: boolean;
}

async function semWait(target: Target, command: string[], o: WaitOpts): Promise<void> {
  const s = openSem(target);
  const interrupt = new Interrupt();
  let exitCode: number | undefined;
  try {
    if (o.undo && s.kind === 'posix') fail('--undo is SEM_UNDO of System V sets; POSIX semaphores have no undo', Exit.usage);
    const index = indexIn(s, o.index);
    const by = o.by ?? 1;
    checkBy(s, by);
    const timeout = o.timeout ?? Infinity;
    let r: WaitResult;
    try {
      r = await take(s, index, by, timeout, o.undo === true, interrupt.signal);
    } catch (err) {
      if (interrupt.by) return;
      throw err;
    }
    if (r === 'busy') fail(`${semLabel(s, index)} is ${semValue(s, index)}${by > 1 ? `, less than --by ${by}` : ''}: waiting would block (--timeout 0)`, Exit.timeout);
    if (r === 'timeout') fail(`${semLabel(s, index)}: not available within ${timeout} ms`, Exit.timeout);
    if (command.length === 0) return;
    interrupt.stop();
    exitCode = await runHolding(command);
    // With --undo the kernel gives it back when this process exits, killed or not.
    if (!o.undo) give(s, index, by);
  } finally {
    interrupt.stop();
    closeSem(s);
    interrupt.exitIfInterrupted();
  }
  if (exitCode !== undefined) process.exitCode = exitCode;
}

/**
 * Runs COMMAND with the semaphore held and returns its exit status as a
 * shell reports it. SIGINT from the terminal reaches the command too (same
 * process group): this process waits for it to end rather than dying with
 * the semaphore held. SIGTERM and SIGHUP sent here are passed on.
 */
async function runHolding(command: string[]): Promise<number> {
  const child = spawn(command[0]!, command.slice(1), { stdio: 'inherit' });
  const ignore = (): void => {};
  const forward = (signal: NodeJS.Signals): void => {
    child.kill(signal);
  };
  process.on('SIGINT', ignore).on('SIGTERM', forward).on('SIGHUP', forward);
  try {
    const [code, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null];
    return code ?? 128 + (signal ? osConstants.signals[signal] ?? 0 : 0);
  } catch (err) {
    process.stderr.write(`interprocess: cannot run '${command[0]}': ${(err as Error).message}\n`);
    return 127;
  } finally {
    process.off('SIGINT', ignore).off('SIGTERM', forward).off('SIGHUP', forward);
  }
}

async function semZero(target: Target, o: { index?: number; timeout?: number }): Promise<void> {
  if (target.kind === 'posix') fail('sem zero waits for a System V semaphore to reach 0; POSIX semaphores have no such wait', Exit.usage);
  const s = openSem(target);
  const interrupt = new Interrupt();
  try {
    const index = indexIn(s, o.index);
    if (s.kind !== 'sysv') return;
    const timeout = o.timeout ?? Infinity;
    let r: WaitResult;
    try {
      r = timeout === 0 ? (s.set.tryOp({ num: index, op: 0 }) ? 'done' : 'busy') : await waitResult(s.set.waitForZero(index, { timeout, signal: interrupt.signal }));
    } catch (err) {
      if (interrupt.by) return;
      throw err;
    }
    if (r === 'busy') fail(`semaphore ${index} of ${s.label} is ${s.set.get(index)}, not 0 (--timeout 0)`, Exit.timeout);
    if (r === 'timeout') fail(`semaphore ${index} of ${s.label} did not reach 0 within ${timeout} ms`, Exit.timeout);
  } finally {
    interrupt.stop();
    closeSem(s);
    interrupt.exitIfInterrupted();
  }
}

interface SemCreateOpts {
  value?: number;
  count?: number;
  mode?: number;
  exclusive?: boolean;
  private?: boolean;
}

function semCreate(target: Target | undefined, o: SemCreateOpts): void {
  checkCreateTarget(target, o.private, 'set');
  if (target?.kind === 'posix') {
    if (o.count !== undefined) fail('--count is the size of a System V set; a POSIX semaphore is a single one', Exit.usage);
    posix.Semaphore.create(target.name, { value: o.value, mode: o.mode, exclusive: o.exclusive ?? false }).close();
    return;
  }
  if (target?.kind === 'id') existingId('set');
  if (target) notPrivate(target, 'semaphore set');
  const key = target?.key;
  const count = o.count ?? 1;
  if (count === 0) fail('--count must be at least 1', Exit.usage);
  let set: sysv.SemaphoreSet;
  try {
    set = sysv.SemaphoreSet.create({ key, count, mode: o.mode, exclusive: o.exclusive ?? false, value: o.value });
  } catch (err) {
    const existing = key === undefined ? undefined : procRowByKey('sem', key);
    if (codeOf(err) === 'EINVAL' && existing && existing['nsems']! < count) {
      fail(`set ${existing['semid']} with key ${formatKey(key!)} exists with ${existing['nsems']} semaphores, fewer than --count ${count}`);
    }
    throw err;
  }
  set.close();
  out.write(`Semaphore id: ${set.id}\n`);
}

function semGet(target: Target, o: { index?: number; all?: boolean; json?: boolean }): void {
  const s = openSem(target);
  try {
    if (s.kind === 'posix') {
      indexIn(s, o.index);
      if (o.all) fail('--all is for System V sets; a POSIX semaphore is a single one', Exit.usage);
      const value = s.sem.value;
      out.write(o.json ? `${JSON.stringify({ type: 'posix', name: s.label, value })}\n` : `${value}\n`);
      return;
    }
    const { set } = s;
    if (o.all && o.index !== undefined) fail('give either --index or --all', Exit.usage);
    const nums = o.all ? [...Array(set.count).keys()] : [indexIn(s, o.index)];
    // As ipcs -s -i: the value, the waiters for an increase (ncount) and for zero (zcount), the last pid.
    const rows = nums.map((semnum) => {
      const w = set.waiters(semnum);
      return { semnum, value: set.get(semnum), ncount: w.forIncrease, zcount: w.forZero, pid: set.lastPid(semnum) };
    });
    if (o.json) {
      out.write(`${JSON.stringify({ type: 'sysv', id: set.id, key: formatKey(set.key), nsems: set.count, semaphores: rows }, null, 2)}\n`);
    } else if (o.all) {
      const cell = (v: string | number): string => String(v).padEnd(10);
      const line = (cells: (string | number)[]): string => `${cells.map(cell).join(' ').trimEnd()}\n`;
      out.write(line(['semnum', 'value', 'ncount', 'zcount', 'pid']) + rows.map((r) => line([r.semnum, r.value, r.ncount, r.zcount, r.pid])).join(''));
    } else {
      out.write(`${rows[0]!.value}\n`);
    }
  } finally {
    closeSem(s);
  }
}

function semPost(target: Target, o: { index?: number; by?: number }): void {
  const s = openSem(target);
  try {
    const index = indexIn(s, o.index);
    const by = o.by ?? 1;
    checkBy(s, by);
    give(s, index, by);
  } finally {
    closeSem(s);
  }
}

function registerSem(program: Command): void {
  const sem = group(program, 'sem', 'create, post, wait on and read semaphores: POSIX named (/name) and System V sets (key, id)');
  sem.addHelpText(
    'after',
    `
Targets: /name is a POSIX named semaphore (/dev/shm/sem.name); 0x1234, key:4660,
ftok:PATH:PROJ name a System V set by key, 123 or id:123 by its id (ipcs -s).
--index N picks the semaphore in a System V set (default 0).

Example, a lock between shell scripts:
  interprocess sem create /lock --value 1
  interprocess sem wait /lock --timeout 5000 && { do_the_work; interprocess sem post /lock; }
or, released even if the script is killed (System V SEM_UNDO):
  interprocess sem create ftok:$HOME:1 --value 1 >/dev/null
  interprocess sem wait ftok:$HOME:1 --undo -- ./do_the_work.sh`,
  );

  verb(sem, 'create')
    .description('create a POSIX named semaphore or a System V set (or open it if it exists, unless --exclusive)')
    .addArgument(targetArgument(false))
    .option('--value <n>', 'initial value (default 0; each semaphore of a System V set), only when this creates it', parseCount)
    .option('--count <n>', 'System V: number of semaphores in the set (default 1)', parseCount)
    .option('--mode <octal>', 'permission bits (default 600; the umask applies to POSIX semaphores)', parseMode)
    .option('--exclusive', 'fail (exit 1) if it exists already, instead of opening it')
    .option('--private', 'a new System V set with no key (IPC_PRIVATE), reachable by its id only')
    .addHelpText(
      'after',
      `
System V: prints "Semaphore id: ID" as ipcmk -S does. POSIX: prints nothing.
An existing semaphore keeps its value: --value only applies to a new one.

Examples:
  interprocess sem create /lock --value 1
  interprocess sem create 0x00001234 --count 3 --value 1 --mode 660`,
    )
    .action((target: Target | undefined, o: SemCreateOpts) => semCreate(target, o));

  verb(sem, 'post')
    .description('add to a semaphore (sem_post; System V: semop +N), waking waiters')
    .addArgument(targetArgument())
    .option('--index <n>', 'System V: which semaphore of the set (default 0)', parseCount)
    .option('--by <n>', 'how much to add (default 1)', parsePositive)
    .addHelpText(
      'after',
      `
Examples:
  interprocess sem post /lock
  interprocess sem post 0x00001234 --index 2 --by 5`,
    )
    .action((target: Target, o: { index?: number; by?: number }) => semPost(target, o));

  verb(sem, 'wait')
    .description('take from a semaphore, waiting until it can (sem_wait; System V: semop -N)')
    .addArgument(targetArgument())
    .argument('[command...]', 'after --: a command to run while holding it; given back when the command ends')
    .option('--index <n>', 'System V: which semaphore of the set (default 0)', parseCount)
    .option('--by <n>', 'how much to take (default 1); all or nothing', parsePositive)
    .option('--timeout <ms>', 'give up after this many ms (exit 3); 0 = do not wait (sem_trywait); default: wait forever', parseTimeout)
    .option('--undo', 'System V SEM_UNDO: the kernel gives it back when interprocess exits, even if killed')
    .addHelpText(
      'after',
      `
Exit status: 0 taken, 3 not available in time (or at once with --timeout 0), 4 no
such semaphore; with a command, the command's own status. Ctrl-C while waiting takes
nothing (exit 130).

--undo alone gives the value back as soon as interprocess exits, that is at once:
it is for holding the semaphore while a command runs, as below.

Examples:
  interprocess sem wait /lock --timeout 5000 && { work; interprocess sem post /lock; }
  interprocess sem wait /lock --timeout 0 || echo "busy"
  interprocess sem wait /lock -- make install        (posts /lock when make ends)
  interprocess sem wait 0x00001234 --undo -- ./job    (even if this is killed)`,
    )
    .action((target: Target, command: string[], o: WaitOpts) => semWait(target, command, o));

  verb(sem, 'get')
    .description('print the value (System V: also waiters and last pid with --all or --json, as ipcs -s -i)')
    .addArgument(targetArgument())
    .option('--index <n>', 'System V: which semaphore of the set (default 0)', parseCount)
    .option('--all', 'System V: every semaphore of the set, as a table: semnum value ncount zcount pid')
    .option('--json', 'JSON: POSIX { name, value }; System V { id, key, nsems, semaphores: [{ semnum, value, ncount, zcount, pid }] }')
    .addHelpText(
      'after',
      `
Without --all or --json: the value alone, for $(...).
ncount: processes waiting for it to grow; zcount: waiting for it to be 0; pid: last
process to operate on it.

Examples:
  [ "$(interprocess sem get /lock)" -gt 0 ] && echo free
  interprocess sem get 0x00001234 --all`,
    )
    .action((target: Target, o: { index?: number; all?: boolean; json?: boolean }) => semGet(target, o));

  verb(sem, 'zero')
    .description('System V: wait until a semaphore is 0 (semop 0)')
    .addArgument(targetArgument())
    .option('--index <n>', 'which semaphore of the set (default 0)', parseCount)
    .option('--timeout <ms>', 'give up after this many ms (exit 3); 0 = do not wait; default: wait forever', parseTimeout)
    .addHelpText(
      'after',
      `
Examples, a countdown of 3 workers:
  interprocess sem create 0x00001234 --value 3 >/dev/null
  (each worker, when done)  interprocess sem wait 0x00001234
  interprocess sem zero 0x00001234 --timeout 60000 && echo "all done"`,
    )
    .action((target: Target, o: { index?: number; timeout?: number }) => semZero(target, o));
}
