/* session.h: one upstream XMPP session per user (bare JID), shared by every token, tab, REST
 * call and event stream of that user. Owns the registry, the lifecycle
 * (connecting -> online <-> reconnecting -> closing -> gone), reconnection after an upstream
 * loss (XEP-0198 resumption, else a fresh stream from the credential vault; back-off with
 * jitter per session, a global pace of attempts), IQ waiters with deadlines, the protocol duties of
 * a well-behaved client (XEP-0199 ping and XEP-0030 disco#info answers, roster push acks,
 * service-unavailable for other requests, auto-approval of subscription requests as the
 * reference's accept_all), the user's event log (events/) and the sinks attached to it.
 * Never formats JSON for browsers beyond handing payloads to events/. Loop thread only.
 * Keeps tabs and the user's other clients in step: XEP-0280 carbons, an echo event for messages
 * sent through the gateway, XEP-0352 client state (inactive while no sink is attached).
 * Specs: RFC 6120, RFC 6121, XEP-0030, XEP-0198, XEP-0199, XEP-0280, XEP-0352, contract
 * §2.6. */
#ifndef SPARKGATE_SESSION_SESSION_H
#define SPARKGATE_SESSION_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "events/events.h"
#include "xmpp/stream.h"

struct session;
struct session_cred;
struct session_mgr;
struct session_login;
struct tick;
struct xmpp_stanza;

/* The answer to session_mgr_opts.get_credential: status 0 with the credential to present
 * (borrowed for the call), -ENOKEY when none is usable (the session gives up), or another
 * negative errno for a transient failure (the session retries after its back-off). */
typedef void session_cred_cb(int status, const struct session_cred *cred, void *arg);

struct session_mgr_opts {
    uv_loop_t *loop;
    struct tick *tick;
    struct xmpp_tls *tls; /* may be NULL when tls_mode is off */
    const char *host;
    uint16_t port;
    const char *domain;
    enum xmpp_tls_mode tls_mode;
    uint64_t connect_timeout_ms;
    size_t max_stanza;
    const char *resource_prefix; /* "sparkweb-" */
    uint64_t linger_ms;          /* after the last sink detached */
    uint64_t idle_timeout_ms;    /* no sink and no activity */
    uint64_t iq_timeout_ms;      /* default deadline of session_send_iq (timeout 0) */
    size_t max_sessions;
    size_t ring_len; /* events kept per user */
    struct events_opts events;
    /* Called when a user's session has ended for any reason (logout, idle, upstream loss),
     * after its sinks were told; the API layer revokes the user's tokens here. */
    void (*on_session_end)(const char *username, const char *reason, void *data);
    /* Called after every successful authentication to the XMPP server (session opening or
     * password check) with what the vault may keep to re-open the session later without the
     * password: the SCRAM credential of a password login and/or a FAST token the server
     * granted (each NULL when absent). Secrets: copy what you keep, never log them. */
    void (*on_credential)(const char *username, const struct xmpp_scram_cred *scram,
                          const struct xmpp_fast_token *fast, void *data);
    /* Called for every event derived from an inbound stanza while the user has no sink
     * attached (before the event goes into the ring): the "no live sink" signal Web Push uses.
     * payload is borrowed for the call. Optional. */
    void (*on_unseen)(const char *username, const char *name, json_t *payload, void *data);
    /* Upstream loss (network, server restart or shutdown; not a conflict or not-authorized
     * stream error): the session stays (sinks attached, "sparkgate.reconnecting" event),
     * keeps what is sent meanwhile (up to reconnect_queue stanzas) and reconnects, first
     * resuming with XEP-0198, else with a fresh stream that binds, fetches the roster, sends
     * initial presence and resends what the server never acknowledged; then it pushes
     * "sparkgate.reconnected" {"resumed", "downtime_ms", "resent"}. Attempts back off per
     * session (0.5 s doubling to 30 s, full jitter) and start at most reconnect_rate per second
     * in all. After reconnect_max_ms without success (or when get_credential finds nothing
     * usable) the session ends with "session-closed" as before. reconnect_max_ms == 0 or
     * get_credential == NULL: no reconnection. */
    uint64_t reconnect_max_ms;
    unsigned reconnect_rate; /* attempts started per second, all sessions together (>= 1) */
    size_t reconnect_queue;  /* stanzas kept per session while reconnecting (0: 500) */
    /* Asks for a credential to re-open username's stream (architecture §5). cb(arg) runs
     * exactly once, never inside the call. */
    void (*get_credential)(const char *username, session_cred_cb *cb, void *arg, void *data);
    /* The server refused what get_credential gave (status -EACCES, -ESTALE or -ENOTSUP):
     * drop it, so the next call offers the next one. kind: "fast", "scram" or "password". */
    void (*on_credential_refused)(const char *username, const char *kind, int status, void *data);
    /* Request FAST tokens (XEP-0484) from servers that offer them. */
    bool request_fast;
    /* Secret seed for the per-user SASL2 user-agent ids FAST tokens are bound to (stable across
     * restarts: pass a stored secret). */
    const uint8_t *ua_seed;
    size_t ua_seed_len;
    void *data;
};

struct session_mgr *session_mgr_new(const struct session_mgr_opts *opts);
/* Closes every session (their sinks get "onDisconnect" with reason "shutdown"), waits for
 * the upstream streams to end (bounded by a few seconds), then frees the manager and calls
 * done(data). */
void session_mgr_free(struct session_mgr *mgr, void (*done)(void *data), void *data);
size_t session_mgr_count(const struct session_mgr *mgr);

/* --- login --- */

/* status 0: the password was verified by the XMPP server and `s` is online. Otherwise
 * -EACCES (wrong credentials), -EAGAIN (too many sessions), -ETIMEDOUT, -EPROTO, or a libuv
 * code for network failures; s is NULL then. Runs exactly once unless cancelled, never inside
 * session_login. */
typedef void session_login_cb(struct session_mgr *mgr, int status, struct session *s, void *data);

/* Verifies username/password and returns the user's session, opening it when needed. A login
 * for a user whose session is already online verifies the password with a separate short
 * authentication-only stream and reuses the session (the server still sees one resource).
 * The password is copied into memory that is wiped after use. On success returns 0 and a
 * handle in *out (optional) for session_login_cancel; -EINVAL for an invalid username. */
int session_login(struct session_mgr *mgr, const char *username, const char *password,
                  session_login_cb *cb, void *data, struct session_login **out);

/* What a password-less open presents to the XMPP server: exactly one of these, taken from the
 * credential vault (architecture §5). Borrowed for the call only. */
struct session_cred {
    const char *password;                /* the password kept encrypted (vault.store_password) */
    const struct xmpp_scram_cred *scram; /* SCRAM SaltedPassword */
    const struct xmpp_fast_token *fast;  /* XEP-0484 token */
};

/* Returns the user's session for a caller that has already authenticated the user by other
 * means (WebAuthn, TOTP, a refresh or access token): an online session is returned as it is;
 * otherwise one is opened with cred. Status as session_login's, plus -ESTALE when the SCRAM
 * credential no longer matches the server's salt (the vault entry is out of date). */
int session_open(struct session_mgr *mgr, const char *username, const struct session_cred *cred,
                 session_login_cb *cb, void *data, struct session_login **out);

/* The callback will not run. The handle is invalid afterwards. */
void session_login_cancel(struct session_login *l);

/* XEP-0077 in-band registration of username/password on the configured server (a separate
 * unauthenticated stream). cb(status): 0 created, -EEXIST exists, -EPERM registration not
 * allowed, -EINVAL refused data, or connection errors. Cancel with xmpp_register_cancel. */
int session_register(struct session_mgr *mgr, const char *username, const char *password,
                     void (*cb)(int status, void *data), void *data, struct xmpp_register **out);

/* --- lookup and activity --- */

/* The session of username (local part) when online or reconnecting, or NULL. */
struct session *session_find(struct session_mgr *mgr, const char *username);
/* True while the upstream is lost and the session reconnects. */
bool session_reconnecting(const struct session *s);
const char *session_username(const struct session *s);
/* The bound full JID (user@domain/sparkweb-xxxx), the last one while reconnecting. */
const char *session_jid(const struct session *s);
/* vCard FN / EMAIL fetched at login, or NULL. */
const char *session_name(const struct session *s);
const char *session_email(const struct session *s);
/* Marks REST activity (defers idle expiry). */
void session_touch(struct session *s);

/* --- sending --- */

/* Sends a stanza on the user's stream. 0 means it is written or queued for delivery: while
 * reconnecting it waits in the session's queue, and with XEP-0198 a stanza the server never
 * acknowledged is sent again after a reconnection. -ENOTCONN (closing), -ENOBUFS (backlog or
 * queue full: nothing was kept). */
int session_send(struct session *s, const struct xmpp_stanza *st);
/* After a message the user sent was handed to the stream: pushes its event (chatapi.chat with
 * "sent": true, events_sent_message) to the user's log, so every tab shows it. Messages without
 * a body are not echoed. */
void session_echo_sent(struct session *s, const struct xmpp_stanza *msg);

/* status 0: reply is the result or error IQ (XMPP errors are data); -ETIMEDOUT;
 * -ECANCELED when the session ends first; -ECONNRESET when the upstream was lost and could
 * not be resumed, so the answer went with the old stream. */
typedef void session_iq_cb(struct session *s, int status, const struct xmpp_stanza *reply,
                           void *data);
/* Sends an IQ (its id is replaced by a session-unique one) and waits for the answer (queued
 * like session_send while reconnecting; an IQ whose answer was lost with the upstream fails
 * with -ECONNRESET). timeout_ms 0 uses iq_timeout. Returns a positive waiter id (for
 * session_iq_cancel), or a negative errno when it could not be sent (cb never runs then). cb never
 * runs inside this call. */
int64_t session_send_iq(struct session *s, struct xmpp_stanza *iq, uint64_t timeout_ms,
                        session_iq_cb *cb, void *data);
/* The callback of that waiter will not run. Unknown ids are ignored. */
void session_iq_cancel(struct session *s, int64_t id);

/* --- sinks (event streams) --- */

/* Tells a sink that the session ended; after this the attachment is gone (do not detach). */
typedef void session_sink_closed_cb(struct session *s, const char *reason, void *data);

/* Attaches a sink to the user's event log; events produced while no sink was attached are
 * delivered first (events_log_attach). Cancels any linger countdown. */
struct events_sink *session_attach(struct session *s, events_deliver_cb *deliver,
                                   session_sink_closed_cb *closed, void *data);
/* Detaches; when it was the last sink the linger countdown starts. */
void session_detach(struct session *s, struct events_sink *sink);
/* Labels an attached sink with the tab it belongs to (the refresh family of the token it
 * presented), for session_logout_tab. tag is copied; NULL or "" removes the label. */
void session_sink_set_tag(struct session *s, struct events_sink *sink, const char *tag);
size_t session_sink_count(const struct session *s);
/* The user's event log (ids, ring, resume: events.h), owned by the session and valid until the
 * session's sinks were told it closed. Streams that resume from a Last-Event-ID read it. */
struct events_log *session_events(struct session *s);

/* --- ending --- */

/* Logs out: every sink gets onDisconnect {"reason":"logout"} and is closed, unavailable
 * presence is sent and the stream is closed; on_session_end follows. */
void session_logout(struct session *s);
/* Logs out one tab (session.logout = tab): the sinks labelled `tag` get onDisconnect
 * {"reason":"logout"} (to them alone) and are closed; when no sink remains the session is
 * logged out as by session_logout. Returns the number of sinks left (0: the session ended). */
size_t session_logout_tab(struct session *s, const char *tag);

/* --- message archive queries (XEP-0313) --- */

/* The answer to session_mam_query: status and reply as session_iq_cb (reply is the IQ result
 * or error carrying <fin/>). items are the <message> stanzas the archive sent for the query
 * (each holding <result xmlns="urn:xmpp:mam:2"><forwarded/></result>), in arrival order,
 * borrowed for the call; truncated when some were dropped for the max_items/max_bytes bound. */
typedef void session_mam_cb(struct session *s, int status, const struct xmpp_stanza *reply,
                            struct xmpp_stanza *const *items, size_t n, bool truncated, void *data);
/* Sends a MAM query IQ to the user's own archive, or to the archive of the iq's 'to' (a MUC
 * room, XEP-0313 §6) when set (iq carries <query xmlns="urn:xmpp:mam:2" queryid=queryid>,
 * queryid 1..63 bytes) and collects the result messages of that queryid that come from that
 * archive's bare JID (the account itself for its own) until the IQ is answered. Those messages are
 * taken out of the inbound flow: they become no event. Keeps at most max_items messages and
 * max_bytes of their serialised size. Returns a waiter id (session_mam_cancel) or a negative errno
 * (cb never runs then). cb runs once (also with -ETIMEDOUT, -ECANCELED, -ECONNRESET and n = 0). */
int64_t session_mam_query(struct session *s, struct xmpp_stanza *iq, const char *queryid,
                          size_t max_items, size_t max_bytes, uint64_t timeout_ms,
                          session_mam_cb *cb, void *data);
/* The callback will not run; what was collected is dropped. Unknown ids are ignored. */
void session_mam_cancel(struct session *s, int64_t id);

/* --- roster and presence cache (session_roster.c) --- */

/* The user's roster (RFC 6121 §2) and the last presence of each resource of each contact
 * (RFC 6121 §4), kept per session: filled from the roster fetched after every fresh binding,
 * kept current by roster pushes and inbound presence (presences from MUC occupants are not
 * contacts and are ignored), refilled after a reconnection that was not a resumption.
 * Bounded by these constants: what passes them is dropped (and logged once). */
#define SESSION_ROSTER_MAX_ITEMS     5000 /* contacts kept */
#define SESSION_ROSTER_MAX_RESOURCES 8    /* resources per contact: a new one evicts the oldest */
#define SESSION_ROSTER_MAX_PRESENCES 2000 /* resources of all contacts together */
#define SESSION_ROSTER_MAX_GROUPS    32   /* groups per contact */
#define SESSION_ROSTER_TEXT_MAX      1023 /* bytes of a name, group or status (status is cut) */

/* Subscription states, numbered as the contract's subscriptionType. */
enum session_sub {
    SESSION_SUB_NONE = 0,
    SESSION_SUB_TO = 1,
    SESSION_SUB_FROM = 2,
    SESSION_SUB_BOTH = 3,
};

/* A presence as the cache summarises it (all pointers borrowed, see session_roster_item). */
struct session_presence {
    bool available;     /* false: no available resource (offline, or nothing known) */
    bool known;         /* a presence of this contact arrived since the cache was (re)filled */
    const char *show;   /* "chat", "away", "xa", "dnd", or NULL (plain available) */
    const char *status; /* <status> text or NULL */
    int priority;
};

/* One contact. Pointers belong to the cache and stay valid until the next call that changes it
 * (an inbound stanza, a _set or _load below): copy what you keep across loop iterations. */
struct session_roster_item {
    const char *jid;  /* bare JID, ASCII local part in lower case */
    const char *name; /* or NULL */
    enum session_sub subscription;
    bool ask;                  /* our subscription request is pending */
    const char *const *groups; /* n_groups names */
    size_t n_groups;
    struct session_presence presence; /* the highest-priority available resource */
};

typedef void session_roster_cb(const struct session_roster_item *item, void *data);

/* True once a roster result has been loaded on this session. */
bool session_roster_loaded(const struct session *s);
/* Loads a roster result (the answer to <query xmlns='jabber:iq:roster'/>), replacing the
 * items; presences of contacts that stay are kept. 0, or -EPROTO when reply is not a roster
 * result. */
int session_roster_load(struct session *s, const struct xmpp_stanza *reply);
/* Applies an <item/> the user set and the server accepted (name, groups; subscription
 * "remove" deletes it); the subscription state is left as it is (it changes with pushes). */
void session_roster_apply(struct session *s, const struct xmpp_stanza *item);
/* Calls cb for every contact, ordered by JID. */
void session_roster_foreach(struct session *s, session_roster_cb *cb, void *data);
size_t session_roster_count(const struct session *s);
/* Fills *out for the contact jid (any form; compared as bare JID). false when not in the
 * roster. */
bool session_roster_get(struct session *s, const char *jid, struct session_roster_item *out);

/* Sets the user's own presence (RFC 6121 §4.2/§4.4) and sends it; it is also what the session
 * announces after every fresh binding. available false: unavailable (the stream stays open;
 * nothing is announced after a reconnection until presence is set again). show: NULL or
 * "chat", "away", "xa", "dnd"; status: NULL or valid text of at most SESSION_ROSTER_TEXT_MAX
 * bytes; priority -128..127. 0, -EINVAL, or session_send's errors. */
int session_presence_set(struct session *s, bool available, const char *show, const char *status,
                         int priority);
/* The user's own presence as last set (available with no show when never set). */
void session_presence_own(struct session *s, struct session_presence *out);

/* --- group chat (XEP-0045; session_muc.c) --- */

/* Bounds: rooms joined or being joined per session, occupants remembered per room (further
 * occupants are not listed). */
#define SESSION_MUC_MAX_ROOMS     64
#define SESSION_MUC_MAX_OCCUPANTS 512

/* status 0: the room sent our self-presence (status 110), we are in. -EPROTO: the room answered
 * with an error presence, err (borrowed) is that presence (conflict: nickname in use;
 * not-authorized: password; registration-required: members only; forbidden: banned;
 * item-not-found; service-unavailable: full). -ETIMEDOUT, -ECANCELED (left, or the session
 * ended), -ECONNABORTED (removed from the room meanwhile). */
typedef void session_muc_join_cb(struct session *s, int status, const struct xmpp_stanza *err,
                                 void *data);
/* Enters room (bare JID) as nick: presence to room/nick with <x xmlns=muc>, the password when
 * given, <history maxstanzas=history_max/> when history_max >= 0. Returns 0 when the room is
 * already joined (cb never runs), a positive waiter id (session_muc_join_cancel) when cb will
 * run, or -EINVAL (bad room or nick), -ENOSPC (too many rooms), -ENOTCONN, -ENOBUFS. A second
 * join of a room still being joined waits for the same answer. timeout_ms 0: iq_timeout.
 * Joined rooms are entered again after a reconnection that was not a resumption (history
 * since shortly before the loss; duplicates are filtered). */
int64_t session_muc_join(struct session *s, const char *room, const char *nick,
                         const char *password, int history_max, uint64_t timeout_ms,
                         session_muc_join_cb *cb, void *data);
/* That waiter's callback will not run (the join itself goes on). Unknown ids are ignored. */
void session_muc_join_cancel(struct session *s, int64_t id);
/* Leaves (unavailable presence to room/nick) and forgets the room. -ENOENT when not joined or
 * joining; else 0 or session_send's error (the room is forgotten either way). */
int session_muc_leave(struct session *s, const char *room);
/* True when room is joined (self-presence received). */
bool session_muc_joined(const struct session *s, const char *room);
/* Our nickname in a joined room, or NULL. Valid until the next stanza is handled. */
const char *session_muc_nick(const struct session *s, const char *room);
typedef void session_muc_room_cb(const char *room, const char *nick, void *data);
/* Calls cb for every joined room; returns their number (cb may be NULL). */
size_t session_muc_rooms(const struct session *s, session_muc_room_cb *cb, void *data);

struct session_muc_occupant {
    const char *nick;
    const char *jid;         /* real JID when the room reveals it, else NULL */
    const char *role;        /* moderator|participant|visitor|none */
    const char *affiliation; /* owner|admin|member|outcast|none */
};

typedef void session_muc_occupant_cb(const char *room, const struct session_muc_occupant *o,
                                     void *data);
/* Calls cb for every occupant of a joined room known from its presences (ourselves included),
 * in arrival order. Returns their number, or -ENOENT when the room is not joined. */
int session_muc_occupants(const struct session *s, const char *room, session_muc_occupant_cb *cb,
                          void *data);

/* The last groupchat messages with a body seen in a joined room (the room's discussion
 * history sent on entering included), at most SESSION_MUC_HISTORY and 256 KiB of text;
 * a copy with the same id and sender is kept once. */
#define SESSION_MUC_HISTORY 50

struct session_muc_msg {
    const char *from;  /* room@service/nick */
    const char *body;  /* the <body> text */
    const char *stamp; /* XEP-0203 delay stamp as the room gave it, else the arrival time */
};

typedef void session_muc_msg_cb(const char *room, const struct session_muc_msg *m, void *data);
/* Calls cb for each, oldest first. Returns their number, or -ENOENT when not joined. */
int session_muc_history(const struct session *s, const char *room, session_muc_msg_cb *cb,
                        void *data);

#endif
