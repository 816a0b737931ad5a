// An mDNS client, as a phone or laptop on the LAN asks for `<host>.local`: one-shot ("legacy
// unicast") queries to the mDNS group on one network interface, answered by the responder on
// that link. Run as a script inside the test's network namespace:
//   node --import tsx test/helpers/mdns.ts NAME.local IFACE [PORT PATH]
// prints JSON: the addresses found and, with PORT, the HTTP status of http://[address]:PORT/PATH.
import { createSocket } from 'node:dgram';
import { request } from 'node:http';
import { pathToFileURL } from 'node:url';
import { resolve } from 'node:path';

const TYPE = { A: 1, AAAA: 28 } as const;

/** A DNS query for name with one question of the given type. */
export function encodeQuery(id: number, name: string, type: number): Buffer {
  const labels = name.replace(/\.$/, '').split('.').map((l) => {
    const b = Buffer.from(l, 'utf8');
    if (!b.length || b.length > 63) throw new Error(`bad DNS label in ${name}`);
    return Buffer.concat([Buffer.from([b.length]), b]);
  });
  const header = Buffer.alloc(12);
  header.writeUInt16BE(id, 0);
  header.writeUInt16BE(1, 4); // one question
  const tail = Buffer.alloc(4);
  tail.writeUInt16BE(type, 0);
  tail.writeUInt16BE(1, 2); // class IN
  return Buffer.concat([header, ...labels, Buffer.from([0]), tail]);
}

function readName(buf: Buffer, offset: number): { name: string; next: number } {
  const labels: string[] = [];
  let pos = offset;
  let next = -1;
  for (let hops = 0; hops < 64; hops++) {
    const len = buf[pos];
    if (len === undefined) throw new Error('truncated DNS name');
    if (len === 0) {
      if (next < 0) next = pos + 1;
      return { name: labels.join('.'), next };
    }
    if ((len & 0xc0) === 0xc0) {
      if (next < 0) next = pos + 2;
      pos = ((len & 0x3f) << 8) | buf[pos + 1]!;
      continue;
    }
    labels.push(buf.subarray(pos + 1, pos + 1 + len).toString('utf8'));
    pos += 1 + len;
  }
  throw new Error('DNS name compression loop');
}

export interface Answer {
  name: string;
  type: number;
  address?: string;
}

/** The answer and additional records of a DNS response (A and AAAA addresses decoded). */
export function decodeResponse(buf: Buffer): Answer[] {
  const qd = buf.readUInt16BE(4);
  const records = buf.readUInt16BE(6) + buf.readUInt16BE(8) + buf.readUInt16BE(10);
  let pos = 12;
  for (let i = 0; i < qd; i++) pos = readName(buf, pos).next + 4;
  const out: Answer[] = [];
  for (let i = 0; i < records; i++) {
    const { name, next } = readName(buf, pos);
    const type = buf.readUInt16BE(next);
    const len = buf.readUInt16BE(next + 8);
    const data = buf.subarray(next + 10, next + 10 + len);
    let address: string | undefined;
    if (type === TYPE.A && len === 4) address = [...data].join('.');
    if (type === TYPE.AAAA && len === 16) address = [...Array(8).keys()].map((k) => data.readUInt16BE(k * 2).toString(16)).join(':').replace(/(^|:)0(:0)+(:|$)/, '::');
    out.push({ name: name.toLowerCase(), type, address });
    pos = next + 10 + len;
  }
  return out;
}

/** Ask the link's mDNS responders for name's A and AAAA records; addresses found within timeoutMs. */
export function queryMdns(name: string, iface: string, timeoutMs = 6000): Promise<string[]> {
  return new Promise((resolvePromise, reject) => {
    const sock = createSocket({ type: 'udp6' });
    const found = new Set<string>();
    let timer: NodeJS.Timeout | undefined;
    const send = () => {
      for (const [i, type] of [TYPE.AAAA, TYPE.A].entries()) sock.send(encodeQuery(0x5000 + i, name, type), 5353, `ff02::fb%${iface}`);
    };
    sock.on('error', (e) => {
      clearInterval(timer);
      sock.close();
      reject(e);
    });
    sock.on('message', (msg) => {
      try {
        for (const a of decodeResponse(msg)) if (a.name === name.toLowerCase().replace(/\.$/, '') && a.address) found.add(a.address);
      } catch {
        // not a DNS answer we can read
      }
    });
    sock.bind(0, '::', () => {
      sock.setMulticastInterface(`::%${iface}`);
      send();
      timer = setInterval(send, 1000);
      setTimeout(() => {
        clearInterval(timer);
        sock.close();
        resolvePromise([...found].sort());
      }, timeoutMs);
    });
  });
}

function httpStatus(address: string, iface: string, port: number, path: string): Promise<number> {
  const host = address.includes(':') && address.startsWith('fe80') ? `${address}%${iface}` : address;
  return new Promise((resolvePromise) => {
    const req = request({ host, port, path, timeout: 20_000 }, (res) => {
      res.resume();
      resolvePromise(res.statusCode ?? 0);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolvePromise(0));
    req.end();
  });
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const [name, iface, port, path] = process.argv.slice(2);
  if (!name || !iface) {
    process.stderr.write('usage: mdns.ts NAME.local IFACE [PORT PATH]\n');
    process.exit(2);
  }
  const addresses = await queryMdns(name, iface);
  const http: Record<string, number> = {};
  if (port) for (const a of addresses) http[a] = await httpStatus(a, iface, Number(port), path ?? '/');
  process.stdout.write(`${JSON.stringify({ name, iface, addresses, http })}\n`);
}
