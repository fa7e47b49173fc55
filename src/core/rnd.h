/* rnd.h: cryptographically strong random bytes from the kernel (getrandom). Any thread. */
#ifndef SPARKGATE_CORE_RND_H
#define SPARKGATE_CORE_RND_H

#include <stddef.h>

/* Fills buf with n random bytes; aborts if the kernel cannot provide them. */
void rnd_bytes(void *buf, size_t n);
/* Writes 2*nbytes lowercase hex digits plus NUL into out (size >= 2*nbytes + 1). */
void rnd_hex(char *out, size_t nbytes);

#endif
