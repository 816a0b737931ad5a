// The console's login banner of a card (/usr/local/lib/pihub/issue, run by pihub-issue.service),
// for real, in a mount namespace of the test's own where the card's files are scratch files: the
// hub's address, and how to add the first account on a card that has none.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PROJECT_DIR } from '../../build/plan/inputs.ts';
import { scratch } from '../helpers/tmp.ts';

const ISSUE = join(PROJECT_DIR, 'stages/10-system/01-files/usr/local/lib/pihub/issue');

/** The banner the script writes for these accounts (/etc/passwd lines) and hub settings. */
function banner(passwd: string, hubEnv: string): string {
  const dir = scratch('pihub-banner-');
  for (const d of ['etc-pihub/issue.d', 'run-issue.d']) mkdirSync(join(dir, d), { recursive: true });
  writeFileSync(join(dir, 'passwd'), passwd);
  writeFileSync(join(dir, 'etc-pihub/hub.env'), hubEnv);
  const script = 'mount --bind "$1/passwd" /etc/passwd && mkdir -p /etc/pihub /run/issue.d && mount --bind "$1/etc-pihub" /etc/pihub && mount --bind "$1/run-issue.d" /run/issue.d && "$2"';
  const r = spawnSync('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script, 'sh', dir, ISSUE], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return readFileSync(join(dir, 'run-issue.d/50-pihub.issue'), 'utf8');
}

const SYSTEM = 'root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n';

test('a card without an account says how to add one; with one it does not', () => {
  const none = banner(SYSTEM, 'HUB_PORT=8888\nHUB_HTTPS_MODE=off\n');
  assert.match(none, /^pihub: JupyterHub at http:\/\/\\n\.local:8888\/ or http:\/\/\\4:8888\//m);
  assert.match(none, /no user account yet[\s\S]*userconf\.txt[\s\S]*openssl passwd -6/);
  const one = banner(`${SYSTEM}carol:x:1000:1000::/home/carol:/bin/bash\n`, 'HUB_PORT=8000\nHUB_HTTPS_MODE=self-signed\n');
  assert.match(one, /^pihub: JupyterHub at https:\/\/\\n\.local:8000\//m);
  assert.doesNotMatch(one, /no user account yet/);
});
