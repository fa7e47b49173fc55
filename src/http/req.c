/* req.c: one HTTP request: accessors, header lookup, the reply (status line, headers, body
 * written from the WRITEABLE callback, one lws_write per callback), abort handling and the
 * access log line. */
#define LOG_MODULE "http"

#include "http/http.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <libwebsockets.h>

#include "core/log.h"
#include "core/mem.h"
#include "http/server_int.h"

/* Body bytes handed to one lws_write (below the default h2 frame size). */
#define HTTP__WRITE_CHUNK 16000

void http__peer(struct lws *wsi, char *out, size_t outlen)
{
    out[0] = '\0';
    struct lws *nwsi = lws_get_network_wsi(wsi);
    lws_get_peer_simple(nwsi ? nwsi : wsi, out, outlen);
    if (!strncmp(out, "::ffff:", 7))
        memmove(out, out + 7, strlen(out + 7) + 1);
}

struct http_req *http__req_new(struct http_server *srv, struct lws *wsi, struct http__pss *pss,
                               enum http_method m, const char *path)
{
    struct http_req *req = mem_calloc(1, sizeof(*req));
    req->srv = srv;
    req->wsi = wsi;
    req->pss = pss;
    req->method = m;
    req->head = m == HTTP_HEAD;
    req->h2 = lws_get_network_wsi(wsi) != wsi;
    req->path = mem_strdup(path);
    req->t0_ns = uv_hrtime();
    buf_init(&req->body, srv->max_body);
    http__peer(wsi, req->peer, sizeof(req->peer));
    req->next = srv->reqs;
    if (srv->reqs)
        srv->reqs->prev = req;
    srv->reqs = req;
    return req;
}

static void kv_free(struct http__kv *kv)
{
    while (kv) {
        struct http__kv *next = kv->next;
        mem_free(kv->name);
        if (kv->value)
            explicit_bzero(kv->value, strlen(kv->value)); /* Authorization, cookies */
        mem_free(kv->value);
        mem_free(kv);
        kv = next;
    }
}

static void req_unlink(struct http_req *req)
{
    if (!req->srv)
        return;
    if (req->prev)
        req->prev->next = req->next;
    else if (req->srv->reqs == req)
        req->srv->reqs = req->next;
    if (req->next)
        req->next->prev = req->prev;
    req->prev = req->next = NULL;
    req->srv = NULL;
}

void http__req_free(struct http_req *req)
{
    req_unlink(req);
    if (req->pss && req->pss->req == req)
        req->pss->req = NULL;
    http__match_cleanup(&req->match);
    /* bodies and query strings carry passwords, tokens and tickets: wipe before freeing */
    if (req->body.ptr)
        explicit_bzero(req->body.ptr, req->body.len);
    buf_cleanup(&req->body);
    if (req->query)
        explicit_bzero(req->query, strlen(req->query));
    kv_free(req->in_hdrs);
    kv_free(req->out_hdrs);
    mem_free(req->path);
    mem_free(req->query);
    mem_free(req->cors_origin);
    mem_free(req->content_type);
    mem_free(req->resp);
    mem_free(req);
}

void http__access_log(const struct http_req *req, int status)
{
    double ms = (double)(uv_hrtime() - req->t0_ns) / 1e6;
    log_debug("request", "method=%s path=%s status=%d ms=%.1f peer=%s h2=%d",
              http_method_str(req->method), req->path, status, ms, req->peer, req->h2 ? 1 : 0);
}

void http__req_detach(struct http_req *req)
{
    enum http__req_state st = req->state;
    if (st == HTTP__REQ_ABORTING || st == HTTP__REQ_ZOMBIE)
        return;
    if (req->pss && req->pss->req == req)
        req->pss->req = NULL;
    req->pss = NULL;
    req->wsi = NULL;
    req_unlink(req);
    if (st != HTTP__REQ_HANDLER) {
        /* Reading the body, or the reply was already handed over: nobody else holds req. */
        log_debug("request", "method=%s path=%s status=499 peer=%s msg=\"client gone\"",
                  http_method_str(req->method), req->path, req->peer);
        http__req_free(req);
        return;
    }
    log_debug("request", "method=%s path=%s status=499 peer=%s msg=\"client gone\"",
              http_method_str(req->method), req->path, req->peer);
    if (req->abort_cb) {
        req->state = HTTP__REQ_ABORTING;
        req->abort_cb(req, req->abort_data);
        http__req_free(req);
        return;
    }
    /* The handler still holds req and will reply; the reply is dropped then. */
    req->state = HTTP__REQ_ZOMBIE;
}

/* ---- accessors --------------------------------------------------------------------------- */

enum http_method http_req_method(const struct http_req *req)
{
    return req->method;
}

const char *http_req_path(const struct http_req *req)
{
    return req->path;
}

const char *http_req_param(const struct http_req *req, const char *name)
{
    return http__match_param(&req->match, name);
}

const char *http_req_query(const struct http_req *req, const char *name)
{
    if (!req->query || !name)
        return NULL;
    size_t nlen = strlen(name);
    for (const char *p = req->query; *p; p += strlen(p) + 1) {
        if (!strncmp(p, name, nlen) && (p[nlen] == '=' || p[nlen] == '\0'))
            return p[nlen] == '=' ? p + nlen + 1 : p + nlen;
    }
    return NULL;
}

/* Known header token for a lower-case name, or -1. */
static int header_token(const char *lname)
{
    char want[80];
    int n = snprintf(want, sizeof(want), "%s:", lname);
    if (n < 0 || (size_t)n >= sizeof(want))
        return -1;
    for (int t = 0; t < WSI_TOKEN_COUNT; t++) {
        const unsigned char *s = lws_token_to_string((enum lws_token_indexes)t);
        if (s && !strcmp((const char *)s, want))
            return t;
    }
    return -1;
}

const char *http_req_header(const struct http_req *req, const char *name)
{
    char lname[72];
    size_t n = name ? strlen(name) : 0;
    if (!n || n >= sizeof(lname))
        return NULL;
    for (size_t i = 0; i <= n; i++)
        lname[i] = (char)tolower((unsigned char)name[i]);
    for (const struct http__kv *kv = req->in_hdrs; kv; kv = kv->next) {
        if (!strcmp(kv->name, lname))
            return kv->value;
    }
    if (!req->wsi)
        return NULL;
    char *val = NULL;
    int tok = header_token(lname);
    if (tok >= 0) {
        int len = lws_hdr_total_length(req->wsi, (enum lws_token_indexes)tok);
        if (len <= 0)
            return NULL;
        val = mem_alloc((size_t)len + 1);
        if (lws_hdr_copy(req->wsi, val, len + 1, (enum lws_token_indexes)tok) < 0)
            val[0] = '\0';
    } else {
        char cname[80];
        int cn = snprintf(cname, sizeof(cname), "%s:", lname);
        int len = lws_hdr_custom_length(req->wsi, cname, cn);
        if (len < 0)
            return NULL;
        val = mem_alloc((size_t)len + 1);
        if (lws_hdr_custom_copy(req->wsi, val, len + 1, cname, cn) < 0)
            val[0] = '\0';
    }
    struct http__kv *kv = mem_calloc(1, sizeof(*kv));
    kv->name = mem_strdup(lname);
    kv->value = val;
    struct http_req *mreq = (struct http_req *)req; /* the cache is not observable state */
    kv->next = mreq->in_hdrs;
    mreq->in_hdrs = kv;
    return val;
}

const char *http_req_body(const struct http_req *req, size_t *len)
{
    if (len)
        *len = req->body.len;
    return buf_cstr(&req->body);
}

const char *http_req_peer(const struct http_req *req)
{
    return req->peer;
}

bool http_req_is_h2(const struct http_req *req)
{
    return req->h2;
}

void http_req_set_data(struct http_req *req, void *data)
{
    req->user = data;
}

void *http_req_get_data(const struct http_req *req)
{
    return req->user;
}

void http_req_on_abort(struct http_req *req, http_abort_cb *cb, void *data)
{
    req->abort_cb = cb;
    req->abort_data = data;
}

const char *http_req_cors_origin(const struct http_req *req)
{
    if (!req->cors_done) {
        struct http_req *mreq = (struct http_req *)req;
        const char *origin = http_req_header(req, "origin");
        mreq->cors_done = true;
        if (origin && req->srv && http__cors_allowed(req->srv->cors_origins, origin))
            mreq->cors_origin = mem_strdup(origin);
    }
    return req->cors_origin;
}

void http_req_add_header(struct http_req *req, const char *name, const char *value)
{
    if (!name || !value || req->state == HTTP__REQ_ZOMBIE)
        return;
    struct http__kv *kv = mem_calloc(1, sizeof(*kv)), **tail = &req->out_hdrs;
    kv->name = mem_strdup(name);
    kv->value = mem_strdup(value);
    while (*tail)
        tail = &(*tail)->next;
    *tail = kv;
}

/* ---- replies ----------------------------------------------------------------------------- */

void http_reply(struct http_req *req, int status, const char *content_type, const void *body,
                size_t len)
{
    if (req->state == HTTP__REQ_ZOMBIE) {
        http__req_free(req);
        return;
    }
    if (req->state != HTTP__REQ_HANDLER) {
        log_error("reply", "path=%s state=%d msg=\"reply to a completed or aborted request\"",
                  req->path, (int)req->state);
        return;
    }
    req->state = HTTP__REQ_REPLYING;
    req->status = status;
    req->content_type = content_type ? mem_strdup(content_type) : NULL;
    req->resp = mem_alloc(LWS_PRE + len + 1);
    if (len)
        memcpy(req->resp + LWS_PRE, body, len);
    req->resp_len = len;
    req->resp_off = 0;
    if (!req->h2)
        http__h1_release(req->wsi); /* a flow-controlled h1 wsi gets no WRITEABLE in lws 4.1.6 */
    lws_callback_on_writable(req->wsi);
}

void http_reply_json(struct http_req *req, int status, json_t *body)
{
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (!text) {
        http_reply_error(req, 500, req->path, "Exception", "JsonException");
        return;
    }
    http_reply(req, status, "application/json", text, strlen(text));
    free(text);
}

void http_reply_error(struct http_req *req, int status, const char *resource, const char *message,
                      const char *exception)
{
    json_t *o = json_pack("{s:s, s:s, s:s}", "resource", resource ? resource : "", "message",
                          message ? message : "", "exception", exception ? exception : "");
    http_reply_json(req, status, o);
}

void http_reply_empty(struct http_req *req, int status)
{
    http_reply(req, status, NULL, NULL, 0);
}

int http__add_cors_headers(struct http_req *req, unsigned char **p, unsigned char *end)
{
    const char *o = http_req_cors_origin(req);
    if (!o)
        return 0;

    static const struct {
        const char *name;
        const char *value;
    } fixed[] = {
        { "access-control-allow-credentials:", "true" },
        { "vary:", "Origin" },
        { "access-control-expose-headers:", "Retry-After" },
    };

    if (lws_add_http_header_by_name(req->wsi, (const unsigned char *)"access-control-allow-origin:",
                                    (const unsigned char *)o, (int)strlen(o), p, end))
        return -1;
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
        if (lws_add_http_header_by_name(req->wsi, (const unsigned char *)fixed[i].name,
                                        (const unsigned char *)fixed[i].value,
                                        (int)strlen(fixed[i].value), p, end))
            return -1;
    }
    return 0;
}

int http__add_out_headers(struct http__kv *kv, struct lws *wsi, unsigned char **p,
                          unsigned char *end)
{
    for (; kv; kv = kv->next) {
        char n[128];
        size_t l = strlen(kv->name);
        if (l + 2 > sizeof(n))
            continue;
        for (size_t i = 0; i < l; i++)
            n[i] = (char)tolower((unsigned char)kv->name[i]);
        n[l] = ':';
        n[l + 1] = '\0';
        if (lws_add_http_header_by_name(wsi, (const unsigned char *)n,
                                        (const unsigned char *)kv->value, (int)strlen(kv->value), p,
                                        end))
            return -1;
    }
    return 0;
}

static int write_headers(struct http_req *req)
{
    unsigned char buf[LWS_PRE + 4096], *start = buf + LWS_PRE, *p = start,
                                       *end = buf + sizeof(buf) - 1;
    struct lws *wsi = req->wsi;
    bool no_body = req->status == 204 || req->status == 304 || req->status < 200;
    if (lws_add_http_header_status(wsi, (unsigned)req->status, &p, end))
        return -1;
    if (req->content_type && lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE,
                                                          (const unsigned char *)req->content_type,
                                                          (int)strlen(req->content_type), &p, end))
        return -1;
    if (!no_body && lws_add_http_header_content_length(wsi, req->resp_len, &p, end))
        return -1;
    if (req->content_type && !strncmp(req->content_type, "application/json", 16) &&
        lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CACHE_CONTROL,
                                     (const unsigned char *)"no-store", 8, &p, end))
        return -1;
    if (http__add_cors_headers(req, &p, end) || http__add_out_headers(req->out_hdrs, wsi, &p, end))
        return -1;
    if (req->close_after && !req->h2 &&
        lws_add_http_header_by_token(wsi, WSI_TOKEN_CONNECTION, (const unsigned char *)"close", 5,
                                     &p, end))
        return -1;
    if (lws_finalize_http_header(wsi, &p, end))
        return -1;
    bool last = no_body || req->head || req->resp_len == 0;
    int flags = LWS_WRITE_HTTP_HEADERS | (last ? LWS_WRITE_H2_STREAM_END : 0);
    if (lws_write(wsi, start, (size_t)(p - start), (enum lws_write_protocol)flags) < 0)
        return -1;
    req->hdrs_sent = true;
    if (last)
        req->resp_off = req->resp_len;
    return 0;
}

int http__req_writeable(struct http_req *req)
{
    struct lws *wsi = req->wsi;
    if (!req->hdrs_sent) {
        if (write_headers(req) < 0)
            return -1;
    } else if (req->resp_off < req->resp_len) {
        size_t n = req->resp_len - req->resp_off;
        if (n > HTTP__WRITE_CHUNK)
            n = HTTP__WRITE_CHUNK;
        bool last = req->resp_off + n == req->resp_len;
        if (lws_write(wsi, req->resp + LWS_PRE + req->resp_off, n,
                      last ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) < 0)
            return -1;
        req->resp_off += n;
    }
    if (req->resp_off < req->resp_len) {
        lws_callback_on_writable(wsi);
        return 0;
    }
    bool close = req->close_after, h2 = req->h2;
    http__access_log(req, req->status);
    http__req_free(req);
    if (close)
        return -1;
    if (!h2)
        http__h1_release(wsi);
    return lws_http_transaction_completed(wsi) ? -1 : 0;
}
