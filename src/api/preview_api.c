/* preview_api.c: K10 GET /preview/{quality}/{url}: a link preview {"image","descriptionShort",
 * "title"} of a page the gateway fetches itself (contract §1.4 K10, §6: no XEP applies).
 * The fetch is bounded and cannot be aimed at the gateway's own network:
 *   - http and https only, no credentials in the URL, at most preview.max_redirects redirects,
 *     each one checked like the first URL;
 *   - every host is resolved with uv_getaddrinfo (off the loop); when any of its addresses is
 *     loopback, private, link-local, ULA, CGNAT, multicast or another special range (the
 *     169.254.169.254 metadata service included) the answer is 403, unless preview.allow_private
 *     or preview.allow_addresses allows it; the checked address is then the only one curl may
 *     connect to (CURLOPT_RESOLVE + an open-socket check), so DNS rebinding cannot bypass it;
 *   - at most preview.max_bytes of the body are read and the whole preview, lookups and
 *     redirects included, must finish within preview.timeout (else 504).
 * Results are kept in a small LRU cache (preview.cache_ttl, preview.cache_size) and fetches are
 * rate-limited per user (preview.rate per minute; 429 with Retry-After beyond it).
 * The HTTP transfers run on push/'s curl multi handle on the loop (push_fetch_start). */
#include "api/api_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <uv.h>

#include "core/map.h"
#include "core/mem.h"
#include "core/tick.h"
#include "push/push.h"

#define LOG_MODULE "api"
#include "core/log.h"

#define PREVIEW_URL_MAX 2047
#define RATE_WINDOW_MS  60000
#define RATE_PRUNE_AT   1024 /* users with a window before ended ones are dropped */
#define QUALITY_MIN     -2
#define QUALITY_MAX     10000

/* ---- cache and rate state -------------------------------------------------------------- */

struct cache_entry {
    struct cache_entry *prev, *next; /* most recently used first */
    char *key;
    char *json;
    uint64_t expires_ms;
};

struct rate {
    uint64_t window_ms;
    unsigned count;
};

struct api_preview {
    struct map *cache; /* key -> struct cache_entry */
    struct cache_entry *head, *tail;
    struct map *rates; /* username -> struct rate */
};

static struct api_preview *state(struct api_deps *d)
{
    if (d->state->preview == NULL) {
        struct api_preview *p = mem_calloc(1, sizeof(*p));
        p->cache = map_new();
        p->rates = map_new();
        d->state->preview = p;
    }
    return d->state->preview;
}

static void lru_unlink(struct api_preview *p, struct cache_entry *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        p->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        p->tail = e->prev;
    e->prev = e->next = NULL;
}

static void lru_front(struct api_preview *p, struct cache_entry *e)
{
    e->next = p->head;
    e->prev = NULL;
    if (p->head)
        p->head->prev = e;
    p->head = e;
    if (p->tail == NULL)
        p->tail = e;
}

static void entry_drop(struct api_preview *p, struct cache_entry *e)
{
    lru_unlink(p, e);
    map_remove(p->cache, e->key);
    mem_free(e->key);
    mem_free(e->json);
    mem_free(e);
}

/* The cached JSON text of key, or NULL (an expired entry is dropped). */
static const char *cache_get(struct api_deps *d, const char *key, uint64_t now)
{
    struct api_preview *p = state(d);
    struct cache_entry *e = map_get(p->cache, key);
    if (e == NULL)
        return NULL;
    if (now >= e->expires_ms) {
        entry_drop(p, e);
        return NULL;
    }
    lru_unlink(p, e);
    lru_front(p, e);
    return e->json;
}

static void cache_put(struct api_deps *d, const char *key, const char *json, uint64_t now)
{
    if (d->preview_cache_ms == 0 || d->preview_cache_size == 0)
        return;
    struct api_preview *p = state(d);
    struct cache_entry *old = map_get(p->cache, key);
    if (old != NULL)
        entry_drop(p, old);
    struct cache_entry *e = mem_calloc(1, sizeof(*e));
    e->key = mem_strdup(key);
    e->json = mem_strdup(json);
    e->expires_ms = now + d->preview_cache_ms;
    map_put(p->cache, e->key, e);
    lru_front(p, e);
    while (map_count(p->cache) > d->preview_cache_size && p->tail != NULL)
        entry_drop(p, p->tail);
}

static int rate_free_cb(const char *key, void *value, void *data)
{
    (void)key;
    (void)data;
    mem_free(value);
    return 0;
}

/* map_walk: drops the windows that ended (data: the current time). */
static int rate_expired_cb(const char *key, void *value, void *data)
{
    (void)key;
    struct rate *r = value;
    if (*(const uint64_t *)data - r->window_ms < RATE_WINDOW_MS)
        return 0;
    mem_free(r);
    return 1;
}

/* Charges one fetch to user. 0 when allowed, else the seconds until the window ends. */
static unsigned rate_charge(struct api_deps *d, const char *user, uint64_t now)
{
    struct api_preview *p = state(d);
    if (map_count(p->rates) >= RATE_PRUNE_AT)
        map_walk(p->rates, rate_expired_cb, &now);
    struct rate *r = map_get(p->rates, user);
    if (r == NULL) {
        r = mem_calloc(1, sizeof(*r));
        map_put(p->rates, user, r);
    }
    if (r->count == 0 || now - r->window_ms >= RATE_WINDOW_MS) {
        r->window_ms = now;
        r->count = 0;
    }
    if (r->count >= d->preview_rate) {
        uint64_t left = RATE_WINDOW_MS - (now - r->window_ms);
        return (unsigned)((left + 999) / 1000);
    }
    r->count++;
    return 0;
}

void api__preview_free(struct api_deps *d)
{
    struct api_preview *p = d->state ? d->state->preview : NULL;
    if (p == NULL)
        return;
    while (p->head != NULL)
        entry_drop(p, p->head);
    map_free(p->cache);
    map_walk(p->rates, rate_free_cb, NULL);
    map_free(p->rates);
    mem_free(p);
    d->state->preview = NULL;
}

/* ---- one preview ------------------------------------------------------------------------- */

struct preview_call {
    struct api_deps *d;
    struct http_req *req; /* NULL once answered or gone */
    char *key;
    char *url; /* the URL being fetched (after redirects) */
    struct push_url pu;
    bool want_img;
    bool done;
    bool resolving; /* c->gai is pending */
    bool timer_open;
    unsigned hops;
    uint64_t deadline_ms; /* uv_now */
    uv_loop_t *loop;
    uv_getaddrinfo_t gai;
    uv_timer_t timer;
    struct push_http *fetch;
};

static void call_maybe_free(struct preview_call *c)
{
    if (!c->done || c->resolving || c->timer_open)
        return;
    mem_free(c->key);
    mem_free(c->url);
    mem_free(c);
}

static void timer_closed(uv_handle_t *h)
{
    struct preview_call *c = h->data;
    c->timer_open = false;
    call_maybe_free(c);
}

/* Ends the call: replies (status > 0, json or the error text) unless the client left, and
 * cancels what is pending. */
static void call_end(struct preview_call *c, int status, const char *text, json_t *json)
{
    if (c->done) {
        json_decref(json);
        return;
    }
    c->done = true;
    if (c->req != NULL) {
        http_req_on_abort(c->req, NULL, NULL);
        if (json != NULL)
            http_reply_json(c->req, status, json);
        else
            api__error(c->req, status, text);
        c->req = NULL;
    } else {
        json_decref(json);
    }
    if (c->fetch != NULL) {
        push_fetch_cancel(c->fetch);
        c->fetch = NULL;
    }
    if (c->resolving)
        uv_cancel((uv_req_t *)&c->gai); /* its callback still runs (UV_EAI_CANCELED) */
    if (c->timer_open) {
        uv_timer_stop(&c->timer);
        uv_close((uv_handle_t *)&c->timer, timer_closed);
    }
    call_maybe_free(c);
}

static void call_aborted(struct http_req *req, void *data)
{
    (void)req;
    struct preview_call *c = data;
    c->req = NULL;
    call_end(c, 0, NULL, NULL);
}

static void deadline_hit(uv_timer_t *t)
{
    struct preview_call *c = t->data;
    log_info("preview_timeout", "host=%s hops=%u", c->pu.host, c->hops);
    call_end(c, 504, "the page did not answer in time", NULL);
}

static bool address_listed(const char *list, const struct sockaddr *sa)
{
    if (list == NULL)
        return false;
    for (const char *p = list; *p;) {
        size_t n = strcspn(p, ",");
        char one[64];
        const char *s = p;
        size_t l = n;
        while (l > 0 && (*s == ' ' || *s == '\t')) {
            s++;
            l--;
        }
        while (l > 0 && (s[l - 1] == ' ' || s[l - 1] == '\t'))
            l--;
        if (l > 0 && l < sizeof(one)) {
            memcpy(one, s, l);
            one[l] = '\0';
            struct in6_addr a6;
            struct in_addr a4;
            if (sa->sa_family == AF_INET && inet_pton(AF_INET, one, &a4) == 1 &&
                memcmp(&((const struct sockaddr_in *)sa)->sin_addr, &a4, sizeof(a4)) == 0)
                return true;
            if (sa->sa_family == AF_INET6 && inet_pton(AF_INET6, one, &a6) == 1 &&
                memcmp(&((const struct sockaddr_in6 *)sa)->sin6_addr, &a6, sizeof(a6)) == 0)
                return true;
        }
        p += n;
        if (*p == ',')
            p++;
    }
    return false;
}

static void fetched(const struct push_fetch_result *r, void *data);

static void resolved(uv_getaddrinfo_t *gai, int status, struct addrinfo *res)
{
    struct preview_call *c = gai->data;
    c->resolving = false;
    if (c->done) {
        uv_freeaddrinfo(res);
        call_maybe_free(c);
        return;
    }
    if (status < 0 || res == NULL) {
        uv_freeaddrinfo(res);
        call_end(c, 502, "could not resolve the page's host", NULL);
        return;
    }
    struct api_deps *d = c->d;
    const struct addrinfo *pick = NULL;
    for (const struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6)
            continue;
        if (!d->preview_allow_private && !push_addr_public(ai->ai_addr) &&
            !address_listed(d->preview_allow_addresses, ai->ai_addr)) {
            log_warn("preview_private_refused", "host=%s hops=%u", c->pu.host, c->hops);
            uv_freeaddrinfo(res);
            call_end(c, 403, "link previews of private or local addresses are not allowed", NULL);
            return;
        }
        if (pick == NULL)
            pick = ai;
    }
    if (pick == NULL) {
        uv_freeaddrinfo(res);
        call_end(c, 502, "could not resolve the page's host", NULL);
        return;
    }
    uint64_t now = uv_now(c->loop);
    struct push_fetch_opts o = {
        .url = c->url,
        .host = c->pu.host,
        .port = c->pu.port,
        .addr = pick->ai_addr,
        .addr_len = pick->ai_addrlen,
        .timeout_ms = c->deadline_ms > now ? c->deadline_ms - now : 1,
        .max_body = d->preview_max_bytes,
        .user_agent = "Mozilla/5.0 (compatible; sparkgate-preview)",
    };
    c->fetch = push_fetch_start(d->fetch, &o, fetched, c);
    uv_freeaddrinfo(res);
    if (c->fetch == NULL)
        call_end(c, 502, "could not fetch the page", NULL);
}

/* Resolves c->pu.host (numeric hosts included: uv_getaddrinfo answers them at once). */
static void resolve(struct preview_call *c)
{
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
    c->gai.data = c;
    int rc = uv_getaddrinfo(c->loop, &c->gai, resolved, c->pu.host, c->pu.port, &hints);
    if (rc < 0) {
        call_end(c, 502, "could not resolve the page's host", NULL);
        return;
    }
    c->resolving = true;
}

/* ref resolved against base; NULL unless the result is an http(s) URL of sane length. */
static char *absolute_url(const char *base, const char *ref)
{
    CURLU *u = curl_url();
    char *abs = NULL, *out = NULL;
    if (u != NULL && curl_url_set(u, CURLUPART_URL, base, 0) == CURLUE_OK &&
        curl_url_set(u, CURLUPART_URL, ref, CURLU_URLENCODE) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_URL, &abs, 0) == CURLUE_OK &&
        (strncasecmp(abs, "http://", 7) == 0 || strncasecmp(abs, "https://", 8) == 0) &&
        strlen(abs) <= PREVIEW_URL_MAX)
        out = mem_strdup(abs);
    curl_free(abs);
    curl_url_cleanup(u);
    return out;
}

static bool is_html(const char *ct)
{
    if (ct == NULL || ct[0] == '\0')
        return true; /* unlabelled: let the scanner look */
    return strncasecmp(ct, "text/html", 9) == 0 ||
           strncasecmp(ct, "application/xhtml+xml", 21) == 0;
}

static void answer_page(struct preview_call *c, const struct push_fetch_result *r)
{
    json_t *out = json_object();
    if (is_html(r->content_type)) {
        struct api_html_meta m;
        api__html_meta(r->body, r->len, c->want_img, &m);
        char *image = m.image ? absolute_url(c->url, m.image) : NULL;
        if (image != NULL)
            json_object_set_new(out, "image", json_string(image));
        if (m.description != NULL)
            json_object_set_new(out, "descriptionShort", json_string(m.description));
        if (m.title != NULL)
            json_object_set_new(out, "title", json_string(m.title));
        mem_free(image);
        api__html_meta_cleanup(&m);
    }
    log_debug("preview", "host=%s hops=%u len=%zu truncated=%d fields=%zu", c->pu.host, c->hops,
              r->len, r->truncated, json_object_size(out));
    char *text = json_dumps(out, JSON_COMPACT);
    if (text != NULL)
        cache_put(c->d, c->key, text, tick_now(c->d->tick));
    free(text);
    call_end(c, 200, NULL, out);
}

static void fetched(const struct push_fetch_result *r, void *data)
{
    struct preview_call *c = data;
    c->fetch = NULL;
    if (r->err == -ETIMEDOUT) {
        call_end(c, 504, "the page did not answer in time", NULL);
        return;
    }
    if (r->err < 0) {
        log_info("preview_failed", "host=%s err=%s", c->pu.host, log_errname(r->err));
        call_end(c, 502, "could not fetch the page", NULL);
        return;
    }
    long st = r->status;
    if (st == 301 || st == 302 || st == 303 || st == 307 || st == 308) {
        if (r->location == NULL) {
            call_end(c, 502, "redirect without a location", NULL);
            return;
        }
        if (c->hops >= c->d->preview_max_redirects) {
            call_end(c, 502, "too many redirects", NULL);
            return;
        }
        struct push_url pu;
        if (strlen(r->location) > PREVIEW_URL_MAX || push_url_parse(r->location, true, &pu) < 0) {
            call_end(c, 502, "redirect to an unsupported URL", NULL);
            return;
        }
        mem_free(c->url);
        c->url = mem_strdup(r->location);
        c->pu = pu;
        c->hops++;
        resolve(c); /* the new host is checked like the first one */
        return;
    }
    if (st < 200 || st > 299) {
        char text[64];
        snprintf(text, sizeof(text), "the page answered HTTP %ld", st);
        call_end(c, 502, text, NULL);
        return;
    }
    answer_page(c, r);
}

/* GET /preview/{quality}/{url} and GET /preview/{quality}?url= */
static void handle_preview(struct http_req *req, const char *user, struct session *s,
                           struct api_deps *d)
{
    (void)s;
    if (d->fetch == NULL) {
        api__error(req, 501, "link previews are disabled (preview.enabled)");
        return;
    }
    const char *q = http_req_param(req, "quality");
    char *end = NULL;
    errno = 0;
    long quality = q ? strtol(q, &end, 10) : 0;
    if (q == NULL || end == q || *end != '\0' || errno != 0 || quality < QUALITY_MIN ||
        quality > QUALITY_MAX) {
        api__error(req, 400, "quality must be an integer (-1: all images, -2: none)");
        return;
    }
    const char *url = http_req_param(req, "url");
    if (url == NULL || url[0] == '\0')
        url = http_req_query(req, "url");
    size_t ul = url ? strlen(url) : 0;
    struct push_url pu;
    if (ul == 0 || ul > PREVIEW_URL_MAX || !api__xml_text_valid(url, ul) ||
        push_url_parse(url, true, &pu) < 0) {
        api__error(req, 400, "url must be an absolute http or https URL");
        return;
    }
    bool want_img = quality > 0 || quality == -1;
    size_t kl = ul + 3;
    char *key = mem_alloc(kl);
    snprintf(key, kl, "%c|%s", want_img ? 'i' : 'n', url);
    uint64_t now = tick_now(d->tick);
    const char *hit = d->preview_cache_ms ? cache_get(d, key, now) : NULL;
    if (hit != NULL) {
        mem_free(key);
        http_reply(req, 200, "application/json", hit, strlen(hit));
        return;
    }
    unsigned wait_s = rate_charge(d, user, now);
    if (wait_s > 0) {
        mem_free(key);
        char ra[16];
        snprintf(ra, sizeof(ra), "%u", wait_s);
        http_req_add_header(req, "Retry-After", ra);
        api__error(req, 429, "too many link previews; try again later");
        return;
    }
    struct preview_call *c = mem_calloc(1, sizeof(*c));
    c->d = d;
    c->req = req;
    c->key = key;
    c->url = mem_strdup(url);
    c->pu = pu;
    c->want_img = want_img;
    c->loop = tick_loop(d->tick);
    c->deadline_ms = uv_now(c->loop) + d->preview_timeout_ms;
    uv_timer_init(c->loop, &c->timer);
    c->timer.data = c;
    c->timer_open = true;
    uv_timer_start(&c->timer, deadline_hit, d->preview_timeout_ms, 0);
    http_req_on_abort(req, call_aborted, c);
    resolve(c);
}

int api__preview_register(struct api_deps *d)
{
    int rc =
        api__route_user(d, HTTP_GET, API_PREFIX "/preview/{quality}/{url*}", handle_preview, 0);
    if (rc == 0)
        rc = api__route_user(d, HTTP_GET, API_PREFIX "/preview/{quality}", handle_preview, 0);
    return rc;
}
