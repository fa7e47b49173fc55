/* webauthn.h: server-side WebAuthn Level 2 verification (W3C §7.1 registration, §7.2
 * assertion) for a relying party: clientDataJSON checks (type, challenge, origin, no
 * cross-origin), authenticator data parsing (RP ID hash, UP/UV flags, sign count, attested
 * credential data), attestationObject CBOR (libcbor), COSE public keys ES256 (-7), RS256 (-257)
 * and EdDSA/Ed25519 (-8), attestation formats "none" and "packed" (self and x5c; the x5c
 * certificate itself is not chained to a root, as libfido2 documents), signatures checked with
 * libfido2's verification functions (no device involved), and the sign-count clone rule.
 * Pure functions, any thread. Inputs are raw bytes (the caller decodes base64url).
 *
 * Errors: 0, or a negative errno with a short human text in err:
 *   -EINVAL   malformed input (bad CBOR, truncated authenticator data, bad JSON, wrong types)
 *   -EACCES   verification failed (type, challenge, origin, RP ID hash, user presence, user
 *             verification required but absent, signature, attestation statement)
 *   -ENOTSUP  unsupported algorithm or attestation format
 *   -ESTALE   sign count did not increase (a cloned authenticator) */
#ifndef SPARKGATE_AUTH_WEBAUTHN_H
#define SPARKGATE_AUTH_WEBAUTHN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WEBAUTHN_ES256 (-7)
#define WEBAUTHN_EDDSA (-8)
#define WEBAUTHN_RS256 (-257)

struct webauthn_rp {
    const char *rp_id;          /* e.g. "example.org"; its SHA-256 must be authData's */
    const char *const *origins; /* accepted clientData origins, exact match */
    size_t n_origins;
    bool require_uv; /* demand the UV flag */
};

struct webauthn_new_cred {
    uint8_t *cred_id; /* mem_alloc'd */
    size_t cred_id_len;
    uint8_t *cose_key; /* mem_alloc'd: the credentialPublicKey CBOR exactly as in authData */
    size_t cose_key_len;
    int alg; /* COSE algorithm of the key */
    uint32_t sign_count;
    uint8_t flags; /* authData flags byte */
    char fmt[16];  /* "none" or "packed" */
    bool x5c;      /* packed with a certificate (full attestation) */
};

/* Verifies a registration ceremony's response against the expected challenge. On 0 fills out
 * (release with webauthn_new_cred_clear; also safe to call on a zeroed struct after an error). */
int webauthn_verify_registration(const struct webauthn_rp *rp, const uint8_t *challenge,
                                 size_t challenge_len, const uint8_t *client_data,
                                 size_t client_data_len, const uint8_t *att_obj, size_t att_obj_len,
                                 struct webauthn_new_cred *out, char *err, size_t errlen);
void webauthn_new_cred_clear(struct webauthn_new_cred *c);

/* Verifies an assertion against a stored credential (its COSE key and algorithm and the stored
 * sign count). On 0 *new_count holds authData's counter. Counter rule: when stored_count or the
 * new counter is nonzero, the new one must be greater (else -ESTALE). */
int webauthn_verify_assertion(const struct webauthn_rp *rp, const uint8_t *challenge,
                              size_t challenge_len, const uint8_t *client_data,
                              size_t client_data_len, const uint8_t *auth_data,
                              size_t auth_data_len, const uint8_t *sig, size_t sig_len,
                              const uint8_t *cose_key, size_t cose_key_len, int alg,
                              uint32_t stored_count, uint32_t *new_count, char *err, size_t errlen);

/* The COSE algorithm of a COSE_Key (for listing credentials); 0 when unparseable. */
int webauthn_cose_alg(const uint8_t *cose_key, size_t len);

#endif
