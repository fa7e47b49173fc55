/* fuzz_http_router.c: libFuzzer target for the router's path splitting and percent-decoding,
 * and the query lookup. Input: a path (raw, then as if decoded) and a query string. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/mem.h"
#include "http/http_int.h"

static void h(struct http_req *req, void *data)
{
    (void)req;
    (void)data;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct http__router r;
    static int ready;
    if (!ready) {
        http__router_init(&r);
        http__router_add(&r, HTTP_GET, "/sparkweb/api/rest/roster/{jid}", h, NULL);
        http__router_add(&r, HTTP_PUT, "/sparkweb/api/rest/roster/{jid}", h, NULL);
        http__router_add(&r, HTTP_GET, "/sparkweb/api/rest/{a}/{b}/{c}", h, NULL);
        http__router_add(&r, HTTP_GET, "/files/{rest*}", h, NULL);
        http__router_add(&r, HTTP_POST, "/", h, NULL);
        ready = 1;
    }
    char *s = mem_strndup((const char *)data, size);
    char *q = strchr(s, '?');
    if (q)
        *q++ = '\0';
    struct http__match m;
    unsigned allow;
    for (int decoded = 0; decoded < 2; decoded++) {
        if (http__router_match(&r, HTTP_GET, s, decoded, &m, &allow) == 0) {
            http__match_param(&m, "jid");
            http__match_cleanup(&m);
        }
    }
    if (q)
        mem_free(http__query_get(q, "token"));
    char out[64];
    size_t n = strlen(s) < 63 ? strlen(s) : 63;
    http__pct_decode(out, s, n, true);
    mem_free(s);
    return 0;
}
