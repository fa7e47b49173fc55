/* stream.c: long-lived streaming responses (SSE). A stream is small on purpose (one struct and
 * the bytes queued for a slow client): no lws timer, no header table (detached once the
 * headers are out), no per-stream buffer beyond the queue. HTTP/1.1 streams use chunked
 * transfer coding written here; HTTP/2 streams are plain DATA frames. */
#define LOG_MODULE "http"

#include "http/http.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <libwebsockets.h>

#include "core/log.h"
#include "core/mem.h"
#include "http/server_int.h"

/* Room for a chunk-size line before the data ("ffffffff\r\n") and the CRLF after it. */
#define CHUNK_HEAD 12

struct chunk {
    struct chunk *next;
    size_t len;
    unsigned char data[]; /* LWS_PRE + CHUNK_HEAD + len + 2 */
};

struct http_stream {
    struct http_server *srv;
    struct http_stream *prev, *next;
    struct lws *wsi;
    struct http__pss *pss;
    http_stream_close_cb *close_cb;
    void *data;
    struct chunk *head, *tail;
    size_t queued;
    size_t max_queue;
    unsigned char *hdrs; /* LWS_PRE + serialized headers until sent */
    size_t hdrs_len;
    http_stream_drain_cb *drain_cb;
    void *drain_data;
    size_t drain_low;
    bool h2;
    bool closing; /* http_stream_close called */
    bool ended;   /* terminator written */
    bool aborted; /* http_stream_abort called: close without flushing */
    bool killed;  /* the server has closed (or is closing) the aborted connection */
    char peer[48];
};

static void stream_unlink(struct http_stream *st)
{
    if (!st->srv)
        return;
    if (st->prev)
        st->prev->next = st->next;
    else if (st->srv->streams == st)
        st->srv->streams = st->next;
    if (st->next)
        st->next->prev = st->prev;
    st->prev = st->next = NULL;
    st->srv = NULL;
}

static void free_chunks(struct http_stream *st)
{
    struct chunk *c = st->head;
    while (c) {
        struct chunk *next = c->next;
        mem_free(c);
        c = next;
    }
    st->head = st->tail = NULL;
    st->queued = 0;
}

static void stream_free(struct http_stream *st)
{
    stream_unlink(st);
    if (st->pss && st->pss->st == st)
        st->pss->st = NULL;
    free_chunks(st);
    mem_free(st->hdrs);
    mem_free(st);
}

void http__stream_gone(struct http_stream *st)
{
    http_stream_close_cb *cb = st->close_cb;
    void *data = st->data;
    struct http_stream *self = st;
    stream_unlink(st);
    st->wsi = NULL;
    st->closing = true;
    st->close_cb = NULL;
    if (cb)
        cb(self, data);
    stream_free(st);
}

static int build_headers(struct http_stream *st, struct http_req *req, int status,
                         const char *content_type)
{
    unsigned char buf[LWS_PRE + 4096], *start = buf + LWS_PRE, *p = start,
                                       *end = buf + sizeof(buf) - 1;
    struct lws *wsi = req->wsi;
    if (lws_add_http_header_status(wsi, (unsigned)status, &p, end))
        return -1;
    if (content_type && lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE,
                                                     (const unsigned char *)content_type,
                                                     (int)strlen(content_type), &p, end))
        return -1;
    if (lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CACHE_CONTROL,
                                     (const unsigned char *)"no-store", 8, &p, end))
        return -1;
    if (!st->h2 && lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING,
                                                (const unsigned char *)"chunked", 7, &p, end))
        return -1;
    if (http__add_cors_headers(req, &p, end) || http__add_out_headers(req->out_hdrs, wsi, &p, end))
        return -1;
    if (lws_finalize_http_header(wsi, &p, end))
        return -1;
    st->hdrs_len = (size_t)(p - start);
    st->hdrs = mem_alloc(LWS_PRE + st->hdrs_len);
    memcpy(st->hdrs + LWS_PRE, start, st->hdrs_len);
    return 0;
}

/* lws 4.1.6 gives a flow-controlled h1 wsi no WRITEABLE, so the hold (http__h1_hold) is
 * lifted while bytes wait and put back once the queue is empty. */
static void stream_want_write(struct http_stream *st)
{
    if (!st->h2)
        http__h1_release(st->wsi);
    lws_callback_on_writable(st->wsi);
}

struct http_stream *http_req_stream(struct http_req *req, int status, const char *content_type,
                                    size_t max_queue, http_stream_close_cb *close_cb, void *data)
{
    if (req->state != HTTP__REQ_HANDLER || !req->wsi) {
        if (req->state == HTTP__REQ_ZOMBIE)
            http__req_free(req);
        return NULL;
    }
    struct http_stream *st = mem_calloc(1, sizeof(*st));
    st->srv = req->srv;
    st->wsi = req->wsi;
    st->pss = req->pss;
    st->close_cb = close_cb;
    st->data = data;
    st->max_queue = max_queue;
    st->h2 = req->h2;
    snprintf(st->peer, sizeof(st->peer), "%s", req->peer);
    if (build_headers(st, req, status, content_type) < 0) {
        mem_free(st);
        http_reply_error(req, 500, req->path, "Exception", "HeaderOverflowException");
        return NULL;
    }
    http__access_log(req, status);
    struct lws *wsi = req->wsi;
    st->pss->req = NULL;
    st->pss->st = st;
    http__req_free(req);

    st->next = st->srv->streams;
    if (st->srv->streams)
        st->srv->streams->prev = st;
    st->srv->streams = st;

    /* No idle timeout, no header table: the stream may stay silent for hours. */
    lws_set_timeout(wsi, NO_PENDING_TIMEOUT, 0);
    if (st->h2)
        lws_http_mark_sse(wsi); /* detaches headers, makes the h2 stream immortal */
    else
        lws_http_headers_detach(wsi);
    lws_callback_on_writable(wsi);
    return st;
}

struct http_stream *http__stream_next(const struct http_stream *st)
{
    return st->next;
}

struct lws *http__stream_h1_wsi(const struct http_stream *st)
{
    return st->h2 || st->ended ? NULL : st->wsi;
}

int http_stream_write(struct http_stream *st, const void *data, size_t len)
{
    if (st->closing || !st->wsi)
        return -EPIPE;
    if (len == 0)
        return 0;
    if (len > st->max_queue || st->queued > st->max_queue - len)
        return -ENOBUFS;
    struct chunk *c = mem_alloc(sizeof(*c) + LWS_PRE + CHUNK_HEAD + len + 2);
    c->next = NULL;
    c->len = len;
    memcpy(c->data + LWS_PRE + CHUNK_HEAD, data, len);
    if (st->tail)
        st->tail->next = c;
    else
        st->head = c;
    st->tail = c;
    st->queued += len;
    stream_want_write(st);
    return 0;
}

size_t http_stream_queued(const struct http_stream *st)
{
    return st->queued;
}

void http_stream_on_drain(struct http_stream *st, size_t low, http_stream_drain_cb *cb, void *data)
{
    st->drain_cb = cb;
    st->drain_data = data;
    st->drain_low = low;
}

void http_stream_close(struct http_stream *st)
{
    if (st->closing)
        return;
    st->closing = true;
    st->drain_cb = NULL;
    if (st->wsi)
        stream_want_write(st);
}

void http_stream_abort(struct http_stream *st)
{
    if (st->aborted)
        return;
    st->aborted = true;
    st->closing = true;
    st->drain_cb = NULL;
    free_chunks(st);
    if (st->wsi == NULL)
        return;
    if (!st->h2) {
        /* a reset frees the socket's unsent bytes too, instead of an orphan waiting on a
         * peer that does not read */
        struct linger lg = { .l_onoff = 1, .l_linger = 0 };
        setsockopt((int)lws_get_socket_fd(st->wsi), SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    }
    if (st->srv)
        http__scan_soon(st->srv);
}

struct lws *http__stream_take_aborted(struct http_stream *st)
{
    if (!st->aborted || st->killed)
        return NULL;
    st->killed = true;
    return st->wsi;
}

const char *http_stream_peer(const struct http_stream *st)
{
    return st->peer;
}

/* Writes one queued chunk; h1 gets the chunk framing around the data. */
static int write_chunk(struct http_stream *st)
{
    struct chunk *c = st->head;
    unsigned char *p = c->data + LWS_PRE + CHUNK_HEAD;
    size_t n = c->len;
    if (!st->h2) {
        char head[CHUNK_HEAD + 1];
        int hl = snprintf(head, sizeof(head), "%zx\r\n", c->len);
        p -= hl;
        memcpy(p, head, (size_t)hl);
        memcpy(p + hl + c->len, "\r\n", 2);
        n += (size_t)hl + 2;
    }
    if (lws_write(st->wsi, p, n, LWS_WRITE_HTTP) < 0)
        return -1;
    st->head = c->next;
    if (!st->head)
        st->tail = NULL;
    st->queued -= c->len;
    mem_free(c);
    return 0;
}

int http__stream_writeable(struct http_stream *st)
{
    struct lws *wsi = st->wsi;
    if (st->aborted)
        return -1; /* CLOSED_HTTP follows */
    if (st->hdrs) {
        if (lws_write(wsi, st->hdrs + LWS_PRE, st->hdrs_len, LWS_WRITE_HTTP_HEADERS) < 0)
            return -1;
        mem_free(st->hdrs);
        st->hdrs = NULL;
    } else if (st->head) {
        if (write_chunk(st) < 0)
            return -1;
        if (st->drain_cb && st->queued <= st->drain_low) {
            http_stream_drain_cb *cb = st->drain_cb;
            st->drain_cb = NULL;
            cb(st, st->drain_data); /* may write, close or abort; never frees st */
            if (st->aborted)
                return -1;
        }
    } else if (st->closing && !st->ended) {
        unsigned char buf[LWS_PRE + 8];
        memcpy(buf + LWS_PRE, "0\r\n\r\n", 5);
        if (lws_write(wsi, buf + LWS_PRE, st->h2 ? 0 : 5, LWS_WRITE_HTTP_FINAL) < 0)
            return -1;
        st->ended = true;
        /* close_cb after the terminator; then the connection may serve the next request */
        struct http__pss *pss = st->pss;
        http__stream_gone(st);
        if (pss)
            pss->st = NULL;
        http__h1_release(wsi);
        return lws_http_transaction_completed(wsi) ? -1 : 0;
    }
    /* lws keeps what the socket did not take of the last write and flushes it before the next
     * WRITEABLE; a held connection would keep it until the next write (the heartbeat) */
    if (st->head || (st->closing && !st->ended) || (!st->h2 && lws_partial_buffered(wsi)))
        lws_callback_on_writable(wsi);
    else if (!st->h2)
        http__h1_hold(wsi);
    return 0;
}
