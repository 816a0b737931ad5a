// The published attacks on the Jupyter stack of a card, made from outside as an attacker would
// make them (docs/security.md lists the advisories). Each returns what the card answered; the
// tests say what a fixed card answers and what a vulnerable one did.
import { HubSession, httpRequest } from '../../ci/harness/hub.ts';

const UA = 'Mozilla/5.0 (pihub end-to-end test)';

/** Where a browser goes after the login page's redirect for each `next`: the host it lands on. */
export async function loginRedirects(s: HubSession, nexts: readonly string[]): Promise<Array<{ next: string; status: number; location?: string; host?: string }>> {
  const out = [];
  for (const next of nexts) {
    const res = await s.request(`/hub/login?next=${encodeURIComponent(next)}`);
    // A browser resolves Location against the page's URL (WHATWG URL, as Node's URL does:
    // tabs and line breaks dropped, `///x` read as the host x).
    const host = res.location ? new URL(res.location, `${s.base}/hub/login`).host : undefined;
    out.push({ next, status: res.status, location: res.location, host });
  }
  return out;
}

/**
 * What a page on another site can make a logged-in person's browser send: a `no-cors` POST with
 * the person's cookies and nothing else (no _xsrf, no token). Returns the status the card answered.
 */
export async function crossSiteNoCorsPost(s: HubSession, path: string, body = '{}', contentType?: string): Promise<{ status: number; body: string }> {
  const res = await s.request(path, {
    method: 'POST',
    cookies: true,
    // The person's cookies, never the session's API token: the other site has only those.
    token: false,
    headers: {
      'Sec-Fetch-Mode': 'no-cors',
      'Sec-Fetch-Site': 'cross-site',
      'Sec-Fetch-Dest': 'empty',
      Origin: 'http://evil.example',
      Referer: 'http://evil.example/',
      // A no-cors fetch may carry a form's content type, or none at all (a Blob body without a
      // type), which the hub's API takes as a script's request.
      ...(contentType ? { 'Content-Type': contentType } : {}),
    },
    body,
  });
  return { status: res.status, body: res.body };
}

/**
 * Failed logins with huge user names, as fast as the card takes them, while a second client
 * asks /hub/health: the statuses of the logins and the slowest health answer.
 */
export async function hugeNameLogins(hub: string, count: number, nameBytes: number): Promise<{ statuses: number[]; slowestHealthMs: number }> {
  // The login form's _xsrf token and cookie, as a browser gets them.
  const page = await httpRequest(`${hub}/hub/login`, 'GET', { 'User-Agent': UA, 'Sec-Fetch-Mode': 'navigate' });
  const xsrf = /name="_xsrf" value="([^"]+)"/.exec(page.body)?.[1];
  if (!xsrf) throw new Error(`no _xsrf field in the login form (HTTP ${page.status})`);
  const cookie = page.setCookies.map((c) => c.split(';')[0]).join('; ');
  const name = 'x'.repeat(nameBytes);
  const form = new URLSearchParams({ _xsrf: xsrf, username: name, password: 'wrong' }).toString();
  const { result: statuses, slowestHealthMs } = await whileHealthAsked(hub, 250, async () => {
    const out: number[] = [];
    for (let i = 0; i < count; i++) {
      const res = await httpRequest(`${hub}/hub/login`, 'POST', {
        'User-Agent': UA,
        'Sec-Fetch-Mode': 'navigate',
        Cookie: cookie,
        'Content-Type': 'application/x-www-form-urlencoded',
      }, form);
      out.push(res.status);
    }
    return out;
  });
  return { statuses, slowestHealthMs };
}

/** JupyterLab's page config (the JSON the page carries) of a person's server. */
export async function labPageConfig(s: HubSession): Promise<Record<string, unknown>> {
  const lab = await s.page(`/user/${s.user}/lab`);
  const json = /<script id="jupyter-config-data" type="application\/json">([\s\S]*?)<\/script>/.exec(lab.body)?.[1];
  if (!json) throw new Error(`no page config in /user/${s.user}/lab (HTTP ${lab.status})`);
  return JSON.parse(json) as Record<string, unknown>;
}

/**
 * Unauthenticated form bodies that hold a tornado server for seconds on Debian's 6.4.2: a
 * multipart body of `parts` parts, or an urlencoded one of `fields` fields, POSTed to the login
 * page while /hub/health is asked. Returns the POST's status and time, and the slowest health answer.
 */
export async function hugeForm(hub: string, kind: 'multipart' | 'urlencoded', count: number): Promise<{ status: number; ms: number; slowestHealthMs: number }> {
  const boundary = 'pihubBoundary';
  const body = kind === 'multipart'
    ? `${`--${boundary}\r\nContent-Disposition: form-data; name="a"\r\n\r\nv\r\n`.repeat(count)}--${boundary}--\r\n`
    : '&'.repeat(count);
  const type = kind === 'multipart' ? `multipart/form-data; boundary=${boundary}` : 'application/x-www-form-urlencoded';
  const started = Date.now();
  const { result, slowestHealthMs } = await whileHealthAsked(hub, 100, async () => {
    const res = await httpRequest(`${hub}/hub/login`, 'POST', { 'User-Agent': UA, 'Content-Type': type }, body);
    return { status: res.status, ms: Date.now() - started };
  });
  return { ...result, slowestHealthMs };
}

/** Runs `attack` while /hub/health is asked every `everyMs`: its result, and the slowest health answer meanwhile. */
async function whileHealthAsked<T>(hub: string, everyMs: number, attack: () => Promise<T>): Promise<{ result: T; slowestHealthMs: number }> {
  let done = false;
  let slowestHealthMs = 0;
  const health = (async () => {
    while (!done) {
      const started = Date.now();
      await fetch(`${hub}/hub/health`).catch(() => undefined);
      slowestHealthMs = Math.max(slowestHealthMs, Date.now() - started);
      await new Promise((r) => setTimeout(r, everyMs));
    }
  })();
  let result: T;
  try {
    result = await attack();
  } finally {
    done = true;
    await health;
  }
  return { result, slowestHealthMs };
}
