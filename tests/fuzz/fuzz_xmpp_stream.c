/* fuzz_xmpp_stream.c: bytes into the stream parser through its seam, in chunk sizes chosen by
 * the input; elements named "success" or "proceed" trigger a restart, as the stream does.
 * Bit 6 of the first byte runs a second parser that hibernates after every chunk: it must
 * report exactly what the plain one reports (same events, same return codes). */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "xmpp/stanza.h"
#include "xmpp/xmpp_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct run {
    struct xmpp__parser *p;
    uint64_t hash; /* FNV-1a over the events reported */
};

static void mix(struct run *r, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        r->hash ^= (unsigned char)s[i];
        r->hash *= 0x100000001b3ULL;
    }
}

static void f_open(void *d, struct xmpp_stanza *hdr)
{
    struct run *r = d;
    const char *v = xmpp_stanza_attr(hdr, "version");
    mix(r, "[open]", 6);
    if (v != NULL)
        mix(r, v, strlen(v));
}

static void f_element(void *d, struct xmpp_stanza *st)
{
    struct run *r = d;
    char *x = xmpp_stanza_to_string(st);
    int err;
    struct xmpp_stanza *back = xmpp_stanza_parse(x, strlen(x), NULL, 1 << 20, &err);
    if (back == NULL)
        abort();
    xmpp_stanza_unref(back);
    mix(r, x, strlen(x) + 1);
    mem_free(x);
    const char *n = xmpp_stanza_name(st);
    if (strcmp(n, "success") == 0 || strcmp(n, "proceed") == 0)
        xmpp__parser_restart(r->p);
}

static void f_close(void *d)
{
    mix(d, "[close]", 7);
}

static const struct xmpp__parser_cbs cbs = { f_open, f_element, f_close };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t chunk = 1 + data[0] % 64;
    bool nap = (data[0] & 0x40) != 0;
    size_t max = 64 + (size_t)data[1] * 16;
    data += 2;
    size -= 2;
    struct run a = { NULL, 0xcbf29ce484222325ULL }, b = a;
    a.p = xmpp__parser_new(max, &cbs, &a);
    if (nap)
        b.p = xmpp__parser_new(max, &cbs, &b);
    for (size_t off = 0; off < size;) {
        size_t n = size - off < chunk ? size - off : chunk;
        int rc = xmpp__parser_feed(a.p, (const char *)data + off, n);
        if (nap) {
            int rc_b = xmpp__parser_feed(b.p, (const char *)data + off, n);
            if (rc_b != rc || b.hash != a.hash)
                abort(); /* hibernation changed what the parser reports */
            (void)xmpp__parser_hibernate(b.p);
            if (rc != 0 && rc != -ECANCELED)
                xmpp__parser_reset(b.p);
        }
        if (rc != 0 && rc != -ECANCELED)
            xmpp__parser_reset(a.p);
        off += n;
    }
    xmpp__parser_free(a.p);
    xmpp__parser_free(b.p);
    return 0;
}
