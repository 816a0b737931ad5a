// `pihub boot`: run an image in qemu-system-aarch64 with its own kernel and initrd, on a
// copy-on-write overlay, so the image file itself is never modified.
import { closeSync, createWriteStream, existsSync, mkdirSync, openSync, readFileSync, readSync, rmSync, statSync, writeFileSync, linkSync, copyFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { basename, dirname, join } from 'node:path';
import { UserError } from '../errors.ts';
import { spawnProcess, type Runner, type LogSink } from '../exec.ts';
import { verifyHostTools } from '../host.ts';
import { FAT_TYPES, parseMbr, qemuCommand, type Forward } from './qemu.ts';

export interface BootOptions {
  image: string;
  forwards: Forward[];
  memoryMiB: number;
  cpus: number;
  diskSize: string;
  machine: 'virt' | 'raspi3b';
  /** Files to put on the boot partition of this boot's copy of the card (never on the image). */
  bootFiles: BootFile[];
  /** A host tap device for a second network card. */
  tap?: string;
  serialLog?: string;
  /** Print the console on stdout (default when no --serial-log). */
  console: boolean;
  workDir: string;
  keep: boolean;
  extraAppend: string;
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

const DECOMPRESS: Record<string, (file: string) => [string, string[]]> = {
  '.xz': (f) => ['xz', ['--decompress', '--stdout', '--threads=0', f]],
  '.zst': (f) => ['zstd', ['--decompress', '--stdout', '-q', f]],
  '.gz': (f) => ['gzip', ['--decompress', '--stdout', f]],
};

/** The hub port an image was built with, from the manifest written beside it. */
export function manifestFor(image: string): { hub?: { port?: number } } | undefined {
  const base = image.replace(/\.img(\.(xz|zst|gz))?$/, '');
  try {
    return JSON.parse(readFileSync(`${base}.json`, 'utf8')) as { hub?: { port?: number } };
  } catch {
    return undefined;
  }
}

/** A raw image to boot from: the image itself, or a decompressed copy kept in the work dir. */
async function rawImage(o: BootOptions): Promise<string> {
  const ext = Object.keys(DECOMPRESS).find((e) => o.image.endsWith(e));
  if (!ext) return o.image;
  const st = statSync(o.image);
  const out = join(o.workDir, basename(o.image, ext));
  const stamp = `${out}.source`;
  const want = `${o.image} ${st.size} ${st.mtimeMs}`;
  if (existsSync(out) && existsSync(stamp) && readFileSync(stamp, 'utf8') === want) return out;
  o.note(`decompressing ${basename(o.image)} into ${o.workDir}`);
  rmSync(stamp, { force: true });
  const tmp = `${out}.partial`;
  await o.runner.run(DECOMPRESS[ext]!(o.image), { stdoutFile: tmp, step: 'decompress the image' });
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
  let dtb: string | undefined;
  if (o.machine === 'raspi3b') {
    const name = files.find((f) => f === 'bcm2710-rpi-3-b.dtb') ?? files.find((f) => f.startsWith('bcm2837-rpi-3-b'));
    if (name) {
      dtb = join(dest, name);
      await o.runner.run(['mcopy', ['-n', '-i', img, `::${name}`, dest]], { env, step: 'copy the device tree' });
    }
  }
  return { kernel, initrd, dtb, cmdline };
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
  verifyHostTools(['qemu-system-aarch64', 'qemu-img', 'mdir', 'mcopy', 'mtype', ...(o.image.match(/\.(xz|zst|gz)$/) ? [{ xz: 'xz', zst: 'zstd', gz: 'gzip' }[o.image.split('.').pop()!]!] : [])]);
  if (!existsSync(o.image)) throw new UserError(`image ${o.image} does not exist; build one with \`pihub build\``);
  for (const f of o.bootFiles) {
    if (!existsSync(f.source) || !statSync(f.source).isFile()) throw new UserError(`${f.source} (for ${f.name} on the boot partition) is not a file`);
  }
  mkdirSync(o.workDir, { recursive: true });
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
    let disk = join(runDir, 'disk.qcow2');
    let format: 'qcow2' | 'raw' = 'qcow2';
    if (o.machine === 'raspi3b') {
      // The SD card model needs a raw power-of-two size: boot a resized raw copy.
      disk = join(runDir, 'disk.img');
      await o.runner.run(['qemu-img', ['convert', '-O', 'raw', base, disk]], { step: 'copy the image' });
      const size = statSync(disk).size;
      let pow = 1;
      while (pow < size) pow *= 2;
      await o.runner.run(['qemu-img', ['resize', '-f', 'raw', disk, String(pow)]], { step: 'resize the SD card' });
      format = 'raw';
    } else {
      await o.runner.run(['qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'raw', '-b', base, disk, o.diskSize]], { step: 'create the copy-on-write disk' });
    }
    const qmpSocket = join(runDir, 'qmp.sock');
    const command = qemuCommand({
      machine: o.machine,
      kernel: files.kernel,
      initrd: files.initrd,
      dtb: files.dtb,
      disk,
      diskFormat: format,
      memoryMiB: o.memoryMiB,
      cpus: o.cpus,
      forwards: o.forwards,
      qmpSocket,
      extraAppend: o.extraAppend,
      cardCmdline: files.cmdline,
      tap: o.tap,
    });
    for (const f of o.forwards) o.note(`forwarding ${f.address}:${f.hostPort} → guest port ${f.guestPort}`);
    o.note(`booting ${basename(o.image)} (${o.machine}, ${o.memoryMiB} MiB); Ctrl-C shuts the guest down cleanly`);
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
