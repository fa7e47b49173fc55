/* subs.c: subscriptions (contract W2 and the delete endpoint): validation of the browser's
 * PushSubscription JSON, the endpoint's address check, and the writes to store/. */
#define LOG_MODULE "push"

#include "push/push_int.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "core/b64.h"
#include "core/mem.h"
#include "store/store.h"

#include "core/log.h"

#define RESOURCE_MAX 255

struct sub_op {
    struct push_op base;
    push_done_cb *cb;
    struct store_push_sub sub; /* what will be stored (auth is a secret: wiped) */
    struct push_url url;
    uv_getaddrinfo_t gai;
    int deletes; /* unsubscribe: deletions not yet answered */
    int status;
};

static int decode_exact(const char *text, uint8_t *out, size_t want)
{
    uint8_t *raw = NULL;
    size_t n = 0;
    if (text == NULL || b64_decode(text, strlen(text), B64_URL, &raw, &n) < 0)
        return -EINVAL;
    int rc = n == want ? 0 : -EINVAL;
    if (rc == 0)
        memcpy(out, raw, want);
    OPENSSL_cleanse(raw, n);
    mem_free(raw);
    return rc;
}

int push__sub_keys(const struct store_push_sub *s, uint8_t pub[PUSH_P256_PUB_LEN],
                   uint8_t auth[PUSH_AUTH_LEN])
{
    if (decode_exact(s->p256dh, pub, PUSH_P256_PUB_LEN) < 0 || !push_p256_valid(pub) ||
        decode_exact(s->auth, auth, PUSH_AUTH_LEN) < 0)
        return -EINVAL;
    return 0;
}

static void sub_finish(struct sub_op *o, int status)
{
    push_done_cb *cb = o->cb;
    if (!o->base.cancelled && cb != NULL)
        cb(status, o->base.data);
    OPENSSL_cleanse(&o->sub, sizeof(o->sub));
    push__op_release(&o->base);
}

static void stored(int status, void *data)
{
    struct sub_op *o = data;
    if (status == 0)
        log_info("subscribed", "user=%s resource=%s origin=%s", o->sub.user, o->sub.resource,
                 o->url.origin);
    sub_finish(o, status == 0 ? 0 : -EIO);
}

/* The user's current subscriptions: drop those the new one replaces (same resource) and the
 * oldest beyond max_subs, then store it. Operations run in order, so the put comes last. */
static void listed_for_put(int status, const struct store_push_sub *subs, size_t n, void *data)
{
    struct sub_op *o = data;
    struct push *p = o->base.p;
    if (status != 0 || p->closing) {
        sub_finish(o, p->closing ? -ECANCELED : -EIO);
        return;
    }
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(subs[i].endpoint, o->sub.endpoint) == 0)
            continue; /* replaced by the put */
        if (strcmp(subs[i].resource, o->sub.resource) == 0) {
            store_push_delete(p->db, o->sub.user, subs[i].endpoint, NULL, NULL);
            continue;
        }
        kept++;
    }
    /* oldest first in subs: drop from the front until the new one fits */
    for (size_t i = 0; i < n && p->max_subs > 0 && kept + 1 > p->max_subs; i++) {
        if (strcmp(subs[i].endpoint, o->sub.endpoint) == 0 ||
            strcmp(subs[i].resource, o->sub.resource) == 0)
            continue;
        store_push_delete(p->db, o->sub.user, subs[i].endpoint, NULL, NULL);
        log_info("subscription_evicted", "user=%s resource=%s", o->sub.user, subs[i].resource);
        kept--;
    }
    o->sub.created = (int64_t)time(NULL);
    store_push_put(p->db, &o->sub, stored, o);
}

static void checked(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct sub_op *o = container_of(req, struct sub_op, gai);
    struct push *p = o->base.p;
    if (p->closing) {
        uv_freeaddrinfo(res);
        sub_finish(o, -ECANCELED);
        return;
    }
    bool any = false, usable = false;
    for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        any = true;
        if (p->allow_private || push_addr_public(ai->ai_addr))
            usable = true;
    }
    uv_freeaddrinfo(res);
    if (status < 0 || !any) {
        log_info("subscribe_refused", "user=%s why=unresolvable", o->sub.user);
        sub_finish(o, -EHOSTUNREACH);
        return;
    }
    if (!usable) {
        log_info("subscribe_refused", "user=%s why=private_address", o->sub.user);
        sub_finish(o, -EACCES);
        return;
    }
    store_push_list(p->db, o->sub.user, listed_for_put, o);
}

/* Fills o->sub from the PushSubscription JSON. 0 or -EINVAL / -EPROTONOSUPPORT. */
static int parse_subscription(struct push *p, struct sub_op *o, const char *json, size_t len)
{
    json_t *j = json_loadb(json, len, JSON_REJECT_DUPLICATES, NULL);
    const char *endpoint = json_string_value(json_object_get(j, "endpoint"));
    json_t *keys = json_object_get(j, "keys");
    const char *p256dh = json_string_value(json_object_get(keys, "p256dh"));
    const char *auth = json_string_value(json_object_get(keys, "auth"));
    uint8_t pub[PUSH_P256_PUB_LEN], secret[PUSH_AUTH_LEN];
    int rc = -EINVAL;
    if (!json_is_object(j) || endpoint == NULL || p256dh == NULL || auth == NULL ||
        strlen(endpoint) >= sizeof(o->sub.endpoint))
        goto out;
    rc = push_url_parse(endpoint, p->allow_http, &o->url);
    if (rc < 0)
        goto out;
    rc = -EINVAL;
    if (decode_exact(p256dh, pub, sizeof(pub)) < 0 || !push_p256_valid(pub) ||
        decode_exact(auth, secret, sizeof(secret)) < 0)
        goto out;
    /* stored in one canonical form: base64url without padding */
    char *a = b64_encode(pub, sizeof(pub), B64_URL, NULL);
    char *b = b64_encode(secret, sizeof(secret), B64_URL, NULL);
    snprintf(o->sub.p256dh, sizeof(o->sub.p256dh), "%s", a);
    snprintf(o->sub.auth, sizeof(o->sub.auth), "%s", b);
    OPENSSL_cleanse(b, strlen(b));
    mem_free(a);
    mem_free(b);
    snprintf(o->sub.endpoint, sizeof(o->sub.endpoint), "%s", endpoint);
    rc = 0;
out:
    OPENSSL_cleanse(secret, sizeof(secret));
    json_decref(j);
    return rc;
}

int push_subscribe(struct push *p, const char *user, const char *resource, const char *json,
                   size_t len, push_done_cb *cb, void *data, struct push_op **out)
{
    if (p->closing)
        return -ECANCELED;
    if (resource == NULL || *resource == '\0' || strlen(resource) > RESOURCE_MAX ||
        strlen(user) >= STORE_USER_MAX)
        return -EINVAL;
    struct sub_op *o = (struct sub_op *)push__op_new(p, 'u', sizeof(*o), NULL, data);
    o->cb = cb;
    int rc = parse_subscription(p, o, json, len);
    if (rc < 0) {
        push__op_release(&o->base);
        return rc;
    }
    snprintf(o->sub.user, sizeof(o->sub.user), "%s", user);
    snprintf(o->sub.resource, sizeof(o->sub.resource), "%s", resource);
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
    rc = uv_getaddrinfo(p->loop, &o->gai, checked, o->url.host, o->url.port, &hints);
    if (rc < 0) {
        OPENSSL_cleanse(&o->sub, sizeof(o->sub));
        push__op_release(&o->base);
        return -EIO;
    }
    if (out != NULL)
        *out = &o->base;
    return 0;
}

/* ---- unsubscribe ---- */

static void deleted(int status, void *data)
{
    struct sub_op *o = data;
    if (status != 0 && status != -ENOENT)
        o->status = -EIO;
    if (--o->deletes == 0)
        sub_finish(o, o->status);
}

static void listed_for_delete(int status, const struct store_push_sub *subs, size_t n, void *data)
{
    struct sub_op *o = data;
    struct push *p = o->base.p;
    if (status != 0) {
        sub_finish(o, -EIO);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (strcmp(subs[i].resource, o->sub.resource) != 0)
            continue;
        o->deletes++;
        store_push_delete(p->db, o->sub.user, subs[i].endpoint, deleted, o);
    }
    if (o->deletes == 0) {
        sub_finish(o, -ENOENT);
        return;
    }
    log_info("unsubscribed", "user=%s resource=%s count=%d", o->sub.user, o->sub.resource,
             o->deletes);
}

int push_unsubscribe(struct push *p, const char *user, const char *resource, push_done_cb *cb,
                     void *data, struct push_op **out)
{
    if (p->closing)
        return -ECANCELED;
    if (resource == NULL || *resource == '\0' || strlen(resource) > RESOURCE_MAX ||
        strlen(user) >= STORE_USER_MAX)
        return -EINVAL;
    struct sub_op *o = (struct sub_op *)push__op_new(p, 'u', sizeof(*o), NULL, data);
    o->cb = cb;
    snprintf(o->sub.user, sizeof(o->sub.user), "%s", user);
    snprintf(o->sub.resource, sizeof(o->sub.resource), "%s", resource);
    store_push_list(p->db, user, listed_for_delete, o);
    if (out != NULL)
        *out = &o->base;
    return 0;
}
