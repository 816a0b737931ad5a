// Build-only settings (no fsync, the build machine's proxy, policy-rc.d, diversions) never reach the card.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { buildLeftovers, verifyNoBuildLeftovers } from '../../build/chroot/leftovers.ts';
import { mmdebstrapCommand } from '../../build/stages/steps/bootstrap.ts';
import { chrootEnv, aptOptions } from '../../build/stages/step.ts';
import { resolveConfig, setLayer } from '../../build/config/load.ts';
import type { PlanContext } from '../../build/stages/step.ts';
import { tmpTree } from '../helpers/tmp.ts';

const PROXY = 'http://10.0.0.2:3142';

function ctx(sets: string[] = []): PlanContext {
  const config = resolveConfig(sets.length ? [setLayer(sets)] : []);
  const stage = { id: '00-bootstrap', dir: '/s', description: '', reads: [], skip: false, substeps: [], origin: 'stage' as const };
  return { config, stage, paths: { work: '/w', rootfs: '/w/rootfs', cache: '/c', debs: '/c/debs', deploy: '/d' } };
}

test('mmdebstrap gets no-fsync and the proxy for its own run, and its customize hook deletes both files before the first snapshot', () => {
  const [, args] = mmdebstrapCommand(ctx([`apt_proxy=${PROXY}`]), ['apt']);
  assert.ok(args.includes('--dpkgopt=force-unsafe-io'));
  assert.ok(args.includes(`--aptopt=Acquire::http::Proxy "${PROXY}"`));
  const hooks = args.filter((a) => a.startsWith('--customize-hook='));
  assert.equal(hooks.at(-1), '--customize-hook=rm -f "$1/etc/dpkg/dpkg.cfg.d/99mmdebstrap" "$1/etc/apt/apt.conf.d/99mmdebstrap"');
});

test('later steps get the options per command: DPKG_FORCE (keeping dpkg\'s default forces) and apt -o', () => {
  const env = chrootEnv(ctx([`apt_proxy=${PROXY}`]));
  assert.equal(env.DPKG_FORCE, 'security-mac,downgrade,unsafe-io');
  assert.equal(env.http_proxy, PROXY);
  const opts = aptOptions(ctx([`apt_proxy=${PROXY}`]), 'host');
  assert.deepEqual(opts.slice(-2), ['-o', `Acquire::http::Proxy=${PROXY}`]);
  assert.equal(aptOptions(ctx(), 'host').some((o) => o.includes('Proxy')), false);
});

test('the check before export finds every build-only setting, and passes a clean tree', () => {
  const dirty = tmpTree('pihub-leftovers-', {
    'etc/dpkg/dpkg.cfg.d/99mmdebstrap': 'force-unsafe-io\n',
    'etc/dpkg/dpkg.cfg.d/excludes': 'path-exclude=/usr/share/doc/*\n',
    'etc/apt/apt.conf.d/99mmdebstrap': 'Acquire::http::Proxy "x";\n',
    'etc/apt/apt.conf.d/50proxy': `Acquire::http::Proxy "${PROXY}";\n`,
    'usr/sbin/policy-rc.d': '#!/bin/sh\n# Written by pihub during the build: no service starts in the build chroot.\nexit 101\n',
    'var/lib/dpkg/diversions': '/usr/bin/py3compile\n/usr/bin/py3compile.pihub\npihub\n/usr/bin/x\n/usr/bin/x.distrib\nlocal\n',
  });
  const found = buildLeftovers(dirty, PROXY);
  assert.deepEqual(found, [
    '/etc/dpkg/dpkg.cfg.d/99mmdebstrap turns on force-unsafe-io (no fsync while dpkg unpacks)',
    '/etc/apt/apt.conf.d/50proxy names the build\'s apt proxy http://10.0.0.2:3142',
    '/etc/apt/apt.conf.d/99mmdebstrap holds mmdebstrap\'s build options',
    '/usr/sbin/policy-rc.d (pihub\'s, no service may start) is still there',
    '/usr/bin/py3compile is still diverted by pihub',
  ]);
  assert.throws(() => verifyNoBuildLeftovers(dirty, PROXY), /the image would keep settings meant for the build only:\n {2}- \/etc\/dpkg\/dpkg\.cfg\.d\/99mmdebstrap turns on force-unsafe-io/);

  const clean = tmpTree('pihub-clean-', {
    'etc/dpkg/dpkg.cfg.d/excludes': 'path-exclude=/usr/share/doc/*\n',
    // A proxy the owner put in for the card on purpose is not the build's.
    'etc/apt/apt.conf.d/50proxy': 'Acquire::http::Proxy "http://cacher.home:3142";\n',
    'usr/sbin/policy-rc.d': '#!/bin/sh\nexit 0\n',
    'var/lib/dpkg/diversions': '/usr/bin/x\n/usr/bin/x.distrib\nlocal\n',
  });
  assert.deepEqual(buildLeftovers(clean, PROXY), []);
  verifyNoBuildLeftovers(clean, null);
  assert.deepEqual(buildLeftovers(join(clean, 'nonexistent'), null), []);
});
