/* events.h: turns stanzas into the SparkWeb events of the contract (§3.5: chatapi.xmpp,
 * chatapi.presence, chatapi.chat, chatapi.muc, chatapi.notify, pubsub.item, onConnect) and fans
 * them out to a user's attached sinks. Each user has an event log: events get strictly
 * increasing ids and the most recent ones are kept in a ring bounded in length and age, so
 * events produced while no sink is attached (offline messages flushed at login, a page reload)
 * reach the next sink that attaches, and a reconnecting stream that presents the id of the
 * last event it saw (Last-Event-ID) gets exactly what it missed, or learns that it cannot
 * (a gap). JSON is built with jansson, so quotes, backslashes, line breaks and non-ASCII
 * text survive (the reference's string concatenation dropped such events).
 * Never writes to sockets. Loop thread only. Docs: docs/events.md. */
#ifndef SPARKGATE_EVENTS_EVENTS_H
#define SPARKGATE_EVENTS_EVENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct xmpp_stanza;

/* One event: immutable once pushed, shared by every sink (reference-counted). */
struct event {
    uint64_t id;      /* base+1, base+2... per log (see events_log_new) */
    const char *name; /* "chatapi.chat" */
    const char *json; /* the payload as one line of JSON */
    size_t json_len;
};

/* Settings for the stanza conversion. */
struct events_opts {
    const char *meet_base; /* invitation "url" is <meet_base>/meet/<room local part> */
    /* The user's bare JID. XEP-0280 carbons are unwrapped only when the outer message comes
     * from exactly this address (XEP-0280 §11, CVE-2017-5589); NULL: never unwrapped. */
    const char *account;
};

/* Called once per derived event, in the contract's order (for each stanza chatapi.xmpp first,
 * then the derived events). `payload` is borrowed. */
typedef void events_emit_cb(const char *name, json_t *payload, void *data);

/* Converts one inbound stanza into events. Malformed or unexpected content never fails: the
 * worst case is a chatapi.xmpp event alone. A message carbon (XEP-0280) from opts->account
 * gives chatapi.xmpp for the outer stanza, then the events of the forwarded message: a
 * <received/> one as if it had arrived directly, a <sent/> one as events_sent_message. A
 * carbon from anyone else is treated as a plain message (its forwarded content is ignored). */
void events_from_stanza(const struct xmpp_stanza *st, const struct events_opts *opts,
                        events_emit_cb *emit, void *data);

/* The chatapi.chat payload of a message the user sent (a REST send or another client's, seen
 * as a sent carbon), so every tab shows it: the §3.5.5 keys with from = `from` (the sender's
 * full JID), to = the message's 'to', plus "sent": true and "id" (the message id, when it has
 * one). Inbound payloads have no "sent" key. NULL when there is nothing to show: no <body>,
 * or type groupchat (the room reflects those). Caller owns the result. */
json_t *events_sent_message(const struct xmpp_stanza *msg, const char *from);

/* The onConnect payload: {"username"} plus "name"/"email" when known (may be NULL/""). */
json_t *events_on_connect(const char *username, const char *name, const char *email);

/* --- per-user event log and fan-out --- */

/* The name of the event telling a stream that events it asked for are no longer available. */
#define EVENTS_GAP "sparkgate.gap"

struct events_log;
struct events_sink;

/* Delivers one event to a sink. ev is valid during the call; use events_ref to keep it. */
typedef void events_deliver_cb(struct events_sink *sink, const struct event *ev, void *data);

/* A monotonic clock in milliseconds (the loop's time in the gateway, a fake one in tests). */
typedef uint64_t events_clock_cb(void *data);

struct events_log_opts {
    size_t ring_len;        /* most events kept (0 counts as 1) */
    uint64_t max_age_ms;    /* events older than this are dropped (lazily); 0: no age limit */
    events_clock_cb *clock; /* NULL: CLOCK_MONOTONIC */
    void *clock_data;
};

/* Ids. Every log takes a serial number S from a process-wide counter that starts at a random
 * value in [1, 2^21) and increments per log (wrapping), and numbers its events
 * (S << 32) + 1, (S << 32) + 2, ...: ids are strictly increasing within a log, unique across
 * the logs of one process (until 2^21 logs were made), very unlikely to be valid in another
 * process (a gateway restart), and always below 2^53, so JSON and JavaScript numbers carry
 * them exactly. A log numbers at most 2^32 - 1 events. The base S << 32 itself is the position
 * "before the first event". */
struct events_log *events_log_new_opts(const struct events_log_opts *opts);
/* A log keeping at most ring_len recent events, with the process-wide age limit and clock. */
struct events_log *events_log_new(size_t ring_len);
/* Sets the age limit and clock used by events_log_new for logs made after the call (main sets
 * them from the configuration before any session exists). */
void events_log_set_defaults(uint64_t max_age_ms, events_clock_cb *clock, void *clock_data);
/* Frees the log; sinks still attached are forgotten (their owners must detach first, or
 * be told by their own means). */
void events_log_free(struct events_log *log);

/* Appends an event (payload consumed), delivers it to every attached sink in attach order, and
 * returns its id. When no sink is attached the event waits in the ring for the next attach. */
uint64_t events_log_push(struct events_log *log, const char *name, json_t *payload);

/* Attaches a sink. If events were pushed while no sink was attached (and are still in the
 * ring), they are delivered to this sink first, inside this call, in order. */
struct events_sink *events_log_attach(struct events_log *log, events_deliver_cb *cb, void *data);
void events_log_detach(struct events_log *log, struct events_sink *sink);
/* Delivers an event (payload consumed) to one attached sink only, inside the call: it gets no
 * id and is not kept in the ring (a final onDisconnect for one stream of a user). */
void events_log_send_to(struct events_log *log, struct events_sink *sink, const char *name,
                        json_t *payload);
size_t events_log_sink_count(const struct events_log *log);
/* Id of the newest event (the base when none was pushed yet). */
uint64_t events_log_last_id(const struct events_log *log);
/* Id of the oldest event still held (after dropping expired ones), 0 when none is held. */
uint64_t events_log_oldest_id(struct events_log *log);
/* The log's base: the id before its first event. */
uint64_t events_log_base(const struct events_log *log);
/* Number of events held. */
size_t events_log_count(const struct events_log *log);

/* Parses an event id as sent in Last-Event-ID: decimal digits only (no sign, spaces or leading
 * zeros), below 2^53. false for anything else. */
bool events_id_parse(const char *text, uint64_t *out);

/* Where a new stream starts, decided by events_log_resume. */
struct events_resume {
    uint64_t cursor;    /* the stream gets every event after this id (onConnect carries it) */
    bool gap;           /* send EVENTS_GAP first: events the stream should have had are gone */
    bool has_requested; /* the presented id parsed as a number */
    uint64_t requested; /* that number (valid when has_requested) */
    uint64_t oldest;    /* oldest id held, 0 when none */
    uint64_t last;      /* newest id */
};

/* Plans the start of a stream that presents last_event_id (NULL or "": none).
 * - An id of this log whose successors are all still held: cursor = that id, no gap.
 * - No id: cursor = the newest event some stream has already been given (so this stream gets
 *   the events no stream has seen, as events_log_attach does); gap when some of those were
 *   dropped before any stream saw them.
 * - An id of this log some of whose successors were dropped: gap, then every event still
 *   held (cursor = the newest dropped id), so the hole is exactly (requested, oldest).
 * - Anything else (garbage, an id from the future, from another log or process): gap, then as
 *   without an id.
 * The stream takes over every event held after the cursor: they count as delivered (a later
 * events_log_attach does not hand them out again), so the caller must send them, e.g. with
 * events_log_next. Drops expired events first. */
void events_log_resume(struct events_log *log, const char *last_event_id, struct events_resume *r);

/* The event right after `after`, for a stream catching up: NULL with *lost false when `after`
 * is the newest id (caught up); NULL with *lost true when that event is no longer held (or
 * `after` is not of this log): send a gap and continue after events_log_oldest_id() - 1 (or
 * the newest id when nothing is held). The event is valid until the next push. */
const struct event *events_log_next(struct events_log *log, uint64_t after, bool *lost);

/* The EVENTS_GAP payload {"oldest": n, "last": n, "requested": n or null} (new reference). */
json_t *events_gap_payload(uint64_t oldest, uint64_t last, bool has_requested, uint64_t requested);

/* Keep or release an event beyond a delivery callback. */
const struct event *events_ref(const struct event *ev);
void events_unref(const struct event *ev);

#endif
