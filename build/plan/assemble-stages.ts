// The stage list a build runs, from the stage folders and the overlays: overlay stages in their
// place, the base's package changes applied, its extra repositories after the bootstrap. A pure
// function of what was read: the stage definitions it is given are not changed.
import type { LoadedBase } from '../bases/load.ts';
import { basePackages } from '../bases/packages.ts';
import { InputError } from '../core/errors.ts';
import type { StageDef } from '../stages/load.ts';
import type { Overlay } from '../stages/overlays.ts';

export function assembleStages(builtIn: readonly StageDef[], overlays: readonly Overlay[], base: LoadedBase, changes: Record<string, string[]>): StageDef[] {
  const stages = orderStages(builtIn, overlays).map((stage) => ({
    ...stage,
    substeps: stage.substeps.map((sub) => (sub.packages ? { ...sub, packages: basePackages(sub.packages, changes) } : sub)),
  }));
  return withRepositories(withSuites(stages, base), base);
}

/** The bootstrap adds the base's extra suites of the main archive (e.g. backports) to apt's sources. */
function withSuites(stages: StageDef[], base: LoadedBase): StageDef[] {
  const suites = base.profile.extra_suites;
  if (!suites.length) return stages;
  return stages.map((s) => ({ ...s, substeps: s.substeps.map((x) => (x.kind === 'bootstrap' ? { ...x, suites: [...suites] } : x)) }));
}

/** Overlay stages go after the built-in stages numbered below 90, before the final ones (90–99). */
export function orderStages(builtIn: readonly StageDef[], overlays: readonly Overlay[]): StageDef[] {
  const active = builtIn.filter((s) => !s.skip);
  const early = active.filter((s) => Number(s.id.slice(0, 2)) < 90);
  const late = active.filter((s) => Number(s.id.slice(0, 2)) >= 90);
  return [...early, ...overlays.map((o) => o.stage), ...late];
}

/** The base's extra apt repositories go into the target right after the bootstrap, before any other package. */
function withRepositories(stages: StageDef[], base: LoadedBase): StageDef[] {
  const repos = base.profile.repositories;
  if (!repos.length) return stages;
  const i = stages.findIndex((s) => s.substeps.some((x) => x.kind === 'bootstrap'));
  if (i < 0) throw new InputError(`base \`${base.name}\` has extra apt repositories, but no stage bootstraps (NN-bootstrap) to add them after`);
  const stage = stages[i]!;
  const at = stage.substeps.findIndex((x) => x.kind === 'bootstrap');
  const boot = stage.substeps[at]!;
  const substeps = [...stage.substeps];
  substeps.splice(at + 1, 0, {
    kind: 'repositories',
    order: boot.order,
    name: `${String(boot.order).padStart(2, '0')}-repositories (base ${base.name})`,
    path: base.file,
    repositories: repos.map((repo) => ({ repo, keyring: base.keyrings.repositories[repo.name]! })),
  });
  return stages.map((s, j) => (j === i ? { ...stage, substeps } : s));
}
