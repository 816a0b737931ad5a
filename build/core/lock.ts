// Lock files, so that two pihub processes never work on one work tree, or clear a cache another
// one is using. A lock file names its holder: pid and start time (a reused pid is not the
// holder), the kernel's boot id (a holder of an earlier boot is gone) and the PID namespace its
// pid belongs to (a build in a container shares the cache and work folders with the host, but
// its pid means another process here). The lock of a process that is gone is taken over; one
// whose holder pihub cannot see from here (another namespace or machine) is never taken.
import { existsSync, linkSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { UserError } from './errors.ts';
import { readRegularFile, writeFileSafely, writeNewFile } from './files.ts';

export interface LockHolder {
  pid: number;
  /** The process's start time in clock ticks since boot (/proc/PID/stat), to tell a reused pid. */
  start: number | null;
  /** The boot it runs in (/proc/sys/kernel/random/boot_id). */
  boot?: string;
  /** The PID namespace its pid belongs to (the inode of /proc/PID/ns/pid). */
  pidns?: number;
  /** Its machine's host name: tells another machine (a shared folder) from a reboot. */
  host?: string;
  /** What it does, for messages: `pihub build of pihub (config.yaml)`. */
  what: string;
  since: string;
  /** Cache keys the holder will restore: a prune leaves them alone. */
  keys?: string[];
  /** The lock file it was read from (never written). */
  file?: string;
}

/** The namespace every process is seen from: from it, a namespace with no process left is gone. */
const INITIAL_PID_NAMESPACE = 0xeffffffc;

function statFields(pid: number | 'self'): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: count from its end.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** The start time of a process, or null when it does not exist (or /proc is not there). */
export function processStart(pid: number): number | null {
  const fields = statFields(pid);
  return fields ? Number(fields[19]) : null;
}

/** The PID namespace of a process (`pid:[4026531836]` → its number), if /proc shows it. */
export function pidNamespace(pid: number | 'self'): number | undefined {
  try {
    const m = /^pid:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/ns/pid`));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

function bootId(): string | undefined {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

let self: { boot?: string; pidns?: number; host: string } | undefined;
function here(): { boot?: string; pidns?: number; host: string } {
  self ??= { boot: bootId(), pidns: pidNamespace('self'), host: hostname() };
  return self;
}

/** Is the holder in a PID namespace other than this process's (its pid is not a pid here)? */
function elsewhere(h: LockHolder): boolean {
  const me = here();
  return h.pidns !== undefined && me.pidns !== undefined && h.pidns !== me.pidns;
}

/** On another machine: another boot, under another host name (after a reboot the name is the same). */
function otherMachine(h: LockHolder): boolean {
  const me = here();
  return h.boot !== undefined && me.boot !== undefined && h.boot !== me.boot && h.host !== undefined && h.host !== me.host;
}

/** A process of this namespace with this pid and start time, running (a zombie has exited). */
function runsHere(pid: number, start: number | null): boolean {
  const fields = statFields(pid);
  if (!fields) {
    // No /proc to look in: only the pid can be asked about.
    if (existsSync('/proc/self/stat')) return false;
    try {
      process.kill(pid, 0);
    } catch (err) {
      return (err as NodeJS.ErrnoException).code === 'EPERM';
    }
    return true;
  }
  if (fields[0] === 'Z' || fields[0] === 'X') return false;
  return start === null || Number(fields[19]) === start;
}

/**
 * A holder in another PID namespace, looked for among the processes this one sees (a parent
 * namespace sees its children's): the process of that namespace with that pid there (NSpid)
 * and that start time. Unknown when that namespace cannot be seen from here.
 */
function runsInNamespace(h: LockHolder): 'alive' | 'gone' | 'unknown' {
  let seen = false;
  let entries: string[];
  try {
    entries = readdirSync('/proc').filter((n) => /^\d+$/.test(n));
  } catch {
    return 'unknown';
  }
  for (const n of entries) {
    const pid = Number(n);
    if (pidNamespace(pid) !== h.pidns) continue;
    seen = true;
    let status: string;
    try {
      status = readFileSync(`/proc/${pid}/status`, 'utf8');
    } catch {
      continue;
    }
    const inner = /^NSpid:\s+(.+)$/m.exec(status)?.[1]?.trim().split(/\s+/).at(-1);
    if (Number(inner) === h.pid && runsHere(pid, h.start)) return 'alive';
  }
  if (seen) return 'gone';
  return here().pidns === INITIAL_PID_NAMESPACE ? 'gone' : 'unknown';
}

/**
 * Whether the holder still runs: `gone` (its boot is over, or it is not among the processes
 * that can see it), `alive`, or `unknown` (in a namespace or on a machine not visible from
 * here). Only `gone` lets a lock be taken over.
 */
export function holderState(h: LockHolder): 'alive' | 'gone' | 'unknown' {
  const me = here();
  if (h.boot !== undefined && me.boot !== undefined && h.boot !== me.boot) return otherMachine(h) ? 'unknown' : 'gone';
  if (elsewhere(h)) return runsInNamespace(h);
  return runsHere(h.pid, h.start) ? 'alive' : 'gone';
}

/** Runs, or might: never take over such a lock. */
export function isAlive(h: LockHolder): boolean {
  return holderState(h) !== 'gone';
}

/** Is this holder this very process? */
function isSelf(h: LockHolder): boolean {
  const me = here();
  return h.pid === process.pid && h.start === processStart(process.pid) && (h.pidns ?? me.pidns) === me.pidns && (h.boot ?? me.boot) === me.boot;
}

export function holderFor(what: string, keys?: string[]): LockHolder {
  const me = here();
  return { pid: process.pid, start: processStart(process.pid), boot: me.boot, pidns: me.pidns, host: me.host, what, since: new Date().toISOString(), keys };
}

/** Who holds a lock, for a message: what it does, its pid and where that pid is, since when. */
export function describeHolder(h: LockHolder): string {
  const where = otherMachine(h)
    ? ` on the machine ${h.host}`
    : elsewhere(h)
      ? ` in another PID namespace (pid:[${h.pidns}]: a container, or the host of this one)`
      : '';
  const text = `${h.what}, pid ${h.pid}${where}, since ${h.since.slice(0, 19).replace('T', ' ')} UTC`;
  if (!where || holderState(h) !== 'unknown') return text;
  return `${text} (pihub cannot see from here whether it still runs; if it does not, remove ${h.file ?? 'its lock file'})`;
}

/** The live holder of an exclusive lock file, if any. */
export function readLockHolder(path: string): LockHolder | undefined {
  const h = readHolder(path);
  return h && isAlive(h) && !isSelf(h) ? h : undefined;
}

function readHolder(path: string): LockHolder | undefined {
  try {
    // Only a plain file: a FIFO put in its place would block the read.
    const h = JSON.parse(readRegularFile(path, 64 * 1024, { follow: false }).toString('utf8')) as LockHolder;
    return { ...h, file: path };
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

function sameHolder(a: LockHolder, b: LockHolder): boolean {
  return a.pid === b.pid && a.start === b.start && a.pidns === b.pidns && a.boot === b.boot;
}

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
    if (now === undefined || (seen && sameHolder(now, seen))) rmSync(path, { force: true });
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
      // Only its own: a lock taken over meanwhile is another's.
      const h = readHolder(path);
      if (h && isSelf(h)) rmSync(path, { force: true });
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
    return join(this.dir, `shared-${h.pid}-${h.start ?? 0}${h.pidns === undefined ? '' : `-${h.pidns}`}.json`);
  }

  /** Live shared holders other than this process; files of processes that are gone are removed. */
  sharedHolders(): LockHolder[] {
    if (!existsSync(this.dir)) return [];
    const out: LockHolder[] = [];
    for (const f of readdirSync(this.dir)) {
      if (!/^shared-\d+-\d+(-\d+)?\.json$/.test(f)) continue;
      const h = readHolder(join(this.dir, f));
      if (!h) continue;
      if (!isAlive(h)) rmSync(join(this.dir, f), { force: true });
      else if (!isSelf(h)) out.push(h);
    }
    return out;
  }

  exclusiveHolder(): LockHolder | undefined {
    const h = readHolder(this.exclusivePath);
    return h && isAlive(h) && !isSelf(h) ? h : undefined;
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
