// The scripts that run on the card (first boot, every boot) and the stage and overlay scripts,
// run for real on small inputs in scratch directories: userconf.txt from Windows with system
// accounts and a password in the wrong place, SSH host keys after a power cut, Wi-Fi settings
// for any network name. Commands that would change this machine's accounts are stand-ins
// that record their arguments; everything else is the real tool.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { PROJECT_DIR } from '../../build/plan/inputs.ts';
import { scratch } from '../helpers/tmp.ts';

const SYSTEM_FILES = join(PROJECT_DIR, 'stages/10-system/01-files/usr/local/lib/pihub');
const SETTINGS_FILES = join(PROJECT_DIR, 'stages/30-settings/00-files/usr/local/lib/pihub');

/** Every shell script of the stages and overlays: stage steps, overlay steps and files for the image. */
function shellScripts(): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.isFile() && /^#!\s*\/bin\/(ba|da)?sh\b/.test(readFileSync(path, 'utf8').split('\n', 1)[0]!)) out.push(path);
    }
  };
  walk(join(PROJECT_DIR, 'stages'));
  walk(join(PROJECT_DIR, 'overlays'));
  return out.sort();
}

/** shfmt's syntax tree: the numeric operator shfmt uses for `|` (learned from a sample, not assumed). */
function pipeOperator(): number {
  const tree = JSON.parse(execFileSync('shfmt', ['-ln', 'posix', '--to-json'], { input: 'a | b\n' }).toString()) as { Stmts: { Cmd: { Op: number } }[] };
  return tree.Stmts[0]!.Cmd.Op;
}

function pipelines(script: string, pipe: number): number[] {
  const bash = /bash/.test(readFileSync(script, 'utf8').split('\n', 1)[0]!);
  const tree = JSON.parse(execFileSync('shfmt', ['-ln', bash ? 'bash' : 'posix', '--to-json'], { input: readFileSync(script) }).toString()) as unknown;
  const lines: number[] = [];
  const walk = (node: unknown) => {
    if (Array.isArray(node)) node.forEach(walk);
    else if (node && typeof node === 'object') {
      const n = node as Record<string, unknown>;
      if (n.Type === 'BinaryCmd' && (n.Op === pipe || n.Op === pipe + 1)) lines.push((n.OpPos as { Line: number }).Line);
      Object.values(n).forEach(walk);
    }
  };
  walk(tree);
  return lines;
}

describe('stage and overlay scripts', () => {
  const scripts = shellScripts();

  it('are found (stage steps, overlay steps, the card\'s own scripts)', () => {
    const names = scripts.map((s) => relative(PROJECT_DIR, s));
    for (const expected of ['stages/30-settings/01-run-chroot.sh', 'stages/10-system/01-files/usr/local/lib/pihub/userconf', 'overlays/https/run.sh']) {
      assert.ok(names.includes(expected), `${expected} not among ${names.join(', ')}`);
    }
  });

  it('are shellcheck-clean', () => {
    const r = spawnSync('shellcheck', ['--format=gcc', ...scripts], { encoding: 'utf8' });
    assert.ok(!r.error, `shellcheck is not installed (run ci/setup-host.sh): ${r.error?.message}`);
    assert.equal(r.stdout + r.stderr, '', 'shellcheck findings');
    assert.equal(r.status, 0);
  });

  it('stop on errors and unset variables (set -eu or #!/bin/sh -eu), as the engine runs them', () => {
    for (const s of scripts) {
      const text = readFileSync(s, 'utf8');
      const first = text.split('\n', 1)[0]!;
      const eu = /^#!\S+\s+-eu\b/.test(first) || /^set -eu\b/m.test(text) || /^set -euo pipefail\b/m.test(text);
      assert.ok(eu, `${relative(PROJECT_DIR, s)}: neither \`#!/bin/sh -eu\` nor \`set -eu\``);
    }
  });

  it('hide no failing command in a pipeline (sh has no pipefail; only the last command\'s status counts)', () => {
    const pipe = pipeOperator();
    const found: string[] = [];
    for (const s of scripts) {
      const text = readFileSync(s, 'utf8');
      if (/^set -euo pipefail\b/m.test(text)) continue;
      for (const line of pipelines(s, pipe)) found.push(`${relative(PROJECT_DIR, s)}:${line}`);
    }
    assert.deepEqual(found, [], 'pipelines whose first commands may fail unnoticed');
  });
});

/** Stand-ins for the commands that change accounts; each records its arguments and stdin. */
function accountStandIns(dir: string, passwd: string, group: string): { bin: string; log: string } {
  const bin = join(dir, 'bin');
  const log = join(dir, 'calls.log');
  execFileSync('mkdir', ['-p', bin]);
  writeFileSync(join(dir, 'passwd'), passwd);
  writeFileSync(join(dir, 'group'), group);
  const record = (name: string, body = '') => {
    writeFileSync(join(bin, name), `#!/bin/sh\nprintf '%s' '${name}' >> '${log}'\nfor a; do printf ' [%s]' "$a" >> '${log}'; done\necho >> '${log}'\n${body}`);
    chmodSync(join(bin, name), 0o755);
  };
  record('getent', `db=$1; shift\nexec grep -E "^$1:" '${dir}'/"$db"\n`);
  record('adduser');
  record('addgroup');
  record('usermod');
  record('chpasswd', `sed 's/^/  stdin: /' >> '${log}'\n`);
  record('sync');
  return { bin, log };
}

describe('userconf (first boot accounts from the boot partition)', () => {
  const HASH_A = '$6$salt1$AbCdEfGhIjKlMnOpQrStUv./0123456789';
  const HASH_D = '$y$j9T$saltsalt$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';

  function run(lines: string, bom = true) {
    const dir = scratch('pihub-userconf-');
    const { bin, log } = accountStandIns(
      dir,
      'root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\ndave:x:1001:1001::/home/dave:/bin/bash\n',
      'root:x:0:\nsudo:x:27:\njupyter_admin:x:990:\ndave:x:1001:\n',
    );
    const file = join(dir, 'userconf.txt');
    writeFileSync(file, Buffer.concat([Buffer.from(bom ? [0xef, 0xbb, 0xbf] : []), Buffer.from(lines)]));
    const report = join(dir, 'run/issue.d/40-pihub-userconf.issue');
    const r = spawnSync('sh', [join(SYSTEM_FILES, 'userconf')], {
      env: { ...process.env, PATH: `${bin}:${process.env.PATH}`, PIHUB_USERCONF: file, PIHUB_USERCONF_REPORT: report },
      encoding: 'utf8',
    });
    return {
      ...r,
      output: r.stdout + r.stderr,
      calls: existsSync(log) ? readFileSync(log, 'utf8') : '',
      report: existsSync(report) ? readFileSync(report, 'utf8') : '',
      fileGone: !existsSync(file),
    };
  }

  it('reads a Windows file (BOM, CRLF): the first account is the admin, system accounts and bad lines are refused without echoing them', () => {
    const r = run(
      [
        `alice:${HASH_A}`,
        `daemon:${HASH_A}`,
        `nobody:${HASH_A}`,
        'alice my-secret-typed-here',
        `Bob:${HASH_A}`,
        'carol:plain-password-7',
        `sudo:${HASH_A}`,
        `erin:${HASH_A}:19000:0:99999:7:::`,
        '# a comment',
        '',
        `dave:${HASH_D}`,
      ].join('\r\n') + '\r\n',
    );
    assert.equal(r.status, 0, r.output);
    assert.ok(r.fileGone, 'userconf.txt is deleted after use');
    // Passwords go through chpasswd's stdin, with neither the BOM nor the CR.
    assert.equal(
      r.calls,
      [
        'getent [passwd] [alice]',
        'getent [group] [alice]',
        'adduser [--disabled-password] [--comment] [] [alice]',
        'chpasswd [--encrypted]',
        `  stdin: alice:${HASH_A}`,
        'getent [group] [jupyter_admin]',
        'usermod [--append] [--groups] [sudo,jupyter_admin] [alice]',
        'getent [passwd] [daemon]',
        'getent [passwd] [nobody]',
        'getent [passwd] [sudo]',
        'getent [group] [sudo]',
        'getent [passwd] [dave]',
        'chpasswd [--encrypted]',
        `  stdin: dave:${HASH_D}`,
        'sync',
        '',
      ].join('\n'),
    );
    for (const secret of ['my-secret-typed-here', 'plain-password-7', HASH_A, HASH_D, 'Bob']) {
      assert.ok(!r.output.includes(secret), `the output shows \`${secret}\`:\n${r.output}`);
      assert.ok(!r.report.includes(secret), `the login banner shows \`${secret}\``);
    }
    assert.match(r.output, /created alice\n[\s\S]*alice is an administrator \(sudo, jupyter_admin\)/);
    assert.match(r.output, /dave exists; setting its password/);
    assert.match(r.report, /^userconf\.txt line 2 was skipped: `daemon` is a system account \(uid 1\)/m);
    assert.match(r.report, /^userconf\.txt line 3 was skipped: `nobody` is a system account \(uid 65534\)/m);
    assert.match(r.report, /^userconf\.txt line 4 was skipped: not NAME:HASH \(the line is not shown/m);
    assert.match(r.report, /^userconf\.txt line 5 was skipped: not a valid user name/m);
    assert.match(r.report, /^userconf\.txt line 6 was skipped: `carol`: the password must be a crypt hash/m);
    assert.match(r.report, /^userconf\.txt line 7 was skipped: `sudo` is the name of a group/m);
    assert.match(r.report, /^userconf\.txt line 8 was skipped: `erin`: the password must be a crypt hash/m);
    assert.equal(r.report.split('\n').filter(Boolean).length, 7);
  });

  it('makes the first accepted account the admin when the first line is refused, and never root', () => {
    const r = run(`root:${HASH_A}\nfrank:${HASH_A}\n`, false);
    assert.equal(r.status, 0, r.output);
    assert.doesNotMatch(r.calls, /chpasswd[^\n]*\n {2}stdin: root:/);
    assert.match(r.calls, /usermod \[--append\] \[--groups\] \[sudo,jupyter_admin\] \[frank\]/);
    assert.match(r.report, /line 1 was skipped: `root` is a system account \(uid 0\)/);
  });
});

describe('ssh-host-keys (every boot)', () => {
  const script = join(SYSTEM_FILES, 'ssh-host-keys');
  const run = (dir: string) => execFileSync('sh', [script], { env: { ...process.env, PIHUB_SSH_DIR: dir }, encoding: 'utf8' });
  const fingerprint = (file: string) => execFileSync('ssh-keygen', ['-l', '-f', file], { encoding: 'utf8' }).split(' ')[1];
  const TYPES = ['rsa', 'ecdsa', 'ed25519'];

  it('makes the set once, keeps a sound set, and remakes what a power cut left empty, cut short or mismatched', () => {
    const dir = scratch('pihub-hostkeys-');
    assert.match(run(dir), /made the SSH host key .*rsa[\s\S]*ecdsa[\s\S]*ed25519/);
    const first = Object.fromEntries(TYPES.map((t) => [t, fingerprint(join(dir, `ssh_host_${t}_key.pub`))]));
    for (const t of TYPES) assert.equal(statSync(join(dir, `ssh_host_${t}_key`)).mode & 0o777, 0o600);
    assert.equal(run(dir), '', 'a sound set is left alone');
    // A power cut: one key empty, one cut short, one public key lost, a temporary file left.
    writeFileSync(join(dir, 'ssh_host_ed25519_key'), '');
    const rsa = readFileSync(join(dir, 'ssh_host_rsa_key'));
    writeFileSync(join(dir, 'ssh_host_rsa_key'), rsa.subarray(0, rsa.length / 2), { mode: 0o600 });
    execFileSync('rm', [join(dir, 'ssh_host_ecdsa_key.pub')]);
    writeFileSync(join(dir, 'ssh_host_ecdsa_key.new'), '');
    const out = run(dir);
    assert.match(out, /made the SSH host key .*ssh_host_rsa_key/);
    assert.match(out, /made the SSH host key .*ssh_host_ed25519_key/);
    assert.match(out, /rewrote .*ssh_host_ecdsa_key\.pub/);
    assert.notEqual(fingerprint(join(dir, 'ssh_host_rsa_key.pub')), first.rsa);
    assert.notEqual(fingerprint(join(dir, 'ssh_host_ed25519_key.pub')), first.ed25519);
    assert.equal(fingerprint(join(dir, 'ssh_host_ecdsa_key.pub')), first.ecdsa, 'the sound private key is kept');
    for (const t of TYPES) {
      const derived = execFileSync('ssh-keygen', ['-y', '-f', join(dir, `ssh_host_${t}_key`)], { encoding: 'utf8' }).split(' ').slice(0, 2).join(' ');
      assert.equal(readFileSync(join(dir, `ssh_host_${t}_key.pub`), 'utf8').split(' ').slice(0, 2).join(' '), derived.trim());
    }
    assert.deepEqual(readdirSync(dir).filter((f) => f.endsWith('.new')), []);
    assert.equal(run(dir), '');
  });
});

describe('wifi-config (the settings stage)', () => {
  const script = join(SETTINGS_FILES, 'wifi-config');
  function write(ssid: string, psk: string, country = 'DE') {
    const out = join(scratch('pihub-wifi-'), 'wpa_supplicant-wlan0.conf');
    const r = spawnSync('python3', [script, out], { env: { ...process.env, PIHUB_WIFI_SSID: ssid, PIHUB_WIFI_PSK: psk, PIHUB_WIFI_COUNTRY: country }, encoding: 'utf8' });
    return { ...r, out, text: existsSync(out) ? readFileSync(out, 'utf8') : '' };
  }
  const network = (text: string) => /network=\{\n([\s\S]*?)\n\}/.exec(text)?.[1] ?? '';

  it('stores a passphrase only as its WPA PSK (IEEE 802.11i test vector)', () => {
    const r = write('IEEE', 'password');
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.text, /^country=DE$/m);
    assert.equal(network(r.text), '\t# ssid "IEEE"\n\tssid=49454545\n\tpsk=f42c6fc52df0ebef9ebb4b90b38a5f902e83fe1b135a70e23aed762e9710a12e');
    assert.ok(!r.text.includes('password'));
    assert.equal(statSync(r.out).mode & 0o777, 0o600);
  });

  it('writes a 64-hex-digit PSK as it is', () => {
    const psk = 'F42C6FC52DF0EBEF9EBB4B90B38A5F902E83FE1B135A70E23AED762E9710A12E';
    const r = write('Home Net', psk);
    assert.equal(r.status, 0, r.stderr);
    assert.match(network(r.text), new RegExp(`^\\tpsk=${psk.toLowerCase()}$`, 'm'));
    assert.doesNotMatch(r.text, /invalid|error|passphrase must/i);
  });

  it('writes any network name safely (quotes, backslash, line break, UTF-8) in hex, with no readable copy that could break the file', () => {
    const ssid = 'Café "5G"\\\nnetwork={';
    const r = write(ssid, 'correct horse battery');
    assert.equal(r.status, 0, r.stderr);
    assert.equal(network(r.text).split('\n').length, 2);
    assert.match(network(r.text), new RegExp(`^\\tssid=${Buffer.from(ssid).toString('hex')}$`, 'm'));
    assert.equal(r.text.match(/network=\{/g)!.length, 1);
  });

  it('refuses a bad passphrase without writing anything', () => {
    const r = write('IEEE', 'short');
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /8 to 63 printable ASCII characters, or a PSK of 64 hex digits/);
    assert.equal(r.text, '');
  });
});

describe('imager-finish (first boot, after cloud-init applied Imager\'s customisation)', () => {
  const script = join(SYSTEM_FILES, 'imager-finish');

  /** A scratch card: Imager's files on the FAT partition, the system's folders, stand-ins for the commands that change the system. */
  function run(files: Record<string, string | null>, cmdline = 'console=ttyS1 cfg80211.ieee80211_regdom=GB') {
    const root = scratch('pihub-imager-');
    const firmware = join(root, 'boot/firmware');
    for (const d of ['boot/firmware', 'etc/cloud', 'etc/pihub', 'etc/ssh/sshd_config.d', 'etc/modprobe.d', 'proc']) mkdirSync(join(root, d), { recursive: true });
    writeFileSync(join(root, 'proc/cmdline'), `${cmdline}\n`);
    // null: a folder where Imager's file would be.
    for (const [name, text] of Object.entries(files)) {
      if (text === null) mkdirSync(join(firmware, name, 'inside'), { recursive: true });
      else writeFileSync(join(firmware, name), text);
    }
    const { bin, log } = accountStandIns(root, '', '');
    for (const name of ['mount', 'groupadd', 'systemctl']) {
      writeFileSync(join(bin, name), `#!/bin/sh\nprintf '%s' '${name}' >> '${log}'\nfor a; do printf ' [%s]' "$a" >> '${log}'; done\necho >> '${log}'\n`);
      chmodSync(join(bin, name), 0o755);
    }
    const r = spawnSync('python3', [script], { env: { ...process.env, PATH: `${bin}:${process.env.PATH}`, PIHUB_ROOT: root }, encoding: 'utf8', timeout: 60_000 });
    return {
      ...r,
      output: r.stdout + r.stderr,
      left: readdirSync(firmware),
      cloudInitOff: existsSync(join(root, 'etc/cloud/cloud-init.disabled')),
      calls: existsSync(log) ? readFileSync(log, 'utf8') : '',
      modprobe: existsSync(join(root, 'etc/modprobe.d/pihub-wifi.conf')) ? readFileSync(join(root, 'etc/modprobe.d/pihub-wifi.conf'), 'utf8') : '',
    };
  }

  const USER_DATA = '#cloud-config\nhostname: kitchen\nuser:\n  name: nobody-imager-test\n  groups: users,sudo\nssh_pwauth: false\n';
  const NETWORK = 'network:\n  version: 2\n  wifis:\n    wlan0:\n      regulatory-domain: DE\n      access-points:\n        "Home": {password: "0123abcd"}\n';

  it('applies what it can, removes Imager\'s files from the FAT partition and switches cloud-init off', () => {
    const r = run({ 'user-data': USER_DATA, 'network-config': NETWORK, 'meta-data': 'instance-id: x\n' });
    assert.equal(r.status, 0, r.output);
    assert.deepEqual(r.left, [], 'no password hash or Wi-Fi key is left on the card');
    assert.ok(r.cloudInitOff);
    assert.equal(r.modprobe, 'options cfg80211 ieee80211_regdom=DE\n');
    assert.match(r.output, /nobody-imager-test was not created/);
    assert.match(r.output, /customisation finished; cloud-init is off from now on/);
  });

  it('whatever is malformed (a list of Wi-Fi networks, no YAML at all, nesting too deep to read, a folder for a file), still removes Imager\'s files and switches cloud-init off, saying what went wrong', () => {
    for (const [files, says] of [
      [{ 'user-data': USER_DATA, 'network-config': 'wifis: [a, b]\n', 'meta-data': 'instance-id: x\n' }, /network-config: `wifis` is not a mapping of interfaces; its Wi-Fi country is ignored/],
      [{ 'user-data': USER_DATA, 'network-config': 'network: [1, 2]\n' }, /network-config is not a netplan mapping/],
      [{ 'user-data': '\u0000\u0001 not yaml {{{', 'network-config': '{{{: [' }, /cannot read user-data: [^\n]+\npihub-imager: cannot read network-config: /],
      [{ 'user-data': '['.repeat(100_000), 'network-config': NETWORK }, /reading user-data failed \(RecursionError: [^\n]*\); going on\n[\s\S]*customisation finished without reading user-data/],
      [{ 'user-data': USER_DATA, 'network-config': NETWORK, 'meta-data': null }, /Wi-Fi country DE/],
    ] as Array<[Record<string, string | null>, RegExp]>) {
      const r = run(files);
      const what = `${JSON.stringify(files).slice(0, 120)}\n${r.output}`;
      assert.deepEqual(r.left, [], `Imager's files are left on the card: ${what}`);
      assert.ok(r.cloudInitOff, `cloud-init stays on: ${what}`);
      assert.ok(r.status === 0 || r.status === 1, `exit ${r.status}: ${what}`);
      assert.doesNotMatch(r.output, /Traceback/, what);
      assert.match(r.output, says, what);
      assert.match(r.output, /pihub-imager: removed user-data, network-config, meta-data from /, what);
    }
  });
});
