// Credentials in `apt_proxy` and `base.mirror` reach a real bootstrap's apt through the build's
// auth.conf: an archive that wants a password, behind a proxy that wants one too, is bootstrapped
// from, while no process's command line ever shows either password and the target's sources do
// not hold them.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createReadStream, existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import { join, normalize } from 'node:path';
import { resolveConfig, setLayer } from '../../build/config/load.ts';
import type { Command } from '../../build/core/exec.ts';
import type { DoOp, RunState } from '../../build/core/ops.ts';
import { buildCredentials, removeCredentialsOp, writeCredentialsOp } from '../../build/stages/credentials.ts';
import { trustOnly, type PlanContext } from '../../build/stages/step.ts';
import { mmdebstrapCommand } from '../../build/stages/steps/bootstrap.ts';
import { makeDeb, makeKey, writeRepo, type TestKey } from '../helpers/apt-repo.ts';
import { scratch } from '../helpers/tmp.ts';

const MIRROR_PW = 'mirror-pass-in-auth-conf';
const PROXY_PW = 'proxy-pass-in-auth-conf';
const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

let dir = '';
let key: TestKey;
const servers: Server[] = [];
const seen: string[] = [];
let mirrorUrl = '';
let proxyUrl = '';

function listen(server: Server, host: string): Promise<string> {
  servers.push(server);
  return new Promise((resolve) => server.listen(0, host, () => resolve(`${host}:${(server.address() as { port: number }).port}`)));
}

before(async () => {
  dir = scratch('pihub-credentials-');
  key = await makeKey(dir, 'archive');
  const deb = await makeDeb(dir, { name: 'pihub-stand-in', version: '1.0', architecture: 'all', description: 'a package', files: { '/usr/share/pihub-stand-in/x': 'x\n' } });
  const www = join(dir, 'www');
  await writeRepo(join(www, 'debian'), { suite: 'trixie', component: 'main', architectures: ['arm64'], debs: [deb], signWith: key });
  const mirror = createServer((req, res) => {
    const ok = req.headers.authorization === basic('mirror-user', MIRROR_PW);
    seen.push(`mirror ${ok ? 'authorized' : 'refused'} ${req.url}`);
    if (!ok) return void res.writeHead(401, { 'www-authenticate': 'Basic realm="archive"' }).end();
    const file = normalize(join(www, new URL(req.url ?? '/', 'http://x').pathname));
    if (!file.startsWith(www) || !existsSync(file) || !statSync(file).isFile()) return void res.writeHead(404).end();
    res.writeHead(200, { 'content-length': statSync(file).size });
    createReadStream(file).pipe(res);
  });
  const proxy = createServer((req, res) => {
    const ok = req.headers['proxy-authorization'] === basic('proxy-user', PROXY_PW);
    seen.push(`proxy ${ok ? 'authorized' : 'refused'} ${req.url}`);
    if (!ok) return void res.writeHead(407, { 'proxy-authenticate': 'Basic realm="proxy"' }).end();
    const target = new URL(req.url ?? '');
    const headers = { ...req.headers };
    delete headers['proxy-authorization'];
    req.pipe(request({ host: target.hostname, port: target.port, path: target.pathname, method: req.method, headers }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    }));
  });
  mirrorUrl = `http://mirror-user:${MIRROR_PW}@${await listen(mirror, '127.0.0.1')}/debian`;
  proxyUrl = `http://proxy-user:${PROXY_PW}@${await listen(proxy, '127.0.0.1')}`;
});

after(async () => {
  for (const s of servers) {
    s.closeAllConnections();
    await new Promise((resolve) => s.close(resolve));
  }
});

/** Every process's command line, now. */
function commandLines(): string[] {
  const out: string[] = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      out.push(readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' '));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** Runs a command while watching the process list for the passwords. */
function runWatched([program, args]: Command): Promise<{ code: number; output: string; shown: string[] }> {
  return new Promise((resolve) => {
    const child = spawn(program, [...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const shown = new Set<string>();
    child.stdout.on('data', (d: Buffer) => { output += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { output += d.toString(); });
    const watch = setInterval(() => {
      for (const line of commandLines()) if (line.includes(MIRROR_PW) || line.includes(PROXY_PW)) shown.add(line);
    }, 10);
    child.on('exit', (code) => {
      clearInterval(watch);
      resolve({ code: code ?? -1, output, shown: [...shown] });
    });
  });
}

test('a bootstrap from an archive and through a proxy that want passwords: given by the auth.conf, on no command line, not in the target', { timeout: 10 * 60_000 }, async () => {
  const config = resolveConfig([setLayer([`base.mirror=${mirrorUrl}`, `apt_proxy=${proxyUrl}`, 'base.components=[main]'])]);
  const work = scratch('pihub-credentials-work-');
  const paths = { work, rootfs: join(work, 'rootfs'), cache: join(work, 'cache'), debs: join(dir, 'debs'), deploy: join(work, 'deploy') };
  const credentials = buildCredentials(config)!;
  assert.deepEqual(credentials.apt, [proxyUrl, mirrorUrl]);
  const ctx: PlanContext = { config, paths, stage: { id: '00-bootstrap', dir: work, description: '', reads: [], skip: false, substeps: [], origin: 'stage' }, keyring: key.keyring, credentials };
  const run = (op: unknown) => (op as DoOp).fn({} as RunState);
  await run(trustOnly(key.keyring, paths).prepare);
  await run(writeCredentialsOp(credentials, work));
  mkdirSync(paths.debs, { recursive: true });
  const r = await runWatched(mmdebstrapCommand(ctx, []));
  assert.equal(r.code, 0, r.output);
  assert.deepEqual(r.shown, [], 'no command line showed a password');
  const mirrorHost = mirrorUrl.replace(/^http:\/\/[^@]*@/, 'http://');
  assert.ok(seen.includes(`proxy authorized ${mirrorHost}/dists/trixie/InRelease`), seen.join('\n'));
  assert.ok(seen.includes('mirror authorized /debian/dists/trixie/InRelease'), seen.join('\n'));
  assert.ok(!seen.some((s) => s.includes('refused')), seen.join('\n'));
  const sources = readFileSync(join(paths.rootfs, 'etc/apt/sources.list'), 'utf8');
  assert.match(sources, /^deb http:\/\/127\.0\.0\.1:\d+\/debian trixie main$/m);
  assert.ok(!sources.includes(MIRROR_PW) && !sources.includes('mirror-user'), sources);
  assert.equal(existsSync(join(paths.rootfs, 'etc/apt/apt.conf.d/99mmdebstrap')), false);
  await run(removeCredentialsOp(work));
  assert.equal(existsSync(join(work, 'credentials')), false);
});
