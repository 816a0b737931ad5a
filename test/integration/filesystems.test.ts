// Work dir, cache and deploy/ on different file systems (tmpfs mounts made for the test): the
// finished image moves into the cache and lands in deploy/ instead of failing with EXDEV.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Cache } from '../../build/cache/cache.ts';
import { moveFile, placeFile } from '../../build/core/files.ts';
import { scratch } from '../helpers/tmp.ts';

const mounts: string[] = [];
function tmpfs(): string {
  const dir = scratch('pihub-tmpfs-');
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64m', 'tmpfs', dir]);
  mounts.push(dir);
  return dir;
}
after(() => {
  for (const m of mounts.reverse()) execFileSync('umount', [m]);
});

const dev = (p: string) => statSync(p).dev;

test('an exported image moves into a cache on another file system, and from there into deploy/ on a third', async () => {
  const work = scratch('pihub-work-');
  const out = join(work, 'export', 'out');
  mkdirSync(out, { recursive: true });
  const files = ['x.img', 'x.sha256', 'x.json'];
  for (const f of files) writeFileSync(join(out, f), `${f} `.repeat(100_000));
  const cacheDir = tmpfs();
  const deploy = tmpfs();
  assert.notEqual(dev(work), dev(cacheDir), 'the test needs two file systems');

  const cache = new Cache(cacheDir);
  await cache.saveImage('k1', 'x.img', out, files);
  assert.deepEqual(readdirSync(out), [], 'moved, not copied and left behind');
  assert.ok(cache.hasImage('k1'));
  assert.deepEqual(readdirSync(cache.imagesDir).sort(), ['k1', 'k1.json']);
  for (const f of files) {
    placeFile(join(cache.imageDir('k1'), f), join(deploy, f), { mode: 0o644 });
    assert.equal(readFileSync(join(deploy, f), 'utf8'), `${f} `.repeat(100_000));
  }
  assert.deepEqual(readdirSync(deploy).sort(), [...files].sort(), 'no temporary name is left in deploy/');
});

test('moveFile across file systems: the destination appears complete or not at all', () => {
  const src = join(scratch('pihub-src-'), 'a.img');
  writeFileSync(src, 'image');
  const destDir = tmpfs();
  moveFile(src, join(destDir, 'a.img'));
  assert.equal(readFileSync(join(destDir, 'a.img'), 'utf8'), 'image');
  assert.throws(() => statSync(src), /ENOENT/);
  // A failed copy (the source vanished) leaves neither the final nor a temporary name.
  assert.throws(() => moveFile(join(destDir, 'missing'), join(scratch('pihub-dst-'), 'b.img')), /ENOENT/);
  assert.deepEqual(readdirSync(destDir), ['a.img']);
});
