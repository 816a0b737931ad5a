// `pihub boot`: run an image in QEMU (qemu-system-aarch64, or qemu-system-arm for armhf) with its own kernel and initrd, on a
// copy-on-write overlay, so the image file itself is never modified.
import { closeSync, createWriteStream, existsSync, mkdirSync, openSync, readFileSync, readSync, rmSync, statSync, writeFileSync, linkSync, copyFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { basename, dirname, join } from 'node:path';
import { UserError } from '../core/errors.ts';
import { readManifest, type ManifestRead } from '../image/manifest.ts';
import { spawnProcess, type Runner, type LogSink } from '../core/exec.ts';
import { verifyHostTools } from '../chroot/host.ts';
import { FAT_TYPES, PI_BOARD_MODELS, VIRT_SYSTEMS, type PiBoardModel, boardDeviceTree, isPiBoard, type BootArchitecture, type PiBoardMachine, type QemuMachine, parseConfigTxt, parseMbr, powerOfTwoAtLeast, qemuCommand, type Forward, type LanService } from './qemu.ts';
import { COMPRESSORS, compressionOf, imageBase } from '../image/naming.ts';
import { verifyOwnFolder } from '../core/files.ts';

export interface BootOptions {
  image: string;
  forwards: Forward[];
  memoryMiB: number;
  cpus: number;
  diskSize: string;
  machine: QemuMachine;
  /** The image's architecture, from its manifest (default arm64). */
  architecture?: BootArchitecture;
  /** Files to put on the boot partition of this boot's copy of the card (never on the image). */
  bootFiles: BootFile[];
  /** A host tap device for a second network card. */
  tap?: string;
  /** Disk files plugged in as USB drives (used in place: what the guest writes stays). */
  usbDrives?: string[];
  /** Machines on the card's network, each connection served by a command here (a NAS in a test). */
  lanServices?: LanService[];
  serialLog?: string;
  /** Print the console on stdout (default when no --serial-log). */
  console: boolean;
  workDir: string;
  keep: boolean;
  extraAppend: string;
  /** A card on a network without internet (forwarded ports still work). */
  offline?: boolean;
  runner: Runner;
  log: LogSink;
  signal: AbortSignal;
  stdin: NodeJS.ReadStream;
  stdout: NodeJS.WriteStream;
  note: (line: string) => void;
}

export interface BootFile {
  /** The file on this machine. */
  source: string;
  /** Its name on the FAT partition. */
  name: string;
}

/** `FILE` or `FILE:NAME` (NAME on the boot partition; default: FILE's own name). */
export function parseBootFile(spec: string): BootFile {
  const m = /^(.+?)(?::([^:/\\]+))?$/.exec(spec);
  const source = m?.[1] ?? spec;
  const name = m?.[2] ?? basename(source);
  if (!/^[A-Za-z0-9._-]+$/.test(name) || /^\.+$/.test(name)) {
    throw new Error(`--boot-file ${spec}: \`${name}\` is not a plain file name for the boot partition (letters, digits, . _ -)`);
  }
  return { source, name };
}

/** The manifest written beside an image (its hub port, its architecture), if it has a sound one. */
export function manifestFor(image: string): ManifestRead | undefined {
  // Only a plain file: a FIFO beside the image would block the read.
  return readManifest(`${imageBase(image)}.json`);
}

/** A raw image to boot from: the image itself, or a decompressed copy kept in the work dir. */
async function rawImage(o: BootOptions): Promise<string> {
  const decompress = COMPRESSORS[compressionOf(o.image) ?? 'none'].decompress;
  if (!decompress) return o.image;
  const st = statSync(o.image);
  const out = join(o.workDir, `${basename(imageBase(o.image))}.img`);
  const stamp = `${out}.source`;
  const want = `${o.image} ${st.size} ${st.mtimeMs}`;
  if (existsSync(out) && existsSync(stamp) && readFileSync(stamp, 'utf8') === want) return out;
  o.note(`decompressing ${basename(o.image)} into ${o.workDir}`);
  rmSync(stamp, { force: true });
  const tmp = `${out}.partial`;
  await o.runner.run(decompress(o.image), { stdoutFile: tmp, step: 'decompress the image' });
  rmSync(out, { force: true });
  linkOrCopy(tmp, out);
  rmSync(tmp, { force: true });
  writeFileSync(stamp, want);
  return out;
}

function linkOrCopy(from: string, to: string): void {
  try {
    linkSync(from, to);
  } catch {
    copyFileSync(from, to);
  }
}

function readSector(path: string): Buffer {
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.alloc(512);
    readSync(fd, buf, 0, 512, 0);
    return buf;
  } finally {
    closeSync(fd);
  }
}

/** Copy the kernel and initrd out of the FAT partition with mtools: no mount, no loop device. */
async function extractBootFiles(o: BootOptions, raw: string, dest: string): Promise<{ kernel: string; initrd: string; dtb?: string; cmdline?: string }> {
  const parts = parseMbr(readSector(raw));
  const fat = parts.find((p) => FAT_TYPES.has(p.type));
  if (!fat) throw new UserError(`${o.image}: no FAT boot partition found in its partition table`);
  const img = `${raw}@@${fat.offset}`;
  const env = { MTOOLS_SKIP_CHECK: '1' };
  const listing = await o.runner.run(['mdir', ['-b', '-i', img, '::']], { capture: true, env, step: 'read the boot partition' });
  const files = listing.stdout.split('\n').map((l) => l.trim().replace(/^::\/?/, '')).filter(Boolean);
  if (isPiBoard(o.machine)) return piBootFiles(o, o.machine, img, files, dest);
  const pick = (prefix: string) => files.filter((f) => f.startsWith(prefix)).sort().pop();
  const kernelName = pick('vmlinuz-');
  const initrdName = pick('initrd.img-');
  if (!kernelName || !initrdName) {
    throw new UserError(`${o.image}: the boot partition has no vmlinuz-*/initrd.img-* (found: ${files.slice(0, 12).join(', ')})`);
  }
  const kernel = join(dest, kernelName);
  const initrd = join(dest, initrdName);
  await o.runner.run(['mcopy', ['-n', '-i', img, `::${kernelName}`, `::${initrdName}`, dest]], { env, step: 'copy the kernel and initrd' });
  let cmdline: string | undefined;
  if (files.includes('cmdline.txt')) {
    cmdline = (await o.runner.run(['mtype', ['-i', img, '::cmdline.txt']], { capture: true, env, step: 'read cmdline.txt' })).stdout.trim();
  }
  return { kernel, initrd, cmdline };
}

/** What the board's firmware would load: config.txt's kernel and initramfs, the board's device tree, cmdline.txt. */
async function piBootFiles(o: BootOptions, machine: PiBoardMachine, img: string, files: string[], dest: string): Promise<{ kernel: string; initrd: string; dtb: string; cmdline: string }> {
  const board = PI_BOARD_MODELS[machine];
  const env = { MTOOLS_SKIP_CHECK: '1' };
  const read = async (name: string) => (await o.runner.run(['mtype', ['-i', img, `::${name}`]], { capture: true, env, step: `read ${name}` })).stdout;
  if (!files.includes('config.txt')) throw new UserError(`${o.image}: the boot partition has no config.txt, so a Pi would not boot it`);
  const config = parseConfigTxt(await read('config.txt'), [board.filter]);
  const dtbName = boardDeviceTree(config, machine);
  const missing = [
    ...(config.arm64 ? [] : [`\`arm_64bit=1\` (a ${board.title} starts in 32-bit mode without it)`]),
    ...(config.kernel ? [] : ['a `kernel=` line']),
    ...(config.initramfs ? [] : ['an `initramfs` line']),
  ];
  if (missing.length) throw new UserError(`${o.image}: config.txt lacks ${missing.join(', ')}`);
  for (const f of [config.kernel!, config.initramfs!, dtbName, config.cmdlineFile]) {
    if (!files.includes(f)) throw new UserError(`${o.image}: config.txt names ${f}, which is not on the boot partition`);
  }
  if (!config.enableUart) o.note(`config.txt has no enable_uart=1: a real ${board.title} would print nothing on its serial console`);
  for (const line of config.unapplied) o.note(`config.txt: \`${line}\` is applied by the Pi's firmware, not by QEMU`);
  await o.runner.run(['mcopy', ['-n', '-i', img, `::${config.kernel}`, `::${config.initramfs}`, `::${dtbName}`, dest]], { env, step: 'copy the kernel, initramfs and device tree' });
  o.note(`${board.title}: ${config.kernel}, ${config.initramfs}, ${dtbName} and ${config.cmdlineFile}, as config.txt says`);
  const dtb = join(dest, dtbName);
  const edits: PiBoardModel['dtbEdits'] = board.dtbEdits;
  for (const e of edits) await o.runner.run(['fdtput', [...e.options, dtb, ...e.args]], { step: `change ${dtbName} for QEMU's ${machine}` });
  if (edits.length) o.note(`${dtbName}: ${edits.length} changes for what QEMU's ${machine} does not model (the card's copy is unchanged; docs/boards.md)`);
  return { kernel: join(dest, config.kernel!), initrd: join(dest, config.initramfs!), dtb, cmdline: await read(config.cmdlineFile) };
}

/** `8G`, `512M`, `1T` or bytes. */
export function parseSize(size: string): number {
  const m = /^(\d+)([KMGT]?)$/.exec(size);
  if (!m) throw new UserError(`disk size ${size}: expected a size such as 8G`);
  return Number(m[1]) * 1024 ** ' KMGT'.indexOf(m[2] || ' ');
}

function qmp(socket: string, commands: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const conn = createConnection(socket);
    let sent = false;
    conn.setEncoding('utf8');
    conn.on('data', () => {
      if (sent) return;
      sent = true;
      for (const c of ['qmp_capabilities', ...commands]) conn.write(`${JSON.stringify({ execute: c })}\n`);
      setTimeout(() => {
        conn.end();
        resolve();
      }, 500);
    });
    conn.on('error', reject);
  });
}

export async function boot(o: BootOptions): Promise<number> {
  const tool = COMPRESSORS[compressionOf(o.image) ?? 'none'].tool;
  const system = isPiBoard(o.machine) ? 'qemu-system-aarch64' : VIRT_SYSTEMS[o.architecture ?? 'arm64'].binary;
  const dtbTools = isPiBoard(o.machine) && PI_BOARD_MODELS[o.machine].dtbEdits.length ? ['fdtput'] : [];
  verifyHostTools([system, 'qemu-img', 'mdir', 'mcopy', 'mtype', ...dtbTools, ...(tool ? [tool] : [])]);
  if (!existsSync(o.image)) throw new UserError(`image ${o.image} does not exist; build one with \`pihub build\``);
  for (const f of o.bootFiles) {
    if (!existsSync(f.source) || !statSync(f.source).isFile()) throw new UserError(`${f.source} (for ${f.name} on the boot partition) is not a file`);
  }
  verifyOwnFolder(o.workDir, '--work-dir');
  const raw = await rawImage(o);
  const runDir = join(o.workDir, `run-${process.pid}`);
  rmSync(runDir, { recursive: true, force: true });
  mkdirSync(runDir, { recursive: true });
  const cleanup = () => {
    if (!o.keep) rmSync(runDir, { recursive: true, force: true });
  };
  try {
    let base = raw;
    if (o.bootFiles.length) {
      // As if written onto a freshly flashed card: a sparse copy of the image gets the files.
      base = join(runDir, 'card.img');
      await o.runner.run(['cp', ['--sparse=always', raw, base]], { step: 'copy the image for the boot files' });
      const fat = parseMbr(readSector(base)).find((p) => FAT_TYPES.has(p.type));
      if (!fat) throw new UserError(`${o.image}: no FAT boot partition found in its partition table`);
      for (const f of o.bootFiles) {
        await o.runner.run(['mcopy', ['-o', '-i', `${base}@@${fat.offset}`, f.source, `::${f.name}`]], {
          env: { MTOOLS_SKIP_CHECK: '1' },
          step: `write ${f.name} onto the boot partition`,
        });
        o.note(`${f.name} from ${f.source} is on this boot's card (the image is unchanged)`);
      }
    }
    const files = await extractBootFiles(o, base, runDir);
    const disk = join(runDir, 'disk.qcow2');
    // The SD card model of the boards takes only power-of-two sizes; a copy-on-write disk can have any.
    const diskSize = isPiBoard(o.machine) ? String(powerOfTwoAtLeast(Math.max(parseSize(o.diskSize), statSync(base).size))) : o.diskSize;
    await o.runner.run(['qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'raw', '-b', base, disk, diskSize]], { step: 'create the copy-on-write disk' });
    const qmpSocket = join(runDir, 'qmp.sock');
    const command = qemuCommand({
      machine: o.machine,
      architecture: o.architecture,
      kernel: files.kernel,
      initrd: files.initrd,
      dtb: files.dtb,
      disk,
      diskFormat: 'qcow2',
      cmdline: files.cmdline,
      memoryMiB: o.memoryMiB,
      cpus: o.cpus,
      forwards: o.forwards,
      qmpSocket,
      extraAppend: o.extraAppend,
      offline: o.offline,
      tap: o.tap,
      usbDrives: o.usbDrives,
      lanServices: o.lanServices,
    });
    for (const f of o.usbDrives ?? []) o.note(`${f} is plugged in as a USB drive (the guest writes to it)`);
    for (const l of o.lanServices ?? []) o.note(`the card reaches ${l.address}:${l.port}: each connection runs ${l.command}`);
    for (const f of o.forwards) o.note(`forwarding ${f.address}:${f.hostPort} → guest port ${f.guestPort}`);
    const size = isPiBoard(o.machine) ? PI_BOARD_MODELS[o.machine] : { memoryMiB: o.memoryMiB, cpus: o.cpus };
    o.note(`booting ${basename(o.image)} (${o.machine}, ${size.memoryMiB} MiB, ${size.cpus} CPUs); Ctrl-C shuts the guest down cleanly`);
    const child = spawnProcess(command, o.log);
    const serial = o.serialLog ? (mkdirSync(dirname(o.serialLog), { recursive: true }), createWriteStream(o.serialLog)) : undefined;
    child.stdout?.on('data', (d: Buffer) => {
      serial?.write(d);
      if (o.console) o.stdout.write(d);
    });
    child.stderr?.on('data', (d: Buffer) => o.log.write(d.toString()));

    let stopping = false;
    const shutdown = () => {
      if (stopping) {
        o.note('forcing QEMU to stop');
        child.kill('SIGKILL');
        return;
      }
      stopping = true;
      o.note('shutting the guest down (system_powerdown); press Ctrl-C again to force');
      qmp(qmpSocket, ['system_powerdown']).catch(() => child.kill('SIGTERM'));
      setTimeout(() => child.kill('SIGTERM'), 90_000).unref();
    };
    o.signal.addEventListener('abort', shutdown);
    const tty = o.stdin.isTTY === true && o.console;
    const onInput = (d: Buffer) => {
      if (tty && d.includes(0x03)) return shutdown();
      child.stdin?.write(d);
    };
    if (tty) o.stdin.setRawMode(true);
    o.stdin.on('data', onInput);
    o.stdin.resume();
    const code = await child.exited;
    o.stdin.off('data', onInput);
    if (tty) o.stdin.setRawMode(false);
    o.stdin.pause();
    o.signal.removeEventListener('abort', shutdown);
    await new Promise<void>((r) => (serial ? serial.end(r) : r()));
    o.note(`QEMU exited (${code})`);
    return stopping ? 0 : code;
  } finally {
    cleanup();
  }
}
