import { test } from 'node:test';
import assert from 'node:assert/strict';
import { armKernelCommandLine, armQemuCommand, qemuDtbEdits, sdCardSize, type ArmBootOptions } from '../../build/boot/machines.ts';
import { loadBase } from '../../build/bases/load.ts';

const base: ArmBootOptions = {
  machine: 'virt', architecture: 'armhf', kernel: '/b/vmlinuz', initrd: '/b/initrd.img', disk: '/b/disk.qcow2', diskFormat: 'qcow2',
  memoryMiB: 2048, cpus: 2, forwards: [{ address: '127.0.0.1', hostPort: 18888, guestPort: 8888 }], qmpSocket: '/b/qmp', extraAppend: '',
};

/** The value after a flag, for each time it occurs. */
function values(args: readonly string[], flag: string): string[] {
  return args.flatMap((a, i) => (a === flag ? [args[i + 1]!] : []));
}

test('armhf in QEMU virt: Cortex-A15, virtio disk, network and entropy, serial console on ttyAMA0', () => {
  const [program, args] = armQemuCommand(base);
  assert.equal(program, 'qemu-system-arm');
  assert.deepEqual(values(args, '-M'), ['virt']);
  assert.deepEqual(values(args, '-cpu'), ['cortex-a15']);
  assert.deepEqual(values(args, '-m'), ['2048']);
  assert.deepEqual(values(args, '-smp'), ['2']);
  assert.deepEqual(values(args, '-device'), ['virtio-blk-pci,drive=hd0', 'virtio-net-pci,netdev=net0', 'virtio-rng-pci']);
  assert.deepEqual(values(args, '-netdev'), ['user,id=net0,hostfwd=tcp:127.0.0.1:18888-:8888']);
  assert.deepEqual(values(args, '-drive'), ['if=none,file=/b/disk.qcow2,format=qcow2,id=hd0,cache=unsafe,discard=unmap']);
  assert.deepEqual(values(args, '-dtb'), [], 'virt makes its own device tree');
  assert.deepEqual(values(args, '-append'), ['root=LABEL=RASPIROOT rw console=ttyAMA0 fsck.repair=yes net.ifnames=1']);
  assert.deepEqual(values(args, '-serial'), ['stdio']);
});

test('armel in the Pi Zero board model: its own memory and core, the image\'s device tree, SD card, USB network', () => {
  const [program, args] = armQemuCommand({ ...base, machine: 'raspi0', architecture: 'armel', dtb: '/b/bcm2835-rpi-zero.dtb', diskFormat: 'raw', disk: '/b/sd.img' });
  assert.equal(program, 'qemu-system-arm');
  assert.deepEqual(values(args, '-M'), ['raspi0']);
  assert.deepEqual(values(args, '-cpu'), [], 'the board fixes its CPU');
  assert.deepEqual(values(args, '-m'), ['512'], 'the board\'s 512 MiB, whatever was asked');
  assert.deepEqual(values(args, '-smp'), ['1']);
  assert.deepEqual(values(args, '-dtb'), ['/b/bcm2835-rpi-zero.dtb']);
  assert.deepEqual(values(args, '-drive'), ['if=sd,file=/b/sd.img,format=raw']);
  assert.deepEqual(values(args, '-device'), ['usb-net,netdev=net0']);
  assert.match(values(args, '-append')[0]!, /console=ttyAMA0,115200 .* rootwait$/);
});

test('a board model needs the image\'s device tree, and runs only its own kind of kernel', () => {
  assert.throws(() => armQemuCommand({ ...base, machine: 'raspi2b' }), /`raspi2b` board model boots with the image's own device tree/);
  assert.throws(() => armQemuCommand({ ...base, dtb: '/b/x.dtb' }), /`virt` makes its own device tree/);
  assert.throws(() => armQemuCommand({ ...base, machine: 'raspi0', architecture: 'armhf', dtb: '/b/x.dtb' }), /`raspi0` runs armel kernels, not armhf/);
  assert.throws(() => armQemuCommand({ ...base, machine: 'raspi3b', architecture: 'arm64' }), /`raspi3b` is not a qemu-system-arm machine/);
  const [, args] = armQemuCommand({ ...base, machine: 'raspi2b', dtb: '/b/bcm2836-rpi-2-b.dtb', memoryMiB: 4096, cpus: 1 });
  assert.deepEqual([values(args, '-m'), values(args, '-smp')], [['1024'], ['4']]);
});

test('every 32-bit profile boots in machines this module knows', () => {
  for (const name of ['debian-trixie-armhf', 'debian-trixie-armel', 'raspbian-buster-armhf']) {
    const p = loadBase(name).profile;
    for (const m of p.qemu.machines) {
      const [program] = armQemuCommand({ ...base, machine: m.machine, architecture: p.architecture, dtb: m.dtb && `/b/${m.dtb}` });
      assert.equal(program, 'qemu-system-arm', `${name} in ${m.machine}`);
    }
  }
});

test('the kernel command line and SD card sizes', () => {
  assert.equal(armKernelCommandLine({ machine: 'virt', extraAppend: 'systemd.unit=rescue.target' }), 'root=LABEL=RASPIROOT rw console=ttyAMA0 fsck.repair=yes net.ifnames=1 systemd.unit=rescue.target');
  assert.equal(sdCardSize(3_728_736_256), 4 * 1024 ** 3);
  assert.equal(sdCardSize(4 * 1024 ** 3), 4 * 1024 ** 3);
  assert.equal(sdCardSize(4 * 1024 ** 3 + 1), 8 * 1024 ** 3);
});

test('the image\'s device tree for a BCM283x board model: the bridge registers QEMU lacks taken out', () => {
  assert.deepEqual(qemuDtbEdits('raspi0', '/b/zero.dtb', ['pm', 'asb']), [
    ['fdtput', ['-t', 'x', '/b/zero.dtb', '/soc/watchdog@7e100000', 'reg', '7e100000', '114']],
    ['fdtput', ['-t', 's', '/b/zero.dtb', '/soc/watchdog@7e100000', 'reg-names', 'pm']],
  ]);
  assert.deepEqual(qemuDtbEdits('raspi0', '/b/zero.dtb', ['pm']), [], 'already without it (or Raspberry Pi\'s own tree)');
  assert.deepEqual(qemuDtbEdits('virt', '/b/x.dtb', ['pm', 'asb']), [], 'virt has no BCM283x');
  assert.throws(() => qemuDtbEdits('raspi2b', '/b/x.dtb', ['asb', 'pm']), /unexpected reg-names `asb pm`/);
});
