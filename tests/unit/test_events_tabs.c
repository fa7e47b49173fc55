/* test_events_tabs.c: what keeps a user's tabs in step: XEP-0280 carbons unwrapped into the
 * usual events (and forged ones ignored), the payload of the user's own sent messages, and
 * one-sink delivery of a final event. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/mem.h"
#include "events/events.h"
#include "xmpp/stanza.h"

#include "events_fixture.h"

#define ACCOUNT "alice@example.org"

/* A carbon of `kind` ("received" or "sent") from `from` wrapping `inner`. */
static void carbon(char *out, size_t len, const char *from, const char *kind, const char *inner)
{
    snprintf(out, len,
             "<message xmlns='jabber:client' from='%s' to='alice@example.org/sparkweb-1' "
             "type='chat'><%s xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'>"
             "%s</forwarded></%s></message>",
             from, kind, inner, kind);
}

#define INNER_FROM_BOB                                              \
    "<message xmlns='jabber:client' from='bob@example.org/phone' "  \
    "to='alice@example.org/laptop' type='chat' id='m1'><composing " \
    "xmlns='http://jabber.org/protocol/chatstates'/><body>hi from bob</body></message>"
#define INNER_FROM_ALICE                                              \
    "<message xmlns='jabber:client' from='alice@example.org/laptop' " \
    "to='bob@example.org' type='chat' id='m2'><body>hi from my laptop</body></message>"

static void received_carbon_becomes_the_forwarded_messages_events(void **state)
{
    (void)state;
    char xml[1024];
    struct captured c;
    carbon(xml, sizeof(xml), ACCOUNT, "received", INNER_FROM_BOB);
    convert_as(ACCOUNT, xml, &c);
    assert_int_equal(c.n, 3);
    assert_string_equal(c.name[0], "chatapi.xmpp"); /* the outer stanza, as today */
    assert_string_equal(c.name[1], "chatapi.chat");
    assert_string_equal(sget(c.payload[1], "state"), "composing");
    assert_string_equal(c.name[2], "chatapi.chat");
    json_t *p = c.payload[2];
    assert_string_equal(sget(p, "from"), "bob@example.org/phone");
    assert_string_equal(sget(p, "to"), "alice@example.org/laptop");
    assert_string_equal(sget(p, "body"), "hi from bob");
    assert_string_equal(sget(p, "type"), "chat");
    assert_null(json_object_get(p, "sent")); /* inbound events carry no "sent" */
    release(&c);
}

static void sent_carbon_becomes_a_sent_chat_event(void **state)
{
    (void)state;
    char xml[1024];
    struct captured c;
    carbon(xml, sizeof(xml), "Alice@Example.org", "sent", INNER_FROM_ALICE); /* case-folded */
    convert_as(ACCOUNT, xml, &c);
    assert_int_equal(c.n, 2);
    assert_string_equal(c.name[1], "chatapi.chat");
    json_t *p = c.payload[1];
    assert_string_equal(sget(p, "from"), "alice@example.org/laptop");
    assert_string_equal(sget(p, "to"), "bob@example.org");
    assert_string_equal(sget(p, "body"), "hi from my laptop");
    assert_string_equal(sget(p, "id"), "m2");
    assert_true(json_is_true(json_object_get(p, "sent")));
    assert_true(json_is_null(json_object_get(p, "data")));
    release(&c);
}

struct forged_case {
    const char *account;
    const char *from;
};

static void carbons_not_from_the_bare_account_are_ignored(void **state)
{
    (void)state;
    const struct forged_case cases[] = {
        { ACCOUNT, "bob@example.org" },          /* another user (CVE-2017-5589) */
        { ACCOUNT, "bob@example.org/phone" },    /* another user's client */
        { ACCOUNT, "alice@example.org/laptop" }, /* own full JID: carbons come from the bare */
        { ACCOUNT, "example.org" },              /* the server itself */
        { ACCOUNT, "alice@evil.example" },       /* same local part elsewhere */
        { NULL, ACCOUNT },                       /* no account known: never unwrapped */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        for (int k = 0; k < 2; k++) {
            char xml[1024];
            struct captured c;
            carbon(xml, sizeof(xml), cases[i].from, k ? "sent" : "received",
                   k ? INNER_FROM_ALICE : INNER_FROM_BOB);
            convert_as(cases[i].account, xml, &c);
            /* only the raw outer stanza: it has no body of its own */
            if (c.n != 1 || strcmp(c.name[0], "chatapi.xmpp") != 0)
                fail_msg("row %zu kind %d: %d events, second %s", i, k, c.n,
                         c.n > 1 ? c.name[1] : "-");
            release(&c);
        }
    }
}

static void carbon_without_forwarded_message_yields_no_derived_event(void **state)
{
    (void)state;
    const char *xml[] = {
        "<message from='alice@example.org'><received xmlns='urn:xmpp:carbons:2'/></message>",
        ("<message from='alice@example.org'><sent xmlns='urn:xmpp:carbons:2'><forwarded "
         "xmlns='urn:xmpp:forward:0'/></sent></message>"),
        "<message from='alice@example.org'><sent xmlns='urn:xmpp:carbons:2'><forwarded "
        "xmlns='urn:xmpp:forward:0'><message xmlns='jabber:server'><body>x</body></message>"
        "</forwarded></sent></message>",
    };
    for (size_t i = 0; i < sizeof(xml) / sizeof(xml[0]); i++) {
        struct captured c;
        convert_as(ACCOUNT, xml[i], &c);
        if (c.n != 1)
            fail_msg("row %zu: %d events", i, c.n);
        release(&c);
    }
}

static void sent_carbon_of_chat_state_or_groupchat_is_not_shown(void **state)
{
    (void)state;
    const char *inner[] = {
        ("<message xmlns='jabber:client' from='alice@example.org/laptop' to='bob@example.org' "
         "type='chat'><paused xmlns='http://jabber.org/protocol/chatstates'/></message>"),
        ("<message xmlns='jabber:client' from='alice@example.org/laptop' "
         "to='room@conference.example.org' type='groupchat'><body>x</body></message>"),
    };
    for (size_t i = 0; i < sizeof(inner) / sizeof(inner[0]); i++) {
        char xml[1024];
        struct captured c;
        carbon(xml, sizeof(xml), ACCOUNT, "sent", inner[i]);
        convert_as(ACCOUNT, xml, &c);
        if (c.n != 1)
            fail_msg("row %zu: %d events", i, c.n);
        release(&c);
    }
}

static void sent_message_payload_mirrors_an_inbound_chat_event(void **state)
{
    (void)state;
    /* what POST chat/message builds for a JSON body with a "body" member */
    struct xmpp_stanza *m = parse(
        "<message to='bob@example.org' id='abc' type='chat'><body>json hi</body><properties "
        "xmlns='http://www.jivesoftware.com/xmlns/xmpp/properties'><property><name>data</name>"
        "<value type='string'>{\"body\":\"json hi\",\"n\":42}</value></property></properties>"
        "</message>");
    json_t *p = events_sent_message(m, "alice@example.org/sparkweb-1");
    assert_non_null(p);
    assert_string_equal(sget(p, "type"), "chat");
    assert_string_equal(sget(p, "from"), "alice@example.org/sparkweb-1");
    assert_string_equal(sget(p, "to"), "bob@example.org");
    assert_string_equal(sget(p, "body"), "json hi");
    assert_string_equal(sget(p, "id"), "abc");
    assert_true(json_is_true(json_object_get(p, "sent")));
    assert_int_equal(json_integer_value(json_object_get(json_object_get(p, "data"), "n")), 42);
    char *text = json_dumps(p, JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(text, "{\"body\":\"json hi\",\"data\":{\"body\":\"json hi\",\"n\":42},"
                              "\"from\":\"alice@example.org/sparkweb-1\",\"id\":\"abc\","
                              "\"sent\":true,\"to\":\"bob@example.org\",\"type\":\"chat\"}");
    free(text);
    json_decref(p);
    xmpp_stanza_unref(m);

    /* plain text, no id: no "id" key; type defaults to normal */
    m = parse("<message to='bob@example.org'><body>a \"b\"\nc</body></message>");
    p = events_sent_message(m, "alice@example.org/sparkweb-1");
    assert_non_null(p);
    assert_string_equal(sget(p, "type"), "normal");
    assert_string_equal(sget(p, "body"), "a \"b\"\nc");
    assert_null(json_object_get(p, "id"));
    assert_true(json_is_null(json_object_get(p, "data")));
    json_decref(p);
    xmpp_stanza_unref(m);
}

static void sent_message_without_body_has_no_event(void **state)
{
    (void)state;
    const char *xml[] = {
        /* a data-only notify (JSON body without "body") */
        "<message to='bob@example.org' type='normal'><properties "
        "xmlns='http://www.jivesoftware.com/xmlns/xmpp/properties'><property><name>data</name>"
        "<value type='string'>{\"x\":1}</value></property></properties></message>",
        ("<message to='bob@example.org' type='chat'><composing "
         "xmlns='http://jabber.org/protocol/chatstates'/></message>"),
        "<message to='room@conference.example.org' type='groupchat'><body>x</body></message>",
    };
    for (size_t i = 0; i < sizeof(xml) / sizeof(xml[0]); i++) {
        struct xmpp_stanza *m = parse(xml[i]);
        json_t *p = events_sent_message(m, "alice@example.org/sparkweb-1");
        if (p != NULL)
            fail_msg("row %zu: an event", i);
        xmpp_stanza_unref(m);
    }
}

struct seen {
    int n;
    uint64_t id[4];
    char name[4][32];
};

static void deliver(struct events_sink *sink, const struct event *ev, void *data)
{
    (void)sink;
    struct seen *s = data;
    assert_true(s->n < 4);
    s->id[s->n] = ev->id;
    snprintf(s->name[s->n++], sizeof(s->name[0]), "%s", ev->name);
}

static void send_to_reaches_one_sink_without_id_or_ring_entry(void **state)
{
    (void)state;
    struct events_log *log = events_log_new(8);
    struct seen a = { 0 }, b = { 0 };
    struct events_sink *sa = events_log_attach(log, deliver, &a);
    struct events_sink *sb = events_log_attach(log, deliver, &b);
    events_log_push(log, "chatapi.chat", json_object());
    events_log_send_to(log, sa, "onDisconnect", json_pack("{s:s}", "reason", "logout"));
    assert_int_equal(a.n, 2);
    assert_string_equal(a.name[1], "onDisconnect");
    assert_int_equal(a.id[1], 0);
    assert_int_equal(b.n, 1);
    assert_int_equal(events_log_last_id(log), a.id[0]); /* the one-off event took no id */
    events_log_detach(log, sa);
    events_log_detach(log, sb);
    /* nothing new for a later sink: the one-off event was not kept */
    struct seen c = { 0 };
    struct events_sink *sc = events_log_attach(log, deliver, &c);
    assert_int_equal(c.n, 0);
    events_log_detach(log, sc);
    events_log_free(log);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(received_carbon_becomes_the_forwarded_messages_events),
        cmocka_unit_test(sent_carbon_becomes_a_sent_chat_event),
        cmocka_unit_test(carbons_not_from_the_bare_account_are_ignored),
        cmocka_unit_test(carbon_without_forwarded_message_yields_no_derived_event),
        cmocka_unit_test(sent_carbon_of_chat_state_or_groupchat_is_not_shown),
        cmocka_unit_test(sent_message_payload_mirrors_an_inbound_chat_event),
        cmocka_unit_test(sent_message_without_body_has_no_event),
        cmocka_unit_test(send_to_reaches_one_sink_without_id_or_ring_entry),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
