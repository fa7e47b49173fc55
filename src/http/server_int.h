/* server_int.h: private state of the lws-backed server, shared by server.c (context, callback,
 * dispatch), req.c (request accessors and replies) and stream.c (streaming responses). */
#ifndef SPARKGATE_HTTP_SERVER_INT_H
#define SPARKGATE_HTTP_SERVER_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <poll.h>

#include <libwebsockets.h>
#include <uv.h>

#include "core/buf.h"
#include "http/http.h"
#include "http/http_int.h"

/* Per-wsi user data (lws allocates per_session_data_size for each wsi). For HTTP/1.1
 * keep-alive it outlives requests, so it only points at the current one. */
struct http__pss {
    struct http_req *req;
    struct http_stream *st;
};

struct http__kv {
    struct http__kv *next;
    char *name;
    char *value;
};

enum http__req_state {
    HTTP__REQ_BODY,     /* reading the body; the handler has not run */
    HTTP__REQ_HANDLER,  /* the handler owns it; no reply yet */
    HTTP__REQ_REPLYING, /* reply queued / being written */
    HTTP__REQ_ABORTING, /* the abort callback is running */
    HTTP__REQ_ZOMBIE,   /* client gone, no abort cb: kept until the handler replies */
};

struct http_server {
    uv_loop_t *loop;
    struct lws_context *ctx;
    struct lws_vhost *vh;
    int port;
    bool tls;
    struct http__router router;
    size_t max_body;
    char *cors_origins;
    char *web_root;
    char *docs_assets;     /* renderer files of /sparkweb/api/docs/ (swagger-ui-dist) */
    struct http_req *reqs; /* live requests (doubly linked) */
    struct http_stream *streams;
    struct lws_protocols protocols[2];
    /* HTTP/1.1 connections whose request is pending (or streaming) have POLLIN off (see
     * http__h1_hold); one timer polls them all for a peer hang-up. */
    uv_timer_t scan;
    struct pollfd *scan_fds;
    size_t scan_cap;
    /* teardown */
    bool closing;
    uv_timer_t closer;
    int close_phase;
    void (*done)(void *data);
    void *done_data;
};

struct http_req {
    struct http_server *srv;
    struct http_req *prev, *next;
    struct lws *wsi; /* NULL once the client is gone */
    struct http__pss *pss;
    enum http__req_state state;
    enum http_method method;
    bool h2;
    bool head; /* HEAD: no body in the reply */
    bool close_after;
    bool hdrs_sent;
    uint64_t t0_ns;
    char *path;
    char *query; /* "n=v\0n=v\0\0", decoded by lws */
    struct http__match match;
    struct buf body;
    struct http__kv *in_hdrs;  /* request headers looked up so far (cache) */
    struct http__kv *out_hdrs; /* added response headers */
    char *cors_origin;
    bool cors_done;
    http_abort_cb *abort_cb;
    void *abort_data;
    void *user;
    char peer[48];
    /* the reply */
    int status;
    char *content_type;
    unsigned char *resp; /* LWS_PRE headroom + body */
    size_t resp_len, resp_off;
};

/* server.c */
/* lws 4.1.6 does not read an HTTP/1.1 connection while a transaction is open
 * (LRS_DOING_TRANSACTION), so a peer that closes or pipelines makes the level-triggered poll
 * spin. While a reply is pending or a stream is open, POLLIN is turned off here, and the
 * server's scan timer detects hang-ups with one poll(POLLRDHUP) over all such sockets. */
void http__h1_hold(struct lws *wsi);
/* Turns POLLIN back on before the connection serves its next request. */
void http__h1_release(struct lws *wsi);

/* req.c */
struct http_req *http__req_new(struct http_server *srv, struct lws *wsi, struct http__pss *pss,
                               enum http_method m, const char *path);
void http__req_free(struct http_req *req);
/* Client vanished or server closing: runs the abort cb or turns req into a zombie. */
void http__req_detach(struct http_req *req);
/* WRITEABLE for a request with a queued reply; returns the lws callback result. */
int http__req_writeable(struct http_req *req);
/* Adds the CORS response headers for req (when its origin is allowed). */
int http__add_cors_headers(struct http_req *req, unsigned char **p, unsigned char *end);
/* Writes the added response headers (names lower-cased, as lws wants them). */
int http__add_out_headers(struct http__kv *kv, struct lws *wsi, unsigned char **p,
                          unsigned char *end);
void http__access_log(const struct http_req *req, int status);
void http__peer(struct lws *wsi, char *out, size_t outlen);

/* stream.c */
struct http_stream *http__stream_next(const struct http_stream *st);
/* The wsi of an open HTTP/1.1 stream (held, see http__h1_hold), else NULL. */
struct lws *http__stream_h1_wsi(const struct http_stream *st);
int http__stream_writeable(struct http_stream *st);
/* The wsi of a stream that was aborted and not yet closed, once (NULL afterwards, and for the
 * other streams). */
struct lws *http__stream_take_aborted(struct http_stream *st);
/* Runs the scan timer soon (aborted streams are closed there). */
void http__scan_soon(struct http_server *srv);
/* The client went away (CLOSED_HTTP) or the server is closing: close_cb runs, st is freed. */
void http__stream_gone(struct http_stream *st);

#endif
