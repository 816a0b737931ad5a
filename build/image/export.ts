// Export: genimage lays out an MBR image; mke2fs -d and mkfs.vfat/mcopy fill its partitions in
// place; then a block map, checksums, compression, package list and manifest. No loop devices, no mounts.
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BuildConfig } from '../config/schema.ts';
import type { Command } from '../core/exec.ts';
import type { Op, RunOp, RunState } from '../core/ops.ts';
import { UserError } from '../core/errors.ts';
import { sha256File } from '../core/files.ts';
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
/** `kib`, `inodes` and `offset` may be the plan's placeholders (`<size>`): known once the tree is measured. */
export function mke2fsCommand(image: string, offset: number | string, rootfs: string, kib: number | string, inodes: number | string, uuid: string): Command {
  // -m 0: until the first boot grows it, the free room is everybody's (the grow sets 5 % aside for root).
  return ['mke2fs', ['-q', '-F', '-t', 'ext4', '-L', ROOT_LABEL, '-U', uuid, '-N', String(inodes), '-m', '0', '-E', `offset=${offset}`, '-d', rootfs, image, `${kib}k`]];
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

/** What the export's operations learn as they run, for the later ones (in the run's scratch). */
export interface ExportState {
  layout?: Layout;
  size?: { bytes: number; inodes: number };
  usedBytes?: number;
  inodes?: number;
  packages?: string[];
  rawSha256?: string;
  compressedSha256?: string;
  /** Bytes of the raw image that hold data (what `bmaptool copy` writes). */
  dataBytes?: number;
  umask?: number;
}

/** The export's state in a run: made by its first operation. */
export function exportState(st: RunState): ExportState {
  return (st.scratch.export ??= {}) as ExportState;
}

export interface ExportInput {
  config: BuildConfig;
  paths: ExportPaths;
  /** Seeds the disk signature, volume id and UUID, so equal inputs give equal images (unknown in some dry runs). */
  seed: string | undefined;
  date: string;
  /** The build's part of the manifest, made when the export gets there (it may read the root file system). */
  manifest(st: RunState): BuildSummary;
}

const STEP = 'export';
/** The zero-length partition image genimage is given: it lays the partitions out, mke2fs and mkfs.vfat fill them. */
const EMPTY = 'empty.img';

/** The files the export writes to its folder's out/, in the order they are handed over. */
export function exportFiles(names: ImageNames): string[] {
  return [names.compressed, names.bmap, names.sha256, names.info, names.manifest];
}

/**
 * The export as the plan's operations: the dry run prints them and the build runs them. The raw
 * image holds the password hashes and the Wi-Fi key: while it is made, everything the export and
 * its tools (genimage, mke2fs, zstd, bmaptool) create is its owner's only (umask 077). The firmware
 * partition's files leave the root tree while mke2fs runs, and always come back.
 */
export function exportOps(o: ExportInput): Op[] {
  const { config, paths } = o;
  const names = exportNames(config, o.date);
  const dir = paths.dir;
  const out = join(dir, 'out');
  const raw = join(out, names.image);
  const bootfs = join(dir, 'bootfs');
  const firmwareDir = join(paths.rootfs, BOOTFS);
  const env = { MTOOLS_SKIP_CHECK: '1' };
  const run = (command: Command, more: Partial<RunOp> = {}): RunOp => ({ kind: 'run', command, step: STEP, env, ...more });
  const need = <T>(v: T | undefined, what: string): T => {
    if (v === undefined) throw new Error(`export: ${what} is not known yet`);
    return v;
  };
  const lay = (st: RunState) => need(exportState(st).layout, 'the layout');
  const compress = compressCommand(config.image.compression, raw);
  const volumeId = o.seed ? idFromHex(o.seed, 1) : '<volume id>';

  const firmwareAside: Op[] = [
    {
      kind: 'do',
      text: `move ${firmwareDir} aside (its files go to the FAT partition; the root keeps the mount point)`,
      fn: () => {
        if (!existsSync(join(firmwareDir, 'config.txt'))) {
          throw new UserError(`the root filesystem has no /${BOOTFS}/config.txt; the system stage must install raspi-firmware and a kernel before export`);
        }
        renameSync(firmwareDir, bootfs);
        mkdirSync(firmwareDir);
        // The mount point of the card's firmware partition, whatever the umask of the export.
        chmodSync(firmwareDir, 0o755);
      },
    },
    {
      kind: 'step',
      title: 'measure the root filesystem',
      body: [
        run(['du', ['--summarize', '--block-size=1', '--one-file-system', paths.rootfs]], { capture: (t, st) => { exportState(st).usedBytes = Number(t.split(/\s/)[0]); } }),
        run(['du', ['--summarize', '--inodes', '--one-file-system', paths.rootfs]], { capture: (t, st) => { exportState(st).inodes = Number(t.split(/\s/)[0]); } }),
        {
          kind: 'do',
          text: `size the root file system (what it holds + image.headroom_percent ${config.image.headroom_percent} % + image.headroom_mib ${config.image.headroom_mib} MiB); write genimage.cfg`,
          fn: (st) => {
            const s = exportState(st);
            s.size = rootSize({ usedBytes: need(s.usedBytes, 'the size of the tree'), inodes: need(s.inodes, 'the number of inodes'), headroomPercent: config.image.headroom_percent, headroomMiB: config.image.headroom_mib });
            s.layout = layout(s.size.bytes);
            st.note(`export: root file system ${Math.round(s.size.bytes / MiB)} MiB, ${s.size.inodes} inodes`);
            // Empty partition images: genimage writes the table only; the file systems go in below.
            writeFileSync(join(dir, EMPTY), '');
            writeFileSync(join(dir, 'genimage.cfg'), genimageConfig(names.image, s.layout, idFromHex(need(o.seed, 'the image key'), 2), EMPTY));
          },
        },
      ],
    },
    {
      kind: 'step',
      title: `${names.image}: partition table (genimage)`,
      body: [
        run(genimageCommand(dir)),
        { kind: 'do', text: `chmod 600 ${raw}`, hidden: true, fn: () => chmodSync(raw, 0o600) },
      ],
    },
    {
      kind: 'step',
      title: 'root file system (mke2fs -d)',
      body: [
        run(mke2fsCommand(raw, '<root offset>', paths.rootfs, '<size>', '<inodes>', '<uuid>'), {
          resolve: (st) => {
            const s = exportState(st);
            return mke2fsCommand(raw, lay(st).root.offset, paths.rootfs, need(s.size, 'the size').bytes / 1024, s.size!.inodes, uuidFromHex(need(o.seed, 'the image key')));
          },
        }),
      ],
    },
  ];

  return [
    {
      kind: 'try',
      body: [
        {
          kind: 'do',
          text: `empty ${dir}, its owner's only (umask 077 while the export runs: the raw image holds password hashes)`,
          fn: (st) => {
            exportState(st).umask = process.umask(0o077);
            rmSync(dir, { recursive: true, force: true });
            mkdirSync(dir, { recursive: true });
            // Made just now by this process (rm, then mkdir), so its mode is pihub's to set.
            chmodSync(dir, 0o700);
            for (const d of ['out', 'tmp', 'emptyroot']) mkdirSync(join(dir, d), { mode: 0o700 });
          },
        },
        {
          kind: 'try',
          body: firmwareAside,
          finally: [{
            kind: 'do',
            text: `move the firmware files back to ${firmwareDir}`,
            fn: () => {
              if (existsSync(bootfs)) {
                rmSync(firmwareDir, { recursive: true, force: true });
                renameSync(bootfs, firmwareDir);
              }
            },
          }],
        },
        {
          kind: 'step',
          title: 'firmware partition: FAT32 (mkfs.vfat, mcopy)',
          body: [
            run(mkfsVfatCommand(raw, BOOT_OFFSET, volumeId, BOOT_SIZE), { resolve: (st) => mkfsVfatCommand(raw, lay(st).boot.offset, idFromHex(need(o.seed, 'the image key'), 1), lay(st).boot.size) }),
            {
              kind: 'if',
              text: `${firmwareDir} holds files`,
              test: () => readdirSync(firmwareDir).length > 0,
              then: [run(mcopyCommand(raw, BOOT_OFFSET, [`${firmwareDir}/*`]), {
                resolve: (st) => mcopyCommand(raw, lay(st).boot.offset, readdirSync(firmwareDir).sort().map((e) => join(firmwareDir, e))),
              })],
            },
            {
              kind: 'do',
              text: `make ${names.image} the layout's full size`,
              fn: (st) => {
                // mke2fs writes the last blocks of its file system, but make sure the file has the image's size.
                const length = statSync(raw).size;
                if (length > lay(st).total) throw new Error(`${raw} is ${length} bytes, more than its layout's ${lay(st).total}`);
                truncateSync(raw, lay(st).total);
              },
            },
          ],
        },
        {
          kind: 'step',
          title: compress ? `block map and ${config.image.compression} compression` : 'block map',
          body: [
            // The checksum, the block map and the compressor read the raw image at the same time
            // (from the page cache). The block map comes from the image's holes: genimage, mke2fs
            // and mkfs.vfat leave every block they did not write as a hole.
            {
              kind: 'all',
              body: [
                { kind: 'do', text: `sha256 of ${names.image}`, fn: async (st) => { exportState(st).rawSha256 = await sha256File(raw); } },
                run(bmapCommand(raw, join(out, names.bmap))),
                ...(compress ? [run(compress)] : []),
              ],
            },
            {
              kind: 'do',
              text: `checksums → ${names.sha256}`,
              fn: async (st) => {
                const s = exportState(st);
                s.dataBytes = bmapDataBytes(readFileSync(join(out, names.bmap), 'utf8'));
                const rawSha256 = need(s.rawSha256, 'the checksum');
                s.compressedSha256 = compress ? await sha256File(join(out, names.compressed)) : rawSha256;
                const sums = [`${rawSha256}  ${names.image}`];
                if (compress) sums.push(`${s.compressedSha256}  ${names.compressed}`);
                sums.push(`${await sha256File(join(out, names.bmap))}  ${names.bmap}`);
                writeFileSync(join(out, names.sha256), `${sums.join('\n')}\n`);
              },
            },
          ],
        },
        {
          kind: 'step',
          title: 'package list and manifest',
          body: [
            run(['dpkg-query', [`--admindir=${join(paths.rootfs, 'var/lib/dpkg')}`, '--show', '--showformat=${Package}\\t${Version}\\t${Architecture}\\n']], {
              capture: (t, st) => { exportState(st).packages = t.split('\n').filter(Boolean).sort(); },
            }),
            {
              kind: 'do',
              text: `package list → ${names.info}; manifest → ${names.manifest}`,
              fn: (st) => {
                const s = exportState(st);
                const lines = need(s.packages, 'the package list');
                writeFileSync(join(out, names.info), `# Packages in ${names.image}: name, version, architecture\n${lines.join('\n')}\n`);
                writeManifest(join(out, names.manifest), {
                  ...o.manifest(st), image: names.image, file: names.compressed, compression: config.image.compression, raw_sha256: need(s.rawSha256, 'the checksum'),
                  sha256: need(s.compressedSha256, 'the checksum'), bmap: names.bmap, size: lay(st).total, data_bytes: need(s.dataBytes, 'the data size'), layout: lay(st), packages: lines.length,
                });
              },
            },
            ...(compress ? [{ kind: 'do', text: `remove ${names.image} (${names.compressed} holds it)`, fn: () => rmSync(raw) } satisfies Op] : []),
          ],
        },
      ],
      finally: [{
        kind: 'do',
        text: 'give the umask back',
        hidden: true,
        fn: (st) => {
          const u = exportState(st).umask;
          if (u !== undefined) process.umask(u);
        },
      }],
    },
  ];
}
