/* test_http_server.c: the real server on 127.0.0.1:0 inside a libuv loop, driven by a blocking
 * TCP client on a second thread. The client records failures (cmocka asserts only run on the
 * main thread); the loop thread counts callbacks; at the end the server is freed and the loop
 * must close cleanly (uv_loop_close == 0). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>

#include <uv.h>

#include "core/log.h"
#include "http/http.h"

static uv_loop_t loop;
static struct http_server *srv;
static int port;
static atomic_int n_aborts, n_stream_closed, n_done, n_deferred;
static atomic_int step; /* client -> loop requests */
static char failure[512];
static uv_async_t wake;
static uv_timer_t defer_timer, stream_timer;
static struct http_req *deferred_req;
static struct http_stream *live_stream;
static struct http_stream *stream_to_close;

/* ---- loop side ---------------------------------------------------------------------------- */

static void h_json(struct http_req *req, void *data)
{
    (void)data;
    http_reply_json(req, 200, json_pack("{s:b}", "ok", 1));
}

static void h_echo(struct http_req *req, void *data)
{
    (void)data;
    size_t len;
    const char *b = http_req_body(req, &len);
    http_reply(req, 200, "text/plain", b, len);
}

static void h_param(struct http_req *req, void *data)
{
    (void)data;
    char out[256];
    const char *q = http_req_query(req, "q");
    snprintf(out, sizeof(out), "%s|%s|%s", http_req_param(req, "id"), q ? q : "(null)",
             http_req_header(req, "X-Custom") ? http_req_header(req, "X-Custom") : "(null)");
    http_reply(req, 200, "text/plain", out, strlen(out));
}

static void defer_fire(uv_timer_t *t)
{
    (void)t;
    atomic_fetch_add(&n_deferred, 1);
    http_reply_json(deferred_req, 202, json_pack("{s:s}", "later", "yes"));
    deferred_req = NULL;
}

static void h_deferred(struct http_req *req, void *data)
{
    (void)data;
    deferred_req = req;
    uv_timer_start(&defer_timer, defer_fire, 50, 0);
}

static void on_abort(struct http_req *req, void *data)
{
    (void)req;
    (void)data;
    atomic_fetch_add(&n_aborts, 1);
}

static void h_hang(struct http_req *req, void *data)
{
    (void)data;
    http_req_on_abort(req, on_abort, NULL);
}

static void stream_closed(struct http_stream *st, void *data)
{
    (void)data;
    if (st == live_stream)
        live_stream = NULL;
    if (st == stream_to_close)
        stream_to_close = NULL;
    atomic_fetch_add(&n_stream_closed, 1);
}

static void stream_fire(uv_timer_t *t)
{
    (void)t;
    if (live_stream)
        http_stream_write(live_stream, "data: hi\n\n", 10);
}

static void h_stream(struct http_req *req, void *data)
{
    (void)data;
    http_req_add_header(req, "X-Accel-Buffering", "no");
    live_stream =
        http_req_stream(req, 200, "text/event-stream; charset=utf-8", 64, stream_closed, NULL);
    /* bound: 64 fits, 65 does not */
    char big[65];
    memset(big, 'x', sizeof(big));
    assert_int_equal(http_stream_write(live_stream, big, 65), -ENOBUFS);
    assert_int_equal(http_stream_queued(live_stream), 0);
    uv_timer_start(&stream_timer, stream_fire, 30, 0);
}

static void h_stream_end(struct http_req *req, void *data)
{
    (void)data;
    stream_to_close = http_req_stream(req, 200, "text/event-stream", 1024, stream_closed, NULL);
    http_stream_write(stream_to_close, "event: a\n\n", 10);
    http_stream_close(stream_to_close);
    assert_int_equal(http_stream_write(stream_to_close, "x", 1), -EPIPE);
}

static void on_drained(struct http_stream *st, void *data)
{
    (void)data;
    assert_int_equal(http_stream_queued(st), 0);
    http_stream_write(st, "drained\n\n", 9);
    http_stream_close(st);
}

/* A writer that paces itself: the drain callback fires once the queue is at the low mark. */
static void h_stream_drain(struct http_req *req, void *data)
{
    (void)data;
    struct http_stream *st =
        http_req_stream(req, 200, "text/event-stream", 4096, stream_closed, NULL);
    char fill[3000];
    memset(fill, 'A', sizeof(fill));
    assert_int_equal(http_stream_write(st, fill, sizeof(fill)), 0);
    assert_int_equal(http_stream_write(st, fill, 1097), -ENOBUFS); /* 4096 + 1 */
    assert_int_equal(http_stream_write(st, fill, 1096), 0);        /* 4096: at the bound */
    http_stream_on_drain(st, 0, on_drained, NULL);
}

/* A stream given up on: queued bytes freed at once, the connection reset, close cb later. */
static void h_stream_abort(struct http_req *req, void *data)
{
    (void)data;
    struct http_stream *st =
        http_req_stream(req, 200, "text/event-stream", 4096, stream_closed, NULL);
    http_stream_write(st, "event: a\n\n", 10);
    http_stream_abort(st);
    assert_int_equal(http_stream_queued(st), 0);
    assert_int_equal(http_stream_write(st, "x", 1), -EPIPE);
    http_stream_abort(st); /* idempotent */
    http_stream_close(st);
}

static void server_done(void *data)
{
    (void)data;
    atomic_fetch_add(&n_done, 1);
    uv_close((uv_handle_t *)&wake, NULL);
    uv_close((uv_handle_t *)&defer_timer, NULL);
    uv_close((uv_handle_t *)&stream_timer, NULL);
}

static void on_wake(uv_async_t *a)
{
    (void)a;
    if (atomic_load(&step) == 1)
        http_server_free(srv, server_done, NULL);
}

/* ---- client side ------------------------------------------------------------------------- */

#define CHECK(c)                                                             \
    do {                                                                     \
        if (!(c) && !failure[0])                                             \
            snprintf(failure, sizeof(failure), "line %d: %s", __LINE__, #c); \
    } while (0)

static int conn(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = { .tv_sec = 5 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void send_str(int fd, const char *s)
{
    size_t len = strlen(s), off = 0;
    while (off < len) {
        ssize_t n = send(fd, s + off, len - off, MSG_NOSIGNAL);
        if (n <= 0)
            return;
        off += (size_t)n;
    }
}

static bool reading_head; /* the response to a HEAD has no body */

struct resp {
    int status;
    char head[4096];
    char body[8192];
    size_t body_len;
};

/* Reads until `until` appears in what was read after the headers (or the headers end when
 * until is NULL and there is a Content-Length). */
static int read_resp(int fd, struct resp *r)
{
    char buf[16384];
    size_t len = 0;
    memset(r, 0, sizeof(*r));
    char *eoh = NULL;
    while (!eoh) {
        ssize_t n = recv(fd, buf + len, sizeof(buf) - 1 - len, 0);
        if (n <= 0)
            return -1;
        len += (size_t)n;
        buf[len] = '\0';
        eoh = strstr(buf, "\r\n\r\n");
    }
    size_t hl = (size_t)(eoh - buf) + 4;
    memcpy(r->head, buf, hl < sizeof(r->head) ? hl : sizeof(r->head) - 1);
    sscanf(buf, "HTTP/1.1 %d", &r->status);
    const char *cl = strcasestr(r->head, "content-length:");
    size_t want = cl ? (size_t)strtoul(cl + 15, NULL, 10) : 0;
    bool body_allowed = r->status != 204 && r->status != 304 && !reading_head;
    while (body_allowed && cl && len - hl < want) {
        ssize_t n = recv(fd, buf + len, sizeof(buf) - 1 - len, 0);
        if (n <= 0)
            return -1;
        len += (size_t)n;
    }
    r->body_len = len - hl;
    memcpy(r->body, buf + hl, r->body_len);
    r->body[r->body_len] = '\0';
    return 0;
}

/* Reads more bytes into r->body until `until` appears. */
static int read_until(int fd, struct resp *r, const char *until)
{
    while (!strstr(r->body, until)) {
        ssize_t n = recv(fd, r->body + r->body_len, sizeof(r->body) - 1 - r->body_len, 0);
        if (n <= 0)
            return -1;
        r->body_len += (size_t)n;
        r->body[r->body_len] = '\0';
    }
    return 0;
}

static int request(const char *raw, struct resp *r)
{
    int fd = conn();
    if (fd < 0)
        return -1;
    send_str(fd, raw);
    int rc = read_resp(fd, r);
    close(fd);
    return rc;
}

static void wait_for(atomic_int *v, int want)
{
    for (int i = 0; i < 500 && atomic_load(v) < want; i++)
        usleep(10000);
}

static bool has(const struct resp *r, const char *s)
{
    return strcasestr(r->head, s) != NULL;
}

static void *client(void *arg)
{
    (void)arg;
    struct resp r;

    CHECK(request("GET /json HTTP/1.1\r\nHost: x\r\n\r\n", &r) == 0);
    CHECK(r.status == 200);
    CHECK(!strcmp(r.body, "{\"ok\":true}"));
    CHECK(has(&r, "content-type: application/json"));
    CHECK(has(&r, "cache-control: no-store"));
    CHECK(!has(&r, "access-control-allow-origin"));

    CHECK(request("GET /nope?token=secret HTTP/1.1\r\nHost: x\r\n\r\n", &r) == 0);
    CHECK(r.status == 404);
    CHECK(strstr(r.body, "\"resource\":\"/nope\"") && strstr(r.body, "NotFoundException"));

    CHECK(request("DELETE /json HTTP/1.1\r\nHost: x\r\n\r\n", &r) == 0);
    CHECK(r.status == 405);
    CHECK(has(&r, "allow: GET, HEAD, OPTIONS"));

    CHECK(request("GET /item/a%40b?q=x+y%26z HTTP/1.1\r\nHost: x\r\nX-Custom: v1\r\n\r\n", &r) ==
          0);
    CHECK(r.status == 200);
    CHECK(!strcmp(r.body, "a@b|x y&z|v1"));

    char big[512];
    /* body at the bound (100) is accepted, bound + 1 is 413 */
    snprintf(big, sizeof(big),
             "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n%0100d", 7);
    CHECK(request(big, &r) == 0);
    CHECK(r.status == 200 && r.body_len == 100);
    snprintf(big, sizeof(big),
             "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 101\r\n\r\n%0101d", 7);
    CHECK(request(big, &r) == 0);
    CHECK(r.status == 413);
    CHECK(strstr(r.body, "PayloadTooLargeException") != NULL);

    CHECK(request("GET /deferred HTTP/1.1\r\nHost: x\r\n\r\n", &r) == 0);
    CHECK(r.status == 202 && atomic_load(&n_deferred) == 1);

    /* abort: the client leaves before the reply */
    int fd = conn();
    send_str(fd, "GET /hang HTTP/1.1\r\nHost: x\r\n\r\n");
    usleep(50000);
    close(fd);
    wait_for(&n_aborts, 1);
    CHECK(atomic_load(&n_aborts) == 1);

    /* stream: headers, then a chunk written later; client leaves -> close cb */
    fd = conn();
    send_str(fd, "GET /stream HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n");
    CHECK(read_resp(fd, &r) == 0);
    CHECK(r.status == 200);
    CHECK(has(&r, "transfer-encoding: chunked"));
    CHECK(has(&r, "content-type: text/event-stream; charset=utf-8"));
    CHECK(has(&r, "x-accel-buffering: no"));
    CHECK(read_until(fd, &r, "data: hi\n\n\r\n") == 0);
    CHECK(strstr(r.body, "a\r\ndata: hi\n\n\r\n") != NULL);
    close(fd);
    wait_for(&n_stream_closed, 1);
    CHECK(atomic_load(&n_stream_closed) == 1);

    /* a stream ended by the server: terminator, close cb, and keep-alive goes on */
    fd = conn();
    send_str(fd, "GET /stream-end HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(read_resp(fd, &r) == 0);
    CHECK(read_until(fd, &r, "0\r\n\r\n") == 0);
    CHECK(strstr(r.body, "a\r\nevent: a\n\n\r\n0\r\n\r\n") != NULL);
    wait_for(&n_stream_closed, 2);
    CHECK(atomic_load(&n_stream_closed) == 2);
    send_str(fd, "GET /json HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(read_resp(fd, &r) == 0);
    CHECK(r.status == 200);
    close(fd);

    /* a paced writer: the drain callback adds the last event and ends the stream */
    fd = conn();
    send_str(fd, "GET /stream-drain HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(read_resp(fd, &r) == 0 && r.status == 200);
    CHECK(read_until(fd, &r, "0\r\n\r\n") == 0);
    CHECK(strstr(r.body, "drained\n\n\r\n0\r\n\r\n") != NULL);
    CHECK(r.body_len > 4096);
    close(fd);
    wait_for(&n_stream_closed, 3);
    CHECK(atomic_load(&n_stream_closed) == 3);

    /* an aborted stream: the connection ends without the terminator */
    fd = conn();
    send_str(fd, "GET /stream-abort HTTP/1.1\r\nHost: x\r\n\r\n");
    {
        char buf[4096];
        size_t got = 0;
        ssize_t n;
        while ((n = recv(fd, buf + got, sizeof(buf) - 1 - got, 0)) > 0)
            got += (size_t)n;
        buf[got] = '\0';
        CHECK(n == 0 || errno == ECONNRESET);
        CHECK(strstr(buf, "0\r\n\r\n") == NULL && strstr(buf, "event: a") == NULL);
    }
    close(fd);
    wait_for(&n_stream_closed, 4);
    CHECK(atomic_load(&n_stream_closed) == 4);

    /* CORS */
    CHECK(request("OPTIONS /json HTTP/1.1\r\nHost: x\r\nOrigin: https://good.example\r\n"
                  "Access-Control-Request-Method: PUT\r\n"
                  "Access-Control-Request-Headers: authorization, content-type\r\n\r\n",
                  &r) == 0);
    CHECK(r.status == 204);
    CHECK(has(&r, "access-control-allow-origin: https://good.example"));
    CHECK(has(&r, "access-control-allow-credentials: true"));
    CHECK(has(&r, "access-control-allow-methods: PUT"));
    CHECK(has(&r, "access-control-allow-headers: authorization, content-type"));
    CHECK(has(&r, "access-control-max-age: 600"));
    CHECK(has(&r, "access-control-allow-private-network: true"));
    CHECK(request("OPTIONS /json HTTP/1.1\r\nHost: x\r\nOrigin: https://evil.example\r\n"
                  "Access-Control-Request-Method: PUT\r\n\r\n",
                  &r) == 0);
    CHECK(r.status == 403);
    CHECK(!has(&r, "access-control-allow-origin"));
    CHECK(request("OPTIONS /json HTTP/1.1\r\nHost: x\r\n\r\n", &r) == 0);
    CHECK(r.status == 204 && has(&r, "allow: GET, HEAD, OPTIONS"));
    CHECK(request("GET /json HTTP/1.1\r\nHost: x\r\nOrigin: https://good.example\r\n\r\n", &r) ==
          0);
    CHECK(r.status == 200 && has(&r, "access-control-allow-origin: https://good.example"));
    CHECK(has(&r, "vary: Origin") && has(&r, "access-control-expose-headers: Retry-After"));
    CHECK(request("GET /json HTTP/1.1\r\nHost: x\r\nOrigin: https://evil.example\r\n\r\n", &r) ==
          0);
    CHECK(r.status == 200 && !has(&r, "access-control-allow-origin"));

    /* keep-alive: two requests on one connection */
    fd = conn();
    send_str(fd, "GET /json HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(read_resp(fd, &r) == 0 && r.status == 200);
    send_str(fd, "GET /deferred HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(read_resp(fd, &r) == 0 && r.status == 202);
    close(fd);

    /* HEAD on a GET route: headers only */
    fd = conn();
    send_str(fd, "HEAD /json HTTP/1.1\r\nHost: x\r\n\r\n");
    reading_head = true;
    CHECK(read_resp(fd, &r) == 0 && r.status == 200 && r.body_len == 0);
    reading_head = false;
    CHECK(has(&r, "content-length: 11"));
    close(fd);

    /* static files */
    CHECK(request("GET /sparkweb/hello.txt HTTP/1.1\r\nHost: x\r\n\r\n", &r) == 0);
    CHECK(r.status == 200 && !strcmp(r.body, "hello\n"));
    CHECK(has(&r, "content-type: text/plain") && has(&r, "cache-control: no-cache"));
    CHECK(request("GET /sparkweb/ HTTP/1.1\r\nHost: x\r\n\r\n", &r) == 0);
    CHECK(r.status == 200 && strstr(r.body, "<p>index</p>"));
    CHECK(request("GET /sub HTTP/1.1\r\nHost: x\r\n\r\n", &r) == 0);
    CHECK(r.status == 404);

    /* left open at shutdown: a pending request and a stream */
    int fd1 = conn(), fd2 = conn();
    send_str(fd1, "GET /hang HTTP/1.1\r\nHost: x\r\n\r\n");
    send_str(fd2, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(read_resp(fd2, &r) == 0 && r.status == 200);
    atomic_store(&step, 1);
    uv_async_send(&wake);
    wait_for(&n_done, 1);
    CHECK(atomic_load(&n_aborts) == 2);
    CHECK(atomic_load(&n_stream_closed) == 5);
    close(fd1);
    close(fd2);
    return NULL;
}

static char web_root[256];

static void make_web_root(void)
{
    snprintf(web_root, sizeof(web_root), "/tmp/sg_http_test_%d", (int)getpid());
    char p[512];
    snprintf(p, sizeof(p), "%s/sub", web_root);
    mkdir(web_root, 0700);
    mkdir(p, 0700);
    snprintf(p, sizeof(p), "%s/hello.txt", web_root);
    FILE *f = fopen(p, "w");
    fputs("hello\n", f);
    fclose(f);
    snprintf(p, sizeof(p), "%s/index.html", web_root);
    f = fopen(p, "w");
    fputs("<p>index</p>\n", f);
    fclose(f);
}

static void remove_web_root(void)
{
    char p[512];
    snprintf(p, sizeof(p), "%s/hello.txt", web_root);
    unlink(p);
    snprintf(p, sizeof(p), "%s/index.html", web_root);
    unlink(p);
    snprintf(p, sizeof(p), "%s/sub", web_root);
    rmdir(p);
    rmdir(web_root);
}

static void server_end_to_end(void **state)
{
    (void)state;
    if (getenv("SG_TEST_DEBUG"))
        log_set_level(LOG_LEVEL_DEBUG);
    make_web_root();
    assert_int_equal(uv_loop_init(&loop), 0);
    uv_async_init(&loop, &wake, on_wake);
    uv_timer_init(&loop, &defer_timer);
    uv_timer_init(&loop, &stream_timer);
    char err[256] = "";
    struct http_server_opts o = {
        .loop = &loop,
        .listen = "127.0.0.1:0",
        .max_body = 100,
        .cors_origins = "https://good.example, https://other.example",
        .web_root = web_root,
    };
    srv = http_server_new(&o, err, sizeof(err));
    if (!srv)
        fail_msg("http_server_new: %s", err);
    port = http_server_port(srv);
    assert_true(port > 0);
    assert_int_equal(http_route(srv, HTTP_GET, "/json", h_json, NULL), 0);
    assert_int_equal(http_route(srv, HTTP_GET, "/json", h_json, NULL), -EEXIST);
    assert_int_equal(http_route(srv, HTTP_POST, "/echo", h_echo, NULL), 0);
    assert_int_equal(http_route(srv, HTTP_GET, "/item/{id}", h_param, NULL), 0);
    assert_int_equal(http_route(srv, HTTP_GET, "/deferred", h_deferred, NULL), 0);
    assert_int_equal(http_route(srv, HTTP_GET, "/hang", h_hang, NULL), 0);
    assert_int_equal(http_route(srv, HTTP_GET, "/stream", h_stream, NULL), 0);
    assert_int_equal(http_route(srv, HTTP_GET, "/stream-end", h_stream_end, NULL), 0);
    assert_int_equal(http_route(srv, HTTP_GET, "/stream-drain", h_stream_drain, NULL), 0);
    assert_int_equal(http_route(srv, HTTP_GET, "/stream-abort", h_stream_abort, NULL), 0);

    pthread_t th;
    pthread_create(&th, NULL, client, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    pthread_join(th, NULL);
    assert_int_equal(uv_loop_close(&loop), 0);
    remove_web_root();
    if (failure[0])
        fail_msg("%s", failure);
    assert_int_equal(atomic_load(&n_done), 1);
}

static void server_rejects_bad_listen_and_port_in_use(void **state)
{
    (void)state;
    uv_loop_t l;
    assert_int_equal(uv_loop_init(&l), 0);
    char err[256];
    struct http_server_opts o = { .loop = &l, .listen = "nohost", .max_body = 10 };
    assert_null(http_server_new(&o, err, sizeof(err)));
    o.listen = "example.org:80";
    assert_null(http_server_new(&o, err, sizeof(err)));
    o.listen = "[::1]:0";
    struct http_server *s = http_server_new(&o, err, sizeof(err));
    if (!s)
        fail_msg("[::1]:0 failed: %s", err);
    char addr[64];
    snprintf(addr, sizeof(addr), "[::1]:%d", http_server_port(s));
    o.listen = addr;
    assert_null(http_server_new(&o, err, sizeof(err)));
    http_server_free(s, NULL, NULL);
    uv_run(&l, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&l), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(server_end_to_end),
        cmocka_unit_test(server_rejects_bad_listen_and_port_in_use),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
