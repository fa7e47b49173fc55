/* test_push.c: Web Push crypto and checks: the RFC 8291 §5 example byte for byte, our own
 * decryption of fresh ciphertexts, the payload bound (at and one past), VAPID JWTs verified
 * with OpenSSL, endpoint URL parsing, the private-address classifier, and which unseen events
 * become automatic pushes. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/param_build.h>

#include "core/b64.h"
#include "core/mem.h"
#include "push/push.h"
#include "push/push_int.h"

static uint8_t *dec(const char *b64u, size_t *len)
{
    uint8_t *out = NULL;
    size_t n = 0;
    assert_int_equal(b64_decode(b64u, strlen(b64u), B64_URL, &out, &n), 0);
    if (len)
        *len = n;
    return out;
}

/* ---- RFC 8291 §5 (Appendix A of the draft): the example, byte for byte ---- */

static const struct {
    const char *name, *value;
} rfc8291[] = {
    { "plaintext", "When I grow up, I want to be a watermelon" },
    { "as_private", "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw" },
    { "as_public",
      "BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8" },
    { "ua_private", "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94" },
    { "ua_public",
      "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4" },
    { "salt", "DGv6ra1nlYgDCS1FRnbzlw" },
    { "auth_secret", "BTBZMqHH6r4Tts7J_aSIgg" },
    { "body",
      "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN" },
};

static const char *vec(const char *name)
{
    for (size_t i = 0; i < sizeof(rfc8291) / sizeof(rfc8291[0]); i++) {
        if (strcmp(rfc8291[i].name, name) == 0)
            return rfc8291[i].value;
    }
    fail_msg("no vector row %s", name);
    return NULL;
}

static void rfc8291_example_encrypts_byte_for_byte(void **state)
{
    (void)state;
    uint8_t *as_priv = dec(vec("as_private"), NULL);
    uint8_t *ua_pub = dec(vec("ua_public"), NULL);
    uint8_t *salt = dec(vec("salt"), NULL);
    uint8_t *auth = dec(vec("auth_secret"), NULL);
    size_t want_len;
    uint8_t *want = dec(vec("body"), &want_len);
    const char *plain = vec("plaintext");
    uint8_t out[PUSH_BODY_MAX];
    size_t n = 0;
    assert_int_equal(
        push_ece_encrypt(ua_pub, auth, plain, strlen(plain), as_priv, salt, out, sizeof(out), &n),
        0);
    assert_int_equal(n, 144);
    assert_int_equal(n, want_len);
    for (size_t i = 0; i < n; i++) {
        if (out[i] != want[i])
            fail_msg("byte %zu differs: got %02x, RFC 8291 has %02x", i, out[i], want[i]);
    }
    /* the sender key in the header is the RFC's as_public */
    uint8_t *as_pub = dec(vec("as_public"), NULL);
    assert_memory_equal(out + 21, as_pub, PUSH_P256_PUB_LEN);
    mem_free(as_priv);
    mem_free(as_pub);
    mem_free(ua_pub);
    mem_free(salt);
    mem_free(auth);
    mem_free(want);
}

/* An independent decryption (the receiver's side of RFC 8291 §3.4), with the UA's private key
 * from the RFC. Returns the plaintext length or -1. */
static int decrypt(const uint8_t *body, size_t len, uint8_t *plain)
{
    uint8_t *ua_priv = dec(vec("ua_private"), NULL);
    uint8_t *ua_pub = dec(vec("ua_public"), NULL);
    uint8_t *auth = dec(vec("auth_secret"), NULL);
    const uint8_t *salt = body, *as_pub = body + 21;
    assert_int_equal(body[20], 65);
    /* ECDH with EVP keys built from the raw values */
    OSSL_PARAM_BLD *b1 = OSSL_PARAM_BLD_new();
    BIGNUM *d = BN_bin2bn(ua_priv, 32, NULL);
    OSSL_PARAM_BLD_push_utf8_string(b1, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0);
    OSSL_PARAM_BLD_push_octet_string(b1, OSSL_PKEY_PARAM_PUB_KEY, ua_pub, 65);
    OSSL_PARAM_BLD_push_BN(b1, OSSL_PKEY_PARAM_PRIV_KEY, d);
    OSSL_PARAM *p1 = OSSL_PARAM_BLD_to_param(b1);
    OSSL_PARAM_BLD *b2 = OSSL_PARAM_BLD_new();
    OSSL_PARAM_BLD_push_utf8_string(b2, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0);
    OSSL_PARAM_BLD_push_octet_string(b2, OSSL_PKEY_PARAM_PUB_KEY, as_pub, 65);
    OSSL_PARAM *p2 = OSSL_PARAM_BLD_to_param(b2);
    EVP_PKEY_CTX *kc = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    EVP_PKEY *mine = NULL, *peer = NULL;
    EVP_PKEY_fromdata_init(kc);
    assert_int_equal(EVP_PKEY_fromdata(kc, &mine, EVP_PKEY_KEYPAIR, p1), 1);
    assert_int_equal(EVP_PKEY_fromdata(kc, &peer, EVP_PKEY_PUBLIC_KEY, p2), 1);
    EVP_PKEY_CTX *dc = EVP_PKEY_CTX_new(mine, NULL);
    uint8_t secret[32];
    size_t sl = sizeof(secret);
    EVP_PKEY_derive_init(dc);
    EVP_PKEY_derive_set_peer(dc, peer);
    assert_int_equal(EVP_PKEY_derive(dc, secret, &sl), 1);
    /* HKDF steps, spelled out */
    uint8_t prk_key[32], ikm[32], prk[32], cek[32], nonce[32], info[200];
    unsigned int ml = 32;
    HMAC(EVP_sha256(), auth, 16, secret, 32, prk_key, &ml);
    size_t il = 0;
    memcpy(info, "WebPush: info", 14);
    il = 14;
    memcpy(info + il, ua_pub, 65);
    il += 65;
    memcpy(info + il, as_pub, 65);
    il += 65;
    info[il++] = 1;
    HMAC(EVP_sha256(), prk_key, 32, info, il, ikm, &ml);
    HMAC(EVP_sha256(), salt, 16, ikm, 32, prk, &ml);
    HMAC(EVP_sha256(), prk, 32, (const uint8_t *)"Content-Encoding: aes128gcm\0\1", 29, cek, &ml);
    HMAC(EVP_sha256(), prk, 32, (const uint8_t *)"Content-Encoding: nonce\0\1", 25, nonce, &ml);
    size_t ctlen = len - 86;
    EVP_CIPHER_CTX *cc = EVP_CIPHER_CTX_new();
    int n1 = 0, n2 = 0;
    EVP_DecryptInit_ex(cc, EVP_aes_128_gcm(), NULL, cek, nonce);
    EVP_DecryptUpdate(cc, plain, &n1, body + 86, (int)(ctlen - 16));
    EVP_CIPHER_CTX_ctrl(cc, EVP_CTRL_GCM_SET_TAG, 16, (void *)(body + len - 16));
    int ok = EVP_DecryptFinal_ex(cc, plain + n1, &n2);
    EVP_CIPHER_CTX_free(cc);
    EVP_PKEY_CTX_free(dc);
    EVP_PKEY_CTX_free(kc);
    EVP_PKEY_free(mine);
    EVP_PKEY_free(peer);
    OSSL_PARAM_free(p1);
    OSSL_PARAM_free(p2);
    OSSL_PARAM_BLD_free(b1);
    OSSL_PARAM_BLD_free(b2);
    BN_free(d);
    mem_free(ua_priv);
    mem_free(ua_pub);
    mem_free(auth);
    if (ok != 1 || n1 < 1 || plain[n1 - 1] != 0x02)
        return -1;
    return n1 - 1;
}

static void fresh_ciphertexts_decrypt_and_differ(void **state)
{
    (void)state;
    uint8_t *ua_pub = dec(vec("ua_public"), NULL);
    uint8_t *auth = dec(vec("auth_secret"), NULL);
    const char *msg = "{\"subject\":\"alice\",\"body\":\"héllo\"}";
    uint8_t a[PUSH_BODY_MAX], b[PUSH_BODY_MAX], plain[PUSH_BODY_MAX];
    size_t na, nb;
    assert_int_equal(
        push_ece_encrypt(ua_pub, auth, msg, strlen(msg), NULL, NULL, a, sizeof(a), &na), 0);
    assert_int_equal(
        push_ece_encrypt(ua_pub, auth, msg, strlen(msg), NULL, NULL, b, sizeof(b), &nb), 0);
    assert_int_equal(na, strlen(msg) + 103);
    assert_memory_not_equal(a, b, 16);           /* fresh salt */
    assert_memory_not_equal(a + 21, b + 21, 65); /* fresh sender key */
    int n = decrypt(a, na, plain);
    assert_int_equal(n, (int)strlen(msg));
    assert_memory_equal(plain, msg, strlen(msg));
    a[na - 1] ^= 1; /* a tampered tag is refused */
    assert_int_equal(decrypt(a, na, plain), -1);
    mem_free(ua_pub);
    mem_free(auth);
}

static void payload_bound_is_3993_bytes_so_the_body_is_4096(void **state)
{
    (void)state;
    uint8_t *ua_pub = dec(vec("ua_public"), NULL);
    uint8_t *auth = dec(vec("auth_secret"), NULL);
    char *big = mem_alloc(PUSH_PAYLOAD_MAX + 1);
    memset(big, 'x', PUSH_PAYLOAD_MAX + 1);
    uint8_t out[PUSH_BODY_MAX], plain[PUSH_BODY_MAX];
    size_t n;
    assert_int_equal(PUSH_PAYLOAD_MAX, 3993);
    assert_int_equal(
        push_ece_encrypt(ua_pub, auth, big, PUSH_PAYLOAD_MAX, NULL, NULL, out, sizeof(out), &n), 0);
    assert_int_equal(n, PUSH_BODY_MAX);
    assert_int_equal(decrypt(out, n, plain), PUSH_PAYLOAD_MAX);
    assert_int_equal(
        push_ece_encrypt(ua_pub, auth, big, PUSH_PAYLOAD_MAX + 1, NULL, NULL, out, sizeof(out), &n),
        -EMSGSIZE);
    assert_int_equal(push_ece_encrypt(ua_pub, auth, big, 10, NULL, NULL, out, 10 + 102, &n),
                     -EMSGSIZE);
    mem_free(big);
    mem_free(ua_pub);
    mem_free(auth);
}

static void keys_off_the_curve_are_refused(void **state)
{
    (void)state;
    uint8_t *ua_pub = dec(vec("ua_public"), NULL);
    uint8_t *auth = dec(vec("auth_secret"), NULL);
    assert_true(push_p256_valid(ua_pub));
    uint8_t bad[65];
    memcpy(bad, ua_pub, 65);
    bad[64] ^= 1;
    assert_false(push_p256_valid(bad));
    uint8_t out[256];
    size_t n;
    assert_int_equal(push_ece_encrypt(bad, auth, "x", 1, NULL, NULL, out, sizeof(out), &n),
                     -EINVAL);
    bad[0] = 0x02;
    assert_false(push_p256_valid(bad));
    memset(bad, 0, sizeof(bad));
    assert_false(push_p256_valid(bad));
    mem_free(ua_pub);
    mem_free(auth);
}

/* ---- VAPID ---- */

static EVP_PKEY *public_key(const uint8_t pub[65])
{
    OSSL_PARAM_BLD *b = OSSL_PARAM_BLD_new();
    OSSL_PARAM_BLD_push_utf8_string(b, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0);
    OSSL_PARAM_BLD_push_octet_string(b, OSSL_PKEY_PARAM_PUB_KEY, pub, 65);
    OSSL_PARAM *p = OSSL_PARAM_BLD_to_param(b);
    EVP_PKEY_CTX *kc = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    EVP_PKEY *k = NULL;
    EVP_PKEY_fromdata_init(kc);
    assert_int_equal(EVP_PKEY_fromdata(kc, &k, EVP_PKEY_PUBLIC_KEY, p), 1);
    EVP_PKEY_CTX_free(kc);
    OSSL_PARAM_free(p);
    OSSL_PARAM_BLD_free(b);
    return k;
}

/* Verifies a JOSE ES256 signature (R || S) with OpenSSL: 1 valid, 0 not. */
static int verify_es256(const uint8_t pub[65], const char *jwt)
{
    const char *dot = strrchr(jwt, '.');
    size_t siglen;
    uint8_t *rs = dec(dot + 1, &siglen);
    assert_int_equal(siglen, 64);
    ECDSA_SIG *sig = ECDSA_SIG_new();
    ECDSA_SIG_set0(sig, BN_bin2bn(rs, 32, NULL), BN_bin2bn(rs + 32, 32, NULL));
    uint8_t *der = NULL;
    int dl = i2d_ECDSA_SIG(sig, &der);
    EVP_PKEY *k = public_key(pub);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, k);
    int ok = EVP_DigestVerify(md, der, (size_t)dl, (const uint8_t *)jwt, (size_t)(dot - jwt));
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(k);
    OPENSSL_free(der);
    ECDSA_SIG_free(sig);
    mem_free(rs);
    return ok;
}

static json_t *jwt_part(const char *jwt, int idx)
{
    const char *s = jwt;
    for (int i = 0; i < idx; i++)
        s = strchr(s, '.') + 1;
    size_t len = strcspn(s, ".");
    uint8_t *raw;
    size_t n;
    assert_int_equal(b64_decode(s, len, B64_URL, &raw, &n), 0);
    json_t *j = json_loadb((const char *)raw, n, 0, NULL);
    mem_free(raw);
    assert_non_null(j);
    return j;
}

static void vapid_jwt_verifies_with_openssl_and_carries_the_claims(void **state)
{
    (void)state;
    uint8_t *priv = dec(vec("as_private"), NULL);
    struct push_vapid *v = push_vapid_new(priv);
    assert_non_null(v);
    uint8_t *as_pub = dec(vec("as_public"), NULL);
    assert_memory_equal(push_vapid_public(v), as_pub, 65);
    assert_string_equal(push_vapid_public_b64(v), vec("as_public"));
    int64_t exp = (int64_t)time(NULL) + 12 * 3600;
    char *jwt = push_vapid_jwt(v, "https://push.example.net", "mailto:admin@example.org", exp);
    assert_non_null(jwt);
    assert_int_equal(verify_es256(push_vapid_public(v), jwt), 1);
    json_t *h = jwt_part(jwt, 0), *c = jwt_part(jwt, 1);
    assert_string_equal(json_string_value(json_object_get(h, "alg")), "ES256");
    assert_string_equal(json_string_value(json_object_get(h, "typ")), "JWT");
    assert_string_equal(json_string_value(json_object_get(c, "aud")), "https://push.example.net");
    assert_string_equal(json_string_value(json_object_get(c, "sub")), "mailto:admin@example.org");
    assert_int_equal(json_integer_value(json_object_get(c, "exp")), exp);
    json_decref(h);
    json_decref(c);
    /* a changed payload no longer verifies */
    char *dot = strchr(jwt, '.');
    dot[1] = dot[1] == 'e' ? 'f' : 'e';
    assert_int_equal(verify_es256(push_vapid_public(v), jwt), 0);
    mem_free(jwt);
    push_vapid_free(v);
    mem_free(priv);
    mem_free(as_pub);
}

static void vapid_refuses_zero_and_out_of_range_scalars(void **state)
{
    (void)state;
    uint8_t zero[32] = { 0 }, ff[32];
    memset(ff, 0xff, sizeof(ff));
    assert_null(push_vapid_new(zero));
    assert_null(push_vapid_new(ff));
    uint8_t one[32] = { 0 };
    one[31] = 1;
    struct push_vapid *v = push_vapid_new(one);
    assert_non_null(v);
    assert_int_equal(strlen(push_vapid_public_b64(v)), 87);
    push_vapid_free(v);
}

/* ---- endpoints ---- */

static void urls_parse_into_host_port_and_audience(void **state)
{
    (void)state;

    static const struct {
        const char *url;
        bool allow_http;
        int rc;
        const char *host, *port, *origin;
    } rows[] = {
        { "https://fcm.googleapis.com/fcm/send/abc:def", false, 0, "fcm.googleapis.com", "443",
          "https://fcm.googleapis.com" },
        { "https://push.example:8443/p/1?x=y", false, 0, "push.example", "8443",
          "https://push.example:8443" },
        { "https://[2001:db8::1]/x", false, 0, "2001:db8::1", "443", "https://[2001:db8::1]" },
        { "HTTPS://Push.Example/x", false, 0, "Push.Example", "443", "https://Push.Example" },
        { "http://push.example/x", false, -EPROTONOSUPPORT, NULL, NULL, NULL },
        { "http://127.0.0.1:9000/x", true, 0, "127.0.0.1", "9000", "http://127.0.0.1:9000" },
        { "ftp://push.example/x", true, -EINVAL, NULL, NULL, NULL },
        { "https://user:pw@push.example/x", false, -EINVAL, NULL, NULL, NULL },
        { "/relative/path", false, -EINVAL, NULL, NULL, NULL },
        { "https://", false, -EINVAL, NULL, NULL, NULL },
        { "not a url", false, -EINVAL, NULL, NULL, NULL },
    };

    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct push_url u;
        int rc = push_url_parse(rows[i].url, rows[i].allow_http, &u);
        if (rc != rows[i].rc)
            fail_msg("row %zu (%s): rc %d, want %d", i, rows[i].url, rc, rows[i].rc);
        if (rc == 0) {
            assert_string_equal(u.host, rows[i].host);
            assert_string_equal(u.port, rows[i].port);
            assert_string_equal(u.origin, rows[i].origin);
        }
    }
    char *longurl = mem_alloc(2100);
    memcpy(longurl, "https://a.example/", 18);
    memset(longurl + 18, 'a', 2100 - 19);
    longurl[2099] = '\0';
    struct push_url u;
    assert_int_equal(push_url_parse(longurl, false, &u), -EINVAL);
    mem_free(longurl);
}

static bool addr_public(const char *text)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    if (strchr(text, ':')) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        s6->sin6_family = AF_INET6;
        assert_int_equal(inet_pton(AF_INET6, text, &s6->sin6_addr), 1);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        s4->sin_family = AF_INET;
        assert_int_equal(inet_pton(AF_INET, text, &s4->sin_addr), 1);
    }
    return push_addr_public((struct sockaddr *)&ss);
}

static void private_loopback_and_link_local_addresses_are_not_public(void **state)
{
    (void)state;

    static const struct {
        const char *addr;
        bool pub;
    } rows[] = {
        { "127.0.0.1", false },
        { "127.255.255.254", false },
        { "10.1.2.3", false },
        { "172.16.0.1", false },
        { "172.31.255.255", false },
        { "172.32.0.1", true },
        { "192.168.1.1", false },
        { "169.254.169.254", false },
        { "100.64.0.1", false },
        { "100.128.0.1", true },
        { "0.0.0.0", false },
        { "224.0.0.1", false },
        { "255.255.255.255", false },
        { "8.8.8.8", true },
        { "142.250.74.10", true },
        { "::1", false },
        { "::", false },
        { "fe80::1", false },
        { "fc00::1", false },
        { "fd12:3456::1", false },
        { "ff02::1", false },
        { "::ffff:127.0.0.1", false },
        { "::ffff:10.0.0.1", false },
        { "::ffff:8.8.8.8", true },
        { "64:ff9b::a00:1", false },
        { "64:ff9b:1::808:808", false },
        { "64:ff9b:1:ffff::1", false },
        { "64:ff9b:2::1", true },
        { "2001:db8::1", false },
        { "2002:a00:1::1", false },
        { "2a00:1450:4001::200e", true },
    };

    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        if (addr_public(rows[i].addr) != rows[i].pub)
            fail_msg("row %zu: %s should be %s", i, rows[i].addr,
                     rows[i].pub ? "public" : "refused");
    }
}

/* The CURLOPT_RESOLVE entry brackets an IPv6 address; an IPv6-literal host gets none (curl
 * cannot parse one there and connects to the literal itself). */
static void resolve_entry_brackets_ipv6_and_skips_literal_hosts(void **state)
{
    (void)state;
    char e[600];
    assert_true(push__resolve_entry(e, sizeof(e), "example.org", "443", "93.184.216.34"));
    assert_string_equal(e, "example.org:443:93.184.216.34");
    assert_true(push__resolve_entry(e, sizeof(e), "example.org", "443", "2001:db8::1"));
    assert_string_equal(e, "example.org:443:[2001:db8::1]");
    assert_false(push__resolve_entry(e, sizeof(e), "::1", "8080", "::1"));
    assert_false(push__resolve_entry(e, sizeof(e), "2001:db8::1", "443", "2001:db8::1"));
}

/* ---- automatic pushes ---- */

static json_t *auto_for(const char *name, const char *payload, const char *stanza, bool body,
                        char *peer, char *topic)
{
    json_t *p = json_loads(payload, 0, NULL);
    assert_non_null(p);
    struct push_auto_opts o = { .user = "alice", .domain = "example.org", .include_body = body };
    json_t *n = push_auto_notification(name, p, stanza, &o, peer, topic);
    json_decref(p);
    return n;
}

static const char *str(json_t *n, const char *k)
{
    return json_string_value(json_object_get(n, k));
}

static void a_chat_message_pushes_the_sender_and_a_generic_text_by_default(void **state)
{
    (void)state;
    char peer[PUSH_PEER_MAX], topic[PUSH_TOPIC_MAX + 1], topic2[PUSH_TOPIC_MAX + 1];
    const char *msg =
        "{\"type\":\"chat\",\"from\":\"bob@example.org/phone\",\"to\":\"alice@example.org\","
        "\"body\":\"the secret plan\",\"data\":null}";
    json_t *n = auto_for("chatapi.chat", msg, NULL, false, peer, topic);
    assert_non_null(n);
    assert_string_equal(str(n, "subject"), "bob");
    assert_string_equal(str(n, "body"), "New message");
    assert_string_equal(str(n, "data"), "bob");
    assert_string_equal(peer, "bob");
    assert_int_equal(strlen(topic), 22);
    json_t *act = json_array_get(json_object_get(n, "actions"), 0);
    assert_string_equal(str(act, "action"), "webpush.message");
    assert_string_equal(str(act, "type"), "text");
    assert_null(json_object_get(n, "token"));
    char *text = json_dumps(n, 0);
    assert_null(strstr(text, "secret plan"));
    free(text);
    json_decref(n);
    n = auto_for("chatapi.chat", msg, NULL, true, peer, topic2);
    assert_string_equal(str(n, "body"), "the secret plan");
    assert_string_equal(topic, topic2); /* one topic per conversation */
    json_decref(n);
    /* a remote sender: the bare JID, and no reply action */
    n = auto_for("chatapi.chat", "{\"type\":\"chat\",\"from\":\"eve@other.net/x\",\"body\":\"hi\"}",
                 NULL, false, peer, topic);
    assert_string_equal(str(n, "subject"), "eve@other.net");
    assert_string_equal(peer, "");
    assert_null(json_object_get(n, "actions"));
    json_decref(n);
}

static void long_bodies_are_cut_on_a_character_boundary(void **state)
{
    (void)state;
    char body[3000] = "";
    for (int i = 0; i < 900; i++)
        strcat(body, "\xc3\xa9"); /* é: 1800 bytes */
    char msg[3200];
    snprintf(msg, sizeof(msg), "{\"type\":\"chat\",\"from\":\"bob@example.org\",\"body\":\"%s\"}",
             body);
    char peer[PUSH_PEER_MAX], topic[PUSH_TOPIC_MAX + 1];
    json_t *n = auto_for("chatapi.chat", msg, NULL, true, peer, topic);
    const char *b = str(n, "body");
    assert_non_null(b); /* jansson refuses invalid UTF-8, so a bad cut would be NULL */
    assert_true(strlen(b) <= 1003);
    json_decref(n);
}

static void only_pushworthy_events_become_pushes(void **state)
{
    (void)state;
    char peer[PUSH_PEER_MAX], topic[PUSH_TOPIC_MAX + 1];

    static const struct {
        const char *name, *payload, *stanza;
        bool pushed;
    } rows[] = {
        { "chatapi.chat",
          "{\"type\":\"chat\",\"from\":\"bob@example.org\",\"state\":\"composing\"}", NULL, false },
        { "chatapi.chat", "{\"type\":\"headline\",\"from\":\"example.org\",\"body\":\"motd\"}",
          NULL, false },
        { "chatapi.chat", "{\"type\":\"error\",\"from\":\"bob@example.org\",\"body\":\"x\"}", NULL,
          false },
        { "chatapi.chat", "{\"type\":\"normal\",\"from\":\"bob@example.org\",\"body\":\"x\"}", NULL,
          true },
        { "chatapi.chat", "{\"type\":\"chat\",\"from\":\"bob@example.org\",\"body\":\"old\"}",
          "<message type='chat' from='bob@example.org'><body>old</body><delay xmlns='urn:xmpp:delay' stamp='2020-01-01T00:00:00Z'/></message>",
          false },
        { "chatapi.presence", "{\"type\":\"presence\",\"from\":\"bob@example.org\"}", NULL, false },
        { "chatapi.xmpp", "{\"xmpp\":\"PG1lc3NhZ2UvPg==\"}", NULL, false },
        { "chatapi.muc",
          "{\"type\":\"groupchat\",\"from\":\"room@conf.example.org/bob\",\"body\":\"hello all\"}",
          NULL, false },
        { "chatapi.muc",
          "{\"type\":\"groupchat\",\"from\":\"room@conf.example.org/bob\",\"body\":\"hi Alice!\"}",
          NULL, true },
        { "chatapi.muc",
          "{\"type\":\"groupchat\",\"from\":\"room@conf.example.org/bob\",\"body\":\"hi malice\"}",
          NULL, false },
        { "chatapi.muc",
          "{\"type\":\"groupchat\",\"from\":\"room@conf.example.org/bob\",\"body\":\"hi Al\"}",
          "<message type='groupchat' from='room@conf.example.org/bob'><body>hi Al</body><reference xmlns='urn:xmpp:reference:0' type='mention' begin='3' end='5' uri='xmpp:alice@example.org'/></message>",
          true },
        { "chatapi.muc",
          "{\"type\":\"groupchat\",\"from\":\"room@conf.example.org/bob\",\"body\":\"alice: earlier\"}",
          "<message type='groupchat' from='room@conf.example.org/bob'><body>alice: earlier</body><delay xmlns='urn:xmpp:delay' stamp='2020-01-01T00:00:00Z'/></message>",
          false },
        { "chatapi.muc",
          "{\"type\":\"invitationReceived\",\"room\":\"team@conf.example.org\",\"inviter\":\"bob@example.org/x\",\"reason\":\"null\",\"url\":\"\"}",
          NULL, true },
        { "chatapi.muc", "{\"type\":\"invitationReceived\",\"room\":\"null\",\"inviter\":\"null\"}",
          NULL, false },
    };

    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        json_t *n = auto_for(rows[i].name, rows[i].payload, rows[i].stanza, false, peer, topic);
        if ((n != NULL) != rows[i].pushed)
            fail_msg("row %zu: pushed=%d, want %d", i, n != NULL, rows[i].pushed);
        json_decref(n);
    }
}

static void mentions_and_invitations_name_the_room(void **state)
{
    (void)state;
    char peer[PUSH_PEER_MAX], topic[PUSH_TOPIC_MAX + 1];
    json_t *n = auto_for(
        "chatapi.muc",
        "{\"type\":\"groupchat\",\"from\":\"team@conf.example.org/bob\",\"body\":\"@alice look\"}",
        NULL, false, peer, topic);
    assert_string_equal(str(n, "subject"), "bob in team");
    assert_string_equal(str(n, "body"), "You were mentioned");
    assert_string_equal(str(n, "data"), "team@conf.example.org");
    assert_string_equal(peer, "");
    json_decref(n);
    n = auto_for(
        "chatapi.muc",
        "{\"type\":\"invitationReceived\",\"room\":\"team@conf.example.org\",\"inviter\":\"bob@example.org/x\",\"reason\":\"standup\"}",
        NULL, false, peer, topic);
    assert_string_equal(str(n, "subject"), "Invitation to team");
    assert_string_equal(str(n, "body"), "bob invites you to team@conf.example.org");
    json_decref(n);
    n = auto_for(
        "chatapi.muc",
        "{\"type\":\"invitationReceived\",\"room\":\"team@conf.example.org\",\"inviter\":\"bob@example.org/x\",\"reason\":\"standup\"}",
        NULL, true, peer, topic);
    assert_string_equal(str(n, "body"), "bob invites you to team@conf.example.org: standup");
    json_decref(n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rfc8291_example_encrypts_byte_for_byte),
        cmocka_unit_test(fresh_ciphertexts_decrypt_and_differ),
        cmocka_unit_test(payload_bound_is_3993_bytes_so_the_body_is_4096),
        cmocka_unit_test(keys_off_the_curve_are_refused),
        cmocka_unit_test(vapid_jwt_verifies_with_openssl_and_carries_the_claims),
        cmocka_unit_test(vapid_refuses_zero_and_out_of_range_scalars),
        cmocka_unit_test(urls_parse_into_host_port_and_audience),
        cmocka_unit_test(private_loopback_and_link_local_addresses_are_not_public),
        cmocka_unit_test(resolve_entry_brackets_ipv6_and_skips_literal_hosts),
        cmocka_unit_test(a_chat_message_pushes_the_sender_and_a_generic_text_by_default),
        cmocka_unit_test(long_bodies_are_cut_on_a_character_boundary),
        cmocka_unit_test(only_pushworthy_events_become_pushes),
        cmocka_unit_test(mentions_and_invitations_name_the_room),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
