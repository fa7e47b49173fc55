// library.test.mjs: sparkgate.js itself in headless Chromium against a real Prosody and gateway:
// a call answered 401 refreshes the token once (rotating the refresh token) and is retried; the
// event stream resumes with the id of the last event it saw, so what another tab already took
// is still replayed to it; the stream comes back by itself after a gateway restart; logout in
// one tab with localStorage signs out the others.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startProsody } from '../harness/prosody.mjs';
import { startGateway, withLogs } from '../harness/gateway.mjs';
import { request } from '../harness/http.mjs';
import { freePort, makeTempDir, removeTempDir } from '../harness/proc.mjs';
import { launch, waitText, loginThroughForm, webRoot } from './lib.mjs';

const PW = 'web-library-Secret7';
let prosody, gw, browser, origin, env;
const storePath = makeTempDir('sg-browser-lib-');

before(async () => {
  prosody = await startProsody({ mam: false });
  for (const u of ['hal', 'ida']) await prosody.register(u, PW);
  const port = await freePort();
  env = { SPARKGATE_HTTP_WEB_ROOT: webRoot, SPARKGATE_HTTP_LISTEN: `127.0.0.1:${port}` };
  gw = await startGateway({ prosody, storePath, env });
  origin = `http://localhost:${gw.port}`;
  browser = await launch();
});

after(async () => {
  await browser?.close();
  const res = gw ? await gw.stop() : null;
  if (prosody) await prosody.stop();
  removeTempDir(storePath);
  if (res) assert.equal(res.code, 0, `gateway exit ${JSON.stringify(res)}\n${gw.log().slice(-3000)}`);
});

const T = { timeout: 15000 };
const basic = (u) => ({ authorization: `Basic ${Buffer.from(`${u}:${PW}`).toString('base64')}` });
const send = (from, to, body) => request('POST', `${gw.url}/sparkweb/api/rest/chat/message/${to}@${prosody.domain}`, { body, headers: basic(from) });

async function chatPage(ctx, user, peer, query = '') {
  const page = await ctx.newPage();
  await page.goto(`${origin}/sparkweb/examples/chat.html?with=${peer}@${prosody.domain}${query}`);
  await page.waitForFunction(() => customElements.get('sparkgate-chat') && window.sparkgate, null, T);
  if (!(await page.evaluate(() => window.sparkgate.loggedIn))) await loginThroughForm(page, user, PW);
  await page.waitForFunction(() => window.sparkgate?.state === 'open', null, T);
  return page;
}

test('a 401 refreshes the token once, rotating the refresh token, and the call is retried', () => withLogs([gw], async () => {
  const ctx = await browser.newContext();
  const page = await chatPage(ctx, 'hal', 'ida');
  const r = await page.evaluate(async (to) => {
    const sg = window.sparkgate;
    const before = { token: sg.token, refresh: sg.refreshToken };
    sg.token = sg.token.slice(0, -6) + 'AAAAAA'; // a broken signature: 401
    sg._save(); // (in storage too, else the library takes the stored one as newer)
    await sg.sendMessage(to, 'after a refresh');
    const stored = JSON.parse(sessionStorage.getItem('sparkgate.session'));
    return { before, token: sg.token, refresh: sg.refreshToken, stored };
  }, `ida@${prosody.domain}`);
  assert.notEqual(r.token, r.before.token);
  assert.match(r.token, /^ey/);
  assert.notEqual(r.refresh, r.before.refresh, 'the refresh token rotated');
  assert.equal(r.stored.token, r.token, 'the new tokens are stored');
  assert.equal(r.stored.refreshToken, r.refresh);
  await waitText(page, /after a refresh/, { selector: 'sparkgate-chat' });
  // the spent refresh token is refused (and revokes its family): the library never reused it
  const reuse = await request('POST', `${gw.url}/sparkweb/api/rest/token/refresh`, { body: r.before.refresh });
  assert.equal(reuse.status, 401);
  await ctx.close();
}));

test('the stream resumes from the last event it saw: events another tab took are replayed to it', () => withLogs([gw], async () => {
  const ctx = await browser.newContext();
  const p1 = await chatPage(ctx, 'ida', 'hal');
  const p2 = await chatPage(ctx, 'ida', 'hal');
  await send('hal', 'ida', 'first, both tabs');
  for (const p of [p1, p2]) await waitText(p, /first, both tabs/, { selector: 'sparkgate-chat' });
  const last = await p1.evaluate(() => {
    window.sparkgate.disconnect();
    return window.sparkgate.lastEventId;
  });
  assert.match(last, /^\d+$/);
  await send('hal', 'ida', 'while tab one was away');
  await waitText(p2, /while tab one was away/, { selector: 'sparkgate-chat' }); // tab two took it
  await p1.evaluate(() => window.sparkgate.connect());
  await waitText(p1, /while tab one was away/, { selector: 'sparkgate-chat', why: '(replayed by lastEventId)' });
  const count = await p1.evaluate(() => [...document.querySelector('sparkgate-chat').shadowRoot.querySelectorAll('.msg .body')]
    .filter((e) => e.textContent === 'first, both tabs').length);
  assert.equal(count, 1, 'nothing replayed twice');
  await ctx.close();
}));

test('the stream comes back by itself after a gateway restart', () => withLogs([gw], async () => {
  const ctx = await browser.newContext();
  const page = await chatPage(ctx, 'hal', 'ida');
  assert.equal((await gw.stop()).code, 0);
  await page.waitForFunction(() => window.sparkgate.state === 'connecting', null, T);
  gw = await startGateway({ prosody, storePath, env });
  await page.waitForFunction(() => window.sparkgate.state === 'open', null, { timeout: 40000 });
  await send('ida', 'hal', 'after the restart');
  await waitText(page, /after the restart/, { selector: 'sparkgate-chat' });
  await ctx.close();
}));

test('with storage=local a second tab is signed in, and a logout in one tab signs out the other', () => withLogs([gw], async () => {
  const ctx = await browser.newContext();
  const p1 = await chatPage(ctx, 'ida', 'hal', '&storage=local');
  const p2 = await ctx.newPage();
  await p2.goto(`${origin}/sparkweb/examples/chat.html?with=hal@${prosody.domain}&storage=local`);
  await p2.waitForFunction(() => window.sparkgate?.state === 'open', null, T); // no login form needed
  await p1.click('#signout');
  await p2.waitForFunction(() => !window.sparkgate.loggedIn && window.sparkgate.state !== 'open', null, T);
  await waitText(p2, /Sign in/, { selector: 'sparkgate-login' });
  await ctx.close();
}));

test('a duplicated tab (sessionStorage copied) drops the copied refresh token; the first tab keeps refreshing', () => withLogs([gw], async () => {
  const ctx = await browser.newContext();
  const p1 = await chatPage(ctx, 'hal', 'ida');
  const copy = await p1.evaluate(() => Object.fromEntries(Object.keys(sessionStorage).map((k) => [k, sessionStorage.getItem(k)])));
  assert.ok(copy['sparkgate.session.tab'], 'the tab has an id');
  assert.ok(JSON.parse(copy['sparkgate.session']).refreshToken);
  // what "Duplicate tab" does: a new tab starting with a copy of the first one's sessionStorage
  const p2 = await ctx.newPage();
  await p2.addInitScript((entries) => {
    if (!sessionStorage.getItem('sparkgate.session')) for (const [k, v] of Object.entries(entries)) sessionStorage.setItem(k, v);
  }, copy);
  await p2.goto(`${origin}/sparkweb/examples/chat.html?with=ida@${prosody.domain}`);
  await p2.waitForFunction(() => window.sparkgate && window.sparkgate.refreshToken === null, null, T);
  const dup = await p2.evaluate(() => ({ loggedIn: window.sparkgate.loggedIn, id: sessionStorage.getItem('sparkgate.session.tab'),
    stored: JSON.parse(sessionStorage.getItem('sparkgate.session')) }));
  assert.equal(dup.loggedIn, true, 'the copied access token still works');
  assert.notEqual(dup.id, copy['sparkgate.session.tab'], 'the copy took a new tab id');
  assert.equal(dup.stored.refreshToken ?? null, null, 'the copied refresh token is gone from its storage too');
  // the first tab's refresh family is intact: it rotates as before
  const r = await p1.evaluate(async () => {
    const before = window.sparkgate.refreshToken;
    await window.sparkgate.refresh();
    return { before, after: window.sparkgate.refreshToken };
  });
  assert.ok(r.before);
  assert.notEqual(r.after, r.before);
  await ctx.close();
}));

test('with storage=local, another tab signing in as another user logs this tab out, then in as that user', () => withLogs([gw], async () => {
  const ctx = await browser.newContext();
  const p1 = await chatPage(ctx, 'ida', 'hal', '&storage=local');
  await p1.evaluate(() => {
    window.__events = [];
    window.sparkgate.on('logout', (d) => window.__events.push(`logout:${d.reason}`));
    window.sparkgate.on('login', (d) => window.__events.push(`login:${d.username}`));
  });
  const p2 = await ctx.newPage();
  await p2.goto(`${origin}/sparkweb/examples/chat.html?with=ida@${prosody.domain}&storage=local`);
  await p2.waitForFunction(() => window.sparkgate?.loggedIn, null, T);
  await p2.evaluate((pw) => window.sparkgate.login('hal', pw), PW);
  await p1.waitForFunction(() => window.__events.length >= 2, null, T);
  assert.deepEqual(await p1.evaluate(() => window.__events), ['logout:storage', 'login:hal']);
  assert.equal(await p1.evaluate(() => window.sparkgate.username), 'hal');
  assert.equal(await p2.evaluate(() => window.sparkgate.username), 'hal', 'the storage stayed the other tab\'s');
  await ctx.close();
}));

test('logout with an expired access token refreshes and still ends the gateway session', () => withLogs([gw], async () => {
  const ctx = await browser.newContext();
  const page = await chatPage(ctx, 'hal', 'ida');
  const spent = await page.evaluate(async () => {
    const sg = window.sparkgate;
    const refresh = sg.refreshToken;
    sg.token = sg.token.slice(0, -6) + 'AAAAAA'; // refused like an expired one: 401
    sg._save();
    await sg.logout();
    return { refresh, loggedIn: sg.loggedIn };
  });
  assert.equal(spent.loggedIn, false);
  // that refresh token was spent by the refresh, and the logout with the new token ended the
  // session: without the retry the old refresh token would still work here
  const reuse = await request('POST', `${gw.url}/sparkweb/api/rest/token/refresh`, { body: spent.refresh });
  assert.equal(reuse.status, 401);
  assert.match(gw.log(), /logout/);
  await ctx.close();
}));
