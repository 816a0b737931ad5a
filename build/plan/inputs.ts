// What a build is made from, read and checked before anything else: the config (file, overlays,
// --set), the overlays and the stage folders. Any problem here is bad input (exit 2).
import { join } from 'node:path';
import { loadConfigFile, setLayer, type ConfigLayer } from '../config/load.ts';
import { DEFAULT_BASE, loadBase, type LoadedBase } from '../bases/load.ts';
import { packageChanges } from '../bases/packages.ts';
import { DEFAULTS, type BuildConfig } from '../config/schema.ts';
import { withSecretsHidden } from '../config/secrets.ts';
import { InputError } from '../core/errors.ts';
import { loadStages, type StageDef } from '../stages/load.ts';
import { resolveOverlays, shippedOverlays, verifyOwnedSettings, type Overlay } from '../stages/overlays.ts';
import { resolveBuildConfig } from './resolve-config.ts';
import { assembleStages } from './assemble-stages.ts';

export { orderStages } from './assemble-stages.ts';

export { PROJECT_DIR } from '../core/paths.ts';
import { PROJECT_DIR } from '../core/paths.ts';

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
  const { config, base } = resolveBuildConfig(layers, overlays, o.env);
  verifyOwnedSettings(config, DEFAULTS, overlays, [...shippedOverlays(overlaysDir), ...overlays]);
  const changes = packageChanges(base.profile, loadBase(DEFAULT_BASE).profile);
  const stages = assembleStages(loadStages(stagesDir), overlays, base, changes);
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
