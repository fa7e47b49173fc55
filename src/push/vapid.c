/* vapid.c: the application server's ES256 identity (RFC 8292): key pair and signed JWTs. */
#include "push/push.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>

#include "core/b64.h"
#include "core/mem.h"
#include "push/push_int.h"

struct push_vapid {
    EVP_PKEY *key;
    uint8_t pub[PUSH_P256_PUB_LEN];
    char *pub_b64;
};

struct push_vapid *push_vapid_new(const uint8_t priv[32])
{
    uint8_t pub[PUSH_P256_PUB_LEN];
    if (push__p256_public(priv, pub) < 0)
        return NULL;
    EVP_PKEY *key = push__p256_key(priv, pub);
    if (key == NULL)
        return NULL;
    struct push_vapid *v = mem_calloc(1, sizeof(*v));
    v->key = key;
    memcpy(v->pub, pub, sizeof(pub));
    v->pub_b64 = b64_encode(pub, sizeof(pub), B64_URL, NULL);
    return v;
}

void push_vapid_free(struct push_vapid *v)
{
    if (v == NULL)
        return;
    EVP_PKEY_free(v->key);
    mem_free(v->pub_b64);
    mem_free(v);
}

const uint8_t *push_vapid_public(const struct push_vapid *v)
{
    return v->pub;
}

const char *push_vapid_public_b64(const struct push_vapid *v)
{
    return v->pub_b64;
}

static char *b64url_json(json_t *j)
{
    char *text = json_dumps(j, JSON_COMPACT);
    char *enc = b64_encode(text, strlen(text), B64_URL, NULL);
    free(text);
    return enc;
}

/* ECDSA over SHA-256 of data, as JOSE wants it: R || S, 32 bytes each (RFC 7518 §3.4). */
static int sign_es256(EVP_PKEY *key, const char *data, size_t len, uint8_t rs[64])
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    uint8_t der[80];
    size_t dlen = sizeof(der);
    int rc = -EIO;
    if (md == NULL || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) != 1 ||
        EVP_DigestSign(md, der, &dlen, (const uint8_t *)data, len) != 1) {
        EVP_MD_CTX_free(md);
        return rc;
    }
    EVP_MD_CTX_free(md);
    const uint8_t *p = der;
    ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &p, (long)dlen);
    if (sig != NULL && BN_bn2binpad(ECDSA_SIG_get0_r(sig), rs, 32) == 32 &&
        BN_bn2binpad(ECDSA_SIG_get0_s(sig), rs + 32, 32) == 32)
        rc = 0;
    ECDSA_SIG_free(sig);
    return rc;
}

char *push_vapid_jwt(const struct push_vapid *v, const char *aud, const char *sub, int64_t exp)
{
    json_t *hdr = json_pack("{s:s, s:s}", "typ", "JWT", "alg", "ES256");
    json_t *claims = json_pack("{s:s, s:I, s:s}", "aud", aud, "exp", (json_int_t)exp, "sub", sub);
    if (hdr == NULL || claims == NULL) {
        json_decref(hdr);
        json_decref(claims);
        return NULL;
    }
    char *h = b64url_json(hdr);
    char *c = b64url_json(claims);
    json_decref(hdr);
    json_decref(claims);
    size_t hl = strlen(h), cl = strlen(c);
    char *out = mem_alloc(hl + 1 + cl + 1 + 87);
    memcpy(out, h, hl);
    out[hl] = '.';
    memcpy(out + hl + 1, c, cl);
    size_t sl = hl + 1 + cl;
    out[sl] = '\0';
    mem_free(h);
    mem_free(c);
    uint8_t rs[64];
    if (sign_es256(v->key, out, sl, rs) < 0) {
        mem_free(out);
        return NULL;
    }
    char *sig = b64_encode(rs, sizeof(rs), B64_URL, NULL); /* 86 characters */
    out[sl] = '.';
    memcpy(out + sl + 1, sig, strlen(sig) + 1);
    mem_free(sig);
    return out;
}
