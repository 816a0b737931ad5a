// The plan: the whole build as one immutable value, made before anything runs — every stage with
// its cache key, where the build starts (work tree, cache, or the image reused), and the exact
// operations of every step. `--dry-run` prints it (plan/print.ts); one executor runs it
// (plan/execute.ts).
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BuildConfig } from '../config/schema.ts';
import { withoutCredentials } from '../config/urls.ts';
import { isForeign, toolsKey, toolsRoot } from '../chroot/tools.ts';
import { CACHE_TOOLS, type Cache } from '../cache/cache.ts';
import { exportNames } from '../image/export.ts';
import type { ImageNames } from '../image/naming.ts';
import { buildSummary, type Owner } from '../deploy/deploy.ts';
import { pihubVersion } from '../core/version.ts';
import { imageOps } from './deliver.ts';
import type { Overlay } from '../stages/overlays.ts';
import type { StageDef } from '../stages/load.ts';
import { stepFor } from '../stages/steps/index.ts';
import { DEBIAN_ARCHIVE_KEYRING, type PlanContext } from '../stages/step.ts';
import { buildCredentials, type BuildCredentials } from '../stages/credentials.ts';
import type { BuildInputs } from './inputs.ts';
import { ARCHIVE, canonicalJson, digestTree, engineDigest, keyDeclarations, keyValues, sha256, stageKey } from './keys.ts';
import { deepFreeze, toolsOf, type Op } from '../core/ops.ts';
import { MARKER, restoreOps, stageRunOps, type PlanPaths } from './stage-ops.ts';

export { MARKER, SNAPSHOT_MIN_MS, type PlanPaths } from './stage-ops.ts';

/**
 * Where the engine code a stage's result depends on starts: how its inputs are read, how a stage
 * runs, every step kind, how operations run. The keys cover these and everything they import
 * (plan/keys.ts: engineClosure); the image's key likewise from the export and the handing over.
 */
export const STAGE_ENTRIES = ['plan/inputs.ts', 'plan/stage-ops.ts', 'stages/steps/index.ts', 'plan/run.ts'];
export const IMAGE_ENTRIES = ['plan/deliver.ts', 'plan/run.ts'];

/**
 * Where a stage's result comes from: `skip` (a later stage's result is used), `work-tree` (the
 * work tree holds it already), `restore` (from the cache), `run`.
 */
export type StageStart = 'skip' | 'work-tree' | 'restore' | 'run';

export interface PlannedStage {
  def: StageDef;
  /** Undefined when the archive's Release date is unknown (a dry run without network). */
  key?: string;
  /** A usable cache entry exists (whether or not the build needs it). */
  cached: boolean;
  start: StageStart;
  /** The operations for its start: restore or run; none otherwise. */
  ops: readonly Op[];
}

export interface Plan {
  config: BuildConfig;
  configLabel: string;
  overlays: readonly Overlay[];
  date: string;
  paths: PlanPaths;
  /** Host programs the build runs, checked before it starts. */
  hostTools: ReadonlySet<string>;
  /** The keyring the base's main archive is checked with, on the build machine. */
  keyring: string;
  /** URLs with credentials the build gives apt and npm apart from their command lines. */
  credentials?: BuildCredentials;
  release?: string;
  stages: readonly PlannedStage[];
  image: {
    key?: string;
    names: ImageNames;
    /** The exported image of these very inputs is in the cache: no stage runs. */
    reuse: boolean;
    /** The export and the handing over (plan/deliver.ts), or the cached image's. */
    ops: readonly Op[];
  };
  /** Warnings and advice, for the log and the end of the output. */
  notes: readonly string[];
}

export interface PlanOptions {
  workDir: string;
  outDir: string;
  cache: Cache;
  /** The archive's Release date; undefined when unknown (a dry run without network): then nothing counts as cached. */
  release?: string;
  /** The Release date of each extra repository suite of the base (`NAME SUITE` → date). */
  repositoryReleases?: Record<string, string>;
  /** This cache's salt for secrets in keys. */
  salt: string;
  noCache: boolean;
  /** Check the entries the build will use (and discard damaged ones); a dry run only looks. */
  verify: boolean;
  /** When the SBOM says it was made (SOURCE_DATE_EPOCH or now). */
  sbomCreated: string;
  /** Who ran `sudo pihub build`: the image in deploy/ is theirs. */
  owner?: Owner;
}

export function planPaths(config: BuildConfig, o: Pick<PlanOptions, 'workDir' | 'outDir' | 'cache'>): PlanPaths {
  const work = join(o.workDir, config.name);
  return {
    work,
    rootfs: join(work, 'rootfs'),
    cache: o.cache.dir,
    debs: join(o.cache.dir, 'debs', `${config.base.suite}-${config.base.architecture}`),
    deploy: o.outDir,
    export: join(work, 'export'),
    marker: join(work, MARKER),
  };
}

/** Chain the stage keys: each covers its parent, its files, the values it reads, the base and pihub's code. */
export function stageKeys(inputs: BuildInputs, release: string, salt: string, repositoryReleases: Record<string, string> = {}): { stages: string[]; image: string } {
  // The profile's name decides nothing by itself: its suite, architecture, mirror and components
  // (in the config) and what it changes in the stages' package lists do. The consoles are a
  // value the system stage reads (its key has them), not part of every stage's.
  const { profile: _name, consoles: _consoles, ...values } = { ...inputs.config.base, mirror: withoutCredentials(inputs.config.base.mirror) } as typeof inputs.config.base & { profile?: string };
  const changes = inputs.packageChanges && Object.keys(inputs.packageChanges).length ? inputs.packageChanges : undefined;
  // Extra repositories: where, which suites and components, and their keyrings' content.
  const repos = inputs.base?.profile.repositories.length
    ? inputs.base.profile.repositories.map((r) => ({
      ...r,
      uri: withoutCredentials(r.uri),
      keyring: sha256(readFileSync(inputs.base!.keyrings.repositories[r.name]!)),
      release: r.suites.map((s) => repositoryReleases[`${r.name} ${s}`] ?? 'unknown'),
    }))
    : undefined;
  // Extra suites of the main archive (e.g. backports): which, and their Release dates.
  const suites = inputs.base?.profile.extra_suites.length
    ? inputs.base.profile.extra_suites.map((s) => ({ suite: s, release: repositoryReleases[`${ARCHIVE} ${s}`] ?? 'unknown' }))
    : undefined;
  const base = { ...values, release, packages: changes, repositories: repos, suites };
  let parent: string | null = null;
  const stages = inputs.stages.map((def) => {
    parent = stageKey({
      parent,
      stage: def.id,
      files: digestTree(def.dir),
      values: keyValues(inputs.config, def.reads, salt),
      declarations: keyDeclarations(def.reads),
      base,
      implementation: engineDigest(STAGE_ENTRIES),
    });
    return parent;
  });
  const c = inputs.config;
  const image = sha256(canonicalJson({ last: parent, name: c.name, image: c.image, implementation: engineDigest(IMAGE_ENTRIES), pihub: pihubVersion() })).slice(0, 32);
  return { stages, image };
}

function workTreeKey(paths: PlanPaths): string | undefined {
  return existsSync(paths.marker) && existsSync(paths.rootfs) ? readFileSync(paths.marker, 'utf8').trim() : undefined;
}

/** The date in the name of a cached compressed image, if that name is one this config gives (with that date). */
function dateOfImage(config: BuildConfig, compressed: string): string | undefined {
  for (const [date] of compressed.matchAll(/\d{4}-\d{2}-\d{2}/g)) if (exportNames(config, date).compressed === compressed) return date;
  return undefined;
}

/** Make the plan. With `verify`, the cache entries it will use are checked now (damaged ones discarded, with a note). */
export async function makePlan(inputs: BuildInputs, o: PlanOptions): Promise<Plan> {
  const { config } = inputs;
  const paths = planPaths(config, o);
  const notes: string[] = [];
  const keys = o.release ? stageKeys(inputs, o.release, o.salt, o.repositoryReleases) : undefined;
  const stageSteps = inputs.stages.map((def) => def.substeps.map(stepFor));

  const damaged = (what: string, key: string, problem: string) => {
    notes.push(`the cached ${what} (key ${key.slice(0, 12)}) is damaged: ${problem}; discarded, it is made again`);
  };
  const cached = inputs.stages.map((_, i) => !o.noCache && keys !== undefined && o.cache.hasStage(keys.stages[i]!));
  let reuse = !o.noCache && keys !== undefined && o.cache.hasImage(keys.image);
  // A reused image keeps the names it was made with (the image key holds no date: an image built
  // on an earlier day of the same archive is the same image). An entry whose name this config
  // would not give (another naming) is made again: its files could not be placed under the names
  // the plan shows.
  let imageDate = inputs.date;
  if (reuse) {
    const label = o.cache.readMeta('image', keys!.image)?.label;
    const date = label === undefined ? undefined : dateOfImage(config, label);
    if (date) {
      imageDate = date;
    } else {
      notes.push(`the cached image (key ${keys!.image.slice(0, 12)}) is named ${label ?? '(no name)'}, not as this build names its image; ${o.verify ? 'discarded, it is' : 'a build discards it: the image would be'} made again`);
      if (o.verify) o.cache.discard('image', keys!.image);
      reuse = false;
    }
  }
  if (reuse && o.verify) {
    const problem = await o.cache.verify('image', keys!.image);
    if (problem) {
      damaged('image', keys!.image, problem);
      o.cache.discard('image', keys!.image);
      reuse = false;
    }
  }
  // The last stage whose result is cached (or in the work tree already); everything after it runs.
  const inTree = workTreeKey(paths);
  let resumeAt = -1;
  for (;;) {
    resumeAt = -1;
    cached.forEach((c, i) => {
      if (c || (keys && keys.stages[i] === inTree)) resumeAt = i;
    });
    if (reuse || resumeAt < 0 || !o.verify || keys!.stages[resumeAt] === inTree) break;
    const key = keys!.stages[resumeAt]!;
    const problem = await o.cache.verify('stage', key);
    if (!problem) break;
    damaged(`stage ${inputs.stages[resumeAt]!.id}`, key, problem);
    o.cache.discard('stage', key);
    cached[resumeAt] = false;
  }

  const tools = keys && isForeign(config) ? toolsRoot(o.cache.dir, toolsKey(config, o.release!)) : isForeign(config) ? join(o.cache.dir, 'tools', '<key>', 'root') : undefined;
  const firstRun = reuse ? -1 : resumeAt + 1;
  const keyring = inputs.base?.keyrings.archive ?? DEBIAN_ARCHIVE_KEYRING;
  const credentials = buildCredentials(config, inputs.base?.profile.repositories);
  const stages: PlannedStage[] = inputs.stages.map((def, i) => {
    const key = keys?.stages[i];
    const start: StageStart = reuse || i < resumeAt ? 'skip' : i === resumeAt ? (key === inTree ? 'work-tree' : 'restore') : 'run';
    const ctx: PlanContext = { config, paths, stage: def, release: o.release, tools, keyring, credentials };
    const ops = start === 'restore' ? restoreOps(def, key!, paths, o.cache) : start === 'run' ? stageRunOps(ctx, stageSteps[i]!, key, o.cache, tools !== undefined && i === firstRun) : [];
    return { def, key, cached: cached[i]!, start, ops };
  });
  const names = exportNames(config, imageDate);
  const imageKey = keys?.image;
  const summary = buildSummary(config, inputs.date, stages);
  const leftovers = credentials ? [...credentials.apt, ...(credentials.npm ? [credentials.npm] : [])] : [];
  const deliver = { config, paths, credentials: leftovers, key: imageKey, lastStageKey: stages.at(-1)?.key, date: imageDate, names, summary, cache: o.cache, sbomCreated: o.sbomCreated, owner: o.owner };
  const imageOpsNow = imageOps({ ...deliver, reuse });
  // What a build of these inputs may run on the build machine, whatever the cache holds today:
  // every step's tools, the programs of the planned operations, a restore's and a fresh export's.
  const hostTools = new Set<string>(CACHE_TOOLS);
  for (const steps of stageSteps) for (const step of steps) for (const t of step.tools) hostTools.add(t);
  for (const ops of [...stages.map((s) => s.ops), imageOps({ ...deliver, reuse: false })]) for (const t of toolsOf(ops)) hostTools.add(t);
  return deepFreeze({
    config,
    configLabel: inputs.configLabel,
    overlays: inputs.overlays,
    date: inputs.date,
    paths,
    hostTools,
    keyring,
    credentials,
    release: o.release,
    stages,
    image: { key: imageKey, names, reuse, ops: imageOpsNow },
    notes,
  });
}
