// NN-run-chroot.sh: a script inside the target (emulated through qemu-user for a foreign architecture).
import { inTarget, scriptCommand, stepName, STAGE_MOUNT, withNativeTools, type StepFactory } from '../step.ts';

export const runChrootStep: StepFactory = (sub) => ({
  title: `${sub.name}: run in the target`,
  tools: ['unshare', 'chroot', 'mount'],
  usesPackageCache: true,
  ops: (ctx) => {
    const step = stepName(ctx, sub);
    return withNativeTools(ctx, step, [inTarget(ctx, scriptCommand(sub.interpreter!, `${STAGE_MOUNT}/${sub.name}`), step)]);
  },
});
