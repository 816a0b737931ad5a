import { test } from 'node:test';
import { scratch } from '../helpers/tmp.ts';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfigFile, parseConfigText, resolveConfig, setLayer, deepMerge, knownKeysAt } from '../../build/config/load.ts';
import { ConfigSchema, DEFAULTS } from '../../build/config/schema.ts';
import { InputError } from '../../build/core/errors.ts';
import { suggest } from '../../build/config/format.ts';
import { loadStage } from '../../build/stages/load.ts';
import { loadOverlay } from '../../build/stages/overlays.ts';

/** Resolve a YAML text as config.yaml and return the error message (or fail). */
function errorOf(yaml: string, sets: string[] = []): string {
  try {
    resolveConfig([parseConfigText(yaml, 'config.yaml'), ...(sets.length ? [setLayer(sets)] : [])]);
  } catch (err) {
    assert.ok(err instanceof InputError, `expected InputError, got ${String(err)}`);
    assert.equal(err.exitCode, 2);
    return err.message;
  }
  assert.fail('expected the config to be rejected');
}

const USER = 'users:\n  - name: alice\n    password: secret\n';

test('the default config is valid and holds the documented defaults', () => {
  const c = resolveConfig([]);
  assert.equal(c.hub.port, 8888);
  assert.equal(c.hub.admin_group, 'jupyter_admin');
  assert.equal(c.base.suite, 'trixie');
  assert.equal(c.base.architecture, 'arm64');
  assert.deepEqual(c.users, []);
  assert.equal(c.wifi, null);
  assert.equal(c.image.compression, 'zstd');
  assert.equal(c.ssh.password_auth, 'auto');
  assert.deepEqual(ConfigSchema.parse(DEFAULTS), DEFAULTS, 'the defaults pass the schema unchanged');
});

test('a full example config is accepted and user defaults are filled in', () => {
  const c = resolveConfig([parseConfigText(`${USER}hub:\n  port: 8000\nssh:\n  enabled: true\n`, 'config.yaml')]);
  assert.equal(c.hub.port, 8000);
  assert.equal(c.users[0]!.admin, false);
  assert.deepEqual(c.users[0]!.ssh_authorized_keys, []);
  assert.equal(c.ssh.enabled, true);
  assert.equal(c.hub.admin_group, 'jupyter_admin', 'unset keys keep their defaults');
});

test('config file missing: names the file and what to do', () => {
  assert.throws(() => loadConfigFile('/nonexistent/pihub.yaml'), (err: Error) => {
    assert.ok(err instanceof InputError);
    assert.match(err.message, /config file \/nonexistent\/pihub\.yaml does not exist/);
    assert.match(err.message, /config\.example\.yaml/);
    return true;
  });
});

test('invalid YAML: line and column', () => {
  const dir = scratch('pihub-');
  const file = join(dir, 'bad.yaml');
  writeFileSync(file, 'name: pi\nhub:\n  port: [8000\n');
  assert.throws(() => loadConfigFile(file), (err: Error) => {
    assert.match(err.message, /bad\.yaml:\d+:\d+: invalid YAML/);
    return true;
  });
  assert.throws(() => parseConfigText('a: 1\na: 2\n', 'config.yaml'), /config\.yaml:2:1: invalid YAML: Map keys must be unique/);
});

test('a YAML document that is not a mapping', () => {
  assert.throws(() => parseConfigText('- just\n- a list\n', 'config.yaml'), /must be a YAML mapping/);
});

test('unknown key: named with its line and a suggestion', () => {
  const msg = errorOf('hub:\n  prot: 8000\n');
  assert.match(msg, /^config\.yaml:2:3: unknown key `prot` in `hub` \(did you mean `port`\?\)$/);
});

test('unknown top-level key lists the known keys when nothing is close', () => {
  const msg = errorOf('zzzzzz: 1\n');
  assert.match(msg, /unknown key `zzzzzz` \(known keys: name, hostname, base, users, hub,/);
});

test('wrong type: says what was expected and what was given', () => {
  assert.match(errorOf('hub:\n  port: "eighty"\n'), /^config\.yaml:2:9: `hub\.port`: must be a number \(got "eighty"\)$/);
  assert.match(errorOf('ssh:\n  enabled: yes please\n'), /`ssh\.enabled`: must be true or false/);
  assert.match(errorOf('users: alice\n'), /`users`: must be a list/);
});

test('bad values: port 0 and 70000', () => {
  assert.match(errorOf('hub:\n  port: 0\n'), /`hub\.port`: must be a TCP port from 1 to 65535 \(got 0\)/);
  assert.match(errorOf('hub:\n  port: 70000\n'), /`hub\.port`: must be a TCP port from 1 to 65535 \(got 70000\)/);
});

test('bad values: user names Root and 1abc', () => {
  assert.match(errorOf('users:\n  - name: Root\n    password: x\n'), /config\.yaml:2:11: `users\[0\]\.name`: must be a user name: a lowercase letter/);
  assert.match(errorOf('users:\n  - name: 1abc\n    password: x\n'), /`users\[0\]\.name`: must be a user name.*\(got "1abc"\)/);
  assert.match(errorOf('users:\n  - name: root\n    password: x\n'), /`root` is a system account/);
});

test('bad values: duplicate user names', () => {
  assert.match(errorOf(`${USER}  - name: alice\n    password: other\n`), /config\.yaml:4:11: `users\[1\]\.name`: duplicate user name `alice`/);
});

test('bad values: a user with neither password nor password_hash', () => {
  assert.match(errorOf('users:\n  - name: bob\n'), /`users\[0\]`: user `bob` needs `password` or `password_hash`/);
  assert.match(errorOf('users:\n  - name: bob\n    password: a\n    password_hash: $6$x$y\n'), /has both `password` and `password_hash`/);
  assert.match(errorOf('users:\n  - name: bob\n    password_hash: plain\n'), /`users\[0\]\.password_hash`: must be a crypt\(3\) hash/);
});

test('bad values: an admin group name with a space', () => {
  assert.match(errorOf('hub:\n  admin_group: hub admins\n'), /`hub\.admin_group`: must be a group name.*\(got "hub admins"\)/);
});

test('bad values: compression rar', () => {
  assert.match(errorOf('image:\n  compression: rar\n'), /`image\.compression`: must be one of `xz`, `zstd`, `gzip`, `none` \(got "rar"\)/);
});

test('bad values: a host name that is not a valid host name', () => {
  assert.match(errorOf('hostname: my_pi!\n'), /`hostname`: must be a valid host name/);
  assert.match(errorOf('hostname: -pi\n'), /`hostname`: must be a valid host name/);
  assert.match(errorOf(`hostname: ${'a'.repeat(64)}\n`), /`hostname`: must be a valid host name/);
});

test('backup settings: defaults, a time as YAML gives it, and bad values', () => {
  const c = resolveConfig([]);
  assert.deepEqual(c.backup, { drive_label: 'PIHUB-BACKUP', sftp: null, time: '03:00', keep_daily: 7, keep_weekly: 5, keep_monthly: 12 });
  // A NAS: a folder in the login's home, one from the root (`//`), a port.
  for (const url of ['sftp://pihub@nas.local/backups/kitchen-pi', 'sftp://pihub@192.168.1.20//volume1/backups', 'sftp://pi_backup@nas.example.org:2222/b']) {
    assert.equal(resolveConfig([parseConfigText(`backup:\n  sftp: ${url}\n`, 'config.yaml')]).backup.sftp, url);
  }
  for (const bad of ['nas.local:/backups', 'sftp://nas.local/backups', 'sftp://pihub@nas.local', 'sftp://pihub@nas.local/', 'sftp://pihub@nas.local/my backups', '"sftp://pihub@nas.local/b,c\'d"', 'sftp://pihub@-nas/b']) {
    assert.match(errorOf(`backup:\n  sftp: ${bad}\n`), /`backup\.sftp`: must be an SFTP address such as `sftp:\/\/pihub@nas\.local\/backups\/kitchen-pi`/, bad);
  }
  // YAML 1.2 reads 3:30 as a string (YAML 1.1 would have made it 210).
  assert.equal(resolveConfig([parseConfigText('backup:\n  time: 3:30\n', 'config.yaml')]).backup.time, '3:30');
  assert.match(errorOf('backup:\n  time: "25:00"\n'), /`backup\.time`: must be a time of day as HH:MM/);
  assert.match(errorOf('backup:\n  drive_label: my backup\n'), /`backup\.drive_label`: must be a file system label/);
  assert.match(errorOf(`backup:\n  drive_label: ${'A'.repeat(17)}\n`), /`backup\.drive_label`: must be a file system label of 1 to 16/);
  assert.match(errorOf('backup:\n  keep_daily: 0\n  keep_weekly: 0\n  keep_monthly: 0\n'), /keep at least one snapshot/);
});

test('memory settings: auto by default, numbers of the config\'s own, bad values', () => {
  const c = resolveConfig([]);
  assert.equal(c.hub.memory_limit_mib, 'auto');
  assert.equal(c.hub.max_servers, 'auto');
  const own = resolveConfig([parseConfigText('hub:\n  memory_limit_mib: 600\n  max_servers: 4\n', 'config.yaml')]);
  assert.equal(own.hub.memory_limit_mib, 600);
  assert.equal(own.hub.max_servers, 4);
  assert.match(errorOf('hub:\n  memory_limit_mib: lots\n'), /`hub\.memory_limit_mib`: must be `auto` or a number of MiB, at least 128/);
  assert.match(errorOf('hub:\n  memory_limit_mib: 64\n'), /`hub\.memory_limit_mib`: must be `auto` or a number of MiB, at least 128/);
  assert.match(errorOf('hub:\n  max_servers: 0\n'), /`hub\.max_servers`: must be `auto` or a whole number, at least 1/);
});

test('every problem is reported at once', () => {
  const msg = errorOf('hub:\n  port: 0\nimage:\n  compression: rar\n');
  assert.equal(msg.split('\n').length, 2);
});

test('--set overrides the file and keeps types; errors name the --set', () => {
  const c = resolveConfig([parseConfigText('hub:\n  port: 8000\n', 'config.yaml'), setLayer(['hub.port=9000', 'ssh.enabled=true', 'hostname=kitchen'])]);
  assert.equal(c.hub.port, 9000);
  assert.equal(c.ssh.enabled, true);
  assert.equal(c.hostname, 'kitchen');
  assert.match(errorOf('', ['hub.port=0']), /^--set hub\.port=0: `hub\.port`: must be a TCP port/);
  assert.match(errorOf('', ['hub.prot=1']), /^--set hub\.prot=1: unknown key `prot` in `hub` \(did you mean `port`\?\)/);
  assert.throws(() => setLayer(['novalue']), /expected KEY=VALUE/);
});

test('--set can change one field of a listed user', () => {
  const c = resolveConfig([parseConfigText(USER, 'config.yaml'), setLayer(['users.0.admin=true'])]);
  assert.equal(c.users[0]!.admin, true);
  assert.equal(c.users[0]!.name, 'alice');
});

test('deepMerge: mappings merge, lists and scalars replace', () => {
  assert.deepEqual(deepMerge({ a: { b: 1, c: 2 }, l: [1, 2] }, { a: { c: 3 }, l: [9] }), { a: { b: 1, c: 3 }, l: [9] });
});

test('knownKeysAt reads keys from the schema', () => {
  assert.ok(knownKeysAt(['hub']).includes('admin_group'));
  assert.ok(knownKeysAt(['users', 0]).includes('ssh_authorized_keys'));
  assert.ok(knownKeysAt(['wifi']).includes('psk'));
});

test('suggest finds close keys only', () => {
  assert.equal(suggest('prot', ['port', 'proxy']), 'port');
  assert.equal(suggest('compresion', ['compression']), 'compression');
  assert.equal(suggest('xyz', ['port', 'proxy']), undefined);
});

test('wifi and keys validated', () => {
  assert.match(errorOf('wifi:\n  country: gb\n  ssid: home\n  psk: secretpass\n'), /`wifi\.country`: must be a two-letter country code/);
  assert.match(errorOf('wifi:\n  country: GB\n  ssid: home\n  psk: short\n'), /`wifi\.psk`: must be a WPA passphrase/);
  assert.match(errorOf('users:\n  - name: a\n    password: x\n    ssh_authorized_keys: ["not a key"]\n'), /ssh_authorized_keys\[0\]`: must be one public key line/);
});

test('wifi: an SSID is any 1 to 32 bytes (not characters), a PSK 64 hex digits or a passphrase', () => {
  const wifi = (ssid: string, psk = 'secretpass') => resolveConfig([setLayer(['wifi.country=GB', `wifi.ssid=${ssid}`, `wifi.psk=${psk}`])]).wifi;
  assert.equal(wifi('Café "5G" \\ ok')?.ssid, 'Café "5G" \\ ok');
  assert.equal(wifi('é'.repeat(16))?.ssid, 'é'.repeat(16));
  assert.equal(wifi('home', 'F'.repeat(64))?.psk, 'F'.repeat(64));
  assert.match(errorOf('wifi:\n  country: GB\n  ssid: "ééééééééééééééééé"\n  psk: secretpass\n'), /`wifi\.ssid`: must be 1 to 32 bytes long \(in UTF-8/);
  assert.match(errorOf('wifi:\n  country: GB\n  ssid: ""\n  psk: secretpass\n'), /`wifi\.ssid`: must be 1 to 32 bytes long/);
  assert.match(errorOf('wifi:\n  country: GB\n  ssid: "a\\0b"\n  psk: secretpass\n'), /`wifi\.ssid`: must not contain a NUL character/);
});

test('updates.automatic: security by default, all or off', () => {
  assert.equal(resolveConfig([]).updates.automatic, 'security');
  assert.equal(resolveConfig([setLayer(['updates.automatic=off'])]).updates.automatic, 'off');
  assert.match(errorOf('updates:\n  automatic: weekly\n'), /`updates\.automatic`: must be `security` \(Debian's security fixes\), `all` \(also stable point releases\) or `off`/);
});

const BOMB = ['a: &a ["x","x","x","x","x","x","x","x","x"]', ...'bcdefg'.split('').map((k, i) => `${k}: &${k} [${Array(9).fill(`*${'abcdefg'[i]}`).join(',')}]`)].join('\n');

test('an alias bomb (billion laughs) is bad input with a clear message, in every YAML file pihub reads', () => {
  assert.match(errorOf(BOMB), /^config\.yaml: invalid YAML: its aliases \(\*name\) expand to far too much data/);
  const stage = scratch('pihub-bomb-');
  writeFileSync(join(stage, 'stage.yaml'), BOMB);
  assert.throws(() => loadStage(stage, '10-x'), (err: Error) => err instanceof InputError && /stage\.yaml: invalid YAML: its aliases/.test(err.message));
  const overlay = scratch('pihub-bomb-');
  writeFileSync(join(overlay, 'overlay.yaml'), `description: x\nconfig:\n  ${BOMB.replaceAll('\n', '\n  ')}\n`);
  assert.throws(() => loadOverlay(overlay, '/nonexistent'), (err: Error) => err instanceof InputError && /overlay\.yaml: invalid YAML: its aliases/.test(err.message));
  // Aliases themselves are fine.
  assert.equal(resolveConfig([parseConfigText('hub:\n  admin_group: &g family\n  users_group: *g\n', 'c.yaml')]).hub.users_group, 'family');
});

test('__proto__, constructor and prototype keys are refused, never merged', () => {
  for (const key of ['__proto__', 'constructor', 'prototype']) {
    assert.match(errorOf(`hub:\n  ${key}:\n    port: 1\n`), new RegExp(`^config\\.yaml:2:3: \`${key}\` cannot be a key`));
    assert.throws(() => setLayer([`${key}.polluted=1`]), new RegExp(`^InputError: --set ${key}\\.polluted=…: \`${key}\` cannot be a key`));
  }
  assert.throws(() => setLayer(['hub={"__proto__": {"polluted": 1}}']), /--set hub=…: `__proto__` cannot be a key/);
  assert.throws(() => deepMerge({}, JSON.parse('{"__proto__": {"polluted": 1}}')), /`__proto__` cannot be a key/);
  const stage = scratch('pihub-proto-');
  writeFileSync(join(stage, 'stage.yaml'), 'description: x\nfiles:\n  __proto__: { mode: "0600" }\n');
  assert.throws(() => loadStage(stage, '10-x'), /stage\.yaml:3:3: `__proto__` cannot be a key/);
  assert.equal(({} as Record<string, unknown>).polluted, undefined, 'Object.prototype is untouched');
});

test('a file setting\'s relative path is relative to the config file\'s folder (to the working directory with --set)', () => {
  const dir = scratch('pihub-config-files-');
  // A real certificate and key (pihub checks them): the second key is the same one, elsewhere.
  for (const d of ['project', 'cwd']) mkdirSync(join(dir, d), { recursive: true });
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', '/CN=pi',
    '-keyout', join(dir, 'project/pi.key'), '-out', join(dir, 'project/pi.crt')], { stdio: 'ignore' });
  copyFileSync(join(dir, 'project/pi.key'), join(dir, 'cwd/other.key'));
  const file = join(dir, 'project/config.yaml');
  writeFileSync(file, 'hub:\n  https:\n    mode: files\n    cert_file: pi.crt\n    key_file: ./pi.key\n');
  const cwd = process.cwd();
  process.chdir(join(dir, 'cwd'));
  try {
    const c = resolveConfig([loadConfigFile(file)]);
    assert.equal(c.hub.https.cert_file, join(dir, 'project/pi.crt'));
    assert.equal(c.hub.https.key_file, join(dir, 'project/pi.key'));
    const viaSet = resolveConfig([loadConfigFile(file), setLayer(['hub.https.key_file=other.key'])]);
    assert.equal(viaSet.hub.https.key_file, join(dir, 'cwd/other.key'));
  } finally {
    process.chdir(cwd);
  }
});
