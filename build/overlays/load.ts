// Overlays: a folder with overlay.yaml (description, config fragment, requires), and optionally
// rootfs/, packages, run.sh and run-chroot.sh. Each becomes a stage after the built-in ones.
import { existsSync, lstatSync, readdirSync, readFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { z } from 'zod';
import { InputError } from '../errors.ts';
import { displayPath, parseConfigText, type ConfigLayer } from '../config/load.ts';
import { checkTemplateReads, parsePackageList, parseShebang, walkFiles, type StageDef, type Substep } from '../stages/load.ts';
import { isConfigKey } from '../stages/values.ts';

const OverlayYamlSchema = z.strictObject({
  description: z.string({ error: 'is required: one line saying what the overlay changes' }),
  requires: z.array(z.string()).default([]),
  reads: z.array(z.string()).default([]),
  config: z.record(z.string(), z.unknown()).default({}),
  files: z
    .record(
      z.string().regex(/^\//),
      z.strictObject({ mode: z.string().regex(/^0?[0-7]{3,4}$/).optional(), owner: z.string().optional(), group: z.string().optional() }),
    )
    .default({}),
});

export const OVERLAY_FILES = ['overlay.yaml', 'README.md', 'rootfs', 'packages', 'packages-nr', 'run.sh', 'run-chroot.sh'];

export interface Overlay {
  name: string;
  dir: string;
  description: string;
  requires: string[];
  layer: ConfigLayer;
  stage: StageDef;
}

/** A bare name is looked up in the shipped overlays/; anything with a slash is a directory. */
export function overlayDir(nameOrDir: string, shippedDir: string): string {
  if (nameOrDir.includes('/') || nameOrDir.startsWith('.')) return resolve(nameOrDir);
  return join(shippedDir, nameOrDir);
}

export function listShipped(shippedDir: string): string[] {
  if (!existsSync(shippedDir)) return [];
  return readdirSync(shippedDir)
    .filter((n) => existsSync(join(shippedDir, n, 'overlay.yaml')))
    .sort();
}

export function loadOverlay(nameOrDir: string, shippedDir: string): Overlay {
  const dir = overlayDir(nameOrDir, shippedDir);
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
  let file: ConfigLayer;
  try {
    file = parseConfigText(readFileSync(yamlPath, 'utf8'), displayPath(yamlPath));
  } catch (err) {
    throw new InputError(`${who}: ${(err as Error).message}`);
  }
  const parsed = OverlayYamlSchema.safeParse(file.data);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const where = file.locator.locate(issue.path as string[]) ?? displayPath(yamlPath);
    const what = issue.code === 'unrecognized_keys'
      ? `unknown key \`${issue.keys.join('`, `')}\` (known: description, requires, reads, config, files)`
      : `\`${issue.path.join('.')}\`: ${issue.message}`;
    throw new InputError(`${who}: ${where}: ${what}`);
  }
  const meta = parsed.data;
  for (const key of meta.reads) {
    if (!isConfigKey(key)) throw new InputError(`${who}: ${displayPath(yamlPath)}: \`reads\` names \`${key}\`, which is not a config key`);
  }
  const substeps: Substep[] = [];
  for (const entry of readdirSync(dir).sort()) {
    const path = join(dir, entry);
    if (!OVERLAY_FILES.includes(entry)) {
      throw new InputError(`${who}: ${displayPath(path)}: unknown file; an overlay may hold ${OVERLAY_FILES.join(', ')}`);
    }
    const isDir = lstatSync(path).isDirectory();
    if ((entry === 'rootfs') !== isDir) {
      throw new InputError(`${who}: ${displayPath(path)}: ${isDir ? 'must be a file' : 'must be a directory'}`);
    }
    if (entry === 'packages' || entry === 'packages-nr') {
      substeps.push({ kind: entry, order: 0, name: entry, path, packages: parsePackageList(readFileSync(path, 'utf8'), `${who}: ${displayPath(path)}`) });
    } else if (entry === 'rootfs') {
      substeps.push({ kind: 'files', order: 1, name: entry, path, files: walkFiles(path, meta.files, who) });
    } else if (entry === 'run.sh' || entry === 'run-chroot.sh') {
      const kind = entry === 'run.sh' ? 'run' : 'run-chroot';
      substeps.push({ kind, order: kind === 'run' ? 2 : 3, name: entry, path, interpreter: parseShebang(readFileSync(path, 'utf8'), `${who}: ${displayPath(path)}`) });
    }
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
    checkTemplateReads(stage);
  } catch (err) {
    throw new InputError(`${who}: ${(err as Error).message.replace('add it to `reads:` in stage.yaml', 'add it to `reads:` in overlay.yaml')}`);
  }
  const layer: ConfigLayer = {
    label: `${who} (${displayPath(yamlPath)})`,
    data: meta.config,
    locator: { locate: (path, preferKey) => (path.length ? file.locator.locate(['config', ...path], preferKey) : undefined) },
    baseDir: dir,
  };
  return { name, dir, description: meta.description, requires: meta.requires, layer, stage };
}

/** Load overlays and what they require, requirements first, each once. */
export function resolveOverlays(requested: readonly string[], shippedDir: string): Overlay[] {
  const out: Overlay[] = [];
  const visiting: string[] = [];
  const visit = (nameOrDir: string) => {
    const dir = overlayDir(nameOrDir, shippedDir);
    if (out.some((o) => o.dir === dir)) return;
    if (visiting.includes(dir)) {
      throw new InputError(`overlay \`${basename(dir)}\`: requires itself through ${visiting.map((d) => basename(d)).join(' → ')}`);
    }
    visiting.push(dir);
    const overlay = loadOverlay(nameOrDir, shippedDir);
    for (const req of overlay.requires) visit(req);
    visiting.pop();
    out.push(overlay);
  };
  for (const r of requested) visit(r);
  return out;
}
