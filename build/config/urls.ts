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

/**
 * Why apt could not take this URL's credentials from an auth.conf (whose tokens are separated
 * by white space), or undefined when it can or there are none.
 */
export function aptCredentialsProblem(url: string): string | undefined {
  const c = credentialsOf(url);
  if (!c) return undefined;
  if (c.user === '' || c.password === '') return 'credentials in the URL must be `user:password@` with both given';
  // eslint-disable-next-line no-control-regex -- control characters are what it looks for
  if (/[\s\x00-\x1f\x7f]/.test(c.user + c.password)) return 'credentials in the URL must not hold spaces or control characters (apt takes them from its auth.conf, whose fields are separated by spaces)';
  return undefined;
}

/** Text with every `scheme://user:password@` in it shown as `scheme://<hidden>@`. */
export function withCredentialsHidden(text: string): string {
  return text.replace(/\b([a-z][a-z0-9+.-]*:\/\/)([^/?#\s]*)@/gi, '$1<hidden>@');
}
