import { test } from 'node:test';
import assert from 'node:assert/strict';
import { armKernelCommandLine, armQemuCommand, qemuDtbEdits, type ArmBootOptions } from '../../build/boot/machines.ts';
import { loadBase } from '../../build/bases/load.ts';

const base: ArmBootOptions = {
  machine: 'raspi2b', architecture: 'armhf', kernel: '/b/vmlinuz', initrd: '/b/initrd.img', dtb: '/b/bcm2836-rpi-2-b.dtb', disk: '/b/sd.img', diskFormat: 'raw',
  forwards: [{ address: '127.0.0.1', hostPort: 18888, guestPort: 8888 }], qmpSocket: '/b/qmp', extraAppend: '',
};

/** The value after a flag, for each time it occurs. */
function values(args: readonly string[], flag: string): string[] {
  return args.flatMap((a, i) => (a === flag ? [args[i + 1]!] : []));
}

test('armhf in the Pi 2 board model: the board\'s memory and cores, the image\'s device tree, SD card, USB network', () => {
  const [program, args] = armQemuCommand(base);
  assert.equal(program, 'qemu-system-arm');
  assert.deepEqual(values(args, '-M'), ['raspi2b']);
  assert.deepEqual([values(args, '-m'), values(args, '-smp')], [['1024'], ['4']]);
  assert.deepEqual(values(args, '-dtb'), ['/b/bcm2836-rpi-2-b.dtb']);
  assert.deepEqual(values(args, '-drive'), ['if=sd,file=/b/sd.img,format=raw']);
  assert.deepEqual(values(args, '-netdev'), ['user,id=net0,hostfwd=tcp:127.0.0.1:18888-:8888']);
  assert.deepEqual(values(args, '-device'), ['usb-net,netdev=net0']);
  assert.deepEqual(values(args, '-append'), ['root=LABEL=RASPIROOT rw console=ttyAMA0,115200 fsck.repair=yes net.ifnames=1 rootwait']);
  assert.deepEqual(values(args, '-serial'), ['stdio']);
});

test('armel in the Pi Zero board model: its 512 MiB and one core', () => {
  const [program, args] = armQemuCommand({ ...base, machine: 'raspi0', architecture: 'armel', dtb: '/b/bcm2835-rpi-zero.dtb' });
  assert.equal(program, 'qemu-system-arm');
  assert.deepEqual(values(args, '-M'), ['raspi0']);
  assert.deepEqual(values(args, '-cpu'), [], 'the board fixes its CPU');
  assert.deepEqual([values(args, '-m'), values(args, '-smp')], [['512'], ['1']]);
  assert.deepEqual(values(args, '-dtb'), ['/b/bcm2835-rpi-zero.dtb']);
});

test('a board model runs only its own kind of kernel; virt and raspi3b are not board models of qemu-system-arm', () => {
  assert.throws(() => armQemuCommand({ ...base, machine: 'raspi0', architecture: 'armhf' }), /`raspi0` runs armel kernels, not armhf/);
  assert.throws(() => armQemuCommand({ ...base, machine: 'raspi3b', architecture: 'arm64' }), /`raspi3b` is not a qemu-system-arm board model/);
  assert.throws(() => armQemuCommand({ ...base, machine: 'virt' }), /virt is `pihub boot`'s own/);
});

test('every 32-bit profile\'s board models are ones this module knows', () => {
  for (const name of ['debian-trixie-armhf', 'debian-trixie-armel', 'raspbian-buster-armhf']) {
    const p = loadBase(name).profile;
    for (const m of p.qemu.machines) {
      if (m.machine === 'virt') continue;
      const [program] = armQemuCommand({ ...base, machine: m.machine, architecture: p.architecture, dtb: `/b/${m.dtb!}` });
      assert.equal(program, 'qemu-system-arm', `${name} in ${m.machine}`);
    }
  }
});

test('the kernel command line of a board model', () => {
  assert.equal(armKernelCommandLine({ machine: 'raspi0', extraAppend: 'systemd.unit=rescue.target' }), 'root=LABEL=RASPIROOT rw console=ttyAMA0,115200 fsck.repair=yes net.ifnames=1 rootwait systemd.unit=rescue.target');
});

test('the image\'s device tree for a BCM283x board model: the bridge registers QEMU lacks taken out', () => {
  assert.deepEqual(qemuDtbEdits('raspi0', '/b/zero.dtb', ['pm', 'asb']), [
    ['fdtput', ['-t', 'x', '/b/zero.dtb', '/soc/watchdog@7e100000', 'reg', '7e100000', '114']],
    ['fdtput', ['-t', 's', '/b/zero.dtb', '/soc/watchdog@7e100000', 'reg-names', 'pm']],
  ]);
  assert.deepEqual(qemuDtbEdits('raspi0', '/b/zero.dtb', ['pm']), [], 'already without it (or Raspberry Pi\'s own tree)');
  assert.throws(() => qemuDtbEdits('raspi2b', '/b/x.dtb', ['asb', 'pm']), /unexpected reg-names `asb pm`/);
});
