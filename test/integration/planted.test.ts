// `sudo pihub build --out DIR` in a folder the invoking user can write: whatever that user
// planted under pihub's file names (a symlink or hard link to a root-only file, a FIFO) is
// replaced, never followed, truncated or given to the user. A real build, run as root on
// behalf of a plain user (SUDO_UID/SUDO_GID of `nobody`); it stops at its first stage (its
// mirror has no packages), after the log was opened, written and handed to the user.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, linkSync, lstatSync, mkdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runPihub } from '../helpers/build.ts';
import { fakeMirror } from '../helpers/options.ts';
import { scratch } from '../helpers/tmp.ts';

const NOBODY = 65534;
const SHADOW = 'root:$6$planted$notarealhashbutsecret:20000:0:99999:7:::\n';

/** A root-owned file standing in for /etc/shadow: known content, mode and owner. */
function victim(dir: string, name: string): string {
  const file = join(dir, name);
  writeFileSync(file, SHADOW);
  chmodSync(file, 0o640);
  chownSync(file, 0, 42);
  return file;
}

function assertUntouched(file: string): void {
  assert.equal(readFileSync(file, 'utf8'), SHADOW, `${file}: content changed`);
  const st = statSync(file);
  assert.equal(st.mode & 0o7777, 0o640, `${file}: mode changed`);
  assert.deepEqual([st.uid, st.gid], [0, 42], `${file}: owner changed`);
}

/** A build of `name` as `sudo` by nobody, into an output folder nobody owns, with `plant` run on it first. */
async function buildInto(name: string, plant: (out: string, secrets: string) => void) {
  const root = scratch('pihub-planted-');
  chmodSync(root, 0o755);
  const secrets = join(root, 'etc');
  mkdirSync(secrets);
  const out = join(root, 'deploy');
  mkdirSync(out);
  chownSync(out, NOBODY, NOBODY);
  plant(out, secrets);
  const config = join(root, 'config.yaml');
  writeFileSync(config, `name: ${name}\nbase:\n  mirror: ${fakeMirror()}\n`);
  const r = await runPihub(
    ['build', '--config', config, '--out', out, '--work-dir', join(root, 'work'), '--cache-dir', join(root, 'cache')],
    { env: { SUDO_UID: String(NOBODY), SUDO_GID: String(NOBODY), SUDO_USER: 'nobody' }, timeoutMs: 240_000 },
  );
  return { ...r, out, secrets };
}

test('a symlink, a hard link or a FIFO planted as deploy/<name>.log is replaced: the file it points at keeps its content, mode and owner', { timeout: 600_000 }, async () => {
  for (const kind of ['symlink', 'hardlink', 'fifo'] as const) {
    let target = '';
    const r = await buildInto(`planted-${kind}`, (out, secrets) => {
      const log = join(out, `planted-${kind}.log`);
      if (kind === 'fifo') execFileSync('mkfifo', [log]);
      else {
        target = victim(secrets, 'shadow');
        (kind === 'symlink' ? symlinkSync : linkSync)(target, log);
      }
    });
    // The build went as far as its first stage, past the log's opening (exit 1: a failed build).
    assert.equal(r.code, 1, `${kind}: exit ${r.code}\n${r.stderr}`);
    assert.doesNotMatch(r.stderr, /internal error|\n\s+at /, r.stderr);
    if (target) assertUntouched(target);
    const log = join(r.out, `planted-${kind}.log`);
    const st = lstatSync(log);
    assert.ok(st.isFile(), `${kind}: the log is a file of its own`);
    assert.equal(st.nlink, 1, `${kind}: the log has no other name`);
    assert.equal(st.mode & 0o777, 0o600);
    assert.deepEqual([st.uid, st.gid], [NOBODY, NOBODY], `${kind}: the log is the invoking user's`);
    assert.match(readFileSync(log, 'utf8'), new RegExp(`pihub build planted-${kind}`));
  }
});
