import { test } from 'node:test';
import { scratch } from '../helpers/tmp.ts';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { verifyHostTools, verifyRoot, verifyDiskSpace, parseQemuVersion, qemuWarning } from '../../build/chroot/host.ts';
import { hasBinfmt, readBinfmt } from '../../build/chroot/chroot.ts';
import { UserError } from '../../build/core/errors.ts';

test('a missing host tool names the apt package to install', () => {
  const have = new Set(['tar', 'zstd']);
  assert.throws(
    () => verifyHostTools(['tar', 'genimage', 'mkpasswd', 'mke2fs'], (p) => (have.has(p) ? `/usr/bin/${p}` : undefined)),
    (err: Error) => {
      assert.ok(err instanceof UserError);
      assert.match(err.message, /^missing host tools: `genimage`, `mke2fs`, `mkpasswd`; install with `sudo apt-get install e2fsprogs genimage whois`/);
      return true;
    },
  );
  verifyHostTools(['tar'], (p) => (have.has(p) ? p : undefined));
});

test('not root when root is needed', () => {
  assert.throws(() => verifyRoot('pihub build', 1000), /pihub build needs root .*run it with sudo/);
  verifyRoot('pihub build', 0);
});

test('too little free disk says how much is free and needed', () => {
  assert.throws(
    () => verifyDiskSpace('/work', 8 * 1024 ** 3, 'the work directory', () => 512 * 1024 ** 2),
    /too little free disk for the work directory: 512 MiB free under \/work, about 8\.0 GiB needed/,
  );
  verifyDiskSpace('/work', 1, 'x', () => 2);
});

test('binfmt entries are read, and the F flag is required', () => {
  const dir = scratch('binfmt-');
  writeFileSync(join(dir, 'qemu-aarch64'), 'enabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\nflags: POF\noffset 0\n');
  assert.deepEqual(readBinfmt('arm64', dir), { enabled: true, interpreter: '/usr/libexec/qemu-binfmt/aarch64-binfmt-P', flags: 'POF' });
  assert.equal(hasBinfmt('arm64', dir), true);
  writeFileSync(join(dir, 'qemu-aarch64'), 'enabled\ninterpreter /usr/bin/qemu-aarch64\nflags: OC\n');
  assert.equal(hasBinfmt('arm64', dir), false);
  assert.equal(hasBinfmt('armhf', dir), false);
});

test('old qemu-user gets a warning with the fix', () => {
  assert.deepEqual(parseQemuVersion('qemu-aarch64 version 7.2.15 (Debian 1:7.2+dfsg-7)'), [7, 2]);
  assert.match(qemuWarning([7, 2]) ?? '', /qemu-user 7\.2 is slow .*bookworm-backports/);
  assert.equal(qemuWarning([10, 0]), undefined);
});
