/* session_iq.c: IQ waiters, the protocol duties of a well-behaved client, and the filter of
 * inbound messages delivered twice around a reconnection. */
#include "session/session_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/mem.h"
#include "xmpp/jid.h"
#include "xmpp/stanza.h"

#define LOG_MODULE "session"
#include "core/log.h"

#define NS_PING       "urn:xmpp:ping"
#define NS_DISCO_INFO "http://jabber.org/protocol/disco#info"
#define NS_ROSTER     "jabber:iq:roster"

/* Features advertised in disco#info (contract §2.6: at least chat states, direct invitations
 * and MUC). Sorted as XEP-0115 would want them. */
static const char *const disco_features[] = {
    "http://jabber.org/protocol/chatstates",
    "http://jabber.org/protocol/disco#info",
    "http://jabber.org/protocol/muc",
    "jabber:x:conference",
    "urn:xmpp:ping",
    NULL,
};

int64_t session_send_iq(struct session *s, struct xmpp_stanza *iq, uint64_t timeout_ms,
                        session_iq_cb *cb, void *data)
{
    /* while reconnecting (or while older stanzas still wait) the request waits in order */
    bool queue = s->state == SESSION_RECONNECTING || (s->state == SESSION_ONLINE && s->outq.n > 0);
    if (s->state == SESSION_CLOSING ||
        (!queue && (s->stream == NULL || xmpp_stream_jid(s->stream) == NULL)))
        return -ENOTCONN;
    struct iq_waiter *w = mem_calloc(1, sizeof(*w));
    w->id = ++s->next_iq;
    snprintf(w->idstr, sizeof(w->idstr), "sg%lld", (long long)w->id);
    xmpp_stanza_set_attr(iq, "id", w->idstr);
    const char *to = xmpp_stanza_attr(iq, "to");
    w->to = to ? mem_strdup(to) : NULL;
    w->deadline_ms = tick_now(s->mgr->o.tick) + (timeout_ms ? timeout_ms : s->mgr->o.iq_timeout_ms);
    w->cb = cb;
    w->data = data;
    int rc = queue ? session__queue(s, iq) : xmpp_stream_send(s->stream, iq);
    if (rc < 0) {
        mem_free(w->to);
        mem_free(w);
        return rc;
    }
    w->next = s->iqs;
    s->iqs = w;
    return w->id;
}

static void waiter_free(struct iq_waiter *w)
{
    mem_free(w->to);
    mem_free(w);
}

void session_iq_cancel(struct session *s, int64_t id)
{
    for (struct iq_waiter **pp = &s->iqs; *pp; pp = &(*pp)->next) {
        if ((*pp)->id == id) {
            struct iq_waiter *w = *pp;
            *pp = w->next;
            waiter_free(w);
            return;
        }
    }
}

void session__fail_iqs(struct session *s, int status)
{
    while (s->iqs != NULL) {
        struct iq_waiter *w = s->iqs;
        s->iqs = w->next;
        w->cb(s, status, NULL, w->data);
        waiter_free(w);
    }
}

struct iq_waiter *session__find_iq(struct session *s, const char *id)
{
    for (struct iq_waiter *w = s->iqs; id != NULL && w != NULL; w = w->next) {
        if (strcmp(w->idstr, id) == 0)
            return w;
    }
    return NULL;
}

void session__fail_lost_iqs(struct session *s, int status)
{
    struct iq_waiter **pp = &s->iqs;
    while (*pp) {
        struct iq_waiter *w = *pp;
        if (!w->lost || status == 0) {
            w->lost = false;
            pp = &w->next;
            continue;
        }
        *pp = w->next;
        log_debug("iq_lost", "jid=%s id=%s", s->bare, w->idstr);
        w->cb(s, status, NULL, w->data);
        waiter_free(w);
        pp = &s->iqs; /* the callback may have changed the list */
    }
}

void session__expire_iqs(struct session *s, uint64_t now_ms)
{
    struct iq_waiter **pp = &s->iqs;
    while (*pp) {
        struct iq_waiter *w = *pp;
        if (w->deadline_ms > now_ms) {
            pp = &w->next;
            continue;
        }
        *pp = w->next;
        log_debug("iq_timeout", "jid=%s id=%s", s->bare, w->idstr);
        w->cb(s, -ETIMEDOUT, NULL, w->data);
        waiter_free(w);
        pp = &s->iqs; /* the callback may have changed the list */
    }
}

/* Whether a reply's 'from' matches the request's 'to' (RFC 6120 §8.1.2.1: a request without
 * 'to' is answered by the account: no 'from', the bare JID or the domain). */
static bool reply_from_ok(const struct session *s, const struct iq_waiter *w, const char *from)
{
    if (w->to == NULL)
        return from == NULL || xmpp_jid_bare_equal(from, s->bare) ||
               strcmp(from, s->mgr->domain) == 0;
    if (from == NULL)
        return xmpp_jid_bare_equal(w->to, s->bare);
    return strcmp(from, w->to) == 0 || (strchr(w->to, '/') == NULL && strchr(from, '/') == NULL &&
                                        xmpp_jid_bare_equal(from, w->to));
}

static void on_iq_reply(struct session *s, struct xmpp_stanza *st)
{
    const char *id = xmpp_stanza_attr(st, "id");
    if (id == NULL)
        return;
    for (struct iq_waiter **pp = &s->iqs; *pp; pp = &(*pp)->next) {
        struct iq_waiter *w = *pp;
        if (strcmp(w->idstr, id) != 0)
            continue;
        if (!reply_from_ok(s, w, xmpp_stanza_attr(st, "from"))) {
            log_warn("iq_spoofed_reply", "jid=%s id=%s", s->bare, id);
            return;
        }
        *pp = w->next;
        w->cb(s, 0, st, w->data);
        waiter_free(w);
        return;
    }
}

/* A reply to an inbound request: same id, 'to' = the requester. */
static struct xmpp_stanza *reply_to(const struct xmpp_stanza *req, const char *type)
{
    struct xmpp_stanza *r = xmpp_stanza_new("iq", XMPP_NS_CLIENT);
    xmpp_stanza_set_attr(r, "type", type);
    const char *id = xmpp_stanza_attr(req, "id");
    const char *from = xmpp_stanza_attr(req, "from");
    if (id)
        xmpp_stanza_set_attr(r, "id", id);
    if (from)
        xmpp_stanza_set_attr(r, "to", from);
    return r;
}

static void answer_disco(struct session *s, const struct xmpp_stanza *req,
                         const struct xmpp_stanza *q)
{
    struct xmpp_stanza *r = reply_to(req, "result");
    struct xmpp_stanza *rq = xmpp_stanza_add_child(r, "query", NS_DISCO_INFO);
    const char *node = xmpp_stanza_attr(q, "node");
    if (node)
        xmpp_stanza_set_attr(rq, "node", node);
    struct xmpp_stanza *id = xmpp_stanza_add_child(rq, "identity", NULL);
    xmpp_stanza_set_attr(id, "category", "client");
    xmpp_stanza_set_attr(id, "type", "web");
    xmpp_stanza_set_attr(id, "name", "Sparkgate");
    for (int i = 0; disco_features[i]; i++) {
        struct xmpp_stanza *f = xmpp_stanza_add_child(rq, "feature", NULL);
        xmpp_stanza_set_attr(f, "var", disco_features[i]);
    }
    session_send(s, r);
    xmpp_stanza_unref(r);
}

static void answer_error(struct session *s, const struct xmpp_stanza *req, const char *type,
                         const char *condition)
{
    struct xmpp_stanza *r = reply_to(req, "error");
    struct xmpp_stanza *e = xmpp_stanza_add_child(r, "error", NULL);
    xmpp_stanza_set_attr(e, "type", type);
    xmpp_stanza_add_child(e, condition, XMPP_NS_STANZAS);
    session_send(s, r);
    xmpp_stanza_unref(r);
}

static void on_iq_request(struct session *s, struct xmpp_stanza *st)
{
    const char *type = xmpp_stanza_attr(st, "type");
    struct xmpp_stanza *q = xmpp_stanza_first_child(st);
    const char *from = xmpp_stanza_attr(st, "from");
    /* RFC 6121 §2.1.6: no 'from', or exactly the account's bare JID (no resource: another
     * client of the same account is not the server) */
    bool from_account =
        from == NULL || (strchr(from, '/') == NULL && xmpp_jid_bare_equal(from, s->bare));
    const char *ns = q ? xmpp_stanza_ns(q) : NULL;
    const char *name = q ? xmpp_stanza_name(q) : "";
    bool get = strcmp(type, "get") == 0;

    if (get && ns && strcmp(ns, NS_PING) == 0 && strcmp(name, "ping") == 0) {
        struct xmpp_stanza *r = reply_to(st, "result");
        session_send(s, r);
        xmpp_stanza_unref(r);
    } else if (get && ns && strcmp(ns, NS_DISCO_INFO) == 0 && strcmp(name, "query") == 0) {
        answer_disco(s, st, q);
    } else if (!get && ns && strcmp(ns, NS_ROSTER) == 0 && strcmp(name, "query") == 0) {
        /* RFC 6121 §2.1.6: acknowledge roster pushes from our own account only */
        if (from_account) {
            session__roster_push(s, q); /* the roster cache */
            struct xmpp_stanza *r = reply_to(st, "result");
            session_send(s, r);
            xmpp_stanza_unref(r);
        } else {
            answer_error(s, st, "cancel", "service-unavailable");
        }
    } else {
        answer_error(s, st, "cancel", "service-unavailable");
    }
}

static void on_presence(struct session *s, struct xmpp_stanza *st)
{
    session__roster_presence(s, st); /* the presence cache (session_roster.c) */
    session__muc_presence(s, st);
    const char *type = xmpp_stanza_attr(st, "type");
    const char *from = xmpp_stanza_attr(st, "from");
    if (type == NULL || from == NULL || strcmp(type, "subscribe") != 0)
        return;
    /* the reference's accept_all: approve every inbound subscription request */
    struct xmpp_stanza *p = xmpp_stanza_new("presence", XMPP_NS_CLIENT);
    char *bare = xmpp_jid_bare_of(from);
    xmpp_stanza_set_attr(p, "to", bare ? bare : from);
    xmpp_stanza_set_attr(p, "type", "subscribed");
    session_send(s, p);
    xmpp_stanza_unref(p);
    mem_free(bare);
}

/* FNV-1a over a string and its terminator. */
static uint64_t fnv1a(uint64_t h, const char *p)
{
    do {
        h ^= (unsigned char)*p;
        h *= 1099511628211ULL;
    } while (*p++ != '\0');
    return h;
}

bool session__duplicate(struct session *s, const struct xmpp_stanza *st)
{
    if (strcmp(xmpp_stanza_name(st), "message") != 0)
        return false;
    const char *id = xmpp_stanza_attr(st, "id");
    const char *from = xmpp_stanza_attr(st, "from");
    const char *type = xmpp_stanza_attr(st, "type");
    if (id == NULL || *id == '\0' || from == NULL)
        return false;
    char *body = xmpp_stanza_child_text(st, "body", NULL);
    if (body == NULL)
        return false; /* chat states, receipts: harmless twice, and often without unique ids */
    char *bare = xmpp_jid_bare_of(from);
    uint64_t h = 14695981039346656037ULL;
    h = fnv1a(h, bare ? bare : from);
    h = fnv1a(h, type ? type : "normal");
    h = fnv1a(h, id);
    h = fnv1a(h, body);
    mem_free(bare);
    mem_free(body);
    h |= 1; /* 0 marks an empty slot */
    for (size_t i = 0; i < SESSION_DEDUP_LEN; i++) {
        if (s->dedup[i] == h)
            return true;
    }
    s->dedup[s->dedup_pos] = h;
    s->dedup_pos = (s->dedup_pos + 1) % SESSION_DEDUP_LEN;
    return false;
}

struct emit_ctx {
    struct session *s;
};

static void emit_event(const char *name, json_t *payload, void *data)
{
    struct emit_ctx *ctx = data;
    struct session_mgr *mgr = ctx->s->mgr;
    if (mgr->o.on_unseen != NULL && events_log_sink_count(ctx->s->log) == 0)
        mgr->o.on_unseen(ctx->s->username, name, payload, mgr->o.data);
    events_log_push(ctx->s->log, name, json_incref(payload));
}

void session__on_stanza(struct session *s, struct xmpp_stanza *st)
{
    if (session__mam_collect(s, st)) /* an archive query's result: no event */
        return;
    session__muc_message(s, st);     /* group chat history (session_muc.c) */
    if (session__duplicate(s, st)) { /* e.g. resent by its sender after a lost ack */
        log_debug("duplicate", "jid=%s id=%s", s->bare, xmpp_stanza_attr(st, "id"));
        return;
    }
    struct emit_ctx ctx = { s };
    struct events_opts eo = s->mgr->o.events;
    eo.account = s->bare; /* carbons are believed from the account only */
    events_from_stanza(st, &eo, emit_event, &ctx);
    if (s->state == SESSION_CLOSING)
        return;

    const char *name = xmpp_stanza_name(st);
    if (strcmp(name, "iq") == 0) {
        const char *type = xmpp_stanza_attr(st, "type");
        if (type == NULL)
            return;
        if (strcmp(type, "result") == 0 || strcmp(type, "error") == 0)
            on_iq_reply(s, st);
        else if (strcmp(type, "get") == 0 || strcmp(type, "set") == 0)
            on_iq_request(s, st);
    } else if (strcmp(name, "presence") == 0) {
        on_presence(s, st);
    }
}
