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

#define AUTH_KEY_LEN 32

enum jwt_status {
    JWT_OK = 0,
    JWT_MALFORMED,  /* not three base64url parts, bad JSON, missing claims */
    JWT_BAD_ALG,    /* header alg is not HS256 (including "none") */
    JWT_BAD_SIG,    /* signature does not verify */
    JWT_EXPIRED,    /* now >= exp */
    JWT_NOT_YET,    /* iat/nbf in the future beyond the allowed skew */
    JWT_WRONG_AUD,  /* aud is not our domain */
    JWT_REVOKED,    /* not (or no longer) in the token table */
};

const char *jwt_status_str(enum jwt_status s);

/* Signs claims (a JSON object; borrowed) with key: returns the compact JWS (caller frees with
 * mem_free). */
char *auth_jwt_sign(const uint8_t key[AUTH_KEY_LEN], json_t *claims);
/* Verifies signature, alg, exp and iat (60 s skew) and aud (when aud != NULL). On JWT_OK
 * *claims_out (optional) gets a new reference to the claims object. */
enum jwt_status auth_jwt_verify(const uint8_t key[AUTH_KEY_LEN], const char *token,
                                const char *aud, int64_t now_s, json_t **claims_out);

struct auth;

struct auth_opts {
    uint8_t key[AUTH_KEY_LEN]; /* HS256 signing key (copied; wiped on auth_free) */
    const char *domain;     /* aud claim */
    const char *issuer;     /* iss claim (public base URL) */
    uint64_t lifetime_ms;   /* exp - iat */
};

/* A token table with the given settings (strings copied). Never fails. */
struct auth *auth_new(const struct auth_opts *opts);
void auth_free(struct auth *a);

/* Issues a token for username (local part) and records it in the table. Caller frees. */
char *auth_token_issue(struct auth *a, const char *username);
/* Checks a token: signature, alg, exp, aud and presence in the table. On JWT_OK copies the
 * username (sub) into user (size userlen, truncated never: JWT_MALFORMED if it does not fit). */
enum jwt_status auth_token_check(struct auth *a, const char *token, char *user, size_t userlen);
/* Removes one token from the table (logout). 0, or -ENOENT when it was not there. */
int auth_token_revoke(struct auth *a, const char *token);
/* Removes every token of username; returns how many. */
size_t auth_token_revoke_user(struct auth *a, const char *username);
/* Number of live tokens in the table (for tests and metrics). */
size_t auth_token_count(const struct auth *a);

/* Extracts the token from an Authorization header value: the raw token, or "Bearer <t>"
 * (case-insensitive). Values "", "undefined", "null", "none", "unknown" count as absent.
 * Returns a pointer into value or NULL. */
const char *auth_token_from_header(const char *value);

#endif
