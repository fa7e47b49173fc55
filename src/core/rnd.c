/* rnd.c: getrandom(2) wrapper. */
#include "core/rnd.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/random.h>

void rnd_bytes(void *buf, size_t n)
{
    uint8_t *p = buf;
    while (n > 0) {
        ssize_t got = getrandom(p, n, 0);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "level=error mod=rnd ev=getrandom_failed errno=%d\n", errno);
            abort();
        }
        p += got;
        n -= (size_t)got;
    }
}

void rnd_hex(char *out, size_t nbytes)
{
    static const char hex[] = "0123456789abcdef";
    uint8_t tmp[64];
    size_t o = 0;
    while (nbytes > 0) {
        size_t chunk = nbytes < sizeof(tmp) ? nbytes : sizeof(tmp);
        rnd_bytes(tmp, chunk);
        for (size_t i = 0; i < chunk; i++) {
            out[o++] = hex[tmp[i] >> 4];
            out[o++] = hex[tmp[i] & 15];
        }
        nbytes -= chunk;
    }
    out[o] = '\0';
}
