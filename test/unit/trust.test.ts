// What the build trusts and what it hands to other programs: the bootstrap trusts the base's
// archive keyring only, and credentials never travel on a command line or onto the card.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { sourcesEntry } from '../../build/bases/apt.ts';
import { urlCredentialsOnCommandLine } from '../../build/build.ts';
import { buildLeftovers } from '../../build/chroot/leftovers.ts';
import { resolveConfig, setLayer } from '../../build/config/load.ts';
import { planLines } from '../../build/plan/print.ts';
import { valuesEnv } from '../../build/stages/values.ts';
import { FakeRunner } from '../helpers/fakes.ts';
import { tmpTree } from '../helpers/tmp.ts';
import { Cache } from '../../build/cache/cache.ts';
import { verifyArchiveKeyring } from '../../build/chroot/host.ts';
import { loadInputs } from '../../build/plan/inputs.ts';
import { commandsOf, formatOps, formatRun, type Op, type RunState, type TryOp } from '../../build/core/ops.ts';
import { makePlan, type Plan } from '../../build/plan/plan.ts';
import { DEBIAN_ARCHIVE_KEYRING } from '../../build/stages/step.ts';
import { buildOptions } from '../helpers/options.ts';

/** The plan of a build that runs every stage. */
async function planFor(sets: string[] = []): Promise<Plan> {
  const o = buildOptions();
  const inputs = loadInputs({ ...o, sets: [...o.sets, ...sets] });
  return makePlan(inputs, { workDir: o.workDir, outDir: o.outDir, cache: new Cache(o.cacheDir), release: 'Sat, 10 Jan 2026 09:00:00 UTC', salt: 'salt', noCache: true, verify: false, sbomCreated: '2026-01-10T09:00:00Z' });
}

const allOps = (plan: Plan): Op[] => plan.stages.flatMap((s) => [...s.ops]);

test('every mmdebstrap (the bootstrap and the native tools root) trusts the archive\'s keyring only', async () => {
  const plan = await planFor();
  const boots = commandsOf(allOps(plan)).map((r) => r.command[1]).filter((args) => args.includes('mmdebstrap'));
  assert.equal(boots.length, 2, 'the bootstrap and the tools root');
  const empty = join(plan.paths.work, 'apt-trusted.d');
  for (const args of boots) {
    assert.ok(args.includes(`--keyring=${DEBIAN_ARCHIVE_KEYRING}`), args.join(' '));
    assert.ok(args.includes(`--keyring=${empty}`), 'no keyring directory of the build machine');
    assert.ok(args.includes('--skip=check/signed-by'));
  }
  // The empty directory is made right before each.
  const lines = formatOps(allOps(plan));
  for (const at of lines.flatMap((l, i) => (/\$ unshare .* mmdebstrap /.test(l) ? [i] : []))) {
    assert.match(lines[at - 1]!, new RegExp(`an empty ${empty}: apt trusts no keyring of the build machine but ${DEBIAN_ARCHIVE_KEYRING}`));
  }
  assert.equal(plan.keyring, DEBIAN_ARCHIVE_KEYRING, 'checked before the build');
});

test('a missing archive keyring is named with the package that has it', () => {
  assert.throws(() => verifyArchiveKeyring('/nonexistent/debian-archive-keyring.gpg'), /^UserError: the archive keyring \/nonexistent\/debian-archive-keyring\.gpg is missing: .*install debian-archive-keyring/);
  verifyArchiveKeyring(DEBIAN_ARCHIVE_KEYRING);
});

const PROXY_PW = 'proxy-pass-1';
const MIRROR_PW = 'mirror-p@ss-2';
const NPM_PW = 'npm-pass-3';
const WITH_CREDENTIALS = [
  `apt_proxy=http://proxy-user:${PROXY_PW}@10.0.0.2:3142`,
  `base.mirror=http://mirror-user:${encodeURIComponent(MIRROR_PW)}@deb.example/debian`,
  'hub.proxy=npm',
  `hub.npm_registry=https://npm-user:${NPM_PW}@npm.example/registry/`,
];
const SECRETS = [PROXY_PW, encodeURIComponent(MIRROR_PW), MIRROR_PW, NPM_PW, 'proxy-user:', 'mirror-user:', 'npm-user:'];
const holdsSecret = (text: string) => SECRETS.filter((s) => text.includes(s));

/** Runs the `do` operations in `ops` (depth first) whose text matches. */
async function runDo(ops: readonly Op[], text: RegExp, st: RunState): Promise<number> {
  let n = 0;
  for (const op of ops) {
    if (op.kind === 'do' && text.test(op.text)) {
      await op.fn(st);
      n += 1;
    } else if (op.kind === 'try') n += await runDo([...op.body, ...op.finally], text, st);
    else if (op.kind === 'lock' || op.kind === 'step') n += await runDo(op.body, text, st);
    else if (op.kind === 'if') n += await runDo([...op.then, ...(op.else ?? [])], text, st);
  }
  return n;
}

const state = (): RunState => ({ runner: new FakeRunner(), values: {}, scratch: {}, note: () => {}, holder: { pid: process.pid, start: 0, what: 'test' } as unknown as RunState['holder'] });

test('credentials in apt_proxy, base.mirror and hub.npm_registry are on no command line, in no printed plan and in no stage\'s values', async () => {
  const plan = await planFor(WITH_CREDENTIALS);
  const runs = commandsOf(allOps(plan));
  assert.ok(runs.length > 20);
  for (const r of runs) assert.deepEqual(holdsSecret([r.command[0], ...r.command[1]].join('\0')), [], formatRun(r));
  assert.deepEqual(holdsSecret(planLines(plan).join('\n')), [], 'the dry run');
  // apt gets the proxy and mirror without them, and an auth.conf that has them.
  const boot = runs.find((r) => r.command[1].includes('--mode=chrootless'))!.command[1];
  assert.ok(boot.includes('--aptopt=Acquire::http::Proxy "http://10.0.0.2:3142"'));
  assert.ok(boot.includes(`--aptopt=Dir::Etc::netrc "${join(plan.paths.work, 'credentials/auth.conf')}"`));
  assert.deepEqual(boot.slice(-2), ['http://deb.example/debian', 'deb http://deb.example/debian trixie-backports main non-free-firmware'], 'the target\'s sources.list gets the mirror (and its backports suite) without credentials');
  const installs = runs.filter((r) => r.command[1].includes('install'));
  assert.equal(installs.length, 4, "one per package list");
  for (const r of installs) {
    assert.ok(r.command[1].includes('Acquire::http::Proxy=http://10.0.0.2:3142'), formatRun(r));
    assert.ok(r.command[1].includes(`Dir::Etc::netrc=${join(plan.paths.work, 'credentials/auth.conf')}`), formatRun(r));
  }
  // Scripts in the target: apt and npm find the files through their variables; the values hold no credentials.
  const scripts = runs.filter((r) => r.command[1].some((a) => a.endsWith('-run-chroot.sh')));
  for (const r of scripts) {
    assert.equal(r.env?.APT_CONFIG, '/run/pihub/credentials/apt.conf');
    assert.equal(r.env?.NPM_CONFIG_USERCONFIG, '/run/pihub/credentials/npmrc');
    assert.ok(r.command[1].includes(`--ro-bind=${join(plan.paths.work, 'credentials')}:/run/pihub/credentials`));
  }
  for (const s of plan.stages) {
    const st = state();
    await runDo(s.ops, /^the values the stage reads$/, st);
    assert.deepEqual(holdsSecret(JSON.stringify(valuesEnv(st.values))), [], `stage ${s.def.id}`);
    if (s.def.id === '99-finalise') assert.equal(valuesEnv(st.values).PIHUB_BASE_MIRROR, 'http://deb.example/debian', 'the card\'s apt sources get the mirror without credentials');
    if (s.def.id === '22-proxy') assert.equal(valuesEnv(st.values).PIHUB_HUB_NPM_REGISTRY, 'https://npm.example/registry/');
  }
  // Nor do the cache keys, which are published in the manifest.
  const plain = await planFor(WITH_CREDENTIALS.map((s) => s.replace(/\/\/[^@]*@/, '//')));
  assert.deepEqual(plain.stages.map((s) => s.key), plan.stages.map((s) => s.key), 'credentials do not change what a stage makes');
});

test('the credentials reach apt and npm in files readable by root only, present only while a stage runs', async () => {
  const plan = await planFor(WITH_CREDENTIALS);
  const dir = join(plan.paths.work, 'credentials');
  const first = plan.stages[0]!.ops;
  assert.equal(await runDo(first, /^write the build's credentials/, state()), 1);
  assert.equal(statSync(dir).mode & 0o777, 0o700);
  for (const f of ['auth.conf', 'apt.conf', 'npmrc']) assert.equal(statSync(join(dir, f)).mode & 0o777, 0o600, f);
  assert.equal(readFileSync(join(dir, 'auth.conf'), 'utf8'), [
    `machine http://10.0.0.2:3142 login proxy-user password ${PROXY_PW}`,
    `machine http://deb.example/debian login mirror-user password ${MIRROR_PW}`,
    '',
  ].join('\n'));
  assert.equal(readFileSync(join(dir, 'apt.conf'), 'utf8'), 'Dir::Etc::netrc "/run/pihub/credentials/auth.conf";\n');
  assert.equal(readFileSync(join(dir, 'npmrc'), 'utf8'), `//npm.example/registry/:username="npm-user"\n//npm.example/registry/:_password=${Buffer.from(NPM_PW).toString('base64')}\n`);
  // The stage's steps run inside a try whose finally removes them.
  const guarded = first.find((op): op is TryOp => op.kind === 'try' && op.finally.some((f) => f.kind === 'do' && f.text === `remove ${dir}`));
  assert.ok(guarded, 'removed also after a failure');
  assert.equal(await runDo(guarded.finally, /^remove /, state()), 1);
  assert.equal(existsSync(dir), false);
  // Without credentials there is nothing of it.
  const plain = await planFor();
  assert.equal(plain.credentials, undefined);
  assert.ok(!formatOps(allOps(plain)).some((l) => l.includes('credentials')));
});

test('the card gets no credentials: a base repository\'s sources entry, and the check before export', () => {
  const repo = { name: 'extra', uri: 'https://repo-user:repo-pass-4@repo.example/debian', suites: ['trixie'], components: ['main'], keyring: 'k.pgp', fingerprints: ['A'.repeat(40)] };
  const entry = sourcesEntry(repo);
  assert.match(entry, /^URIs: https:\/\/repo\.example\/debian$/m);
  assert.ok(!entry.includes('repo-pass-4') && !entry.includes('repo-user'));
  const proxy = `http://proxy-user:${PROXY_PW}@10.0.0.2:3142`;
  const mirror = 'http://mirror-user:mirror-pass@deb.example/debian';
  const root = tmpTree('pihub-card-', {
    'etc/apt/sources.list.d/debian.sources': `Types: deb\nURIs: ${mirror}\n`,
    'etc/apt/auth.conf.d/x.conf': `machine 10.0.0.2:3142 login proxy-user password ${PROXY_PW}\n`,
    'root/.npmrc': `//npm.example/:_password=${Buffer.from(NPM_PW).toString('base64')}\n`,
    'etc/apt/sources.list.d/fine.sources': 'Types: deb\nURIs: http://deb.example/debian\n',
  });
  assert.deepEqual(buildLeftovers(root, proxy, [proxy, mirror, `https://npm-user:${NPM_PW}@npm.example/`]), [
    '/etc/apt/sources.list.d/debian.sources holds credentials of the build\'s URLs (the card\'s apt and npm get none)',
    '/etc/apt/auth.conf.d/x.conf holds credentials of the build\'s URLs (the card\'s apt and npm get none)',
    '/root/.npmrc holds credentials of the build\'s URLs (the card\'s apt and npm get none)',
  ]);
});

test('a URL\'s credentials are refused where apt could not take them, and never shown in an error', () => {
  const e = (set: string) => {
    try {
      resolveConfig([setLayer([set])]);
    } catch (err) {
      return (err as Error).message;
    }
    return assert.fail('expected an error');
  };
  const spaced = e('apt_proxy=http://user:two%20words@10.0.0.2:3142');
  assert.equal(spaced, '--set apt_proxy=http://<hidden>@10.0.0.2:3142: `apt_proxy`: credentials in the URL must not hold spaces or control characters (apt takes them from its auth.conf, whose fields are separated by spaces) (got "http://<hidden>@10.0.0.2:3142")');
  assert.match(e('base.mirror=http://user@deb.example/debian'), /`base\.mirror`: credentials in the URL must be `user:password@` with both given \(got "http:\/\/<hidden>@deb\.example\/debian"\)/);
  assert.deepEqual(urlCredentialsOnCommandLine(['apt_proxy=http://u:p@h:1', 'hub.port=1', 'base.mirror=http://deb.example/debian']), ['apt_proxy']);
});
