// Shipped overlays' build-machine steps, for real, on a scratch root: the https overlay in
// `files` mode installs the given certificate and key with the right owners and modes.
import { test } from 'node:test';
import { scratch } from '../helpers/tmp.ts';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { loadOverlay } from '../../build/stages/overlays.ts';
import { stepFor } from '../../build/stages/steps/index.ts';
import { createRunner } from '../../build/core/exec.ts';
import { resolveConfig, setLayer } from '../../build/config/load.ts';
import { valueOps } from '../../build/stages/values.ts';
import { runOps } from '../../build/plan/run.ts';
import { holderFor } from '../../build/core/lock.ts';
import type { BuildConfig } from '../../build/config/schema.ts';
import { PROJECT_DIR } from '../../build/plan/inputs.ts';

test('https overlay, files mode: the certificate and key land in the image, the key readable by root only', async () => {
  const work = scratch('pihub-https-');
  const crt = join(work, 'pi.crt');
  const key = join(work, 'pi.key');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=pi', '-keyout', key, '-out', crt], { stdio: 'ignore' });
  const rootfs = join(work, 'rootfs');
  execFileSync('mkdir', ['-p', join(rootfs, 'etc')]);
  const overlay = loadOverlay('https', join(PROJECT_DIR, 'overlays'));
  const config = resolveConfig([overlay.layer, setLayer(['hub.https.mode=files', `hub.https.cert_file=${crt}`, `hub.https.key_file=${key}`])]);
  const runner = createRunner({ write: () => {} });
  const sub = overlay.stage.substeps.find((s) => s.kind === 'run')!;
  const paths = { work, rootfs, cache: work, debs: work, deploy: work };
  // The step's own operations, after the ones that give the stage its values, as a build runs them.
  const run = (config: BuildConfig) => {
    const ctx = { config, stage: overlay.stage, paths };
    const ops = [...valueOps(config, overlay.stage.reads, 'test'), ...stepFor(sub).ops(ctx)];
    return runOps(ops, { runner, values: {}, scratch: {}, note: () => {}, holder: holderFor('test') });
  };
  await run(config);
  const dir = join(rootfs, 'etc/pihub/https');
  assert.equal(readFileSync(join(dir, 'hub.crt'), 'utf8'), readFileSync(crt, 'utf8'));
  assert.equal(readFileSync(join(dir, 'hub.key'), 'utf8'), readFileSync(key, 'utf8'));
  assert.equal(statSync(join(dir, 'hub.key')).mode & 0o777, 0o600);
  assert.equal(statSync(join(dir, 'hub.crt')).mode & 0o777, 0o644);
  assert.equal(statSync(join(dir, 'hub.key')).uid, 0);

  // Back to self-signed: nothing of the old files stays for the card to trust.
  await run(resolveConfig([overlay.layer]));
  assert.throws(() => statSync(join(dir, 'hub.key')));
});
