// End to end: build real images, boot them in QEMU with `pihub boot`, and use them from
// outside as a person would: SSH, the console, and JupyterHub through the forwarded port.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync, writeFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { bootVm, greeting, hostKeys, scpTo, sleep, ssh, waitForSsh, type Vm, type SshTarget } from '../../ci/harness/vm.ts';
import { buildImage, imageBase, manifest, usersImage, CACHE_DIR, E2E_ROOT, type Manifest } from '../helpers/build.ts';
import { HubSession, waitForHub } from '../../ci/harness/hub.ts';
import { analyzeBoot, capacity, firstBootToHub, memoryLines, memorySnapshot, type MemorySnapshot } from '../../ci/harness/measure.ts';
import { adminUsesHub, personUsesHub } from '../helpers/use.ts';
import { makeNas, type Nas } from '../helpers/nas.ts';
import { crossSiteNoCorsPost, hugeForm, hugeNameLogins, labPageConfig, loginRedirects } from '../helpers/attacks.ts';
import { PROJECT_DIR } from '../../build/plan/inputs.ts';
import { DEFAULT_BASE, loadBase } from '../../build/bases/load.ts';
import { auditBootPartition, missingModules } from '../../ci/harness/boot-audit.ts';

// A ceiling for a loaded machine (TCG on 2 shared cores); a boot takes two or three minutes here.
const BOOT_TIMEOUT = 12 * 60_000;
const DRIVE_LABEL = 'FAMILY-USB';
const PEOPLE = [
  { name: 'alice', password: 'alice-secret-1' },
  { name: 'bob', password: 'bob-secret-2' },
];

interface Working {
  session: HubSession;
  kernel: string;
}

/** The part of analyzeBoot's text that is `systemd-analyze critical-chain jupyterhub.service`. */
function criticalChain(analysis: string): string {
  return analysis.slice(analysis.indexOf('## systemd-analyze critical-chain'), analysis.indexOf('## systemd-analyze blame'));
}


function imageFiles(outDir: string): { base: string; image: string; manifest: Manifest } {
  const base = imageBase(outDir);
  const m = manifest(outDir, base);
  return { base, image: join(outDir, m.file), manifest: m };
}

/** The image's root file system as debugfs reads it: `raw?offset=N` (a .zst image is decompressed into scratchDir once). */
function imageRoot(image: string, rootOffset: number, scratchDir: string): string {
  let raw = image;
  if (image.endsWith('.zst')) {
    raw = join(scratchDir, 'image.raw');
    if (!existsSync(raw)) {
      mkdirSync(scratchDir, { recursive: true });
      execFileSync('zstd', ['-d', '-q', '-f', '-o', `${raw}.partial`, image]);
      renameSync(`${raw}.partial`, raw);
    }
  }
  return `${raw}?offset=${rootOffset}`;
}

/** The symlinks under /etc/systemd/system (which units are enabled, aliased, masked) as the image file holds them. */
function imageUnitLinks(root: string, scratchDir: string): string[] {
  const dest = join(scratchDir, 'etc');
  rmSync(dest, { recursive: true, force: true });
  mkdirSync(dest, { recursive: true });
  execFileSync('debugfs', ['-R', `rdump /etc/systemd/system ${dest}`, root], { stdio: ['ignore', 'ignore', 'pipe'] });
  const links: string[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      const st = lstatSync(path);
      if (st.isSymbolicLink()) links.push(`${relative(join(dest, 'system'), path)} -> ${readlinkSync(path)}`);
      else if (st.isDirectory()) walk(path);
    }
  };
  walk(join(dest, 'system'));
  rmSync(scratchDir, { recursive: true, force: true });
  return links.sort();
}

/** The same list on a running card. */
async function cardUnitLinks(t: SshTarget): Promise<string[]> {
  const r = await ssh(t, "find /etc/systemd/system -type l -printf '%P -> %l\\n'");
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.split('\n').filter(Boolean).sort();
}

/** What a refused login's page says, as text (the hub's message, e.g. an XSRF check's). */
function pageText(html: string): string {
  return html.replace(/<(script|style)[^>]*>[\s\S]*?<\/\1>/g, ' ').replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ').trim().slice(0, 400);
}

/** CVE-2026-33709: a logged-in person's login page redirects only within the hub, whatever `next` says. */
async function assertNoOpenRedirect(hub: string, user: string, password: string): Promise<void> {
  const s = new HubSession(hub, user);
  assert.equal((await s.login(password)).status, 302);
  const here = new URL(hub).host;
  const redirects = await loginRedirects(s, [
    `http://${here}///evil.example/x`, `http://${here}////evil.example/x`, '/\t/evil.example/x', '/\n/evil.example/x', '///evil.example/x', '//evil.example/x', '/hub/home',
  ]);
  for (const r of redirects) {
    assert.equal(r.status, 302, `next=${JSON.stringify(r.next)} answered ${r.status}`);
    assert.equal(r.host, here, `next=${JSON.stringify(r.next)} sent the browser to ${r.location}`);
  }
  assert.equal(redirects.at(-1)!.location, '/hub/home', 'a next inside the hub is still followed');
}

// The whole check of this image runs on a 1 GiB, 2-CPU machine (a Pi 3's memory): first boot
// and reboot are timed, with systemd-analyze's view saved beside the test's output; two people
// each with a numpy kernel show what a 1 GB Pi can serve (figures printed, not asserted).
describe('an image with two users (one admin) and SSH, on a 1 GiB card', { timeout: 75 * 60_000 }, () => {
  const dir = join(E2E_ROOT, 'e2e-users');
  let key = '';
  let out: ReturnType<typeof imageFiles>;
  let vm: Vm;
  let vmStopped = false;
  const drive = join(dir, 'backup-drive.img');
  // The household's NAS, on the card's network (the backup test).
  let nas: Nas;
  let alice: SshTarget;
  let hub = '';
  let idle: MemorySnapshot;
  // alice's and bob's sessions, each with a server and a kernel (from the memory test on).
  const working: Working[] = [];

  before(async () => {
    // Backups to a drive of the household's own label and to their NAS, at a time of their own (the last test).
    nas = makeNas(join(dir, 'nas'));
    const users = usersImage(dir, { head: `backup:\n  drive_label: ${DRIVE_LABEL}\n  sftp: ${nas.url('kitchen-pi')}\n  time: "04:30"` });
    key = users.key;
    const build = await buildImage('e2e-users', users.config);
    console.log(`# build e2e-users: ${Math.round(build.durationMs / 1000)} s`);
    out = imageFiles(build.outDir);
    // The decompressed image for debugfs is made from this build's image, below.
    rmSync(join(dir, 'raw'), { recursive: true, force: true });
    // A USB drive for the backups (the last test): a whole-disk ext4 with pihub's label.
    rmSync(drive, { force: true });
    execFileSync('truncate', ['-s', '1G', drive]);
    execFileSync('mkfs.ext4', ['-q', '-F', '-L', DRIVE_LABEL, drive]);
    vm = await bootVm(out.image, [22, 8888], {
      serialLog: join(dir, 'boot1.log'),
      workDir: join(E2E_ROOT, 'boot'),
      extraArgs: ['--memory', '1024', '--cpus', '2', '--usb-drive', drive, '--lan-service', nas.lanService],
    });
    alice = { port: vm.ports[22]!, key, user: 'alice' };
    hub = `http://127.0.0.1:${vm.ports[8888]}`;
  });

  after(async () => {
    rmSync(join(dir, 'raw'), { recursive: true, force: true });
    rmSync(drive, { force: true });
    if (vm && !vmStopped) assert.equal(await vm.stop(), 0, 'pihub boot shuts the guest down cleanly');
  });

  it('first boot: the hub answers; systemd-analyze is saved', async () => {
    // Nothing else talks to the guest until the hub answers: SSH logins would slow the boot.
    const ms = await firstBootToHub(vm, hub, BOOT_TIMEOUT);
    console.log(`# boot: first boot, QEMU start to /hub/health 200: ${(ms / 1000).toFixed(1)} s`);
    await waitForSsh(alice, BOOT_TIMEOUT);
    const analysis = await analyzeBoot(alice);
    writeFileSync(join(dir, 'boot-first.txt'), `first boot to /hub/health 200: ${(ms / 1000).toFixed(1)} s\n\n${analysis}`);
    assert.match(analysis, /jupyterhub\.service/);
    // Nothing on the hub's way waits for the network to be online. At the first boot cloud-init's
    // generator queues its units (two of them before sysinit.target, one after
    // systemd-networkd-wait-online); pihub's gate, finding no Imager files, cancels their jobs,
    // so they never run, not even to be skipped by their condition.
    assert.doesNotMatch(criticalChain(analysis), /network-online|wait-online/);
    const cloud = await ssh(alice, `systemctl show -p ConditionTimestampMonotonic --value cloud-init-local.service cloud-init-network.service; echo 'alice-secret-1' | sudo -S -p '' journalctl -b -u pihub-imager-gate.service -o cat --no-pager | grep -c "cancelled cloud-init's start jobs" || true`);
    assert.deepEqual(cloud.stdout.split('\n').filter(Boolean), ['0', '0', '1'], `cloud-init's early units ran (condition times, then the gate's line):\n${cloud.stdout}${cloud.stderr}`);
  });

  it('runs a JupyterLab server and a numpy kernel for each of two people in 1 GiB', async () => {
    idle = await memorySnapshot(alice, PEOPLE[0]!.password);
    for (const p of PEOPLE) {
      const s = new HubSession(hub, p.name);
      const login = await s.login(p.password);
      assert.equal(login.status, 302, `${p.name} logs in: HTTP ${login.status}: ${pageText(login.body)}`);
      await s.createToken(p.password);
      await s.startServer(300_000);
      const k = await s.startKernel('import numpy\na = numpy.random.default_rng(1).random((256, 256))\nprint("det", numpy.linalg.det(a @ a.T) > 0)');
      assert.match(k.output, /^det True$/m);
      working.push({ session: s, kernel: k.id });
    }
    const busy = await memorySnapshot(alice, PEOPLE[0]!.password);
    const roles = busy.processes.map((p) => `${p.role}:${p.user}`).sort();
    for (const want of ['hub:root', 'proxy:jupyterhub-proxy', 'server:alice', 'server:bob', 'kernel:alice', 'kernel:bob']) {
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

  // The two servers of the test above are still running, each with a kernel.
  it('runs each person\'s server in a unit of its own with a memory limit: a runaway kernel dies there, the hub and bob\'s kernel carry on; servers outlive a restart of the hub; a full Pi says so', async () => {
    const sudo = "echo 'alice-secret-1' | sudo -S -p ''";
    const [a, b] = working as [Working, Working];
    // The memory controller is on (without it no limit does anything), and each server has its limit.
    const kernel = await ssh(alice, 'cat /sys/fs/cgroup/cgroup.controllers; grep MemTotal /proc/meminfo; cat /proc/swaps');
    assert.match(kernel.stdout.split('\n')[0]!, /\bmemory\b/, `no memory controller: ${kernel.stdout}`);
    const memTotalMiB = Math.floor(Number(/MemTotal:\s+(\d+)/.exec(kernel.stdout)![1]) / 1024);
    // zram swap, half the memory: compressed pages that stay in RAM (no SD card writes).
    const zram = /^\/dev\/zram0\s+partition\s+(\d+)/m.exec(kernel.stdout);
    assert.ok(zram, `no zram swap: ${kernel.stdout}`);
    assert.ok(Math.abs(Number(zram[1]) / 1024 - memTotalMiB / 2) < 8, `zram swap of ${zram[1]} KiB for ${memTotalMiB} MiB`);
    // systemctl show prints the properties in its own order, one NAME=VALUE a line.
    const show = async (unit: string): Promise<Record<string, string>> => Object.fromEntries(
      (await ssh(alice, `systemctl show -p ActiveState,MemoryMax,MemorySwapMax,ControlGroup,MainPID ${unit}`)).stdout.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    );
    const [aliceUnit, bobUnit, slice] = [await show('pihub-server-alice.service'), await show('pihub-server-bob.service'), await show('pihub-people.slice')];
    for (const u of [aliceUnit!, bobUnit!]) {
      assert.equal(u.ActiveState, 'active');
      assert.match(u.ControlGroup!, /\/pihub-people\.slice\/pihub-server-(alice|bob)\.service$/);
      assert.ok(Number(u.MemoryMax) <= (memTotalMiB / 2) * 1024 ** 2, `MemoryMax ${u.MemoryMax} of ${memTotalMiB} MiB`);
      assert.equal(Number(u.MemorySwapMax), Math.floor(Number(u.MemoryMax) / 2 ** 21) * 2 ** 20, `MemorySwapMax ${u.MemorySwapMax}: half of MemoryMax ${u.MemoryMax}`);
    }
    assert.ok(Number(slice!.MemoryMax) < memTotalMiB * 1024 ** 2, `pihub-people.slice MemoryMax ${slice!.MemoryMax}`);
    const limitMiB = Number(aliceUnit!.MemoryMax) / 1024 ** 2;
    console.log(`# memory: ${memTotalMiB} MiB: each server may use ${limitMiB} MiB, all together ${Number(slice!.MemoryMax) / 1024 ** 2} MiB`);
    // alice's new kernel asks for twice her limit (more than her memory and her share of the
    // swap); the kernel is killed inside her unit.
    const events = `cat /sys/fs/cgroup${aliceUnit!.ControlGroup}/memory.events`;
    const oomBefore = Number(/^oom_kill (\d+)$/m.exec((await ssh(alice, events)).stdout)?.[1] ?? 0);
    const runaway = a.session.runCode(`import numpy\nx = numpy.ones(${limitMiB * 2} * 2**20 // 8)\nprint("survived", x.sum())`, 240_000).then((out) => out, (err: Error) => err.message);
    let oomKills = oomBefore;
    for (const end = Date.now() + 240_000; oomKills === oomBefore && Date.now() < end; await sleep(2000)) {
      oomKills = Number(/^oom_kill (\d+)$/m.exec((await ssh(alice, events)).stdout)?.[1] ?? 0);
    }
    assert.ok(oomKills > oomBefore, `no OOM kill in alice's unit; the kernel said: ${await runaway}`);
    assert.equal((await fetch(`${hub}/hub/health`)).status, 200, 'the hub answers while alice\'s kernel is killed');
    assert.equal((await ssh(alice, 'systemctl is-active pihub-server-alice.service jupyterhub.service jupyterhub-proxy.service')).stdout, 'active\nactive\nactive\n');
    assert.match(await b.session.execute(b.kernel, 'print("state", a.shape)', 120_000), /^state \(256, 256\)$/m, 'bob\'s kernel kept its state');
    // A restart of the hub leaves both servers, and bob's kernel with its state, as they were.
    // The restart also applies a size chosen in the hub config, as its comment says: at most
    // two servers at once, so that a third person finds this Pi full (below).
    const conf = '/root/jupyterhub_config.py';
    assert.equal((await ssh(alice, `${sudo} sed -i "s/, servers='auto')$/, servers=2)/" ${conf} && ${sudo} grep -c "servers=2)$" ${conf}`)).stdout.trim(), '1');
    assert.equal((await ssh(alice, `${sudo} systemctl restart jupyterhub`)).code, 0);
    await waitForHub(hub, 600_000);
    const after = await ssh(alice, 'systemctl show -p MainPID --value pihub-server-alice.service pihub-server-bob.service');
    // (--value prints one value a unit, with an empty line between units.)
    assert.deepEqual(after.stdout.split('\n').filter(Boolean), [aliceUnit!.MainPID, bobUnit!.MainPID], 'the servers were restarted with the hub');
    let state = '';
    for (const end = Date.now() + 180_000; !/^state /m.test(state) && Date.now() < end; await sleep(3000)) {
      state = await b.session.execute(b.kernel, 'print("state", a.shape)', 60_000).catch((err: Error) => err.message);
    }
    assert.match(state, /^state \(256, 256\)$/m, 'bob\'s kernel is reached through the restarted hub, with its state');
    // The Pi is full (two servers run): a third person gets the page saying so.
    assert.equal((await ssh(alice, `${sudo} sh -c "adduser --disabled-password --comment '' carol >/dev/null && echo carol:carol-secret-3 | chpasswd"`)).code, 0);
    const c = new HubSession(hub, 'carol');
    assert.equal((await c.login('carol-secret-3')).status, 302);
    const full = await c.page('/hub/spawn');
    assert.equal(full.status, 429, `carol's spawn answered ${full.status}: ${pageText(full.body)}`);
    assert.match(pageText(full.body), /This Pi is full.*as many JupyterLab servers as its memory holds/);
    await ssh(alice, `${sudo} deluser --remove-home carol >/dev/null; ${sudo} sed -i "s/, servers=2)$/, servers='auto')/" ${conf}`);
    // The tests below start their own servers.
    for (const w of working) await w.session.stopServer(300_000);
    assert.equal((await ssh(alice, 'systemctl list-units --no-legend "pihub-server-*"')).stdout.trim(), '', 'a stopped server leaves no unit behind');
  });

  it('writes the outputs with checksums of the raw and the compressed image, and a package list', () => {
    const files = readdirSync(join(E2E_ROOT, 'e2e-users', 'deploy'));
    assert.ok(files.includes(`${out.base}.img.zst`));
    assert.ok(files.includes(`${out.base}.sha256`));
    assert.ok(files.includes(`${out.base}.info`));
    assert.ok(!files.some((f) => f.includes('.partial')), 'no half-written file');
    const sums = execFileSync('sha256sum', [out.image]).toString();
    assert.ok(sums.startsWith(out.manifest.sha256));
    const sha = readFileSync(join(E2E_ROOT, 'e2e-users', 'deploy', `${out.base}.sha256`), 'utf8');
    assert.match(sha, new RegExp(`^${out.manifest.raw_sha256}  ${out.base}\\.img\\n${out.manifest.sha256}  ${out.base}\\.img\\.zst\\n[0-9a-f]{64}  ${out.base}\\.img\\.bmap\\n$`));
    assert.ok(files.includes(`${out.base}.img.bmap`), 'the block map is beside the image');
  });

  it('carries what each board\'s firmware loads (the Pi 5 family too): kernel, initramfs with the SD card\'s drivers, a device tree, the D0 overlay, the base\'s consoles', async () => {
    const profile = loadBase(DEFAULT_BASE).profile;
    const raw = imageRoot(out.image, out.manifest.layout.root.offset, join(dir, 'raw')).replace(/\?offset=\d+$/, '');
    const audit = auditBootPartition(raw, out.manifest.layout.boot.offset, profile);
    for (const line of audit.boards) console.log(`# boot partition: ${line}`);
    assert.deepEqual(audit.problems, []);
    // The kernel the card runs (here in virt) is the one config.txt names, and its initramfs
    // holds what the boards need to find the root file system on the SD card.
    const r = await ssh(alice, "uname -r; echo 'alice-secret-1' | sudo -S -p '' lsinitramfs /boot/firmware/initrd.img-$(uname -r)");
    assert.equal(r.code, 0, r.stderr);
    const release = r.stdout.split('\n')[0]!;
    assert.ok(audit.boards.every((b) => b.includes(`vmlinuz-${release}, initrd.img-${release},`)), `every board loads ${release}:\n${audit.boards.join('\n')}`);
    assert.match(release, /^[7-9]\.\d+\.\d+\+deb13-arm64$/, 'the backports kernel (7.x): the first Debian kernel with the Pi 5\'s device trees');
    assert.deepEqual(missingModules(r.stdout, profile.boot.initramfs_modules), [], 'modules the boards need in the initramfs');
  });

  it('reaches multi-user with no failed units, and every package is configured', async () => {
    const r = await ssh(alice, 'systemctl is-system-running --wait; systemctl --failed --no-legend --plain');
    assert.equal(r.stdout.trim(), 'running', `failed units:\n${r.stdout}`);
    const dpkg = await ssh(alice, "dpkg --audit; dpkg-query -W -f '${db:Status-Abbrev}\\n' | sort | uniq -c");
    assert.match(dpkg.stdout.trim(), /^\d+ ii\s*$/, `packages not fully installed:\n${dpkg.stdout}`);
  });

  it('keeps every unit as the build left it: the first boot\'s presets enable nothing (compared with the image file)', async () => {
    const built = imageUnitLinks(imageRoot(out.image, out.manifest.layout.root.offset, join(dir, 'raw')), join(dir, 'units'));
    assert.ok(built.some((l) => l.startsWith('multi-user.target.wants/jupyterhub.service -> ')), `the image's unit links:\n${built.join('\n')}`);
    assert.deepEqual(await cardUnitLinks(alice), built);
    const preset = await ssh(alice, 'cat /etc/systemd/system-preset/00-pihub.preset');
    assert.match(preset.stdout, /^enable jupyterhub\.service$/m);
    assert.match(preset.stdout, /^enable ssh\.service$/m, 'ssh.enabled is true in this image');
    assert.match(preset.stdout, /\ndisable \*\n$/);
  });

  it('has python as Python 3, and pip', async () => {
    const r = await ssh(alice, 'python --version; pip --version; pip3 --version');
    assert.match(r.stdout, /^Python 3\.\d+\.\d+\npip \d+.* \(python 3\.\d+\)\npip \d+/);
  });

  it('leaves out the files of JupyterLab\'s build tools, with every package installed, and keeps the filter for upgrades', async () => {
    // stages/20-jupyterhub/00-files: dpkg's path-exclude, before any of these packages came in.
    const r = await ssh(alice, [
      "dpkg-query -W -f='${Package} ${db:Status-Abbrev}\\n' node-stdlib node-mathjax-full libjs-mathjax | LC_ALL=C sort",
      'find /usr/share/nodejs/@stdlib /usr/share/nodejs/mathjax-full /usr/share/javascript/mathjax -mindepth 1 -not -type d | wc -l',
      'find /usr/share/doc/node-stdlib /usr/share/doc/libjs-mathjax /usr/share/doc/nodejs -not -type d | LC_ALL=C sort',
      'grep -c ^path-exclude= /etc/dpkg/dpkg.cfg.d/pihub-node-trim',
    ].join('; '));
    assert.equal(r.stdout, [
      'libjs-mathjax ii ', 'node-mathjax-full ii ', 'node-stdlib ii ', '0',
      '/usr/share/doc/libjs-mathjax/copyright', '/usr/share/doc/node-stdlib/copyright', '/usr/share/doc/nodejs/copyright',
      '6', '',
    ].join('\n'));
  });

  it('grew the root partition and file system to fill the disk at first boot', async () => {
    const r = await ssh(alice, 'findmnt -bno SIZE /; lsblk -bdno SIZE /dev/vda; cat /var/lib/pihub/rootfs-grown && echo grown');
    const [fsSize, disk] = r.stdout.trim().split('\n').map(Number);
    assert.ok(fsSize! > out.manifest.layout.root.size + 2 * 1024 ** 3, `root is ${fsSize} bytes; image root was ${out.manifest.layout.root.size}`);
    assert.ok(fsSize! > disk! - 1024 ** 3, `root ${fsSize} should nearly fill the ${disk}-byte disk`);
    assert.match(r.stdout, /grown/);
  });

  it('has SSH host keys and a machine id made on this card; the image file holds neither', async () => {
    const keys = await hostKeys(alice.port);
    assert.ok(keys.length >= 2, `host keys: ${keys.join('\n')}`);
    // Every card makes its own at first boot: the image has no host key and no machine id.
    const root = imageRoot(out.image, out.manifest.layout.root.offset, join(dir, 'raw'));
    const listing = execFileSync('debugfs', ['-R', 'ls -l /etc/ssh', root], { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
    assert.match(listing, /sshd_config/, `debugfs could not list /etc/ssh:\n${listing}`);
    assert.doesNotMatch(listing, /ssh_host_/, `the image holds SSH host keys:\n${listing}`);
    const machineId = execFileSync('debugfs', ['-R', 'cat /etc/machine-id', root], { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
    assert.equal(machineId.trim(), 'uninitialized', 'the image has a machine id of its own');
    const r = await ssh(alice, 'cat /etc/machine-id');
    assert.match(r.stdout.trim(), /^[0-9a-f]{32}$/);
  });

  it('lets the configured user log in with her key, but not root', async () => {
    const r = await ssh(alice, 'id -un; id -Gn');
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^alice\n/);
    assert.match(r.stdout, /\bsudo\b/);
    assert.match(r.stdout, /\bjupyter_admin\b/);
    assert.match(r.stdout, /\bjupyter_users\b/);
    const root = await ssh({ ...alice, user: 'root' }, 'true');
    assert.notEqual(root.code, 0, 'root logged in over SSH');
    const bob = await ssh({ ...alice, user: 'bob' }, 'true');
    assert.notEqual(bob.code, 0, 'bob has no key and password login is off');
    const shadow = await ssh(alice, "echo 'alice-secret-1' | sudo -S -p '' passwd --status root; echo 'alice-secret-1' | sudo -S -p '' sshd -T | grep -i '^passwordauthentication'");
    assert.match(shadow.stdout, /^root L /m, 'root is locked');
    assert.match(shadow.stdout, /^passwordauthentication no$/m);
  });

  it('has the host name, D-Bus tools, and no plain password anywhere in the image', async () => {
    const r = await ssh(alice, 'hostname; grep -w kitchen-pi /etc/hosts; getent ahostsv4 kitchen-pi | head -n 1; hostnamectl --static; timedatectl show -p Timezone --value');
    assert.match(r.stdout, /^kitchen-pi\n127\.0\.1\.1\s+kitchen-pi\n127\.0\.1\.1\s+STREAM kitchen-pi\nkitchen-pi\nEtc\/UTC\n$/);
    // Everywhere a build could have written it (packages cannot contain it).
    const grep = await ssh(alice, "echo 'alice-secret-1' | sudo -S -p '' grep -rIl -e 'alice-secret-1' -e 'bob-secret-2' /etc /home /root /var /boot /opt /srv /tmp /usr/local; echo end");
    assert.equal(grep.stdout.trim(), 'end', `found the plain password in: ${grep.stdout}`);
    const buildOnly = await ssh(alice, "grep -rIl -e force-unsafe-io -e 'Acquire::http::Proxy' /etc/dpkg /etc/apt 2>/dev/null; echo end");
    assert.equal(buildOnly.stdout.trim(), 'end', `build-only dpkg/apt options on the card: ${buildOnly.stdout}`);
  });

  it('serves JupyterHub on port 8888 from an enabled, active jupyterhub.service', async () => {
    await waitForHub(hub, 180_000);
    const api = await (await fetch(`${hub}/hub/api`)).json() as { version: string };
    assert.match(api.version, /^5\./);
    const r = await ssh(alice, "systemctl is-enabled jupyterhub; systemctl is-active jupyterhub jupyterhub-proxy; systemctl show -p User -p Restart -p ExecStart jupyterhub; echo 'alice-secret-1' | sudo -S -p '' ss -Hltnp");
    assert.match(r.stdout, /^enabled\nactive\nactive\n/);
    assert.match(r.stdout, /Restart=on-failure/);
    assert.match(r.stdout, /--config=\/root\/jupyterhub_config\.py/);
    const listeners = r.stdout.split('\n').filter((l) => /python|jupyterhub|node/.test(l));
    assert.ok(listeners.some((l) => /\*:8888|0\.0\.0\.0:8888|\[::\]:8888/.test(l)), `hub not listening on 8888:\n${listeners.join('\n')}`);
    assert.equal(listeners.filter((l) => /:8888 /.test(l)).length >= 1, true);
    const conf = await ssh(alice, "echo 'alice-secret-1' | sudo -S -p '' stat -c '%a %U' /root/jupyterhub_config.py; echo 'alice-secret-1' | sudo -S -p '' stat -c '%a' /var/lib/jupyterhub/jupyterhub_cookie_secret");
    assert.match(conf.stdout, /^600 root\n600\n$/);
  });

  it('reports the memory the hub uses idle', async () => {
    const r = await ssh(alice, 'systemctl show jupyterhub jupyterhub-proxy -p MemoryCurrent --value');
    const mib = Math.round(r.stdout.trim().split(/\s+/).reduce((sum, v) => sum + Number(v), 0) / 1024 ** 2);
    assert.ok(mib > 20 && mib < 1024, `MemoryCurrent ${r.stdout}`);
    console.log(`# memory: jupyterhub.service idle (hub + proxy): ${mib} MiB`);
  });

  it('lets the admin log in through the form, start a server and run numpy as herself', async () => {
    const { memoryBytes } = await adminUsesHub(hub, 'alice', 'alice-secret-1');
    console.log(`# memory: the hub, its proxy and one person's JupyterLab with a numpy kernel (pihub-people.slice): ${Math.round(memoryBytes / 1024 ** 2)} MiB`);
  });

  it('lets a non-admin pip install --user a wheel and import it, but not see the admin page', async () => {
    await personUsesHub(hub, 'bob', 'bob-secret-2');
  });

  // The advisories of docs/security.md, each made as an attacker would make it, from outside.
  it('after login, sends a browser only to this hub, whatever `next` says (CVE-2026-33709)', async () => {
    await assertNoOpenRedirect(hub, 'alice', 'alice-secret-1');
  });

  it('refuses what another site can make a logged-in browser send: no-cors POSTs with cookies only (CVE-2026-40864)', async () => {
    const s = new HubSession(hub, 'alice');
    assert.equal((await s.login('alice-secret-1')).status, 302);
    await s.createToken('alice-secret-1');
    await s.startServer(600_000);
    // A new API token for the attacker's page (201 on Debian's 5.2.1), a server start through the
    // hub's form, and a kernel on the person's server.
    for (const [path, body, type] of [
      ['/hub/api/users/alice/tokens', '{}', undefined],
      ['/hub/spawn', '', 'application/x-www-form-urlencoded'],
      ['/user/alice/api/kernels', '{"name": "python3"}', undefined],
    ] as const) {
      const r = await crossSiteNoCorsPost(s, path, body, type);
      assert.equal(r.status, 403, `a cross-site no-cors POST to ${path} with cookies only answered ${r.status}: ${r.body.slice(0, 200)}`);
    }
    // Her own JupyterLab still works with her cookies: a same-origin request with the _xsrf token.
    await s.page('/user/alice/lab');
    const xsrf = s.cookie('/user/alice/', '_xsrf');
    assert.ok(xsrf, 'JupyterLab set no _xsrf cookie');
    const own = await s.request('/user/alice/api/kernels', {
      method: 'POST',
      cookies: true,
      headers: { 'Sec-Fetch-Mode': 'cors', 'Sec-Fetch-Site': 'same-origin', 'X-XSRFToken': xsrf, 'Content-Type': 'application/json' },
      body: '{"name": "python3"}',
    });
    assert.equal(own.status, 201, `JupyterLab's own request answered ${own.status}: ${own.body.slice(0, 200)}`);
    await s.request(`/user/alice/api/kernels/${(JSON.parse(own.body) as { id: string }).id}`, { method: 'DELETE' });
  });

  it('answers form bodies of very many parts or fields at once, without holding the hub (CVE-2026-31958, CVE-2026-82397)', async () => {
    for (const [kind, count] of [['multipart', 200_000], ['urlencoded', 5_000_000]] as const) {
      const r = await hugeForm(hub, kind, count);
      console.log(`# security: a ${kind} body of ${count} ${kind === 'multipart' ? 'parts' : 'fields'}: HTTP ${r.status} after ${r.ms} ms; /hub/health within ${r.slowestHealthMs} ms`);
      assert.equal(r.status, 400, `${kind}: HTTP ${r.status}`);
      assert.ok(r.slowestHealthMs < 5000, `/hub/health took ${r.slowestHealthMs} ms while the ${kind} body was parsed`);
    }
  });

  it('keeps its log and its answers under a flood of failed logins with huge user names (CVE-2026-54338)', async () => {
    const sudo = "echo 'alice-secret-1' | sudo -S -p ''";
    const since = (await ssh(alice, 'date +%s')).stdout.trim();
    const flood = await hugeNameLogins(hub, 30, 1024 * 1024);
    assert.ok(flood.statuses.every((st) => st === 200 || st === 403), `the failed logins answered ${[...new Set(flood.statuses)].join(', ')}`);
    const logged = await ssh(alice, `${sudo} journalctl -u jupyterhub --since @${since} -o cat --no-pager | wc -c`);
    const bytes = Number(logged.stdout.trim());
    console.log(`# security: 30 failed logins with 1 MiB user names: the hub logged ${bytes} bytes; /hub/health answered within ${flood.slowestHealthMs} ms`);
    // Unbounded, each attempt put its megabyte name into the journal (30 MiB and more).
    assert.ok(bytes < 64 * 1024, `the hub logged ${bytes} bytes for 30 failed logins`);
    assert.ok(flood.slowestHealthMs < 10_000, `/hub/health took ${flood.slowestHealthMs} ms during the flood`);
    assert.equal((await new HubSession(hub, 'bob').login('bob-secret-2')).status, 302, 'people still log in');
  });

  it('gives no one who is not an admin a share code or a new user (GHSA-c4gm-pwx9-9w8j, GHSA-69wv-m5fw-2fhp: not exposed)', async () => {
    const s = new HubSession(hub, 'bob');
    assert.equal((await s.login('bob-secret-2')).status, 302);
    await s.createToken('bob-secret-2');
    assert.equal((await s.json('/hub/api/share-codes/bob/', { method: 'POST', json: {} })).status, 403);
    assert.equal((await s.json('/hub/api/users', { method: 'POST', json: { usernames: ['mallory'] } })).status, 403);
  });

  it('serves converted notebooks in a sandbox, keeps each server in its own folder and redirects only within the hub (jupyter_server advisories)', async () => {
    const sudo = "echo 'alice-secret-1' | sudo -S -p ''";
    const s = new HubSession(hub, 'bob');
    assert.equal((await s.login('bob-secret-2')).status, 302);
    await s.createToken('bob-secret-2');
    await s.startServer(600_000);
    // GHSA-fcw5-x6j4-ccmp: a notebook whose output is a script, converted to HTML on the server.
    const notebook = {
      nbformat: 4, nbformat_minor: 5, metadata: {},
      cells: [{ cell_type: 'code', id: 'x', execution_count: 1, metadata: {}, source: '1',
        outputs: [{ output_type: 'display_data', metadata: {}, data: { 'text/html': '<script>document.title = "pwned"</script>' } }] }],
    };
    assert.equal((await s.json(s.userPath('/api/contents/xss.ipynb'), { method: 'PUT', json: { type: 'notebook', content: notebook } })).status, 201);
    // As a browser opens it: with the server's own cookie, which the OAuth dance of a visit sets.
    await s.page(s.userPath('/lab'));
    const converted = await s.request(s.userPath('/nbconvert/html/xss.ipynb'));
    assert.equal(converted.status, 200);
    assert.match(converted.body, /document\.title = "pwned"/, 'the script is in the converted page');
    assert.match(converted.headers['content-security-policy'] ?? '', /\bsandbox allow-scripts\b/, `CSP: ${converted.headers['content-security-policy']}`);
    assert.doesNotMatch(converted.headers['content-security-policy'] ?? '', /allow-same-origin/);
    // GHSA-5789-5fc7-67v3: bob's server cannot reach /home/bobby, although the name begins with his.
    await ssh(alice, `${sudo} sh -c 'mkdir -p /home/bobby && echo sibling > /home/bobby/x.txt && chmod 755 /home/bobby && chmod 644 /home/bobby/x.txt'`);
    assert.equal((await s.request(s.userPath('/api/contents/..%2Fbobby%2Fx.txt'))).status, 404);
    // GHSA-qh7q-6qm3-653w: the server's own /login keeps `next` on the hub.
    const here = new URL(hub).host;
    const login = await s.request(s.userPath(`/login?next=${encodeURIComponent('///user/bob/x')}`), { cookies: true });
    if (login.location) assert.equal(new URL(login.location, `${hub}/user/bob/login`).host, here, `the server's /login sent the browser to ${login.location}`);
  });

  it('keeps JupyterLab offline: no news from the internet, no update check, an extension manager that installs nothing', async () => {
    const s = new HubSession(hub, 'bob');
    assert.equal((await s.login('bob-secret-2')).status, 302);
    await s.createToken('bob-secret-2');
    await s.startServer(600_000);
    const config = await labPageConfig(s);
    assert.deepEqual(config.news, { disabled: true }, `page config news: ${JSON.stringify(config.news)}`);
    assert.match(JSON.stringify(config.extensionManager), /"name":"read-only"/);
    // The panel is not offered, nor help:open (CVE-2026-40171).
    const disabled = config.disabledExtensions as string[];
    for (const id of ['@jupyterlab/extensionmanager-extension:plugin', '@jupyterlab/help-extension:resources']) assert.ok(disabled.includes(id), `${id} is not disabled: ${JSON.stringify(disabled)}`);
    // CVE-2026-42557, CVE-2026-73415: the bundles the browser gets are pihub's changed ones.
    const statics = String(config.fullStaticUrl);
    for (const name of ['jupyterlab-command-linker.edits', 'jupyterlab-image-viewer.edits']) {
      const edits = JSON.parse(readFileSync(join(PROJECT_DIR, 'stages/25-security/00-files/usr/share/pihub/security', name), 'utf8')) as { files: Array<{ path: string; edits: Array<{ old: string; new: string }> }> };
      for (const f of edits.files) {
        const served = await s.request(`${statics}/${f.path.split('/').at(-1)}`, { cookies: true });
        assert.equal(served.status, 200, `${f.path}: HTTP ${served.status}`);
        for (const e of f.edits) assert.ok(served.body.includes(e.new) && !served.body.includes(e.old), `${f.path} as served is not pihub's`);
      }
    }
    // GHSA-37w4-hwhx-4rc4: the extension manager's API installs nothing, whatever it is asked.
    const install = await s.json<{ status: string; message?: string }>(s.userPath('/lab/api/extensions'), { method: 'POST', json: { cmd: 'install', extension_name: 'jupyterlab-evil' } });
    assert.notEqual(install.body?.status, 'ok', `the extension manager installed: ${JSON.stringify(install.body)}`);
    const update = await s.json<{ notification: unknown }>(s.userPath('/lab/api/update'));
    assert.equal(update.status, 200);
    assert.equal(update.body.notification, null);
    // Nobody is asked whether to fetch news: the defaults every person's settings start from.
    const settings = await s.json<{ schema?: { properties?: Record<string, { default?: unknown }> } }>(s.userPath('/lab/api/settings/@jupyterlab/apputils-extension:notification'));
    assert.equal(settings.status, 200);
    const defaults = settings.body.schema?.properties;
    assert.equal(defaults?.fetchNews?.default, 'false', `notification settings: ${JSON.stringify(defaults)}`);
    assert.equal(defaults?.checkForUpdates?.default, false);
  });

  it('runs its proxy unprivileged and sandboxed; systemd-analyze security of its units is saved', async () => {
    const sudo = "echo 'alice-secret-1' | sudo -S -p ''";
    const units = ['jupyterhub-proxy.service', 'jupyterhub.service', 'pihub-ssh-keygen.service', 'pihub-issue.service', 'pihub-grow-rootfs.service', 'pihub-userconf.service', 'pihub-imager-gate.service', 'pihub-imager-finish.service', 'pihub-backup.service', 'pihub-backup-restore.service'];
    const r = await ssh(alice, `${sudo} systemd-analyze security --no-pager ${units.join(' ')}; echo; ps -o user:32=,args= -C node; grep -E '^(Uid|CapEff|CapBnd|NoNewPrivs|Seccomp):' /proc/$(systemctl show -p MainPID --value jupyterhub-proxy)/status`);
    writeFileSync(join(dir, 'security.txt'), r.stdout);
    const levels = [...r.stdout.matchAll(/^→ Overall exposure level for (\S+): ([\d.]+) (\w+)/gm)].map((m) => ({ unit: m[1]!, exposure: Number(m[2]), level: m[3]! }));
    for (const l of levels) console.log(`# security: systemd-analyze security ${l.unit}: ${l.exposure} ${l.level}`);
    assert.equal(levels.length, units.length, r.stdout.slice(-2000));
    const proxy = levels.find((l) => l.unit === 'jupyterhub-proxy.service')!;
    assert.ok(proxy.exposure < 5, `the proxy's exposure is ${proxy.exposure} ${proxy.level}`);
    assert.match(r.stdout, /^jupyterhub-proxy\s+node \S*configurable-http-proxy /m, 'the proxy runs as jupyterhub-proxy');
    assert.match(r.stdout, /^CapEff:\s+0+$/m, 'the proxy has no capability');
    assert.match(r.stdout, /^NoNewPrivs:\s+1$/m);
    // A hub.port below 1024: the settings stage installs the drop-in that gives the proxy the one
    // capability to open it; done here on the card as that stage does it (port 80, then back).
    const script = `set -e
d=/etc/systemd/system/jupyterhub-proxy.service.d
cp /root/jupyterhub_config.py /root/jupyterhub_config.keep
sed -i 's/^port = 8888$/port = 80/' /root/jupyterhub_config.py
cp /usr/share/pihub/proxy-low-port.conf $d/60-pihub-low-port.conf
systemctl daemon-reload
systemctl restart jupyterhub
for i in $(seq 100); do curl -sf -o /dev/null http://127.0.0.1:80/hub/health && break; sleep 3; done
curl -s -o /dev/null -w 'port 80: %{http_code}\n' http://127.0.0.1:80/hub/health
grep CapEff /proc/$(systemctl show -p MainPID --value jupyterhub-proxy)/status
mv /root/jupyterhub_config.keep /root/jupyterhub_config.py
rm $d/60-pihub-low-port.conf
systemctl daemon-reload
systemctl restart jupyterhub
`;
    const low = await ssh(alice, `${sudo} sh -c "echo ${Buffer.from(script).toString('base64')} | base64 -d | sh"`, 10 * 60_000);
    assert.match(low.stdout, /^port 80: 200$/m, `${low.stdout}\n${low.stderr}`);
    assert.match(low.stdout, /^CapEff:\s+0+400$/m, 'the proxy on port 80 has CAP_NET_BIND_SERVICE and nothing else');
    await waitForHub(hub, 600_000);
  });

  it('adds a person made with `sudo adduser` to the hub users, not to the admins', async () => {
    const r = await ssh(alice, "echo 'alice-secret-1' | sudo -S -p '' adduser --disabled-password --comment '' erin >/dev/null && id -Gn erin");
    assert.match(r.stdout, /\bjupyter_users\b/);
    assert.doesNotMatch(r.stdout, /\bjupyter_admin\b|\bsudo\b/);
  });

  it('listens for the hub on the configured port only, and shuts idle servers down after an hour', async () => {
    const r = await ssh(alice, "echo 'alice-secret-1' | sudo -S -p '' ss -Hltnp | grep -E 'python|node|jupyterhub'");
    const open = r.stdout.split('\n').filter(Boolean).filter((l) => !/ (127\.0\.0\.1|\[::1\]|\[::ffff:127\.0\.0\.1\]):\d+ /.test(l));
    assert.ok(open.length >= 1);
    for (const l of open) assert.match(l, /:8888 /, `the hub also listens on: ${l}`);
    const conf = await ssh(alice, 'cat /etc/jupyter/jupyter_server_config.py');
    assert.match(conf.stdout, /^idle_timeout = 60 \* 60 /m);
    assert.match(conf.stdout, /cull_connected = True/);
    assert.match(conf.stdout, /TerminalManager\.cull_inactive_timeout/);
    assert.match(conf.stdout, /shutdown_no_activity_timeout/);
  });

  it('culls what a forgotten tab keeps open: a connected idle kernel, an idle terminal, then the server itself (20 s timeout set on the card)', async () => {
    const sudo = "echo 'alice-secret-1' | sudo -S -p ''";
    const conf = '/etc/jupyter/jupyter_server_config.py';
    assert.equal((await ssh(alice, `${sudo} sed -i 's/^idle_timeout = .*/idle_timeout = 20  # e2e/' ${conf}`)).code, 0);
    const s = new HubSession(hub, 'bob');
    assert.equal((await s.login('bob-secret-2')).status, 302);
    await s.createToken('bob-secret-2');
    const hasServer = async () => Boolean((await s.json<{ servers?: Record<string, unknown> }>('/hub/api/users/bob')).body?.servers?.['']);
    // bob's server from the test above read the hour-long timeout: start it again with the short one.
    await s.stopServer(300_000);
    await s.startServer(300_000);
    const kernel = await s.json<{ id: string }>(s.userPath('/api/kernels'), { method: 'POST', json: { name: 'python3' } });
    assert.equal(kernel.status, 201);
    const terminal = await s.json<{ name: string }>(s.userPath('/api/terminals'), { method: 'POST', json: {} });
    assert.equal(terminal.status, 200);
    // The tab's open connections to both.
    const ws = (path: string) => new Promise<WebSocket>((resolve, reject) => {
      const w = new WebSocket(`${hub.replace(/^http/, 'ws')}${s.userPath(path)}?token=${s.token}`);
      w.onopen = () => resolve(w);
      w.onerror = () => reject(new Error(`websocket ${path} failed`));
    });
    const sockets = [await ws(`/api/kernels/${kernel.body.id}/channels`), await ws(`/terminals/websocket/${terminal.body.name}`)];
    const started = Date.now();
    const seen: Record<string, number> = {};
    const mark = (what: string) => { seen[what] ??= Math.round((Date.now() - started) / 1000); };
    try {
      // What an open JupyterLab tab does every few seconds, until the server is gone.
      while (Date.now() - started < 6 * 60_000) {
        if (!(await hasServer())) { mark('server'); break; }
        const list = async (path: string) => (await s.json<unknown[]>(s.userPath(path)).catch(() => ({ status: 0, body: undefined }))).body;
        const kernels = await list('/api/kernels');
        const terminals = await list('/api/terminals');
        await list('/api/sessions');
        await list('/api/contents?content=1');
        if (Array.isArray(kernels) && kernels.length === 0) mark('kernel');
        if (Array.isArray(terminals) && terminals.length === 0) mark('terminal');
        await sleep(3000);
      }
    } finally {
      for (const w of sockets) w.close();
      await ssh(alice, `${sudo} sed -i 's/^idle_timeout = .*/idle_timeout = 60 * 60  # seconds; 0 means never/' ${conf}`);
    }
    console.log(`# idle culling with a 20 s timeout and a polling tab: kernel after ${seen.kernel} s, terminal after ${seen.terminal} s, server after ${seen.server} s`);
    assert.ok(seen.kernel !== undefined, 'the idle kernel with a connected tab was never shut down');
    assert.ok(seen.terminal !== undefined, 'the idle terminal was never closed');
    assert.ok(seen.server !== undefined, 'the server stayed up while only a tab polled it');
    assert.ok(seen.server >= 20, 'the server stopped before its timeout');
    const procs = await ssh(alice, 'pgrep -u bob -a -f jupyterhub-singleuser; echo end');
    assert.equal(procs.stdout.trim(), 'end', `bob's server still runs:\n${procs.stdout}`);
  });

  it('installs Debian\'s security updates on its own (unattended-upgrades: security and the backports kernel\'s updates; sources with -security and -backports)', async () => {
    const r = await ssh(alice, 'apt-config dump APT::Periodic; apt-config dump Unattended-Upgrade::Origins-Pattern; cat /etc/apt/sources.list.d/*.sources; grep -Ev \'^\\s*(#|$)\' /etc/apt/sources.list 2>/dev/null | sed \'s/^/sources.list: /\'; systemctl is-enabled apt-daily.timer apt-daily-upgrade.timer; dpkg-query -W -f \'${Status}\\n\' unattended-upgrades');
    assert.match(r.stdout, /^APT::Periodic::Update-Package-Lists "1";$/m);
    assert.match(r.stdout, /^APT::Periodic::Unattended-Upgrade "1";$/m);
    const origins = r.stdout.split('\n').filter((l) => l.startsWith('Unattended-Upgrade::Origins-Pattern'));
    assert.deepEqual(origins, [
      'Unattended-Upgrade::Origins-Pattern "";',
      'Unattended-Upgrade::Origins-Pattern:: "origin=Debian,codename=${distro_codename}-security,label=Debian-Security";',
      'Unattended-Upgrade::Origins-Pattern:: "origin=Debian Backports,codename=${distro_codename}-backports,label=Debian Backports";',
    ]);
    assert.match(r.stdout, /^URIs: http:\/\/security\.debian\.org\/debian-security\nSuites: trixie-security\nComponents: main non-free-firmware$/m);
    // The kernel comes from backports: its updates must reach the card too.
    assert.match(r.stdout, /^Suites: trixie trixie-updates trixie-backports$/m);
    // No source but pihub's: /etc/apt/sources.list has no entry. (The image has no such file;
    // unattended-upgrades' first run makes an empty one: python-apt's Cache(rootdir='/') does.)
    assert.doesNotMatch(r.stdout, /^sources\.list: /m);
    assert.match(r.stdout, /^enabled\nenabled\ninstall ok installed$/m);
  });

  it('refuses a wrong password and system accounts', async () => {
    const wrong = await new HubSession(hub, 'alice').login('not-the-password');
    assert.equal(wrong.status, 200);
    assert.match(wrong.body, /Invalid username or password/i);
    const root = await new HubSession(hub, 'root').login('anything');
    assert.equal(root.status, 200);
  });

  it('ran on the byte code made at build time: no .pyc was rewritten after boot', async () => {
    const r = await ssh(alice, 'find /usr/lib/python3 /usr/lib/python3.13 -name "*.pyc" -newermt "$(uptime -s)" | head -n 5; echo done');
    assert.equal(r.stdout.trim(), 'done', `Python rewrote byte code at run time:\n${r.stdout}`);
  });

  // After the byte-code check: the upgrade makes the hub's byte code again, on the card.
  it('keeps the hub running through an upgrade of its package (dpkg -i of the jupyterhub .deb)', async () => {
    const debs = join(CACHE_DIR, 'debs', 'trixie-arm64');
    const deb = readdirSync(debs).find((f) => /^jupyterhub_.*\.deb$/.test(f));
    assert.ok(deb, `no jupyterhub .deb in ${debs} (the build downloads it there)`);
    await scpTo(alice, join(debs, deb), '/tmp/jupyterhub.deb');
    const sudo = "echo 'alice-secret-1' | sudo -S -p ''";
    const r = await ssh(alice, `systemctl show -p MainPID --value jupyterhub; ${sudo} dpkg -i /tmp/jupyterhub.deb >/tmp/dpkg.log 2>&1; echo "dpkg $?"; systemctl show -p MainPID --value jupyterhub; systemctl is-active jupyterhub; rm /tmp/jupyterhub.deb`, 30 * 60_000);
    const [before, status, after, active] = r.stdout.trim().split('\n');
    assert.equal(status, 'dpkg 0', (await ssh(alice, 'cat /tmp/dpkg.log')).stdout);
    assert.equal(active, 'active');
    assert.notEqual(after, before, 'the package upgrade restarted the hub');
    // Byte code was removed and made again by the upgrade: the first start is slower.
    await waitForHub(hub, 600_000);
    assert.equal((await new HubSession(hub, 'alice').login('alice-secret-1')).status, 302, 'logins work after the upgrade');
    // The upgrade put Debian's files back; the hub's start put pihub's fixes back before it ran.
    await assertNoOpenRedirect(hub, 'alice', 'alice-secret-1');
    const fixes = await ssh(alice, '/usr/local/lib/pihub/security-fixes status');
    assert.doesNotMatch(fixes.stdout, /: (missing|does not fit)/, fixes.stdout);
    const failed = await ssh(alice, 'systemctl --failed --no-legend --plain');
    assert.equal(failed.stdout.trim(), '');
  });

  // The second boot of a card is imager.test.ts's (one reboot checks both customisations).

  // Last, as it ends this card's life: the backup is restored on a fresh copy of the image, as
  // on a newly flashed card, with the drive plugged in and the secret on its boot partition.
  it('backs up to a USB drive and a NAS over SFTP, encrypted; a newly flashed card with the drive and the secret gets back the accounts, passwords, groups, homes and SSH host keys; a second restore, from the NAS, keeps newer files', async () => {
    const sudo = "echo 'alice-secret-1' | sudo -S -p ''";
    const notebook = '{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5, "marker": "alice-diary-7"}';
    // What a household would miss: alice's notebook and new password, bob's notes, and dora,
    // an account made on the card (not in the build config), who is a hub admin.
    const prepare = [
      `printf '%s' '${notebook}' > ~/diary.ipynb`,
      `${sudo} sh -c "echo bob-notes-8 > /home/bob/notes.txt && chown bob:bob /home/bob/notes.txt"`,
      `${sudo} sh -c "adduser --disabled-password --comment '' dora >/dev/null && echo dora:dora-secret-5 | chpasswd && adduser dora jupyter_admin >/dev/null"`,
      `${sudo} sh -c "echo alice:alice-new-4 | chpasswd"`,
    ].join(' && ');
    assert.equal((await ssh(alice, prepare)).code, 0);
    const before = await ssh(alice, 'pihub-backup status; systemctl show -p TimersCalendar --value pihub-backup.timer');
    assert.match(before.stdout, new RegExp(`^Backups: not set up \\(plug in a drive labelled ${DRIVE_LABEL} or have the NAS sftp://nobody@10\\.0\\.2\\.100/\\S+ ready,`, 'm'));
    assert.match(before.stdout, /OnCalendar=\*-\*-\* 04:30:00/, 'the timer runs at backup.time');
    assert.doesNotMatch(before.stdout, /03:00:00/, 'the timer also runs at the default time');
    // The first setup: the drive's backup is made and the secret shown; the NAS does not know
    // the card's key yet, which setup shows, to add to the NAS.
    const sudoNew = "echo alice-new-4 | sudo -S -p ''";
    const setup = await ssh(alice, `${sudoNew} pihub-backup setup`, 600_000);
    assert.equal(setup.code, 1, `setup succeeded although the NAS refused its key:\n${setup.stdout}${setup.stderr}`);
    assert.match(setup.stderr, /the NAS sftp:\/\/nobody@10\.0\.2\.100\/\S+ refused this card's key/);
    const secret = /^ {4}([a-z2-9]{4}(?:-[a-z2-9]{4}){5})$/m.exec(setup.stdout)?.[1];
    assert.ok(secret, `setup showed no secret:\n${setup.stdout}`);
    const first = /^pihub-backup: backed up to the drive FAMILY-USB \(\S+\): snapshot ([0-9a-f]{8})$/m.exec(setup.stdout)?.[1];
    assert.ok(first, `the drive's backup was not made:\n${setup.stdout}`);
    const shownKey = /^ {4}(ssh-ed25519 \S+ pihub-backup)$/m.exec(setup.stdout)?.[1];
    const key = await ssh(alice, `${sudoNew} pihub-backup key`);
    assert.equal(key.stdout.trim(), shownKey, 'setup and `pihub-backup key` show one key');
    nas.authorize(key.stdout);
    // Set up again, with the key on the NAS: the drive's backup is kept, the NAS gets its own.
    const again = await ssh(alice, `${sudoNew} pihub-backup setup`, 600_000);
    assert.equal(again.code, 0, again.stderr + again.stdout);
    assert.match(again.stdout, /this card backs up to the backup already on the drive FAMILY-USB/);
    assert.match(again.stdout, /a new backup on the NAS sftp:/);
    assert.match(again.stdout, /^pihub-backup: backed up to the NAS \S+: snapshot [0-9a-f]{8}$/m);
    assert.doesNotMatch(again.stdout, /[a-z2-9]{4}(?:-[a-z2-9]{4}){5}/, 'the secret is shown a second time');
    // The nightly run, as its timer starts it (in its sandbox): a new snapshot on each.
    const nightly = await ssh(alice, `${sudoNew} systemctl start pihub-backup.service; systemctl show -p Result --value pihub-backup.service`, 600_000);
    assert.equal(nightly.stdout.trim(), 'success', nightly.stderr);
    const status = await ssh(alice, 'pihub-backup status; /etc/update-motd.d/60-pihub-backup');
    assert.match(status.stdout, /^Backups: last good backup .* \(snapshot [0-9a-f]{8}, \d+ people, drive FAMILY-USB\)$/m);
    assert.match(status.stdout, /^Backups: last good backup .* \(snapshot [0-9a-f]{8}, \d+ people, NAS sftp:\/\/nobody@10\.0\.2\.100\/\S+\)$/m);
    assert.doesNotMatch(status.stdout, /FAILED/);
    assert.ok(!status.stdout.includes(first), `the nightly run made no new snapshot: ${status.stdout}`);
    assert.match(nas.log(), /Accepted publickey for nobody/);
    // In the hub: the status on an admin's home page, not on anyone else's.
    const admin = new HubSession(hub, 'alice');
    assert.equal((await admin.login('alice-new-4')).status, 302);
    const text = (body: string) => body.replace(/<(script|style)[^>]*>[\s\S]*?<\/\1>/g, ' ').replace(/<[^>]+>/g, '\n').replace(/[ \t]+/g, ' ');
    const home = text((await admin.page('/hub/home')).body);
    assert.match(home, /Backups: last good backup [^\n]* \(snapshot [0-9a-f]{8}, \d+ people, drive FAMILY-USB\)/, `an admin's home page: ${home.slice(0, 1500)}`);
    assert.match(home, /Backups: last good backup [^\n]* people, NAS sftp:/);
    const person = new HubSession(hub, 'bob');
    assert.equal((await person.login(PEOPLE[1]!.password)).status, 302);
    assert.doesNotMatch(text((await person.page('/hub/home')).body), /Backups:/, 'a person who is not an admin sees the backups\' status');
    assert.ok(!status.stdout.includes(secret) && !status.stdout.includes(secret.replaceAll('-', '')), 'the status shows the secret');
    // The card's public host keys (type and key), read on the card: ssh-keyscan on a loaded
    // 1 GiB guest sometimes misses a key type, so it only checks the new card's from outside.
    const publicKeys = async (t: SshTarget) => (await ssh(t, 'cat /etc/ssh/ssh_host_*_key.pub')).stdout.split('\n').filter(Boolean).map((l) => l.split(' ').slice(0, 2).join(' ')).sort();
    const keys = await publicKeys(alice);
    assert.equal(keys.length, 3, `the card's host keys: ${keys.join(', ')}`);
    assert.equal(await vm.stop(), 0, 'pihub boot shuts the guest down cleanly');
    vmStopped = true;
    // Finding the drive or the NAS's folder is not enough: neither the secret nor anyone's data
    // is readable on them.
    const onNas = readdirSync(nas.folder, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
    assert.ok(onNas.some((f) => f.endsWith('/kitchen-pi/config')), `no restic repository on the NAS: ${onNas.join(', ')}`);
    for (const [where, bytes] of [['the drive', readFileSync(drive)], ...onNas.map((f) => [f, readFileSync(f)] as const)] as const) {
      for (const text of [secret, secret.replaceAll('-', ''), 'bob-notes-8', 'alice-diary-7']) {
        assert.equal(bytes.indexOf(text), -1, `${text} is readable on ${where}`);
      }
    }

    const secretFile = join(dir, 'pihub-backup.txt');
    writeFileSync(secretFile, `${secret.toUpperCase()}\r\n`);
    const fresh = await bootVm(out.image, [22, 8888], {
      serialLog: join(dir, 'restore.log'),
      workDir: join(E2E_ROOT, 'boot'),
      extraArgs: ['--usb-drive', drive, '--boot-file', `${secretFile}:pihub-backup.txt`, '--offline', '--lan-service', nas.lanService],
    });
    try {
      const hub2 = `http://127.0.0.1:${fresh.ports[8888]}`;
      await fresh.waitForConsole(/pihub-backup: restored \d+ people from the snapshot [0-9a-f]{8}/, BOOT_TIMEOUT);
      assert.match(fresh.console(), /pihub-backup: dora: account made \(old password, groups\)/);
      await waitForHub(hub2, BOOT_TIMEOUT);
      const alice2 = { ...alice, port: fresh.ports[22]! };
      await waitForSsh(alice2, 300_000);
      assert.deepEqual(await publicKeys(alice2), keys, 'the SSH host keys are the old card\'s');
      const served = await hostKeys(fresh.ports[22]!);
      assert.ok(served.length > 0 && served.every((k) => keys.includes(k)), `the SSH server offers keys of its own: ${served.join(', ')}`);
      assert.equal((await new HubSession(hub2, 'alice').login('alice-secret-1')).status, 200, 'the new card\'s password from the build config was not replaced by the old card\'s');
      const a = new HubSession(hub2, 'alice');
      assert.equal((await a.login('alice-new-4')).status, 302, 'alice logs in with her password from the old card');
      const d = new HubSession(hub2, 'dora');
      assert.equal((await d.login('dora-secret-5')).status, 302, 'dora, made on the old card, logs in');
      assert.equal((await d.page('/hub/admin')).status, 200, 'dora is a hub admin again');
      const sudo2 = "echo alice-new-4 | sudo -S -p ''";
      const files = await ssh(alice2, `cat ~/diary.ipynb; echo; ${sudo2} cat /home/bob/notes.txt; ${sudo2} stat -c '%U' /home/bob/notes.txt; ls /boot/firmware/pihub-backup.txt 2>&1; echo "FAILED: $(systemctl --failed --no-legend --plain)"; pihub-backup status`);
      assert.equal(files.stdout.split('\n')[0], notebook);
      assert.match(files.stdout, /^bob-notes-8\nbob\n/m);
      assert.match(files.stdout, /cannot access '\/boot\/firmware\/pihub-backup\.txt': No such file/, 'the secret left the boot partition');
      assert.match(files.stdout, /^FAILED: $/m, 'a unit failed on the restored card');
      assert.match(files.stdout, /^Backups: restored .* from the snapshot [0-9a-f]{8} of kitchen-pi/m);
      // A second restore, from the NAS (on a home network without internet), with the key the
      // new card made from the secret: it keeps the newer file and brings back what is missing.
      const second = await ssh(alice2, `printf '%s' newer-work > ~/diary.ipynb && ${sudo2} rm /home/bob/notes.txt && ${sudo2} pihub-backup restore --from nas && cat ~/diary.ipynb; echo; ${sudo2} cat /home/bob/notes.txt`, 600_000);
      assert.equal(second.code, 0, second.stderr + second.stdout);
      assert.match(second.stdout, /restoring the snapshot [0-9a-f]{8} of kitchen-pi, .* \(a card in use: only what it lacks\)/);
      assert.match(second.stdout, /^newer-work\nbob-notes-8$/m, 'the restore went back in time over alice\'s newer file, or did not bring back bob\'s');
      assert.match((await ssh(alice2, 'pihub-backup status')).stdout, /^Backups: restored .* from the snapshot [0-9a-f]{8} of kitchen-pi/m);
    } finally {
      assert.equal(await fresh.stop(), 0, 'pihub boot shuts the restored guest down cleanly');
    }
  });
});

describe('the default image (no users) with userconf.txt', { timeout: 45 * 60_000 }, () => {
  const dir = join(E2E_ROOT, 'e2e-default');
  let out: ReturnType<typeof imageFiles>;

  before(async () => {
    mkdirSync(dir, { recursive: true });
    const build = await buildImage('e2e-default', 'name: e2e-default\nimage:\n  compression: none\n');
    console.log(`# build e2e-default: ${Math.round(build.durationMs / 1000)} s`);
    assert.match(build.stdout, /this image has no user accounts/);
    out = imageFiles(build.outDir);
  });

  // One boot of the default image checks it all (the banner of a card without any account is
  // test/integration/card-banner.test.ts's): SSH is off, userconf.txt makes accounts offline.
  it('offline, makes the userconf.txt accounts of a Windows file (BOM, CRLF), refuses a system account and a bad line without showing it, keeps SSH off (port 22 closed), leaves no failed unit', async () => {
    const hash = execFileSync('openssl', ['passwd', '-6', '-stdin'], { input: 'carol-pass-3\n' }).toString().trim();
    const daemonHash = execFileSync('openssl', ['passwd', '-6', '-stdin'], { input: 'daemon-pass-9\n' }).toString().trim();
    const userconf = join(dir, 'userconf.txt');
    writeFileSync(userconf, `\ufeffcarol:${hash}\r\ndaemon:${daemonHash}\r\ncarol my-typed-secret-8\r\n`);
    const before = statSync(out.image).mtimeMs;
    // `pihub boot --userconf` puts the file on this boot's copy of the card, as a person would
    // on the SD card; --offline: a home network whose internet is down.
    const vm = await bootVm(out.image, [8888, 22], { serialLog: join(dir, 'userconf.log'), workDir: join(E2E_ROOT, 'boot'), extraArgs: ['--userconf', userconf, '--offline'] });
    const sudo = "echo carol-pass-3 | sudo -S -p ''";
    try {
      await vm.waitForConsole(/login: $/m, BOOT_TIMEOUT);
      const banner = vm.console();
      // A card without Raspberry Pi Imager's files: pihub's gate switches cloud-init off at once.
      assert.match(banner, /pihub-imager: no Raspberry Pi Imager customisation on this card; cloud-init stays off/);
      assert.doesNotMatch(banner, /Cloud-init v\. \S+ running/);
      assert.match(banner, /userconf\.txt line 2 was skipped: `daemon` is a system account \(uid 1\)/);
      assert.match(banner, /userconf\.txt line 3 was skipped: not NAME:HASH/);
      assert.ok(!banner.includes('my-typed-secret-8') && !banner.includes(daemonHash), 'the console shows a refused line');
      vm.type('carol\n');
      await vm.waitForConsole(/Password: ?$/m, 60_000);
      vm.type('carol-pass-3\n');
      await vm.waitForConsole(/carol@pihub:~\$ $/m, 120_000);
      // Markers are computed ($((6*7))), so they show in the output, not in the echoed command.
      vm.type(`echo "groups: $(id -Gn)"; ls /boot/firmware/userconf.txt 2>&1; ${sudo} passwd --status daemon; echo "SECRET-$((6*7)) $(${sudo} journalctl -b -u pihub-userconf --no-pager | grep -c my-typed-secret)"; echo "STATE-$((6*7)) $(systemctl is-system-running --wait)"\n`);
      await vm.waitForConsole(/^STATE-42 /m, 240_000);
      // What cloud-init costs a plain card's first boot: ds-identify (its generator) and pihub's gate, from their own timestamps.
      vm.type([
        'cloud-init status', 'cat /etc/cloud/cloud-init.disabled', 'systemctl is-active cloud-init-main.service',
        "grep -h -o '^\\[up [0-9.]*s\\]' /run/cloud-init/ds-identify.log | tr '\\n' ' '; echo",
        'systemctl show -p ExecMainStartTimestampMonotonic -p ExecMainExitTimestampMonotonic pihub-imager-gate.service | tr "\\n" " "; echo',
        'echo "CLOUD-$((6*7))"',
      ].join('; ') + '\n');
      await vm.waitForConsole(/^CLOUD-42/m, 120_000);
      // apt's daily jobs, as their timers start them some time each day, without internet.
      vm.type(`${sudo} systemctl start apt-daily.service apt-daily-upgrade.service; echo "APT-$((6*7)) $(systemctl is-failed apt-daily.service apt-daily-upgrade.service)"; echo "FAILED-$((6*7))"; systemctl --failed --no-legend --plain; echo "END-$((6*7))"\n`);
      await vm.waitForConsole(/^END-42/m, 10 * 60_000);
      const text = vm.console().slice(banner.length);
      assert.match(text, /groups: carol .*\bsudo\b/);
      assert.match(text, /\bjupyter_admin\b/);
      assert.match(text, /cannot access '\/boot\/firmware\/userconf\.txt': No such file/);
      assert.match(text, /^daemon L /m, 'the system account keeps its locked password');
      assert.match(text, /^SECRET-42 0\r?$/m, 'the journal holds the refused line');
      assert.match(text, /^STATE-42 running\r?$/m, `not running:\n${text.slice(-3000)}`);
      assert.match(text, /^status: disabled/m);
      assert.match(text, /no Raspberry Pi Imager customisation on this card at its first boot/);
      assert.match(text, /^inactive\r?$/m);
      const up = /\[up ([\d.]+)s\] \[up ([\d.]+)s\]/.exec(text);
      const gate = /ExecMainStartTimestampMonotonic=(\d+) ExecMainExitTimestampMonotonic=(\d+)/.exec(text);
      assert.ok(up && gate, 'ds-identify and the gate left their timestamps');
      console.log(`# first boot, plain card: ds-identify took ${(Number(up[2]) - Number(up[1])).toFixed(2)} s, pihub-imager-gate ${((Number(gate[2]) - Number(gate[1])) / 1e6).toFixed(2)} s`);
      assert.match(text, /^APT-42 inactive\r?\ninactive\r?$/m);
      const failed = /^FAILED-42\r?\n([\s\S]*?)^END-42/m.exec(text)?.[1];
      assert.equal(failed?.trim(), '', `failed units offline:\n${failed}`);
      const hub = `http://127.0.0.1:${vm.ports[8888]}`;
      await waitForHub(hub, 180_000);
      assert.equal((await new HubSession(hub, 'carol').login('carol-pass-3')).status, 302, 'carol logs in to the hub');
      assert.match(banner, /JupyterHub at http:\/\/.*:8888\//);
      // The forward works (the hub answers through it); on 22 nothing greets: no SSH server,
      // although Debian's presets would have enabled it at this first boot.
      assert.equal(await greeting(vm.ports[22]!), '', 'something answered on port 22');
    } finally {
      await vm.stop();
    }
    assert.equal(statSync(out.image).mtimeMs, before, 'pihub boot never writes to the image itself');
  });
});
