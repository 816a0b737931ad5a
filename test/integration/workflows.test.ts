// The GitHub workflows: valid for GitHub (checked by action-validator, a real workflow schema
// validator), calling the ci/ scripts that run here too, and never exposing the stage cache;
// ci/publish.sh publishes only a release folder whose checksums hold.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { accessSync, chmodSync, constants, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { parse } from 'yaml';
import { PROJECT_DIR } from '../../build/plan/inputs.ts';
import { scratch } from '../helpers/tmp.ts';

const WORKFLOWS = join(PROJECT_DIR, '.github/workflows');
const VALIDATOR = join(PROJECT_DIR, 'node_modules/.bin/action-validator');

function validate(file: string): { code: number; output: string } {
  const r = spawnSync(VALIDATOR, [file], { encoding: 'utf8' });
  return { code: r.status ?? -1, output: `${r.stdout}${r.stderr}` };
}

type Workflow = { jobs: Record<string, { steps: Array<{ run?: string; uses?: string; with?: Record<string, string> }> }> };
const workflows = () => readdirSync(WORKFLOWS).filter((f) => f.endsWith('.yml')).sort();
const steps = (f: string) => Object.values((parse(readFileSync(join(WORKFLOWS, f), 'utf8')) as Workflow).jobs).flatMap((j) => j.steps);

test('ci.yml and release.yml are valid GitHub workflows', () => {
  assert.deepEqual(workflows(), ['ci.yml', 'release.yml']);
  for (const f of workflows()) {
    const r = validate(join(WORKFLOWS, f));
    assert.equal(r.code, 0, `${f}:\n${r.output}`);
  }
});

test('the validator rejects a broken workflow (so a pass means something)', () => {
  const dir = scratch('pihub-wf-');
  const bad = join(dir, 'bad.yml');
  writeFileSync(bad, 'name: bad\non: push\njobs:\n  x:\n    runs-on: ubuntu-24.04\n    steps:\n      - uses: actions/checkout@v4\n        runn: echo typo\n');
  const r = validate(bad);
  assert.notEqual(r.code, 0, r.output);
});

test('the workflows run the ci/ scripts, which exist and are executable', () => {
  const scripts = new Set<string>();
  for (const f of workflows()) {
    for (const s of steps(f)) for (const m of (s.run ?? '').matchAll(/\bci\/[\w.-]+/g)) scripts.add(m[0]);
  }
  assert.deepEqual([...scripts].sort(), ['ci/cache-owner.sh', 'ci/release.ts', 'ci/setup-host.sh', 'ci/test-all.sh']);
  for (const s of scripts) {
    if (s.endsWith('.sh')) accessSync(join(PROJECT_DIR, s), constants.X_OK);
    else statSync(join(PROJECT_DIR, s));
  }
  const release = steps('release.yml').map((s) => s.run ?? '').join('\n');
  assert.match(release, /ci\/release\.ts --tag "\$GITHUB_REF_NAME" --out release --publish/);
  assert.doesNotMatch(release, /softprops|action-gh-release/, 'publishing happens in ci/release.ts, after the checks');
});

test('no workflow makes the stage cache readable by others', () => {
  for (const f of workflows()) {
    const text = readFileSync(join(WORKFLOWS, f), 'utf8');
    assert.doesNotMatch(text, /chmod[^\n]*(a\+r|o\+r|755|644)/, f);
    const cache = steps(f).find((s) => s.uses?.startsWith('actions/cache'));
    assert.equal(cache?.with?.path, '/var/cache/pihub');
    const runs = steps(f).map((s) => s.run ?? '');
    assert.ok(runs.indexOf('sudo ci/cache-owner.sh prepare') < runs.indexOf('sudo ci/cache-owner.sh save'));
  }
});

test('ci/cache-owner.sh hands the cache to the runner, readable by nobody else', () => {
  const dir = join(scratch('pihub-cache-owner-'), 'cache');
  const env = { ...process.env, PIHUB_CACHE_DIR: dir };
  const script = join(PROJECT_DIR, 'ci/cache-owner.sh');
  execFileSync(script, ['prepare', '65534', '65534'], { env });
  assert.equal(statSync(dir).uid, 65534);
  assert.equal(statSync(dir).mode & 0o777, 0o700);
  // pihub (root) writes snapshots into it, with its usual modes.
  mkdirSync(join(dir, 'stages'), { mode: 0o755 });
  writeFileSync(join(dir, 'stages', 'x.tar.zst'), 'shadow inside', { mode: 0o644 });
  execFileSync(script, ['save', '65534', '65534'], { env });
  for (const p of [dir, join(dir, 'stages'), join(dir, 'stages', 'x.tar.zst')]) {
    const st = statSync(p);
    assert.equal(st.uid, 65534, p);
    assert.equal(st.mode & 0o077, 0, `${p} is ${(st.mode & 0o777).toString(8)}`);
  }
  const bad = spawnSync(script, ['share'], { env: { ...env, SUDO_UID: '1', SUDO_GID: '1' }, encoding: 'utf8' });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /expected prepare or save/);
});

/** A release folder as ci/release.ts collects it, with a .sha256 as pihub writes it. */
function releaseFolder(): { dir: string; base: string } {
  const dir = join(scratch('pihub-publish-'), 'release');
  mkdirSync(dir);
  const base = 'pihub-2026-11-26-trixie-arm64';
  const sha = (s: string) => createHash('sha256').update(s).digest('hex');
  const files: Record<string, string> = {
    [`${base}.img.xz`]: 'compressed image',
    [`${base}.img.bmap`]: '<bmap/>',
    [`${base}.info`]: 'jupyterhub\t5.2.1\tall\n',
    [`${base}.json`]: '{}',
    [`${base}.spdx.json`]: '{}',
    'rpi-imager.json': '{"os_list":[]}',
    'pihub.png': 'png',
    'RELEASE_NOTES.md': '# pihub v1.0\n',
  };
  for (const [f, t] of Object.entries(files)) writeFileSync(join(dir, f), t);
  // Its first line names the raw image, which is not published.
  writeFileSync(join(dir, `${base}.sha256`), `${sha('raw')}  ${base}.img\n${sha('compressed image')}  ${base}.img.xz\n${sha('<bmap/>')}  ${base}.img.bmap\n`);
  return { dir, base };
}

function publish(tag: string, dir: string): { code: number; stderr: string; gh?: string[] } {
  const bin = scratch('pihub-fake-gh-');
  const calls = join(bin, 'calls');
  writeFileSync(join(bin, 'gh'), `#!/bin/sh\nprintf '%s\\n' "$@" > "${calls}"\n`);
  chmodSync(join(bin, 'gh'), 0o755);
  const r = spawnSync(join(PROJECT_DIR, 'ci/publish.sh'), [tag, dir], { env: { ...process.env, PATH: `${bin}:${process.env.PATH}` }, encoding: 'utf8' });
  const gh = existsSync(calls) ? readFileSync(calls, 'utf8').trimEnd().split('\n') : undefined;
  return { code: r.status ?? -1, stderr: r.stderr, gh };
}

test('ci/publish.sh checks the collected release, then creates the GitHub release with every file but the notes', () => {
  const { dir, base } = releaseFolder();
  const ok = publish('v1.0', dir);
  assert.equal(ok.code, 0, ok.stderr);
  assert.deepEqual(ok.gh, [
    'release', 'create', 'v1.0', '--verify-tag', '--title', 'pihub v1.0', '--notes-file', join(dir, 'RELEASE_NOTES.md'),
    ...[`${base}.img.bmap`, `${base}.img.xz`, `${base}.info`, `${base}.json`, `${base}.sha256`, `${base}.spdx.json`, 'pihub.png', 'rpi-imager.json'].map((f) => join(dir, f)),
  ]);

  const refused = (change: (d: string, b: string) => void, want: RegExp, code = 1) => {
    const r = releaseFolder();
    change(r.dir, r.base);
    const p = publish('v1.0', r.dir);
    assert.equal(p.code, code, p.stderr);
    assert.match(p.stderr, want);
    assert.equal(p.gh, undefined, 'gh never ran');
  };
  refused((d, b) => writeFileSync(join(d, `${b}.img.xz`), 'changed after the check'), /a checksum in .* does not match/);
  refused((d, b) => rmSync(join(d, `${b}.img.xz`)), /\.img\.xz, which a \.sha256 names, is not in/);
  refused((d, b) => writeFileSync(join(d, `${b}.sha256`), `${'0'.repeat(64)}  ../${b}.img.xz\n`), /names \.\.\/.*, outside the folder/);
  refused((d) => writeFileSync(join(d, 'other.img.xz'), 'never checked'), /other\.img\.xz is named by no \.sha256/);
  refused((d, b) => rmSync(join(d, `${b}.sha256`)), /no \.sha256 file/);
  refused((d) => rmSync(join(d, 'RELEASE_NOTES.md')), /has no RELEASE_NOTES\.md/);
  refused((d) => mkdirSync(join(d, 'work')), /work is not a plain file/);
  refused((d) => writeFileSync(join(d, '.token'), 'x'), /hidden file/);
  const badTag = publish('not a tag', releaseFolder().dir);
  assert.equal(badTag.code, 2);
  assert.match(badTag.stderr, /expected a tag name/);
  assert.equal(badTag.gh, undefined);
});
