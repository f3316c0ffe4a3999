/**
 * `interprocess ls`, `rm` and `clean --stale`: ipcs and ipcrm for every kind
 * of IPC object, POSIX ones and this package's included.
 */
import { createInterface } from 'node:readline/promises';
import { Command } from 'commander';
import Table from 'cli-table3';
import pc from 'picocolors';
import { posix, sysv } from '../index.js';
import { GROUPS, listObjects, mqueueMounted, objectLabel, MQUEUE_HINT, PACKAGE_TYPES, type IpcObject, type ObjectType } from './objects.js';
import { CliError, Exit, codeOf, exitCodeOf, fail, formatKey, parseTarget, type Target } from './target.js';

const TYPES: readonly ObjectType[] = ['msg', 'shm', 'sem', 'posix-mq', 'posix-shm', 'posix-sem', ...PACKAGE_TYPES];

function parseTypes(text: string, previous: ObjectType[] = []): ObjectType[] {
  const out = [...previous];
  for (const t of text.split(',')) {
    if (!(TYPES as readonly string[]).includes(t)) fail(`unknown type '${t}' (types: ${TYPES.join(', ')})`, Exit.usage);
    out.push(t as ObjectType);
  }
  return out;
}

const modeText = (mode: number): string => mode.toString(8).padStart(3, '0');

function useText(o: IpcObject): string {
  if (o.messages !== undefined) return `${o.messages} msg`;
  if (o.values) return o.values.join(' ');
  return '';
}

function attachText(o: IpcObject): string {
  if (o.nattch !== undefined) return String(o.nattch);
  return o.attached.length ? o.attached.join(',') : '-';
}

function creatorText(o: IpcObject, color: boolean): string {
  if (!o.creatorPid) return '-';
  const state = o.creatorAlive ? 'alive' : 'dead';
  const text = `${o.creatorPid} ${state}`;
  return color ? (o.creatorAlive ? pc.green(text) : pc.red(text)) : text;
}

function printTable(objects: IpcObject[], out: NodeJS.WriteStream): void {
  const color = out.isTTY === true;
  const c = pc.createColors(color);
  const table = new Table({
    head: ['TYPE', 'ID/NAME', 'KEY', 'OWNER', 'PERMS', 'SIZE', 'USE', 'ATTACH', 'CREATOR', 'STATE'],
    chars: { top: '', 'top-mid': '', 'top-left': '', 'top-right': '', bottom: '', 'bottom-mid': '', 'bottom-left': '', 'bottom-right': '', left: '', 'left-mid': '', mid: '', 'mid-mid': '', right: '', 'right-mid': '', middle: '  ' },
    style: { head: color ? ['bold'] : [], border: [], 'padding-left': 0, 'padding-right': 0 },
  });
  for (const o of objects) {
    const state = o.stale ? c.yellow(`stale: ${o.detail}`) : o.detail;
    table.push([o.type, objectLabel(o), o.key === undefined ? '-' : formatKey(o.key), o.user, modeText(o.mode), String(o.size), useText(o), attachText(o), creatorText(o, color), state]);
  }
  out.write(`${table.toString().replace(/ +$/gm, '')}\n`);
}

export function registerObjectCommands(program: Command): void {
  program
    .command('ls')
    .description('list every IPC object on the machine: System V, POSIX, and this package\'s channels and locks')
    .option('-q, --queues', 'message queues only (System V, POSIX) and channels')
    .option('-m, --shmems', 'shared memory only (System V, POSIX, and this package\'s objects in it)')
    .option('-s, --semaphores', 'semaphores only (System V sets, POSIX named)')
    .option('-t, --type <types>', `only these types, comma-separated: ${TYPES.join(', ')}`, parseTypes)
    .option('--sysv', 'System V objects only')
    .option('--posix', 'POSIX objects only (this package\'s included)')
    .option('--ours', 'only this package\'s objects (channels, mutexes, conditions, read-write locks)')
    .option('--stale', 'only this package\'s objects whose creator and users are all dead')
    .option('--json', 'one JSON document: { objects, notes } (for scripts)')
    .addHelpText(
      'after',
      `
Columns: SIZE is bytes (semaphore sets: the number of semaphores); USE is messages
queued or semaphore values; ATTACH is the System V attach count, or the pids mapping
a POSIX object or holding a queue open; CREATOR is the creating process, when known.

Examples:
  interprocess ls                 everything
  interprocess ls -q              queues: System V, POSIX, channels
  interprocess ls --stale         what 'interprocess clean --stale' would remove
  interprocess ls --json | jq '.objects[] | select(.type == "msg") | .id'`,
    )
    .action((opts: { queues?: boolean; shmems?: boolean; semaphores?: boolean; type?: ObjectType[]; sysv?: boolean; posix?: boolean; ours?: boolean; stale?: boolean; json?: boolean }) => {
      const { objects, notes } = listObjects();
      let wanted: Set<ObjectType> | undefined;
      const add = (types: readonly ObjectType[]): void => {
        wanted ??= new Set();
        for (const t of types) wanted.add(t);
      };
      if (opts.queues) add(GROUPS.queues);
      if (opts.shmems) add(GROUPS.memory);
      if (opts.semaphores) add(GROUPS.semaphores);
      if (opts.type) add(opts.type);
      const shown = objects.filter(
        (o) =>
          (!wanted || wanted.has(o.type)) &&
          (!opts.sysv || o.family === 'sysv') &&
          (!opts.posix || o.family === 'posix') &&
          (!opts.ours || PACKAGE_TYPES.includes(o.type)) &&
          (!opts.stale || o.stale === true),
      );
      const queuesAsked = !wanted || wanted.has('posix-mq');
      const shownNotes = notes.filter((n) => n !== MQUEUE_HINT || (queuesAsked && !opts.sysv));
      if (opts.json) {
        process.stdout.write(`${JSON.stringify({ objects: shown, notes: shownNotes }, null, 2)}\n`);
        return;
      }
      if (shown.length) printTable(shown, process.stdout);
      else process.stdout.write('no IPC objects\n');
      for (const n of shownNotes) process.stderr.write(`note: ${n}\n`);
    });

  program
    .command('rm')
    .description('remove IPC objects by name, id or key (ipcrm for every kind)')
    .argument('[target...]', 'objects to remove: /name (POSIX or this package\'s), ID or 0xKEY (System V), ftok:PATH:PROJ')
    .option('-t, --type <type>', `what the target is, when a name or id could be more than one: ${TYPES.join(', ')}`, (t) => parseTypes(t)[0])
    .option('-q, --queue-id <id>', 'System V message queue by id (as ipcrm -q); repeatable', collect, [])
    .option('-Q, --queue-key <key>', 'System V message queue by key (as ipcrm -Q); repeatable', collect, [])
    .option('-m, --shmem-id <id>', 'System V shared memory segment by id (as ipcrm -m); repeatable', collect, [])
    .option('-M, --shmem-key <key>', 'System V shared memory segment by key (as ipcrm -M); repeatable', collect, [])
    .option('-s, --semaphore-id <id>', 'System V semaphore set by id (as ipcrm -s); repeatable', collect, [])
    .option('-S, --semaphore-key <key>', 'System V semaphore set by key (as ipcrm -S); repeatable', collect, [])
    .option('-v, --verbose', 'say what is removed')
    .addHelpText(
      'after',
      `
A System V id or key names one object per type; if a queue, a segment and a set share
it, say which with --type (or use -q/-m/-s). A POSIX name can be shared memory, a
named semaphore and a queue at once: --type again. A segment still attached goes when
its last user detaches; a POSIX object stays mapped where it is mapped.

Examples:
  interprocess rm /jobs                         a POSIX queue, shm object, semaphore or channel
  interprocess rm 0x51000d2f                    whatever System V object has this key
  interprocess rm -q 3 -m 7                     System V queue 3 and segment 7, as ipcrm -q 3 -m 7
  interprocess rm --type msg ftok:/etc/hosts:65`,
    )
    .action(async (targets: string[], opts: RmOptions) => {
      const work: Array<{ target: Target; type?: ObjectType }> = [];
      for (const t of targets) work.push({ target: parseOrUsage(t), type: opts.type });
      const flag = (list: string[] | undefined, type: ObjectType, by: 'id' | 'key'): void => {
        for (const text of list ?? []) {
          const target = parseOrUsage(by === 'key' ? `key:${text}` : `id:${text}`);
          work.push({ target, type });
        }
      };
      flag(opts.queueId, 'msg', 'id');
      flag(opts.queueKey, 'msg', 'key');
      flag(opts.shmemId, 'shm', 'id');
      flag(opts.shmemKey, 'shm', 'key');
      flag(opts.semaphoreId, 'sem', 'id');
      flag(opts.semaphoreKey, 'sem', 'key');
      if (!work.length) fail('nothing to remove: give a target (/name, ID, 0xKEY) or -q/-Q/-m/-M/-s/-S', Exit.usage);
      let worst: number = Exit.ok;
      for (const w of work) {
        try {
          const removed = removeTarget(w.target, w.type);
          if (opts.verbose) process.stdout.write(`removed ${removed}\n`);
        } catch (err) {
          const code = err instanceof CliError ? err.exitCode : exitCodeOf(err);
          if (code === Exit.usage) throw err; // a command line to fix: stop here
          process.stderr.write(`interprocess: ${(err as Error).message}\n`);
          worst = Math.max(worst, code);
        }
      }
      process.exitCode = worst;
    });

  program
    .command('clean')
    .description('remove this package\'s objects (channels, mutexes, conditions, read-write locks) left behind by dead processes')
    .argument('[name...]', 'only these objects (POSIX names); default: every stale one')
    .option('--stale', 'remove the objects whose creator is dead and which no live process maps or holds (required)')
    .option('-n, --dry-run', 'only say what would be removed')
    .option('-y, --yes', 'do not ask for confirmation')
    .addHelpText(
      'after',
      `
Only this package's objects are recognised (by their header); System V objects and
other POSIX objects carry no owner to check: remove those with 'interprocess rm'.
Without --yes, asks on the terminal; with no terminal, refuses.

Examples:
  interprocess clean --stale --dry-run
  interprocess clean --stale --yes
  interprocess clean --stale --yes /jobs /results    only these, if they are stale`,
    )
    .action(async (names: string[], opts: { stale?: boolean; dryRun?: boolean; yes?: boolean }) => {
      if (!opts.stale) fail("say what to clean: 'interprocess clean --stale' (see --help)", Exit.usage);
      for (const n of names) if (parseOrUsage(n).kind !== 'posix') fail(`'${n}' is not a POSIX name: clean removes only this package's objects, which have /names`, Exit.usage);
      const stale = listObjects().objects.filter((o) => o.stale && (!names.length || names.includes(o.name!)));
      if (!stale.length) {
        process.stdout.write('nothing stale\n');
        return;
      }
      const describe = (o: IpcObject): string => `${o.type} ${objectLabel(o)} (creator ${o.creatorPid} dead; ${o.detail})`;
      if (opts.dryRun) {
        for (const o of stale) process.stdout.write(`would remove ${describe(o)}\n`);
        return;
      }
      if (!opts.yes) {
        if (!process.stdin.isTTY) fail(`${stale.length} stale object${stale.length === 1 ? '' : 's'}; not removing without --yes (no terminal to ask on)`, Exit.usage);
        for (const o of stale) process.stdout.write(`  ${describe(o)}\n`);
        const rl = createInterface({ input: process.stdin, output: process.stdout });
        const answer = await rl.question(`Remove ${stale.length} stale object${stale.length === 1 ? '' : 's'}? [y/N] `);
        rl.close();
        if (!/^y(es)?$/i.test(answer.trim())) {
          process.stdout.write('nothing removed\n');
          return;
        }
      }
      let failed = 0;
      for (const o of stale) {
        // Look again just before: a process may have attached since the listing.
        const now = listObjects().objects.find((x) => x.name === o.name && x.type === o.type);
        if (!now?.stale) {
          process.stdout.write(`kept ${o.type} ${objectLabel(o)}: ${now ? 'in use again' : 'already gone'}\n`);
          continue;
        }
        try {
          posix.SharedMemory.unlink(o.name!);
          process.stdout.write(`removed ${describe(o)}\n`);
        } catch (err) {
          failed++;
          process.stderr.write(`interprocess: ${o.name}: ${(err as Error).message}\n`);
        }
      }
      if (failed) process.exitCode = Exit.error;
    });
}

interface RmOptions {
  type?: ObjectType;
  queueId?: string[];
  queueKey?: string[];
  shmemId?: string[];
  shmemKey?: string[];
  semaphoreId?: string[];
  semaphoreKey?: string[];
  verbose?: boolean;
}

/** Repeatable option values (ipcrm takes one id per flag, and the flag again for more). */
function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

function parseOrUsage(text: string): Target {
  try {
    return parseTarget(text);
  } catch (err) {
    return fail((err as Error).message, Exit.usage);
  }
}

const SYSV_REMOVE = { msg: (id: number) => sysv.MessageQueue.remove(id), shm: (id: number) => sysv.SharedMemory.remove(id), sem: (id: number) => sysv.SemaphoreSet.remove(id) };

/** Removes one object; returns how it was named, for --verbose. Throws CliError or the library's error. */
function removeTarget(target: Target, type: ObjectType | undefined): string {
  if (target.kind === 'posix') {
    if (type && ['msg', 'shm', 'sem'].includes(type)) fail(`${target.name} is a POSIX name; --type ${type} is a System V type`, Exit.usage);
    const objects = listObjects().objects.filter((o) => o.name === target.name && (!type || o.type === type));
    const kinds = new Set(objects.map((o) => (o.type === 'posix-mq' ? 'mq' : o.type === 'posix-sem' ? 'sem' : 'shm')));
    if (kinds.size > 1) fail(`${target.name} names more than one object (${objects.map((o) => o.type).join(', ')}): say which with --type`, Exit.usage);
    const kind = [...kinds][0] ?? (type === 'posix-mq' || (!type && !mqueueMounted()) ? 'mq' : undefined);
    // /dev/mqueue unmounted: a queue cannot be seen, but mq_unlink still finds it.
    if (kind === 'mq') {
      try {
        posix.MessageQueue.unlink(target.name);
      } catch (err) {
        if (codeOf(err) === 'ENOENT') fail(`no IPC object named ${target.name}${type ? ` of type ${type}` : ''}`, Exit.notFound);
        throw err;
      }
    }
    else if (kind === 'sem') posix.Semaphore.unlink(target.name);
    else if (kind === 'shm') posix.SharedMemory.unlink(target.name);
    else fail(`no IPC object named ${target.name}${type ? ` of type ${type}` : ''}`, Exit.notFound);
    return `${objects[0]?.type ?? 'posix-mq'} ${target.name}`;
  }
  if (type && !['msg', 'shm', 'sem'].includes(type)) fail(`a System V ${target.kind} names a msg, shm or sem object, not ${type}`, Exit.usage);
  const matches = listObjects().objects.filter(
    (o) => o.family === 'sysv' && (!type || o.type === type) && (target.kind === 'id' ? o.id === target.id : o.key === target.key && target.key !== 0),
  );
  const what = target.kind === 'id' ? `id ${target.id}` : `key ${formatKey(target.key)}`;
  if (!matches.length) fail(`no System V ${type ?? 'object'} with ${what}`, Exit.notFound);
  if (matches.length > 1) fail(`${what} names ${matches.map((o) => `a ${o.type} object`).join(' and ')}: say which with --type (or -q/-m/-s)`, Exit.usage);
  const o = matches[0]!;
  SYSV_REMOVE[o.type as 'msg' | 'shm' | 'sem'](o.id!);
  return `${o.type} ${o.id} (key ${formatKey(o.key!)})`;
}

