// BuildOptions for tests of the engine with a fake runner: a local stand-in for the archive's
// Release file, and scratch directories for everything a build writes.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BuildOptions } from '../../build/build.ts';
import { scratch } from './tmp.ts';

export const RELEASE_DATE = 'Sat, 10 Jan 2026 09:00:00 UTC';

/** A file:// mirror holding only dists/trixie/InRelease with a Date: line (part of cache keys). */
export function fakeMirror(date = RELEASE_DATE): string {
  const dir = scratch('pihub-mirror-');
  mkdirSync(join(dir, 'dists/trixie'), { recursive: true });
  writeFileSync(join(dir, 'dists/trixie/InRelease'), `Origin: Debian\nDate: ${date}\n`);
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
