// End to end: the default image as Raspberry Pi Imager users get it. A card is customised with
// exactly the files Imager 2.x writes for `init_format: cloudinit` (host name, a user with a
// yescrypt password and sudo, an SSH key, Wi-Fi with its country, time zone and keyboard), booted,
// and checked from outside: SSH, the hub's web API, mDNS from another machine on the link (a
// network namespace on the far side of a tap device), and a second boot. A plain card (no Imager
// files) is booted too, for the first-boot time without customisation.
// The image is the one image.test.ts builds (the same config: the cache returns it at once).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import parseSpdx from 'spdx-expression-parse';
import { bootVm, sleep, ssh, waitForSsh, type SshTarget, type Vm } from '../../ci/harness/vm.ts';
import { buildImage, imageBase, manifest, runPihub, E2E_ROOT, type Manifest } from '../helpers/build.ts';
import { HubSession, waitForHub } from '../../ci/harness/hub.ts';
import { writeImagerCard, yescrypt, wpaPsk, type ImagerFiles } from '../../ci/harness/imager.ts';
import { analyzeBoot } from '../../ci/harness/measure.ts';
import { sha256File } from '../../build/core/files.ts';
import { PROJECT_DIR } from '../../build/plan/inputs.ts';

// A ceiling for a loaded machine (TCG on 2 shared cores); a normal boot takes a minute or two.
const BOOT_TIMEOUT = 15 * 60_000;
const DEFAULT_CONFIG = 'name: e2e-default\nimage:\n  compression: none\n';
const HOST = 'garden-pi';
const USER = 'dana';
const PASSWORD = 'dana-imager-5';
const WIFI = { ssid: 'pihub test wifi', passphrase: 'correct horse battery', country: 'GB' };

const seconds = (ms: number) => Math.round(ms / 1000);

let out: { dir: string; base: string; image: string; manifest: Manifest };

before(async () => {
  const build = await buildImage('e2e-default', DEFAULT_CONFIG);
  console.log(`# build e2e-default: ${seconds(build.durationMs)} s`);
  const base = imageBase(build.outDir);
  const m = manifest(build.outDir, base);
  out = { dir: build.outDir, base, image: join(build.outDir, m.file), manifest: m };
});

describe('the build and pihub manifest for Raspberry Pi Imager', () => {
  it('writes a repository whose sizes and checksums are those of the image file', async () => {
    const r = await runPihub(['manifest', '--deploy', out.dir, '--base-url', 'https://example.invalid/releases/download/v0/']);
    assert.equal(r.code, 0, r.stderr);
    const repo = JSON.parse(readFileSync(join(out.dir, 'rpi-imager.json'), 'utf8')) as { imager: { devices: Array<{ name: string; tags: string[] }> }; os_list: Array<Record<string, unknown>> };
    assert.equal(repo.os_list.length, 1);
    const e = repo.os_list[0]!;
    const sum = await sha256File(out.image);
    // compression: none, so the download is the image itself.
    assert.equal(e.url, `https://example.invalid/releases/download/v0/${out.manifest.file}`);
    assert.equal(e.extract_size, statSync(out.image).size);
    assert.equal(e.extract_sha256, sum);
    assert.equal(e.image_download_size, statSync(out.image).size);
    assert.equal(e.image_download_sha256, sum);
    assert.equal(e.init_format, 'cloudinit');
    assert.deepEqual(repo.imager.devices.map((d) => d.name), ['Raspberry Pi 5', 'Raspberry Pi 4', 'Raspberry Pi 3', 'Raspberry Pi Zero 2 W']);
    assert.ok(existsSync(join(out.dir, 'pihub.png')));
    const bad = await runPihub(['manifest', '--deploy', join(out.dir, 'nowhere')]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /does not exist; build an image first/);
  });
});

// A plain card (no Imager files: cloud-init stays off, userconf.txt makes accounts) is checked
// in image.test.ts, on the same e2e-default image.

describe('a card customised by Raspberry Pi Imager', { timeout: 60 * 60_000 }, () => {
  const dir = join(E2E_ROOT, 'e2e-imager');
  const netns = `pihub-mdns-${process.pid}`;
  const tap = `pihubtap${process.pid % 100000}`;
  let key = '';
  let files: ImagerFiles;
  let vm: Vm;
  let dana: SshTarget;
  let hub = '';
  let firstBoot = 0;

  before(async () => {
    execFileSync('mkdir', ['-p', dir]);
    key = join(dir, 'id_ed25519');
    if (!existsSync(key)) execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'pihub-imager-e2e', '-f', key]);
    const pub = readFileSync(`${key}.pub`, 'utf8').trim();
    const card = writeImagerCard(out.image, join(dir, 'card'), {
      hostname: HOST,
      timezone: 'Europe/London',
      keyboard: 'gb',
      user: { name: USER, passwordHash: yescrypt(PASSWORD), passwordlessSudo: true },
      ssh: { publicKeys: [pub], passwordAuth: false },
      wifi: WIFI,
    });
    files = card.files;
    assert.match(files['user-data'], /passwd: "\$y\$/, 'a yescrypt hash, as Imager writes for images released since 2023');
    const started = Date.now();
    // A second network card on a tap device: the test's network namespace is the LAN beside the Pi.
    // mac80211_hwsim gives the guest the wlan0 a Pi has, so wpa_supplicant really runs with Imager's network.
    vm = await bootVm(out.image, [22, 8888], {
      serialLog: join(dir, 'imager.log'),
      workDir: join(E2E_ROOT, 'boot'),
      extraArgs: [...card.bootArgs, '--tap', tap, '--append', 'modules-load=mac80211_hwsim'],
    });
    for (let i = 0; !existsSync(`/sys/class/net/${tap}`); i++) {
      if (i > 600) throw new Error(`QEMU made no ${tap} in 5 minutes`);
      await sleep(500);
    }
    execFileSync('ip', ['netns', 'add', netns]);
    execFileSync('ip', ['link', 'set', 'dev', tap, 'netns', netns]);
    execFileSync('ip', ['netns', 'exec', netns, 'ip', 'link', 'set', 'lo', 'up']);
    execFileSync('ip', ['netns', 'exec', netns, 'ip', 'link', 'set', tap, 'up']);
    dana = { port: vm.ports[22]!, key, user: USER };
    await waitForSsh(dana, BOOT_TIMEOUT);
    hub = `http://127.0.0.1:${vm.ports[8888]}`;
    await waitForHub(hub, BOOT_TIMEOUT);
    firstBoot = Date.now() - started;
    console.log(`# first boot, Imager-customised card: the hub answered ${seconds(firstBoot)} s after QEMU started`);
  });

  after(async () => {
    if (vm) assert.equal(await vm.stop(), 0, 'pihub boot shuts the guest down cleanly');
    try {
      execFileSync('ip', ['netns', 'del', netns], { stdio: 'ignore' });
    } catch {
      // not made
    }
  });

  it('ran cloud-init once, without errors, and switched it off afterwards', async () => {
    const r = await ssh(dana, "cloud-init status --long; cat /etc/cloud/cloud-init.disabled; grep -c 'finished at' /var/log/cloud-init-output.log; systemd-analyze | head -n 1; systemctl --failed --no-legend --plain");
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^status: (done|disabled)/m);
    assert.match(r.stdout, /^errors: \[\]$/m, r.stdout);
    assert.match(r.stdout, /customisation was applied at the first boot; cloud-init stays off/);
    assert.match(r.stdout, /^1$/m, 'cloud-init finished once');
    assert.doesNotMatch(r.stdout, /\.service\s+loaded\s+failed/, `failed units:\n${r.stdout}`);
    console.log(`# first boot, Imager-customised card: ${/^Startup finished.*$/m.exec(r.stdout)?.[0] ?? ''}`);
  });

  it('has the new host name everywhere: hostnamectl, /etc/hosts, the console', async () => {
    const r = await ssh(dana, 'hostnamectl --static; hostname; grep -P "^127\\.0\\.1\\.1\\s" /etc/hosts; getent ahostsv4 garden-pi | head -n 1');
    assert.match(r.stdout, new RegExp(`^${HOST}\\n${HOST}\\n127\\.0\\.1\\.1\\s.*\\b${HOST}\\b.*\\n127\\.0\\.1\\.1\\s+STREAM\\s+${HOST}`), r.stdout);
    assert.match(vm.console(), new RegExp(`JupyterHub at http://${HOST}\\.local:8888/`), 'the console banner shows the .local address');
    assert.match(vm.console(), new RegExp(`^${HOST} login:`, 'm'));
  });

  it('has the time zone and keyboard from Imager', async () => {
    const r = await ssh(dana, 'timedatectl show -p Timezone --value; grep -E "^XKB(MODEL|LAYOUT)=" /etc/default/keyboard');
    assert.equal(r.stdout, 'Europe/London\nXKBMODEL="pc105"\nXKBLAYOUT="gb"\n');
  });

  it('lets the Imager user in over SSH with the key only, with sudo', async () => {
    const r = await ssh(dana, 'id -un; id -Gn; sudo -n true && echo sudo-ok; sudo -n sshd -T | grep -i "^passwordauthentication"');
    assert.match(r.stdout, new RegExp(`^${USER}\\n`));
    assert.match(r.stdout, /\bsudo\b/);
    assert.match(r.stdout, /\bjupyter_admin\b/);
    assert.match(r.stdout, /\bjupyter_users\b/);
    assert.match(r.stdout, /^sudo-ok$/m, 'Imager asked for passwordless sudo');
    assert.match(r.stdout, /^passwordauthentication no$/m, "Imager's ssh_pwauth: false wins over the image's default");
    const other = await ssh({ ...dana, user: 'root' }, 'true');
    assert.notEqual(other.code, 0);
  });

  it('lets the Imager user log in to the hub as an admin and run numpy', async () => {
    const s = new HubSession(hub, USER);
    const login = await s.login(PASSWORD);
    assert.equal(login.status, 302, `login answered ${login.status}: ${login.body.slice(0, 300)}`);
    await s.createToken(PASSWORD);
    assert.equal((await s.json('/hub/api/users')).status, 200, 'a hub admin');
    await s.startServer(300_000);
    const text = await s.runCode('import getpass, numpy\nprint("user", getpass.getuser())\nprint("numpy", numpy.__version__, int((numpy.ones((8, 8)) @ numpy.ones(8)).sum()))');
    assert.match(text, new RegExp(`^user ${USER}$`, 'm'));
    assert.match(text, /^numpy 2\.\S+ 64$/m);
  });

  it('rendered the Wi-Fi for wpa_supplicant and systemd-networkd, and keeps the country', async () => {
    const r = await ssh(dana, [
      'sudo -n cat /run/netplan/wpa-wlan0.conf', 'echo ---',
      'sudo -n cat /run/systemd/network/10-netplan-wlan0.network', 'echo ---',
      'systemctl cat netplan-wpa-wlan0.service | grep -E "^ExecStart"; systemctl is-active netplan-wpa-wlan0.service; sudo -n wpa_cli -p /run/wpa_supplicant -i wlan0 list_networks', 'echo ---',
      // QEMU has no Wi-Fi, so nothing loads cfg80211; on a Pi the Wi-Fi driver does. Loading it
      // here, as the driver would, shows the country the kernel really takes (from regulatory.db).
      'cat /etc/modprobe.d/pihub-wifi.conf; sudo -n modprobe cfg80211 2>&1; for i in $(seq 40); do sudo -n iw reg get | grep -q "^country GB" && break; sleep 0.5; done; sudo -n iw reg get 2>&1 | grep -m1 -o "^country [A-Z0-9]*\\|.*rror.*"; sudo -n stat -c "%a %U" /etc/netplan/50-cloud-init.yaml',
    ].join('; '));
    const [wpa, network, unit, modprobe] = r.stdout.split('---\n');
    assert.match(wpa!, /^country=GB$/m);
    assert.match(wpa!, new RegExp(`ssid=P"${WIFI.ssid}"`));
    assert.match(wpa!, new RegExp(`psk=${wpaPsk(WIFI.passphrase, WIFI.ssid)}`), 'the 64-hex PSK Imager wrote, not the passphrase');
    assert.doesNotMatch(r.stdout, new RegExp(WIFI.passphrase));
    assert.match(network!, /^Name=wlan0$/m);
    assert.match(network!, /^DHCP=(ipv4|yes)$/m);
    assert.match(unit!, /wpa_supplicant .*-c \/run\/netplan\/wpa-wlan0\.conf .*-iwlan0/);
    assert.match(unit!, /^active$/m, 'wpa_supplicant runs on wlan0');
    assert.match(unit!, new RegExp(`^0\\t${WIFI.ssid}\\t`, 'm'), 'with the network from Imager');
    assert.match(modprobe!, /^options cfg80211 ieee80211_regdom=GB$/m);
    assert.match(modprobe!, /^country GB$/m, 'the Wi-Fi country is set');
    assert.match(modprobe!, /^600 root$/m, 'the netplan file with the Wi-Fi key is root-only');
  });

  it('leaves no customisation files, and no secret, on the FAT partition', async () => {
    const r = await ssh(dana, 'ls -A /boot/firmware; echo ---; cat /boot/firmware/cmdline.txt');
    const [listing] = r.stdout.split('---\n');
    for (const f of ['user-data', 'network-config', 'meta-data']) assert.doesNotMatch(listing!, new RegExp(`^${f}$`, 'm'), `${f} is still on the card`);
    const hash = /passwd: "([^"]+)"/.exec(files['user-data'])![1]!;
    const grep = await ssh(dana, `sudo -n grep -rlF -e '${hash}' -e '${wpaPsk(WIFI.passphrase, WIFI.ssid)}' /boot/firmware; echo end`);
    assert.equal(grep.stdout.trim(), 'end', `secrets left on the FAT partition: ${grep.stdout}`);
  });

  it('answers mDNS for garden-pi.local on the LAN, and the hub answers at that address', async () => {
    const r = execFileSync('ip', ['netns', 'exec', netns, process.execPath, '--import', 'tsx', join(PROJECT_DIR, 'test/helpers/mdns.ts'), `${HOST}.local`, tap, '8888', '/hub/health'], { cwd: PROJECT_DIR }).toString();
    const res = JSON.parse(r) as { addresses: string[]; http: Record<string, number> };
    assert.ok(res.addresses.length >= 1, `no mDNS answer for ${HOST}.local on ${tap}: ${r}`);
    assert.ok(res.addresses.some((a) => res.http[a] === 200), `the hub did not answer at ${HOST}.local: ${r}`);
    const who = await ssh(dana, 'systemctl is-active avahi-daemon; resolvectl mdns 2>/dev/null | grep -c yes || true');
    assert.match(who.stdout, /^active\n0\n$/, 'avahi answers; systemd-resolved does not compete on port 5353');
  });

  it('has an SPDX SBOM with exactly the packages installed on the card', async () => {
    const sbom = JSON.parse(readFileSync(join(out.dir, `${out.base}.spdx.json`), 'utf8')) as {
      spdxVersion: string; packages: Array<{ SPDXID: string; name: string; versionInfo?: string; licenseDeclared: string; externalRefs?: Array<{ referenceLocator: string }>; checksums?: Array<{ checksumValue: string }> }>;
    };
    assert.equal(sbom.spdxVersion, 'SPDX-2.3');
    const r = await ssh(dana, "dpkg-query -W -f '${db:Status-Abbrev} ${Package} ${Version}\\n' | awk '$1 == \"ii\" { print $2, $3 }' | sort");
    // The packages pihub patched (docs/security.md), as the card's own record says: their SBOM
    // version is Debian's with +pihub, and pihub is their supplier.
    const record = JSON.parse((await ssh(dana, 'cat /var/lib/pihub/security-fixes.json')).stdout) as { patches: Array<{ package: string; state: string }> };
    const patched = new Set(record.patches.filter((p) => p.state === 'in place').map((p) => p.package));
    assert.ok(patched.has('jupyterhub'), `the card's record of pihub's patches: ${JSON.stringify(record)}`);
    const debs = sbom.packages.filter((p) => p.SPDXID.startsWith('SPDXRef-Package-deb-'));
    const listed = debs.map((p) => `${p.name} ${patched.has(p.name) ? p.versionInfo?.replace(/\+pihub$/, '') : p.versionInfo}`).sort();
    assert.deepEqual(listed, r.stdout.trim().split('\n').sort(), 'the SBOM lists what dpkg on the card says is installed');
    for (const p of debs.filter((d) => patched.has(d.name))) assert.match(p.versionInfo ?? '', /\+pihub$/, `${p.name} is marked as changed by pihub`);
    const image = sbom.packages.find((p) => p.SPDXID === 'SPDXRef-Image')!;
    assert.equal(image.checksums?.[0]?.checksumValue, out.manifest.raw_sha256);
    const numpy = debs.find((p) => p.name === 'python3-numpy')!;
    assert.match(numpy.licenseDeclared, /BSD-3-Clause/);
    assert.match(numpy.externalRefs![0]!.referenceLocator, /^pkg:deb\/debian\/python3-numpy@/);
    const withLicense = debs.filter((p) => p.licenseDeclared !== 'NOASSERTION');
    for (const p of withLicense) assert.doesNotThrow(() => parseSpdx(p.licenseDeclared), `${p.name}: ${p.licenseDeclared}`);
    console.log(`# SBOM: ${debs.length} packages, ${withLicense.length} with a license from a DEP-5 copyright file`);
    assert.ok(withLicense.length > debs.length * 0.6, `${withLicense.length} of ${debs.length} have a license`);
  });

  it('does not run the customisation again at the second boot', async () => {
    await ssh(dana, 'sudo -n systemctl reboot');
    const started = Date.now();
    await sleep(10_000);
    await waitForSsh(dana, BOOT_TIMEOUT);
    await waitForHub(hub, BOOT_TIMEOUT);
    console.log(`# second boot: the hub answered ${seconds(Date.now() - started)} s after the reboot (first boot: ${seconds(firstBoot)} s after QEMU started)`);
    const r = await ssh(dana, "cloud-init status; test -e /run/cloud-init/disabled && echo generator-off; systemctl is-active cloud-init-main.service pihub-imager-finish.service; grep -c 'finished at' /var/log/cloud-init-output.log; hostnamectl --static; systemd-analyze | head -n 1");
    assert.match(r.stdout, /^status: disabled$/m);
    assert.match(r.stdout, /^generator-off$/m, "cloud-init's generator left cloud-init.target out of this boot");
    assert.match(r.stdout, /^inactive\ninactive$/m);
    assert.match(r.stdout, /^1$/m, 'cloud-init ran only at the first boot');
    assert.match(r.stdout, new RegExp(`^${HOST}$`, 'm'));
    console.log(`# second boot: ${/^Startup finished.*$/m.exec(r.stdout)?.[0] ?? ''}`);
    const analysis = await analyzeBoot(dana);
    writeFileSync(join(dir, 'boot-second.txt'), `second boot to /hub/health 200: ${seconds(Date.now() - started)} s (with the checks above)\n\n${analysis}`);
    // The first boot grew the root file system once, and ext4 keeps 5 % for root after the grow.
    const grown = await ssh(dana, 'cat /var/lib/pihub/rootfs-grown >/dev/null && echo grown; sudo -n tune2fs -l "$(findmnt -no SOURCE /)"');
    assert.match(grown.stdout, /grown/, 'the first boot grew the root file system once');
    const count = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+)$`, 'm').exec(grown.stdout)?.[1]);
    const reserved = count('Reserved block count') / count('Block count');
    assert.ok(reserved > 0.049 && reserved < 0.051, `after the grow, ext4 keeps 5 % for root (${(100 * reserved).toFixed(2)} %)`);
    // cloud-init is off for good: nothing waits for the network to be online, nothing pulls it in.
    const chain = analysis.slice(analysis.indexOf('## systemd-analyze critical-chain'), analysis.indexOf('## systemd-analyze blame'));
    assert.doesNotMatch(chain, /network-online|wait-online/);
    const online = await ssh(dana, 'systemctl show -p ActiveState --value systemd-networkd-wait-online.service network-online.target');
    assert.deepEqual(online.stdout.split(/\s+/).filter(Boolean), ['inactive', 'inactive']);
  });
});

