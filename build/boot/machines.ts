// QEMU command lines for Raspberry Pi board models that run 32-bit kernels (qemu-system-arm),
// with the image's own device tree: raspi2b for armhf, raspi0 and raspi1ap for armel. The
// `virt` machine (arm64 and armhf) is `pihub boot`'s own (qemu.ts). Pure functions, groundwork
// for booting 32-bit images in a board model: `pihub boot` does not use them yet.
import type { Command } from '../core/exec.ts';
import { ROOT_LABEL } from '../image/layout.ts';
import { MACHINE_ARCHITECTURES, type Architecture, type MachineName } from '../bases/schema.ts';
import type { QemuOptions } from './qemu.ts';

export interface ArmMachine {
  /** Device-tree changes QEMU's model needs (see qemuDtbEdits). */
  bcm283xPm: boolean;
  /** The board's own memory and cores (QEMU fixes them). */
  memoryMiB: number;
  cpus: number;
  /** The kernel's serial console on QEMU's first serial port. */
  console: string;
}

/** The qemu-system-arm board models: SD card, USB network adapter on the board's dwc2 port. */
export const ARM_MACHINES: Partial<Record<MachineName, ArmMachine>> = {
  // Pi 2 B: BCM2836, four Cortex-A7, 1 GiB.
  raspi2b: { memoryMiB: 1024, cpus: 4, console: 'ttyAMA0,115200', bcm283xPm: true },
  // Pi Zero and Pi 1 A+: BCM2835, one ARM1176, 512 MiB.
  raspi0: { memoryMiB: 512, cpus: 1, console: 'ttyAMA0,115200', bcm283xPm: true },
  raspi1ap: { memoryMiB: 512, cpus: 1, console: 'ttyAMA0,115200', bcm283xPm: true },
};

export interface ArmBootOptions extends Pick<QemuOptions, 'kernel' | 'initrd' | 'disk' | 'diskFormat' | 'forwards' | 'qmpSocket' | 'extraAppend'> {
  machine: MachineName;
  architecture: Architecture;
  /** The image's device tree for the board. */
  dtb: string;
}

/** The machine's description; throws a sentence for a machine qemu-system-arm does not run here. */
export function armMachine(name: MachineName): ArmMachine {
  const m = ARM_MACHINES[name];
  if (!m) throw new Error(`\`${name}\` is not a qemu-system-arm board model; the 32-bit board models are ${Object.keys(ARM_MACHINES).join(', ')} (virt is \`pihub boot\`'s own)`);
  return m;
}

export function armKernelCommandLine(o: Pick<ArmBootOptions, 'machine' | 'extraAppend'>): string {
  const m = armMachine(o.machine);
  // SD cards appear late on the boards: wait for the root device rather than give up.
  return `root=LABEL=${ROOT_LABEL} rw console=${m.console} fsck.repair=yes net.ifnames=1 rootwait${o.extraAppend ? ` ${o.extraAppend}` : ''}`;
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

export function armQemuCommand(o: ArmBootOptions): Command {
  const m = armMachine(o.machine);
  const runs: readonly Architecture[] = MACHINE_ARCHITECTURES[o.machine];
  if (!runs.includes(o.architecture)) throw new Error(`\`${o.machine}\` runs ${runs.join(' and ')} kernels, not ${o.architecture}`);
  const net = ['user', 'id=net0', ...o.forwards.map((f) => `hostfwd=tcp:${f.address}:${f.hostPort}-:${f.guestPort}`)].join(',');
  const args: string[] = [
    '-M', o.machine, '-smp', String(m.cpus), '-m', String(m.memoryMiB), '-dtb', o.dtb,
    '-drive', `if=sd,file=${o.disk},format=${o.diskFormat}`, '-netdev', net, '-device', 'usb-net,netdev=net0',
  ];
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
