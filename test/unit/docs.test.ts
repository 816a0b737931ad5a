// The documentation says what the code does: every link and anchor leads somewhere, every
// `npm run` script exists, every repository path it names exists, and every option it gives
// pihub (or ci/release.ts) in a command is one the command has. (The generated tables are the
// shape test's.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { BOOT_HELP } from '../../build/boot/cli.ts';
import { BUILD_HELP, CACHE_HELP, MAIN_HELP, MANIFEST_HELP } from '../../build/cli.ts';
import { PROJECT_DIR } from '../../build/plan/inputs.ts';

const DOCS = [
  'README.md', 'overlays/README.md', 'bases/README.md',
  ...readdirSync(join(PROJECT_DIR, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`),
];
const text = (doc: string) => readFileSync(join(PROJECT_DIR, doc), 'utf8');

/** GitHub's anchor for a heading. */
function slug(heading: string): string {
  return heading.trim().toLowerCase().replace(/[`*_]/g, '').replace(/[^\p{L}\p{N} -]/gu, '').replace(/ /g, '-');
}
const anchors = (doc: string) => new Set([...text(doc).matchAll(/^#{1,6} (.+)$/gm)].map((m) => slug(m[1]!)));

test('every link of the docs leads to a file of the repository, and every anchor to a heading', () => {
  const broken: string[] = [];
  for (const doc of DOCS) {
    for (const [, target] of text(doc).matchAll(/\]\(([^)\s]+)\)/g)) {
      if (/^(https?|mailto):/.test(target!) || target!.startsWith('../../')) continue;
      const [path, anchor] = target!.split('#');
      const file = path ? resolve(dirname(join(PROJECT_DIR, doc)), path) : join(PROJECT_DIR, doc);
      if (!existsSync(file)) broken.push(`${doc}: ${target} (no such file)`);
      else if (anchor && file.endsWith('.md') && !anchors(relative(PROJECT_DIR, file)).has(anchor)) broken.push(`${doc}: ${target} (no such heading)`);
    }
  }
  assert.deepEqual(broken, []);
});

test('every `npm run` script and every repository path the docs name exists', () => {
  const scripts = Object.keys((JSON.parse(text('package.json')) as { scripts: Record<string, string> }).scripts);
  const missing: string[] = [];
  for (const doc of DOCS) {
    const t = text(doc);
    for (const [, name] of t.matchAll(/npm run ([a-z:-]+)/g)) if (!scripts.includes(name!)) missing.push(`${doc}: npm run ${name}`);
    for (const [, path] of t.matchAll(/`((?:ci|build|test|stages|overlays|bases|docs)\/[A-Za-z0-9_./-]+)`/g)) {
      // Patterns and examples (NN-name, <name>, globs) are not paths.
      if (/NN|\*|\.\.\.|…/.test(path!)) continue;
      if (!existsSync(join(PROJECT_DIR, path!))) missing.push(`${doc}: ${path}`);
    }
  }
  assert.deepEqual(missing, []);
});

test('every option the docs give pihub or ci/release.ts in a command is one the command has', () => {
  // The options each command has, as its help says them (exact names, not parts of them).
  const optionsIn = (help: string) => new Set([...help.matchAll(/--[a-z][a-z-]*/g)].map((m) => m[0]));
  const pihub = optionsIn([MAIN_HELP, BUILD_HELP, BOOT_HELP, MANIFEST_HELP, CACHE_HELP].join('\n'));
  const releaseHelp = /const HELP = `([^`]*)`/.exec(readFileSync(join(PROJECT_DIR, 'ci/release.ts'), 'utf8'))?.[1] ?? '';
  const release = optionsIn(releaseHelp);
  assert.ok(release.has('--tag') && pihub.has('--set'), 'the help texts were found');
  const unknown: string[] = [];
  for (const doc of DOCS) {
    // Commands: lines of sh code blocks, and code spans that run pihub.
    const t = text(doc);
    const blocks = [...t.matchAll(/```sh\n([\s\S]*?)```/g)].flatMap((m) => m[1]!.split('\n'));
    const spans = [...t.matchAll(/`([^`\n]*pihub[^`\n]*)`/g)].map((m) => m[1]!);
    for (const line of [...blocks, ...spans]) {
      const command = line.replace(/#.*$/, '');
      // What follows the command: `pihub build …`, `npm run pihub -- boot …`, `ci/release.ts …`.
      const run = /(?:npm run pihub --|\bpihub(?:\.js)?)\s+(?:build|boot|manifest|cache|bases)\b(.*)$/.exec(command)?.[1];
      const rel = /ci\/release\.ts\b(.*)$/.exec(command)?.[1];
      const check = (args: string, known: ReadonlySet<string>) => {
        for (const [, option] of args.matchAll(/(?:^|\s)(--[a-z][a-z-]*)/g)) {
          if (!known.has(option!)) unknown.push(`${doc}: ${option} in \`${command.trim()}\``);
        }
      };
      if (run !== undefined) check(run, pihub);
      if (rel !== undefined) {
        // Options after `--` go to pihub build.
        const [own, passed] = rel.split(/ -- /);
        check(own ?? '', release);
        if (passed) check(passed, pihub);
      }
    }
  }
  assert.deepEqual(unknown, []);
});
