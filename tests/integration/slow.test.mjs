// slow.test.mjs: slow consumers (docs/events.md). 100 event streams that never read, for four
// users, while a fifth user sends them large chat messages: every stream is closed once its
// queue passes sse.max_queue, the gateway's memory stays bounded (and flat while more events
// come), and a reading stream that was closed as too slow resumes with Last-Event-ID and gets
// every message exactly once. The 1,000-stream version is bench/slow-sse.mjs.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startProsody } from '../harness/prosody.mjs';
import { startGateway, withLogs } from '../harness/gateway.mjs';
import { openSSE } from '../harness/sse.mjs';
import { request } from '../harness/http.mjs';
import { slowConsumerRun, MiB } from '../harness/slow-sse.mjs';

const STREAMS = 100;
const MAX_QUEUE = 64 * 1024;
const USERS = ['sa', 'sb', 'sc', 'sd'];
let prosody, gw;

before(async () => {
  prosody = await startProsody({ mam: false });
  for (const u of [...USERS, 'sender']) await prosody.register(u, `${u}-slow-pw`);
  // ASan keeps freed memory in quarantine (256 MiB by default), which would hide what the
  // gateway itself holds
  const asan = [process.env.ASAN_OPTIONS, 'quarantine_size_mb=8'].filter(Boolean).join(':');
  gw = await startGateway({ prosody, env: {
    SPARKGATE_SSE_MAX_QUEUE: String(MAX_QUEUE), SPARKGATE_SSE_MAX_STREAMS_PER_USER: '1000',
    SPARKGATE_LOG_LEVEL: 'info', ASAN_OPTIONS: asan,
  } });
});

after(async () => {
  const res = gw ? await gw.stop() : null;
  if (prosody) await prosody.stop();
  if (res) assert.equal(res.code, 0, `gateway exit ${JSON.stringify(res)}\n${gw.log().slice(-3000)}`);
});

async function login(user) {
  const r = await request('POST', `${gw.url}/sparkweb/api/rest/login/${user}`, { body: `${user}-slow-pw` });
  assert.equal(r.status, 200, r.text);
  return r.json.token;
}

const bodies = (s) => s.events.filter((e) => e.event === 'chatapi.chat' && JSON.parse(e.data).body !== undefined)
  .map((e) => JSON.parse(e.data).body.split(':').slice(0, 2).join(':'));

test(`${STREAMS} streams that never read are closed; memory stays bounded and flat; a reader resumes`, (t) => withLogs([gw], async () => {
  const t0 = Date.now();
  const tokens = {};
  for (const u of USERS) tokens[u] = await login(u);
  const sender = await login('sender');

  // one reading stream of "sa" that stops reading for a while: it is closed as too slow too
  const reader = await openSSE(`${gw.url}/sparkweb/sse?token=${tokens.sa}`);
  await reader.waitFor('onConnect');
  reader.res.pause();

  t.diagnostic(`logged in after ${Date.now() - t0} ms`);
  const fig = await slowConsumerRun({ gw, domain: prosody.domain, tokens, senderToken: sender,
    streams: STREAMS, bodyBytes: 12 * 1024, extraSlow: 1 });
  const mb = (x) => (x / MiB).toFixed(1);
  t.diagnostic(`rounds=${fig.rounds} slow_closed=${fig.slowClosed} rss start=${mb(fig.rss.start)} `
    + `open=${mb(fig.rss.open)} phase1=${mb(fig.rss.phase1)} phase2=${mb(fig.rss.phase2)} peak=${mb(fig.rss.peak)} MiB `
    + `fds start=${fig.fds.start} open=${fig.fds.open} end=${fig.fds.end} drained=${JSON.stringify(fig.drained)} `
    + `${fig.seconds.toFixed(1)} s`);

  assert.equal(fig.slowClosed, STREAMS + 1, 'every never-reading stream (and the paused reader) was closed');
  assert.equal(fig.drained.open, 0, 'no slow socket is left open');
  // every stream's socket is closed (the load generator's keep-alive connections remain)
  assert.ok(fig.fds.end <= fig.fds.start + 12, `descriptors back near ${fig.fds.start}: ${fig.fds.end}`);
  // at most max_queue per stream at any time, plus allocator slack
  const bound = STREAMS * MAX_QUEUE * 1.5 + 24 * MiB;
  assert.ok(fig.rss.peak - fig.rss.open < bound, `peak ${mb(fig.rss.peak)} MiB`);
  assert.ok(fig.rss.phase1 - fig.rss.open < bound, `growth ${mb(fig.rss.phase1 - fig.rss.open)} MiB < ${mb(bound)} MiB`);
  assert.ok(fig.rss.phase2 - fig.rss.phase1 < 8 * MiB, `flat while more events come: ${mb(fig.rss.phase2 - fig.rss.phase1)} MiB`);

  // the reader: what it got before it was cut, then the rest after Last-Event-ID, exactly once
  const t1 = Date.now();
  reader.res.resume();
  await reader.closed;
  t.diagnostic(`reader closed after ${Date.now() - t1} ms`);
  const seen = reader.events.at(-1).id; // the last event dispatched (a frame may be cut)
  // (a reset may discard what the client's kernel still held: the reader may have none)
  const again = await openSSE(`${gw.url}/sparkweb/sse?token=${tokens.sa}`, { headers: { 'last-event-id': seen } });
  try {
    const last = `${2 * fig.rounds}:sa`;
    await again.waitUntil(() => bodies(again).includes(last), 20000, last);
    t.diagnostic(`replayed ${bodies(again).length} messages after ${Date.now() - t1} ms`);
    assert.equal(again.events.find((e) => e.event === 'sparkgate.gap'), undefined);
    const got = [...bodies(reader), ...bodies(again)];
    const want = Array.from({ length: 2 * fig.rounds }, (_, k) => `${k + 1}:sa`);
    assert.deepEqual(got, want);
  } finally {
    again.close();
  }
}));
