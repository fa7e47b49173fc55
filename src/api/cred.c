/* cred.c: the credential vault's glue (architecture §5): what the XMPP server lets us keep at a
 * password login (SCRAM SaltedPassword, FAST token; the password itself only when configured)
 * is sealed by auth/vault and stored; a password-less login (WebAuthn, TOTP, refresh, a token
 * whose user has no session) re-opens the session from it, and so does a session reconnecting
 * after an upstream loss (api_get_credential). Entries the server refuses are dropped. */
#include "api/api_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "auth/auth.h"
#include "auth/vault.h"
#include "core/b64.h"
#include "core/mem.h"
#include "session/session.h"
#include "store/store.h"
#include "xmpp/stream.h"

#define LOG_MODULE "vault"
#include "core/log.h"

static void vault_put(struct api_deps *d, const char *user, const char *kind, const char *plain,
                      size_t len)
{
    if (d->db == NULL)
        return;
    size_t blen = 0;
    uint8_t *blob = vault_seal(d->vault_key, user, kind, plain, len, &blen);
    if (blob == NULL) {
        log_error("seal_failed", "user=%s kind=%s", user, kind);
        return;
    }
    store_vault_put(d->db, user, kind, blob, blen, NULL, NULL);
    OPENSSL_cleanse(blob, blen);
    mem_free(blob);
    log_debug("stored", "user=%s kind=%s", user, kind);
}

void api_on_credential(const char *username, const struct xmpp_scram_cred *scram,
                       const struct xmpp_fast_token *fast, void *data)
{
    struct api_deps *d = data;
    if (scram != NULL) {
        char *sp = b64_encode(scram->salted_password, scram->salted_len, B64_STD, NULL);
        json_t *j = json_pack("{s:s, s:s, s:I, s:s}", "mech", scram->mech, "salt", scram->salt,
                              "iter", (json_int_t)scram->iterations, "sp", sp);
        char *text = json_dumps(j, JSON_COMPACT);
        vault_put(d, username, "scram", text, strlen(text));
        OPENSSL_cleanse(text, strlen(text));
        OPENSSL_cleanse(sp, strlen(sp));
        free(text);
        mem_free(sp);
        json_decref(j); /* jansson keeps copies: zeroing them is not possible; short-lived */
    }
    if (fast != NULL) {
        json_t *j = json_pack("{s:s, s:s, s:I}", "mech", fast->mech, "token", fast->token, "expiry",
                              (json_int_t)fast->expiry);
        char *text = json_dumps(j, JSON_COMPACT);
        vault_put(d, username, "fast", text, strlen(text));
        OPENSSL_cleanse(text, strlen(text));
        free(text);
        json_decref(j);
    }
}

void api__vault_password(struct api_deps *d, const char *user, const char *password)
{
    if (d->store_password)
        vault_put(d, user, "password", password, strlen(password));
}

/* ---- re-opening a session from the vault ---- */

enum {
    CAND_FAST,
    CAND_SCRAM,
    CAND_PASSWORD,
    CAND_N
};

static const char *const cand_kind[CAND_N] = { "fast", "scram", "password" };

struct api_ensure {
    struct api_deps *d;
    char user[API_USER_MAX];
    api_ensure_cb *cb;
    void *data;
    struct session_login *login;
    bool cancelled; /* while the store call runs */
    bool in_store;
    int tried;              /* next candidate index */
    uint8_t *plain[CAND_N]; /* opened entries (wiped) */
    size_t plain_len[CAND_N];
};

static void ensure_free(struct api_ensure *e)
{
    for (int i = 0; i < CAND_N; i++) {
        if (e->plain[i]) {
            OPENSSL_cleanse(e->plain[i], e->plain_len[i]);
            mem_free(e->plain[i]);
        }
    }
    mem_free(e);
}

static void ensure_next(struct api_ensure *e);

void api_on_credential_refused(const char *username, const char *kind, int status, void *data)
{
    struct api_deps *d = data;
    /* out of date: drop it so the next password login stores a fresh one */
    log_info("entry_stale", "user=%s kind=%s err=%s", username, kind, log_errname(status));
    store_vault_delete(d->db, username, kind, NULL, NULL);
}

static void ensure_login_done(struct session_mgr *mgr, int status, struct session *s, void *data)
{
    struct api_ensure *e = data;
    (void)mgr;
    e->login = NULL;
    if (status == 0 || e->tried == 0) {
        e->cb(status, s, e->data);
        ensure_free(e);
        return;
    }
    const char *kind = cand_kind[e->tried - 1];
    if (status == -ESTALE || status == -EACCES || status == -ENOTSUP) {
        api_on_credential_refused(e->user, kind, status, e->d);
        ensure_next(e);
        return;
    }
    e->cb(status, NULL, e->data);
    ensure_free(e);
}

static bool parse_scram(const uint8_t *plain, struct xmpp_scram_cred *out)
{
    json_t *j = json_loads((const char *)plain, 0, NULL);
    const char *mech = json_string_value(json_object_get(j, "mech"));
    const char *salt = json_string_value(json_object_get(j, "salt"));
    const char *sp = json_string_value(json_object_get(j, "sp"));
    json_int_t iter = json_integer_value(json_object_get(j, "iter"));
    bool ok = false;
    uint8_t *raw = NULL;
    size_t rl = 0;
    if (mech && salt && sp && iter > 0 && strlen(mech) < sizeof(out->mech) &&
        strlen(salt) < sizeof(out->salt) && b64_decode(sp, strlen(sp), B64_STD, &raw, &rl) == 0 &&
        rl <= sizeof(out->salted_password)) {
        snprintf(out->mech, sizeof(out->mech), "%s", mech);
        snprintf(out->salt, sizeof(out->salt), "%s", salt);
        out->iterations = (uint32_t)iter;
        memcpy(out->salted_password, raw, rl);
        out->salted_len = rl;
        ok = true;
    }
    if (raw) {
        OPENSSL_cleanse(raw, rl);
        mem_free(raw);
    }
    json_decref(j);
    return ok;
}

static bool parse_fast(const uint8_t *plain, struct xmpp_fast_token *out)
{
    json_t *j = json_loads((const char *)plain, 0, NULL);
    const char *mech = json_string_value(json_object_get(j, "mech"));
    const char *tok = json_string_value(json_object_get(j, "token"));
    bool ok = mech && tok && strlen(mech) < sizeof(out->mech) && strlen(tok) < sizeof(out->token);
    if (ok) {
        snprintf(out->mech, sizeof(out->mech), "%s", mech);
        snprintf(out->token, sizeof(out->token), "%s", tok);
        out->expiry = json_integer_value(json_object_get(j, "expiry"));
    }
    json_decref(j);
    return ok;
}

static void ensure_next(struct api_ensure *e)
{
    while (e->tried < CAND_N) {
        int i = e->tried++;
        if (e->plain[i] == NULL)
            continue;
        struct session_cred cred = { 0 };
        struct xmpp_scram_cred scram;
        struct xmpp_fast_token fast;
        if (i == CAND_FAST && parse_fast(e->plain[i], &fast))
            cred.fast = &fast;
        else if (i == CAND_SCRAM && parse_scram(e->plain[i], &scram))
            cred.scram = &scram;
        else if (i == CAND_PASSWORD)
            cred.password = (const char *)e->plain[i];
        else
            continue;
        int rc = session_open(e->d->sessions, e->user, &cred, ensure_login_done, e, &e->login);
        OPENSSL_cleanse(&scram, sizeof(scram));
        OPENSSL_cleanse(&fast, sizeof(fast));
        if (rc == 0) {
            log_debug("reopen", "user=%s kind=%s", e->user, cand_kind[i]);
            return;
        }
    }
    /* nothing usable: answer through session_open so the callback never runs inside a call */
    struct session_cred none = { 0 };
    e->tried = 0;
    if (session_open(e->d->sessions, e->user, &none, ensure_login_done, e, &e->login) < 0) {
        e->cb(-ENOKEY, NULL, e->data);
        ensure_free(e);
    }
}

/* ---- a credential for a reconnecting session ---- */

struct cred_fetch {
    struct api_deps *d;
    char user[API_USER_MAX];
    session_cred_cb *cb;
    void *arg;
};

/* Opens and parses the entry of kind i among ent; 0 with cred filled (pointing into the
 * out-parameters), or -ENOENT. */
static int fetch_candidate(struct cred_fetch *f, const struct store_vault_entry *ent, size_t n,
                           int i, struct session_cred *cred, struct xmpp_scram_cred *scram,
                           struct xmpp_fast_token *fast, uint8_t **plain, size_t *plain_len)
{
    for (size_t k = 0; k < n; k++) {
        if (strcmp(ent[k].kind, cand_kind[i]) != 0)
            continue;
        *plain = vault_open(f->d->vault_key, f->user, ent[k].kind, ent[k].blob, ent[k].blob_len,
                            plain_len);
        if (*plain == NULL) {
            log_warn("entry_unreadable", "user=%s kind=%s", f->user, ent[k].kind);
            return -ENOENT;
        }
        if (i == CAND_FAST && parse_fast(*plain, fast))
            cred->fast = fast;
        else if (i == CAND_SCRAM && parse_scram(*plain, scram))
            cred->scram = scram;
        else if (i == CAND_PASSWORD)
            cred->password = (const char *)*plain;
        else
            return -ENOENT;
        return 0;
    }
    return -ENOENT;
}

static void fetch_got(int status, const struct store_vault_entry *ent, size_t n, void *data)
{
    struct cred_fetch *f = data;
    if (status < 0) {
        f->cb(status == -ENOENT ? -ENOKEY : status, NULL, f->arg);
        mem_free(f);
        return;
    }
    int rc = -ENOKEY;
    for (int i = 0; i < CAND_N && rc != 0; i++) {
        if (i == CAND_PASSWORD && !f->d->store_password)
            continue; /* kept from an earlier configuration: not used now */
        struct session_cred cred = { 0 };
        struct xmpp_scram_cred scram;
        struct xmpp_fast_token fast;
        uint8_t *plain = NULL;
        size_t plain_len = 0;
        if (fetch_candidate(f, ent, n, i, &cred, &scram, &fast, &plain, &plain_len) == 0) {
            log_debug("reconnect_cred", "user=%s kind=%s", f->user, cand_kind[i]);
            f->cb(0, &cred, f->arg);
            rc = 0;
        }
        OPENSSL_cleanse(&scram, sizeof(scram));
        OPENSSL_cleanse(&fast, sizeof(fast));
        if (plain != NULL) {
            OPENSSL_cleanse(plain, plain_len);
            mem_free(plain);
        }
    }
    if (rc != 0)
        f->cb(rc, NULL, f->arg);
    mem_free(f);
}

void api_get_credential(const char *username, session_cred_cb *cb, void *arg, void *data)
{
    struct api_deps *d = data;
    struct cred_fetch *f = mem_calloc(1, sizeof(*f));
    f->d = d;
    snprintf(f->user, sizeof(f->user), "%s", username);
    f->cb = cb;
    f->arg = arg;
    store_vault_get(d->db, username, fetch_got, f); /* answers on a later loop turn */
}

static void ensure_vault_got(int status, const struct store_vault_entry *ent, size_t n, void *data)
{
    struct api_ensure *e = data;
    e->in_store = false;
    if (e->cancelled) {
        ensure_free(e);
        return;
    }
    for (size_t k = 0; status == 0 && k < n; k++) {
        for (int i = 0; i < CAND_N; i++) {
            if (strcmp(ent[k].kind, cand_kind[i]) != 0 || e->plain[i] != NULL)
                continue;
            if (i == CAND_PASSWORD && !e->d->store_password)
                continue; /* kept from an earlier configuration: not used now */
            e->plain[i] = vault_open(e->d->vault_key, e->user, ent[k].kind, ent[k].blob,
                                     ent[k].blob_len, &e->plain_len[i]);
            if (e->plain[i] == NULL)
                log_warn("entry_unreadable", "user=%s kind=%s", e->user, ent[k].kind);
        }
    }
    ensure_next(e);
}

struct api_ensure *api__ensure_session(struct api_deps *d, const char *user, api_ensure_cb *cb,
                                       void *data)
{
    struct api_ensure *e = mem_calloc(1, sizeof(*e));
    e->d = d;
    snprintf(e->user, sizeof(e->user), "%s", user);
    e->cb = cb;
    e->data = data;
    struct session_cred none = { 0 };
    if (session_find(d->sessions, user) != NULL || d->db == NULL) {
        /* online already (or no vault): session_open answers with it or -ENOKEY */
        e->tried = 0;
        if (session_open(d->sessions, user, &none, ensure_login_done, e, &e->login) == 0)
            return e;
        e->tried = CAND_N;
    }
    e->in_store = true;
    store_vault_get(d->db, user, ensure_vault_got, e);
    return e;
}

void api__ensure_cancel(struct api_ensure *e)
{
    if (e == NULL)
        return;
    if (e->in_store) {
        e->cancelled = true; /* freed when the store answers */
        return;
    }
    session_login_cancel(e->login);
    ensure_free(e);
}
