// NN-packages and NN-packages-nr: apt-get install into the target.
//
// For a foreign architecture (arm64 on an x86 build machine) three things run natively
// instead of under qemu-user, while the image gets the same files:
//  - apt itself (dependency resolution, downloads), pointed at the target;
//  - unpacking the packages (dpkg-split.sh: the host's dpkg with --root); maintainer scripts
//    and configuring stay in the target;
//  - byte-compiling Python: py3compile is deferred while apt runs, then a native Python of
//    the same version compiles the same files (py3compile-native.py);
//  - depmod and dracut-install, as in every step in the target (native-tools.sh).
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from '../../core/exec.ts';
import { chrootCommand } from '../../chroot/chroot.ts';
import { DPKG_SPLIT, ENGINE_DIR, ENGINE_MOUNT, installedVersion, isForeign } from '../../chroot/tools.ts';
import type { Op } from '../../core/ops.ts';
import { noteProfile } from '../profile.ts';
import { aptOptions, chrootEnv, inTarget, stepName, toolsBinds, withNativeTools, type PlanContext, type StepFactory } from '../step.ts';

function installArgs(ctx: PlanContext, packages: readonly string[], recommends: boolean, where: 'host' | 'target'): string[] {
  return ['install', ...aptOptions(ctx, where), ...(recommends ? [] : ['--no-install-recommends']), ...packages];
}

/** apt-get on the build machine, working on the target's package database. */
export function nativeAptCommand(ctx: PlanContext, packages: readonly string[], recommends: boolean): Command {
  const root = ctx.paths.rootfs;
  const arch = ctx.config.base.architecture;
  const args = [
    '-o', `Dir=${root}/`,
    '-o', `Dir::State::status=${root}/var/lib/dpkg/status`,
    '-o', `Dir::Cache::Archives=${ctx.paths.debs}/`,
    '-o', `Dir::Log=${root}/var/log/apt`,
    '-o', `Dir::Bin::dpkg=${DPKG_SPLIT}`,
    '-o', `APT::Architecture=${arch}`,
    '-o', `APT::Architectures::=${arch}`,
    '-o', 'APT::Sandbox::User=root',
    // apt sets this PATH for dpkg and so for maintainer scripts: the native helpers first.
    '-o', `DPkg::Path=${chrootEnv(ctx).PATH}`,
    ...installArgs(ctx, packages, recommends, 'host'),
  ];
  // The mounts dpkg's chroot needs for maintainer scripts, and the target's own dpkg
  // configuration in place of the build machine's (path excludes and the like).
  return chrootCommand(root, ['apt-get', ...args], toolsBinds(ctx), { noChroot: true, hostBinds: [{ source: join(root, 'etc/dpkg'), target: '/etc/dpkg' }] });
}

const DEFER = (mode: 'on' | 'off' | 'replay') => ['/bin/sh', `${ENGINE_MOUNT}/py3compile-defer.sh`, mode];

export function nativeCompileCommand(tools: string, rootfs: string): Command {
  return chrootCommand(tools, ['/usr/bin/python3', `${ENGINE_MOUNT}/py3compile-native.py`, '/target'], [
    { source: rootfs, target: '/target' },
    { source: ENGINE_DIR, target: ENGINE_MOUNT, readOnly: true },
  ]);
}

const pythonOf = (root: string) => installedVersion(root, 'python3-minimal');

/** Byte-compile what py3compile was asked for: natively when the Pythons match, else in the target. */
function compileDeferred(ctx: PlanContext, step: string): Op {
  const tools = ctx.tools ?? '<tools root>';
  return {
    kind: 'if',
    text: `py3compile was asked for something (${TODO})`,
    test: () => existsSync(join(ctx.paths.rootfs, TODO)),
    then: [{
      kind: 'if',
      text: 'the target\'s python3 is the native tools root\'s version',
      test: () => pythonOf(ctx.paths.rootfs) !== undefined && pythonOf(ctx.paths.rootfs) === pythonOf(tools),
      then: [{ kind: 'run', command: nativeCompileCommand(tools, ctx.paths.rootfs), step }],
      else: [
        {
          kind: 'do',
          text: 'say so in the build log',
          fn: (st) => st.note(`${step}: target python3 ${pythonOf(ctx.paths.rootfs) ?? 'missing'} differs from the native ${pythonOf(tools) ?? 'missing'}; byte-compiling under emulation`),
        },
        inTarget(ctx, DEFER('replay'), step),
      ],
    }],
  };
}

const TODO = 'var/lib/pihub/py3compile.todo';

export const packagesStep: StepFactory = (sub) => {
  const packages = sub.packages ?? [];
  const recommends = sub.kind === 'packages';
  return {
    title: `${sub.name}: install ${packages.length} package${packages.length === 1 ? '' : 's'}`,
    tools: ['unshare', 'chroot', 'mount', 'apt-get', 'dpkg', 'mmdebstrap'],
    usesPackageCache: true,
    ops: (ctx) => {
      if (packages.length === 0) return [];
      const step = stepName(ctx, sub);
      if (!isForeign(ctx.config)) return [inTarget(ctx, ['apt-get', ...installArgs(ctx, packages, recommends, 'target')], step)];
      return [
        // dpkg's log has local time; the build machine and the target agree on UTC in the chroot.
        { kind: 'do', hidden: true, text: 'note the time', fn: (st) => { st.scratch.since = new Date(Math.floor(Date.now() / 1000) * 1000); } },
        inTarget(ctx, DEFER('on'), step),
        {
          kind: 'try',
          body: withNativeTools(ctx, step, [{
            kind: 'run',
            command: nativeAptCommand(ctx, packages, recommends),
            step,
            cleanEnv: true,
            env: { ...chrootEnv(ctx), PIHUB_TARGET_ROOT: ctx.paths.rootfs },
            valuesEnv: true,
          }]),
          finally: [inTarget(ctx, DEFER('off'), step)],
        },
        { kind: 'do', hidden: true, text: 'note the time', fn: (st) => { st.scratch.compileStarted = Date.now(); } },
        compileDeferred(ctx, step),
        {
          kind: 'do',
          text: 'note where dpkg spent its time (the build profile, in the log)',
          hidden: true,
          fn: (st) => noteProfile(ctx.paths.rootfs, st.note, step, st.scratch.since as Date, Math.round((Date.now() - (st.scratch.compileStarted as number)) / 1000)),
        },
      ];
    },
  };
};
