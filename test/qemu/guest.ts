/**
 * Real QEMU guests for the tests: a Debian cloud kernel and a busybox
 * initramfs built here, booted under TCG in about two seconds.
 *
 * scripts/qemu-assets.sh installs QEMU and busybox-static and unpacks the
 * kernel and its modules into build/qemu/ (npm test's pretest and .ci/run
 * call it). A test then:
 *
 *   if (!requireQemu(t)) return;                    // skips, with the reason
 *   const initrd = await buildInitramfs(t, { programs: ['line_echo'], init: 'line_echo /dev/ttyS1' });
 *   const guest = bootGuest(t, { initrd, extraArgs: [...] });
 *   await guest.exited;                              // { code, signal, timedOut, ms }
 *
 * The initramfs is the cached base (static busybox, its applet links, the
 * kernel modules, /dev/console) followed by a small per-test archive (/init
 * and the test's programs, compiled static from guest/NAME.c with
 * c/interprocess.c). /init mounts proc, sysfs and devtmpfs, loads the modules
 * in dependency order, runs the test's commands and powers off; QEMU runs
 * with -no-reboot, so the power-off (or a panic) ends the QEMU process.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { CpioWriter, initramfsBase, readGuestManifest } from 'interprocess/qemu';
import { root, run, tempDir } from '../helpers.js';

export const qemuDir = join(root, 'build', 'qemu');
const manifestPath = join(qemuDir, 'manifest');
const kernelPath = join(qemuDir, 'vmlinuz');
const busyboxPath = '/bin/busybox';
const qemuBinary = 'qemu-system-x86_64';

// ---- Availability --------------------------------------------------------------

export interface QemuAvailability {
  ok: boolean;
  /** Why the guests cannot boot ('' when ok). */
  reason: string;
  /**
   * True when nothing stops scripts/qemu-assets.sh from installing what is
   * missing (root, apt-get, and it recorded no failure): then a missing piece
   * is an error in the setup, and requireQemu fails instead of skipping.
   */
  installable: boolean;
}

function onPath(cmd: string): boolean {
  return (process.env.PATH ?? '').split(':').some((d) => d !== '' && existsSync(join(d, cmd)));
}

function readManifest(): { version: string; modules: string[] } | undefined {
  return readGuestManifest(manifestPath);
}

let availability: QemuAvailability | undefined;

/** Whether QEMU, the kernel, its modules, busybox and a static C toolchain are there. */
export function qemuAvailable(): QemuAvailability {
  if (availability) return availability;
  const missing: string[] = [];
  if (!onPath(qemuBinary)) missing.push(`${qemuBinary} (Debian package qemu-system-x86)`);
  if (!existsSync(busyboxPath)) missing.push(`${busyboxPath} (Debian package busybox-static)`);
  const manifest = readManifest();
  if (!existsSync(kernelPath) || !manifest) missing.push('the guest kernel in build/qemu (vmlinuz and manifest)');
  else for (const m of manifest.modules) if (!existsSync(join(qemuDir, 'modules', `${m}.ko`))) missing.push(`build/qemu/modules/${m}.ko`);
  if (!onPath('cc')) missing.push('a C compiler (cc)');
  if (missing.length === 0) return (availability = { ok: true, reason: '', installable: true });

  const recorded = existsSync(join(qemuDir, 'unavailable')) ? readFileSync(join(qemuDir, 'unavailable'), 'utf8').trim() : '';
  const isRoot = process.getuid?.() === 0;
  const installable = recorded === '' && isRoot && onPath('apt-get') && process.env.INTERPROCESS_QEMU !== 'skip';
  let reason = `QEMU guests unavailable: missing ${missing.join(', ')}`;
  if (recorded) reason += `; scripts/qemu-assets.sh said: ${recorded}`;
  else if (process.env.INTERPROCESS_QEMU === 'skip') reason += '; INTERPROCESS_QEMU=skip';
  else if (!isRoot) reason += '; not root, so scripts/qemu-assets.sh cannot install them';
  else if (!onPath('apt-get')) reason += '; no apt-get to install them with';
  else reason += '; run `bash scripts/qemu-assets.sh` (npm test does it in pretest)';
  return (availability = { ok: false, reason, installable });
}

/**
 * True when guests can boot. Otherwise skips the test with the reason and
 * returns false, except where QEMU could have been installed (root with
 * apt-get, and the assets script recorded no failure): there a missing piece
 * means the setup step was not run, and the test fails with the reason
 * rather than passing as skipped.
 */
export function requireQemu(t: TestContext): boolean {
  const a = qemuAvailable();
  if (a.ok) return true;
  if (a.installable) throw new Error(a.reason);
  t.skip(a.reason);
  return false;
}

// ---- Initramfs --------------------------------------------------------------
// The newc cpio writer and the busybox base are the library's
// (src/qemu/initramfs.ts); what is test-only here is the cache of the base,
// the guest programs and the /init prologue.

/** Writes `data` to `path` through a temporary name, so concurrent readers never see half a file. */
function writeAtomic(path: string, data: Buffer | string): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, data);
  renameSync(tmp, path);
}

/**
 * The cached part of every initramfs: directories, /dev/console, static
 * busybox with a link per applet in /bin, and the kernel modules in
 * /lib/modules. Rebuilt when busybox, the manifest or the modules change.
 */
function baseArchive(): Buffer {
  const manifest = readManifest();
  if (!manifest) throw new Error('build/qemu/manifest is missing: run scripts/qemu-assets.sh');
  const moduleFiles = manifest.modules.map((m) => join(qemuDir, 'modules', `${m}.ko`));
  const key = createHash('sha256')
    .update('base-v1\n')
    .update(readFileSync(manifestPath))
    .update([busyboxPath, ...moduleFiles].map((f) => `${f}:${statSync(f).size}:${statSync(f).mtimeMs}`).join('\n'))
    .digest('hex')
    .slice(0, 16);
  const cached = join(qemuDir, `base-${key}.cpio`);
  if (existsSync(cached)) return readFileSync(cached);

  const data = initramfsBase({ busybox: busyboxPath, modules: moduleFiles });
  for (const old of readdirSync(qemuDir)) if (/^base-[0-9a-f]+\.cpio$/.test(old) && old !== `base-${key}.cpio`) rmSync(join(qemuDir, old), { force: true });
  writeAtomic(cached, data);
  return data;
}


const guestSrcDir = join(root, 'guest'); // the guest programs the package ships
const guestBinDir = join(qemuDir, 'guest');

/**
 * Compiles guest/NAME.c statically (with c/interprocess.c, so guest
 * programs can use the package's C side) into build/qemu/guest/NAME, again
 * whenever the source or the package's C files change. Returns its path.
 */
export async function compileGuestProgram(name: string): Promise<string> {
  const src = join(guestSrcDir, `${name}.c`);
  const out = join(guestBinDir, name);
  const inputs = [src, join(root, 'include', 'interprocess.h'), join(root, 'c', 'interprocess.c'), ...readdirSync(guestSrcDir).filter((f) => f.endsWith('.h')).map((f) => join(guestSrcDir, f))];
  const newest = Math.max(...inputs.map((f) => statSync(f).mtimeMs));
  if (existsSync(out) && statSync(out).mtimeMs >= newest) return out;
  mkdirSync(guestBinDir, { recursive: true });
  const tmp = `${out}.${process.pid}.tmp`;
  const r = await run('cc', ['-static', '-O2', '-Wall', '-Werror', '-std=gnu11', '-I', join(root, 'include'), '-o', tmp, src, join(root, 'c', 'interprocess.c'), '-lpthread']);
  if (r.code !== 0) throw new Error(`compiling guest/${name}.c (static) failed:\n${r.stderr}`);
  renameSync(tmp, out);
  return out;
}

export interface InitramfsOptions {
  /**
   * Shell commands (busybox sh) run by /init after the set-up, as root, with
   * the console (ttyS0) as standard input, output and error. The guest powers
   * off when they finish. Defined for them: `virtio_port NAME`, which waits up
   * to 5 s for the virtio-serial port NAME and prints its /dev path (udev's
   * /dev/virtio-ports/NAME links are made too, for the ports present by then).
   */
  init: string;
  /** Programs compiled from guest/NAME.c, installed as /bin/NAME. */
  programs?: string[];
  /** More files: guest path -> content (mode 0644) or { data, mode }. */
  files?: Record<string, string | Buffer | { data: string | Buffer; mode: number }>;
  /** Modules to load, in this order (default: all of the manifest's, in its order). */
  modules?: string[];
}

/** Builds an initramfs for one test in a temporary directory removed after the test; returns its path. */
export async function buildInitramfs(t: TestContext | undefined, options: InitramfsOptions): Promise<string> {
  const manifest = readManifest();
  if (!manifest) throw new Error('build/qemu/manifest is missing: run scripts/qemu-assets.sh');
  const modules = options.modules ?? manifest.modules;
  for (const m of modules) if (!manifest.modules.includes(m)) throw new Error(`module ${m} is not in build/qemu/manifest`);
  const programs = await Promise.all((options.programs ?? []).map(async (p) => [p, readFileSync(await compileGuestProgram(p))] as const));

  const a = new CpioWriter();
  a.file('init', initScript(modules, options.init), 0o755);
  for (const [name, data] of programs) a.file(`bin/${name}`, data, 0o755);
  for (const [path, f] of Object.entries(options.files ?? {})) {
    if (typeof f === 'string' || Buffer.isBuffer(f)) a.file(path, f);
    else a.file(path, f.data, f.mode);
  }
  const { dir, cleanup } = tempDir('qemu-initrd');
  t?.after(cleanup);
  const path = join(dir, 'initrd.cpio');
  writeFileSync(path, Buffer.concat([baseArchive(), a.finish()]));
  return path;
}

function initScript(modules: string[], commands: string): string {
  return `#!/bin/sh
export PATH=/bin HOME=/ TERM=dumb
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
for m in ${modules.join(' ')}; do
  insmod /lib/modules/$m.ko || echo "ipx-init: insmod $m failed"
done

# udev's /dev/virtio-ports/NAME links. A port's name arrives from QEMU after
# the device is probed, so wait for the one asked for.
virtio_port() {
  local i=0 p
  while [ $i -lt 500 ]; do
    for p in /sys/class/virtio-ports/*; do
      if [ -r "$p/name" ] && [ "$(cat "$p/name")" = "$1" ] && [ -e "/dev/\${p##*/}" ]; then
        mkdir -p /dev/virtio-ports
        ln -sf "/dev/\${p##*/}" "/dev/virtio-ports/$1"
        echo "/dev/\${p##*/}"
        return 0
      fi
    done
    i=$((i + 1))
    usleep 10000
  done
  echo "ipx-init: no virtio port named $1" >&2
  return 1
}

echo "ipx-init: up $(cut -d' ' -f1 /proc/uptime)s"
(
${commands}
)
echo "ipx-init: done rc=$? $(cut -d' ' -f1 /proc/uptime)s"
poweroff -f
`;
}

// ---- Booting ----------------------------------------------------------------

export interface BootOptions {
  initrd: string;
  /** More QEMU arguments (devices, chardevs). The console is the first -serial, so a `-serial` here is ttyS1. */
  extraArgs?: string[];
  /** Appended to the kernel command line `console=ttyS0 panic=-1 quiet`. */
  append?: string;
  /** Host-side kill timer: SIGKILL after this long (default 30 s). */
  timeoutMs?: number;
}

export interface GuestExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** True when the host-side timer killed QEMU. */
  timedOut: boolean;
  /** Milliseconds from spawn to exit. */
  ms: number;
  /** QEMU's own standard error. */
  stderr: string;
}

export interface Guest {
  child: ChildProcess;
  /** The file the guest's console (ttyS0) is written to. */
  consolePath: string;
  /** The console output so far. */
  console(): string;
  /** Resolves with the first console line matching `pattern`; rejects if QEMU exits first or after `ms`. */
  waitForConsole(pattern: RegExp, ms?: number): Promise<string>;
  /** Resolves when QEMU has exited (never rejects). */
  exited: Promise<GuestExit>;
  /** performance.now() when QEMU was spawned. */
  startedAt: number;
  /** SIGKILLs QEMU if it is still running. */
  kill(signal?: NodeJS.Signals): void;
  /** Console and stderr tails, for assertion messages. */
  describe(): string;
}

/**
 * Starts QEMU (TCG, q35, no default devices, no display, no reboot, 256 MB)
 * on the cloud kernel and `initrd`, console on ttyS0 into a file. With `t`,
 * QEMU is killed and its files removed after the test.
 */
export function bootGuest(t: TestContext | undefined, options: BootOptions): Guest {
  const { dir, cleanup } = tempDir('qemu-guest');
  const consolePath = join(dir, 'console.log');
  const args = [
    '-accel', 'tcg', '-M', 'q35', '-nodefaults', '-display', 'none', '-no-reboot', '-m', '256',
    '-kernel', kernelPath,
    '-initrd', options.initrd,
    '-append', ['console=ttyS0 panic=-1 quiet', options.append ?? ''].join(' ').trim(),
    '-serial', `file:${consolePath}`,
    ...(options.extraArgs ?? []),
  ];
  const startedAt = performance.now();
  const child = spawn(qemuBinary, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, options.timeoutMs ?? 30_000);
  const exited = new Promise<GuestExit>((resolve) => {
    const done = (code: number | null, signal: NodeJS.Signals | null): void => {
      clearTimeout(timer);
      resolve({ code, signal, timedOut, ms: performance.now() - startedAt, stderr });
    };
    child.on('error', (err) => {
      stderr += String(err);
      done(null, null);
    });
    child.on('close', done);
  });
  let running = true;
  void exited.then(() => (running = false));

  const readConsole = (): string => {
    try {
      return readFileSync(consolePath, 'utf8');
    } catch {
      return '';
    }
  };
  const guest: Guest = {
    child,
    consolePath,
    console: readConsole,
    exited,
    startedAt,
    kill(signal = 'SIGKILL') {
      if (running) child.kill(signal);
    },
    describe() {
      const tail = (s: string): string => s.split('\n').slice(-25).join('\n');
      return `--- guest console (tail) ---\n${tail(readConsole())}\n--- qemu stderr ---\n${tail(stderr)}\n---`;
    },
    async waitForConsole(pattern, ms = 20_000) {
      const deadline = performance.now() + ms;
      for (;;) {
        // Whole lines only: the console file may end in the middle of a line still being written.
        const lines = readConsole().split('\n');
        if (running) lines.pop();
        const line = lines.find((l) => pattern.test(l));
        if (line !== undefined) return line;
        if (!running) throw new Error(`QEMU exited before the console showed ${pattern}\n${guest.describe()}`);
        if (performance.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${pattern} on the console\n${guest.describe()}`);
        await new Promise((r) => setTimeout(r, 10));
      }
    },
  };
  t?.after(async () => {
    if (running) {
      child.kill('SIGKILL');
      await exited;
    }
    cleanup();
  });
  return guest;
}
