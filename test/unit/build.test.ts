import { test } from 'node:test';
import { scratch } from '../helpers/tmp.ts';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { build, orderStages, type BuildOptions } from '../../build/build.ts';
import { InterruptedError } from '../../build/errors.ts';
import type { Runner } from '../../build/exec.ts';
import { FakeRunner } from '../../build/exec.ts';

function fakeMirror(): string {
  const dir = scratch('pihub-mirror-');
  mkdirSync(join(dir, 'dists/trixie'), { recursive: true });
  writeFileSync(join(dir, 'dists/trixie/InRelease'), 'Origin: Debian\nDate: Sat, 10 Jan 2026 09:00:00 UTC\n');
  return `file://${dir}`;
}

function options(over: Partial<BuildOptions>): BuildOptions {
  const root = scratch('pihub-build-');
  return {
    overlays: [],
    sets: [`base.mirror=${fakeMirror()}`],
    dryRun: false,
    outDir: join(root, 'deploy'),
    workDir: join(root, 'work'),
    cacheDir: join(root, 'cache'),
    noCache: false,
    quiet: true,
    signal: new AbortController().signal,
    isTTY: false,
    env: {},
    skipHostChecks: true,
    ...over,
  };
}

test('--dry-run prints every stage and step with its commands, and touches nothing', async () => {
  const o = options({ dryRun: true, runner: new FakeRunner() });
  const started = Date.now();
  const result = await build(o);
  assert.ok('plan' in result);
  const text = result.plan.join('\n');
  for (const stage of ['00-bootstrap', '10-system', '20-jupyterhub', '30-settings', '99-finalise']) {
    assert.match(text, new RegExp(`stage \\d/\\d ${stage}: .* \\[runs \\(key [0-9a-f]{12}\\)`));
  }
  assert.match(text, /\$ unshare --mount --pid --fork --kill-child -- mmdebstrap --mode=chrootless --variant=essential .* trixie \S+\/rootfs file:\/\//);
  // arm64 on this machine: apt and unpacking run natively, Python is byte-compiled natively.
  assert.match(text, /\$ .*enter\.sh \S+\/rootfs .*--no-chroot -- apt-get -o Dir=\S+\/rootfs\/ .*dpkg-split\.sh .* install -y .*linux-image-arm64 raspi-firmware/);
  assert.match(text, /-- \/bin\/sh \/run\/pihub\/engine\/py3compile-defer\.sh on/);
  assert.match(text, /-- \/usr\/bin\/python3 \/run\/pihub\/engine\/py3compile-native\.py \/target/);
  // Native stand-ins (depmod, dracut-install) around steps in the target, the tools root mounted.
  assert.match(text, /--ro-bind=\S+\/cache\/tools\/[0-9a-f]{32}\/root:\/run\/pihub\/tools .*-- \/bin\/sh \/run\/pihub\/engine\/native-tools\.sh on\n.*03-run-chroot\.sh\n.*native-tools\.sh off/);
  assert.match(text, /--ro-bind=\S+:\/run\/pihub\/tools .*--no-chroot -- apt-get/);
  assert.match(text, /\/root\/jupyterhub_config\.py \(root:root 0600, from template\)/);
  assert.match(text, /\$ genimage --config/);
  assert.match(text, /→ \S+\/deploy\/pihub-\d{4}-\d\d-\d\d-trixie-arm64\.img\.zst/);
  assert.ok(Date.now() - started < 5000, 'the plan is ready in under 5 seconds');
  for (const dir of [o.outDir, o.workDir, o.cacheDir]) assert.equal(existsSync(dir), false, `${dir} was created`);
});

test('the plan changes with the config: a --set that changes hub.port changes only the stages from 30-settings on', async () => {
  const base = options({ dryRun: true });
  const a = await build(base);
  const b = await build({ ...base, sets: [...base.sets, 'hub.port=8000'] });
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

test('Ctrl-C in the middle of a step: the step stops, cleanups run, nothing lands in deploy/', async () => {
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
  const o = options({ runner: hanging, signal: controller.signal });
  setTimeout(() => controller.abort('SIGINT'), 300);
  await assert.rejects(build(o), (err: Error) => {
    assert.ok(err instanceof InterruptedError);
    assert.equal(err.exitCode, 130);
    assert.match(err.message, /interrupted by SIGINT; cleaned up, nothing was written to deploy\//);
    return true;
  });
  assert.ok(started, 'the bootstrap step had started');
  const deployed = existsSync(o.outDir) ? readdirSync(o.outDir) : [];
  assert.deepEqual(deployed, ['pihub.log'], 'only the log is in deploy/');
  assert.equal(existsSync(join(o.workDir, 'pihub', 'rootfs.key')), false, 'the half-built rootfs is not marked as done');
  assert.deepEqual(existsSync(join(o.cacheDir, 'stages')) ? readdirSync(join(o.cacheDir, 'stages')) : [], [], 'nothing cached');
});

test('overlay stages go after the built-in stages below 90 and before the final ones', () => {
  const s = (id: string) => ({ id, dir: '', description: '', reads: [], skip: false, substeps: [], origin: 'stage' as const });
  const o = { name: 'x', dir: '', description: '', requires: [], layer: { label: '', data: {}, locator: { locate: () => undefined } }, stage: s('overlay-x') };
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
