// push.test.mjs: Web Push (contract §1.9 W1-W6, §4) end to end against a real Prosody and a
// local HTTPS push service (tests/harness/push-receiver.mjs) that verifies each VAPID JWT with
// node:crypto and decrypts each body with the independent `http_ece` package. Covers the key
// and subscriptions surviving a restart, W4/W5/W6 with roster authorisation and admins, the
// restricted token in the payload, automatic pushes for users with no live sink (privacy
// default, then push.include_body), the 404/410/429/500 outcomes and the subscription state
// they leave, a push service that hangs, and malformed or unsafe input.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { startProsody } from '../harness/prosody.mjs';
import { startGateway, withLogs } from '../harness/gateway.mjs';
import { request } from '../harness/http.mjs';
import { openSSE } from '../harness/sse.mjs';
import { openClient } from '../harness/xmpp-raw.mjs';
import { delay, makeTempDir, removeTempDir } from '../harness/proc.mjs';
import { checkVapid, startPushReceiver } from '../harness/push-receiver.mjs';

const PW = 'push-pw-Secret7';
const USERS = ['pia', 'quin', 'rex', 'ada', 'fnf', 'fgone', 'fbusy', 'ferr', 'fhang', 'gail'];
let prosody, gw, rx, strict, vapidKey;
const tokens = {};
const dir = makeTempDir('sg-push-');
const storePath = `${dir}/store`;

const baseEnv = () => ({
  SPARKGATE_AUTH_RATE_FREE_FAILURES: '100',
  SPARKGATE_PUSH_ALLOW_PRIVATE: 'true',
  SPARKGATE_PUSH_CA_FILE: rx.caFile,
  SPARKGATE_PUSH_ADMINS: 'ada',
  SPARKGATE_PUSH_RETRY_BASE: '200ms',
  SPARKGATE_PUSH_RETRIES: '2',
  SPARKGATE_PUSH_TIMEOUT: '2s',
});

const rest = (g, p) => `${g.url}/sparkweb/api/rest${p}`;
const call = (method, p, { user, body, headers = {}, g = gw } = {}) =>
  request(method, rest(g, p), { body, headers: { ...(user ? { authorization: tokens[user] } : {}), ...headers } });

async function login(user, g = gw) {
  const r = await request('POST', rest(g, `/login/${user}`), { body: PW });
  assert.equal(r.status, 200, r.text);
  tokens[user] = r.json.token;
}

async function subscribe(user, resource, mode = 'ok') {
  const sub = rx.subscribe(mode);
  const r = await call('PUT', `/webpush/subscribe/${resource}`, { user, body: sub.json });
  assert.equal(r.status, 200, r.text);
  return sub;
}

/** Puts `contact` into `owner`'s roster with a raw XMPP client. */
async function addContact(owner, contact) {
  const ca = prosody.caFile ? fs.readFileSync(prosody.caFile) : undefined;
  const { conn } = await openClient({ port: prosody.c2sPort, domain: prosody.domain, tls: prosody.tls, ca });
  try {
    assert.ok((await conn.authPlain(owner, PW)).ok);
    await conn.bind('setup');
    const reply = await conn.iq((id) => `<iq type='set' id='${id}'><query xmlns='jabber:iq:roster'>` +
      `<item jid='${contact}@${prosody.domain}' name='${contact.toUpperCase()}'/></query></iq>`);
    assert.match(reply, /type=(["'])result\1/);
  } finally {
    conn.close();
  }
}

/** A raw XMPP client of `user` that sends one chat message to `to`. */
async function sendChat(from, to, body, extra = '') {
  const ca = prosody.caFile ? fs.readFileSync(prosody.caFile) : undefined;
  const { conn } = await openClient({ port: prosody.c2sPort, domain: prosody.domain, tls: prosody.tls, ca });
  try {
    assert.ok((await conn.authPlain(from, PW)).ok);
    await conn.bind('raw');
    conn.send(`<message type='chat' to='${to}@${prosody.domain}' id='m${Date.now()}'><body>${body}</body>${extra}</message>`);
    await conn.iq((id) => `<iq type='get' id='${id}'><ping xmlns='urn:xmpp:ping'/></iq>`); // flushed
  } finally {
    conn.close();
  }
}

const payloadOf = (r) => JSON.parse(rx.decrypt(r));

before(async () => {
  rx = await startPushReceiver(dir);
  prosody = await startProsody({ mam: false });
  for (const u of USERS) await prosody.register(u, PW);
  await addContact('pia', 'quin');
  await addContact('quin', 'pia');
  gw = await startGateway({ prosody, storePath, env: baseEnv() });
  strict = await startGateway({ prosody, env: { SPARKGATE_AUTH_RATE_FREE_FAILURES: '100' } });
  for (const u of USERS) await login(u);
});

after(async () => {
  const res = gw ? await gw.stop() : null;
  const res2 = strict ? await strict.stop() : null;
  if (prosody) await prosody.stop();
  await rx?.close();
  removeTempDir(dir);
  if (res) assert.equal(res.code, 0, `gateway exit ${JSON.stringify(res)}\n${gw.log().slice(-3000)}`);
  if (res2) assert.equal(res2.code, 0, `strict gateway exit ${JSON.stringify(res2)}`);
});

test('W1 answers the VAPID public key (65-byte P-256 point, base64url); 401 without credentials', () => withLogs([gw], async () => {
  const r = await call('GET', '/webpush/vapidkey', { user: 'pia' });
  assert.equal(r.status, 200, r.text);
  vapidKey = r.json.publicKey;
  assert.match(vapidKey, /^[\w-]{87}$/);
  const raw = Buffer.from(vapidKey, 'base64url');
  assert.equal(raw.length, 65);
  assert.equal(raw[0], 4);
  assert.equal((await call('GET', '/webpush/vapidkey')).status, 401);
  // Basic works too
  const basic = `Basic ${Buffer.from(`pia:${PW}`).toString('base64')}`;
  assert.equal((await call('GET', '/webpush/vapidkey', { headers: { authorization: basic } })).json.publicKey, vapidKey);
  assert.match(gw.log(), /ev=vapid_key_created/);
}));

test('W2 stores several subscriptions per user; the same resource replaces; list and delete', () => withLogs([gw], async () => {
  await subscribe('gail', 'phone');
  await subscribe('gail', 'laptop');
  const again = await subscribe('gail', 'laptop'); // replaces the first laptop subscription
  let list = await call('GET', '/webpush/subscriptions', { user: 'gail' });
  assert.equal(list.status, 200, list.text);
  assert.deepEqual(list.json.subscriptions.map((s) => s.resource).sort(), ['laptop', 'phone']);
  assert.equal(list.json.subscriptions.find((s) => s.resource === 'laptop').endpoint, again.endpoint);
  assert.ok(list.json.subscriptions.every((s) => !('auth' in s) && !('p256dh' in s)));
  assert.equal((await call('DELETE', '/webpush/subscribe/phone', { user: 'gail' })).status, 200);
  assert.equal((await call('DELETE', '/webpush/subscribe/phone', { user: 'gail' })).status, 404);
  list = await call('GET', '/webpush/subscriptions', { user: 'gail' });
  assert.deepEqual(list.json.subscriptions.map((s) => s.resource), ['laptop']);
  assert.equal((await call('GET', '/webpush/subscriptions')).status, 401);
}));

test('W4 pia -> quin: HTTP/2 POST with TTL, Urgency, aes128gcm and a verified VAPID JWT; the payload decrypts', () => withLogs([gw], async () => {
  const sub = await subscribe('quin', 'simple-app');
  await subscribe('pia', 'simple-app');
  const note = { subject: 'Hello', body: 'Are you there?', icon: 'https://example.org/i.png', requireInteraction: true, data: 'pia', actions: [{ action: 'webpush.message', type: 'text', title: 'Reply' }], token: 'ignored', extra: 1 };
  const r = await call('POST', '/webpush/notify/quin', { user: 'pia', body: note });
  assert.equal(r.status, 200, r.text);
  const [req] = await rx.waitFor((q) => q.id === sub.id);
  assert.equal(req.httpVersion, '2.0');
  assert.equal(req.method, 'POST');
  assert.equal(req.headers.ttl, '2419200');
  assert.equal(req.headers.urgency, 'high');
  assert.equal(req.headers['content-encoding'], 'aes128gcm');
  const v = checkVapid(req.headers.authorization, { audience: rx.origin, publicKey: vapidKey, subject: `mailto:admin@${prosody.domain}` });
  assert.ok(v.ok, v.why);
  assert.ok(v.claims.exp - Date.now() / 1000 <= 24 * 3600);
  const text = rx.decrypt(req);
  assert.ok(text.startsWith('{"subject":"Hello","token":"ey'), text); // the contract's key order
  const p = JSON.parse(text);
  assert.equal(p.body, 'Are you there?');
  assert.equal(p.icon, 'https://example.org/i.png');
  assert.equal(p.requireInteraction, true);
  assert.equal(p.persistent, false);
  assert.equal(p.data, 'pia');
  assert.deepEqual(p.actions, note.actions);
  assert.notEqual(p.token, 'ignored');
  assert.equal(p.extra, undefined);

  // The token is restricted: no ordinary call accepts it ...
  assert.equal((await call('GET', '/webpush/vapidkey', { headers: { authorization: p.token } })).status, 401);
  assert.equal((await request('GET', `${gw.url}/sparkweb/sse?token=${p.token}`, { timeoutMs: 3000 })).status, 401);
  // ... it answers only its sender (W6) ...
  const other = await call('POST', '/webpush/action', { headers: { authorization: p.token }, body: { data: 'rex', action: 'webpush.message', value: 'hi' } });
  assert.equal(other.status, 403, other.text);
  const before = rx.requests.length;
  const reply = await call('POST', '/webpush/action', { headers: { authorization: p.token }, body: { data: 'pia', action: 'webpush.message', value: 'Yes, here' } });
  assert.equal(reply.status, 200, reply.text);
  const [back] = await rx.waitFor((q) => rx.requests.indexOf(q) >= before && q.id !== sub.id);
  const bp = payloadOf(back);
  assert.equal(bp.subject, 'quin');
  assert.equal(bp.body, 'Yes, here');
  assert.equal(bp.data, 'quin');
  assert.deepEqual(bp.actions, [{ action: 'webpush.message', type: 'text', title: 'Reply' }]);
  // ... and any other action is a 400
  const click = await call('POST', '/webpush/action', { headers: { authorization: p.token }, body: { data: 'pia', action: '' } });
  assert.equal(click.status, 400);
  assert.doesNotMatch(gw.log(), new RegExp(p.token.split('.')[2]));
}));

test('W5 sends the text with a Reply action; targets outside the roster are refused unless admin', () => withLogs([gw], async () => {
  const rexSub = await subscribe('rex', 'simple-app');
  const r = await call('POST', '/webpush/message/quin', { user: 'pia', body: 'lunch?' });
  assert.equal(r.status, 200, r.text);
  const got = await rx.waitFor((q) => q.status === 201 && (() => { try { return payloadOf(q).body === 'lunch?'; } catch { return false; } })());
  const p = payloadOf(got[0]);
  assert.equal(p.subject, 'pia');
  assert.equal(p.data, 'pia');
  assert.equal(p.actions[0].action, 'webpush.message');
  const refused = await call('POST', '/webpush/message/rex', { user: 'pia', body: 'hi stranger' });
  assert.equal(refused.status, 403, refused.text);
  const admin = await call('POST', '/webpush/message/rex', { user: 'ada', body: 'from the admin' });
  assert.equal(admin.status, 200, admin.text);
  await rx.waitFor((q) => q.id === rexSub.id);
  const none = await call('POST', '/webpush/message/gone', { user: 'ada', body: 'x' });
  assert.equal(none.status, 400);
  assert.match(none.json.resource, /no push subscription/);
  // W3: pia's roster contacts that have a subscription
  const w3 = await call('GET', '/webpush/subscribers', { user: 'pia' });
  assert.equal(w3.status, 200, w3.text);
  assert.deepEqual(w3.json.users, [{ username: 'quin', name: 'QUIN' }]);
}));

test('404 and 410 delete the subscription; 429 is retried after Retry-After; 500 is retried then dropped', () => withLogs([gw], async () => {
  const nf = await subscribe('fnf', 'a', '404');
  const gone = await subscribe('fgone', 'a', '410');
  const busy = await subscribe('fbusy', 'a', '429');
  const err = await subscribe('ferr', 'a', '500');
  for (const [user, status] of [['fnf', 400], ['fgone', 400]]) {
    const r = await call('POST', `/webpush/message/${user}`, { user: 'ada', body: 'x' });
    assert.equal(r.status, status, r.text);
    const list = await call('GET', '/webpush/subscriptions', { user });
    assert.deepEqual(list.json.subscriptions, [], `${user} keeps no subscription`);
  }
  assert.equal(rx.requests.filter((q) => q.id === nf.id).length, 1);
  assert.equal(rx.requests.filter((q) => q.id === gone.id).length, 1);

  const r429 = await call('POST', '/webpush/message/fbusy', { user: 'ada', body: 'x' });
  assert.equal(r429.status, 202, r429.text); // queued for a retry
  const [first, second] = await rx.waitFor((q) => q.id === busy.id, 10000, 2);
  assert.equal(first.status, 429);
  assert.equal(second.status, 201);
  assert.ok(second.at - first.at >= 900, `retried after ${second.at - first.at} ms, Retry-After was 1 s`);
  assert.equal((await call('GET', '/webpush/subscriptions', { user: 'fbusy' })).json.subscriptions.length, 1);

  const r500 = await call('POST', '/webpush/message/ferr', { user: 'ada', body: 'x' });
  assert.equal(r500.status, 202, r500.text);
  const tries = await rx.waitFor((q) => q.id === err.id, 10000, 3); // 1 + push.retries
  assert.ok(tries[1].at - tries[0].at >= 150 && tries[2].at - tries[1].at >= 350, 'back-off doubles');
  await gw.waitForLog(/ev=delivery_failed user=ferr .*attempts=3/);
  await delay(500);
  assert.equal(rx.requests.filter((q) => q.id === err.id).length, 3);
  assert.equal((await call('GET', '/webpush/subscriptions', { user: 'ferr' })).json.subscriptions.length, 1);
}));

test('a push service that hangs stalls neither the loop nor other deliveries', () => withLogs([gw], async () => {
  const hang = await subscribe('fhang', 'a', 'hang');
  const ok = await subscribe('gail', 'tablet');
  const started = Date.now();
  const hung = call('POST', '/webpush/message/fhang', { user: 'ada', body: 'x' });
  await rx.waitFor((q) => q.id === hang.id);
  const t0 = Date.now();
  const fast = await call('POST', '/webpush/message/gail', { user: 'ada', body: 'still moving' });
  assert.equal(fast.status, 200, fast.text);
  await rx.waitFor((q) => q.id === ok.id);
  assert.equal((await call('GET', '/webpush/vapidkey', { user: 'pia' })).status, 200);
  assert.ok(Date.now() - t0 < 1500, `other deliveries took ${Date.now() - t0} ms`);
  const h = await hung; // answered when push.timeout (2 s) ends the first attempt
  assert.equal(h.status, 202, h.text);
  assert.ok(Date.now() - started >= 1900);
  await gw.waitForLog(/ev=delivery_retry user=fhang .*why=ETIMEDOUT/);
}));

test('automatic push: a chat message to a user with no live sink, sender and a generic text only', () => withLogs([gw], async () => {
  const sub = await subscribe('pia', 'auto-app');
  await sendChat('quin', 'pia', 'the secret plan');
  const [req] = await rx.waitFor((q) => q.id === sub.id);
  const p = payloadOf(req);
  assert.equal(p.subject, 'quin');
  assert.equal(p.body, 'New message');
  assert.equal(p.data, 'quin');
  assert.match(p.token, /^ey/);
  assert.match(req.headers.topic, /^[\w-]{22}$/);
  assert.doesNotMatch(rx.decrypt(req), /secret plan/);
  // while an event stream is attached nothing is pushed
  const sse = await openSSE(`${gw.url}/sparkweb/sse?token=${tokens.pia}`);
  await sse.waitFor((e) => e.event === 'onConnect');
  const n = rx.requests.filter((q) => q.id === sub.id).length;
  await sendChat('quin', 'pia', 'seen live');
  await sse.waitFor((e) => e.event === 'chatapi.chat' && JSON.parse(e.data).body === 'seen live');
  const detaches = () => (gw.log().match(/ev=detach jid=pia@\S+ sinks=0/g) || []).length;
  const before = detaches();
  sse.close();
  for (const end = Date.now() + 5000; detaches() === before; await delay(20)) {
    assert.ok(Date.now() < end, 'the gateway did not see the stream close');
  }
  await sendChat('quin', 'pia', 'after the stream closed');
  await rx.waitFor((q) => q.id === sub.id, 10000, n + 1);
  await delay(300);
  assert.equal(rx.requests.filter((q) => q.id === sub.id).length, n + 1, 'no push for the message seen live');
}));

test('the key and subscriptions survive a restart; push.include_body puts the body in', () => withLogs([gw], async () => {
  assert.equal((await gw.stop()).code, 0);
  gw = await startGateway({ prosody, storePath, env: { ...baseEnv(), SPARKGATE_PUSH_INCLUDE_BODY: 'true' } });
  assert.doesNotMatch(gw.log(), /ev=vapid_key_created/);
  await login('pia');
  const k = await call('GET', '/webpush/vapidkey', { user: 'pia' });
  assert.equal(k.json.publicKey, vapidKey);
  const list = await call('GET', '/webpush/subscriptions', { user: 'pia' });
  const auto = list.json.subscriptions.find((s) => s.resource === 'auto-app');
  assert.ok(auto);
  const id = auto.endpoint.split('/').pop();
  const n = rx.requests.filter((q) => q.id === id).length;
  await sendChat('quin', 'pia', 'plan &amp; details');
  const got = await rx.waitFor((q) => q.id === id, 10000, n + 1);
  assert.equal(payloadOf(got[n]).body, 'plan & details');
}));

test('bad input: malformed subscriptions, http and private endpoints, oversize payloads -> 400 saying why', () => withLogs([gw, strict], async () => {
  const good = JSON.parse(rx.subscribe('ok').json);
  const put = (body, g = gw, user = 'rex') => request('PUT', rest(g, '/webpush/subscribe/x'), { body, headers: { authorization: tokens[user] } });
  const bad = [
    'not json',
    '[]',
    JSON.stringify({ endpoint: good.endpoint }),
    JSON.stringify({ endpoint: good.endpoint, keys: { p256dh: good.keys.p256dh } }),
    JSON.stringify({ endpoint: good.endpoint, keys: { p256dh: 'AAAA', auth: good.keys.auth } }),
    JSON.stringify({ endpoint: good.endpoint, keys: { p256dh: good.keys.p256dh.slice(0, -2) + 'AA', auth: good.keys.auth } }),
    JSON.stringify({ endpoint: good.endpoint, keys: { p256dh: good.keys.p256dh, auth: 'c2hvcnQ' } }),
    JSON.stringify({ endpoint: 'ftp://push.example/x', keys: good.keys }),
    JSON.stringify({ endpoint: 'https://user:pw@push.example/x', keys: good.keys }),
    JSON.stringify({ endpoint: `https://push.example/${'a'.repeat(2100)}`, keys: good.keys }),
  ];
  for (const body of bad) {
    const r = await put(body);
    assert.equal(r.status, 400, `${body.slice(0, 80)} -> ${r.status} ${r.text}`);
    assert.match(r.json.resource, /malformed subscription/);
  }
  // on a gateway with the defaults: https only, public addresses only
  const tok = (await request('POST', rest(strict, '/login/rex'), { body: PW })).json.token;
  const sput = (endpoint) => request('PUT', rest(strict, '/webpush/subscribe/x'), { body: JSON.stringify({ endpoint, keys: good.keys }), headers: { authorization: tok } });
  let r = await sput('http://push.example/x');
  assert.equal(r.status, 400);
  assert.match(r.json.resource, /must be an https URL/);
  for (const ep of ['https://127.0.0.1/x', 'https://localhost/x', 'https://10.1.2.3/x', 'https://[::1]/x', 'https://169.254.169.254/x', `${rx.origin}/push/x`]) {
    r = await sput(ep);
    assert.equal(r.status, 400, `${ep} -> ${r.status}`);
    assert.match(r.json.resource, /private address/, ep);
  }
  r = await sput('https://no-such-host.invalid/x');
  assert.equal(r.status, 400);
  assert.match(r.json.resource, /does not resolve/);
  // a payload over 4 KiB once encrypted
  const big = await call('POST', '/webpush/notify/pia', { user: 'pia', body: { subject: 's', body: 'x'.repeat(3800) } });
  assert.equal(big.status, 400, big.text);
  assert.match(big.json.resource, /payload too large/);
  const fits = await call('POST', '/webpush/notify/pia', { user: 'pia', body: { subject: 's', body: 'x'.repeat(3000) } });
  assert.equal(fits.status, 200, fits.text);
  // a notification without a subject, or not JSON
  assert.equal((await call('POST', '/webpush/notify/pia', { user: 'pia', body: { body: 'x' } })).status, 400);
  assert.equal((await call('POST', '/webpush/notify/pia', { user: 'pia', body: 'nope' })).status, 400);
  assert.equal((await call('POST', '/webpush/notify/bad%20name', { user: 'pia', body: { subject: 's' } })).status, 400);
  assert.equal((await call('POST', '/webpush/message/quin', { user: 'pia', body: '' })).status, 400);
}));
