// events.test.mjs: event ids and replay (docs/events.md). onConnect carries the stream's
// starting id; a stream that reconnects with Last-Event-ID (header, or ?lastEventId=) gets
// exactly the events it missed, in order, then live ones; ids it cannot be served from
// (garbage, the future, another user's or an earlier session's, or dropped from the ring) give
// a sparkgate.gap event first and never an error; single-use SSE tickets.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startProsody } from '../harness/prosody.mjs';
import { startGateway, withLogs } from '../harness/gateway.mjs';
import { openSSE } from '../harness/sse.mjs';
import { request } from '../harness/http.mjs';
import { recordSecret } from '../harness/secrets.mjs';
import { delay } from '../harness/proc.mjs';

const PASS = { alice: 'alice-ev-pw-1', bob: 'bob-ev-pw-2', carol: 'carol-ev-pw-3', dave: 'dave-ev-pw-4' };
const TICKET_S = 2;
let prosody, gw;

const rest = (g, path) => `${g.url}/sparkweb/api/rest${path}`;

async function login(g, user) {
  const r = await request('POST', rest(g, `/login/${user}`), { body: PASS[user] });
  assert.equal(r.status, 200, r.text);
  return r.json.token;
}

async function send(g, token, to, body) {
  const r = await request('POST', rest(g, `/chat/message/${to}@${prosody.domain}`), { body, headers: { authorization: token } });
  assert.equal(r.status, 200, r.text);
}

function sse(g, query, headers = {}) {
  return openSSE(`${g.url}/sparkweb/sse?${new URLSearchParams(query)}`, { headers });
}

async function ticket(g, authorization) {
  const r = await request('POST', rest(g, '/sse/ticket'), { headers: { authorization } });
  if (r.status === 200) recordSecret(r.json.ticket);
  return r;
}

const bodies = (s) => s.events.filter((e) => e.event === 'chatapi.chat' && JSON.parse(e.data).body !== undefined)
  .map((e) => JSON.parse(e.data).body);
// the id of the last event dispatched (what EventSource would send; the parser's buffer may
// hold the id of a frame cut in the middle)
const lastId = (s) => s.events.at(-1).id;
const gapOf = (s) => s.events.find((e) => e.event === 'sparkgate.gap');

before(async () => {
  prosody = await startProsody();
  for (const [u, p] of Object.entries(PASS)) await prosody.register(u, p);
  gw = await startGateway({ prosody, env: { SPARKGATE_EVENTS_RING_LEN: '4096', SPARKGATE_SSE_TICKET_LIFETIME: `${TICKET_S}s` } });
});

after(async () => {
  const res = gw ? await gw.stop() : null;
  if (prosody) await prosody.stop();
  if (res) assert.equal(res.code, 0, `gateway exit ${JSON.stringify(res)}\n${gw.log().slice(-3000)}`);
});

test('onConnect carries the starting id and events carry increasing JSON-safe ids', () => withLogs([gw], async () => {
  const alice = await login(gw, 'alice');
  const bob = await login(gw, 'bob');
  const s = await sse(gw, { token: alice });
  try {
    assert.equal(s.status, 200);
    const hello = await s.waitFor('onConnect');
    assert.equal(s.events[0].event, 'onConnect', 'onConnect comes first');
    assert.match(hello.id, /^[1-9][0-9]*$/);
    await send(gw, bob, 'alice', 'id check');
    await s.waitUntil(() => bodies(s).includes('id check'), 10000);
    const ids = s.events.slice(1).map((e) => Number(e.id));
    assert.ok(ids.length >= 2);
    let prev = Number(hello.id);
    for (const id of ids) {
      assert.ok(Number.isSafeInteger(id), `${id} is a safe integer`);
      assert.ok(id > prev, `${id} > ${prev}`);
      prev = id;
    }
    // reconnecting right after onConnect's id replays exactly these events
    const again = await sse(gw, { token: alice }, { 'last-event-id': hello.id });
    try {
      await again.waitUntil(() => bodies(again).includes('id check'), 5000);
      assert.equal(gapOf(again), undefined);
      assert.deepEqual(again.events.slice(1).map((e) => e.id), s.events.slice(1).map((e) => e.id));
    } finally {
      again.close();
    }
  } finally {
    s.close();
  }
}));

test('500 messages while the stream drops mid-way: after Last-Event-ID each arrives exactly once, in order', () => withLogs([gw], async () => {
  const alice = await login(gw, 'alice');
  const bob = await login(gw, 'bob');
  const N = 500;
  const s1 = await sse(gw, { token: alice });
  await s1.waitFor('onConnect');
  let s2 = null;
  let cut = '';
  try {
    for (let i = 1; i <= N; i++) {
      await send(gw, bob, 'alice', `m${i}`);
      if (i === 200) {
        s1.close(); // in the middle of the flow: some of 1..200 may still be on their way
        cut = lastId(s1);
      }
      if (i === 350) s2 = await sse(gw, { token: alice }, { 'last-event-id': cut });
    }
    await s2.waitUntil(() => bodies(s2).includes(`m${N}`), 30000, `m${N}`);
    assert.equal(gapOf(s2), undefined, 'nothing was lost');
    assert.equal(s2.events[0].event, 'onConnect');
    assert.equal(s2.events[0].id, cut, 'onConnect carries the resumed position');
    const got = [...bodies(s1), ...bodies(s2)];
    const want = Array.from({ length: N }, (_, k) => `m${k + 1}`);
    assert.equal(got.length, N, `got ${got.length} bodies`);
    assert.deepEqual(got, want);
    const ids = [...s1.events.slice(1), ...s2.events.slice(1)].map((e) => Number(e.id));
    for (let k = 1; k < ids.length; k++) assert.ok(ids[k] > ids[k - 1], `ids increase at ${k}`);
    assert.ok(bodies(s1).length < N && bodies(s1).length >= 1, 'the cut happened mid-way');
  } finally {
    s1.close();
    if (s2) s2.close();
  }
}));

test('?lastEventId= works like the header (HTTP/2, polyfills, a new EventSource)', () => withLogs([gw], async () => {
  const alice = await login(gw, 'alice');
  const bob = await login(gw, 'bob');
  const s1 = await sse(gw, { token: alice });
  const hello = await s1.waitFor('onConnect');
  s1.close();
  await send(gw, bob, 'alice', 'q1');
  await send(gw, bob, 'alice', 'q2');
  const s2 = await sse(gw, { token: alice, lastEventId: hello.id });
  try {
    await s2.waitUntil(() => bodies(s2).length >= 2, 10000);
    assert.deepEqual(bodies(s2), ['q1', 'q2']);
    assert.equal(gapOf(s2), undefined);
  } finally {
    s2.close();
  }
}));

async function expectGap(token, lastEventId, requested) {
  const s = await sse(gw, { token }, { 'last-event-id': lastEventId });
  try {
    assert.equal(s.status, 200, 'a bad id is never an error');
    const g = await s.waitFor('sparkgate.gap', 5000);
    assert.equal(s.events[0].event, 'onConnect');
    assert.equal(s.events[1].event, 'sparkgate.gap');
    const d = JSON.parse(g.data);
    assert.deepEqual(Object.keys(d).sort(), ['last', 'oldest', 'requested']);
    assert.equal(d.requested, requested);
    assert.ok(Number.isSafeInteger(d.last) && Number.isSafeInteger(d.oldest));
    return { s, d };
  } catch (e) {
    s.close();
    throw e;
  }
}

test('garbage, future and foreign ids give onConnect, sparkgate.gap, then live events', () => withLogs([gw], async () => {
  const alice = await login(gw, 'alice');
  const bob = await login(gw, 'bob');
  const carol = await login(gw, 'carol');
  const c = await sse(gw, { token: carol });
  const carolId = (await c.waitFor('onConnect')).id;
  c.close();
  const a = await sse(gw, { token: alice });
  const aliceId = Number((await a.waitFor('onConnect')).id);
  a.close();

  const cases = [
    ['garbage', 'not-an-id', null],
    ['negative', '-5', null],
    ['too large', '99999999999999999999', null],
    ['from the future', String(aliceId + 1000), aliceId + 1000],
    ["carol's id space", carolId, Number(carolId)],
    ['issued by an older gateway', '7', 7],
  ];
  for (const [what, id, requested] of cases) {
    const { s, d } = await expectGap(alice, id, requested);
    try {
      assert.ok(d.last >= aliceId, what);
      // the stream works normally after the gap, and its onConnect id is a valid position
      await send(gw, bob, 'alice', `after ${what}`);
      await s.waitUntil(() => bodies(s).includes(`after ${what}`), 10000, what);
      const again = await sse(gw, { token: alice }, { 'last-event-id': s.events[0].id });
      try {
        await again.waitUntil(() => bodies(again).includes(`after ${what}`), 5000, `${what} replay`);
        assert.equal(gapOf(again), undefined, `${what}: onConnect's id resumes without a gap`);
      } finally {
        again.close();
      }
    } finally {
      s.close();
    }
  }
  assert.doesNotMatch(gw.log(), /level=error/);
}));

test("an id from an earlier session of the same user is a gap", () => withLogs([gw], async () => {
  let dave = await login(gw, 'dave');
  const s1 = await sse(gw, { token: dave });
  await s1.waitFor('onConnect');
  const bob = await login(gw, 'bob');
  await send(gw, bob, 'dave', 'first life');
  await s1.waitUntil(() => bodies(s1).includes('first life'), 10000);
  const old = lastId(s1);
  const out = await request('POST', rest(gw, '/logout'), { headers: { authorization: dave } });
  assert.equal(out.status, 200, out.text);
  await s1.closed;
  dave = await login(gw, 'dave'); // a new session object, a new id space
  const { s, d } = await expectGap(dave, old, Number(old));
  try {
    assert.notEqual(d.last, Number(old));
    assert.equal(bodies(s).length, 0);
  } finally {
    s.close();
  }
}));

test('tickets: single use, short-lived, bound to their user and token; garbage is 401', () => withLogs([gw], async () => {
  const alice = await login(gw, 'alice');
  const bob = await login(gw, 'bob');

  const t = await ticket(gw, alice);
  assert.equal(t.status, 200, t.text);
  assert.match(t.json.ticket, /^[A-Za-z0-9_-]{43}$/);
  assert.equal(t.json.expiresIn, TICKET_S);
  assert.match(t.headers['cache-control'] ?? '', /no-store/);
  const s = await sse(gw, { ticket: t.json.ticket });
  try {
    assert.equal(s.status, 200);
    assert.equal(JSON.parse((await s.waitFor('onConnect')).data).username, 'alice');
  } finally {
    s.close();
  }
  const reuse = await sse(gw, { ticket: t.json.ticket });
  assert.equal(reuse.status, 401, 'a ticket is single-use');

  for (const bad of ['garbage', 'A'.repeat(43), `${t.json.ticket}x`, t.json.ticket.slice(1), '%00']) {
    const r = await sse(gw, { ticket: bad });
    assert.equal(r.status, 401, `ticket ${bad}`);
  }

  // a ticket names its user: bob's opens bob's stream, never alice's
  const tb = await ticket(gw, bob);
  const mixed = await sse(gw, { ticket: tb.json.ticket, token: alice });
  assert.equal(mixed.status, 401, "bob's ticket with alice's token");
  const tb2 = await ticket(gw, bob);
  const sb = await sse(gw, { ticket: tb2.json.ticket });
  try {
    assert.equal(JSON.parse((await sb.waitFor('onConnect')).data).username, 'bob');
  } finally {
    sb.close();
  }

  // not a credential anywhere else
  const asToken = await request('POST', rest(gw, '/chat/message/bob@' + prosody.domain), { body: 'x', headers: { authorization: tb2.json.ticket } });
  assert.equal(asToken.status, 401);
  assert.equal((await sse(gw, { token: tb2.json.ticket })).status, 401);

  // expired
  const te = await ticket(gw, alice);
  await delay(TICKET_S * 1000 + 600);
  assert.equal((await sse(gw, { ticket: te.json.ticket })).status, 401, 'expired ticket');

  // needs authentication; Basic works too
  assert.equal((await request('POST', rest(gw, '/sse/ticket'))).status, 401);
  const basic = `Basic ${Buffer.from(`bob:${PASS.bob}`).toString('base64')}`;
  const tbasic = await ticket(gw, basic);
  assert.equal(tbasic.status, 200, tbasic.text);
  const sbasic = await sse(gw, { ticket: tbasic.json.ticket });
  assert.equal(sbasic.status, 200);
  sbasic.close();

  // a ticket plus ?lastEventId= is how a page resumes with a new EventSource
  const s1 = await sse(gw, { token: alice });
  const from = (await s1.waitFor('onConnect')).id;
  s1.close();
  await send(gw, bob, 'alice', 'via ticket');
  const tr = await ticket(gw, alice);
  const s2 = await sse(gw, { ticket: tr.json.ticket, lastEventId: from });
  try {
    await s2.waitUntil(() => bodies(s2).includes('via ticket'), 10000);
    assert.equal(gapOf(s2), undefined);
  } finally {
    s2.close();
  }
}));

test('a ticket dies with the token it was obtained with (logout)', () => withLogs([gw], async () => {
  const carol = await login(gw, 'carol');
  const t = await ticket(gw, carol);
  assert.equal(t.status, 200);
  const out = await request('POST', rest(gw, '/logout'), { headers: { authorization: carol } });
  assert.equal(out.status, 200, out.text);
  assert.equal((await sse(gw, { ticket: t.json.ticket })).status, 401);
}));

test('outstanding tickets per user are bounded', () => withLogs([gw], async () => {
  const g = await startGateway({ prosody, env: { SPARKGATE_SSE_MAX_STREAMS_PER_USER: '3' } });
  try {
    const bob = await login(g, 'bob');
    const got = [];
    for (let i = 0; i < 4; i++) got.push(await ticket(g, bob));
    assert.deepEqual(got.map((r) => r.status), [200, 200, 200, 429]);
    assert.equal(got[0].json.expiresIn, 30, 'default lifetime');
    const s = await sse(g, { ticket: got[0].json.ticket }); // spending one frees a place
    s.close();
    assert.equal((await ticket(g, bob)).status, 200);
  } finally {
    assert.equal((await g.stop()).code, 0);
  }
}));

test('a reconnect after the ring moved on gets sparkgate.gap, then what is still held', () => withLogs([gw], async () => {
  const g = await startGateway({ prosody, env: { SPARKGATE_EVENTS_RING_LEN: '8' } });
  try {
    const alice = await login(g, 'alice');
    const bob = await login(g, 'bob');
    const s1 = await sse(g, { token: alice });
    await s1.waitFor('onConnect');
    await send(g, bob, 'alice', 'seen');
    await s1.waitUntil(() => bodies(s1).includes('seen'), 10000);
    const cut = lastId(s1);
    s1.close();
    for (let i = 1; i <= 10; i++) await send(g, bob, 'alice', `r${i}`);
    await delay(300);
    const s2 = await sse(g, { token: alice }, { 'last-event-id': cut });
    try {
      const gap = JSON.parse((await s2.waitFor('sparkgate.gap', 5000)).data);
      assert.equal(gap.requested, Number(cut));
      assert.ok(gap.oldest > Number(cut) + 1, 'some events are gone');
      assert.equal(gap.last - gap.oldest + 1, 8, 'the ring holds 8');
      await s2.waitUntil(() => bodies(s2).includes('r10'), 5000);
      const held = s2.events.slice(2).map((e) => Number(e.id));
      assert.equal(held[0], gap.oldest);
      assert.equal(held.at(-1), gap.last);
      assert.deepEqual(bodies(s2), ['r7', 'r8', 'r9', 'r10']);
    } finally {
      s2.close();
    }
  } finally {
    assert.equal((await g.stop()).code, 0);
  }
}));
