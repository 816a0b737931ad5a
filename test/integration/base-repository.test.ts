// A base with an extra apt repository, built for real: a profile of one's own (the default
// base plus a repository) whose repository is the test's stand-in, signed with a test key and
// served on 127.0.0.1. The image gets the repository's package, one .sources file trusting
// exactly that key, and the keyring; an unsigned or wrongly-signed stand-in stops the build
// with a sentence naming the repository. Small stages (the essential set and one package)
// keep it to a minute or two.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BASES_DIR } from '../../build/bases/load.ts';
import { Cache } from '../../build/cache/cache.ts';
import { keyringKeys } from '../../build/bases/openpgp.ts';
import { makeDeb, makeKey, serveDir, writeRepo, type Served, type TestKey } from '../helpers/apt-repo.ts';
import { CACHE_DIR, imageBase, manifest, runPihub } from '../helpers/build.ts';
import { scratch } from '../helpers/tmp.ts';

let dir = '';
let good: TestKey;
let served: Served;
/** The cache keys of the stages this file's builds made. */
const ownStages = new Set<string>();

before(async () => {
  dir = scratch('pihub-base-repo-');
  good = await makeKey(dir, 'good');
  const other = await makeKey(dir, 'other');
  const deb = await makeDeb(dir, {
    name: 'pihub-stand-in', version: '1.0', architecture: 'all', description: 'a package from the stand-in repository',
    files: { '/usr/share/pihub-stand-in/hello.txt': 'hello from the stand-in\n' },
  });
  const www = join(dir, 'www');
  await writeRepo(join(www, 'signed'), { suite: 'pihub', component: 'main', architectures: ['arm64'], debs: [deb], signWith: good });
  await writeRepo(join(www, 'unsigned'), { suite: 'pihub', component: 'main', architectures: ['arm64'], debs: [deb], signWith: null });
  await writeRepo(join(www, 'wrong'), { suite: 'pihub', component: 'main', architectures: ['arm64'], debs: [deb], signWith: other });
  served = await serveDir(www);
  // The smallest stages an image can be exported from: the essential set, the stand-in's
  // package, and the boot partition's config.txt (a real image gets it from raspi-firmware).
  const stages = join(dir, 'stages', '00-base');
  mkdirSync(join(stages, '02-files', 'boot', 'firmware'), { recursive: true });
  writeFileSync(join(stages, '00-bootstrap'), '# the essential set only\n');
  writeFileSync(join(stages, '01-packages-nr'), 'pihub-stand-in\n');
  writeFileSync(join(stages, '02-files', 'boot', 'firmware', 'config.txt'), '# test\n');
});

after(async () => {
  await served?.close();
  // Its builds are made to be thrown away: their entries (keyed by this run's test key and
  // repository dates, never used again) leave the shared cache.
  const cache = new Cache(CACHE_DIR);
  for (const e of cache.list()) {
    if ((e.kind === 'image' && e.label.startsWith('standin-')) || (e.kind === 'stage' && ownStages.has(e.key))) cache.remove(e);
  }
});

/** The default base's profile plus the stand-in repository at `path`, written as one's own profile. */
function profile(path: string): string {
  const text = readFileSync(join(BASES_DIR, 'debian-trixie-arm64.yaml'), 'utf8')
    .replace(/^repositories:.*$/m, '')
    .replace(/^(\s*requirements: )(\S+)/m, `$1${join(BASES_DIR, 'requirements', 'python3.13.txt')}`);
  const file = join(dir, `standin-${path}.yaml`);
  writeFileSync(file, `${text}
repositories:
  - name: standin
    uri: ${served.url}/${path}
    suites: [pihub]
    components: [main]
    keyring: ${good.keyring}
    fingerprints: [${good.fingerprint}]
`);
  return file;
}

async function buildWith(path: string) {
  const work = join(dir, `work-${path}`);
  const config = join(dir, `${path}.yaml`);
  writeFileSync(config, `name: standin-${path}\nbase: ${profile(path)}\nimage:\n  compression: none\n`);
  const out = join(work, 'deploy');
  const r = await runPihub(['build', '--config', config, '--stages', join(dir, 'stages'), '--out', out, '--work-dir', join(work, 'work'), '--cache-dir', CACHE_DIR], { timeoutMs: 20 * 60_000 });
  return { ...r, out };
}

/** A file of the image's root file system, read with debugfs (no mount). */
function rootFile(image: string, offset: number, path: string): string {
  return execFileSync('debugfs', ['-R', `cat ${path}`, `${image}?offset=${offset}`], { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
}

test('a base with an extra repository: its package in the image, trusted through exactly its own key', { timeout: 25 * 60_000 }, async () => {
  const r = await buildWith('signed');
  assert.equal(r.code, 0, `${r.stderr}\n${r.stdout.slice(-3000)}`);
  const m = manifest(r.out, imageBase(r.out)) as ReturnType<typeof manifest> & { stages: Array<{ key: string }> };
  for (const s of m.stages) ownStages.add(s.key);
  const image = join(r.out, m.file);
  const root = m.layout.root.offset;
  assert.equal(rootFile(image, root, '/usr/share/pihub-stand-in/hello.txt'), 'hello from the stand-in\n');
  const sources = rootFile(image, root, '/etc/apt/sources.list.d/standin.sources');
  assert.match(sources, new RegExp(`^URIs: ${served.url}/signed$`, 'm'));
  assert.match(sources, /^Signed-By: \/etc\/apt\/keyrings\/standin\.pgp$/m);
  assert.doesNotMatch(sources, /^Trusted:|trusted=/im, 'never trusted without a signature');
  const keyring = join(dir, 'image-keyring.pgp');
  execFileSync('debugfs', ['-R', `dump /etc/apt/keyrings/standin.pgp ${keyring}`, `${image}?offset=${root}`], { stdio: 'ignore' });
  assert.deepEqual(keyringKeys(readFileSync(keyring)).primary, [good.fingerprint], 'the image trusts exactly the stand-in key for it');
  assert.ok(served.requests.includes('/signed/dists/pihub/InRelease'));
  assert.deepEqual(readdirSync(r.out).filter((f) => f.endsWith('.partial')), []);
});

test('an unsigned or wrongly-signed extra repository stops the build with a sentence naming it', { timeout: 15 * 60_000 }, async () => {
  const unsigned = await buildWith('unsigned');
  assert.equal(unsigned.code, 1, unsigned.stderr);
  assert.match(unsigned.stderr, new RegExp(`repository \`standin\` \\(${served.url}/unsigned\\) is not signed \\(no InRelease or Release\\.gpg\\)`));
  const wrong = await buildWith('wrong');
  assert.equal(wrong.code, 1, wrong.stderr);
  assert.match(wrong.stderr, new RegExp(`repository \`standin\` \\(${served.url}/wrong\\) is signed by key [0-9A-F]+, which its keyring does not hold`));
  for (const out of [unsigned.out, wrong.out]) {
    assert.deepEqual(readdirSync(out).filter((f) => /\.img/.test(f)), [], 'no image in deploy/');
  }
});
