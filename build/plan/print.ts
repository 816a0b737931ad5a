// What --dry-run prints: the plan, stage by stage, with the exact operations the executor runs.
import { join } from 'node:path';
import { withoutCredentials } from '../config/urls.ts';
import { REPOSITORY_FILE } from '../release/imager.ts';
import { overlaySettings } from './inputs.ts';
import { formatOps } from '../core/ops.ts';
import type { Plan, PlannedStage } from './plan.ts';

function stageState(s: PlannedStage, reuse: boolean): string {
  const key = s.key?.slice(0, 12);
  if (s.key === undefined) return 'cache unknown';
  switch (s.start) {
    case 'skip': return reuse ? `cached ${key}; the image is reused` : `cached ${key}; a later stage is restored`;
    case 'work-tree': return `in the work tree already (key ${key})`;
    case 'restore': return `cached ${key}: restored`;
    case 'run': return `runs (key ${key})`;
  }
}

export function planLines(plan: Plan, notes: readonly string[] = []): string[] {
  const c = plan.config;
  const out = [
    `pihub build plan: ${c.name} (${c.base.suite} ${c.base.architecture}, from ${withoutCredentials(c.base.mirror)})`,
    `config: ${plan.configLabel}; overlays: ${plan.overlays.map((o) => o.name).join(', ') || 'none'}`,
    `users: ${c.users.length ? c.users.map((u) => `${u.name}${u.admin ? ' (admin)' : ''}`).join(', ') : 'none in the image; made at first boot from Raspberry Pi Imager\'s customisation or userconf.txt'}`,
    `hub: port ${c.hub.port}, admins = group ${c.hub.admin_group}, users = group ${c.hub.users_group}`,
  ];
  for (const o of plan.overlays) {
    const sets = overlaySettings(o);
    out.push(`overlay ${o.name}: ${o.description}${sets.length ? `; sets ${sets.join(', ')}` : ''}`);
  }
  out.push('');
  plan.stages.forEach((s, i) => {
    const reads = s.def.reads.length ? `; reads ${s.def.reads.join(', ')}` : '';
    out.push(`stage ${i + 1}/${plan.stages.length} ${s.def.id}: ${s.def.description} [${stageState(s, plan.image.reuse)}${reads}]`);
    if (s.start === 'run' || s.start === 'restore') out.push(...formatOps(s.ops, 2));
    if (s.start !== 'run') out.push(`  its steps, not run: ${s.def.substeps.map((x) => x.name).join(', ') || 'none'}`);
  });
  out.push(`export${plan.image.reuse ? ' [cached: the image is reused]' : ''}`);
  out.push(...formatOps(plan.image.ops, 2));
  out.push(`  → ${join(plan.paths.deploy, plan.image.names.compressed)} (+ .img.bmap, .sha256, .info, .json, .spdx.json, .log)`);
  out.push(`  → ${join(plan.paths.deploy, REPOSITORY_FILE)}: the Raspberry Pi Imager repository of the images in ${plan.paths.deploy}`);
  for (const n of [...plan.notes, ...notes]) out.push(`note: ${n}`);
  return out;
}
