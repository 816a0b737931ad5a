// NN-debconf: debconf-set-selections inside the target; the file is a template.
import { readFileSync } from 'node:fs';
import { formatCommand } from '../../exec.ts';
import { renderTemplate } from '../template.ts';
import { inChroot, runInChroot, type StepFactory } from '../step.ts';

const COMMAND = ['debconf-set-selections'];

export const debconfStep: StepFactory = (sub) => ({
  title: `${sub.name}: preseed debconf`,
  tools: ['unshare', 'chroot', 'mount'],
  describe: (ctx) => [`${formatCommand(inChroot(ctx, COMMAND))} < ${sub.name}`],
  async run(ctx) {
    const text = renderTemplate(readFileSync(sub.path, 'utf8'), (k) => ctx.values[k]);
    await runInChroot(ctx, COMMAND, { input: text, step: `${ctx.stage.id}/${sub.name}` });
  },
});
