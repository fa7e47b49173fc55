/* stream_sm.c: XEP-0198 stream management on the client stream. Enabling (with resumption),
 * the bounded queue of sent stanzas the server has not acknowledged, ack requests (after
 * XMPP__SM_R_EVERY unacked stanzas, or on the next tick for fewer), processing of the server's
 * <a h=.../>, answers to its <r/> (paced: at most one per XMPP__SM_ACK_GAP_MS, later ones on the
 * tick) and unsolicited acks on the tick (so that the server holds
 * as few of our inbound stanzas as possible when it goes away), the ack timeout, and
 * resumption: <resume previd h/> on a new stream, then <resumed h/> (resend what the server
 * missed) or <failed/> (bind afresh; the unacknowledged stanzas go back to the caller). */
#define LOG_MODULE "xmpp"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/mem.h"
#include "xmpp/stanza.h"
#include "xmpp/xmpp_int.h"

/* --- the state object --- */

void xmpp__sm_free(struct xmpp_sm *sm)
{
    if (sm == NULL)
        return;
    for (struct xmpp__sm_item *it = sm->head, *n; it != NULL; it = n) {
        n = it->next;
        mem_free(it);
    }
    mem_free(sm->id);
    mem_free(sm->location);
    mem_free(sm->jid);
    mem_free(sm);
}

void xmpp_sm_free(struct xmpp_sm *sm)
{
    xmpp__sm_free(sm);
}

bool xmpp_sm_resumable(const struct xmpp_sm *sm)
{
    return sm != NULL && sm->id != NULL && sm->jid != NULL;
}

size_t xmpp_sm_unacked(const struct xmpp_sm *sm)
{
    return sm ? sm->n : 0;
}

void xmpp_sm_foreach(const struct xmpp_sm *sm, xmpp_sm_item_cb *cb, void *data)
{
    for (const struct xmpp__sm_item *it = sm ? sm->head : NULL; it != NULL; it = it->next) {
        const char *name = strncmp(it->xml, "<message", 8) == 0    ? "message"
                           : strncmp(it->xml, "<presence", 9) == 0 ? "presence"
                                                                   : "iq";
        cb(name, it->xml, it->len, data);
    }
}

/* Parses an h attribute (an unsigned 32-bit counter). */
static int parse_h(const struct xmpp_stanza *st, uint32_t *out)
{
    const char *h = xmpp_stanza_attr(st, "h");
    char *end = NULL;
    if (h == NULL || *h < '0' || *h > '9')
        return -EINVAL;
    unsigned long long v = strtoull(h, &end, 10);
    if (*end != '\0' || v > UINT32_MAX)
        return -EINVAL;
    *out = (uint32_t)v;
    return 0;
}

/* The server handled everything up to h: drop those stanzas from the queue. -EPROTO when h
 * acknowledges more than was sent (XEP-0198 §4: handled-count-too-high). */
static int sm_ack(struct xmpp_sm *sm, uint32_t h)
{
    uint32_t n = h - sm->acked; /* counters wrap at 2^32 */
    if (n > sm->n)
        return -EPROTO;
    for (uint32_t i = 0; i < n; i++) {
        struct xmpp__sm_item *it = sm->head;
        sm->head = it->next;
        sm->bytes -= it->len;
        mem_free(it);
    }
    if (sm->head == NULL)
        sm->tail = NULL;
    sm->n -= n;
    sm->acked = h;
    return 0;
}

/* --- writing nonzas --- */

static void write_nonza(struct xmpp_stream *s, const char *xml)
{
    if (xmpp__writes(s, xml) < 0) /* report it from the tick, never inside our caller */
        xmpp__finish(s, -ECONNRESET, "write failed", true);
}

static void send_ack(struct xmpp_stream *s)
{
    char a[80];
    snprintf(a, sizeof(a), "<a xmlns='" XMPP__NS_SM "' h='%u'/>", s->sm->h_in);
    s->a_sent = s->sm->h_in;
    s->a_sent_ms = uv_now(s->loop);
    s->a_due = false;
    write_nonza(s, a);
}

static void request_ack(struct xmpp_stream *s)
{
    s->r_pending = true;
    s->r_sent_ms = uv_now(s->loop);
    write_nonza(s, "<r xmlns='" XMPP__NS_SM "'/>");
}

/* --- the stream's side --- */

void xmpp__sm_list_add(struct xmpp_stream *s)
{
    if (s->sm_pprev != NULL)
        return;
    struct xmpp__tickreg *r = xmpp__reg_get(s->tick);
    s->sm_reg = r;
    s->sm_next = r->sm_head;
    if (r->sm_head)
        r->sm_head->sm_pprev = &s->sm_next;
    r->sm_head = s;
    s->sm_pprev = &r->sm_head;
}

void xmpp__sm_list_remove(struct xmpp_stream *s)
{
    if (s->sm_pprev == NULL)
        return;
    *s->sm_pprev = s->sm_next;
    if (s->sm_next)
        s->sm_next->sm_pprev = s->sm_pprev;
    s->sm_next = NULL;
    s->sm_pprev = NULL;
    struct xmpp__tickreg *r = s->sm_reg;
    s->sm_reg = NULL;
    if (r != NULL)
        xmpp__reg_maybe_free(r);
}

bool xmpp_stream_resumed(const struct xmpp_stream *s)
{
    return s->resumed;
}

size_t xmpp_stream_sm_unacked(const struct xmpp_stream *s)
{
    return s->sm ? s->sm->n : 0;
}

struct xmpp_sm *xmpp_stream_sm_take(struct xmpp_stream *s)
{
    struct xmpp_sm **from = s->sm ? &s->sm : s->resume_in ? &s->resume_in : &s->leftover;
    struct xmpp_sm *sm = *from;
    *from = NULL;
    if (from == &s->sm) {
        s->sm_enabled = false;
        xmpp__sm_list_remove(s);
    }
    return sm;
}

struct xmpp_sm *xmpp_stream_resume_leftover(struct xmpp_stream *s)
{
    struct xmpp_sm *sm = s->leftover;
    s->leftover = NULL;
    return sm;
}

/* --- enabling --- */

void xmpp__sm_enable(struct xmpp_stream *s)
{
    s->state = XMPP__ST_SM;
    if (xmpp__writes(s, "<enable xmlns='" XMPP__NS_SM "' resume='true'/>") < 0)
        xmpp__finish(s, -ECONNRESET, "write failed", false);
}

static char *attr_dup(const struct xmpp_stanza *st, const char *name)
{
    const char *v = xmpp_stanza_attr(st, name);
    return v != NULL && *v != '\0' && strlen(v) < 1024 ? mem_strdup(v) : NULL;
}

void xmpp__sm_enable_answer(struct xmpp_stream *s, const struct xmpp_stanza *st)
{
    if (strcmp(xmpp_stanza_name(st), "enabled") == 0) {
        struct xmpp_sm *sm = mem_calloc(1, sizeof(*sm));
        const char *resume = xmpp_stanza_attr(st, "resume");
        if (resume != NULL && (strcmp(resume, "true") == 0 || strcmp(resume, "1") == 0))
            sm->id = attr_dup(st, "id");
        sm->location = attr_dup(st, "location");
        sm->jid = mem_strdup(s->jid);
        s->sm = sm;
        s->sm_enabled = true;
        log_debug("sm_enabled", "jid=%s resumable=%d", s->jid, sm->id != NULL);
    } else {
        log_warn("sm_failed", "jid=%s", s->jid);
    }
    xmpp__ready(s);
}

/* --- resuming --- */

bool xmpp__sm_try_resume(struct xmpp_stream *s)
{
    struct xmpp_sm *sm = s->resume_in;
    if (!s->want_sm || !s->f_sm || !xmpp_sm_resumable(sm)) {
        log_info("resume_skipped", "jid=%s offered=%d resumable=%d unacked=%zu", s->logjid, s->f_sm,
                 xmpp_sm_resumable(sm), sm->n);
        s->leftover = sm;
        s->resume_in = NULL;
        return false;
    }
    /* the id is the server's token: serialise it like any attribute value */
    char h[16];
    snprintf(h, sizeof(h), "%u", sm->h_in);
    struct xmpp_stanza *r = xmpp_stanza_new("resume", XMPP__NS_SM);
    xmpp_stanza_set_attr(r, "previd", sm->id);
    xmpp_stanza_set_attr(r, "h", h);
    char *xml = xmpp_stanza_to_string(r);
    xmpp_stanza_unref(r);
    log_debug("resume", "jid=%s h=%u unacked=%zu", s->logjid, sm->h_in, sm->n);
    s->state = XMPP__ST_RESUME;
    int rc = xmpp__writes(s, xml);
    mem_free(xml);
    if (rc < 0)
        xmpp__finish(s, -ECONNRESET, "write failed", false);
    return true;
}

void xmpp__sm_resume_answer(struct xmpp_stream *s, const struct xmpp_stanza *st,
                            void (*bind)(struct xmpp_stream *s))
{
    struct xmpp_sm *sm = s->resume_in;
    uint32_t h = 0;
    bool have_h = parse_h(st, &h) == 0;
    if (strcmp(xmpp_stanza_name(st), "failed") == 0) {
        struct xmpp_stanza *c = xmpp_stanza_first_child(st);
        /* an h on <failed/> (XEP-0198 1.6) says what the old session handled */
        if (have_h && sm_ack(sm, h) < 0)
            log_warn("sm_bad_ack", "jid=%s h=%u acked=%u unacked=%zu", s->logjid, h, sm->acked,
                     sm->n);
        log_info("resume_failed", "jid=%s condition=%s h=%s unacked=%zu", s->logjid,
                 c ? xmpp_stanza_name(c) : "-", have_h ? xmpp_stanza_attr(st, "h") : "-", sm->n);
        mem_free(sm->id); /* never again */
        sm->id = NULL;
        s->leftover = sm;
        s->resume_in = NULL;
        bind(s);
        return;
    }
    if (!have_h || sm_ack(sm, h) < 0) {
        log_warn("sm_bad_ack", "jid=%s h=%s acked=%u unacked=%zu", s->logjid,
                 xmpp_stanza_attr(st, "h") ? xmpp_stanza_attr(st, "h") : "-", sm->acked, sm->n);
        xmpp__stream_error(s, "undefined-condition");
        return;
    }
    s->sm = sm;
    s->resume_in = NULL;
    s->sm_enabled = true;
    s->resumed = true;
    s->jid = mem_strdup(sm->jid);
    s->a_sent = sm->h_in;
    log_info("resumed", "jid=%s h=%u resend=%zu", s->jid, h, sm->n);
    /* what the server never got goes out again, in order; it counts it on arrival, so our
     * h_out already includes it */
    for (struct xmpp__sm_item *it = sm->head; it != NULL; it = it->next) {
        if (xmpp__write(s, it->xml, it->len) < 0) {
            xmpp__finish(s, -ECONNRESET, "write failed", false);
            return;
        }
    }
    if (sm->n > 0)
        request_ack(s);
    xmpp__ready(s);
}

/* --- once ready --- */

void xmpp__sm_element(struct xmpp_stream *s, const struct xmpp_stanza *st)
{
    const char *n = xmpp_stanza_name(st);
    if (strcmp(n, "r") == 0) {
        if (s->a_sent_ms == 0 || uv_now(s->loop) - s->a_sent_ms >= XMPP__SM_ACK_GAP_MS)
            send_ack(s);
        else
            s->a_due = true;
    } else if (strcmp(n, "a") == 0) {
        uint32_t h = 0;
        if (parse_h(st, &h) < 0 || sm_ack(s->sm, h) < 0) {
            log_warn("sm_bad_ack", "jid=%s h=%s acked=%u unacked=%zu", s->jid,
                     xmpp_stanza_attr(st, "h") ? xmpp_stanza_attr(st, "h") : "-", s->sm->acked,
                     s->sm->n);
            xmpp__stream_error(s, "undefined-condition");
            return;
        }
        s->r_pending = false;
        log_debug("sm_ack", "jid=%s h=%u sent=%u unacked=%zu", s->jid, h, s->sm->h_out, s->sm->n);
    } else {
        log_debug("sm_ignored", "jid=%s element=%s", s->jid, n);
    }
}

int xmpp__sm_room(const struct xmpp_stream *s, size_t len)
{
    const struct xmpp_sm *sm = s->sm;
    if (sm->n >= XMPP__SM_MAX_QUEUE || len > XMPP__SM_MAX_QUEUE_BYTES - sm->bytes)
        return -ENOBUFS;
    return 0;
}

void xmpp__sm_track(struct xmpp_stream *s, const char *xml, size_t len)
{
    struct xmpp_sm *sm = s->sm;
    struct xmpp__sm_item *it = mem_alloc(sizeof(*it) + len + 1);
    it->next = NULL;
    it->len = len;
    memcpy(it->xml, xml, len);
    it->xml[len] = '\0';
    if (sm->tail)
        sm->tail->next = it;
    else
        sm->head = it;
    sm->tail = it;
    sm->n++;
    sm->bytes += len;
    sm->h_out++;
    if (!s->r_pending && sm->n >= XMPP__SM_R_EVERY)
        request_ack(s);
}

void xmpp__sm_tick(struct xmpp_stream *s, uint64_t now_ms)
{
    if (s->state != XMPP__ST_READY || !s->sm_enabled || xmpp__gone(s))
        return;
    struct xmpp_sm *sm = s->sm;
    if (s->r_pending) {
        if (now_ms - s->r_sent_ms >= XMPP__SM_ACK_TIMEOUT_MS && s->last_rx_ms < s->r_sent_ms) {
            log_warn("ack_timeout", "jid=%s unacked=%zu", s->jid, sm->n);
            xmpp__finish(s, -ETIMEDOUT, "ack timeout", true);
            return;
        }
    } else if (sm->n > 0) {
        request_ack(s);
    }
    if (!xmpp__gone(s) && (s->a_due || sm->h_in != s->a_sent))
        send_ack(s);
    /* quiet between stanzas: free the expat parser until bytes arrive again (a wake costs
     * about as much as parsing a few stanzas, so only streams idle for a while sleep) */
    if (!xmpp__gone(s) && now_ms - s->last_rx_ms >= XMPP__PARSER_NAP_MS)
        (void)xmpp__parser_hibernate(s->parser);
}
