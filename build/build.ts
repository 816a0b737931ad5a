// `pihub build`: read the inputs, make the plan, print it (--dry-run) or run it.
//   config → plan (stages, steps, keys, commands) → stages in the chroot → cache → image → deploy/
import { randomBytes } from 'node:crypto';
import { mkdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Cache, DEFAULT_CACHE_DIR } from './cache/cache.ts';
import { isSecretPath, Redactor, secretValues, urlSecrets } from './config/secrets.ts';
import { declarationAt } from './config/declared.ts';
import { userinfoOf } from './config/urls.ts';
import type { BuildConfig } from './config/schema.ts';
import { invokingUser } from './deploy/deploy.ts';
import { verifyFolderOption, verifyOwnFolder } from './core/files.ts';
import { InputError, UserError } from './core/errors.ts';
import { createRunner, type LogSink, type Runner } from './core/exec.ts';
import { thisMachine, type Machine } from './chroot/host.ts';
import { describeHolder, holderFor, isLock, readLockHolder, tryLock, type Lock, type LockHolder } from './core/lock.ts';
import { execute } from './plan/execute.ts';
import { loadInputs, type BuildInputs } from './plan/inputs.ts';
import { baseRelease } from './plan/keys.ts';
import { makePlan, type Plan } from './plan/plan.ts';
import { planLines } from './plan/print.ts';
import { BuildLog, chooseRenderer, formatDuration } from './core/progress.ts';
import { writeRepository } from './release/imager.ts';
import { sbomCreated } from './release/sbom.ts';

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
  /** Where the images will be downloaded from, for the Raspberry Pi Imager repository (default: deploy/ as file://). */
  baseUrl?: string;
}

/** What the build works with: this machine and real commands, unless told otherwise. */
export interface BuildDeps {
  machine?: Machine;
  runner?: (log: LogSink, signal: AbortSignal, redactor: Redactor) => Runner;
}

export const DEFAULT_OPTIONS = {
  outDir: resolve('deploy'),
  workDir: resolve('work'),
  cacheDir: DEFAULT_CACHE_DIR,
};

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

const NO_USERS_NOTE =
  'this image has no user accounts: flash it with Raspberry Pi Imager from deploy/rpi-imager.json and set a user in its OS customisation, or put a userconf.txt (lines of name:password-hash) on its boot partition before the first boot; the console says how too (docs/using.md: "Users and logging in")';

/** `--set` arguments that put a secret's value (not a reference to it) on the command line. */
export function secretsOnCommandLine(sets: readonly string[]): string[] {
  return sets.map((a) => a.slice(0, Math.max(0, a.indexOf('=')))).filter((k) => isSecretPath(k));
}

/** `--set` arguments that put a URL with a password on the command line. */
export function urlCredentialsOnCommandLine(sets: readonly string[]): string[] {
  return sets.flatMap((a) => {
    const eq = a.indexOf('=');
    const key = a.slice(0, Math.max(0, eq));
    return eq > 0 && declarationAt(key)?.url && userinfoOf(a.slice(eq + 1)) !== undefined ? [key] : [];
  });
}

export async function build(opts: BuildOptions, deps: BuildDeps = {}): Promise<BuildSummary | { plan: string[] }> {
  const inputs = loadInputs(opts);
  // The base profile's repositories may carry credentials too.
  const redactor = new Redactor([...secretValues(inputs.config), ...(inputs.base?.profile.repositories ?? []).flatMap((r) => urlSecrets(r.uri))]);
  try {
    const result = await buildFrom(inputs, opts, deps, redactor);
    if ('plan' in result) result.plan = result.plan.map((l) => redactor.redact(l));
    return result;
  } catch (err) {
    // An error may quote a command or its output (and an internal error is printed with its stack).
    if (err instanceof Error) {
      err.message = redactor.redact(err.message);
      if (err.stack) err.stack = redactor.redact(err.stack);
    }
    throw err;
  }
}

async function buildFrom(inputs: BuildInputs, opts: BuildOptions, deps: BuildDeps, redactor: Redactor): Promise<BuildSummary | { plan: string[] }> {
  const started = Date.now();
  const notes = [
    ...secretsOnCommandLine(opts.sets).map(
      (key) => `\`--set ${key}=…\` puts a secret where \`ps\` and your shell history show it; next time use \`--set ${key}.env=VARIABLE\` or \`${key}.file\` (docs/configuration.md: "Secrets")`,
    ),
    ...urlCredentialsOnCommandLine(opts.sets).map(
      (key) => `\`--set ${key}=…\` puts a password where \`ps\` and your shell history show it; next time write \`${key}\` in a config file readable only by you (docs/configuration.md: "Secrets")`,
    ),
  ];
  verifyFolderOption(opts.outDir, '--out');
  verifyFolderOption(opts.workDir, '--work-dir');
  // The log is the first thing written: a folder under its name is refused before anything is made.
  const logPath = join(opts.outDir, `${inputs.config.name}.log`);
  if (statSync(logPath, { throwIfNoEntry: false })?.isDirectory()) {
    throw new InputError(`${logPath} is a folder, where pihub writes its build log; remove it, or give another --out`);
  }
  const cache = new Cache(opts.cacheDir, opts.cacheLimit);
  // The image in deploy/ is the invoking user's; the SBOM's date is SOURCE_DATE_EPOCH's or now.
  const delivery = { owner: invokingUser(opts.env), sbomCreated: sbomCreated(opts.env) };
  const holder = holderFor(`pihub build of ${inputs.config.name} (${inputs.configLabel})`);
  const workLock = join(opts.workDir, `${inputs.config.name}.lock`);
  // The machine must be able to run whatever a build of these inputs may run (as if nothing
  // were cached); checked before anything is created.
  const everything = await makePlan(inputs, { ...opts, ...delivery, cache, salt: '', verify: false });
  notes.push(...(deps.machine ?? thisMachine).verify({
    tools: everything.hostTools,
    architecture: inputs.config.base.architecture,
    dryRun: opts.dryRun,
    workDir: opts.workDir,
    outDir: opts.outDir,
    cacheDir: opts.noCache ? undefined : opts.cacheDir,
    keyring: everything.keyring,
  }));

  // A dry run changes nothing: it takes no lock, makes no salt and only looks at the cache.
  const workTree = join(opts.workDir, inputs.config.name);
  if (opts.dryRun) {
    verifyOwnFolder(workTree, '--work-dir', { create: false });
    cache.verifyIsCache();
    const other = readLockHolder(workLock) ?? cache.locks.exclusiveHolder();
    if (other) notes.push(`a build now would stop: ${describeHolder(other)} is using the work tree or the cache`);
    let dates: Awaited<ReturnType<typeof baseRelease>> | undefined;
    try {
      dates = await baseRelease(inputs.config, inputs.base?.profile.repositories ?? [], inputs.base?.profile.extra_suites ?? []);
    } catch (err) {
      notes.push(`cache state unknown: ${(err as Error).message}`);
    }
    const plan = await makePlan(inputs, { ...opts, ...delivery, cache, release: dates?.release, repositoryReleases: dates?.repositories, salt: cache.readSalt() ?? randomBytes(32).toString('hex'), verify: false });
    return { plan: planLines(plan, notes) };
  }

  // Bad input first: nothing is written before the work tree is known to be pihub's alone, nor
  // into a folder that is not a pihub cache.
  cache.verifyIsCache();
  verifyOwnFolder(workTree, '--work-dir');
  cache.ensure();
  const locks = takeLocks(workLock, cache, holder);
  try {
    const dates = await baseRelease(inputs.config, inputs.base?.profile.repositories ?? [], inputs.base?.profile.extra_suites ?? []);
    const plan = await makePlan(inputs, { ...opts, ...delivery, cache, release: dates.release, repositoryReleases: dates.repositories, salt: cache.salt(), verify: true });
    // Other builds' prunes leave alone what this one will restore.
    locks[1]!.update({ ...holder, keys: [...plan.stages.map((s) => s.key!), plan.image.key!] });
    return await run(plan, opts, deps, { notes, redactor, holder, cache, started });
  } finally {
    for (const l of locks.reverse()) l.release();
  }
}

/** The work tree alone, the cache shared with other builds; a clear message when another process has them. */
function takeLocks(workLock: string, cache: Cache, holder: LockHolder): Lock[] {
  const work = tryLock(workLock, holder);
  if (!isLock(work)) {
    throw new UserError(`the work tree ${workLock.replace(/\.lock$/, '')} is in use by ${describeHolder(work)}; wait for it to finish, or give this build another --work-dir`);
  }
  const shared = cache.locks.tryShared(holder);
  if (!isLock(shared)) {
    work.release();
    throw new UserError(`the cache ${cache.dir} is being changed by ${describeHolder(shared)}; build again when it has finished`);
  }
  return [work, shared];
}

async function run(
  plan: Plan,
  opts: BuildOptions,
  deps: BuildDeps,
  o: { notes: string[]; redactor: Redactor; holder: LockHolder; cache: Cache; started: number },
): Promise<BuildSummary> {
  const logPath = join(plan.paths.deploy, `${plan.config.name}.log`);
  const owner = invokingUser(opts.env);
  const log = new BuildLog(logPath, o.redactor, owner);
  mkdirSync(plan.paths.debs, { recursive: true });
  log.note(`pihub build ${plan.config.name}: config ${plan.configLabel}, overlays ${plan.config.overlays.join(', ') || 'none'}`);
  for (const n of plan.notes) log.note(`warning: ${n}`);
  for (const n of o.notes) log.note(`note: ${n}`);
  const notes = [...plan.notes, ...o.notes];
  let outcome;
  try {
    outcome = await execute(plan, {
      runner: (deps.runner ?? createRunner)(log, opts.signal, o.redactor),
      redact: (text) => o.redactor.redact(text),
      log,
      renderer: chooseRenderer({ quiet: opts.quiet, isTTY: opts.isTTY, env: opts.env }),
      signal: opts.signal,
      holder: o.holder,
    });
  } finally {
    log.note(`finished after ${formatDuration(Date.now() - o.started)}`);
    await log.close();
  }
  // Raspberry Pi Imager's repository for every image in deploy/ (Imager customises only those).
  // The image is complete without it: a failure here is a warning, and `pihub manifest` retries.
  const outputs = [...outcome.outputs];
  try {
    const repository = await writeRepository(plan.paths.deploy, { baseUrl: opts.baseUrl, owner });
    outputs.push(repository.file);
  } catch (err) {
    notes.push(`the Raspberry Pi Imager repository was not written (${(err as Error).message}); write it with \`pihub manifest --deploy ${plan.paths.deploy}\``);
  }
  if (!plan.config.users.length) notes.push(NO_USERS_NOTE);
  return {
    outputs,
    image: join(plan.paths.deploy, plan.image.names.compressed),
    config: plan.config,
    durationMs: Date.now() - o.started,
    ranStages: outcome.ranStages,
    reusedImage: plan.image.reuse,
    log: logPath,
    notes,
  };
}
