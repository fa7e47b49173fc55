/* vault.c: AES-256-GCM sealing of credential-vault entries. */
#include "auth/vault.h"

#include <stdbool.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "core/mem.h"
#include "core/rnd.h"

#define VAULT_VERSION 1
#define NONCE_LEN     12
#define TAG_LEN       16

/* Associated data: user NUL kind, binding a blob to its owner and purpose. */
static int add_aad(EVP_CIPHER_CTX *ctx, const char *user, const char *kind)
{
    int outl = 0;
    return EVP_CipherUpdate(ctx, NULL, &outl, (const uint8_t *)user, (int)strlen(user) + 1) == 1 &&
           EVP_CipherUpdate(ctx, NULL, &outl, (const uint8_t *)kind, (int)strlen(kind)) == 1;
}

uint8_t *vault_seal(const uint8_t key[VAULT_KEY_LEN], const char *user, const char *kind,
                    const void *plain, size_t len, size_t *out_len)
{
    if (len > (1u << 20))
        return NULL;
    uint8_t *blob = mem_alloc(len + VAULT_OVERHEAD);
    blob[0] = VAULT_VERSION;
    rnd_bytes(blob + 1, NONCE_LEN);
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int outl = 0, finl = 0;
    bool ok =
        ctx != NULL && EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, blob + 1) == 1 &&
        add_aad(ctx, user, kind) &&
        EVP_EncryptUpdate(ctx, blob + 1 + NONCE_LEN, &outl, plain, (int)len) == 1 &&
        EVP_EncryptFinal_ex(ctx, blob + 1 + NONCE_LEN + outl, &finl) == 1 &&
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG_LEN, blob + 1 + NONCE_LEN + len) == 1;
    EVP_CIPHER_CTX_free(ctx);
    if (!ok) {
        OPENSSL_cleanse(blob, len + VAULT_OVERHEAD);
        mem_free(blob);
        return NULL;
    }
    *out_len = len + VAULT_OVERHEAD;
    return blob;
}

uint8_t *vault_open(const uint8_t key[VAULT_KEY_LEN], const char *user, const char *kind,
                    const uint8_t *blob, size_t len, size_t *out_len)
{
    if (blob == NULL || len < VAULT_OVERHEAD || blob[0] != VAULT_VERSION || len > (2u << 20))
        return NULL;
    size_t plen = len - VAULT_OVERHEAD;
    uint8_t *plain = mem_alloc(plen + 1);
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int outl = 0, finl = 0;
    uint8_t tag[TAG_LEN];
    memcpy(tag, blob + 1 + NONCE_LEN + plen, TAG_LEN);
    bool ok = ctx != NULL && EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, blob + 1) == 1 &&
              add_aad(ctx, user, kind) &&
              EVP_DecryptUpdate(ctx, plain, &outl, blob + 1 + NONCE_LEN, (int)plen) == 1 &&
              EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG_LEN, tag) == 1 &&
              EVP_DecryptFinal_ex(ctx, plain + outl, &finl) == 1;
    EVP_CIPHER_CTX_free(ctx);
    if (!ok) {
        OPENSSL_cleanse(plain, plen + 1);
        mem_free(plain);
        return NULL;
    }
    plain[plen] = '\0';
    *out_len = plen;
    return plain;
}
