// QEMU command lines for the 32-bit bases (qemu-system-arm): the generic `virt` machine for
// armhf (Debian's multiplatform kernel with virtio disk and network), and the Raspberry Pi
// board models with the image's own device tree (raspi2b for armhf, raspi0 and raspi1ap for
// armel). Pure functions: which machine a base boots in is its profile's choice.
import type { Command } from '../exec.ts';
import { ROOT_LABEL } from '../image/layout.ts';
import { MACHINE_ARCHITECTURES, type Architecture, type MachineName } from '../bases/schema.ts';
import type { Forward } from './qemu.ts';

export interface ArmMachine {
  /** Device-tree changes QEMU's model needs (see qemuDtbEdits). */
  bcm283xPm?: boolean;
  /** The board's own memory and cores (QEMU fixes them for the board models). */
  memoryMiB?: number;
  cpus?: number;
  cpu?: string;
  /** The kernel's serial console on QEMU's first serial port. */
  console: string;
  disk: 'virtio' | 'sd';
  /** virtio: virtio-net; usb: a USB network adapter on the board's USB port (dwc2). */
  net: 'virtio' | 'usb';
}

/** The qemu-system-arm machines pihub boots. */
export const ARM_MACHINES: Partial<Record<MachineName, ArmMachine>> = {
  // Cortex-A15: ARMv7 with LPAE and virtualization extensions, what Debian's armmp-lpae kernel needs.
  virt: { cpu: 'cortex-a15', console: 'ttyAMA0', disk: 'virtio', net: 'virtio' },
  // Pi 2 B: BCM2836, four Cortex-A7, 1 GiB.
  raspi2b: { memoryMiB: 1024, cpus: 4, console: 'ttyAMA0,115200', disk: 'sd', net: 'usb', bcm283xPm: true },
  // Pi Zero and Pi 1 A+: BCM2835, one ARM1176, 512 MiB.
  raspi0: { memoryMiB: 512, cpus: 1, console: 'ttyAMA0,115200', disk: 'sd', net: 'usb', bcm283xPm: true },
  raspi1ap: { memoryMiB: 512, cpus: 1, console: 'ttyAMA0,115200', disk: 'sd', net: 'usb', bcm283xPm: true },
};

export interface ArmBootOptions {
  machine: MachineName;
  architecture: Architecture;
  kernel: string;
  initrd: string;
  /** The image's device tree for the board models (`virt` makes its own). */
  dtb?: string;
  disk: string;
  diskFormat: 'qcow2' | 'raw';
  memoryMiB: number;
  cpus: number;
  forwards: readonly Forward[];
  qmpSocket: string;
  extraAppend: string;
}

/** The machine's description; throws a sentence for a machine qemu-system-arm does not run here. */
export function armMachine(name: MachineName): ArmMachine {
  const m = ARM_MACHINES[name];
  if (!m) throw new Error(`\`${name}\` is not a qemu-system-arm machine; the 32-bit bases boot in ${Object.keys(ARM_MACHINES).join(', ')}`);
  return m;
}

export function armKernelCommandLine(o: Pick<ArmBootOptions, 'machine' | 'extraAppend'>): string {
  const m = armMachine(o.machine);
  // SD cards appear late on the boards: wait for the root device rather than give up.
  const wait = m.disk === 'sd' ? ' rootwait' : '';
  return `root=LABEL=${ROOT_LABEL} rw console=${m.console} fsck.repair=yes net.ifnames=1${wait}${o.extraAppend ? ` ${o.extraAppend}` : ''}`;
}

/** The power-management node of the BCM283x device trees in the Linux kernel (bcm283x.dtsi). */
export const BCM283X_PM_NODE = '/soc/watchdog@7e100000';

/**
 * Changes to a copy of the image's device tree for QEMU's board model, as fdtput commands.
 * QEMU 10 does not model the BCM283x's AXI bridge registers (ASB), which the kernel's
 * device tree gives the power-management node as a second register range: reading them
 * (bcm2835-power) stops the kernel with an external abort. Without that range the kernel
 * leaves the power domains to the firmware driver, which QEMU answers. Only a tree that has
 * the range is changed (`regNames` as fdtget prints the node's reg-names); Raspberry Pi's
 * own trees have no ASB range.
 */
export function qemuDtbEdits(machine: MachineName, dtb: string, regNames: readonly string[]): Command[] {
  if (!armMachine(machine).bcm283xPm) return [];
  const asb = regNames.indexOf('asb');
  if (asb < 0) return [];
  if (asb !== regNames.length - 1 || regNames[0] !== 'pm') {
    throw new Error(`${dtb}: unexpected reg-names \`${regNames.join(' ')}\` at ${BCM283X_PM_NODE}; pihub knows \`pm asb\``);
  }
  return [
    ['fdtput', ['-t', 'x', dtb, BCM283X_PM_NODE, 'reg', '7e100000', '114']],
    ['fdtput', ['-t', 's', dtb, BCM283X_PM_NODE, 'reg-names', 'pm']],
  ];
}

/** The size a disk image needs for an SD card in QEMU's board models: a power of two, at least `bytes`. */
export function sdCardSize(bytes: number): number {
  let size = 1;
  while (size < bytes) size *= 2;
  return size;
}

export function armQemuCommand(o: ArmBootOptions): Command {
  const m = armMachine(o.machine);
  const runs: readonly Architecture[] = MACHINE_ARCHITECTURES[o.machine];
  if (!runs.includes(o.architecture)) throw new Error(`\`${o.machine}\` runs ${runs.join(' and ')} kernels, not ${o.architecture}`);
  if (m.disk === 'sd' && !o.dtb) throw new Error(`the \`${o.machine}\` board model boots with the image's own device tree; none was given`);
  if (o.machine === 'virt' && o.dtb) throw new Error('`virt` makes its own device tree; leave the image\'s out');
  const net = ['user', 'id=net0', ...o.forwards.map((f) => `hostfwd=tcp:${f.address}:${f.hostPort}-:${f.guestPort}`)].join(',');
  const args: string[] = ['-M', o.machine];
  if (m.cpu) args.push('-cpu', m.cpu);
  args.push('-smp', String(m.cpus ?? o.cpus), '-m', String(m.memoryMiB ?? o.memoryMiB));
  if (o.dtb) args.push('-dtb', o.dtb);
  if (m.disk === 'virtio') {
    args.push(
      '-drive', `if=none,file=${o.disk},format=${o.diskFormat},id=hd0,cache=unsafe,discard=unmap`,
      '-device', 'virtio-blk-pci,drive=hd0',
      '-netdev', net,
      '-device', 'virtio-net-pci,netdev=net0',
      '-device', 'virtio-rng-pci',
    );
  } else {
    args.push('-drive', `if=sd,file=${o.disk},format=${o.diskFormat}`, '-netdev', net, '-device', 'usb-net,netdev=net0');
  }
  args.push(
    '-kernel', o.kernel,
    '-initrd', o.initrd,
    '-append', armKernelCommandLine(o),
    '-display', 'none',
    '-monitor', 'none',
    '-serial', 'stdio',
    '-qmp', `unix:${o.qmpSocket},server=on,wait=off`,
  );
  return ['qemu-system-arm', args];
}
