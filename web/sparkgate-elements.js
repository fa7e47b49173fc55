// sparkgate-elements.js: web components on top of sparkgate.js (docs/web.md):
//   <sparkgate-login>, <sparkgate-roster>, <sparkgate-chat with="jid">, <sparkgate-rooms>.
// Each works alone on a page; all of a page's components share the page's one client
// (Sparkgate.shared()) and so its one event stream. Shadow DOM, themable with CSS custom
// properties (--sg-*); every piece of text coming from the network is set with textContent.

import { Sparkgate, bareJid, jidResource } from "./sparkgate.js";

// ---- helpers ------------------------------------------------------------------------------

/** Builds an element: attrs are attributes, except on* (listeners) and a few properties;
 *  children are nodes or strings (text nodes, never parsed as HTML). */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "text") el.textContent = String(v);
    else if (k === "hidden" || k === "disabled" || k === "value") el[k] = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) el.append(c instanceof Node ? c : String(c));
  return el;
}

const BASE_CSS = `
:host { display: block; box-sizing: border-box; font: var(--sg-font, 15px/1.4 system-ui, sans-serif);
  color: var(--sg-fg, #1d2330); background: var(--sg-bg, #fff); border: 1px solid var(--sg-border, #d5d9e0);
  border-radius: var(--sg-radius, 8px); padding: var(--sg-pad, 0.75rem); min-width: 0; }
:host([hidden]) { display: none; }
[hidden] { display: none !important; }
*, *::before, *::after { box-sizing: border-box; }
h2 { font-size: 1.05em; margin: 0 0 0.5rem; }
button, input, textarea, select { font: inherit; color: inherit; }
input, textarea { border: 1px solid var(--sg-border, #d5d9e0); border-radius: calc(var(--sg-radius, 8px) / 2);
  padding: 0.4rem 0.5rem; background: var(--sg-input-bg, #fff); min-width: 0; width: 100%; }
button { border: 1px solid var(--sg-accent, #2456c7); background: var(--sg-accent, #2456c7); color: var(--sg-accent-fg, #fff);
  border-radius: calc(var(--sg-radius, 8px) / 2); padding: 0.4rem 0.8rem; cursor: pointer; white-space: nowrap; }
button.secondary { background: transparent; color: var(--sg-accent, #2456c7); }
button:disabled { opacity: 0.5; cursor: default; }
:focus-visible { outline: 2px solid var(--sg-focus, #f5a623); outline-offset: 2px; }
label { display: block; font-size: 0.9em; color: var(--sg-muted, #5b6473); margin: 0.3rem 0 0.15rem; }
.row { display: flex; gap: 0.5rem; align-items: end; flex-wrap: wrap; }
.row > .grow { flex: 1 1 10rem; min-width: 0; }
.muted { color: var(--sg-muted, #5b6473); font-size: 0.9em; }
.error { color: var(--sg-error, #b3261e); }
[role="status"]:empty { margin: 0; }
.sr-only { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
.dot { display: inline-block; width: 0.7em; height: 0.7em; border-radius: 50%; flex: none;
  background: var(--sg-offline, #a0a6b1); }
.dot.available, .dot.chat { background: var(--sg-online, #1f9d55); }
.dot.away, .dot.xa { background: var(--sg-away, #e5a000); }
.dot.dnd { background: var(--sg-dnd, #d93025); }
.log { list-style: none; margin: 0; padding: 0.25rem; overflow-y: auto; height: var(--sg-log-height, 18rem);
  border: 1px solid var(--sg-border, #d5d9e0); border-radius: calc(var(--sg-radius, 8px) / 2); background: var(--sg-log-bg, #f7f8fa); }
.log:empty::before { content: var(--sg-empty-text, "No messages yet."); display: block; padding: 0.5rem; color: var(--sg-muted, #5b6473); font-size: 0.9em; }
.msg { margin: 0.3rem 0; max-width: 85%; padding: 0.35rem 0.6rem; border-radius: var(--sg-radius, 8px);
  background: var(--sg-theirs-bg, #fff); border: 1px solid var(--sg-border, #d5d9e0); overflow-wrap: anywhere; }
.msg.mine { margin-left: auto; background: var(--sg-mine-bg, #dfe9ff); border-color: transparent; }
.msg.system { max-width: 100%; background: transparent; border: none; color: var(--sg-muted, #5b6473); font-style: italic; }
.msg .meta { font-size: 0.78em; color: var(--sg-muted, #5b6473); }
.msg .body { white-space: pre-wrap; margin: 0.1rem 0 0; }
`;

class SparkgateElement extends HTMLElement {
  constructor() {
    super();
    this.attachShadow({ mode: "open" });
    this._offs = [];
    this._client = null;
    this._built = false;
  }

  /** The client used (default: the page's shared one). Set before or after connecting. */
  get client() {
    return this._client || Sparkgate.shared();
  }

  set client(c) {
    const attached = this.isConnected && this._built;
    if (attached) this._detach();
    this._client = c;
    if (attached) this._attach();
  }

  connectedCallback() {
    if (!this._built) {
      this._built = true;
      this.shadowRoot.append(h("style", { text: BASE_CSS + (this.constructor.css || "") }));
      this.build();
    }
    this._attach();
  }

  disconnectedCallback() {
    this._detach();
  }

  _attach() {
    const c = this.client;
    this.listen(c, "login", () => {
      this.signedIn();
      c.connect();
    });
    this.listen(c, "logout", () => this.signedOut());
    this.subscribe(c);
    if (c.loggedIn) {
      this.signedIn();
      c.connect();
    } else this.signedOut();
  }

  _detach() {
    for (const off of this._offs.splice(0)) off();
  }

  listen(client, name, fn) {
    this._offs.push(client.on(name, fn));
  }

  emit(name, detail) {
    this.dispatchEvent(new CustomEvent(name, { detail, bubbles: true, composed: true }));
  }

  $(id) {
    return this.shadowRoot.getElementById(id);
  }

  // to override
  build() {}
  subscribe() {}
  signedIn() {}
  signedOut() {}
}

function errorText(err) {
  if (!err) return "unknown error";
  if (err.name === "NotAllowedError") return "cancelled or not allowed";
  return err.message || String(err);
}

const SHOW_LABEL = { available: "online", chat: "free to chat", away: "away", xa: "away for long", dnd: "do not disturb", unavailable: "offline" };

function timeText(ms) {
  const d = new Date(ms);
  if (Number.isNaN(d.getTime())) return "";
  const same = new Date().toDateString() === d.toDateString();
  return same ? d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })
    : d.toLocaleString([], { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
}

// ---- <sparkgate-login> --------------------------------------------------------------------

export class SparkgateLogin extends SparkgateElement {
  static css = `
  .buttons { display: flex; flex-wrap: wrap; gap: 0.5rem; margin-top: 0.6rem; }
  .fields { display: grid; grid-template-columns: repeat(auto-fit, minmax(11rem, 1fr)); gap: 0 0.75rem; }
  .who { display: flex; align-items: center; gap: 0.6rem; flex-wrap: wrap; }
  .who strong { overflow-wrap: anywhere; }
  img.qr { width: 12rem; height: 12rem; background: #fff; display: block; margin: 0.5rem 0; }
  `;

  build() {
    const passkeys = typeof PublicKeyCredential !== "undefined";
    this.shadowRoot.append(
      h("form", { id: "form", "aria-labelledby": "title", onsubmit: (e) => this._password(e) },
        h("h2", { id: "title", text: this.getAttribute("heading") || "Sign in" }),
        h("div", { class: "fields" },
          h("div", {}, h("label", { for: "username", text: "Username" }),
            h("input", { id: "username", name: "username", autocomplete: "username webauthn", required: true,
              autocapitalize: "none", spellcheck: "false", value: this.getAttribute("username") || "" })),
          h("div", {}, h("label", { for: "password", text: "Password" }),
            h("input", { id: "password", name: "password", type: "password", autocomplete: "current-password" })),
          h("div", {}, h("label", { for: "code", text: "One-time code (if enrolled)" }),
            h("input", { id: "code", name: "code", inputmode: "numeric", autocomplete: "one-time-code", pattern: "[0-9]{6}",
              maxlength: "6", "aria-describedby": "code-help" }),
          h("span", { id: "code-help", class: "sr-only", text: "Six digits from your authenticator app; leave empty to sign in with the password alone." }))),
        h("div", { class: "buttons" },
          h("button", { type: "submit", id: "submit", text: "Login" }),
          passkeys ? h("button", { type: "button", id: "passkey-login", class: "secondary", text: "Sign in with a passkey",
            onclick: () => this._run("passkey-login", () => this.client.loginPasskey(this._user())) }) : null,
          passkeys ? h("button", { type: "button", id: "passkey-create", class: "secondary", text: "Create a passkey",
            onclick: () => this._run("passkey-create", () => this.client.createPasskey(this._user(), this.$("password").value)) }) : null,
          h("button", { type: "button", id: "stored-login", class: "secondary", text: "Use a saved password",
            hidden: !this.client.canStorePasswords,
            onclick: () => this._run("stored-login", async () => {
              if (!(await this.client.loginStored("optional"))) throw new Error("no saved password chosen");
            }) }),
          h("button", { type: "button", id: "totp-enrol", class: "secondary", text: "Set up one-time codes",
            onclick: () => this._enrolTotp() })),
        h("div", { id: "totp", hidden: true })),
      h("div", { id: "signed-in", class: "who", hidden: true },
        h("span", { class: "dot available", "aria-hidden": "true" }),
        h("span", {}, "Signed in as ", h("strong", { id: "who" })),
        h("button", { type: "button", id: "signout", class: "secondary", text: "Sign out", onclick: () => this._signOut() })),
      h("p", { id: "message", role: "status", "aria-live": "polite", class: "muted" }),
    );
  }

  _user() {
    const u = this.$("username").value.trim();
    if (!u) {
      this.$("username").focus();
      throw new Error("enter a username");
    }
    return u;
  }

  _password(e) {
    e.preventDefault();
    const code = this.$("code").value.trim();
    if (code) this._run("totp", () => this.client.loginTotp(this._user(), code, this.$("password").value));
    else this._run("password", () => {
      if (!this.$("password").value) throw new Error("enter the password");
      return this.client.login(this._user(), this.$("password").value);
    });
  }

  async _run(method, fn) {
    const msg = this.$("message");
    msg.classList.remove("error");
    msg.textContent = "Signing in…";
    for (const b of this.shadowRoot.querySelectorAll("button")) b.disabled = true;
    try {
      await fn();
      this.$("password").value = "";
      this.$("code").value = "";
      msg.textContent = "";
      this.emit("sparkgate-login", { username: this.client.username, method });
      this.client.connect();
    } catch (err) {
      msg.classList.add("error");
      msg.textContent = `Sign-in failed: ${errorText(err)}`;
      this.emit("sparkgate-error", { action: method, message: errorText(err), error: err });
    } finally {
      for (const b of this.shadowRoot.querySelectorAll("button")) b.disabled = false;
    }
  }

  async _enrolTotp() {
    const box = this.$("totp");
    box.replaceChildren();
    try {
      const user = this._user();
      const pw = this.$("password").value;
      if (!pw) throw new Error("enter the password first");
      const r = await this.client.enrolTotp(user, pw);
      const img = h("img", { class: "qr", alt: "QR code of the one-time code secret" });
      if (typeof r.url === "string" && /^data:image\//.test(r.url)) img.src = r.url;
      box.append(h("p", { text: "Scan this code with an authenticator app, then sign in with the password and a code." }), img);
      if (r.otpauth) {
        const secret = new URL(r.otpauth).searchParams.get("secret") || "";
        box.append(h("p", { class: "muted" }, "Secret: ", h("code", { text: secret })));
      }
      box.hidden = false;
    } catch (err) {
      box.append(h("p", { class: "error", text: `One-time codes: ${errorText(err)}` }));
      box.hidden = false;
    }
  }

  async _signOut() {
    await this.client.logout();
  }

  signedIn() {
    if (this.hasAttribute("hide-when-signed-in")) this.hidden = true;
    this.$("form").hidden = true;
    this.$("signed-in").hidden = false;
    this.$("who").textContent = this.client.username || "";
  }

  signedOut() {
    if (this.hasAttribute("hide-when-signed-in")) this.hidden = false;
    this.$("form").hidden = false;
    this.$("signed-in").hidden = true;
    this.$("totp").hidden = true;
  }
}

// ---- <sparkgate-roster> -------------------------------------------------------------------

export class SparkgateRoster extends SparkgateElement {
  static css = `
  ul { list-style: none; margin: 0 0 0.5rem; padding: 0; }
  li { display: flex; align-items: center; gap: 0.3rem; border-bottom: 1px solid var(--sg-border, #d5d9e0); }
  li:last-child { border-bottom: none; }
  .contact { flex: 1; display: flex; align-items: center; gap: 0.5rem; background: none; border: none; color: inherit;
    text-align: left; padding: 0.45rem 0.25rem; min-width: 0; white-space: normal; }
  .contact[aria-current="true"] { background: var(--sg-selected-bg, #eef3ff); }
  .names { display: flex; flex-direction: column; min-width: 0; }
  .name { font-weight: 600; overflow-wrap: anywhere; }
  .sub { font-size: 0.82em; color: var(--sg-muted, #5b6473); overflow-wrap: anywhere; }
  .head { display: flex; justify-content: space-between; align-items: baseline; gap: 0.5rem; flex-wrap: wrap; }
  .me { display: flex; align-items: baseline; gap: 0.35rem; }
  .me label { margin: 0; }
  select { border: 1px solid var(--sg-border, #d5d9e0); border-radius: calc(var(--sg-radius, 8px) / 2); padding: 0.2rem;
    background: var(--sg-input-bg, #fff); }
  .remove { background: none; border: none; color: var(--sg-muted, #5b6473); padding: 0.3rem 0.5rem; font-size: 1.1em; }
  .remove:hover { color: var(--sg-error, #b3261e); }
  `;

  constructor() {
    super();
    this.contacts = new Map();
    this._reloadTimer = null;
  }

  build() {
    this.shadowRoot.append(
      h("div", { class: "head" },
        h("h2", { id: "title", text: this.getAttribute("heading") || "Contacts" }),
        h("span", { id: "me", class: "me" },
          h("label", { for: "my-show", text: "My status" }),
          h("select", { id: "my-show", onchange: () => this._setShow() },
            ...[["available", "Online"], ["chat", "Free to chat"], ["away", "Away"], ["xa", "Away for long"],
              ["dnd", "Do not disturb"], ["offline", "Invisible (offline)"]].map(([v, t]) => h("option", { value: v, text: t }))))),
      h("p", { id: "empty", class: "muted", text: "Sign in to see your contacts." }),
      h("ul", { id: "list", "aria-labelledby": "title" }),
      h("form", { id: "add", "aria-label": "Add a contact", onsubmit: (e) => this._add(e) },
        h("div", { class: "row" },
          h("div", { class: "grow" }, h("label", { for: "add-jid", text: "Add contact (JID)" }),
            h("input", { id: "add-jid", required: true, placeholder: "bob@example.org", autocapitalize: "none", spellcheck: "false" })),
          h("div", { class: "grow" }, h("label", { for: "add-name", text: "Name (optional)" }), h("input", { id: "add-name" })),
          h("button", { type: "submit", text: "Add" }))),
      h("p", { id: "message", role: "status", class: "muted" }),
    );
  }

  subscribe(c) {
    this.listen(c, "chatapi.presence", (d) => this._presence(d));
    this.listen(c, "chatapi.xmpp", (d) => {
      const xml = decodeStanza(d?.xmpp);
      if (xml.startsWith("<iq") && xml.includes("jabber:iq:roster") && /type=['"]set['"]/.test(xml)) this._scheduleReload();
    });
    this.listen(c, "onConnect", () => this._scheduleReload(0));
    this.listen(c, "sparkgate.gap", () => this._scheduleReload());
    this.listen(c, "sparkgate.reconnected", () => this._scheduleReload());
  }

  signedIn() {
    this.$("add").hidden = false;
    this.$("me").hidden = false;
    this._scheduleReload(0);
  }

  signedOut() {
    this.contacts.clear();
    this.$("add").hidden = true;
    this.$("me").hidden = true;
    this.render();
    this.$("empty").textContent = "Sign in to see your contacts.";
  }

  /** The JID highlighted as selected (attribute `selected`). */
  get selected() {
    return this.getAttribute("selected") || "";
  }

  set selected(jid) {
    this.setAttribute("selected", jid);
  }

  static get observedAttributes() {
    return ["selected"];
  }

  attributeChangedCallback() {
    if (this._built) this.render();
  }

  async _setShow() {
    const show = this.$("my-show").value;
    try {
      await this.client.setPresence(show);
      this.$("message").textContent = "";
    } catch (err) {
      this.$("message").textContent = `Status not changed: ${errorText(err)}`;
    }
  }

  _scheduleReload(ms = 250) {
    clearTimeout(this._reloadTimer);
    this._reloadTimer = setTimeout(() => this.reload(), ms);
  }

  /** Reloads the roster with presence (P1; R1 when P1 is unavailable). */
  async reload() {
    const c = this.client;
    if (!c.loggedIn) return;
    let items;
    try {
      items = (await c.presenceRoster()).rosterItem || [];
    } catch {
      try {
        items = (await c.roster()).rosterItem || [];
      } catch (err) {
        this.$("message").textContent = `Contacts could not be loaded: ${errorText(err)}`;
        return;
      }
    }
    const next = new Map();
    for (const it of items) {
      const jid = bareJid(it.jid);
      if (!jid) continue;
      const old = this.contacts.get(jid);
      const resources = old?.resources ?? new Map();
      if (it.show && it.show !== "unavailable" && resources.size === 0) resources.set("", { show: it.show, status: it.status });
      if (it.show === "unavailable") resources.clear();
      next.set(jid, { ...it, jid, resources });
    }
    this.contacts = next;
    this.$("message").textContent = "";
    this.render();
  }

  _presence(d) {
    if (!d) return;
    const jid = bareJid(d.from);
    if (jid && jid === this.client.jid && d.from === d.to) {
      // our own presence, reflected by the server (set from any tab)
      this.$("my-show").value = d.presenceType === "unavailable" ? "offline" : d.show || "available";
      return;
    }
    const item = this.contacts.get(jid);
    if (!item) return;
    const type = d.presenceType || "available";
    const res = jidResource(d.from);
    if (type === "unavailable") {
      item.resources.delete(res);
      if (res) item.resources.delete("");
    } else if (type === "available") {
      item.resources.delete("");
      item.resources.set(res, { show: d.show || "available", status: d.status && d.status !== "null" ? d.status : "" });
    } else {
      this._scheduleReload(); // subscription changes
      return;
    }
    this.render();
  }

  /** Best presence of a contact: "unavailable" when no resource is online. */
  static best(item) {
    const rank = { chat: 0, available: 1, away: 2, xa: 3, dnd: 4 };
    let best = null;
    for (const r of item.resources.values()) if (!best || (rank[r.show] ?? 5) < (rank[best.show] ?? 5)) best = r;
    return best || { show: "unavailable", status: "" };
  }

  render() {
    const list = this.$("list");
    const items = [...this.contacts.values()].sort((a, b) => (a.nickname || a.jid).localeCompare(b.nickname || b.jid));
    this.$("empty").hidden = items.length > 0;
    if (!items.length) this.$("empty").textContent = "No contacts yet.";
    // the list is re-drawn on every presence change: the focused button gets its focus back
    const focused = this.shadowRoot.activeElement;
    const keep = focused && list.contains(focused)
      ? { jid: focused.closest("li")?.dataset.jid, cls: focused.classList.contains("remove") ? "remove" : "contact" } : null;
    list.replaceChildren(...items.map((it) => {
      const p = SparkgateRoster.best(it);
      const label = SHOW_LABEL[p.show] || p.show;
      const name = it.nickname || it.jid;
      return h("li", { "data-jid": it.jid, "data-show": p.show },
        h("button", { type: "button", class: "contact", "aria-current": this.selected === it.jid ? "true" : "false",
          "aria-label": `${name}, ${label}`, onclick: () => this._select(it.jid) },
          h("span", { class: `dot ${p.show}`, "aria-hidden": "true" }),
          h("span", { class: "names" },
            h("span", { class: "name", text: name }),
            h("span", { class: "sub", text: [it.nickname ? it.jid : "", label, p.status].filter(Boolean).join(" · ") }))),
        h("button", { type: "button", class: "remove", "aria-label": `Remove ${name}`, title: `Remove ${name}`, text: "×",
          onclick: () => this._remove(it.jid, name) }));
    }));
    if (keep) {
      const li = [...list.children].find((e) => e.dataset.jid === keep.jid);
      li?.querySelector(`button.${keep.cls}`)?.focus({ preventScroll: true });
    }
  }

  _select(jid) {
    this.selected = jid;
    this.emit("sparkgate-select", { jid });
  }

  async _add(e) {
    e.preventDefault();
    const jid = this.$("add-jid").value.trim();
    const nickname = this.$("add-name").value.trim();
    try {
      const item = { jid, subscriptionType: 3 };
      if (nickname) item.nickname = nickname;
      await this.client.addContact(item);
      this.$("add-jid").value = this.$("add-name").value = "";
      this.$("message").textContent = `${jid} added`;
      this._scheduleReload(0);
    } catch (err) {
      this.$("message").textContent = `Could not add ${jid}: ${errorText(err)}`;
    }
  }

  async _remove(jid, name) {
    if (this.hasAttribute("confirm-remove") && !confirm(`Remove ${name}?`)) return;
    try {
      await this.client.removeContact(jid);
      this.contacts.delete(jid);
      this.render();
      this.$("message").textContent = `${name} removed`;
    } catch (err) {
      this.$("message").textContent = `Could not remove ${name}: ${errorText(err)}`;
    }
  }
}

function decodeStanza(b64) {
  try {
    return new TextDecoder().decode(Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)));
  } catch {
    return "";
  }
}

// ---- <sparkgate-chat with="jid"> ----------------------------------------------------------

export class SparkgateChat extends SparkgateElement {
  static css = `
  header { display: flex; justify-content: space-between; align-items: baseline; gap: 0.5rem; flex-wrap: wrap; }
  h2 { overflow-wrap: anywhere; }
  .typing { min-height: 1.3em; font-size: 0.85em; color: var(--sg-muted, #5b6473); font-style: italic; }
  .compose { display: flex; gap: 0.5rem; margin-top: 0.5rem; align-items: end; }
  .compose textarea { flex: 1; resize: vertical; min-height: 2.4rem; height: 2.4rem; }
  .more { display: block; margin: 0.25rem auto; font-size: 0.85em; }
  `;

  constructor() {
    super();
    this.messages = [];
    this._keys = new Set();
    this._first = null;
    this._complete = true;
    this._composing = false;
    this._pausedTimer = null;
    this._typingTimer = null;
    this._gen = 0;
  }

  static get observedAttributes() {
    return ["with"];
  }

  /** The peer's bare JID (attribute `with`). */
  get with() {
    return bareJid(this.getAttribute("with") || "");
  }

  set with(jid) {
    this.setAttribute("with", jid);
  }

  attributeChangedCallback(name, old, value) {
    if (this._built && old !== value) this._reset();
  }

  build() {
    this.shadowRoot.append(
      h("header", {},
        h("h2", { id: "title" }),
        h("span", { id: "state", class: "muted" })),
      h("form", { id: "pick", "aria-label": "Choose a conversation", onsubmit: (e) => {
        e.preventDefault();
        this.with = this.$("pick-jid").value.trim();
      } },
      h("div", { class: "row" },
        h("div", { class: "grow" }, h("label", { for: "pick-jid", text: "Chat with (JID)" }),
          h("input", { id: "pick-jid", required: true, placeholder: "bob@example.org", autocapitalize: "none", spellcheck: "false" })),
        h("button", { type: "submit", text: "Open" }))),
      h("ol", { id: "log", class: "log", role: "log", "aria-live": "polite", "aria-relevant": "additions", tabindex: "0" }),
      h("div", { id: "typing", class: "typing", "aria-live": "polite" }),
      h("form", { id: "compose", class: "compose", onsubmit: (e) => this._send(e) },
        h("label", { for: "text", class: "sr-only", id: "text-label", text: "Message" }),
        h("textarea", { id: "text", rows: "1", required: true, placeholder: "Write a message…",
          oninput: () => this._typed(), onkeydown: (e) => {
            if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
              e.preventDefault();
              this.$("compose").requestSubmit();
            }
          } }),
        h("button", { type: "submit", id: "send", text: "Send" })),
    );
    this._reset();
  }

  subscribe(c) {
    this.listen(c, "chatapi.chat", (d) => this._event(d));
    this.listen(c, "sparkgate.gap", () => this._reset());
  }

  signedIn() {
    this._reset();
  }

  signedOut() {
    this._reset();
  }

  _reset() {
    const gen = ++this._gen;
    this._pending = null;
    this.messages = [];
    this._keys.clear();
    this._first = null;
    this._complete = true;
    this.$("log").replaceChildren();
    this.$("typing").textContent = "";
    const peer = this.with;
    const on = this.client.loggedIn;
    this.$("title").textContent = peer ? `Chat with ${peer}` : "Chat";
    this.$("log").setAttribute("aria-label", peer ? `Conversation with ${peer}` : "Conversation");
    this.$("text-label").textContent = peer ? `Message to ${peer}` : "Message";
    this.$("pick").hidden = !on || !!peer;
    this.$("compose").hidden = !on || !peer;
    this.$("log").hidden = !peer;
    this.$("state").textContent = on ? "" : "Sign in to chat.";
    if (on && peer) {
      this._pending = []; // live messages wait until the newest history page is shown
      this._history(gen, false).finally(() => {
        if (gen !== this._gen || !this._pending) return;
        const pending = this._pending;
        this._pending = null;
        const seen = this.messages.filter((m) => m.archived);
        for (const m of pending) {
          // the archive already had it: same side, same text, within a minute
          if (seen.some((h) => h.mine === m.mine && h.body === m.body && Math.abs(h.time - m.time) < 60000)) continue;
          this._add(m, "live");
        }
      });
    }
  }

  async _history(gen, earlier) {
    if (earlier && this._loadingEarlier === gen) return; // a double click loads one page
    const peer = this.with;
    const q = { to: peer, max: this.getAttribute("page-size") || 50 };
    if (earlier && this._first) q.before = this._first;
    else q.before = "";
    const log = this.$("log");
    const more = log.querySelector(".more");
    if (earlier) {
      this._loadingEarlier = gen;
      if (more) more.disabled = true;
    }
    log.setAttribute("aria-busy", "true"); // screen readers wait for the page, not each message
    let r;
    try {
      r = await this.client.chatMessages(q);
    } catch (err) {
      if (gen === this._gen) this.$("state").textContent = err.status === 404 ? "" : `History unavailable (${errorText(err)})`;
      return;
    } finally {
      if (this._loadingEarlier === gen) this._loadingEarlier = null;
      if (more) more.disabled = false;
      if (gen === this._gen) log.removeAttribute("aria-busy");
    }
    if (gen !== this._gen) return;
    const me = bareJid(this.client.jid);
    const list = [];
    for (const conv of r?.conversation || []) {
      for (const m of conv.message || []) {
        if (m.roomEvent || typeof m.body !== "string") continue;
        list.push({ from: m.from, to: m.to, body: m.body, time: m.sentDate, mine: bareJid(m.from) === me, id: m.id || m.stanzaId, archived: true });
      }
    }
    list.sort((a, b) => a.time - b.time);
    this._first = r?.first ?? (list.length ? null : this._first);
    this._complete = r?.complete !== false || !r?.first;
    for (const m of earlier ? list.reverse() : list) this._add(m, earlier ? "prepend" : "history");
    this._moreButton();
  }

  _moreButton() {
    this.$("log").querySelector(".more-item")?.remove();
    if (this._complete) return;
    const btn = h("button", { type: "button", class: "secondary more", text: "Load earlier messages",
      onclick: () => this._history(this._gen, true) });
    this.$("log").prepend(h("li", { class: "more-item" }, btn));
  }

  _event(d) {
    const peer = this.with;
    if (!d || !peer) return;
    const inbound = !d.sent && bareJid(d.from) === peer;
    const outbound = !!d.sent && bareJid(d.to) === peer;
    if (!inbound && !outbound) return;
    if (d.state && inbound) {
      clearTimeout(this._typingTimer);
      const t = this.$("typing");
      if (d.state === "composing") {
        t.textContent = `${peer} is typing…`;
        this._typingTimer = setTimeout(() => (t.textContent = ""), 30000);
      } else if (d.state === "paused") t.textContent = `${peer} stopped typing`;
      else t.textContent = "";
    }
    if (typeof d.body === "string" && d.body !== "undefined" && !d.state) {
      if (inbound) this.$("typing").textContent = "";
      const m = { from: d.from, to: d.to, body: d.body, time: Date.now(), mine: outbound, id: d.id, type: d.type };
      if (this._pending) this._pending.push(m);
      else this._add(m, "live");
    }
  }

  _add(m, where) {
    const key = m.id ? `id:${m.id}` : null;
    if (key && this._keys.has(key)) return;
    if (key) this._keys.add(key);
    if (where === "prepend") this.messages.unshift(m); // kept in the order shown
    else this.messages.push(m);
    const who = m.mine ? "You" : bareJid(m.from);
    const li = h("li", { class: `msg ${m.mine ? "mine" : "theirs"}${m.type === "error" ? " error" : ""}` },
      h("div", { class: "meta" }, h("span", { class: "who", text: who }), " · ",
        h("time", { datetime: new Date(m.time).toISOString(), text: timeText(m.time) })),
      h("p", { class: "body", text: m.body }));
    const log = this.$("log");
    if (where === "prepend") log.insertBefore(li, log.querySelector(".more-item")?.nextSibling ?? log.firstChild);
    else {
      const stick = log.scrollHeight - log.scrollTop - log.clientHeight < 40 || where === "history" || m.mine;
      log.append(li);
      // a long-open conversation keeps the newest 500 messages (pages loaded on request by
      // "Load earlier messages" are not trimmed)
      while (where === "live" && this.messages.length > 500) {
        const old = this.messages.shift();
        if (old.id) this._keys.delete(`id:${old.id}`);
        log.querySelector(".msg")?.remove();
      }
      if (stick) log.scrollTop = log.scrollHeight;
    }
    if (where === "live") this.emit("sparkgate-message", { ...m });
  }

  _typed() {
    const peer = this.with;
    if (!peer) return;
    if (!this._composing) {
      this._composing = true;
      this.client.chatState("composing", peer).catch(() => {});
    }
    clearTimeout(this._pausedTimer);
    this._pausedTimer = setTimeout(() => {
      if (!this._composing) return;
      this._composing = false;
      this.client.chatState("paused", peer).catch(() => {});
    }, 4000);
  }

  async _send(e) {
    e.preventDefault();
    const text = this.$("text").value;
    const peer = this.with;
    if (!text.trim() || !peer) return;
    const btn = this.$("send");
    btn.disabled = true;
    try {
      await this.client.sendMessage(peer, text);
      this.$("text").value = "";
      clearTimeout(this._pausedTimer);
      if (this._composing) {
        this._composing = false;
        this.client.chatState("active", peer).catch(() => {});
      }
      this.$("state").textContent = "";
      // the gateway echoes the message to every tab (chatapi.chat with "sent": true); when no
      // stream is open here, show it at once
      if (this.client.state !== "open") this._add({ from: this.client.jid, to: peer, body: text, time: Date.now(), mine: true }, "live");
    } catch (err) {
      this.$("state").textContent = `Not sent: ${errorText(err)}`;
    } finally {
      btn.disabled = false;
      this.$("text").focus();
    }
  }
}

// ---- <sparkgate-rooms> --------------------------------------------------------------------

export class SparkgateRooms extends SparkgateElement {
  static css = `
  .tabs { display: flex; flex-wrap: wrap; gap: 0.35rem; margin: 0.5rem 0; }
  .tab { background: transparent; color: var(--sg-accent, #2456c7); }
  .tab[aria-selected="true"] { background: var(--sg-accent, #2456c7); color: var(--sg-accent-fg, #fff); }
  .panel-head { display: flex; justify-content: space-between; gap: 0.5rem; align-items: center; flex-wrap: wrap; margin-bottom: 0.35rem; }
  .occupants { font-size: 0.85em; color: var(--sg-muted, #5b6473); overflow-wrap: anywhere; }
  .compose { display: flex; gap: 0.5rem; margin-top: 0.5rem; }
  .compose input { flex: 1; }
  .invite { border: 1px dashed var(--sg-border, #d5d9e0); padding: 0.4rem; border-radius: 6px; margin: 0.3rem 0;
    display: flex; gap: 0.5rem; align-items: center; flex-wrap: wrap; }
  `;

  constructor() {
    super();
    this.rooms = new Map(); // room bare JID -> {name, jid, messages:[], occupants:Map}
    this.current = "";
  }

  /** MUC service label or JID (attribute `service`; default: the gateway's). */
  get service() {
    return this.getAttribute("service") || "";
  }

  build() {
    this.shadowRoot.append(
      h("h2", { id: "title", text: this.getAttribute("heading") || "Group chats" }),
      h("p", { id: "empty", class: "muted", text: "Sign in to join group chats." }),
      h("form", { id: "join", "aria-label": "Join a group chat", onsubmit: (e) => this._join(e) },
        h("div", { class: "row" },
          h("div", { class: "grow" }, h("label", { for: "room", text: "Room name" }),
            h("input", { id: "room", required: true, list: "public-rooms", placeholder: "lobby", autocapitalize: "none", spellcheck: "false" })),
          h("button", { type: "submit", text: "Join" }))),
      h("datalist", { id: "public-rooms" }),
      h("div", { id: "invites" }),
      h("div", { id: "tabs", class: "tabs", role: "tablist", "aria-label": "Joined rooms" }),
      h("section", { id: "panel", role: "tabpanel", hidden: true },
        h("div", { class: "panel-head" },
          h("span", { id: "occupants", class: "occupants" }),
          h("button", { type: "button", id: "leave", class: "secondary", text: "Leave", onclick: () => this._leave() })),
        h("ol", { id: "log", class: "log", role: "log", "aria-live": "polite", "aria-label": "Room messages", tabindex: "0" }),
        h("form", { id: "post", class: "compose", onsubmit: (e) => this._post(e) },
          h("label", { for: "text", class: "sr-only", id: "text-label", text: "Message to the room" }),
          h("input", { id: "text", required: true, autocomplete: "off", placeholder: "Message the room…" }),
          h("button", { type: "submit", text: "Send" }))),
      h("p", { id: "message", role: "status", class: "muted" }),
    );
  }

  subscribe(c) {
    this.listen(c, "chatapi.muc", (d) => this._muc(d));
    this.listen(c, "sparkgate.muc", (d) => this._muc(d));
    this.listen(c, "chatapi.presence", (d) => this._presence(d));
  }

  signedIn() {
    this.$("join").hidden = false;
    this.$("empty").hidden = true;
    this.client.rooms(this.service ? { serviceName: this.service } : {}).then((r) => {
      this.$("public-rooms").replaceChildren(...(r?.chatRooms || []).map((room) => h("option", { value: room.roomName, label: room.naturalName || room.roomName })));
    }).catch(() => {});
  }

  signedOut() {
    this.rooms.clear();
    this.current = "";
    this.$("join").hidden = true;
    this.$("empty").hidden = false;
    this.$("invites").replaceChildren();
    delete this.$("log").dataset.room;
    this.$("log").replaceChildren();
    this.render();
  }

  /** The serviceName query of room r (its own, from an invitation), else the component's. */
  _query(r) {
    const svc = r?.service || this.service;
    return svc ? { serviceName: svc } : {};
  }

  _room(jid, name, service) {
    let r = this.rooms.get(jid);
    if (!r) {
      r = { jid, name: name || jid.split("@")[0], service, messages: [], occupants: new Map() };
      this.rooms.set(jid, r);
      if (!this.current) this.current = jid;
    }
    return r;
  }

  /** The room JID for a room name, guessed like the gateway (contract §0.8); corrected by the
   *  JID the gateway reports once joined (_findNick). */
  _roomJid(name, service) {
    const n = name.toLowerCase();
    const svc = service || this.service;
    for (const r of this.rooms.values()) if (r.name.toLowerCase() === n && (r.service || "") === (service || "")) return r.jid;
    const domain = this.client.domain;
    const host = !svc ? `conference.${domain}` : svc.endsWith(".") ? svc + domain : svc.includes(".") ? svc : `${svc}.${domain}`;
    return `${n}@${host}`;
  }

  async _join(e) {
    e?.preventDefault();
    const name = this.$("room").value.trim();
    if (!name) return;
    await this.join(name);
    this.$("room").value = "";
  }

  /** Joins room `name` (G7) and shows it; `service`: the MUC service's domain or label when
   *  not the component's (an invitation names the room's own domain). */
  async join(name, service) {
    const jid = this._roomJid(name, service);
    try {
      this.$("message").textContent = `Joining ${name}…`;
      const r = this._room(jid, name, service);
      this.current = jid;
      this.render();
      await this.client.joinRoom(name, this._query(r));
      this.$("message").textContent = "";
      this._findNick(jid, name);
    } catch (err) {
      this.rooms.delete(jid);
      if (!this.rooms.has(this.current)) this.current = this.rooms.keys().next().value || "";
      this.render();
      this.$("message").textContent = `Could not join ${name}: ${errorText(err)}`;
    }
  }

  /** Our nick in a room: the occupant whose real JID is ours (G5), for "mine" styling; and the
   *  room's real JID, as the gateway reports it (the tab is re-keyed when the guess was off). */
  async _findNick(jid, name) {
    try {
      let r = this.rooms.get(jid);
      const { occupants = [] } = await this.client.roomOccupants(name, this._query(r));
      r = this.rooms.get(jid);
      const real = bareJid(occupants[0]?.jid);
      if (r && real && real !== jid && !this.rooms.has(real)) {
        this.rooms = new Map([...this.rooms].map(([k, v]) => (k === jid ? [real, v] : [k, v])));
        r.jid = real;
        if (this.current === jid) this.current = real;
        this.render();
        jid = real;
      }
      const me = occupants.find((o) => bareJid(o.userAddress) === this.client.jid);
      if (me && r) {
        r.nick = jidResource(me.jid);
        if (jid === this.current) {
          delete this.$("log").dataset.room; // re-drawn: "mine" styling with the real nick
          this.render();
        }
      }
    } catch {
      /* not known: the username is used as a guess */
    }
  }

  _mine(r, nick) {
    if (!nick) return false;
    if (r.nick) return nick === r.nick;
    const c = this.client;
    return nick.toLowerCase() === (c.username || "").toLowerCase() || (!!c.profile?.name && nick === c.profile.name);
  }

  async _leave() {
    const r = this.rooms.get(this.current);
    if (!r) return;
    try {
      await this.client.leaveRoom(r.name, this._query(r));
    } catch (err) {
      this.$("message").textContent = `Leave ${r.name}: ${errorText(err)}`;
    }
    this.rooms.delete(r.jid);
    this.current = this.rooms.keys().next().value || "";
    this.render();
  }

  async _post(e) {
    e.preventDefault();
    const r = this.rooms.get(this.current);
    const text = this.$("text").value;
    if (!r || !text.trim()) return;
    try {
      await this.client.postRoom(r.name, text, this._query(r));
      this.$("text").value = "";
    } catch (err) {
      this.$("message").textContent = `Not sent: ${errorText(err)}`;
    }
  }

  _muc(d) {
    if (!d) return;
    if (d.type === "invitationReceived") {
      const room = bareJid(d.room);
      const at = room.indexOf("@");
      if (at < 1) return;
      const name = room.slice(0, at);
      const service = room.slice(at + 1); // the room's own MUC service, whatever the component's
      // a semi-anonymous room names the inviter by occupant JID (room/nick): show the nick
      const inviter = bareJid(d.inviter) === room ? jidResource(d.inviter) : bareJid(d.inviter) || bareJid(d.from);
      const box = h("div", { class: "invite", role: "status" },
        h("span", { text: `${inviter} invites you to ${room}${d.reason && d.reason !== "null" ? ` (${d.reason})` : ""}` }),
        h("button", { type: "button", text: "Join", onclick: () => {
          box.remove();
          this.join(name, service);
        } }),
        h("button", { type: "button", class: "secondary", text: "Dismiss", onclick: () => box.remove() }));
      const invites = this.$("invites");
      invites.append(box);
      while (invites.childElementCount > 20) invites.firstElementChild.remove(); // the oldest go
      return;
    }
    if (d.type === "roomLost") {
      // the gateway gave the room up (sparkgate.muc, docs/events.md): drop its tab
      const jid = bareJid(d.room);
      const r = this.rooms.get(jid);
      if (!r) return;
      this.rooms.delete(jid);
      if (this.current === jid) this.current = this.rooms.keys().next().value || "";
      this.render();
      this.$("message").textContent = `Left ${jid}: ${d.reason || "the room could not be entered again"}`;
      return;
    }
    if (d.type !== "groupchat" || typeof d.body !== "string") return;
    const jid = bareJid(d.from);
    // only rooms joined here: any JID can send a groupchat message, which must not open a tab
    const r = jid && this.rooms.get(jid);
    if (!r) return;
    const nick = jidResource(d.from);
    const m = { nick, body: d.body, time: Date.now() };
    r.messages.push(m);
    if (r.messages.length > 500) r.messages.shift();
    if (jid !== this.current) return; // a background room: shown when its tab is chosen
    this._appendMessage(m);
    const log = this.$("log");
    while (log.childElementCount > 500) log.firstElementChild.remove();
  }

  _presence(d) {
    if (!d) return;
    const jid = bareJid(d.from);
    const r = this.rooms.get(jid);
    if (!r) return;
    const nick = jidResource(d.from);
    if (!nick) return;
    if (d.presenceType === "unavailable") r.occupants.delete(nick);
    else r.occupants.set(nick, d.show || "available");
    if (jid === this.current) this._renderOccupants(r);
  }

  _renderOccupants(r) {
    const nicks = [...r.occupants.keys()].sort();
    this.$("occupants").textContent = nicks.length ? `${r.jid}: ${nicks.length} here: ${nicks.join(", ")}` : r.jid;
  }

  _appendMessage(m) {
    const log = this.$("log");
    const stick = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
    const mine = this._mine(this.rooms.get(this.current) || {}, m.nick);
    log.append(h("li", { class: `msg ${!m.nick ? "system" : mine ? "mine" : "theirs"}` },
      h("div", { class: "meta", text: mine ? `${m.nick} (you)` : m.nick || "room" }),
      h("p", { class: "body", text: m.body })));
    if (stick) log.scrollTop = log.scrollHeight;
  }

  render() {
    // the tab buttons are updated in place (a re-created button would lose the focus)
    const tabs = this.$("tabs");
    const old = new Map([...tabs.children].map((b) => [b.dataset.room, b]));
    const want = [...this.rooms.values()].map((room) => {
      const b = old.get(room.jid) || h("button", {
        type: "button", role: "tab", class: "tab", "data-room": room.jid,
        onclick: () => {
          this.current = b.dataset.room;
          this.render();
        },
        onkeydown: (e) => {
          const keys = [...this.rooms.keys()];
          const i = keys.indexOf(b.dataset.room);
          if (e.key === "ArrowRight" || e.key === "ArrowLeft") {
            this.current = keys[(i + (e.key === "ArrowRight" ? 1 : keys.length - 1)) % keys.length];
            this.render();
            this.$("tabs").querySelector('[aria-selected="true"]')?.focus();
          }
        },
      });
      b.textContent = room.name;
      b.title = room.jid; // the room's full JID
      b.setAttribute("aria-selected", room.jid === this.current ? "true" : "false");
      b.tabIndex = room.jid === this.current ? 0 : -1;
      return b;
    });
    for (const b of old.values()) if (!want.includes(b)) b.remove();
    want.forEach((b, i) => {
      if (tabs.children[i] !== b) tabs.insertBefore(b, tabs.children[i] || null);
    });
    const r = this.rooms.get(this.current);
    this.$("panel").hidden = !r;
    if (!r) return;
    this.$("log").setAttribute("aria-label", `Messages in ${r.jid}`);
    this.$("text-label").textContent = `Message to ${r.jid}`;
    this._renderOccupants(r);
    const log = this.$("log");
    if (log.dataset.room === r.jid && log.childElementCount === r.messages.length) return; // already shown
    // switching rooms refills the log: not announced as new messages
    log.setAttribute("aria-live", "off");
    log.dataset.room = r.jid;
    log.replaceChildren();
    for (const m of r.messages) this._appendMessage(m);
    log.scrollTop = log.scrollHeight;
    setTimeout(() => log.setAttribute("aria-live", "polite"));
  }
}

customElements.get("sparkgate-login") || customElements.define("sparkgate-login", SparkgateLogin);
customElements.get("sparkgate-roster") || customElements.define("sparkgate-roster", SparkgateRoster);
customElements.get("sparkgate-chat") || customElements.define("sparkgate-chat", SparkgateChat);
customElements.get("sparkgate-rooms") || customElements.define("sparkgate-rooms", SparkgateRooms);

export { Sparkgate };
