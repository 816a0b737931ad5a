// Moving and placing files so that a final name only ever holds a complete file, also when the
// work directory, the cache and deploy/ are on different file systems (rename() then fails with
// EXDEV: a separate /home, a container's bind mount, --cache-dir on another disk).
// pihub runs as root in folders others may write (deploy/ of the user who ran sudo): it never
// opens, truncates, chmods or chowns an existing name there. A file is created new under a
// temporary name (O_EXCL, O_NOFOLLOW), set up through its descriptor and renamed into place,
// which replaces whatever was planted under the final name (a symlink, a hard link, a FIFO)
// instead of going through it.
import { createHash } from 'node:crypto';
import {
  closeSync, constants, createReadStream, fchmodSync, fchownSync, fstatSync, fsyncSync, ftruncateSync, linkSync, lstatSync, mkdirSync,
  openSync, readSync, renameSync, rmSync, statSync, unlinkSync, writeSync, type Stats,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { InputError, UserError } from './errors.ts';

const { O_WRONLY, O_RDONLY, O_CREAT, O_EXCL, O_NOFOLLOW, O_NONBLOCK, O_NOCTTY } = constants;

/** Who gets a file pihub writes for someone else (the user who ran sudo). */
export interface FileOwner {
  uid: number;
  gid: number;
}

/** A temporary name beside `final`, on its file system. */
export function partialName(final: string): string {
  return join(dirname(final), `.${basename(final)}.partial-${process.pid}`);
}

/** rename(), or across file systems: copy to a temporary name beside `dest`, rename, remove `src`. */
export function moveFile(src: string, dest: string): void {
  try {
    renameSync(src, dest);
    return;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
  }
  const tmp = partialName(dest);
  try {
    const mode = statSync(src).mode & 0o7777;
    const fd = createTemporary(tmp, mode);
    try {
      copyInto(src, fd);
      setUp(fd, mode);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, dest);
  } finally {
    unlinkLeftover(tmp);
  }
  rmSync(src, { force: true });
}

/** Remove a leftover temporary name: the name itself, never what a symlink there points at. */
function unlinkLeftover(tmp: string): void {
  try {
    unlinkSync(tmp);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

/** A new, empty file at `tmp`: never an existing name, never through a symlink. */
function createTemporary(tmp: string, mode: number): number {
  unlinkLeftover(tmp);
  return openSync(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, mode);
}

/** Mode (whatever the umask) and owner, through the descriptor: a name may be swapped meanwhile. */
function setUp(fd: number, mode: number, owner?: FileOwner): void {
  fchmodSync(fd, mode);
  if (owner) fchownSync(fd, owner.uid, owner.gid);
}

/** rename(), with a clear sentence when the final name is a folder someone put there. */
function renameInto(tmp: string, dest: string): void {
  try {
    renameSync(tmp, dest);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EISDIR' || code === 'ENOTEMPTY' || code === 'EEXIST') {
      throw new InputError(`${dest} is a folder, where pihub writes a file; remove it, or give pihub another folder (--out, --work-dir)`);
    }
    throw err;
  }
}

/** Write a file that must be new at exactly `path` (a lock's temporary name): never through what is there. */
export function writeNewFile(path: string, data: string, mode = 0o644): void {
  const fd = createTemporary(path, mode);
  try {
    const buf = Buffer.from(data);
    for (let at = 0; at < buf.length;) at += writeSync(fd, buf, at, buf.length - at);
    fchmodSync(fd, mode);
  } finally {
    closeSync(fd);
  }
}

/**
 * A folder pihub works in as root (a build's work tree): made if missing, and refused when
 * someone else could change what is in it, since pihub would then write and chown through
 * whatever they put there.
 */
export function verifyOwnFolder(dir: string, option: string, o: { create?: boolean } = {}): void {
  if (o.create !== false) {
    try {
      mkdirSync(dir, { recursive: true, mode: 0o755 });
    } catch (err) {
      throw new InputError(`${option}: cannot make the folder ${dir} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); give a folder pihub can make or use`);
    }
  }
  let st: Stats;
  try {
    st = lstatSync(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (o.create === false && code === 'ENOENT') return;
    throw new InputError(`${option}: ${dir} cannot be used (${code ?? (err as Error).message}); give a folder pihub can make or use`);
  }
  const me = process.getuid?.() ?? 0;
  const problem = st.isSymbolicLink()
    ? 'is a symbolic link'
    : !st.isDirectory()
      ? 'is not a folder'
      : st.uid !== me
        ? `belongs to uid ${st.uid}`
        : st.mode & 0o022
          ? `can be written by ${st.mode & 0o002 ? 'everyone' : 'its group'} (mode ${(st.mode & 0o7777).toString(8).padStart(4, '0')})`
          : undefined;
  if (problem) {
    throw new InputError(`${option}: ${dir} ${problem}; pihub works in it as ${me === 0 ? 'root' : `uid ${me}`}, so only ${me === 0 ? 'root' : 'it'} may change it: remove it (pihub makes it again) or give another ${option}`);
  }
}

/** A folder option (--out, --work-dir): when the path exists, it must be a folder. */
export function verifyFolderOption(dir: string, option: string): void {
  let st: Stats;
  try {
    st = statSync(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return;
    throw new InputError(`${option} ${dir} cannot be used (${code ?? (err as Error).message}); give a folder`);
  }
  if (!st.isDirectory()) {
    const what = st.isFile() ? 'is a file' : whatIs(st).replace(', not a file', '');
    throw new InputError(`${option} ${dir} ${what}, not a folder; give a folder (pihub makes it if it does not exist)`);
  }
}

/**
 * Write a complete file at `dest`: created new under a temporary name, given its mode and owner
 * through its descriptor, made durable with `fsync`, then renamed over whatever `dest` was.
 */
export function writeFileSafely(dest: string, data: string | Uint8Array, o: { mode: number; owner?: FileOwner; fsync?: boolean }): void {
  const tmp = partialName(dest);
  const fd = createTemporary(tmp, o.mode);
  try {
    try {
      const buf = typeof data === 'string' ? Buffer.from(data) : data;
      for (let at = 0; at < buf.length;) at += writeSync(fd, buf, at, buf.length - at);
      setUp(fd, o.mode, o.owner);
      if (o.fsync) fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameInto(tmp, dest);
  } finally {
    unlinkLeftover(tmp);
  }
}

/**
 * A file written as the build goes (the log), at `dest` from the start: created new, given its
 * mode and owner through the descriptor and renamed into place. Returns the open descriptor.
 */
export function openNewFile(dest: string, o: { mode: number; owner?: FileOwner }): number {
  const tmp = partialName(dest);
  const fd = createTemporary(tmp, o.mode);
  try {
    setUp(fd, o.mode, o.owner);
    renameInto(tmp, dest);
    return fd;
  } catch (err) {
    closeSync(fd);
    unlinkLeftover(tmp);
    throw err;
  }
}

const COPY_CHUNK = 4 << 20;

/** Copy `src` into the descriptor; blocks of zeros stay holes, as in a sparse raw image. */
function copyInto(src: string, fd: number): void {
  const from = openSync(src, O_RDONLY | O_NOFOLLOW);
  try {
    const size = fstatSync(from).size;
    const buf = Buffer.alloc(COPY_CHUNK);
    const zero = Buffer.alloc(COPY_CHUNK);
    let at = 0;
    for (let n; (n = readSync(from, buf, 0, COPY_CHUNK, at)) > 0; at += n) {
      if (n === COPY_CHUNK && buf.equals(zero)) continue;
      for (let done = 0; done < n;) done += writeSync(fd, buf, done, n - done, at + done);
    }
    ftruncateSync(fd, Math.max(at, size));
  } finally {
    closeSync(from);
  }
}

/**
 * Give `src` a second name `dest`: a hard link where possible (no copy of a large image), else a
 * copy; either way under a temporary name first, so `dest` appears complete or not at all, and
 * with its mode and owner set through a descriptor of that very file.
 */
export function placeFile(src: string, dest: string, o: { mode: number; owner?: FileOwner }): void {
  const tmp = partialName(dest);
  unlinkLeftover(tmp);
  try {
    let fd: number;
    try {
      linkSync(src, tmp);
      fd = openSync(tmp, O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
      const [a, b] = [fstatSync(fd), statSync(src)];
      if (a.ino !== b.ino || a.dev !== b.dev) {
        closeSync(fd);
        throw new UserError(`${tmp} was replaced while pihub was writing it; something else writes in ${dirname(dest)}`);
      }
    } catch (err) {
      if (err instanceof UserError) throw err;
      // Another file system (EXDEV), or one without hard links.
      fd = createTemporary(tmp, o.mode);
      try {
        copyInto(src, fd);
      } catch (e) {
        closeSync(fd);
        throw e;
      }
    }
    try {
      setUp(fd, o.mode, o.owner);
    } finally {
      closeSync(fd);
    }
    renameInto(tmp, dest);
  } finally {
    // rename() does nothing when both names are links to one file (a reused image already in
    // deploy/): then the temporary name is still there.
    unlinkLeftover(tmp);
  }
}

/** Why a path cannot be read as a file, as the end of a sentence that names it: `is a folder, not a file`. */
export class FileProblem extends Error {
  constructor(
    readonly reason: string,
    /** The error code when it could not be opened (ENOENT, EACCES, …). */
    readonly code?: string,
  ) {
    super(reason);
    this.name = 'FileProblem';
  }
}

export const MiB = 1024 ** 2;

function whatIs(st: Stats): string {
  if (st.isDirectory()) return 'is a folder, not a file';
  if (st.isFIFO()) return 'is a FIFO (named pipe), not a file';
  if (st.isCharacterDevice()) return 'is a device, not a file';
  if (st.isBlockDevice()) return 'is a block device, not a file';
  if (st.isSocket()) return 'is a socket, not a file';
  if (st.isSymbolicLink()) return 'is a symbolic link, not a file';
  return 'is not a regular file';
}

function openProblem(err: unknown): FileProblem {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return new FileProblem('does not exist', code);
  if (code === 'ENOTDIR') return new FileProblem('does not exist (a folder on its way is a file)', code);
  if (code === 'EACCES' || code === 'EPERM') return new FileProblem('cannot be read (permission denied)', code);
  if (code === 'ELOOP') return new FileProblem('is a symbolic link, not a file', code);
  return new FileProblem(`cannot be read (${code ?? (err as Error).message})`, code);
}

/**
 * Check that `path` is a regular file (not a folder, FIFO, device or socket; with `follow:
 * false` not a symlink either) of at most `maxBytes`, without opening anything else: a FIFO
 * would block the read (and with it every signal handler), a device could be endless.
 * Throws a FileProblem. Returns its size.
 */
export function checkRegularFile(path: string, maxBytes = Infinity, o: { follow?: boolean } = {}): number {
  let st: Stats;
  try {
    st = o.follow === false ? lstatSync(path) : statSync(path);
  } catch (err) {
    throw openProblem(err);
  }
  if (!st.isFile()) throw new FileProblem(whatIs(st));
  if (st.size > maxBytes) throw new FileProblem(`is ${formatSize(st.size)}, more than the ${formatSize(maxBytes)} pihub reads from such a file`);
  return st.size;
}

function formatSize(n: number): string {
  return n >= MiB ? `${Math.round((n / MiB) * 10) / 10} MiB` : `${Math.ceil(n / 1024)} KiB`;
}

/** The content of a regular file of at most `maxBytes` (see checkRegularFile); throws a FileProblem. */
export function readRegularFile(path: string, maxBytes: number, o: { follow?: boolean } = {}): Buffer {
  checkRegularFile(path, maxBytes, o);
  let fd: number;
  try {
    // Non-blocking and checked again through the descriptor: the name may have changed since.
    fd = openSync(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | (o.follow === false ? O_NOFOLLOW : 0));
  } catch (err) {
    throw openProblem(err);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new FileProblem(whatIs(st));
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const buf = Buffer.alloc(Math.min(Math.max(st.size, 64 * 1024), maxBytes + 1 - total) || 1);
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      chunks.push(buf.subarray(0, n));
      total += n;
      if (total > maxBytes) throw new FileProblem(`is more than the ${formatSize(maxBytes)} pihub reads from such a file`);
    }
    return Buffer.concat(chunks);
  } finally {
    closeSync(fd);
  }
}

/** The most pihub reads of a text file it is given (a config, a profile, a stage or overlay file). */
export const TEXT_MAX_BYTES = 4 * MiB;

/**
 * A text file the user named, as bad input when it is not one: `${what} ${reason}; ${hint}`,
 * e.g. `config file x.yaml is a folder, not a file; give --config a YAML file`.
 */
export function readInputText(path: string, what: string, hint: string, maxBytes = TEXT_MAX_BYTES): string {
  try {
    return readRegularFile(path, maxBytes).toString('utf8');
  } catch (err) {
    if (err instanceof FileProblem) throw new InputError(`${what} ${err.reason}; ${hint}`);
    throw err;
  }
}

export function sha256File(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    createReadStream(path, { highWaterMark: 4 << 20 })
      .on('data', (c) => h.update(c))
      .on('end', () => resolve(h.digest('hex')))
      .on('error', reject);
  });
}

/** Make a file's data durable before a name or a record claims it is complete. */
export function fsyncPath(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
