/* test_xmpp_stream.c: the client stream against a scripted server on a loopback socket (no
 * Prosody needed): PLAIN login, bind, XEP-0198 ack answers, stream errors, the TLS policy,
 * deadlines on the shared tick and the write bound. Each test closes every handle and checks
 * uv_loop_close() == 0. */
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
#include "xmpp_fake_server.h"

static const struct step login_script[] = {
    { "<stream:stream", HDR PLAIN_ONLY },
    /* base64("\0alice\0secret") */
    { "mechanism='PLAIN'>AGFsaWNlAHNlY3JldA==</auth>",
      "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>" },
    { "<stream:stream", HDR "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>"
                            "<sm xmlns='urn:xmpp:sm:3'/></stream:features>" },
    { "<resource>res</resource></bind></iq>",
      "<iq type='result' id='sg-bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
      "<jid>alice@localhost/res</jid></bind></iq>" },
    { "<enable xmlns='urn:xmpp:sm:3' resume='true'/>", "<enabled xmlns='urn:xmpp:sm:3'/>" },
    { "<presence/>", "<message from='bob@localhost/x'><body>hi</body></message>"
                     "<r xmlns='urn:xmpp:sm:3'/>" },
    { "<a xmlns='urn:xmpp:sm:3' h='1'/>",
      "<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>" },
    { NULL, NULL },
};

static void stream_logs_in_binds_and_answers_acks(void **state)
{
    (void)state;
    uv_loop_init(&loop);
    struct tick *t = tick_new(&loop, 50);
    srv_start(login_script);
    struct xmpp_stream_opts o = opts_for(t, XMPP_TLS_OFF, NULL);
    struct client c = { 0 };
    struct xmpp_stream *s = NULL;
    assert_int_equal(xmpp_stream_open(&loop, &o, &cbs, &c, &s), 0);
    assert_int_equal(c.ready, 0);
    struct xmpp_stanza *p = xmpp_stanza_new("presence", NULL);
    assert_int_equal(xmpp_stream_send(s, p), -ENOTCONN);
    run_until(&c.ready, 1, 3000);
    assert_int_equal(c.status, 0);
    assert_string_equal(xmpp_stream_jid(s), "alice@localhost/res");
    assert_string_equal(xmpp_stream_mechanism(s), "PLAIN");
    assert_true(xmpp_stream_sm_enabled(s));
    assert_int_equal(xmpp_stream_send(s, p), 0);
    xmpp_stanza_unref(p);
    run_until(&c.closed, 1, 3000);
    assert_int_equal(c.stanzas, 1);
    assert_non_null(strstr(c.last, "<body>hi</body>"));
    assert_int_equal(c.close_status, -EPROTO);
    assert_string_equal(c.reason, "conflict");
    xmpp_stream_free(s);
    finish_loop(t);
}

static const struct step wrong_pw_script[] = {
    { "<stream:stream", HDR PLAIN_ONLY },
    { "</auth>", "<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><not-authorized/></failure>" },
    { NULL, NULL },
};

static const struct step no_tls_script[] = {
    { "<stream:stream", HDR PLAIN_ONLY },
    { NULL, NULL },
};

static const struct step silent_script[] = { { NULL, NULL } };

struct policy_case {
    const struct step *script;
    enum xmpp_tls_mode mode;
    int want;
};

static void stream_reports_failures_through_on_ready(void **state)
{
    (void)state;
    char err[128];
    struct xmpp_tls *tls = xmpp_tls_new(NULL, false, err, sizeof(err));
    assert_non_null(tls);
    const struct policy_case cases[] = {
        { wrong_pw_script, XMPP_TLS_OFF, -EACCES },
        /* STARTTLS not offered: required fails; optional continues but refuses PLAIN */
        { no_tls_script, XMPP_TLS_REQUIRED, -EPROTO },
        { no_tls_script, XMPP_TLS_STARTTLS, -EPROTO },
        { silent_script, XMPP_TLS_OFF, -ETIMEDOUT },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uv_loop_init(&loop);
        struct tick *t = tick_new(&loop, 50);
        srv_start(cases[i].script);
        struct xmpp_stream_opts o = opts_for(t, cases[i].mode, tls);
        o.connect_timeout_ms = 300;
        struct client c = { 0 };
        struct xmpp_stream *s = NULL;
        assert_int_equal(xmpp_stream_open(&loop, &o, &cbs, &c, &s), 0);
        run_until(&c.ready, 1, 3000);
        if (c.ready != 1 || c.status != cases[i].want)
            fail_msg("row %zu: ready=%d status=%d want %d", i, c.ready, c.status, cases[i].want);
        run_until(&c.closed, 1, 100);
        assert_int_equal(c.closed, 0);
        xmpp_stream_free(s);
        finish_loop(t);
    }
    xmpp_tls_free(tls);
}

static void stream_open_rejects_bad_options(void **state)
{
    (void)state;
    uv_loop_init(&loop);
    struct tick *t = tick_new(&loop, 50);
    srv_start(silent_script);
    struct client c = { 0 };
    struct xmpp_stream *s = NULL;
    struct xmpp_stream_opts o = opts_for(t, XMPP_TLS_REQUIRED, NULL); /* no tls_ctx */
    assert_int_equal(xmpp_stream_open(&loop, &o, &cbs, &c, &s), -EINVAL);
    o = opts_for(t, XMPP_TLS_OFF, NULL);
    o.username = "a@b";
    assert_int_equal(xmpp_stream_open(&loop, &o, &cbs, &c, &s), -EINVAL);
    o = opts_for(t, XMPP_TLS_OFF, NULL);
    o.domain = "user@localhost";
    assert_int_equal(xmpp_stream_open(&loop, &o, &cbs, &c, &s), -EINVAL);
    o = opts_for(NULL, XMPP_TLS_OFF, NULL);
    assert_int_equal(xmpp_stream_open(&loop, &o, &cbs, &c, &s), -EINVAL);
    assert_null(s);
    enum xmpp_tls_mode m;
    assert_int_equal(xmpp_tls_mode_parse("starttls", &m), 0);
    assert_int_equal(m, XMPP_TLS_STARTTLS);
    assert_int_equal(xmpp_tls_mode_parse("bogus", &m), -EINVAL);
    finish_loop(t);
}

static const struct step ready_script[] = {
    { "<stream:stream", HDR PLAIN_ONLY },
    { "</auth>", "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>" },
    { "<stream:stream",
      HDR "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>" },
    { "</iq>", "<iq type='result' id='sg-bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
               "<jid>alice@localhost/res</jid></bind></iq>" },
    { NULL, NULL },
};

static void stream_bounds_unsent_output(void **state)
{
    (void)state;
    uv_loop_init(&loop);
    struct tick *t = tick_new(&loop, 50);
    srv_start(ready_script);
    struct xmpp_stream_opts o = opts_for(t, XMPP_TLS_OFF, NULL);
    struct client c = { 0 };
    struct xmpp_stream *s = NULL;
    assert_int_equal(xmpp_stream_open(&loop, &o, &cbs, &c, &s), 0);
    run_until(&c.ready, 1, 3000);
    assert_int_equal(c.status, 0);
    assert_false(xmpp_stream_sm_enabled(s));
    uv_read_stop((uv_stream_t *)&srv.conn); /* the server stops reading */
    size_t chunk = 1 << 20;
    char *big = mem_alloc(chunk);
    memset(big, ' ', chunk);
    int rc = 0;
    for (int i = 0; i < 64 && rc == 0; i++)
        rc = xmpp_stream_send_raw(s, big, chunk);
    assert_int_equal(rc, -ENOBUFS);
    assert_true(xmpp_stream_pending_bytes(s) <= (size_t)4 << 20);
    assert_true(xmpp_stream_pending_bytes(s) > (size_t)3 << 20);
    mem_free(big);
    /* polite close: no answer from the server, so on_closed(0) after the wait */
    xmpp_stream_close(s);
    xmpp_stream_close(s);
    assert_int_equal(xmpp_stream_send_raw(s, " ", 1), -ENOTCONN);
    run_until(&c.closed, 1, 5000);
    assert_int_equal(c.closed, 1);
    assert_int_equal(c.close_status, 0);
    xmpp_stream_free(s);
    finish_loop(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(stream_logs_in_binds_and_answers_acks),
        cmocka_unit_test(stream_reports_failures_through_on_ready),
        cmocka_unit_test(stream_open_rejects_bad_options),
        cmocka_unit_test(stream_bounds_unsent_output),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    xmpp_stream_global_cleanup();
    return rc;
}
