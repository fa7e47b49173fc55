// gateway.mjs: starts the built Sparkgate binary against a harness Prosody for integration
// tests, captures its key=value log, and waits for its `ev=listening` line.

import { collectLog } from './secrets.mjs';
import fs from 'node:fs';
import path from 'node:path';

import { delay, freePort, makeTempDir, removeTempDir, repoRoot, spawnManaged, stopChild, tailLines } from './proc.mjs';

/** The binary under test: SPARKGATE_BIN (set by `make integration`) or build/sparkgate. */
export function defaultBinary() {
  return process.env.SPARKGATE_BIN || path.join(repoRoot, 'build', 'sparkgate');
}

/**
 * Last `n` lines of a gateway's log: `src` is a gateway handle, a log string, or a file path.
 * For printing on test failure.
 */
export function logTail(src, n = 60) {
  if (src && typeof src.log === 'function') return tailLines(src.log(), n);
  if (typeof src === 'string' && !src.includes('\n') && fs.existsSync(src)) return tailLines(fs.readFileSync(src, 'utf8'), n);
  return tailLines(String(src ?? ''), n);
}

/**
 * Runs `fn` and, if it throws, appends the log tails of `servers` (gateway and/or Prosody
 * handles: anything with log() or logTail()) to the error message. Usage:
 *   test('x', () => withLogs([gw, prosody], async () => { ... }));
 */
export async function withLogs(servers, fn, n = 60) {
  try {
    return await fn();
  } catch (err) {
    const parts = [];
    for (const s of [].concat(servers)) {
      if (!s) continue;
      const name = s.url ? `gateway ${s.url}` : `prosody :${s.c2sPort}`;
      const tail = typeof s.log === 'function' ? tailLines(s.log(), n) : s.logTail(n);
      parts.push(`--- ${name} log (last ${n} lines) ---\n${tail}`);
    }
    if (err instanceof Error && parts.length) err.message += `\n${parts.join('\n')}`;
    throw err;
  }
}

/**
 * Spawns the gateway and resolves once it logs `ev=listening`.
 *
 *   prosody         a handle from startProsody() (domain, c2sPort, tls, caFile)
 *   env             extra SPARKGATE_* (or other) variables; they override the defaults
 *   binary          path of the executable (default: defaultBinary())
 *   args            extra command-line arguments
 *   storePath       state directory to use and keep (default: <temp dir>/store, removed by stop())
 *   readyTimeoutMs  deadline for `ev=listening` (default 10000)
 *
 * Resolves { url, port, pid, dir, logPath, storePath, child, log(), logTail(n),
 *            waitForLog(re, timeoutMs), stop({ timeoutMs }), kill(signal) }.
 * On failure throws with the log tail.
 */
export async function startGateway({ prosody, env = {}, binary = defaultBinary(), args = [], storePath,
  readyTimeoutMs = 10000 } = {}) {
  if (!fs.existsSync(binary)) throw new Error(`gateway binary ${binary} not found (run \`make build\` or set SPARKGATE_BIN)`);
  const dir = makeTempDir('sg-gateway-');
  const logPath = path.join(dir, 'gateway.log');
  const store = storePath ?? path.join(dir, 'store');

  try {
    // A port picked as free can be taken before the gateway binds it: retry a few times.
    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      const childEnv = gatewayEnv({ prosody, port, store, env });
      const gw = spawnGateway({ binary, args, childEnv, dir, logPath, storePath: store });
      const err = await gw.ready(readyTimeoutMs);
      if (!err) {
        // The address actually bound (an env override may have changed it).
        const listen = childEnv.SPARKGATE_HTTP_LISTEN;
        const actualPort = Number(listen.slice(listen.lastIndexOf(':') + 1)) || port;
        const host = listen.slice(0, listen.lastIndexOf(':')) || '127.0.0.1';
        const scheme = childEnv.SPARKGATE_HTTP_TLS_CERT ? 'https' : 'http';
        return gw.handle(`${scheme}://${host}:${actualPort}`, actualPort);
      }
      await gw.stop({ timeoutMs: 3000, keepDir: true });
      const retry = /cannot listen|in use|EADDRINUSE/i.test(gw.log()) && !env.SPARKGATE_HTTP_LISTEN && attempt < 3;
      if (!retry) throw new Error(`gateway did not start: ${err}\n--- ${logPath} (tail) ---\n${tailLines(gw.log(), 40)}`);
    }
  } catch (e) {
    removeTempDir(dir);
    throw e;
  }
}

/** The child's environment: inherited variables minus any SPARKGATE_* (the gateway rejects
 * unknown ones, e.g. SPARKGATE_BIN from the Makefile), then the defaults, then `env`. */
function gatewayEnv({ prosody, port, store, env }) {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SPARKGATE_')));
  const defaults = {
    SPARKGATE_HTTP_LISTEN: `127.0.0.1:${port}`,
    SPARKGATE_STORE_PATH: store,
    SPARKGATE_LOG_LEVEL: 'debug',
  };
  if (prosody) {
    Object.assign(defaults, {
      SPARKGATE_XMPP_DOMAIN: prosody.domain,
      SPARKGATE_XMPP_HOST: prosody.host ?? '127.0.0.1',
      SPARKGATE_XMPP_PORT: String(prosody.c2sPort),
      SPARKGATE_XMPP_TLS: prosody.tls ? 'starttls' : 'off',
    });
    if (prosody.tls && prosody.caFile) defaults.SPARKGATE_XMPP_CA_FILE = prosody.caFile;
  }
  const merged = { ...base, ...defaults };
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined || v === null) delete merged[k];
    else merged[k] = String(v);
  }
  if (!('SPARKGATE_HTTP_PUBLIC_URL' in env)) {
    // "localhost" is a secure context for browsers and a valid WebAuthn RP id
    const listen = merged.SPARKGATE_HTTP_LISTEN;
    const scheme = merged.SPARKGATE_HTTP_TLS_CERT ? 'https' : 'http';
    merged.SPARKGATE_HTTP_PUBLIC_URL = `${scheme}://localhost:${listen.slice(listen.lastIndexOf(':') + 1)}`;
  }
  return merged;
}

function spawnGateway({ binary, args, childEnv, dir, logPath, storePath }) {
  let text = '';
  const logFd = fs.openSync(logPath, 'a');
  const lineWaiters = new Set();
  const child = spawnManaged(binary, args, { env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] }, { cleanupDir: dir });
  let exitInfo = null;
  let spawnError = null;
  const exited = new Promise((resolve) => {
    child.once('error', (e) => {
      spawnError = e;
      resolve();
    });
    child.once('exit', (code, signal) => {
      exitInfo = { code, signal };
      resolve();
    });
  });
  const onData = (chunk) => {
    text += chunk;
    fs.writeSync(logFd, chunk);
    for (const w of lineWaiters) w.check();
  };
  child.stdout?.setEncoding('utf8').on('data', onData);
  child.stderr?.setEncoding('utf8').on('data', onData);

  // Resolves with the first match of `re` in the log (already logged lines count).
  const waitForLog = (re, timeoutMs = 5000) => new Promise((resolve, reject) => {
    const w = {
      check() {
        const m = re.exec(text);
        if (m) {
          done();
          resolve(m);
        } else if (exitInfo || spawnError) {
          done();
          reject(new Error(`gateway exited (${spawnError?.message ?? JSON.stringify(exitInfo)}) before logging ${re}`));
        }
      },
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`no log line matching ${re} within ${timeoutMs} ms`));
    }, timeoutMs);
    const done = () => {
      clearTimeout(timer);
      lineWaiters.delete(w);
    };
    lineWaiters.add(w);
    exited.then(() => w.check());
    w.check();
  });

  let stopping = null;
  const stop = ({ timeoutMs = 10000, keepDir = false } = {}) => {
    stopping ??= (async () => {
      const res = spawnError ? { code: null, signal: null } : await stopChild(child, { timeoutMs });
      // Let the pipes drain so the last lines reach the log.
      await Promise.race([Promise.all([streamEnd(child.stdout), streamEnd(child.stderr)]), delay(1000)]);
      try {
        fs.closeSync(logFd);
      } catch {
        // already closed
      }
      collectLog(text, 'gateway');
      if (!keepDir) removeTempDir(dir);
      return res;
    })();
    return stopping;
  };

  return {
    log: () => text,
    stop,
    async ready(timeoutMs) {
      try {
        await waitForLog(/\bev=listening\b/, timeoutMs);
        return null;
      } catch (e) {
        return e.message;
      }
    },
    handle(url, port) {
      return {
        url,
        port,
        pid: child.pid,
        child,
        dir,
        logPath,
        storePath,
        /** Everything the gateway wrote to stdout and stderr so far. */
        log: () => text,
        /** Last n lines of the log. */
        logTail: (n = 60) => tailLines(text, n),
        /** Resolves with the first match of `re` in the log (past lines count). */
        waitForLog,
        /** SIGTERM, wait (SIGKILL after timeoutMs), remove the temp dir; resolves { code, signal }. */
        stop,
        /** Sends `signal` (default SIGKILL) without waiting; stop() still cleans up afterwards. */
        kill(signal = 'SIGKILL') {
          child.kill(signal);
        },
        /** Resolves { code, signal } when the process has exited (on its own or by kill()). */
        exited: exited.then(() => exitInfo),
      };
    },
  };
}

function streamEnd(stream) {
  if (!stream || stream.readableEnded || stream.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    stream.once('end', resolve);
    stream.once('close', resolve);
  });
}
