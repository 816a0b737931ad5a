import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadOverlay, resolveOverlays, listShipped } from '../../build/stages/overlays.ts';
import { build, type BuildOptions } from '../../build/build.ts';
import { loadInputs, PROJECT_DIR } from '../../build/plan/inputs.ts';
import { fakeDeps } from '../helpers/fakes.ts';
import { InputError } from '../../build/core/errors.ts';
import { scratch, tmpTree } from '../helpers/tmp.ts';

const SHIPPED = join(PROJECT_DIR, 'overlays');

const overlay = (files: Record<string, string>) => tmpTree('pihub-overlay-', files);

function opts(over: Partial<BuildOptions>): BuildOptions {
  return {
    overlays: [], sets: [], dryRun: true, outDir: '/nonexistent/deploy', workDir: '/nonexistent/work', cacheDir: '/nonexistent/cache',
    noCache: false, quiet: true, signal: new AbortController().signal, isTTY: false, env: {}, ...over,
  };
}

const prepare = (o: BuildOptions) => loadInputs(o);

test('every shipped overlay loads and has a README', () => {
  const names = listShipped(SHIPPED);
  assert.deepEqual(names, ['admin-group', 'https', 'port-8000', 'python-datascience', 'ssh-key', 'wifi']);
  for (const n of names) {
    const o = loadOverlay(n, SHIPPED);
    assert.ok(o.description.length > 10);
    assert.ok(existsSync(join(SHIPPED, n, 'README.md')), `${n} has no README.md`);
  }
});

test('overlays merge over the config file in the order given, and --set wins over both', () => {
  const a = overlay({ 'overlay.yaml': 'description: a\nconfig:\n  hub:\n    port: 9000\n    admin_group: alpha\n' });
  const b = overlay({ 'overlay.yaml': 'description: b\nconfig:\n  hub:\n    port: 9100\n' });
  const cfg = join(overlay({ 'config.yaml': 'hub:\n  port: 7000\n  users_group: family\n' }), 'config.yaml');
  const p = prepare(opts({ configPath: cfg, overlays: [a, b] }));
  assert.equal(p.config.hub.port, 9100, 'the later overlay wins');
  assert.equal(p.config.hub.admin_group, 'alpha');
  assert.equal(p.config.hub.users_group, 'family', 'the file keeps what no overlay sets');
  const q = prepare(opts({ configPath: cfg, overlays: [a, b], sets: ['hub.port=8123'] }));
  assert.equal(q.config.hub.port, 8123);
  assert.deepEqual(q.stages.map((s) => s.id).slice(-3), [`overlay-${a.split('/').pop()}`, `overlay-${b.split('/').pop()}`, '99-finalise']);
});

test('overlays listed in the config come before those on the command line; requires come first', () => {
  const base = overlay({ 'overlay.yaml': 'description: base\n' });
  const top = overlay({ 'overlay.yaml': `description: top\nrequires: [${base}]\n` });
  const list = resolveOverlays([top], SHIPPED);
  assert.deepEqual(list.map((o) => o.dir), [base, top]);
  const cfg = join(overlay({ 'c.yaml': 'overlays: [port-8000]\n' }), 'c.yaml');
  const p = prepare(opts({ configPath: cfg, overlays: ['admin-group'] }));
  assert.deepEqual(p.config.overlays, ['port-8000', 'admin-group']);
  assert.equal(p.config.hub.port, 8000);
  assert.equal(p.config.hub.admin_group, 'sudo');
});

test('an overlay path in the config is relative to the config file\'s folder, one in `requires` to the overlay\'s, one given with --overlay to the working directory', () => {
  const dir = tmpTree('pihub-overlay-paths-', {
    'project/config.yaml': 'overlays: [./mine, port-8000]\n',
    'project/mine/overlay.yaml': 'description: mine\nrequires: [../shared/base]\nconfig:\n  hub:\n    admin_group: mine\n',
    'project/shared/base/overlay.yaml': 'description: base\nconfig:\n  hub:\n    users_group: base\n',
    'elsewhere/mine/overlay.yaml': 'description: the wrong one\nconfig:\n  hub:\n    admin_group: wrong\n',
    'cli/overlay.yaml': 'description: from the command line\nconfig:\n  hub:\n    port: 8100\n',
  });
  const cwd = process.cwd();
  process.chdir(join(dir, 'elsewhere'));
  try {
    const p = prepare(opts({ configPath: join(dir, 'project/config.yaml'), overlays: ['../cli'] }));
    assert.deepEqual(p.overlays.map((o) => o.dir), [join(dir, 'project/shared/base'), join(dir, 'project/mine'), join(SHIPPED, 'port-8000'), join(dir, 'cli')]);
    assert.equal(p.config.hub.admin_group, 'mine');
    assert.equal(p.config.hub.users_group, 'base');
    assert.equal(p.config.hub.port, 8100);
    // A missing one is named where it was looked for.
    writeFileSync(join(dir, 'project/config.yaml'), 'overlays: [./missing]\n');
    assert.throws(() => prepare(opts({ configPath: join(dir, 'project/config.yaml') })), (e: Error) => e instanceof InputError && /^\S*config\.yaml:1:12: overlay `missing`: no such overlay folder \S*project\/missing;/.test(e.message));
  } finally {
    process.chdir(cwd);
  }
});

test('`overlays` is chosen in the config file or with --overlay: with --set or inside an overlay it is an error, not ignored', () => {
  assert.throws(() => prepare(opts({ sets: ['overlays=[https]'] })), (e: Error) => e instanceof InputError && /^--set overlays=…: overlays are chosen in the config file/.test(e.message));
  const nested = overlay({ 'overlay.yaml': 'description: nested\nconfig:\n  overlays: [port-8000]\n' });
  assert.throws(() => prepare(opts({ overlays: [nested] })), (e: Error) => e instanceof InputError && /an overlay cannot choose overlays/.test(e.message));
});

test('an overlay cannot introduce an unknown key: the error names the overlay and the line', () => {
  const o = overlay({ 'overlay.yaml': 'description: bad\nconfig:\n  hub:\n    prot: 1\n' });
  assert.throws(() => prepare(opts({ overlays: [o] })), /overlay\.yaml:4:5: unknown key `prot` in `hub` \(did you mean `port`\?\)/);
});

test('malformed overlays are refused before the build, naming the overlay and the file', () => {
  assert.throws(() => resolveOverlays(['no-such-overlay'], SHIPPED), /overlay `no-such-overlay`: no such overlay folder .*shipped overlays: admin-group, https/);
  assert.throws(() => resolveOverlays([overlay({ 'README.md': 'x' })], SHIPPED), /overlay\.yaml is missing/);
  assert.throws(() => resolveOverlays([overlay({ 'overlay.yaml': 'description: [unclosed\n' })], SHIPPED), /overlay `pihub-overlay-\w+`: \S+overlay\.yaml:\d+:\d+: invalid YAML/);
  assert.throws(() => resolveOverlays([overlay({ 'overlay.yaml': 'description: x\ncolor: red\n' })], SHIPPED), /unknown key `color`/);
  assert.throws(() => resolveOverlays([overlay({ 'overlay.yaml': 'description: x\n', 'run.sh': 'echo hi\n' })], SHIPPED), (e: Error) => {
    assert.ok(e instanceof InputError);
    assert.match(e.message, /overlay `pihub-overlay-\w+`: .*run\.sh: a script must start with a #! line/);
    return true;
  });
  assert.throws(() => resolveOverlays([overlay({ 'overlay.yaml': 'description: x\n', 'setup.py': '' })], SHIPPED), /setup\.py: unknown file; an overlay may hold overlay\.yaml, README\.md, packages-nr, packages, rootfs, run\.sh, run-chroot\.sh$/);
  assert.throws(() => resolveOverlays([overlay({ 'overlay.yaml': 'description: x\n', 'packages': 'Bad_Name\n' })], SHIPPED), /packages:1: `Bad_Name` is not a Debian package name/);
});

test('a rootfs/ path escaping the root through .. or a symlink is refused', () => {
  const dotdot = overlay({ 'overlay.yaml': 'description: x\n', 'rootfs/etc/.keep': '' });
  symlinkSync('../../../../../../etc/shadow', join(dotdot, 'rootfs/etc/shadow-link'));
  assert.throws(() => resolveOverlays([dotdot], SHIPPED), /rootfs\/etc\/shadow-link: symlink to `\.\.\/.*` climbs out of the image root/);
});

test('`owns` must name config keys, with the line', () => {
  assert.throws(() => resolveOverlays([overlay({ 'overlay.yaml': 'description: x\nowns:\n  - hub.htps\n' })], SHIPPED), /overlay\.yaml:3:5: `owns` names `hub\.htps`, which is not a config key/);
});

test('a requires cycle is refused', () => {
  const dir = scratch('pihub-cycle-');
  mkdirSync(join(dir, 'a'));
  mkdirSync(join(dir, 'b'));
  writeFileSync(join(dir, 'a', 'overlay.yaml'), 'description: a\nrequires: [b]\n');
  writeFileSync(join(dir, 'b', 'overlay.yaml'), 'description: b\nrequires: [a]\n');
  assert.throws(() => resolveOverlays(['a'], dir), /requires itself through a → b/);
});

test('hub.https.mode needs the https overlay; files mode needs existing files', () => {
  assert.throws(() => prepare(opts({ sets: ['hub.https.mode=self-signed'] })), /^InputError: `hub\.https\.mode` is `self-signed`, but only the https overlay acts on `hub\.https` and it is not applied; add `--overlay https`$/);
  assert.throws(
    () => prepare(opts({ overlays: ['https'], sets: ['hub.https.mode=files', 'hub.https.cert_file=/nonexistent.crt', 'hub.https.key_file=/nonexistent.key'] })),
    /`hub\.https\.cert_file`: \/nonexistent\.crt does not exist; give a file on the build machine/,
  );
  assert.throws(() => prepare(opts({ overlays: ['https'], sets: ['hub.https.mode=files'] })), /mode `files` needs `cert_file` and `key_file`/);
});

test('--dry-run --overlay X shows what X changes', async () => {
  const r = await build(opts({ overlays: ['port-8000', 'python-datascience'], sets: ['base.mirror=file:///nonexistent'] }), fakeDeps());
  assert.ok('plan' in r);
  const text = r.plan.join('\n');
  assert.match(text, /^overlay port-8000: the hub on port 8000 instead of 8888; sets hub\.port = 8000$/m);
  assert.match(text, /^hub: port 8000,/m);
  assert.match(text, /stage \d+\/\d+ overlay-python-datascience: .*\n\s+packages: install 4 packages\n[\s\S]*?apt-get .* install .*python3-pandas python3-scipy python3-matplotlib python3-seaborn/);
});

test('the wifi overlay alone says which settings are still missing', () => {
  assert.throws(() => prepare(opts({ overlays: ['wifi'] })), /`wifi\.ssid`: is required/);
  const p = prepare(opts({ overlays: ['wifi'], sets: ['wifi.ssid=Home', 'wifi.psk=correct horse'] }));
  assert.deepEqual(p.config.wifi, { country: 'GB', ssid: 'Home', psk: 'correct horse' });
});

test('https files mode: the certificate must be a PEM certificate and the key its own unencrypted PEM private key (exit 2, one sentence)', () => {
  const dir = scratch('pihub-pem-');
  const pair = (name: string, newKey = ['rsa:2048']) => {
    const crt = join(dir, `${name}.crt`);
    const key = join(dir, `${name}.key`);
    execFileSync('openssl', ['req', '-x509', '-newkey', ...newKey, '-nodes', '-days', '1', '-subj', '/CN=pi', '-keyout', key, '-out', crt], { stdio: 'ignore' });
    return { crt, key };
  };
  const a = pair('a');
  const b = pair('b', ['ec', '-pkeyopt', 'ec_paramgen_curve:P-256']);
  const file = (name: string, text: string) => {
    writeFileSync(join(dir, name), text);
    return join(dir, name);
  };
  const encrypted = join(dir, 'enc.key');
  execFileSync('openssl', ['pkey', '-in', a.key, '-aes256', '-passout', 'pass:x', '-out', encrypted]);
  const both = file('both.pem', readFileSync(a.crt, 'utf8') + readFileSync(a.key, 'utf8'));
  const files = (crt: string, key: string) => prepare(opts({ overlays: ['https'], sets: ['hub.https.mode=files', `hub.https.cert_file=${crt}`, `hub.https.key_file=${key}`] }));
  const refused = (crt: string, key: string, message: RegExp) => {
    assert.throws(() => files(crt, key), (err: Error) => {
      assert.ok(err instanceof InputError && err.exitCode === 2, String(err));
      assert.match(err.message, message);
      assert.doesNotMatch(err.message, /\n/);
      return true;
    });
  };
  assert.equal(files(a.crt, a.key).config.hub.https.cert_file, a.crt, 'a matching pair is taken');
  refused(file('notes.txt', 'my certificate\n'), a.key, /^`hub\.https\.cert_file`: \S+notes\.txt is not a PEM certificate; give the certificate in PEM format/);
  refused(a.key, a.key, /^`hub\.https\.cert_file`: \S+a\.key is not a PEM certificate/);
  refused(file('broken.crt', '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n'), a.key, /^`hub\.https\.cert_file`: \S+broken\.crt holds a certificate that does not parse/);
  refused(both, a.key, /^`hub\.https\.cert_file`: \S+both\.pem holds a private key too, and a certificate is readable by everyone on the card; give the key only in `hub\.https\.key_file`$/);
  refused(a.crt, a.crt, /^`hub\.https\.key_file`: \S+a\.crt is not a PEM private key; give the private key in PEM format/);
  refused(a.crt, encrypted, /^`hub\.https\.key_file`: \S+enc\.key is protected by a passphrase, which nobody can type when the card starts; give it without one/);
  refused(a.crt, b.key, new RegExp(`^\`hub\\.https\\.key_file\`: ${b.key} is not the private key of the certificate \`hub\\.https\\.cert_file\` \\(${a.crt}\\); give the key the certificate was made for$`));
});
