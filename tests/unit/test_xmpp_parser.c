/* test_xmpp_parser.c: the streaming parser through its seam (no socket): chunking, bounds,
 * restarts, errors. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/buf.h"
#include "core/mem.h"
#include "xmpp/stanza.h"
#include "xmpp/xmpp_int.h"

/* A server's side of a plain login, as Prosody 0.12 sends it (abridged), across a restart. */
static const char *const server_part1 =
    "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
    "xmlns:stream='http://etherx.jabber.org/streams' id='abc' from='localhost' version='1.0' "
    "xml:lang='en'><stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"
    "<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>SCRAM-SHA-1</mechanism>"
    "<mechanism>PLAIN</mechanism></mechanisms></stream:features>"
    "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>dj1ybUY5cHFWOFM3c3VBb1pXamE0ZEpSa0ZzS1E9"
    "</success>";

static const char *const server_part2 =
    "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
    "xmlns:stream='http://etherx.jabber.org/streams' id='def' from='localhost' version='1.0'>"
    "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><required/></bind>"
    "<sm xmlns='urn:xmpp:sm:3'><optional/></sm></stream:features> \n "
    "<iq type='result' id='sg-bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
    "<jid>alice@localhost/r1</jid></bind></iq><enabled xmlns='urn:xmpp:sm:3'/>"
    "<message from='bob@localhost/x' type='chat' xml:lang='en'><body>caf\xc3\xa9 &amp; "
    "&lt;b&gt; \xf0\x9f\x98\x80</body></message><r xmlns='urn:xmpp:sm:3'/>"
    "<presence from='bob@localhost/x'/>"
    "<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>"
    "</stream:stream>";

struct rec {
    struct xmpp__parser *p;
    int opens;
    int closes;
    struct buf log;
    const char *restart_on; /* element name that triggers a restart */
    const char *stop_on;
};

static void rec_open(void *data, struct xmpp_stanza *hdr)
{
    struct rec *r = data;
    r->opens++;
    buf_appendf(&r->log, "[open id=%s]", xmpp_stanza_attr(hdr, "id"));
}

static void rec_element(void *data, struct xmpp_stanza *st)
{
    struct rec *r = data;
    char *x = xmpp_stanza_to_string(st);
    buf_appends(&r->log, x);
    mem_free(x);
    if (r->restart_on && strcmp(xmpp_stanza_name(st), r->restart_on) == 0)
        xmpp__parser_restart(r->p);
    if (r->stop_on && strcmp(xmpp_stanza_name(st), r->stop_on) == 0)
        xmpp__parser_stop(r->p);
}

static void rec_close(void *data)
{
    struct rec *r = data;
    r->closes++;
    buf_appends(&r->log, "[close]");
}

static const struct xmpp__parser_cbs rec_cbs = { rec_open, rec_element, rec_close };

static void rec_init(struct rec *r, size_t max)
{
    memset(r, 0, sizeof(*r));
    buf_init(&r->log, 1 << 20);
    r->p = xmpp__parser_new(max, &rec_cbs, r);
    assert_non_null(r->p);
}

static void rec_cleanup(struct rec *r)
{
    xmpp__parser_free(r->p);
    buf_cleanup(&r->log);
}

/* Feeds s in chunks of random size 1..maxchunk; returns the first nonzero rc. */
static int feed_chunked(struct rec *r, const char *s, size_t maxchunk, unsigned *seed)
{
    size_t len = strlen(s), off = 0;
    while (off < len) {
        size_t n = 1 + (size_t)rand_r(seed) % maxchunk;
        if (n > len - off)
            n = len - off;
        int rc = xmpp__parser_feed(r->p, s + off, n);
        if (rc != 0)
            return rc;
        off += n;
    }
    return 0;
}

static char *expected_log(void)
{
    struct rec r;
    rec_init(&r, 65536);
    r.restart_on = "success";
    assert_int_equal(xmpp__parser_feed(r.p, server_part1, strlen(server_part1)), -ECANCELED);
    assert_int_equal(xmpp__parser_feed(r.p, server_part2, strlen(server_part2)), 0);
    char *s = buf_steal(&r.log);
    rec_cleanup(&r);
    return s;
}

static void parser_handles_any_chunking(void **state)
{
    (void)state;
    char *want = expected_log();
    assert_non_null(strstr(want, "[open id=abc]<features xmlns='http://etherx.jabber.org/streams'>"
                                 "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"));
    assert_non_null(strstr(want, "[open id=def]"));
    assert_non_null(strstr(want, "<message xmlns='jabber:client' from='bob@localhost/x' "
                                 "type='chat' xml:lang='en'><body>caf\xc3\xa9 &amp; &lt;b&gt; "
                                 "\xf0\x9f\x98\x80</body></message>"));
    assert_non_null(strstr(want, "<r xmlns='urn:xmpp:sm:3'/><presence xmlns='jabber:client' "
                                 "from='bob@localhost/x'/><error xmlns='http://etherx.jabber.org/"
                                 "streams'><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
                                 "</error>[close]"));
    unsigned seed = 12345;
    for (int round = 0; round < 300; round++) {
        struct rec r;
        rec_init(&r, 65536);
        size_t maxchunk = round < 100 ? 1 + (size_t)round % 7 : 1 + (size_t)round * 3;
        /* part 1 ends right after <success/>: the restart drops nothing that matters */
        int rc = feed_chunked(&r, server_part1, maxchunk, &seed);
        assert_int_equal(rc, 0);
        r.restart_on = NULL;
        xmpp__parser_reset(r.p);
        assert_int_equal(feed_chunked(&r, server_part2, maxchunk, &seed), 0);
        if (strcmp(r.log.ptr, want) != 0)
            fail_msg("round %d chunk %zu:\n got %s\nwant %s", round, maxchunk, r.log.ptr, want);
        assert_int_equal(r.opens, 2);
        assert_int_equal(r.closes, 1);
        rec_cleanup(&r);
    }
    mem_free(want);
}

static const char *const header =
    "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' "
    "version='1.0'>";

static void parser_enforces_max_stanza_at_the_bound(void **state)
{
    (void)state;
    const char *el = "<message><body>0123456789</body></message>";
    size_t n = strlen(el);
    for (int chunked = 0; chunked < 2; chunked++) {
        struct rec r;
        rec_init(&r, n);
        unsigned seed = 7;
        assert_int_equal(xmpp__parser_feed(r.p, header, strlen(header)), 0);
        assert_int_equal(chunked ? feed_chunked(&r, el, 3, &seed) : xmpp__parser_feed(r.p, el, n),
                         0);
        assert_non_null(strstr(r.log.ptr, "0123456789"));
        const char *big = "<message><body>0123456789!</body></message>";
        int rc = chunked ? feed_chunked(&r, big, 3, &seed) : xmpp__parser_feed(r.p, big, n + 1);
        assert_int_equal(rc, -EMSGSIZE);
        assert_string_equal(xmpp__parser_error(r.p), "stanza too large");
        /* sticky until reset */
        assert_int_equal(xmpp__parser_feed(r.p, " ", 1), -EMSGSIZE);
        rec_cleanup(&r);
    }
}

static void parser_bounds_an_unfinished_tag(void **state)
{
    (void)state;
    struct rec r;
    rec_init(&r, 1000);
    assert_int_equal(xmpp__parser_feed(r.p, header, strlen(header)), 0);
    assert_int_equal(xmpp__parser_feed(r.p, "<message to='", 13), 0);
    char junk[600];
    memset(junk, 'a', sizeof(junk));
    assert_int_equal(xmpp__parser_feed(r.p, junk, sizeof(junk)), 0);
    assert_int_equal(xmpp__parser_feed(r.p, junk, sizeof(junk)), -EMSGSIZE);
    rec_cleanup(&r);
}

static void parser_allows_endless_whitespace_keepalives(void **state)
{
    (void)state;
    struct rec r;
    rec_init(&r, 100);
    assert_int_equal(xmpp__parser_feed(r.p, header, strlen(header)), 0);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(xmpp__parser_feed(r.p, " \n", 2), 0);
    assert_int_equal(xmpp__parser_feed(r.p, "<presence/>", 11), 0);
    assert_non_null(strstr(r.log.ptr, "<presence xmlns='jabber:client'/>"));
    rec_cleanup(&r);
}

struct bad_stream {
    const char *in;
    int rc;
};

static void parser_rejects_bad_streams(void **state)
{
    (void)state;
    static const struct bad_stream bad[] = {
        { "<foo/>", -EPROTO },
        { "<stream:stream xmlns:stream='urn:wrong'>", -EPROTO },
        { "<!DOCTYPE x [<!ENTITY a 'b'>]><stream:stream "
          "xmlns:stream='http://etherx.jabber.org/streams'>",
          -EPROTO },
        { "<stream:stream xmlns:stream='http://etherx.jabber.org/streams'><a>&lt;</b>", -EPROTO },
        { "<stream:stream xmlns:stream='http://etherx.jabber.org/streams'><!-- x -->", -EPROTO },
        { "<stream:stream xmlns:stream='http://etherx.jabber.org/streams'><a>&ent;</a>", -EPROTO },
        { "<stream:stream xmlns:stream='http://etherx.jabber.org/streams'><a>\xc3\x28</a>",
          -EPROTO },
        { "<stream:stream xmlns:stream='http://etherx.jabber.org/streams'></stream:stream><x/>",
          -EPROTO },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct rec r;
        rec_init(&r, 4096);
        int rc = xmpp__parser_feed(r.p, bad[i].in, strlen(bad[i].in));
        if (rc != bad[i].rc)
            fail_msg("row %zu: rc %d want %d (%s)", i, rc, bad[i].rc, xmpp__parser_error(r.p));
        assert_true(xmpp__parser_error(r.p)[0] != '\0');
        /* a reset parser works again */
        xmpp__parser_reset(r.p);
        assert_int_equal(xmpp__parser_feed(r.p, header, strlen(header)), 0);
        rec_cleanup(&r);
    }
}

static void parser_limits_depth(void **state)
{
    (void)state;
    struct rec r;
    rec_init(&r, 1 << 20);
    assert_int_equal(xmpp__parser_feed(r.p, header, strlen(header)), 0);
    int rc = 0;
    for (int i = 0; i < XMPP__MAX_DEPTH + 1 && rc == 0; i++)
        rc = xmpp__parser_feed(r.p, "<a>", 3);
    assert_int_equal(rc, -EPROTO);
    rec_cleanup(&r);
}

static void parser_stop_drops_the_rest_of_the_chunk(void **state)
{
    (void)state;
    struct rec r;
    rec_init(&r, 4096);
    r.stop_on = "a";
    assert_int_equal(xmpp__parser_feed(r.p, header, strlen(header)), 0);
    assert_int_equal(xmpp__parser_feed(r.p, "<a/><b/>", 8), -ECANCELED);
    assert_null(strstr(r.log.ptr, "<b"));
    rec_cleanup(&r);
}

/* Like feed_chunked, but hibernates after every chunk (where the parser allows it); counts the
 * hibernations. */
static int feed_hibernating(struct rec *r, const char *s, size_t maxchunk, unsigned *seed,
                            int *naps)
{
    size_t len = strlen(s), off = 0;
    while (off < len) {
        size_t n = 1 + (size_t)rand_r(seed) % maxchunk;
        if (n > len - off)
            n = len - off;
        int rc = xmpp__parser_feed(r->p, s + off, n);
        if (rc != 0)
            return rc;
        off += n;
        if (xmpp__parser_hibernate(r->p)) {
            assert_true(xmpp__parser_hibernating(r->p));
            (*naps)++;
        }
    }
    return 0;
}

static void parser_hibernates_under_any_chunking(void **state)
{
    (void)state;
    char *want = expected_log();
    unsigned seed = 4242;
    for (int round = 0; round < 300; round++) {
        struct rec r;
        rec_init(&r, 65536);
        int naps = 0;
        size_t maxchunk = round < 100 ? 1 + (size_t)round % 7 : 1 + (size_t)round * 3;
        assert_int_equal(feed_hibernating(&r, server_part1, maxchunk, &seed, &naps), 0);
        xmpp__parser_reset(r.p);
        assert_false(xmpp__parser_hibernating(r.p));
        assert_int_equal(feed_hibernating(&r, server_part2, maxchunk, &seed, &naps), 0);
        if (strcmp(r.log.ptr, want) != 0)
            fail_msg("round %d chunk %zu:\n got %s\nwant %s", round, maxchunk, r.log.ptr, want);
        assert_int_equal(r.opens, 2); /* the replayed headers are not reported */
        assert_int_equal(r.closes, 1);
        assert_true(naps > 0);
        rec_cleanup(&r);
    }
    mem_free(want);
}

static void parser_hibernates_only_between_stanzas(void **state)
{
    (void)state;
    struct rec r;
    rec_init(&r, 4096);
    assert_false(xmpp__parser_hibernate(r.p)); /* before the header */
    assert_int_equal(xmpp__parser_feed(r.p, header, 29), 0);
    assert_false(xmpp__parser_hibernate(r.p)); /* inside the header */
    assert_int_equal(xmpp__parser_feed(r.p, header + 29, strlen(header) - 29), 0);
    assert_true(xmpp__parser_hibernate(r.p));
    assert_true(xmpp__parser_hibernate(r.p)); /* already */
    /* a stanza split across the wake */
    assert_int_equal(xmpp__parser_feed(r.p, "<message to='a@b'><bo", 21), 0);
    assert_false(xmpp__parser_hibernating(r.p));
    assert_false(xmpp__parser_hibernate(r.p)); /* inside a stanza */
    assert_int_equal(xmpp__parser_feed(r.p, "dy>hi</body></message> ", 23), 0);
    assert_string_equal(r.log.ptr, "[open id=(null)]<message xmlns='jabber:client' to='a@b'>"
                                   "<body>hi</body></message>");
    assert_true(xmpp__parser_hibernate(r.p));
    /* an unfinished tag at level 1 */
    assert_int_equal(xmpp__parser_feed(r.p, "<pres", 5), 0);
    assert_false(xmpp__parser_hibernate(r.p));
    assert_int_equal(xmpp__parser_feed(r.p, "ence/>", 6), 0);
    assert_true(xmpp__parser_hibernate(r.p));
    assert_non_null(strstr(r.log.ptr, "<presence xmlns='jabber:client'/>"));
    assert_int_equal(r.opens, 1);
    rec_cleanup(&r);
}

static void parser_wakes_with_the_stream_namespaces(void **state)
{
    (void)state;
    /* an unusual stream prefix and an extra declaration on the header */
    static const char *const hdr =
        "<s:stream xmlns='jabber:client' xmlns:s='http://etherx.jabber.org/streams' "
        "xmlns:x='urn:example:x' id='h1'>";
    struct rec r;
    rec_init(&r, 4096);
    assert_int_equal(xmpp__parser_feed(r.p, hdr, strlen(hdr)), 0);
    assert_true(xmpp__parser_hibernate(r.p));
    assert_int_equal(xmpp__parser_feed(r.p, "<x:ping/><s:features/>", 22), 0);
    assert_true(xmpp__parser_hibernate(r.p));
    assert_int_equal(xmpp__parser_feed(r.p, "<iq type='get'/>", 16), 0);
    assert_true(xmpp__parser_hibernate(r.p));
    /* the close arrives into a hibernated parser */
    assert_int_equal(xmpp__parser_feed(r.p, "</s:stream>", 11), 0);
    assert_string_equal(r.log.ptr, "[open id=h1]<ping xmlns='urn:example:x'/>"
                                   "<features xmlns='http://etherx.jabber.org/streams'/>"
                                   "<iq xmlns='jabber:client' type='get'/>[close]");
    assert_int_equal(r.opens, 1);
    assert_int_equal(r.closes, 1);
    assert_false(xmpp__parser_hibernate(r.p)); /* the stream is over */
    /* a wrong closing tag is still an error after a wake */
    struct rec w;
    rec_init(&w, 4096);
    assert_int_equal(xmpp__parser_feed(w.p, hdr, strlen(hdr)), 0);
    assert_true(xmpp__parser_hibernate(w.p));
    assert_int_equal(xmpp__parser_feed(w.p, "</stream:stream>", 16), -EPROTO);
    assert_int_equal(w.closes, 0);
    rec_cleanup(&w);
    rec_cleanup(&r);
}

static void parser_restarts_after_a_wake(void **state)
{
    (void)state;
    struct rec r;
    rec_init(&r, 4096);
    r.restart_on = "success";
    assert_int_equal(xmpp__parser_feed(r.p, header, strlen(header)), 0);
    assert_true(xmpp__parser_hibernate(r.p));
    assert_int_equal(
        xmpp__parser_feed(r.p, "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/><junk", 56),
        -ECANCELED);
    assert_false(xmpp__parser_hibernate(r.p)); /* a new stream: no header yet */
    static const char *const hdr2 = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
                                    "xmlns:stream='http://etherx.jabber.org/streams' id='second'>";
    assert_int_equal(xmpp__parser_feed(r.p, hdr2, strlen(hdr2)), 0);
    assert_true(xmpp__parser_hibernate(r.p));
    assert_int_equal(xmpp__parser_feed(r.p, "<a/></stream:stream>", 20), 0);
    assert_string_equal(r.log.ptr, "[open id=(null)]<success xmlns='urn:ietf:params:xml:ns:xmpp-"
                                   "sasl'/>[open id=second]<a xmlns='jabber:client'/>[close]");
    /* a reset of a hibernated parser */
    rec_cleanup(&r);
    rec_init(&r, 4096);
    assert_int_equal(xmpp__parser_feed(r.p, header, strlen(header)), 0);
    assert_true(xmpp__parser_hibernate(r.p));
    xmpp__parser_reset(r.p);
    assert_int_equal(xmpp__parser_feed(r.p, header, strlen(header)), 0);
    assert_int_equal(xmpp__parser_feed(r.p, "<b/>", 4), 0);
    assert_int_equal(r.opens, 2);
    assert_non_null(strstr(r.log.ptr, "<b xmlns='jabber:client'/>"));
    rec_cleanup(&r);
}

static void parser_keeps_the_size_bound_across_a_wake(void **state)
{
    (void)state;
    const char *el = "<message><body>0123456789</body></message>";
    size_t n = strlen(el);
    struct rec r;
    rec_init(&r, n);
    assert_int_equal(xmpp__parser_feed(r.p, header, strlen(header)), 0);
    for (int i = 0; i < 3; i++) { /* exactly the bound passes, also when split by a wake */
        assert_true(xmpp__parser_hibernate(r.p));
        assert_int_equal(xmpp__parser_feed(r.p, el, 9), 0);
        assert_int_equal(xmpp__parser_feed(r.p, el + 9, n - 9), 0);
    }
    assert_true(xmpp__parser_hibernate(r.p));
    const char *big = "<message><body>0123456789!</body></message>";
    assert_int_equal(xmpp__parser_feed(r.p, big, n + 1), -EMSGSIZE);
    assert_false(xmpp__parser_hibernate(r.p)); /* failed: stays failed */
    assert_int_equal(xmpp__parser_feed(r.p, " ", 1), -EMSGSIZE);
    rec_cleanup(&r);
    /* an unfinished tag after a wake is bounded from the stream offset, not expat's */
    rec_init(&r, 1000);
    assert_int_equal(xmpp__parser_feed(r.p, header, strlen(header)), 0);
    for (int i = 0; i < 50; i++) { /* the stream offset grows well past the bound */
        assert_true(xmpp__parser_hibernate(r.p));
        assert_int_equal(xmpp__parser_feed(r.p, el, n), 0);
    }
    assert_true(xmpp__parser_hibernate(r.p));
    assert_int_equal(xmpp__parser_feed(r.p, "<message to='", 13), 0);
    char junk[600];
    memset(junk, 'a', sizeof(junk));
    assert_int_equal(xmpp__parser_feed(r.p, junk, sizeof(junk)), 0);
    assert_int_equal(xmpp__parser_feed(r.p, junk, sizeof(junk)), -EMSGSIZE);
    rec_cleanup(&r);
}

static void parser_keeps_restrictions_after_a_wake(void **state)
{
    (void)state;
    static const char *const bad[] = { "<!-- x -->", "<a>&ent;</a>", "<a>\xc3\x28</a>",
                                       "<?pi x?>" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct rec r;
        rec_init(&r, 4096);
        assert_int_equal(xmpp__parser_feed(r.p, header, strlen(header)), 0);
        assert_true(xmpp__parser_hibernate(r.p));
        if (xmpp__parser_feed(r.p, bad[i], strlen(bad[i])) != -EPROTO)
            fail_msg("row %zu accepted after a wake", i);
        rec_cleanup(&r);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parser_handles_any_chunking),
        cmocka_unit_test(parser_enforces_max_stanza_at_the_bound),
        cmocka_unit_test(parser_bounds_an_unfinished_tag),
        cmocka_unit_test(parser_allows_endless_whitespace_keepalives),
        cmocka_unit_test(parser_rejects_bad_streams),
        cmocka_unit_test(parser_limits_depth),
        cmocka_unit_test(parser_stop_drops_the_rest_of_the_chunk),
        cmocka_unit_test(parser_hibernates_under_any_chunking),
        cmocka_unit_test(parser_hibernates_only_between_stanzas),
        cmocka_unit_test(parser_wakes_with_the_stream_namespaces),
        cmocka_unit_test(parser_restarts_after_a_wake),
        cmocka_unit_test(parser_keeps_the_size_bound_across_a_wake),
        cmocka_unit_test(parser_keeps_restrictions_after_a_wake),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
