/* auth_api.c: the authentication tag: password login and logout (contract §1.1 A1, A2). */
#include "api/api_int.h"

#include <errno.h>
#include <string.h>

#include "auth/auth.h"
#include "core/mem.h"
#include "session/session.h"
#include "xmpp/jid.h"

#define LOG_MODULE "api"
#include "core/log.h"

/* A login in progress: the HTTP request waits for the XMPP server's verdict. */
struct login_call {
    const struct api_deps *d;
    struct http_req *req;
    struct session_login *login;
};

static void login_aborted(struct http_req *req, void *data)
{
    struct login_call *c = data;
    (void)req;
    session_login_cancel(c->login);
    mem_free(c);
}

static void login_done(struct session_mgr *mgr, int status, struct session *s, void *data)
{
    struct login_call *c = data;
    (void)mgr;
    http_req_on_abort(c->req, NULL, NULL);
    if (status != 0) {
        api__error_errno(c->req, status, "login failed");
    } else {
        char *token = auth_token_issue(c->d->auth, session_username(s));
        json_t *body = json_object();
        json_object_set_new(body, "token", json_string(token));
        http_reply_json(c->req, 200, body);
        mem_free(token);
        log_info("login", "user=%s sessions=%zu", session_username(s), session_mgr_count(mgr));
    }
    mem_free(c);
}

/* POST /login/{username} — body: the password (any content type). */
static void handle_login(struct http_req *req, void *data)
{
    const struct api_deps *d = data;
    const char *username = http_req_param(req, "username");
    size_t len;
    const char *password = http_req_body(req, &len);
    if (!xmpp_jid_local_valid(username)) {
        api__error(req, 400, "invalid username");
        return;
    }
    if (len == 0 || memchr(password, '\0', len) != NULL || !api__xml_text_valid(password, len)) {
        api__error(req, 401, "not-authorized");
        return;
    }
    struct login_call *c = mem_calloc(1, sizeof(*c));
    c->d = d;
    c->req = req;
    int rc = session_login(d->sessions, username, password, login_done, c, &c->login);
    if (rc < 0) {
        mem_free(c);
        api__error_errno(req, rc, "login failed");
        return;
    }
    http_req_on_abort(req, login_aborted, c);
}

/* POST /logout — closes the user's shared session (all tabs) and revokes the token. */
static void handle_logout(struct http_req *req, void *data)
{
    const struct api_deps *d = data;
    char user[API_USER_MAX];
    if (!api__authenticate(d, req, user))
        return;
    const char *token = auth_token_from_header(http_req_header(req, "authorization"));
    auth_token_revoke(d->auth, token);
    struct session *s = session_find(d->sessions, user);
    if (s == NULL) {
        api__error(req, 400, "xmpp connection not found");
        return;
    }
    session_logout(s); /* on_session_end revokes the user's other tokens */
    log_info("logout", "user=%s", user);
    http_reply_empty(req, 200);
}

int api__auth_register(const struct api_deps *d)
{
    int rc = http_route(d->http, HTTP_POST, API_PREFIX "/login/{username}", handle_login,
                        (void *)d);
    if (rc == 0)
        rc = http_route(d->http, HTTP_POST, API_PREFIX "/logout", handle_logout, (void *)d);
    return rc;
}

void api_on_session_end(const char *username, const char *reason, void *data)
{
    size_t n = auth_token_revoke_user(data, username);
    log_debug("tokens_revoked", "user=%s reason=%s count=%zu", username, reason, n);
}
