// bookmarks.test.mjs: contract §1.2 B1-B7 as per-user bookmarks kept on Prosody (a private PEP
// node, group_chat ones mirrored to XEP-0402), with two real users: the CRUD and property round
// trip with the exact Bookmark JSON, the XEP-0402 item other clients see, survival of a gateway
// restart, concurrent property updates, and the 400/404 answers.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startProsody } from '../harness/prosody.mjs';
import { startGateway } from '../harness/gateway.mjs';
import { request } from '../harness/http.mjs';
import { openClient } from '../harness/xmpp-raw.mjs';

const PASS = { alice: 'alice-bm-pw-1', bob: 'bob-bm-pw-2' };
const KEYS = ['bookmarkID', 'type', 'name', 'value', 'globalBookmark', 'users', 'groups', 'property', 'propertyNames'];
let prosody, gw;
const tok = {};
const rest = (path) => `${gw.url}/sparkweb/api/rest${path}`;
const call = (method, user, path, body) => request(method, rest(path), {
  body: body === undefined || typeof body === 'string' ? body : JSON.stringify(body),
  headers: { authorization: `Bearer ${tok[user]}`, 'content-type': typeof body === 'string' ? 'text/plain' : 'application/json' },
});

async function loginAll() {
  for (const u of ['alice', 'bob']) {
    const r = await request('POST', rest(`/login/${u}`), { body: PASS[u] });
    assert.equal(r.status, 200, r.text);
    tok[u] = r.json.token;
  }
}

/** The XEP-0402 items of alice's account, as seen by another client of hers. */
async function nativeBookmarks() {
  const { conn } = await openClient({ port: prosody.c2sPort, domain: prosody.domain });
  try {
    assert.ok((await conn.authPlain('alice', PASS.alice)).ok);
    await conn.bind(`other-${Date.now()}`);
    const reply = await conn.iq((id) => `<iq type='get' id='${id}'><pubsub xmlns='http://jabber.org/protocol/pubsub'>` +
      `<items node='urn:xmpp:bookmarks:1'/></pubsub></iq>`);
    const out = {};
    for (const m of reply.matchAll(/<item\b[^>]*\bid='([^']+)'[^>]*>([\s\S]*?)<\/item>/g)) out[m[1]] = m[2];
    return { reply, items: out };
  } finally {
    conn.close();
  }
}

before(async () => {
  prosody = await startProsody();
  await prosody.register('alice', PASS.alice);
  await prosody.register('bob', PASS.bob);
  gw = await startGateway({ prosody });
  await loginAll();
});

after(async () => {
  const res = gw ? await gw.stop() : null;
  if (prosody) await prosody.stop();
  if (res) assert.equal(res.code, 0, `gateway exit ${JSON.stringify(res)}\n${gw.log().slice(-3000)}`);
});

let urlBm, roomBm;

test('B2 empty list, B1 create url and group_chat bookmarks with the exact Bookmark JSON', async () => {
  let r = await call('GET', 'alice', '/bookmarks');
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.json, { bookmark: [] });

  r = await call('POST', 'alice', '/bookmark', { type: 'url', name: 'Docs "&" <x>', value: 'https://example.org/a?b=1&c=<x>', globalBookmark: true, properties: [{ key: 'ignored', value: '1' }] });
  assert.equal(r.status, 200, r.text);
  urlBm = r.json;
  assert.deepEqual(Object.keys(urlBm).sort(), [...KEYS].sort());
  assert.equal(typeof urlBm.bookmarkID, 'number');
  assert.ok(Number.isSafeInteger(urlBm.bookmarkID) && urlBm.bookmarkID > 0);
  assert.deepEqual({ ...urlBm, bookmarkID: 0 }, {
    bookmarkID: 0, type: 'url', name: 'Docs "&" <x>', value: 'https://example.org/a?b=1&c=<x>', globalBookmark: false,
    users: ['alice'], groups: [], property: [], propertyNames: [],
  });

  r = await call('POST', 'alice', '/bookmark', { type: 'group_chat', name: 'Lobby', value: `lobby@conference.${prosody.domain}`, users: ['alice', 'carol'], groups: ['staff'] });
  assert.equal(r.status, 200, r.text);
  roomBm = r.json;
  assert.notEqual(roomBm.bookmarkID, urlBm.bookmarkID);
  assert.deepEqual(roomBm.users, ['alice', 'carol']);
  assert.deepEqual(roomBm.groups, ['staff']);

  r = await call('GET', 'alice', '/bookmarks');
  assert.equal(r.status, 200, r.text);
  const byId = Object.fromEntries(r.json.bookmark.map((b) => [b.bookmarkID, b]));
  assert.equal(r.json.bookmark.length, 2);
  assert.deepEqual(byId[urlBm.bookmarkID], urlBm);
  assert.deepEqual(byId[roomBm.bookmarkID], roomBm);

  r = await call('GET', 'alice', `/bookmark/${roomBm.bookmarkID}`);
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.json, roomBm);

  // per user: bob sees none of alice's
  r = await call('GET', 'bob', '/bookmarks');
  assert.deepEqual(r.json, { bookmark: [] });
  r = await call('GET', 'bob', `/bookmark/${roomBm.bookmarkID}`);
  assert.equal(r.status, 404, r.text);
});

test('group_chat bookmark is an XEP-0402 item; autojoin property <-> autojoin attribute', async () => {
  let n = await nativeBookmarks();
  const lobby = `lobby@conference.${prosody.domain}`;
  assert.ok(n.items[lobby], n.reply);
  assert.match(n.items[lobby], /<conference[^>]*xmlns='urn:xmpp:bookmarks:1'/);
  assert.match(n.items[lobby], /name='Lobby'/);
  assert.match(n.items[lobby], /autojoin='false'/);
  assert.equal(Object.keys(n.items).length, 1, 'url bookmarks are not XEP-0402 items');

  let r = await call('POST', 'alice', `/bookmark/${roomBm.bookmarkID}/autojoin`, 'true');
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.json.property, [{ key: 'autojoin', value: 'true' }]);
  assert.deepEqual(r.json.propertyNames, ['autojoin']);
  n = await nativeBookmarks();
  assert.match(n.items[lobby], /autojoin='true'/);

  // PUT changes the room: the old item goes, the new one comes, properties stay
  const hall = `hall@conference.${prosody.domain}`;
  r = await call('PUT', 'alice', `/bookmark/${roomBm.bookmarkID}`, { type: 'group_chat', name: 'Hall', value: hall });
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.json, { ...roomBm, name: 'Hall', value: hall, users: ['alice'], groups: [], property: [{ key: 'autojoin', value: 'true' }], propertyNames: ['autojoin'] });
  n = await nativeBookmarks();
  assert.equal(n.items[lobby], undefined, n.reply);
  assert.match(n.items[hall], /name='Hall'/);
  assert.match(n.items[hall], /autojoin='true'/);

  r = await call('POST', 'alice', `/bookmark/${roomBm.bookmarkID}/nameasnick`, 'true');
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.json.propertyNames, ['autojoin', 'nameasnick']);
  n = await nativeBookmarks();
  assert.match(n.items[hall], /<nick>alice<\/nick>/);

  r = await call('DELETE', 'alice', `/bookmark/${roomBm.bookmarkID}/autojoin`);
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.json.property, [{ key: 'nameasnick', value: 'true' }]);
  r = await call('DELETE', 'alice', `/bookmark/${roomBm.bookmarkID}/autojoin`); // absent: no-op
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.json.propertyNames, ['nameasnick']);
  n = await nativeBookmarks();
  assert.match(n.items[hall], /autojoin='false'/);
  roomBm = r.json;
});

test('concurrent property updates of one bookmark are all kept', async () => {
  const rs = await Promise.all(Array.from({ length: 8 }, (_, i) => call('POST', 'alice', `/bookmark/${urlBm.bookmarkID}/k${i}`, `v${i}`)));
  for (const r of rs) assert.equal(r.status, 200, r.text);
  const r = await call('GET', 'alice', `/bookmark/${urlBm.bookmarkID}`);
  assert.deepEqual(r.json.propertyNames.sort(), Array.from({ length: 8 }, (_, i) => `k${i}`));
  for (const p of r.json.property) assert.equal(p.value, `v${p.key.slice(1)}`);
  urlBm = r.json;
});

test('clients that leave while their call waits in the queue do not stall the others', async () => {
  const id = urlBm.bookmarkID;
  const calls = Array.from({ length: 8 }, (_, i) => request('POST', rest(`/bookmark/${id}/q${i}`), {
    body: `w${i}`, headers: { authorization: `Bearer ${tok.alice}` }, timeoutMs: i % 2 ? 3 : 10000,
  }));
  const settled = await Promise.allSettled(calls);
  for (const [i, r] of settled.entries()) if (i % 2 === 0) assert.equal(r.value.status, 200, r.value.text);
  assert.ok(settled.some((r) => r.status === 'rejected'), 'some clients left');
  const r = await call('GET', 'alice', `/bookmark/${id}`);
  assert.equal(r.status, 200, r.text);
  for (let i = 0; i < 8; i += 2) assert.equal(r.json.property.find((p) => p.key === `q${i}`)?.value, `w${i}`);
  // a removed property stays removed; leave the bookmark without the q* keys
  for (const k of r.json.propertyNames.filter((n) => n.startsWith('q'))) {
    assert.equal((await call('DELETE', 'alice', `/bookmark/${id}/${k}`)).status, 200);
  }
  const after = await call('GET', 'alice', `/bookmark/${id}`);
  assert.deepEqual(after.json, urlBm);
});

test('items in the node that are not bookmarks are skipped', async () => {
  const { conn } = await openClient({ port: prosody.c2sPort, domain: prosody.domain });
  try {
    assert.ok((await conn.authPlain('alice', PASS.alice)).ok);
    await conn.bind('junk');
    for (const [id, payload] of [['abc', "<bookmark xmlns='urn:x-sparkgate:bookmarks:0' type='url' name='n' value='v'/>"],
      ['77', "<bookmark xmlns='urn:x-sparkgate:bookmarks:0' type='ftp' name='n' value='v'/>"],
      ['78', "<other xmlns='urn:x'/>"], ['079', "<bookmark xmlns='urn:x-sparkgate:bookmarks:0' type='url' name='n' value='v'/>"]]) {
      const reply = await conn.iq((i) => `<iq type='set' id='${i}'><pubsub xmlns='http://jabber.org/protocol/pubsub'>` +
        `<publish node='urn:x-sparkgate:bookmarks:0'><item id='${id}'>${payload}</item></publish></pubsub></iq>`);
      assert.match(reply, /type=["']result/, reply);
    }
  } finally {
    conn.close();
  }
  const r = await call('GET', 'alice', '/bookmarks');
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.json.bookmark.map((b) => b.bookmarkID).sort(), [urlBm.bookmarkID, roomBm.bookmarkID].sort());
  assert.equal((await call('GET', 'alice', '/bookmark/77')).status, 404);
});

test('bookmarks live on the server: they survive a gateway restart', async () => {
  const res = await gw.stop();
  assert.equal(res.code, 0);
  gw = await startGateway({ prosody });
  await loginAll();
  const r = await call('GET', 'alice', '/bookmarks');
  assert.equal(r.status, 200, r.text);
  const byId = Object.fromEntries(r.json.bookmark.map((b) => [b.bookmarkID, b]));
  assert.deepEqual(byId[urlBm.bookmarkID], urlBm);
  assert.deepEqual(byId[roomBm.bookmarkID], roomBm);
});

test('bad ids and bodies are 400, unknown ids 404', async () => {
  for (const id of ['abc', '0', '-1', '1.5', '99999999999', '0x10', '%20']) {
    for (const [m, p] of [['GET', ''], ['DELETE', ''], ['POST', '/k'], ['DELETE', '/k']]) {
      const r = await call(m, 'alice', `/bookmark/${id}${p}`, m === 'POST' ? 'v' : undefined);
      assert.equal(r.status, 400, `${m} ${id}${p}: ${r.text}`);
    }
  }
  const unknown = urlBm.bookmarkID === 12345 ? 12346 : 12345;
  for (const [m, p, b] of [['GET', ''], ['PUT', '', { type: 'url', name: 'x', value: 'y' }], ['DELETE', ''], ['POST', '/k', 'v'], ['DELETE', '/k']]) {
    const r = await call(m, 'alice', `/bookmark/${unknown}${p}`, b);
    assert.equal(r.status, 404, `${m} ${p}: ${r.text}`);
    assert.equal(r.json.message, 'Exception');
  }
  const bad = [
    'not json', '[]', '{}', { type: 'ftp', name: 'x', value: 'y' }, { type: 'url', value: 'y' },
    { type: 'url', name: 'x' }, { type: 'url', name: '', value: 'y' }, { type: 'url', name: 'x'.repeat(2000), value: 'y' },
    { type: 'url', name: 'x', value: 'y'.repeat(5000) }, { type: 'group_chat', name: 'x', value: 'not a jid@@' },
    { type: 'group_chat', name: 'x', value: 'room@conference.localhost/nick' }, { type: 'group_chat', name: 'x', value: 'conference.localhost' },
    { type: 'url', name: 'x', value: 'y', users: 'alice' }, { type: 'url', name: 'x', value: 'y', groups: [1] },
    { type: 'url', name: 'a\u0001b', value: 'y' },
  ];
  for (const b of bad) {
    let r = await call('POST', 'alice', '/bookmark', b);
    assert.equal(r.status, 400, `${JSON.stringify(b)}: ${r.text}`);
    r = await call('PUT', 'alice', `/bookmark/${urlBm.bookmarkID}`, b);
    assert.equal(r.status, 400, `PUT ${JSON.stringify(b)}: ${r.text}`);
  }
  let r = await call('POST', 'alice', `/bookmark/${urlBm.bookmarkID}/${'k'.repeat(300)}`, 'v');
  assert.equal(r.status, 400);
  r = await call('POST', 'alice', `/bookmark/${urlBm.bookmarkID}/k`, 'v'.repeat(5000));
  assert.equal(r.status, 400);
  // nothing above changed the stored bookmark
  r = await call('GET', 'alice', `/bookmark/${urlBm.bookmarkID}`);
  assert.deepEqual(r.json, urlBm);
});

test('B5 delete: gone from the list and from XEP-0402; a second delete is 404', async () => {
  let r = await call('DELETE', 'alice', `/bookmark/${roomBm.bookmarkID}`);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.text, '');
  r = await call('GET', 'alice', `/bookmark/${roomBm.bookmarkID}`);
  assert.equal(r.status, 404);
  r = await call('DELETE', 'alice', `/bookmark/${roomBm.bookmarkID}`);
  assert.equal(r.status, 404);
  const n = await nativeBookmarks();
  assert.deepEqual(Object.keys(n.items), [], n.reply);
  r = await call('GET', 'alice', '/bookmarks');
  assert.deepEqual(r.json.bookmark.map((b) => b.bookmarkID), [urlBm.bookmarkID]);
});

test('a logout while calls wait in the queue answers them and leaves the gateway sound', async () => {
  const calls = Array.from({ length: 12 }, (_, i) => call('POST', 'alice', `/bookmark/${urlBm.bookmarkID}/z${i}`, 'v'));
  await new Promise((resolve) => setTimeout(resolve, 15)); // the calls are queued, the first runs
  const out = call('POST', 'alice', '/logout');
  const rs = await Promise.all(calls);
  for (const r of rs) assert.ok([200, 401, 503].includes(r.status), `${r.status} ${r.text}`);
  assert.equal((await out).status, 200);
  await loginAll(); // a new session serves the user again
  const r = await call('GET', 'alice', `/bookmark/${urlBm.bookmarkID}`);
  assert.equal(r.status, 200, r.text);
});

test('without PEP the list lives in XEP-0049 private storage and rooms in XEP-0048', async () => {
  const p2 = await startProsody({ extraConfig: 'modules_disabled = { "s2s", "pep", "bookmarks" }\n' });
  let g2;
  try {
    await p2.register('alice', PASS.alice);
    g2 = await startGateway({ prosody: p2 });
    const t = (await request('POST', `${g2.url}/sparkweb/api/rest/login/alice`, { body: PASS.alice })).json.token;
    const c2 = (method, path, body) => request(method, `${g2.url}/sparkweb/api/rest${path}`, {
      body: body === undefined || typeof body === 'string' ? body : JSON.stringify(body),
      headers: { authorization: `Bearer ${t}` },
    });
    let r = await c2('GET', '/bookmarks');
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json, { bookmark: [] });
    r = await c2('POST', '/bookmark', { type: 'url', name: 'U', value: 'https://u.example/' });
    assert.equal(r.status, 200, r.text);
    const u = r.json;
    r = await c2('POST', '/bookmark', { type: 'group_chat', name: 'Room', value: `room@conference.${p2.domain}` });
    assert.equal(r.status, 200, r.text);
    const room = r.json;
    r = await c2('POST', `/bookmark/${room.bookmarkID}/autojoin`, 'true');
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json.propertyNames, ['autojoin']);
    r = await c2('GET', '/bookmarks');
    assert.deepEqual(r.json.bookmark.map((b) => b.bookmarkID).sort(), [u.bookmarkID, room.bookmarkID].sort());
    assert.deepEqual(r.json.bookmark.find((b) => b.bookmarkID === u.bookmarkID), u);

    // another client of alice finds the room in XEP-0048 storage, the list in our element
    const { conn } = await openClient({ port: p2.c2sPort, domain: p2.domain });
    try {
      assert.ok((await conn.authPlain('alice', PASS.alice)).ok);
      await conn.bind('other');
      let reply = await conn.iq((id) => `<iq type='get' id='${id}'><query xmlns='jabber:iq:private'><storage xmlns='storage:bookmarks'/></query></iq>`);
      assert.match(reply, /<conference[^>]*jid=["']room@conference\.localhost["']/, reply);
      assert.match(reply, /autojoin=["']true["']/, reply);
      reply = await conn.iq((id) => `<iq type='get' id='${id}'><query xmlns='jabber:iq:private'><bookmarks xmlns='urn:x-sparkgate:bookmarks:0'/></query></iq>`);
      assert.equal((reply.match(/<bookmark\b/g) || []).length, 2, reply);
    } finally {
      conn.close();
    }
    r = await c2('DELETE', `/bookmark/${room.bookmarkID}`);
    assert.equal(r.status, 200, r.text);
    r = await c2('GET', `/bookmark/${room.bookmarkID}`);
    assert.equal(r.status, 404, r.text);
    r = await c2('GET', '/bookmarks');
    assert.deepEqual(r.json.bookmark, [u]);
    const { conn: c3 } = await openClient({ port: p2.c2sPort, domain: p2.domain });
    try {
      assert.ok((await c3.authPlain('alice', PASS.alice)).ok);
      await c3.bind('third');
      const reply = await c3.iq((id) => `<iq type='get' id='${id}'><query xmlns='jabber:iq:private'><storage xmlns='storage:bookmarks'/></query></iq>`);
      assert.match(reply, /type=["']result/, reply);
      assert.doesNotMatch(reply, /room@conference/, reply);
    } finally {
      c3.close();
    }
  } finally {
    const res = g2 ? await g2.stop() : null;
    await p2.stop();
    if (res) assert.equal(res.code, 0, g2.log().slice(-3000));
  }
});
