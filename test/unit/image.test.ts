import { test } from 'node:test';
import assert from 'node:assert/strict';
import { alignUp, genimageConfig, layout, rootSize, uuidFromHex, idFromHex, MiB, ALIGN } from '../../build/image/layout.ts';
import { bootArchitecture, parseMbr, parseForward, qemuCommand, kernelCommandLine, parseConfigTxt, boardDeviceTree, powerOfTwoAtLeast, PI_BOARD_MODELS } from '../../build/boot/qemu.ts';
import { exportNames, bmapDataBytes } from '../../build/image/export.ts';
import { missingModules } from '../../ci/harness/boot-audit.ts';
import { compressCommand, compressionOf, imageBase } from '../../build/image/naming.ts';
import { resolveConfig, setLayer } from '../../build/config/load.ts';

test('root size: content plus headroom and metadata, aligned to 4 MiB', () => {
  const s = rootSize({ usedBytes: 2000 * MiB, inodes: 190_000, headroomPercent: 20, headroomMiB: 256 });
  assert.equal(s.bytes % ALIGN, 0);
  assert.ok(s.bytes > 2000 * MiB * 1.2 + 256 * MiB);
  assert.ok(s.inodes > 190_000);
  assert.equal(alignUp(1), ALIGN);
});

test('layout: FAT at 4 MiB, root after it, both aligned', () => {
  const l = layout(1024 * MiB);
  assert.equal(l.boot.offset, 4 * MiB);
  assert.equal(l.root.offset % ALIGN, 0);
  assert.ok(l.root.offset >= l.boot.offset + l.boot.size);
  assert.equal(l.total, l.root.offset + 1024 * MiB);
  const cfg = genimageConfig('x.img', l, 'deadbeef', 'empty.img');
  assert.match(cfg, /partition-type = 0xC/);
  assert.equal(cfg.match(/image = "empty\.img"/g)?.length, 2, 'genimage lays out the partitions; they are filled in place');
  assert.match(cfg, /partition-type = 0x83/);
  assert.match(cfg, /disk-signature = 0xdeadbeef/);
});

test('ids from a digest: the n-th 32-bit word, odd (never zero); a UUID of version 4 and variant a from the first 128 bits', () => {
  assert.equal(idFromHex(`aaaaaaaa${'bbbbbbb0'}cccccccc`, 1), 'bbbbbbb1');
  assert.equal(idFromHex(`aaaaaaaa${'bbbbbbb0'}cccccccc`, 2), 'cccccccd');
  assert.equal(idFromHex('00000000', 0), '00000001');
  assert.equal(uuidFromHex('00112233445566778899aabbccddeeff0011'), '00112233-4455-4677-a899-aabbccddeeff');
  assert.notEqual(uuidFromHex('f'.repeat(64)), uuidFromHex('e'.repeat(64)), 'other inputs, another file system id');
});

test('MBR parsing finds the partitions', () => {
  const mbr = Buffer.alloc(512);
  mbr[510] = 0x55;
  mbr[511] = 0xaa;
  mbr[446] = 0x80;
  mbr[446 + 4] = 0x0c;
  mbr.writeUInt32LE(8192, 446 + 8);
  mbr.writeUInt32LE(1040384, 446 + 12);
  mbr[462 + 4] = 0x83;
  mbr.writeUInt32LE(1048576, 462 + 8);
  mbr.writeUInt32LE(100, 462 + 12);
  const parts = parseMbr(mbr);
  assert.deepEqual(parts.map((p) => [p.index, p.type, p.offset]), [[1, 0x0c, 4 * MiB], [2, 0x83, 512 * MiB]]);
  assert.throws(() => parseMbr(Buffer.alloc(512)), /no MBR partition table/);
});

test('port forwards', () => {
  assert.deepEqual(parseForward('8888'), { address: '127.0.0.1', hostPort: 8888, guestPort: 8888 });
  assert.deepEqual(parseForward('2222:22'), { address: '127.0.0.1', hostPort: 2222, guestPort: 22 });
  assert.deepEqual(parseForward('0.0.0.0:8000:8888'), { address: '0.0.0.0', hostPort: 8000, guestPort: 8888 });
  assert.throws(() => parseForward('70000:22'), /expected HOST_PORT:GUEST_PORT/);
});

test('the QEMU command boots the image kernel with root by label, networking and forwards', () => {
  const [prog, args] = qemuCommand({
    machine: 'virt', kernel: 'k', initrd: 'i', disk: 'd.qcow2', diskFormat: 'qcow2', memoryMiB: 2048, cpus: 2,
    forwards: [parseForward('8888'), parseForward('2222:22')], qmpSocket: '/tmp/q', extraAppend: '',
  });
  assert.equal(prog, 'qemu-system-aarch64');
  const text = args.join(' ');
  assert.match(text, /-M virt -cpu cortex-a72/);
  assert.match(text, /hostfwd=tcp:127\.0\.0\.1:8888-:8888,hostfwd=tcp:127\.0\.0\.1:2222-:22/);
  assert.match(kernelCommandLine({ machine: 'virt', extraAppend: 'quiet' }), /^root=LABEL=RASPIROOT console=ttyAMA0 rw .* quiet$/);
  assert.doesNotMatch(text, /restrict/);
  const offline = qemuCommand({
    machine: 'virt', kernel: 'k', initrd: 'i', disk: 'd.qcow2', diskFormat: 'qcow2', memoryMiB: 2048, cpus: 2,
    forwards: [parseForward('8888')], qmpSocket: '/tmp/q', extraAppend: '', offline: true,
  })[1].join(' ');
  assert.match(offline, /-netdev user,id=net0,restrict=on,hostfwd=tcp:127\.0\.0\.1:8888-:8888 /);
  // An armhf image: qemu-system-arm's virt with an ARMv7 CPU that has LPAE (the armmp-lpae kernel).
  const [armProg, armArgs] = qemuCommand({
    machine: 'virt', architecture: 'armhf', kernel: 'k', initrd: 'i', disk: 'd.qcow2', diskFormat: 'qcow2', memoryMiB: 1024, cpus: 2,
    forwards: [parseForward('8888')], qmpSocket: '/tmp/q', extraAppend: '',
  });
  assert.equal(armProg, 'qemu-system-arm');
  assert.match(armArgs.join(' '), /-M virt -cpu cortex-a15 -smp 2 -m 1024 .*virtio-blk-pci/);
  assert.equal(bootArchitecture(undefined), 'arm64', 'a manifest without architecture is an arm64 image');
  assert.equal(bootArchitecture('armhf'), 'armhf');
  assert.throws(() => bootArchitecture('armel'), /the image is for armel, which `pihub boot` cannot run \(it boots arm64 and armhf images\)/);
});

test('output names and compression, from one table', () => {
  const n = exportNames(resolveConfig([]), '2026-01-02');
  assert.deepEqual(n, {
    base: 'pihub-2026-01-02-trixie-arm64',
    image: 'pihub-2026-01-02-trixie-arm64.img',
    compressed: 'pihub-2026-01-02-trixie-arm64.img.zst',
    bmap: 'pihub-2026-01-02-trixie-arm64.img.bmap',
    sha256: 'pihub-2026-01-02-trixie-arm64.sha256',
    info: 'pihub-2026-01-02-trixie-arm64.info',
    manifest: 'pihub-2026-01-02-trixie-arm64.json',
  });
  // Every compression's file name leads back to it and to the base name where .json and .sha256 are.
  for (const c of ['xz', 'zstd', 'gzip', 'none'] as const) {
    const file = exportNames(resolveConfig([setLayer([`image.compression=${c}`])]), '2026-01-02').compressed;
    assert.equal(compressionOf(`deploy/${file}`), c);
    assert.equal(imageBase(`deploy/${file}`), 'deploy/pihub-2026-01-02-trixie-arm64');
  }
  assert.equal(compressionOf('notes.txt'), undefined);
});

// Debian's raspi-firmware writes this config.txt (trixie), with sections added to check the filters.
const CONFIG_TXT = `# Do not modify this file!
arm_64bit=1

enable_uart=1
upstream_kernel=1

kernel=vmlinuz-6.12.117+deb13-arm64
initramfs initrd.img-6.12.117+deb13-arm64
[pi4]
dtoverlay=vc4-kms-v3d-pi4
kernel=other
[pi3]
dtparam=audio=on # on the GPIO header
[all]
`;

test('config.txt as a Pi 3 B reads it: [all] and [pi3] apply, [pi4] does not', () => {
  const c = parseConfigTxt(CONFIG_TXT);
  assert.deepEqual(c, {
    cmdlineFile: 'cmdline.txt', arm64: true, enableUart: true, upstreamKernel: true,
    kernel: 'vmlinuz-6.12.117+deb13-arm64', initramfs: 'initrd.img-6.12.117+deb13-arm64', unapplied: ['dtparam=audio=on'],
  });
  assert.equal(boardDeviceTree(c, 'raspi3b'), 'bcm2837-rpi-3-b.dtb', 'the 3 B, not the 3 B+, under its upstream name');
  assert.equal(boardDeviceTree(parseConfigTxt('arm_64bit=1\n'), 'raspi3b'), 'bcm2710-rpi-3-b.dtb');
  assert.equal(boardDeviceTree(parseConfigTxt('device_tree=my.dtb\n'), 'raspi3b'), 'my.dtb');
});

test('config.txt as the Pi 5 family reads it: [pi5] applies to all of it, [pi500] and [cm5] only to theirs', () => {
  const text = 'kernel=vmlinuz-7\ninitramfs initrd.img-7\n[pi500]\ndevice_tree=bcm2712-rpi-5-b.dtb\n[cm5]\ndevice_tree=other.dtb\n[pi5]\ncmdline=five.txt\n[all]\n';
  const pi5 = parseConfigTxt(text, ['pi5']);
  assert.equal(pi5.deviceTree, undefined);
  assert.equal(pi5.cmdlineFile, 'five.txt');
  assert.equal(parseConfigTxt(text, ['pi5', 'pi500']).deviceTree, 'bcm2712-rpi-5-b.dtb');
  assert.equal(parseConfigTxt(text, ['pi5', 'cm5']).deviceTree, 'other.dtb');
  assert.equal(parseConfigTxt(text, ['pi4']).cmdlineFile, 'cmdline.txt');
});

test('the Pi 3 B board model: 1 GiB, four cores, its device tree, cmdline.txt, console on the mini UART, USB network', () => {
  const [, args] = qemuCommand({
    machine: 'raspi3b', kernel: 'k', initrd: 'i', dtb: 'bcm2837-rpi-3-b.dtb', disk: 'd.qcow2', diskFormat: 'qcow2', memoryMiB: 2048, cpus: 2,
    forwards: [parseForward('8888')], qmpSocket: '/tmp/q', extraAppend: 'quiet', cmdline: ' console=ttyS1,115200 console=tty0 root=LABEL=RASPIROOT rw rootwait \n',
  });
  const text = args.join(' ');
  assert.match(text, /-M raspi3b -m 1024 -smp 4 -dtb bcm2837-rpi-3-b\.dtb -drive if=sd,file=d\.qcow2,format=qcow2/);
  assert.match(text, /-device usb-net,netdev=net0 -netdev user,id=net0,hostfwd=tcp:127\.0\.0\.1:8888-:8888/);
  // The PL011 is Bluetooth's on a Pi 3; the console (ttyS1) is QEMU's second serial port.
  assert.match(text, /-serial null -serial stdio/);
  assert.equal(args[args.indexOf('-append') + 1], 'console=ttyS1,115200 console=tty0 root=LABEL=RASPIROOT rw rootwait quiet');
  assert.equal(powerOfTwoAtLeast(3_000_000_000), 4 * 1024 ** 3);
  assert.equal(powerOfTwoAtLeast(8 * 1024 ** 3), 8 * 1024 ** 3);
});

test('the Pi 4 B board model: its fixed 2 GiB and four cores, the PL011 as console in place of the card\'s, what QEMU lacks out of the tree', () => {
  const [, args] = qemuCommand({
    machine: 'raspi4b', kernel: 'k', initrd: 'i', dtb: 'bcm2711-rpi-4-b.dtb', disk: 'd.qcow2', diskFormat: 'qcow2', memoryMiB: 1024, cpus: 2,
    forwards: [parseForward('8888')], qmpSocket: '/tmp/q', extraAppend: '', cmdline: 'console=ttyS1,115200 console=ttyAMA10,115200 console=tty0 root=LABEL=RASPIROOT rw cma=64M rootwait\n',
  });
  const text = args.join(' ');
  assert.match(text, /-M raspi4b -m 2048 -smp 4 -dtb bcm2711-rpi-4-b\.dtb -drive if=sd,file=d\.qcow2,format=qcow2/);
  assert.match(text, /-serial stdio -serial null/);
  assert.equal(args[args.indexOf('-append') + 1], 'root=LABEL=RASPIROOT rw cma=64M rootwait console=ttyAMA0,115200');
  assert.equal(boardDeviceTree(parseConfigTxt('arm_64bit=1\nupstream_kernel=1\n', ['pi4']), 'raspi4b'), 'bcm2711-rpi-4-b.dtb');
  const edits = PI_BOARD_MODELS.raspi4b.dtbEdits.map((e) => [...e.options, ...e.args].join(' '));
  for (const node of ['/soc/hdmi@7ef00700', '/soc/hdmi@7ef05700', '/emmc2-bus@fe000000/mmc@7e340000', '/soc/serial@7e215040']) {
    assert.ok(edits.includes(`-t s ${node} status disabled`), `${node} is not disabled: ${edits.join('; ')}`);
  }
  assert.ok(edits.includes('-d /soc/mmc@7e300000 mmc-pwrseq'));
  assert.ok(edits.includes('-r /soc/serial@7e201000/bluetooth'));
  assert.deepEqual(PI_BOARD_MODELS.raspi3b.dtbEdits, [], 'the Pi 3 B boots the card\'s tree as it is');
});

test('output names and compression commands', () => {
  const c = resolveConfig([]);
  const n = exportNames(c, '2026-01-02');
  assert.equal(n.compressed, 'pihub-2026-01-02-trixie-arm64.img.zst', 'zstd by default: a local build is flashed right away');
  assert.equal(n.sha256, 'pihub-2026-01-02-trixie-arm64.sha256');
  assert.equal(n.bmap, 'pihub-2026-01-02-trixie-arm64.img.bmap', 'bmaptool finds it beside .img and .img.xz');
  assert.equal(bmapDataBytes('<bmap version="2.0">\n<BlockSize> 4096 </BlockSize>\n<MappedBlocksCount> 3 </MappedBlocksCount>\n</bmap>'), 12288);
  assert.deepEqual(compressCommand('zstd', 'f.img'), ['zstd', ['-T0', '-1', '--keep', '--force', '-q', 'f.img']]);
  assert.deepEqual(compressCommand('xz', 'f.img'), ['xz', ['--threads=0', '-9', '--keep', '--force', 'f.img']]);
  assert.equal(compressCommand('none', 'f.img'), undefined);
  // Compressors keep the raw image: its checksum is read at the same time.
  for (const c of ['xz', 'zstd', 'gzip'] as const) assert.ok(compressCommand(c, 'f.img')![1].includes('--keep'), c);
});

test('an initramfs listing is checked for modules by name, whatever their compression and - or _', () => {
  const listing = 'usr/lib/modules/7.3.4+deb13-arm64/kernel/drivers/mmc/host/sdhci-brcmstb.ko.xz\nusr/lib/modules/7.3.4/kernel/drivers/regulator/gpio_regulator.ko\nusr/lib/modules/7.3.4/kernel/fs/ext4/ext4.ko.zst\n';
  assert.deepEqual(missingModules(listing, ['sdhci-brcmstb', 'gpio-regulator', 'ext4', 'bcm2835']), ['bcm2835']);
});
