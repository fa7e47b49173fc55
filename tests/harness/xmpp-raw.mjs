// xmpp-raw.mjs: a deliberately tiny XMPP client over a raw TCP socket, for probing Prosody and
// for bulk in-band registration (XEP-0077). It matches regular expressions against the text
// received so far; it is not an XML parser and is meant for tests only.

import net from 'node:net';
import tls from 'node:tls';

const NS_STREAM = 'http://etherx.jabber.org/streams';

/** Escapes text for use inside XML character data or attribute values. */
export function xmlEscape(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]);
}

/** The opening stream header a client sends to `domain`. */
export function streamHeader(domain) {
  return `<?xml version='1.0'?><stream:stream to='${xmlEscape(domain)}' xmlns='jabber:client' ` +
    `xmlns:stream='${NS_STREAM}' version='1.0'>`;
}

let nextId = 0;

/**
 * One raw client connection. Received text accumulates in `received`; waitFor() consumes it
 * from a cursor, so each expected reply is matched once and in order.
 */
export class RawXmpp {
  constructor(socket, domain) {
    this.domain = domain;
    this.received = '';
    this.pos = 0;
    this.closed = false;
    this.waiters = [];
    this.#attach(socket);
  }

  #attach(socket) {
    this.socket = socket;
    socket.setEncoding('utf8');
    socket.on('data', (chunk) => {
      this.received += chunk;
      this.#check();
    });
    socket.on('error', (err) => this.#fail(err));
    socket.on('close', () => {
      this.closed = true;
      this.#fail(new Error('connection closed'));
    });
  }

  #check() {
    for (const w of [...this.waiters]) {
      const rest = this.received.slice(this.pos);
      const m = w.re.exec(rest);
      if (!m) continue;
      this.pos += m.index + m[0].length;
      this.waiters.splice(this.waiters.indexOf(w), 1);
      clearTimeout(w.timer);
      w.resolve(m);
    }
  }

  #fail(err) {
    for (const w of this.waiters.splice(0)) {
      clearTimeout(w.timer);
      w.reject(new Error(`${err.message}; waiting for ${w.re}; received: ${this.received.slice(-500)}`));
    }
  }

  /** Writes raw XML. */
  send(xml) {
    this.socket.write(xml);
  }

  /**
   * Resolves with the RegExp match of `re` against text received after the previous match
   * (including text already buffered); rejects after `timeoutMs` or when the connection closes.
   */
  waitFor(re, timeoutMs = 5000) {
    return new Promise((resolve, reject) => {
      const w = { re, resolve, reject, timer: null };
      w.timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        reject(new Error(`timeout after ${timeoutMs} ms waiting for ${re}; received: ${this.received.slice(-500)}`));
      }, timeoutMs);
      this.waiters.push(w);
      this.#check();
      if (this.closed && this.waiters.includes(w)) this.#fail(new Error('connection closed'));
    });
  }

  /** Sends a stream header and resolves with the text of <stream:features>. */
  async openStream(timeoutMs = 5000) {
    this.send(streamHeader(this.domain));
    const m = await this.waitFor(/<stream:features[\s\S]*?(?:<\/stream:features>|<stream:features\/>)/, timeoutMs);
    return m[0];
  }

  /** Negotiates STARTTLS (the server must offer it) and restarts the stream; returns features. */
  async starttls({ ca, servername = this.domain, rejectUnauthorized = true, timeoutMs = 5000 } = {}) {
    this.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
    await this.waitFor(/<proceed\b[^>]*\/>/, timeoutMs);
    const plain = this.socket;
    plain.removeAllListeners('data');
    plain.removeAllListeners('close');
    plain.removeAllListeners('error');
    const secure = tls.connect({ socket: plain, servername, ca, rejectUnauthorized });
    await new Promise((resolve, reject) => {
      secure.once('secureConnect', resolve);
      secure.once('error', reject);
    });
    this.received = '';
    this.pos = 0;
    this.#attach(secure);
    return this.openStream(timeoutMs);
  }

  /** SASL PLAIN; resolves { ok, reply } where reply is the <success>/<failure> element. */
  async authPlain(user, password, timeoutMs = 5000) {
    const token = Buffer.from(`\0${user}\0${password}`, 'utf8').toString('base64');
    this.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${token}</auth>`);
    const m = await this.waitFor(/<success\b[^>]*(?:\/>|>[\s\S]*?<\/success>)|<failure\b[\s\S]*?<\/failure>/, timeoutMs);
    return { ok: m[0].startsWith('<success'), reply: m[0] };
  }

  /** Sends an <iq> built by `build(id)` and resolves with the reply element text. */
  async iq(build, timeoutMs = 5000) {
    const id = `h${++nextId}`;
    this.send(build(id));
    const re = new RegExp(`<iq\\b[^>]*\\bid=(["'])${id}\\1[^>]*(?:/>|>[\\s\\S]*?</iq>)`);
    return (await this.waitFor(re, timeoutMs))[0];
  }

  /**
   * In-band registration (XEP-0077) on an unauthenticated stream. Resolves 'created',
   * 'exists' (conflict) or throws with the server's error.
   */
  async register(user, password, timeoutMs = 5000) {
    const reply = await this.iq((id) => `<iq type='set' id='${id}'><query xmlns='jabber:iq:register'>` +
      `<username>${xmlEscape(user)}</username><password>${xmlEscape(password)}</password></query></iq>`, timeoutMs);
    if (/type=(["'])result\1/.test(reply)) return 'created';
    if (/<conflict\b/.test(reply)) return 'exists';
    throw new Error(`registration of ${user} failed: ${reply}`);
  }

  /** After a successful auth: restarts the stream, binds `resource`, returns the full JID. */
  async bind(resource = 'test', timeoutMs = 5000) {
    await this.openStream(timeoutMs);
    const reply = await this.iq((id) => `<iq type='set' id='${id}'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>` +
      `<resource>${xmlEscape(resource)}</resource></bind></iq>`, timeoutMs);
    const m = /<jid>([^<]+)<\/jid>/.exec(reply);
    if (!m) throw new Error(`bind failed: ${reply}`);
    return m[1];
  }

  /** Closes the stream politely and the socket. */
  close() {
    if (this.closed) return;
    this.closed = true;
    const sock = this.socket;
    try {
      sock.end('</stream:stream>');
    } catch {
      // socket already gone
    }
    // Give the server a moment to answer with its own </stream:stream>, then drop the socket.
    setTimeout(() => sock.destroy(), 500).unref();
  }
}

/** Opens a TCP connection to host:port and resolves with a RawXmpp for `domain` (no stream yet). */
export function connectRaw({ host = '127.0.0.1', port, domain = 'localhost', timeoutMs = 5000 }) {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`connect to ${host}:${port} timed out`));
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      resolve(new RawXmpp(socket, domain));
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

/**
 * Connects, opens a stream (with STARTTLS first if `tls` is set, trusting `ca`) and resolves
 * { conn, features }. The caller closes conn.
 */
export async function openClient({ host = '127.0.0.1', port, domain = 'localhost', tls: useTls = false, ca, timeoutMs = 5000 }) {
  const conn = await connectRaw({ host, port, domain, timeoutMs });
  try {
    let features = await conn.openStream(timeoutMs);
    if (useTls) features = await conn.starttls({ ca, timeoutMs });
    return { conn, features };
  } catch (err) {
    conn.close();
    throw err;
  }
}
