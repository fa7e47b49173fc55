// http.mjs: small HTTP helpers for integration tests, on Node's global fetch.
import { recordSecret } from './secrets.mjs';

/**
 * Sends one request and resolves { status, headers, text, json } whatever the status.
 * `body`: a string/Buffer/URLSearchParams is sent as is; any other value is sent as JSON (with
 * content-type application/json unless `headers` sets one). `headers` keys are case-insensitive.
 * `json` is the parsed body, or null when the body is empty or not JSON. `headers` is a plain
 * object with lower-case names. `timeoutMs` (default 10000) aborts a hung request.
 */
export async function request(method, url, { body, headers = {}, timeoutMs = 10000, redirect = 'manual' } = {}) {
  const h = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), String(v)]));
  let payload = body;
  if (body !== undefined && body !== null && typeof body !== 'string' && !Buffer.isBuffer(body)
      && !(body instanceof URLSearchParams) && !(body instanceof Uint8Array)) {
    payload = JSON.stringify(body);
    h['content-type'] ??= 'application/json';
  }
  const res = await fetch(url, { method, headers: h, body: payload, redirect, signal: AbortSignal.timeout(timeoutMs) });
  const text = await res.text();
  let json = null;
  if (text) {
    try {
      json = JSON.parse(text);
    } catch {
      json = null;
    }
  }
  if (json && typeof json === 'object') { // for the suite-wide log check
    recordSecret(json.token);
    recordSecret(json.refreshToken);
  }
  return { status: res.status, headers: Object.fromEntries(res.headers), text, json };
}

/** { authorization: 'Bearer <token>' } merged into `headers`. */
export function bearer(token, headers = {}) {
  return { ...headers, authorization: `Bearer ${token}` };
}

/** Shorthands: get(url, opts), post(url, body, opts), put(url, body, opts), del(url, opts). */
export const get = (url, opts) => request('GET', url, opts);
export const post = (url, body, opts = {}) => request('POST', url, { ...opts, body });
export const put = (url, body, opts = {}) => request('PUT', url, { ...opts, body });
export const del = (url, opts) => request('DELETE', url, opts);
