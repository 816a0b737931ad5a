// npm run bench [-- SECTION...] — speed and size figures for the default JupyterHub image on
// this machine. Sections (default: all, in this order):
//
//   baseline     one mmdebstrap call installing every package of every stage under qemu-user,
//                as pi-gen-style tools do (a root filesystem only: no image is made)
//   build        pihub cold (empty stage cache), warm (nothing changed), after changing
//                hub.port; the export alone; raw, data (block map) and compressed sizes
//   fresh        pihub cold as on a fresh machine: an empty cache folder, so every package is
//                downloaded from Debian's archive and the native tools root is made (the host's
//                own tools, ci/setup-host.sh, are not part of it)
//   compression  each compressor on the cold build's raw image: time, CPU time, size
//   boot         an image with two users (the e2e-users config) in QEMU -M virt, 2 CPUs, 1 GiB:
//                first and second boot to a hub that answers, memory of hub, servers, kernels
//   imager       the default image customised as Raspberry Pi Imager does it: first boot to the hub
//   raspi3b      the default image in QEMU's Raspberry Pi 3 B model: login prompt, a hub that answers
//   raspi4b      the same in QEMU's Raspberry Pi 4 B model
//
// Builds use the default config (so the default compression); all start with the same
// downloaded packages (copied from /var/cache/pihub/debs when there), so the figures compare
// building, not the network. Needs root and ci/setup-host.sh. Everything goes to
// $PIHUB_BENCH_DIR (/var/tmp/pihub-bench); the summary also to its bench.md.
import { execFileSync, spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { PROJECT_DIR } from '../build/plan/inputs.ts';
import { DEFAULTS } from '../build/config/schema.ts';
import { loadStages } from '../build/stages/load.ts';
import { readBinfmt } from '../build/chroot/chroot.ts';
import { Cache } from '../build/cache/cache.ts';
import { formatDuration } from '../build/core/progress.ts';
import { bootVm, ssh, waitForSsh } from './harness/vm.ts';
import { PI_BOARD_MODELS, type PiBoardMachine } from '../build/boot/qemu.ts';
import { HubSession } from './harness/hub.ts';
import { writeImagerCard, yescrypt } from './harness/imager.ts';
import { analyzeBoot, capacity, firstBootToHub, hubAnswers, memoryLines, memorySnapshot, secondBootToHub } from './harness/measure.ts';

const ROOT = process.env.PIHUB_BENCH_DIR ?? '/var/tmp/pihub-bench';
const SHARED_DEBS = '/var/cache/pihub/debs';
const MIRROR = 'http://deb.debian.org/debian';
const SECTIONS = ['baseline', 'build', 'fresh', 'compression', 'boot', 'imager', 'raspi3b', 'raspi4b'] as const;
/** The default image's hub port: the bench builds the default config. */
const HUB_PORT = DEFAULTS.hub.port;
type Section = (typeof SECTIONS)[number];

const summary: string[] = [];
function report(line = ''): void {
  console.log(line);
  summary.push(line);
}

const GB = (bytes: number) => `${(bytes / 1e9).toFixed(2)} GB`;
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

function run(program: string, args: string[], log: string): Promise<number> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(program, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => out.push(d));
    child.on('error', reject);
    child.on('exit', (code) => {
      const text = Buffer.concat(out).toString();
      writeFileSync(log, text);
      if (code !== 0) {
        process.stderr.write(text.slice(-3000));
        reject(new Error(`${program} exited with ${code}; see ${log}`));
      } else {
        resolve(Date.now() - started);
      }
    });
  });
}

/** Wall and CPU seconds of a shell command (bash's `times` reports its children's CPU). */
function timed(command: string): { wall: number; cpu: number } {
  const started = Date.now();
  const out = execFileSync('bash', ['-c', `${command}\ntimes`], { stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 20 }).toString();
  const t = [...out.matchAll(/(\d+)m([\d.]+)s/g)].map((m) => Number(m[1]) * 60 + Number(m[2]));
  // `times` prints the shell's user and system time, then its children's.
  return { wall: (Date.now() - started) / 1000, cpu: (t[2] ?? 0) + (t[3] ?? 0) };
}

/** Every package the stages install, for the one-call baseline. */
function allPackages(): string[] {
  const pkgs: string[] = [];
  for (const stage of loadStages(join(PROJECT_DIR, 'stages'))) {
    for (const sub of stage.substeps) pkgs.push(...(sub.packages ?? []));
  }
  return [...new Set(pkgs)];
}

/** An empty cache folder, made as pihub makes one (its marker), so that pihub takes it. */
function emptyCache(name: string): string {
  const dir = join(ROOT, name);
  rmSync(dir, { recursive: true, force: true });
  new Cache(dir).ensure();
  return dir;
}

/** A cache folder with the downloaded packages copied in. */
function freshCache(name: string): string {
  const dir = emptyCache(name);
  mkdirSync(join(dir, 'debs'), { recursive: true });
  if (existsSync(SHARED_DEBS)) cpSync(SHARED_DEBS, join(dir, 'debs'), { recursive: true });
  rmSync(join(dir, 'debs', 'trixie-arm64', 'lock'), { force: true });
  return dir;
}

async function baseline(): Promise<number> {
  const cache = freshCache('cache-baseline');
  const target = join(ROOT, 'baseline-rootfs');
  rmSync(target, { recursive: true, force: true });
  const debs = join(cache, 'debs', 'trixie-arm64');
  mkdirSync(debs, { recursive: true });
  const args = [
    '--mount', '--pid', '--fork', '--kill-child', '--',
    'mmdebstrap', '--mode=root', '--variant=minbase', '--architectures=arm64', '--components=main,non-free-firmware',
    `--include=${allPackages().join(',')}`,
    `--setup-hook=mkdir -p "$1/var/cache/apt/archives" && mount --bind ${debs} "$1/var/cache/apt/archives"`,
    '--customize-hook=umount "$1/var/cache/apt/archives"',
    // The base's sources: trixie, and trixie-backports for the kernel (the stages name it so).
    'trixie', target, `deb ${MIRROR} trixie main non-free-firmware`, `deb ${MIRROR} trixie-backports main non-free-firmware`,
  ];
  const ms = await run('unshare', args, join(ROOT, 'baseline.log'));
  rmSync(target, { recursive: true, force: true });
  rmSync(cache, { recursive: true, force: true });
  return ms;
}

const CACHE = join(ROOT, 'cache-pihub');

function pihub(extra: string[], log: string, out = join(ROOT, 'deploy'), cache = CACHE, work = join(ROOT, 'work')): Promise<number> {
  return run(process.execPath, [
    join(PROJECT_DIR, 'build/bin/pihub.js'), 'build', '--cache-dir', cache, '--work-dir', work, '--out', out, ...extra,
  ], log);
}

/** Step times from a build's own log: the time from each step's start to the next. */
function profile(buildLog: string): { lines: string[]; exportMs: number } {
  const text = readFileSync(buildLog, 'utf8');
  const marks = [...text.matchAll(/^\[([0-9T:.\-Z]+)\] (stage \S+|export)[: ](.*)$/gm)].map((m) => ({ t: Date.parse(m[1]!), what: m[2]!, detail: m[3]! }));
  const end = [...text.matchAll(/^\[([0-9T:.\-Z]+)\] finished/gm)].map((m) => Date.parse(m[1]!)).pop() ?? Date.now();
  const totals = new Map<string, number>();
  let exportMs = 0;
  marks.forEach((m, i) => {
    const next = marks[i + 1]?.t ?? end;
    // "stage 10-system: 02-packages-nr: install 30 packages" → "stage 10-system 02-packages-nr";
    // "export: root.ext4: 2400 MiB (mke2fs -d)" → "export root.ext4"
    const key = `${m.what} ${m.detail.trim().split(/: | \(/)[0]}`;
    totals.set(key, (totals.get(key) ?? 0) + (next - m.t));
    if (m.what === 'export') exportMs += next - m.t;
  });
  const steps = [...totals].map(([k, ms]) => `  ${formatDuration(ms).padStart(6)}  ${k}`);
  // Inside each package installation: what dpkg spent its time on (the packages step notes it).
  const inside = [...text.matchAll(/^\[[^\]]+\] profile (.*)$/gm)].map((m) => `    ${m[1]}`);
  return { lines: [...steps, ...(inside.length ? ['  inside the package installations:', ...inside] : [])], exportMs };
}

interface Outputs {
  manifest: { image: string; file: string; size: number; data_bytes: number; compression: string };
  dir: string;
}

function outputs(dir: string): Outputs {
  const json = readdirSync(dir).find((f) => f.endsWith('.json'));
  if (!json) throw new Error(`no manifest in ${dir}`);
  return { manifest: JSON.parse(readFileSync(join(dir, json), 'utf8')) as Outputs['manifest'], dir };
}

async function buildSection(base: number): Promise<Outputs> {
  rmSync(CACHE, { recursive: true, force: true });
  freshCache('cache-pihub');
  rmSync(join(ROOT, 'work'), { recursive: true, force: true });
  rmSync(join(ROOT, 'deploy'), { recursive: true, force: true });
  console.log('pihub cold (empty stage cache) …');
  const cold = await pihub([], join(ROOT, 'cold.log'));
  const coldProfile = profile(join(ROOT, 'deploy', 'pihub.log'));
  const out = outputs(join(ROOT, 'deploy'));
  const warm = await pihub([], join(ROOT, 'warm.log'));
  console.log('pihub after changing hub.port …');
  const port = await pihub(['--set', 'hub.port=8000'], join(ROOT, 'port.log'), join(ROOT, 'deploy-port'));
  const portProfile = profile(join(ROOT, 'deploy-port', 'pihub.log'));
  // Another config in the same work tree (the proxy from npm: stage 22 on differs), then a
  // hub.port change of the default config: its work tree last held the other config.
  console.log('pihub with another config (hub.proxy: npm), then the default config with another hub.port …');
  const other = await pihub(['--set', 'hub.proxy=npm'], join(ROOT, 'other.log'), join(ROOT, 'deploy-other'));
  const back = await pihub(['--set', 'hub.port=8001'], join(ROOT, 'back.log'), join(ROOT, 'deploy-back'));
  const backProfile = profile(join(ROOT, 'deploy-back', 'pihub.log'));
  const m = out.manifest;
  report(`## Build (default config: ${m.compression} compression)\n`);
  report('| run | time |\n|---|---|');
  report(`| baseline: one mmdebstrap call, every package, no image | ${Number.isNaN(base) ? 'not run' : formatDuration(base)} |`);
  report(`| pihub cold: empty stage cache, image included | ${formatDuration(cold)} |`);
  report(`| pihub warm: nothing changed | ${formatDuration(warm)} |`);
  report(`| pihub after changing hub.port | ${formatDuration(port)} |`);
  report(`| pihub with another config in the same work tree (hub.proxy: npm, stages 22 on) | ${formatDuration(other)} |`);
  report(`| pihub after changing hub.port, the work tree last held that other config | ${formatDuration(back)} |`);
  report(`| export alone (in the cold build) | ${formatDuration(coldProfile.exportMs)} |`);
  if (!Number.isNaN(base)) report(`\nbaseline / cold = ${(base / cold).toFixed(2)}`);
  report(`\nsizes: raw image ${GB(m.size)}, data in it (block map) ${GB(m.data_bytes)}, ${m.file} ${GB(statSync(join(out.dir, m.file)).size)}`);
  report('\ncold build, time per step:');
  report(coldProfile.lines.join('\n'));
  report('\nhub.port rebuild, time per step:');
  report(portProfile.lines.join('\n'));
  report('\nhub.port rebuild after the other config, time per step:');
  report(backProfile.lines.join('\n'));
  const restored = (log: string) => [...readFileSync(log, 'utf8').matchAll(/(restoring \d+ of \d+ entries|\d+ of \d+ entries changed: restoring in full)/g)].map((m) => m[1]).join('; ');
  report(`\nwhat the two hub.port rebuilds restored: ${restored(join(ROOT, 'deploy-port', 'pihub.log')) || 'a full restore'}; after the other config: ${restored(join(ROOT, 'deploy-back', 'pihub.log')) || 'a full restore'}`);
  report();
  return out;
}

/** A cold build with nothing downloaded: every package comes from Debian's archive, as on a fresh machine. */
async function freshSection(): Promise<void> {
  const cache = emptyCache('cache-fresh');
  const work = join(ROOT, 'work-fresh');
  const out = join(ROOT, 'deploy-fresh');
  for (const dir of [work, out]) rmSync(dir, { recursive: true, force: true });
  console.log('pihub cold with an empty cache folder (every package downloaded) …');
  try {
    const ms = await pihub([], join(ROOT, 'fresh.log'), out, cache, work);
    const steps = profile(join(out, 'pihub.log'));
    const debs = join(cache, 'debs');
    const downloaded = execFileSync('du', ['-sb', debs]).toString().split('\t')[0];
    report('## Fresh machine: cold build with downloads (empty cache folder, default config)\n');
    report(`pihub cold, every package downloaded from ${MIRROR}: ${formatDuration(ms)} (${GB(Number(downloaded))} of packages downloaded)`);
    report('\ntime per step:');
    report(steps.lines.join('\n'));
    report();
  } finally {
    for (const dir of [cache, work, out]) rmSync(dir, { recursive: true, force: true });
  }
}

/** Each compressor on the same raw image (decompressed from the cold build's output, holes kept). */
function compressionSection(out: Outputs): void {
  const m = out.manifest;
  const raw = join(ROOT, 'raw.img');
  const src = join(out.dir, m.file);
  const decompress: Record<string, string> = { zstd: `zstd -d -q -f --sparse -o ${raw} ${src}`, xz: `xz -dc -T0 ${src} | cp --sparse=always /dev/stdin ${raw}`, gzip: `gzip -dc ${src} | cp --sparse=always /dev/stdin ${raw}`, none: `cp --sparse=always ${src} ${raw}` };
  execFileSync('bash', ['-c', decompress[m.compression]!]);
  const threads = cpus().length;
  report(`## Compression of the raw image (${GB(statSync(raw).size)}, ${GB(m.data_bytes)} of data, ${threads} cores)\n`);
  report('| command | wall | CPU | size | of raw |\n|---|---|---|---|---|');
  const candidates = [
    'zstd -T0 -1', 'zstd -T0 -3', 'zstd -T0 -9', 'zstd -T0 -19 --long=27',
    'xz -T0 -6', 'xz -T0 -9', 'gzip -6',
  ];
  for (const c of candidates) {
    const t = timed(`${c} -c < ${raw} > ${raw}.out`);
    const size = statSync(`${raw}.out`).size;
    report(`| \`${c}\` | ${t.wall.toFixed(1)} s | ${t.cpu.toFixed(1)} s | ${GB(size)} | ${((100 * size) / statSync(raw).size).toFixed(1)} % |`);
    rmSync(`${raw}.out`, { force: true });
  }
  const bmap = timed(`bmaptool -q create -o ${raw}.bmap ${raw}`);
  report(`| \`bmaptool create\` (block map, checksums of the data) | ${bmap.wall.toFixed(1)} s | ${bmap.cpu.toFixed(1)} s | ${statSync(`${raw}.bmap`).size} B | |`);
  rmSync(`${raw}.bmap`, { force: true });
  rmSync(raw, { force: true });
  report();
}

const PEOPLE = [
  { name: 'alice', password: 'alice-secret-1' },
  { name: 'bob', password: 'bob-secret-2' },
];

/** The bench's SSH key in dir (made once): the guests' accounts get its public half. */
function benchKey(dir: string): string {
  const key = join(dir, 'id_ed25519');
  if (!existsSync(key)) execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'pihub-bench', '-f', key]);
  return key;
}

async function bootSection(): Promise<void> {
  const dir = join(ROOT, 'boot');
  mkdirSync(dir, { recursive: true });
  const key = benchKey(dir);
  const pub = execFileSync('ssh-keygen', ['-y', '-f', key]).toString().trim();
  const config = join(dir, 'users.yaml');
  writeFileSync(config, `name: bench-users\nusers:\n  - name: alice\n    password: "alice-secret-1"\n    admin: true\n    ssh_authorized_keys:\n      - ${pub}\n  - name: bob\n    password: "bob-secret-2"\nssh:\n  enabled: true\n`);
  console.log('boot: building the image with two users …');
  const deploy = join(dir, 'deploy');
  await pihub(['--config', config], join(dir, 'build.log'), deploy);
  const out = outputs(deploy);
  const vm = await bootVm(join(deploy, out.manifest.file), [22, HUB_PORT], {
    serialLog: join(dir, 'console.log'), workDir: join(ROOT, 'boot-work'), extraArgs: ['--memory', '1024', '--cpus', '2'],
  });
  try {
    const alice = { port: vm.ports[22]!, key, user: 'alice' };
    const hub = `http://127.0.0.1:${vm.ports[HUB_PORT]}`;
    const first = await firstBootToHub(vm, hub, 10 * 60_000);
    await waitForSsh(alice, 5 * 60_000);
    writeFileSync(join(dir, 'boot-first.txt'), await analyzeBoot(alice));
    const idle = await memorySnapshot(alice, PEOPLE[0]!.password);
    for (const p of PEOPLE) {
      const s = new HubSession(hub, p.name);
      if ((await s.login(p.password)).status !== 302) throw new Error(`${p.name} could not log in`);
      await s.createToken(p.password);
      await s.startServer(300_000);
      await s.startKernel('import numpy\na = numpy.random.default_rng(1).random((256, 256))\nprint(numpy.linalg.det(a @ a.T) > 0)');
    }
    const busy = await memorySnapshot(alice, PEOPLE[0]!.password);
    const second = await secondBootToHub(vm, alice, PEOPLE[0]!.password, hub, 10 * 60_000);
    await waitForSsh(alice, 5 * 60_000);
    writeFileSync(join(dir, 'boot-second.txt'), await analyzeBoot(alice));
    const cap = capacity(idle, busy, PEOPLE.length);
    report('## Boot and memory (QEMU -M virt, 2 CPUs, 1024 MiB)\n');
    report(`| boot | to /hub/health 200 |\n|---|---|\n| first (QEMU start) | ${seconds(first)} |\n| second (reset) | ${seconds(second)} |`);
    report(`\nsystemd-analyze of each boot: ${join(dir, 'boot-first.txt')}, ${join(dir, 'boot-second.txt')}`);
    report('\nhub idle, nobody logged in:');
    report(memoryLines(idle).join('\n'));
    report(`\n${PEOPLE.length} people logged in, each with JupyterLab and a numpy kernel:`);
    report(memoryLines(busy).join('\n'));
    report(`\none more person: ${cap.perPersonMiB} MiB; people served at once (a tenth of RAM kept free): ${Object.entries(cap.people).map(([r, n]) => `${r}: ${n}`).join(', ')}`);
  } finally {
    await vm.stop();
  }
  // What the first boot writes before the root file system is grown: the same card with the
  // grow masked, after the hub started and both people ran a kernel.
  const still = await bootVm(join(deploy, out.manifest.file), [22, HUB_PORT], {
    serialLog: join(dir, 'console-nogrow.log'), workDir: join(ROOT, 'boot-work'),
    extraArgs: ['--memory', '1024', '--cpus', '2', '--append', 'systemd.mask=pihub-grow-rootfs.service'],
  });
  try {
    const alice = { port: still.ports[22]!, key, user: 'alice' };
    const hub = `http://127.0.0.1:${still.ports[HUB_PORT]}`;
    await hubAnswers(hub, 10 * 60_000);
    await waitForSsh(alice, 5 * 60_000);
    for (const p of PEOPLE) {
      const s = new HubSession(hub, p.name);
      await s.login(p.password);
      await s.createToken(p.password);
      await s.startServer(300_000);
      await s.startKernel('import numpy\nprint(numpy.ones(3).sum())');
    }
    const df = await ssh(alice, 'sync; df -B1 --output=size,avail / | tail -n 1');
    const [size, avail] = df.stdout.trim().split(/\s+/).map(Number);
    report(`\nfirst boot without the grow, hub up and both people with a kernel: ${Math.round(avail! / 2 ** 20)} MiB of the root file system still free (${Math.round(size! / 2 ** 20)} MiB; the image keeps ${DEFAULTS.image.headroom_mib} MiB free)`);
    report();
  } finally {
    await still.stop();
  }
}

/**
 * The default image as Raspberry Pi Imager customises it (host name, a user with sudo and an SSH
 * key, time zone, keyboard; no Wi-Fi): the first boot, when cloud-init runs once, to the hub.
 */
async function imagerSection(out: Outputs): Promise<void> {
  const dir = join(ROOT, 'imager');
  mkdirSync(dir, { recursive: true });
  const key = benchKey(dir);
  const card = writeImagerCard(join(out.dir, out.manifest.file), join(dir, 'card'), {
    hostname: 'bench-pi', timezone: 'Europe/London', keyboard: 'gb',
    user: { name: 'dana', passwordHash: yescrypt('dana-bench-5'), passwordlessSudo: false },
    ssh: { publicKeys: [readFileSync(`${key}.pub`, 'utf8').trim()], passwordAuth: false },
  });
  const vm = await bootVm(join(out.dir, out.manifest.file), [22, HUB_PORT], {
    serialLog: join(dir, 'console.log'), workDir: join(ROOT, 'boot-work'), extraArgs: [...card.bootArgs, '--memory', '1024', '--cpus', '2'],
  });
  try {
    const first = await firstBootToHub(vm, `http://127.0.0.1:${vm.ports[HUB_PORT]}`, 10 * 60_000);
    const dana = { port: vm.ports[22]!, key, user: 'dana' };
    await waitForSsh(dana, 5 * 60_000);
    writeFileSync(join(dir, 'boot-first.txt'), await analyzeBoot(dana));
    report('## Imager-customised first boot (QEMU -M virt, 2 CPUs, 1024 MiB; cloud-init runs once)\n');
    report(`default image with Imager's files (host name, user, SSH key, time zone, keyboard), QEMU start to /hub/health 200: ${seconds(first)}`);
    report(`systemd-analyze: ${join(dir, 'boot-first.txt')}`);
    report();
  } finally {
    await vm.stop();
  }
}

/** The default image in one of QEMU's Raspberry Pi board models: login prompt and hub, from QEMU's start. */
async function boardSection(out: Outputs, machine: PiBoardMachine): Promise<void> {
  const board = PI_BOARD_MODELS[machine];
  const dir = join(ROOT, machine);
  mkdirSync(dir, { recursive: true });
  const vm = await bootVm(join(out.dir, out.manifest.file), [HUB_PORT], { serialLog: join(dir, 'console.log'), workDir: join(ROOT, 'boot-work'), extraArgs: ['--machine', machine] });
  try {
    const started = await vm.qemuStarted();
    await vm.waitForConsole(/ login: /, 20 * 60_000);
    const login = Date.now();
    const answered = await hubAnswers(`http://127.0.0.1:${vm.ports[HUB_PORT]}`, 20 * 60_000);
    report(`## Raspberry Pi ${board.title.replace(/^Pi /, '')} board model (QEMU ${machine}: ${board.cpus} cores, ${board.memoryMiB} MiB, USB network)\n`);
    report(`default image, first boot, QEMU start to the login prompt on the serial console: ${seconds(login - started)}`);
    report(`default image, first boot, QEMU start to /hub/health 200 through the USB network: ${seconds(answered - started)}`);
    report(`console: ${join(dir, 'console.log')}`);
    report();
  } finally {
    await vm.stop();
  }
}

async function main(): Promise<void> {
  if ((process.getuid?.() ?? 0) !== 0) throw new Error('npm run bench needs root (sudo)');
  const asked = process.argv.slice(2);
  for (const a of asked) if (!SECTIONS.includes(a as Section)) throw new Error(`unknown section ${a}; sections: ${SECTIONS.join(', ')}`);
  const want = (s: Section) => asked.length === 0 || asked.includes(s);
  mkdirSync(ROOT, { recursive: true });
  const interpreter = readBinfmt('arm64')?.interpreter || 'qemu-aarch64-static';
  const qemu = execFileSync(realpathSync(interpreter), ['--version']).toString().split('\n')[0];
  report(`# pihub bench: default image, trixie arm64, ${qemu}, ${cpus().length} cores, load ${execFileSync('cat', ['/proc/loadavg']).toString().split(' ').slice(0, 3).join(' ')} at the start\n`);

  let base = NaN;
  if (want('baseline')) {
    console.log('baseline: one mmdebstrap call with every package …');
    base = await baseline();
    console.log(`baseline: ${formatDuration(base)}`);
  }
  let out: Outputs | undefined;
  if (want('build')) out = await buildSection(base);
  if (want('fresh')) await freshSection();
  if (!out && existsSync(join(ROOT, 'deploy'))) out = outputs(join(ROOT, 'deploy'));
  if (want('compression')) {
    if (!out) throw new Error('the compression section needs a build: run the build section first');
    compressionSection(out);
  }
  if (want('boot')) await bootSection();
  if (want('imager')) {
    if (!out) throw new Error('the imager section needs a build: run the build section first');
    await imagerSection(out);
  }
  for (const machine of ['raspi3b', 'raspi4b'] as const) {
    if (!want(machine)) continue;
    if (!out) throw new Error(`the ${machine} section needs a build: run the build section first`);
    await boardSection(out, machine);
  }
  report(`load at the end: ${execFileSync('cat', ['/proc/loadavg']).toString().split(' ').slice(0, 3).join(' ')}`);
  writeFileSync(join(ROOT, 'bench.md'), `${summary.join('\n')}\n`);
}

main().catch((err: Error) => {
  console.error(`bench failed: ${err.message}`);
  process.exit(1);
});
