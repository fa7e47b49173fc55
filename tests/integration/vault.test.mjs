// vault.test.mjs: the credential vault's fallback chain and the client address used by rate
// limits. With Prosody's internal_plain storage the SCRAM salt changes at every login, so a
// stored SaltedPassword is always stale: the gateway drops it and, only when
// vault.store_password is on, re-opens the session with the stored (encrypted) password.
// X-Forwarded-For counts only from a configured trusted proxy.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startProsody } from '../harness/prosody.mjs';
import { startGateway } from '../harness/gateway.mjs';
import { openSSE } from '../harness/sse.mjs';
import { request } from '../harness/http.mjs';
import { makeTempDir, removeTempDir } from '../harness/proc.mjs';

let prosody;

before(async () => {
  prosody = await startProsody({ mam: false, extraConfig: 'authentication = "internal_plain"' });
  await prosody.register('nina', 'nina-pw-Secret12');
});

after(async () => {
  if (prosody) await prosody.stop();
});

async function reopenAfterRestart(env) {
  const store = makeTempDir('sg-vault-store-');
  let g = await startGateway({ prosody, storePath: store, env });
  try {
    const l = await request('POST', `${g.url}/sparkweb/api/rest/login/nina`, { body: 'nina-pw-Secret12' });
    assert.equal(l.status, 200, l.text);
    assert.equal((await g.stop()).code, 0);
    g = await startGateway({ prosody, storePath: store, env });
    const r = await request('POST', `${g.url}/sparkweb/api/rest/token/refresh`, { body: l.json.refreshToken });
    return { r, log: g.log() };
  } finally {
    assert.equal((await g.stop()).code, 0);
    removeTempDir(store);
  }
}

test('without vault.store_password a stale SCRAM entry leaves no way back: the contract error', async () => {
  const { r, log } = await reopenAfterRestart({});
  assert.equal(r.status, 400, r.text);
  assert.equal(r.json.resource, 'xmpp session could not be established');
  assert.match(log, /entry_stale user=nina kind=scram/);
  assert.doesNotMatch(log, /kind=password/);
});

test('with vault.store_password the encrypted password re-opens the session', async () => {
  const { r, log } = await reopenAfterRestart({ SPARKGATE_VAULT_STORE_PASSWORD: 'true' });
  assert.equal(r.status, 200, r.text);
  assert.match(log, /entry_stale user=nina kind=scram/);
  assert.match(log, /reopen user=nina kind=password/);
});

test('X-Forwarded-For counts only from a trusted proxy', async () => {
  const env = { SPARKGATE_AUTH_RATE_FREE_FAILURES: '1', SPARKGATE_AUTH_RATE_BASE: '60s' };
  const fail = (g, user, xff) => request('POST', `${g.url}/sparkweb/api/rest/login/${user}`,
    { body: 'wrong-password', headers: xff ? { 'x-forwarded-for': xff } : {} });
  // behind a trusted proxy: each forwarded address has its own budget (10 failures)
  const proxied = await startGateway({ prosody, env: { ...env, SPARKGATE_HTTP_TRUSTED_PROXIES: '127.0.0.0/8, ::1' } });
  try {
    const codes = [];
    for (let i = 0; i < 12; i++) codes.push((await fail(proxied, `user${i}`, '198.51.100.7, 203.0.113.5')).status);
    assert.deepEqual(codes.slice(0, 10), Array(10).fill(401));
    assert.equal(codes[11], 429, 'the client address 203.0.113.5 is blocked');
    assert.equal((await fail(proxied, 'other', '203.0.113.6')).status, 401, 'another client is not');
    assert.match(proxied.log(), /rate_limited user=\S* ip=203\.0\.113\.5/);
    // a long forged prefix cannot push the proxy's entry out of the parsed header
    const long = await fail(proxied, 'other2', `${'1.2.3.4,'.repeat(300)} 203.0.113.5`);
    assert.equal(long.status, 429, 'still 203.0.113.5');
    // IPv6 clients count by /64: walking one's own prefix gives no fresh budget
    const v6 = [];
    for (let i = 1; i <= 12; i++) v6.push((await fail(proxied, `six${i}`, `2001:db8:1:2::${i.toString(16)}`)).status);
    assert.equal(v6[11], 429, v6.join(','));
    assert.equal((await fail(proxied, 'six99', '2001:db8:1:3::1')).status, 401, 'another /64');
  } finally {
    assert.equal((await proxied.stop()).code, 0);
  }
  // no trusted proxy: the header is ignored, the socket peer is the client
  const direct = await startGateway({ prosody, env });
  try {
    for (let i = 0; i < 11; i++) await fail(direct, `user${i}`, `203.0.113.${i}`);
    const r = await fail(direct, 'other', '203.0.113.99');
    assert.equal(r.status, 429);
    assert.match(direct.log(), /rate_limited user=\S* ip=127\.0\.0\.1/);
  } finally {
    assert.equal((await direct.stop()).code, 0);
  }
});
