// Credentials in URLs (`apt_proxy`, `base.mirror`, `hub.npm_registry`, a base repository's
// `uri`) reach apt and npm through files readable by root only, never a command line (which
// every user of the machine sees in the process list) and never the card: apt reads an auth.conf
// (`Dir::Etc::netrc`), npm a userconfig. The files live in the work tree while a stage runs;
// inside the target they are mounted read-only on /run (a tmpfs there, never in the image).
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BuildConfig } from '../config/schema.ts';
import { credentialsOf, withoutCredentials } from '../config/urls.ts';
import type { Op } from '../core/ops.ts';

/** The URLs with credentials a build uses. */
export interface BuildCredentials {
  /** apt's: the proxy, the mirror, the base's extra repositories. */
  apt: readonly string[];
  /** npm's registry. */
  npm?: string;
}

export const CREDENTIALS_MOUNT = '/run/pihub/credentials';

/** The URLs of a build that carry credentials; undefined when none does. */
export function buildCredentials(config: Pick<BuildConfig, 'apt_proxy' | 'base' | 'hub'>, repositories: readonly { uri: string }[] = []): BuildCredentials | undefined {
  const apt = [config.apt_proxy, config.base.mirror, ...repositories.map((r) => r.uri)].filter((u): u is string => typeof u === 'string' && credentialsOf(u) !== undefined);
  const npm = config.hub.npm_registry !== null && credentialsOf(config.hub.npm_registry) ? config.hub.npm_registry : undefined;
  return apt.length || npm ? { apt: [...new Set(apt)], npm } : undefined;
}

/** Where the files are on the build machine (`host`) and in the target (`target`). */
export function credentialFiles(work: string, where: 'host' | 'target' = 'host'): { dir: string; auth: string; aptConf: string; npmrc: string } {
  const dir = where === 'host' ? join(work, 'credentials') : CREDENTIALS_MOUNT;
  return { dir, auth: join(dir, 'auth.conf'), aptConf: join(dir, 'apt.conf'), npmrc: join(dir, 'npmrc') };
}

/** apt's auth.conf: one `machine` line per URL (its scheme, host, port and path), for the URL without credentials. */
export function aptAuthText(urls: readonly string[]): string {
  return urls.map((url) => {
    const { user, password } = credentialsOf(url)!;
    const machine = withoutCredentials(url).replace(/\/+$/, '');
    return `machine ${machine} login ${user} password ${password}\n`;
  }).join('');
}

/** npm's userconfig: the registry's credentials, keyed by the registry as npm matches them (`//host/path/:`). */
export function npmrcText(registry: string): string {
  const { user, password } = credentialsOf(registry)!;
  const key = `${withoutCredentials(registry).replace(/^[a-z]+:/i, '').replace(/\/*$/, '')}/:`;
  return `${key}username=${JSON.stringify(user)}\n${key}_password=${Buffer.from(password).toString('base64')}\n`;
}

/** Writes the credential files (the folder root-only), for one stage; `removeCredentials` takes them away again. */
export function writeCredentialsOp(credentials: BuildCredentials, work: string): Op {
  const files = credentialFiles(work);
  return {
    kind: 'do',
    text: `write the build's credentials for apt and npm to ${files.dir} (readable by root only; never on a command line or in the image)`,
    fn: () => {
      rmSync(files.dir, { recursive: true, force: true });
      mkdirSync(files.dir, { recursive: true, mode: 0o700 });
      const inTarget = credentialFiles(work, 'target');
      writeFileSync(files.auth, aptAuthText(credentials.apt), { mode: 0o600 });
      // apt inside the target (a stage script's apt-get) finds it through APT_CONFIG.
      writeFileSync(files.aptConf, `Dir::Etc::netrc "${inTarget.auth}";\n`, { mode: 0o600 });
      if (credentials.npm) writeFileSync(files.npmrc, npmrcText(credentials.npm), { mode: 0o600 });
    },
  };
}

export function removeCredentialsOp(work: string): Op {
  const { dir } = credentialFiles(work);
  return { kind: 'do', text: `remove ${dir}`, fn: () => rmSync(dir, { recursive: true, force: true }) };
}
