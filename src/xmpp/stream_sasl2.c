/* stream_sasl2.c: XEP-0388 (Extensible SASL Profile) framing and XEP-0484 (FAST) tokens: when
 * SASL2 is used, the <authenticate/> element with the user agent and the token request, the
 * HT-SHA-256-NONE mechanism (initial response username NUL HMAC-SHA-256(token, "Initiator"),
 * the server proving itself with HMAC-SHA-256(token, "Responder")), and reading the granted
 * token from <success/>. The SASL exchange itself stays in stream_sasl.c. */
#define LOG_MODULE "xmpp"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "core/b64.h"
#include "core/log.h"
#include "core/mem.h"
#include "xmpp/stanza.h"
#include "xmpp/xmpp_int.h"

#define HT_LEN 32 /* SHA-256 */

const struct xmpp_stanza *xmpp__sasl2_pick(struct xmpp_stream *s,
                                           const struct xmpp_stanza *features)
{
    if (s->fast_in == NULL && !s->request_fast)
        return NULL;
    struct xmpp_stanza *a = xmpp_stanza_child(features, "authentication", XMPP__NS_SASL2);
    struct xmpp_stanza *in = a ? xmpp_stanza_child(a, "inline", XMPP__NS_SASL2) : NULL;
    struct xmpp_stanza *fast = in ? xmpp_stanza_child(in, "fast", XMPP__NS_FAST) : NULL;
    if (fast != NULL && xmpp__mech_offered(fast, XMPP__FAST_MECH))
        return a;
    if (s->fast_in != NULL) {
        log_warn("auth",
                 "jid=%s host=%s result=error sasl2=%d msg=\"FAST " XMPP__FAST_MECH
                 " not offered\"",
                 s->logjid, s->host, a != NULL);
        xmpp__finish(s, -ENOTSUP, "FAST not offered", false);
        return NULL;
    }
    log_debug("sasl2_skip", "jid=%s sasl2=%d fast=%d", s->logjid, a != NULL, fast != NULL);
    return NULL;
}

int xmpp__sasl2_authenticate(struct xmpp_stream *s, const char *b64)
{
    bool ask = s->ua_id != NULL && (s->request_fast || s->ht);
    size_t cap = (b64 ? strlen(b64) : 0) + (s->ua_id ? strlen(s->ua_id) : 0) + 512;
    char *x = mem_alloc(cap); /* sized once: no stray copies of the response from growing */
    int n = snprintf(
        x, cap,
        "<authenticate xmlns='" XMPP__NS_SASL2 "' mechanism='%s'>"
        "%s%s%s"
        "%s%s%s"
        "%s%s"
        "</authenticate>",
        s->mech, b64 ? "<initial-response>" : "", b64 ? (b64[0] ? b64 : "=") : "",
        b64 ? "</initial-response>" : "", s->ua_id ? "<user-agent id='" : "",
        s->ua_id ? s->ua_id : "",
        s->ua_id ? "'><software>Sparkgate</software><device>gateway</device>"
                   "</user-agent>"
                 : "",
        s->ht ? "<fast xmlns='" XMPP__NS_FAST "'/>" : "",
        ask ? "<request-token xmlns='" XMPP__NS_FAST "' mechanism='" XMPP__FAST_MECH "'/>" : "");
    int rc = n < 0 || (size_t)n >= cap ? -EINVAL : xmpp__write(s, x, (size_t)n);
    OPENSSL_cleanse(x, cap);
    mem_free(x);
    s->token_requested = ask && rc == 0;
    return rc;
}

static int ht_mac(const struct xmpp_stream *s, const char *label, uint8_t mac[HT_LEN])
{
    const char *tok = s->fast_in->token;
    unsigned int len = 0;
    /* cb-data is empty for -NONE, so the message is the label alone */
    if (HMAC(EVP_sha256(), tok, (int)strlen(tok), (const unsigned char *)label, strlen(label), mac,
             &len) == NULL ||
        len != HT_LEN)
        return -EPROTO;
    return 0;
}

char *xmpp__ht_initial(const struct xmpp_stream *s)
{
    uint8_t mac[HT_LEN];
    if (ht_mac(s, "Initiator", mac) < 0)
        return NULL;
    size_t ul = strlen(s->username);
    size_t n = ul + 1 + HT_LEN;
    uint8_t *msg = mem_alloc(n);
    memcpy(msg, s->username, ul);
    msg[ul] = 0;
    memcpy(msg + ul + 1, mac, HT_LEN);
    char *b64 = b64_encode(msg, n, B64_STD, NULL);
    OPENSSL_cleanse(msg, n);
    OPENSSL_cleanse(mac, sizeof(mac));
    mem_free(msg);
    return b64;
}

int xmpp__ht_verify(const struct xmpp_stream *s, const char *b64)
{
    uint8_t *got = NULL;
    size_t n = 0;
    uint8_t want[HT_LEN];
    if (b64 == NULL || b64_decode(b64, strlen(b64), B64_STD, &got, &n) < 0)
        return -EPROTO;
    int rc = ht_mac(s, "Responder", want);
    if (rc == 0 && (n != HT_LEN || CRYPTO_memcmp(got, want, HT_LEN) != 0))
        rc = -EPROTO;
    OPENSSL_cleanse(want, sizeof(want));
    mem_free(got);
    return rc;
}

int64_t xmpp__datetime_parse(const char *s)
{
    int y, mo, d, h, mi, se, n = 0;
    if (s == NULL || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &se, &n) != 6 ||
        n != 19)
        return 0;
    const char *p = s + n;
    if (*p == '.') {
        p++;
        while (isdigit((unsigned char)*p))
            p++;
    }
    long off = 0;
    if (*p == 'Z') {
        p++;
    } else if ((*p == '+' || *p == '-') && isdigit((unsigned char)p[1]) &&
               isdigit((unsigned char)p[2]) && p[3] == ':' && isdigit((unsigned char)p[4]) &&
               isdigit((unsigned char)p[5])) {
        off = ((p[1] - '0') * 10 + (p[2] - '0')) * 3600L + ((p[4] - '0') * 10 + (p[5] - '0')) * 60L;
        if (*p == '-')
            off = -off;
        p += 6;
    } else {
        return 0;
    }
    if (*p != '\0' || y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 ||
        se > 60)
        return 0;
    struct tm tm = { .tm_year = y - 1900,
                     .tm_mon = mo - 1,
                     .tm_mday = d,
                     .tm_hour = h,
                     .tm_min = mi,
                     .tm_sec = se };
    return (int64_t)timegm(&tm) - off;
}

void xmpp__sasl2_success(struct xmpp_stream *s, const struct xmpp_stanza *success)
{
    char *authz = xmpp_stanza_child_text(success, "authorization-identifier", XMPP__NS_SASL2);
    log_debug("sasl2_success", "jid=%s authzid=%s", s->logjid, authz ? authz : "-");
    mem_free(authz);
    struct xmpp_stanza *t = xmpp_stanza_child(success, "token", XMPP__NS_FAST);
    if (t == NULL) {
        if (s->token_requested && !s->ht)
            log_warn("fast_token", "jid=%s msg=\"requested, none granted\"", s->logjid);
        return;
    }
    const char *tok = xmpp_stanza_attr(t, "token");
    struct xmpp_fast_token *f = mem_calloc(1, sizeof(*f));
    if (tok == NULL || tok[0] == '\0' || strlen(tok) >= sizeof(f->token)) {
        log_warn("fast_token", "jid=%s msg=\"unusable token ignored\" len=%zu", s->logjid,
                 tok ? strlen(tok) : 0);
        mem_free(f);
        return;
    }
    snprintf(f->mech, sizeof(f->mech), "%s", XMPP__FAST_MECH);
    snprintf(f->token, sizeof(f->token), "%s", tok);
    f->expiry = xmpp__datetime_parse(xmpp_stanza_attr(t, "expiry"));
    xmpp__cred_free(s->fast_out, sizeof(*s->fast_out));
    s->fast_out = f;
    log_info("fast_token", "jid=%s mech=%s expiry=%lld rotated=%d", s->logjid, f->mech,
             (long long)f->expiry, s->ht);
}
