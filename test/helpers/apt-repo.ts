// A local apt repository for the tests, standing in for Raspberry Pi's (not reachable here):
// real .deb files (dpkg-deb), Packages and Release written as apt's archive tools write them,
// signed with a test key made on the spot (gpg), served over HTTP on 127.0.0.1. Variants:
// signed by the key the image trusts, unsigned, or signed by another key.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { basename, join, normalize, relative } from 'node:path';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';

const run = promisify(execFile);

export interface TestKey {
  /** GNUPGHOME holding the secret key. */
  home: string;
  fingerprint: string;
  /** The public key, exported as a binary keyring (what a profile's `keyring` names). */
  keyring: string;
}

/** A new signing key (ed25519, no passphrase) in its own GNUPGHOME under `dir`. */
export async function makeKey(dir: string, name: string): Promise<TestKey> {
  const home = join(dir, `gnupg-${name}`);
  mkdirSync(home, { recursive: true, mode: 0o700 });
  const gpg = (args: string[]) => run('gpg', ['--homedir', home, '--batch', '--no-tty', ...args]);
  await gpg(['--passphrase', '', '--quick-gen-key', `pihub test ${name} <${name}@pihub.invalid>`, 'ed25519', 'sign', 'never']);
  const { stdout } = await gpg(['--with-colons', '--list-keys']);
  const fingerprint = /^fpr:+([0-9A-F]{40}):/m.exec(stdout)?.[1];
  if (!fingerprint) throw new Error(`gpg made no key:\n${stdout}`);
  const keyring = join(dir, `${name}.pgp`);
  await gpg(['--output', keyring, '--export', fingerprint]);
  return { home, fingerprint, keyring };
}

export interface DebSpec {
  name: string;
  version: string;
  architecture: string;
  description: string;
  /** Files in the package: absolute path → content. */
  files: Record<string, string>;
  depends?: string;
}

/** A real .deb, built with dpkg-deb. */
export async function makeDeb(dir: string, spec: DebSpec): Promise<string> {
  const tree = join(dir, `${spec.name}-tree`);
  mkdirSync(join(tree, 'DEBIAN'), { recursive: true });
  for (const [path, content] of Object.entries(spec.files)) {
    const full = join(tree, path);
    mkdirSync(join(full, '..'), { recursive: true });
    writeFileSync(full, content);
  }
  const control = [
    `Package: ${spec.name}`,
    `Version: ${spec.version}`,
    `Architecture: ${spec.architecture}`,
    'Maintainer: pihub tests <tests@pihub.invalid>',
    ...(spec.depends ? [`Depends: ${spec.depends}`] : []),
    `Description: ${spec.description}`,
    '',
  ].join('\n');
  writeFileSync(join(tree, 'DEBIAN/control'), control);
  const deb = join(dir, `${spec.name}_${spec.version}_${spec.architecture}.deb`);
  await run('dpkg-deb', ['--root-owner-group', '-Zxz', '--build', tree, deb]);
  return deb;
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

export interface RepoSpec {
  suite: string;
  component: string;
  architectures: string[];
  debs: string[];
  /** Sign with this key; null leaves the repository unsigned. */
  signWith: TestKey | null;
}

/** Lays out pool/ and dists/SUITE/ in `root`: Packages(.gz) per architecture, Release, InRelease and Release.gpg. */
export async function writeRepo(root: string, spec: RepoSpec): Promise<void> {
  const pool = join(root, 'pool', spec.component);
  mkdirSync(pool, { recursive: true });
  const stanzas = new Map<string, string[]>(spec.architectures.map((a) => [a, []]));
  for (const deb of spec.debs) {
    const data = readFileSync(deb);
    const dest = join(pool, basename(deb));
    writeFileSync(dest, data);
    const { stdout: control } = await run('dpkg-deb', ['--field', deb]);
    const arch = /^Architecture: (\S+)$/m.exec(control)?.[1] ?? 'all';
    const stanza = `${control.trimEnd()}\nFilename: ${relative(root, dest)}\nSize: ${data.length}\nSHA256: ${sha256(data)}\n`;
    for (const [a, list] of stanzas) if (arch === 'all' || arch === a) list.push(stanza);
  }
  const dist = join(root, 'dists', spec.suite);
  const indexes: Array<[string, Buffer]> = [];
  for (const [arch, list] of stanzas) {
    const text = Buffer.from(list.join('\n'));
    const path = `${spec.component}/binary-${arch}/Packages`;
    mkdirSync(join(dist, spec.component, `binary-${arch}`), { recursive: true });
    const gz = gzipSync(text);
    writeFileSync(join(dist, path), text);
    writeFileSync(join(dist, `${path}.gz`), gz);
    indexes.push([path, text], [`${path}.gz`, gz]);
  }
  const release = [
    'Origin: pihub-test',
    'Label: pihub-test',
    `Suite: ${spec.suite}`,
    `Codename: ${spec.suite}`,
    `Date: ${new Date(Date.now() - 60_000).toUTCString()}`,
    `Architectures: ${spec.architectures.join(' ')}`,
    `Components: ${spec.component}`,
    'SHA256:',
    ...indexes.map(([p, b]) => ` ${sha256(b)} ${String(b.length).padStart(8)} ${p}`),
    '',
  ].join('\n');
  writeFileSync(join(dist, 'Release'), release);
  if (spec.signWith) {
    const gpg = ['--homedir', spec.signWith.home, '--batch', '--no-tty', '--yes', '--local-user', spec.signWith.fingerprint, '--digest-algo', 'SHA512'];
    await run('gpg', [...gpg, '--clearsign', '--output', join(dist, 'InRelease'), join(dist, 'Release')]);
    await run('gpg', [...gpg, '--armor', '--detach-sign', '--output', join(dist, 'Release.gpg'), join(dist, 'Release')]);
  }
}

export interface Served {
  url: string;
  /** Paths requested so far (to check who fetched what). */
  requests: string[];
  close(): Promise<void>;
}

/** Serves `root` read-only over HTTP on 127.0.0.1 (a free port). */
export function serveDir(root: string, host = '127.0.0.1'): Promise<Served> {
  const requests: string[] = [];
  const server: Server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    requests.push(path);
    const file = normalize(join(root, path));
    if (!file.startsWith(root) || !existsSync(file) || !statSync(file).isFile()) {
      res.writeHead(404).end('not found\n');
      return;
    }
    res.writeHead(200, { 'Content-Length': statSync(file).size });
    if (req.method === 'HEAD') res.end();
    else createReadStream(file).pipe(res);
  });
  return new Promise((resolve, reject) => {
    server.on('error', reject);
    server.listen(0, host, () => {
      const addr = server.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      resolve({ url: `http://${host}:${port}`, requests, close: () => new Promise((r) => server.close(() => r())) });
    });
  });
}
