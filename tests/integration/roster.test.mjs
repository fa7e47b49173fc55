// roster.test.mjs: contacts and presence (contract §1.5 R1-R4, §1.7 P1-P3) against a real
// Prosody with four users: alice manages her roster over REST; bob (auto-approving, as every
// gateway session does) sets his presence; dave goes offline; carol never logs in. Asserts the
// exact runtime JSON names (rosterItem, nickname, subscriptionType, groups, show, status,
// presenceType), the statuses of the contract (200, 400, 404, 409), the subscription request
// at the peer's event stream, and that roster and presence survive a fresh reconnect after a
// Prosody restart.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startProsody } from '../harness/prosody.mjs';
import { startGateway, withLogs } from '../harness/gateway.mjs';
import { openSSE } from '../harness/sse.mjs';
import { request } from '../harness/http.mjs';
import { delay, makeTempDir, removeTempDir } from '../harness/proc.mjs';

const PASS = { alice: 'alice-roster-pw-1', bob: 'bob-roster-pw-2', carol: 'carol-roster-pw-3', dave: 'dave-roster-pw-4', erin: 'erin-roster-pw-5' };
let prosody, gw, dataDir, domain;
const tok = {};
const streams = [];

const rest = (path) => `${gw.url}/sparkweb/api/rest${path}`;
const as = (user) => ({ authorization: tok[user] });
const call = (user, method, path, body) => request(method, rest(path), { body, headers: as(user) });
const jid = (u) => `${u}@${domain}`;

async function login(user) {
  const r = await request('POST', rest(`/login/${user}`), { body: PASS[user], headers: { 'content-type': 'text/plain' } });
  assert.equal(r.status, 200, r.text);
  tok[user] = r.json.token;
}

async function rosterOf(user, path = '/roster') {
  const r = await call(user, 'GET', path);
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(Object.keys(r.json), ['rosterItem']);
  assert.ok(Array.isArray(r.json.rosterItem));
  return r.json.rosterItem;
}

/** Polls fn() until it returns a truthy value (or fails after timeoutMs). */
async function eventually(fn, what, timeoutMs = 8000) {
  const end = Date.now() + timeoutMs;
  let last;
  while (Date.now() < end) {
    last = await fn();
    if (last) return last;
    await delay(100);
  }
  assert.fail(`timed out waiting for ${what}`);
}

const item = async (user, who, path) => (await rosterOf(user, path)).find((i) => i.jid === jid(who));

before(async () => {
  dataDir = makeTempDir('sg-roster-prosody-');
  prosody = await startProsody({ dir: dataDir });
  domain = prosody.domain;
  for (const u of Object.keys(PASS)) await prosody.register(u, PASS[u]);
  gw = await startGateway({ prosody, env: { SPARKGATE_LOG_LEVEL: 'debug' } });
  await login('alice');
  await login('bob');
  await login('dave');
});

after(async () => {
  for (const s of streams) s.close();
  const res = gw ? await gw.stop() : null;
  if (prosody) await prosody.stop();
  removeTempDir(dataDir);
  if (res) assert.equal(res.code, 0, `gateway exit ${JSON.stringify(res)}\n${gw.log().slice(-3000)}`);
});

test('R1 an empty roster is {"rosterItem":[]}', () => withLogs([gw], async () => {
  assert.deepEqual(await rosterOf('alice'), []);
}));

test('R2 add: 200 empty, the item appears, the peer gets the subscription request', () => withLogs([gw], async () => {
  const bobSse = await openSSE(`${gw.url}/sparkweb/sse?token=${tok.bob}`);
  streams.push(bobSse);
  await bobSse.waitFor((e) => e.event === 'onConnect', 5000);
  const r = await call('alice', 'POST', '/roster', { jid: jid('bob'), nickname: 'Bob', subscriptionType: 1, groups: ['Friends'] });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.text, '');
  const it = await item('alice', 'bob');
  assert.ok(it, 'bob is in alice\'s roster at once');
  assert.deepEqual(Object.keys(it).sort(), ['groups', 'jid', 'nickname', 'subscriptionType']);
  assert.equal(it.nickname, 'Bob');
  assert.deepEqual(it.groups, ['Friends']);
  // bob's session sees alice's request (and auto-approves it, as the reference's accept_all)
  const ev = await bobSse.waitFor((e) => e.event === 'chatapi.presence' && JSON.parse(e.data).presenceType === 'subscribe', 8000);
  const d = JSON.parse(ev.data);
  assert.match(d.from, new RegExp(`^alice@${domain}`));
  assert.equal(d.type, 'presence');
  // approval arrives as a roster push: subscription "to" = 1
  await eventually(async () => (await item('alice', 'bob'))?.subscriptionType === 1, 'subscriptionType 1');
}));

test('R2 adding an existing contact is 409; bad bodies and JIDs are 400', () => withLogs([gw], async () => {
  const dup = await call('alice', 'POST', '/roster', { jid: jid('bob') });
  assert.equal(dup.status, 409, dup.text);
  assert.equal(dup.json.exception, 'UserAlreadyExistsException');
  const bare = await call('alice', 'POST', '/roster', { jid: 'bob' }); // a username means bob@domain
  assert.equal(bare.status, 409, bare.text);
  const nojid = await call('alice', 'POST', '/roster', { nickname: 'x' });
  assert.equal(nojid.status, 400);
  assert.equal(nojid.json.message, 'JID is null');
  for (const bad of ['a@b@c', 'bad user@example.org', '@example.org', 'bob@localhost/res', 'x@exa mple.org', '', 'é'.repeat(1200) + '@x.org']) {
    const r = await call('alice', 'POST', '/roster', { jid: bad });
    assert.equal(r.status, 400, `jid ${JSON.stringify(bad)}: ${r.text}`);
    assert.equal(typeof r.json.resource, 'string');
  }
  const bodies = [
    'not json', '[1,2]', '{"jid": 5}', `{"jid":"${jid('carol')}","groups":"Friends"}`,
    `{"jid":"${jid('carol')}","groups":[1]}`, `{"jid":"${jid('carol')}","groups":[""]}`,
    `{"jid":"${jid('carol')}","subscriptionType":"1"}`, `{"jid":"${jid('carol')}","nickname":7}`,
    `{"jid":"${jid('alice')}"}`, // oneself
  ];
  for (const b of bodies) {
    const r = await request('POST', rest('/roster'), { body: b, headers: { ...as('alice'), 'content-type': 'application/json' } });
    assert.equal(r.status, 400, `body ${b}: ${r.text}`);
  }
  const range = await call('alice', 'POST', '/roster', { jid: jid('carol'), subscriptionType: 7 });
  assert.equal(range.status, 409);
  assert.equal(await item('alice', 'carol'), undefined, 'nothing was created for a refused body');
}));

test('R3 update: groups and name change, subscription kept when absent; unknown is 404', () => withLogs([gw], async () => {
  const r = await call('alice', 'PUT', `/roster/${encodeURIComponent(jid('bob'))}`, { groups: ['Work', 'Friends'] });
  assert.equal(r.status, 200, r.text);
  let it = await item('alice', 'bob');
  assert.deepEqual([...it.groups].sort(), ['Friends', 'Work']);
  assert.equal(it.nickname, 'Bob', 'name kept when absent');
  assert.equal(it.subscriptionType, 1, 'subscription not reset when absent');
  const r2 = await call('alice', 'PUT', '/roster/bob', { nickname: 'Robert' });
  assert.equal(r2.status, 200, r2.text);
  it = await item('alice', 'bob');
  assert.equal(it.nickname, 'Robert');
  assert.deepEqual([...it.groups].sort(), ['Friends', 'Work'], 'groups kept when absent');
  // the server's roster agrees (a new session of another tab would see the same)
  const nf = await call('alice', 'PUT', `/roster/${jid('nobody')}`, { nickname: 'x' });
  assert.equal(nf.status, 404);
  assert.equal(nf.json.exception, 'RosterItemNotFound');
  const bad = await call('alice', 'PUT', `/roster/${encodeURIComponent('a@b@c')}`, { nickname: 'x' });
  assert.equal(bad.status, 400);
  const other = await call('alice', 'PUT', '/roster/bob', { jid: jid('carol') });
  assert.equal(other.status, 400);
  const range = await call('alice', 'PUT', '/roster/bob', { subscriptionType: 9 });
  assert.equal(range.status, 409);
}));

test('P3 + P1 + P2: bob\'s presence shows in alice\'s views with show and status', () => withLogs([gw], async () => {
  const r = await request('POST', rest('/presence?show=away&status=' + encodeURIComponent('At lunch "😀" <b>')), { headers: as('bob') });
  assert.equal(r.status, 200, r.text);
  const it = await eventually(async () => {
    const i = await item('alice', 'bob', '/presence/roster');
    return i && i.show === 'away' ? i : null;
  }, 'bob away in /presence/roster');
  assert.deepEqual(Object.keys(it).sort(), ['groups', 'jid', 'nickname', 'presenceType', 'show', 'status', 'subscriptionType']);
  assert.equal(it.status, 'At lunch "😀" <b>');
  assert.equal(it.presenceType, 'available');
  const p = await call('alice', 'GET', '/presence/bob');
  assert.equal(p.status, 200, p.text);
  assert.deepEqual(p.json, { username: 'bob', show: 'away', status: 'At lunch "😀" <b>', presenceType: 'available' });
  // back to plain available: show "available", no status
  assert.equal((await request('POST', rest('/presence?show=available'), { headers: as('bob') })).status, 200);
  await eventually(async () => (await item('alice', 'bob', '/presence/roster'))?.show === 'available', 'bob available');
  const p2 = await call('alice', 'GET', `/presence/${jid('bob')}`);
  assert.deepEqual(p2.json, { username: jid('bob'), show: 'available', presenceType: 'available' });
  // own presence
  assert.equal((await request('POST', rest('/presence?show=dnd&status=busy&priority=5'), { headers: as('alice') })).status, 200);
  const self = await call('alice', 'GET', '/presence/alice');
  assert.deepEqual(self.json, { username: 'alice', show: 'dnd', status: 'busy', presenceType: 'available' });
}));

test('P3 rejects bad show, status and priority', () => withLogs([gw], async () => {
  for (const q of ['show=bogus', 'show=AWAY', 'priority=200', 'priority=x', 'priority=', 'status=' + 'a'.repeat(1100), 'status=%C3%28', 'status=%01']) {
    const r = await request('POST', rest(`/presence?${q}`), { headers: as('bob') });
    assert.equal(r.status, 400, `${q}: ${r.text}`);
  }
}));

test('offline contacts show unavailable; no subscription gives the unknown form', () => withLogs([gw], async () => {
  // dave approves alice's request (auto), then logs out
  assert.equal((await call('alice', 'POST', '/roster', { jid: jid('dave'), subscriptionType: 1 })).status, 200);
  await eventually(async () => (await item('alice', 'dave', '/presence/roster'))?.show === 'available', 'dave online');
  assert.equal((await request('POST', rest('/logout'), { headers: as('dave') })).status, 200);
  const it = await eventually(async () => {
    const i = await item('alice', 'dave', '/presence/roster');
    return i && i.show === 'unavailable' ? i : null;
  }, 'dave unavailable');
  assert.equal(it.presenceType, 'unavailable');
  assert.equal(it.status, undefined);
  const p = await call('alice', 'GET', '/presence/dave');
  assert.deepEqual(p.json, { username: 'dave', show: 'unknown', status: '', presenceType: 'unavailable' });
  // carol: in the roster without subscription (never logged in)
  assert.equal((await call('alice', 'POST', '/roster', { jid: jid('carol'), nickname: 'Carol' })).status, 200);
  const c = await item('alice', 'carol', '/presence/roster');
  assert.equal(c.subscriptionType, 0);
  assert.equal(c.show, 'unavailable');
  const pc = await call('alice', 'GET', '/presence/carol');
  assert.deepEqual(pc.json, { username: 'carol', show: 'unknown', status: '' });
  // someone not in the roster at all
  const pn = await call('alice', 'GET', '/presence/nobody');
  assert.deepEqual(pn.json, { username: 'nobody', show: 'unknown', status: '' });
  for (const bad of ['a@b@c', 'x%20y', '%40']) {
    const r = await request('GET', rest(`/presence/${bad}`), { headers: as('alice') });
    assert.equal(r.status, 400, `${bad}: ${r.text}`);
  }
}));

test('P3 offline: the cache forgets presences; P2 then probes and answers within the wait', () => withLogs([gw], async () => {
  assert.equal((await request('POST', rest('/presence?show=offline'), { headers: as('alice') })).status, 200);
  const self = await call('alice', 'GET', '/presence/alice');
  assert.deepEqual(self.json, { username: 'alice', show: 'unknown', status: '', presenceType: 'unavailable' });
  const probes = () => (gw.log().match(/<presence[^>]*to='bob@[^>]*type='probe'|<presence[^>]*type='probe'[^>]*to='bob@/g) || []).length;
  const before = probes();
  const t0 = Date.now();
  const p = await call('alice', 'GET', '/presence/bob');
  assert.equal(p.status, 200, p.text);
  assert.equal(p.json.username, 'bob');
  assert.ok(['available', 'unknown'].includes(p.json.show), p.text);
  assert.ok(Date.now() - t0 < 4000, 'answered within the probe wait');
  assert.equal(probes(), before + 1, 'one probe sent for the unknown presence');
  // back online: the server sends the contacts' presence again
  assert.equal((await request('POST', rest('/presence?show=chat'), { headers: as('alice') })).status, 200);
  await eventually(async () => (await item('alice', 'bob', '/presence/roster'))?.show === 'available', 'bob seen again');
  const me = await call('alice', 'GET', '/presence/alice');
  assert.deepEqual(me.json, { username: 'alice', show: 'chat', presenceType: 'available' });
}));

test('P2 right after a new login: a subscribed offline contact answers unavailable', () => withLogs([gw], async () => {
  // erin approves alice (her session auto-approves) and goes offline
  await login('erin');
  assert.equal((await call('alice', 'POST', '/roster', { jid: jid('erin'), subscriptionType: 1 })).status, 200);
  await eventually(async () => (await item('alice', 'erin'))?.subscriptionType === 1, 'erin approved');
  assert.equal((await request('POST', rest('/logout'), { headers: as('erin') })).status, 200);
  // a fresh session for alice: her presence cache starts empty; the answer comes from the
  // server (its probe at initial presence, or ours when that has not arrived yet)
  assert.equal((await request('POST', rest('/logout'), { headers: as('alice') })).status, 200);
  await login('alice');
  const p = await call('alice', 'GET', '/presence/erin');
  assert.equal(p.status, 200, p.text);
  assert.deepEqual(p.json, { username: 'erin', show: 'unknown', status: '', presenceType: 'unavailable' });
  const i = await item('alice', 'erin', '/presence/roster');
  assert.equal(i.show, 'unavailable');
  assert.equal(i.subscriptionType, 1);
  const b = await item('alice', 'bob', '/presence/roster');
  assert.equal(b.nickname, 'Robert', 'the new session fetched the roster from the server');
}));

test('R4 delete: gone from the roster; unknown is 404', () => withLogs([gw], async () => {
  const r = await call('alice', 'DELETE', `/roster/${jid('carol')}`);
  assert.equal(r.status, 200, r.text);
  assert.equal(await item('alice', 'carol'), undefined);
  const again = await call('alice', 'DELETE', `/roster/${jid('carol')}`);
  assert.equal(again.status, 404);
  assert.equal(again.json.exception, 'RosterItemNotFound');
  assert.equal(again.json.resource, jid('carol'));
  const bad = await call('alice', 'DELETE', '/roster/a%40b%40c');
  assert.equal(bad.status, 400);
  const unauth = await request('DELETE', rest(`/roster/${jid('bob')}`));
  assert.equal(unauth.status, 401);
}));

test('roster and own presence survive a reconnect to a restarted server', () => withLogs([gw, prosody], async () => {
  const aliceSse = await openSSE(`${gw.url}/sparkweb/sse?token=${tok.alice}`);
  streams.push(aliceSse);
  await aliceSse.waitFor((e) => e.event === 'onConnect', 5000);
  assert.equal((await request('POST', rest('/presence?show=xa&status=gone%20fishing'), { headers: as('bob') })).status, 200);
  await eventually(async () => (await item('alice', 'bob', '/presence/roster'))?.show === 'xa', 'bob xa');
  const { c2sPort, httpPort } = prosody;
  await prosody.stop({ keepDir: true });
  await delay(500);
  prosody = await startProsody({ dir: dataDir, c2sPort, httpPort });
  await aliceSse.waitFor((e) => e.event === 'sparkgate.reconnected', 30000);
  const rec = aliceSse.events.find((e) => e.event === 'sparkgate.reconnected');
  assert.equal(JSON.parse(rec.data).resumed, false);
  const it = await item('alice', 'bob');
  assert.equal(it.nickname, 'Robert');
  assert.equal(it.subscriptionType, 1);
  // bob re-announced the presence he had set, and alice's cache was refilled with it
  const p = await eventually(async () => {
    const i = await item('alice', 'bob', '/presence/roster');
    return i && i.show === 'xa' ? i : null;
  }, 'bob xa after the reconnect', 30000);
  assert.equal(p.status, 'gone fishing');
}));
