// End to end: one image with every shipped overlay (and configurable-http-proxy from npm),
// booted and checked from outside: HTTPS on port 8000 with the card's own certificate, nothing
// on 8888, key-only SSH for admins, the hub's admin group chosen with --set, Wi-Fi stored as a
// hash, the data-science packages importable.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { bootVm, sleep, ssh, waitForSsh, type SshTarget, type Vm } from '../../ci/harness/vm.ts';
import { buildImage, imageBase, manifest, E2E_ROOT } from '../helpers/build.ts';
import { HubSession, httpRequest } from '../../ci/harness/hub.ts';

const WIFI_PASSPHRASE = 'correct horse battery';

/** Does anything answer HTTP on the port (through QEMU's forward, a closed guest port just closes the connection)? */
function answersHttp(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect(port, '127.0.0.1', () => sock.write('GET /hub/health HTTP/1.0\r\n\r\n'));
    let got = '';
    sock.setTimeout(10_000, () => { sock.destroy(); resolve(got.startsWith('HTTP/')); });
    sock.on('data', (d: Buffer) => { got += d.toString(); });
    sock.on('close', () => resolve(got.startsWith('HTTP/')));
    sock.on('error', () => resolve(false));
  });
}

/** The SHA-256 fingerprint of the certificate a TLS server presents. */
function serverFingerprint(port: number): string {
  const pem = execFileSync('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-showcerts'], { input: '', stdio: ['pipe', 'pipe', 'ignore'] }).toString();
  return execFileSync('openssl', ['x509', '-noout', '-fingerprint', '-sha256'], { input: pem }).toString().trim().replace(/^.*=/, '');
}

describe('an image with every shipped overlay', { timeout: 50 * 60_000 }, () => {
  const dir = join(E2E_ROOT, 'e2e-overlays');
  let vm: Vm;
  let dana: SshTarget;
  let hub = '';

  before(async () => {
    mkdirSync(dir, { recursive: true });
    const key = join(dir, 'id_ed25519');
    if (!existsSync(key)) execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key]);
    const pub = execFileSync('ssh-keygen', ['-y', '-f', key]).toString().trim();
    const build = await buildImage(
      'e2e-overlays',
      `name: e2e-overlays
users:
  - name: dana
    password: "dana-pass-4"
    admin: true
    ssh_authorized_keys: ["${pub}"]
  - name: finn
    password: "finn-pass-5"
hub:
  proxy: npm
image:
  compression: none
`,
      [
        '--overlay', 'port-8000', '--overlay', 'https', '--overlay', 'ssh-key', '--overlay', 'python-datascience',
        '--overlay', 'admin-group', '--set', 'hub.admin_group=parents',
        '--overlay', 'wifi', '--set', 'wifi.ssid=Home Net', '--set', `wifi.psk=${WIFI_PASSPHRASE}`, '--set', 'wifi.country=DE',
      ],
    );
    console.log(`# build e2e-overlays: ${Math.round(build.durationMs / 1000)} s`);
    const m = manifest(build.outDir, imageBase(build.outDir));
    assert.equal(m.hub.port, 8000);
    vm = await bootVm(join(build.outDir, m.file), [8000, 8888, 22], { serialLog: join(dir, 'boot.log'), workDir: join(E2E_ROOT, 'boot') });
    dana = { port: vm.ports[22]!, key, user: 'dana' };
    hub = `https://127.0.0.1:${vm.ports[8000]}`;
    await waitForSsh(dana, 6 * 60_000);
  });

  after(async () => {
    if (vm) await vm.stop();
  });

  it('serves the hub over HTTPS on port 8000 with the certificate made on the card, fingerprint shown on the console', async () => {
    // Until the hub has registered its route, the proxy answers 404: wait for a healthy hub.
    let status = 0;
    for (let i = 0; i < 90 && status !== 200; i++) {
      if (i) await sleep(2000);
      status = await httpRequest(`${hub}/hub/health`, 'GET', {}).then((r) => r.status, () => 0);
    }
    assert.equal(status, 200, 'no healthy hub over HTTPS on port 8000');
    assert.match((await httpRequest(`${hub}/hub/api`, 'GET', {})).body, /"version": "5\./);
    const shown = /HTTPS certificate SHA-256 fingerprint:\s*\n?\s*([0-9A-F:]{95})/.exec(vm.console());
    assert.ok(shown, 'the console shows the certificate fingerprint');
    assert.equal(serverFingerprint(vm.ports[8000]!), shown[1]);
    assert.match(vm.console(), /JupyterHub at https:\/\/.*:8000\//);
    const onCard = await ssh(dana, "echo 'dana-pass-4' | sudo -S -p '' openssl x509 -in /etc/pihub/https/hub.crt -noout -fingerprint -sha256; echo 'dana-pass-4' | sudo -S -p '' stat -c '%a %U' /etc/pihub/https/hub.key");
    assert.ok(onCard.stdout.includes(shown[1]!));
    assert.match(onCard.stdout, /^600 root$/m);
  });

  it('does not answer on 8888', async () => {
    assert.equal(await answersHttp(vm.ports[8888]!), false, 'something answered on 8888');
  });

  it('makes the members of the chosen group hub admins (admin-group --set hub.admin_group=parents)', async () => {
    const groups = await ssh(dana, 'id -Gn');
    assert.match(groups.stdout, /\bparents\b/);
    const s = new HubSession(hub, 'dana');
    assert.equal((await s.login('dana-pass-4')).status, 302);
    await s.createToken('dana-pass-4');
    assert.equal((await s.json('/hub/api/users')).status, 200);
    const finn = new HubSession(hub, 'finn');
    assert.equal((await finn.login('finn-pass-5')).status, 302, 'a non-admin still logs in');
    await finn.createToken('finn-pass-5');
    assert.equal((await finn.json('/hub/api/users')).status, 403);
  });

  it('allows SSH for admins with keys only (ssh-key)', async () => {
    const r = await ssh(dana, "echo 'dana-pass-4' | sudo -S -p '' sshd -T | grep -iE '^(passwordauthentication|allowgroups) '");
    assert.match(r.stdout, /^passwordauthentication no$/m);
    assert.match(r.stdout, /^allowgroups sudo$/m);
  });

  it('stores the Wi-Fi passphrase only as its WPA hash (wifi)', async () => {
    const r = await ssh(dana, "echo 'dana-pass-4' | sudo -S -p '' cat /etc/wpa_supplicant/wpa_supplicant-wlan0.conf; cat /etc/modprobe.d/pihub-wifi.conf; systemctl is-enabled wpa_supplicant@wlan0");
    assert.match(r.stdout, /^country=DE$/m);
    assert.match(r.stdout, new RegExp(`^\\tssid=${Buffer.from('Home Net').toString('hex')}$`, 'm'), 'the SSID in hex');
    assert.match(r.stdout, /^\s*psk=[0-9a-f]{64}$/m);
    assert.ok(!r.stdout.includes(WIFI_PASSPHRASE), 'the passphrase is in the image in plain text');
    assert.match(r.stdout, /ieee80211_regdom=DE/);
    assert.match(r.stdout, /^enabled$/m);
  });

  it('has pandas, SciPy, Matplotlib and seaborn for everyone (python-datascience)', async () => {
    const r = await ssh(dana, "python3 -c 'import pandas, scipy, matplotlib, seaborn; print(\"ok\", seaborn.__version__)'");
    assert.match(r.stdout, /^ok \d/);
  });

  it('runs configurable-http-proxy from npm (hub.proxy: npm)', async () => {
    const r = await ssh(dana, 'readlink -f "$(command -v configurable-http-proxy)"; ps -eo args | grep -v grep | grep configurable-http-proxy');
    assert.match(r.stdout, /^\/usr\/local\/lib\/node_modules\/configurable-http-proxy\//m);
    assert.match(r.stdout, /\/usr\/local\/bin\/configurable-http-proxy/);
  });
});
