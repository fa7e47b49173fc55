/* test_session_mam.c: message archive queries (session_mam_query) against the scripted server of
 * the stream tests: the result messages that come before the IQ answer are collected for their
 * queryid and become no event; a result "from" someone else is not collected (it goes the usual
 * way); the bound on collected messages truncates; a cancelled query never calls back. Each test
 * closes every handle and checks uv_loop_close() == 0 (and ASan finds no leak). */
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
#include "core/tick.h"
#include "session/session.h"
#include "xmpp/stanza.h"
#include "xmpp/stream.h"
#include "xmpp_fake_server.h"

#define SUCCESS "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>"
#define FEATURES                                                            \
    HDR "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>" \
        "</stream:features>"
#define BOUND                                                                        \
    "<iq type='result' id='sg-bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>" \
    "<jid>alice@localhost/sw-1</jid></bind></iq>"
#define DISCO_REPLY                                                              \
    "<iq type='result' id='sg2' from='localhost'><query "                        \
    "xmlns='http://jabber.org/protocol/disco#info'><identity category='server' " \
    "type='im'/></query></iq>"

#define RESULT(from, qid, id, body)                                                            \
    "<message " from " to='alice@localhost/sw-1'><result xmlns='urn:xmpp:mam:2' queryid='" qid \
    "' id='" id "'><forwarded xmlns='urn:xmpp:forward:0'><delay xmlns='urn:xmpp:delay' "       \
    "stamp='2024-05-01T10:00:00Z'/><message xmlns='jabber:client' from='bob@localhost/x' "     \
    "to='alice@localhost'><body>" body "</body></message></forwarded></result></message>"

static const struct step script[] = {
    { "<stream:stream", HDR PLAIN_ONLY },
    { "</auth>", SUCCESS },
    { "<stream:stream", FEATURES },
    { "</bind></iq>", BOUND },
    { "disco#info", DISCO_REPLY },
    { "vcard-temp", "<iq type='result' id='sg3'/>" },
    /* q1: a forged result from bob, two real ones (no 'from', and the bare JID), the answer */
    { "queryid='q1'",
      RESULT("from='bob@localhost/x'", "q1", "f", "forged") RESULT("", "q1", "a1", "one")
          RESULT("from='alice@localhost'", "q1", "a2",
                 "two") "<iq type='result' id='sg4'><fin xmlns='urn:xmpp:mam:2' "
                        "complete='true'/></iq>" },
    /* q2: two results, only one may be kept */
    { "queryid='q2'",
      RESULT("", "q2", "b1", "one") RESULT(
          "", "q2", "b2", "two") "<iq type='result' id='sg5'><fin xmlns='urn:xmpp:mam:2'/></iq>" },
    /* q3: never answered (cancelled) */
    { "queryid='q3'", NULL },
    /* q4: q3's results come late (after its cancel), then q4's answer */
    { "queryid='q4'", RESULT("", "q3", "c1", "late")
                          RESULT("from='alice@localhost'", "q3", "c2",
                                 "late2") "<iq type='result' id='sg7'><fin "
                                          "xmlns='urn:xmpp:mam:2' complete='true'/></iq>" },
    /* q5: never answered (times out) */
    { "queryid='q5'", NULL },
    /* q6: q5's result comes after its timeout, then q6's answer */
    { "queryid='q6'",
      RESULT("", "q5", "d1", "late") "<iq type='result' id='sg9'><fin xmlns='urn:xmpp:mam:2' "
                                     "complete='true'/></iq>" },
    { NULL, NULL },
};

struct ctx {
    struct session_mgr *mgr;
    struct session *s;
    int logins, login_status;
    int xmpp_events; /* chatapi.xmpp events delivered */
    int answers;
    int status;
    size_t n;
    bool truncated;
    char bodies[256];
    int freed;
};

static void on_login(struct session_mgr *mgr, int status, struct session *s, void *data)
{
    (void)mgr;
    struct ctx *c = data;
    c->logins++;
    c->login_status = status;
    c->s = s;
}

static void deliver(struct events_sink *sink, const struct event *ev, void *data)
{
    (void)sink;
    struct ctx *c = data;
    if (strcmp(ev->name, "chatapi.xmpp") == 0)
        c->xmpp_events++;
}

static void sink_closed(struct session *s, const char *reason, void *data)
{
    (void)s, (void)reason, (void)data;
}

static void mgr_freed(void *data)
{
    struct ctx *c = data;
    c->freed = 1;
}

static void pump(const int *v, int want, uint64_t ms)
{
    uint64_t end = uv_now(&loop) + ms;
    while (*v < want && uv_now(&loop) < end)
        uv_run(&loop, UV_RUN_ONCE);
}

static void on_mam(struct session *s, int status, const struct xmpp_stanza *reply,
                   struct xmpp_stanza *const *items, size_t n, bool truncated, void *data)
{
    (void)s;
    (void)reply;
    struct ctx *c = data;
    c->answers++;
    c->status = status;
    c->n = n;
    c->truncated = truncated;
    c->bodies[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        const struct xmpp_stanza *r = xmpp_stanza_child(items[i], "result", "urn:xmpp:mam:2");
        const struct xmpp_stanza *f = xmpp_stanza_child(r, "forwarded", NULL);
        char *b = xmpp_stanza_child_text(xmpp_stanza_child(f, "message", NULL), "body", NULL);
        size_t len = strlen(c->bodies);
        snprintf(c->bodies + len, sizeof(c->bodies) - len, "%s%s", len ? "," : "", b);
        mem_free(b);
    }
}

static int64_t query_t(struct ctx *c, const char *qid, size_t max_items, uint64_t timeout_ms)
{
    struct xmpp_stanza *iq = xmpp_stanza_new("iq", XMPP_NS_CLIENT);
    xmpp_stanza_set_attr(iq, "type", "set");
    struct xmpp_stanza *q = xmpp_stanza_add_child(iq, "query", "urn:xmpp:mam:2");
    xmpp_stanza_set_attr(q, "queryid", qid);
    int64_t id = session_mam_query(c->s, iq, qid, max_items, 1 << 20, timeout_ms, on_mam, c);
    xmpp_stanza_unref(iq);
    return id;
}

static int64_t query(struct ctx *c, const char *qid, size_t max_items)
{
    return query_t(c, qid, max_items, 3000);
}

static void mam_results_are_collected_bounded_and_never_events(void **state)
{
    (void)state;
    uv_loop_init(&loop);
    struct tick *t = tick_new(&loop, 50);
    struct ctx c = { 0 };
    srv_start(script);
    struct session_mgr_opts o = {
        .loop = &loop,
        .tick = t,
        .host = "127.0.0.1",
        .port = srv.port,
        .domain = "localhost",
        .tls_mode = XMPP_TLS_OFF,
        .connect_timeout_ms = 2000,
        .resource_prefix = "sw-",
        .linger_ms = 60000,
        .idle_timeout_ms = 600000,
        .iq_timeout_ms = 5000,
        .max_sessions = 4,
        .ring_len = 64,
    };
    c.mgr = session_mgr_new(&o);
    assert_int_equal(session_login(c.mgr, "alice", "secret", on_login, &c, NULL), 0);
    pump(&c.logins, 1, 3000);
    assert_int_equal(c.login_status, 0);
    session_attach(c.s, deliver, sink_closed, &c);
    int before = c.xmpp_events;

    assert_int_equal(query(&c, "", 8), -EINVAL);
    assert_true(query(&c, "q1", 8) > 0);
    pump(&c.answers, 1, 3000);
    assert_int_equal(c.answers, 1);
    assert_int_equal(c.status, 0);
    assert_int_equal(c.n, 2);
    assert_false(c.truncated);
    assert_string_equal(c.bodies, "one,two");
    /* the forged result and the IQ answer went the usual way; the collected ones did not */
    assert_int_equal(c.xmpp_events - before, 2);

    assert_true(query(&c, "q2", 1) > 0);
    pump(&c.answers, 2, 3000);
    assert_int_equal(c.n, 1);
    assert_true(c.truncated);
    assert_string_equal(c.bodies, "one");
    assert_int_equal(c.xmpp_events - before, 3); /* the second IQ answer only */

    int64_t id = query(&c, "q3", 4);
    assert_true(id > 0);
    uint64_t end = uv_now(&loop) + 300;
    while (uv_now(&loop) < end)
        uv_run(&loop, UV_RUN_ONCE);
    session_mam_cancel(c.s, id);
    session_mam_cancel(c.s, id); /* unknown now: ignored */
    assert_int_equal(c.answers, 2);

    /* the cancelled query's results arriving later are swallowed, not chat events */
    int ev = c.xmpp_events;
    assert_true(query(&c, "q4", 4) > 0);
    pump(&c.answers, 3, 3000);
    assert_int_equal(c.answers, 3);
    assert_int_equal(c.n, 0);
    assert_int_equal(c.xmpp_events - ev, 1); /* q4's IQ answer only */

    /* likewise for a query that timed out */
    assert_true(query_t(&c, "q5", 4, 200) > 0);
    pump(&c.answers, 4, 3000);
    assert_int_equal(c.answers, 4);
    assert_int_equal(c.status, -ETIMEDOUT);
    ev = c.xmpp_events;
    assert_true(query(&c, "q6", 4) > 0);
    pump(&c.answers, 5, 3000);
    assert_int_equal(c.answers, 5);
    assert_int_equal(c.n, 0);
    assert_int_equal(c.xmpp_events - ev, 1); /* q6's IQ answer only */

    session_mgr_free(c.mgr, mgr_freed, &c);
    pump(&c.freed, 1, 5000);
    assert_int_equal(c.freed, 1);
    assert_int_equal(c.answers, 5);
    finish_loop(t);
}

int main(void)
{
    (void)cbs;
    (void)opts_for;
    (void)run_until;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(mam_results_are_collected_bounded_and_never_events),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
