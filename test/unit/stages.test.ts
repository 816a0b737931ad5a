import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync, symlinkSync, chmodSync } from 'node:fs';
import { scriptCommand } from '../../build/stages/step.ts';
import { join } from 'node:path';
import { loadStage, loadStages, parsePackageList, parseShebang, climbsOut } from '../../build/stages/load.ts';
import { renderTemplate, templateKeys, pyLiteral } from '../../build/stages/template.ts';
import { InputError } from '../../build/core/errors.ts';
import { PROJECT_DIR } from '../../build/plan/inputs.ts';
import { scratch, tmpTree } from '../helpers/tmp.ts';

const stageDir = (files: Record<string, string>) => tmpTree('pihub-stage-', files);

test('a stage file of an unknown kind is an error naming the file and the allowed kinds', () => {
  const dir = stageDir({ '00-packages': 'nano\n', '01-instal.sh': '#!/bin/sh\n' });
  assert.throws(() => loadStage(dir, '10-x'), (err: Error) => {
    assert.ok(err instanceof InputError);
    assert.match(err.message, /01-instal\.sh: unknown stage file; allowed in a stage: stage\.yaml, SKIP/);
    return true;
  });
});

test('substeps run in prefix order, pi-gen kind order within a prefix', () => {
  const dir = stageDir({
    '01-run-chroot.sh': '#!/bin/sh -e\n',
    '01-packages': 'nano # editor\ncurl less\n',
    '00-run.sh': '#!/bin/bash\n',
    '01-debconf': 'x x/y string z\n',
    '01-files/etc/motd': 'hi\n',
  });
  const stage = loadStage(dir, '10-x');
  assert.deepEqual(stage.substeps.map((s) => s.name), ['00-run.sh', '01-debconf', '01-packages', '01-files', '01-run-chroot.sh']);
  assert.deepEqual(stage.substeps[2]!.packages, ['nano', 'curl', 'less']);
  assert.deepEqual(stage.substeps[4]!.interpreter, ['/bin/sh', '-e']);
  const files = stage.substeps[3]!.files!;
  assert.deepEqual(files.map((f) => [f.target, f.type, f.mode.toString(8), f.owner]), [
    ['/etc', 'dir', '755', 'root'],
    ['/etc/motd', 'file', '644', 'root'],
  ]);
});

test('file modes: executables 0755, overrides from stage.yaml, templates lose .tmpl', () => {
  const dir = stageDir({
    'stage.yaml': 'reads: [hub.port]\nfiles:\n  /root/conf.py: { mode: "0600" }\n',
    '00-files/root/conf.py.tmpl': 'port = {{ hub.port }}\n',
    '00-files/usr/bin/tool': '#!/bin/sh\n',
  });
  chmodSync(join(dir, '00-files/usr/bin/tool'), 0o755);
  const files = loadStage(dir, '10-x').substeps[0]!.files!;
  const byTarget = Object.fromEntries(files.map((f) => [f.target, f]));
  assert.equal(byTarget['/root/conf.py']!.mode, 0o600);
  assert.equal(byTarget['/root/conf.py']!.template, true);
  assert.equal(byTarget['/usr/bin/tool']!.mode, 0o755);
});

test('a template that uses a key the stage does not read is refused', () => {
  const dir = stageDir({ '00-files/etc/x.tmpl': 'port {{ hub.port }}\n' });
  assert.throws(() => loadStage(dir, '10-x'), /uses `\{\{ hub\.port \}\}` but the stage does not read `hub\.port`/);
});

test('reads must name config keys', () => {
  const dir = stageDir({ 'stage.yaml': 'reads: [hub.prot]\n' });
  assert.throws(() => loadStage(dir, '10-x'), /`reads` names `hub\.prot`, which is not a config key/);
});

test('stage.yaml with an unknown key is refused', () => {
  const dir = stageDir({ 'stage.yaml': 'description: x\nread: [hub.port]\n' });
  assert.throws(() => loadStage(dir, '10-x'), /unknown key `read`/);
});

test('a files entry must be a directory; a script needs a #! line', () => {
  assert.throws(() => loadStage(stageDir({ '00-files': 'x' }), '10-x'), /00-files: must be a directory/);
  assert.throws(() => loadStage(stageDir({ '00-run.sh': 'echo hi\n' }), '10-x'), /a script must start with a #! line/);
});

test('a symlink that climbs out of the image root is refused', () => {
  const dir = stageDir({ '00-files/etc/.keep': '' });
  symlinkSync('../../../../etc/shadow', join(dir, '00-files/etc/evil'));
  assert.throws(() => loadStage(dir, '10-x'), /symlink to `\.\.\/\.\.\/\.\.\/\.\.\/etc\/shadow` climbs out of the image root/);
  assert.equal(climbsOut('/etc', '../usr/lib'), false);
  assert.equal(climbsOut('/etc', '/usr/lib'), false);
  assert.equal(climbsOut('/', '..'), true);
});

test('package lists: comments, whitespace, bad names with line numbers', () => {
  assert.deepEqual(parsePackageList('# c\nvim nano\n\nlibc6:arm64 # x\n', 'p'), ['vim', 'nano', 'libc6:arm64']);
  assert.throws(() => parsePackageList('ok\nNot_OK\n', 'list'), /list:2: `Not_OK` is not a Debian package name/);
});

test('shebang parsing', () => {
  assert.deepEqual(parseShebang('#!/usr/bin/env bash\n', 's'), ['/usr/bin/env', 'bash']);
  assert.throws(() => parseShebang('#!bash\n', 's'), /absolute interpreter/);
});

test('the shipped stages load; only the first bootstraps', () => {
  const stages = loadStages(join(PROJECT_DIR, 'stages'));
  assert.equal(stages[0]!.id, '00-bootstrap');
  assert.ok(stages[0]!.substeps.some((s) => s.kind === 'bootstrap'));
  assert.ok(stages.slice(1).every((s) => !s.substeps.some((x) => x.kind === 'bootstrap')));
  assert.ok(stages.some((s) => s.id === '20-jupyterhub'));
});

test('a stage directory with a bad name, and a second bootstrap, are refused', () => {
  const root = scratch('pihub-stages-');
  mkdirSync(join(root, 'system'));
  assert.throws(() => loadStages(root), /system: not a stage; stages are directories named NN-name/);
  const root2 = scratch('pihub-stages-');
  for (const s of ['00-a', '10-b']) {
    mkdirSync(join(root2, s));
    writeFileSync(join(root2, s, '00-bootstrap'), 'nano\n');
  }
  assert.throws(() => loadStages(root2), /only the first stage may bootstrap/);
});

test('templates: keys, filters and Python literals', () => {
  const text = 'a={{ hub.port }} b={{ name | py }} c={{ users | json }} d={{ x | shell }}';
  assert.deepEqual(templateKeys(text), ['hub.port', 'name', 'users', 'x']);
  const values: Record<string, unknown> = { 'hub.port': 8000, name: "it's", users: [{ a: true }], x: "a b'c" };
  assert.equal(renderTemplate(text, (k) => values[k]), `a=8000 b='it\\'s' c=[{"a":true}] d='a b'\\''c'`);
  assert.equal(pyLiteral({ a: [true, null, 'x'] }), "{'a': [True, None, 'x']}");
});

test('shell scripts run with -e -u whatever their #! line; other interpreters as written', () => {
  assert.deepEqual(scriptCommand(['/bin/sh'], '/s/x.sh'), ['/bin/sh', '-e', '-u', '/s/x.sh']);
  assert.deepEqual(scriptCommand(['/bin/sh', '-e'], '/s/x.sh'), ['/bin/sh', '-e', '-u', '/s/x.sh']);
  assert.deepEqual(scriptCommand(['/bin/bash', '-x'], '/s/x.sh'), ['/bin/bash', '-e', '-u', '-x', '/s/x.sh']);
  assert.deepEqual(scriptCommand(['/usr/bin/env', 'bash'], '/s/x.sh'), ['/usr/bin/env', 'bash', '-e', '-u', '/s/x.sh']);
  assert.deepEqual(scriptCommand(['/usr/bin/python3', '-B'], '/s/x.py'), ['/usr/bin/python3', '-B', '/s/x.py']);
});

test('a stage script that fails half way, or reads an unset variable, stops there (real sh)', () => {
  const dir = stageDir({ 'fail.sh': '#!/bin/sh\nfalse\necho reached\n', 'unset.sh': '#!/bin/sh\necho "$PIHUB_NO_SUCH_KEY"\necho reached\n' });
  for (const f of ['fail.sh', 'unset.sh']) {
    const [program, ...args] = scriptCommand(parseShebang(readFileSync(join(dir, f), 'utf8'), f), join(dir, f));
    const r = spawnSync(program!, args, { encoding: 'utf8' });
    assert.notEqual(r.status, 0, `${f} went on`);
    assert.doesNotMatch(r.stdout, /reached/);
  }
});
