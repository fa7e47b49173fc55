/* test_xmpp_stanza.c: stanza trees: build, query, escape, namespaces, parse, redact. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/buf.h"
#include "core/mem.h"
#include "xmpp/stanza.h"

static void assert_xml(const struct xmpp_stanza *st, const char *want)
{
    char *s = xmpp_stanza_to_string(st);
    assert_string_equal(s, want);
    mem_free(s);
}

static struct xmpp_stanza *parse_ok(const char *xml)
{
    int err = 1;
    struct xmpp_stanza *st = xmpp_stanza_parse(xml, strlen(xml), XMPP_NS_CLIENT, 65536, &err);
    if (st == NULL)
        fail_msg("parse failed (%d): %s", err, xml);
    assert_int_equal(err, 0);
    return st;
}

static void stanza_builds_and_serialises_with_namespaces(void **state)
{
    (void)state;
    struct xmpp_stanza *m = xmpp_stanza_new("message", XMPP_NS_CLIENT);
    xmpp_stanza_set_attr(m, "to", "bob@example.org");
    xmpp_stanza_set_attr(m, "type", "chat");
    xmpp_stanza_add_text_child(m, "body", NULL, "hi");
    struct xmpp_stanza *x =
        xmpp_stanza_add_child(m, "active", "http://jabber.org/protocol/chatstates");
    xmpp_stanza_add_child(x, "inner", NULL);
    assert_xml(m,
               "<message xmlns='jabber:client' to='bob@example.org' type='chat'><body>hi</body>"
               "<active xmlns='http://jabber.org/protocol/chatstates'><inner/></active></message>");
    assert_string_equal(xmpp_stanza_ns(xmpp_stanza_child(m, "body", NULL)), XMPP_NS_CLIENT);
    assert_string_equal(xmpp_stanza_ns(xmpp_stanza_first_child(x)),
                        "http://jabber.org/protocol/chatstates");
    /* a child serialised alone carries its inherited namespace */
    assert_xml(xmpp_stanza_child(m, "body", XMPP_NS_CLIENT),
               "<body xmlns='jabber:client'>hi</body>");
    /* a stanza without a namespace gets none (it inherits the stream's) */
    struct xmpp_stanza *p = xmpp_stanza_new("presence", NULL);
    assert_xml(p, "<presence/>");
    xmpp_stanza_unref(p);
    xmpp_stanza_unref(m);
}

static void stanza_escapes_text_and_attributes(void **state)
{
    (void)state;
    struct xmpp_stanza *m = xmpp_stanza_new("message", NULL);
    xmpp_stanza_set_attr(m, "id", "a\"b'c<d>e&f\ng\th");
    const char *txt = "1 < 2 && 3 > 2 \"q\" 'a'\nline2\r\xf0\x9f\x98\x80";
    xmpp_stanza_add_text_child(m, "body", NULL, txt);
    assert_xml(m, "<message id='a&quot;b&apos;c&lt;d&gt;e&amp;f&#10;g&#9;h'><body>1 &lt; 2 "
                  "&amp;&amp; 3 &gt; 2 \"q\" 'a'\nline2&#13;\xf0\x9f\x98\x80</body></message>");
    /* and the round trip gives the same values back */
    char *xml = xmpp_stanza_to_string(m);
    struct xmpp_stanza *back = parse_ok(xml);
    assert_string_equal(xmpp_stanza_attr(back, "id"), "a\"b'c<d>e&f\ng\th");
    char *body = xmpp_stanza_child_text(back, "body", NULL);
    assert_string_equal(body, txt);
    mem_free(body);
    mem_free(xml);
    xmpp_stanza_unref(back);
    xmpp_stanza_unref(m);
}

static void stanza_replaces_characters_xml_cannot_carry(void **state)
{
    (void)state;
    struct xmpp_stanza *m = xmpp_stanza_new("b", NULL);
    xmpp_stanza_add_text(m, "a\x01z\xff\xc3", 5);
    assert_xml(m, "<b>a\xef\xbf\xbdz\xef\xbf\xbd\xef\xbf\xbd</b>");
    xmpp_stanza_unref(m);
}

static void stanza_xml_lang_round_trips(void **state)
{
    (void)state;
    struct xmpp_stanza *st =
        parse_ok("<message xml:lang='de'><body xml:lang='en'>x</body></message>");
    assert_string_equal(xmpp_stanza_attr(st, "xml:lang"), "de");
    assert_xml(st, "<message xmlns='jabber:client' xml:lang='de'><body xml:lang='en'>x</body>"
                   "</message>");
    xmpp_stanza_unref(st);
    struct xmpp_stanza *b = xmpp_stanza_new("presence", NULL);
    xmpp_stanza_set_attr(b, "xml:lang", "fr");
    assert_xml(b, "<presence xml:lang='fr'/>");
    xmpp_stanza_unref(b);
}

static void stanza_parse_keeps_namespaces(void **state)
{
    (void)state;
    struct xmpp_stanza *st =
        parse_ok("<iq type='result' id='1'><query xmlns='jabber:iq:roster' ver='2'><item jid='a@b' "
                 "name='A'><group>G</group></item></query><x:y xmlns:x='urn:x'><z/></x:y></iq>");
    assert_string_equal(xmpp_stanza_ns(st), XMPP_NS_CLIENT);
    struct xmpp_stanza *q = xmpp_stanza_child(st, "query", "jabber:iq:roster");
    assert_non_null(q);
    struct xmpp_stanza *item = xmpp_stanza_child(q, "item", "jabber:iq:roster");
    assert_non_null(item);
    assert_ptr_equal(xmpp_stanza_parent(item), q);
    char *g = xmpp_stanza_child_text(item, "group", NULL);
    assert_string_equal(g, "G");
    mem_free(g);
    assert_null(xmpp_stanza_child_text(item, "nope", NULL));
    assert_non_null(xmpp_stanza_child(st, "y", "urn:x"));
    assert_xml(st, "<iq xmlns='jabber:client' type='result' id='1'><query xmlns='jabber:iq:roster' "
                   "ver='2'><item jid='a@b' name='A'><group>G</group></item></query><y "
                   "xmlns='urn:x'><z xmlns='jabber:client'/></y></iq>");
    xmpp_stanza_unref(st);

    /* default_ns NULL: no namespace at all */
    int err;
    st = xmpp_stanza_parse("<a><b/></a>", 11, NULL, 100, &err);
    assert_non_null(st);
    assert_null(xmpp_stanza_ns(st));
    assert_xml(st, "<a><b/></a>");
    xmpp_stanza_unref(st);
}

static void stanza_foreign_attributes_keep_their_namespace(void **state)
{
    (void)state;
    struct xmpp_stanza *st = parse_ok("<m xmlns:p='urn:p' p:k='v' a='1'/>");
    char *xml = xmpp_stanza_to_string(st);
    struct xmpp_stanza *back = parse_ok(xml);
    char *xml2 = xmpp_stanza_to_string(back);
    assert_string_equal(xml, xml2);
    assert_non_null(strstr(xml, "='urn:p'"));
    mem_free(xml);
    mem_free(xml2);
    xmpp_stanza_unref(back);
    xmpp_stanza_unref(st);
}

struct bad_case {
    const char *xml;
    int err;
};

static void stanza_parse_rejects_bad_input(void **state)
{
    (void)state;
    static const struct bad_case bad[] = {
        { "", -EINVAL },
        { "<a>", -EINVAL },
        { "<a></b>", -EINVAL },
        { "<a/><b/>", -EINVAL },
        { "<a/>junk", -EINVAL },
        { "text", -EINVAL },
        { "<a x='1' x='2'/>", -EINVAL },
        { "<?xml version='1.0'?><a/>", -EINVAL },
        { "<!DOCTYPE a [<!ENTITY e 'x'>]><a>&e;</a>", -EINVAL },
        { "<!DOCTYPE lolz [<!ENTITY lol 'lol'><!ENTITY lol2 '&lol;&lol;&lol;'>]><a>&lol2;</a>",
          -EINVAL },
        { "<a><!-- c --></a>", -EINVAL },
        { "<a><?pi x?></a>", -EINVAL },
        { "<a>&unknown;</a>", -EINVAL },
        { "<p:a/>", -EINVAL },
        { "<a>\xff</a>", -EINVAL },
        { "<a><xml:x/></a>", -EINVAL }, /* cannot be serialised back */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int err = 0;
        struct xmpp_stanza *st =
            xmpp_stanza_parse(bad[i].xml, strlen(bad[i].xml), XMPP_NS_CLIENT, 4096, &err);
        if (st != NULL || err != bad[i].err)
            fail_msg("row %zu (%s): st=%p err=%d", i, bad[i].xml, (void *)st, err);
    }
}

static void stanza_parse_enforces_max_len_at_the_bound(void **state)
{
    (void)state;
    const char *xml = "<message><body>0123456789</body></message>";
    size_t n = strlen(xml);
    int err = 0;
    struct xmpp_stanza *st = xmpp_stanza_parse(xml, n, NULL, n, &err);
    assert_non_null(st);
    xmpp_stanza_unref(st);
    st = xmpp_stanza_parse(xml, n, NULL, n - 1, &err);
    assert_null(st);
    assert_int_equal(err, -EMSGSIZE);
}

static void stanza_parse_limits_depth(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 1 << 20);
    for (int i = 0; i < 129; i++)
        buf_appends(&b, "<a>");
    for (int i = 0; i < 129; i++)
        buf_appends(&b, "</a>");
    int err = 0;
    assert_null(xmpp_stanza_parse(b.ptr, b.len, NULL, b.len, &err));
    assert_int_equal(err, -EINVAL);
    buf_cleanup(&b);
    buf_init(&b, 1 << 20);
    for (int i = 0; i < 128; i++)
        buf_appends(&b, "<a>");
    for (int i = 0; i < 128; i++)
        buf_appends(&b, "</a>");
    struct xmpp_stanza *st = xmpp_stanza_parse(b.ptr, b.len, NULL, b.len, &err);
    assert_non_null(st);
    xmpp_stanza_unref(st);
    buf_cleanup(&b);
}

static void stanza_refcount_copy_and_attrs(void **state)
{
    (void)state;
    struct xmpp_stanza *m = parse_ok("<message to='a@b'><body>x</body>t1<x/>t2</message>");
    struct xmpp_stanza *r = xmpp_stanza_ref(m);
    assert_ptr_equal(r, m);
    xmpp_stanza_unref(r);
    char *t = xmpp_stanza_text(m);
    assert_string_equal(t, "t1t2");
    mem_free(t);
    int n = 0;
    for (struct xmpp_stanza *c = xmpp_stanza_first_child(m); c; c = xmpp_stanza_next(c))
        n++;
    assert_int_equal(n, 2);

    struct xmpp_stanza *body = xmpp_stanza_child(m, "body", NULL);
    struct xmpp_stanza *held = xmpp_stanza_ref(body);
    struct xmpp_stanza *cp = xmpp_stanza_copy(m);
    xmpp_stanza_set_attr(cp, "to", "c@d");
    xmpp_stanza_set_attr(cp, "id", "1");
    xmpp_stanza_set_attr(cp, "id", NULL);
    xmpp_stanza_set_attr(cp, "nothing", NULL);
    assert_string_equal(xmpp_stanza_attr(m, "to"), "a@b");
    assert_xml(cp, "<message xmlns='jabber:client' to='c@d'><body>x</body>t1<x/>t2</message>");
    xmpp_stanza_unref(m);
    /* a child with its own reference outlives its parent */
    assert_null(xmpp_stanza_parent(held));
    assert_xml(held, "<body xmlns='jabber:client'>x</body>");
    xmpp_stanza_unref(held);

    struct xmpp_stanza *root = xmpp_stanza_new("iq", NULL);
    xmpp_stanza_adopt_child(root, cp);
    assert_xml(root, "<iq><message xmlns='jabber:client' to='c@d'><body>x</body>t1<x/>t2</message>"
                     "</iq>");
    xmpp_stanza_unref(root);
    xmpp_stanza_unref(NULL);
}

static void stanza_serialize_respects_buffer_limit(void **state)
{
    (void)state;
    struct xmpp_stanza *m = parse_ok("<message><body>0123456789</body></message>");
    struct buf b;
    buf_init(&b, 20);
    buf_appends(&b, "pre");
    assert_int_equal(xmpp_stanza_serialize(m, &b), -ENOBUFS);
    assert_string_equal(buf_cstr(&b), "pre");
    buf_cleanup(&b);
    buf_init(&b, 1000);
    assert_int_equal(xmpp_stanza_serialize(m, &b), 0);
    assert_string_equal(b.ptr, "<message xmlns='jabber:client'><body>0123456789</body></message>");
    buf_cleanup(&b);
    xmpp_stanza_unref(m);
}

struct redact_case {
    const char *in;
    const char *secret;
    const char *keep;
};

static void stanza_redacted_hides_secrets(void **state)
{
    (void)state;
    static const struct redact_case cases[] = {
        { "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGFsaWNlAHNlY3JldA==</auth>",
          "AGFsaWNl", "mechanism='PLAIN'" },
        { "<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>Yz1iaXdzLHI9</response>", "Yz1i",
          "<response" },
        { "<challenge xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>cj1meWtv</challenge>", "cj1m",
          "<challenge" },
        { "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>dj1ybUY5</success>", "dj1y",
          "<success" },
        { "<iq type='set'><query xmlns='jabber:iq:register'><username>bob</username>"
          "<password>hunter2</password></query></iq>",
          "hunter2", "<username>bob</username>" },
        { "<message to='a@b'><body>my secret text</body><thread>t1</thread></message>", "secret",
          "<thread>t1</thread>" },
        { "<authenticate xmlns='urn:xmpp:sasl:2' mechanism='HT-SHA-256-NONE'><initial-response>"
          "YWxpY2UA</initial-response></authenticate>",
          "YWxpY2UA", "mechanism='HT-SHA-256-NONE'" },
        { "<success xmlns='urn:xmpp:sasl:2'><additional-data>dj1ybUY5</additional-data>"
          "<token xmlns='urn:xmpp:fast:0' expiry='2026-12-01T00:00:00Z' "
          "token='secret-token:fast-abc'/></success>",
          "fast-abc", "expiry='2026-12-01T00:00:00Z'" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct xmpp_stanza *st = parse_ok(cases[i].in);
        char *r = xmpp_stanza_redacted(st);
        if (strstr(r, cases[i].secret) != NULL || strstr(r, cases[i].keep) == NULL)
            fail_msg("row %zu: %s", i, r);
        mem_free(r);
        xmpp_stanza_unref(st);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(stanza_builds_and_serialises_with_namespaces),
        cmocka_unit_test(stanza_escapes_text_and_attributes),
        cmocka_unit_test(stanza_replaces_characters_xml_cannot_carry),
        cmocka_unit_test(stanza_xml_lang_round_trips),
        cmocka_unit_test(stanza_parse_keeps_namespaces),
        cmocka_unit_test(stanza_foreign_attributes_keep_their_namespace),
        cmocka_unit_test(stanza_parse_rejects_bad_input),
        cmocka_unit_test(stanza_parse_enforces_max_len_at_the_bound),
        cmocka_unit_test(stanza_parse_limits_depth),
        cmocka_unit_test(stanza_refcount_copy_and_attrs),
        cmocka_unit_test(stanza_serialize_respects_buffer_limit),
        cmocka_unit_test(stanza_redacted_hides_secrets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
