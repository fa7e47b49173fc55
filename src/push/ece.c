/* ece.c: RFC 8291 message encryption (aes128gcm, RFC 8188) and P-256 helpers over OpenSSL 3. */
#include "push/push.h"

#include <errno.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/obj_mac.h>
#include <openssl/param_build.h>

#include "core/rnd.h"
#include "push/push_int.h"

#define RECORD_SIZE 4096

bool push_p256_valid(const uint8_t pub[PUSH_P256_PUB_LEN])
{
    if (pub[0] != 0x04)
        return false;
    EC_GROUP *g = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
    EC_POINT *pt = g ? EC_POINT_new(g) : NULL;
    bool ok = pt != NULL && EC_POINT_oct2point(g, pt, pub, PUSH_P256_PUB_LEN, NULL) == 1 &&
              EC_POINT_is_on_curve(g, pt, NULL) == 1 && !EC_POINT_is_at_infinity(g, pt);
    EC_POINT_free(pt);
    EC_GROUP_free(g);
    return ok;
}

int push__p256_public(const uint8_t priv[32], uint8_t pub[PUSH_P256_PUB_LEN])
{
    EC_GROUP *g = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
    BIGNUM *d = BN_bin2bn(priv, 32, NULL);
    EC_POINT *pt = g ? EC_POINT_new(g) : NULL;
    int rc = -EINVAL;
    if (pt == NULL || d == NULL)
        goto out;
    if (BN_is_zero(d) || BN_cmp(d, EC_GROUP_get0_order(g)) >= 0)
        goto out; /* not a scalar in [1, n-1] */
    if (EC_POINT_mul(g, pt, d, NULL, NULL, NULL) != 1 ||
        EC_POINT_point2oct(g, pt, POINT_CONVERSION_UNCOMPRESSED, pub, PUSH_P256_PUB_LEN, NULL) !=
            PUSH_P256_PUB_LEN) {
        rc = -EIO;
        goto out;
    }
    rc = 0;
out:
    EC_POINT_free(pt);
    BN_clear_free(d);
    EC_GROUP_free(g);
    return rc;
}

EVP_PKEY *push__p256_key(const uint8_t *priv, const uint8_t pub[PUSH_P256_PUB_LEN])
{
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    BIGNUM *d = priv ? BN_bin2bn(priv, 32, NULL) : NULL;
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    EVP_PKEY *key = NULL;
    if (bld == NULL || (priv != NULL && d == NULL))
        goto out;
    if (!OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) ||
        !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub, PUSH_P256_PUB_LEN) ||
        (d != NULL && !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, d)))
        goto out;
    params = OSSL_PARAM_BLD_to_param(bld);
    ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    if (params == NULL || ctx == NULL || EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, &key, d ? EVP_PKEY_KEYPAIR : EVP_PKEY_PUBLIC_KEY, params) != 1)
        key = NULL;
out:
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_clear_free(d);
    return key;
}

/* A fresh key pair; its public point goes to pub. */
static EVP_PKEY *ephemeral_key(uint8_t pub[PUSH_P256_PUB_LEN])
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    size_t n = 0;
    if (k == NULL ||
        EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_PUB_KEY, pub, PUSH_P256_PUB_LEN, &n) !=
            1 ||
        n != PUSH_P256_PUB_LEN || pub[0] != 0x04) {
        EVP_PKEY_free(k);
        return NULL;
    }
    return k;
}

static int ecdh(EVP_PKEY *mine, EVP_PKEY *peer, uint8_t secret[32])
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(mine, NULL);
    size_t n = 32;
    int ok = ctx != NULL && EVP_PKEY_derive_init(ctx) == 1 &&
             EVP_PKEY_derive_set_peer(ctx, peer) == 1 && EVP_PKEY_derive(ctx, secret, &n) == 1 &&
             n == 32;
    EVP_PKEY_CTX_free(ctx);
    return ok ? 0 : -EIO;
}

/* HMAC-SHA-256 over the concatenation of up to three parts. HKDF (RFC 5869) with an output of
 * at most 32 bytes is one extract and one expand, each a single HMAC. */
static void hmac3(const uint8_t *key, size_t klen, const void *a, size_t alen, const void *b,
                  size_t blen, const void *c, size_t clen, uint8_t out[32])
{
    uint8_t buf[256];
    size_t n = 0;
    memcpy(buf + n, a, alen);
    n += alen;
    if (b != NULL) {
        memcpy(buf + n, b, blen);
        n += blen;
    }
    if (c != NULL) {
        memcpy(buf + n, c, clen);
        n += clen;
    }
    unsigned int ol = 32;
    HMAC(EVP_sha256(), key, (int)klen, buf, n, out, &ol);
    OPENSSL_cleanse(buf, n);
}

/* CEK (16 bytes) and nonce (12 bytes) from the ECDH secret (RFC 8291 §3.3-3.4, RFC 8188 §2.2). */
static void derive(const uint8_t secret[32], const uint8_t auth[PUSH_AUTH_LEN],
                   const uint8_t ua_pub[PUSH_P256_PUB_LEN], const uint8_t as_pub[PUSH_P256_PUB_LEN],
                   const uint8_t salt[16], uint8_t cek[16], uint8_t nonce[12])
{
    static const char key_label[] = "WebPush: info"; /* followed by its NUL */
    static const uint8_t one = 0x01;
    uint8_t prk_key[32], ikm[32], prk[32], t[32];
    uint8_t info[sizeof(key_label) + 2 * PUSH_P256_PUB_LEN + 1];
    memcpy(info, key_label, sizeof(key_label));
    memcpy(info + sizeof(key_label), ua_pub, PUSH_P256_PUB_LEN);
    memcpy(info + sizeof(key_label) + PUSH_P256_PUB_LEN, as_pub, PUSH_P256_PUB_LEN);
    info[sizeof(info) - 1] = one;
    hmac3(auth, PUSH_AUTH_LEN, secret, 32, NULL, 0, NULL, 0, prk_key);
    hmac3(prk_key, 32, info, sizeof(info), NULL, 0, NULL, 0, ikm);
    hmac3(salt, 16, ikm, 32, NULL, 0, NULL, 0, prk);
    static const char cek_info[] = "Content-Encoding: aes128gcm"; /* + NUL + 0x01 */
    static const char nonce_info[] = "Content-Encoding: nonce";
    hmac3(prk, 32, cek_info, sizeof(cek_info), &one, 1, NULL, 0, t);
    memcpy(cek, t, 16);
    hmac3(prk, 32, nonce_info, sizeof(nonce_info), &one, 1, NULL, 0, t);
    memcpy(nonce, t, 12);
    OPENSSL_cleanse(prk_key, sizeof(prk_key));
    OPENSSL_cleanse(ikm, sizeof(ikm));
    OPENSSL_cleanse(prk, sizeof(prk));
    OPENSSL_cleanse(t, sizeof(t));
}

/* AES-128-GCM of plaintext || 0x02 (the last and only record, no padding) into out. */
static int seal(const uint8_t cek[16], const uint8_t nonce[12], const void *plain, size_t len,
                uint8_t *out)
{
    static const uint8_t delim = 0x02;
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int n1 = 0, n2 = 0, n3 = 0;
    int ok = ctx != NULL && EVP_EncryptInit_ex(ctx, EVP_aes_128_gcm(), NULL, cek, nonce) == 1 &&
             EVP_EncryptUpdate(ctx, out, &n1, plain, (int)len) == 1 &&
             EVP_EncryptUpdate(ctx, out + n1, &n2, &delim, 1) == 1 &&
             EVP_EncryptFinal_ex(ctx, out + n1 + n2, &n3) == 1 &&
             (size_t)(n1 + n2 + n3) == len + 1 &&
             EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, 16, out + len + 1) == 1;
    EVP_CIPHER_CTX_free(ctx);
    return ok ? 0 : -EIO;
}

int push_ece_encrypt(const uint8_t ua_public[PUSH_P256_PUB_LEN],
                     const uint8_t auth_secret[PUSH_AUTH_LEN], const void *plaintext, size_t len,
                     const uint8_t *as_private, const uint8_t *salt, uint8_t *out, size_t outcap,
                     size_t *outlen)
{
    if (len > PUSH_PAYLOAD_MAX || outcap < PUSH_HEADER_LEN + len + 1 + 16)
        return -EMSGSIZE;
    if (!push_p256_valid(ua_public))
        return -EINVAL;
    uint8_t as_pub[PUSH_P256_PUB_LEN], secret[32], cek[16], nonce[12], salt_buf[16];
    EVP_PKEY *mine = NULL;
    if (as_private != NULL) {
        int rc = push__p256_public(as_private, as_pub);
        if (rc < 0)
            return rc;
        mine = push__p256_key(as_private, as_pub);
    } else {
        mine = ephemeral_key(as_pub);
    }
    EVP_PKEY *peer = push__p256_key(NULL, ua_public);
    int rc = -EIO;
    if (mine == NULL || peer == NULL || ecdh(mine, peer, secret) < 0)
        goto out;
    if (salt == NULL) {
        rnd_bytes(salt_buf, sizeof(salt_buf));
        salt = salt_buf;
    }
    derive(secret, auth_secret, ua_public, as_pub, salt, cek, nonce);
    memcpy(out, salt, 16);
    out[16] = (RECORD_SIZE >> 24) & 0xff;
    out[17] = (RECORD_SIZE >> 16) & 0xff;
    out[18] = (RECORD_SIZE >> 8) & 0xff;
    out[19] = RECORD_SIZE & 0xff;
    out[20] = PUSH_P256_PUB_LEN;
    memcpy(out + 21, as_pub, PUSH_P256_PUB_LEN);
    rc = seal(cek, nonce, plaintext, len, out + PUSH_HEADER_LEN);
    if (rc == 0)
        *outlen = PUSH_HEADER_LEN + len + 1 + 16;
out:
    OPENSSL_cleanse(secret, sizeof(secret));
    OPENSSL_cleanse(cek, sizeof(cek));
    EVP_PKEY_free(mine);
    EVP_PKEY_free(peer);
    return rc;
}
