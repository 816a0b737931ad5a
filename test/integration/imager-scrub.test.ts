// Raspberry Pi Imager's files hold a password hash and a Wi-Fi key on the card's FAT partition.
// The first-boot finisher deletes them, but a network-config it does not expect made it stop
// before that; stage 25-security's scrub (ExecStopPost= of the finisher) deletes them whatever
// became of it. Both run for real here, on a scratch "FAT partition" (a bind mount, in a mount
// namespace of the test's own).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PROJECT_DIR } from '../../build/plan/inputs.ts';
import { scratch } from '../helpers/tmp.ts';

const FINISH = join(PROJECT_DIR, 'stages/10-system/01-files/usr/local/lib/pihub/imager-finish');
const SCRUB = join(PROJECT_DIR, 'stages/25-security/00-files/usr/local/lib/pihub/imager-scrub');
const DROPIN = join(PROJECT_DIR, 'stages/25-security/00-files/etc/systemd/system/pihub-imager-finish.service.d/50-pihub-scrub.conf');

/** The finisher as the card runs it, with its partition at fw and nothing run on this machine. */
const FINISH_HERE = `
import importlib.machinery, importlib.util, sys
loader = importlib.machinery.SourceFileLoader('finish', sys.argv[1])
spec = importlib.util.spec_from_loader('finish', loader)
m = importlib.util.module_from_spec(spec)
loader.exec_module(m)
m.FIRMWARE = sys.argv[2]
m.os.path.ismount = lambda p: True
# Its mark that cloud-init is off goes beside the partition, not into this machine's /etc.
real_open = open
m.open = lambda path, *a, **k: real_open(sys.argv[3] if path == '/etc/cloud/cloud-init.disabled' else path, *a, **k)
m.run = lambda *c: True
m.join_hub = lambda names: None
sys.exit(m.main())
`;

test('Imager\'s files leave the FAT partition even when the finisher stops on a network-config it does not expect', () => {
  assert.match(readFileSync(DROPIN, 'utf8'), /^ExecStopPost=\/usr\/local\/lib\/pihub\/imager-scrub$/m);
  for (const networkConfig of ['network:\n  version: 2\n  wifis: [a, b]\n', 'not: [yaml\n', 'wifis: 7\n']) {
    const dir = scratch('pihub-scrub-');
    const fw = join(dir, 'firmware');
    mkdirSync(fw);
    writeFileSync(join(fw, 'user-data'), '#cloud-config\nuser: {name: dana, passwd: "$y$j9T$hash"}\n');
    writeFileSync(join(fw, 'network-config'), networkConfig);
    writeFileSync(join(fw, 'meta-data'), 'instance-id: x\n');
    const disabled = join(dir, 'cloud-init.disabled');
    // One mount namespace: fw is a mount point, as the card's FAT partition is.
    const script = `mount --bind "$1" "$1" && python3 -c "$2" "$3" "$1" "$4"; echo "finisher exit $?"; SERVICE_RESULT=exit-code EXIT_STATUS=1 PIHUB_FIRMWARE="$1" PIHUB_CLOUD_DISABLED="$4" "$5"`;
    const r = spawnSync('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script, 'sh', fw, FINISH_HERE, FINISH, disabled, SCRUB], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    // Whatever the finisher did with it (stopped early, or finished), nothing of Imager's stays;
    // where the finisher left the files, the scrub says it removed them.
    const scrubbed = /pihub-imager: the finisher stopped early \(exit-code, 1\); removed ([a-z -]+) from/.exec(r.stdout)?.[1];
    if (scrubbed) assert.match(scrubbed, /user-data/);
    for (const f of ['user-data', 'network-config', 'meta-data']) assert.ok(!existsSync(join(fw, f)), `${f} is still on the partition (${JSON.stringify(networkConfig)})`);
    assert.match(readFileSync(disabled, 'utf8'), /cloud-init stays off/);
  }
});

test('the scrub leaves an unmounted partition for the next boot, and a finished card alone', () => {
  const dir = scratch('pihub-scrub-');
  const fw = join(dir, 'firmware');
  mkdirSync(fw);
  writeFileSync(join(fw, 'user-data'), 'x\n');
  const disabled = join(dir, 'cloud-init.disabled');
  const r = spawnSync(SCRUB, [], { env: { ...process.env, PIHUB_FIRMWARE: fw, PIHUB_CLOUD_DISABLED: disabled }, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.ok(existsSync(join(fw, 'user-data')), 'not a mount point: nothing is deleted (the next boot finishes the customisation)');
  assert.ok(!existsSync(disabled), 'and cloud-init stays on for it');
});
