// resilience.test.mjs: check (b) of issue #5, upstream resilience. Bob sends alice a message
// over REST every 20 ms (300 in all) while alice listens on SSE; meanwhile the upstream goes
// away: Prosody dies (SIGKILL; a graceful SIGTERM in the second test) and comes back on the
// same ports and data directory after ~1.5 s, or (third test) only the TCP connections are cut
// by a proxy between the gateway and a Prosody that keeps running. Every message the gateway
// answered 200 for must reach alice's event stream exactly once, both sessions must come back
// without a new login (the same SSE streams carry on, no onDisconnect), and
// `sparkgate.reconnected` must be seen. A restarted Prosody has forgotten its XEP-0198
// sessions, so resumption fails and fresh sessions resend what was never acknowledged; a cut
// connection resumes. The figures are printed as one `resilience:` JSON line per test.
import { test, after } from 'node:test';
import fs from 'node:fs';
import net from 'node:net';
import assert from 'node:assert/strict';
import { startProsody } from '../harness/prosody.mjs';
import { startGateway, withLogs } from '../harness/gateway.mjs';
import { openSSE } from '../harness/sse.mjs';
import { request } from '../harness/http.mjs';
import { delay, freePort, makeTempDir, removeTempDir } from '../harness/proc.mjs';

const TOTAL = 300;
const INTERVAL_MS = 20;
const KILL_AT = 100; // the message after which the server goes away
const DOWN_MS = 1500;

const cleanups = [];
after(async () => {
  for (const fn of cleanups.reverse()) await fn();
});

/** A TCP relay to `port` whose connections cut() drops at once (both directions). */
async function startCutter(port) {
  const pairs = new Set();
  const server = net.createServer((down) => {
    const up = net.connect({ host: '127.0.0.1', port });
    const pair = { down, up };
    pairs.add(pair);
    const end = () => {
      pairs.delete(pair);
      down.destroy();
      up.destroy();
    };
    down.on('error', end).on('close', end);
    up.on('error', end).on('close', end);
    down.pipe(up);
    up.pipe(down);
  });
  const listenPort = await freePort();
  await new Promise((resolve) => server.listen(listenPort, '127.0.0.1', resolve));
  return {
    port: listenPort,
    cut() {
      const n = pairs.size;
      for (const { down, up } of [...pairs]) {
        down.resetAndDestroy();
        up.resetAndDestroy();
      }
      return n;
    },
    close: () => new Promise((resolve) => {
      for (const { down, up } of pairs) {
        down.destroy();
        up.destroy();
      }
      server.close(resolve);
    }),
  };
}

async function scenario(signal) {
  const dataDir = makeTempDir('sg-resil-');
  let prosody = await startProsody({ dir: dataDir });
  const cutter = signal === 'cut' ? await startCutter(prosody.c2sPort) : null;
  const env = { SPARKGATE_SESSION_RECONNECT_MAX: '60s' };
  if (cutter) env.SPARKGATE_XMPP_PORT = String(cutter.port);
  const gw = await startGateway({ prosody, env });
  cleanups.push(async () => {
    const res = await gw.stop();
    await cutter?.close();
    await prosody.stop();
    removeTempDir(dataDir);
    assert.equal(res.code, 0, `gateway exit ${JSON.stringify(res)}\n${gw.log().slice(-3000)}`);
  });
  return withLogs([gw, prosody], async () => {
    await prosody.register('alice', 'alice-pw');
    await prosody.register('bob', 'bob-pw');
    const rest = (p) => `${gw.url}/sparkweb/api/rest${p}`;
    const login = async (user) => {
      const r = await request('POST', rest(`/login/${user}`), { body: `${user}-pw` });
      assert.equal(r.status, 200, r.text);
      return r.json.token;
    };
    const alice = await login('alice');
    const bob = await login('bob');
    const sa = await openSSE(`${gw.url}/sparkweb/sse?token=${alice}`);
    const sb = await openSSE(`${gw.url}/sparkweb/sse?token=${bob}`);
    await sa.waitFor((e) => e.event === 'onConnect', 5000);
    await sb.waitFor((e) => e.event === 'onConnect', 5000);
    const loginsBefore = (gw.log().match(/ev=login /g) || []).length;

    const { c2sPort, httpPort } = prosody;
    const statuses = new Map(); // body -> HTTP status
    const sends = [];
    let killedAt = 0;
    let backAt = 0;
    let outage = null;
    const t0 = Date.now();
    for (let i = 0; i < TOTAL; i++) {
      const body = `m-${String(i).padStart(3, '0')}`;
      sends.push(request('POST', rest(`/chat/message/alice@${prosody.domain}`),
        { body, headers: { authorization: bob }, timeoutMs: 30000 })
        .then((r) => statuses.set(body, r.status), () => statuses.set(body, 'error')));
      if (i === KILL_AT) {
        outage = (async () => {
          killedAt = Date.now();
          if (cutter) { // the server stays; only the connections die
            assert.equal(cutter.cut(), 2);
            backAt = Date.now();
            return;
          }
          const exited = new Promise((resolve) => prosody.child.once('exit', resolve));
          if (signal === 'SIGKILL') prosody.child.kill('SIGKILL');
          else prosody.stop();
          await exited;
          await delay(DOWN_MS);
          prosody = await startProsody({ dir: dataDir, c2sPort, httpPort });
          backAt = Date.now();
        })();
      }
      await delay(INTERVAL_MS);
    }
    await Promise.all(sends);
    await outage;
    const sendMs = Date.now() - t0;

    const ok = [...statuses].filter(([, st]) => st === 200).map(([b]) => b);
    const rejected = [...statuses].filter(([, st]) => st !== 200);
    const bodies = () => sa.events.filter((e) => e.event === 'chatapi.chat')
      .map((e) => JSON.parse(e.data).body).filter((b) => typeof b === 'string' && b.startsWith('m-'));
    const missing = () => {
      const got = new Set(bodies());
      return ok.filter((b) => !got.has(b));
    };
    try {
      await sa.waitUntil(() => missing().length === 0, 30000, 'every accepted message');
    } catch (e) {
      e.message += `\nmissing ${missing().length}: ${missing().slice(0, 20).join(' ')}`;
      throw e;
    }
    const recA = await sa.waitFor((e) => e.event === 'sparkgate.reconnected', 10000);
    const recB = await sb.waitFor((e) => e.event === 'sparkgate.reconnected', 10000);
    const got = bodies();
    const counts = new Map();
    for (const b of got) counts.set(b, (counts.get(b) ?? 0) + 1);
    const duplicates = [...counts.values()].reduce((n, c) => n + c - 1, 0);
    const unexpected = got.filter((b) => statuses.get(b) !== 200);
    const dA = JSON.parse(recA.data);
    const dB = JSON.parse(recB.data);
    const figures = {
      signal, sent: TOTAL, answered200: ok.length, rejected: rejected.length,
      rejectedStatuses: [...new Set(rejected.map(([, st]) => st))],
      delivered: counts.size, duplicates, deliveredNot200: unexpected.length,
      serverDownMs: backAt - killedAt,
      aliceReconnected: dA, bobReconnected: dB,
      recoveryMsAfterRestart: Math.max(dA.downtime_ms, dB.downtime_ms) - (backAt - killedAt),
      filteredByGateway: (gw.log().match(/ev=duplicate /g) || []).length, sendMs,
    };
    if (process.env.SG_RESIL_LOG) fs.writeFileSync(`${process.env.SG_RESIL_LOG}.${signal}`, gw.log());
    console.log(`resilience: ${JSON.stringify(figures)}`);

    assert.equal(duplicates, 0, `duplicates: ${[...counts].filter(([, c]) => c > 1).map(([b]) => b).join(' ')}`);
    assert.ok(ok.length >= TOTAL * 0.95, `answered 200: ${ok.length}/${TOTAL} ${JSON.stringify(figures.rejectedStatuses)}`);
    // the sessions survived: no onDisconnect, the same streams, no new login
    assert.ok(!sa.ended && !sb.ended, 'event streams stayed open');
    assert.ok(!sa.events.some((e) => e.event === 'onDisconnect'));
    assert.ok(!sb.events.some((e) => e.event === 'onDisconnect'));
    assert.ok(sa.events.some((e) => e.event === 'sparkgate.reconnecting'));
    assert.equal((gw.log().match(/ev=login /g) || []).length, loginsBefore, 'no new login');
    if (cutter) { // XEP-0198: the same sessions continue; the stream itself resends only what
      // the server had not acknowledged when the link was cut (often 0, sometimes 1 or 2)
      assert.equal(dA.resumed, true, JSON.stringify(dA));
      assert.equal(dB.resumed, true, JSON.stringify(dB));
      assert.ok(dB.resent <= 5, JSON.stringify(dB));
      assert.equal((gw.log().match(/mod=xmpp ev=resumed /g) || []).length, 2);
    } else {
      assert.equal(dA.resumed, false, 'a restarted Prosody cannot resume');
      assert.ok(dA.downtime_ms >= DOWN_MS, JSON.stringify(dA));
    }
    // and they still work afterwards, both ways
    const r = await request('POST', rest(`/chat/message/bob@${prosody.domain}`), { body: 'after', headers: { authorization: alice } });
    assert.equal(r.status, 200, r.text);
    await sb.waitFor((e) => e.event === 'chatapi.chat' && JSON.parse(e.data).body === 'after', 5000);
    sa.close();
    sb.close();
  });
}

test('a killed server: every message answered 200 arrives once; sessions reconnect', () => scenario('SIGKILL'));

test('a server stopped gracefully: the same, with its offline copies filtered', () => scenario('SIGTERM'));

test('cut connections to a running server: both sessions resume (XEP-0198)', () => scenario('cut'));
