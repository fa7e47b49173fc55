/* session_mam.c: message archive queries (XEP-0313): the result messages of a query arrive
 * before the IQ that ends it, so each running query keeps a bounded collector keyed by its
 * queryid; the IQ's answer hands what was collected to the caller. */
#include "session/session_int.h"

#include <errno.h>
#include <string.h>

#include "core/mem.h"
#include "xmpp/jid.h"
#include "xmpp/stanza.h"

#define LOG_MODULE "session"
#include "core/log.h"

#define NS_MAM          "urn:xmpp:mam:2"
#define MAM_QUERYID_MAX 64
#define MAM_GONE_MAX    16 /* given-up queryids remembered per session */

/* A query given up: its results may still come (up to a whole page) and must not become
 * chat events, so its queryid is remembered until deadline_ms. */
struct session_mam_gone {
    struct session_mam_gone *next;
    uint64_t deadline_ms;
    char queryid[MAM_QUERYID_MAX];
    char *archive; /* as in struct session_mam */
};

struct session_mam {
    struct session_mam *next;
    struct session *s;
    int64_t iq_id;
    uint64_t timeout_ms; /* the IQ's (the session's default when 0 was asked) */
    char queryid[MAM_QUERYID_MAX];
    char *archive; /* the queried archive's bare JID (a room), NULL for the user's own */
    struct xmpp_stanza **items;
    size_t n, cap, bytes;
    size_t max_items, max_bytes;
    bool truncated;
    session_mam_cb *cb;
    void *data;
};

static void mam_free(struct session_mam *m)
{
    for (size_t i = 0; i < m->n; i++)
        xmpp_stanza_unref(m->items[i]);
    mem_free(m->items);
    mem_free(m->archive);
    mem_free(m);
}

/* Unlinks m from its session's list (it must be there). */
static void mam_unlink(struct session_mam *m)
{
    for (struct session_mam **pp = &m->s->mams; *pp; pp = &(*pp)->next) {
        if (*pp == m) {
            *pp = m->next;
            return;
        }
    }
}

static uint64_t mam_now(const struct session *s)
{
    return tick_now(s->mgr->o.tick);
}

static void gone_free(struct session_mam_gone *g)
{
    mem_free(g->archive);
    mem_free(g);
}

/* Drops the remembered queryids whose time is up. */
static void gone_prune(struct session *s, uint64_t now)
{
    for (struct session_mam_gone **pp = &s->mams_gone; *pp;) {
        struct session_mam_gone *g = *pp;
        if (g->deadline_ms <= now) {
            *pp = g->next;
            gone_free(g);
        } else {
            pp = &g->next;
        }
    }
}

/* Remembers m's queryid until now + the IQ's timeout (the longest its results can trail a
 * cancel; after a timeout, one more timeout); the oldest is forgotten past MAM_GONE_MAX. */
static void gone_add(struct session *s, const struct session_mam *m)
{
    uint64_t now = mam_now(s);
    gone_prune(s, now);
    struct session_mam_gone *g = mem_calloc(1, sizeof(*g));
    memcpy(g->queryid, m->queryid, sizeof(g->queryid));
    g->archive = m->archive ? mem_strdup(m->archive) : NULL;
    g->deadline_ms = now + m->timeout_ms;
    g->next = s->mams_gone;
    s->mams_gone = g;
    size_t n = 0;
    for (struct session_mam_gone **pp = &s->mams_gone; *pp; pp = &(*pp)->next) {
        if (++n == MAM_GONE_MAX) {
            struct session_mam_gone *rest = (*pp)->next;
            (*pp)->next = NULL;
            while (rest != NULL) {
                struct session_mam_gone *x = rest;
                rest = rest->next;
                gone_free(x);
            }
            break;
        }
    }
}

/* Whether a result with that queryid, from that (bare or no) address, is a late one of a
 * query given up: from the archive that query asked. */
static bool gone_has(struct session *s, const char *qid, const char *from)
{
    gone_prune(s, mam_now(s));
    for (struct session_mam_gone *g = s->mams_gone; g; g = g->next) {
        if (strcmp(g->queryid, qid) == 0 &&
            (g->archive ? from != NULL && xmpp_jid_bare_equal(from, g->archive)
                        : from == NULL || xmpp_jid_bare_equal(from, s->bare)))
            return true;
    }
    return false;
}

void session__mam_free(struct session *s)
{
    while (s->mams_gone != NULL) {
        struct session_mam_gone *g = s->mams_gone;
        s->mams_gone = g->next;
        gone_free(g);
    }
}

static void mam_answered(struct session *s, int status, const struct xmpp_stanza *reply, void *data)
{
    struct session_mam *m = data;
    mam_unlink(m);
    if (status == -ETIMEDOUT)
        gone_add(s, m); /* its results may still come */
    m->cb(s, status, reply, m->items, m->n, m->truncated, m->data);
    mam_free(m);
}

int64_t session_mam_query(struct session *s, struct xmpp_stanza *iq, const char *queryid,
                          size_t max_items, size_t max_bytes, uint64_t timeout_ms,
                          session_mam_cb *cb, void *data)
{
    size_t qlen = queryid ? strlen(queryid) : 0;
    if (qlen == 0 || qlen >= MAM_QUERYID_MAX)
        return -EINVAL;
    struct session_mam *m = mem_calloc(1, sizeof(*m));
    m->s = s;
    memcpy(m->queryid, queryid, qlen + 1);
    const char *to = xmpp_stanza_attr(iq, "to");
    if (to != NULL && !xmpp_jid_bare_equal(to, s->bare))
        m->archive = xmpp_jid_bare_of(to);
    m->timeout_ms = timeout_ms ? timeout_ms : s->mgr->o.iq_timeout_ms;
    m->max_items = max_items;
    m->max_bytes = max_bytes;
    m->cb = cb;
    m->data = data;
    int64_t id = session_send_iq(s, iq, timeout_ms, mam_answered, m);
    if (id < 0) {
        mem_free(m->archive);
        mem_free(m);
        return id;
    }
    m->iq_id = id;
    m->next = s->mams;
    s->mams = m;
    return id;
}

void session_mam_cancel(struct session *s, int64_t id)
{
    for (struct session_mam **pp = &s->mams; *pp; pp = &(*pp)->next) {
        struct session_mam *m = *pp;
        if (m->iq_id == id) {
            *pp = m->next;
            session_iq_cancel(s, id);
            gone_add(s, m);
            mam_free(m);
            return;
        }
    }
}

bool session__mam_collect(struct session *s, struct xmpp_stanza *st)
{
    if ((s->mams == NULL && s->mams_gone == NULL) || strcmp(xmpp_stanza_name(st), "message") != 0)
        return false;
    const struct xmpp_stanza *res = xmpp_stanza_child(st, "result", NS_MAM);
    const char *qid = res ? xmpp_stanza_attr(res, "queryid") : NULL;
    if (qid == NULL)
        return false;
    /* only the queried archive answers: the account's own (no 'from', or exactly the bare
     * JID) or the room's bare JID; anyone else could otherwise inject archived messages */
    const char *from = xmpp_stanza_attr(st, "from");
    if (from != NULL && strchr(from, '/') != NULL)
        return false;
    struct session_mam *m = s->mams;
    while (m != NULL && (strcmp(m->queryid, qid) != 0 ||
                         (m->archive ? from == NULL || !xmpp_jid_bare_equal(from, m->archive)
                                     : from != NULL && !xmpp_jid_bare_equal(from, s->bare))))
        m = m->next;
    if (m == NULL) /* a late result of a query given up is swallowed, not an event */
        return gone_has(s, qid, from);
    char *xml = xmpp_stanza_to_string(st);
    size_t len = xml ? strlen(xml) : 0;
    mem_free(xml);
    if (m->n >= m->max_items || len > m->max_bytes - m->bytes) {
        if (!m->truncated)
            log_debug("mam_truncated", "jid=%s n=%zu bytes=%zu", s->bare, m->n, m->bytes);
        m->truncated = true;
        return true;
    }
    if (m->n == m->cap) {
        m->cap = m->cap ? m->cap * 2 : 16;
        m->items = mem_realloc(m->items, m->cap * sizeof(*m->items));
    }
    m->items[m->n++] = xmpp_stanza_ref(st);
    m->bytes += len;
    return true;
}
