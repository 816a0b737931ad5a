// A small native root of the same Debian suite (the build machine's architecture), kept in
// the cache: its Python byte-compiles the target's Python files at native speed, and a few of
// its programs run inside the target's chroot in place of the target's emulated ones
// (native-prepare.sh, native-tools.sh). Same suite, same versions: the same results.
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BuildConfig } from '../config/schema.ts';
import type { Command } from '../core/exec.ts';
import type { Op } from '../core/ops.ts';
import { isolatedCommand } from './chroot.ts';
import { withoutCredentials } from '../config/urls.ts';
import { engineDigest, sha256, canonicalJson } from '../core/digest.ts';

export const ENGINE_DIR = fileURLToPath(new URL('.', import.meta.url)).replace(/\/$/, '');
export const ENGINE_MOUNT = '/run/pihub/engine';
export const DPKG_SPLIT = join(ENGINE_DIR, 'dpkg-split.sh');
/** Where the tools root appears inside the target while a step runs. */
export const TOOLS_MOUNT = '/run/pihub/tools';
const TOOLS_PACKAGES = ['python3-minimal', 'kmod', 'patchelf'];

/** Debian's name for the build machine's architecture. */
export function hostArch(nodeArch: string = process.arch): string {
  return ({ x64: 'amd64', arm64: 'arm64', arm: 'armhf', ia32: 'i386', ppc64: 'ppc64el', s390x: 's390x', riscv64: 'riscv64' } as Record<string, string>)[nodeArch] ?? nodeArch;
}

/** Does the target run through qemu-user here? Then the native tricks pay off. */
export function isForeign(config: BuildConfig, host: string = hostArch()): boolean {
  return config.base.architecture !== host;
}

/** The engine code the native tools root is made by (its key covers these and what they import and run). */
export const TOOLS_ENTRIES = ['chroot/tools.ts'];

export function toolsKey(config: BuildConfig, release: string, host: string = hostArch()): string {
  const { suite, components } = config.base;
  // Credentials decide nothing in the result, and a key is no place for them.
  const mirror = withoutCredentials(config.base.mirror);
  return sha256(canonicalJson({ suite, mirror, components, release, host, packages: TOOLS_PACKAGES, impl: engineDigest(TOOLS_ENTRIES) })).slice(0, 32);
}

export function toolsRoot(cacheDir: string, key: string): string {
  return join(cacheDir, 'tools', key, 'root');
}

/**
 * `options`: mmdebstrap's options that make it trust the archive's keyring only, and give its
 * apt the proxy and the credentials (stages/step.ts).
 */
export function toolsCommand(config: BuildConfig, dir: string, debs: string, options: readonly string[], host: string = hostArch()): Command {
  const args = [
    '--mode=root',
    '--variant=essential',
    `--architectures=${host}`,
    `--include=${TOOLS_PACKAGES.join(',')}`,
    ...options,
    `--setup-hook=mkdir -p "$1/var/cache/apt/archives" && mount --bind ${debs} "$1/var/cache/apt/archives"`,
    // Before the package cache goes: native-prepare.sh may install dracut-install.
    `--customize-hook=sh ${join(ENGINE_DIR, 'native-prepare.sh')} "$1" ${TOOLS_MOUNT}`,
    '--customize-hook=umount "$1/var/cache/apt/archives"',
  ];
  args.push(config.base.suite, dir, withoutCredentials(config.base.mirror));
  return isolatedCommand(['mmdebstrap', args]);
}

/** The operations that make the tools root for this base once (natively, seconds); later builds find it in the cache. */
export function toolsRootOps(config: BuildConfig, cacheDir: string, release: string | undefined, step: string, mmdebstrap: { options: readonly string[]; prepare: Op }): Op[] {
  const key = release ? toolsKey(config, release) : '<key>';
  const dir = join(cacheDir, 'tools', key);
  const tmp = `${dir}.partial-${process.pid}`;
  const debs = join(cacheDir, 'debs', `${config.base.suite}-${hostArch()}`);
  return [{
    kind: 'lock',
    path: `${dir}.lock`,
    text: 'made by one build at a time',
    body: [{
      kind: 'if',
      text: `the native tools root is not in the cache yet (${join(dir, 'root')})`,
      test: () => !existsSync(join(dir, 'root/usr/bin/python3')),
      then: [
        {
          kind: 'do',
          text: `start from an empty ${tmp}`,
          fn: () => {
            rmSync(tmp, { recursive: true, force: true });
            mkdirSync(tmp, { recursive: true });
            mkdirSync(join(debs, 'partial'), { recursive: true });
          },
        },
        {
          kind: 'try',
          body: [
            mmdebstrap.prepare,
            { kind: 'run', command: toolsCommand(config, join(tmp, 'root'), debs, mmdebstrap.options), step },
            {
              kind: 'do',
              text: `keep it: rename it to ${dir}`,
              fn: () => {
                rmSync(dir, { recursive: true, force: true });
                renameSync(tmp, dir);
              },
            },
          ],
          finally: [{ kind: 'do', hidden: true, text: 'remove what is left of the temporary directory', fn: () => rmSync(tmp, { recursive: true, force: true }) }],
        },
      ],
    }],
  }];
}

/** The Version of an installed package in a dpkg status file, if any. */
export function installedVersion(rootfs: string, pkg: string): string | undefined {
  let text: string;
  try {
    text = readFileSync(join(rootfs, 'var/lib/dpkg/status'), 'utf8');
  } catch {
    return undefined;
  }
  for (const stanza of text.split('\n\n')) {
    if (!new RegExp(`^Package: ${pkg.replace(/[.+]/g, '\\$&')}$`, 'm').test(stanza)) continue;
    if (!/^Status: install ok installed$/m.test(stanza)) continue;
    return /^Version: (.+)$/m.exec(stanza)?.[1];
  }
  return undefined;
}
