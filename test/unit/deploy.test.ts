// Every file pihub writes into deploy/ and work/ (folders the user who ran sudo may own): a
// symlink, a hard link or a FIFO planted under its final or its temporary name is replaced,
// never followed, truncated, chmod-ed or chown-ed; a work tree someone else can change is refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, linkSync, lstatSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { build } from '../../build/build.ts';
import { placeInDeploy } from '../../build/deploy/deploy.ts';
import { holderFor, isLock, tryLock } from '../../build/core/lock.ts';
import { openNewFile, partialName, writeFileSafely } from '../../build/core/files.ts';
import { BuildLog } from '../../build/core/progress.ts';
import { Redactor } from '../../build/config/secrets.ts';
import { ICON_FILE, REPOSITORY_FILE, writeRepository } from '../../build/release/imager.ts';
import { fakeDeps } from '../helpers/fakes.ts';
import { buildOptions } from '../helpers/options.ts';
import { scratch } from '../helpers/tmp.ts';

const NOBODY = { uid: 65534, gid: 65534 };
const SECRET = 'root:$6$victim$hash:20000:0:99999:7:::\n';

/** Root-owned files standing in for /etc/shadow, one per planted name. */
function victims(n: number): string[] {
  const dir = scratch('pihub-victim-');
  return Array.from({ length: n }, (_, i) => {
    const f = join(dir, `shadow-${i}`);
    writeFileSync(f, SECRET);
    chmodSync(f, 0o640);
    chownSync(f, 0, 42);
    return f;
  });
}

function untouched(files: string[]): void {
  for (const f of files) {
    assert.equal(readFileSync(f, 'utf8'), SECRET, `${f} was written`);
    const st = statSync(f);
    assert.equal(st.mode & 0o7777, 0o640, `${f} was chmod-ed`);
    assert.deepEqual([st.uid, st.gid], [0, 42], `${f} was chown-ed`);
  }
}

/** Plant a symlink, a hard link or a FIFO at `path` (each kind in turn, by `i`); returns the victim, if any. */
function plant(path: string, i: number, victim: string): void {
  const kind = i % 3;
  if (kind === 0) symlinkSync(victim, path);
  else if (kind === 1) linkSync(victim, path);
  else execFileSync('mkfifo', [path]);
}

function ownFile(path: string, mode: number, owner: { uid: number; gid: number } = { uid: 0, gid: 0 }): void {
  const st = lstatSync(path);
  assert.ok(st.isFile(), `${path} is a file`);
  assert.equal(st.mode & 0o777, mode, `${path} mode`);
  assert.deepEqual([st.uid, st.gid], [owner.uid, owner.gid], `${path} owner`);
}

test('placeInDeploy: the image (private, the user\'s) and its public files replace what was planted under their final and temporary names', () => {
  const from = scratch('pihub-from-');
  const deploy = scratch('pihub-deploy-');
  chownSync(deploy, NOBODY.uid, NOBODY.gid);
  const files = ['x.img.zst', 'x.img.bmap', 'x.sha256', 'x.info', 'x.json', 'x.spdx.json'];
  for (const f of files) writeFileSync(join(from, f), `${f}\n`);
  const v = victims(files.length * 2);
  files.forEach((f, i) => {
    plant(join(deploy, f), i, v[2 * i]!);
    plant(partialName(join(deploy, f)), i + 1, v[2 * i + 1]!);
  });
  placeInDeploy(from, files, deploy, new Set(['x.img.zst']), NOBODY);
  untouched(v);
  ownFile(join(deploy, 'x.img.zst'), 0o600, NOBODY);
  for (const f of files.slice(1)) ownFile(join(deploy, f), 0o644);
  for (const f of files) assert.equal(readFileSync(join(deploy, f), 'utf8'), `${f}\n`);
  assert.deepEqual(readdirSync(deploy).sort(), [...files].sort(), 'no temporary name is left');
});

test('placeInDeploy from another file system (a copy, not a link) replaces planted names too, and keeps the holes of a sparse image', () => {
  const from = join('/dev/shm', basename(scratch('pihub-shm-')));
  mkdirSync(from);
  try {
    const deploy = scratch('pihub-deploy-');
    const image = join(from, 'x.img');
    writeFileSync(image, 'start');
    execFileSync('truncate', ['-s', '64M', image]);
    const [v1, v2] = victims(2);
    symlinkSync(v1!, join(deploy, 'x.img'));
    symlinkSync(v2!, partialName(join(deploy, 'x.img')));
    placeInDeploy(from, ['x.img'], deploy, new Set(['x.img']), NOBODY);
    untouched([v1!, v2!]);
    ownFile(join(deploy, 'x.img'), 0o600, NOBODY);
    const st = statSync(join(deploy, 'x.img'));
    assert.equal(st.size, 64 * 1024 ** 2);
    assert.ok(st.blocks * 512 < 8 * 1024 ** 2, `a copy of a sparse image stays sparse (${st.blocks} blocks)`);
  } finally {
    execFileSync('rm', ['-rf', from]);
  }
});

test('writeRepository: rpi-imager.json and its icon replace planted names, owned by the user who ran sudo', async () => {
  const dir = scratch('pihub-repo-');
  const image = 'x-2026-01-02-trixie-arm64.img';
  writeFileSync(join(dir, image), 'raw image');
  const sha = execFileSync('sha256sum', [join(dir, image)]).toString().split(' ')[0]!;
  writeFileSync(join(dir, 'x-2026-01-02-trixie-arm64.json'), JSON.stringify({ name: 'x', date: '2026-01-02', suite: 'trixie', architecture: 'arm64', image, file: image, raw_sha256: sha, sha256: sha, size: 9, hub: { port: 8000 }, compression: 'none', bmap: 'x.img.bmap', data_bytes: 9, layout: { boot: { offset: 1, size: 1 }, root: { offset: 2, size: 1 }, total: 9 }, packages: 1 }));
  const v = victims(4);
  [REPOSITORY_FILE, ICON_FILE].forEach((f, i) => {
    plant(join(dir, f), i, v[2 * i]!);
    plant(partialName(join(dir, f)), i + 2, v[2 * i + 1]!);
  });
  const r = await writeRepository(dir, { owner: NOBODY });
  untouched(v);
  assert.equal(r.entries.length, 1);
  ownFile(r.file, 0o644, NOBODY);
  ownFile(r.icon, 0o644, NOBODY);
  assert.match(readFileSync(r.file, 'utf8'), /"os_list"/);
});

test('writeRepository skips a planted manifest that is a FIFO, a symlink, or names a file outside the folder', { timeout: 10_000 }, async () => {
  const dir = scratch('pihub-repo-');
  const image = 'x-2026-01-02-trixie-arm64.img';
  writeFileSync(join(dir, image), 'raw image');
  const sha = execFileSync('sha256sum', [join(dir, image)]).toString().split(' ')[0]!;
  const m = { name: 'x', date: '2026-01-02', suite: 'trixie', architecture: 'arm64', image, file: image, raw_sha256: sha, sha256: sha, size: 9, hub: { port: 8000 }, compression: 'none', bmap: 'x.img.bmap', data_bytes: 9, layout: { boot: { offset: 1, size: 1 }, root: { offset: 2, size: 1 }, total: 9 }, packages: 1 };
  writeFileSync(join(dir, 'x-2026-01-02-trixie-arm64.json'), JSON.stringify(m));
  execFileSync('mkfifo', [join(dir, 'fifo.json')]);
  const elsewhere = join(scratch('pihub-elsewhere-'), 'y.json');
  writeFileSync(elsewhere, JSON.stringify({ ...m, name: 'y' }));
  symlinkSync(elsewhere, join(dir, 'y.json'));
  writeFileSync(join(dir, 'z.json'), JSON.stringify({ ...m, name: 'z', file: '../../../etc/shadow' }));
  const r = await writeRepository(dir, { verify: true });
  assert.deepEqual(r.entries.map((e) => e.name.split(':')[0]), ['x']);
});

test('the build log replaces what was planted under its name, is private while written, and is the user\'s when closed', async () => {
  const deploy = scratch('pihub-deploy-');
  const [v1, v2] = victims(2);
  symlinkSync(v1!, join(deploy, 'pihub.log'));
  linkSync(v2!, partialName(join(deploy, 'pihub.log')));
  const log = new BuildLog(join(deploy, 'pihub.log'), new Redactor(), NOBODY);
  log.note('hello');
  ownFile(join(deploy, 'pihub.log'), 0o600);
  await log.close();
  untouched([v1!, v2!]);
  ownFile(join(deploy, 'pihub.log'), 0o600, NOBODY);
  assert.match(readFileSync(join(deploy, 'pihub.log'), 'utf8'), /\] hello\n$/);
  assert.deepEqual(readdirSync(deploy), ['pihub.log']);
});

test('a folder where pihub writes a file is refused with one sentence (exit 2), and nothing is left beside it', () => {
  const deploy = scratch('pihub-deploy-');
  mkdirSync(join(deploy, 'pihub.log', 'inside'), { recursive: true });
  assert.throws(() => openNewFile(join(deploy, 'pihub.log'), { mode: 0o600 }), (err: Error & { exitCode?: number }) => {
    assert.match(err.message, /pihub\.log is a folder, where pihub writes a file; remove it, or give pihub another folder \(--out, --work-dir\)$/);
    assert.equal(err.exitCode, 2);
    return true;
  });
  assert.throws(() => writeFileSafely(join(deploy, 'pihub.log'), 'x', { mode: 0o644 }), /is a folder, where pihub writes a file/);
  assert.deepEqual(readdirSync(deploy), ['pihub.log']);
});

test('a lock file in work/: a symlink planted under its temporary name is not written through; a FIFO under its name does not block', { timeout: 10_000 }, () => {
  const work = scratch('pihub-work-');
  const [v] = victims(1);
  const lock = join(work, 'pihub.lock');
  symlinkSync(v!, `${lock}.tmp-${process.pid}`);
  execFileSync('mkfifo', [lock]);
  const got = tryLock(lock, holderFor('test'));
  assert.ok(isLock(got));
  untouched([v!]);
  ownFile(lock, 0o644);
  got.update({ ...holderFor('test'), keys: ['k'] });
  assert.deepEqual(JSON.parse(readFileSync(lock, 'utf8')).keys, ['k']);
  got.release();
  assert.deepEqual(readdirSync(work), []);
});

test('a build refuses a work tree that another user owns, anyone may write, or that is a symlink (exit 2, one sentence), and writes nothing', async () => {
  for (const [how, expect] of [['owner', /belongs to uid 65534/], ['mode', /can be written by everyone \(mode 0777\)/], ['symlink', /is a symbolic link/]] as const) {
    const o = buildOptions();
    const tree = join(o.workDir, 'pihub');
    if (how === 'symlink') {
      mkdirSync(o.workDir, { recursive: true });
      symlinkSync(scratch('pihub-elsewhere-'), tree);
    } else {
      mkdirSync(tree, { recursive: true });
      if (how === 'owner') chownSync(tree, 65534, 65534);
      else chmodSync(tree, 0o777);
    }
    await assert.rejects(build(o, fakeDeps()), (err: Error & { exitCode?: number }) => {
      assert.equal(err.exitCode, 2);
      assert.match(err.message, new RegExp(`^--work-dir: ${tree} ${expect.source}; pihub works in it as root, so only root may change it: remove it \\(pihub makes it again\\) or give another --work-dir$`));
      return true;
    });
    assert.equal(existsSync(o.outDir), false, 'no log was started');
    assert.deepEqual(readdirSync(o.workDir), ['pihub'], 'the lock was given back');
  }
});

test('a build whose log name in --out is a folder stops before it makes anything (exit 2, one sentence)', async () => {
  const o = buildOptions();
  mkdirSync(join(o.outDir, 'pihub.log'), { recursive: true });
  for (const dryRun of [true, false]) {
    await assert.rejects(build({ ...o, dryRun }, fakeDeps()), (err: Error & { exitCode?: number }) => {
      assert.equal(err.exitCode, 2);
      assert.equal(err.message, `${join(o.outDir, 'pihub.log')} is a folder, where pihub writes its build log; remove it, or give another --out`);
      return true;
    });
  }
  assert.equal(existsSync(o.workDir), false);
  assert.equal(existsSync(o.cacheDir), false);
});
