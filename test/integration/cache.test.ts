// The stage cache keeps a root filesystem exactly: owners, modes, device nodes, hard links,
// symlinks, ACLs, extended attributes and file capabilities.
import { test } from 'node:test';
import { scratch } from '../helpers/tmp.ts';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, linkSync, mkdirSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync, truncateSync } from 'node:fs';
import { join } from 'node:path';
import { Cache } from '../../build/cache/cache.ts';
import { createRunner } from '../../build/core/exec.ts';

const sh = (cmd: string, args: string[]) => execFileSync(cmd, args).toString();

function specialTree(): string {
  const root = scratch('pihub-fidelity-');
  mkdirSync(join(root, 'dev'));
  mkdirSync(join(root, 'usr/bin'), { recursive: true });
  mkdirSync(join(root, 'tmp'));
  chmodSync(join(root, 'tmp'), 0o1777);
  sh('mknod', ['-m', '0666', join(root, 'dev/null'), 'c', '1', '3']);
  sh('mknod', ['-m', '0660', join(root, 'dev/sda'), 'b', '8', '0']);
  sh('mkfifo', [join(root, 'fifo')]);
  writeFileSync(join(root, 'usr/bin/ping'), Buffer.alloc(4096, 1));
  chmodSync(join(root, 'usr/bin/ping'), 0o755);
  sh('setcap', ['cap_net_raw+ep', join(root, 'usr/bin/ping')]);
  writeFileSync(join(root, 'usr/bin/su'), 'x');
  chmodSync(join(root, 'usr/bin/su'), 0o4755);
  writeFileSync(join(root, 'a'), 'same inode');
  linkSync(join(root, 'a'), join(root, 'b'));
  symlinkSync('usr/bin', join(root, 'bin'));
  symlinkSync('/nonexistent/target', join(root, 'dangling'));
  mkdirSync(join(root, 'home/alice'), { recursive: true });
  writeFileSync(join(root, 'home/alice/data'), 'mine');
  chownSync(join(root, 'home/alice'), 1000, 1000);
  chownSync(join(root, 'home/alice/data'), 1000, 1001);
  sh('setfacl', ['-m', 'u:1002:rwx', join(root, 'home/alice')]);
  sh('setfacl', ['-d', '-m', 'g:1003:rx', join(root, 'home/alice')]);
  sh('setfattr', ['-n', 'user.pihub', '-v', 'kept', join(root, 'a')]);
  writeFileSync(join(root, 'sparse'), '');
  truncateSync(join(root, 'sparse'), 64 * 1024 * 1024);
  return root;
}

/** Everything that must survive, as text: listing with owners, modes, sizes, link counts; caps; xattrs; ACLs. */
function describe(root: string): string {
  const listing = sh('find', [root, '-printf', '%P %y %U:%G %m %s %n %l\n']).split('\n').sort().join('\n');
  const devices = sh('find', [root, '-type', 'c', '-o', '-type', 'b', '-printf', '%P %Hr:%Hs? \n']);
  const majors = sh('stat', ['-c', '%n %t:%T', join(root, 'dev/null'), join(root, 'dev/sda')]).replaceAll(root, '');
  const caps = sh('getcap', ['-r', root]).replaceAll(root, '');
  const xattrs = sh('getfattr', ['-R', '-h', '-d', '-m', '-', '--absolute-names', root]).replaceAll(root, '');
  const acls = sh('getfacl', ['-R', '-p', root]).replaceAll(root, '');
  const inodes = sh('stat', ['-c', '%i', join(root, 'a'), join(root, 'b')]).split('\n');
  return [listing, devices.replaceAll(root, ''), majors, caps, xattrs, acls, `hardlink ${inodes[0] === inodes[1]}`].join('\n=====\n');
}

test('a restored snapshot is identical to the tree that was stored', { timeout: 120_000 }, async () => {
  const tree = specialTree();
  const cacheDir = scratch('pihub-cache-');
  const cache = new Cache(cacheDir);
  const runner = createRunner({ write: () => {} });
  const before = describe(tree);
  assert.match(before, /usr\/bin\/ping cap_net_raw=ep/);
  assert.match(before, /user:1002:rwx/);
  assert.match(before, /user\.pihub="kept"/);
  await cache.saveStage(runner, 'k1', '10-test', tree, 'save');
  assert.ok(cache.hasStage('k1'));
  const restored = scratch('pihub-restored-');
  await cache.restoreStage(runner, 'k1', restored, 'restore');
  // Saves and restores remember the tree beside it (restore.ts).
  for (const t of [tree, restored]) rmSync(`${t}.records`, { recursive: true, force: true });
  assert.equal(describe(restored).replaceAll(restored, ''), before.replaceAll(tree, ''));
  const list = cache.list();
  assert.equal(list.length, 1);
  assert.equal(list[0]!.label, '10-test');
});

test('an interrupted snapshot never becomes an entry, and LRU pruning keeps the newest', { timeout: 120_000 }, async () => {
  const cacheDir = scratch('pihub-cache-');
  const cache = new Cache(cacheDir, 1);
  const ac = new AbortController();
  const runner = createRunner({ write: () => {} }, ac.signal);
  const big = scratch('pihub-big-');
  execFileSync('dd', ['if=/dev/urandom', `of=${join(big, 'blob')}`, 'bs=1M', 'count=200', 'status=none']);
  setTimeout(() => ac.abort('SIGINT'), 150);
  await assert.rejects(cache.saveStage(runner, 'k2', 'big', big, 'save'), /interrupted/);
  assert.equal(cache.hasStage('k2'), false);
  assert.deepEqual(readdirSync(join(cacheDir, 'stages')), [], 'no partial file is left');

  const r2 = createRunner({ write: () => {} });
  const small = scratch('pihub-small-');
  writeFileSync(join(small, 'f'), 'x');
  await cache.saveStage(r2, 'old', 'a', small, 'save');
  await new Promise((r) => setTimeout(r, 20));
  await cache.saveStage(r2, 'new', 'b', small, 'save');
  rmSync(`${small}.records`, { recursive: true, force: true });
  // The limit is 1 byte: each save evicts least recently used entries, but never the one it wrote.
  assert.equal(cache.hasStage('old'), false);
  assert.equal(existsSync(cache.snapshotPath('old')), false);
  assert.equal(cache.hasStage('new'), true);
});

test('an entry cut short or with lost blocks (a machine crash) fails verification; a sound one passes', { timeout: 120_000 }, async () => {
  const cacheDir = scratch('pihub-cache-');
  const cache = new Cache(cacheDir);
  const runner = createRunner({ write: () => {} });
  const tree = scratch('pihub-tree-');
  execFileSync('dd', ['if=/dev/urandom', `of=${join(tree, 'blob')}`, 'bs=1M', 'count=8', 'status=none']);
  await cache.saveStage(runner, 'sound', 's', tree, 'save');
  await cache.saveStage(runner, 'cut', 's', tree, 'save');
  await cache.saveStage(runner, 'holey', 's', tree, 'save');
  assert.equal(await cache.verify('stage', 'sound'), undefined);
  const size = statSync(cache.snapshotPath('cut')).size;
  truncateSync(cache.snapshotPath('cut'), size - 4096);
  assert.equal(await cache.verify('stage', 'cut'), `snapshot has ${size - 4096} bytes instead of ${size}`);
  // Same size, a run of zeros where data was: what delayed allocation can leave after a crash.
  execFileSync('dd', ['if=/dev/zero', `of=${cache.snapshotPath('holey')}`, 'bs=4096', 'seek=100', 'count=16', 'conv=notrunc', 'status=none']);
  assert.equal(await cache.verify('stage', 'holey'), 'snapshot does not match its recorded sha256');
  cache.discard('stage', 'holey');
  assert.equal(cache.hasStage('holey'), false);
  assert.equal(existsSync(cache.snapshotPath('holey')), false);

  const out = scratch('pihub-out-');
  writeFileSync(join(out, 'x.img'), 'image data');
  writeFileSync(join(out, 'x.json'), '{}');
  await cache.saveImage('img', 'x.img', out, ['x.img', 'x.json']);
  assert.equal(await cache.verify('image', 'img'), undefined);
  writeFileSync(join(cache.imageDir('img'), 'x.img'), 'image dat');
  assert.equal(await cache.verify('image', 'img'), 'x.img has 9 bytes instead of 10');
  assert.equal(await cache.verify('image', 'nothing'), 'it has no record');
});
