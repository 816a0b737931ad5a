// BuildOptions for tests of the engine with a fake runner: a local stand-in for the archive's
// Release file, and scratch directories for everything a build writes.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BuildOptions } from '../../build/build.ts';
import { scratch } from './tmp.ts';

export const RELEASE_DATE = 'Sat, 10 Jan 2026 09:00:00 UTC';

/** A file:// mirror holding only the InRelease files of trixie and trixie-backports (the default
 * base's extra suite), with a Date: line (part of cache keys). */
export function fakeMirror(date = RELEASE_DATE, backportsDate = date): string {
  const dir = scratch('pihub-mirror-');
  for (const [suite, d] of [['trixie', date], ['trixie-backports', backportsDate]] as const) {
    mkdirSync(join(dir, 'dists', suite), { recursive: true });
    writeFileSync(join(dir, 'dists', suite, 'InRelease'), `Origin: Debian\nDate: ${d}\n`);
  }
  return `file://${dir}`;
}

export function buildOptions(over: Partial<BuildOptions> = {}): BuildOptions {
  const root = scratch('pihub-build-');
  return {
    overlays: [],
    sets: [`base.mirror=${fakeMirror()}`],
    dryRun: false,
    outDir: join(root, 'deploy'),
    workDir: join(root, 'work'),
    cacheDir: join(root, 'cache'),
    noCache: false,
    quiet: true,
    signal: new AbortController().signal,
    isTTY: false,
    env: {},
    ...over,
  };
}
