/* chat_api.c: the chat tag: the one-to-one archive (contract §1.3 C1, XEP-0313 + XEP-0059 on
 * the caller's own archive, keywords by XEP-0431 when offered), send a message (C2, echoed to
 * the user's tabs) and chat states (C3, XEP-0085). */
#include "api/api_int.h"
#include "api/xmpp_api.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/mem.h"
#include "core/rnd.h"
#include "session/session.h"
#include "xmpp/jid.h"
#include "xmpp/stanza.h"

#define LOG_MODULE "api"
#include "core/log.h"

#define NS_JIVE_PROPS "http://www.jivesoftware.com/xmlns/xmpp/properties"

/* Builds the message of C2 (type NULL) or G9 (type "groupchat"): a JSON object body becomes Jive
 * property "data" (the whole text) plus <body> from its "body" member; any other text is a
 * plain body. */
struct xmpp_stanza *api__build_message(const char *to, const char *text, const char *type)
{
    struct xmpp_stanza *m = xmpp_stanza_new("message", XMPP_NS_CLIENT);
    char id[25];
    rnd_hex(id, 12);
    xmpp_stanza_set_attr(m, "to", to);
    xmpp_stanza_set_attr(m, "id", id);
    json_t *j = json_loads(text, 0, NULL);
    if (json_is_object(j)) {
        const char *body = json_string_value(json_object_get(j, "body"));
        xmpp_stanza_set_attr(m, "type", type ? type : body ? "chat" : "normal");
        if (body)
            xmpp_stanza_add_text_child(m, "body", NULL, body);
        struct xmpp_stanza *props = xmpp_stanza_add_child(m, "properties", NS_JIVE_PROPS);
        struct xmpp_stanza *prop = xmpp_stanza_add_child(props, "property", NULL);
        xmpp_stanza_add_text_child(prop, "name", NULL, "data");
        struct xmpp_stanza *v = xmpp_stanza_add_text_child(prop, "value", NULL, text);
        xmpp_stanza_set_attr(v, "type", "string");
    } else {
        xmpp_stanza_set_attr(m, "type", type ? type : "chat");
        xmpp_stanza_add_text_child(m, "body", NULL, text);
    }
    json_decref(j);
    return m;
}

/* POST /chat/message/{to} — body: text or a JSON object. */
static void handle_message(struct http_req *req, const char *user, struct session *s,
                           struct api_deps *d)
{
    (void)user;
    (void)d;
    session_touch(s);
    const char *to = http_req_param(req, "to");
    struct xmpp_jid jid;
    if (xmpp_jid_parse(&jid, to) < 0) {
        api__error(req, 400, "invalid recipient");
        return;
    }
    bool has_local = jid.local != NULL;
    xmpp_jid_cleanup(&jid);
    if (!has_local) {
        api__error(req, 400, "invalid recipient");
        return;
    }
    size_t len;
    const char *text = http_req_body(req, &len);
    if (len == 0) {
        api__error(req, 400, "empty message");
        return;
    }
    if (memchr(text, '\0', len) != NULL || !api__xml_text_valid(text, len)) {
        api__error(req, 400, "message is not valid UTF-8 text");
        return;
    }
    struct xmpp_stanza *m = api__build_message(to, text, NULL);
    int rc = session_send(s, m);
    if (rc == 0)
        session_echo_sent(s, m); /* every tab of the user shows what this one sent */
    xmpp_stanza_unref(m);
    if (rc < 0) {
        api__error_errno(req, rc, "send failed");
        return;
    }
    log_debug("chat_sent", "user=%s to=%s len=%zu", session_username(s), to, len);
    http_reply_empty(req, 200);
}

/* ---- C3: chat states ------------------------------------------------------------------- */

#define NS_CHATSTATES "http://jabber.org/protocol/chatstates"
#define NS_HINTS      "urn:xmpp:hints"

static const char *const chat_states[] = {
    "active", "composing", "paused", "inactive", "gone", NULL
};

/* POST /chat/chatstate/{state}/{to} — no body. */
static void handle_chatstate(struct http_req *req, const char *user, struct session *s,
                             struct api_deps *d)
{
    (void)user;
    const char *state = http_req_param(req, "state");
    const char *known = NULL;
    for (int i = 0; state != NULL && chat_states[i]; i++) {
        if (strcmp(state, chat_states[i]) == 0)
            known = chat_states[i];
    }
    if (known == NULL) {
        api__error(req, 400, "unknown chat state (active, composing, paused, inactive, gone)");
        return;
    }
    char *to = api__jid_arg(d, http_req_param(req, "to"), true);
    if (to == NULL) {
        api__error(req, 400, "invalid recipient");
        return;
    }
    session_touch(s);
    struct xmpp_stanza *m = xmpp_stanza_new("message", XMPP_NS_CLIENT);
    char id[25];
    rnd_hex(id, 12);
    xmpp_stanza_set_attr(m, "to", to);
    xmpp_stanza_set_attr(m, "id", id);
    xmpp_stanza_set_attr(m, "type", "chat");
    xmpp_stanza_add_child(m, known, NS_CHATSTATES);
    xmpp_stanza_add_child(m, "no-store", NS_HINTS); /* XEP-0334: states are not archived */
    int rc = session_send(s, m);
    xmpp_stanza_unref(m);
    mem_free(to);
    if (rc < 0) {
        api__error_errno(req, rc, "send failed");
        return;
    }
    http_reply_empty(req, 200);
}

/* ---- C1: the archive ---------------------------------------------------------------------- */

#define NS_MAM      "urn:xmpp:mam:2"
#define NS_RSM      "http://jabber.org/protocol/rsm"
#define NS_DATA     "jabber:x:data"
#define NS_FORWARD  "urn:xmpp:forward:0"
#define NS_DELAY    "urn:xmpp:delay"
#define NS_FULLTEXT "urn:xmpp:fulltext:0"
#define NS_DISCO    "http://jabber.org/protocol/disco#info"

#define HIST_MAX_DEFAULT 50
#define HIST_MAX_LIMIT   500
#define HIST_MAX_BYTES   ((size_t)8 << 20) /* collected result messages per request */
#define HIST_ARG_MAX     256
#define HIST_MAX_ROUNDS  20               /* MAM pages per request */
#define HIST_IDLE_MS     (10 * 60 * 1000) /* Openfire's conversation split: 10 min idle */
#define HIST_SPAN_MS     (60 * 60 * 1000) /* ... or 60 min in all */
#define DAY_MS           (24 * 60 * 60 * 1000LL)

struct hist {
    struct api_deps *d;
    struct http_req *req;
    struct session *s;
    int64_t id;
    char *with;     /* bare JID or NULL */
    char *keywords; /* NULL when none */
    char *before;   /* RSM: NULL none, "" the last page */
    char *after;
    char start[40], end[40]; /* XEP-0082 or "" */
    unsigned max;
    bool fulltext; /* the archive searches keywords itself (XEP-0431) */
    bool backward; /* paging towards older messages (before) */
    char qid[25];
    /* what the pages so far brought, in time order */
    struct xmpp_stanza **items;
    size_t n;
    size_t bytes;       /* their serialised size (HIST_MAX_BYTES for the whole request) */
    char *first, *last; /* RSM ids of the whole answer */
    unsigned rounds;
};

static void hist_free(void *data)
{
    struct hist *h = data;
    for (size_t i = 0; i < h->n; i++)
        xmpp_stanza_unref(h->items[i]);
    mem_free(h->items);
    mem_free(h->first);
    mem_free(h->last);
    mem_free(h->with);
    mem_free(h->keywords);
    mem_free(h->before);
    mem_free(h->after);
    mem_free(h);
}

/* Parses "2024-05-01T10:00:00Z" (XEP-0082 dateTime: optional fraction, Z or +hh:mm offset,
 * no zone = UTC) into epoch milliseconds. */
bool api__parse_iso(const char *v, int64_t *ms)
{
    int y, mo, d, h, mi, n = 0;
    if (sscanf(v, "%4d-%2d-%2dT%2d:%2d%n", &y, &mo, &d, &h, &mi, &n) != 5 || n != 16)
        return false;
    const char *p = v + n;
    int sec = 0, frac_ms = 0;
    if (*p == ':') {
        if (p[1] < '0' || p[1] > '9' || p[2] < '0' || p[2] > '9')
            return false;
        sec = (p[1] - '0') * 10 + (p[2] - '0');
        p += 3;
        if (*p == '.') {
            p++;
            int digits = 0;
            while (*p >= '0' && *p <= '9') {
                if (digits < 3)
                    frac_ms = frac_ms * 10 + (*p - '0');
                digits++;
                p++;
            }
            if (digits == 0)
                return false;
            for (; digits < 3; digits++)
                frac_ms *= 10;
        }
    }
    int off_min = 0;
    if (*p == 'Z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int oh, om;
        if (sscanf(p + 1, "%2d:%2d", &oh, &om) != 2 || strlen(p) != 6)
            return false;
        off_min = (oh * 60 + om) * (*p == '-' ? -1 : 1);
        p += 6;
    }
    if (*p != '\0' || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60 ||
        y < 1970)
        return false;
    struct tm tm = { .tm_year = y - 1900,
                     .tm_mon = mo - 1,
                     .tm_mday = d,
                     .tm_hour = h,
                     .tm_min = mi,
                     .tm_sec = sec };
    time_t t = timegm(&tm);
    if (t == (time_t)-1)
        return false;
    *ms = ((int64_t)t - (int64_t)off_min * 60) * 1000 + frac_ms;
    return true;
}

/* The contract's date argument: ISO-8601 when it contains 'T', else MM/dd/yy in the gateway's
 * local time (a 4-digit year is taken as it is). */
bool api__parse_date_arg(const char *v, int64_t *ms)
{
    if (strchr(v, 'T') != NULL)
        return api__parse_iso(v, ms);
    int mo, d, y, n = 0;
    if (sscanf(v, "%2d/%2d/%4d%n", &mo, &d, &y, &n) != 3 || v[n] != '\0' || mo < 1 || mo > 12 ||
        d < 1 || d > 31 || y < 0)
        return false;
    if (y < 100)
        y += 2000;
    struct tm tm = { .tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_isdst = -1 };
    time_t t = mktime(&tm);
    if (t == (time_t)-1)
        return false;
    *ms = (int64_t)t * 1000;
    return true;
}

void api__format_iso(int64_t ms, char out[40])
{
    if (ms < 0)
        ms = 0;
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    char day[32];
    strftime(day, sizeof(day), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, 40, "%s.%03dZ", day, (int)(ms % 1000));
}

void api__form_field(struct xmpp_stanza *x, const char *var, const char *value, const char *type)
{
    struct xmpp_stanza *f = xmpp_stanza_add_child(x, "field", NULL);
    xmpp_stanza_set_attr(f, "var", var);
    if (type != NULL)
        xmpp_stanza_set_attr(f, "type", type);
    xmpp_stanza_add_text_child(f, "value", NULL, value);
}

/* {"node","domain","resource"} of a JID (org.xmpp.packet.JID as Jackson writes it). */
json_t *api__jid_object(const char *s)
{
    struct xmpp_jid j;
    if (s == NULL || xmpp_jid_parse(&j, s) < 0)
        return json_null();
    json_t *o = json_object();
    if (j.local)
        json_object_set_new(o, "node", json_string(j.local));
    json_object_set_new(o, "domain", json_string(j.domain));
    if (j.resource)
        json_object_set_new(o, "resource", json_string(j.resource));
    xmpp_jid_cleanup(&j);
    return o;
}

/* ASCII case-insensitive: every whitespace-separated term of kw occurs in body. */
bool api__keywords_match(const char *body, const char *kw)
{
    const char *p = kw;
    while (*p) {
        while (*p == ' ' || *p == '\t')
            p++;
        size_t n = strcspn(p, " \t");
        if (n == 0)
            break;
        bool found = false;
        for (const char *b = body; *b && !found; b++)
            found = strncasecmp(b, p, n) == 0;
        if (!found)
            return false;
        p += n;
    }
    return true;
}

static uint64_t fnv(uint64_t h, const char *p)
{
    do {
        h ^= (unsigned char)*p;
        h *= 1099511628211ULL;
    } while (*p++ != '\0');
    return h;
}

struct conv {
    char *peer;
    int64_t start_ms, last_ms;
    json_int_t id;
    json_t *messages;
};

static json_t *conv_json(const struct conv *c, const char *own, const char *domain)
{
    json_t *o = json_object();
    json_object_set_new(o, "conversationID", json_integer(c->id));
    const char *at = strchr(c->peer, '@');
    const char *pdom = at ? at + 1 : c->peer;
    json_object_set_new(o, "external", json_boolean(strcasecmp(pdom, domain) != 0));
    json_object_set_new(o, "startDate", json_integer(c->start_ms));
    json_object_set_new(o, "lastActivity", json_integer(c->last_ms));
    json_object_set_new(o, "messageCount", json_integer((json_int_t)json_array_size(c->messages)));
    json_t *list = json_array(), *objs = json_array();
    const char *pair[2] = { own, c->peer };
    if (strcmp(c->peer, own) < 0) {
        pair[0] = c->peer;
        pair[1] = own;
    }
    for (int i = 0; i < 2; i++) {
        if (i == 1 && strcmp(pair[0], pair[1]) == 0)
            break; /* notes to self */
        json_array_append_new(list, json_string(pair[i]));
        json_array_append_new(objs, api__jid_object(pair[i]));
    }
    json_object_set_new(o, "participantList", list);
    json_object_set_new(o, "participants", objs);
    json_object_set(o, "conversationParticipants", list);
    json_object_set(o, "message", c->messages);
    return o;
}

/* Answers with what the pages brought (h->items), grouped into conversations. */
static void hist_reply(struct http_req *req, struct session *s, struct hist *h, bool done)
{
    struct xmpp_stanza *const *items = h->items;
    size_t n = h->n;
    char own[API_USER_MAX + 256];
    snprintf(own, sizeof(own), "%s@%s", session_username(s), h->d->domain);
    struct conv *convs = NULL;
    size_t n_convs = 0;
    for (size_t i = 0; i < n; i++) {
        const struct xmpp_stanza *res = xmpp_stanza_child(items[i], "result", NS_MAM);
        const struct xmpp_stanza *fwd =
            res ? xmpp_stanza_child(res, "forwarded", NS_FORWARD) : NULL;
        const struct xmpp_stanza *msg = fwd ? xmpp_stanza_child(fwd, "message", NULL) : NULL;
        const struct xmpp_stanza *delay = fwd ? xmpp_stanza_child(fwd, "delay", NS_DELAY) : NULL;
        const char *stamp = delay ? xmpp_stanza_attr(delay, "stamp") : NULL;
        int64_t t;
        if (msg == NULL || stamp == NULL || !api__parse_iso(stamp, &t))
            continue;
        const char *mtype = xmpp_stanza_attr(msg, "type");
        if (mtype != NULL && (strcmp(mtype, "groupchat") == 0 || strcmp(mtype, "error") == 0))
            continue;
        char *body = xmpp_stanza_child_text(msg, "body", NULL);
        if (body == NULL ||
            (h->keywords && !h->fulltext && !api__keywords_match(body, h->keywords))) {
            mem_free(body);
            continue;
        }
        const char *from = xmpp_stanza_attr(msg, "from");
        const char *to = xmpp_stanza_attr(msg, "to");
        bool outgoing = from == NULL || xmpp_jid_bare_equal(from, own);
        char *peer = xmpp_jid_bare_of(outgoing ? (to ? to : own) : from);
        if (peer == NULL) {
            mem_free(body);
            continue;
        }
        struct conv *c = NULL;
        for (size_t k = n_convs; k-- > 0;) {
            if (strcmp(convs[k].peer, peer) == 0) {
                c = &convs[k];
                break;
            }
        }
        if (c == NULL || t - c->last_ms > HIST_IDLE_MS || t - c->start_ms > HIST_SPAN_MS) {
            convs = mem_realloc(convs, (n_convs + 1) * sizeof(*convs));
            c = &convs[n_convs++];
            c->peer = mem_strdup(peer);
            c->start_ms = t;
            c->messages = json_array();
            const char *aid = xmpp_stanza_attr(res, "id");
            c->id = (json_int_t)(fnv(fnv(14695981039346656037ULL, peer), aid ? aid : stamp) &
                                 ((1ULL << 53) - 1));
        }
        c->last_ms = t;
        const char *fromv = from ? from : own;
        const char *tov = to ? to : own;
        json_t *m = json_object();
        json_object_set_new(m, "conversationID", json_integer(c->id));
        json_object_set_new(m, "from", json_string(fromv));
        json_object_set_new(m, "fromJID", api__jid_object(fromv));
        json_object_set_new(m, "to", json_string(tov));
        json_object_set_new(m, "toJID", api__jid_object(tov));
        json_object_set_new(m, "sentDate", json_integer(t));
        json_t *jb = json_string(body);
        json_object_set_new(m, "body", jb ? jb : json_string(""));
        json_object_set_new(m, "roomEvent", json_false());
        json_array_append_new(c->messages, m);
        mem_free(peer);
        mem_free(body);
    }
    json_t *arr = json_array();
    for (size_t k = 0; k < n_convs; k++) { /* created in time order: sorted by startDate */
        json_array_append_new(arr, conv_json(&convs[k], own, h->d->domain));
        json_decref(convs[k].messages);
        mem_free(convs[k].peer);
    }
    mem_free(convs);
    json_t *out = json_object();
    json_object_set_new(out, "conversation", arr);
    if (h->first)
        json_object_set_new(out, "first", json_string(h->first));
    if (h->last)
        json_object_set_new(out, "last", json_string(h->last));
    json_object_set_new(out, "complete", json_boolean(done));
    log_debug("history", "user=%s items=%zu convs=%zu rounds=%u", session_username(s), n, n_convs,
              h->rounds);
    hist_free(h);
    http_reply_json(req, 200, out);
}

static void hist_query(struct http_req *req, struct session *s, struct hist *h);

/* An RSM id from <set/>, or NULL when absent or unusable. */
static char *rsm_id(const struct xmpp_stanza *set, const char *name)
{
    char *v = set ? xmpp_stanza_child_text(set, name, NULL) : NULL;
    if (v != NULL &&
        (*v == '\0' || strlen(v) > HIST_ARG_MAX || !api__xml_text_valid(v, strlen(v)))) {
        mem_free(v);
        v = NULL;
    }
    return v;
}

/* The archive id of a result message (<result xmlns="urn:xmpp:mam:2" id/>), or NULL. */
static char *result_id(const struct xmpp_stanza *msg)
{
    const struct xmpp_stanza *r = xmpp_stanza_child(msg, "result", NS_MAM);
    const char *id = r ? xmpp_stanza_attr(r, "id") : NULL;
    size_t len = id ? strlen(id) : 0;
    if (len == 0 || len > HIST_ARG_MAX || !api__xml_text_valid(id, len))
        return NULL;
    return mem_strdup(id);
}

static const struct xmpp_stanza *mam_set(const struct xmpp_stanza *reply)
{
    const struct xmpp_stanza *fin = xmpp_stanza_child(reply, "fin", NS_MAM);
    return fin ? xmpp_stanza_child(fin, "set", NS_RSM) : NULL;
}

void api__mam_page(struct xmpp_stanza *const *items, size_t got, size_t room, bool backward,
                   bool truncated, const struct xmpp_stanza *set, struct api_mam_page *out)
{
    /* Cut what does not fit: a server that ignores <max/> sent more. Paging forward the oldest
     * of the page are kept, paging backward (before) the newest (the page's tail), so that
     * the kept run borders on what the client already has. */
    size_t n = got > room ? room : got;
    out->cut = truncated || got > room; /* truncated: the collector dropped some */
    out->start = backward ? got - n : 0;
    out->n = n;
    /* The cursor is that of the messages kept, from their <result id/>: the server's <set/>
     * describes the whole page, and after=last would then skip what was cut here. The
     * server's ids stand in only when nothing was cut and a result carries no usable id. */
    struct xmpp_stanza *const *kept = items + out->start;
    out->first = n ? result_id(kept[0]) : NULL;
    out->last = n ? result_id(kept[n - 1]) : NULL;
    if (!out->cut && n > 0 && out->first == NULL)
        out->first = rsm_id(set, "first");
    if (!out->cut && n > 0 && out->last == NULL)
        out->last = rsm_id(set, "last");
}

/* One page answered: keep its messages; ask for the next page while the server gave fewer
 * than max (servers cap pages, e.g. Prosody's max_archive_query_results 50), else answer. */
static void hist_mam_done(struct session *s, int status, const struct xmpp_stanza *reply,
                          struct xmpp_stanza *const *items, size_t n, bool truncated, void *data)
{
    struct hist *h = data;
    struct http_req *req = h->req;
    http_req_on_abort(req, NULL, NULL);
    if (status < 0) {
        api__iq_failed(req, status);
        hist_free(h);
        return;
    }
    if (api__is_error(reply)) {
        api__xmpp_error(req, reply);
        hist_free(h);
        return;
    }
    struct api_mam_page pg;
    api__mam_page(items, n, h->max - h->n, h->backward, truncated, mam_set(reply), &pg);
    n = pg.n;
    bool cut = pg.cut;
    struct xmpp_stanza *const *kept = items + pg.start;
    struct xmpp_stanza **all = mem_alloc((h->n + n + 1) * sizeof(*all));
    size_t off = h->backward ? 0 : h->n; /* older pages go in front */
    if (h->n > 0)
        memcpy(all + (h->backward ? n : 0), h->items, h->n * sizeof(*all));
    for (size_t i = 0; i < n; i++) {
        all[off + i] = xmpp_stanza_ref(kept[i]);
        char *xml = xmpp_stanza_to_string(kept[i]); /* as the collector measures it */
        h->bytes += xml ? strlen(xml) : 0;
        mem_free(xml);
    }
    mem_free(h->items);
    h->items = all;
    h->n += n;
    h->rounds++;
    const struct xmpp_stanza *fin = xmpp_stanza_child(reply, "fin", NS_MAM);
    const char *complete = fin ? xmpp_stanza_attr(fin, "complete") : NULL;
    bool done = !cut && complete && (strcmp(complete, "true") == 0 || strcmp(complete, "1") == 0);
    char *first = pg.first, *last = pg.last;
    /* the answer's first is the oldest page's first, its last the newest page's last */
    if (first && (h->backward || h->first == NULL)) {
        mem_free(h->first);
        h->first = mem_strdup(first);
    }
    if (last && (!h->backward || h->last == NULL)) {
        mem_free(h->last);
        h->last = mem_strdup(last);
    }
    char *cursor = h->backward ? first : last;
    if (!done && !cut && n > 0 && cursor != NULL && h->n < h->max && h->bytes < HIST_MAX_BYTES &&
        h->rounds < HIST_MAX_ROUNDS) {
        mem_free(h->before);
        mem_free(h->after);
        h->before = h->backward ? mem_strdup(cursor) : NULL;
        h->after = h->backward ? NULL : mem_strdup(cursor);
        mem_free(first);
        mem_free(last);
        hist_query(req, s, h);
        return;
    }
    mem_free(first);
    mem_free(last);
    hist_reply(req, s, h, done);
}

static void hist_aborted(struct http_req *req, void *data)
{
    (void)req;
    struct hist *h = data;
    session_mam_cancel(h->s, h->id);
    hist_free(h);
}

static void hist_query(struct http_req *req, struct session *s, struct hist *h)
{
    struct xmpp_stanza *q;
    struct xmpp_stanza *iq = api__iq_new("set", NULL, "query", NS_MAM, &q);
    rnd_hex(h->qid, 12);
    xmpp_stanza_set_attr(q, "queryid", h->qid);
    struct xmpp_stanza *x = xmpp_stanza_add_child(q, "x", NS_DATA);
    xmpp_stanza_set_attr(x, "type", "submit");
    api__form_field(x, "FORM_TYPE", NS_MAM, "hidden");
    if (h->with)
        api__form_field(x, "with", h->with, NULL);
    if (h->start[0])
        api__form_field(x, "start", h->start, NULL);
    if (h->end[0])
        api__form_field(x, "end", h->end, NULL);
    if (h->keywords && h->fulltext)
        api__form_field(x, "{" NS_FULLTEXT "}fulltext", h->keywords, NULL);
    struct xmpp_stanza *set = xmpp_stanza_add_child(q, "set", NS_RSM);
    char max[16];
    snprintf(max, sizeof(max), "%u", h->max - (unsigned)h->n);
    xmpp_stanza_add_text_child(set, "max", NULL, max);
    if (h->after)
        xmpp_stanza_add_text_child(set, "after", NULL, h->after);
    else if (h->before)
        xmpp_stanza_add_text_child(set, "before", NULL, h->before);
    h->s = s;
    h->req = req;
    session_touch(s);
    int64_t id = session_mam_query(s, iq, h->qid, h->max - h->n, HIST_MAX_BYTES - h->bytes, 0,
                                   hist_mam_done, h);
    xmpp_stanza_unref(iq);
    if (id < 0) {
        api__error_errno(req, (int)id, "xmpp send failed");
        hist_free(h);
        return;
    }
    h->id = id;
    http_req_on_abort(req, hist_aborted, h);
}

/* The account's disco#info: whether its archive offers XEP-0431 full-text search. */
static void hist_disco_done(struct http_req *req, struct session *s,
                            const struct xmpp_stanza *reply, void *data)
{
    struct hist *h = data;
    h->fulltext = api__disco_feature(xmpp_stanza_child(reply, "query", NS_DISCO), NS_FULLTEXT);
    hist_query(req, s, h);
}

/* A query argument: NULL when absent; false (400 answered) when too long or not text. */
static bool text_arg(struct http_req *req, const char *name, const char **out)
{
    const char *v = http_req_query(req, name);
    *out = v;
    if (v == NULL)
        return true;
    size_t len = strlen(v);
    if (len > HIST_ARG_MAX || !api__xml_text_valid(v, len)) {
        char msg[64];
        snprintf(msg, sizeof(msg), "invalid %s", name);
        api__error(req, 400, msg);
        return false;
    }
    return true;
}

/* GET /chat/messages?keywords&to&start&end&before&after&max */
static void handle_history(struct http_req *req, const char *user, struct session *s,
                           struct api_deps *d)
{
    (void)user;
    const char *kw, *to, *start, *end, *before, *after, *max;
    if (!text_arg(req, "keywords", &kw) || !text_arg(req, "to", &to) ||
        !text_arg(req, "start", &start) || !text_arg(req, "end", &end) ||
        !text_arg(req, "before", &before) || !text_arg(req, "after", &after) ||
        !text_arg(req, "max", &max))
        return;
    unsigned maxv = HIST_MAX_DEFAULT;
    if (max != NULL) {
        char *endp;
        long v = strtol(max, &endp, 10);
        if (*max == '\0' || *endp != '\0' || v < 1 || v > HIST_MAX_LIMIT) {
            api__error(req, 400, "max must be 1..500");
            return;
        }
        maxv = (unsigned)v;
    }
    if (before != NULL && after != NULL) {
        api__error(req, 400, "before and after exclude each other");
        return;
    }
    if (after != NULL && *after == '\0') {
        api__error(req, 400, "invalid after");
        return;
    }
    char *with = NULL;
    if (to != NULL && *to != '\0') {
        char *full;
        if (strchr(to, '@') == NULL) { /* a username: to@domain (contract C1) */
            size_t len = strlen(to) + strlen(d->domain) + 2;
            char *j = mem_alloc(len);
            snprintf(j, len, "%s@%s", to, d->domain);
            full = xmpp_jid_local_valid(to) ? api__jid_arg(d, j, true) : NULL;
            mem_free(j);
        } else {
            full = api__jid_arg(d, to, true);
        }
        with = full ? xmpp_jid_bare_of(full) : NULL;
        mem_free(full);
        if (with == NULL) {
            api__error(req, 400, "invalid to");
            return;
        }
    }
    struct hist *h = mem_calloc(1, sizeof(*h));
    h->d = d;
    h->with = with;
    h->max = maxv;
    h->keywords = kw && *kw ? mem_strdup(kw) : NULL;
    h->before = before ? mem_strdup(before) : NULL;
    h->after = after ? mem_strdup(after) : NULL;
    h->backward = before != NULL;
    int64_t ms;
    if (start != NULL && api__parse_date_arg(start, &ms)) /* unparseable dates: no bound */
        api__format_iso(ms - 5 * 60 * 1000, h->start);
    if (end != NULL && api__parse_date_arg(end, &ms))
        api__format_iso(ms + DAY_MS - 1, h->end);
    if (h->keywords == NULL) {
        hist_query(req, s, h);
        return;
    }
    struct xmpp_stanza *iq = api__iq_new("get", NULL, "query", NS_DISCO, NULL);
    api__iq(req, s, iq, 0, API_IQ_ERRORS, hist_disco_done, hist_free, h);
    xmpp_stanza_unref(iq);
}

int api__chat_register(struct api_deps *d)
{
    int rc = api__route_user(d, HTTP_POST, API_PREFIX "/chat/message/{to}", handle_message,
                             API_NEED_SESSION);
    if (rc == 0)
        rc = api__route_user(d, HTTP_POST, API_PREFIX "/chat/chatstate/{state}/{to}",
                             handle_chatstate, API_NEED_SESSION);
    if (rc == 0)
        rc = api__route_user(d, HTTP_GET, API_PREFIX "/chat/messages", handle_history,
                             API_NEED_SESSION);
    return rc;
}
