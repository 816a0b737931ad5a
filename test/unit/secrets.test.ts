// Secrets: given without the command line, never shown in errors or logs, salted in cache keys.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseConfigText, resolveConfig, setLayer, loadConfigFile } from '../../build/config/load.ts';
import { isSecretPath, Redactor, secretValues, withSecretsHidden } from '../../build/config/secrets.ts';
import { keyValues, secretDigest } from '../../build/plan/keys.ts';
import { CommandError, createRunner, type Runner } from '../../build/core/exec.ts';
import { BuildLog } from '../../build/core/progress.ts';
import { build } from '../../build/build.ts';
import { fakeDeps } from '../helpers/fakes.ts';
import { buildOptions, fakeMirror } from '../helpers/options.ts';
import { InputError } from '../../build/core/errors.ts';
import { secretsOnCommandLine } from '../../build/build.ts';
import { invokingUser } from '../../build/deploy/deploy.ts';
import { tmpTree } from '../helpers/tmp.ts';

const PSK = 'correct-horse-battery';
const PASSWORD = 'alice-very-secret';

function errorOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof InputError, String(err));
    return err.message;
  }
  assert.fail('expected an error');
}

test('secret paths: passwords, password hashes and the Wi-Fi passphrase', () => {
  assert.ok(isSecretPath(['users', 0, 'password']));
  assert.ok(isSecretPath('users.3.password_hash'));
  assert.ok(isSecretPath('wifi.psk'));
  assert.equal(isSecretPath('wifi.ssid'), false);
  assert.equal(isSecretPath('users.x.password'), false);
  assert.equal(isSecretPath('users'), false);
});

test('a secret comes from an environment variable or a file, in the config file or with --set', () => {
  const dir = tmpTree('pihub-secrets-', { 'wifi.txt': `\uFEFF${PSK}\r\nsecond line ignored\n`, 'sub/alice.pw': `${PASSWORD}\n` });
  const file = join(dir, 'config.yaml');
  const layer = { ...parseConfigText('users:\n  - name: alice\n    password: { env: ALICE_PW }\nwifi:\n  country: GB\n  ssid: Home\n  psk: { file: wifi.txt }\n', file), baseDir: dir };
  const c = resolveConfig([layer], { ALICE_PW: PASSWORD });
  assert.equal(c.users[0]!.password, PASSWORD);
  assert.equal(c.wifi!.psk, PSK, 'first line, without BOM or CR');
  const viaSet = resolveConfig([layer, setLayer([`users.0.password.file=${join(dir, 'sub/alice.pw')}`, 'wifi.psk.env=PSK'])], { ALICE_PW: 'unused-here', PSK: 'from-the-environment' });
  assert.equal(viaSet.users[0]!.password, PASSWORD);
  assert.equal(viaSet.wifi!.psk, 'from-the-environment');
  // Relative to the config file's folder, not the working directory.
  const loaded = loadConfigFile(join(tmpTree('pihub-secrets-', { 'c.yaml': 'wifi:\n  country: GB\n  ssid: Home\n  psk: { file: psk }\n', psk: `${PSK}\n` }), 'c.yaml'));
  assert.equal(resolveConfig([loaded], {}).wifi!.psk, PSK);
});

test('a missing variable or file, or a malformed reference, is a clear error', () => {
  const yaml = (psk: string) => parseConfigText(`wifi:\n  country: GB\n  ssid: Home\n  psk: ${psk}\n`, 'config.yaml');
  assert.match(errorOf(() => resolveConfig([yaml('{ env: WIFI_PSK }')], {})), /^config\.yaml:4:3: `wifi\.psk` comes from the environment variable WIFI_PSK, which is not set; export it before the build \(through sudo: `sudo --preserve-env=WIFI_PSK …`\)$/);
  assert.match(errorOf(() => resolveConfig([yaml('{ file: /nonexistent/psk }')], {})), /`wifi\.psk` comes from the file \/nonexistent\/psk, which cannot be read \(ENOENT\)/);
  assert.match(errorOf(() => resolveConfig([yaml('{ env: A, file: b }')], {})), /`wifi\.psk`: give the secret itself, `\{ env: VARIABLE \}` or `\{ file: PATH \}`/);
});

test('errors never show a secret value, wherever it came from', () => {
  const short = 'hunter7';
  const e1 = errorOf(() => resolveConfig([parseConfigText(`wifi:\n  country: GB\n  ssid: Home\n  psk: ${short}\n`, 'config.yaml')]));
  assert.match(e1, /`wifi\.psk`: must be a WPA passphrase .*\(got 7 characters, not shown: a secret\)/);
  assert.ok(!e1.includes(short), e1);
  const e2 = errorOf(() => resolveConfig([setLayer(['users.0.name=alice', `users.0.password_hash=${PASSWORD}`])]));
  assert.ok(!e2.includes(PASSWORD), e2);
  assert.match(e2, /--set users\.0\.password_hash=<hidden>: `users\[0\]\.password_hash`: must be a crypt\(3\) hash/);
  const e3 = errorOf(() => resolveConfig([setLayer([`users.0.password=${PASSWORD}`])]));
  assert.ok(!e3.includes(PASSWORD), e3);
  const e4 = errorOf(() => setLayer([`users..password=${PASSWORD}`]));
  assert.ok(!e4.includes(PASSWORD), e4);
});

test('cache keys hold a secret only as a digest keyed with the cache\'s salt', () => {
  const config = resolveConfig([parseConfigText(`users:\n  - name: alice\n    password: ${PASSWORD}\nwifi:\n  country: GB\n  ssid: Home\n  psk: ${PSK}\n`, 'c.yaml')]);
  const reads = ['users', 'wifi.psk', 'wifi.ssid', 'wifi'];
  const a = JSON.stringify(keyValues(config, reads, 'salt-a'));
  const b = JSON.stringify(keyValues(config, reads, 'salt-b'));
  assert.notEqual(a, b, 'another cache, another digest');
  assert.equal(a, JSON.stringify(keyValues(config, reads, 'salt-a')), 'stable within one cache');
  const unsalted = (s: string) => createHash('sha256').update(`pihub:${s}`).digest('hex');
  for (const s of [PASSWORD, PSK]) {
    assert.ok(!a.includes(s), 'no plain secret');
    assert.ok(!a.includes(unsalted(s)), 'no unsalted digest');
    assert.ok(a.includes(secretDigest('salt-a', s)));
  }
  assert.match(a, /"wifi\.ssid":"Home"/, 'other values stay as they are');
  const changed = resolveConfig([parseConfigText(`users:\n  - name: alice\n    password: other-password\n`, 'c.yaml')]);
  assert.notEqual(JSON.stringify(keyValues(changed, ['users'], 'salt-a')), JSON.stringify(keyValues(config, ['users'], 'salt-a')));
});

test('the redactor hides secrets and URL credentials; short ones are left alone', () => {
  const config = resolveConfig([parseConfigText(`users:\n  - name: alice\n    password: ${PASSWORD}\n  - name: bob\n    password: abc\nwifi:\n  country: GB\n  ssid: Home\n  psk: ${PSK}\napt_proxy: http://proxyuser:proxypass@10.0.0.1:3142\n`, 'c.yaml')]);
  const r = new Redactor(secretValues(config));
  assert.equal(
    r.redact(`-o Acquire::http::Proxy=http://proxyuser:proxypass@10.0.0.1:3142 ${PASSWORD} and ${PSK}; abc stays`),
    '-o Acquire::http::Proxy=http://<hidden>@10.0.0.1:3142 <hidden> and <hidden>; abc stays',
  );
});

test('a password hash from mkpasswd is returned but never logged', async () => {
  const log: string[] = [];
  const runner = createRunner({ write: (t) => log.push(t) });
  // The command line names the parts only: the whole text exists in the output alone.
  const r = await runner.run(['sh', ['-c', "printf '$y$j9T$%s-%s-output\\n' hash looking"]], { secretOutput: true });
  assert.equal(r.stdout.trim(), '$y$j9T$hash-looking-output');
  assert.ok(!log.join('').includes('hash-looking'), log.join(''));
  assert.match(log.join(''), /^\$ sh -c/);
});

test('--set with a secret value gets a note; a reference does not', () => {
  assert.deepEqual(secretsOnCommandLine(['hub.port=1', `users.0.password=${PASSWORD}`, 'wifi.psk.env=X', 'wifi.psk=y']), ['users.0.password', 'wifi.psk']);
});

test('private outputs belong to whoever ran sudo', () => {
  const root = (process.getuid?.() ?? -1) === 0;
  assert.deepEqual(invokingUser({ SUDO_UID: '1000', SUDO_GID: '1001' }), root ? { uid: 1000, gid: 1001 } : undefined);
  assert.equal(invokingUser({}), undefined);
  assert.equal(invokingUser({ SUDO_UID: 'x', SUDO_GID: '1' }), undefined);
});

test('a password with a line break or NUL is refused (mkpasswd would hash only what comes before), without showing it', () => {
  const yaml = (pw: string) => parseConfigText(`users:\n  - name: alice\n    password: ${JSON.stringify(pw)}\n`, 'config.yaml');
  for (const pw of [`${PASSWORD}\nrest-of-it`, `${PASSWORD}\r\n`, `${PASSWORD}\0rest-of-it`, `\n${PASSWORD}`]) {
    const e = errorOf(() => resolveConfig([yaml(pw)]));
    assert.match(e, /^config\.yaml:3:15: `users\[0\]\.password`: must not contain a line break or a NUL character \(only the part before it would become the password\); give the password on one line \(got \d+ characters, not shown: a secret\)$/);
    assert.ok(!e.includes(PASSWORD) && !e.includes('rest-of-it'), e);
  }
  // From the environment or --set alike.
  const viaEnv = errorOf(() => resolveConfig([parseConfigText('users:\n  - name: alice\n    password: { env: PW }\n', 'config.yaml')], { PW: `${PASSWORD}\nrest-of-it` }));
  assert.match(viaEnv, /`users\[0\]\.password`: must not contain a line break or a NUL/);
  assert.ok(!viaEnv.includes(PASSWORD), viaEnv);
  const viaSet = errorOf(() => resolveConfig([setLayer(['users.0.name=alice', `users.0.password="${PASSWORD}\\nrest-of-it"`])]));
  assert.match(viaSet, /^--set users\.0\.password=<hidden>: `users\[0\]\.password`: must not contain a line break/);
  assert.ok(!viaSet.includes(PASSWORD), viaSet);
  // The other secrets refuse them through their own rules, unseen too.
  const psk = errorOf(() => resolveConfig([parseConfigText(`wifi:\n  country: GB\n  ssid: Home\n  psk: "${PSK}\\nmore"\n`, 'config.yaml')]));
  assert.match(psk, /`wifi\.psk`: must be a WPA passphrase/);
  const hash = errorOf(() => resolveConfig([parseConfigText('users:\n  - name: alice\n    password_hash: "$y$j9T$abcdefgh\\n"\n', 'config.yaml')]));
  assert.match(hash, /`users\[0\]\.password_hash`: must be a crypt\(3\) hash/);
  for (const e of [psk, hash]) assert.ok(!e.includes(PSK) && !e.includes('abcdefgh'), e);
  assert.match(errorOf(() => resolveConfig([yaml('x'.repeat(512))])), /`users\[0\]\.password`: must be at most 511 bytes long/);
  assert.equal(resolveConfig([yaml('x'.repeat(511))]).users[0]!.password, 'x'.repeat(511));
});

test('a secret of another type than text is not shown either (a numeric password or passphrase)', () => {
  const psk = errorOf(() => resolveConfig([parseConfigText('wifi:\n  country: GB\n  ssid: Home\n  psk: 12345678901\n', 'config.yaml')]));
  assert.equal(psk, 'config.yaml:4:8: `wifi.psk`: must be text (got a number, not shown: a secret)');
  const pw = errorOf(() => resolveConfig([setLayer(['users.0.name=alice', 'users.0.password=86753090'])]));
  assert.equal(pw, '--set users.0.password=<hidden>: `users[0].password`: must be text (got a number, not shown: a secret)');
  const hash = errorOf(() => resolveConfig([parseConfigText('users:\n  - name: alice\n    password_hash: true\n', 'config.yaml')]));
  assert.equal(hash, 'config.yaml:3:20: `users[0].password_hash`: must be text (got true or false, not shown: a secret)');
  // Not shown where an overlay owns the setting either.
  const owned = withSecretsHidden({ country: 'GB', ssid: 'Home', psk: 12345678901 }, ['wifi']);
  assert.deepEqual(owned, { country: 'GB', ssid: 'Home', psk: '<hidden>' });
  assert.deepEqual(withSecretsHidden([{ name: 'alice', password: 86753090 }], ['users']), [{ name: 'alice', password: '<hidden>' }]);
});

/** Every way to cut `text` into two pieces, and into three around the secret's middle. */
function cuts(text: string, secret: string): string[][] {
  const out: string[][] = [];
  for (let i = 0; i <= text.length; i++) out.push([text.slice(0, i), text.slice(i)]);
  const at = text.indexOf(secret);
  for (let i = at; i <= at + secret.length; i++) {
    for (let j = i; j <= at + secret.length; j++) out.push([text.slice(0, i), text.slice(i, j), text.slice(j)]);
  }
  return out;
}

test('redaction finds a secret split between two reads of a stream, at every offset, and in an overlong line', () => {
  const r = new Redactor([PASSWORD, PSK]);
  const text = `line one\nE: Failed to fetch http://x/ ${PASSWORD} and ${PSK}\nlast line without a break ${PASSWORD}`;
  const whole = r.redact(text);
  assert.ok(!whole.includes(PASSWORD) && !whole.includes(PSK));
  for (const secret of [PASSWORD, PSK]) {
    for (const pieces of cuts(text, secret)) {
      const s = r.stream();
      const out = pieces.map((p) => s.push(p)).join('') + s.end();
      assert.equal(out, whole, `pieces ${JSON.stringify(pieces)}`);
    }
  }
  // A line without end is let out in parts, each safe.
  const long = `${'x'.repeat(100)}${PASSWORD}${'y'.repeat(100)}`;
  for (const pieces of cuts(long, PASSWORD)) {
    const s = r.stream(40);
    const out = pieces.map((p) => s.push(p)).join('') + s.end();
    assert.equal(out, r.redact(long), `pieces ${JSON.stringify(pieces)}`);
  }
});

test('a command\'s output reaches the log, the progress lines and the error\'s tail with secrets hidden, even when split between reads', async () => {
  const r = new Redactor([PASSWORD, 'pässwörd-zwei']);
  // printf formats: the second splits a character (ä) between the two writes.
  for (const [a, b] of [[PASSWORD.slice(0, 5), PASSWORD.slice(5)], ['p\\303', '\\244sswörd-zwei']]) {
    const log: string[] = [];
    const lines: string[] = [];
    const runner = createRunner({ write: (t) => log.push(t) }, undefined, r);
    // Two writes with a pause between: the runner reads them separately.
    const script = `printf 'out: ${a}'; sleep 0.3; printf -- '${b} end\\n'; printf 'err: ${a}' >&2; sleep 0.3; printf -- '${b}' >&2; exit 3`;
    await assert.rejects(runner.run(['sh', ['-c', script]], { step: 's', onLine: (l) => lines.push(l) }), (err: Error) => {
      assert.ok(err instanceof CommandError);
      assert.match(err.message, /\| out: <hidden> end\n {2}\| err: <hidden>$/);
      return true;
    });
    const logged = log.join('');
    assert.match(logged, /^out: <hidden> end$/m);
    assert.match(logged, /^err: <hidden>$/m);
    assert.deepEqual(lines, ['out: <hidden> end', 'err: <hidden>']);
  }
});

test('the build log hides a secret written in pieces', async () => {
  const dir = tmpTree('pihub-log-', {});
  const log = new BuildLog(join(dir, 'x.log'), new Redactor([PASSWORD]));
  for (const c of `a ${PASSWORD} b\nc ${PASSWORD}`) log.write(c);
  await log.close();
  assert.equal(readFileSync(join(dir, 'x.log'), 'utf8'), 'a <hidden> b\nc <hidden>');
});

test('the live progress line and the error it shows hide secrets too', async () => {
  const secret = 'proxy-password-9';
  const written: string[] = [];
  const runner: Runner = {
    run: (_command, options = {}) => {
      // As a runner that did not hide it would pass it on.
      options.onLine?.(`Get:1 http://deb.debian.org via ${secret}`);
      return Promise.reject(new Error(`step failed: ${secret}`));
    },
  };
  const out = process.stdout.write.bind(process.stdout);
  const err = process.stderr.write.bind(process.stderr);
  const capture = (chunk: string | Uint8Array) => { written.push(String(chunk)); return true; };
  process.stdout.write = capture as typeof process.stdout.write;
  process.stderr.write = capture as typeof process.stderr.write;
  let message = '';
  let stack = '';
  try {
    await build(buildOptions({ sets: [`base.mirror=${fakeMirror()}`, `apt_proxy=http://proxy-user:${secret}@10.0.0.1:3142`], quiet: false, isTTY: true }), fakeDeps(runner)).catch((e: Error) => {
      message = e.message;
      stack = e.stack ?? '';
    });
  } finally {
    process.stdout.write = out;
    process.stderr.write = err;
  }
  assert.match(message, /step failed: <hidden>/);
  assert.ok(stack.includes('step failed: <hidden>') && !stack.includes(secret), 'an internal error is printed with its stack');
  const shown = written.join('');
  assert.match(shown, /via <hidden>/, 'the progress line was shown');
  assert.ok(!shown.includes(secret), shown);
});
