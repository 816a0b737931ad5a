// Content-addressed snapshots of the root filesystem after each stage, and of exported images.
// An entry is written under a temporary name and renamed when complete, so an interrupted
// build never leaves an entry that looks usable.
import { randomBytes } from 'node:crypto';
import { existsSync, linkSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync, chmodSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { InputError } from '../core/errors.ts';
import type { Command, Runner } from '../core/exec.ts';
import { fsyncPath, moveFile, readRegularFile, sha256File, writeFileSafely } from '../core/files.ts';
import { SharedLock } from '../core/lock.ts';
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
  /** Size and sha256 of each file of the entry (`snapshot` for a stage), checked before it is used. */
  checksums?: Record<string, FileSum>;
}

export interface FileSum {
  bytes: number;
  sha256: string;
}

export const DEFAULT_CACHE_DIR = '/var/cache/pihub';

/**
 * pihub's mark on a folder it manages as its cache, in the Cache Directory Tagging format (so
 * backup tools may skip it); a folder without it is never cleared, pruned or chmod-ed.
 */
export const MARKER_FILE = 'CACHEDIR.TAG';
const MARKER_LINE = '# This folder is a pihub cache';
const MARKER_TEXT = `Signature: 8a477f597d28d172789f06886806bc55\n${MARKER_LINE} (stage snapshots, images, packages): \`pihub cache list|prune|clear\` manage it.\n`;
/** Everything a cache made before the marker holds, and what `clear` removes of it. */
const LEGACY_ENTRIES = new Set(['stages', 'images', 'debs', 'tools', 'locks', 'salt']);
const REMOVABLE = ['stages', 'images', 'debs', 'tools'];
export const DEFAULT_CACHE_LIMIT = 40 * 1024 ** 3;

/** tar options that keep owners, modes, device nodes, hard links, ACLs and extended attributes. */
const TAR_FIDELITY = ['--xattrs', '--xattrs-include=*', '--acls', '--numeric-owner'];

/** Programs a stage's save or restore runs, whatever the cache holds: tar with zstd, and find, getfattr, setfattr for the records (restore.ts). */
export const CACHE_TOOLS: readonly string[] = ['tar', 'zstd', 'find', 'getfattr', 'setfattr'];

export function snapshotCommand(rootfs: string, file: string): Command {
  return ['tar', ['--create', `--file=${file}`, `--directory=${rootfs}`, ...TAR_FIDELITY, '--sparse', '--use-compress-program=zstd -T0 -3', '.']];
}

export function restoreCommand(rootfs: string, file: string): Command {
  return ['tar', ['--extract', `--file=${file}`, `--directory=${rootfs}`, ...TAR_FIDELITY, '--same-permissions', '--same-owner', '--use-compress-program=zstd -d -T0']];
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

  /** Builds share the cache; `pihub cache clear|prune` have it alone. */
  get locks(): SharedLock {
    return new SharedLock(join(this.dir, 'locks'));
  }

  /** Entries that other running builds are about to restore: a build's prune leaves them. */
  keysInUse(): Set<string> {
    return new Set(this.locks.sharedHolders().flatMap((h) => h.keys ?? []));
  }

  /** Downloaded packages for one base, shared by every build of it. */
  debsDir(suite: string, arch: string): string {
    const d = join(this.dir, 'debs', `${suite}-${arch}`);
    mkdirSync(join(d, 'partial'), { recursive: true });
    return d;
  }

  /**
   * What the folder is: `missing`, `empty`, `pihub` (it has pihub's marker), `legacy` (a cache
   * made before the marker, known by its layout) or `foreign` (anything else: never managed).
   */
  state(): { state: 'missing' | 'empty' | 'pihub' | 'legacy' | 'foreign'; why?: string } {
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return { state: 'missing' };
      return { state: 'foreign', why: code === 'ENOTDIR' ? 'is not a folder' : `cannot be read (${code ?? (err as Error).message})` };
    }
    if (!names.length) return { state: 'empty' };
    if (names.includes(MARKER_FILE)) {
      let text = '';
      try {
        text = readRegularFile(join(this.dir, MARKER_FILE), 4096, { follow: false }).toString('utf8');
      } catch {
        // not a plain file: not pihub's
      }
      return text.includes(MARKER_LINE) ? { state: 'pihub' } : { state: 'foreign', why: `has a ${MARKER_FILE} that is not pihub's` };
    }
    // (A salt's or the marker's temporary name is left by a build killed while it wrote them.)
    const other = names.filter((n) => !LEGACY_ENTRIES.has(n) && !/^(salt|\.CACHEDIR\.TAG)\.partial-\d+$/.test(n));
    if (other.length) return { state: 'foreign', why: `holds ${other.slice(0, 3).map((n) => `\`${n}\``).join(', ')}${other.length > 3 ? ' and more,' : ''} and has no ${MARKER_FILE} of pihub's` };
    // What a cache clear would remove is there: only with the salt every build made is it pihub's.
    if (names.some((n) => REMOVABLE.includes(n)) && !this.readSalt()?.match(/^[0-9a-f]{64}$/)) {
      return { state: 'foreign', why: `has neither pihub's ${MARKER_FILE} nor the salt of a pihub cache` };
    }
    return { state: 'legacy' };
  }

  /** Refuse a folder that is not a pihub cache (nor empty, nor new): pihub would remove what is in it. */
  verifyIsCache(): 'missing' | 'empty' | 'pihub' | 'legacy' {
    const { state, why } = this.state();
    if (state === 'foreign') {
      throw new InputError(
        `the cache folder ${this.dir} (--cache-dir) is not a pihub cache: it ${why}; pihub keeps its cache in a folder of its own and \`pihub cache clear\` empties it, so choose an empty or new folder`,
      );
    }
    return state;
  }

  /**
   * Make the folder a pihub cache: a new one (owner-only), an empty one (its mode is left as it
   * is; what holds secrets goes into owner-only folders) or one pihub made before the marker.
   */
  ensure(): void {
    let state = this.verifyIsCache();
    if (state === 'missing') {
      mkdirSync(dirname(this.dir), { recursive: true });
      try {
        mkdirSync(this.dir, { mode: 0o700 });
        // Made just now: pihub's to make private (the salt, snapshots with password hashes).
        chmodSync(this.dir, 0o700);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      state = this.verifyIsCache();
    }
    if (state !== 'pihub') writeFileSafely(join(this.dir, MARKER_FILE), MARKER_TEXT, { mode: 0o644 });
    for (const d of [this.stagesDir, this.imagesDir]) {
      try {
        mkdirSync(d, { mode: 0o700 });
        chmodSync(d, 0o700);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
    }
  }

  /** Whether there is a pihub cache to list, prune or clear (never a folder that is not one). */
  exists(): boolean {
    const state = this.verifyIsCache();
    return state === 'pihub' || state === 'legacy';
  }

  private get saltPath(): string {
    return join(this.dir, 'salt');
  }

  /** This cache's salt for secrets in cache keys (cache/keys.ts), if it has one yet. */
  readSalt(): string | undefined {
    try {
      return readRegularFile(this.saltPath, 4096, { follow: false }).toString('utf8').trim() || undefined;
    } catch {
      return undefined;
    }
  }

  /** The salt, made on first use: random, readable by root only, never copied out of the cache. */
  salt(): string {
    const existing = this.readSalt();
    if (existing) return existing;
    this.ensure();
    const tmp = `${this.saltPath}.partial-${process.pid}`;
    writeFileSync(tmp, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600 });
    try {
      // link() fails if another build made the salt first: then both use that one.
      linkSync(tmp, this.saltPath);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    } finally {
      rmSync(tmp, { force: true });
    }
    return this.readSalt()!;
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
    writeFileSafely(this.metaPath(meta.kind, meta.key), `${JSON.stringify(meta, null, 2)}\n`, { mode: 0o644, fsync: true });
  }

  /** Size and digest of a file, made durable first: a crash must not leave a complete-looking entry with lost data. */
  private async seal(path: string): Promise<FileSum> {
    fsyncPath(path);
    return { bytes: statSync(path).size, sha256: await sha256File(path) };
  }

  /**
   * What is wrong with an entry's files (a crash of the machine can leave them truncated or
   * holey under a complete-looking record), or undefined when each has its recorded size and digest.
   */
  async verify(kind: 'stage' | 'image', key: string): Promise<string | undefined> {
    const meta = this.readMeta(kind, key);
    if (!meta) return 'it has no record';
    const files = kind === 'stage' ? { snapshot: this.snapshotPath(key) } : Object.fromEntries((meta.files ?? []).map((f) => [f, join(this.imageDir(key), f)]));
    for (const [name, path] of Object.entries(files)) {
      const want = meta.checksums?.[name];
      if (!want) return `${name} has no recorded checksum`;
      let bytes: number;
      try {
        bytes = statSync(path).size;
      } catch {
        return `${name} is missing`;
      }
      if (bytes !== want.bytes) return `${name} has ${bytes} bytes instead of ${want.bytes}`;
      if ((await sha256File(path)) !== want.sha256) return `${name} does not match its recorded sha256`;
    }
    return undefined;
  }

  /** Where a snapshot is written before it is complete. */
  partialSnapshotPath(key: string): string {
    return `${this.snapshotPath(key)}.partial-${process.pid}`;
  }

  /** Make a finished snapshot (written to partialSnapshotPath) an entry: durable, checksummed, then named. */
  async commitStage(key: string, label: string): Promise<void> {
    const tmp = this.partialSnapshotPath(key);
    const sum = await this.seal(tmp);
    renameSync(tmp, this.snapshotPath(key));
    const now = new Date().toISOString();
    this.writeMeta({ key, kind: 'stage', label, created: now, lastUsed: now, bytes: sum.bytes, checksums: { snapshot: sum } });
    this.prune(this.limit, key);
  }

  /** Snapshot a tree as the stage entry `key` (the build does the same through its plan). */
  async saveStage(runner: Runner, key: string, label: string, rootfs: string, step: string): Promise<void> {
    this.ensure();
    try {
      await runner.run(snapshotCommand(rootfs, this.partialSnapshotPath(key)), { step });
      await this.commitStage(key, label);
    } finally {
      rmSync(this.partialSnapshotPath(key), { force: true });
    }
    await recordTree(runner, rootfs, key, step);
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
  async saveImage(key: string, label: string, fromDir: string, files: readonly string[]): Promise<void> {
    this.ensure();
    const final = this.imageDir(key);
    const tmp = `${final}.partial-${process.pid}`;
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(tmp, { recursive: true });
    let bytes = 0;
    const checksums: Record<string, FileSum> = {};
    for (const f of files) {
      moveFile(join(fromDir, f), join(tmp, f));
      checksums[f] = await this.seal(join(tmp, f));
      bytes += checksums[f].bytes;
    }
    // Another build of the same inputs may have stored it meanwhile, and be placing it in its deploy/.
    if (this.hasImage(key)) {
      rmSync(tmp, { recursive: true, force: true });
      return;
    }
    rmSync(final, { recursive: true, force: true });
    renameSync(tmp, final);
    const now = new Date().toISOString();
    this.writeMeta({ key, kind: 'image', label, created: now, lastUsed: now, bytes, files: [...files], checksums });
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

  /** Remove an entry that failed verification (its record first: it never looks usable again). */
  discard(kind: 'stage' | 'image', key: string): void {
    this.remove({ key, kind, label: '', created: '', lastUsed: '', bytes: 0 });
  }

  remove(meta: EntryMeta): void {
    rmSync(this.metaPath(meta.kind, meta.key), { force: true });
    if (meta.kind === 'stage') rmSync(this.snapshotPath(meta.key), { force: true });
    else rmSync(this.imageDir(meta.key), { recursive: true, force: true });
  }

  /**
   * Evict least recently used entries until the cache fits its limit; the entry just
   * written (`keep`) stays even if it alone is over the limit, and so do the entries other
   * running builds will restore. Returns what was removed.
   */
  prune(limit = this.limit, keep?: string): EntryMeta[] {
    const entries = this.list();
    let total = entries.reduce((s, e) => s + e.bytes, 0);
    const removed: EntryMeta[] = [];
    const inUse = this.keysInUse();
    for (const e of entries) {
      if (total <= limit) break;
      if (e.key === keep || inUse.has(e.key)) continue;
      this.remove(e);
      total -= e.bytes;
      removed.push(e);
    }
    // Leftovers of interrupted writes are never used. Their names carry only a pid, which may
    // be another namespace's (a build in a container): only with no other build sharing the
    // cache is every one that is not this process's a leftover.
    if (this.locks.sharedHolders().length) return removed;
    for (const dir of [this.stagesDir, this.imagesDir]) {
      if (!existsSync(dir)) continue;
      for (const f of readdirSync(dir)) {
        const m = /\.partial-(\d+)$/.exec(f);
        if (m && Number(m[1]) !== process.pid) rmSync(join(dir, f), { recursive: true, force: true });
      }
    }
    return removed;
  }

  clear(): void {
    if (!this.exists()) return;
    rmSync(this.stagesDir, { recursive: true, force: true });
    rmSync(this.imagesDir, { recursive: true, force: true });
    rmSync(join(this.dir, 'debs'), { recursive: true, force: true });
    rmSync(join(this.dir, 'tools'), { recursive: true, force: true });
  }
}
