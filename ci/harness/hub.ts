// A JupyterHub client that does what a person's browser does: the login form with its
// _xsrf token and cookies, then the REST API and kernel websockets with a token.
import { randomUUID } from 'node:crypto';
import { request as httpGet } from 'node:http';
import { request as httpsGet } from 'node:https';
import { sleep } from './vm.ts';

const UA = 'Mozilla/5.0 (pihub end-to-end test)';

export interface HttpResponse {
  status: number;
  location: string | undefined;
  setCookies: string[];
  headers: Record<string, string | undefined>;
  body: string;
}

export function httpRequest(url: string, method: string, headers: Record<string, string>, body?: string): Promise<HttpResponse> {
  return new Promise((resolve, reject) => {
    // HTTPS with a card's self-signed certificate: the tests check its fingerprint themselves.
    const get = url.startsWith('https:') ? httpsGet : httpGet;
    const req = get(url, { method, headers: body === undefined ? headers : { ...headers, 'Content-Length': String(Buffer.byteLength(body)) }, timeout: 120_000, rejectUnauthorized: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          location: res.headers.location,
          setCookies: res.headers['set-cookie'] ?? [],
          headers: Object.fromEntries(Object.entries(res.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(', ') : v])),
          body: Buffer.concat(chunks).toString('utf8'),
        }),
      );
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${url}: timed out`)));
    req.on('error', reject);
    req.end(body);
  });
}

export class HubSession {
  /** Cookies by path, then name: sent like a browser sends them, only below their path. */
  private cookies = new Map<string, Map<string, string>>();
  token = '';

  constructor(
    readonly base: string,
    readonly user: string,
  ) {}

  private cookieHeader(path: string): string {
    const paths = [...this.cookies.keys()].filter((p) => path.startsWith(p)).sort((a, b) => b.length - a.length);
    const out: string[] = [];
    for (const p of paths) for (const [k, v] of this.cookies.get(p)!) out.push(`${k}=${v}`);
    return out.join('; ');
  }

  private remember(setCookies: readonly string[]): void {
    for (const c of setCookies) {
      const [pair, ...attrs] = c.split(';');
      const eq = pair!.indexOf('=');
      const name = pair!.slice(0, eq).trim();
      const value = pair!.slice(eq + 1).trim();
      const path = attrs.map((a) => a.trim()).find((a) => /^path=/i.test(a))?.slice(5) ?? '/';
      const jar = this.cookies.get(path) ?? new Map<string, string>();
      const expired = attrs.some((a) => /^\s*expires=.*19[0-9]{2}|^\s*max-age=0/i.test(a)) || value === '""';
      if (expired) jar.delete(name);
      else jar.set(name, value);
      this.cookies.set(path, jar);
    }
  }

  /** The value of a cookie this session would send to path. */
  cookie(path: string, name: string): string | undefined {
    const paths = [...this.cookies.keys()].filter((p) => path.startsWith(p)).sort((a, b) => b.length - a.length);
    for (const p of paths) {
      const v = this.cookies.get(p)!.get(name);
      if (v !== undefined) return v;
    }
    return undefined;
  }

  /** A request with this session's cookies (pages) or token (API), as a browser or a script would send it. */
  async request(path: string, init: { method?: string; headers?: Record<string, string>; body?: string; json?: unknown; cookies?: boolean; token?: boolean } = {}): Promise<HttpResponse> {
    const headers: Record<string, string> = { 'User-Agent': UA, ...init.headers };
    // Pages go with the login cookies, as from a browser; the REST API with the token alone
    // (a cookie-authenticated API request would also need the _xsrf token).
    const api = path.includes('/api/');
    const cookie = this.cookieHeader(path);
    if (cookie && (init.cookies ?? !api)) headers.Cookie = cookie;
    // A person's browser opening a page says Sec-Fetch-Mode: navigate; JupyterHub accepts
    // cookie logins only on navigations (fetch() cannot send this, hence node:http here).
    if (!api) headers['Sec-Fetch-Mode'] ??= 'navigate';
    if (this.token && api && init.token !== false && !headers.Authorization) headers.Authorization = `token ${this.token}`;
    let body = init.body;
    if (init.json !== undefined) {
      headers['Content-Type'] = 'application/json';
      body = JSON.stringify(init.json);
    }
    const res = await httpRequest(`${this.base}${path}`, init.method ?? 'GET', headers, body);
    this.remember(res.setCookies);
    return res;
  }

  /** GET a page and follow its redirects with the cookies, as a browser does (the OAuth dance to a user's server). */
  async page(path: string): Promise<{ status: number; url: string; body: string }> {
    let url = path;
    for (let hop = 0; hop < 10; hop++) {
      const res = await this.request(url, { cookies: true });
      const next = res.location;
      if (res.status >= 300 && res.status < 400 && next) {
        const u = new URL(next, `${this.base}${url}`);
        url = `${u.pathname}${u.search}`;
        continue;
      }
      return { status: res.status, url, body: res.body };
    }
    throw new Error(`too many redirects from ${path}`);
  }

  /** The real login form: GET for the _xsrf token, POST the form. Returns the POST's status. */
  async login(password: string): Promise<{ status: number; body: string }> {
    const page = await this.request('/hub/login');
    const html = page.body;
    const xsrf = /name="_xsrf" value="([^"]+)"/.exec(html)?.[1];
    if (!xsrf) throw new Error(`no _xsrf field in the login form (HTTP ${page.status})`);
    const form = new URLSearchParams({ _xsrf: xsrf, username: this.user, password });
    const res = await this.request('/hub/login', {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: form.toString(),
    });
    return { status: res.status, body: res.body };
  }

  async createToken(password: string): Promise<string> {
    const res = await this.request(`/hub/api/users/${this.user}/tokens`, {
      method: 'POST',
      json: { auth: { username: this.user, password }, note: 'pihub e2e', expires_in: 3600 },
    });
    if (res.status !== 200 && res.status !== 201) throw new Error(`token request: HTTP ${res.status}: ${res.body}`);
    this.token = (JSON.parse(res.body) as { token: string }).token;
    return this.token;
  }

  async json<T>(path: string, init: { method?: string; json?: unknown } = {}): Promise<{ status: number; body: T }> {
    const res = await this.request(path, init);
    return { status: res.status, body: (res.body ? JSON.parse(res.body) : undefined) as T };
  }

  /** Start the user's server and wait until the hub says it is ready. */
  async startServer(timeoutMs: number): Promise<void> {
    const res = await this.request(`/hub/api/users/${this.user}/server`, { method: 'POST', json: {} });
    if (![201, 202, 400].includes(res.status)) throw new Error(`start server: HTTP ${res.status}: ${res.body}`);
    const end = Date.now() + timeoutMs;
    while (Date.now() < end) {
      const u = await this.json<{ servers?: Record<string, { ready?: boolean }> }>(`/hub/api/users/${this.user}`);
      if (u.body?.servers?.['']?.ready) return;
      await sleep(2000);
    }
    throw new Error(`${this.user}'s server was not ready after ${timeoutMs / 1000}s`);
  }

  /** Stop this user's server and wait until the hub has it stopped (a stop may be pending for a while). */
  async stopServer(timeoutMs: number): Promise<void> {
    const res = await this.request(`/hub/api/users/${this.user}/server`, { method: 'DELETE' });
    if (![202, 204].includes(res.status)) throw new Error(`stop server: HTTP ${res.status}: ${res.body}`);
    const end = Date.now() + timeoutMs;
    while (Date.now() < end) {
      const u = await this.json<{ servers?: Record<string, unknown> }>(`/hub/api/users/${this.user}`);
      if (!u.body?.servers?.['']) return;
      await sleep(2000);
    }
    throw new Error(`${this.user}'s server was still there after ${timeoutMs / 1000}s`);
  }

  userPath(p: string): string {
    return `/user/${this.user}${p}`;
  }

  /** Run code in a new kernel over the websocket; returns what it printed. */
  async runCode(code: string, timeoutMs = 180_000): Promise<string> {
    const k = await this.json<{ id: string }>(this.userPath('/api/kernels'), { method: 'POST', json: { name: 'python3' } });
    if (k.status !== 201) throw new Error(`start kernel: HTTP ${k.status}: ${JSON.stringify(k.body)}`);
    try {
      return await this.execute(k.body.id, code, timeoutMs);
    } finally {
      await this.request(this.userPath(`/api/kernels/${k.body.id}`), { method: 'DELETE' });
    }
  }

  /** Run code in a new kernel and leave that kernel running (as a person's open notebook does). */
  async startKernel(code: string, timeoutMs = 180_000): Promise<{ id: string; output: string }> {
    const k = await this.json<{ id: string }>(this.userPath('/api/kernels'), { method: 'POST', json: { name: 'python3' } });
    if (k.status !== 201) throw new Error(`start kernel: HTTP ${k.status}: ${JSON.stringify(k.body)}`);
    return { id: k.body.id, output: await this.execute(k.body.id, code, timeoutMs) };
  }

  /** Run code in a running kernel (one of startKernel's); resolves with what it printed. */
  execute(kernelId: string, code: string, timeoutMs: number): Promise<string> {
    const url = `${this.base.replace(/^http/, 'ws')}${this.userPath(`/api/kernels/${kernelId}/channels`)}?token=${this.token}`;
    const msgId = randomUUID();
    const session = randomUUID();
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url);
      let out = '';
      let errors = '';
      let replied = false;
      let idle = false;
      const finish = () => {
        if (!replied || !idle) return;
        clearTimeout(timer);
        ws.close();
        if (errors) reject(new Error(`the code raised:\n${errors}\noutput:\n${out}`));
        else resolve(out);
      };
      const timer = setTimeout(() => {
        ws.close();
        reject(new Error(`no execute_reply within ${timeoutMs / 1000}s; output so far: ${out}`));
      }, timeoutMs);
      ws.onerror = (e) => reject(new Error(`kernel websocket error: ${String((e as ErrorEvent).message ?? e.type)}`));
      ws.onopen = () => {
        ws.send(JSON.stringify({
          header: { msg_id: msgId, username: this.user, session, msg_type: 'execute_request', version: '5.3', date: new Date().toISOString() },
          parent_header: {},
          metadata: {},
          content: { code, silent: false, store_history: false, user_expressions: {}, allow_stdin: false, stop_on_error: true },
          channel: 'shell',
          buffers: [],
        }));
      };
      ws.onmessage = (ev) => {
        const msg = JSON.parse(String(ev.data)) as {
          channel: string;
          header: { msg_type: string };
          parent_header: { msg_id?: string };
          content: { text?: string; traceback?: string[]; ename?: string; evalue?: string; execution_state?: string };
        };
        if (msg.parent_header.msg_id !== msgId) return;
        const type = msg.header.msg_type;
        if (type === 'stream') out += msg.content.text ?? '';
        else if (type === 'error') errors += `${msg.content.ename}: ${msg.content.evalue}\n${(msg.content.traceback ?? []).join('\n')}`;
        else if (type === 'execute_reply') replied = true;
        else if (type === 'status' && msg.content.execution_state === 'idle') idle = true;
        finish();
      };
    });
  }

  /** Upload a file through the contents API (base64). */
  async upload(path: string, data: Buffer): Promise<number> {
    const res = await this.request(this.userPath(`/api/contents/${path}`), {
      method: 'PUT',
      json: { type: 'file', format: 'base64', content: data.toString('base64') },
    });
    return res.status;
  }

  /** Open a JupyterLab terminal, type a command, and return what the terminal showed. */
  async terminal(command: string, expect: RegExp, timeoutMs = 60_000): Promise<string> {
    const t = await this.json<{ name: string }>(this.userPath('/api/terminals'), { method: 'POST', json: {} });
    if (t.status !== 200) throw new Error(`create terminal: HTTP ${t.status}`);
    const url = `${this.base.replace(/^http/, 'ws')}${this.userPath(`/terminals/websocket/${t.body.name}`)}?token=${this.token}`;
    try {
      return await new Promise<string>((resolve, reject) => {
        const ws = new WebSocket(url);
        let screen = '';
        const timer = setTimeout(() => {
          ws.close();
          reject(new Error(`terminal did not show ${expect} within ${timeoutMs / 1000}s; it showed:\n${screen}`));
        }, timeoutMs);
        ws.onerror = () => reject(new Error('terminal websocket error'));
        ws.onopen = () => ws.send(JSON.stringify(['stdin', `${command}\r`]));
        ws.onmessage = (ev) => {
          const [kind, text] = JSON.parse(String(ev.data)) as [string, string];
          if (kind === 'stdout') screen += text;
          if (expect.test(screen)) {
            clearTimeout(timer);
            ws.close();
            resolve(screen);
          }
        };
      });
    } finally {
      await this.request(this.userPath(`/api/terminals/${t.body.name}`), { method: 'DELETE' });
    }
  }
}

export async function waitForHub(base: string, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < end) {
    try {
      const res = await fetch(`${base}/hub/health`);
      if (res.status === 200) return;
      last = `HTTP ${res.status}`;
    } catch (err) {
      last = (err as Error).message;
    }
    await sleep(2000);
  }
  throw new Error(`the hub at ${base} did not answer /hub/health within ${timeoutMs / 1000}s (${last})`);
}
