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
    struct api_call base; /* first: the call's address is the struct's */
    bool has_password;
    char code[8];
    char secret[128];
};

static void totp_cleanup(struct api_call *c)
{
    struct totp_call *t = (struct totp_call *)c;
    OPENSSL_cleanse(t->secret, sizeof(t->secret));
}

static struct totp_call *totp_new(struct api_deps *d, struct http_req *req)
{
    struct totp_call *c = (struct totp_call *)api__call_new(
        d, req, sizeof(struct totp_call), API_CALL_USER | API_CALL_RATE | API_CALL_DB);
    if (c != NULL) {
        c->base.cleanup = totp_cleanup;
        c->base.method = "totp";
    }
    return c;
}

/* ---- A8: enrolment ---- */

static void reply_enrolment(struct totp_call *c)
{
    char account[API_USER_MAX + 256];
    snprintf(account, sizeof(account), "%s@%s", c->base.user, c->base.d->domain);
    char *uri = totp_uri(c->base.d->totp_issuer, account, c->secret);
    char *svg = uri ? totp_qr_svg(uri) : NULL;
    if (svg == NULL) {
        mem_free(uri);
        api__call_error(&c->base, 500, "QR code could not be made");
        return;
    }
    char *b64 = b64_encode(svg, strlen(svg), B64_STD, NULL);
    size_t ul = strlen(b64) + 32;
    char *url = mem_alloc(ul);
    snprintf(url, ul, "data:image/svg+xml;base64,%s", b64);
    json_t *body = json_pack("{s:s, s:s, s:s}", "url", url, "otpauth", uri, "svg", svg);
    http_req_on_abort(c->base.req, NULL, NULL);
    http_reply_json(c->base.req, 200, body);
    log_info("enrolled", "user=%s", c->base.user);
    OPENSSL_cleanse(uri, strlen(uri));
    mem_free(uri);
    mem_free(svg);
    mem_free(b64);
    mem_free(url);
    api__call_free(&c->base);
}

static void enrol_created(int status, void *data);

static void enrol_got(int status, const struct store_totp *t, void *data)
{
    struct totp_call *c = data;
    if (!api__call_store_back(&c->base))
        return;
    if (status == 0) { /* re-enrolment keeps the secret (reference behaviour) */
        snprintf(c->secret, sizeof(c->secret), "%s", t->secret);
        reply_enrolment(c);
        return;
    }
    if (status != -ENOENT) {
        api__call_error(&c->base, 500, "storage failure");
        return;
    }
    totp_secret_new(c->secret, sizeof(c->secret));
    c->base.in_store = true;
    store_totp_create(c->base.d->db, c->base.user, c->secret, enrol_created, c);
}

static void enrol_created(int status, void *data)
{
    struct totp_call *c = data;
    if (!api__call_store_back(&c->base))
        return;
    if (status == -EEXIST) { /* a concurrent enrolment won: use its secret */
        c->base.in_store = true;
        store_totp_get(c->base.d->db, c->base.user, enrol_got, c);
        return;
    }
    if (status != 0) {
        api__call_error(&c->base, 500, "storage failure");
        return;
    }
    reply_enrolment(c);
}

static void enrol_login_done(struct session_mgr *mgr, int status, struct session *s, void *data)
{
    struct totp_call *c = data;
    (void)mgr;
    (void)s;
    if (!api__call_password_checked(&c->base, status, "TOTP registration failed"))
        return;
    c->base.in_store = true;
    store_totp_get(c->base.d->db, c->base.user, enrol_got, c);
}

/* POST /totp/register/{username} — body: the password. */
static void handle_register(struct http_req *req, void *data)
{
    struct totp_call *c = totp_new(data, req);
    if (c == NULL)
        return;
    if (!api__password_body(req, c->base.password)) {
        api__call_error(&c->base, 400, "the body must be the password (UTF-8 text, 1-1023 bytes)");
        return;
    }
    int rc = session_login(c->base.d->sessions, c->base.user, c->base.password, enrol_login_done, c,
                           &c->base.login);
    if (rc < 0) {
        api__call_errno(&c->base, rc, "TOTP registration failed");
        return;
    }
    api__call_watch(&c->base);
}

/* ---- A9: login ---- */

static void auth_login_done(struct session_mgr *mgr, int status, struct session *s, void *data)
{
    struct totp_call *c = data;
    (void)mgr;
    if (api__call_password_checked(&c->base, status, "TOTP authentication failed"))
        api__call_tokens(0, s, c);
}

static void auth_step_used(int status, void *data)
{
    struct totp_call *c = data;
    if (!api__call_store_back(&c->base))
        return;
    if (status != 0) {
        api__rate_fail(c->base.d, c->base.user, c->base.ip);
        log_info("refused", "user=%s ip=%s why=%s", c->base.user, c->base.ip,
                 status == -ESTALE ? "code_reused" : "store");
        api__call_error(&c->base, 400,
                        status == -ESTALE ? "TOTP code already used"
                                          : "TOTP authentication failed");
        return;
    }
    if (c->has_password) { /* the password is the other factor: its verdict decides */
        int rc = session_login(c->base.d->sessions, c->base.user, c->base.password, auth_login_done,
                               c, &c->base.login);
        if (rc < 0)
            auth_login_done(NULL, rc, NULL, c);
        return;
    }
    api__rate_ok(c->base.d, c->base.user, c->base.ip);
    c->base.ensure = api__ensure_session(c->base.d, c->base.user, api__call_tokens, c);
}

static void auth_got(int status, const struct store_totp *t, void *data)
{
    struct totp_call *c = data;
    if (!api__call_store_back(&c->base))
        return;
    if (status != 0) {
        api__rate_fail(c->base.d, c->base.user, c->base.ip);
        api__call_error(&c->base, 400,
                        status == -ENOENT ? "user not registered for TOTP"
                                          : "TOTP authentication failed");
        return;
    }
    int64_t step = 0;
    int rc = totp_verify(t->secret, c->code, (int64_t)time(NULL), 1, &step);
    if (rc != 0) {
        api__rate_fail(c->base.d, c->base.user, c->base.ip);
        log_info("refused", "user=%s ip=%s why=wrong_code", c->base.user, c->base.ip);
        api__call_error(&c->base, 400, "TOTP authentication failed");
        return;
    }
    c->base.in_store = true;
    store_totp_use_step(c->base.d->db, c->base.user, step, auth_step_used, c);
}

/* POST /totp/authenticate/{username}/{code} — body: the password (unless single factor, or a
 * token of the user is in Authorization). */
static void handle_authenticate(struct http_req *req, void *data)
{
    struct api_deps *d = data;
    struct totp_call *c = totp_new(d, req);
    if (c == NULL)
        return;
    const char *code = http_req_param(req, "code");
    if (code == NULL || strlen(code) != TOTP_DIGITS || strspn(code, "0123456789") != TOTP_DIGITS) {
        api__call_error(&c->base, 400, "the code must be 6 digits");
        return;
    }
    snprintf(c->code, sizeof(c->code), "%s", code);
    size_t bl;
    http_req_body(req, &bl);
    if (bl > 0) {
        if (!api__password_body(req, c->base.password)) {
            api__call_error(&c->base, 400,
                            "the body must be the password (UTF-8 text, 1-1023 bytes)");
            return;
        }
        c->has_password = true;
    } else if (!d->totp_single_factor) {
        const char *tok = auth_token_from_header(http_req_header(req, "authorization"));
        char tuser[API_USER_MAX];
        if (tok == NULL || auth_token_check(d->auth, tok, tuser, sizeof(tuser)) != JWT_OK ||
            strcmp(tuser, c->base.user) != 0) {
            api__rate_fail(d, c->base.user, c->base.ip);
            api__error(req, 401,
                       "TOTP login needs the password as the body or a valid token "
                       "of the user (auth.totp_single_factor is off)");
            api__call_free(&c->base);
            return;
        }
        auth_token_family(d->auth, tok, c->base.family);
    }
    c->base.in_store = true;
    store_totp_get(d->db, c->base.user, auth_got, c);
    api__call_watch(&c->base);
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
