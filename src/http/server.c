/* server.c: the lws context on the application's libuv loop (foreign-loop mode), the vhost
 * and its one HTTP protocol callback, request dispatch (router, CORS preflight, 404/405,
 * static files) and the asynchronous teardown that leaves the loop free of lws handles. */
#define LOG_MODULE "http"

#include "http/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libwebsockets.h>

#include "core/log.h"
#include "core/mem.h"
#include "http/server_int.h"

/* How often held HTTP/1.1 sockets are checked for a peer hang-up. */
#define HTTP__SCAN_MS 1000
/* Request header bytes per request (URL with ?token= plus Authorization and cookies). */
#define HTTP__HEADER_BYTES 8192
/* Requests whose headers may be held at once (each pending REST call holds one). */
#define HTTP__HEADER_POOL 1024

/* ---- dispatch ---------------------------------------------------------------------------- */

static void reply_not_found(struct http_req *req)
{
    http_reply_error(req, 404, req->path, "Not Found", "NotFoundException");
}

static bool is_service_worker(const char *file)
{
    const char *base = strrchr(file, '/');
    base = base ? base + 1 : file;
    return strcmp(base, "sw.js") == 0 || strcmp(base, "sparkweb-sw.js") == 0;
}

static bool serve_file(struct http_req *req, const char *file);

/* The API docs page's renderer files (swagger-ui-dist) come from their own directory,
 * http.docs_assets, not from the web root. */
#define HTTP__DOCS_ASSETS "/sparkweb/api/docs/assets/"

static bool docs_asset_type_ok(const char *file)
{
    const char *dot = strrchr(file, '.');
    return dot && (!strcmp(dot, ".js") || !strcmp(dot, ".css") || !strcmp(dot, ".png") ||
                   !strcmp(dot, ".map"));
}

/* Serves GET/HEAD /sparkweb/api/docs/assets/<file> from docs_assets; false when the path is
 * not one of them (req untouched). A missing file gets a 404 that says how to install it. */
static bool serve_docs_asset(struct http_req *req)
{
    struct http_server *srv = req->srv;
    size_t plen = strlen(HTTP__DOCS_ASSETS);
    if (strncmp(req->path, HTTP__DOCS_ASSETS, plen) != 0)
        return false;
    char file[4096];
    struct stat sb;
    /* the part after the prefix, mapped under docs_assets with the web root's checks */
    if (srv->docs_assets == NULL ||
        http__static_map(srv->docs_assets, req->path + plen - 1, file, sizeof(file)) < 0 ||
        !docs_asset_type_ok(file) || stat(file, &sb) < 0 || !S_ISREG(sb.st_mode)) {
        const char *msg = "no such API docs asset";
        if (srv->docs_assets == NULL || stat(srv->docs_assets, &sb) < 0 || !S_ISDIR(sb.st_mode)) {
            msg = "API docs renderer not installed: run npm ci in the source tree, or set "
                  "http.docs_assets to a swagger-ui-dist directory";
            log_warn("docs_assets_missing", "dir=%s", srv->docs_assets ? srv->docs_assets : "");
        }
        http_reply_error(req, 404, req->path, msg, "NotFoundException");
        return true;
    }
    return serve_file(req, file);
}

/* Serves a static file for GET/HEAD; false when there is none (req untouched). */
static bool serve_static(struct http_req *req)
{
    struct http_server *srv = req->srv;
    char file[4096];
    struct stat sb;
    if (serve_docs_asset(req))
        return true;
    if (http__static_map(srv->web_root, req->path, file, sizeof(file) - 16) < 0)
        return false;
    if (stat(file, &sb) < 0)
        return false;
    if (S_ISDIR(sb.st_mode)) {
        size_t l = strlen(file);
        snprintf(file + l, sizeof(file) - l, "%sindex.html", l && file[l - 1] == '/' ? "" : "/");
        if (stat(file, &sb) < 0)
            return false;
    }
    if (!S_ISREG(sb.st_mode))
        return false;
    return serve_file(req, file);
}

/* Hands the regular file to lws; false when the headers do not fit (req untouched). */
static bool serve_file(struct http_req *req, const char *file)
{
    unsigned char hdrs[1024], *p = hdrs, *end = hdrs + sizeof(hdrs);
    struct lws *wsi = req->wsi;
    if (lws_add_http_header_by_name(wsi, (const unsigned char *)"cache-control:",
                                    (const unsigned char *)"no-cache", 8, &p, end) ||
        http__add_cors_headers(req, &p, end))
        return false;
    /* a service worker (sw.js, sparkweb-sw.js) may control all of /sparkweb/, wherever it sits
     * below it (contract §4.6) */
    if (is_service_worker(file)) {
        if (lws_add_http_header_by_name(wsi, (const unsigned char *)"service-worker-allowed:",
                                        (const unsigned char *)"/sparkweb/", 10, &p, end))
            return false;
    }
    /* HTML pages: no plugins, no <base> rewriting the pages' relative URLs, and no framing
     * (clickjacking of the login forms). script-src stays open to the pages' inline modules
     * (simple.html must stay one self-contained file). */
    if (!strncmp(http__mime_type(file), "text/html", 9)) {
        static const char csp[] = "object-src 'none'; base-uri 'none'; frame-ancestors 'none'";
        if (lws_add_http_header_by_name(wsi, (const unsigned char *)"content-security-policy:",
                                        (const unsigned char *)csp, (int)sizeof(csp) - 1, &p, end))
            return false;
    }
    /* The file transfer is lws's from here; the request object is done. */
    http__access_log(req, 200);
    req->pss->req = NULL;
    http__req_free(req);
    int n =
        lws_serve_http_file(wsi, file, http__mime_type(file), (const char *)hdrs, (int)(p - hdrs));
    if (n < 0 || (n > 0 && lws_http_transaction_completed(wsi)))
        lws_set_timeout(wsi, PENDING_TIMEOUT_CLOSE_SEND, LWS_TO_KILL_ASYNC);
    return true;
}

/* OPTIONS without a route of its own: CORS preflight, or 204 with Allow. */
static void handle_options(struct http_req *req)
{
    struct http__match m;
    unsigned allow = 0;
    int rc = http__router_match(&req->srv->router, HTTP_OPTIONS, req->path, true, &m, &allow);
    http__match_cleanup(&m);
    const char *origin = http_req_header(req, "origin");
    if (origin) {
        const char *echo = http_req_cors_origin(req);
        if (!echo) {
            http_reply_error(req, 403, req->path, "CORS origin not allowed", "ForbiddenException");
            return;
        }
        const char *acrm = http_req_header(req, "access-control-request-method");
        const char *acrh = http_req_header(req, "access-control-request-headers");
        http_req_add_header(req, "Access-Control-Allow-Methods",
                            acrm ? acrm : "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS");
        if (acrh)
            http_req_add_header(req, "Access-Control-Allow-Headers", acrh);
        http_req_add_header(req, "Access-Control-Max-Age", "600");
        http_req_add_header(req, "Access-Control-Allow-Private-Network", "true");
        http_reply_empty(req, 204);
        return;
    }
    if (rc == -ENOENT || rc == -EINVAL) {
        reply_not_found(req);
        return;
    }
    char allow_s[96];
    http__allow_str(allow, allow_s, sizeof(allow_s));
    http_req_add_header(req, "Allow", allow_s);
    http_reply_empty(req, 204);
}

static void dispatch(struct http_req *req)
{
    struct http_server *srv = req->srv;
    unsigned allow = 0;
    req->state = HTTP__REQ_HANDLER;
    if (req->method == HTTP_OTHER) {
        http_reply_error(req, 501, req->path, "Not Implemented", "NotImplementedException");
        return;
    }
    int rc = http__router_match(&srv->router, req->method, req->path, true, &req->match, &allow);
    if (rc == 0) {
        const struct http__route *rt = req->match.route;
        rt->cb(req, rt->data); /* req may be gone after this */
        return;
    }
    if (req->method == HTTP_OPTIONS) {
        handle_options(req);
        return;
    }
    if (rc == -EINVAL) {
        http_reply_error(req, 400, req->path, "Bad Request", "BadRequestException");
        return;
    }
    if (rc == -ENOENT) {
        if ((req->method == HTTP_GET || req->method == HTTP_HEAD) && serve_static(req))
            return;
        reply_not_found(req);
        return;
    }
    char allow_s[96];
    http__allow_str(allow, allow_s, sizeof(allow_s));
    http_req_add_header(req, "Allow", allow_s);
    http_reply_error(req, 405, req->path, "Method Not Allowed", "NotAllowedException");
}

static enum http_method method_from_lws(int mi)
{
    switch (mi) {
    case LWSHUMETH_GET:
        return HTTP_GET;
    case LWSHUMETH_POST:
        return HTTP_POST;
    case LWSHUMETH_OPTIONS:
        return HTTP_OPTIONS;
    case LWSHUMETH_PUT:
        return HTTP_PUT;
    case LWSHUMETH_PATCH:
        return HTTP_PATCH;
    case LWSHUMETH_DELETE:
        return HTTP_DELETE;
    case LWSHUMETH_HEAD:
        return HTTP_HEAD;
    default:
        return HTTP_OTHER;
    }
}

/* Copies the decoded query fragments ("n=v") into one "n=v\0n=v\0\0" block. */
static char *snapshot_query(struct lws *wsi)
{
    int total = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_URI_ARGS);
    if (total <= 0)
        return NULL;
    size_t cap = (size_t)total + 64;
    char *q = mem_calloc(1, cap + 2);
    size_t o = 0;
    for (int i = 0; o < cap; i++) {
        int n = lws_hdr_copy_fragment(wsi, q + o, (int)(cap - o), WSI_TOKEN_HTTP_URI_ARGS, i);
        if (n < 0)
            break;
        o += (size_t)n + 1;
    }
    return q;
}

static int on_http(struct http_server *srv, struct lws *wsi, struct http__pss *pss, const char *uri,
                   size_t len)
{
    if (srv->closing || !pss)
        return -1;
    char *u = NULL;
    int ulen = 0;
    enum http_method m = method_from_lws(lws_http_get_uri_and_method(wsi, &u, &ulen));
    char *path = mem_strndup(uri ? uri : "/", uri ? len : 1);
    struct http_req *req = http__req_new(srv, wsi, pss, m, path);
    mem_free(path);
    pss->req = req;
    pss->st = NULL;
    req->query = snapshot_query(wsi);
    lws_set_timeout(wsi, NO_PENDING_TIMEOUT, 0);

    long long cl = -1;
    const char *cls = http_req_header(req, "content-length");
    if (cls) {
        char *endp;
        errno = 0;
        cl = strtoll(cls, &endp, 10);
        if (errno || *endp || cl < 0) {
            req->state = HTTP__REQ_HANDLER;
            req->close_after = true;
            http_reply_error(req, 400, req->path, "Bad Content-Length", "BadRequestException");
            return 0;
        }
    }
    if (cl > 0 && (unsigned long long)cl > srv->max_body) {
        req->state = HTTP__REQ_HANDLER;
        req->close_after = true;
        http_reply_error(req, 413, req->path, "Request Entity Too Large",
                         "PayloadTooLargeException");
        return 0;
    }
    if (cl > 0) {
        req->state = HTTP__REQ_BODY;
        return 0;
    }
    dispatch(req);
    return 0;
}

static int on_body(struct http__pss *pss, const void *in, size_t len)
{
    struct http_req *req = pss ? pss->req : NULL;
    if (!req || req->state != HTTP__REQ_BODY)
        return 0; /* rejected already (413) or no body expected: drop */
    if (buf_append(&req->body, in, len) < 0) {
        buf_cleanup(&req->body);
        buf_init(&req->body, 0);
        req->state = HTTP__REQ_HANDLER;
        req->close_after = true;
        http_reply_error(req, 413, req->path, "Request Entity Too Large",
                         "PayloadTooLargeException");
    }
    return 0;
}

static int on_body_done(struct http__pss *pss)
{
    struct http_req *req = pss ? pss->req : NULL;
    if (req && req->state == HTTP__REQ_BODY)
        dispatch(req);
    return 0;
}

static int http_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                   size_t len)
{
    struct http__pss *pss = user;
    struct lws_context *ctx = lws_get_context(wsi);
    struct http_server *srv = ctx ? lws_context_user(ctx) : NULL;

    switch (reason) {
    case LWS_CALLBACK_HTTP: {
        int rc = on_http(srv, wsi, pss, in, len);
        if (!rc && pss && pss->req && pss->req->state == HTTP__REQ_HANDLER && !pss->req->h2)
            http__h1_hold(wsi);
        return rc;
    }
    case LWS_CALLBACK_HTTP_BODY:
        return on_body(pss, in, len);
    case LWS_CALLBACK_HTTP_BODY_COMPLETION: {
        int rc = on_body_done(pss);
        if (!rc && pss && pss->req && pss->req->state == HTTP__REQ_HANDLER && !pss->req->h2)
            http__h1_hold(wsi);
        return rc;
    }
    case LWS_CALLBACK_HTTP_WRITEABLE:
        if (pss && pss->st)
            return http__stream_writeable(pss->st);
        if (pss && pss->req && pss->req->state == HTTP__REQ_REPLYING)
            return http__req_writeable(pss->req);
        return 0;
    case LWS_CALLBACK_CLOSED_HTTP:
        if (pss && pss->req)
            http__req_detach(pss->req);
        if (pss && pss->st)
            http__stream_gone(pss->st);
        if (pss) {
            pss->req = NULL;
            pss->st = NULL;
        }
        return 0;
    case LWS_CALLBACK_HTTP_FILE_COMPLETION:
        if (lws_http_transaction_completed(wsi))
            return -1;
        return 0;
    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

/* ---- HTTP/1.1 hang-up detection ---------------------------------------------------------- */

void http__h1_hold(struct lws *wsi)
{
    lws_rx_flow_control(wsi, 0);
}

void http__h1_release(struct lws *wsi)
{
    lws_rx_flow_control(wsi, 1);
}

static void scan_add(struct http_server *srv, size_t *n, struct lws *wsi)
{
    if (*n == srv->scan_cap) {
        srv->scan_cap = srv->scan_cap ? srv->scan_cap * 2 : 64;
        srv->scan_fds = mem_realloc(srv->scan_fds, srv->scan_cap * sizeof(*srv->scan_fds));
    }
    srv->scan_fds[*n].fd = (int)lws_get_socket_fd(wsi);
    srv->scan_fds[*n].events = POLLRDHUP;
    srv->scan_fds[*n].revents = 0;
    (*n)++;
}

static void scan_cb(uv_timer_t *t);

void http__scan_soon(struct http_server *srv)
{
    if (!srv->closing)
        uv_timer_start(&srv->scan, scan_cb, 0, HTTP__SCAN_MS);
}

/* Closes the streams aborted since the last scan, synchronously as below. One at a time, from
 * the head again after each: closing an HTTP/2 stream may end others of its connection. */
static void kill_aborted(struct http_server *srv)
{
    for (;;) {
        struct lws *wsi = NULL;
        for (struct http_stream *st = srv->streams; st && !wsi; st = http__stream_next(st))
            wsi = http__stream_take_aborted(st);
        if (wsi == NULL)
            return;
        lws_set_timeout(wsi, PENDING_TIMEOUT_CLOSE_SEND, LWS_TO_KILL_SYNC);
    }
}

static void scan_cb(uv_timer_t *t)
{
    struct http_server *srv = container_of(t, struct http_server, scan);
    kill_aborted(srv);
    size_t n = 0;
    for (struct http_req *r = srv->reqs; r; r = r->next) {
        if (r->wsi && !r->h2 && r->state == HTTP__REQ_HANDLER)
            scan_add(srv, &n, r->wsi);
    }
    for (struct http_stream *st = srv->streams; st; st = http__stream_next(st)) {
        struct lws *wsi = http__stream_h1_wsi(st);
        if (wsi)
            scan_add(srv, &n, wsi);
    }
    if (!n || poll(srv->scan_fds, n, 0) <= 0)
        return;
    /* Same order again: collect the wsi whose peer hung up, then close them (synchronously:
     * lws arms its own timers only from inside its service, so an async kill from this uv timer
     * would wait for unrelated I/O). Closing runs CLOSED_HTTP, which edits the lists. */
    struct lws **dead = mem_alloc(n * sizeof(*dead));
    size_t i = 0, n_dead = 0;
    for (struct http_req *r = srv->reqs; r; r = r->next) {
        if (r->wsi && !r->h2 && r->state == HTTP__REQ_HANDLER) {
            if (srv->scan_fds[i++].revents & (POLLRDHUP | POLLHUP | POLLERR))
                dead[n_dead++] = r->wsi;
        }
    }
    for (struct http_stream *st = srv->streams; st; st = http__stream_next(st)) {
        struct lws *wsi = http__stream_h1_wsi(st);
        if (wsi && (srv->scan_fds[i++].revents & (POLLRDHUP | POLLHUP | POLLERR)))
            dead[n_dead++] = wsi;
    }
    for (i = 0; i < n_dead; i++)
        lws_set_timeout(dead[i], PENDING_TIMEOUT_CLOSE_SEND, LWS_TO_KILL_SYNC);
    mem_free(dead);
}

/* ---- lifecycle --------------------------------------------------------------------------- */

static void lws_log_emit(int level, const char *line)
{
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        n--;
    /* lws 4.1.6 complains about timeouts on h2 streams made immortal by lws_http_mark_sse();
     * harmless, and one line per request would flood the log. */
    if ((level & LLL_ERR) && !strstr(line, "on immortal stream"))
        log_warn("lws", "level=err msg=\"%.*s\"", (int)n, line);
    else
        log_debug("lws", "level=warn msg=\"%.*s\"", (int)n, line);
}

/* "host:port", "[v6]:port", ":port". host out is "" for any address. */
static int parse_listen(const char *s, char *host, size_t hostlen, int *port)
{
    const char *colon;
    size_t hl;
    if (!s)
        return -EINVAL;
    if (s[0] == '[') {
        const char *rb = strchr(s, ']');
        if (!rb || rb[1] != ':')
            return -EINVAL;
        hl = (size_t)(rb - s - 1);
        if (hl >= hostlen)
            return -EINVAL;
        memcpy(host, s + 1, hl);
        colon = rb + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon)
            return -EINVAL;
        hl = (size_t)(colon - s);
        if (hl >= hostlen || memchr(s, ':', hl))
            return -EINVAL;
        memcpy(host, s, hl);
    }
    host[hl] = '\0';
    char *endp;
    errno = 0;
    long p = strtol(colon + 1, &endp, 10);
    if (errno || endp == colon + 1 || *endp || p < 0 || p > 65535)
        return -EINVAL;
    *port = (int)p;
    return 0;
}

struct http_server *http_server_new(const struct http_server_opts *opts, char *err, size_t errlen)
{
    char host[64];
    int port;
    unsigned char a6[16];
    if (!opts || !opts->loop || parse_listen(opts->listen, host, sizeof(host), &port) < 0) {
        snprintf(err, errlen, "bad listen address '%s'", opts && opts->listen ? opts->listen : "");
        return NULL;
    }
    if (!strcmp(host, "localhost"))
        snprintf(host, sizeof(host), "127.0.0.1");
    bool any = !host[0] || !strcmp(host, "*") || !strcmp(host, "0.0.0.0") || !strcmp(host, "::");
    bool v4 = !any && inet_pton(AF_INET, host, a6) == 1;
    if (!any && !v4 && inet_pton(AF_INET6, host, a6) != 1) {
        snprintf(err, errlen, "listen host must be a numeric address: '%s'", host);
        return NULL;
    }
    bool tls = opts->tls_cert && opts->tls_cert[0] && opts->tls_key && opts->tls_key[0];
    if (tls && (access(opts->tls_cert, R_OK) || access(opts->tls_key, R_OK))) {
        snprintf(err, errlen, "tls files unreadable: %s", strerror(errno));
        return NULL;
    }

    struct http_server *srv = mem_calloc(1, sizeof(*srv));
    srv->loop = opts->loop;
    srv->tls = tls;
    srv->max_body = opts->max_body;
    srv->cors_origins = mem_strdup(opts->cors_origins ? opts->cors_origins : "");
    srv->web_root = opts->web_root && opts->web_root[0] ? mem_strdup(opts->web_root) : NULL;
    srv->docs_assets =
        opts->docs_assets && opts->docs_assets[0] ? mem_strdup(opts->docs_assets) : NULL;
    http__router_init(&srv->router);
    srv->protocols[0].name = "http";
    srv->protocols[0].callback = http_cb;
    srv->protocols[0].per_session_data_size = sizeof(struct http__pss);

    lws_set_log_level(LLL_ERR | LLL_WARN, lws_log_emit);

    void *loops[1] = { srv->loop };
    struct lws_context_creation_info ci;
    memset(&ci, 0, sizeof(ci));
    ci.options = LWS_SERVER_OPTION_LIBUV | LWS_SERVER_OPTION_EXPLICIT_VHOSTS |
                 (tls ? LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT : 0);
    ci.foreign_loops = loops;
    ci.user = srv;
    ci.pcontext = &srv->ctx;
    ci.port = CONTEXT_PORT_NO_LISTEN;
    /* Header tables are pooled and never shrink: cap the pool so a burst of connections (10k
     * EventSources reconnecting) cannot pin 10k x 8 KB. Streams give theirs back at once;
     * connections beyond the cap wait for a free table. */
    ci.max_http_header_data = HTTP__HEADER_BYTES;
    ci.max_http_header_pool = HTTP__HEADER_POOL;
    srv->ctx = lws_create_context(&ci);
    if (!srv->ctx) {
        snprintf(err, errlen, "lws_create_context failed (is libwebsockets-evlib-uv installed?)");
        goto fail;
    }
    uv_timer_init(srv->loop, &srv->closer);
    uv_timer_init(srv->loop, &srv->scan);

    struct lws_context_creation_info vi;
    memset(&vi, 0, sizeof(vi));
    vi.port = port;
    vi.iface = any ? NULL : host;
    vi.protocols = srv->protocols;
    vi.vhost_name = "sparkgate";
    vi.keepalive_timeout = 60;
    vi.timeout_secs = 30;
    vi.options =
        LWS_SERVER_OPTION_VH_H2_HALF_CLOSED_LONG_POLL | (v4 ? LWS_SERVER_OPTION_DISABLE_IPV6 : 0);
    if (tls) {
        vi.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
        vi.ssl_cert_filepath = opts->tls_cert;
        vi.ssl_private_key_filepath = opts->tls_key;
        vi.alpn = "h2,http/1.1";
    }
    srv->vh = lws_create_vhost(srv->ctx, &vi);
    if (!srv->vh) {
        snprintf(err, errlen, "cannot listen on %s (in use, bad address or bad TLS files)",
                 opts->listen);
        goto fail;
    }
    srv->port = lws_get_vhost_listen_port(srv->vh);
    uv_timer_start(&srv->scan, scan_cb, HTTP__SCAN_MS, HTTP__SCAN_MS);
    log_info("listen", "addr=%s port=%d tls=%d", opts->listen, srv->port, tls ? 1 : 0);
    return srv;

fail:
    if (srv->ctx) {
        /* Nothing was served yet; run the same async teardown, without callbacks. */
        http_server_free(srv, NULL, NULL);
        return NULL;
    }
    http__router_cleanup(&srv->router);
    mem_free(srv->cors_origins);
    mem_free(srv->web_root);
    mem_free(srv->docs_assets);
    mem_free(srv);
    return NULL;
}

int http_server_port(const struct http_server *srv)
{
    return srv->port;
}

int http_route(struct http_server *srv, enum http_method method, const char *pattern,
               http_handler_cb *cb, void *data)
{
    int rc = http__router_add(&srv->router, method, pattern, cb, data);
    /* one line per route: tests/integration/openapi.test.mjs compares them with docs */
    if (rc == 0)
        log_debug("route", "method=%s pattern=%s", http_method_str(method), pattern);
    return rc;
}

/* ---- teardown ---------------------------------------------------------------------------- */

static void scan_closed(uv_handle_t *h)
{
    struct http_server *srv = container_of((uv_timer_t *)h, struct http_server, scan);
    void (*done)(void *) = srv->done;
    void *data = srv->done_data;
    http__router_cleanup(&srv->router);
    mem_free(srv->scan_fds);
    mem_free(srv->cors_origins);
    mem_free(srv->web_root);
    mem_free(srv->docs_assets);
    mem_free(srv);
    if (done)
        done(data);
}

static void closer_closed(uv_handle_t *h)
{
    struct http_server *srv = container_of((uv_timer_t *)h, struct http_server, closer);
    uv_close((uv_handle_t *)&srv->scan, scan_closed);
}

struct walk_state {
    void *ctx;
    int n;
};

static void walk_cb(uv_handle_t *h, void *arg)
{
    struct walk_state *ws = arg;
    if (h->data == ws->ctx)
        ws->n++;
}

/* lws's static loop handles (idle, timer) carry the context in ->data; they are closed only
 * after every wsi handle is closed. When none is left, a second lws_context_destroy() frees
 * the context (lws 4.1.6 never finishes a foreign-loop destroy by itself). */
static void closer_cb(uv_timer_t *t)
{
    struct http_server *srv = container_of(t, struct http_server, closer);
    if (srv->close_phase == 0) {
        while (srv->reqs)
            http__req_detach(srv->reqs);
        while (srv->streams)
            http__stream_gone(srv->streams);
        srv->close_phase = 1;
        lws_context_destroy(srv->ctx);
        uv_timer_start(&srv->closer, closer_cb, 1, 1);
        return;
    }
    if (srv->ctx) {
        struct walk_state ws = { srv->ctx, 0 };
        uv_walk(srv->loop, walk_cb, &ws);
        if (ws.n)
            return;
        lws_context_destroy(srv->ctx);
        if (srv->ctx)
            return;
    }
    uv_timer_stop(&srv->closer);
    uv_close((uv_handle_t *)&srv->closer, closer_closed);
}

void http_server_free(struct http_server *srv, void (*done)(void *data), void *data)
{
    if (!srv || srv->closing)
        return;
    srv->closing = true;
    if (uv_is_active((uv_handle_t *)&srv->scan))
        uv_timer_stop(&srv->scan);
    srv->done = done;
    srv->done_data = data;
    log_info("stop", "port=%d", srv->port);
    uv_timer_start(&srv->closer, closer_cb, 0, 0);
}
