/* webauthn_cose.c: a bounded CBOR loader in front of libcbor and COSE_Key (RFC 8152 §13,
 * RFC 8230 §4) parsing into libfido2 public keys, for webauthn.c. */
#include "auth/webauthn_int.h"

#include <errno.h>
#include <string.h>

#include <openssl/err.h>

#include "auth/webauthn.h"

/* Reads one CBOR head (RFC 8949 §3): major type, argument and head length. Indefinite lengths
 * and the reserved additional-information values are refused. */
static int cbor_head(const uint8_t *p, size_t len, bool canonical, unsigned *major, uint64_t *arg,
                     size_t *head_len)
{
    static const uint64_t shortest[4] = { 24, 0x100, 0x10000, 0x100000000 };
    if (len == 0)
        return -1;
    unsigned ai = p[0] & 0x1f;
    *major = p[0] >> 5;
    if (ai < 24) {
        *arg = ai;
        *head_len = 1;
        return 0;
    }
    if (ai > 27)
        return -1;
    size_t n = (size_t)1 << (ai - 24);
    if (len - 1 < n)
        return -1;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = v << 8 | p[1 + i];
    if (canonical && *major != 7 && v < shortest[ai - 24])
        return -1;
    *arg = v;
    *head_len = 1 + n;
    return 0;
}

/* The encoded length of the well-formed item at p, or 0. Work and libcbor's later allocations
 * stay linear in len: each array element or map entry needs at least one byte of input. */
static size_t cbor_scan(const uint8_t *p, size_t len, int depth, bool canonical)
{
    unsigned major;
    uint64_t arg;
    size_t head;
    if (depth > WEBAUTHN_CBOR_DEPTH || cbor_head(p, len, canonical, &major, &arg, &head) < 0)
        return 0;
    size_t left = len - head;
    switch (major) {
    case 0: /* unsigned */
    case 1: /* negative */
        return head;
    case 2: /* bytes */
    case 3: /* text */
        return arg <= left ? head + (size_t)arg : 0;
    case 4: /* array */
    case 5: /* map */ {
        if (major == 5 && arg > left / 2)
            return 0;
        if (arg > left)
            return 0;
        uint64_t n = major == 5 ? arg * 2 : arg;
        size_t off = head;
        for (uint64_t i = 0; i < n; i++) {
            size_t k = cbor_scan(p + off, len - off, depth + 1, canonical);
            if (k == 0)
                return 0;
            off += k;
        }
        return off;
    }
    case 7: { /* false, true, null, undefined and floats; no other simple values */
        unsigned ai = p[0] & 0x1f;
        return (ai >= 20 && ai <= 23) || (ai >= 25 && ai <= 27) ? head : 0;
    }
    default: /* tags: nothing in WebAuthn uses them */
        return 0;
    }
}

cbor_item_t *auth__cbor_load(const uint8_t *p, size_t len, bool canonical, size_t *used)
{
    if (p == NULL || len == 0)
        return NULL;
    size_t n = cbor_scan(p, len, 0, canonical);
    if (n == 0 || (used == NULL && n != len))
        return NULL;
    struct cbor_load_result res;
    cbor_item_t *it = cbor_load(p, n, &res);
    if (it == NULL)
        return NULL;
    if (res.error.code != CBOR_ERR_NONE || res.read != n) {
        cbor_decref(&it);
        return NULL;
    }
    if (used != NULL)
        *used = res.read;
    return it;
}

bool auth__cbor_text_eq(const cbor_item_t *it, const char *s)
{
    size_t n = strlen(s);
    if (!cbor_isa_string(it) || !cbor_string_is_definite(it) || cbor_string_length(it) != n)
        return false;
    return n == 0 || memcmp(cbor_string_handle(it), s, n) == 0;
}

int auth__cbor_int(const cbor_item_t *it, int64_t *v)
{
    bool neg = cbor_isa_negint(it);
    if (!neg && !cbor_isa_uint(it))
        return -1;
    uint64_t u = cbor_get_int(it);
    if (u > INT64_MAX)
        return -1;
    *v = neg ? -1 - (int64_t)u : (int64_t)u;
    return 0;
}

/* The bytes of a definite byte string of exactly `want` bytes, else NULL. */
static const uint8_t *cbor_bytes(const cbor_item_t *it, size_t want)
{
    if (it == NULL || !cbor_isa_bytestring(it) || !cbor_bytestring_is_definite(it) ||
        cbor_bytestring_length(it) != want)
        return NULL;
    return cbor_bytestring_handle(it);
}

enum {
    L_KTY,
    L_ALG,
    L_M1,
    L_M2,
    L_M3,
    L_COUNT
};

static int cose_label_slot(int64_t label)
{
    switch (label) {
    case 1:
        return L_KTY;
    case 3:
        return L_ALG;
    case -1:
        return L_M1; /* crv (EC2, OKP) or n (RSA) */
    case -2:
        return L_M2; /* x (EC2, OKP) or e (RSA) */
    case -3:
        return L_M3; /* y (EC2) */
    default:
        return -1;
    }
}

static bool cose_int_is(const cbor_item_t *it, int64_t want)
{
    int64_t v;
    return it != NULL && auth__cbor_int(it, &v) == 0 && v == want;
}

static int cose_es256(const cbor_item_t *const *v, struct auth__wa_key *k, char *err, size_t errlen)
{
    if (!cose_int_is(v[L_KTY], 2) || !cose_int_is(v[L_M1], 1))
        return auth__wa_fail(err, errlen, -EINVAL, "COSE key: ES256 needs kty EC2, crv P-256");
    const uint8_t *x = cbor_bytes(v[L_M2], 32);
    const uint8_t *y = cbor_bytes(v[L_M3], 32);
    if (x == NULL || y == NULL)
        return auth__wa_fail(err, errlen, -EINVAL, "COSE key: ES256 x and y must be 32 bytes");
    uint8_t xy[64];
    memcpy(xy, x, 32);
    memcpy(xy + 32, y, 32);
    if ((k->es256 = es256_pk_new()) == NULL)
        return auth__wa_fail(err, errlen, -ENOMEM, "out of memory");
    if (es256_pk_from_ptr(k->es256, xy, sizeof(xy)) != FIDO_OK) {
        es256_pk_free(&k->es256);
        return auth__wa_fail(err, errlen, -EINVAL, "COSE key: not a P-256 point");
    }
    return 0;
}

static int cose_eddsa(const cbor_item_t *const *v, struct auth__wa_key *k, char *err, size_t errlen)
{
    if (!cose_int_is(v[L_KTY], 1) || !cose_int_is(v[L_M1], 6))
        return auth__wa_fail(err, errlen, -EINVAL, "COSE key: EdDSA needs kty OKP, crv Ed25519");
    const uint8_t *x = cbor_bytes(v[L_M2], 32);
    if (x == NULL || v[L_M3] != NULL)
        return auth__wa_fail(err, errlen, -EINVAL, "COSE key: Ed25519 x must be 32 bytes");
    if ((k->eddsa = eddsa_pk_new()) == NULL)
        return auth__wa_fail(err, errlen, -ENOMEM, "out of memory");
    if (eddsa_pk_from_ptr(k->eddsa, x, 32) != FIDO_OK) {
        eddsa_pk_free(&k->eddsa);
        return auth__wa_fail(err, errlen, -EINVAL, "COSE key: bad Ed25519 key");
    }
    return 0;
}

/* libfido2 1.12 holds RSA keys as n[256] || e[3] (rs256_pk_from_ptr), so only 2048-bit
 * moduli with a 3-byte exponent (65537 in practice) are supported, as in its own decoder. */
static int cose_rs256(const cbor_item_t *const *v, struct auth__wa_key *k, char *err, size_t errlen)
{
    if (!cose_int_is(v[L_KTY], 3) || v[L_M3] != NULL)
        return auth__wa_fail(err, errlen, -EINVAL, "COSE key: RS256 needs kty RSA");
    for (int i = L_M1; i <= L_M2; i++) {
        if (v[i] == NULL || !cbor_isa_bytestring(v[i]) || !cbor_bytestring_is_definite(v[i]))
            return auth__wa_fail(err, errlen, -EINVAL, "COSE key: RSA n and e must be bytes");
    }
    const uint8_t *n = cbor_bytes(v[L_M1], 256);
    const uint8_t *e = cbor_bytes(v[L_M2], 3);
    if (n == NULL || e == NULL)
        return auth__wa_fail(err, errlen, -ENOTSUP, "COSE key: only RSA-2048 with e=65537");
    uint8_t ne[259];
    memcpy(ne, n, 256);
    memcpy(ne + 256, e, 3);
    if ((k->rs256 = rs256_pk_new()) == NULL)
        return auth__wa_fail(err, errlen, -ENOMEM, "out of memory");
    if (rs256_pk_from_ptr(k->rs256, ne, sizeof(ne)) != FIDO_OK) {
        rs256_pk_free(&k->rs256);
        return auth__wa_fail(err, errlen, -EINVAL, "COSE key: bad RSA key");
    }
    return 0;
}

static int cose_map(const cbor_item_t *map, struct auth__wa_key *k, char *err, size_t errlen)
{
    if (!cbor_isa_map(map) || !cbor_map_is_definite(map))
        return auth__wa_fail(err, errlen, -EINVAL, "COSE key: not a map");
    const cbor_item_t *v[L_COUNT] = { NULL };
    struct cbor_pair *pairs = cbor_map_handle(map);
    for (size_t i = 0; i < cbor_map_size(map); i++) {
        int64_t label;
        if (auth__cbor_int(pairs[i].key, &label) < 0)
            continue; /* text labels: none defined for these key types */
        int slot = cose_label_slot(label);
        if (slot < 0)
            continue;
        if (v[slot] != NULL)
            return auth__wa_fail(err, errlen, -EINVAL, "COSE key: duplicate label %lld",
                                 (long long)label);
        v[slot] = pairs[i].value;
    }
    int64_t alg;
    if (v[L_KTY] == NULL || v[L_ALG] == NULL || auth__cbor_int(v[L_ALG], &alg) < 0)
        return auth__wa_fail(err, errlen, -EINVAL, "COSE key: kty and alg are required");
    k->alg = (int)alg;
    switch (alg) {
    case WEBAUTHN_ES256:
        return cose_es256(v, k, err, errlen);
    case WEBAUTHN_EDDSA:
        return cose_eddsa(v, k, err, errlen);
    case WEBAUTHN_RS256:
        return cose_rs256(v, k, err, errlen);
    default:
        k->alg = 0;
        return auth__wa_fail(err, errlen, -ENOTSUP, "COSE key: unsupported alg %lld",
                             (long long)alg);
    }
}

int auth__cose_key_load(const uint8_t *p, size_t len, struct auth__wa_key *k, char *err,
                        size_t errlen)
{
    memset(k, 0, sizeof(*k));
    if (p == NULL || len == 0 || len > WEBAUTHN_COSE_KEY_MAX)
        return auth__wa_fail(err, errlen, -EINVAL, "COSE key: size %zu out of range", len);
    cbor_item_t *map = auth__cbor_load(p, len, true, NULL);
    if (map == NULL)
        return auth__wa_fail(err, errlen, -EINVAL, "COSE key: malformed CBOR");
    int rc = cose_map(map, k, err, errlen);
    cbor_decref(&map);
    if (rc < 0) {
        auth__cose_key_free(k);
        ERR_clear_error(); /* a refused point leaves OpenSSL errors behind */
    }
    return rc;
}

const void *auth__cose_key_pk(const struct auth__wa_key *k)
{
    switch (k->alg) {
    case WEBAUTHN_ES256:
        return k->es256;
    case WEBAUTHN_EDDSA:
        return k->eddsa;
    case WEBAUTHN_RS256:
        return k->rs256;
    default:
        return NULL;
    }
}

void auth__cose_key_free(struct auth__wa_key *k)
{
    es256_pk_free(&k->es256);
    rs256_pk_free(&k->rs256);
    eddsa_pk_free(&k->eddsa);
    k->alg = 0;
}

int webauthn_cose_alg(const uint8_t *cose_key, size_t len)
{
    struct auth__wa_key k;
    if (auth__cose_key_load(cose_key, len, &k, NULL, 0) < 0)
        return 0;
    int alg = k.alg;
    auth__cose_key_free(&k);
    return alg;
}
