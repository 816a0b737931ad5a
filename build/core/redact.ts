// Hiding secrets in text: whole (an error's message) or as it arrives (a command's output).

/** What a hidden secret is shown as. */
export const HIDDEN = '<hidden>';

/** Replaces every secret in text; too short a secret would hide common words, and is not worth hiding. */
export class Redactor {
  private readonly secrets: string[];

  constructor(secrets: readonly string[] = []) {
    this.secrets = [...new Set(secrets)].filter((s) => s.length >= 4).sort((a, b) => b.length - a.length);
  }

  /** The longest secret's length (0 without any). */
  get longest(): number {
    return this.secrets[0]?.length ?? 0;
  }

  redact(text: string): string {
    let out = text;
    for (const s of this.secrets) if (out.includes(s)) out = out.replaceAll(s, HIDDEN);
    return out;
  }

  /** A redactor for text that arrives in pieces (one per stream). */
  stream(maxLine?: number): RedactingStream {
    return new RedactingStream(this, maxLine);
  }
}

/**
 * Redacts text that arrives in pieces, such as a child's output read by read: a secret split
 * between two pieces is still found. Text is let through a whole line at a time (no secret
 * holds a line break); a line longer than `maxLine` goes out in parts, all but a tail as long
 * as the longest secret, which waits for the rest.
 */
export class RedactingStream {
  private carry = '';

  constructor(private readonly redactor: Redactor, private readonly maxLine = 64 * 1024) {}

  /** The text that is safe to show now, redacted. */
  push(text: string): string {
    this.carry += text;
    let out = '';
    const nl = this.carry.lastIndexOf('\n');
    if (nl >= 0) {
      out = this.redactor.redact(this.carry.slice(0, nl + 1));
      this.carry = this.carry.slice(nl + 1);
    }
    if (this.carry.length > this.maxLine) {
      // Whole secrets are hidden already; the start of one that goes on in the next piece is in the kept tail.
      const redacted = this.redactor.redact(this.carry);
      const keep = Math.max(0, this.redactor.longest - 1);
      out += redacted.slice(0, redacted.length - keep);
      this.carry = redacted.slice(redacted.length - keep);
    }
    return out;
  }

  /** The rest, at the end of the stream. */
  end(): string {
    const out = this.redactor.redact(this.carry);
    this.carry = '';
    return out;
  }
}
