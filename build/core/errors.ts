/** An error meant for the user: its message says what went wrong and what to do. */
export class UserError extends Error {
  constructor(
    message: string,
    /** Exit code for the CLI: 2 for bad input, 1 for a failed build. */
    readonly exitCode = 1,
  ) {
    super(message);
    this.name = 'UserError';
  }
}

/** Bad input (config, overlay, stage files, arguments): exit code 2. */
export class InputError extends UserError {
  constructor(message: string) {
    super(message, 2);
    this.name = 'InputError';
  }
}

/** The build was interrupted by a signal. */
export class InterruptedError extends UserError {
  constructor(readonly signal: string) {
    super(`interrupted by ${signal}; cleaned up; deploy/ holds no partly written image (only the build's log)`, 130);
    this.name = 'InterruptedError';
  }
}
