/* mem.h: allocation wrappers that log and abort on failure (like Redis's zmalloc and h2o).
 * Running out of memory for small sizes cannot be handled usefully; bounds checked *before*
 * allocating are the real defence (see buf.h). Any thread may call these. */
#ifndef SPARKGATE_CORE_MEM_H
#define SPARKGATE_CORE_MEM_H

#include <stddef.h>

/* Each returns a valid pointer or aborts the process. mem_alloc(0) returns a unique pointer. */
void *mem_alloc(size_t size);
void *mem_calloc(size_t n, size_t size);
void *mem_realloc(void *ptr, size_t size);
char *mem_strdup(const char *s);
/* Copies at most n bytes of s and NUL-terminates; s need not be NUL-terminated. */
char *mem_strndup(const char *s, size_t n);
void mem_free(void *ptr);

/* Recover the struct that embeds `ptr` as `member` (h2o's H2O_STRUCT_FROM_MEMBER). */
#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

#endif
