// What the build trusts and what it hands to other programs: the bootstrap trusts the base's
// archive keyring only, and credentials never travel on a command line or onto the card.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Cache } from '../../build/cache/cache.ts';
import { verifyArchiveKeyring } from '../../build/host.ts';
import { loadInputs } from '../../build/plan/inputs.ts';
import { commandsOf, formatOps, type Op } from '../../build/plan/ops.ts';
import { makePlan, type Plan } from '../../build/plan/plan.ts';
import { DEBIAN_ARCHIVE_KEYRING } from '../../build/stages/step.ts';
import { buildOptions } from '../helpers/options.ts';

/** The plan of a build that runs every stage. */
async function planFor(sets: string[] = []): Promise<Plan> {
  const o = buildOptions();
  const inputs = loadInputs({ ...o, sets: [...o.sets, ...sets] });
  return makePlan(inputs, { workDir: o.workDir, outDir: o.outDir, cache: new Cache(o.cacheDir), release: 'Sat, 10 Jan 2026 09:00:00 UTC', salt: 'salt', noCache: true, verify: false });
}

const allOps = (plan: Plan): Op[] => plan.stages.flatMap((s) => [...s.ops]);

test('every mmdebstrap (the bootstrap and the native tools root) trusts the archive\'s keyring only', async () => {
  const plan = await planFor();
  const boots = commandsOf(allOps(plan)).map((r) => r.command[1]).filter((args) => args.includes('mmdebstrap'));
  assert.equal(boots.length, 2, 'the bootstrap and the tools root');
  const empty = join(plan.paths.work, 'apt-trusted.d');
  for (const args of boots) {
    assert.ok(args.includes(`--keyring=${DEBIAN_ARCHIVE_KEYRING}`), args.join(' '));
    assert.ok(args.includes(`--keyring=${empty}`), 'no keyring directory of the build machine');
    assert.ok(args.includes('--skip=check/signed-by'));
  }
  // The empty directory is made right before each.
  const lines = formatOps(allOps(plan));
  for (const at of lines.flatMap((l, i) => (/\$ unshare .* mmdebstrap /.test(l) ? [i] : []))) {
    assert.match(lines[at - 1]!, new RegExp(`an empty ${empty}: apt trusts no keyring of the build machine but ${DEBIAN_ARCHIVE_KEYRING}`));
  }
  assert.equal(plan.keyring, DEBIAN_ARCHIVE_KEYRING, 'checked before the build');
});

test('a missing archive keyring is named with the package that has it', () => {
  assert.throws(() => verifyArchiveKeyring('/nonexistent/debian-archive-keyring.gpg'), /^UserError: the archive keyring \/nonexistent\/debian-archive-keyring\.gpg is missing: .*install debian-archive-keyring/);
  verifyArchiveKeyring(DEBIAN_ARCHIVE_KEYRING);
});
