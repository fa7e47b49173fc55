/* roster_api.c: contact management and presence (contract §1.5 R1-R4, §1.7 P1-P3) on RFC 6121:
 * roster get/set/remove through the session, subscription changes as presence subscription
 * requests and (pre-)approvals, presence answered from the session's roster and presence cache
 * (session_roster.c), with a brief probe for a subscribed contact whose presence is not known
 * yet. */
#include "api/api_int.h"
#include "api/xmpp_api.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "core/tick.h"
#include "session/session.h"
#include "xmpp/jid.h"
#include "xmpp/stanza.h"

#define LOG_MODULE "api"
#include "core/log.h"

#define NS_ROSTER     "jabber:iq:roster"
#define PROBE_WAIT_MS 2000 /* how long P2 waits for the answer to a presence probe */

/* ---- input ---------------------------------------------------------------------------- */

/* A RosterItemEntity from a request body; has_* tell which members were present (and not
 * null). */
struct item_in {
    bool has_jid, has_name, has_groups, has_sub;
    char *jid;
    char *name; /* NULL: no name */
    char *groups[SESSION_ROSTER_MAX_GROUPS];
    size_t n_groups;
    int sub;
};

static void item_in_cleanup(struct item_in *in)
{
    mem_free(in->jid);
    mem_free(in->name);
    for (size_t i = 0; i < in->n_groups; i++)
        mem_free(in->groups[i]);
    memset(in, 0, sizeof(*in));
}

/* A contact address from a path or body: a JID or a bare username (completed with the domain),
 * without a resource; returned in the cache's form (ASCII local part lower-cased), or NULL. */
static char *contact_jid(const struct api_deps *d, const char *arg)
{
    char *full = api__jid_arg(d, arg, false);
    if (full == NULL)
        return NULL;
    if (strchr(full, '/') != NULL) { /* roster items and presence targets are bare JIDs */
        mem_free(full);
        return NULL;
    }
    char *at = strchr(full, '@');
    for (char *p = full; at != NULL && p < at; p++) {
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    }
    return full;
}

static bool text_ok(const char *s, size_t max)
{
    size_t len = strlen(s);
    return len > 0 && len <= max && api__xml_text_valid(s, len);
}

/* Parses the body into *in. 0, or the HTTP status to answer with *why. */
static int parse_item(const struct api_deps *d, struct http_req *req, struct item_in *in,
                      const char **why)
{
    memset(in, 0, sizeof(*in));
    size_t len;
    const char *body = http_req_body(req, &len);
    json_error_t jerr;
    json_t *j = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    int status = 400;
    *why = "body is not a JSON object";
    if (!json_is_object(j))
        goto out;
    json_t *v = json_object_get(j, "jid");
    if (v != NULL && !json_is_null(v)) {
        *why = "invalid jid";
        if (!json_is_string(v) || (in->jid = contact_jid(d, json_string_value(v))) == NULL)
            goto out;
        in->has_jid = true;
    }
    v = json_object_get(j, "nickname");
    if (v != NULL && !json_is_null(v)) {
        *why = "invalid nickname";
        if (!json_is_string(v))
            goto out;
        const char *name = json_string_value(v);
        if (name[0] != '\0' && !text_ok(name, SESSION_ROSTER_TEXT_MAX))
            goto out;
        in->has_name = true;
        in->name = name[0] != '\0' ? mem_strdup(name) : NULL;
    }
    v = json_object_get(j, "groups");
    if (v != NULL && !json_is_null(v)) {
        *why = "invalid groups";
        if (!json_is_array(v) || json_array_size(v) > SESSION_ROSTER_MAX_GROUPS)
            goto out;
        size_t i;
        json_t *g;
        json_array_foreach(v, i, g)
        {
            if (!json_is_string(g) || !text_ok(json_string_value(g), SESSION_ROSTER_TEXT_MAX))
                goto out;
            bool dup = false;
            for (size_t k = 0; k < in->n_groups && !dup; k++)
                dup = strcmp(in->groups[k], json_string_value(g)) == 0;
            if (!dup)
                in->groups[in->n_groups++] = mem_strdup(json_string_value(g));
        }
        in->has_groups = true;
    }
    v = json_object_get(j, "subscriptionType");
    if (v != NULL && !json_is_null(v)) {
        *why = "invalid subscriptionType";
        if (!json_is_integer(v))
            goto out;
        json_int_t sub = json_integer_value(v);
        if (sub < -1 || sub > 3) {
            status = 409; /* the contract's status for a code outside -1..3 */
            goto out;
        }
        in->has_sub = true;
        in->sub = (int)sub;
    }
    status = 0;
out:
    json_decref(j);
    if (status != 0)
        item_in_cleanup(in);
    return status;
}

/* ---- one request ------------------------------------------------------------------------- */

enum roster_op {
    OP_LIST,     /* R1 */
    OP_PRESENCE, /* P1 */
    OP_ADD,      /* R2 */
    OP_UPDATE,   /* R3 */
    OP_REMOVE,   /* R4 */
    OP_PROBE,    /* P2 */
};

struct roster_call {
    struct api_deps *d;
    enum roster_op op;
    char *jid;    /* the contact (R2-R4, P2) */
    char *target; /* P2: the path parameter as given */
    struct item_in in;
    struct xmpp_stanza *item; /* the <item/> sent, applied to the cache once accepted */
    char user[API_USER_MAX];
    /* P2 waiting for a probe's answer */
    struct http_req *req;
    struct tick_sub *sub;
    uint64_t deadline_ms;
};

static void call_free(void *p)
{
    struct roster_call *c = p;
    item_in_cleanup(&c->in);
    xmpp_stanza_unref(c->item);
    mem_free(c->jid);
    mem_free(c->target);
    mem_free(c);
}

static struct roster_call *call_new(struct api_deps *d, enum roster_op op, const char *user)
{
    struct roster_call *c = mem_calloc(1, sizeof(*c));
    c->d = d;
    c->op = op;
    snprintf(c->user, sizeof(c->user), "%s", user);
    return c;
}

static void not_in_roster(struct http_req *req, const char *jid)
{
    http_reply_error(req, 404, jid, "Roster Item could not deleted", "RosterItemNotFound");
}

/* ---- listing (R1, P1) -------------------------------------------------------------------- */

static json_t *item_json(const struct session_roster_item *it, bool presence)
{
    json_t *o = json_object();
    json_object_set_new(o, "jid", json_string(it->jid));
    if (it->name != NULL)
        json_object_set_new(o, "nickname", json_string(it->name));
    json_object_set_new(o, "subscriptionType", json_integer(it->subscription));
    json_t *g = json_array();
    for (size_t i = 0; i < it->n_groups; i++)
        json_array_append_new(g, json_string(it->groups[i]));
    json_object_set_new(o, "groups", g);
    if (presence) {
        const struct session_presence *p = &it->presence;
        const char *show = !p->available ? "unavailable" : p->show ? p->show : "available";
        json_object_set_new(o, "show", json_string(show));
        if (p->available && p->status != NULL)
            json_object_set_new(o, "status", json_string(p->status));
        json_object_set_new(o, "presenceType",
                            json_string(p->available ? "available" : "unavailable"));
    }
    return o;
}

struct list_ctx {
    json_t *items;
    bool presence;
};

static void list_one(const struct session_roster_item *it, void *data)
{
    struct list_ctx *x = data;
    json_array_append_new(x->items, item_json(it, x->presence));
}

static void reply_list(struct http_req *req, struct session *s, bool presence)
{
    struct list_ctx x = { json_array(), presence };
    session_roster_foreach(s, list_one, &x);
    json_t *o = json_object();
    json_object_set_new(o, "rosterItem", x.items);
    http_reply_json(req, 200, o);
}

/* ---- subscription changes (R2, R3) ------------------------------------------------------- */

static void send_presence(struct session *s, const char *to, const char *type)
{
    struct xmpp_stanza *p = xmpp_stanza_new("presence", XMPP_NS_CLIENT);
    xmpp_stanza_set_attr(p, "to", to);
    xmpp_stanza_set_attr(p, "type", type);
    int rc = session_send(s, p);
    xmpp_stanza_unref(p);
    if (rc < 0)
        log_info("presence_send_failed", "user=%s to=%s type=%s err=%s", session_username(s), to,
                 type, log_errname(rc));
}

/* Moves the subscription from `have` towards `want` (subscriptionType codes 0..3: bit 1 "to",
 * bit 2 "from"): a missing "to" is requested (subscribe), a missing "from" approved or
 * pre-approved (subscribed, RFC 6121 §3.4); an unwanted one is cancelled (unsubscribe) or
 * revoked (unsubscribed). */
static void change_subscription(struct session *s, const char *jid, int have, int want)
{
    if ((want & SESSION_SUB_FROM) && !(have & SESSION_SUB_FROM))
        send_presence(s, jid, "subscribed");
    if ((want & SESSION_SUB_TO) && !(have & SESSION_SUB_TO))
        send_presence(s, jid, "subscribe");
    if (!(want & SESSION_SUB_TO) && (have & SESSION_SUB_TO))
        send_presence(s, jid, "unsubscribe");
    if (!(want & SESSION_SUB_FROM) && (have & SESSION_SUB_FROM))
        send_presence(s, jid, "unsubscribed");
}

/* ---- roster sets (R2-R4) ----------------------------------------------------------------- */

static void set_answered(struct http_req *req, struct session *s, const struct xmpp_stanza *reply,
                         void *data)
{
    (void)reply;
    struct roster_call *c = data;
    struct session_roster_item cur;
    int have = session_roster_get(s, c->jid, &cur) ? (int)cur.subscription : SESSION_SUB_NONE;
    if (c->item != NULL) /* the push may come later: the cache shows the change at once */
        session_roster_apply(s, c->item);
    if (c->op != OP_REMOVE && c->in.has_sub && c->in.sub >= 0)
        change_subscription(s, c->jid, have, c->in.sub);
    log_debug("roster_set", "user=%s jid=%s op=%d", c->user, c->jid, (int)c->op);
    http_reply_empty(req, 200);
    call_free(c);
}

/* Sends <item/> as a roster set; set_answered finishes. */
static void send_item(struct http_req *req, struct session *s, struct roster_call *c)
{
    struct xmpp_stanza *q;
    struct xmpp_stanza *iq = api__iq_new("set", NULL, "query", NS_ROSTER, &q);
    struct xmpp_stanza *item = xmpp_stanza_add_child(q, "item", NULL);
    xmpp_stanza_set_attr(item, "jid", c->jid);
    if (c->op == OP_REMOVE) {
        xmpp_stanza_set_attr(item, "subscription", "remove");
    } else {
        struct session_roster_item cur;
        bool known = session_roster_get(s, c->jid, &cur);
        const char *name = c->in.has_name ? c->in.name : known ? cur.name : NULL;
        if (name != NULL)
            xmpp_stanza_set_attr(item, "name", name);
        if (c->in.has_groups) {
            for (size_t i = 0; i < c->in.n_groups; i++)
                xmpp_stanza_add_text_child(item, "group", NULL, c->in.groups[i]);
        } else {
            for (size_t i = 0; known && i < cur.n_groups; i++)
                xmpp_stanza_add_text_child(item, "group", NULL, cur.groups[i]);
        }
    }
    c->item = xmpp_stanza_copy(item);
    api__iq(req, s, iq, 0, 0, set_answered, call_free, c);
    xmpp_stanza_unref(iq);
}

/* ---- P2 ---------------------------------------------------------------------------------- */

/* PresenceEntity of a contact (or of the user, self). visible false: the caller may not see
 * the target's presence (the contract's "unknown" form without presenceType). */
static void reply_presence(struct http_req *req, const char *target,
                           const struct session_presence *p, bool visible)
{
    json_t *o = json_object();
    json_object_set_new(o, "username", json_string(target));
    if (visible && p->available) {
        json_object_set_new(o, "show", json_string(p->show ? p->show : "available"));
        if (p->status != NULL)
            json_object_set_new(o, "status", json_string(p->status));
        json_object_set_new(o, "presenceType", json_string("available"));
    } else {
        json_object_set_new(o, "show", json_string("unknown"));
        json_object_set_new(o, "status", json_string(""));
        if (visible)
            json_object_set_new(o, "presenceType", json_string("unavailable"));
    }
    http_reply_json(req, 200, o);
}

/* Stops waiting (before the reply: the request is gone after it). */
static void probe_stop(struct roster_call *c)
{
    http_req_on_abort(c->req, NULL, NULL);
    tick_remove(c->d->tick, c->sub);
    c->sub = NULL;
}

static void probe_aborted(struct http_req *req, void *data)
{
    (void)req;
    struct roster_call *c = data;
    tick_remove(c->d->tick, c->sub);
    call_free(c);
}

static void probe_tick(struct tick *t, uint64_t now_ms, void *data)
{
    (void)t;
    struct roster_call *c = data;
    struct session *s = session_find(c->d->sessions, c->user);
    if (s == NULL) {
        probe_stop(c);
        api__error(c->req, 503, "xmpp session closed");
        call_free(c);
        return;
    }
    struct session_roster_item it;
    bool in = session_roster_get(s, c->jid, &it);
    if (in && !it.presence.known && now_ms < c->deadline_ms)
        return;
    struct session_presence none = { 0 };
    probe_stop(c);
    reply_presence(c->req, c->target, in ? &it.presence : &none, in);
    call_free(c);
}

static void probe_step(struct http_req *req, struct session *s, struct roster_call *c)
{
    struct session_roster_item it;
    if (!session_roster_get(s, c->jid, &it) || !(it.subscription & SESSION_SUB_TO)) {
        /* RFC 6121 §4.3: no subscription, no presence (and a probe would be refused) */
        struct session_presence none = { 0 };
        reply_presence(req, c->target, &none, false);
        call_free(c);
        return;
    }
    if (it.presence.known) {
        reply_presence(req, c->target, &it.presence, true);
        call_free(c);
        return;
    }
    /* subscribed, yet nothing heard since the binding: ask the contact's server */
    struct xmpp_stanza *p = xmpp_stanza_new("presence", XMPP_NS_CLIENT);
    xmpp_stanza_set_attr(p, "to", c->jid);
    xmpp_stanza_set_attr(p, "type", "probe");
    int rc = session_send(s, p);
    xmpp_stanza_unref(p);
    if (rc < 0) {
        reply_presence(req, c->target, &it.presence, true);
        call_free(c);
        return;
    }
    c->req = req;
    c->deadline_ms = tick_now(c->d->tick) + PROBE_WAIT_MS;
    c->sub = tick_add(c->d->tick, probe_tick, c);
    http_req_on_abort(req, probe_aborted, c);
}

/* ---- dispatch once the roster is loaded ------------------------------------------------- */

static void with_roster_step(struct http_req *req, struct session *s, struct roster_call *c)
{
    struct session_roster_item cur;
    switch (c->op) {
    case OP_LIST:
    case OP_PRESENCE:
        reply_list(req, s, c->op == OP_PRESENCE);
        call_free(c);
        return;
    case OP_PROBE:
        probe_step(req, s, c);
        return;
    case OP_ADD:
        if (session_roster_get(s, c->jid, &cur)) {
            http_reply_error(req, 409, "", "Could not create roster item",
                             "UserAlreadyExistsException");
            call_free(c);
            return;
        }
        if (c->in.has_sub && c->in.sub < 0) { /* -1 removes: nothing to remove */
            http_reply_empty(req, 200);
            call_free(c);
            return;
        }
        send_item(req, s, c);
        return;
    case OP_UPDATE:
    case OP_REMOVE:
        if (!session_roster_get(s, c->jid, &cur)) {
            not_in_roster(req, c->jid);
            call_free(c);
            return;
        }
        if (c->op == OP_UPDATE && c->in.has_sub && c->in.sub < 0)
            c->op = OP_REMOVE;
        if (c->op == OP_UPDATE && !c->in.has_name && !c->in.has_groups) {
            if (c->in.has_sub) /* only the subscription changes: no roster set needed */
                change_subscription(s, c->jid, (int)cur.subscription, c->in.sub);
            http_reply_empty(req, 200);
            call_free(c);
            return;
        }
        send_item(req, s, c);
        return;
    }
}

static void roster_fetched(struct http_req *req, struct session *s, const struct xmpp_stanza *reply,
                           void *data)
{
    if (session_roster_load(s, reply) < 0) {
        api__error(req, 502, "roster result not understood");
        call_free(data);
        return;
    }
    with_roster_step(req, s, data);
}

/* Runs the call once the session's roster is loaded (fetching it when it is not). */
static void with_roster(struct http_req *req, struct session *s, struct roster_call *c)
{
    session_touch(s);
    if (session_roster_loaded(s)) {
        with_roster_step(req, s, c);
        return;
    }
    struct xmpp_stanza *iq = api__iq_new("get", NULL, "query", NS_ROSTER, NULL);
    api__iq(req, s, iq, 0, 0, roster_fetched, call_free, c);
    xmpp_stanza_unref(iq);
}

/* ---- handlers ---------------------------------------------------------------------------- */

/* GET /roster (R1) */
static void handle_list(struct http_req *req, const char *user, struct session *s,
                        struct api_deps *d)
{
    with_roster(req, s, call_new(d, OP_LIST, user));
}

/* GET /presence/roster (P1) */
static void handle_presence_roster(struct http_req *req, const char *user, struct session *s,
                                   struct api_deps *d)
{
    with_roster(req, s, call_new(d, OP_PRESENCE, user));
}

/* True when jid is the user's own bare JID. */
static bool is_self(struct session *s, const char *jid)
{
    return xmpp_jid_bare_equal(jid, session_jid(s));
}

/* POST /roster (R2) */
static void handle_add(struct http_req *req, const char *user, struct session *s,
                       struct api_deps *d)
{
    struct roster_call *c = call_new(d, OP_ADD, user);
    const char *why;
    int st = parse_item(d, req, &c->in, &why);
    if (st == 0 && !c->in.has_jid) {
        http_reply_error(req, 400, "", "JID is null", "IllegalArgumentException");
        call_free(c);
        return;
    }
    if (st == 0 && is_self(s, c->in.jid)) {
        st = 400;
        why = "the user's own JID is not a contact";
    }
    if (st != 0) {
        api__error(req, st, why);
        call_free(c);
        return;
    }
    c->jid = mem_strdup(c->in.jid);
    with_roster(req, s, c);
}

/* Reads {jid} into a new call; NULL when it has answered 400. */
static struct roster_call *path_call(struct http_req *req, const char *user, struct api_deps *d,
                                     enum roster_op op, const char *param)
{
    char *jid = contact_jid(d, http_req_param(req, param));
    if (jid == NULL) {
        api__error(req, 400, "invalid jid");
        return NULL;
    }
    struct roster_call *c = call_new(d, op, user);
    c->jid = jid;
    return c;
}

/* PUT /roster/{jid} (R3) */
static void handle_update(struct http_req *req, const char *user, struct session *s,
                          struct api_deps *d)
{
    struct roster_call *c = path_call(req, user, d, OP_UPDATE, "jid");
    if (c == NULL)
        return;
    const char *why;
    int st = parse_item(d, req, &c->in, &why);
    if (st == 0 && c->in.has_jid && strcmp(c->in.jid, c->jid) != 0) {
        st = 400;
        why = "jid in the body differs from the path";
    }
    if (st != 0) {
        api__error(req, st, why);
        call_free(c);
        return;
    }
    with_roster(req, s, c);
}

/* DELETE /roster/{jid} (R4) */
static void handle_remove(struct http_req *req, const char *user, struct session *s,
                          struct api_deps *d)
{
    struct roster_call *c = path_call(req, user, d, OP_REMOVE, "jid");
    if (c != NULL)
        with_roster(req, s, c);
}

/* GET /presence/{target} (P2) */
static void handle_probe(struct http_req *req, const char *user, struct session *s,
                         struct api_deps *d)
{
    const char *target = http_req_param(req, "target");
    struct roster_call *c = path_call(req, user, d, OP_PROBE, "target");
    if (c == NULL)
        return;
    c->target = mem_strdup(target);
    if (is_self(s, c->jid)) {
        struct session_presence own;
        session_presence_own(s, &own);
        reply_presence(req, c->target, &own, true);
        call_free(c);
        return;
    }
    with_roster(req, s, c);
}

/* POST /presence?show&status&priority (P3) */
static void handle_set_presence(struct http_req *req, const char *user, struct session *s,
                                struct api_deps *d)
{
    (void)d;
    const char *show = http_req_query(req, "show");
    const char *status = http_req_query(req, "status");
    const char *prio = http_req_query(req, "priority");
    bool available = true;
    if (show == NULL || show[0] == '\0' || strcmp(show, "available") == 0) {
        show = NULL;
    } else if (strcmp(show, "offline") == 0 || strcmp(show, "unavailable") == 0) {
        available = false;
        show = NULL;
    } else if (strcmp(show, "chat") != 0 && strcmp(show, "away") != 0 && strcmp(show, "xa") != 0 &&
               strcmp(show, "dnd") != 0) {
        api__error(req, 400, "show must be available, chat, away, xa, dnd or offline");
        return;
    }
    if (status != NULL && status[0] != '\0' && !text_ok(status, SESSION_ROSTER_TEXT_MAX)) {
        api__error(req, 400, "invalid status");
        return;
    }
    long priority = 0;
    if (prio != NULL) {
        char *end;
        priority = strtol(prio, &end, 10);
        if (prio[0] == '\0' || *end != '\0' || priority < -128 || priority > 127) {
            api__error(req, 400, "priority must be an integer from -128 to 127");
            return;
        }
    }
    session_touch(s);
    int rc = session_presence_set(s, available, show, status, (int)priority);
    if (rc < 0) {
        api__error_errno(req, rc, "presence not sent");
        return;
    }
    log_debug("presence_set", "user=%s show=%s available=%d", user, show ? show : "-", available);
    http_reply_empty(req, 200);
}

int api__roster_register(struct api_deps *d)
{
    static const struct api_route_def routes[] = {
        { HTTP_GET, API_PREFIX "/roster", handle_list, API_NEED_SESSION },
        { HTTP_POST, API_PREFIX "/roster", handle_add, API_NEED_SESSION },
        { HTTP_PUT, API_PREFIX "/roster/{jid}", handle_update, API_NEED_SESSION },
        { HTTP_DELETE, API_PREFIX "/roster/{jid}", handle_remove, API_NEED_SESSION },
        { HTTP_GET, API_PREFIX "/presence/roster", handle_presence_roster, API_NEED_SESSION },
        { HTTP_GET, API_PREFIX "/presence/{target}", handle_probe, API_NEED_SESSION },
        { HTTP_POST, API_PREFIX "/presence", handle_set_presence, API_NEED_SESSION },
    };
    return API_ROUTE_TABLE(d, routes);
}
