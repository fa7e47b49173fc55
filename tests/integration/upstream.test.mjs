// upstream.test.mjs: when the XMPP server goes away for longer than session.reconnect_max
// (3 s here), the user's session ends cleanly: it first reconnects (a "sparkgate.reconnecting"
// event, sends are queued), then gives up: every SSE stream gets a final onDisconnect (with the
// count of queued messages it could not deliver) and is closed, calls answer a clear 5xx while
// the server is down, and once it is back the user's token re-opens the session from the
// credential vault (no new login) and a password login works again. A server that comes back
// in time is tested in resilience.test.mjs.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startProsody } from '../harness/prosody.mjs';
import { startGateway } from '../harness/gateway.mjs';
import { openSSE } from '../harness/sse.mjs';
import { request } from '../harness/http.mjs';
import { makeTempDir, removeTempDir } from '../harness/proc.mjs';

let prosody, gw;
const dataDir = makeTempDir('sg-upstream-');

after(async () => {
  const res = gw ? await gw.stop() : null;
  if (prosody) await prosody.stop();
  removeTempDir(dataDir);
  if (res) assert.equal(res.code, 0, `gateway exit ${JSON.stringify(res)}\n${gw.log().slice(-3000)}`);
});

test('server shutdown ends the session with a final event; the gateway survives', async () => {
  prosody = await startProsody({ mam: false, dir: dataDir });
  await prosody.register('dave', 'dave-pw');
  gw = await startGateway({ prosody, env: { SPARKGATE_SESSION_RECONNECT_MAX: '3s' } });
  const login = () => request('POST', `${gw.url}/sparkweb/api/rest/login/dave`, { body: 'dave-pw' });
  const r = await login();
  assert.equal(r.status, 200, r.text);
  const token = r.json.token;
  const s = await openSSE(`${gw.url}/sparkweb/sse?token=${token}`);
  await s.waitFor((e) => e.event === 'onConnect', 5000);

  const { c2sPort, httpPort } = prosody;
  const sendUrl = `${gw.url}/sparkweb/api/rest/chat/message/x@${prosody.domain}`;
  const stoppedAt = Date.now();
  await prosody.stop();
  await s.waitFor((e) => e.event === 'sparkgate.reconnecting', 5000);
  // while it reconnects, a send is accepted for delivery (queued)
  const queued = await request('POST', sendUrl, { body: 'queued', headers: { authorization: token } });
  assert.equal(queued.status, 200, `send while reconnecting: ${queued.status} ${queued.text}`);
  const bye = await s.waitFor((e) => e.event === 'onDisconnect', 10000);
  const gaveUpMs = Date.now() - stoppedAt;
  assert.equal(JSON.parse(bye.data).reason, 'session-closed');
  assert.equal(JSON.parse(bye.data).undelivered, 1, bye.data);
  assert.ok(gaveUpMs >= 2500 && gaveUpMs < 8000, `gave up after ${gaveUpMs} ms (reconnect_max 3 s)`);
  assert.ok(!s.events.some((e) => e.event === 'sparkgate.reconnected'));
  await s.closed;

  // the token outlives the session: a call re-opens it from the vault, which fails while the
  // server is down (a clear 5xx), and works again once it is back (below)
  const send = await request('POST', sendUrl, { body: 'hi', headers: { authorization: token } });
  assert.ok(send.status === 502 || send.status === 504, `send while down: ${send.status} ${send.text}`);

  // while the server is down, a login fails with a clear 5xx, and nothing crashes
  const down = await login();
  assert.ok(down.status === 502 || down.status === 504, `login while down: ${down.status}`);
  assert.equal(down.json.message, 'Exception');

  prosody = await startProsody({ mam: false, c2sPort, httpPort, dir: dataDir }); // same accounts
  const back = await request('POST', sendUrl, { body: 'hi', headers: { authorization: token } });
  assert.equal(back.status, 200, `the old token re-opens the session from the vault: ${back.text}`);
  const again = await login();
  assert.equal(again.status, 200, again.text);
});
