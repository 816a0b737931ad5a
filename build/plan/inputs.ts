// What a build is made from, read and checked before anything else: the config (file, overlays,
// --set), the overlays and the stage folders. Any problem here is bad input (exit 2).
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfigFile, resolveConfig, setLayer, type ConfigLayer } from '../config/load.ts';
import { DEFAULTS, type BuildConfig } from '../config/schema.ts';
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
  const overlays = resolveOverlays([...((fromFile as string[] | undefined) ?? []), ...o.overlays], overlaysDir);
  const sets = o.sets.length ? setLayer(o.sets) : undefined;
  // Overlays are chosen before any layer is merged: elsewhere `overlays` would be silently ignored.
  if (sets && Object.hasOwn(sets.data, 'overlays')) throw new InputError('--set overlays=…: overlays are chosen in the config file (`overlays:`) or with --overlay NAME');
  for (const x of overlays) {
    if (Object.hasOwn(x.layer.data, 'overlays')) throw new InputError(`${x.layer.label}: an overlay cannot choose overlays (\`overlays\`); name them in the config file or with --overlay`);
  }
  const layers = [...(fileLayer ? [fileLayer] : []), ...overlays.map((x) => x.layer), ...(sets ? [sets] : [])];
  const config = effectiveConfig(resolveConfig(layers, o.env));
  config.overlays = overlays.map((x) => x.name);
  verifyOwnedSettings(config, DEFAULTS, overlays, [...shippedOverlays(overlaysDir), ...overlays]);
  return {
    config,
    configLabel: fileLayer?.label ?? 'the default config (no --config)',
    overlays,
    stages: orderStages(loadStages(stagesDir), overlays),
    date: buildDate(o.env),
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
  walk(o.layer.data, '');
  return out;
}
