// An image's manifest (<image>.json beside it): what was built, from what, with which layout and
// checksums, and its security record. One schema for every writer (the build and its export)
// and every reader (pihub boot, the Imager repository, release notes, the release gate, the
// tests). Public: no secret goes in.
import { writeFileSync } from 'node:fs';
import { z } from 'zod';
import { readRegularFile, MiB } from '../core/files.ts';

const Region = z.object({ offset: z.number().int().nonnegative(), size: z.number().int().positive() });

/** A file name in the image's own folder: no path, nothing hidden. */
const PlainName = z.string().regex(/^[^/.][^/]*$/, { error: 'must be a file name in the same folder' });

/** What the build knows before the export (deploy/deploy.ts: manifestOf). */
export const BuildSummarySchema = z.object({
  name: z.string(),
  date: z.string().regex(/^\d{4}-\d{2}-\d{2}$/),
  suite: z.string(),
  architecture: z.string(),
  hostname: z.string().optional(),
  users: z.array(z.object({ name: z.string(), admin: z.boolean() })).optional(),
  hub: z.object({ port: z.number().int(), admin_group: z.string().optional(), users_group: z.string().optional() }),
  overlays: z.array(z.string()).optional(),
  stages: z.array(z.object({ id: z.string(), key: z.string().optional() })).optional(),
  pihub: z.string().optional(),
  /** The image's security record (release/security.ts); null for an image without one, absent in older manifests. */
  security: z.unknown().optional(),
});
export type BuildSummary = z.infer<typeof BuildSummarySchema>;

/** The whole manifest: the summary and what the export made. */
export const ImageManifestSchema = BuildSummarySchema.extend({
  image: PlainName,
  file: PlainName,
  compression: z.string(),
  raw_sha256: z.string().regex(/^[0-9a-f]{64}$/),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  bmap: PlainName,
  size: z.number().int().positive(),
  data_bytes: z.number().int().nonnegative(),
  layout: z.object({ boot: Region, root: Region, total: z.number().int().positive() }),
  packages: z.number().int().nonnegative(),
});
export type ImageManifest = z.infer<typeof ImageManifestSchema>;

/**
 * What a reader needs of a manifest: the image's identity and checksums; the rest as far as it
 * is there (a manifest written by an earlier pihub may lack newer fields).
 */
export const ManifestReadSchema = ImageManifestSchema.partial().required({
  name: true, date: true, suite: true, architecture: true, image: true, file: true, raw_sha256: true, sha256: true, size: true,
});
export type ManifestRead = z.infer<typeof ManifestReadSchema>;

/** Far more than any manifest pihub writes. */
const MANIFEST_MAX_BYTES = 4 * MiB;

/** Write a manifest, checked against the schema first (a writer's mistake fails the build, not a reader later). */
export function writeManifest(path: string, manifest: ImageManifest): void {
  writeFileSync(path, `${JSON.stringify(ImageManifestSchema.parse(manifest), null, 2)}\n`);
}

/** A manifest read from a plain file, or undefined when it is missing, unreadable or not a manifest of pihub's. */
export function readManifest(path: string, o: { follow?: boolean } = {}): ManifestRead | undefined {
  try {
    const r = ManifestReadSchema.safeParse(JSON.parse(readRegularFile(path, MANIFEST_MAX_BYTES, o).toString('utf8')));
    return r.success ? r.data : undefined;
  } catch {
    return undefined;
  }
}
