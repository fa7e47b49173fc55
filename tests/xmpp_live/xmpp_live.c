/* xmpp_live.c: checks the xmpp stream against a real Prosody (not part of ctest).
 *
 *   tests/xmpp_live/prosody.sh /tmp/sgx 25222 &        # users alice, bob / "secret"
 *   build/xmpp_live 127.0.0.1 25222 /tmp/sgx/localhost.crt [n_concurrent]
 *
 * Scenarios: SCRAM-SHA-1 login without TLS, wrong password, STARTTLS trusted via ca_file,
 * STARTTLS with an untrusted certificate, bind + XEP-0198, a message from a second stream,
 * auth_only, a silent server (timeout), a refused port, an oversized inbound stanza, freeing
 * from inside callbacks and while connecting, polite close, and N concurrent logins. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <uv.h>

#include "core/log.h"
#include "core/mem.h"
#include "core/tick.h"
#include "xmpp/stanza.h"
#include "xmpp/stream.h"

static uv_loop_t *loop;
static struct tick *tick;
static struct xmpp_tls *tls_trusted, *tls_untrusted;
static const char *host;
static uint16_t port;
static int failures;

#define CHECK(cond, ...)                                         \
    do {                                                         \
        if (!(cond)) {                                           \
            failures++;                                          \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
            fprintf(stderr, __VA_ARGS__);                        \
            fputc('\n', stderr);                                 \
        }                                                        \
    } while (0)

struct probe {
    struct xmpp_stream *s;
    int ready;  /* on_ready count */
    int status; /* last on_ready status */
    int closed; /* on_closed count */
    int close_status;
    char reason[64];
    int stanzas;
    char body[256];
    bool free_in_ready;
    bool free_in_stanza;
};

static void p_ready(struct xmpp_stream *s, int status, void *data)
{
    struct probe *p = data;
    p->ready++;
    p->status = status;
    if (p->free_in_ready) {
        xmpp_stream_free(s);
        p->s = NULL;
    }
}

static void p_stanza(struct xmpp_stream *s, struct xmpp_stanza *st, void *data)
{
    struct probe *p = data;
    p->stanzas++;
    char *b = xmpp_stanza_child_text(st, "body", NULL);
    if (b != NULL) {
        snprintf(p->body, sizeof(p->body), "%s", b);
        mem_free(b);
    }
    if (p->free_in_stanza) {
        xmpp_stream_free(s);
        p->s = NULL;
    }
}

static void p_closed(struct xmpp_stream *s, int status, const char *reason, void *data)
{
    (void)s;
    struct probe *p = data;
    p->closed++;
    p->close_status = status;
    snprintf(p->reason, sizeof(p->reason), "%s", reason ? reason : "");
}

static const struct xmpp_stream_cbs cbs = { p_ready, p_stanza, p_closed };

static struct xmpp_stream_opts base_opts(const char *user, const char *pass, enum xmpp_tls_mode m,
                                         struct xmpp_tls *ctx)
{
    struct xmpp_stream_opts o = {
        .host = host,
        .port = port,
        .domain = "localhost",
        .username = user,
        .password = pass,
        .resource = NULL,
        .tls = m,
        .tls_ctx = ctx,
        .tick = tick,
        .connect_timeout_ms = 10000,
        .max_stanza = 65536,
        .sm = true,
    };
    return o;
}

static void open_probe(struct probe *p, const struct xmpp_stream_opts *o)
{
    memset(p, 0, sizeof(*p));
    int rc = xmpp_stream_open(loop, o, &cbs, p, &p->s);
    CHECK(rc == 0, "open rc=%d", rc);
}

static void run_until(const int *counter, int want, uint64_t timeout_ms)
{
    uint64_t end = uv_now(loop) + timeout_ms;
    while (*counter < want && uv_now(loop) < end)
        uv_run(loop, UV_RUN_ONCE);
}

static void release(struct probe *p)
{
    xmpp_stream_free(p->s);
    p->s = NULL;
}

static void test_plain_scram(void)
{
    struct xmpp_stream_opts o = base_opts("alice", "secret", XMPP_TLS_OFF, NULL);
    o.resource = "plain";
    struct probe p;
    open_probe(&p, &o);
    CHECK(p.ready == 0, "on_ready inside open");
    run_until(&p.ready, 1, 10000);
    CHECK(p.ready == 1 && p.status == 0, "plain login: ready=%d status=%d", p.ready, p.status);
    const char *mech = xmpp_stream_mechanism(p.s);
    CHECK(mech && strcmp(mech, "SCRAM-SHA-1") == 0, "mechanism %s", mech ? mech : "-");
    const char *jid = xmpp_stream_jid(p.s);
    CHECK(jid && strcmp(jid, "alice@localhost/plain") == 0, "jid %s", jid ? jid : "-");
    CHECK(xmpp_stream_sm_enabled(p.s), "sm not enabled");
    xmpp_stream_close(p.s);
    run_until(&p.closed, 1, 5000);
    CHECK(p.closed == 1 && p.close_status == 0, "close: closed=%d status=%d", p.closed,
          p.close_status);
    release(&p);
    printf("ok plain SCRAM-SHA-1 login, bind, sm, polite close\n");
}

static void test_wrong_password(void)
{
    struct xmpp_stream_opts o = base_opts("alice", "wrong", XMPP_TLS_OFF, NULL);
    struct probe p;
    open_probe(&p, &o);
    run_until(&p.ready, 1, 10000);
    CHECK(p.ready == 1 && p.status == -EACCES, "wrong password: status=%d", p.status);
    release(&p);
    printf("ok wrong password -> -EACCES\n");
}

static void test_starttls(void)
{
    struct xmpp_stream_opts o = base_opts("bob", "secret", XMPP_TLS_REQUIRED, tls_trusted);
    struct probe p;
    open_probe(&p, &o);
    run_until(&p.ready, 1, 10000);
    CHECK(p.ready == 1 && p.status == 0, "starttls: status=%d", p.status);
    release(&p);
    printf("ok STARTTLS with ca_file\n");

    o.tls_ctx = tls_untrusted;
    open_probe(&p, &o);
    run_until(&p.ready, 1, 10000);
    CHECK(p.ready == 1 && p.status == -EPROTO, "untrusted: status=%d", p.status);
    release(&p);
    printf("ok STARTTLS untrusted certificate -> -EPROTO\n");
}

static void test_message(void)
{
    struct xmpp_stream_opts oa = base_opts("alice", "secret", XMPP_TLS_REQUIRED, tls_trusted);
    struct xmpp_stream_opts ob = base_opts("bob", "secret", XMPP_TLS_REQUIRED, tls_trusted);
    struct probe a, b;
    open_probe(&a, &oa);
    open_probe(&b, &ob);
    run_until(&a.ready, 1, 10000);
    run_until(&b.ready, 1, 10000);
    CHECK(a.status == 0 && b.status == 0, "message: a=%d b=%d", a.status, b.status);
    struct xmpp_stanza *pres = xmpp_stanza_new("presence", NULL);
    CHECK(xmpp_stream_send(a.s, pres) == 0, "send presence");
    xmpp_stanza_unref(pres);
    /* wait for alice's own presence to come back: then the server knows she is available */
    run_until(&a.stanzas, 1, 5000);
    int before = a.stanzas;
    const char *text = "h\xc3\xa9llo <&> \"quoted\" \xf0\x9f\x98\x80";
    struct xmpp_stanza *m = xmpp_stanza_new("message", NULL);
    xmpp_stanza_set_attr(m, "to", "alice@localhost");
    xmpp_stanza_set_attr(m, "type", "chat");
    xmpp_stanza_add_text_child(m, "body", NULL, text);
    CHECK(xmpp_stream_send(b.s, m) == 0, "send message");
    xmpp_stanza_unref(m);
    run_until(&a.stanzas, before + 1, 5000);
    CHECK(strcmp(a.body, text) == 0, "received body '%s'", a.body);
    printf("ok message from a second stream received (%d stanzas)\n", a.stanzas);

    release(&a);

    /* an inbound stanza above carol's max_stanza closes her stream with policy-violation
     * (carol, so the server's re-delivery of the unacked stanza bothers nobody else) */
    struct xmpp_stream_opts oc = base_opts("carol", "secret", XMPP_TLS_REQUIRED, tls_trusted);
    oc.max_stanza = 4096;
    open_probe(&a, &oc);
    run_until(&a.ready, 1, 10000);
    char big[6000];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    m = xmpp_stanza_new("message", NULL);
    xmpp_stanza_set_attr(m, "to", xmpp_stream_jid(a.s));
    xmpp_stanza_add_text_child(m, "body", NULL, big);
    CHECK(xmpp_stream_send(b.s, m) == 0, "send big message");
    xmpp_stanza_unref(m);
    run_until(&a.closed, 1, 5000);
    CHECK(a.closed == 1 && a.close_status == -EPROTO && strcmp(a.reason, "policy-violation") == 0,
          "oversize: closed=%d status=%d reason=%s", a.closed, a.close_status, a.reason);
    CHECK(xmpp_stream_send_raw(a.s, "<presence/>", 11) == -ENOTCONN, "send after close");
    printf("ok oversized inbound stanza -> on_closed(-EPROTO, policy-violation)\n");
    release(&a);

    /* free from inside on_stanza */
    struct probe c;
    open_probe(&c, &oc);
    c.free_in_stanza = true;
    run_until(&c.ready, 1, 10000);
    pres = xmpp_stanza_new("presence", NULL);
    xmpp_stream_send(c.s, pres);
    xmpp_stanza_unref(pres);
    run_until(&c.stanzas, 1, 5000);
    CHECK(c.stanzas == 1 && c.s == NULL && c.closed == 0, "free in on_stanza");
    release(&b);
    printf("ok free inside on_stanza\n");
}

static void test_auth_only_and_free_paths(void)
{
    struct xmpp_stream_opts o = base_opts("alice", "secret", XMPP_TLS_OFF, NULL);
    o.auth_only = true;
    struct probe p;
    open_probe(&p, &o);
    run_until(&p.ready, 1, 10000);
    CHECK(p.status == 0 && xmpp_stream_jid(p.s) == NULL, "auth_only status=%d", p.status);
    run_until(&p.closed, 1, 500);
    CHECK(p.closed == 0, "auth_only fired on_closed");
    release(&p);
    printf("ok auth_only\n");

    o.auth_only = false;
    open_probe(&p, &o);
    p.free_in_ready = true;
    run_until(&p.ready, 1, 10000);
    CHECK(p.ready == 1 && p.s == NULL, "free in on_ready");
    /* freed while resolving / connecting: no callback at all */
    for (int i = 0; i < 3; i++) {
        open_probe(&p, &o);
        for (int k = 0; k < i; k++)
            uv_run(loop, UV_RUN_NOWAIT);
        release(&p);
    }
    run_until(&p.ready, 1, 300);
    CHECK(p.ready == 0, "callback after free");
    /* close before ready: on_ready(-ECANCELED) later, not inside the call */
    open_probe(&p, &o);
    xmpp_stream_close(p.s);
    CHECK(p.ready == 0, "on_ready inside close");
    run_until(&p.ready, 1, 2000);
    CHECK(p.ready == 1 && p.status == -ECANCELED, "close before ready: %d", p.status);
    release(&p);
    printf("ok free inside on_ready, free while connecting, close before ready\n");
}

static void on_silent_conn(uv_stream_t *server, int status)
{
    if (status < 0)
        return;
    uv_tcp_t *c = mem_alloc(sizeof(*c));
    uv_tcp_init(loop, c);
    if (uv_accept(server, (uv_stream_t *)c) != 0)
        uv_close((uv_handle_t *)c, (uv_close_cb)mem_free);
    server->data = c;
}

static void test_timeout_and_refused(void)
{
    uv_tcp_t srv;
    uv_tcp_init(loop, &srv);
    srv.data = NULL;
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", 0, &a);
    uv_tcp_bind(&srv, (struct sockaddr *)&a, 0);
    uv_listen((uv_stream_t *)&srv, 8, on_silent_conn);
    struct sockaddr_in bound;
    int len = sizeof(bound);
    uv_tcp_getsockname(&srv, (struct sockaddr *)&bound, &len);

    struct xmpp_stream_opts o = base_opts("alice", "secret", XMPP_TLS_OFF, NULL);
    o.host = "127.0.0.1";
    o.port = ntohs(bound.sin_port);
    o.connect_timeout_ms = 600;
    struct probe p;
    uint64_t t0 = uv_now(loop);
    open_probe(&p, &o);
    run_until(&p.ready, 1, 3000);
    CHECK(p.status == -ETIMEDOUT, "silent server: %d", p.status);
    printf("ok silent server -> -ETIMEDOUT after %llu ms\n",
           (unsigned long long)(uv_now(loop) - t0));
    release(&p);
    if (srv.data)
        uv_close((uv_handle_t *)srv.data, (uv_close_cb)mem_free);
    uv_close((uv_handle_t *)&srv, NULL);

    o.port = 1; /* nothing listens there */
    open_probe(&p, &o);
    run_until(&p.ready, 1, 3000);
    CHECK(p.status == UV_ECONNREFUSED, "refused: %d", p.status);
    release(&p);
    o.host = "no-such-host.invalid";
    open_probe(&p, &o);
    run_until(&p.ready, 1, 5000);
    CHECK(p.status == UV_EAI_NONAME || p.status == UV_EAI_AGAIN, "dns: %s", uv_err_name(p.status));
    release(&p);
    printf("ok refused -> ECONNREFUSED, unknown host -> %s\n", uv_err_name(p.status));
}

static long max_rss_kb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

static void test_concurrent(int n, enum xmpp_tls_mode mode)
{
    struct probe *ps = mem_calloc((size_t)n, sizeof(*ps));
    long rss0 = max_rss_kb();
    uint64_t t0 = uv_now(loop);
    uv_update_time(loop);
    t0 = uv_now(loop);
    char res[32];
    int ready = 0, ok = 0;
    for (int i = 0; i < n; i++) {
        struct xmpp_stream_opts o = base_opts(i % 2 ? "bob" : "alice", "secret", mode,
                                              mode == XMPP_TLS_OFF ? NULL : tls_trusted);
        snprintf(res, sizeof(res), "c%d", i);
        o.resource = res;
        o.connect_timeout_ms = 60000;
        open_probe(&ps[i], &o);
    }
    uint64_t end = uv_now(loop) + 90000;
    while (ready < n && uv_now(loop) < end) {
        uv_run(loop, UV_RUN_ONCE);
        ready = ok = 0;
        for (int i = 0; i < n; i++) {
            ready += ps[i].ready;
            ok += ps[i].ready && ps[i].status == 0;
        }
    }
    uint64_t ms = uv_now(loop) - t0;
    long rss1 = max_rss_kb();
    CHECK(ok == n, "concurrent: %d of %d ready", ok, n);
    printf("ok %d concurrent logins (%s): %d ok in %llu ms; max RSS %ld -> %ld KiB (~%ld KiB "
           "per stream)\n",
           n, mode == XMPP_TLS_OFF ? "plain" : "STARTTLS", ok, (unsigned long long)ms, rss0, rss1,
           (rss1 - rss0) / n);
    for (int i = 0; i < n; i++)
        xmpp_stream_close(ps[i].s);
    int closed = 0;
    end = uv_now(loop) + 10000;
    while (closed < ok && uv_now(loop) < end) {
        uv_run(loop, UV_RUN_ONCE);
        closed = 0;
        for (int i = 0; i < n; i++)
            closed += ps[i].closed && ps[i].close_status == 0;
    }
    CHECK(closed == ok, "closed %d of %d", closed, ok);
    for (int i = 0; i < n; i++)
        release(&ps[i]);
    mem_free(ps);
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: %s HOST PORT CA_FILE [N]\n", argv[0]);
        return 2;
    }
    host = argv[1];
    port = (uint16_t)strtol(argv[2], NULL, 10);
    int n = argc > 4 ? (int)strtol(argv[4], NULL, 10) : 200;
    enum log_level lvl;
    if (getenv("SG_LOG") && log_level_parse(getenv("SG_LOG"), &lvl) == 0)
        log_set_level(lvl);
    loop = uv_default_loop();
    tick = tick_new(loop, 250);
    char err[256];
    tls_trusted = xmpp_tls_new(argv[3], true, err, sizeof(err));
    tls_untrusted = xmpp_tls_new(NULL, true, err, sizeof(err));
    if (!tls_trusted || !tls_untrusted) {
        fprintf(stderr, "tls: %s\n", err);
        return 1;
    }
    const char *only = getenv("SG_ONLY");
    if (only && strcmp(only, "message") == 0) {
        test_message();
        goto out;
    }
    test_plain_scram();
    test_wrong_password();
    test_starttls();
    test_message();
    test_auth_only_and_free_paths();
    test_timeout_and_refused();
    test_concurrent(n, XMPP_TLS_OFF);
    test_concurrent(n, XMPP_TLS_REQUIRED);

out:
    tick_free(tick);
    xmpp_tls_free(tls_trusted);
    xmpp_tls_free(tls_untrusted);
    uv_run(loop, UV_RUN_DEFAULT);
    int lc = uv_loop_close(loop);
    CHECK(lc == 0, "uv_loop_close: %s", uv_err_name(lc));
    xmpp_stream_global_cleanup();
    printf("%s (%d failures)\n", failures ? "FAILED" : "PASSED", failures);
    return failures ? 1 : 0;
}
