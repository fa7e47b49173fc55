/* log.c: key=value log lines with control-character escaping and secret redaction. */
#include "core/log.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>

#include <uv.h>

enum log_level log__level = LOG_LEVEL_INFO;
static FILE *log_file;

static const char *const level_names[] = { "error", "warn", "info", "debug" };

static const char *const secret_keys[] = {
    "password", "passwd",        "token",  "access_token", "refresh_token", "secret", "otp",
    "key",      "authorization", "cookie", "sasl",         "ticket",        NULL,
};

int log_level_parse(const char *s, enum log_level *out)
{
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(s, level_names[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    }
    return -EINVAL;
}

void log_set_level(enum log_level level)
{
    log__level = level;
}

void log_set_file(FILE *f)
{
    log_file = f;
}

/* Length of a secret key name ending at `in + i` (exclusive) if the text before position i
 * ends in one of the secret names preceded by a boundary, else 0. */
static bool ends_with_secret_key(const char *in, size_t i)
{
    for (const char *const *k = secret_keys; *k != NULL; k++) {
        size_t kl = strlen(*k);
        if (kl > i)
            continue;
        if (strncasecmp(in + i - kl, *k, kl) != 0)
            continue;
        if (i == kl)
            return true;
        char before = in[i - kl - 1];
        /* boundary: a key is a whole word, or the suffix of a snake_case/dotted name */
        if (!isalnum((unsigned char)before))
            return true;
    }
    return false;
}

static void out_put(char *out, size_t outlen, size_t *o, const char *s, size_t n)
{
    for (size_t j = 0; j < n && *o + 1 < outlen; j++)
        out[(*o)++] = s[j];
}

size_t log_sanitize(const char *in, char *out, size_t outlen)
{
    size_t o = 0;
    size_t n = strlen(in);
    if (outlen == 0)
        return 0;
    for (size_t i = 0; i < n;) {
        /* key=value or "key":"value" / "key": "value" with a secret key: redact the value */
        bool eq = in[i] == '=' && i > 0 && ends_with_secret_key(in, i);
        bool js =
            in[i] == '"' && i > 0 && ends_with_secret_key(in, i) && i + 1 < n && in[i + 1] == ':';
        if (eq || js) {
            size_t j = i + 1;
            out_put(out, outlen, &o, in + i, 1);
            if (js) {
                out_put(out, outlen, &o, ":", 1);
                j = i + 2;
                while (j < n && in[j] == ' ')
                    j++;
            }
            bool quoted = j < n && in[j] == '"';
            if (quoted)
                j++;
            /* "Authorization=Basic xyz": the scheme word belongs to the secret too */
            if (strncasecmp(in + j, "Basic ", 6) == 0)
                j += 6;
            else if (strncasecmp(in + j, "Bearer ", 7) == 0)
                j += 7;
            /* skip the value */
            while (j < n) {
                char c = in[j];
                if (quoted) {
                    if (c == '\\' && j + 1 < n) {
                        j += 2;
                        continue;
                    }
                    if (c == '"')
                        break;
                } else if (c == ' ' || c == '&' || c == '"' || c == ',' || c == '}' || c == '\n' ||
                           c == '\r' || c == '\t') {
                    break;
                }
                j++;
            }
            if (quoted)
                out_put(out, outlen, &o, "\"", 1);
            out_put(out, outlen, &o, "[redacted]", 10);
            if (quoted && j < n && in[j] == '"') {
                out_put(out, outlen, &o, "\"", 1);
                j++;
            }
            i = j;
            continue;
        }
        unsigned char c = (unsigned char)in[i];
        if (c == '\n') {
            out_put(out, outlen, &o, "\\n", 2);
        } else if (c == '\r') {
            out_put(out, outlen, &o, "\\r", 2);
        } else if (c == '\t') {
            out_put(out, outlen, &o, "\\t", 2);
        } else if (c < 0x20 || c == 0x7f) {
            char hex[5];
            snprintf(hex, sizeof(hex), "\\x%02x", c);
            out_put(out, outlen, &o, hex, 4);
        } else {
            out_put(out, outlen, &o, in + i, 1);
        }
        i++;
    }
    out[o] = '\0';
    return o;
}

void log__emit(enum log_level level, const char *mod, const char *ev, const char *fmt, ...)
{
    char raw[4096];
    char clean[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(raw, sizeof(raw), fmt, ap);
    va_end(ap);
    log_sanitize(raw, clean, sizeof(clean));

    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    char ts[32];
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);

    FILE *f = log_file ? log_file : stderr;
    fprintf(f, "ts=%s.%03ldZ level=%s mod=%s ev=%s%s%s\n", ts, (long)(tv.tv_usec / 1000),
            level_names[level], mod, ev, clean[0] ? " " : "", clean);
    fflush(f);
}

const char *log_errname(int err)
{
    static _Thread_local char ring[8][32];
    static _Thread_local unsigned next;
    char *buf = ring[next++ % 8];
    if (err == 0)
        return "0";
    const char *name = strerrorname_np(-err); /* glibc 2.32+: "ESTALE", NULL when unknown */
    if (err < 0 && name != NULL)
        snprintf(buf, sizeof(ring[0]), "%s", name);
    else
        uv_err_name_r(err, buf, sizeof(ring[0]));
    return buf;
}
