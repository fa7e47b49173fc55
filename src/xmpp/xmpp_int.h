/* xmpp_int.h: declarations shared between the files of the xmpp module (and its unit tests and
 * fuzz targets, which use the parser seam). No other module includes this. */
#ifndef SPARKGATE_XMPP_XMPP_INT_H
#define SPARKGATE_XMPP_XMPP_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct xmpp_stanza;

/* Separator between namespace URI and local name in expat's NS mode. */
#define XMPP__NS_SEP '\x01'
/* Deepest element nesting accepted by the parsers (keeps recursion on trees bounded). */
#define XMPP__MAX_DEPTH 128

#define XMPP__NS_TLS     "urn:ietf:params:xml:ns:xmpp-tls"
#define XMPP__NS_SASL    "urn:ietf:params:xml:ns:xmpp-sasl"
#define XMPP__NS_BIND    "urn:ietf:params:xml:ns:xmpp-bind"
#define XMPP__NS_SESSION "urn:ietf:params:xml:ns:xmpp-session"
#define XMPP__NS_SM      "urn:xmpp:sm:3"
#define XMPP__NS_SERR    "urn:ietf:params:xml:ns:xmpp-streams"
#define XMPP__NS_SASL2   "urn:xmpp:sasl:2"
#define XMPP__NS_FAST    "urn:xmpp:fast:0"
#define XMPP__NS_REGF    "http://jabber.org/features/iq-register"
#define XMPP__NS_REG     "jabber:iq:register"

/* jid.c: length of the longest valid UTF-8 prefix of s[0..len). */
size_t xmpp__utf8_valid_prefix(const char *s, size_t len);

/* stanza.c: a new element from expat's NS-mode name ("uri\x01local" or "local") and attribute
 * list; unprefixed names without a namespace get default_ns (may be NULL). NULL for an element
 * in the reserved xml or xmlns namespace (the caller rejects the input). */
struct xmpp_stanza *xmpp__stanza_from_expat(const char *name, const char **attrs,
                                            const char *default_ns);

/* stanza.c: expat parsers whose user data starts with this struct get the XMPP restrictions
 * (RFC 6120 §11.1): DOCTYPE, entity declarations, processing instructions and comments stop the
 * parser with err = -EINVAL; an XML declaration too unless allow_xmldecl. */
struct XML_ParserStruct;

struct xmpp__xp_base {
    struct XML_ParserStruct *xp;
    int err;
    const char *why;
};

void xmpp__expat_restrict(struct XML_ParserStruct *xp, bool allow_xmldecl);

/* --- stream_parse.c: the streaming parser, usable without a socket (the test seam) --- */

struct xmpp__parser;

struct xmpp__parser_cbs {
    /* The stream header arrived; hdr holds its attributes (borrowed). */
    void (*on_open)(void *data, struct xmpp_stanza *hdr);
    /* A complete depth-1 element (stanza or nonza), borrowed for the call. */
    void (*on_element)(void *data, struct xmpp_stanza *st);
    /* The peer's </stream:stream>. */
    void (*on_close)(void *data);
};

/* max_stanza bounds the bytes of one depth-1 element (and of anything the parser must buffer
 * between elements). */
struct xmpp__parser *xmpp__parser_new(size_t max_stanza, const struct xmpp__parser_cbs *cbs,
                                      void *data);
void xmpp__parser_free(struct xmpp__parser *p);
/* Feeds bytes. 0; -ECANCELED when a callback stopped the parser (the rest of the chunk was
 * dropped); -EMSGSIZE when an element exceeded max_stanza; -EPROTO for malformed XML (details
 * in xmpp__parser_error). After an error the parser stays failed until reset. */
int xmpp__parser_feed(struct xmpp__parser *p, const char *data, size_t len);
/* Callable from a callback only: stop parsing the current chunk. */
void xmpp__parser_stop(struct xmpp__parser *p);
/* Callable from a callback only: stop, and reset for a new stream (restart) before the feed
 * call returns -ECANCELED; bytes after the current element are dropped. */
void xmpp__parser_restart(struct xmpp__parser *p);
/* Resets for a new stream (outside callbacks). */
void xmpp__parser_reset(struct xmpp__parser *p);
/* A short description of the last error ("" when none). */
const char *xmpp__parser_error(const struct xmpp__parser *p);
/* Hibernation (outside callbacks): frees the expat parser (about 12 KiB) while the stream sits
 * between stanzas with nothing buffered, keeping the raw stream header (up to
 * XMPP__PARSER_HDR_MAX bytes). The next feed creates a fresh parser and replays the header
 * without reporting it, so namespaces, offsets, the size bound and the closing tag carry on.
 * True when the parser is (now) hibernating; false when it is not at a safe point. */
#define XMPP__PARSER_HDR_MAX 1024
bool xmpp__parser_hibernate(struct xmpp__parser *p);
bool xmpp__parser_hibernating(const struct xmpp__parser *p);

/* --- the stream (stream.c, stream_tls.c, stream_sasl.c, stream_neg.c) --- */

#include <uv.h>

#include "xmpp/stream.h"

struct ssl_st;
struct bio_st;
struct Gsasl_session;
struct tick_sub;
struct xmpp__tickreg;
struct xmpp__sasl_job;

#define XMPP__MAX_PENDING    ((size_t)4 << 20) /* unsent output bound (xmpp_stream_send) */
#define XMPP__DEF_TIMEOUT_MS 30000
#define XMPP__DEF_MAX_STANZA ((size_t)256 << 10)
#define XMPP__CLOSE_WAIT_MS  2000    /* how long xmpp_stream_close waits for the server's tag */
#define XMPP__MAX_EARLY      32      /* stanzas held between bind and on_ready(0) */
#define XMPP__SCRAM_MAX_ITER 1000000 /* refuse to run PBKDF2 longer than this for a server */
#define XMPP__UA_ID_MAX      128     /* SASL2 user-agent id length bound */
#define XMPP__FEATURES_MAX   512     /* xmpp_stream_has_feature's record of the features */
#define XMPP__FAST_MECH      "HT-SHA-256-NONE" /* the only FAST mechanism implemented */
/* XEP-0198 */
#define XMPP__SM_MAX_QUEUE       1000              /* unacknowledged stanzas kept for resending */
#define XMPP__SM_MAX_QUEUE_BYTES ((size_t)1 << 20) /* and their bytes */
#define XMPP__SM_R_EVERY         5     /* request an ack after this many unacked stanzas... */
#define XMPP__SM_ACK_TIMEOUT_MS  60000 /* a request unanswered, nothing received: link dead */
/* Least time between two of our <a/>: an <r/> sooner than this is answered on the next tick.
 * Servers request an ack after every stanza they send (Prosody's smacks with its default
 * smacks_max_unacked_stanzas = 0) but not while one is outstanding, so answering at once
 * doubles the server's work per message under load; pacing bounds it to a few per second per
 * stream while an idle stream's request is still answered at once. */
#define XMPP__SM_ACK_GAP_MS 200
/* Parser hibernation (a wake costs about two parsed stanzas): a ready stream frees its parser
 * right after a read, up to XMPP__PARSER_NAPS_PER_S times a second (so sparse traffic keeps no
 * parser between reads, and a busy stream keeps its own); a busy XEP-0198 stream frees it once
 * quiet for XMPP__PARSER_NAP_MS (on the tick). */
#define XMPP__PARSER_NAPS_PER_S 4
#define XMPP__PARSER_NAP_MS     5000

enum xmpp__state {
    XMPP__ST_RESOLVE,
    XMPP__ST_CONNECT,
    XMPP__ST_TLS_DIRECT, /* TLS handshake before any XML */
    XMPP__ST_STREAM,     /* header sent, waiting for the server's header and features */
    XMPP__ST_STARTTLS,   /* <starttls/> sent, waiting for <proceed/> */
    XMPP__ST_TLS_HS,     /* TLS handshake after <proceed/> */
    XMPP__ST_SASL,
    XMPP__ST_REGISTER, /* xmpp_register: the registration IQ sent, waiting for its answer */
    XMPP__ST_BIND,
    XMPP__ST_SESSION,
    XMPP__ST_SM,
    XMPP__ST_RESUME, /* <resume/> sent (XEP-0198), waiting for <resumed/> or <failed/> */
    XMPP__ST_READY,
    XMPP__ST_CLOSING, /* our </stream:stream> sent, waiting for the server's */
    XMPP__ST_DONE,    /* terminal: no more input is processed */
};

/* XEP-0198 state: counters, the resumption id and the queue of sent stanzas the server has not
 * acknowledged yet, (acked, h_out] in order. It outlives its stream (xmpp_stream_sm_take) so
 * that the next stream can resume or resend. */
struct xmpp__sm_item {
    struct xmpp__sm_item *next;
    size_t len;
    char xml[]; /* the serialised stanza, as written */
};

struct xmpp_sm {
    char *id;       /* resumption id; NULL when the server refused (or never allowed) resuming */
    char *location; /* the server's preferred reconnection address, or NULL (informational) */
    char *jid;      /* the full JID the stream was bound to */
    uint32_t h_in;  /* inbound stanzas handled */
    uint32_t h_out; /* outbound stanzas counted */
    uint32_t acked; /* the last h the server acknowledged */
    struct xmpp__sm_item *head, *tail;
    size_t n, bytes; /* n == h_out - acked (mod 2^32) */
};

struct xmpp_stream {
    uv_loop_t *loop;
    struct xmpp_stream_cbs cbs;
    void *data;

    /* options (private copies) */
    char *host;
    uint16_t port;
    char *domain;
    char *username;
    char *password; /* wiped and freed as soon as SASL has its own copy or auth ends */
    size_t password_len;
    char *resource;
    char *logjid; /* username@domain, for log lines */
    enum xmpp_tls_mode tls_mode;
    struct xmpp_tls *tls_ctx;
    struct tick *tick;
    uint64_t timeout_ms;
    size_t max_stanza;
    bool auth_only;
    bool want_sm;
    bool reg_mode; /* xmpp_register's stream: registration instead of SASL */
    /* alternatives to the password (private copies, wiped and freed when auth ends) */
    struct xmpp_scram_cred *scram_in;
    struct xmpp_fast_token *fast_in;
    bool request_fast;
    char *ua_id; /* SASL2 user-agent id, or NULL */

    enum xmpp__state state;
    uint64_t start_ms;

    /* lifetime: memory goes once dead and nothing libuv-side still points at it */
    int busy; /* nesting of our entry points on the stack */
    bool dead;
    bool gai_pending;
    bool tcp_open; /* handle initialised and its close callback not yet run */
    bool connected;
    bool retry_connect;
    bool work_pending;
    bool ready_fired;
    bool closed_fired;
    bool header_sent;
    bool close_sent;

    /* deadline list of the tick registry */
    struct xmpp__tickreg *reg;
    struct xmpp_stream *dl_next;
    struct xmpp_stream **dl_pprev;
    /* the registry's list of ready streams with XEP-0198 on (ack requests, ack timeout) */
    struct xmpp__tickreg *sm_reg;
    struct xmpp_stream *sm_next;
    struct xmpp_stream **sm_pprev;
    uint64_t deadline_ms;
    bool has_deferred; /* a terminal callback to deliver on the next tick */
    int deferred_status;
    const char *deferred_reason; /* a string literal */

    uv_getaddrinfo_t gai;
    struct addrinfo *ai;
    struct addrinfo *ai_next;
    int last_connect_err;
    uv_connect_t conn;
    uv_tcp_t tcp;
    uv_shutdown_t shut;
    size_t pending_bytes;

    /* TLS */
    struct ssl_st *ssl;
    struct bio_st *rbio;
    struct bio_st *wbio;
    bool tls_active; /* handshake done */

    struct xmpp__parser *parser;
    bool authenticated;
    bool f_sm;
    bool f_session;
    char features[XMPP__FEATURES_MAX]; /* after auth: "{ns}name;" per feature that fits */

    /* SASL */
    struct Gsasl_session *sasl;
    const char *mech;
    int sasl_steps;
    int sasl_rc;                /* last gsasl_step result */
    struct xmpp__sasl_job *job; /* the step running on the thread pool, if any */
    bool sasl2;                 /* the exchange runs over XEP-0388 (urn:xmpp:sasl:2) */
    bool ht;                    /* FAST HT-* mechanism (computed here, not by libgsasl) */
    bool token_requested;       /* <request-token/> was sent */
    /* results of the login (secret: wiped at release) */
    struct xmpp_scram_cred *scram_out;
    struct xmpp_fast_token *fast_out;

    char *jid;
    bool sm_enabled;
    struct xmpp_sm *sm;        /* live XEP-0198 state once enabled or resumed */
    struct xmpp_sm *resume_in; /* opts.resume, until <resumed/> or <failed/> */
    struct xmpp_sm *leftover;  /* a refused resumption's state (xmpp_stream_resume_leftover) */
    bool resumed;
    bool r_pending;      /* an <r/> awaits its <a/> */
    uint64_t r_sent_ms;  /* when it was sent */
    uint32_t a_sent;     /* the h of our last <a/> */
    uint64_t a_sent_ms;  /* when it was sent */
    bool a_due;          /* the server's <r/> waits for the next tick (answers are paced) */
    uint64_t last_rx_ms; /* when bytes last arrived */

    struct xmpp_stanza *early[XMPP__MAX_EARLY];
    size_t n_early;

    /* parser hibernation right after a read, at most XMPP__PARSER_NAPS_PER_S a second */
    uint64_t nap_window_ms;
    unsigned naps;
};

/* stream.c */
/* One tick subscription per tick object, shared by every stream with a pending deadline (and
 * by the ready streams with XEP-0198 on). */
struct xmpp__tickreg {
    struct tick *tick;
    struct tick_sub *sub;
    struct xmpp_stream *head;    /* streams with a deadline or a deferred callback */
    struct xmpp_stream *sm_head; /* ready streams with XEP-0198 on */
    struct xmpp__tickreg *next;
    bool in_cb;
};

/* The registry of a tick (created on first use); freed once nothing uses it. */
struct xmpp__tickreg *xmpp__reg_get(struct tick *t);
void xmpp__reg_maybe_free(struct xmpp__tickreg *r);
/* stream_opts.c: whether the options (and callbacks) can open a stream. */
bool xmpp__opts_valid(const struct xmpp_stream_opts *o, const struct xmpp_stream_cbs *cbs,
                      bool reg);
/* xmpp_stream_open's body; reg selects the registration stream of xmpp_register. */
int xmpp__open(uv_loop_t *loop, const struct xmpp_stream_opts *opts,
               const struct xmpp_stream_cbs *cbs, void *data, bool reg, struct xmpp_stream **out);
void xmpp__enter(struct xmpp_stream *s);
/* Leaves an entry point; may release a dead stream (do not touch s afterwards). */
void xmpp__leave(struct xmpp_stream *s);
/* True once the stream must not process anything more. */
bool xmpp__gone(const struct xmpp_stream *s);
/* Terminal failure or end: tears the socket down and fires on_ready/on_closed (at once, or on
 * the next tick when deferred). */
void xmpp__finish(struct xmpp_stream *s, int status, const char *reason, bool deferred);
/* Sends a stream error with the given condition, then finishes with -EPROTO. */
void xmpp__stream_error(struct xmpp_stream *s, const char *condition);
/* Writes plaintext XML (through TLS when active). 0 or negative errno. */
int xmpp__write(struct xmpp_stream *s, const char *data, size_t len);
int xmpp__writes(struct xmpp_stream *s, const char *str);
/* Puts bytes on the socket as they are (ciphertext or plain). */
int xmpp__write_wire(struct xmpp_stream *s, const char *data, size_t len);
int xmpp__send_header(struct xmpp_stream *s);
/* Plaintext from the socket (or TLS) into the parser. */
void xmpp__input(struct xmpp_stream *s, const char *data, size_t len);
/* Negotiation finished: on_ready(0) (or the auth_only close). */
void xmpp__ready(struct xmpp_stream *s);

/* stream_tls.c */
int xmpp__tls_start(struct xmpp_stream *s);
void xmpp__tls_input(struct xmpp_stream *s, const char *data, size_t len);
int xmpp__tls_write(struct xmpp_stream *s, const char *data, size_t len);
void xmpp__tls_close_notify(struct xmpp_stream *s);
void xmpp__tls_free(struct xmpp_stream *s);

/* stream_sasl.c */
/* Starts SASL on the unauthenticated stream's features: SASL2 (with FAST) when asked for and
 * offered, else RFC 6120 SASL. Finishes the stream when nothing fits. */
void xmpp__sasl_start(struct xmpp_stream *s, const struct xmpp_stanza *features);
/* Records the features offered after authentication for xmpp_stream_has_feature
 * (stream_features.c). */
void xmpp__features_record(struct xmpp_stream *s, const struct xmpp_stanza *features);
/* An element received in XMPP__ST_SASL. */
void xmpp__sasl_element(struct xmpp_stream *s, const struct xmpp_stanza *st);
/* Wipes every copy of the password and frees the SASL session (unless a step is still running
 * on the thread pool: then its done callback does it). */
void xmpp__sasl_cleanup(struct xmpp_stream *s);
void xmpp__sasl_global_cleanup(void);
/* True when list has a <mechanism/> child with this name. */
bool xmpp__mech_offered(const struct xmpp_stanza *list, const char *mech);
/* Wipes and frees one of the credential structs (NULL is ignored). */
void xmpp__cred_free(void *cred, size_t len);

/* stream_sasl2.c: XEP-0388 framing and XEP-0484 FAST. */
/* The <authentication/> feature when the stream should (and can) use SASL2, else NULL. Fails
 * the stream with -ENOTSUP (returning NULL) when a FAST token was given but FAST is not offered;
 * check xmpp__gone afterwards. */
const struct xmpp_stanza *xmpp__sasl2_pick(struct xmpp_stream *s,
                                           const struct xmpp_stanza *features);
/* Sends <authenticate/> with the base64 initial response (NULL: none). 0 or negative errno. */
int xmpp__sasl2_authenticate(struct xmpp_stream *s, const char *b64);
/* The HT-SHA-256-NONE initial response for the FAST token, base64 (mem_free after wiping),
 * or NULL. */
char *xmpp__ht_initial(const struct xmpp_stream *s);
/* Checks the server's HT additional data (base64, may be NULL). 0 or -EPROTO. */
int xmpp__ht_verify(const struct xmpp_stream *s, const char *b64);
/* Reads the FAST <token/> and authorization identifier of a SASL2 <success/>. */
void xmpp__sasl2_success(struct xmpp_stream *s, const struct xmpp_stanza *success);
/* Parses an XEP-0082 date-time into epoch seconds; 0 when malformed. */
int64_t xmpp__datetime_parse(const char *s);

/* stream_reg.c: XEP-0077 on a registration stream. */
void xmpp__reg_features(struct xmpp_stream *s, const struct xmpp_stanza *features);
void xmpp__reg_result(struct xmpp_stream *s, const struct xmpp_stanza *iq);
#define XMPP__REG_ID "sg-reg"

/* stream_sm.c: XEP-0198. */
/* Sends <enable resume='true'/> (state XMPP__ST_SM). */
void xmpp__sm_enable(struct xmpp_stream *s);
/* <enabled/> or <failed/> in XMPP__ST_SM; then the stream is ready. */
void xmpp__sm_enable_answer(struct xmpp_stream *s, const struct xmpp_stanza *st);
/* After authentication, with the features read: sends <resume/> when there is a resumable state
 * and the server offers SM (true: wait for the answer); otherwise moves that state to leftover
 * (false: bind as usual). */
bool xmpp__sm_try_resume(struct xmpp_stream *s);
/* <resumed/> or <failed/> in XMPP__ST_RESUME. <failed/> continues with resource binding,
 * through bind (the stream's send_bind). */
void xmpp__sm_resume_answer(struct xmpp_stream *s, const struct xmpp_stanza *st,
                            void (*bind)(struct xmpp_stream *s));
/* <r/> and <a/> once ready. */
void xmpp__sm_element(struct xmpp_stream *s, const struct xmpp_stanza *st);
/* -ENOBUFS when a stanza of len bytes would not fit the resend queue, else 0. */
int xmpp__sm_room(const struct xmpp_stream *s, size_t len);
/* Counts a stanza just written and keeps a copy for resending; may request an ack. */
void xmpp__sm_track(struct xmpp_stream *s, const char *xml, size_t len);
/* The tick: ack requests for stanzas left unacked, unsolicited acks, the ack timeout. Never
 * runs a user callback (failures are deferred). */
void xmpp__sm_tick(struct xmpp_stream *s, uint64_t now_ms);
void xmpp__sm_free(struct xmpp_sm *sm);
/* stream.c: adds or removes a ready stream on its registry's SM list. */
void xmpp__sm_list_add(struct xmpp_stream *s);
void xmpp__sm_list_remove(struct xmpp_stream *s);

/* stream_neg.c: the parser callbacks that drive negotiation and deliver stanzas. */
extern const struct xmpp__parser_cbs xmpp__neg_cbs;
const char *xmpp__state_name(enum xmpp__state st);

#endif
