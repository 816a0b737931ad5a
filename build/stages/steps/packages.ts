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
import { formatCommand, type Command } from '../../exec.ts';
import { chrootCommand } from '../../chroot/chroot.ts';
import { UserError } from '../../errors.ts';
import {
  DPKG_SPLIT, ENGINE_DIR, ENGINE_MOUNT, describeTools, installedVersion, isForeign,
} from '../../chroot/tools.ts';
import { noteProfile } from '../profile.ts';
import { aptOptions, chrootEnv, inChroot, NATIVE, runInChroot, toolsBinds, type PlanContext, type StepContext, type StepFactory } from '../step.ts';

function installArgs(ctx: PlanContext, packages: readonly string[], recommends: boolean): string[] {
  return ['install', ...aptOptions(ctx.config), ...(recommends ? [] : ['--no-install-recommends']), ...packages];
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
    ...installArgs(ctx, packages, recommends),
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

/** Byte-compile what py3compile was asked for: natively when the Pythons match, else in the target. */
async function compileDeferred(ctx: StepContext, step: string): Promise<void> {
  if (!existsSync(join(ctx.paths.rootfs, 'var/lib/pihub/py3compile.todo'))) return;
  const tools = ctx.tools;
  if (!tools) throw new UserError('internal: the native tools root is missing');
  const target = installedVersion(ctx.paths.rootfs, 'python3-minimal');
  const native = installedVersion(tools, 'python3-minimal');
  if (target !== undefined && target === native) {
    await ctx.runner.run(nativeCompileCommand(tools, ctx.paths.rootfs), { step, onLine: ctx.onLine });
  } else {
    ctx.note(`${step}: target python3 ${target ?? 'missing'} differs from the native ${native ?? 'missing'}; byte-compiling under emulation`);
    await runInChroot(ctx, DEFER('replay'), { step });
  }
}

export const packagesStep: StepFactory = (sub) => {
  const packages = sub.packages ?? [];
  const recommends = sub.kind === 'packages';
  return {
    title: `${sub.name}: install ${packages.length} package${packages.length === 1 ? '' : 's'}`,
    tools: ['unshare', 'chroot', 'mount', 'apt-get', 'dpkg', 'mmdebstrap'],
    usesPackageCache: true,
    describe: (ctx) => {
      if (!isForeign(ctx.config)) return [formatCommand(inChroot(ctx, ['apt-get', ...installArgs(ctx, packages, recommends)]))];
      return [
        formatCommand(inChroot(ctx, DEFER('on'))),
        formatCommand(inChroot(ctx, NATIVE('on'))),
        formatCommand(nativeAptCommand(ctx, packages, recommends)),
        formatCommand(inChroot(ctx, NATIVE('off'))),
        formatCommand(inChroot(ctx, DEFER('off'))),
        describeTools(ctx.config, ctx.paths.cache, ctx.release),
        formatCommand(nativeCompileCommand(ctx.tools ?? '<tools root>', ctx.paths.rootfs)),
      ];
    },
    async run(ctx) {
      if (packages.length === 0) return;
      const step = `${ctx.stage.id}/${sub.name}`;
      if (!isForeign(ctx.config)) {
        await runInChroot(ctx, ['apt-get', ...installArgs(ctx, packages, recommends)], { step });
        return;
      }
      // dpkg's log has local time; the build machine and the target agree on UTC in the chroot.
      const since = new Date(Math.floor(Date.now() / 1000) * 1000);
      await runInChroot(ctx, DEFER('on'), { step });
      try {
        await runInChroot(ctx, NATIVE('on'), { step });
        try {
          await ctx.runner.run(nativeAptCommand(ctx, packages, recommends), {
            step,
            cleanEnv: true,
            env: { ...chrootEnv(ctx, ctx.values), PIHUB_TARGET_ROOT: ctx.paths.rootfs },
            onLine: ctx.onLine,
          });
        } finally {
          await runInChroot(ctx, NATIVE('off'), { step });
        }
      } finally {
        await runInChroot(ctx, DEFER('off'), { step });
      }
      const compileStarted = Date.now();
      await compileDeferred(ctx, step);
      noteProfile(ctx, step, since, Math.round((Date.now() - compileStarted) / 1000));
    },
  };
};
