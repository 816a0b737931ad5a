import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatCommand, shellQuote, CommandError, createRunner } from '../../build/core/exec.ts';
import { FakeRunner } from '../helpers/fakes.ts';
import { chooseRenderer } from '../../build/core/progress.ts';

test('commands print the same way everywhere, quoted for a shell', () => {
  assert.equal(formatCommand(['tar', ['-C', '/a b', "it's", '--x=1']]), `tar -C '/a b' 'it'\\''s' --x=1`);
  assert.equal(shellQuote(''), "''");
});

test('the fake runner rejects any command it was not told about', async () => {
  const fake = new FakeRunner().expect('mkpasswd --method=yescrypt', { stdout: '$y$abc\n' });
  assert.equal((await fake.run(['mkpasswd', ['--method=yescrypt', '--stdin']], { input: 'pw\n' })).stdout, '$y$abc\n');
  await assert.rejects(fake.run(['rm', ['-rf', '/']]), /FakeRunner: unexpected command: rm -rf \//);
  assert.equal(fake.calls.length, 1);
});

test('a failing command names the step, the command and the tail of its output', async () => {
  const lines: string[] = [];
  const runner = createRunner({ write: (t) => lines.push(t) });
  await assert.rejects(
    runner.run(['sh', ['-c', 'echo one; echo two >&2; exit 3']], { step: '10-system/02-packages' }),
    (err: Error) => {
      assert.ok(err instanceof CommandError);
      assert.match(err.message, /^step "10-system\/02-packages" failed: `sh -c 'echo one; echo two >&2; exit 3'` exited with code 3/);
      assert.match(err.message, /\| one\n {2}\| two/);
      return true;
    },
  );
  assert.ok(lines.join('').includes('$ sh -c'), 'the command goes to the log');
});

test('a program that is not installed is named', async () => {
  const runner = createRunner({ write: () => {} });
  await assert.rejects(runner.run(['pihub-no-such-tool', []], { step: 's' }), /`pihub-no-such-tool` is not installed or not on PATH/);
});

test('input goes to stdin and never into the log', async () => {
  const log: string[] = [];
  const runner = createRunner({ write: (t) => log.push(t) });
  const r = await runner.run(['wc', ['-c']], { input: 'secret-password', capture: true });
  assert.equal(r.stdout.trim(), '15');
  assert.ok(!log.join('').includes('secret-password'));
});

test('an aborted signal stops a running command', async () => {
  const ac = new AbortController();
  const runner = createRunner({ write: () => {} }, ac.signal);
  const started = Date.now();
  setTimeout(() => ac.abort('SIGINT'), 200);
  await assert.rejects(runner.run(['sleep', ['30']]), /interrupted by SIGINT/);
  assert.ok(Date.now() - started < 5000);
});

test('renderer: live tree on a terminal, lines on CI or without a TTY, nothing with --quiet', () => {
  assert.equal(chooseRenderer({ quiet: false, isTTY: true, env: {} }), 'default');
  assert.equal(chooseRenderer({ quiet: false, isTTY: true, env: { CI: 'true' } }), 'simple');
  assert.equal(chooseRenderer({ quiet: false, isTTY: false, env: {} }), 'simple');
  assert.equal(chooseRenderer({ quiet: true, isTTY: true, env: {} }), 'silent');
});
