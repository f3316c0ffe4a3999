/**
 * Every IPC object on the machine, read from where the kernel shows them:
 * /proc/sysvipc/{msg,shm,sem} for System V, /dev/shm for POSIX shared memory
 * and named semaphores (sem.NAME), /dev/mqueue for POSIX queues (when mounted),
 * and this package's named objects recognised by their 64-byte header
 * (docs/mutex.md). Who uses a POSIX object is read from /proc/PID/maps
 * (mappings) and /proc/PID/fd (queue descriptors): only the processes this
 * user may inspect (all of them as root).
 *
 * Reads only: nothing here opens an object in a way that changes it.
 */
import { closeSync, existsSync, openSync, readFileSync, readSync, readdirSync, readlinkSync, statSync, type Stats } from 'node:fs';
import { Channel } from '../channel.js';
import { posix, sysv } from '../index.js';
import { MAGIC, HEADER_SIZE, Kind, type KindName } from '../internal/object-header.js';

export type Family = 'sysv' | 'posix';
/** System V: msg, shm, sem. POSIX: shm, sem, mq. This package's objects in POSIX shared memory: channel, mutex, condition, rwlock. */
export type ObjectType = 'msg' | 'shm' | 'sem' | 'posix-shm' | 'posix-sem' | 'posix-mq' | KindName;

export const PACKAGE_TYPES: readonly ObjectType[] = ['channel', 'mutex', 'condition', 'rwlock'];

/** ipcs's -q, -m, -s, widened to the POSIX objects of the same family (ls and top). */
export const GROUPS: Record<'queues' | 'memory' | 'semaphores', readonly ObjectType[]> = {
  queues: ['msg', 'posix-mq', 'channel'],
  memory: ['shm', 'posix-shm', 'channel', 'mutex', 'condition', 'rwlock'],
  semaphores: ['sem', 'posix-sem'],
};

export interface IpcObject {
  type: ObjectType;
  family: Family;
  /** System V id and key (key 0 is IPC_PRIVATE). */
  id?: number;
  key?: number;
  /** POSIX name, with its leading '/'. */
  name?: string;
  /** The file under /dev/shm or /dev/mqueue. */
  path?: string;
  uid: number;
  user: string;
  gid: number;
  /** Permission bits (0o777 part). */
  mode: number;
  /** Bytes: segment or object size; queue: bytes queued. */
  size: number;
  /** Queues: messages queued. */
  messages?: number;
  /** Semaphores: the value(s), when readable. */
  values?: number[];
  /** Pids attached: System V shm nattch is a count (pids unknown); POSIX: processes mapping it or holding it open. */
  attached: number[];
  nattch?: number;
  /** The creating process, when known (System V shm cpid, this package's header), and whether it still runs. */
  creatorPid?: number;
  creatorAlive?: boolean;
  /** Other pids the kernel or the object records (last sender, receiver, lock owner...), by role. */
  pids: Record<string, number>;
  /** This package's objects only: nobody alive created or uses it (safe to remove). */
  stale?: boolean;
  /** One line on the state (ring use, lock owner, waiters). */
  detail: string;
}

// ---- processes ------------------------------------------------------------

/** Whether `pid` runs; a zombie (dead, not yet reaped) counts as gone. */
export function alive(pid: number): boolean {
  if (!(pid > 0)) return false;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.charAt(stat.lastIndexOf(')') + 2) !== 'Z';
  } catch {
    return false;
  }
}

/** Whether thread `tid` runs (a lock owner is a thread id). */
function threadAlive(tid: number): boolean {
  return tid > 0 && existsSync(`/proc/${tid}`) && alive(tid);
}

interface Users {
  processes: number[];
  /** "dev:ino" of a mapped /dev/shm file -> pids mapping it. */
  mappers: Map<string, Set<number>>;
  /** "/name" of an open POSIX queue descriptor -> pids holding it. */
  queueHolders: Map<string, Set<number>>;
}

const devKey = (dev: number, ino: number): string => `${dev}:${ino}`;

/** The st_dev of /proc/PID/maps's "MM:mm" device field. */
function mapsDev(field: string): number {
  const [maj, min] = field.split(':').map((x) => parseInt(x, 16)) as [number, number];
  // new_encode_dev, as stat(2) gives it
  return (min & 0xff) | (maj << 8) | ((min & ~0xff) << 12);
}

function scanProcesses(withQueues: boolean, mqueueDev: number | undefined): Users {
  const users: Users = { processes: [], mappers: new Map(), queueHolders: new Map() };
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    // This process maps what it inspects (Channel.inspect): it is not a user of anything.
    if (pid === process.pid || !alive(pid)) continue;
    users.processes.push(pid);
    let maps = '';
    try {
      maps = readFileSync(`/proc/${pid}/maps`, 'utf8');
    } catch {
      continue; // not ours to read, or gone
    }
    for (const line of maps.split('\n')) {
      if (!line.includes('/dev/shm/')) continue;
      const f = line.split(/\s+/);
      if (!f[5]?.startsWith('/dev/shm/')) continue;
      const k = devKey(mapsDev(f[3]!), Number(f[4]));
      let set = users.mappers.get(k);
      if (!set) users.mappers.set(k, (set = new Set()));
      set.add(pid);
    }
    if (!withQueues) continue;
    let fds: string[] = [];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      let link: string;
      try {
        link = readlinkSync(`/proc/${pid}/fd/${fd}`);
      } catch {
        continue;
      }
      // A queue descriptor links to "/name" on the mqueue file system; a file on / looks the same, so check the device.
      if (!/^\/[^/]+$/.test(link)) continue;
      if (mqueueDev !== undefined) {
        try {
          if (statSync(`/proc/${pid}/fd/${fd}`).dev !== mqueueDev) continue;
        } catch {
          continue;
        }
      }
      let set = users.queueHolders.get(link);
      if (!set) users.queueHolders.set(link, (set = new Set()));
      set.add(pid);
    }
  }
  return users;
}

// ---- names ----------------------------------------------------------------

function idNames(file: string): Map<number, string> {
  const names = new Map<number, string>();
  try {
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      const f = line.split(':');
      if (f.length > 2 && /^\d+$/.test(f[2]!)) names.set(Number(f[2]), f[0]!);
    }
  } catch {
    /* no such file: ids stay numbers */
  }
  return names;
}

let userNames: Map<number, string> | undefined;
export function userName(uid: number): string {
  userNames ??= idNames('/etc/passwd');
  return userNames.get(uid) ?? String(uid);
}

// ---- System V -------------------------------------------------------------

/** Rows of /proc/sysvipc/KIND as objects keyed by the header's column names. */
function sysvTable(kind: 'msg' | 'shm' | 'sem'): Array<Record<string, number>> {
  let text: string;
  try {
    text = readFileSync(`/proc/sysvipc/${kind}`, 'utf8');
  } catch {
    return [];
  }
  const [header, ...lines] = text.trim().split('\n');
  const cols = header!.trim().split(/\s+/);
  return lines.map((l) => {
    const f = l.trim().split(/\s+/);
    // The kernel prints perms in octal (%4o), every other column in decimal.
    return Object.fromEntries(cols.map((c, i) => [c, c === 'perms' ? parseInt(f[i]!, 8) : Number(f[i])]));
  });
}

function sysvObjects(): IpcObject[] {
  const out: IpcObject[] = [];
  const base = (type: 'msg' | 'shm' | 'sem', r: Record<string, number>, id: number) => ({
    type,
    family: 'sysv' as const,
    id,
    key: r.key!,
    uid: r.uid!,
    user: userName(r.uid!),
    gid: r.gid!,
    mode: r.perms! & 0o777,
  });
  for (const r of sysvTable('msg')) {
    const pids: Record<string, number> = {};
    if (r.lspid) pids.lastSender = r.lspid;
    if (r.lrpid) pids.lastReceiver = r.lrpid;
    out.push({
      ...base('msg', r, r.msqid!),
      size: r.cbytes!,
      messages: r.qnum!,
      attached: [],
      pids,
      detail: `${r.qnum} message${r.qnum === 1 ? '' : 's'}, ${r.cbytes} bytes` + pidNote(pids),
    });
  }
  for (const r of sysvTable('shm')) {
    const pids: Record<string, number> = { creator: r.cpid! };
    if (r.lpid) pids.lastAttachOrDetach = r.lpid;
    out.push({
      ...base('shm', r, r.shmid!),
      size: r.size!,
      attached: [],
      nattch: r.nattch!,
      creatorPid: r.cpid!,
      creatorAlive: alive(r.cpid!),
      pids,
      detail: `${r.nattch} attached` + ((r.perms! & 0o1000) !== 0 ? ', marked for removal (goes when the last detaches)' : ''),
    });
  }
  for (const r of sysvTable('sem')) {
    let values: number[] | undefined;
    let detail = `${r.nsems} semaphore${r.nsems === 1 ? '' : 's'}`;
    try {
      using set = sysv.SemaphoreSet.fromId(r.semid!);
      values = set.getAll();
      const waiting = values.map((_, i) => set.waiters(i)).reduce((n, w) => n + w.forIncrease + w.forZero, 0);
      detail += `: ${values.join(' ')}` + (waiting ? `, ${waiting} waiting` : '');
    } catch {
      /* no read permission: values unknown */
    }
    out.push({ ...base('sem', r, r.semid!), size: r.nsems!, values, attached: [], pids: {}, detail });
  }
  return out;
}

function pidNote(pids: Record<string, number>): string {
  const parts = Object.entries(pids)
    .filter(([, p]) => p > 0)
    .map(([role, p]) => `${role.replace(/[A-Z]/g, (c) => ' ' + c.toLowerCase())} ${p}${alive(p) ? '' : ' (gone)'}`);
  return parts.length ? `; ${parts.join(', ')}` : '';
}

// ---- POSIX ----------------------------------------------------------------

/** Up to `length` bytes of a file from `offset` (fewer if it is shorter), or undefined if it cannot be read. */
export function readBytes(path: string, offset: number, length: number): Buffer | undefined {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return undefined;
  }
  try {
    const b = Buffer.alloc(length);
    return b.subarray(0, readSync(fd, b, 0, length, offset));
  } catch {
    return undefined;
  } finally {
    closeSync(fd);
  }
}

/** This package's header: kind and creator, or undefined for any other object. */
function packageHeader(bytes: Buffer | undefined): { kind: KindName; creatorPid: number; extra: number } | undefined {
  if (!bytes || bytes.length < HEADER_SIZE || bytes.readUInt32LE(0) !== MAGIC) return undefined;
  const kind = (Object.keys(Kind) as KindName[]).find((k) => Kind[k] === bytes.readUInt16LE(6));
  return kind && { kind, creatorPid: bytes.readInt32LE(8), extra: bytes.readUInt32LE(12) };
}

// glibc's robust mutex lock word: owner thread id, and two flag bits.
export const FUTEX_TID_MASK = 0x3fffffff;
const FUTEX_OWNER_DIED = 0x40000000;
export const FUTEX_WAITERS = 0x80000000;
const NOT_RECOVERABLE = 0x7fffffff; // __owner of an unrecoverable mutex

/** The state of the robust pthread mutex whose first 12 bytes are `b` (__lock, __count, __owner). */
function mutexState(b: Buffer): { text: string; owner: number } {
  const word = b.readUInt32LE(0);
  const owner = word & FUTEX_TID_MASK;
  if (b.readInt32LE(8) === NOT_RECOVERABLE) return { text: 'not recoverable (its owner died and it was unlocked without markConsistent)', owner: 0 };
  if ((word & FUTEX_OWNER_DIED) !== 0 && owner === 0) return { text: 'free, owner died: the next locker repairs', owner: 0 };
  if (owner === 0) return { text: 'free', owner: 0 };
  const waiters = (word & FUTEX_WAITERS) !== 0 ? ', with waiters' : '';
  return threadAlive(owner)
    ? { text: `locked by thread ${owner}${waiters}`, owner }
    : { text: `locked by thread ${owner}, which is gone: the next locker gets owner-died`, owner };
}

function packageDetail(kind: KindName, name: string, path: string, extra: number, pids: Record<string, number>): { detail: string; busy: boolean } {
  switch (kind) {
    case 'channel': {
      const info = Channel.inspect(name);
      if (info.receiverPid) pids.receiver = info.receiverPid;
      info.senderPids.forEach((p, i) => (pids[`sender${i + 1}`] = p));
      const senders = info.senderPids.length;
      return {
        detail:
          `ring ${info.capacity} B, ${info.used} B queued; ` +
          (info.receiverPid ? `receiver ${info.receiverPid}${info.receiverAlive ? '' : ' (gone)'}` : 'no receiver') +
          `, ${senders} sender${senders === 1 ? '' : 's'}` +
          (senders > info.liveSenders ? ` (${senders - info.liveSenders} gone)` : ''),
        busy: info.receiverAlive || info.liveSenders > 0,
      };
    }
    case 'mutex': {
      const s = mutexState(readBytes(path, 0, HEADER_SIZE + 12)!.subarray(HEADER_SIZE));
      if (s.owner) pids.owner = s.owner;
      return { detail: s.text, busy: s.owner > 0 && threadAlive(s.owner) };
    }
    case 'condition': {
      const b = readBytes(path, 0, HEADER_SIZE + 8)!.subarray(HEADER_SIZE);
      const waiters = b.readInt32LE(4);
      return { detail: `${waiters} waiting, ${b.readUInt32LE(0)} notifies so far`, busy: false };
    }
    case 'rwlock': {
      const b = readBytes(path, 0, HEADER_SIZE + 64 * (1 + extra)) ?? Buffer.alloc(0);
      if (b.length < HEADER_SIZE + 64 * (1 + extra)) return { detail: `${extra} reader slots`, busy: false };
      const gate = mutexState(b.subarray(HEADER_SIZE, HEADER_SIZE + 12));
      let readers = 0;
      let busy = gate.owner > 0 && threadAlive(gate.owner);
      for (let i = 0; i < extra; i++) {
        const at = HEADER_SIZE + 64 * (1 + i);
        const owner = b.readUInt32LE(at) & FUTEX_TID_MASK;
        if (owner) {
          readers++;
          busy ||= threadAlive(owner);
        }
      }
      const gateText = gate.owner ? `gate ${gate.text}` : 'no writer';
      return { detail: `${gateText}, ${readers} of ${extra} reader slots held`, busy };
    }
  }
}

function stat(path: string): Stats | undefined {
  try {
    return statSync(path);
  } catch {
    return undefined;
  }
}

function posixShmObjects(users: Users): IpcObject[] {
  const out: IpcObject[] = [];
  let entries: string[];
  try {
    entries = readdirSync('/dev/shm');
  } catch {
    return out;
  }
  for (const entry of entries.sort()) {
    const path = `/dev/shm/${entry}`;
    const st = stat(path);
    if (!st?.isFile()) continue;
    const attached = [...(users.mappers.get(devKey(st.dev, st.ino)) ?? [])].sort((a, b) => a - b);
    const common = { family: 'posix' as const, path, uid: st.uid, user: userName(st.uid), gid: st.gid, mode: st.mode & 0o777, size: st.size, attached };
    if (entry.startsWith('sem.')) {
      // glibc's sem_t: a 64-bit word, the value in its low half and the waiter count in its high half.
      const b = readBytes(path, 0, 8);
      const values = b && b.length === 8 ? [b.readUInt32LE(0)] : undefined;
      const waiters = b && b.length === 8 ? b.readUInt32LE(4) : 0;
      const detail = values ? `value ${values[0]}${waiters ? `, ${waiters} waiting` : ''}` : 'value unknown (not readable)';
      out.push({ type: 'posix-sem', name: `/${entry.slice(4)}`, ...common, values, pids: {}, detail: detail + usersNote(attached) });
      continue;
    }
    const name = `/${entry}`;
    const header = packageHeader(readBytes(path, 0, HEADER_SIZE));
    if (!header) {
      out.push({ type: 'posix-shm', name, ...common, pids: {}, detail: `${attached.length} mapping it` });
      continue;
    }
    const pids: Record<string, number> = { creator: header.creatorPid };
    let detail: string;
    let busy = false;
    try {
      ({ detail, busy } = packageDetail(header.kind, name, path, header.extra, pids));
    } catch (err) {
      detail = `unreadable: ${(err as Error).message}`;
      busy = true; // unknown: never call it stale
    }
    const creatorAlive = alive(header.creatorPid);
    // Stale: its creator is gone and no live process maps it or holds its lock.
    const stale = !creatorAlive && !busy && attached.length === 0;
    out.push({ type: header.kind, name, ...common, creatorPid: header.creatorPid, creatorAlive, pids, stale, detail: detail + usersNote(attached) });
  }
  return out;
}

function usersNote(attached: number[]): string {
  return attached.length ? `; mapped by ${attached.join(', ')}` : '';
}

export const MQUEUE_DIR = '/dev/mqueue';

/** Whether /dev/mqueue is an mqueue mount (POSIX queues are listed only then). */
export function mqueueMounted(): boolean {
  try {
    return readFileSync('/proc/self/mounts', 'utf8')
      .split('\n')
      .some((l) => l.split(' ')[1] === MQUEUE_DIR && l.split(' ')[2] === 'mqueue');
  } catch {
    return false;
  }
}

export const MQUEUE_HINT = `POSIX message queues are not listed: ${MQUEUE_DIR} is not mounted. As root: mkdir -p ${MQUEUE_DIR} && mount -t mqueue none ${MQUEUE_DIR}`;

function posixQueueObjects(users: Users): IpcObject[] {
  const out: IpcObject[] = [];
  for (const entry of readdirSync(MQUEUE_DIR).sort()) {
    const path = `${MQUEUE_DIR}/${entry}`;
    const st = stat(path);
    if (!st) continue;
    // "QSIZE:129  NOTIFY:0  SIGNO:0  NOTIFY_PID:0": bytes queued and who asked for mq_notify.
    let fields: Record<string, number> = {};
    try {
      fields = Object.fromEntries([...readFileSync(path, 'utf8').matchAll(/(\w+):(\d+)/g)].map((m) => [m[1]!, Number(m[2])]));
    } catch {
      /* not readable */
    }
    const name = `/${entry}`;
    const attached = [...(users.queueHolders.get(name) ?? [])].sort((a, b) => a - b);
    const pids: Record<string, number> = {};
    if (fields.NOTIFY_PID) pids.notify = fields.NOTIFY_PID;
    const size = fields.QSIZE ?? 0;
    // The message count is not in the file: mq_getattr on a read-only descriptor (closed at once, nothing consumed).
    let messages: number | undefined;
    let limits = '';
    try {
      using q = posix.MessageQueue.open(name, { access: 'read' });
      const a = q.attributes();
      messages = a.currentMessages;
      limits = ` (at most ${a.maxMessages} of ${a.messageSize} bytes)`;
    } catch {
      /* no read permission */
    }
    out.push({
      type: 'posix-mq',
      family: 'posix',
      name,
      path,
      uid: st.uid,
      user: userName(st.uid),
      gid: st.gid,
      mode: st.mode & 0o777,
      size,
      messages,
      attached,
      pids,
      detail: `${messages ?? '?'} message${messages === 1 ? '' : 's'}, ${size} bytes queued${limits}` + (attached.length ? `; open in ${attached.join(', ')}` : '') + pidNote(pids),
    });
  }
  return out;
}

// ---- all ------------------------------------------------------------------

export interface Listing {
  objects: IpcObject[];
  /** Why some kinds could not be listed (e.g. /dev/mqueue not mounted). */
  notes: string[];
}

/** Every IPC object this process can see. */
export function listObjects(): Listing {
  const notes: string[] = [];
  const queues = mqueueMounted();
  if (!queues) notes.push(MQUEUE_HINT);
  const mqueueDev = queues ? stat(MQUEUE_DIR)?.dev : undefined;
  const users = scanProcesses(queues, mqueueDev);
  if (process.getuid?.() !== 0) notes.push('not root: only the processes of this user are checked for attachments');
  const objects = [...sysvObjects(), ...posixShmObjects(users), ...(queues ? posixQueueObjects(users) : [])];
  return { objects, notes };
}

/** How an object is named on the command line: /name, or the System V id. */
export function objectLabel(o: IpcObject): string {
  return o.name ?? String(o.id);
}
