// slow-sse.mjs: the slow-consumer benchmark (not part of `make test`; the 100-stream version is
// tests/integration/slow.test.mjs). Starts Prosody and the gateway (build/sparkgate or
// $SPARKGATE_BIN) with sse.max_queue = 64 KiB, opens N event streams that never read (raw
// sockets), spread over U users, sends the users chat messages of B bytes from another user
// until the gateway has closed every stream as too slow, sends as much again, and prints the
// gateway's RSS and descriptors at each step.
// Usage: node bench/slow-sse.mjs [streams=1000] [users=4] [bodyKiB=12]
import { writeFileSync, mkdirSync } from 'node:fs';
import { startProsody } from '../tests/harness/prosody.mjs';
import { startGateway } from '../tests/harness/gateway.mjs';
import { request } from '../tests/harness/http.mjs';
import { slowConsumerRun, MiB } from '../tests/harness/slow-sse.mjs';

const STREAMS = Number(process.argv[2] || 1000);
const USERS = Number(process.argv[3] || 4);
const BODY = Number(process.argv[4] || 12) * 1024;
const MAX_QUEUE = 64 * 1024;

const prosody = await startProsody({ mam: false });
const users = Array.from({ length: USERS }, (_, i) => `slow${i}`);
for (const u of [...users, 'sender']) await prosody.register(u, `${u}-bench-pw`);
const asan = [process.env.ASAN_OPTIONS, 'quarantine_size_mb=8'].filter(Boolean).join(':');
const gw = await startGateway({ prosody, env: {
  SPARKGATE_SSE_MAX_QUEUE: String(MAX_QUEUE), SPARKGATE_SSE_MAX_STREAMS_PER_USER: '10000',
  SPARKGATE_LOG_LEVEL: 'info', ASAN_OPTIONS: asan,
} });
let code = 0;
try {
  const login = async (u) => {
    const r = await request('POST', `${gw.url}/sparkweb/api/rest/login/${u}`, { body: `${u}-bench-pw` });
    if (r.status !== 200) throw new Error(`login ${u}: ${r.status}`);
    return r.json.token;
  };
  const tokens = {};
  for (const u of users) tokens[u] = await login(u);
  const sender = await login('sender');
  const fig = await slowConsumerRun({ gw, domain: prosody.domain, tokens, senderToken: sender,
    streams: STREAMS, bodyBytes: BODY, maxRounds: 1000 });
  const mb = (x) => `${(x / MiB).toFixed(1)} MiB`;
  const lines = [
    `streams=${STREAMS} users=${USERS} body=${BODY / 1024} KiB sse.max_queue=${MAX_QUEUE / 1024} KiB binary=${gw.binary ?? process.env.SPARKGATE_BIN ?? 'build/sparkgate'}`,
    `rounds to close every stream: ${fig.rounds} (${fig.rounds * USERS} messages, ${fig.rounds * 2 * STREAMS} event frames for the streams)`,
    `closed as too slow: ${fig.slowClosed}/${STREAMS}; sockets read to their end afterwards: ${fig.drained.end} closed, ${fig.drained.open} still open`,
    `RSS: start ${mb(fig.rss.start)}, ${STREAMS} streams open ${mb(fig.rss.open)}, after phase 1 ${mb(fig.rss.phase1)}, after phase 2 (as many messages again) ${mb(fig.rss.phase2)}, peak (VmHWM) ${mb(fig.rss.peak)}`,
    `growth while streams filled and were closed: ${mb(fig.rss.phase1 - fig.rss.open)} (bound: streams x max_queue = ${mb(STREAMS * MAX_QUEUE)}); phase 2: ${mb(fig.rss.phase2 - fig.rss.phase1)}`,
    `descriptors: start ${fig.fds.start}, open ${fig.fds.open}, end ${fig.fds.end}`,
    `wall time ${fig.seconds.toFixed(1)} s`,
  ];
  console.log(lines.join('\n'));
  mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
  writeFileSync(new URL(`./results/slow-sse-${STREAMS}.md`, import.meta.url),
    `# bench/slow-sse.mjs, ${STREAMS} never-reading streams (${new Date().toISOString().slice(0, 10)})\n\n\`\`\`\n${lines.join('\n')}\n\`\`\`\n`);
  if (fig.slowClosed < STREAMS || fig.drained.open > 0) code = 1;
} finally {
  const res = await gw.stop();
  await prosody.stop();
  if (res.code !== 0) code = 1;
}
process.exit(code);
