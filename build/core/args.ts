// Command-line parsing shared by every pihub command: unknown options are bad input (exit 2),
// with the command's help.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { InputError } from './errors.ts';

export function parse<const O extends NonNullable<ParseArgsConfig['options']>>(args: string[], options: O, help: string) {
  try {
    return parseArgs({ args, options, allowPositionals: true as const, strict: true as const });
  } catch (err) {
    throw new InputError(`${(err as Error).message.replace(/\. To specify.*$/, '')}\n\n${help}`);
  }
}
