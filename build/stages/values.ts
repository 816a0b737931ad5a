// The config values a stage reads, as its templates and scripts see them: the keys listed in
// its `reads`, with every key declared `hashedAs` (a plain password) replaced by its crypt(3)
// hash, made at build time; scripts get each as a PIHUB_* variable.
import type { BuildConfig } from '../config/schema.ts';
import { configValue, declarationAt, envName } from '../config/declared.ts';
import { formatPath, type PathKey } from '../config/format.ts';
import { withoutUrlCredentials } from '../config/secrets.ts';
import type { Command } from '../core/exec.ts';
import type { Op, RunState } from '../core/ops.ts';
import { plainValue } from './template.ts';

/** Debian's default hash (yescrypt); the password goes through stdin only, the hash is not logged. */
export const MKPASSWD: Command = ['mkpasswd', ['--method=yescrypt', '--stdin']];

interface Hashed {
  path: PathKey[];
  plain: string;
  as: string;
}

/** Plain values declared `hashedAs`, at any depth of the keys a stage reads. */
function hashedIn(config: BuildConfig, reads: readonly string[]): Hashed[] {
  const out: Hashed[] = [];
  const walk = (v: unknown, path: PathKey[]) => {
    const as = declarationAt(path)?.hashedAs;
    if (typeof v === 'string' && as) out.push({ path, plain: v, as });
    else if (Array.isArray(v)) v.forEach((x, i) => walk(x, [...path, i]));
    else if (v !== null && typeof v === 'object') for (const [k, x] of Object.entries(v)) walk(x, [...path, k]);
  };
  for (const key of reads) walk(configValue(config, key), key.split('.'));
  return out;
}

/** The object holding `path` inside the values, which are keyed by the read key that contains it. */
function parentIn(values: Record<string, unknown>, reads: readonly string[], path: PathKey[]): Record<string, unknown> {
  const key = reads.find((k) => k.split('.').every((seg, i) => String(path[i]) === seg))!;
  let cur: unknown = values[key];
  for (const p of path.slice(key.split('.').length, -1)) cur = (cur as Record<PathKey, unknown>)[p];
  return cur as Record<string, unknown>;
}

/** The operations that give a stage its values: a copy of the config, then one mkpasswd per plain password. */
export function valueOps(config: BuildConfig, reads: readonly string[], step: string): Op[] {
  const hashed = hashedIn(config, reads);
  const ops: Op[] = [{
    kind: 'do',
    hidden: true,
    text: 'the values the stage reads',
    fn: (st: RunState) => {
      // A URL's credentials never reach a stage (or the card): the build hands them to apt and npm itself.
      st.values = Object.fromEntries(reads.map((k) => [k, withoutUrlCredentials(structuredClone(configValue(config, k)), k.split('.'))]));
      for (const h of hashed) delete parentIn(st.values, reads, h.path)[String(h.path.at(-1))];
    },
  }];
  for (const h of hashed) {
    ops.push({
      kind: 'run',
      command: MKPASSWD,
      step,
      input: { text: `\`${formatPath(h.path)}\` (a secret)`, make: () => `${h.plain}\n` },
      secretOutput: true,
      capture: (stdout, st) => {
        const hash = stdout.trim();
        if (!hash.startsWith('$')) throw new Error(`mkpasswd returned no hash for \`${formatPath(h.path)}\` in step ${step}`);
        parentIn(st.values, reads, h.path)[h.as] = hash;
      },
    });
  }
  return ops;
}

/** The stage's values as the variables its scripts get. */
export function valuesEnv(values: Record<string, unknown>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(values)) env[envName(k)] = plainValue(v);
  return env;
}
