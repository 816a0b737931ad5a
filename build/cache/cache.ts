// Content-addressed snapshots of the root filesystem after each stage, and of exported images.
// An entry is written under a temporary name and renamed when complete, so an interrupted
// build never leaves an entry that looks usable.
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import type { Command, Runner } from '../exec.ts';
import { clearRecords, recordTree, restoreChanges } from './restore.ts';

export interface EntryMeta {
  key: string;
  kind: 'stage' | 'image';
  /** Stage id, or the image file name. */
  label: string;
  created: string;
  lastUsed: string;
  bytes: number;
  /** Files of an image entry, relative to the entry directory. */
  files?: string[];
}

export const DEFAULT_CACHE_DIR = '/var/cache/pihub';
export const DEFAULT_CACHE_LIMIT = 40 * 1024 ** 3;

/** tar options that keep owners, modes, device nodes, hard links, ACLs and extended attributes. */
const TAR_FIDELITY = ['--xattrs', '--xattrs-include=*', '--acls', '--numeric-owner'];

export function snapshotCommand(rootfs: string, file: string): Command {
  return ['tar', ['--create', `--file=${file}`, `--directory=${rootfs}`, ...TAR_FIDELITY, '--sparse', '--use-compress-program=zstd -T0 -3', '.']];
}

export function restoreCommand(rootfs: string, file: string): Command {
  return ['tar', ['--extract', `--file=${file}`, `--directory=${rootfs}`, ...TAR_FIDELITY, '--same-permissions', '--same-owner', '--use-compress-program=zstd -d -T0']];
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export class Cache {
  readonly stagesDir: string;
  readonly imagesDir: string;

  constructor(
    readonly dir: string,
    readonly limit: number = DEFAULT_CACHE_LIMIT,
  ) {
    this.stagesDir = join(dir, 'stages');
    this.imagesDir = join(dir, 'images');
  }

  /** Downloaded packages for one base, shared by every build of it. */
  debsDir(suite: string, arch: string): string {
    const d = join(this.dir, 'debs', `${suite}-${arch}`);
    mkdirSync(join(d, 'partial'), { recursive: true });
    return d;
  }

  ensure(): void {
    for (const d of [this.dir, this.stagesDir, this.imagesDir]) mkdirSync(d, { recursive: true });
    // Cache keys are digests of configs that may hold passwords: keep the cache private.
    chmodSync(this.dir, 0o700);
  }

  snapshotPath(key: string): string {
    return join(this.stagesDir, `${key}.tar.zst`);
  }

  private metaPath(kind: 'stage' | 'image', key: string): string {
    return join(kind === 'stage' ? this.stagesDir : this.imagesDir, `${key}.json`);
  }

  readMeta(kind: 'stage' | 'image', key: string): EntryMeta | undefined {
    try {
      return JSON.parse(readFileSync(this.metaPath(kind, key), 'utf8')) as EntryMeta;
    } catch {
      return undefined;
    }
  }

  /** A stage snapshot exists and is complete (its metadata is written last). */
  hasStage(key: string): boolean {
    return this.readMeta('stage', key) !== undefined && existsSync(this.snapshotPath(key));
  }

  touch(kind: 'stage' | 'image', key: string): void {
    const meta = this.readMeta(kind, key);
    if (!meta) return;
    meta.lastUsed = new Date().toISOString();
    this.writeMeta(meta);
  }

  private writeMeta(meta: EntryMeta): void {
    const path = this.metaPath(meta.kind, meta.key);
    writeFileSync(`${path}.tmp`, `${JSON.stringify(meta, null, 2)}\n`);
    renameSync(`${path}.tmp`, path);
  }

  async saveStage(runner: Runner, key: string, label: string, rootfs: string, step: string): Promise<void> {
    this.ensure();
    const final = this.snapshotPath(key);
    const tmp = `${final}.partial-${process.pid}`;
    try {
      await runner.run(snapshotCommand(rootfs, tmp), { step });
      renameSync(tmp, final);
    } finally {
      rmSync(tmp, { force: true });
    }
    await recordTree(runner, rootfs, key, step);
    const now = new Date().toISOString();
    this.writeMeta({ key, kind: 'stage', label, created: now, lastUsed: now, bytes: statSync(final).size });
    this.prune(this.limit, key);
  }

  async restoreStage(runner: Runner, key: string, rootfs: string, step: string, note?: (line: string) => void): Promise<void> {
    const restore = restoreCommand(rootfs, this.snapshotPath(key));
    // A tree that was this snapshot earlier gets back only what changed since (restore.ts).
    if (!(await restoreChanges(runner, rootfs, key, restore, step, note))) {
      clearRecords(rootfs);
      rmSync(rootfs, { recursive: true, force: true });
      mkdirSync(rootfs, { recursive: true });
      await runner.run(restore, { step });
      await recordTree(runner, rootfs, key, step);
    }
    this.touch('stage', key);
  }

  imageDir(key: string): string {
    return join(this.imagesDir, key);
  }

  hasImage(key: string): boolean {
    const meta = this.readMeta('image', key);
    return meta !== undefined && (meta.files ?? []).every((f) => existsSync(join(this.imageDir(key), f)));
  }

  /** Store export results: `files` are moved from `fromDir` into the cache. */
  saveImage(key: string, label: string, fromDir: string, files: readonly string[]): void {
    this.ensure();
    const final = this.imageDir(key);
    const tmp = `${final}.partial-${process.pid}`;
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(tmp, { recursive: true });
    let bytes = 0;
    for (const f of files) {
      renameSync(join(fromDir, f), join(tmp, f));
      bytes += statSync(join(tmp, f)).size;
    }
    rmSync(final, { recursive: true, force: true });
    renameSync(tmp, final);
    const now = new Date().toISOString();
    this.writeMeta({ key, kind: 'image', label, created: now, lastUsed: now, bytes, files: [...files] });
    this.prune(this.limit, key);
  }

  list(): EntryMeta[] {
    const out: EntryMeta[] = [];
    for (const [kind, dir] of [['stage', this.stagesDir], ['image', this.imagesDir]] as const) {
      if (!existsSync(dir)) continue;
      for (const f of readdirSync(dir)) {
        if (!f.endsWith('.json')) continue;
        const meta = this.readMeta(kind, f.slice(0, -5));
        if (meta) out.push(meta);
      }
    }
    return out.sort((a, b) => a.lastUsed.localeCompare(b.lastUsed));
  }

  remove(meta: EntryMeta): void {
    rmSync(this.metaPath(meta.kind, meta.key), { force: true });
    if (meta.kind === 'stage') rmSync(this.snapshotPath(meta.key), { force: true });
    else rmSync(this.imageDir(meta.key), { recursive: true, force: true });
  }

  /**
   * Evict least recently used entries until the cache fits its limit; the entry just
   * written (`keep`) stays even if it alone is over the limit. Returns what was removed.
   */
  prune(limit = this.limit, keep?: string): EntryMeta[] {
    const entries = this.list();
    let total = entries.reduce((s, e) => s + e.bytes, 0);
    const removed: EntryMeta[] = [];
    for (const e of entries) {
      if (total <= limit) break;
      if (e.key === keep) continue;
      this.remove(e);
      total -= e.bytes;
      removed.push(e);
    }
    // Leftovers of interrupted writes are never used; clear those whose writer is gone.
    for (const dir of [this.stagesDir, this.imagesDir]) {
      if (!existsSync(dir)) continue;
      for (const f of readdirSync(dir)) {
        const m = /\.partial-(\d+)$/.exec(f);
        if (m && !processAlive(Number(m[1]))) rmSync(join(dir, f), { recursive: true, force: true });
      }
    }
    return removed;
  }

  clear(): void {
    rmSync(this.stagesDir, { recursive: true, force: true });
    rmSync(this.imagesDir, { recursive: true, force: true });
    rmSync(join(this.dir, 'debs'), { recursive: true, force: true });
    rmSync(join(this.dir, 'tools'), { recursive: true, force: true });
  }
}
