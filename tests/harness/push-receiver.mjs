// push-receiver.mjs: a local stand-in for a Web Push service (RFC 8030) and for the browser
// behind it. It serves HTTPS with HTTP/2 and HTTP/1.1 (a self-signed certificate for localhost,
// made with the openssl CLI), records every push request, checks the VAPID Authorization
// (RFC 8292) with node:crypto, and decrypts aes128gcm bodies (RFC 8291) with the independent
// `http_ece` package, holding each subscription's private key and auth secret like a browser.
// Endpoint behaviour is chosen per subscription: ok (201), 404, 410, 429 (with Retry-After,
// then ok), 500 (always), hang (never answers).

import crypto from 'node:crypto';
import fs from 'node:fs';
import http2 from 'node:http2';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { createRequire } from 'node:module';
import { recordSecret } from './secrets.mjs';

const require = createRequire(import.meta.url);
const ece = require('http_ece');
const execFileP = promisify(execFile);

/** A browser-side subscription key pair: { ecdh, p256dh, auth } (base64url). */
export function makeKeys() {
  const ecdh = crypto.createECDH('prime256v1');
  ecdh.generateKeys();
  return { ecdh, p256dh: ecdh.getPublicKey().toString('base64url'), auth: crypto.randomBytes(16).toString('base64url') };
}

/** Checks "vapid t=<jwt>, k=<key>"; returns { ok, why, claims, key }. */
export function checkVapid(header, { audience, publicKey, subject, now = Date.now() / 1000 }) {
  const m = /^vapid t=([\w-]+\.[\w-]+\.[\w-]+), k=([\w-]+)$/.exec(header || '');
  if (!m) return { ok: false, why: `bad Authorization: ${header}` };
  const [, jwt, k] = m;
  if (publicKey && k !== publicKey.replace(/=+$/, '')) return { ok: false, why: 'k is not the VAPID key of W1' };
  const [h, c, s] = jwt.split('.');
  const hdr = JSON.parse(Buffer.from(h, 'base64url'));
  const claims = JSON.parse(Buffer.from(c, 'base64url'));
  if (hdr.alg !== 'ES256' || hdr.typ !== 'JWT') return { ok: false, why: `header ${JSON.stringify(hdr)}` };
  const raw = Buffer.from(k, 'base64url');
  if (raw.length !== 65 || raw[0] !== 4) return { ok: false, why: 'k is not an uncompressed P-256 point' };
  const key = crypto.createPublicKey({
    key: { kty: 'EC', crv: 'P-256', x: raw.subarray(1, 33).toString('base64url'), y: raw.subarray(33).toString('base64url') },
    format: 'jwk',
  });
  const good = crypto.verify('sha256', Buffer.from(`${h}.${c}`), { key, dsaEncoding: 'ieee-p1363' }, Buffer.from(s, 'base64url'));
  if (!good) return { ok: false, why: 'signature does not verify' };
  if (audience && claims.aud !== audience) return { ok: false, why: `aud ${claims.aud} != ${audience}` };
  if (!(claims.exp > now && claims.exp <= now + 24 * 3600 + 5)) return { ok: false, why: `exp ${claims.exp} not within 24 h` };
  if (subject && claims.sub !== subject) return { ok: false, why: `sub ${claims.sub}` };
  return { ok: true, claims, key: k };
}

/**
 * Starts the receiver. Resolves { origin, port, caFile, subscribe(mode) -> { id, endpoint,
 * json, keys }, requests, waitFor(pred, ms), decrypt(req), setMode(id, mode), close() }.
 * Each request: { id, at (ms), httpVersion, headers, body (Buffer), status }.
 */
export async function startPushReceiver(dir) {
  const cert = path.join(dir, 'push.crt');
  const keyFile = path.join(dir, 'push.key');
  await execFileP('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-days', '2', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
    '-keyout', keyFile, '-out', cert]);
  const subs = new Map(); // id -> { mode, keys, count }
  const requests = [];
  const waiters = new Set();
  const hung = new Set();
  let seq = 0;

  const server = http2.createSecureServer({ key: fs.readFileSync(keyFile), cert: fs.readFileSync(cert), allowHTTP1: true });
  server.on('request', (req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const id = req.url.split('/').pop();
      const sub = subs.get(id);
      const r = { id, at: Date.now(), httpVersion: req.httpVersion, method: req.method, headers: req.headers, body: Buffer.concat(chunks), status: 0 };
      requests.push(r);
      const mode = sub ? sub.mode : '404';
      if (sub) sub.count++;
      if (mode === 'hang') {
        hung.add(res);
      } else if (mode === '429' && sub.count === 1) {
        r.status = 429;
        res.writeHead(429, { 'retry-after': '1' }).end();
      } else if (mode === '404' || mode === '410' || mode === '500') {
        r.status = Number(mode);
        res.writeHead(r.status).end();
      } else {
        r.status = 201;
        res.writeHead(201, { location: `/msg/${++seq}` }).end();
      }
      for (const w of waiters) w();
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = server.address().port;
  const origin = `https://localhost:${port}`;

  return {
    origin,
    port,
    caFile: cert,
    requests,
    /** A new subscription whose endpoint behaves as `mode`. */
    subscribe(mode = 'ok') {
      const id = crypto.randomBytes(9).toString('base64url');
      const keys = makeKeys();
      subs.set(id, { mode, keys, count: 0 });
      const endpoint = `${origin}/push/${id}`;
      recordSecret(keys.auth); // the gateway must never log a subscription's auth secret
      recordSecret(`/push/${id}`); // nor an endpoint's path (a capability URL)
      const json = JSON.stringify({ endpoint, expirationTime: null, keys: { p256dh: keys.p256dh, auth: keys.auth } });
      return { id, endpoint, json, keys };
    },
    setMode(id, mode) {
      subs.get(id).mode = mode;
    },
    /** The plaintext of a recorded request, decrypted as the browser would. */
    decrypt(r) {
      const { keys } = subs.get(r.id);
      const text = ece.decrypt(r.body, { version: 'aes128gcm', privateKey: keys.ecdh, authSecret: keys.auth }).toString('utf8');
      try {
        recordSecret(JSON.parse(text).token); // nor a payload's restricted token
      } catch {
        // not JSON
      }
      return text;
    },
    /** Resolves with the requests matching pred once there are at least n of them. */
    waitFor(pred, timeoutMs = 10000, n = 1) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const got = requests.filter(pred);
          if (got.length >= n) {
            clearTimeout(timer);
            waiters.delete(check);
            resolve(got);
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`push receiver: fewer than ${n} matching requests within ${timeoutMs} ms (have ${requests.length})`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    async close() {
      for (const res of hung) {
        try {
          if (res.stream) res.stream.close();
          else res.destroy();
        } catch {
          // already gone
        }
      }
      await new Promise((resolve) => {
        server.close(resolve);
        setTimeout(resolve, 1000).unref();
      });
    },
  };
}
