// The archive's Release date is fetched over HTTP before anything else: a server that redirects
// in a loop, answers without end or too slowly stops the build with a sentence, quickly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { UserError } from '../../build/core/errors.ts';
import { fetchText, releaseDate } from '../../build/plan/keys.ts';

/** A server on 127.0.0.1 for one test; it remembers what it was asked. */
async function serve(handler: (req: IncomingMessage, res: ServerResponse, n: number) => void): Promise<{ url: string; requests: IncomingMessage[]; close(): Promise<void> }> {
  const requests: IncomingMessage[] = [];
  const server = createServer((req, res) => {
    requests.push(req);
    handler(req, res, requests.length);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  assert.fail('expected a failure');
}

test('a redirect loop stops after 5 redirects, with a sentence naming the mirror', { timeout: 20_000 }, async () => {
  // Gives up by itself after 200 requests, so that a fetch without a limit fails here rather than hangs.
  const s = await serve((req, res, n) => {
    if (n > 200) res.writeHead(500).end();
    else res.writeHead(302, { location: req.url }).end();
  });
  try {
    const err = await rejection(fetchText(`${s.url}/debian/dists/trixie/InRelease`, null));
    assert.equal(err.message, `redirected more than 5 times (last to ${s.url}/debian/dists/trixie/InRelease)`);
    assert.equal(s.requests.length, 6);
    const said = await rejection(releaseDate(`${s.url}/debian`, 'trixie', null));
    assert.ok(said instanceof UserError);
    assert.equal(said.message, `cannot reach the Debian mirror: ${s.url}/debian/dists/trixie/InRelease: redirected more than 5 times (last to ${s.url}/debian/dists/trixie/InRelease); check the network, \`base.mirror\` or \`apt_proxy\``);
  } finally {
    await s.close();
  }
});

test('redirects within the limit are followed', async () => {
  const s = await serve((req, res, n) => {
    if (n <= 5) res.writeHead(301, { location: `/hop${n}` }).end();
    else res.writeHead(200).end('Date: Sat, 01 Nov 2025 10:00:00 UTC\n');
  });
  try {
    assert.equal(await releaseDate(`${s.url}/debian`, 'trixie', null), 'Sat, 01 Nov 2025 10:00:00 UTC');
  } finally {
    await s.close();
  }
});

test('an endless answer is cut off at the size cap', { timeout: 20_000 }, async () => {
  let sent = 0;
  const s = await serve((_req, res) => {
    res.writeHead(200);
    const chunk = Buffer.alloc(64 * 1024, 'x');
    // Ends after 64 MiB, so that a fetch without a cap fails here rather than fills the memory.
    const more = () => {
      while (sent < 64 * 1024 * 1024) {
        sent += chunk.length;
        if (!res.write(chunk)) return void res.once('drain', more);
      }
      res.end();
    };
    res.on('error', () => {});
    more();
  });
  try {
    const err = await rejection(releaseDate(`${s.url}/debian`, 'trixie', null));
    assert.match(err.message, /^cannot reach the Debian mirror: \S+\/InRelease: its answer is larger than 8 MiB, far more than a Release file; check the network/);
    assert.ok(sent < 64 * 1024 * 1024, `read ${sent} bytes`);
  } finally {
    await s.close();
  }
});

test('an answer that never completes stops at the time limit', { timeout: 20_000 }, async () => {
  const s = await serve((_req, res) => {
    res.writeHead(200);
    res.write('Origin: Debian\n');
    const drip = setInterval(() => res.write('x'), 50);
    res.on('close', () => clearInterval(drip));
  });
  try {
    const started = Date.now();
    const err = await rejection(fetchText(`${s.url}/dists/trixie/InRelease`, null, { timeoutMs: 500 }));
    assert.equal(err.message, 'no complete answer within 0.5 s');
    assert.ok(Date.now() - started < 5000);
  } finally {
    await s.close();
  }
});

test('credentials in the mirror and proxy URLs go in headers, and never to another server', async () => {
  const other = await serve((_req, res) => res.writeHead(200).end('Date: elsewhere\n'));
  const s = await serve((req, res) => {
    if (req.url === '/debian/dists/trixie/InRelease') res.writeHead(302, { location: '/moved/InRelease' }).end();
    else if (req.url === '/moved/InRelease') res.writeHead(302, { location: `${other.url}/InRelease` }).end();
    else res.writeHead(404).end();
  });
  try {
    assert.equal(await releaseDate(`http://mirror-user:p%40ss@${s.url.slice('http://'.length)}/debian`, 'trixie', null), 'elsewhere');
    const basic = `Basic ${Buffer.from('mirror-user:p@ss').toString('base64')}`;
    assert.deepEqual(s.requests.map((r) => r.headers.authorization), [basic, basic]);
    assert.equal(other.requests[0]!.headers.authorization, undefined);
    // Through a proxy: the proxy gets the whole URL (without credentials) and its own.
    assert.equal(await fetchText('http://deb.example/debian/dists/trixie/InRelease', `http://proxy-user:proxy-pass@${other.url.slice('http://'.length)}`), 'Date: elsewhere\n');
    const viaProxy = other.requests.at(-1)!;
    assert.equal(viaProxy.url, 'http://deb.example/debian/dists/trixie/InRelease');
    assert.equal(viaProxy.headers['proxy-authorization'], `Basic ${Buffer.from('proxy-user:proxy-pass').toString('base64')}`);
  } finally {
    await s.close();
    await other.close();
  }
});
