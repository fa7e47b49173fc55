// webauthn.test.mjs: the passkey endpoints (contract A4-A7) end to end against a real Prosody,
// with the software authenticator of lib/webauthn-soft.mjs (P-256, Ed25519 and RSA keys, none /
// packed / packed-x5c attestation): registration and login, several credentials per user,
// list and delete, the refresh branch of A6, challenge binding and expiry rules, origin and RP
// checks, replayed assertions and cloned authenticators, malformed input, and a gateway restart
// between registration and login (the session re-opens from the vault).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startProsody } from '../harness/prosody.mjs';
import { startGateway } from '../harness/gateway.mjs';
import { request } from '../harness/http.mjs';
import { makeTempDir, removeTempDir } from '../harness/proc.mjs';
import { SoftAuthenticator } from './lib/webauthn-soft.mjs';

const PW = 'jade-pw-Secret9';
let prosody, gw, origin;
const storePath = makeTempDir('sg-webauthn-store-');
const env = { SPARKGATE_AUTH_RATE_FREE_FAILURES: '100' };

const rest = (p) => `${gw.url}/sparkweb/api/rest${p}`;
const post = (p, body, headers = {}) => request('POST', rest(p), { body: typeof body === 'string' ? body : JSON.stringify(body), headers });

async function start() {
  gw = await startGateway({ prosody, storePath, env });
  origin = `http://localhost:${gw.port}`;
}

async function enrol(user, auth, password = PW) {
  const s = await post(`/webauthn/register/start/${user}`, password);
  assert.equal(s.status, 200, s.text);
  return post(`/webauthn/register/finish/${user}`, auth.create(s.json.credentials, origin));
}

async function assertion(user, auth, overrides) {
  const s = await post(`/webauthn/authenticate/start/${user}`, '');
  assert.equal(s.status, 200, s.text);
  return { start: s.json, body: auth.get(s.json.assertion, origin, overrides) };
}

before(async () => {
  prosody = await startProsody({ mam: false });
  for (const u of ['jade', 'kai', 'lou']) await prosody.register(u, PW);
  await start();
});

after(async () => {
  const res = gw ? await gw.stop() : null;
  if (prosody) await prosody.stop();
  removeTempDir(storePath);
  if (res) assert.equal(res.code, 0, `gateway exit ${JSON.stringify(res)}\n${gw.log().slice(-3000)}`);
});

test('registration start answers the contract JSON; a wrong password is refused', async () => {
  const s = await post('/webauthn/register/start/jade', PW);
  assert.equal(s.status, 200, s.text);
  const pk = s.json.credentials.publicKey;
  assert.equal(pk.rp.id, 'localhost');
  assert.equal(pk.rp.name, 'sparkweb');
  assert.equal(pk.user.name, 'jade');
  assert.match(pk.challenge, /^[\w-]{43}$/);
  assert.match(pk.user.id, /^[\w-]+$/);
  assert.deepEqual(pk.pubKeyCredParams.map((p) => p.alg), [-7, -8, -257]);
  assert.ok(Array.isArray(pk.excludeCredentials));
  assert.equal(pk.attestation, 'none');
  const bad = await post('/webauthn/register/start/jade', 'wrong');
  assert.equal(bad.status, 401);
});

for (const [alg, attestation] of [['ES256', 'none'], ['EdDSA', 'packed'], ['RS256', 'packed-x5c'], ['ES256', 'packed-x5c']]) {
  test(`register and log in with ${alg} / ${attestation}`, async () => {
    const a = new SoftAuthenticator({ alg, attestation });
    const r = await enrol('kai', a);
    assert.equal(r.status, 200, r.text);
    assert.match(r.json.token, /^ey/);
    const { start: st, body } = await assertion('kai', a);
    assert.equal(st.assertion.publicKey.rpId, 'localhost');
    assert.ok(st.assertion.publicKey.allowCredentials.some((c) => c.id === body.id));
    const f = await post('/webauthn/authenticate/finish/kai', body);
    assert.equal(f.status, 200, f.text);
    assert.match(f.json.token, /^ey/);
  });
}

test('several credentials per user: list, exclude on enrolment, delete', async () => {
  const login = await post('/login/kai', PW);
  const auth = { authorization: login.json.token };
  const list = await request('GET', rest('/webauthn/credentials'), { headers: auth });
  assert.equal(list.status, 200, list.text);
  assert.equal(list.json.credentials.length, 4);
  for (const c of list.json.credentials) {
    assert.match(c.id, /^[\w-]+$/);
    assert.ok([-7, -8, -257].includes(c.alg));
    assert.equal(typeof c.signCount, 'number');
  }
  const s = await post('/webauthn/register/start/kai', PW);
  assert.equal(s.json.credentials.publicKey.excludeCredentials.length, 4);
  const victim = list.json.credentials[0].id;
  assert.equal((await request('DELETE', rest(`/webauthn/credentials/${victim}`), { headers: auth })).status, 200);
  assert.equal((await request('DELETE', rest(`/webauthn/credentials/${victim}`), { headers: auth })).status, 404);
  assert.equal((await request('GET', rest('/webauthn/credentials'), { headers: auth })).json.credentials.length, 3);
  assert.equal((await request('GET', rest('/webauthn/credentials'))).status, 401);
  // another user cannot delete kai's credentials
  const lou = await post('/login/lou', PW);
  const other = list.json.credentials[1].id;
  assert.equal((await request('DELETE', rest(`/webauthn/credentials/${other}`), { headers: { authorization: lou.json.token } })).status, 404);
});

test('A6 with a valid token of the user is the refresh branch; "null" falls into the challenge', async () => {
  const login = await post('/login/lou', PW);
  const r = await post('/webauthn/authenticate/start/lou', '', { authorization: login.json.token });
  assert.equal(r.status, 200, r.text);
  assert.match(r.json.token, /^ey/);
  assert.notEqual(r.json.token, login.json.token);
  const c = await post('/webauthn/authenticate/start/lou', '', { authorization: 'null' });
  assert.equal(c.status, 200);
  assert.deepEqual(c.json.assertion.publicKey.allowCredentials, []);
  // another user's token does not refresh lou
  const kai = await post('/login/kai', PW);
  const x = await post('/webauthn/authenticate/start/lou', '', { authorization: kai.json.token });
  assert.ok(x.json.assertion, 'challenge branch');
});

test('verification failures: origin, RP, challenge, type, UP, signature, replay, clone, no ceremony', async () => {
  const a = new SoftAuthenticator({ alg: 'ES256' });
  assert.equal((await enrol('jade', a)).status, 200);
  const cases = {
    origin: { origin: 'https://evil.example' },
    rpId: { rpId: 'evil.example' },
    challenge: { challenge: Buffer.alloc(32, 1).toString('base64url') },
    type: { type: 'webauthn.create' },
    up: { up: false },
    signature: { corruptSignature: true },
    crossOrigin: { crossOrigin: true },
  };
  for (const [name, o] of Object.entries(cases)) {
    const { body } = await assertion('jade', a, o);
    const f = await post('/webauthn/authenticate/finish/jade', body);
    assert.equal(f.status, 400, `${name}: ${f.text}`);
    assert.match(f.json.resource, /^WebAuthn authentication failed/, name);
    assert.equal(f.json.token, undefined);
  }
  // a good assertion, then the very same one again: the challenge was spent
  const { body } = await assertion('jade', a);
  assert.equal((await post('/webauthn/authenticate/finish/jade', body)).status, 200);
  const replay = await post('/webauthn/authenticate/finish/jade', body);
  assert.equal(replay.status, 400);
  assert.match(replay.json.resource, /no pending authentication/);
  // a clone with an old counter is caught by the signature counter
  const clone = a.clone();
  clone.resetSignCount(0);
  const c = await assertion('jade', clone);
  const cf = await post('/webauthn/authenticate/finish/jade', c.body);
  assert.equal(cf.status, 400);
  assert.match(cf.json.resource, /sign count|counter/);
  // the registration challenge cannot finish an authentication and vice versa
  const s = await post('/webauthn/register/start/jade', PW);
  const cred = new SoftAuthenticator().create(s.json.credentials, origin);
  const wrongKind = await post('/webauthn/authenticate/finish/jade', cred);
  assert.equal(wrongKind.status, 400);
  // a registration whose challenge belongs to another user
  const s2 = await post('/webauthn/register/start/lou', PW);
  const cross = await post('/webauthn/register/finish/jade', new SoftAuthenticator().create(s2.json.credentials, origin));
  assert.equal(cross.status, 400);
});

test('a newer start or a garbage finish does not steal a pending ceremony', async () => {
  const a = new SoftAuthenticator({ alg: 'ES256' });
  assert.equal((await enrol('jade', a)).status, 200);
  const first = await assertion('jade', a);
  // someone else starts (public call) and posts garbage for jade meanwhile
  assert.equal((await post('/webauthn/authenticate/start/jade', '')).status, 200);
  assert.equal((await post('/webauthn/authenticate/finish/jade', 'garbage')).status, 400);
  const f = await post('/webauthn/authenticate/finish/jade', first.body);
  assert.equal(f.status, 200, f.text);
});

test("A6's refresh branch stays in the token's family: a family revocation reaches it", async () => {
  const l = await post('/login/jade', PW);
  const r6 = await post('/webauthn/authenticate/start/jade', '', { authorization: l.json.token });
  assert.equal(r6.status, 200, r6.text);
  const rot = await post('/token/refresh', l.json.refreshToken);
  assert.equal(rot.status, 200);
  assert.equal((await post('/token/refresh', l.json.refreshToken)).status, 401, 'reuse revokes the family');
  const after = await request('GET', rest('/webauthn/credentials'), { headers: { authorization: r6.json.token } });
  assert.equal(after.status, 401, 'the token minted by A6 went with its family');
});

test('malformed bodies get 400 JSON errors and store nothing', async () => {
  const login = await post('/login/lou', PW);
  const before = (await request('GET', rest('/webauthn/credentials'), { headers: { authorization: login.json.token } })).json.credentials.length;
  const s = await post('/webauthn/register/start/lou', PW);
  const good = new SoftAuthenticator().create(s.json.credentials, origin);
  const bodies = [
    'not json', '{}', '[]', JSON.stringify({ ...good, type: 'x' }),
    JSON.stringify({ ...good, response: { ...good.response, attestationObject: 'AAAA' } }),
    JSON.stringify({ ...good, response: { ...good.response, attestationObject: good.response.attestationObject.slice(0, 40) } }),
    JSON.stringify({ ...good, response: { ...good.response, clientDataJSON: '!!!' } }),
    Buffer.from([0xff, 0xfe, 0x00, 0x80]).toString('latin1'),
  ];
  for (const b of bodies) {
    await post('/webauthn/register/start/lou', PW); // a fresh ceremony each time
    const r = await post('/webauthn/register/finish/lou', b);
    assert.equal(r.status, 400, `${b.slice(0, 30)}: ${r.text}`);
    assert.equal(r.json.message, 'Exception');
  }
  const after = (await request('GET', rest('/webauthn/credentials'), { headers: { authorization: login.json.token } })).json.credentials.length;
  assert.equal(after, before);
  assert.equal((await post('/webauthn/authenticate/finish/lou', 'garbage')).status, 400);
  assert.equal((await post('/webauthn/register/start/bad%20user', PW)).status, 400);
});

test('a gateway restart between registration and login: the passkey works and the session re-opens', async () => {
  const a = new SoftAuthenticator({ alg: 'EdDSA', attestation: 'packed' });
  assert.equal((await enrol('lou', a)).status, 200);
  await post('/logout', '', { authorization: (await post('/login/lou', PW)).json.token });
  assert.equal((await gw.stop()).code, 0);
  await start();
  const { body } = await assertion('lou', a);
  const f = await post('/webauthn/authenticate/finish/lou', body);
  assert.equal(f.status, 200, f.text);
  assert.match(gw.log(), /login user=lou ip=\S+ method=webauthn/);
  const sse = await request('GET', rest('/webauthn/credentials'), { headers: { authorization: f.json.token } });
  assert.equal(sse.status, 200);
});
