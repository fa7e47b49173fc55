// sse.mjs: a minimal Server-Sent Events client for tests, on node:http only. Parses the stream
// as the WHATWG HTML "event stream interpretation" does (CRLF/LF/CR line ends, event/data/id/
// retry fields, comments), but never reconnects: a test reconnects explicitly with Last-Event-ID.

import http from 'node:http';
import https from 'node:https';

/**
 * Incremental parser. feed() takes decoded text in arbitrary chunks; onEvent receives
 * { event, data, id } for each dispatched event, onComment the text after ':'.
 */
export class SSEParser {
  constructor({ onEvent = () => {}, onComment = () => {}, onRetry = () => {} } = {}) {
    this.onEvent = onEvent;
    this.onComment = onComment;
    this.onRetry = onRetry;
    this.partial = ''; // text of the current, unterminated line
    this.skipLF = false; // previous chunk ended in CR: a leading LF belongs to that line end
    this.first = true; // a leading U+FEFF is dropped once
    this.data = '';
    this.eventType = '';
    this.lastEventId = '';
  }

  feed(text) {
    if (!text) return;
    if (this.first) {
      this.first = false;
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    }
    let i = 0;
    if (this.skipLF) {
      this.skipLF = false;
      if (text[0] === '\n') i = 1;
    }
    const eol = /\r\n|\r|\n/g;
    eol.lastIndex = i;
    for (let m; (m = eol.exec(text));) {
      // A CR at the very end of the chunk may be the first half of a CRLF split across chunks.
      if (m[0] === '\r' && m.index === text.length - 1) this.skipLF = true;
      this.#line(this.partial + text.slice(i, m.index));
      this.partial = '';
      i = m.index + m[0].length;
    }
    this.partial += text.slice(i);
  }

  #line(line) {
    if (line === '') {
      this.#dispatch();
      return;
    }
    if (line.startsWith(':')) {
      this.onComment(line.slice(1));
      return;
    }
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    switch (field) {
      case 'event':
        this.eventType = value;
        break;
      case 'data':
        this.data += `${value}\n`;
        break;
      case 'id':
        if (!value.includes('\0')) this.lastEventId = value;
        break;
      case 'retry':
        if (/^[0-9]+$/.test(value)) this.onRetry(Number(value));
        break;
      default:
        break; // unknown fields are ignored
    }
  }

  #dispatch() {
    if (this.data === '') {
      this.eventType = '';
      return;
    }
    const data = this.data.endsWith('\n') ? this.data.slice(0, -1) : this.data;
    const ev = { event: this.eventType || 'message', data, id: this.lastEventId };
    this.data = '';
    this.eventType = '';
    this.onEvent(ev);
  }
}

/**
 * Opens an event stream with GET and resolves as soon as the response headers arrive, whatever
 * the status. For a non-2xx reply (or one that is not text/event-stream) the body is kept in
 * `body` instead of being parsed.
 *
 * options: headers (e.g. { authorization, 'last-event-id' }), timeoutMs for the headers
 * (default 10000), method (default GET).
 *
 * The result: status, headers, events [{ event, data, id }], comments (count), commentTexts,
 * lastEventId, retry, body, ended (bool), closed (Promise resolved when the stream ends),
 * waitFor(predicate, timeoutMs), waitUntil(fn, timeoutMs), close().
 */
export function openSSE(url, { headers = {}, timeoutMs = 10000, method = 'GET' } = {}) {
  const u = new URL(url);
  const mod = u.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = mod.request(u, {
      method,
      agent: false, // one socket per stream, never pooled
      headers: { accept: 'text/event-stream', 'cache-control': 'no-cache', ...headers },
    });
    const timer = setTimeout(() => {
      req.destroy(new Error(`no response headers from ${url} within ${timeoutMs} ms`));
    }, timeoutMs);
    req.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    req.once('response', (res) => {
      clearTimeout(timer);
      req.removeAllListeners('error');
      resolve(new SSEStream(req, res));
    });
    req.end();
  });
}

class SSEStream {
  constructor(req, res) {
    this.req = req;
    this.res = res;
    this.status = res.statusCode;
    this.headers = res.headers;
    this.events = [];
    this.comments = 0;
    this.commentTexts = [];
    this.retry = null;
    this.body = '';
    this.ended = false;
    this.error = null;
    this.watchers = new Set();

    const isStream = this.status >= 200 && this.status < 300 && /^text\/event-stream\b/i.test(res.headers['content-type'] ?? '');
    this.parser = new SSEParser({
      onEvent: (ev) => {
        this.events.push(ev);
        this.#notify();
      },
      onComment: (text) => {
        this.comments++;
        this.commentTexts.push(text);
        this.#notify();
      },
      onRetry: (ms) => {
        this.retry = ms;
      },
    });
    res.setEncoding('utf8'); // the decoder keeps multi-byte characters split across chunks whole
    res.on('data', (chunk) => {
      if (isStream) this.parser.feed(chunk);
      else this.body += chunk;
    });
    this.closed = new Promise((resolve) => {
      const finish = (err) => {
        if (this.ended) return;
        this.ended = true;
        if (err && !this.closing) this.error = err;
        this.#notify();
        resolve();
      };
      res.once('end', () => finish());
      res.once('close', () => finish());
      res.on('error', finish);
      req.on('error', finish);
    });
  }

  /** The id of the last event that carried one (what a reconnect sends as Last-Event-ID). */
  get lastEventId() {
    return this.parser.lastEventId;
  }

  /** The non-stream body parsed as JSON (null if it is not JSON). */
  json() {
    try {
      return JSON.parse(this.body);
    } catch {
      return null;
    }
  }

  #notify() {
    for (const w of [...this.watchers]) w();
  }

  /**
   * Resolves with fn(this)'s first truthy result, checked now and after every event, comment
   * and the end of the stream. Rejects on timeout or if the stream ends first.
   */
  waitUntil(fn, timeoutMs = 5000, what = 'condition') {
    return new Promise((resolve, reject) => {
      const check = () => {
        let v;
        try {
          v = fn(this);
        } catch (e) {
          finish();
          reject(e);
          return;
        }
        if (v) {
          finish();
          resolve(v);
        } else if (this.ended) {
          finish();
          reject(new Error(`event stream ended before ${what}; got ${this.#summary()}`));
        }
      };
      const timer = setTimeout(() => {
        finish();
        reject(new Error(`timeout after ${timeoutMs} ms waiting for ${what}; got ${this.#summary()}`));
      }, timeoutMs);
      const finish = () => {
        clearTimeout(timer);
        this.watchers.delete(check);
      };
      this.watchers.add(check);
      check();
    });
  }

  /**
   * Resolves with the first event (already received or future) for which predicate(ev) is
   * true. A string predicate matches the event type.
   */
  waitFor(predicate, timeoutMs = 5000) {
    const pred = typeof predicate === 'string' ? (ev) => ev.event === predicate : predicate;
    const what = typeof predicate === 'string' ? `event "${predicate}"` : `event matching ${predicate}`;
    return this.waitUntil((s) => s.events.find((ev) => pred(ev)), timeoutMs, what);
  }

  /** Resolves with the events array once it holds at least n events. */
  waitForCount(n, timeoutMs = 5000) {
    return this.waitUntil((s) => s.events.length >= n && s.events, timeoutMs, `${n} events`);
  }

  #summary() {
    const last = this.events.slice(-5).map((e) => `${e.event}:${e.data.slice(0, 80)}`);
    return `${this.events.length} events (last: ${JSON.stringify(last)}), ${this.comments} comments`;
  }

  /** Closes the connection (the server sees the client go away). Resolves when closed. */
  close() {
    this.closing = true;
    this.req.destroy();
    this.res.destroy();
    return this.closed;
  }
}
