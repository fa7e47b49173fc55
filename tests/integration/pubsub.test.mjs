// pubsub.test.mjs: contract §1.4 K1-K7 against Prosody's pubsub component and PEP, with two
// real users: nodes, create (409 when it exists), subscribe, publish (JSON object only), the
// owner's subscriber list (403 for others), PEP nodes and publish, and the pubsub.item event a
// subscriber's stream gets, with exact JSON, also for huge and hostile payloads.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startProsody } from '../harness/prosody.mjs';
import { startGateway } from '../harness/gateway.mjs';
import { openSSE } from '../harness/sse.mjs';
import { request } from '../harness/http.mjs';
import { openClient, xmlEscape } from '../harness/xmpp-raw.mjs';

const PASS = { alice: 'alice-pubsub-pw-1', bob: 'bob-pubsub-pw-2' };
let prosody, gw, bobSSE;
const tok = {};
const rest = (path) => `${gw.url}/sparkweb/api/rest${path}`;
const call = (method, user, path, body) => request(method, rest(path), {
  body, headers: { authorization: `Bearer ${tok[user]}`, 'content-type': 'text/plain;charset=UTF-8' },
});

async function raw(user) {
  const { conn } = await openClient({ port: prosody.c2sPort, domain: prosody.domain });
  const a = await conn.authPlain(user, PASS[user]);
  assert.ok(a.ok, a.reply);
  await conn.bind(`raw-${Date.now()}`);
  return conn;
}

before(async () => {
  // Prosody 0.12 lets only admins create nodes on its pubsub component: alice is one, bob not.
  prosody = await startProsody({ admins: ['alice@localhost'] });
  await prosody.register('alice', PASS.alice);
  await prosody.register('bob', PASS.bob);
  gw = await startGateway({ prosody, env: { SPARKGATE_HTTP_MAX_BODY: '512k' } });
  for (const u of ['alice', 'bob']) {
    const r = await request('POST', rest(`/login/${u}`), { body: PASS[u] });
    assert.equal(r.status, 200, r.text);
    tok[u] = r.json.token;
  }
  bobSSE = await openSSE(`${gw.url}/sparkweb/sse?token=${tok.bob}`);
  await bobSSE.waitFor((e) => e.event === 'onConnect', 5000);
});

after(async () => {
  bobSSE?.close();
  const res = gw ? await gw.stop() : null;
  if (prosody) await prosody.stop();
  if (res) assert.equal(res.code, 0, `gateway exit ${JSON.stringify(res)}\n${gw.log().slice(-3000)}`);
});

const pubsubItems = (s) => s.events.filter((e) => e.event === 'pubsub.item');

test('K2 create: 200, then 409 when it exists, 403 for a user the server forbids, 400 bad names', async () => {
  let r = await call('POST', 'alice', '/pubsub/create/news');
  assert.equal(r.status, 200, r.text);
  assert.equal(r.text, '');
  r = await call('POST', 'alice', '/pubsub/create/news');
  assert.equal(r.status, 409, r.text);
  assert.equal(r.json.message, 'Exception');
  assert.match(r.json.resource, /^conflict/);
  r = await call('POST', 'bob', '/pubsub/create/bobs-node');
  assert.equal(r.status, 403, r.text);
  r = await call('POST', 'alice', `/pubsub/create/${'n'.repeat(257)}`);
  assert.equal(r.status, 400);
  r = await call('POST', 'alice', '/pubsub/create/%FF%FE');
  assert.equal(r.status, 400);
  r = await call('POST', 'alice', '/pubsub/create/a%01b');
  assert.equal(r.status, 400);
});

test('K1 nodes lists the node as NodeEntities', async () => {
  const r = await call('GET', 'bob', '/pubsub/nodes');
  assert.equal(r.status, 200, r.text);
  assert.ok(Array.isArray(r.json.nodes));
  const n = r.json.nodes.find((x) => x.id === 'news');
  assert.ok(n, r.text);
  for (const k of Object.keys(n)) assert.ok(['id', 'name', 'description', 'owners'].includes(k), k);
  assert.ok(Array.isArray(n.owners));
});

test('K3 subscribe, K4 publish: bob\'s stream gets pubsub.item with the exact JSON', async () => {
  let r = await call('POST', 'bob', '/pubsub/subscribe/news');
  assert.equal(r.status, 200, r.text);
  r = await call('POST', 'bob', '/pubsub/subscribe/no-such-node');
  assert.equal(r.status, 404, r.text);

  const obj = { score: 3, text: 'He said "hi" <b>&amp; </b>\n😀', nested: { a: [1, 2, null, true] } };
  r = await call('POST', 'alice', '/pubsub/publish/news', JSON.stringify(obj));
  assert.equal(r.status, 200, r.text);
  const ev = await bobSSE.waitFor((e) => e.event === 'pubsub.item' && JSON.parse(e.data).score === 3, 10000);
  assert.deepEqual(JSON.parse(ev.data), obj);

  for (const bad of ['', 'not json', '[1,2]', '"text"', '42', '{"a":1', 'null']) {
    r = await call('POST', 'alice', '/pubsub/publish/news', bad);
    assert.equal(r.status, 400, `${bad}: ${r.text}`);
    assert.equal(r.json.exception, 'IllegalArgumentException');
  }
  r = await call('POST', 'alice', '/pubsub/publish/no-such-node', '{"x":1}');
  assert.equal(r.status, 404, r.text);
});

test('K5 subscribers: the owner gets {"users":[{"username"}]}, others 403, unknown node empty', async () => {
  let r = await call('GET', 'alice', '/pubsub/subscribers/news');
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.json, { users: [{ username: 'bob' }] });
  r = await call('GET', 'bob', '/pubsub/subscribers/news');
  assert.equal(r.status, 403, r.text);
  assert.equal(r.json.message, 'Exception');
  r = await call('GET', 'alice', '/pubsub/subscribers/no-such-node');
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.json, { users: [] });
});

test('K6/K7 PEP: publish to own PEP, node listed, item retrievable and delivered to a subscribed contact', async () => {
  const node = 'urn:x-sparkgate:test:pep';
  let r = await call('POST', 'alice', `/pep/publish/${encodeURIComponent(node)}`, '{"mood":"fine","n":1}');
  assert.equal(r.status, 200, r.text);
  r = await call('POST', 'alice', `/pep/publish/${encodeURIComponent(node)}`, 'nope');
  assert.equal(r.status, 400);

  r = await call('GET', 'alice', '/pep/nodes');
  assert.equal(r.status, 200, r.text);
  const n = r.json.nodes.find((x) => x.id === node);
  assert.ok(n, r.text);
  assert.deepEqual(n.owners, [`alice@${prosody.domain}`]);
  r = await call('GET', 'bob', '/pep/nodes');
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.nodes.find((x) => x.id === node), undefined, 'bob\'s PEP is his own');

  // alice opens the node, bob subscribes to it (raw clients), then alice publishes again
  const ra = await raw('alice');
  const rb = await raw('bob');
  try {
    let reply = await ra.iq((id) => `<iq type='set' id='${id}'><pubsub xmlns='http://jabber.org/protocol/pubsub#owner'>` +
      `<configure node='${node}'><x xmlns='jabber:x:data' type='submit'>` +
      `<field var='FORM_TYPE' type='hidden'><value>http://jabber.org/protocol/pubsub#node_config</value></field>` +
      `<field var='pubsub#access_model'><value>open</value></field></x></configure></pubsub></iq>`);
    assert.match(reply, /type=["']result/, reply);
    reply = await rb.iq((id) => `<iq type='get' id='${id}' to='alice@${prosody.domain}'>` +
      `<pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='${node}'/></pubsub></iq>`);
    const m = /<json xmlns=["']urn:xmpp:json:0["']>([^<]*)<\/json>/.exec(reply);
    assert.ok(m, reply);
    assert.deepEqual(JSON.parse(m[1].replace(/&quot;/g, '"').replace(/&apos;/g, "'").replace(/&amp;/g, '&')), { mood: 'fine', n: 1 });
    reply = await rb.iq((id) => `<iq type='set' id='${id}' to='alice@${prosody.domain}'>` +
      `<pubsub xmlns='http://jabber.org/protocol/pubsub'><subscribe node='${node}' jid='bob@${prosody.domain}'/></pubsub></iq>`);
    assert.match(reply, /type=["']result/, reply);
  } finally {
    ra.close();
    rb.close();
  }
  r = await call('POST', 'alice', `/pep/publish/${encodeURIComponent(node)}`, '{"mood":"great","n":2}');
  assert.equal(r.status, 200, r.text);
  const ev = await bobSSE.waitFor((e) => e.event === 'pubsub.item' && JSON.parse(e.data).n === 2, 10000);
  assert.deepEqual(JSON.parse(ev.data), { mood: 'great', n: 2 });
});

test('huge and hostile payloads neither break the session nor the event JSON', async () => {
  // 100 KB JSON object goes through and arrives whole
  const big = { blob: 'x'.repeat(100 * 1024 - 20), tag: 'big' };
  let r = await call('POST', 'alice', '/pubsub/publish/news', JSON.stringify(big));
  assert.equal(r.status, 200, r.text);
  const ev = await bobSSE.waitFor((e) => e.event === 'pubsub.item' && JSON.parse(e.data).tag === 'big', 15000);
  assert.deepEqual(JSON.parse(ev.data), big);
  // larger than the payload limit: 413
  r = await call('POST', 'alice', '/pubsub/publish/news', JSON.stringify({ blob: 'y'.repeat(200 * 1024) }));
  assert.equal(r.status, 413, r.text);
  // deep nesting: jansson's depth limit refuses 5000 levels; 500 levels travel
  r = await call('POST', 'alice', '/pubsub/publish/news', `{"a":${'['.repeat(5000)}${']'.repeat(5000)}}`);
  assert.equal(r.status, 400, r.text);
  const deep = `{"deep":${'['.repeat(500)}1${']'.repeat(500)}}`;
  r = await call('POST', 'alice', '/pubsub/publish/news', deep);
  assert.equal(r.status, 200, r.text);
  await bobSSE.waitFor((e) => e.event === 'pubsub.item' && e.data.startsWith('{"deep"'), 10000);

  // hostile items published by a raw client: not JSON, JSON array, foreign payload, markup
  const before = pubsubItems(bobSSE).length;
  const ra = await raw('alice');
  try {
    const bodies = ['not json {', '[1,2,3]', '{"a":"\\u0000"}', '{"a":1}{"b":2}'];
    for (const [i, b] of bodies.entries()) {
      const reply = await ra.iq((id) => `<iq type='set' id='${id}' to='pubsub.${prosody.domain}'>` +
        `<pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='news'><item id='h${i}'>` +
        `<json xmlns='urn:xmpp:json:0'>${xmlEscape(b)}</json></item></publish></pubsub></iq>`);
      assert.match(reply, /type=["']result/, reply);
    }
    const reply = await ra.iq((id) => `<iq type='set' id='${id}' to='pubsub.${prosody.domain}'>` +
      `<pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='news'><item id='foreign'>` +
      `<entry xmlns='http://www.w3.org/2005/Atom'><title>&lt;script&gt;"</title></entry></item></publish></pubsub></iq>`);
    assert.match(reply, /type=["']result/, reply);
  } finally {
    ra.close();
  }
  // the session still works: the next good item arrives; only valid JSON made an event (a JSON
  // array is JSON: contract §3.5.10 passes the parsed value through)
  r = await call('POST', 'alice', '/pubsub/publish/news', '{"after":"hostile"}');
  assert.equal(r.status, 200, r.text);
  await bobSSE.waitFor((e) => e.event === 'pubsub.item' && JSON.parse(e.data).after === 'hostile', 10000);
  const got = pubsubItems(bobSSE).slice(before).map((e) => JSON.parse(e.data));
  assert.deepEqual(got, [[1, 2, 3], { after: 'hostile' }]);
  for (const e of bobSSE.events) if (e.data) JSON.parse(e.data); // every event is valid JSON
});
