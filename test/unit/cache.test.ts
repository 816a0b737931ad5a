// pihub manages only a folder that is a pihub cache: one it made (marked with its CACHEDIR.TAG),
// an empty one it was given, or one an earlier pihub made (known by its layout and salt). Any
// other folder is refused, and never emptied or chmod-ed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Cache, MARKER_FILE } from '../../build/cache/cache.ts';
import { scratch } from '../helpers/tmp.ts';

const mode = (p: string) => statSync(p).mode & 0o7777;

function foreign(): string {
  const dir = scratch('pihub-foreign-');
  chmodSync(dir, 0o755);
  mkdirSync(join(dir, 'images'));
  writeFileSync(join(dir, 'images', 'holiday.jpg'), 'photo');
  writeFileSync(join(dir, 'notes.txt'), 'mine');
  return dir;
}

test('a folder that is not a pihub cache is refused with one sentence (exit 2): nothing in it is removed, its mode is kept', () => {
  const dir = foreign();
  const cache = new Cache(dir);
  for (const act of [() => cache.ensure(), () => cache.clear(), () => cache.exists()]) {
    assert.throws(act, (err: Error & { exitCode?: number }) => {
      assert.equal(err.exitCode, 2);
      assert.equal(
        err.message,
        `the cache folder ${dir} (--cache-dir) is not a pihub cache: it holds \`notes.txt\` and has no CACHEDIR.TAG of pihub's; pihub keeps its cache in a folder of its own and \`pihub cache clear\` empties it, so choose an empty or new folder`,
      );
      return true;
    });
  }
  assert.equal(readFileSync(join(dir, 'images', 'holiday.jpg'), 'utf8'), 'photo');
  assert.equal(mode(dir), 0o755);
  assert.deepEqual(readdirSync(dir).sort(), ['images', 'notes.txt']);
  // Another program's cache tag is not pihub's.
  writeFileSync(join(dir, MARKER_FILE), 'Signature: 8a477f597d28d172789f06886806bc55\n# some other cache\n');
  assert.throws(() => cache.ensure(), /it has a CACHEDIR\.TAG that is not pihub's/);
  // Only pihub's entries, but no salt: not known to be pihub's.
  const bare = scratch('pihub-bare-');
  mkdirSync(join(bare, 'images'));
  assert.throws(() => new Cache(bare).clear(), /has neither pihub's CACHEDIR\.TAG nor the salt of a pihub cache/);
  assert.ok(existsSync(join(bare, 'images')));
  assert.throws(() => new Cache('/etc/passwd').ensure(), /the cache folder \/etc\/passwd \(--cache-dir\) is not a pihub cache: it is not a folder/);
});

test('a new folder becomes an owner-only cache; an empty one given keeps its mode, with its secrets in owner-only folders', () => {
  const fresh = join(scratch('pihub-new-'), 'a', 'cache');
  new Cache(fresh).ensure();
  assert.equal(mode(fresh), 0o700);
  assert.match(readFileSync(join(fresh, MARKER_FILE), 'utf8'), /^Signature: 8a477f597d28d172789f06886806bc55\n# This folder is a pihub cache/);
  assert.equal(new Cache(fresh).state().state, 'pihub');

  const empty = scratch('pihub-empty-');
  chmodSync(empty, 0o755);
  const cache = new Cache(empty);
  cache.ensure();
  cache.salt();
  assert.equal(mode(empty), 0o755, 'a folder pihub did not make is never chmod-ed');
  assert.equal(mode(cache.stagesDir), 0o700);
  assert.equal(mode(cache.imagesDir), 0o700);
  assert.equal(mode(join(empty, 'salt')), 0o600);
  chmodSync(empty, 0o750);
  cache.ensure();
  assert.equal(mode(empty), 0o750, 'nor later');
});

test('a cache an earlier pihub made (no marker: its layout and salt) is kept, marked, and can be cleared', () => {
  const dir = scratch('pihub-legacy-');
  for (const d of ['stages', 'images', 'debs/trixie-arm64', 'tools', 'locks']) mkdirSync(join(dir, d), { recursive: true });
  writeFileSync(join(dir, 'salt'), `${'ab'.repeat(32)}\n`);
  writeFileSync(join(dir, 'stages', 'k.tar.zst'), 'x');
  writeFileSync(join(dir, 'salt.partial-1234'), 'left by a build killed while it made the salt');
  const cache = new Cache(dir);
  assert.equal(cache.state().state, 'legacy');
  cache.ensure();
  assert.equal(cache.state().state, 'pihub');
  assert.equal(mode(dir), 0o700, 'as mkdtemp made it: untouched');
  cache.clear();
  assert.deepEqual(readdirSync(dir).sort(), [MARKER_FILE, 'locks', 'salt', 'salt.partial-1234']);
});
