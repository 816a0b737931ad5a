// A real build with secrets given every way (environment, file, --set): none of them shows up,
// in plain or as the old unsalted digest, in deploy/, the build's output, error output or the
// cache's metadata; the image and the log are private. No boot: the booted-image checks for
// plain passwords are in image.test.ts.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildImage, runPihub, CACHE_DIR, E2E_ROOT, type BuildRun } from '../helpers/build.ts';

const ALICE = 'alice-env-secret-7';
const CAROL = 'carol-cmdline-secret-8';
const PSK = 'wifi passphrase from a file';
const BOB_PLAIN = 'bob-never-given-9';
const BOB_HASH = execFileSync('openssl', ['passwd', '-6', '-stdin'], { input: `${BOB_PLAIN}\n` }).toString().trim();
const SECRETS = [ALICE, CAROL, PSK, BOB_HASH];
const unsalted = (s: string) => createHash('sha256').update(`pihub:${s}`).digest('hex');

/** Every secret, plain and as the old unsalted digest, that occurs in the text. */
function leaks(text: string): string[] {
  return SECRETS.flatMap((s) => [s, unsalted(s)]).filter((s) => text.includes(s));
}

describe('a build with secrets', { timeout: 30 * 60_000 }, () => {
  const dir = join(E2E_ROOT, 'e2e-secrets');
  let build: BuildRun;

  before(async () => {
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'psk.txt'), `${PSK}\n`);
    writeFileSync(join(dir, 'bob.hash'), `${BOB_HASH}\n`);
    process.env.PIHUB_TEST_ALICE = ALICE;
    build = await buildImage(
      'e2e-secrets',
      `name: e2e-secrets
users:
  - name: alice
    password: { env: PIHUB_TEST_ALICE }
    admin: true
  - name: bob
    password_hash: { file: ${join(dir, 'bob.hash')} }
wifi:
  country: GB
  ssid: Home
  psk: { file: ${join(dir, 'psk.txt')} }
image:
  compression: zstd
`,
      ['--set', 'users.2.name=carol', '--set', `users.2.password=${CAROL}`],
    );
  });

  // Its root filesystem is not needed again (a rebuild reuses the cached image): disk is scarce.
  after(() => rmSync(join(E2E_ROOT, 'work', 'e2e-secrets'), { recursive: true, force: true }));

  it('names no secret in its output, and warns about the one given with --set', () => {
    assert.deepEqual(leaks(build.stdout + build.stderr), []);
    assert.match(build.stdout, /`--set users\.2\.password=…` puts a secret where `ps` and your shell history show it/);
  });

  it('leaves no secret in deploy/: log, .json, .sha256, .info', () => {
    const files = readdirSync(build.outDir);
    for (const ext of ['.log', '.json', '.sha256', '.info']) assert.ok(files.some((f) => f.endsWith(ext)), `no ${ext} in deploy/`);
    for (const f of files.filter((x) => !x.endsWith('.img.zst'))) {
      assert.deepEqual(leaks(readFileSync(join(build.outDir, f), 'utf8')), [], `a secret in deploy/${f}`);
    }
    // The log shows that the work happened, just not the secrets.
    assert.match(readFileSync(join(build.outDir, 'e2e-secrets.log'), 'utf8'), /mkpasswd --method=yescrypt --stdin/);
  });

  it('keeps the plain secrets out of the image itself (only hashes go in)', () => {
    const img = join(build.outDir, readdirSync(build.outDir).find((f) => f.endsWith('.img.zst'))!);
    // grep exits 1 when nothing matches; the pipeline's status is grep's.
    const r = spawnSync('sh', ['-c', 'zstd -dc "$1" | grep -a -F -c -e "$2" -e "$3" -e "$4"', 'sh', img, ALICE, CAROL, PSK], { encoding: 'utf8', maxBuffer: 1 << 20 });
    assert.equal(r.stdout.trim(), '0', `a plain secret is in the image (grep: ${r.status} ${r.stderr})`);
  });

  it('makes the image and the log private, the published files readable', () => {
    for (const f of readdirSync(build.outDir)) {
      const mode = statSync(join(build.outDir, f)).mode & 0o777;
      const expected = f.endsWith('.img.zst') || f.endsWith('.log') ? 0o600 : 0o644;
      assert.equal(mode.toString(8), expected.toString(8), `mode of deploy/${f}`);
    }
  });

  it('keeps no secret in the cache\'s metadata; the salt is private and stays in the cache', () => {
    for (const sub of ['stages', 'images']) {
      for (const f of readdirSync(join(CACHE_DIR, sub)).filter((x) => x.endsWith('.json'))) {
        assert.deepEqual(leaks(readFileSync(join(CACHE_DIR, sub, f), 'utf8')), [], `a secret in ${sub}/${f}`);
      }
    }
    const salt = join(CACHE_DIR, 'salt');
    assert.ok(existsSync(salt));
    assert.equal((statSync(salt).mode & 0o777).toString(8), '600');
    const saltText = readFileSync(salt, 'utf8').trim();
    for (const f of readdirSync(build.outDir).filter((x) => !x.endsWith('.img.zst'))) {
      assert.ok(!readFileSync(join(build.outDir, f), 'utf8').includes(saltText), `the salt is in deploy/${f}`);
    }
  });

  it('shows no secret in error output', async () => {
    const bad = await runPihub(['build', '--dry-run', '--config', join(dir, 'config.yaml'), '--set', 'wifi.psk=short7', '--set', `users.0.password_hash=${CAROL}`], { env: { PIHUB_TEST_ALICE: ALICE } });
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, /`wifi\.psk`: must be a WPA passphrase .*\(got 6 characters, not shown: a secret\)/);
    assert.match(bad.stderr, /`users\[0\]\.password_hash`/);
    assert.deepEqual(leaks(bad.stderr + bad.stdout), []);
    assert.ok(!bad.stderr.includes('short7'));
  });
});
