/* sse_api.c: GET /sparkweb/sse and its alias /sparkweb/api/sse (contract §3), authenticated by
 * ?token= or a single-use ?ticket= (sse_ticket.c). Each stream gets its own onConnect, then
 * the events it missed when it presents Last-Event-ID (header, or ?lastEventId= for HTTP/2
 * and polyfills), or those no stream has seen yet, then every new event of the user's session.
 * A backlog is replayed from the ring at the pace the client reads (a stream catching up is
 * never closed as too slow); live events go straight to the stream, which is aborted when its
 * queue overflows. Docs: docs/events.md. */
#include "api/api_int.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "core/mem.h"
#include "events/events.h"
#include "session/session.h"
#include "sse/sse.h"

#define LOG_MODULE "api"
#include "core/log.h"

/* Longer Last-Event-ID values cannot be ids (they are below 2^53: 16 digits). */
#define LEI_MAX 32

struct sse_call {
    struct session *s;      /* valid while attached */
    struct events_log *log; /* the session's; NULL once the session closed */
    struct events_sink *sink;
    struct sse_stream *st;
    uint64_t cursor;  /* id of the last event written to (or skipped for) this stream */
    bool catching_up; /* events after cursor are read from the ring, not taken live */
    bool attached;
};

static void pump(struct sse_call *c);

static void on_drain(struct sse_stream *st, void *data)
{
    (void)st;
    pump(data);
}

static int send_gap(struct sse_stream *st, const struct events_resume *r, bool offer)
{
    json_t *p = events_gap_payload(r->oldest, r->last, r->has_requested, r->requested);
    char *text = json_dumps(p, JSON_COMPACT);
    json_decref(p);
    int rc = offer ? sse_stream_offer(st, 0, EVENTS_GAP, text, strlen(text))
                   : sse_stream_send(st, 0, EVENTS_GAP, text, strlen(text));
    free(text);
    return rc;
}

/* Writes the events after c->cursor from the ring while they fit in the stream's queue; waits
 * for the queue to drain when they do not. Live delivery resumes once caught up. */
static void pump(struct sse_call *c)
{
    while (c->catching_up && c->log != NULL) {
        bool lost;
        const struct event *ev = events_log_next(c->log, c->cursor, &lost);
        int rc;
        if (lost) {
            /* the ring moved on while this stream was catching up */
            struct events_resume r = { .has_requested = true,
                                       .requested = c->cursor,
                                       .oldest = events_log_oldest_id(c->log),
                                       .last = events_log_last_id(c->log) };
            rc = send_gap(c->st, &r, true);
            if (rc == 0)
                c->cursor = r.oldest ? r.oldest - 1 : r.last;
        } else if (ev == NULL) {
            c->catching_up = false;
            return;
        } else {
            rc = sse_stream_offer_event(c->st, ev);
            if (rc == 0 || rc == -EMSGSIZE)
                c->cursor = ev->id;
        }
        if (rc == -EAGAIN) {
            sse_stream_on_drain(c->st, on_drain, c);
            return;
        }
        if (rc == -EPIPE)
            return; /* closing: on_stream_closed follows */
    }
}

static void on_event(struct events_sink *sink, const struct event *ev, void *data)
{
    struct sse_call *c = data;
    (void)sink;
    if (ev->id == 0) { /* a one-off for this stream alone (not in the ring), e.g. onDisconnect
                          before a tab logout closes it: after what the stream already has */
        if (c->catching_up)
            pump(c);
        sse_stream_send_event(c->st, ev);
        return;
    }
    if (ev->id <= c->cursor || c->catching_up)
        return; /* already written, or the pump will read it from the ring */
    if (ev->id != c->cursor + 1) {
        c->catching_up = true;
        pump(c);
        return;
    }
    /* the event is consumed whatever happens: a too slow stream is aborted here and its
     * client resumes from its Last-Event-ID */
    sse_stream_send_event(c->st, ev);
    c->cursor = ev->id;
}

/* The session ended (logout, expiry, upstream loss): onDisconnect was delivered; close. */
static void on_session_closed(struct session *s, const char *reason, void *data)
{
    struct sse_call *c = data;
    (void)s;
    (void)reason;
    c->attached = false;
    pump(c); /* a stream still catching up gets what fits; the log goes with the session */
    c->catching_up = false;
    c->log = NULL;
    sse_stream_close(c->st);
}

/* The stream ended (client gone, too slow, or closed above). */
static void on_stream_closed(struct sse_stream *st, void *data)
{
    struct sse_call *c = data;
    (void)st;
    if (c->attached)
        session_detach(c->s, c->sink);
    mem_free(c);
}

static void open_stream(const struct api_deps *d, struct http_req *req, const char *user,
                        struct session *s, const char *tab, const char *last_event_id)
{
    if (session_sink_count(s) >= d->max_streams_per_user) {
        api__error(req, 429, "too many event streams");
        return;
    }
    struct sse_call *c = mem_calloc(1, sizeof(*c));
    c->s = s;
    c->log = session_events(s);
    struct events_resume r;
    events_log_resume(c->log, last_event_id, &r);
    c->st = sse_stream_open(d->sse, req, on_stream_closed, c);
    /* onConnect comes first and carries the stream's starting position as its id, so a client
     * that reconnects before any other event resumes from exactly there */
    json_t *hello = events_on_connect(user, session_name(s), session_email(s));
    char *text = json_dumps(hello, JSON_COMPACT);
    json_decref(hello);
    sse_stream_send(c->st, r.cursor, "onConnect", text, strlen(text));
    free(text);
    if (r.gap) {
        log_info("sse_gap", "user=%s requested=%s oldest=%llu last=%llu", user,
                 r.has_requested ? "id" : (last_event_id && *last_event_id ? "invalid" : "none"),
                 (unsigned long long)r.oldest, (unsigned long long)r.last);
        send_gap(c->st, &r, false);
    }
    c->cursor = r.cursor;
    c->catching_up = true;
    pump(c);
    c->attached = true;
    c->sink = session_attach(s, on_event, on_session_closed, c);
    session_sink_set_tag(s, c->sink, tab); /* for session.logout = tab */
    log_debug("sse_open", "user=%s streams=%zu resume=%s backlog=%llu", user, session_sink_count(s),
              r.gap ? "gap" : "ok", (unsigned long long)(r.last - r.cursor));
}

/* A stream whose user's session is being re-opened from the vault. */
struct sse_wait {
    struct api_deps *d;
    struct http_req *req;
    struct api_ensure *ensure;
    char user[API_USER_MAX];
    char tab[AUTH_FAMILY_LEN];
    char last_event_id[LEI_MAX];
    char jti[AUTH_JTI_LEN]; /* the credential's token, re-checked once the session is open */
};

static void sse_wait_aborted(struct http_req *req, void *data)
{
    struct sse_wait *w = data;
    (void)req;
    api__ensure_cancel(w->ensure);
    mem_free(w);
}

static void sse_session_ready(int status, struct session *s, void *data)
{
    struct sse_wait *w = data;
    http_req_on_abort(w->req, NULL, NULL);
    if (status != 0) {
        log_info("sse_refused", "user=%s why=no_session err=%s", w->user, log_errname(status));
        api__error(w->req, 401, "xmpp connection not found");
    } else if (w->jti[0] != '\0' && !auth_jti_live(w->d->auth, w->jti, w->user)) {
        log_info("sse_refused", "user=%s why=revoked_while_opening", w->user);
        api__error(w->req, 401, "revoked"); /* a logout came while the session opened */
    } else {
        open_stream(w->d, w->req, w->user, s, w->tab,
                    w->last_event_id[0] ? w->last_event_id : NULL);
    }
    mem_free(w);
}

/* Authenticates the stream by ?ticket= and/or ?token= (both must then name the same user).
 * Replies 401 and returns false on failure. */
static bool sse_authenticate(struct api_deps *d, struct http_req *req, char user[API_USER_MAX],
                             char tab[AUTH_FAMILY_LEN], char jti[AUTH_JTI_LEN])
{
    jti[0] = '\0';
    tab[0] = '\0'; /* the token's refresh family identifies the tab (session.logout = tab) */
    const char *ticket = http_req_query(req, "ticket");
    const char *token = http_req_query(req, "token");
    bool has_ticket = ticket != NULL && *ticket != '\0';
    bool has_token = token != NULL && *token != '\0';
    if (!has_ticket && !has_token) {
        api__error(req, 401, "missing token");
        return false;
    }
    if (has_token) {
        enum jwt_status jst = auth_token_check(d->auth, token, user, API_USER_MAX);
        if (jst != JWT_OK) {
            log_info("sse_refused", "why=%s", jwt_status_str(jst));
            api__error(req, 401, jwt_status_str(jst));
            return false;
        }
        auth_token_family(d->auth, token, tab);
        auth_token_jti(d->auth, token, jti);
    }
    if (has_ticket) {
        char tuser[API_USER_MAX];
        char ttab[AUTH_FAMILY_LEN];
        char tjti[AUTH_JTI_LEN];
        int rc = api__ticket_take(d, ticket, tuser, ttab, tjti);
        if (rc < 0) {
            log_info("sse_refused", "why=%s", rc == -EACCES ? "ticket_revoked" : "bad_ticket");
            api__error(req, 401, "invalid ticket");
            return false;
        }
        if (has_token && strcmp(tuser, user) != 0) {
            log_info("sse_refused", "user=%s why=ticket_of_other_user", user);
            api__error(req, 401, "invalid ticket");
            return false;
        }
        snprintf(user, API_USER_MAX, "%s", tuser);
        if (!has_token) {
            snprintf(tab, AUTH_FAMILY_LEN, "%s", ttab);
            snprintf(jti, AUTH_JTI_LEN, "%s", tjti);
        }
    }
    return true;
}

/* Last-Event-ID, from the header (what EventSource sends on its own reconnects) or else the
 * query (lws drops non-standard headers over HTTP/2; a new EventSource, e.g. one opened with a
 * fresh ticket, cannot set headers). NULL when absent; "!" (never an id) when too long. */
static const char *last_event_id(struct http_req *req, char out[LEI_MAX])
{
    const char *v = http_req_header(req, "last-event-id");
    if (v == NULL || *v == '\0')
        v = http_req_query(req, "lastEventId");
    if (v == NULL || *v == '\0')
        return NULL;
    if (strlen(v) >= LEI_MAX)
        v = "!";
    snprintf(out, LEI_MAX, "%s", v);
    return out;
}

static void handle_sse(struct http_req *req, void *data)
{
    struct api_deps *d = data;
    char user[API_USER_MAX], tab[AUTH_FAMILY_LEN], jti[AUTH_JTI_LEN];
    if (!sse_authenticate(d, req, user, tab, jti))
        return;
    char lei_buf[LEI_MAX];
    const char *lei = last_event_id(req, lei_buf);
    struct session *s = session_find(d->sessions, user);
    if (s != NULL) {
        open_stream(d, req, user, s, tab, lei);
        return;
    }
    /* a valid token but no session (idle expiry, gateway restart): re-open from the vault */
    struct sse_wait *w = mem_calloc(1, sizeof(*w));
    w->d = d;
    w->req = req;
    snprintf(w->user, sizeof(w->user), "%s", user);
    snprintf(w->tab, sizeof(w->tab), "%s", tab);
    snprintf(w->jti, sizeof(w->jti), "%s", jti);
    snprintf(w->last_event_id, sizeof(w->last_event_id), "%s", lei ? lei : "");
    w->ensure = api__ensure_session(d, user, sse_session_ready, w);
    http_req_on_abort(req, sse_wait_aborted, w);
}

int api__sse_register(struct api_deps *d)
{
    int rc = http_route(d->http, HTTP_GET, "/sparkweb/sse", handle_sse, d);
    if (rc == 0)
        rc = http_route(d->http, HTTP_GET, "/sparkweb/api/sse", handle_sse, d);
    return rc;
}
