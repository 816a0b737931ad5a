// Run real `pihub build`s for the integration and end-to-end tests.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ImageManifestSchema, type ImageManifest } from '../../build/image/manifest.ts';
import { PIHUB } from '../../ci/harness/vm.ts';
import { describeHolder, holderFor, waitLock } from '../../build/core/lock.ts';

/** Where the suite keeps its builds: outside the repo, stable across runs, so the stage cache and work trees are reused. */
export const E2E_ROOT = process.env.PIHUB_E2E_DIR ?? '/var/tmp/pihub-e2e';
export const CACHE_DIR = process.env.PIHUB_CACHE_DIR ?? '/var/cache/pihub';

/**
 * The e2e-users image of image.test.ts: two people (alice an admin with an SSH key, bob), SSH
 * on. The key pair lives in `dir` and is made once. Other tests name it differently and put
 * `head` first (e.g. `base: NAME`).
 */
export function usersImage(dir: string, o: { name?: string; head?: string; compression?: string } = {}): { config: string; key: string } {
  mkdirSync(dir, { recursive: true });
  const key = join(dir, 'id_ed25519');
  if (!existsSync(key)) execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'pihub-e2e', '-f', key]);
  const pub = execFileSync('ssh-keygen', ['-y', '-f', key]).toString().trim();
  const config = `${o.head ? `${o.head}\n` : ''}name: ${o.name ?? 'e2e-users'}
hostname: kitchen-pi
users:
  - name: alice
    password: "alice-secret-1"
    admin: true
    ssh_authorized_keys:
      - ${pub}
  - name: bob
    password: "bob-secret-2"
ssh:
  enabled: true
image:
  compression: ${o.compression ?? 'zstd'}
`;
  return { config, key };
}

export interface BuildRun {
  code: number;
  stdout: string;
  stderr: string;
  durationMs: number;
  outDir: string;
}

export function runPihub(args: string[], opts: { timeoutMs?: number; env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<{ code: number; stdout: string; stderr: string; durationMs: number }> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [PIHUB, ...args], { cwd: opts.cwd, env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      if (process.env.PIHUB_TEST_VERBOSE) process.stderr.write(d);
    });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    const timer = opts.timeoutMs ? setTimeout(() => child.kill('SIGINT'), opts.timeoutMs) : undefined;
    child.on('error', reject);
    child.on('exit', (code) => {
      if (timer) clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr, durationMs: Date.now() - started });
    });
  });
}

/**
 * Build an image from a config (YAML text) into E2E_ROOT/<name>/deploy; fails with the build's own
 * message. Test files run side by side (ci/test-all.sh) and two of them build e2e-default: a build
 * of a name waits for another of the same name to finish (pihub's own lock, on E2E_ROOT/<name>.lock).
 */
export async function buildImage(name: string, configYaml: string, extraArgs: string[] = []): Promise<BuildRun> {
  mkdirSync(E2E_ROOT, { recursive: true });
  const lock = await waitLock(join(E2E_ROOT, `${name}.lock`), holderFor(`the test build of ${name}`), (other) => {
    console.log(`# build ${name}: waiting for ${describeHolder(other)}`);
  });
  try {
    return await buildImageLocked(name, configYaml, extraArgs);
  } finally {
    lock.release();
  }
}

async function buildImageLocked(name: string, configYaml: string, extraArgs: string[]): Promise<BuildRun> {
  const dir = join(E2E_ROOT, name);
  mkdirSync(dir, { recursive: true });
  const config = join(dir, 'config.yaml');
  writeFileSync(config, configYaml);
  const outDir = join(dir, 'deploy');
  // Only this build's files: an image of an earlier day beside it would be a second image.
  rmSync(outDir, { recursive: true, force: true });
  const r = await runPihub(['build', '--config', config, '--out', outDir, '--work-dir', join(E2E_ROOT, 'work'), '--cache-dir', CACHE_DIR, ...extraArgs]);
  if (r.code !== 0) {
    let log = '';
    try {
      log = readFileSync(join(outDir, `${name}.log`), 'utf8').slice(-4000);
    } catch {
      // no log
    }
    throw new Error(`pihub build ${name} failed (${r.code}):\n${r.stderr}\n${r.stdout.slice(-2000)}\n--- log tail ---\n${log}`);
  }
  return { ...r, outDir };
}

export type Manifest = ImageManifest;

/** The image's manifest, checked against pihub's one schema for it. */
export function manifest(outDir: string, base: string): Manifest {
  return ImageManifestSchema.parse(JSON.parse(readFileSync(join(outDir, `${base}.json`), 'utf8')));
}

/** The base name of the image in a deploy folder: its manifest <base>.json sits beside <base>.sha256 (other .json files do not). */
export function imageBase(outDir: string): string {
  const files = readdirSync(outDir);
  const bases = files.filter((f) => f.endsWith('.json') && files.includes(`${f.slice(0, -5)}.sha256`)).map((f) => f.slice(0, -5));
  if (bases.length !== 1) throw new Error(`${outDir}: expected one image manifest, found ${bases.length} (${files.join(', ')})`);
  return bases[0]!;
}
