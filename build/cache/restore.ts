// Putting a work tree back to a stage snapshot it was a moment ago, by restoring only what
// changed since: after a config change the tree holds that snapshot plus the later stages'
// edits, and restoring all of it (some 2 GB, 100 000 files) was most of the rebuild.
//
// When the tree equals a snapshot (right after saving or restoring it), each entry's inode
// number and change time (ctime) are recorded. The kernel sets ctime on every change of an
// inode's content, owner, mode, extended attributes or link count, and on the directory of
// every entry created, removed or renamed, and no program can set it back. So an entry whose
// inode and ctime are still the recorded ones is still as it was in the snapshot; every other
// entry is removed and extracted again from the snapshot (one pass of tar over it), and
// directories that changed in place get their metadata back from it. The record lives beside
// the tree (`rootfs.records/`), never in it; anything unexpected (no record, the wall clock
// stepped since the record, a name that is not plain ASCII where it matters, most of the tree
// changed) falls back to a full restore.
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Command, Runner } from '../core/exec.ts';

export interface Entry {
  ino: string;
  ctime: string;
  /** find's %y: f d l b c p s */
  type: string;
}

/** Entries by path as find prints it from the tree's root (`.`, `./etc`, …), bytes kept as latin1. */
export type Walk = Map<string, Entry>;

/** find writes the walk to a file: NUL-separated `inode ctime type path`. */
export function walkCommand(out: string): Command {
  return ['find', ['.', '-xdev', '-fprintf', out, '%i %C@ %y %p\\0']];
}

export function parseWalk(data: Buffer): Walk {
  const walk: Walk = new Map();
  for (const rec of data.toString('latin1').split('\0')) {
    if (!rec) continue;
    const a = rec.indexOf(' ');
    const b = rec.indexOf(' ', a + 1);
    const c = rec.indexOf(' ', b + 1);
    walk.set(rec.slice(c + 1), { ino: rec.slice(0, a), ctime: rec.slice(a + 1, b), type: rec.slice(b + 1, c) });
  }
  return walk;
}

export interface RestorePlan {
  /** Entries to delete (with everything below them). */
  remove: string[];
  /** Snapshot members to extract: removed or missing entries, and directories to reset. */
  extract: string[];
  /** Directories kept in place whose metadata (mode, owner, times, xattrs, ACLs) is set again from the snapshot. */
  dirs: string[];
}

function parentOf(path: string): string | undefined {
  return path === '.' ? undefined : dirname(path);
}

/** What to do to turn the tree `now` back into the snapshot the tree was when `before` was recorded. */
export function planRestore(before: Walk, now: Walk): RestorePlan {
  const removed = new Set<string>();
  const extract = new Set<string>();
  const dirs = new Set<string>();
  const underRemoved = (p: string) => {
    for (let q = parentOf(p); q !== undefined; q = parentOf(q)) if (removed.has(q)) return true;
    return false;
  };
  // find lists a directory before what is in it.
  for (const [p, n] of now) {
    if (underRemoved(p)) continue;
    const b = before.get(p);
    // tar stores no sockets: a snapshot never has one.
    if (!b || b.ino !== n.ino || b.type !== n.type || n.type === 's') removed.add(p);
    else if (b.ctime !== n.ctime) {
      if (n.type === 'd') dirs.add(p);
      else removed.add(p);
    }
  }
  for (const [p, b] of before) {
    if (b.type === 's') continue;
    if (!now.has(p) || removed.has(p) || underRemoved(p)) extract.add(p);
  }
  // A file extracted anew is a new inode: its other hard links in the snapshot must be made
  // again too, or they would keep the old inode and no longer share it.
  const links = new Map<string, string[]>();
  for (const [p, b] of before) if (b.type === 'f') links.set(b.ino, [...(links.get(b.ino) ?? []), p]);
  for (const p of [...extract]) {
    for (const q of links.get(before.get(p)!.ino) ?? []) {
      if (extract.has(q)) continue;
      extract.add(q);
      if (now.has(q)) removed.add(q);
    }
  }
  // Removing and creating entries changes their directory's times: reset those too.
  for (const p of [...removed, ...extract]) {
    const parent = parentOf(p);
    if (parent !== undefined && !extract.has(parent) && before.has(parent)) dirs.add(parent);
  }
  return { remove: [...removed], extract: [...extract, ...dirs], dirs: [...dirs] };
}

interface RecordMeta {
  key: string;
  bootId: string;
  /** Wall clock minus time since boot: changes when the wall clock is stepped. */
  clockOffset: number;
}

function bootId(): string {
  return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
}

function clockOffset(): number {
  return Date.now() / 1000 - Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]);
}

export function recordsDir(rootfs: string): string {
  return `${rootfs}.records`;
}

// More than a whole chain of stages (eight in the default image): after a build of another
// config in the same work tree (an overlay, another proxy), the record of the last
// stage both configs share is still there, and switching back restores only what differs.
// Each record is a walk of the tree: some 10 MB for the default image.
const KEEP_RECORDS = 12;

/** Remember the tree as it is now, as snapshot `key`. */
export async function recordTree(runner: Runner, rootfs: string, key: string, step: string): Promise<void> {
  const dir = recordsDir(rootfs);
  mkdirSync(dir, { recursive: true });
  const walk = join(dir, `${key}.walk`);
  const tmp = `${walk}.partial`;
  rmSync(join(dir, `${key}.json`), { force: true });
  await runner.run(walkCommand(tmp), { cwd: rootfs, step });
  renameSync(tmp, walk);
  const meta: RecordMeta = { key, bootId: bootId(), clockOffset: clockOffset() };
  writeFileSync(join(dir, `${key}.json`), `${JSON.stringify(meta)}\n`);
  // Keep the newest few: each stays valid until its snapshot is restored in full.
  const metas = readdirSync(dir).filter((f) => f.endsWith('.json')).map((f) => ({ f, t: statSync(join(dir, f)).mtimeMs })).sort((a, b) => b.t - a.t);
  for (const { f } of metas.slice(KEEP_RECORDS)) {
    rmSync(join(dir, f), { force: true });
    rmSync(join(dir, f.replace(/\.json$/, '.walk')), { force: true });
  }
}

/** Forget every record: the tree is about to be replaced. */
export function clearRecords(rootfs: string): void {
  rmSync(recordsDir(rootfs), { recursive: true, force: true });
}

function usableRecord(rootfs: string, key: string): Walk | undefined {
  const dir = recordsDir(rootfs);
  let meta: RecordMeta;
  try {
    meta = JSON.parse(readFileSync(join(dir, `${key}.json`), 'utf8')) as RecordMeta;
  } catch {
    return undefined;
  }
  // A wall clock set back could give a later change the recorded ctime: trust records only
  // from this boot, with the clock running as it did then.
  if (meta.key !== key || meta.bootId !== bootId() || Math.abs(meta.clockOffset - clockOffset()) > 2) return undefined;
  return parseWalk(readFileSync(join(dir, `${key}.walk`)));
}

/** Extract only the listed members (NUL-separated in `list`), with the same fidelity as a full restore. */
export function extractMembersCommand(restore: Command, list: string): Command {
  return [restore[0], [...restore[1], '--no-recursion', '--null', '--verbatim-files-from', `--files-from=${list}`]];
}

const pathBytes = (rootfs: string, p: string) => Buffer.concat([Buffer.from(`${rootfs}/`), Buffer.from(p, 'latin1')]);
const plainAscii = (p: string) => /^[\x20-\x7e]*$/.test(p);

/**
 * Put the tree back to snapshot `key` by redoing only what changed since it was recorded as
 * that snapshot. `restore` is the full restore command (tar with its fidelity options).
 * Returns false, having changed nothing, when it cannot be sure: then restore in full.
 */
export async function restoreChanges(
  runner: Runner,
  rootfs: string,
  key: string,
  restore: Command,
  step: string,
  note: (line: string) => void = () => {},
): Promise<boolean> {
  if (!existsSync(rootfs)) return false;
  const before = usableRecord(rootfs, key);
  if (!before) return false;
  const scratch = join(recordsDir(rootfs), 'now.walk');
  await runner.run(walkCommand(scratch), { cwd: rootfs, step });
  const now = parseWalk(readFileSync(scratch));
  rmSync(scratch, { force: true });
  const plan = planRestore(before, now);
  if (!before.has('.') || plan.remove.includes('.')) return false;
  // Past a quarter of a big tree, removing and extracting piecemeal is no quicker than all of it.
  if (plan.extract.length > 5000 && plan.extract.length > before.size / 4) {
    note(`${plan.extract.length} of ${before.size} entries changed: restoring in full`);
    return false;
  }
  // xattrs are cleared from kept directories before tar sets the snapshot's; their names go to
  // getfattr/setfattr as arguments, so only plain names are handled here.
  if (!plan.dirs.every(plainAscii)) return false;
  note(`restoring ${plan.extract.length} of ${before.size} entries (${plan.remove.length} removed first); the rest is unchanged since the snapshot`);
  for (const p of plan.remove) rmSync(pathBytes(rootfs, p), { recursive: true, force: true });
  if (plan.dirs.length) await clearXattrs(runner, rootfs, plan.dirs, step);
  const list = join(recordsDir(rootfs), 'extract.list');
  writeFileSync(list, Buffer.from(plan.extract.map((p) => `${p}\0`).join(''), 'latin1'));
  // Records of this tree describe it before this restore; only this one is made again.
  rmSync(join(recordsDir(rootfs), `${key}.json`), { force: true });
  await runner.run(extractMembersCommand(restore, list), { step });
  rmSync(list, { force: true });
  await recordTree(runner, rootfs, key, step);
  return true;
}

/** Remove every extended attribute (ACLs included) from these directories of the tree. */
async function clearXattrs(runner: Runner, rootfs: string, dirs: string[], step: string): Promise<void> {
  const paths = dirs.map((d) => join(rootfs, d));
  const dump = await runner.run(['getfattr', ['--absolute-names', '--no-dereference', '--match=-', ...paths]], { capture: true, step, okCodes: [0, 1] });
  let file = '';
  for (const line of dump.stdout.split('\n')) {
    if (line.startsWith('# file: ')) file = line.slice(8);
    else if (line.trim() && file) await runner.run(['setfattr', ['--no-dereference', '-x', line.trim(), file]], { step });
  }
}
