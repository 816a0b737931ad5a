// The build machine's apt pointed at a scratch root: only the sources given, only their keys
// trusted, any architecture. For the stand-ins: checking a repository, or resolving and
// downloading a set of Debian packages without installing them.
import { execFile } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { scratch } from './tmp.ts';

const run = promisify(execFile);

export interface AptRoot {
  root: string;
  /** apt-get with this root's configuration; never throws: the exit code and all output. */
  aptGet(args: string[]): Promise<{ code: number; output: string }>;
}

export function aptRoot(opts: { arch: string; sources: Record<string, string>; archives?: string }): AptRoot {
  const root = scratch('pihub-aptroot-');
  for (const d of ['etc/apt/sources.list.d', 'etc/apt/apt.conf.d', 'etc/apt/preferences.d', 'etc/apt/trusted.gpg.d', 'var/lib/apt/lists/partial', 'var/cache/apt/archives/partial', 'var/lib/dpkg']) {
    mkdirSync(join(root, d), { recursive: true });
  }
  writeFileSync(join(root, 'var/lib/dpkg/status'), '');
  for (const [name, text] of Object.entries(opts.sources)) writeFileSync(join(root, 'etc/apt/sources.list.d', `${name}.sources`), text);
  if (opts.archives) mkdirSync(join(opts.archives, 'partial'), { recursive: true });
  const conf = join(root, 'apt.conf');
  writeFileSync(conf, [
    `Dir "${root}/";`,
    `Dir::State::status "${root}/var/lib/dpkg/status";`,
    ...(opts.archives ? [`Dir::Cache::Archives "${opts.archives}/";`] : []),
    `APT::Architecture "${opts.arch}";`,
    `APT::Architectures { "${opts.arch}"; };`,
    // The scratch root is not readable by apt's sandbox user.
    'APT::Sandbox::User "root";',
    'Acquire::Languages "none";',
    '',
  ].join('\n'));
  return {
    root,
    async aptGet(args) {
      try {
        const r = await run('apt-get', ['-q', ...args], { env: { ...process.env, APT_CONFIG: conf, LC_ALL: 'C' }, cwd: root, maxBuffer: 64 * 1024 * 1024 });
        return { code: 0, output: r.stdout + r.stderr };
      } catch (err) {
        const e = err as { code?: number; stdout?: string; stderr?: string };
        return { code: typeof e.code === 'number' ? e.code : -1, output: (e.stdout ?? '') + (e.stderr ?? '') };
      }
    },
  };
}

export const DEBIAN_SOURCES = (suite: string, mirror = 'http://deb.debian.org/debian') => [
  'Types: deb',
  `URIs: ${mirror}`,
  `Suites: ${suite}`,
  'Components: main',
  'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg',
  '',
].join('\n');

/** The .deb files of `packages` and everything they depend on (no recommends), downloaded into `archives`. */
export async function downloadClosure(opts: { arch: string; suite: string; packages: readonly string[]; archives: string }): Promise<Array<{ name: string; version: string; file: string }>> {
  const apt = aptRoot({ arch: opts.arch, sources: { debian: DEBIAN_SOURCES(opts.suite) }, archives: opts.archives });
  const update = await apt.aptGet(['update']);
  if (update.code !== 0) throw new Error(`apt-get update failed:\n${update.output}`);
  const sim = await apt.aptGet(['-s', 'install', '--no-install-recommends', ...opts.packages]);
  if (sim.code !== 0) throw new Error(`apt-get -s install failed:\n${sim.output}`);
  const dl = await apt.aptGet(['-y', '--download-only', 'install', '--no-install-recommends', ...opts.packages]);
  if (dl.code !== 0) throw new Error(`apt-get --download-only failed:\n${dl.output}`);
  // `Inst libc6 (2.41-12 Debian:13.5/stable [amd64])`
  return [...sim.output.matchAll(/^Inst (\S+) \((\S+) .*\[(\S+)\]\)/gm)].map(([, name, version, arch]) => ({
    name: name!,
    version: version!,
    file: join(opts.archives, `${name}_${version!.replace(':', '%3a')}_${arch}.deb`),
  }));
}
