// NN-run.sh: a script on the build machine, with ROOTFS_DIR pointing at the target.
import { isolatedCommand } from '../../chroot/chroot.ts';
import { scriptCommand, stepName, type StepFactory } from '../step.ts';

export const runStep: StepFactory = (sub) => ({
  title: `${sub.name}: run on the build machine`,
  tools: ['unshare'],
  ops: (ctx) => {
    const [program, ...args] = scriptCommand(sub.interpreter!, sub.path);
    return [{
      kind: 'run',
      command: isolatedCommand([program!, args]),
      step: stepName(ctx, sub),
      cwd: ctx.stage.dir,
      env: { ROOTFS_DIR: ctx.paths.rootfs, STAGE_DIR: ctx.stage.dir },
      valuesEnv: true,
      showEnv: ['ROOTFS_DIR'],
    }];
  },
});
