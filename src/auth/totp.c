/* totp.c: RFC 6238 codes through liboath, the otpauth:// URI and the QR code as SVG. */
#include "auth/totp.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <liboath/oath.h>
#include <openssl/crypto.h>
#include <qrencode.h>

#include "auth/totp_int.h"
#include "core/buf.h"
#include "core/mem.h"
#include "core/rnd.h"

#define LOG_MODULE "totp"
#include "core/log.h"

/* The largest step whose start time (step * 30 s) still fits in time_t. */
#define TOTP_STEP_MAX (INT64_MAX / TOTP_STEP_S)

/* An SVG of the largest symbol (177 modules, runs of one) stays well below this. */
#define SVG_LIMIT (1024 * 1024)

static pthread_once_t oath_once = PTHREAD_ONCE_INIT;
static int oath_status = OATH_OK;

/* oath_init() is not thread-safe and must run before any other call (liboath docs), so it runs
 * once for the process; oath_done() is never called, as other threads may still use it. */
static void oath_init_once(void)
{
    oath_status = oath_init();
    if (oath_status != OATH_OK)
        log_error("oath_init", "rc=%d msg=\"%s\"", oath_status, oath_strerror(oath_status));
}

static int oath_ready(void)
{
    pthread_once(&oath_once, oath_init_once);
    return oath_status == OATH_OK ? 0 : -EIO;
}

/* Decodes a base32 secret into key (TOTP__SECRET_MAX bytes). liboath ignores spaces and case
 * and accepts missing padding. Too short, too long or malformed is -EINVAL. */
static int secret_decode(const char *secret_b32, uint8_t key[TOTP__SECRET_MAX], size_t *keylen)
{
    if (secret_b32 == NULL)
        return -EINVAL;
    size_t len = strnlen(secret_b32, TOTP__SECRET_B32_MAX + 1);
    if (len > TOTP__SECRET_B32_MAX)
        return -EINVAL;
    char *raw = NULL;
    size_t rawlen = 0;
    if (oath_base32_decode(secret_b32, len, &raw, &rawlen) != OATH_OK)
        return -EINVAL;
    int rc = 0;
    if (rawlen < TOTP__SECRET_MIN || rawlen > TOTP__SECRET_MAX) {
        rc = -EINVAL;
    } else {
        memcpy(key, raw, rawlen);
        *keylen = rawlen;
    }
    if (raw != NULL) {
        OPENSSL_cleanse(raw, rawlen);
        free(raw);
    }
    return rc;
}

/* The code for one step from a decoded key; -EINVAL when the step has no valid time. */
static int code_for_step(const uint8_t *key, size_t keylen, int64_t step,
                         char code[TOTP_DIGITS + 1])
{
    if (step < 0 || step > TOTP_STEP_MAX)
        return -EINVAL;
    time_t t = (time_t)(step * TOTP_STEP_S);
    int rc =
        oath_totp_generate2((const char *)key, keylen, t, TOTP_STEP_S, 0, TOTP_DIGITS, 0, code);
    return rc == OATH_OK ? 0 : -EINVAL;
}

int totp_secret_new(char *b32, size_t len)
{
    if (b32 == NULL)
        return -EINVAL;
    if (len < 33)
        return -ENOBUFS;
    int rc = oath_ready();
    if (rc < 0)
        return rc;
    uint8_t key[TOTP_SECRET_BYTES];
    rnd_bytes(key, sizeof(key));
    char *enc = NULL;
    size_t enclen = 0;
    rc = oath_base32_encode((const char *)key, sizeof(key), &enc, &enclen);
    OPENSSL_cleanse(key, sizeof(key));
    if (rc != OATH_OK || enclen != 32) { /* 160 bits are exactly 32 characters, no padding */
        if (enc != NULL) {
            OPENSSL_cleanse(enc, enclen);
            free(enc);
        }
        return -EIO;
    }
    memcpy(b32, enc, 32);
    b32[32] = '\0';
    OPENSSL_cleanse(enc, enclen);
    free(enc);
    return 0;
}

int64_t totp_step(int64_t now_s)
{
    int64_t q = now_s / TOTP_STEP_S;
    if (now_s % TOTP_STEP_S < 0) /* C division truncates; the step is the floor */
        q--;
    return q;
}

int totp_code(const char *secret_b32, int64_t step, char code[TOTP_DIGITS + 1])
{
    int rc = oath_ready();
    if (rc < 0)
        return rc;
    uint8_t key[TOTP__SECRET_MAX];
    size_t keylen = 0;
    rc = secret_decode(secret_b32, key, &keylen);
    if (rc == 0)
        rc = code_for_step(key, keylen, step, code);
    OPENSSL_cleanse(key, sizeof(key));
    return rc;
}

static bool code_is_wellformed(const char *code)
{
    if (code == NULL || strnlen(code, TOTP_DIGITS + 1) != TOTP_DIGITS)
        return false;
    for (size_t i = 0; i < TOTP_DIGITS; i++) {
        if (code[i] < '0' || code[i] > '9')
            return false;
    }
    return true;
}

/* Every step in the window is generated and compared, and the loop never exits early, so the
 * time taken does not depend on which step (if any) matched. When two steps match (a 1-in-10^6
 * collision), the newest is reported: the stricter choice for the caller's replay guard
 * (store_totp_use_step). A step outside the representable range counts as a miss. The window
 * is configuration, not user input, so it is not capped here. */
int totp_verify(const char *secret_b32, const char *code, int64_t now_s, unsigned window,
                int64_t *step)
{
    if (!code_is_wellformed(code))
        return -EINVAL;
    int rc = oath_ready();
    if (rc < 0)
        return rc;
    uint8_t key[TOTP__SECRET_MAX];
    size_t keylen = 0;
    rc = secret_decode(secret_b32, key, &keylen);
    if (rc < 0) {
        OPENSSL_cleanse(key, sizeof(key));
        return rc;
    }
    int64_t now_step = totp_step(now_s);
    int64_t first = now_step - (int64_t)window; /* |now_step| <= INT64_MAX / 30: no overflow */
    int64_t last = now_step + (int64_t)window;
    uint64_t found = 0;
    uint64_t match = 0;
    for (int64_t s = first; s <= last; s++) {
        char cand[TOTP_DIGITS + 1];
        memset(cand, 0, sizeof(cand));
        int ok = code_for_step(key, keylen, s, cand) == 0;
        int eq = CRYPTO_memcmp(cand, code, TOTP_DIGITS) == 0;
        uint64_t mask = (uint64_t)0 - (uint64_t)(ok & eq);
        match = (match & ~mask) | ((uint64_t)s & mask);
        found |= mask;
        OPENSSL_cleanse(cand, sizeof(cand));
    }
    OPENSSL_cleanse(key, sizeof(key));
    if (!found)
        return -EACCES;
    if (step != NULL)
        *step = (int64_t)match;
    return 0;
}

/* Key Uri Format: everything but RFC 3986 unreserved characters is percent-encoded. */
static void append_pct(struct buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        unsigned char c = *p;
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~') {
            buf_append(b, &c, 1);
        } else {
            char esc[3] = { '%', hex[c >> 4], hex[c & 15] };
            buf_append(b, esc, 3);
        }
    }
}

/* A NULL or empty issuer leaves out the label prefix and the issuer parameter. NULL account or
 * secret (a programmer error) returns NULL. The buffer is sized from the inputs, so the appends
 * cannot hit its limit. */
char *totp_uri(const char *issuer, const char *account, const char *secret_b32)
{
    if (account == NULL || secret_b32 == NULL)
        return NULL;
    bool has_issuer = issuer != NULL && issuer[0] != '\0';
    size_t ilen = has_issuer ? strlen(issuer) : 0;
    size_t limit = 128 + 3 * (2 * ilen + strlen(account) + strlen(secret_b32));
    struct buf b;
    buf_init(&b, limit);
    buf_appends(&b, "otpauth://totp/");
    if (has_issuer) {
        append_pct(&b, issuer);
        buf_appends(&b, ":");
    }
    append_pct(&b, account);
    buf_appends(&b, "?secret=");
    append_pct(&b, secret_b32);
    if (has_issuer) {
        buf_appends(&b, "&issuer=");
        append_pct(&b, issuer);
    }
    buf_appendf(&b, "&algorithm=SHA1&digits=%d&period=%d", TOTP_DIGITS, TOTP_STEP_S);
    return buf_steal(&b);
}

char *totp__svg_render(const unsigned char *modules, int width)
{
    int size = width + 2 * TOTP__QUIET;
    struct buf b;
    buf_init(&b, SVG_LIMIT);
    int rc = buf_appendf(&b,
                         "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 %d %d\" "
                         "shape-rendering=\"crispEdges\">"
                         "<rect width=\"%d\" height=\"%d\" fill=\"#fff\"/><path fill=\"#000\" d=\"",
                         size, size, size, size);
    for (int y = 0; y < width && rc == 0; y++) {
        int x = 0;
        while (x < width && rc == 0) {
            if (!(modules[(size_t)y * (size_t)width + (size_t)x] & 1)) {
                x++;
                continue;
            }
            int run = 1;
            while (x + run < width && (modules[(size_t)y * (size_t)width + (size_t)(x + run)] & 1))
                run++;
            rc = buf_appendf(&b, "M%d %dh%dv1h-%dz", x + TOTP__QUIET, y + TOTP__QUIET, run, run);
            x += run;
        }
    }
    if (rc == 0)
        rc = buf_appends(&b, "\"/></svg>\n");
    if (rc < 0) {
        buf_cleanup(&b);
        return NULL;
    }
    return buf_steal(&b);
}

/* 8-bit mode, case-sensitive, error correction M, smallest version that fits. libqrencode is
 * thread-safe when built with pthread (Debian's is). */
char *totp_qr_svg(const char *text)
{
    if (text == NULL)
        return NULL;
    QRcode *qr = QRcode_encodeString(text, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
    if (qr == NULL) {
        const char *name = strerrorname_np(errno);
        log_warn("qr_encode", "err=%s len=%zu", name != NULL ? name : "?", strlen(text));
        return NULL;
    }
    char *svg = totp__svg_render(qr->data, qr->width);
    QRcode_free(qr);
    return svg;
}
