// core.test.mjs: the first end-to-end slice against a real Prosody: password login, one
// shared upstream session per user, SSE fan-out to several streams, sending a chat message,
// logout, and the bad-input answers (404, 405, 401 for bad tokens, 413), with no secret in
// the log and a clean (leak-free under ASan) exit.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createHmac } from 'node:crypto';
import { join } from 'node:path';
import { startProsody } from '../harness/prosody.mjs';
import { startGateway } from '../harness/gateway.mjs';
import { openSSE } from '../harness/sse.mjs';
import { request } from '../harness/http.mjs';

const PASS = { alice: 'alice-secret-pw-1', bob: 'bob-secret-pw-2' };
let prosody, gw;
const tokens = [];

const rest = (path) => `${gw.url}/sparkweb/api/rest${path}`;

async function login(user, password = PASS[user]) {
  const r = await request('POST', rest(`/login/${user}`), { body: password, headers: { 'content-type': 'text/plain;charset=UTF-8' } });
  if (r.status === 200) tokens.push(r.json.token);
  return r;
}

before(async () => {
  prosody = await startProsody();
  await prosody.register('alice', PASS.alice);
  await prosody.register('bob', PASS.bob);
  gw = await startGateway({ prosody, env: { SPARKGATE_HTTP_MAX_BODY: '4k' } });
});

after(async () => {
  const res = gw ? await gw.stop() : null;
  if (prosody) await prosody.stop();
  if (res) assert.equal(res.code, 0, `gateway exit ${JSON.stringify(res)}\n${gw.log().slice(-3000)}`);
});

test('wrong password gets 401 with the error body and no token', async () => {
  const r = await login('alice', 'wrong-password');
  assert.equal(r.status, 401);
  assert.equal(r.json.token, undefined);
  assert.equal(r.json.message, 'Exception');
  assert.equal(typeof r.json.resource, 'string');
  assert.equal(typeof r.json.exception, 'string');
  const u = await login('nosuchuser', 'x');
  assert.equal(u.status, 401);
});

test('login returns an HS256 JWT with the contract claims', async () => {
  const r = await login('alice');
  assert.equal(r.status, 200, r.text);
  const parts = r.json.token.split('.');
  assert.equal(parts.length, 3);
  const hdr = JSON.parse(Buffer.from(parts[0], 'base64url'));
  const claims = JSON.parse(Buffer.from(parts[1], 'base64url'));
  assert.equal(hdr.alg, 'HS256');
  assert.equal(claims.sub, 'alice');
  assert.equal(claims.aud, prosody.domain);
  assert.deepEqual(claims.permissions, ['full']);
  assert.ok(claims.exp > claims.iat);
  assert.ok(Math.abs(claims.iat - Date.now() / 1000) < 30);
  assert.match(claims.iss, /^https?:\/\//);
});

test('two streams of alice both get onConnect and bob\'s message, exact text', async () => {
  const t1 = (await login('alice')).json.token;
  const t2 = (await login('alice')).json.token; // second login reuses the session
  const online = gw.log().match(/ev=session_online jid=alice@/g) || [];
  assert.equal(online.length, 1, 'one upstream session (one resource) for alice');

  const s1 = await openSSE(`${gw.url}/sparkweb/sse?token=${t1}`, { headers: { accept: 'text/event-stream' } });
  const s2 = await openSSE(`${gw.url}/sparkweb/api/sse?token=${t2}`);
  try {
    assert.equal(s1.status, 200);
    assert.match(s1.headers['content-type'], /^text\/event-stream/);
    assert.equal(s2.status, 200);
    for (const s of [s1, s2]) {
      const c = await s.waitFor((e) => e.event === 'onConnect', 5000);
      assert.equal(JSON.parse(c.data).username, 'alice');
    }
    const bob = (await login('bob')).json.token;
    const text = 'He said "hi" \\ back\nsecond line 😀 <b>&amp;';
    const r = await request('POST', rest(`/chat/message/alice@${prosody.domain}`), { body: text, headers: { authorization: bob } });
    assert.equal(r.status, 200, r.text);
    for (const s of [s1, s2]) {
      const ev = await s.waitFor((e) => e.event === 'chatapi.chat' && JSON.parse(e.data).body !== undefined, 10000);
      const d = JSON.parse(ev.data);
      assert.equal(d.body, text);
      assert.equal(d.type, 'chat');
      assert.match(d.from, new RegExp(`^bob@${prosody.domain}/`));
      assert.equal(d.data, null);
      // the raw stanza rides along first
      const raw = s.events.find((e) => e.event === 'chatapi.xmpp' && Buffer.from(JSON.parse(e.data).xmpp, 'base64').toString().includes('second line'));
      assert.ok(raw, 'chatapi.xmpp carries the stanza');
      assert.match(Buffer.from(JSON.parse(raw.data).xmpp, 'base64').toString(), /^<message[^>]*xmlns="jabber:client"|^<message[^>]*xmlns='jabber:client'/);
    }

    // a JSON object body travels as the Jive "data" property
    const r2 = await request('POST', rest(`/chat/message/alice@${prosody.domain}`), { body: JSON.stringify({ body: 'json hi', n: 42 }), headers: { authorization: `Bearer ${bob}` } });
    assert.equal(r2.status, 200, r2.text);
    const ev2 = await s1.waitFor((e) => e.event === 'chatapi.chat' && JSON.parse(e.data).body === 'json hi', 10000);
    assert.deepEqual(JSON.parse(ev2.data).data, { body: 'json hi', n: 42 });
  } finally {
    s1.close();
    s2.close();
  }
});

test('unknown path is 404 JSON, wrong method 405', async () => {
  const r = await request('GET', rest('/no/such/thing'));
  assert.equal(r.status, 404);
  assert.match(r.headers['content-type'], /application\/json/);
  assert.equal(typeof r.json.resource, 'string');
  const m = await request('GET', rest('/login/alice'));
  assert.equal(m.status, 405);
  assert.match(m.headers['allow'] || '', /POST/);
});

test('bad tokens are refused with 401', async () => {
  const to = rest(`/chat/message/bob@${prosody.domain}`);
  const key = Buffer.from(readFileSync(join(gw.storePath, 'jwt.key'), 'utf8').trim(), 'base64url');
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  const claims = { sub: 'alice', aud: prosody.domain, iat: now - 100, exp: now + 3600, jti: 'x' };
  const sign = (h, c, k = key) => { const si = `${b64(h)}.${b64(c)}`; return `${si}.${createHmac('sha256', k).update(si).digest('base64url')}`; };
  const cases = {
    none: `${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims)}.`,
    malformed: 'not-a-token',
    wrongKey: sign({ alg: 'HS256' }, claims, Buffer.alloc(32, 7)),
    expired: sign({ alg: 'HS256' }, { ...claims, exp: now - 10 }),
    notInTable: sign({ alg: 'HS256' }, claims),
  };
  for (const [name, tok] of Object.entries(cases)) {
    const r = await request('POST', to, { body: 'hi', headers: { authorization: tok } });
    assert.equal(r.status, 401, `${name}: ${r.status} ${r.text}`);
  }
  const none = await request('POST', to, { body: 'hi' });
  assert.equal(none.status, 401);
  const sse = await openSSE(`${gw.url}/sparkweb/sse?token=${cases.expired}`);
  assert.notEqual(sse.status, 200);
  sse.close();
});

test('oversize body gets 413', async () => {
  const bob = (await login('bob')).json.token;
  const r = await request('POST', rest(`/chat/message/alice@${prosody.domain}`), { body: 'x'.repeat(8192), headers: { authorization: bob } });
  assert.equal(r.status, 413);
});

test('logout closes the shared session for every stream and revokes the token', async () => {
  const t = (await login('alice')).json.token;
  const s = await openSSE(`${gw.url}/sparkweb/sse?token=${t}`);
  await s.waitFor((e) => e.event === 'onConnect', 5000);
  const r = await request('POST', rest('/logout'), { headers: { authorization: t } });
  assert.equal(r.status, 200);
  const bye = await s.waitFor((e) => e.event === 'onDisconnect', 5000);
  assert.equal(JSON.parse(bye.data).reason, 'logout');
  await s.closed;
  const again = await request('POST', rest(`/chat/message/bob@${prosody.domain}`), { body: 'hi', headers: { authorization: t } });
  assert.equal(again.status, 401);
});

test('no password or token appears in the log', async () => {
  const log = gw.log();
  for (const p of Object.values(PASS)) assert.ok(!log.includes(p), 'password in log');
  for (const t of tokens) {
    assert.ok(!log.includes(t), 'token in log');
    assert.ok(!log.includes(t.split('.')[2]), 'token signature in log');
  }
});
