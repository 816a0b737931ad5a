// Progress display and the build log.
import { createWriteStream, fchmodSync, mkdirSync, openSync, type WriteStream } from 'node:fs';
import { dirname } from 'node:path';
import { Redactor, type RedactingStream } from './config/secrets.ts';
import type { LogSink } from './exec.ts';

export type RendererName = 'default' | 'simple' | 'silent';

/** Interactive terminal → live task tree; CI or no TTY → plain timestamped lines; --quiet → nothing. */
export function chooseRenderer(o: { quiet: boolean; isTTY: boolean; env: NodeJS.ProcessEnv }): RendererName {
  if (o.quiet) return 'silent';
  const ci = o.env.CI !== undefined && o.env.CI !== '' && o.env.CI !== 'false';
  if (ci || !o.isTTY || o.env.TERM === 'dumb') return 'simple';
  return 'default';
}

/** The full build log: every command and all of its output, with timestamps on pihub's own lines. */
export class BuildLog implements LogSink {
  private stream: WriteStream | undefined;
  /** Hides secrets in everything written (a script might print one), also one written in pieces. */
  private readonly redacting: RedactingStream;

  constructor(readonly path: string | undefined, redactor: Redactor = new Redactor()) {
    this.redacting = redactor.stream();
    if (path) {
      mkdirSync(dirname(path), { recursive: true });
      // It may show more of the build than a published file should: private until the build ends.
      const fd = openSync(path, 'w', 0o600);
      fchmodSync(fd, 0o600);
      this.stream = createWriteStream(path, { fd });
    }
  }

  write(text: string): void {
    const safe = this.redacting.push(text);
    if (safe !== '') this.stream?.write(safe);
  }

  note(line: string): void {
    this.write(`[${new Date().toISOString()}] ${line}\n`);
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      if (!this.stream) return resolve();
      this.stream.end(this.redacting.end(), resolve);
    });
  }
}

export function formatDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}
