// The bootstrap trusts the base's archive keyring only, not every key of the build machine: an
// archive signed by a key that only the build machine's /etc/apt/trusted.gpg.d holds is refused.
// The build machine's trusted.gpg.d is swapped for one with the test key in a private mount
// namespace of mmdebstrap's own, so the machine itself is never changed.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { resolveConfig, setLayer } from '../../build/config/load.ts';
import type { Command } from '../../build/core/exec.ts';
import { mmdebstrapCommand } from '../../build/stages/steps/bootstrap.ts';
import { DEBIAN_ARCHIVE_KEYRING, trustOnly, type PlanContext } from '../../build/stages/step.ts';
import type { DoOp, RunState } from '../../build/core/ops.ts';
import { makeDeb, makeKey, writeRepo, type TestKey } from '../helpers/apt-repo.ts';
import { scratch } from '../helpers/tmp.ts';

let dir = '';
let key: TestKey;
let hostTrusted = '';

before(async () => {
  dir = scratch('pihub-archive-keyring-');
  key = await makeKey(dir, 'host-only');
  const deb = await makeDeb(dir, { name: 'pihub-stand-in', version: '1.0', architecture: 'all', description: 'a package', files: { '/usr/share/pihub-stand-in/x': 'x\n' } });
  await writeRepo(join(dir, 'archive'), { suite: 'trixie', component: 'main', architectures: ['arm64'], debs: [deb], signWith: key });
  // A build machine's trusted.gpg.d: Debian's keys (so mmdebstrap adds no signed-by of its
  // own: the machine's apt knows them all) and the key of some other repository.
  hostTrusted = join(dir, 'trusted.gpg.d');
  mkdirSync(hostTrusted, { mode: 0o755 });
  for (const [from, name] of [[DEBIAN_ARCHIVE_KEYRING, 'debian-archive-keyring.gpg'], [key.keyring, 'pihub-test.gpg']] as const) {
    copyFileSync(from, join(hostTrusted, name));
    // apt checks signatures as _apt.
    chmodSync(join(hostTrusted, name), 0o644);
  }
});

function ctx(keyring?: string): PlanContext {
  const config = resolveConfig([setLayer([`base.mirror=file://${join(dir, 'archive')}`, 'base.components=[main]'])]);
  const work = scratch('pihub-archive-keyring-work-');
  const paths = { work, rootfs: join(work, 'rootfs'), cache: join(work, 'cache'), debs: join(work, 'debs'), deploy: join(work, 'deploy') };
  mkdirSync(paths.debs, { recursive: true });
  const stage = { id: '00-bootstrap', dir: work, description: '', reads: [], skip: false, substeps: [], origin: 'stage' as const };
  return { config, paths, stage, keyring };
}

/** Runs a bootstrap command with the test key in the build machine's /etc/apt/trusted.gpg.d (in a private mount namespace). */
function runWithHostKey([program, args]: Command): { code: number; output: string } {
  const r = spawnSync('unshare', ['--mount', '--propagation', 'private', '--', 'sh', '-c', 'mount --bind "$0" /etc/apt/trusted.gpg.d && exec "$@"', hostTrusted, program, ...args], { encoding: 'utf8', timeout: 5 * 60_000 });
  return { code: r.status ?? -1, output: `${r.stdout}\n${r.stderr}` };
}

const REFUSED = /NO_PUBKEY|Missing key|is not signed|couldn't be verified/;

/** The bootstrap of a fresh work tree, as the plan makes it (`keep` filters its options). */
function bootstrap(keyring?: string, keep: (arg: string) => boolean = () => true): { command: Command; code: number; output: string } {
  const c = ctx(keyring);
  const trust = trustOnly(keyring ?? DEBIAN_ARCHIVE_KEYRING, c.paths).prepare;
  assert.equal(trust.kind, 'do');
  void (trust as DoOp).fn({} as RunState);
  const [program, args] = mmdebstrapCommand(c, ['pihub-stand-in']);
  const command: Command = [program, args.filter(keep)];
  return { command, ...runWithHostKey(command) };
}

test('the bootstrap refuses an archive signed by a key only the build machine trusts', { timeout: 10 * 60_000 }, () => {
  const refused = bootstrap();
  assert.ok(refused.command[1].includes(`--keyring=${DEBIAN_ARCHIVE_KEYRING}`));
  assert.notEqual(refused.code, 0, refused.output);
  assert.match(refused.output, REFUSED);

  // Without the trust options (as before) the same command takes the machine's key: the refusal above is pihub's doing.
  const trusting = bootstrap(undefined, (a) => !a.startsWith('--keyring=') && a !== '--skip=check/signed-by');
  assert.equal(trusting.code, 0, trusting.output);
  assert.doesNotMatch(trusting.output, REFUSED);

  // The keyring the base names is trusted.
  const own = bootstrap(key.keyring);
  assert.equal(own.code, 0, own.output);
  assert.doesNotMatch(own.output, REFUSED);
});
