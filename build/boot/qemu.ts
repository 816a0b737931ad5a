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

/**
 * QEMU's Raspberry Pi board models that boot the arm64 image as the board's firmware would: the
 * kernel, initramfs and device tree config.txt names for the board, and the card's cmdline.txt.
 * Their memory and cores are the board's (QEMU fixes them).
 */
export interface PiBoardModel {
  /** The board as config.txt's conditional sections name it: `[pi3]`, `[pi4]`. */
  filter: string;
  title: string;
  memoryMiB: number;
  cpus: number;
  /** The device tree the board's firmware loads when config.txt names none. */
  deviceTree: (c: PiBootConfig) => string;
  /** Which of QEMU's two serial ports is the console (the other is discarded). */
  consolePort: 0 | 1;
  /** The kernel's console there, in place of the card's console= parameters; none: the card's cmdline.txt as it is. */
  console?: string;
  /** What QEMU's model lacks, taken out of a copy of the card's device tree: fdtput's options, then node and property. */
  dtbEdits: ReadonlyArray<{ options: readonly string[]; args: readonly string[] }>;
}

/** The Pi 4's blocks QEMU 10 does not model: the HDMI block's clock, interrupt controller, HDMI and DDC (reading them aborts the kernel). */
const RASPI4B_UNMODELLED = [
  '/soc/clock@7ef00000', '/soc/interrupt-controller@7ef00100', '/soc/hdmi@7ef00700', '/soc/i2c@7ef04500', '/soc/hdmi@7ef05700', '/soc/i2c@7ef09500',
];

export const PI_BOARD_MODELS = {
  raspi3b: {
    filter: 'pi3',
    title: 'Pi 3 B',
    memoryMiB: 1024,
    cpus: 4,
    // Upstream kernels use the bcm2837 name (the 3 B, not the 3 B+).
    deviceTree: (c) => c.upstreamKernel ? 'bcm2837-rpi-3-b.dtb' : 'bcm2710-rpi-3-b.dtb',
    // The PL011 belongs to Bluetooth on a Pi 3; the card's console is the mini UART (ttyS1).
    consolePort: 1,
    dtbEdits: [],
  },
  // QEMU 10's Pi 4 B (docs/boards.md has what it models and where in QEMU's source): 4 cores,
  // 2 GiB of which the guest sees 960 MiB, the SD card on the Arasan controller, USB (DWC2).
  raspi4b: {
    filter: 'pi4',
    title: 'Pi 4 B',
    memoryMiB: 2048,
    cpus: 4,
    deviceTree: () => 'bcm2711-rpi-4-b.dtb',
    // The console is the PL011 (ttyAMA0): with it on QEMU's mini UART every SD transfer timed
    // out (docs/boards.md). The PL011 is free once Bluetooth's node is gone.
    consolePort: 0,
    console: 'ttyAMA0,115200',
    dtbEdits: [
      ...RASPI4B_UNMODELLED.map((node) => ({ options: ['-t', 's'], args: [node, 'status', 'disabled'] })),
      // EMMC2, the Pi 4's SD slot, never gets QEMU's card and waits for regulators on the
      // firmware's GPIO expander, which QEMU does not answer; the mini UART, see above.
      { options: ['-t', 's'], args: ['/emmc2-bus@fe000000/mmc@7e340000', 'status', 'disabled'] },
      { options: ['-t', 's'], args: ['/soc/serial@7e215040', 'status', 'disabled'] },
      // The card is on the Arasan controller (the Pi 4's Wi-Fi slot), whose power sequence
      // waits for a firmware GPIO.
      { options: ['-d'], args: ['/soc/mmc@7e300000', 'mmc-pwrseq'] },
      { options: ['-r'], args: ['/soc/serial@7e201000/bluetooth'] },
    ],
  },
} as const satisfies Record<string, PiBoardModel>;

export type PiBoardMachine = keyof typeof PI_BOARD_MODELS;
export type QemuMachine = 'virt' | PiBoardMachine;
export const QEMU_MACHINES: readonly QemuMachine[] = ['virt', ...Object.keys(PI_BOARD_MODELS) as PiBoardMachine[]];

export function isPiBoard(machine: string): machine is PiBoardMachine {
  return Object.hasOwn(PI_BOARD_MODELS, machine);
}

export interface QemuOptions {
  machine: QemuMachine;
  /** The image's architecture (default arm64); the board models are 64-bit. */
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
  /** Disk files plugged in as USB drives (a backup drive), in this order; raw unless .qcow2. */
  usbDrives?: readonly string[];
  /** Machines on the card's network, served by commands on this machine (also when offline). */
  lanServices?: readonly LanService[];
}

/** A service on the card's network: each connection to address:port runs command here. */
export interface LanService {
  address: string;
  port: number;
  command: string;
}

/** Where QEMU's user network puts its own machines (10.0.2.2, .3) and the guest (.15 on). */
export const LAN_NETWORK = /^10\.0\.2\.(\d{1,3})$/;

/** QEMU's guestfwd rule: the command runs for each connection, its stdin and stdout the connection. */
export function lanServiceRule(s: LanService): string {
  // QEMU's option syntax: a comma in a value is written twice.
  return `guestfwd=tcp:${s.address}:${s.port}-cmd:${s.command.replaceAll(',', ',,')}`;
}

/** QEMU's arguments for USB mass storage devices: the files are used in place, as a drive is. */
export function usbDriveArgs(files: readonly string[], controller: boolean): string[] {
  if (!files.length) return [];
  return [
    ...(controller ? ['-device', 'qemu-xhci,id=usbdrives'] : []),
    ...files.flatMap((f, i) => [
      // QEMU's option syntax: a comma in a value is written twice.
      '-drive', `if=none,id=usbdrive${i},file=${f.replaceAll(',', ',,')},format=${f.endsWith('.qcow2') ? 'qcow2' : 'raw'}`,
      '-device', `usb-storage,drive=usbdrive${i}${controller ? ',bus=usbdrives.0' : ''}`,
    ]),
  ];
}

/** What a Pi's firmware reads from config.txt to start it. */
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
 * config.txt as the firmware of a board reads it: lines in `[all]` and in the sections of the
 * board's `filters` apply (a Pi 3 B: `pi3`; a Pi 500: `pi5` and `pi500`), other conditional
 * sections (`[pi4]`, `[pi3+]`, `[none]`, …) do not.
 */
export function parseConfigTxt(text: string, filters: readonly string[] = ['pi3']): PiBootConfig {
  const c: PiBootConfig = { cmdlineFile: 'cmdline.txt', arm64: false, enableUart: false, upstreamKernel: false, unapplied: [] };
  let applies = true;
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*/, '').trim();
    if (!line) continue;
    const section = /^\[(.*)\]$/.exec(line);
    if (section) {
      const name = section[1]!.trim().toLowerCase();
      applies = name === 'all' || filters.includes(name);
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

/** The device tree the firmware loads on a board model: config.txt's, or the board's own. */
export function boardDeviceTree(c: PiBootConfig, machine: PiBoardMachine): string {
  return c.deviceTree ?? PI_BOARD_MODELS[machine].deviceTree(c);
}

/** Used when the card has no cmdline.txt. */
const DEFAULT_CARD_ARGS = 'rw fsck.repair=yes net.ifnames=1';

/**
 * The kernel command line. raspi3b boots with the card's cmdline.txt as it is, as a Pi does
 * (console on the GPIO UART); raspi4b too, with its console on the UART QEMU serves well.
 * virt gets root and console for its own disk and UART, then the card's cmdline.txt (including
 * anything Raspberry Pi Imager appended) without its console= and root= parameters, which name
 * the Pi's UART and SD card.
 */
export function kernelCommandLine(o: Pick<QemuOptions, 'machine' | 'extraAppend' | 'cmdline'>): string {
  const extra = o.extraAppend ? ` ${o.extraAppend}` : '';
  if (isPiBoard(o.machine)) {
    const board: PiBoardModel = PI_BOARD_MODELS[o.machine];
    const card = (o.cmdline ?? '').split(/\s+/).filter(Boolean);
    const args = board.console ? [...card.filter((x) => !x.startsWith('console=')), `console=${board.console}`] : card;
    return `${args.join(' ')}${extra}`;
  }
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
  const net = ['user', 'id=net0', ...(o.offline ? ['restrict=on'] : []), ...o.forwards.map((f) => `hostfwd=tcp:${f.address}:${f.hostPort}-:${f.guestPort}`),
    ...(o.lanServices ?? []).map(lanServiceRule)].join(',');
  const common = [
    '-kernel', o.kernel,
    '-initrd', o.initrd,
    '-append', kernelCommandLine(o),
    '-display', 'none',
    '-monitor', 'none',
    '-qmp', `unix:${o.qmpSocket},server=on,wait=off`,
  ];
  if (isPiBoard(o.machine)) {
    // A board model: its own device tree, SD card, USB networking, and the console on the
    // board's serial port (the other one discarded).
    const board: PiBoardModel = PI_BOARD_MODELS[o.machine];
    const serials = board.consolePort === 0 ? ['stdio', 'null'] : ['null', 'stdio'];
    return ['qemu-system-aarch64', [
      '-M', o.machine, '-m', String(board.memoryMiB), '-smp', String(board.cpus),
      ...(o.dtb ? ['-dtb', o.dtb] : []),
      '-drive', `if=sd,file=${o.disk},format=${o.diskFormat}`,
      '-device', 'usb-net,netdev=net0', '-netdev', net,
      ...usbDriveArgs(o.usbDrives ?? [], false),
      ...serials.flatMap((s) => ['-serial', s]),
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
    ...usbDriveArgs(o.usbDrives ?? [], true),
    '-serial', 'stdio',
    ...common,
  ]];
}
