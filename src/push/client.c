/* client.c: outgoing HTTP(S) POSTs through one libcurl multi handle driven by the libuv loop
 * (curl's multi_socket API: a uv_poll per socket curl wants watched, one uv_timer for curl's own
 * deadline). No thread per request and no blocking lookup: the caller passes the address it has
 * already resolved and checked, and curl connects to exactly that (CURLOPT_RESOLVE). HTTP/2 is
 * negotiated by ALPN when the push service offers it (CURL_HTTP_VERSION_2TLS), and requests to
 * one origin share a connection (CURLOPT_PIPEWAIT). */
#define LOG_MODULE "push"

#include "push/push_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "core/log.h"
#include "core/mem.h"

#define RESPONSE_MAX 4096 /* bytes of a response body we read (and discard) */

struct push_client {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t timer;
    uint64_t timeout_ms;
    char *ca_file;
    bool allow_http;
    bool closing;
    int open_handles;       /* uv handles not yet closed (timer + polls) */
    struct push_http *reqs; /* transfers in the multi handle */
    struct sock_ctx *socks; /* sockets being watched */
};

struct push_http {
    struct push_http *next, *prev;
    struct push_client *c;
    CURL *easy;
    struct curl_slist *headers;
    struct curl_slist *resolve;
    push_http_cb *cb;
    void *data;
    int64_t retry_after_ms;
    size_t body_read;
    char error[CURL_ERROR_SIZE];
    /* GET for other modules (push_fetch_start): the body kept, up to max_body bytes */
    push_fetch_cb *fetch_cb;
    char *body;
    size_t max_body;
    size_t body_cap; /* bytes allocated at body */
    bool truncated;
    char content_type[128];
    struct sockaddr_storage pinned; /* the only address a socket may be opened to */
    socklen_t pinned_len;
};

/* One socket curl asked us to watch. */
struct sock_ctx {
    uv_poll_t poll;
    struct sock_ctx *next, *prev;
    struct push_client *c;
    curl_socket_t fd;
};

static void client_maybe_free(struct push_client *c)
{
    if (!c->closing || c->open_handles > 0)
        return;
    mem_free(c->ca_file);
    mem_free(c);
}

static void handle_closed(uv_handle_t *h)
{
    struct push_client *c = h->data;
    if (h->type == UV_POLL)
        mem_free(container_of((uv_poll_t *)h, struct sock_ctx, poll));
    c->open_handles--;
    client_maybe_free(c);
}

static void sock_close(struct push_client *c, struct sock_ctx *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        c->socks = s->next;
    if (s->next)
        s->next->prev = s->prev;
    uv_poll_stop(&s->poll);
    uv_close((uv_handle_t *)&s->poll, handle_closed);
}

static void http_free(struct push_http *h)
{
    if (h->prev)
        h->prev->next = h->next;
    else
        h->c->reqs = h->next;
    if (h->next)
        h->next->prev = h->prev;
    if (h->easy != NULL) {
        curl_multi_remove_handle(h->c->multi, h->easy);
        curl_easy_cleanup(h->easy);
    }
    curl_slist_free_all(h->headers);
    curl_slist_free_all(h->resolve);
    mem_free(h->body);
    mem_free(h);
}

static int map_curl_error(CURLcode cc)
{
    switch (cc) {
    case CURLE_OPERATION_TIMEDOUT:
        return -ETIMEDOUT;
    case CURLE_COULDNT_CONNECT:
        return -ECONNREFUSED;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
        return -EPROTO;
    case CURLE_GOT_NOTHING:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
        return -ECONNRESET;
    default:
        return -EIO;
    }
}

/* A finished GET: the response (a body cut at max_body counts as complete, truncated). */
static void fetch_done(struct push_http *h, CURLcode cc)
{
    struct push_fetch_result r = { 0 };
    if (cc == CURLE_OK || (cc == CURLE_WRITE_ERROR && h->truncated)) {
        curl_easy_getinfo(h->easy, CURLINFO_RESPONSE_CODE, &r.status);
        char *loc = NULL;
        if (curl_easy_getinfo(h->easy, CURLINFO_REDIRECT_URL, &loc) == CURLE_OK && loc != NULL)
            r.location = mem_strdup(loc);
    } else {
        r.err = map_curl_error(cc);
        log_debug("fetch_failed", "curl=%d err=%s msg=\"%s\"", (int)cc, log_errname(r.err),
                  h->error);
    }
    r.body = h->body ? h->body : "";
    r.len = h->body_read;
    r.truncated = h->truncated;
    push_fetch_cb *cb = h->fetch_cb;
    void *data = h->data;
    char *body = h->body;
    char ct[sizeof(h->content_type)];
    memcpy(ct, h->content_type, sizeof(ct));
    r.content_type = ct;
    h->body = NULL;
    http_free(h); /* before the callback, which may start new requests */
    cb(&r, data);
    mem_free(body);
    mem_free((char *)r.location);
}

/* Runs the callbacks of finished transfers. */
static void check_done(struct push_client *c)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(c->multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        struct push_http *h = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&h);
        if (h->fetch_cb != NULL) {
            fetch_done(h, msg->data.result);
            continue;
        }
        long status = 0;
        int err = 0;
        if (msg->data.result == CURLE_OK) {
            curl_easy_getinfo(h->easy, CURLINFO_RESPONSE_CODE, &status);
        } else {
            err = map_curl_error(msg->data.result);
            log_debug("request_failed", "curl=%d err=%s msg=\"%s\"", (int)msg->data.result,
                      log_errname(err), h->error);
        }
        long version = 0;
        curl_easy_getinfo(h->easy, CURLINFO_HTTP_VERSION, &version);
        log_debug("response", "status=%ld http=%s", status,
                  version == CURL_HTTP_VERSION_2_0 ? "2" : "1.1");
        push_http_cb *cb = h->cb;
        void *data = h->data;
        int64_t ra = h->retry_after_ms;
        http_free(h); /* before the callback, which may start new requests */
        cb(err, status, ra, data);
    }
}

static void poll_cb(uv_poll_t *handle, int status, int events)
{
    struct sock_ctx *s = container_of(handle, struct sock_ctx, poll);
    int flags = 0;
    if (status < 0)
        flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    int running;
    struct push_client *c = s->c;
    curl_multi_socket_action(c->multi, s->fd, flags, &running);
    check_done(c);
}

static int socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    struct push_client *c = userp;
    struct sock_ctx *s = socketp;
    (void)easy;
    if (what == CURL_POLL_REMOVE) {
        if (s != NULL) {
            curl_multi_assign(c->multi, fd, NULL);
            sock_close(c, s);
        }
        return 0;
    }
    if (s == NULL) {
        s = mem_calloc(1, sizeof(*s));
        s->c = c;
        s->fd = fd;
        if (uv_poll_init_socket(c->loop, &s->poll, fd) < 0) {
            mem_free(s);
            return -1;
        }
        s->poll.data = c;
        s->next = c->socks;
        if (c->socks)
            c->socks->prev = s;
        c->socks = s;
        c->open_handles++;
        curl_multi_assign(c->multi, fd, s);
    }
    int events = 0;
    if (what & CURL_POLL_IN)
        events |= UV_READABLE;
    if (what & CURL_POLL_OUT)
        events |= UV_WRITABLE;
    uv_poll_start(&s->poll, events, poll_cb);
    return 0;
}

static void timer_fired(uv_timer_t *t)
{
    struct push_client *c = container_of(t, struct push_client, timer);
    int running;
    curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(c);
}

static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    struct push_client *c = userp;
    (void)multi;
    if (timeout_ms < 0)
        uv_timer_stop(&c->timer);
    else /* 0 means "now": the next loop turn, never inside this callback */
        uv_timer_start(&c->timer, timer_fired, (uint64_t)timeout_ms, 0);
    return 0;
}

struct push_client *push__client_new(const struct push_client_opts *o)
{
    struct push_client *c = mem_calloc(1, sizeof(*c));
    c->loop = o->loop;
    c->timeout_ms = o->timeout_ms;
    c->ca_file = o->ca_file && *o->ca_file ? mem_strdup(o->ca_file) : NULL;
    c->allow_http = o->allow_http;
    c->multi = curl_multi_init();
    if (c->multi == NULL) {
        mem_free(c->ca_file);
        mem_free(c);
        return NULL;
    }
    uv_timer_init(c->loop, &c->timer);
    c->timer.data = c;
    c->open_handles = 1;
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX);
    return c;
}

void push__client_close(struct push_client *c)
{
    if (c == NULL || c->closing)
        return;
    while (c->reqs != NULL) /* no callbacks */
        http_free(c->reqs);
    c->closing = true;
    curl_multi_cleanup(c->multi); /* may still report sockets to remove */
    c->multi = NULL;
    while (c->socks != NULL) /* any curl did not report */
        sock_close(c, c->socks);
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, handle_closed);
}

/* Remembers Retry-After (RFC 9110 §10.2.3: seconds, or an HTTP date). */
static size_t header_cb(char *buf, size_t size, size_t n, void *userp)
{
    struct push_http *h = userp;
    size_t len = size * n;
    static const char name[] = "retry-after:";
    if (len > sizeof(name) - 1 && len < 256 && strncasecmp(buf, name, sizeof(name) - 1) == 0) {
        char v[256];
        memcpy(v, buf + sizeof(name) - 1, len - (sizeof(name) - 1));
        v[len - (sizeof(name) - 1)] = '\0';
        char *s = v + strspn(v, " \t");
        s[strcspn(s, "\r\n")] = '\0';
        char *end = NULL;
        long long secs = strtoll(s, &end, 10);
        if (end != s && *end == '\0' && secs >= 0 && secs < 100LL * 86400) {
            h->retry_after_ms = secs * 1000;
        } else {
            time_t when = curl_getdate(s, NULL);
            time_t now = time(NULL);
            if (when > 0)
                h->retry_after_ms = when > now ? (int64_t)(when - now) * 1000 : 0;
        }
    }
    return len;
}

static size_t write_cb(char *buf, size_t size, size_t n, void *userp)
{
    struct push_http *h = userp;
    (void)buf;
    h->body_read += size * n;
    return h->body_read > RESPONSE_MAX ? 0 : size * n; /* a flood ends the transfer */
}

/* The CURLOPT_RESOLVE entry "host:port:address" (an IPv6 address bracketed), or false when
 * none is needed or possible: an IPv6-literal host is never resolved by curl, and curl (7.88)
 * cannot parse such a host in an entry (it takes the first ':' as the end of the host and
 * fails the transfer with CURLE_SETOPT_OPTION_SYNTAX). The socket callbacks still pin the
 * connection to the checked address. */
bool push__resolve_entry(char *out, size_t size, const char *host, const char *port,
                         const char *address)
{
    if (strchr(host, ':') != NULL)
        return false;
    bool a6 = strchr(address, ':') != NULL && address[0] != '[';
    int n = snprintf(out, size, "%s:%s:%s%s%s", host, port, a6 ? "[" : "", address, a6 ? "]" : "");
    return n > 0 && (size_t)n < size;
}

/* A transfer in c's list with an easy handle that connects host:port to address only
 * (CURLOPT_RESOLVE) and the options every request shares; headers are consumed. NULL when
 * libcurl refused (everything freed). */
static struct push_http *http_new(struct push_client *c, const char *url, const char *host,
                                  const char *port, const char *address, struct curl_slist *headers,
                                  void *data)
{
    if (c == NULL || c->closing) {
        curl_slist_free_all(headers);
        return NULL;
    }
    struct push_http *h = mem_calloc(1, sizeof(*h));
    h->c = c;
    h->data = data;
    h->headers = headers;
    h->retry_after_ms = -1;
    h->next = c->reqs;
    if (c->reqs)
        c->reqs->prev = h;
    c->reqs = h;
    char entry[600];
    bool resolve = push__resolve_entry(entry, sizeof(entry), host, port, address);
    h->resolve = resolve ? curl_slist_append(NULL, entry) : NULL;
    h->easy = curl_easy_init();
    if (h->easy == NULL || (resolve && h->resolve == NULL)) {
        http_free(h);
        return NULL;
    }
    CURL *e = h->easy;
    curl_easy_setopt(e, CURLOPT_PRIVATE, h);
    curl_easy_setopt(e, CURLOPT_URL, url);
    if (h->resolve != NULL)
        curl_easy_setopt(e, CURLOPT_RESOLVE, h->resolve);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h->headers);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, h->error);
    if (c->ca_file != NULL)
        curl_easy_setopt(e, CURLOPT_CAINFO, c->ca_file);
    return h;
}

/* Hands h to the multi handle; NULL (h freed) when curl refuses. */
static struct push_http *http_add(struct push_http *h)
{
    if (curl_multi_add_handle(h->c->multi, h->easy) != CURLM_OK) {
        curl_easy_cleanup(h->easy);
        h->easy = NULL;
        http_free(h);
        return NULL;
    }
    return h;
}

struct push_http *push__http_start(struct push_client *c, const char *url, const char *host,
                                   const char *port, const char *address,
                                   struct curl_slist *headers, const uint8_t *body, size_t len,
                                   push_http_cb *cb, void *data)
{
    struct push_http *h = http_new(c, url, host, port, address, headers, data);
    if (h == NULL)
        return NULL;
    h->cb = cb;
    CURL *e = h->easy;
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, c->allow_http ? "https,http" : "https");
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)c->timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)c->timeout_ms);
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, h);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, h);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "sparkgate-push");
    return http_add(h);
}

void push__http_cancel(struct push_http *h)
{
    if (h != NULL)
        http_free(h);
}

/* ---- GET for other modules (push.h: push_fetch_*) ---- */

struct push_client *push_fetch_client_new(uv_loop_t *loop, const char *ca_file)
{
    struct push_client_opts o = {
        .loop = loop, .timeout_ms = 5000, .ca_file = ca_file, .allow_http = true
    };
    return push__client_new(&o);
}

void push_fetch_client_close(struct push_client *c)
{
    push__client_close(c);
}

static size_t fetch_header_cb(char *buf, size_t size, size_t n, void *userp)
{
    struct push_http *h = userp;
    size_t len = size * n;
    static const char name[] = "content-type:";
    if (len > 5 && strncmp(buf, "HTTP/", 5) == 0) /* a new response (after a 1xx) */
        h->content_type[0] = '\0';
    if (len > sizeof(name) - 1 && strncasecmp(buf, name, sizeof(name) - 1) == 0) {
        const char *v = buf + sizeof(name) - 1;
        size_t vl = len - (sizeof(name) - 1);
        while (vl > 0 && (*v == ' ' || *v == '\t')) {
            v++;
            vl--;
        }
        while (vl > 0 && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
            vl--;
        if (vl >= sizeof(h->content_type))
            vl = sizeof(h->content_type) - 1;
        memcpy(h->content_type, v, vl);
        h->content_type[vl] = '\0';
    }
    return len;
}

static size_t fetch_write_cb(char *buf, size_t size, size_t n, void *userp)
{
    struct push_http *h = userp;
    size_t len = size * n;
    size_t room = h->max_body - h->body_read;
    size_t take = len < room ? len : room;
    if (h->body == NULL || h->body_read + take + 1 > h->body_cap) {
        /* grows geometrically, never past max_body + 1 */
        size_t cap = h->body_cap ? h->body_cap : 4096;
        while (cap < h->body_read + take + 1)
            cap *= 2;
        if (cap > h->max_body + 1)
            cap = h->max_body + 1;
        h->body = mem_realloc(h->body, cap);
        h->body_cap = cap;
    }
    memcpy(h->body + h->body_read, buf, take);
    h->body_read += take;
    h->body[h->body_read] = '\0';
    if (take < len) {
        h->truncated = true;
        return 0; /* enough: ends the transfer (CURLE_WRITE_ERROR, reported as truncated) */
    }
    return len;
}

/* Refuses any connection but to the pinned address (CURLOPT_RESOLVE already maps the host to
 * it; this also stops a proxy or an alternative service from being used). */
static curl_socket_t fetch_open_socket(void *userp, curlsocktype purpose, struct curl_sockaddr *a)
{
    struct push_http *h = userp;
    (void)purpose;
    bool same = false;
    if (a->family == AF_INET && h->pinned.ss_family == AF_INET) {
        const struct sockaddr_in *x = (const struct sockaddr_in *)&a->addr;
        const struct sockaddr_in *y = (const struct sockaddr_in *)&h->pinned;
        same = x->sin_addr.s_addr == y->sin_addr.s_addr;
    } else if (a->family == AF_INET6 && h->pinned.ss_family == AF_INET6) {
        const struct sockaddr_in6 *x = (const struct sockaddr_in6 *)&a->addr;
        const struct sockaddr_in6 *y = (const struct sockaddr_in6 *)&h->pinned;
        same = memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
    }
    if (!same) {
        log_warn("fetch_unpinned_address", "msg=\"connection to another address refused\"");
        return CURL_SOCKET_BAD;
    }
    return socket(a->family, a->socktype, a->protocol);
}

struct push_http *push_fetch_start(struct push_client *c, const struct push_fetch_opts *o,
                                   push_fetch_cb *cb, void *data)
{
    if (o->addr == NULL || o->addr_len > sizeof(struct sockaddr_storage))
        return NULL;
    char address[INET6_ADDRSTRLEN];
    if (o->addr->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)o->addr)->sin_addr, address,
                  sizeof(address));
    else if (o->addr->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)o->addr)->sin6_addr, address,
                  sizeof(address));
    else
        return NULL;
    struct curl_slist *headers =
        curl_slist_append(NULL, "Accept: text/html,application/xhtml+xml;q=0.9,*/*;q=0.1");
    struct push_http *h = http_new(c, o->url, o->host, o->port, address, headers, data);
    if (h == NULL)
        return NULL;
    h->fetch_cb = cb;
    h->max_body = o->max_body;
    memcpy(&h->pinned, o->addr, o->addr_len);
    h->pinned_len = (socklen_t)o->addr_len;
    CURL *e = h->easy;
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https,http");
    curl_easy_setopt(e, CURLOPT_PROXY, ""); /* never a proxy from the environment */
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)o->timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)o->timeout_ms);
    curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, ""); /* curl decodes; max_body counts decoded */
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, fetch_header_cb);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, h);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, fetch_write_cb);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, h);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, fetch_open_socket);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, h);
    curl_easy_setopt(e, CURLOPT_USERAGENT, o->user_agent ? o->user_agent : "sparkgate-preview");
    return http_add(h);
}

void push_fetch_cancel(struct push_http *h)
{
    push__http_cancel(h);
}
