// pihub-backup's NAS target with real tools on this machine: Debian trixie's restic (the card's
// version, for this machine's architecture) writing over SFTP to OpenSSH's sshd (started for
// each connection, as the image test's NAS is). The card's own paths are moved into a scratch
// folder and no account of this machine is backed up; the drive is one that is never plugged
// in. What the image test does on a card (the happy path, a restore onto a new card) is not
// repeated here: this is the set-up of a household without a drive, and the failures.
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Cache } from '../../build/cache/cache.ts';
import { hostArch } from '../../build/chroot/tools.ts';
import { PROJECT_DIR } from '../../build/plan/inputs.ts';
import { downloadClosure } from '../helpers/apt.ts';
import { CACHE_DIR } from '../helpers/build.ts';
import { makeNas, type Nas } from '../helpers/nas.ts';
import { scratch } from '../helpers/tmp.ts';

const SCRIPT = join(PROJECT_DIR, 'stages/26-household/01-files/usr/local/bin/pihub-backup');
const SECRET_SHOWN = /^ {4}([a-z2-9]{4}(?:-[a-z2-9]{4}){5})$/m;
const KEY_SHOWN = /^ {4}(ssh-ed25519 \S+ pihub-backup)$/m;

/**
 * Python: pihub-backup with the card's paths under STATE, reaching the NAS through PROXY (ssh's
 * ProxyCommand; on a card ssh connects to the NAS's address itself), then its command line.
 */
const HARNESS = `
import importlib.machinery, importlib.util, sys
script, state, proxy = sys.argv[1:4]
loader = importlib.machinery.SourceFileLoader('pihub_backup', script)
m = importlib.util.module_from_spec(importlib.util.spec_from_loader('pihub_backup', loader))
loader.exec_module(m)
for name, path in {'STATE': '', 'SECRET': '/secret', 'PENDING': '/secret.pending', 'NAS_KEY': '/nas-key',
                   'NAS_HOSTS': '/nas-known-hosts', 'STATUS': '/status.json', 'CARD': '/card', 'CONF': '/backup.conf',
                   'MOUNT': '/mnt', 'LOCK': '/backup.lock', 'ISSUE': '/45-pihub-backup.issue', 'CACHE': '/cache',
                   'HUB_DB': '/no-hub.sqlite', 'HOMES': '/home'}.items():
    setattr(m, name, state + path)
m.restic.__defaults__ = (m.SECRET, False)
m.IDENTITY = []
m.people = lambda: []
nas = m.nas
def through_proxy(conf, secret):
    repo = nas(conf, secret)
    at = repo.ssh.index('-p')
    repo.ssh[at:at] = ['-o', f'ProxyCommand={proxy}']
    return repo
m.nas = through_proxy
sys.argv = ['pihub-backup', *sys.argv[4:]]
sys.exit(m.main())
`;

describe('pihub-backup and a NAS over SFTP (restic 0.18, OpenSSH)', { timeout: 10 * 60_000 }, () => {
  const dir = scratch('pihub-backup-');
  const state = join(dir, 'card');
  const proxy = join(dir, 'nas-proxy');
  let nas: Nas;
  let path = '';

  const backup = (...args: string[]) => {
    const r = spawnSync('python3', ['-c', HARNESS, SCRIPT, state, proxy, ...args], { env: { ...process.env, PATH: path }, encoding: 'utf8', timeout: 120_000 });
    return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
  };
  const nasIs = (command: string) => {
    writeFileSync(proxy, `#!/bin/sh\nexec ${command}\n`);
    chmodSync(proxy, 0o755);
  };

  before(async () => {
    new Cache(CACHE_DIR).ensure();
    const archives = join(CACHE_DIR, 'debs', `trixie-${hostArch()}`);
    mkdirSync(archives, { recursive: true });
    const debs = await downloadClosure({ arch: hostArch(), suite: 'trixie', packages: ['restic'], archives });
    const restic = debs.find((d) => d.name === 'restic');
    assert.ok(restic, 'restic was not downloaded');
    execFileSync('dpkg-deb', ['-x', restic.file, join(dir, 'restic')]);
    path = `${join(dir, 'restic/usr/bin')}:${process.env.PATH}`;
    // The NAS's login (nobody) reads its authorized_keys in here.
    chmodSync(dir, 0o755);
    nas = makeNas(join(dir, 'nas'));
    nasIs(nas.command);
    mkdirSync(join(state, 'home'), { recursive: true });
    writeFileSync(join(state, 'home/notes.txt'), 'household-notes-3\n');
    writeFileSync(join(state, 'backup.conf'), `[backup]\ndrive_label = PIHUB-NO-DRIVE\nsftp = ${nas.url('kitchen-pi')}\n`);
    assert.match(execFileSync('restic', ['version'], { env: { ...process.env, PATH: path } }).toString(), /^restic 0\.18\./);
  });

  it('a household without a drive: setup shows the card\'s key until the NAS takes it, then the secret, once; the nightly run backs up to the NAS alone', () => {
    const refused = backup('setup');
    assert.equal(refused.code, 1, refused.stdout + refused.stderr);
    assert.match(refused.stdout, /no drive labelled PIHUB-NO-DRIVE is plugged in .*: backing up to the NAS only, for now/);
    assert.match(refused.stderr, /the NAS sftp:\/\/nobody@10\.0\.2\.100\/\S+ refused this card's key: add the line `sudo pihub-backup key` shows to the authorized_keys of nobody on the NAS/);
    const key = KEY_SHOWN.exec(refused.stdout)?.[1];
    assert.ok(key, `no key shown:\n${refused.stdout}`);
    assert.doesNotMatch(refused.stdout, SECRET_SHOWN, 'a secret was shown although no backup uses it');
    assert.ok(existsSync(join(state, 'secret.pending')) && !existsSync(join(state, 'secret')));
    // The same key at the next setup and from `pihub-backup key`: the one the NAS is given stays the card's.
    assert.equal(backup('key').stdout.trim(), key);
    assert.equal(KEY_SHOWN.exec(backup('setup').stdout)?.[1], key);
    nas.authorize(key);

    const setup = backup('setup');
    assert.equal(setup.code, 0, setup.stdout + setup.stderr);
    assert.match(setup.stdout, /a new backup on the NAS sftp:/);
    const secret = SECRET_SHOWN.exec(setup.stdout)?.[1];
    assert.ok(secret, `no secret shown:\n${setup.stdout}`);
    assert.equal(readFileSync(join(state, 'secret'), 'utf8').trim(), secret.replaceAll('-', ''));
    assert.ok(!existsSync(join(state, 'secret.pending')));
    assert.match(setup.stdout, /^pihub-backup: backed up to the NAS \S+: snapshot [0-9a-f]{8}$/m);

    const nightly = backup('run', '--scheduled');
    assert.equal(nightly.code, 0, nightly.stdout + nightly.stderr);
    const status = backup('status').stdout;
    assert.match(status, /^Backups: last good backup .* \(snapshot [0-9a-f]{8}, 0 people, NAS sftp:\/\/nobody@10\.0\.2\.100\/\S+\)$/m);
    assert.doesNotMatch(status, /drive|FAILED/, 'the drive it was never set up with counts');
    assert.ok(!status.includes(secret) && !status.includes(secret.replaceAll('-', '')));
    assert.match(nas.log(), /Accepted publickey for nobody/);
    // A restore from the NAS (onto a card in use: it only adds what is missing).
    const restore = backup('restore', '--from', 'nas');
    assert.equal(restore.code, 0, restore.stdout + restore.stderr);
    assert.match(restore.stdout, /a card in use: only what it lacks/);
  });

  it('a NAS with another host key, or one that is off: the backup fails, says why where people look, and sends nothing', () => {
    // Another machine answers at the NAS's address (its host key changed).
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'nas', 'other_key')]);
    const config = join(dir, 'nas', 'sshd_config');
    const original = readFileSync(config, 'utf8');
    writeFileSync(config, original.replace(/^HostKey .*$/m, `HostKey ${join(dir, 'nas', 'other_key')}`));
    const logins = () => nas.log().split('Accepted publickey').length;
    const before = logins();
    const impostor = backup('run', '--scheduled');
    assert.equal(impostor.code, 1);
    assert.equal(logins(), before, 'the card logged in to a machine whose host key is not the NAS\'s');
    assert.match(impostor.stderr, /is not the NAS this card backed up to before \(its SSH host key changed\)/);
    assert.match(backup('status').stdout, /^Backups: the backup of .* FAILED: the NAS sftp:\S+ is not the NAS this card backed up to before/m);
    assert.match(readFileSync(join(state, '45-pihub-backup.issue'), 'utf8'), /the backup failed: the NAS/);
    writeFileSync(config, original);

    // The NAS is off: ssh gets no answer.
    nasIs('false');
    const off = backup('run', '--scheduled');
    assert.equal(off.code, 1);
    assert.match(off.stderr, /restic cat on the NAS sftp:\S+ failed \(exit 1\)/);
    // Back on: the next run succeeds and clears the failure.
    nasIs(nas.command);
    assert.equal(backup('run', '--scheduled').code, 0);
    assert.doesNotMatch(backup('status').stdout, /FAILED/);
    assert.ok(!existsSync(join(state, '45-pihub-backup.issue')));
    rmSync(dir, { recursive: true, force: true });
  });
});
