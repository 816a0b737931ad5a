// A base's extra apt repositories in the image: one deb822 .sources file each, trusting its
// own keyring only (Signed-By, never trusted=yes), and apt's refusals turned into sentences.
import { withoutCredentials } from '../config/urls.ts';
import type { Repository } from './schema.ts';

/** Where a repository's keyring lives in the image: always binary (an armored one is written dearmored). */
export function keyringInImage(repo: Pick<Repository, 'name'>): string {
  return `/etc/apt/keyrings/${repo.name}.pgp`;
}

/** A repository of the base as a build uses it. */
export interface BaseRepository {
  repo: Repository;
  /** The keyring file on the build machine (already checked to hold exactly the listed keys). */
  keyring: string;
}

export function sourcesFileInImage(repo: Pick<Repository, 'name'>): string {
  return `/etc/apt/sources.list.d/${repo.name}.sources`;
}

/** The deb822 entry for a repository, trusting exactly the keyring at `signedBy`. */
export function sourcesEntry(repo: Repository, signedBy: string = keyringInImage(repo)): string {
  return [
    `# Written by pihub from the base profile: ${repo.name}, trusted through its own keyring only`,
    'Types: deb',
    // The card's apt has no credentials: the URL goes without them.
    `URIs: ${withoutCredentials(repo.uri)}`,
    `Suites: ${repo.suites.join(' ')}`,
    `Components: ${repo.components.join(' ')}`,
    `Signed-By: ${signedBy}`,
    '',
  ].join('\n');
}

/** The repository a line of apt's output names: its URI followed by the suite (so one URI that begins another is not taken for it). */
function repoFor(line: string, repos: readonly Repository[]): Repository | undefined {
  const norm = (u: string) => withoutCredentials(u).replace(/\/+$/, '');
  return repos.find((r) => line.includes(`${norm(r.uri)} `) || line.includes(`${norm(r.uri)}/dists/`));
}

/**
 * apt's refusal of a repository (unsigned, signed by a key not in its keyring, a bad
 * signature, no Release file) as one sentence per repository, naming it and what to do; or
 * undefined when the output shows none of these.
 */
export function explainAptFailure(output: string, repos: readonly Repository[]): string | undefined {
  const said: Array<{ repo: string; kind: 'unsigned' | 'signature' | 'release'; text: string }> = [];
  const say = (repo: Repository | undefined, line: string, kind: 'unsigned' | 'signature' | 'release', text: (name: string) => string) => {
    const name = repo ? `repository \`${repo.name}\` (${withoutCredentials(repo.uri)})` : 'an apt repository';
    const id = repo?.name ?? line;
    if (said.some((x) => x.repo === id && x.kind === kind)) return;
    said.push({ repo: id, kind, text: text(name) });
  };
  const lines = output.split('\n');
  lines.forEach((line, i) => {
    // apt names the repository on the verdict's line, or on the line before it (gpgv and sqv alike).
    const repo = repoFor(line, repos) ?? repoFor(lines[i - 1] ?? '', repos);
    const keyring = repo ? ` ${keyringNote(repo)}` : '';
    let m: RegExpExecArray | null;
    if (/is not signed\.?$/.test(line)) {
      say(repo, line, 'unsigned', (n) => `${n} is not signed (no InRelease or Release.gpg): pihub only installs from repositories whose Release file is signed by a key in their keyring`);
    } else if ((m = /NO_PUBKEY ([0-9A-F]+)/.exec(line) ?? /Missing key ([0-9A-F]+)/.exec(line))) {
      const id = m[1]!;
      say(repo, line, 'signature', (n) => `${n} is signed by key ${id}, which its keyring does not hold:${keyring} check that \`keyring\` and \`fingerprints\` are the repository's real signing key`);
    } else if (/BADSIG|[Bb]ad signature/.test(line)) {
      say(repo, line, 'signature', (n) => `${n} has a bad signature on its Release file (tampered with, or a broken mirror); try again later or another mirror`);
    } else if (/does not have a Release file|no longer has a Release file/.test(line)) {
      say(repo, line, 'release', (n) => `${n} has no Release file for its suite: check \`uri\` and \`suites\``);
    }
  });
  // apt follows a signature it cannot check with "is not signed": the signature sentence says more.
  const out = said.filter((x) => !(x.kind === 'unsigned' && said.some((y) => y.repo === x.repo && y.kind === 'signature')));
  return out.length ? out.map((x) => x.text).join('\n') : undefined;
}

function keyringNote(repo: Repository): string {
  return `${repo.keyring} (${repo.fingerprints.join(', ')});`;
}
