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

struct session_mam {
    struct session_mam *next;
    struct session *s;
    int64_t iq_id;
    char queryid[MAM_QUERYID_MAX];
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

static void mam_answered(struct session *s, int status, const struct xmpp_stanza *reply, void *data)
{
    struct session_mam *m = data;
    mam_unlink(m);
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
    m->max_items = max_items;
    m->max_bytes = max_bytes;
    m->cb = cb;
    m->data = data;
    int64_t id = session_send_iq(s, iq, timeout_ms, mam_answered, m);
    if (id < 0) {
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
            mam_free(m);
            return;
        }
    }
}

bool session__mam_collect(struct session *s, struct xmpp_stanza *st)
{
    if (s->mams == NULL || strcmp(xmpp_stanza_name(st), "message") != 0)
        return false;
    const struct xmpp_stanza *res = xmpp_stanza_child(st, "result", NS_MAM);
    const char *qid = res ? xmpp_stanza_attr(res, "queryid") : NULL;
    if (qid == NULL)
        return false;
    /* only the account's own archive answers (no 'from', or exactly the bare JID): anyone
     * else could otherwise inject archived messages */
    const char *from = xmpp_stanza_attr(st, "from");
    if (from != NULL && (strchr(from, '/') != NULL || !xmpp_jid_bare_equal(from, s->bare)))
        return false;
    struct session_mam *m = s->mams;
    while (m != NULL && strcmp(m->queryid, qid) != 0)
        m = m->next;
    if (m == NULL)
        return false; /* a late result of a query given up: the usual path (no chat event) */
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
