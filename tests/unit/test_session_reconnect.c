/* test_session_reconnect.c: a session whose upstream is lost, against the scripted server of
 * the stream tests (restarted on the same port): it keeps its sink, queues what is sent, asks
 * for a credential, and either resumes (XEP-0198) or binds afresh, re-announces itself and
 * resends what the old stream never had acknowledged, in order, then pushes
 * sparkgate.reconnected; a conflict, a missing credential or reconnect_max ends it with
 * session-closed. Each test closes every handle and checks uv_loop_close() == 0. */
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
#define FEATURES                                                                                       \
    HDR "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/><sm xmlns='urn:xmpp:sm:3'/>" \
        "</stream:features>"
#define BOUND                                                                        \
    "<iq type='result' id='sg-bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>" \
    "<jid>alice@localhost/sw-1</jid></bind></iq>"
/* The server's disco#info (no carbons, so none are enabled). */
#define DISCO_REPLY                                                              \
    "<iq type='result' id='sg2' from='localhost'><query "                        \
    "xmlns='http://jabber.org/protocol/disco#info'><identity category='server' " \
    "type='im'/></query></iq>"
#define LOGIN_STEPS                                               \
    { "<stream:stream", HDR PLAIN_ONLY }, { "</auth>", SUCCESS }, \
    {                                                             \
        "<stream:stream", FEATURES                                \
    }

/* The first stream: online (disco#info and vCard answered, the first four stanzas: roster,
 * presence, disco#info, vCard acknowledged), then m1
 * goes out and the server dies before acknowledging it. */
static const struct step first_script[] = {
    LOGIN_STEPS,
    { "</bind></iq>", BOUND },
    { "resume='true'/>", "<enabled xmlns='urn:xmpp:sm:3' id='sm-1' resume='true'/>" },
    { "disco#info", DISCO_REPLY },
    { "vcard-temp", "<iq type='result' id='sg3'/><a xmlns='urn:xmpp:sm:3' h='4'/>" },
    { "<body>m1</body>", SRV_CLOSE },
    { NULL, NULL },
};

static const struct step fresh_script[] = {
    LOGIN_STEPS,
    { "previd='sm-1'", "<failed xmlns='urn:xmpp:sm:3'><item-not-found "
                       "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>" },
    { "</bind></iq>", BOUND },
    { "resume='true'/>", "<enabled xmlns='urn:xmpp:sm:3' id='sm-2' resume='true'/>" },
    { "<body>m2</body>", NULL },
    { NULL, NULL },
};

static const struct step resumed_script[] = {
    LOGIN_STEPS,
    { "previd='sm-1'", "<resumed xmlns='urn:xmpp:sm:3' h='4' previd='sm-1'/>" },
    { "<body>m2</body>", NULL },
    { NULL, NULL },
};

static const struct step conflict_script[] = {
    LOGIN_STEPS,
    { "</bind></iq>", BOUND },
    { "resume='true'/>", "<enabled xmlns='urn:xmpp:sm:3' id='sm-1' resume='true'/>" },
    { "disco#info", DISCO_REPLY },
    { "vcard-temp", "<iq type='result' id='sg3'/>" },
    { "<body>m1</body>", "<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
                         "</stream:error>" },
    { NULL, NULL },
};

struct ctx {
    struct session_mgr *mgr;
    struct session *s;
    int logins, login_status;
    /* get_credential */
    int cred_asks;
    session_cred_cb *cred_cb;
    void *cred_arg;
    int cred_answer; /* 0: the password; else this status */
    /* the sink */
    char last_reconnected[256];
    char last_disconnect[256];
    int reconnecting, reconnected;
    int closed;
    char closed_reason[32];
    int ended;
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

static void get_credential(const char *user, session_cred_cb *cb, void *arg, void *data)
{
    struct ctx *c = data;
    assert_string_equal(user, "alice");
    assert_null(c->cred_cb);
    c->cred_asks++;
    c->cred_cb = cb; /* answered from the loop, never inside this call */
    c->cred_arg = arg;
}

static void on_end(const char *user, const char *reason, void *data)
{
    (void)user, (void)reason;
    struct ctx *c = data;
    c->ended++;
}

static void deliver(struct events_sink *sink, const struct event *ev, void *data)
{
    (void)sink;
    struct ctx *c = data;
    if (strcmp(ev->name, "sparkgate.reconnecting") == 0)
        c->reconnecting++;
    if (strcmp(ev->name, "sparkgate.reconnected") == 0) {
        c->reconnected++;
        snprintf(c->last_reconnected, sizeof(c->last_reconnected), "%s", ev->json);
    }
    if (strcmp(ev->name, "onDisconnect") == 0)
        snprintf(c->last_disconnect, sizeof(c->last_disconnect), "%s", ev->json);
}

static void sink_closed(struct session *s, const char *reason, void *data)
{
    (void)s;
    struct ctx *c = data;
    c->closed++;
    snprintf(c->closed_reason, sizeof(c->closed_reason), "%s", reason);
}

static void mgr_freed(void *data)
{
    struct ctx *c = data;
    c->freed = 1;
}

/* Runs the loop until *v >= want, answering credential requests on the way. */
static void pump(struct ctx *c, const int *v, int want, uint64_t ms)
{
    uint64_t end = uv_now(&loop) + ms;
    while (*v < want && uv_now(&loop) < end) {
        uv_run(&loop, UV_RUN_ONCE);
        if (c->cred_cb != NULL) {
            session_cred_cb *cb = c->cred_cb;
            c->cred_cb = NULL;
            struct session_cred cred = { .password = "secret" };
            cb(c->cred_answer, c->cred_answer == 0 ? &cred : NULL, c->cred_arg);
        }
    }
}

static struct session_mgr *mgr_new(struct tick *t, struct ctx *c, uint64_t reconnect_max_ms)
{
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
        .on_session_end = on_end,
        .reconnect_max_ms = reconnect_max_ms,
        .reconnect_rate = 50,
        .get_credential = get_credential,
        .data = c,
    };
    return session_mgr_new(&o);
}

static int send_body(struct session *s, const char *body)
{
    struct xmpp_stanza *m = xmpp_stanza_new("message", XMPP_NS_CLIENT);
    xmpp_stanza_set_attr(m, "to", "bob@localhost");
    xmpp_stanza_set_attr(m, "id", body);
    xmpp_stanza_add_text_child(m, "body", NULL, body);
    int rc = session_send(s, m);
    xmpp_stanza_unref(m);
    return rc;
}

/* Logs alice in against first_script, attaches a sink, sends m1 and waits for the loss. */
static void online_then_lost(struct ctx *c, struct tick *t, uint64_t reconnect_max_ms,
                             const struct step *first)
{
    srv_start(first);
    c->mgr = mgr_new(t, c, reconnect_max_ms);
    assert_int_equal(session_login(c->mgr, "alice", "secret", on_login, c, NULL), 0);
    pump(c, &c->logins, 1, 3000);
    assert_int_equal(c->login_status, 0);
    session_attach(c->s, deliver, sink_closed, c);
    assert_int_equal(send_body(c->s, "m1"), 0);
    if (first != first_script)
        return;
    uint64_t end = uv_now(&loop) + 3000;
    while (!session_reconnecting(c->s) && uv_now(&loop) < end)
        uv_run(&loop, UV_RUN_ONCE);
    assert_true(session_reconnecting(c->s));
    /* still there for callers, and what they send now waits */
    assert_ptr_equal(session_find(c->mgr, "alice"), c->s);
    assert_string_equal(session_jid(c->s), "alice@localhost/sw-1");
    assert_int_equal(send_body(c->s, "m2"), 0);
}

static void finish(struct ctx *c, struct tick *t)
{
    session_mgr_free(c->mgr, mgr_freed, c);
    pump(c, &c->freed, 1, 5000);
    assert_int_equal(c->freed, 1);
    finish_loop(t);
}

static long index_of(const char *hay, const char *needle)
{
    const char *p = strstr(hay, needle);
    return p ? (long)(p - hay) : -1;
}

static void session_reconnects_with_a_fresh_stream_and_resends_in_order(void **state)
{
    (void)state;
    uv_loop_init(&loop);
    struct tick *t = tick_new(&loop, 50);
    struct ctx c = { 0 };
    online_then_lost(&c, t, 60000, first_script);
    uint16_t port = srv.port;
    srv_stop();
    uv_run(&loop, UV_RUN_NOWAIT);
    srv_start_on(fresh_script, port);
    pump(&c, &c.reconnected, 1, 5000);
    assert_int_equal(c.cred_asks, 1);
    assert_int_equal(c.closed, 0);
    assert_false(session_reconnecting(c.s));
    assert_int_equal(c.reconnecting, 1);
    assert_non_null(strstr(c.last_reconnected, "\"resumed\":false"));
    assert_non_null(strstr(c.last_reconnected, "\"resent\":1"));
    assert_non_null(strstr(c.last_reconnected, "\"queued\":1"));
    uint64_t end = uv_now(&loop) + 3000;
    while (srv.script[srv.pos].wait != NULL && uv_now(&loop) < end)
        uv_run(&loop, UV_RUN_ONCE);
    /* the new binding announces itself, then m1 (never acknowledged), then m2 (queued) */
    const char *seen = buf_cstr(&srv.seen);
    long roster = index_of(seen, "jabber:iq:roster");
    long pres = index_of(seen, "<presence xmlns='jabber:client'/>");
    long m1 = index_of(seen, "<body>m1</body>");
    long m2 = index_of(seen, "<body>m2</body>");
    if (!(roster > 0 && pres > roster && m1 > pres && m2 > m1))
        fail_msg("order %ld %ld %ld %ld in: %s", roster, pres, m1, m2, seen);
    assert_non_null(strstr(seen, "<resource>sw-")); /* the same resource asked for again */
    finish(&c, t);
    assert_int_equal(c.ended, 1);
}

static void session_resumes_without_announcing_again(void **state)
{
    (void)state;
    uv_loop_init(&loop);
    struct tick *t = tick_new(&loop, 50);
    struct ctx c = { 0 };
    online_then_lost(&c, t, 60000, first_script);
    uint16_t port = srv.port;
    srv_stop();
    uv_run(&loop, UV_RUN_NOWAIT);
    srv_start_on(resumed_script, port);
    pump(&c, &c.reconnected, 1, 5000);
    assert_non_null(strstr(c.last_reconnected, "\"resumed\":true"));
    assert_non_null(strstr(c.last_reconnected, "\"resent\":1"));
    uint64_t end = uv_now(&loop) + 3000;
    while (srv.script[srv.pos].wait != NULL && uv_now(&loop) < end)
        uv_run(&loop, UV_RUN_ONCE);
    const char *seen = buf_cstr(&srv.seen);
    assert_null(strstr(seen, "<bind"));
    assert_null(strstr(seen, "<presence"));
    assert_true(index_of(seen, "<body>m1</body>") < index_of(seen, "<body>m2</body>"));
    finish(&c, t);
}

static void session_ends_when_no_credential_is_left(void **state)
{
    (void)state;
    uv_loop_init(&loop);
    struct tick *t = tick_new(&loop, 50);
    struct ctx c = { .cred_answer = -ENOKEY };
    online_then_lost(&c, t, 60000, first_script);
    pump(&c, &c.closed, 1, 5000);
    assert_int_equal(c.cred_asks, 1);
    assert_string_equal(c.closed_reason, "session-closed");
    /* m1 (never acknowledged) and m2 (queued) are reported lost */
    assert_non_null(strstr(c.last_disconnect, "\"undelivered\":2"));
    assert_null(session_find(c.mgr, "alice"));
    assert_int_equal(c.ended, 1);
    finish(&c, t);
}

static void session_gives_up_after_reconnect_max(void **state)
{
    (void)state;
    uv_loop_init(&loop);
    struct tick *t = tick_new(&loop, 50);
    struct ctx c = { 0 };
    /* full jitter: the first waits are at most 0.5 s, 1 s and 2 s, so a 4 s budget always
     * sees a second attempt, whatever the random draws */
    online_then_lost(&c, t, 4000, first_script);
    srv_stop(); /* nobody listens any more: every attempt is refused */
    uint64_t lost = uv_now(&loop);
    pump(&c, &c.closed, 1, 9000);
    uint64_t took = uv_now(&loop) - lost;
    assert_string_equal(c.closed_reason, "session-closed");
    assert_true(took >= 3900 && took < 6000);
    assert_true(c.cred_asks >= 2); /* backed off and tried again */
    assert_int_equal(c.reconnected, 0);
    session_mgr_free(c.mgr, mgr_freed, &c);
    pump(&c, &c.freed, 1, 5000);
    tick_free(t);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void session_ends_at_once_on_a_conflict(void **state)
{
    (void)state;
    uv_loop_init(&loop);
    struct tick *t = tick_new(&loop, 50);
    struct ctx c = { 0 };
    online_then_lost(&c, t, 60000, conflict_script);
    pump(&c, &c.closed, 1, 3000);
    assert_string_equal(c.closed_reason, "session-closed");
    assert_int_equal(c.cred_asks, 0);
    finish(&c, t);
}

/* Bound and SM enabled, then the server dies before answering disco#info / vCard: the session
 * was never online, so it ends and the login is answered (an error: the server is gone) rather
 * than left waiting on a reconnect. */
static const struct step setup_lost_script[] = {
    LOGIN_STEPS,
    { "</bind></iq>", BOUND },
    { "resume='true'/>", "<enabled xmlns='urn:xmpp:sm:3' id='sm-1' resume='true'/>" },
    { "vcard-temp", SRV_CLOSE },
    { NULL, NULL },
};

static void login_lost_during_setup_is_answered(void **state)
{
    (void)state;
    uv_loop_init(&loop);
    struct tick *t = tick_new(&loop, 50);
    struct ctx c = { 0 };
    srv_start(setup_lost_script);
    c.mgr = mgr_new(t, &c, 60000);
    assert_int_equal(session_login(c.mgr, "alice", "secret", on_login, &c, NULL), 0);
    pump(&c, &c.logins, 1, 5000); /* the retried login meets a server with no script left */
    assert_int_equal(c.logins, 1);
    assert_int_not_equal(c.login_status, 0);
    assert_null(session_find(c.mgr, "alice"));
    finish(&c, t);
}

/* An IQ made while reconnecting waits in the send queue: after a fresh reconnect it is sent
 * and its answer reaches the caller (it is not failed with the requests whose answers went
 * with the old stream). */
static const struct step fresh_iq_script[] = {
    LOGIN_STEPS,
    { "previd='sm-1'", "<failed xmlns='urn:xmpp:sm:3'><item-not-found "
                       "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>" },
    { "</bind></iq>", BOUND },
    { "resume='true'/>", "<enabled xmlns='urn:xmpp:sm:3' id='sm-2' resume='true'/>" },
    { "urn:xmpp:ping", "<iq type='result' id='sg4' from='localhost'/>" },
    { NULL, NULL },
};

struct iq_seen {
    int n, status;
};

static void on_ping(struct session *s, int status, const struct xmpp_stanza *reply, void *data)
{
    (void)s;
    (void)reply;
    struct iq_seen *r = data;
    r->n++;
    r->status = status;
}

static void iq_made_while_reconnecting_is_answered(void **state)
{
    (void)state;
    uv_loop_init(&loop);
    struct tick *t = tick_new(&loop, 50);
    struct ctx c = { 0 };
    online_then_lost(&c, t, 60000, first_script);
    struct xmpp_stanza *iq = xmpp_stanza_new("iq", XMPP_NS_CLIENT);
    xmpp_stanza_set_attr(iq, "type", "get");
    xmpp_stanza_set_attr(iq, "to", "localhost");
    xmpp_stanza_add_child(iq, "ping", "urn:xmpp:ping");
    struct iq_seen r = { 0 };
    assert_int_equal(session_send_iq(c.s, iq, 10000, on_ping, &r), 4); /* sg4: queued */
    xmpp_stanza_unref(iq);
    uint16_t port = srv.port;
    srv_stop();
    uv_run(&loop, UV_RUN_NOWAIT);
    srv_start_on(fresh_iq_script, port);
    pump(&c, &r.n, 1, 5000);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.status, 0);
    finish(&c, t);
}

int main(void)
{
    (void)cbs;
    (void)opts_for;
    (void)run_until;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(session_reconnects_with_a_fresh_stream_and_resends_in_order),
        cmocka_unit_test(session_resumes_without_announcing_again),
        cmocka_unit_test(session_ends_when_no_credential_is_left),
        cmocka_unit_test(session_gives_up_after_reconnect_max),
        cmocka_unit_test(session_ends_at_once_on_a_conflict),
        cmocka_unit_test(login_lost_during_setup_is_answered),
        cmocka_unit_test(iq_made_while_reconnecting_is_answered),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    xmpp_stream_global_cleanup();
    return rc;
}
