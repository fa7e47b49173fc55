// secrets.mjs: the suite-wide "no secret in any log" check. When SG_SECRETS_DIR is set (the
// Makefile sets it for the integration and browser runs), every password the harness gives
// Prosody, every token and refresh token a gateway answers, and whatever a test records
// (TOTP secrets) are appended to SG_SECRETS_DIR/secrets.txt, and every gateway's log is copied
// to SG_SECRETS_DIR/logs/ when it stops. tests/check-secrets.mjs then greps all logs for all
// secrets.
import fs from 'node:fs';
import path from 'node:path';

const dir = process.env.SG_SECRETS_DIR || '';

/** Remembers a value that must never appear in a log (ignored when shorter than 6 chars). */
export function recordSecret(value) {
  if (!dir || typeof value !== 'string' || value.length < 6 || value.includes('\n')) return;
  fs.appendFileSync(path.join(dir, 'secrets.txt'), value + '\n');
}

/** Keeps a copy of a gateway log for the final check. */
export function collectLog(text, name) {
  if (!dir) return;
  fs.mkdirSync(path.join(dir, 'logs'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'logs', `${name}-${process.pid}-${Date.now()}.log`), text);
}
