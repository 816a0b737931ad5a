// NN-bootstrap: mmdebstrap creates the root filesystem: Debian's essential packages, installed
// without emulation (mmdebstrap's chrootless mode: the build machine's dpkg with --root, and
// maintainer scripts that support DPKG_ROOT, as every essential package does), plus any
// packages listed (they must support DPKG_ROOT too). Everything else goes in NN-packages.
import { rmSync } from 'node:fs';
import type { Command } from '../../core/exec.ts';
import { isolatedCommand } from '../../chroot/chroot.ts';
import { clearRecords, recordsDir } from '../../cache/restore.ts';
import { withoutCredentials } from '../../config/urls.ts';
import { DEBIAN_ARCHIVE_KEYRING, mmdebstrapAptOptions, stepName, trustOnly, type PlanContext, type Step, type StepFactory } from '../step.ts';

/** Files mmdebstrap leaves in the target with the options it was given. */
export const BUILD_ONLY_FILES = ['/etc/dpkg/dpkg.cfg.d/99mmdebstrap', '/etc/apt/apt.conf.d/99mmdebstrap'];

export function mmdebstrapCommand(ctx: PlanContext, packages: readonly string[], suites: readonly string[] = []): Command {
  const { base } = ctx.config;
  const args = [
    '--mode=chrootless',
    '--variant=essential',
    `--architectures=${base.architecture}`,
    `--components=${base.components.join(',')}`,
    // Keep the package lists: later stages install from them.
    '--skip=cleanup/apt/lists',
    // No fsync per file while dpkg unpacks (pi-gen and debootstrap do the same); the image is
    // written out as a whole at export.
    '--dpkgopt=force-unsafe-io',
    ...trustOnly(ctx.keyring ?? DEBIAN_ARCHIVE_KEYRING, ctx.paths).options,
  ];
  if (packages.length) args.push(`--include=${packages.join(',')}`);
  args.push(...mmdebstrapAptOptions(ctx));
  // Downloaded .debs land in pihub's cache, which is unmounted before mmdebstrap's own clean-up.
  args.push(
    `--setup-hook=mkdir -p "$1/var/cache/apt/archives" && mount --bind ${ctx.paths.debs} "$1/var/cache/apt/archives"`,
    '--customize-hook=umount "$1/var/cache/apt/archives"',
    // mmdebstrap writes --dpkgopt and --aptopt into the target for good; they are build-time
    // options (no fsync, the build machine's proxy and credential file), so they go before the first snapshot.
    // Later steps pass them per command (DPKG_FORCE, apt's -o; stages/step.ts).
    `--customize-hook=rm -f ${BUILD_ONLY_FILES.map((f) => `"$1${f}"`).join(' ')}`,
    base.suite,
    ctx.paths.rootfs,
    // Also the target's sources.list until the last stage writes the card's: never with credentials.
    withoutCredentials(base.mirror),
    // The base's extra suites of the same archive (e.g. backports), as sources.list lines.
    ...suites.map((s) => `deb ${withoutCredentials(base.mirror)} ${s} ${base.components.join(' ')}`),
  );
  // A private mount namespace: if mmdebstrap is killed, its mounts go with it.
  return isolatedCommand(['mmdebstrap', args]);
}

export const bootstrapStep: StepFactory = (sub) => {
  const packages = sub.packages ?? [];
  const suites = sub.suites ?? [];
  const step: Step = {
    title: `${sub.name}: mmdebstrap ${packages.length} packages${suites.length ? ` (suites ${suites.join(', ')} too)` : ''}`,
    tools: ['mmdebstrap', 'unshare', 'arch-test'],
    usesPackageCache: true,
    ops: (ctx) => [
      {
        kind: 'do',
        text: `rm -rf ${ctx.paths.rootfs} ${recordsDir(ctx.paths.rootfs)}`,
        fn: () => {
          clearRecords(ctx.paths.rootfs);
          rmSync(ctx.paths.rootfs, { recursive: true, force: true });
        },
      },
      trustOnly(ctx.keyring ?? DEBIAN_ARCHIVE_KEYRING, ctx.paths).prepare,
      { kind: 'run', command: mmdebstrapCommand(ctx, packages, suites), step: stepName(ctx, sub) },
    ],
  };
  return step;
};
