// npm run docs — writes docs/configuration.md's settings table from the setting declarations
// (build/config/settings.ts) and what the shipped stages and overlays read.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { settingsTable, withTable } from '../build/config/docs.ts';
import { PROJECT_DIR } from '../build/plan/inputs.ts';
import { ADVISORY_TABLE_END, ADVISORY_TABLE_START, advisoryTable, readAdvisories, STAGE_ADVISORIES } from '../build/release/security.ts';
import { loadStages } from '../build/stages/load.ts';
import { shippedOverlays } from '../build/stages/overlays.ts';

/** Key → the shipped stages and overlays that read it. */
export function shippedReaders(): Map<string, string[]> {
  const readBy = new Map<string, string[]>();
  const stages = [...loadStages(join(PROJECT_DIR, 'stages')), ...shippedOverlays(join(PROJECT_DIR, 'overlays')).map((o) => o.stage)];
  for (const s of stages) for (const k of s.reads) readBy.set(k, [...(readBy.get(k) ?? []), s.id]);
  return readBy;
}

export function configDocWithTable(): { path: string; current: string; wanted: string } {
  const path = join(PROJECT_DIR, 'docs/configuration.md');
  const current = readFileSync(path, 'utf8');
  const wanted = withTable(current, settingsTable(shippedReaders()));
  if (wanted === undefined) throw new Error('docs/configuration.md has no settings table markers');
  return { path, current, wanted };
}

/** docs/security.md with its advisories table made from stage 25-security's advisories.json. */
export function securityDocWithTable(): { path: string; current: string; wanted: string } {
  const path = join(PROJECT_DIR, 'docs/security.md');
  const current = readFileSync(path, 'utf8');
  const start = current.indexOf(ADVISORY_TABLE_START);
  const end = current.indexOf(ADVISORY_TABLE_END);
  if (start < 0 || end < start) throw new Error('docs/security.md has no advisories table markers');
  const table = advisoryTable(readAdvisories(STAGE_ADVISORIES(PROJECT_DIR)));
  return { path, current, wanted: `${current.slice(0, start)}${ADVISORY_TABLE_START}\n${table.join('\n')}\n${current.slice(end)}` };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const { path, current, wanted } of [configDocWithTable(), securityDocWithTable()]) {
    const name = path.slice(PROJECT_DIR.length + 1);
    if (current === wanted) {
      console.log(`${name}: its generated table is up to date`);
    } else {
      writeFileSync(path, wanted);
      console.log(`${name}: generated table written`);
    }
  }
}
