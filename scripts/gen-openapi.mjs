#!/usr/bin/env node
// gen-openapi.mjs: the single source of Sparkgate's OpenAPI 3.1 document. It writes
// web/api/openapi.json, which the gateway serves as a static file at
// /sparkweb/api/openapi.json (web/api/swagger.json is a symlink to it, contract §8.1 extras)
// and which the docs page /sparkweb/api/docs/ renders.
//
//   node scripts/gen-openapi.mjs           rewrite web/api/openapi.json
//   node scripts/gen-openapi.mjs --check   exit 1 when the committed file is stale
//
// Edit this file, never the JSON. Every operation the gateway routes must be here and every
// operation here must be routed (tests/integration/openapi.test.mjs compares both ways, from the
// gateway's debug log of registered routes). Field names are the contract's runtime names
// (/work/shared/spec/sparkweb-api.md §1.10), not the reference's Swagger names. Operations marked
// x-sparkgate-static are files of the web root, not routes.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const OUT = path.join(ROOT, 'web', 'api', 'openapi.json');
const REST = '/sparkweb/api/rest';

// ---- helpers -----------------------------------------------------------------------------

const ref = (name) => ({ $ref: `#/components/schemas/${name}` });
const resp = (name) => ({ $ref: `#/components/responses/${name}` });
const str = (description, extra = {}) => ({ type: 'string', ...(description ? { description } : {}), ...extra });
const int = (description, extra = {}) => ({ type: 'integer', ...(description ? { description } : {}), ...extra });
const bool = (description) => ({ type: 'boolean', ...(description ? { description } : {}) });
const arr = (items, description) => ({ type: 'array', items, ...(description ? { description } : {}) });
const obj = (properties, { required, description, additional } = {}) => ({
  type: 'object',
  ...(description ? { description } : {}),
  ...(required ? { required } : {}),
  properties,
  ...(additional !== undefined ? { additionalProperties: additional } : {}),
});
const epochMs = (description) => int(description, { format: 'int64' });

const inPath = (name, description, schema = str()) => ({ name, in: 'path', required: true, description, schema });
const inQuery = (name, description, schema = str()) => ({ name, in: 'query', required: false, description, schema });

const json = (schema, description = 'OK') => ({ description, content: { 'application/json': { schema } } });
const EMPTY = { description: 'OK (empty body)' };

const textBody = (description, required = true) => ({
  description: `${description} Any Content-Type is accepted (contract §0.2); the body is read as UTF-8 text.`,
  required,
  content: { 'text/plain': { schema: { type: 'string' } } },
});
const jsonBody = (schema, description, required = true) => ({
  description: `${description} Parsed as JSON whatever the declared Content-Type; unknown fields are ignored.`,
  required,
  content: { 'application/json': { schema } },
});

const PUBLIC = [];
const OPTIONAL_TOKEN = [{}, { bearerAuth: [] }, { rawToken: [] }];
const TOKEN_ONLY = [{ bearerAuth: [] }, { rawToken: [] }];
const SESSION_NOTE = 'Needs the caller\'s XMPP session: it is opened from the credential vault (or the Basic password) when the user has none; 400 `xmpp session could not be established` when that is impossible (log in again with the password).';

// RSM paging (XEP-0059) of the archive calls
const rsmParams = [
  inQuery('before', 'RSM: return the page of results just before this archive id (XEP-0059 `<before>`); empty value = the last page.'),
  inQuery('after', 'RSM: return the page of results just after this archive id (XEP-0059 `<after>`).'),
  inQuery('max', 'RSM page size (messages).', int(null, { minimum: 1, maximum: 500, default: 50 })),
];
const dateParam = (name, what) => inQuery(name, `${what}. \`MM/dd/yy\` or an ISO-8601 instant (\`2024-05-01T10:00:00Z\`). ${name === 'start' ? 'Moved 5 minutes earlier' : 'Moved to the end of that day'} (contract §1.3 C1); unparseable values are ignored.`);
const serviceName = inQuery('serviceName', 'MUC service: a label (`conference` → `conference.<domain>`), a label ending with `.` (the domain is appended), or a full service JID (contains a dot). Default: the service found by XEP-0030 discovery or `xmpp.muc_service` (contract §0.8).');
const roomName = inPath('roomName', 'Room local part (the room JID is `roomName@<MUC service>`).');

const ops = [];
const op = (method, pathTemplate, spec) => ops.push({ method, path: pathTemplate, spec });

function operationId(method, p) {
  const parts = p.replace('/sparkweb/api/rest', '').replace('/sparkweb/', '/').split('/').filter(Boolean);
  let id = method;
  for (const s of parts) {
    const m = /^\{(.+)\}$/.exec(s);
    const w = m ? `By${m[1].charAt(0).toUpperCase()}${m[1].slice(1)}` : s;
    id += w.charAt(0).toUpperCase() + w.slice(1).replace(/[^A-Za-z0-9]+(.)?/g, (_, c) => (c ? c.toUpperCase() : ''));
  }
  return id;
}

/* spec: { tag, summary, description, public, session, params, body, ok, errors: [codes], extension, contract } */
function build(method, p, s) {
  const o = { tags: [s.tag], summary: s.summary, operationId: operationId(method, p) };
  const notes = [];
  if (s.contract) notes.push(`Contract: ${s.contract}.`);
  if (s.extension) notes.push('**Gateway extension** (not in the SparkWeb reference).');
  if (s.description) notes.push(s.description);
  if (s.session) notes.push(SESSION_NOTE);
  if (notes.length) o.description = notes.join('\n\n');
  if (s.public) o.security = PUBLIC;
  if (s.security) o.security = s.security;
  if (s.params?.length) o.parameters = s.params;
  if (s.body) o.requestBody = s.body;
  o.responses = { 200: s.ok ?? EMPTY };
  const codes = new Set(s.errors ?? []);
  if (!s.public) codes.add(401);
  if (s.session) [400, 502, 503].forEach((c) => codes.add(c));
  for (const c of [...codes].sort()) o.responses[c] = resp(`E${c}`);
  if (s.static) o['x-sparkgate-static'] = true;
  return o;
}

// ---- 1.1 Authentication ------------------------------------------------------------------

const A = 'Authentication';
op('post', `${REST}/login/{username}`, {
  tag: A, contract: 'A1', public: true, summary: 'Password login',
  description: 'Verifies the password by logging in to the XMPP server (or, when the user already has a session, with a short authentication-only stream) and answers a token pair. The session is opened or re-used.',
  params: [inPath('username', 'Local part of the user\'s JID (RFC 7622; ASCII letters are folded to lower case).')],
  body: textBody('The password (1-1023 bytes).'),
  ok: json(ref('TokenEntity')), errors: [400, 401, 429, 502, 503, 504],
});
op('post', `${REST}/logout`, {
  tag: A, contract: 'A2', summary: 'Log out', security: TOKEN_ONLY,
  description: 'With `session.logout = all` (default) closes the user\'s shared XMPP session for every tab and revokes every token of the user; with `tab` only the presented token\'s family. Event streams get `onDisconnect {"reason":"logout"}`. Token only (no Basic).',
  errors: [400],
});
op('post', `${REST}/register/{username}`, {
  tag: A, contract: 'A3', public: true, summary: 'Create an account (XEP-0077) and log in',
  description: 'In-band registration on the XMPP server, then a login; vCard `FN`/`EMAIL` get the contract\'s defaults. 400 `user exists` or `user cannot be created` when the server refuses.',
  params: [inPath('username', 'Local part of the new account.')],
  body: textBody('The new password.'),
  ok: json(ref('TokenEntity')), errors: [400, 429, 502, 503, 504],
});
op('post', `${REST}/token/refresh`, {
  tag: A, extension: true, public: true, summary: 'Refresh an access token',
  description: 'Spends the refresh token and answers a new access token and a new refresh token of the same family. Presenting a spent refresh token again revokes the whole family (401 `refresh token reused`). The session is re-opened from the vault when gone.',
  body: { description: 'The refresh token, as raw text or as JSON `{"refreshToken": "..."}`.', required: true,
    content: { 'text/plain': { schema: str() }, 'application/json': { schema: ref('RefreshRequest') } } },
  ok: json(ref('TokenEntity')), errors: [400, 401, 429, 502, 503, 504],
});
op('post', `${REST}/webauthn/register/start/{username}`, {
  tag: A, contract: 'A4', public: true, summary: 'Start a passkey enrolment',
  description: 'Verifies the password (creating the account when in-band registration is allowed and it does not exist) and answers WebAuthn creation options. Existing passkeys are listed in `excludeCredentials` and kept.',
  params: [inPath('username', 'Local part of the user\'s JID.')],
  body: textBody('The user\'s password.'),
  ok: json(ref('WebAuthnCreationOptions')), errors: [400, 401, 429, 502, 503, 504],
});
op('post', `${REST}/webauthn/register/finish/{username}`, {
  tag: A, contract: 'A5', public: true, summary: 'Finish a passkey enrolment',
  params: [inPath('username', 'Local part of the user\'s JID.')],
  body: jsonBody(ref('WebAuthnRegistrationCredential'), 'The browser\'s `PublicKeyCredential` (base64url members).'),
  ok: json(ref('TokenEntity')), errors: [400, 429, 503],
});
op('post', `${REST}/webauthn/authenticate/start/{username}`, {
  tag: A, contract: 'A6', public: true, security: OPTIONAL_TOKEN, summary: 'Start a passkey login, or refresh a token',
  description: 'With a valid access token of `{username}` in `Authorization` answers a new token (refresh branch, `TokenEntity`); otherwise (no header, or `Authorization: null`) a WebAuthn challenge (`WebAuthnRequestOptions`, `allowCredentials` always an array).',
  params: [inPath('username', 'Local part of the user\'s JID.')],
  ok: json({ oneOf: [ref('WebAuthnRequestOptions'), ref('TokenEntity')] }), errors: [400, 429, 503],
});
op('post', `${REST}/webauthn/authenticate/finish/{username}`, {
  tag: A, contract: 'A7', public: true, summary: 'Finish a passkey login',
  description: 'Verifies the assertion, then opens the session from the credential vault; 400 `xmpp session could not be established` when no usable credential is stored.',
  params: [inPath('username', 'Local part of the user\'s JID.')],
  body: jsonBody(ref('WebAuthnAssertionCredential'), 'The browser\'s assertion (base64url members).'),
  ok: json(ref('TokenEntity')), errors: [400, 429, 502, 503, 504],
});
op('get', `${REST}/webauthn/credentials`, {
  tag: A, extension: true, summary: 'List the caller\'s passkeys',
  ok: json(ref('WebAuthnCredentialList')), errors: [503],
});
op('delete', `${REST}/webauthn/credentials/{id}`, {
  tag: A, extension: true, summary: 'Remove one of the caller\'s passkeys',
  params: [inPath('id', 'Credential id (base64url), as listed by GET /webauthn/credentials.')],
  errors: [400, 404, 503],
});
op('post', `${REST}/totp/register/{username}`, {
  tag: A, contract: 'A8', public: true, summary: 'Enrol a TOTP authenticator',
  description: 'Verifies the password and answers the QR code (drawn by the gateway, never by a third party). Enrolling again keeps the secret.',
  params: [inPath('username', 'Local part of the user\'s JID.')],
  body: textBody('The user\'s password.'),
  ok: json(ref('TOTPEntity')), errors: [400, 401, 429, 502, 503, 504],
});
op('post', `${REST}/totp/authenticate/{username}/{code}`, {
  tag: A, contract: 'A9', public: true, security: OPTIONAL_TOKEN, summary: 'TOTP login',
  description: 'RFC 6238 (SHA-1, 30 s, 6 digits, ±1 step, each step once). With `auth.totp_single_factor = false` (default) the body must be the password, or empty with a valid access token of the same user in `Authorization` (step-up); a code alone answers 401.',
  params: [inPath('username', 'Local part of the user\'s JID.'), inPath('code', 'The 6-digit code.', str(null, { pattern: '^[0-9]{6}$' }))],
  body: textBody('The password (or empty, see above).', false),
  ok: json(ref('TokenEntity')), errors: [400, 401, 429, 502, 503, 504],
});

// ---- Events (SSE) --------------------------------------------------------------------------

const EV = 'Events';
const sseSpec = (alias) => ({
  tag: EV, contract: alias ? 'A10 / §3.1 (alias recommended by the contract)' : 'A10 / §3', summary: alias ? 'Server-Sent Events stream (alias)' : 'Server-Sent Events stream',
  security: [{ sseToken: [] }, { sseTicket: [] }],
  description: `${alias ? 'Same stream as `/sparkweb/sse`. ' : ''}Opens the user's event stream: \`onConnect\` first, then \`chatapi.xmpp\`, \`chatapi.presence\`, \`chatapi.chat\`, \`chatapi.muc\`, \`chatapi.notify\`, \`pubsub.item\`, \`sparkgate.gap\` and \`onDisconnect\` events (contract §3, docs/events.md); a keep-alive comment every \`sse.heartbeat\`. Every event has an \`id:\`; a reconnect with \`Last-Event-ID\` (or \`lastEventId\`) replays what was missed.`,
  params: [
    inQuery('token', 'Access token (the contract\'s way). Prefer `ticket`, which keeps the token out of URLs.'),
    inQuery('ticket', 'Single-use ticket from POST /sse/ticket.'),
    inQuery('lastEventId', 'Resume after this event id (same as the `Last-Event-ID` header).'),
    { name: 'Last-Event-ID', in: 'header', required: false, description: 'Resume after this event id (sent by `EventSource` on reconnect).', schema: str() },
  ],
  ok: { description: 'The event stream (`text/event-stream; charset=utf-8`, `Cache-Control: no-store`).',
    content: { 'text/event-stream': { schema: str('`id:`, `event:` and `data:` lines; `data` is one line of JSON.') } } },
  errors: [401, 429, 502, 503, 504],
});
op('get', '/sparkweb/sse', sseSpec(false));
op('get', '/sparkweb/api/sse', sseSpec(true));
op('post', `${REST}/sse/ticket`, {
  tag: EV, extension: true, summary: 'Get a single-use SSE ticket',
  description: 'A ticket valid for `sse.ticket_lifetime` (default 30 s) for one `GET /sparkweb/sse?ticket=`. Bound to the presenting access token (revoked with it). Answered with `Cache-Control: no-store`.',
  ok: json(ref('SseTicket')), errors: [429, 503],
});

// ---- 1.2 Bookmarks ---------------------------------------------------------------------------

const B = 'Bookmarks';
const bmId = inPath('bookmarkID', 'Bookmark id (a stable number derived from type and value).', int(null, { format: 'int64' }));
const bmNote = 'The caller\'s own bookmarks: group chats in XEP-0402 PEP Native Bookmarks (XEP-0048 private storage as fallback), URLs in XEP-0048 storage (contract §1.2 gateway mapping).';
op('post', `${REST}/bookmark`, {
  tag: B, contract: 'B1', session: true, summary: 'Create a bookmark', description: bmNote,
  body: jsonBody(ref('Bookmark'), 'The bookmark: `type`, `name`, `value` are used.'),
  ok: json(ref('Bookmark')), errors: [400, 504],
});
op('get', `${REST}/bookmarks`, {
  tag: B, contract: 'B2', session: true, summary: 'List bookmarks', description: bmNote,
  ok: json(ref('Bookmarks')), errors: [400, 504],
});
op('get', `${REST}/bookmark/{bookmarkID}`, {
  tag: B, contract: 'B3', session: true, summary: 'Get a bookmark', params: [bmId],
  ok: json(ref('Bookmark')), errors: [400, 404, 504],
});
op('put', `${REST}/bookmark/{bookmarkID}`, {
  tag: B, contract: 'B4', session: true, summary: 'Update a bookmark', params: [bmId],
  body: jsonBody(ref('Bookmark'), 'New `type`, `name`, `value`.'),
  ok: json(ref('Bookmark')), errors: [400, 404, 504],
});
op('delete', `${REST}/bookmark/{bookmarkID}`, {
  tag: B, contract: 'B5', session: true, summary: 'Delete a bookmark', params: [bmId],
  description: 'An unknown numeric id still answers 200 (reference behaviour).', errors: [400, 504],
});
op('post', `${REST}/bookmark/{bookmarkID}/{name}`, {
  tag: B, contract: 'B6', session: true, summary: 'Set a bookmark property',
  description: 'Conventional keys: `autojoin`, `nameasnick` (group chat), `rss` (url).',
  params: [bmId, inPath('name', 'Property name.')], body: textBody('The property value.'),
  ok: json(ref('Bookmark')), errors: [400, 404, 504],
});
op('delete', `${REST}/bookmark/{bookmarkID}/{name}`, {
  tag: B, contract: 'B7', session: true, summary: 'Delete a bookmark property',
  params: [bmId, inPath('name', 'Property name.')],
  ok: json(ref('Bookmark')), errors: [400, 404, 504],
});

// ---- 1.3 Chat ----------------------------------------------------------------------------------

const C = 'Chat';
op('get', `${REST}/chat/messages`, {
  tag: C, contract: 'C1', session: true, summary: 'Search the one-to-one archive (XEP-0313)',
  description: 'MAM query on the caller\'s own archive, grouped into conversations per peer (split on an idle gap). Paged with XEP-0059 RSM: `before`/`after`/`max` select a page and the answer carries `first`, `last` (archive ids for the next call) and `complete`. Never returns other users\' conversations.',
  params: [
    inQuery('keywords', 'Free-text search (XEP-0431 when the server offers it, else a substring filter).'),
    inQuery('to', 'Peer: bare JID, or a username made into `<to>@<domain>`.'),
    dateParam('start', 'Earliest message'), dateParam('end', 'Latest message'), ...rsmParams,
  ],
  ok: json(ref('Conversations')), errors: [400, 504],
});
op('post', `${REST}/chat/message/{to}`, {
  tag: C, contract: 'C2', session: true, summary: 'Send a chat message',
  description: 'A body that parses as a JSON object is attached as the Jive property `data` (its `body` member, if any, becomes `<body>` and the type `chat`; without one the type is `normal`, a "notify" message). Any other body is sent as `<body>` of a `chat` message. Every stream of the caller gets the message as `chatapi.chat` with `"sent": true`.',
  params: [inPath('to', 'Bare JID of the recipient (with a local part).')],
  body: textBody('Text, or a JSON object.'), errors: [400, 413],
});
op('post', `${REST}/chat/chatstate/{state}/{to}`, {
  tag: C, contract: 'C3', session: true, summary: 'Send a chat state (XEP-0085)',
  description: 'A bodiless `type="chat"` message with the state element and a `<no-store/>` hint. Any other `state` value answers 400 and sends nothing (the reference answered 200).',
  params: [inPath('state', 'Chat state.', str(null, { enum: ['composing', 'paused', 'active', 'inactive', 'gone'] })), inPath('to', 'Bare JID of the peer.')],
  errors: [400],
});

// ---- 1.4 Collaboration -------------------------------------------------------------------------

const K = 'Collaboration';
const nodeP = inPath('node', 'PubSub node id.');
const pubsubNote = 'Addressed to the PubSub service (XEP-0030 discovery, or `xmpp.pubsub_service`).';
op('get', `${REST}/pubsub/nodes`, {
  tag: K, contract: 'K1', session: true, summary: 'List PubSub nodes', description: `\`disco#items\` of the service with node meta-data where available. ${pubsubNote}`,
  ok: json(ref('NodeEntities')), errors: [404, 501, 504],
});
op('post', `${REST}/pubsub/create/{node}`, {
  tag: K, contract: 'K2', session: true, summary: 'Create a PubSub node', description: `XEP-0060 create-and-configure (\`pubsub#max_items=1\`); 400 \`pubsub node could not be created\` when it exists. ${pubsubNote}`,
  params: [nodeP], errors: [400, 403, 501, 504],
});
op('post', `${REST}/pubsub/subscribe/{node}`, {
  tag: K, contract: 'K3', session: true, summary: 'Subscribe to a PubSub node', description: `Subscribes the caller's bare JID; published JSON items then arrive as \`pubsub.item\` events. ${pubsubNote}`,
  params: [nodeP], errors: [400, 403, 404, 501, 504],
});
op('post', `${REST}/pubsub/publish/{node}`, {
  tag: K, contract: 'K4', session: true, summary: 'Publish a JSON item', description: `Item id \`<node>-<epoch ms>\`, payload \`<json xmlns="urn:xmpp:json:0">\` (XEP-0335). ${pubsubNote}`,
  params: [nodeP], body: textBody('A JSON object.'), errors: [400, 403, 404, 501, 504],
});
op('get', `${REST}/pubsub/subscribers/{node}`, {
  tag: K, contract: 'K5', session: true, summary: 'List a node\'s subscribers', description: 'XEP-0060 owner subscriptions; `{"users":[]}` when the caller does not own the node or it does not exist.',
  params: [nodeP], ok: json(ref('UserEntities')), errors: [501, 504],
});
op('get', `${REST}/pep/nodes`, {
  tag: K, contract: 'K6', session: true, summary: 'List the caller\'s PEP nodes', description: '`disco#items` on the caller\'s bare JID (XEP-0163).',
  ok: json(ref('NodeEntities')), errors: [504],
});
op('post', `${REST}/pep/publish/{node}`, {
  tag: K, contract: 'K7', session: true, summary: 'Publish a JSON item to the caller\'s PEP node',
  params: [nodeP], body: textBody('A JSON object.'), errors: [400, 403, 504],
});
op('get', `${REST}/meet/{service}/{id}`, {
  tag: K, contract: 'K8', session: true, summary: 'Get an online meeting URL',
  description: 'XEP-0483 HTTP Online Meetings when the server offers it, otherwise the configured URL template.',
  params: [inPath('service', 'Meeting service.', str(null, { enum: ['jitsi', 'galene'] })), inPath('id', 'Meeting / room name.')],
  ok: json(ref('OnlineMeetingEntity')), errors: [400, 501, 504],
});
op('get', `${REST}/upload/{fileName}/{fileSize}`, {
  tag: K, contract: 'K9', session: true, summary: 'Get an HTTP upload slot (XEP-0363)',
  description: 'Requested from the upload service (XEP-0030 discovery of `urn:xmpp:http:upload:0`, or `xmpp.upload_service`). The page PUTs the file to `put` with the `headers` given, then shares `get`. A file too large for the service answers 400/403 (`not-acceptable`/`not-allowed`).',
  params: [inPath('fileName', 'File name.'), inPath('fileSize', 'Size in bytes (decimal).', int(null, { minimum: 1, format: 'int64' }))],
  ok: json(ref('UploadSlot')), errors: [400, 403, 404, 501, 504],
});
op('get', `${REST}/preview/{quality}/{url}`, {
  tag: K, contract: 'K10', summary: 'Link preview',
  description: 'Fetches the page (size and time limits, private addresses refused, limited redirects) and reads its title, description and image. `url` is percent-encoded into one segment (slashes as `%2F`).',
  params: [inPath('quality', 'Number of `<img>` URLs to consider when the page has no `og:image` (-1 all, -2 none).', int()), inPath('url', 'The target URL, percent-encoded.')],
  ok: json(ref('LinkPreview')), errors: [400, 502, 504],
});
op('post', `${REST}/xmpp`, {
  tag: K, contract: 'K11', session: true, summary: 'Send a raw stanza',
  description: 'One `<message>`, `<presence>` or `<iq>` element; the default namespace is `jabber:client` and any `from` is replaced. Replies arrive as `chatapi.xmpp` events. Unparseable XML answers 400 (the reference answered 200).',
  body: textBody('One XML stanza.'), errors: [400, 413],
});

// ---- 1.5 Roster --------------------------------------------------------------------------------

const R = 'Contacts';
const jidP = inPath('jid', 'Bare JID of the contact.');
op('get', `${REST}/roster`, {
  tag: R, contract: 'R1', session: true, summary: 'Get the roster', description: 'RFC 6121 roster (no `show`/`status` here).',
  ok: json(ref('RosterEntities')), errors: [504],
});
op('post', `${REST}/roster`, {
  tag: R, contract: 'R2', session: true, summary: 'Add a contact',
  description: 'Roster set (name, groups); `subscriptionType` 1/3 sends `subscribe`, 2/3 pre-approves (`subscribed`), 0 nothing. 409 when the contact exists.',
  body: jsonBody(ref('RosterItemEntity'), '`jid` required; `subscriptionType` defaults to 0.'), errors: [400, 409, 504],
});
op('put', `${REST}/roster/{jid}`, {
  tag: R, contract: 'R3', session: true, summary: 'Update a contact',
  description: 'New name/groups; the subscription changes only when `subscriptionType` is present.',
  params: [jidP], body: jsonBody(ref('RosterItemEntity'), 'Fields to change.'), errors: [400, 404, 409, 504],
});
op('delete', `${REST}/roster/{jid}`, {
  tag: R, contract: 'R4', session: true, summary: 'Remove a contact', params: [jidP], errors: [400, 404, 504],
});

// ---- 1.6 Group chat ---------------------------------------------------------------------------

const G = 'Group chat';
op('get', `${REST}/groupchat/messages`, {
  tag: G, contract: 'G1', session: true, summary: 'Search a room archive (XEP-0313)',
  description: 'MAM query addressed to the room, conversations split on an idle gap. Keywords via XEP-0431 when the room offers it, else filtered on the page. Without `room`: the rooms joined in this session (first page of each, no `first`/`last`). Paged with RSM like GET /chat/messages (`first`, `last`, `complete` in the answer).',
  params: [
    inQuery('keywords', 'Free-text search.'), dateParam('start', 'Earliest message'), dateParam('end', 'Latest message'),
    inQuery('room', 'Room local part.'),
    inQuery('service', 'MUC service, same rules as `serviceName` (default: the discovered service).'), ...rsmParams,
  ],
  ok: json(ref('Conversations')), errors: [400, 403, 404, 501, 504],
});
op('get', `${REST}/groupchat/rooms`, {
  tag: G, contract: 'G2', session: true, summary: 'List rooms',
  description: '`disco#items` of the MUC service (public rooms; `type=all` behaves as `public` for a normal client), each filled by the room\'s `disco#info`.',
  params: [serviceName, inQuery('type', '`public` (default) or `all`; any other value gives an empty list.', str(null, { default: 'public' })),
    inQuery('search', 'Case-insensitive substring of the room name or natural name.'),
    inQuery('expandGroups', 'Accepted for compatibility (no groups exist over XMPP).', bool())],
  ok: json(ref('MUCRoomEntities')), errors: [400, 404, 501, 504],
});
op('get', `${REST}/groupchat/room/{roomName}`, {
  tag: G, contract: 'G3', session: true, summary: 'Get a room', description: 'From the room\'s `disco#info` (and affiliation lists when the caller may read them).',
  params: [roomName, serviceName, inQuery('expandGroups', 'Accepted for compatibility.', bool())],
  ok: json(ref('MUCRoomEntity')), errors: [400, 404, 501, 504],
});
op('get', `${REST}/groupchat/room/{roomName}/participants`, {
  tag: G, contract: 'G4', session: true, summary: 'List a room\'s participants', description: 'Occupants whose role is `participant`.',
  params: [roomName, serviceName], ok: json(ref('ParticipantEntities')), errors: [400, 404, 501, 504],
});
op('get', `${REST}/groupchat/room/{roomName}/occupants`, {
  tag: G, contract: 'G5', session: true, summary: 'List a room\'s occupants', description: 'All roles; `userAddress` only when the room reveals real JIDs.',
  params: [roomName, serviceName], ok: json(ref('OccupantEntities')), errors: [400, 404, 501, 504],
});
op('get', `${REST}/groupchat/room/{roomName}/chathistory`, {
  tag: G, contract: 'G6', session: true, summary: 'Get a room\'s recent history',
  description: 'XEP-0313 MAM on the room where supported, otherwise the discussion history the room sends on join. Paged with RSM (`before`, `after`, `max`; `first`, `last`, `complete` in the answer).',
  params: [roomName, serviceName, ...rsmParams], ok: json(ref('MUCRoomMessageEntities')), errors: [400, 403, 404, 501, 504],
});
op('put', `${REST}/groupchat/room/{roomName}`, {
  tag: G, contract: 'G7', session: true, summary: 'Join a room',
  description: 'XEP-0045 enter room with the user\'s nickname (vCard `FN` or username), waits for the self-presence; a newly created room is accepted as an instant room. Joined rooms are re-joined after a reconnect. 409 on a nickname conflict, 403 when banned or not a member.',
  params: [roomName, serviceName, inQuery('nick', 'Nickname (default: vCard `FN`, else the username); a plain-text or `{"nick"}` body is read too.'),
    inQuery('password', 'Room password.'), inQuery('history', 'Messages of discussion history to ask for (0..1000).', int())],
  errors: [400, 403, 404, 409, 501, 503, 504],
});
op('delete', `${REST}/groupchat/room/{roomName}`, {
  tag: G, contract: 'G8', session: true, summary: 'Leave a room', params: [roomName, serviceName], errors: [400, 501, 504],
});
op('post', `${REST}/groupchat/room/{roomName}`, {
  tag: G, contract: 'G9', session: true, summary: 'Post to a room',
  description: 'Text, or a JSON object (Jive property `data`, `<body>` from its `body` member), always `type="groupchat"`. 400 when the room is not joined in this session.',
  params: [roomName, serviceName], body: textBody('Text, or a JSON object.'), errors: [400, 403, 413, 501],
});
op('post', `${REST}/groupchat/room/{roomName}/{invitedJid}`, {
  tag: G, contract: 'G10', session: true, summary: 'Invite someone to a room', description: 'XEP-0045 mediated invitation through the room; with `direct=true` also a XEP-0249 direct invitation. 400 when the room is not joined in this session.',
  params: [roomName, inPath('invitedJid', 'Bare JID (or username) of the invitee.'), serviceName, inQuery('direct', 'Also send a direct invitation (XEP-0249).', bool())], body: textBody('The reason (may be empty).', false), errors: [400, 403, 501],
});

// ---- 1.7 Presence ------------------------------------------------------------------------------

const PR = 'Presence';
op('get', `${REST}/presence/roster`, {
  tag: PR, contract: 'P1', session: true, summary: 'Roster with presence',
  description: '`show` of the best available resource, `unavailable` for contacts with none.', ok: json(ref('RosterEntities')), errors: [504],
});
op('get', `${REST}/presence/{target}`, {
  tag: PR, contract: 'P2', session: true, summary: 'Presence of one user',
  description: 'From the session\'s presence cache (a subscribed contact not heard from since the binding is probed, waiting up to 2 s); always 200: `presenceType` `available`, or `"show":"unknown","status":"","presenceType":"unavailable"` when offline, or `"show":"unknown","status":""` without `presenceType` when not visible (no subscription). Self: the presence set with POST /presence.',
  params: [inPath('target', 'Username (local part) or bare JID.')], ok: json(ref('PresenceEntity')), errors: [400],
});
op('post', `${REST}/presence`, {
  tag: PR, contract: 'P3', session: true, summary: 'Set own presence',
  description: 'Kept by the session and announced again after every fresh reconnection.',
  params: [inQuery('show', '`offline` (or `unavailable`) sends unavailable presence (the stream stays open); `away`, `chat`, `dnd`, `xa` set `<show>`; missing, empty or `available` is plain available; any other value is 400 (the reference used plain available).'), inQuery('status', 'Status text, at most 1023 bytes.'), inQuery('priority', 'Gateway extension: -128..127, default 0.', int())],
  errors: [400],
});

// ---- 1.8 Users --------------------------------------------------------------------------------

const U = 'Users';
op('get', `${REST}/users`, {
  tag: U, contract: 'U1', session: true, summary: 'Search users',
  description: 'The caller and their roster contacts (no XEP-0055 directory search: Prosody\'s mod_vjud cannot see vCards stored by vcard_legacy). `search` matches usernames by substring. Other users\' properties are never returned.',
  params: [inQuery('search', 'Substring of the username.'), inQuery('propertyKey', 'Property name filter (caller\'s data only).'), inQuery('propertyValue', 'Exact property value (with `propertyKey`).')],
  ok: json(ref('UserEntities')), errors: [504],
});
op('get', `${REST}/user`, {
  tag: U, contract: 'U2', session: true, summary: 'Get the caller', description: '`name`/`email` from the vCard (XEP-0054), `vcard` = base64 of the vcard-temp XML, `properties` = the caller\'s property store without gateway secrets.',
  ok: json(ref('UserEntity')), errors: [404, 504],
});
op('put', `${REST}/user`, {
  tag: U, contract: 'U3', session: true, summary: 'Update the caller',
  description: '`password` → XEP-0077 password change; `name`/`email`/`vcard` → vCard; `properties` replace the property store only when present. Renaming is not possible over XMPP (400).',
  body: jsonBody(ref('UserEntity'), 'Fields to change.'), errors: [400, 404, 409, 504],
});
op('delete', `${REST}/user`, {
  tag: U, contract: 'U4', session: true, summary: 'Delete the caller\'s account', description: 'XEP-0077 account removal; the gateway\'s data for the user is dropped, tokens revoked, streams closed.',
  errors: [403, 404, 504],
});
const groupsBody = jsonBody(ref('UserGroupsEntity'), 'Group names.');
op('get', `${REST}/user/groups`, {
  tag: U, contract: 'U5', session: true, summary: 'The caller\'s groups', description: 'The distinct group names of the caller\'s roster.', ok: json(ref('UserGroupsEntity')), errors: [504],
});
op('post', `${REST}/user/groups`, { tag: U, contract: 'U6', session: true, summary: 'Join groups', description: 'Server groups cannot be managed over XMPP: 501 `not supported`.', body: groupsBody, errors: [501] });
op('delete', `${REST}/user/groups`, { tag: U, contract: 'U7', session: true, summary: 'Leave groups', description: '501 `not supported`.', body: groupsBody, errors: [501] });
op('post', `${REST}/user/groups/{groupName}`, { tag: U, contract: 'U8', session: true, summary: 'Join a group', description: '501 `not supported`.', params: [inPath('groupName', 'Group name.')], errors: [501] });
op('delete', `${REST}/user/groups/{groupName}`, { tag: U, contract: 'U9', session: true, summary: 'Leave a group', description: '501 `not supported`.', params: [inPath('groupName', 'Group name.')], errors: [501] });
op('get', `${REST}/config/global`, {
  tag: U, contract: 'U10', public: true, summary: 'Gateway version', ok: json(ref('GlobalConfig')),
});
op('get', `${REST}/config/properties`, {
  tag: U, contract: 'U11', session: true, summary: 'Everything about the caller, flattened', ok: json(ref('ConfigProperties')), errors: [504],
});
op('post', `${REST}/config/properties`, {
  tag: U, contract: 'U12', session: true, summary: 'Set some of the caller\'s properties',
  description: '`name`, `email`, `vcard` go to the vCard; other names to the property store. Reserved authentication keys (`totp.*`, `webauthn-*`, `vapid.*`, `webpush.*`, `ip_address`) are ignored.',
  body: { description: 'A JSON array of `{"name","value"}` (read as text, any Content-Type).', required: true, content: { 'application/json': { schema: arr(ref('PropertyNameValue')) } } },
  errors: [400, 504],
});

// ---- 1.9 Web Push -----------------------------------------------------------------------------

const W = 'Web Push';
op('get', `${REST}/webpush/vapidkey`, {
  tag: W, contract: 'W1', summary: 'The VAPID public key', description: 'The gateway\'s application server key (one P-256 key pair, kept in the database).',
  ok: json(ref('PublicKey')), errors: [404],
});
op('put', `${REST}/webpush/subscribe/{resource}`, {
  tag: W, contract: 'W2', summary: 'Store a push subscription',
  description: 'Replaces the caller\'s older subscriptions of the same `resource`; beyond `push.max_subscriptions` the oldest goes. The endpoint must be https and the keys valid.',
  params: [inPath('resource', 'Free tag naming the app/device (e.g. `simple-app`).')],
  body: jsonBody(ref('PushSubscription'), '`JSON.stringify(pushSubscription)`.'), errors: [400, 503],
});
op('delete', `${REST}/webpush/subscribe/{resource}`, {
  tag: W, extension: true, summary: 'Delete push subscriptions of a resource', params: [inPath('resource', 'The tag used at subscription.')], errors: [404, 503],
});
op('get', `${REST}/webpush/subscriptions`, {
  tag: W, extension: true, summary: 'The caller\'s own push subscriptions', description: 'Keys are never returned.', ok: json(ref('PushSubscriptionList')), errors: [503],
});
op('get', `${REST}/webpush/subscribers`, {
  tag: W, contract: 'W3', summary: 'Contacts with push subscriptions', description: 'Users of the caller\'s roster with at least one subscription.', ok: json(ref('UserEntities')), errors: [503],
});
op('post', `${REST}/webpush/notify/{target}`, {
  tag: W, contract: 'W4', summary: 'Push a notification', description: 'Allowed to roster contacts (any user for `push.admins`). `token` is set by the gateway: a restricted token for POST /webpush/action.',
  params: [inPath('target', 'Username of the recipient.')], body: jsonBody(ref('NotificationEntity'), 'The notification.'), errors: [400, 403, 404, 503],
});
op('post', `${REST}/webpush/message/{target}`, {
  tag: W, contract: 'W5', summary: 'Push a text message', description: 'A notification from the caller with the text as body and a Reply action.',
  params: [inPath('target', 'Username of the recipient.')], body: textBody('The message text.'), errors: [400, 403, 404, 503],
});
op('post', `${REST}/webpush/action`, {
  tag: W, contract: 'W6', summary: 'Notification click or reply',
  security: [{ bearerAuth: [] }, { rawToken: [] }, { basicAuth: [] }, { pushActionToken: [] }],
  description: 'Sent by the service worker with the restricted token of the push payload (it may only answer the push\'s sender). Only `action: "webpush.message"` with `data` and `value` does anything (W5 from the caller to `data`); anything else answers 400.',
  body: jsonBody(ref('NotificationActionEntity'), '`{"data","action","value"}`.'), errors: [400, 401, 403, 404, 503],
});

// ---- the document itself ------------------------------------------------------------------------

const D = 'Documentation';
const docSpec = (alias) => ({
  tag: D, public: true, static: true, summary: alias ? 'This document (Swagger-compatible name)' : 'This document',
  description: `${alias ? 'Same file as /sparkweb/api/openapi.json (contract §0.1 / §8.1 extras). ' : ''}A static file of the web root (\`web/api/\`), generated by \`scripts/gen-openapi.mjs\`. The rendered page is /sparkweb/api/docs/.`,
  ok: json({ type: 'object', description: 'OpenAPI 3.1 document.' }),
});
op('get', '/sparkweb/api/openapi.json', docSpec(false));
op('get', '/sparkweb/api/swagger.json', docSpec(true));

// ---- components -------------------------------------------------------------------------------

const jidObj = ref('JIDEntity');
const schemas = {
  ErrorResponse: obj({
    resource: str('Human-readable text (the contract puts the detail here).'),
    message: str('`Exception` for API errors; the HTTP reason (`Not Found`, `Method Not Allowed`...) for routing errors.'),
    exception: str('Java-style class name derived from the status: `IllegalArgumentException` (400), `UnauthorizedException` (401), `ForbiddenException` (403), `NotFoundException` (404), `ConflictException` (409), `PayloadTooLargeException` (413), `TooManyRequestsException` (429), `XMPPException` (502), `ServiceUnavailableException` (503), `TimeoutException` (504), `NotAllowedException` (501 not supported).'),
  }, { required: ['resource', 'message', 'exception'], description: 'The contract\'s error body (§0.6).' }),
  TokenEntity: obj({
    token: str('Access token (HS256 JWT: sub, aud, permissions, iat, exp, iss, jti).'),
    refreshToken: str('Refresh token for POST /token/refresh (`sgr_...`). Extension.'),
    expiresIn: int('Seconds until the access token expires. Extension.'),
  }, { required: ['token'] }),
  RefreshRequest: obj({ refreshToken: str() }, { required: ['refreshToken'] }),
  TOTPEntity: obj({
    url: str('`data:image/svg+xml;base64,...` QR code, usable as `<img src>`.'),
    otpauth: str('The `otpauth://totp/...` URI. Extension.'),
    svg: str('The QR code as SVG text. Extension.'),
  }, { required: ['url'] }),
  WebAuthnCreationOptions: obj({
    credentials: obj({ publicKey: obj({
      rp: obj({ name: str(), id: str() }), user: obj({ name: str(), displayName: str(), id: str('base64url user handle') }),
      challenge: str('base64url'), pubKeyCredParams: arr(obj({ alg: int(), type: str() })),
      excludeCredentials: arr(obj({ type: str(), id: str('base64url') })), attestation: str(), timeout: int(),
      authenticatorSelection: obj({}, { additional: true }), extensions: obj({}, { additional: true }),
    }, { additional: true }) }),
  }, { required: ['credentials'], description: 'PublicKeyCredentialCreationOptions in WebAuthn JSON form (binary members base64url, no padding).' }),
  WebAuthnRequestOptions: obj({
    assertion: obj({ publicKey: obj({
      challenge: str('base64url'), rpId: str(), allowCredentials: arr(obj({ type: str(), id: str('base64url') }), 'Always an array, possibly empty.'),
      userVerification: str(), timeout: int(), extensions: obj({}, { additional: true }),
    }, { additional: true }) }),
  }, { required: ['assertion'], description: 'PublicKeyCredentialRequestOptions in WebAuthn JSON form.' }),
  WebAuthnRegistrationCredential: obj({
    id: str(), rawId: str(), type: str(null, { const: 'public-key' }),
    response: obj({ clientDataJSON: str(), attestationObject: str() }, { required: ['clientDataJSON', 'attestationObject'] }),
    clientExtensionResults: obj({}, { additional: true }),
  }, { required: ['id', 'response'] }),
  WebAuthnAssertionCredential: obj({
    id: str(), rawId: str(), type: str(null, { const: 'public-key' }),
    response: obj({ clientDataJSON: str(), authenticatorData: str(), signature: str(), userHandle: str('May be empty.') }, { required: ['clientDataJSON', 'authenticatorData', 'signature'] }),
    clientExtensionResults: obj({}, { additional: true }),
  }, { required: ['id', 'response'] }),
  WebAuthnCredentialList: obj({
    credentials: arr(obj({ id: str('base64url credential id'), alg: int('COSE algorithm (-7 ES256, -8 EdDSA, -257 RS256)'), signCount: int(null, { format: 'int64' }), created: int('epoch seconds', { format: 'int64' }), lastUsed: int('epoch seconds, 0 = never', { format: 'int64' }) })),
  }, { required: ['credentials'] }),
  SseTicket: obj({ ticket: str('Single-use ticket for /sparkweb/sse?ticket='), expiresIn: int('Seconds it stays valid.') }, { required: ['ticket', 'expiresIn'] }),
  OnlineMeetingEntity: obj({ url: str() }, { required: ['url'] }),
  PublicKey: obj({ publicKey: str('base64url of the 65-byte uncompressed P-256 point') }, { required: ['publicKey'] }),
  PresenceEntity: obj({
    username: str(), show: str('`available`, `chat`, `away`, `xa`, `dnd`, or `unknown`'), status: str('Omitted when none.'),
    presenceType: str('Gateway extension: `available`, or `unavailable` for an offline contact; omitted when the presence is not visible.', { enum: ['available', 'unavailable'] }),
  }, { required: ['username', 'show'] }),
  UserProperty: obj({ key: str(), value: str() }),
  UserEntity: obj({
    username: str(), name: str(), email: str(),
    password: { type: 'string', writeOnly: true, description: 'Input only (PUT /user); never output.' },
    properties: arr(ref('UserProperty')), vcard: str('base64 of the `<vCard xmlns="vcard-temp">` XML'),
  }, { description: 'Null members are omitted.' }),
  UserEntities: obj({ users: arr(ref('UserEntity')) }, { required: ['users'] }),
  UserGroupsEntity: obj({ groupnames: arr(str()) }, { required: ['groupnames'] }),
  RosterItemEntity: obj({
    jid: str('Bare JID'), nickname: str('Omitted when none.'),
    subscriptionType: int('-1 remove, 0 none, 1 to, 2 from, 3 both', { enum: [-1, 0, 1, 2, 3] }),
    groups: arr(str()), show: str('Only in GET /presence/roster: `available`, `chat`, `away`, `xa`, `dnd`, `unavailable`.'),
    status: str('Only in GET /presence/roster; omitted when none.'),
    presenceType: str('Gateway extension, only in GET /presence/roster: `available` or `unavailable`.', { enum: ['available', 'unavailable'] }),
  }, { required: ['jid'] }),
  RosterEntities: obj({ rosterItem: arr(ref('RosterItemEntity')) }, { required: ['rosterItem'], description: 'Runtime name `rosterItem` (the reference\'s Swagger says `roster`).' }),
  NodeEntity: obj({ id: str(), name: str(), description: str(), owners: arr(str()) }, { required: ['id'] }),
  NodeEntities: obj({ nodes: arr(ref('NodeEntity')) }, { required: ['nodes'] }),
  MUCRoomEntity: obj({
    roomName: str(), naturalName: str(), description: str(), subject: str(), password: str('Omitted when none (never disclosed over XMPP).'),
    creationDate: epochMs('epoch ms; omitted when unknown'), modificationDate: epochMs('epoch ms; omitted when unknown'),
    maxUsers: int(), persistent: bool(), publicRoom: bool(), registrationEnabled: bool(), canAnyoneDiscoverJID: bool(),
    canOccupantsChangeSubject: bool(), canOccupantsInvite: bool(), canChangeNickname: bool(), logEnabled: bool(),
    loginRestrictedToNickname: bool(), membersOnly: bool(), moderated: bool(),
    allowPM: str(null, { enum: ['anyone', 'participants', 'moderators', 'none'] }),
    broadcastPresenceRoles: arr(str()),
    owners: arr(str()), ownerGroups: arr(str()), admins: arr(str()), adminGroups: arr(str()),
    members: arr(str()), memberGroups: arr(str()), outcasts: arr(str()), outcastGroups: arr(str()),
  }, { required: ['roomName'], description: 'Affiliation lists hold bare JIDs; `*Groups` lists are always empty over XMPP.' }),
  MUCRoomEntities: obj({ chatRooms: arr(ref('MUCRoomEntity')) }, { required: ['chatRooms'] }),
  ParticipantEntity: obj({ jid: str('room@service/nick'), role: str(), affiliation: str() }),
  ParticipantEntities: obj({ participants: arr(ref('ParticipantEntity')) }, { required: ['participants'] }),
  OccupantEntity: obj({
    jid: str('room@service/nick'), userAddress: str('Real JID, only when the room reveals it.'),
    role: str(null, { enum: ['moderator', 'participant', 'visitor', 'none'] }), affiliation: str(null, { enum: ['owner', 'admin', 'member', 'outcast', 'none'] }),
  }),
  OccupantEntities: obj({ occupants: arr(ref('OccupantEntity')) }, { required: ['occupants'] }),
  MUCRoomMessageEntity: obj({
    to: str(), from: str('room@service/nick'), type: str(null, { const: 'groupchat' }), body: str(),
    delay_stamp: str('XEP-0203 stamp, e.g. `2024-05-01T10:00:00.000Z`'), delay_from: str(),
  }, { description: 'Keys are omitted when absent.' }),
  MUCRoomMessageEntities: obj({
    message: arr(ref('MUCRoomMessageEntity')), ...rsmResult(),
  }, { required: ['message'], description: 'Runtime name `message` (the reference\'s Swagger says `messages`).' }),
  JIDEntity: obj({ node: str(), domain: str(), resource: str('Omitted when none.') }, { required: ['domain'] }),
  ArchivedMessageEntity: obj({
    conversationID: int(null, { format: 'int64' }), from: str(), fromJID: jidObj, to: str(), toJID: jidObj,
    sentDate: epochMs('epoch ms'), body: str(), roomEvent: bool(), stanza: str('The stanza XML, when available.'),
  }),
  Conversation: obj({
    conversationID: int(null, { format: 'int64' }), external: bool(), startDate: epochMs('epoch ms'), lastActivity: epochMs('epoch ms'),
    messageCount: int(), chatRoom: str('Room JID (room conversations only).'), room: jidObj,
    participantList: arr(str()), participants: arr(jidObj), conversationParticipants: arr(str()),
    message: arr(ref('ArchivedMessageEntity')),
  }),
  Conversations: obj({ conversation: arr(ref('Conversation')), ...rsmResult() }, { required: ['conversation'] }),
  BookmarkProperty: obj({ key: str(), value: str() }),
  Bookmark: obj({
    bookmarkID: int(null, { format: 'int64' }), type: str(null, { enum: ['url', 'group_chat'] }), name: str(), value: str('URL or room JID'),
    globalBookmark: bool('Always false.'), users: arr(str()), groups: arr(str()),
    property: arr(ref('BookmarkProperty'), 'Runtime name `property` (the reference\'s Swagger says `properties`).'), propertyNames: arr(str()),
  }),
  Bookmarks: obj({ bookmark: arr(ref('Bookmark')) }, { required: ['bookmark'] }),
  UploadSlot: obj({ get: str('Download URL'), put: str('Upload URL'), headers: obj({}, { additional: str(), description: 'Headers to send with the PUT (Authorization, Cookie, Expires), when the slot has any.' }) }, { required: ['get', 'put'] }),
  LinkPreview: obj({ image: str(), descriptionShort: str(), title: str() }),
  GlobalConfig: obj({ version: str(), about: str(null, { const: 'SparkWeb' }) }, { required: ['version', 'about'], additional: true }),
  ConfigProperties: obj({
    domain: str(), vcard: str(), username: str(), name: str(), email: str(),
    groups: arr(obj({ group: str(), members: arr(obj({ username: str(), name: str() })) })),
  }, { additional: { type: 'string' }, description: 'Every user property is also a top-level key.' }),
  PropertyNameValue: obj({ name: str(), value: str() }, { required: ['name'] }),
  PushSubscription: obj({
    endpoint: str(null, { format: 'uri' }), expirationTime: { type: ['integer', 'null'] },
    keys: obj({ p256dh: str('base64url'), auth: str('base64url') }, { required: ['p256dh', 'auth'] }),
  }, { required: ['endpoint', 'keys'] }),
  PushSubscriptionList: obj({ subscriptions: arr(obj({ resource: str(), endpoint: str(), created: epochMs('epoch ms') })) }, { required: ['subscriptions'] }),
  NotificationActionEntity: obj({ action: str(), data: str(), value: str(), icon: str(), type: str(), placeholder: str(), title: str() }),
  NotificationEntity: obj({
    subject: str(), token: str('Set by the gateway (ignored on input).'), body: str(), icon: str(),
    requireInteraction: bool(), persistent: bool(), sticky: bool(), data: str(), actions: arr(ref('NotificationActionEntity')),
  }),
};

// Examples from the contract (§1.10), shown by the docs page.
const EXAMPLES = {
  ErrorResponse: { resource: 'xmpp connection not found', message: 'Exception', exception: 'IllegalArgumentException' },
  TokenEntity: { token: 'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl', refreshToken: 'sgr_Q2hhbmdlTWVQbGVhc2VUaGlzSXNBbkV4YW1wbGVPbmx5', expiresIn: 3600 },
  PresenceEntity: { username: 'bob', show: 'away', status: 'At lunch' },
  UserEntity: { username: 'alice', name: 'Alice', email: 'alice@example.org', properties: [{ key: 'some.key', value: 'v' }], vcard: 'PHZDYXJkIHhtbG5zPSJ2Y2FyZC10ZW1wIj4uLi48L3ZDYXJkPg==' },
  RosterEntities: { rosterItem: [{ jid: 'bob@example.org', nickname: 'Bob', subscriptionType: 3, groups: ['Friends'], show: 'available', status: 'Hi' }] },
  NodeEntities: { nodes: [{ id: 'news', name: 'News', description: 'Announcements', owners: ['alice@example.org'] }] },
  MUCRoomEntity: {
    roomName: 'lobby', naturalName: 'Lobby', description: 'Say hello', subject: 'Welcome', creationDate: 1714557600000, modificationDate: 1714557600000,
    maxUsers: 30, persistent: true, publicRoom: true, registrationEnabled: true, canAnyoneDiscoverJID: true, canOccupantsChangeSubject: false,
    canOccupantsInvite: false, canChangeNickname: true, logEnabled: true, loginRestrictedToNickname: false, membersOnly: false, moderated: false,
    allowPM: 'anyone', broadcastPresenceRoles: ['moderator', 'participant', 'visitor'], owners: ['alice@example.org'], ownerGroups: [],
    admins: [], adminGroups: [], members: [], memberGroups: [], outcasts: [], outcastGroups: [],
  },
  ParticipantEntities: { participants: [{ jid: 'lobby@conference.example.org/Bob', role: 'participant', affiliation: 'member' }] },
  OccupantEntities: { occupants: [{ jid: 'lobby@conference.example.org/Bob', userAddress: 'bob@example.org/web', role: 'moderator', affiliation: 'owner' }] },
  MUCRoomMessageEntities: { message: [{ to: 'alice@example.org/sparkweb-1', from: 'lobby@conference.example.org/Bob', type: 'groupchat', body: 'hello', delay_stamp: '2024-05-01T10:00:00.000Z', delay_from: 'lobby@conference.example.org' }], first: '1714557600000-1', last: '1714557600000-1', complete: true },
  Conversations: {
    conversation: [{
      conversationID: 42, external: false, startDate: 1714557600000, lastActivity: 1714558200000, messageCount: 1,
      participantList: ['alice@example.org', 'bob@example.org'],
      participants: [{ node: 'alice', domain: 'example.org' }, { node: 'bob', domain: 'example.org' }],
      conversationParticipants: ['alice@example.org', 'bob@example.org'],
      message: [{ conversationID: 42, from: 'alice@example.org/web', fromJID: { node: 'alice', domain: 'example.org', resource: 'web' }, to: 'bob@example.org', toJID: { node: 'bob', domain: 'example.org' }, sentDate: 1714557600000, body: 'hi', roomEvent: false }],
    }],
    first: 'a1b2c3', last: 'a1b2c3', complete: true,
  },
  Bookmarks: { bookmark: [{ bookmarkID: 7, type: 'group_chat', name: 'Lobby', value: 'lobby@conference.example.org', globalBookmark: false, users: ['alice'], groups: [], property: [{ key: 'autojoin', value: 'true' }], propertyNames: ['autojoin'] }] },
  UploadSlot: { get: 'https://upload.example.org/abc/photo.jpg', put: 'https://upload.example.org/abc/photo.jpg', headers: { Authorization: 'Basic Zm9vOmJhcg==' } },
  NotificationEntity: { subject: 'Alice', body: 'Are you there?', requireInteraction: false, persistent: false, sticky: false, data: 'alice', actions: [{ action: 'webpush.message', type: 'text', title: 'Reply' }] },
};
for (const [name, ex] of Object.entries(EXAMPLES)) schemas[name].examples = [ex];

function rsmResult() {
  return {
    first: str('RSM: archive id of the first message of this page (pass as `before` for the previous page). Extension.'),
    last: str('RSM: archive id of the last message of this page (pass as `after` for the next page). Extension.'),
    complete: bool('RSM: true when this page reaches the end of the archive in the paging direction. Extension.'),
  };
}

const errorResponse = (description, headers) => ({
  description, ...(headers ? { headers } : {}), content: { 'application/json': { schema: ref('ErrorResponse') } },
});
const responses = {
  E400: errorResponse('Bad request: invalid input; the XMPP server answered `bad-request`, `jid-malformed`, `not-acceptable` or `unexpected-request`; or the user\'s session is gone and cannot be re-opened without a password (`xmpp session could not be established`, `xmpp connection not found`).'),
  E401: errorResponse('Missing, invalid, expired or revoked credentials, or a wrong password (`not-authorized`).'),
  E403: errorResponse('The XMPP server refused: `not-authorized`, `forbidden`, `not-allowed`, `policy-violation`, `registration-required` or `subscription-required`.'),
  E404: errorResponse('Not found (`item-not-found`, `recipient-unavailable`, `remote-server-not-found`).'),
  E409: errorResponse('Conflict (`conflict`: exists already, nickname in use).'),
  E413: errorResponse('Request body larger than `http.max_body`, or a stanza too large.'),
  E429: errorResponse('Rate-limited.', { 'Retry-After': { description: 'Seconds to wait.', schema: int() } }),
  E501: errorResponse('Not supported: `feature-not-implemented`, not possible over XMPP, or the server has no such service (`<muc|pubsub|upload> service not available on this server`).'),
  E502: errorResponse('The XMPP server failed (`internal-server-error`, `undefined-condition`, `redirect`, any other condition) or the connection to it broke.'),
  E503: errorResponse('Unavailable: `service-unavailable` or `resource-constraint` from the XMPP server, the session ended or its connection was lost while waiting (`xmpp session closed`, `xmpp connection lost`), or a gateway limit / missing store.'),
  E504: errorResponse('The XMPP server did not answer in time (`session.iq_timeout`, `remote-server-timeout`).'),
};

const securitySchemes = {
  bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: '`Authorization: Bearer <access token>`.' },
  rawToken: { type: 'apiKey', in: 'header', name: 'Authorization', description: '`Authorization: <access token>`: the raw JWT with no prefix (the SparkWeb reference\'s form).' },
  basicAuth: { type: 'http', scheme: 'basic', description: 'Username and XMPP password, verified by the XMPP server (then cached for `auth.basic_cache`). The `Basic ` prefix may be `basic ` or absent.' },
  sseToken: { type: 'apiKey', in: 'query', name: 'token', description: 'Access token in the URL of the event stream.' },
  sseTicket: { type: 'apiKey', in: 'query', name: 'ticket', description: 'Single-use ticket from POST /sse/ticket.' },
  pushActionToken: { type: 'apiKey', in: 'header', name: 'Authorization', description: 'The restricted token carried by a push payload (`token`), valid only for POST /webpush/action.' },
};

const tags = [
  [A, 'Logins, tokens, passkeys, TOTP (docs/auth.md).'], [EV, 'Server-Sent Events (docs/events.md).'], [B, 'Bookmarks.'], [C, 'One-to-one chat.'],
  [K, 'PubSub, PEP, meetings, uploads, link previews, raw stanzas.'], [R, 'Roster.'], [G, 'Multi-user chat (XEP-0045).'], [PR, 'Presence.'],
  [U, 'The caller\'s account, vCard, properties, configuration.'], [W, 'Web Push (docs/push.md).'], [D, 'This document.'],
].map(([name, description]) => ({ name, description }));

const paths = {};
for (const { method, path: p, spec } of ops) {
  paths[p] ??= {};
  if (paths[p][method]) throw new Error(`duplicate operation ${method} ${p}`);
  paths[p][method] = build(method, p, spec);
}
// deterministic output: paths sorted, methods in a fixed order
const METHOD_ORDER = ['get', 'put', 'post', 'delete', 'patch'];
const sortedPaths = Object.fromEntries(Object.keys(paths).sort().map((p) => [p,
  Object.fromEntries(Object.entries(paths[p]).sort((a, b) => METHOD_ORDER.indexOf(a[0]) - METHOD_ORDER.indexOf(b[0])))]));

const doc = {
  openapi: '3.1.0',
  info: {
    title: 'Sparkgate REST and SSE API',
    version: readVersion(),
    summary: 'SparkWeb-compatible REST + Server-Sent Events interface to an XMPP server.',
    description: [
      'Sparkgate gives web pages the SparkWeb plugin\'s REST + SSE interface to any XMPP server. Every REST path is under `/sparkweb/api/rest`; the event stream is `/sparkweb/sse`.',
      '',
      '**Authentication**: `Authorization: <jwt>` (raw), `Authorization: Bearer <jwt>`, or Basic with the XMPP password. Public operations have no security requirement. Obtain a token with POST /login/{username}.',
      '',
      '**Errors** answer `{"resource","message","exception"}` (ErrorResponse); for an XMPP error `resource` is `<condition>` or `<condition>: <server text>`. XMPP errors map to HTTP statuses: bad-request, jid-malformed, not-acceptable, unexpected-request → 400; not-authorized, forbidden, not-allowed, policy-violation, registration-required, subscription-required → 403; item-not-found, recipient-unavailable, remote-server-not-found → 404; conflict → 409; gone → 410; feature-not-implemented → 501; service-unavailable, resource-constraint → 503; remote-server-timeout → 504; internal-server-error, undefined-condition, redirect and anything else → 502. An IQ the server never answers → 504; a session lost meanwhile → 503.',
      '',
      '**CORS**: preflights are answered for the origins of `http.cors_origins`.',
      '',
      'Generated by `scripts/gen-openapi.mjs`; guide: `docs/api.md`.',
    ].join('\n'),
  },
  servers: [{ url: '/', description: 'This gateway' }],
  security: [{ bearerAuth: [] }, { rawToken: [] }, { basicAuth: [] }],
  tags,
  paths: sortedPaths,
  components: { schemas, responses, securitySchemes },
};

function readVersion() {
  const cm = fs.readFileSync(path.join(ROOT, 'CMakeLists.txt'), 'utf8');
  const m = /project\s*\(\s*\w+[^)]*VERSION\s+([0-9.]+)/i.exec(cm);
  return m ? m[1] : '0.0.0';
}

const text = `${JSON.stringify(doc, null, 2)}\n`;
if (process.argv.includes('--check')) {
  const cur = fs.existsSync(OUT) ? fs.readFileSync(OUT, 'utf8') : '';
  if (cur !== text) {
    console.error(`${path.relative(ROOT, OUT)} is stale: run node scripts/gen-openapi.mjs`);
    process.exit(1);
  }
  console.log(`${path.relative(ROOT, OUT)} is up to date (${ops.length} operations)`);
} else {
  fs.mkdirSync(path.dirname(OUT), { recursive: true });
  fs.writeFileSync(OUT, text);
  console.log(`wrote ${path.relative(ROOT, OUT)} (${ops.length} operations)`);
}
