// Overlays: a folder with overlay.yaml (description, config fragment, requires), and optionally
// rootfs/, packages, run.sh and run-chroot.sh. Each becomes a stage after the built-in ones.
import { existsSync, lstatSync, readdirSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { z } from 'zod';
import { InputError } from '../core/errors.ts';
import { readInputText } from '../core/files.ts';
import { displayPath, parseConfigText, type ConfigLayer } from '../config/load.ts';
import { checkTemplateReads, parsePackageList, parseShebang, walkFiles, type StageDef, type Substep } from './load.ts';
import { configValue, isConfigKey } from '../config/declared.ts';
import { withSecretsHidden } from '../config/secrets.ts';

const OverlayYamlSchema = z.strictObject({
  description: z.string({ error: 'is required: one line saying what the overlay changes' }),
  requires: z.array(z.string()).default([]),
  reads: z.array(z.string()).default([]),
  /** Settings only this overlay acts on: set without it, they would silently do nothing. */
  owns: z.array(z.string()).default([]),
  config: z.record(z.string(), z.unknown()).default({}),
  files: z
    .record(
      z.string().regex(/^\//),
      z.strictObject({ mode: z.string().regex(/^0?[0-7]{3,4}$/).optional(), owner: z.string().optional(), group: z.string().optional() }),
    )
    .default({}),
});

import { kindOrder, kindSpec, OVERLAY_FILES, overlayFileKind } from './kinds.ts';

export { OVERLAY_FILES };

export interface Overlay {
  name: string;
  dir: string;
  description: string;
  requires: string[];
  owns: string[];
  layer: ConfigLayer;
  stage: StageDef;
}

/**
 * A bare name is looked up in the shipped overlays/; anything with a slash is a directory,
 * relative to `from`: the folder of the file that names it (the config file, or the overlay
 * that requires it), or the working directory for --overlay.
 */
export function overlayDir(nameOrDir: string, shippedDir: string, from: string = process.cwd()): string {
  if (nameOrDir.includes('/') || nameOrDir.startsWith('.')) return resolve(from, nameOrDir);
  return join(shippedDir, nameOrDir);
}

/** An overlay as named: its name or path, and the folder a path is relative to. */
export interface OverlayRequest {
  spec: string;
  from: string;
  /** Where it is named (`config.yaml:3:12`), for errors. */
  where?: string;
}

export function listShipped(shippedDir: string): string[] {
  if (!existsSync(shippedDir)) return [];
  return readdirSync(shippedDir)
    .filter((n) => existsSync(join(shippedDir, n, 'overlay.yaml')))
    .sort();
}

export function loadOverlay(nameOrDir: string, shippedDir: string, from?: string): Overlay {
  const dir = overlayDir(nameOrDir, shippedDir, from);
  const name = basename(dir);
  const who = `overlay \`${name}\``;
  if (!existsSync(dir) || !lstatSync(dir).isDirectory()) {
    const known = listShipped(shippedDir);
    throw new InputError(
      `${who}: no such overlay folder ${displayPath(dir)}; shipped overlays: ${known.join(', ') || 'none'} (or give a path to your own)`,
    );
  }
  const yamlPath = join(dir, 'overlay.yaml');
  if (!existsSync(yamlPath)) throw new InputError(`${who}: ${displayPath(yamlPath)} is missing; every overlay needs one`);
  // Every file of an overlay is read (or hashed for its cache key): each must be a plain file.
  const read = (path: string) => readInputText(path, `${who}: ${displayPath(path)}`, 'give it as a plain file (see overlays/README.md)');
  let file: ConfigLayer;
  try {
    file = parseConfigText(read(yamlPath), displayPath(yamlPath));
  } catch (err) {
    if (err instanceof InputError && err.message.startsWith(who)) throw err;
    throw new InputError(`${who}: ${(err as Error).message}`);
  }
  const parsed = OverlayYamlSchema.safeParse(file.data);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const where = file.locator.locate(issue.path as string[]) ?? displayPath(yamlPath);
    const what = issue.code === 'unrecognized_keys'
      ? `unknown key \`${issue.keys.join('`, `')}\` (known: description, requires, reads, owns, config, files)`
      : `\`${issue.path.join('.')}\`: ${issue.message}`;
    throw new InputError(`${who}: ${where}: ${what}`);
  }
  const meta = parsed.data;
  for (const [field, keys] of [['reads', meta.reads], ['owns', meta.owns]] as const) {
    keys.forEach((key, i) => {
      if (!isConfigKey(key)) throw new InputError(`${who}: ${file.locator.locate([field, i]) ?? displayPath(yamlPath)}: \`${field}\` names \`${key}\`, which is not a config key`);
    });
  }
  const substeps: Substep[] = [];
  for (const entry of readdirSync(dir).sort()) {
    const path = join(dir, entry);
    if (!OVERLAY_FILES.includes(entry)) {
      throw new InputError(`${who}: ${displayPath(path)}: unknown file; an overlay may hold ${OVERLAY_FILES.join(', ')}`);
    }
    const kind = overlayFileKind(entry);
    const content = kind ? kindSpec(kind).content : undefined;
    const isDir = lstatSync(path).isDirectory();
    if ((content === 'folder') !== isDir) {
      throw new InputError(`${who}: ${displayPath(path)}${isDir ? ' is a folder, not a file; give it as a file' : ': must be a directory (of files for the image)'}`);
    }
    if (!kind) {
      if (entry === 'README.md') read(path);
      continue;
    }
    // An overlay's steps run in the registry's order (packages, files, run.sh, run-chroot.sh).
    const sub: Substep = { kind, order: kindOrder(kind), name: entry, path };
    if (content === 'packages') sub.packages = parsePackageList(read(path), `${who}: ${displayPath(path)}`);
    else if (content === 'script') sub.interpreter = parseShebang(read(path), `${who}: ${displayPath(path)}`);
    else if (content === 'folder') sub.files = walkFiles(path, meta.files, who);
    substeps.push(sub);
  }
  substeps.sort((a, b) => a.order - b.order);
  const stage: StageDef = {
    id: `overlay-${name}`,
    dir,
    description: meta.description,
    reads: meta.reads,
    skip: false,
    substeps,
    origin: 'overlay',
  };
  try {
    checkTemplateReads(stage, 'overlay.yaml');
  } catch (err) {
    throw new InputError(`${who}: ${(err as Error).message}`);
  }
  const layer: ConfigLayer = {
    label: `${who} (${displayPath(yamlPath)})`,
    data: meta.config,
    locator: { locate: (path, preferKey) => (path.length ? file.locator.locate(['config', ...path], preferKey) : undefined) },
    baseDir: dir,
  };
  return { name, dir, description: meta.description, requires: meta.requires, owns: meta.owns, layer, stage };
}

/**
 * Load overlays and what they require, requirements first, each once. A plain string is
 * relative to the working directory; an overlay's `requires` to its own folder.
 */
export function resolveOverlays(requested: ReadonlyArray<string | OverlayRequest>, shippedDir: string): Overlay[] {
  const out: Overlay[] = [];
  const visiting: string[] = [];
  const visit = ({ spec, from, where }: OverlayRequest) => {
    const dir = overlayDir(spec, shippedDir, from);
    if (out.some((o) => o.dir === dir)) return;
    if (visiting.includes(dir)) {
      throw new InputError(`overlay \`${basename(dir)}\`: requires itself through ${visiting.map((d) => basename(d)).join(' → ')}`);
    }
    visiting.push(dir);
    let overlay: Overlay;
    try {
      overlay = loadOverlay(spec, shippedDir, from);
    } catch (err) {
      throw err instanceof InputError && where ? new InputError(`${where}: ${err.message}`) : err;
    }
    for (const req of overlay.requires) visit({ spec: req, from: overlay.dir });
    visiting.pop();
    out.push(overlay);
  };
  for (const r of requested) visit(typeof r === 'string' ? { spec: r, from: process.cwd() } : r);
  return out;
}

/** Leaves under `key` whose value differs from the default, as `key = value`. */
function changedUnder(config: unknown, defaults: unknown, key: string): string[] {
  const out: string[] = [];
  const walk = (v: unknown, d: unknown, path: string) => {
    if (v !== null && typeof v === 'object' && !Array.isArray(v) && d !== null && typeof d === 'object') {
      for (const [k, x] of Object.entries(v)) walk(x, (d as Record<string, unknown>)[k], `${path}.${k}`);
    } else if (JSON.stringify(v) !== JSON.stringify(d)) {
      const shown = withSecretsHidden(v, path.split('.'));
      out.push(`\`${path}\` is ${typeof shown === 'string' ? `\`${shown}\`` : JSON.stringify(shown)}`);
    }
  };
  walk(configValue(config, key), configValue(defaults, key), key);
  return out;
}

/**
 * Overlays declare the settings only they act on (`owns:`): such a setting changed while its
 * overlay is not applied is an error, not a silent no-op.
 */
export function verifyOwnedSettings(config: unknown, defaults: unknown, applied: readonly Overlay[], known: readonly Overlay[]): void {
  for (const o of known) {
    if (applied.some((a) => a.dir === o.dir)) continue;
    for (const key of o.owns) {
      const changed = changedUnder(config, defaults, key);
      if (changed.length) {
        throw new InputError(`${changed[0]}, but only the ${o.name} overlay acts on \`${key}\` and it is not applied; add \`--overlay ${o.name}\``);
      }
    }
  }
}

/** The shipped overlays (for what they own). */
export function shippedOverlays(shippedDir: string): Overlay[] {
  return listShipped(shippedDir).map((n) => loadOverlay(n, shippedDir));
}
