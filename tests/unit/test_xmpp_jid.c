/* test_xmpp_jid.c: RFC 7622 parsing, table-driven. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/mem.h"
#include "xmpp/jid.h"

struct jid_case {
    const char *in;
    int rc;
    const char *local;
    const char *domain;
    const char *resource;
};

static char long_part[1100];
static char max_local[1040];
static char over_local[1040];

static const struct jid_case cases[] = {
    { "example.org", 0, NULL, "example.org", NULL },
    { "alice@example.org", 0, "alice", "example.org", NULL },
    { "alice@example.org/phone", 0, "alice", "example.org", "phone" },
    { "alice@Example.ORG", 0, "alice", "example.org", NULL },
    { "example.org/res", 0, NULL, "example.org", "res" },
    { "alice@example.org/a/b@c", 0, "alice", "example.org", "a/b@c" },
    { "alice@example.org/ with space", 0, "alice", "example.org", " with space" },
    { "alice@example.org.", 0, "alice", "example.org", NULL },
    { "j\xc3\xbcrgen@m\xc3\xbcnchen.de/\xf0\x9f\x98\x80", 0, "j\xc3\xbcrgen", "m\xc3\xbcnchen.de",
      "\xf0\x9f\x98\x80" },
    { "room@conference.localhost/Nick Name", 0, "room", "conference.localhost", "Nick Name" },
    { "[::1]", 0, NULL, "[::1]", NULL },
    { "a@127.0.0.1", 0, "a", "127.0.0.1", NULL },
    { "", -EINVAL, NULL, NULL, NULL },
    { "@", -EINVAL, NULL, NULL, NULL },
    { "@example.org", -EINVAL, NULL, NULL, NULL },
    { "alice@", -EINVAL, NULL, NULL, NULL },
    { "alice@example.org/", -EINVAL, NULL, NULL, NULL },
    { "/res", -EINVAL, NULL, NULL, NULL },
    { "a@b@example.org", -EINVAL, NULL, NULL, NULL },
    { "al ice@example.org", -EINVAL, NULL, NULL, NULL },
    { "al\"ice@example.org", -EINVAL, NULL, NULL, NULL },
    { "al&ice@example.org", -EINVAL, NULL, NULL, NULL },
    { "al'ice@example.org", -EINVAL, NULL, NULL, NULL },
    { "al:ice@example.org", -EINVAL, NULL, NULL, NULL },
    { "al<ice@example.org", -EINVAL, NULL, NULL, NULL },
    { "al>ice@example.org", -EINVAL, NULL, NULL, NULL },
    { "al\x01ice@example.org", -EINVAL, NULL, NULL, NULL },
    { "alice@exa mple.org", -EINVAL, NULL, NULL, NULL },
    { "alice@example..org", -EINVAL, NULL, NULL, NULL },
    { "alice@.example.org", -EINVAL, NULL, NULL, NULL },
    { "alice@.", -EINVAL, NULL, NULL, NULL },
    { "alice@example.org/res\x7f", -EINVAL, NULL, NULL, NULL },
    { "\xc3@example.org", -EINVAL, NULL, NULL, NULL },             /* truncated sequence */
    { "\xc0\xaf@example.org", -EINVAL, NULL, NULL, NULL },         /* overlong '/' */
    { "\xed\xa0\x80@example.org", -EINVAL, NULL, NULL, NULL },     /* surrogate */
    { "\xf4\x90\x80\x80@example.org", -EINVAL, NULL, NULL, NULL }, /* > U+10FFFF */
    { "alice@example.org/\xff", -EINVAL, NULL, NULL, NULL },
    { "[::1", -EINVAL, NULL, NULL, NULL },
};

static void jid_parse_matches_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct jid_case *c = &cases[i];
        struct xmpp_jid j;
        int rc = xmpp_jid_parse(&j, c->in);
        if (rc != c->rc)
            fail_msg("row %zu (%s): rc %d, want %d", i, c->in, rc, c->rc);
        if (rc < 0) {
            assert_null(j.local);
            assert_null(j.domain);
            assert_null(j.resource);
            continue;
        }
        if (c->local)
            assert_string_equal(j.local, c->local);
        else
            assert_null(j.local);
        assert_string_equal(j.domain, c->domain);
        if (c->resource)
            assert_string_equal(j.resource, c->resource);
        else
            assert_null(j.resource);
        xmpp_jid_cleanup(&j);
    }
}

static void jid_parts_are_limited_to_1023_bytes(void **state)
{
    (void)state;
    struct xmpp_jid j;
    memset(max_local, 'a', 1023);
    memcpy(max_local + 1023, "@x.org", 7);
    assert_int_equal(xmpp_jid_parse(&j, max_local), 0);
    xmpp_jid_cleanup(&j);
    memset(over_local, 'a', 1024);
    memcpy(over_local + 1024, "@x.org", 7);
    assert_int_equal(xmpp_jid_parse(&j, over_local), -EINVAL);

    memcpy(long_part, "a@x.org/", 8);
    memset(long_part + 8, 'r', 1023);
    long_part[8 + 1023] = '\0';
    assert_int_equal(xmpp_jid_parse(&j, long_part), 0);
    xmpp_jid_cleanup(&j);
    long_part[8 + 1023] = 'r';
    long_part[8 + 1024] = '\0';
    assert_int_equal(xmpp_jid_parse(&j, long_part), -EINVAL);
}

static void jid_bare_and_full_forms(void **state)
{
    (void)state;
    struct xmpp_jid j;
    assert_int_equal(xmpp_jid_parse(&j, "alice@Example.org/home/x"), 0);
    char *bare = xmpp_jid_bare(&j);
    char *full = xmpp_jid_full(&j);
    assert_string_equal(bare, "alice@example.org");
    assert_string_equal(full, "alice@example.org/home/x");
    mem_free(bare);
    mem_free(full);
    xmpp_jid_cleanup(&j);

    char *b = xmpp_jid_bare_of("example.org/x");
    assert_string_equal(b, "example.org");
    mem_free(b);
    assert_null(xmpp_jid_bare_of("@example.org"));
}

static void jid_local_validity(void **state)
{
    (void)state;
    assert_true(xmpp_jid_local_valid("alice"));
    assert_true(xmpp_jid_local_valid("j\xc3\xbcrgen.m"));
    assert_false(xmpp_jid_local_valid(""));
    assert_false(xmpp_jid_local_valid("a@b"));
    assert_false(xmpp_jid_local_valid("a/b"));
    assert_false(xmpp_jid_local_valid("a b"));
    assert_false(xmpp_jid_local_valid(NULL));
}

static void jid_bare_equal_ignores_case_and_resource(void **state)
{
    (void)state;
    assert_true(xmpp_jid_bare_equal("Alice@Example.org/a", "alice@example.ORG/b"));
    assert_true(xmpp_jid_bare_equal("example.org", "EXAMPLE.org/x"));
    assert_false(xmpp_jid_bare_equal("alice@example.org", "bob@example.org"));
    assert_false(xmpp_jid_bare_equal("alice@example.org", "example.org"));
    assert_false(xmpp_jid_bare_equal("@bad", "@bad"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(jid_parse_matches_table),
        cmocka_unit_test(jid_parts_are_limited_to_1023_bytes),
        cmocka_unit_test(jid_bare_and_full_forms),
        cmocka_unit_test(jid_local_validity),
        cmocka_unit_test(jid_bare_equal_ignores_case_and_resource),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
