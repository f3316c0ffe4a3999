/**
 * `interprocess queue ...` and `interprocess channel ...`: message queues
 * (System V and POSIX) and this package's Channel, for shell scripts.
 *
 *   printf 'a\nb\n' | interprocess queue send 0x1234     two messages
 *   interprocess queue recv 0x1234 --all                  everything queued now
 *   if interprocess queue recv /jobs --timeout 0; then    exit 3 when empty
 *
 * Messages are lines by default (the newline is not part of the message),
 * or with --raw all of stdin / the bytes exactly; --json for anything a line
 * cannot carry. Every wait is the library's async form, so Ctrl-C ends it:
 * the handles are closed (nothing is taken from a queue by a cancelled
 * receive) and the command exits 130.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { isUtf8 } from 'node:buffer';
import { fstatSync, readFileSync } from 'node:fs';
import { addAbortSignal, type Readable } from 'node:stream';
import { Command, InvalidArgumentError, Option } from 'commander';
import { Channel, type ChannelInfo } from '../channel.js';
import * as posix from '../posix.js';
import * as sysv from '../sysv.js';
import { Exit, codeOf, fail, formatKey, parseCount, parseMode, parseTarget, parseTimeout, type Target } from './target.js';

// ---- argument parsers (commander argParser: InvalidArgumentError exits 2) ----

const MAX_TYPE = Number.MAX_SAFE_INTEGER;

function parseInteger(text: string, min: number, max: number, what: string): number {
  const n = /^-?\d+$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new InvalidArgumentError(`${what} (got '${text}')`);
  return n;
}

const parseSendType = (text: string): number => parseInteger(text, 1, MAX_TYPE, 'a message type (mtype) is a positive integer');
const parseReceiveType = (text: string): number =>
  parseInteger(text, -MAX_TYPE, MAX_TYPE, 'a message type selector is an integer: 0 any, N that type, -N the lowest type up to N');
const parsePriority = (text: string): number =>
  parseInteger(text, 0, posix.MQ_PRIO_MAX - 1, `a priority is an integer from 0 to ${posix.MQ_PRIO_MAX - 1}`);
const parsePositive = (text: string): number => parseInteger(text, 1, 0x7fffffff, 'expected a positive integer');

/** A ring size in bytes, with an optional K/M/G (binary) suffix: 64K, 1M. */
function parseCapacity(text: string): number {
  const m = /^(\d+)\s*([kmg])?(?:i?b)?$/i.exec(text);
  const n = m ? Number(m[1]) * 1024 ** ' kmg'.indexOf((m[2] ?? ' ').toLowerCase()) : NaN;
  if (!Number.isSafeInteger(n) || n < 4096 || n > 2 ** 30 || (n & (n - 1)) !== 0) {
    throw new InvalidArgumentError(`a capacity is a power of two from 4096 (4K) to 1G bytes (got '${text}')`);
  }
  return n;
}

function parseCountOption(text: string): number {
  const n = parseCount(text);
  if (n === 0) throw new InvalidArgumentError('a count is at least 1 (use --all to take whatever is there, none included)');
  return n;
}

/** A channel is a POSIX shared memory object: only the /name form of a target names one. */
function parseChannelName(text: string): string {
  const t = parseTarget(text);
  if (t.kind !== 'posix') throw new InvalidArgumentError(`a channel is named /name (a POSIX shared memory object), not a System V key or id (got '${text}')`);
  return t.name;
}

// ---- Ctrl-C, stdin, stdout -----------------------------------------------------

/**
 * SIGINT/SIGTERM abort the command's waits; the verb then closes its handles
 * and ends with 130 (143). A second signal ends the process at once.
 */
function interrupts(): { signal: AbortSignal; exitCode: () => number; dispose: () => void } {
  const ac = new AbortController();
  let code: number = Exit.ok;
  const handler = (sig: NodeJS.Signals): void => {
    const c = sig === 'SIGINT' ? 130 : 143;
    if (ac.signal.aborted) process.exit(c);
    code = c;
    ac.abort(new Error(`interrupted by ${sig}`));
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return {
    signal: ac.signal,
    exitCode: () => code,
    dispose: () => {
      process.off('SIGINT', handler);
      process.off('SIGTERM', handler);
    },
  };
}

/** Messages from stdin: one per line (bytes kept exactly, '\n' only), or with raw all of it as one. */
async function* stdinMessages(raw: boolean, signal: AbortSignal): AsyncGenerator<Buffer> {
  const input = addAbortSignal(signal, process.stdin as Readable);
  if (raw) {
    const chunks: Buffer[] = [];
    for await (const chunk of input) chunks.push(chunk as Buffer);
    yield Buffer.concat(chunks);
    return;
  }
  let pending: Buffer[] = [];
  for await (const chunk of input as AsyncIterable<Buffer>) {
    let start = 0;
    for (let nl = chunk.indexOf(10); nl !== -1; nl = chunk.indexOf(10, start)) {
      const piece = chunk.subarray(start, nl);
      yield pending.length ? Buffer.concat([...pending, piece]) : piece;
      pending = [];
      start = nl + 1;
    }
    if (start < chunk.length) pending.push(chunk.subarray(start));
  }
  // A last line without its newline is still a message.
  if (pending.length) yield Buffer.concat(pending);
}

/** Writes to stdout, resolving once written (so a closed pipe is noticed before the next receive). */
function writeOut(data: Buffer | string): Promise<void> {
  return new Promise((resolve, reject) => {
    process.stdout.write(data, (err) => (err ? reject(err) : resolve()));
  });
}

function plural(n: number, what: string): string {
  return `${n} ${what}${n === 1 ? '' : 's'}`;
}

function localTime(d: Date | null): string {
  if (!d) return 'never';
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

const octal = (mode: number): string => `0${(mode & 0o777).toString(8).padStart(3, '0')}`;

// ---- one interface over the three kinds ------------------------------------------

interface Received {
  data: Buffer;
  /** System V mtype. */
  type?: number;
  /** POSIX priority. */
  priority?: number;
}

interface Endpoint {
  /** How messages name the object: "System V queue 0x00001234", "channel /jobs". */
  what: string;
  trySend(data: Buffer): boolean;
  send(data: Buffer, wait: { timeout: number; signal: AbortSignal }): Promise<void>;
  tryReceive(): Received | undefined;
  receive(wait: { timeout: number; signal: AbortSignal }): Promise<Received>;
  close(): void;
}

function sysvWhat(t: Exclude<Target, { kind: 'posix' }>): string {
  return t.kind === 'key' ? `System V queue ${formatKey(t.key)}` : `System V queue id ${t.id}`;
}

/** Opens an existing System V queue by key or id; a missing one is exit 4. */
function openSysv(t: Exclude<Target, { kind: 'posix' }>): sysv.MessageQueue {
  try {
    if (t.kind === 'key') {
      if (t.key === sysv.IPC_PRIVATE) fail('key 0 is IPC_PRIVATE, which names no existing queue: give the queue id (as `ipcs -q` shows it)', Exit.usage);
      return sysv.MessageQueue.open(t.key);
    }
    return sysv.MessageQueue.fromId(t.id);
  } catch (err) {
    // msgctl(IPC_STAT) on an id nobody holds (or one of another kind) is EINVAL.
    const code = codeOf(err);
    if (code === 'ENOENT' || code === 'EIDRM' || (t.kind === 'id' && code === 'EINVAL')) {
      fail(`no System V message queue with ${t.kind === 'key' ? `key ${formatKey(t.key)}` : `id ${t.id}`}`, Exit.notFound);
    }
    throw err;
  }
}

function openPosix(name: string, access: posix.MessageQueueAccess): posix.MessageQueue {
  try {
    return posix.MessageQueue.open(name, { access });
  } catch (err) {
    if (codeOf(err) === 'ENOENT') fail(`no POSIX message queue named ${name}`, Exit.notFound);
    throw err;
  }
}

function openChannel(name: string): Channel {
  try {
    return Channel.open(name);
  } catch (err) {
    if (codeOf(err) === 'ENOENT') fail(`no channel named ${name}`, Exit.notFound);
    throw err;
  }
}

function sysvEndpoint(q: sysv.MessageQueue, what: string, sendType: number, recv: sysv.ReceiveOptions): Endpoint {
  return {
    what,
    trySend: (data) => q.trySend(sendType, data),
    send: (data, wait) => q.send(sendType, data, wait),
    tryReceive: () => q.tryReceive(recv),
    receive: (wait) => q.receive({ ...recv, ...wait }),
    close: () => q.close(),
  };
}

function posixEndpoint(q: posix.MessageQueue, priority: number): Endpoint {
  return {
    what: `POSIX queue ${q.name}`,
    trySend: (data) => q.trySend(data, priority),
    send: (data, wait) => q.send(data, priority, wait),
    tryReceive: () => q.tryReceive(),
    receive: (wait) => q.receive(wait),
    close: () => q.close(),
  };
}

function channelEndpoint(ch: Channel): Endpoint {
  const received = (data: Buffer | undefined): Received | undefined => (data === undefined ? undefined : { data });
  return {
    what: `channel ${ch.name}`,
    trySend: (data) => ch.trySend(data),
    send: (data, wait) => ch.send(data, wait),
    tryReceive: () => received(ch.tryReceive()),
    receive: async (wait) => ({ data: await ch.receive(wait) }),
    close: () => ch.close(),
  };
}

/**
 * Runs a verb with its handle: Ctrl-C aborts its waits and ends it with 130
 * (not an error: nothing is printed), the handle is closed either way.
 */
async function withEndpoint(open: () => Endpoint, body: (ep: Endpoint, signal: AbortSignal) => Promise<void>): Promise<void> {
  const intr = interrupts();
  let ep: Endpoint | undefined;
  try {
    ep = open();
    await body(ep, intr.signal);
  } catch (err) {
    if (!intr.signal.aborted) throw err;
  } finally {
    ep?.close();
    intr.dispose();
  }
  if (intr.signal.aborted) process.exitCode = intr.exitCode();
}

function waitText(timeout: number): string {
  return timeout === 0 ? ' (--timeout 0: not waiting)' : ` within ${timeout} ms`;
}

// ---- send ---------------------------------------------------------------------

interface SendOptions {
  raw?: boolean;
  timeout?: number;
}

async function sendMessages(ep: Endpoint, message: string | undefined, o: SendOptions, signal: AbortSignal): Promise<void> {
  const timeout = o.timeout ?? Infinity;
  const messages: AsyncIterable<Buffer> | Buffer[] = message !== undefined ? [Buffer.from(message)] : stdinMessages(o.raw === true, signal);
  let sent = 0;
  for await (const data of messages) {
    if (signal.aborted) return;
    let done: boolean;
    if (timeout === 0) {
      done = ep.trySend(data);
    } else {
      try {
        await ep.send(data, { timeout, signal });
        done = true;
      } catch (err) {
        if (codeOf(err) !== 'ETIMEDOUT') throw err;
        done = false;
      }
    }
    if (!done) {
      fail(`${ep.what} is full: no room${waitText(timeout)}${sent ? `; ${plural(sent, 'message')} sent before` : ''}`, Exit.timeout);
    }
    sent++;
  }
}

// ---- recv ---------------------------------------------------------------------

interface ReceiveCliOptions {
  count?: number;
  all?: boolean;
  follow?: boolean;
  raw?: boolean;
  json?: boolean;
  timeout?: number;
  showType?: boolean;
  showPriority?: boolean;
}

function formatMessage(m: Received, o: ReceiveCliOptions): Buffer | string {
  if (o.raw) return m.data;
  if (o.json) {
    const text = isUtf8(m.data);
    const record: Record<string, unknown> = {};
    if (m.type !== undefined) record.type = m.type;
    if (m.priority !== undefined) record.priority = m.priority;
    record.data = m.data.toString(text ? 'utf8' : 'base64');
    if (!text) record.encoding = 'base64';
    return `${JSON.stringify(record)}\n`;
  }
  const prefix = o.showType ? `${m.type}\t` : o.showPriority ? `${m.priority}\t` : '';
  return Buffer.concat([Buffer.from(prefix), m.data, Buffer.from('\n')]);
}

function checkReceiveModes(o: ReceiveCliOptions): void {
  if (o.follow && o.timeout !== undefined) {
    fail('--follow waits for ever; to stop after a quiet period use --all --timeout MS', Exit.usage);
  }
}

async function receiveMessages(ep: Endpoint, o: ReceiveCliOptions, signal: AbortSignal, selector = ''): Promise<void> {
  // --all stops at the first receive that would wait (or, with --timeout, at the first quiet
  // period that long) and that is success; otherwise a wait that runs out is exit 3.
  const timeout = o.timeout ?? (o.all ? 0 : Infinity);
  const wanted = o.all || o.follow ? Infinity : o.count ?? 1;
  let stdoutError: unknown;
  let lastGone: string | undefined;
  const onError = (err: unknown): void => void (stdoutError ??= err);
  process.stdout.on('error', onError);
  try {
    for (let got = 0; got < wanted && !signal.aborted; got++) {
      let m: Received | undefined;
      if (timeout === 0) {
        m = ep.tryReceive();
      } else {
        try {
          m = await ep.receive({ timeout, signal });
        } catch (err) {
          if (o.follow && codeOf(err) === 'EPIPE') {
            // A channel's sender died. The follower outlives it, as tail -f outlives a writer: said once, then
            // a look every 100 ms (the library's own peer check), since a receive fails again at once for as
            // long as no live sender is attached.
            const note = (err as Error).message;
            if (note !== lastGone) process.stderr.write(`interprocess: ${note}; still following\n`);
            lastGone = note;
            got--;
            await sleep(100, undefined, { signal }).catch(() => undefined);
            continue;
          }
          if (codeOf(err) !== 'ETIMEDOUT') throw err;
        }
      }
      if (!m) {
        if (o.all) return;
        const after = wanted > 1 ? `; ${got} of ${wanted} received` : '';
        fail(`no message${selector} in ${ep.what}${waitText(timeout)}${after}`, Exit.timeout);
      }
      try {
        await writeOut(formatMessage(m, o));
      } catch (err) {
        stdoutError ??= err;
      }
      if (stdoutError) {
        fail(`cannot write a received message to stdout (${codeOf(stdoutError) ?? String(stdoutError)}): it is lost`, Exit.error);
      }
    }
  } finally {
    process.stdout.off('error', onError);
  }
}

function selectorText(type: number | undefined): string {
  if (!type) return '';
  return type > 0 ? ` of type ${type}` : ` of type <= ${-type}`;
}

// ---- stat -------------------------------------------------------------------------

function sysvStat(t: Exclude<Target, { kind: 'posix' }>, json: boolean): string {
  const q = openSysv(t);
  let st: sysv.MsqStat;
  try {
    st = q.stat();
  } finally {
    q.close();
  }
  if (json) {
    return JSON.stringify({
      kind: 'sysv',
      id: st.id,
      key: formatKey(st.key),
      messages: st.qnum,
      bytes: st.cbytes,
      maxBytes: st.qbytes,
      maxMessageSize: sysv.MSGMAX,
      uid: st.uid,
      gid: st.gid,
      cuid: st.cuid,
      cgid: st.cgid,
      mode: octal(st.mode),
      lastSendPid: st.lspid,
      lastReceivePid: st.lrpid,
      sendTime: st.stime?.toISOString() ?? null,
      receiveTime: st.rtime?.toISOString() ?? null,
      changeTime: st.ctime.toISOString(),
    });
  }
  const by = (d: Date | null, pid: number): string => (d ? `${localTime(d)} by pid ${pid}` : 'never');
  return [
    `System V message queue ${formatKey(st.key)} (id ${st.id})`,
    `  messages      ${st.qnum} (${plural(st.cbytes, 'byte')} of ${st.qbytes}; at most ${sysv.MSGMAX} bytes a message)`,
    `  owner         uid ${st.uid}, gid ${st.gid} (creator uid ${st.cuid}, gid ${st.cgid})`,
    `  mode          ${octal(st.mode)}`,
    `  last send     ${by(st.stime, st.lspid)}`,
    `  last receive  ${by(st.rtime, st.lrpid)}`,
    `  last change   ${localTime(st.ctime)}`,
  ].join('\n');
}

/** /dev/mqueue/NAME's line "QSIZE:n NOTIFY:n SIGNO:n NOTIFY_PID:n", when mqueue is mounted there. */
function mqueueFile(name: string): Record<string, number> | undefined {
  let text: string;
  try {
    text = readFileSync(`/dev/mqueue${name}`, 'latin1');
  } catch {
    return undefined;
  }
  return Object.fromEntries([...text.matchAll(/([A-Z_]+):(-?\d+)/g)].map((m) => [m[1]!, Number(m[2])]));
}

function posixStat(name: string, json: boolean): string {
  // Read access is enough to look; a queue this user may only write to is opened for writing.
  let q: posix.MessageQueue;
  try {
    q = openPosix(name, 'read');
  } catch (err) {
    if (codeOf(err) !== 'EACCES') throw err;
    q = openPosix(name, 'write');
  }
  let attrs: posix.MessageQueueAttributes;
  let st: ReturnType<typeof fstatSync>;
  try {
    attrs = q.attributes();
    st = fstatSync(q.fd); // on Linux a queue descriptor is a file: owner, mode, times
  } finally {
    q.close();
  }
  const file = mqueueFile(name);
  const bytes = file?.QSIZE ?? null;
  const notifyPid = file?.NOTIFY_PID ?? null;
  if (json) {
    return JSON.stringify({
      kind: 'posix',
      name,
      messages: attrs.currentMessages,
      bytes,
      maxMessages: attrs.maxMessages,
      messageSize: attrs.messageSize,
      uid: st.uid,
      gid: st.gid,
      mode: octal(st.mode),
      notifyPid,
      changeTime: st.mtime.toISOString(),
    });
  }
  return [
    `POSIX message queue ${name}`,
    `  messages      ${attrs.currentMessages} (${bytes === null ? 'bytes unknown: /dev/mqueue is not mounted' : plural(bytes, 'byte')})`,
    `  limits        ${plural(attrs.maxMessages, 'message')} of at most ${attrs.messageSize} bytes`,
    `  owner         uid ${st.uid}, gid ${st.gid}`,
    `  mode          ${octal(st.mode)}`,
    `  last change   ${localTime(st.mtime)} (a send or receive)`,
    ...(notifyPid ? [`  notify        pid ${notifyPid} (mq_notify)`] : []),
  ].join('\n');
}

function channelStat(name: string, json: boolean): string {
  let info: ChannelInfo;
  try {
    info = Channel.inspect(name);
  } catch (err) {
    if (codeOf(err) === 'ENOENT') fail(`no channel named ${name}`, Exit.notFound);
    throw err;
  }
  if (json) return JSON.stringify(info);
  const state = (alive: boolean): string => (alive ? 'running' : 'exited');
  const senders = info.senderPids.length === 0
    ? 'none attached'
    : `pid ${info.senderPids.join(', ')} (${info.liveSenders} running)`;
  return [
    `Channel ${info.name}`,
    `  ring          ${info.capacity} bytes, ${info.used} in use; messages up to ${info.maxMessage} bytes`,
    `  creator       pid ${info.creatorPid} (${state(info.creatorAlive)})`,
    `  receiver      ${info.receiverPid === 0 ? 'none attached' : `pid ${info.receiverPid} (${state(info.receiverAlive)})`}`,
    `  senders       ${senders}`,
    `  stale         ${info.stale ? 'yes: its creator has exited and nobody is attached' : 'no'}`,
  ].join('\n');
}

// ---- commands -----------------------------------------------------------------

const targetHelp = `
TARGET names the queue as ipcs/ipcrm do:
  0x1234abcd, key:N     a System V key          123, id:123    a System V id
  ftok:PATH:PROJ        the key ftok(3) gives    /name          a POSIX queue`;

const timeoutOption = (what: string): Option =>
  new Option('--timeout <ms>', `${what}: 0 = do not wait (exit 3 if it would), default: wait for ever`).argParser(parseTimeout);

type QueueTarget = Target;

/** An exclusive create that found the object: said plainly. */
function ifNew<T>(what: string, create: () => T): T {
  try {
    return create();
  } catch (err) {
    if (codeOf(err) === 'EEXIST') fail(`${what} already exists (--exclusive)`, Exit.error);
    throw err;
  }
}

/** Rejects options that belong to the other kind of queue (exit 2). */
function onlyFor(t: QueueTarget, given: object, sysvOnly: string[], posixOnly: string[]): void {
  const options = given as Record<string, unknown>;
  const flag = (o: string): string => `--${o.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
  for (const o of t.kind === 'posix' ? sysvOnly : posixOnly) {
    if (options[o] === undefined || options[o] === false) continue;
    fail(
      t.kind === 'posix'
        ? `${flag(o)} is for System V queues; ${t.name} is a POSIX queue`
        : `${flag(o)} is for POSIX queues (/name); ${t.text} is a System V queue`,
      Exit.usage,
    );
  }
}

function queueCommands(queue: Command): void {
  queue
    .command('create')
    .description('create a message queue (System V: like ipcmk -Q, prints its id; POSIX: mq_open with O_CREAT)')
    .argument('[target]', 'the key or /name of the queue; 0 for a new private queue (IPC_PRIVATE)', parseTarget)
    .option('--private', 'System V: a new queue with key IPC_PRIVATE, reachable only by the id printed')
    .option('-m, --mode <octal>', 'permission bits (default 600; the umask applies to POSIX objects)', parseMode)
    .option('-x, --exclusive', 'fail (exit 1) if the queue exists; default: use the existing queue')
    .option('--max-msgs <n>', 'POSIX: capacity in messages (mq_maxmsg; default /proc/sys/fs/mqueue/msg_default)', parsePositive)
    .option('--msg-size <bytes>', 'POSIX: largest message (mq_msgsize; default /proc/sys/fs/mqueue/msgsize_default)', parsePositive)
    .addHelpText('after', `
Prints "Message queue id: ID" for a System V queue (as ipcmk does), and the
limits of a POSIX queue. Without --exclusive an existing queue is opened.

Examples:
  $ interprocess queue create 0x1234                 # System V queue by key
  $ id=$(interprocess queue create --private | awk '{print $NF}')
  $ interprocess queue create /jobs --max-msgs 10 --msg-size 1024 --mode 660
${targetHelp}`)
    .action((target: QueueTarget | undefined, o: { private?: boolean; mode?: number; exclusive?: boolean; maxMsgs?: number; msgSize?: number }) => {
      if (target === undefined && !o.private) fail('give the queue to create: a key, /name, or --private (or 0) for a new private queue', Exit.usage);
      if (o.private && target !== undefined && !(target.kind === 'id' && target.id === 0) && !(target.kind === 'key' && target.key === 0)) {
        fail('--private makes a queue with no key: give no TARGET with it', Exit.usage);
      }
      const t: QueueTarget = target ?? { kind: 'key', key: sysv.IPC_PRIVATE, text: '0' };
      onlyFor(t, o, ['private'], ['maxMsgs', 'msgSize']);
      if (t.kind === 'posix') {
        const q = ifNew(`POSIX message queue ${t.name}`, () =>
          posix.MessageQueue.create(t.name, {
            mode: o.mode ?? 0o600,
            exclusive: o.exclusive === true,
            ...(o.maxMsgs !== undefined ? { maxMessages: o.maxMsgs } : {}),
            ...(o.msgSize !== undefined ? { messageSize: o.msgSize } : {}),
          }),
        );
        try {
          process.stdout.write(`Message queue: ${t.name} (${plural(q.maxMessages, 'message')} of at most ${q.messageSize} bytes${q.created ? '' : '; it already existed'})\n`);
        } finally {
          q.close();
        }
        return;
      }
      if (t.kind === 'id' && t.id !== 0) {
        fail(`${t.text} is a queue id, which names an existing queue: create by key (0xKEY, key:N, ftok:PATH:PROJ), or 0/--private for a new private queue`, Exit.usage);
      }
      const key = t.kind === 'key' ? t.key : sysv.IPC_PRIVATE;
      const mode = o.mode ?? 0o600;
      const q = ifNew(`System V message queue with key ${formatKey(key)}`, () =>
        sysv.MessageQueue.create(key === sysv.IPC_PRIVATE ? { mode } : { key, mode, exclusive: o.exclusive === true }),
      );
      q.close();
      process.stdout.write(`Message queue id: ${q.id}\n`);
    });

  queue
    .command('send')
    .description('send messages: MESSAGE, or stdin one message per line (--raw: all of stdin as one)')
    .argument('<target>', 'the queue (key, id or /name)', parseTarget)
    .argument('[message]', 'the message to send (default: read stdin)')
    .option('-t, --type <n>', 'System V: the message type (mtype), a positive integer (default 1)', parseSendType)
    .option('-p, --priority <n>', `POSIX: the priority, 0 to ${posix.MQ_PRIO_MAX - 1} (default 0); higher is received first`, parsePriority)
    .option('--raw', 'stdin is one message, bytes as they are (newlines and NUL bytes included)')
    .addOption(timeoutOption('how long each message may wait for room in a full queue'))
    .addHelpText('after', `
Each line of stdin is one message, without its newline (an empty line is an
empty message). A full queue makes the send wait, up to --timeout; then the
command exits 3, having sent the messages before.

Examples:
  $ interprocess queue send 0x1234 'hello'                # type 1
  $ printf 'a\\nb\\n' | interprocess queue send 0x1234 --type 2
  $ interprocess queue send /jobs --priority 9 < urgent.txt
  $ interprocess queue send /blobs --raw < image.png      # one binary message
${targetHelp}`)
    .action(async (t: QueueTarget, message: string | undefined, o: SendOptions & { type?: number; priority?: number }) => {
      onlyFor(t, o, ['type'], ['priority']);
      await withEndpoint(
        () => t.kind === 'posix'
          ? posixEndpoint(openPosix(t.name, 'write'), o.priority ?? 0)
          : sysvEndpoint(openSysv(t), sysvWhat(t), o.type ?? 1, {}),
        (ep, signal) => sendMessages(ep, message, o, signal),
      );
    });

  queue
    .command('recv')
    .alias('receive')
    .description('receive messages and print them, one a line (default: one message, waiting for it)')
    .argument('<target>', 'the queue (key, id or /name)', parseTarget)
    .option('-t, --type <n>', 'System V: which message: 0 the first of any type (default), N the first of type N, -N the first of the lowest type up to N', parseReceiveType)
    .addOption(new Option('-n, --count <n>', 'receive N messages (exit 3 if a wait for one runs out)').argParser(parseCountOption).conflicts(['all', 'follow']))
    .addOption(new Option('-a, --all', 'receive until the queue is empty (with --timeout MS: until none comes for MS); exit 0 even if none').conflicts('follow'))
    .option('-f, --follow', 'receive for ever, until Ctrl-C')
    .addOption(new Option('--raw', 'write the message bytes as they are, without a newline').conflicts(['json', 'showType', 'showPriority']))
    .option('--json', 'one JSON object a line: {"type"|"priority", "data"}; data is base64 (with "encoding":"base64") when not UTF-8')
    .option('--show-type', 'System V: print "TYPE<tab>" before each message')
    .option('--show-priority', 'POSIX: print "PRIORITY<tab>" before each message')
    .addOption(timeoutOption('how long each receive may wait'))
    .addHelpText('after', `
POSIX queues deliver the highest priority first; System V queues the oldest
message that --type selects. A receive that times out or is interrupted
takes nothing from the queue. Line mode cannot tell a newline inside a
message from the end of one: use --json (or --raw for a single message).

Examples:
  $ interprocess queue recv 0x1234                    # wait for one message
  $ interprocess queue recv 0x1234 --all --show-type  # drain: TYPE<tab>TEXT lines
  $ interprocess queue recv 0x1234 --type -5 --count 3
  $ if msg=$(interprocess queue recv /jobs --timeout 0); then echo "got $msg"; fi
  $ interprocess queue recv /jobs --follow --json | jq -r .data
${targetHelp}`)
    .action(async (t: QueueTarget, o: ReceiveCliOptions & { type?: number }) => {
      onlyFor(t, o, ['type', 'showType'], ['showPriority']);
      checkReceiveModes(o);
      await withEndpoint(
        () => t.kind === 'posix' ? posixEndpoint(openPosix(t.name, 'read'), 0) : sysvEndpoint(openSysv(t), sysvWhat(t), 1, { type: o.type ?? 0 }),
        (ep, signal) => receiveMessages(ep, o, signal, selectorText(o.type)),
      );
    });

  queue
    .command('stat')
    .description('show a queue: messages and bytes queued, limits, owner, mode, last sender and receiver, times')
    .argument('<target>', 'the queue (key, id or /name)', parseTarget)
    .option('--json', 'one JSON object (times in ISO 8601, null for never)')
    .addHelpText('after', `
System V: what ipcs -q -i ID shows (msqid_ds). POSIX: mq_getattr, the owner
and mode of the queue, and the bytes queued from /dev/mqueue when mounted.

Examples:
  $ interprocess queue stat 0x1234
  $ interprocess queue stat /jobs --json | jq .messages
${targetHelp}`)
    .action((t: QueueTarget, o: { json?: boolean }) => {
      process.stdout.write(`${t.kind === 'posix' ? posixStat(t.name, o.json === true) : sysvStat(t, o.json === true)}\n`);
    });
}

function channelCommands(channel: Command): void {
  channel
    .command('create')
    .description('create a channel (a ring buffer in POSIX shared memory); it stays after this command ends')
    .argument('<name>', 'the channel: /name', parseChannelName)
    .option('-c, --capacity <bytes>', 'ring size: a power of two, 4K to 1G (default 1M); messages up to half of it', parseCapacity)
    .option('-m, --mode <octal>', 'permission bits (default 600; the umask applies to POSIX objects)', parseMode)
    .option('-x, --exclusive', 'fail (exit 1) if it exists; default: use the existing channel')
    .option('--replace-stale', 'replace an existing channel that is stale (creator exited, nobody attached), messages included')
    .addHelpText('after', `
The channel lives until it is removed (interprocess rm /NAME). Note that a channel made by this command is stale as soon as
the command ends, until a sender or receiver attaches: --replace-stale then
replaces it, with any messages in it.

Examples:
  $ interprocess channel create /events
  $ interprocess channel create /events --capacity 64K --mode 660`)
    .action((name: string, o: { capacity?: number; mode?: number; exclusive?: boolean; replaceStale?: boolean }) => {
      let ch: Channel;
      let existed = false;
      try {
        ch = Channel.create(name, { mode: o.mode ?? 0o600, replaceStale: o.replaceStale === true, ...(o.capacity !== undefined ? { capacity: o.capacity } : {}) });
      } catch (err) {
        if (codeOf(err) !== 'EEXIST') throw err;
        if (o.exclusive) fail(`channel ${name} already exists${o.replaceStale ? ' and is not stale' : ''} (--exclusive)`, Exit.error);
        ch = openChannel(name);
        existed = true;
      }
      try {
        process.stdout.write(`Channel: ${name} (${ch.capacity}-byte ring, messages up to ${ch.maxMessage} bytes${existed ? '; it already existed' : ''})\n`);
      } finally {
        ch.close();
      }
    });

  channel
    .command('send')
    .description('send messages: MESSAGE, or stdin one message per line (--raw: all of stdin as one)')
    .argument('<name>', 'the channel: /name', parseChannelName)
    .argument('[message]', 'the message to send (default: read stdin)')
    .option('--raw', 'stdin is one message, bytes as they are (newlines and NUL bytes included)')
    .addOption(timeoutOption('how long each message may wait for room in a full ring'))
    .addHelpText('after', `
Examples:
  $ interprocess channel send /events 'started'
  $ tail -f app.log | interprocess channel send /events`)
    .action(async (name: string, message: string | undefined, o: SendOptions) => {
      await withEndpoint(() => channelEndpoint(openChannel(name)), (ep, signal) => sendMessages(ep, message, o, signal));
    });

  channel
    .command('recv')
    .alias('receive')
    .description('receive messages and print them, one a line (a channel has one receiver at a time)')
    .argument('<name>', 'the channel: /name', parseChannelName)
    .addOption(new Option('-n, --count <n>', 'receive N messages (exit 3 if a wait for one runs out)').argParser(parseCountOption).conflicts(['all', 'follow']))
    .addOption(new Option('-a, --all', 'receive until the ring is empty (with --timeout MS: until none comes for MS); exit 0 even if none').conflicts('follow'))
    .option('-f, --follow', 'receive for ever, until Ctrl-C')
    .addOption(new Option('--raw', 'write the message bytes as they are, without a newline').conflicts('json'))
    .option('--json', 'one JSON object a line: {"data"}; data is base64 (with "encoding":"base64") when not UTF-8')
    .addOption(timeoutOption('how long each receive may wait'))
    .addHelpText('after', `
While this command runs it is the channel's receiver: a second receiver is
refused (exit 1).

Examples:
  $ interprocess channel recv /events --follow
  $ interprocess channel recv /events --all --json`)
    .action(async (name: string, o: ReceiveCliOptions) => {
      checkReceiveModes(o);
      await withEndpoint(() => channelEndpoint(openChannel(name)), (ep, signal) => receiveMessages(ep, o, signal));
    });

  channel
    .command('stat')
    .description('show a channel: ring size and use, creator, receiver and senders, and whether it is stale')
    .argument('<name>', 'the channel: /name', parseChannelName)
    .option('--json', 'one JSON object (Channel.inspect)')
    .addHelpText('after', `
Example:
  $ interprocess channel stat /events --json | jq .used`)
    .action((name: string, o: { json?: boolean }) => {
      process.stdout.write(`${channelStat(name, o.json === true)}\n`);
    });
}

/** Adds `queue` and `channel` to the command. */
export function registerQueueCommands(program: Command): void {
  const queue = program
    .command('queue')
    .description('message queues, System V and POSIX: create, send, recv, stat')
    .addHelpText('after', targetHelp);
  queueCommands(queue);
  const channel = program
    .command('channel')
    .description("this package's channels (ordered messages through shared memory): create, send, recv, stat");
  channelCommands(channel);
}
