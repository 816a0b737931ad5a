import { test } from 'node:test';
import assert from 'node:assert/strict';
import { kernelCommandLine, parseForward, qemuCommand } from '../../build/boot/qemu.ts';
import { parseBootFile } from '../../build/boot/boot.ts';
import { parseLanService } from '../../build/boot/cli.ts';

// What Debian's raspi-firmware writes, plus what Raspberry Pi Imager appends for cloud-init.
const CARD = 'console=ttyS1,115200 console=tty0 root=LABEL=RASPIROOT rw fsck.repair=yes net.ifnames=0  rootwait cfg80211.ieee80211_regdom=GB ds=nocloud;i=rpi-imager-1764200000000';

test("the kernel gets the card's cmdline.txt, with QEMU's console and root in place of the Pi's", () => {
  const line = kernelCommandLine({ machine: 'virt', extraAppend: '', cmdline: CARD });
  assert.equal(line, 'root=LABEL=RASPIROOT console=ttyAMA0 rw fsck.repair=yes net.ifnames=0 rootwait cfg80211.ieee80211_regdom=GB ds=nocloud;i=rpi-imager-1764200000000');
  assert.doesNotMatch(line, /ttyS1|tty0/);
  assert.equal((line.match(/root=/g) ?? []).length, 1);
  assert.match(kernelCommandLine({ machine: 'virt', extraAppend: 'quiet', cmdline: CARD }), / quiet$/);
  // A card without cmdline.txt boots with pihub's defaults; the Pi 3 model boots with the card's line as it is.
  assert.equal(kernelCommandLine({ machine: 'virt', extraAppend: '' }), 'root=LABEL=RASPIROOT console=ttyAMA0 rw fsck.repair=yes net.ifnames=1');
  assert.equal(kernelCommandLine({ machine: 'raspi3b', extraAppend: '', cmdline: CARD }), CARD.replace(/\s+/g, ' '));
});

test('--boot-file FILE[:NAME] names a file on the boot partition', () => {
  assert.deepEqual(parseBootFile('/tmp/x/user-data'), { source: '/tmp/x/user-data', name: 'user-data' });
  assert.deepEqual(parseBootFile('/tmp/x/my-cmdline:cmdline.txt'), { source: '/tmp/x/my-cmdline', name: 'cmdline.txt' });
  assert.throws(() => parseBootFile('/tmp/x/a:b c'), /not a plain file name/);
  assert.throws(() => parseBootFile('/tmp/x/..'), /not a plain file name/);
});

test('--tap adds a second network card on the host tap device', () => {
  const base = {
    machine: 'virt' as const, kernel: 'k', initrd: 'i', disk: 'd.qcow2', diskFormat: 'qcow2' as const, memoryMiB: 2048, cpus: 2,
    forwards: [parseForward('8888')], qmpSocket: '/tmp/q', extraAppend: '',
  };
  const plain = qemuCommand(base)[1].join(' ');
  assert.doesNotMatch(plain, /tap/);
  const tapped = qemuCommand({ ...base, tap: 'pihubtap0' })[1].join(' ');
  assert.match(tapped, /-netdev tap,id=net1,ifname=pihubtap0,script=no,downscript=no -device virtio-net-pci,netdev=net1/);
  assert.match(tapped, /-netdev user,id=net0,hostfwd=tcp:127\.0\.0\.1:8888-:8888/);
});

test('--usb-drive plugs disk files in as USB drives: on an xHCI controller in virt, on the board\'s own USB bus', () => {
  const base = {
    machine: 'virt' as const, kernel: '/k', initrd: '/i', disk: '/d.qcow2', diskFormat: 'qcow2' as const, memoryMiB: 1024, cpus: 2,
    forwards: [parseForward('8888')], qmpSocket: '/tmp/q', extraAppend: '',
  };
  assert.doesNotMatch(qemuCommand(base)[1].join(' '), /usb/);
  const virt = qemuCommand({ ...base, usbDrives: ['/b/drive.img', '/b/two.qcow2'] })[1].join(' ');
  assert.match(virt, /-device qemu-xhci,id=usbdrives -drive if=none,id=usbdrive0,file=\/b\/drive\.img,format=raw -device usb-storage,drive=usbdrive0,bus=usbdrives\.0 -drive if=none,id=usbdrive1,file=\/b\/two\.qcow2,format=qcow2 -device usb-storage,drive=usbdrive1,bus=usbdrives\.0/);
  const board = qemuCommand({ ...base, machine: 'raspi3b', usbDrives: ['/b/drive.img'] })[1].join(' ');
  assert.match(board, /-drive if=none,id=usbdrive0,file=\/b\/drive\.img,format=raw -device usb-storage,drive=usbdrive0(?!,bus)/);
  assert.doesNotMatch(board, /xhci/);
  assert.match(qemuCommand({ ...base, usbDrives: ['/b/a,b.img'] })[1].join(' '), /file=\/b\/a,,b\.img,format=raw/);
});

test('--lan-service puts a machine on the card\'s network: each connection runs a command here, also offline', () => {
  const base = {
    machine: 'virt' as const, kernel: '/k', initrd: '/i', disk: '/d.qcow2', diskFormat: 'qcow2' as const, memoryMiB: 1024, cpus: 2,
    forwards: [parseForward('22')], qmpSocket: '/tmp/q', extraAppend: '', offline: true,
  };
  const nas = parseLanService('10.0.2.100:22=/usr/sbin/sshd -i -f /n/sshd_config');
  assert.deepEqual(nas, { address: '10.0.2.100', port: 22, command: '/usr/sbin/sshd -i -f /n/sshd_config' });
  const args = qemuCommand({ ...base, lanServices: [nas, parseLanService('10.0.2.200:631=nc -q0 127.0.0.1 631,x')] })[1];
  // One -netdev value: the rules follow restrict=on (which leaves explicit forwards working), a comma written twice.
  assert.equal(args[args.indexOf('-netdev') + 1], 'user,id=net0,restrict=on,hostfwd=tcp:127.0.0.1:22-:22,guestfwd=tcp:10.0.2.100:22-cmd:/usr/sbin/sshd -i -f /n/sshd_config,guestfwd=tcp:10.0.2.200:631-cmd:nc -q0 127.0.0.1 631,,x');
  const board = qemuCommand({ ...base, machine: 'raspi3b', lanServices: [nas] })[1].join(' ');
  assert.match(board, /-netdev user,id=net0,restrict=on,hostfwd=\S+,guestfwd=tcp:10\.0\.2\.100:22-cmd:\/usr\/sbin\/sshd -i/);
  for (const bad of ['10.0.2.2:22=sshd -i', '10.0.2.15:22=x', '192.168.1.5:22=x', '10.0.2.100=x', '10.0.2.100:0=x', '10.0.2.100:22=', '10.0.2.100:22=a\nb']) {
    assert.throws(() => parseLanService(bad), /--lan-service .*expected ADDRESS:PORT=COMMAND with an address from 10\.0\.2\.100/s, bad);
  }
});
