/* sse_api.c: GET /sparkweb/sse?token= and its alias /sparkweb/api/sse (contract §3). Each
 * stream gets its own onConnect, then every event of the user's session. */
#include "api/api_int.h"

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

struct sse_call {
    struct session *s; /* valid while attached */
    struct events_sink *sink;
    struct sse_stream *st;
    bool attached;
};

static void on_event(struct events_sink *sink, const struct event *ev, void *data)
{
    struct sse_call *c = data;
    (void)sink;
    sse_stream_send_event(c->st, ev);
}

/* The session ended (logout, expiry, upstream loss): onDisconnect was delivered; close. */
static void on_session_closed(struct session *s, const char *reason, void *data)
{
    struct sse_call *c = data;
    (void)s;
    (void)reason;
    c->attached = false;
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
                        struct session *s, const char *tab)
{
    if (session_sink_count(s) >= d->max_streams_per_user) {
        api__error(req, 429, "too many event streams");
        return;
    }
    struct sse_call *c = mem_calloc(1, sizeof(*c));
    c->s = s;
    c->st = sse_stream_open(d->sse, req, on_stream_closed, c);
    json_t *hello = events_on_connect(user, session_name(s), session_email(s));
    char *text = json_dumps(hello, JSON_COMPACT);
    json_decref(hello);
    sse_stream_send(c->st, 0, "onConnect", text, strlen(text));
    free(text);
    c->attached = true;
    c->sink = session_attach(s, on_event, on_session_closed, c);
    session_sink_set_tag(s, c->sink, tab); /* for session.logout = tab */
    log_debug("sse_open", "user=%s streams=%zu", user, session_sink_count(s));
}

/* A stream whose user's session is being re-opened from the vault. */
struct sse_wait {
    struct api_deps *d;
    struct http_req *req;
    struct api_ensure *ensure;
    char user[API_USER_MAX];
    char tab[AUTH_FAMILY_LEN];
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
    } else {
        open_stream(w->d, w->req, w->user, s, w->tab);
    }
    mem_free(w);
}

static void handle_sse(struct http_req *req, void *data)
{
    struct api_deps *d = data;
    const char *token = http_req_query(req, "token");
    if (token == NULL || *token == '\0') {
        api__error(req, 401, "missing token");
        return;
    }
    char user[API_USER_MAX];
    enum jwt_status jst = auth_token_check(d->auth, token, user, sizeof(user));
    if (jst != JWT_OK) {
        log_info("sse_refused", "why=%s", jwt_status_str(jst));
        api__error(req, 401, jwt_status_str(jst));
        return;
    }
    char tab[AUTH_FAMILY_LEN] = ""; /* the token's refresh family identifies the tab */
    auth_token_family(d->auth, token, tab);
    struct session *s = session_find(d->sessions, user);
    if (s != NULL) {
        open_stream(d, req, user, s, tab);
        return;
    }
    /* a valid token but no session (idle expiry, gateway restart): re-open from the vault */
    struct sse_wait *w = mem_calloc(1, sizeof(*w));
    w->d = d;
    w->req = req;
    snprintf(w->user, sizeof(w->user), "%s", user);
    snprintf(w->tab, sizeof(w->tab), "%s", tab);
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
