/* test_api_xmpp.c: the stanza-error table and the address arguments of xmpp_api.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "api/xmpp_api.h"
#include "core/mem.h"
#include "xmpp/stanza.h"

static struct xmpp_stanza *parse(const char *xml)
{
    int err = 0;
    struct xmpp_stanza *st = xmpp_stanza_parse(xml, strlen(xml), XMPP_NS_CLIENT, 65536, &err);
    assert_non_null(st);
    return st;
}

/* The status for an error IQ with that condition; its condition name is copied to out. */
static int status_of(const char *condition, char out[64])
{
    char xml[512];
    snprintf(xml, sizeof(xml),
             "<iq type='error' id='1'><error type='cancel'><%s "
             "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><text "
             "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>why</text></error></iq>",
             condition);
    struct xmpp_stanza *st = parse(xml);
    const char *cond = NULL;
    int status = api__xmpp_error_status(st, &cond);
    snprintf(out, 64, "%s", cond);
    xmpp_stanza_unref(st);
    return status;
}

static void test_error_table(void **state)
{
    (void)state;

    const struct {
        const char *condition;
        int status;
    } cases[] = {
        { "bad-request", 400 },
        { "item-not-found", 404 },
        { "conflict", 409 },
        { "forbidden", 403 },
        { "not-authorized", 403 },
        { "feature-not-implemented", 501 },
        { "service-unavailable", 503 },
        { "remote-server-timeout", 504 },
        { "gone", 410 },
        { "internal-server-error", 502 },
        { "made-up-condition", 502 },
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char cond[64];
        assert_int_equal(status_of(cases[i].condition, cond), cases[i].status);
        assert_string_equal(cond, cases[i].condition); /* <text/> is never the condition */
    }
    /* no <error/> at all, or an empty one */
    struct xmpp_stanza *st = parse("<iq type='error' id='2'/>");
    const char *cond = NULL;
    assert_int_equal(api__xmpp_error_status(st, &cond), 502);
    assert_string_equal(cond, "undefined-condition");
    xmpp_stanza_unref(st);
}

static void test_jid_arg(void **state)
{
    (void)state;
    struct api_deps d = { .domain = "example.org" };

    const struct {
        const char *in;
        bool need_local;
        const char *out;
    } cases[] = {
        { "bob", true, "bob@example.org" },
        { "bob@other.net", true, "bob@other.net" },
        { "bob@other.net/phone", true, "bob@other.net/phone" },
        { "other.net", true, NULL },
        { "other.net", false, "other.net" },
        { "", true, NULL },
        { "bo b", true, NULL },
        { "a@b@c", true, NULL },
        { "bob@", true, NULL },
        { "<script>", true, NULL },
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *out = api__jid_arg(&d, cases[i].in, cases[i].need_local);
        if (cases[i].out == NULL) {
            assert_null(out);
        } else {
            assert_non_null(out);
            assert_string_equal(out, cases[i].out);
        }
        mem_free(out);
    }
}

static void test_muc_service_arg(void **state)
{
    (void)state;
    struct api_deps d = { .domain = "example.org" };
    char *out = (char *)1;
    assert_true(api__muc_service_arg(&d, NULL, &out));
    assert_null(out);
    assert_true(api__muc_service_arg(&d, "conference", &out));
    assert_string_equal(out, "conference.example.org");
    mem_free(out);
    assert_true(api__muc_service_arg(&d, "conference.", &out)); /* the reference's workaround */
    assert_string_equal(out, "conference.example.org");
    mem_free(out);
    assert_true(api__muc_service_arg(&d, "rooms.other.net", &out));
    assert_string_equal(out, "rooms.other.net");
    mem_free(out);
    assert_false(api__muc_service_arg(&d, "a@b.c", &out));
    assert_false(api__muc_service_arg(&d, "x/y.z", &out));
    assert_true(api__room_name_valid("lobby"));
    assert_false(api__room_name_valid(""));
    assert_false(api__room_name_valid("a@b"));
    assert_false(api__room_name_valid("a b"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_error_table),
        cmocka_unit_test(test_jid_arg),
        cmocka_unit_test(test_muc_service_arg),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
