// A NAS on the card's network, for the backup tests: OpenSSH's sshd on this machine, started by
// QEMU for each connection the guest makes to 10.0.2.100:22 (`pihub boot --lan-service`, sshd
// in inetd mode: no daemon, no port on this machine). SFTP only, for one login (nobody), with
// the keys in DIR/authorized_keys, as a household's NAS has an account for the Pi.
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';

export const NAS_ADDRESS = '10.0.2.100';
const SSHD = '/usr/sbin/sshd';
// nobody's ids on Debian and Ubuntu.
const NOBODY = 65534;

export interface Nas {
  /** Where the backups go (owned by the login): DIR/backups. */
  folder: string;
  /** The build config's backup.sftp for a folder under it (an absolute path: `//`). */
  url(name: string): string;
  /** The SFTP server for one connection on its standard input and output (sshd -i). */
  command: string;
  /** `pihub boot --lan-service` for this NAS: the command, at 10.0.2.100:22. */
  lanService: string;
  authorize(publicKeyLine: string): void;
  /** sshd's log: every connection, its login and key. */
  log(): string;
}

export function makeNas(dir: string): Nas {
  if (!existsSync(SSHD)) throw new Error(`${SSHD} is missing: the backup test's NAS is OpenSSH's server (ci/setup-host.sh installs openssh-server)`);
  // sshd reads the keys as the login: every folder above them must let others through.
  for (let up = dirname(dir); up !== '/'; up = dirname(up)) {
    if ((statSync(up).mode & 0o001) === 0) throw new Error(`${up} lets only its owner through: the NAS's login (nobody) could not read its authorized_keys below it`);
  }
  rmSync(dir, { recursive: true, force: true });
  const folder = join(dir, 'backups');
  mkdirSync(folder, { recursive: true });
  chmodSync(dir, 0o755);
  chownSync(folder, NOBODY, NOBODY);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'pihub-test-nas', '-f', join(dir, 'host_key')]);
  const keys = join(dir, 'authorized_keys');
  writeFileSync(keys, '', { mode: 0o644 });
  const config = join(dir, 'sshd_config');
  writeFileSync(config, [
    `HostKey ${join(dir, 'host_key')}`,
    `AuthorizedKeysFile ${keys}`,
    'AllowUsers nobody',
    'PermitRootLogin no',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'UsePAM no',
    // The files are root's, in the test's folder.
    'StrictModes no',
    'ForceCommand internal-sftp',
    'Subsystem sftp internal-sftp',
    'LogLevel VERBOSE',
    'PidFile none',
    '',
  ].join('\n'));
  // sshd's privilege separation folder (made by its service, which does not run here).
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  const logFile = join(dir, 'sshd.log');
  const command = `${SSHD} -i -f ${config} -E ${logFile}`;
  return {
    folder,
    url: (name) => `sftp://nobody@${NAS_ADDRESS}/${join(folder, name)}`,
    command,
    lanService: `${NAS_ADDRESS}:22=${command}`,
    authorize: (line) => writeFileSync(keys, `${line.trim()}\n`, { flag: 'a' }),
    log: () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : ''),
  };
}
