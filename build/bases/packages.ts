// A base's packages in the stages' lists, which are written for the default base. This file is
// part of the cache key of every stage whose lists a base changes.
import type { BaseProfile } from './schema.ts';

/**
 * What a base changes in the stages' package lists. The lists are written for the default base;
 * where this base's kernel, firmware or BLAS packages differ from the default's, the default's
 * are replaced by this base's (all of them where the first one stood), then the profile's own
 * `substitute` applies. Empty for the default base.
 */
export function packageChanges(profile: Pick<BaseProfile, 'packages'>, reference: Pick<BaseProfile, 'packages'>): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const kind of ['kernel', 'firmware', 'blas'] as const) {
    const mine = profile.packages[kind];
    const theirs = reference.packages[kind];
    if (mine.length === theirs.length && mine.every((p, i) => p === theirs[i])) continue;
    theirs.forEach((p, i) => { out[p] = i === 0 ? [...mine] : []; });
  }
  return { ...out, ...profile.packages.substitute };
}

/** A stage's package list as this base names it: changes applied, each package once, order kept. */
export function basePackages(packages: readonly string[], changes: Readonly<Record<string, readonly string[]>>): string[] {
  const out: string[] = [];
  for (const p of packages) {
    const replacement = Object.hasOwn(changes, p) ? changes[p] : undefined;
    for (const q of replacement ?? [p]) if (!out.includes(q)) out.push(q);
  }
  return out;
}
