// Raspberry Pi Imager repository JSON (its `os_list` format) for the images in a deploy folder.
// Imager 2.x customises only images from a repository, according to their `init_format`; with
// `cloudinit` it writes user-data, network-config and meta-data for the image's cloud-init.
// Field names and requirements: raspberrypi/rpi-imager, doc/json-schema/os-list-schema.json.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { DEFAULTS } from '../config/schema.ts';
import { InputError } from '../core/errors.ts';
import { readManifest, type ManifestRead } from '../image/manifest.ts';
import { checkRegularFile, sha256File, writeFileSafely, type FileOwner } from '../core/files.ts';

export const REPOSITORY_FILE = 'rpi-imager.json';
export const ICON_FILE = 'pihub.png';
const ICON_SOURCE = new URL('./pihub.png', import.meta.url);

/**
 * The boards pihub's images boot on, with Imager's device tag for each architecture an image can
 * have (Debian's arm64 kernel on the 64-bit boards, the Pi 5 family too; the armhf armmp-lpae kernel on every ARMv7 Pi).
 */
export const BOARDS = [
  // Debian's kernel from trixie-backports (7.x) carries the Pi 5's device trees (docs/boards.md).
  { name: 'Raspberry Pi 5', description: 'Raspberry Pi 5, Raspberry Pi 500, Compute Module 5', architecture: 'armv8', tags: { arm64: 'pi5-64bit' } },
  { name: 'Raspberry Pi 4', description: 'Raspberry Pi 4 Model B, Raspberry Pi 400, Compute Module 4', architecture: 'armv8', tags: { arm64: 'pi4-64bit' } },
  { name: 'Raspberry Pi 3', description: 'Raspberry Pi 3 Model B, B+ and A+, Compute Module 3', architecture: 'armv8', tags: { arm64: 'pi3-64bit', armhf: 'pi3-32bit' } },
  { name: 'Raspberry Pi Zero 2 W', description: 'Raspberry Pi Zero 2 W', architecture: 'armv8', tags: { arm64: 'pi3-64bit', armhf: 'pi3-32bit' } },
  { name: 'Raspberry Pi 2', description: 'Raspberry Pi 2 Model B', architecture: 'armv7', tags: { armhf: 'pi2-32bit' } },
] as const;

/** Imager's name for each Debian architecture pihub builds, and how an entry says it. */
const ARCHITECTURES: Record<string, { imager: string; bits: string }> = {
  arm64: { imager: 'armv8', bits: '64-bit' },
  armhf: { imager: 'armv7', bits: '32-bit' },
};

function architectureOf(m: { architecture: string; file: string }): { imager: string; bits: string } {
  const a = ARCHITECTURES[m.architecture];
  if (!a) throw new InputError(`${m.file}: an image for ${m.architecture}, which the Imager repository does not describe (it knows ${Object.keys(ARCHITECTURES).join(', ')})`);
  return a;
}

/** The repository's device list: the boards the images in it boot on, with their tags for those images' architectures. */
export function devicesFor(architectures: readonly string[]): { name: string; description: string; tags: string[]; matching_type: string; architecture: string }[] {
  return BOARDS.map((b) => ({
    name: b.name,
    description: b.description,
    tags: [...new Set(architectures.flatMap((a) => (Object.hasOwn(b.tags, a) ? [b.tags[a as keyof typeof b.tags]!] : [])))],
    matching_type: 'exclusive',
    architecture: b.architecture,
  })).filter((d) => d.tags.length > 0);
}

/** Imager's device tags of the boards an image of this Debian architecture boots on. */
export function deviceTags(architecture: string): string[] {
  return [...new Set(devicesFor([architecture]).flatMap((d) => d.tags))];
}

/** A regular file of its own in the folder (not a symlink, FIFO or device someone put there). */
function isPlainFile(path: string): boolean {
  try {
    checkRegularFile(path, Infinity, { follow: false });
    return true;
  } catch {
    return false;
  }
}

/** pihub's image manifests in a folder (the .json files that describe an image file beside them). */
export function findImages(dir: string): ManifestRead[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new InputError(`${dir} does not exist; build an image first (pihub build --out ${dir})`);
    throw new InputError(`${dir} is not a folder pihub can read (${code ?? (err as Error).message}); give the folder of a build (pihub build --out DIR)`);
  }
  const out: ManifestRead[] = [];
  for (const f of names.filter((n) => n.endsWith('.json')).sort()) {
    // Only plain files (no link, no FIFO), and only manifests whose image is a plain file beside them.
    const m = readManifest(join(dir, f), { follow: false });
    if (m && isPlainFile(join(dir, m.file))) out.push(m);
  }
  return out;
}

export interface Entry {
  name: string;
  description: string;
  icon: string;
  url: string;
  extract_size: number;
  extract_sha256: string;
  image_download_size: number;
  image_download_sha256: string;
  release_date: string;
  init_format: 'cloudinit';
  devices: string[];
  architecture: string;
  capabilities: string[];
  website?: string;
}

/** `https://host/path` or `file:///dir` with exactly one trailing slash; anything else is an input error. */
export function normaliseBaseUrl(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new InputError(`--base-url ${url}: expected an absolute URL such as https://github.com/OWNER/REPO/releases/download/v1.0/`);
  }
  if (!['https:', 'http:', 'file:'].includes(u.protocol)) throw new InputError(`--base-url ${url}: expected an https://, http:// or file:// URL`);
  return u.href.endsWith('/') ? u.href : `${u.href}/`;
}

/**
 * The repository entry for one image. Sizes come from the files; checksums from the manifest,
 * which the export wrote from the files it made, and with `verify` from reading the file again.
 */
export async function entryFor(dir: string, m: ManifestRead, baseUrl: string, opts: { website?: string; verify?: boolean } = {}): Promise<Entry> {
  const download = join(dir, m.file);
  const raw = m.file === m.image;
  const downloadSha = opts.verify ? await sha256File(download) : m.sha256;
  if (downloadSha !== m.sha256) {
    throw new InputError(`${download}: its sha256 is ${downloadSha}, but ${m.image.replace(/\.img$/, '.json')} says ${m.sha256}; rebuild the image`);
  }
  const port = m.hub?.port ?? DEFAULTS.hub.port;
  const arch = architectureOf(m);
  return {
    name: `${m.name}: JupyterHub for the home (Debian ${m.suite}, ${arch.bits})`,
    description: `A home JupyterHub on Debian ${m.suite}: everyone with an account on the Pi logs in at http://${m.hostname ?? 'pihub'}.local:${port}/ and gets JupyterLab with numpy.`,
    icon: `${baseUrl}${ICON_FILE}`,
    url: `${baseUrl}${encodeURIComponent(m.file)}`,
    // The image is written uncompressed: its size and checksum (Imager refuses a mismatch).
    extract_size: raw ? statSync(download).size : m.size,
    extract_sha256: m.raw_sha256,
    image_download_size: statSync(download).size,
    image_download_sha256: downloadSha,
    release_date: m.date,
    init_format: 'cloudinit',
    devices: deviceTags(m.architecture),
    architecture: arch.imager,
    capabilities: ['passwordless_sudo'],
    ...(opts.website ? { website: opts.website } : {}),
  };
}

export interface RepositoryResult {
  file: string;
  icon: string;
  entries: Entry[];
}

/** Write <dir>/rpi-imager.json (and the icon it names) for every image in dir. */
export async function writeRepository(dir: string, opts: { baseUrl?: string; website?: string; verify?: boolean; owner?: FileOwner } = {}): Promise<RepositoryResult> {
  const images = findImages(dir);
  if (!images.length) throw new InputError(`${dir} holds no pihub image (an .img or compressed image with its .json manifest); build one with pihub build --out ${dir}`);
  const baseUrl = normaliseBaseUrl(opts.baseUrl ?? pathToFileURL(`${dir}/`).href);
  const entries: Entry[] = [];
  for (const m of images) entries.push(await entryFor(dir, m, baseUrl, opts));
  entries.sort((a, b) => b.release_date.localeCompare(a.release_date) || a.name.localeCompare(b.name));
  const repository = { imager: { devices: devicesFor([...new Set(images.map((m) => m.architecture))]) }, os_list: entries };
  const file = join(dir, REPOSITORY_FILE);
  const icon = join(dir, ICON_FILE);
  // Complete files only under their final names; never through what was planted under them.
  writeFileSafely(file, `${JSON.stringify(repository, null, 2)}\n`, { mode: 0o644, owner: opts.owner });
  writeFileSafely(icon, readFileSync(ICON_SOURCE), { mode: 0o644, owner: opts.owner });
  return { file, icon, entries };
}
