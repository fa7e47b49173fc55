/* auth.h: access tokens. A token is a compact JWS (RFC 7515) signed with HS256 and nothing
 * else: the verifier accepts exactly the algorithm fixed for the key, so `alg: none` and
 * HS/RS confusion cannot happen. Claims follow the SparkWeb contract §2.3 (sub, aud,
 * permissions, iat, exp, iss) plus jti, the id under which the token table keeps it. A token is
 * valid when its signature checks, it has not expired, and its jti is still in the table
 * (so logout and teardown can revoke it). The signing key is 32 random bytes generated at first
 * start by store/ and handed in here. Owns no sockets and no files. Loop thread only, except
 * the pure functions auth_jwt_sign/verify, which any thread may call. */
#ifndef SPARKGATE_AUTH_AUTH_H
#define SPARKGATE_AUTH_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define AUTH_KEY_LEN    32
#define AUTH_FAMILY_LEN 33 /* refresh family ids: 32 hex characters */
#define AUTH_JTI_LEN    33 /* access token ids: 32 hex characters */

enum jwt_status {
    JWT_OK = 0,
    JWT_MALFORMED, /* not three base64url parts, bad JSON, missing claims */
    JWT_BAD_ALG,   /* header alg is not HS256 (including "none") */
    JWT_BAD_SIG,   /* signature does not verify */
    JWT_EXPIRED,   /* now >= exp */
    JWT_NOT_YET,   /* iat/nbf in the future beyond the allowed skew */
    JWT_WRONG_AUD, /* aud is not our domain */
    JWT_REVOKED,   /* not (or no longer) in the token table */
};

const char *jwt_status_str(enum jwt_status s);

/* Signs claims (a JSON object; borrowed) with key: returns the compact JWS (caller frees with
 * mem_free). */
char *auth_jwt_sign(const uint8_t key[AUTH_KEY_LEN], json_t *claims);
/* Verifies signature, alg, exp and iat (60 s skew) and aud (when aud != NULL). On JWT_OK
 * *claims_out (optional) gets a new reference to the claims object. */
enum jwt_status auth_jwt_verify(const uint8_t key[AUTH_KEY_LEN], const char *token, const char *aud,
                                int64_t now_s, json_t **claims_out);

struct auth;

/* The token table is kept in memory and written through to persistent storage by a journal the
 * caller supplies (main wires it to store/), so issued tokens and revocations survive a
 * restart. Records: access tokens by jti, refresh tokens by the hex SHA-256 of the token (the
 * token itself is never kept). */
enum auth_token_kind {
    AUTH_TOKEN_ACCESS = 1,
    AUTH_TOKEN_REFRESH = 2
};

struct auth_token_rec {
    const char *id; /* jti, or hex SHA-256 of a refresh token */
    const char *user;
    const char *family; /* refresh family ("" for a plain login without refresh) */
    int kind;           /* enum auth_token_kind */
    int64_t exp;        /* epoch seconds */
    bool used;          /* refresh token already rotated */
};

struct auth_journal {
    void (*put)(const struct auth_token_rec *r, void *data);
    void (*mark_used)(const char *id, void *data);
    void (*del)(const char *id, void *data);
    void (*del_user)(const char *user, void *data);
    void (*del_family)(const char *family, void *data);
    void *data;
};

struct auth_opts {
    uint8_t key[AUTH_KEY_LEN];          /* HS256 signing key (copied; wiped on auth_free) */
    const char *domain;                 /* aud claim */
    const char *issuer;                 /* iss claim (public base URL) */
    uint64_t lifetime_ms;               /* exp - iat */
    uint64_t refresh_lifetime_ms;       /* refresh tokens; 0: 30 days */
    const struct auth_journal *journal; /* optional; copied */
};

/* A token table with the given settings (strings copied). Never fails. */
struct auth *auth_new(const struct auth_opts *opts);
void auth_free(struct auth *a);

/* Issues a token for username (local part) and records it in the table. Caller frees. */
char *auth_token_issue(struct auth *a, const char *username);
/* Checks a token: signature, alg, exp, aud and presence in the table. On JWT_OK copies the
 * username (sub) into user (size userlen, truncated never: JWT_MALFORMED if it does not fit). */
enum jwt_status auth_token_check(struct auth *a, const char *token, char *user, size_t userlen);
/* The jti of a valid access token (as auth_token_check) into jti. 0, or -ENOENT. */
int auth_token_jti(struct auth *a, const char *token, char jti[AUTH_JTI_LEN]);
/* true while the access token with this jti is in the table, unexpired and issued to user
 * (something bound to a token, e.g. an SSE ticket, dies with it). */
bool auth_jti_live(struct auth *a, const char *jti, const char *user);
/* The refresh family of the access token with this jti ("" for none). 0, or -ENOENT. */
int auth_jti_family(struct auth *a, const char *jti, char family[AUTH_FAMILY_LEN]);
/* Removes one token from the table (logout). 0, or -ENOENT when it was not there. */
int auth_token_revoke(struct auth *a, const char *token);
/* Removes every token of username, access and refresh; returns how many. */
size_t auth_token_revoke_user(struct auth *a, const char *username);
/* Restricted tokens (contract §4.3: the token a Web Push payload carries for POST
 * /webpush/action): HS256 with the same key and claims sub, aud, iss, iat, exp, plus "scope"
 * and optionally "peer" (whom the holder may answer), but no jti: they are never in the token
 * table, so every route that calls auth_token_check refuses them, and issuing one creates no
 * session. auth_token_revoke_user (logout) voids those issued before it, in memory only.
 * Caller frees the token. */
char *auth_scoped_issue(struct auth *a, const char *username, const char *scope, const char *peer,
                        uint64_t lifetime_ms);
/* JWT_OK when token is a valid restricted token of scope: user (size userlen) and peer (size
 * peerlen; "" when absent) are filled. JWT_MALFORMED for a token of another kind or scope. */
enum jwt_status auth_scoped_check(struct auth *a, const char *token, const char *scope, char *user,
                                  size_t userlen, char *peer, size_t peerlen);
/* Number of live tokens in the table (for tests and metrics). */
size_t auth_token_count(const struct auth *a);

/* Puts a record loaded from storage back in the table (start-up; no journal call). Expired
 * records are ignored. */
void auth_token_restore(struct auth *a, const struct auth_token_rec *r);

/* Issues an access token and a refresh token of family (NULL or "": a new family) for username.
 * Both strings are for the caller to free. The refresh token is opaque ("sgr_" + 43 base64url
 * characters); only its hash is kept. */
void auth_token_issue_pair(struct auth *a, const char *username, const char *family, char **access,
                           char **refresh);
/* Spends a refresh token (rotation): on 0 the token is marked used and user and family (sizes
 * userlen, AUTH_FAMILY_LEN) name whom to issue the next pair for. -ENOENT unknown or expired;
 * -EALREADY the token had been used before: a stolen token is being replayed, so the whole
 * family (its refresh and access tokens) is revoked. */
int auth_refresh_use(struct auth *a, const char *refresh, char *user, size_t userlen,
                     char family[AUTH_FAMILY_LEN]);
/* The refresh family a valid access token belongs to ("" for none), so that a token-based
 * re-issue (A6's refresh branch, TOTP step-up) stays in the family and a family revocation
 * still reaches it. 0, or -ENOENT when the token is not in the table. */
int auth_token_family(struct auth *a, const char *token, char family[AUTH_FAMILY_LEN]);
/* Checks a refresh token without spending it: 0 with the user when it is live and unused;
 * -ENOENT or -EALREADY (and the family revoked) as auth_refresh_use. */
int auth_refresh_peek(struct auth *a, const char *refresh, char *user, size_t userlen);
/* Revokes a refresh token's family without spending it (logout with a refresh token). */
int auth_refresh_revoke(struct auth *a, const char *refresh);
/* Revokes every token (access and refresh) of a refresh family; returns how many. "" or NULL
 * revokes nothing. */
size_t auth_family_revoke(struct auth *a, const char *family);
/* Drops expired entries now (run now and then). Returns how many. */
size_t auth_token_prune(struct auth *a, int64_t now_s);

/* Seconds a newly issued access token lives (for expires_in). */
int64_t auth_token_lifetime_s(const struct auth *a);

/* Basic credentials (contract §2.1): "Basic <b64>" ("basic" too, or no prefix at all).
 * Decodes base64(user:password) into user and password (NUL-terminated, sizes given; the
 * password buffer is the caller's to wipe). 0, or -EINVAL when value is not Basic credentials
 * (e.g. a JWT) or does not fit. */
int auth_basic_parse(const char *value, char *user, size_t userlen, char *password, size_t passlen);

/* A short-lived cache of passwords verified by the XMPP server, kept as salted SHA-256 with a
 * per-process key, so Basic requests need not ask the server every time. */
/* true when password matches what was verified for user within ttl_ms. */
bool auth_pwcache_check(struct auth *a, const char *user, const char *password, uint64_t now_ms);
/* Remembers a verified password until now_ms + ttl_ms (ttl 0: do nothing). */
void auth_pwcache_put(struct auth *a, const char *user, const char *password, uint64_t now_ms,
                      uint64_t ttl_ms);
/* Forgets user's entry (failed verification, logout). */
void auth_pwcache_forget(struct auth *a, const char *user);

/* Extracts the token from an Authorization header value: the raw token, or "Bearer <t>"
 * (case-insensitive). Values "", "undefined", "null", "none", "unknown" count as absent.
 * Returns a pointer into value or NULL. */
const char *auth_token_from_header(const char *value);

#endif
