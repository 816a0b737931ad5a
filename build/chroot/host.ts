// Checks of the build machine, all before the first command runs.
import { accessSync, constants, statfsSync, existsSync, realpathSync } from 'node:fs';
import { delimiter, join, dirname } from 'node:path';
import { UserError } from '../core/errors.ts';
import { runQuick } from '../core/exec.ts';
import { hasBinfmt, readBinfmt, BINFMT_NAMES } from './chroot.ts';
import { hostArch } from './tools.ts';

/** Every host program pihub runs, with the Debian/Ubuntu package that provides it. */
export const HOST_TOOLS: Record<string, string> = {
  mmdebstrap: 'mmdebstrap',
  unshare: 'util-linux',
  mount: 'mount',
  chroot: 'coreutils',
  tar: 'tar',
  zstd: 'zstd',
  xz: 'xz-utils',
  gzip: 'gzip',
  'mke2fs': 'e2fsprogs',
  'mkfs.vfat': 'dosfstools',
  mcopy: 'mtools',
  mdir: 'mtools',
  mtype: 'mtools',
  genimage: 'genimage',
  bmaptool: 'bmap-tools',
  mkpasswd: 'whois',
  'dpkg-query': 'dpkg',
  dpkg: 'dpkg',
  'apt-get': 'apt',
  cp: 'coreutils',
  'arch-test': 'arch-test',
  'qemu-img': 'qemu-utils',
  'qemu-system-aarch64': 'qemu-system-arm',
  'qemu-system-arm': 'qemu-system-arm',
  fdtput: 'device-tree-compiler',
  openssl: 'openssl',
  du: 'coreutils',
  find: 'findutils',
  getfattr: 'attr',
  setfattr: 'attr',
};

export const SETUP_HINT = 'run `sudo ci/setup-host.sh` (installs every host package pihub needs and registers qemu-user)';

export function findOnPath(program: string, path = process.env.PATH ?? ''): string | undefined {
  const dirs = [...path.split(delimiter), '/usr/sbin', '/sbin'];
  for (const dir of dirs) {
    if (!dir) continue;
    const full = join(dir, program);
    try {
      accessSync(full, constants.X_OK);
      return full;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** Throws one sentence listing every missing program and the apt packages that bring them. */
export function verifyHostTools(tools: Iterable<string>, lookup: (p: string) => string | undefined = findOnPath): void {
  const missing = [...new Set(tools)].filter((t) => !lookup(t)).sort();
  if (missing.length === 0) return;
  const packages = [...new Set(missing.map((t) => HOST_TOOLS[t] ?? t))].sort();
  throw new UserError(
    `missing host tool${missing.length > 1 ? 's' : ''}: ${missing.map((t) => `\`${t}\``).join(', ')}; ` +
      `install with \`sudo apt-get install ${packages.join(' ')}\`, or ${SETUP_HINT}`,
  );
}

export function verifyArchiveKeyring(keyring: string): void {
  if (!existsSync(keyring)) {
    throw new UserError(`the archive keyring ${keyring} is missing: the bootstrap checks Debian's archive with it and trusts no other key; install debian-archive-keyring, or ${SETUP_HINT}`);
  }
}

export function verifyRoot(what: string, uid: number = process.getuid?.() ?? 0): void {
  if (uid !== 0) {
    throw new UserError(
      `${what} needs root (mmdebstrap, chroot and file ownership in the image); run it with sudo, e.g. \`sudo npm run pihub -- build\``,
    );
  }
}

export function freeBytes(dir: string): number {
  let d = dir;
  while (!existsSync(d) && dirname(d) !== d) d = dirname(d);
  const st = statfsSync(d);
  return st.bavail * st.bsize;
}

const GiB = 1024 ** 3;

export function formatBytes(n: number): string {
  if (n >= GiB) return `${(n / GiB).toFixed(1)} GiB`;
  return `${Math.round(n / 1024 ** 2)} MiB`;
}

/** Refuse to start a build that would run out of disk half way. */
export function verifyDiskSpace(dir: string, needed: number, what: string, free: (d: string) => number = freeBytes): void {
  const have = free(dir);
  if (have < needed) {
    throw new UserError(
      `too little free disk for ${what}: ${formatBytes(have)} free under ${dir}, about ${formatBytes(needed)} needed; ` +
        'free some space, or point --work-dir / --cache-dir at a bigger disk (`pihub cache prune` frees cached stages)',
    );
  }
}

/** Checks that foreign binaries run; says exactly what to install when they do not. */
export function verifyEmulation(arch: string, host: string = hostArch()): void {
  if (arch === host || (host === 'arm64' && arch === 'armhf')) return;
  const name = BINFMT_NAMES[arch];
  if (!name) throw new UserError(`no emulation known for architecture ${arch}`);
  if (!existsSync('/proc/sys/fs/binfmt_misc/status')) {
    throw new UserError(
      `building ${arch} on ${host} needs binfmt_misc, which is not mounted; ` +
        `run \`sudo mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc\`, then ${SETUP_HINT}`,
    );
  }
  const entry = readBinfmt(arch);
  if (!entry || !entry.enabled) {
    throw new UserError(
      `${arch} binaries cannot run here: no ${name} entry in /proc/sys/fs/binfmt_misc; ` +
        `install qemu-user-static (\`sudo apt-get install qemu-user-static\`) and ${SETUP_HINT}`,
    );
  }
  if (!hasBinfmt(arch)) {
    throw new UserError(
      `the ${name} binfmt entry lacks the F (fix binary) flag, so qemu cannot run inside the build chroot; ` +
        `install qemu-user-static rather than qemu-user-binfmt, then ${SETUP_HINT}`,
    );
  }
}

/** Parses `qemu-aarch64 version 10.0.2 (…)`. */
export function parseQemuVersion(text: string): [number, number] | undefined {
  const m = /version (\d+)\.(\d+)/.exec(text);
  return m ? [Number(m[1]), Number(m[2])] : undefined;
}

export function qemuWarning(version: [number, number] | undefined): string | undefined {
  if (!version) return undefined;
  if (version[0] < 8) {
    return (
      `qemu-user ${version.join('.')} is slow on Python work (10.x is about 4x faster); ` +
      'on Debian 12 install it from bookworm-backports: ' + SETUP_HINT
    );
  }
  return undefined;
}

export interface MachineCheck {
  /** Host programs the plan runs. */
  tools: Iterable<string>;
  architecture: string;
  dryRun: boolean;
  workDir: string;
  outDir: string;
  /** Undefined with --no-cache (nothing is read from it; results are still stored). */
  cacheDir?: string;
  /** The keyring the base's archive is checked with: the only keys the bootstrap trusts. */
  keyring?: string;
}

/** The build machine, checked before anything runs; returns advice for the end of the output. */
export interface Machine {
  verify(c: MachineCheck): string[];
}

export const thisMachine: Machine = {
  verify(c) {
    const notes: string[] = [];
    verifyHostTools(c.tools);
    if (c.keyring !== undefined) verifyArchiveKeyring(c.keyring);
    verifyEmulation(c.architecture);
    const entry = readBinfmt(c.architecture);
    if (entry?.interpreter) {
      // Debian registers a wrapper name (…-binfmt-P) that only runs under binfmt_misc; ask the real binary.
      const warning = qemuWarning(parseQemuVersion(runQuick([realpathSync(entry.interpreter), ['--version']])));
      if (warning) notes.push(warning);
    }
    if (c.dryRun) {
      if ((process.getuid?.() ?? 0) !== 0) notes.push('a real build needs root: run it with sudo');
    } else {
      verifyRoot('pihub build');
    }
    verifyDiskSpace(c.workDir, 8 * GiB, `the work directory (${c.workDir})`);
    verifyDiskSpace(c.outDir, 3 * GiB, `the output directory (${c.outDir})`);
    if (c.cacheDir) verifyDiskSpace(c.cacheDir, 4 * GiB, `the cache (${c.cacheDir})`);
    return notes;
  },
};
