/* webauthn_int.h: helpers shared by webauthn.c and webauthn_cose.c (the auth module only):
 * a bounded CBOR loader in front of libcbor, and COSE_Key parsing into libfido2 public keys. */
#ifndef SPARKGATE_AUTH_WEBAUTHN_INT_H
#define SPARKGATE_AUTH_WEBAUTHN_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cbor.h>
#include <fido.h>
#include <fido/eddsa.h>
#include <fido/es256.h>
#include <fido/rs256.h>

/* Input limits; anything larger is refused with -EINVAL before any parsing. */
#define WEBAUTHN_CLIENT_DATA_MAX (16 * 1024) /* clientDataJSON */
#define WEBAUTHN_ATT_OBJ_MAX     (64 * 1024) /* attestationObject */
#define WEBAUTHN_AUTH_DATA_MAX   (16 * 1024) /* authenticatorData of an assertion */
#define WEBAUTHN_SIG_MAX         1024        /* an RSA-4096 signature is 512 bytes */
#define WEBAUTHN_CHALLENGE_MAX   1024        /* the expected challenge */
#define WEBAUTHN_CRED_ID_MAX     1023        /* WebAuthn L3 §6.5.1 credentialIdLength */
#define WEBAUTHN_COSE_KEY_MAX    1024        /* an RSA-2048 COSE_Key is ~272 bytes */
#define WEBAUTHN_CBOR_DEPTH      16
/* libfido2 1.12 builds the EdDSA message authData || clientDataHash in a 1024-byte buffer. */
#define WEBAUTHN_EDDSA_AUTH_DATA_MAX (1024 - 32)

/* A credential public key converted for libfido2's verify functions. */
struct auth__wa_key {
    int alg; /* WEBAUTHN_ES256, WEBAUTHN_EDDSA or WEBAUTHN_RS256 */
    es256_pk_t *es256;
    rs256_pk_t *rs256;
    eddsa_pk_t *eddsa;
};

/* Writes a message into err (when non-NULL) and returns rc, for `return auth__wa_fail(...)`. */
int auth__wa_fail(char *err, size_t errlen, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Loads the CBOR item at the start of p[0..len). Before libcbor sees a byte, a scanner checks
 * that the item is well formed with definite lengths, no tags, nesting <= WEBAUTHN_CBOR_DEPTH,
 * every count backed by enough input (so no huge allocation), and, when `canonical`, integers
 * and lengths in shortest form (CTAP2 canonical). With used == NULL the item must fill len
 * exactly; otherwise *used gets its encoded length (libcbor's result.read). NULL when
 * malformed. Release with cbor_decref. */
cbor_item_t *auth__cbor_load(const uint8_t *p, size_t len, bool canonical, size_t *used);

/* True when `it` is a definite text string equal to s. */
bool auth__cbor_text_eq(const cbor_item_t *it, const char *s);

/* Reads an integer item (unsigned or negative) into *v; -1 when not an int or out of range. */
int auth__cbor_int(const cbor_item_t *it, int64_t *v);

/* Parses a COSE_Key (CTAP2 canonical CBOR, exactly len bytes) into k: alg -7 (kty EC2, crv
 * P-256, 32-byte x and y, point on the curve), -8 (kty OKP, crv Ed25519, 32-byte x) or -257
 * (kty RSA, 256-byte n, 3-byte e). 0; -EINVAL malformed or inconsistent; -ENOTSUP another
 * algorithm or RSA size. On error k holds nothing to free. */
int auth__cose_key_load(const uint8_t *p, size_t len, struct auth__wa_key *k, char *err,
                        size_t errlen);

/* The libfido2 key for fido_assert_verify. */
const void *auth__cose_key_pk(const struct auth__wa_key *k);

void auth__cose_key_free(struct auth__wa_key *k);

#endif
