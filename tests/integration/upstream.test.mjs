// upstream.test.mjs: when the XMPP server goes away, the user's session ends cleanly: every
// SSE stream gets a final onDisconnect and is closed, the user's tokens stop working, and the
// gateway keeps serving (a login against the restarted server works again).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startProsody } from '../harness/prosody.mjs';
import { startGateway } from '../harness/gateway.mjs';
import { openSSE } from '../harness/sse.mjs';
import { request } from '../harness/http.mjs';

let prosody, gw;

after(async () => {
  const res = gw ? await gw.stop() : null;
  if (prosody) await prosody.stop();
  if (res) assert.equal(res.code, 0, `gateway exit ${JSON.stringify(res)}\n${gw.log().slice(-3000)}`);
});

test('server shutdown ends the session with a final event; the gateway survives', async () => {
  prosody = await startProsody({ mam: false });
  await prosody.register('dave', 'dave-pw');
  gw = await startGateway({ prosody });
  const login = () => request('POST', `${gw.url}/sparkweb/api/rest/login/dave`, { body: 'dave-pw' });
  const r = await login();
  assert.equal(r.status, 200, r.text);
  const token = r.json.token;
  const s = await openSSE(`${gw.url}/sparkweb/sse?token=${token}`);
  await s.waitFor((e) => e.event === 'onConnect', 5000);

  const { c2sPort, httpPort } = prosody;
  await prosody.stop();
  const bye = await s.waitFor((e) => e.event === 'onDisconnect', 10000);
  assert.equal(JSON.parse(bye.data).reason, 'session-closed');
  await s.closed;

  const send = await request('POST', `${gw.url}/sparkweb/api/rest/chat/message/x@${prosody.domain}`, { body: 'hi', headers: { authorization: token } });
  assert.equal(send.status, 401, 'tokens of an ended session are revoked');

  // while the server is down, a login fails with a clear 5xx, and nothing crashes
  const down = await login();
  assert.ok(down.status === 502 || down.status === 504, `login while down: ${down.status}`);
  assert.equal(down.json.message, 'Exception');

  prosody = await startProsody({ mam: false, c2sPort, httpPort });
  await prosody.register('dave', 'dave-pw');
  const again = await login();
  assert.equal(again.status, 200, again.text);
});
