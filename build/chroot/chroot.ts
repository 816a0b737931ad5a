// Entering the target: every chroot command runs in a private mount and PID namespace
// (see enter.sh), so no mount outlives the command, and no daemon outlives the step.
import { existsSync, readFileSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import type { Command } from '../core/exec.ts';

export const ENTER_SCRIPT = fileURLToPath(new URL('./enter.sh', import.meta.url));

export interface Bind {
  source: string;
  /** Absolute path inside the target. */
  target: string;
  readOnly?: boolean;
}

export interface EnterOptions {
  /** Run the command on the build machine, with the target's mounts in place (for `dpkg --root`). */
  noChroot?: boolean;
  /** Mounts over paths of the build machine, inside the private namespace only. */
  hostBinds?: readonly Bind[];
}

/** The command that runs `command` inside `rootfs`. */
export function chrootCommand(rootfs: string, command: readonly string[], binds: readonly Bind[] = [], opts: EnterOptions = {}): Command {
  const args = binds.map((b) => `--${b.readOnly ? 'ro-bind' : 'bind'}=${b.source}:${b.target}`);
  for (const b of opts.hostBinds ?? []) args.push(`--host-bind=${b.source}:${b.target}`);
  if (opts.noChroot) args.push('--no-chroot');
  return ['unshare', ['--mount', '--pid', '--fork', '--kill-child', '--', ENTER_SCRIPT, rootfs, ...args, '--', ...command]];
}

/** A command that runs `command` on the host in a private mount namespace (for mmdebstrap and host scripts). */
export function isolatedCommand(command: Command): Command {
  return ['unshare', ['--mount', '--pid', '--fork', '--kill-child', '--', command[0], ...command[1]]];
}

export const POLICY_RC_D = '/usr/sbin/policy-rc.d';
export const POLICY_TEXT = '#!/bin/sh\n# Written by pihub during the build: no service starts in the build chroot.\nexit 101\n';

/** Keep maintainer scripts from starting services in the build chroot. Returns false if one was already there. */
export function installPolicyRcD(rootfs: string): boolean {
  const path = join(rootfs, POLICY_RC_D);
  if (existsSync(path)) return false;
  writeFileSync(path, POLICY_TEXT);
  chmodSync(path, 0o755);
  return true;
}

export function removePolicyRcD(rootfs: string): void {
  const path = join(rootfs, POLICY_RC_D);
  if (existsSync(path) && readFileSync(path, 'utf8') === POLICY_TEXT) rmSync(path);
}

/** The Debian architecture name → the kernel's binfmt_misc entry for its qemu-user. */
export const BINFMT_NAMES: Record<string, string> = {
  arm64: 'qemu-aarch64',
  armhf: 'qemu-arm',
};

export interface BinfmtEntry {
  enabled: boolean;
  interpreter: string;
  flags: string;
}

export function readBinfmt(arch: string, dir = '/proc/sys/fs/binfmt_misc'): BinfmtEntry | undefined {
  const name = BINFMT_NAMES[arch];
  if (!name) return undefined;
  let text: string;
  try {
    text = readFileSync(join(dir, name), 'utf8');
  } catch {
    return undefined;
  }
  // Lines look like `interpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P` and `flags: POF`.
  const field = (k: string) => new RegExp(`^${k}:? (.*)$`, 'm').exec(text)?.[1]?.trim() ?? '';
  return { enabled: text.startsWith('enabled'), interpreter: field('interpreter'), flags: field('flags') };
}

/** True when the kernel runs `arch` binaries through a qemu-user registered with the F flag (works in a chroot). */
export function hasBinfmt(arch: string, dir?: string): boolean {
  const entry = readBinfmt(arch, dir);
  return entry !== undefined && entry.enabled && entry.flags.includes('F');
}
