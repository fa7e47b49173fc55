/* test_auth.c: HS256 tokens: issue/check/revoke, and every tampering case refused. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "auth/auth.h"
#include "auth/vault.h"
#include "core/b64.h"
#include "core/mem.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

static char *test_sign(const uint8_t *k, const char *data);

static const uint8_t key[AUTH_KEY_LEN] = "0123456789abcdef0123456789abcdef";
static const uint8_t other_key[AUTH_KEY_LEN] = "fedcba9876543210fedcba9876543210";

static struct auth *new_auth(void)
{
    struct auth_opts o = { .domain = "example.org",
                           .issuer = "https://gw.example.org",
                           .lifetime_ms = 3600 * 1000 };
    memcpy(o.key, key, sizeof(key));
    return auth_new(&o);
}

/* Builds header.payload.sig from raw JSON texts, signed with k (or a given signature). */
static char *forge(const char *hdr, const char *payload, const uint8_t *k, const char *sig)
{
    char *h = b64_encode(hdr, strlen(hdr), B64_URL, NULL);
    char *p = b64_encode(payload, strlen(payload), B64_URL, NULL);
    char buf[4096];
    snprintf(buf, sizeof(buf), "%s.%s", h, p);
    char *out;
    if (k != NULL) {
        out = test_sign(k, buf);
    } else {
        size_t l = strlen(buf) + strlen(sig) + 2;
        out = mem_alloc(l);
        snprintf(out, l, "%s.%s", buf, sig);
    }
    mem_free(h);
    mem_free(p);
    return out;
}

static char *test_sign(const uint8_t *k, const char *data)
{
    uint8_t mac[32];
    unsigned int ml = 32;
    HMAC(EVP_sha256(), k, AUTH_KEY_LEN, (const unsigned char *)data, strlen(data), mac, &ml);
    char *s = b64_encode(mac, 32, B64_URL, NULL);
    size_t l = strlen(data) + strlen(s) + 2;
    char *out = mem_alloc(l);
    snprintf(out, l, "%s.%s", data, s);
    mem_free(s);
    return out;
}

static void issued_token_checks_and_carries_contract_claims(void **state)
{
    (void)state;
    struct auth *a = new_auth();
    char *t = auth_token_issue(a, "alice");
    char user[64];
    assert_int_equal(auth_token_check(a, t, user, sizeof(user)), JWT_OK);
    assert_string_equal(user, "alice");
    json_t *claims = NULL;
    assert_int_equal(auth_jwt_verify(key, t, "example.org", time(NULL), &claims), JWT_OK);
    assert_string_equal(json_string_value(json_object_get(claims, "sub")), "alice");
    assert_string_equal(json_string_value(json_object_get(claims, "aud")), "example.org");
    assert_string_equal(json_string_value(json_object_get(claims, "iss")),
                        "https://gw.example.org");
    assert_string_equal(
        json_string_value(json_array_get(json_object_get(claims, "permissions"), 0)), "full");
    json_int_t iat = json_integer_value(json_object_get(claims, "iat"));
    json_int_t exp = json_integer_value(json_object_get(claims, "exp"));
    assert_int_equal(exp - iat, 3600);
    assert_true(llabs((long long)(iat - time(NULL))) <= 2);
    json_decref(claims);
    mem_free(t);
    auth_free(a);
}

static void revoked_token_is_refused(void **state)
{
    (void)state;
    struct auth *a = new_auth();
    char *t1 = auth_token_issue(a, "alice");
    char *t2 = auth_token_issue(a, "alice");
    char *t3 = auth_token_issue(a, "bob");
    char user[64];
    assert_int_equal(auth_token_revoke(a, t1), 0);
    assert_int_equal(auth_token_check(a, t1, user, sizeof(user)), JWT_REVOKED);
    assert_int_equal(auth_token_check(a, t2, user, sizeof(user)), JWT_OK);
    assert_int_equal(auth_token_revoke(a, t1), -ENOENT);
    assert_int_equal(auth_token_revoke_user(a, "alice"), 1);
    assert_int_equal(auth_token_check(a, t2, user, sizeof(user)), JWT_REVOKED);
    assert_int_equal(auth_token_check(a, t3, user, sizeof(user)), JWT_OK);
    assert_int_equal(auth_token_count(a), 1);
    mem_free(t1);
    mem_free(t2);
    mem_free(t3);
    auth_free(a);
}

struct tamper_case {
    const char *name;
    const char *hdr;
    const char *payload;
    const uint8_t *sign_key; /* NULL: use sig literally */
    const char *sig;
    enum jwt_status want;
};

#define FUTURE "4102444800" /* 2100-01-01 */
#define GOOD_PAYLOAD \
    "{\"sub\":\"alice\",\"aud\":\"example.org\",\"iat\":1700000000,\"exp\":" FUTURE "}"

static const struct tamper_case tamper_cases[] = {
    { "correct", "{\"alg\":\"HS256\",\"typ\":\"JWT\"}", GOOD_PAYLOAD, key, NULL, JWT_OK },
    { "alg none, empty sig", "{\"alg\":\"none\",\"typ\":\"JWT\"}", GOOD_PAYLOAD, NULL, "",
      JWT_BAD_ALG },
    { "alg None", "{\"alg\":\"None\"}", GOOD_PAYLOAD, NULL, "", JWT_BAD_ALG },
    { "alg HS512", "{\"alg\":\"HS512\"}", GOOD_PAYLOAD, key, NULL, JWT_BAD_ALG },
    { "alg RS256 (confusion)", "{\"alg\":\"RS256\"}", GOOD_PAYLOAD, key, NULL, JWT_BAD_ALG },
    { "no alg", "{\"typ\":\"JWT\"}", GOOD_PAYLOAD, key, NULL, JWT_BAD_ALG },
    { "crit header", "{\"alg\":\"HS256\",\"crit\":[\"x\"]}", GOOD_PAYLOAD, key, NULL, JWT_BAD_ALG },
    { "wrong key", "{\"alg\":\"HS256\"}", GOOD_PAYLOAD, other_key, NULL, JWT_BAD_SIG },
    { "garbage sig", "{\"alg\":\"HS256\"}", GOOD_PAYLOAD, NULL, "AAAA", JWT_BAD_SIG },
    { "expired", "{\"alg\":\"HS256\"}",
      "{\"sub\":\"alice\",\"aud\":\"example.org\",\"iat\":1600000000,\"exp\":1600000100}", key,
      NULL, JWT_EXPIRED },
    { "not yet valid", "{\"alg\":\"HS256\"}",
      "{\"sub\":\"alice\",\"aud\":\"example.org\",\"iat\":4000000000,\"exp\":" FUTURE "}", key,
      NULL, JWT_NOT_YET },
    { "wrong audience", "{\"alg\":\"HS256\"}",
      "{\"sub\":\"alice\",\"aud\":\"evil.org\",\"iat\":1700000000,\"exp\":" FUTURE "}", key, NULL,
      JWT_WRONG_AUD },
    { "no exp", "{\"alg\":\"HS256\"}", "{\"sub\":\"alice\",\"aud\":\"example.org\"}", key, NULL,
      JWT_MALFORMED },
    { "exp as string", "{\"alg\":\"HS256\"}",
      "{\"sub\":\"alice\",\"aud\":\"example.org\",\"exp\":\"" FUTURE "\"}", key, NULL,
      JWT_MALFORMED },
    { "payload not object", "{\"alg\":\"HS256\"}", "[1,2]", key, NULL, JWT_MALFORMED },
};

static void tampered_tokens_are_refused(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(tamper_cases) / sizeof(tamper_cases[0]); i++) {
        const struct tamper_case *c = &tamper_cases[i];
        char *t = forge(c->hdr, c->payload, c->sign_key, c->sig);
        enum jwt_status st = auth_jwt_verify(key, t, "example.org", time(NULL), NULL);
        if (st != c->want)
            fail_msg("case '%s': got %s want %s", c->name, jwt_status_str(st),
                     jwt_status_str(c->want));
        mem_free(t);
    }
}

static void malformed_strings_are_refused(void **state)
{
    (void)state;
    static const char *const bad[] = { "", "abc", "a.b", "a.b.c.d", "eyJ.eyJ.", "..", "!!.??.##" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        enum jwt_status st = auth_jwt_verify(key, bad[i], NULL, time(NULL), NULL);
        if (st == JWT_OK)
            fail_msg("'%s' accepted", bad[i]);
    }
    char *huge = mem_alloc(10000);
    memset(huge, 'a', 9999);
    huge[9999] = '\0';
    assert_int_equal(auth_jwt_verify(key, huge, NULL, time(NULL), NULL), JWT_MALFORMED);
    mem_free(huge);
}

static void a_valid_signature_from_another_table_is_revoked(void **state)
{
    (void)state;
    struct auth *a = new_auth();
    struct auth *b = new_auth(); /* same key, empty table: e.g. after a restart */
    char *t = auth_token_issue(a, "alice");
    char user[64];
    assert_int_equal(auth_token_check(b, t, user, sizeof(user)), JWT_REVOKED);
    mem_free(t);
    auth_free(a);
    auth_free(b);
}

static void authorization_header_forms(void **state)
{
    (void)state;
    assert_string_equal(auth_token_from_header("eyJ.a.b"), "eyJ.a.b");
    assert_string_equal(auth_token_from_header("Bearer eyJ.a.b"), "eyJ.a.b");
    assert_string_equal(auth_token_from_header("bearer  eyJ.a.b"), "eyJ.a.b");
    assert_null(auth_token_from_header(NULL));
    assert_null(auth_token_from_header(""));
    assert_null(auth_token_from_header("undefined"));
    assert_null(auth_token_from_header("null"));
    assert_null(auth_token_from_header("Bearer null"));
}

/* ---- refresh tokens, journal, Basic, password cache, vault ---- */

struct jlog {
    int puts, used, dels, del_users, del_fams;
    char last_family[64];
};

static void jl_put(const struct auth_token_rec *r, void *d)
{
    struct jlog *j = d;
    j->puts++;
    snprintf(j->last_family, sizeof(j->last_family), "%s", r->family);
}

static void jl_used(const char *id, void *d)
{
    (void)id;
    ((struct jlog *)d)->used++;
}

static void jl_del(const char *id, void *d)
{
    (void)id;
    ((struct jlog *)d)->dels++;
}

static void jl_del_user(const char *u, void *d)
{
    (void)u;
    ((struct jlog *)d)->del_users++;
}

static void jl_del_fam(const char *f, void *d)
{
    (void)f;
    ((struct jlog *)d)->del_fams++;
}

static struct auth *journaled(struct jlog *j, struct auth_journal *jr)
{
    *jr = (struct auth_journal){ jl_put, jl_used, jl_del, jl_del_user, jl_del_fam, j };
    struct auth_opts o = { .domain = "example.org",
                           .issuer = "https://gw.example.org",
                           .lifetime_ms = 3600 * 1000,
                           .journal = jr };
    memcpy(o.key, key, sizeof(key));
    return auth_new(&o);
}

static void refresh_rotation_and_reuse(void **state)
{
    (void)state;
    struct jlog j = { 0 };
    struct auth_journal jr;
    struct auth *a = journaled(&j, &jr);
    char *acc = NULL, *ref = NULL;
    auth_token_issue_pair(a, "alice", NULL, &acc, &ref);
    assert_int_equal(j.puts, 2);
    assert_int_equal(strncmp(ref, "sgr_", 4), 0);
    char user[64], fam[AUTH_FAMILY_LEN];
    assert_int_equal(auth_token_check(a, acc, user, sizeof(user)), JWT_OK);
    assert_int_equal(auth_refresh_peek(a, ref, user, sizeof(user)), 0);
    assert_int_equal(auth_refresh_use(a, ref, user, sizeof(user), fam), 0);
    assert_string_equal(user, "alice");
    assert_int_equal(j.used, 1);
    char *acc2 = NULL, *ref2 = NULL;
    auth_token_issue_pair(a, user, fam, &acc2, &ref2);
    assert_string_equal(j.last_family, fam);
    /* replaying the spent token revokes the family: both access tokens and the new refresh */
    assert_int_equal(auth_refresh_use(a, ref, user, sizeof(user), fam), -EALREADY);
    assert_int_equal(j.del_fams, 1);
    assert_int_equal(auth_token_check(a, acc, user, sizeof(user)), JWT_REVOKED);
    assert_int_equal(auth_token_check(a, acc2, user, sizeof(user)), JWT_REVOKED);
    assert_int_equal(auth_refresh_use(a, ref2, user, sizeof(user), fam), -ENOENT);
    assert_int_equal(auth_refresh_use(a, "sgr_unknown", user, sizeof(user), fam), -ENOENT);
    assert_int_equal(auth_refresh_use(a, "not-a-refresh", user, sizeof(user), fam), -ENOENT);
    mem_free(acc);
    mem_free(ref);
    mem_free(acc2);
    mem_free(ref2);
    auth_free(a);
}

static void restore_and_revoke_user(void **state)
{
    (void)state;
    struct jlog j = { 0 };
    struct auth_journal jr;
    struct auth *a = journaled(&j, &jr);
    char *tok = auth_token_issue(a, "bob");
    json_t *claims = NULL;
    assert_int_equal(auth_jwt_verify(key, tok, "example.org", time(NULL), &claims), JWT_OK);
    const char *jti = json_string_value(json_object_get(claims, "jti"));
    /* a second table (after a restart) knows the token only once restored */
    struct auth *b = new_auth();
    char user[64];
    assert_int_equal(auth_token_check(b, tok, user, sizeof(user)), JWT_REVOKED);
    struct auth_token_rec r = {
        .id = jti, .user = "bob", .family = "", .kind = AUTH_TOKEN_ACCESS, .exp = time(NULL) + 60
    };
    auth_token_restore(b, &r);
    assert_int_equal(auth_token_check(b, tok, user, sizeof(user)), JWT_OK);
    r.exp = time(NULL) - 1; /* expired records are ignored */
    r.id = "other";
    auth_token_restore(b, &r);
    assert_int_equal(auth_token_count(b), 1);
    assert_int_equal(auth_token_revoke_user(a, "bob"), 1);
    assert_int_equal(j.del_users, 1);
    json_decref(claims);
    mem_free(tok);
    auth_free(a);
    auth_free(b);
}

static void basic_forms(void **state)
{
    (void)state;
    char u[32], p[32];
    assert_int_equal(auth_basic_parse("Basic YWxpY2U6cHc6eA==", u, sizeof(u), p, sizeof(p)), 0);
    assert_string_equal(u, "alice");
    assert_string_equal(p, "pw:x"); /* only the first colon splits */
    assert_int_equal(auth_basic_parse("basic YWxpY2U6cHc=", u, sizeof(u), p, sizeof(p)), 0);
    assert_int_equal(auth_basic_parse("YWxpY2U6cHc=", u, sizeof(u), p, sizeof(p)), 0);
    assert_int_equal(auth_basic_parse("eyJh.eyJ.sig", u, sizeof(u), p, sizeof(p)), -EINVAL);
    assert_int_equal(auth_basic_parse("Basic bm9jb2xvbg==", u, sizeof(u), p, sizeof(p)), -EINVAL);
    assert_int_equal(auth_basic_parse("Basic OnB3", u, sizeof(u), p, sizeof(p)), -EINVAL);
    assert_int_equal(auth_basic_parse("Basic !!!", u, sizeof(u), p, sizeof(p)), -EINVAL);
    assert_int_equal(auth_basic_parse("", u, sizeof(u), p, sizeof(p)), -EINVAL);
    assert_int_equal(auth_basic_parse(NULL, u, sizeof(u), p, sizeof(p)), -EINVAL);
}

static void password_cache(void **state)
{
    (void)state;
    struct auth *a = new_auth();
    assert_false(auth_pwcache_check(a, "alice", "pw", 1000));
    auth_pwcache_put(a, "alice", "pw", 1000, 500);
    assert_true(auth_pwcache_check(a, "alice", "pw", 1200));
    assert_false(auth_pwcache_check(a, "alice", "pW", 1200));
    assert_false(auth_pwcache_check(a, "bob", "pw", 1200));
    assert_false(auth_pwcache_check(a, "alice", "pw", 1500)); /* expired */
    auth_pwcache_put(a, "alice", "pw", 2000, 500);
    auth_pwcache_forget(a, "alice");
    assert_false(auth_pwcache_check(a, "alice", "pw", 2100));
    auth_pwcache_put(a, "alice", "pw", 2000, 0); /* ttl 0 keeps nothing */
    assert_false(auth_pwcache_check(a, "alice", "pw", 2001));
    auth_free(a);
}

static void vault_seal_open(void **state)
{
    (void)state;
    uint8_t k[VAULT_KEY_LEN], k2[VAULT_KEY_LEN];
    memset(k, 7, sizeof(k));
    memset(k2, 8, sizeof(k2));
    size_t bl = 0, pl = 0;
    uint8_t *blob = vault_seal(k, "alice", "scram", "secret-bytes", 12, &bl);
    assert_non_null(blob);
    assert_int_equal(bl, 12 + VAULT_OVERHEAD);
    assert_null(memmem(blob, bl, "secret", 6));
    uint8_t *p = vault_open(k, "alice", "scram", blob, bl, &pl);
    assert_non_null(p);
    assert_int_equal(pl, 12);
    assert_memory_equal(p, "secret-bytes", 12);
    mem_free(p);
    assert_null(vault_open(k2, "alice", "scram", blob, bl, &pl));   /* other key */
    assert_null(vault_open(k, "bob", "scram", blob, bl, &pl));      /* other user */
    assert_null(vault_open(k, "alice", "password", blob, bl, &pl)); /* other kind */
    blob[bl - 1] ^= 1;
    assert_null(vault_open(k, "alice", "scram", blob, bl, &pl)); /* tampered */
    assert_null(vault_open(k, "alice", "scram", blob, 5, &pl));  /* truncated */
    uint8_t *b2 = vault_seal(k, "alice", "scram", "secret-bytes", 12, &bl);
    assert_memory_not_equal(b2 + 1, blob + 1, 12); /* fresh nonce per seal */
    mem_free(blob);
    mem_free(b2);
}

static void scoped_tokens_work_only_for_their_scope_and_die_at_logout(void **state)
{
    (void)state;
    struct auth *a = new_auth();
    char *t = auth_scoped_issue(a, "alice", "webpush.action", "bob", 3600 * 1000);
    char user[64], peer[64];
    assert_int_equal(
        auth_scoped_check(a, t, "webpush.action", user, sizeof(user), peer, sizeof(peer)), JWT_OK);
    assert_string_equal(user, "alice");
    assert_string_equal(peer, "bob");
    /* not a full token: every ordinary route refuses it; nor another scope */
    assert_int_equal(auth_token_check(a, t, user, sizeof(user)), JWT_REVOKED);
    assert_int_equal(auth_scoped_check(a, t, "other", user, sizeof(user), peer, sizeof(peer)),
                     JWT_MALFORMED);
    assert_int_equal(auth_token_count(a), 0);
    /* a full token is not a scoped one */
    char *full = auth_token_issue(a, "alice");
    assert_int_equal(
        auth_scoped_check(a, full, "webpush.action", user, sizeof(user), peer, sizeof(peer)),
        JWT_MALFORMED);
    /* issued before the user's logout: void */
    json_t *old = json_pack("{s:s, s:s, s:s, s:I, s:I}", "sub", "alice", "aud", "example.org",
                            "scope", "webpush.action", "iat", (json_int_t)time(NULL) - 10, "exp",
                            (json_int_t)time(NULL) + 3600);
    char *ot = auth_jwt_sign(key, old);
    json_decref(old);
    assert_int_equal(
        auth_scoped_check(a, ot, "webpush.action", user, sizeof(user), peer, sizeof(peer)), JWT_OK);
    assert_string_equal(peer, "");
    auth_token_revoke_user(a, "alice");
    assert_int_equal(
        auth_scoped_check(a, ot, "webpush.action", user, sizeof(user), peer, sizeof(peer)),
        JWT_REVOKED);
    mem_free(t);
    mem_free(ot);
    mem_free(full);
    auth_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(issued_token_checks_and_carries_contract_claims),
        cmocka_unit_test(revoked_token_is_refused),
        cmocka_unit_test(tampered_tokens_are_refused),
        cmocka_unit_test(malformed_strings_are_refused),
        cmocka_unit_test(a_valid_signature_from_another_table_is_revoked),
        cmocka_unit_test(authorization_header_forms),
        cmocka_unit_test(refresh_rotation_and_reuse),
        cmocka_unit_test(restore_and_revoke_user),
        cmocka_unit_test(basic_forms),
        cmocka_unit_test(password_cache),
        cmocka_unit_test(vault_seal_open),
        cmocka_unit_test(scoped_tokens_work_only_for_their_scope_and_die_at_logout),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
