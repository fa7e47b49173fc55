/* fuzz_xmpp_stream.c: bytes into the stream parser through its seam, in chunk sizes chosen by
 * the input; elements named "success" or "proceed" trigger a restart, as the stream does. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "xmpp/stanza.h"
#include "xmpp/xmpp_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct xmpp__parser *cur;

static void f_open(void *d, struct xmpp_stanza *hdr)
{
    (void)d;
    (void)xmpp_stanza_attr(hdr, "version");
}

static void f_element(void *d, struct xmpp_stanza *st)
{
    (void)d;
    char *x = xmpp_stanza_to_string(st);
    int err;
    struct xmpp_stanza *back = xmpp_stanza_parse(x, strlen(x), NULL, 1 << 20, &err);
    if (back == NULL)
        abort();
    xmpp_stanza_unref(back);
    mem_free(x);
    const char *n = xmpp_stanza_name(st);
    if (strcmp(n, "success") == 0 || strcmp(n, "proceed") == 0)
        xmpp__parser_restart(cur);
}

static void f_close(void *d)
{
    (void)d;
}

static const struct xmpp__parser_cbs cbs = { f_open, f_element, f_close };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t chunk = 1 + data[0] % 64;
    size_t max = 64 + (size_t)data[1] * 16;
    data += 2;
    size -= 2;
    cur = xmpp__parser_new(max, &cbs, NULL);
    for (size_t off = 0; off < size;) {
        size_t n = size - off < chunk ? size - off : chunk;
        int rc = xmpp__parser_feed(cur, (const char *)data + off, n);
        if (rc != 0 && rc != -ECANCELED)
            xmpp__parser_reset(cur);
        off += n;
    }
    xmpp__parser_free(cur);
    return 0;
}
