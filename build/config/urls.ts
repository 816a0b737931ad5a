// URLs that may carry `user:password@` (settings declared `url`): the URL as shown and written
// anywhere (without them), and the credentials, which reach apt and npm other ways than argv.

export interface Credentials {
  user: string;
  password: string;
}

interface Parts {
  scheme: string;
  userinfo?: string;
  hostAndPort: string;
  rest: string;
}

/** The parts of `scheme://[userinfo@]host[:port]/rest`; the userinfo ends at the authority's last `@`, as URL parsers take it. */
function partsOf(url: string): Parts | undefined {
  const m = /^([a-z][a-z0-9+.-]*:\/\/)([^/?#]*)([\s\S]*)$/i.exec(url);
  if (!m) return undefined;
  const authority = m[2]!;
  const at = authority.lastIndexOf('@');
  return { scheme: m[1]!, userinfo: at < 0 ? undefined : authority.slice(0, at), hostAndPort: authority.slice(at + 1), rest: m[3]! };
}

function decode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** The URL without `user:password@` (unchanged otherwise). */
export function withoutCredentials(url: string): string {
  const p = partsOf(url);
  return p?.userinfo === undefined ? url : `${p.scheme}${p.hostAndPort}${p.rest}`;
}

/** The URL's credentials, percent-decoded; undefined when it has none. */
export function credentialsOf(url: string): Credentials | undefined {
  const info = partsOf(url)?.userinfo;
  if (info === undefined) return undefined;
  const colon = info.indexOf(':');
  return colon < 0 ? { user: decode(info), password: '' } : { user: decode(info.slice(0, colon)), password: decode(info.slice(colon + 1)) };
}

/** The userinfo as written in the URL (`user:pass%40word`), for hiding it in text. */
export function userinfoOf(url: string): string | undefined {
  return partsOf(url)?.userinfo;
}
