// auth.mjs: figures for the authentication paths (not part of `make test`). Starts Prosody and
// the release gateway on loopback, then for N users: password logins, refresh-token rotations
// (SQLite write-through), Basic-authenticated REST calls served from the password cache, and
// after a gateway restart the re-opening of every user's session from the credential vault
// (SCRAM SaltedPassword, no password) through POST /token/refresh. Prints rates and p50/p99.
// Usage: node bench/auth.mjs [users=300] [concurrency=32]
import { performance } from 'node:perf_hooks';
import http from 'node:http';
import { startProsody } from '../tests/harness/prosody.mjs';
import { startGateway } from '../tests/harness/gateway.mjs';
import { makeTempDir, removeTempDir } from '../tests/harness/proc.mjs';

const USERS = Number(process.argv[2] || 300);
const CONC = Number(process.argv[3] || 32);
const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });

function call(method, url, body = '', headers = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, agent, headers: { 'content-length': Buffer.byteLength(body), ...headers } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { text += c; });
      res.on('end', () => resolve({ status: res.statusCode, text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function phase(name, n, fn) {
  const lat = [];
  let next = 0, failed = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: CONC }, async () => {
    while (next < n) {
      const i = next++;
      const s = performance.now();
      const ok = await fn(i);
      lat.push(performance.now() - s);
      if (!ok) failed++;
    }
  }));
  const secs = (performance.now() - t0) / 1000;
  lat.sort((a, b) => a - b);
  const pct = (p) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))].toFixed(1);
  const line = `${name.padEnd(34)} n=${n} rate=${(n / secs).toFixed(0)}/s p50=${pct(0.5)}ms p99=${pct(0.99)}ms failed=${failed}`;
  console.log(line);
  return line;
}

const prosody = await startProsody({ mam: false });
const store = makeTempDir('sg-bench-auth-');
const users = Array.from({ length: USERS }, (_, i) => [`ba${i}`, `ba${i}-pw-Bench`]);
await prosody.registerMany(users);
const env = { SPARKGATE_LOG_LEVEL: 'info', SPARKGATE_AUTH_RATE_FREE_FAILURES: '1000' };
let gw = await startGateway({ prosody, storePath: store, env });
const rest = (p) => `${gw.url}/sparkweb/api/rest${p}`;
const tokens = [];
try {
  await phase('password login (opens sessions)', USERS, async (i) => {
    const r = await call('POST', rest(`/login/${users[i][0]}`), users[i][1]);
    if (r.status === 200) tokens[i] = JSON.parse(r.text);
    return r.status === 200;
  });
  await phase('refresh rotation (session online)', USERS, async (i) => {
    const r = await call('POST', rest('/token/refresh'), tokens[i].refreshToken);
    if (r.status === 200) tokens[i] = JSON.parse(r.text);
    return r.status === 200;
  });
  await phase('Basic REST call (password cache)', USERS, async (i) => {
    const auth = 'Basic ' + Buffer.from(`${users[i][0]}:${users[i][1]}`).toString('base64');
    const r = await call('GET', rest('/webauthn/credentials'), '', { authorization: auth });
    return r.status === 200;
  });
  await gw.stop();
  gw = await startGateway({ prosody, storePath: store, env });
  await phase('refresh after restart (vault re-open)', USERS, async (i) => {
    const r = await call('POST', rest('/token/refresh'), tokens[i].refreshToken);
    return r.status === 200;
  });
} finally {
  await gw.stop();
  await prosody.stop();
  removeTempDir(store);
  agent.destroy();
}
