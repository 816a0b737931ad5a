// Restoring only what changed since a tree was a snapshot must give exactly what a full
// restore gives: contents, types, owners, modes, times, hard links, device numbers, extended
// attributes, ACLs and file capabilities. Real tar, find, getfattr and setfattr on a small tree.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { appendFileSync, chmodSync, chownSync, existsSync, linkSync, mkdirSync, renameSync, rmSync, symlinkSync, unlinkSync, writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { scratch } from '../helpers/tmp.ts';
import { Cache, restoreCommand } from '../../build/cache/cache.ts';
import { recordsDir, restoreChanges } from '../../build/cache/restore.ts';
import { createRunner } from '../../build/core/exec.ts';

const sh = (cmd: string, args: string[], cwd?: string) => execFileSync(cmd, args, { cwd }).toString();

function tree(): string {
  const root = scratch('pihub-restore-tree-');
  for (const d of ['dev', 'usr/bin', 'usr/lib/x', 'etc/a', 'var/lib/gone/deep', 'var/only', 'home/alice', 'tmp', 'opt/moved', 'srv/a/moved', 'srv/b/moved']) mkdirSync(join(root, d), { recursive: true });
  chmodSync(join(root, 'tmp'), 0o1777);
  sh('mknod', ['-m', '0666', join(root, 'dev/null'), 'c', '1', '3']);
  sh('mkfifo', [join(root, 'etc/fifo')]);
  writeFileSync(join(root, 'usr/bin/ping'), Buffer.alloc(4096, 1));
  chmodSync(join(root, 'usr/bin/ping'), 0o755);
  sh('setcap', ['cap_net_raw+ep', join(root, 'usr/bin/ping')]);
  writeFileSync(join(root, 'usr/bin/su'), 'su');
  chmodSync(join(root, 'usr/bin/su'), 0o4755);
  for (const f of ['etc/hostname', 'etc/a/one', 'etc/a/two', 'usr/lib/x/lib.so', 'var/lib/gone/deep/f', 'var/only/f', 'opt/moved/kept']) writeFileSync(join(root, f), `${f}\n`);
  writeFileSync(join(root, 'usr/lib/x/same-size'), 'abcdef\n');
  // Hard links: three names of one file, and a pair whose first name is inside a directory that gets moved.
  writeFileSync(join(root, 'usr/bin/python3.13'), 'python');
  linkSync(join(root, 'usr/bin/python3.13'), join(root, 'usr/bin/python3'));
  linkSync(join(root, 'usr/bin/python3.13'), join(root, 'usr/lib/x/python'));
  writeFileSync(join(root, 'opt/moved/linked'), 'linked');
  linkSync(join(root, 'opt/moved/linked'), join(root, 'usr/lib/linked'));
  // Whichever of srv/a and srv/b tar meets first, one pair has its first name in a moved directory.
  writeFileSync(join(root, 'srv/a/moved/f1'), 'f1');
  linkSync(join(root, 'srv/a/moved/f1'), join(root, 'srv/b/f1'));
  writeFileSync(join(root, 'srv/b/moved/f2'), 'f2');
  linkSync(join(root, 'srv/b/moved/f2'), join(root, 'srv/a/f2'));
  symlinkSync('usr/bin', join(root, 'bin'));
  symlinkSync('hostname', join(root, 'etc/link'));
  writeFileSync(join(root, 'home/alice/data'), 'mine');
  chownSync(join(root, 'home/alice'), 1000, 1000);
  chownSync(join(root, 'home/alice/data'), 1000, 1001);
  sh('setfacl', ['-m', 'u:1002:rwx', join(root, 'home/alice')]);
  sh('setfattr', ['-n', 'user.pihub', '-v', 'kept', join(root, 'etc/hostname')]);
  sh('setfattr', ['-n', 'user.dir', '-v', 'dir', join(root, 'etc/a')]);
  writeFileSync(Buffer.concat([Buffer.from(`${root}/caf`), Buffer.from([0xe9]), Buffer.from('-not-utf8')]), 'x');
  writeFileSync(join(root, 'café'), 'utf-8 name');
  writeFileSync(join(root, 'sparse'), '');
  execFileSync('truncate', ['-s', '16M', join(root, 'sparse')]);
  // Old times, as packages have them.
  sh('find', [root, '-exec', 'touch', '-h', '-d', '2024-01-02 03:04:05.123456789', '{}', '+']);
  return root;
}

/** Every property a restore must reproduce, as text. */
function describe(root: string): string {
  const listing = sh('find', ['.', '-printf', '%p %y %U:%G %m %s %n %T@ %l\n'], root).split('\n').sort().join('\n');
  const links = sh('find', ['.', '-type', 'f', '-links', '+1', '-printf', '%i %p\n'], root).split('\n').filter(Boolean);
  const groups = new Map<string, string[]>();
  for (const l of links) {
    const [ino, p] = [l.slice(0, l.indexOf(' ')), l.slice(l.indexOf(' ') + 1)];
    groups.set(ino, [...(groups.get(ino) ?? []), p].sort());
  }
  const sums = sh('find', ['.', '-type', 'f', '-exec', 'sha256sum', '{}', '+'], root).split('\n').sort().join('\n');
  const devices = sh('find', ['.', '-type', 'c', '-exec', 'stat', '-c', '%n %t:%T', '{}', '+'], root);
  const caps = sh('getcap', ['-r', '.'], root);
  const xattrs = sh('getfattr', ['-R', '-h', '-d', '-m', '-', '.'], root);
  return [listing, [...groups.values()].map((g) => g.join(' ')).sort().join('\n'), sums, devices, caps, xattrs].join('\n=====\n');
}

function mutate(root: string): void {
  const p = (x: string) => join(root, x);
  writeFileSync(p('etc/hostname'), 'kitchen\n');                          // content, and its xattr goes
  writeFileSync(p('usr/lib/x/same-size'), 'ABCDEF\n');                   // same size, same mtime as before
  sh('touch', ['-d', '2024-01-02 03:04:05.123456789', p('usr/lib/x/same-size')]);
  chmodSync(p('usr/bin/su'), 0o755);                                      // mode only
  chownSync(p('etc/a/one'), 1000, 1000);                                  // owner only
  sh('setfattr', ['-x', 'user.dir', p('etc/a')]);                         // a directory's xattr
  sh('setfattr', ['-n', 'user.new', '-v', 'added', p('usr/lib')]);        // a new xattr on a directory
  sh('setfacl', ['-b', p('home/alice')]);                                 // an ACL removed
  sh('setcap', ['-r', p('usr/bin/ping')]);                                // a capability removed
  chmodSync(p('tmp'), 0o755);                                             // a directory's mode
  unlinkSync(p('etc/a/two'));                                             // removed
  rmSync(p('var/lib/gone'), { recursive: true });                         // a whole tree removed
  writeFileSync(p('etc/new'), 'new');                                     // added
  mkdirSync(p('srv/new/deeper'), { recursive: true });                    // added tree
  writeFileSync(p('srv/new/deeper/f'), 'f');
  unlinkSync(p('usr/bin/python3'));                                       // one hard link replaced
  writeFileSync(p('usr/bin/python3'), 'other');
  linkSync(p('usr/lib/x/lib.so'), p('usr/lib/x/lib.so.1'));               // a new hard link
  unlinkSync(p('etc/link'));                                              // symlink retargeted
  symlinkSync('a/one', p('etc/link'));
  unlinkSync(p('etc/fifo'));                                              // fifo became a directory
  mkdirSync(p('etc/fifo'));
  renameSync(p('opt/moved'), p('opt/elsewhere'));                         // a directory moved away…
  mkdirSync(p('opt/moved'));                                              // …and a new one in its place
  for (const d of ['srv/a', 'srv/b']) renameSync(p(`${d}/moved`), p(`${d}/away`));
  writeFileSync(p('var/only/f'), 'changed in place, nothing else in its directory\n');
  appendFileSync(p('café'), '!');
  sh('setfattr', ['-n', 'user.x', '-v', '1', p('.')]);                    // the root itself
}

test('restoring only the changes gives exactly what a full restore gives', { timeout: 120_000 }, async () => {
  const root = tree();
  after(() => rmSync(recordsDir(root), { recursive: true, force: true }));
  const cache = new Cache(scratch('pihub-restore-cache-'));
  const notes: string[] = [];
  const runner = createRunner({ write: () => {} });
  await cache.saveStage(runner, 'k', '20-test', root, 'save');
  assert.ok(existsSync(join(recordsDir(root), 'k.walk')), 'saving records the tree');
  const full = scratch('pihub-restore-full-');
  await runner.run(restoreCommand(full, cache.snapshotPath('k')));
  const expected = describe(full);
  assert.equal(describe(root), expected, 'the snapshot holds the tree');

  mutate(root);
  assert.notEqual(describe(root), expected);
  await cache.restoreStage(runner, 'k', root, 'restore', (l) => notes.push(l));
  assert.match(notes.join('\n'), /^restoring \d+ of \d+ entries/m, 'the quick way was taken');
  assert.equal(describe(root), expected);

  // Again from the record made by that restore, then a record that no longer fits the clock.
  mutate(root);
  notes.length = 0;
  await cache.restoreStage(runner, 'k', root, 'restore', (l) => notes.push(l));
  assert.match(notes.join('\n'), /^restoring /m);
  assert.equal(describe(root), expected);
  const meta = join(recordsDir(root), 'k.json');
  writeFileSync(meta, readFileSync(meta, 'utf8').replace(/"clockOffset":[-\d.e]+/, '"clockOffset":1'));
  writeFileSync(join(root, 'etc/hostname'), 'changed again\n');
  assert.equal(await restoreChanges(runner, root, 'k', restoreCommand(root, cache.snapshotPath('k')), 'restore'), false, 'a stepped clock means a full restore');
  notes.length = 0;
  await cache.restoreStage(runner, 'k', root, 'restore', (l) => notes.push(l));
  assert.equal(notes.length, 0, 'restored in full');
  assert.equal(describe(root), expected);
});
