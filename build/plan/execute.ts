// The one executor: runs a plan's operations stage by stage (a live task list), then exports the
// image (or reuses the cached one) and places the outputs in deploy/. Nothing here decides what
// to run: the plan did.
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Listr, PRESET_TIMER, PRESET_TIMESTAMP, type ListrTask } from 'listr2';
import type { Cache } from '../cache/cache.ts';
import { verifyNoBuildLeftovers } from '../chroot/leftovers.ts';
import { manifestOf, pihubVersion, placeInDeploy, type Owner } from '../deploy/deploy.ts';
import { InterruptedError } from '../errors.ts';
import type { Runner } from '../exec.ts';
import { exportImage } from '../image/export.ts';
import { writeSbom } from '../release/sbom.ts';
import { sbomModifications, securityRecord } from '../release/security.ts';
import { describeHolder, waitLock, type LockHolder } from '../lock.ts';
import type { BuildLog, RendererName } from '../progress.ts';
import { valuesEnv } from '../stages/values.ts';
import type { Op, RunState } from './ops.ts';
import type { Plan, PlannedStage } from './plan.ts';

/** Run operations in order; `onStep` hears each step's title as it starts. */
export async function runOps(ops: readonly Op[], st: RunState, onStep: (title: string) => void = () => {}): Promise<void> {
  for (const op of ops) {
    switch (op.kind) {
      case 'run': {
        const input = op.input ? await op.input.make(st) : undefined;
        const r = await st.runner.run(op.command, {
          step: op.step,
          cwd: op.cwd,
          env: { ...op.env, ...(op.valuesEnv ? valuesEnv(st.values) : {}) },
          cleanEnv: op.cleanEnv,
          input,
          onLine: st.onLine,
          capture: op.capture !== undefined && !op.secretOutput,
          secretOutput: op.secretOutput,
        });
        op.capture?.(r.stdout, st);
        break;
      }
      case 'do':
        await op.fn(st);
        break;
      case 'info':
        break;
      case 'try':
        try {
          await runOps(op.body, st, onStep);
        } finally {
          await runOps(op.finally, st, onStep);
        }
        break;
      case 'if':
        await runOps(op.test(st) ? op.then : (op.else ?? []), st, onStep);
        break;
      case 'lock': {
        const lock = await waitLock(op.path, st.holder, (other) => st.note(`waiting for ${describeHolder(other)}: it is using ${op.path.replace(/\.lock$/, '')}`), st.signal);
        try {
          await runOps(op.body, st, onStep);
        } finally {
          lock.release();
        }
        break;
      }
      case 'step':
        onStep(op.title);
        await runOps(op.body, st, onStep);
        break;
    }
  }
}

export interface ExecuteEnv {
  runner: Runner;
  log: BuildLog;
  renderer: RendererName;
  signal: AbortSignal;
  holder: LockHolder;
  cache: Cache;
  owner?: Owner;
  /** When the SBOM says it was made (SOURCE_DATE_EPOCH or now). */
  sbomCreated: string;
  /** Hides secrets in what the progress display shows (output lines, errors). */
  redact?: (text: string) => string;
}

export interface Outcome {
  outputs: string[];
  ranStages: string[];
}

export async function execute(plan: Plan, env: ExecuteEnv): Promise<Outcome> {
  const { log, cache } = env;
  const live = env.renderer === 'default';
  const redact = env.redact ?? ((t: string) => t);
  /** The task's error as the progress display shows it: secrets hidden. */
  const shown = (fn: NonNullable<ListrTask['task']>): NonNullable<ListrTask['task']> => async (ctx, task) => {
    try {
      return await fn(ctx, task);
    } catch (err) {
      if (err instanceof Error) {
        err.message = redact(err.message);
        if (err.stack) err.stack = redact(err.stack);
      }
      throw err;
    }
  };
  const ranStages: string[] = [];
  const cleanups: Array<() => void | Promise<void>> = [];
  let outputs: string[] = [];
  const state = (onLine?: (line: string) => void): RunState => ({
    runner: env.runner,
    values: {},
    scratch: {},
    note: (line) => log.note(line),
    onLine,
    signal: env.signal,
    holder: env.holder,
  });

  const stageTask = (s: PlannedStage): ListrTask => ({
    title: `stage ${s.def.id}: ${s.def.description}`,
    skip: () => (s.start === 'skip' ? (plan.image.reuse ? 'cached (image reused)' : 'cached') : false),
    task: shown(async (_ctx, task) => {
      const onLine = live ? (line: string) => { task.output = redact(line); } : undefined;
      if (s.start === 'work-tree') {
        task.title = `stage ${s.def.id}: in the work tree already`;
        return;
      }
      if (s.start === 'restore') {
        task.title = `stage ${s.def.id}: restore from cache`;
        log.note(`stage ${s.def.id}: restore from cache`);
        await runOps(s.ops, state(onLine));
        task.title = `stage ${s.def.id}: restored from cache`;
        return;
      }
      ranStages.push(s.def.id);
      await runOps(s.ops, state(onLine), (title) => {
        task.title = `stage ${s.def.id}: ${title}`;
        log.note(`stage ${s.def.id}: ${title}`);
      });
      task.title = `stage ${s.def.id}: ${s.def.description}`;
    }),
  });

  const { paths, image } = plan;
  const exportTask: ListrTask = {
    title: 'export the image',
    task: shown(async (_ctx, task) => {
      const privateFiles = new Set([image.names.compressed]);
      if (image.reuse) {
        task.title = 'export: image unchanged, reused from cache';
        const meta = cache.readMeta('image', image.key!)!;
        cache.touch('image', image.key!);
        outputs = placeInDeploy(cache.imageDir(image.key!), meta.files ?? [], paths.deploy, privateFiles, env.owner);
        return;
      }
      verifyNoBuildLeftovers(paths.rootfs, plan.config.apt_proxy);
      // The export moves the firmware files aside for a while: no finished stage meanwhile.
      rmSync(paths.marker, { force: true });
      // What pihub fixed on the card and why the rest does not reach it, as the root file system says.
      const security = securityRecord(paths.rootfs);
      const result = await exportImage({
        runner: env.runner,
        config: plan.config,
        paths: { rootfs: paths.rootfs, dir: paths.export },
        seed: image.key!,
        date: plan.date,
        onLine: live ? (line) => { task.output = redact(line); } : undefined,
        onCleanup: (fn) => cleanups.push(fn),
        progress: (t) => {
          task.title = `export: ${t}`;
          log.note(`export: ${t}`);
        },
        manifest: { ...manifestOf(plan), security: security ?? null },
      });
      // The SBOM is read from this root file system's dpkg database and kept with the image.
      task.title = 'export: SBOM (SPDX) from the dpkg database';
      result.files.push(writeSbom(paths.rootfs, join(paths.export, 'out'), {
        name: result.names.base,
        file: result.names.image,
        rawSha256: result.rawSha256,
        suite: plan.config.base.suite,
        created: env.sbomCreated,
        tool: `pihub-${pihubVersion()}`,
        modified: sbomModifications(security, paths.rootfs),
      }));
      writeFileSync(paths.marker, plan.stages.at(-1)!.key!);
      await cache.saveImage(image.key!, result.names.compressed, join(paths.export, 'out'), result.files);
      outputs = placeInDeploy(cache.imageDir(image.key!), result.files, paths.deploy, privateFiles, env.owner);
      rmSync(paths.export, { recursive: true, force: true });
      task.title = `export: ${result.names.compressed}`;
    }),
  };

  const tasks = new Listr([...plan.stages.map(stageTask), exportTask], {
    renderer: env.renderer,
    exitOnError: true,
    registerSignalListeners: false,
    collectErrors: false,
    rendererOptions: env.renderer === 'simple' ? { timestamp: PRESET_TIMESTAMP, timer: PRESET_TIMER } : { timer: PRESET_TIMER, collapseSubtasks: false },
  } as ConstructorParameters<typeof Listr>[1]);

  try {
    await tasks.run();
  } catch (err) {
    if (env.signal.aborted && !(err instanceof InterruptedError)) throw new InterruptedError(String(env.signal.reason ?? 'signal'));
    throw err;
  } finally {
    for (const fn of cleanups.reverse()) {
      try {
        await fn();
      } catch (e) {
        log.note(`cleanup failed: ${(e as Error).message}`);
      }
    }
    rmSync(paths.export, { recursive: true, force: true });
  }
  return { outputs, ranStages };
}
