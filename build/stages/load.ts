// Reads stages/NN-name/ directories into typed stage definitions. Unknown files are errors.
import { existsSync, lstatSync, readdirSync, readlinkSync, statSync } from 'node:fs';
import { join, posix } from 'node:path';
import { z } from 'zod';
import { InputError } from '../core/errors.ts';
import { readInputText } from '../core/files.ts';
import { displayPath } from '../config/load.ts';
import { readYamlMapping } from '../config/yaml.ts';
import type { PathKey } from '../config/format.ts';
import type { BaseRepository } from '../bases/apt.ts';
import { isConfigKey } from '../config/declared.ts';
import { templateKeys, unknownFilters } from './template.ts';

import { kindOrder, kindSpec, STAGE_FILE, STAGE_FILE_HELP, STAGE_OTHER_FILES, stageFileKind, type SubstepKind } from './kinds.ts';

export type { SubstepKind } from './kinds.ts';
export { STAGE_FILE_HELP } from './kinds.ts';

export interface FileEntry {
  /** Absolute path in the image. */
  target: string;
  /** Path on the build machine. */
  source: string;
  type: 'file' | 'dir' | 'symlink';
  mode: number;
  owner: string;
  group: string;
  linkTarget?: string;
  template: boolean;
}

export interface Substep {
  kind: SubstepKind;
  order: number;
  /** File or directory name inside the stage, e.g. `01-packages`. */
  name: string;
  path: string;
  packages?: string[];
  files?: FileEntry[];
  /** Interpreter and its arguments from the script's #! line. */
  interpreter?: string[];
  /** More suites of the main archive the bootstrap adds to apt's sources (kind `bootstrap`). */
  suites?: string[];
  /** The base's extra apt repositories (kind `repositories`). */
  repositories?: BaseRepository[];
}

export interface StageDef {
  id: string;
  dir: string;
  description: string;
  reads: string[];
  skip: boolean;
  substeps: Substep[];
  origin: 'stage' | 'overlay';
}

const FileModeSchema = z.strictObject({
  mode: z.string().regex(/^0?[0-7]{3,4}$/, { error: 'must be an octal mode such as "0600"' }).optional(),
  owner: z.string().regex(/^[a-z_][a-z0-9_-]*$/).optional(),
  group: z.string().regex(/^[a-z_][a-z0-9_-]*$/).optional(),
});
export type FileMode = z.infer<typeof FileModeSchema>;

const StageYamlSchema = z.strictObject({
  description: z.string().optional(),
  reads: z.array(z.string()).default([]),
  files: z.record(z.string().regex(/^\//, { error: 'file paths must be absolute, such as /etc/foo' }), FileModeSchema).default({}),
});


const PACKAGE_NAME = /^[a-z0-9][a-z0-9+.-]+(:[a-z0-9]+)?(\/[a-z0-9.-]+)?$/;

/** A stage's file (read, or hashed for its cache key): a plain file, or bad input. */
export function readStageText(path: string): string {
  return readInputText(path, displayPath(path), 'give it as a plain file (see docs/stages.md)');
}

/** Package names from a list file: whitespace-separated, `#` starts a comment; `NAME/SUITE` takes it from that suite. */
export function parsePackageList(text: string, label: string): string[] {
  const out: string[] = [];
  text.split('\n').forEach((line, i) => {
    for (const word of line.replace(/#.*/, '').split(/\s+/).filter(Boolean)) {
      if (!PACKAGE_NAME.test(word)) {
        throw new InputError(`${label}:${i + 1}: \`${word}\` is not a Debian package name`);
      }
      out.push(word);
    }
  });
  return out;
}

/** The interpreter from a script's #! line; a script without one is refused. */
export function parseShebang(text: string, label: string): string[] {
  const first = text.split('\n', 1)[0] ?? '';
  if (!first.startsWith('#!')) {
    throw new InputError(`${label}: a script must start with a #! line such as \`#!/bin/sh -e\``);
  }
  const parts = first.slice(2).trim().split(/\s+/).filter(Boolean);
  if (parts.length === 0 || !parts[0]!.startsWith('/')) {
    throw new InputError(`${label}: the #! line must name an absolute interpreter such as /bin/sh`);
  }
  return parts;
}

/** Does a relative symlink target, seen from directory `dir` of the image, climb above `/`? */
export function climbsOut(dir: string, linkTarget: string): boolean {
  if (posix.isAbsolute(linkTarget)) return false;
  const stack = dir.split('/').filter(Boolean);
  for (const part of linkTarget.split('/')) {
    if (part === '..') {
      if (stack.length === 0) return true;
      stack.pop();
    } else if (part !== '.' && part !== '') {
      stack.push(part);
    }
  }
  return false;
}

/**
 * Walk a directory of files for the image. Nothing here may point outside the
 * image: no `..` in a symlink that climbs above the image root, no special files.
 */
export function walkFiles(root: string, modes: Record<string, FileMode>, label: string): FileEntry[] {
  const out: FileEntry[] = [];
  const walk = (dir: string, target: string) => {
    for (const name of readdirSync(dir).sort()) {
      const source = join(dir, name);
      const st = lstatSync(source);
      const template = st.isFile() && name.endsWith('.tmpl');
      const dest = posix.join(target, template ? name.slice(0, -'.tmpl'.length) : name);
      const override = modes[dest] ?? {};
      const where = `${label}: ${displayPath(source)}`;
      const base = { target: dest, source, owner: override.owner ?? 'root', group: override.group ?? 'root', template };
      if (st.isSymbolicLink()) {
        const linkTarget = readlinkSync(source);
        if (climbsOut(target, linkTarget)) {
          throw new InputError(`${where}: symlink to \`${linkTarget}\` climbs out of the image root`);
        }
        out.push({ ...base, type: 'symlink', mode: 0o777, linkTarget, template: false });
      } else if (st.isDirectory()) {
        out.push({ ...base, type: 'dir', mode: override.mode ? parseInt(override.mode, 8) : 0o755 });
        walk(source, dest);
      } else if (st.isFile()) {
        const text = template ? readStageText(source) : '';
        const bad = unknownFilters(text);
        if (bad.length) throw new InputError(`${where}: unknown template filter \`${bad[0]}\` (known: json, py, shell, octal)`);
        const exec = (st.mode & 0o111) !== 0;
        out.push({ ...base, type: 'file', mode: override.mode ? parseInt(override.mode, 8) : exec ? 0o755 : 0o644 });
      } else {
        throw new InputError(`${where}: only files, directories and symlinks can go into the image`);
      }
    }
  };
  walk(root, '/');
  return out;
}

function readStageYaml(path: string): z.infer<typeof StageYamlSchema> {
  if (!existsSync(path)) return StageYamlSchema.parse({});
  const { data: raw, locator } = readYamlMapping(readStageText(path), displayPath(path), '(description, reads, files)');
  const parsed = StageYamlSchema.safeParse(raw);
  if (!parsed.success) {
    const first = parsed.error.issues[0]!;
    const issuePath = first.code === 'unrecognized_keys' ? [...first.path, first.keys[0]!] : first.path;
    const where = locator.locate(issuePath as PathKey[], true) ?? displayPath(path);
    const key = first.path.join('.');
    const what = first.code === 'unrecognized_keys' ? `unknown key \`${first.keys.join('`, `')}\` (known: description, reads, files)` : first.message;
    throw new InputError(`${where}: ${key ? `\`${key}\`: ` : ''}${what}`);
  }
  return parsed.data;
}

/** Every config key a stage's templates use must be listed in its `reads`. */
/** Every `{{ key }}` a template uses is one the stage reads (declared in `yamlName`: stage.yaml or overlay.yaml). */
export function checkTemplateReads(stage: StageDef, yamlName = 'stage.yaml'): void {
  for (const sub of stage.substeps) {
    const texts: Array<[string, string]> = [];
    if (sub.kind === 'debconf') texts.push([sub.path, readStageText(sub.path)]);
    for (const f of sub.files ?? []) if (f.template) texts.push([f.source, readStageText(f.source)]);
    for (const [file, text] of texts) {
      for (const key of templateKeys(text)) {
        if (!stage.reads.includes(key)) {
          throw new InputError(
            `${displayPath(file)}: uses \`{{ ${key} }}\` but the stage does not read \`${key}\`; add it to \`reads:\` in ${yamlName}`,
          );
        }
      }
    }
  }
}

export function loadStage(dir: string, id: string): StageDef {
  const yamlPath = join(dir, 'stage.yaml');
  const meta = readStageYaml(yamlPath);
  for (const key of meta.reads) {
    if (!isConfigKey(key)) throw new InputError(`${displayPath(yamlPath)}: \`reads\` names \`${key}\`, which is not a config key`);
  }
  const substeps: Substep[] = [];
  for (const name of readdirSync(dir).sort()) {
    if (name === 'SKIP' || name === 'README.md') readStageText(join(dir, name));
    if (STAGE_OTHER_FILES.includes(name)) continue;
    const path = join(dir, name);
    const m = STAGE_FILE.exec(name);
    if (!m) throw new InputError(`${displayPath(path)}: unknown stage file; ${STAGE_FILE_HELP}`);
    const order = Number(m[1]);
    const kind = stageFileKind(m[2]!)!;
    const { content } = kindSpec(kind);
    const isDir = lstatSync(path).isDirectory();
    if (isDir !== (content === 'folder')) {
      throw new InputError(`${displayPath(path)}${content === 'folder' ? ': must be a directory' : ' is a folder, not a file; give it as a file'}`);
    }
    const sub: Substep = { kind, order, name, path };
    if (content === 'packages') sub.packages = parsePackageList(readStageText(path), displayPath(path));
    else if (content === 'script') sub.interpreter = parseShebang(readStageText(path), displayPath(path));
    else if (content === 'text') readStageText(path);
    else if (content === 'folder') sub.files = walkFiles(path, meta.files, `stage ${id}`);
    substeps.push(sub);
  }
  substeps.sort((a, b) => a.order - b.order || kindOrder(a.kind) - kindOrder(b.kind));
  const stage: StageDef = {
    id,
    dir,
    description: meta.description ?? id,
    reads: meta.reads,
    skip: existsSync(join(dir, 'SKIP')),
    substeps,
    origin: 'stage',
  };
  checkTemplateReads(stage);
  return stage;
}

const STAGE_DIR = /^\d\d-[a-z0-9][a-z0-9-]*$/;

/** All stages under `stagesDir`, in order. The first one must bootstrap, and only the first. */
export function loadStages(stagesDir: string): StageDef[] {
  if (!existsSync(stagesDir)) throw new InputError(`stage directory ${displayPath(stagesDir)} does not exist`);
  if (!statSync(stagesDir).isDirectory()) throw new InputError(`stage directory ${displayPath(stagesDir)} is not a folder; give --stages a folder of stages (NN-name/)`);
  const stages: StageDef[] = [];
  for (const name of readdirSync(stagesDir).sort()) {
    const path = join(stagesDir, name);
    if (name === 'README.md') continue;
    if (!STAGE_DIR.test(name) || !lstatSync(path).isDirectory()) {
      throw new InputError(`${displayPath(path)}: not a stage; stages are directories named NN-name (two digits, lowercase name)`);
    }
    stages.push(loadStage(path, name));
  }
  const active = stages.filter((s) => !s.skip);
  active.forEach((s, i) => {
    const boots = s.substeps.some((x) => x.kind === 'bootstrap');
    if (i === 0 && !boots) {
      throw new InputError(`${displayPath(s.dir)}: the first stage must have an NN-bootstrap file (the packages mmdebstrap installs)`);
    }
    if (i > 0 && boots) {
      throw new InputError(`${displayPath(s.dir)}: only the first stage may bootstrap; move NN-bootstrap or use NN-packages`);
    }
  });
  return stages;
}
