// Where a build starts: from the work tree, from the last sound cache entry, or with the whole
// image reused; a damaged entry is discarded with a warning and made again. Fake runner only.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { build, type BuildOptions } from '../../build/build.ts';
import { loadInputs } from '../../build/plan/inputs.ts';
import { stageKeys } from '../../build/plan/plan.ts';
import { ARCHIVE } from '../../build/plan/keys.ts';
import { Cache } from '../../build/cache/cache.ts';
import { formatCommand } from '../../build/core/exec.ts';
import { FakeRunner, fakeDeps } from '../helpers/fakes.ts';
import { buildOptions, RELEASE_DATE } from '../helpers/options.ts';

/** The keys a build of these options will use (the cache's salt is made here, as the build would). */
function plannedKeys(o: BuildOptions): { stages: Record<string, string>; image: string } {
  const inputs = loadInputs(o);
  const keys = stageKeys(inputs, RELEASE_DATE, new Cache(o.cacheDir).salt(), { [`${ARCHIVE} trixie-backports`]: RELEASE_DATE });
  return { stages: Object.fromEntries(inputs.stages.map((s, i) => [s.id, keys.stages[i]!])), image: keys.image };
}

/** A stage entry as saveStage writes it; `damage` changes the data after its checksum was recorded. */
function stageEntry(cache: Cache, key: string, id: string, damage = false): void {
  cache.ensure();
  const data = `snapshot of ${id}`;
  writeFileSync(cache.snapshotPath(key), damage ? data.toUpperCase() : data);
  const sum = { bytes: data.length, sha256: createHash('sha256').update(data).digest('hex') };
  const now = new Date().toISOString();
  writeFileSync(join(cache.stagesDir, `${key}.json`), JSON.stringify({ key, kind: 'stage', label: id, created: now, lastUsed: now, bytes: sum.bytes, checksums: { snapshot: sum } }));
}

const isTools = (c: readonly [string, readonly string[]]) => formatCommand(c).includes('--include=python3-minimal');

test('a damaged cached stage is discarded with a warning; the build restores the last sound one before it', async () => {
  const o = buildOptions();
  const keys = plannedKeys(o);
  const cache = new Cache(o.cacheDir);
  stageEntry(cache, keys.stages['00-bootstrap']!, '00-bootstrap');
  stageEntry(cache, keys.stages['10-system']!, '10-system', true);
  const restore00 = `tar --extract --file=${cache.snapshotPath(keys.stages['00-bootstrap']!)}`;
  const runner = new FakeRunner().expect(restore00).walks().expect(isTools);
  // Past the restore, stage 10's first command is refused: the build got exactly that far.
  await assert.rejects(build(o, fakeDeps(runner)), /unexpected command: .*native-tools\.sh on/);
  assert.deepEqual(runner.calls.map((c) => formatCommand(c).slice(0, restore00.length)).filter((c) => c.startsWith('tar')), [restore00]);
  assert.equal(cache.hasStage(keys.stages['10-system']!), false, 'the damaged entry is gone');
  assert.equal(existsSync(cache.snapshotPath(keys.stages['10-system']!)), false);
  assert.match(readFileSync(join(o.outDir, 'pihub.log'), 'utf8'), /warning: the cached stage 10-system \(key [0-9a-f]{12}\) is damaged: snapshot does not match its recorded sha256; discarded, it is made again/);
  assert.equal(existsSync(join(o.workDir, 'pihub', 'rootfs.key')), false, 'stage 10 had begun to change the tree: no longer marked as a finished stage');
});

/**
 * A cached image (one file, `name`) the build must not use, beside a cached last stage: the build
 * restores that stage and exports again (the fake restore leaves an empty tree, so the export
 * stops at its first check). Returns the build's log.
 */
async function rejectedImage(name: string, damage: boolean): Promise<string> {
  const o = buildOptions();
  const keys = plannedKeys(o);
  const cache = new Cache(o.cacheDir);
  stageEntry(cache, keys.stages['99-finalise']!, '99-finalise');
  const out = join(o.cacheDir, 'export-out');
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, name), 'image');
  await cache.saveImage(keys.image, name, out, [name]);
  if (damage) writeFileSync(join(cache.imageDir(keys.image), name), 'imagf');
  const runner = new FakeRunner().expect(`tar --extract --file=${cache.snapshotPath(keys.stages['99-finalise']!)}`).walks();
  await assert.rejects(build(o, fakeDeps(runner)), /the root filesystem has no \/boot\/firmware\/config\.txt/);
  assert.equal(runner.calls.filter((c) => c[0] !== 'find').length, 1);
  assert.equal(cache.hasImage(keys.image), false, 'the entry is gone');
  return readFileSync(join(o.outDir, 'pihub.log'), 'utf8');
}

test('a damaged cached image is discarded; the build restores the last stage and exports again', async () => {
  const log = await rejectedImage('pihub-2026-01-02-trixie-arm64.img.zst', true);
  assert.match(log, /warning: the cached image \(key [0-9a-f]{12}\) is damaged: pihub-2026-01-02-trixie-arm64\.img\.zst does not match its recorded sha256/);
});

/** The tools root's mmdebstrap (made by the first stage that runs) succeeds; anything else is refused. */
const toolsOnly = () => new FakeRunner().expect(isTools);
// The stage after 20-jupyterhub: 22-proxy, its script (the native tools first).
const firstStepAfter20 = /unexpected command: .*--ro-bind=\S+\/stages\/22-proxy:\/run\/pihub\/stage .* -- \/bin\/sh \/run\/pihub\/engine\/native-tools\.sh on/;

test('the work tree holds stage 20 already: nothing is restored, the build goes on with the next stage', async () => {
  const o = buildOptions();
  const keys = plannedKeys(o);
  const work = join(o.workDir, 'pihub');
  mkdirSync(join(work, 'rootfs'), { recursive: true });
  writeFileSync(join(work, 'rootfs.key'), keys.stages['20-jupyterhub']!);
  const runner = toolsOnly();
  await assert.rejects(build(o, fakeDeps(runner)), firstStepAfter20);
  assert.equal(runner.calls.length, 1, 'only the tools root was made: no restore, no earlier stage');
  const log = readFileSync(join(o.outDir, 'pihub.log'), 'utf8');
  assert.doesNotMatch(log, /restore from cache/);
  assert.match(log, /stage 22-proxy: 00-run-chroot/);
});

test('the last cached stage is restored (not an earlier one), then the build goes on after it', async () => {
  const o = buildOptions();
  const keys = plannedKeys(o);
  const cache = new Cache(o.cacheDir);
  stageEntry(cache, keys.stages['10-system']!, '10-system');
  stageEntry(cache, keys.stages['20-jupyterhub']!, '20-jupyterhub');
  const restore20 = `tar --extract --file=${cache.snapshotPath(keys.stages['20-jupyterhub']!)} --directory=${join(o.workDir, 'pihub', 'rootfs')} `;
  const runner = toolsOnly().expect(restore20).walks();
  await assert.rejects(build(o, fakeDeps(runner)), firstStepAfter20);
  assert.deepEqual(runner.calls.map((c) => formatCommand(c)).filter((c) => c.startsWith('tar')).map((c) => c.slice(0, restore20.length)), [restore20]);
  assert.match(readFileSync(join(o.outDir, 'pihub.log'), 'utf8'), /stage 20-jupyterhub: restore from cache\n(.|\n)*stage 22-proxy: 00-run-chroot/);
});

test('an image of the very same inputs is reused, under the names it was made with: no command runs, the files land in deploy/ (the image private)', async () => {
  const o = buildOptions();
  const keys = plannedKeys(o);
  const cache = new Cache(o.cacheDir);
  const out = join(o.cacheDir, 'export-out');
  mkdirSync(out, { recursive: true });
  // Made on an earlier day: today's build (SOURCE_DATE_EPOCH 0: 1970-01-01) reuses it as it is.
  const files = ['pihub-2026-01-02-trixie-arm64.img.zst', 'pihub-2026-01-02-trixie-arm64.sha256', 'pihub-2026-01-02-trixie-arm64.json'];
  for (const f of files) writeFileSync(join(out, f), f);
  await cache.saveImage(keys.image, files[0]!, out, files);
  const result = await build({ ...o, env: { SOURCE_DATE_EPOCH: '0' } }, fakeDeps(new FakeRunner()));
  assert.ok(!('plan' in result));
  assert.equal(result.reusedImage, true);
  assert.deepEqual(result.ranStages, []);
  assert.equal(result.image, join(o.outDir, files[0]!));
  assert.deepEqual(readdirSync(o.outDir).filter((f) => f.startsWith('pihub-') || f === 'pihub.log').sort(), [...files, 'pihub.log'].sort());
  assert.equal((statSync(join(o.outDir, files[0]!)).mode & 0o777).toString(8), '600');
  assert.equal((statSync(join(o.outDir, files[2]!)).mode & 0o777).toString(8), '644');
});

test('a cached image under a name this build does not give is discarded with a note and made again', async () => {
  const log = await rejectedImage('other-2026-01-02.img.xz', false);
  assert.match(log, /warning: the cached image \(key [0-9a-f]{12}\) is named other-2026-01-02\.img\.xz, not as this build names its image; discarded, it is made again/);
});
