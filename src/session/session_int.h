/* session_int.h: state shared by the files of session/ (not for other modules). */
#ifndef SPARKGATE_SESSION_SESSION_INT_H
#define SPARKGATE_SESSION_SESSION_INT_H

#include "session/session.h"

#include "core/map.h"
#include "core/tick.h"

enum session_state {
    SESSION_CONNECTING,
    SESSION_ONLINE,
    SESSION_RECONNECTING, /* upstream lost; sinks stay, sends are queued */
    SESSION_CLOSING,
};

#define SESSION_BACKOFF_BASE_MS 500
#define SESSION_BACKOFF_CAP_MS  30000
#define SESSION_OUTQ_DEFAULT    500
#define SESSION_OUTQ_MAX_BYTES  ((size_t)512 << 10)
#define SESSION_DEDUP_LEN       128 /* recent inbound messages remembered for duplicates */

/* A stanza accepted for delivery but not written yet (serialised). */
struct session_outq_item {
    struct session_outq_item *next;
    size_t len;
    char xml[];
};

struct session_outq {
    struct session_outq_item *head, *tail;
    size_t n, bytes;
};

/* A pending get_credential; orphaned (s = NULL) when the session ends first. */
struct session_credreq {
    struct session *s;
};

struct session_sinkref {
    struct session_sinkref *next;
    struct events_sink *sink;
    session_sink_closed_cb *closed;
    void *data;
    char *tag; /* session_sink_set_tag (the token family of a tab), or NULL */
};

struct iq_waiter {
    struct iq_waiter *next;
    int64_t id;
    char idstr[32];
    char *to; /* the request's 'to', or NULL (own account) */
    uint64_t deadline_ms;
    session_iq_cb *cb;
    void *data;
    bool lost; /* sent on a stream that was lost: its answer may have gone with it */
};

struct session {
    struct session_mgr *mgr;
    struct session *prev, *next; /* mgr->all */
    char *username;
    char *bare;
    enum session_state state;
    struct xmpp_stream *stream;
    struct events_log *log;
    struct session_sinkref *sinks;
    size_t n_sinks;
    struct iq_waiter *iqs;
    int64_t next_iq;
    uint64_t last_activity_ms;
    uint64_t linger_deadline_ms; /* 0: not lingering */
    char *name;
    char *email;
    struct session_login *waiters; /* logins waiting for this session to come online */
    struct session_login *opener;  /* the login whose password opened it */
    bool stream_done;              /* the stream is gone (freed) */
    int setup_pending;             /* after-bind requests still unanswered before ONLINE */
    bool carbons;                  /* XEP-0280 enabled on the stream */
    bool csi_inactive;             /* XEP-0352: the last state sent was <inactive/> */
    bool reap;                     /* free on the next deferred pass */

    /* reconnection (session_reconnect.c) */
    char *resource;           /* asked for again on every stream */
    char *jid;                /* the last bound full JID */
    struct xmpp_sm *sm;       /* XEP-0198 state of the lost stream */
    struct session_outq outq; /* accepted, not written yet (in order) */
    struct session_credreq *credreq;
    char cred_kind[12];                /* "fast", "scram", "password" of the running attempt */
    bool attempt_running;              /* a credential request or a stream in progress */
    unsigned attempts;                 /* failed attempts since the loss */
    uint64_t down_since_ms;            /* when the upstream was lost */
    uint64_t retry_at_ms;              /* next attempt, once pacing allows */
    uint64_t failed_at_ms;             /* when the last attempt failed */
    uint64_t dedup[SESSION_DEDUP_LEN]; /* hashes of recent inbound messages */
    size_t dedup_pos;

    /* message archive queries waiting for their results (session_mam.c) */
    struct session_mam *mams;

    /* roster and presence cache (session_roster.c), allocated on first use */
    struct session_roster *roster;

    struct session_muc *muc; /* joined rooms (session_muc.c), NULL until the first join */

    /* queries given up (cancelled, timed out) whose late results are still swallowed until
     * their deadline (session_mam.c), newest first, at most MAM_GONE_MAX */
    struct session_mam_gone *mams_gone;
};

struct session_login {
    struct session_mgr *mgr;
    struct session_login *next; /* in a session's waiters */
    struct session *waiting_on;
    struct xmpp_stream *verify; /* auth-only stream */
    char *username;
    char *password;                /* wiped and freed when the login ends */
    struct xmpp_scram_cred *scram; /* likewise */
    struct xmpp_fast_token *fast;  /* likewise */
    bool trusted; /* session_open: already authenticated, an online session needs no check */
    session_login_cb *cb;
    void *data;
    int attempts;
    bool fail_queued; /* a deferred failure will finish (and free) this login */
};

struct defer_item {
    struct defer_item *next;
    void (*fn)(void *arg);
    void *arg;
};

struct session_mgr {
    struct session_mgr_opts o; /* strings copied below */
    char *host, *domain, *resource_prefix;
    uint8_t ua_seed[32];
    struct map *by_user; /* username -> session (not closing) */
    struct session *all; /* every session, closing ones included */
    size_t n_all;
    struct tick_sub *tick_sub;
    uv_idle_t defer_idle;
    struct defer_item *defer_head, *defer_tail;
    bool freeing;
    bool reap_pending;
    double tokens; /* reconnect attempts that may start now (token bucket) */
    uint64_t tokens_ms;
    uint64_t reconnected_ms; /* the last successful reconnection: the server is back */
    void (*free_done)(void *);
    void *free_data;
    uint64_t free_deadline_ms;
};

/* Runs fn(arg) on a later loop iteration. */
void session__defer(struct session_mgr *mgr, void (*fn)(void *arg), void *arg);

/* session.c */
/* Online or reconnecting: usable by callers. */
bool session__alive(const struct session *s);
/* Fills stream options for username with cred (the borrowed pointers must outlive the open). */
void session__stream_opts(struct session_mgr *mgr, struct xmpp_stream_opts *o, const char *username,
                          const struct session_cred *cred, const char *resource, bool auth_only,
                          char ua[37]);
/* Hands what the vault may keep after a successful authentication to on_credential. */
void session__report_credential(struct session_mgr *mgr, const char *username,
                                const struct xmpp_stream *st);
/* The stream callbacks of a bound session stream. */
void session__stream_on_stanza(struct xmpp_stream *st, struct xmpp_stanza *stanza, void *data);
void session__stream_on_closed(struct xmpp_stream *st, int status, const char *reason, void *data);
/* Ends the session (sinks told, waiters failed, on_session_end called). */
void session__end(struct session *s, const char *reason, bool graceful);
/* The roster request and initial presence of a new binding (RFC 6121 order). */
void session__announce(struct session *s);

/* session_reconnect.c */
/* The bound stream st was lost (on_closed with status). Starts reconnecting, or ends the
 * session when the reason forbids it or reconnection is off. */
void session__upstream_lost(struct session *s, struct xmpp_stream *st, int status,
                            const char *reason);
/* Per tick, once: refills the pace of reconnection attempts. */
void session__pace(struct session_mgr *mgr, uint64_t now_ms);
/* Per tick, for a session reconnecting or with a queue: starts its attempt when due and the
 * pace allows, gives up once it has been down too long, or drains its queue once online. */
void session__reconnect_step(struct session *s, uint64_t now_ms);
/* Keeps a stanza for later (reconnecting, or the queue is not empty yet). 0 or -ENOBUFS. */
int session__queue(struct session *s, const struct xmpp_stanza *st);
/* Writes queued stanzas while the stream takes them. */
void session__drain(struct session *s);
/* Releases the reconnection state of an ending session; returns how many queued or
 * unacknowledged messages are given up. */
size_t session__reconnect_cleanup(struct session *s);

/* Handles one inbound stanza: IQ waiters, protocol duties, events. */
void session__on_stanza(struct session *s, struct xmpp_stanza *st);
/* Fails every IQ waiter with status (and frees them). */
void session__fail_iqs(struct session *s, int status);
/* Fires expired IQ deadlines. */
void session__expire_iqs(struct session *s, uint64_t now_ms);
/* Fails the waiters marked lost with status (0: only clears the marks). */
void session__fail_lost_iqs(struct session *s, int status);
/* The waiter of an IQ id, or NULL. */
struct iq_waiter *session__find_iq(struct session *s, const char *id);
/* True when st is a message already seen recently (same sender, id and body): a copy the
 * server or the sender delivered again around a reconnection. Remembers it otherwise. */
bool session__duplicate(struct session *s, const struct xmpp_stanza *st);

/* session_sync.c: keeping the user's tabs and other clients in step. */
/* After bind: asks the server's disco#info and enables XEP-0280 carbons when offered; counts
 * as one setup step (session__setup_done). */
void session__sync_start(struct session *s);
/* Sends XEP-0352 <inactive/> while no sink is attached and <active/> once one is, when the
 * server offers CSI and the state differs from the last one sent. */
void session__csi_update(struct session *s);

/* One after-bind request answered (or given up); the last one brings the session online. */
void session__setup_done(struct session *s);

/* session_mam.c */
struct session_mam;
/* Takes a MAM result message of a running session_mam_query (from the account, matching
 * queryid): true when it was collected (or dropped for the bound) and must not go further. */
bool session__mam_collect(struct session *s, struct xmpp_stanza *st);
/* Frees what session_mam.c keeps for s (the given-up queryids). */
void session__mam_free(struct session *s);

/* session_roster.c */
/* The result (or failure) of the roster request of session__announce. */
void session__roster_result(struct session *s, int status, const struct xmpp_stanza *reply);
/* A roster push from the account (<query xmlns='jabber:iq:roster'/> of an IQ set). */
void session__roster_push(struct session *s, const struct xmpp_stanza *query);
/* Every inbound presence: the cache keeps the last one of each contact resource. */
void session__roster_presence(struct session *s, const struct xmpp_stanza *st);
/* A fresh binding: forgets the presences (the server sends them again) and returns the initial
 * presence to send (the own presence last set), or NULL when the user set it unavailable. */
struct xmpp_stanza *session__roster_announce(struct session *s);
void session__roster_free(struct session *s);

/* session_muc.c */
/* An inbound presence: follows joins, occupants and removals of the tracked rooms. */
void session__muc_presence(struct session *s, const struct xmpp_stanza *st);
/* After a fresh (not resumed) stream: enters every tracked room again. */
void session__muc_rejoin(struct session *s);
/* Fails pending joins with -ECANCELED and forgets every room (the session ends). */
void session__muc_free(struct session *s);
/* An inbound message: a groupchat message of a tracked room goes into its history. */
void session__muc_message(struct session *s, const struct xmpp_stanza *st);

#endif
