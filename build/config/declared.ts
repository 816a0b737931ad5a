// What the declarations say, for the code that reads configs and makes stages: every declared
// key, the declaration of a path, a key's variable for stage scripts, a key's value, and a
// declaration as it enters a stage's cache key.
import type { Node } from './nodes.ts';
import { SETTINGS } from './settings.ts';

/** A declared key with its path (`users[].password` for keys of list items). */
export interface Declared {
  key: string;
  node: Node;
}

/** Every declaration, sections and list items included, in declaration order. */
export function declarations(node: Node = SETTINGS, key = ''): Declared[] {
  const out: Declared[] = key ? [{ key, node }] : [];
  if (node.kind === 'section') for (const [k, child] of Object.entries(node.children)) out.push(...declarations(child, key ? `${key}.${k}` : k));
  if (node.kind === 'list') out.push(...declarations(node.item, `${key}[]`).filter((d) => d.key !== `${key}[]`));
  return out;
}

/** The declaration for a config path (`['users', 0, 'password']`, `hub.port`); undefined if none. */
export function declarationAt(path: ReadonlyArray<string | number> | string): Node | undefined {
  const parts = typeof path === 'string' ? path.split('.') : path;
  let node: Node = SETTINGS;
  for (const p of parts) {
    if (node.kind === 'section' && typeof p === 'string' && Object.hasOwn(node.children, p)) node = node.children[p]!;
    else if (node.kind === 'list' && (typeof p === 'number' || /^\d+$/.test(p))) node = node.item;
    else return undefined;
  }
  return node;
}

/** `hub.port` → `PIHUB_HUB_PORT`, unless the declaration names another. */
export function envName(key: string): string {
  return declarationAt(key)?.env ?? `PIHUB_${key.toUpperCase().replaceAll('.', '_')}`;
}

/** Is `hub.port` a key stages may read (a declared key or section, not one inside a list item)? */
export function isConfigKey(key: string): boolean {
  return !key.includes('[') && declarations().some((d) => d.key === key);
}

/** The value of a key (`hub.port`) in a config. */
export function configValue(config: unknown, key: string): unknown {
  let cur: unknown = config;
  for (const p of key.split('.')) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[p];
  }
  return cur;
}

/**
 * A declaration as data (its kind, how stages see it, its default; a section's or list's own
 * at every depth), without its schema and rules: what a schema does to a value shows in the
 * value, which the key holds beside it.
 */
export function declarationData(node: Node): unknown {
  // Words for people (the settings table) decide nothing in a stage either.
  const { schema: _schema, refine: _refine, doc: _doc, docDefault: _docDefault, engine: _engine, ...meaning } = node as Node & { schema?: unknown; refine?: unknown };
  if (node.kind === 'section') return { ...meaning, children: Object.fromEntries(Object.entries(node.children).map(([k, c]) => [k, declarationData(c)])) };
  if (node.kind === 'list') return { ...meaning, item: declarationData(node.item) };
  return meaning;
}
