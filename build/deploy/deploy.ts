// deploy/: what a build hands over. Files land under their final names only when complete,
// and what may hold password hashes (the image) is readable by its owner only.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { placeFile, type FileOwner } from '../core/files.ts';
import type { BuildSummary } from '../image/manifest.ts';
export { pihubVersion } from '../core/version.ts';
import { pihubVersion } from '../core/version.ts';
import type { BuildConfig } from '../config/schema.ts';

export type Owner = FileOwner;

/** Who ran `sudo pihub build`: private outputs are theirs, so they can flash them without root. */
export function invokingUser(env: NodeJS.ProcessEnv): Owner | undefined {
  const uid = Number(env.SUDO_UID);
  const gid = Number(env.SUDO_GID);
  if (!env.SUDO_UID || !Number.isInteger(uid) || !Number.isInteger(gid) || (process.getuid?.() ?? -1) !== 0) return undefined;
  return { uid, gid };
}

/**
 * Put files into deploy/ under their final names only when complete. `privateFiles` (the image:
 * it may hold password hashes) are readable by their owner only: root, or whoever ran sudo.
 */
export function placeInDeploy(fromDir: string, files: readonly string[], deploy: string, privateFiles: ReadonlySet<string>, owner?: Owner): string[] {
  mkdirSync(deploy, { recursive: true });
  return files.map((f) => {
    const final = join(deploy, f);
    placeFile(join(fromDir, f), final, privateFiles.has(f) ? { mode: 0o600, owner } : { mode: 0o644 });
    return final;
  });
}


/** The manifest's summary of the build (export adds the image's own facts). Public: no secret goes in. */
export function buildSummary(c: BuildConfig, date: string, stages: ReadonlyArray<{ def: { id: string }; key?: string }>): BuildSummary {
  return {
    name: c.name,
    date,
    suite: c.base.suite,
    architecture: c.base.architecture,
    hostname: c.hostname,
    users: c.users.map((u) => ({ name: u.name, admin: u.admin })),
    hub: { port: c.hub.port, admin_group: c.hub.admin_group, users_group: c.hub.users_group },
    overlays: c.overlays,
    stages: stages.map((s) => ({ id: s.def.id, key: s.key })),
    pihub: pihubVersion(),
  };
}
