/* sse_api.c: GET /sparkweb/sse?token= and its alias /sparkweb/api/sse (contract §3). Each
 * stream gets its own onConnect, then every event of the user's session. */
#include "api/api_int.h"

#include <stdbool.h>
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

static void handle_sse(struct http_req *req, void *data)
{
    const struct api_deps *d = data;
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
    struct session *s = session_find(d->sessions, user);
    if (s == NULL) {
        api__error(req, 401, "xmpp connection not found");
        return;
    }
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
    log_debug("sse_open", "user=%s streams=%zu", user, session_sink_count(s));
}

int api__sse_register(const struct api_deps *d)
{
    int rc = http_route(d->http, HTTP_GET, "/sparkweb/sse", handle_sse, (void *)d);
    if (rc == 0)
        rc = http_route(d->http, HTTP_GET, "/sparkweb/api/sse", handle_sse, (void *)d);
    return rc;
}

int api_register_all(const struct api_deps *deps)
{
    int rc = api__auth_register(deps);
    if (rc == 0)
        rc = api__chat_register(deps);
    if (rc == 0)
        rc = api__sse_register(deps);
    return rc;
}
