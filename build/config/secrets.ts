// Secret settings: where they may come from (never only the command line), and how they are
// kept out of errors, logs and published cache keys.
import { isAbsolute, resolve } from 'node:path';
import { InputError } from '../core/errors.ts';
import { FileProblem, readRegularFile } from '../core/files.ts';
import { formatPath, type PathKey } from './format.ts';
import { declarationAt } from './declared.ts';
import { credentialsOf, userinfoOf, withoutCredentials } from './urls.ts';

/** Does a config path (`['users', 0, 'password']` or `users.0.password`) hold a secret? */
export function isSecretPath(path: readonly PathKey[] | string): boolean {
  return declarationAt(path)?.secret === true;
}

export { HIDDEN, Redactor, RedactingStream } from '../core/redact.ts';
import { HIDDEN } from '../core/redact.ts';

/** Far more than a secret's first line needs. */
const SECRET_FILE_MAX_BYTES = 1024 * 1024;

/**
 * A secret may be given as a reference instead of its value, so that it needs neither the
 * command line (seen in `ps` and shell history) nor a config file one might share:
 * `{ env: NAME }` reads an environment variable, `{ file: PATH }` a file's first line
 * (relative paths from `baseDir`: the config file's folder, or the working directory for --set).
 */
export function resolveSecretRefs(
  data: Record<string, unknown>,
  where: (path: readonly PathKey[]) => string,
  baseDir: string,
  env: NodeJS.ProcessEnv,
): Record<string, unknown> {
  const walk = (v: unknown, path: PathKey[]): unknown => {
    if (isSecretPath(path) && v !== null && typeof v === 'object' && !Array.isArray(v)) return dereference(v as Record<string, unknown>, path);
    if (Array.isArray(v)) return v.map((x, i) => walk(x, [...path, i]));
    if (v !== null && typeof v === 'object') {
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x, [...path, /^\d+$/.test(k) ? Number(k) : k])]));
    }
    return v;
  };
  const dereference = (ref: Record<string, unknown>, path: PathKey[]): string => {
    const key = `${where(path)}: \`${formatPath(path)}\``;
    const keys = Object.keys(ref);
    const name = ref.env ?? ref.file;
    if (keys.length !== 1 || (keys[0] !== 'env' && keys[0] !== 'file') || typeof name !== 'string' || name === '') {
      throw new InputError(`${key}: give the secret itself, \`{ env: VARIABLE }\` or \`{ file: PATH }\``);
    }
    if (keys[0] === 'env') {
      const value = env[name];
      if (value === undefined || value === '') {
        throw new InputError(`${key} comes from the environment variable ${name}, which is not set; export it before the build (through sudo: \`sudo --preserve-env=${name} …\`)`);
      }
      return value;
    }
    const file = isAbsolute(name) ? name : resolve(baseDir, name);
    let text: string;
    try {
      text = readRegularFile(file, SECRET_FILE_MAX_BYTES).toString('utf8');
    } catch (err) {
      if (err instanceof FileProblem) {
        throw new InputError(`${key} comes from the file ${file}, which ${err.code ? `cannot be read (${err.code})` : `${err.reason}; give a file whose first line is the secret`}`);
      }
      throw err;
    }
    const line = text.replace(/^\uFEFF/, '').split(/\r?\n/, 1)[0]!;
    if (line === '') throw new InputError(`${key} comes from the file ${file}, whose first line is empty`);
    return line;
  };
  return walk(data, []) as Record<string, unknown>;
}

/** A value as it may be shown: every secret in it (at any depth, whatever its type) replaced by HIDDEN. */
export function withSecretsHidden(v: unknown, path: readonly PathKey[] = []): unknown {
  if (isSecretPath(path)) return HIDDEN;
  if (Array.isArray(v)) return v.map((x, i) => withSecretsHidden(x, [...path, i]));
  if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, withSecretsHidden(x, [...path, k])]));
  return v;
}

/**
 * A value with every URL setting in it (declared `url`, at any depth) without its credentials:
 * what stages and cache keys get. apt and npm get the credentials apart (stages/credentials.ts).
 */
export function withoutUrlCredentials(v: unknown, path: readonly PathKey[] = []): unknown {
  if (typeof v === 'string') return declarationAt(path)?.url ? withoutCredentials(v) : v;
  if (Array.isArray(v)) return v.map((x, i) => withoutUrlCredentials(x, [...path, i]));
  if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, withoutUrlCredentials(x, [...path, k])]));
  return v;
}

/** A URL's credentials as text to hide: as written, and the password alone as programs use it (decoded). */
export function urlSecrets(url: string): string[] {
  const userinfo = userinfoOf(url);
  if (!userinfo) return [];
  const password = credentialsOf(url)?.password;
  return password ? [userinfo, password] : [userinfo];
}

/** Values to hide wherever pihub prints or logs text: secret settings, and credentials in URLs. */
export function secretValues(config: unknown): string[] {
  const out = new Set<string>();
  const walk = (v: unknown, path: PathKey[]) => {
    if (typeof v === 'string') {
      const node = declarationAt(path);
      if (node?.secret) out.add(v);
      if (node?.url) for (const s of urlSecrets(v)) out.add(s);
    } else if (Array.isArray(v)) {
      v.forEach((x, i) => walk(x, [...path, i]));
    } else if (v !== null && typeof v === 'object') {
      for (const [k, x] of Object.entries(v)) walk(x, [...path, k]);
    }
  };
  walk(config, []);
  return [...out];
}

