/* session_int.h: state shared by the files of session/ (not for other modules). */
#ifndef SPARKGATE_SESSION_SESSION_INT_H
#define SPARKGATE_SESSION_SESSION_INT_H

#include "session/session.h"

#include "core/map.h"
#include "core/tick.h"

enum session_state {
    SESSION_CONNECTING,
    SESSION_ONLINE,
    SESSION_CLOSING,
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
    void (*free_done)(void *);
    void *free_data;
    uint64_t free_deadline_ms;
};

/* Runs fn(arg) on a later loop iteration. */
void session__defer(struct session_mgr *mgr, void (*fn)(void *arg), void *arg);

/* Handles one inbound stanza: IQ waiters, protocol duties, events. */
void session__on_stanza(struct session *s, struct xmpp_stanza *st);
/* Fails every IQ waiter with status (and frees them). */
void session__fail_iqs(struct session *s, int status);
/* Fires expired IQ deadlines. */
void session__expire_iqs(struct session *s, uint64_t now_ms);

/* session_sync.c: keeping the user's tabs and other clients in step. */
/* After bind: asks the server's disco#info and enables XEP-0280 carbons when offered; counts
 * as one setup step (session__setup_done). */
void session__sync_start(struct session *s);
/* Sends XEP-0352 <inactive/> while no sink is attached and <active/> once one is, when the
 * server offers CSI and the state differs from the last one sent. */
void session__csi_update(struct session *s);

/* One after-bind request answered (or given up); the last one brings the session online. */
void session__setup_done(struct session *s);

#endif
