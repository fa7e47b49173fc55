// auth.test.mjs: the token lifecycle and the password-based flows against a real Prosody:
// access + rotating refresh tokens (reuse revokes the family), tokens and revocations that
// survive a gateway restart, sessions re-opened from the credential vault (SCRAM
// SaltedPassword) without the password, Basic auth with the session opened on demand, in-band
// registration, TOTP enrolment (local SVG QR) and login with a replay guard, rate limits with
// Retry-After, and no secret in any log line.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { startProsody } from '../harness/prosody.mjs';
import { startGateway } from '../harness/gateway.mjs';
import { openSSE } from '../harness/sse.mjs';
import { request } from '../harness/http.mjs';
import { makeTempDir, removeTempDir } from '../harness/proc.mjs';
import { recordSecret } from '../harness/secrets.mjs';

const PASS = { erin: 'erin-pw-Secret1', frank: 'frank-pw-Secret2', gina: 'gina-pw-Secret3', hank: 'hank-pw-Secret4' };
const secrets = new Set(); // everything that must never appear in a log (this file's check)
const addSecret = secrets.add.bind(secrets);
secrets.add = (v) => { recordSecret(v); return addSecret(v); }; // and the suite-wide check
Object.values(PASS).forEach((p) => secrets.add(p));
let prosody, gw;
const storePath = makeTempDir('sg-auth-store-');
const gwEnv = { SPARKGATE_AUTH_RATE_FREE_FAILURES: '50' };

const rest = (p) => `${gw.url}/sparkweb/api/rest${p}`;
const post = (p, body, headers = {}) => request('POST', rest(p), { body, headers });
const basic = (u, p) => 'Basic ' + Buffer.from(`${u}:${p}`).toString('base64');

async function login(user, password = PASS[user]) {
  const r = await post(`/login/${user}`, password);
  if (r.status === 200) { secrets.add(r.json.token); secrets.add(r.json.refreshToken); }
  return r;
}

function totp(secretB32, t = Date.now() / 1000) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const c of secretB32.replace(/=+$/, '')) bits += alphabet.indexOf(c).toString(2).padStart(5, '0');
  const key = Buffer.from(bits.match(/.{8}/g).map((b) => parseInt(b, 2)));
  const msg = Buffer.alloc(8);
  msg.writeBigUInt64BE(BigInt(Math.floor(t / 30)));
  const h = createHmac('sha1', key).update(msg).digest();
  const o = h[19] & 15;
  return String((h.readUInt32BE(o) & 0x7fffffff) % 1e6).padStart(6, '0');
}

before(async () => {
  prosody = await startProsody({ mam: false });
  for (const u of ['erin', 'frank', 'gina']) await prosody.register(u, PASS[u]);
  gw = await startGateway({ prosody, storePath, env: gwEnv });
});

after(async () => {
  const res = gw ? await gw.stop() : null;
  if (prosody) await prosody.stop();
  removeTempDir(storePath);
  if (res) assert.equal(res.code, 0, `gateway exit ${JSON.stringify(res)}\n${gw.log().slice(-3000)}`);
});

test('usernames are case-insensitive: one account, one token subject', async () => {
  const r = await login('ERIN', PASS.erin);
  assert.equal(r.status, 200, r.text);
  assert.equal(JSON.parse(Buffer.from(r.json.token.split('.')[1], 'base64url')).sub, 'erin');
});

test('login answers an access token, a refresh token and its lifetime', async () => {
  const r = await login('erin');
  assert.equal(r.status, 200, r.text);
  assert.match(r.json.token, /^ey[\w-]+\.[\w-]+\.[\w-]+$/);
  assert.match(r.json.refreshToken, /^sgr_[\w-]{43}$/);
  assert.equal(r.json.expiresIn, 3600);
  const claims = JSON.parse(Buffer.from(r.json.token.split('.')[1], 'base64url'));
  assert.equal(claims.exp - claims.iat, 3600, 'default access lifetime is 1 h');
});

test('refresh rotates; reusing a spent refresh token revokes the whole family', async () => {
  const r = await login('erin');
  const r1 = await post('/token/refresh', r.json.refreshToken);
  assert.equal(r1.status, 200, r1.text);
  assert.notEqual(r1.json.refreshToken, r.json.refreshToken);
  secrets.add(r1.json.token); secrets.add(r1.json.refreshToken);
  // the JSON body form works too
  const r2 = await post('/token/refresh', JSON.stringify({ refreshToken: r1.json.refreshToken }), { 'content-type': 'application/json' });
  assert.equal(r2.status, 200, r2.text);
  secrets.add(r2.json.token); secrets.add(r2.json.refreshToken);
  const ok = await request('GET', rest('/webauthn/credentials'), { headers: { authorization: r2.json.token } });
  assert.equal(ok.status, 200, ok.text);
  // an attacker replays the first (spent) refresh token
  const replay = await post('/token/refresh', r.json.refreshToken);
  assert.equal(replay.status, 401);
  assert.match(replay.json.resource, /reused/);
  // the family is gone: the newest refresh token and its access token no longer work
  assert.equal((await post('/token/refresh', r2.json.refreshToken)).status, 401);
  const gone = await request('GET', rest('/webauthn/credentials'), { headers: { authorization: r2.json.token } });
  assert.equal(gone.status, 401);
  // the first login's access token belonged to the same family
  assert.equal((await request('GET', rest('/webauthn/credentials'), { headers: { authorization: r.json.token } })).status, 401);
  // garbage
  for (const body of ['', 'sgr_nope', 'x'.repeat(5000), '{"refreshToken":5}']) {
    const g = await post('/token/refresh', body);
    assert.ok(g.status === 400 || g.status === 401 || g.status === 413, `${g.status} for ${body.slice(0, 20)}`);
    assert.equal(g.json?.token, undefined);
  }
});

test('Basic auth works on REST calls and opens the session on demand', async () => {
  const peer = await login('frank');
  const s = await openSSE(`${gw.url}/sparkweb/sse?token=${peer.json.token}`);
  await s.waitFor((e) => e.event === 'onConnect', 5000);
  const to = `frank@${prosody.domain}`;
  // gina has no session yet: Basic opens one and the message goes out
  const r = await post(`/chat/message/${to}`, 'hello by basic', { authorization: basic('gina', PASS.gina) });
  assert.equal(r.status, 200, r.text);
  const ev = await s.waitFor((e) => e.event === 'chatapi.chat' && e.data.includes('hello by basic'), 5000);
  assert.match(JSON.parse(ev.data).from, /^gina@/);
  // without the "Basic " prefix (reference quirk) and from the cache
  const raw = Buffer.from(`gina:${PASS.gina}`).toString('base64');
  assert.equal((await post(`/chat/message/${to}`, 'again', { authorization: raw })).status, 200);
  // a wrong password is refused even though a session exists
  const bad = await post(`/chat/message/${to}`, 'no', { authorization: basic('gina', 'wrong') });
  assert.equal(bad.status, 401);
  assert.match(bad.headers['www-authenticate'] ?? '', /Basic/);
  s.close();
});

test('a gateway restart keeps tokens, revocations and the vault: sessions re-open without a password', async () => {
  const keep = await login('erin');
  const revoked = await login('frank');
  assert.equal((await post('/logout', '', { authorization: revoked.json.token })).status, 200);
  const before = gw.log().length;
  const res = await gw.stop();
  assert.equal(res.code, 0);
  gw = await startGateway({ prosody, storePath, env: gwEnv });
  assert.ok(gw.log().length >= 0 && before > 0);
  // the access token still works; the session comes back from the stored SCRAM credential
  const s = await openSSE(`${gw.url}/sparkweb/sse?token=${keep.json.token}`);
  assert.equal(s.status, 200);
  const hello = await s.waitFor((e) => e.event === 'onConnect', 10000);
  assert.equal(JSON.parse(hello.data).username ?? 'erin', 'erin');
  s.close();
  // the refresh token too (rotation after restart)
  const r = await post('/token/refresh', keep.json.refreshToken);
  assert.equal(r.status, 200, r.text);
  secrets.add(r.json.token); secrets.add(r.json.refreshToken);
  // what logout revoked stays revoked
  assert.equal((await request('GET', rest('/webauthn/credentials'), { headers: { authorization: revoked.json.token } })).status, 401);
  assert.equal((await post('/token/refresh', revoked.json.refreshToken)).status, 401);
  assert.match(gw.log(), /reopen|session_opening/);
});

test('a stale vault entry is dropped and a password-less call answers the contract error', async () => {
  await prosody.register('hank', PASS.hank);
  const l = await login('hank');
  assert.equal(l.status, 200, l.text);
  // the gateway restarts (no session) and the password changes behind its back: the stored
  // SCRAM credential (salt) no longer matches
  assert.equal((await gw.stop()).code, 0);
  await prosody.register('hank', 'hank-new-pw-Secret5');
  secrets.add('hank-new-pw-Secret5');
  gw = await startGateway({ prosody, storePath, env: gwEnv });
  const r = await post('/token/refresh', l.json.refreshToken);
  assert.equal(r.status, 400, r.text);
  assert.deepEqual(r.json, { resource: 'xmpp session could not be established', message: 'Exception', exception: 'IllegalArgumentException' });
  assert.match(gw.log(), /entry_stale user=hank kind=scram/);
  // the failure did not spend the refresh token: after a password login it still rotates
  assert.equal((await login('hank', 'hank-new-pw-Secret5')).status, 200);
  const again = await post('/token/refresh', l.json.refreshToken);
  assert.equal(again.status, 200, again.text);
  secrets.add(again.json.token); secrets.add(again.json.refreshToken);
});

test('in-band registration creates the account and logs in; duplicates are refused', async () => {
  const r = await post('/register/newbie', 'newbie-pw-Secret6');
  secrets.add('newbie-pw-Secret6');
  assert.equal(r.status, 200, r.text);
  secrets.add(r.json.token); secrets.add(r.json.refreshToken);
  assert.ok(await prosody.userExists('newbie'));
  const again = await post('/register/newbie', 'other-pw-Secret7');
  assert.equal(again.status, 400);
  assert.equal(again.json.resource, 'user exists');
  for (const [u, body] of [['bad user', 'x'], ['ok', ''], ['ok2', 'a\u0000b']]) {
    const b = await post(`/register/${encodeURIComponent(u)}`, body);
    assert.equal(b.status, 400, `${u}: ${b.text}`);
  }
});

test('with SASL2 + FAST on the server the vault keeps a FAST token, re-opens with it and stores the rotated one', async () => {
  const fp = await startProsody({ mam: false, fast: true });
  await fp.register('mona', 'mona-pw-Secret11');
  const store = makeTempDir('sg-fast-store-');
  let g = await startGateway({ prosody: fp, storePath: store });
  try {
    const l = await request('POST', `${g.url}/sparkweb/api/rest/login/mona`, { body: 'mona-pw-Secret11' });
    assert.equal(l.status, 200, l.text);
    await g.waitForLog(/stored user=mona kind=fast/, 5000);
    assert.equal((await g.stop()).code, 0);
    for (let round = 0; round < 2; round++) { // twice: the second re-open uses the rotated token
      g = await startGateway({ prosody: fp, storePath: store });
      const s = await openSSE(`${g.url}/sparkweb/sse?token=${l.json.token}`);
      assert.equal(s.status, 200);
      await s.waitFor((e) => e.event === 'onConnect', 10000);
      s.close();
      assert.match(g.log(), /reopen user=mona kind=fast/);
      await g.waitForLog(/stored user=mona kind=fast/, 5000);
      assert.equal((await g.stop()).code, 0);
    }
  } finally {
    await g.stop();
    await fp.stop();
    removeTempDir(store);
  }
});

test('registration on a server that does not allow it answers "user cannot be created"', async () => {
  const closed = await startProsody({ mam: false, allowRegistration: false });
  const g = await startGateway({ prosody: closed });
  try {
    const r = await request('POST', `${g.url}/sparkweb/api/rest/register/someone`, { body: 'someone-pw-Secret0' });
    secrets.add('someone-pw-Secret0');
    assert.equal(r.status, 400, r.text);
    assert.equal(r.json.resource, 'user cannot be created');
    assert.equal(await closed.userExists('someone'), false);
  } finally {
    assert.equal((await g.stop()).code, 0);
    await closed.stop();
  }
});

test('TOTP: enrolment gives an otpauth URI and a local SVG QR; login needs the code once plus a second factor', async () => {
  const e = await post('/totp/register/erin', PASS.erin);
  assert.equal(e.status, 200, e.text);
  assert.match(e.json.url, /^data:image\/svg\+xml;base64,/);
  assert.ok(!e.json.url.includes('google') && !e.json.url.includes('http'));
  const svg = Buffer.from(e.json.url.split(',')[1], 'base64').toString();
  assert.match(svg, /^<svg[^>]+viewBox/);
  const m = /^otpauth:\/\/totp\/[^?]+\?secret=([A-Z2-7]+)/.exec(e.json.otpauth);
  assert.ok(m, e.json.otpauth);
  const secret = m[1];
  secrets.add(secret);
  // re-enrolment keeps the secret (reference behaviour)
  const e2 = await post('/totp/register/erin', PASS.erin);
  assert.ok(e2.json.otpauth.includes(secret));
  // wrong password refused
  assert.equal((await post('/totp/register/erin', 'nope')).status, 401);

  // single factor is off: the code alone is not enough
  const alone = await post(`/totp/authenticate/erin/${totp(secret)}`, '');
  assert.equal(alone.status, 401);
  // wrong code
  const wrong = String((Number(totp(secret)) + 1) % 1e6).padStart(6, '0');
  assert.equal((await post(`/totp/authenticate/erin/${wrong}`, PASS.erin)).status, 400);
  // code + password
  const code = totp(secret);
  const ok = await post(`/totp/authenticate/erin/${code}`, PASS.erin);
  assert.equal(ok.status, 200, ok.text);
  secrets.add(ok.json.token); secrets.add(ok.json.refreshToken);
  // the same code again (replay) is refused
  const replay = await post(`/totp/authenticate/erin/${code}`, PASS.erin);
  assert.equal(replay.status, 400);
  assert.match(replay.json.resource, /already used/);
  // code + token of the user, next step
  const next = totp(secret, Date.now() / 1000 + 30);
  const withToken = await post(`/totp/authenticate/erin/${next}`, '', { authorization: ok.json.token });
  assert.equal(withToken.status, 200, withToken.text);
  secrets.add(withToken.json.token); secrets.add(withToken.json.refreshToken);
  // not enrolled; malformed codes
  assert.equal((await post(`/totp/authenticate/frank/${code}`, PASS.frank)).json.resource, 'user not registered for TOTP');
  for (const c of ['12345', '1234567', 'abcdef']) assert.equal((await post(`/totp/authenticate/erin/${c}`, PASS.erin)).status, 400);
});

test('rate limits: repeated failures get 429 with Retry-After, per user', async () => {
  const local = await startGateway({ prosody, env: { SPARKGATE_AUTH_RATE_FREE_FAILURES: '3', SPARKGATE_AUTH_RATE_BASE: '30s' } });
  try {
    const url = (u) => `${local.url}/sparkweb/api/rest/login/${u}`;
    const codes = [];
    for (let i = 0; i < 5; i++) codes.push((await request('POST', url('gina'), { body: `wrong-${i}` })).status);
    assert.deepEqual(codes.slice(0, 4), [401, 401, 401, 401]);
    assert.equal(codes[4], 429);
    const blocked = await request('POST', url('gina'), { body: PASS.gina });
    assert.equal(blocked.status, 429, 'even the right password waits');
    assert.ok(Number(blocked.headers['retry-after']) >= 1);
    assert.equal(blocked.json.exception, 'TooManyRequestsException');
    // another user from the same address is not blocked
    assert.equal((await request('POST', url('frank'), { body: PASS.frank })).status, 200);
    // the username's case does not give a fresh budget (the server treats them as one account)
    assert.equal((await request('POST', url('GINA'), { body: 'wrong' })).status, 429);
    assert.equal((await request('POST', url('Gina'), { body: PASS.gina })).status, 429);
    // parallel guesses are charged when they start, not when the server answers
    const burst = await Promise.all(Array.from({ length: 20 }, (_, i) =>
      request('POST', url('frank'), { body: `burst-${i}` }).then((r) => r.status)));
    assert.ok(burst.filter((c) => c === 401).length <= 4, burst.join(','));
    assert.ok(burst.filter((c) => c === 429).length >= 16, burst.join(','));
    assert.match(local.log(), /rate_limited/);
  } finally {
    const res = await local.stop();
    assert.equal(res.code, 0);
  }
});

test('no secret appears in any log line', async () => {
  const logs = gw.log() + prosody.logTail(100000);
  for (const s of secrets) assert.ok(!gw.log().includes(s), `gateway log contains a secret (${s.slice(0, 6)}...)`);
  assert.ok(logs.length > 0);
});
