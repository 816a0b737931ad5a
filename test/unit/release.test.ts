import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, symlinkSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import parseSpdx from 'spdx-expression-parse';
import {
  declaredLicense, makeSbom, parseCopyright, parseDpkgStatus, purl, readInRoot, spdxExpression, spdxId,
} from '../../build/release/sbom.ts';
import { REPOSITORY_FILE, deviceTags, devicesFor, normaliseBaseUrl, writeRepository } from '../../build/release/imager.ts';
import { releaseNotes, versionsFromInfo } from '../../build/release/notes.ts';
import { imagerCmdline, imagerFiles, wpaPsk } from '../../ci/harness/imager.ts';
import { scratch, tmpTree } from '../helpers/tmp.ts';

const STATUS = `Package: libc6
Status: install ok installed
Priority: optional
Architecture: arm64
Multi-Arch: same
Source: glibc
Version: 2.41-12
Description: GNU C Library: Shared libraries
 Contains the standard libraries.
Homepage: https://www.gnu.org/software/libc/libc.html

Package: python3-numpy
Status: install ok installed
Architecture: arm64
Source: numpy (1:2.2.4+ds-1)
Version: 1:2.2.4+ds-1+b1
Description: Fast array facility to the Python 3 language

Package: removed-thing
Status: deinstall ok config-files
Architecture: arm64
Version: 1.0

Package: jupyterhub
Status: install ok installed
Architecture: all
Version: 5.2.1+ds1-4
Description: multi-user server for Jupyter notebooks
`;

const DEP5 = `Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: numpy
Source: https://numpy.org

Files: *
Copyright: NumPy Developers
License: BSD-3-clause

Files: numpy/linalg/lapack_lite/*
Copyright: Univ. of Tennessee
License: BSD-3-clause

Files: debian/*
Copyright: Debian Python Team
License: GPL-2+ or Expat

License: BSD-3-clause
 Redistribution and use in source and binary forms ...
`;

test('dpkg status: installed packages with version, architecture and source package', () => {
  const pkgs = parseDpkgStatus(STATUS);
  assert.deepEqual(pkgs.map((p) => p.name), ['jupyterhub', 'libc6', 'python3-numpy']);
  const numpy = pkgs.find((p) => p.name === 'python3-numpy')!;
  assert.deepEqual([numpy.version, numpy.architecture, numpy.source, numpy.sourceVersion], ['1:2.2.4+ds-1+b1', 'arm64', 'numpy', '1:2.2.4+ds-1']);
  const libc = pkgs.find((p) => p.name === 'libc6')!;
  assert.deepEqual([libc.source, libc.sourceVersion, libc.summary], ['glibc', '2.41-12', 'GNU C Library: Shared libraries']);
  const hub = pkgs.find((p) => p.name === 'jupyterhub')!;
  assert.deepEqual([hub.source, hub.sourceVersion], ['jupyterhub', '5.2.1+ds1-4']);
});

test("DEP-5 copyright files: the header's and the Files paragraphs' licenses, once each", () => {
  assert.deepEqual(parseCopyright(DEP5), { dep5: true, licenses: ['BSD-3-clause', 'GPL-2+ or Expat'] });
  assert.deepEqual(parseCopyright('This package was debianized by someone.\nIt is GPL.\n'), { dep5: false, licenses: [] });
});

test('Debian license names become SPDX identifiers or LicenseRefs, always a valid expression', () => {
  assert.equal(spdxId('GPL-2+'), 'GPL-2.0-or-later');
  assert.equal(spdxId('GPL-3'), 'GPL-3.0-only');
  assert.equal(spdxId('LGPL-2.1+'), 'LGPL-2.1-or-later');
  assert.equal(spdxId('BSD-3-clause'), 'BSD-3-Clause');
  assert.equal(spdxId('Expat'), 'MIT');
  assert.equal(spdxId('Apache-2.0'), 'Apache-2.0');
  assert.equal(spdxId('zlib'), 'Zlib');
  assert.equal(spdxId('MPL-1.1+'), 'MPL-1.1+');
  assert.equal(spdxId('public-domain'), undefined);
  assert.deepEqual(spdxExpression('GPL-2+ or Artistic'), { expression: 'GPL-2.0-or-later OR Artistic-1.0-Perl', refs: [] });
  assert.deepEqual(spdxExpression('public-domain'), { expression: 'LicenseRef-Debian-public-domain', refs: ['LicenseRef-Debian-public-domain'] });
  assert.equal(spdxExpression('GPL-2+ or Expat, and BSD-3-clause').expression, '(GPL-2.0-or-later OR MIT) AND BSD-3-Clause');
  assert.equal(spdxExpression('GPL-2+ with OpenSSL exception').expression, 'LicenseRef-Debian-GPL-2-with-OpenSSL-exception');
  for (const names of [['BSD-3-clause', 'GPL-2+ or Expat'], ['public-domain', 'LGPL-2.1+'], ['GPL-2+ with OpenSSL exception'], ['X11 and Expat']]) {
    const { expression } = declaredLicense(names);
    assert.doesNotThrow(() => parseSpdx(expression), expression);
  }
  assert.equal(declaredLicense(['BSD-3-clause', 'GPL-2+ or Expat']).expression, 'BSD-3-Clause AND (GPL-2.0-or-later OR MIT)');
  assert.equal(declaredLicense([]).expression, 'NOASSERTION');
});

test('package URLs follow the purl spec for Debian packages', () => {
  const [, , numpy] = parseDpkgStatus(STATUS);
  assert.equal(purl(numpy!, 'trixie'), 'pkg:deb/debian/python3-numpy@1%3A2.2.4%2Bds-1%2Bb1?arch=arm64&distro=trixie&upstream=numpy%401%3A2.2.4%2Bds-1');
});

function fakeRootfs(): string {
  const root = tmpTree('pihub-sbom-', {
    'var/lib/dpkg/status': STATUS,
    'usr/share/doc/python3-numpy/copyright': DEP5,
    'usr/share/doc/libc6/copyright': 'Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\nFiles: *\nCopyright: FSF\nLicense: LGPL-2.1+\n',
    'usr/share/doc/jupyterhub-common/copyright': 'Format: http://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\nFiles: *\nCopyright: Jupyter\nLicense: public-domain\n',
  });
  // Debian links many doc folders to another package's, sometimes with absolute links.
  symlinkSync('/usr/share/doc/jupyterhub-common', join(root, 'usr/share/doc/jupyterhub'));
  return root;
}

test('files are read inside the root filesystem, through its own symlinks', () => {
  const root = fakeRootfs();
  assert.match(readInRoot(root, '/usr/share/doc/jupyterhub/copyright')!, /public-domain/);
  symlinkSync('/etc/hostname', join(root, 'usr/share/doc/escape'));
  assert.equal(readInRoot(root, '/usr/share/doc/escape'), undefined, 'an absolute link resolves inside the root, never on the build machine');
});

test('the SPDX 2.3 document lists every installed package with its license, source and purl', () => {
  const doc = makeSbom(fakeRootfs(), { name: 'pihub-2026-11-26-trixie-arm64', file: 'pihub-2026-11-26-trixie-arm64.img', rawSha256: 'a'.repeat(64), suite: 'trixie', created: '2026-11-26T10:00:00Z', tool: 'pihub-0.1.0' }) as {
    spdxVersion: string; dataLicense: string; SPDXID: string; documentNamespace: string;
    creationInfo: { created: string; creators: string[] };
    packages: Array<Record<string, unknown>>;
    relationships: Array<{ spdxElementId: string; relationshipType: string; relatedSpdxElement: string }>;
    hasExtractedLicensingInfos: Array<{ licenseId: string; extractedText: string }>;
  };
  assert.equal(doc.spdxVersion, 'SPDX-2.3');
  assert.equal(doc.dataLicense, 'CC0-1.0');
  assert.equal(doc.SPDXID, 'SPDXRef-DOCUMENT');
  assert.match(doc.documentNamespace, /^https:\/\/[^#]+$/);
  assert.match(doc.creationInfo.created, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  assert.deepEqual(doc.creationInfo.creators, ['Tool: pihub-0.1.0']);
  const debs = doc.packages.filter((p) => String(p.SPDXID).startsWith('SPDXRef-Package-deb-'));
  assert.deepEqual(debs.map((p) => p.name), ['jupyterhub', 'libc6', 'python3-numpy']);
  const ids = doc.packages.map((p) => String(p.SPDXID));
  assert.equal(new Set(ids).size, ids.length, 'SPDX ids are unique');
  for (const id of ids) assert.match(id, /^SPDXRef-[A-Za-z0-9.-]+$/);
  const numpy = debs.find((p) => p.name === 'python3-numpy')!;
  assert.equal(numpy.versionInfo, '1:2.2.4+ds-1+b1');
  assert.equal(numpy.licenseDeclared, 'BSD-3-Clause AND (GPL-2.0-or-later OR MIT)');
  assert.match(String(numpy.sourceInfo), /numpy 1:2\.2\.4\+ds-1/);
  assert.equal(debs.find((p) => p.name === 'jupyterhub')!.licenseDeclared, 'LicenseRef-Debian-public-domain');
  assert.equal(debs.find((p) => p.name === 'libc6')!.licenseDeclared, 'LGPL-2.1-or-later');
  for (const p of doc.packages) {
    for (const key of ['SPDXID', 'name', 'downloadLocation', 'licenseConcluded', 'licenseDeclared', 'copyrightText']) assert.ok(key in p, `${String(p.name)} has ${key}`);
    if (p.licenseDeclared !== 'NOASSERTION') assert.doesNotThrow(() => parseSpdx(String(p.licenseDeclared)));
  }
  // Every LicenseRef used is defined once, and the document describes the image, which contains every package.
  assert.deepEqual(doc.hasExtractedLicensingInfos.map((l) => l.licenseId), ['LicenseRef-Debian-public-domain']);
  assert.deepEqual(doc.relationships.filter((r) => r.relationshipType === 'DESCRIBES'), [{ spdxElementId: 'SPDXRef-DOCUMENT', relationshipType: 'DESCRIBES', relatedSpdxElement: 'SPDXRef-Image' }]);
  assert.equal(doc.relationships.filter((r) => r.relationshipType === 'CONTAINS').length, 3);
  assert.throws(() => makeSbom(scratch('pihub-empty-'), { name: 'x', file: 'x.img', rawSha256: '0', suite: 'trixie', created: '', tool: '' }), /no \/var\/lib\/dpkg\/status/);
});

function fakeDeploy(): { dir: string; raw: Buffer; compressed: Buffer } {
  const dir = scratch('pihub-deploy-');
  const raw = Buffer.alloc(4096, 7);
  const compressed = Buffer.from('not really zstd, but a file with its own checksum');
  const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
  const base = 'pihub-2026-11-26-trixie-arm64';
  writeFileSync(join(dir, `${base}.img.zst`), compressed);
  writeFileSync(join(dir, `${base}.json`), JSON.stringify({
    name: 'pihub', date: '2026-11-26', suite: 'trixie', architecture: 'arm64', hostname: 'pihub', hub: { port: 8888 },
    image: `${base}.img`, file: `${base}.img.zst`, compression: 'zstd', raw_sha256: sha(raw), sha256: sha(compressed), size: raw.length,
    bmap: `${base}.img.bmap`, data_bytes: raw.length, layout: { boot: { offset: 1024, size: 1024 }, root: { offset: 2048, size: 2048 }, total: raw.length }, packages: 1,
  }));
  writeFileSync(join(dir, `${base}.spdx.json`), '{"spdxVersion":"SPDX-2.3"}');
  writeFileSync(join(dir, 'rpi-imager.json'), '{"os_list":[]}');
  return { dir, raw, compressed };
}

test("the Imager repository lists each image with Imager's required fields, sizes and checksums", async () => {
  const { dir, raw, compressed } = fakeDeploy();
  const r = await writeRepository(dir, { baseUrl: 'https://example.org/releases/download/v1', verify: true });
  assert.equal(r.file, join(dir, REPOSITORY_FILE));
  assert.ok(existsSync(r.icon));
  const repo = JSON.parse(readFileSync(r.file, 'utf8')) as { imager: { devices: Array<{ name: string; tags: string[] }> }; os_list: Array<Record<string, unknown>> };
  assert.equal(repo.os_list.length, 1, 'only pihub image manifests become entries');
  const e = repo.os_list[0]!;
  for (const key of ['name', 'description', 'icon', 'url', 'extract_size', 'extract_sha256', 'image_download_size', 'release_date', 'devices']) assert.ok(key in e, key);
  assert.equal(e.url, 'https://example.org/releases/download/v1/pihub-2026-11-26-trixie-arm64.img.zst');
  assert.equal(e.icon, 'https://example.org/releases/download/v1/pihub.png');
  assert.equal(e.extract_size, raw.length);
  assert.equal(e.extract_sha256, createHash('sha256').update(raw).digest('hex'));
  assert.equal(e.image_download_size, compressed.length);
  assert.equal(e.image_download_sha256, createHash('sha256').update(compressed).digest('hex'));
  assert.equal(e.init_format, 'cloudinit');
  assert.match(String(e.release_date), /^\d{4}-\d\d-\d\d$/);
  const tags = new Set(repo.imager.devices.flatMap((d) => d.tags));
  assert.deepEqual(new Set(e.devices as string[]), tags, "the entry's devices are exactly the repository's device tags");
  assert.deepEqual(repo.imager.devices.map((d) => d.name), ['Raspberry Pi 5', 'Raspberry Pi 4', 'Raspberry Pi 3', 'Raspberry Pi Zero 2 W'], 'an arm64 image: the 64-bit boards, the Pi 5 family too');
  assert.equal(e.architecture, 'armv8');
  // An armhf image (Pi 2, Pi 3 and Zero 2 W in 32-bit) beside it: both architectures' boards and tags.
  assert.deepEqual(deviceTags('armhf'), ['pi3-32bit', 'pi2-32bit']);
  const both = devicesFor(['arm64', 'armhf']);
  assert.deepEqual(both.map((d) => [d.name, d.tags]), [
    ['Raspberry Pi 5', ['pi5-64bit']],
    ['Raspberry Pi 4', ['pi4-64bit']],
    ['Raspberry Pi 3', ['pi3-64bit', 'pi3-32bit']],
    ['Raspberry Pi Zero 2 W', ['pi3-64bit', 'pi3-32bit']],
    ['Raspberry Pi 2', ['pi2-32bit']],
  ]);
  // Without --base-url the images are where they are now.
  const local = await writeRepository(dir);
  assert.match(String(local.entries[0]!.url), /^file:\/\/\/.*\.img\.zst$/);
});

test('the Imager repository refuses a changed image, an empty folder and a bad base URL', async () => {
  const { dir } = fakeDeploy();
  writeFileSync(join(dir, 'pihub-2026-11-26-trixie-arm64.img.zst'), 'changed after the build');
  await assert.rejects(writeRepository(dir, { verify: true }), /its sha256 is .* but .* says/);
  await assert.rejects(writeRepository(scratch('pihub-nothing-')), /holds no pihub image/);
  assert.throws(() => normaliseBaseUrl('releases/v1'), /expected an absolute URL/);
  assert.throws(() => normaliseBaseUrl('ftp://x/y'), /https:\/\/, http:\/\/ or file:\/\//);
  assert.equal(normaliseBaseUrl('https://x/y'), 'https://x/y/');
});

test('release notes name the kernel, JupyterHub, JupyterLab and numpy versions', () => {
  const info = '# Packages in x.img\nlinux-image-6.12.57+deb13-arm64\t6.12.57-1\tarm64\nlinux-image-arm64\t6.12.57-1\tarm64\njupyterhub\t5.2.1+ds1-4\tall\njupyterlab\t4.0.11+ds1+~cs3.1.6-1\tall\npython3-numpy\t1:2.2.4+ds-1\tarm64\npython3.13\t3.13.5-2\tarm64\n';
  const v = versionsFromInfo(info);
  assert.deepEqual(v, { kernel: '6.12.57+deb13-arm64 (6.12.57-1)', jupyterhub: '5.2.1+ds1-4', jupyterlab: '4.0.11+ds1+~cs3.1.6-1', numpy: '1:2.2.4+ds-1', python: '3.13.5-2' });
  const m = {
    name: 'pihub', date: '2026-11-26', suite: 'trixie', architecture: 'arm64', hub: { port: 8888 }, image: 'p.img', file: 'p.img.xz', compression: 'xz',
    raw_sha256: 'b'.repeat(64), sha256: 'c'.repeat(64), size: 123, bmap: 'p.img.bmap', data_bytes: 100, layout: { boot: { offset: 1, size: 1 }, root: { offset: 2, size: 1 }, total: 123 }, packages: 1,
  };
  const notes = releaseNotes('v1.0', [{ manifest: m, versions: v, files: ['p.img.xz', 'p.sha256'] }], 'https://example.org/v1.0/rpi-imager.json');
  assert.match(notes, /^# pihub v1\.0$/m);
  assert.match(notes, /rpi-imager --repo https:\/\/example\.org\/v1\.0\/rpi-imager\.json/);
  for (const want of [/\| Linux kernel \| 6\.12\.57\+deb13-arm64/, /\| JupyterHub \| 5\.2\.1/, /\| JupyterLab \| 4\.0\.11/, /\| numpy \| 1:2\.2\.4/]) assert.match(notes, want);
});

test("the test's Imager files are what Imager 2.0.11 writes for cloud-init", () => {
  const key = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExampleExampleExampleExampleExampleExampl pihub-e2e';
  const files = imagerFiles({
    hostname: 'garden-pi', timezone: 'Europe/London', keyboard: 'gb',
    user: { name: 'dana', passwordHash: '$y$j9T$salt$hash', passwordlessSudo: true },
    ssh: { publicKeys: [key], passwordAuth: false },
    wifi: { ssid: 'pihub test wifi', passphrase: 'correct horse battery', country: 'GB' },
  }, 'rpi-imager-1764201234567');
  assert.equal(files['user-data'], `#cloud-config
manage_resolv_conf: false

hostname: garden-pi
manage_etc_hosts: true
packages:
- avahi-daemon
apt:
  preserve_sources_list: true
  conf: |
    Acquire {
      Check-Date "false";
    };
timezone: Europe/London
keyboard:
  model: pc105
  layout: "gb"
user:
  name: dana
  shell: /bin/bash
  lock_passwd: false
  passwd: "$y$j9T$salt$hash"
  ssh_authorized_keys:
    - "${key}"
  sudo: ALL=(ALL) NOPASSWD:ALL
ssh_pwauth: false
runcmd:
  - [ systemctl, enable, --now, ssh ]
  - [ sh, -c, "echo 'dana ALL=(ALL) NOPASSWD:ALL' >/etc/sudoers.d/010_dana-nopasswd" ]
  - [ chmod, '0440', '/etc/sudoers.d/010_dana-nopasswd' ]
`);
  // IEEE 802.11i's test vector for the passphrase-to-PSK mapping.
  assert.equal(wpaPsk('password', 'IEEE'), 'f42c6fc52df0ebef9ebb4b90b38a5f902e83fe1b135a70e23aed762e9710a12e');
  assert.equal(files['network-config'], `network:
  version: 2
  ethernets:
    eth0:
      dhcp4: true
      dhcp6: true
      optional: true
  wifis:
    wlan0:
      dhcp4: true
      regulatory-domain: "GB"
      access-points:
        "pihub test wifi":
          password: "${wpaPsk('correct horse battery', 'pihub test wifi')}"
      optional: true
`);
  assert.equal(files['meta-data'], 'instance-id: rpi-imager-1764201234567\n');
  assert.equal(imagerCmdline('console=tty0 root=LABEL=RASPIROOT rw rootwait \n', files), 'console=tty0 root=LABEL=RASPIROOT rw rootwait cfg80211.ieee80211_regdom=GB ds=nocloud;i=rpi-imager-1764201234567');
});
