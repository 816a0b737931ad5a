// node --import tsx ci/check-image.ts IMAGE [--work-dir DIR]
//
// The hub's end-to-end check of one image, as a person gets it from a release: the card is
// customised exactly as Raspberry Pi Imager does it (host name, a user with a password, time zone,
// keyboard), booted in QEMU with `pihub boot`, and then, from outside, the user logs in to the hub
// through its login form, starts JupyterLab and runs numpy in a kernel, and is a hub admin.
// Exit code 0 only when all of that worked. Needs root (QEMU's disk copies) and ci/setup-host.sh.
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { manifestFor } from '../build/boot/boot.ts';
import { DEFAULTS } from '../build/config/schema.ts';
import { bootVm } from './harness/vm.ts';
import { ensureWebSocket } from './websocket.ts';
import { HubSession, waitForHub } from './harness/hub.ts';
import { writeImagerCard, yescrypt } from './harness/imager.ts';

// Ceilings for a slow runner (an arm64 guest under TCG, no KVM); a boot takes two or three minutes here.
const BOOT_TIMEOUT = 15 * 60_000;

export interface CheckResult {
  hubVersion: string;
  numpy: string;
  bootSeconds: number;
}

export async function checkImage(image: string, workDir: string, log: (line: string) => void = (l) => process.stderr.write(`${l}\n`)): Promise<CheckResult> {
  mkdirSync(workDir, { recursive: true });
  const user = 'checker';
  const password = randomBytes(12).toString('base64url');
  const { bootArgs } = writeImagerCard(image, join(workDir, 'imager'), {
    hostname: 'pihub-check',
    timezone: 'Europe/London',
    keyboard: 'gb',
    user: { name: user, passwordHash: yescrypt(password), passwordlessSudo: false },
  });
  const started = Date.now();
  // The hub's port as the image's manifest says (the default one for an image without it).
  const port = manifestFor(image)?.hub?.port ?? DEFAULTS.hub.port;
  const vm = await bootVm(image, [port], { serialLog: join(workDir, 'console.log'), workDir: join(workDir, 'boot'), extraArgs: bootArgs });
  try {
    const hub = `http://127.0.0.1:${vm.ports[port]}`;
    await waitForHub(hub, BOOT_TIMEOUT);
    const bootSeconds = Math.round((Date.now() - started) / 1000);
    log(`check: the hub answered ${bootSeconds} s after QEMU started`);
    const s = new HubSession(hub, user);
    // cloud-init makes the account before the hub starts; the form must let the user in.
    const login = await s.login(password);
    if (login.status !== 302) throw new Error(`the Imager user could not log in to the hub (HTTP ${login.status}): ${login.body.slice(0, 300)}`);
    await s.createToken(password);
    const api = await s.json<{ version: string }>('/hub/api');
    const users = await s.json('/hub/api/users');
    if (users.status !== 200) throw new Error(`the Imager user is not a hub admin (GET /hub/api/users: HTTP ${users.status})`);
    await s.startServer(600_000);
    const out = await s.runCode('import numpy, getpass\nprint("numpy", numpy.__version__, getpass.getuser(), int(numpy.arange(10).sum()))');
    const m = /^numpy (\S+) (\S+) 45$/m.exec(out);
    if (!m || m[2] !== user) throw new Error(`the numpy kernel printed: ${out}`);
    log(`check: ${user} logged in as a hub admin and ran numpy ${m[1]} in JupyterHub ${api.body.version}`);
    return { hubVersion: api.body.version, numpy: m[1]!, bootSeconds };
  } catch (err) {
    log(`check failed; console tail:\n${vm.console().slice(-3000)}`);
    throw err;
  } finally {
    const code = await vm.stop();
    if (code !== 0) log(`check: pihub boot exited with ${code}`);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  ensureWebSocket();
  const { values, positionals } = parseArgs({ options: { 'work-dir': { type: 'string' } }, allowPositionals: true });
  if (positionals.length !== 1) {
    process.stderr.write('usage: node --import tsx ci/check-image.ts IMAGE [--work-dir DIR]\n');
    process.exit(2);
  }
  checkImage(resolve(positionals[0]!), resolve(values['work-dir'] ?? 'work/check')).then(
    (r) => process.stdout.write(`ok: JupyterHub ${r.hubVersion}, numpy ${r.numpy}, hub up ${r.bootSeconds} s after boot\n`),
    (err: Error) => {
      process.stderr.write(`check-image: ${err.message}\n`);
      process.exit(1);
    },
  );
}
