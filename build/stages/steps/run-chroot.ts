// NN-run-chroot.sh: a script inside the target (emulated through qemu-user for a foreign architecture).
import { formatCommand } from '../../exec.ts';
import { inChroot, NATIVE, runInChroot, STAGE_MOUNT, type StepFactory } from '../step.ts';
import type { Substep } from '../load.ts';

function args(sub: Substep): string[] {
  return [...sub.interpreter!, `${STAGE_MOUNT}/${sub.name}`];
}

export const runChrootStep: StepFactory = (sub) => ({
  title: `${sub.name}: run in the target`,
  tools: ['unshare', 'chroot', 'mount'],
  usesPackageCache: true,
  describe: (ctx) => {
    const run = formatCommand(inChroot(ctx, args(sub)));
    if (!ctx.tools) return [run];
    return [formatCommand(inChroot(ctx, NATIVE('on'))), run, formatCommand(inChroot(ctx, NATIVE('off')))];
  },
  async run(ctx) {
    const step = `${ctx.stage.id}/${sub.name}`;
    if (!ctx.tools) {
      await runInChroot(ctx, args(sub), { step });
      return;
    }
    await runInChroot(ctx, NATIVE('on'), { step });
    try {
      await runInChroot(ctx, args(sub), { step });
    } finally {
      await runInChroot(ctx, NATIVE('off'), { step });
    }
  },
});
