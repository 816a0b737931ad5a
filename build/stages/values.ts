// The config values a stage may read, as templates and scripts see them.
import type { BuildConfig } from '../config/schema.ts';
import { knownKeysAt } from '../config/load.ts';
import type { Runner } from '../exec.ts';
import { plainValue } from './template.ts';

/** Is `hub.port` a key of the config (a leaf or a whole section)? */
export function isConfigKey(key: string): boolean {
  const parts = key.split('.');
  return knownKeysAt(parts.slice(0, -1)).includes(parts[parts.length - 1]!);
}

export function configValue(config: BuildConfig, key: string): unknown {
  let cur: unknown = config;
  for (const p of key.split('.')) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[p];
  }
  return cur;
}

/** Settings with an `auto` value resolved, so stages see what will really happen. */
export function effectiveConfig(config: BuildConfig): BuildConfig {
  const anyKeys = config.users.some((u) => u.ssh_authorized_keys.length > 0);
  return {
    ...config,
    ssh: {
      ...config.ssh,
      password_auth: config.ssh.password_auth === 'auto' ? !anyKeys : config.ssh.password_auth,
    },
  };
}

/** A user as stages see it: a password hash, never the password. */
export interface StageUser {
  name: string;
  password_hash: string;
  admin: boolean;
  ssh_authorized_keys: string[];
}

/** Hash a plain password as Debian does by default (yescrypt); the password goes through stdin only. */
export async function hashPassword(runner: Runner, password: string, step: string): Promise<string> {
  const { stdout } = await runner.run(['mkpasswd', ['--method=yescrypt', '--stdin']], {
    input: `${password}\n`,
    secretOutput: true,
    step,
  });
  const hash = stdout.trim();
  if (!hash.startsWith('$')) throw new Error(`mkpasswd returned no hash for step ${step}`);
  return hash;
}

/** Values a stage's templates and scripts get; passwords are hashed here, at build time. */
export async function stageValues(
  config: BuildConfig,
  reads: readonly string[],
  runner: Runner,
  step: string,
): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  for (const key of reads) {
    if (key === 'users') {
      const users: StageUser[] = [];
      for (const u of config.users) {
        users.push({
          name: u.name,
          admin: u.admin,
          ssh_authorized_keys: u.ssh_authorized_keys,
          password_hash: u.password_hash ?? (await hashPassword(runner, u.password!, step)),
        });
      }
      out[key] = users;
    } else {
      out[key] = configValue(config, key);
    }
  }
  return out;
}

/** `hub.port` → `PIHUB_HUB_PORT` */
export function envName(key: string): string {
  return `PIHUB_${key.toUpperCase().replaceAll('.', '_')}`;
}

export function valuesEnv(values: Record<string, unknown>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(values)) env[envName(k)] = plainValue(v);
  return env;
}
