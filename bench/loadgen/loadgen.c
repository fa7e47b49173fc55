/* loadgen.c: Sparkgate's benchmark load generator. One libuv loop simulates thousands of
 * browsers and XMPP clients:
 *   - gateway users: HTTP/1.1 password login (POST /sparkweb/api/rest/login/{user}), one or
 *     more SSE readers each (GET /sparkweb/sse?token=), REST senders over a pool of keep-alive
 *     connections (POST /sparkweb/api/rest/chat/message/{to});
 *   - direct XMPP c2s clients (plain TCP, SASL PLAIN, bind, presence);
 *   - BOSH clients (XEP-0124/0206) and WebSocket clients (RFC 6455 + RFC 7395) against any
 *     connection manager given by host:port/path (Prosody's mod_bosh / mod_websocket today; a
 *     Sparkgate connection manager can be pointed at later with the same options).
 * Every message body is "bench:<seq>:<send time ns>:<receiver index>", so the receiver computes
 * the latency against the same monotonic clock.
 *
 * It is driven by bench/run.mjs through stdin (one command per line) and answers one JSON line
 * per command on stdout:
 *   login FIRST COUNT CONC        log users u<FIRST>.. in (password pw-u<i>), one SSE stream each
 *   streams USER N                N more SSE streams for gateway user USER (fan-out)
 *   c2s|bosh|ws FIRST COUNT CONC  open direct / BOSH / WebSocket XMPP clients for u<FIRST>..
 *   send MODE RATE COUNT [WINDOW [TO]]  MODE rest|c2s|bosh|ws; RATE msg/s open loop, 0 =
 *                                 closed loop with WINDOW messages in flight; TO fixes the
 *                                 receiver (index in the group), else sender i -> i+1
 *   close MODE                    close every client of a group (rest closes SSE streams too)
 *   quit
 * Options: --gw HOST:PORT --xmpp HOST:PORT --bosh HOST:PORT/PATH --ws HOST:PORT/PATH
 *          --domain D --src N (spread client sockets over 127.0.0.1..127.0.0.N). */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <uv.h>

#define READ_BUF (256 * 1024)

static uv_loop_t *loop;
static char gw_host[64] = "127.0.0.1", xmpp_host[64] = "127.0.0.1", bosh_host[64] = "127.0.0.1",
            ws_host[64] = "127.0.0.1";
static int gw_port, xmpp_port, bosh_port, ws_port;
static char bosh_path[128] = "/http-bind", ws_path[128] = "/xmpp-websocket";
static char domain[128] = "localhost";
static int nsrc = 1;
static unsigned src_next;

static uint64_t now_ns(void)
{
    return uv_hrtime();
}

static void out(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n);
    if (!p)
        abort();
    return p;
}

/* ---- growable byte buffer ---------------------------------------------------------------- */
typedef struct {
    char *p;
    size_t len, cap;
} dbuf;

static void db_add(dbuf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t c = b->cap ? b->cap : 256;
        while (c < b->len + n + 1)
            c *= 2;
        b->p = realloc(b->p, c);
        if (!b->p)
            abort();
        b->cap = c;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

static void db_eat(dbuf *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
        /* idle connections keep no buffer */
        if (b->cap > 4096) {
            free(b->p);
            b->p = NULL;
            b->cap = 0;
        } else if (b->p)
            b->p[0] = 0;
        return;
    }
    memmove(b->p, b->p + n, b->len - n);
    b->len -= n;
    b->p[b->len] = 0;
}

static void db_free(dbuf *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

static const char *db_find(dbuf *b, const char *needle)
{
    if (!b->len)
        return NULL;
    return memmem(b->p, b->len, needle, strlen(needle));
}

/* ---- latency statistics ------------------------------------------------------------------- */
typedef struct {
    double *v;
    size_t n, cap;
} lat_t;

static lat_t lat;
static uint64_t recv_count, recv_dups, send_errors, sent_count, first_send_ns, last_recv_ns;

static void lat_add(double ms)
{
    if (lat.n == lat.cap) {
        lat.cap = lat.cap ? lat.cap * 2 : 65536;
        lat.v = realloc(lat.v, lat.cap * sizeof(double));
        if (!lat.v)
            abort();
    }
    lat.v[lat.n++] = ms;
}

static int dcmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(double p)
{
    if (!lat.n)
        return NAN;
    size_t i = (size_t)(p * (double)lat.n);
    if (i >= lat.n)
        i = lat.n - 1;
    return lat.v[i];
}

static void on_message_received(void);

/* Parses "bench:<seq>:<ns>:<to>" at s (NUL-terminated buffer); records when to == me (or me <
 * 0). Returns the number of bytes parsed, 0 if incomplete. */
static size_t bench_parse(const char *s, const char *end, long me)
{
    const char *p = s + 6;
    unsigned long long v[3];
    for (int i = 0; i < 3; i++) {
        if (p >= end || !isdigit((unsigned char)*p))
            return 0;
        v[i] = 0;
        while (p < end && isdigit((unsigned char)*p))
            v[i] = v[i] * 10 + (unsigned)(*p++ - '0');
        if (p >= end)
            return 0;
        if (i < 2 && *p++ != ':')
            return (size_t)(p - s);
    }
    if (me < 0 || (long)v[2] == me) {
        uint64_t t = now_ns();
        lat_add((double)(t - v[1]) / 1e6);
        recv_count++;
        last_recv_ns = t;
        on_message_received();
    }
    return (size_t)(p - s);
}

/* ---- connections ---------------------------------------------------------------------------- */
typedef struct conn conn_t;

struct conn {
    uv_tcp_t tcp;
    int open, closing;
    dbuf in;
    void *owner;
    int slot;                          /* which connection of the owner */
    void (*on_connect)(conn_t *, int); /* status 0 = ok */
    void (*on_data)(conn_t *);
    void (*on_close)(conn_t *);
};

static char rbuf[READ_BUF];

static void alloc_cb(uv_handle_t *h, size_t sz, uv_buf_t *b)
{
    (void)h;
    (void)sz;
    b->base = rbuf;
    b->len = sizeof rbuf;
}

static void closed_cb(uv_handle_t *h)
{
    conn_t *c = h->data;
    db_free(&c->in);
    if (c->on_close)
        c->on_close(c);
    free(c);
}

static void conn_close(conn_t *c)
{
    if (c->closing)
        return;
    c->closing = 1;
    c->open = 0;
    uv_close((uv_handle_t *)&c->tcp, closed_cb);
}

static void read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    conn_t *c = s->data;
    if (n < 0) {
        conn_close(c);
        return;
    }
    if (n == 0)
        return;
    db_add(&c->in, b->base, (size_t)n);
    c->on_data(c);
}

static void connect_cb(uv_connect_t *req, int status)
{
    conn_t *c = req->data;
    free(req);
    if (c->closing)
        return;
    if (status == 0) {
        c->open = 1;
        uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb);
    }
    c->on_connect(c, status);
    if (status != 0)
        conn_close(c);
}

static conn_t *conn_new(const char *host, int port, void *owner, int slot,
                        void (*on_connect)(conn_t *, int), void (*on_data)(conn_t *),
                        void (*on_close)(conn_t *))
{
    conn_t *c = calloc(1, sizeof *c);
    if (!c)
        abort();
    c->owner = owner;
    c->slot = slot;
    c->on_connect = on_connect;
    c->on_data = on_data;
    c->on_close = on_close;
    uv_tcp_init(loop, &c->tcp);
    c->tcp.data = c;
    uv_tcp_nodelay(&c->tcp, 1);
    if (nsrc > 1) {
        struct sockaddr_in src;
        char ip[32];
        snprintf(ip, sizeof ip, "127.0.0.%u", 1 + (src_next++ % (unsigned)nsrc));
        uv_ip4_addr(ip, 0, &src);
        uv_tcp_bind(&c->tcp, (struct sockaddr *)&src, 0);
    }
    struct sockaddr_in dst;
    uv_ip4_addr(host, port, &dst);
    uv_connect_t *req = xmalloc(sizeof *req);
    req->data = c;
    int rc = uv_tcp_connect(req, &c->tcp, (struct sockaddr *)&dst, connect_cb);
    if (rc) {
        free(req);
        /* report asynchronously-ish: call now, then close */
        on_connect(c, rc);
        conn_close(c);
    }
    return c;
}

typedef struct {
    uv_write_t w;
    uv_buf_t b;
} wreq_t;

static void write_cb(uv_write_t *w, int status)
{
    (void)status;
    free(w);
}

static void conn_write(conn_t *c, const char *data, size_t n)
{
    if (!c->open)
        return;
    wreq_t *r = xmalloc(sizeof *r + n);
    memcpy((char *)(r + 1), data, n);
    r->b = uv_buf_init((char *)(r + 1), (unsigned)n);
    if (uv_write(&r->w, (uv_stream_t *)&c->tcp, &r->b, 1, write_cb)) {
        free(r);
        conn_close(c);
    }
}

static void conn_printf(conn_t *c, const char *fmt, ...)
{
    char tmp[8192];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0 && (size_t)n < sizeof tmp)
        conn_write(c, tmp, (size_t)n);
}

/* ---- HTTP/1.1 response parser (content-length or chunked; streaming or whole) ---------- */
typedef struct {
    int state; /* 0 head, 1 body (length), 2 chunk size, 3 chunk data, 4 final CRLF */
    int status, chunked, streaming;
    long clen, crem;
    dbuf body;
} hresp_t;

/* Runs the parser over c->in. on_body gets decoded body bytes when streaming; on_done the
 * whole body otherwise (and at the end of a streaming response). Returns -1 on a protocol
 * error. */
static int http_parse(conn_t *c, hresp_t *h, void (*on_body)(conn_t *, const char *, size_t),
                      void (*on_done)(conn_t *, hresp_t *))
{
    for (;;) {
        if (c->closing)
            return 0;
        if (h->state == 0) {
            const char *e = db_find(&c->in, "\r\n\r\n");
            if (!e)
                return 0;
            size_t hl = (size_t)(e - c->in.p) + 4;
            if (hl < 12 || strncmp(c->in.p, "HTTP/1.", 7))
                return -1;
            h->status = atoi(c->in.p + 9);
            h->chunked = 0;
            h->clen = -1;
            const char *p = c->in.p;
            while ((p = memchr(p, '\n', (size_t)(e - p))) && p < e) {
                p++;
                if (!strncasecmp(p, "content-length:", 15))
                    h->clen = atol(p + 15);
                else if (!strncasecmp(p, "transfer-encoding:", 18) &&
                         memmem(p, (size_t)(e - p) < 64 ? (size_t)(e - p) : 64, "chunked", 7))
                    h->chunked = 1;
            }
            db_eat(&c->in, hl);
            if (h->status == 101) { /* upgraded: the caller takes over */
                h->state = 0;
                on_done(c, h);
                return 0;
            }
            h->state = h->chunked ? 2 : 1;
            if (!h->chunked && h->clen < 0)
                h->clen = 0;
            h->crem = h->clen;
            continue;
        }
        if (h->state == 1) {
            size_t n = c->in.len < (size_t)h->crem ? c->in.len : (size_t)h->crem;
            if (n) {
                if (h->streaming)
                    on_body(c, c->in.p, n);
                else
                    db_add(&h->body, c->in.p, n);
                db_eat(&c->in, n);
                h->crem -= (long)n;
            }
            if (h->crem > 0)
                return 0;
            h->state = 0;
            on_done(c, h);
            if (h->body.p)
                db_eat(&h->body, h->body.len);
            continue;
        }
        if (h->state == 2) {
            const char *e = db_find(&c->in, "\r\n");
            if (!e)
                return 0;
            h->crem = strtol(c->in.p, NULL, 16);
            db_eat(&c->in, (size_t)(e - c->in.p) + 2);
            h->state = h->crem ? 3 : 4;
            continue;
        }
        if (h->state == 3) {
            size_t n = c->in.len < (size_t)h->crem ? c->in.len : (size_t)h->crem;
            if (n) {
                if (h->streaming)
                    on_body(c, c->in.p, n);
                else
                    db_add(&h->body, c->in.p, n);
                db_eat(&c->in, n);
                h->crem -= (long)n;
            }
            if (h->crem > 0)
                return 0;
            if (c->in.len < 2)
                return 0;
            db_eat(&c->in, 2);
            h->state = 2;
            continue;
        }
        if (h->state == 4) {
            if (c->in.len < 2)
                return 0;
            db_eat(&c->in, 2);
            h->state = 0;
            on_done(c, h);
            if (h->body.p)
                db_eat(&h->body, h->body.len);
            continue;
        }
    }
}

/* ---- gateway users: login, SSE streams, REST sends -------------------------------------- */
typedef struct sse sse_t;

typedef struct {
    int idx; /* user number (u<idx>) */
    char *token;
    int streams;
} guser_t;

struct sse {
    conn_t *c;
    hresp_t h;
    int gi; /* index in gusers */
    int ok;
    dbuf line;
    long events;
};

static guser_t *gusers;
static int ngusers, capgusers;
static sse_t **sses;
static int nsses, capsses;
static long sse_events_total;

typedef struct {
    const char *what;
    int first, count, conc, next, done, ok, fail, phase;
    uint64_t t0, t_login;
    int gfirst; /* first gusers index of this batch */
    int target_user;
} batch_t;

static batch_t batch;
static void batch_step(void);

/* SSE body: lines; "data:" lines that carry a bench marker are latency samples. */
static void sse_body(conn_t *c, const char *d, size_t n)
{
    sse_t *s = c->owner;
    db_add(&s->line, d, n);
    char *p = s->line.p, *end = s->line.p + s->line.len, *nl;
    while ((nl = memchr(p, '\n', (size_t)(end - p)))) {
        if (nl == p || (nl == p + 1 && *p == '\r'))
            s->events++, sse_events_total++;
        else if (!strncmp(p, "data:", 5)) {
            const char *m = memmem(p, (size_t)(nl - p), "bench:", 6);
            if (m)
                bench_parse(m, nl, s->gi);
        }
        p = nl + 1;
    }
    db_eat(&s->line, (size_t)(p - s->line.p));
}

static void sse_done(conn_t *c, hresp_t *h)
{
    sse_t *s = c->owner;
    if (!s->ok && h->status != 200) {
        s->ok = -1;
        batch.fail++;
        batch.done++;
        conn_close(c);
        batch_step();
    }
}

static void sse_data(conn_t *c)
{
    sse_t *s = c->owner;
    if (!s->ok && s->h.state == 0 && db_find(&c->in, "\r\n\r\n")) {
        int st = atoi(c->in.p + 9);
        if (st == 200) {
            s->ok = 1;
            batch.ok++;
            batch.done++;
            s->h.streaming = 1;
            batch_step();
        }
    }
    if (http_parse(c, &s->h, sse_body, sse_done) < 0)
        conn_close(c);
}

static void sse_connected(conn_t *c, int status)
{
    sse_t *s = c->owner;
    if (status) {
        s->ok = -1;
        batch.fail++;
        batch.done++;
        batch_step();
        return;
    }
    conn_printf(c,
                "GET /sparkweb/sse?token=%s HTTP/1.1\r\nHost: %s:%d\r\nAccept: "
                "text/event-stream\r\n\r\n",
                gusers[s->gi].token, gw_host, gw_port);
}

static void sse_closed(conn_t *c)
{
    sse_t *s = c->owner;
    if (s->ok == 1)
        gusers[s->gi].streams--;
    s->c = NULL;
    if (s->ok == 0) { /* closed before the head */
        s->ok = -1;
        batch.fail++;
        batch.done++;
        batch_step();
    }
}

static void sse_open(int gi)
{
    sse_t *s = calloc(1, sizeof *s);
    if (!s)
        abort();
    s->gi = gi;
    gusers[gi].streams++;
    if (nsses == capsses) {
        capsses = capsses ? capsses * 2 : 1024;
        sses = realloc(sses, (size_t)capsses * sizeof *sses);
    }
    sses[nsses++] = s;
    s->c = conn_new(gw_host, gw_port, s, 0, sse_connected, sse_data, sse_closed);
}

/* Login workers: one keep-alive connection each, logins in sequence. */
typedef struct {
    conn_t *c;
    hresp_t h;
    int cur; /* gusers index being logged in, -1 idle */
} lworker_t;

static lworker_t *lworkers;
static int nlworkers;
static void lw_next(lworker_t *w);

static void lw_done(conn_t *c, hresp_t *h)
{
    lworker_t *w = c->owner;
    int gi = w->cur;
    w->cur = -1;
    const char *t = h->body.p ? memmem(h->body.p, h->body.len, "\"token\"", 7) : NULL;
    if (h->status == 200 && t && (t = strchr(t + 7, '"'))) {
        const char *e = strchr(t + 1, '"');
        gusers[gi].token = strndup(t + 1, (size_t)(e - t - 1));
        batch.ok++;
    } else {
        batch.fail++;
        if (batch.fail <= 3)
            fprintf(stderr, "login u%d: %d %.*s\n", gusers[gi].idx, h->status,
                    (int)(h->body.len > 200 ? 200 : h->body.len), h->body.p ? h->body.p : "");
    }
    batch.done++;
    lw_next(w);
}

static void lw_data(conn_t *c)
{
    lworker_t *w = c->owner;
    if (http_parse(c, &w->h, NULL, lw_done) < 0)
        conn_close(c);
}

static void lw_send(lworker_t *w)
{
    int gi = w->cur;
    char pw[64];
    int n = snprintf(pw, sizeof pw, "pw-u%d", gusers[gi].idx);
    conn_printf(w->c,
                "POST /sparkweb/api/rest/login/u%d HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: "
                "text/plain\r\nContent-Length: %d\r\n\r\n%s",
                gusers[gi].idx, gw_host, gw_port, n, pw);
}

static void lw_connected(conn_t *c, int status)
{
    lworker_t *w = c->owner;
    if (status)
        return; /* closed: lw_closed retries */
    lw_send(w);
}

static void lw_closed(conn_t *c)
{
    lworker_t *w = c->owner;
    w->c = NULL;
    memset(&w->h, 0, sizeof w->h);
    if (w->cur >= 0) { /* request lost with the connection: count it failed */
        w->cur = -1;
        batch.fail++;
        batch.done++;
    }
    lw_next(w);
}

static void lw_next(lworker_t *w)
{
    if (batch.phase != 1)
        return;
    if (batch.next >= batch.count) {
        if (batch.done >= batch.count)
            batch_step();
        return;
    }
    w->cur = batch.gfirst + batch.next++;
    if (!w->c) {
        w->c = conn_new(gw_host, gw_port, w, 0, lw_connected, lw_data, lw_closed);
    } else
        lw_send(w);
}

/* ---- XMPP clients (c2s, BOSH, WebSocket share the stream logic) ------------------------- */
enum {
    XS_FEAT1,
    XS_AUTH,
    XS_FEAT2,
    XS_BIND,
    XS_READY,
    XS_DEAD
};

enum {
    T_C2S,
    T_BOSH,
    T_WS
};
typedef struct xcl xcl_t;

struct xcl {
    int transport, idx, gi; /* user number, index in its group */
    int st;
    dbuf x; /* XMPP text received, not yet consumed */
    conn_t *c[2];
    hresp_t h[2];
    int busy[2];
    /* BOSH */
    char sid[64];
    unsigned long long rid;
    dbuf outq;    /* stanzas waiting for a BOSH request */
    dbuf pend[2]; /* a request waiting for its connection */
    int outstanding;
    int ws_up;
};

typedef struct {
    xcl_t **v;
    int n, cap;
} group_t;

static group_t groups[3];
static const char *tname[] = { "c2s", "bosh", "ws" };

static void x_ready(xcl_t *x);
static void x_fail(xcl_t *x);
static void x_send(xcl_t *x, const char *s, size_t n);
static void x_restart(xcl_t *x);

static void b64(const unsigned char *in, size_t n, char *o)
{
    static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t i;
    for (i = 0; i + 2 < n; i += 3) {
        *o++ = t[in[i] >> 2];
        *o++ = t[((in[i] & 3) << 4) | (in[i + 1] >> 4)];
        *o++ = t[((in[i + 1] & 15) << 2) | (in[i + 2] >> 6)];
        *o++ = t[in[i + 2] & 63];
    }
    if (i < n) {
        *o++ = t[in[i] >> 2];
        if (i + 1 < n) {
            *o++ = t[((in[i] & 3) << 4) | (in[i + 1] >> 4)];
            *o++ = t[(in[i + 1] & 15) << 2];
        } else {
            *o++ = t[(in[i] & 3) << 4];
            *o++ = '=';
        }
        *o++ = '=';
    }
    *o = 0;
}

/* Consumes XMPP text; moves the login state machine along and records bench messages. */
static void x_process(xcl_t *x)
{
    for (;;) {
        const char *m;
        if (x->st == XS_FEAT1 || x->st == XS_FEAT2) {
            if (!(m = db_find(&x->x, "</stream:features>")))
                return;
            db_eat(&x->x, (size_t)(m - x->x.p) + 18);
            char s[512];
            if (x->st == XS_FEAT1) {
                unsigned char raw[128];
                int n = snprintf((char *)raw + 1, sizeof raw - 1, "u%d", x->idx) + 1;
                raw[0] = 0;
                raw[n] = 0;
                n +=
                    1 + snprintf((char *)raw + n + 1, sizeof raw - (size_t)n - 1, "pw-u%d", x->idx);
                char enc[200];
                b64(raw, (size_t)n, enc);
                int l = snprintf(s, sizeof s,
                                 "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' "
                                 "mechanism='PLAIN'>%s</auth>",
                                 enc);
                x->st = XS_AUTH;
                x_send(x, s, (size_t)l);
            } else {
                int l = snprintf(s, sizeof s,
                                 "<iq type='set' id='bind1' xmlns='jabber:client'><bind "
                                 "xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>bench</"
                                 "resource></bind></iq>");
                x->st = XS_BIND;
                x_send(x, s, (size_t)l);
            }
            continue;
        }
        if (x->st == XS_AUTH) {
            if (db_find(&x->x, "<failure")) {
                x_fail(x);
                return;
            }
            if (!(m = db_find(&x->x, "<success")))
                return;
            const char *e = memchr(m, '>', x->x.len - (size_t)(m - x->x.p));
            if (!e)
                return;
            db_eat(&x->x, (size_t)(e - x->x.p) + 1);
            x->st = XS_FEAT2;
            x_restart(x);
            continue;
        }
        if (x->st == XS_BIND) {
            if (!(m = db_find(&x->x, "</iq>")))
                return;
            db_eat(&x->x, (size_t)(m - x->x.p) + 5);
            x->st = XS_READY;
            x_send(x, "<presence xmlns='jabber:client'/>", 33);
            x_ready(x);
            continue;
        }
        if (x->st == XS_READY) {
            if (!(m = db_find(&x->x, "bench:"))) {
                if (x->x.len > 16)
                    db_eat(&x->x, x->x.len - 16);
                return;
            }
            size_t n = bench_parse(m, x->x.p + x->x.len, x->gi);
            if (!n) { /* incomplete */
                db_eat(&x->x, (size_t)(m - x->x.p));
                return;
            }
            db_eat(&x->x, (size_t)(m - x->x.p) + n);
            continue;
        }
        return;
    }
}

/* c2s transport */
static void c2s_header(xcl_t *x)
{
    conn_printf(x->c[0],
                "<?xml version='1.0'?><stream:stream to='%s' version='1.0' xml:lang='en' "
                "xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>",
                domain);
}

static void c2s_connected(conn_t *c, int status)
{
    xcl_t *x = c->owner;
    if (status)
        return;
    c2s_header(x);
}

static void c2s_data(conn_t *c)
{
    xcl_t *x = c->owner;
    db_add(&x->x, c->in.p, c->in.len);
    db_eat(&c->in, c->in.len);
    x_process(x);
}

/* BOSH transport: at most two requests out; a response with none left out sends the next. */
static void bosh_request(xcl_t *x, int restart);

static void bosh_done(conn_t *c, hresp_t *h)
{
    xcl_t *x = c->owner;
    x->busy[c->slot] = 0;
    x->outstanding--;
    if (h->status != 200 || (h->body.p && memmem(h->body.p, h->body.len, "type='terminate'", 16))) {
        x_fail(x);
        return;
    }
    if (!x->sid[0] && h->body.p) {
        const char *s = memmem(h->body.p, h->body.len, "sid='", 5);
        char q = '\'';
        if (!s)
            s = memmem(h->body.p, h->body.len, "sid=\"", 5), q = '"';
        if (s) {
            const char *e = memchr(s + 5, q, h->body.len - (size_t)(s + 5 - h->body.p));
            if (e && e - s - 5 < (long)sizeof x->sid)
                memcpy(x->sid, s + 5, (size_t)(e - s - 5));
        }
    }
    if (h->body.p)
        db_add(&x->x, h->body.p, h->body.len);
    x_process(x);
    if (x->st != XS_DEAD && (x->outstanding == 0 || (x->outq.len && x->outstanding < 2)))
        bosh_request(x, 0);
}

static void bosh_data(conn_t *c)
{
    xcl_t *x = c->owner;
    if (http_parse(c, &x->h[c->slot], NULL, bosh_done) < 0)
        conn_close(c);
}

static void bosh_connected(conn_t *c, int status)
{
    xcl_t *x = c->owner;
    if (status)
        return;
    if (x->busy[c->slot] == 2) { /* a request was waiting for this connection */
        x->busy[c->slot] = 1;
        conn_write(c, x->pend[c->slot].p, x->pend[c->slot].len);
        db_eat(&x->pend[c->slot], x->pend[c->slot].len);
    }
}

static void bosh_closed(conn_t *c)
{
    xcl_t *x = c->owner;
    x->c[c->slot] = NULL;
    memset(&x->h[c->slot], 0, sizeof x->h[c->slot]);
    if (x->busy[c->slot]) {
        x->busy[c->slot] = 0;
        x->outstanding--;
        if (x->st != XS_READY)
            x_fail(x);
        else if (x->outstanding == 0)
            bosh_request(x, 0);
    }
}

/* Sends one BOSH request with whatever x->outq holds (or an empty poll). */
static void bosh_request(xcl_t *x, int restart)
{
    int slot = x->busy[0] ? 1 : 0;
    if (x->busy[slot])
        return;
    char head[1024];
    int hn;
    if (!x->sid[0])
        hn = snprintf(head, sizeof head,
                      "<body content='text/xml; charset=utf-8' hold='1' rid='%llu' to='%s' "
                      "ver='1.6' wait='60' xml:lang='en' xmpp:version='1.0' "
                      "xmlns='http://jabber.org/protocol/httpbind' xmlns:xmpp='urn:xmpp:xbosh'/>",
                      x->rid++, domain);
    else if (restart)
        hn = snprintf(head, sizeof head,
                      "<body rid='%llu' sid='%s' to='%s' xml:lang='en' xmpp:restart='true' "
                      "xmlns='http://jabber.org/protocol/httpbind' xmlns:xmpp='urn:xmpp:xbosh'/>",
                      x->rid++, x->sid, domain);
    else
        hn = snprintf(head, sizeof head,
                      "<body rid='%llu' sid='%s' xmlns='http://jabber.org/protocol/httpbind'>",
                      x->rid++, x->sid);
    dbuf body = { 0 };
    db_add(&body, head, (size_t)hn);
    if (x->sid[0] && !restart) {
        if (x->outq.len)
            db_add(&body, x->outq.p, x->outq.len);
        db_add(&body, "</body>", 7);
    }
    db_eat(&x->outq, x->outq.len);
    char req[512];
    int rn = snprintf(req, sizeof req,
                      "POST %s HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: text/xml; "
                      "charset=utf-8\r\nContent-Length: %zu\r\n\r\n",
                      bosh_path, bosh_host, bosh_port, body.len);
    x->outstanding++;
    if (x->c[slot] && x->c[slot]->open) {
        x->busy[slot] = 1;
        conn_write(x->c[slot], req, (size_t)rn);
        conn_write(x->c[slot], body.p, body.len);
    } else {
        x->busy[slot] = 2; /* sent on connect */
        db_add(&x->pend[slot], req, (size_t)rn);
        db_add(&x->pend[slot], body.p, body.len);
        if (!x->c[slot])
            x->c[slot] =
                conn_new(bosh_host, bosh_port, x, slot, bosh_connected, bosh_data, bosh_closed);
    }
    db_free(&body);
}

/* WebSocket transport (client frames masked with a zero key: valid, and no XOR needed). */
static void ws_frame(conn_t *c, const char *s, size_t n)
{
    unsigned char hd[14];
    size_t hl = 0;
    hd[hl++] = 0x81;
    if (n < 126)
        hd[hl++] = 0x80 | (unsigned char)n;
    else if (n < 65536) {
        hd[hl++] = 0x80 | 126;
        hd[hl++] = (unsigned char)(n >> 8);
        hd[hl++] = (unsigned char)n;
    } else
        return;
    memset(hd + hl, 0, 4);
    hl += 4;
    char *f = xmalloc(hl + n);
    memcpy(f, hd, hl);
    memcpy(f + hl, s, n);
    conn_write(c, f, hl + n);
    free(f);
}

static void ws_open(xcl_t *x)
{
    char s[256];
    int n = snprintf(s, sizeof s,
                     "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='%s' version='1.0'/>",
                     domain);
    ws_frame(x->c[0], s, (size_t)n);
}

static void ws_done(conn_t *c, hresp_t *h)
{
    xcl_t *x = c->owner;
    if (h->status != 101) {
        x_fail(x);
        return;
    }
    x->ws_up = 1;
    ws_open(x);
}

static void ws_data(conn_t *c)
{
    xcl_t *x = c->owner;
    if (!x->ws_up) {
        if (http_parse(c, &x->h[0], NULL, ws_done) < 0)
            conn_close(c);
        if (!x->ws_up)
            return;
    }
    while (c->in.len >= 2) {
        unsigned char *p = (unsigned char *)c->in.p;
        int op = p[0] & 15;
        uint64_t len = p[1] & 127;
        size_t hl = 2;
        if (len == 126) {
            if (c->in.len < 4)
                return;
            len = ((uint64_t)p[2] << 8) | p[3];
            hl = 4;
        } else if (len == 127) {
            if (c->in.len < 10)
                return;
            len = 0;
            for (int i = 0; i < 8; i++)
                len = (len << 8) | p[2 + i];
            hl = 10;
        }
        if (p[1] & 0x80)
            hl += 4; /* servers do not mask; skip a key anyway */
        if (c->in.len < hl + len)
            return;
        if (op == 1 || op == 0)
            db_add(&x->x, c->in.p + hl, (size_t)len);
        else if (op == 8) {
            db_eat(&c->in, c->in.len);
            x_fail(x);
            return;
        }
        db_eat(&c->in, hl + (size_t)len);
    }
    x_process(x);
}

static void ws_connected(conn_t *c, int status)
{
    if (status)
        return;
    conn_printf(c,
                "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: "
                "Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: "
                "13\r\nSec-WebSocket-Protocol: xmpp\r\n\r\n",
                ws_path, ws_host, ws_port);
}

static void x_send(xcl_t *x, const char *s, size_t n)
{
    if (x->transport == T_C2S)
        conn_write(x->c[0], s, n);
    else if (x->transport == T_WS)
        ws_frame(x->c[0], s, n);
    else {
        db_add(&x->outq, s, n);
        if (x->outstanding < 2)
            bosh_request(x, 0);
    }
}

static void x_restart(xcl_t *x)
{
    if (x->transport == T_C2S)
        c2s_header(x);
    else if (x->transport == T_WS)
        ws_open(x);
    else if (x->outstanding < 2)
        bosh_request(x, 1);
}

static void x_closed(conn_t *c)
{
    xcl_t *x = c->owner;
    x->c[c->slot] = NULL;
    if (x->st != XS_READY && x->st != XS_DEAD)
        x_fail(x);
    else
        x->st = XS_DEAD;
}

static void x_ready(xcl_t *x)
{
    batch.ok++;
    batch.done++;
    batch_step();
    (void)x;
}

static void x_fail(xcl_t *x)
{
    int was = x->st;
    x->st = XS_DEAD;
    if (was != XS_READY && was != XS_DEAD) {
        batch.fail++;
        batch.done++;
        if (batch.fail <= 3)
            fprintf(stderr, "%s u%d failed in state %d: %.200s\n", tname[x->transport], x->idx, was,
                    x->x.p ? x->x.p : "");
        batch_step();
    }
}

static void xcl_open(int transport, int idx)
{
    xcl_t *x = calloc(1, sizeof *x);
    if (!x)
        abort();
    group_t *g = &groups[transport];
    x->transport = transport;
    x->idx = idx;
    x->gi = g->n;
    x->rid = 1000 + (unsigned long long)idx * 7;
    if (g->n == g->cap) {
        g->cap = g->cap ? g->cap * 2 : 1024;
        g->v = realloc(g->v, (size_t)g->cap * sizeof *g->v);
    }
    g->v[g->n++] = x;
    if (transport == T_C2S)
        x->c[0] = conn_new(xmpp_host, xmpp_port, x, 0, c2s_connected, c2s_data, x_closed);
    else if (transport == T_WS)
        x->c[0] = conn_new(ws_host, ws_port, x, 0, ws_connected, ws_data, x_closed);
    else
        bosh_request(x, 0);
}

/* ---- batches: logins / stream opening with a concurrency limit ---------------------------- */
static int batch_transport;
static int *tok_list; /* gusers indexes of the batch's users that logged in */

static void batch_step(void)
{
    if (!batch.phase)
        return;
    if (batch.phase == 1) { /* gateway logins */
        if (batch.done < batch.count)
            return;
        batch.t_login = now_ns();
        batch.phase = 2;
        for (int i = 0; i < nlworkers; i++)
            if (lworkers[i].c)
                conn_close(lworkers[i].c);
        batch.next = batch.done = 0;
        free(tok_list);
        tok_list = xmalloc(sizeof(int) * (size_t)(batch.ok + 1));
        int nt = 0;
        for (int k = batch.gfirst; k < ngusers; k++)
            if (gusers[k].token)
                tok_list[nt++] = k;
        batch.count = nt;
        batch.ok = 0;
        batch.fail = 0;
        /* fall through to open the streams of the users that logged in */
    }
    if (batch.phase == 2 || batch.phase == 3) { /* SSE streams or XMPP clients */
        while (batch.next < batch.count && batch.next - batch.done < batch.conc) {
            int i = batch.next++;
            if (batch.phase == 3)
                xcl_open(batch_transport, batch.first + i);
            else if (batch.target_user >= 0)
                sse_open(batch.target_user);
            else {
                sse_open(tok_list[i]);
            }
        }
        if (batch.done < batch.count)
            return;
        uint64_t t = now_ns();
        if (batch.phase == 2 && batch.target_user < 0)
            out("{\"ev\":\"login\",\"first\":%d,\"count\":%d,\"logged_in\":%d,\"login_s\":%.3f,"
                "\"streams_ok\":%d,\"streams_failed\":%d,\"streams_s\":%.3f}",
                batch.first, batch.count + (batch.first >= 0 ? 0 : 0), batch.count,
                (double)(batch.t_login - batch.t0) / 1e9, batch.ok, batch.fail,
                (double)(t - batch.t_login) / 1e9);
        else if (batch.phase == 2)
            out("{\"ev\":\"streams\",\"user\":%d,\"ok\":%d,\"failed\":%d,\"s\":%.3f}",
                gusers[batch.target_user].idx, batch.ok, batch.fail, (double)(t - batch.t0) / 1e9);
        else
            out("{\"ev\":\"%s\",\"first\":%d,\"count\":%d,\"ok\":%d,\"failed\":%d,\"s\":%.3f}",
                tname[batch_transport], batch.first, batch.count, batch.ok, batch.fail,
                (double)(t - batch.t0) / 1e9);
        batch.phase = 0;
    }
}

static void cmd_login(int first, int count, int conc)
{
    memset(&batch, 0, sizeof batch);
    batch.first = first;
    batch.count = count;
    batch.conc = conc;
    batch.target_user = -1;
    batch.gfirst = ngusers;
    batch.t0 = now_ns();
    batch.phase = 1;
    if (ngusers + count > capgusers) {
        capgusers = ngusers + count;
        gusers = realloc(gusers, (size_t)capgusers * sizeof *gusers);
    }
    for (int i = 0; i < count; i++)
        gusers[ngusers + i] = (guser_t){ .idx = first + i };
    ngusers += count;
    if (count == 0) {
        batch_step();
        return;
    }
    nlworkers = conc < count ? conc : count;
    if (nlworkers < 1)
        nlworkers = 1;
    lworkers = calloc((size_t)nlworkers, sizeof *lworkers);
    for (int i = 0; i < nlworkers; i++) {
        lworkers[i].cur = -1;
        lw_next(&lworkers[i]);
    }
}

static void cmd_streams(int user, int n)
{
    int gi = -1;
    for (int i = 0; i < ngusers; i++)
        if (gusers[i].idx == user)
            gi = i;
    memset(&batch, 0, sizeof batch);
    batch.target_user = gi;
    batch.count = gi < 0 || !gusers[gi].token ? 0 : n;
    batch.conc = 64;
    batch.t0 = now_ns();
    batch.phase = 2;
    batch_step();
}

static void cmd_xmpp(int transport, int first, int count, int conc)
{
    memset(&batch, 0, sizeof batch);
    batch_transport = transport;
    batch.first = first;
    batch.count = count;
    batch.conc = conc;
    batch.target_user = -1;
    batch.t0 = now_ns();
    batch.phase = 3;
    batch_step();
}

/* ---- sending -------------------------------------------------------------------------------- */
typedef struct {
    conn_t *c;
    hresp_t h;
    int busy;
} rconn_t;

static rconn_t *rpool;
static int nrpool, rpool_max = 256;
static long *rqueue; /* message numbers waiting for a free REST connection */
static size_t rq_head, rq_tail, rq_cap;

static struct {
    int active, mode, to;
    double rate;
    long count, window, next;
    uint64_t t0, t_end, deadline;
    uv_timer_t timer;
    int copies;
} snd;

static void rest_issue(long k);

static void rq_push(long k)
{
    if (rq_tail - rq_head == rq_cap) {
        size_t nc = rq_cap ? rq_cap * 2 : 4096;
        long *n = xmalloc(nc * sizeof *n);
        for (size_t i = 0; i < rq_cap; i++)
            n[i] = rqueue[(rq_head + i) % rq_cap];
        free(rqueue);
        rqueue = n;
        rq_tail = rq_tail - rq_head;
        rq_head = 0;
        rq_cap = nc;
    }
    rqueue[rq_tail++ % rq_cap] = k;
}

static void rc_free(rconn_t *r)
{
    r->busy = 0;
    if (rq_head < rq_tail) {
        long k = rqueue[rq_head++ % rq_cap];
        rest_issue(k);
    }
}

static void rc_done(conn_t *c, hresp_t *h)
{
    rconn_t *r = &rpool[c->slot];
    if (h->status != 200) {
        send_errors++;
        if (send_errors <= 3)
            fprintf(stderr, "send: %d %.*s\n", h->status,
                    (int)(h->body.len > 200 ? 200 : h->body.len), h->body.p ? h->body.p : "");
    }
    rc_free(r);
}

static void rc_data(conn_t *c)
{
    if (http_parse(c, &rpool[c->slot].h, NULL, rc_done) < 0)
        conn_close(c);
}

static char *pending_req[1024];

static void rc_connected(conn_t *c, int status)
{
    if (status)
        return;
    if (pending_req[c->slot]) {
        conn_write(c, pending_req[c->slot], strlen(pending_req[c->slot]));
        free(pending_req[c->slot]);
        pending_req[c->slot] = NULL;
    }
}

static void rc_closed(conn_t *c)
{
    rconn_t *r = &rpool[c->slot];
    r->c = NULL;
    memset(&r->h, 0, sizeof r->h);
    if (r->busy) {
        send_errors++;
        rc_free(r);
    }
}

/* Message k of the running send: sender and receiver in the group, body with the time. */
static void msg_ends(long k, int n, int *from, int *to)
{
    *from = (int)(k % n);
    *to = snd.to >= 0 ? snd.to : (int)((k + 1) % n);
    if (*to == *from && n > 1)
        *from = (*from + 1) % n;
}

static void rest_issue(long k)
{
    int ri = -1;
    for (int i = 0; i < nrpool; i++)
        if (!rpool[i].busy) {
            ri = i;
            break;
        }
    if (ri < 0 && nrpool < rpool_max) {
        ri = nrpool++;
        memset(&rpool[ri], 0, sizeof rpool[ri]);
    }
    if (ri < 0) {
        rq_push(k);
        return;
    }
    int from, to;
    msg_ends(k, ngusers, &from, &to);
    char body[96], req[2048];
    int bn = snprintf(body, sizeof body, "bench:%ld:%llu:%d", k, (unsigned long long)now_ns(), to);
    int rn = snprintf(req, sizeof req,
                      "POST /sparkweb/api/rest/chat/message/u%d@%s HTTP/1.1\r\nHost: %s:%d\r\n"
                      "Authorization: %s\r\nContent-Type: text/plain\r\nContent-Length: "
                      "%d\r\n\r\n%s",
                      gusers[to].idx, domain, gw_host, gw_port, gusers[from].token, bn, body);
    rconn_t *r = &rpool[ri];
    r->busy = 1;
    if (r->c && r->c->open)
        conn_write(r->c, req, (size_t)rn);
    else {
        free(pending_req[ri]);
        pending_req[ri] = strndup(req, (size_t)rn);
        if (!r->c)
            r->c = conn_new(gw_host, gw_port, NULL, ri, rc_connected, rc_data, rc_closed);
    }
}

static void xmpp_issue(int transport, long k)
{
    group_t *g = &groups[transport];
    int from, to;
    msg_ends(k, g->n, &from, &to);
    char s[512];
    int n = snprintf(
        s, sizeof s,
        "<message xmlns='jabber:client' to='u%d@%s' type='chat' id='m%ld'><body>bench:%ld:%llu:%d</body>"
        "</message>",
        g->v[to]->idx, domain, k, k, (unsigned long long)now_ns(), to);
    if (g->v[from]->st != XS_READY) {
        send_errors++;
        return;
    }
    x_send(g->v[from], s, (size_t)n);
}

static void issue(long k)
{
    if (!first_send_ns)
        first_send_ns = now_ns();
    sent_count++;
    if (snd.mode < 0)
        rest_issue(k);
    else
        xmpp_issue(snd.mode, k);
}

static void send_finish(void)
{
    snd.active = 0;
    uv_timer_stop(&snd.timer);
    qsort(lat.v, lat.n, sizeof(double), dcmp);
    uint64_t end = last_recv_ns > first_send_ns ? last_recv_ns : now_ns();
    double secs = (double)(end - first_send_ns) / 1e9;
    double sum = 0;
    for (size_t i = 0; i < lat.n; i++)
        sum += lat.v[i];
    out("{\"ev\":\"send\",\"mode\":\"%s\",\"rate\":%g,\"window\":%ld,\"sent\":%llu,"
        "\"received\":%llu,\"expected\":%llu,\"errors\":%llu,\"secs\":%.3f,\"per_s\":%.1f,"
        "\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,\"max\":%.3f,\"mean\":%.3f}",
        snd.mode < 0 ? "rest" : tname[snd.mode], snd.rate, snd.window,
        (unsigned long long)sent_count, (unsigned long long)recv_count,
        (unsigned long long)(sent_count * (uint64_t)snd.copies), (unsigned long long)send_errors,
        secs, secs > 0 ? (double)recv_count / secs : 0, pct(0.5), pct(0.9), pct(0.99),
        lat.n ? lat.v[lat.n - 1] : NAN, lat.n ? sum / (double)lat.n : NAN);
}

static void send_check_end(void)
{
    if (snd.active && snd.next >= snd.count &&
        (recv_count + send_errors * (uint64_t)snd.copies >= (uint64_t)snd.count * snd.copies ||
         now_ns() > snd.deadline))
        send_finish();
}

static void on_message_received(void)
{
    if (!snd.active)
        return;
    if (snd.rate <= 0) { /* closed loop: keep the window full */
        long inflight = snd.next - (long)(recv_count / (uint64_t)snd.copies);
        while (snd.next < snd.count && inflight < snd.window) {
            issue(snd.next++);
            inflight++;
        }
        if (snd.next >= snd.count && !snd.deadline)
            snd.deadline = now_ns() + 10000000000ULL;
    }
    send_check_end();
}

static void send_tick(uv_timer_t *t)
{
    (void)t;
    if (!snd.active)
        return;
    if (snd.rate > 0) {
        double el = (double)(now_ns() - snd.t0) / 1e9;
        long due = (long)(el * snd.rate) + 1;
        if (due > snd.count)
            due = snd.count;
        while (snd.next < due)
            issue(snd.next++);
        if (snd.next >= snd.count && !snd.deadline)
            snd.deadline = now_ns() + 10000000000ULL;
    } else if (now_ns() - last_recv_ns > 5000000000ULL) {
        send_finish(); /* closed loop stalled (messages lost): stop */
        return;
    }
    send_check_end();
}

static void cmd_send(const char *mode, double rate, long count, long window, int to)
{
    free(lat.v);
    memset(&lat, 0, sizeof lat);
    recv_count = recv_dups = send_errors = sent_count = first_send_ns = last_recv_ns = 0;
    snd.mode = !strcmp(mode, "rest")   ? -1
               : !strcmp(mode, "c2s")  ? T_C2S
               : !strcmp(mode, "bosh") ? T_BOSH
                                       : T_WS;
    int n = snd.mode < 0 ? ngusers : groups[snd.mode].n;
    snd.rate = rate;
    snd.count = n >= 2 || to >= 0 ? count : 0;
    snd.window = window > 0 ? window : 64;
    snd.to = to;
    snd.copies = 1;
    if (snd.mode < 0 && to >= 0)
        snd.copies = gusers[to].streams;
    snd.next = 0;
    snd.deadline = 0;
    snd.t0 = now_ns();
    snd.active = 1;
    if (rate <= 0) {
        last_recv_ns = now_ns();
        while (snd.next < snd.count && snd.next < snd.window)
            issue(snd.next++);
    }
    uv_timer_start(&snd.timer, send_tick, 1, 1);
    if (snd.count == 0)
        send_finish();
}

static void cmd_close(const char *mode)
{
    if (!strcmp(mode, "rest")) {
        for (int i = 0; i < nsses; i++)
            if (sses[i]->c)
                conn_close(sses[i]->c);
        for (int i = 0; i < nrpool; i++)
            if (rpool[i].c)
                conn_close(rpool[i].c);
    } else {
        int t = !strcmp(mode, "c2s") ? T_C2S : !strcmp(mode, "bosh") ? T_BOSH : T_WS;
        for (int i = 0; i < groups[t].n; i++) {
            xcl_t *x = groups[t].v[i];
            x->st = XS_DEAD;
            for (int j = 0; j < 2; j++)
                if (x->c[j])
                    conn_close(x->c[j]);
        }
    }
    out("{\"ev\":\"closed\",\"mode\":\"%s\"}", mode);
}

/* ---- stdin commands ------------------------------------------------------------------------ */
static uv_pipe_t in_pipe;
static dbuf cmdbuf;

static void stdin_alloc(uv_handle_t *h, size_t sz, uv_buf_t *b)
{
    (void)h;
    (void)sz;
    static char buf[4096];
    b->base = buf;
    b->len = sizeof buf;
}

static void run_cmd(char *line)
{
    char w[16] = "", m[16] = "";
    int a = 0, b = 0, c = 0;
    double r = 0;
    long n = 0, win = 0;
    int to = -1;
    if (sscanf(line, "%15s", w) != 1)
        return;
    if (!strcmp(w, "login") && sscanf(line, "%*s %d %d %d", &a, &b, &c) == 3)
        cmd_login(a, b, c);
    else if (!strcmp(w, "streams") && sscanf(line, "%*s %d %d", &a, &b) == 2)
        cmd_streams(a, b);
    else if ((!strcmp(w, "c2s") || !strcmp(w, "bosh") || !strcmp(w, "ws")) &&
             sscanf(line, "%*s %d %d %d", &a, &b, &c) == 3)
        cmd_xmpp(!strcmp(w, "c2s") ? T_C2S : !strcmp(w, "bosh") ? T_BOSH : T_WS, a, b, c);
    else if (!strcmp(w, "send") &&
             sscanf(line, "%*s %15s %lf %ld %ld %d", m, &r, &n, &win, &to) >= 3)
        cmd_send(m, r, n, win, to);
    else if (!strcmp(w, "close") && sscanf(line, "%*s %15s", m) == 1)
        cmd_close(m);
    else if (!strcmp(w, "stats"))
        out("{\"ev\":\"stats\",\"sse_events\":%ld,\"gusers\":%d}", sse_events_total, ngusers);
    else if (!strcmp(w, "quit")) {
        out("{\"ev\":\"bye\"}");
        exit(0);
    } else
        out("{\"ev\":\"error\",\"what\":\"bad command\"}");
}

static void stdin_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    (void)s;
    if (n < 0)
        exit(0);
    db_add(&cmdbuf, b->base, (size_t)n);
    char *nl;
    while ((nl = memchr(cmdbuf.p, '\n', cmdbuf.len))) {
        *nl = 0;
        char line[512];
        snprintf(line, sizeof line, "%s", cmdbuf.p);
        db_eat(&cmdbuf, (size_t)(nl - cmdbuf.p) + 1);
        run_cmd(line);
    }
}

static void hostport(const char *s, char *host, int *port, char *path)
{
    char tmp[256];
    snprintf(tmp, sizeof tmp, "%s", s);
    char *sl = strchr(tmp, '/');
    if (sl && path) {
        snprintf(path, 128, "%s", sl);
        *sl = 0;
    }
    char *co = strrchr(tmp, ':');
    if (co) {
        *co = 0;
        *port = atoi(co + 1);
    }
    size_t hl = strlen(tmp);
    if (hl > 63)
        hl = 63;
    memcpy(host, tmp, hl);
    host[hl] = 0;
}

int main(int argc, char **argv)
{
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--gw"))
            hostport(argv[i + 1], gw_host, &gw_port, NULL);
        else if (!strcmp(argv[i], "--xmpp"))
            hostport(argv[i + 1], xmpp_host, &xmpp_port, NULL);
        else if (!strcmp(argv[i], "--bosh"))
            hostport(argv[i + 1], bosh_host, &bosh_port, bosh_path);
        else if (!strcmp(argv[i], "--ws"))
            hostport(argv[i + 1], ws_host, &ws_port, ws_path);
        else if (!strcmp(argv[i], "--domain"))
            snprintf(domain, sizeof domain, "%s", argv[i + 1]);
        else if (!strcmp(argv[i], "--src"))
            nsrc = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--pool"))
            rpool_max = atoi(argv[i + 1]);
        else {
            fprintf(stderr, "unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (rpool_max < 1 || rpool_max > 1024)
        rpool_max = 256;
    rpool = calloc((size_t)rpool_max, sizeof *rpool);
    loop = uv_default_loop();
    uv_timer_init(loop, &snd.timer);
    uv_pipe_init(loop, &in_pipe, 0);
    uv_pipe_open(&in_pipe, 0);
    uv_read_start((uv_stream_t *)&in_pipe, stdin_alloc, stdin_read);
    out("{\"ev\":\"hello\"}");
    return uv_run(loop, UV_RUN_DEFAULT);
}
