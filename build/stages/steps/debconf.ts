// NN-debconf: debconf-set-selections inside the target; the file is a template.
import { readFileSync } from 'node:fs';
import { renderTemplate } from '../template.ts';
import { inTarget, stepName, type StepFactory } from '../step.ts';

export const debconfStep: StepFactory = (sub) => ({
  title: `${sub.name}: preseed debconf`,
  tools: ['unshare', 'chroot', 'mount'],
  ops: (ctx) => [
    inTarget(ctx, ['debconf-set-selections'], stepName(ctx, sub), {
      input: { text: sub.name, make: (st) => renderTemplate(readFileSync(sub.path, 'utf8'), (k) => st.values[k]) },
    }),
  ],
});
