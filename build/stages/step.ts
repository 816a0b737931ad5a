// The one interface every step kind implements, and what a step may use while it runs.
import { existsSync } from 'node:fs';
import type { BuildConfig } from '../config/schema.ts';
import type { Command, Runner, RunOptions } from '../exec.ts';
import { chrootCommand, type Bind } from '../chroot/chroot.ts';
import { ENGINE_DIR, ENGINE_MOUNT, TOOLS_MOUNT } from '../chroot/tools.ts';
import type { StageDef, Substep } from './load.ts';
import { valuesEnv } from './values.ts';

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

export interface PlanContext {
  config: BuildConfig;
  paths: BuildPaths;
  stage: StageDef;
  /** The archive's Release date (part of cache keys); unknown in a dry run without network. */
  release?: string;
  /** The native tools root (chroot/tools.ts), for a foreign architecture; mounted in the target. */
  tools?: string;
}

export interface StepContext extends PlanContext {
  runner: Runner;
  /** The values this stage reads (passwords already hashed). */
  values: Record<string, unknown>;
  /** A note for the build log and the task's output. */
  note(line: string): void;
  onLine?: (line: string) => void;
}

export interface Step {
  title: string;
  /** Host programs the step runs, checked before the build starts. */
  tools: readonly string[];
  /** It may run apt on the shared package cache (one apt at a time there: apt's own lock). */
  usesPackageCache?: boolean;
  /** What --dry-run prints: the exact commands, or a sentence for work done in-process. */
  describe(ctx: PlanContext): string[];
  run(ctx: StepContext): Promise<void>;
  cleanup?(ctx: StepContext): Promise<void>;
}

export type StepFactory = (sub: Substep) => Step;

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

/** The environment of everything that runs inside the target. */
export function chrootEnv(ctx: StepContext | PlanContext, values: Record<string, unknown> = {}): Record<string, string> {
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
    ...valuesEnv(values),
  };
  // apt in scripts (e.g. `apt-get install npm`) goes through the configured proxy too.
  if (ctx.config.apt_proxy) env.http_proxy = ctx.config.apt_proxy;
  if (hasHostBundle()) env.NODE_EXTRA_CA_CERTS = `${HOST_CERTS_MOUNT}/${HOST_BUNDLE}`;
  return env;
}

/** Options for apt-get that make it quiet, non-interactive and proxied as configured. */
export function aptOptions(config: BuildConfig): string[] {
  const opts = ['-y', '-q', '-o', 'Dpkg::Options::=--force-confdef', '-o', 'Dpkg::Options::=--force-confold', '-o', 'Dpkg::Use-Pty=0'];
  if (config.apt_proxy) opts.push('-o', `Acquire::http::Proxy=${config.apt_proxy}`);
  return opts;
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
  ];
}

export function inChroot(ctx: PlanContext, command: readonly string[]): Command {
  return chrootCommand(ctx.paths.rootfs, command, standardBinds(ctx));
}

/** Native stand-ins for slow target programs around a step (chroot/native-tools.sh). */
export const NATIVE = (mode: 'on' | 'off'): string[] => ['/bin/sh', `${ENGINE_MOUNT}/native-tools.sh`, mode];

export function runInChroot(ctx: StepContext, command: readonly string[], options: RunOptions = {}): ReturnType<Runner['run']> {
  return ctx.runner.run(inChroot(ctx, command), {
    cleanEnv: true,
    onLine: ctx.onLine,
    step: `${ctx.stage.id}`,
    ...options,
    env: { ...chrootEnv(ctx, ctx.values), ...options.env },
  });
}
