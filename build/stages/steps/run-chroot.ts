// NN-run-chroot.sh: a script inside the target (emulated through qemu-user for a foreign architecture).
import { formatCommand } from '../../exec.ts';
import { inChroot, runInChroot, STAGE_MOUNT, type StepFactory } from '../step.ts';
import type { Substep } from '../load.ts';

function args(sub: Substep): string[] {
  return [...sub.interpreter!, `${STAGE_MOUNT}/${sub.name}`];
}

export const runChrootStep: StepFactory = (sub) => ({
  title: `${sub.name}: run in the target`,
  tools: ['unshare', 'chroot', 'mount'],
  describe: (ctx) => [formatCommand(inChroot(ctx, args(sub)))],
  async run(ctx) {
    await runInChroot(ctx, args(sub), { step: `${ctx.stage.id}/${sub.name}` });
  },
});
