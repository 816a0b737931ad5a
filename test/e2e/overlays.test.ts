// End to end: an image built with the port-8000 and https overlays serves the hub over HTTPS on
// port 8000 with a certificate made on the card, and nothing on 8888.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync } from 'node:fs';
import { request } from 'node:https';
import { connect } from 'node:net';
import { join } from 'node:path';
import type { X509Certificate } from 'node:crypto';
import { bootVm, sleep, type Vm } from '../helpers/vm.ts';
import { buildImage, manifest, E2E_ROOT } from '../helpers/build.ts';

function httpsGet(port: number, path: string): Promise<{ status: number; body: string; fingerprint: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, rejectUnauthorized: false, timeout: 30_000 }, (res) => {
      const cert = (res.socket as import('node:tls').TLSSocket).getPeerX509Certificate?.() as X509Certificate | undefined;
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString(), fingerprint: cert?.fingerprint256 ?? '' }));
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end();
  });
}

/** Does anything answer HTTP on the port (through QEMU's forward, a refused guest port closes the connection)? */
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

describe('an image with the port-8000 and https overlays', { timeout: 40 * 60_000 }, () => {
  const dir = join(E2E_ROOT, 'e2e-https');
  let vm: Vm;
  let port8000 = 0;
  let port8888 = 0;

  before(async () => {
    mkdirSync(dir, { recursive: true });
    const build = await buildImage('e2e-https', 'name: e2e-https\nusers:\n  - name: dana\n    password: "dana-pass-4"\n    admin: true\nimage:\n  compression: none\n', ['--overlay', 'port-8000', '--overlay', 'https']);
    console.log(`# build e2e-https: ${Math.round(build.durationMs / 1000)} s`);
    const json = readdirSync(build.outDir).find((f) => f.endsWith('.json'))!;
    const m = manifest(build.outDir, json.slice(0, -5));
    assert.equal(m.hub.port, 8000);
    vm = await bootVm(join(build.outDir, m.file), [8000, 8888], { serialLog: join(dir, 'boot.log'), workDir: join(E2E_ROOT, 'boot') });
    port8000 = vm.ports[8000]!;
    port8888 = vm.ports[8888]!;
    await vm.waitForConsole(/login: $/m, 6 * 60_000);
  });

  after(async () => {
    if (vm) await vm.stop();
  });

  it('answers HTTPS on port 8000 with a certificate made on the card, whose fingerprint the console shows', async () => {
    // Until the hub has registered its route, the proxy answers 404: wait for a healthy hub.
    let health: Awaited<ReturnType<typeof httpsGet>> | undefined;
    for (let i = 0; i < 90 && health?.status !== 200; i++) {
      if (i) await sleep(2000);
      health = await httpsGet(port8000, '/hub/health').catch(() => undefined);
    }
    assert.equal(health?.status, 200, 'no healthy hub over HTTPS on port 8000');
    const res = await httpsGet(port8000, '/hub/api');
    assert.equal(res.status, 200);
    assert.match(res.body, /"version": "5\./);
    const shown = /HTTPS certificate SHA-256 fingerprint:\s*\n?\s*([0-9A-F:]{95})/.exec(vm.console());
    assert.ok(shown, 'the console shows the certificate fingerprint');
    assert.equal(res.fingerprint, shown[1]);
    assert.match(vm.console(), /JupyterHub at https:\/\/.*:8000\//);
  });

  it('does not answer on 8888', async () => {
    assert.equal(await answersHttp(port8888), false, 'something answered on 8888');
  });
});
