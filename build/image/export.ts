// Export: genimage lays out an MBR image; mke2fs -d and mkfs.vfat/mcopy fill its partitions in
// place; then a block map, checksums, compression, package list and manifest. No loop devices, no mounts.
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BuildConfig } from '../config/schema.ts';
import { formatCommand, type Command, type Runner } from '../exec.ts';
import { UserError } from '../errors.ts';
import { sha256File } from '../files.ts';
import { writeManifest, type BuildSummary } from './manifest.ts';
import { compressCommand, imageNames, type ImageNames } from './naming.ts';
import {
  BOOT_LABEL, BOOT_OFFSET, BOOT_SIZE, ROOT_LABEL, genimageConfig, idFromHex, layout, rootSize, uuidFromHex, MiB, type Layout,
} from './layout.ts';

export interface ExportPaths {
  rootfs: string;
  /** Scratch directory for this export, emptied first. */
  dir: string;
}

export function exportNames(config: BuildConfig, date: string): ImageNames {
  return imageNames({ name: config.name, ...config.base, compression: config.image.compression }, date);
}

export const BOOTFS = 'boot/firmware';

// The file systems are made in place, inside the image genimage laid out: no copy of them.
export function mke2fsCommand(image: string, offset: number, rootfs: string, bytes: number, inodes: number, uuid: string): Command {
  // -m 0: until the first boot grows it, the free room is everybody's (the grow sets 5 % aside for root).
  return ['mke2fs', ['-q', '-F', '-t', 'ext4', '-L', ROOT_LABEL, '-U', uuid, '-N', String(inodes), '-m', '0', '-E', `offset=${offset}`, '-d', rootfs, image, `${bytes / 1024}k`]];
}

export function mkfsVfatCommand(image: string, offset: number, volumeId: string, size: number): Command {
  return ['mkfs.vfat', ['-F', '32', '-n', BOOT_LABEL, '-i', volumeId, `--offset=${offset / 512}`, image, String(size / 1024)]];
}

export function mcopyCommand(image: string, offset: number, sources: readonly string[]): Command {
  return ['mcopy', ['-i', `${image}@@${offset}`, '-s', '-p', '-m', '-Q', ...sources, '::']];
}

export function genimageCommand(dir: string): Command {
  return [
    'genimage',
    ['--config', join(dir, 'genimage.cfg'), '--inputpath', dir, '--outputpath', join(dir, 'out'), '--tmppath', join(dir, 'tmp'), '--rootpath', join(dir, 'emptyroot')],
  ];
}

/** The block map of the raw image: which blocks hold data (from the sparse file's holes), with checksums. */
export function bmapCommand(image: string, bmap: string): Command {
  return ['bmaptool', ['create', '--output', bmap, image]];
}

/** Bytes of data a block map says must be written (the rest of the image is holes). */
export function bmapDataBytes(bmapXml: string): number {
  const field = (name: string) => Number(new RegExp(`<${name}>\\s*(\\d+)\\s*</${name}>`).exec(bmapXml)?.[1]);
  const bytes = field('MappedBlocksCount') * field('BlockSize');
  if (!Number.isFinite(bytes)) throw new Error('the block map has no MappedBlocksCount or BlockSize');
  return bytes;
}

export interface ExportResult {
  names: ImageNames;
  /** Files written to the export directory's out/ (names from `names`). */
  files: string[];
  layout: Layout;
  rawSha256: string;
  compressedSha256: string;
  /** Bytes of the raw image that hold data (what `bmaptool copy` writes). */
  dataBytes: number;
}

export interface ExportOptions {
  runner: Runner;
  config: BuildConfig;
  paths: ExportPaths;
  /** Seeds the disk signature, volume id and UUID, so equal inputs give equal images. */
  seed: string;
  date: string;
  onLine?: (line: string) => void;
  /** Registers undo work for an interruption. */
  onCleanup(fn: () => void): void;
  progress(title: string): void;
  manifest: BuildSummary;
}

const STEP = 'export';
/** The zero-length partition image genimage is given: it lays the partitions out, mke2fs and mkfs.vfat fill them. */
const EMPTY = 'empty.img';

/** Move the firmware partition's files out of the root tree while mke2fs runs; always moved back. */
function withBootfsAside<T>(rootfs: string, aside: string, onCleanup: (fn: () => void) => void, fn: () => Promise<T>): Promise<T> {
  const inRoot = join(rootfs, BOOTFS);
  if (!existsSync(join(inRoot, 'config.txt'))) {
    throw new UserError(
      `the root filesystem has no /${BOOTFS}/config.txt; the system stage must install raspi-firmware and a kernel before export`,
    );
  }
  renameSync(inRoot, aside);
  mkdirSync(inRoot);
  // The mount point of the card's firmware partition, whatever the umask of the export.
  chmodSync(inRoot, 0o755);
  const restore = () => {
    if (existsSync(aside)) {
      rmSync(inRoot, { recursive: true, force: true });
      renameSync(aside, inRoot);
    }
  };
  onCleanup(restore);
  return fn().finally(restore);
}

/**
 * The raw image holds the password hashes and the Wi-Fi key: while it is made, everything the
 * export and its tools (genimage, mke2fs, zstd, bmaptool) create is its owner's only.
 */
export async function exportImage(o: ExportOptions): Promise<ExportResult> {
  const umask = process.umask(0o077);
  try {
    return await exportPrivately(o);
  } finally {
    process.umask(umask);
  }
}

async function exportPrivately(o: ExportOptions): Promise<ExportResult> {
  const { runner, config, paths } = o;
  const run = (c: Command) => runner.run(c, { step: STEP, onLine: o.onLine, env: { MTOOLS_SKIP_CHECK: '1' } });
  const names = exportNames(config, o.date);
  rmSync(paths.dir, { recursive: true, force: true });
  mkdirSync(paths.dir, { recursive: true });
  // Made just now by this process (rm, then mkdir), so its mode is pihub's to set.
  chmodSync(paths.dir, 0o700);
  for (const d of ['out', 'tmp', 'emptyroot']) mkdirSync(join(paths.dir, d), { mode: 0o700 });
  const bootfs = join(paths.dir, 'bootfs');

  const out = join(paths.dir, 'out');
  const raw = join(out, names.image);
  const l = await withBootfsAside(paths.rootfs, bootfs, o.onCleanup, async () => {
    o.progress('measure the root filesystem');
    const used = await runner.run(['du', ['--summarize', '--block-size=1', '--one-file-system', paths.rootfs]], { step: STEP, capture: true });
    const inodes = await runner.run(['du', ['--summarize', '--inodes', '--one-file-system', paths.rootfs]], { step: STEP, capture: true });
    const size = rootSize({
      usedBytes: Number(used.stdout.split(/\s/)[0]),
      inodes: Number(inodes.stdout.split(/\s/)[0]),
      headroomPercent: config.image.headroom_percent,
      headroomMiB: config.image.headroom_mib,
    });
    const lay = layout(size.bytes);
    o.progress(`${names.image}: partition table (genimage)`);
    // Empty partition images: genimage writes the table only; the file systems go in below.
    writeFileSync(join(paths.dir, EMPTY), '');
    writeFileSync(join(paths.dir, 'genimage.cfg'), genimageConfig(names.image, lay, idFromHex(o.seed, 2), EMPTY));
    await run(genimageCommand(paths.dir));
    chmodSync(raw, 0o600);
    o.progress(`root file system: ${Math.round(size.bytes / MiB)} MiB (mke2fs -d)`);
    await run(mke2fsCommand(raw, lay.root.offset, paths.rootfs, size.bytes, size.inodes, uuidFromHex(o.seed)));
    return lay;
  });

  o.progress('firmware partition: FAT32 (mkfs.vfat, mcopy)');
  await run(mkfsVfatCommand(raw, l.boot.offset, idFromHex(o.seed, 1), l.boot.size));
  // bootfs was moved back into the root tree; copy from there.
  const firmwareDir = join(paths.rootfs, BOOTFS);
  const entries = readdirSync(firmwareDir).sort().map((e) => join(firmwareDir, e));
  if (entries.length) await run(mcopyCommand(raw, l.boot.offset, entries));
  // mke2fs writes the last blocks of its file system, but make sure the file has the image's size.
  const length = statSync(raw).size;
  if (length > l.total) throw new Error(`${raw} is ${length} bytes, more than its layout's ${l.total}`);
  truncateSync(raw, l.total);

  const compress = compressCommand(config.image.compression, raw);
  o.progress(compress ? `block map and ${config.image.compression} compression` : 'block map');
  // The checksum, the block map and the compressor read the raw image at the same time (from
  // the page cache). The block map comes from the image's holes: genimage, mke2fs and
  // mkfs.vfat leave every block they did not write as a hole.
  const [rawSha256] = await Promise.all([sha256File(raw), run(bmapCommand(raw, join(out, names.bmap))), compress ? run(compress) : undefined]);
  const dataBytes = bmapDataBytes(readFileSync(join(out, names.bmap), 'utf8'));
  const compressedSha256 = compress ? await sha256File(join(out, names.compressed)) : rawSha256;
  const sums = [`${rawSha256}  ${names.image}`];
  if (compress) sums.push(`${compressedSha256}  ${names.compressed}`);
  sums.push(`${await sha256File(join(out, names.bmap))}  ${names.bmap}`);
  writeFileSync(join(out, names.sha256), `${sums.join('\n')}\n`);

  const pkgs = await runner.run(
    ['dpkg-query', [`--admindir=${join(paths.rootfs, 'var/lib/dpkg')}`, '--show', '--showformat=${Package}\\t${Version}\\t${Architecture}\\n']],
    { step: STEP, capture: true },
  );
  const lines = pkgs.stdout.split('\n').filter(Boolean).sort();
  writeFileSync(join(out, names.info), `# Packages in ${names.image}: name, version, architecture\n${lines.join('\n')}\n`);
  writeManifest(join(out, names.manifest), {
    ...o.manifest, image: names.image, file: names.compressed, compression: config.image.compression, raw_sha256: rawSha256, sha256: compressedSha256,
    bmap: names.bmap, size: l.total, data_bytes: dataBytes, layout: l, packages: lines.length,
  });

  if (compress) rmSync(raw);
  return { names, files: [names.compressed, names.bmap, names.sha256, names.info, names.manifest], layout: l, rawSha256, compressedSha256, dataBytes };
}

/** What --dry-run prints for the export. */
export function describeExport(config: BuildConfig, paths: ExportPaths, date: string): string[] {
  const names = exportNames(config, date);
  const dir = paths.dir;
  const raw = join(dir, 'out', names.image);
  const compress = compressCommand(config.image.compression, raw);
  return [
    `move ${join(paths.rootfs, BOOTFS)} aside; measure the tree with du`,
    `${formatCommand(genimageCommand(dir))}   (the partition table; the partitions are filled in place)`,
    `${formatCommand(mke2fsCommand(raw, 0, paths.rootfs, 0, 0, 'UUID')).replace(' 0k', ' <size>k').replace('-N 0', '-N <inodes>').replace('offset=0', 'offset=<root offset>')}`,
    formatCommand(mkfsVfatCommand(raw, BOOT_OFFSET, 'VOLID', BOOT_SIZE)),
    `${formatCommand(mcopyCommand(raw, BOOT_OFFSET, [`${join(paths.rootfs, BOOTFS)}/*`]))}`,
    formatCommand(bmapCommand(raw, join(dir, 'out', names.bmap))),
    ...(compress ? [formatCommand(compress)] : []),
    `sha256 → ${names.sha256}; dpkg-query --show → ${names.info}; manifest → ${names.manifest}`,
    `SBOM (SPDX 2.3) from the root file system's dpkg database → ${names.base}.spdx.json`,
  ];
}
