// Wheels built here (zip files written by hand), for testing pip offline: a tiny pure-Python
// one for `pip install --user`, and the zip writer the Debian wheelhouse (wheelhouse.ts) uses.
import { createHash } from 'node:crypto';
import { crc32, deflateRawSync } from 'node:zlib';

export interface ZipEntry {
  name: string;
  data: Buffer;
  /** Unix permission bits, kept by pip when it unpacks a wheel (0o755 for scripts). */
  mode?: number;
}

/** A zip archive (deflated entries; small ones stored), as wheels are. */
export function zip(entries: ReadonlyArray<ZipEntry | [string, Buffer]>): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const e of entries) {
    const { name, data, mode } = Array.isArray(e) ? { name: e[0], data: e[1], mode: undefined } : e;
    const n = Buffer.from(name);
    const crc = crc32(data) >>> 0;
    const deflated = data.length > 64 ? deflateRawSync(data) : undefined;
    const body = deflated && deflated.length < data.length ? deflated : data;
    const method = body === data ? 0 : 8;
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(method, 8);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(body.length, 18);
    local.writeUInt32LE(data.length, 22);
    local.writeUInt16LE(n.length, 26);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    // Made by Unix (3), so the external attributes carry the file mode.
    central.writeUInt16LE(mode === undefined ? 20 : (3 << 8) | 20, 4);
    central.writeUInt16LE(20, 6);
    central.writeUInt16LE(method, 10);
    central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(body.length, 20);
    central.writeUInt32LE(data.length, 24);
    central.writeUInt16LE(n.length, 28);
    if (mode !== undefined) central.writeUInt32LE(((0o100000 | mode) << 16) >>> 0, 38);
    central.writeUInt32LE(offset, 42);
    locals.push(local, n, body);
    centrals.push(central, n);
    offset += local.length + n.length + body.length;
  }
  const cd = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(cd.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, cd, end]);
}

export const recordHash = (b: Buffer) => `sha256=${createHash('sha256').update(b).digest('base64url')}`;

export function makeWheel(pkg: string, version: string, init: string): { name: string; data: Buffer } {
  const info = `${pkg}-${version}.dist-info`;
  const files: Array<[string, Buffer]> = [
    [`${pkg}/__init__.py`, Buffer.from(init)],
    [`${info}/METADATA`, Buffer.from(`Metadata-Version: 2.1\nName: ${pkg}\nVersion: ${version}\n`)],
    [`${info}/WHEEL`, Buffer.from('Wheel-Version: 1.0\nGenerator: pihub-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n')],
  ];
  const record = files.map(([n, d]) => `${n},${recordHash(d)},${d.length}`).join('\n') + `\n${info}/RECORD,,\n`;
  files.push([`${info}/RECORD`, Buffer.from(record)]);
  return { name: `${pkg}-${version}-py3-none-any.whl`, data: zip(files) };
}
