/* test_xmpp_sm.c: XEP-0198 on the client stream against the scripted server: inbound h
 * counting, the queue of unacknowledged stanzas and its bound, ack requests, a bad ack, and
 * resumption on a second connection: <resumed h/> resends only what the server missed and keeps
 * the counters; <failed/> binds afresh and hands the unacknowledged stanzas back. Each test
 * closes every handle and checks uv_loop_close() == 0. */
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
#include "xmpp/stanza.h"
#include "xmpp/stream.h"
#include "xmpp/xmpp_int.h"
#include "xmpp_fake_server.h"

#define AUTH_STEPS                                                                                \
    { "<stream:stream", HDR PLAIN_ONLY },                                                         \
        { "</auth>", "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>" },                     \
    {                                                                                             \
        "<stream:stream", HDR "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>" \
                              "<sm xmlns='urn:xmpp:sm:3'/></stream:features>"                     \
    }
#define BIND_STEP                                                                            \
    {                                                                                        \
        "<resource>res</resource></bind></iq>",                                              \
            "<iq type='result' id='sg-bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>" \
            "<jid>alice@localhost/res</jid></bind></iq>"                                     \
    }
#define MSG(n) "<message from='bob@localhost/x' id='in" #n "'><body>in" #n "</body></message>"

static struct xmpp_stanza *message(const char *body)
{
    struct xmpp_stanza *m = xmpp_stanza_new("message", NULL);
    xmpp_stanza_set_attr(m, "to", "bob@localhost");
    xmpp_stanza_add_text_child(m, "body", NULL, body);
    return m;
}

static int send_message(struct xmpp_stream *s, const char *body)
{
    struct xmpp_stanza *m = message(body);
    int rc = xmpp_stream_send(s, m);
    xmpp_stanza_unref(m);
    return rc;
}

static struct xmpp_stream *open_stream(struct tick *t, struct client *c, struct xmpp_sm *resume)
{
    struct xmpp_stream_opts o = opts_for(t, XMPP_TLS_OFF, NULL);
    o.resume = resume;
    struct xmpp_stream *s = NULL;
    assert_int_equal(xmpp_stream_open(&loop, &o, &cbs, c, &s), 0);
    run_until(&c->ready, 1, 3000);
    assert_int_equal(c->ready, 1);
    assert_int_equal(c->status, 0);
    return s;
}

/* Runs the loop until the server has acknowledged `want` stanzas. */
static void run_until_acked(const struct xmpp_stream *s, uint32_t want)
{
    uint64_t end = uv_now(&loop) + 3000;
    while (s->sm->acked != want && uv_now(&loop) < end)
        uv_run(&loop, UV_RUN_ONCE);
}

/* Runs the loop until the scripted server has played every step. */
static void run_script(void)
{
    uint64_t end = uv_now(&loop) + 3000;
    while (srv.script[srv.pos].wait != NULL && uv_now(&loop) < end)
        uv_run(&loop, UV_RUN_ONCE);
    if (srv.script[srv.pos].wait != NULL)
        fail_msg("script stuck at step %zu waiting for %s; got: %s", srv.pos,
                 srv.script[srv.pos].wait, buf_cstr(&srv.in));
}

/* Lets the closing server handles go before the next srv_start reuses their memory. */
static void server_restart(const struct step *script)
{
    srv_stop();
    uv_run(&loop, UV_RUN_NOWAIT);
    srv_start(script);
}

static const struct step acks_script[] = {
    AUTH_STEPS,
    BIND_STEP,
    { "<enable xmlns='urn:xmpp:sm:3' resume='true'/>",
      "<enabled xmlns='urn:xmpp:sm:3' id='sm-1' resume='true'/>" },
    /* the fifth unacked stanza makes the client ask */
    { "<r xmlns='urn:xmpp:sm:3'/>",
      MSG(1) MSG(2) "<presence from='bob@localhost/x'/>"
                    "<a xmlns='urn:xmpp:sm:3' h='3'/><r xmlns='urn:xmpp:sm:3'/>" },
    { "<a xmlns='urn:xmpp:sm:3' h='3'/>", NULL },
    /* the two left unacked are asked about on the tick */
    { "<r xmlns='urn:xmpp:sm:3'/>", "<a xmlns='urn:xmpp:sm:3' h='5'/>" MSG(3) },
    /* an unsolicited ack of the fourth inbound stanza follows on the tick */
    { "<a xmlns='urn:xmpp:sm:3' h='4'/>", "<a xmlns='urn:xmpp:sm:3' h='9'/>" },
    { NULL, NULL },
};

static void sm_counts_inbound_and_drops_acknowledged_stanzas(void **state)
{
    (void)state;
    uv_loop_init(&loop);
    struct tick *t = tick_new(&loop, 50);
    srv_start(acks_script);
    struct client c = { 0 };
    struct xmpp_stream *s = open_stream(t, &c, NULL);
    assert_true(xmpp_stream_sm_enabled(s));
    assert_false(xmpp_stream_resumed(s));
    for (int i = 0; i < 5; i++)
        assert_int_equal(send_message(s, "out"), 0);
    assert_int_equal(s->sm->n, 5);
    assert_int_equal(s->sm->h_out, 5);
    run_until(&c.stanzas, 3, 3000);
    run_until_acked(s, 3);
    assert_int_equal(s->sm->acked, 3);
    assert_int_equal(s->sm->n, 2);
    assert_int_equal(s->sm->h_in, 3);
    run_until(&c.stanzas, 4, 3000);
    assert_int_equal(s->sm->n, 0);
    assert_int_equal(s->sm->acked, 5);
    /* h='9' acknowledges stanzas never sent: a stream error */
    run_until(&c.closed, 1, 3000);
    assert_int_equal(c.close_status, -EPROTO);
    assert_string_equal(c.reason, "undefined-condition");
    xmpp_stream_free(s);
    finish_loop(t);
}

static const struct step bound_script[] = {
    AUTH_STEPS,
    BIND_STEP,
    { "<enable xmlns='urn:xmpp:sm:3' resume='true'/>", "<enabled xmlns='urn:xmpp:sm:3'/>" },
    { NULL, NULL },
};

static void sm_queue_is_bounded(void **state)
{
    (void)state;
    uv_loop_init(&loop);
    struct tick *t = tick_new(&loop, 50);
    srv_start(bound_script);
    struct client c = { 0 };
    struct xmpp_stream *s = open_stream(t, &c, NULL);
    /* the server never acknowledges: the queue fills at its bound, then refuses */
    for (int i = 0; i < XMPP__SM_MAX_QUEUE; i++)
        assert_int_equal(send_message(s, "x"), 0);
    assert_int_equal(send_message(s, "x"), -ENOBUFS);
    const char *raw = "<message to='bob@localhost'><body>raw</body></message>";
    assert_int_equal(xmpp_stream_send_xml(s, raw, strlen(raw)), -ENOBUFS);
    assert_int_equal(xmpp_stream_send_xml(s, "<a/>", 4), -EINVAL);
    assert_int_equal(xmpp_stream_send_xml(s, "<messages/>", 11), -EINVAL);
    /* the state survives the stream; not resumable (no id granted) */
    xmpp_stream_close(s);
    run_until(&c.closed, 1, 5000);
    struct xmpp_sm *sm = xmpp_stream_sm_take(s);
    assert_non_null(sm);
    assert_false(xmpp_sm_resumable(sm));
    assert_int_equal(xmpp_sm_unacked(sm), XMPP__SM_MAX_QUEUE);
    assert_null(xmpp_stream_sm_take(s));
    xmpp_sm_free(sm);
    xmpp_stream_free(s);
    finish_loop(t);
}

/* The first connection: three stanzas out, the server acknowledges one, two in, then it dies. */
static const struct step first_script[] = {
    AUTH_STEPS,
    BIND_STEP,
    { "<enable xmlns='urn:xmpp:sm:3' resume='true'/>",
      "<enabled xmlns='urn:xmpp:sm:3' id='sm-1' resume='true' location='127.0.0.1:1'/>" MSG(1)
          MSG(2) },
    { "<body>m3</body>", "<a xmlns='urn:xmpp:sm:3' h='1'/>" },
    { "<a xmlns='urn:xmpp:sm:3' h='2'/>", SRV_CLOSE },
    { NULL, NULL },
};

static const struct step resumed_script[] = {
    AUTH_STEPS,
    /* h: the two inbound stanzas handled; the server had m2, so only m3 comes again */
    { "<resume xmlns='urn:xmpp:sm:3' previd='sm-1' h='2'/>",
      "<resumed xmlns='urn:xmpp:sm:3' h='2' previd='sm-1'/>" },
    { "<body>m3</body>", MSG(3) "<r xmlns='urn:xmpp:sm:3'/>" },
    { "<a xmlns='urn:xmpp:sm:3' h='3'/>", "<a xmlns='urn:xmpp:sm:3' h='3'/>" },
    { NULL, NULL },
};

static const struct step failed_script[] = {
    AUTH_STEPS,
    { "<resume xmlns='urn:xmpp:sm:3' previd='sm-1' h='2'/>",
      "<failed xmlns='urn:xmpp:sm:3' h='2'><item-not-found "
      "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>" },
    BIND_STEP,
    { "<enable xmlns='urn:xmpp:sm:3' resume='true'/>",
      "<enabled xmlns='urn:xmpp:sm:3' id='sm-2' resume='true'/>" },
    { NULL, NULL },
};

/* Plays first_script and returns the state the lost stream leaves. */
static struct xmpp_sm *lose_first_stream(struct tick *t)
{
    srv_start(first_script);
    struct client c = { 0 };
    struct xmpp_stream *s = open_stream(t, &c, NULL);
    run_until(&c.stanzas, 2, 3000);
    assert_int_equal(send_message(s, "m1"), 0);
    assert_int_equal(send_message(s, "m2"), 0);
    assert_int_equal(send_message(s, "m3"), 0);
    run_until(&c.closed, 1, 3000);
    assert_int_equal(c.close_status, -ECONNRESET);
    struct xmpp_sm *sm = xmpp_stream_sm_take(s);
    xmpp_stream_free(s);
    assert_non_null(sm);
    assert_true(xmpp_sm_resumable(sm));
    assert_int_equal(sm->h_in, 2);
    assert_int_equal(sm->acked, 1);
    assert_int_equal(xmpp_sm_unacked(sm), 2);
    return sm;
}

static void sm_resume_resends_only_what_the_server_missed(void **state)
{
    (void)state;
    uv_loop_init(&loop);
    struct tick *t = tick_new(&loop, 50);
    struct xmpp_sm *sm = lose_first_stream(t);
    server_restart(resumed_script);
    struct client c = { 0 };
    struct xmpp_stream *s = open_stream(t, &c, sm);
    assert_true(xmpp_stream_resumed(s));
    assert_true(xmpp_stream_sm_enabled(s));
    assert_string_equal(xmpp_stream_jid(s), "alice@localhost/res");
    assert_null(xmpp_stream_resume_leftover(s));
    run_script();
    run_until(&c.stanzas, 1, 3000);
    assert_non_null(strstr(c.last, "in3"));
    /* no new resource, no second copy of m2 */
    assert_null(strstr(buf_cstr(&srv.seen), "<bind"));
    assert_null(strstr(buf_cstr(&srv.seen), "m2"));
    run_until_acked(s, 3);
    assert_int_equal(s->sm->acked, 3);
    assert_int_equal(s->sm->n, 0);
    assert_int_equal(s->sm->h_in, 3);
    xmpp_stream_free(s);
    finish_loop(t);
}

struct names {
    char list[128];
};

static void collect(const char *name, const char *xml, size_t len, void *data)
{
    struct names *n = data;
    (void)len;
    size_t used = strlen(n->list);
    snprintf(n->list + used, sizeof(n->list) - used, "%s:%s ", name,
             strstr(xml, "m3")   ? "m3"
             : strstr(xml, "m2") ? "m2"
                                 : "?");
}

static void sm_failed_resume_binds_afresh_and_hands_back_the_unacked(void **state)
{
    (void)state;
    uv_loop_init(&loop);
    struct tick *t = tick_new(&loop, 50);
    struct xmpp_sm *sm = lose_first_stream(t);
    server_restart(failed_script);
    struct client c = { 0 };
    struct xmpp_stream *s = open_stream(t, &c, sm);
    assert_false(xmpp_stream_resumed(s));
    assert_true(xmpp_stream_sm_enabled(s));
    assert_string_equal(xmpp_stream_jid(s), "alice@localhost/res");
    /* <failed h='2'/> acknowledged m2: only m3 is left for the caller */
    struct xmpp_sm *left = xmpp_stream_resume_leftover(s);
    assert_non_null(left);
    assert_false(xmpp_sm_resumable(left));
    assert_int_equal(xmpp_sm_unacked(left), 1);
    struct names n = { "" };
    xmpp_sm_foreach(left, collect, &n);
    assert_string_equal(n.list, "message:m3 ");
    /* the caller sends it again on the new stream: counted there from zero */
    const char *m3 = left->head->xml;
    assert_int_equal(xmpp_stream_send_xml(s, m3, left->head->len), 0);
    assert_int_equal(s->sm->h_out, 1);
    assert_int_equal(s->sm->h_in, 0);
    xmpp_sm_free(left);
    assert_null(xmpp_stream_resume_leftover(s));
    xmpp_stream_free(s);
    finish_loop(t);
}

static const struct step refused_script[] = {
    AUTH_STEPS,
    { "<resume xmlns='urn:xmpp:sm:3' previd='sm-1' h='2'/>", SRV_CLOSE },
    { NULL, NULL },
};

static void sm_state_comes_back_when_the_resuming_stream_fails(void **state)
{
    (void)state;
    uv_loop_init(&loop);
    struct tick *t = tick_new(&loop, 50);
    struct xmpp_sm *sm = lose_first_stream(t);
    server_restart(refused_script);
    struct xmpp_stream_opts o = opts_for(t, XMPP_TLS_OFF, NULL);
    o.resume = sm;
    o.sm = false;
    struct client c = { 0 };
    struct xmpp_stream *s = NULL;
    assert_int_equal(xmpp_stream_open(&loop, &o, &cbs, &c, &s), -EINVAL); /* resume needs sm */
    o.sm = true;
    assert_int_equal(xmpp_stream_open(&loop, &o, &cbs, &c, &s), 0);
    run_until(&c.ready, 1, 3000);
    assert_int_equal(c.status, -ECONNRESET);
    /* the connection died during <resume/>: the state is intact for the next attempt */
    struct xmpp_sm *back = xmpp_stream_sm_take(s);
    assert_ptr_equal(back, sm);
    assert_true(xmpp_sm_resumable(back));
    assert_int_equal(xmpp_sm_unacked(back), 2);
    xmpp_stream_free(s);
    xmpp_sm_free(back);
    finish_loop(t);
}

/* Runs the loop until the stream's parser hibernates (or not, after ms). */
static bool run_until_asleep(const struct xmpp_stream *s, uint64_t ms)
{
    uint64_t end = uv_now(&loop) + ms;
    while (!xmpp__parser_hibernating(s->parser) && uv_now(&loop) < end)
        uv_run(&loop, UV_RUN_ONCE);
    return xmpp__parser_hibernating(s->parser);
}

static void sm_idle_stream_hibernates_its_parser(void **state)
{
    (void)state;
    uv_loop_init(&loop);
    struct tick *t = tick_new(&loop, 50);
    srv_start(bound_script);
    struct client c = { 0 };
    struct xmpp_stream *s = open_stream(t, &c, NULL);
    run_script();
    assert_true(xmpp_stream_sm_enabled(s));
    /* a read on a ready stream leaves the parser asleep; the next one wakes it */
    int before = c.stanzas;
    srv_send(MSG(1));
    run_until(&c.stanzas, before + 1, 3000);
    assert_int_equal(c.stanzas, before + 1);
    assert_non_null(strstr(c.last, "<body>in1</body>"));
    assert_true(xmpp__parser_hibernating(s->parser));
    srv_send(MSG(2));
    run_until(&c.stanzas, before + 2, 3000);
    assert_int_equal(c.stanzas, before + 2);
    assert_non_null(strstr(c.last, "<body>in2</body>"));
    assert_true(xmpp__parser_hibernating(s->parser));
    /* a stream that woke its parser too often this second keeps it... */
    s->nap_window_ms = uv_now(&loop);
    s->naps = XMPP__PARSER_NAPS_PER_S;
    srv_send(MSG(3));
    run_until(&c.stanzas, before + 3, 3000);
    assert_int_equal(c.stanzas, before + 3);
    assert_false(xmpp__parser_hibernating(s->parser));
    assert_false(run_until_asleep(s, 300));
    /* ...until it has been quiet for a while (on the tick) */
    s->last_rx_ms = uv_now(&loop) - XMPP__PARSER_NAP_MS;
    assert_true(run_until_asleep(s, 1000));
    assert_int_equal(s->sm->h_in, 3);
    /* the server's close arriving into a sleeping parser is still understood */
    srv_send("</stream:stream>");
    run_until(&c.closed, 1, 3000);
    assert_int_equal(c.closed, 1);
    assert_int_equal(c.close_status, -ECONNRESET);
    assert_string_equal(c.reason, "stream closed by server");
    xmpp_stream_free(s);
    finish_loop(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sm_counts_inbound_and_drops_acknowledged_stanzas),
        cmocka_unit_test(sm_queue_is_bounded),
        cmocka_unit_test(sm_resume_resends_only_what_the_server_missed),
        cmocka_unit_test(sm_failed_resume_binds_afresh_and_hands_back_the_unacked),
        cmocka_unit_test(sm_state_comes_back_when_the_resuming_stream_fails),
        cmocka_unit_test(sm_idle_stream_hibernates_its_parser),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    xmpp_stream_global_cleanup();
    return rc;
}
