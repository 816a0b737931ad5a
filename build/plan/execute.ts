// The one executor: runs a plan's operations stage by stage (a live task list), then exports the
// image (or reuses the cached one) and places the outputs in deploy/. Nothing here decides what
// to run: the plan did.
import { rmSync } from 'node:fs';
import { Listr, PRESET_TIMER, PRESET_TIMESTAMP, type ListrTask } from 'listr2';
import { InterruptedError } from '../core/errors.ts';
import type { Runner } from '../core/exec.ts';
import type { LockHolder } from '../core/lock.ts';
import type { BuildLog, RendererName } from '../core/progress.ts';
import { deployed } from './deliver.ts';
import type { RunState } from '../core/ops.ts';
import { runOps } from './run.ts';
import type { Plan, PlannedStage } from './plan.ts';

export interface ExecuteEnv {
  runner: Runner;
  log: BuildLog;
  renderer: RendererName;
  signal: AbortSignal;
  holder: LockHolder;
  /** Hides secrets in what the progress display shows (output lines, errors). */
  redact?: (text: string) => string;
}

export interface Outcome {
  outputs: string[];
  ranStages: string[];
}

export async function execute(plan: Plan, env: ExecuteEnv): Promise<Outcome> {
  const { log } = env;
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
      const st = state(live ? (line) => { task.output = redact(line); } : undefined);
      await runOps(image.ops, st, (title) => {
        task.title = `export: ${title}`;
        log.note(`export: ${title}`);
      });
      outputs = deployed(st);
      task.title = image.reuse ? 'export: image unchanged, reused from cache' : `export: ${image.names.compressed}`;
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
    // The export's scratch folder holds the raw image (password hashes): never left behind.
    rmSync(paths.export, { recursive: true, force: true });
  }
  return { outputs, ranStages };
}
