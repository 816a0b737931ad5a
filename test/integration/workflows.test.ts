// The GitHub workflows: valid for GitHub (checked by action-validator, a real workflow schema
// validator), calling the ci/ scripts that run here too, and never exposing the stage cache.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { accessSync, constants, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
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
