// run.mjs: the benchmark driver behind `make bench`. Starts a throw-away Prosody (harness
// config, MAM off) and the release gateway with production settings, drives the C load
// generator (bench/loadgen) and writes bench/results/<scenario>.md + .csv.
//
//   node bench/run.mjs [all|scale|latency|cm|fanout ...] [--users 1000,5000,10000,20000]
//        [--tls-users 1000,5000] [--idle 15] [--secs 10] [--cm-sessions 1000]
//        [--latency-users 1000] [--streams 50]
// Method and figures: bench/README.md.
import fs from 'node:fs';
import path from 'node:path';

import { startProsody } from '../tests/harness/prosody.mjs';
import { startGateway } from '../tests/harness/gateway.mjs';
import {
  Loadgen, saveFigures, writeSummary, benchDir, buildLoadgen, cpuMs, delay, ensureFdLimit, f1, f2, fdCount, machineNote,
  makeAccounts, repoRoot, rssKiB, softFdLimit, writeResults,
} from './lib.mjs';

ensureFdLimit(200000);

const argv = process.argv.slice(2);
const opt = (name, def) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : def;
};
const list = (s) => String(s).split(',').filter(Boolean).map(Number);
const scenarios = argv.filter((a, i) => !a.startsWith('--') && !(i > 0 && argv[i - 1].startsWith('--')));
const want = (s) => scenarios.length === 0 || scenarios.includes('all') || scenarios.includes(s);

const SCALE_USERS = list(opt('users', '1000,5000,10000,20000'));
const TLS_USERS = list(opt('tls-users', '1000,5000'));
const IDLE_S = Number(opt('idle', 15));
const SECS = Number(opt('secs', 10));
const LAT_USERS = Number(opt('latency-users', 1000));
const CM_SESSIONS = Number(opt('cm-sessions', 1000));
const STREAMS = Number(opt('streams', 50));
const CONC = Number(opt('concurrency', 64));
const DOMAIN = 'localhost';
const DATA = path.join(repoRoot, 'build-loadgen', 'prosody-data'); // accounts survive runs
const GW_BIN = process.env.SPARKGATE_BIN || path.join(repoRoot, 'build', 'sparkgate');
const NOTE = machineNote();

const maxUsers = Math.max(...(want('scale') ? SCALE_USERS : [0]), ...(want('scale') ? TLS_USERS : [0]),
  want('latency') ? 2 * LAT_USERS : 0, want('cm') ? CM_SESSIONS + 2 : 0, 4);
await makeAccounts(path.join(DATA, 'data'), DOMAIN, maxUsers);
const LOADGEN = buildLoadgen();

/** Prosody + gateway (optional) + load generator; `fn` gets them; everything stops after. */
async function withStack({ tls = false, gateway = true, src = 1 }, fn) {
  const prosody = await startProsody({ dir: DATA, mam: false, tls, logLevel: 'warn', startTimeoutMs: 60000 });
  let gw = null, lg = null;
  try {
    if (gateway) {
      gw = await startGateway({
        prosody, binary: GW_BIN, readyTimeoutMs: 20000,
        env: { SPARKGATE_LOG_LEVEL: 'info', SPARKGATE_SESSION_MAX_SESSIONS: 1000000 },
      });
    }
    const args = ['--domain', DOMAIN, '--xmpp', `127.0.0.1:${prosody.c2sPort}`,
      '--bosh', `127.0.0.1:${prosody.httpPort}/http-bind`, '--ws', `127.0.0.1:${prosody.httpPort}/xmpp-websocket`,
      '--src', String(src)];
    if (gw) args.push('--gw', `127.0.0.1:${gw.port}`);
    lg = new Loadgen(LOADGEN, args);
    await lg.next(10000); // hello
    return await fn({ prosody, gw, lg });
  } finally {
    await lg?.quit();
    await gw?.stop();
    await prosody.stop();
  }
}

const settle = () => delay(2000);
const loginTimeout = (n) => 120000 + n * 50;

/* ---- 1. scale ---------------------------------------------------------------------------- */
async function scale() {
  const rows = [];
  let stopReason = '';
  // The gateway holds two descriptors per user (SSE + XMPP) and every process here has the
  // same RLIMIT_NOFILE, so that limit caps the users one gateway can take on this machine.
  const fdCap = Math.floor((softFdLimit() - 200) / 2 / 100) * 100;
  for (const tls of [false, true]) {
    let steps = tls ? TLS_USERS : SCALE_USERS;
    if (!steps.length) continue;
    if (steps.some((n) => n > fdCap)) {
      stopReason += ` Steps above ${fdCap} users (${steps.filter((n) => n > fdCap).join(', ')}) were not run: ` +
        `the descriptor limit is ${softFdLimit()} per process (ulimit -n; the hard limit could not be raised here) and ` +
        `the gateway needs two per user, so ${fdCap} users is the last step.`;
      steps = [...steps.filter((n) => n < fdCap), fdCap];
    }
    const top = Math.max(...steps);
    await withStack({ tls, src: top > 25000 ? 4 : 1 }, async ({ prosody, gw, lg }) => {
      await settle();
      const rss0 = rssKiB(gw.pid), prss0 = rssKiB(prosody.pid);
      let have = 0, streams = 0;
      for (const n of steps) {
        const r = await lg.cmd(`login ${have} ${n - have} ${CONC}`, loginTimeout(n - have));
        const failed = (n - have) - r.logged_in + r.streams_failed;
        have = n;
        await settle();
        const rss = rssKiB(gw.pid), prss = rssKiB(prosody.pid);
        const c0 = cpuMs(gw.pid), pc0 = cpuMs(prosody.pid), t0 = Date.now();
        await delay(IDLE_S * 1000);
        const secs = (Date.now() - t0) / 1000;
        const cpu = cpuMs(gw.pid) - c0, pcpu = cpuMs(prosody.pid) - pc0;
        streams += r.streams_ok;
        rows.push([tls ? 'STARTTLS' : 'plain', n, streams, failed,
          f1((n - r.first) / r.login_s), f1(r.streams_ok / r.streams_s),
          rss, f1((rss - rss0) / n), f1((prss - prss0) / n),
          f2((cpu / secs) * 1000 / n), f2((pcpu / secs) * 1000 / n), fdCount(gw.pid)]);
        console.log(rows.at(-1).join(' '));
        if (failed > n / 100) {
          stopReason += ` stopped at ${n} users (${tls ? 'STARTTLS' : 'plain'}): ${failed} logins or streams failed`;
          break;
        }
      }
    }).catch((e) => {
      stopReason += ` ${tls ? 'STARTTLS' : 'plain'} run failed: ${e.message.split('\n')[0]}`;
      console.error(e);
    });
  }
  const plain = rows.filter((r) => r[0] === 'plain').at(-1), tlsRow = rows.filter((r) => r[0] === 'STARTTLS').at(-1);
  saveFigures('scale', { plainUsers: plain?.[1], plainKiB: plain?.[7], tlsUsers: tlsRow?.[1], tlsKiB: tlsRow?.[7],
    idleCpu: plain?.[9], loginRate: plain?.[4], stopReason });
  writeResults('scale', 'Scale: users with a live upstream session and one SSE stream',
    `${NOTE}\n\nUsers are added in steps on the same gateway (logins ${CONC} in flight, then one SSE stream each). ` +
    `RSS per user = (gateway RSS after the step − RSS before the first login) / users; ` +
    `idle CPU = gateway (and Prosody) CPU time over ${IDLE_S} s with nothing happening (SSE heartbeats every 15 s), ` +
    `in µs of CPU per second per user. ${stopReason ? `\n\n**${stopReason}**` : ''}`,
    ['upstream', 'users', 'SSE streams open', 'failed', 'logins/s (step)', 'streams/s', 'gateway RSS KiB',
      'gateway KiB/user', 'Prosody KiB/user', 'gateway idle CPU µs/s/user', 'Prosody idle CPU µs/s/user', 'gateway fds'],
    rows);
}

/* ---- 2. latency / throughput ------------------------------------------------------------- */
function latRow(path, rate, r, cpuGw, cpuPro) {
  return [path, rate, r.sent, r.received, r.errors, f1(r.per_s), f2(r.p50), f2(r.p99), f2(r.max),
    cpuGw === null ? '-' : f1(cpuGw), f1(cpuPro)];
}
async function latency() {
  const rows = [];
  const res = {};
  const rates = [100, 1000, 0];
  await withStack({}, async ({ prosody, gw, lg }) => {
    const l = await lg.cmd(`login 0 ${LAT_USERS} ${CONC}`, loginTimeout(LAT_USERS));
    const c = await lg.cmd(`c2s ${LAT_USERS} ${LAT_USERS} ${CONC}`, loginTimeout(LAT_USERS));
    console.log(JSON.stringify(l), JSON.stringify(c));
    await settle();
    for (const rate of rates) {
      for (const mode of ['rest', 'c2s']) {
        const count = rate ? rate * SECS : 2000 * SECS;
        const g0 = cpuMs(gw.pid), p0 = cpuMs(prosody.pid), t0 = Date.now();
        const r = await lg.cmd(`send ${mode} ${rate} ${count} 64`, SECS * 1000 * 6 + 60000);
        const secs = (Date.now() - t0) / 1000;
        res[`${mode}${rate}`] = r;
        rows.push(latRow(mode === 'rest' ? 'gateway REST → SSE' : 'direct c2s → c2s', rate || 'max (64 in flight)', r,
          mode === 'rest' ? (cpuMs(gw.pid) - g0) / secs / 10 : null, (cpuMs(prosody.pid) - p0) / secs / 10));
        console.log(rows.at(-1).join(' '));
        await delay(1000);
      }
    }
  });
  const ratioRows = rates.map((rate) => {
    const g = res[`rest${rate}`], d = res[`c2s${rate}`];
    return [rate || 'max', f2(g.p50 - d.p50), f2(g.p99 - d.p99), f2(g.per_s / d.per_s)];
  });
  saveFigures('latency', { users: LAT_USERS, rows: ratioRows, gw1000: res.rest1000, direct1000: res.c2s1000,
    gwMax: res.rest0?.per_s, directMax: res.c2s0?.per_s });
  writeResults('latency', 'Latency and throughput: REST POST → recipient SSE vs direct c2s',
    `${NOTE}\n\n${LAT_USERS} gateway users (one SSE stream each) and ${LAT_USERS} other users as direct c2s clients on the same Prosody. ` +
    `Message k goes from user k mod N to user k+1 mod N; its body carries the send time (monotonic clock of the load generator), ` +
    `the receiver (SSE \`chatapi.chat\` data line, or the c2s <body>) takes the difference. Fixed rates are open loop (${SECS} s each); ` +
    `"max" is closed loop with 64 messages in flight. CPU % = CPU time / wall time (100 % = one core).\n\n` +
    `Gateway minus direct:\n\n| rate (msg/s) | added p50 (ms) | added p99 (ms) | throughput ratio gateway/direct |\n|---|---|---|---|\n` +
    ratioRows.map((r) => `| ${r.join(' | ')} |`).join('\n'),
    ['path', 'offered msg/s', 'sent', 'received', 'errors', 'delivered msg/s', 'p50 ms', 'p99 ms', 'max ms', 'gateway CPU %', 'Prosody CPU %'],
    rows);
}

/* ---- 3. connection managers: Prosody's mod_bosh / mod_websocket (Sparkgate: not built) ---- */
async function cm() {
  const rows = [];
  // a fresh Prosody per transport: memory freed by one would be reused by the next.
  // Direct c2s first, as the reference for Prosody's own per-session memory.
  for (const mode of ['c2s', 'bosh', 'ws']) {
    await withStack({ gateway: false }, async ({ prosody, lg }) => {
      await settle();
      const p0 = rssKiB(prosody.pid);
      const r = await lg.cmd(`${mode} 0 ${CM_SESSIONS} ${CONC}`, loginTimeout(CM_SESSIONS));
      await settle();
      const p1 = rssKiB(prosody.pid);
      const rate = 100;
      const s = await lg.cmd(`send ${mode} ${rate} ${rate * SECS} 64`, SECS * 6000 + 60000);
      rows.push([mode === 'c2s' ? 'direct c2s (reference)' : mode === 'bosh' ? 'BOSH (XEP-0206)' : 'WebSocket (RFC 7395)',
        'Prosody', r.ok, r.failed, f1(r.ok / r.s), f1((p1 - p0) / Math.max(1, r.ok)), rate, s.received, f2(s.p50), f2(s.p99), f2(s.max)]);
      console.log(rows.at(-1).join(' '));
      if (mode !== 'c2s') rows.push([rows.at(-1)[0], 'Sparkgate', 'not built', '-', '-', '-', '-', '-', '-', '-', '-']);
    });
  }
  saveFigures('cm', { sessions: CM_SESSIONS, rows });
  writeResults('cm', 'Connection managers: BOSH and WebSocket sessions',
    `${NOTE}\n\nSparkgate has no BOSH or WebSocket connection manager yet, so its column reads "not built"; ` +
    `the load generator's BOSH and WebSocket clients take any host:port/path (\`--bosh\`, \`--ws\`) and can be pointed at one later. ` +
    `Each row opens ${CM_SESSIONS} sessions on Prosody (SASL PLAIN, bind, presence; BOSH with hold=1, two HTTP connections per session), ` +
    `memory per session = Prosody RSS growth / sessions, then sends ${SECS} s of messages at 100 msg/s between the sessions (i → i+1).`,
    ['transport', 'server', 'sessions', 'failed', 'sessions/s', 'KiB per session', 'msg/s', 'received', 'p50 ms', 'p99 ms', 'max ms'],
    rows);
}

/* ---- 4. fan-out ---------------------------------------------------------------------------- */
async function fanout() {
  const rows = [];
  await withStack({}, async ({ gw, lg }) => {
    const l = await lg.cmd(`login 0 2 2`, 60000); // u0 receives, u1 sends
    if (l.logged_in !== 2) throw new Error(`fanout: login ${JSON.stringify(l)}`);
    const s = await lg.cmd(`streams 0 ${STREAMS - 1}`, 60000);
    console.log(JSON.stringify(s));
    await settle();
    for (const rate of [100, 0]) {
      const c0 = cpuMs(gw.pid), t0 = Date.now();
      const count = rate ? rate * SECS : 1000 * SECS;
      const r = await lg.cmd(`send rest ${rate} ${count} 64 0`, SECS * 6000 + 60000);
      const secs = (Date.now() - t0) / 1000;
      rows.push([STREAMS, rate || 'max (64 in flight)', r.sent, r.received, f1(r.per_s / STREAMS), f1(r.per_s),
        f2(r.p50), f2(r.p99), f2(r.max), f1((cpuMs(gw.pid) - c0) / secs / 10)]);
      console.log(rows.at(-1).join(' '));
      await delay(1000);
    }
  });
  saveFigures('fanout', { streams: STREAMS, rows });
  writeResults('fanout', 'Fan-out: one user with many SSE streams',
    `${NOTE}\n\nUser u0 has ${STREAMS} SSE streams (one from the login, ${STREAMS - 1} more with the same token); u1 sends REST messages to u0. ` +
    `Every stream receives every message; "events/s delivered" counts \`chatapi.chat\` events summed over the streams, latency is per stream copy.`,
    ['streams', 'offered msg/s', 'messages sent', 'events received', 'messages/s', 'events/s delivered', 'p50 ms', 'p99 ms', 'max ms', 'gateway CPU %'],
    rows);
}

const t0 = Date.now();
let failed = false;
for (const [name, fn] of [['scale', scale], ['latency', latency], ['cm', cm], ['fanout', fanout]]) {
  if (!want(name)) continue;
  console.log(`\n=== ${name} ===`);
  try { await fn(); } catch (e) { failed = true; console.error(`${name} failed:`, e); }
}
writeSummary(NOTE);
console.log(`done in ${((Date.now() - t0) / 1000).toFixed(0)} s; results in ${path.relative(process.cwd(), path.join(benchDir, 'results'))}/`);
if (failed) process.exitCode = 1;
