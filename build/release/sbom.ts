// SBOM: an SPDX 2.3 JSON document of every package installed in an image, read from the image's
// own dpkg database (/var/lib/dpkg/status) and its machine-readable (DEP-5) copyright files.
// No network and no tool beyond this module: the root filesystem is plain files at build time.
import { existsSync, lstatSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, posix } from 'node:path';
import parseSpdx from 'spdx-expression-parse';

const require = createRequire(import.meta.url);
const SPDX_IDS = new Map((require('spdx-license-ids') as string[]).map((id) => [id.toLowerCase(), id]));

export interface DebPackage {
  name: string;
  version: string;
  architecture: string;
  source: string;
  sourceVersion: string;
  homepage?: string;
  summary?: string;
}

/** Paragraphs of a deb822 file (dpkg status, DEP-5 copyright): field → value, continuation lines kept. */
export function parseDeb822(text: string): Array<Map<string, string>> {
  const out: Array<Map<string, string>> = [];
  let cur: Map<string, string> | undefined;
  let last: string | undefined;
  for (const line of text.replace(/\r/g, '').split('\n')) {
    if (line.trim() === '') {
      if (cur?.size) out.push(cur);
      cur = undefined;
      last = undefined;
      continue;
    }
    if (/^[ \t]/.test(line)) {
      if (cur && last) cur.set(last, `${cur.get(last)}\n${line}`);
      continue;
    }
    if (line.startsWith('#')) continue;
    const m = /^([^:\s]+):[ \t]*(.*)$/.exec(line);
    if (!m) continue;
    cur ??= new Map();
    last = m[1]!.toLowerCase();
    cur.set(last, m[2]!);
  }
  if (cur?.size) out.push(cur);
  return out;
}

/** Installed packages from a dpkg status file. */
export function parseDpkgStatus(text: string): DebPackage[] {
  const out: DebPackage[] = [];
  for (const p of parseDeb822(text)) {
    const status = p.get('status') ?? '';
    if (!/\binstalled$/.test(status) || !/^(install|hold) /.test(status)) continue;
    const name = p.get('package')!;
    const version = p.get('version') ?? '';
    const src = /^(\S+)(?:\s+\((\S+)\))?/.exec(p.get('source') ?? '');
    out.push({
      name,
      version,
      architecture: p.get('architecture') ?? '',
      source: src?.[1] ?? name,
      sourceVersion: src?.[2] ?? version,
      homepage: p.get('homepage'),
      summary: p.get('description')?.split('\n')[0],
    });
  }
  return out.sort((a, b) => a.name.localeCompare(b.name) || a.architecture.localeCompare(b.architecture));
}

export interface Copyright {
  /** Machine-readable (DEP-5) format. */
  dep5: boolean;
  /** The `License:` short names of the header and the Files paragraphs, in order, once each. */
  licenses: string[];
}

/** What a copyright file says about licenses, when it is machine-readable (DEP-5). */
export function parseCopyright(text: string): Copyright {
  const paragraphs = parseDeb822(text);
  const header = paragraphs[0];
  const format = header?.get('format') ?? header?.get('format-specification') ?? '';
  if (!/copyright-format|dep5/i.test(format)) return { dep5: false, licenses: [] };
  const licenses: string[] = [];
  paragraphs.forEach((p, i) => {
    // Stand-alone License paragraphs hold a license's text; only the header and Files paragraphs apply one.
    if (i > 0 && !p.has('files')) return;
    const name = p.get('license')?.split('\n')[0]?.trim();
    if (name && !licenses.includes(name)) licenses.push(name);
  });
  return { dep5: true, licenses };
}

/** Debian's short names that differ from SPDX's identifiers. */
const DEBIAN_NAMES: Record<string, string> = {
  expat: 'MIT',
  artistic: 'Artistic-1.0-Perl',
  'artistic-1': 'Artistic-1.0',
  'psf-2': 'PSF-2.0',
  python: 'Python-2.0',
  'zope-2.1': 'ZPL-2.1',
  'cc0': 'CC0-1.0',
  'bsd-2': 'BSD-2-Clause',
  'bsd-3': 'BSD-3-Clause',
  'bsd-4': 'BSD-4-Clause',
  'mpl-2': 'MPL-2.0',
  'apache-2': 'Apache-2.0',
};

/** One DEP-5 license name as an SPDX identifier, if it is one. */
export function spdxId(debian: string): string | undefined {
  let name = debian.trim().replace(/\s+/g, '-');
  const known = DEBIAN_NAMES[name.toLowerCase()];
  if (known) return known;
  // GPL-2+, LGPL-2.1, AGPL-3+, GFDL-1.3+: SPDX spells the version in full and says -only or -or-later.
  const gnu = /^(A?GPL|LGPL|GFDL)-?(\d)(?:\.(\d))?(\+)?$/i.exec(name);
  if (gnu) return `${gnu[1]!.toUpperCase()}-${gnu[2]}.${gnu[3] ?? '0'}-${gnu[4] ? 'or-later' : 'only'}`;
  if (name.endsWith('+')) {
    const base = spdxId(name.slice(0, -1));
    return base && /^[A-Za-z0-9.-]+$/.test(base) ? `${base}+` : undefined;
  }
  name = name.replace(/-clause$/i, '-Clause');
  return SPDX_IDS.get(name.toLowerCase());
}

export function licenseRef(debian: string): string {
  return `LicenseRef-Debian-${debian.trim().replace(/[^A-Za-z0-9.]+/g, '-').replace(/^-|-$/g, '')}`;
}

/**
 * A DEP-5 License line as an SPDX license expression: `GPL-2+ or Artistic` →
 * `GPL-2.0-or-later OR Artistic-1.0-Perl`. Names without an SPDX identifier become
 * LicenseRef-Debian-… (returned in `refs`); DEP-5's `, and` / `, or` bind loosest.
 */
export function spdxExpression(debian: string): { expression: string; refs: string[] } {
  const refs: string[] = [];
  const term = (t: string): string => {
    const id = spdxId(t);
    if (id) return id;
    const ref = licenseRef(t);
    if (!refs.includes(ref)) refs.push(ref);
    return ref;
  };
  const group = (g: string): string => {
    const parts = g.split(/\s+(and|or)\s+/i);
    let out = '';
    for (let i = 0; i < parts.length; i += 2) {
      if (i > 0) out += ` ${parts[i - 1]!.toUpperCase()} `;
      // "GPL-2+ with OpenSSL exception" and the like stay one name (a LicenseRef).
      out += term(parts[i]!.trim());
    }
    return out;
  };
  const groups = debian.split(/,\s*(and|or)\s+/i);
  if (groups.length === 1) return { expression: group(debian), refs };
  let expression = '';
  for (let i = 0; i < groups.length; i += 2) {
    if (i > 0) expression += ` ${groups[i - 1]!.toUpperCase()} `;
    const g = group(groups[i]!);
    expression += /\s(AND|OR)\s/.test(g) ? `(${g})` : g;
  }
  return { expression, refs };
}

/** All of a package's licenses as one expression (AND: each applies to some of its files). */
export function declaredLicense(licenses: readonly string[]): { expression: string; refs: string[] } {
  if (!licenses.length) return { expression: 'NOASSERTION', refs: [] };
  const parts = licenses.map(spdxExpression);
  const refs = [...new Set(parts.flatMap((p) => p.refs))];
  const unique = [...new Set(parts.map((p) => p.expression))];
  const expression = unique.length === 1 ? unique[0]! : unique.map((e) => (/\s(AND|OR)\s/.test(e) ? `(${e})` : e)).join(' AND ');
  try {
    parseSpdx(expression);
    return { expression, refs };
  } catch {
    // Anything the SPDX grammar rejects is recorded under one reference per package.
    const ref = licenseRef(licenses.join(' and '));
    return { expression: ref, refs: [ref] };
  }
}

/** Read a file of the root filesystem, following symlinks inside it (never out to the build machine). */
export function readInRoot(rootfs: string, path: string): string | undefined {
  let cur = posix.normalize(path);
  for (let hops = 0; hops < 40; hops++) {
    // Resolve each component, so a link in a parent directory (/usr/share/doc/x -> y) is followed too.
    const parts = cur.split('/').filter(Boolean);
    let resolved = '/';
    let changed = false;
    for (let i = 0; i < parts.length; i++) {
      const next = posix.join(resolved, parts[i]!);
      const host = join(rootfs, next);
      let st;
      try {
        st = lstatSync(host);
      } catch {
        return undefined;
      }
      if (st.isSymbolicLink()) {
        const target = readlinkSync(host);
        cur = posix.join(target.startsWith('/') ? target : posix.join(resolved, target), ...parts.slice(i + 1));
        changed = true;
        break;
      }
      resolved = next;
    }
    if (!changed) {
      const host = join(rootfs, resolved);
      return existsSync(host) && lstatSync(host).isFile() ? readFileSync(host, 'utf8') : undefined;
    }
  }
  return undefined;
}

/** A package pihub changed after Debian built it: which advisories it fixes, with which patch files (in the image). */
export interface ModifiedPackage {
  fixes: string[];
  patches: Array<{ file: string; sha1: string; sha256: string }>;
}

export interface SbomImage {
  /** The image's base name, e.g. pihub-2026-11-26-trixie-arm64. */
  name: string;
  /** The raw image file name. */
  file: string;
  rawSha256: string;
  suite: string;
  /** ISO date and time the document was made. */
  created: string;
  tool: string;
  /** Packages pihub changed, by name (see release/security.ts). */
  modified?: Record<string, ModifiedPackage>;
}

type Json = Record<string, unknown>;

const spdxRef = (s: string) => s.replace(/[^A-Za-z0-9.-]+/g, '-');

export function purl(p: DebPackage, suite: string): string {
  const q = [`arch=${encodeURIComponent(p.architecture)}`, `distro=${encodeURIComponent(suite)}`];
  if (p.source !== p.name || p.sourceVersion !== p.version) q.push(`upstream=${encodeURIComponent(p.sourceVersion === p.version ? p.source : `${p.source}@${p.sourceVersion}`)}`);
  return `pkg:deb/debian/${encodeURIComponent(p.name)}@${encodeURIComponent(p.version)}?${q.join('&')}`;
}

/** The SPDX 2.3 document for the root filesystem of an image. */
export function makeSbom(rootfs: string, image: SbomImage): Json {
  const status = readInRoot(rootfs, '/var/lib/dpkg/status');
  if (status === undefined) throw new Error(`${rootfs} has no /var/lib/dpkg/status`);
  const packages = parseDpkgStatus(status);
  const extracted = new Map<string, Json>();
  const imageId = 'SPDXRef-Image';
  const debs: Json[] = packages.map((p) => {
    const copyright = readInRoot(rootfs, `/usr/share/doc/${p.name}/copyright`);
    const parsed = copyright === undefined ? { dep5: false, licenses: [] } : parseCopyright(copyright);
    const license = declaredLicense(parsed.licenses);
    for (const ref of license.refs) {
      if (!extracted.has(ref)) {
        extracted.set(ref, {
          licenseId: ref,
          name: ref.replace(/^LicenseRef-Debian-/, ''),
          extractedText: `A license Debian's machine-readable copyright files name "${ref.replace(/^LicenseRef-Debian-/, '')}"; its text is in /usr/share/doc/${p.name}/copyright on the image.`,
        });
      }
    }
    const changed = image.modified?.[p.name];
    return {
      SPDXID: `SPDXRef-Package-deb-${spdxRef(p.name)}-${spdxRef(p.architecture)}`,
      name: p.name,
      // A package pihub patched is not Debian's package as Debian built it: it says so.
      versionInfo: changed ? `${p.version}+pihub` : p.version,
      supplier: changed ? 'Organization: pihub' : 'Organization: Debian',
      ...(changed ? {
        originator: 'Organization: Debian',
        comment: `Debian's ${p.name} ${p.version} with files changed by pihub's own patches, for: ${changed.fixes.join('; ')}.`,
      } : {}),
      downloadLocation: 'NOASSERTION',
      filesAnalyzed: false,
      licenseConcluded: 'NOASSERTION',
      licenseDeclared: license.expression,
      ...(parsed.licenses.length ? { licenseComments: `Debian copyright file (DEP-5) License fields: ${parsed.licenses.join('; ')}` } : {}),
      copyrightText: 'NOASSERTION',
      sourceInfo: `built from the Debian source package ${p.source} ${p.sourceVersion}`,
      ...(p.summary ? { summary: p.summary } : {}),
      ...(p.homepage && /^https?:\/\//.test(p.homepage) ? { homepage: p.homepage } : {}),
      externalRefs: [{
        referenceCategory: 'PACKAGE-MANAGER',
        referenceType: 'purl',
        referenceLocator: purl(p, image.suite),
        ...(changed ? { comment: 'the Debian package it was made from; pihub changed some of its files (see the comment)' } : {}),
      }],
    };
  });
  // pihub's patch files, each applied to the package it changed (SPDX's PATCH_APPLIED). They
  // stand on their own: the image package has filesAnalyzed false, so it may contain no file.
  const patchFiles: Json[] = [];
  const patchRelations: Json[] = [];
  for (const d of debs) {
    for (const f of image.modified?.[d.name as string]?.patches ?? []) {
      const id = `SPDXRef-File-pihub-${spdxRef(f.file.split('/').at(-1)!)}`;
      if (!patchFiles.some((x) => x.SPDXID === id)) {
        patchFiles.push({
          SPDXID: id,
          fileName: `.${f.file}`,
          fileTypes: ['SOURCE'],
          checksums: [{ algorithm: 'SHA1', checksumValue: f.sha1 }, { algorithm: 'SHA256', checksumValue: f.sha256 }],
          licenseConcluded: 'NOASSERTION',
          copyrightText: 'NOASSERTION',
          comment: 'a patch pihub wrote and applied on the image',
        });
      }
      patchRelations.push({ spdxElementId: id, relationshipType: 'PATCH_APPLIED', relatedSpdxElement: d.SPDXID });
    }
  }
  return {
    spdxVersion: 'SPDX-2.3',
    dataLicense: 'CC0-1.0',
    SPDXID: 'SPDXRef-DOCUMENT',
    name: image.name,
    documentNamespace: `https://pihub.invalid/spdx/${image.name}-${image.rawSha256.slice(0, 16)}`,
    creationInfo: {
      created: image.created,
      creators: [`Tool: ${image.tool}`],
      comment: 'Every package in the dpkg database of the image; licenses from the License fields of machine-readable (DEP-5) copyright files.',
    },
    packages: [
      {
        SPDXID: imageId,
        name: image.name,
        packageFileName: image.file,
        downloadLocation: 'NOASSERTION',
        filesAnalyzed: false,
        checksums: [{ algorithm: 'SHA256', checksumValue: image.rawSha256 }],
        licenseConcluded: 'NOASSERTION',
        licenseDeclared: 'NOASSERTION',
        copyrightText: 'NOASSERTION',
        primaryPackagePurpose: 'OPERATING-SYSTEM',
        comment: 'A Raspberry Pi SD-card image made by pihub from Debian packages.',
      },
      ...debs,
    ],
    ...(patchFiles.length ? { files: patchFiles } : {}),
    relationships: [
      { spdxElementId: 'SPDXRef-DOCUMENT', relationshipType: 'DESCRIBES', relatedSpdxElement: imageId },
      ...debs.map((d) => ({ spdxElementId: imageId, relationshipType: 'CONTAINS', relatedSpdxElement: d.SPDXID })),
      ...patchRelations,
    ],
    ...(extracted.size ? { hasExtractedLicensingInfos: [...extracted.values()] } : {}),
  };
}

/** The SBOM's file name beside an image: <base>.spdx.json. */
export const sbomName = (base: string) => `${base}.spdx.json`;

/** Write the SBOM of a root filesystem into dir; returns its file name. */
export function writeSbom(rootfs: string, dir: string, image: SbomImage): string {
  const name = sbomName(image.name);
  writeFileSync(join(dir, name), `${JSON.stringify(makeSbom(rootfs, image), null, 2)}\n`);
  return name;
}

/** When the document was made: SOURCE_DATE_EPOCH if set (reproducible builds), else now. */
export function sbomCreated(env: NodeJS.ProcessEnv = process.env): string {
  const ms = env.SOURCE_DATE_EPOCH ? Number(env.SOURCE_DATE_EPOCH) * 1000 : Date.now();
  return `${new Date(ms).toISOString().slice(0, 19)}Z`;
}
