import type { Step } from '../step.ts';
import type { Substep } from '../load.ts';
import type { SubstepKind } from '../kinds.ts';
import { bootstrapStep } from './bootstrap.ts';
import { packagesStep } from './packages.ts';
import { debconfStep } from './debconf.ts';
import { filesStep } from './files.ts';
import { runStep } from './run.ts';
import { runChrootStep } from './run-chroot.ts';
import { repositoriesStep } from './repositories.ts';

const FACTORIES: Record<SubstepKind, (sub: Substep) => Step> = {
  bootstrap: bootstrapStep,
  debconf: debconfStep,
  'packages-nr': packagesStep,
  packages: packagesStep,
  files: filesStep,
  run: runStep,
  'run-chroot': runChrootStep,
  repositories: repositoriesStep,
};

export function stepFor(sub: Substep): Step {
  return FACTORIES[sub.kind](sub);
}
