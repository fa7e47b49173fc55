/* xmpp_fake_server.h: a scripted XMPP server on a loopback socket for the stream tests, plus
 * the client callbacks that count what the stream reports. Each step waits for a substring of
 * what the client sent, then sends a fixed reply or one that srv.reply computes from the bytes
 * it consumed (for SCRAM and FAST, whose messages depend on nonces or secrets). Included by one
 * test file at a time, after <cmocka.h>; everything here is static. */
#ifndef SPARKGATE_TESTS_XMPP_FAKE_SERVER_H
#define SPARKGATE_TESTS_XMPP_FAKE_SERVER_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <uv.h>

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
    const char *send; /* then the server sends this (NULL: what srv.reply computes, if set;
                         SRV_CLOSE: the server closes the connection, as a crash would) */
};

#define SRV_CLOSE "\x01close"

/* Computes the reply of step `pos` from the bytes consumed up to and including its `wait`;
 * returns a mem_alloc'd string or NULL (send nothing). */
typedef char *srv_reply_fn(size_t pos, const char *got);

struct server {
    uv_tcp_t listener;
    uv_tcp_t conn;
    bool accepted;
    bool no_read;
    struct buf in;
    struct buf seen; /* everything the scripted client sent, kept for assertions */
    const struct step *script;
    srv_reply_fn *reply;
    size_t pos;
    uv_tcp_t *extra[8];
    size_t n_extra;
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
        char *got = NULL;
        if (st->wait != NULL) {
            const char *hit = strstr(buf_cstr(&srv.in), st->wait);
            if (hit == NULL)
                return;
            size_t n = (size_t)(hit - srv.in.ptr) + strlen(st->wait);
            got = mem_strndup(srv.in.ptr, n);
            buf_consume(&srv.in, n);
        }
        if (st->send != NULL && strcmp(st->send, SRV_CLOSE) == 0) {
            if (!uv_is_closing((uv_handle_t *)&srv.conn))
                uv_close((uv_handle_t *)&srv.conn, NULL);
        } else if (st->send != NULL) {
            srv_send(st->send);
        } else if (srv.reply != NULL) {
            char *r = srv.reply(srv.pos, got ? got : "");
            if (r != NULL)
                srv_send(r);
            mem_free(r);
        }
        mem_free(got);
        srv.pos++;
    }
}

static void srv_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    (void)s;
    if (n > 0) {
        buf_append(&srv.in, b->base, (size_t)n);
        buf_append(&srv.seen, b->base, (size_t)n);
        srv_advance();
    }
    mem_free(b->base);
}

static void free_handle(uv_handle_t *h)
{
    mem_free(h);
}

static void srv_accept(uv_stream_t *l, int status)
{
    assert_int_equal(status, 0);
    if (srv.accepted) { /* one client follows the script; any further one is held silently */
        uv_tcp_t *extra = mem_alloc(sizeof(*extra));
        uv_tcp_init(&loop, extra);
        uv_accept(l, (uv_stream_t *)extra);
        if (srv.n_extra < sizeof(srv.extra) / sizeof(srv.extra[0]))
            srv.extra[srv.n_extra++] = extra;
        else
            uv_close((uv_handle_t *)extra, free_handle);
        return;
    }
    uv_tcp_init(&loop, &srv.conn);
    assert_int_equal(uv_accept(l, (uv_stream_t *)&srv.conn), 0);
    srv.accepted = true;
    if (!srv.no_read)
        uv_read_start((uv_stream_t *)&srv.conn, on_alloc, srv_read);
    srv_advance();
}

/* Listens on port (0: any free one) and plays script to the first client. */
static void srv_start_on(const struct step *script, uint16_t port)
{
    memset(&srv, 0, sizeof(srv));
    buf_init(&srv.in, 1 << 24);
    buf_init(&srv.seen, 1 << 24);
    srv.script = script;
    uv_tcp_init(&loop, &srv.listener);
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", port, &a);
    assert_int_equal(uv_tcp_bind(&srv.listener, (struct sockaddr *)&a, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&srv.listener, 4, srv_accept), 0);
    struct sockaddr_in got;
    int len = sizeof(got);
    uv_tcp_getsockname(&srv.listener, (struct sockaddr *)&got, &len);
    srv.port = ntohs(got.sin_port);
}

static void srv_start(const struct step *script)
{
    srv_start_on(script, 0);
}

static void srv_stop(void)
{
    if (srv.accepted && !uv_is_closing((uv_handle_t *)&srv.conn))
        uv_close((uv_handle_t *)&srv.conn, NULL);
    uv_close((uv_handle_t *)&srv.listener, NULL);
    buf_cleanup(&srv.in);
    buf_cleanup(&srv.seen);
    for (size_t i = 0; i < srv.n_extra; i++)
        uv_close((uv_handle_t *)srv.extra[i], free_handle);
    srv.n_extra = 0;
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

#endif
