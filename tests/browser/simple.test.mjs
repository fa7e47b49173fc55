// simple.test.mjs: web/examples/simple.html, the SparkWeb sample (contract §5.3), loaded from
// another origin than the gateway's (a small node HTTP server on another port serving the
// file unchanged): password login, the event stream, the status line for onConnect, chat and
// headline ("System Message - ...") messages. The gateway allows that origin through
// SPARKGATE_HTTP_CORS_ORIGINS; a page from an origin it does not list cannot log in.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { startProsody } from '../harness/prosody.mjs';
import { startGateway, withLogs } from '../harness/gateway.mjs';
import { request } from '../harness/http.mjs';
import { freePort } from '../harness/proc.mjs';
import { launch, xmppClient, screenshots, webRoot } from './lib.mjs';

const PW = 'web-simple-Secret6';
let prosody, gw, browser, other, stranger, allowedOrigin, strangerOrigin;

function serveSimple(port) {
  const file = fs.readFileSync(path.join(webRoot, 'examples', 'simple.html'));
  const srv = http.createServer((req, res) => {
    if (req.url.split('?')[0] !== '/simple.html') {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(file);
  });
  return new Promise((resolve) => srv.listen(port, '127.0.0.1', () => resolve(srv)));
}

before(async () => {
  prosody = await startProsody({ mam: false });
  for (const u of ['fred', 'gus']) await prosody.register(u, PW);
  const port = await freePort();
  const port2 = await freePort();
  allowedOrigin = `http://127.0.0.1:${port}`;
  strangerOrigin = `http://127.0.0.1:${port2}`;
  other = await serveSimple(port);
  stranger = await serveSimple(port2);
  gw = await startGateway({ prosody, env: { SPARKGATE_HTTP_WEB_ROOT: webRoot, SPARKGATE_HTTP_CORS_ORIGINS: allowedOrigin } });
  browser = await launch();
});

after(async () => {
  await browser?.close();
  other?.close();
  stranger?.close();
  const res = gw ? await gw.stop() : null;
  if (prosody) await prosody.stop();
  if (res) assert.equal(res.code, 0, `gateway exit ${JSON.stringify(res)}\n${gw.log().slice(-3000)}`);
});

const status = (page) => page.textContent('#status');
const waitStatus = (page, re) => page.waitForFunction((src) => new RegExp(src).test(document.getElementById('status').textContent),
  re.source, { timeout: 15000 }).catch(async (e) => { throw new Error(`${e.message}; status: ${await status(page)}`); });

test('simple.html from another origin: login, event stream, chat and headline messages on the status line', () => withLogs([gw], async () => {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  page.on('pageerror', (e) => console.log('pageerror:', e.message));
  await page.goto(`${allowedOrigin}/simple.html`);
  assert.equal(await status(page), 'Inactive');
  await page.fill('#host', `http://localhost:${gw.port}`);
  await page.fill('#username', 'fred');
  await page.fill('#password', PW);
  await page.click('button[type=submit]');
  await waitStatus(page, /^User fred \(.*\) Signed In$/);
  await screenshots(page, 'example-simple-cross-origin');

  // a chat message from gus
  const gus = { authorization: `Basic ${Buffer.from(`gus:${PW}`).toString('base64')}` };
  const r = await request('POST', `${gw.url}/sparkweb/api/rest/chat/message/fred@${prosody.domain}`, { body: 'hi fred', headers: gus });
  assert.equal(r.status, 200);
  await waitStatus(page, new RegExp(`^chat gus@${prosody.domain}/\\S+ - hi fred$`));

  // a headline (server broadcast style) from a plain XMPP client
  const conn = await xmppClient(prosody, 'gus', PW, 'bot');
  try {
    conn.send(`<message to='fred@${prosody.domain}' type='headline'><body>maintenance at noon &amp; later</body></message>`);
    await waitStatus(page, /^System Message - maintenance at noon & later$/);
  } finally {
    conn.close();
  }
  // the stream really came from the gateway's origin, with a ticket (no token in the URL)
  assert.match(gw.log(), /sse/i);
  await ctx.close();
}));

test('the event stream answers an allowed origin with exactly one Access-Control-Allow-Origin', () => withLogs([gw], async () => {
  const { json } = await request('POST', `${gw.url}/sparkweb/api/rest/login/gus`, { body: PW });
  const headers = await new Promise((resolve, reject) => {
    const req = http.get(`${gw.url}/sparkweb/sse?token=${encodeURIComponent(json.token)}`,
      { headers: { accept: 'text/event-stream', origin: allowedOrigin } }, (res) => {
        resolve({ status: res.statusCode, raw: res.rawHeaders });
        res.destroy();
      });
    req.on('error', reject);
  });
  assert.equal(headers.status, 200);
  const acao = [];
  for (let i = 0; i < headers.raw.length; i += 2) if (headers.raw[i].toLowerCase() === 'access-control-allow-origin') acao.push(headers.raw[i + 1]);
  assert.deepEqual(acao, [allowedOrigin]);
}));

test('the same file from an origin the gateway does not allow cannot log in', () => withLogs([gw], async () => {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  await page.goto(`${strangerOrigin}/simple.html`);
  await page.fill('#host', `http://localhost:${gw.port}`);
  await page.fill('#username', 'fred');
  await page.fill('#password', PW);
  await page.click('button[type=submit]');
  await waitStatus(page, /^Login failed/);
  await ctx.close();
}));

test('the gateway serves its HTML pages with a Content-Security-Policy (no framing, plugins or <base>); scripts get none', () => withLogs([gw], async () => {
  const head = (p) => new Promise((resolve, reject) => {
    http.get(`${gw.url}${p}`, (res) => {
      resolve({ status: res.statusCode, csp: res.headers['content-security-policy'] });
      res.resume();
    }).on('error', reject);
  });
  for (const p of ['/sparkweb/examples/simple.html', '/sparkweb/examples/', '/sparkweb/api/docs/']) {
    const r = await head(p);
    assert.equal(r.status, 200, p);
    assert.match(r.csp || '', /frame-ancestors 'none'/, p);
    assert.match(r.csp, /object-src 'none'/, p);
    assert.match(r.csp, /base-uri 'none'/, p);
  }
  assert.equal((await head('/sparkweb/sparkgate.js')).csp, undefined);
  // the page served by the gateway still runs under it: Gateway defaults to its own origin
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => { if (/Content.Security.Policy/i.test(m.text())) errors.push(m.text()); });
  await page.goto(`${gw.url}/sparkweb/examples/simple.html?host=http://evil.example`);
  assert.equal(await page.inputValue('#host'), new URL(gw.url).origin, 'never taken from the URL');
  await page.fill('#username', 'gus');
  await page.fill('#password', PW);
  await page.click('button[type=submit]');
  await waitStatus(page, /^User gus \(.*\) Signed In$/);
  assert.deepEqual(errors, []);
  await ctx.close();
}));
