// Digests: of data (sha256, stable JSON) and of pihub's own engine code, found from a few entry
// modules' imports (engineClosure), for the cache keys.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join, posix } from 'node:path';
import { ENGINE_ROOT } from './paths.ts';

export function sha256(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Stable JSON: object keys sorted, so equal values give equal digests. */
export function canonicalJson(v: unknown): string {
  if (v === undefined) return 'null';
  if (v === null || typeof v !== 'object') return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  const obj = v as Record<string, unknown>;
  return `{${Object.keys(obj)
    .sort()
    .filter((k) => obj[k] !== undefined)
    .map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`)
    .join(',')}}`;
}

/** The relative imports a module names: static imports and re-exports (types too) and `import(...)`. */
export function importsOf(text: string): string[] {
  return [
    ...text.matchAll(/^(?:import|export)\s[^;]*?from\s+'(\.[^']+)'/gms),
    ...text.matchAll(/^import\s+'(\.[^']+)'/gm),
    ...text.matchAll(/\bimport\('(\.[^']+)'\)/g),
  ].map((m) => m[1]!);
}

/** The engine's files that are not TypeScript (scripts it copies or runs), by name. */
function dataFiles(root: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  const walk = (dir: string) => {
    for (const e of readdirSync(join(root, dir), { withFileTypes: true })) {
      const rel = dir ? `${dir}/${e.name}` : e.name;
      if (e.isDirectory()) walk(rel);
      else if (!e.name.endsWith('.ts')) out.set(e.name, [...(out.get(e.name) ?? []), rel]);
    }
  };
  walk('');
  return out;
}

const closures = new Map<string, string[]>();

/**
 * Files whose content enters the keys as data, not as code: config/settings.ts only declares
 * the settings, and a stage's key holds the declarations of the keys it reads (plan/keys.ts:
 * keyDeclarations). So the closure neither lists it nor follows its imports, and declaring a
 * new setting changes the key of no stage that does not read it.
 */
export const KEYED_BY_VALUE: ReadonlySet<string> = new Set(['config/settings.ts']);

/**
 * Every file of pihub's engine that the code of `entries` may run (paths relative to build/):
 * the entries, every module they import, types included, all the way down, and the engine's
 * scripts whose names that code mentions (chroot/enter.sh). Nothing is listed by hand, so a
 * change to any of them changes the keys made from it; only KEYED_BY_VALUE is left out.
 */
export function engineClosure(entries: readonly string[], root = ENGINE_ROOT): string[] {
  const memo = `${root}\0${entries.join('\0')}`;
  const known = closures.get(memo);
  if (known) return known;
  const data = dataFiles(root);
  const seen = new Set<string>();
  const todo = [...entries];
  while (todo.length) {
    const f = todo.pop()!;
    if (seen.has(f) || KEYED_BY_VALUE.has(f)) continue;
    seen.add(f);
    if (!f.endsWith('.ts')) continue;
    const text = readFileSync(join(root, f), 'utf8');
    for (const spec of importsOf(text)) todo.push(posix.normalize(posix.join(posix.dirname(f), spec)));
    for (const [name, paths] of data) {
      if (new RegExp(`(?<![\\w.-])${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(?![\\w.-])`).test(text)) todo.push(...paths);
    }
  }
  const out = [...seen].sort();
  closures.set(memo, out);
  return out;
}

/** Digest of pihub's own implementation of the given source files (relative to build/). */
export function implementationDigest(files: readonly string[], root = ENGINE_ROOT): string {
  const h = createHash('sha256');
  for (const f of [...new Set(files)].sort()) h.update(`${f} ${sha256(readFileSync(join(root, f)))}\n`);
  return h.digest('hex');
}

/** Digest of the engine code that `entries` may run (engineClosure). */
export function engineDigest(entries: readonly string[], root = ENGINE_ROOT): string {
  return implementationDigest(engineClosure(entries, root), root);
}
