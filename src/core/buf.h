/* buf.h: a growable byte buffer with a hard limit fixed at init (curl's dynbuf `toobig`).
 * The contents are always NUL-terminated (not counted in len) so text can be used directly.
 * An append past the limit returns -ENOBUFS and leaves the contents unchanged.
 * Not thread-safe; one owner at a time. */
#ifndef SPARKGATE_CORE_BUF_H
#define SPARKGATE_CORE_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct buf {
    char *ptr;    /* NULL until the first append; then NUL-terminated */
    size_t len;   /* bytes used, excluding the terminating NUL */
    size_t _cap;  /* bytes allocated */
    size_t limit; /* maximum len; an append beyond it fails */
};

void buf_init(struct buf *b, size_t limit);
/* Frees the storage; the buffer may be reused after buf_init. */
void buf_cleanup(struct buf *b);
/* Empties the buffer but keeps its storage. */
void buf_reset(struct buf *b);
/* 0, or -ENOBUFS when len + n would exceed the limit. */
int buf_append(struct buf *b, const void *data, size_t n);
int buf_appends(struct buf *b, const char *s);
int buf_appendf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int buf_vappendf(struct buf *b, const char *fmt, va_list ap);
/* Removes the first n bytes (n > len removes everything). */
void buf_consume(struct buf *b, size_t n);
/* Hands the NUL-terminated contents to the caller (free with mem_free) and empties b.
 * Never returns NULL. */
char *buf_steal(struct buf *b);
/* The contents as a C string ("" when empty); valid until the next mutation. */
const char *buf_cstr(const struct buf *b);

#endif
