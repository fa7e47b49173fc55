/* webauthn_api.c: passkeys (contract §1.1 A4-A7, §2.7): registration and authentication
 * ceremonies with the contract's JSON shapes, plus listing and deleting a user's credentials.
 * Challenges are 32 random bytes, bound to user + ceremony kind, single use, and expire after
 * 5 minutes. Several credentials per user; registration does not delete the old ones (the
 * reference did, before the ceremony even finished). A6 with a token of the user in
 * Authorization is the reference's refresh branch. */
#include "api/api_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "auth/auth.h"
#include "auth/ratelimit.h"
#include "auth/webauthn.h"
#include "core/b64.h"
#include "core/map.h"
#include "core/mem.h"
#include "core/rnd.h"
#include "core/tick.h"
#include "session/session.h"
#include "store/store.h"
#include "xmpp/jid.h"

#define LOG_MODULE "webauthn"
#include "core/log.h"

#define CHALLENGE_LEN   32
#define CEREMONY_TTL_MS (5 * 60 * 1000)
#define MAX_CEREMONIES  100000
#define TIMEOUT_HINT_MS 300000

struct api_ceremony {
    uint64_t expires_ms;
    uint8_t challenge[CHALLENGE_LEN];
    uint8_t handle[64];
    size_t handle_len;
};

static int drop_ceremony(const char *key, void *value, void *data)
{
    (void)key;
    uint64_t *now = data;
    struct api_ceremony *c = value;
    if (now != NULL && c->expires_ms > *now)
        return 0;
    OPENSSL_cleanse(c, sizeof(*c));
    mem_free(c);
    return 1;
}

void api__webauthn_free(struct api_deps *d)
{
    map_walk(d->state->ceremonies, drop_ceremony, NULL);
}

/* Ceremonies are keyed by kind, user and challenge: a newer start (by anyone: the start
 * calls are public) never replaces a pending one, and the finish finds its own by the
 * challenge its clientDataJSON carries. */
static void ceremony_key(char *out, size_t len, const char *kind, const char *user,
                         const char *challenge_b64)
{
    snprintf(out, len, "%s:%s:%s", kind, user, challenge_b64);
}

static struct api_ceremony *ceremony_new(struct api_deps *d, const char *kind, const char *user)
{
    uint64_t now = tick_now(d->tick);
    if (map_count(d->state->ceremonies) >= MAX_CEREMONIES)
        map_walk(d->state->ceremonies, drop_ceremony, &now);
    if (map_count(d->state->ceremonies) >= MAX_CEREMONIES) {
        log_warn("ceremonies_full", "max=%d", MAX_CEREMONIES);
        return NULL;
    }
    struct api_ceremony *c = mem_calloc(1, sizeof(*c));
    c->expires_ms = now + CEREMONY_TTL_MS;
    rnd_bytes(c->challenge, sizeof(c->challenge));
    char *chal = b64_encode(c->challenge, sizeof(c->challenge), B64_URL, NULL);
    char key[API_USER_MAX + 80];
    ceremony_key(key, sizeof(key), kind, user, chal);
    mem_free(chal);
    map_put(d->state->ceremonies, key, c); /* a random challenge: no old entry */
    return c;
}

/* Takes (removes) the pending ceremony whose challenge the response's clientDataJSON names;
 * NULL when there is none (never started, spent, expired, or another user's or kind's).
 * The verifier then checks the challenge again, with the rest of clientDataJSON. */
static struct api_ceremony *ceremony_take(struct api_deps *d, const char *kind, const char *user,
                                          const uint8_t *client_data, size_t len)
{
    json_t *cd = json_loadb((const char *)client_data, len, 0, NULL);
    const char *chal = json_string_value(json_object_get(cd, "challenge"));
    struct api_ceremony *c = NULL;
    if (chal != NULL && strlen(chal) <= 64) {
        char key[API_USER_MAX + 80];
        ceremony_key(key, sizeof(key), kind, user, chal);
        c = map_remove(d->state->ceremonies, key);
    }
    json_decref(cd);
    if (c != NULL && c->expires_ms <= tick_now(d->tick)) {
        drop_ceremony(NULL, c, NULL);
        c = NULL;
    }
    return c;
}

static json_t *b64url(const void *p, size_t len)
{
    char *s = b64_encode(p, len, B64_URL, NULL);
    json_t *j = json_string(s);
    mem_free(s);
    return j;
}

/* The RP as auth/webauthn wants it; origins split from the comma-separated setting. */
struct rp_view {
    struct webauthn_rp rp;
    const char *origins[16];
    char buf[2048];
};

static void rp_view(const struct api_deps *d, struct rp_view *v)
{
    memset(v, 0, sizeof(*v));
    snprintf(v->buf, sizeof(v->buf), "%s", d->origins);
    char *save = NULL;
    for (char *t = strtok_r(v->buf, ", ", &save); t && v->rp.n_origins < 16;
         t = strtok_r(NULL, ", ", &save))
        v->origins[v->rp.n_origins++] = t;
    v->rp.origins = v->origins;
    v->rp.rp_id = d->rp_id;
    v->rp.require_uv = strcmp(d->user_verification, "required") == 0;
}

/* ---- calls ---- */

struct wa_call {
    struct api_call base;        /* first: the call's address is the struct's */
    json_t *body;                /* the browser's credential JSON (finish calls) */
    struct webauthn_new_cred nc; /* registration finish */
    uint32_t new_count;          /* authentication finish */
    uint8_t cred_id[1024];
    size_t cred_id_len;
    struct api_ceremony *cer;
};

static void wa_cleanup(struct api_call *base)
{
    struct wa_call *c = (struct wa_call *)base;
    json_decref(c->body);
    webauthn_new_cred_clear(&c->nc);
    if (c->cer)
        drop_ceremony(NULL, c->cer, NULL);
}

static struct wa_call *wa_begin(struct api_deps *d, struct http_req *req, bool rate)
{
    struct wa_call *c = (struct wa_call *)api__call_new(
        d, req, sizeof(struct wa_call), API_CALL_USER | API_CALL_DB | (rate ? API_CALL_RATE : 0));
    if (c != NULL) {
        c->base.cleanup = wa_cleanup;
        c->base.method = "webauthn";
    }
    return c;
}

/* The common start of the credential-list callbacks of both start calls: a new ceremony of
 * kind for the caller, or NULL once the call has ended (client gone, storage failure, table
 * full). */
static struct api_ceremony *listed_ceremony(struct wa_call *c, int status, const char *kind)
{
    if (!api__call_store_back(&c->base))
        return NULL;
    if (status != 0) {
        api__call_error(&c->base, 500, "storage failure");
        return NULL;
    }
    struct api_ceremony *cer = ceremony_new(c->base.d, kind, c->base.user);
    if (cer == NULL)
        api__call_error(&c->base, 503, "too many pending ceremonies");
    return cer;
}

/* ---- A4: registration start ---- */

static void reg_listed(int status, const struct store_webauthn_cred *creds, size_t n, void *data)
{
    struct wa_call *c = data;
    struct api_ceremony *cer = listed_ceremony(c, status, "reg");
    if (cer == NULL)
        return;
    if (n > 0 && creds[0].user_handle_len > 0) { /* one handle per user across credentials */
        memcpy(cer->handle, creds[0].user_handle, creds[0].user_handle_len);
        cer->handle_len = creds[0].user_handle_len;
    } else {
        cer->handle_len = 32;
        rnd_bytes(cer->handle, cer->handle_len);
    }
    json_t *exclude = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(exclude, json_pack("{s:s, s:o}", "type", "public-key", "id",
                                                 b64url(creds[i].id, creds[i].id_len)));
    json_t *params = json_pack("[{s:i, s:s}, {s:i, s:s}, {s:i, s:s}]", "alg", WEBAUTHN_ES256,
                               "type", "public-key", "alg", WEBAUTHN_EDDSA, "type", "public-key",
                               "alg", WEBAUTHN_RS256, "type", "public-key");
    json_t *pk = json_pack(
        "{s:{s:s, s:s}, s:{s:s, s:s, s:o}, s:o, s:o, s:o, s:s, s:i, s:{s:s, s:s}, s:{s:b}}", "rp",
        "name", c->base.d->rp_name, "id", c->base.d->rp_id, "user", "name", c->base.user,
        "displayName", c->base.user, "id", b64url(cer->handle, cer->handle_len), "challenge",
        b64url(cer->challenge, sizeof(cer->challenge)), "pubKeyCredParams", params,
        "excludeCredentials", exclude, "attestation", "none", "timeout", TIMEOUT_HINT_MS,
        "authenticatorSelection", "residentKey", "preferred", "userVerification",
        c->base.d->user_verification, "extensions", "credProps", 1);
    api__call_reply(&c->base, json_pack("{s:{s:o}}", "credentials", "publicKey", pk));
}

static void reg_login_done(struct session_mgr *mgr, int status, struct session *s, void *data)
{
    struct wa_call *c = data;
    (void)mgr;
    (void)s;
    if (!api__call_password_checked(&c->base, status, "WebAuthn registration failed"))
        return;
    c->base.in_store = true;
    store_webauthn_list(c->base.d->db, c->base.user, reg_listed, c);
}

/* POST /webauthn/register/start/{username} — body: the password. */
static void handle_reg_start(struct http_req *req, void *data)
{
    struct wa_call *c = wa_begin(data, req, true);
    if (c == NULL)
        return;
    if (!api__password_body(req, c->base.password)) {
        api__call_error(&c->base, 400, "the body must be the password (UTF-8 text, 1-1023 bytes)");
        return;
    }
    int rc = session_login(c->base.d->sessions, c->base.user, c->base.password, reg_login_done, c,
                           &c->base.login);
    if (rc < 0) {
        api__call_errno(&c->base, rc, "WebAuthn registration failed");
        return;
    }
    api__call_watch(&c->base);
}

/* ---- helpers for the finish calls ---- */

/* Decodes base64url member `name` of obj (a string); NULL when absent or invalid. */
static uint8_t *member_b64(json_t *obj, const char *name, size_t *len, bool allow_empty)
{
    const char *s = json_string_value(json_object_get(obj, name));
    if (s == NULL)
        return NULL;
    size_t sl = strlen(s);
    if (sl == 0) {
        if (!allow_empty)
            return NULL;
        *len = 0;
        return mem_calloc(1, 1);
    }
    uint8_t *out = NULL;
    if (sl > 200000 || b64_decode(s, sl, B64_URL, &out, len) != 0)
        return NULL;
    return out;
}

static json_t *parse_credential_body(struct http_req *req)
{
    size_t bl;
    const char *body = http_req_body(req, &bl);
    json_t *j = json_loadb(body, bl, 0, NULL);
    if (j == NULL || !json_is_object(j) || !json_is_object(json_object_get(j, "response")) ||
        strcmp(json_string_value(json_object_get(j, "type")) ?: "", "public-key") != 0) {
        json_decref(j);
        return NULL;
    }
    return j;
}

/* ---- A5: registration finish ---- */

static void reg_added(int status, void *data)
{
    struct wa_call *c = data;
    if (!api__call_store_back(&c->base))
        return;
    if (status != 0) {
        api__call_error(&c->base, 400,
                        status == -EEXIST ? "WebAuthn registration failed: credential already "
                                            "registered"
                                          : "WebAuthn registration failed");
        return;
    }
    log_info("registered", "user=%s alg=%d fmt=%s", c->base.user, c->nc.alg, c->nc.fmt);
    c->base.ensure = api__ensure_session(c->base.d, c->base.user, api__call_tokens, c);
}

/* POST /webauthn/register/finish/{username} — body: the browser's credential JSON. */
static void handle_reg_finish(struct http_req *req, void *data)
{
    struct wa_call *c = wa_begin(data, req, true);
    if (c == NULL)
        return;
    c->body = parse_credential_body(req);
    json_t *resp = c->body ? json_object_get(c->body, "response") : NULL;
    size_t cdl = 0, aol = 0;
    uint8_t *cd = resp ? member_b64(resp, "clientDataJSON", &cdl, false) : NULL;
    uint8_t *ao = resp ? member_b64(resp, "attestationObject", &aol, false) : NULL;
    char err[160] = "";
    int rc = -EINVAL;
    if (cd == NULL || ao == NULL) {
        snprintf(err, sizeof(err), "malformed credential");
    } else if ((c->cer = ceremony_take(c->base.d, "reg", c->base.user, cd, cdl)) == NULL) {
        snprintf(err, sizeof(err), "no pending registration (start again)");
    } else {
        struct rp_view v;
        rp_view(c->base.d, &v);
        rc = webauthn_verify_registration(&v.rp, c->cer->challenge, CHALLENGE_LEN, cd, cdl, ao, aol,
                                          &c->nc, err, sizeof(err));
    }
    mem_free(cd);
    mem_free(ao);
    if (rc != 0) {
        api__rate_fail(c->base.d, c->base.user, c->base.ip);
        log_info("refused", "user=%s ip=%s ceremony=register why=\"%s\"", c->base.user, c->base.ip,
                 err);
        char msg[256];
        snprintf(msg, sizeof(msg), "WebAuthn registration failed: %s", err);
        api__call_error(&c->base, 400, msg);
        return;
    }
    api__rate_ok(c->base.d, c->base.user, c->base.ip);
    struct store_webauthn_cred *sc = mem_calloc(1, sizeof(*sc));
    snprintf(sc->user, sizeof(sc->user), "%s", c->base.user);
    if (c->nc.cred_id_len > sizeof(sc->id)) {
        mem_free(sc);
        api__call_error(&c->base, 400, "WebAuthn registration failed: credential id too long");
        return;
    }
    memcpy(sc->id, c->nc.cred_id, c->nc.cred_id_len);
    sc->id_len = c->nc.cred_id_len;
    sc->cose_key = c->nc.cose_key;
    sc->cose_key_len = c->nc.cose_key_len;
    sc->alg = c->nc.alg;
    memcpy(sc->user_handle, c->cer->handle, c->cer->handle_len);
    sc->user_handle_len = c->cer->handle_len;
    sc->sign_count = c->nc.sign_count;
    sc->created = (int64_t)time(NULL);
    c->base.in_store = true;
    store_webauthn_add(c->base.d->db, sc, reg_added, c);
    mem_free(sc);
    api__call_watch(&c->base);
}

/* ---- A6: authentication start (or refresh) ---- */

static void auth_listed(int status, const struct store_webauthn_cred *creds, size_t n, void *data)
{
    struct wa_call *c = data;
    struct api_ceremony *cer = listed_ceremony(c, status, "auth");
    if (cer == NULL)
        return;
    json_t *allow = json_array(); /* always an array (page code reads .length) */
    for (size_t i = 0; i < n; i++)
        json_array_append_new(allow, json_pack("{s:s, s:o}", "type", "public-key", "id",
                                               b64url(creds[i].id, creds[i].id_len)));
    json_t *pk = json_pack("{s:o, s:s, s:o, s:s, s:i, s:{}}", "challenge",
                           b64url(cer->challenge, sizeof(cer->challenge)), "rpId", c->base.d->rp_id,
                           "allowCredentials", allow, "userVerification",
                           c->base.d->user_verification, "timeout", TIMEOUT_HINT_MS, "extensions");
    api__call_reply(&c->base, json_pack("{s:{s:o}}", "assertion", "publicKey", pk));
}

/* POST /webauthn/authenticate/start/{username} */
static void handle_auth_start(struct http_req *req, void *data)
{
    struct api_deps *d = data;
    struct wa_call *c = wa_begin(d, req, false);
    if (c == NULL)
        return;
    if (d->ratelimit_starts != NULL) { /* public: every start counts against the address */
        char key[80];
        snprintf(key, sizeof(key), "ip:%s", c->base.ip);
        uint64_t now = tick_now(d->tick), wait = ratelimit_check(d->ratelimit_starts, key, now);
        if (wait > 0) {
            char ra[32];
            snprintf(ra, sizeof(ra), "%llu", (unsigned long long)((wait + 999) / 1000));
            http_req_add_header(req, "Retry-After", ra);
            api__call_error(&c->base, 429, "too many authentication starts; retry later");
            return;
        }
        ratelimit_fail(d->ratelimit_starts, key, now);
    }
    const char *tok = auth_token_from_header(http_req_header(req, "authorization"));
    char tuser[API_USER_MAX];
    if (tok != NULL && auth_token_check(d->auth, tok, tuser, sizeof(tuser)) == JWT_OK &&
        strcmp(tuser, c->base.user) == 0) {
        /* the reference's refresh branch: a new token for a still-valid one, in its family */
        auth_token_family(d->auth, tok, c->base.family);
        c->base.ensure = api__ensure_session(d, c->base.user, api__call_tokens, c);
        api__call_watch(&c->base);
        return;
    }
    c->base.in_store = true;
    store_webauthn_list(d->db, c->base.user, auth_listed, c);
    api__call_watch(&c->base);
}

/* ---- A7: authentication finish ---- */

static void auth_used(int status, void *data)
{
    struct wa_call *c = data;
    if (!api__call_store_back(&c->base))
        return;
    if (status != 0) {
        api__rate_fail(c->base.d, c->base.user, c->base.ip);
        log_warn("refused", "user=%s ip=%s ceremony=authenticate why=%s", c->base.user, c->base.ip,
                 status == -ESTALE ? "sign_count_not_increasing" : "store");
        api__call_error(&c->base, 400,
                        status == -ESTALE ? "WebAuthn authentication failed: signature counter "
                                            "did not increase (cloned authenticator?)"
                                          : "WebAuthn authentication failed");
        return;
    }
    api__rate_ok(c->base.d, c->base.user, c->base.ip);
    c->base.ensure = api__ensure_session(c->base.d, c->base.user, api__call_tokens, c);
}

static void auth_finish_listed(int status, const struct store_webauthn_cred *creds, size_t n,
                               void *data)
{
    struct wa_call *c = data;
    if (!api__call_store_back(&c->base))
        return;
    const struct store_webauthn_cred *cred = NULL;
    for (size_t i = 0; status == 0 && i < n; i++) {
        if (creds[i].id_len == c->cred_id_len &&
            memcmp(creds[i].id, c->cred_id, c->cred_id_len) == 0)
            cred = &creds[i];
    }
    json_t *resp = json_object_get(c->body, "response");
    size_t cdl = 0, adl = 0, sgl = 0, uhl = 0;
    uint8_t *cd = member_b64(resp, "clientDataJSON", &cdl, false);
    uint8_t *ad = member_b64(resp, "authenticatorData", &adl, false);
    uint8_t *sg = member_b64(resp, "signature", &sgl, false);
    uint8_t *uh =
        json_object_get(resp, "userHandle") && !json_is_null(json_object_get(resp, "userHandle"))
            ? member_b64(resp, "userHandle", &uhl, true)
            : NULL;
    char err[160] = "";
    int rc = -EINVAL;
    if (cred == NULL) {
        snprintf(err, sizeof(err), "unknown credential");
        rc = -EACCES;
    } else if (cd == NULL || ad == NULL || sg == NULL) {
        snprintf(err, sizeof(err), "malformed assertion");
    } else if (uh != NULL && uhl > 0 &&
               (uhl != cred->user_handle_len || memcmp(uh, cred->user_handle, uhl) != 0)) {
        snprintf(err, sizeof(err), "user handle does not match");
        rc = -EACCES;
    } else {
        struct rp_view v;
        rp_view(c->base.d, &v);
        rc = webauthn_verify_assertion(&v.rp, c->cer->challenge, CHALLENGE_LEN, cd, cdl, ad, adl,
                                       sg, sgl, cred->cose_key, cred->cose_key_len, cred->alg,
                                       cred->sign_count, &c->new_count, err, sizeof(err));
    }
    mem_free(cd);
    mem_free(ad);
    mem_free(sg);
    mem_free(uh);
    if (rc != 0) {
        api__rate_fail(c->base.d, c->base.user, c->base.ip);
        log_info("refused", "user=%s ip=%s ceremony=authenticate why=\"%s\"", c->base.user,
                 c->base.ip, err);
        char msg[256];
        snprintf(msg, sizeof(msg), "WebAuthn authentication failed: %s", err);
        api__call_error(&c->base, 400, msg);
        return;
    }
    c->base.in_store = true;
    store_webauthn_use(c->base.d->db, c->base.user, c->cred_id, c->cred_id_len, c->new_count,
                       auth_used, c);
}

/* POST /webauthn/authenticate/finish/{username} — body: the browser's assertion JSON. */
static void handle_auth_finish(struct http_req *req, void *data)
{
    struct wa_call *c = wa_begin(data, req, true);
    if (c == NULL)
        return;
    c->body = parse_credential_body(req);
    size_t idl = 0, cdl = 0;
    uint8_t *id = c->body ? member_b64(c->body, "rawId", &idl, false) : NULL;
    if (id == NULL && c->body != NULL)
        id = member_b64(c->body, "id", &idl, false);
    json_t *resp = c->body ? json_object_get(c->body, "response") : NULL;
    uint8_t *cd = resp ? member_b64(resp, "clientDataJSON", &cdl, false) : NULL;
    const char *why = NULL;
    if (c->body == NULL || id == NULL || idl > sizeof(c->cred_id) || cd == NULL)
        why = "malformed assertion";
    else if ((c->cer = ceremony_take(c->base.d, "auth", c->base.user, cd, cdl)) == NULL)
        why = "no pending authentication (start again)";
    mem_free(cd);
    if (why != NULL) {
        mem_free(id);
        api__rate_fail(c->base.d, c->base.user, c->base.ip);
        char msg[256];
        snprintf(msg, sizeof(msg), "WebAuthn authentication failed: %s", why);
        api__call_error(&c->base, 400, msg);
        return;
    }
    memcpy(c->cred_id, id, idl);
    c->cred_id_len = idl;
    mem_free(id);
    c->base.in_store = true;
    store_webauthn_list(c->base.d->db, c->base.user, auth_finish_listed, c);
    api__call_watch(&c->base);
}

/* ---- credential management (our addition) ---- */

struct list_call {
    struct http_req *req;
    bool aborted, done;
    char id[1024];
};

static void list_aborted(struct http_req *req, void *data)
{
    (void)req;
    ((struct list_call *)data)->aborted = true;
}

static void creds_listed(int status, const struct store_webauthn_cred *creds, size_t n, void *data)
{
    struct list_call *l = data;
    if (l->aborted) {
        mem_free(l);
        return;
    }
    http_req_on_abort(l->req, NULL, NULL);
    if (status != 0) {
        api__error(l->req, 500, "storage failure");
        mem_free(l);
        return;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(
            arr,
            json_pack("{s:o, s:i, s:I, s:I, s:I}", "id", b64url(creds[i].id, creds[i].id_len),
                      "alg", creds[i].alg, "signCount", (json_int_t)creds[i].sign_count, "created",
                      (json_int_t)creds[i].created, "lastUsed", (json_int_t)creds[i].last_used));
    http_reply_json(l->req, 200, json_pack("{s:o}", "credentials", arr));
    mem_free(l);
}

/* GET /webauthn/credentials — the caller's passkeys. */
static void handle_list(struct http_req *req, const char *user, struct session *s,
                        struct api_deps *d)
{
    (void)s;
    if (d->db == NULL) {
        api__error(req, 503, "no store configured");
        return;
    }
    struct list_call *l = mem_calloc(1, sizeof(*l));
    l->req = req;
    store_webauthn_list(d->db, user, creds_listed, l);
    http_req_on_abort(req, list_aborted, l);
}

static void cred_deleted(int status, void *data)
{
    struct list_call *l = data;
    if (l->aborted) {
        mem_free(l);
        return;
    }
    http_req_on_abort(l->req, NULL, NULL);
    if (status == -ENOENT)
        api__error(l->req, 404, "no such credential");
    else if (status != 0)
        api__error(l->req, 500, "storage failure");
    else
        http_reply_empty(l->req, 200);
    mem_free(l);
}

/* DELETE /webauthn/credentials/{id} — removes one of the caller's passkeys. */
static void handle_delete(struct http_req *req, const char *user, struct session *s,
                          struct api_deps *d)
{
    (void)s;
    const char *id = http_req_param(req, "id");
    uint8_t *raw = NULL;
    size_t rl = 0;
    if (id == NULL || b64_decode(id, strlen(id), B64_URL, &raw, &rl) != 0 || rl == 0 || rl > 1024) {
        mem_free(raw);
        api__error(req, 400, "invalid credential id");
        return;
    }
    struct list_call *l = mem_calloc(1, sizeof(*l));
    l->req = req;
    store_webauthn_delete(d->db, user, raw, rl, cred_deleted, l);
    mem_free(raw);
    http_req_on_abort(req, list_aborted, l);
    log_info("credential_deleted", "user=%s", user);
}

int api__webauthn_register(struct api_deps *d)
{
    struct {
        const char *path;
        http_handler_cb *h;
    } pub[] = {
        { API_PREFIX "/webauthn/register/start/{username}", handle_reg_start },
        { API_PREFIX "/webauthn/register/finish/{username}", handle_reg_finish },
        { API_PREFIX "/webauthn/authenticate/start/{username}", handle_auth_start },
        { API_PREFIX "/webauthn/authenticate/finish/{username}", handle_auth_finish },
    };

    for (size_t i = 0; i < sizeof(pub) / sizeof(pub[0]); i++) {
        int rc = http_route(d->http, HTTP_POST, pub[i].path, pub[i].h, d);
        if (rc != 0)
            return rc;
    }
    int rc = api__route_user(d, HTTP_GET, API_PREFIX "/webauthn/credentials", handle_list, 0);
    if (rc == 0)
        rc = api__route_user(d, HTTP_DELETE, API_PREFIX "/webauthn/credentials/{id}", handle_delete,
                             0);
    return rc;
}
