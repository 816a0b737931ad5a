// Stand-ins for the build machine in unit tests: a runner that knows only the commands it was
// told to expect (and fails on any other, so a test notices every command the code would run),
// and a machine whose checks pass.
import { writeFileSync } from 'node:fs';
import { CommandError, formatCommand, type Command, type Runner, type RunOptions, type RunResult } from '../../build/core/exec.ts';
import type { BuildDeps } from '../../build/build.ts';
import type { Machine, MachineCheck } from '../../build/chroot/host.ts';

/** What a fake runner answers for one expected command. */
export interface FakeResponse {
  stdout?: string;
  exitCode?: number;
  /** What the command would leave behind (e.g. a file it writes). */
  effect?: (c: Command) => void;
}

export class FakeRunner implements Runner {
  readonly calls: Command[] = [];
  private readonly expected: Array<{ match: (c: Command) => boolean; response: FakeResponse }> = [];

  /** Expect a command whose printed form starts with `prefix` (or matches the predicate). */
  expect(prefix: string | ((c: Command) => boolean), response: FakeResponse = {}): this {
    const match = typeof prefix === 'string' ? (c: Command) => formatCommand(c).startsWith(prefix) : prefix;
    this.expected.push({ match, response });
    return this;
  }

  /** Accept the tree walks a save or restore records (`find -fprintf FILE`), writing an empty walk. */
  walks(): this {
    return this.expect((c) => c[0] === 'find' && c[1].includes('-fprintf'), { effect: (c) => writeFileSync(c[1][c[1].indexOf('-fprintf') + 1]!, '') });
  }

  async run(command: Command, options: RunOptions = {}): Promise<RunResult> {
    const found = this.expected.find((e) => e.match(command));
    if (!found) throw new Error(`FakeRunner: unexpected command: ${formatCommand(command)}`);
    this.calls.push(command);
    found.response.effect?.(command);
    const exitCode = found.response.exitCode ?? 0;
    if (!(options.okCodes ?? [0]).includes(exitCode)) throw new CommandError(command, exitCode, [], options.step);
    return { exitCode, stdout: found.response.stdout ?? '' };
  }
}

/** A build machine that has every tool, root and room; it remembers what it was asked to check. */
export class FakeMachine implements Machine {
  readonly checks: MachineCheck[] = [];

  verify(c: MachineCheck): string[] {
    this.checks.push(c);
    return [];
  }
}

/** Dependencies for build(): this runner (or one that refuses everything) on a fake machine. */
export function fakeDeps(runner: Runner = new FakeRunner(), machine: Machine = new FakeMachine()): BuildDeps {
  return { machine, runner: () => runner };
}
