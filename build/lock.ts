// Lock files, so that two pihub processes never work on one work tree, or clear a cache another
// one is using. A lock file names its holder (pid and start time, so a reused pid is not taken
// for the holder); the lock of a process that is gone is taken over.
import { existsSync, linkSync, lstatSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { UserError } from './errors.ts';
import { readRegularFile, writeFileSafely, writeNewFile } from './files.ts';

export interface LockHolder {
  pid: number;
  /** The process's start time in clock ticks since boot (/proc/PID/stat), to tell a reused pid. */
  start: number | null;
  /** What it does, for messages: `pihub build of pihub (config.yaml)`. */
  what: string;
  since: string;
  /** Cache keys the holder will restore: a prune leaves them alone. */
  keys?: string[];
}

/** The start time of a process, or null when it does not exist (or /proc is not there). */
export function processStart(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: count from its end.
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]);
  } catch {
    return null;
  }
}

/** Runs (a zombie has exited: it only waits for its parent to notice) and is the same process. */
export function isAlive(h: Pick<LockHolder, 'pid' | 'start'>): boolean {
  try {
    process.kill(h.pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  let stat: string;
  try {
    stat = readFileSync(`/proc/${h.pid}/stat`, 'utf8');
  } catch {
    return true;
  }
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  if (fields[0] === 'Z' || fields[0] === 'X') return false;
  return h.start === null || Number(fields[19]) === h.start;
}

export function holderFor(what: string, keys?: string[]): LockHolder {
  return { pid: process.pid, start: processStart(process.pid), what, since: new Date().toISOString(), keys };
}

export function describeHolder(h: LockHolder): string {
  return `${h.what}, pid ${h.pid}, since ${h.since.slice(0, 19).replace('T', ' ')} UTC`;
}

/** The live holder of an exclusive lock file, if any. */
export function readLockHolder(path: string): LockHolder | undefined {
  const h = readHolder(path);
  return h && isAlive(h) && h.pid !== process.pid ? h : undefined;
}

function readHolder(path: string): LockHolder | undefined {
  try {
    // Only a plain file: a FIFO put in its place would block the read.
    return JSON.parse(readRegularFile(path, 64 * 1024, { follow: false }).toString('utf8')) as LockHolder;
  } catch {
    return undefined;
  }
}

/** Write a file complete under a temporary name, then give it its name; false if the name exists. */
function createWith(path: string, holder: LockHolder): boolean {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}`;
  // Lock files may be in a folder others can write (work/): never write through their names.
  writeNewFile(tmp, `${JSON.stringify(holder)}\n`);
  try {
    linkSync(tmp, path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    return false;
  } finally {
    rmSync(tmp, { force: true });
  }
}

const BREAKER_STALE_MS = 30_000;

/** Remove a lock whose holder is gone, unless someone else already replaced it. */
function breakStale(path: string, seen: LockHolder | undefined): void {
  const breaker = `${path}.break`;
  if (!createWith(breaker, holderFor('breaking a stale lock'))) {
    // Only held for an instant; one left by a process killed right then is old.
    try {
      if (Date.now() - lstatSync(breaker).mtimeMs > BREAKER_STALE_MS) rmSync(breaker, { force: true });
    } catch {
      // gone meanwhile
    }
    return;
  }
  try {
    const now = readHolder(path);
    if (now === undefined || (seen && now.pid === seen.pid && now.start === seen.start)) rmSync(path, { force: true });
  } finally {
    rmSync(breaker, { force: true });
  }
}

export interface Lock {
  path: string;
  release(): void;
  /** Rewrite what the lock says about its holder (e.g. the keys it will restore). */
  update(holder: LockHolder): void;
}

function lockAt(path: string): Lock {
  return {
    path,
    release: () => {
      const h = readHolder(path);
      if (h?.pid === process.pid) rmSync(path, { force: true });
    },
    update: (holder) => writeFileSafely(path, `${JSON.stringify(holder)}\n`, { mode: 0o644 }),
  };
}

/** Take an exclusive lock, or return who holds it. A lock of a process that is gone is taken over. */
export function tryLock(path: string, holder: LockHolder): Lock | LockHolder {
  for (let attempt = 0; attempt < 5; attempt++) {
    if (createWith(path, holder)) return lockAt(path);
    const current = readHolder(path);
    if (current && isAlive(current)) return current;
    breakStale(path, current);
  }
  throw new UserError(`cannot take the lock ${path}: it keeps changing hands; try again`);
}

export function isLock(x: Lock | LockHolder): x is Lock {
  return 'release' in x;
}

/** Wait for an exclusive lock (polling), telling once whom it waits for; an abort stops the wait. */
export async function waitLock(path: string, holder: LockHolder, onWait: (other: LockHolder) => void, signal?: AbortSignal, pollMs = 1000): Promise<Lock> {
  let told = false;
  for (;;) {
    const got = tryLock(path, holder);
    if (isLock(got)) return got;
    if (!told) onWait(got);
    told = true;
    if (signal?.aborted) throw new UserError(`stopped while waiting for ${describeHolder(got)}`, 130);
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

/**
 * Shared and exclusive locks on one directory (the cache): any number of builds share it; an
 * exclusive holder (`pihub cache clear|prune`) has it alone. Each side first writes its own lock
 * and then looks for the other kind, so the two can never both go ahead.
 */
export class SharedLock {
  constructor(readonly dir: string) {}

  private get exclusivePath(): string {
    return join(this.dir, 'exclusive.json');
  }

  private sharedPath(h: LockHolder): string {
    return join(this.dir, `shared-${h.pid}-${h.start ?? 0}.json`);
  }

  /** Live shared holders other than this process; files of processes that are gone are removed. */
  sharedHolders(): LockHolder[] {
    if (!existsSync(this.dir)) return [];
    const out: LockHolder[] = [];
    for (const f of readdirSync(this.dir)) {
      if (!/^shared-\d+-\d+\.json$/.test(f)) continue;
      const h = readHolder(join(this.dir, f));
      if (!h) continue;
      if (!isAlive(h)) rmSync(join(this.dir, f), { force: true });
      else if (h.pid !== process.pid) out.push(h);
    }
    return out;
  }

  exclusiveHolder(): LockHolder | undefined {
    const h = readHolder(this.exclusivePath);
    return h && isAlive(h) && h.pid !== process.pid ? h : undefined;
  }

  /** Share the directory, or learn who has it alone. */
  tryShared(holder: LockHolder): Lock | LockHolder {
    const path = this.sharedPath(holder);
    mkdirSync(this.dir, { recursive: true });
    const lock = lockAt(path);
    lock.update(holder);
    const other = this.exclusiveHolder();
    if (other) {
      lock.release();
      return other;
    }
    return lock;
  }

  /** Have the directory alone, or learn who else uses it. */
  tryExclusive(holder: LockHolder): Lock | LockHolder {
    const got = tryLock(this.exclusivePath, holder);
    if (!isLock(got)) return got;
    const others = this.sharedHolders();
    if (others.length) {
      got.release();
      return others[0]!;
    }
    return got;
  }
}
