// What the build puts into the target only for itself, and the check before export that none
// of it reaches the card: no fsync-less dpkg, no build machine's proxy, no policy-rc.d, no
// diversion of pihub's.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../errors.ts';
import { POLICY_TEXT, POLICY_RC_D } from './chroot.ts';

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

/** Build-only settings left in a root filesystem, one sentence each (empty when clean). */
export function buildLeftovers(rootfs: string, aptProxy: string | null): string[] {
  const found: string[] = [];
  for (const f of configFiles(rootfs, 'etc/dpkg/dpkg.cfg', 'etc/dpkg/dpkg.cfg.d')) {
    if (/^\s*force-unsafe-io\b/m.test(readText(join(rootfs, f)))) found.push(`/${f} turns on force-unsafe-io (no fsync while dpkg unpacks)`);
  }
  for (const f of configFiles(rootfs, 'etc/apt/apt.conf', 'etc/apt/apt.conf.d')) {
    const text = readText(join(rootfs, f));
    if (f.endsWith('/99mmdebstrap')) found.push(`/${f} holds mmdebstrap's build options`);
    else if (aptProxy && text.includes(aptProxy)) found.push(`/${f} names the build's apt proxy ${aptProxy}`);
  }
  if (readText(join(rootfs, POLICY_RC_D)) === POLICY_TEXT) found.push(`${POLICY_RC_D} (pihub's, no service may start) is still there`);
  for (const path of pihubDiversions(rootfs)) found.push(`${path} is still diverted by pihub`);
  return found;
}

/** Refuses to export an image that would carry a build-only setting to the card. */
export function verifyNoBuildLeftovers(rootfs: string, aptProxy: string | null): void {
  const found = buildLeftovers(rootfs, aptProxy);
  if (found.length === 0) return;
  throw new UserError(
    `the image would keep settings meant for the build only:\n${found.map((f) => `  - ${f}`).join('\n')}\n` +
      'a stage or overlay script wrote or kept them; remove them there (pihub removes its own after each step)',
  );
}
