// End to end, 32-bit: the base `debian-trixie-armhf` (Pi 2, and the Pi 3 in 32-bit mode) built
// for real, its boot partition audited for the boards it names, booted in QEMU's virt machine
// with an ARMv7 CPU (Cortex-A15, qemu-system-arm) and used from outside as on arm64: the admin
// and a non-admin each log in to the hub, run numpy in JupyterLab, pip install, use a terminal.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { loadBase } from '../../build/bases/load.ts';
import { bootVm, ssh, waitForSsh, type Vm, type SshTarget } from '../../ci/harness/vm.ts';
import { buildImage, imageBase, manifest, usersImage, E2E_ROOT, type Manifest } from '../helpers/build.ts';
import { waitForHub } from '../../ci/harness/hub.ts';
import { adminUsesHub, personUsesHub } from '../helpers/use.ts';
import { auditBootPartition, fatFile, fatFiles, missingModules } from '../../ci/harness/boot-audit.ts';

const BASE = 'debian-trixie-armhf';
// 32-bit ARM under TCG on 2 shared cores is slower than arm64: a ceiling, not a target.
const BOOT_TIMEOUT = 20 * 60_000;

describe(`an image of the base ${BASE} (two users, SSH), in QEMU virt with a Cortex-A15`, { timeout: 90 * 60_000 }, () => {
  const dir = join(E2E_ROOT, 'e2e-armhf');
  const profile = loadBase(BASE).profile;
  let image = '';
  let m: Manifest;
  let vm: Vm;
  let alice: SshTarget;
  let hub = '';
  let started = 0;

  before(async () => {
    const users = usersImage(dir, { name: 'e2e-armhf', head: `base: ${BASE}`, compression: 'none' });
    const build = await buildImage('e2e-armhf', users.config);
    console.log(`# build e2e-armhf: ${Math.round(build.durationMs / 1000)} s`);
    m = manifest(build.outDir, imageBase(build.outDir));
    image = join(build.outDir, m.file);
    started = Date.now();
    vm = await bootVm(image, [22, 8888], {
      serialLog: join(dir, 'boot1.log'),
      workDir: join(E2E_ROOT, 'boot'),
      extraArgs: ['--memory', '1024', '--cpus', '2'],
    });
    alice = { port: vm.ports[22]!, key: users.key, user: 'alice' };
    hub = `http://127.0.0.1:${vm.ports[8888]}`;
  });

  after(async () => {
    if (vm) assert.equal(await vm.stop(), 0, 'pihub boot shuts the guest down cleanly');
  });

  it('is named and described as armhf', () => {
    assert.match(m.file, /-trixie-armhf\.img$/);
    assert.equal(m.architecture, 'armhf');
  });

  it('carries the device trees of the boards it is for, its consoles, and a 32-bit config.txt and cmdline.txt', () => {
    const offset = m.layout.boot.offset;
    // Device trees, each board's kernel, initramfs and tree, and cmdline.txt's consoles (the base's: the Pi 2's ttyAMA0 first).
    assert.deepEqual(auditBootPartition(image, offset, profile).problems, []);
    const files = fatFiles(image, offset);
    const kernel = files.find((f) => /^vmlinuz-.*-armmp-lpae$/.test(f));
    assert.ok(kernel, `an armmp-lpae kernel on the boot partition: ${files.join(' ')}`);
    const config = fatFile(image, offset, 'config.txt');
    assert.ok(config.split('\n').includes(`kernel=${kernel}`), `config.txt starts ${kernel}:\n${config}`);
    assert.match(config, /^initramfs initrd\.img-\S+-armmp-lpae/m);
    assert.doesNotMatch(config, /arm_64bit=1/, 'a 32-bit kernel: the firmware must not start the CPU in 64-bit mode');
    const cmdline = fatFile(image, offset, 'cmdline.txt');
    assert.match(cmdline, /root=LABEL=RASPIROOT/);
  });

  it('first boot: the hub answers', async () => {
    await waitForHub(hub, BOOT_TIMEOUT);
    console.log(`# boot: armhf first boot, QEMU start to /hub/health 200: ${((Date.now() - started) / 1000).toFixed(1)} s`);
  });

  it('runs a 32-bit ARM userland and kernel, with python as Python 3; its initramfs holds the SD card\'s drivers', async () => {
    await waitForSsh(alice, BOOT_TIMEOUT);
    const r = await ssh(alice, 'dpkg --print-architecture; uname -m; python --version; systemctl is-enabled jupyterhub; systemctl is-system-running --wait');
    assert.equal(r.code, 0, `${r.stdout}${r.stderr}`);
    assert.match(r.stdout, /^armhf\narmv7l\nPython 3\.\d+\.\d+\nenabled\nrunning$/m);
    const initramfs = await ssh(alice, "echo 'alice-secret-1' | sudo -S -p '' lsinitramfs /boot/firmware/initrd.img-$(uname -r)");
    assert.equal(initramfs.code, 0, initramfs.stderr);
    assert.deepEqual(missingModules(initramfs.stdout, profile.boot.initramfs_modules), []);
  });

  it('lets the admin log in through the form, start JupyterLab and run numpy with OpenBLAS, and see the admin page', async () => {
    const { memoryBytes, numpy } = await adminUsesHub(hub, 'alice', 'alice-secret-1');
    console.log(`# armhf: numpy ${numpy}; the hub, its proxy and one person's JupyterLab with a kernel: ${Math.round(memoryBytes / 1024 ** 2)} MiB`);
  });

  it('lets a non-admin pip install --user a wheel and use a terminal, but not see the admin page', async () => {
    await personUsesHub(hub, 'bob', 'bob-secret-2');
  });
});
