// Moving and placing files so that a final name only ever holds a complete file, also when the
// work directory, the cache and deploy/ are on different file systems (rename() then fails with
// EXDEV: a separate /home, a container's bind mount, --cache-dir on another disk).
import { createHash } from 'node:crypto';
import { closeSync, copyFileSync, createReadStream, fsyncSync, linkSync, openSync, renameSync, rmSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

/** A temporary name beside `final`, on its file system. */
export function partialName(final: string): string {
  return join(dirname(final), `.${basename(final)}.partial-${process.pid}`);
}

/** rename(), or across file systems: copy to a temporary name beside `dest`, rename, remove `src`. */
export function moveFile(src: string, dest: string): void {
  try {
    renameSync(src, dest);
    return;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
  }
  const tmp = partialName(dest);
  try {
    copyFileSync(src, tmp);
    renameSync(tmp, dest);
  } finally {
    rmSync(tmp, { force: true });
  }
  rmSync(src, { force: true });
}

/**
 * Give `src` a second name `dest`: a hard link where possible (no copy of a large image), else a
 * copy; either way under a temporary name first, so `dest` appears complete or not at all.
 */
export function placeFile(src: string, dest: string, prepare?: (tmp: string) => void): void {
  const tmp = partialName(dest);
  rmSync(tmp, { force: true });
  try {
    try {
      linkSync(src, tmp);
    } catch {
      copyFileSync(src, tmp);
    }
    prepare?.(tmp);
    renameSync(tmp, dest);
  } finally {
    // rename() does nothing when both names are links to one file (a reused image already in
    // deploy/): then the temporary name is still there.
    rmSync(tmp, { force: true });
  }
}

export function sha256File(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    createReadStream(path, { highWaterMark: 4 << 20 })
      .on('data', (c) => h.update(c))
      .on('end', () => resolve(h.digest('hex')))
      .on('error', reject);
  });
}

/** Make a file's data durable before a name or a record claims it is complete. */
export function fsyncPath(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
