// webauthn.test.mjs: passkeys through the demo page in real headless Chromium, with Chromium's
// virtual authenticator (CDP WebAuthn domain) standing in for a security key: create a passkey
// with the password once, log out, restart the gateway, then sign in with the passkey alone.
// The session comes back from the credential vault (no password after the restart).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';
import { startProsody } from '../harness/prosody.mjs';
import { startGateway } from '../harness/gateway.mjs';
import { freePort, makeTempDir, removeTempDir } from '../harness/proc.mjs';

let prosody, gw, browser;
const storePath = makeTempDir('sg-browser-store-');
let env;

before(async () => {
  prosody = await startProsody({ mam: false });
  await prosody.register('ivy', 'ivy-pw-Secret8');
  const port = await freePort();
  env = { SPARKGATE_HTTP_LISTEN: `127.0.0.1:${port}` }; // fixed: the page origin must not change
  gw = await startGateway({ prosody, storePath, env });
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox'],
  });
});

after(async () => {
  await browser?.close();
  const res = gw ? await gw.stop() : null;
  if (prosody) await prosody.stop();
  removeTempDir(storePath);
  if (res) assert.equal(res.code, 0, `gateway exit ${JSON.stringify(res)}\n${gw.log().slice(-3000)}`);
});

test('a passkey made in Chromium logs in after a gateway restart, without the password', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  const cdp = await context.newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true,
      isUserVerified: true, automaticPresenceSimulation: true },
  });
  const url = `http://localhost:${gw.port}/sparkweb/index.html`;
  await page.goto(url);
  await page.fill('#username', 'ivy');
  await page.fill('#password', 'ivy-pw-Secret8');
  await page.click('#passkey-create');
  await page.waitForFunction(() => /Signed In/.test(document.getElementById('status').textContent), null, { timeout: 15000 })
    .catch(async (e) => { throw new Error(`${e.message}; status: ${await page.textContent('#status')}\n${gw.log().slice(-2000)}`); });
  const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
  assert.equal(credentials.length, 1);
  assert.match(gw.log(), /registered user=ivy alg=-7 fmt=none/);

  await page.click('#logout');
  await page.waitForFunction(() => /Logged out/.test(document.getElementById('status').textContent));

  assert.equal((await gw.stop()).code, 0);
  gw = await startGateway({ prosody, storePath, env });

  await page.goto(url);
  await page.fill('#username', 'ivy');
  await page.click('#passkey-login');
  await page.waitForFunction(() => /Signed In/.test(document.getElementById('status').textContent), null, { timeout: 15000 })
    .catch(async (e) => { throw new Error(`${e.message}; status: ${await page.textContent('#status')}\n${gw.log().slice(-2000)}`); });
  assert.match(gw.log(), /login user=ivy ip=\S+ method=webauthn/);
  const after = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
  assert.ok(after.credentials[0].signCount >= 1);

  // a passkey sign-in for a user without passkeys fails cleanly in the page
  await page.click('#logout');
  await page.fill('#username', 'nobody');
  await page.click('#passkey-login');
  await page.waitForFunction(() => /failed/.test(document.getElementById('status').textContent), null, { timeout: 15000 });
  await context.close();
});
