// Reading a file the user named: only a regular file, never more than a cap, never blocking.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FileProblem, MiB, readInputText, readRegularFile } from '../../build/core/files.ts';
import { InputError } from '../../build/core/errors.ts';
import { scratch } from '../helpers/tmp.ts';

test('readRegularFile: a file up to the cap; a folder, FIFO, device or a file over the cap is a FileProblem, at once', { timeout: 10_000 }, () => {
  const dir = scratch('pihub-read-');
  writeFileSync(join(dir, 'ok'), 'hello\n');
  assert.equal(readRegularFile(join(dir, 'ok'), 1024).toString(), 'hello\n');
  mkdirSync(join(dir, 'folder'));
  execFileSync('mkfifo', [join(dir, 'fifo')]);
  writeFileSync(join(dir, 'big'), '');
  truncateSync(join(dir, 'big'), 5 * MiB);
  symlinkSync(join(dir, 'ok'), join(dir, 'link'));
  const problem = (path: string, max: number, o = {}) => {
    try {
      readRegularFile(path, max, o);
    } catch (err) {
      assert.ok(err instanceof FileProblem, String(err));
      return err.reason;
    }
    return 'read';
  };
  assert.equal(problem(join(dir, 'folder'), MiB), 'is a folder, not a file');
  assert.equal(problem(join(dir, 'fifo'), MiB), 'is a FIFO (named pipe), not a file');
  assert.equal(problem('/dev/zero', MiB), 'is a device, not a file');
  assert.equal(problem(join(dir, 'big'), 4 * MiB), 'is 5 MiB, more than the 4 MiB pihub reads from such a file');
  assert.equal(problem(join(dir, 'none'), MiB), 'does not exist');
  assert.equal(problem(join(dir, 'link'), MiB), 'read', 'a symlink to a file is followed by default');
  assert.equal(problem(join(dir, 'link'), MiB, { follow: false }), 'is a symbolic link, not a file');
  assert.throws(() => readInputText(join(dir, 'fifo'), 'config file x', 'give --config a YAML file'), (err: Error) => err instanceof InputError && err.message === 'config file x is a FIFO (named pipe), not a file; give --config a YAML file');
});
