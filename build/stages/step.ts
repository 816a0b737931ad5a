// The one interface every step kind implements: what it needs from the build machine, and the
// operations it adds to the plan (core/ops.ts). Helpers for commands in the target.
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { BuildConfig } from '../config/schema.ts';
import type { Command } from '../core/exec.ts';
import { chrootCommand, type Bind } from '../chroot/chroot.ts';
import { ENGINE_DIR, ENGINE_MOUNT, TOOLS_MOUNT } from '../chroot/tools.ts';
import type { Op, RunOp } from '../core/ops.ts';
import type { StageDef, Substep } from './load.ts';
import { withoutCredentials } from '../config/urls.ts';
import { CREDENTIALS_MOUNT, credentialFiles, type BuildCredentials } from './credentials.ts';

export interface BuildPaths {
  /** Root of the work tree for this image, e.g. work/pihub. */
  work: string;
  /** The target root filesystem being built. */
  rootfs: string;
  /** Content-addressed stage snapshots and downloaded packages. */
  cache: string;
  /** Downloaded .deb files for this base (suite + architecture). */
  debs: string;
  deploy: string;
}

/** What a step kind knows when it makes its operations. */
export interface PlanContext {
  config: BuildConfig;
  paths: BuildPaths;
  stage: StageDef;
  /** The archive's Release date (part of cache keys); unknown in a dry run without network. */
  release?: string;
  /** The native tools root (chroot/tools.ts), for a foreign architecture; mounted in the target. */
  tools?: string;
  /** The keyring the base's main archive is checked with (default: Debian's, on the build machine). */
  keyring?: string;
  /** URLs with credentials (stages/credentials.ts); their files exist while a stage runs. */
  credentials?: BuildCredentials;
}

export interface Step {
  title: string;
  /** Host programs the step runs, checked before the build starts. */
  tools: readonly string[];
  /** It may run apt on the shared package cache (one apt at a time there: apt's own lock). */
  usesPackageCache?: boolean;
  /** Its work, exactly: the dry run prints these and the executor runs them. */
  ops(ctx: PlanContext): Op[];
}

export type StepFactory = (sub: Substep) => Step;

/** `10-system/02-packages-nr`: how errors name a step. */
export const stepName = (ctx: PlanContext, sub: Substep) => `${ctx.stage.id}/${sub.name}`;

export const CHROOT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
/** Native sed, grep, cp and the like, first on the PATH in a foreign target (chroot/native-prepare.sh). */
export const NATIVE_BIN = `${TOOLS_MOUNT}/usr/lib/pihub-native/bin`;
export const STAGE_MOUNT = '/run/pihub/stage';

/**
 * The build machine's certificates, seen by programs in the target during the build (npm
 * behind a proxy that re-signs TLS trusts what the build machine trusts). Nothing of it is
 * written into the image.
 */
const HOST_CERTS = '/etc/ssl/certs';
const HOST_CERTS_MOUNT = '/run/pihub/host-certs';
const HOST_BUNDLE = 'ca-certificates.crt';
const hasHostBundle = () => existsSync(`${HOST_CERTS}/${HOST_BUNDLE}`);

export const DPKG_FORCE_BUILD = 'security-mac,downgrade,unsafe-io';

/** Debian's archive keyring on the build machine (package debian-archive-keyring). */
export const DEBIAN_ARCHIVE_KEYRING = '/usr/share/keyrings/debian-archive-keyring.gpg';

/** An empty directory that stands in for apt's trusted.gpg.d while mmdebstrap runs. */
export const noTrustedParts = (paths: Pick<BuildPaths, 'work'>) => join(paths.work, 'apt-trusted.d');

/**
 * mmdebstrap's apt trusts the archive's keyring only: by default it would take every key the
 * build machine's apt trusts (/etc/apt/trusted.gpg and trusted.gpg.d), any repository's among them.
 */
export function trustOnly(keyring: string, paths: Pick<BuildPaths, 'work'>): { options: string[]; prepare: Op } {
  const dir = noTrustedParts(paths);
  return {
    // mmdebstrap would otherwise add a signed-by of its own guess (Debian's keyring) to the sources.
    options: [`--keyring=${keyring}`, `--keyring=${dir}`, '--skip=check/signed-by'],
    prepare: {
      kind: 'do',
      text: `an empty ${dir}: apt trusts no keyring of the build machine but ${keyring}`,
      fn: () => {
        rmSync(dir, { recursive: true, force: true });
        mkdirSync(dir, { recursive: true });
      },
    },
  };
}

/** The environment of everything that runs inside the target (the stage's values are added when it runs). */
export function chrootEnv(ctx: PlanContext): Record<string, string> {
  const env: Record<string, string> = {
    PATH: ctx.tools ? `${NATIVE_BIN}:${CHROOT_PATH}` : CHROOT_PATH,
    HOME: '/root',
    LANG: 'C.UTF-8',
    LC_ALL: 'C.UTF-8',
    // dpkg's log (build profile) gets one clock from the build machine's dpkg and the target's.
    TZ: 'UTC',
    DEBIAN_FRONTEND: 'noninteractive',
    // No fsync per file while dpkg unpacks, for this build only (never in the image's dpkg.cfg.d);
    // dpkg's default forces stay on, since the variable replaces them.
    DPKG_FORCE: DPKG_FORCE_BUILD,
    DEBCONF_NONINTERACTIVE_SEEN: 'true',
    STAGE_DIR: STAGE_MOUNT,
  };
  // apt in scripts (e.g. `apt-get install npm`) goes through the configured proxy too (an
  // environment is readable by its process's owner and root only, unlike a command line).
  if (ctx.config.apt_proxy) env.http_proxy = ctx.config.apt_proxy;
  if (hasHostBundle()) env.NODE_EXTRA_CA_CERTS = `${HOST_CERTS_MOUNT}/${HOST_BUNDLE}`;
  return env;
}

/** The environment of commands in the target's chroot: apt and npm there find the build's credentials. */
export function targetEnv(ctx: PlanContext): Record<string, string> {
  const env = chrootEnv(ctx);
  const files = credentialFiles(ctx.paths.work, 'target');
  if (ctx.credentials?.apt.length) env.APT_CONFIG = files.aptConf;
  if (ctx.credentials?.npm) env.NPM_CONFIG_USERCONFIG = files.npmrc;
  return env;
}

/** The proxy as apt's option (its credentials, if any, are in the auth.conf). */
export function aptProxyOption(config: BuildConfig): string | undefined {
  return config.apt_proxy ? `Acquire::http::Proxy=${withoutCredentials(config.apt_proxy)}` : undefined;
}

/**
 * Options for apt-get that make it quiet, non-interactive and proxied as configured; apt on the
 * build machine (`host`) or in the target's chroot (`target`) reads the build's credentials.
 */
export function aptOptions(ctx: Pick<PlanContext, 'config' | 'paths' | 'credentials'>, where: 'host' | 'target'): string[] {
  const opts = ['-y', '-q', '-o', 'Dpkg::Options::=--force-confdef', '-o', 'Dpkg::Options::=--force-confold', '-o', 'Dpkg::Use-Pty=0'];
  const proxy = aptProxyOption(ctx.config);
  if (proxy) opts.push('-o', proxy);
  if (ctx.credentials?.apt.length) opts.push('-o', `Dir::Etc::netrc=${credentialFiles(ctx.paths.work, where).auth}`);
  return opts;
}

/** mmdebstrap's options for the proxy and the credentials (its apt runs on the build machine). */
export function mmdebstrapAptOptions(ctx: Pick<PlanContext, 'config' | 'paths' | 'credentials'>): string[] {
  const out: string[] = [];
  if (ctx.config.apt_proxy) out.push(`--aptopt=Acquire::http::Proxy "${withoutCredentials(ctx.config.apt_proxy)}"`);
  if (ctx.credentials?.apt.length) out.push(`--aptopt=Dir::Etc::netrc "${credentialFiles(ctx.paths.work).auth}"`);
  return out;
}

/** The native tools root, read-only at TOOLS_MOUNT, when there is one. */
export function toolsBinds(ctx: PlanContext): Bind[] {
  return ctx.tools ? [{ source: ctx.tools, target: TOOLS_MOUNT, readOnly: true }] : [];
}

/**
 * Binds every chroot step gets: the package cache, the stage's own files, pihub's helper
 * scripts and the native tools root (read-only).
 */
export function standardBinds(ctx: PlanContext): Bind[] {
  return [
    { source: ctx.paths.debs, target: '/var/cache/apt/archives' },
    { source: ctx.stage.dir, target: STAGE_MOUNT, readOnly: true },
    { source: ENGINE_DIR, target: ENGINE_MOUNT, readOnly: true },
    ...toolsBinds(ctx),
    ...(hasHostBundle() ? [{ source: HOST_CERTS, target: HOST_CERTS_MOUNT, readOnly: true }] : []),
    ...(ctx.credentials ? [{ source: credentialFiles(ctx.paths.work).dir, target: CREDENTIALS_MOUNT, readOnly: true }] : []),
  ];
}

export function inChroot(ctx: PlanContext, command: readonly string[]): Command {
  return chrootCommand(ctx.paths.rootfs, command, standardBinds(ctx));
}

/** Native stand-ins for slow target programs around a step (chroot/native-tools.sh). */
export const NATIVE = (mode: 'on' | 'off'): string[] => ['/bin/sh', `${ENGINE_MOUNT}/native-tools.sh`, mode];

/** A command inside the target, with the target's environment and the stage's values. */
export function inTarget(ctx: PlanContext, command: readonly string[], step: string, extra: Partial<RunOp> = {}): RunOp {
  return { kind: 'run', command: inChroot(ctx, command), step, env: targetEnv(ctx), valuesEnv: true, cleanEnv: true, ...extra };
}

/** A stage script's command: shell scripts always stop at the first failing command and at an unset variable. */
export function scriptCommand(interpreter: readonly string[], script: string): string[] {
  const [program, ...args] = interpreter;
  const shell = (p: string | undefined) => p !== undefined && /^(sh|bash|dash|ash|ksh|zsh)$/.test(p.replace(/^.*\//, ''));
  const rest = (a: string[]) => a.filter((x) => x !== '-e' && x !== '-u' && x !== '-eu' && x !== '-ue');
  if (shell(program)) return [program!, '-e', '-u', ...rest(args), script];
  // `#!/usr/bin/env bash`
  if (program?.replace(/^.*\//, '') === 'env' && shell(args[0])) return [program, args[0]!, '-e', '-u', ...rest(args.slice(1)), script];
  return [...interpreter, script];
}

/** Operations with the native stand-ins in place (foreign targets only), taken out again also after a failure. */
export function withNativeTools(ctx: PlanContext, step: string, ops: readonly Op[]): Op[] {
  if (!ctx.tools) return [...ops];
  return [inTarget(ctx, NATIVE('on'), step), { kind: 'try', body: ops, finally: [inTarget(ctx, NATIVE('off'), step)] }];
}
