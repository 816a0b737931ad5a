// The real command line: help, dry-run, and every bad-input case ends with a clear message,
// a non-zero exit code and nothing left behind.
import { test } from 'node:test';
import { scratch } from '../helpers/tmp.ts';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync, cpSync } from 'node:fs';
import { join } from 'node:path';
import { runPihub } from '../helpers/build.ts';
import { fakeMirror } from '../helpers/options.ts';
import { PROJECT_DIR } from '../../build/plan/inputs.ts';
import { sleep } from '../../ci/harness/vm.ts';
import { processStart } from '../../build/core/lock.ts';

function tmp(): string {
  return scratch('pihub-cli-');
}

function config(text: string): string {
  const file = join(tmp(), 'config.yaml');
  writeFileSync(file, text);
  return file;
}

async function fails(args: string[], code: number, pattern: RegExp): Promise<string> {
  const r = await runPihub(args);
  assert.equal(r.code, code, `exit code ${r.code}, stderr:\n${r.stderr}`);
  assert.match(r.stderr, pattern);
  assert.ok(!r.stderr.includes('internal error'), r.stderr);
  return r.stderr;
}

test('--help, build --help and --version', async () => {
  const help = await runPihub(['--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /pihub build \[options\]/);
  const build = await runPihub(['build', '--help']);
  assert.match(build.stdout, /--dry-run/);
  assert.match(build.stdout, /Exit codes: 0 built, 1 build failed, 2 bad input/);
  const version = await runPihub(['--version']);
  const pkg = JSON.parse(readFileSync(join(PROJECT_DIR, 'package.json'), 'utf8')) as { version: string };
  assert.equal(version.stdout.trim(), `pihub ${pkg.version}`);
  await fails(['biuld'], 2, /unknown command `biuld`/);
  await fails(['build', '--frobnicate'], 2, /Unknown option '--frobnicate'/);
});

test('dry-run of the default config prints the whole plan quickly and exits 0', async () => {
  const out = tmp();
  // An empty cache of its own: with the machine's cache warm, the plan would reuse every stage.
  const r = await runPihub(['build', '--dry-run', '--out', join(out, 'deploy'), '--work-dir', join(out, 'work'), '--cache-dir', join(tmp(), 'cache')]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /stage 1\/8 00-bootstrap/);
  assert.match(r.stdout, /stage 8\/8 99-finalise/);
  assert.match(r.stdout, /\$ genimage/);
  assert.deepEqual(readdirSync(out), [], 'dry-run created nothing');
});

test('config file missing', async () => {
  await fails(['build', '--config', '/nonexistent/pi.yaml', '--dry-run'], 2, /config file \/nonexistent\/pi\.yaml does not exist/);
});

test('invalid YAML names line and column', async () => {
  await fails(['build', '--config', config('hub:\n  port: 8000\n users: []\n'), '--dry-run'], 2, /config\.yaml:3:\d+: invalid YAML/);
});

test('an alias bomb and a __proto__ key are bad input (exit 2), not an internal error', async () => {
  const bomb = ['a: &a ["x","x","x","x","x","x","x","x","x"]', ...'bcdefgh'.split('').map((k, i) => `${k}: &${k} [${Array(9).fill(`*${'abcdefgh'[i]}`).join(',')}]`)].join('\n');
  const stderr = await fails(['build', '--config', config(bomb), '--dry-run'], 2, /config\.yaml: invalid YAML: its aliases \(\*name\) expand to far too much data/);
  assert.doesNotMatch(stderr, /\n\s+at /, 'no stack trace');
  await fails(['build', '--config', config('__proto__:\n  polluted: 1\n'), '--dry-run'], 2, /config\.yaml:1:1: `__proto__` cannot be a key/);
  await fails(['build', '--set', 'constructor.prototype.polluted=1', '--dry-run'], 2, /--set constructor\.prototype\.polluted=…: `constructor` cannot be a key/);
});

test('unknown key, wrong type and bad values', async () => {
  await fails(['build', '--config', config('hub:\n  prot: 8000\n'), '--dry-run'], 2, /config\.yaml:2:3: unknown key `prot` in `hub` \(did you mean `port`\?\)/);
  await fails(['build', '--config', config('hub:\n  port: abc\n'), '--dry-run'], 2, /`hub\.port`: must be a number \(got "abc"\)/);
  await fails(['build', '--set', 'hub.port=70000', '--dry-run'], 2, /--set hub\.port=70000: `hub\.port`: must be a TCP port from 1 to 65535/);
  await fails(['build', '--set', 'image.compression=rar', '--dry-run'], 2, /`image\.compression`: must be one of `xz`, `zstd`, `gzip`, `none`/);
  await fails(['build', '--set', 'hostname=bad_host', '--dry-run'], 2, /`hostname`: must be a valid host name/);
});

test('a stage file of an unknown kind', async () => {
  const stages = join(tmp(), 'stages');
  cpSync(join(PROJECT_DIR, 'stages'), stages, { recursive: true });
  writeFileSync(join(stages, '10-system', '05-install.sh'), '#!/bin/sh\n');
  await fails(['build', '--stages', stages, '--dry-run'], 2, /10-system\/05-install\.sh: unknown stage file; allowed in a stage: .*NN-run-chroot\.sh/);
});

test('not root when root is needed', async () => {
  const out = tmp();
  execFileSync('chmod', ['777', out]);
  let stderr = '';
  let code = 0;
  try {
    execFileSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, join(PROJECT_DIR, 'build/bin/pihub.js'), 'build', '--out', join(out, 'deploy'), '--work-dir', join(out, 'work'), '--cache-dir', join(out, 'cache')], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, HOME: out },
    });
  } catch (err) {
    const e = err as { status: number; stderr: Buffer };
    code = e.status;
    stderr = e.stderr.toString();
  }
  assert.equal(code, 1);
  assert.match(stderr, /pihub build needs root .*run it with sudo/);
  assert.deepEqual(readdirSync(out), [], 'nothing was created');
});

test('too little free disk', async () => {
  const mnt = join(tmp(), 'tiny');
  mkdirSync(mnt);
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64m', 'tmpfs', mnt]);
  try {
    await fails(['build', '--dry-run', '--work-dir', join(mnt, 'work'), '--out', join(mnt, 'deploy')], 1, /too little free disk for the work directory \(.*tiny\/work\): \d+ MiB free .* about 8\.0 GiB needed/);
    assert.deepEqual(readdirSync(mnt), []);
  } finally {
    execFileSync('umount', [mnt]);
  }
});

test('a missing host tool names the package (PATH without genimage)', async () => {
  const bin = tmp();
  // A PATH with everything but genimage: link the real tools one by one.
  for (const dir of ['/usr/local/bin', '/usr/bin', '/bin', '/usr/sbin', '/sbin']) {
    if (!existsSync(dir)) continue;
    for (const f of readdirSync(dir)) {
      if (f === 'genimage' || existsSync(join(bin, f))) continue;
      try {
        execFileSync('ln', ['-s', join(dir, f), join(bin, f)]);
      } catch {
        // duplicates across dirs
      }
    }
  }
  const r = await runPihub(['build', '--dry-run'], { env: { PATH: bin } });
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /missing host tool: `genimage`; install with `sudo apt-get install genimage`/);
});

test('a second build of one work tree, and a prune of a cache in use, stop at once naming the other process', async () => {
  const root = tmp();
  const other = (await import('node:child_process')).spawn('sleep', ['60'], { stdio: 'ignore' });
  try {
    const holder = { pid: other.pid, start: processStart(other.pid!), what: 'pihub build of pihub (config.yaml)', since: new Date().toISOString() };
    mkdirSync(join(root, 'work'), { recursive: true });
    writeFileSync(join(root, 'work', 'pihub.lock'), JSON.stringify(holder));
    const r = await fails(['build', '--work-dir', join(root, 'work'), '--out', join(root, 'deploy'), '--cache-dir', join(root, 'cache')], 1, new RegExp(`the work tree \\S+/work/pihub is in use by pihub build of pihub \\(config\\.yaml\\), pid ${other.pid}`));
    assert.doesNotMatch(r, /internal error/);
    mkdirSync(join(root, 'cache', 'locks'), { recursive: true });
    writeFileSync(join(root, 'cache', 'locks', `shared-${other.pid}-${holder.start}.json`), JSON.stringify(holder));
    for (const action of ['prune', 'clear']) {
      await fails(['cache', action, '--cache-dir', join(root, 'cache')], 1, new RegExp(`the cache \\S+/cache is in use by pihub build of pihub \\(config\\.yaml\\), pid ${other.pid}.*; run \`pihub cache ${action}\` again when it has finished`));
    }
  } finally {
    other.kill('SIGKILL');
  }
});

test('Ctrl-C in the middle of a step: exit 130, no mount left, nothing in deploy/', { timeout: 300_000 }, async () => {
  const root = tmp();
  const { spawn } = await import('node:child_process');
  const child = spawn(process.execPath, [join(PROJECT_DIR, 'build/bin/pihub.js'), 'build', '--no-cache', '--out', join(root, 'deploy'), '--work-dir', join(root, 'work'), '--cache-dir', join(root, 'cache')], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
  child.stdout.resume();
  const exited = new Promise<number>((r) => child.on('exit', (c) => r(c ?? -1)));
  // Wait until mmdebstrap is working inside the target (its chroot mounts exist), then interrupt.
  const log = join(root, 'deploy', 'pihub.log');
  const deadline = Date.now() + 240_000;
  while (Date.now() < deadline) {
    if (existsSync(log) && /installing essential packages|extracting archives/.test(readFileSync(log, 'utf8'))) break;
    await sleep(500);
  }
  assert.ok(Date.now() < deadline, 'the build never reached mmdebstrap');
  child.kill('SIGINT');
  const code = await exited;
  assert.equal(code, 130, stderr);
  assert.match(stderr, /interrupted by SIGINT; cleaned up; deploy\/ holds no partly written image/);
  const mounts = readFileSync('/proc/self/mounts', 'utf8').split('\n').filter((l) => l.includes(root));
  assert.deepEqual(mounts, [], 'a mount was left behind');
  assert.deepEqual(readdirSync(join(root, 'deploy')), ['pihub.log']);
  const leftover = execFileSync('ps', ['-eo', 'args']).toString().split('\n').filter((l) => l.includes(join(root, 'work')));
  assert.deepEqual(leftover, [], 'a process of the build is still running');
});

test('`pihub cache clear|prune|list` and a build refuse a --cache-dir that is not a pihub cache: nothing in it is removed, its mode is kept', { timeout: 120_000 }, async () => {
  const dir = tmp();
  chmodSync(dir, 0o755);
  mkdirSync(join(dir, 'images'));
  writeFileSync(join(dir, 'images', 'holiday.jpg'), 'photo');
  writeFileSync(join(dir, 'notes.txt'), 'mine');
  const refusal = new RegExp(`^pihub: the cache folder ${dir} \\(--cache-dir\\) is not a pihub cache: it holds \`notes\\.txt\` and has no CACHEDIR\\.TAG of pihub's; .*choose an empty or new folder\\n$`);
  for (const action of ['clear', 'prune', 'list']) await fails(['cache', action, '--cache-dir', dir], 2, refusal);
  const root = tmp();
  const mirror = config(`base:\n  mirror: ${fakeMirror()}\n`);
  for (const dry of [['--dry-run'], []]) {
    await fails(['build', '--config', mirror, ...dry, '--out', join(root, 'deploy'), '--work-dir', join(root, 'work'), '--cache-dir', dir], 2, refusal);
  }
  assert.equal(readFileSync(join(dir, 'images', 'holiday.jpg'), 'utf8'), 'photo');
  assert.deepEqual(readdirSync(dir).sort(), ['images', 'notes.txt']);
  assert.equal(statSync(dir).mode & 0o7777, 0o755, 'never chmod-ed');
  assert.deepEqual(readdirSync(root).filter((f) => f !== 'config.yaml'), [], 'the refused build left nothing');
  // An empty or new folder becomes a cache; `clear` of a folder with none says so and makes nothing.
  const none = join(tmp(), 'none');
  const r = await runPihub(['cache', 'clear', '--cache-dir', none]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^nothing to clear: \S+\/none holds no pihub cache\n$/);
  assert.equal(existsSync(none), false);
});

/** Run pihub; a run still going after `ms` is killed (a read blocked on a FIFO ignores SIGINT and SIGTERM). */
async function within(args: string[], ms = 30_000): Promise<{ code: number | null; stderr: string; hung: boolean }> {
  const { spawn } = await import('node:child_process');
  const child = spawn(process.execPath, [join(PROJECT_DIR, 'build/bin/pihub.js'), ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
  let hung = false;
  const timer = setTimeout(() => {
    hung = true;
    child.kill('SIGKILL');
  }, ms);
  const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
  clearTimeout(timer);
  return { code, stderr, hung };
}

test('a folder, a FIFO or /dev/zero where the CLI reads a file: exit 2 with one sentence naming it, no hang, no stack trace', { timeout: 600_000 }, async () => {
  const dir = tmp();
  const kinds = {
    folder: (p: string) => mkdirSync(p),
    FIFO: (p: string) => execFileSync('mkfifo', [p]),
    '/dev/zero': (p: string) => execFileSync('ln', ['-s', '/dev/zero', p]),
  };
  const says = { folder: /is a folder, not a file/, FIFO: /is a FIFO \(named pipe\), not a file/, '/dev/zero': /is a device, not a file/ };
  const image = join(dir, 'x.img');
  writeFileSync(image, 'not really an image');
  let n = 0;
  for (const [kind, make] of Object.entries(kinds) as [keyof typeof kinds, (p: string) => void][]) {
    const bad = (name: string) => {
      const p = join(dir, `${kind.replace('/dev/', '')}-${n++}-${name}`);
      make(p);
      return p;
    };
    // An overlay whose package list, and a profile whose keyring, is the bad file.
    const overlay = join(dir, `overlay-${n++}`);
    mkdirSync(overlay);
    writeFileSync(join(overlay, 'overlay.yaml'), 'description: test\n');
    make(join(overlay, kind === 'folder' ? 'README.md' : 'packages'));
    const profile = join(dir, `profile-${n++}.yaml`);
    writeFileSync(profile, `${readFileSync(join(PROJECT_DIR, 'bases/debian-trixie-arm64.yaml'), 'utf8').replace(/^(\s*requirements: )(\S+)/m, `$1${join(PROJECT_DIR, 'bases/requirements/python3.13.txt')}`)}
repositories:
  - name: extra
    uri: http://127.0.0.1:9/debian
    suites: [x]
    components: [main]
    keyring: ${bad('keyring.gpg')}
    fingerprints: [0123456789ABCDEF0123456789ABCDEF01234567]
`);
    const cert = bad('hub.crt');
    const cases: Array<[string[], RegExp]> = [
      [['build', '--dry-run', '--config', bad('config.yaml')], /^pihub: config file \S+config\.yaml /],
      [['build', '--dry-run', '--set', `wifi.psk.file=${bad('psk')}`], /^pihub: --set: `wifi\.psk` comes from the file \S+psk, which /],
      [['build', '--dry-run', '--overlay', overlay], /^pihub: overlay `overlay-\d+`: \S+(README\.md|packages) /],
      [['build', '--dry-run', '--set', `base=${bad('profile.yaml')}`], /^pihub: --set base=\S+: base profile \S+profile\.yaml /],
      [['build', '--dry-run', '--set', `base=${profile}`], /^pihub: --set base=\S+: base `profile-\d+`: repository `extra`: keyring \S+keyring\.gpg /],
      [['build', '--dry-run', '--overlay', 'https', '--set', 'hub.https.mode=files', '--set', `hub.https.cert_file=${cert}`, '--set', `hub.https.key_file=${cert}`], /^pihub: `hub\.https\.cert_file`: \S+hub\.crt /],
      [['boot', bad('image.img')], /^pihub: image \S+image\.img /],
      [['boot', image, '--userconf', bad('userconf.txt')], /^pihub: --userconf \S+userconf\.txt /],
      [['boot', image, '--boot-file', `${bad('user-data')}:user-data`], /^pihub: --boot-file \S+user-data /],
    ];
    for (const [args, who] of cases) {
      const r = await within(args);
      const what = `${kind}: pihub ${args.join(' ')}`;
      assert.ok(!r.hung, `${what}: still running after 30 s`);
      assert.equal(r.code, 2, `${what}: exit ${r.code}\n${r.stderr}`);
      assert.match(r.stderr, who, what);
      assert.match(r.stderr, says[kind], what);
      assert.match(r.stderr, /; give /, `${what}: says what is right`);
      assert.match(r.stderr, /^pihub: [^\n]+\n$/, `${what}: one line\n${r.stderr}`);
    }
  }
  // Where a folder is expected: a FIFO or a device is not one.
  for (const [args, who] of [
    [['build', '--dry-run', '--stages', '/dev/zero'], /^pihub: stage directory \/dev\/zero is not a folder; give --stages a folder/],
    [['build', '--dry-run', '--out', '/dev/zero'], /^pihub: --out \/dev\/zero is a device, not a folder; give a folder/],
    [['build', '--dry-run', '--work-dir', image], /^pihub: --work-dir \S+x\.img is a file, not a folder; give a folder/],
    [['manifest', '--deploy', image], /^pihub: \S+x\.img is not a folder pihub can read \(ENOTDIR\); give the folder of a build/],
  ] as Array<[string[], RegExp]>) {
    const r = await within(args);
    assert.ok(!r.hung && r.code === 2, `pihub ${args.join(' ')}: exit ${r.code}${r.hung ? ' (hung)' : ''}\n${r.stderr}`);
    assert.match(r.stderr, who);
    assert.match(r.stderr, /^pihub: [^\n]+\n$/);
  }
});
