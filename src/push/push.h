/* push.h: Web Push (RFC 8030) from the gateway to its users' browsers. Owns the VAPID key pair
 * (RFC 8292, ES256), the payload encryption (RFC 8291 with the aes128gcm content coding of
 * RFC 8188), subscription checks (https, keys, no private addresses unless allowed), and the
 * delivery queue: outgoing HTTPS POSTs through libcurl's multi interface on the libuv loop
 * (HTTP/2 when the push service offers it), with a bounded queue, a cap on requests in flight,
 * retries with back-off on 429/5xx and network errors (Retry-After honoured), and pruning of
 * subscriptions the push service answers 404/410 for. Host names are resolved with
 * uv_getaddrinfo and the checked address is pinned for the connection, so a lookup never blocks
 * the loop and DNS rebinding cannot reach a private address. Subscriptions live in store/.
 * Never logs key material, auth secrets or endpoints' paths (capability URLs).
 * Loop thread only, except the pure functions marked "any thread".
 * Specs: RFC 8030, RFC 8188, RFC 8291, RFC 8292; contract §1.9 and §4. */
#ifndef SPARKGATE_PUSH_PUSH_H
#define SPARKGATE_PUSH_PUSH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <uv.h>

struct push;
struct push_op;
struct sockaddr;
struct store_db;
struct tick;

/* One aes128gcm record of 4096 bytes: 86 bytes of header, the plaintext, the 0x02 delimiter
 * and the 16-byte tag. Push services must accept 4096-byte bodies (RFC 8030 §7.2). */
#define PUSH_BODY_MAX     4096
#define PUSH_HEADER_LEN   86
#define PUSH_PAYLOAD_MAX  (PUSH_BODY_MAX - PUSH_HEADER_LEN - 1 - 16) /* 3993 */
#define PUSH_P256_PUB_LEN 65 /* uncompressed point 04 || X || Y */
#define PUSH_AUTH_LEN     16
#define PUSH_TOPIC_MAX    32 /* RFC 8030 §5.4: at most 32 base64url characters */

/* ---- crypto (any thread) ---- */

/* Encrypts plaintext for a subscription (RFC 8291 §3.4): out gets salt | rs=4096 | idlen=65 |
 * sender public key | ciphertext | tag, *outlen its length (len + 103). as_private (32 bytes)
 * and salt (16 bytes) are seams for the RFC's example; NULL makes them fresh and random.
 * 0; -EMSGSIZE when len > PUSH_PAYLOAD_MAX or outcap is too small; -EINVAL when ua_public is
 * not a point on P-256 (or as_private not a valid scalar); -EIO on an OpenSSL failure. */
int push_ece_encrypt(const uint8_t ua_public[PUSH_P256_PUB_LEN],
                     const uint8_t auth_secret[PUSH_AUTH_LEN], const void *plaintext, size_t len,
                     const uint8_t *as_private, const uint8_t *salt, uint8_t *out, size_t outcap,
                     size_t *outlen);
/* True when pub is an uncompressed point on P-256. */
bool push_p256_valid(const uint8_t pub[PUSH_P256_PUB_LEN]);

/* The application server's identity (RFC 8292). */
struct push_vapid;
/* From the 32-byte private scalar; NULL when it is not a valid P-256 scalar (0 or >= n). */
struct push_vapid *push_vapid_new(const uint8_t priv[32]);
void push_vapid_free(struct push_vapid *v);
/* The public key (65 bytes) and its base64url text without padding (87 characters). */
const uint8_t *push_vapid_public(const struct push_vapid *v);
const char *push_vapid_public_b64(const struct push_vapid *v);
/* An ES256 JWT {"typ":"JWT","alg":"ES256"}.{"aud","exp","sub"} with a raw R||S signature
 * (caller frees with mem_free), or NULL on an OpenSSL failure. */
char *push_vapid_jwt(const struct push_vapid *v, const char *aud, const char *sub, int64_t exp);

/* ---- endpoint checks (any thread) ---- */

struct push_url {
    bool https;
    char host[256]; /* without brackets for IPv6 literals */
    char port[8];
    char origin[320]; /* scheme://host[:port] as the VAPID audience (RFC 8292 §2) */
};

/* Parses an absolute http(s) URL without credentials. 0, -EINVAL (malformed, not http(s), has
 * user:password, too long), or -EPROTONOSUPPORT for http when allow_http is false. */
int push_url_parse(const char *url, bool allow_http, struct push_url *out);
/* True when an address may receive pushes: not loopback, private (RFC 1918, ULA), link-local,
 * CGNAT, unspecified, multicast, documentation/benchmark ranges, or an IPv4-mapped/NAT64
 * form of those. */
bool push_addr_public(const struct sockaddr *sa);

/* ---- HTTP GET for other modules (link previews): the same curl multi on the loop ---- */

struct push_client;
struct push_http;

/* A finished GET. err: 0 when a response arrived (status its code), else a negative errno
 * (-ETIMEDOUT, -ECONNREFUSED, -EPROTO for TLS, -EIO). location: the absolute URL of a redirect
 * (NULL when none; not followed). content_type: the header's value ("" when none). body: the
 * first len bytes (NUL-terminated, decoded from any content coding); truncated when there were
 * more than max_body. Everything is borrowed for the callback. */
struct push_fetch_result {
    int err;
    long status;
    const char *location;
    const char *content_type;
    const char *body;
    size_t len;
    bool truncated;
};

typedef void push_fetch_cb(const struct push_fetch_result *r, void *data);

struct push_fetch_opts {
    const char *url;             /* absolute http(s) URL */
    const char *host, *port;     /* its host (no brackets) and port, as push_url_parse gives */
    const struct sockaddr *addr; /* the resolved and checked address: the only one connected to */
    size_t addr_len;
    uint64_t timeout_ms; /* whole transfer, connection included */
    size_t max_body;     /* bytes of body kept; the transfer stops there */
    const char *user_agent;
};

/* A client for GETs (its own multi handle). ca_file: extra trusted certificates, or NULL. */
struct push_client *push_fetch_client_new(uv_loop_t *loop, const char *ca_file);
/* Cancels every GET (no callbacks) and closes; frees itself once the loop ran the closes. */
void push_fetch_client_close(struct push_client *c);
/* GETs o->url connecting only to o->addr (no redirects followed, no proxy). cb runs exactly
 * once unless cancelled, never inside this call. NULL when libcurl refused the request. */
struct push_http *push_fetch_start(struct push_client *c, const struct push_fetch_opts *o,
                                   push_fetch_cb *cb, void *data);
void push_fetch_cancel(struct push_http *h);

/* ---- automatic pushes (contract §4.5) ---- */

struct push_auto_opts {
    const char *user;   /* the recipient's local part */
    const char *domain; /* xmpp.domain */
    bool include_body;  /* push.include_body */
};

/* Decides whether an event a user did not see (session_mgr_opts.on_unseen) deserves a push, and
 * builds the notification (contract §4.4 shape, without "token"): a chat or normal message with
 * a body, a group-chat message that mentions the user (XEP-0372 reference to the user's JID, or
 * the local part as a word in the body) and carries no delay (history), or a room invitation.
 * stanza is the raw XML of the stanza the event came from (for delay and references), or NULL.
 * Returns a new object, or NULL when nothing is to be pushed. peer (size PUSH_PEER_MAX) gets
 * whom a reply goes to ("" when no reply action applies) and topic (size PUSH_TOPIC_MAX + 1) a
 * Topic that lets the push service replace older undelivered pushes of the same conversation. */
#define PUSH_PEER_MAX 1024
json_t *push_auto_notification(const char *name, json_t *payload, const char *stanza,
                               const struct push_auto_opts *o, char *peer, char *topic);

/* ---- the sender (loop thread) ---- */

struct push_opts {
    uv_loop_t *loop;
    struct tick *tick;
    struct store_db *db;
    const uint8_t *vapid_private; /* 32 bytes; copied */
    const char *subject;          /* VAPID "sub": mailto: or https: URI */
    uint64_t ttl_s;               /* TTL header */
    uint64_t vapid_lifetime_s;    /* exp - now of the VAPID JWT, <= 24 h */
    uint64_t timeout_ms;          /* one request, connect included */
    unsigned retries;             /* further attempts after the first */
    uint64_t retry_base_ms;       /* first back-off; doubles per attempt */
    uint64_t retry_max_ms;        /* longest wait; a Retry-After beyond it gives up */
    size_t max_queue;             /* deliveries waiting, resolving, in flight or backing off */
    unsigned max_inflight;        /* concurrent requests */
    size_t max_subs;              /* subscriptions per user (the oldest goes) */
    bool allow_http;              /* http:// endpoints (tests) */
    bool allow_private;           /* endpoints on private addresses (tests) */
    const char *ca_file;          /* extra trusted CAs in PEM ("" or NULL: system store) */
};

/* Starts the sender (curl multi, timer, tick subscription). NULL with a message in err when the
 * VAPID key is invalid or libcurl cannot start. */
struct push *push_new(const struct push_opts *o, char *err, size_t errlen);
/* Stops: deliveries end (their ops report what they had), handles close asynchronously on the
 * loop; later calls fail with -ECANCELED. Idempotent. The object stays valid until push_free. */
void push_close(struct push *p);
/* Frees after the loop has run the closes (and after store_db_close). NULL is fine. */
void push_free(struct push *p);
/* The VAPID public key, base64url without padding (W1). */
const char *push_public_key(const struct push *p);
/* Deliveries in the queue (any state), for tests and metrics. */
size_t push_queued(const struct push *p);

/* Cancels an operation: its callback will not run (work already under way still finishes). */
void push_op_cancel(struct push_op *op);

typedef void push_done_cb(int status, void *data);

/* W2: validates the PushSubscription JSON ({"endpoint","keys":{"p256dh","auth"}}), checks the
 * endpoint (scheme, and that its host resolves to public addresses unless allow_private), then
 * stores it for (user, endpoint), replacing the user's other subscriptions of the same resource
 * and dropping the oldest beyond max_subs. cb(status): 0; -EINVAL malformed JSON or keys;
 * -EPROTONOSUPPORT not https; -EACCES private address; -EHOSTUNREACH the host does not resolve;
 * -EIO storage; -ECANCELED closing. A negative return means cb will not run. */
int push_subscribe(struct push *p, const char *user, const char *resource, const char *json,
                   size_t len, push_done_cb *cb, void *data, struct push_op **out);
/* Deletes the user's subscriptions tagged resource. cb(status): 0, -ENOENT none, -EIO. */
int push_unsubscribe(struct push *p, const char *user, const char *resource, push_done_cb *cb,
                     void *data, struct push_op **out);

struct push_result {
    unsigned subs;     /* subscriptions the user had */
    unsigned accepted; /* a push service answered 2xx */
    unsigned retrying; /* failed once, another attempt is scheduled */
    unsigned gone;     /* 404/410: the subscription was deleted */
    unsigned failed;   /* refused for good (other 4xx, private address, queue full...) */
};

typedef void push_send_cb(int status, const struct push_result *r, void *data);

struct push_msg {
    const char *payload; /* the JSON text the service worker receives */
    size_t len;
    const char *urgency; /* very-low | low | normal | high; NULL: normal */
    const char *topic;   /* NULL or "" for none; base64url, <= 32 characters */
};

/* Encrypts payload for each of user's subscriptions and queues one delivery per subscription.
 * cb(status, r) runs once every delivery has its first verdict (accepted, gone, failed, or
 * retrying in the background); status 0, or -EIO when the subscriptions could not be read.
 * Returns 0, -EMSGSIZE when the payload exceeds PUSH_PAYLOAD_MAX, -EINVAL for a bad urgency or
 * topic, -ECANCELED when closing (cb will not run then). */
int push_send(struct push *p, const char *user, const struct push_msg *m, push_send_cb *cb,
              void *data, struct push_op **out);

#endif
