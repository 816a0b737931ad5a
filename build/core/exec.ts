// The only module that starts processes. Commands are [program, args] arrays, never shell strings.
import { StringDecoder } from 'node:string_decoder';
import { execa, execaSync } from 'execa';
import { Redactor } from './redact.ts';
import { UserError, InterruptedError } from './errors.ts';

export type Command = readonly [program: string, args: readonly string[]];

export interface RunOptions {
  /** Which step runs the command; named in errors. */
  step?: string;
  cwd?: string;
  /** Environment. With `cleanEnv` it is the whole environment, otherwise it extends process.env. */
  env?: Record<string, string>;
  cleanEnv?: boolean;
  /** Written to stdin. Never logged: passwords travel this way. */
  input?: string | Buffer;
  /** Keep stdout in the result (otherwise it only goes to the log). */
  capture?: boolean;
  /** stdout holds a secret (a password hash): kept in the result, never logged or shown. */
  secretOutput?: boolean;
  /** Exit codes that count as success (default: 0 only). */
  okCodes?: readonly number[];
  /** Called with each line of output (stdout and stderr), for progress display. */
  onLine?: (line: string) => void;
  /** Write stdout to this file instead of the log (for decompressing to a file). */
  stdoutFile?: string;
}

export interface RunResult {
  exitCode: number;
  stdout: string;
}

export interface Runner {
  run(command: Command, options?: RunOptions): Promise<RunResult>;
}

/** Sink for the full build log. */
export interface LogSink {
  write(text: string): void;
}

const SAFE_ARG = /^[A-Za-z0-9_@%+=:,./-]+$/;

/** Quote one argument the way a POSIX shell would need it. */
export function shellQuote(arg: string): string {
  if (arg !== '' && SAFE_ARG.test(arg)) return arg;
  return `'${arg.replaceAll("'", `'\\''`)}'`;
}

/** The one way a command is printed, in logs, errors and --dry-run. */
export function formatCommand([program, args]: Command): string {
  return [program, ...args].map(shellQuote).join(' ');
}

export class CommandError extends UserError {
  constructor(
    readonly command: Command,
    readonly commandExitCode: number,
    readonly tail: string[],
    step: string | undefined,
    cause?: string,
  ) {
    const where = step ? `step "${step}" failed` : 'a command failed';
    const what = cause ?? `exited with code ${commandExitCode}`;
    const lines = [`${where}: \`${formatCommand(command)}\` ${what}`];
    if (tail.length > 0) lines.push('last lines of its output:', ...tail.map((l) => `  | ${l}`));
    super(lines.join('\n'), 1);
    this.name = 'CommandError';
  }
}

const TAIL_LINES = 25;

/**
 * A runner backed by execa; every line of output goes to the log. Whatever it shows (the log,
 * progress lines, the tail in errors) has the redactor's secrets hidden, found across reads.
 */
export function createRunner(log: LogSink, signal?: AbortSignal, redactor: Redactor = new Redactor()): Runner {
  return {
    async run(command, options = {}) {
      const [program, args] = command;
      if (signal?.aborted) throw new InterruptedError(String(signal.reason ?? 'signal'));
      log.write(`$ ${redactor.redact(formatCommand(command))}\n`);
      const tail: string[] = [];
      const stdoutChunks: string[] = [];
      /** Redacted text, whole lines. */
      const show = (text: string) => {
        if (text === '') return;
        log.write(text);
        for (const line of text.split('\n')) {
          if (line.trim() === '') continue;
          tail.push(line);
          if (tail.length > TAIL_LINES) tail.shift();
          options.onLine?.(line);
        }
      };
      // A character split between two reads is decoded whole, so a secret is never cut into mojibake.
      const reader = () => ({ decoder: new StringDecoder('utf8'), redacting: redactor.stream() });
      const out = reader();
      const err = reader();
      const keep = options.capture === true || options.secretOutput === true;
      const onStdout = (d: Buffer) => {
        const text = out.decoder.write(d);
        if (keep) stdoutChunks.push(text);
        if (!options.secretOutput) show(out.redacting.push(text));
      };
      const onStderr = (d: Buffer) => show(err.redacting.push(err.decoder.write(d)));
      // At the end: a last line without a line break is shown too.
      const showRest = (r: ReturnType<typeof reader>, text: string) => {
        const rest = r.redacting.push(text) + r.redacting.end();
        show(rest === '' || rest.endsWith('\n') ? rest : `${rest}\n`);
      };
      const flush = () => {
        const last = out.decoder.end();
        if (keep) stdoutChunks.push(last);
        if (!options.secretOutput) showRest(out, last);
        showRest(err, err.decoder.end());
      };
      const failure = (exitCode: number, cause?: string) => {
        const e = new CommandError(command, exitCode, tail, options.step, cause);
        e.message = redactor.redact(e.message);
        return e;
      };
      const child = execa(program, [...args], {
        cwd: options.cwd,
        env: options.env,
        extendEnv: !options.cleanEnv,
        input: options.input,
        stdin: options.input === undefined ? 'ignore' : undefined,
        stdout: options.stdoutFile ? { file: options.stdoutFile } : 'pipe',
        reject: false,
        buffer: false,
        encoding: 'utf8',
        cancelSignal: signal,
        forceKillAfterDelay: 10_000,
      });
      child.stdout?.on('data', onStdout);
      child.stderr?.on('data', onStderr);
      const result = await child;
      flush();
      if (result.isCanceled || signal?.aborted) {
        throw new InterruptedError(String(signal?.reason ?? 'signal'));
      }
      const exitCode = result.exitCode ?? -1;
      const ok = options.okCodes ?? [0];
      if (result.failed && result.exitCode === undefined) {
        throw failure(exitCode, (result as { code?: string }).code === 'ENOENT'
          ? `could not start: \`${program}\` is not installed or not on PATH`
          : `could not run: ${result.shortMessage}`);
      }
      if (!ok.includes(exitCode)) throw failure(exitCode);
      return { exitCode, stdout: stdoutChunks.join('') };
    },
  };
}

/** Output of a quick query such as `prog --version`; empty text if it cannot run. Never for build work. */
export function runQuick([program, args]: Command): string {
  const r = execaSync(program, [...args], { reject: false, timeout: 10_000, stdin: 'ignore' });
  return `${r.stdout ?? ''}\n${r.stderr ?? ''}`;
}

/** A long-running process whose stdio the caller drives (the QEMU console). */
export interface Spawned {
  pid: number | undefined;
  stdin: NodeJS.WritableStream | null;
  stdout: NodeJS.ReadableStream | null;
  stderr: NodeJS.ReadableStream | null;
  kill(signal?: NodeJS.Signals): boolean;
  /** Resolves with the exit code (or -1 when killed by a signal). */
  exited: Promise<number>;
}

export function spawnProcess([program, args]: Command, log?: LogSink): Spawned {
  log?.write(`$ ${formatCommand([program, args])}\n`);
  const child = execa(program, [...args], { reject: false, buffer: false, stdin: 'pipe', stdout: 'pipe', stderr: 'pipe' });
  return {
    pid: child.pid,
    stdin: child.stdin,
    stdout: child.stdout,
    stderr: child.stderr,
    kill: (signal) => child.kill(signal),
    exited: child.then((r) => r.exitCode ?? -1),
  };
}
