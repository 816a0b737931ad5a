// NN-packages and NN-packages-nr: apt-get install inside the target.
import { formatCommand } from '../../exec.ts';
import { aptOptions, inChroot, runInChroot, type PlanContext, type StepFactory } from '../step.ts';

function installArgs(ctx: PlanContext, packages: readonly string[], recommends: boolean): string[] {
  return ['apt-get', 'install', ...aptOptions(ctx.config), ...(recommends ? [] : ['--no-install-recommends']), ...packages];
}

export const packagesStep: StepFactory = (sub) => {
  const packages = sub.packages ?? [];
  const recommends = sub.kind === 'packages';
  return {
    title: `${sub.name}: install ${packages.length} package${packages.length === 1 ? '' : 's'}`,
    tools: ['unshare', 'chroot', 'mount'],
    describe: (ctx) => [formatCommand(inChroot(ctx, installArgs(ctx, packages, recommends)))],
    async run(ctx) {
      if (packages.length === 0) return;
      await runInChroot(ctx, installArgs(ctx, packages, recommends), { step: `${ctx.stage.id}/${sub.name}` });
    },
  };
};
