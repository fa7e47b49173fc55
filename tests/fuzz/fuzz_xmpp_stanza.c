/* fuzz_xmpp_stanza.c: xmpp_stanza_parse, then serialise and parse again: the serialiser's
 * output must always parse and serialise to the same bytes (escaping and namespace fidelity). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "xmpp/stanza.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int err = 0;
    struct xmpp_stanza *st =
        xmpp_stanza_parse((const char *)data, size, XMPP_NS_CLIENT, 1 << 16, &err);
    if (st == NULL)
        return 0;
    char *x1 = xmpp_stanza_to_string(st);
    char *red = xmpp_stanza_redacted(st);
    struct xmpp_stanza *cp = xmpp_stanza_copy(st);
    struct xmpp_stanza *back = xmpp_stanza_parse(x1, strlen(x1), XMPP_NS_CLIENT, 1 << 20, &err);
    if (back == NULL)
        abort(); /* our own output must parse */
    char *x2 = xmpp_stanza_to_string(back);
    char *x3 = xmpp_stanza_to_string(cp);
    if (strcmp(x1, x2) != 0 || strcmp(x1, x3) != 0)
        abort(); /* and be stable */
    struct xmpp_stanza *rb = xmpp_stanza_parse(red, strlen(red), XMPP_NS_CLIENT, 1 << 20, &err);
    if (rb == NULL)
        abort();
    xmpp_stanza_unref(rb);
    mem_free(x1);
    mem_free(x2);
    mem_free(x3);
    mem_free(red);
    xmpp_stanza_unref(back);
    xmpp_stanza_unref(cp);
    xmpp_stanza_unref(st);
    return 0;
}
