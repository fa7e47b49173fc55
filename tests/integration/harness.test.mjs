// harness.test.mjs: checks the test harness itself: a real Prosody (plain and STARTTLS) with
// users from prosodyctl and in-band registration, raw SASL PLAIN logins, and the gateway/SSE/
// HTTP helpers against a stand-in gateway (tests/harness/fixtures/fake-gateway.mjs).

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { logTail, startGateway, withLogs } from '../harness/gateway.mjs';
import { post, request } from '../harness/http.mjs';
import { repoRoot } from '../harness/proc.mjs';
import { startProsody } from '../harness/prosody.mjs';
import { openSSE, SSEParser } from '../harness/sse.mjs';
import { openClient } from '../harness/xmpp-raw.mjs';

const FAKE_GATEWAY = path.join(repoRoot, 'tests', 'harness', 'fixtures', 'fake-gateway.mjs');

/** Logs in with SASL PLAIN over a fresh raw connection; resolves { ok, reply, conn }. */
async function plainLogin(prosody, user, password) {
  const { conn } = await openClient({
    port: prosody.c2sPort, domain: prosody.domain, tls: prosody.tls,
    ca: prosody.caFile ? fs.readFileSync(prosody.caFile) : undefined,
  });
  const res = await conn.authPlain(user, password);
  return { ...res, conn };
}

describe('prosody harness (plain c2s)', () => {
  let prosody;
  before(async () => {
    prosody = await startProsody();
  });
  after(async () => {
    const dir = prosody?.dir;
    const { code } = await prosody.stop();
    assert.equal(code, 0, 'prosody exits cleanly on SIGTERM');
    assert.equal(fs.existsSync(dir), process.env.SG_KEEP_TMP === '1', 'temp dir removed by stop()');
  });

  it('uses loopback ports below the ephemeral range and no certificate', () => {
    const [low] = fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    for (const port of [prosody.c2sPort, prosody.httpPort]) {
      assert.ok(port >= 20000 && port < low, `port ${port} below ${low}`);
    }
    assert.equal(prosody.caFile, undefined);
    assert.ok(fs.readdirSync(path.join(prosody.dir, 'certs')).length === 0);
    assert.match(fs.readFileSync(prosody.configPath, 'utf8'), /"mam"/);
  });

  it('prosodyctl user logs in with SASL PLAIN and binds', () => withLogs(prosody, async () => {
    await prosody.register('alice', 'alice-pass');
    assert.ok(prosody.userExists('alice'));
    const { ok, reply, conn } = await plainLogin(prosody, 'alice', 'alice-pass');
    try {
      assert.ok(ok, reply);
      assert.match(reply, /^<success/);
      assert.match(await conn.bind('harness'), /^alice@localhost\/harness$/);
    } finally {
      conn.close();
    }
  }));

  it('a wrong password yields <failure>', async () => {
    const { ok, reply, conn } = await plainLogin(prosody, 'alice', 'not-the-password');
    conn.close();
    assert.equal(ok, false);
    assert.match(reply, /^<failure[\s\S]*<not-authorized\/>/);
  });

  it('offers PLAIN, SCRAM-SHA-1 and in-band registration without encryption', async () => {
    const { conn, features } = await openClient({ port: prosody.c2sPort });
    conn.close();
    assert.match(features, /<mechanism>PLAIN<\/mechanism>/);
    assert.match(features, /<mechanism>SCRAM-SHA-1<\/mechanism>/);
    assert.match(features, /iq-register/);
    assert.doesNotMatch(features, /<required\/>/);
  });

  it('registerMany creates users in-band, existing ones are reported', async () => {
    const users = Array.from({ length: 40 }, (_, i) => [`bulk${i}`, `pw${i}`]);
    assert.deepEqual(await prosody.registerMany(users, { concurrency: 4 }), { created: 40, exists: 0 });
    assert.deepEqual(await prosody.registerMany([['bulk3', 'other'], { user: 'bulk-new', password: 'x' }]),
      { created: 1, exists: 1 });
    const { ok, conn } = await plainLogin(prosody, 'bulk17', 'pw17');
    conn.close();
    assert.ok(ok);
  });
});

describe('prosody harness (STARTTLS, no MAM)', () => {
  let prosody;
  before(async () => {
    prosody = await startProsody({ tls: true, mam: false });
  });
  after(() => prosody?.stop());

  it('requires STARTTLS and accepts a login over it', () => withLogs(prosody, async () => {
    assert.ok(fs.existsSync(prosody.caFile));
    assert.doesNotMatch(fs.readFileSync(prosody.configPath, 'utf8'), /"mam"/);
    const { conn, features } = await openClient({ port: prosody.c2sPort });
    conn.close();
    assert.match(features, /<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required\/><\/starttls>/);
    await prosody.register('bob', 'bob-pass');
    const { ok, conn: c2 } = await plainLogin(prosody, 'bob', 'bob-pass'); // STARTTLS with caFile first
    c2.close();
    assert.ok(ok);
  }));
});

describe('SSE parser', () => {
  it('handles every line ending, split chunks, comments, BOM and the dispatch rules', () => {
    const text = '\uFEFF:c1\r\ndata: a\r\ndata:b\r\r\nevent: x\ndata\nid: 7\n\nevent: nodata\n\nid: 8\rdata:  two spaces\r\rdata: unterminated';
    // Feed it whole and one character at a time; both must give the same result.
    for (const step of [text.length, 1, 2, 3]) {
      const events = [];
      let comments = 0;
      const p = new SSEParser({ onEvent: (e) => events.push(e), onComment: () => comments++ });
      for (let i = 0; i < text.length; i += step) p.feed(text.slice(i, i + step));
      assert.deepEqual(events, [
        { event: 'message', data: 'a\nb', id: '' },
        { event: 'x', data: '', id: '7' },
        { event: 'message', data: ' two spaces', id: '8' },
      ], `step ${step}`);
      assert.equal(comments, 1);
    }
  });
});

describe('gateway, SSE and HTTP helpers (stand-in gateway)', () => {
  let prosody;
  let gw;
  before(async () => {
    prosody = await startProsody({ mam: false });
    process.env.SPARKGATE_BIN_PROBE = 'must-not-leak'; // inherited SPARKGATE_* must be dropped
    gw = await startGateway({ prosody, binary: FAKE_GATEWAY, env: { SPARKGATE_SSE_HEARTBEAT: '2s' } });
    delete process.env.SPARKGATE_BIN_PROBE;
  });
  after(async () => {
    await gw?.stop();
    await prosody?.stop();
  });

  it('passes the Prosody settings in the environment', () => withLogs([gw, prosody], async () => {
    assert.match(gw.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    const { status, json } = await request('GET', `${gw.url}/env`);
    assert.equal(status, 200);
    assert.deepEqual(json, {
      SPARKGATE_HTTP_LISTEN: `127.0.0.1:${gw.port}`,
      SPARKGATE_HTTP_PUBLIC_URL: `http://localhost:${gw.port}`, // browsers' origin (WebAuthn)
      SPARKGATE_XMPP_DOMAIN: 'localhost',
      SPARKGATE_XMPP_HOST: '127.0.0.1',
      SPARKGATE_XMPP_PORT: String(prosody.c2sPort),
      SPARKGATE_XMPP_TLS: 'off',
      SPARKGATE_STORE_PATH: gw.storePath,
      SPARKGATE_LOG_LEVEL: 'debug',
      SPARKGATE_SSE_HEARTBEAT: '2s',
    });
  }));

  it('request() sends JSON bodies and parses JSON replies', async () => {
    const res = await post(`${gw.url}/echo`, { hello: 'world' });
    assert.equal(res.status, 201);
    assert.equal(res.headers['content-type'], 'application/json');
    assert.deepEqual(res.json, { method: 'POST', type: 'application/json', body: { hello: 'world' } });
    const missing = await request('GET', `${gw.url}/nope`);
    assert.equal(missing.status, 404);
    assert.deepEqual(missing.json, { error: 'not_found' });
  });

  it('openSSE exposes a non-200 status without throwing', async () => {
    const sse = await openSSE(`${gw.url}/events`);
    await sse.closed;
    assert.equal(sse.status, 401);
    assert.deepEqual(sse.json(), { error: 'unauthorized' });
    assert.equal(sse.events.length, 0);
  });

  it('openSSE parses a live stream and waitFor sees past and future events', async () => {
    const sse = await openSSE(`${gw.url}/events`, { headers: { authorization: 'Bearer good', 'last-event-id': '0' } });
    try {
      assert.equal(sse.status, 200);
      assert.match(sse.headers['content-type'], /^text\/event-stream/);
      const last = await sse.waitFor((e) => e.id === '4', 5000);
      assert.equal(last.data, 'caf\u00e9 \u2603');
      const ready = await sse.waitFor('ready', 100); // already received
      assert.deepEqual(JSON.parse(ready.data), { resumed_from: '0' });
      assert.deepEqual(sse.events.map((e) => [e.event, e.data, e.id]), [
        ['ready', '{"resumed_from":"0"}', '1'],
        ['chat', 'line one\nline two', '2'],
        ['message', 'no-space', '3'],
        ['message', 'caf\u00e9 \u2603', '4'],
      ]);
      assert.equal(sse.comments, 2);
      assert.deepEqual(sse.commentTexts, [' hello', ' heartbeat']);
      assert.equal(sse.retry, 1500);
      assert.equal(sse.lastEventId, '4');
      await assert.rejects(sse.waitFor('never', 100), /timeout after 100 ms/);
    } finally {
      await sse.close();
    }
    await gw.waitForLog(/ev=stream_closed/, 2000); // the server saw the client leave
  });

  it('waitFor rejects when the stream ends first', async () => {
    const sse = await openSSE(`${gw.url}/events`, { headers: { authorization: 'Bearer good', 'x-end': '1' } });
    await assert.rejects(sse.waitFor('never', 5000), /event stream ended/);
    assert.equal(sse.events.length, 4);
  });

  it('logTail shows the key=value log', () => {
    assert.match(logTail(gw, 200), /ev=listening addr=127\.0\.0\.1:\d+/);
    assert.match(gw.logTail(200), /ev=request method=GET path=\/env/);
  });
});

describe('gateway harness failures and shutdown', () => {
  it('startGateway throws with the log tail when the gateway exits early', async () => {
    await assert.rejects(
      startGateway({ binary: FAKE_GATEWAY, env: { FAKE_GATEWAY_FAIL: 'bad setting' } }),
      (err) => /gateway did not start/.test(err.message) && /ev=config msg="bad setting"/.test(err.message),
    );
  });

  it('stop() resolves with the exit status and removes the temp dir', async () => {
    const gw = await startGateway({ binary: FAKE_GATEWAY });
    const { code, signal } = await gw.stop();
    assert.equal(code, 0);
    assert.equal(signal, null);
    assert.match(gw.log(), /ev=stopping signal=SIGTERM/);
    assert.equal(fs.existsSync(gw.dir), process.env.SG_KEEP_TMP === '1');
  });

  it('kill() delivers a signal; stop() still cleans up', async () => {
    const gw = await startGateway({ binary: FAKE_GATEWAY });
    gw.kill('SIGKILL');
    assert.deepEqual(await gw.exited, { code: null, signal: 'SIGKILL' });
    assert.deepEqual(await gw.stop(), { code: null, signal: 'SIGKILL' });
  });
});
