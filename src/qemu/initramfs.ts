/**
 * Guest images for QEMU: a busybox initramfs written from TypeScript (no
 * cpio, no root, no loop devices), and the guest kernel that
 * scripts/qemu-assets.sh unpacks into the package's build/qemu/.
 *
 * ```js
 * import { findGuestAssets, buildInitramfs } from 'interprocess/qemu';
 *
 * const assets = findGuestAssets();        // build/qemu/vmlinuz, manifest, modules
 * if (!assets.ok) throw new Error(`missing ${assets.missing.join(', ')}`);
 * const initrd = buildInitramfs({
 *   busybox: assets.busybox,               // a static busybox: every applet linked in /bin
 *   init: '#!/bin/sh\nmount -t devtmpfs devtmpfs /dev\necho hello\npoweroff -f\n',
 *   files: { '/etc/motd': 'hi' },
 * });                                      // a Buffer: write it and pass `-initrd FILE`
 * ```
 *
 * The archive is the kernel's "new ASCII" (newc) cpio format; archives may
 * be concatenated (the kernel unpacks them in order, later files win), so a
 * fixed base (initramfsBase) can be cached and a small per-guest archive
 * (CpioWriter) appended.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, readSync } from 'node:fs';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { invalidArgument } from '../errors.js';

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;

/**
 * A writer of the newc cpio format the kernel unpacks as an initramfs.
 * Entries are owned by root. Archives may be concatenated (the kernel
 * unpacks them in order, later files win), so a small per-guest archive can
 * be appended to a cached {@link initramfsBase}.
 *
 * @example
 * ```ts
 * import { writeFileSync } from 'node:fs';
 * import { CpioWriter, initramfsBase } from 'interprocess/qemu';
 *
 * const extra = new CpioWriter()
 *   .file('init', '#!/bin/sh\nmount -t proc proc /proc\necho hello\npoweroff -f\n', 0o755)
 *   .symlink('etc/mtab', '/proc/mounts')
 *   .finish();
 * writeFileSync('initrd.img', Buffer.concat([initramfsBase(), extra]));
 * ```
 */
export class CpioWriter {
  private readonly parts: Buffer[] = [];
  private ino = 1;
  private size = 0;
  private readonly names = new Set<string>();

  private push(b: Buffer): void {
    this.parts.push(b);
    this.size += b.length;
  }

  private pad(): void {
    const rem = this.size % 4;
    if (rem) this.push(Buffer.alloc(4 - rem));
  }

  /** One raw entry: `mode` holds the file type bits (S_IFREG...) and the permissions. */
  entry(name: string, mode: number, data: Buffer = Buffer.alloc(0), rdev: [number, number] = [0, 0]): this {
    name = name.replace(/^\/+/, '');
    const fields = [this.ino++, mode, 0, 0, mode & S_IFDIR ? 2 : 1, 0, data.length, 0, 0, rdev[0], rdev[1], Buffer.byteLength(name) + 1, 0];
    this.push(Buffer.from('070701' + fields.map((f) => (f >>> 0).toString(16).padStart(8, '0')).join(''), 'ascii'));
    this.push(Buffer.from(name + '\0'));
    this.pad();
    if (data.length) {
      this.push(data);
      this.pad();
    }
    this.names.add(name);
    return this;
  }

  /** A directory, and its missing parents first (the kernel does not create them). */
  dir(name: string, mode = 0o755): this {
    const parts = name.replace(/^\/+/, '').split('/');
    for (let i = 1; i <= parts.length; i++) {
      const p = parts.slice(0, i).join('/');
      if (!this.names.has(p)) this.entry(p, S_IFDIR | mode);
    }
    return this;
  }

  /** A regular file (its directory is added if missing). */
  file(name: string, data: Buffer | string, mode = 0o644): this {
    const parent = name.replace(/^\/+/, '').split('/').slice(0, -1).join('/');
    if (parent) this.dir(parent);
    return this.entry(name, S_IFREG | mode, Buffer.isBuffer(data) ? data : Buffer.from(data));
  }

  /** A symbolic link `name` -> `target` (its directory is not added: make it first with {@link CpioWriter.dir}). */
  symlink(name: string, target: string): this {
    return this.entry(name, S_IFLNK | 0o777, Buffer.from(target));
  }

  /** A character device node (e.g. `dev/console`, 5, 1), so it exists before devtmpfs is mounted. */
  charDevice(name: string, major: number, minor: number, mode = 0o600): this {
    return this.entry(name, S_IFCHR | mode, undefined, [major, minor]);
  }

  /** The archive: the trailer, padded to 512 bytes so another archive can follow. */
  finish(): Buffer {
    this.entry('TRAILER!!!', 0);
    const rem = this.size % 512;
    if (rem) this.push(Buffer.alloc(512 - rem));
    return Buffer.concat(this.parts);
  }
}

/** True when `path` is an ELF executable without a program interpreter (statically linked). */
export function isStaticExecutable(path: string): boolean {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return false;
  }
  try {
    const h = Buffer.alloc(64);
    if (readSync(fd, h, 0, 64, 0) < 64 || h.readUInt32BE(0) !== 0x7f454c46 || h[4] !== 2 || h[5] !== 1) return false; // ELF64 LE only
    const phoff = Number(h.readBigUInt64LE(32));
    const phentsize = h.readUInt16LE(54);
    const phnum = h.readUInt16LE(56);
    const ph = Buffer.alloc(phentsize * phnum);
    readSync(fd, ph, 0, ph.length, phoff);
    for (let i = 0; i < phnum; i++) if (ph.readUInt32LE(i * phentsize) === 3 /* PT_INTERP */) return false;
    return true;
  } finally {
    closeSync(fd);
  }
}

function busyboxApplets(busybox: string): string[] {
  const r = spawnSync(busybox, ['--list'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${busybox} --list failed: ${r.stderr || r.error?.message}`);
  return r.stdout.split('\n').filter((a) => /^[\w.[-]+$/.test(a) && a !== 'busybox');
}

/** Options of {@link initramfsBase}. */
export interface InitramfsBaseOptions {
  /** A static busybox (default /bin/busybox), installed as /bin/busybox with a link per applet. */
  busybox?: string;
  /** Kernel module files (.ko), installed as /lib/modules/BASENAME; your /init must load them (insmod), in order. */
  modules?: string[];
}

/**
 * The fixed part of a busybox initramfs: /bin (busybox and its applet
 * links, /sbin and /usr/bin pointing there), /dev/console, /dev/null, empty
 * /proc, /sys, /tmp, /run, /etc, and the modules in /lib/modules. No /init:
 * append it (buildInitramfs does).
 *
 * @throws {InvalidArgumentError} `busybox` is not a static executable.
 * @throws {Error} `busybox --list` failed, or a module file could not be read.
 */
export function initramfsBase(options: InitramfsBaseOptions = {}): Buffer {
  const busybox = options.busybox ?? '/bin/busybox';
  if (!isStaticExecutable(busybox)) throw invalidArgument(`'${busybox}' is not a static executable (on Debian: apt-get install busybox-static)`);
  const a = new CpioWriter();
  for (const d of ['bin', 'dev', 'proc', 'sys', 'tmp', 'run', 'etc', 'lib/modules', 'usr']) a.dir(d);
  a.charDevice('dev/console', 5, 1);
  a.charDevice('dev/null', 1, 3, 0o666);
  a.symlink('sbin', 'bin');
  a.symlink('usr/bin', '../bin');
  a.symlink('usr/sbin', '../bin');
  a.file('bin/busybox', readFileSync(busybox), 0o755);
  for (const applet of busyboxApplets(busybox)) a.symlink(`bin/${applet}`, 'busybox');
  for (const m of options.modules ?? []) a.file(`lib/modules/${basename(m)}`, readFileSync(m));
  return a.finish();
}

/** A file's content for {@link initramfsFiles}: text or bytes (mode 0644), or `{ data, mode }`. */
export type InitramfsFile = string | Buffer | {
  /** The content. */
  data: string | Buffer;
  /** Permission bits (e.g. 0o755). */
  mode: number;
};

/** Options of {@link buildInitramfs}. */
export interface InitramfsOptions extends InitramfsBaseOptions {
  /** The /init script (mode 0755), e.g. `#!/bin/sh` and busybox commands; it runs as PID 1. */
  init: string;
  /** More files: guest path -> content (mode 0644) or { data, mode }. */
  files?: Record<string, InitramfsFile>;
}

/**
 * A complete busybox initramfs (initramfsBase, then /init and `files`), ready for QEMU's `-initrd`.
 *
 * @example
 * ```ts
 * import { writeFileSync } from 'node:fs';
 * import { buildInitramfs } from 'interprocess/qemu';
 *
 * const initrd = buildInitramfs({
 *   init: '#!/bin/sh\nmount -t devtmpfs devtmpfs /dev\necho hello\npoweroff -f\n',
 *   files: { '/etc/motd': 'hi' },
 * });
 * writeFileSync('initrd.img', initrd);   // qemu-system-x86_64 -kernel ... -initrd initrd.img
 * ```
 *
 * @throws {InvalidArgumentError} `init` is missing or empty, or `busybox` is not a static executable.
 */
export function buildInitramfs(options: InitramfsOptions): Buffer {
  if (typeof options.init !== 'string' || options.init === '') throw invalidArgument('init must be the /init script');
  return Buffer.concat([initramfsBase(options), initramfsFiles({ '/init': { data: options.init, mode: 0o755 }, ...options.files })]);
}

/** A small archive of files only (to append to a base): guest path -> content or { data, mode }. */
export function initramfsFiles(files: Record<string, InitramfsFile>): Buffer {
  const a = new CpioWriter();
  for (const [path, f] of Object.entries(files)) {
    if (typeof f === 'string' || Buffer.isBuffer(f)) a.file(path, f);
    else a.file(path, f.data, f.mode);
  }
  return a.finish();
}

// ---- The guest kernel --------------------------------------------------------

/** The package's own directory (dist/qemu/ -> ../..). */
const packageRoot = fileURLToPath(new URL('../../', import.meta.url));

/** What build/qemu/manifest records about the guest kernel. */
export interface GuestManifest {
  /** The kernel's version (uname -r). */
  version: string;
  /** Module names, in load (dependency) order. */
  modules: string[];
}

/** Reads build/qemu/manifest (`key=value` lines: version, modules); undefined if there is none. */
export function readGuestManifest(path: string): GuestManifest | undefined {
  if (!existsSync(path)) return undefined;
  const fields = new Map<string, string>();
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) fields.set(line.slice(0, eq), line.slice(eq + 1));
  }
  return { version: fields.get('version') ?? '?', modules: (fields.get('modules') ?? '').split(/\s+/).filter(Boolean) };
}

/** Options of {@link findGuestAssets}. */
export interface GuestAssetsOptions {
  /** Where scripts/qemu-assets.sh put the kernel (default: the package's build/qemu). */
  dir?: string;
  /** The static busybox (default /bin/busybox). */
  busybox?: string;
  /** The QEMU binary to look for on PATH (default qemu-system-x86_64). */
  qemu?: string;
}

/** Everything needed to boot a guest, as {@link findGuestAssets} finds it. */
export interface GuestAssets {
  /** Everything is there. */
  ok: true;
  /** The assets directory. */
  dir: string;
  /** The kernel image, for `-kernel`. */
  kernel: string;
  /** build/qemu/manifest. */
  manifest: GuestManifest;
  /** The manifest's modules as files, in load order. */
  modules: string[];
  /** The static busybox's path. */
  busybox: string;
  /** The QEMU binary's path. */
  qemu: string;
}

/** What {@link findGuestAssets} returns when something is missing. */
export interface GuestAssetsMissing {
  /** Something is missing. */
  ok: false;
  /** The assets directory looked in. */
  dir: string;
  /** What is missing, each with where it comes from. */
  missing: string[];
}

function onPath(cmd: string): string | undefined {
  if (cmd.includes('/')) return existsSync(cmd) ? cmd : undefined;
  for (const d of (process.env.PATH ?? '').split(':')) if (d !== '' && existsSync(join(d, cmd))) return join(d, cmd);
  return undefined;
}

/**
 * Everything needed to boot a busybox guest: QEMU on PATH, a static busybox,
 * and the kernel (vmlinuz), manifest and modules that scripts/qemu-assets.sh
 * (as root, on Debian) unpacks into the package's build/qemu/. Never throws:
 * `ok: false` lists what is missing.
 */
export function findGuestAssets(options: GuestAssetsOptions = {}): GuestAssets | GuestAssetsMissing {
  const dir = options.dir ?? join(packageRoot, 'build', 'qemu');
  const busybox = options.busybox ?? '/bin/busybox';
  const qemuName = options.qemu ?? 'qemu-system-x86_64';
  const missing: string[] = [];
  const qemu = onPath(qemuName);
  if (!qemu) missing.push(`${qemuName} (Debian package qemu-system-x86)`);
  if (!isStaticExecutable(busybox)) missing.push(`a static ${busybox} (Debian package busybox-static)`);
  const kernel = join(dir, 'vmlinuz');
  const manifest = readGuestManifest(join(dir, 'manifest'));
  const modules = (manifest?.modules ?? []).map((m) => join(dir, 'modules', `${m}.ko`));
  if (!existsSync(kernel) || !manifest) missing.push(`the guest kernel in ${dir} (vmlinuz and manifest)`);
  else for (const m of modules) if (!existsSync(m)) missing.push(m);
  if (missing.length || !qemu || !manifest) return { ok: false, dir, missing };
  return { ok: true, dir, kernel, manifest, modules, busybox, qemu };
}
