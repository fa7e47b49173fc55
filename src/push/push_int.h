/* push_int.h: shared between the files of push/ (ece.c, vapid.c, url.c, auto.c, client.c,
 * push.c, subs.c). No other module includes this. */
#ifndef SPARKGATE_PUSH_PUSH_INT_H
#define SPARKGATE_PUSH_PUSH_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <uv.h>

#include "push/push.h"

struct curl_slist;
struct store_push_sub;

/* The public point of a private scalar: 0, -EINVAL (not in [1, n-1]), -EIO. */
int push__p256_public(const uint8_t priv[32], uint8_t pub[PUSH_P256_PUB_LEN]);
/* An EVP_PKEY for P-256: a key pair when priv is given, else a public key. NULL on failure. */
EVP_PKEY *push__p256_key(const uint8_t *priv, const uint8_t pub[PUSH_P256_PUB_LEN]);

/* ---- client.c: HTTP requests through one curl multi handle on the loop ---- */

struct push_client;
struct push_http;

struct push_client_opts {
    uv_loop_t *loop;
    uint64_t timeout_ms;
    const char *ca_file;
    bool allow_http;
};

/* err: 0 when a response arrived (status is its code), else a negative errno (-ETIMEDOUT,
 * -ECONNREFUSED, -EPROTO for TLS failures, -EIO otherwise). retry_after_ms: the response's
 * Retry-After in ms (seconds or an HTTP date), or -1 when absent. Runs exactly once unless
 * cancelled, never inside push__http_start. */
typedef void push_http_cb(int err, long status, int64_t retry_after_ms, void *data);

struct push_client *push__client_new(const struct push_client_opts *o);
/* Cancels every request (no callbacks), closes the handles; frees itself once they closed. */
void push__client_close(struct push_client *c);
/* POSTs body to url, connecting to `address` (numeric, already checked) instead of resolving
 * the URL's host; headers are consumed. NULL when libcurl refused the request (headers freed). */
struct push_http *push__http_start(struct push_client *c, const char *url, const char *host,
                                   const char *port, const char *address,
                                   struct curl_slist *headers, const uint8_t *body, size_t len,
                                   push_http_cb *cb, void *data);
void push__http_cancel(struct push_http *h);
/* The CURLOPT_RESOLVE entry host:port:address into out (an IPv6 address bracketed); false
 * when there is none: an IPv6-literal host (curl connects to the literal itself). */
bool push__resolve_entry(char *out, size_t size, const char *host, const char *port,
                         const char *address);

/* ---- subs.c ---- */

/* Decodes and checks a stored subscription's keys. 0 or -EINVAL. */
int push__sub_keys(const struct store_push_sub *s, uint8_t pub[PUSH_P256_PUB_LEN],
                   uint8_t auth[PUSH_AUTH_LEN]);

/* ---- push.c, shared with subs.c ---- */

struct push {
    uv_loop_t *loop;
    struct tick *tick;
    struct tick_sub *tick_sub;
    struct store_db *db;
    struct push_vapid *vapid;
    struct push_client *client;
    char *subject;
    uint64_t ttl_s, vapid_lifetime_s, retry_base_ms, retry_max_ms;
    unsigned retries, max_inflight, inflight;
    size_t max_queue, max_subs, queued;
    bool allow_http, allow_private, closing;
    struct push_delivery *waiting; /* deliveries not in flight: queued or backing off */
    struct push_delivery *active;  /* resolving or in flight */
    struct map *jwts;              /* origin -> struct push_jwt */
};

/* An operation a caller may cancel (subscribe, unsubscribe, send). */
struct push_op {
    struct push *p;
    int kind; /* 's' send, 'u' subscription change */
    void *cb;
    void *data;
    bool cancelled;
    int pending; /* references: the call under way, deliveries not yet judged */
};

struct push_op *push__op_new(struct push *p, int kind, size_t size, void *cb, void *data);
/* Releases one pending reference; frees the op when none is left. */
void push__op_release(struct push_op *op);

#endif
