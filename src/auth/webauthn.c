/* webauthn.c: WebAuthn L2 registration (§7.1) and assertion (§7.2) verification. The bytes are
 * checked here (clientDataJSON with jansson, attestationObject and authenticator data with a
 * bounded libcbor, X.509 requirements with OpenSSL); signatures go to libfido2 (no device).
 *
 * Order of checks, so each bad input gets one stable code: sizes and arguments, then
 * clientDataJSON (syntax -EINVAL; type, challenge, origin, crossOrigin -EACCES), then the
 * attestationObject and authData structure (-EINVAL), then RP ID hash, UP and UV (-EACCES),
 * then the COSE key (-EINVAL, or -ENOTSUP for another algorithm), then the attestation format
 * ("none" and "packed" only; "tpm", "fido-u2f" and all others -ENOTSUP; a malformed attStmt
 * -EINVAL; a wrong attStmt alg, bad certificate properties or signature -EACCES), and for
 * assertions the signature (-EACCES) before the counter (-ESTALE). -ENOMEM only if libfido2,
 * libcbor or OpenSSL cannot allocate. Size limits are in webauthn_int.h. */
#include "auth/webauthn.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "auth/webauthn_int.h"
#include "core/b64.h"
#include "core/mem.h"

#define FLAG_UP 0x01
#define FLAG_UV 0x04
#define FLAG_BE 0x08
#define FLAG_BS 0x10
#define FLAG_AT 0x40
#define FLAG_ED 0x80

#define OID_FIDO_AAGUID "1.3.6.1.4.1.45724.1.1.4"

/* authenticatorData, parsed in place (pointers into the caller's bytes). */
struct auth_data {
    const uint8_t *rp_id_hash; /* 32 bytes */
    uint8_t flags;
    uint32_t sign_count;
    const uint8_t *aaguid; /* 16 bytes, with AT */
    const uint8_t *cred_id;
    size_t cred_id_len;
    const uint8_t *cose; /* credentialPublicKey, with AT */
    size_t cose_len;
    cbor_item_t *ext; /* the extensions map, with ED; owned */
};

int auth__wa_fail(char *err, size_t errlen, int rc, const char *fmt, ...)
{
    if (err != NULL && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return rc;
}

#define FAIL(rc, ...) auth__wa_fail(err, errlen, (rc), __VA_ARGS__)

static bool json_str_eq(const json_t *j, const char *s, size_t n)
{
    return json_string_length(j) == n && memcmp(json_string_value(j), s, n) == 0;
}

/* §7.1 steps 5-12 / §7.2 steps 9-16: type, challenge, origin, crossOrigin; hash on success. */
static int client_data_check(const struct webauthn_rp *rp, const char *type,
                             const uint8_t *challenge, size_t challenge_len, const uint8_t *cd,
                             size_t cd_len, uint8_t hash[SHA256_DIGEST_LENGTH], char *err,
                             size_t errlen)
{
    if (cd_len == 0 || cd_len > WEBAUTHN_CLIENT_DATA_MAX)
        return FAIL(-EINVAL, "clientDataJSON: size %zu out of range", cd_len);
    json_error_t jerr;
    json_t *root = json_loadb((const char *)cd, cd_len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL || !json_is_object(root)) {
        json_decref(root);
        return FAIL(-EINVAL, "clientDataJSON: not a JSON object (%s)",
                    root == NULL ? jerr.text : "wrong type");
    }
    int rc = 0;
    json_t *jtype = json_object_get(root, "type");
    json_t *jchal = json_object_get(root, "challenge");
    json_t *jorigin = json_object_get(root, "origin");
    json_t *jcross = json_object_get(root, "crossOrigin");
    uint8_t *got = NULL;
    size_t got_len = 0;
    if (!json_is_string(jtype) || !json_is_string(jchal) || !json_is_string(jorigin) ||
        (jcross != NULL && !json_is_boolean(jcross))) {
        rc = FAIL(-EINVAL,
                  "clientDataJSON: type, challenge, origin or crossOrigin missing or mistyped");
        goto out;
    }
    if (!json_str_eq(jtype, type, strlen(type))) {
        rc = FAIL(-EACCES, "clientDataJSON: type is not %s", type);
        goto out;
    }
    if (b64_decode(json_string_value(jchal), json_string_length(jchal), B64_URL, &got, &got_len) <
        0) {
        rc = FAIL(-EINVAL, "clientDataJSON: challenge is not base64url");
        goto out;
    }
    if (got_len != challenge_len || CRYPTO_memcmp(got, challenge, challenge_len) != 0) {
        rc = FAIL(-EACCES, "clientDataJSON: challenge mismatch");
        goto out;
    }
    bool origin_ok = false;
    for (size_t i = 0; i < rp->n_origins && !origin_ok; i++) {
        if (rp->origins[i] != NULL)
            origin_ok = json_str_eq(jorigin, rp->origins[i], strlen(rp->origins[i]));
    }
    if (!origin_ok) {
        rc = FAIL(-EACCES, "clientDataJSON: origin not accepted");
        goto out;
    }
    if (json_is_true(jcross)) {
        rc = FAIL(-EACCES, "clientDataJSON: crossOrigin is true");
        goto out;
    }
    SHA256(cd, cd_len, hash);
out:
    mem_free(got);
    json_decref(root);
    return rc;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Splits authenticatorData (WebAuthn §6.1). want_at: a registration, which must carry
 * attested credential data; an assertion must not. Every length is checked against the bytes
 * left; nothing may follow the last part. ad->ext must be released by the caller. */
static int auth_data_parse(const uint8_t *p, size_t len, bool want_at, struct auth_data *ad,
                           char *err, size_t errlen)
{
    memset(ad, 0, sizeof(*ad));
    if (len < 37)
        return FAIL(-EINVAL, "authData: %zu bytes, need at least 37", len);
    ad->rp_id_hash = p;
    ad->flags = p[32];
    ad->sign_count = be32(p + 33);
    size_t off = 37;
    if (want_at != ((ad->flags & FLAG_AT) != 0))
        return FAIL(-EINVAL, "authData: attested credential data %s",
                    want_at ? "missing" : "unexpected");
    if (want_at) {
        if (len - off < 18)
            return FAIL(-EINVAL, "authData: truncated attested credential data");
        ad->aaguid = p + off;
        ad->cred_id_len = (size_t)p[off + 16] << 8 | p[off + 17];
        off += 18;
        if (ad->cred_id_len == 0 || ad->cred_id_len > WEBAUTHN_CRED_ID_MAX ||
            ad->cred_id_len > len - off)
            return FAIL(-EINVAL, "authData: credential id length %zu", ad->cred_id_len);
        ad->cred_id = p + off;
        off += ad->cred_id_len;
        cbor_item_t *key = auth__cbor_load(p + off, len - off, true, &ad->cose_len);
        if (key == NULL)
            return FAIL(-EINVAL, "authData: malformed credentialPublicKey");
        cbor_decref(&key);
        ad->cose = p + off;
        off += ad->cose_len;
    }
    if (ad->flags & FLAG_ED) {
        ad->ext = auth__cbor_load(p + off, len - off, false, NULL);
        if (ad->ext == NULL || !cbor_isa_map(ad->ext) || !cbor_map_is_definite(ad->ext)) {
            if (ad->ext != NULL)
                cbor_decref(&ad->ext);
            return FAIL(-EINVAL, "authData: malformed extensions");
        }
        off = len;
    }
    if (off != len)
        return FAIL(-EINVAL, "authData: %zu trailing bytes", len - off);
    return 0;
}

/* §7.1 steps 13-15, §7.2 steps 17-19; plus L3's rule that BS needs BE. */
static int auth_data_check(const struct webauthn_rp *rp, const struct auth_data *ad, char *err,
                           size_t errlen)
{
    uint8_t want[SHA256_DIGEST_LENGTH];
    SHA256((const uint8_t *)rp->rp_id, strlen(rp->rp_id), want);
    if (CRYPTO_memcmp(want, ad->rp_id_hash, sizeof(want)) != 0)
        return FAIL(-EACCES, "authData: RP ID hash mismatch");
    if (!(ad->flags & FLAG_UP))
        return FAIL(-EACCES, "authData: user not present");
    if (rp->require_uv && !(ad->flags & FLAG_UV))
        return FAIL(-EACCES, "authData: user verification required");
    if ((ad->flags & FLAG_BS) && !(ad->flags & FLAG_BE))
        return FAIL(-EINVAL, "authData: backup state without backup eligibility");
    return 0;
}

/* libfido2 compares the extensions it decodes from authData with the ones the request asked
 * for, so tell it what authData carries (the same four, decoded its way). */
static int cred_mirror_ext(fido_cred_t *c, const cbor_item_t *ext)
{
    struct cbor_pair *pairs = cbor_map_handle(ext);
    for (size_t i = 0; i < cbor_map_size(ext); i++) {
        const cbor_item_t *v = pairs[i].value;
        int64_t n = 0;
        int r = FIDO_OK;
        if (auth__cbor_text_eq(pairs[i].key, "hmac-secret") && cbor_is_bool(v)) {
            if (cbor_get_bool(v))
                r = fido_cred_set_extensions(c, FIDO_EXT_HMAC_SECRET);
        } else if (auth__cbor_text_eq(pairs[i].key, "credBlob") && cbor_is_bool(v)) {
            if (cbor_get_bool(v))
                r = fido_cred_set_extensions(c, FIDO_EXT_CRED_BLOB);
        } else if (auth__cbor_text_eq(pairs[i].key, "credProtect")) {
            r = auth__cbor_int(v, &n) == 0 && n > 0 && n < 256 ? fido_cred_set_prot(c, (int)n)
                                                               : FIDO_ERR_INVALID_ARGUMENT;
        } else if (auth__cbor_text_eq(pairs[i].key, "minPinLength")) {
            r = auth__cbor_int(v, &n) == 0 && n > 0 && n < 256
                    ? fido_cred_set_pin_minlen(c, (size_t)n)
                    : FIDO_ERR_INVALID_ARGUMENT;
        }
        if (r != FIDO_OK)
            return r;
    }
    return FIDO_OK;
}

static int fido_status(int r, const char *what, char *err, size_t errlen)
{
    if (r == FIDO_ERR_INVALID_SIG)
        return FAIL(-EACCES, "%s: signature does not verify", what);
    if (r == FIDO_ERR_INVALID_PARAM)
        return FAIL(-EACCES, "%s: refused by libfido2 (%s)", what, fido_strerr(r));
    return FAIL(-EINVAL, "%s: libfido2: %s", what, fido_strerr(r));
}

static bool name_entry_is(X509_NAME *name, int nid, const char *want)
{
    int i = X509_NAME_get_index_by_NID(name, nid, -1);
    if (i < 0)
        return false;
    const ASN1_STRING *s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i));
    int n = ASN1_STRING_length(s);
    if (n <= 0)
        return false;
    return want == NULL ||
           ((size_t)n == strlen(want) && memcmp(ASN1_STRING_get0_data(s), want, (size_t)n) == 0);
}

/* §8.2.1 packed attestation certificate requirements; the chain is not verified. */
static int cert_check(X509 *x, const uint8_t aaguid[16], char *err, size_t errlen)
{
    if (X509_get_version(x) != X509_VERSION_3)
        return FAIL(-EACCES, "x5c: certificate is not version 3");
    uint32_t xf = X509_get_extension_flags(x);
    if (xf & EXFLAG_INVALID)
        return FAIL(-EACCES, "x5c: invalid certificate extensions");
    if (xf & EXFLAG_CA)
        return FAIL(-EACCES, "x5c: certificate is a CA");
    X509_NAME *sub = X509_get_subject_name(x);
    if (!name_entry_is(sub, NID_countryName, NULL) ||
        !name_entry_is(sub, NID_organizationName, NULL) ||
        !name_entry_is(sub, NID_commonName, NULL) ||
        !name_entry_is(sub, NID_organizationalUnitName, "Authenticator Attestation"))
        return FAIL(-EACCES, "x5c: subject lacks C, O, CN or OU=Authenticator Attestation");
    ASN1_OBJECT *obj = OBJ_txt2obj(OID_FIDO_AAGUID, 1);
    if (obj == NULL)
        return FAIL(-ENOMEM, "out of memory");
    int i = X509_get_ext_by_OBJ(x, obj, -1);
    ASN1_OBJECT_free(obj);
    if (i < 0)
        return 0;
    X509_EXTENSION *ext = X509_get_ext(x, i);
    const ASN1_OCTET_STRING *os = X509_EXTENSION_get_data(ext);
    const uint8_t *d = ASN1_STRING_get0_data(os);
    if (X509_EXTENSION_get_critical(ext) || ASN1_STRING_length(os) != 18 || d[0] != 0x04 ||
        d[1] != 16 || CRYPTO_memcmp(d + 2, aaguid, 16) != 0)
        return FAIL(-EACCES, "x5c: AAGUID extension does not match authData");
    return 0;
}

/* The packed attStmt members (§8.2); syntax errors -EINVAL. */
struct packed_stmt {
    int64_t alg;
    const cbor_item_t *sig;
    const cbor_item_t *x5c; /* first certificate, or NULL for self attestation */
};

static int packed_parse(const cbor_item_t *stmt, struct packed_stmt *ps, char *err, size_t errlen)
{
    const cbor_item_t *alg = NULL, *sig = NULL, *x5c = NULL;
    if (!cbor_isa_map(stmt) || !cbor_map_is_definite(stmt))
        return FAIL(-EINVAL, "packed: attStmt is not a map");
    struct cbor_pair *pairs = cbor_map_handle(stmt);
    for (size_t i = 0; i < cbor_map_size(stmt); i++) {
        const cbor_item_t **slot = NULL;
        if (auth__cbor_text_eq(pairs[i].key, "alg"))
            slot = &alg;
        else if (auth__cbor_text_eq(pairs[i].key, "sig"))
            slot = &sig;
        else if (auth__cbor_text_eq(pairs[i].key, "x5c"))
            slot = &x5c;
        else if (auth__cbor_text_eq(pairs[i].key, "ecdaaKeyId"))
            return FAIL(-ENOTSUP, "packed: ECDAA is not supported");
        if (slot == NULL)
            continue;
        if (*slot != NULL)
            return FAIL(-EINVAL, "packed: duplicate attStmt member");
        *slot = pairs[i].value;
    }
    if (alg == NULL || auth__cbor_int(alg, &ps->alg) < 0)
        return FAIL(-EINVAL, "packed: alg missing");
    if (sig == NULL || !cbor_isa_bytestring(sig) || !cbor_bytestring_is_definite(sig) ||
        cbor_bytestring_length(sig) == 0 || cbor_bytestring_length(sig) > WEBAUTHN_SIG_MAX)
        return FAIL(-EINVAL, "packed: sig missing");
    ps->sig = sig;
    ps->x5c = NULL;
    if (x5c == NULL)
        return 0;
    if (!cbor_isa_array(x5c) || !cbor_array_is_definite(x5c) || cbor_array_size(x5c) == 0)
        return FAIL(-EINVAL, "packed: x5c is not a non-empty array");
    for (size_t i = 0; i < cbor_array_size(x5c); i++) {
        const cbor_item_t *c = cbor_array_handle(x5c)[i];
        if (!cbor_isa_bytestring(c) || !cbor_bytestring_is_definite(c) ||
            cbor_bytestring_length(c) == 0)
            return FAIL(-EINVAL, "packed: x5c[%zu] is not a certificate", i);
    }
    ps->x5c = cbor_array_handle(x5c)[0];
    return 0;
}

static int packed_x5c_check(const cbor_item_t *der, const uint8_t aaguid[16], char *err,
                            size_t errlen)
{
    const uint8_t *p = cbor_bytestring_handle(der);
    size_t len = cbor_bytestring_length(der);
    const uint8_t *q = p;
    X509 *x = d2i_X509(NULL, &q, (long)len);
    if (x == NULL || q != p + len) {
        X509_free(x);
        return FAIL(-EINVAL, "x5c: not a DER certificate");
    }
    int rc = cert_check(x, aaguid, err, errlen);
    X509_free(x);
    return rc;
}

/* §8.2 verification procedure; signatures through fido_cred_verify(_self). */
static int packed_verify(const struct webauthn_rp *rp, const cbor_item_t *stmt,
                         const struct auth_data *ad, const uint8_t *auth_data, size_t auth_data_len,
                         const uint8_t cdh[SHA256_DIGEST_LENGTH], int key_alg, bool *x5c, char *err,
                         size_t errlen)
{
    struct packed_stmt ps;
    int rc = packed_parse(stmt, &ps, err, errlen);
    if (rc < 0)
        return rc;
    *x5c = ps.x5c != NULL;
    if (ps.x5c == NULL && ps.alg != key_alg)
        return FAIL(-EACCES, "packed: attStmt alg %lld is not the key's %d", (long long)ps.alg,
                    key_alg);
    if (ps.alg != WEBAUTHN_ES256 && ps.alg != WEBAUTHN_EDDSA && ps.alg != WEBAUTHN_RS256)
        return FAIL(-ENOTSUP, "packed: unsupported attestation alg %lld", (long long)ps.alg);
    if (ps.alg == WEBAUTHN_EDDSA && auth_data_len > WEBAUTHN_EDDSA_AUTH_DATA_MAX)
        return FAIL(-ENOTSUP, "packed: authData too long for EdDSA");
    if (ps.x5c != NULL && (rc = packed_x5c_check(ps.x5c, ad->aaguid, err, errlen)) < 0)
        return rc;

    uint8_t *stmt_cbor = NULL;
    size_t cap = 0;
    size_t stmt_len = cbor_serialize_alloc(stmt, &stmt_cbor, &cap);
    fido_cred_t *c = fido_cred_new();
    if (stmt_len == 0 || c == NULL) {
        rc = FAIL(-ENOMEM, "out of memory");
        goto out;
    }
    int r;
    if ((r = fido_cred_set_type(c, key_alg)) != FIDO_OK ||
        (r = fido_cred_set_rp(c, rp->rp_id, NULL)) != FIDO_OK ||
        (r = fido_cred_set_clientdata_hash(c, cdh, SHA256_DIGEST_LENGTH)) != FIDO_OK ||
        (r = fido_cred_set_authdata_raw(c, auth_data, auth_data_len)) != FIDO_OK ||
        (ad->ext != NULL && (r = cred_mirror_ext(c, ad->ext)) != FIDO_OK) ||
        (r = fido_cred_set_fmt(c, "packed")) != FIDO_OK ||
        (r = fido_cred_set_attstmt(c, stmt_cbor, stmt_len)) != FIDO_OK) {
        rc = FAIL(-EINVAL, "packed: libfido2 refused the data: %s", fido_strerr(r));
        goto out;
    }
    r = ps.x5c != NULL ? fido_cred_verify(c) : fido_cred_verify_self(c);
    rc = r == FIDO_OK ? 0 : fido_status(r, "packed", err, errlen);
out:
    fido_cred_free(&c);
    free(stmt_cbor);
    return rc;
}

/* The attestationObject (§6.5.4): {fmt: text, attStmt: map, authData: bytes}. */
struct att_obj {
    cbor_item_t *root; /* owned */
    const cbor_item_t *fmt;
    const cbor_item_t *stmt;
    const uint8_t *auth_data;
    size_t auth_data_len;
};

static int att_obj_parse(const uint8_t *p, size_t len, struct att_obj *ao, char *err, size_t errlen)
{
    memset(ao, 0, sizeof(*ao));
    if (len == 0 || len > WEBAUTHN_ATT_OBJ_MAX)
        return FAIL(-EINVAL, "attestationObject: size %zu out of range", len);
    ao->root = auth__cbor_load(p, len, false, NULL);
    if (ao->root == NULL || !cbor_isa_map(ao->root) || !cbor_map_is_definite(ao->root))
        return FAIL(-EINVAL, "attestationObject: not a CBOR map");
    const cbor_item_t *ad = NULL;
    struct cbor_pair *pairs = cbor_map_handle(ao->root);
    for (size_t i = 0; i < cbor_map_size(ao->root); i++) {
        const cbor_item_t **slot = NULL;
        if (auth__cbor_text_eq(pairs[i].key, "fmt"))
            slot = &ao->fmt;
        else if (auth__cbor_text_eq(pairs[i].key, "attStmt"))
            slot = &ao->stmt;
        else if (auth__cbor_text_eq(pairs[i].key, "authData"))
            slot = &ad;
        if (slot == NULL)
            continue;
        if (*slot != NULL)
            return FAIL(-EINVAL, "attestationObject: duplicate member");
        *slot = pairs[i].value;
    }
    if (ao->fmt == NULL || !cbor_isa_string(ao->fmt) || !cbor_string_is_definite(ao->fmt))
        return FAIL(-EINVAL, "attestationObject: fmt missing");
    if (ao->stmt == NULL || !cbor_isa_map(ao->stmt) || !cbor_map_is_definite(ao->stmt))
        return FAIL(-EINVAL, "attestationObject: attStmt missing");
    if (ad == NULL || !cbor_isa_bytestring(ad) || !cbor_bytestring_is_definite(ad) ||
        cbor_bytestring_length(ad) == 0)
        return FAIL(-EINVAL, "attestationObject: authData missing");
    ao->auth_data = cbor_bytestring_handle(ad);
    ao->auth_data_len = cbor_bytestring_length(ad);
    return 0;
}

static int registration(const struct webauthn_rp *rp, const uint8_t *cdh, struct att_obj *ao,
                        struct auth_data *ad, struct webauthn_new_cred *out, char *err,
                        size_t errlen)
{
    int rc = auth_data_parse(ao->auth_data, ao->auth_data_len, true, ad, err, errlen);
    if (rc < 0 || (rc = auth_data_check(rp, ad, err, errlen)) < 0)
        return rc;
    struct auth__wa_key key;
    if ((rc = auth__cose_key_load(ad->cose, ad->cose_len, &key, err, errlen)) < 0)
        return rc;
    int alg = key.alg;
    auth__cose_key_free(&key);
    bool x5c = false;
    const char *fmt;
    if (auth__cbor_text_eq(ao->fmt, "none")) {
        fmt = "none";
        if (cbor_map_size(ao->stmt) != 0)
            return FAIL(-EINVAL, "none: attStmt is not empty");
    } else if (auth__cbor_text_eq(ao->fmt, "packed")) {
        fmt = "packed";
        rc = packed_verify(rp, ao->stmt, ad, ao->auth_data, ao->auth_data_len, cdh, alg, &x5c, err,
                           errlen);
        if (rc < 0)
            return rc;
    } else {
        return FAIL(-ENOTSUP, "attestation format not supported");
    }
    out->cred_id = mem_alloc(ad->cred_id_len);
    memcpy(out->cred_id, ad->cred_id, ad->cred_id_len);
    out->cred_id_len = ad->cred_id_len;
    out->cose_key = mem_alloc(ad->cose_len);
    memcpy(out->cose_key, ad->cose, ad->cose_len);
    out->cose_key_len = ad->cose_len;
    out->alg = alg;
    out->sign_count = ad->sign_count;
    out->flags = ad->flags;
    snprintf(out->fmt, sizeof(out->fmt), "%s", fmt);
    out->x5c = x5c;
    return 0;
}

int webauthn_verify_registration(const struct webauthn_rp *rp, const uint8_t *challenge,
                                 size_t challenge_len, const uint8_t *client_data,
                                 size_t client_data_len, const uint8_t *att_obj, size_t att_obj_len,
                                 struct webauthn_new_cred *out, char *err, size_t errlen)
{
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (out == NULL)
        return FAIL(-EINVAL, "no output");
    memset(out, 0, sizeof(*out));
    if (rp == NULL || rp->rp_id == NULL || (rp->origins == NULL && rp->n_origins > 0) ||
        challenge == NULL || challenge_len == 0 || challenge_len > WEBAUTHN_CHALLENGE_MAX ||
        client_data == NULL || att_obj == NULL)
        return FAIL(-EINVAL, "bad arguments");
    if (att_obj_len == 0 || att_obj_len > WEBAUTHN_ATT_OBJ_MAX)
        return FAIL(-EINVAL, "attestationObject: size %zu out of range", att_obj_len);
    uint8_t cdh[SHA256_DIGEST_LENGTH];
    int rc = client_data_check(rp, "webauthn.create", challenge, challenge_len, client_data,
                               client_data_len, cdh, err, errlen);
    if (rc < 0)
        return rc;
    struct att_obj ao;
    struct auth_data ad = { 0 };
    if ((rc = att_obj_parse(att_obj, att_obj_len, &ao, err, errlen)) == 0)
        rc = registration(rp, cdh, &ao, &ad, out, err, errlen);
    if (ad.ext != NULL)
        cbor_decref(&ad.ext);
    if (ao.root != NULL)
        cbor_decref(&ao.root);
    ERR_clear_error(); /* leave no stale OpenSSL errors for TLS code on this thread */
    return rc;
}

void webauthn_new_cred_clear(struct webauthn_new_cred *c)
{
    if (c == NULL)
        return;
    mem_free(c->cred_id);
    mem_free(c->cose_key);
    memset(c, 0, sizeof(*c));
}

/* §7.2 steps 20-21 through fido_assert_verify. */
static int assertion_sig(const struct webauthn_rp *rp, const struct auth_data *ad,
                         const uint8_t *auth_data, size_t auth_data_len, const uint8_t *sig,
                         size_t sig_len, const uint8_t *cdh, const struct auth__wa_key *key,
                         char *err, size_t errlen)
{
    int ext = 0;
    if (ad->ext != NULL) { /* as for registrations: libfido2 wants the extensions announced */
        struct cbor_pair *pairs = cbor_map_handle(ad->ext);
        for (size_t i = 0; i < cbor_map_size(ad->ext); i++) {
            if (auth__cbor_text_eq(pairs[i].key, "hmac-secret"))
                ext |= FIDO_EXT_HMAC_SECRET;
            else if (auth__cbor_text_eq(pairs[i].key, "credBlob"))
                ext |= FIDO_EXT_CRED_BLOB;
        }
    }
    fido_assert_t *a = fido_assert_new();
    if (a == NULL)
        return FAIL(-ENOMEM, "out of memory");
    int rc, r;
    if ((r = fido_assert_set_count(a, 1)) != FIDO_OK ||
        (r = fido_assert_set_rp(a, rp->rp_id)) != FIDO_OK ||
        (r = fido_assert_set_clientdata_hash(a, cdh, SHA256_DIGEST_LENGTH)) != FIDO_OK ||
        (r = fido_assert_set_authdata_raw(a, 0, auth_data, auth_data_len)) != FIDO_OK ||
        (r = fido_assert_set_extensions(a, ext)) != FIDO_OK ||
        (r = fido_assert_set_sig(a, 0, sig, sig_len)) != FIDO_OK ||
        (r = fido_assert_set_up(a, FIDO_OPT_TRUE)) != FIDO_OK ||
        (r = fido_assert_set_uv(a, rp->require_uv ? FIDO_OPT_TRUE : FIDO_OPT_OMIT)) != FIDO_OK) {
        rc = FAIL(-EINVAL, "assertion: libfido2 refused the data: %s", fido_strerr(r));
        goto out;
    }
    r = fido_assert_verify(a, 0, key->alg, auth__cose_key_pk(key));
    rc = r == FIDO_OK ? 0 : fido_status(r, "assertion", err, errlen);
out:
    fido_assert_free(&a);
    return rc;
}

/* alg may be 0 to take the algorithm from the COSE key; a nonzero alg must match it. */
int webauthn_verify_assertion(const struct webauthn_rp *rp, const uint8_t *challenge,
                              size_t challenge_len, const uint8_t *client_data,
                              size_t client_data_len, const uint8_t *auth_data,
                              size_t auth_data_len, const uint8_t *sig, size_t sig_len,
                              const uint8_t *cose_key, size_t cose_key_len, int alg,
                              uint32_t stored_count, uint32_t *new_count, char *err, size_t errlen)
{
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (new_count != NULL)
        *new_count = 0;
    if (rp == NULL || rp->rp_id == NULL || (rp->origins == NULL && rp->n_origins > 0) ||
        challenge == NULL || challenge_len == 0 || challenge_len > WEBAUTHN_CHALLENGE_MAX ||
        client_data == NULL || auth_data == NULL || sig == NULL || cose_key == NULL ||
        new_count == NULL)
        return FAIL(-EINVAL, "bad arguments");
    if (auth_data_len > WEBAUTHN_AUTH_DATA_MAX)
        return FAIL(-EINVAL, "authData: size %zu out of range", auth_data_len);
    if (sig_len == 0 || sig_len > WEBAUTHN_SIG_MAX)
        return FAIL(-EINVAL, "signature: size %zu out of range", sig_len);
    uint8_t cdh[SHA256_DIGEST_LENGTH];
    int rc = client_data_check(rp, "webauthn.get", challenge, challenge_len, client_data,
                               client_data_len, cdh, err, errlen);
    if (rc < 0)
        return rc;
    struct auth_data ad;
    if ((rc = auth_data_parse(auth_data, auth_data_len, false, &ad, err, errlen)) < 0)
        return rc;
    struct auth__wa_key key = { 0 };
    if ((rc = auth_data_check(rp, &ad, err, errlen)) < 0 ||
        (rc = auth__cose_key_load(cose_key, cose_key_len, &key, err, errlen)) < 0)
        goto out;
    if (alg != 0 && alg != key.alg) {
        rc = FAIL(-EINVAL, "stored alg %d is not the COSE key's %d", alg, key.alg);
        goto out;
    }
    if (key.alg == WEBAUTHN_EDDSA && auth_data_len > WEBAUTHN_EDDSA_AUTH_DATA_MAX) {
        rc = FAIL(-ENOTSUP, "authData too long for EdDSA");
        goto out;
    }
    rc = assertion_sig(rp, &ad, auth_data, auth_data_len, sig, sig_len, cdh, &key, err, errlen);
    if (rc < 0)
        goto out;
    if ((stored_count != 0 || ad.sign_count != 0) && ad.sign_count <= stored_count) {
        rc = FAIL(-ESTALE, "sign count %u not above stored %u", ad.sign_count, stored_count);
        goto out;
    }
    *new_count = ad.sign_count;
out:
    auth__cose_key_free(&key);
    if (ad.ext != NULL)
        cbor_decref(&ad.ext);
    ERR_clear_error();
    return rc;
}
