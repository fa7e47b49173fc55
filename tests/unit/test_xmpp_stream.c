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

#define HDR                                                      \
    "<?xml version='1.0'?><stream:stream xmlns='jabber:client' " \
    "xmlns:stream='http://etherx.jabber.org/streams' id='s1' from='localhost' version='1.0'>"
#define PLAIN_ONLY                                                           \
    "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>" \
    "<mechanism>PLAIN</mechanism></mechanisms></stream:features>"

struct step {
    const char *wait; /* substring the client must have sent (NULL: none) */
    const char *send; /* then the server sends this (NULL: nothing) */
};

struct server {
    uv_tcp_t listener;
    uv_tcp_t conn;
    bool accepted;
    bool no_read;
    struct buf in;
    const struct step *script;
    size_t pos;
    uint16_t port;
};

struct client {
    int ready, status, stanzas, closed, close_status;
    char reason[64];
    char last[256];
};

static uv_loop_t loop;
static struct server srv;

static void on_alloc(uv_handle_t *h, size_t n, uv_buf_t *b)
{
    (void)h;
    b->base = mem_alloc(n);
    b->len = n;
}

static void on_written(uv_write_t *w, int status)
{
    (void)status;
    mem_free(w->data);
    mem_free(w);
}

static void srv_send(const char *s)
{
    uv_write_t *w = mem_alloc(sizeof(*w));
    w->data = mem_strdup(s);
    uv_buf_t b = uv_buf_init(w->data, (unsigned)strlen(s));
    uv_write(w, (uv_stream_t *)&srv.conn, &b, 1, on_written);
}

static void srv_advance(void)
{
    while (srv.script[srv.pos].wait != NULL || srv.script[srv.pos].send != NULL) {
        const struct step *st = &srv.script[srv.pos];
        if (st->wait != NULL) {
            const char *hit = strstr(buf_cstr(&srv.in), st->wait);
            if (hit == NULL)
                return;
            buf_consume(&srv.in, (size_t)(hit - srv.in.ptr) + strlen(st->wait));
        }
        if (st->send != NULL)
            srv_send(st->send);
        srv.pos++;
    }
}

static void srv_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    (void)s;
    if (n > 0) {
        buf_append(&srv.in, b->base, (size_t)n);
        srv_advance();
    }
    mem_free(b->base);
}

static void srv_accept(uv_stream_t *l, int status)
{
    assert_int_equal(status, 0);
    uv_tcp_init(&loop, &srv.conn);
    assert_int_equal(uv_accept(l, (uv_stream_t *)&srv.conn), 0);
    srv.accepted = true;
    if (!srv.no_read)
        uv_read_start((uv_stream_t *)&srv.conn, on_alloc, srv_read);
    srv_advance();
}

static void srv_start(const struct step *script)
{
    memset(&srv, 0, sizeof(srv));
    buf_init(&srv.in, 1 << 24);
    srv.script = script;
    uv_tcp_init(&loop, &srv.listener);
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", 0, &a);
    assert_int_equal(uv_tcp_bind(&srv.listener, (struct sockaddr *)&a, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&srv.listener, 4, srv_accept), 0);
    struct sockaddr_in got;
    int len = sizeof(got);
    uv_tcp_getsockname(&srv.listener, (struct sockaddr *)&got, &len);
    srv.port = ntohs(got.sin_port);
}

static void srv_stop(void)
{
    if (srv.accepted && !uv_is_closing((uv_handle_t *)&srv.conn))
        uv_close((uv_handle_t *)&srv.conn, NULL);
    uv_close((uv_handle_t *)&srv.listener, NULL);
    buf_cleanup(&srv.in);
}

static void c_ready(struct xmpp_stream *s, int status, void *data)
{
    (void)s;
    struct client *c = data;
    c->ready++;
    c->status = status;
}

static void c_stanza(struct xmpp_stream *s, struct xmpp_stanza *st, void *data)
{
    (void)s;
    struct client *c = data;
    c->stanzas++;
    char *x = xmpp_stanza_to_string(st);
    snprintf(c->last, sizeof(c->last), "%s", x);
    mem_free(x);
}

static void c_closed(struct xmpp_stream *s, int status, const char *reason, void *data)
{
    (void)s;
    struct client *c = data;
    c->closed++;
    c->close_status = status;
    snprintf(c->reason, sizeof(c->reason), "%s", reason ? reason : "");
}

static const struct xmpp_stream_cbs cbs = { c_ready, c_stanza, c_closed };

static void run_until(const int *v, int want, uint64_t ms)
{
    uint64_t end = uv_now(&loop) + ms;
    while (*v < want && uv_now(&loop) < end)
        uv_run(&loop, UV_RUN_ONCE);
}

static struct xmpp_stream_opts opts_for(struct tick *t, enum xmpp_tls_mode m, struct xmpp_tls *ctx)
{
    struct xmpp_stream_opts o = {
        .host = "127.0.0.1",
        .port = srv.port,
        .domain = "localhost",
        .username = "alice",
        .password = "secret",
        .resource = "res",
        .tls = m,
        .tls_ctx = ctx,
        .tick = t,
        .connect_timeout_ms = 2000,
        .max_stanza = 4096,
        .sm = true,
    };
    return o;
}

static void finish_loop(struct tick *t)
{
    srv_stop();
    tick_free(t);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

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
    { "<enable xmlns='urn:xmpp:sm:3'/>", "<enabled xmlns='urn:xmpp:sm:3'/>" },
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
