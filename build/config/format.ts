// Turns zod issues into one sentence each, naming the file, line and key.
import type { z } from 'zod';
import { withCredentialsHidden } from './urls.ts';

export type PathKey = string | number;

/** `users[0].password` */
export function formatPath(path: readonly PathKey[]): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else out += out === '' ? p : `.${p}`;
  }
  return out;
}

/** Where a value came from: a file position, an overlay, or a --set argument. */
export interface Locator {
  /** A location prefix such as `config.yaml:3:5`, or undefined when this source did not set the path. */
  locate(path: readonly PathKey[], preferKey?: boolean): string | undefined;
}

function describeValue(v: unknown, secret = false): string {
  // A secret is never shown, whatever its type: a numeric password is still a password.
  if (secret && typeof v === 'string') return `${v.length} characters, not shown: a secret`;
  if (secret && v !== null && typeof v !== 'object') return `${typeof v === 'number' ? 'a number' : typeof v === 'boolean' ? 'true or false' : 'a value'}, not shown: a secret`;
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string') {
    const shown = withCredentialsHidden(v);
    return `"${shown.length > 40 ? `${shown.slice(0, 40)}…` : shown}"`;
  }
  return String(v);
}

function typeWord(expected: string): string {
  switch (expected) {
    case 'string': return 'text';
    case 'number': return 'a number';
    case 'boolean': return 'true or false';
    case 'array': return 'a list';
    case 'object': return 'a mapping of keys';
    default: return expected;
  }
}

function editDistance(a: string, b: string): number {
  const d: number[] = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = d[0]!;
    d[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = d[j]!;
      d[j] = Math.min(d[j]! + 1, d[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return d[b.length]!;
}

/** The closest known key, if it is close enough to be a likely typo. */
export function suggest(key: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const k of known) {
    const dist = editDistance(key.toLowerCase(), k.toLowerCase());
    if (dist < bestD) {
      best = k;
      bestD = dist;
    }
  }
  return bestD <= Math.max(2, Math.floor(key.length / 3)) ? best : undefined;
}

function valueAt(data: unknown, path: readonly PathKey[]): unknown {
  let cur: unknown = data;
  for (const p of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<PathKey, unknown>)[p];
  }
  return cur;
}

export interface IssueContext {
  /** The merged input that was validated, to show the offending value. */
  input: unknown;
  /** Known keys of a mapping at a path, for suggestions on unknown keys. */
  knownKeys(path: readonly PathKey[]): readonly string[];
  /** Sources from last (highest precedence) to first. */
  sources: readonly Locator[];
  /** Used when no source claims a path. */
  fallback: string;
  /** Paths whose values must never be shown. */
  isSecret?: (path: readonly PathKey[]) => boolean;
}

function locate(ctx: IssueContext, path: readonly PathKey[], preferKey = false): string {
  for (let len = path.length; len >= 0; len--) {
    for (const s of ctx.sources) {
      const where = s.locate(path.slice(0, len), preferKey);
      if (where) return where;
    }
  }
  return ctx.fallback;
}

/** One line per problem: `config.yaml:4:3: \`hub.port\`: must be … (got 70000)`. */
export function formatIssues(issues: readonly z.core.$ZodIssue[], ctx: IssueContext): string[] {
  const lines: string[] = [];
  for (const issue of issues) {
    const path = issue.path as PathKey[];
    if (issue.code === 'unrecognized_keys') {
      const known = ctx.knownKeys(path);
      for (const key of issue.keys) {
        const full = [...path, key];
        const hint = suggest(key, known);
        const where = locate(ctx, full, true);
        const inside = path.length ? ` in \`${formatPath(path)}\`` : '';
        lines.push(
          `${where}: unknown key \`${key}\`${inside}` +
            (hint ? ` (did you mean \`${hint}\`?)` : ` (known keys: ${known.join(', ')})`),
        );
      }
      continue;
    }
    const where = locate(ctx, path);
    const value = valueAt(ctx.input, path);
    const secret = ctx.isSecret?.(path) ?? false;
    const name = path.length ? `\`${formatPath(path)}\`` : 'config';
    let message: string;
    if (issue.code === 'invalid_type') {
      message = value === undefined
        ? `is required (${typeWord(issue.expected)})`
        : `must be ${typeWord(issue.expected)} (got ${describeValue(value, secret)})`;
    } else if (issue.message.startsWith('Invalid input')) {
      message = `is not valid (got ${describeValue(value, secret)})`;
    } else {
      const shown = value !== undefined && typeof value !== 'object' ? ` (got ${describeValue(value, secret)})` : '';
      message = `${issue.message}${shown}`;
    }
    lines.push(`${where}: ${name}: ${message}`);
  }
  return lines;
}
