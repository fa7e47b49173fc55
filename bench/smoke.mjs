// smoke.mjs: the 1,000-user smoke benchmark (not part of `make test`). Starts Prosody and the
// release gateway on loopback, logs N users in (each with one SSE stream), sends messages from
// user i to user i+1 through REST, and prints: gateway RSS per user, login rate, and the
// REST POST -> recipient SSE latency p50/p99/max. Usage: node bench/smoke.mjs [users] [messages]
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import http from 'node:http';
import { startProsody } from '../tests/harness/prosody.mjs';
import { startGateway } from '../tests/harness/gateway.mjs';

const USERS = Number(process.argv[2] || 1000);
const MESSAGES = Number(process.argv[3] || 2000);
const RATE = Number(process.argv[4] || 200); // messages per second, open loop
const CONCURRENCY = 32;
const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });

function rssKiB(pid) {
  const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/);
  return Number(m[1]);
}
function cpuTicks(pid) {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return Number(f[11]) + Number(f[12]);
}

function post(url, body, headers = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', agent, headers: { 'content-length': Buffer.byteLength(body), ...headers } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { text += c; });
      res.on('end', () => resolve({ status: res.statusCode, text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

// A lean SSE reader: calls onEvent(name, data) per event.
function sse(url, onEvent) {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers: { accept: 'text/event-stream' } }, (res) => {
      if (res.statusCode !== 200) { reject(new Error(`sse ${res.statusCode}`)); return; }
      let buf = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => {
        buf += chunk;
        let i;
        while ((i = buf.indexOf('\r\n\r\n')) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 4);
          let name = 'message', data = '';
          for (const line of block.split('\r\n')) {
            if (line.startsWith('event: ')) name = line.slice(7);
            else if (line.startsWith('data: ')) data += line.slice(6);
          }
          onEvent(name, data);
        }
      });
      resolve(req);
    });
    req.on('error', reject);
  });
}

async function pool(n, fn) {
  let next = 0;
  const workers = Array.from({ length: CONCURRENCY }, async () => {
    while (next < n) { const i = next++; await fn(i); }
  });
  await Promise.all(workers);
}

const pct = (arr, p) => arr[Math.min(arr.length - 1, Math.floor(arr.length * p))];

const prosody = await startProsody({ mam: false });
const users = Array.from({ length: USERS }, (_, i) => `u${i}`);
console.log(`registering ${USERS} users...`);
await prosody.registerMany(users.map((u) => [u, `pw-${u}`]));
const gw = await startGateway({ prosody, binary: process.env.SPARKGATE_BIN, env: { SPARKGATE_LOG_LEVEL: 'info' } });
const base = rssKiB(gw.pid);
const tokens = new Array(USERS);
const pending = new Map(); // message tag -> send time
const latencies = [];
let received = 0;

try {
  const t0 = performance.now();
  await pool(USERS, async (i) => {
    const r = await post(`${gw.url}/sparkweb/api/rest/login/${users[i]}`, `pw-${users[i]}`);
    if (r.status !== 200) throw new Error(`login ${users[i]}: ${r.status} ${r.text}`);
    tokens[i] = JSON.parse(r.text).token;
  });
  const loginSecs = (performance.now() - t0) / 1000;
  const streams = [];
  await pool(USERS, async (i) => {
    streams.push(await sse(`${gw.url}/sparkweb/sse?token=${tokens[i]}`, (name, data) => {
      if (name !== 'chatapi.chat') return;
      const body = JSON.parse(data).body;
      const t = pending.get(body);
      if (t !== undefined) { latencies.push(performance.now() - t); pending.delete(body); received++; }
    }));
  });
  await new Promise((r) => setTimeout(r, 1000));
  const rssUsers = rssKiB(gw.pid);
  const cpu0 = cpuTicks(gw.pid);
  await new Promise((r) => setTimeout(r, 5000));
  const idleCpuTicks = cpuTicks(gw.pid) - cpu0;

  // open loop: message k leaves at t1 + k / RATE whatever the answers do
  const t1 = performance.now();
  const sends = [];
  for (let k = 0; k < MESSAGES; k++) {
    const due = t1 + (k * 1000) / RATE;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    const from = k % USERS, to = (k + 1) % USERS;
    const tag = `m${k}`;
    pending.set(tag, performance.now());
    sends.push(post(`${gw.url}/sparkweb/api/rest/chat/message/${users[to]}@${prosody.domain}`, tag, { authorization: tokens[from] })
      .then((r) => { if (r.status !== 200) throw new Error(`send: ${r.status} ${r.text}`); }));
  }
  await Promise.all(sends);
  const deadline = Date.now() + 10000;
  while (pending.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  const sendSecs = (performance.now() - t1) / 1000;
  latencies.sort((a, b) => a - b);
  const rssEnd = rssKiB(gw.pid);

  const rows = [
    ['users with a live session and one SSE stream', USERS],
    ['login rate (logins/s, concurrency ' + CONCURRENCY + ')', (USERS / loginSecs).toFixed(0)],
    ['gateway RSS at start (KiB)', base],
    ['gateway RSS with all users (KiB)', rssUsers],
    ['gateway RSS per user (KiB)', ((rssUsers - base) / USERS).toFixed(1)],
    ['gateway CPU while idle, 5 s (ms)', idleCpuTicks * 10],
    ['messages sent / delivered', `${MESSAGES} / ${received}`],
    ['offered message rate (msg/s, open loop)', RATE],
    ['achieved message rate (msg/s)', (MESSAGES / sendSecs).toFixed(0)],
    ['REST -> SSE latency p50 (ms)', pct(latencies, 0.5)?.toFixed(2)],
    ['REST -> SSE latency p99 (ms)', pct(latencies, 0.99)?.toFixed(2)],
    ['REST -> SSE latency max (ms)', latencies.at(-1)?.toFixed(2)],
    ['gateway RSS at end (KiB)', rssEnd],
  ];
  const md = ['| figure | value |', '|---|---|', ...rows.map(([k, v]) => `| ${k} | ${v} |`)].join('\n');
  console.log(md);
  mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
  writeFileSync(new URL('./results/smoke.md', import.meta.url), `# Smoke benchmark (${new Date().toISOString()})\n\nProsody without MAM, plain c2s on loopback, release build.\n\n${md}\n`);
  writeFileSync(new URL('./results/smoke.csv', import.meta.url), rows.map(([k, v]) => `"${k}",${v}`).join('\n') + '\n');
  for (const s of streams) s.destroy();
  if (received !== MESSAGES) process.exitCode = 1;
} finally {
  agent.destroy();
  await gw.stop();
  await prosody.stop();
}
