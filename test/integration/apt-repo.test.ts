// The stand-in for an extra apt repository (Raspberry Pi's, unreachable here), checked with the
// real apt: trusted through its own keyring only, and refused with a clear sentence when it is
// unsigned or signed by another key.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { explainAptFailure, sourcesEntry } from '../../build/bases/apt.ts';
import { keyringKeys } from '../../build/bases/openpgp.ts';
import type { Repository } from '../../build/bases/schema.ts';
import { aptRoot } from '../helpers/apt.ts';
import { makeDeb, makeKey, serveDir, writeRepo, type TestKey } from '../helpers/apt-repo.ts';
import { scratch } from '../helpers/tmp.ts';

const run = promisify(execFile);

/** apt-get against only `repo` (nothing else configured or trusted), in a scratch apt root. */
async function aptGet(repo: Repository, keyring: string, args: string[]): Promise<{ code: number; output: string; root: string }> {
  const apt = aptRoot({ arch: 'arm64', sources: { [repo.name]: sourcesEntry(repo, keyring) } });
  return { ...(await apt.aptGet(args)), root: apt.root };
}

test('the stand-in repository: trusted through its own keyring, unsigned and wrongly signed ones refused', async () => {
  const dir = scratch('pihub-standin-');
  const good: TestKey = await makeKey(dir, 'good');
  const other: TestKey = await makeKey(dir, 'other');
  assert.deepEqual(keyringKeys(readFileSync(good.keyring)).primary, [good.fingerprint], 'pihub reads the fingerprint gpg made');
  const deb = await makeDeb(dir, {
    name: 'pihub-stand-in', version: '1.0', architecture: 'all', description: 'a package from the stand-in repository',
    files: { '/usr/share/pihub-stand-in/hello.txt': 'hello from the stand-in\n' },
  });
  const www = join(dir, 'www');
  await writeRepo(join(www, 'signed'), { suite: 'pihub', component: 'main', architectures: ['arm64', 'armhf'], debs: [deb], signWith: good });
  await writeRepo(join(www, 'unsigned'), { suite: 'pihub', component: 'main', architectures: ['arm64'], debs: [deb], signWith: null });
  await writeRepo(join(www, 'wrong'), { suite: 'pihub', component: 'main', architectures: ['arm64'], debs: [deb], signWith: other });
  const served = await serveDir(www);
  try {
    const repo = (path: string): Repository => ({
      name: 'standin', uri: `${served.url}/${path}`, suites: ['pihub'], components: ['main'], keyring: good.keyring, fingerprints: [good.fingerprint],
    });

    const ok = await aptGet(repo('signed'), good.keyring, ['update']);
    assert.equal(ok.code, 0, ok.output);
    const fetched = await run('apt-get', ['-q', 'download', 'pihub-stand-in'], { env: { ...process.env, APT_CONFIG: join(ok.root, 'apt.conf') }, cwd: ok.root });
    assert.match(fetched.stdout + fetched.stderr, /\/signed pihub\/main arm64 pihub-stand-in all 1\.0/);
    const { stdout: listing } = await run('dpkg-deb', ['--contents', join(ok.root, 'pihub-stand-in_1.0_all.deb')]);
    assert.match(listing, /usr\/share\/pihub-stand-in\/hello\.txt/);

    const unsigned = await aptGet(repo('unsigned'), good.keyring, ['update']);
    assert.notEqual(unsigned.code, 0, 'apt must refuse an unsigned repository');
    assert.equal(
      explainAptFailure(unsigned.output, [repo('unsigned')]),
      `repository \`standin\` (${served.url}/unsigned) is not signed (no InRelease or Release.gpg): pihub only installs from repositories whose Release file is signed by a key in their keyring`,
    );

    const wrong = await aptGet(repo('wrong'), good.keyring, ['update']);
    assert.notEqual(wrong.code, 0, 'apt must refuse a repository signed by a key its keyring does not hold');
    const said = explainAptFailure(wrong.output, [repo('wrong')]);
    assert.ok(said, wrong.output);
    assert.match(said, new RegExp(`^repository \`standin\` \\(${served.url}/wrong\\) is signed by key [0-9A-F]*${other.fingerprint.slice(-16)}, which its keyring does not hold: .*good\\.pgp \\(${good.fingerprint}\\); check that`));
    assert.ok(served.requests.includes('/wrong/dists/pihub/InRelease'));
  } finally {
    await served.close();
  }
});

test('a sources entry trusts only its keyring', () => {
  const r: Repository = { name: 'raspberrypi', uri: 'http://archive.raspberrypi.com/debian', suites: ['trixie'], components: ['main'], keyring: 'keys/raspberrypi-archive-keyring.pgp', fingerprints: ['CF8A1AF502A2AA2D763BAE7E82B129927FA3303E'] };
  const text = sourcesEntry(r);
  assert.match(text, /^Types: deb\nURIs: http:\/\/archive\.raspberrypi\.com\/debian\nSuites: trixie\nComponents: main\nSigned-By: \/etc\/apt\/keyrings\/raspberrypi\.pgp\n$/m);
  assert.doesNotMatch(text, /trusted=|Trusted:/);
});
