// What a build is made from, read and checked before anything else: the config (file, overlays,
// --set), the overlays and the stage folders. Any problem here is bad input (exit 2).
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { displayPath, loadConfigFile, resolveConfig, setLayer, type ConfigLayer } from '../config/load.ts';
import { DEFAULT_BASE, builtBases, loadBase, loadBaseSpec, unbuildable, type LoadedBase } from '../bases/load.ts';
import { basePackages, packageChanges } from '../bases/packages.ts';
import { DEFAULTS, type BuildConfig } from '../config/schema.ts';
import { withSecretsHidden } from '../config/secrets.ts';
import { InputError } from '../errors.ts';
import { loadStages, type StageDef } from '../stages/load.ts';
import { resolveOverlays, shippedOverlays, verifyOwnedSettings, type Overlay } from '../stages/overlays.ts';
import { effectiveConfig } from '../stages/values.ts';

export const PROJECT_DIR = fileURLToPath(new URL('../..', import.meta.url));

export interface InputOptions {
  configPath?: string;
  overlays: readonly string[];
  sets: readonly string[];
  stagesDir?: string;
  overlaysDir?: string;
  env: NodeJS.ProcessEnv;
}

export interface BuildInputs {
  config: BuildConfig;
  /** How messages name the config: its file, or that there is none. */
  configLabel: string;
  overlays: Overlay[];
  /** In the order they run. */
  stages: StageDef[];
  /** The build date (SOURCE_DATE_EPOCH when set): part of the image's name. */
  date: string;
  /** The base profile; absent: the default base. */
  base?: LoadedBase;
  /** What the base changes in the stages' package lists (applied to `stages`; empty for the default base). */
  packageChanges?: Record<string, string[]>;
}

/** Overlay stages go after the built-in stages numbered below 90, before the final ones (90–99). */
export function orderStages(builtIn: readonly StageDef[], overlays: readonly Overlay[]): StageDef[] {
  const active = builtIn.filter((s) => !s.skip);
  const early = active.filter((s) => Number(s.id.slice(0, 2)) < 90);
  const late = active.filter((s) => Number(s.id.slice(0, 2)) >= 90);
  return [...early, ...overlays.map((o) => o.stage), ...late];
}

export function buildDate(env: NodeJS.ProcessEnv = process.env): string {
  const epoch = env.SOURCE_DATE_EPOCH ? Number(env.SOURCE_DATE_EPOCH) * 1000 : Date.now();
  return new Date(epoch).toISOString().slice(0, 10);
}

export function loadInputs(o: InputOptions): BuildInputs {
  const stagesDir = o.stagesDir ?? join(PROJECT_DIR, 'stages');
  const overlaysDir = o.overlaysDir ?? join(PROJECT_DIR, 'overlays');
  const fileLayer: ConfigLayer | undefined = o.configPath ? loadConfigFile(o.configPath) : undefined;
  const fromFile = fileLayer?.data.overlays;
  if (fromFile !== undefined && (!Array.isArray(fromFile) || fromFile.some((x) => typeof x !== 'string'))) {
    throw new InputError(`${fileLayer!.locator.locate(['overlays']) ?? fileLayer!.label}: \`overlays\` must be a list of overlay names or folders`);
  }
  // Paths in the config file are relative to its folder, as its other paths are; --overlay's to the working directory.
  const overlays = resolveOverlays([
    ...((fromFile as string[] | undefined) ?? []).map((spec, i) => ({ spec, from: fileLayer!.baseDir!, where: fileLayer!.locator.locate(['overlays', i]) })),
    ...o.overlays.map((spec) => ({ spec, from: process.cwd() })),
  ], overlaysDir);
  const sets = o.sets.length ? setLayer(o.sets) : undefined;
  // Overlays are chosen before any layer is merged: elsewhere `overlays` would be silently ignored.
  if (sets && Object.hasOwn(sets.data, 'overlays')) throw new InputError('--set overlays=…: overlays are chosen in the config file (`overlays:`) or with --overlay NAME');
  for (const x of overlays) {
    if (Object.hasOwn(x.layer.data, 'overlays')) throw new InputError(`${x.layer.label}: an overlay cannot choose overlays (\`overlays\`); name them in the config file or with --overlay`);
  }
  const layers = [...(fileLayer ? [fileLayer] : []), ...overlays.map((x) => x.layer), ...(sets ? [sets] : [])];
  const { layer: profileLayer, base } = baseLayer(layers);
  const config = effectiveConfig(resolveConfig([profileLayer, ...layers], o.env));
  config.overlays = overlays.map((x) => x.name);
  verifyOwnedSettings(config, DEFAULTS, overlays, [...shippedOverlays(overlaysDir), ...overlays]);
  for (const key of ['suite', 'architecture'] as const) {
    if (config.base[key] !== base.profile[key]) {
      throw new InputError(`\`base.${key}: ${config.base[key]}\` differs from the base profile \`${base.name}\` (${base.profile[key]}): the profile sets it; remove \`base.${key}\` and choose the profile with \`base: NAME\` (see \`pihub bases\`)`);
    }
  }
  const changes = packageChanges(base.profile, loadBase(DEFAULT_BASE).profile);
  const stages = orderStages(loadStages(stagesDir), overlays);
  for (const stage of stages) for (const sub of stage.substeps) if (sub.packages) sub.packages = basePackages(sub.packages, changes);
  addRepositories(stages, base);
  return {
    config,
    configLabel: fileLayer?.label ?? 'the default config (no --config)',
    overlays,
    stages,
    date: buildDate(o.env),
    base,
    packageChanges: changes,
  };
}

/** The base's extra apt repositories go into the target right after the bootstrap, before any other package. */
export function addRepositories(stages: StageDef[], base: LoadedBase): void {
  const repos = base.profile.repositories;
  if (!repos.length) return;
  const stage = stages.find((s) => s.substeps.some((x) => x.kind === 'bootstrap'));
  if (!stage) throw new InputError(`base \`${base.name}\` has extra apt repositories, but no stage bootstraps (NN-bootstrap) to add them after`);
  const at = stage.substeps.findIndex((x) => x.kind === 'bootstrap');
  const boot = stage.substeps[at]!;
  stage.substeps.splice(at + 1, 0, {
    kind: 'repositories',
    order: boot.order,
    name: `${String(boot.order).padStart(2, '0')}-repositories (base ${base.name})`,
    path: base.file,
    repositories: repos.map((repo) => ({ repo, keyring: base.keyrings.repositories[repo.name]! })),
  });
}

/**
 * The base profile's layer, merged first: its suite, architecture, mirror and components; the
 * layers' own `base.*` keys override them. `base: NAME` is short for `base: {profile: NAME}`
 * (rewritten here in each layer); the last layer that names a profile chooses it.
 */
export function baseLayer(layers: readonly ConfigLayer[]): { layer: ConfigLayer; base: LoadedBase } {
  let chosen: { name: string; where: string; dir?: string } | undefined;
  for (const layer of layers) {
    if (typeof layer.data.base === 'string') layer.data.base = { profile: layer.data.base };
    const profile = (layer.data.base as { profile?: unknown } | undefined)?.profile;
    if (profile !== undefined) {
      if (typeof profile !== 'string') throw new InputError(`${layer.locator.locate(['base']) ?? layer.label}: \`base\` must be the name of a base profile (see \`pihub bases\`)`);
      chosen = { name: profile, where: layer.locator.locate(['base']) ?? layer.label, dir: layer.baseDir };
    }
  }
  let base;
  try {
    base = loadBaseSpec(chosen?.name ?? DEFAULT_BASE, chosen?.dir);
  } catch (err) {
    throw err instanceof InputError && chosen ? new InputError(`${chosen.where}: ${err.message}`) : err;
  }
  const why = unbuildable(base.profile);
  if (why) {
    throw new InputError(
      `${chosen?.where ?? 'base'}: the base \`${base.name}\` (${base.profile.description}): ${why}; the bases it builds: ${builtBases().join(', ')} (see \`pihub bases\`)`,
    );
  }
  const p = base.profile;
  return {
    layer: {
      label: displayPath(base.file),
      data: { base: { profile: base.name, suite: p.suite, architecture: p.architecture, mirror: p.mirror, components: p.components } },
      locator: { locate: () => displayPath(base.file) },
    },
    base,
  };
}

/** Each overlay's config fragment as `key = value` lines, for the plan. */
export function overlaySettings(o: Overlay): string[] {
  const out: string[] = [];
  const walk = (v: unknown, path: string) => {
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
      for (const [k, x] of Object.entries(v)) walk(x, path ? `${path}.${k}` : k);
    } else {
      out.push(`${path} = ${JSON.stringify(v)}`);
    }
  };
  walk(withSecretsHidden(o.layer.data), '');
  return out;
}
