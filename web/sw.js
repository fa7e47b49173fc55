// sw.js: Sparkgate's service worker (contract §4.6, with the reference's bugs fixed). It shows
// each Web Push as a notification and posts a click or a typed reply to
// /sparkweb/api/rest/webpush/action with the restricted token the push carried. It does not
// cache API or event-stream responses. Registered by the demo page with scope /sparkweb/.
const ACTION_URL = '/sparkweb/api/rest/webpush/action';

// Exposed on self for tests, which dispatch synthetic events (their waitUntil throws).
self.sparkgate = { lastAction: null };

function extend(event, promise) {
  try {
    event.waitUntil(promise);
  } catch {
    // an untrusted (synthetic) event: nothing to extend
  }
  return promise;
}

/** The payload of a push: the contract's JSON, or its text as the body. */
function parse(data) {
  if (!data) return { subject: 'Sparkgate', body: '' };
  try {
    const p = data.json();
    return p && typeof p === 'object' ? p : { subject: 'Sparkgate', body: String(p) };
  } catch {
    return { subject: 'Sparkgate', body: data.text() };
  }
}

async function showPush(p) {
  const actions = Array.isArray(p.actions)
    ? p.actions.filter((a) => a && a.action && a.title).map((a) => ({ action: a.action, title: a.title, type: a.type, placeholder: a.placeholder }))
    : [];
  await self.registration.showNotification(p.subject || 'Sparkgate', {
    body: p.body || '',
    icon: p.icon || undefined,
    requireInteraction: !!p.requireInteraction,
    vibrate: [100, 50, 100],
    data: p,
    actions: actions.slice(0, Notification.maxActions || 2),
  });
}

async function postAction(p, action, reply) {
  const body = { data: p.data, action: action || '' };
  if (reply) body.value = reply;
  let status = 0;
  try {
    const res = await fetch(ACTION_URL, {
      method: 'POST',
      headers: { Authorization: p.token || '', Accept: 'application/json', 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
    });
    status = res.status;
  } catch {
    status = -1; // offline: nothing more to do
  }
  self.sparkgate.lastAction = { action: body.action, status };
  return status;
}

async function openPage() {
  const list = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
  if (list.length) return list[0].focus();
  return self.clients.openWindow('/sparkweb/');
}

self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (event) => extend(event, self.clients.claim()));

// The push handler, also reachable as self.sparkgate.onPush(data) for tests (data: a PushMessageData
// or anything with json()/text()).
self.sparkgate.onPush = (data) => showPush(parse(data));
self.addEventListener('push', (event) => extend(event, self.sparkgate.onPush(event.data)));

self.addEventListener('notificationclick', (event) => {
  const n = event.notification;
  const p = n.data || {};
  n.close();
  // A reply (or another action) goes to the gateway; a click on the body opens the page.
  const work = event.action ? postAction(p, event.action, event.reply) : openPage();
  extend(event, work);
});

self.addEventListener('pushsubscriptionchange', () => {
  // The page re-subscribes the next time notifications are enabled (W2 replaces by resource).
});
