// Two pihub processes at once: work tree alone, cache shared (clear/prune alone), apt's package
// cache one at a time; locks of processes that are gone are taken over.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describeHolder, holderFor, isLock, pidNamespace, processStart, SharedLock, tryLock, waitLock, type LockHolder } from '../../build/core/lock.ts';
import { Cache } from '../../build/cache/cache.ts';
import { build } from '../../build/build.ts';
import { UserError } from '../../build/core/errors.ts';
import { formatCommand } from '../../build/core/exec.ts';
import { FakeRunner, fakeDeps } from '../helpers/fakes.ts';
import { buildOptions } from '../helpers/options.ts';
import { PROJECT_DIR } from '../../build/plan/inputs.ts';
import { scratch } from '../helpers/tmp.ts';

const children: ChildProcess[] = [];
after(() => {
  for (const c of children) c.kill('SIGKILL');
});

/** Another live process, as the holder of a lock. */
function otherProcess(what = 'pihub build of other (other.yaml)'): { holder: LockHolder; child: ChildProcess } {
  const child = spawn('sleep', ['60'], { stdio: 'ignore' });
  children.push(child);
  return { child, holder: { pid: child.pid!, start: processStart(child.pid!), what, since: '2026-01-10T09:00:00.000Z' } };
}

/** A process that has exited. */
function goneProcess(): LockHolder {
  const r = spawnSync('sh', ['-c', 'echo $$']);
  const pid = Number(r.stdout.toString().trim());
  return { pid, start: 1, what: 'pihub build of gone', since: '2026-01-10T09:00:00.000Z' };
}

const writeHolder = (path: string, h: LockHolder) => {
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, JSON.stringify(h));
};

test('an exclusive lock: free → taken; held by a live process → its holder; held by a gone or reused pid → taken over', () => {
  const dir = scratch('pihub-lock-');
  const me = holderFor('test');
  const a = tryLock(join(dir, 'a.lock'), me);
  assert.ok(isLock(a));
  assert.equal(JSON.parse(readFileSync(join(dir, 'a.lock'), 'utf8')).pid, process.pid);
  a.release();
  assert.equal(existsSync(join(dir, 'a.lock')), false);

  const { holder } = otherProcess();
  writeHolder(join(dir, 'b.lock'), holder);
  const b = tryLock(join(dir, 'b.lock'), me);
  assert.ok(!isLock(b));
  assert.equal(b.pid, holder.pid);

  writeHolder(join(dir, 'c.lock'), goneProcess());
  assert.ok(isLock(tryLock(join(dir, 'c.lock'), me)), 'a lock of a gone process is taken over');
  // The pid lives, but it is another process than the one that took the lock.
  writeHolder(join(dir, 'd.lock'), { ...holder, start: (holder.start ?? 0) + 12345 });
  assert.ok(isLock(tryLock(join(dir, 'd.lock'), me)), 'a reused pid does not hold the lock');
});

test('waitLock waits for the holder to go, says once whom it waits for, and stops on abort', async () => {
  const dir = scratch('pihub-lock-');
  const { holder, child } = otherProcess();
  writeHolder(join(dir, 'debs.lock'), holder);
  const waits: LockHolder[] = [];
  setTimeout(() => child.kill('SIGKILL'), 300);
  const lock = await waitLock(join(dir, 'debs.lock'), holderFor('test'), (h) => waits.push(h), undefined, 50);
  assert.deepEqual(waits.map((h) => h.pid), [holder.pid]);
  lock.release();

  const other = otherProcess();
  writeHolder(join(dir, 'e.lock'), other.holder);
  const ac = new AbortController();
  setTimeout(() => ac.abort('SIGINT'), 200);
  await assert.rejects(waitLock(join(dir, 'e.lock'), holderFor('test'), () => {}, ac.signal, 50), /stopped while waiting for pihub build of other/);
});

test('shared and exclusive: builds share, clear/prune is alone, each refuses while the other kind is live', () => {
  const dir = join(scratch('pihub-lock-'), 'locks');
  const locks = new SharedLock(dir);
  const { holder, child } = otherProcess();
  writeHolder(join(dir, `shared-${holder.pid}-${holder.start}.json`), holder);
  const mine = locks.tryShared(holderFor('pihub build of mine'));
  assert.ok(isLock(mine), 'two builds share the cache');
  const ex = locks.tryExclusive(holderFor('pihub cache prune'));
  assert.ok(!isLock(ex) && ex.pid === holder.pid, 'prune refused while another build is live');
  mine.release();
  child.kill('SIGKILL');
  spawnSync('sleep', ['0.2']);
  const ex2 = locks.tryExclusive(holderFor('pihub cache prune'));
  assert.ok(isLock(ex2), 'a gone build does not hold the cache');
  assert.deepEqual(locks.sharedHolders(), [], 'and its file is cleaned up');
  ex2.release();

  const pruner = otherProcess('pihub cache clear');
  writeHolder(join(dir, 'exclusive.json'), pruner.holder);
  const refused = locks.tryShared(holderFor('pihub build of mine'));
  assert.ok(!isLock(refused) && refused.what === 'pihub cache clear');
  assert.deepEqual(locks.sharedHolders(), [], 'the refused build leaves no shared file');
});

test('a build\'s LRU prune leaves the entries other running builds will restore', () => {
  const cache = new Cache(scratch('pihub-cache-'), 1);
  cache.ensure();
  for (const key of ['a', 'b', 'c']) {
    writeFileSync(cache.snapshotPath(key), 'x'.repeat(10));
    writeFileSync(join(cache.stagesDir, `${key}.json`), JSON.stringify({ key, kind: 'stage', label: key, created: '', lastUsed: `2026-01-0${key.charCodeAt(0) - 96}`, bytes: 10 }));
  }
  const { holder } = otherProcess();
  writeHolder(join(cache.dir, 'locks', `shared-${holder.pid}-${holder.start}.json`), { ...holder, keys: ['a'] });
  const removed = cache.prune(1, 'c').map((e) => e.key);
  assert.deepEqual(removed, ['b']);
  assert.ok(cache.hasStage('a'), 'in use by the other build');
  assert.ok(cache.hasStage('c'), 'just written');
});

/** The native tools root's mmdebstrap (made once per base) succeeds; anything else is refused. */
const toolsOnly = () => new FakeRunner().expect((c) => formatCommand(c).includes('--include=python3-minimal'));

test('a build refuses a work tree another live build uses, naming it; takes over a gone one\'s lock; releases its own', async () => {
  const o = buildOptions();
  const deps = () => fakeDeps(toolsOnly());
  const { holder } = otherProcess('pihub build of pihub (config.yaml)');
  writeHolder(join(o.workDir, 'pihub.lock'), holder);
  await assert.rejects(build(o, deps()), (err: Error) => {
    assert.ok(err instanceof UserError);
    assert.match(err.message, new RegExp(`^the work tree \\S+/work/pihub is in use by pihub build of pihub \\(config\\.yaml\\), pid ${holder.pid}, since 2026-01-10 09:00:00 UTC; wait for it to finish, or give this build another --work-dir$`));
    return true;
  });
  assert.equal(existsSync(o.outDir), false, 'nothing was started');

  writeHolder(join(o.workDir, 'pihub.lock'), goneProcess());
  // Past the locks, the fake runner refuses the first command: the build got that far.
  await assert.rejects(build(o, deps()), /FakeRunner: unexpected command: unshare .* mmdebstrap --mode=chrootless/);
  assert.equal(existsSync(join(o.workDir, 'pihub.lock')), false, 'the build released its lock');
  assert.deepEqual(new SharedLock(join(o.cacheDir, 'locks')).sharedHolders(), []);
  assert.equal(existsSync(join(o.cacheDir, 'locks', `shared-${process.pid}-${processStart(process.pid)}.json`)), false);
});

test('a build refuses a cache that `pihub cache clear` has alone', async () => {
  const o = buildOptions();
  const { holder } = otherProcess('pihub cache clear');
  writeHolder(join(o.cacheDir, 'locks', 'exclusive.json'), holder);
  await assert.rejects(build(o, fakeDeps()), new RegExp(`the cache \\S+ is being changed by pihub cache clear, pid ${holder.pid}, .*build again when it has finished`));
  assert.equal(existsSync(join(o.workDir, 'pihub.lock')), false, 'the work tree lock is given back');
});

test('a step that runs apt waits while another build\'s apt has the package cache', async () => {
  const o = buildOptions({});
  const { holder, child } = otherProcess();
  new Cache(o.cacheDir).ensure();
  writeHolder(join(o.cacheDir, 'debs', 'trixie-arm64.lock'), holder);
  let firstCommandAt = 0;
  const runner = toolsOnly().expect(() => {
    firstCommandAt ||= Date.now();
    return false;
  });
  const started = Date.now();
  setTimeout(() => child.kill('SIGKILL'), 1500);
  await assert.rejects(build(o, fakeDeps(runner)), /unexpected command: unshare .* mmdebstrap --mode=chrootless/);
  assert.ok(firstCommandAt - started >= 1400, `mmdebstrap started after ${firstCommandAt - started} ms, before the other build let go`);
  assert.match(readFileSync(join(o.outDir, 'pihub.log'), 'utf8'), new RegExp(`waiting for pihub build of other \\(other\\.yaml\\), pid ${holder.pid}.*: it is using \\S+/debs/trixie-arm64`));
});

/** A process in a PID namespace of its own (as in a container): its pid there is 1. */
/** Kill the boxed process and wait until it is gone (its unshare's death reaches it a moment later). */
async function stop(box: { child: ChildProcess; hostPid: number }): Promise<void> {
  process.kill(box.hostPid, 'SIGKILL');
  box.child.kill('SIGKILL');
  const gone = () => {
    try {
      return /^\S+ \(.*\) [ZX] /.test(readFileSync(`/proc/${box.hostPid}/stat`, 'utf8'));
    } catch {
      return true;
    }
  };
  for (let i = 0; i < 250 && !gone(); i++) await new Promise((r) => setTimeout(r, 20));
}

async function inOwnNamespace(): Promise<{ holder: LockHolder; child: ChildProcess; hostPid: number }> {
  const child = spawn('unshare', ['--pid', '--fork', '--kill-child', 'sleep', '60'], { stdio: 'ignore' });
  children.push(child);
  let hostPid = 0;
  for (let i = 0; i < 100 && !hostPid; i++) {
    await new Promise((r) => setTimeout(r, 20));
    try {
      hostPid = Number(readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8').trim().split(' ')[0]) || 0;
    } catch {
      // not forked yet
    }
  }
  assert.ok(hostPid, 'unshare started its child');
  for (let i = 0; i < 100 && pidNamespace(hostPid) === pidNamespace('self'); i++) await new Promise((r) => setTimeout(r, 20));
  const here = holderFor('x');
  children.push({ kill: () => { try { process.kill(hostPid, 'SIGKILL'); } catch { /* gone */ } } } as unknown as ChildProcess);
  return { child, hostPid, holder: { ...here, pid: 1, start: processStart(hostPid), pidns: pidNamespace(hostPid), what: 'pihub build of boxed (box.yaml)', since: '2026-01-10T09:00:00.000Z' } };
}

test('a holder in another PID namespace (a container): its pid is looked up there, never here; a live one keeps its lock, a gone one loses it', async () => {
  const dir = scratch('pihub-lock-');
  const box = await inOwnNamespace();
  const { holder } = box;
  assert.notEqual(holder.pidns, pidNamespace('self'));
  writeHolder(join(dir, 'box.lock'), holder);
  const got = tryLock(join(dir, 'box.lock'), holderFor('test'));
  assert.ok(!isLock(got), 'pid 1 here is init, not the holder; the holder runs: the lock is kept');
  assert.match(describeHolder(got), new RegExp(`^pihub build of boxed \\(box\\.yaml\\), pid 1 in another PID namespace \\(pid:\\[${holder.pidns}\\]: a container, or the host of this one\\), since 2026-01-10 09:00:00 UTC$`));
  await stop(box);
  // Seen from the initial namespace, a namespace with no process left is gone with its holder.
  assert.equal(pidNamespace('self'), 0xeffffffc, 'this test runs in the initial PID namespace');
  assert.ok(isLock(tryLock(join(dir, 'box.lock'), holderFor('test'))), 'the holder is gone: its lock is taken over');
});

test('a lock of an earlier boot is taken over even when its pid and start time match a live process; one of another machine is kept, saying how to free it', () => {
  const dir = scratch('pihub-lock-');
  const { holder } = otherProcess();
  const me = holderFor('x');
  writeHolder(join(dir, 'reboot.lock'), { ...holder, boot: '00000000-0000-0000-0000-000000000000', pidns: me.pidns, host: me.host });
  assert.ok(isLock(tryLock(join(dir, 'reboot.lock'), holderFor('test'))), 'its boot is over');
  writeHolder(join(dir, 'far.lock'), { ...holder, boot: '00000000-0000-0000-0000-000000000000', pidns: me.pidns, host: 'other-machine' });
  const far = tryLock(join(dir, 'far.lock'), holderFor('test'));
  assert.ok(!isLock(far), 'another machine sharing the folder: never taken');
  assert.equal(
    describeHolder(far),
    `pihub build of other (other.yaml), pid ${holder.pid} on the machine other-machine, since 2026-01-10 09:00:00 UTC (pihub cannot see from here whether it still runs; if it does not, remove ${join(dir, 'far.lock')})`,
  );
});

test('from inside a container (its own PID and /proc), the host\'s holder cannot be seen: its lock is kept, saying how to free it', () => {
  const dir = scratch('pihub-lock-');
  const lock = tryLock(join(dir, 'host.lock'), holderFor('pihub build of host (host.yaml)'));
  assert.ok(isLock(lock));
  const script = `import { tryLock, isLock, holderFor, describeHolder } from ${JSON.stringify(join(PROJECT_DIR, 'build/core/lock.ts'))};
const got = tryLock(${JSON.stringify(join(dir, 'host.lock'))}, holderFor('boxed'));
console.log(isLock(got) ? 'taken' : describeHolder(got));`;
  const r = spawnSync('unshare', ['--pid', '--fork', '--kill-child', '--mount-proc', process.execPath, '--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`^pihub build of host \\(host\\.yaml\\), pid ${process.pid} in another PID namespace \\(pid:\\[\\d+\\]: a container, or the host of this one\\), since .* UTC \\(pihub cannot see from here whether it still runs; if it does not, remove ${join(dir, 'host.lock')}\\)\\n$`));
  assert.equal(JSON.parse(readFileSync(join(dir, 'host.lock'), 'utf8')).pid, process.pid, 'the lock is still this process\'s');
  lock.release();
});

test('a prune leaves the temporary files of a build in another PID namespace (their pid means nothing here); with no other build, leftovers go', async () => {
  const cache = new Cache(scratch('pihub-cache-'));
  cache.ensure();
  const box = await inOwnNamespace();
  const { holder } = box;
  writeHolder(join(cache.dir, 'locks', `shared-1-${holder.start}-${holder.pidns}.json`), holder);
  // The boxed build's snapshot in progress: named with a pid of its namespace, which no process here has.
  let pid = 4_000_000;
  while (existsSync(`/proc/${pid}`)) pid += 1;
  const partial = `${cache.snapshotPath('k')}.partial-${pid}`;
  writeFileSync(partial, 'half a snapshot');
  cache.prune();
  assert.ok(existsSync(partial), 'a live build\'s snapshot in progress is kept');
  await stop(box);
  cache.prune();
  assert.equal(existsSync(partial), false, 'once no other build shares the cache, it is a leftover');
});
