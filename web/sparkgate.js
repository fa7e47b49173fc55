// sparkgate.js: the browser library of Sparkgate (docs/web.md). A dependency-free ES module:
//
//   import { Sparkgate } from "/sparkweb/sparkgate.js";
//   const sg = Sparkgate.shared();              // one client, one event stream per page
//   await sg.login("alice", "alice-pass");      // or loginTotp / loginPasskey / loginStored
//   sg.on("chatapi.chat", (msg) => console.log(msg.from, msg.body));
//   sg.connect();                                // EventSource with tickets, reconnect, replay
//   await sg.sendMessage("bob@example.org", "hello");
//
// Tokens: the access token and the rotating refresh token are kept in sessionStorage (default),
// localStorage or memory; a call answered 401 refreshes once and is retried. Events: one
// EventSource per client, opened with single-use SSE tickets (the token never goes into a URL),
// reopened after errors with back-off and the id of the last event seen (`lastEventId`), so
// nothing is lost while the gateway still holds the events (docs/events.md).

const REST = "/sparkweb/api/rest";
const SSE = "/sparkweb/sse";
const STORAGE_KEY = "sparkgate.session";

/** Every event name the gateway sends (contract §3.5, docs/events.md). */
export const EVENT_NAMES = Object.freeze([
  "onConnect", "onDisconnect", "onAction",
  "chatapi.xmpp", "chatapi.presence", "chatapi.chat", "chatapi.muc", "chatapi.notify",
  "chatapi.ask", "chatapi.assist", "pubsub.item",
  "sparkgate.gap", "sparkgate.reconnecting", "sparkgate.reconnected", "sparkgate.muc",
]);

/** An error answered by the gateway: HTTP status plus the contract's ErrorResponse fields. */
export class SparkgateError extends Error {
  constructor(status, body, path) {
    const text = (body && (body.resource || body.message)) || `HTTP ${status}`;
    super(`${status} ${text}`);
    this.name = "SparkgateError";
    this.status = status;
    this.body = body ?? null;
    this.path = path;
    this.retryAfter = undefined;
  }
}

// ---- small helpers ------------------------------------------------------------------------

/** base64url (no padding) <-> bytes, as WebAuthn JSON uses. */
export const b64url = {
  decode(s) {
    const t = String(s).replace(/-/g, "+").replace(/_/g, "/");
    const bin = atob(t + "===".slice((t.length + 3) % 4));
    return Uint8Array.from(bin, (c) => c.charCodeAt(0));
  },
  encode(buf) {
    const bytes = buf instanceof ArrayBuffer ? new Uint8Array(buf) : new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
    let bin = "";
    for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  },
};

/** The bare JID of a JID string ("a@b/c" -> "a@b"); "" for nothing. */
export function bareJid(jid) {
  if (!jid || jid === "null") return "";
  const s = String(jid);
  const slash = s.indexOf("/");
  return (slash < 0 ? s : s.slice(0, slash)).toLowerCase();
}

/** The resource of a JID string, "" when none. */
export function jidResource(jid) {
  const s = String(jid || "");
  const slash = s.indexOf("/");
  return slash < 0 ? "" : s.slice(slash + 1);
}

/** The claims of a JWT (not verified: for display only), or {}. */
export function tokenClaims(token) {
  try {
    const part = String(token).split(".")[1];
    return JSON.parse(new TextDecoder().decode(b64url.decode(part)));
  } catch {
    return {};
  }
}

function seg(s) {
  return encodeURIComponent(String(s));
}

function memoryStorage() {
  const m = new Map();
  return {
    getItem: (k) => (m.has(k) ? m.get(k) : null),
    setItem: (k, v) => m.set(k, String(v)),
    removeItem: (k) => m.delete(k),
  };
}

function pickStorage(opt) {
  if (opt && typeof opt === "object") return opt;
  try {
    if (opt === "memory") return memoryStorage();
    if (opt === "local") return window.localStorage;
    return window.sessionStorage;
  } catch {
    return memoryStorage(); // storage disabled (sandboxed frame, privacy mode)
  }
}

function defaultUrl() {
  try {
    return new URL(import.meta.url).origin;
  } catch {
    return typeof location !== "undefined" ? location.origin : "";
  }
}

// WebAuthn JSON from the gateway -> the browser's option objects, and back.
function creationOptions(publicKey) {
  const pk = { ...publicKey };
  pk.challenge = b64url.decode(pk.challenge);
  pk.user = { ...pk.user, id: b64url.decode(pk.user.id) };
  pk.excludeCredentials = (pk.excludeCredentials || []).map((c) => ({ ...c, id: b64url.decode(c.id) }));
  return pk;
}

function requestOptions(publicKey) {
  const pk = { ...publicKey };
  pk.challenge = b64url.decode(pk.challenge);
  pk.allowCredentials = (pk.allowCredentials || []).map((c) => ({ ...c, id: b64url.decode(c.id) }));
  return pk;
}

function credentialJson(cred) {
  const r = cred.response;
  const response = { clientDataJSON: b64url.encode(r.clientDataJSON) };
  if (r.attestationObject) {
    response.attestationObject = b64url.encode(r.attestationObject);
    if (typeof r.getTransports === "function") response.transports = r.getTransports();
  } else {
    response.authenticatorData = b64url.encode(r.authenticatorData);
    response.signature = b64url.encode(r.signature);
    response.userHandle = r.userHandle ? b64url.encode(r.userHandle) : "";
  }
  return JSON.stringify({
    id: cred.id, rawId: b64url.encode(cred.rawId), type: cred.type, response,
    clientExtensionResults: typeof cred.getClientExtensionResults === "function" ? cred.getClientExtensionResults() : {},
  });
}

const SHARED = Symbol.for("sparkgate.shared");
const PAGE = Math.random(); // tells this page's clients apart from other tabs' (_claimTab)

// ---- the client ---------------------------------------------------------------------------

export class Sparkgate {
  /**
   * options: url (gateway origin; default: where this module was loaded from), storage
   * ("session" default | "local" | "memory" | a Storage-like object), storageKey, pushName
   * (web-push resource tag), tickets (default true: SSE tickets instead of ?token=),
   * ticketFallback (default false: true lets a 404 from /sse/ticket, an older gateway, switch
   * to the token in the stream's URL; otherwise such a 404 is an "error" and is retried),
   * reconnect ({min, max} back-off in ms), storeCredentials (default true: offer the browser
   * to save the password after a password login).
   */
  constructor(options = {}) {
    this.url = String(options.url || defaultUrl()).replace(/\/+$/, "");
    this.storage = pickStorage(options.storage);
    this.storageKey = options.storageKey || STORAGE_KEY;
    this.pushName = options.pushName || "sparkgate";
    this.useTickets = options.tickets !== false;
    this.ticketFallback = options.ticketFallback === true;
    this.storeCredentials = options.storeCredentials !== false;
    this.reconnectMin = options.reconnect?.min ?? 500;
    this.reconnectMax = options.reconnect?.max ?? 30000;
    this.token = null;
    this.refreshToken = null;
    this.username = null;
    this.expiresAt = 0;
    this.lastEventId = "";
    this.state = "idle"; // idle | connecting | open | closed
    this.profile = null; // the last onConnect payload
    this._handlers = new Map();
    this._source = null;
    this._wanted = false;
    this._retry = 0;
    this._retryTimer = null;
    this._stableTimer = null;
    this._refreshTimer = null;
    this._refreshing = null;
    this._gen = 0; // bumped by every logout: a refresh started before it must not write back
    this._load();
    this._tabCheck = this._claimTab();
    if (this.token) this._scheduleRefresh(); // a reload: refresh before the stored token expires
    let shared = false;
    try {
      shared = typeof window !== "undefined" && this.storage === window.localStorage;
    } catch {
      shared = false; // storage access refused (sandboxed frame)
    }
    if (shared) {
      window.addEventListener("storage", (e) => {
        if (e.key !== this.storageKey) return;
        const had = this.token;
        const user = this.username;
        this._load();
        if (had && !this.token) this._loggedOut("storage");
        else if (had && this.token && this.username !== user) {
          // another tab signed in as someone else: this tab's user is gone (its stream, its
          // views), then the new user logs in here too. The storage is the other tab's: kept.
          const next = { token: this.token, refreshToken: this.refreshToken, username: this.username, expiresAt: this.expiresAt };
          this._loggedOut("storage", true);
          Object.assign(this, next);
          this._scheduleRefresh();
          this._emit("login", { username: this.username });
        } else if (!had && this.token) this._emit("login", { username: this.username }); // signed in in another tab
      });
    }
  }

  /** The page's one client (created on first use with `options`). Components use it. */
  static shared(options) {
    const g = globalThis;
    if (!g[SHARED]) g[SHARED] = new Sparkgate(options);
    return g[SHARED];
  }

  /** Replaces the page's shared client (call before components connect). */
  static configure(options) {
    const old = globalThis[SHARED];
    if (old) old.disconnect();
    globalThis[SHARED] = new Sparkgate(options);
    return globalThis[SHARED];
  }

  get loggedIn() {
    return !!this.token;
  }

  /** The XMPP domain (the token's audience). */
  get domain() {
    return tokenClaims(this.token).aud || "";
  }

  /** The user's bare JID. */
  get jid() {
    return this.username && this.domain ? `${this.username}@${this.domain}` : "";
  }

  // ---- events ----

  /** Calls handler(data, event) for every event `name`; returns a function that unsubscribes.
   *  Names: the gateway's (EVENT_NAMES) plus the client's own "login", "logout", "state",
   *  "error" and "*" (every gateway event, handler(data, event) with event.type). */
  on(name, handler) {
    let set = this._handlers.get(name);
    if (!set) {
      set = new Set();
      this._handlers.set(name, set);
      if (this._source && !EVENT_NAMES.includes(name) && !this._isLocal(name)) this._listen(this._source, name);
    }
    set.add(handler);
    return () => set.delete(handler);
  }

  /** Subscribes for one event only; resolves with its data. */
  once(name) {
    return new Promise((resolve) => {
      const off = this.on(name, (d) => {
        off();
        resolve(d);
      });
    });
  }

  _isLocal(name) {
    return ["login", "logout", "state", "error", "*"].includes(name);
  }

  _emit(name, data, event) {
    for (const set of [this._handlers.get(name), this._isLocal(name) ? null : this._handlers.get("*")]) {
      if (!set) continue;
      for (const h of [...set]) {
        try {
          h(data, event ?? { type: name });
        } catch (err) {
          setTimeout(() => {
            throw err;
          });
        }
      }
    }
  }

  _setState(s) {
    if (this.state === s) return;
    this.state = s;
    this._emit("state", s);
  }

  // ---- duplicated tabs ----

  // "Duplicate tab" copies sessionStorage, refresh token included: two tabs rotating the same
  // token would make the second one a replay, and the gateway revokes the whole family. Every
  // tab keeps an id in sessionStorage and answers for it on a BroadcastChannel; at startup a
  // tab asks whether a live tab already holds its id. If one does, this tab is the copy: it
  // takes a new id and drops the copied refresh token (the access token works until it
  // expires; then the user logs in again here). Two copies starting together are ordered by a
  // random number. Resolves when the check is over (refresh() waits for it).
  _claimTab() {
    let ss = null;
    try {
      ss = typeof window !== "undefined" && this.storage === window.sessionStorage ? window.sessionStorage : null;
    } catch {
      ss = null;
    }
    if (!ss || typeof BroadcastChannel === "undefined") return Promise.resolve();
    const key = `${this.storageKey}.tab`;
    const fresh = () => {
      const id = crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random()}`;
      try {
        ss.setItem(key, id);
      } catch {
        /* storage disabled */
      }
      return id;
    };
    let id = null;
    try {
      id = ss.getItem(key);
    } catch {
      id = null;
    }
    const copied = !!id && !!this.refreshToken;
    if (!id) id = fresh();
    const ch = new BroadcastChannel(`${this.storageKey}.tabs`);
    const nonce = Math.random();
    let checking = copied;
    let done;
    const over = new Promise((resolve) => (done = resolve));
    ch.onmessage = (e) => {
      const m = e.data || {};
      if (m.id !== id || m.page === PAGE) return; // another client of this same page
      if (m.type === "who" && (!checking || nonce > m.nonce)) ch.postMessage({ type: "mine", id, page: PAGE });
      else if (m.type === "mine" && checking) {
        checking = false;
        id = fresh();
        this.refreshToken = null;
        clearTimeout(this._refreshTimer);
        this._save();
        done();
      }
    };
    if (!copied) return Promise.resolve();
    ch.postMessage({ type: "who", id, nonce, page: PAGE });
    setTimeout(() => {
      checking = false;
      done();
    }, 300);
    return over;
  }

  // ---- token storage ----

  _load() {
    let s = null;
    try {
      s = JSON.parse(this.storage.getItem(this.storageKey) || "null");
    } catch {
      s = null;
    }
    this.token = s?.token || null;
    this.refreshToken = s?.refreshToken || null;
    this.username = s?.username || null;
    this.expiresAt = s?.expiresAt || 0;
    if (s?.lastEventId) this.lastEventId = s.lastEventId;
  }

  _save() {
    try {
      if (!this.token) this.storage.removeItem(this.storageKey);
      else this.storage.setItem(this.storageKey, JSON.stringify({
        token: this.token, refreshToken: this.refreshToken, username: this.username, expiresAt: this.expiresAt,
      }));
    } catch {
      /* storage full or disabled: the tokens stay in memory */
    }
  }

  /** Takes a login answer {token, refreshToken?, expiresIn?}. */
  _accept(json, username) {
    if (!json || typeof json.token !== "string") throw new SparkgateError(500, { resource: "no token in the answer" });
    const first = !this.token;
    this.token = json.token;
    if (json.refreshToken) this.refreshToken = json.refreshToken;
    this.username = (username || tokenClaims(json.token).sub || this.username || "").toLowerCase();
    const claims = tokenClaims(json.token);
    this.expiresAt = json.expiresIn ? Date.now() + json.expiresIn * 1000 : (claims.exp ? claims.exp * 1000 : 0);
    this._save();
    this._scheduleRefresh();
    if (first) this._emit("login", { username: this.username });
    return json;
  }

  _scheduleRefresh() {
    clearTimeout(this._refreshTimer);
    if (!this.refreshToken || !this.expiresAt) return;
    const wait = Math.max(5000, this.expiresAt - Date.now() - 60000);
    this._refreshTimer = setTimeout(() => this._timedRefresh(0), Math.min(wait, 2 ** 31 - 1));
  }

  // A timed refresh that failed without ending the session (offline, 5xx, 429) is retried
  // with back-off (5 s doubling up to 5 min) while the refresh token lasts.
  _timedRefresh(fails) {
    const gen = this._gen;
    this.refresh().catch(() => {
      if (gen !== this._gen || !this.refreshToken) return;
      clearTimeout(this._refreshTimer);
      this._refreshTimer = setTimeout(() => this._timedRefresh(fails + 1), Math.min(300000, 5000 * 2 ** fails));
    });
  }

  _loggedOut(reason, keepStorage = false) {
    const was = this.token;
    this._gen++;
    clearTimeout(this._refreshTimer);
    this.token = this.refreshToken = null;
    this.expiresAt = 0;
    this.lastEventId = "";
    if (!keepStorage) this._save();
    this.disconnect();
    if (was || reason) this._emit("logout", { reason });
  }

  // ---- HTTP ----

  /** One REST call (path relative to /sparkweb/api/rest). Resolves the parsed JSON, the text
   *  for a non-JSON answer, or null for an empty one; rejects with SparkgateError. A 401 with a
   *  refresh token refreshes once and retries. opts: query (object), body (string: sent as is;
   *  other values: JSON), auth (default true), headers, keepalive. */
  async request(method, path, opts = {}) {
    const auth = opts.auth !== false;
    let res = await this._fetch(method, path, opts, auth);
    if (res.status === 401 && auth && this.refreshToken) {
      const before = this.token;
      try {
        await this.refresh(before);
      } catch {
        /* refresh failed: report the 401 below */
      }
      if (this.token && this.token !== before) res = await this._fetch(method, path, opts, auth);
    }
    const text = await res.text();
    let json = null;
    if (text) {
      try {
        json = JSON.parse(text);
      } catch {
        json = text;
      }
    }
    if (!res.ok) {
      const err = new SparkgateError(res.status, json && typeof json === "object" ? json : null, path);
      const ra = res.headers.get("retry-after");
      if (ra) err.retryAfter = Number(ra);
      if (res.status === 401 && auth && this.token) this._loggedOut("unauthorized");
      throw err;
    }
    return json;
  }

  _fetch(method, path, opts, auth) {
    let url = this.url + REST + path;
    if (opts.query) {
      const q = new URLSearchParams();
      // undefined and null are left out; "" is sent (C1: an empty `before` asks for the newest page)
      for (const [k, v] of Object.entries(opts.query)) if (v !== undefined && v !== null) q.set(k, String(v));
      const qs = q.toString();
      if (qs) url += (url.includes("?") ? "&" : "?") + qs;
    }
    const headers = { ...(opts.headers || {}) };
    if (auth && this.token && !headers.Authorization) headers.Authorization = this.token;
    let body = opts.body;
    if (body !== undefined && body !== null && typeof body !== "string") {
      body = JSON.stringify(body);
      headers["Content-Type"] = "application/json";
    }
    return fetch(url, { method, headers, body, keepalive: !!opts.keepalive, credentials: "omit" });
  }

  // ---- logins ----

  /** Password login (A1). Offers the browser to store the password (Credential Management). */
  async login(username, password) {
    const user = String(username).trim();
    const json = await this.request("POST", `/login/${seg(user)}`, { body: String(password), auth: false });
    this._dropOldSession(user);
    this._accept(json, user);
    if (this.storeCredentials) this.storePassword(user, password);
    return json;
  }

  /** In-band registration (A3) and login. */
  async register(username, password) {
    const user = String(username).trim();
    const json = await this.request("POST", `/register/${seg(user)}`, { body: String(password), auth: false });
    this._dropOldSession(user);
    return this._accept(json, user);
  }

  /** TOTP login (A9): with the password (default gateway setting), or with the current token
   *  of the same user (step-up) when password is omitted. */
  async loginTotp(username, code, password) {
    const user = String(username).trim();
    const opts = { auth: password === undefined || password === null || password === "", body: password ? String(password) : "" };
    const json = await this.request("POST", `/totp/authenticate/${seg(user)}/${seg(String(code).trim())}`, opts);
    this._dropOldSession(user);
    return this._accept(json, user);
  }

  /** TOTP enrolment (A8): {url (QR image, usable as img src), otpauth, svg}. */
  enrolTotp(username, password) {
    return this.request("POST", `/totp/register/${seg(String(username).trim())}`, { body: String(password), auth: false });
  }

  /** Passkey login (A6/A7) via navigator.credentials.get. A valid token of the same user
   *  short-cuts into a refresh (the gateway answers a token instead of a challenge). */
  async loginPasskey(username) {
    const user = String(username).trim();
    const start = await this.request("POST", `/webauthn/authenticate/start/${seg(user)}`,
      { auth: this.username === user.toLowerCase() });
    if (start.token) return this._accept(start, user);
    if (!start.assertion) throw new SparkgateError(500, { resource: "no WebAuthn challenge" });
    const cred = await navigator.credentials.get({ publicKey: requestOptions(start.assertion.publicKey) });
    if (!cred) throw new SparkgateError(400, { resource: "no passkey chosen" });
    const json = await this.request("POST", `/webauthn/authenticate/finish/${seg(user)}`,
      { body: credentialJson(cred), headers: { "Content-Type": "application/json" }, auth: false });
    this._dropOldSession(user);
    return this._accept(json, user);
  }

  /** Passkey enrolment (A4/A5) with the password, via navigator.credentials.create; logs in. */
  async createPasskey(username, password) {
    const user = String(username).trim();
    const start = await this.request("POST", `/webauthn/register/start/${seg(user)}`, { body: String(password), auth: false });
    const cred = await navigator.credentials.create({ publicKey: creationOptions(start.credentials.publicKey) });
    if (!cred) throw new SparkgateError(400, { resource: "no passkey created" });
    const json = await this.request("POST", `/webauthn/register/finish/${seg(user)}`,
      { body: credentialJson(cred), headers: { "Content-Type": "application/json" }, auth: false });
    this._dropOldSession(user);
    return this._accept(json, user);
  }

  /** The caller's passkeys: {credentials:[{id, alg, signCount, created, lastUsed}]}. */
  passkeys() {
    return this.request("GET", "/webauthn/credentials");
  }

  deletePasskey(id) {
    return this.request("DELETE", `/webauthn/credentials/${seg(id)}`);
  }

  /** True when the browser offers the Credential Management password store. */
  get canStorePasswords() {
    return typeof window !== "undefined" && "PasswordCredential" in window && !!navigator.credentials;
  }

  /** Saves username/password in the browser's password store (ignored where unsupported). */
  async storePassword(username, password) {
    if (!this.canStorePasswords) return false;
    try {
      await navigator.credentials.store(new window.PasswordCredential({ id: username, password: String(password), name: username }));
      return true;
    } catch {
      return false;
    }
  }

  /** Logs in with a password from the browser's store; false when none was chosen. */
  async loginStored(mediation = "optional") {
    if (!this.canStorePasswords) return false;
    const cred = await navigator.credentials.get({ password: true, mediation });
    if (!cred || !cred.password) return false;
    const user = String(cred.id).split("@")[0];
    const store = this.storeCredentials;
    this.storeCredentials = false;
    try {
      await this.login(user, cred.password);
    } finally {
      this.storeCredentials = store;
    }
    return true;
  }

  _dropOldSession(user) {
    if (this.token && this.username && this.username !== user.toLowerCase()) {
      this._gen++;
      this.disconnect();
      this.token = this.refreshToken = null;
      this.lastEventId = "";
    }
  }

  /** Rotates the refresh token (POST /token/refresh). Concurrent callers, also in other tabs
   *  sharing localStorage, share one rotation (navigator.locks where available). */
  refresh(stale) {
    if (this._refreshing) return this._refreshing;
    const run = async () => {
      await this._tabCheck; // a duplicated tab must not rotate the copied refresh token
      const gen = this._gen;
      this._load();
      if (stale !== undefined && this.token && this.token !== stale) return { token: this.token }; // another tab did it
      if (!this.refreshToken) throw new SparkgateError(401, { resource: "no refresh token" });
      let res;
      try {
        res = await this._fetch("POST", "/token/refresh", { body: this.refreshToken }, false);
      } catch (err) {
        throw new SparkgateError(0, { resource: String(err.message || err) });
      }
      const json = await res.json().catch(() => null);
      // logged out (or another user logged in) while this refresh was in flight: the answer
      // belongs to a session that is gone; writing it back would resurrect it
      if (gen !== this._gen) throw new SparkgateError(401, { resource: "logged out during the refresh" });
      if (!res.ok) {
        if (res.status === 401 || res.status === 400) this._loggedOut("refresh-failed");
        throw new SparkgateError(res.status, json);
      }
      return this._accept(json, this.username);
    };
    const locked = typeof navigator !== "undefined" && navigator.locks
      ? () => navigator.locks.request(`${this.storageKey}.refresh`, run) : run;
    this._refreshing = locked().finally(() => {
      this._refreshing = null;
    });
    return this._refreshing;
  }

  /** Logs out (A2): the gateway closes the user's session (every tab, by default); the tokens
   *  are dropped here whatever the answer. */
  async logout({ keepalive = false } = {}) {
    const token = this.token;
    this._wanted = false;
    if (token) {
      try {
        const res = await this._fetch("POST", "/logout", { keepalive }, true);
        if (res.status === 401 && this.refreshToken) {
          // the access token expired: refresh and retry, or the gateway session stays
          await this.refresh(token).catch(() => {});
          if (this.token && this.token !== token) await this._fetch("POST", "/logout", { keepalive }, true);
        }
      } catch {
        /* offline: the tokens are dropped anyway */
      }
      if (!this.token) return; // the refresh failed and already ran the logged-out path
    }
    this._loggedOut("logout");
  }

  // ---- the event stream ----

  /** Opens the page's event stream (idempotent). Reopens it after errors until disconnect(). */
  connect() {
    this._wanted = true;
    if (this._source || this._retryTimer || this._opening) return;
    this._open();
  }

  /** Closes the event stream and stops reconnecting. */
  disconnect() {
    this._wanted = false;
    clearTimeout(this._retryTimer);
    this._retryTimer = null;
    if (this._source) {
      this._source.close();
      this._source = null;
    }
    this._setState(this.token ? "closed" : "idle");
  }

  async _open() {
    if (!this.token) {
      this._setState("idle");
      return;
    }
    this._opening = true;
    this._setState("connecting");
    const q = new URLSearchParams();
    try {
      if (this.useTickets) {
        try {
          const t = await this.request("POST", "/sse/ticket");
          q.set("ticket", t.ticket);
        } catch (err) {
          // A 404 may be a proxy or a gateway being redeployed, not an older gateway: the
          // token goes into the URL (logs, history) only when the page asked for it.
          if (err.status !== 404 || !this.ticketFallback) throw err;
          this.useTickets = false;
        }
      }
      if (!this.useTickets) q.set("token", this.token);
    } catch (err) {
      this._opening = false;
      if (!this.token || err.status === 401) {
        this._setState("idle");
        return;
      }
      this._emit("error", err);
      this._scheduleReconnect();
      return;
    }
    this._opening = false;
    if (!this._wanted) return;
    if (this.lastEventId) q.set("lastEventId", this.lastEventId);
    const es = new EventSource(`${this.url}${SSE}?${q}`);
    this._source = es;
    const names = new Set([...EVENT_NAMES, ...[...this._handlers.keys()].filter((n) => !this._isLocal(n))]);
    for (const name of names) this._listen(es, name);
    es.onerror = () => {
      if (this._source !== es) return;
      // A ticket is single use: the browser's own retry would be refused. Open a new one.
      es.close();
      this._source = null;
      this._setState("connecting");
      this._scheduleReconnect();
    };
  }

  _listen(es, name) {
    es.addEventListener(name, (ev) => {
      if (this._source !== es) return;
      if (ev.lastEventId) this.lastEventId = ev.lastEventId;
      let data = null;
      try {
        data = ev.data ? JSON.parse(ev.data) : null;
      } catch {
        data = ev.data;
      }
      if (name === "onConnect") {
        // the back-off is reset only once the stream proved itself (30 s up, or a real event):
        // a stream that connects and drops at once must not be reopened every 250-500 ms
        clearTimeout(this._stableTimer);
        this._stableTimer = setTimeout(() => {
          if (this._source === es) this._retry = 0;
        }, 30000);
        this.profile = data;
        this._setState("open");
      } else if (name !== "onDisconnect") {
        this._retry = 0;
      }
      this._emit(name, data, ev);
      if (name === "onDisconnect") {
        const reason = data?.reason || "";
        if (reason === "logout" || reason === "token-revoked") this._loggedOut(reason);
        else {
          es.close();
          this._source = null;
          this._scheduleReconnect();
        }
      }
    });
  }

  _scheduleReconnect() {
    if (!this._wanted || this._retryTimer) return;
    const base = Math.min(this.reconnectMax, this.reconnectMin * 2 ** this._retry++);
    const wait = base / 2 + Math.random() * (base / 2);
    this._retryTimer = setTimeout(() => {
      this._retryTimer = null;
      if (this._wanted && !this._source) this._open();
    }, wait);
  }

  // ---- REST helpers, contract §8.1 (paths under /sparkweb/api/rest) ----

  // chat (C1-C3)
  /** C1 archive search: {to, keywords, start, end, before, after, max} -> {conversation, first, last, complete}. */
  chatMessages(query = {}) {
    return this.request("GET", "/chat/messages", { query });
  }
  /** C2: body is text, or an object sent as JSON (its `body` member is the message text). */
  sendMessage(to, body) {
    return this.request("POST", `/chat/message/${seg(to)}`, { body: typeof body === "string" ? body : JSON.stringify(body) });
  }
  /** C3: state is composing | paused | active | inactive | gone. */
  chatState(state, to) {
    return this.request("POST", `/chat/chatstate/${seg(state)}/${seg(to)}`);
  }

  // roster (R1-R4)
  roster() {
    return this.request("GET", "/roster");
  }
  /** R2: item {jid, nickname?, subscriptionType? (0 none, 1 to, 2 from, 3 both), groups?}. */
  addContact(item) {
    return this.request("POST", "/roster", { body: typeof item === "string" ? { jid: item } : item });
  }
  updateContact(jid, item) {
    return this.request("PUT", `/roster/${seg(jid)}`, { body: item });
  }
  removeContact(jid) {
    return this.request("DELETE", `/roster/${seg(jid)}`);
  }

  // presence (P1-P3)
  /** P1: the roster with show/status ("unavailable" for contacts offline). */
  presenceRoster() {
    return this.request("GET", "/presence/roster");
  }
  presence(target) {
    return this.request("GET", `/presence/${seg(target)}`);
  }
  /** P3: show is available | away | chat | dnd | xa | offline. */
  setPresence(show, status) {
    return this.request("POST", "/presence", { query: { show, status } });
  }

  // group chat (G1-G10); opts.serviceName defaults to the gateway's MUC service
  roomMessages(query = {}) {
    return this.request("GET", "/groupchat/messages", { query });
  }
  rooms(query = {}) {
    return this.request("GET", "/groupchat/rooms", { query });
  }
  room(name, query = {}) {
    return this.request("GET", `/groupchat/room/${seg(name)}`, { query });
  }
  roomParticipants(name, query = {}) {
    return this.request("GET", `/groupchat/room/${seg(name)}/participants`, { query });
  }
  roomOccupants(name, query = {}) {
    return this.request("GET", `/groupchat/room/${seg(name)}/occupants`, { query });
  }
  roomHistory(name, query = {}) {
    return this.request("GET", `/groupchat/room/${seg(name)}/chathistory`, { query });
  }
  joinRoom(name, query = {}) {
    return this.request("PUT", `/groupchat/room/${seg(name)}`, { query });
  }
  leaveRoom(name, query = {}) {
    return this.request("DELETE", `/groupchat/room/${seg(name)}`, { query });
  }
  postRoom(name, body, query = {}) {
    return this.request("POST", `/groupchat/room/${seg(name)}`, { query, body: typeof body === "string" ? body : JSON.stringify(body) });
  }
  inviteRoom(name, jid, reason = "", query = {}) {
    return this.request("POST", `/groupchat/room/${seg(name)}/${seg(jid)}`, { query, body: String(reason) });
  }

  // bookmarks (B1-B7)
  createBookmark(bookmark) {
    return this.request("POST", "/bookmark", { body: bookmark });
  }
  bookmarks() {
    return this.request("GET", "/bookmarks");
  }
  bookmark(id) {
    return this.request("GET", `/bookmark/${seg(id)}`);
  }
  updateBookmark(id, bookmark) {
    return this.request("PUT", `/bookmark/${seg(id)}`, { body: bookmark });
  }
  deleteBookmark(id) {
    return this.request("DELETE", `/bookmark/${seg(id)}`);
  }
  setBookmarkProperty(id, name, value) {
    return this.request("POST", `/bookmark/${seg(id)}/${seg(name)}`, { body: String(value) });
  }
  deleteBookmarkProperty(id, name) {
    return this.request("DELETE", `/bookmark/${seg(id)}/${seg(name)}`);
  }

  // collaboration (K1-K11)
  pubsubNodes() {
    return this.request("GET", "/pubsub/nodes");
  }
  pubsubCreate(node) {
    return this.request("POST", `/pubsub/create/${seg(node)}`);
  }
  pubsubSubscribe(node) {
    return this.request("POST", `/pubsub/subscribe/${seg(node)}`);
  }
  pubsubPublish(node, json) {
    return this.request("POST", `/pubsub/publish/${seg(node)}`, { body: typeof json === "string" ? json : JSON.stringify(json) });
  }
  pubsubSubscribers(node) {
    return this.request("GET", `/pubsub/subscribers/${seg(node)}`);
  }
  pepNodes() {
    return this.request("GET", "/pep/nodes");
  }
  pepPublish(node, json) {
    return this.request("POST", `/pep/publish/${seg(node)}`, { body: typeof json === "string" ? json : JSON.stringify(json) });
  }
  meeting(service, id) {
    return this.request("GET", `/meet/${seg(service)}/${seg(id)}`);
  }
  uploadSlot(fileName, fileSize) {
    return this.request("GET", `/upload/${seg(fileName)}/${seg(fileSize)}`);
  }
  preview(url, quality = 1) {
    return this.request("GET", `/preview/${seg(quality)}/${seg(url)}`);
  }
  /** K11: one raw stanza (message, presence or iq). */
  sendXmpp(stanza) {
    return this.request("POST", "/xmpp", { body: String(stanza) });
  }

  // users and configuration (U1-U12)
  users(query = {}) {
    return this.request("GET", "/users", { query });
  }
  user() {
    return this.request("GET", "/user");
  }
  updateUser(user) {
    return this.request("PUT", "/user", { body: user });
  }
  deleteUser() {
    return this.request("DELETE", "/user");
  }
  userGroups() {
    return this.request("GET", "/user/groups");
  }
  addUserGroups(groupnames) {
    return this.request("POST", "/user/groups", { body: { groupnames } });
  }
  removeUserGroups(groupnames) {
    return this.request("DELETE", "/user/groups", { body: { groupnames } });
  }
  addUserGroup(name) {
    return this.request("POST", `/user/groups/${seg(name)}`);
  }
  removeUserGroup(name) {
    return this.request("DELETE", `/user/groups/${seg(name)}`);
  }
  configGlobal() {
    return this.request("GET", "/config/global", { auth: false });
  }
  configProperties() {
    return this.request("GET", "/config/properties");
  }
  /** U12: props is [{name, value}] or a plain object. */
  setConfigProperties(props) {
    const list = Array.isArray(props) ? props : Object.entries(props).map(([name, value]) => ({ name, value: String(value) }));
    return this.request("POST", "/config/properties", { body: JSON.stringify(list) });
  }

  // web push (W1-W6)
  vapidKey() {
    return this.request("GET", "/webpush/vapidkey");
  }
  pushSubscribe(subscription, resource = this.pushName) {
    return this.request("PUT", `/webpush/subscribe/${seg(resource)}`, { body: JSON.stringify(subscription) });
  }
  pushSubscribers() {
    return this.request("GET", "/webpush/subscribers");
  }
  pushSubscriptions() {
    return this.request("GET", "/webpush/subscriptions");
  }
  pushNotify(target, notification) {
    return this.request("POST", `/webpush/notify/${seg(target)}`, { body: notification });
  }
  pushMessage(target, text) {
    return this.request("POST", `/webpush/message/${seg(target)}`, { body: String(text) });
  }
  pushAction(action) {
    return this.request("POST", "/webpush/action", { body: action });
  }
  /** Registers the service worker (default /sparkweb/sw.js), subscribes with the gateway's
   *  VAPID key and stores the subscription under `resource`. Asks for permission first. */
  async enablePush({ worker = "/sparkweb/sw.js", scope = "/sparkweb/", resource = this.pushName } = {}) {
    if (!("serviceWorker" in navigator) || !("PushManager" in window)) throw new Error("not supported here");
    if ((await Notification.requestPermission()) !== "granted") throw new Error("permission denied");
    await navigator.serviceWorker.register(worker, { scope });
    const reg = await navigator.serviceWorker.ready;
    const { publicKey } = await this.vapidKey();
    const old = await reg.pushManager.getSubscription();
    if (old) await old.unsubscribe();
    const sub = await reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: b64url.decode(publicKey) });
    await this.pushSubscribe(typeof sub.toJSON === "function" ? sub.toJSON() : sub, resource);
    return sub;
  }

  // tokens and tickets
  sseTicket() {
    return this.request("POST", "/sse/ticket");
  }

  /** Resolves true when the gateway answers (the reference's isOnline). */
  async isOnline() {
    if (typeof navigator !== "undefined" && navigator.onLine === false) return false;
    try {
      const res = await fetch(`${this.url}/sparkweb/sparkgate.js?rand=${Date.now()}`, { method: "HEAD", credentials: "omit" });
      return res.ok;
    } catch {
      return false;
    }
  }
}

export default Sparkgate;
