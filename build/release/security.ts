// The security record of an image: every advisory pihub tracks for what the card runs (from the
// image's /usr/share/pihub/security/advisories.json, which stage 25-security installs), with the
// state of pihub's own patches as the build left them (/var/lib/pihub/security-fixes.json, written
// by the card's security-fixes script). The manifest, the SBOM and docs/security.md say the same.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { readInRoot, type ModifiedPackage } from './sbom.ts';

export const ADVISORIES_PATH = '/usr/share/pihub/security/advisories.json';
export const STATE_PATH = '/var/lib/pihub/security-fixes.json';
export const SECURITY_DIR = '/usr/share/pihub/security';

const Patch = z.strictObject({
  package: z.string(),
  file: z.string().regex(/^[a-z0-9][a-z0-9.-]*\.(patch|edits)$/),
  /** Debian versions it was written for: the build fails if it does not fit one of them. */
  for: z.array(z.string()).min(1),
});

export const Advisory = z.strictObject({
  ids: z.array(z.string().regex(/^(CVE-\d{4}-\d+|GHSA(-[0-9a-z]{4}){3})$/)).min(1),
  package: z.string(),
  title: z.string(),
  /** The upstream version that fixed it (or "none" when upstream has not). */
  fixed_upstream: z.string(),
  /**
   * fixed: pihub fixed it on the card; fixed-by-debian: Debian's package has the fix; not-exposed:
   * what the card runs does not reach the flaw; open: none of these.
   */
  status: z.enum(['fixed', 'fixed-by-debian', 'not-exposed', 'open']),
  /** What pihub did, or why the card is not exposed. */
  how: z.string(),
  /** How anyone can check it on a card. */
  check: z.string(),
  patches: z.array(Patch).default([]),
  /** Files pihub installs that do the fix by configuration. */
  files: z.array(z.string().regex(/^\//)).default([]),
});
export type Advisory = z.infer<typeof Advisory>;

export const AdvisoryList = z.strictObject({
  /** The day the list was last checked against the upstream advisories. */
  checked: z.string().regex(/^\d{4}-\d{2}-\d{2}$/),
  advisories: z.array(Advisory),
});

const PatchState = z.object({
  patch: z.string(),
  package: z.string(),
  version: z.string().nullable(),
  state: z.string(),
  files: z.array(z.object({ path: z.string(), sha256: z.string() })),
});

export interface PatchRecord {
  file: string;
  package: string;
  /** The installed version it was applied to. */
  version: string | null;
  /** `in place` when the image ships with it. */
  state: string;
  sha256: string;
  files: Array<{ path: string; sha256: string }>;
}

export interface AdvisoryRecord extends Omit<Advisory, 'patches'> {
  patches: PatchRecord[];
}

export interface SecurityRecord {
  checked: string;
  advisories: AdvisoryRecord[];
}

function parseJson<T>(schema: z.ZodType<T>, text: string, where: string): T {
  const r = schema.safeParse(JSON.parse(text));
  if (!r.success) throw new Error(`${where}: ${r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  return r.data;
}

/** The advisories of a stage folder's copy (for docs and tests), or of an image's root. */
export function readAdvisories(path: string): Advisory[] {
  return parseJson(AdvisoryList, readFileSync(path, 'utf8'), path).advisories;
}

/** The image's record, or undefined for an image without pihub's security stage. */
export function securityRecord(rootfs: string): SecurityRecord | undefined {
  const text = readInRoot(rootfs, ADVISORIES_PATH);
  if (text === undefined) return undefined;
  const { checked, advisories } = parseJson(AdvisoryList, text, ADVISORIES_PATH);
  const stateText = readInRoot(rootfs, STATE_PATH);
  const states = stateText === undefined ? [] : parseJson(z.object({ patches: z.array(PatchState) }), stateText, STATE_PATH).patches;
  return {
    checked,
    advisories: advisories.map((a) => withState(a, a.patches.map((p) => {
      const s = states.find((x) => x.patch === p.file);
      const body = readInRoot(rootfs, `${SECURITY_DIR}/${p.file}`) ?? '';
      return {
        file: p.file,
        package: p.package,
        version: s?.version ?? null,
        state: s?.state ?? 'not applied',
        sha256: createHash('sha256').update(body).digest('hex'),
        files: s?.files ?? [],
      };
    }))),
  };
}

/** An advisory with its patches' states; `fixed` only while every patch of it is in place. */
function withState(a: Advisory, patches: PatchRecord[]): AdvisoryRecord {
  const missing = patches.filter((p) => p.state !== 'in place');
  if (a.status !== 'fixed' || missing.length === 0) return { ...a, patches };
  return { ...a, patches, status: 'open', how: `${a.how} On this image ${missing.map((p) => `${p.file} is ${p.state}`).join(', ')}.` };
}

/** The packages pihub changed, with the advisories their patches fix (what the SBOM says of them). */
export function sbomModifications(record: SecurityRecord | undefined, rootfs: string): Record<string, ModifiedPackage> {
  const out: Record<string, ModifiedPackage> = {};
  for (const a of record?.advisories ?? []) {
    for (const p of a.patches) {
      if (p.state !== 'in place') continue;
      const m = (out[p.package] ??= { fixes: [], patches: [] });
      m.fixes.push(`${a.ids.join(' / ')} (${p.file})`);
      if (!m.patches.some((x) => x.file === `${SECURITY_DIR}/${p.file}`)) {
        const body = readInRoot(rootfs, `${SECURITY_DIR}/${p.file}`) ?? '';
        m.patches.push({ file: `${SECURITY_DIR}/${p.file}`, sha1: createHash('sha1').update(body).digest('hex'), sha256: p.sha256 });
      }
    }
  }
  return out;
}

/** The stage folder's list, for the docs and the tests. */
export const STAGE_ADVISORIES = (projectDir: string) => join(projectDir, 'stages/25-security/00-files', ADVISORIES_PATH);

export const ADVISORY_TABLE_START = '<!-- advisories table: made by `npm run docs` from stages/25-security/…/advisories.json; edit there -->';
export const ADVISORY_TABLE_END = '<!-- end of advisories table -->';

const STATUS_TEXT: Record<Advisory['status'], string> = {
  fixed: '**fixed by pihub**',
  'fixed-by-debian': 'fixed by Debian',
  'not-exposed': 'not exposed',
  open: '**open**',
};

/** docs/security.md's table of every advisory: what it is, its state on the card, how, and how to check. */
export function advisoryTable(advisories: readonly Advisory[]): string[] {
  const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  return [
    '| advisory | package | what | fixed upstream in | on the card | how | check |',
    '|---|---|---|---|---|---|---|',
    ...advisories.map((a) => `| ${a.ids.join('<br>')} | ${a.package} | ${cell(a.title)} | ${a.fixed_upstream} | ${STATUS_TEXT[a.status]} | ${cell(a.how)}${a.patches.length ? ` (${[...new Set(a.patches.map((p) => `\`${p.file}\``))].join(', ')})` : ''} | ${cell(a.check)} |`),
  ];
}
