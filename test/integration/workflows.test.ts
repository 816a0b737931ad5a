// The GitHub workflows: valid for GitHub (checked by action-validator, a real workflow schema
// validator), calling the ci/ scripts that run here too, never exposing the stage cache, and
// giving no job more than it needs (trustProblems below): a read-only token everywhere but
// release.yml's publish job, which builds nothing; every action pinned by commit; no credentials
// left in git; no npm install scripts; no token where anything is built; no cache in a release.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { accessSync, chmodSync, constants, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join, relative } from 'node:path';
import { parse } from 'yaml';
import { PROJECT_DIR } from '../../build/plan/inputs.ts';
import { publishCommand } from '../../ci/release.ts';
import { scratch } from '../helpers/tmp.ts';

const WORKFLOWS = join(PROJECT_DIR, '.github/workflows');
const VALIDATOR = join(PROJECT_DIR, 'node_modules/.bin/action-validator');

function validate(file: string): { code: number; output: string } {
  const r = spawnSync(VALIDATOR, [file], { encoding: 'utf8' });
  return { code: r.status ?? -1, output: `${r.stdout}${r.stderr}` };
}

type Step = { name?: string; run?: string; uses?: string; with?: Record<string, unknown>; env?: Record<string, unknown> };
type Job = { permissions?: unknown; needs?: string | string[]; env?: Record<string, unknown>; uses?: string; steps?: Step[] };
type Workflow = { permissions?: unknown; env?: Record<string, unknown>; jobs: Record<string, Job> };
const workflows = () => readdirSync(WORKFLOWS).filter((f) => f.endsWith('.yml')).sort();
const text = (f: string) => readFileSync(join(WORKFLOWS, f), 'utf8');
const jobs = (f: string) => (parse(text(f)) as Workflow).jobs;
const steps = (f: string) => Object.values(jobs(f)).flatMap((j) => j.steps ?? []);

/** The one job of a workflow that may write (and so may hold a token that writes). */
const PUBLISHER: Record<string, string> = { 'release.yml': 'publish' };
const SHA_PINNED = /^[\w.-]+\/[\w./-]+@[0-9a-f]{40}$/;
const TOKEN = /GH_TOKEN|GITHUB_TOKEN|github\.token|secrets\./;
const BUILDS = /\b(npm|npx|node|tsx|sudo|make)\b|setup-host|release\.ts|test-all/;
const PUBLISH_ACTIONS = ['actions/checkout', 'actions/download-artifact'];
const action = (uses: string) => uses.split('@')[0]!;
const writes = (p: unknown) => p === 'write-all' || (typeof p === 'object' && p !== null && Object.values(p).some((v) => v === 'write'));

/** What in a workflow gives more than it needs: one sentence each, none when it is tight. */
function trustProblems(file: string, source: string): string[] {
  const wf = parse(source) as Workflow;
  const problems: string[] = [];
  const publisher = PUBLISHER[file];
  if (wf.permissions === undefined) problems.push(`${file}: no top-level permissions (the repository's default may be write-all); expected contents: read`);
  else if (writes(wf.permissions)) problems.push(`${file}: top-level permissions ${JSON.stringify(wf.permissions)} write for every job`);
  if (TOKEN.test(JSON.stringify(wf.env ?? {}))) problems.push(`${file}: a token in the workflow's env reaches every job`);
  for (const [name, job] of Object.entries(wf.jobs)) {
    const where = `${file}: job ${name}`;
    if (name === publisher) {
      if (JSON.stringify(job.permissions) !== JSON.stringify({ contents: 'write' })) problems.push(`${where}: permissions ${JSON.stringify(job.permissions)}; expected exactly contents: write`);
    } else {
      // A job without permissions of its own has the workflow's (and without those, the repository's default).
      const own = job.permissions ?? wf.permissions;
      if (own === undefined || writes(own)) problems.push(`${where} may write (${JSON.stringify(own ?? "the repository's default")}); only ${publisher ?? 'no job'} may`);
      if (TOKEN.test(JSON.stringify(job))) problems.push(`${where} sees a token (GH_TOKEN, github.token or a secret); only ${publisher ?? 'no job'} may`);
    }
    for (const uses of [job.uses, ...(job.steps ?? []).map((s) => s.uses)]) {
      if (uses && !uses.startsWith('./') && !SHA_PINNED.test(uses)) problems.push(`${where}: ${uses} is not pinned to a full commit SHA`);
    }
    for (const s of job.steps ?? []) {
      const w = s.with?.['persist-credentials'];
      if (s.uses?.startsWith('actions/checkout@') && w !== false && w !== 'false') problems.push(`${where}: actions/checkout keeps its token in git (persist-credentials is not false)`);
      for (const m of (s.run ?? '').matchAll(/\bnpm\s+(?:ci|install|i)\b[^\n;&|]*/g)) {
        if (!m[0].includes('--ignore-scripts')) problems.push(`${where}: \`${m[0].trim()}\` runs the dependencies' install scripts (add --ignore-scripts)`);
      }
      if (publisher && s.uses && /^actions\/cache(\/restore)?@/.test(s.uses)) problems.push(`${where}: a release restores a cache (${action(s.uses)}) that another run may have written`);
      if (publisher && s.uses?.startsWith('actions/setup-node@') && (s.with?.cache !== undefined || s.with?.['package-manager-cache'] !== false)) problems.push(`${where}: actions/setup-node may restore an npm cache (set package-manager-cache: false)`);
    }
  }
  if (publisher) {
    const job = wf.jobs[publisher];
    if (!job) {
      problems.push(`${file}: no ${publisher} job: the job that builds the release also publishes it`);
    } else {
      for (const s of job.steps ?? []) {
        if (s.uses && !PUBLISH_ACTIONS.includes(action(s.uses))) problems.push(`${file}: job ${publisher} runs ${action(s.uses)}; it only takes the artifact and publishes`);
        if (s.run && BUILDS.test(s.run)) problems.push(`${file}: job ${publisher} builds or installs (\`${s.run.trim()}\`); it only publishes`);
      }
      const needs = [job.needs ?? []].flat();
      const downloaded = (job.steps ?? []).find((s) => s.uses?.startsWith('actions/download-artifact@'))?.with?.name;
      const uploaded = needs.flatMap((n) => wf.jobs[n]?.steps ?? []).filter((s) => s.uses?.startsWith('actions/upload-artifact@')).map((s) => s.with?.name);
      if (downloaded === undefined || !uploaded.includes(downloaded)) problems.push(`${file}: job ${publisher} does not download an artifact that a job it needs uploaded (${JSON.stringify(downloaded)} of ${JSON.stringify(uploaded)})`);
    }
  }
  // The tag a SHA stands for, beside it, so that a reader and a bump can tell what it is.
  for (const line of source.split('\n')) {
    const m = /^\s*(?:-\s+)?uses:\s*(\S+)(.*)$/.exec(line);
    if (m && !m[1]!.startsWith('./') && !/#\s*v\d+(\.\d+)*\s*$/.test(m[2]!)) problems.push(`${file}: \`${line.trim()}\` has no # vX.Y.Z comment naming the tag`);
  }
  return problems;
}

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
  assert.deepEqual([...scripts].sort(), ['ci/cache-owner.sh', 'ci/publish.sh', 'ci/release.ts', 'ci/setup-host.sh', 'ci/test-all.sh']);
  for (const s of scripts) {
    if (s.endsWith('.sh')) accessSync(join(PROJECT_DIR, s), constants.X_OK);
    else statSync(join(PROJECT_DIR, s));
  }
  const { build, publish } = jobs('release.yml');
  const buildRuns = build!.steps!.map((s) => s.run ?? '').join('\n');
  assert.match(buildRuns, /ci\/release\.ts --tag "\$GITHUB_REF_NAME" --out release /);
  assert.doesNotMatch(buildRuns, /--publish|\bgh\b/, 'the build job publishes nothing');
  assert.match(buildRuns, /-- --cache-dir "\$RUNNER_TEMP\/pihub-cache"$/m, 'the release is built from an empty cache folder of its own');
  const upload = build!.steps!.find((s) => s.uses?.startsWith('actions/upload-artifact@'))!;
  assert.equal(upload.with?.path, 'release/', 'the build job hands on the folder ci/release.ts collected');
  const download = publish!.steps!.find((s) => s.uses?.startsWith('actions/download-artifact@'))!;
  assert.equal(download.with?.path, 'release');
  assert.deepEqual(publish!.steps!.filter((s) => s.run).map((s) => s.run!.trim()), ['ci/publish.sh "$GITHUB_REF_NAME" release']);
  assert.equal(relative(PROJECT_DIR, publishCommand('v1.0', 'out')[0]), 'ci/publish.sh', 'ci/release.ts --publish publishes the same way');
  assert.doesNotMatch(text('release.yml'), /softprops|action-gh-release/, 'publishing happens in ci/publish.sh, after the checks');
});

test('no workflow makes the stage cache readable by others', () => {
  const cached = workflows().filter((f) => steps(f).some((s) => s.uses?.startsWith('actions/cache')));
  assert.deepEqual(cached, ['ci.yml'], 'release.yml keeps no stage cache');
  for (const f of workflows()) {
    assert.doesNotMatch(text(f), /chmod[^\n]*(a\+r|o\+r|755|644)/, f);
  }
  for (const f of cached) {
    const cache = steps(f).find((s) => s.uses?.startsWith('actions/cache'));
    assert.equal(cache?.with?.path, '/var/cache/pihub');
    const runs = steps(f).map((s) => s.run ?? '');
    assert.ok(runs.indexOf('sudo ci/cache-owner.sh prepare') < runs.indexOf('sudo ci/cache-owner.sh save'));
  }
});

test('no job gets more than it needs: write and a token only to publish, which builds nothing; pinned actions; no kept credentials; no install scripts; no cache in a release', () => {
  for (const f of workflows()) assert.deepEqual(trustProblems(f, text(f)), [], f);
  const { build, publish } = jobs('release.yml');
  assert.deepEqual(publish!.needs, 'build');
  assert.equal(build!.permissions, undefined, 'the build job has the top-level read-only token');
  assert.deepEqual((parse(text('release.yml')) as Workflow).permissions, { contents: 'read' });
});

// release.yml and ci.yml as they were before the publish job was split off.
const RELEASE_BEFORE = `name: release
on:
  push:
    tags: ['v*']
permissions:
  contents: write
jobs:
  release:
    runs-on: ubuntu-24.04
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-node@v4
        with:
          node-version: 20
      - run: sudo ci/cache-owner.sh prepare
      - uses: actions/cache@v4
        with:
          path: /var/cache/pihub
          key: pihub-\${{ runner.os }}-\${{ hashFiles('stages/**') }}
          restore-keys: pihub-\${{ runner.os }}-
      - run: sudo ci/setup-host.sh
      - run: npm ci
      - env:
          GH_TOKEN: \${{ github.token }}
        run: >-
          sudo --preserve-env=PATH,CI,GH_TOKEN,GITHUB_REPOSITORY
          node --import tsx ci/release.ts --tag "$GITHUB_REF_NAME" --out release --publish
      - if: always()
        run: sudo ci/cache-owner.sh save
`;
const CI_BEFORE = `name: ci
on: [push, pull_request]
permissions:
  contents: read
jobs:
  test:
    runs-on: ubuntu-24.04
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-node@v4
        with:
          node-version: 20
      - run: npm ci
      - run: sudo --preserve-env=PATH,CI ci/test-all.sh
`;

test('the checks reject the workflows as they were before (so a pass means something)', () => {
  const release = trustProblems('release.yml', RELEASE_BEFORE);
  for (const want of [
    /top-level permissions \{"contents":"write"\} write for every job/,
    /job release may write/,
    /job release sees a token/,
    /actions\/checkout@v4 is not pinned/,
    /actions\/setup-node@v4 is not pinned/,
    /actions\/cache@v4 is not pinned/,
    /actions\/checkout keeps its token in git/,
    /`npm ci` runs the dependencies' install scripts/,
    /a release restores a cache \(actions\/cache\)/,
    /actions\/setup-node may restore an npm cache/,
    /no publish job: the job that builds the release also publishes it/,
    /`- uses: actions\/checkout@v4` has no # vX\.Y\.Z comment/,
  ]) assert.ok(release.some((p) => want.test(p)), `${want} in:\n${release.join('\n')}`);
  const ci = trustProblems('ci.yml', CI_BEFORE);
  for (const want of [/actions\/checkout@v4 is not pinned/, /keeps its token in git/, /`npm ci` runs the dependencies' install scripts/]) {
    assert.ok(ci.some((p) => want.test(p)), `${want} in:\n${ci.join('\n')}`);
  }
  assert.ok(!ci.some((p) => /top-level permissions|cache/.test(p)), ci.join('\n'));
});

test('each way of widening release.yml again is caught', () => {
  const now = text('release.yml');
  const widen = (from: string | RegExp, to: string) => {
    const changed = now.replace(from, to);
    assert.notEqual(changed, now, `release.yml no longer has ${String(from)}: update this test`);
    return trustProblems('release.yml', changed);
  };
  const cases: Array<[string | RegExp, string, RegExp]> = [
    ['permissions:\n  contents: read\n', 'permissions:\n  contents: write\n', /top-level permissions .* write for every job/],
    ['  build:\n', '  build:\n    permissions:\n      contents: write\n', /job build may write/],
    ['    permissions:\n      contents: write\n', '    permissions:\n      contents: write\n      packages: write\n', /job publish: permissions .*; expected exactly contents: write/],
    [/( +)run: >-\n/, '$1env:\n$1  GH_TOKEN: $${{ github.token }}\n$1run: >-\n', /job build sees a token/],
    ['jobs:\n', 'env:\n  GH_TOKEN: ${{ secrets.GITHUB_TOKEN }}\njobs:\n', /a token in the workflow's env reaches every job/],
    ['run: ci/publish.sh', 'run: npm ci --ignore-scripts && ci/publish.sh', /job publish builds or installs/],
    [/actions\/download-artifact@[0-9a-f]{40}/, 'actions/download-artifact@v8', /actions\/download-artifact@v8 is not pinned/],
    [/(actions\/upload-artifact@[0-9a-f]{40}) # v[\d.]+/, '$1', /has no # vX\.Y\.Z comment/],
    ['persist-credentials: false', 'persist-credentials: true', /job build: actions\/checkout keeps its token in git/],
    ['npm ci --ignore-scripts', 'npm ci', /`npm ci --no-audit --no-fund` runs the dependencies' install scripts/],
    ['          package-manager-cache: false\n', '', /actions\/setup-node may restore an npm cache/],
    [/( +)- name: Host set-up/, '$1- uses: actions/cache/restore@27d5ce7f107fe9357f9df03efb73ab90386fccae # v5.0.5\n$1  with: {path: /var/cache/pihub, key: pihub}\n$1- name: Host set-up', /a release restores a cache \(actions\/cache\/restore\)/],
    ['          name: release\n          path: release\n', '          name: other\n          path: release\n', /does not download an artifact that a job it needs uploaded/],
  ];
  for (const [from, to, want] of cases) {
    const problems = widen(from, to);
    assert.ok(problems.some((p) => want.test(p)), `${String(from)} → ${to}: expected ${want}, got:\n${problems.join('\n')}`);
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
