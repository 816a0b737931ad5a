// npm run bench — build-speed figures for the default JupyterHub image on this machine.
//
//   baseline  one mmdebstrap call installing every package of every stage under qemu-user,
//             as pi-gen-style tools do (a root filesystem only: no image is made)
//   cold      pihub build with an empty stage cache
//   warm      pihub build again, nothing changed
//   port      pihub build after changing hub.port
//
// All runs start with the same downloaded packages (copied from /var/cache/pihub/debs when
// there), so the figures compare building, not the network. pihub writes zstd images
// (`image.compression: zstd`); xz is only for releases. Needs root and ci/setup-host.sh.
import { execFileSync, spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PROJECT_DIR } from '../build/plan/inputs.ts';
import { loadStages } from '../build/stages/load.ts';
import { readBinfmt } from '../build/chroot/chroot.ts';
import { formatDuration } from '../build/progress.ts';

const ROOT = process.env.PIHUB_BENCH_DIR ?? '/var/tmp/pihub-bench';
const SHARED_DEBS = '/var/cache/pihub/debs';
const MIRROR = 'http://deb.debian.org/debian';

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

/** Every package the stages install, for the one-call baseline. */
function allPackages(): string[] {
  const pkgs: string[] = [];
  for (const stage of loadStages(join(PROJECT_DIR, 'stages'))) {
    for (const sub of stage.substeps) pkgs.push(...(sub.packages ?? []));
  }
  return [...new Set(pkgs)];
}

function freshCache(name: string): string {
  const dir = join(ROOT, name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(join(dir, 'debs'), { recursive: true });
  if (existsSync(SHARED_DEBS)) cpSync(SHARED_DEBS, join(dir, 'debs'), { recursive: true });
  return dir;
}

async function baseline(cache: string): Promise<number> {
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
    'trixie', target, MIRROR,
  ];
  const ms = await run('unshare', args, join(ROOT, 'baseline.log'));
  rmSync(target, { recursive: true, force: true });
  return ms;
}

function pihub(cache: string, extra: string[], log: string): Promise<number> {
  return run(process.execPath, [
    join(PROJECT_DIR, 'build/bin/pihub.js'), 'build', '--cache-dir', cache, '--work-dir', join(ROOT, 'work'), '--out', join(ROOT, 'deploy'),
    '--set', 'image.compression=zstd', ...extra,
  ], log);
}

/** Stage times from a build's own log: the time from each step's start to the next. */
function profile(buildLog: string): string[] {
  const text = readFileSync(buildLog, 'utf8');
  const marks = [...text.matchAll(/^\[([0-9T:.\-Z]+)\] (stage \S+|export)[: ](.*)$/gm)].map((m) => ({ t: Date.parse(m[1]!), what: m[2]!, detail: m[3]! }));
  const end = [...text.matchAll(/^\[([0-9T:.\-Z]+)\] finished/gm)].map((m) => Date.parse(m[1]!)).pop() ?? Date.now();
  const totals = new Map<string, number>();
  marks.forEach((m, i) => {
    const next = marks[i + 1]?.t ?? end;
    // "stage 10-system: 02-packages-nr: install 30 packages" → "stage 10-system 02-packages-nr"
    const key = m.what === 'export' ? 'export' : `${m.what} ${m.detail.split(/: | \(/)[0]}`;
    totals.set(key, (totals.get(key) ?? 0) + (next - m.t));
  });
  const steps = [...totals].map(([k, ms]) => `  ${formatDuration(ms).padStart(6)}  ${k}`);
  // Inside each package installation: what dpkg spent its time on (the packages step notes it).
  const inside = [...text.matchAll(/^\[[^\]]+\] profile (.*)$/gm)].map((m) => `    ${m[1]}`);
  return [...steps, ...(inside.length ? ['  inside the package installations:', ...inside] : [])];
}

async function main(): Promise<void> {
  if ((process.getuid?.() ?? 0) !== 0) throw new Error('npm run bench needs root (sudo)');
  mkdirSync(ROOT, { recursive: true });
  const interpreter = readBinfmt('arm64')?.interpreter || 'qemu-aarch64-static';
  const qemu = execFileSync(realpathSync(interpreter), ['--version']).toString().split('\n')[0];
  console.log(`pihub bench: default JupyterHub image, trixie arm64, ${qemu}, ${execFileSync('nproc').toString().trim()} cores`);
  const only = process.env.PIHUB_BENCH_SKIP_BASELINE ? [] : ['baseline'];

  let base = NaN;
  if (only.includes('baseline')) {
    console.log('baseline: one mmdebstrap call with every package …');
    base = await baseline(freshCache('cache-baseline'));
    console.log(`baseline: ${formatDuration(base)}`);
  }
  const cache = freshCache('cache-pihub');
  rmSync(join(ROOT, 'work'), { recursive: true, force: true });
  rmSync(join(ROOT, 'deploy'), { recursive: true, force: true });
  console.log('pihub cold (empty stage cache) …');
  const cold = await pihub(cache, [], join(ROOT, 'cold.log'));
  const coldProfile = profile(join(ROOT, 'deploy', 'pihub.log'));
  console.log(`pihub cold: ${formatDuration(cold)}`);
  const warm = await pihub(cache, [], join(ROOT, 'warm.log'));
  console.log(`pihub warm, nothing changed: ${formatDuration(warm)}`);
  const port = await pihub(cache, ['--set', 'hub.port=8000'], join(ROOT, 'port.log'));
  const portProfile = profile(join(ROOT, 'deploy', 'pihub.log'));
  console.log(`pihub after changing hub.port: ${formatDuration(port)}`);

  console.log('\n| run | time |\n|---|---|');
  console.log(`| baseline (one mmdebstrap, no image) | ${Number.isNaN(base) ? 'skipped' : formatDuration(base)} |`);
  console.log(`| pihub cold (empty cache, image included) | ${formatDuration(cold)} |`);
  console.log(`| pihub warm, nothing changed | ${formatDuration(warm)} |`);
  console.log(`| pihub after changing hub.port | ${formatDuration(port)} |`);
  if (!Number.isNaN(base)) console.log(`\nbaseline / cold = ${(base / cold).toFixed(2)}`);
  console.log('\ncold build, time per step:');
  console.log(coldProfile.join('\n'));
  console.log('\nhub.port rebuild, time per step:');
  console.log(portProfile.join('\n'));
  console.log(`\nimages: ${readdirSync(join(ROOT, 'deploy')).join(', ')}`);
}

main().catch((err: Error) => {
  console.error(`bench failed: ${err.message}`);
  process.exit(1);
});
