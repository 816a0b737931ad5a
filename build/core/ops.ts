// The plan's vocabulary: every piece of work a build does is one of these operations. The dry
// run prints them (formatOps) and the executor runs them (plan/execute.ts): one object for
// both, so the preview cannot drift from the run.
import { formatCommand, type Command, type Runner } from './exec.ts';
import type { LockHolder } from './lock.ts';

/** What operations may use while they run; filled in by the executor. */
export interface RunState {
  runner: Runner;
  /** The values of the stage that runs (passwords already hashed), set by its first operations. */
  values: Record<string, unknown>;
  /** Results one operation leaves for a later one of the same stage (e.g. a start time). */
  scratch: Record<string, unknown>;
  note(line: string): void;
  onLine?: (line: string) => void;
  signal?: AbortSignal;
  /** Who this build is, for the locks it takes. */
  holder: LockHolder;
}

/** Data written to a command's stdin, made when it runs (it may need the stage's values). */
export interface Input {
  /** How the plan shows it: `< archive of 01-files/`. */
  text: string;
  make(st: RunState): string | Buffer | Promise<string | Buffer>;
}

/** A command. */
export interface RunOp {
  kind: 'run';
  command: Command;
  /** Named in errors: `10-system/02-packages-nr`. */
  step: string;
  env?: Readonly<Record<string, string>>;
  /** Add the stage's values as PIHUB_* variables when it runs. */
  valuesEnv?: boolean;
  /** `env` is the whole environment, not an addition to pihub's own. */
  cleanEnv?: boolean;
  cwd?: string;
  input?: Input;
  /** Variables the plan shows before the command, as a shell would take them. */
  showEnv?: readonly string[];
  /** Hands stdout to the plan (e.g. a password hash); `secretOutput` keeps it out of the log. */
  capture?: (stdout: string, st: RunState) => void;
  secretOutput?: boolean;
  /**
   * The command as it runs, when some of its arguments are known only then (a size measured by
   * an earlier operation); `command` is how the plan shows it, placeholders for those arguments.
   * The program is the same.
   */
  resolve?: (st: RunState) => Command;
}

/** Work done inside pihub itself, said in a sentence. */
export interface DoOp {
  kind: 'do';
  text: string;
  fn(st: RunState): void | Promise<void>;
  /** Bookkeeping the plan does not show line by line (markers, policy-rc.d before each step). */
  hidden?: boolean;
}

/** Lines the plan shows and the run has nothing to do for (e.g. the files a step copies). */
export interface InfoOp {
  kind: 'info';
  lines: readonly string[];
}

/** `finally` runs after `body`, also when it fails. */
export interface TryOp {
  kind: 'try';
  body: readonly Op[];
  finally: readonly Op[];
}

/** A choice made when the build gets there, on what only then is known. */
export interface IfOp {
  kind: 'if';
  /** The condition, as the plan shows it: `the stage took 20 s or more`. */
  text: string;
  test(st: RunState): boolean;
  then: readonly Op[];
  else?: readonly Op[];
}

/** `body` runs holding a lock that other pihub processes wait for. */
export interface LockOp {
  kind: 'lock';
  path: string;
  /** Why, as the plan shows it. */
  text: string;
  body: readonly Op[];
}

/** A named part of a stage: its title shows in the progress display and the log. */
export interface StepOp {
  kind: 'step';
  title: string;
  body: readonly Op[];
}

/** Operations that run at the same time (e.g. readers of one file from the page cache); all finish before the next. */
export interface AllOp {
  kind: 'all';
  body: readonly Op[];
}

export type Op = RunOp | DoOp | InfoOp | TryOp | IfOp | LockOp | StepOp | AllOp;

/** How the plan shows a command: `$ ROOTFS_DIR=… unshare … < archive of 01-files/`. */
export function formatRun(op: RunOp): string {
  const env = (op.showEnv ?? []).map((k) => `${k}=${op.env?.[k] ?? ''} `).join('');
  return `$ ${env}${formatCommand(op.command)}${op.input ? ` < ${op.input.text}` : ''}`;
}

/** The plan's lines for operations, indented by `indent` spaces. */
export function formatOps(ops: readonly Op[], indent = 0): string[] {
  const pad = ' '.repeat(indent);
  const out: string[] = [];
  for (const op of ops) {
    switch (op.kind) {
      case 'run':
        out.push(`${pad}${formatRun(op)}`);
        break;
      case 'do':
        if (!op.hidden) out.push(`${pad}${op.text}`);
        break;
      case 'info':
        for (const l of op.lines) out.push(`${pad}${l}`);
        break;
      case 'try':
        out.push(...formatOps(op.body, indent));
        for (const l of formatOps(op.finally, indent)) out.push(`${l}   (also after a failure)`);
        break;
      case 'if':
        out.push(`${pad}if ${op.text}:`, ...formatOps(op.then, indent + 2));
        {
          const otherwise = formatOps(op.else ?? [], indent + 2);
          if (otherwise.length) out.push(`${pad}otherwise:`, ...otherwise);
        }
        break;
      case 'lock':
        out.push(`${pad}${op.text} (lock ${op.path}):`, ...formatOps(op.body, indent + 2));
        break;
      case 'step':
        out.push(`${pad}${op.title}`, ...formatOps(op.body, indent + 2));
        break;
      case 'all':
        out.push(`${pad}at the same time:`, ...formatOps(op.body, indent + 2));
        break;
    }
  }
  return out;
}

/** Every command in operations, in order, both branches of each choice: what a build may run. */
export function commandsOf(ops: readonly Op[]): RunOp[] {
  const out: RunOp[] = [];
  for (const op of ops) {
    if (op.kind === 'run') out.push(op);
    else if (op.kind === 'try') out.push(...commandsOf(op.body), ...commandsOf(op.finally));
    else if (op.kind === 'if') out.push(...commandsOf(op.then), ...commandsOf(op.else ?? []));
    else if (op.kind === 'lock' || op.kind === 'step' || op.kind === 'all') out.push(...commandsOf(op.body));
  }
  return out;
}

/** The build machine's programs operations may run: their commands'. */
export function toolsOf(ops: readonly Op[]): Set<string> {
  return new Set(commandsOf(ops).map((r) => r.command[0]));
}

/** Freeze a plan value all the way down (functions and Buffers stay as they are). */
export function deepFreeze<T>(v: T): T {
  if (v !== null && typeof v === 'object' && !Object.isFrozen(v) && !Buffer.isBuffer(v)) {
    Object.freeze(v);
    for (const x of Object.values(v)) deepFreeze(x);
  }
  return v;
}
