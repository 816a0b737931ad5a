// The engine's shape, checked: docs/configuration.md's settings table is the declarations' own; no module
// imports itself through others; no test stand-in or overlay name lives in build/.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { settingsTable, TABLE_END, TABLE_START } from '../../build/config/docs.ts';
import { declarations } from '../../build/config/declared.ts';
import { DEFAULTS } from '../../build/config/schema.ts';
import { isSecretPath } from '../../build/config/secrets.ts';
import { configValue } from '../../build/config/declared.ts';
import { PROJECT_DIR } from '../../build/plan/inputs.ts';
import { importsOf } from '../../build/plan/keys.ts';
import { configDocWithTable, securityDocWithTable, shippedReaders } from '../../ci/docs.ts';
import { readAdvisories, STAGE_ADVISORIES } from '../../build/release/security.ts';

const BUILD = join(PROJECT_DIR, 'build');

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? sources(p) : p.endsWith('.ts') ? [p] : [];
  });
}

test('docs/configuration.md\'s settings table is the one the declarations make (npm run docs writes it)', () => {
  const { current, wanted } = configDocWithTable();
  assert.ok(current.includes(TABLE_START) && current.includes(TABLE_END));
  assert.equal(current, wanted, 'docs/configuration.md is out of date: run `npm run docs`');
});

const SECURITY_FILES = join(PROJECT_DIR, 'stages/25-security/00-files/usr/share/pihub/security');

test('docs/security.md lists every advisory of stage 25-security as its advisories.json says (npm run docs writes it)', () => {
  const { current, wanted } = securityDocWithTable();
  assert.equal(current, wanted, 'docs/security.md is out of date: run `npm run docs`');
  for (const a of readAdvisories(STAGE_ADVISORIES(PROJECT_DIR))) {
    assert.ok(current.includes(a.ids[0]!), `docs/security.md does not name ${a.ids[0]}`);
    // Every patch named exists, and every patch file is named by some advisory.
    for (const p of a.patches) assert.ok(existsSync(join(SECURITY_FILES, p.file)), `${p.file} is missing`);
  }
  const named = new Set(readAdvisories(STAGE_ADVISORIES(PROJECT_DIR)).flatMap((a) => a.patches.map((p) => p.file)));
  for (const f of readdirSync(SECURITY_FILES).filter((x) => /\.(patch|edits)$/.test(x))) assert.ok(named.has(f), `${f} is named by no advisory`);
});

test('nothing outside test/ imports test/: the release gate and the bench use ci/harness, as the tests do', () => {
  const files = [...sources(BUILD), ...sources(join(PROJECT_DIR, 'ci'))];
  const importsTest = files.filter((f) => [...readFileSync(f, 'utf8').matchAll(/from '([^']+)'/g)].some((m) => m[1]!.startsWith('.') && resolve(dirname(f), m[1]!).startsWith(join(PROJECT_DIR, 'test') + '/')));
  assert.deepEqual(importsTest.map((f) => relative(PROJECT_DIR, f)), []);
});

test('the hub\'s default port is written once, in the settings tree (build/ and ci/ take it from there)', () => {
  const files = [...sources(BUILD), ...sources(join(PROJECT_DIR, 'ci'))].filter((f) => !f.endsWith('/config/settings.ts'));
  const literal = files.filter((f) => /\b8888\b/.test(readFileSync(f, 'utf8')));
  assert.deepEqual(literal.map((f) => relative(PROJECT_DIR, f)), []);
});

test('every declared key a config sets has a row, and its declaration decides defaults and secrecy', () => {
  const table = settingsTable(shippedReaders()).join('\n');
  for (const { key, node } of declarations()) {
    const inWhole = key.includes('[]') || key.startsWith('wifi.');
    if (node.kind === 'leaf' && !inWhole) {
      assert.ok(table.includes(`| \`${key}\` |`), `no settings table row for ${key}`);
      assert.deepEqual(configValue(DEFAULTS, key), node.default ?? null, `default of ${key}`);
    }
    if (node.kind === 'leaf') assert.equal(isSecretPath(key.replace('[]', '.0')), node.secret === true, `secrecy of ${key}`);
  }
});

test('no import cycles in build/', () => {
  const graph = new Map<string, string[]>();
  for (const file of sources(BUILD)) {
    const text = readFileSync(file, 'utf8');
    // Static imports and re-exports, and `await import(...)`: a cycle either way (the same
    // reading of imports as the cache keys').
    const deps = importsOf(text).map((spec) => resolve(dirname(file), spec));
    graph.set(file, deps);
  }
  const state = new Map<string, 'open' | 'done'>();
  const cycles: string[] = [];
  const visit = (f: string, path: string[]) => {
    if (state.get(f) === 'done') return;
    if (state.get(f) === 'open') {
      cycles.push([...path.slice(path.indexOf(f)), f].map((x) => relative(BUILD, x)).join(' → '));
      return;
    }
    state.set(f, 'open');
    for (const d of graph.get(f) ?? []) visit(d, [...path, f]);
    state.set(f, 'done');
  };
  for (const f of graph.keys()) visit(f, []);
  assert.ok(graph.size > 30, `found only ${graph.size} modules`);
  assert.deepEqual(cycles, []);
});

/** build/'s folders, the bottom first; the top level (build.ts, cli.ts) last. */
const LAYERS = ['core', 'config', 'bases', 'cache', 'chroot', 'stages', 'image', 'release', 'deploy', 'plan', 'boot', '.'];

test('build/\'s folders are layers: a module imports only from its own folder and the ones below it', () => {
  const layerOf = (file: string) => {
    const rel = relative(BUILD, file);
    return rel.includes('/') ? rel.slice(0, rel.indexOf('/')) : '.';
  };
  const upward: string[] = [];
  for (const file of sources(BUILD)) {
    const from = layerOf(file);
    assert.ok(LAYERS.includes(from), `${relative(BUILD, file)}: the folder ${from} has no place in LAYERS`);
    for (const spec of importsOf(readFileSync(file, 'utf8'))) {
      const to = layerOf(resolve(dirname(file), spec));
      if (LAYERS.indexOf(to) > LAYERS.indexOf(from)) upward.push(`${relative(BUILD, file)} → ${spec}`);
    }
  }
  assert.deepEqual(upward, []);
});

test('build/ holds no test stand-in or test switch, and no engine code names an overlay\'s setting', () => {
  for (const file of sources(BUILD)) {
    const text = readFileSync(file, 'utf8');
    const name = relative(BUILD, file);
    assert.doesNotMatch(text, /FakeRunner|skipHostChecks|[Ff]or tests\b/, `${name} has a test hook`);
    if (name !== 'config/settings.ts') assert.doesNotMatch(text, /'https'|hub\.https/, `${name} names the https overlay or its settings`);
  }
});
