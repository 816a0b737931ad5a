// NN-run.sh: a script on the build machine, with ROOTFS_DIR pointing at the target.
import { formatCommand, type Command } from '../../exec.ts';
import { isolatedCommand } from '../../chroot/chroot.ts';
import { valuesEnv } from '../values.ts';
import type { PlanContext, StepFactory } from '../step.ts';
import type { Substep } from '../load.ts';

function command(sub: Substep): Command {
  const [interp, ...args] = sub.interpreter!;
  return isolatedCommand([interp!, [...args, sub.path]]);
}

function env(ctx: PlanContext, values: Record<string, unknown>): Record<string, string> {
  return { ROOTFS_DIR: ctx.paths.rootfs, STAGE_DIR: ctx.stage.dir, ...valuesEnv(values) };
}

export const runStep: StepFactory = (sub) => ({
  title: `${sub.name}: run on the build machine`,
  tools: ['unshare'],
  describe: (ctx) => [`ROOTFS_DIR=${ctx.paths.rootfs} ${formatCommand(command(sub))}`],
  async run(ctx) {
    await ctx.runner.run(command(sub), {
      cwd: ctx.stage.dir,
      env: env(ctx, ctx.values),
      step: `${ctx.stage.id}/${sub.name}`,
      onLine: ctx.onLine,
    });
  },
});
