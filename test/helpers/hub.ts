// A JupyterHub client that does what a person's browser does: the login form with its
// _xsrf token and cookies, then the REST API and kernel websockets with a token.
import { randomUUID } from 'node:crypto';
import { sleep } from './vm.ts';

const UA = 'Mozilla/5.0 (pihub end-to-end test)';

export class HubSession {
  private cookies = new Map<string, string>();
  token = '';

  constructor(
    readonly base: string,
    readonly user: string,
  ) {}

  private cookieHeader(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  private remember(res: Response): void {
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const eq = pair!.indexOf('=');
      this.cookies.set(pair!.slice(0, eq).trim(), pair!.slice(eq + 1).trim());
    }
  }

  /** A request with this session's cookies (and token, once there is one). */
  async request(path: string, init: RequestInit & { json?: unknown } = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    headers.set('User-Agent', UA);
    if (this.cookies.size) headers.set('Cookie', this.cookieHeader());
    if (this.token && !headers.has('Authorization')) headers.set('Authorization', `token ${this.token}`);
    let body = init.body;
    if (init.json !== undefined) {
      headers.set('Content-Type', 'application/json');
      body = JSON.stringify(init.json);
    }
    const res = await fetch(`${this.base}${path}`, { ...init, headers, body, redirect: 'manual' });
    this.remember(res);
    return res;
  }

  /** The real login form: GET for the _xsrf token, POST the form. Returns the POST's status. */
  async login(password: string): Promise<{ status: number; body: string }> {
    const page = await this.request('/hub/login');
    const html = await page.text();
    const xsrf = /name="_xsrf" value="([^"]+)"/.exec(html)?.[1];
    if (!xsrf) throw new Error(`no _xsrf field in the login form (HTTP ${page.status})`);
    const form = new URLSearchParams({ _xsrf: xsrf, username: this.user, password });
    const res = await this.request('/hub/login', {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: form.toString(),
    });
    return { status: res.status, body: await res.text() };
  }

  async createToken(password: string): Promise<string> {
    const res = await this.request(`/hub/api/users/${this.user}/tokens`, {
      method: 'POST',
      json: { auth: { username: this.user, password }, note: 'pihub e2e', expires_in: 3600 },
    });
    if (res.status !== 200 && res.status !== 201) throw new Error(`token request: HTTP ${res.status}: ${await res.text()}`);
    this.token = ((await res.json()) as { token: string }).token;
    return this.token;
  }

  async json<T>(path: string, init: RequestInit & { json?: unknown } = {}): Promise<{ status: number; body: T }> {
    const res = await this.request(path, init);
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : undefined) as T };
  }

  /** Start the user's server and wait until the hub says it is ready. */
  async startServer(timeoutMs: number): Promise<void> {
    const res = await this.request(`/hub/api/users/${this.user}/server`, { method: 'POST', json: {} });
    if (![201, 202, 400].includes(res.status)) throw new Error(`start server: HTTP ${res.status}: ${await res.text()}`);
    const end = Date.now() + timeoutMs;
    while (Date.now() < end) {
      const u = await this.json<{ servers?: Record<string, { ready?: boolean }> }>(`/hub/api/users/${this.user}`);
      if (u.body?.servers?.['']?.ready) return;
      await sleep(2000);
    }
    throw new Error(`${this.user}'s server was not ready after ${timeoutMs / 1000}s`);
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

  private execute(kernelId: string, code: string, timeoutMs: number): Promise<string> {
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
