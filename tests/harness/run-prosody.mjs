#!/usr/bin/env node
// run-prosody.mjs: runs a local Prosody for `make run` with demo users alice, bob and carol
// (passwords alice-pass, bob-pass, carol-pass), keeping its data across restarts.
//
//   node tests/harness/run-prosody.mjs [--dir DIR] [--domain D] [--c2s-port N] [--http-port N] [--tls]
//
// DIR defaults to ./var/prosody. Ports come from the options, else from SG_PROSODY_C2S_PORT /
// SG_PROSODY_HTTP_PORT, else 5222 / 5280 when free, else free ports. Once ready it prints one
// JSON line on stdout, {"domain":..,"c2sPort":..,"httpPort":..,"dir":..,"caFile":..}, and runs
// until SIGINT or SIGTERM. Everything else goes to stderr.

import path from 'node:path';
import { parseArgs } from 'node:util';

import { isPortFree } from './proc.mjs';
import { startProsody } from './prosody.mjs';

const DEMO_USERS = [['alice', 'alice-pass'], ['bob', 'bob-pass'], ['carol', 'carol-pass']];

const { values: opt } = parseArgs({
  options: {
    dir: { type: 'string', default: './var/prosody' },
    domain: { type: 'string', default: 'localhost' },
    'c2s-port': { type: 'string' },
    'http-port': { type: 'string' },
    tls: { type: 'boolean', default: false },
  },
});

/** An explicit port (option or env) is used as is; else the default when free; else a free one. */
async function choosePort(explicit, envName, preferred) {
  const fixed = explicit ?? process.env[envName];
  if (fixed) return Number(fixed);
  return (await isPortFree(preferred)) ? preferred : undefined; // undefined: harness picks
}

const dir = path.resolve(opt.dir);
const prosody = await startProsody({
  dir,
  domain: opt.domain,
  tls: opt.tls,
  c2sPort: await choosePort(opt['c2s-port'], 'SG_PROSODY_C2S_PORT', 5222),
  httpPort: await choosePort(opt['http-port'], 'SG_PROSODY_HTTP_PORT', 5280),
});

for (const [user, password] of DEMO_USERS) {
  if (prosody.userExists(user)) continue;
  await prosody.register(user, password);
  process.stderr.write(`[run-prosody] registered ${user}@${prosody.domain}\n`);
}

process.stdout.write(`${JSON.stringify({
  domain: prosody.domain, c2sPort: prosody.c2sPort, httpPort: prosody.httpPort, dir, caFile: prosody.caFile ?? null,
})}\n`);
process.stderr.write(`[run-prosody] Prosody ready on 127.0.0.1:${prosody.c2sPort} (log ${prosody.logPath}); Ctrl-C stops it\n`);

let stopping = false;
const shutdown = async (sig) => {
  if (stopping) return;
  stopping = true;
  process.stderr.write(`[run-prosody] ${sig}: stopping Prosody\n`);
  await prosody.stop();
  process.exit(0);
};
process.on('SIGINT', () => shutdown('SIGINT'));
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGHUP', () => shutdown('SIGHUP'));

prosody.child.once('exit', async (code, signal) => {
  await new Promise((r) => setTimeout(r, 200)); // a Ctrl-C reaches Prosody and us at once
  if (stopping) return;
  process.stderr.write(`[run-prosody] Prosody exited (code ${code}, signal ${signal})\n${prosody.logTail(30)}\n`);
  process.exit(1);
});
