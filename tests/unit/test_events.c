/* test_events.c: stanza -> SparkWeb events (contract §3.5) and the per-user event log. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/b64.h"
#include "core/mem.h"
#include "events/events.h"
#include "xmpp/stanza.h"

#include "events_fixture.h"

static void chat_message_with_quotes_newline_and_emoji_survives(void **state)
{
    (void)state;
    struct captured c;
    convert("<message xmlns='jabber:client' from='bob@example.org/phone' "
            "to='alice@example.org/sparkweb-1' type='chat'><body>say \"hi\"\nback\\slash "
            "\xF0\x9F\x98\x80 &amp; &lt;b&gt;</body></message>",
            &c);
    assert_int_equal(c.n, 2);
    assert_string_equal(c.name[0], "chatapi.xmpp");
    assert_string_equal(c.name[1], "chatapi.chat");
    json_t *p = c.payload[1];
    assert_string_equal(sget(p, "type"), "chat");
    assert_string_equal(sget(p, "from"), "bob@example.org/phone");
    assert_string_equal(sget(p, "to"), "alice@example.org/sparkweb-1");
    assert_string_equal(sget(p, "body"), "say \"hi\"\nback\\slash \xF0\x9F\x98\x80 & <b>");
    assert_true(json_is_null(json_object_get(p, "data")));
    /* chatapi.xmpp is base64 of the stanza with xmlns='jabber:client' on top */
    const char *b = sget(c.payload[0], "xmpp");
    uint8_t *raw;
    size_t rawlen;
    assert_int_equal(b64_decode(b, strlen(b), B64_STD, &raw, &rawlen), 0);
    assert_non_null(strstr((char *)raw, "jabber:client"));
    assert_memory_equal(raw, "<message", 8);
    mem_free(raw);
    release(&c);
}

static void presence_keeps_reference_values_and_adds_presence_type(void **state)
{
    (void)state;
    struct captured c;
    convert("<presence from='bob@example.org/phone' to='alice@example.org' "
            "type='unavailable'/>",
            &c);
    assert_int_equal(c.n, 2);
    assert_string_equal(c.name[1], "chatapi.presence");
    assert_string_equal(sget(c.payload[1], "type"), "presence");
    assert_string_equal(sget(c.payload[1], "show"), "available"); /* [Q] kept */
    assert_string_equal(sget(c.payload[1], "status"), "null");
    assert_string_equal(sget(c.payload[1], "presenceType"), "unavailable");
    release(&c);

    convert("<presence from='bob@example.org/phone'><show>dnd</show><status>busy</status>"
            "</presence>",
            &c);
    assert_string_equal(sget(c.payload[1], "show"), "dnd");
    assert_string_equal(sget(c.payload[1], "status"), "busy");
    assert_string_equal(sget(c.payload[1], "presenceType"), "available");
    assert_string_equal(sget(c.payload[1], "to"), "null");
    release(&c);
}

static void chat_state_then_body_in_order(void **state)
{
    (void)state;
    struct captured c;
    convert("<message from='bob@x/r' to='alice@x/s' type='chat'><active "
            "xmlns='http://jabber.org/protocol/chatstates'/><body>hi</body></message>",
            &c);
    assert_int_equal(c.n, 3);
    assert_string_equal(c.name[1], "chatapi.chat");
    assert_string_equal(sget(c.payload[1], "state"), "active");
    assert_null(json_object_get(c.payload[1], "body"));
    assert_string_equal(sget(c.payload[2], "body"), "hi");
    release(&c);
}

static void groupchat_message_is_muc_event(void **state)
{
    (void)state;
    struct captured c;
    convert("<message from='lobby@conference.x/Bob' to='alice@x/s' type='groupchat'>"
            "<body>hello all</body></message>",
            &c);
    assert_int_equal(c.n, 2);
    assert_string_equal(c.name[1], "chatapi.muc");
    assert_string_equal(sget(c.payload[1], "type"), "groupchat");
    release(&c);
    convert("<message from='lobby@conference.x' type='groupchat'><subject>s</subject></message>",
            &c);
    assert_int_equal(c.n, 1); /* subject only: chatapi.xmpp alone */
    release(&c);
}

static void jive_data_is_spliced_as_json_and_bodiless_data_is_notify(void **state)
{
    (void)state;
    struct captured c;
    convert("<message from='bob@x/r' to='alice@x/s'><properties "
            "xmlns='http://www.jivesoftware.com/xmlns/xmpp/properties'><property><name>data</name>"
            "<value type='string'>{\"any\":\"json\",\"n\":1}</value></property></properties>"
            "</message>",
            &c);
    assert_int_equal(c.n, 2);
    assert_string_equal(c.name[1], "chatapi.notify");
    assert_string_equal(sget(c.payload[1], "type"), "notify");
    json_t *d = json_object_get(c.payload[1], "data");
    assert_true(json_is_object(d));
    assert_int_equal(json_integer_value(json_object_get(d, "n")), 1);
    release(&c);
}

static void invitations_mediated_and_direct(void **state)
{
    (void)state;
    struct captured c;
    convert("<message from='lobby@conference.x' to='alice@x/s'><x "
            "xmlns='http://jabber.org/protocol/muc#user'><invite from='bob@x/r'><reason>Please "
            "join</reason></invite></x></message>",
            &c);
    assert_int_equal(c.n, 2);
    assert_string_equal(c.name[1], "chatapi.muc");
    assert_string_equal(sget(c.payload[1], "type"), "invitationReceived");
    assert_string_equal(sget(c.payload[1], "room"), "lobby@conference.x");
    assert_string_equal(sget(c.payload[1], "inviter"), "bob@x/r");
    assert_string_equal(sget(c.payload[1], "password"), "null");
    assert_string_equal(sget(c.payload[1], "reason"), "Please join");
    assert_string_equal(sget(c.payload[1], "url"), "https://gw.example.org/meet/lobby");
    release(&c);

    convert("<message from='bob@x/r' to='alice@x/s'><x xmlns='jabber:x:conference' "
            "jid='room@conference.x'/></message>",
            &c);
    assert_int_equal(c.n, 2);
    assert_string_equal(sget(c.payload[1], "room"), "room@conference.x");
    assert_string_equal(sget(c.payload[1], "reason"), "null");
    assert_null(json_object_get(c.payload[1], "password"));
    release(&c);
}

static void pubsub_json_item_is_emitted(void **state)
{
    (void)state;
    struct captured c;
    convert("<message from='pubsub.x' to='alice@x'><event "
            "xmlns='http://jabber.org/protocol/pubsub#event'><items node='n'><item id='1'><json "
            "xmlns='urn:xmpp:json:0'>{\"score\":3}</json></item></items></event></message>",
            &c);
    assert_int_equal(c.n, 2);
    assert_string_equal(c.name[1], "pubsub.item");
    assert_int_equal(json_integer_value(json_object_get(c.payload[1], "score")), 3);
    release(&c);
}

static void iq_gives_only_the_raw_event(void **state)
{
    (void)state;
    struct captured c;
    convert("<iq type='get' id='p1' from='x'><ping xmlns='urn:xmpp:ping'/></iq>", &c);
    assert_int_equal(c.n, 1);
    assert_string_equal(c.name[0], "chatapi.xmpp");
    release(&c);
}

/* --- the log --- */

struct sink_rec {
    int n;
    uint64_t ids[64];
};

static void record(struct events_sink *sink, const struct event *ev, void *data)
{
    (void)sink;
    struct sink_rec *r = data;
    r->ids[r->n++] = ev->id;
}

static void log_replays_only_what_no_sink_saw(void **state)
{
    (void)state;
    struct events_log *log = events_log_new(4);
    uint64_t base = events_log_base(log);
    for (int i = 0; i < 6; i++)
        events_log_push(log, "e", json_integer(i)); /* ids base+1..6; ring keeps 3..6 */
    struct sink_rec a = { 0 }, b = { 0 };
    struct events_sink *sa = events_log_attach(log, record, &a);
    assert_int_equal(a.n, 4);
    assert_int_equal(a.ids[0], base + 3);
    assert_int_equal(a.ids[3], base + 6);
    struct events_sink *sb = events_log_attach(log, record, &b);
    assert_int_equal(b.n, 0); /* already delivered to a */
    events_log_push(log, "e", json_integer(7));
    assert_int_equal(a.n, 5);
    assert_int_equal(b.n, 1);
    assert_int_equal(b.ids[0], base + 7);
    events_log_detach(log, sa);
    events_log_detach(log, sb);
    assert_int_equal(events_log_sink_count(log), 0);
    events_log_push(log, "e", json_integer(8));
    struct sink_rec c = { 0 };
    struct events_sink *sc = events_log_attach(log, record, &c);
    assert_int_equal(c.n, 1);
    assert_int_equal(c.ids[0], base + 8);
    events_log_detach(log, sc);
    events_log_free(log);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(chat_message_with_quotes_newline_and_emoji_survives),
        cmocka_unit_test(presence_keeps_reference_values_and_adds_presence_type),
        cmocka_unit_test(chat_state_then_body_in_order),
        cmocka_unit_test(groupchat_message_is_muc_event),
        cmocka_unit_test(jive_data_is_spliced_as_json_and_bodiless_data_is_notify),
        cmocka_unit_test(invitations_mediated_and_direct),
        cmocka_unit_test(pubsub_json_item_is_emitted),
        cmocka_unit_test(iq_gives_only_the_raw_event),
        cmocka_unit_test(log_replays_only_what_no_sink_saw),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
