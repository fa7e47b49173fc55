/* xmpp_api.c: IQ steps of REST requests, the stanza-error table, address arguments and the
 * XEP-0030 service cache (xmpp_api.h). */
#include "api/xmpp_api.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/mem.h"
#include "core/rnd.h"
#include "core/tick.h"
#include "session/session.h"
#include "xmpp/jid.h"
#include "xmpp/stanza.h"

#define LOG_MODULE "api"
#include "core/log.h"

#define NS_DISCO_INFO  "http://jabber.org/protocol/disco#info"
#define NS_DISCO_ITEMS "http://jabber.org/protocol/disco#items"
#define NS_UPLOAD      "urn:xmpp:http:upload:0"

#define DISCO_TTL_MS    (10 * 60 * 1000)
#define DISCO_MAX_ITEMS 64
#define ERROR_TEXT_MAX  200
#define ROOM_NAME_MAX   256

/* ---- IQ steps ---------------------------------------------------------------------------- */

struct api_iq {
    struct http_req *req;
    struct session *s;
    int64_t id;
    int flags;
    api_iq_cb *cb;
    void (*free_data)(void *);
    void *data;
};

static void iq_release(struct api_iq *q)
{
    if (q->free_data != NULL && q->data != NULL)
        q->free_data(q->data);
    mem_free(q);
}

static void iq_aborted(struct http_req *req, void *data)
{
    (void)req;
    struct api_iq *q = data;
    session_iq_cancel(q->s, q->id);
    iq_release(q);
}

static void iq_answered(struct session *s, int status, const struct xmpp_stanza *reply, void *data)
{
    struct api_iq *q = data;
    http_req_on_abort(q->req, NULL, NULL);
    if (status == -ETIMEDOUT && (q->flags & API_IQ_TIMEOUT))
        reply = NULL, status = 0;
    if (status < 0) {
        api__iq_failed(q->req, status);
        iq_release(q);
        return;
    }
    if (api__is_error(reply) && !(q->flags & API_IQ_ERRORS)) {
        api__xmpp_error(q->req, reply);
        iq_release(q);
        return;
    }
    struct http_req *req = q->req;
    api_iq_cb *cb = q->cb;
    void *d = q->data;
    mem_free(q);
    cb(req, s, reply, d);
}

int api__iq(struct http_req *req, struct session *s, struct xmpp_stanza *iq, uint64_t timeout_ms,
            int flags, api_iq_cb *cb, void (*free_data)(void *), void *data)
{
    struct api_iq *q = mem_calloc(1, sizeof(*q));
    q->req = req;
    q->s = s;
    q->flags = flags;
    q->cb = cb;
    q->free_data = free_data;
    q->data = data;
    session_touch(s);
    int64_t id = session_send_iq(s, iq, timeout_ms, iq_answered, q);
    if (id < 0) {
        api__error_errno(req, (int)id, "xmpp send failed");
        iq_release(q);
        return (int)id;
    }
    q->id = id;
    http_req_on_abort(req, iq_aborted, q);
    return 0;
}

struct xmpp_stanza *api__iq_new(const char *type, const char *to, const char *name, const char *ns,
                                struct xmpp_stanza **payload)
{
    struct xmpp_stanza *iq = xmpp_stanza_new("iq", XMPP_NS_CLIENT);
    xmpp_stanza_set_attr(iq, "type", type);
    if (to != NULL)
        xmpp_stanza_set_attr(iq, "to", to);
    struct xmpp_stanza *p = xmpp_stanza_add_child(iq, name, ns);
    if (payload != NULL)
        *payload = p;
    return iq;
}

/* ---- stanza errors ----------------------------------------------------------------------- */

void api__iq_failed(struct http_req *req, int status)
{
    if (status == -ETIMEDOUT)
        api__error(req, 504, "xmpp server did not answer");
    else if (status == -ECONNRESET)
        api__error(req, 503, "xmpp connection lost");
    else
        api__error(req, 503, "xmpp session closed");
}

bool api__is_error(const struct xmpp_stanza *st)
{
    const char *type = st ? xmpp_stanza_attr(st, "type") : NULL;
    return type != NULL && strcmp(type, "error") == 0;
}

static const struct {
    const char *condition;
    int status;
} error_table[] = {
    { "bad-request", 400 },
    { "jid-malformed", 400 },
    { "not-acceptable", 400 },
    { "unexpected-request", 400 },
    { "not-authorized", 403 },
    { "forbidden", 403 },
    { "not-allowed", 403 },
    { "policy-violation", 403 },
    { "registration-required", 403 },
    { "subscription-required", 403 },
    { "item-not-found", 404 },
    { "recipient-unavailable", 404 },
    { "remote-server-not-found", 404 },
    { "conflict", 409 },
    { "gone", 410 },
    { "feature-not-implemented", 501 },
    { "service-unavailable", 503 },
    { "resource-constraint", 503 },
    { "remote-server-timeout", 504 },
    { "internal-server-error", 502 },
    { "undefined-condition", 502 },
    { "redirect", 502 },
};

/* The defined condition element inside <error/>, or NULL. */
static const struct xmpp_stanza *error_condition(const struct xmpp_stanza *err)
{
    for (const struct xmpp_stanza *c = xmpp_stanza_first_child(err); c; c = xmpp_stanza_next(c)) {
        const char *ns = xmpp_stanza_ns(c);
        if (ns != NULL && strcmp(ns, XMPP_NS_STANZAS) == 0 &&
            strcmp(xmpp_stanza_name(c), "text") != 0)
            return c;
    }
    return NULL;
}

int api__xmpp_error_status(const struct xmpp_stanza *st, const char **condition)
{
    const struct xmpp_stanza *err = xmpp_stanza_child(st, "error", NULL);
    const struct xmpp_stanza *c = err ? error_condition(err) : NULL;
    const char *name = c ? xmpp_stanza_name(c) : "undefined-condition";
    if (condition != NULL)
        *condition = name;
    for (size_t i = 0; i < sizeof(error_table) / sizeof(error_table[0]); i++) {
        if (strcmp(error_table[i].condition, name) == 0)
            return error_table[i].status;
    }
    return 502;
}

/* Cuts s to at most max bytes without splitting a UTF-8 sequence. */
static void utf8_cut(char *s, size_t max)
{
    size_t len = strlen(s);
    if (len <= max)
        return;
    size_t cut = max;
    while (cut > 0 && ((unsigned char)s[cut] & 0xC0) == 0x80)
        cut--;
    s[cut] = '\0';
}

void api__xmpp_error(struct http_req *req, const struct xmpp_stanza *st)
{
    const char *condition;
    int status = api__xmpp_error_status(st, &condition);
    const struct xmpp_stanza *err = xmpp_stanza_child(st, "error", NULL);
    char *text = err ? xmpp_stanza_child_text(err, "text", XMPP_NS_STANZAS) : NULL;
    char resource[ERROR_TEXT_MAX + 64];
    if (text != NULL && text[0] != '\0' && api__xml_text_valid(text, strlen(text))) {
        utf8_cut(text, ERROR_TEXT_MAX);
        snprintf(resource, sizeof(resource), "%s: %s", condition, text);
    } else {
        snprintf(resource, sizeof(resource), "%s", condition);
    }
    mem_free(text);
    api__error(req, status, resource);
}

/* ---- addresses --------------------------------------------------------------------------- */

char *api__jid_arg(const struct api_deps *d, const char *arg, bool need_local)
{
    if (arg == NULL || arg[0] == '\0' || strlen(arg) > 3071)
        return NULL;
    char buf[3072 + 256];
    if (strchr(arg, '@') == NULL && strchr(arg, '.') == NULL && strchr(arg, '/') == NULL) {
        if (!xmpp_jid_local_valid(arg) || d->domain == NULL)
            return NULL;
        snprintf(buf, sizeof(buf), "%s@%s", arg, d->domain);
        arg = buf;
    }
    struct xmpp_jid jid;
    if (xmpp_jid_parse(&jid, arg) < 0)
        return NULL;
    char *out = NULL;
    if (!need_local || jid.local != NULL)
        out = xmpp_jid_full(&jid);
    xmpp_jid_cleanup(&jid);
    return out;
}

bool api__room_name_valid(const char *room)
{
    return room != NULL && room[0] != '\0' && strlen(room) <= ROOM_NAME_MAX &&
           xmpp_jid_local_valid(room);
}

bool api__muc_service_arg(const struct api_deps *d, const char *service, char **out)
{
    *out = NULL;
    if (service == NULL || service[0] == '\0')
        return true;
    size_t len = strlen(service);
    if (len > 1023)
        return false;
    char buf[2048];
    const char *dot = strchr(service, '.');
    if (dot == NULL)
        snprintf(buf, sizeof(buf), "%s.%s", service, d->domain);
    else if (dot == service + len - 1)
        snprintf(buf, sizeof(buf), "%s%s", service, d->domain);
    else
        snprintf(buf, sizeof(buf), "%s", service);
    struct xmpp_jid jid;
    if (xmpp_jid_parse(&jid, buf) < 0)
        return false;
    bool ok = jid.local == NULL && jid.resource == NULL;
    if (ok)
        *out = xmpp_jid_bare(&jid);
    xmpp_jid_cleanup(&jid);
    return ok;
}

/* ---- service discovery ------------------------------------------------------------------- */

struct api_disco {
    char *jid[API_SVC_COUNT];
    struct xmpp_stanza *info[API_SVC_COUNT];
    uint64_t fetched_ms; /* 0: never */
};

static const char *const kind_names[API_SVC_COUNT] = { "muc", "pubsub", "upload" };

/* One discovery run on behalf of a request: disco#items on the domain, then disco#info on every
 * item, one at a time (servers list a handful of components). */
struct disco_run {
    struct api_deps *d;
    enum api_service_kind kind;
    api_service_cb *cb;
    void (*free_data)(void *);
    void *data;
    char *items[DISCO_MAX_ITEMS];
    size_t n, next;
    char *found[API_SVC_COUNT];
    struct xmpp_stanza *info[API_SVC_COUNT];
};

static void run_free(void *p)
{
    struct disco_run *r = p;
    if (r->free_data != NULL && r->data != NULL)
        r->free_data(r->data);
    for (size_t i = 0; i < r->n; i++)
        mem_free(r->items[i]);
    for (int k = 0; k < API_SVC_COUNT; k++) {
        mem_free(r->found[k]);
        xmpp_stanza_unref(r->info[k]);
    }
    mem_free(r);
}

static bool has_identity(const struct xmpp_stanza *q, const char *category, const char *type)
{
    for (const struct xmpp_stanza *c = xmpp_stanza_first_child(q); c; c = xmpp_stanza_next(c)) {
        if (strcmp(xmpp_stanza_name(c), "identity") != 0)
            continue;
        const char *cat = xmpp_stanza_attr(c, "category");
        const char *ty = xmpp_stanza_attr(c, "type");
        if (cat && ty && strcmp(cat, category) == 0 && strcmp(ty, type) == 0)
            return true;
    }
    return false;
}

bool api__disco_feature(const struct xmpp_stanza *q, const char *var)
{
    for (const struct xmpp_stanza *c = q ? xmpp_stanza_first_child(q) : NULL; c;
         c = xmpp_stanza_next(c)) {
        const char *v = xmpp_stanza_attr(c, "var");
        if (strcmp(xmpp_stanza_name(c), "feature") == 0 && v && strcmp(v, var) == 0)
            return true;
    }
    return false;
}

static struct api_disco *disco_cache(struct api_deps *d)
{
    if (d->state->disco == NULL)
        d->state->disco = mem_calloc(1, sizeof(*d->state->disco));
    return d->state->disco;
}

static void disco_store(struct disco_run *r)
{
    struct api_disco *c = disco_cache(r->d);
    for (int k = 0; k < API_SVC_COUNT; k++) {
        mem_free(c->jid[k]);
        xmpp_stanza_unref(c->info[k]);
        c->jid[k] = r->found[k];
        c->info[k] = r->info[k];
        r->found[k] = NULL;
        r->info[k] = NULL;
        log_info("service_discovered", "kind=%s jid=%s", kind_names[k],
                 c->jid[k] ? c->jid[k] : "-");
    }
    c->fetched_ms = tick_now(r->d->tick);
    if (c->fetched_ms == 0)
        c->fetched_ms = 1;
}

static void answer_from_cache(struct http_req *req, struct session *s, struct api_deps *d,
                              enum api_service_kind kind, api_service_cb *cb,
                              void (*free_data)(void *), void *data)
{
    struct api_disco *c = d->state->disco;
    if (c->jid[kind] == NULL) {
        char text[96];
        snprintf(text, sizeof(text), "%s service not available on this server", kind_names[kind]);
        api__error(req, 501, text);
        if (free_data != NULL && data != NULL)
            free_data(data);
        return;
    }
    cb(req, s, c->jid[kind], c->info[kind], data);
}

static void disco_next(struct http_req *req, struct session *s, struct disco_run *r);

static void info_answered(struct http_req *req, struct session *s, const struct xmpp_stanza *reply,
                          void *data)
{
    struct disco_run *r = data;
    const char *type = xmpp_stanza_attr(reply, "type");
    const struct xmpp_stanza *q = xmpp_stanza_child(reply, "query", NS_DISCO_INFO);
    const char *from = r->items[r->next - 1];
    if (type && strcmp(type, "result") == 0 && q != NULL) {
        struct xmpp_stanza *copy = NULL;
        if (r->found[API_SVC_MUC] == NULL && has_identity(q, "conference", "text") &&
            !has_identity(q, "conference", "irc")) {
            r->found[API_SVC_MUC] = mem_strdup(from);
            r->info[API_SVC_MUC] = copy = xmpp_stanza_copy(reply);
        }
        if (r->found[API_SVC_PUBSUB] == NULL && has_identity(q, "pubsub", "service")) {
            r->found[API_SVC_PUBSUB] = mem_strdup(from);
            r->info[API_SVC_PUBSUB] =
                copy ? xmpp_stanza_ref(copy) : (copy = xmpp_stanza_copy(reply));
        }
        if (r->found[API_SVC_UPLOAD] == NULL && api__disco_feature(q, NS_UPLOAD)) {
            r->found[API_SVC_UPLOAD] = mem_strdup(from);
            r->info[API_SVC_UPLOAD] = copy ? xmpp_stanza_ref(copy) : xmpp_stanza_copy(reply);
        }
    }
    disco_next(req, s, r);
}

static void disco_next(struct http_req *req, struct session *s, struct disco_run *r)
{
    if (r->next < r->n) {
        struct xmpp_stanza *iq =
            api__iq_new("get", r->items[r->next++], "query", NS_DISCO_INFO, NULL);
        api__iq(req, s, iq, 0, API_IQ_ERRORS, info_answered, run_free, r);
        xmpp_stanza_unref(iq);
        return;
    }
    disco_store(r);
    struct api_deps *d = r->d;
    enum api_service_kind kind = r->kind;
    api_service_cb *cb = r->cb;
    void (*free_data)(void *) = r->free_data;
    void *data = r->data;
    r->free_data = NULL;
    r->data = NULL;
    run_free(r);
    answer_from_cache(req, s, d, kind, cb, free_data, data);
}

static void items_answered(struct http_req *req, struct session *s, const struct xmpp_stanza *reply,
                           void *data)
{
    struct disco_run *r = data;
    const struct xmpp_stanza *q = xmpp_stanza_child(reply, "query", NS_DISCO_ITEMS);
    /* the domain itself may host a service (e.g. PEP-only servers host no pubsub component) */
    r->items[r->n++] = mem_strdup(r->d->domain);
    for (const struct xmpp_stanza *c = q ? xmpp_stanza_first_child(q) : NULL;
         c != NULL && r->n < DISCO_MAX_ITEMS; c = xmpp_stanza_next(c)) {
        const char *jid = xmpp_stanza_attr(c, "jid");
        if (strcmp(xmpp_stanza_name(c), "item") != 0 || jid == NULL ||
            xmpp_stanza_attr(c, "node") != NULL)
            continue;
        char *bare = xmpp_jid_bare_of(jid);
        if (bare != NULL)
            r->items[r->n++] = bare;
    }
    disco_next(req, s, r);
}

int api__service(struct api_deps *d, struct http_req *req, struct session *s,
                 enum api_service_kind kind, api_service_cb *cb, void (*free_data)(void *),
                 void *data)
{
    const char *configured[API_SVC_COUNT] = { d->muc_service, d->pubsub_service,
                                              d->upload_service };
    if (configured[kind] != NULL && configured[kind][0] != '\0') {
        cb(req, s, configured[kind], NULL, data);
        return 0;
    }
    struct api_disco *c = disco_cache(d);
    if (c->fetched_ms != 0 && tick_now(d->tick) - c->fetched_ms < DISCO_TTL_MS) {
        answer_from_cache(req, s, d, kind, cb, free_data, data);
        return 0;
    }
    struct disco_run *r = mem_calloc(1, sizeof(*r));
    r->d = d;
    r->kind = kind;
    r->cb = cb;
    r->free_data = free_data;
    r->data = data;
    struct xmpp_stanza *iq = api__iq_new("get", d->domain, "query", NS_DISCO_ITEMS, NULL);
    int rc = api__iq(req, s, iq, 0, API_IQ_ERRORS, items_answered, run_free, r);
    xmpp_stanza_unref(iq);
    return rc;
}

void api__service_free(struct api_deps *d)
{
    struct api_disco *c = d->state ? d->state->disco : NULL;
    if (c == NULL)
        return;
    for (int k = 0; k < API_SVC_COUNT; k++) {
        mem_free(c->jid[k]);
        xmpp_stanza_unref(c->info[k]);
    }
    mem_free(c);
    d->state->disco = NULL;
}
