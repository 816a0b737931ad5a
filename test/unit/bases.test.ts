import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BASES_DIR, describeBases, listBases, loadBase, verifyKeyring } from '../../build/bases/load.ts';
import { basePackages, packageChanges } from '../../build/bases/packages.ts';
import { dearmor, keyringKeys } from '../../build/bases/openpgp.ts';
import { explainAptFailure } from '../../build/bases/apt.ts';
import { InputError } from '../../build/core/errors.ts';
import { scratch } from '../helpers/tmp.ts';
import { loadInputs } from '../../build/plan/inputs.ts';

// Fingerprints as `gpg --show-keys` prints them for the shipped keyrings.
const RASPBERRYPI = 'CF8A1AF502A2AA2D763BAE7E82B129927FA3303E';
const RASPBERRYPI_SUB = 'DE5C1FD28F18825391E92B58F7BB0489EDD83D6C';
const RASPBIAN = 'A0DA38D0D76E8B5D638872819165938D90FDDD2E';

const FIVE = ['debian-trixie-arm64', 'debian-trixie-armel', 'debian-trixie-armhf', 'raspbian-buster-armhf', 'raspios-trixie-arm64'];

function errorOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof InputError, `expected InputError, got ${String(err)}`);
    assert.equal(err.exitCode, 2);
    return err.message;
  }
  assert.fail('expected an error');
}

/** A bases/ folder holding one shipped profile (with its keys and requirements), edited by `edit`. */
function editedBase(name: string, edit: (yaml: string) => string): string {
  const dir = scratch('pihub-bases-');
  mkdirSync(join(dir, 'keys'));
  mkdirSync(join(dir, 'requirements'));
  for (const f of ['raspberrypi-archive-keyring.pgp', 'raspbian-archive-keyring.gpg']) copyFileSync(join(BASES_DIR, 'keys', f), join(dir, 'keys', f));
  for (const f of ['python3.7.txt', 'python3.13.txt']) copyFileSync(join(BASES_DIR, 'requirements', f), join(dir, 'requirements', f));
  writeFileSync(join(dir, `${name}.yaml`), edit(readFileSync(join(BASES_DIR, `${name}.yaml`), 'utf8')));
  return dir;
}

test('the five shipped bases load, with their keyrings verified', () => {
  assert.deepEqual(listBases(), FIVE);
  const arch = Object.fromEntries(FIVE.map((n) => [n, loadBase(n).profile.architecture]));
  assert.deepEqual(arch, {
    'debian-trixie-arm64': 'arm64', 'debian-trixie-armel': 'armel', 'debian-trixie-armhf': 'armhf',
    'raspbian-buster-armhf': 'armhf', 'raspios-trixie-arm64': 'arm64',
  });
  const raspios = loadBase('raspios-trixie-arm64');
  assert.deepEqual(raspios.profile.repositories.map((r) => [r.name, r.uri, r.fingerprints]), [['raspberrypi', 'http://archive.raspberrypi.com/debian', [RASPBERRYPI]]]);
  assert.equal(raspios.keyrings.repositories.raspberrypi, join(BASES_DIR, 'keys/raspberrypi-archive-keyring.pgp'));
  assert.equal(raspios.keyrings.archive, null);
  const buster = loadBase('raspbian-buster-armhf');
  assert.equal(buster.keyrings.archive, join(BASES_DIR, 'keys/raspbian-archive-keyring.gpg'));
  assert.equal(buster.profile.python, '3.7');
  assert.deepEqual(buster.profile.hub.install, ['pip']);
});

test('profiles say what each board needs', () => {
  const armhf = loadBase('debian-trixie-armhf').profile;
  assert.equal(armhf.qemu.user, 'qemu-arm');
  assert.deepEqual(armhf.qemu.machines[0], { machine: 'virt', reaches: 'hub' });
  assert.ok(armhf.boot.dtbs.includes('bcm2836-rpi-2-b.dtb'));
  const armel = loadBase('debian-trixie-armel').profile;
  assert.deepEqual(armel.packages.kernel, ['linux-image-rpi']);
  assert.deepEqual(armel.packages.blas, [], 'armel has no OpenBLAS: numpy keeps its reference BLAS');
  assert.deepEqual(armel.qemu.machines.map((m) => [m.machine, m.dtb]), [['raspi0', 'bcm2835-rpi-zero.dtb'], ['raspi1ap', 'bcm2835-rpi-a-plus.dtb']]);
  const buster = loadBase('raspbian-buster-armhf').profile;
  assert.equal(buster.boot.scheme, 'raspberrypi-legacy');
  assert.equal(buster.boot.mount, '/boot');
  assert.equal(buster.boot.root, 'partuuid');
  assert.deepEqual(buster.packages.blas, ['libatlas-base-dev']);
  assert.ok(loadBase('raspios-trixie-arm64').profile.boot.dtbs.includes('bcm2712-rpi-5-b.dtb'), 'the Pi 5');
});

test('an unknown base is refused with the list and a suggestion', () => {
  const msg = errorOf(() => loadBase('debian-trixie-armhv'));
  assert.match(msg, /unknown base `debian-trixie-armhv` \(did you mean `debian-trixie-armhf`\?\)/);
  for (const n of FIVE) assert.ok(msg.includes(`\`${n}\``));
  assert.match(errorOf(() => loadBase('../etc/passwd')), /unknown base/);
});

test('a bad profile names file, line and key', () => {
  const dir = editedBase('debian-trixie-armhf', (y) => y.replace('initramfs: true', 'initramfs: true\n  initramfz: 1').replace('machine: virt,', 'machine: virtual,'));
  const msg = errorOf(() => loadBase('debian-trixie-armhf', dir));
  assert.match(msg, /debian-trixie-armhf\.yaml:\d+:\d+: unknown key `initramfz` in `boot` \(did you mean `initramfs`\?\)/);
  assert.match(msg, /`qemu\.machines\[0\]\.machine`: must be one of `virt`, `raspi0`/);
});

test('profiles that cannot work are refused', () => {
  const cases: Array<[string, (y: string) => string, RegExp]> = [
    ['debian-trixie-armhf', (y) => y.replace('user: qemu-arm', 'user: qemu-aarch64'), /`qemu\.user`: runs armhf programs through `qemu-arm`/],
    ['debian-trixie-armhf', (y) => y.replace('initramfs: true', 'initramfs: false'), /`boot\.root`: `label` needs an initramfs/],
    ['debian-trixie-armel', (y) => y.replace('machine: raspi0,', 'machine: raspi2b,'), /`raspi2b` runs armhf kernels, not armel/],
    ['debian-trixie-armel', (y) => y.replace('dtb: bcm2835-rpi-zero.dtb', 'dtb: bcm2711-rpi-4-b.dtb'), /`bcm2711-rpi-4-b\.dtb` is not among `boot\.dtbs`/],
    ['raspbian-buster-armhf', (y) => y.replace('mount: /boot\n', 'mount: /boot/firmware\n'), /raspberrypi-bootloader writes to \/boot/],
    ['raspios-trixie-arm64', (y) => y.replace(/fingerprints: \[CF8A[0-9A-F]+\]/, 'fingerprints: []'), /`repositories\[0\]\.fingerprints`/],
  ];
  for (const [name, edit, want] of cases) assert.match(errorOf(() => loadBase(name, editedBase(name, edit))), want);
});

test('a repository keyring must hold exactly the listed keys', () => {
  const wrong = editedBase('raspios-trixie-arm64', (y) => y.replace(RASPBERRYPI, RASPBIAN));
  const msg = errorOf(() => loadBase('raspios-trixie-arm64', wrong));
  assert.match(msg, new RegExp(`repository \`raspberrypi\`: keyring .*raspberrypi-archive-keyring\\.pgp must hold exactly the keys listed in the profile; missing ${RASPBIAN}; also holds ${RASPBERRYPI}`));
  // A keyring with a second key in it trusts that key too: refused.
  const dir = scratch('pihub-keyring-');
  const both = join(dir, 'both.gpg');
  writeFileSync(both, Buffer.concat([readFileSync(join(BASES_DIR, 'keys/raspberrypi-archive-keyring.pgp')), readFileSync(join(BASES_DIR, 'keys/raspbian-archive-keyring.gpg'))]));
  assert.match(errorOf(() => verifyKeyring(both, [RASPBERRYPI], 'test')), new RegExp(`also holds ${RASPBIAN}`));
  verifyKeyring(both, [RASPBERRYPI, RASPBIAN], 'test');
  const junk = join(dir, 'junk.gpg');
  writeFileSync(junk, 'not a key\n');
  assert.match(errorOf(() => verifyKeyring(junk, [RASPBERRYPI], 'test')), /junk\.gpg: not an OpenPGP keyring/);
  assert.match(errorOf(() => verifyKeyring(join(dir, 'none.gpg'), [RASPBERRYPI], 'test')), /none\.gpg does not exist/);
});

test('keyring fingerprints match gpg, binary and armored', () => {
  const bin = readFileSync(join(BASES_DIR, 'keys/raspberrypi-archive-keyring.pgp'));
  assert.deepEqual(keyringKeys(bin), { primary: [RASPBERRYPI], sub: [RASPBERRYPI_SUB] });
  const b64 = bin.toString('base64').replace(/.{64}/g, '$&\n');
  const armored = Buffer.from(`-----BEGIN PGP PUBLIC KEY BLOCK-----\nComment: test\n\n${b64}\n=abcd\n-----END PGP PUBLIC KEY BLOCK-----\n`);
  assert.deepEqual(dearmor(armored), bin);
  assert.deepEqual(keyringKeys(armored).primary, [RASPBERRYPI]);
  assert.deepEqual(keyringKeys(readFileSync(join(BASES_DIR, 'keys/raspbian-archive-keyring.gpg'))).primary, [RASPBIAN]);
  assert.throws(() => keyringKeys(bin.subarray(0, 100)), /truncated OpenPGP packet/);
});

test('stage package lists in a base\'s names', () => {
  const buster = loadBase('raspbian-buster-armhf').profile;
  const trixie = loadBase('debian-trixie-arm64').profile;
  assert.deepEqual(
    basePackages(['systemd-resolved', 'systemd-timesyncd', 'libnss-myhostname', 'python3', 'python-is-python3'], packageChanges(buster, trixie)),
    ['libnss-myhostname', 'python3'],
  );
  assert.deepEqual(packageChanges(trixie, trixie), {}, 'the default base changes nothing');
  assert.deepEqual(basePackages(['systemd-resolved', 'python3'], packageChanges(trixie, trixie)), ['systemd-resolved', 'python3']);
  assert.deepEqual(basePackages(['a', 'b', 'a'], { b: ['a', 'c'] }), ['a', 'c']);
  const armhf = loadBase('debian-trixie-armhf').profile;
  assert.deepEqual(packageChanges(armhf, trixie), { 'linux-image-arm64/trixie-backports': ['linux-image-armmp-lpae'] });
  assert.deepEqual(
    basePackages(['linux-image-arm64/trixie-backports', 'raspi-firmware', 'libopenblas0-pthread'], packageChanges(armhf, trixie)),
    ['linux-image-armmp-lpae', 'raspi-firmware', 'libopenblas0-pthread'],
  );
  assert.deepEqual(basePackages(['constructor', 'toString'], {}), ['constructor', 'toString'], 'names that are Object properties');
});

test('`pihub bases` lists every base with models, architecture and how it is tested', () => {
  const text = describeBases(FIVE.map((n) => loadBase(n)));
  for (const n of FIVE) assert.match(text, new RegExp(`^${n}`, 'm'));
  assert.match(text, /^debian-trixie-arm64 \(default\)$/m);
  assert.match(text, /architecture: armel {3}suite: trixie/);
  assert.match(text, /Raspberry Pi: Pi 5, Pi 500/);
  assert.match(text, /QEMU: raspi0 \(bcm2835-rpi-zero\.dtb\) to the login prompt/);
  assert.match(text, /raspbian-buster-armhf\n.*\n.*hub from: pip \(pip: not built yet\)\n/);
  assert.match(text, /debian-trixie-armhf\n(.*\n){4} {2}built by pihub: yes\n/);
  assert.match(text, /raspios-trixie-arm64\n(.*\n){4} {2}built by pihub: not yet: the boot scheme `raspberrypi`/);
  assert.match(text, /tested: not reachable from CI: its machinery is tested with local stand-ins/);
  assert.match(text, /tested: built and booted in the end-to-end tier; QEMU virt \(Cortex-A15, qemu-system-arm\) with the full hub check/);
});

test('`base: NAME` chooses a profile; the config\'s own base keys override it; a base pihub does not build yet is refused, saying what it lacks', () => {
  const inputs = (sets: string[], file?: string) => {
    const o = { overlays: [], sets, env: {}, configPath: undefined as string | undefined };
    if (file !== undefined) {
      o.configPath = join(scratch('pihub-base-config-'), 'config.yaml');
      writeFileSync(o.configPath, file);
    }
    return loadInputs(o);
  };
  const plain = inputs([]).config.base;
  assert.deepEqual(
    { profile: plain.profile, suite: plain.suite, architecture: plain.architecture, mirror: plain.mirror },
    { profile: 'debian-trixie-arm64', suite: 'trixie', architecture: 'arm64', mirror: 'http://deb.debian.org/debian' },
  );
  assert.equal(inputs([], 'base: debian-trixie-arm64\n').config.base.profile, 'debian-trixie-arm64');
  const mirrored = inputs([], 'base:\n  profile: debian-trixie-arm64\n  mirror: http://127.0.0.1:3142/debian\n').config.base;
  assert.equal(mirrored.mirror, 'http://127.0.0.1:3142/debian', 'the config overrides the profile');
  assert.equal(inputs(['base.mirror=http://10.0.0.1/debian'], 'base: debian-trixie-arm64\n').config.base.mirror, 'http://10.0.0.1/debian');
  assert.match(errorOf(() => inputs([], 'base: debian-trixie-armhx\n')), /config\.yaml:1:\d+: unknown base `debian-trixie-armhx` \(did you mean `debian-trixie-armhf`\?\)/);
  assert.match(errorOf(() => inputs(['base=raspios-trixie-arm64'])), /^--set base=raspios-trixie-arm64: the base `raspios-trixie-arm64` \(.*\): pihub does not build the boot scheme `raspberrypi` \(only `debian`: raspi-firmware\), `boot\.config_txt`\/`boot\.cmdline` \(raspi-firmware writes them\) yet; the bases it builds: debian-trixie-arm64, debian-trixie-armhf \(see `pihub bases`\)/);
  assert.match(errorOf(() => inputs(['base=raspbian-buster-armhf'])), /the suite `buster` \(only trixie\).*the hub from `pip` \(only apt\), a main archive with a keyring of its own .* yet/);
  assert.match(errorOf(() => inputs(['base=debian-trixie-armel'])), /the architecture `armel` \(only arm64 and armhf\) yet/);
  assert.equal(inputs(['base=debian-trixie-armhf']).config.base.architecture, 'armhf');
  // One's own profile, by path: its keyrings and requirements are found beside it.
  const own = join(scratch('pihub-own-base-'), 'mine.yaml');
  writeFileSync(own, readFileSync(join(BASES_DIR, 'debian-trixie-armhf.yaml'), 'utf8').replace('requirements: requirements/', `requirements: ${BASES_DIR}/requirements/`));
  const mine = inputs([], `base: ${own}\n`);
  assert.equal(mine.config.base.architecture, 'armhf');
  assert.equal(mine.base?.name, 'mine');
  assert.match(errorOf(() => inputs([], 'base: ./no/such.yaml\n')), /config\.yaml:1:\d+: base profile \S*no\/such\.yaml does not exist/);
  assert.match(errorOf(() => inputs([], 'base:\n  profile: 5\n')), /`base` must be the name of a base profile/);
  assert.match(errorOf(() => inputs([], 'base: [1]\n')), /config\.yaml:1:1: `base`: must be a mapping of keys \(got a list\)/);
});

test('apt\'s refusal of a repository in one sentence, naming the right one', () => {
  const repo = (name: string, uri: string) => ({ name, uri, suites: ['pihub'], components: ['main'], keyring: `${name}.pgp`, fingerprints: ['A'.repeat(40)] });
  const repos = [repo('plain', 'http://127.0.0.1:4000/debian'), repo('extra', 'http://127.0.0.1:4000/debian-extra')];
  const wrongKey = [
    'Err:1 http://127.0.0.1:4000/debian-extra pihub InRelease',
    '  The following signatures couldn\'t be verified because the public key is not available: NO_PUBKEY 0123456789ABCDEF',
    'W: GPG error: http://127.0.0.1:4000/debian-extra pihub InRelease: The following signatures couldn\'t be verified because the public key is not available: NO_PUBKEY 0123456789ABCDEF',
    'E: The repository \'http://127.0.0.1:4000/debian-extra pihub InRelease\' is not signed.',
  ].join('\n');
  assert.equal(
    explainAptFailure(wrongKey, repos),
    'repository `extra` (http://127.0.0.1:4000/debian-extra) is signed by key 0123456789ABCDEF, which its keyring does not hold: extra.pgp (AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA); check that `keyring` and `fingerprints` are the repository\'s real signing key',
    'one sentence, for the repository whose URI it is (not the one whose URI begins it), and no "not signed" after it',
  );
  assert.match(explainAptFailure('E: The repository \'http://127.0.0.1:4000/debian pihub Release\' is not signed.', repos)!, /^repository `plain` .* is not signed/);
  assert.equal(explainAptFailure('Hit:1 http://127.0.0.1:4000/debian pihub InRelease', repos), undefined);
});
