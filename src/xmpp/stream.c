/* stream.c: the client stream's lifecycle on libuv: options, DNS, TCP connect, reads and
 * writes, the deadline list on the shared tick, teardown, and freeing from inside callbacks.
 * Negotiation lives in stream_neg.c, TLS in stream_tls.c, SASL in stream_sasl.c. */
#define LOG_MODULE "xmpp"

#include "xmpp/stream.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/tick.h"
#include "xmpp/jid.h"
#include "xmpp/stanza.h"
#include "xmpp/xmpp_int.h"

#define READ_BUF_SIZE 65536

struct wreq {
    uv_write_t req;
    struct xmpp_stream *s;
    size_t len;
    char data[];
};

static struct xmpp__tickreg *regs;
static _Thread_local char read_buf[READ_BUF_SIZE];

static void on_tcp_close(uv_handle_t *h);
static void connect_next(struct xmpp_stream *s);
static void fire_terminal(struct xmpp_stream *s, int status, const char *reason);

int xmpp_tls_mode_parse(const char *s, enum xmpp_tls_mode *out)
{
    static const char *const names[] = { "required", "starttls", "direct", "off" };
    for (int i = 0; i < 4; i++) {
        if (s != NULL && strcasecmp(s, names[i]) == 0) {
            *out = (enum xmpp_tls_mode)i;
            return 0;
        }
    }
    return -EINVAL;
}

/* --- deadlines --- */

static void dl_unlink(struct xmpp_stream *s)
{
    if (s->dl_pprev == NULL)
        return;
    *s->dl_pprev = s->dl_next;
    if (s->dl_next)
        s->dl_next->dl_pprev = s->dl_pprev;
    s->dl_next = NULL;
    s->dl_pprev = NULL;
}

static void dl_push(struct xmpp_stream **head, struct xmpp_stream *s)
{
    s->dl_next = *head;
    if (*head)
        (*head)->dl_pprev = &s->dl_next;
    *head = s;
    s->dl_pprev = head;
}

void xmpp__reg_maybe_free(struct xmpp__tickreg *r)
{
    if (r->head != NULL || r->sm_head != NULL || r->in_cb)
        return;
    tick_remove(r->tick, r->sub);
    for (struct xmpp__tickreg **pp = &regs; *pp; pp = &(*pp)->next) {
        if (*pp == r) {
            *pp = r->next;
            break;
        }
    }
    mem_free(r);
}

static void on_tick(struct tick *t, uint64_t now, void *data)
{
    (void)t;
    struct xmpp__tickreg *r = data;
    struct xmpp_stream *due = NULL;
    r->in_cb = true;
    /* XEP-0198 upkeep first: it runs no user callback, and a failure it defers is delivered
     * by the deadline pass below */
    for (struct xmpp_stream *s = r->sm_head, *n; s != NULL; s = n) {
        n = s->sm_next;
        xmpp__sm_tick(s, now);
    }
    for (struct xmpp_stream *s = r->head, *n; s != NULL; s = n) {
        n = s->dl_next;
        if (s->has_deferred || now >= s->deadline_ms) {
            dl_unlink(s);
            dl_push(&due, s);
        }
    }
    /* a callback may free any stream, which unlinks it from `due` too */
    while (due != NULL) {
        struct xmpp_stream *s = due;
        dl_unlink(s);
        s->reg = NULL;
        xmpp__enter(s);
        if (s->has_deferred) {
            s->has_deferred = false;
            fire_terminal(s, s->deferred_status, s->deferred_reason);
        } else if (s->state == XMPP__ST_CLOSING) {
            xmpp__finish(s, 0, NULL, false);
        } else {
            log_warn("timeout", "jid=%s host=%s state=%s", s->logjid, s->host,
                     xmpp__state_name(s->state));
            xmpp__finish(s, -ETIMEDOUT, "timeout", false);
        }
        xmpp__leave(s);
    }
    r->in_cb = false;
    xmpp__reg_maybe_free(r);
}

struct xmpp__tickreg *xmpp__reg_get(struct tick *t)
{
    struct xmpp__tickreg *r = regs;
    while (r != NULL && r->tick != t)
        r = r->next;
    if (r == NULL) {
        r = mem_calloc(1, sizeof(*r));
        r->tick = t;
        r->sub = tick_add(t, on_tick, r);
        r->next = regs;
        regs = r;
    }
    return r;
}

static void dl_set(struct xmpp_stream *s, uint64_t deadline_ms)
{
    s->deadline_ms = deadline_ms;
    if (s->dl_pprev != NULL)
        return;
    struct xmpp__tickreg *r = xmpp__reg_get(s->tick);
    s->reg = r;
    dl_push(&r->head, s);
}

static void dl_clear(struct xmpp_stream *s)
{
    dl_unlink(s);
    struct xmpp__tickreg *r = s->reg;
    s->reg = NULL;
    if (r != NULL)
        xmpp__reg_maybe_free(r);
}

/* --- lifetime --- */

static void release(struct xmpp_stream *s)
{
    xmpp__sasl_cleanup(s);
    xmpp__tls_free(s);
    xmpp__parser_free(s->parser);
    if (s->ai)
        uv_freeaddrinfo(s->ai);
    for (size_t i = 0; i < s->n_early; i++)
        xmpp_stanza_unref(s->early[i]);
    xmpp__sm_free(s->sm);
    xmpp__sm_free(s->resume_in);
    xmpp__sm_free(s->leftover);
    if (s->password) {
        OPENSSL_cleanse(s->password, s->password_len);
        mem_free(s->password);
    }
    xmpp__cred_free(s->scram_in, sizeof(*s->scram_in));
    xmpp__cred_free(s->fast_in, sizeof(*s->fast_in));
    xmpp__cred_free(s->scram_out, sizeof(*s->scram_out));
    xmpp__cred_free(s->fast_out, sizeof(*s->fast_out));
    mem_free(s->ua_id);
    mem_free(s->host);
    mem_free(s->domain);
    mem_free(s->username);
    mem_free(s->resource);
    mem_free(s->logjid);
    mem_free(s->jid);
    mem_free(s);
}

static void maybe_release(struct xmpp_stream *s)
{
    if (s->dead && s->busy == 0 && !s->tcp_open && !s->gai_pending && !s->work_pending)
        release(s);
}

void xmpp__enter(struct xmpp_stream *s)
{
    s->busy++;
}

void xmpp__leave(struct xmpp_stream *s)
{
    if (--s->busy == 0)
        maybe_release(s);
}

bool xmpp__gone(const struct xmpp_stream *s)
{
    return s->dead || s->state == XMPP__ST_DONE;
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    (void)status;
    struct xmpp_stream *s = container_of(req, struct xmpp_stream, shut);
    if (!uv_is_closing((uv_handle_t *)&s->tcp))
        uv_close((uv_handle_t *)&s->tcp, on_tcp_close);
}

/* Closes the socket: politely (our closing tag, TLS close_notify, FIN after the queued writes)
 * when the stream was open, else at once. */
static void teardown(struct xmpp_stream *s, bool polite)
{
    if (s->gai_pending)
        uv_cancel((uv_req_t *)&s->gai);
    if (!s->tcp_open || uv_is_closing((uv_handle_t *)&s->tcp))
        return;
    s->retry_connect = false;
    if (polite && s->connected) {
        if (s->header_sent && !s->close_sent && (s->tls_active || s->ssl == NULL)) {
            s->close_sent = true;
            xmpp__writes(s, "</stream:stream>");
        }
        if (s->tls_active)
            xmpp__tls_close_notify(s);
        uv_read_stop((uv_stream_t *)&s->tcp);
        if (uv_shutdown(&s->shut, (uv_stream_t *)&s->tcp, on_shutdown) == 0)
            return;
    }
    uv_close((uv_handle_t *)&s->tcp, on_tcp_close);
}

/* uv_err_name leaks a string for a code libuv does not know, such as ESTALE. */
static const char *status_name(int status)
{
    return log_errname(status);
}

static void fire_terminal(struct xmpp_stream *s, int status, const char *reason)
{
    if (!s->ready_fired) {
        s->ready_fired = true;
        s->cbs.on_ready(s, status ? status : -ECONNRESET, s->data);
    } else if (!s->closed_fired && !s->auth_only) {
        s->closed_fired = true;
        if (s->cbs.on_closed)
            s->cbs.on_closed(s, status, reason, s->data);
    }
}

void xmpp__finish(struct xmpp_stream *s, int status, const char *reason, bool deferred)
{
    if (xmpp__gone(s))
        return;
    bool was_ready = s->state == XMPP__ST_READY || s->state == XMPP__ST_CLOSING;
    s->state = XMPP__ST_DONE;
    xmpp__sm_list_remove(s);
    teardown(s, true);
    xmpp__sasl_cleanup(s);
    if (was_ready) {
        log_info("closed", "jid=%s status=%s reason=%s", s->jid ? s->jid : s->logjid,
                 status_name(status), reason ? reason : "-");
    } else {
        log_info("fail", "jid=%s host=%s status=%s reason=%s ms=%llu", s->logjid, s->host,
                 status_name(status), reason ? reason : "-",
                 (unsigned long long)(uv_now(s->loop) - s->start_ms));
    }
    if (deferred) {
        s->has_deferred = true;
        s->deferred_status = status;
        s->deferred_reason = reason;
        dl_set(s, 0);
        return;
    }
    dl_clear(s);
    fire_terminal(s, status, reason);
}

void xmpp__stream_error(struct xmpp_stream *s, const char *condition)
{
    if (xmpp__gone(s))
        return;
    char x[256];
    snprintf(x, sizeof(x), "<stream:error><%s xmlns='" XMPP__NS_SERR "'/></stream:error>",
             condition);
    xmpp__writes(s, x);
    xmpp__finish(s, -EPROTO, condition, false);
}

void xmpp__ready(struct xmpp_stream *s)
{
    dl_clear(s);
    s->ready_fired = true;
    if (s->auth_only) {
        s->state = XMPP__ST_DONE;
        teardown(s, true);
        s->cbs.on_ready(s, 0, s->data);
        return;
    }
    s->state = XMPP__ST_READY;
    if (s->sm_enabled)
        xmpp__sm_list_add(s);
    log_info("bound", "jid=%s host=%s mech=%s tls=%d sm=%d resumed=%d ms=%llu", s->jid, s->host,
             s->mech ? s->mech : "-", s->tls_active, s->sm_enabled, s->resumed,
             (unsigned long long)(uv_now(s->loop) - s->start_ms));
    s->cbs.on_ready(s, 0, s->data);
    for (size_t i = 0; i < s->n_early; i++) {
        if (!xmpp__gone(s) && s->state == XMPP__ST_READY && s->cbs.on_stanza)
            s->cbs.on_stanza(s, s->early[i], s->data);
        /* the stream may be dead now but its memory lives until we leave */
        xmpp_stanza_unref(s->early[i]);
        s->early[i] = NULL;
    }
    s->n_early = 0;
}

/* --- writing --- */

static void on_write(uv_write_t *req, int status)
{
    struct wreq *w = container_of(req, struct wreq, req);
    struct xmpp_stream *s = w->s;
    s->pending_bytes -= w->len;
    mem_free(w);
    if (status < 0 && status != UV_ECANCELED && !xmpp__gone(s)) {
        xmpp__enter(s);
        xmpp__finish(s, -ECONNRESET, "write failed", false);
        xmpp__leave(s);
    }
}

int xmpp__write_wire(struct xmpp_stream *s, const char *data, size_t len)
{
    if (!s->connected || !s->tcp_open || uv_is_closing((uv_handle_t *)&s->tcp))
        return -ENOTCONN;
    struct wreq *w = mem_alloc(sizeof(*w) + len);
    w->s = s;
    w->len = len;
    memcpy(w->data, data, len);
    uv_buf_t b = uv_buf_init(w->data, (unsigned)len);
    int rc = uv_write(&w->req, (uv_stream_t *)&s->tcp, &b, 1, on_write);
    if (rc < 0) {
        mem_free(w);
        return rc;
    }
    s->pending_bytes += len;
    return 0;
}

int xmpp__write(struct xmpp_stream *s, const char *data, size_t len)
{
    if (s->ssl != NULL)
        return s->tls_active ? xmpp__tls_write(s, data, len) : -ENOTCONN;
    return xmpp__write_wire(s, data, len);
}

int xmpp__writes(struct xmpp_stream *s, const char *str)
{
    return xmpp__write(s, str, strlen(str));
}

int xmpp__send_header(struct xmpp_stream *s)
{
    char h[1024 + 512];
    /* 'from' only where nobody else can read it (RFC 6120 §4.7.1); servers use it to offer
     * per-user features such as FAST before authentication */
    bool from = s->tls_active || s->tls_mode == XMPP_TLS_OFF;
    int n = snprintf(h, sizeof(h),
                     "<?xml version='1.0'?><stream:stream xmlns='" XMPP_NS_CLIENT
                     "' xmlns:stream='" XMPP_NS_STREAMS "' to='%s'%s%s%s version='1.0' "
                     "xml:lang='en'>",
                     s->domain, from ? " from='" : "", from ? s->logjid : "", from ? "'" : "");
    if (n < 0 || (size_t)n >= sizeof(h))
        return -EINVAL;
    s->header_sent = true;
    return xmpp__write(s, h, (size_t)n);
}

static int send_checked(struct xmpp_stream *s, const char *xml, size_t len)
{
    int rc = xmpp__write(s, xml, len);
    if (rc < 0) /* the socket is broken: report it from the tick, not inside this call */
        xmpp__finish(s, -ECONNRESET, "write failed", true);
    return rc;
}

static bool is_stanza_name(const char *n)
{
    return strcmp(n, "message") == 0 || strcmp(n, "presence") == 0 || strcmp(n, "iq") == 0;
}

/* Writes one serialised top-level element; a stanza is counted and kept for XEP-0198. */
static int send_counted(struct xmpp_stream *s, const char *xml, size_t len, bool stanza)
{
    if (stanza && s->sm_enabled) {
        int rc = xmpp__sm_room(s, len);
        if (rc < 0)
            return rc;
    }
    int rc = send_checked(s, xml, len);
    if (rc == 0 && stanza && s->sm_enabled)
        xmpp__sm_track(s, xml, len);
    return rc;
}

int xmpp_stream_send(struct xmpp_stream *s, const struct xmpp_stanza *st)
{
    if (xmpp__gone(s) || s->state != XMPP__ST_READY)
        return -ENOTCONN;
    if (s->pending_bytes >= XMPP__MAX_PENDING)
        return -ENOBUFS;
    struct buf b;
    buf_init(&b, XMPP__MAX_PENDING - s->pending_bytes);
    int rc = xmpp_stanza_serialize(st, &b);
    if (rc == 0) {
        if (log__level >= LOG_LEVEL_DEBUG) {
            char *red = xmpp_stanza_redacted(st);
            log_debug("send", "jid=%s xml=\"%s\"", s->jid, red);
            mem_free(red);
        }
        rc = send_counted(s, b.ptr, b.len, is_stanza_name(xmpp_stanza_name(st)));
    }
    buf_cleanup(&b);
    return rc;
}

/* The element name at the start of serialised XML ("message"...), or "" when not a stanza. */
static const char *stanza_name_of(const char *xml, size_t len)
{
    static const char *const names[] = { "message", "presence", "iq" };
    for (int i = 0; i < 3; i++) {
        size_t n = strlen(names[i]);
        if (len > n + 1 && xml[0] == '<' && memcmp(xml + 1, names[i], n) == 0 &&
            xml[n + 1] != '\0' && strchr(" />\t\r\n", xml[n + 1]) != NULL)
            return names[i];
    }
    return "";
}

int xmpp_stream_send_xml(struct xmpp_stream *s, const char *xml, size_t len)
{
    if (xml == NULL || *stanza_name_of(xml, len) == '\0' || xml[len - 1] != '>')
        return -EINVAL;
    if (xmpp__gone(s) || s->state != XMPP__ST_READY)
        return -ENOTCONN;
    if (len > XMPP__MAX_PENDING || s->pending_bytes > XMPP__MAX_PENDING - len)
        return -ENOBUFS;
    log_debug("send", "jid=%s len=%zu msg=\"queued stanza\"", s->jid, len);
    return send_counted(s, xml, len, true);
}

int xmpp_stream_send_raw(struct xmpp_stream *s, const char *xml, size_t len)
{
    if (xmpp__gone(s) || s->state != XMPP__ST_READY)
        return -ENOTCONN;
    if (len > XMPP__MAX_PENDING || s->pending_bytes > XMPP__MAX_PENDING - len)
        return -ENOBUFS;
    return send_checked(s, xml, len);
}

/* --- reading --- */

/* Between stanzas on a ready stream: free the parser until the next read, unless this stream
 * has woken it too often this second. */
static void maybe_nap(struct xmpp_stream *s)
{
    uint64_t now = uv_now(s->loop);
    if (now - s->nap_window_ms >= 1000) {
        s->nap_window_ms = now;
        s->naps = 0;
    }
    if (s->naps < XMPP__PARSER_NAPS_PER_S && xmpp__parser_hibernate(s->parser))
        s->naps++;
}

void xmpp__input(struct xmpp_stream *s, const char *data, size_t len)
{
    int rc = xmpp__parser_feed(s->parser, data, len);
    if (xmpp__gone(s))
        return;
    if (rc == 0 && s->state == XMPP__ST_READY)
        maybe_nap(s);
    if (rc == 0 || rc == -ECANCELED)
        return;
    log_warn("bad_xml", "jid=%s host=%s state=%s msg=\"%s\"", s->logjid, s->host,
             xmpp__state_name(s->state), xmpp__parser_error(s->parser));
    xmpp__stream_error(s, rc == -EMSGSIZE ? "policy-violation" : "not-well-formed");
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h, (void)suggested;
    *buf = uv_buf_init(read_buf, sizeof(read_buf));
}

static void on_read(uv_stream_t *h, ssize_t nread, const uv_buf_t *buf)
{
    struct xmpp_stream *s = container_of((uv_tcp_t *)h, struct xmpp_stream, tcp);
    if (nread == 0 || xmpp__gone(s))
        return;
    s->last_rx_ms = uv_now(s->loop);
    xmpp__enter(s);
    if (nread < 0) {
        if (s->state == XMPP__ST_CLOSING)
            xmpp__finish(s, 0, NULL, false);
        else if (s->ready_fired || nread == UV_EOF)
            xmpp__finish(s, -ECONNRESET, "connection lost", false);
        else
            xmpp__finish(s, (int)nread, "read failed", false);
    } else if (s->ssl != NULL) {
        xmpp__tls_input(s, buf->base, (size_t)nread);
    } else {
        xmpp__input(s, buf->base, (size_t)nread);
    }
    xmpp__leave(s);
}

/* --- connecting --- */

static void on_tcp_close(uv_handle_t *h)
{
    struct xmpp_stream *s = container_of((uv_tcp_t *)h, struct xmpp_stream, tcp);
    s->tcp_open = false;
    s->connected = false;
    xmpp__enter(s);
    if (s->retry_connect && !xmpp__gone(s)) {
        s->retry_connect = false;
        connect_next(s);
    }
    xmpp__leave(s);
}

static void on_connect(uv_connect_t *req, int status)
{
    struct xmpp_stream *s = container_of(req, struct xmpp_stream, conn);
    if (xmpp__gone(s) || s->state != XMPP__ST_CONNECT)
        return;
    xmpp__enter(s);
    if (status < 0) {
        log_debug("connect_fail", "host=%s err=%s", s->host, log_errname(status));
        s->last_connect_err = status;
        s->retry_connect = true;
        uv_close((uv_handle_t *)&s->tcp, on_tcp_close);
        xmpp__leave(s);
        return;
    }
    s->connected = true;
    uv_freeaddrinfo(s->ai);
    s->ai = s->ai_next = NULL;
    int rc = uv_read_start((uv_stream_t *)&s->tcp, on_alloc, on_read);
    if (rc == 0 && s->tls_mode == XMPP_TLS_DIRECT) {
        s->state = XMPP__ST_TLS_DIRECT;
        rc = xmpp__tls_start(s);
    } else if (rc == 0) {
        s->state = XMPP__ST_STREAM;
        rc = xmpp__send_header(s);
    }
    if (rc < 0)
        xmpp__finish(s, rc == -EPROTO ? -EPROTO : rc, "connect setup failed", false);
    xmpp__leave(s);
}

static void connect_next(struct xmpp_stream *s)
{
    struct addrinfo *a = s->ai_next;
    if (a == NULL) {
        xmpp__finish(s, s->last_connect_err ? s->last_connect_err : UV_ECONNREFUSED,
                     "connect failed", false);
        return;
    }
    s->ai_next = a->ai_next;
    s->state = XMPP__ST_CONNECT;
    int rc = uv_tcp_init(s->loop, &s->tcp);
    if (rc < 0) {
        xmpp__finish(s, rc, "socket", false);
        return;
    }
    s->tcp_open = true;
    uv_tcp_nodelay(&s->tcp, 1);
    rc = uv_tcp_connect(&s->conn, &s->tcp, a->ai_addr, on_connect);
    if (rc < 0) {
        s->last_connect_err = rc;
        s->retry_connect = true;
        uv_close((uv_handle_t *)&s->tcp, on_tcp_close);
    }
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct xmpp_stream *s = container_of(req, struct xmpp_stream, gai);
    s->gai_pending = false;
    xmpp__enter(s);
    if (xmpp__gone(s) || s->state != XMPP__ST_RESOLVE) {
        if (res)
            uv_freeaddrinfo(res);
    } else if (status < 0) {
        xmpp__finish(s, status, "resolve failed", false);
    } else {
        s->ai = s->ai_next = res;
        connect_next(s);
    }
    xmpp__leave(s);
}

/* --- public lifecycle --- */

int xmpp__open(uv_loop_t *loop, const struct xmpp_stream_opts *opts,
               const struct xmpp_stream_cbs *cbs, void *data, bool reg, struct xmpp_stream **out)
{
    if (loop == NULL || out == NULL || !xmpp__opts_valid(opts, cbs, reg))
        return -EINVAL;
    struct xmpp_stream *s = mem_calloc(1, sizeof(*s));
    s->parser = xmpp__parser_new(opts->max_stanza ? opts->max_stanza : XMPP__DEF_MAX_STANZA,
                                 &xmpp__neg_cbs, s);
    if (s->parser == NULL) {
        mem_free(s);
        return -ENOMEM;
    }
    s->loop = loop;
    s->cbs = *cbs;
    s->data = data;
    s->host = mem_strdup(opts->host);
    s->port = opts->port;
    s->domain = mem_strdup(opts->domain);
    s->username = mem_strdup(opts->username);
    if (opts->password != NULL) {
        s->password_len = strlen(opts->password);
        s->password = mem_strndup(opts->password, s->password_len);
    } else if (opts->scram != NULL) {
        s->scram_in = mem_alloc(sizeof(*s->scram_in));
        memcpy(s->scram_in, opts->scram, sizeof(*s->scram_in));
    } else {
        s->fast_in = mem_alloc(sizeof(*s->fast_in));
        memcpy(s->fast_in, opts->fast, sizeof(*s->fast_in));
    }
    s->request_fast = opts->request_fast && !reg;
    s->ua_id = opts->user_agent_id ? mem_strdup(opts->user_agent_id) : NULL;
    s->reg_mode = reg;
    s->resource = opts->resource ? mem_strdup(opts->resource) : NULL;
    size_t ll = strlen(s->username) + strlen(s->domain) + 2;
    s->logjid = mem_alloc(ll);
    snprintf(s->logjid, ll, "%s@%s", s->username, s->domain);
    s->tls_mode = opts->tls;
    s->tls_ctx = opts->tls_ctx;
    s->tick = opts->tick;
    s->timeout_ms = opts->connect_timeout_ms ? opts->connect_timeout_ms : XMPP__DEF_TIMEOUT_MS;
    s->max_stanza = opts->max_stanza ? opts->max_stanza : XMPP__DEF_MAX_STANZA;
    s->auth_only = opts->auth_only || reg; /* registration ends like an auth_only login */
    s->want_sm = opts->sm;
    s->resume_in = opts->resume; /* ours from here on */
    s->state = XMPP__ST_RESOLVE;
    s->start_ms = uv_now(loop);
    dl_set(s, s->start_ms + s->timeout_ms);

    log_info("connect", "jid=%s host=%s port=%u tls=%d op=%s", s->logjid, s->host, s->port,
             (int)s->tls_mode, reg ? "register" : "login");
    char port[8];
    snprintf(port, sizeof(port), "%u", s->port);
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
    int rc = uv_getaddrinfo(loop, &s->gai, on_resolved, s->host, port, &hints);
    if (rc < 0)
        xmpp__finish(s, rc, "resolve failed", true);
    else
        s->gai_pending = true;
    *out = s;
    return 0;
}

int xmpp_stream_open(uv_loop_t *loop, const struct xmpp_stream_opts *opts,
                     const struct xmpp_stream_cbs *cbs, void *data, struct xmpp_stream **out)
{
    return xmpp__open(loop, opts, cbs, data, false, out);
}

void xmpp_stream_close(struct xmpp_stream *s)
{
    if (s == NULL || xmpp__gone(s) || s->state == XMPP__ST_CLOSING)
        return;
    if (s->state != XMPP__ST_READY) {
        xmpp__finish(s, -ECANCELED, "closed before ready", true);
        return;
    }
    if (s->sm_enabled) { /* XEP-0198: acknowledge what we handled, or the server resends it */
        char a[80];
        snprintf(a, sizeof(a), "<a xmlns='" XMPP__NS_SM "' h='%u'/>", s->sm->h_in);
        xmpp__writes(s, a);
    }
    s->state = XMPP__ST_CLOSING;
    s->close_sent = true;
    if (xmpp__writes(s, "</stream:stream>") < 0) {
        s->state = XMPP__ST_READY;
        xmpp__finish(s, 0, NULL, true);
        return;
    }
    dl_set(s, uv_now(s->loop) + XMPP__CLOSE_WAIT_MS);
}

void xmpp_stream_free(struct xmpp_stream *s)
{
    if (s == NULL || s->dead)
        return;
    s->dead = true;
    s->state = XMPP__ST_DONE;
    dl_clear(s);
    xmpp__sm_list_remove(s);
    if (s->gai_pending)
        uv_cancel((uv_req_t *)&s->gai);
    xmpp__sasl_cleanup(s); /* cancels a queued SASL step */
    if (s->tcp_open && !uv_is_closing((uv_handle_t *)&s->tcp))
        uv_close((uv_handle_t *)&s->tcp, on_tcp_close);
    maybe_release(s);
}

const char *xmpp_stream_jid(const struct xmpp_stream *s)
{
    return s->jid;
}

bool xmpp_stream_sm_enabled(const struct xmpp_stream *s)
{
    return s->sm_enabled;
}

size_t xmpp_stream_pending_bytes(const struct xmpp_stream *s)
{
    return s->pending_bytes;
}

const char *xmpp_stream_mechanism(const struct xmpp_stream *s)
{
    return s->mech;
}

int xmpp_stream_scram_cred(const struct xmpp_stream *s, struct xmpp_scram_cred *out)
{
    if (s->scram_out == NULL)
        return -ENOENT;
    memcpy(out, s->scram_out, sizeof(*out));
    return 0;
}

int xmpp_stream_fast_token(const struct xmpp_stream *s, struct xmpp_fast_token *out)
{
    if (s->fast_out == NULL)
        return -ENOENT;
    memcpy(out, s->fast_out, sizeof(*out));
    return 0;
}

void xmpp_stream_global_cleanup(void)
{
    xmpp__sasl_global_cleanup();
}
