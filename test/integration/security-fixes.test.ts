// pihub's own security patches (stage 25-security) on Debian's real package files, in a scratch
// root: the card's security-fixes script applies them exactly, keeps them through an upgrade
// of the package, and refuses one that no longer fits; the image's security record, its
// manifest section and the SBOM say what was changed.
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Cache } from '../../build/cache/cache.ts';
import { hostArch } from '../../build/chroot/tools.ts';
import { PROJECT_DIR } from '../../build/plan/inputs.ts';
import { makeSbom } from '../../build/release/sbom.ts';
import { readAdvisories, sbomModifications, securityRecord, STAGE_ADVISORIES } from '../../build/release/security.ts';
import { downloadClosure } from '../helpers/apt.ts';
import { CACHE_DIR } from '../helpers/build.ts';
import { scratch } from '../helpers/tmp.ts';

const FILES = join(PROJECT_DIR, 'stages/25-security/00-files');
const SCRIPT = join(FILES, 'usr/local/lib/pihub/security-fixes');

function fixes(root: string, ...args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync('python3', [SCRIPT, ...args], { env: { ...process.env, PIHUB_SECURITY_ROOT: root }, encoding: 'utf8' });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/**
 * Python: JupyterHub's get_xsrf_token for a first visit (no cookie, a navigation) with a clock
 * that moves a second at each reading; prints whether the form's token is the cookie's.
 */
const XSRF_TWICE = `
import sys, time, unittest.mock
sys.path.insert(0, sys.argv[1])
import tornado.web, tornado.httputil
from jupyterhub import _xsrf_utils
now = [1000.5]
def clock():
    now[0] += 1.0
    return now[0]
time.time = clock
app = tornado.web.Application(cookie_secret='0' * 32)
req = tornado.httputil.HTTPServerRequest(method='GET', uri='/hub/login', headers=tornado.httputil.HTTPHeaders({'Sec-Fetch-Mode': 'navigate'}), connection=unittest.mock.Mock())
class Page(tornado.web.RequestHandler):
    _xsrf_token_id = 'None:anonymous'
    def get_current_user(self):
        return None
h = Page(app, req)
form = _xsrf_utils.get_xsrf_token(h, cookie_path='/hub/')
cookie = h._new_cookie['_xsrf'].value.encode()
print('form and cookie agree' if form == cookie else 'form and cookie differ')
`;

describe('pihub\'s security patches on Debian\'s packages', { timeout: 10 * 60_000 }, () => {
  const advisories = readAdvisories(STAGE_ADVISORIES(PROJECT_DIR));
  const patched = [...new Set(advisories.flatMap((a) => a.patches.map((p) => p.package)))];
  let debs: Array<{ name: string; version: string; file: string }> = [];
  let root = '';

  /** Unpack the packages into root, as dpkg would (an install or an upgrade puts Debian's files back). */
  const unpack = () => {
    for (const d of debs.filter((x) => patched.includes(x.name))) execFileSync('dpkg-deb', ['-x', d.file, root]);
  };

  before(async () => {
    // The same download folder as the wheelhouse test's (the stand-in for PyPI): shared downloads.
    // The shared cache, made a pihub cache first (a folder of downloads alone would not be one).
    new Cache(CACHE_DIR).ensure();
    const archives = join(CACHE_DIR, 'debs', `trixie-${hostArch()}`);
    mkdirSync(archives, { recursive: true });
    debs = await downloadClosure({ arch: hostArch(), suite: 'trixie', packages: patched, archives });
    root = join(scratch('pihub-security-'), 'root');
    mkdirSync(join(root, 'var/lib/dpkg'), { recursive: true });
    writeFileSync(join(root, 'var/lib/dpkg/status'), debs.filter((d) => patched.includes(d.name))
      .map((d) => `Package: ${d.name}\nStatus: install ok installed\nVersion: ${d.version}\nArchitecture: all\n`).join('\n'));
    unpack();
    cpSync(join(FILES, 'usr/share/pihub/security'), join(root, 'usr/share/pihub/security'), { recursive: true });
  });

  it('each patch is written for the version the archive has, and applies exactly, once', () => {
    for (const a of advisories) {
      for (const p of a.patches) {
        const v = debs.find((d) => d.name === p.package)?.version;
        assert.ok(v && p.for.includes(v), `${p.file} is for ${p.package} ${p.for.join(', ')}; the archive has ${v}`);
      }
    }
    assert.equal(fixes(root, 'check').code, 1, 'Debian\'s files are not fixed yet');
    const first = fixes(root, 'apply', '--strict');
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /: applied now$/m);
    // The checksums the hub's start checks with sha256sum (paths as on the card), right after
    // the run that applied them (two patches change one file: the sum is of the file as it ends).
    const sums = readFileSync(join(root, 'var/lib/pihub/security-fixes.sha256'), 'utf8').trim().split('\n');
    assert.ok(sums.length >= advisories.flatMap((a) => a.patches).length, sums.join('\n'));
    for (const line of sums) {
      const [sum, path] = line.split(/ {2}/);
      assert.equal(createHash('sha256').update(readFileSync(join(root, path!))).digest('hex'), sum, path);
    }
    const again = fixes(root, 'apply', '--strict');
    assert.equal(again.code, 0, again.stderr);
    assert.equal(again.stdout, '', 'a second run changes nothing');
    assert.equal(fixes(root, 'check').code, 0);
    // Every changed file carries pihub's marked lines and has byte code made from it.
    const state = JSON.parse(readFileSync(join(root, 'var/lib/pihub/security-fixes.json'), 'utf8')) as { patches: Array<{ state: string; files: Array<{ path: string; sha256: string }> }> };
    for (const p of state.patches) {
      assert.equal(p.state, 'in place');
      for (const f of p.files) {
        const text = readFileSync(join(root, f.path), 'utf8');
        assert.equal(createHash('sha256').update(text).digest('hex'), f.sha256, `${f.path} is what the record says`);
        if (!f.path.endsWith('.py')) continue;
        assert.ok(/# pihub \((CVE|GHSA)-/.test(text), `${f.path} has no line marked as pihub's`);
        const pyc = execFileSync('python3', ['-c', 'import importlib.util, sys; print(importlib.util.cache_from_source(sys.argv[1]))', join(root, f.path)]).toString().trim();
        assert.ok(existsSync(pyc), `no byte code for ${f.path}`);
        assert.ok(statSync(pyc).mtimeMs >= statSync(join(root, f.path)).mtimeMs - 1000);
      }
    }
  });

  it('puts the fixes back after an upgrade put Debian\'s files back', () => {
    unpack();
    assert.equal(fixes(root, 'check').code, 1);
    assert.match(fixes(root, 'status').stdout, /: missing$/m);
    const r = fixes(root, 'apply');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(fixes(root, 'check').code, 0);
  });

  it('signs a page\'s XSRF token once: its form and its cookie agree when the clock\'s second changes between them (a login got 403)', () => {
    // A login page's GET on Debian's files, with a clock that moves a second at each reading: the
    // token in the form and the one in the cookie are signed at different seconds.
    const sameToken = () => {
      const r = spawnSync('python3', ['-c', XSRF_TWICE, join(root, 'usr/lib/python3/dist-packages')], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      return r.stdout.trim();
    };
    unpack();
    assert.equal(sameToken(), 'form and cookie differ', 'Debian\'s files have the flaw (the check can fail)');
    assert.equal(fixes(root, 'apply', '--strict').code, 0);
    assert.equal(sameToken(), 'form and cookie agree');
  });

  it('leaves every file of a patch alone when one of them no longer fits, and says so', () => {
    unpack();
    // A multi-file patch whose second file changed in a way the patch does not know.
    const multi = advisories.flatMap((a) => a.patches).find((p) => {
      const text = readFileSync(join(root, 'usr/share/pihub/security', p.file), 'utf8');
      return (text.match(/^\+\+\+ /gm) ?? []).length > 1;
    });
    assert.ok(multi, 'a patch that changes two files');
    const body = readFileSync(join(root, 'usr/share/pihub/security', multi.file), 'utf8');
    const [first, second] = [...body.matchAll(/^\+\+\+ b\/(\S+)/gm)].map((m) => m[1]!);
    const before = readFileSync(join(root, first!), 'utf8');
    const removed = /^-(.+)$/m.exec(body.slice(body.indexOf(`+++ b/${second}`)))![1]!;
    const secondPath = join(root, second!);
    writeFileSync(secondPath, readFileSync(secondPath, 'utf8').replace(removed, `${removed}  # changed upstream`));
    const r = fixes(root, 'apply', '--strict');
    assert.equal(r.code, 1, 'the build stops: the patch does not fit the version it was written for');
    assert.match(r.stderr, new RegExp(`${multi.file.replace('.', '\\.')} .*: does not fit`));
    assert.equal(readFileSync(join(root, first!), 'utf8'), before, 'the other file of the patch is untouched');
    assert.match(readFileSync(join(root, 'etc/pihub/issue.d/60-security-fixes'), 'utf8'), new RegExp(multi.file.replace('.', '\\.')));
    // On the card (no --strict, after an upgrade) it is reported and the other patches still apply.
    const card = fixes(root, 'apply');
    assert.equal(card.code, 0, card.stderr);
    assert.match(card.stderr, /: does not fit/);
    assert.match(fixes(root, 'status').stdout, /: in place$/m);
  });

  it('records in the image what it changed: manifest section and SBOM', () => {
    unpack();
    writeFileSync(join(root, 'var/lib/dpkg/status'), debs.filter((d) => patched.includes(d.name))
      .map((d) => `Package: ${d.name}\nStatus: install ok installed\nVersion: ${d.version}\nArchitecture: all\nSource: ${d.name}\n`).join('\n'));
    assert.equal(fixes(root, 'apply', '--strict').code, 0);
    const record = securityRecord(root)!;
    assert.equal(record.advisories.length, advisories.length);
    for (const a of record.advisories) for (const p of a.patches) assert.equal(p.state, 'in place', `${p.file}`);
    const sbom = makeSbom(root, { name: 'x', file: 'x.img', rawSha256: '0'.repeat(64), suite: 'trixie', created: '2026-12-05T00:00:00Z', tool: 'pihub-test', modified: sbomModifications(record, root) }) as {
      packages: Array<{ name: string; versionInfo: string; supplier: string; comment?: string }>;
      files: Array<{ SPDXID: string; fileName: string }>;
      relationships: Array<{ spdxElementId: string; relationshipType: string; relatedSpdxElement: string }>;
    };
    for (const name of patched) {
      const p = sbom.packages.find((x) => x.name === name)!;
      assert.match(p.versionInfo, /\+pihub$/, `${name} does not claim to be Debian's own build`);
      assert.equal(p.supplier, 'Organization: pihub');
      for (const a of advisories.filter((x) => x.patches.some((y) => y.package === name))) assert.ok(p.comment?.includes(a.ids[0]!), `${name}'s comment names ${a.ids[0]}`);
    }
    // One PATCH_APPLIED per patch file and the package it changed (two advisories may share one).
    const applied = sbom.relationships.filter((r) => r.relationshipType === 'PATCH_APPLIED').map((r) => `${r.spdxElementId} ${r.relatedSpdxElement}`);
    assert.equal(new Set(applied).size, applied.length, `repeated: ${applied.join(', ')}`);
    assert.equal(applied.length, new Set(advisories.flatMap((a) => a.patches.map((p) => `${p.file} ${p.package}`))).size);
    assert.ok(!sbom.relationships.some((r) => r.relationshipType === 'CONTAINS' && sbom.files.some((f) => f.SPDXID === r.relatedSpdxElement)), 'the image (filesAnalyzed: false) contains no file element');
    assert.ok(sbom.files.every((f) => f.fileName.startsWith('./usr/share/pihub/security/')));
    // An image whose patch is not in place does not claim the advisory fixed.
    unpack();
    assert.equal(fixes(root, 'status').code, 0);
    const stateFile = join(root, 'var/lib/pihub/security-fixes.json');
    const state = JSON.parse(readFileSync(stateFile, 'utf8')) as { patches: Array<{ patch: string; state: string }> };
    state.patches[0]!.state = 'missing';
    writeFileSync(stateFile, JSON.stringify(state));
    const open = securityRecord(root)!.advisories.filter((a) => a.patches.some((p) => p.file === state.patches[0]!.patch));
    assert.ok(open.length > 0 && open.every((a) => a.status === 'open'), JSON.stringify(open.map((a) => a.status)));
  });
});
