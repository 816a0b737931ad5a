// The files Raspberry Pi Imager 2.x writes onto a card's FAT partition for an OS whose repository
// entry says `init_format: cloudinit`, byte for byte. Written from Imager 2.0.11.1's
// CustomisationGenerator::generateCloudInitUserData / generateCloudInitNetworkConfig and
// DownloadThread::_customizeImage (raspberrypi/rpi-imager, src/): user-data is `#cloud-config`
// followed by the generated lines (empty lines are dropped, except the one after
// manage_resolv_conf), meta-data holds the instance id, and cmdline.txt gets the Wi-Fi country
// and `ds=nocloud;i=<id>` appended to its trimmed text, with no newline after it.
import { pbkdf2Sync } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BOOT_OFFSET, BOOT_SIZE } from '../../build/image/layout.ts';

export interface ImagerSettings {
  hostname?: string;
  timezone?: string;
  keyboard?: string;
  user?: { name: string; passwordHash: string; passwordlessSudo: boolean };
  ssh?: { publicKeys: string[]; passwordAuth: boolean };
  wifi?: { ssid: string; passphrase: string; country: string };
}

export interface ImagerFiles {
  'user-data': string;
  'network-config'?: string;
  'meta-data': string;
  /** What Imager appends to the card's cmdline.txt. */
  cmdlineAppend: string;
}

/** WPA-PSK from a passphrase, as Imager (and wpa_passphrase) compute it: PBKDF2-SHA1, 4096 rounds. */
export function wpaPsk(passphrase: string, ssid: string): string {
  return pbkdf2Sync(passphrase, ssid, 4096, 32, 'sha1').toString('hex');
}

/** A yescrypt hash, as Imager 2.x makes for images released since 2023 (mkpasswd from the whois package). */
export function yescrypt(password: string): string {
  return execFileSync('mkpasswd', ['--method=yescrypt', '--stdin'], { input: password }).toString().trim();
}

export function imagerFiles(s: ImagerSettings, instanceId: string): ImagerFiles {
  const lines: string[] = [];
  if (s.hostname) {
    lines.push(`hostname: ${s.hostname}`, 'manage_etc_hosts: true', 'packages:', '- avahi-daemon');
    lines.push('apt:', '  preserve_sources_list: true', '  conf: |', '    Acquire {', '      Check-Date "false";', '    };');
  }
  if (s.timezone) lines.push(`timezone: ${s.timezone}`);
  if (s.keyboard) lines.push('keyboard:', '  model: pc105', `  layout: "${s.keyboard}"`);
  const user = s.user;
  if (user) {
    lines.push('user:', `  name: ${user.name}`, '  shell: /bin/bash', '  lock_passwd: false', `  passwd: "${user.passwordHash}"`);
    if (s.ssh?.publicKeys.length) {
      lines.push('  ssh_authorized_keys:', ...s.ssh.publicKeys.map((k) => `    - "${k.trim()}"`));
    }
    lines.push(user.passwordlessSudo ? '  sudo: ALL=(ALL) NOPASSWD:ALL' : '  sudo: null');
  }
  if (s.ssh) lines.push(`ssh_pwauth: ${s.ssh.passwordAuth ? 'true' : 'false'}`);
  const runcmd: string[] = [];
  if (s.ssh) runcmd.push('  - [ systemctl, enable, --now, ssh ]');
  if (user?.passwordlessSudo) {
    const file = `/etc/sudoers.d/010_${user.name}-nopasswd`;
    runcmd.push(`  - [ sh, -c, "echo '${user.name} ALL=(ALL) NOPASSWD:ALL' >${file}" ]`, `  - [ chmod, '0440', '${file}' ]`);
  }
  if (runcmd.length) lines.push('runcmd:', ...runcmd);

  let network: string | undefined;
  if (s.wifi) {
    const w = s.wifi;
    network = [
      'network:', '  version: 2', '  ethernets:', '    eth0:', '      dhcp4: true', '      dhcp6: true', '      optional: true',
      '  wifis:', '    wlan0:', '      dhcp4: true', `      regulatory-domain: "${w.country.toUpperCase()}"`,
      '      access-points:', `        "${w.ssid}":`, `          password: "${wpaPsk(w.passphrase, w.ssid)}"`, '      optional: true',
    ].map((l) => `${l}\n`).join('');
  }
  return {
    'user-data': `#cloud-config\nmanage_resolv_conf: false\n\n${lines.map((l) => `${l}\n`).join('')}`,
    ...(network ? { 'network-config': network } : {}),
    'meta-data': `instance-id: ${instanceId}\n`,
    cmdlineAppend: `${s.wifi ? ` cfg80211.ieee80211_regdom=${s.wifi.country}` : ''} ds=nocloud;i=${instanceId}`,
  };
}

/** cmdline.txt as Imager leaves it: the card's text, trimmed, with Imager's additions and no final newline. */
export function imagerCmdline(card: string, files: ImagerFiles): string {
  return `${card.trim()}${files.cmdlineAppend}`;
}

/** A file from an image's FAT partition, read with mtools (a compressed image: only its start is unpacked). */
export function readCardFile(image: string, name: string, scratchDir: string): string {
  const offset = BOOT_OFFSET;
  let raw = image;
  const unpack = { '.xz': ['xz', '-dc'], '.zst': ['zstd', '-dcq'], '.gz': ['gzip', '-dc'] }[image.slice(image.lastIndexOf('.'))];
  if (unpack) {
    // The FAT partition ends at BOOT_OFFSET + BOOT_SIZE: unpack that much of the image, no more.
    raw = join(scratchDir, 'card-start.img');
    execFileSync('sh', ['-c', `${unpack.join(' ')} "$1" | head -c ${BOOT_OFFSET + BOOT_SIZE} > "$2"`, 'sh', image, raw]);
  }
  try {
    return execFileSync('mtype', ['-i', `${raw}@@${offset}`, `::${name}`], { env: { ...process.env, MTOOLS_SKIP_CHECK: '1' } }).toString();
  } finally {
    if (raw !== image) rmSync(raw, { force: true });
  }
}

/**
 * Imager's files for these settings, written into dir beside the card's cmdline.txt with Imager's
 * additions; returns the `pihub boot` arguments that put them on this boot's copy of the card.
 */
export function writeImagerCard(image: string, dir: string, settings: ImagerSettings, instanceId = `rpi-imager-${Date.now()}`): { files: ImagerFiles; bootArgs: string[] } {
  mkdirSync(dir, { recursive: true });
  const files = imagerFiles(settings, instanceId);
  const bootArgs: string[] = [];
  for (const name of ['user-data', 'network-config', 'meta-data'] as const) {
    const text = files[name];
    if (text === undefined) continue;
    writeFileSync(join(dir, name), text);
    bootArgs.push('--boot-file', join(dir, name));
  }
  writeFileSync(join(dir, 'cmdline.txt'), imagerCmdline(readCardFile(image, 'cmdline.txt', dir), files));
  bootArgs.push('--boot-file', join(dir, 'cmdline.txt'));
  return { files, bootArgs };
}
