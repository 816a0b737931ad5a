// The one YAML reader for every file pihub reads (config, overlay.yaml, stage.yaml): errors
// name the file, line and column; alias bombs and keys that would reach an object's prototype
// are refused before anything uses the data.
import { isMap, isScalar, isSeq, LineCounter, parseDocument, visit, type Document, type Node as YamlNode } from 'yaml';
import { InputError } from '../core/errors.ts';
import type { Locator, PathKey } from './format.ts';

/** Keys that would change an object's prototype when merged; never a setting. */
export const FORBIDDEN_KEYS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);

export function forbiddenKeyMessage(key: string): string {
  return `\`${key}\` cannot be a key (it would reach into JavaScript's object prototype); remove it`;
}

export interface YamlFile {
  /** The document as plain data; undefined for an empty file. */
  data: unknown;
  /** `file:line:col` of a key path, when the file has it. */
  locator: Locator;
}

function nodeAt(doc: Document, path: readonly PathKey[], preferKey = false): YamlNode | undefined {
  let node: unknown = doc.contents;
  for (const [i, p] of path.entries()) {
    const last = i === path.length - 1;
    if (isMap(node)) {
      const pair = node.items.find((it) => isScalar(it.key) && String(it.key.value) === String(p));
      if (!pair) return undefined;
      // A bad scalar points at its value; a key with a mapping or list under it points at the key.
      if (last) return (isScalar(pair.value) && !preferKey ? pair.value : pair.key) as YamlNode;
      node = pair.value;
    } else if (isSeq(node) && typeof p === 'number') {
      node = node.items[p];
    } else {
      return undefined;
    }
  }
  return node as YamlNode | undefined;
}

export function readYaml(text: string, label: string): YamlFile {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const at = (offset: number) => {
    const pos = lineCounter.linePos(offset);
    return `${label}:${pos.line}:${pos.col}`;
  };
  if (doc.errors.length > 0) {
    const lines = doc.errors.map((e) => `${at(e.pos[0])}: invalid YAML: ${e.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '')}`);
    throw new InputError(lines.join('\n'));
  }
  visit(doc, {
    Pair(_key, pair) {
      if (isScalar(pair.key) && FORBIDDEN_KEYS.has(String(pair.key.value))) {
        throw new InputError(`${pair.key.range ? at(pair.key.range[0]) : label}: ${forbiddenKeyMessage(String(pair.key.value))}`);
      }
    },
  });
  let data: unknown;
  try {
    data = doc.toJS();
  } catch (err) {
    // yaml refuses to expand aliases beyond a limit (a "billion laughs" file).
    if (/alias/i.test((err as Error).message)) {
      throw new InputError(`${label}: invalid YAML: its aliases (*name) expand to far too much data; write the values out instead of nesting aliases`);
    }
    throw new InputError(`${label}: invalid YAML: ${(err as Error).message}`);
  }
  const locator: Locator = {
    locate(path, preferKey) {
      const node = path.length === 0 ? undefined : nodeAt(doc, path, preferKey);
      return node?.range ? at(node.range[0]) : undefined;
    },
  };
  return { data, locator };
}

/** A YAML file that must hold a mapping (or nothing). */
export function readYamlMapping(text: string, label: string, hint: string): { data: Record<string, unknown>; locator: Locator } {
  const file = readYaml(text, label);
  if (file.data === null || file.data === undefined) return { data: {}, locator: file.locator };
  if (typeof file.data !== 'object' || Array.isArray(file.data)) throw new InputError(`${label}: must be a YAML mapping of keys ${hint}`);
  return { data: file.data as Record<string, unknown>, locator: file.locator };
}
