// Reading the keys of an OpenPGP keyring file (RFC 4880 / 9580 packets), so a base profile can
// say exactly which keys its repository keyring must hold, checked before anything runs and
// without a gpg on the build machine.
import { createHash } from 'node:crypto';

export interface KeyringKeys {
  /** Fingerprints of the primary keys, upper-case hex. */
  primary: string[];
  /** Fingerprints of subkeys. */
  sub: string[];
}

/** The binary packets of an ASCII-armored block (`-----BEGIN PGP PUBLIC KEY BLOCK-----`), or the input as is. */
export function dearmor(data: Buffer): Buffer {
  const text = data.toString('latin1');
  if (!text.startsWith('-----BEGIN PGP ')) return data;
  const body: string[] = [];
  let inHeaders = true;
  for (const line of text.split(/\r?\n/).slice(1)) {
    if (line.startsWith('-----END PGP ')) break;
    if (inHeaders) {
      if (line.trim() === '') inHeaders = false;
      else if (!/^[A-Za-z-]+: /.test(line)) {
        inHeaders = false;
        body.push(line);
      }
      continue;
    }
    if (line.startsWith('=')) continue; // the CRC-24 checksum line
    body.push(line.trim());
  }
  return Buffer.from(body.join(''), 'base64');
}

const PUBLIC_KEY = 6;
const PUBLIC_SUBKEY = 14;

/** Every key in a keyring file (binary or armored). Throws a sentence when the file is not a keyring. */
export function keyringKeys(data: Buffer): KeyringKeys {
  const buf = dearmor(data);
  const out: KeyringKeys = { primary: [], sub: [] };
  let pos = 0;
  while (pos < buf.length) {
    const head = buf[pos]!;
    if ((head & 0x80) === 0) throw new Error(`not an OpenPGP keyring (byte ${pos} starts no packet)`);
    let tag: number;
    let len: number;
    let start: number;
    if (head & 0x40) {
      tag = head & 0x3f;
      const o1 = buf[pos + 1];
      if (o1 === undefined) throw new Error('truncated OpenPGP packet header');
      if (o1 < 192) {
        len = o1;
        start = pos + 2;
      } else if (o1 < 224) {
        len = ((o1 - 192) << 8) + buf[pos + 2]! + 192;
        start = pos + 3;
      } else if (o1 === 255) {
        len = buf.readUInt32BE(pos + 2);
        start = pos + 6;
      } else {
        throw new Error('OpenPGP partial-length packets do not occur in keyrings');
      }
    } else {
      tag = (head >> 2) & 0x0f;
      const type = head & 3;
      if (type === 3) throw new Error('OpenPGP packets of indeterminate length do not occur in keyrings');
      const n = [1, 2, 4][type]!;
      len = n === 1 ? buf[pos + 1]! : n === 2 ? buf.readUInt16BE(pos + 1) : buf.readUInt32BE(pos + 1);
      start = pos + 1 + n;
    }
    if (start + len > buf.length) throw new Error('truncated OpenPGP packet');
    if (tag === PUBLIC_KEY || tag === PUBLIC_SUBKEY) {
      const body = buf.subarray(start, start + len);
      (tag === PUBLIC_KEY ? out.primary : out.sub).push(fingerprint(body));
    }
    pos = start + len;
  }
  if (out.primary.length === 0) throw new Error('no public key in it (is it an OpenPGP keyring?)');
  return out;
}

/** v4: SHA-1 over 0x99, a two-byte length and the key packet; v6: SHA-256 over 0x9b, a four-byte length and it. */
function fingerprint(body: Buffer): string {
  const version = body[0];
  if (version === 4) {
    const prefix = Buffer.from([0x99, body.length >> 8, body.length & 0xff]);
    return createHash('sha1').update(prefix).update(body).digest('hex').toUpperCase();
  }
  if (version === 6) {
    const prefix = Buffer.alloc(5);
    prefix[0] = 0x9b;
    prefix.writeUInt32BE(body.length, 1);
    return createHash('sha256').update(prefix).update(body).digest('hex').toUpperCase();
  }
  throw new Error(`version ${String(version)} keys are not supported (only v4 and v6)`);
}
