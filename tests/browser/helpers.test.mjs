// helpers.test.mjs: the REST helpers of web/sparkgate.js, run in Node (the module needs no
// browser for REST) against a real Prosody and gateway: every helper reaches a route of the
// gateway with the method and path of contract §8.1 (no router 404/405), and the common ones
// do what they say.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startProsody } from '../harness/prosody.mjs';
import { startGateway, withLogs } from '../harness/gateway.mjs';
import { webRoot, befriend } from './lib.mjs';

const PW = 'web-helpers-Secret9';
let prosody, gw, Sparkgate, SparkgateError, bareJid, b64url, tokenClaims;

before(async () => {
  ({ Sparkgate, SparkgateError, bareJid, b64url, tokenClaims } = await import('../../web/sparkgate.js'));
  prosody = await startProsody({ mam: true });
  for (const u of ['jo', 'kim']) await prosody.register(u, PW);
  await befriend(prosody, ['jo', PW], ['kim', PW]);
  gw = await startGateway({ prosody, env: { SPARKGATE_HTTP_WEB_ROOT: webRoot } });
});

after(async () => {
  const res = gw ? await gw.stop() : null;
  if (prosody) await prosody.stop();
  if (res) assert.equal(res.code, 0, `gateway exit ${JSON.stringify(res)}\n${gw.log().slice(-3000)}`);
});

test('small helpers', () => {
  assert.equal(bareJid('Bob@Example.org/Res/x'), 'bob@example.org');
  assert.equal(bareJid('null'), '');
  assert.deepEqual([...b64url.decode(b64url.encode(new Uint8Array([251, 255, 0, 1])))], [251, 255, 0, 1]);
  assert.equal(b64url.encode(new Uint8Array([251, 255])), '-_8');
  assert.deepEqual(tokenClaims('x.eyJzdWIiOiJqbyJ9.y'), { sub: 'jo' });
  assert.deepEqual(tokenClaims('garbage'), {});
});

test('every REST helper reaches its route; the common ones work', () => withLogs([gw], async () => {
  const sg = new Sparkgate({ url: gw.url, storage: 'memory' });
  await assert.rejects(sg.login('jo', 'wrong'), (e) => e instanceof SparkgateError && e.status === 401);
  const t = await sg.login('jo', PW);
  assert.match(t.token, /^ey/);
  assert.equal(sg.username, 'jo');
  assert.equal(sg.jid, `jo@${prosody.domain}`);
  const kim = `kim@${prosody.domain}`;

  // working calls
  assert.ok((await sg.roster()).rosterItem.some((i) => i.jid === kim));
  assert.ok((await sg.presenceRoster()).rosterItem.some((i) => i.jid === kim && i.show));
  assert.equal(await sg.setPresence('away', 'busy'), null);
  assert.equal((await sg.presence('jo')).show, 'away');
  assert.equal(await sg.sendMessage(kim, 'from the helpers'), null);
  assert.equal(await sg.sendMessage(kim, { body: 'json body', n: 1 }), null);
  assert.equal(await sg.chatState('composing', kim), null);
  await assert.rejects(sg.chatState('dancing', kim), (e) => e.status === 400);
  const arch = await sg.chatMessages({ to: kim, before: '', max: 10 });
  assert.ok(Array.isArray(arch.conversation));
  assert.ok(arch.conversation.flatMap((c) => c.message).some((m) => m.body === 'from the helpers'));
  assert.equal(await sg.addContact({ jid: `nobody@${prosody.domain}`, nickname: 'N' }), null);
  await assert.rejects(sg.addContact(`nobody@${prosody.domain}`), (e) => e.status === 409);
  assert.equal(await sg.updateContact(`nobody@${prosody.domain}`, { nickname: 'M' }), null);
  assert.equal(await sg.removeContact(`nobody@${prosody.domain}`), null);
  assert.equal((await sg.configGlobal()).about, 'SparkWeb');
  assert.equal((await sg.user()).username, 'jo');
  assert.match((await sg.sseTicket()).ticket, /^[\w-]{43}$/);

  // every other helper: any answer but the router's 404/405
  const calls = {
    register: () => new Sparkgate({ url: gw.url, storage: 'memory' }).register('jo', PW),
    roomMessages: () => sg.roomMessages({ room: 'nowhere' }), rooms: () => sg.rooms(), room: () => sg.room('nowhere'),
    roomParticipants: () => sg.roomParticipants('nowhere'), roomOccupants: () => sg.roomOccupants('nowhere'),
    roomHistory: () => sg.roomHistory('nowhere'), joinRoom: () => sg.joinRoom('helpers'), postRoom: () => sg.postRoom('helpers', 'hi'),
    inviteRoom: () => sg.inviteRoom('helpers', kim, 'come'), leaveRoom: () => sg.leaveRoom('helpers'),
    createBookmark: () => sg.createBookmark({ type: 'url', name: 'x', value: 'https://example.org/' }), bookmarks: () => sg.bookmarks(),
    bookmark: () => sg.bookmark(1), updateBookmark: () => sg.updateBookmark(1, { type: 'url', name: 'y', value: 'https://example.org/' }),
    setBookmarkProperty: () => sg.setBookmarkProperty(1, 'rss', 'true'), deleteBookmarkProperty: () => sg.deleteBookmarkProperty(1, 'rss'),
    deleteBookmark: () => sg.deleteBookmark(1),
    pubsubNodes: () => sg.pubsubNodes(), pubsubCreate: () => sg.pubsubCreate('helpers'), pubsubSubscribe: () => sg.pubsubSubscribe('helpers'),
    pubsubPublish: () => sg.pubsubPublish('helpers', { a: 1 }), pubsubSubscribers: () => sg.pubsubSubscribers('helpers'),
    pepNodes: () => sg.pepNodes(), pepPublish: () => sg.pepPublish('helpers', { a: 1 }),
    meeting: () => sg.meeting('jitsi', 'helpers'), uploadSlot: () => sg.uploadSlot('a.txt', 10),
    preview: () => sg.preview('http://127.0.0.1:1/'), sendXmpp: () => sg.sendXmpp("<presence type='probe'/>"),
    users: () => sg.users(), updateUser: () => sg.updateUser({ name: 'Jo' }), userGroups: () => sg.userGroups(),
    addUserGroups: () => sg.addUserGroups(['g']), removeUserGroups: () => sg.removeUserGroups(['g']),
    addUserGroup: () => sg.addUserGroup('g'), removeUserGroup: () => sg.removeUserGroup('g'),
    configProperties: () => sg.configProperties(), setConfigProperties: () => sg.setConfigProperties({ colour: 'blue' }),
    vapidKey: () => sg.vapidKey(), pushSubscribers: () => sg.pushSubscribers(), pushSubscriptions: () => sg.pushSubscriptions(),
    pushSubscribe: () => sg.pushSubscribe({ endpoint: 'https://push.invalid/x', keys: { p256dh: 'x', auth: 'y' } }),
    pushNotify: () => sg.pushNotify('kim', { subject: 's', body: 'b' }), pushMessage: () => sg.pushMessage('kim', 'hi'),
    pushAction: () => sg.pushAction({ data: 'kim', action: 'none' }),
    passkeys: () => sg.passkeys(), deletePasskey: () => sg.deletePasskey('AAAA'),
    presence: () => sg.presence('kim'),
  };
  const missing = [];
  for (const [name, fn] of Object.entries(calls)) {
    try {
      await fn();
    } catch (e) {
      if (!(e instanceof SparkgateError)) throw new Error(`${name}: ${e.stack}`);
      const routerMiss = (e.status === 404 && e.body?.exception === 'NotFoundException' && e.body?.message === 'Not Found') || e.status === 405;
      if (routerMiss) missing.push(`${name} (${e.status} ${e.path})`);
    }
  }
  assert.deepEqual(missing, [], 'helpers without a gateway route');
  assert.ok(sg.loggedIn, 'no helper call signed the client out');
  await sg.logout();
  assert.equal(sg.loggedIn, false);
  await assert.rejects(new Sparkgate({ url: gw.url, storage: 'memory' }).user(), (e) => e.status === 401);
}));
