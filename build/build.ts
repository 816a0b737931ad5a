// The build: verify everything, then run stages (restored from the cache where possible), then export.
import { existsSync, linkSync, copyFileSync, mkdirSync, readFileSync, realpathSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Listr, PRESET_TIMER, PRESET_TIMESTAMP, type ListrTask } from 'listr2';
import { resolveConfig, loadConfigFile, setLayer, type ConfigLayer } from './config/load.ts';
import type { BuildConfig } from './config/schema.ts';
import { createRunner, runQuick, type Runner } from './exec.ts';
import { InputError, InterruptedError, UserError } from './errors.ts';
import { installPolicyRcD, removePolicyRcD } from './chroot/chroot.ts';
import { loadStages, type StageDef } from './stages/load.ts';
import { stepFor, KIND_SOURCES } from './stages/steps/index.ts';
import type { BuildPaths, PlanContext, Step, StepContext } from './stages/step.ts';
import { effectiveConfig, stageValues } from './stages/values.ts';
import { resolveOverlays, type Overlay } from './overlays/load.ts';
import { Cache, DEFAULT_CACHE_DIR } from './cache/cache.ts';
import { digestTree, implementationDigest, keyValues, releaseDate, sha256, stageKey, canonicalJson } from './cache/keys.ts';
import { verifyDiskSpace, verifyEmulation, verifyHostTools, verifyRoot, parseQemuVersion, qemuWarning } from './host.ts';
import { readBinfmt } from './chroot/chroot.ts';
import { ensureToolsRoot, isForeign, toolsKey, toolsRoot } from './chroot/tools.ts';
import { describeExport, exportImage, exportNames } from './image/export.ts';
import { BuildLog, chooseRenderer, formatDuration, type RendererName } from './progress.ts';
import { sbomCreated, writeSbom } from './release/sbom.ts';
import { REPOSITORY_FILE, writeRepository } from './release/imager.ts';

export const PROJECT_DIR = fileURLToPath(new URL('..', import.meta.url));

export interface BuildOptions {
  configPath?: string;
  overlays: string[];
  sets: string[];
  dryRun: boolean;
  outDir: string;
  workDir: string;
  cacheDir: string;
  cacheLimit?: number;
  noCache: boolean;
  quiet: boolean;
  stagesDir?: string;
  overlaysDir?: string;
  signal: AbortSignal;
  isTTY: boolean;
  env: NodeJS.ProcessEnv;
  /** For tests: a runner to use instead of real commands. */
  runner?: Runner;
  /** For tests: skip host checks that look at this machine. */
  skipHostChecks?: boolean;
  /** Where the images will be downloaded from, for the Raspberry Pi Imager repository (default: deploy/ as file://). */
  baseUrl?: string;
}

export const DEFAULT_OPTIONS = {
  outDir: resolve('deploy'),
  workDir: resolve('work'),
  cacheDir: DEFAULT_CACHE_DIR,
};

export interface PlannedStage {
  def: StageDef;
  steps: Step[];
  key?: string;
  cached?: boolean;
}

export interface Prepared {
  config: BuildConfig;
  configLabel: string;
  overlays: Overlay[];
  stages: PlannedStage[];
  paths: BuildPaths;
  tools: Set<string>;
  date: string;
  exportDir: string;
  /** The archive's Release date, once known. */
  release?: string;
}

/** Overlay stages go after the built-in stages numbered below 90, before the final ones (90–99). */
export function orderStages(builtIn: readonly StageDef[], overlays: readonly Overlay[]): StageDef[] {
  const active = builtIn.filter((s) => !s.skip);
  const early = active.filter((s) => Number(s.id.slice(0, 2)) < 90);
  const late = active.filter((s) => Number(s.id.slice(0, 2)) >= 90);
  return [...early, ...overlays.map((o) => o.stage), ...late];
}

export function buildDate(env: NodeJS.ProcessEnv = process.env): string {
  const epoch = env.SOURCE_DATE_EPOCH ? Number(env.SOURCE_DATE_EPOCH) * 1000 : Date.now();
  return new Date(epoch).toISOString().slice(0, 10);
}

/** HTTPS needs the overlay that makes or installs the certificate, and its files must exist. */
export function verifyHttps(config: BuildConfig, overlays: readonly Overlay[]): void {
  const https = config.hub.https;
  if (https.mode === 'off') return;
  if (!overlays.some((o) => o.name === 'https')) {
    throw new InputError(
      `\`hub.https.mode\` is \`${https.mode}\` but the https overlay is not applied; add \`--overlay https\` (it makes or installs the certificate)`,
    );
  }
  if (https.mode === 'files') {
    for (const key of ['cert_file', 'key_file'] as const) {
      const file = resolve(https[key]!);
      if (!existsSync(file)) throw new InputError(`\`hub.https.${key}\`: ${file} does not exist`);
      https[key] = file;
    }
  }
}

/** Each overlay's config fragment as `key = value` lines, for the plan. */
export function overlaySettings(o: Overlay): string[] {
  const out: string[] = [];
  const walk = (v: unknown, path: string) => {
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
      for (const [k, x] of Object.entries(v)) walk(x, path ? `${path}.${k}` : k);
    } else {
      out.push(`${path} = ${JSON.stringify(v)}`);
    }
  };
  walk(o.layer.data, '');
  return out;
}

/** Config, overlays, stages and steps: everything that can be known without running anything. */
export function prepare(opts: BuildOptions): Prepared {
  const stagesDir = opts.stagesDir ?? join(PROJECT_DIR, 'stages');
  const overlaysDir = opts.overlaysDir ?? join(PROJECT_DIR, 'overlays');
  const fileLayer: ConfigLayer | undefined = opts.configPath ? loadConfigFile(opts.configPath) : undefined;
  const fromFile = fileLayer?.data.overlays;
  if (fromFile !== undefined && (!Array.isArray(fromFile) || fromFile.some((x) => typeof x !== 'string'))) {
    throw new UserError(`${fileLayer!.locator.locate(['overlays']) ?? fileLayer!.label}: \`overlays\` must be a list of overlay names or folders`, 2);
  }
  const requested = [...((fromFile as string[] | undefined) ?? []), ...opts.overlays];
  const overlays = resolveOverlays(requested, overlaysDir);
  const layers = [...(fileLayer ? [fileLayer] : []), ...overlays.map((o) => o.layer), ...(opts.sets.length ? [setLayer(opts.sets)] : [])];
  const config = effectiveConfig(resolveConfig(layers));
  config.overlays = overlays.map((o) => o.name);
  verifyHttps(config, overlays);
  const stageDefs = orderStages(loadStages(stagesDir), overlays);
  const cache = new Cache(opts.cacheDir);
  const work = join(opts.workDir, config.name);
  const paths: BuildPaths = {
    work,
    rootfs: join(work, 'rootfs'),
    cache: opts.cacheDir,
    debs: join(cache.dir, 'debs', `${config.base.suite}-${config.base.architecture}`),
    deploy: opts.outDir,
  };
  const tools = new Set<string>(['unshare', 'tar', 'zstd', 'mke2fs', 'mkfs.vfat', 'mcopy', 'genimage', 'dpkg-query', 'du']);
  if (config.image.compression !== 'none') tools.add(config.image.compression === 'gzip' ? 'gzip' : config.image.compression);
  const stages = stageDefs.map((def) => {
    const steps = def.substeps.map(stepFor);
    for (const s of steps) for (const t of s.tools) tools.add(t);
    if (def.reads.includes('users') && config.users.some((u) => u.password !== undefined)) tools.add('mkpasswd');
    return { def, steps };
  });
  return {
    config,
    configLabel: fileLayer?.label ?? 'the default config (no --config)',
    overlays,
    stages,
    paths,
    tools,
    date: buildDate(opts.env),
    exportDir: join(work, 'export'),
  };
}

const SHARED_SOURCES = [
  'stages/step.ts', 'stages/template.ts', 'stages/values.ts', 'chroot/chroot.ts', 'chroot/enter.sh',
  'chroot/tools.ts', 'chroot/dpkg-split.sh', 'chroot/py3compile-defer.sh', 'chroot/py3compile-native.py',
  'chroot/native-prepare.sh', 'chroot/native-tools.sh',
];

/** Chain the stage keys: each covers its parent, its files, the values it reads, the base and pihub's code. */
export function computeKeys(p: Prepared, release: string): string {
  p.release = release;
  const base = { ...p.config.base, release };
  let parent: string | null = null;
  for (const s of p.stages) {
    const kinds = s.def.substeps.map((x) => `stages/steps/${KIND_SOURCES[x.kind]}`);
    s.key = stageKey({
      parent,
      stage: s.def.id,
      files: digestTree(s.def.dir),
      values: keyValues(p.config, s.def.reads),
      base,
      implementation: implementationDigest([...SHARED_SOURCES, ...kinds]),
    });
    parent = s.key;
  }
  return sha256(
    canonicalJson({
      last: parent,
      name: p.config.name,
      image: p.config.image,
      implementation: implementationDigest(['image/export.ts', 'image/layout.ts', 'release/sbom.ts']),
    }),
  ).slice(0, 32);
}

function verifyMachine(p: Prepared, opts: BuildOptions, notes: string[]): void {
  if (opts.skipHostChecks) return;
  verifyHostTools(p.tools);
  verifyEmulation(p.config.base.architecture);
  const entry = readBinfmt(p.config.base.architecture);
  if (entry?.interpreter) {
    // Debian registers a wrapper name (…-binfmt-P) that only runs under binfmt_misc; ask the real binary.
    const warning = qemuWarning(parseQemuVersion(runQuick([realpathSync(entry.interpreter), ['--version']])));
    if (warning) notes.push(warning);
  }
  if (opts.dryRun) {
    if ((process.getuid?.() ?? 0) !== 0) notes.push('a real build needs root: run it with sudo');
  } else {
    verifyRoot('pihub build');
  }
  verifyDiskSpace(opts.workDir, 8 * 1024 ** 3, `the work directory (${opts.workDir})`);
  verifyDiskSpace(opts.outDir, 3 * 1024 ** 3, `the output directory (${opts.outDir})`);
  if (!opts.noCache) verifyDiskSpace(opts.cacheDir, 4 * 1024 ** 3, `the cache (${opts.cacheDir})`);
}

/** What --dry-run prints: every stage and step in order, with the exact commands. */
export function planLines(p: Prepared, exportCached: boolean | undefined, notes: readonly string[]): string[] {
  const c = p.config;
  const out = [
    `pihub build plan: ${c.name} (${c.base.suite} ${c.base.architecture}, from ${c.base.mirror})`,
    `config: ${p.configLabel}; overlays: ${p.overlays.map((o) => o.name).join(', ') || 'none'}`,
    `users: ${c.users.length ? c.users.map((u) => `${u.name}${u.admin ? ' (admin)' : ''}`).join(', ') : 'none in the image; create them at first boot with userconf.txt'}`,
    `hub: port ${c.hub.port}${c.hub.https.mode === 'off' ? '' : ` (https, ${c.hub.https.mode})`}, admins = group ${c.hub.admin_group}, users = group ${c.hub.users_group}`,
  ];
  for (const o of p.overlays) {
    const sets = overlaySettings(o);
    out.push(`overlay ${o.name}: ${o.description}${sets.length ? `; sets ${sets.join(', ')}` : ''}`);
  }
  out.push('');
  const tools = p.release && isForeign(c) ? toolsRoot(p.paths.cache, toolsKey(c, p.release)) : undefined;
  const ctxFor = (s: PlannedStage): PlanContext => ({ config: c, paths: p.paths, stage: s.def, release: p.release, tools });
  p.stages.forEach((s, i) => {
    const state = s.key === undefined ? 'cache unknown' : s.cached ? `cached ${s.key.slice(0, 12)}` : `runs (key ${s.key.slice(0, 12)})`;
    const reads = s.def.reads.length ? `; reads ${s.def.reads.join(', ')}` : '';
    out.push(`stage ${i + 1}/${p.stages.length} ${s.def.id}: ${s.def.description} [${state}${reads}]`);
    for (const step of s.steps) {
      out.push(`  ${step.title}`);
      for (const line of step.describe(ctxFor(s))) out.push(`    ${line.startsWith('  ') ? line.trimStart() : `$ ${line}`}`);
    }
  });
  const names = exportNames(c, p.date);
  out.push(`export${exportCached ? ' [cached: the image is reused]' : ''}`);
  for (const line of describeExport(c, { rootfs: p.paths.rootfs, dir: p.exportDir }, p.date)) out.push(`    $ ${line}`);
  out.push(`  → ${join(p.paths.deploy, names.compressed)} (+ .sha256, .info, .json, .spdx.json, .log)`);
  out.push(`  → ${join(p.paths.deploy, REPOSITORY_FILE)}: Raspberry Pi Imager repository of the images in ${p.paths.deploy}`);
  for (const n of notes) out.push(`note: ${n}`);
  return out;
}

export interface BuildSummary {
  outputs: string[];
  image: string;
  config: BuildConfig;
  durationMs: number;
  ranStages: string[];
  reusedImage: boolean;
  log?: string;
  notes: string[];
}

function placeInDeploy(fromDir: string, files: readonly string[], deploy: string): string[] {
  mkdirSync(deploy, { recursive: true });
  const placed: string[] = [];
  for (const f of files) {
    const final = join(deploy, f);
    const tmp = join(deploy, `.${f}.partial-${process.pid}`);
    rmSync(tmp, { force: true });
    try {
      linkSync(join(fromDir, f), tmp);
    } catch {
      copyFileSync(join(fromDir, f), tmp);
    }
    renameSync(tmp, final);
    // rename() does nothing when both names are links to one file (a reused image already in
    // deploy/): then the temporary name is still there.
    rmSync(tmp, { force: true });
    placed.push(final);
  }
  return placed;
}

const MARKER = 'rootfs.key';
/** Restoring a snapshot of a full root filesystem takes about this long here. */
const SNAPSHOT_MIN_MS = 20_000;

export async function build(opts: BuildOptions): Promise<BuildSummary | { plan: string[] }> {
  const started = Date.now();
  const p = prepare(opts);
  const notes: string[] = [];
  verifyMachine(p, opts, notes);
  const cache = new Cache(opts.cacheDir, opts.cacheLimit);

  let imageKey: string | undefined;
  try {
    imageKey = computeKeys(p, await releaseDate(p.config.base.mirror, p.config.base.suite, p.config.apt_proxy));
  } catch (err) {
    if (!opts.dryRun) throw err;
    notes.push(`cache state unknown: ${(err as Error).message}`);
  }
  for (const s of p.stages) s.cached = !opts.noCache && s.key !== undefined && cache.hasStage(s.key);
  const imageCached = !opts.noCache && imageKey !== undefined && cache.hasImage(imageKey);

  if (opts.dryRun) return { plan: planLines(p, imageCached, notes) };

  const names = exportNames(p.config, p.date);
  const logPath = join(p.paths.deploy, `${p.config.name}.log`);
  const log = new BuildLog(logPath);
  const runner = opts.runner ?? createRunner(log, opts.signal);
  const cleanups: Array<() => void | Promise<void>> = [];
  const renderer: RendererName = chooseRenderer({ quiet: opts.quiet, isTTY: opts.isTTY, env: opts.env });
  const live = renderer === 'default';
  const ranStages: string[] = [];
  mkdirSync(p.paths.work, { recursive: true });
  cache.ensure();
  mkdirSync(p.paths.debs, { recursive: true });
  const markerPath = join(p.paths.work, MARKER);
  const rootfsKey = () => (existsSync(markerPath) && existsSync(p.paths.rootfs) ? readFileSync(markerPath, 'utf8').trim() : undefined);

  log.note(`pihub build ${p.config.name}: config ${p.configLabel}, overlays ${p.config.overlays.join(', ') || 'none'}`);
  for (const n of notes) log.note(`note: ${n}`);

  // The last stage whose result is cached (or already in the work tree); everything after it runs.
  let resumeAt = -1;
  p.stages.forEach((s, i) => {
    if (s.cached || (s.key && s.key === rootfsKey())) resumeAt = i;
  });
  const reuseImage = imageCached;

  const stageTask = (s: PlannedStage, index: number): ListrTask => ({
    title: `stage ${s.def.id}: ${s.def.description}`,
    skip: () => {
      if (reuseImage) return 'cached (image reused)';
      if (index < resumeAt) return 'cached';
      return false;
    },
    task: async (_ctx, task) => {
      if (index === resumeAt) {
        if (s.key === rootfsKey()) {
          task.title = `stage ${s.def.id}: in the work tree already`;
          return;
        }
        task.title = `stage ${s.def.id}: restore from cache`;
        log.note(`stage ${s.def.id}: restore from cache`);
        rmSync(markerPath, { force: true });
        await cache.restoreStage(runner, s.key!, p.paths.rootfs, `restore ${s.def.id}`);
        writeFileSync(markerPath, s.key!);
        task.title = `stage ${s.def.id}: restored from cache`;
        return;
      }
      rmSync(markerPath, { force: true });
      ranStages.push(s.def.id);
      const stageStarted = Date.now();
      const stepCtx: StepContext = {
        config: p.config,
        paths: p.paths,
        stage: s.def,
        release: p.release,
        // Made once per base (natively, seconds) and kept in the cache.
        tools: isForeign(p.config) ? await ensureToolsRoot(runner, p.config, p.paths.cache, p.release!, `${s.def.id}: native tools`) : undefined,
        runner,
        values: {},
        note: (line) => log.note(line),
        onLine: live ? (line) => { task.output = line; } : undefined,
      };
      stepCtx.values = await stageValues(p.config, s.def.reads, runner, s.def.id);
      let policy = false;
      const dropPolicy = () => {
        if (policy) removePolicyRcD(p.paths.rootfs);
        policy = false;
      };
      cleanups.push(dropPolicy);
      try {
        for (const step of s.steps) {
          task.title = `stage ${s.def.id}: ${step.title}`;
          log.note(`stage ${s.def.id}: ${step.title}`);
          // Before every step that works in an existing target (mmdebstrap sets up its own).
          if (!policy && existsSync(join(p.paths.rootfs, 'usr/sbin'))) policy = installPolicyRcD(p.paths.rootfs);
          await step.run(stepCtx);
        }
      } finally {
        for (const step of s.steps) await step.cleanup?.(stepCtx);
        dropPolicy();
      }
      // Saved even with --no-cache: that flag means "do not reuse", and the fresh result refreshes
      // the cache. A stage that ran faster than restoring a snapshot would take is not saved:
      // running it again is the cheaper way back.
      const ranMs = Date.now() - stageStarted;
      if (ranMs >= SNAPSHOT_MIN_MS) {
        task.title = `stage ${s.def.id}: save to cache`;
        log.note(`stage ${s.def.id}: save to cache`);
        await cache.saveStage(runner, s.key!, s.def.id, p.paths.rootfs, `save ${s.def.id} to cache`);
      } else {
        log.note(`stage ${s.def.id}: not cached (ran in ${formatDuration(ranMs)}, quicker than a restore)`);
      }
      writeFileSync(markerPath, s.key!);
      task.title = `stage ${s.def.id}: ${s.def.description}`;
    },
  });

  let outputs: string[] = [];
  const exportTask: ListrTask = {
    title: 'export the image',
    task: async (_ctx, task) => {
      if (reuseImage) {
        task.title = 'export: image unchanged, reused from cache';
        const meta = cache.readMeta('image', imageKey!)!;
        cache.touch('image', imageKey!);
        outputs = placeInDeploy(cache.imageDir(imageKey!), meta.files ?? [], p.paths.deploy);
        return;
      }
      rmSync(markerPath, { force: true });
      const result = await exportImage({
        runner,
        config: p.config,
        paths: { rootfs: p.paths.rootfs, dir: p.exportDir },
        seed: imageKey!,
        date: p.date,
        onLine: live ? (line) => { task.output = line; } : undefined,
        onCleanup: (fn) => cleanups.push(fn),
        progress: (t) => {
          task.title = `export: ${t}`;
          log.note(`export: ${t}`);
        },
        manifest: {
          name: p.config.name,
          date: p.date,
          suite: p.config.base.suite,
          architecture: p.config.base.architecture,
          hostname: p.config.hostname,
          users: p.config.users.map((u) => ({ name: u.name, admin: u.admin })),
          hub: { port: p.config.hub.port, admin_group: p.config.hub.admin_group, users_group: p.config.hub.users_group },
          overlays: p.config.overlays,
          stages: p.stages.map((s) => ({ id: s.def.id, key: s.key })),
          pihub: pihubVersion(),
        },
      });
      // The SBOM is read from this root filesystem's dpkg database and kept with the image.
      result.files.push(writeSbom(p.paths.rootfs, join(p.exportDir, 'out'), {
        name: result.names.base,
        file: result.names.image,
        rawSha256: result.rawSha256,
        suite: p.config.base.suite,
        created: sbomCreated(opts.env),
        tool: `pihub-${pihubVersion()}`,
      }));
      writeFileSync(markerPath, p.stages[p.stages.length - 1]!.key!);
      cache.saveImage(imageKey!, result.names.compressed, join(p.exportDir, 'out'), result.files);
      outputs = placeInDeploy(cache.imageDir(imageKey!), result.files, p.paths.deploy);
      rmSync(p.exportDir, { recursive: true, force: true });
      task.title = `export: ${result.names.compressed}`;
    },
  };

  const tasks = new Listr([...p.stages.map(stageTask), exportTask], {
    renderer,
    exitOnError: true,
    registerSignalListeners: false,
    collectErrors: false,
    rendererOptions: renderer === 'simple' ? { timestamp: PRESET_TIMESTAMP, timer: PRESET_TIMER } : { timer: PRESET_TIMER, collapseSubtasks: false },
  } as ConstructorParameters<typeof Listr>[1]);

  try {
    await tasks.run();
  } catch (err) {
    if (opts.signal.aborted && !(err instanceof InterruptedError)) {
      throw new InterruptedError(String(opts.signal.reason ?? 'signal'));
    }
    throw err;
  } finally {
    for (const fn of cleanups.reverse()) {
      try {
        await fn();
      } catch (e) {
        log.note(`cleanup failed: ${(e as Error).message}`);
      }
    }
    rmSync(p.exportDir, { recursive: true, force: true });
    log.note(`finished after ${formatDuration(Date.now() - started)}`);
    await log.close();
  }
  // Raspberry Pi Imager's repository for every image in deploy/ (Imager customises only those).
  outputs.push((await writeRepository(p.paths.deploy, { baseUrl: opts.baseUrl })).file);
  if (!p.config.users.length) {
    notes.push(
      'this image has no user accounts: put a userconf.txt (lines of name:password-hash) on its boot partition before the first boot, or log in on the console to see how (README: "Users at first boot")',
    );
  }
  return {
    outputs,
    image: join(p.paths.deploy, names.compressed),
    config: p.config,
    durationMs: Date.now() - started,
    ranStages,
    reusedImage: reuseImage,
    log: logPath,
    notes,
  };
}

export function pihubVersion(): string {
  try {
    return (JSON.parse(readFileSync(join(PROJECT_DIR, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}
