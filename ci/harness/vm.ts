// Boot an image with `pihub boot` and talk to it from outside: serial console, SSH, HTTP.
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { createConnection, createServer } from 'node:net';
import { readFileSync, existsSync, rmSync } from 'node:fs';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { PROJECT_DIR } from '../../build/plan/inputs.ts';

// A terminal control sequence (CSI): ESC [ parameters final-letter.
const CONTROL_SEQUENCE = new RegExp(`${String.fromCharCode(27)}\\[[0-9;?]*[A-Za-z]`, 'g');

export const execFileP = promisify(execFile);
export const PIHUB = join(PROJECT_DIR, 'build/bin/pihub.js');

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface Vm {
  serialLog: string;
  ports: Record<number, number>;
  /** Everything the console printed so far. */
  console(): string;
  waitForConsole(pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray>;
  type(text: string): void;
  stop(): Promise<number>;
  process: ChildProcess;
  /** When QEMU was started (epoch ms), once `pihub boot` has said so. */
  qemuStarted(): Promise<number>;
}

/** `pihub boot IMAGE` with the given guest ports forwarded to free host ports. */
export async function bootVm(image: string, guestPorts: number[], opts: { serialLog: string; diskSize?: string; workDir: string; extraArgs?: string[] }): Promise<Vm> {
  const ports: Record<number, number> = {};
  for (const g of guestPorts) ports[g] = await freePort();
  // A console log of an earlier boot must not satisfy this boot's waits.
  rmSync(opts.serialLog, { force: true });
  const args = [PIHUB, 'boot', image, '--serial-log', opts.serialLog, '--no-console', '--work-dir', opts.workDir, '--disk-size', opts.diskSize ?? '8G'];
  for (const g of guestPorts) args.push('--forward', `${ports[g]}:${g}`);
  args.push(...(opts.extraArgs ?? []));
  const child = spawn(process.execPath, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  let markStarted: (t: number) => void = () => {};
  const started = new Promise<number>((resolve) => { markStarted = resolve; });
  child.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString();
    // pihub boot prints this line just before it starts QEMU.
    if (/pihub: booting /.test(stderr)) markStarted(Date.now());
  });
  child.stdout!.resume();
  let exited: number | null = null;
  const exit = new Promise<number>((resolve) => child.on('exit', (code) => { exited = code ?? -1; resolve(exited); }));
  // Without terminal control sequences: systemd's status lines and bash's bracketed paste put
  // them anywhere on the serial console (`\x1b[KEND-42` would not match /^END-42/m).
  const read = () => (existsSync(opts.serialLog) ? readFileSync(opts.serialLog, 'utf8').replace(CONTROL_SEQUENCE, '') : '');
  return {
    serialLog: opts.serialLog,
    ports,
    process: child,
    console: read,
    qemuStarted: () => started,
    async waitForConsole(pattern, timeoutMs) {
      const end = Date.now() + timeoutMs;
      for (;;) {
        const m = read().match(pattern);
        if (m) return m;
        if (exited !== null) throw new Error(`pihub boot exited (${exited}) before the console showed ${pattern}\n${stderr}\n--- console tail ---\n${read().slice(-3000)}`);
        if (Date.now() > end) throw new Error(`timed out after ${timeoutMs / 1000}s waiting for ${pattern} on the console\n--- console tail ---\n${read().slice(-3000)}`);
        await sleep(500);
      }
    },
    type(text) {
      child.stdin!.write(text);
    },
    async stop() {
      if (exited !== null) return exited;
      child.kill('SIGINT');
      const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
      const code = await exit;
      clearTimeout(timer);
      return code;
    },
  };
}

export interface SshTarget {
  port: number;
  key: string;
  user: string;
}

const SSH_OPTS = ['-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=15', '-o', 'LogLevel=ERROR'];

export async function ssh(t: SshTarget, command: string, timeoutMs = 120_000): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await execFileP('ssh', [...SSH_OPTS, '-i', t.key, '-p', String(t.port), `${t.user}@127.0.0.1`, command], { timeout: timeoutMs });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

/** Retry until SSH answers with exit code 0 (the guest is still booting before that). */
export async function waitForSsh(t: SshTarget, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < end) {
    const r = await ssh(t, 'true');
    if (r.code === 0) return;
    last = r.stderr;
    await sleep(3000);
  }
  throw new Error(`SSH to ${t.user}@127.0.0.1:${t.port} did not answer in ${timeoutMs / 1000}s: ${last}`);
}

export async function hostKeys(port: number): Promise<string[]> {
  const r = await execFileP('ssh-keyscan', ['-p', String(port), '-T', '10', '127.0.0.1'], { timeout: 60_000 }).catch((e: { stdout?: string }) => ({ stdout: e.stdout ?? '' }));
  return r.stdout.split('\n').filter((l) => l && !l.startsWith('#')).map((l) => l.split(' ').slice(1).join(' ')).sort();
}

/** Copy a local file into the guest over SSH. */
export async function scpTo(t: SshTarget, file: string, dest: string): Promise<void> {
  await execFileP('scp', [...SSH_OPTS, '-i', t.key, '-P', String(t.port), file, `${t.user}@127.0.0.1:${dest}`], { timeout: 300_000 });
}

/** What a TCP port says first (an SSH server greets with `SSH-2.0-…`); '' when nothing answers within the time. */
export function greeting(port: number, timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve) => {
    let got = '';
    const sock = createConnection(port, '127.0.0.1');
    const done = () => { sock.destroy(); resolve(got); };
    sock.setTimeout(timeoutMs, done);
    sock.on('data', (d: Buffer) => { got += d.toString('latin1'); if (got.includes('\n')) done(); });
    sock.on('close', done);
    sock.on('error', done);
  });
}
