// The image's part of the plan: the export (image/export.ts), the SBOM, the cache and deploy/,
// as operations the dry run prints and the executor runs; for an unchanged image, the cached one
// handed over again. What ends in deploy/ is left in the run's scratch (`deployed`).
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Cache } from '../cache/cache.ts';
import { verifyNoBuildLeftovers } from '../chroot/leftovers.ts';
import { placeInDeploy, type Owner } from '../deploy/deploy.ts';
import { pihubVersion } from '../core/version.ts';
import { exportFiles, exportOps, exportState } from '../image/export.ts';
import type { BuildSummary } from '../image/manifest.ts';
import type { ImageNames } from '../image/naming.ts';
import { sbomName, writeSbom } from '../release/sbom.ts';
import { sbomModifications, securityRecord, type SecurityRecord } from '../release/security.ts';
import type { Op, RunState } from '../core/ops.ts';
import type { BuildConfig } from '../config/schema.ts';

export interface DeliverInput {
  config: BuildConfig;
  paths: { rootfs: string; export: string; deploy: string; marker: string };
  /** URLs with credentials the build gave apt and npm: none may be left in the image. */
  credentials: readonly string[];
  /** The image's cache key; the last stage's key (the work tree's marker once exported). */
  key: string | undefined;
  lastStageKey: string | undefined;
  date: string;
  names: ImageNames;
  /** The image of these very inputs is in the cache. */
  reuse: boolean;
  /** The manifest's summary of the build (the export adds the image's own facts, the security record). */
  summary: BuildSummary;
  cache: Cache;
  /** When the SBOM says it was made (SOURCE_DATE_EPOCH or now). */
  sbomCreated: string;
  /** Who ran `sudo pihub build`: the image in deploy/ is theirs. */
  owner?: Owner;
}

/** The files deploy/ received, once the image's operations have run. */
export function deployed(st: RunState): string[] {
  return (st.scratch.deployed as string[] | undefined) ?? [];
}

export function imageOps(d: DeliverInput): Op[] {
  const { paths, names } = d;
  const privateFiles = new Set([names.compressed]);
  const need = (key: string | undefined): string => {
    if (key === undefined) throw new Error('the image has no cache key: this plan was made only to be shown');
    return key;
  };
  if (d.reuse) {
    return [{
      kind: 'do',
      text: `the image of these inputs is in the cache: ${names.compressed} and its files → ${paths.deploy}`,
      fn: (st) => {
        const key = need(d.key);
        const meta = d.cache.readMeta('image', key)!;
        d.cache.touch('image', key);
        st.scratch.deployed = placeInDeploy(d.cache.imageDir(key), meta.files ?? [], paths.deploy, privateFiles, d.owner);
      },
    }];
  }
  const out = join(paths.export, 'out');
  const security = (st: RunState) => st.scratch.security as SecurityRecord | undefined;
  const files = [...exportFiles(names), sbomName(names.base)];
  return [
    {
      kind: 'do',
      text: 'check: no build-only setting left in the image (force-unsafe-io, the apt proxy, policy-rc.d, pihub diversions, credentials)',
      fn: () => verifyNoBuildLeftovers(paths.rootfs, d.config.apt_proxy, d.credentials),
    },
    // The export moves the firmware files aside for a while: no finished stage meanwhile.
    { kind: 'do', hidden: true, text: 'the work tree holds no finished stage', fn: () => rmSync(paths.marker, { force: true }) },
    {
      kind: 'do',
      text: 'read what pihub fixed on the card, and why the rest does not reach it (/usr/share/pihub/security, /var/lib/pihub), for the manifest and the SBOM',
      fn: (st) => { st.scratch.security = securityRecord(paths.rootfs); },
    },
    ...exportOps({
      config: d.config,
      paths: { rootfs: paths.rootfs, dir: paths.export },
      seed: d.key,
      date: d.date,
      manifest: (st) => ({ ...d.summary, security: security(st) ?? null }),
    }),
    {
      kind: 'step',
      title: 'SBOM (SPDX) from the dpkg database',
      body: [{
        kind: 'do',
        text: `SBOM (SPDX 2.3) from the root file system's dpkg database → ${sbomName(names.base)}`,
        fn: (st) => {
          writeSbom(paths.rootfs, out, {
            name: names.base,
            file: names.image,
            rawSha256: exportState(st).rawSha256!,
            suite: d.config.base.suite,
            created: d.sbomCreated,
            tool: `pihub-${pihubVersion()}`,
            modified: sbomModifications(security(st), paths.rootfs),
          });
        },
      }],
    },
    {
      kind: 'do',
      text: `keep the image in the cache (images/${d.key ?? '<key>'}), then hand its files to ${paths.deploy} under their final names, each once complete`,
      fn: async (st) => {
        const key = need(d.key);
        writeFileSync(paths.marker, need(d.lastStageKey));
        await d.cache.saveImage(key, names.compressed, out, files);
        st.scratch.deployed = placeInDeploy(d.cache.imageDir(key), files, paths.deploy, privateFiles, d.owner);
        rmSync(paths.export, { recursive: true, force: true });
      },
    },
  ];
}
