/* test_http_router.c: the router without sockets: matching, precedence, parameters,
 * percent-decoding, 404 vs 405, and the small helpers next to it. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "core/mem.h"
#include "http/http_int.h"

static int tag[8];

static void h(struct http_req *req, void *data)
{
    (void)req;
    (void)data;
}

static void add(struct http__router *r, enum http_method m, const char *pat, int *data)
{
    assert_int_equal(http__router_add(r, m, pat, h, data), 0);
}

static void router_matches_literal_params_and_rest(void **state)
{
    (void)state;
    struct http__router r;
    http__router_init(&r);
    add(&r, HTTP_GET, "/sparkweb/api/rest/roster", &tag[0]);
    add(&r, HTTP_PUT, "/sparkweb/api/rest/roster/{jid}", &tag[1]);
    add(&r, HTTP_GET, "/files/{name*}", &tag[2]);
    add(&r, HTTP_POST, "/chat/chatstate/{state}/{to}", &tag[3]);

    struct http__match m;
    unsigned allow;
    assert_int_equal(
        http__router_match(&r, HTTP_GET, "/sparkweb/api/rest/roster", true, &m, &allow), 0);
    assert_ptr_equal(m.route->data, &tag[0]);
    http__match_cleanup(&m);

    assert_int_equal(
        http__router_match(&r, HTTP_PUT, "/sparkweb/api/rest/roster/a%40b.org", false, &m, &allow),
        0);
    assert_string_equal(http__match_param(&m, "jid"), "a@b.org");
    assert_null(http__match_param(&m, "nope"));
    http__match_cleanup(&m);

    assert_int_equal(http__router_match(&r, HTTP_GET, "/files/a/b%20c/d.txt", false, &m, &allow),
                     0);
    assert_string_equal(http__match_param(&m, "name"), "a/b c/d.txt");
    http__match_cleanup(&m);

    assert_int_equal(
        http__router_match(&r, HTTP_POST, "/chat/chatstate/composing/bob@x", true, &m, &allow), 0);
    assert_string_equal(http__match_param(&m, "state"), "composing");
    assert_string_equal(http__match_param(&m, "to"), "bob@x");
    http__match_cleanup(&m);
    http__router_cleanup(&r);
}

static void router_prefers_literal_over_param_over_rest(void **state)
{
    (void)state;
    struct http__router r;
    http__router_init(&r);
    add(&r, HTTP_GET, "/a/{x}", &tag[0]);
    add(&r, HTTP_GET, "/a/b", &tag[1]);
    add(&r, HTTP_GET, "/a/{rest*}", &tag[2]);
    add(&r, HTTP_GET, "/{p}/c", &tag[3]);
    struct http__match m;
    unsigned allow;
    assert_int_equal(http__router_match(&r, HTTP_GET, "/a/b", true, &m, &allow), 0);
    assert_ptr_equal(m.route->data, &tag[1]);
    http__match_cleanup(&m);
    assert_int_equal(http__router_match(&r, HTTP_GET, "/a/z", true, &m, &allow), 0);
    assert_ptr_equal(m.route->data, &tag[0]);
    http__match_cleanup(&m);
    assert_int_equal(http__router_match(&r, HTTP_GET, "/a/z/y", true, &m, &allow), 0);
    assert_ptr_equal(m.route->data, &tag[2]);
    http__match_cleanup(&m);
    /* leftmost literal wins: /a/{x} beats /{p}/c for /a/c */
    assert_int_equal(http__router_match(&r, HTTP_GET, "/a/c", true, &m, &allow), 0);
    assert_ptr_equal(m.route->data, &tag[0]);
    http__match_cleanup(&m);
    assert_int_equal(http__router_match(&r, HTTP_GET, "/q/c", true, &m, &allow), 0);
    assert_ptr_equal(m.route->data, &tag[3]);
    http__match_cleanup(&m);
    http__router_cleanup(&r);
}

static void router_tells_404_from_405(void **state)
{
    (void)state;
    struct http__router r;
    http__router_init(&r);
    add(&r, HTTP_GET, "/roster", &tag[0]);
    add(&r, HTTP_POST, "/roster", &tag[1]);
    add(&r, HTTP_DELETE, "/roster/{jid}", &tag[2]);
    struct http__match m;
    unsigned allow;
    assert_int_equal(http__router_match(&r, HTTP_GET, "/nothing", true, &m, &allow), -ENOENT);
    assert_int_equal(allow, 0);
    assert_int_equal(http__router_match(&r, HTTP_PUT, "/roster", true, &m, &allow), -EPERM);
    assert_int_equal(allow, HTTP__BIT(HTTP_GET) | HTTP__BIT(HTTP_POST));
    char s[96];
    http__allow_str(allow, s, sizeof(s));
    assert_string_equal(s, "GET, HEAD, POST, OPTIONS");
    /* HEAD falls back to GET */
    assert_int_equal(http__router_match(&r, HTTP_HEAD, "/roster", true, &m, &allow), 0);
    assert_ptr_equal(m.route->data, &tag[0]);
    http__match_cleanup(&m);
    /* a parameter never matches an empty segment, and trailing slashes are distinct paths */
    assert_int_equal(http__router_match(&r, HTTP_DELETE, "/roster/", true, &m, &allow), -ENOENT);
    assert_int_equal(http__router_match(&r, HTTP_GET, "/roster/", true, &m, &allow), -ENOENT);
    assert_int_equal(http__router_match(&r, HTTP_GET, "roster", true, &m, &allow), -EINVAL);
    http__router_cleanup(&r);
}

static void router_rejects_bad_percent_encoding_and_nul(void **state)
{
    (void)state;
    struct http__router r;
    http__router_init(&r);
    add(&r, HTTP_GET, "/x/{a}", &tag[0]);
    struct http__match m;
    unsigned allow;
    assert_int_equal(http__router_match(&r, HTTP_GET, "/x/%zz", false, &m, &allow), -EINVAL);
    assert_int_equal(http__router_match(&r, HTTP_GET, "/x/%4", false, &m, &allow), -EINVAL);
    assert_int_equal(http__router_match(&r, HTTP_GET, "/x/a%00b", false, &m, &allow), -EINVAL);
    /* already-decoded paths are taken literally: "%zz" is just text */
    assert_int_equal(http__router_match(&r, HTTP_GET, "/x/%zz", true, &m, &allow), 0);
    assert_string_equal(http__match_param(&m, "a"), "%zz");
    http__match_cleanup(&m);
    http__router_cleanup(&r);
}

static void router_rejects_bad_patterns_and_duplicates(void **state)
{
    (void)state;
    struct http__router r;
    http__router_init(&r);
    static const char *const bad[] = { "",         "x",     "/{",     "/{}", "/{a*}/b",
                                       "/{a}/{a}", "/a{b}", "/{a b}", "/{*}" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = http__router_add(&r, HTTP_GET, bad[i], h, NULL);
        if (rc != -EINVAL)
            fail_msg("pattern '%s' gave %d", bad[i], rc);
    }
    assert_int_equal(http__router_add(&r, HTTP_OTHER, "/a", h, NULL), -EINVAL);
    add(&r, HTTP_GET, "/a/{x}", NULL);
    assert_int_equal(http__router_add(&r, HTTP_GET, "/a/{y}", h, NULL), -EEXIST);
    add(&r, HTTP_POST, "/a/{y}", NULL);
    http__router_cleanup(&r);
}

static void pct_decode_and_query(void **state)
{
    (void)state;
    char out[64];
    assert_int_equal(http__pct_decode(out, "a%2Fb+c", 7, false), 5);
    assert_string_equal(out, "a/b+c");
    assert_int_equal(http__pct_decode(out, "a%2fb+c", 7, true), 5);
    assert_string_equal(out, "a/b c");
    assert_int_equal(http__pct_decode(out, "%", 1, false), -EINVAL);
    assert_int_equal(http__pct_decode(out, "%g1", 3, false), -EINVAL);
    char *v = http__query_get("token=abc%3D%3D&x=a+b&empty&k=", "x");
    assert_string_equal(v, "a b");
    mem_free(v);
    v = http__query_get("token=abc%3D%3D&x=a+b&empty&k=", "token");
    assert_string_equal(v, "abc==");
    mem_free(v);
    v = http__query_get("token=abc&empty&k=", "empty");
    assert_string_equal(v, "");
    mem_free(v);
    assert_null(http__query_get("a=1", "b"));
    assert_null(http__query_get("a=%zz", "a"));
}

static void helpers_cors_errno_static(void **state)
{
    (void)state;
    assert_true(http__cors_allowed("*", "https://x.org"));
    assert_true(http__cors_allowed("https://a.org, https://b.org", "https://b.org"));
    assert_false(http__cors_allowed("https://a.org", "https://b.org"));
    assert_false(http__cors_allowed("", "https://b.org"));
    assert_false(http__cors_allowed("*", NULL));
    assert_int_equal(http_status_from_errno(-ETIMEDOUT), 504);
    assert_int_equal(http_status_from_errno(-EACCES), 401);
    assert_int_equal(http_status_from_errno(-ENOENT), 404);
    assert_int_equal(http_status_from_errno(-EINVAL), 400);
    assert_int_equal(http_status_from_errno(-EMSGSIZE), 413);
    assert_int_equal(http_status_from_errno(-EAGAIN), 503);
    assert_int_equal(http_status_from_errno(-ECONNRESET), 502);
    assert_int_equal(http_status_from_errno(-ENOTCONN), 502);
    assert_int_equal(http_status_from_errno(-1234), 500);
    char f[256];
    assert_int_equal(http__static_map("/w", "/sparkweb/app/x.js", f, sizeof(f)), 0);
    assert_string_equal(f, "/w/app/x.js");
    assert_int_equal(http__static_map("/w/", "/index.html", f, sizeof(f)), 0);
    assert_string_equal(f, "/w/index.html");
    assert_int_equal(http__static_map("/w", "/a/../etc/passwd", f, sizeof(f)), -ENOENT);
    assert_int_equal(http__static_map("/w", "/.git/config", f, sizeof(f)), -ENOENT);
    assert_int_equal(http__static_map(NULL, "/x", f, sizeof(f)), -ENOENT);
    assert_int_equal(http__static_map("/w", "/x", f, 4), -ENAMETOOLONG);
    assert_string_equal(http__mime_type("a/b.MJS"), "text/javascript; charset=utf-8");
    assert_string_equal(http__mime_type("a.webmanifest"), "application/manifest+json");
    assert_string_equal(http__mime_type("a.d/b"), "application/octet-stream");
    assert_string_equal(http_method_str(HTTP_PATCH), "PATCH");
    assert_int_equal(http__method_parse("DELETE"), HTTP_DELETE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(router_matches_literal_params_and_rest),
        cmocka_unit_test(router_prefers_literal_over_param_over_rest),
        cmocka_unit_test(router_tells_404_from_405),
        cmocka_unit_test(router_rejects_bad_percent_encoding_and_nul),
        cmocka_unit_test(router_rejects_bad_patterns_and_duplicates),
        cmocka_unit_test(pct_decode_and_query),
        cmocka_unit_test(helpers_cors_errno_static),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
