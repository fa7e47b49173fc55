// proc.mjs: process and port helpers shared by the test harness (free loopback ports, child
// processes that cannot outlive the test, deadlines without fixed sleeps).

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Absolute path of the repository root (two levels above this file). */
export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** True when the caller asked to keep temporary directories for post-mortem (SG_KEEP_TMP=1). */
export const keepTmp = process.env.SG_KEEP_TMP === '1';

/** Promise that resolves after `ms` milliseconds (for poll intervals only, never as a wait). */
export const delay = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Creates a fresh directory under os.tmpdir() whose name starts with `prefix`. */
export function makeTempDir(prefix) {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** Removes `dir` recursively unless SG_KEEP_TMP=1 (then says where it stays). */
export function removeTempDir(dir) {
  if (!dir) return;
  if (keepTmp) {
    process.stderr.write(`[harness] keeping ${dir} (SG_KEEP_TMP=1)\n`);
    return;
  }
  fs.rmSync(dir, { recursive: true, force: true });
}

// ---------------------------------------------------------------------------------------------
// Ports

const handedOut = new Set();

/** Lowest port of the kernel's ephemeral range (client sockets get ports from there). */
function ephemeralLow() {
  try {
    const [low] = fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/);
    const n = Number(low);
    if (Number.isInteger(n) && n > 1024) return n;
  } catch {
    // not Linux, or /proc unavailable: fall back to the usual default
  }
  return 32768;
}

/** Resolves true if 127.0.0.1:`port` can be bound right now. */
function canBind(port) {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', () => resolve(false));
    srv.listen({ host: '127.0.0.1', port, exclusive: true }, () => srv.close(() => resolve(true)));
  });
}

/**
 * Picks a random free loopback TCP port below the ephemeral range (20000 .. min(32000, low - 1)),
 * so that a load test's thousands of client sockets cannot take it. Never returns the same port
 * twice within one process. Another process may still take it before it is bound; callers that
 * start servers should detect a bind failure and retry.
 */
export async function freePort({ min = 20000, max = 32000 } = {}) {
  const hi = Math.min(max, ephemeralLow() - 1);
  if (hi <= min) throw new Error(`no port range below the ephemeral range (${min}..${hi})`);
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = min + Math.floor(Math.random() * (hi - min + 1));
    if (handedOut.has(port)) continue;
    if (await canBind(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error(`no free port found in ${min}..${hi}`);
}

/** Resolves true if `port` on 127.0.0.1 is free (for fixed, user-chosen ports). */
export function isPortFree(port) {
  return canBind(port);
}

// ---------------------------------------------------------------------------------------------
// Children that die with the test

const live = new Map(); // child -> temp dir to remove if this process exits abruptly
let exitHookInstalled = false;

function installExitHook() {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // 'exit' handlers must be synchronous; kill() is. This covers normal exit, process.exit()
  // and uncaught exceptions. A SIGKILLed test runner is covered by the watchdog below.
  process.on('exit', () => {
    for (const [child, dir] of live) {
      try {
        child.kill('SIGKILL');
      } catch {
        // already gone
      }
      if (dir && !keepTmp) fs.rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
    }
  });
}

// A tiny detached shell that polls every second: once this Node process is gone (even by
// SIGKILL, which runs no 'exit' handler) it sends SIGTERM then SIGKILL to the child and removes
// its temp dir. It exits on its own as soon as the child exits while this process lives.
const WATCHDOG = `
parent=$1 child=$2 dir=$3
while kill -0 "$parent" 2>/dev/null && kill -0 "$child" 2>/dev/null; do sleep 1; done
kill -0 "$parent" 2>/dev/null && exit 0
if kill -0 "$child" 2>/dev/null; then
  kill -TERM "$child" 2>/dev/null
  for i in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$child" 2>/dev/null || break; sleep 0.3; done
  kill -KILL "$child" 2>/dev/null
fi
[ -n "$dir" ] && rm -rf "$dir"
exit 0
`;

/**
 * Spawns `cmd` like child_process.spawn and guarantees it does not outlive this process:
 * killed by an 'exit' hook, and by a watchdog if this process dies without running hooks.
 * `cleanupDir` (optional) is removed in either case (unless SG_KEEP_TMP=1); a clean stop()
 * removes it itself.
 */
export function spawnManaged(cmd, args, options = {}, { cleanupDir = '' } = {}) {
  installExitHook();
  const child = spawn(cmd, args, options);
  if (child.pid === undefined) return child; // spawn failed; the 'error' event tells why
  live.set(child, cleanupDir);
  child.once('exit', () => live.delete(child));
  const dog = spawn('/bin/sh', ['-c', WATCHDOG, 'sg-watchdog', String(process.pid), String(child.pid),
    keepTmp ? '' : cleanupDir], { detached: true, stdio: 'ignore' });
  dog.on('error', () => {}); // no /bin/sh: the 'exit' hook still protects us
  dog.unref();
  return child;
}

/**
 * Resolves with { code, signal } once `child` has exited. If `signal` is given it is sent
 * first; if the child is still running after `timeoutMs` it gets SIGKILL.
 */
export function stopChild(child, { signal = 'SIGTERM', timeoutMs = 5000 } = {}) {
  if (child.exitCode !== null || child.signalCode !== null) {
    return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  }
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      try {
        child.kill('SIGKILL');
      } catch {
        // already gone
      }
    }, timeoutMs);
    child.once('exit', (code, sig) => {
      clearTimeout(timer);
      resolve({ code, signal: sig });
    });
    if (signal) child.kill(signal);
  });
}

/** Last `n` lines of `text` (for error messages). */
export function tailLines(text, n = 40) {
  const lines = String(text).split('\n');
  if (lines.length && lines[lines.length - 1] === '') lines.pop();
  return lines.slice(-n).join('\n');
}

/** Last `n` lines of the file at `file` ('' if it cannot be read). */
export function fileTail(file, n = 40) {
  try {
    return tailLines(fs.readFileSync(file, 'utf8'), n);
  } catch {
    return '';
  }
}
