// The build's one config, from its layers: the base profile's layer first, then the config file,
// the overlays' fragments and --set, with `auto` settings resolved. A pure function of what was
// read: no layer is changed.
import { displayPath, effectiveConfig, resolveConfig, type ConfigLayer } from '../config/load.ts';
import { DEFAULT_BASE, builtBases, loadBaseSpec, unbuildable, type LoadedBase } from '../bases/load.ts';
import type { BuildConfig } from '../config/schema.ts';
import { InputError } from '../core/errors.ts';
import type { Overlay } from '../stages/overlays.ts';

export function resolveBuildConfig(layers: readonly ConfigLayer[], overlays: readonly Overlay[], env: NodeJS.ProcessEnv): { config: BuildConfig; base: LoadedBase } {
  const named = layers.map(withProfileObject);
  const { layer: profileLayer, base } = baseLayer(named);
  const config: BuildConfig = { ...effectiveConfig(resolveConfig([profileLayer, ...named], env)), overlays: overlays.map((x) => x.name) };
  for (const key of ['suite', 'architecture'] as const) {
    if (config.base[key] !== base.profile[key]) {
      throw new InputError(`\`base.${key}: ${config.base[key]}\` differs from the base profile \`${base.name}\` (${base.profile[key]}): the profile sets it; remove \`base.${key}\` and choose the profile with \`base: NAME\` (see \`pihub bases\`)`);
    }
  }
  return { config, base };
}

/** `base: NAME` is short for `base: {profile: NAME}`: the layer as if it said the long form. */
function withProfileObject(layer: ConfigLayer): ConfigLayer {
  return typeof layer.data.base === 'string' ? { ...layer, data: { ...layer.data, base: { profile: layer.data.base } } } : layer;
}

/**
 * The base profile's layer, merged first: its suite, architecture, mirror and components; the
 * layers' own `base.*` keys override them. The last layer that names a profile chooses it.
 */
export function baseLayer(layers: readonly ConfigLayer[]): { layer: ConfigLayer; base: LoadedBase } {
  let chosen: { name: string; where: string; dir?: string } | undefined;
  for (const layer of layers) {
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
      data: { base: { profile: base.name, suite: p.suite, architecture: p.architecture, mirror: p.mirror, components: p.components, consoles: p.boot.consoles } },
      locator: { locate: () => displayPath(base.file) },
    },
    base,
  };
}
