// pihub's version: package.json's.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PROJECT_DIR } from './paths.ts';

export function pihubVersion(): string {
  try {
    return (JSON.parse(readFileSync(join(PROJECT_DIR, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}
