// misc.test.mjs: K8 meeting URLs, K9 upload slots (a real PUT and GET through Prosody's
// mod_http_file_share), K10 link previews against a local page server (SSRF refusals, limits,
// redirects, cache, rate) and K11 raw stanzas (parse errors, `from` stamping, IQ answers and
// timeouts), against a real Prosody and a raw XMPP client that plays a silent peer.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { setTimeout as delay } from 'node:timers/promises';
import { startProsody } from '../harness/prosody.mjs';
import { startGateway } from '../harness/gateway.mjs';
import { openSSE } from '../harness/sse.mjs';
import { request, bearer } from '../harness/http.mjs';
import { openClient } from '../harness/xmpp-raw.mjs';

const PASS = { alice: 'alice-misc-pw-1', bob: 'bob-misc-pw-2', carol: 'carol-misc-pw-3' };
let prosody, gw1, gw2, gw3, pages, pageBase, carol;
const hits = {};
const tok = {};

const rest = (g, path) => `${g.url}/sparkweb/api/rest${path}`;

async function login(g, user) {
  const r = await request('POST', rest(g, `/login/${user}`), { body: PASS[user] });
  assert.equal(r.status, 200, r.text);
  return r.json.token;
}

const OG_PAGE = `<!DOCTYPE html><html><head>
<!-- <meta property="og:title" content="commented out"> -->
<title>Plain &amp; title</title>
<script>var s = "<meta property='og:title' content='in a script'>";</script>
<meta property="og:title" content="Caf&eacute; &amp; Cr&#232;me &#x2014; &quot;News&quot;">
<meta name=description content='Short   description
 over lines'>
<meta property="og:description" content="The OG description &lt;b&gt;">
<meta property="og:image" content="/img/cover.png">
</head><body><img src="/img/other.png"></body></html>`;

function pageServer() {
  return http.createServer((req, res) => {
    const url = new URL(req.url, 'http://x');
    hits[url.pathname] = (hits[url.pathname] ?? 0) + 1;
    const port = req.socket.localPort;
    switch (url.pathname) {
      case '/og':
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
        return res.end(OG_PAGE);
      case '/plain':
        res.writeHead(200, { 'content-type': 'text/html' });
        return res.end('<html><head><title>\n  Only a title \n</title></head><body><p>x</p>' +
          '<img alt="a" src="pics/one.jpg"><img src="two.jpg"></body></html>');
      case '/twitter':
        res.writeHead(200, { 'content-type': 'text/html' });
        return res.end('<meta name="twitter:title" content="TW title"><meta name="twitter:description" content="TW desc">' +
          '<meta name="twitter:image" content="https://cdn.example/tw.png"><title>fallback</title>');
      case '/big': { // the og tags come after 600 KiB: beyond preview.max_bytes
        res.writeHead(200, { 'content-type': 'text/html' });
        res.write('<html><head><title>Big page</title></head><body>');
        const chunk = `<p>${'x'.repeat(1020)}</p>`;
        for (let i = 0; i < 600; i++) res.write(chunk);
        return res.end('<meta property="og:title" content="too far"></body></html>');
      }
      case '/slow':
        res.writeHead(200, { 'content-type': 'text/html' });
        res.write('<html><head>');
        return setTimeout(() => res.end('<title>late</title></head></html>'), 4000);
      case '/json':
        res.writeHead(200, { 'content-type': 'application/json' });
        return res.end('{"title":"not html"}');
      case '/binary':
        res.writeHead(200, { 'content-type': 'image/png' });
        return res.end(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0, 1, 2, 3]));
      case '/redirect-ok':
        res.writeHead(302, { location: '/og' });
        return res.end();
      case '/redirect-private':
        res.writeHead(302, { location: `http://127.0.0.2:${port}/og` });
        return res.end();
      case '/redirect-file':
        res.writeHead(302, { location: 'file:///etc/passwd' });
        return res.end();
      case '/redirect-loop':
        res.writeHead(302, { location: `/redirect-loop?n=${Number(url.searchParams.get('n') ?? 0) + 1}` });
        return res.end();
      case '/missing':
        res.writeHead(404, { 'content-type': 'text/html' });
        return res.end('<title>not found</title>');
      case '/counted':
        res.writeHead(200, { 'content-type': 'text/html' });
        return res.end('<title>Counted</title>');
      case '/latin1':
        res.writeHead(200, { 'content-type': 'text/html; charset=iso-8859-1' });
        return res.end(Buffer.from('<title>Caf\xe9 \x01\x02ok</title>', 'latin1'));
      default:
        res.writeHead(404);
        return res.end();
    }
  });
}

before(async () => {
  // http_host: the upload slot URLs name 127.0.0.1 (upload.localhost does not resolve here)
  prosody = await startProsody({ upload: true, extraConfig: 'http_host = "127.0.0.1"\n' });
  for (const [u, p] of Object.entries(PASS)) await prosody.register(u, p);
  pages = pageServer();
  await new Promise((r) => pages.listen(0, '127.0.0.1', r));
  pageBase = `http://127.0.0.1:${pages.address().port}`;
  gw1 = await startGateway({
    prosody,
    env: {
      SPARKGATE_PREVIEW_ALLOW_ADDRESSES: '127.0.0.1',
      SPARKGATE_PREVIEW_RATE: '20',
      SPARKGATE_SESSION_IQ_TIMEOUT: '3s',
    },
  });
  gw2 = await startGateway({
    prosody,
    env: {
      SPARKGATE_PREVIEW_ALLOW_PRIVATE: 'true',
      SPARKGATE_PREVIEW_TIMEOUT: '1500ms',
      SPARKGATE_PREVIEW_MAX_BYTES: '64k',
      SPARKGATE_MEET_JITSI_URL: 'https://jitsi.example/{id}',
      SPARKGATE_MEET_URL_TEMPLATE: 'https://meet.example/{service}/room/{id}',
    },
  });
  gw3 = await startGateway({ prosody }); // link-preview defaults: nothing private allowed
  tok.alice1 = await login(gw1, 'alice');
  tok.alice3 = await login(gw3, 'alice');
  tok.bob1 = await login(gw1, 'bob');
  tok.bob2 = await login(gw2, 'bob');
  // carol is a plain XMPP client that never answers IQs
  const c = await openClient({ port: prosody.c2sPort, domain: prosody.domain });
  carol = c.conn;
  const auth = await carol.authPlain('carol', PASS.carol);
  assert.ok(auth.ok, auth.reply);
  carol.jid = await carol.bind('mute');
});

after(async () => {
  carol?.close();
  const res1 = gw1 ? await gw1.stop() : null;
  const res2 = gw2 ? await gw2.stop() : null;
  const res3 = gw3 ? await gw3.stop() : null;
  pages?.close();
  if (prosody) await prosody.stop();
  if (res1) assert.equal(res1.code, 0, `gw1 exit ${JSON.stringify(res1)}\n${gw1.log().slice(-3000)}`);
  if (res2) assert.equal(res2.code, 0, `gw2 exit ${JSON.stringify(res2)}\n${gw2.log().slice(-3000)}`);
  if (res3) assert.equal(res3.code, 0, `gw3 exit ${JSON.stringify(res3)}\n${gw3.log().slice(-3000)}`);
});

// ---- K11 POST /xmpp --------------------------------------------------------------------------

const raw = (g, token, body) => request('POST', rest(g, '/xmpp'), { body, headers: bearer(token, { 'content-type': 'application/xml' }) });

test('K11: malformed or wrong stanzas get 400, oversize 413, no credential 401', async () => {
  const bad = [
    '<message to="bob@localhost"><body>x</body>', // not closed
    'just text',
    '<foo xmlns="jabber:client"/>',
    '<message xmlns="jabber:server" to="bob@localhost"/>',
    '<message to="@@bad@"><body>x</body></message>',
    '<iq type="get" id="1"/>', // no payload
    '<iq type="bogus" id="1"><query xmlns="jabber:iq:version"/></iq>',
    '<iq type="get"><query xmlns="jabber:iq:version"/></iq>', // no id
    '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><message>&a;</message>',
    '',
  ];
  for (const b of bad) {
    const r = await raw(gw1, tok.alice1, b);
    assert.equal(r.status, 400, `${b} -> ${r.status} ${r.text}`);
    assert.equal(r.json.message, 'Exception');
  }
  const big = `<message to="bob@localhost"><body>${'x'.repeat(70 * 1024)}</body></message>`;
  assert.equal((await raw(gw1, tok.alice1, big)).status, 413);
  assert.equal((await request('POST', rest(gw1, '/xmpp'), { body: '<presence/>' })).status, 401);
});

test('K11: a message is sent with the server-stamped from (no spoofing) and echoed to the tabs', async () => {
  const s = await openSSE(`${gw1.url}/sparkweb/sse?token=${tok.alice1}`);
  try {
    await s.waitFor('onConnect');
    const r = await raw(gw1, tok.alice1,
      `<message to="${carol.jid}" from="bob@${prosody.domain}/evil" type="chat" id="m1"><body>raw hello</body></message>`);
    assert.equal(r.status, 200, r.text);
    const got = await carol.waitFor(/<message[^>]*>.*?raw hello.*?<\/message>/s, 5000);
    const from = got[0].match(/from=['"]([^'"]+)['"]/)[1];
    assert.match(from, new RegExp(`^alice@${prosody.domain}/`), `stamped from: ${from}`);
    const echo = await s.waitFor((e) => e.event === 'chatapi.chat' && JSON.parse(e.data).body === 'raw hello', 5000);
    assert.ok(echo);
  } finally {
    s.close();
  }
  // a presence is accepted too
  assert.equal((await raw(gw1, tok.alice1, '<presence><show>away</show></presence>')).status, 200);
});

test('K11: an IQ get returns the answer as XML with the page\'s id; errors are answers too', async () => {
  const r = await raw(gw1, tok.alice1, `<iq type="get" id="my-id-1" to="${prosody.domain}"><query xmlns="http://jabber.org/protocol/disco#info"/></iq>`);
  assert.equal(r.status, 200, r.text);
  assert.match(r.headers['content-type'], /^application\/xml/);
  assert.match(r.text, /^<iq /);
  assert.match(r.text, /type=['"]result['"]/);
  assert.match(r.text, /id=['"]my-id-1['"]/);
  assert.match(r.text, /disco#info/);
  const e = await raw(gw1, tok.alice1, `<iq type="get" id="e1" to="bob@${prosody.domain}"><nothing xmlns="urn:example:none"/></iq>`);
  assert.equal(e.status, 200, e.text);
  assert.match(e.text, /type=['"]error['"]/);
  assert.match(e.text, /id=['"]e1['"]/);
});

test('K11: an IQ nobody answers ends in 504 (from stamped), and the gateway stays healthy', async () => {
  const t0 = Date.now();
  const r = await raw(gw1, tok.alice1, `<iq type="get" id="q1" from="admin@${prosody.domain}" to="${carol.jid}"><ping xmlns="urn:xmpp:ping"/></iq>`);
  assert.equal(r.status, 504, r.text);
  assert.ok(Date.now() - t0 >= 2500, 'waited for session.iq_timeout');
  const got = await carol.waitFor(/<iq[^>]*>.*?urn:xmpp:ping.*?<\/iq>/s, 1000);
  assert.match(got[0].match(/from=['"]([^'"]+)['"]/)[1], new RegExp(`^alice@${prosody.domain}/`));
  const again = await raw(gw1, tok.alice1, `<iq type="get" id="x" to="${prosody.domain}"><ping xmlns="urn:xmpp:ping"/></iq>`);
  assert.equal(again.status, 200);
});

// ---- K9 upload ---------------------------------------------------------------------------------

test('K9: a slot from the discovered service; PUT then GET returns the same bytes', async () => {
  const data = Buffer.from(Array.from({ length: 3000 }, (_, i) => (i * 7) & 255));
  const r = await request('GET', rest(gw1, '/upload/report%20v1.bin/3000?contentType=application/octet-stream'), { headers: bearer(tok.alice1) });
  assert.equal(r.status, 200, r.text);
  assert.match(r.json.get, /^https?:\/\//);
  assert.match(r.json.put, /^https?:\/\//);
  const headers = { 'content-type': 'application/octet-stream', ...(r.json.headers ?? {}) };
  for (const k of Object.keys(r.json.headers ?? {})) assert.ok(['authorization', 'cookie', 'expires'].includes(k.toLowerCase()), k);
  const put = await fetch(r.json.put, { method: 'PUT', body: data, headers });
  assert.ok(put.status === 201 || put.status === 200, `PUT ${put.status} ${await put.text()}`);
  const back = await fetch(r.json.get);
  assert.equal(back.status, 200);
  assert.deepEqual(Buffer.from(await back.arrayBuffer()), data);
});

test('K9: bad names and sizes are 400, too large 413', async () => {
  const h = { headers: bearer(tok.alice1) };
  for (const p of ['/upload/a%5Cb/10', '/upload/x/0', '/upload/x/-5', '/upload/x/abc', '/upload/x/1e3',
    `/upload/${'n'.repeat(256)}/10`, '/upload/%C3%28/10', '/upload/x/99999999999999999999999',
    '/upload/x/10?contentType=bad%0Atype']) {
    const r = await request('GET', rest(gw1, p), h);
    assert.equal(r.status, 400, `${p} -> ${r.status} ${r.text}`);
  }
  // a '/' (even as %2F) never reaches the handler: the router splits the decoded path
  assert.equal((await request('GET', rest(gw1, '/upload/a%2Fb/10'), h)).status, 404);
  const big = await request('GET', rest(gw1, '/upload/huge.iso/100000000000'), h);
  assert.equal(big.status, 413, big.text);
  assert.equal((await request('GET', rest(gw1, '/upload/x/10'))).status, 401);
});

// ---- K8 meet -----------------------------------------------------------------------------------

test('K8: without XEP-0483 and templates 501; templates build the URL; other services 400', async () => {
  const none = await request('GET', rest(gw1, '/meet/jitsi/standup'), { headers: bearer(tok.alice1) });
  assert.equal(none.status, 501, none.text);
  assert.match(none.json.resource, /meet\.url_template/);
  const j = await request('GET', rest(gw2, '/meet/jitsi/stand%20up%3F%261'), { headers: bearer(tok.bob2) });
  assert.equal(j.status, 200, j.text);
  assert.deepEqual(j.json, { url: 'https://jitsi.example/stand%20up%3F%261' });
  const g = await request('GET', rest(gw2, '/meet/galene/team'), { headers: bearer(tok.bob2) });
  assert.deepEqual(g.json, { url: 'https://meet.example/galene/room/team' });
  const bad = await request('GET', rest(gw2, '/meet/zoom/team'), { headers: bearer(tok.bob2) });
  assert.equal(bad.status, 400);
});

// ---- K10 preview -------------------------------------------------------------------------------

const preview = (g, token, quality, url, opts = {}) =>
  request('GET', rest(g, `/preview/${quality}/${encodeURIComponent(url)}`), { headers: bearer(token), ...opts });

test('K10: OG tags, entities, relative image, comments and scripts ignored', async () => {
  const r = await preview(gw2, tok.bob2, 1, `${pageBase}/og`);
  assert.equal(r.status, 200, r.text);
  assert.match(r.headers['content-type'], /^application\/json/);
  assert.deepEqual(r.json, {
    title: 'Café & Crème — "News"',
    descriptionShort: 'The OG description <b>',
    image: `${pageBase}/img/cover.png`,
  });
  // ?url= form, same answer
  const q = await request('GET', rest(gw2, `/preview/1?url=${encodeURIComponent(`${pageBase}/og`)}`), { headers: bearer(tok.bob2) });
  assert.deepEqual(q.json, r.json);
});

test('K10: fallbacks: <title>, twitter:, first <img> by quality; latin-1 bytes', async () => {
  const p = await preview(gw2, tok.bob2, 1, `${pageBase}/plain`);
  assert.deepEqual(p.json, { title: 'Only a title', image: `${pageBase}/pics/one.jpg` });
  const none = await preview(gw2, tok.bob2, -2, `${pageBase}/plain`);
  assert.deepEqual(none.json, { title: 'Only a title' });
  const zero = await preview(gw2, tok.bob2, 0, `${pageBase}/plain`);
  assert.deepEqual(zero.json, { title: 'Only a title' });
  const tw = await preview(gw2, tok.bob2, -1, `${pageBase}/twitter`);
  assert.deepEqual(tw.json, { title: 'TW title', descriptionShort: 'TW desc', image: 'https://cdn.example/tw.png' });
  const l1 = await preview(gw2, tok.bob2, 1, `${pageBase}/latin1`);
  assert.deepEqual(l1.json, { title: 'Café ok' });
});

test('K10: an IPv6-literal URL is fetched (allow_private, page server on [::1])', async (t) => {
  const v6 = pageServer();
  try {
    await new Promise((resolve, reject) => { v6.once('error', reject); v6.listen(0, '::1', resolve); });
  } catch (e) {
    t.skip(`no IPv6 loopback here: ${e.code}`);
    return;
  }
  try {
    const base = `http://[::1]:${v6.address().port}`;
    const r = await preview(gw2, tok.bob2, 1, `${base}/og`);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.title, 'Café & Crème — "News"');
    assert.equal(r.json.image, `${base}/img/cover.png`);
  } finally {
    v6.closeAllConnections?.();
    await new Promise((r) => v6.close(r));
  }
});

test('K10: non-HTML answers have no fields; 404 page is 502; bad input 400', async () => {
  assert.deepEqual((await preview(gw2, tok.bob2, 1, `${pageBase}/json`)).json, {});
  const bin = await preview(gw2, tok.bob2, 1, `${pageBase}/binary`);
  assert.equal(bin.status, 200);
  assert.deepEqual(bin.json, {});
  assert.equal((await preview(gw2, tok.bob2, 1, `${pageBase}/missing`)).status, 502);
  for (const [q, u] of [['x', `${pageBase}/og`], ['1.5', `${pageBase}/og`], ['-3', `${pageBase}/og`],
    ['1', 'ftp://example.org/'], ['1', 'file:///etc/passwd'], ['1', 'not a url'], ['1', 'http://user:pw@example.org/']]) {
    const r = await preview(gw2, tok.bob2, q, u);
    assert.equal(r.status, 400, `${q} ${u} -> ${r.status}`);
  }
  assert.equal((await request('GET', rest(gw2, `/preview/1/${encodeURIComponent(`${pageBase}/og`)}`))).status, 401);
});

test('K10: an oversize page is cut at preview.max_bytes, a slow one is 504', async () => {
  const big = await preview(gw2, tok.bob2, 1, `${pageBase}/big`);
  assert.equal(big.status, 200, big.text);
  assert.deepEqual(big.json, { title: 'Big page' });
  const t0 = Date.now();
  const slow = await preview(gw2, tok.bob2, 1, `${pageBase}/slow`);
  assert.equal(slow.status, 504, slow.text);
  assert.ok(Date.now() - t0 < 3500, 'preview.timeout bounds the wait');
});

test('K10: redirects are followed and checked; too many or to other schemes 502', async () => {
  const ok = await preview(gw2, tok.bob2, 1, `${pageBase}/redirect-ok`);
  assert.equal(ok.status, 200, ok.text);
  assert.equal(ok.json.title, 'Café & Crème — "News"');
  assert.equal((await preview(gw2, tok.bob2, 1, `${pageBase}/redirect-file`)).status, 502);
  const before = hits['/redirect-loop'] ?? 0;
  assert.equal((await preview(gw2, tok.bob2, 1, `${pageBase}/redirect-loop`)).status, 502);
  assert.equal(hits['/redirect-loop'] - before, 4, 'the first request and 3 redirects');
});

test('K10: results are cached', async () => {
  const u = `${pageBase}/counted`;
  const a = await preview(gw2, tok.bob2, 1, u);
  const b = await preview(gw2, tok.bob2, 1, u);
  assert.deepEqual(a.json, { title: 'Counted' });
  assert.deepEqual(b.json, a.json);
  assert.equal(hits['/counted'], 1);
});

test('K10: private, loopback, link-local and metadata addresses are refused (403)', async () => {
  // gw1 allows exactly 127.0.0.1 (preview.allow_addresses)
  const ok = await preview(gw1, tok.alice1, 1, `${pageBase}/og`);
  assert.equal(ok.status, 200, ok.text);
  const port = pages.address().port;
  for (const u of [`http://127.0.0.2:${port}/og`, `http://10.1.2.3:${port}/`, `http://[::1]:${port}/og`,
    'http://169.254.169.254/latest/meta-data/', 'http://192.168.1.1/',
    'http://[fd00::1]/', 'http://[::ffff:127.0.0.2]/', 'http://0.0.0.0/', 'http://2130706434/']) {
    const r = await preview(gw1, tok.alice1, 1, u);
    assert.equal(r.status, 403, `${u} -> ${r.status} ${r.text}`);
  }
  const redirected = await preview(gw1, tok.alice1, 1, `${pageBase}/redirect-private`);
  assert.equal(redirected.status, 403, 'a redirect to a private address is refused');
  const refusal = gw1.log().split('\n').find((l) => /ev=preview_private_refused host=169\.254\.169\.254/.test(l));
  assert.ok(refusal, 'the refusal is logged with the host');
  assert.doesNotMatch(refusal, /meta-data/, 'not with the path');
});

test('K10: by default even the page server on 127.0.0.1 and localhost are refused', async () => {
  const port = pages.address().port;
  const before = hits['/og'] ?? 0;
  for (const u of [`${pageBase}/og`, `http://localhost:${port}/og`, `http://[::1]:${port}/og`,
    `http://10.0.0.1:${port}/og`, 'http://169.254.169.254/latest/meta-data/']) {
    const r = await preview(gw3, tok.alice3, 1, u);
    assert.equal(r.status, 403, `${u} -> ${r.status} ${r.text}`);
    assert.match(r.json.resource, /private or local addresses/);
  }
  assert.equal(hits['/og'] ?? 0, before, 'the page server was never contacted');
  // the same page is fine where preview.allow_private is on
  assert.equal((await preview(gw2, tok.bob2, 1, `${pageBase}/og`)).status, 200);
});

test('K10: fetches are rate-limited per user (429 with Retry-After)', async () => {
  let last;
  for (let i = 0; i < 21; i++) {
    last = await preview(gw1, tok.bob1, 1, `http://10.9.9.${i}/`);
    if (i < 20) assert.equal(last.status, 403, `request ${i}`);
  }
  assert.equal(last.status, 429);
  assert.ok(Number(last.headers['retry-after']) > 0);
  // alice is not affected
  assert.equal((await preview(gw1, tok.alice1, 1, 'http://10.9.9.99/')).status, 403);
});

test('K10: a client that leaves mid-fetch does not disturb the gateway', async () => {
  const ac = new AbortController();
  const p = fetch(rest(gw2, `/preview/1/${encodeURIComponent(`${pageBase}/slow?x=1`)}`), { headers: bearer(tok.bob2), signal: ac.signal }).catch(() => null);
  await delay(200);
  ac.abort();
  await p;
  await delay(1600); // past the deadline: the timer must not answer a gone request
  assert.equal((await preview(gw2, tok.bob2, 1, `${pageBase}/og`)).status, 200);
});
