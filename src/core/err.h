/* err.h: the "message in a caller's buffer" convention of start-up calls (config, store):
 * functions that can fail in ways a person must read take `char *err, size_t errlen` and fill
 * it with err_printf. Any thread. */
#ifndef SPARKGATE_CORE_ERR_H
#define SPARKGATE_CORE_ERR_H

#include <stddef.h>

/* Formats into err (NUL-terminated, truncated to errlen). Does nothing when err is NULL or
 * errlen is 0. */
void err_printf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
