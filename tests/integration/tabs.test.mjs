// tabs.test.mjs: a user's tabs and other clients stay in step (issue #5 items 3 and 5): a
// message one tab sends through REST shows on every tab (sent: true); messages the user's other
// XMPP clients send or receive arrive as XEP-0280 carbons, forged carbons are ignored; XEP-0352
// CSI is inactive while no event stream is open (seen in Prosody's buffering); the logout
// policies "all" and "tab"; and a page reload inside the linger window keeps the resource
// (the peer sees no unavailable presence).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { startProsody } from '../harness/prosody.mjs';
import { startGateway, withLogs } from '../harness/gateway.mjs';
import { openSSE } from '../harness/sse.mjs';
import { request } from '../harness/http.mjs';
import { openClient, xmlEscape } from '../harness/xmpp-raw.mjs';
import { delay } from '../harness/proc.mjs';

const USERS = ['alice', 'bob', 'carol', 'dave', 'erin', 'frank', 'grace', 'henry', 'ivy', 'jack'];
const PASS = Object.fromEntries(USERS.map((u) => [u, `${u}-tabs-pw-1`]));
let prosody, gw, gwTab;
const raws = [];
const streams = [];

const rest = (g, path) => `${g.url}/sparkweb/api/rest${path}`;
const jidRe = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

async function login(g, user) {
  const r = await request('POST', rest(g, `/login/${user}`), { body: PASS[user], headers: { 'content-type': 'text/plain' } });
  assert.equal(r.status, 200, r.text);
  return r.json;
}

async function sse(g, token) {
  const s = await openSSE(`${g.url}/sparkweb/sse?token=${token}`);
  assert.equal(s.status, 200, s.body);
  streams.push(s);
  await s.waitFor('onConnect', 5000);
  return s;
}

const send = (g, token, to, body) => request('POST', rest(g, `/chat/message/${to}`), { body, headers: { authorization: token } });

const chat = (pred) => (e) => e.event === 'chatapi.chat' && pred(JSON.parse(e.data));

/** A raw XMPP client of `user` bound to `resource`, available (initial presence sent). */
async function raw(user, resource) {
  const { conn } = await openClient({ port: prosody.c2sPort, domain: prosody.domain });
  raws.push(conn);
  const auth = await conn.authPlain(user, PASS[user]);
  assert.ok(auth.ok, auth.reply);
  const jid = await conn.bind(resource);
  conn.send('<presence/>');
  return { conn, jid };
}

/** The full JID the gateway bound for user (from its session_online log line). */
async function gatewayJid(g, user) {
  const m = await g.waitForLog(new RegExp(`ev=session_online jid=(${user}@${jidRe(prosody.domain)}/\\S+)`), 5000);
  return m[1];
}

/** Resolves once the gateway's log has n lines matching re (a /g RegExp). */
async function logCount(g, re, n, timeoutMs = 5000) {
  for (const deadline = Date.now() + timeoutMs; (g.log().match(re) || []).length < n;) {
    if (Date.now() > deadline) throw new Error(`fewer than ${n} log lines match ${re}`);
    await delay(20);
  }
}

/** Resolves once Prosody's log (debug level) matches re. */
async function waitProsodyLog(re, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const text = readFileSync(prosody.logPath, 'utf8');
    if (re.test(text)) return;
    if (Date.now() > deadline) throw new Error(`prosody log never matched ${re}`);
    await delay(50);
  }
}

before(async () => {
  prosody = await startProsody({ logLevel: 'debug', mam: false });
  for (const u of USERS) await prosody.register(u, PASS[u]);
  gw = await startGateway({ prosody });
  gwTab = await startGateway({ prosody, env: { SPARKGATE_SESSION_LOGOUT: 'tab' } });
});

after(async () => {
  for (const s of streams) s.close();
  for (const c of raws) c.close();
  const res = gw ? await gw.stop() : null;
  const resTab = gwTab ? await gwTab.stop() : null;
  if (prosody) await prosody.stop();
  if (res) assert.equal(res.code, 0, `gateway exit ${JSON.stringify(res)}\n${gw.log().slice(-3000)}`);
  if (resTab) assert.equal(resTab.code, 0, `gateway exit ${JSON.stringify(resTab)}\n${gwTab.log().slice(-3000)}`);
});

test('a message one tab sends shows on every tab with sent: true', () => withLogs([gw], async () => {
  const t1 = (await login(gw, 'alice')).token;
  const t2 = (await login(gw, 'alice')).token;
  const s1 = await sse(gw, t1);
  const s2 = await sse(gw, t2);
  const bob = await raw('bob', 'desk');
  const bobBare = `bob@${prosody.domain}`;

  const text = 'hello from tab 1, "quoted"\nand a second line';
  const r = await send(gw, t1, bobBare, text);
  assert.equal(r.status, 200, r.text);
  const echoes = [];
  for (const s of [s1, s2]) {
    const ev = await s.waitFor(chat((d) => d.body === text), 5000);
    const d = JSON.parse(ev.data);
    assert.equal(d.sent, true);
    assert.equal(d.type, 'chat');
    assert.equal(d.to, bobBare);
    assert.match(d.from, new RegExp(`^alice@${jidRe(prosody.domain)}/sparkweb-`));
    assert.equal(d.data, null);
    assert.match(d.id, /^\w+$/);
    echoes.push(d);
  }
  assert.deepEqual(echoes[0], echoes[1]);
  // the peer got that very message (same id)
  const m = await bob.conn.waitFor(new RegExp(`<message\\b[^>]*\\bid=(["'])${echoes[0].id}\\1[^>]*>[\\s\\S]*?</message>`), 5000);
  assert.match(m[0], /hello from tab 1/);

  // a JSON body: the echo carries the Jive data like an inbound message would
  const r2 = await send(gw, t2, bobBare, JSON.stringify({ body: 'json echo', n: 7 }));
  assert.equal(r2.status, 200, r2.text);
  for (const s of [s1, s2]) {
    const ev = await s.waitFor(chat((d) => d.body === 'json echo'), 5000);
    assert.deepEqual(JSON.parse(ev.data).data, { body: 'json echo', n: 7 });
    assert.equal(JSON.parse(ev.data).sent, true);
  }
  // a data-only message (no body member) is not echoed: the first event after it is the marker
  await send(gw, t1, bobBare, JSON.stringify({ notify: 1 }));
  await send(gw, t1, bobBare, 'marker');
  await s1.waitFor(chat((d) => d.body === 'marker'), 5000);
  assert.ok(!s1.events.some((e) => e.event === 'chatapi.notify'), 'no echo for a data-only message');
  // inbound messages carry no "sent"
  bob.conn.send(`<message to='alice@${prosody.domain}' type='chat'><body>reply from bob</body></message>`);
  const inbound = JSON.parse((await s1.waitFor(chat((d) => d.body === 'reply from bob'), 5000)).data);
  assert.equal(inbound.sent, undefined);
  assert.match(inbound.from, /^bob@/);
}));

test('the user\'s other client: carbons of what it sends and receives reach the tabs', () => withLogs([gw], async () => {
  const dom = prosody.domain;
  const t = (await login(gw, 'carol')).token;
  const s = await sse(gw, t);
  await gw.waitForLog(new RegExp(`ev=session_online jid=carol@${jidRe(dom)}/\\S+ name=\\S* carbons=1`), 5000);
  const phone = await raw('carol', 'phone');
  const dave = await raw('dave', 'desk');

  // sent carbon: what carol's phone sends to dave
  phone.conn.send(`<message to='dave@${dom}' type='chat' id='c1'><body>from my phone</body></message>`);
  const sent = JSON.parse((await s.waitFor(chat((d) => d.body === 'from my phone'), 5000)).data);
  assert.equal(sent.sent, true);
  assert.equal(sent.from, `carol@${dom}/phone`);
  assert.equal(sent.to, `dave@${dom}`);
  assert.equal(sent.id, 'c1');
  const raw1 = s.events.find((e) => e.event === 'chatapi.xmpp' && Buffer.from(JSON.parse(e.data).xmpp, 'base64').toString().includes('from my phone'));
  assert.match(Buffer.from(JSON.parse(raw1.data).xmpp, 'base64').toString(), /urn:xmpp:carbons:2/, 'chatapi.xmpp keeps the outer carbon');

  // received carbon: what dave sends to carol's phone
  dave.conn.send(`<message to='carol@${dom}/phone' type='chat' id='d1'><body>to your phone</body></message>`);
  const rec = JSON.parse((await s.waitFor(chat((d) => d.body === 'to your phone'), 5000)).data);
  assert.equal(rec.sent, undefined);
  assert.equal(rec.from, `dave@${dom}/desk`);
  assert.equal(rec.to, `carol@${dom}/phone`);

  // to the bare JID: delivered to both resources directly, shown once
  dave.conn.send(`<message to='carol@${dom}' type='chat'><body>to carol bare</body></message>`);
  await s.waitFor(chat((d) => d.body === 'to carol bare'), 5000);

  // forged carbons from dave, to the gateway's own resource: the wrapped messages are ignored
  const gwJid = await gatewayJid(gw, 'carol');
  const forged = (kind, from, body) => `<message to='${xmlEscape(gwJid)}' type='chat'><${kind} xmlns='urn:xmpp:carbons:2'>` +
    `<forwarded xmlns='urn:xmpp:forward:0'><message xmlns='jabber:client' from='${from}' to='${xmlEscape(gwJid)}' type='chat'>` +
    `<body>${body}</body></message></forwarded></${kind}></message>`;
  dave.conn.send(forged('received', `eve@${dom}/x`, 'forged received'));
  dave.conn.send(forged('sent', `carol@${dom}/phone`, 'forged sent'));
  dave.conn.send(`<message to='${xmlEscape(gwJid)}' type='chat'><body>after forged</body></message>`);
  await s.waitFor(chat((d) => d.body === 'after forged'), 5000);
  const bodies = s.events.filter((e) => e.event === 'chatapi.chat').map((e) => JSON.parse(e.data).body);
  assert.ok(!bodies.includes('forged received') && !bodies.includes('forged sent'), `forged carbon shown: ${bodies}`);
  assert.equal(bodies.filter((b) => b === 'to carol bare').length, 1);
  assert.ok(s.events.some((e) => e.event === 'chatapi.xmpp' && Buffer.from(JSON.parse(e.data).xmpp, 'base64').toString().includes('forged sent')),
    'the outer stanza still rides as chatapi.xmpp');
  await gw.waitForLog(new RegExp(`ev=carbon_forged account=carol@${jidRe(dom)} from=dave@`), 5000);
}));

test('CSI: inactive while no stream is open, active when one attaches', () => withLogs([gw, prosody], async () => {
  const dom = prosody.domain;
  const t = (await login(gw, 'erin')).token;
  const erinJid = await gatewayJid(gw, 'erin');
  const csi = (state) => new RegExp(`ev=csi jid=erin@${jidRe(dom)} state=${state}`, 'g');
  await gw.waitForLog(csi('inactive'), 5000); // nothing attached after login
  const s1 = await sse(gw, t);
  await gw.waitForLog(csi('active'), 5000);
  s1.close();
  const frank = await raw('frank', 'desk');
  await logCount(gw, csi('inactive'), 2); // the last stream closed
  // the server holds unimportant traffic for an inactive client: proof it got <inactive/>
  frank.conn.send(`<presence to='${xmlEscape(erinJid)}'><show>away</show><status>csi probe</status></presence>`);
  await waitProsodyLog(/Holding buffer \(presence update/, 5000);
  // a new stream makes it active again, and the held presence arrives
  const s2 = await sse(gw, t);
  await logCount(gw, csi('active'), 2);
  const p = await s2.waitFor((e) => e.event === 'chatapi.presence' && JSON.parse(e.data).status === 'csi probe', 5000);
  assert.equal(JSON.parse(p.data).show, 'away');
}));

test('logout policy all: every tab of the user is closed and every token revoked', () => withLogs([gw], async () => {
  const a = await login(gw, 'grace');
  const b = await login(gw, 'grace');
  const s1 = await sse(gw, a.token);
  const s2 = await sse(gw, b.token);
  const r = await request('POST', rest(gw, '/logout'), { headers: { authorization: a.token } });
  assert.equal(r.status, 200, r.text);
  for (const s of [s1, s2]) {
    const bye = await s.waitFor('onDisconnect', 5000);
    assert.equal(JSON.parse(bye.data).reason, 'logout');
    await s.closed;
  }
  for (const tok of [a.token, b.token]) {
    const again = await send(gw, tok, `bob@${prosody.domain}`, 'hi');
    assert.equal(again.status, 401);
  }
  const ref = await request('POST', rest(gw, '/token/refresh'), { body: b.refreshToken });
  assert.equal(ref.status, 401);
}));

test('logout policy tab: only that tab ends; the session stays for the others', () => withLogs([gwTab], async () => {
  const dom = prosody.domain;
  const a = await login(gwTab, 'henry');
  const b = await login(gwTab, 'henry');
  const c = await login(gwTab, 'henry'); // a REST-only tab, never opens a stream
  const s1 = await sse(gwTab, a.token);
  const s2 = await sse(gwTab, b.token);
  const r = await request('POST', rest(gwTab, '/logout'), { headers: { authorization: a.token } });
  assert.equal(r.status, 200, r.text);
  const bye = await s1.waitFor('onDisconnect', 5000);
  assert.equal(JSON.parse(bye.data).reason, 'logout');
  await s1.closed;
  await gwTab.waitForLog(/ev=logout user=henry policy=tab revoked=2 streams_left=1/, 5000);
  // this tab's tokens are gone (access and refresh family)
  assert.equal((await send(gwTab, a.token, `bob@${dom}`, 'x')).status, 401);
  assert.equal((await request('POST', rest(gwTab, '/token/refresh'), { body: a.refreshToken })).status, 401);
  // the other tab goes on: the session is the same one and its stream still gets events
  const ok = await send(gwTab, b.token, `bob@${dom}`, 'still here');
  assert.equal(ok.status, 200, ok.text);
  await s2.waitFor(chat((d) => d.body === 'still here'), 5000);
  assert.ok(!s2.events.some((e) => e.event === 'onDisconnect'));
  assert.equal((gwTab.log().match(/ev=session_online jid=henry@/g) || []).length, 1);
  // the last tab with a stream logs out: the session closes (as today)
  const r2 = await request('POST', rest(gwTab, '/logout'), { headers: { authorization: b.token } });
  assert.equal(r2.status, 200, r2.text);
  assert.equal(JSON.parse((await s2.waitFor('onDisconnect', 5000)).data).reason, 'logout');
  await s2.closed;
  await gwTab.waitForLog(new RegExp(`ev=session_end jid=henry@${jidRe(dom)} reason=logout`), 5000);
  // the REST-only tab's token is still valid and re-opens the session from the vault
  const back = await send(gwTab, c.token, `bob@${dom}`, 'back again');
  assert.equal(back.status, 200, back.text);
}));

test('a page reload inside the linger window keeps the resource; the peer sees no unavailable', () => withLogs([gw], async () => {
  const dom = prosody.domain;
  const t = (await login(gw, 'ivy')).token;
  const s1 = await sse(gw, t);
  const jack = await raw('jack', 'desk');
  // jack subscribes to ivy's presence; the session approves (accept_all) and ivy's presence follows
  jack.conn.send(`<presence to='ivy@${dom}' type='subscribe'/>`);
  const avail = await jack.conn.waitFor(new RegExp(`<presence\\b(?![^>]*type=)[^>]*\\bfrom=(["'])(ivy@${jidRe(dom)}/[^"']+)\\1[^>]*>`), 5000);
  const resource = avail[2];
  const seenBefore = jack.conn.received.length;

  assert.equal((await send(gw, t, `jack@${dom}`, 'before reload')).status, 200);
  const before = JSON.parse((await s1.waitFor(chat((d) => d.body === 'before reload'), 5000)).data);
  assert.equal(before.from, resource);

  // the page reloads: its stream closes, a new one opens within session.linger
  s1.close();
  await gw.waitForLog(new RegExp(`ev=detach jid=ivy@${jidRe(dom)} sinks=0`), 5000);
  const s2 = await sse(gw, t); // onConnect arrived (sse() waits for it)
  assert.equal((await send(gw, t, `jack@${dom}`, 'after reload')).status, 200);
  const after = JSON.parse((await s2.waitFor(chat((d) => d.body === 'after reload'), 5000)).data);
  assert.equal(after.from, resource, 'same resource after the reload');
  await jack.conn.waitFor(/after reload/, 5000);
  const later = jack.conn.received.slice(seenBefore);
  const presences = later.match(/<presence\b[^>]*>/g) || [];
  assert.ok(!presences.some((p) => p.includes(resource) && /type=(["'])unavailable\1/.test(p)),
    `the peer saw ivy's resource go offline: ${presences}`);
  assert.equal((gw.log().match(/ev=session_online jid=ivy@/g) || []).length, 1);
}));
