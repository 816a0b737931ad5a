// node --import tsx ci/release.ts --tag TAG --out DIR [--base-url URL] [--dry-run] [--publish]
//                                 [--work-dir DIR] [-- BUILD-ARGS...]
//
// What .github/workflows/release.yml runs for a tag, and what runs here the same way:
//  1. build every shipped image (RELEASE_IMAGES) with `pihub build`;
//  2. check every image before anything is published: boot it in QEMU, customised exactly as
//     Raspberry Pi Imager does it, and run the hub's end-to-end check (ci/check-image.ts);
//  3. collect each image with its block map (.img.bmap), .sha256, .info, .json and .spdx.json (SBOM) into DIR, and
//     write DIR/rpi-imager.json (Imager's repository, URLs under --base-url), its icon, and
//     DIR/RELEASE_NOTES.md (kernel, JupyterHub, JupyterLab and numpy versions);
//  4. with --publish: publish DIR as the GitHub release TAG (ci/publish.sh: checksums, then `gh`).
// On GitHub the two halves run apart: the build job runs this without --publish and without any
// token that can write, and hands DIR on as an artifact; the publish job, which alone may write,
// runs ci/publish.sh on it and builds nothing. `--publish` runs both here in one go.
// --dry-run checks every image's config (`pihub build --dry-run`) and prints each step's
// commands, then stops: it builds, boots, writes and publishes nothing.
// Arguments after `--` go to every `pihub build` (the tests: -- --set image.compression=zstd).
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, linkSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { PROJECT_DIR } from '../build/plan/inputs.ts';
import { formatCommand, type Command } from '../build/core/exec.ts';
import { findImages, ICON_FILE, normaliseBaseUrl, REPOSITORY_FILE, writeRepository } from '../build/release/imager.ts';
import type { ManifestRead } from '../build/image/manifest.ts';
import { releaseNotes, versionsFromInfo, type NotesImage } from '../build/release/notes.ts';
import { sbomName } from '../build/release/sbom.ts';
import { checkImage } from './check-image.ts';
import { ensureWebSocket } from './websocket.ts';

/** The images a release ships: each is built from pihub's stages with these build arguments. */
export const RELEASE_IMAGES: ReadonlyArray<{ id: string; description: string; args: string[] }> = [
  { id: 'pihub', description: 'the default image (no accounts: Imager or userconf.txt makes them)', args: [] },
  { id: 'pihub-armhf', description: 'the same for 32-bit boards: the Pi 2, and the Pi 3 and Zero 2 W in 32-bit (base debian-trixie-armhf)', args: ['--set', 'base=debian-trixie-armhf'] },
];

/** Every release image: xz, the smallest download (a local build defaults to zstd); later --set wins. */
export const RELEASE_BUILD_ARGS = ['--set', 'image.compression=xz'];

const PIHUB = join(PROJECT_DIR, 'build/bin/pihub.js');
/** Publishes a collected release folder; release.yml's publish job runs it on its own. */
export const PUBLISH = join(PROJECT_DIR, 'ci/publish.sh');
export const NOTES_FILE = 'RELEASE_NOTES.md';

class UsageError extends Error {}

function run(command: Command, log: (line: string) => void): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    const [program, args] = command;
    const child = spawn(program, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { out += d.toString(); });
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code === 0) return resolvePromise(out);
      log(out.slice(-4000));
      reject(new Error(`${formatCommand(command)} exited with ${code}`));
    });
  });
}

/** What publishes a collected release folder: the same command as release.yml's publish job. */
export function publishCommand(tag: string, out: string): Command {
  return [PUBLISH, [tag, out]];
}

/** The files of one image that a release publishes. */
export function imageFiles(m: ManifestRead): string[] {
  const base = m.image.replace(/\.img$/, '');
  return [m.file, `${m.image}.bmap`, `${base}.sha256`, `${base}.info`, `${base}.json`, sbomName(base)];
}

function place(from: string, dir: string): void {
  const to = join(dir, basename(from));
  const tmp = `${to}.partial-${process.pid}`;
  rmSync(tmp, { force: true });
  try {
    linkSync(from, tmp);
  } catch {
    copyFileSync(from, tmp);
  }
  renameSync(tmp, to);
}

export interface ReleaseOptions {
  tag: string;
  out: string;
  baseUrl?: string;
  dryRun: boolean;
  publish: boolean;
  buildArgs: string[];
  workDir: string;
  /** Only these of RELEASE_IMAGES (by id); all when empty. */
  images?: readonly string[];
  log: (line: string) => void;
}

export async function release(o: ReleaseOptions): Promise<string[]> {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(o.tag)) throw new UsageError(`--tag ${o.tag}: expected a tag name such as v1.0`);
  if (existsSync(o.out) && readdirSync(o.out).length) throw new UsageError(`--out ${o.out} is not empty; a release is collected into an empty folder`);
  const baseUrl = o.baseUrl ? normaliseBaseUrl(o.baseUrl) : undefined;
  const repositoryUrl = baseUrl ? `${baseUrl}${REPOSITORY_FILE}` : pathToFileURL(join(o.out, REPOSITORY_FILE)).href;
  const say = (line: string) => o.log(o.dryRun ? `[dry run] ${line}` : line);
  const unknown = (o.images ?? []).filter((id) => !RELEASE_IMAGES.some((i) => i.id === id));
  if (unknown.length) throw new UsageError(`--image ${unknown.join(', ')}: the release images are ${RELEASE_IMAGES.map((i) => i.id).join(', ')}`);
  const chosen = o.images?.length ? RELEASE_IMAGES.filter((i) => o.images!.includes(i.id)) : RELEASE_IMAGES;
  say(`release ${o.tag}: ${chosen.length} image(s) into ${o.out}; Imager repository ${repositoryUrl}`);

  const built: ManifestRead[] = [];
  for (const img of chosen) {
    const deploy = join(o.workDir, img.id, 'deploy');
    const args = ['build', ...RELEASE_BUILD_ARGS, ...img.args, ...o.buildArgs, '--out', deploy, '--work-dir', join(o.workDir, 'work'), '--quiet'];
    say(`image ${img.id}: ${img.description}`);
    if (o.dryRun) {
      // The config, overlays and stage files are checked for real; nothing is built.
      const plan = await run([process.execPath, [PIHUB, ...args.filter((a) => a !== '--quiet'), '--dry-run']], o.log);
      say(`  config checked: ${plan.split('\n').filter((l) => l.startsWith('stage ')).length} stages`);
      say(`  $ ${formatCommand([process.execPath, [PIHUB, ...args]])}`);
      say(`  check: boot the image in QEMU, customised as Raspberry Pi Imager does, and run the hub's end-to-end check (ci/check-image.ts)`);
      continue;
    }
    rmSync(deploy, { recursive: true, force: true });
    say(`  $ ${formatCommand([process.execPath, [PIHUB, ...args]])}`);
    await run([process.execPath, [PIHUB, ...args]], o.log);
    const images = findImages(deploy);
    if (images.length !== 1) throw new Error(`${deploy}: expected one image after the build, found ${images.length}`);
    const m = images[0]!;
    say(`  built ${m.file}`);
    // Nothing is published unless every image boots and passes the hub check.
    const r = await checkImage(join(deploy, m.file), join(o.workDir, img.id, 'check'), (l) => say(`  ${l}`));
    say(`  checked: JupyterHub ${r.hubVersion}, numpy ${r.numpy}; the hub answered ${r.bootSeconds} s after boot`);
    built.push({ ...m, file: join(deploy, m.file) });
  }

  const files = [REPOSITORY_FILE, ICON_FILE, NOTES_FILE];
  if (o.dryRun) {
    say(`collect each image, its .img.bmap, .sha256, .info, .json and .spdx.json into ${o.out}; write ${files.join(', ')}`);
    say(`${o.publish ? '' : 'with --publish: '}$ ${formatCommand(publishCommand(o.tag, o.out))}`);
    say(`  which checks every .sha256, then: $ gh release create ${o.tag} --verify-tag --title "pihub ${o.tag}" --notes-file ${join(o.out, NOTES_FILE)} ${join(o.out, '*')} (all but ${NOTES_FILE})`);
    return [];
  }

  mkdirSync(o.out, { recursive: true });
  const notes: NotesImage[] = [];
  for (const m of built) {
    const dir = resolve(m.file, '..');
    const own = imageFiles({ ...m, file: basename(m.file) });
    for (const f of own) place(join(dir, f), o.out);
    const info = readFileSync(join(o.out, `${m.image.replace(/\.img$/, '')}.info`), 'utf8');
    notes.push({ manifest: { ...m, file: basename(m.file) }, versions: versionsFromInfo(info), files: own });
    files.push(...own);
  }
  const repo = await writeRepository(o.out, { baseUrl, verify: true });
  say(`wrote ${repo.file} (${repo.entries.length} image(s))`);
  const notesTmp = join(o.out, `.${NOTES_FILE}.partial`);
  writeFileSync(notesTmp, releaseNotes(o.tag, notes, repositoryUrl));
  renameSync(notesTmp, join(o.out, NOTES_FILE));
  say(`wrote ${join(o.out, NOTES_FILE)}`);

  if (o.publish) {
    const publish = publishCommand(o.tag, o.out);
    say(`$ ${formatCommand(publish)}`);
    const said = await run(publish, o.log);
    if (said.trim()) o.log(said.trimEnd());
    say(`published ${o.tag}`);
  }
  return files.map((f) => join(o.out, f));
}

const HELP = `usage: node --import tsx ci/release.ts --tag TAG --out DIR [--base-url URL] [--dry-run] [--publish] [--work-dir DIR] [--image ID]... [-- BUILD-ARGS...]\n  --image ID: only this release image (${RELEASE_IMAGES.map((i) => i.id).join(', ')}); repeatable; default: all\n`;

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  ensureWebSocket();
  let values;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      allowPositionals: true,
      options: {
        tag: { type: 'string' },
        out: { type: 'string' },
        'base-url': { type: 'string' },
        'dry-run': { type: 'boolean' },
        publish: { type: 'boolean' },
        'work-dir': { type: 'string' },
        image: { type: 'string', multiple: true },
      },
    }));
    if (!values.tag || !values.out) throw new UsageError('--tag and --out are required');
    if (positionals.length && !process.argv.includes('--')) throw new UsageError(`unexpected \`${positionals[0]}\`; arguments for pihub build go after --`);
  } catch (err) {
    process.stderr.write(`release: ${(err as Error).message}\n${HELP}`);
    process.exit(2);
  }
  const log = (line: string) => process.stdout.write(`${line}\n`);
  release({
    tag: values.tag!,
    out: resolve(values.out!),
    baseUrl: values['base-url'],
    dryRun: values['dry-run'] ?? false,
    publish: values.publish ?? false,
    buildArgs: positionals!,
    workDir: resolve(values['work-dir'] ?? 'work/release'),
    images: values.image ?? [],
    log,
  }).then(
    (files) => {
      if (files.length) log(`release files:\n${files.map((f) => `  ${f}`).join('\n')}`);
    },
    (err: Error) => {
      process.stderr.write(`release: ${err.message}\n`);
      process.exit(err instanceof UsageError || err.name === 'InputError' ? 2 : 1);
    },
  );
}
