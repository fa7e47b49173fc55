/* events_fixture.h: shared by test_events*.c: records the events events_from_stanza emits for
 * a stanza given as XML, and reads string members of their payloads. */
#ifndef SPARKGATE_TESTS_EVENTS_FIXTURE_H
#define SPARKGATE_TESTS_EVENTS_FIXTURE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "events/events.h"
#include "xmpp/stanza.h"

#define MAX_EV 8

struct captured {
    int n;
    char name[MAX_EV][32];
    json_t *payload[MAX_EV];
};

static inline void capture(const char *name, json_t *payload, void *data)
{
    struct captured *c = data;
    assert_true(c->n < MAX_EV);
    snprintf(c->name[c->n], sizeof(c->name[0]), "%s", name);
    c->payload[c->n++] = json_incref(payload);
}

static inline void release(struct captured *c)
{
    for (int i = 0; i < c->n; i++)
        json_decref(c->payload[i]);
}

static inline struct xmpp_stanza *parse(const char *xml)
{
    int err = 0;
    struct xmpp_stanza *st = xmpp_stanza_parse(xml, strlen(xml), XMPP_NS_CLIENT, 1 << 20, &err);
    assert_non_null(st);
    return st;
}

/* The events of xml as received by account (NULL: no carbon handling). */
static inline void convert_as(const char *account, const char *xml, struct captured *c)
{
    struct xmpp_stanza *st = parse(xml);
    struct events_opts o = { .meet_base = "https://gw.example.org", .account = account };
    memset(c, 0, sizeof(*c));
    events_from_stanza(st, &o, capture, c);
    xmpp_stanza_unref(st);
}

static inline void convert(const char *xml, struct captured *c)
{
    convert_as(NULL, xml, c);
}

static inline const char *sget(json_t *o, const char *k)
{
    const char *v = json_string_value(json_object_get(o, k));
    if (v == NULL)
        fail_msg("missing string key %s", k);
    return v;
}

#endif
