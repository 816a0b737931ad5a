// The command line with untrusted or secret input: bad values stop with one line that names the
// key and never shows a secret (exit 2, no stack trace), and what a dry run prints holds no
// secret either.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runPihub } from '../helpers/build.ts';
import { scratch } from '../helpers/tmp.ts';

function config(text: string): string {
  const file = join(scratch('pihub-trust-'), 'config.yaml');
  writeFileSync(file, text);
  return file;
}

/** Exit 2 with exactly one line, matching `pattern`, holding none of `secrets`. */
async function refused(args: string[], pattern: RegExp, secrets: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<string> {
  const r = await runPihub(['build', '--dry-run', ...args], { env });
  assert.equal(r.code, 2, `exit code ${r.code}, stderr:\n${r.stderr}`);
  const lines = r.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0]!, pattern);
  assert.doesNotMatch(r.stderr, /internal error|\n\s+at /);
  for (const s of secrets) {
    assert.ok(!r.stderr.includes(s) && !r.stdout.includes(s), `${s} shown:\n${r.stderr}`);
  }
  return lines[0]!;
}

test('a password with a line break or NUL is refused, from the config, --set or the environment, without showing it', async () => {
  await refused(['--config', config('users:\n  - name: alice\n    password: "kept-part\\ndropped-part"\n')],
    /^pihub: \S+config\.yaml:3:15: `users\[0\]\.password`: must not contain a line break or a NUL character .*give the password on one line \(got 22 characters, not shown: a secret\)$/,
    ['kept-part', 'dropped-part']);
  await refused(['--config', config('users:\n  - name: alice\n    password: "kept-part\\0dropped-part"\n')],
    /`users\[0\]\.password`: must not contain a line break or a NUL character/, ['kept-part', 'dropped-part']);
  await refused(['--set', 'users.0.name=alice', '--set', 'users.0.password="kept-part\\rdropped-part"'],
    /^pihub: --set users\.0\.password=<hidden>: `users\[0\]\.password`: must not contain a line break/, ['kept-part', 'dropped-part']);
  await refused(['--set', 'users.0.name=alice', '--set', 'users.0.password.env=PIHUB_TEST_PW'],
    /`users\[0\]\.password`: must not contain a line break/, ['kept-part', 'dropped-part'], { PIHUB_TEST_PW: 'kept-part\ndropped-part' });
  await refused(['--config', config('wifi:\n  country: GB\n  ssid: Home\n  psk: "kept-part\\ndropped-part"\n')],
    /`wifi\.psk`: must be a WPA passphrase of 8 to 63 printable characters .*not shown: a secret\)$/, ['kept-part', 'dropped-part']);
});

test('a numeric secret is not shown', async () => {
  await refused(['--config', config('wifi:\n  country: GB\n  ssid: Home\n  psk: 12345678901\n')],
    /^pihub: \S+config\.yaml:4:8: `wifi\.psk`: must be text \(got a number, not shown: a secret\)$/, ['12345678901']);
  await refused(['--set', 'users.0.name=alice', '--set', 'users.0.password=86753090'],
    /^pihub: --set users\.0\.password=<hidden>: `users\[0\]\.password`: must be text \(got a number, not shown: a secret\)$/, ['86753090']);
  await refused(['--set', 'users.0.name=alice', '--set', 'users.0.password_hash=86753090'],
    /`users\[0\]\.password_hash`: must be text \(got a number, not shown: a secret\)$/, ['86753090']);
});

test('an overlay path in the config is relative to the config file\'s folder, wherever pihub runs', async () => {
  const dir = scratch('pihub-trust-');
  mkdirSync(join(dir, 'project/mine'), { recursive: true });
  mkdirSync(join(dir, 'elsewhere/mine'), { recursive: true });
  writeFileSync(join(dir, 'project/config.yaml'), 'overlays: [./mine]\n');
  writeFileSync(join(dir, 'project/mine/overlay.yaml'), 'description: the one beside the config\nconfig:\n  hub:\n    port: 8111\n');
  writeFileSync(join(dir, 'elsewhere/mine/overlay.yaml'), 'description: the one in the working directory\n');
  const r = await runPihub(['build', '--dry-run', '--config', join(dir, 'project/config.yaml'), '--out', join(dir, 'deploy'), '--work-dir', join(dir, 'work'), '--cache-dir', join(dir, 'cache')], { cwd: join(dir, 'elsewhere') });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^overlay mine: the one beside the config; sets hub\.port = 8111$/m);
  assert.match(r.stdout, /^hub: port 8111,/m);
  writeFileSync(join(dir, 'project/config.yaml'), 'hub:\n  port: 8000\noverlays:\n  - ./missing\n');
  await refused(['--config', join(dir, 'project/config.yaml')], /^pihub: \S*config\.yaml:4:5: overlay `missing`: no such overlay folder \S*project\/missing; shipped overlays: .* \(or give a path to your own\)$/, []);
});

test('the dry run shows the proxy, mirror and npm registry without their credentials, and says a --set one is seen by ps', async () => {
  const dir = scratch('pihub-trust-');
  const file = join(dir, 'config.yaml');
  writeFileSync(file, [
    'base:',
    '  mirror: http://mirror-user:mirror-secret-1@127.0.0.1:9/debian',
    'hub:',
    '  proxy: npm',
    '  npm_registry: https://npm-user:npm-secret-3@127.0.0.1:9/npm/',
    '',
  ].join('\n'));
  const r = await runPihub(['build', '--dry-run', '--config', file, '--set', 'apt_proxy=http://proxy-user:proxy-secret-2@127.0.0.1:9', '--out', join(dir, 'deploy'), '--work-dir', join(dir, 'work'), '--cache-dir', join(dir, 'cache')]);
  assert.equal(r.code, 0, r.stderr);
  for (const s of ['mirror-secret-1', 'proxy-secret-2', 'npm-secret-3', 'mirror-user', 'proxy-user', 'npm-user']) {
    assert.ok(!r.stdout.includes(s) && !r.stderr.includes(s), `${s} shown`);
  }
  assert.match(r.stdout, /^pihub build plan: pihub \(trixie arm64, from http:\/\/127\.0\.0\.1:9\/debian\)$/m);
  assert.match(r.stdout, /'--aptopt=Acquire::http::Proxy "http:\/\/127\.0\.0\.1:9"' '--aptopt=Dir::Etc::netrc "\S+\/work\/pihub\/credentials\/auth\.conf"'/);
  assert.match(r.stdout, /write the build's credentials for apt and npm to \S+\/credentials \(readable by root only/);
  assert.match(r.stdout, /^note: `--set apt_proxy=…` puts a password where `ps` and your shell history show it/m);
  assert.match(r.stdout, /^note: cache state unknown: cannot reach the Debian mirror: http:\/\/127\.0\.0\.1:9\/debian\/dists\/trixie\/InRelease: /m);
});
