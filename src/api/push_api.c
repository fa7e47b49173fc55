/* push_api.c: the Web Push tag (contract §1.9 W1-W6, §4) and automatic pushes (§4.5).
 *
 * W4/W5 (and W6 with an ordinary token) push only to a contact in the caller's roster (fetched
 * with a roster IQ on the caller's session), to the caller themself, or, for the usernames in
 * push.admins, to anyone. Every payload carries a restricted token for its recipient, valid
 * only for POST /webpush/action and only to answer the sender (claim "peer"); minting it opens
 * no session (contract §4.3 fixed). 400s carry the ErrorResponse body saying why (the
 * reference's were empty; no client reads them). Extensions: GET /webpush/subscriptions (the
 * caller's own) and DELETE /webpush/subscribe/{resource}. */
#include "api/api_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/b64.h"
#include "core/mem.h"
#include "push/push.h"
#include "session/session.h"
#include "store/store.h"
#include "xmpp/stanza.h"

#define LOG_MODULE "push"
#include "core/log.h"

#define NS_ROSTER      "jabber:iq:roster"
#define ACTION_SCOPE   "webpush.action"
#define ACTION_REPLY   "webpush.message"
#define CONTACTS_MAX   2000 /* roster items looked at for W3 */
#define UNSEEN_XML_MAX (256 * 1024)

struct api_push {
    char user[API_USER_MAX]; /* whose stanza the cached chatapi.xmpp payload was */
    char *xml_b64;
};

struct push_call;
struct xmpp_stanza;
/* What to do with the caller's roster (the <query/> of the result; may be NULL). */
typedef void roster_cb(struct push_call *c, const struct xmpp_stanza *query);

struct push_call {
    struct api_call base; /* first: the call's address is the struct's */
    struct session *s;
    int64_t iq;
    roster_cb *on_roster;
    struct push_op *op;
    char target[API_USER_MAX];
    json_t *note;     /* the notification, without its token */
    json_t *contacts; /* W3: usernames of local roster contacts, then names */
    size_t next;
    json_t *users;
};

static void call_cleanup(struct api_call *base)
{
    struct push_call *c = (struct push_call *)base;
    if (c->iq > 0 && c->s != NULL)
        session_iq_cancel(c->s, c->iq);
    push_op_cancel(c->op);
    json_decref(c->note);
    json_decref(c->contacts);
    json_decref(c->users);
}

static struct push_call *call_new(struct api_deps *d, struct http_req *req, const char *user)
{
    if (d->push == NULL) {
        api__error(req, 503, "web push is not configured");
        return NULL;
    }
    struct push_call *c =
        (struct push_call *)api__call_new(d, req, sizeof(struct push_call), API_CALL_DB);
    if (c == NULL)
        return NULL;
    c->base.cleanup = call_cleanup;
    snprintf(c->base.user, sizeof(c->base.user), "%s", user);
    return c;
}

static void call_empty(struct push_call *c, int status)
{
    http_req_on_abort(c->base.req, NULL, NULL);
    http_reply_empty(c->base.req, status);
    api__call_free(&c->base);
}

static bool is_admin(const struct api_deps *d, const char *user)
{
    const char *p = d->push_admins;
    size_t ul = strlen(user);
    while (p != NULL && *p) {
        p += strspn(p, " ,");
        size_t n = strcspn(p, ",");
        size_t t = n;
        while (t > 0 && p[t - 1] == ' ')
            t--;
        if (t == ul && t > 0 && strncasecmp(p, user, ul) == 0)
            return true;
        p += n;
    }
    return false;
}

/* ---- W1: the VAPID public key ---- */

static void handle_vapidkey(struct http_req *req, const char *user, struct session *s,
                            struct api_deps *d)
{
    (void)user;
    (void)s;
    if (d->push == NULL) {
        api__error(req, 404, "public key not found");
        return;
    }
    http_reply_json(req, 200, json_pack("{s:s}", "publicKey", push_public_key(d->push)));
}

/* ---- W2 and its delete ---- */

static void subscribe_done(int status, void *data)
{
    struct push_call *c = data;
    c->op = NULL;
    switch (status) {
    case 0:
        call_empty(c, 200);
        return;
    case -EACCES:
        api__call_error(&c->base, 400, "the endpoint resolves to a private address");
        return;
    case -EHOSTUNREACH:
        api__call_error(&c->base, 400, "the endpoint's host does not resolve");
        return;
    case -ENOENT:
        api__call_error(&c->base, 404, "no such subscription");
        return;
    default:
        api__call_error(&c->base, 500, "storage failure");
        return;
    }
}

/* PUT /webpush/subscribe/{resource} — body: JSON.stringify(PushSubscription). */
static void handle_subscribe(struct http_req *req, const char *user, struct session *s,
                             struct api_deps *d)
{
    (void)s;
    struct push_call *c = call_new(d, req, user);
    if (c == NULL)
        return;
    size_t len;
    const char *body = http_req_body(req, &len);
    int rc = push_subscribe(d->push, user, http_req_param(req, "resource"), body, len,
                            subscribe_done, c, &c->op);
    if (rc == -EPROTONOSUPPORT) {
        api__call_error(&c->base, 400, "the endpoint must be an https URL");
        return;
    }
    if (rc < 0) {
        api__call_error(&c->base, 400,
                        "malformed subscription: expected {\"endpoint\":\"https://...\","
                        "\"keys\":{\"p256dh\":<65-byte P-256 point>,\"auth\":<16 bytes>}} "
                        "(base64url) and a resource of 1-255 bytes");
        return;
    }
    api__call_watch(&c->base);
}

/* DELETE /webpush/subscribe/{resource} */
static void handle_unsubscribe(struct http_req *req, const char *user, struct session *s,
                               struct api_deps *d)
{
    (void)s;
    struct push_call *c = call_new(d, req, user);
    if (c == NULL)
        return;
    if (push_unsubscribe(d->push, user, http_req_param(req, "resource"), subscribe_done, c,
                         &c->op) < 0) {
        api__call_error(&c->base, 400, "invalid resource");
        return;
    }
    api__call_watch(&c->base);
}

static void own_listed(int status, const struct store_push_sub *subs, size_t n, void *data)
{
    struct push_call *c = data;
    if (!api__call_store_back(&c->base))
        return;
    if (status != 0) {
        api__call_error(&c->base, 500, "storage failure");
        return;
    }
    json_t *list = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(list, json_pack("{s:s, s:s, s:I}", "resource", subs[i].resource,
                                              "endpoint", subs[i].endpoint, "created",
                                              (json_int_t)subs[i].created * 1000));
    api__call_reply(&c->base, json_pack("{s:o}", "subscriptions", list));
}

/* GET /webpush/subscriptions: the caller's own (no keys). */
static void handle_own(struct http_req *req, const char *user, struct session *s,
                       struct api_deps *d)
{
    (void)s;
    struct push_call *c = call_new(d, req, user);
    if (c == NULL)
        return;
    c->base.in_store = true;
    store_push_list(d->db, user, own_listed, c);
    api__call_watch(&c->base);
}

/* ---- the roster: who may be pushed to, and W3 ---- */

static void roster_done(struct session *s, int status, const struct xmpp_stanza *reply, void *data)
{
    struct push_call *c = data;
    (void)s;
    c->iq = 0;
    if (status < 0) {
        api__call_errno(&c->base, status, "roster request failed");
        return;
    }
    const char *type = xmpp_stanza_attr(reply, "type");
    const struct xmpp_stanza *q = xmpp_stanza_child(reply, "query", NS_ROSTER);
    if (type == NULL || strcmp(type, "result") != 0) {
        api__call_error(&c->base, 502, "the XMPP server refused the roster request");
        return;
    }
    c->on_roster(c, q);
}

static void roster_fetch(struct push_call *c, roster_cb *cb)
{
    struct xmpp_stanza *iq = xmpp_stanza_new("iq", XMPP_NS_CLIENT);
    xmpp_stanza_set_attr(iq, "type", "get");
    xmpp_stanza_add_child(iq, "query", NS_ROSTER);
    c->on_roster = cb;
    int64_t id = session_send_iq(c->s, iq, 0, roster_done, c);
    xmpp_stanza_unref(iq);
    if (id < 0) {
        api__call_errno(&c->base, (int)id, "roster request failed");
        return;
    }
    c->iq = id;
    session_touch(c->s);
}

/* The local part of a roster item's JID when it is a user of our domain, else NULL. */
static const char *local_contact(const struct xmpp_stanza *item, const char *domain, char *out)
{
    const char *jid = xmpp_stanza_attr(item, "jid");
    const char *sub = xmpp_stanza_attr(item, "subscription");
    if (jid == NULL || strcmp(xmpp_stanza_name(item), "item") != 0 ||
        (sub != NULL && strcmp(sub, "remove") == 0))
        return NULL;
    const char *at = strchr(jid, '@');
    if (at == NULL || strchr(jid, '/') != NULL || strcasecmp(at + 1, domain) != 0 ||
        (size_t)(at - jid) >= API_USER_MAX)
        return NULL;
    memcpy(out, jid, (size_t)(at - jid));
    out[at - jid] = '\0';
    return api__username(out, out) ? out : NULL;
}

/* ---- W4, W5, W6: sending ---- */

static void sent(int status, const struct push_result *r, void *data)
{
    struct push_call *c = data;
    c->op = NULL;
    log_debug("push_sent", "user=%s target=%s subs=%u accepted=%u retrying=%u gone=%u failed=%u",
              c->base.user, c->target, r->subs, r->accepted, r->retrying, r->gone, r->failed);
    if (status < 0)
        api__call_error(&c->base, 503, "push subscriptions unavailable");
    else if (r->subs == 0)
        api__call_error(&c->base, 400, "the target has no push subscription");
    else if (r->accepted > 0)
        call_empty(c, 200);
    else if (r->retrying > 0)
        call_empty(c, 202); /* queued: the push service asked to retry later */
    else
        api__call_error(&c->base, 400, "no push service accepted the notification");
}

/* The payload in the contract's key order (§4.4), with token for the recipient. */
static char *payload_text(struct api_deps *d, const char *target, const char *peer, json_t *note,
                          size_t *len)
{
    static const char *const order[] = {
        "subject",    "token",  "body", "icon",   "requireInteraction",
        "persistent", "sticky", "data", "actions"
    };
    char *token = auth_scoped_issue(d->auth, target, ACTION_SCOPE, peer, d->push_token_ms);
    json_t *out = json_object();
    for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
        json_t *v = strcmp(order[i], "token") == 0 ? json_string(token)
                                                   : json_incref(json_object_get(note, order[i]));
        if (v != NULL)
            json_object_set_new(out, order[i], v);
    }
    char *text = json_dumps(out, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(out);
    mem_free(token);
    *len = text ? strlen(text) : 0;
    return text;
}

static void send_now(struct push_call *c)
{
    struct api_deps *d = c->base.d;
    size_t len;
    char *text = payload_text(d, c->target, c->base.user, c->note, &len);
    struct push_msg m = { .payload = text, .len = len, .urgency = "high" };
    int rc = text ? push_send(d->push, c->target, &m, sent, c, &c->op) : -EINVAL;
    free(text);
    if (rc == -EMSGSIZE) {
        char msg[128];
        snprintf(msg, sizeof(msg), "payload too large: %zu bytes, at most %d (4096 once encrypted)",
                 len, PUSH_PAYLOAD_MAX);
        api__call_error(&c->base, 400, msg);
    } else if (rc < 0) {
        api__call_error(&c->base, rc == -ECANCELED ? 503 : 400, "notification not sent");
    }
}

static void roster_allows(struct push_call *c, const struct xmpp_stanza *q)
{
    char local[API_USER_MAX];
    for (struct xmpp_stanza *it = q ? xmpp_stanza_first_child(q) : NULL; it != NULL;
         it = xmpp_stanza_next(it)) {
        const char *l = local_contact(it, c->base.d->domain, local);
        if (l != NULL && strcmp(l, c->target) == 0) {
            send_now(c);
            return;
        }
    }
    log_info("push_refused", "user=%s target=%s why=not_in_roster", c->base.user, c->target);
    api__call_error(&c->base, 403, "the target is not in your roster");
}

/* Consumes note. Checks the target and the caller's right to push to it, then sends. s is the
 * caller's session (NULL for a restricted token, whose peer claim was checked already). */
static void notify_start(struct api_deps *d, struct http_req *req, const char *user,
                         struct session *s, const char *target, json_t *note)
{
    struct push_call *c = call_new(d, req, user);
    if (c == NULL) {
        json_decref(note);
        return;
    }
    c->note = note;
    c->s = s;
    if (!api__username(target, c->target)) {
        api__call_error(&c->base, 400, "invalid target username");
        return;
    }
    api__call_watch(&c->base);
    if (s == NULL || strcmp(c->target, user) == 0 || is_admin(d, user))
        send_now(c);
    else
        roster_fetch(c, roster_allows);
}

/* A NotificationEntity (§4.4) from the caller, keeping only its known members. */
static json_t *note_from_body(const char *body, size_t len)
{
    json_t *in = json_loadb(body, len, 0, NULL);
    if (!json_is_object(in)) {
        json_decref(in);
        return NULL;
    }
    static const char *const strs[] = { "subject", "body", "icon" };
    static const char *const bools[] = { "requireInteraction", "persistent", "sticky" };
    json_t *n = json_object();
    bool ok = true;
    for (size_t i = 0; i < 3; i++) {
        json_t *v = json_object_get(in, strs[i]);
        if (json_is_string(v))
            json_object_set(n, strs[i], v);
        else if (v != NULL && !json_is_null(v))
            ok = false;
        json_t *b = json_object_get(in, bools[i]);
        json_object_set_new(n, bools[i], json_boolean(json_is_true(b)));
    }
    json_t *data = json_object_get(in, "data");
    if (data != NULL && !json_is_null(data))
        json_object_set(n, "data", data);
    json_t *actions = json_object_get(in, "actions");
    if (json_is_array(actions))
        json_object_set(n, "actions", actions);
    else if (actions != NULL && !json_is_null(actions))
        ok = false;
    json_decref(in);
    if (!ok || json_object_get(n, "subject") == NULL) {
        json_decref(n);
        return NULL;
    }
    return n;
}

/* POST /webpush/notify/{target} — body: NotificationEntity JSON. */
static void handle_notify(struct http_req *req, const char *user, struct session *s,
                          struct api_deps *d)
{
    size_t len;
    const char *body = http_req_body(req, &len);
    json_t *note = note_from_body(body, len);
    if (note == NULL) {
        api__error(req, 400,
                   "expected a NotificationEntity: {\"subject\": text, \"body\": "
                   "text, \"icon\", \"data\", \"actions\": [...], booleans}");
        return;
    }
    notify_start(d, req, user, s, http_req_param(req, "target"), note);
}

/* W5's notification: from the sender, text as the body, with a Reply action. */
static json_t *message_note(const char *sender, const char *name, const char *text)
{
    json_t *n = json_pack("{s:s, s:s, s:b, s:b, s:b, s:s}", "subject",
                          name && *name ? name : sender, "body", text, "requireInteraction", 0,
                          "persistent", 0, "sticky", 0, "data", sender);
    if (n != NULL)
        json_object_set_new(n, "actions",
                            json_pack("[{s:s, s:s, s:s}]", "action", ACTION_REPLY, "type", "text",
                                      "title", "Reply"));
    return n;
}

static bool text_body(struct http_req *req, const char **text)
{
    size_t len;
    const char *body = http_req_body(req, &len);
    if (len == 0 || memchr(body, '\0', len) != NULL || !api__xml_text_valid(body, len)) {
        api__error(req, 400, "the body must be the message text (UTF-8)");
        return false;
    }
    *text = body;
    return true;
}

/* POST /webpush/message/{target} — body: text. */
static void handle_message(struct http_req *req, const char *user, struct session *s,
                           struct api_deps *d)
{
    const char *text;
    if (!text_body(req, &text))
        return;
    json_t *note = message_note(user, s ? session_name(s) : NULL, text);
    notify_start(d, req, user, s, http_req_param(req, "target"), note);
}

/* W6's body: {"data": target, "action": id, "value": reply}; only a reply does anything. */
static bool action_body(struct http_req *req, char *target, const char **value, json_t **hold)
{
    size_t len;
    const char *body = http_req_body(req, &len);
    json_t *in = json_loadb(body, len, 0, NULL);
    const char *action = json_string_value(json_object_get(in, "action"));
    const char *data = json_string_value(json_object_get(in, "data"));
    *value = json_string_value(json_object_get(in, "value"));
    if (action == NULL || strcmp(action, ACTION_REPLY) != 0 || data == NULL || *value == NULL ||
        **value == '\0' || strlen(data) >= API_USER_MAX) {
        json_decref(in);
        api__error(req, 400, "only the webpush.message action with data and a value is handled");
        return false;
    }
    snprintf(target, API_USER_MAX, "%s", data);
    *hold = in;
    return true;
}

/* POST /webpush/action with an ordinary token or Basic: as W5, to data. */
static void handle_action(struct http_req *req, const char *user, struct session *s,
                          struct api_deps *d)
{
    char target[API_USER_MAX];
    const char *value;
    json_t *hold;
    if (!action_body(req, target, &value, &hold))
        return;
    notify_start(d, req, user, s, target, message_note(user, s ? session_name(s) : NULL, value));
    json_decref(hold);
}

/* POST /webpush/action with the restricted token of a push: a reply to its sender only. */
static void handle_action_scoped(struct http_req *req, const char *user, const char *peer,
                                 struct api_deps *d)
{
    char target[API_USER_MAX];
    const char *value;
    json_t *hold;
    if (!action_body(req, target, &value, &hold))
        return;
    if (*peer == '\0' || strcasecmp(target, peer) != 0) {
        json_decref(hold);
        log_info("push_refused", "user=%s why=action_for_other_peer", user);
        api__error(req, 403, "this notification's token can only answer its sender");
        return;
    }
    notify_start(d, req, user, NULL, target, message_note(user, NULL, value));
    json_decref(hold);
}

/* ---- W3: contacts with subscriptions ---- */

static void subscribers_next(struct push_call *c);

static void subscribers_listed(int status, const struct store_push_sub *subs, size_t n, void *data)
{
    struct push_call *c = data;
    if (!api__call_store_back(&c->base))
        return;
    json_t *item = json_array_get(c->contacts, c->next++);
    if (status == 0 && n > 0)
        json_array_append(c->users, item);
    (void)subs;
    subscribers_next(c);
}

static void subscribers_next(struct push_call *c)
{
    json_t *item = json_array_get(c->contacts, c->next);
    if (item == NULL) {
        json_t *users = c->users;
        c->users = NULL;
        api__call_reply(&c->base, json_pack("{s:o}", "users", users));
        return;
    }
    c->base.in_store = true;
    store_push_list(c->base.d->db, json_string_value(json_object_get(item, "username")),
                    subscribers_listed, c);
}

static void roster_subscribers(struct push_call *c, const struct xmpp_stanza *q)
{
    char local[API_USER_MAX];
    c->contacts = json_array();
    c->users = json_array();
    for (struct xmpp_stanza *it = q ? xmpp_stanza_first_child(q) : NULL;
         it != NULL && json_array_size(c->contacts) < CONTACTS_MAX; it = xmpp_stanza_next(it)) {
        if (local_contact(it, c->base.d->domain, local) == NULL)
            continue;
        json_t *u = json_pack("{s:s}", "username", local);
        const char *name = xmpp_stanza_attr(it, "name");
        if (name != NULL && *name)
            json_object_set_new(u, "name", json_string(name));
        json_array_append_new(c->contacts, u);
    }
    subscribers_next(c);
}

/* GET /webpush/subscribers: the caller's roster contacts that have a subscription. */
static void handle_subscribers(struct http_req *req, const char *user, struct session *s,
                               struct api_deps *d)
{
    struct push_call *c = call_new(d, req, user);
    if (c == NULL)
        return;
    c->s = s;
    api__call_watch(&c->base);
    roster_fetch(c, roster_subscribers);
}

/* ---- automatic pushes ---- */

void api_on_unseen(const char *username, const char *name, json_t *payload, void *data)
{
    struct api_deps *d = data;
    if (d->push == NULL || !d->push_auto || d->state == NULL || d->state->push == NULL)
        return;
    struct api_push *ap = d->state->push;
    if (strcmp(name, "chatapi.xmpp") == 0) { /* comes first for each stanza: keep it */
        const char *b64 = json_string_value(json_object_get(payload, "xmpp"));
        mem_free(ap->xml_b64);
        ap->xml_b64 = b64 && strlen(b64) < UNSEEN_XML_MAX ? mem_strdup(b64) : NULL;
        snprintf(ap->user, sizeof(ap->user), "%s", username);
        return;
    }
    if (strcmp(name, "chatapi.chat") != 0 && strcmp(name, "chatapi.muc") != 0)
        return;
    uint8_t *xml = NULL;
    size_t xl = 0;
    if (ap->xml_b64 != NULL && strcmp(ap->user, username) == 0 &&
        b64_decode(ap->xml_b64, strlen(ap->xml_b64), B64_STD, &xml, &xl) < 0)
        xml = NULL;
    struct push_auto_opts o = { .user = username,
                                .domain = d->domain,
                                .include_body = d->push_include_body };
    char peer[PUSH_PEER_MAX], topic[PUSH_TOPIC_MAX + 1];
    json_t *note = push_auto_notification(name, payload, (const char *)xml, &o, peer, topic);
    mem_free(xml);
    if (note == NULL)
        return;
    size_t len;
    char *text = payload_text(d, username, peer, note, &len);
    json_decref(note);
    struct push_msg m = { .payload = text, .len = len, .urgency = "high", .topic = topic };
    int rc = text ? push_send(d->push, username, &m, NULL, NULL, NULL) : -EINVAL;
    log_debug("auto_push", "user=%s event=%s rc=%s", username, name, log_errname(rc));
    free(text);
}

int api__push_register(struct api_deps *d)
{
    d->state->push = mem_calloc(1, sizeof(*d->state->push));
    int rc = api__route_user(d, HTTP_GET, API_PREFIX "/webpush/vapidkey", handle_vapidkey, 0);
    if (rc == 0)
        rc = api__route_user(d, HTTP_PUT, API_PREFIX "/webpush/subscribe/{resource}",
                             handle_subscribe, 0);
    if (rc == 0)
        rc = api__route_user(d, HTTP_DELETE, API_PREFIX "/webpush/subscribe/{resource}",
                             handle_unsubscribe, 0);
    if (rc == 0)
        rc = api__route_user(d, HTTP_GET, API_PREFIX "/webpush/subscriptions", handle_own, 0);
    if (rc == 0)
        rc = api__route_user(d, HTTP_GET, API_PREFIX "/webpush/subscribers", handle_subscribers,
                             API_NEED_SESSION);
    if (rc == 0)
        rc = api__route_user(d, HTTP_POST, API_PREFIX "/webpush/notify/{target}", handle_notify,
                             API_NEED_SESSION);
    if (rc == 0)
        rc = api__route_user(d, HTTP_POST, API_PREFIX "/webpush/message/{target}", handle_message,
                             API_NEED_SESSION);
    if (rc == 0)
        rc = api__route_scoped(d, HTTP_POST, API_PREFIX "/webpush/action", ACTION_SCOPE,
                               handle_action_scoped, handle_action, API_NEED_SESSION);
    return rc;
}

void api__push_free(struct api_deps *d)
{
    if (d->state == NULL || d->state->push == NULL)
        return;
    mem_free(d->state->push->xml_b64);
    mem_free(d->state->push);
    d->state->push = NULL;
}
