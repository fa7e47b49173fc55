/* vault.h: sealing of credential-vault entries (architecture §5). An entry is encrypted with
 * AES-256-GCM under the gateway's vault key (32 random bytes made at first start and kept in
 * store.path), with a fresh 96-bit nonce per seal and the user and entry kind as associated
 * data, so a blob copied to another user or kind fails to open. Blob layout:
 * version (1 byte, 1) || nonce (12) || ciphertext || tag (16). Pure functions, any thread. */
#ifndef SPARKGATE_AUTH_VAULT_H
#define SPARKGATE_AUTH_VAULT_H

#include <stddef.h>
#include <stdint.h>

#define VAULT_KEY_LEN  32
#define VAULT_OVERHEAD (1 + 12 + 16)

/* Seals plain (len bytes) for (user, kind). Returns a mem_alloc'd blob of len + VAULT_OVERHEAD
 * bytes in *out_len, or NULL on an OpenSSL failure. */
uint8_t *vault_seal(const uint8_t key[VAULT_KEY_LEN], const char *user, const char *kind,
                    const void *plain, size_t len, size_t *out_len);
/* Opens a blob sealed for (user, kind). Returns the plaintext (mem_alloc'd, one extra NUL byte
 * after it; wipe it before freeing) with its length in *out_len, or NULL when the blob is
 * malformed, tampered with, or sealed for another user, kind or key. */
uint8_t *vault_open(const uint8_t key[VAULT_KEY_LEN], const char *user, const char *kind,
                    const uint8_t *blob, size_t len, size_t *out_len);

#endif
