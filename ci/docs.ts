// npm run docs — writes the README's config table from the setting declarations
// (build/config/settings.ts) and what the shipped stages and overlays read.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { settingsTable, withTable } from '../build/config/docs.ts';
import { PROJECT_DIR } from '../build/plan/inputs.ts';
import { loadStages } from '../build/stages/load.ts';
import { shippedOverlays } from '../build/stages/overlays.ts';

/** Key → the shipped stages and overlays that read it. */
export function shippedReaders(): Map<string, string[]> {
  const readBy = new Map<string, string[]>();
  const stages = [...loadStages(join(PROJECT_DIR, 'stages')), ...shippedOverlays(join(PROJECT_DIR, 'overlays')).map((o) => o.stage)];
  for (const s of stages) for (const k of s.reads) readBy.set(k, [...(readBy.get(k) ?? []), s.id]);
  return readBy;
}

export function readmeWithTable(): { path: string; current: string; wanted: string } {
  const path = join(PROJECT_DIR, 'README.md');
  const current = readFileSync(path, 'utf8');
  const wanted = withTable(current, settingsTable(shippedReaders()));
  if (wanted === undefined) throw new Error('README.md has no settings table markers');
  return { path, current, wanted };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { path, current, wanted } = readmeWithTable();
  if (current === wanted) {
    console.log('README.md: the settings table is up to date');
  } else {
    writeFileSync(path, wanted);
    console.log('README.md: settings table written');
  }
}
