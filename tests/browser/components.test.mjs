// components.test.mjs: the web components (web/sparkgate-elements.js on web/sparkgate.js) in
// headless Chromium against a real Prosody and gateway: login on the demo page, a contact coming
// online in the roster, a message typed in one page reaching the other user's page and a second
// tab of the sender, typing notifications, history (MAM), an XSS body shown as text, TOTP and
// passkey logins, group chats. Screenshots of every page (desktop and 360 px) go to
// tests/browser/screenshots/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startProsody } from '../harness/prosody.mjs';
import { startGateway, withLogs } from '../harness/gateway.mjs';
import { request } from '../harness/http.mjs';
import { launch, befriend, totpCode, waitText, screenshots, loginThroughForm, webRoot, xmppClient } from './lib.mjs';

const PW = 'web-components-Secret5';
let prosody, gw, browser, origin, domain;

before(async () => {
  prosody = await startProsody({ mam: true });
  domain = prosody.domain;
  for (const u of ['ann', 'ben', 'cid', 'dee', 'eve']) await prosody.register(u, PW);
  await befriend(prosody, ['ann', PW], ['ben', PW]);
  gw = await startGateway({ prosody, env: { SPARKGATE_HTTP_WEB_ROOT: webRoot } });
  origin = `http://localhost:${gw.port}`;
  browser = await launch();
});

after(async () => {
  await browser?.close();
  const res = gw ? await gw.stop() : null;
  if (prosody) await prosody.stop();
  if (res) assert.equal(res.code, 0, `gateway exit ${JSON.stringify(res)}\n${gw.log().slice(-3000)}`);
});

const rest = (p) => `${gw.url}/sparkweb/api/rest${p}`;
const basic = (u) => ({ authorization: `Basic ${Buffer.from(`${u}:${PW}`).toString('base64')}` });
const T = { timeout: 15000 };

async function demoLogin(context, user) {
  const page = await context.newPage();
  await page.goto(`${origin}/`);
  await loginThroughForm(page, user, PW);
  await page.waitForFunction(() => /Signed In/.test(document.getElementById('status').textContent), null, T);
  return page;
}

/** An example page (examples/<file>) logged in as user through its login box. */
async function examplePage(context, file, user) {
  const page = await context.newPage();
  await page.goto(`${origin}/sparkweb/examples/${file}`);
  await loginThroughForm(page, user, PW);
  await page.waitForFunction(() => window.sparkgate?.state === 'open', null, T);
  return page;
}

/** Opens the conversation with `jid` through the chat's own "Chat with" box. */
async function openChat(page, jid) {
  await page.fill('sparkgate-chat >> #pick-jid', jid);
  await page.press('sparkgate-chat >> #pick-jid', 'Enter');
  await page.waitForSelector('sparkgate-chat >> #text', T);
}

async function typeAndSend(page, text) {
  await page.fill('sparkgate-chat >> #text', text);
  await page.press('sparkgate-chat >> #text', 'Enter');
}

test('demo page: login, and the roster shows a contact coming online', () => withLogs([gw], async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${origin}/`);
  const out = await screenshots(page, 'demo-signed-out');
  assert.equal(out.overflow, 0, 'no horizontal scrolling at 360 px');
  await loginThroughForm(page, 'ann', PW);
  await page.waitForFunction(() => /User ann \(.*\) Signed In/.test(document.getElementById('status').textContent), null, T);
  // the demo's login box goes away while signed in
  await page.waitForSelector('sparkgate-login', { state: 'hidden', timeout: 15000 });

  const ben = `ben@${domain}`;
  await page.waitForSelector(`sparkgate-roster >> li[data-jid="${ben}"][data-show="unavailable"]`, T);
  await waitText(page, /ben.*offline/, { selector: 'sparkgate-roster' });
  // ben's session starts: his presence reaches ann's roster live
  const r = await request('POST', rest('/login/ben'), { body: PW });
  assert.equal(r.status, 200);
  await page.waitForSelector(`sparkgate-roster >> li[data-jid="${ben}"][data-show="available"]`, T);
  await waitText(page, /ben.*online/, { selector: 'sparkgate-roster' });
  // ben goes away with a status text; ann's roster follows
  assert.equal((await request('POST', rest('/presence?show=away&status=at%20lunch'), { headers: { authorization: r.json.token } })).status, 200);
  await page.waitForSelector(`sparkgate-roster >> li[data-jid="${ben}"][data-show="away"]`, T);
  await waitText(page, /ben.*away · at lunch/, { selector: 'sparkgate-roster' });
  // ann sets "do not disturb" in her roster; ben sees it
  await page.selectOption('sparkgate-roster >> #my-show', 'dnd');
  let seen;
  for (let i = 0; i < 50; i++) {
    seen = await request('GET', rest('/presence/ann'), { headers: { authorization: r.json.token } });
    if (seen.json?.show === 'dnd') break;
    await new Promise((res) => setTimeout(res, 100));
  }
  assert.equal(seen.json.show, 'dnd');
  // clicking the contact opens the conversation
  await page.click(`sparkgate-roster >> li[data-jid="${ben}"] >> button.contact`);
  assert.equal(await page.getAttribute('sparkgate-chat', 'with'), ben);
  await waitText(page, new RegExp(`Chat with ${ben}`), { selector: 'sparkgate-chat' });
  const shot = await screenshots(page, 'demo-signed-in');
  assert.equal(shot.overflow, 0);
  // ben logs out: ann sees him go offline
  await request('POST', rest('/logout'), { headers: { authorization: r.json.token } });
  await page.waitForSelector(`sparkgate-roster >> li[data-jid="${ben}"][data-show="unavailable"]`, T);

  // add a contact with the form, then remove it with its button; a second tab follows live
  const eve = `eve@${domain}`;
  const tab2 = await context.newPage();
  await tab2.goto(`${origin}/sparkweb/examples/roster.html`);
  await loginThroughForm(tab2, 'ann', PW);
  await tab2.waitForSelector(`sparkgate-roster >> li[data-jid="${ben}"]`, T);
  await page.fill('sparkgate-roster >> #add-jid', eve);
  await page.fill('sparkgate-roster >> #add-name', 'Eve <b>E</b>');
  await page.press('sparkgate-roster >> #add-name', 'Enter');
  for (const p of [page, tab2]) {
    await p.waitForSelector(`sparkgate-roster >> li[data-jid="${eve}"]`, T);
    await waitText(p, /Eve <b>E<\/b>/, { selector: 'sparkgate-roster' });
  }
  const roster = await request('GET', rest('/roster'), { headers: basic('ann') });
  assert.ok(roster.json.rosterItem.some((i) => i.jid === eve && i.nickname === 'Eve <b>E</b>'));
  await screenshots(tab2, 'example-roster-signed-in');
  await page.click(`sparkgate-roster >> li[data-jid="${eve}"] >> button.remove`);
  for (const p of [page, tab2]) await p.waitForSelector(`sparkgate-roster >> li[data-jid="${eve}"]`, { state: 'detached', timeout: 15000 });
  const after = await request('GET', rest('/roster'), { headers: basic('ann') });
  assert.ok(!after.json.rosterItem.some((i) => i.jid === eve));
  await context.close();
}));

test('a message typed in one page appears in the other user\'s page and in a second tab of the sender', () => withLogs([gw], async () => {
  const annCtx = await browser.newContext();
  const benCtx = await browser.newContext();
  const ann = `ann@${domain}`, ben = `ben@${domain}`;
  const a1 = await demoLogin(annCtx, 'ann');
  await openChat(a1, ben);
  // a second tab of ann (its own login: sessionStorage is per tab; the gateway session is one)
  const a2 = await examplePage(annCtx, `chat.html?with=${encodeURIComponent(ben)}`, 'ann');
  const b1 = await examplePage(benCtx, `chat.html?with=${encodeURIComponent(ann)}`, 'ben');

  const text = `hello ben, it is ${Date.now()}`;
  await typeAndSend(a1, text);
  const re = new RegExp(text);
  await waitText(b1, re, { selector: 'sparkgate-chat', why: '(ben\'s page)' });
  await waitText(a2, re, { selector: 'sparkgate-chat', why: '(ann\'s second tab)' });
  await waitText(a1, re, { selector: 'sparkgate-chat', why: '(ann\'s own page, by the echo)' });
  // the box is emptied once the send call answered (the echo may come first)
  await a1.waitForFunction(() => document.querySelector('sparkgate-chat').shadowRoot.getElementById('text').value === '', null, T);
  // the reply, sent from ben's page with the Send button, reaches both of ann's tabs
  await b1.fill('sparkgate-chat >> #text', 'hi ann, line one\nline two "quoted" <b>not bold</b>');
  await b1.click('sparkgate-chat >> #send');
  for (const p of [a1, a2]) await waitText(p, /line one line two "quoted" <b>not bold<\/b>/, { selector: 'sparkgate-chat' });
  // each message once in each page
  const count = (p) => p.evaluate((t) => [...document.querySelector('sparkgate-chat').shadowRoot.querySelectorAll('.msg .body')]
    .filter((e) => e.textContent === t).length, text);
  assert.equal(await count(a1), 1);
  assert.equal(await count(a2), 1);
  assert.equal(await count(b1), 1);
  // ann's own message is on her side, ben's is not
  assert.equal(await a2.evaluate((t) => [...document.querySelector('sparkgate-chat').shadowRoot.querySelectorAll('.msg.mine .body')]
    .some((e) => e.textContent === t), text), true);
  await screenshots(b1, 'example-chat');
  await annCtx.close();
  await benCtx.close();
}));

test('typing in one page shows "is typing" in the other user\'s page (chat states)', () => withLogs([gw], async () => {
  const annCtx = await browser.newContext();
  const benCtx = await browser.newContext();
  const a = await examplePage(annCtx, `chat.html?with=ben@${domain}`, 'ann');
  const b = await examplePage(benCtx, `chat.html?with=ann@${domain}`, 'ben');
  await b.type('sparkgate-chat >> #text', 'typing slowly', { delay: 20 });
  await waitText(a, new RegExp(`ben@${domain} is typing`), { selector: 'sparkgate-chat' });
  await b.press('sparkgate-chat >> #text', 'Enter');
  await waitText(a, /typing slowly/, { selector: 'sparkgate-chat' });
  const typing = await a.evaluate(() => document.querySelector('sparkgate-chat').shadowRoot.getElementById('typing').textContent);
  assert.equal(typing, '', 'the indicator goes when the message arrives');
  await annCtx.close();
  await benCtx.close();
}));

test('a conversation page opened later shows the history (MAM)', () => withLogs([gw], async () => {
  const marker = `history check ${Date.now()}`;
  assert.equal((await request('POST', rest(`/chat/message/dee@${domain}`), { body: marker, headers: basic('eve') })).status, 200);
  const ctx = await browser.newContext();
  // the first stream of the session gets the message from the gateway's event ring ...
  const p1 = await examplePage(ctx, `chat.html?with=dee@${domain}`, 'eve');
  await waitText(p1, new RegExp(marker), { selector: 'sparkgate-chat' });
  await p1.close();
  // ... a later tab only from the archive
  const p2 = await examplePage(ctx, `chat.html?with=dee@${domain}`, 'eve');
  await waitText(p2, new RegExp(marker), { selector: 'sparkgate-chat' });
  const n = await p2.evaluate((m) => [...document.querySelector('sparkgate-chat').shadowRoot.querySelectorAll('.msg.mine .body')]
    .filter((e) => e.textContent === m).length, marker);
  assert.equal(n, 1, 'shown once, on the sender\'s side');
  // paging: three more, pages of two; "Load earlier messages" goes back
  for (const t of ['page one', 'page two', 'page three']) {
    assert.equal((await request('POST', rest(`/chat/message/dee@${domain}`), { body: t, headers: basic('eve') })).status, 200);
  }
  await waitText(p2, /page three/, { selector: 'sparkgate-chat' }); // live (echo) first, so none arrives during the reload
  await p2.evaluate(() => {
    const chat = document.querySelector('sparkgate-chat');
    const peer = chat.getAttribute('with');
    chat.setAttribute('page-size', '2');
    chat.removeAttribute('with');
    chat.setAttribute('with', peer);
  });
  const bodies = () => p2.evaluate(() => [...document.querySelector('sparkgate-chat').shadowRoot.querySelectorAll('.msg .body')].map((e) => e.textContent));
  await waitText(p2, /page two.*page three/, { selector: 'sparkgate-chat' });
  assert.deepEqual(await bodies(), ['page two', 'page three']);
  // a double click loads the page once (the button is disabled, the log aria-busy, meanwhile)
  const busy = await p2.evaluate(() => {
    const root = document.querySelector('sparkgate-chat').shadowRoot;
    const b = root.querySelector('button.more');
    b.click();
    b.click();
    return { disabled: b.disabled, busy: root.getElementById('log').getAttribute('aria-busy') };
  });
  assert.deepEqual(busy, { disabled: true, busy: 'true' });
  await waitText(p2, new RegExp(`${marker}.*page one.*page two.*page three`), { selector: 'sparkgate-chat' });
  await new Promise((r) => setTimeout(r, 500));
  assert.deepEqual(await bodies(), [marker, 'page one', 'page two', 'page three']);
  await ctx.close();
}));

test('an XSS body is shown as text: no element is created and the handler never runs', () => withLogs([gw], async () => {
  const ctx = await browser.newContext();
  const page = await demoLogin(ctx, 'ann');
  await openChat(page, `ben@${domain}`);
  await page.evaluate(() => { window.__xss = 0; });
  const evil = '<img src=x onerror="window.__xss=1;document.title=\'pwned\'"><script>window.__xss=2</script>';
  assert.equal((await request('POST', rest(`/chat/message/ann@${domain}`), { body: evil, headers: basic('ben') })).status, 200);
  await waitText(page, /<img src=x onerror=/, { selector: 'sparkgate-chat' });
  await page.click('summary'); // the event log, folded by default
  await waitText(page, /<img src=x onerror=/, { selector: '#log' });
  await page.waitForTimeout(500);
  const seen = await page.evaluate(() => {
    const root = document.querySelector('sparkgate-chat').shadowRoot;
    const all = [document, root, ...[...document.querySelectorAll('*')].filter((e) => e.shadowRoot).map((e) => e.shadowRoot)];
    return {
      imgs: all.reduce((n, r) => n + r.querySelectorAll('img').length, 0),
      scripts: root.querySelectorAll('script').length,
      xss: window.__xss,
      title: document.title,
      body: [...root.querySelectorAll('.msg .body')].map((e) => e.textContent).pop(),
    };
  });
  assert.equal(seen.imgs, 0);
  assert.equal(seen.scripts, 0);
  assert.equal(seen.xss, 0);
  assert.notEqual(seen.title, 'pwned');
  assert.equal(seen.body, evil);
  await ctx.close();
}));

test('TOTP login through <sparkgate-login>', () => withLogs([gw], async () => {
  const r = await request('POST', rest('/totp/register/cid'), { body: PW });
  assert.equal(r.status, 200);
  const secret = new URL(r.json.otpauth).searchParams.get('secret');
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  await page.goto(`${origin}/sparkweb/examples/login.html`);
  await screenshots(page, 'example-login');
  // a wrong code fails visibly
  await loginThroughForm(page, 'cid', PW, totpCode(secret, 10));
  await waitText(page, /Sign-in failed: 40[01]/, { selector: 'sparkgate-login' });
  await loginThroughForm(page, 'cid', PW, totpCode(secret));
  await waitText(page, /Signed in as cid/, { selector: 'sparkgate-login' });
  await page.waitForFunction(() => window.sparkgate?.state === 'open', null, T);
  assert.match(gw.log(), /login user=cid ip=\S+ method=totp/);
  // the enrolment button draws the QR code the gateway answers
  await page.click('#signout');
  await page.fill('sparkgate-login >> #username', 'cid');
  await page.fill('sparkgate-login >> #password', PW);
  await page.click('sparkgate-login >> #totp-enrol');
  await page.waitForSelector('sparkgate-login >> img.qr', T);
  assert.match(await page.getAttribute('sparkgate-login >> img.qr', 'src'), /^data:image\/svg\+xml/);
  await screenshots(page, 'example-login-totp');
  await ctx.close();
}));

test('passkey: create with the password, then sign in with the passkey alone (virtual authenticator)', () => withLogs([gw], async () => {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  const cdp = await ctx.newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true,
      isUserVerified: true, automaticPresenceSimulation: true },
  });
  await page.goto(`${origin}/sparkweb/examples/login.html`);
  await page.fill('sparkgate-login >> #username', 'dee');
  await page.fill('sparkgate-login >> #password', PW);
  await page.click('sparkgate-login >> #passkey-create');
  await waitText(page, /Signed in as dee/, { selector: 'sparkgate-login' });
  assert.equal((await cdp.send('WebAuthn.getCredentials', { authenticatorId })).credentials.length, 1);
  await page.click('#signout');
  await waitText(page, /Sign in/, { selector: 'sparkgate-login' });
  await page.fill('sparkgate-login >> #username', 'dee');
  await page.click('sparkgate-login >> #passkey-login');
  await waitText(page, /Signed in as dee/, { selector: 'sparkgate-login' });
  await page.waitForFunction(() => window.sparkgate?.state === 'open', null, T);
  assert.match(gw.log(), /login user=dee ip=\S+ method=webauthn/);
  await ctx.close();
}));

test('group chat: join, post, leave with <sparkgate-rooms>', () => withLogs([gw], async () => {
  const annCtx = await browser.newContext();
  const benCtx = await browser.newContext();
  const a = await examplePage(annCtx, 'rooms.html', 'ann');
  const b = await examplePage(benCtx, 'rooms.html', 'ben');
  for (const p of [a, b]) {
    await p.fill('sparkgate-rooms >> #room', 'webroom');
    await p.press('sparkgate-rooms >> #room', 'Enter');
    await p.waitForSelector('sparkgate-rooms >> [role=tab][aria-selected=true]', T);
  }
  await waitText(a, /2 here/, { selector: 'sparkgate-rooms' });
  const text = `room hello ${Date.now()}`;
  await a.fill('sparkgate-rooms >> #text', text);
  await a.press('sparkgate-rooms >> #text', 'Enter');
  await waitText(b, new RegExp(text), { selector: 'sparkgate-rooms' });
  await waitText(a, new RegExp(text), { selector: 'sparkgate-rooms' });
  const side = (p) => p.evaluate((t) => [...document.querySelector('sparkgate-rooms').shadowRoot.querySelectorAll('.msg')]
    .filter((e) => e.querySelector('.body').textContent === t).map((e) => e.classList.contains('mine')), text);
  assert.deepEqual(await side(a), [true], 'ann sees her message once, as hers');
  assert.deepEqual(await side(b), [false], 'ben sees it once, as someone else\'s');
  await screenshots(a, 'example-rooms');
  await b.click('sparkgate-rooms >> #leave');
  await waitText(a, /1 here/, { selector: 'sparkgate-rooms' });

  // an invitation (G10 from ben) shows in ann's page with a Join button
  assert.equal((await request('PUT', rest('/groupchat/room/invroom'), { headers: basic('ben') })).status, 200);
  assert.equal((await request('POST', rest(`/groupchat/room/invroom/ann@${domain}`), { body: 'come <i>in</i>', headers: basic('ben') })).status, 200);
  await waitText(a, /ben(@\S+)? invites you to invroom@\S+ \(come <i>in<\/i>\)/, { selector: 'sparkgate-rooms' });
  await a.click('sparkgate-rooms >> .invite button >> text=Join');
  await a.waitForSelector('sparkgate-rooms >> [role=tab][aria-selected=true][data-room^="invroom@"]', T);
  await waitText(a, /2 here/, { selector: 'sparkgate-rooms' });
  await annCtx.close();
  await benCtx.close();
}));

test('group chat: a groupchat message from a room not joined here opens no tab; roomLost drops the tab; own presence is harmless', () => withLogs([gw], async () => {
  const ctx = await browser.newContext();
  const errors = [];
  const a = await ctx.newPage();
  a.on('pageerror', (e) => errors.push(e.message));
  await a.goto(`${origin}/sparkweb/examples/rooms.html`);
  await loginThroughForm(a, 'cid', PW);
  await a.waitForFunction(() => window.sparkgate?.state === 'open', null, T);
  await a.fill('sparkgate-rooms >> #room', 'hardroom');
  await a.press('sparkgate-rooms >> #room', 'Enter');
  await a.waitForSelector('sparkgate-rooms >> [role=tab][aria-selected=true][data-room^="hardroom@"]', T);
  await waitText(a, /hardroom@\S+: 1 here/, { selector: 'sparkgate-rooms' });
  // any JID may send type=groupchat: dee, from a plain XMPP client
  const conn = await xmppClient(prosody, 'dee', PW, 'spoof');
  try {
    conn.send(`<message to='cid@${domain}' type='groupchat'><body>not a room</body></message>`);
    conn.send(`<presence/>`);
    await a.evaluate(() => window.sparkgate.setPresence('away').catch(() => {})); // reflected to every tab
    await new Promise((r) => setTimeout(r, 1500));
  } finally {
    conn.close();
  }
  const tabs = () => a.evaluate(() => [...document.querySelector('sparkgate-rooms').shadowRoot.querySelectorAll('[role=tab]')].map((b) => b.dataset.room));
  assert.deepEqual((await tabs()).map((j) => j.split('@')[0]), ['hardroom']);
  assert.doesNotMatch(await a.textContent('sparkgate-rooms'), /not a room/);
  // what the gateway sends when it gives a room up after a reconnection (docs/events.md)
  const room = (await tabs())[0];
  assert.ok(await a.evaluate(() => window.sparkgate.constructor.name && import('/sparkweb/sparkgate.js').then((m) => m.EVENT_NAMES.includes('sparkgate.muc'))));
  await a.evaluate((jid) => window.sparkgate._emit('sparkgate.muc', { type: 'roomLost', room: jid, reason: 'item-not-found' }), room);
  assert.deepEqual(await tabs(), []);
  assert.deepEqual(errors, []);
  await ctx.close();
}));

test('screenshots of the remaining pages; nothing overflows at 360 px', () => withLogs([gw], async () => {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  for (const [file, name] of [['', 'examples-index'], ['roster.html', 'example-roster'], ['themed.html', 'example-themed'],
    ['simple.html', 'example-simple']]) {
    await page.goto(`${origin}/sparkweb/examples/${file}`);
    const { overflow } = await screenshots(page, name);
    assert.equal(overflow, 0, `${name} overflows`);
  }
  await page.goto(`${origin}/sparkweb/examples/themed.html?with=dee@${domain}`);
  await loginThroughForm(page, 'eve', PW);
  await page.waitForFunction(() => window.sparkgate?.state === 'open', null, T);
  await screenshots(page, 'example-themed-signed-in');
  await ctx.close();
}));

test('accessibility: every control of every component has a name; login and chat work from the keyboard alone', () => withLogs([gw], async () => {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  await page.goto(`${origin}/`);
  const unnamed = () => page.evaluate(() => {
    const out = [];
    for (const host of document.querySelectorAll('sparkgate-login, sparkgate-roster, sparkgate-chat, sparkgate-rooms')) {
      const root = host.shadowRoot;
      for (const el of root.querySelectorAll('input, textarea, select, button, [role=log]')) {
        const label = el.id && root.querySelector(`label[for="${el.id}"]`);
        const name = (el.getAttribute('aria-label') || '').trim() || (label && label.textContent.trim())
          || (el.tagName === 'BUTTON' && el.textContent.trim())
          || (el.getAttribute('aria-labelledby') && root.getElementById(el.getAttribute('aria-labelledby'))?.textContent.trim());
        if (!name) out.push(`${host.tagName.toLowerCase()} ${el.tagName.toLowerCase()}#${el.id}`);
      }
    }
    return out;
  });
  assert.deepEqual(await unnamed(), []);
  // keyboard only: focus the username, type, Tab to the password, Enter submits
  await page.focus('sparkgate-login >> #username');
  await page.keyboard.type('ann');
  await page.keyboard.press('Tab');
  await page.keyboard.type(PW);
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => /Signed In/.test(document.getElementById('status').textContent), null, T);
  // the roster's contact button takes Enter, and the chat box gets the focus
  await page.waitForSelector(`sparkgate-roster >> li[data-jid="ben@${domain}"] >> button.contact`, T);
  await page.focus(`sparkgate-roster >> li[data-jid="ben@${domain}"] >> button.contact`);
  // a presence change re-draws the list (what every chatapi.presence does): the focus stays
  const kept = await page.evaluate(() => {
    const roster = document.querySelector('sparkgate-roster');
    roster.render();
    const f = roster.shadowRoot.activeElement;
    return document.activeElement === roster && f?.classList.contains('contact') ? f.closest('li').dataset.jid : null;
  });
  assert.equal(kept, `ben@${domain}`);
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => document.querySelector('sparkgate-chat').getAttribute('with')?.startsWith('ben@'), null, T);
  const focused = await page.evaluate(() => document.activeElement?.tagName === 'SPARKGATE-CHAT'
    && document.querySelector('sparkgate-chat').shadowRoot.activeElement?.id);
  assert.equal(focused, 'text');
  await page.keyboard.type('typed without a mouse');
  await page.keyboard.press('Enter');
  await waitText(page, /typed without a mouse/, { selector: 'sparkgate-chat' });
  assert.deepEqual(await unnamed(), [], 'signed in, too');
  await ctx.close();
}));
