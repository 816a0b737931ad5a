import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { build } from '../../build/build.ts';
import { InterruptedError } from '../../build/core/errors.ts';
import { formatCommand, type Command, type Runner } from '../../build/core/exec.ts';
import { orderStages, PROJECT_DIR } from '../../build/plan/inputs.ts';
import { FakeMachine, FakeRunner, fakeDeps } from '../helpers/fakes.ts';
import { buildOptions } from '../helpers/options.ts';
import { scratch } from '../helpers/tmp.ts';

test('--dry-run prints every stage and step with its commands, and touches nothing', async () => {
  const o = buildOptions({ dryRun: true });
  const machine = new FakeMachine();
  const result = await build(o, fakeDeps(new FakeRunner(), machine));
  assert.ok('plan' in result);
  const text = result.plan.join('\n');
  for (const stage of ['00-bootstrap', '10-system', '20-jupyterhub', '22-proxy', '25-security', '26-household', '30-settings', '99-finalise']) {
    assert.match(text, new RegExp(`^stage \\d/8 ${stage}: .* \\[runs \\(key [0-9a-f]{12}\\)`, 'm'));
  }
  assert.match(text, /\$ unshare --mount --pid --fork --kill-child -- mmdebstrap --mode=chrootless --variant=essential .* trixie \S+\/rootfs file:\/\//);
  // arm64 on this machine: apt and unpacking run natively, Python is byte-compiled natively.
  assert.match(text, /\$ .*enter\.sh \S+\/rootfs .*--no-chroot -- apt-get -o Dir=\S+\/rootfs\/ .*dpkg-split\.sh .* install -y .*linux-image-arm64\/trixie-backports raspi-firmware/);
  assert.match(text, /-- \/bin\/sh \/run\/pihub\/engine\/py3compile-defer\.sh on/);
  assert.match(text, /if the target's python3 is the native tools root's version:\n\s+\$ .*-- \/usr\/bin\/python3 \/run\/pihub\/engine\/py3compile-native\.py \/target/);
  // Native stand-ins (depmod, dracut-install) around steps in the target, taken out also after a failure.
  assert.match(text, /--ro-bind=\S+\/cache\/tools\/[0-9a-f]{32}\/root:\/run\/pihub\/tools .*-- \/bin\/sh \/run\/pihub\/engine\/native-tools\.sh on\n.*-- \/bin\/sh -e -u \/run\/pihub\/stage\/03-run-chroot\.sh\n.*native-tools\.sh off {3}\(also after a failure\)/);
  assert.match(text, /\/root\/jupyterhub_config\.py \(root:root 0600, from template\)/);
  assert.match(text, /if the stage took 20 s or more .*:\n\s+save to cache\n\s+\$ tar --create --file=\S+\/cache\/stages\/[0-9a-f]{32}\.tar\.zst\.partial-\d+ /);
  assert.match(text, /\$ genimage --config/);
  assert.match(text, /→ \S+\/deploy\/pihub-\d{4}-\d\d-\d\d-trixie-arm64\.img\.zst/);
  for (const dir of [o.outDir, o.workDir, o.cacheDir]) assert.equal(existsSync(dir), false, `${dir} was created`);
  // The machine is checked for what the plan runs.
  const tools = [...machine.checks[0]!.tools];
  for (const t of ['mmdebstrap', 'genimage', 'bmaptool', 'zstd', 'tar', 'apt-get', 'unshare']) assert.ok(tools.includes(t), `${t} is not checked`);
});

test('the plan changes with the config: a --set that changes hub.port changes only the stages from 30-settings on', async () => {
  const base = buildOptions({ dryRun: true });
  const a = await build(base, fakeDeps());
  const b = await build({ ...base, sets: [...base.sets, 'hub.port=8000'] }, fakeDeps());
  assert.ok('plan' in a && 'plan' in b);
  const keys = (plan: string[]) => Object.fromEntries(plan.filter((l) => l.startsWith('stage ')).map((l) => [l.split(' ')[2]!.replace(':', ''), /key ([0-9a-f]+)/.exec(l)![1]]));
  const ka = keys(a.plan);
  const kb = keys(b.plan);
  assert.equal(ka['00-bootstrap'], kb['00-bootstrap']);
  assert.equal(ka['10-system'], kb['10-system']);
  assert.equal(ka['20-jupyterhub'], kb['20-jupyterhub']);
  assert.notEqual(ka['30-settings'], kb['30-settings']);
  assert.notEqual(ka['99-finalise'], kb['99-finalise']);
});

test('--dry-run of `base: debian-trixie-armhf`: armhf throughout, the armmp-lpae kernel for arm64\'s, and no default key reused', async () => {
  const arm64 = buildOptions({ dryRun: true });
  const armhf = { ...arm64, sets: [...arm64.sets, 'base=debian-trixie-armhf'] };
  const a = await build(arm64, fakeDeps());
  const b = await build(armhf, fakeDeps());
  assert.ok('plan' in a && 'plan' in b);
  const text = b.plan.join('\n');
  assert.match(text, /^pihub build plan: pihub \(trixie armhf, from /m);
  assert.match(text, /mmdebstrap --mode=chrootless --variant=essential --architectures=armhf /);
  assert.match(text, /-o APT::Architecture=armhf .* install -y .*linux-image-armmp-lpae raspi-firmware/);
  assert.doesNotMatch(text, /linux-image-arm64/);
  assert.match(text, /→ \S+\/deploy\/pihub-\d{4}-\d\d-\d\d-trixie-armhf\.img\.zst/);
  const keys = (plan: string[]) => plan.filter((l) => l.startsWith('stage ')).map((l) => /key ([0-9a-f]+)/.exec(l)![1]);
  const shared = keys(a.plan).filter((k) => keys(b.plan).includes(k));
  assert.deepEqual(shared, [], 'no stage of the arm64 image serves the armhf one');
  // The profile decides the architecture: a config that says otherwise is bad input.
  await assert.rejects(build({ ...arm64, sets: [...arm64.sets, 'base.profile=debian-trixie-armhf', 'base.architecture=arm64'] }, fakeDeps()), /`base\.architecture: arm64` differs from the base profile `debian-trixie-armhf` \(armhf\): the profile sets it; remove `base\.architecture`/);
});

/** Two small stages: a bootstrap, then packages and a script. */
function smallStages(packages: string): string {
  const dir = scratch('pihub-stages-');
  mkdirSync(join(dir, '00-base'));
  writeFileSync(join(dir, '00-base', '00-bootstrap'), 'apt\n');
  mkdirSync(join(dir, '10-tools'));
  writeFileSync(join(dir, '10-tools', '00-packages'), `${packages}\n`);
  writeFileSync(join(dir, '10-tools', '01-run-chroot.sh'), '#!/bin/sh\necho hello\n');
  return dir;
}

/** The plan a dry run prints, then the commands the build executes (until its export stops on the empty tree). */
async function printedThenRun(stagesDir: string): Promise<{ shown: string[]; ran: string[] }> {
  const o = buildOptions({ stagesDir });
  const dry = await build({ ...o, dryRun: true }, fakeDeps());
  assert.ok('plan' in dry);
  const runner = new FakeRunner().expect(() => true);
  await assert.rejects(build(o, fakeDeps(runner)), /has no \/boot\/firmware\/config\.txt/);
  return {
    shown: dry.plan.map((l) => l.trim().replace(/ {3}\(also after a failure\)$/, '')),
    ran: runner.calls.map((c: Command) => `$ ${formatCommand(c)}`),
  };
}

test('the dry run and the build come from one plan: every command run is printed, in order; a change to a step changes both', async () => {
  const { shown, ran } = await printedThenRun(smallStages('nano'));
  assert.ok(ran.length >= 8, `ran ${ran.length} commands`);
  let at = 0;
  for (const cmd of ran) {
    const found = shown.indexOf(cmd, at);
    assert.ok(found >= 0, `ran but not in the plan (in order): ${cmd}\nplan:\n${shown.join('\n')}`);
    at = found;
  }
  assert.ok(ran.some((c) => /apt-get .* install .* nano$/.test(c)));
  assert.ok(ran.some((c) => / -- \/bin\/sh -e -u \/run\/pihub\/stage\/01-run-chroot\.sh$/.test(c)), 'scripts run with -e -u whatever their #!');

  const changed = await printedThenRun(smallStages('nano vim'));
  for (const list of [changed.ran, changed.shown]) {
    assert.ok(list.some((c) => /apt-get .* install .* nano vim$/.test(c)), 'the changed step is in both');
    assert.ok(!list.some((c) => /apt-get .* install .* nano$/.test(c)), 'the old command is in neither');
  }
});

test('config.example.yaml is a valid config and makes a plan: its users, one password hashed at build time', async () => {
  const r = await build(buildOptions({ dryRun: true, configPath: join(PROJECT_DIR, 'config.example.yaml') }), fakeDeps());
  assert.ok('plan' in r);
  const text = r.plan.join('\n');
  assert.match(text, /^users: alice \(admin\), bob$/m);
  assert.match(text, /^hub: port 8888, admins = group jupyter_admin, users = group jupyter_users$/m);
  assert.match(text, /^stage 7\/8 30-settings: .*reads .*users/m);
  const hashes = r.plan.filter((l) => l.includes('$ mkpasswd'));
  assert.deepEqual(hashes.map((l) => l.trim()), ['$ mkpasswd --method=yescrypt --stdin < `users[0].password` (a secret)'], 'alice has a password, bob a hash');
  assert.ok(!text.includes('change-me-please'), 'the example password is not shown');
});

test('Ctrl-C in the middle of a step: the step stops, cleanups run, nothing lands in deploy/, locks are given back', async () => {
  const controller = new AbortController();
  let started = false;
  const hanging: Runner = {
    run: (command) =>
      new Promise((_resolve, reject) => {
        started = true;
        assert.equal(command[0], 'unshare');
        controller.signal.addEventListener('abort', () => reject(new InterruptedError(String(controller.signal.reason))));
      }),
  };
  const o = buildOptions({ signal: controller.signal });
  setTimeout(() => controller.abort('SIGINT'), 300);
  await assert.rejects(build(o, fakeDeps(hanging)), (err: Error) => {
    assert.ok(err instanceof InterruptedError);
    assert.equal(err.exitCode, 130);
    assert.match(err.message, /interrupted by SIGINT; cleaned up; deploy\/ holds no partly written image/);
    return true;
  });
  assert.ok(started, 'the first step had started');
  assert.deepEqual(readdirSync(o.outDir), ['pihub.log'], 'only the log is in deploy/');
  assert.equal(existsSync(join(o.workDir, 'pihub', 'rootfs.key')), false, 'the half-built rootfs is not marked as done');
  assert.deepEqual(readdirSync(join(o.cacheDir, 'stages')), [], 'nothing cached');
  assert.equal(existsSync(join(o.workDir, 'pihub.lock')), false, 'the work tree lock is given back');
  assert.deepEqual(readdirSync(join(o.cacheDir, 'locks')), [], 'the cache lock is given back');
});

test('overlay stages go after the built-in stages below 90 and before the final ones', () => {
  const s = (id: string) => ({ id, dir: '', description: '', reads: [], skip: false, substeps: [], origin: 'stage' as const });
  const o = { name: 'x', dir: '', description: '', requires: [], owns: [], layer: { label: '', data: {}, locator: { locate: () => undefined } }, stage: s('overlay-x') };
  assert.deepEqual(orderStages([s('00-a'), s('30-b'), s('99-z')], [o]).map((x) => x.id), ['00-a', '30-b', 'overlay-x', '99-z']);
});

test('the dpkg profile counts each interval to the phase it ends in (unpack, configure per package, triggers)', async () => {
  const { dpkgProfile } = await import('../../build/stages/profile.ts');
  const log = [
    '2026-01-01 10:00:00 startup archives unpack',
    '2026-01-01 10:00:00 install a:arm64 <none> 1',
    '2026-01-01 10:00:01 status half-installed a:arm64 1',
    '2026-01-01 10:00:03 status unpacked a:arm64 1',
    '2026-01-01 10:00:03 install b:all <none> 1',
    '2026-01-01 10:00:04 status unpacked b:all 1',
    '2026-01-01 10:00:09 startup packages configure',
    '2026-01-01 10:00:09 configure a:arm64 1 <none>',
    '2026-01-01 10:00:09 status unpacked a:arm64 1',
    '2026-01-01 10:00:10 status half-configured a:arm64 1',
    '2026-01-01 10:00:15 status installed a:arm64 1',
    '2026-01-01 10:00:15 configure b:all 1 <none>',
    '2026-01-01 10:00:16 status half-configured b:all 1',
    '2026-01-01 10:00:17 status installed b:all 1',
    '2026-01-01 10:00:20 trigproc libc-bin:arm64 2 <none>',
  ].join('\n');
  const p = dpkgProfile(log, new Date('2026-01-01T10:00:00Z'));
  assert.equal(p.unpacked, 2);
  assert.equal(p.unpackSeconds, 4);
  assert.equal(p.configured, 2);
  assert.equal(p.configureSeconds, 8);
  assert.equal(p.triggerSeconds, 3);
  assert.deepEqual(p.slowest[0], ['a:arm64', 6]);
  assert.equal(dpkgProfile(log, new Date('2026-01-01T11:00:00Z')).unpacked, 0, 'older lines are not counted');
});
