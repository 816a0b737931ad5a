// Pure parts of `pihub boot`: reading the partition table and building the QEMU command.
import type { Command } from '../exec.ts';
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

/** `8888`, `8000:8888` or `0.0.0.0:8000:8888`; the host side listens on 127.0.0.1 unless told otherwise. */
export function parseForward(spec: string): Forward {
  const parts = spec.split(':');
  const nums = parts.slice(-2).map(Number);
  const ok = (n: number | undefined) => n !== undefined && Number.isInteger(n) && n >= 1 && n <= 65535;
  if (parts.length === 1 && ok(nums[0])) return { address: '127.0.0.1', hostPort: nums[0]!, guestPort: nums[0]! };
  if ((parts.length === 2 || parts.length === 3) && ok(nums[0]) && ok(nums[1])) {
    return { address: parts.length === 3 ? parts[0]! : '127.0.0.1', hostPort: nums[0]!, guestPort: nums[1]! };
  }
  throw new Error(`--forward ${spec}: expected HOST_PORT:GUEST_PORT (e.g. 8888:8888 or 2222:22), optionally ADDRESS:HOST_PORT:GUEST_PORT`);
}

export interface QemuOptions {
  machine: 'virt' | 'raspi3b';
  kernel: string;
  initrd: string;
  disk: string;
  diskFormat: 'qcow2' | 'raw';
  memoryMiB: number;
  cpus: number;
  forwards: readonly Forward[];
  qmpSocket: string;
  extraAppend: string;
  /** The card's cmdline.txt, as a Pi's firmware would pass it to the kernel. */
  cardCmdline?: string;
  /** A host tap device for a second network card (a LAN segment the host can see). */
  tap?: string;
  dtb?: string;
}

/** Used when the card has no cmdline.txt. */
const DEFAULT_CARD_ARGS = 'rw fsck.repair=yes net.ifnames=1';

/**
 * The kernel command line: root and console for this QEMU machine, then the card's own
 * cmdline.txt (what a Pi boots with, including anything Raspberry Pi Imager appended) without
 * its console= and root= parameters, which name the Pi's UART and SD card.
 */
export function kernelCommandLine(o: Pick<QemuOptions, 'machine' | 'extraAppend' | 'cardCmdline'>): string {
  const console = o.machine === 'virt' ? 'console=ttyAMA0' : 'console=ttyAMA1,115200 console=ttyAMA0';
  const card = o.cardCmdline === undefined
    ? DEFAULT_CARD_ARGS
    : o.cardCmdline.split(/\s+/).filter((a) => a && !/^(console|root)=/.test(a)).join(' ');
  const disk = o.machine === 'virt' || /(^| )rootwait( |$)/.test(card) ? '' : ' rootwait';
  return `root=LABEL=${ROOT_LABEL} ${console}${card ? ` ${card}` : ''}${disk}${o.extraAppend ? ` ${o.extraAppend}` : ''}`;
}

export function qemuCommand(o: QemuOptions): Command {
  const net = ['user', 'id=net0', ...o.forwards.map((f) => `hostfwd=tcp:${f.address}:${f.hostPort}-:${f.guestPort}`)].join(',');
  const common = [
    '-kernel', o.kernel,
    '-initrd', o.initrd,
    '-append', kernelCommandLine(o),
    '-display', 'none',
    '-monitor', 'none',
    '-serial', 'stdio',
    '-qmp', `unix:${o.qmpSocket},server=on,wait=off`,
  ];
  if (o.machine === 'raspi3b') {
    // The real Pi 3 board model: 1 GiB, SD card, USB networking. The image must be a power of two in size.
    return ['qemu-system-aarch64', [
      '-M', 'raspi3b', '-m', '1024', '-smp', '4',
      ...(o.dtb ? ['-dtb', o.dtb] : []),
      '-drive', `if=sd,file=${o.disk},format=${o.diskFormat}`,
      '-device', 'usb-net,netdev=net0', '-netdev', net,
      ...common,
    ]];
  }
  return ['qemu-system-aarch64', [
    '-M', 'virt', '-cpu', 'cortex-a72', '-smp', String(o.cpus), '-m', String(o.memoryMiB),
    '-drive', `if=none,file=${o.disk},format=${o.diskFormat},id=hd0,cache=unsafe,discard=unmap`,
    '-device', 'virtio-blk-pci,drive=hd0',
    '-netdev', net,
    '-device', 'virtio-net-pci,netdev=net0',
    ...(o.tap ? ['-netdev', `tap,id=net1,ifname=${o.tap},script=no,downscript=no`, '-device', 'virtio-net-pci,netdev=net1'] : []),
    '-device', 'virtio-rng-pci',
    ...common,
  ]];
}
