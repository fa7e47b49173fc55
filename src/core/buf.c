/* buf.c: bounded growable buffer. */
#include "core/buf.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/mem.h"

void buf_init(struct buf *b, size_t limit)
{
    b->ptr = NULL;
    b->len = 0;
    b->_cap = 0;
    b->limit = limit;
}

void buf_cleanup(struct buf *b)
{
    mem_free(b->ptr);
    b->ptr = NULL;
    b->len = 0;
    b->_cap = 0;
}

void buf_reset(struct buf *b)
{
    b->len = 0;
    if (b->ptr != NULL)
        b->ptr[0] = '\0';
}

static int buf_reserve(struct buf *b, size_t n)
{
    if (n > b->limit || b->len > b->limit - n)
        return -ENOBUFS;
    size_t need = b->len + n + 1;
    if (need <= b->_cap)
        return 0;
    size_t cap = b->_cap ? b->_cap : 64;
    while (cap < need)
        cap *= 2;
    b->ptr = mem_realloc(b->ptr, cap);
    b->_cap = cap;
    return 0;
}

int buf_append(struct buf *b, const void *data, size_t n)
{
    int rc = buf_reserve(b, n);
    if (rc < 0)
        return rc;
    if (n > 0)
        memcpy(b->ptr + b->len, data, n);
    b->len += n;
    b->ptr[b->len] = '\0';
    return 0;
}

int buf_appends(struct buf *b, const char *s)
{
    return buf_append(b, s, strlen(s));
}

int buf_vappendf(struct buf *b, const char *fmt, va_list ap)
{
    va_list cp;
    va_copy(cp, ap);
    int n = vsnprintf(NULL, 0, fmt, cp);
    va_end(cp);
    if (n < 0)
        return -EINVAL;
    int rc = buf_reserve(b, (size_t)n);
    if (rc < 0)
        return rc;
    vsnprintf(b->ptr + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return 0;
}

int buf_appendf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = buf_vappendf(b, fmt, ap);
    va_end(ap);
    return rc;
}

void buf_consume(struct buf *b, size_t n)
{
    if (n >= b->len) {
        buf_reset(b);
        return;
    }
    memmove(b->ptr, b->ptr + n, b->len - n);
    b->len -= n;
    b->ptr[b->len] = '\0';
}

char *buf_steal(struct buf *b)
{
    char *p = b->ptr ? b->ptr : mem_strdup("");
    b->ptr = NULL;
    b->len = 0;
    b->_cap = 0;
    return p;
}

const char *buf_cstr(const struct buf *b)
{
    return b->ptr ? b->ptr : "";
}
