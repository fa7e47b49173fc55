// check-secrets.mjs DIR: fails when any secret recorded by the test suite (passwords, tokens,
// refresh tokens, TOTP secrets; see tests/harness/secrets.mjs) appears in any gateway log
// collected during the run. Prints what it checked.
import fs from 'node:fs';
import path from 'node:path';

const dir = process.argv[2];
if (!dir) {
  console.error('usage: node tests/check-secrets.mjs DIR');
  process.exit(2);
}
const secretsFile = path.join(dir, 'secrets.txt');
const secrets = fs.existsSync(secretsFile)
  ? [...new Set(fs.readFileSync(secretsFile, 'utf8').split('\n').filter((s) => s.length >= 6))]
  : [];
const logDir = path.join(dir, 'logs');
const logs = fs.existsSync(logDir) ? fs.readdirSync(logDir) : [];
let bytes = 0;
const leaks = [];
for (const f of logs) {
  const text = fs.readFileSync(path.join(logDir, f), 'utf8');
  bytes += text.length;
  for (const s of secrets) {
    const i = text.indexOf(s);
    if (i >= 0) {
      const line = text.slice(text.lastIndexOf('\n', i) + 1, text.indexOf('\n', i));
      leaks.push(`${f}: secret ${s.slice(0, 4)}... in: ${line.replace(s, '<SECRET>').slice(0, 200)}`);
    }
  }
}
console.log(`check-secrets: ${secrets.length} secrets, ${logs.length} gateway logs, ${bytes} bytes`);
if (secrets.length === 0 || logs.length === 0) {
  console.error('check-secrets: nothing was collected (SG_SECRETS_DIR not passed to the tests?)');
  process.exit(1);
}
if (leaks.length) {
  console.error(leaks.join('\n'));
  process.exit(1);
}
console.log('check-secrets: no secret in any log');
