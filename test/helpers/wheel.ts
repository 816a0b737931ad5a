// A tiny pure-Python wheel, built here (a stored zip), for testing `pip install --user` offline.
import { createHash } from 'node:crypto';
import { crc32 } from 'node:zlib';

function zip(files: Array<[string, Buffer]>): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const [name, data] of files) {
    const n = Buffer.from(name);
    const crc = crc32(data) >>> 0;
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(data.length, 18);
    local.writeUInt32LE(data.length, 22);
    local.writeUInt16LE(n.length, 26);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(20, 4);
    central.writeUInt16LE(20, 6);
    central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(data.length, 20);
    central.writeUInt32LE(data.length, 24);
    central.writeUInt16LE(n.length, 28);
    central.writeUInt32LE(offset, 42);
    locals.push(local, n, data);
    centrals.push(central, n);
    offset += local.length + n.length + data.length;
  }
  const cd = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(files.length, 8);
  end.writeUInt16LE(files.length, 10);
  end.writeUInt32LE(cd.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, cd, end]);
}

const recordHash = (b: Buffer) => `sha256=${createHash('sha256').update(b).digest('base64url')}`;

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
