/* events.h: turns stanzas into the SparkWeb events of the contract (§3.5: chatapi.xmpp,
 * chatapi.presence, chatapi.chat, chatapi.muc, chatapi.notify, pubsub.item, onConnect) and fans
 * them out to a user's attached sinks. Each user has an event log: events get monotonically
 * increasing ids and the most recent ones are kept in a bounded ring, so events produced while
 * no sink is attached (offline messages flushed at login, a page reload) reach the next sink
 * that attaches. JSON is built with jansson, so quotes, backslashes, line breaks and non-ASCII
 * text survive (the reference's string concatenation dropped such events).
 * Never writes to sockets. Loop thread only. */
#ifndef SPARKGATE_EVENTS_EVENTS_H
#define SPARKGATE_EVENTS_EVENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct xmpp_stanza;

/* One event: immutable once pushed, shared by every sink (reference-counted). */
struct event {
    uint64_t id;      /* 1, 2, 3... per user log */
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

struct events_log;
struct events_sink;

/* Delivers one event to a sink. ev is valid during the call; use events_ref to keep it. */
typedef void events_deliver_cb(struct events_sink *sink, const struct event *ev, void *data);

/* A log keeping at most ring_len recent events. */
struct events_log *events_log_new(size_t ring_len);
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
/* Id of the newest event (0 when none). */
uint64_t events_log_last_id(const struct events_log *log);

/* Keep or release an event beyond a delivery callback. */
const struct event *events_ref(const struct event *ev);
void events_unref(const struct event *ev);

#endif
