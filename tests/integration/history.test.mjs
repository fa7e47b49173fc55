// history.test.mjs: the one-to-one archive (contract §1.3 C1: XEP-0313 MAM on the caller's own
// archive, XEP-0059 paging, date and peer filters, keywords) and chat states (C3, XEP-0085),
// against a real Prosody with mod_mam. Also checks that archive results never leak into the
// SSE stream as chat events and that other users' conversations are never returned.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startProsody } from '../harness/prosody.mjs';
import { startGateway } from '../harness/gateway.mjs';
import { openSSE } from '../harness/sse.mjs';
import { request } from '../harness/http.mjs';

const PASS = { alice: 'alice-pw-hist-1', bob: 'bob-pw-hist-2', carol: 'carol-pw-hist-3' };
let prosody, gw;
const tok = {};
const rest = (path) => `${gw.url}/sparkweb/api/rest${path}`;
const call = (method, path, t, body) => request(method, rest(path), { body, headers: { authorization: t } });
const bodies = (r) => r.json.conversation.flatMap((c) => c.message.map((m) => m.body));
let sent = []; // alice<->bob bodies in order

before(async () => {
  prosody = await startProsody();
  for (const [u, p] of Object.entries(PASS)) await prosody.register(u, p);
  gw = await startGateway({ prosody });
  for (const u of Object.keys(PASS)) {
    const r = await request('POST', rest(`/login/${u}`), { body: PASS[u] });
    assert.equal(r.status, 200, r.text);
    tok[u] = r.json.token;
  }
  const d = prosody.domain;
  // 60 messages between alice and bob: 40 from alice, 20 from bob, interleaved
  for (let i = 0; i < 60; i++) {
    const fromBob = i % 3 === 2;
    const body = `${fromBob ? 'bob' : 'alice'} says ${i}`;
    const r = await call('POST', `/chat/message/${fromBob ? 'alice' : 'bob'}@${d}`, tok[fromBob ? 'bob' : 'alice'], body);
    assert.equal(r.status, 200, r.text);
    sent.push(body);
  }
  for (const body of ['I like Banana bread', 'no fruit here', 'banana split']) {
    assert.equal((await call('POST', `/chat/message/carol@${d}`, tok.alice, body)).status, 200);
  }
  // a conversation alice is not part of
  assert.equal((await call('POST', `/chat/message/carol@${d}`, tok.bob, 'bob secret banana for carol')).status, 200);
  // the archive is written as the server routes: wait until the last one is there
  for (let i = 0; i < 50; i++) {
    const r = await call('GET', '/chat/messages?to=carol&max=10', tok.bob);
    if (r.status === 200 && bodies(r).includes('bob secret banana for carol')) break;
    await new Promise((res) => setTimeout(res, 100));
  }
  // two senders on two streams: the server may archive neighbours in either order. The
  // archive's order is the reference from here on (same messages, time never going back).
  const all = await call('GET', '/chat/messages?to=bob&max=500', tok.alice);
  assert.equal(all.status, 200, all.text);
  assert.deepEqual([...bodies(all)].sort(), [...sent].sort());
  const dates = all.json.conversation.flatMap((c) => c.message.map((m) => m.sentDate));
  assert.deepEqual(dates, [...dates].sort((a, b) => a - b));
  sent = bodies(all);
});

after(async () => {
  const res = gw ? await gw.stop() : null;
  if (prosody) await prosody.stop();
  if (res) assert.equal(res.code, 0, `gateway exit ${JSON.stringify(res)}\n${gw.log().slice(-3000)}`);
});

test('C1 with to: every message of the pair, exact field names, one conversation', async () => {
  const r = await call('GET', '/chat/messages?to=bob&max=500', tok.alice);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.complete, true);
  assert.equal(typeof r.json.first, 'string');
  assert.equal(typeof r.json.last, 'string');
  assert.equal(r.json.conversation.length, 1, 'sent within minutes: one conversation');
  const c = r.json.conversation[0];
  const d = prosody.domain;
  assert.equal(c.messageCount, 60);
  assert.deepEqual(bodies(r), sent);
  assert.equal(typeof c.conversationID, 'number');
  assert.equal(c.external, false);
  assert.ok(c.startDate <= c.lastActivity);
  assert.ok(Math.abs(c.startDate - Date.now()) < 10 * 60 * 1000);
  assert.deepEqual(c.participantList, [`alice@${d}`, `bob@${d}`]);
  assert.deepEqual(c.conversationParticipants, c.participantList);
  assert.deepEqual(c.participants, [{ node: 'alice', domain: d }, { node: 'bob', domain: d }]);
  const m0 = c.message[0];
  assert.deepEqual(Object.keys(m0).sort(), ['body', 'conversationID', 'from', 'fromJID', 'roomEvent', 'sentDate', 'to', 'toJID']);
  assert.equal(m0.conversationID, c.conversationID);
  assert.match(m0.from, new RegExp(`^alice@${d}/`));
  assert.equal(m0.fromJID.node, 'alice');
  assert.equal(m0.fromJID.domain, d);
  assert.equal(typeof m0.fromJID.resource, 'string');
  assert.equal(m0.to, `bob@${d}`);
  assert.deepEqual(m0.toJID, { node: 'bob', domain: d });
  assert.equal(m0.roomEvent, false);
  assert.equal(typeof m0.sentDate, 'number');
  const fromBob = c.message[2];
  assert.equal(fromBob.body, 'bob says 2');
  assert.match(fromBob.from, new RegExp(`^bob@${d}/`));
  // bob's own archive holds the same conversation
  const b = await call('GET', `/chat/messages?to=alice@${d}&max=500`, tok.bob);
  assert.deepEqual(bodies(b), sent);
});

test('C1 paging with max/after/before (RSM)', async () => {
  const p1 = await call('GET', '/chat/messages?to=bob&max=25', tok.alice);
  assert.equal(p1.status, 200, p1.text);
  assert.equal(p1.json.complete, false);
  assert.deepEqual(bodies(p1), sent.slice(0, 25));
  const p2 = await call('GET', `/chat/messages?to=bob&max=25&after=${encodeURIComponent(p1.json.last)}`, tok.alice);
  assert.deepEqual(bodies(p2), sent.slice(25, 50));
  assert.equal(p2.json.complete, false);
  const p3 = await call('GET', `/chat/messages?to=bob&max=25&after=${encodeURIComponent(p2.json.last)}`, tok.alice);
  assert.deepEqual(bodies(p3), sent.slice(50));
  assert.equal(p3.json.complete, true);
  // before="" is the last page; before=<id> the page before it
  const last = await call('GET', '/chat/messages?to=bob&max=10&before=', tok.alice);
  assert.deepEqual(bodies(last), sent.slice(50));
  const prev = await call('GET', `/chat/messages?to=bob&max=10&before=${encodeURIComponent(last.json.first)}`, tok.alice);
  assert.deepEqual(bodies(prev), sent.slice(40, 50));
  // more than the server's page cap (Prosody: 50), backwards: pages joined in time order
  const back = await call('GET', '/chat/messages?to=bob&max=55&before=', tok.alice);
  assert.deepEqual(bodies(back), sent.slice(5));
  assert.equal(back.json.complete, false);
  const rest5 = await call('GET', `/chat/messages?to=bob&max=55&before=${encodeURIComponent(back.json.first)}`, tok.alice);
  assert.deepEqual(bodies(rest5), sent.slice(0, 5));
  assert.equal(rest5.json.complete, true);
  // default page size 50
  const def = await call('GET', '/chat/messages?to=bob', tok.alice);
  assert.equal(bodies(def).length, 50);
});

test('C1 without to: only the caller\'s own conversations, one per peer', async () => {
  const r = await call('GET', '/chat/messages?max=500', tok.alice);
  assert.equal(r.status, 200, r.text);
  const d = prosody.domain;
  const peers = r.json.conversation.map((c) => c.participantList.find((p) => p !== `alice@${d}`));
  assert.deepEqual(peers, [`bob@${d}`, `carol@${d}`]);
  assert.ok(!r.text.includes('bob secret'), 'another user\'s conversation leaked');
  // the to filter: only that peer (a username or a bare JID)
  const carol = await call('GET', '/chat/messages?to=carol&max=500', tok.alice);
  assert.deepEqual(bodies(carol), ['I like Banana bread', 'no fruit here', 'banana split']);
  const carolJid = await call('GET', `/chat/messages?to=carol@${d}`, tok.alice);
  assert.deepEqual(bodies(carolJid), bodies(carol));
  const starts = r.json.conversation.map((c) => c.startDate);
  assert.deepEqual(starts, [...starts].sort((a, b) => a - b));
});

test('C1 start/end filters (ISO-8601 and MM/dd/yy)', async () => {
  const iso = (ms) => new Date(ms).toISOString();
  const now = Date.now();
  const q = async (qs) => {
    const r = await call('GET', `/chat/messages?to=bob&max=500&${qs}`, tok.alice);
    assert.equal(r.status, 200, r.text);
    return bodies(r).length;
  };
  assert.equal(await q(`start=${iso(now - 3600e3)}`), 60);
  assert.equal(await q(`start=${iso(now + 3600e3)}`), 0, 'start in the future');
  assert.equal(await q(`start=${iso(now + 60e3)}`), 60, 'start is moved 5 minutes earlier');
  assert.equal(await q(`end=${iso(now - 2 * 86400e3)}`), 0, 'end two days ago (+1 day) is before');
  assert.equal(await q(`end=${iso(now - 3600e3)}`), 60, 'end is moved one day later');
  const t = new Date();
  const mmddyy = `${String(t.getMonth() + 1).padStart(2, '0')}/${String(t.getDate()).padStart(2, '0')}/${String(t.getFullYear() % 100).padStart(2, '0')}`;
  assert.equal(await q(`start=${encodeURIComponent(mmddyy)}&end=${encodeURIComponent(mmddyy)}`), 60);
  assert.equal(await q('start=not-a-date'), 60, 'unparseable dates are ignored');
});

test('C1 keywords: case-insensitive terms, own archive only', async () => {
  const r = await call('GET', '/chat/messages?keywords=banana&max=500', tok.alice);
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(bodies(r).sort(), ['I like Banana bread', 'banana split']);
  const two = await call('GET', `/chat/messages?keywords=${encodeURIComponent('says 4')}&to=bob&max=500`, tok.alice);
  assert.deepEqual(bodies(two), sent.filter((b) => /says/.test(b) && /4/.test(b)));
  assert.match(gw.log(), /ev=history user=alice/);
});

test('C1 bad input is 400', async () => {
  for (const qs of ['max=0', 'max=501', 'max=abc', 'to=%40%40', 'to=a%20b', 'before=x&after=y', 'after=', `keywords=${'k'.repeat(300)}`]) {
    const r = await call('GET', `/chat/messages?${qs}`, tok.alice);
    assert.equal(r.status, 400, `${qs}: ${r.text}`);
    assert.equal(r.json.message, 'Exception');
  }
  assert.equal((await request('GET', rest('/chat/messages'))).status, 401);
});

test('archive results never become SSE chat events', async () => {
  const s = await openSSE(`${gw.url}/sparkweb/sse?token=${tok.alice}`);
  try {
    await s.waitFor((e) => e.event === 'onConnect', 5000);
    // markers around the query: what arrives between them is what the query produced
    const marker = async (text) => {
      assert.equal((await call('POST', `/chat/message/alice@${prosody.domain}`, tok.bob, text)).status, 200);
      await s.waitFor((e) => e.event === 'chatapi.chat' && JSON.parse(e.data).body === text, 5000);
      return s.events.length;
    };
    const from = await marker('marker-1');
    const r = await call('GET', '/chat/messages?to=bob&max=500', tok.alice);
    assert.equal(bodies(r).length, 61, 'the 60 and marker-1');
    const to = await marker('marker-2');
    const between = s.events.slice(from, to);
    const raw = (e) => (e.event === 'chatapi.xmpp' ? Buffer.from(JSON.parse(e.data).xmpp, 'base64').toString() : '');
    // every stanza is a chatapi.xmpp event, the IQ answers (<fin/>) too; the 61 result
    // <message>s must not be
    const leaked = between.filter((e) => !e.data.includes('marker-2') && !raw(e).includes('marker-2') &&
      !raw(e).startsWith('<iq'));
    assert.deepEqual(leaked, [], 'archive results became events');
  } finally {
    s.close();
  }
});

test('C3 chat states reach the peer as chatapi.chat state events; unknown state 400', async () => {
  const s = await openSSE(`${gw.url}/sparkweb/sse?token=${tok.bob}`);
  try {
    await s.waitFor((e) => e.event === 'onConnect', 5000);
    for (const state of ['composing', 'paused', 'active', 'inactive', 'gone']) {
      const r = await call('POST', `/chat/chatstate/${state}/bob@${prosody.domain}`, tok.alice);
      assert.equal(r.status, 200, r.text);
      assert.equal(r.text, '');
      const ev = await s.waitFor((e) => e.event === 'chatapi.chat' && JSON.parse(e.data).state === state, 5000);
      const p = JSON.parse(ev.data);
      assert.match(p.from, new RegExp(`^alice@${prosody.domain}/`));
      assert.equal(p.type, 'chat');
    }
    // a bare username works too
    assert.equal((await call('POST', '/chat/chatstate/composing/bob', tok.alice)).status, 200);
  } finally {
    s.close();
  }
  assert.equal((await call('POST', `/chat/chatstate/typing/bob@${prosody.domain}`, tok.alice)).status, 400);
  assert.equal((await call('POST', '/chat/chatstate/composing/%40bad', tok.alice)).status, 400);
});
