// `pihub boot IMAGE [options]`
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse } from '../core/args.ts';
import { DEFAULTS } from '../config/schema.ts';
import { InputError } from '../core/errors.ts';
import { checkRegularFile, FileProblem } from '../core/files.ts';
import { createRunner } from '../core/exec.ts';
import { BuildLog } from '../core/progress.ts';
import { boot, manifestFor, parseBootFile, type BootFile } from './boot.ts';
import { LAN_NETWORK, PI_BOARD_MODELS, QEMU_MACHINES, bootArchitecture, isPiBoard, parseForward, type BootArchitecture, type Forward, type LanService, type QemuMachine } from './qemu.ts';

export const BOOT_HELP = `Usage: pihub boot IMAGE [options]

Boots an image (.img, .img.xz, .img.zst or .img.gz) in QEMU with the image's own kernel and
initrd: qemu-system-aarch64, or for an armhf image (as its .json manifest says)
qemu-system-arm with a Cortex-A15. The kernel command line is the card's cmdline.txt (on virt
its console= and root= replaced by QEMU's; the board models use it as it is). The image file is never
modified: the guest writes to a copy-on-write disk that is thrown away afterwards. The serial
console is on this terminal; Ctrl-C shuts the guest down cleanly (twice: at once).

Options:
  -f, --forward [ADDR:]HOST:GUEST  forward a TCP port (repeatable); default: the hub port
                                   from the image's .json manifest (${DEFAULTS.hub.port}), e.g. 8000:8000.
                                   Add 2222:22 for SSH. ADDR defaults to 127.0.0.1
      --memory MIB                 guest memory (default 2048)
      --cpus N                     guest CPUs (default 2)
      --disk-size SIZE             size of the guest's disk, which the first boot grows
                                   the root file system to fill (default 8G)
      --machine virt|raspi3b|raspi4b
                                   QEMU machine: virt (default), or a board model for arm64
                                   images: raspi3b, the Pi 3 B (1024 MiB, 4 CPUs), or raspi4b,
                                   the Pi 4 B (2048 MiB of which the guest sees 960, 4 CPUs):
                                   the card's config.txt, device tree (raspi4b: without what
                                   QEMU does not model) and cmdline.txt, a serial console,
                                   USB networking; several times slower than virt
      --userconf FILE              boot as if FILE had been put on the card as userconf.txt
                                   (lines NAME:HASH; the accounts are made at first boot)
      --boot-file FILE[:NAME]      put FILE on this boot's copy of the card's boot partition
                                   as NAME (default: its own name), as you would on the SD
                                   card: Raspberry Pi Imager's user-data, network-config,
                                   meta-data, a changed cmdline.txt (repeatable)
      --usb-drive FILE             plug FILE in as a USB drive (a disk image, raw unless
                                   .qcow2; repeatable): the guest writes to FILE itself, as
                                   to a real drive, e.g. a backup drive (docs/backup.md)
      --lan-service ADDRESS:PORT=COMMAND
                                   a machine on the card's network: each connection the
                                   guest makes to ADDRESS:PORT (10.0.2.100 to .254) runs
                                   COMMAND here, its input and output the connection (also
                                   with --offline), e.g. a NAS's SFTP server:
                                   10.0.2.100:22='/usr/sbin/sshd -i -f nas/sshd_config'
      --tap DEVICE                 a second network card on the host's tap DEVICE (made
                                   beforehand, e.g. ip tuntap add DEVICE mode tap), so the
                                   guest is on a network the host can see (mDNS, LAN tests)
      --serial-log FILE            also write the console to FILE
      --no-console                 do not print the console here (with --serial-log)
      --append TEXT                extra kernel command line arguments
      --offline                    a network without internet: the guest reaches neither the
                                   internet nor this machine (forwarded ports still work)
      --work-dir DIR               where decompressed images and the disk go (default: ./work/boot)
      --keep                       keep the copy-on-write disk afterwards
  -h, --help                       this text
`;

/** --lan-service ADDRESS:PORT=COMMAND, or bad input in one sentence. */
export function parseLanService(text: string): LanService {
  const m = /^([0-9.]+):(\d{1,5})=(.+)$/s.exec(text);
  const host = m ? LAN_NETWORK.exec(m[1]!) : null;
  const last = host ? Number(host[1]) : 0;
  const port = m ? Number(m[2]) : 0;
  if (!m || last < 100 || last > 254 || port < 1 || port > 65535 || !m[3]!.trim() || /[\n\r]/.test(m[3]!)) {
    throw new InputError(`--lan-service ${text}: expected ADDRESS:PORT=COMMAND with an address from 10.0.2.100 to 10.0.2.254 (QEMU's own network: .2, .3 and the guest's are taken), a port and a one-line command`);
  }
  return { address: m[1]!, port, command: m[3]!.trim() };
}

/** A file the user named: a regular file, or bad input in one sentence (a FIFO would hang, a folder or device make no sense). */
function inputFile(path: string, what: string, hint: string): void {
  try {
    checkRegularFile(path);
  } catch (err) {
    if (err instanceof FileProblem) throw new InputError(`${what} ${err.reason}; ${hint}`);
    throw err;
  }
}

/** The console log's file: new, or a file (never a folder, FIFO or device). */
function serialLog(path: string): string {
  if (existsSync(path)) inputFile(path, `--serial-log ${path}`, 'give a file for the console output');
  return path;
}

export async function bootCommand(args: string[], signal: AbortSignal): Promise<number> {
  const { values, positionals } = parse(
    args,
    {
      forward: { type: 'string', short: 'f', multiple: true },
      memory: { type: 'string' },
      cpus: { type: 'string' },
      'disk-size': { type: 'string' },
      machine: { type: 'string' },
      userconf: { type: 'string' },
      'boot-file': { type: 'string', multiple: true },
      tap: { type: 'string' },
      'usb-drive': { type: 'string', multiple: true },
      'lan-service': { type: 'string', multiple: true },
      'serial-log': { type: 'string' },
      'no-console': { type: 'boolean' },
      append: { type: 'string' },
      offline: { type: 'boolean' },
      'work-dir': { type: 'string' },
      keep: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    BOOT_HELP,
  );
  if (values.help) {
    process.stdout.write(BOOT_HELP);
    return 0;
  }
  if (positionals.length !== 1) throw new InputError(`pihub boot needs exactly one image\n\n${BOOT_HELP}`);
  const image = resolve(positionals[0]!);
  inputFile(image, `image ${image}`, 'give an image file (.img, .img.xz, .img.zst or .img.gz; `pihub build` makes one)');
  const int = (v: string | undefined, dflt: number, name: string, min: number) => {
    if (v === undefined) return dflt;
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new InputError(`--${name} ${v}: expected a whole number of at least ${min}`);
    return n;
  };
  let forwards: Forward[];
  try {
    const port = manifestFor(image)?.hub?.port ?? DEFAULTS.hub.port;
    forwards = (values.forward ?? [`${port}:${port}`]).map(parseForward);
  } catch (err) {
    throw new InputError((err as Error).message);
  }
  const machine = (values.machine ?? 'virt') as QemuMachine;
  if (!QEMU_MACHINES.includes(machine)) throw new InputError(`--machine ${machine}: expected ${QEMU_MACHINES.join(', ').replace(/, ([^,]+)$/, ' or $1')}`);
  let architecture: BootArchitecture;
  try {
    architecture = bootArchitecture(manifestFor(image)?.architecture);
  } catch (err) {
    throw new InputError(`${image}: ${(err as Error).message}`);
  }
  if (isPiBoard(machine) && architecture !== 'arm64') {
    throw new InputError(`--machine ${machine} boots 64-bit (arm64) images; this ${architecture} image boots in virt (the default)`);
  }
  if (isPiBoard(machine) && (values.memory !== undefined || values.cpus !== undefined)) {
    const board = PI_BOARD_MODELS[machine];
    throw new InputError(`--memory and --cpus do not apply to --machine ${machine}: the ${board.title} board has ${board.memoryMiB} MiB and ${board.cpus} cores`);
  }
  const diskSize = values['disk-size'] ?? '8G';
  if (!/^\d+[KMGT]?$/.test(diskSize)) throw new InputError(`--disk-size ${diskSize}: expected a size such as 8G`);
  let bootFiles: BootFile[];
  try {
    bootFiles = (values['boot-file'] ?? []).map(parseBootFile);
  } catch (err) {
    throw new InputError((err as Error).message);
  }
  bootFiles = bootFiles.map((f) => ({ ...f, source: resolve(f.source) }));
  for (const f of bootFiles) inputFile(f.source, `--boot-file ${f.source}`, `give a file to put on the card's boot partition as ${f.name}`);
  if (values.userconf) {
    const source = resolve(values.userconf);
    inputFile(source, `--userconf ${source}`, 'give a userconf.txt file (lines NAME:HASH)');
    bootFiles.push({ source, name: 'userconf.txt' });
  }
  if (values.tap !== undefined && (machine !== 'virt' || !/^[A-Za-z0-9_.-]{1,15}$/.test(values.tap))) {
    throw new InputError(`--tap ${values.tap}: expected a network device name (at most 15 letters, digits, . _ -) with --machine virt`);
  }
  const usbDrives = (values['usb-drive'] ?? []).map((f) => resolve(f));
  for (const f of usbDrives) inputFile(f, `--usb-drive ${f}`, 'give a disk image file for the USB drive (e.g. truncate -s 2G drive.img, then mkfs.ext4 -L PIHUB-BACKUP drive.img)');
  if (new Set(usbDrives).size !== usbDrives.length) throw new InputError('--usb-drive: each drive file can be plugged in once');
  const lanServices = (values['lan-service'] ?? []).map(parseLanService);
  if (new Set(lanServices.map((l) => `${l.address}:${l.port}`)).size !== lanServices.length) throw new InputError('--lan-service: each ADDRESS:PORT can be served once');
  const log = new BuildLog(undefined);
  const note = (line: string) => process.stderr.write(`pihub: ${line}\n`);
  const code = await boot({
    image,
    forwards,
    memoryMiB: int(values.memory, 2048, 'memory', 256),
    cpus: int(values.cpus, 2, 'cpus', 1),
    diskSize,
    machine,
    architecture,
    bootFiles,
    tap: values.tap,
    usbDrives,
    lanServices,
    serialLog: values['serial-log'] ? serialLog(resolve(values['serial-log'])) : undefined,
    console: !values['no-console'],
    workDir: resolve(values['work-dir'] ?? 'work/boot'),
    keep: values.keep ?? false,
    extraAppend: values.append ?? '',
    offline: values.offline ?? false,
    runner: createRunner(log),
    log,
    signal,
    stdin: process.stdin,
    stdout: process.stdout,
    note,
  });
  return code;
}
