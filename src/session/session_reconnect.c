/* session_reconnect.c: what a session does when its upstream stream is lost (architecture §4).
 * The session stays: its sinks remain attached, REST sends are kept in a bounded queue, and
 * IQ waiters keep their deadlines. Attempts start on the shared tick, each after a back-off with
 * full jitter (0.5 s doubling to 30 s) and only while the global pace allows (a token bucket of
 * reconnect_rate per second), so that a server restart with thousands of users does not meet a
 * SYN storm; once one session gets through, the others stop waiting out their back-off and
 * follow at that pace. Each attempt asks the API layer for a credential from the vault, then opens
 * a stream that first tries XEP-0198 resumption: <resumed/> continues the old session as if nothing
 * happened (the stream resends what the server missed); otherwise the new binding gets the roster,
 * initial presence, room re-joins (an extension point: rooms are not tracked yet) and the stanzas
 * the old stream never had acknowledged. Either way the queue drains and the user's event log gets
 * "sparkgate.reconnected". After reconnect_max without success, or when no credential works, the
 * session ends with "session-closed". */
#include "session/session_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/buf.h"
#include "core/mem.h"
#include "core/rnd.h"
#include "xmpp/stanza.h"

#define LOG_MODULE "session"
#include "core/log.h"

/* ---- the queue of stanzas accepted while the stream could not take them ---- */

static size_t outq_max(const struct session *s)
{
    return s->mgr->o.reconnect_queue ? s->mgr->o.reconnect_queue : SESSION_OUTQ_DEFAULT;
}

static void outq_push(struct session_outq *q, const char *xml, size_t len, bool front)
{
    struct session_outq_item *it = mem_alloc(sizeof(*it) + len + 1);
    it->len = len;
    memcpy(it->xml, xml, len);
    it->xml[len] = '\0';
    if (front) {
        it->next = q->head;
        q->head = it;
        if (q->tail == NULL)
            q->tail = it;
    } else {
        it->next = NULL;
        if (q->tail)
            q->tail->next = it;
        else
            q->head = it;
        q->tail = it;
    }
    q->n++;
    q->bytes += len;
}

/* Moves every item of src to the end of dst. */
static void outq_append(struct session_outq *dst, struct session_outq *src)
{
    if (src->head == NULL)
        return;
    if (dst->tail)
        dst->tail->next = src->head;
    else
        dst->head = src->head;
    dst->tail = src->tail;
    dst->n += src->n;
    dst->bytes += src->bytes;
    *src = (struct session_outq){ 0 };
}

/* True when an <iq> with this id waits in q (our ids are "sgN", serialised as id='sgN'). */
static bool outq_holds_iq(const struct session_outq *q, const char *id)
{
    char needle[48];
    snprintf(needle, sizeof(needle), "id='%s'", id);
    for (const struct session_outq_item *it = q->head; it != NULL; it = it->next) {
        if (strncmp(it->xml, "<iq", 3) == 0 && strstr(it->xml, needle) != NULL)
            return true;
    }
    return false;
}

static void outq_pop(struct session_outq *q)
{
    struct session_outq_item *it = q->head;
    q->head = it->next;
    if (q->head == NULL)
        q->tail = NULL;
    q->n--;
    q->bytes -= it->len;
    mem_free(it);
}

int session__queue(struct session *s, const struct xmpp_stanza *st)
{
    if (s->outq.n >= outq_max(s) || s->outq.bytes >= SESSION_OUTQ_MAX_BYTES)
        return -ENOBUFS;
    struct buf b;
    buf_init(&b, SESSION_OUTQ_MAX_BYTES - s->outq.bytes);
    int rc = xmpp_stanza_serialize(st, &b);
    if (rc == 0)
        outq_push(&s->outq, b.ptr, b.len, false);
    buf_cleanup(&b);
    if (rc < 0)
        return -ENOBUFS;
    log_debug("queued", "jid=%s queue=%zu", s->bare, s->outq.n);
    return 0;
}

void session__drain(struct session *s)
{
    while (s->outq.n > 0 && s->stream != NULL) {
        int rc = xmpp_stream_send_xml(s->stream, s->outq.head->xml, s->outq.head->len);
        if (rc == -EINVAL) {
            log_warn("queue_drop", "jid=%s err=%s", s->bare, log_errname(rc));
        } else if (rc < 0) {
            /* the stream's bounds (the rest waits for acks, next tick), or it is failing (the
             * next stream gets the queue) */
            return;
        }
        outq_pop(&s->outq);
    }
}

/* ---- losing the stream ---- */

/* Stream errors after which another stream would repeat the problem or fight another login
 * (conflict: the resource was taken over; not-authorized: the account was disabled). */
static bool loss_is_final(int status, const char *reason)
{
    static const char *const final[] = {
        "conflict",         "not-authorized", "host-unknown", "improper-addressing",
        "policy-violation", "invalid-from",   NULL,
    };
    if (status != -EPROTO || reason == NULL)
        return false;
    for (int i = 0; final[i]; i++) {
        if (strcmp(reason, final[i]) == 0)
            return true;
    }
    return false;
}

/* Full jitter: a uniform delay in [0, min(cap, base * 2^attempts)]. */
static uint64_t backoff_ms(unsigned attempts)
{
    uint64_t cap = SESSION_BACKOFF_BASE_MS;
    for (unsigned i = 0; i < attempts && cap < SESSION_BACKOFF_CAP_MS; i++)
        cap *= 2;
    if (cap > SESSION_BACKOFF_CAP_MS)
        cap = SESSION_BACKOFF_CAP_MS;
    uint32_t r;
    rnd_bytes(&r, sizeof(r));
    return (uint64_t)r % (cap + 1);
}

static void push_event(struct session *s, const char *name, json_t *payload)
{
    events_log_push(s->log, name, payload);
}

void session__upstream_lost(struct session *s, struct xmpp_stream *st, int status,
                            const char *reason)
{
    struct session_mgr *mgr = s->mgr;
    struct xmpp_sm *sm = xmpp_stream_sm_take(st);
    xmpp_stream_free(st);
    s->stream = NULL;
    s->stream_done = true;
    bool off = mgr->o.get_credential == NULL || mgr->o.reconnect_max_ms == 0 || mgr->freeing;
    bool final = loss_is_final(status, reason);
    log_warn("upstream_lost", "jid=%s err=%s reason=%s unacked=%zu reconnect=%d", s->bare,
             log_errname(status), reason ? reason : "", xmpp_sm_unacked(sm), !off && !final);
    xmpp_sm_free(s->sm);
    s->sm = sm;
    /* a session still setting up (never online) has logins waiting for it: end it, which
     * starts them again on a fresh session, rather than reconnect into a state that would
     * never answer them */
    if (off || final || s->state == SESSION_CONNECTING) {
        session__end(s, "session-closed", false);
        return;
    }
    uint64_t now = tick_now(mgr->o.tick);
    s->state = SESSION_RECONNECTING;
    s->down_since_ms = now;
    s->failed_at_ms = now; /* only a reconnection after this moment makes the next one due */
    s->attempts = 0;
    s->retry_at_ms = now + backoff_ms(0);
    /* requests already written may have lost their answers; those still waiting in the send
     * queue have not been sent yet and will be, so they stay */
    for (struct iq_waiter *w = s->iqs; w != NULL; w = w->next)
        w->lost = !outq_holds_iq(&s->outq, w->idstr);
    json_t *p = json_object();
    json_object_set_new(p, "reason", json_string(reason ? reason : "connection lost"));
    push_event(s, "sparkgate.reconnecting", p);
}

/* ---- one attempt ---- */

static void attempt_on_ready(struct xmpp_stream *st, int status, void *data);

static const struct xmpp_stream_cbs attempt_cbs = {
    .on_ready = attempt_on_ready,
    .on_stanza = session__stream_on_stanza,
    .on_closed = session__stream_on_closed,
};

static void attempt_failed(struct session *s, int status)
{
    uint64_t now = tick_now(s->mgr->o.tick);
    s->attempt_running = false;
    s->attempts++;
    s->failed_at_ms = now;
    if (status == -EACCES || status == -ESTALE || status == -ENOTSUP) {
        /* that credential is out of date: drop it and try the next one without waiting */
        if (s->mgr->o.on_credential_refused)
            s->mgr->o.on_credential_refused(s->username, s->cred_kind, status, s->mgr->o.data);
        s->retry_at_ms = now;
    } else {
        s->retry_at_ms = now + backoff_ms(s->attempts);
    }
    log_info("reconnect_failed", "jid=%s attempt=%u err=%s cred=%s retry_ms=%llu", s->bare,
             s->attempts, log_errname(status), s->cred_kind[0] ? s->cred_kind : "-",
             (unsigned long long)(s->retry_at_ms - now));
}

static void on_credential(int status, const struct session_cred *cred, void *arg)
{
    struct session_credreq *req = arg;
    struct session *s = req->s;
    mem_free(req);
    if (s == NULL)
        return; /* the session ended meanwhile */
    s->credreq = NULL;
    if (status == -ENOKEY) {
        log_info("reconnect_no_credential", "jid=%s", s->bare);
        s->attempt_running = false;
        session__end(s, "session-closed", false);
        return;
    }
    if (status < 0) {
        s->cred_kind[0] = '\0';
        attempt_failed(s, status);
        return;
    }
    snprintf(s->cred_kind, sizeof(s->cred_kind), "%s",
             cred->password ? "password"
             : cred->scram  ? "scram"
                            : "fast");
    struct xmpp_stream_opts o;
    char ua[37];
    session__stream_opts(s->mgr, &o, s->username, cred, s->resource, false, ua);
    o.resume = s->sm;
    int rc = xmpp_stream_open(s->mgr->o.loop, &o, &attempt_cbs, s, &s->stream);
    if (rc < 0) {
        attempt_failed(s, rc);
        return;
    }
    s->sm = NULL; /* the stream owns it now, and hands it back if it fails */
    s->stream_done = false;
    log_info("reconnecting", "jid=%s attempt=%u cred=%s resume=%d", s->bare, s->attempts + 1,
             s->cred_kind, o.resume != NULL && xmpp_sm_resumable(o.resume));
}

static void attempt_start(struct session *s)
{
    s->attempt_running = true;
    s->cred_kind[0] = '\0';
    struct session_credreq *req = mem_calloc(1, sizeof(*req));
    req->s = s;
    s->credreq = req;
    s->mgr->o.get_credential(s->username, on_credential, req, s->mgr->o.data);
}

/* Rooms joined before the loss are joined again (XEP-0045 presence to each room/nick, with
 * history since shortly before the loss: session_muc.c). */
static void rejoin_rooms(struct session *s)
{
    session__muc_rejoin(s);
}

struct resend_ctx {
    struct session *s;
    struct session_outq q; /* what goes before the waiting queue */
    size_t n;
};

/* The old stream's unacknowledged stanzas: messages and requests still waited for go again (a
 * request's waiter then gets its answer on the new stream); presences are superseded by the new
 * initial one, and answers to the server's requests mean nothing to a new session. */
static void resend_one(const char *name, const char *xml, size_t len, void *data)
{
    struct resend_ctx *c = data;
    if (strcmp(name, "presence") == 0)
        return;
    if (strcmp(name, "iq") == 0) {
        int err = 0;
        struct xmpp_stanza *iq = xmpp_stanza_parse(xml, len, XMPP_NS_CLIENT, len, &err);
        const char *type = iq ? xmpp_stanza_attr(iq, "type") : NULL;
        bool request = type && (strcmp(type, "get") == 0 || strcmp(type, "set") == 0);
        struct iq_waiter *w = request ? session__find_iq(c->s, xmpp_stanza_attr(iq, "id")) : NULL;
        if (iq != NULL)
            xmpp_stanza_unref(iq);
        if (w == NULL)
            return; /* answered or timed out already, or not a request */
        w->lost = false;
    }
    outq_push(&c->q, xml, len, false);
    c->n++;
}

static void attempt_on_ready(struct xmpp_stream *st, int status, void *data)
{
    struct session *s = data;
    struct session_mgr *mgr = s->mgr;
    if (status != 0) {
        struct xmpp_sm *sm = xmpp_stream_sm_take(st);
        if (sm != NULL) {
            xmpp_sm_free(s->sm);
            s->sm = sm;
        }
        xmpp_stream_free(st);
        s->stream = NULL;
        s->stream_done = true;
        attempt_failed(s, status);
        return;
    }
    uint64_t now = tick_now(mgr->o.tick);
    uint64_t downtime = now - s->down_since_ms;
    mgr->reconnected_ms = now; /* the others need not wait out their back-off any longer */
    session__report_credential(mgr, s->username, st);
    mem_free(s->jid);
    s->jid = mem_strdup(xmpp_stream_jid(st));
    s->state = SESSION_ONLINE;
    s->attempt_running = false;
    bool resumed = xmpp_stream_resumed(st);
    struct resend_ctx c = { .s = s };
    size_t resent = resumed ? xmpp_stream_sm_unacked(st) : 0; /* by the stream itself */
    if (!resumed) {
        struct xmpp_sm *left = xmpp_stream_resume_leftover(st);
        xmpp_sm_free(s->sm);
        s->sm = NULL;
        xmpp_sm_foreach(left, resend_one, &c);
        xmpp_sm_free(left);
        /* the new binding announces itself before anything else goes out, then come what the
         * old stream never got acknowledged and what waited meanwhile */
        struct session_outq waiting = s->outq;
        s->outq = (struct session_outq){ 0 };
        session__announce(s);
        session__sync_start(s); /* carbons again; CSI state starts over on a new stream */
        session__csi_update(s);
        rejoin_rooms(s);
        outq_append(&c.q, &waiting);
        outq_append(&s->outq, &c.q);
    } else {
        /* a resumed stream starts active (XEP-0352); say again what the sinks imply */
        s->csi_inactive = false;
        session__csi_update(s);
    }
    size_t waited = s->outq.n - c.n;
    resent += c.n;
    session__drain(s);
    /* requests whose answers went with the old stream will never be answered (after a
     * resumption the server redelivers them) */
    session__fail_lost_iqs(s, resumed ? 0 : -ECONNRESET);
    log_info("reconnected", "jid=%s resumed=%d downtime_ms=%llu attempts=%u resent=%zu queued=%zu",
             s->jid, resumed, (unsigned long long)downtime, s->attempts + 1, resent, waited);
    json_t *p = json_object();
    json_object_set_new(p, "resumed", json_boolean(resumed));
    json_object_set_new(p, "downtime_ms", json_integer((json_int_t)downtime));
    json_object_set_new(p, "resent", json_integer((json_int_t)resent));
    json_object_set_new(p, "queued", json_integer((json_int_t)waited));
    push_event(s, "sparkgate.reconnected", p);
    s->attempts = 0;
    s->down_since_ms = 0;
}

/* ---- the tick ---- */

void session__pace(struct session_mgr *mgr, uint64_t now_ms)
{
    double rate = mgr->o.reconnect_rate ? (double)mgr->o.reconnect_rate : 1.0;
    if (mgr->tokens_ms == 0)
        mgr->tokens = rate / 4; /* a first burst no larger than a quarter second's worth */
    else
        mgr->tokens += (double)(now_ms - mgr->tokens_ms) * rate / 1000.0;
    if (mgr->tokens > rate)
        mgr->tokens = rate; /* at most one second's worth at once */
    mgr->tokens_ms = now_ms;
}

void session__reconnect_step(struct session *s, uint64_t now_ms)
{
    struct session_mgr *mgr = s->mgr;
    if (s->state == SESSION_ONLINE) {
        session__drain(s);
        return;
    }
    if (s->state != SESSION_RECONNECTING || s->attempt_running)
        return;
    if (now_ms - s->down_since_ms >= mgr->o.reconnect_max_ms) {
        log_warn("reconnect_gave_up", "jid=%s attempts=%u down_ms=%llu", s->bare, s->attempts,
                 (unsigned long long)(now_ms - s->down_since_ms));
        session__end(s, "session-closed", false);
        return;
    }
    /* due after its back-off, or at once when another session found the server back since
     * this one failed (the pace still holds the herd) */
    bool due = now_ms >= s->retry_at_ms || s->failed_at_ms < mgr->reconnected_ms;
    if (!due || mgr->tokens < 1.0 || mgr->freeing)
        return;
    mgr->tokens -= 1.0;
    attempt_start(s);
}

/* ---- ending ---- */

struct count_ctx {
    size_t n;
};

static void count_message(const char *name, const char *xml, size_t len, void *data)
{
    (void)xml, (void)len;
    struct count_ctx *c = data;
    if (strcmp(name, "message") == 0)
        c->n++;
}

size_t session__reconnect_cleanup(struct session *s)
{
    struct count_ctx c = { 0 };
    session__muc_free(s);
    if (s->credreq != NULL) {
        s->credreq->s = NULL; /* its answer will find nobody */
        s->credreq = NULL;
    }
    s->attempt_running = false;
    xmpp_sm_foreach(s->sm, count_message, &c);
    xmpp_sm_free(s->sm);
    s->sm = NULL;
    for (struct session_outq_item *it = s->outq.head; it != NULL; it = it->next) {
        if (strncmp(it->xml, "<message", 8) == 0)
            c.n++;
    }
    while (s->outq.n > 0)
        outq_pop(&s->outq);
    return c.n;
}
