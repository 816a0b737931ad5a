// Pure parts of `pihub boot`: reading the partition table and building the QEMU command.
import type { Command } from '../core/exec.ts';
import { ROOT_LABEL } from '../image/layout.ts';

export interface MbrPartition {
  index: number;
  type: number;
  bootable: boolean;
  offset: number;
  size: number;
}

/** The primary partitions of an MBR (first 512 bytes of the image). */
export function parseMbr(sector: Buffer): MbrPartition[] {
  if (sector.length < 512 || sector[510] !== 0x55 || sector[511] !== 0xaa) {
    throw new Error('no MBR partition table (is this a Raspberry Pi SD-card image?)');
  }
  const out: MbrPartition[] = [];
  for (let i = 0; i < 4; i++) {
    const e = 446 + i * 16;
    const type = sector[e + 4]!;
    if (type === 0) continue;
    out.push({
      index: i + 1,
      type,
      bootable: sector[e] === 0x80,
      offset: sector.readUInt32LE(e + 8) * 512,
      size: sector.readUInt32LE(e + 12) * 512,
    });
  }
  return out;
}

export const FAT_TYPES = new Set([0x0b, 0x0c, 0x0e]);

export interface Forward {
  address: string;
  hostPort: number;
  guestPort: number;
}

/** `8000`, `8000:8000` or `0.0.0.0:8080:8000`; the host side listens on 127.0.0.1 unless told otherwise. */
export function parseForward(spec: string): Forward {
  const parts = spec.split(':');
  const nums = parts.slice(-2).map(Number);
  const ok = (n: number | undefined) => n !== undefined && Number.isInteger(n) && n >= 1 && n <= 65535;
  if (parts.length === 1 && ok(nums[0])) return { address: '127.0.0.1', hostPort: nums[0]!, guestPort: nums[0]! };
  if ((parts.length === 2 || parts.length === 3) && ok(nums[0]) && ok(nums[1])) {
    return { address: parts.length === 3 ? parts[0]! : '127.0.0.1', hostPort: nums[0]!, guestPort: nums[1]! };
  }
  throw new Error(`--forward ${spec}: expected HOST_PORT:GUEST_PORT (e.g. 8000:8000 or 2222:22), optionally ADDRESS:HOST_PORT:GUEST_PORT`);
}

/** The image's Debian architectures `pihub boot` runs, with QEMU's system emulator and virt CPU for each. */
export const VIRT_SYSTEMS = {
  arm64: { binary: 'qemu-system-aarch64', cpu: 'cortex-a72' },
  // ARMv7 with LPAE, which Debian's armmp-lpae kernel needs (a Pi 2's Cortex-A7 has it too).
  armhf: { binary: 'qemu-system-arm', cpu: 'cortex-a15' },
} as const;
export type BootArchitecture = keyof typeof VIRT_SYSTEMS;

export function bootArchitecture(architecture: unknown): BootArchitecture {
  if (architecture === undefined) return 'arm64';
  if (typeof architecture === 'string' && Object.hasOwn(VIRT_SYSTEMS, architecture)) return architecture as BootArchitecture;
  throw new Error(`the image is for ${String(architecture)}, which \`pihub boot\` cannot run (it boots ${Object.keys(VIRT_SYSTEMS).join(' and ')} images)`);
}

export interface QemuOptions {
  machine: 'virt' | 'raspi3b';
  /** The image's architecture (default arm64); raspi3b is a 64-bit board model. */
  architecture?: BootArchitecture;
  kernel: string;
  initrd: string;
  disk: string;
  diskFormat: 'qcow2' | 'raw';
  memoryMiB: number;
  cpus: number;
  forwards: readonly Forward[];
  qmpSocket: string;
  extraAppend: string;
  /** A host tap device for a second network card (a LAN segment the host can see). */
  tap?: string;
  dtb?: string;
  /** No route to the internet or this machine (QEMU's restrict=on); forwarded ports still work. */
  offline?: boolean;
  /** The card's cmdline.txt, which a Pi's firmware hands to the kernel. */
  cmdline?: string;
}

/** QEMU's Raspberry Pi 3 B model has the board's fixed RAM and four cores. */
export const RASPI3B = { memoryMiB: 1024, cpus: 4 } as const;

/** What the Pi's firmware reads from config.txt to start a Pi 3 in 64-bit mode. */
export interface PiBootConfig {
  kernel?: string;
  initramfs?: string;
  deviceTree?: string;
  cmdlineFile: string;
  arm64: boolean;
  enableUart: boolean;
  upstreamKernel: boolean;
  /** Lines that change the device tree (dtoverlay, dtparam): the firmware applies them, QEMU does not. */
  unapplied: string[];
}

/**
 * config.txt as the firmware of a Pi 3 B reads it: lines in `[all]` and `[pi3]` sections
 * apply, other conditional sections (`[pi4]`, `[pi3+]`, `[none]`, …) do not.
 */
export function parseConfigTxt(text: string): PiBootConfig {
  const c: PiBootConfig = { cmdlineFile: 'cmdline.txt', arm64: false, enableUart: false, upstreamKernel: false, unapplied: [] };
  let applies = true;
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*/, '').trim();
    if (!line) continue;
    const section = /^\[(.*)\]$/.exec(line);
    if (section) {
      applies = ['all', 'pi3'].includes(section[1]!.trim().toLowerCase());
      continue;
    }
    if (!applies) continue;
    const initramfs = /^initramfs\s+(\S+)/.exec(line);
    if (initramfs) {
      c.initramfs = initramfs[1];
      continue;
    }
    const eq = line.indexOf('=');
    if (eq < 0) continue;
    const key = line.slice(0, eq).trim();
    const value = line.slice(eq + 1).trim();
    if (key === 'kernel') c.kernel = value;
    else if (key === 'device_tree') c.deviceTree = value;
    else if (key === 'cmdline') c.cmdlineFile = value;
    else if (key === 'arm_64bit') c.arm64 = value === '1';
    else if (key === 'enable_uart') c.enableUart = value === '1';
    else if (key === 'upstream_kernel') c.upstreamKernel = value === '1';
    else if (key === 'dtoverlay' || key === 'dtparam') c.unapplied.push(line);
  }
  return c;
}

/** The device tree the firmware loads on a Pi 3 B: upstream kernels use the bcm2837 name. */
export function pi3DeviceTree(c: PiBootConfig): string {
  return c.deviceTree ?? (c.upstreamKernel ? 'bcm2837-rpi-3-b.dtb' : 'bcm2710-rpi-3-b.dtb');
}

/** Used when the card has no cmdline.txt. */
const DEFAULT_CARD_ARGS = 'rw fsck.repair=yes net.ifnames=1';

/**
 * The kernel command line. raspi3b boots with the card's cmdline.txt as it is, as a Pi does
 * (console on the GPIO UART). virt gets root and console for its own disk and UART, then the
 * card's cmdline.txt (including anything Raspberry Pi Imager appended) without its console=
 * and root= parameters, which name the Pi's UART and SD card.
 */
export function kernelCommandLine(o: Pick<QemuOptions, 'machine' | 'extraAppend' | 'cmdline'>): string {
  const extra = o.extraAppend ? ` ${o.extraAppend}` : '';
  if (o.machine === 'raspi3b') return `${(o.cmdline ?? '').replace(/\s+/g, ' ').trim()}${extra}`;
  const card = o.cmdline === undefined
    ? DEFAULT_CARD_ARGS
    : o.cmdline.split(/\s+/).filter((x) => x && !/^(console|root)=/.test(x)).join(' ');
  return `root=LABEL=${ROOT_LABEL} console=ttyAMA0${card ? ` ${card}` : ''}${extra}`;
}

/** The SD card model takes only sizes that are a power of two. */
export function powerOfTwoAtLeast(bytes: number): number {
  let size = 1;
  while (size < bytes) size *= 2;
  return size;
}

export function qemuCommand(o: QemuOptions): Command {
  const net = ['user', 'id=net0', ...(o.offline ? ['restrict=on'] : []), ...o.forwards.map((f) => `hostfwd=tcp:${f.address}:${f.hostPort}-:${f.guestPort}`)].join(',');
  const common = [
    '-kernel', o.kernel,
    '-initrd', o.initrd,
    '-append', kernelCommandLine(o),
    '-display', 'none',
    '-monitor', 'none',
    '-qmp', `unix:${o.qmpSocket},server=on,wait=off`,
  ];
  if (o.machine === 'raspi3b') {
    // The Pi 3 board model: its own device tree, SD card, USB networking. Its first UART (the
    // PL011) belongs to Bluetooth on a Pi 3; the console is the second, the mini UART (ttyS1).
    return ['qemu-system-aarch64', [
      '-M', 'raspi3b', '-m', String(RASPI3B.memoryMiB), '-smp', String(RASPI3B.cpus),
      ...(o.dtb ? ['-dtb', o.dtb] : []),
      '-drive', `if=sd,file=${o.disk},format=${o.diskFormat}`,
      '-device', 'usb-net,netdev=net0', '-netdev', net,
      '-serial', 'null', '-serial', 'stdio',
      ...common,
    ]];
  }
  const system = VIRT_SYSTEMS[o.architecture ?? 'arm64'];
  return [system.binary, [
    '-M', 'virt', '-cpu', system.cpu, '-smp', String(o.cpus), '-m', String(o.memoryMiB),
    '-drive', `if=none,file=${o.disk},format=${o.diskFormat},id=hd0,cache=unsafe,discard=unmap`,
    '-device', 'virtio-blk-pci,drive=hd0',
    '-netdev', net,
    '-device', 'virtio-net-pci,netdev=net0',
    ...(o.tap ? ['-netdev', `tap,id=net1,ifname=${o.tap},script=no,downscript=no`, '-device', 'virtio-net-pci,netdev=net1'] : []),
    '-device', 'virtio-rng-pci',
    '-serial', 'stdio',
    ...common,
  ]];
}
