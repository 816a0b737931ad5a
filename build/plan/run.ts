// Runs a plan's operations: the one place they are carried out (the executor's task list, and
// tests, call it). What the operations are is the plan's; how they run is here.
import { describeHolder, waitLock } from '../core/lock.ts';
import { valuesEnv } from '../stages/values.ts';
import type { Op, RunState } from '../core/ops.ts';

/** Run operations in order; `onStep` hears each step's title as it starts. */
export async function runOps(ops: readonly Op[], st: RunState, onStep: (title: string) => void = () => {}): Promise<void> {
  for (const op of ops) {
    switch (op.kind) {
      case 'run': {
        const input = op.input ? await op.input.make(st) : undefined;
        const r = await st.runner.run(op.resolve ? op.resolve(st) : op.command, {
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
      case 'all':
        // Each runs on its own; the first failure is the one reported, after all have ended.
        for (const r of await Promise.allSettled(op.body.map((o) => runOps([o], st, onStep)))) {
          if (r.status === 'rejected') throw r.reason;
        }
        break;
    }
  }
}
