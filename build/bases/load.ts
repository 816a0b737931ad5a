// Base profiles: bases/NAME.yaml read with the config's YAML reader and checked against
// ProfileSchema, and every keyring they name checked to hold exactly the keys the profile lists.
import { existsSync, readdirSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { InputError } from '../core/errors.ts';
import { checkRegularFile, FileProblem, readInputText, readRegularFile, TEXT_MAX_BYTES } from '../core/files.ts';
import { displayPath, parseConfigText } from '../config/load.ts';
import { formatIssues, suggest, type PathKey } from '../config/format.ts';
import { keyringKeys } from './openpgp.ts';
import { BUILT_ARCHITECTURES, BUILT_SUITES, ProfileSchema, type BaseProfile } from './schema.ts';

export const BASES_DIR = fileURLToPath(new URL('../../bases', import.meta.url));
export const DEFAULT_BASE = 'debian-trixie-arm64';

/**
 * Why the engine cannot build this profile yet, or undefined when it can: Debian trixie (the
 * chrootless bootstrap), arm64 or armhf, the `debian` boot scheme (raspi-firmware writes
 * config.txt and cmdline.txt) and the hub from apt. Extra repositories are supported.
 */
export function unbuildable(p: BaseProfile): string | undefined {
  const why: string[] = [];
  if (!(BUILT_SUITES as readonly string[]).includes(p.suite)) why.push(`the suite \`${p.suite}\` (only ${BUILT_SUITES.join(' and ')})`);
  if (!(BUILT_ARCHITECTURES as readonly string[]).includes(p.architecture)) why.push(`the architecture \`${p.architecture}\` (only ${BUILT_ARCHITECTURES.join(' and ')})`);
  if (p.boot.scheme !== 'debian') why.push(`the boot scheme \`${p.boot.scheme}\` (only \`debian\`: raspi-firmware)`);
  if (p.boot.config_txt !== '' || p.boot.cmdline !== '') why.push('`boot.config_txt`/`boot.cmdline` (raspi-firmware writes them)');
  if (p.hub.install[0] !== 'apt') why.push(`the hub from \`${p.hub.install[0]}\` (only apt)`);
  if (p.keyring !== null) why.push('a main archive with a keyring of its own (the build checks it with the build machine\'s debian-archive-keyring)');
  return why.length ? `pihub does not build ${why.join(', ')} yet` : undefined;
}

/** The shipped profiles the engine builds. */
export function builtBases(dir: string = BASES_DIR): string[] {
  return listBases(dir).filter((n) => !unbuildable(loadBase(n, dir).profile));
}

export interface LoadedBase {
  name: string;
  file: string;
  profile: BaseProfile;
  /** Absolute paths of the keyrings: the main archive's (if any) and each repository's by name. */
  keyrings: { archive: string | null; repositories: Record<string, string> };
}

export function listBases(dir: string = BASES_DIR): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => /^[a-z0-9][a-z0-9-]*\.yaml$/.test(f))
    .map((f) => f.slice(0, -'.yaml'.length))
    .sort();
}

/** The keys a mapping of the profile may have at `path`, for "did you mean" hints. */
function knownProfileKeys(path: readonly PathKey[]): string[] {
  type Def = { type: string; shape?: Record<string, { _zod: { def: unknown } }>; element?: { _zod: { def: unknown } }; innerType?: { _zod: { def: unknown } }; in?: { _zod: { def: unknown } } };
  const unwrap = (d: Def): Def => {
    let cur = d;
    while ((['optional', 'nullable', 'default'].includes(cur.type) && cur.innerType) || (cur.type === 'pipe' && cur.in)) {
      cur = ((cur.type === 'pipe' ? cur.in : cur.innerType)!._zod.def) as Def;
    }
    return cur;
  };
  let def = unwrap(ProfileSchema._zod.def as Def);
  for (const p of path) {
    if (def.type === 'object' && def.shape && typeof p === 'string' && def.shape[p]) def = unwrap(def.shape[p]._zod.def as Def);
    else if (def.type === 'array' && def.element) def = unwrap(def.element._zod.def as Def);
    else return [];
  }
  return def.type === 'object' && def.shape ? Object.keys(def.shape) : [];
}

/** A file a profile names: absolute, beside the profile, or else in bases/ (a copied profile keeps working). */
function resolveIn(dir: string, file: string): string {
  if (isAbsolute(file)) return file;
  const beside = join(dir, file);
  const shipped = join(BASES_DIR, file);
  return !existsSync(beside) && existsSync(shipped) ? shipped : beside;
}

/** Refuses a keyring that is missing, unreadable, or holds any key but the listed ones. */
export function verifyKeyring(path: string, fingerprints: readonly string[], who: string): void {
  if (!existsSync(path)) throw new InputError(`${who}: keyring ${displayPath(path)} does not exist`);
  let data: Buffer;
  try {
    data = readRegularFile(path, KEYRING_MAX_BYTES);
  } catch (err) {
    if (err instanceof FileProblem) throw new InputError(`${who}: keyring ${displayPath(path)} ${err.reason}; give an OpenPGP keyring file (.gpg or .asc)`);
    throw err;
  }
  let keys;
  try {
    keys = keyringKeys(data);
  } catch (err) {
    throw new InputError(`${who}: keyring ${displayPath(path)}: ${(err as Error).message}`);
  }
  const want = [...new Set(fingerprints)].sort();
  const have = [...new Set(keys.primary)].sort();
  const extra = have.filter((f) => !want.includes(f));
  const missing = want.filter((f) => !have.includes(f));
  if (extra.length || missing.length) {
    throw new InputError(
      `${who}: keyring ${displayPath(path)} must hold exactly the keys listed in the profile` +
        (missing.length ? `; missing ${missing.join(', ')}` : '') +
        (extra.length ? `; also holds ${extra.join(', ')} (remove it from the keyring, or list it if you trust it for this repository)` : ''),
    );
  }
}

export function loadBase(name: string, dir: string = BASES_DIR): LoadedBase {
  const file = join(dir, `${name}.yaml`);
  if (!/^[a-z0-9][a-z0-9-]*$/.test(name) || !existsSync(file)) {
    const known = listBases(dir);
    const hint = suggest(name, known);
    throw new InputError(
      `unknown base \`${name}\`${hint ? ` (did you mean \`${hint}\`?)` : ''}; the bases are ${known.map((b) => `\`${b}\``).join(', ')} (see \`pihub bases\`), or give the path of your own profile (a .yaml file)`,
    );
  }
  return loadBaseFile(file, name);
}

/**
 * `NAME` of a profile in bases/, or the path of one's own profile (with a slash, or ending in
 * .yaml), relative to `from` (the config file's folder; the working directory for --set).
 */
export function loadBaseSpec(spec: string, from: string = process.cwd()): LoadedBase {
  if (!spec.includes('/') && !spec.endsWith('.yaml')) return loadBase(spec);
  const file = resolve(from, spec);
  if (!existsSync(file)) throw new InputError(`base profile ${displayPath(file)} does not exist`);
  return loadBaseFile(file, basename(file).replace(/\.ya?ml$/, ''));
}

/** Far more than any keyring of a few archive keys. */
const KEYRING_MAX_BYTES = 16 * 1024 * 1024;

/** A profile file, checked; its keyrings and requirements are relative to its folder. */
export function loadBaseFile(file: string, name: string): LoadedBase {
  const dir = dirname(file);
  const label = displayPath(file);
  const layer = parseConfigText(readInputText(file, `base profile ${label}`, 'give a profile file (.yaml, see bases/README.md)'), label);
  const result = ProfileSchema.safeParse(layer.data);
  if (!result.success) {
    const lines = formatIssues(result.error.issues, { input: layer.data, knownKeys: knownProfileKeys, sources: [layer.locator], fallback: label });
    throw new InputError(`base \`${name}\`: ${lines.join(`\nbase \`${name}\`: `)}`);
  }
  const profile = result.data;
  const who = `base \`${name}\``;
  const archive = profile.keyring === null ? null : resolveIn(dir, profile.keyring);
  if (archive) verifyKeyring(archive, profile.fingerprints, `${who}: \`keyring\``);
  const repositories: Record<string, string> = {};
  for (const r of profile.repositories) {
    const path = resolveIn(dir, r.keyring);
    verifyKeyring(path, r.fingerprints, `${who}: repository \`${r.name}\``);
    repositories[r.name] = path;
  }
  const requirements = resolveIn(dir, profile.hub.requirements);
  try {
    checkRegularFile(requirements, TEXT_MAX_BYTES);
  } catch (err) {
    if (err instanceof FileProblem) throw new InputError(`${who}: \`hub.requirements\`: ${displayPath(requirements)} ${err.reason}; give a requirements file (lines of NAME==VERSION)`);
    throw err;
  }
  return { name, file, profile, keyrings: { archive, repositories } };
}

const HOW: Record<BaseProfile['tested']['how'], string> = {
  e2e: 'built and booted in the end-to-end tier',
  slow: 'built and booted in the slow tier',
  bench: 'built and booted by the bench',
  'stand-in': 'not reachable from CI: its machinery is tested with local stand-ins',
  none: 'not built or booted yet',
};

/** The machines `pihub boot` runs (virt for arm64 and armhf, raspi3b for arm64). */
const BOOTS: readonly string[] = ['virt', 'raspi3b'];

/** `pihub bases`: one block per profile. */
export function describeBases(bases: readonly LoadedBase[]): string {
  return bases
    .map(({ name, profile: p }) => [
      `${name}${name === DEFAULT_BASE ? ' (default)' : ''}`,
      `  ${p.description}`,
      `  architecture: ${p.architecture}   suite: ${p.suite}   Python ${p.python}   hub from: ${p.hub.install.includes('apt') ? 'apt' : 'pip'}${p.hub.install.includes('pip') ? ' (pip: not built yet)' : ''}`,
      `  Raspberry Pi: ${p.models.join(', ')}`,
      `  QEMU: ${p.qemu.machines.map((m) => `${m.machine}${m.dtb ? ` (${m.dtb})` : ''} to the ${m.reaches === 'hub' ? 'hub' : 'login prompt'}${BOOTS.includes(m.machine) ? '' : ' (not in `pihub boot` yet)'}`).join('; ')}`,
      `  built by pihub: ${unbuildable(p)?.replace(/^pihub does not build /, 'not yet: ').replace(/ yet$/, '') ?? 'yes'}`,
      `  tested: ${HOW[p.tested.how]}; ${p.tested.summary}`,
    ].join('\n'))
    .join('\n\n');
}
