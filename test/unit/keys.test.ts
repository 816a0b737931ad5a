// The cache keys' code part: found from the imports, not listed by hand. One changed byte in an
// engine file changes exactly the keys whose code reaches that file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, cpSync } from 'node:fs';
import { join } from 'node:path';
import { TOOLS_ENTRIES } from '../../build/chroot/tools.ts';
import { engineClosure, engineDigest, keyDeclarations } from '../../build/plan/keys.ts';
import { IMAGE_ENTRIES, STAGE_ENTRIES } from '../../build/plan/plan.ts';
import { PROJECT_DIR } from '../../build/plan/inputs.ts';
import { scratch } from '../helpers/tmp.ts';

type Kind = 'stage' | 'image' | 'tools';
const ENTRIES: Record<Kind, string[]> = { stage: STAGE_ENTRIES, image: IMAGE_ENTRIES, tools: TOOLS_ENTRIES };

test('one changed byte in an engine file changes exactly the keys whose code reaches it', () => {
  const cases: Array<[string, Kind[]]> = [
    // The two files the hand-kept lists left out: default file modes (an image's key follows its
    // last stage's), and the manifest kept with a cached image.
    ['stages/load.ts', ['stage']],
    ['deploy/deploy.ts', ['image']],
    ['image/export.ts', ['image']],
    ['stages/steps/files.ts', ['stage']],
    // Scripts the engine runs, found by their names in its code.
    ['chroot/enter.sh', ['stage', 'image', 'tools']],
    ['chroot/native-prepare.sh', ['stage', 'tools']],
    // How declarations are read is code; the declarations themselves are data (below).
    ['config/declared.ts', ['stage', 'image']],
    ['config/nodes.ts', ['stage', 'image', 'tools']],
    ['config/settings.ts', []],
    // Code no stage or image depends on.
    ['boot/boot.ts', []],
    ['cli.ts', []],
    ['core/progress.ts', []],
  ];
  for (const [file, changes] of cases) {
    const root = scratch('pihub-engine-');
    cpSync(join(PROJECT_DIR, 'build'), root, { recursive: true });
    const digests = () => Object.fromEntries((Object.keys(ENTRIES) as Kind[]).map((k) => [k, engineDigest(ENTRIES[k], root)])) as Record<Kind, string>;
    const before = digests();
    appendFileSync(join(root, file), '\n');
    const after = digests();
    const changed = (Object.keys(ENTRIES) as Kind[]).filter((k) => before[k] !== after[k]);
    assert.deepEqual(changed, changes, `a byte added to build/${file} changes the keys of: ${changed.join(', ') || 'nothing'}`);
  }
});

test('the keys\' code is a closure: every module a file in it imports is in it, and so is each script it names', () => {
  const stage = engineClosure(STAGE_ENTRIES);
  for (const f of ['stages/step.ts', 'stages/values.ts', 'chroot/chroot.ts', 'chroot/tools.ts', 'stages/template.ts', 'cache/cache.ts', 'bases/apt.ts', 'bases/packages.ts', 'chroot/dpkg-split.sh', 'chroot/py3compile-native.py']) {
    assert.ok(stage.includes(f), `${f} is not in a stage's key`);
  }
  for (const f of ['build.ts', 'cli.ts', 'boot/boot.ts', 'image/export.ts', 'release/sbom.ts', 'plan/print.ts']) assert.ok(!stage.includes(f), `${f} is in a stage's key`);
});

test('a stage\'s key holds the declarations of the keys it reads, so a new setting changes only the keys of the stages that read it', () => {
  // config/settings.ts is data: no key's code includes it (the test above: a byte added there changes no key's code).
  for (const entries of Object.values(ENTRIES)) assert.ok(!engineClosure(entries).includes('config/settings.ts'));
  const d = keyDeclarations(['hub.port', 'users']) as Record<string, { kind: string; default?: unknown; item?: { children: Record<string, { hashedAs?: string; secret?: boolean }> } }>;
  assert.equal(d['hub.port']!.kind, 'leaf');
  assert.equal(d['hub.port']!.default, 8888);
  // How the stages see a user's password (its hash, under another name) is in the key of a stage that reads `users`.
  assert.ok(d.users!.item!.children.password!.secret);
  assert.ok(d.users!.item!.children.password!.hashedAs);
  assert.ok(!JSON.stringify(d).includes('"schema"'), 'a schema (code) in the key');
  assert.deepEqual(keyDeclarations([]), {});
  assert.throws(() => keyDeclarations(['no.such']), /no\.such is not a declared setting/);
});
