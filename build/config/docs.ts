// docs/configuration.md's settings table, made from the declarations (settings.ts) and the
// shipped stages' and overlays' `reads`: `npm run docs` writes it, a unit test keeps it in step.
import { declarations } from './declared.ts';
import { type Node } from './nodes.ts';

export const TABLE_START = '<!-- settings table: made by `npm run docs` from build/config/settings.ts; edit there -->';
export const TABLE_END = '<!-- end of settings table -->';

/** A default as it would be written in YAML. */
function yamlish(v: unknown): string {
  if (v === null || v === undefined) return 'null';
  if (typeof v === 'string') return v === '' ? '""' : v;
  if (Array.isArray(v)) return `[${v.map(yamlish).join(', ')}]`;
  return String(v);
}

function defaultOf(node: Node): string {
  if (node.docDefault) return node.docDefault;
  if (node.kind === 'list') return '`[]`';
  if (node.kind === 'section') return '`null`';
  return `\`${yamlish(node.default)}\``;
}

/** Secret keys at or under a declaration (`wifi.psk` for `wifi`). */
function secretsUnder(key: string): string[] {
  return declarations().filter((d) => d.node.secret && (d.key === key || d.key.startsWith(`${key}.`) || d.key.startsWith(`${key}[]`))).map((d) => d.key);
}

/**
 * One row per key a config sets: leaves, and as a whole the lists and optional sections (their
 * inner keys are named in the row). `readBy` maps a key to the stages and overlays that read it.
 */
export function settingsTable(readBy: ReadonlyMap<string, readonly string[]>): string[] {
  const rows = ['| key | default | meaning | read by |', '|---|---|---|---|'];
  const whole = declarations().filter((d) => d.node.kind === 'list' || (d.node.kind === 'section' && d.node.nullable)).map((d) => d.key);
  for (const { key, node } of declarations()) {
    if (!node.doc) continue;
    if (whole.some((w) => key.startsWith(`${w}.`) || key.startsWith(`${w}[]`))) continue;
    if (node.kind === 'section' && !node.nullable) continue;
    const notes: string[] = [];
    const secrets = secretsUnder(key);
    if (secrets.length) notes.push(`secret${secrets.length > 1 ? 's' : ''}: ${secrets.map((s) => `\`${s}\``).join(', ')} (see *Secrets*)`);
    if (node.file) notes.push('a path on the build machine (relative to the config file), whose content is what counts');
    const readers = new Set<string>(node.engine ? [`pihub: ${node.engine}`] : []);
    for (const [k, who] of readBy) if (k === key || k.startsWith(`${key}.`) || key.startsWith(`${k}.`)) for (const w of who) readers.add(w);
    const meaning = [node.doc, ...notes].join('; ');
    rows.push(`| \`${key}\` | ${defaultOf(node)} | ${meaning} | ${[...readers].join(', ') || '—'} |`);
  }
  return rows;
}

/** The document with its table replaced by `table`; undefined when the markers are missing. */
export function withTable(readme: string, table: readonly string[]): string | undefined {
  const start = readme.indexOf(TABLE_START);
  const end = readme.indexOf(TABLE_END);
  if (start < 0 || end < start) return undefined;
  return `${readme.slice(0, start)}${TABLE_START}\n${table.join('\n')}\n${readme.slice(end)}`;
}
