// Reading the inputs: resolving the config and assembling the stages are pure functions of what
// was read; nothing they are given is changed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { DEFAULT_BASE, loadBase } from '../../build/bases/load.ts';
import { packageChanges } from '../../build/bases/packages.ts';
import { setLayer } from '../../build/config/load.ts';
import { assembleStages } from '../../build/plan/assemble-stages.ts';
import { PROJECT_DIR } from '../../build/plan/inputs.ts';
import { deepFreeze } from '../../build/core/ops.ts';
import { resolveBuildConfig } from '../../build/plan/resolve-config.ts';
import { loadStages } from '../../build/stages/load.ts';

test('resolving the config and assembling the stages change nothing they are given (frozen here)', () => {
  const layers = deepFreeze([setLayer(['base=debian-trixie-armhf', 'ssh.enabled=true'])]);
  const { config, base } = resolveBuildConfig(layers, [], {});
  assert.equal(config.base.architecture, 'armhf');
  assert.equal(config.ssh.password_auth, true, '`auto` resolved: no key, so passwords');
  assert.equal(layers[0]!.data.base, 'debian-trixie-armhf', 'the layer still says it the short way');

  const stages = deepFreeze(loadStages(join(PROJECT_DIR, 'stages')));
  const before = JSON.stringify(stages);
  const armhf = assembleStages(stages, [], base, packageChanges(base.profile, loadBase(DEFAULT_BASE).profile));
  assert.ok(armhf.some((s) => s.substeps.some((x) => x.packages?.includes('linux-image-armmp-lpae'))), 'the base\'s kernel is in the list');
  const withRepositories = assembleStages(stages, [], loadBase('raspios-trixie-arm64'), {});
  assert.equal(withRepositories[0]!.substeps[1]!.kind, 'repositories', 'the extra repositories right after the bootstrap');
  assert.equal(JSON.stringify(stages), before, 'the stage definitions read are as they were');
});
