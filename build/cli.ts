// argv → command. The only place that prints fatal errors and sets the exit code.
import { resolve } from 'node:path';
import { DEFAULTS } from './config/schema.ts';
import { build, DEFAULT_OPTIONS } from './build.ts';
import { pihubVersion } from './core/version.ts';
import { PROJECT_DIR } from './core/paths.ts';
import { UserError, InputError } from './core/errors.ts';
import { parse } from './core/args.ts';
import { Cache } from './cache/cache.ts';
import { describeHolder, holderFor, isLock } from './core/lock.ts';
import { formatBytes } from './chroot/host.ts';
import { formatDuration } from './core/progress.ts';
import { listShipped, loadOverlay } from './stages/overlays.ts';
import { describeBases, listBases, loadBase } from './bases/load.ts';
import { join } from 'node:path';
import { normaliseBaseUrl, REPOSITORY_FILE, writeRepository } from './release/imager.ts';

export const MAIN_HELP = `pihub — build a Raspberry Pi SD-card image that boots into a home JupyterHub

Usage:
  pihub build [options]          build an image (see \`pihub build --help\`)
  pihub boot IMAGE [options]     boot an image in QEMU (see \`pihub boot --help\`)
  pihub manifest [options]       write the Raspberry Pi Imager repository for the images in deploy/
  pihub overlays                 list the overlays shipped in overlays/
  pihub bases                    list the base profiles in bases/: Pi models, architecture, how each is tested
  pihub cache list|prune|clear   show or trim the stage cache
  pihub --version                print the version
  pihub --help                   this text

Builds need root (sudo). Host set-up: sudo ci/setup-host.sh
`;

export const BUILD_HELP = `Usage: pihub build [options]

Builds deploy/<name>-<date>-trixie-arm64.img.zst (plus its block map .img.bmap, .sha256,
.info, .json and the SBOM .spdx.json), the log deploy/<name>.log and deploy/rpi-imager.json
(with its icon pihub.png), the Raspberry Pi Imager repository of the images in deploy/;
--set image.compression=xz makes the smaller .img.xz of a release.
With no --config the default config is used: no user accounts in the image (create them
at first boot with userconf.txt), hub on port ${DEFAULTS.hub.port}, admins = group ${DEFAULTS.hub.admin_group}.

Options:
  -c, --config FILE       YAML config (see config.example.yaml)
  -o, --overlay NAME|DIR  apply an overlay (repeatable, in order); NAME is one in overlays/
  -s, --set KEY=VALUE     override one config value, e.g. --set hub.port=8000 (repeatable)
  -n, --dry-run           verify everything and print the plan with its commands; change nothing
      --out DIR           where outputs go (default: ./deploy)
      --work-dir DIR      scratch space (default: ./work)
      --cache-dir DIR     stage cache (default: /var/cache/pihub)
      --cache-limit GIB   cache size limit in GiB; least recently used entries go first (default: 40)
      --no-cache          do not reuse cached stages or images (results are still stored)
      --stages DIR        build from your own stage folders instead of pihub's stages/
      --base-url URL      where rpi-imager.json says the images are (default: deploy/ as file://)
  -q, --quiet             no progress output (errors still print)
  -h, --help              this text

Exit codes: 0 built, 1 build failed, 2 bad input (config, overlay, stage files, options), 130 interrupted.
`;

export const MANIFEST_HELP = `Usage: pihub manifest [--deploy DIR] [--base-url URL] [--website URL]

Writes DIR/rpi-imager.json, a Raspberry Pi Imager repository (its os_list format) with one
entry for every image in DIR (default: ./deploy), and the icon it names (DIR/pihub.png).
Imager customises (host name, user, Wi-Fi, SSH, time zone, keyboard) only images from a
repository: open it with  rpi-imager --repo DIR/rpi-imager.json  or in Imager's App Options.
Sizes come from the files; every image is read once to check its checksum.

Options:
      --deploy DIR      the folder with the images (default: ./deploy)
      --base-url URL    where the images and the icon will be downloaded from, e.g.
                        https://github.com/OWNER/REPO/releases/download/v1.0/
                        (default: DIR itself, as a file:// URL)
      --website URL     a web page for Imager's (i) button
  -h, --help            this text
`;

export const CACHE_HELP = `Usage: pihub cache list|prune|clear [--cache-dir DIR] [--cache-limit GIB]

  list    every cached stage snapshot and image, least recently used first
  prune   remove least recently used entries until the cache fits --cache-limit
  clear   remove everything, including downloaded packages
`;

async function buildCommand(args: string[], signal: AbortSignal): Promise<number> {
  const { values, positionals } = parse(
    args,
    {
      config: { type: 'string', short: 'c' },
      overlay: { type: 'string', short: 'o', multiple: true },
      set: { type: 'string', short: 's', multiple: true },
      'dry-run': { type: 'boolean', short: 'n' },
      out: { type: 'string' },
      'work-dir': { type: 'string' },
      'cache-dir': { type: 'string' },
      'cache-limit': { type: 'string' },
      'no-cache': { type: 'boolean' },
      'base-url': { type: 'string' },
      stages: { type: 'string' },
      quiet: { type: 'boolean', short: 'q' },
      help: { type: 'boolean', short: 'h' },
    },
    BUILD_HELP,
  );
  if (values.help) {
    process.stdout.write(BUILD_HELP);
    return 0;
  }
  if (positionals.length) throw new InputError(`pihub build takes no arguments (got \`${positionals[0]}\`); did you mean --config ${positionals[0]}?`);
  const result = await build({
    configPath: values.config ? resolve(values.config) : undefined,
    overlays: values.overlay ?? [],
    sets: values.set ?? [],
    dryRun: values['dry-run'] ?? false,
    outDir: values.out ? resolve(values.out) : DEFAULT_OPTIONS.outDir,
    workDir: values['work-dir'] ? resolve(values['work-dir']) : DEFAULT_OPTIONS.workDir,
    cacheDir: values['cache-dir'] ? resolve(values['cache-dir']) : DEFAULT_OPTIONS.cacheDir,
    cacheLimit: parseLimit(values['cache-limit']),
    noCache: values['no-cache'] ?? false,
    stagesDir: values.stages ? resolve(values.stages) : undefined,
    baseUrl: values['base-url'] === undefined ? undefined : normaliseBaseUrl(values['base-url']),
    quiet: values.quiet ?? false,
    signal,
    isTTY: process.stdout.isTTY === true,
    env: process.env,
  });
  if ('plan' in result) {
    process.stdout.write(`${result.plan.join('\n')}\n`);
    return 0;
  }
  if (!values.quiet) {
    const lines = [
      '',
      `built in ${formatDuration(result.durationMs)}${result.reusedImage ? ' (nothing changed: image reused from the cache)' : result.ranStages.length ? ` (ran: ${result.ranStages.join(', ')})` : ''}`,
      ...result.outputs.map((o) => `  ${o}`),
      `  ${result.log} (full log)`,
      `try it: sudo npm run pihub -- boot ${result.image}   then open http://localhost:${result.config.hub.port}`,
      ...result.notes.map((n) => `note: ${n}`),
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
  }
  return 0;
}

function parseLimit(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new InputError(`--cache-limit ${v}: expected a size in GiB such as 40`);
  return n * 1024 ** 3;
}

function cacheCommand(args: string[]): number {
  const { values, positionals } = parse(
    args,
    { 'cache-dir': { type: 'string' }, 'cache-limit': { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    CACHE_HELP,
  );
  if (values.help) {
    process.stdout.write(CACHE_HELP);
    return 0;
  }
  const cache = new Cache(values['cache-dir'] ? resolve(values['cache-dir']) : DEFAULT_OPTIONS.cacheDir, parseLimit(values['cache-limit']));
  const action = positionals[0];
  if (action !== 'list' && action !== 'prune' && action !== 'clear') {
    throw new InputError(`pihub cache: expected list, prune or clear${action ? ` (got \`${action}\`)` : ''}\n\n${CACHE_HELP}`);
  }
  // Only a pihub cache is managed: never what happens to be in another folder.
  const exists = cache.exists();
  if (action === 'list') {
    const entries = exists ? cache.list() : [];
    let total = 0;
    for (const e of entries) {
      total += e.bytes;
      process.stdout.write(`${e.kind.padEnd(5)} ${e.key.slice(0, 12)}  ${formatBytes(e.bytes).padStart(9)}  last used ${e.lastUsed.slice(0, 16).replace('T', ' ')}  ${e.label}\n`);
    }
    process.stdout.write(`${entries.length} entries, ${formatBytes(total)} in ${cache.dir} (limit ${formatBytes(cache.limit)})\n`);
    return 0;
  }
  if (!exists) {
    process.stdout.write(`nothing to ${action}: ${cache.dir} holds no pihub cache\n`);
    return 0;
  }
  cache.ensure();
  // Alone: a running build may be about to restore what this would remove.
  const lock = cache.locks.tryExclusive(holderFor(`pihub cache ${action}`));
  if (!isLock(lock)) throw new UserError(`the cache ${cache.dir} is in use by ${describeHolder(lock)}; run \`pihub cache ${action}\` again when it has finished`);
  try {
    if (action === 'prune') {
      const removed = cache.prune();
      process.stdout.write(`removed ${removed.length} entries (${formatBytes(removed.reduce((s, e) => s + e.bytes, 0))})\n`);
    } else {
      cache.clear();
      process.stdout.write(`cleared ${cache.dir}\n`);
    }
  } finally {
    lock.release();
  }
  return 0;
}

async function manifestCommand(args: string[]): Promise<number> {
  const { values, positionals } = parse(
    args,
    { deploy: { type: 'string' }, 'base-url': { type: 'string' }, website: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    MANIFEST_HELP,
  );
  if (values.help) {
    process.stdout.write(MANIFEST_HELP);
    return 0;
  }
  if (positionals.length) throw new InputError(`pihub manifest takes no arguments (got \`${positionals[0]}\`); did you mean --deploy ${positionals[0]}?`);
  const dir = resolve(values.deploy ?? DEFAULT_OPTIONS.outDir);
  const website = values.website === undefined ? undefined : normaliseBaseUrl(values.website).replace(/\/$/, '');
  const result = await writeRepository(dir, { baseUrl: values['base-url'], website, verify: true });
  for (const e of result.entries) process.stdout.write(`${e.name}: ${e.url}\n`);
  process.stdout.write(`wrote ${result.file} (${result.entries.length} image${result.entries.length === 1 ? '' : 's'}) and ${result.icon}\nopen it with: rpi-imager --repo ${values['base-url'] ? `${normaliseBaseUrl(values['base-url'])}${REPOSITORY_FILE}` : result.file}\n`);
  return 0;
}

function overlaysCommand(): number {
  const dir = join(PROJECT_DIR, 'overlays');
  const names = listShipped(dir);
  for (const n of names) {
    const o = loadOverlay(n, dir);
    process.stdout.write(`${n.padEnd(20)} ${o.description}\n`);
  }
  if (!names.length) process.stdout.write('no overlays shipped\n');
  return 0;
}

export async function main(argv: string[], signal: AbortSignal): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case undefined:
    case '-h':
    case '--help':
    case 'help':
      process.stdout.write(MAIN_HELP);
      return command === undefined ? 2 : 0;
    case '-V':
    case '--version':
      process.stdout.write(`pihub ${pihubVersion()}\n`);
      return 0;
    case 'build':
      return buildCommand(rest, signal);
    case 'boot': {
      const { bootCommand } = await import('./boot/cli.ts');
      return bootCommand(rest, signal);
    }
    case 'cache':
      return cacheCommand(rest);
    case 'overlays':
      return overlaysCommand();
    case 'bases':
      if (rest.length) throw new InputError(`pihub bases takes no arguments (got \`${rest[0]}\`)`);
      process.stdout.write(`${describeBases(listBases().map((n) => loadBase(n)))}\n`);
      return 0;
    case 'manifest':
      return manifestCommand(rest);
    default:
      throw new InputError(`unknown command \`${command}\`\n\n${MAIN_HELP}`);
  }
}

export function installSignalHandlers(controller: AbortController): void {
  let count = 0;
  const handler = (sig: NodeJS.Signals) => {
    count += 1;
    if (count === 1) {
      console.error(`\npihub: ${sig} received, stopping and cleaning up…`);
      controller.abort(sig);
    } else if (count === 2) {
      console.error('pihub: still cleaning up (mounts and temporary files); send it once more to quit at once');
    } else {
      process.exit(130);
    }
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  process.on('SIGHUP', handler);
}

export async function run(argv: string[]): Promise<void> {
  const controller = new AbortController();
  installSignalHandlers(controller);
  let code: number;
  try {
    code = await main(argv, controller.signal);
  } catch (err) {
    if (err instanceof UserError) {
      console.error(`pihub: ${err.message}`);
      code = err.exitCode;
    } else {
      console.error(`pihub: internal error: ${(err as Error).stack ?? String(err)}`);
      code = 1;
    }
  }
  process.exitCode = code;
}
