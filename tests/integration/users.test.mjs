// users.test.mjs: user management and configuration (contract §1.8 U1-U12) against a real
// Prosody: vCard (XEP-0054) round trip, properties in the private PEP node (kept across a gateway
// restart, invisible to other users, gateway secrets refused), roster groups, XEP-0077 password
// change and account removal, the public global config, and the bad-input answers.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startProsody } from '../harness/prosody.mjs';
import { startGateway } from '../harness/gateway.mjs';
import { request } from '../harness/http.mjs';
import { openClient } from '../harness/xmpp-raw.mjs';

const PASS = { alice: 'alice-pw-users-1', bob: 'bob-pw-users-2', carol: 'carol-pw-users-3', dave: 'dave-pw-users-4', erin: 'erin-pw-users-5', frank: 'frank-pw-users-6' };
let prosody, gw;
const rest = (path) => `${gw.url}/sparkweb/api/rest${path}`;

async function login(user, password = PASS[user]) {
  return request('POST', rest(`/login/${user}`), { body: password, headers: { 'content-type': 'text/plain' } });
}
async function token(user, password) {
  const r = await login(user, password);
  assert.equal(r.status, 200, `login ${user}: ${r.text}`);
  return r.json.token;
}
const call = (method, path, tok, body) => request(method, rest(path), { body, headers: { authorization: tok } });

/** A raw XMPP client logged in as user (bound), for setting up rosters and probing PEP. */
async function rawClient(user) {
  const { conn } = await openClient({ port: prosody.c2sPort, domain: prosody.domain });
  const auth = await conn.authPlain(user, PASS[user]);
  assert.ok(auth.ok, auth.reply);
  await conn.bind('raw');
  return conn;
}

before(async () => {
  prosody = await startProsody();
  for (const [u, p] of Object.entries(PASS)) await prosody.register(u, p);
  // alice's roster: bob in Friends and Work, carol in Work (RFC 6121 groups)
  const c = await rawClient('alice');
  const d = prosody.domain;
  for (const item of [`<item jid='bob@${d}' name='Bobby'><group>Friends</group><group>Work</group></item>`,
    `<item jid='carol@${d}'><group>Work</group></item>`]) { // one item per set (RFC 6121 §2.1.5)
    const r = await c.iq((id) => `<iq type='set' id='${id}'><query xmlns='jabber:iq:roster'>${item}</query></iq>`);
    assert.match(r, /type=(["'])result\1/);
  }
  c.close();
  gw = await startGateway({ prosody });
});

after(async () => {
  const res = gw ? await gw.stop() : null;
  if (prosody) await prosody.stop();
  if (res) assert.equal(res.code, 0, `gateway exit ${JSON.stringify(res)}\n${gw.log().slice(-3000)}`);
});

test('U10 GET /config/global is public: version, about, domain', async () => {
  const r = await request('GET', rest('/config/global'));
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.about, 'SparkWeb');
  assert.match(r.json.version, /^\d+\.\d+\.\d+/);
  assert.equal(r.json.domain, prosody.domain);
});

test('U2/U3 vCard: name and email set, other vCard fields kept, base64 vcard round trip', async () => {
  const t = await token('alice');
  const first = await call('GET', '/user', t);
  assert.equal(first.status, 200, first.text);
  assert.equal(first.json.username, 'alice');
  assert.deepEqual(first.json.properties, []);
  assert.equal(first.json.password, undefined);

  const vc = `<vCard xmlns="vcard-temp"><FN>Alice Original</FN><NICKNAME>ally</NICKNAME>` +
    `<URL>https://alice.example</URL><EMAIL><INTERNET/><USERID>old@example.org</USERID></EMAIL></vCard>`;
  const put1 = await call('PUT', '/user', t, { vcard: Buffer.from(vc).toString('base64') });
  assert.equal(put1.status, 200, put1.text);
  const put2 = await call('PUT', '/user', t, { name: 'Alice Liddell', email: 'alice@wonder.land' });
  assert.equal(put2.status, 200, put2.text);

  const g = await call('GET', '/user', t);
  assert.equal(g.status, 200, g.text);
  assert.equal(g.json.name, 'Alice Liddell');
  assert.equal(g.json.email, 'alice@wonder.land');
  const xml = Buffer.from(g.json.vcard, 'base64').toString('utf8');
  assert.match(xml, /^<vCard[^>]*xmlns=(["'])vcard-temp\1/);
  assert.match(xml, /<FN>Alice Liddell<\/FN>/);
  assert.match(xml, /<NICKNAME>ally<\/NICKNAME>/, 'other vCard fields are kept');
  assert.match(xml, /alice\.example/);
  assert.ok(!xml.includes('Alice Original'));
  assert.ok(!xml.includes('old@example.org'));
  assert.deepEqual(Object.keys(g.json).sort(), ['email', 'name', 'properties', 'username', 'vcard']);
});

test('U3/U12 properties: replaced by PUT only when present, merged by POST, secrets refused', async () => {
  const t = await token('alice');
  const p = await call('PUT', '/user', t, {
    properties: [{ key: 'color', value: 'blue' }, { key: 'totp.secret', value: 'JBSWY3DP' }, { key: 'webpush.subscribe.x', value: 'y' }],
  });
  assert.equal(p.status, 200, p.text);
  let g = await call('GET', '/user', t);
  assert.deepEqual(g.json.properties, [{ key: 'color', value: 'blue' }]);

  // PUT without properties keeps them (contract §7)
  assert.equal((await call('PUT', '/user', t, { name: 'Alice Liddell' })).status, 200);
  g = await call('GET', '/user', t);
  assert.deepEqual(g.json.properties, [{ key: 'color', value: 'blue' }]);

  // POST /config/properties merges; name goes to the vCard; reserved keys are ignored
  const s = await call('POST', '/config/properties', t,
    JSON.stringify([{ name: 'size', value: 'L' }, { name: 'name', value: 'Alice L.' }, { name: 'vapid.private.key', value: 'k' }, { name: '', value: 'skip' }]));
  assert.equal(s.status, 200, s.text);
  g = await call('GET', '/user', t);
  const props = Object.fromEntries(g.json.properties.map((x) => [x.key, x.value]));
  assert.deepEqual(props, { color: 'blue', size: 'L' });
  assert.equal(g.json.name, 'Alice L.');
  assert.equal(g.json.email, 'alice@wonder.land');

  // U11: flattened object with the caller's properties and roster groups
  const c = await call('GET', '/config/properties', t);
  assert.equal(c.status, 200, c.text);
  assert.equal(c.json.domain, prosody.domain);
  assert.equal(c.json.username, 'alice');
  assert.equal(c.json.name, 'Alice L.');
  assert.equal(c.json.email, 'alice@wonder.land');
  assert.equal(c.json.color, 'blue');
  assert.equal(c.json.size, 'L');
  assert.equal(c.json['vapid.private.key'], undefined);
  assert.match(Buffer.from(c.json.vcard, 'base64').toString(), /<FN>Alice L\.<\/FN>/);
  const groups = Object.fromEntries(c.json.groups.map((x) => [x.group, x.members]));
  assert.deepEqual(Object.keys(groups).sort(), ['Friends', 'Work']);
  assert.deepEqual(groups.Friends, [{ username: 'bob', name: 'Bobby' }]);
  assert.deepEqual(groups.Work.map((m) => m.username).sort(), ['bob', 'carol']);

  // the public config now carries the server's XEP-0092 answer
  const glob = await request('GET', rest('/config/global'));
  assert.equal(glob.json.server.name, 'Prosody');
});

test('U1 GET /users: caller and roster contacts, properties of the caller only', async () => {
  const t = await token('alice');
  const r = await call('GET', '/users', t);
  assert.equal(r.status, 200, r.text);
  const byName = Object.fromEntries(r.json.users.map((u) => [u.username, u]));
  assert.deepEqual(Object.keys(byName).sort(), ['alice', 'bob', 'carol']);
  assert.equal(byName.bob.name, 'Bobby');
  assert.equal(byName.bob.properties, undefined);
  assert.ok(byName.alice.properties.some((p) => p.key === 'color'));
  const s = await call('GET', '/users?search=ar', t);
  assert.deepEqual(s.json.users.map((u) => u.username), ['carol']);
  const pk = await call('GET', '/users?propertyKey=co%25&propertyValue=blue', t);
  assert.deepEqual(pk.json.users.map((u) => u.username), ['alice']);
  const none = await call('GET', '/users?propertyKey=color&propertyValue=red', t);
  assert.deepEqual(none.json.users, []);
});

test('another user never sees alice\'s properties (REST or PEP)', async () => {
  const t = await token('bob');
  for (const path of ['/users', '/user', '/config/properties', '/users?propertyKey=color']) {
    const r = await call('GET', path, t);
    assert.equal(r.status, 200, `${path}: ${r.text}`);
    assert.ok(!r.text.includes('blue'), `${path} leaks alice's property`);
  }
  const c = await rawClient('bob');
  const reply = await c.iq((id) => `<iq type='get' id='${id}' to='alice@${prosody.domain}'>` +
    `<pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='urn:x-sparkweb:properties:0'/></pubsub></iq>`);
  c.close();
  assert.match(reply, /type=(["'])error\1/, reply);
  assert.ok(!reply.includes('blue'));
  // where they live: alice's own PEP node (XEP-0223), whitelist access
  const a = await rawClient('alice');
  const own = await a.iq((id) => `<iq type='get' id='${id}'>` +
    `<pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='urn:x-sparkweb:properties:0'/></pubsub></iq>`);
  const conf = await a.iq((id) => `<iq type='get' id='${id}'>` +
    `<pubsub xmlns='http://jabber.org/protocol/pubsub#owner'><configure node='urn:x-sparkweb:properties:0'/></pubsub></iq>`);
  a.close();
  assert.match(own, /<properties xmlns=(["'])urn:x-sparkweb:properties:0\1>/, own);
  assert.match(own, /<property name=(["'])color\1>blue<\/property>/, own);
  assert.ok(!own.includes('totp'), 'gateway secrets are never stored on the server');
  const access = /<field[^>]*var=(["'])pubsub#access_model\1[^>]*>[\s\S]*?<\/field>/.exec(conf);
  assert.ok(access, conf);
  assert.match(access[0], /<\/option><value>whitelist<\/value><\/field>$/, 'the node\'s access model is whitelist');
});

test('U5 groups from the roster; U6-U9 writes are 501', async () => {
  const t = await token('alice');
  const r = await call('GET', '/user/groups', t);
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.json.groupnames.sort(), ['Friends', 'Work']);
  const b = await call('GET', '/user/groups', await token('bob'));
  assert.deepEqual(b.json, { groupnames: [] });
  for (const [m, p, body] of [['POST', '/user/groups', { groupnames: ['x'] }], ['DELETE', '/user/groups', { groupnames: ['x'] }],
    ['POST', '/user/groups/x'], ['DELETE', '/user/groups/x']]) {
    const w = await call(m, p, t, body);
    assert.equal(w.status, 501, `${m} ${p}`);
    assert.deepEqual(w.json, { message: 'Exception', resource: 'not supported', exception: 'NotAllowedException' });
  }
});

test('bad input: 400 / 409 and unauthenticated 401', async () => {
  const t = await token('alice');
  assert.equal((await call('PUT', '/user', t, 'not json')).status, 400);
  assert.equal((await call('PUT', '/user', t, '[1,2]')).status, 400);
  assert.equal((await call('PUT', '/user', t, { name: 42 })).status, 400);
  assert.equal((await call('PUT', '/user', t, { properties: [{ key: 'a', value: 3 }] })).status, 400);
  assert.equal((await call('PUT', '/user', t, { properties: 'x' })).status, 400);
  assert.equal((await call('PUT', '/user', t, { password: '' })).status, 400);
  const v = await call('PUT', '/user', t, { vcard: 'bm90IHhtbA==' });
  assert.equal(v.status, 409);
  assert.equal(v.json.resource, 'Could not create vcard');
  assert.equal((await call('PUT', '/user', t, { vcard: Buffer.from('<foo xmlns="bar"/>').toString('base64') })).status, 409);
  const ren = await call('PUT', '/user', t, { username: 'zed' });
  assert.equal(ren.status, 400);
  assert.equal(ren.json.resource, 'renaming an account is not possible over XMPP');
  assert.equal((await call('PUT', '/user', t, { username: 'Alice', name: 'Alice L.' })).status, 200, 'same user, any case');
  for (const body of ['', 'nonsense', '{"name":"x"}', '[{"name":"k","value":1}]']) {
    const r = await call('POST', '/config/properties', t, body);
    assert.equal(r.status, 400, body);
    assert.equal(r.text, '', 'empty-body 400');
  }
  assert.equal((await call('GET', '/users?search=%FF', t)).status, 400);
  assert.equal((await request('GET', rest('/user'))).status, 401);
  assert.equal((await request('GET', rest('/config/properties'))).status, 401);
  // nothing was changed by the refused calls
  const g = await call('GET', '/user', t);
  assert.equal(g.json.name, 'Alice L.');
  assert.equal(g.json.properties.length, 2);
});

test('U12/U3 concurrent writes of one user are serialised: no update is lost', async () => {
  const t = await token('erin');
  // pairs of POST /config/properties with different keys, sent at once
  for (let round = 0; round < 4; round++) {
    const rs = await Promise.all([`a${round}`, `b${round}`].map((k) =>
      call('POST', '/config/properties', t, JSON.stringify([{ name: k, value: `v-${k}` }]))));
    for (const r of rs) assert.equal(r.status, 200, r.text);
  }
  let g = await call('GET', '/user', t);
  assert.equal(g.status, 200, g.text);
  const props = Object.fromEntries(g.json.properties.map((x) => [x.key, x.value]));
  assert.deepEqual(Object.keys(props).sort(), ['a0', 'a1', 'a2', 'a3', 'b0', 'b1', 'b2', 'b3']);
  assert.equal(props.b2, 'v-b2');
  // PUT /user name and email at once: both end up in the vCard
  for (let round = 0; round < 3; round++) {
    const rs = await Promise.all([
      call('PUT', '/user', t, { name: `Erin ${round}` }),
      call('PUT', '/user', t, { email: `erin${round}@example.org` }),
    ]);
    for (const r of rs) assert.equal(r.status, 200, r.text);
    g = await call('GET', '/user', t);
    assert.equal(g.json.name, `Erin ${round}`);
    assert.equal(g.json.email, `erin${round}@example.org`);
  }
});

test('U1 propertyKey LIKE: a pathological pattern answers at once; an over-long one is 400', async () => {
  const t = await token('erin');
  const key = 'a'.repeat(256);
  const s = await call('POST', '/config/properties', t, JSON.stringify([{ name: key, value: 'x' }]));
  assert.equal(s.status, 200, s.text);
  // %a%a...%a%b: exponential for a recursive backtracking matcher
  const pat = '%a'.repeat(127) + 'b';
  const started = Date.now();
  const r = await request('GET', rest(`/users?propertyKey=${encodeURIComponent(pat)}`),
    { headers: { authorization: t }, timeoutMs: 5000 });
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.json.users, []);
  assert.ok(Date.now() - started < 2000, `took ${Date.now() - started} ms`);
  const hit = await call('GET', `/users?propertyKey=${encodeURIComponent('%%%a%%a_%a')}`, t);
  assert.deepEqual(hit.json.users.map((u) => u.username), ['erin']);
  const long = await call('GET', `/users?propertyKey=${'%25'.repeat(257)}`, t);
  assert.equal(long.status, 400, long.text);
});

test('U12 a PEP refusal other than "no PEP" is answered, never written to private storage', async () => {
  // frank's properties node exists with another access model: the gateway's publish with
  // access_model=whitelist as a precondition is refused (not item-not-found / no PEP)
  const c = await rawClient('frank');
  const r = await c.iq((id) => `<iq type='set' id='${id}'><pubsub xmlns='http://jabber.org/protocol/pubsub'>` +
    `<publish node='urn:x-sparkweb:properties:0'><item id='current'><properties xmlns='urn:x-sparkweb:properties:0'>` +
    `<property name='kept'>yes</property></properties></item></publish></pubsub></iq>`);
  assert.match(r, /type=(["'])result\1/, r);
  const t = await token('frank');
  const s = await call('POST', '/config/properties', t, JSON.stringify([{ name: 'other', value: 'x' }]));
  assert.notEqual(s.status, 200, `answered 200 (written elsewhere?): ${s.text}`);
  assert.ok(s.status >= 400, s.text);
  // nothing went to XEP-0049 private storage
  const p = await c.iq((id) => `<iq type='get' id='${id}'><query xmlns='jabber:iq:private'>` +
    `<properties xmlns='urn:x-sparkweb:properties:0'/></query></iq>`);
  assert.ok(!p.includes('other'), p);
  c.close();
  const g = await call('GET', '/user', t);
  assert.deepEqual(g.json.properties, [{ key: 'kept', value: 'yes' }]);
});

test('properties survive a gateway restart (they live on the XMPP server)', async () => {
  const res = await gw.stop();
  assert.equal(res.code, 0, gw.log().slice(-2000));
  gw = await startGateway({ prosody });
  const t = await token('alice');
  const g = await call('GET', '/user', t);
  assert.equal(g.status, 200, g.text);
  const props = Object.fromEntries(g.json.properties.map((x) => [x.key, x.value]));
  assert.deepEqual(props, { color: 'blue', size: 'L' });
  assert.equal(g.json.name, 'Alice L.');
});

test('U3 password change (XEP-0077): the new password works, the old one fails', async () => {
  const t = await token('carol');
  const newPw = 'carol-new-pw-9';
  const r = await call('PUT', '/user', t, { password: newPw });
  assert.equal(r.status, 200, r.text);
  const old = await login('carol', PASS.carol);
  assert.equal(old.status, 401);
  const fresh = await login('carol', newPw);
  assert.equal(fresh.status, 200, fresh.text);
  // Basic with the new password works, with the old one it does not
  const basic = (p) => `Basic ${Buffer.from(`carol:${p}`).toString('base64')}`;
  assert.equal((await call('GET', '/user/groups', basic(newPw))).status, 200);
  assert.equal((await call('GET', '/user/groups', basic(PASS.carol))).status, 401);
  await gw.waitForLog(/ev=password_vault_refresh user=carol status=ok/, 5000);
  assert.ok(!gw.log().includes(newPw), 'new password in the log');
  PASS.carol = newPw;
});

test('U4 DELETE /user removes the account: token revoked, login fails afterwards', async () => {
  const t = await token('dave');
  const r = await call('DELETE', '/user', t);
  assert.equal(r.status, 200, r.text);
  assert.equal((await call('GET', '/user', t)).status, 401, 'token revoked');
  assert.equal((await login('dave')).status, 401);
  assert.equal(await prosody.userExists('dave'), false);
  // others are untouched
  assert.equal((await login('alice')).status, 200);
});

test('no password in the log', () => {
  const log = gw.log();
  for (const p of Object.values(PASS)) assert.ok(!log.includes(p), 'password in log');
  assert.ok(!log.includes('carol-pw-users-3'));
});
