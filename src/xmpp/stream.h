/* stream.h: one upstream XMPP client-to-server stream (RFC 6120) on the libuv loop:
 * name resolution (uv_getaddrinfo), TCP, STARTTLS or direct TLS through OpenSSL memory BIOs with
 * one shared SSL_CTX (certificate chain and host name verified unless configured otherwise),
 * an expat streaming parser with stream restarts, SASL (SCRAM-SHA-256, SCRAM-SHA-1, PLAIN via
 * libgsasl; the PBKDF2 step runs on the libuv thread pool; XEP-0388 SASL2 with XEP-0484 FAST
 * tokens), resource binding, XEP-0198 stream management (a bounded queue of unacknowledged
 * stanzas, ack requests, resumption on a new stream with resending of what the server missed)
 * and XEP-0077 registration. It
 * knows nothing of users, tokens or HTTP: protocol duties towards the server (ping answers,
 * disco#info, roster push acks) belong to session/.
 * Deadlines use the shared tick (core/tick.h): one subscription for the whole module, never a
 * timer per stream. Loop thread only. */
#ifndef SPARKGATE_XMPP_STREAM_H
#define SPARKGATE_XMPP_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

struct tick;
struct xmpp_sm;
struct xmpp_stanza;
struct xmpp_stream;
struct xmpp_tls;

enum xmpp_tls_mode {
    XMPP_TLS_REQUIRED, /* STARTTLS must be offered and succeed */
    XMPP_TLS_STARTTLS, /* STARTTLS when offered, plain otherwise (logged as a warning) */
    XMPP_TLS_DIRECT,   /* TLS from the first byte (XEP-0368 style, port 5223) */
    XMPP_TLS_OFF,      /* never; for loopback test servers only */
};

/* Parses "required" | "starttls" | "direct" | "off". 0 or -EINVAL. */
int xmpp_tls_mode_parse(const char *s, enum xmpp_tls_mode *out);

/* The process-wide client TLS context (one SSL_CTX). ca_file (may be NULL/"") adds trusted
 * certificates to the system store; verify=false disables chain and name checks (logged loudly
 * at start). NULL with a message in err on failure. */
struct xmpp_tls *xmpp_tls_new(const char *ca_file, bool verify, char *err, size_t errlen);
void xmpp_tls_free(struct xmpp_tls *tls);

/* A SCRAM credential that stands in for the password (RFC 5802): SaltedPassword with the salt
 * and iteration count the server sent. Captured at a password login; a later login with it
 * succeeds without the password as long as the server keeps the same salt and count (hashed
 * storage, e.g. Prosody's internal_hashed). Secret: wipe it after use. */
struct xmpp_scram_cred {
    char mech[32];  /* "SCRAM-SHA-1" or "SCRAM-SHA-256" (never -PLUS) */
    char salt[256]; /* base64, exactly as the server sent it */
    uint32_t iterations;
    uint8_t salted_password[64];
    size_t salted_len; /* 20 for SHA-1, 32 for SHA-256 */
};

/* A FAST token (XEP-0484) granted by a server that offers SASL2 (XEP-0388) with FAST. */
struct xmpp_fast_token {
    char mech[32]; /* e.g. "HT-SHA-256-NONE" */
    char token[512];
    int64_t expiry; /* epoch seconds, 0 unknown */
};

struct xmpp_stream_opts {
    const char *host; /* where to connect: name or address */
    uint16_t port;
    const char *domain;   /* stream 'to', SNI and the certificate name checked */
    const char *username; /* local part */
    /* Borrowed for the duration of xmpp_stream_open only: the stream keeps a private copy that
     * it wipes (OPENSSL_cleanse) as soon as authentication ends. */
    const char *password;
    /* Instead of a password (used only when password == NULL; at most one of them):
     * scram: only its mechanism is offered; if the server's salt or iteration count differ
     *   from the stored ones the attempt fails with -ESTALE (the credential is out of date).
     * fast: log in with the FAST token over SASL2; -EACCES when the server refuses it.
     * Both borrowed for the duration of xmpp_stream_open only (copied and wiped later). */
    const struct xmpp_scram_cred *scram;
    const struct xmpp_fast_token *fast;
    /* With a password (or FAST token): when the server offers SASL2 with FAST, authenticate
     * over SASL2 and request a (new) FAST token; read it with xmpp_stream_fast_token. */
    bool request_fast;
    /* SASL2 user-agent id (a UUID, stable per user and gateway: FAST tokens are bound to it).
     * Required with fast and request_fast; 1-128 of [A-Za-z0-9._:-]. */
    const char *user_agent_id;
    const char *resource; /* requested resource; the server may assign another */
    enum xmpp_tls_mode tls;
    struct xmpp_tls *tls_ctx;    /* required unless tls == XMPP_TLS_OFF */
    struct tick *tick;           /* the shared tick, for the connect deadline (required) */
    uint64_t connect_timeout_ms; /* from start until bound (or authenticated, auth_only); 0: 30 s */
    size_t max_stanza;           /* a larger inbound stanza is a stream error (policy-violation);
                                    0: 256 KiB */
    bool auth_only;              /* stop after SASL success: verifies a password, binds nothing */
    bool sm;                     /* enable XEP-0198 (with resumption) when offered */
    /* The XEP-0198 state of a lost stream (xmpp_stream_sm_take): after authentication the
     * stream sends <resume/> instead of binding when the state is resumable and the server
     * offers SM. <resumed/>: the stanzas the server missed are resent and on_ready(0) follows
     * with xmpp_stream_resumed() true (same JID, no new presence needed). <failed/> (or not
     * resumable): the stream binds a new resource as usual and keeps the old state for
     * xmpp_stream_resume_leftover. Consumed when xmpp_stream_open returns 0 (the stream frees
     * it or hands it back); left to the caller otherwise. Requires sm. */
    struct xmpp_sm *resume;
};

/* The callbacks. Each is optional except on_ready. `data` is opts' user pointer.
 *
 * on_ready fires exactly once (never inside xmpp_stream_open): status 0 when the stream is bound
 * (or, auth_only, authenticated); otherwise a negative errno:
 *   -EACCES     SASL failure (wrong credentials; not-authorized / account-disabled)
 *   -ESTALE     a stored SCRAM credential no longer matches the server's salt/iterations
 *   -ENOTSUP    a FAST token was given but the server offers no SASL2 FAST with its mechanism
 *   -ETIMEDOUT  the connect deadline passed
 *   -EPROTO     protocol or TLS failure (bad certificate, no common mechanism, required TLS
 *               not offered, malformed XML), with details in the log
 *   libuv codes for DNS and socket errors (UV_ECONNREFUSED, UV_EAI_NONAME, ...)
 * on_stanza fires for every top-level stanza (message, presence, iq) received after
 *   on_ready(0); the stanza is borrowed for the call (take a reference to keep it). Nonzas
 *   (SM acks and requests) are handled inside and never reported.
 * on_closed fires exactly once after on_ready(0), when the stream ends for any reason:
 *   0 after our own xmpp_stream_close, -ECONNRESET on a network loss or the server's
 *   </stream:stream>, -EPROTO for a stream error or malformed XML (reason = the stream error
 *   condition, e.g. "conflict", "policy-violation", or a short text; may be NULL).
 * In auth_only mode the stream closes itself after on_ready(0) and on_closed is not called.
 *
 * xmpp_stream_free may be called from inside any of these callbacks. */
struct xmpp_stream_cbs {
    void (*on_ready)(struct xmpp_stream *s, int status, void *data);
    void (*on_stanza)(struct xmpp_stream *s, struct xmpp_stanza *st, void *data);
    void (*on_closed)(struct xmpp_stream *s, int status, const char *reason, void *data);
};

/* Starts connecting. On success returns 0 and the stream in *out; on_ready will fire.
 * -EINVAL for bad options (on_ready never fires then, *out untouched). */
int xmpp_stream_open(uv_loop_t *loop, const struct xmpp_stream_opts *opts,
                     const struct xmpp_stream_cbs *cbs, void *data, struct xmpp_stream **out);

/* Sends a stanza (serialised at once; no reference kept). Allowed after on_ready(0) and before
 * on_closed. 0, -ENOTCONN when not ready or closing, -ENOBUFS when the unsent output would
 * exceed its bound (4 MiB); the stream stays open and the caller decides what to do. */
int xmpp_stream_send(struct xmpp_stream *s, const struct xmpp_stanza *st);
/* Sends pre-serialised XML (must be one or more complete elements). Same returns. Not counted
 * as a stanza for XEP-0198: use xmpp_stream_send_xml for stanzas. */
int xmpp_stream_send_raw(struct xmpp_stream *s, const char *xml, size_t len);
/* Sends one complete serialised stanza (<message>, <presence> or <iq>, e.g. kept by
 * xmpp_sm_foreach or by a caller while the stream was down). Counted and kept for resending
 * like xmpp_stream_send. Same returns, plus -EINVAL when xml is not such a stanza. With
 * XEP-0198 on, -ENOBUFS also when the queue of unacknowledged stanzas is full (1000 stanzas
 * or 1 MiB). */
int xmpp_stream_send_xml(struct xmpp_stream *s, const char *xml, size_t len);

/* Ends the stream politely: sends </stream:stream>, waits briefly for the server's, then closes
 * the socket; on_closed(0) follows. Idempotent. Before on_ready, it aborts the attempt instead:
 * on_ready(-ECANCELED) follows on the next tick. */
void xmpp_stream_close(struct xmpp_stream *s);
/* Releases the stream at any time (closing the socket without ceremony if still open). No
 * callback fires after this call. */
void xmpp_stream_free(struct xmpp_stream *s);

/* The bound full JID ("user@domain/resource"), or NULL before binding. Valid until free. */
const char *xmpp_stream_jid(const struct xmpp_stream *s);
/* True when the server's stream features after authentication offered an element `name` in
 * namespace `ns` (e.g. "csi", "urn:xmpp:csi:0" for XEP-0352). */
bool xmpp_stream_has_feature(const struct xmpp_stream *s, const char *name, const char *ns);
/* True when XEP-0198 was enabled by the server (or the stream resumed). */
bool xmpp_stream_sm_enabled(const struct xmpp_stream *s);
/* True after on_ready(0) when the stream resumed opts.resume (XEP-0198 <resumed/>). */
bool xmpp_stream_resumed(const struct xmpp_stream *s);
/* Stanzas sent on this stream (or resent by its resumption) that the server has not
 * acknowledged yet; 0 without XEP-0198. */
size_t xmpp_stream_sm_unacked(const struct xmpp_stream *s);
/* Takes the stream's XEP-0198 state (the caller owns it; free with xmpp_sm_free or pass it as
 * opts.resume of the next stream): after on_closed, the live state with the counters and the
 * unacknowledged stanzas; after on_ready(error), the state the stream was given to resume (or
 * what a refused resumption left). NULL when there is none. The stream stops counting. */
struct xmpp_sm *xmpp_stream_sm_take(struct xmpp_stream *s);
/* After on_ready(0) when resumption was refused (or impossible): the old state, minus what the
 * server's <failed h=.../> acknowledged. Its stanzas were never acknowledged: the caller decides
 * what to send again (xmpp_stream_send_xml). NULL otherwise. The caller owns it. */
struct xmpp_sm *xmpp_stream_resume_leftover(struct xmpp_stream *s);
/* Whether the state holds a resumption id the server granted. */
bool xmpp_sm_resumable(const struct xmpp_sm *sm);
/* Stanzas sent but not acknowledged. */
size_t xmpp_sm_unacked(const struct xmpp_sm *sm);
/* Calls cb for each unacknowledged stanza, oldest first: name is "message", "presence" or
 * "iq"; xml/len the serialised stanza (borrowed for the call). */
typedef void xmpp_sm_item_cb(const char *name, const char *xml, size_t len, void *data);
void xmpp_sm_foreach(const struct xmpp_sm *sm, xmpp_sm_item_cb *cb, void *data);
/* Frees a state (NULL is ignored). */
void xmpp_sm_free(struct xmpp_sm *sm);
/* Bytes written to the socket layer but not yet acknowledged by the kernel (write backlog). */
size_t xmpp_stream_pending_bytes(const struct xmpp_stream *s);
/* The negotiated SASL mechanism name (e.g. "SCRAM-SHA-1"), or NULL. */
const char *xmpp_stream_mechanism(const struct xmpp_stream *s);

/* After on_ready(0) of a password login by SCRAM: the SCRAM credential (see struct above).
 * 0, or -ENOENT when no password-based SCRAM exchange happened. */
int xmpp_stream_scram_cred(const struct xmpp_stream *s, struct xmpp_scram_cred *out);
/* After on_ready(0): the FAST token the server granted in this login (new or rotated).
 * 0, or -ENOENT when none was granted. */
int xmpp_stream_fast_token(const struct xmpp_stream *s, struct xmpp_fast_token *out);

/* XEP-0077 in-band registration of opts->username with opts->password on a fresh,
 * unauthenticated stream (connect, TLS as in opts, no SASL), then the stream closes.
 * cb fires exactly once, never inside the call: 0 created; -EEXIST the user exists
 * (conflict); -EPERM registration is not offered or the server said not-allowed /
 * forbidden; -EINVAL the server refused the data (not-acceptable, bad-request); other codes
 * as on_ready. -EINVAL from the call itself for bad options. */
struct xmpp_register;
typedef void xmpp_register_cb(int status, void *data);
int xmpp_register(uv_loop_t *loop, const struct xmpp_stream_opts *opts, xmpp_register_cb *cb,
                  void *data, struct xmpp_register **out);
/* Abandons a registration in progress; cb does not fire afterwards. */
void xmpp_register_cancel(struct xmpp_register *r);

/* Releases process-wide state (the libgsasl context) at exit, after every stream is freed.
 * Optional; lets leak checkers see a clean exit. */
void xmpp_stream_global_cleanup(void);

#endif
