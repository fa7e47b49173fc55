/* push.c: the sender: one delivery per (message, subscription), a bounded queue, a cap on
 * requests in flight, retries with back-off, 404/410 pruning, and the VAPID header cache.
 *
 * A delivery moves waiting -> resolving (uv_getaddrinfo) -> sending (curl) and then ends, or
 * goes back to waiting with a not-before time when it is to be retried. The shared tick
 * re-scans the waiting list, so a retry needs no timer of its own. Until its first verdict a
 * delivery reports to the send operation that made it; after that only the log hears of it. */
#define LOG_MODULE "push"

#include "push/push_int.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <openssl/crypto.h>

#include "core/map.h"
#include "core/mem.h"
#include "core/rnd.h"
#include "core/tick.h"
#include "store/store.h"

#include "core/log.h"

#define JWT_CACHE_MAX 64

struct push_jwt {
    char *header; /* "vapid t=<jwt>, k=<key>" */
    int64_t renew_s;
};

enum delivery_state {
    D_WAITING,
    D_RESOLVING,
    D_SENDING
};

struct send_op {
    struct push_op base;
    push_send_cb *cb;
    struct push_result r;
    int status;
    char user[STORE_USER_MAX];
    char *payload;
    size_t len;
    char urgency[12];
    char topic[PUSH_TOPIC_MAX + 1];
};

struct push_delivery {
    struct push_delivery *next, *prev;
    struct push *p;
    struct send_op *op; /* until the first verdict */
    enum delivery_state state;
    unsigned attempt;
    uint64_t not_before_ms;
    char user[STORE_USER_MAX];
    char *endpoint;
    struct push_url url;
    uint8_t *body;
    size_t len;
    char urgency[12];
    char topic[PUSH_TOPIC_MAX + 1];
    uv_getaddrinfo_t gai;
    struct push_http *http;
};

enum verdict {
    V_ACCEPTED,
    V_RETRYING,
    V_GONE,
    V_FAILED
};

/* ---- operations ---- */

struct push_op *push__op_new(struct push *p, int kind, size_t size, void *cb, void *data)
{
    struct push_op *op = mem_calloc(1, size);
    op->p = p;
    op->kind = kind;
    op->cb = cb;
    op->data = data;
    op->pending = 1;
    return op;
}

static void send_op_free(struct send_op *s)
{
    if (s->payload != NULL)
        OPENSSL_cleanse(s->payload, s->len);
    mem_free(s->payload);
}

void push__op_release(struct push_op *op)
{
    if (--op->pending > 0)
        return;
    if (op->kind == 's') {
        struct send_op *s = (struct send_op *)op;
        if (!op->cancelled && s->cb != NULL)
            s->cb(s->status, &s->r, op->data);
        send_op_free(s);
    }
    mem_free(op);
}

void push_op_cancel(struct push_op *op)
{
    if (op != NULL)
        op->cancelled = true;
}

/* ---- list plumbing ---- */

static void list_add(struct push_delivery **head, struct push_delivery *d)
{
    d->prev = NULL;
    d->next = *head;
    if (*head)
        (*head)->prev = d;
    *head = d;
}

static void list_del(struct push_delivery **head, struct push_delivery *d)
{
    if (d->prev)
        d->prev->next = d->next;
    else
        *head = d->next;
    if (d->next)
        d->next->prev = d->prev;
    d->next = d->prev = NULL;
}

/* ---- verdicts ---- */

static void report(struct push_delivery *d, enum verdict v)
{
    struct send_op *s = d->op;
    if (s == NULL)
        return;
    d->op = NULL;
    switch (v) {
    case V_ACCEPTED:
        s->r.accepted++;
        break;
    case V_RETRYING:
        s->r.retrying++;
        break;
    case V_GONE:
        s->r.gone++;
        break;
    case V_FAILED:
        s->r.failed++;
        break;
    }
    push__op_release(&s->base);
}

static void delivery_free(struct push_delivery *d)
{
    struct push *p = d->p;
    p->queued--;
    mem_free(d->endpoint);
    mem_free(d->body);
    mem_free(d);
}

/* Ends a delivery that is on the active list. */
static void delivery_end(struct push_delivery *d, enum verdict v)
{
    struct push *p = d->p;
    list_del(&p->active, d);
    p->inflight--;
    report(d, v);
    delivery_free(d);
}

static void pump(struct push *p);

/* ---- the VAPID header, cached per push service origin ---- */

static int free_jwt(const char *key, void *value, void *data)
{
    struct push_jwt *j = value;
    (void)key;
    (void)data;
    mem_free(j->header);
    mem_free(j);
    return 1;
}

static const char *vapid_header(struct push *p, const char *origin)
{
    int64_t now = (int64_t)time(NULL);
    struct push_jwt *j = map_get(p->jwts, origin);
    if (j != NULL && now < j->renew_s)
        return j->header;
    if (j == NULL && map_count(p->jwts) >= JWT_CACHE_MAX)
        map_walk(p->jwts, free_jwt, NULL);
    char *jwt = push_vapid_jwt(p->vapid, origin, p->subject, now + (int64_t)p->vapid_lifetime_s);
    if (jwt == NULL)
        return NULL;
    size_t n = strlen(jwt) + strlen(push_vapid_public_b64(p->vapid)) + 32;
    char *hdr = mem_alloc(n);
    snprintf(hdr, n, "vapid t=%s, k=%s", jwt, push_vapid_public_b64(p->vapid));
    mem_free(jwt);
    if (j == NULL) {
        j = mem_calloc(1, sizeof(*j));
        map_put(p->jwts, origin, j);
    }
    mem_free(j->header);
    j->header = hdr;
    j->renew_s = now + (int64_t)p->vapid_lifetime_s / 2; /* never sent within half of its exp */
    return hdr;
}

/* ---- one attempt ---- */

static void schedule_retry(struct push_delivery *d, int64_t retry_after_ms, const char *why)
{
    struct push *p = d->p;
    uint64_t delay = p->retry_base_ms;
    for (unsigned i = 1; i < d->attempt && delay < p->retry_max_ms; i++)
        delay *= 2;
    if (delay > p->retry_max_ms)
        delay = p->retry_max_ms;
    if (retry_after_ms >= 0)
        delay = (uint64_t)retry_after_ms;
    if (d->attempt > p->retries || delay > p->retry_max_ms) {
        log_warn("delivery_failed", "user=%s origin=%s attempts=%u why=%s", d->user, d->url.origin,
                 d->attempt, why);
        delivery_end(d, V_FAILED);
        return;
    }
    log_info("delivery_retry", "user=%s origin=%s attempt=%u delay_ms=%llu why=%s", d->user,
             d->url.origin, d->attempt, (unsigned long long)delay, why);
    list_del(&p->active, d);
    p->inflight--;
    d->state = D_WAITING;
    d->not_before_ms = tick_now(p->tick) + delay;
    list_add(&p->waiting, d);
    report(d, V_RETRYING);
}

static void pruned(int status, void *data)
{
    if (status != 0 && status != -ENOENT)
        log_warn("prune_failed", "err=%s", log_errname(status));
    (void)data;
}

static void http_done(int err, long status, int64_t retry_after_ms, void *data)
{
    struct push_delivery *d = data;
    struct push *p = d->p;
    d->http = NULL;
    char why[32];
    if (err < 0) {
        snprintf(why, sizeof(why), "%s", log_errname(err));
        schedule_retry(d, -1, why);
    } else if (status >= 200 && status < 300) {
        log_debug("delivered", "user=%s origin=%s status=%ld attempt=%u", d->user, d->url.origin,
                  status, d->attempt);
        delivery_end(d, V_ACCEPTED);
    } else if (status == 404 || status == 410) {
        log_info("subscription_gone", "user=%s origin=%s status=%ld", d->user, d->url.origin,
                 status);
        store_push_delete(p->db, d->user, d->endpoint, pruned, NULL);
        delivery_end(d, V_GONE);
    } else if (status == 429 || status >= 500) {
        snprintf(why, sizeof(why), "status_%ld", status);
        schedule_retry(d, retry_after_ms, why);
    } else {
        log_warn("delivery_refused", "user=%s origin=%s status=%ld", d->user, d->url.origin,
                 status);
        delivery_end(d, V_FAILED);
    }
    pump(p);
}

static struct curl_slist *headers_for(struct push *p, struct push_delivery *d, const char *auth)
{
    char line[1200];
    struct curl_slist *h = NULL;
    snprintf(line, sizeof(line), "TTL: %llu", (unsigned long long)p->ttl_s);
    h = curl_slist_append(h, line);
    snprintf(line, sizeof(line), "Urgency: %s", d->urgency);
    h = curl_slist_append(h, line);
    if (d->topic[0]) {
        snprintf(line, sizeof(line), "Topic: %s", d->topic);
        h = curl_slist_append(h, line);
    }
    h = curl_slist_append(h, "Content-Encoding: aes128gcm");
    h = curl_slist_append(h, "Content-Type: application/octet-stream");
    h = curl_slist_append(h, "Expect:"); /* no 100-continue round trip */
    size_t n = strlen(auth) + 32;
    char *a = mem_alloc(n);
    snprintf(a, n, "Authorization: %s", auth);
    h = curl_slist_append(h, a);
    mem_free(a);
    return h;
}

static void resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct push_delivery *d = container_of(req, struct push_delivery, gai);
    struct push *p = d->p;
    if (p->closing || status == UV_EAI_CANCELED) {
        uv_freeaddrinfo(res);
        delivery_end(d, V_FAILED);
        return;
    }
    if (status < 0) {
        uv_freeaddrinfo(res);
        schedule_retry(d, -1, "dns");
        pump(p);
        return;
    }
    char addr[64] = "";
    for (struct addrinfo *ai = res; ai != NULL && !addr[0]; ai = ai->ai_next) {
        if (!p->allow_private && !push_addr_public(ai->ai_addr))
            continue;
        if (getnameinfo(ai->ai_addr, ai->ai_addrlen, addr, sizeof(addr), NULL, 0, NI_NUMERICHOST) !=
            0)
            addr[0] = '\0';
    }
    uv_freeaddrinfo(res);
    if (!addr[0]) {
        log_warn("endpoint_private", "user=%s origin=%s", d->user, d->url.origin);
        delivery_end(d, V_FAILED);
        pump(p);
        return;
    }
    const char *auth = vapid_header(p, d->url.origin);
    struct push_http *h = NULL;
    d->state = D_SENDING;
    if (auth != NULL)
        h = push__http_start(p->client, d->endpoint, d->url.host, d->url.port, addr,
                             headers_for(p, d, auth), d->body, d->len, http_done, d);
    if (h == NULL) {
        log_warn("request_not_started", "user=%s origin=%s", d->user, d->url.origin);
        delivery_end(d, V_FAILED);
        pump(p);
        return;
    }
    d->http = h;
}

static void start(struct push *p, struct push_delivery *d)
{
    list_del(&p->waiting, d);
    list_add(&p->active, d);
    p->inflight++;
    d->attempt++;
    d->state = D_RESOLVING;
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
    int rc = uv_getaddrinfo(p->loop, &d->gai, resolved, d->url.host, d->url.port, &hints);
    if (rc < 0) /* the lookup never runs: count it as a failed attempt */
        schedule_retry(d, -1, "dns");
}

/* Starts what may start: due deliveries, oldest first, up to max_inflight. */
static void pump(struct push *p)
{
    if (p->closing || p->inflight >= p->max_inflight)
        return;
    uint64_t now = tick_now(p->tick);
    struct push_delivery *last = p->waiting;
    while (last != NULL && last->next != NULL)
        last = last->next;
    for (struct push_delivery *d = last; d != NULL && p->inflight < p->max_inflight;) {
        struct push_delivery *prev = d->prev;
        if (d->not_before_ms <= now)
            start(p, d);
        d = prev;
    }
}

static void on_tick(struct tick *t, uint64_t now_ms, void *data)
{
    (void)t;
    (void)now_ms;
    pump(data);
}

/* ---- sending ---- */

static void enqueue(struct push *p, struct send_op *s, const struct store_push_sub *sub)
{
    struct push_delivery *d = mem_calloc(1, sizeof(*d));
    d->p = p;
    d->op = s;
    s->base.pending++;
    p->queued++;
    snprintf(d->user, sizeof(d->user), "%s", sub->user);
    snprintf(d->urgency, sizeof(d->urgency), "%s", s->urgency);
    snprintf(d->topic, sizeof(d->topic), "%s", s->topic);
    uint8_t pub[PUSH_P256_PUB_LEN], auth[PUSH_AUTH_LEN];
    const char *why = NULL;
    if (p->queued > p->max_queue)
        why = "queue_full";
    else if (push_url_parse(sub->endpoint, p->allow_http, &d->url) < 0)
        why = "endpoint";
    else if (push__sub_keys(sub, pub, auth) < 0)
        why = "keys";
    if (why == NULL) {
        d->body = mem_alloc(PUSH_BODY_MAX);
        if (push_ece_encrypt(pub, auth, s->payload, s->len, NULL, NULL, d->body, PUSH_BODY_MAX,
                             &d->len) < 0)
            why = "encryption";
    }
    OPENSSL_cleanse(auth, sizeof(auth));
    if (why != NULL) {
        log_warn("delivery_dropped", "user=%s why=%s queued=%zu", d->user, why, p->queued);
        report(d, V_FAILED);
        delivery_free(d);
        return;
    }
    d->endpoint = mem_strdup(sub->endpoint);
    d->state = D_WAITING;
    list_add(&p->waiting, d);
}

static void listed(int status, const struct store_push_sub *subs, size_t n, void *data)
{
    struct send_op *s = data;
    struct push *p = s->base.p;
    if (status != 0 || p->closing) {
        s->status = p->closing ? -ECANCELED : -EIO;
        push__op_release(&s->base);
        return;
    }
    s->r.subs = (unsigned)n;
    for (size_t i = 0; i < n; i++)
        enqueue(p, s, &subs[i]);
    log_debug("push_queued", "user=%s subs=%zu queued=%zu", s->user, n, p->queued);
    OPENSSL_cleanse(s->payload, s->len); /* each delivery holds its ciphertext now */
    push__op_release(&s->base);          /* the store's reference; deliveries hold their own */
    pump(p);
}

static bool topic_valid(const char *t)
{
    size_t n = strlen(t);
    return n <= PUSH_TOPIC_MAX &&
           strspn(t, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") == n;
}

int push_send(struct push *p, const char *user, const struct push_msg *m, push_send_cb *cb,
              void *data, struct push_op **out)
{
    if (p->closing)
        return -ECANCELED;
    if (m->len > PUSH_PAYLOAD_MAX)
        return -EMSGSIZE;
    const char *urg = m->urgency ? m->urgency : "normal";
    if (strcmp(urg, "very-low") != 0 && strcmp(urg, "low") != 0 && strcmp(urg, "normal") != 0 &&
        strcmp(urg, "high") != 0)
        return -EINVAL;
    if (m->topic != NULL && !topic_valid(m->topic))
        return -EINVAL;
    if (strlen(user) >= STORE_USER_MAX)
        return -EINVAL;
    struct send_op *s = (struct send_op *)push__op_new(p, 's', sizeof(*s), NULL, data);
    s->cb = cb;
    snprintf(s->user, sizeof(s->user), "%s", user);
    s->payload = mem_strndup(m->payload, m->len);
    s->len = m->len;
    snprintf(s->urgency, sizeof(s->urgency), "%s", urg);
    snprintf(s->topic, sizeof(s->topic), "%s", m->topic ? m->topic : "");
    store_push_list(p->db, user, listed, s);
    if (out != NULL)
        *out = &s->base;
    return 0;
}

/* ---- life cycle ---- */

struct push *push_new(const struct push_opts *o, char *err, size_t errlen)
{
    struct push_vapid *v = push_vapid_new(o->vapid_private);
    if (v == NULL) {
        snprintf(err, errlen, "the VAPID private key is not a valid P-256 scalar");
        return NULL;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        push_vapid_free(v);
        snprintf(err, errlen, "libcurl could not be initialised");
        return NULL;
    }
    struct push_client_opts co = { .loop = o->loop,
                                   .timeout_ms = o->timeout_ms,
                                   .ca_file = o->ca_file,
                                   .allow_http = o->allow_http };
    struct push_client *c = push__client_new(&co);
    if (c == NULL) {
        push_vapid_free(v);
        curl_global_cleanup();
        snprintf(err, errlen, "libcurl multi handle could not be created");
        return NULL;
    }
    struct push *p = mem_calloc(1, sizeof(*p));
    p->loop = o->loop;
    p->tick = o->tick;
    p->db = o->db;
    p->vapid = v;
    p->client = c;
    p->subject = mem_strdup(o->subject);
    p->ttl_s = o->ttl_s;
    p->vapid_lifetime_s = o->vapid_lifetime_s ? o->vapid_lifetime_s : 12 * 3600;
    p->retry_base_ms = o->retry_base_ms;
    p->retry_max_ms = o->retry_max_ms;
    p->retries = o->retries;
    p->max_inflight = o->max_inflight ? o->max_inflight : 1;
    p->max_queue = o->max_queue;
    p->max_subs = o->max_subs;
    p->allow_http = o->allow_http;
    p->allow_private = o->allow_private;
    p->jwts = map_new();
    p->tick_sub = tick_add(p->tick, on_tick, p);
    return p;
}

void push_close(struct push *p)
{
    if (p == NULL || p->closing)
        return;
    p->closing = true;
    tick_remove(p->tick, p->tick_sub);
    p->tick_sub = NULL;
    push__client_close(p->client); /* no callbacks from here on */
    p->client = NULL;
    while (p->waiting != NULL) {
        struct push_delivery *d = p->waiting;
        list_del(&p->waiting, d);
        report(d, V_FAILED);
        delivery_free(d);
    }
    for (struct push_delivery *d = p->active, *next; d != NULL; d = next) {
        next = d->next;
        if (d->state == D_RESOLVING) {
            uv_cancel((uv_req_t *)&d->gai); /* resolved() ends it */
        } else {
            d->http = NULL; /* freed with the client */
            delivery_end(d, V_FAILED);
        }
    }
    log_info("push_closed", "queued=%zu", p->queued);
}

void push_free(struct push *p)
{
    if (p == NULL)
        return;
    push_close(p);
    map_walk(p->jwts, free_jwt, NULL);
    map_free(p->jwts);
    push_vapid_free(p->vapid);
    mem_free(p->subject);
    mem_free(p);
    curl_global_cleanup();
}

const char *push_public_key(const struct push *p)
{
    return push_vapid_public_b64(p->vapid);
}

size_t push_queued(const struct push *p)
{
    return p->queued;
}
