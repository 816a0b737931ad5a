// How a stage runs, as operations: its steps between policy-rc.d and its removal, the values it
// reads, the native tools root, then its snapshot; or its restore from the cache. With the step
// kinds (stages/steps/) this is the code whose every import enters each stage's cache key
// (plan/keys.ts: engineClosure).
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { installPolicyRcD, removePolicyRcD } from '../chroot/chroot.ts';
import { toolsRootOps } from '../chroot/tools.ts';
import { restoreCommand, snapshotCommand, type Cache } from '../cache/cache.ts';
import { recordsDir, recordTree } from '../cache/restore.ts';
import type { StageDef } from '../stages/load.ts';
import { DEBIAN_ARCHIVE_KEYRING, mmdebstrapAptOptions, trustOnly, type BuildPaths, type PlanContext, type Step } from '../stages/step.ts';
import { removeCredentialsOp, writeCredentialsOp } from '../stages/credentials.ts';
import { valueOps } from '../stages/values.ts';
import type { Op, RunState } from '../core/ops.ts';

/** The work tree records which stage's result it holds. */
export const MARKER = 'rootfs.key';
/** Restoring a snapshot of a full root filesystem takes about this long here: quicker stages are not saved. */
export const SNAPSHOT_MIN_MS = 20_000;

export interface PlanPaths extends BuildPaths {
  /** Scratch for the export, inside the work tree. */
  export: string;
  marker: string;
}

const hidden = (text: string, fn: (st: RunState) => void): Op => ({ kind: 'do', hidden: true, text, fn });

export function restoreOps(stage: StageDef, key: string, paths: PlanPaths, cache: Cache): Op[] {
  return [
    hidden('the work tree holds no finished stage', () => rmSync(paths.marker, { force: true })),
    {
      kind: 'do',
      text: `put ${paths.rootfs} back to the snapshot: when it was that snapshot earlier in this boot, only the entries changed since then are removed and extracted again (${restoreCommand(paths.rootfs, cache.snapshotPath(key)).flat().join(' ')} with a member list); otherwise it is emptied and restored in full`,
      fn: (st) => cache.restoreStage(st.runner, key, paths.rootfs, `restore ${stage.id}`, (line) => st.note(`stage ${stage.id}: ${line}`)),
    },
    hidden('mark the entry used and the work tree as this stage', () => {
      cache.touch('stage', key);
      writeFileSync(paths.marker, key);
    }),
  ];
}

function saveOps(stage: StageDef, key: string, paths: PlanPaths, cache: Cache): Op[] {
  return [{
    kind: 'if',
    text: `the stage took ${SNAPSHOT_MIN_MS / 1000} s or more (a quicker one runs again rather than being restored)`,
    test: (st) => Date.now() - (st.scratch.stageStarted as number) >= SNAPSHOT_MIN_MS,
    then: [{
      kind: 'step',
      title: 'save to cache',
      body: [
        hidden('the cache directory exists', () => cache.ensure()),
        {
          kind: 'try',
          body: [
            { kind: 'run', command: snapshotCommand(paths.rootfs, cache.partialSnapshotPath(key)), step: `save ${stage.id} to cache` },
            { kind: 'do', text: 'record it in the cache (size and sha256, made durable), then prune the cache to its limit', fn: () => cache.commitStage(key, stage.id) },
            { kind: 'do', text: `record each entry's inode and change time beside the work tree (${recordsDir(paths.rootfs)}), so a later restore of this stage puts back only what changed`, fn: (st) => recordTree(st.runner, paths.rootfs, key, `save ${stage.id} to cache`) },
          ],
          finally: [hidden('remove a partial snapshot', () => rmSync(cache.partialSnapshotPath(key), { force: true }))],
        },
      ],
    }],
    else: [{
      kind: 'do',
      hidden: true,
      text: 'say why it is not cached',
      fn: (st) => st.note(`stage ${stage.id}: not cached (ran in ${Math.round((Date.now() - (st.scratch.stageStarted as number)) / 1000)} s, quicker than a restore)`),
    }],
  }];
}

/** The native tools root's mmdebstrap: the archive's keyring only, the build's proxy and credentials. */
function toolsMmdebstrap(ctx: PlanContext): { options: string[]; prepare: Op } {
  const trust = trustOnly(ctx.keyring ?? DEBIAN_ARCHIVE_KEYRING, ctx.paths);
  return { options: [...trust.options, ...mmdebstrapAptOptions(ctx)], prepare: trust.prepare };
}

export function stageRunOps(ctx: PlanContext, steps: readonly Step[], key: string | undefined, cache: Cache, withTools: boolean): Op[] {
  const { stage, paths } = ctx;
  const rootfs = paths.rootfs;
  const p = paths as PlanPaths;
  const stepOps: Op[] = steps.map((step) => {
    const own = step.ops(ctx);
    return {
      kind: 'step',
      title: step.title,
      body: [
        // Before every step that works in an existing target (mmdebstrap sets up its own).
        hidden('keep services from starting: policy-rc.d', (st) => {
          if (!st.scratch.policy && existsSync(join(rootfs, 'usr/sbin'))) st.scratch.policy = installPolicyRcD(rootfs);
        }),
        ...(step.usesPackageCache ? [{ kind: 'lock', path: `${paths.debs}.lock`, text: 'one apt at a time on the package cache', body: own } as Op] : own),
      ],
    };
  });
  const work: Op[] = [
    ...(withTools ? toolsRootOps(ctx.config, paths.cache, ctx.release, `${stage.id}: native tools`, toolsMmdebstrap(ctx)) : []),
    ...valueOps(ctx.config, stage.reads, stage.id),
    hidden('note the start', (st) => { st.scratch.stageStarted = Date.now(); }),
    {
      kind: 'try',
      body: stepOps,
      finally: [{
        kind: 'do',
        text: 'remove policy-rc.d (it kept services from starting during the stage)',
        fn: (st) => {
          if (st.scratch.policy) removePolicyRcD(rootfs);
          st.scratch.policy = false;
        },
      }],
    },
  ];
  return [
    hidden('the work tree holds no finished stage', () => rmSync(p.marker, { force: true })),
    // The credentials' files exist only while the stage runs.
    ...(ctx.credentials ? [{ kind: 'try', body: [writeCredentialsOp(ctx.credentials, paths.work), ...work], finally: [removeCredentialsOp(paths.work)] } as Op] : work),
    // Saved even with --no-cache: that flag means "do not reuse", and the fresh result refreshes the cache.
    ...(key ? saveOps(stage, key, p, cache) : []),
    hidden('mark the work tree as this stage', () => { if (key) writeFileSync(p.marker, key); }),
  ];
}
