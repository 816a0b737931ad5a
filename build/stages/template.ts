// `{{ key.path }}` and `{{ key.path | filter }}` in stage and overlay templates.
// Deliberately small: no logic; a file that needs logic is a script.

export const TEMPLATE_TAG = /\{\{\s*([A-Za-z0-9_.]+)\s*(?:\|\s*([a-z]+)\s*)?\}\}/g;

export const FILTERS = ['json', 'py', 'shell', 'octal'] as const;
export type Filter = (typeof FILTERS)[number];

/** The config keys a template reads, in order of appearance. */
export function templateKeys(text: string): string[] {
  const keys = new Set<string>();
  for (const m of text.matchAll(TEMPLATE_TAG)) keys.add(m[1]!);
  return [...keys];
}

/** Filters named in a template that do not exist. */
export function unknownFilters(text: string): string[] {
  const bad: string[] = [];
  for (const m of text.matchAll(TEMPLATE_TAG)) {
    if (m[2] && !(FILTERS as readonly string[]).includes(m[2])) bad.push(m[2]);
  }
  return bad;
}

/** A Python literal for a JSON-like value. */
export function pyLiteral(v: unknown): string {
  if (v === null || v === undefined) return 'None';
  if (v === true) return 'True';
  if (v === false) return 'False';
  if (typeof v === 'number') return String(v);
  if (typeof v === 'string') {
    return `'${v.replaceAll('\\', '\\\\').replaceAll("'", "\\'").replaceAll('\n', '\\n')}'`;
  }
  if (Array.isArray(v)) return `[${v.map(pyLiteral).join(', ')}]`;
  const entries = Object.entries(v as Record<string, unknown>).map(([k, x]) => `${pyLiteral(k)}: ${pyLiteral(x)}`);
  return `{${entries.join(', ')}}`;
}

function shellQuoteValue(v: unknown): string {
  const s = typeof v === 'string' ? v : JSON.stringify(v);
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

/** How a value looks in a template without a filter, and in a script's environment. */
export function plainValue(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

export function applyFilter(v: unknown, filter: string | undefined): string {
  switch (filter) {
    case undefined: return plainValue(v);
    case 'json': return JSON.stringify(v ?? null);
    case 'py': return pyLiteral(v);
    case 'shell': return shellQuoteValue(v);
    case 'octal': return typeof v === 'number' ? v.toString(8) : plainValue(v);
    default: throw new Error(`unknown template filter \`${filter}\``);
  }
}

/** Render with values looked up by key; keys must have been checked against the stage's `reads`. */
export function renderTemplate(text: string, lookup: (key: string) => unknown): string {
  return text.replace(TEMPLATE_TAG, (_all, key: string, filter: string | undefined) => applyFilter(lookup(key), filter));
}
