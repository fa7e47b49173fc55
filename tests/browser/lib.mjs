// lib.mjs: shared pieces of the browser tests of the web components (tests/browser/*.test.mjs):
// Chromium launch, roster setup over a raw XMPP stream, waiting on text inside shadow roots,
// screenshots (desktop and 360 px phone width) under tests/browser/screenshots/, TOTP codes.
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { chromium } from 'playwright-core';
import { openClient } from '../harness/xmpp-raw.mjs';
import { repoRoot } from '../harness/proc.mjs';

export const webRoot = path.join(repoRoot, 'web');
export const shotsDir = path.join(repoRoot, 'tests', 'browser', 'screenshots');

export function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox'],
  });
}

/** A raw, authenticated and bound XMPP client of `user` (for roster setup, headlines). */
export async function xmppClient(prosody, user, password, resource = 'setup') {
  const ca = prosody.caFile ? fs.readFileSync(prosody.caFile) : undefined;
  const { conn } = await openClient({ port: prosody.c2sPort, domain: prosody.domain, tls: prosody.tls, ca });
  if (!(await conn.authPlain(user, password)).ok) throw new Error(`auth ${user} failed`);
  await conn.bind(resource);
  return conn;
}

/** Makes a and b contacts of each other with subscription "both" (roster + pre-approvals). */
export async function befriend(prosody, [a, pa], [b, pb]) {
  const d = prosody.domain;
  const ca = await xmppClient(prosody, a, pa);
  const cb = await xmppClient(prosody, b, pb);
  try {
    for (const [conn, peer] of [[ca, b], [cb, a]]) {
      await conn.iq((id) => `<iq type='set' id='${id}'><query xmlns='jabber:iq:roster'><item jid='${peer}@${d}' name='${peer}'/></query></iq>`);
    }
    for (const [conn, peer] of [[ca, b], [cb, a]]) {
      conn.send(`<presence to='${peer}@${d}' type='subscribed'/>`);
      conn.send(`<presence to='${peer}@${d}' type='subscribe'/>`);
    }
    // wait until both see "both"
    for (let i = 0; i < 50; i++) {
      const subs = [];
      for (const [conn, peer] of [[ca, b], [cb, a]]) {
        const r = await conn.iq((id) => `<iq type='get' id='${id}'><query xmlns='jabber:iq:roster'/></iq>`);
        subs.push(new RegExp(`jid=['"]${peer}@${d}['"][^>]*subscription=['"]both['"]|subscription=['"]both['"][^>]*jid=['"]${peer}@${d}['"]`).test(r));
      }
      if (subs.every(Boolean)) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`${a} and ${b} did not reach subscription both`);
  } finally {
    ca.close();
    cb.close();
  }
}

/** RFC 6238 code (SHA-1, 30 s, 6 digits) of a base32 secret, for step `offset` from now. */
export function totpCode(secret, offset = 0) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const ch of secret.replace(/=+$/, '').toUpperCase()) bits += alphabet.indexOf(ch).toString(2).padStart(5, '0');
  const key = Buffer.from(bits.match(/.{8}/g).map((b) => parseInt(b, 2)));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(Date.now() / 30000) + offset));
  const mac = crypto.createHmac('sha1', key).update(counter).digest();
  const o = mac[mac.length - 1] & 15;
  return String((mac.readUInt32BE(o) & 0x7fffffff) % 1e6).padStart(6, '0');
}

/** Text content of the whole page including open shadow roots (what a user reads). */
export function deepText(page, selector = 'body') {
  return page.evaluate((sel) => {
    // visible text only: hidden elements (hidden attribute, display: none) do not count
    const walk = (n) => {
      let s = '';
      if (n.shadowRoot) s += walk(n.shadowRoot);
      for (const c of n.childNodes) {
        if (c.nodeType === 3) s += c.textContent;
        else if (c.nodeType === 1 && c.tagName !== 'STYLE' && c.tagName !== 'SCRIPT') {
          if (c.checkVisibility && !c.checkVisibility() && c.tagName !== 'DETAILS') continue;
          s += walk(c) + ' ';
        }
      }
      return s;
    };
    const el = document.querySelector(sel);
    return el ? walk(el).replace(/\s+/g, ' ') : '';
  }, selector);
}

/** Waits until the page's visible text (shadow roots included) matches `re`. */
export async function waitText(page, re, { selector = 'body', timeout = 15000, why = '' } = {}) {
  const end = Date.now() + timeout;
  let last = '';
  while (Date.now() < end) {
    last = await deepText(page, selector);
    if (re.test(last)) return last;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timeout waiting for ${re} ${why}; page text: ${last.slice(-1500)}`);
}

/** Screenshots of `page` at desktop and 360 px phone width: <name>-desktop.png, <name>-phone.png. */
export async function screenshots(page, name) {
  fs.mkdirSync(shotsDir, { recursive: true });
  const size = page.viewportSize() || { width: 1280, height: 800 };
  await page.setViewportSize({ width: 1280, height: 800 });
  await page.screenshot({ path: path.join(shotsDir, `${name}-desktop.png`), fullPage: true });
  await page.setViewportSize({ width: 360, height: 740 });
  await page.screenshot({ path: path.join(shotsDir, `${name}-phone.png`), fullPage: true });
  // nothing may stick out sideways at phone width
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  await page.setViewportSize(size);
  return { overflow };
}

/** Logs `page` in through the <sparkgate-login> on it. */
export async function loginThroughForm(page, user, password, code) {
  await page.fill('sparkgate-login >> #username', user);
  await page.fill('sparkgate-login >> #password', password);
  if (code) await page.fill('sparkgate-login >> #code', code);
  await page.click('sparkgate-login >> #submit');
}
