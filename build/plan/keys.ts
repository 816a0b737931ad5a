// Cache keys: a digest of everything that decides a stage's result, and nothing else.
// Each stage's key covers its parent's key, its files, the values it reads, the base (with the
// archive's Release date) and pihub's own code that makes a stage, found from its imports
// (engineClosure).
import { createHash, createHmac } from 'node:crypto';
import { existsSync, lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { request } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { InputError, UserError } from '../core/errors.ts';
import { canonicalJson, sha256 } from '../core/digest.ts';

export { canonicalJson, engineClosure, engineDigest, implementationDigest, importsOf, sha256 } from '../core/digest.ts';
import type { BuildConfig } from '../config/schema.ts';
import { configValue, declarationAt, declarationData } from '../config/declared.ts';
import { credentialsOf, withoutCredentials, type Credentials } from '../config/urls.ts';

/** Digest of a directory tree: names, types, executable bits, contents and symlink targets. */
export function digestTree(dir: string): string {
  const h = createHash('sha256');
  const walk = (d: string, rel: string) => {
    for (const name of readdirSync(d).sort()) {
      const full = join(d, name);
      const path = `${rel}/${name}`;
      const st = lstatSync(full);
      if (st.isSymbolicLink()) h.update(`L ${path} ${readlinkSync(full)}\n`);
      else if (st.isDirectory()) {
        h.update(`D ${path}\n`);
        walk(full, path);
      } else if (st.isFile()) {
        h.update(`F ${path} ${st.mode & 0o111 ? 'x' : '-'} ${sha256(readFileSync(full))}\n`);
      } else {
        // A FIFO would block the read, a device could be endless.
        throw new InputError(`${full}: only files, folders and symlinks can be in a stage or overlay folder`);
      }
    }
  };
  walk(dir, '');
  return h.digest('hex');
}


export interface StageKeyInput {
  parent: string | null;
  stage: string;
  files: string;
  values: Record<string, unknown>;
  /** The declarations of the keys the stage reads (keyDeclarations). */
  declarations: Record<string, unknown>;
  base: unknown;
  implementation: string;
}

export function stageKey(input: StageKeyInput): string {
  return sha256(canonicalJson({ v: 1, ...input })).slice(0, 32);
}

/** How far the archive's Release file is followed and read: a broken or hostile server cannot keep a build busy. */
export interface FetchLimits {
  redirects: number;
  maxBytes: number;
  /** For the whole fetch, redirects included. */
  timeoutMs: number;
}

export const FETCH_LIMITS: FetchLimits = { redirects: 5, maxBytes: 8 * 1024 * 1024, timeoutMs: 60_000 };

const basicAuth = (c: Credentials) => `Basic ${Buffer.from(`${c.user}:${c.password}`).toString('base64')}`;

type Answer = { redirect: string } | { text: string };

/** One GET; credentials in the URL (or the proxy's) go in headers; the deadline and size cap end it early. */
function getOnce(url: string, proxy: string | null, maxBytes: number, deadline: number, timeoutMs: number): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const target = new URL(withoutCredentials(url));
    if (target.protocol !== 'http:' && target.protocol !== 'https:') {
      reject(new Error(`redirected to ${target.protocol.slice(0, -1)}, not HTTP or HTTPS`));
      return;
    }
    const viaProxy = proxy !== null && target.protocol === 'http:';
    const p = viaProxy ? new URL(withoutCredentials(proxy)) : target;
    const headers: Record<string, string> = { host: target.host, 'user-agent': 'pihub' };
    const auth = credentialsOf(url);
    if (auth) headers.authorization = basicAuth(auth);
    const proxyAuth = viaProxy ? credentialsOf(proxy) : undefined;
    if (proxyAuth) headers['proxy-authorization'] = basicAuth(proxyAuth);
    const req = (p.protocol === 'https:' ? httpsRequest : request)({
      host: p.hostname,
      port: p.port || (p.protocol === 'https:' ? 443 : 80),
      path: viaProxy ? target.toString() : `${target.pathname}${target.search}`,
      headers,
    });
    const timer = setTimeout(() => req.destroy(new Error(`no complete answer within ${timeoutMs / 1000} s`)), Math.max(0, deadline - Date.now()));
    const fail = (err: Error) => {
      clearTimeout(timer);
      reject(err);
    };
    req.on('error', fail);
    req.on('response', (res) => {
      const status = res.statusCode ?? 0;
      if (status >= 300 && status < 400 && res.headers.location) {
        res.resume();
        clearTimeout(timer);
        // A relative location keeps the URL's credentials; another server never gets them.
        resolve({ redirect: new URL(res.headers.location, url).toString() });
        return;
      }
      if (status !== 200) {
        res.resume();
        fail(new Error(`HTTP ${status}`));
        return;
      }
      const tooLarge = () => new Error(`its answer is larger than ${maxBytes / 1024 / 1024} MiB, far more than a Release file`);
      if (Number(res.headers['content-length'] ?? 0) > maxBytes) {
        req.destroy(tooLarge());
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > maxBytes) req.destroy(tooLarge());
        else chunks.push(c);
      });
      res.on('end', () => {
        clearTimeout(timer);
        resolve({ text: Buffer.concat(chunks).toString('utf8') });
      });
      res.on('error', fail);
    });
    req.end();
  });
}

/** GET a small text file, directly or through an HTTP proxy, within `limits`. */
export async function fetchText(url: string, proxy: string | null, limits: Partial<FetchLimits> = {}): Promise<string> {
  const { redirects, maxBytes, timeoutMs } = { ...FETCH_LIMITS, ...limits };
  const deadline = Date.now() + timeoutMs;
  let current = url;
  for (let followed = 0; ; followed++) {
    const answer = await getOnce(current, proxy, maxBytes, deadline, timeoutMs);
    if ('text' in answer) return answer.text;
    if (followed === redirects) throw new Error(`redirected more than ${redirects} times (last to ${withoutCredentials(answer.redirect)})`);
    current = answer.redirect;
  }
}

/** How the main archive's extra suites are named among the repository dates (no repository can be named so). */
export const ARCHIVE = '(archive)';

/**
 * What the base's stages were built from, as its archives date it: the main archive's Release
 * date, each of its extra suites' (`(archive) SUITE` → date) and each extra repository suite's
 * (`NAME SUITE` → date). A change anywhere rebuilds.
 */
export async function baseRelease(
  config: BuildConfig,
  repositories: readonly { name: string; uri: string; suites: readonly string[] }[],
  extraSuites: readonly string[] = [],
): Promise<{ release: string; repositories: Record<string, string> }> {
  const release = await releaseDate(config.base.mirror, config.base.suite, config.apt_proxy);
  const dates: Record<string, string> = {};
  // The main archive's extra suites (e.g. backports) change on their own days.
  for (const suite of extraSuites) dates[`${ARCHIVE} ${suite}`] = await releaseDate(config.base.mirror, suite, config.apt_proxy);
  for (const r of repositories) {
    const source = { what: `repository \`${r.name}\` of the base`, setting: `the \`uri\` of repository \`${r.name}\`` };
    for (const suite of r.suites) dates[`${r.name} ${suite}`] = await releaseDate(r.uri, suite, config.apt_proxy, source);
  }
  return { release, repositories: dates };
}

/** An archive as messages name it, and the setting that points at it. */
export interface ArchiveSource {
  what: string;
  setting: string;
}

const MAIN_ARCHIVE: ArchiveSource = { what: 'the Debian mirror', setting: '`base.mirror`' };

/** The `Date:` of the suite's InRelease: when the archive changes, cached stages are rebuilt. */
export async function releaseDate(mirror: string, suite: string, proxy: string | null, { what, setting }: ArchiveSource = MAIN_ARCHIVE): Promise<string> {
  const url = `${mirror.replace(/\/+$/, '')}/dists/${suite}/InRelease`;
  if (url.startsWith('file://')) {
    const file = [fileURLToPath(url), fileURLToPath(url.replace(/InRelease$/, 'Release'))].find((f) => existsSync(f));
    if (!file) throw new UserError(`${what}: ${url} (or Release beside it) does not exist; check ${setting}`);
    return /^Date: (.+)$/m.exec(readFileSync(file, 'utf8'))?.[1] ?? 'unknown';
  }
  let text: string;
  try {
    // A repository without InRelease may still have Release (+ Release.gpg), or be unsigned: apt judges that.
    text = await fetchText(url, proxy).catch((err: Error) => {
      if (err.message !== 'HTTP 404') throw err;
      return fetchText(url.replace(/InRelease$/, 'Release'), proxy).catch(() => { throw err; });
    });
  } catch (err) {
    throw new UserError(
      `cannot reach ${what}: ${withoutCredentials(url)}: ${(err as Error).message}; check the network, ${setting} or \`apt_proxy\``,
    );
  }
  const m = /^Date: (.+)$/m.exec(text);
  if (!m) throw new UserError(`${withoutCredentials(url)} has no Date: field; is ${setting} a Debian archive?`);
  return m[1]!.trim();
}

function fileDigest(path: unknown): unknown {
  if (typeof path !== 'string') return path;
  try {
    return { path, sha256: sha256(readFileSync(path)) };
  } catch {
    return { path, sha256: null };
  }
}

/**
 * A secret's stand-in in cache keys: keyed with this cache's own random salt, so the key
 * changes when the secret does, while a published key (the .json beside an image) cannot be
 * used to guess the secret without the salt, which never leaves the cache.
 */
export function secretDigest(salt: string, secret: string): string {
  return createHmac('sha256', salt).update(secret).digest('hex');
}

/**
 * The values a stage reads, as they enter its cache key, as their declarations say (at any
 * depth): a secret only as its salted digest, a file on the build machine with its content.
 */
export function keyValues(config: BuildConfig, reads: readonly string[], salt: string): Record<string, unknown> {
  const enter = (v: unknown, path: string[]): unknown => {
    const node = declarationAt(path);
    if (node?.file) return fileDigest(v);
    if (typeof v === 'string' && node?.secret) return { secret: secretDigest(salt, v) };
    // As stages see it: credentials decide nothing in a stage's result.
    if (typeof v === 'string' && node?.url) return withoutCredentials(v);
    if (Array.isArray(v)) return v.map((x, i) => enter(x, [...path, String(i)]));
    if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, enter(x, [...path, k])]));
    return v;
  };
  return Object.fromEntries(reads.map((key) => [key, enter(configValue(config, key), key.split('.'))]));
}

/**
 * The declarations of the keys a stage reads, as data: how the stage sees each value (its
 * variable, a secret's hash under another name, a file's content) is decided by them, and
 * config/settings.ts is not part of the engine's code in the key (core/digest.ts: KEYED_BY_VALUE).
 */
export function keyDeclarations(reads: readonly string[]): Record<string, unknown> {
  return Object.fromEntries(reads.map((key) => {
    const node = declarationAt(key);
    if (!node) throw new Error(`${key} is not a declared setting`);
    return [key, declarationData(node)];
  }));
}
