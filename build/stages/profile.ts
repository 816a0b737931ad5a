// The build profile: where dpkg spent its time in a package installation, from the target's
// dpkg log, for the build log and `npm run bench`. Reporting only: not part of any cache key.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface DpkgProfile {
  unpacked: number;
  configured: number;
  unpackSeconds: number;
  configureSeconds: number;
  triggerSeconds: number;
  slowest: Array<[string, number]>;
}

/**
 * Where dpkg's time went, from its log (one line per action, one-second resolution): each
 * interval is counted to the phase it ends in — unpacking (after `install`/`upgrade`),
 * configuring (after `configure`, per package) or triggers (`trigproc`). The gaps before
 * each `startup` line are apt's own work and are not counted.
 */
export function dpkgProfile(log: string, since: Date): DpkgProfile {
  const p: DpkgProfile = { unpacked: 0, configured: 0, unpackSeconds: 0, configureSeconds: 0, triggerSeconds: 0, slowest: [] };
  const perPackage = new Map<string, number>();
  let last: number | undefined;
  let phase: 'unpack' | 'configure' | 'triggers' | undefined;
  for (const line of log.split('\n')) {
    const m = /^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) (\S+) (\S+) ?(\S*)/.exec(line);
    if (!m) continue;
    const t = Date.parse(`${m[1]!.replace(' ', 'T')}Z`);
    if (t < since.getTime() - 1000) continue;
    const d = last === undefined ? 0 : (t - last) / 1000;
    last = t;
    const [, , action, what, third] = m;
    if (action === 'startup') {
      phase = undefined;
      continue;
    }
    if (action === 'install' || action === 'upgrade') {
      phase = 'unpack';
      p.unpacked += 1;
    } else if (action === 'configure') {
      phase = 'configure';
    } else if (action === 'trigproc') {
      phase = 'triggers';
    }
    if (phase === 'unpack') {
      p.unpackSeconds += d;
    } else if (phase === 'configure') {
      p.configureSeconds += d;
      const pkg = action === 'status' ? third! : what!;
      perPackage.set(pkg, (perPackage.get(pkg) ?? 0) + d);
      if (action === 'status' && what === 'installed') p.configured += 1;
    } else if (phase === 'triggers') {
      p.triggerSeconds += d;
    }
  }
  p.slowest = [...perPackage].sort((a, b) => b[1] - a[1]).slice(0, 5);
  return p;
}

export function noteProfile(rootfs: string, note: (line: string) => void, step: string, since: Date, compileSeconds: number): void {
  let log = '';
  try {
    log = readFileSync(join(rootfs, 'var/log/dpkg.log'), 'utf8');
  } catch {
    return;
  }
  const p = dpkgProfile(log, since);
  const slow = p.slowest.map(([k, s]) => `${k.replace(/:.*/, '')} ${s}s`).join(', ');
  note(
    `profile ${step}: unpack ${p.unpackSeconds}s (${p.unpacked} packages), configure ${p.configureSeconds}s (${p.configured}; slowest: ${slow}), ` +
      `triggers ${p.triggerSeconds}s, Python byte-compiling ${compileSeconds}s`,
  );
}

