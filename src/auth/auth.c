/* auth.c: HS256 JWS tokens and the token table. */
#include "auth/auth.h"

#include <errno.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "core/b64.h"
#include "core/map.h"
#include "core/mem.h"
#include "core/rnd.h"

#define LOG_MODULE "auth"
#include "core/log.h"

#define JWT_MAX_LEN   8192
#define JWT_SKEW_S    60
#define PRUNE_EVERY   256

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

static void hs256(const uint8_t key[AUTH_KEY_LEN], const char *data, size_t len,
                  uint8_t mac[32])
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

enum jwt_status auth_jwt_verify(const uint8_t key[AUTH_KEY_LEN], const char *token,
                                const char *aud, int64_t now_s, json_t **claims_out)
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
    char user[];
};

struct auth {
    uint8_t key[AUTH_KEY_LEN];
    char *domain;
    char *issuer;
    uint64_t lifetime_ms;
    struct map *tokens; /* jti -> struct token_entry */
    unsigned issued;
};

struct auth *auth_new(const struct auth_opts *opts)
{
    struct auth *a = mem_calloc(1, sizeof(*a));
    memcpy(a->key, opts->key, AUTH_KEY_LEN);
    a->domain = mem_strdup(opts->domain);
    a->issuer = mem_strdup(opts->issuer);
    a->lifetime_ms = opts->lifetime_ms;
    a->tokens = map_new();
    return a;
}

static int free_entry(const char *key, void *value, void *data)
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
    map_walk(a->tokens, free_entry, NULL);
    map_free(a->tokens);
    mem_free(a->domain);
    mem_free(a->issuer);
    mem_free(a);
}

static int prune_expired(const char *key, void *value, void *data)
{
    (void)key;
    struct token_entry *e = value;
    if (e->exp > *(int64_t *)data)
        return 0;
    mem_free(e);
    return 1;
}

char *auth_token_issue(struct auth *a, const char *username)
{
    int64_t now = (int64_t)time(NULL);
    if (++a->issued % PRUNE_EVERY == 0)
        map_walk(a->tokens, prune_expired, &now);
    char jti[33];
    rnd_hex(jti, 16);
    int64_t exp = now + (int64_t)(a->lifetime_ms / 1000);
    json_t *claims = json_pack("{s:s, s:s, s:[s], s:I, s:I, s:s, s:s}", "sub", username, "aud",
                               a->domain, "permissions", "full", "iat", (json_int_t)now, "exp",
                               (json_int_t)exp, "iss", a->issuer, "jti", jti);
    char *tok = auth_jwt_sign(a->key, claims);
    json_decref(claims);
    size_t ul = strlen(username);
    struct token_entry *e = mem_alloc(sizeof(*e) + ul + 1);
    e->exp = exp;
    memcpy(e->user, username, ul + 1);
    map_put(a->tokens, jti, e);
    log_debug("token_issued", "user=%s jti=%.8s", username, jti);
    return tok;
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
    if (e == NULL || strcmp(e->user, sub) != 0)
        st = JWT_REVOKED;
    else if (strlen(sub) >= userlen)
        st = JWT_MALFORMED;
    else
        memcpy(user, sub, strlen(sub) + 1);
    json_decref(claims);
    return st;
}

int auth_token_revoke(struct auth *a, const char *token)
{
    json_t *claims = NULL;
    if (token_claims(a, token, &claims) != JWT_OK)
        return -ENOENT;
    const char *jti = json_string_value(json_object_get(claims, "jti"));
    struct token_entry *e = jti ? map_remove(a->tokens, jti) : NULL;
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
    map_walk(a->tokens, revoke_user_entry, &ctx);
    return ctx.n;
}

size_t auth_token_count(const struct auth *a)
{
    return map_count(a->tokens);
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
