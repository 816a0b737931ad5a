// Progress display and the build log.
import { createWriteStream, fchownSync, mkdirSync, type WriteStream } from 'node:fs';
import { dirname } from 'node:path';
import { Redactor, type RedactingStream } from './redact.ts';
import type { LogSink } from './exec.ts';
import { openNewFile, type FileOwner } from './files.ts';

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
  private fd: number | undefined;
  /** Hides secrets in everything written (a script might print one), also one written in pieces. */
  private readonly redacting: RedactingStream;

  constructor(
    readonly path: string | undefined,
    redactor: Redactor = new Redactor(),
    /** Who gets the log when it is closed (the user who ran sudo). */
    private readonly owner?: FileOwner,
  ) {
    this.redacting = redactor.stream();
    if (path) {
      mkdirSync(dirname(path), { recursive: true });
      // A new file: whatever was under its name is replaced, never written through. It may show
      // more of the build than a published file should: private until the build ends.
      this.fd = openNewFile(path, { mode: 0o600 });
      this.stream = createWriteStream(path, { fd: this.fd });
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
      // Through the descriptor: the name may point elsewhere by now.
      if (this.owner && this.fd !== undefined) fchownSync(this.fd, this.owner.uid, this.owner.gid);
      this.stream.end(this.redacting.end(), resolve);
    });
  }
}

export function formatDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}
