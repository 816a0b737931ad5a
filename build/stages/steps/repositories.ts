// A base's extra apt repositories (its profile's `repositories`), put into the target right after
// the bootstrap: each gets its keyring in /etc/apt/keyrings and a deb822 .sources file that trusts
// exactly that keyring (Signed-By), then apt reads their package lists. apt's refusal of a
// repository (unsigned, signed by another key) stops the build with a sentence naming it.
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dearmor } from '../../bases/openpgp.ts';
import { dirname, join } from 'node:path';
import { UserError } from '../../core/errors.ts';
import { CommandError, formatCommand, type Command } from '../../core/exec.ts';
import { explainAptFailure, keyringInImage, sourcesEntry, sourcesFileInImage, type BaseRepository } from '../../bases/apt.ts';
import { chrootCommand } from '../../chroot/chroot.ts';
import { isForeign } from '../../chroot/tools.ts';
import type { Op } from '../../core/ops.ts';
import { withoutCredentials } from '../../config/urls.ts';
import { aptOptions, chrootEnv, inChroot, stepName, targetEnv, toolsBinds, type PlanContext, type StepFactory } from '../step.ts';

/**
 * The extra repositories' apt-get update only: the main list (the bootstrap's, whose keyring
 * the target gets with its first packages) is left out and its package lists are kept.
 */
const ONLY_EXTRA = ['-o', 'Dir::Etc::SourceList=/dev/null', '-o', 'APT::Get::List-Cleanup=false'];

/** apt-get update for the target: natively for a foreign architecture, the target's keyrings in place of the build machine's. */
export function aptUpdateCommand(ctx: PlanContext): Command {
  const root = ctx.paths.rootfs;
  if (!isForeign(ctx.config)) return inChroot(ctx, ['apt-get', ...ONLY_EXTRA, 'update', ...aptOptions(ctx, 'target')]);
  const arch = ctx.config.base.architecture;
  return chrootCommand(root, ['apt-get',
    '-o', `Dir=${root}/`,
    '-o', `Dir::State::status=${root}/var/lib/dpkg/status`,
    '-o', `APT::Architecture=${arch}`,
    '-o', `APT::Architectures::=${arch}`,
    '-o', 'APT::Sandbox::User=root',
    ...ONLY_EXTRA,
    'update', ...aptOptions(ctx, 'host'),
  ], toolsBinds(ctx), { noChroot: true, hostBinds: [{ source: join(root, 'etc/apt/keyrings'), target: '/etc/apt/keyrings' }] });
}

export const repositoriesStep: StepFactory = (sub) => {
  const repos: readonly BaseRepository[] = sub.repositories ?? [];
  return {
    title: `${sub.name}: ${repos.map((r) => r.repo.name).join(', ')}`,
    tools: ['unshare', 'chroot', 'mount', 'apt-get'],
    usesPackageCache: true,
    ops: (ctx) => {
      const step = stepName(ctx, sub);
      const root = ctx.paths.rootfs;
      const write: Op[] = repos.map(({ repo, keyring }) => ({
        kind: 'do',
        text: `${withoutCredentials(repo.uri)} ${repo.suites.join(' ')}: ${sourcesFileInImage(repo)}, trusting only ${keyringInImage(repo)} (from ${keyring}: ${repo.fingerprints.join(', ')})`,
        fn: () => {
          const key = join(root, keyringInImage(repo));
          mkdirSync(dirname(key), { recursive: true });
          writeFileSync(key, dearmor(readFileSync(keyring)), { mode: 0o644 });
          chmodSync(key, 0o644);
          const sources = join(root, sourcesFileInImage(repo));
          mkdirSync(dirname(sources), { recursive: true });
          writeFileSync(sources, sourcesEntry(repo), { mode: 0o644 });
        },
      }));
      const update = aptUpdateCommand(ctx);
      const hostKeyrings: Op[] = isForeign(ctx.config)
        ? [{ kind: 'do', text: 'the build machine has /etc/apt/keyrings (the native apt sees the target\'s keyrings there, in its own mount namespace)', fn: () => { mkdirSync('/etc/apt/keyrings', { recursive: true }); } }]
        : [];
      return [
        ...write,
        ...hostKeyrings,
        {
          kind: 'do',
          text: `$ ${formatCommand(update)}`,
          fn: async (st) => {
            try {
              await st.runner.run(update, { step, env: isForeign(ctx.config) ? chrootEnv(ctx) : targetEnv(ctx), cleanEnv: true });
            } catch (err) {
              const said = err instanceof CommandError ? explainAptFailure(err.tail.join('\n'), repos.map((r) => r.repo)) : undefined;
              if (said) throw new UserError(`step "${step}": ${said}`, 1);
              throw err;
            }
          },
        },
      ];
    },
  };
};
