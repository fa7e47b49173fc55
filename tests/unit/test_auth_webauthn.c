/* test_auth_webauthn.c: WebAuthn registration and assertion verification against the vectors
 * of tests/unit/data/webauthn/vectors.json (made by gen.mjs with the software authenticator):
 * each row's expected code, then truncation, mutation, random bytes, malformed CBOR, COSE
 * keys and every size limit at its bound and bound + 1. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <jansson.h>
#include <openssl/err.h>

#include "auth/webauthn.h"
#include "auth/webauthn_int.h"
#include "core/b64.h"
#include "core/mem.h"

#define VECTORS SG_SOURCE_DIR "/tests/unit/data/webauthn/vectors.json"

static json_t *vectors;
static const char *origins[2];

struct blob {
    uint8_t *p;
    size_t len;
};

static struct blob field(const json_t *row, const char *key)
{
    const char *s = json_string_value(json_object_get(row, key));
    struct blob b = { NULL, 0 };
    assert_non_null(s);
    assert_int_equal(b64_decode(s, strlen(s), B64_URL, &b.p, &b.len), 0);
    return b;
}

static void blob_free(struct blob *b)
{
    mem_free(b->p);
    b->p = NULL;
}

static int code_of(const char *s)
{
    if (strcmp(s, "OK") == 0)
        return 0;
    if (strcmp(s, "EINVAL") == 0)
        return -EINVAL;
    if (strcmp(s, "EACCES") == 0)
        return -EACCES;
    if (strcmp(s, "ENOTSUP") == 0)
        return -ENOTSUP;
    if (strcmp(s, "ESTALE") == 0)
        return -ESTALE;
    fail_msg("unknown code %s", s);
    return 1;
}

static struct webauthn_rp rp_of(const json_t *row)
{
    struct webauthn_rp rp = {
        .rp_id = json_string_value(json_object_get(vectors, "rp_id")),
        .origins = origins,
        .n_origins = 2,
        .require_uv = row != NULL && json_is_true(json_object_get(row, "require_uv")),
    };
    return rp;
}

static const json_t *find(const char *list, const char *name)
{
    const json_t *rows = json_object_get(vectors, list);
    for (size_t i = 0; i < json_array_size(rows); i++) {
        const json_t *row = json_array_get(rows, i);
        if (strcmp(json_string_value(json_object_get(row, "name")), name) == 0)
            return row;
    }
    fail_msg("no vector named %s", name);
    return NULL;
}

static int setup(void **state)
{
    (void)state;
    json_error_t jerr;
    vectors = json_load_file(VECTORS, 0, &jerr);
    if (vectors == NULL) {
        print_error("%s: %s\n", VECTORS, jerr.text);
        return -1;
    }
    origins[0] = "http://example.org:7070";
    origins[1] = json_string_value(json_object_get(vectors, "origin"));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    json_decref(vectors);
    return 0;
}

/* One registration with a row's clientData and a given attestationObject. */
static int reg_with(const json_t *row, const uint8_t *ao, size_t ao_len,
                    struct webauthn_new_cred *out, char *err, size_t errlen)
{
    struct webauthn_rp rp = rp_of(row);
    struct blob ch = field(row, "challenge"), cd = field(row, "client_data");
    int rc =
        webauthn_verify_registration(&rp, ch.p, ch.len, cd.p, cd.len, ao, ao_len, out, err, errlen);
    blob_free(&ch);
    blob_free(&cd);
    return rc;
}

static int reg_row(const json_t *row, struct webauthn_new_cred *out, char *err, size_t errlen)
{
    struct blob ao = field(row, "att_obj");
    int rc = reg_with(row, ao.p, ao.len, out, err, errlen);
    blob_free(&ao);
    return rc;
}

/* One assertion with a row's members, authData and signature replaceable. */
static int asr_with(const json_t *row, const uint8_t *ad, size_t ad_len, const uint8_t *sig,
                    size_t sig_len, uint32_t *new_count, char *err, size_t errlen)
{
    struct webauthn_rp rp = rp_of(row);
    struct blob ch = field(row, "challenge"), cd = field(row, "client_data");
    struct blob key = field(row, "cose_key");
    int alg = (int)json_integer_value(json_object_get(row, "alg"));
    uint32_t stored = (uint32_t)json_integer_value(json_object_get(row, "stored_count"));
    int rc = webauthn_verify_assertion(&rp, ch.p, ch.len, cd.p, cd.len, ad, ad_len, sig, sig_len,
                                       key.p, key.len, alg, stored, new_count, err, errlen);
    blob_free(&ch);
    blob_free(&cd);
    blob_free(&key);
    return rc;
}

static int asr_row(const json_t *row, uint32_t *new_count, char *err, size_t errlen)
{
    struct blob ad = field(row, "auth_data"), sig = field(row, "sig");
    int rc = asr_with(row, ad.p, ad.len, sig.p, sig.len, new_count, err, errlen);
    blob_free(&ad);
    blob_free(&sig);
    return rc;
}

static bool is_documented(int rc)
{
    return rc == 0 || rc == -EINVAL || rc == -EACCES || rc == -ENOTSUP || rc == -ESTALE;
}

static void check_new_cred(const json_t *row, const struct webauthn_new_cred *c, int *bad)
{
    struct blob id = field(row, "cred_id"), key = field(row, "cose_key");
    const char *name = json_string_value(json_object_get(row, "name"));
    if (c->cred_id_len != id.len || memcmp(c->cred_id, id.p, id.len) != 0 ||
        c->cose_key_len != key.len || memcmp(c->cose_key, key.p, key.len) != 0 ||
        c->alg != json_integer_value(json_object_get(row, "alg")) ||
        webauthn_cose_alg(c->cose_key, c->cose_key_len) != c->alg ||
        c->sign_count != json_integer_value(json_object_get(row, "sign_count")) ||
        c->flags != json_integer_value(json_object_get(row, "flags")) ||
        strcmp(c->fmt, json_string_value(json_object_get(row, "fmt"))) != 0 ||
        c->x5c != json_is_true(json_object_get(row, "x5c"))) {
        print_message("FAIL %s: credential fields differ\n", name);
        (*bad)++;
    }
    blob_free(&id);
    blob_free(&key);
}

static void registration_vectors_give_their_codes(void **state)
{
    (void)state;
    const json_t *rows = json_object_get(vectors, "registrations");
    int bad = 0;
    assert_true(json_array_size(rows) > 40);
    for (size_t i = 0; i < json_array_size(rows); i++) {
        const json_t *row = json_array_get(rows, i);
        const char *name = json_string_value(json_object_get(row, "name"));
        int want = code_of(json_string_value(json_object_get(row, "expect")));
        struct webauthn_new_cred c;
        char err[160] = "";
        int rc = reg_row(row, &c, err, sizeof(err));
        if (rc != want) {
            print_message("FAIL %s: got %d want %d (%s)\n", name, rc, want, err);
            bad++;
        } else if (rc == 0) {
            check_new_cred(row, &c, &bad);
        } else if (c.cred_id != NULL || c.cose_key != NULL || err[0] == '\0') {
            print_message("FAIL %s: output not clear or no message\n", name);
            bad++;
        }
        if (ERR_peek_error() != 0) {
            print_message("FAIL %s: OpenSSL error queue not empty\n", name);
            ERR_clear_error();
            bad++;
        }
        webauthn_new_cred_clear(&c);
    }
    assert_int_equal(bad, 0);
}

static void assertion_vectors_give_their_codes(void **state)
{
    (void)state;
    const json_t *rows = json_object_get(vectors, "assertions");
    int bad = 0;
    assert_true(json_array_size(rows) > 25);
    for (size_t i = 0; i < json_array_size(rows); i++) {
        const json_t *row = json_array_get(rows, i);
        const char *name = json_string_value(json_object_get(row, "name"));
        int want = code_of(json_string_value(json_object_get(row, "expect")));
        uint32_t n = 12345;
        char err[160] = "";
        int rc = asr_row(row, &n, err, sizeof(err));
        uint32_t want_n =
            rc == 0 ? (uint32_t)json_integer_value(json_object_get(row, "new_count")) : 0;
        if (rc != want || n != want_n) {
            print_message("FAIL %s: got %d count %u want %d (%s)\n", name, rc, n, want, err);
            bad++;
        }
        if (ERR_peek_error() != 0) {
            print_message("FAIL %s: OpenSSL error queue not empty\n", name);
            ERR_clear_error();
            bad++;
        }
    }
    assert_int_equal(bad, 0);
}

static void registration_refuses_every_truncated_attestation_object(void **state)
{
    (void)state;
    const json_t *row = find("registrations", "ES256 packed-x5c registers");
    struct blob ao = field(row, "att_obj");
    for (size_t len = 0; len < ao.len; len++) {
        struct webauthn_new_cred c;
        uint8_t *copy = mem_alloc(len); /* exact size, so ASan sees any overread */
        memcpy(copy, ao.p, len);
        assert_int_equal(reg_with(row, copy, len, &c, NULL, 0), -EINVAL);
        mem_free(copy);
    }
    blob_free(&ao);
}

/* Re-encodes an attestationObject {fmt, attStmt, authData} with authData replaced. */
static uint8_t *att_obj_with_auth_data(const struct blob *ao, const uint8_t *ad, size_t ad_len,
                                       size_t *out_len)
{
    struct cbor_load_result res;
    cbor_item_t *root = cbor_load(ao->p, ao->len, &res);
    assert_non_null(root);
    struct cbor_pair *pairs = cbor_map_handle(root);
    for (size_t i = 0; i < cbor_map_size(root); i++) {
        if (auth__cbor_text_eq(pairs[i].key, "authData")) {
            cbor_decref(&pairs[i].value);
            pairs[i].value = cbor_build_bytestring(ad, ad_len);
        }
    }
    uint8_t *buf = NULL;
    size_t cap = 0;
    size_t n = cbor_serialize_alloc(root, &buf, &cap);
    assert_true(n > 0);
    cbor_decref(&root);
    uint8_t *copy = mem_alloc(n);
    memcpy(copy, buf, n);
    free(buf);
    *out_len = n;
    return copy;
}

static void registration_refuses_truncated_or_extended_auth_data(void **state)
{
    (void)state;
    const char *names[] = { "ES256 packed registers", "RS256 none registers",
                            "packed with credProtect and hmac-secret extensions registers" };
    for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
        const json_t *row = find("registrations", names[k]);
        struct blob ao = field(row, "att_obj");
        struct cbor_load_result res;
        cbor_item_t *root = cbor_load(ao.p, ao.len, &res);
        const cbor_item_t *ad = NULL;
        for (size_t i = 0; i < cbor_map_size(root); i++) {
            if (auth__cbor_text_eq(cbor_map_handle(root)[i].key, "authData"))
                ad = cbor_map_handle(root)[i].value;
        }
        assert_non_null(ad);
        size_t full = cbor_bytestring_length(ad);
        uint8_t *longer = mem_alloc(full + 1);
        memcpy(longer, cbor_bytestring_handle(ad), full);
        longer[full] = 0;
        for (size_t len = 0; len <= full + 1; len++) {
            size_t n;
            uint8_t *mod = att_obj_with_auth_data(&ao, longer, len, &n);
            struct webauthn_new_cred c;
            char err[160];
            int rc = reg_with(row, mod, n, &c, err, sizeof(err));
            if (rc != (len == full ? 0 : -EINVAL))
                fail_msg("%s: authData cut to %zu of %zu: %d (%s)", names[k], len, full, rc, err);
            webauthn_new_cred_clear(&c);
            mem_free(mod);
        }
        mem_free(longer);
        cbor_decref(&root);
        blob_free(&ao);
    }
}

static void assertion_refuses_every_truncated_auth_data(void **state)
{
    (void)state;
    const json_t *row = find("assertions", "assertion with an hmac-secret extension verifies");
    struct blob ad = field(row, "auth_data"), sig = field(row, "sig");
    for (size_t len = 0; len < ad.len; len++) {
        uint32_t n;
        uint8_t *copy = mem_alloc(len);
        memcpy(copy, ad.p, len);
        assert_int_equal(asr_with(row, copy, len, sig.p, sig.len, &n, NULL, 0), -EINVAL);
        mem_free(copy);
    }
    blob_free(&ad);
    blob_free(&sig);
}

static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static uint32_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 11);
}

static void random_bytes_never_verify(void **state)
{
    (void)state;
    const json_t *reg = find("registrations", "ES256 none registers");
    const json_t *asr = find("assertions", "ES256 assertion verifies");
    struct blob sig = field(asr, "sig");
    for (int i = 0; i < 3000; i++) {
        size_t len = rng() % 400;
        uint8_t *buf = mem_alloc(len);
        for (size_t j = 0; j < len; j++)
            buf[j] = (uint8_t)rng();
        if (i % 3 == 0 && len > 0)
            buf[0] = (uint8_t)(0xa0 | (rng() % 4)); /* often a map, to get past the first byte */
        struct webauthn_new_cred c;
        uint32_t n;
        assert_int_equal(reg_with(reg, buf, len, &c, NULL, 0), -EINVAL);
        int rc = asr_with(asr, buf, len, sig.p, sig.len, &n, NULL, 0);
        assert_true(rc == -EINVAL || rc == -EACCES);
        assert_int_equal(webauthn_cose_alg(buf, len), 0);
        mem_free(buf);
    }
    blob_free(&sig);
}

static void flipping_any_byte_never_crashes(void **state)
{
    (void)state;
    const json_t *rows = json_object_get(vectors, "registrations");
    for (size_t i = 0; i < json_array_size(rows); i++) {
        const json_t *row = json_array_get(rows, i);
        const char *name = json_string_value(json_object_get(row, "name"));
        const char *expect = json_string_value(json_object_get(row, "expect"));
        if (strcmp(expect, "OK") != 0 || strstr(name, "1023") != NULL)
            continue;
        struct blob ao = field(row, "att_obj");
        for (size_t j = 0; j < ao.len; j++) {
            ao.p[j] ^= 0xff;
            struct webauthn_new_cred c;
            int rc = reg_with(row, ao.p, ao.len, &c, NULL, 0);
            if (!is_documented(rc) || rc == -ESTALE)
                fail_msg("%s: byte %zu: %d", name, j, rc);
            webauthn_new_cred_clear(&c);
            ao.p[j] ^= 0xff;
        }
        blob_free(&ao);
    }
}

static void malformed_cbor_is_refused(void **state)
{
    (void)state;
    const json_t *row = find("registrations", "ES256 none registers");
    static const uint8_t indefinite_map[] = { 0xbf, 0x63, 'f', 'm', 't', 0x64,
                                              'n',  'o',  'n', 'e', 0xff };
    static const uint8_t huge_map[] = { 0xba, 0xff, 0xff, 0xff, 0xff, 0x00 };
    static const uint8_t huge_bytes[] = { 0xa1, 0x63, 'f',  'm',  't',  0x5b, 0x7f,
                                          0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
    static const uint8_t tagged[] = { 0xc0, 0xa0 };
    static const uint8_t trailing[] = { 0xa0, 0x00 };
    static const uint8_t reserved[] = { 0xbc };
    static const uint8_t simple[] = { 0xf8, 0x20 };

    const struct {
        const uint8_t *p;
        size_t len;
    } cases[] = {
        { indefinite_map, sizeof(indefinite_map) },
        { huge_map, sizeof(huge_map) },
        { huge_bytes, sizeof(huge_bytes) },
        { tagged, sizeof(tagged) },
        { trailing, sizeof(trailing) },
        { reserved, sizeof(reserved) },
        { simple, sizeof(simple) },
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct webauthn_new_cred c;
        assert_int_equal(reg_with(row, cases[i].p, cases[i].len, &c, NULL, 0), -EINVAL);
    }
    /* 10,000 nested arrays: refused by depth, no deep recursion */
    size_t deep_len = 10000;
    uint8_t *deep = mem_alloc(deep_len);
    memset(deep, 0x81, deep_len - 1);
    deep[deep_len - 1] = 0xa0;
    struct webauthn_new_cred c;
    assert_int_equal(reg_with(row, deep, deep_len, &c, NULL, 0), -EINVAL);
    assert_int_equal(webauthn_cose_alg(deep, deep_len), 0);
    mem_free(deep);
}

/* COSE keys written out by hand. */
static uint8_t *cose_es256_key(const json_t *row, size_t *len)
{
    struct blob k = field(row, "cose_key");
    *len = k.len;
    return k.p;
}

static void cose_keys_are_checked(void **state)
{
    (void)state;
    const json_t *row = find("assertions", "assertion with alg 0 takes the key's alg");
    size_t len;
    uint8_t *key = cose_es256_key(row, &len);
    assert_int_equal(webauthn_cose_alg(key, len), WEBAUTHN_ES256);
    /* layout: a5 01 02 03 26 20 01 21 58 20 <x:32> 22 58 20 <y:32> */
    assert_int_equal(len, 77);
    assert_int_equal(key[0], 0xa5);
    struct auth__wa_key k;
    key[76] ^= 0x01; /* y off the curve */
    assert_int_equal(auth__cose_key_load(key, len, &k, NULL, 0), -EINVAL);
    assert_int_equal(ERR_peek_error(), 0);
    key[76] ^= 0x01;
    key[6] = 0x02; /* crv P-384 with alg -7 */
    assert_int_equal(auth__cose_key_load(key, len, &k, NULL, 0), -EINVAL);
    key[6] = 0x01;
    key[4] = 0x2f; /* alg -16: unsupported */
    assert_int_equal(auth__cose_key_load(key, len, &k, NULL, 0), -ENOTSUP);
    key[4] = 0x26;
    key[2] = 0x01; /* kty OKP with alg -7 */
    assert_int_equal(auth__cose_key_load(key, len, &k, NULL, 0), -EINVAL);
    key[2] = 0x02;
    key[5] = 0x03; /* label 3 twice: duplicate alg */
    assert_int_equal(auth__cose_key_load(key, len, &k, NULL, 0), -EINVAL);
    key[5] = 0x20;
    /* non-canonical integer (01 -> 18 01) is refused like libfido2 would */
    uint8_t *wide = mem_alloc(len + 1);
    wide[0] = 0xa5;
    wide[1] = 0x18;
    memcpy(wide + 2, key + 1, len - 1);
    assert_int_equal(auth__cose_key_load(wide, len + 1, &k, NULL, 0), -EINVAL);
    mem_free(wide);
    assert_int_equal(auth__cose_key_load(key, len, &k, NULL, 0), 0);
    assert_int_equal(k.alg, WEBAUTHN_ES256);
    auth__cose_key_free(&k);
    /* RSA-1024: a5 01 03 03 39 01 00 20 58 80 <n:128> 21 43 01 00 01 */
    uint8_t rsa[4 + 3 + 3 + 128 + 5] = {
        0xa4, 0x01, 0x03, 0x03, 0x39, 0x01, 0x00, 0x20, 0x58, 0x80
    };
    memset(rsa + 10, 0xc5, 128);
    memcpy(rsa + 138, (const uint8_t[]){ 0x21, 0x43, 0x01, 0x00, 0x01 }, 5);
    assert_int_equal(auth__cose_key_load(rsa, sizeof(rsa), &k, NULL, 0), -ENOTSUP);
    assert_int_equal(webauthn_cose_alg(rsa, sizeof(rsa)), 0);
    mem_free(key);
}

static void size_limits_hold_at_the_bound(void **state)
{
    (void)state;
    /* attestationObject: a fourth, ignored member pads a valid one to the bound exactly */
    const json_t *row = find("registrations", "ES256 none registers");
    struct blob ao = field(row, "att_obj");
    assert_int_equal(ao.p[0], 0xa3);
    for (size_t total = WEBAUTHN_ATT_OBJ_MAX; total <= WEBAUTHN_ATT_OBJ_MAX + 1; total++) {
        uint8_t *big = mem_calloc(1, total);
        big[0] = 0xa4;
        memcpy(big + 1, ao.p + 1, ao.len - 1);
        uint8_t *p = big + ao.len;
        size_t pad = total - ao.len - 4 - 5;
        memcpy(p,
               (const uint8_t[]){ 0x63, 'p', 'a', 'd', 0x5a, (uint8_t)(pad >> 24),
                                  (uint8_t)(pad >> 16), (uint8_t)(pad >> 8), (uint8_t)pad },
               9);
        struct webauthn_new_cred c;
        assert_int_equal(reg_with(row, big, total, &c, NULL, 0),
                         total == WEBAUTHN_ATT_OBJ_MAX ? 0 : -EINVAL);
        webauthn_new_cred_clear(&c);
        mem_free(big);
    }
    /* clientDataJSON: an extra member pads it ("none" signs nothing, so it still verifies) */
    struct blob cd = field(row, "client_data");
    struct blob ch = field(row, "challenge");
    struct webauthn_rp rp = rp_of(row);
    for (size_t total = WEBAUTHN_CLIENT_DATA_MAX; total <= WEBAUTHN_CLIENT_DATA_MAX + 1; total++) {
        char *big = mem_alloc(total);
        memcpy(big, cd.p, cd.len - 1); /* without the closing brace */
        size_t off = cd.len - 1;
        memcpy(big + off, ",\"pad\":\"", 8);
        off += 8;
        memset(big + off, 'x', total - off - 2);
        memcpy(big + total - 2, "\"}", 2);
        struct webauthn_new_cred c;
        assert_int_equal(webauthn_verify_registration(&rp, ch.p, ch.len, (uint8_t *)big, total,
                                                      ao.p, ao.len, &c, NULL, 0),
                         total == WEBAUTHN_CLIENT_DATA_MAX ? 0 : -EINVAL);
        webauthn_new_cred_clear(&c);
        mem_free(big);
    }
    /* assertion authData: the ED extensions map padded; at the bound only the signature fails */
    const json_t *asr = find("assertions", "ES256 assertion verifies");
    struct blob ad = field(asr, "auth_data"), sig = field(asr, "sig");
    for (size_t total = WEBAUTHN_AUTH_DATA_MAX; total <= WEBAUTHN_AUTH_DATA_MAX + 1; total++) {
        uint8_t *big = mem_calloc(1, total);
        memcpy(big, ad.p, 37);
        big[32] |= 0x80;
        size_t pad = total - 37 - 1 - 4 - 3;
        memcpy(
            big + 37,
            (const uint8_t[]){ 0xa1, 0x63, 'p', 'a', 'd', 0x59, (uint8_t)(pad >> 8), (uint8_t)pad },
            8);
        uint32_t n;
        assert_int_equal(asr_with(asr, big, total, sig.p, sig.len, &n, NULL, 0),
                         total == WEBAUTHN_AUTH_DATA_MAX ? -EACCES : -EINVAL);
        mem_free(big);
    }
    /* signature: garbage at the bound fails to verify, one byte more is refused unread */
    uint8_t *bigsig = mem_calloc(1, WEBAUTHN_SIG_MAX + 1);
    uint32_t n;
    assert_int_equal(asr_with(asr, ad.p, ad.len, bigsig, WEBAUTHN_SIG_MAX, &n, NULL, 0), -EACCES);
    assert_int_equal(asr_with(asr, ad.p, ad.len, bigsig, WEBAUTHN_SIG_MAX + 1, &n, NULL, 0),
                     -EINVAL);
    assert_int_equal(asr_with(asr, ad.p, ad.len, bigsig, 0, &n, NULL, 0), -EINVAL);
    mem_free(bigsig);
    blob_free(&ad);
    blob_free(&sig);
    blob_free(&cd);
    blob_free(&ch);
    blob_free(&ao);
}

static void huge_lengths_are_refused_before_reading(void **state)
{
    (void)state;
    const json_t *row = find("assertions", "ES256 assertion verifies");
    struct webauthn_rp rp = rp_of(row);
    uint8_t small[64] = { 0 };
    struct webauthn_new_cred c;
    uint32_t n;
    char err[128];
    assert_int_equal(webauthn_verify_registration(&rp, small, 32, small, 10, small, SIZE_MAX, &c,
                                                  err, sizeof(err)),
                     -EINVAL);
    assert_non_null(strstr(err, "size"));
    assert_int_equal(
        webauthn_verify_registration(&rp, small, 32, small, SIZE_MAX, small, 10, &c, NULL, 0),
        -EINVAL);
    assert_int_equal(webauthn_verify_registration(&rp, small, WEBAUTHN_CHALLENGE_MAX + 1, small, 10,
                                                  small, 10, &c, NULL, 0),
                     -EINVAL);
    assert_int_equal(webauthn_verify_assertion(&rp, small, 32, small, 10, small, SIZE_MAX, small, 8,
                                               small, 8, 0, 0, &n, NULL, 0),
                     -EINVAL);
    assert_int_equal(webauthn_verify_assertion(&rp, small, 32, small, 10, small, 37, small,
                                               SIZE_MAX, small, 8, 0, 0, &n, NULL, 0),
                     -EINVAL);
    assert_int_equal(webauthn_cose_alg(small, SIZE_MAX), 0);
    assert_int_equal(webauthn_cose_alg(small, WEBAUTHN_COSE_KEY_MAX + 1), 0);
}

static void null_arguments_are_refused(void **state)
{
    (void)state;
    const json_t *row = find("registrations", "ES256 none registers");
    struct webauthn_rp rp = rp_of(row);
    struct blob ch = field(row, "challenge"), cd = field(row, "client_data");
    struct blob ao = field(row, "att_obj");
    struct webauthn_new_cred c;
    uint32_t n;
    assert_int_equal(
        webauthn_verify_registration(NULL, ch.p, ch.len, cd.p, cd.len, ao.p, ao.len, &c, NULL, 0),
        -EINVAL);
    assert_int_equal(
        webauthn_verify_registration(&rp, NULL, 0, cd.p, cd.len, ao.p, ao.len, &c, NULL, 0),
        -EINVAL);
    assert_int_equal(
        webauthn_verify_registration(&rp, ch.p, ch.len, cd.p, cd.len, ao.p, ao.len, NULL, NULL, 0),
        -EINVAL);
    assert_int_equal(webauthn_verify_assertion(&rp, ch.p, ch.len, cd.p, cd.len, NULL, 0, NULL, 0,
                                               NULL, 0, 0, 0, &n, NULL, 0),
                     -EINVAL);
    assert_int_equal(webauthn_verify_assertion(&rp, ch.p, ch.len, cd.p, cd.len, ao.p, 40, ao.p, 8,
                                               ao.p, 8, 0, 0, NULL, NULL, 0),
                     -EINVAL);
    struct webauthn_rp no_origins = { .rp_id = "example.org", .origins = NULL, .n_origins = 0 };
    assert_int_equal(webauthn_verify_registration(&no_origins, ch.p, ch.len, cd.p, cd.len, ao.p,
                                                  ao.len, &c, NULL, 0),
                     -EACCES);
    assert_int_equal(
        webauthn_verify_registration(&rp, ch.p, ch.len, cd.p, cd.len, ao.p, ao.len, &c, NULL, 0),
        0);
    webauthn_new_cred_clear(&c);
    webauthn_new_cred_clear(&c); /* twice, and on NULL */
    webauthn_new_cred_clear(NULL);
    assert_int_equal(webauthn_cose_alg(NULL, 0), 0);
    blob_free(&ch);
    blob_free(&cd);
    blob_free(&ao);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(registration_vectors_give_their_codes),
        cmocka_unit_test(assertion_vectors_give_their_codes),
        cmocka_unit_test(registration_refuses_every_truncated_attestation_object),
        cmocka_unit_test(registration_refuses_truncated_or_extended_auth_data),
        cmocka_unit_test(assertion_refuses_every_truncated_auth_data),
        cmocka_unit_test(random_bytes_never_verify),
        cmocka_unit_test(flipping_any_byte_never_crashes),
        cmocka_unit_test(malformed_cbor_is_refused),
        cmocka_unit_test(cose_keys_are_checked),
        cmocka_unit_test(size_limits_hold_at_the_bound),
        cmocka_unit_test(huge_lengths_are_refused_before_reading),
        cmocka_unit_test(null_arguments_are_refused),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
