// End to end: how the card boots and what it needs, seen from outside. Boots the image of
// the `e2e-users` config of image.test.ts (same config text, so the cached image is reused)
// as a 1 GiB, 2-CPU machine; times the first and the second boot to a hub that answers;
// saves systemd-analyze's view of each boot beside the test's output; logs two people in,
// each with a numpy kernel, and records the memory of the hub, their servers and kernels.
// The figures are printed and saved, not asserted: `npm run bench` reports them.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { bootVm, ssh, waitForSsh, type Vm, type SshTarget } from '../helpers/vm.ts';
import { buildImage, manifest, usersImage, E2E_ROOT } from '../helpers/build.ts';
import { HubSession } from '../helpers/hub.ts';
import { analyzeBoot, capacity, firstBootToHub, memoryLines, memorySnapshot, secondBootToHub, type MemorySnapshot } from '../helpers/measure.ts';

const BOOT_TIMEOUT = 6 * 60_000;
const PEOPLE = [
  { name: 'alice', password: 'alice-secret-1' },
  { name: 'bob', password: 'bob-secret-2' },
];

/** The part of analyzeBoot's text that is `systemd-analyze critical-chain jupyterhub.service`. */
function criticalChain(analysis: string): string {
  return analysis.slice(analysis.indexOf('## systemd-analyze critical-chain'), analysis.indexOf('## systemd-analyze blame'));
}

describe('booting a 1 GiB card: time to the hub, and memory for two people', { timeout: 45 * 60_000 }, () => {
  const usersDir = join(E2E_ROOT, 'e2e-users');
  const dir = join(E2E_ROOT, 'e2e-boot');
  let vm: Vm;
  let alice: SshTarget;
  let hub = '';
  let idle: MemorySnapshot;

  before(async () => {
    mkdirSync(dir, { recursive: true });
    const users = usersImage(usersDir);
    const build = await buildImage('e2e-users', users.config);
    const json = readdirSync(build.outDir).find((f) => f.endsWith('.json'))!;
    const image = join(build.outDir, manifest(build.outDir, json.slice(0, -5)).file);
    vm = await bootVm(image, [22, 8888], {
      serialLog: join(dir, 'console.log'),
      workDir: join(E2E_ROOT, 'boot'),
      extraArgs: ['--memory', '1024', '--cpus', '2'],
    });
    alice = { port: vm.ports[22]!, key: users.key, user: 'alice' };
    hub = `http://127.0.0.1:${vm.ports[8888]}`;
  });

  after(async () => {
    if (vm) assert.equal(await vm.stop(), 0, 'pihub boot shuts the guest down cleanly');
  });

  it('first boot: the hub answers; systemd-analyze is saved', async () => {
    // Nothing else talks to the guest until the hub answers: SSH logins would slow the boot.
    const ms = await firstBootToHub(vm, hub, BOOT_TIMEOUT);
    console.log(`# boot: first boot, QEMU start to /hub/health 200: ${(ms / 1000).toFixed(1)} s`);
    await waitForSsh(alice, BOOT_TIMEOUT);
    const analysis = await analyzeBoot(alice);
    writeFileSync(join(dir, 'boot-first.txt'), `first boot to /hub/health 200: ${(ms / 1000).toFixed(1)} s\n\n${analysis}`);
    assert.match(analysis, /jupyterhub\.service/);
    // Nothing on the hub's way waits for the network to be online. (At the first boot,
    // cloud-init's units still pull network-online in: its generator runs before pihub's gate
    // switches cloud-init off on a card without Imager's files. Not at the second boot, below.)
    assert.doesNotMatch(criticalChain(analysis), /network-online|wait-online/);
  });

  it('runs a JupyterLab server and a numpy kernel for each of two people in 1 GiB', async () => {
    idle = await memorySnapshot(alice, PEOPLE[0]!.password);
    for (const p of PEOPLE) {
      const s = new HubSession(hub, p.name);
      assert.equal((await s.login(p.password)).status, 302, `${p.name} logs in`);
      await s.createToken(p.password);
      await s.startServer(300_000);
      const k = await s.startKernel('import numpy\na = numpy.random.default_rng(1).random((256, 256))\nprint("det", numpy.linalg.det(a @ a.T) > 0)');
      assert.match(k.output, /^det True$/m);
    }
    const busy = await memorySnapshot(alice, PEOPLE[0]!.password);
    const roles = busy.processes.map((p) => `${p.role}:${p.user}`).sort();
    for (const want of ['hub:root', 'proxy:root', 'server:alice', 'server:bob', 'kernel:alice', 'kernel:bob']) {
      assert.ok(roles.includes(want), `no ${want} process among ${roles.join(', ')}`);
    }
    const cap = capacity(idle, busy, PEOPLE.length);
    const lines = [
      'hub idle, nobody logged in:',
      ...memoryLines(idle),
      '',
      `${PEOPLE.length} people logged in, each with JupyterLab and a numpy kernel:`,
      ...memoryLines(busy),
      '',
      `one more person costs ${cap.perPersonMiB} MiB (drop in MemAvailable); people served at once, keeping a tenth of RAM free: ` +
        Object.entries(cap.people).map(([ram, n]) => `${ram}: ${n}`).join(', '),
    ];
    writeFileSync(join(dir, 'memory.txt'), `${lines.join('\n')}\n`);
    for (const l of lines) console.log(`# memory: ${l}`);
    assert.ok(busy.memAvailableKiB > 100 * 1024, `only ${Math.round(busy.memAvailableKiB / 1024)} MiB available with two people on a 1 GiB card`);
  });

  it('second boot: the hub answers again; systemd-analyze is saved', async () => {
    const ms = await secondBootToHub(vm, alice, PEOPLE[0]!.password, hub, BOOT_TIMEOUT);
    console.log(`# boot: second boot, reset to /hub/health 200: ${(ms / 1000).toFixed(1)} s`);
    await waitForSsh(alice, BOOT_TIMEOUT);
    const analysis = await analyzeBoot(alice);
    writeFileSync(join(dir, 'boot-second.txt'), `second boot to /hub/health 200: ${(ms / 1000).toFixed(1)} s\n\n${analysis}`);
    const grown = await ssh(alice, `cat /var/lib/pihub/rootfs-grown >/dev/null && echo grown; echo '${PEOPLE[0]!.password}' | sudo -S -p '' tune2fs -l "$(findmnt -no SOURCE /)"`);
    assert.match(grown.stdout, /grown/, 'the first boot grew the root file system once');
    const count = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+)$`, 'm').exec(grown.stdout)?.[1]);
    const reserved = count('Reserved block count') / count('Block count');
    assert.ok(reserved > 0.049 && reserved < 0.051, `after the grow, ext4 keeps 5 % for root (${(100 * reserved).toFixed(2)} %)`);
    // cloud-init is off for good: nothing waits for the network to be online, nothing pulls it in.
    assert.doesNotMatch(criticalChain(analysis), /network-online|wait-online/);
    const online = await ssh(alice, 'systemctl show -p ActiveState --value systemd-networkd-wait-online.service network-online.target');
    assert.deepEqual(online.stdout.split(/\s+/).filter(Boolean), ['inactive', 'inactive']);
  });
});
