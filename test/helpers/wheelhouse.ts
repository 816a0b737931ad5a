// A stand-in for PyPI (not reachable here): a find-links directory of wheels assembled from
// Debian's own packages. Debian installs each Python distribution as a module tree plus a
// *.dist-info or *.egg-info directory with its metadata under /usr/lib/python3/dist-packages,
// and its data files (JupyterLab's static assets, server extension configs) under /usr/share and
// /etc. Each becomes a wheel: the module tree at the wheel's root, the data files in
// NAME-VERSION.data/data/ (pip puts them under the environment's prefix, where Jupyter looks),
// the metadata as METADATA (egg-info's requires.txt turned into Requires-Dist), a RECORD with
// hashes, and a platform tag when it holds compiled extensions. Symbolic links (Debian links
// JavaScript libraries between packages) become copies of what they point at.
//
// Limits, stated: Requires-Dist entries naming distributions Debian does not package are
// dropped (Debian runs without them), and version ranges are dropped from the others: the
// wheelhouse holds exactly the versions Debian tested together, which do not always match
// upstream's ranges (Debian's pamela says 1.0.0, JupyterHub asks for 1.1.0 or later). Each
// wheel reports what was changed. Console scripts are pip's own, from entry_points.txt.
import { execFile } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import { basename, join, posix } from 'node:path';
import { promisify } from 'node:util';
import { recordHash, zip, type ZipEntry } from './wheel.ts';

const run = promisify(execFile);

const DIST_PACKAGES = 'usr/lib/python3/dist-packages';
/** Data directories mapped into the wheel's data scheme: path in the system → path under the prefix. */
const DATA_DIRS: Array<[string, string]> = [
  ['usr/share/jupyter', 'share/jupyter'],
  ['usr/share/jupyterhub', 'share/jupyterhub'],
  ['etc/jupyter', 'etc/jupyter'],
];

/** PEP 503 name: lowercase, runs of `-`, `_`, `.` as one `-`. */
export const normalizeName = (n: string) => n.toLowerCase().replace(/[-_.]+/g, '-');

export interface BuiltWheel {
  name: string;
  version: string;
  file: string;
  debianPackage: string;
  /** Requirements dropped because Debian does not package them. */
  dropped: string[];
  /** Requirements whose version range was dropped. */
  relaxed: string[];
}

interface Extracted {
  pkg: string;
  root: string;
}

interface Dist {
  deb: Extracted;
  info: string;
  name: string;
  version: string;
  metadata: string;
  topLevel: string[] | undefined;
}

/** The installed file system of all extracted packages: directories (with their children from
 * every package) and everything else (files, symbolic links) → where it lies here. */
interface Tree {
  dirs: Map<string, Set<string>>;
  files: Map<string, string>;
}

function indexPaths(debs: readonly Extracted[]): Tree {
  const tree: Tree = { dirs: new Map([['', new Set()]]), files: new Map() };
  const walk = (root: string, rel: string) => {
    for (const e of readdirSync(join(root, rel), { withFileTypes: true })) {
      const r = `${rel}/${e.name}`;
      tree.dirs.get(rel)!.add(e.name);
      if (e.isDirectory()) {
        if (!tree.dirs.has(r)) tree.dirs.set(r, new Set());
        walk(root, r);
      } else {
        tree.files.set(r, join(root, r));
      }
    }
  };
  for (const d of debs) walk(d.root, '');
  return tree;
}

/** The canonical installed path of `abs` with every symbolic link on the way followed; undefined if dangling. */
function resolveLink(abs: string, tree: Tree, depth = 0): string | undefined {
  if (depth > 40) return undefined;
  const parts = abs.split('/').filter(Boolean);
  let cur = '';
  for (const [i, part] of parts.entries()) {
    cur = `${cur}/${part}`;
    if (tree.dirs.has(cur)) continue;
    const here = tree.files.get(cur);
    if (!here) return undefined;
    if (lstatSync(here).isSymbolicLink()) {
      const target = readlinkSync(here);
      const next = target.startsWith('/') ? target : posix.normalize(posix.join(posix.dirname(cur), target));
      return resolveLink(posix.join(next, ...parts.slice(i + 1)), tree, depth + 1);
    }
    if (i < parts.length - 1) return undefined; // a file in the middle of a path
  }
  return cur;
}

function parseMetadata(text: string): { name: string; version: string } {
  const name = /^Name: (.+)$/m.exec(text)?.[1]?.trim();
  const version = /^Version: (.+)$/m.exec(text)?.[1]?.trim();
  if (!name || !version) throw new Error(`metadata without Name/Version:\n${text.slice(0, 300)}`);
  return { name, version };
}

/** egg-info's requires.txt as Requires-Dist lines (sections are `[extra]`, `[:marker]` or `[extra:marker]`). */
export function requiresToDist(text: string): string[] {
  const out: string[] = [];
  let extra = '';
  let marker = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const section = /^\[(.*)\]$/.exec(line);
    if (section) {
      const [e = '', m = ''] = section[1]!.split(':');
      extra = e.trim();
      marker = m.trim();
      continue;
    }
    const conds = [marker ? `(${marker})` : '', extra ? `extra == "${extra}"` : ''].filter(Boolean);
    out.push(conds.length ? `${line}; ${conds.join(' and ')}` : line);
  }
  return out;
}

function requirementName(req: string): string {
  return normalizeName(/^\s*([A-Za-z0-9][A-Za-z0-9._-]*)/.exec(req)?.[1] ?? req);
}

/** `name[extra] (>=1.0) ; marker` → `name[extra]; marker` */
export function withoutVersion(req: string): string {
  const [spec = '', ...marker] = req.split(';');
  const m = /^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?/.exec(spec);
  if (!m) return req;
  const head = `${m[1]}${m[2] ?? ''}`;
  return marker.length ? `${head}; ${marker.join(';').trim()}` : head;
}


/** Extracts `.deb` files with dpkg-deb, one directory each. */
async function extract(debs: readonly string[], work: string): Promise<Extracted[]> {
  const out: Extracted[] = [];
  for (const deb of debs) {
    const pkg = basename(deb).split('_')[0]!;
    const root = join(work, pkg);
    if (!existsSync(root)) {
      mkdirSync(root, { recursive: true });
      await run('dpkg-deb', ['--extract', deb, root]);
    }
    out.push({ pkg, root });
  }
  return out;
}

function findDists(debs: readonly Extracted[]): Dist[] {
  const dists: Dist[] = [];
  for (const deb of debs) {
    const sp = join(deb.root, DIST_PACKAGES);
    if (!existsSync(sp)) continue;
    for (const info of readdirSync(sp).filter((n) => /\.(dist|egg)-info$/.test(n)).sort()) {
      const dir = join(sp, info);
      if (!statSync(dir).isDirectory()) continue;
      const metaFile = existsSync(join(dir, 'METADATA')) ? join(dir, 'METADATA') : join(dir, 'PKG-INFO');
      let metadata = readFileSync(metaFile, 'utf8');
      if (info.endsWith('.egg-info') && !/^Requires-Dist:/m.test(metadata) && existsSync(join(dir, 'requires.txt'))) {
        const reqs = requiresToDist(readFileSync(join(dir, 'requires.txt'), 'utf8'));
        metadata = insertHeaders(metadata, reqs.map((r) => `Requires-Dist: ${r}`));
      }
      const { name, version } = parseMetadata(metadata);
      const tl = join(dir, 'top_level.txt');
      const topLevel = existsSync(tl) ? readFileSync(tl, 'utf8').split('\n').map((s) => s.trim()).filter(Boolean) : undefined;
      dists.push({ deb, info, name, version, metadata, topLevel });
    }
  }
  return dists;
}

/** Adds header lines to RFC 822-style metadata, before its body (after the first blank line). */
function insertHeaders(metadata: string, headers: readonly string[]): string {
  if (headers.length === 0) return metadata;
  const cut = metadata.indexOf('\n\n');
  const head = cut < 0 ? metadata.replace(/\n*$/, '') : metadata.slice(0, cut);
  const body = cut < 0 ? '' : metadata.slice(cut);
  return `${head}\n${headers.join('\n')}${body || '\n'}`;
}

/** Files (relative to the package root) below `dir`, symlinks included as entries. */
function filesBelow(root: string, dir: string): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    const full = join(root, rel);
    if (!existsSync(full)) return;
    for (const e of readdirSync(full, { withFileTypes: true })) {
      const r = `${rel}/${e.name}`;
      if (e.isDirectory()) walk(r);
      else out.push(r);
    }
  };
  walk(dir);
  return out;
}

export interface WheelhouseOptions {
  /** The .deb files: the Python packages and whatever their symlinks point into. */
  debs: readonly string[];
  out: string;
  work: string;
  /** Wheel tags for packages with compiled extensions, e.g. `cp313` and `linux_aarch64`. */
  pythonTag: string;
  platformTag: string;
}

export async function debianWheelhouse(o: WheelhouseOptions): Promise<BuiltWheel[]> {
  mkdirSync(o.out, { recursive: true });
  const extracted = await extract(o.debs, o.work);
  const tree = indexPaths(extracted);
  const dists = findDists(extracted);
  const available = new Set(dists.map((d) => normalizeName(d.name)));
  const built: BuiltWheel[] = [];
  for (const dist of dists) {
    const siblings = dists.filter((d) => d.deb === dist.deb);
    const owns = (rel: string): boolean => {
      // rel is below dist-packages: `pkg/mod.py`, `mod.py`, `NAME.dist-info/…`
      const first = rel.split('/')[0]!;
      if (/\.(dist|egg)-info$/.test(first)) return false;
      if (siblings.length === 1 || !dist.topLevel) return siblings.length === 1;
      const top = first.replace(/(\.cpython-[^.]+)?\.(py|so|pyi)$/, '');
      return dist.topLevel.includes(top);
    };
    const entries = new Map<string, { data: Buffer; mode: number }>();
    /** Adds the installed path `abs` (a file, or a directory through a link) under `archivePath`. */
    const add = (archivePath: string, abs: string) => {
      const canonical = resolveLink(abs, tree);
      if (canonical === undefined) return; // dangling: Debian's link into a package outside this set
      const children = tree.dirs.get(canonical);
      if (children) {
        for (const c of children) add(`${archivePath}/${c}`, `${canonical}/${c}`);
        return;
      }
      const real = tree.files.get(canonical)!;
      entries.set(archivePath, { data: readFileSync(real), mode: statSync(real).mode & 0o777 });
    };
    for (const rel of filesBelow(dist.deb.root, DIST_PACKAGES)) {
      const inside = rel.slice(DIST_PACKAGES.length + 1);
      if (owns(inside)) add(inside, `/${rel}`);
    }
    // Links to directories (Debian's shared JavaScript) are listed as files here; add() follows them.
    const dataDir = `${normalizeName(dist.name).replace(/-/g, '_')}-${dist.version}.data/data`;
    if (siblings[0] === dist) {
      for (const [from, to] of DATA_DIRS) {
        for (const rel of filesBelow(dist.deb.root, from)) add(`${dataDir}/${to}${rel.slice(from.length)}`, `/${rel}`);
      }
    }
    const compiled = [...entries.keys()].some((p) => /\.so(\.\d+)*$/.test(p));
    const dropped: string[] = [];
    const relaxed: string[] = [];
    const metadata = dist.metadata
      .split('\n')
      .flatMap((line) => {
        const m = /^Requires-Dist: (.+)$/.exec(line);
        if (!m) return [line];
        const req = m[1]!;
        if (!available.has(requirementName(req))) {
          dropped.push(req);
          return [];
        }
        const bare = withoutVersion(req);
        if (bare !== req) relaxed.push(req);
        return [`Requires-Dist: ${bare}`];
      })
      .join('\n');
    const wheelName = normalizeName(dist.name).replace(/-/g, '_');
    const info = `${wheelName}-${dist.version}.dist-info`;
    const tag = compiled ? `${o.pythonTag}-${o.pythonTag}-${o.platformTag}` : 'py3-none-any';
    const files: ZipEntry[] = [...entries].sort(([a], [b]) => a.localeCompare(b)).map(([name, e]) => ({ name, data: e.data, mode: e.mode }));
    const infoDir = join(dist.deb.root, DIST_PACKAGES, dist.info);
    for (const extra of ['entry_points.txt', 'top_level.txt']) {
      if (existsSync(join(infoDir, extra))) files.push({ name: `${info}/${extra}`, data: readFileSync(join(infoDir, extra)), mode: 0o644 });
    }
    files.push({ name: `${info}/METADATA`, data: Buffer.from(metadata), mode: 0o644 });
    files.push({ name: `${info}/WHEEL`, data: Buffer.from(`Wheel-Version: 1.0\nGenerator: pihub-test (from Debian's ${dist.deb.pkg})\nRoot-Is-Purelib: ${compiled ? 'false' : 'true'}\nTag: ${tag}\n`), mode: 0o644 });
    const record = files.map((f) => `${f.name},${recordHash(f.data)},${f.data.length}`).join('\n') + `\n${info}/RECORD,,\n`;
    files.push({ name: `${info}/RECORD`, data: Buffer.from(record), mode: 0o644 });
    const file = join(o.out, `${wheelName}-${dist.version}-${tag}.whl`);
    writeFileSync(file, zip(files));
    built.push({ name: dist.name, version: dist.version, file, debianPackage: dist.deb.pkg, dropped, relaxed });
  }
  return built;
}

/** A complete lock for the wheelhouse: every distribution pinned (`name==version`). */
export function lockFile(wheels: readonly BuiltWheel[]): string {
  return [
    '# pihub test: the stand-in wheelhouse, every distribution pinned',
    ...[...wheels].sort((a, b) => normalizeName(a.name).localeCompare(normalizeName(b.name))).map((w) => `${w.name}==${w.version}`),
    '',
  ].join('\n');
}

export const WHEEL_PLATFORM: Record<string, string> = { amd64: 'linux_x86_64', arm64: 'linux_aarch64', armhf: 'linux_armv7l', armel: 'linux_armv6l' };

/** What the stand-in wheelhouse is made from: Debian's hub, lab, notebook server and numpy. */
export const STAND_IN_PACKAGES = ['jupyterhub', 'jupyterlab', 'python3-notebook', 'python3-numpy', 'python3-ipykernel', 'python3-terminado'];
/** Shared libraries Debian's compiled Python modules link to (pyzmq, argon2-cffi, PyYAML, numpy): the image installs them with apt. */
export const STAND_IN_RUNTIME = ['libzmq5', 'libargon2-1', 'libyaml-0-2', 'libblas3', 'liblapack3'];

/** The packages of a dependency closure that hold Python distributions, or files their symlinks point at. */
export function standInDebs(closure: ReadonlyArray<{ name: string; file: string }>): string[] {
  return closure.filter((p) => /^(python3?-|jupyter|libjs-|fonts-)/.test(p.name)).map((p) => p.file);
}
