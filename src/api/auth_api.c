/* auth_api.c: the authentication tag's password flows (contract §1.1 A1-A3) and the token
 * lifecycle: password login, logout, in-band registration, refresh-token rotation. */
#include "api/api_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "auth/auth.h"
#include "core/mem.h"
#include "core/tick.h"
#include "session/session.h"
#include "xmpp/jid.h"
#include "xmpp/stanza.h"
#include "xmpp/stream.h"

#define LOG_MODULE "api"
#include "core/log.h"

/* A password or refresh call in progress: the request waits for the XMPP server's verdict. */
struct pw_call {
    struct api_call base; /* first: the call's address is the struct's */
    char refresh[300];
};

static void pw_cleanup(struct api_call *c)
{
    struct pw_call *p = (struct pw_call *)c;
    OPENSSL_cleanse(p->refresh, sizeof(p->refresh));
}

/* Validates {username} and the password body and applies the rate limit. NULL when it has
 * replied. */
static struct pw_call *pw_begin(struct api_deps *d, struct http_req *req)
{
    struct pw_call *c = (struct pw_call *)api__call_new(d, req, sizeof(struct pw_call),
                                                        API_CALL_USER | API_CALL_RATE);
    if (c == NULL)
        return NULL;
    c->base.cleanup = pw_cleanup;
    c->base.method = "password";
    if (!api__password_body(req, c->base.password)) {
        api__call_error(&c->base, 400, "the body must be the password (UTF-8 text, 1-1023 bytes)");
        return NULL;
    }
    return c;
}

static void login_done(struct session_mgr *mgr, int status, struct session *s, void *data)
{
    struct pw_call *c = data;
    if (!api__call_password_checked(&c->base, status, "login failed"))
        return;
    http_req_on_abort(c->base.req, NULL, NULL);
    api__reply_tokens(c->base.d, c->base.req, c->base.user, NULL);
    log_info("login", "user=%s ip=%s method=password sessions=%zu", session_username(s), c->base.ip,
             session_mgr_count(mgr));
    api__call_free(&c->base);
}

static void pw_login(struct pw_call *c, session_login_cb *done)
{
    int rc =
        session_login(c->base.d->sessions, c->base.user, c->base.password, done, c, &c->base.login);
    if (rc < 0) {
        api__call_errno(&c->base, rc, "login failed");
        return;
    }
    api__call_watch(&c->base);
}

/* POST /login/{username} — body: the password (any content type). */
static void handle_login(struct http_req *req, void *data)
{
    struct pw_call *c = pw_begin(data, req);
    if (c != NULL)
        pw_login(c, login_done);
}

/* ---- registration (A3) ---- */

static void vcard_set_done(struct session *s, int status, const struct xmpp_stanza *reply,
                           void *data)
{
    (void)reply;
    (void)data;
    if (status != 0)
        log_info("vcard_not_set", "user=%s err=%s", session_username(s), log_errname(status));
}

/* The contract's defaults for a new account: FN = username with its first letter upper-cased,
 * EMAIL = username@domain (XEP-0054). */
static void set_default_vcard(struct api_deps *d, struct session *s, const char *user)
{
    char fn[API_USER_MAX];
    snprintf(fn, sizeof(fn), "%s", user);
    if (fn[0] >= 'a' && fn[0] <= 'z')
        fn[0] = (char)(fn[0] - 'a' + 'A');
    char email[API_USER_MAX + 256];
    snprintf(email, sizeof(email), "%s@%s", user, d->domain);
    struct xmpp_stanza *iq = xmpp_stanza_new("iq", XMPP_NS_CLIENT);
    xmpp_stanza_set_attr(iq, "type", "set");
    struct xmpp_stanza *vc = xmpp_stanza_add_child(iq, "vCard", "vcard-temp");
    xmpp_stanza_add_text_child(vc, "FN", NULL, fn);
    struct xmpp_stanza *em = xmpp_stanza_add_child(vc, "EMAIL", NULL);
    xmpp_stanza_add_child(em, "INTERNET", NULL);
    xmpp_stanza_add_text_child(em, "USERID", NULL, email);
    session_send_iq(s, iq, 0, vcard_set_done, NULL);
    xmpp_stanza_unref(iq);
}

static void register_login_done(struct session_mgr *mgr, int status, struct session *s, void *data)
{
    struct pw_call *c = data;
    if (status == 0)
        set_default_vcard(c->base.d, s, c->base.user);
    login_done(mgr, status, s, data);
}

static void register_done(int status, void *data)
{
    struct pw_call *c = data;
    c->base.reg = NULL;
    if (status != 0) {
        http_req_on_abort(c->base.req, NULL, NULL);
        api__rate_fail(c->base.d, c->base.user, c->base.ip);
        log_info("register_refused", "user=%s ip=%s err=%s", c->base.user, c->base.ip,
                 log_errname(status));
        if (status == -EINVAL)
            api__error(c->base.req, 400, "user cannot be created (the server refused the data)");
        else
            api__error_errno(c->base.req, status, "registration failed");
        api__call_free(&c->base);
        return;
    }
    log_info("registered", "user=%s ip=%s", c->base.user, c->base.ip);
    http_req_on_abort(c->base.req, NULL, NULL);
    pw_login(c, register_login_done);
}

/* POST /register/{username} — body: the new password. */
static void handle_register(struct http_req *req, void *data)
{
    struct pw_call *c = pw_begin(data, req);
    if (c == NULL)
        return;
    int rc = session_register(c->base.d->sessions, c->base.user, c->base.password, register_done, c,
                              &c->base.reg);
    if (rc < 0) {
        api__call_errno(&c->base, rc, "registration failed");
        return;
    }
    api__call_watch(&c->base);
}

/* ---- refresh (our addition) ---- */

static void refresh_ready(int status, struct session *s, void *data)
{
    struct pw_call *c = data;
    (void)s;
    c->base.ensure = NULL;
    if (status != 0) {
        api__call_errno(&c->base, status, "xmpp session could not be established");
        return;
    }
    http_req_on_abort(c->base.req, NULL, NULL);
    char user[API_USER_MAX];
    int rc = auth_refresh_use(c->base.d->auth, c->refresh, user, sizeof(user), c->base.family);
    if (rc != 0) {
        api__error(c->base.req, 401,
                   rc == -EALREADY ? "refresh token reused" : "invalid refresh token");
    } else {
        api__reply_tokens(c->base.d, c->base.req, user, c->base.family);
        log_info("refreshed", "user=%s ip=%s", user, c->base.ip);
    }
    api__call_free(&c->base);
}

/* The refresh token from the body: raw text, or JSON {"refreshToken": "..."}. */
static bool refresh_from_body(struct http_req *req, char *out, size_t len)
{
    size_t bl;
    const char *body = http_req_body(req, &bl);
    while (bl > 0 && (*body == ' ' || *body == '\n' || *body == '\r')) {
        body++;
        bl--;
    }
    if (bl > 0 && body[0] == '{') {
        json_t *j = json_loadb(body, bl, 0, NULL);
        const char *t = json_string_value(json_object_get(j, "refreshToken"));
        bool ok = t != NULL && strlen(t) < len;
        if (ok)
            snprintf(out, len, "%s", t);
        json_decref(j);
        return ok;
    }
    while (bl > 0 && (body[bl - 1] == ' ' || body[bl - 1] == '\n' || body[bl - 1] == '\r'))
        bl--;
    if (bl == 0 || bl >= len || memchr(body, '\0', bl) != NULL)
        return false;
    memcpy(out, body, bl);
    out[bl] = '\0';
    return true;
}

/* POST /token/refresh — body: the refresh token. Rotates it: the answer carries a new access
 * token and a new refresh token of the same family; the old one is spent. */
static void handle_refresh(struct http_req *req, void *data)
{
    struct api_deps *d = data;
    struct pw_call *c =
        (struct pw_call *)api__call_new(d, req, sizeof(struct pw_call), API_CALL_RATE);
    if (c == NULL)
        return;
    c->base.cleanup = pw_cleanup;
    if (!refresh_from_body(req, c->refresh, sizeof(c->refresh))) {
        api__call_error(&c->base, 400, "the body must be the refresh token");
        return;
    }
    int rc = auth_refresh_peek(d->auth, c->refresh, c->base.user, sizeof(c->base.user));
    if (rc != 0) {
        api__rate_fail(d, NULL, c->base.ip);
        log_info("refresh_refused", "ip=%s why=%s", c->base.ip,
                 rc == -EALREADY ? "reused" : "unknown");
        api__call_error(&c->base, 401,
                        rc == -EALREADY ? "refresh token reused" : "invalid refresh token");
        return;
    }
    c->base.ensure = api__ensure_session(d, c->base.user, refresh_ready, c);
    api__call_watch(&c->base);
}

/* ---- logout (A2) ---- */

/* session.logout = tab: revokes the presented token and its refresh family (this tab's tokens)
 * and closes the streams opened with them; the session stays for the user's other streams, or
 * is logged out when none remain. The user's other tokens stay valid. */
static void logout_tab(struct api_deps *d, struct http_req *req, const char *user)
{
    const char *token = auth_token_from_header(http_req_header(req, "authorization"));
    char family[AUTH_FAMILY_LEN] = "";
    if (auth_token_family(d->auth, token, family) != 0)
        family[0] = '\0';
    size_t n = (auth_token_revoke(d->auth, token) == 0) + auth_family_revoke(d->auth, family);
    struct session *s = session_find(d->sessions, user);
    if (s == NULL) {
        api__error(req, 400, "xmpp connection not found");
        return;
    }
    size_t left = session_logout_tab(s, family);
    log_info("logout", "user=%s policy=tab revoked=%zu streams_left=%zu", user, n, left);
    http_reply_empty(req, 200);
}

/* POST /logout — session.logout = all (default, reference behaviour, contract §2.5): closes the
 * user's shared session for every tab and revokes every token of the user, access and refresh;
 * session.logout = tab: logout_tab. */
static void handle_logout(struct http_req *req, void *data)
{
    struct api_deps *d = data;
    char user[API_USER_MAX];
    if (!api__authenticate(d, req, user))
        return;
    if (d->logout_tab) {
        logout_tab(d, req, user);
        return;
    }
    auth_token_revoke_user(d->auth, user);
    auth_pwcache_forget(d->auth, user);
    api__tickets_forget_user(d, user); /* including those obtained with Basic */
    struct session *s = session_find(d->sessions, user);
    if (s == NULL) {
        api__error(req, 400, "xmpp connection not found");
        return;
    }
    session_logout(s);
    log_info("logout", "user=%s policy=all", user);
    http_reply_empty(req, 200);
}

int api__auth_register(struct api_deps *d)
{
    int rc = http_route(d->http, HTTP_POST, API_PREFIX "/login/{username}", handle_login, d);
    if (rc == 0)
        rc = http_route(d->http, HTTP_POST, API_PREFIX "/logout", handle_logout, d);
    if (rc == 0)
        rc = http_route(d->http, HTTP_POST, API_PREFIX "/register/{username}", handle_register, d);
    if (rc == 0)
        rc = http_route(d->http, HTTP_POST, API_PREFIX "/token/refresh", handle_refresh, d);
    return rc;
}

void api_on_session_end(const char *username, const char *reason, void *data)
{
    struct api_deps *d = data;
    if (strcmp(reason, "logout") != 0 || d->logout_tab)
        return; /* tokens stay valid: the next call re-opens the session from the vault (a tab
                   logout has revoked its own tokens already) */
    size_t n = auth_token_revoke_user(d->auth, username);
    log_debug("tokens_revoked", "user=%s reason=%s count=%zu", username, reason, n);
}
