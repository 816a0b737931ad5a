// The Pi 5's D0 overlay on the card is the one its source says: the committed binary is what
// dtc makes of the committed source (the end-to-end test then applies it to the card's own
// device trees and compares the result with upstream's D0 tree).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PROJECT_DIR } from '../../build/plan/inputs.ts';

const DIR = join(PROJECT_DIR, 'stages/10-system/01-files/usr/local/lib/pihub/boot');

test('bcm2712d0.dtbo is bcm2712d0-overlay.dts compiled', () => {
  const compiled = execFileSync('dtc', ['-q', '-I', 'dts', '-O', 'dtb', join(DIR, 'bcm2712d0-overlay.dts')]);
  assert.ok(compiled.equals(readFileSync(join(DIR, 'bcm2712d0.dtbo'))), 'run the dtc command at the top of bcm2712d0-overlay.dts');
  // Each fragment names its target by path (upstream's trees have no labels an overlay could use).
  const fragments = execFileSync('fdtget', ['-l', join(DIR, 'bcm2712d0.dtbo'), '/']).toString().trim().split('\n');
  assert.deepEqual(fragments, ['fragment@0', 'fragment@1', 'fragment@2', 'fragment@3']);
  for (const f of fragments) assert.match(execFileSync('fdtget', ['-t', 's', join(DIR, 'bcm2712d0.dtbo'), `/${f}`, 'target-path']).toString(), /^\/soc@107c000000\//);
});
