// End to end: ci/release.ts, as release.yml runs it on a tag, here with a local output folder.
// The dry run checks the configs and prints every step; the real run builds the default image
// (zstd here instead of xz: seconds instead of minutes), boots it customised as Raspberry Pi Imager
// does, runs the hub check, and collects the release. The repository's sizes and checksums are
// checked against the files: the compressed download and the image unpacked from it.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { sha256File } from '../../build/core/files.ts';
import { PROJECT_DIR } from '../../build/plan/inputs.ts';
import { CACHE_DIR, E2E_ROOT } from '../helpers/build.ts';

const TAG = 'v0.0.0-test';
const BASE = `https://example.invalid/pihub/releases/download/${TAG}/`;

function release(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(PROJECT_DIR, 'ci/release.ts'), ...args], { cwd: PROJECT_DIR, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

describe('ci/release.ts', { timeout: 60 * 60_000 }, () => {
  const root = join(E2E_ROOT, 'release');

  it('in a dry run checks every config and prints every step, and builds, writes and publishes nothing', async () => {
    const out = join(root, 'dry-out');
    rmSync(out, { recursive: true, force: true });
    const r = await release(['--tag', TAG, '--out', out, '--dry-run', '--publish', '--work-dir', root, '--', '--cache-dir', CACHE_DIR]);
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /^\[dry run\] release v0\.0\.0-test: 2 image\(s\)/m);
    assert.match(r.stdout, /^\[dry run\] image pihub: the default image/m);
    assert.match(r.stdout, /^\[dry run\] image pihub-armhf: .*\n.*\n.*pihub\.js build --set image\.compression=xz --set base=debian-trixie-armhf /m);
    assert.match(r.stdout, /^\[dry run\] +config checked: \d+ stages$/m);
    assert.match(r.stdout, /pihub\.js build --set image\.compression=xz /, 'a release is xz-compressed');
    assert.match(r.stdout, /pihub\.js build .*--cache-dir/);
    assert.match(r.stdout, /check: boot the image in QEMU, customised as Raspberry Pi Imager does/);
    assert.match(r.stdout, /\$ gh release create v0\.0\.0-test --verify-tag/);
    assert.ok(!existsSync(out), 'a dry run writes no release folder');
    const bad = await release(['--tag', 'not a tag', '--out', out, '--dry-run']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--tag not a tag: expected a tag name/);
  });

  it('for real: builds, boots and checks the image, then collects image, checksums, SBOM, repository and notes', async () => {
    const out = join(root, 'out');
    rmSync(out, { recursive: true, force: true });
    // The default image only: the armhf image's build and hub check are test/e2e/armhf.test.ts.
    const r = await release(['--tag', TAG, '--out', out, '--base-url', BASE, '--work-dir', root, '--image', 'pihub', '--', '--cache-dir', CACHE_DIR, '--set', 'image.compression=zstd']);
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    console.log(r.stdout.split('\n').filter((l) => /check:|checked:/.test(l)).map((l) => `# release ${l.trim()}`).join('\n'));
    assert.match(r.stdout, /checked: JupyterHub 5\.\S+, numpy 2\.\S+/);
    const files = readdirSync(out).sort();
    const image = files.find((f) => f.endsWith('.img.zst'))!;
    assert.ok(image, `no image in ${files.join(', ')}`);
    const base = image.replace(/\.img\.zst$/, '');
    assert.deepEqual(files, [`${base}.img.zst`, `${base}.img.bmap`, `${base}.info`, `${base}.json`, `${base}.sha256`, `${base}.spdx.json`, 'RELEASE_NOTES.md', 'pihub.png', 'rpi-imager.json'].sort());
    execFileSync('sha256sum', ['-c', '--ignore-missing', `${base}.sha256`], { cwd: out });

    const repo = JSON.parse(readFileSync(join(out, 'rpi-imager.json'), 'utf8')) as { os_list: Array<Record<string, unknown>> };
    const e = repo.os_list[0]!;
    assert.equal(e.url, `${BASE}${image}`);
    assert.equal(e.icon, `${BASE}pihub.png`);
    assert.equal(e.image_download_size, statSync(join(out, image)).size);
    assert.equal(e.image_download_sha256, await sha256File(join(out, image)));
    // What Imager checks after unpacking: the uncompressed image's size and checksum.
    const raw = join(root, 'unpacked.img');
    execFileSync('zstd', ['-dqf', join(out, image), '-o', raw]);
    try {
      assert.equal(e.extract_size, statSync(raw).size);
      assert.equal(e.extract_sha256, await sha256File(raw));
    } finally {
      rmSync(raw, { force: true });
    }

    const notes = readFileSync(join(out, 'RELEASE_NOTES.md'), 'utf8');
    const info = readFileSync(join(out, `${base}.info`), 'utf8');
    const version = (pkg: string) => new RegExp(`^${pkg}\\t(\\S+)\\t`, 'm').exec(info)?.[1];
    for (const pkg of ['jupyterhub', 'jupyterlab', 'python3-numpy', 'linux-image-arm64']) {
      const v = version(pkg);
      assert.ok(v, `${pkg} is in the image`);
      assert.ok(notes.includes(v), `the notes name ${pkg} ${v}`);
    }
    assert.match(notes, new RegExp(`rpi-imager --repo ${BASE.replace(/[.?]/g, '\\$&')}rpi-imager\\.json`));
    const sbom = JSON.parse(readFileSync(join(out, `${base}.spdx.json`), 'utf8')) as { spdxVersion: string; packages: Array<{ SPDXID: string }> };
    assert.equal(sbom.spdxVersion, 'SPDX-2.3');
    const lines = info.split('\n').filter((l) => l && !l.startsWith('#')).length;
    assert.equal(sbom.packages.filter((p) => p.SPDXID.startsWith('SPDXRef-Package-deb-')).length, lines, 'the SBOM and the package list agree');
  });
});
