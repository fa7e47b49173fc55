/* http.h: the browser-facing HTTP server: libwebsockets on the shared libuv loop (foreign-loop
 * mode), HTTP/1.1, and HTTP/2 when TLS is configured. Owns the router (method + path pattern ->
 * handler), request bodies with a size limit (413), CORS for the REST API (preflight answers and
 * an origin allow-list), JSON replies and the contract's error model
 * (`{"resource","message","exception"}`), long-lived streaming responses (used by sse/), and
 * static files from the web root. Holds no business logic. Loop thread only.
 * Specs: RFC 9110/9112/9113, Fetch (CORS), SparkWeb contract §0.5-§0.7. */
#ifndef SPARKGATE_HTTP_HTTP_H
#define SPARKGATE_HTTP_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>
#include <uv.h>

struct http_server;
struct http_req;
struct http_stream;

enum http_method {
    HTTP_GET,
    HTTP_POST,
    HTTP_PUT,
    HTTP_DELETE,
    HTTP_PATCH,
    HTTP_HEAD,
    HTTP_OPTIONS,
    HTTP_OTHER,
};

const char *http_method_str(enum http_method m);

struct http_server_opts {
    uv_loop_t *loop;
    const char *listen;   /* "host:port" or "[v6]:port"; port 0 picks a free one */
    const char *tls_cert; /* PEM paths; both set -> HTTPS with ALPN h2,http/1.1 */
    const char *tls_key;
    size_t max_body;          /* bytes; larger bodies get 413 */
    const char *cors_origins; /* comma-separated allow-list; "*" = any; "" = same-origin only */
    const char *web_root;     /* static files directory; NULL/"" = no static files */
    /* directory served at /sparkweb/api/docs/assets/ (.js .css .png .map only: the API docs
     * page's renderer, swagger-ui-dist); NULL/"" = none (those paths answer 404) */
    const char *docs_assets;
};

/* Creates the server and starts listening. NULL with a message in err on failure (bad address,
 * port in use, TLS files unreadable, lws/libuv failure). */
struct http_server *http_server_new(const struct http_server_opts *opts, char *err, size_t errlen);
/* Stops listening, aborts open requests (their abort callbacks run) and closes streams (their
 * close callbacks run), then releases everything once libuv has closed the handles; done(data)
 * runs after that, on the loop. */
void http_server_free(struct http_server *srv, void (*done)(void *data), void *data);
/* The port actually bound (useful with port 0). */
int http_server_port(const struct http_server *srv);

/* A handler runs once the whole body has arrived. It replies now or later (exactly once), or
 * turns the request into a stream. */
typedef void http_handler_cb(struct http_req *req, void *data);

/* Adds a route. pattern is a path where "{name}" matches one non-empty segment (URL-decoded,
 * available via http_req_param) and a final "{name*}" matches the rest of the path (may contain
 * '/'). Literal segments win over parameters when both match. A path that matches a pattern
 * but not the method gets 405 with an Allow header; a path that matches nothing gets 404 (both
 * with the JSON error body), or a static file when one exists under web_root.
 * 0, or -EINVAL for a malformed pattern, -EEXIST for a duplicate method+pattern. */
int http_route(struct http_server *srv, enum http_method method, const char *pattern,
               http_handler_cb *cb, void *data);

/* Request accessors. Strings are owned by the request and valid until it completes. */
enum http_method http_req_method(const struct http_req *req);
const char *http_req_path(const struct http_req *req); /* decoded path, no query */
const char *http_req_param(const struct http_req *req, const char *name); /* NULL if absent */
const char *http_req_query(const struct http_req *req, const char *name); /* decoded, NULL */
/* Header by case-insensitive name, NULL when absent. */
const char *http_req_header(const struct http_req *req, const char *name);
/* The body (NUL-terminated; may contain NULs, hence len). Never NULL ("" when none). */
const char *http_req_body(const struct http_req *req, size_t *len);
/* The peer's address as text ("127.0.0.1", "::1"). */
const char *http_req_peer(const struct http_req *req);
/* True when the request arrived over HTTP/2. */
bool http_req_is_h2(const struct http_req *req);
/* An opaque per-request slot for the handler's own state. */
void http_req_set_data(struct http_req *req, void *data);
void *http_req_get_data(const struct http_req *req);

/* Adds a response header (before replying or streaming). */
void http_req_add_header(struct http_req *req, const char *name, const char *value);

/* Completing a request: exactly one of these, exactly once. They never fail from the caller's
 * point of view (a vanished client is handled inside). */
void http_reply(struct http_req *req, int status, const char *content_type, const void *body,
                size_t len);
/* Replies with the JSON text of body (Content-Type: application/json). Consumes body. */
void http_reply_json(struct http_req *req, int status, json_t *body);
/* Replies with the contract's ErrorResponse {"resource","message","exception"}. */
void http_reply_error(struct http_req *req, int status, const char *resource, const char *message,
                      const char *exception);
/* Replies with an empty body. */
void http_reply_empty(struct http_req *req, int status);

/* A handler that completes later registers this: if the client goes away first, cb runs once
 * and the request is gone after it returns (no reply is allowed then). */
typedef void http_abort_cb(struct http_req *req, void *data);
void http_req_on_abort(struct http_req *req, http_abort_cb *cb, void *data);

/* Streaming responses (SSE). Turns req into a stream: sends the status and headers (plus those
 * added with http_req_add_header) with no Content-Length; bytes then go out as they are written.
 * max_queue bounds the bytes waiting for a slow client. After this call req is no longer valid;
 * the stream is. close_cb runs exactly once, when the stream ends for any reason (client gone,
 * http_stream_close done, server freed); the stream is invalid after it returns. */
typedef void http_stream_close_cb(struct http_stream *st, void *data);
struct http_stream *http_req_stream(struct http_req *req, int status, const char *content_type,
                                    size_t max_queue, http_stream_close_cb *close_cb, void *data);
/* Queues bytes (copied). 0, -ENOBUFS when the queue would pass max_queue (nothing queued),
 * -EPIPE when the stream is closing. */
int http_stream_write(struct http_stream *st, const void *data, size_t len);
/* Bytes queued and not yet handed to the socket. */
size_t http_stream_queued(const struct http_stream *st);
/* Calls cb once, from the write path, as soon as at most `low` bytes remain queued after a
 * write to the socket (a writer that paces itself waits for this). One registration at a
 * time: a new one replaces the old. Never called once the stream is closing. cb may write to
 * the stream and close or abort it. */
typedef void http_stream_drain_cb(struct http_stream *st, void *data);
void http_stream_on_drain(struct http_stream *st, size_t low, http_stream_drain_cb *cb, void *data);
/* Ends the stream after queued bytes are flushed; close_cb follows. Idempotent. */
void http_stream_close(struct http_stream *st);
/* Ends the stream now, for a peer that stopped reading: the queued bytes are freed at once and
 * the connection is closed with a reset (HTTP/1.1; an HTTP/2 stream is reset) on the next loop
 * iteration, however full the socket is; close_cb follows then. Idempotent, also after
 * http_stream_close. */
void http_stream_abort(struct http_stream *st);
/* The peer address of the stream's connection. */
const char *http_stream_peer(const struct http_stream *st);

/* The origin to echo in Access-Control-Allow-Origin for this request according to the
 * allow-list, or NULL when the request has no Origin or it is not allowed. */
const char *http_req_cors_origin(const struct http_req *req);

/* Maps a negative errno from lower layers to an HTTP status (-ETIMEDOUT 504, -EACCES 401,
 * -ENOENT 404, -EINVAL 400, -EMSGSIZE 413, -EAGAIN 503, -ECONNRESET/-ENOTCONN 502...). */
int http_status_from_errno(int err);

#endif
