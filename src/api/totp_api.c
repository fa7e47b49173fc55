/* totp_api.c: TOTP enrolment and login (contract §1.1 A8, A9). The QR code is drawn here as SVG
 * and returned as a data: URL in "url" (usable as <img src>, as the reference's chart URL was),
 * so the secret never goes to a third party. A9 needs a second factor unless
 * auth.totp_single_factor is on: the password as the body, or a valid token of the same user
 * in Authorization. Each code is accepted once (the step is recorded), ±1 step of clock skew. */
#include "api/api_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "auth/auth.h"
#include "auth/totp.h"
#include "core/b64.h"
#include "core/mem.h"
#include "core/tick.h"
#include "session/session.h"
#include "store/store.h"
#include "xmpp/jid.h"

#define LOG_MODULE "totp"
#include "core/log.h"

struct totp_call {
    struct api_deps *d;
    struct http_req *req;
    struct session_login *login;
    struct api_ensure *ensure;
    bool in_store; /* a store callback will come */
    bool aborted;  /* the client left while in_store */
    bool has_password;
    char user[API_USER_MAX];
    char password[API_PASS_MAX];
    char code[8];
    char ip[64];
    char secret[128];
    char family[AUTH_FAMILY_LEN]; /* step-up with a token: that token's family */
};

static void call_free(struct totp_call *c)
{
    OPENSSL_cleanse(c->password, sizeof(c->password));
    OPENSSL_cleanse(c->secret, sizeof(c->secret));
    mem_free(c);
}

static void call_aborted(struct http_req *req, void *data)
{
    struct totp_call *c = data;
    (void)req;
    session_login_cancel(c->login);
    c->login = NULL;
    api__ensure_cancel(c->ensure);
    c->ensure = NULL;
    if (c->in_store)
        c->aborted = true; /* freed when the store answers */
    else
        call_free(c);
}

/* A store callback's common start: false when the request is gone (c freed). */
static bool store_back(struct totp_call *c)
{
    c->in_store = false;
    if (c->aborted) {
        call_free(c);
        return false;
    }
    return true;
}

static void finish_error(struct totp_call *c, int status, const char *text)
{
    http_req_on_abort(c->req, NULL, NULL);
    api__error(c->req, status, text);
    call_free(c);
}

/* ---- A8: enrolment ---- */

static void reply_enrolment(struct totp_call *c)
{
    char account[API_USER_MAX + 256];
    snprintf(account, sizeof(account), "%s@%s", c->user, c->d->domain);
    char *uri = totp_uri(c->d->totp_issuer, account, c->secret);
    char *svg = uri ? totp_qr_svg(uri) : NULL;
    if (svg == NULL) {
        mem_free(uri);
        finish_error(c, 500, "QR code could not be made");
        return;
    }
    char *b64 = b64_encode(svg, strlen(svg), B64_STD, NULL);
    size_t ul = strlen(b64) + 32;
    char *url = mem_alloc(ul);
    snprintf(url, ul, "data:image/svg+xml;base64,%s", b64);
    json_t *body = json_pack("{s:s, s:s, s:s}", "url", url, "otpauth", uri, "svg", svg);
    http_req_on_abort(c->req, NULL, NULL);
    http_reply_json(c->req, 200, body);
    log_info("enrolled", "user=%s", c->user);
    OPENSSL_cleanse(uri, strlen(uri));
    mem_free(uri);
    mem_free(svg);
    mem_free(b64);
    mem_free(url);
    call_free(c);
}

static void enrol_created(int status, void *data);

static void enrol_got(int status, const struct store_totp *t, void *data)
{
    struct totp_call *c = data;
    if (!store_back(c))
        return;
    if (status == 0) { /* re-enrolment keeps the secret (reference behaviour) */
        snprintf(c->secret, sizeof(c->secret), "%s", t->secret);
        reply_enrolment(c);
        return;
    }
    if (status != -ENOENT) {
        finish_error(c, 500, "storage failure");
        return;
    }
    totp_secret_new(c->secret, sizeof(c->secret));
    c->in_store = true;
    store_totp_create(c->d->db, c->user, c->secret, enrol_created, c);
}

static void enrol_created(int status, void *data)
{
    struct totp_call *c = data;
    if (!store_back(c))
        return;
    if (status == -EEXIST) { /* a concurrent enrolment won: use its secret */
        c->in_store = true;
        store_totp_get(c->d->db, c->user, enrol_got, c);
        return;
    }
    if (status != 0) {
        finish_error(c, 500, "storage failure");
        return;
    }
    reply_enrolment(c);
}

static void enrol_login_done(struct session_mgr *mgr, int status, struct session *s, void *data)
{
    struct totp_call *c = data;
    (void)mgr;
    (void)s;
    c->login = NULL;
    if (status != 0) {
        if (status == -EACCES)
            api__rate_fail(c->d, c->user, c->ip);
        http_req_on_abort(c->req, NULL, NULL);
        api__error_errno(c->req, status, "TOTP registration failed");
        call_free(c);
        return;
    }
    api__rate_ok(c->d, c->user, c->ip);
    api__vault_password(c->d, c->user, c->password);
    c->in_store = true;
    store_totp_get(c->d->db, c->user, enrol_got, c);
}

static struct totp_call *call_begin(struct api_deps *d, struct http_req *req)
{
    const char *username = http_req_param(req, "username");
    char norm[API_USER_MAX];
    if (!api__username(username, norm)) {
        api__error(req, 400, "invalid username");
        return NULL;
    }
    struct totp_call *c = mem_calloc(1, sizeof(*c));
    c->d = d;
    c->req = req;
    snprintf(c->user, sizeof(c->user), "%s", norm);
    api__client_ip(d, req, c->ip);
    if (!api__rate_check(d, req, c->user, c->ip)) {
        call_free(c);
        return NULL;
    }
    if (d->db == NULL) {
        api__error(req, 503, "no store configured");
        call_free(c);
        return NULL;
    }
    return c;
}

/* POST /totp/register/{username} — body: the password. */
static void handle_register(struct http_req *req, void *data)
{
    struct totp_call *c = call_begin(data, req);
    if (c == NULL)
        return;
    if (!api__password_body(req, c->password)) {
        api__error(req, 400, "the body must be the password (UTF-8 text, 1-1023 bytes)");
        call_free(c);
        return;
    }
    int rc = session_login(c->d->sessions, c->user, c->password, enrol_login_done, c, &c->login);
    if (rc < 0) {
        api__error_errno(req, rc, "TOTP registration failed");
        call_free(c);
        return;
    }
    http_req_on_abort(req, call_aborted, c);
}

/* ---- A9: login ---- */

static void auth_session_ready(int status, struct session *s, void *data)
{
    struct totp_call *c = data;
    (void)s;
    c->ensure = NULL;
    http_req_on_abort(c->req, NULL, NULL);
    if (status != 0) {
        api__error_errno(c->req, status == -ENOKEY ? -ENOKEY : status,
                         "xmpp session could not be established");
    } else {
        api__reply_tokens(c->d, c->req, c->user, c->family[0] ? c->family : NULL);
        log_info("login", "user=%s ip=%s method=totp", c->user, c->ip);
    }
    call_free(c);
}

static void auth_login_done(struct session_mgr *mgr, int status, struct session *s, void *data)
{
    struct totp_call *c = data;
    (void)mgr;
    c->login = NULL;
    if (status != 0) {
        if (status == -EACCES)
            api__rate_fail(c->d, c->user, c->ip);
        http_req_on_abort(c->req, NULL, NULL);
        api__error_errno(c->req, status, "TOTP authentication failed");
        call_free(c);
        return;
    }
    api__rate_ok(c->d, c->user, c->ip);
    api__vault_password(c->d, c->user, c->password);
    auth_session_ready(0, s, c);
}

static void auth_step_used(int status, void *data)
{
    struct totp_call *c = data;
    if (!store_back(c))
        return;
    if (status != 0) {
        api__rate_fail(c->d, c->user, c->ip);
        log_info("refused", "user=%s ip=%s why=%s", c->user, c->ip,
                 status == -ESTALE ? "code_reused" : "store");
        finish_error(c, 400,
                     status == -ESTALE ? "TOTP code already used" : "TOTP authentication failed");
        return;
    }
    if (c->has_password) { /* the password is the other factor: its verdict decides */
        int rc = session_login(c->d->sessions, c->user, c->password, auth_login_done, c, &c->login);
        if (rc < 0)
            auth_login_done(NULL, rc, NULL, c);
        return;
    }
    api__rate_ok(c->d, c->user, c->ip);
    c->ensure = api__ensure_session(c->d, c->user, auth_session_ready, c);
}

static void auth_got(int status, const struct store_totp *t, void *data)
{
    struct totp_call *c = data;
    if (!store_back(c))
        return;
    if (status != 0) {
        api__rate_fail(c->d, c->user, c->ip);
        finish_error(c, 400,
                     status == -ENOENT ? "user not registered for TOTP"
                                       : "TOTP authentication failed");
        return;
    }
    int64_t step = 0;
    int rc = totp_verify(t->secret, c->code, (int64_t)time(NULL), 1, &step);
    if (rc != 0) {
        api__rate_fail(c->d, c->user, c->ip);
        log_info("refused", "user=%s ip=%s why=wrong_code", c->user, c->ip);
        finish_error(c, 400, "TOTP authentication failed");
        return;
    }
    c->in_store = true;
    store_totp_use_step(c->d->db, c->user, step, auth_step_used, c);
}

/* POST /totp/authenticate/{username}/{code} — body: the password (unless single factor, or a
 * token of the user is in Authorization). */
static void handle_authenticate(struct http_req *req, void *data)
{
    struct api_deps *d = data;
    struct totp_call *c = call_begin(d, req);
    if (c == NULL)
        return;
    const char *code = http_req_param(req, "code");
    if (code == NULL || strlen(code) != TOTP_DIGITS || strspn(code, "0123456789") != TOTP_DIGITS) {
        api__error(req, 400, "the code must be 6 digits");
        call_free(c);
        return;
    }
    snprintf(c->code, sizeof(c->code), "%s", code);
    size_t bl;
    http_req_body(req, &bl);
    if (bl > 0) {
        if (!api__password_body(req, c->password)) {
            api__error(req, 400, "the body must be the password (UTF-8 text, 1-1023 bytes)");
            call_free(c);
            return;
        }
        c->has_password = true;
    } else if (!d->totp_single_factor) {
        const char *tok = auth_token_from_header(http_req_header(req, "authorization"));
        char tuser[API_USER_MAX];
        if (tok == NULL || auth_token_check(d->auth, tok, tuser, sizeof(tuser)) != JWT_OK ||
            strcmp(tuser, c->user) != 0) {
            api__rate_fail(d, c->user, c->ip);
            api__error(req, 401,
                       "TOTP login needs the password as the body or a valid token "
                       "of the user (auth.totp_single_factor is off)");
            call_free(c);
            return;
        }
        auth_token_family(d->auth, tok, c->family);
    }
    c->in_store = true;
    store_totp_get(d->db, c->user, auth_got, c);
    http_req_on_abort(req, call_aborted, c);
}

int api__totp_register(struct api_deps *d)
{
    int rc =
        http_route(d->http, HTTP_POST, API_PREFIX "/totp/register/{username}", handle_register, d);
    if (rc == 0)
        rc = http_route(d->http, HTTP_POST, API_PREFIX "/totp/authenticate/{username}/{code}",
                        handle_authenticate, d);
    return rc;
}
