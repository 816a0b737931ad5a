// Image file names and compression, in one place: what the build writes and what `pihub boot`
// and the release tools read back.
import type { Command } from '../core/exec.ts';

export type Compression = 'xz' | 'zstd' | 'gzip' | 'none';

interface Compressor {
  /** Added to `.img`. */
  suffix: string;
  /** The host program (for the host-tool check). */
  tool?: string;
  compress?: (file: string) => Command;
  /** To stdout. */
  decompress?: (file: string) => Command;
}

/**
 * Levels chosen by measurement (`npm run bench -- compression`): zstd -1 for local builds, fast
 * enough to pay on every rebuild; xz -9 for releases, where only the download size counts. Both
 * use every core (xz compresses independent blocks in parallel).
 */
export const COMPRESSORS: Record<Compression, Compressor> = {
  xz: {
    suffix: '.xz',
    tool: 'xz',
    compress: (f) => ['xz', ['--threads=0', '-9', '--keep', '--force', f]],
    decompress: (f) => ['xz', ['--decompress', '--stdout', '--threads=0', f]],
  },
  zstd: {
    suffix: '.zst',
    tool: 'zstd',
    compress: (f) => ['zstd', ['-T0', '-1', '--keep', '--force', '-q', f]],
    decompress: (f) => ['zstd', ['--decompress', '--stdout', '-q', f]],
  },
  gzip: {
    suffix: '.gz',
    tool: 'gzip',
    compress: (f) => ['gzip', ['--keep', '--force', '-6', f]],
    decompress: (f) => ['gzip', ['--decompress', '--stdout', f]],
  },
  none: { suffix: '' },
};

export function compressCommand(compression: Compression, file: string): Command | undefined {
  return COMPRESSORS[compression].compress?.(file);
}

/** The compression of an image file, by its name; undefined when it is not an image name. */
export function compressionOf(file: string): Compression | undefined {
  const found = (Object.entries(COMPRESSORS) as Array<[Compression, Compressor]>).find(([c, x]) => c !== 'none' && file.endsWith(`.img${x.suffix}`));
  return found ? found[0] : file.endsWith('.img') ? 'none' : undefined;
}

/** `deploy/pihub-2026-01-10-trixie-arm64.img.xz` → `deploy/pihub-2026-01-10-trixie-arm64` (where .json and .sha256 are). */
export function imageBase(file: string): string {
  const c = compressionOf(file);
  return c === undefined ? file : file.slice(0, -`.img${COMPRESSORS[c].suffix}`.length);
}

export interface ImageNames {
  base: string;
  image: string;
  compressed: string;
  /** bmaptool's block map: bmaptool finds X.img.bmap for X.img and X.img.xz alike. */
  bmap: string;
  sha256: string;
  info: string;
  manifest: string;
}

/** What a build writes: `<name>-<date>-<suite>-<arch>` plus .img[.zst], .img.bmap, .sha256, .info and .json. */
export function imageNames(o: { name: string; suite: string; architecture: string; compression: Compression }, date: string): ImageNames {
  const base = `${o.name}-${date}-${o.suite}-${o.architecture}`;
  const image = `${base}.img`;
  return {
    base,
    image,
    compressed: `${image}${COMPRESSORS[o.compression].suffix}`,
    bmap: `${image}.bmap`,
    sha256: `${base}.sha256`,
    info: `${base}.info`,
    manifest: `${base}.json`,
  };
}
