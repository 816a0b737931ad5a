// Figures taken from outside a booted image: how long until the hub answers, what systemd
// says the boot spent its time on, and how much memory the hub, each person's server and
// each kernel use. Shared by test/e2e/image.test.ts and `npm run bench`.
import { ssh, sleep, type SshTarget, type Vm } from './vm.ts';

/** Poll /hub/health (every 250 ms) until it answers 200; returns the time (epoch ms) it did. */
export async function hubAnswers(base: string, timeoutMs: number): Promise<number> {
  const end = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < end) {
    try {
      const res = await fetch(`${base}/hub/health`, { signal: AbortSignal.timeout(5000) });
      if (res.status === 200) return Date.now();
      last = `HTTP ${res.status}`;
    } catch (err) {
      last = (err as Error).message;
    }
    await sleep(250);
  }
  throw new Error(`the hub at ${base} did not answer /hub/health within ${timeoutMs / 1000}s (${last})`);
}

/** Seconds from QEMU's start until the hub answers (a first boot: `pihub boot` always starts a fresh card). */
export async function firstBootToHub(vm: Vm, base: string, timeoutMs: number): Promise<number> {
  const started = await vm.qemuStarted();
  return (await hubAnswers(base, timeoutMs)) - started;
}

/**
 * Reboot the guest and time the second boot: from the reset (the kernel's "reboot: Restarting
 * system" on the console, just before QEMU resets the machine) until the hub answers again.
 */
export async function secondBootToHub(vm: Vm, t: SshTarget, sudoPassword: string, base: string, timeoutMs: number): Promise<number> {
  const before = (vm.console().match(/reboot: Restarting system/g) ?? []).length;
  await ssh(t, `echo '${sudoPassword}' | sudo -S -p '' systemctl reboot`);
  const end = Date.now() + timeoutMs;
  let reset = 0;
  while (!reset) {
    if ((vm.console().match(/reboot: Restarting system/g) ?? []).length > before) reset = Date.now();
    else if (Date.now() > end) throw new Error(`the guest did not restart within ${timeoutMs / 1000}s\n${vm.console().slice(-2000)}`);
    else await sleep(100);
  }
  return (await hubAnswers(base, end - Date.now())) - reset;
}

/** `systemd-analyze` time, the hub's critical chain and blame, once the boot has finished. */
export async function analyzeBoot(t: SshTarget): Promise<string> {
  const r = await ssh(
    t,
    [
      'systemctl is-system-running --wait >/dev/null',
      'echo "## systemd-analyze time"; systemd-analyze time',
      'echo; echo "## systemd-analyze critical-chain jupyterhub.service"; systemd-analyze critical-chain jupyterhub.service --no-pager',
      'echo; echo "## systemd-analyze blame"; systemd-analyze blame --no-pager',
    ].join('; '),
  );
  if (!/Startup finished/.test(r.stdout)) throw new Error(`systemd-analyze gave no boot time:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

export type Role = 'hub' | 'proxy' | 'server' | 'kernel';

export interface ProcessMemory {
  pid: number;
  user: string;
  role: Role;
  rssKiB: number;
  pssKiB: number;
  command: string;
}

export interface MemorySnapshot {
  memTotalKiB: number;
  memAvailableKiB: number;
  swapTotalKiB: number;
  swapFreeKiB: number;
  processes: ProcessMemory[];
}

// Runs as root on the guest (smaps_rollup of other users' processes needs it). It is copied
// to a file first so that no command line on the guest contains the names it looks for.
const MEMORY_SCRIPT = `grep -E '^(MemTotal|MemAvailable|SwapTotal|SwapFree):' /proc/meminfo
for d in /proc/[0-9]*; do
  cmd=$(tr '\\0' ' ' < "$d/cmdline" 2>/dev/null) || continue
  [ -r "$d/smaps_rollup" ] || continue
  echo "proc \${d#/proc/} $(stat -c %U "$d") $(awk '/^Rss:/ { r = $2 } /^Pss:/ { p = $2 } END { print r + 0, p + 0 }' "$d/smaps_rollup") $cmd"
done
`;

export function roleOf(user: string, command: string): Role | undefined {
  if (/ipykernel/.test(command)) return 'kernel';
  if (/configurable-http-proxy/.test(command)) return 'proxy';
  if (/jupyterhub-singleuser|jupyter-lab|jupyter-server/.test(command) && user !== 'root') return 'server';
  if (/(^|\/| )jupyterhub( |$)/.test(command) && user === 'root') return 'hub';
  return undefined;
}

export function parseMemory(text: string): MemorySnapshot {
  const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN);
  const processes: ProcessMemory[] = [];
  for (const m of text.matchAll(/^proc (\d+) (\S+) (\d+) (\d+) (.*)$/gm)) {
    const role = roleOf(m[2]!, m[5]!);
    if (role) processes.push({ pid: Number(m[1]), user: m[2]!, role, rssKiB: Number(m[3]), pssKiB: Number(m[4]), command: m[5]!.trim() });
  }
  return {
    memTotalKiB: field('MemTotal'),
    memAvailableKiB: field('MemAvailable'),
    swapTotalKiB: field('SwapTotal'),
    swapFreeKiB: field('SwapFree'),
    processes,
  };
}

export async function memorySnapshot(t: SshTarget, sudoPassword: string): Promise<MemorySnapshot> {
  const script = Buffer.from(MEMORY_SCRIPT).toString('base64');
  const r = await ssh(t, `f=$(mktemp); echo ${script} | base64 -d > "$f"; echo '${sudoPassword}' | sudo -S -p '' sh "$f"; rm -f "$f"`);
  const snap = parseMemory(r.stdout);
  if (!(snap.memTotalKiB > 0) || !(snap.memAvailableKiB > 0)) throw new Error(`no /proc/meminfo figures:\n${r.stdout}\n${r.stderr}`);
  return snap;
}

const mib = (kib: number) => Math.round(kib / 1024);

/** The snapshot as table lines: one per process, then the system's figures. */
export function memoryLines(s: MemorySnapshot): string[] {
  const lines = ['| process | user | RSS MiB | PSS MiB |', '|---|---|---|---|'];
  const order: Role[] = ['hub', 'proxy', 'server', 'kernel'];
  for (const p of [...s.processes].sort((a, b) => order.indexOf(a.role) - order.indexOf(b.role) || a.user.localeCompare(b.user))) {
    lines.push(`| ${p.role} | ${p.user} | ${mib(p.rssKiB)} | ${mib(p.pssKiB)} |`);
  }
  lines.push(`MemTotal ${mib(s.memTotalKiB)} MiB, MemAvailable ${mib(s.memAvailableKiB)} MiB, swap used ${mib(s.swapTotalKiB - s.swapFreeKiB)} of ${mib(s.swapTotalKiB)} MiB`);
  return lines;
}

export interface Capacity {
  /** What one more person (a JupyterLab server and a numpy kernel) costs, from the drop in MemAvailable. */
  perPersonMiB: number;
  /** MemAvailable with the hub running and nobody logged in. */
  idleAvailableMiB: number;
  /** People served at once by a Pi with this much RAM, keeping a tenth of it free. */
  people: Record<'1 GB' | '2 GB' | '4 GB', number>;
}

/**
 * How many people a Pi serves, from two snapshots of one guest: the hub idle, then with
 * `users` people each running a server and a kernel. More RAM adds to what is available
 * one for one (the system's own use does not grow with it).
 */
export function capacity(idle: MemorySnapshot, busy: MemorySnapshot, users: number): Capacity {
  const perPerson = (idle.memAvailableKiB - busy.memAvailableKiB) / users / 1024;
  const idleAvailable = idle.memAvailableKiB / 1024;
  const total = idle.memTotalKiB / 1024;
  const serve = (ramMiB: number) => Math.max(0, Math.floor((idleAvailable + (ramMiB - total) - ramMiB / 10) / perPerson));
  return {
    perPersonMiB: Math.round(perPerson),
    idleAvailableMiB: Math.round(idleAvailable),
    people: { '1 GB': serve(total), '2 GB': serve(total + 1024), '4 GB': serve(total + 3072) },
  };
}
