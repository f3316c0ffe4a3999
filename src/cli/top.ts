/**
 * `interprocess top`: every IPC object on one screen, redrawn in place:
 * queue depths and how fast they change, semaphore values and who waits on
 * them, what flows through each channel and who sleeps on it, lock owners.
 *
 * Objects are listed as `ls` lists them (objects.ts). What `ls` does not
 * keep (a channel's head and tail counters and sleepers' flags, a lock word,
 * a semaphore's waiters) is read here from the object itself with read(2) at
 * the offsets docs/channel.md and docs/mutex.md give: watching changes
 * nothing. Rates are differences between two refreshes, divided by the time
 * between them.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { stripVTControlCharacters } from 'node:util';
import { Command, InvalidArgumentError } from 'commander';
import pc from 'picocolors';
import { sysv } from '../index.js';
import { FUTEX_TID_MASK, FUTEX_WAITERS, GROUPS, alive, listObjects, readBytes, objectLabel, MQUEUE_HINT, PACKAGE_TYPES, type IpcObject, type ObjectType } from './objects.js';
import { Exit, fail } from './target.js';

// ---- the terminal -------------------------------------------------------------

const ALT_SCREEN_ENTER = '\x1b[?1049h';
const ALT_SCREEN_LEAVE = '\x1b[?1049l';
const CURSOR_HIDE = '\x1b[?25l';
const CURSOR_SHOW = '\x1b[?25h';
const CURSOR_HOME = '\x1b[H';
const CLEAR_TO_LINE_END = '\x1b[K';
const CLEAR_TO_SCREEN_END = '\x1b[J';
const cursorTo = (row: number): string => `\x1b[${row};1H`;

const CTRL_C = 0x03;

/** Exit codes for a quitting signal: 128 + its number, as a shell reports it. */
const SIGNAL_EXIT: Partial<Record<NodeJS.Signals, number>> = { SIGHUP: 129, SIGINT: 130, SIGTERM: 143 };

const MIN_INTERVAL = 100;

// ---- what to show ---------------------------------------------------------------


/** The order of the default sort: what moves first, then locks, then memory. */
const TYPE_ORDER: readonly ObjectType[] = ['msg', 'posix-mq', 'channel', 'sem', 'posix-sem', 'mutex', 'condition', 'rwlock', 'shm', 'posix-shm'];

const SORTS = ['type', 'name', 'rate'] as const;
type Sort = (typeof SORTS)[number];

interface TopOptions {
  interval: number;
  queues?: boolean;
  shmems?: boolean;
  semaphores?: boolean;
  ours?: boolean;
  once?: boolean;
}

function filterOf(opts: TopOptions): (o: IpcObject) => boolean {
  let wanted: Set<ObjectType> | undefined;
  for (const [flag, types] of [
    [opts.queues, GROUPS.queues],
    [opts.shmems, GROUPS.memory],
    [opts.semaphores, GROUPS.semaphores],
  ] as const) {
    if (!flag) continue;
    wanted ??= new Set();
    for (const t of types) wanted.add(t);
  }
  return (o) => (!wanted || wanted.has(o.type)) && (!opts.ours || PACKAGE_TYPES.includes(o.type));
}

function parseInterval(text: string): number {
  const n = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(n) || n < MIN_INTERVAL || n > 3_600_000) {
    throw new InvalidArgumentError(`the interval is a whole number of milliseconds from ${MIN_INTERVAL} to 3600000 (got '${text}')`);
  }
  return n;
}

// ---- reading objects ----------------------------------------------------------------

/** `length` bytes at `offset` of a file, or undefined if it cannot be read (gone, no permission, too short). */
function readAt(path: string, offset: number, length: number): Buffer | undefined {
  const b = readBytes(path, offset, length);
  return b?.length === length ? b : undefined;
}

// Byte offsets in a channel (docs/channel.md).
const CH = { capacity: 64, maxMessage: 68, senderSlots: 72, receiverPid: 76, head: 128, tail: 192, receiverWaiting: 256, sendersWaiting: 260, slots: 384, ring: 1024 } as const;
const MAX_SLOTS = 64;
const WRAP = 0xffffffff;
/** Most ring bytes read to count the messages since the last refresh; beyond, their number is estimated. */
const WALK_LIMIT = 4 << 20;
/** Ring bytes read for a sample of message sizes. */
const SAMPLE_BYTES = 64 << 10;
/** How long to watch a busy channel's head for one commit, when nothing else gives a message size. */
const WATCH_MS = 10;
const WATCH_STEP_MS = 0.1;
const pause = new Int32Array(new SharedArrayBuffer(4));
const SLEEP = ['awake', 'futex', 'bell'] as const;

interface ChannelState {
  capacity: number;
  used: number;
  head: number;
  receiverPid: number;
  /** 0 awake, 1 asleep on the futex, 2 asleep on its doorbell. */
  receiverWaiting: number;
  sendersWaiting: number;
  senderPids: number[];
  /** Records published since the `from` given, when they could be counted. */
  records?: number;
  /** Ring bytes per record, from whatever records could be walked. */
  meanRecord?: number;
}

interface Walk {
  records: number;
  /** Ring bytes the records take, wrap skips included. */
  span: number;
}

/**
 * The records from byte counter `from` on, walked through their lengths:
 * `whole`, every record up to `to`, or undefined if that cannot be done
 * reliably; else as many whole records as SAMPLE_BYTES holds (a sample).
 *
 * Records already received are overwritten by a sender a lap ahead, so a
 * whole walk is tried only within half a ring of `to` (where that takes a
 * wrap of a very large record), and trusted only if every length is valid
 * and they land exactly on `to`, which overwritten records would not.
 */
function walkRecords(fd: number, ring: { capacity: number; maxMessage: number }, from: number, to: number, whole: boolean): Walk | undefined {
  const { capacity, maxMessage } = ring;
  const span = (to - from) >>> 0;
  if (whole && (span > capacity / 2 || span > WALK_LIMIT)) return undefined;
  const length = whole ? span : Math.min(span, SAMPLE_BYTES);
  const start = (from >>> 0) % capacity;
  const buf = Buffer.alloc(length);
  const first = Math.min(length, capacity - start);
  if (readSync(fd, buf, 0, first, CH.ring + start) !== first) return undefined;
  if (first < length && readSync(fd, buf, first, length - first, CH.ring) !== length - first) return undefined;
  let pos = 0;
  let records = 0;
  while (pos + 8 <= length) {
    const n = buf.readUInt32LE(pos);
    if (n === WRAP) {
      pos += capacity - ((start + pos) % capacity);
      continue;
    }
    if (n > maxMessage) break;
    const end = pos + ((8 + n + 7) & ~7);
    if (end > length) break;
    pos = end;
    records++;
  }
  if (whole) return pos === span ? { records, span } : undefined;
  return { records, span: Math.min(pos, span) };
}

/** The first commit after now (one record, or a few): a sample of message sizes from a ring its receiver keeps empty. */
function watchCommit(fd: number, ring: { capacity: number; maxMessage: number }): Walk | undefined {
  const word = Buffer.alloc(4);
  const head = (): number | undefined => (readSync(fd, word, 0, 4, CH.head) === 4 ? word.readUInt32LE(0) : undefined);
  const before = head();
  const deadline = performance.now() + WATCH_MS;
  while (before !== undefined && performance.now() < deadline) {
    const now = head();
    if (now !== before && now !== undefined) return walkRecords(fd, ring, before, now, false);
    Atomics.wait(pause, 0, 0, WATCH_STEP_MS);
  }
  return undefined;
}

/** A channel's counters and sleepers, read from its file; `from` is the head seen at the previous refresh. */
function readChannel(path: string, from: number | undefined): ChannelState | undefined {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return undefined;
  }
  try {
    const h = Buffer.alloc(CH.ring);
    if (readSync(fd, h, 0, CH.ring, 0) !== CH.ring) return undefined;
    const ring = { capacity: h.readUInt32LE(CH.capacity), maxMessage: h.readUInt32LE(CH.maxMessage) };
    if (ring.capacity < 4096 || (ring.capacity & (ring.capacity - 1)) !== 0) return undefined;
    const head = h.readUInt32LE(CH.head);
    const tail = h.readUInt32LE(CH.tail);
    const senderPids: number[] = [];
    for (let s = 0; s < Math.min(h.readUInt32LE(CH.senderSlots), MAX_SLOTS); s++) {
      const pid = h.readInt32LE(CH.slots + 8 * s);
      if (pid > 0) senderPids.push(pid);
    }
    const state: ChannelState = {
      capacity: ring.capacity,
      used: Math.max(0, (head - tail) | 0), // (the receiver may take a record a moment before head counts it)
      head,
      receiverPid: h.readInt32LE(CH.receiverPid),
      receiverWaiting: h.readInt32LE(CH.receiverWaiting),
      sendersWaiting: h.readInt32LE(CH.sendersWaiting),
      senderPids,
    };
    const since = from === undefined ? undefined : walkRecords(fd, ring, from, head, true);
    if (since) state.records = since.records;
    // Too much went by to count: estimate from a sample of sizes, the messages still queued or the next ones sent.
    let sample = since;
    if (!sample?.records && tail !== head) sample = walkRecords(fd, ring, tail, head, false);
    if (!sample?.records && from !== undefined && from !== head) sample = watchCommit(fd, ring);
    if (sample?.records) state.meanRecord = sample.span / sample.records;
    return state;
  } catch {
    return undefined;
  } finally {
    closeSync(fd);
  }
}

const OBJECT_AT = 64; // after this package's object header

// ---- one refresh ----------------------------------------------------------------------

/** What a refresh keeps of an object to compute rates at the next one. */
interface Counters {
  at: number;
  messages?: number;
  bytes?: number;
  /** Channel head, or a condition's notify sequence. */
  counter?: number;
  meanRecord?: number;
}

interface Row {
  type: ObjectType;
  label: string;
  use: string;
  rate: string;
  /** How busy, for sorting by rate: bytes (or events) per second. */
  activity: number;
  waiting: string;
  detail: string;
  stale: boolean;
}

interface Frame {
  at: Date;
  rows: Row[];
  notes: string[];
}

const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;

/** 3 significant digits and a unit: 950, 12.3k, 1.05M. */
function count(n: number): string {
  const a = Math.abs(n);
  if (a < 0.05) return '0';
  if (a < 10) return n.toFixed(1);
  if (a < 1000) return String(Math.round(n));
  for (const [unit, div] of [
    ['k', 1e3],
    ['M', 1e6],
    ['G', 1e9],
  ] as const) {
    const v = n / div;
    if (Math.abs(v) < 999.5 || unit === 'G') return `${Math.abs(v) < 9.995 ? v.toFixed(2) : Math.abs(v) < 99.95 ? v.toFixed(1) : Math.round(v)}${unit}`;
  }
  return String(n);
}

/** Bytes with a binary unit: 512 B, 21.9 KiB, 1 MiB. */
function bytes(n: number): string {
  const a = Math.abs(n);
  if (a < 1024) return `${Math.round(n)} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (Math.abs(v) >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  const digits = Math.abs(v) < 9.995 ? 2 : Math.abs(v) < 99.95 ? 1 : 0;
  return `${Number(v.toFixed(digits))} ${units[i]}`;
}

const signed = (text: string, n: number): string => (n > 0 ? `+${text}` : text);

class Sampler {
  #previous = new Map<string, Counters>();

  constructor(private readonly wanted: (o: IpcObject) => boolean) {}

  sample(): Frame {
    const at = new Date();
    const { objects, notes } = listObjects();
    const now = performance.now();
    const next = new Map<string, Counters>();
    const rows: Row[] = [];
    for (const o of objects.filter(this.wanted)) {
      // The creator tells a new object from an old one that had its name.
      const key = `${o.type}:${objectLabel(o)}:${o.creatorPid ?? ''}`;
      const c: Counters = { at: now };
      rows.push(describe(o, this.#previous.get(key), c));
      next.set(key, c);
    }
    this.#previous = next;
    return { at, rows, notes };
  }
}

function describe(o: IpcObject, prev: Counters | undefined, c: Counters): Row {
  const row: Row = { type: o.type, label: objectLabel(o), use: '', rate: '', activity: 0, waiting: '', detail: o.detail, stale: o.stale === true };
  const seconds = prev ? (c.at - prev.at) / 1000 : 0;
  switch (o.type) {
    case 'msg':
    case 'posix-mq': {
      row.use = `${o.messages ?? '?'} msg, ${bytes(o.size)}`;
      c.messages = o.messages;
      c.bytes = o.size;
      if (prev?.messages !== undefined && o.messages !== undefined && seconds > 0) {
        const m = (o.messages - prev.messages) / seconds;
        const b = (o.size - prev.bytes!) / seconds;
        row.rate = `${signed(count(m), m)} msg/s, ${signed(bytes(b), b)}/s`;
        row.activity = Math.abs(b);
      }
      break;
    }
    case 'sem': {
      row.use = o.values ? o.values.join(' ') : '?';
      try {
        using set = sysv.SemaphoreSet.fromId(o.id!);
        let ncnt = 0;
        let zcnt = 0;
        for (let i = 0; i < (o.values?.length ?? 0); i++) {
          const w = set.waiters(i);
          ncnt += w.forIncrease;
          zcnt += w.forZero;
        }
        if (ncnt || zcnt) row.waiting = `ncnt ${ncnt}, zcnt ${zcnt}`;
      } catch {
        row.waiting = '?';
      }
      break;
    }
    case 'posix-sem': {
      row.use = o.values ? String(o.values[0]) : '?';
      // glibc's sem_t: the value in the low half of a 64-bit word, the waiters in the high half.
      const word = o.path ? readAt(o.path, 0, 8) : undefined;
      const waiters = word?.readUInt32LE(4) ?? 0;
      if (waiters) row.waiting = `${waiters} waiting`;
      break;
    }
    case 'channel': {
      const st = o.path ? readChannel(o.path, prev?.counter) : undefined;
      if (!st) break;
      row.use = `${bytes(st.used)} of ${bytes(st.capacity)}`;
      c.counter = st.head;
      c.meanRecord = st.meanRecord ?? prev?.meanRecord;
      if (prev?.counter !== undefined && seconds > 0) {
        // head counts bytes mod 2^32: a ring that moved 4 GiB between two refreshes looks slower than it is.
        const span = (st.head - prev.counter) >>> 0;
        let messages: string;
        if (st.records !== undefined) messages = count(st.records / seconds);
        else if (c.meanRecord) messages = `~${count(span / c.meanRecord / seconds)}`;
        else messages = '?';
        row.rate = `${messages} msg/s, ${bytes(span / seconds)}/s`;
        row.activity = span / seconds;
      }
      const receiver = st.receiverPid === 0 ? 'none' : !alive(st.receiverPid) ? 'gone' : (SLEEP[st.receiverWaiting] ?? String(st.receiverWaiting));
      const live = st.senderPids.filter(alive).length;
      row.waiting = `recv:${receiver} send:${live}` + (st.sendersWaiting > 0 ? ` (${st.sendersWaiting} asleep)` : '');
      break;
    }
    case 'mutex': {
      const b = o.path ? readAt(o.path, OBJECT_AT, 4) : undefined;
      if (!b) break;
      const word = b.readUInt32LE(0);
      const owner = word & FUTEX_TID_MASK;
      row.use = owner ? `locked by ${owner}` : 'free';
      if ((word & FUTEX_WAITERS) !== 0) row.waiting = 'waiters';
      break;
    }
    case 'condition': {
      const b = o.path ? readAt(o.path, OBJECT_AT, 8) : undefined;
      if (!b) break;
      const seq = b.readUInt32LE(0);
      const waiters = b.readInt32LE(4);
      row.use = `${seq} notifies`;
      if (waiters) row.waiting = `${waiters} waiting`;
      c.counter = seq;
      if (prev?.counter !== undefined && seconds > 0) {
        const n = ((seq - prev.counter) >>> 0) / seconds;
        row.rate = `${count(n)} notify/s`;
        row.activity = n;
      }
      break;
    }
    case 'shm':
    case 'posix-shm':
    case 'rwlock':
      row.use = bytes(o.size);
      break;
  }
  return row;
}

function sortRows(rows: Row[], sort: Sort): Row[] {
  const byType = (a: Row, b: Row): number => TYPE_ORDER.indexOf(a.type) - TYPE_ORDER.indexOf(b.type);
  // System V ids as numbers, names as text.
  const byLabel = (a: Row, b: Row): number => a.label.localeCompare(b.label, 'en', { numeric: true });
  const order: Record<Sort, (a: Row, b: Row) => number> = {
    type: (a, b) => byType(a, b) || byLabel(a, b),
    name: (a, b) => byLabel(a, b) || byType(a, b),
    rate: (a, b) => b.activity - a.activity || byType(a, b) || byLabel(a, b),
  };
  return [...rows].sort(order[sort]);
}

// ---- drawing ---------------------------------------------------------------------------

type Colours = ReturnType<typeof pc.createColors>;

/** Colours for a stream: on a terminal, unless NO_COLOR or TERM=dumb. */
function coloursFor(stream: { isTTY?: boolean }): Colours {
  return pc.createColors(!process.env.NO_COLOR && !!stream.isTTY && process.env.TERM !== 'dumb');
}

interface Cell {
  text: string;
  style?: (s: string) => string;
}

/** A line cut to `width` columns (every character here is one column wide). */
function cut(text: string, width: number): string {
  if (text.length <= width) return text;
  return width <= 0 ? '' : `${text.slice(0, width - 1)}…`;
}

const COLUMNS: ReadonlyArray<{ title: string; max: number }> = [
  { title: 'TYPE', max: 9 },
  { title: 'ID/NAME', max: 40 },
  { title: 'USE', max: 24 },
  { title: 'RATE', max: 28 },
  { title: 'WAITING', max: 30 },
  { title: 'DETAIL', max: Infinity },
];
const GAP = '  ';

/** Cells into one line of at most `width` columns: each column as wide as its widest cell (up to its max), the last one cut. */
function layout(cells: Cell[], widths: number[], width: number): string {
  let out = '';
  let left = width;
  for (let i = 0; i < cells.length && left > 0; i++) {
    const last = i === cells.length - 1;
    const w = Math.min(last ? left : widths[i]!, left);
    const text = cut(cells[i]!.text, w);
    const styled = cells[i]!.style && text ? cells[i]!.style!(text) : text;
    out += last ? styled : styled + ' '.repeat(w - text.length);
    left -= w;
    if (!last && left > 0) {
      out += GAP.slice(0, left);
      left -= GAP.length;
    }
  }
  return out.trimEnd();
}

interface View {
  width: number;
  /** Lines available; Infinity: every row. */
  height: number;
  colours: Colours;
  interval: number;
  sort: Sort;
  paused?: boolean;
  /** The keys' help, in the live view. */
  keys?: boolean;
}

function render(frame: Frame, view: View): string[] {
  const c = view.colours;
  const rows = sortRows(frame.rows, view.sort);
  const counts = TYPE_ORDER.map((t) => [t, rows.filter((r) => r.type === t).length] as const).filter(([, n]) => n > 0);
  const time = frame.at.toTimeString().slice(0, 8);
  const summary = `${plural(rows.length, 'object')}` + (counts.length ? ` (${counts.map(([t, n]) => `${t} ${n}`).join(', ')})` : '');
  const left = `interprocess top  ${time}  every ${view.interval} ms  ${summary}`;
  const right = view.keys ? `${view.paused ? 'PAUSED  ' : ''}q quit  p ${view.paused ? 'resume' : 'pause'}  s sort: ${view.sort}` : '';
  // The keys stay in view on a narrow terminal: the summary is what gets cut.
  const room = view.width - right.length - 2;
  const header = !right ? cut(left, view.width) : room > 0 ? cut(left, room).padEnd(room + 2) + right : cut(right, view.width);
  const lines = [c.bold(header)];

  const cells: Cell[][] = rows.map((r) => [
    { text: r.type },
    { text: r.label },
    { text: r.use },
    { text: r.rate || '-', style: r.activity > 0 ? c.green : r.rate ? undefined : c.dim },
    { text: r.waiting || '-', style: r.waiting ? c.yellow : c.dim },
    { text: r.stale ? `stale: ${r.detail}` : r.detail, style: r.stale ? c.yellow : undefined },
  ]);
  const widths = COLUMNS.map((col, i) => Math.min(col.max, Math.max(col.title.length, ...cells.map((row) => row[i]!.text.length))));
  const heading = layout(
    COLUMNS.map((col) => ({ text: col.title })),
    widths,
    view.width,
  );
  lines.push(c.bold(c.inverse(heading.padEnd(Number.isFinite(view.width) ? view.width : heading.length))));
  if (!rows.length) lines.push(c.dim('no IPC objects'));
  const room2 = view.height - lines.length;
  const shown = cells.length > room2 ? Math.max(0, room2 - 1) : cells.length;
  for (const row of cells.slice(0, shown)) lines.push(layout(row, widths, view.width));
  if (shown < cells.length && room2 > 0) lines.push(c.dim(cut(`… ${cells.length - shown} more (-q, -m, -s or --ours show fewer)`, view.width)));
  return lines;
}

// ---- running -------------------------------------------------------------------------------

async function runOnce(sampler: Sampler, opts: TopOptions): Promise<void> {
  const out = process.stdout;
  sampler.sample();
  // Rates need two looks: one interval apart, as the live view shows them.
  await sleep(opts.interval);
  const frame = sampler.sample();
  const width = out.isTTY ? out.columns : Infinity;
  out.write(`${render(frame, { width, height: Infinity, colours: coloursFor(out), interval: opts.interval, sort: 'type' }).join('\n')}\n`);
  const queuesShown = !(opts.shmems || opts.semaphores || opts.ours) || opts.queues;
  for (const n of frame.notes) if (n !== MQUEUE_HINT || queuesShown) process.stderr.write(`note: ${n}\n`);
}

function runLive(sampler: Sampler, opts: TopOptions): Promise<never> {
  const out = process.stdout;
  const input = process.stdin;
  const colours = coloursFor(out);
  let frame: Frame | undefined;
  let sort: Sort = 'type';
  let paused = false;
  let timer: NodeJS.Timeout | undefined;
  let restored = false;
  const raw = input.isTTY === true;

  /** Gives the terminal back as it was: main screen, cursor, line discipline. Safe to call twice. */
  const restore = (): void => {
    if (restored) return;
    restored = true;
    clearTimeout(timer);
    try {
      out.write(CURSOR_SHOW + ALT_SCREEN_LEAVE);
    } catch {
      /* the terminal is gone */
    }
    if (raw) {
      try {
        input.setRawMode(false);
      } catch {
        /* the terminal is gone */
      }
      input.pause();
    }
  };
  // A TTY stdout is written synchronously, so what restore() writes is out before exit.
  const quit = (code: number): never => {
    restore();
    process.exit(code);
  };
  const crash = (err: unknown): never => {
    restore();
    process.stderr.write(`interprocess: top: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(Exit.error);
  };

  const draw = (): void => {
    if (!frame) return;
    const width = out.columns || 80;
    const height = out.rows || 24;
    const lines = render(frame, { width, height, colours, interval: opts.interval, sort, paused, keys: raw });
    // Each line at its own row: nothing scrolls, whatever the terminal does with line feeds in raw mode.
    let screen = '';
    lines.forEach((line, i) => {
      // A line as wide as the screen leaves the cursor on its last column: clearing from there would erase it.
      screen += cursorTo(i + 1) + line + (stripVTControlCharacters(line).length < width ? CLEAR_TO_LINE_END : '');
    });
    if (lines.length < height) screen += cursorTo(lines.length + 1) + CLEAR_TO_SCREEN_END;
    out.write(screen);
  };

  const tick = (): void => {
    try {
      frame = sampler.sample();
      draw();
    } catch (err) {
      crash(err);
    }
    if (!paused) timer = setTimeout(tick, opts.interval);
  };

  process.on('exit', restore);
  process.on('uncaughtException', crash);
  process.on('unhandledRejection', crash);
  for (const [signal, code] of Object.entries(SIGNAL_EXIT) as Array<[NodeJS.Signals, number]>) process.once(signal, () => quit(code));
  // Writing to a terminal that has gone away (its window closed) fails: nothing left to restore.
  out.on('error', () => process.exit(SIGNAL_EXIT.SIGHUP!));
  out.on('resize', () => {
    try {
      draw();
    } catch (err) {
      crash(err);
    }
  });

  out.write(ALT_SCREEN_ENTER + CURSOR_HIDE + CURSOR_HOME + CLEAR_TO_SCREEN_END);
  if (raw) {
    // Raw: keys arrive one by one and unechoed, and Ctrl-C arrives as a key (no SIGINT).
    input.setRawMode(true);
    input.resume();
    input.on('data', (data: Buffer) => {
      // An escape sequence (arrows, function keys) arrives whole: its letters are not commands.
      if (data[0] === 0x1b) return;
      for (const byte of data) {
        const key = String.fromCharCode(byte).toLowerCase();
        if (key === 'q' || byte === CTRL_C) quit(Exit.ok);
        else if (key === 'p') {
          paused = !paused;
          clearTimeout(timer);
          if (paused) draw();
          else tick();
        } else if (key === 's') {
          sort = SORTS[(SORTS.indexOf(sort) + 1) % SORTS.length]!;
          draw();
        }
      }
    });
  }
  tick();
  return new Promise<never>(() => {});
}

export function registerTopCommand(program: Command): void {
  program
    .command('top')
    .description('a live view of every IPC object: queue depths, semaphore values and waiters, channel throughput and sleepers, lock owners')
    .option('--interval <ms>', `time between refreshes, in milliseconds (at least ${MIN_INTERVAL})`, parseInterval, 1000)
    .option('-q, --queues', 'message queues only (System V, POSIX) and channels')
    .option('-m, --shmems', 'shared memory only (System V, POSIX, and this package\'s objects in it)')
    .option('-s, --semaphores', 'semaphores only (System V sets, POSIX named)')
    .option('--ours', 'only this package\'s objects (channels, mutexes, conditions, read-write locks)')
    .option('--once', 'print one snapshot (rates over one interval) and exit; works without a terminal')
    .addHelpText(
      'after',
      `
Keys: q or Ctrl-C quit, p pause/resume, s sort by type, name or rate (busiest first).

Columns: USE is messages and bytes queued, semaphore values, a channel's ring bytes
in use, a lock's state. RATE is measured between two refreshes: for queues the change
of their depth per second; for channels what passed through the ring (messages, and
bytes with their framing; ~ when estimated from the mean message size because the
ring went round too far to count them); for conditions notifies per second.
WAITING: System V semaphores: processes waiting for an increase (ncnt) or for zero
(zcnt); POSIX semaphores: waiters; channels: the receiver awake, asleep on the futex
(a blocking receiveSync) or on its doorbell (an async receive), 'none' or 'gone',
then the live senders and how many sleep; mutexes: whether threads wait.

The view uses the terminal's alternate screen and leaves it as it found it. Exit
status: 0 after q or Ctrl-C, 128 + the signal's number after SIGINT (130), SIGTERM
(143) or SIGHUP (129), 1 after an error, 2 when stdout is not a terminal (use --once).

Examples:
  interprocess top                       everything, once a second
  interprocess top -q --interval 250     queues and channels, four times a second
  interprocess top --once --ours         one snapshot of channels and locks, for a script`,
    )
    .action(async (opts: TopOptions) => {
      const sampler = new Sampler(filterOf(opts));
      if (opts.once) return runOnce(sampler, opts);
      if (!process.stdout.isTTY) fail('top draws on a terminal and stdout is not one; use --once for one snapshot', Exit.usage);
      await runLive(sampler, opts);
    });
}
