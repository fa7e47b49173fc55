/* log.h: one key=value line per event, with secrets redacted.
 *
 *   ts=2026-11-21T22:18:03.120Z level=info mod=session ev=attach jid=alice@example.org sinks=2
 *
 * Each .c defines LOG_MODULE (a string) before using the macros. The level is checked before
 * the arguments are evaluated. `fmt` produces the rest of the line as key=value pairs; free text
 * goes last as msg="...". The writer escapes control characters (so input cannot forge a line)
 * and, as a safety net, replaces the values of secret-looking keys (password, token, secret,
 * otp, key, authorization, cookie, sasl, access_token, refresh_token, ticket) with [redacted],
 * wherever `name=` or `"name":"` appears in the line, including inside URLs' query strings.
 * Secrets still must never be passed to these macros. Thread-safe (one write per line). */
#ifndef SPARKGATE_CORE_LOG_H
#define SPARKGATE_CORE_LOG_H

#include <stddef.h>
#include <stdio.h>

enum log_level {
    LOG_LEVEL_ERROR = 0,
    LOG_LEVEL_WARN = 1,
    LOG_LEVEL_INFO = 2,
    LOG_LEVEL_DEBUG = 3,
};

extern enum log_level log__level;

/* Parses "error" | "warn" | "info" | "debug"; 0 or -EINVAL. */
int log_level_parse(const char *s, enum log_level *out);
void log_set_level(enum log_level level);
/* The symbolic name of a negative errno or libuv code ("ECONNREFUSED", "ESTALE"), for log
 * values. Unlike uv_err_name it never allocates (uv_err_name leaks for codes libuv does not
 * know, e.g. ESTALE or ENOKEY). The text lives until the eighth call after this one; loop
 * thread only. */
const char *log_errname(int err);
/* Lines go to `f` (default stderr). The caller keeps ownership of f. */
void log_set_file(FILE *f);

void log__emit(enum log_level level, const char *mod, const char *ev, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Redacts secrets and escapes control characters of `in` into out (always NUL-terminated,
 * truncated to outlen - 1). Exposed for tests. Returns the length written. */
size_t log_sanitize(const char *in, char *out, size_t outlen);

#define LOG__AT(lvl, ev, ...)                                \
    do {                                                     \
        if (log__level >= (lvl))                             \
            log__emit((lvl), LOG_MODULE, (ev), __VA_ARGS__); \
    } while (0)

#define log_error(ev, ...) LOG__AT(LOG_LEVEL_ERROR, ev, __VA_ARGS__)
#define log_warn(ev, ...)  LOG__AT(LOG_LEVEL_WARN, ev, __VA_ARGS__)
#define log_info(ev, ...)  LOG__AT(LOG_LEVEL_INFO, ev, __VA_ARGS__)
#define log_debug(ev, ...) LOG__AT(LOG_LEVEL_DEBUG, ev, __VA_ARGS__)

#endif
