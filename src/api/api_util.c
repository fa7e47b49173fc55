/* api_util.c: error replies, authentication of REST requests, text validation. */
#include "api/api_int.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>

#include <openssl/crypto.h>

#include "auth/auth.h"
#include "auth/ratelimit.h"
#include "core/map.h"
#include "core/mem.h"
#include "core/tick.h"
#include "session/session.h"
#include "xmpp/jid.h"
#include "xmpp/stream.h"

#define LOG_MODULE "api"
#include "core/log.h"

static const char *exception_for(int status)
{
    switch (status) {
    case 400:
        return "IllegalArgumentException";
    case 401:
        return "UnauthorizedException";
    case 403:
        return "ForbiddenException";
    case 404:
        return "NotFoundException";
    case 409:
        return "ConflictException";
    case 413:
        return "PayloadTooLargeException";
    case 429:
        return "TooManyRequestsException";
    case 502:
        return "XMPPException";
    case 503:
        return "ServiceUnavailableException";
    case 504:
        return "TimeoutException";
    default:
        return "Exception";
    }
}

void api__error(struct http_req *req, int status, const char *resource)
{
    http_reply_error(req, status, resource, "Exception", exception_for(status));
}

void api__error_errno(struct http_req *req, int err, const char *what)
{
    int status;
    const char *resource = what;
    switch (err) {
    case -EACCES:
        status = 401;
        resource = "not-authorized";
        break;
    case -ENOKEY:
    case -ESTALE:
        status = 400;
        resource = "xmpp session could not be established";
        break;
    case -EEXIST:
        status = 400;
        resource = "user exists";
        break;
    case -EPERM:
        status = 400;
        resource = "user cannot be created";
        break;
    case -EAGAIN:
        status = 503;
        resource = "too many sessions";
        break;
    case -ETIMEDOUT:
        status = 504;
        resource = "xmpp server timeout";
        break;
    case -EINVAL:
        status = 400;
        break;
    case -ENOTCONN:
    case -ECANCELED:
        status = 400;
        resource = "xmpp connection not found";
        break;
    case -ENOBUFS:
        status = 503;
        resource = "xmpp connection congested";
        break;
    case -EPROTO:
        status = 502;
        resource = "xmpp protocol or tls failure";
        break;
    default:
        status = 502;
        resource = "xmpp server unreachable";
        break;
    }
    api__error(req, status, resource);
}

bool api__authenticate(const struct api_deps *d, struct http_req *req, char user[API_USER_MAX])
{
    const char *hdr = http_req_header(req, "authorization");
    const char *token = auth_token_from_header(hdr);
    if (token == NULL) {
        http_req_add_header(req, "WWW-Authenticate", "Bearer");
        api__error(req, 401, "missing credentials");
        return false;
    }
    enum jwt_status st = auth_token_check(d->auth, token, user, API_USER_MAX);
    if (st != JWT_OK) {
        log_info("auth_refused", "path=%s why=%s", http_req_path(req), jwt_status_str(st));
        http_req_add_header(req, "WWW-Authenticate", "Bearer error=\"invalid_token\"");
        api__error(req, 401, jwt_status_str(st));
        return false;
    }
    return true;
}

/* ---- client address and rate limits ---- */

/* True when addr is inside one of the comma-separated addresses or CIDR blocks. */
static bool addr_in_list(const char *addr, const char *list)
{
    unsigned char a[16], n[16];
    int fam = strchr(addr, ':') ? AF_INET6 : AF_INET;
    if (inet_pton(fam, addr, a) != 1)
        return false;
    size_t alen = fam == AF_INET ? 4 : 16;
    const char *p = list;
    while (p && *p) {
        while (*p == ' ' || *p == ',')
            p++;
        const char *end = p;
        while (*end && *end != ',')
            end++;
        char item[80];
        size_t il = (size_t)(end - p);
        while (il > 0 && p[il - 1] == ' ')
            il--;
        if (il > 0 && il < sizeof(item)) {
            memcpy(item, p, il);
            item[il] = '\0';
            char *slash = strchr(item, '/');
            long bits = (long)alen * 8;
            if (slash) {
                *slash = '\0';
                char *endp = NULL;
                bits = strtol(slash + 1, &endp, 10);
                if (endp == slash + 1 || *endp != '\0')
                    bits = -1; /* "10.0.0.0/" or "/x": never a match, never /0 */
            }
            if (inet_pton(fam, item, n) == 1 && bits >= 0 && bits <= (long)alen * 8) {
                size_t full = (size_t)bits / 8;
                unsigned rem = (unsigned)bits % 8;
                bool match = memcmp(a, n, full) == 0;
                if (match && rem) {
                    unsigned char mask = (unsigned char)(0xff << (8 - rem));
                    match = (a[full] & mask) == (n[full] & mask);
                }
                if (match)
                    return true;
            }
        }
        p = end;
    }
    return false;
}

void api__client_ip(const struct api_deps *d, struct http_req *req, char out[64])
{
    const char *peer = http_req_peer(req);
    snprintf(out, 64, "%s", peer ? peer : "?");
    if (d->trusted_proxies == NULL || *d->trusted_proxies == '\0' ||
        !addr_in_list(out, d->trusted_proxies))
        return;
    const char *xff = http_req_header(req, "x-forwarded-for");
    if (xff == NULL)
        return;
    /* the right-most address not itself a trusted proxy is the client; read from the end, so
     * a long client-supplied prefix cannot push the proxy's own entries out */
    const char *end = xff + strlen(xff);
    for (;;) {
        const char *start = end;
        while (start > xff && start[-1] != ',')
            start--;
        const char *a = start, *b = end;
        while (a < b && *a == ' ')
            a++;
        while (b > a && b[-1] == ' ')
            b--;
        char item[64];
        unsigned char tmp[16];
        if ((size_t)(b - a) >= sizeof(item))
            return; /* not an address: keep the last good one */
        memcpy(item, a, (size_t)(b - a));
        item[b - a] = '\0';
        if (inet_pton(strchr(item, ':') ? AF_INET6 : AF_INET, item, tmp) != 1)
            return;
        memcpy(out, item, (size_t)(b - a) + 1);
        if (!addr_in_list(item, d->trusted_proxies) || start == xff)
            return;
        end = start - 1; /* before the comma */
    }
}

/* "u:<user>", or "ip:<address>" where an IPv6 address counts by its /64 (one subscriber's
 * allocation: a client must not get fresh keys by walking its own prefix). */
static void rate_key(char *out, size_t len, const char *prefix, const char *v)
{
    unsigned char a6[16];
    char text[INET6_ADDRSTRLEN];
    if (strcmp(prefix, "ip") == 0 && strchr(v, ':') && inet_pton(AF_INET6, v, a6) == 1) {
        memset(a6 + 8, 0, 8);
        inet_ntop(AF_INET6, a6, text, sizeof(text));
        snprintf(out, len, "ip:%s/64", text);
        return;
    }
    snprintf(out, len, "%s:%s", prefix, v);
}

bool api__rate_check(struct api_deps *d, struct http_req *req, const char *user, const char *ip)
{
    if (d->ratelimit == NULL)
        return true;
    uint64_t now = tick_now(d->tick);
    char k[API_USER_MAX + 8];
    uint64_t wait = 0, w;
    if (user != NULL) {
        rate_key(k, sizeof(k), "u", user);
        wait = ratelimit_check(d->ratelimit, k, now);
    }
    rate_key(k, sizeof(k), "ip", ip);
    w = d->ratelimit_ip ? ratelimit_check(d->ratelimit_ip, k, now) : 0;
    if (w > wait)
        wait = w;
    if (wait == 0) {
        /* charge the attempt now and refund it on success (api__rate_ok): attempts still in
         * flight count, so a burst of parallel guesses cannot all pass this check */
        if (user != NULL) {
            rate_key(k, sizeof(k), "u", user);
            ratelimit_fail(d->ratelimit, k, now);
        }
        return true;
    }
    char ra[32];
    snprintf(ra, sizeof(ra), "%llu", (unsigned long long)((wait + 999) / 1000));
    http_req_add_header(req, "Retry-After", ra);
    log_warn("rate_limited", "user=%s ip=%s wait_ms=%llu", user ? user : "", ip,
             (unsigned long long)wait);
    api__error(req, 429, "too many failed attempts; retry later");
    return false;
}

void api__rate_fail(struct api_deps *d, const char *user, const char *ip)
{
    if (d->ratelimit == NULL)
        return;
    uint64_t now = tick_now(d->tick);
    char k[API_USER_MAX + 8];
    (void)user; /* the username was charged by api__rate_check already */
    rate_key(k, sizeof(k), "ip", ip);
    if (d->ratelimit_ip)
        ratelimit_fail(d->ratelimit_ip, k, now);
}

void api__rate_ok(struct api_deps *d, const char *user, const char *ip)
{
    if (d->ratelimit == NULL)
        return;
    char k[API_USER_MAX + 8];
    if (user != NULL) {
        rate_key(k, sizeof(k), "u", user);
        ratelimit_success(d->ratelimit, k);
    }
    (void)ip; /* an address shared by many users keeps its own count */
}

void api__reply_tokens(struct api_deps *d, struct http_req *req, const char *user,
                       const char *family)
{
    char *access = NULL, *refresh = NULL;
    auth_token_issue_pair(d->auth, user, family, &access, &refresh);
    json_t *body = json_pack("{s:s, s:s, s:I}", "token", access, "refreshToken", refresh,
                             "expiresIn", (json_int_t)auth_token_lifetime_s(d->auth));
    http_reply_json(req, 200, body);
    OPENSSL_cleanse(refresh, strlen(refresh));
    mem_free(access);
    mem_free(refresh);
}

bool api__username(const char *in, char out[API_USER_MAX])
{
    if (in == NULL || strlen(in) >= API_USER_MAX || !xmpp_jid_local_valid(in))
        return false;
    size_t i = 0;
    for (; in[i]; i++)
        out[i] = (in[i] >= 'A' && in[i] <= 'Z') ? (char)(in[i] - 'A' + 'a') : in[i];
    out[i] = '\0';
    return true;
}

bool api__password_body(struct http_req *req, char out[API_PASS_MAX])
{
    size_t len;
    const char *body = http_req_body(req, &len);
    if (len == 0 || len >= API_PASS_MAX || memchr(body, '\0', len) != NULL ||
        !api__xml_text_valid(body, len))
        return false;
    memcpy(out, body, len);
    out[len] = '\0';
    return true;
}

/* ---- calls that wait ---- */

struct api_call *api__call_new(struct api_deps *d, struct http_req *req, size_t size, int flags)
{
    char norm[API_USER_MAX] = "";
    if ((flags & API_CALL_USER) && !api__username(http_req_param(req, "username"), norm)) {
        api__error(req, 400, "invalid username");
        return NULL;
    }
    if ((flags & API_CALL_DB) && d->db == NULL) {
        api__error(req, 503, "no store configured");
        return NULL;
    }
    struct api_call *c = mem_calloc(1, size);
    c->d = d;
    c->req = req;
    memcpy(c->user, norm, strlen(norm) + 1);
    api__client_ip(d, req, c->ip);
    if ((flags & API_CALL_RATE) &&
        !api__rate_check(d, req, (flags & API_CALL_USER) ? c->user : NULL, c->ip)) {
        api__call_free(c);
        return NULL;
    }
    return c;
}

void api__call_free(struct api_call *c)
{
    if (c->cleanup)
        c->cleanup(c);
    OPENSSL_cleanse(c->password, sizeof(c->password));
    mem_free(c);
}

static void call_abort(struct http_req *req, void *data)
{
    struct api_call *c = data;
    (void)req;
    session_login_cancel(c->login);
    c->login = NULL;
    xmpp_register_cancel(c->reg);
    c->reg = NULL;
    api__ensure_cancel(c->ensure);
    c->ensure = NULL;
    if (c->in_store)
        c->aborted = true; /* freed when the store answers */
    else
        api__call_free(c);
}

void api__call_watch(struct api_call *c)
{
    http_req_on_abort(c->req, call_abort, c);
}

bool api__call_store_back(struct api_call *c)
{
    c->in_store = false;
    if (c->aborted) {
        api__call_free(c);
        return false;
    }
    return true;
}

void api__call_error(struct api_call *c, int status, const char *text)
{
    http_req_on_abort(c->req, NULL, NULL);
    api__error(c->req, status, text);
    api__call_free(c);
}

void api__call_errno(struct api_call *c, int err, const char *what)
{
    http_req_on_abort(c->req, NULL, NULL);
    api__error_errno(c->req, err, what);
    api__call_free(c);
}

void api__call_reply(struct api_call *c, json_t *body)
{
    http_req_on_abort(c->req, NULL, NULL);
    http_reply_json(c->req, 200, body);
    api__call_free(c);
}

/* The XMPP server accepted user's password: refund the rate limit, remember the password for
 * Basic, keep it in the vault when configured. */
static void password_verified(struct api_deps *d, const char *user, const char *password,
                              const char *ip)
{
    api__rate_ok(d, user, ip);
    auth_pwcache_put(d->auth, user, password, tick_now(d->tick), d->basic_cache_ms);
    api__vault_password(d, user, password);
}

bool api__call_password_checked(struct api_call *c, int status, const char *what)
{
    c->login = NULL;
    if (status != 0) {
        if (status == -EACCES)
            api__rate_fail(c->d, c->user, c->ip);
        log_info("password_refused", "user=%s ip=%s what=\"%s\" err=%s", c->user, c->ip, what,
                 log_errname(status));
        api__call_errno(c, status, what);
        return false;
    }
    password_verified(c->d, c->user, c->password, c->ip);
    return true;
}

void api__call_tokens(int status, struct session *s, void *data)
{
    struct api_call *c = data;
    (void)s;
    c->ensure = NULL;
    if (status != 0) {
        api__call_errno(c, status, "xmpp session could not be established");
        return;
    }
    http_req_on_abort(c->req, NULL, NULL);
    api__reply_tokens(c->d, c->req, c->user, c->family[0] ? c->family : NULL);
    log_info("login", "user=%s ip=%s method=%s", c->user, c->ip, c->method ? c->method : "");
    api__call_free(c);
}

/* ---- authenticated routes ---- */

struct api_route {
    struct api_route *next;
    struct api_deps *d;
    api_user_handler *h;
    int flags;
    const char *scope;      /* restricted tokens of this scope are accepted too (or NULL) */
    api_scoped_handler *hs; /* ... and handled here */
};

/* A request waiting for a Basic password check or a session to open. */
struct auth_call {
    struct api_route *r;
    struct http_req *req;
    struct session_login *login;
    struct api_ensure *ensure;
    char user[API_USER_MAX];
    char password[API_PASS_MAX]; /* Basic only; wiped */
    char ip[64];
    char jti[AUTH_JTI_LEN]; /* the access token's, re-checked after the session opened */
};

static void call_free(struct auth_call *c)
{
    OPENSSL_cleanse(c->password, sizeof(c->password));
    mem_free(c);
}

static void call_aborted(struct http_req *req, void *data)
{
    struct auth_call *c = data;
    (void)req;
    session_login_cancel(c->login);
    api__ensure_cancel(c->ensure);
    call_free(c);
}

static void basic_done(struct session_mgr *mgr, int status, struct session *s, void *data)
{
    struct auth_call *c = data;
    (void)mgr;
    c->login = NULL;
    http_req_on_abort(c->req, NULL, NULL);
    struct api_deps *d = c->r->d;
    if (status != 0) {
        if (status == -EACCES) {
            api__rate_fail(d, c->user, c->ip);
            auth_pwcache_forget(d->auth, c->user);
            http_req_add_header(c->req, "WWW-Authenticate", "Basic realm=\"sparkweb\"");
        }
        log_info("basic_refused", "user=%s ip=%s err=%s", c->user, c->ip, log_errname(status));
        api__error_errno(c->req, status, "authentication failed");
    } else {
        password_verified(d, c->user, c->password, c->ip);
        c->r->h(c->req, c->user, (c->r->flags & API_NEED_SESSION) ? s : NULL, d);
    }
    call_free(c);
}

static void ensure_done(int status, struct session *s, void *data)
{
    struct auth_call *c = data;
    c->ensure = NULL;
    http_req_on_abort(c->req, NULL, NULL);
    if (status != 0)
        api__error_errno(c->req, status, "xmpp session could not be established");
    else if (c->jti[0] != '\0' && !auth_jti_live(c->r->d->auth, c->jti, c->user))
        api__error(c->req, 401, "revoked"); /* a logout came while the session opened */
    else
        c->r->h(c->req, c->user, s, c->r->d);
    call_free(c);
}

static void route_entry(struct http_req *req, void *data)
{
    struct api_route *r = data;
    struct api_deps *d = r->d;
    const char *hdr = http_req_header(req, "authorization");
    const char *token = auth_token_from_header(hdr);
    struct auth_call *c = mem_calloc(1, sizeof(*c));
    c->r = r;
    c->req = req;
    if (token != NULL &&
        auth_basic_parse(token, c->user, sizeof(c->user), c->password, sizeof(c->password)) == 0 &&
        api__username(c->user, c->user)) {
        api__client_ip(d, req, c->ip);
        struct session *s = session_find(d->sessions, c->user);
        bool cached = auth_pwcache_check(d->auth, c->user, c->password, tick_now(d->tick));
        if (cached && (s != NULL || !(r->flags & API_NEED_SESSION))) {
            r->h(req, c->user, (r->flags & API_NEED_SESSION) ? s : NULL, d);
            call_free(c);
            return;
        }
        if (!api__rate_check(d, req, c->user, c->ip)) {
            call_free(c);
            return;
        }
        int rc = session_login(d->sessions, c->user, c->password, basic_done, c, &c->login);
        if (rc < 0) {
            call_free(c);
            api__error(req, 401, "not-authorized");
            return;
        }
        http_req_on_abort(req, call_aborted, c);
        return;
    }
    char peer[API_USER_MAX];
    if (r->scope != NULL && token != NULL &&
        auth_scoped_check(d->auth, token, r->scope, c->user, sizeof(c->user), peer, sizeof(peer)) ==
            JWT_OK) {
        r->hs(req, c->user, peer, d);
        call_free(c);
        return;
    }
    if (!api__authenticate(d, req, c->user)) {
        call_free(c);
        return;
    }
    struct session *s = session_find(d->sessions, c->user);
    if (s != NULL || !(r->flags & API_NEED_SESSION)) {
        r->h(req, c->user, s, d);
        call_free(c);
        return;
    }
    auth_token_jti(d->auth, token, c->jti);
    c->ensure = api__ensure_session(d, c->user, ensure_done, c);
    http_req_on_abort(req, call_aborted, c);
}

int api__route_user(struct api_deps *d, int method, const char *pattern, api_user_handler *h,
                    int flags)
{
    struct api_route *r = mem_calloc(1, sizeof(*r));
    r->d = d;
    r->h = h;
    r->flags = flags;
    r->next = d->state->routes;
    d->state->routes = r;
    return http_route(d->http, (enum http_method)method, pattern, route_entry, r);
}

int api__route_scoped(struct api_deps *d, int method, const char *pattern, const char *scope,
                      api_scoped_handler *hs, api_user_handler *h, int flags)
{
    struct api_route *r = mem_calloc(1, sizeof(*r));
    r->d = d;
    r->h = h;
    r->hs = hs;
    r->scope = scope;
    r->flags = flags;
    r->next = d->state->routes;
    d->state->routes = r;
    return http_route(d->http, (enum http_method)method, pattern, route_entry, r);
}

bool api__xml_text_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        uint32_t c = p[i];
        size_t n;
        if (c < 0x80) {
            n = 1;
        } else if ((c & 0xe0) == 0xc0) {
            n = 2;
            c &= 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            n = 3;
            c &= 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            n = 4;
            c &= 0x07;
        } else {
            return false;
        }
        if (i + n > len)
            return false;
        for (size_t k = 1; k < n; k++) {
            if ((p[i + k] & 0xc0) != 0x80)
                return false;
            c = c << 6 | (p[i + k] & 0x3f);
        }
        static const uint32_t min_for_len[] = { 0, 0, 0x80, 0x800, 0x10000 };
        if (c < min_for_len[n] || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
            return false; /* overlong, out of range, surrogate */
        /* XML 1.0 Char production */
        if ((c < 0x20 && c != 0x9 && c != 0xa && c != 0xd) || c == 0xfffe || c == 0xffff)
            return false;
        i += n;
    }
    return true;
}

bool api__like(const char *s, const char *p)
{
    const char *star = NULL; /* the pattern just after the last '%' seen */
    const char *mark = NULL; /* where in s that '%' match began */
    while (*s != '\0') {
        if (*p == '%') {
            while (*p == '%') /* a run of '%' is one '%' */
                p++;
            star = p;
            mark = s;
        } else if (*p != '\0' && (*p == '_' || *p == *s)) {
            p++;
            s++;
        } else if (star != NULL) { /* let the last '%' take one more byte; retry after it */
            p = star;
            s = ++mark;
        } else {
            return false;
        }
    }
    while (*p == '%')
        p++;
    return *p == '\0';
}

int api__route_table(struct api_deps *d, const struct api_route_def *defs, size_t n)
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = api__route_user(d, defs[i].method, defs[i].pattern, defs[i].h, defs[i].flags);
    return rc;
}
