/* auth.c: HS256 JWS tokens and the token table. */
#include "auth/auth.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/params.h>

#include "core/b64.h"
#include "core/map.h"
#include "core/mem.h"
#include "core/rnd.h"

#define LOG_MODULE "auth"
#include "core/log.h"

#define JWT_MAX_LEN 8192
#define JWT_SKEW_S  60
#define PRUNE_EVERY 256

const char *jwt_status_str(enum jwt_status s)
{
    switch (s) {
    case JWT_OK:
        return "ok";
    case JWT_MALFORMED:
        return "malformed";
    case JWT_BAD_ALG:
        return "bad_alg";
    case JWT_BAD_SIG:
        return "bad_signature";
    case JWT_EXPIRED:
        return "expired";
    case JWT_NOT_YET:
        return "not_yet_valid";
    case JWT_WRONG_AUD:
        return "wrong_audience";
    case JWT_REVOKED:
        return "revoked";
    }
    return "unknown";
}

static void hs256(const uint8_t key[AUTH_KEY_LEN], const char *data, size_t len, uint8_t mac[32])
{
    unsigned int maclen = 32;
    HMAC(EVP_sha256(), key, AUTH_KEY_LEN, (const unsigned char *)data, len, mac, &maclen);
}

static char *b64url_json(json_t *j)
{
    char *text = json_dumps(j, JSON_COMPACT);
    char *enc = b64_encode(text, strlen(text), B64_URL, NULL);
    free(text);
    return enc;
}

char *auth_jwt_sign(const uint8_t key[AUTH_KEY_LEN], json_t *claims)
{
    json_t *hdr = json_pack("{s:s, s:s}", "alg", "HS256", "typ", "JWT");
    char *h = b64url_json(hdr);
    json_decref(hdr);
    char *p = b64url_json(claims);
    size_t hl = strlen(h), pl = strlen(p);
    size_t sl = hl + 1 + pl;
    char *out = mem_alloc(sl + 1 + 44);
    memcpy(out, h, hl);
    out[hl] = '.';
    memcpy(out + hl + 1, p, pl);
    out[sl] = '\0';
    uint8_t mac[32];
    hs256(key, out, sl, mac);
    char *sig = b64_encode(mac, sizeof(mac), B64_URL, NULL);
    out[sl] = '.';
    memcpy(out + sl + 1, sig, strlen(sig) + 1); /* 43 chars, space reserved above */
    mem_free(sig);
    mem_free(h);
    mem_free(p);
    return out;
}

static json_t *decode_part(const char *s, size_t len)
{
    uint8_t *raw;
    size_t rawlen;
    if (b64_decode(s, len, B64_URL, &raw, &rawlen) < 0)
        return NULL;
    json_t *j = json_loadb((const char *)raw, rawlen, JSON_REJECT_DUPLICATES, NULL);
    mem_free(raw);
    if (j != NULL && !json_is_object(j)) {
        json_decref(j);
        return NULL;
    }
    return j;
}

enum jwt_status auth_jwt_verify(const uint8_t key[AUTH_KEY_LEN], const char *token, const char *aud,
                                int64_t now_s, json_t **claims_out)
{
    size_t len = strnlen(token, JWT_MAX_LEN + 1);
    if (len > JWT_MAX_LEN)
        return JWT_MALFORMED;
    const char *d1 = memchr(token, '.', len);
    if (d1 == NULL)
        return JWT_MALFORMED;
    const char *d2 = memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - token));
    if (d2 == NULL || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - token)) != NULL)
        return JWT_MALFORMED;

    json_t *hdr = decode_part(token, (size_t)(d1 - token));
    if (hdr == NULL)
        return JWT_MALFORMED;
    const char *alg = json_string_value(json_object_get(hdr, "alg"));
    /* exactly the key's algorithm; "none", "HS512", "RS256"... are all refused */
    bool alg_ok = alg != NULL && strcmp(alg, "HS256") == 0;
    bool crit = json_object_get(hdr, "crit") != NULL;
    json_decref(hdr);
    if (!alg_ok || crit)
        return JWT_BAD_ALG;

    uint8_t *sig;
    size_t siglen;
    const char *s = d2 + 1;
    if (b64_decode(s, len - (size_t)(s - token), B64_URL, &sig, &siglen) < 0)
        return JWT_MALFORMED;
    uint8_t mac[32];
    hs256(key, token, (size_t)(d2 - token), mac);
    bool sig_ok = siglen == sizeof(mac) && CRYPTO_memcmp(sig, mac, sizeof(mac)) == 0;
    mem_free(sig);
    if (!sig_ok)
        return JWT_BAD_SIG;

    json_t *claims = decode_part(d1 + 1, (size_t)(d2 - d1 - 1));
    if (claims == NULL)
        return JWT_MALFORMED;
    enum jwt_status st = JWT_OK;
    json_t *exp = json_object_get(claims, "exp");
    json_t *iat = json_object_get(claims, "iat");
    json_t *nbf = json_object_get(claims, "nbf");
    json_t *sub = json_object_get(claims, "sub");
    if (!json_is_integer(exp) || !json_is_string(sub) || (iat && !json_is_integer(iat)) ||
        (nbf && !json_is_integer(nbf)))
        st = JWT_MALFORMED;
    else if (now_s >= json_integer_value(exp))
        st = JWT_EXPIRED;
    else if ((iat && json_integer_value(iat) > now_s + JWT_SKEW_S) ||
             (nbf && json_integer_value(nbf) > now_s + JWT_SKEW_S))
        st = JWT_NOT_YET;
    else if (aud != NULL) {
        const char *a = json_string_value(json_object_get(claims, "aud"));
        if (a == NULL || strcmp(a, aud) != 0)
            st = JWT_WRONG_AUD;
    }
    if (st == JWT_OK && claims_out != NULL)
        *claims_out = claims;
    else
        json_decref(claims);
    return st;
}

struct token_entry {
    int64_t exp;
    int kind;
    bool used;
    char family[AUTH_FAMILY_LEN];
    char user[];
};

struct pw_entry {
    uint64_t expires_ms;
    uint8_t salt[16];
    uint8_t hash[32];
};

struct auth {
    uint8_t key[AUTH_KEY_LEN];
    uint8_t pw_key[32]; /* keys the password cache's hashes; never leaves the process */
    char *domain;
    char *issuer;
    uint64_t lifetime_ms;
    uint64_t refresh_lifetime_ms;
    struct auth_journal journal;
    struct map *tokens;  /* jti -> struct token_entry (access) */
    struct map *refresh; /* hex SHA-256 -> struct token_entry (refresh) */
    struct map *pwcache; /* user -> struct pw_entry */
    struct map *cutoff;  /* user -> int64_t: scoped tokens issued before it are void */
    unsigned issued;
};

struct auth *auth_new(const struct auth_opts *opts)
{
    struct auth *a = mem_calloc(1, sizeof(*a));
    memcpy(a->key, opts->key, AUTH_KEY_LEN);
    rnd_bytes(a->pw_key, sizeof(a->pw_key));
    a->domain = mem_strdup(opts->domain);
    a->issuer = mem_strdup(opts->issuer);
    a->lifetime_ms = opts->lifetime_ms;
    a->refresh_lifetime_ms =
        opts->refresh_lifetime_ms ? opts->refresh_lifetime_ms : 30ULL * 86400 * 1000;
    if (opts->journal != NULL)
        a->journal = *opts->journal;
    a->tokens = map_new();
    a->refresh = map_new();
    a->pwcache = map_new();
    a->cutoff = map_new();
    return a;
}

static int free_entry(const char *key, void *value, void *data)
{
    (void)key;
    (void)data;
    mem_free(value);
    return 1;
}

static int free_pw(const char *key, void *value, void *data)
{
    (void)key;
    (void)data;
    OPENSSL_cleanse(value, sizeof(struct pw_entry));
    mem_free(value);
    return 1;
}

static int free_cutoff(const char *key, void *value, void *data)
{
    (void)key;
    (void)data;
    mem_free(value);
    return 1;
}

void auth_free(struct auth *a)
{
    if (a == NULL)
        return;
    OPENSSL_cleanse(a->key, sizeof(a->key));
    OPENSSL_cleanse(a->pw_key, sizeof(a->pw_key));
    map_walk(a->tokens, free_entry, NULL);
    map_free(a->tokens);
    map_walk(a->refresh, free_entry, NULL);
    map_free(a->refresh);
    map_walk(a->pwcache, free_pw, NULL);
    map_free(a->pwcache);
    map_walk(a->cutoff, free_cutoff, NULL);
    map_free(a->cutoff);
    mem_free(a->domain);
    mem_free(a->issuer);
    mem_free(a);
}

static int prune_expired(const char *key, void *value, void *data)
{
    (void)key;
    struct token_entry *e = value;
    int64_t *now = data;
    if (e->exp > now[0])
        return 0;
    mem_free(e);
    now[1]++;
    return 1;
}

size_t auth_token_prune(struct auth *a, int64_t now_s)
{
    int64_t ctx[2] = { now_s, 0 };
    map_walk(a->tokens, prune_expired, ctx);
    map_walk(a->refresh, prune_expired, ctx);
    return (size_t)ctx[1];
}

static struct token_entry *entry_new(const char *user, const char *family, int kind, int64_t exp)
{
    size_t ul = strlen(user);
    struct token_entry *e = mem_calloc(1, sizeof(*e) + ul + 1);
    e->exp = exp;
    e->kind = kind;
    snprintf(e->family, sizeof(e->family), "%s", family ? family : "");
    memcpy(e->user, user, ul + 1);
    return e;
}

static void journal_put(struct auth *a, const char *id, const struct token_entry *e)
{
    if (a->journal.put == NULL)
        return;
    struct auth_token_rec r = { .id = id,
                                .user = e->user,
                                .family = e->family,
                                .kind = e->kind,
                                .exp = e->exp,
                                .used = e->used };
    a->journal.put(&r, a->journal.data);
}

void auth_token_restore(struct auth *a, const struct auth_token_rec *r)
{
    if (r->exp <= (int64_t)time(NULL) || r->id == NULL || r->user == NULL)
        return;
    struct map *m = r->kind == AUTH_TOKEN_REFRESH ? a->refresh : a->tokens;
    struct token_entry *e = entry_new(r->user, r->family, r->kind, r->exp);
    e->used = r->used;
    mem_free(map_put(m, r->id, e));
}

static char *issue_access(struct auth *a, const char *username, const char *family)
{
    int64_t now = (int64_t)time(NULL);
    if (++a->issued % PRUNE_EVERY == 0)
        auth_token_prune(a, now);
    char jti[33];
    rnd_hex(jti, 16);
    int64_t exp = now + (int64_t)(a->lifetime_ms / 1000);
    json_t *claims = json_pack("{s:s, s:s, s:[s], s:I, s:I, s:s, s:s}", "sub", username, "aud",
                               a->domain, "permissions", "full", "iat", (json_int_t)now, "exp",
                               (json_int_t)exp, "iss", a->issuer, "jti", jti);
    char *tok = auth_jwt_sign(a->key, claims);
    json_decref(claims);
    struct token_entry *e = entry_new(username, family, AUTH_TOKEN_ACCESS, exp);
    map_put(a->tokens, jti, e);
    journal_put(a, jti, e);
    log_debug("token_issued", "user=%s jti=%.8s", username, jti);
    return tok;
}

char *auth_token_issue(struct auth *a, const char *username)
{
    return issue_access(a, username, "");
}

/* Hex SHA-256 of a refresh token: the only form in which it is kept. */
static void refresh_id(const char *token, char out[65])
{
    uint8_t md[32];
    unsigned int mdlen = 0;
    EVP_Digest(token, strlen(token), md, &mdlen, EVP_sha256(), NULL);
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[64] = '\0';
}

void auth_token_issue_pair(struct auth *a, const char *username, const char *family, char **access,
                           char **refresh)
{
    char fam[AUTH_FAMILY_LEN];
    if (family == NULL || family[0] == '\0')
        rnd_hex(fam, 16);
    else
        snprintf(fam, sizeof(fam), "%s", family);
    *access = issue_access(a, username, fam);

    uint8_t raw[32];
    rnd_bytes(raw, sizeof(raw));
    char *b = b64_encode(raw, sizeof(raw), B64_URL, NULL);
    OPENSSL_cleanse(raw, sizeof(raw));
    size_t len = strlen(b) + 5;
    *refresh = mem_alloc(len);
    snprintf(*refresh, len, "sgr_%s", b);
    OPENSSL_cleanse(b, strlen(b));
    mem_free(b);

    char id[65];
    refresh_id(*refresh, id);
    int64_t exp = (int64_t)time(NULL) + (int64_t)(a->refresh_lifetime_ms / 1000);
    struct token_entry *e = entry_new(username, fam, AUTH_TOKEN_REFRESH, exp);
    map_put(a->refresh, id, e);
    journal_put(a, id, e);
}

struct family_ctx {
    const char *family;
    size_t n;
};

static int drop_family(const char *key, void *value, void *data)
{
    (void)key;
    struct family_ctx *ctx = data;
    struct token_entry *e = value;
    if (ctx->family[0] == '\0' || strcmp(e->family, ctx->family) != 0)
        return 0;
    mem_free(e);
    ctx->n++;
    return 1;
}

static int refresh_check(struct auth *a, const char *refresh, char *user, size_t userlen,
                         char family[AUTH_FAMILY_LEN], bool spend);

static size_t revoke_family(struct auth *a, const char *family)
{
    struct family_ctx ctx = { family, 0 };
    map_walk(a->tokens, drop_family, &ctx);
    map_walk(a->refresh, drop_family, &ctx);
    if (a->journal.del_family != NULL)
        a->journal.del_family(family, a->journal.data);
    return ctx.n;
}

int auth_refresh_peek(struct auth *a, const char *refresh, char *user, size_t userlen)
{
    char fam[AUTH_FAMILY_LEN];
    return refresh_check(a, refresh, user, userlen, fam, false);
}

int auth_refresh_use(struct auth *a, const char *refresh, char *user, size_t userlen,
                     char family[AUTH_FAMILY_LEN])
{
    return refresh_check(a, refresh, user, userlen, family, true);
}

static int refresh_check(struct auth *a, const char *refresh, char *user, size_t userlen,
                         char family[AUTH_FAMILY_LEN], bool spend)
{
    if (refresh == NULL || strncmp(refresh, "sgr_", 4) != 0 || strlen(refresh) > 256)
        return -ENOENT;
    char id[65];
    refresh_id(refresh, id);
    struct token_entry *e = map_get(a->refresh, id);
    if (e == NULL || e->exp <= (int64_t)time(NULL))
        return -ENOENT;
    if (e->used) {
        char fam[AUTH_FAMILY_LEN];
        snprintf(fam, sizeof(fam), "%s", e->family);
        char *who = mem_strdup(e->user);
        size_t n = revoke_family(a, fam); /* frees e */
        log_warn("refresh_reuse", "user=%s family=%.8s revoked=%zu", who, fam, n);
        mem_free(who);
        return -EALREADY;
    }
    if (strlen(e->user) >= userlen)
        return -ENOENT;
    memcpy(user, e->user, strlen(e->user) + 1);
    snprintf(family, AUTH_FAMILY_LEN, "%s", e->family);
    if (spend) {
        e->used = true;
        if (a->journal.mark_used != NULL)
            a->journal.mark_used(id, a->journal.data);
    }
    return 0;
}

int auth_refresh_revoke(struct auth *a, const char *refresh)
{
    if (refresh == NULL || strncmp(refresh, "sgr_", 4) != 0 || strlen(refresh) > 256)
        return -ENOENT;
    char id[65];
    refresh_id(refresh, id);
    struct token_entry *e = map_get(a->refresh, id);
    if (e == NULL)
        return -ENOENT;
    char fam[AUTH_FAMILY_LEN];
    snprintf(fam, sizeof(fam), "%s", e->family);
    revoke_family(a, fam);
    return 0;
}

size_t auth_family_revoke(struct auth *a, const char *family)
{
    if (family == NULL || *family == '\0')
        return 0;
    return revoke_family(a, family);
}

int64_t auth_token_lifetime_s(const struct auth *a)
{
    return (int64_t)(a->lifetime_ms / 1000);
}

/* Verifies and returns the claims (new reference) or a failure status. */
static enum jwt_status token_claims(struct auth *a, const char *token, json_t **claims)
{
    return auth_jwt_verify(a->key, token, a->domain, (int64_t)time(NULL), claims);
}

enum jwt_status auth_token_check(struct auth *a, const char *token, char *user, size_t userlen)
{
    json_t *claims = NULL;
    enum jwt_status st = token_claims(a, token, &claims);
    if (st != JWT_OK)
        return st;
    const char *jti = json_string_value(json_object_get(claims, "jti"));
    const char *sub = json_string_value(json_object_get(claims, "sub"));
    struct token_entry *e = jti ? map_get(a->tokens, jti) : NULL;
    if (e == NULL || sub == NULL || strcmp(e->user, sub) != 0)
        st = JWT_REVOKED;
    else if (strlen(sub) >= userlen)
        st = JWT_MALFORMED;
    else
        memcpy(user, sub, strlen(sub) + 1);
    json_decref(claims);
    return st;
}

int auth_token_family(struct auth *a, const char *token, char family[AUTH_FAMILY_LEN])
{
    json_t *claims = NULL;
    if (token == NULL || token_claims(a, token, &claims) != JWT_OK)
        return -ENOENT;
    const char *jti = json_string_value(json_object_get(claims, "jti"));
    struct token_entry *e = jti ? map_get(a->tokens, jti) : NULL;
    if (e != NULL)
        snprintf(family, AUTH_FAMILY_LEN, "%s", e->family);
    json_decref(claims);
    return e != NULL ? 0 : -ENOENT;
}

int auth_token_jti(struct auth *a, const char *token, char jti[AUTH_JTI_LEN])
{
    json_t *claims = NULL;
    if (token == NULL || token_claims(a, token, &claims) != JWT_OK)
        return -ENOENT;
    const char *id = json_string_value(json_object_get(claims, "jti"));
    int rc = -ENOENT;
    if (id != NULL && strlen(id) < AUTH_JTI_LEN && map_get(a->tokens, id) != NULL) {
        memcpy(jti, id, strlen(id) + 1);
        rc = 0;
    }
    json_decref(claims);
    return rc;
}

bool auth_jti_live(struct auth *a, const char *jti, const char *user)
{
    const struct token_entry *e = map_get(a->tokens, jti);
    return e != NULL && e->exp > (int64_t)time(NULL) && strcmp(e->user, user) == 0;
}

int auth_jti_family(struct auth *a, const char *jti, char family[AUTH_FAMILY_LEN])
{
    const struct token_entry *e = jti ? map_get(a->tokens, jti) : NULL;
    if (e == NULL)
        return -ENOENT;
    snprintf(family, AUTH_FAMILY_LEN, "%s", e->family);
    return 0;
}

int auth_token_revoke(struct auth *a, const char *token)
{
    json_t *claims = NULL;
    if (token == NULL || token_claims(a, token, &claims) != JWT_OK)
        return -ENOENT;
    const char *jti = json_string_value(json_object_get(claims, "jti"));
    struct token_entry *e = jti ? map_remove(a->tokens, jti) : NULL;
    if (e != NULL && a->journal.del != NULL)
        a->journal.del(jti, a->journal.data);
    json_decref(claims);
    if (e == NULL)
        return -ENOENT;
    mem_free(e);
    return 0;
}

struct revoke_ctx {
    const char *user;
    size_t n;
};

static int revoke_user_entry(const char *key, void *value, void *data)
{
    (void)key;
    struct revoke_ctx *ctx = data;
    struct token_entry *e = value;
    if (strcmp(e->user, ctx->user) != 0)
        return 0;
    mem_free(e);
    ctx->n++;
    return 1;
}

size_t auth_token_revoke_user(struct auth *a, const char *username)
{
    struct revoke_ctx ctx = { username, 0 };
    int64_t *cut = map_get(a->cutoff, username);
    if (cut == NULL) {
        cut = mem_alloc(sizeof(*cut));
        map_put(a->cutoff, username, cut);
    }
    *cut = (int64_t)time(NULL);
    map_walk(a->tokens, revoke_user_entry, &ctx);
    map_walk(a->refresh, revoke_user_entry, &ctx);
    if (a->journal.del_user != NULL)
        a->journal.del_user(username, a->journal.data);
    return ctx.n;
}

char *auth_scoped_issue(struct auth *a, const char *username, const char *scope, const char *peer,
                        uint64_t lifetime_ms)
{
    int64_t now = (int64_t)time(NULL);
    json_t *claims = json_pack("{s:s, s:s, s:s, s:I, s:I, s:s}", "sub", username, "aud", a->domain,
                               "scope", scope, "iat", (json_int_t)now, "exp",
                               (json_int_t)(now + (int64_t)(lifetime_ms / 1000)), "iss", a->issuer);
    if (peer != NULL && *peer)
        json_object_set_new(claims, "peer", json_string(peer));
    char *tok = auth_jwt_sign(a->key, claims);
    json_decref(claims);
    log_debug("scoped_token_issued", "user=%s scope=%s", username, scope);
    return tok;
}

enum jwt_status auth_scoped_check(struct auth *a, const char *token, const char *scope, char *user,
                                  size_t userlen, char *peer, size_t peerlen)
{
    json_t *claims = NULL;
    enum jwt_status st = token_claims(a, token, &claims);
    if (st != JWT_OK)
        return st;
    const char *sub = json_string_value(json_object_get(claims, "sub"));
    const char *sc = json_string_value(json_object_get(claims, "scope"));
    const char *pe = json_string_value(json_object_get(claims, "peer"));
    json_int_t iat = json_integer_value(json_object_get(claims, "iat"));
    const int64_t *cut = sub ? map_get(a->cutoff, sub) : NULL;
    if (sub == NULL || sc == NULL || strcmp(sc, scope) != 0)
        st = JWT_MALFORMED;
    else if (cut != NULL && iat < *cut)
        st = JWT_REVOKED; /* issued before the user's last logout */
    else if (strlen(sub) >= userlen || (pe != NULL && strlen(pe) >= peerlen))
        st = JWT_MALFORMED;
    if (st == JWT_OK) {
        memcpy(user, sub, strlen(sub) + 1);
        snprintf(peer, peerlen, "%s", pe ? pe : "");
    }
    json_decref(claims);
    return st;
}

size_t auth_token_count(const struct auth *a)
{
    return map_count(a->tokens);
}

int auth_basic_parse(const char *value, char *user, size_t userlen, char *password, size_t passlen)
{
    if (value == NULL)
        return -EINVAL;
    while (*value == ' ')
        value++;
    if (strncasecmp(value, "Basic ", 6) == 0)
        value += 6;
    while (*value == ' ')
        value++;
    size_t vl = strlen(value);
    if (vl == 0 || vl > 4096 || strchr(value, '.') != NULL) /* a JWT has dots */
        return -EINVAL;
    size_t dl = 0;
    uint8_t *dec = NULL;
    if (b64_decode(value, vl, B64_STD, &dec, &dl) != 0 || dec == NULL)
        return -EINVAL;
    int rc = -EINVAL;
    uint8_t *colon = memchr(dec, ':', dl);
    if (colon != NULL && memchr(dec, '\0', dl) == NULL) {
        size_t ul = (size_t)(colon - dec), pl = dl - ul - 1;
        if (ul > 0 && ul < userlen && pl > 0 && pl < passlen) {
            memcpy(user, dec, ul);
            user[ul] = '\0';
            memcpy(password, colon + 1, pl);
            password[pl] = '\0';
            rc = 0;
        }
    }
    OPENSSL_cleanse(dec, dl);
    mem_free(dec);
    return rc;
}

static void pw_hash(const struct auth *a, const uint8_t salt[16], const char *user,
                    const char *password, uint8_t out[32])
{
    /* HMAC-SHA-256 keyed by a per-process secret over salt || user || NUL || password. */
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(mac);
    OSSL_PARAM params[] = { OSSL_PARAM_construct_utf8_string("digest", "SHA256", 0),
                            OSSL_PARAM_construct_end() };
    size_t outl = 0;
    EVP_MAC_init(ctx, a->pw_key, sizeof(a->pw_key), params);
    EVP_MAC_update(ctx, salt, 16);
    EVP_MAC_update(ctx, (const uint8_t *)user, strlen(user) + 1);
    EVP_MAC_update(ctx, (const uint8_t *)password, strlen(password));
    EVP_MAC_final(ctx, out, &outl, 32);
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(mac);
}

bool auth_pwcache_check(struct auth *a, const char *user, const char *password, uint64_t now_ms)
{
    struct pw_entry *e = map_get(a->pwcache, user);
    if (e == NULL)
        return false;
    if (e->expires_ms <= now_ms) {
        auth_pwcache_forget(a, user);
        return false;
    }
    uint8_t h[32];
    pw_hash(a, e->salt, user, password, h);
    bool ok = CRYPTO_memcmp(h, e->hash, 32) == 0;
    OPENSSL_cleanse(h, sizeof(h));
    return ok;
}

void auth_pwcache_put(struct auth *a, const char *user, const char *password, uint64_t now_ms,
                      uint64_t ttl_ms)
{
    if (ttl_ms == 0)
        return;
    struct pw_entry *e = mem_calloc(1, sizeof(*e));
    e->expires_ms = now_ms + ttl_ms;
    rnd_bytes(e->salt, sizeof(e->salt));
    pw_hash(a, e->salt, user, password, e->hash);
    struct pw_entry *old = map_put(a->pwcache, user, e);
    if (old != NULL)
        free_pw(NULL, old, NULL);
}

void auth_pwcache_forget(struct auth *a, const char *user)
{
    struct pw_entry *e = map_remove(a->pwcache, user);
    if (e != NULL)
        free_pw(NULL, e, NULL);
}

const char *auth_token_from_header(const char *value)
{
    if (value == NULL)
        return NULL;
    while (*value == ' ')
        value++;
    if (strncasecmp(value, "Bearer ", 7) == 0) {
        value += 7;
        while (*value == ' ')
            value++;
    }
    static const char *const absent[] = { "", "undefined", "null", "none", "unknown", NULL };
    for (int i = 0; absent[i]; i++) {
        if (strcasecmp(value, absent[i]) == 0)
            return NULL;
    }
    return value;
}
