// Which entries a restore of only the changes touches (build/cache/restore.ts), from two walks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseWalk, planRestore, walkCommand } from '../../build/cache/restore.ts';

const walk = (lines: string[]) => parseWalk(Buffer.from(lines.map((l) => `${l}\0`).join(''), 'latin1'));

test('find prints each entry as inode, ctime, type and path (NUL-separated, any bytes)', () => {
  assert.deepEqual(walkCommand('/w/now.walk'), ['find', ['.', '-xdev', '-fprintf', '/w/now.walk', '%i %C@ %y %p\\0']]);
  const w = parseWalk(Buffer.concat([Buffer.from('7 1.5 f ./a b'), Buffer.from([0xe9, 0])]));
  assert.deepEqual([...w], [['./a b\xe9', { ino: '7', ctime: '1.5', type: 'f' }]]);
});

test('unchanged entries are left alone; changed, added, removed and replaced ones are redone', () => {
  const before = walk(['1 1.0 d .', '2 1.0 d ./etc', '3 1.0 f ./etc/hostname', '4 1.0 f ./etc/passwd', '5 1.0 d ./opt', '6 1.0 f ./opt/x', '7 1.0 f ./keep', '8 1.0 s ./sock']);
  const now = walk(['1 1.0 d .', '2 9.0 d ./etc', '3 9.0 f ./etc/hostname', '9 9.0 f ./etc/new', '50 9.0 d ./opt', '7 1.0 f ./keep', '8 1.0 s ./sock']);
  const plan = planRestore(before, now);
  assert.deepEqual(plan.remove.sort(), ['./etc/hostname', './etc/new', './opt', './sock']);
  assert.deepEqual(plan.dirs.sort(), ['.', './etc']);
  assert.deepEqual(plan.extract.sort(), ['.', './etc', './etc/hostname', './etc/passwd', './opt', './opt/x']);
});

test('a file extracted anew takes its hard links with it', () => {
  const before = walk(['1 1.0 d .', '2 1.0 f ./a', '2 1.0 f ./b', '3 1.0 f ./c']);
  const now = walk(['1 1.0 d .', '2 1.0 f ./b', '3 1.0 f ./c']);
  const plan = planRestore(before, now);
  assert.deepEqual(plan.extract.sort(), ['.', './a', './b']);
  assert.deepEqual(plan.remove, ['./b']);
});
