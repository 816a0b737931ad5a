// Config layers: DEFAULTS < config file < overlays (in order) < --set. Validated once, at the end.
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { FileProblem, readRegularFile, TEXT_MAX_BYTES } from '../core/files.ts';
import { dirname, relative, resolve } from 'node:path';
import { parse as parseYamlValue } from 'yaml';
import type { z } from 'zod';
import { InputError } from '../core/errors.ts';
import { ConfigSchema, DEFAULTS, type BuildConfig } from './schema.ts';
import { formatIssues, formatPath, type Locator, type PathKey } from './format.ts';
import { HIDDEN, isSecretPath, resolveSecretRefs } from './secrets.ts';
import { FORBIDDEN_KEYS, forbiddenKeyMessage, readYamlMapping } from './yaml.ts';
import { configValue, declarationAt, declarations } from './declared.ts';
import { withCredentialsHidden } from './urls.ts';

export interface ConfigLayer {
  label: string;
  data: Record<string, unknown>;
  locator: Locator;
  /** Where relative paths in this layer start (secret files): its file's folder, or the working directory. */
  baseDir?: string;
}

/** Shorten a path for messages: relative to the working directory when that is shorter. */
export function displayPath(path: string): string {
  const rel = relative(process.cwd(), path);
  return rel && !rel.startsWith('../../') && rel.length < path.length ? rel : path;
}

/** Parse YAML text into a config layer; the document must be a mapping. */
export function parseConfigText(text: string, label: string): ConfigLayer {
  const { data, locator } = readYamlMapping(text, label, 'such as `name: my-pi` (see config.example.yaml)');
  return { label, data, locator };
}

export function loadConfigFile(path: string): ConfigLayer {
  const label = displayPath(path);
  let text: string;
  try {
    text = readRegularFile(path, TEXT_MAX_BYTES).toString('utf8');
  } catch (err) {
    if (!(err instanceof FileProblem)) throw err;
    if (err.reason === 'does not exist') {
      throw new InputError(
        `config file ${label} does not exist; pass an existing file to --config, or leave --config out to build the default image (copy config.example.yaml to start one)`,
      );
    }
    throw new InputError(`config file ${label} ${err.reason}; give --config a YAML file (see config.example.yaml)`);
  }
  return { ...parseConfigText(text, label), baseDir: dirname(path) };
}

/** A key anywhere in a value that would reach an object's prototype. */
function forbiddenKeyIn(v: unknown): string | undefined {
  if (v === null || typeof v !== 'object') return undefined;
  for (const [k, x] of Object.entries(v)) {
    if (FORBIDDEN_KEYS.has(k)) return k;
    const inner = forbiddenKeyIn(x);
    if (inner !== undefined) return inner;
  }
  return undefined;
}

/** `--set hub.port=8000` → a layer. Values are YAML scalars, so numbers and booleans keep their type. */
export function setLayer(assignments: readonly string[]): ConfigLayer {
  const data: Record<string, unknown> = {};
  const origins = new Map<string, string>();
  for (const arg of assignments) {
    const eq = arg.indexOf('=');
    if (eq <= 0) throw new InputError(`--set ${eq < 0 ? arg : '=…'}: expected KEY=VALUE, for example \`--set hub.port=8000\``);
    const key = arg.slice(0, eq);
    const raw = arg.slice(eq + 1);
    const path: PathKey[] = key.split('.').map((s) => (/^\d+$/.test(s) ? Number(s) : s));
    if (path.some((p) => p === '')) throw new InputError(`--set ${key}=…: \`${key}\` is not a key path such as \`hub.port\``);
    const bad = path.find((p) => FORBIDDEN_KEYS.has(String(p)));
    if (bad !== undefined) throw new InputError(`--set ${key}=…: ${forbiddenKeyMessage(String(bad))}`);
    let value: unknown;
    try {
      value = raw === '' ? '' : parseYamlValue(raw, { maxAliasCount: 0 });
    } catch {
      value = raw;
    }
    const inner = forbiddenKeyIn(value);
    if (inner !== undefined) throw new InputError(`--set ${key}=…: ${forbiddenKeyMessage(inner)}`);
    let cur: Record<PathKey, unknown> = data;
    path.forEach((p, i) => {
      if (i === path.length - 1) {
        cur[p] = value;
      } else {
        const next = cur[p];
        // A numeric segment makes an index patch ({0: …}), which deepMerge applies to a list.
        if (next === null || typeof next !== 'object') cur[p] = {};
        cur = cur[p] as Record<PathKey, unknown>;
      }
    });
    // A secret's value is never shown (its path may also end in .env or .file: a reference).
    const secret = isSecretPath(path) || isSecretPath(path.slice(0, -1));
    origins.set(formatPath(path), secret ? `--set ${key}=${HIDDEN}` : `--set ${withCredentialsHidden(arg)}`);
  }
  return {
    label: '--set',
    data,
    locator: { locate: (path) => (path.length ? origins.get(formatPath(path)) : undefined) },
    baseDir: process.cwd(),
  };
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Mappings merge key by key; lists and scalars replace. Index patches from --set (`users.0.admin`) merge into the list. */
export function deepMerge(base: unknown, over: unknown): unknown {
  if (isPlainObject(base) && isPlainObject(over)) {
    const out: Record<string, unknown> = { ...base };
    for (const [k, v] of Object.entries(over)) {
      // Readers refuse such keys with a location; this keeps any other caller from polluting.
      if (FORBIDDEN_KEYS.has(k)) throw new InputError(forbiddenKeyMessage(k));
      out[k] = Object.hasOwn(base, k) ? deepMerge(base[k], v) : v;
    }
    return out;
  }
  if (Array.isArray(base) && isPlainObject(over) && Object.keys(over).every((k) => /^\d+$/.test(k))) {
    const out = [...base];
    for (const [k, v] of Object.entries(over)) out[Number(k)] = deepMerge(out[Number(k)], v);
    return out;
  }
  return over;
}

type AnySchema = z.core.$ZodType;

function unwrap(schema: AnySchema): AnySchema {
  let s = schema;
  for (;;) {
    const def = s._zod.def as { type: string; innerType?: AnySchema; in?: AnySchema };
    if (def.innerType && ['optional', 'nullable', 'default', 'prefault', 'readonly', 'catch'].includes(def.type)) {
      s = def.innerType;
    } else if (def.type === 'pipe' && def.in) {
      s = def.in;
    } else {
      return s;
    }
  }
}

/** The keys a mapping at `path` may have, read from the schema. */
export function knownKeysAt(path: readonly PathKey[]): string[] {
  let s: AnySchema = ConfigSchema;
  for (const p of path) {
    const def = unwrap(s)._zod.def as { type: string; shape?: Record<string, AnySchema>; element?: AnySchema };
    if (def.type === 'object' && def.shape && typeof p === 'string' && def.shape[p]) s = def.shape[p];
    else if (def.type === 'array' && def.element) s = def.element;
    else return [];
  }
  const def = unwrap(s)._zod.def as { type: string; shape?: Record<string, AnySchema> };
  return def.type === 'object' && def.shape ? Object.keys(def.shape) : [];
}

/** Merge the layers over DEFAULTS and validate; every problem is reported at once. */
export function resolveConfig(layers: readonly ConfigLayer[], env: NodeJS.ProcessEnv = process.env): BuildConfig {
  let merged: unknown = structuredClone(DEFAULTS);
  for (const layer of layers) {
    const where = (path: readonly PathKey[]) => layer.locator.locate(path) ?? layer.label;
    const baseDir = layer.baseDir ?? process.cwd();
    merged = deepMerge(merged, filePathsFrom(resolveSecretRefs(layer.data, where, baseDir, env), baseDir));
  }
  const result = ConfigSchema.safeParse(merged);
  if (result.success) return verifyKeyPairs(resolveFileSettings(result.data));
  const lines = formatIssues(result.error.issues, {
    input: merged,
    knownKeys: knownKeysAt,
    sources: [...layers].reverse().map((l) => l.locator),
    fallback: layers[0]?.label ?? 'config',
    isSecret: isSecretPath,
  });
  throw new InputError(lines.join('\n'));
}

/** A layer's paths of settings declared `file`, made absolute from its folder (the config file's, an overlay's; the working directory for --set). */
function filePathsFrom(data: Record<string, unknown>, baseDir: string): Record<string, unknown> {
  const walk = (v: unknown, path: PathKey[]): unknown => {
    if (typeof v === 'string' && declarationAt(path)?.file) return resolve(baseDir, v);
    if (Array.isArray(v)) return v.map((x, i) => walk(x, [...path, i]));
    if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x, [...path, /^\d+$/.test(k) ? Number(k) : k])]));
    return v;
  };
  return walk(data, []) as Record<string, unknown>;
}

/** Far more than any file a setting names (a certificate, a key). */
const SETTING_FILE_MAX_BYTES = 1024 * 1024;

/** Settings declared `file`: each given path must be a file on the build machine; kept absolute. */
function resolveFileSettings(config: BuildConfig): BuildConfig {
  const walk = (v: unknown, path: PathKey[]): unknown => {
    const node = declarationAt(path);
    if (typeof v === 'string' && node?.file) {
      const file = resolve(v);
      let data: Buffer;
      try {
        data = readRegularFile(file, SETTING_FILE_MAX_BYTES);
      } catch (err) {
        if (err instanceof FileProblem) throw new InputError(`\`${formatPath(path)}\`: ${file} ${err.reason}; give a file on the build machine`);
        throw err;
      }
      if (node.pem) verifyPem(data, node.pem, `\`${formatPath(path)}\`: ${file}`, formatPath(path));
      return file;
    }
    if (Array.isArray(v)) return v.map((x, i) => walk(x, [...path, i]));
    if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x, [...path, k])]));
    return v;
  };
  return walk(config, []) as BuildConfig;
}

const PEM_HOW = 'in PEM format (`-----BEGIN …-----` lines), such as `openssl req -x509 -newkey rsa:2048 -nodes -keyout hub.key -out hub.crt` makes';

/** The settings of private keys and of the certificates they belong to (`certificate:` in their declarations). */
function keyPairs(): Array<{ key: string; certificate: string }> {
  return declarations()
    .filter((d) => d.node.kind === 'leaf' && d.node.certificate && !d.key.includes('['))
    .map((d) => ({ key: d.key, certificate: d.key.replace(/[^.]+$/, d.node.certificate!) }));
}

/** A certificate or private key a server can load: PEM, parseable, a key without a passphrase. */
function verifyPem(data: Buffer, want: 'certificate' | 'private key', who: string, key: string): void {
  const text = data.toString('latin1');
  if (want === 'certificate') {
    if (!text.includes('-----BEGIN CERTIFICATE-----')) throw new InputError(`${who} is not a PEM certificate; give the certificate ${PEM_HOW}`);
    try {
      new X509Certificate(data);
    } catch {
      throw new InputError(`${who} holds a certificate that does not parse; give the certificate ${PEM_HOW}`);
    }
    // A certificate is installed readable by everyone on the card.
    if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text)) {
      const own = keyPairs().find((p) => p.certificate === key)?.key;
      throw new InputError(`${who} holds a private key too, and a certificate is readable by everyone on the card; give the key only in ${own ? `\`${own}\`` : 'its key file'}`);
    }
    return;
  }
  if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text)) throw new InputError(`${who} is not a PEM private key; give the private key ${PEM_HOW}`);
  if (/-----BEGIN ENCRYPTED PRIVATE KEY-----|^Proc-Type: 4,ENCRYPTED/m.test(text)) {
    throw new InputError(`${who} is protected by a passphrase, which nobody can type when the card starts; give it without one (\`openssl pkey -in KEY -out KEY.pem\`)`);
  }
  try {
    createPrivateKey(data);
  } catch {
    throw new InputError(`${who} holds a private key that does not parse; give the private key ${PEM_HOW}`);
  }
}

/** A private key given with its certificate must be that certificate's own. */
function verifyKeyPairs(config: BuildConfig): BuildConfig {
  for (const pair of keyPairs()) {
    const key = configValue(config, pair.key);
    const cert = configValue(config, pair.certificate);
    if (typeof key !== 'string' || typeof cert !== 'string') continue;
    const own = new X509Certificate(readRegularFile(cert, SETTING_FILE_MAX_BYTES)).checkPrivateKey(createPrivateKey(readRegularFile(key, SETTING_FILE_MAX_BYTES)));
    if (!own) {
      throw new InputError(`\`${pair.key}\`: ${key} is not the private key of the certificate \`${pair.certificate}\` (${cert}); give the key the certificate was made for`);
    }
  }
  return config;
}

/** Settings with an `auto` value resolved, so stages see what will really happen. */
export function effectiveConfig(config: BuildConfig): BuildConfig {
  const anyKeys = config.users.some((u) => u.ssh_authorized_keys.length > 0);
  return {
    ...config,
    ssh: {
      ...config.ssh,
      password_auth: config.ssh.password_auth === 'auto' ? !anyKeys : config.ssh.password_auth,
    },
  };
}
