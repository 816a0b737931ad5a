// What the build puts into the target only for itself, and the check before export that none
// of it reaches the card: no fsync-less dpkg, no build machine's proxy, no policy-rc.d, no
// diversion of pihub's, no credentials in apt's or npm's files.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../core/errors.ts';
import { POLICY_TEXT, POLICY_RC_D } from './chroot.ts';
import { credentialsOf, userinfoOf, withoutCredentials } from '../config/urls.ts';

function readText(path: string): string {
  try {
    return statSync(path).isFile() ? readFileSync(path, 'utf8') : '';
  } catch {
    return '';
  }
}

/** `etc/apt/apt.conf` and every file of `etc/apt/apt.conf.d`, and the like. */
function configFiles(rootfs: string, file: string, dir: string): string[] {
  const out = existsSync(join(rootfs, file)) ? [file] : [];
  try {
    for (const f of readdirSync(join(rootfs, dir)).sort()) out.push(`${dir}/${f}`);
  } catch {
    // no such directory
  }
  return out;
}

/** Diverted paths whose diversion belongs to pihub (dpkg's diversions file: path, divert-to, package). */
export function pihubDiversions(rootfs: string): string[] {
  const lines = readText(join(rootfs, 'var/lib/dpkg/diversions')).split('\n');
  const out: string[] = [];
  for (let i = 0; i + 2 < lines.length; i += 3) if (lines[i + 2] === 'pihub') out.push(lines[i]!);
  return out;
}

/** apt's and npm's configuration in a root filesystem: where a URL's credentials could be kept. */
function credentialFilesIn(rootfs: string): string[] {
  return [
    ...configFiles(rootfs, 'etc/apt/sources.list', 'etc/apt/sources.list.d'),
    ...configFiles(rootfs, 'etc/apt/auth.conf', 'etc/apt/auth.conf.d'),
    ...configFiles(rootfs, 'etc/apt/apt.conf', 'etc/apt/apt.conf.d'),
    ...['root/.npmrc', 'etc/npmrc', 'usr/etc/npmrc'].filter((f) => existsSync(join(rootfs, f))),
  ];
}

/** How a URL's credentials would read in apt's and npm's files: in a URL, an auth.conf, an npmrc. */
function credentialForms(url: string): string[] {
  const userinfo = userinfoOf(url);
  const c = credentialsOf(url);
  if (userinfo === undefined || !c) return [];
  return [`${userinfo}@`, `password ${c.password}`, `_password=${Buffer.from(c.password).toString('base64')}`];
}

/**
 * Build-only settings left in a root filesystem, one sentence each (empty when clean);
 * `withCredentials`: the build's URLs with credentials, which no apt or npm file of the card may hold.
 */
export function buildLeftovers(rootfs: string, aptProxy: string | null, withCredentials: readonly string[] = []): string[] {
  const found: string[] = [];
  const proxy = aptProxy === null ? null : withoutCredentials(aptProxy);
  for (const f of configFiles(rootfs, 'etc/dpkg/dpkg.cfg', 'etc/dpkg/dpkg.cfg.d')) {
    if (/^\s*force-unsafe-io\b/m.test(readText(join(rootfs, f)))) found.push(`/${f} turns on force-unsafe-io (no fsync while dpkg unpacks)`);
  }
  for (const f of configFiles(rootfs, 'etc/apt/apt.conf', 'etc/apt/apt.conf.d')) {
    const text = readText(join(rootfs, f));
    if (f.endsWith('/99mmdebstrap')) found.push(`/${f} holds mmdebstrap's build options`);
    else if (proxy && text.includes(proxy)) found.push(`/${f} names the build's apt proxy ${proxy}`);
  }
  const forms = withCredentials.flatMap(credentialForms);
  for (const f of credentialFilesIn(rootfs)) {
    const text = readText(join(rootfs, f));
    if (forms.some((c) => text.includes(c))) found.push(`/${f} holds credentials of the build's URLs (the card's apt and npm get none)`);
  }
  if (readText(join(rootfs, POLICY_RC_D)) === POLICY_TEXT) found.push(`${POLICY_RC_D} (pihub's, no service may start) is still there`);
  for (const path of pihubDiversions(rootfs)) found.push(`${path} is still diverted by pihub`);
  return found;
}

/** Refuses to export an image that would carry a build-only setting to the card. */
export function verifyNoBuildLeftovers(rootfs: string, aptProxy: string | null, withCredentials: readonly string[] = []): void {
  const found = buildLeftovers(rootfs, aptProxy, withCredentials);
  if (found.length === 0) return;
  throw new UserError(
    `the image would keep settings meant for the build only:\n${found.map((f) => `  - ${f}`).join('\n')}\n` +
      'a stage or overlay script wrote or kept them; remove them there (pihub removes its own after each step)',
  );
}
