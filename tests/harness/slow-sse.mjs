// slow-sse.mjs: event streams that never read, for slow-consumer tests and benchmarks. Each is a
// raw HTTP/1.1 socket that sends the GET, reads the response head, checks the status, and then
// stops reading: the kernel buffers fill and the gateway's queue for the stream grows until the
// gateway gives up on it. Also reads a process's RSS and open descriptors from /proc.
import fs from 'node:fs';
import net from 'node:net';

/**
 * Opens a stream that stops reading after the response head. Resolves
 * { status, socket, drain(timeoutMs) } where drain() starts reading again and resolves 'end'
 * (the server closed or reset the connection) or 'open' (still open at the deadline; the socket
 * is destroyed then).
 */
export function openSlowStream(url, { timeoutMs = 10000 } = {}) {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: u.hostname, port: Number(u.port) });
    let head = '';
    let ended = false;
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no response head from ${u.pathname} within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.on('error', () => { ended = true; });
    socket.on('close', () => { ended = true; });
    socket.on('end', () => { ended = true; });
    socket.on('connect', () => {
      socket.write(`GET ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\nAccept: text/event-stream\r\n\r\n`);
    });
    const onData = (chunk) => {
      head += chunk.toString('latin1');
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      socket.pause(); // from here on the socket is never read until drain()
      socket.off('data', onData);
      clearTimeout(timer);
      const status = Number(head.slice(9, 12));
      resolve({
        status,
        socket,
        drain(ms = 5000) {
          return new Promise((done) => {
            if (ended) {
              done('end');
              return;
            }
            const t = setTimeout(() => {
              socket.destroy();
              done('open');
            }, ms);
            const fin = () => {
              clearTimeout(t);
              done('end');
            };
            socket.once('end', fin);
            socket.once('close', fin);
            socket.on('data', () => {});
            socket.resume();
          });
        },
      });
    };
    socket.on('data', onData);
  });
}

/** Resident set size of a process in bytes (VmRSS). */
export function rssBytes(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : NaN;
}

/** Peak resident set size of a process in bytes (VmHWM). */
export function peakRssBytes(pid) {
  const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : NaN;
}

/** Number of open file descriptors of a process. */
export function fdCount(pid) {
  return fs.readdirSync(`/proc/${pid}/fd`).length;
}

export const MiB = 1024 * 1024;

const delay = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * The slow-consumer scenario shared by tests/integration/slow.test.mjs and bench/slow-sse.mjs.
 * `gw` runs with a small sse.max_queue; `tokens` maps each receiving user to an access token
 * and `senderToken` is another user's. Opens `streams` never-reading streams spread over the
 * receivers, then sends rounds of chat messages of `bodyBytes` (one per receiver per round)
 * until the gateway has logged `slow_consumer` for every stream (phase 1), then as many rounds
 * again while no stream is left (phase 2), and finally reads every slow socket to its end.
 * `onRound(round)` may be used to watch extra streams. Resolves the figures:
 * { streams, rounds, rss: { start, open, phase1, phase2, peak }, fds: { start, open, end },
 *   slowClosed, drained: { end, open }, seconds }.
 */
export async function slowConsumerRun({ gw, domain, tokens, senderToken, streams, bodyBytes,
  extraSlow = 0, maxRounds = 400, sendConcurrency = 8, onRound = async () => {} }) {
  const t0 = Date.now();
  const users = Object.keys(tokens);
  const slowLines = () => (gw.log().match(/ev=slow_consumer/g) || []).length;
  const before = slowLines();
  const fig = { streams, rss: {}, fds: {} };
  fig.rss.start = rssBytes(gw.pid);
  fig.fds.start = fdCount(gw.pid);

  const slow = [];
  for (let i = 0; i < streams; i += 50) {
    const batch = [];
    for (let k = i; k < Math.min(streams, i + 50); k++) {
      const user = users[k % users.length];
      batch.push(openSlowStream(`${gw.url}/sparkweb/sse?token=${encodeURIComponent(tokens[user])}`));
    }
    slow.push(...await Promise.all(batch));
  }
  const bad = slow.filter((s) => s.status !== 200).length;
  if (bad) throw new Error(`${bad} slow streams were refused`);
  await delay(500);
  fig.rss.open = rssBytes(gw.pid);
  fig.fds.open = fdCount(gw.pid);

  const pad = 'x'.repeat(bodyBytes);
  let round = 0;
  const sendRound = async () => {
    round++;
    const jobs = users.map((u) => async () => {
      const r = await fetch(`${gw.url}/sparkweb/api/rest/chat/message/${u}@${domain}`, {
        method: 'POST', headers: { authorization: senderToken }, body: `${round}:${u}:${pad}`,
      });
      await r.text();
      if (r.status !== 200) throw new Error(`send failed: ${r.status}`);
    });
    for (let i = 0; i < jobs.length; i += sendConcurrency) await Promise.all(jobs.slice(i, i + sendConcurrency).map((j) => j()));
    await onRound(round);
  };
  const target = streams + extraSlow;
  while (slowLines() - before < target && round < maxRounds) {
    await sendRound();
    if (round % 5 === 0) await delay(50); // let the gateway's writes reach the sockets
  }
  // the last sends may still be on their way through Prosody
  for (let i = 0; i < 50 && slowLines() - before < target; i++) await delay(100);
  fig.rounds = round;
  fig.slowClosed = slowLines() - before;
  await delay(1500); // the scan timer closes aborted connections
  fig.rss.phase1 = rssBytes(gw.pid);
  for (let i = 0; i < fig.rounds; i++) await sendRound();
  await delay(1500);
  fig.rss.phase2 = rssBytes(gw.pid);
  fig.rss.peak = peakRssBytes(gw.pid);
  fig.fds.end = fdCount(gw.pid);

  const results = await Promise.all(slow.map((s) => s.drain(5000)));
  fig.drained = { end: results.filter((r) => r === 'end').length, open: results.filter((r) => r === 'open').length };
  fig.seconds = (Date.now() - t0) / 1000;
  return fig;
}
