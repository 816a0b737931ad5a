import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeResponse, encodeQuery } from '../helpers/mdns.ts';

test('an mDNS query asks for one name and type, class IN', () => {
  const q = encodeQuery(0x1234, 'garden-pi.local', 28);
  assert.equal(q.readUInt16BE(0), 0x1234);
  assert.equal(q.readUInt16BE(4), 1);
  assert.deepEqual([...q.subarray(12)], [9, ...Buffer.from('garden-pi'), 5, ...Buffer.from('local'), 0, 0, 28, 0, 1]);
});

test('answers are decoded, compressed names included', () => {
  const q = encodeQuery(0, 'garden-pi.local', 28);
  const header = Buffer.from(q.subarray(0, 12));
  header.writeUInt16BE(0x8400, 2);
  header.writeUInt16BE(2, 6); // two answers
  const question = q.subarray(12);
  // AAAA fe80::5054:ff:fe12:3456 and A 10.0.2.15, both for the name at offset 12 (a pointer).
  const aaaa = Buffer.from([0xc0, 12, 0, 28, 0x80, 1, 0, 0, 0, 120, 0, 16, 0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0x50, 0x54, 0, 0xff, 0xfe, 0x12, 0x34, 0x56]);
  const a = Buffer.from([0xc0, 12, 0, 1, 0x80, 1, 0, 0, 0, 120, 0, 4, 10, 0, 2, 15]);
  const answers = decodeResponse(Buffer.concat([header, question, aaaa, a]));
  assert.deepEqual(answers, [
    { name: 'garden-pi.local', type: 28, address: 'fe80::5054:ff:fe12:3456' },
    { name: 'garden-pi.local', type: 1, address: '10.0.2.15' },
  ]);
});
