import { test } from 'node:test';
import assert from 'node:assert/strict';
import { alignUp, genimageConfig, layout, rootSize, uuidFromHex, idFromHex, MiB, ALIGN } from '../../build/image/layout.ts';
import { parseMbr, parseForward, qemuCommand, kernelCommandLine } from '../../build/boot/qemu.ts';
import { exportNames, compressCommand } from '../../build/image/export.ts';
import { resolveConfig } from '../../build/config/load.ts';

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
  const cfg = genimageConfig('x.img', l, 'deadbeef');
  assert.match(cfg, /partition-type = 0xC/);
  assert.match(cfg, /partition-type = 0x83/);
  assert.match(cfg, /disk-signature = 0xdeadbeef/);
});

test('ids from a digest are stable and well formed', () => {
  const hex = 'a'.repeat(64);
  assert.match(uuidFromHex(hex), /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-a[0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.equal(idFromHex(hex, 1), idFromHex(hex, 1));
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
});

test('output names and compression commands', () => {
  const c = resolveConfig([]);
  const n = exportNames(c, '2026-01-02');
  assert.equal(n.compressed, 'pihub-2026-01-02-trixie-arm64.img.xz');
  assert.equal(n.sha256, 'pihub-2026-01-02-trixie-arm64.sha256');
  assert.deepEqual(compressCommand('zstd', 'f.img'), ['zstd', ['-T0', '-3', '--keep', '--force', '-q', 'f.img']]);
  assert.equal(compressCommand('none', 'f.img'), undefined);
});
