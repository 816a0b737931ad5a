// Real mke2fs, mkfs.vfat, mcopy, genimage, sfdisk, fsck on a small root filesystem, without emulation.
import { test } from 'node:test';
import { scratch } from '../helpers/tmp.ts';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, readSync, statSync, symlinkSync, writeFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { exportNames, exportOps, exportState } from '../../build/image/export.ts';
import type { BuildSummary } from '../../build/image/manifest.ts';
import type { BuildConfig } from '../../build/config/schema.ts';
import type { Runner } from '../../build/core/exec.ts';
import { holderFor } from '../../build/core/lock.ts';
import { runOps } from '../../build/plan/run.ts';
import { resolveConfig, setLayer } from '../../build/config/load.ts';
import { createRunner } from '../../build/core/exec.ts';
import { BOOT_OFFSET, MiB } from '../../build/image/layout.ts';
import { COMPRESSORS, compressionOf, imageNames } from '../../build/image/naming.ts';

/** The export's operations, run as a build runs them (plan/execute.ts). */
async function exportImage(o: { runner: Runner; config: BuildConfig; paths: { rootfs: string; dir: string }; seed: string; date: string; manifest: BuildSummary }) {
  const st = { runner: o.runner, values: {}, scratch: {}, note: () => {}, holder: holderFor('export test') };
  await runOps(exportOps({ ...o, manifest: () => o.manifest }), st);
  const x = exportState(st);
  return { names: exportNames(o.config, o.date), rawSha256: x.rawSha256!, compressedSha256: x.compressedSha256!, dataBytes: x.dataBytes! };
}

function smallRootfs(): string {
  const root = scratch('pihub-rootfs-');
  for (const d of ['etc', 'root', 'home/alice', 'boot/firmware/overlays', 'usr/bin', 'var/lib/dpkg']) mkdirSync(join(root, d), { recursive: true });
  writeFileSync(join(root, 'etc/hostname'), 'pihub\n');
  writeFileSync(join(root, 'root/secret'), 'x\n');
  chmodSync(join(root, 'root'), 0o700);
  chmodSync(join(root, 'root/secret'), 0o600);
  writeFileSync(join(root, 'home/alice/notes.txt'), 'hello\n');
  chownSync(join(root, 'home/alice'), 1000, 1000);
  chownSync(join(root, 'home/alice/notes.txt'), 1000, 1000);
  symlinkSync('usr/bin', join(root, 'bin'));
  writeFileSync(join(root, 'boot/firmware/config.txt'), 'arm_64bit=1\n');
  writeFileSync(join(root, 'boot/firmware/cmdline.txt'), 'root=LABEL=RASPIROOT rw\n');
  writeFileSync(join(root, 'boot/firmware/overlays/x.dtbo'), Buffer.alloc(1000, 7));
  writeFileSync(join(root, 'var/lib/dpkg/status'), 'Package: base-files\nStatus: install ok installed\nVersion: 13.8\nArchitecture: arm64\n\n');
  return root;
}

function readAt(file: string, offset: number, length: number): Buffer {
  const fd = openSync(file, 'r');
  const buf = Buffer.alloc(length);
  readSync(fd, buf, 0, length, offset);
  closeSync(fd);
  return buf;
}

test('export assembles an MBR image with a FAT32 boot and an ext4 root, both valid, no loop devices', { timeout: 300_000 }, async () => {
  const rootfs = smallRootfs();
  const dir = scratch('pihub-export-');
  const config = resolveConfig([setLayer(['name=small', 'image.compression=zstd', 'image.headroom_mib=16'])]);
  const log: string[] = [];
  const loopsBefore = execFileSync('losetup', ['-a']).toString();
  const result = await exportImage({
    runner: createRunner({ write: (t) => log.push(t) }),
    config,
    paths: { rootfs, dir },
    seed: 'ab'.repeat(32),
    date: '2026-01-02',
    manifest: { name: 'small', date: '2026-01-02', suite: 'trixie', architecture: 'arm64', hub: { port: 8000 } },
  });
  assert.equal(execFileSync('losetup', ['-a']).toString(), loopsBefore, 'no loop device was used');
  const out = join(dir, 'out');
  assert.deepEqual(readdirSync(out).sort(), [
    'small-2026-01-02-trixie-arm64.img.bmap',
    'small-2026-01-02-trixie-arm64.img.zst',
    'small-2026-01-02-trixie-arm64.info',
    'small-2026-01-02-trixie-arm64.json',
    'small-2026-01-02-trixie-arm64.sha256',
  ]);
  const img = join(dir, 'check.img');
  execFileSync('zstd', ['-d', '-q', '-f', '-o', img, join(out, result.names.compressed)]);
  assert.equal(execFileSync('sha256sum', [img]).toString().split(' ')[0], result.rawSha256);

  const table = JSON.parse(execFileSync('sfdisk', ['--json', img]).toString()) as {
    partitiontable: { label: string; sectorsize?: number; partitions: Array<{ start: number; size: number; type: string; bootable?: boolean }> };
  };
  assert.equal(table.partitiontable.label, 'dos');
  const [boot, root] = table.partitiontable.partitions;
  assert.equal(boot!.type, 'c');
  assert.equal(boot!.bootable, true);
  assert.equal(root!.type, '83');
  assert.equal(boot!.start * 512, BOOT_OFFSET);
  assert.equal((root!.start * 512) % (4 * MiB), 0, 'root is aligned to 4 MiB');
  assert.ok(boot!.start + boot!.size <= root!.start);

  // Both partitions of a disk image as files of their own, each checked by its fsck.
  const partitions = (disk: string, name: string) => {
    const files = { boot: join(dir, `${name}-boot.part`), root: join(dir, `${name}-root.part`) };
    writeFileSync(files.boot, readAt(disk, boot!.start * 512, boot!.size * 512));
    writeFileSync(files.root, readAt(disk, root!.start * 512, root!.size * 512));
    execFileSync('fsck.vfat', ['-n', files.boot]);
    execFileSync('e2fsck', ['-fn', files.root]);
    return files;
  };
  const { boot: bootImg, root: rootImg } = partitions(img, 'image');
  assert.match(execFileSync('blkid', ['-o', 'export', bootImg]).toString(), /LABEL_FATBOOT=RASPIFIRM|LABEL=RASPIFIRM/);
  assert.match(execFileSync('blkid', ['-o', 'export', rootImg]).toString(), /LABEL=RASPIROOT/);

  const env = { ...process.env, MTOOLS_SKIP_CHECK: '1' };
  const fat = execFileSync('mdir', ['-b', '-/', '-i', bootImg, '::'], { env }).toString();
  assert.match(fat, /config\.txt/);
  assert.match(fat, /overlays\/x\.dtbo/);
  const stat = (p: string) => execFileSync('debugfs', ['-R', `stat ${p}`, rootImg], { stdio: ['ignore', 'pipe', 'ignore'] }).toString();
  assert.match(stat('/root'), /Mode: +0700/);
  assert.match(stat('/root/secret'), /Mode: +0600/);
  assert.match(stat('/home/alice/notes.txt'), /User: +1000 +Group: +1000/);
  assert.match(stat('/bin'), /Type: symlink/);
  const firmware = execFileSync('debugfs', ['-R', 'ls -l /boot/firmware', rootImg], { stdio: ['ignore', 'pipe', 'ignore'] }).toString();
  assert.doesNotMatch(firmware, /config\.txt/, 'the firmware files live on the FAT partition only');
  assert.match(readdirSync(join(rootfs, 'boot/firmware')).join(','), /config\.txt/, 'the rootfs was put back as it was');

  const info = execFileSync('cat', [join(out, result.names.info)]).toString();
  assert.match(info, /^base-files\t13\.8\tarm64$/m);
  assert.ok(log.join('').includes('$ genimage --config'), 'genimage assembled the image');

  // The block map: bmaptool writes only the blocks that hold data. Onto a "used card" full of
  // old bytes, that must still give the image's data and two clean file systems.
  const sums = readFileSync(join(out, result.names.sha256), 'utf8');
  const bmapSum = execFileSync('sha256sum', [join(out, result.names.bmap)]).toString().split(' ')[0];
  assert.equal(sums, `${result.rawSha256}  ${result.names.image}\n${result.compressedSha256}  ${result.names.compressed}\n${bmapSum}  ${result.names.bmap}\n`);
  const size = statSync(img).size;
  assert.ok(result.dataBytes > 0 && result.dataBytes < size / 4, `the block map maps ${result.dataBytes} of ${size} bytes`);
  const card = join(dir, 'card.img');
  writeFileSync(card, Buffer.alloc(size, 0xa5));
  execFileSync('bmaptool', ['-q', 'copy', join(out, result.names.compressed), card]);
  const ranges = [...readFileSync(join(out, result.names.bmap), 'utf8').matchAll(/<Range[^>]*>\s*(\d+)(?:-(\d+))?\s*<\/Range>/g)];
  assert.ok(ranges.length > 0);
  let mapped = 0;
  for (const [, first, last] of ranges) {
    const from = Number(first) * 4096;
    const length = (Number(last ?? first) - Number(first) + 1) * 4096;
    mapped += length;
    assert.ok(readAt(card, from, length).equals(readAt(img, from, length)), `blocks ${first}-${last ?? first} differ after bmaptool copy`);
  }
  assert.equal(mapped, result.dataBytes);
  const { boot: cardBoot, root: cardRoot } = partitions(card, 'card');
  assert.equal(execFileSync('debugfs', ['-R', 'cat /etc/hostname', cardRoot], { stdio: ['ignore', 'pipe', 'ignore'] }).toString(), 'pihub\n');
  assert.match(execFileSync('mtype', ['-i', cardBoot, '::config.txt'], { env }).toString(), /^arm_64bit=1/);
});

test('every compression: the file name the build gives it, and back to the raw image with the decompressor boot uses', { timeout: 60_000 }, () => {
  const dir = scratch('pihub-compress-');
  const raw = Buffer.alloc(3 * MiB, 'pihub');
  for (const c of ['xz', 'zstd', 'gzip'] as const) {
    const names = imageNames({ name: 'x', suite: 'trixie', architecture: 'arm64', compression: c }, '2026-01-02');
    const img = join(dir, names.image);
    writeFileSync(img, raw);
    const [prog, args] = COMPRESSORS[c].compress!(img);
    execFileSync(prog, [...args]);
    const packed = join(dir, names.compressed);
    assert.equal(compressionOf(packed), c);
    assert.ok(readFileSync(img).equals(raw), `${c} kept the raw image`);
    const [dprog, dargs] = COMPRESSORS[c].decompress!(packed);
    assert.ok(execFileSync(dprog, [...dargs], { maxBuffer: 8 * MiB }).equals(raw), `${c} round trip`);
  }
});

test('while it is exported, the raw image (password hashes, Wi-Fi key) and its scratch folder are the owner\'s only; the umask is given back', { timeout: 300_000 }, async () => {
  const rootfs = smallRootfs();
  const dir = join(scratch('pihub-export-'), 'export');
  const config = resolveConfig([setLayer(['name=private', 'image.compression=zstd', 'image.headroom_mib=16'])]);
  const raw = join(dir, 'out', 'private-2026-01-02-trixie-arm64.img');
  const real = createRunner({ write: () => {} });
  const seen: string[] = [];
  const mode = (p: string) => (statSync(p).mode & 0o777).toString(8);
  // Look at the scratch folder and the raw image before and after every command of the export.
  const runner = {
    async run(...args: Parameters<typeof real.run>) {
      const look = (when: string) => {
        seen.push(`${when} ${args[0][0]}: dir ${mode(dir)}${existsSync(raw) ? ` raw ${mode(raw)}` : ''}`);
      };
      look('before');
      const r = await real.run(...args);
      look('after');
      return r;
    },
  };
  const umask = process.umask();
  await exportImage({ runner, config, paths: { rootfs, dir }, seed: 'cd'.repeat(32), date: '2026-01-02', manifest: { name: 'private', date: '2026-01-02', suite: 'trixie', architecture: 'arm64', hub: { port: 8000 } } });
  assert.equal(process.umask(), umask, 'the umask is given back');
  assert.ok(seen.some((s) => s.includes(' raw ')), seen.join('\n'));
  for (const s of seen) assert.match(s, /: dir 700( raw 600)?$/, seen.join('\n'));
  assert.equal(statSync(join(rootfs, 'boot/firmware')).mode & 0o777, 0o755, 'the firmware mount point keeps its mode');
  for (const f of readdirSync(join(dir, 'out'))) assert.equal(statSync(join(dir, 'out', f)).mode & 0o077, 0, `${f} is the owner's only`);
});
