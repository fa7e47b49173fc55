/* session_muc.c: the rooms a session has joined (XEP-0045): entering with a nickname, optional
 * password and history limit, waiting for the room's self-presence (status 110) or its error
 * presence, leaving, the occupants each joined room announces by presence (bounded), and
 * entering the rooms again after a reconnection that was not a resumption. */
#include "session/session_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "core/mem.h"
#include "events/events.h"
#include "xmpp/jid.h"
#include "xmpp/stanza.h"

#define LOG_MODULE "session"
#include "core/log.h"

#define NS_MUC       "http://jabber.org/protocol/muc"
#define NS_MUC_USER  "http://jabber.org/protocol/muc#user"
#define NS_MUC_OWNER "http://jabber.org/protocol/muc#owner"
#define NS_DATA      "jabber:x:data"

#define REJOIN_SLACK_S  5 /* history asked from this long before the loss (dups are filtered) */
#define REJOIN_TRIES    5 /* a refused re-entry is tried again (e.g. the room is being re-created */
#define REJOIN_RETRY_MS 1000 /* and locked by another occupant who re-entered first) */
/* A first join answered item-not-found is tried again a few times: the room may exist but be
 * locked while its creator configures it (XEP-0045 §10.1.3; Prosody answers item-not-found). */
#define LOCKED_TRIES    3
#define LOCKED_RETRY_MS 500
#define OCC_BYTES_MAX   ((size_t)128 << 10) /* nick and real JID text kept per room */
#define OCC_JID_MAX     3071                /* a longer real JID is not kept */
#define HIST_ID_MAX     128 /* a longer message id is not kept (no duplicate check then) */

struct muc_occupant {
    struct muc_occupant *next;
    char *nick;
    char *jid; /* real JID when the room reveals it, else NULL */
    char role[16];
    char affiliation[16];
};

struct muc_join_waiter {
    struct muc_join_waiter *next;
    int64_t id;
    uint64_t deadline_ms;
    session_muc_join_cb *cb;
    void *data;
};

enum muc_room_state {
    MUC_JOINING,
    MUC_JOINED,
};

struct muc_room {
    struct muc_room *next;
    char *jid;  /* bare room JID */
    char *nick; /* our nickname */
    char *password;
    enum muc_room_state state;
    struct muc_occupant *occupants;
    size_t n_occupants;
    size_t occ_bytes; /* nick and jid text of the occupants (OCC_BYTES_MAX) */
    struct muc_join_waiter *waiters;
    uint64_t join_deadline_ms; /* the latest deadline of the join presence's waiters */
    bool rejoining;            /* entering again after a reconnection */
    unsigned rejoin_tries;     /* refusals since */
    uint64_t retry_at_ms;      /* next re-entry attempt (0: none) */
    char since[32];            /* the history bound of the re-entry ("" none) */
    struct muc_hist *hist;     /* the last messages seen in the room (ring, SESSION_MUC_HISTORY) */
    size_t hist_head, hist_n, hist_bytes;
};

struct muc_hist {
    char *id, *from, *body;
    char stamp[32];
};

struct session_muc {
    struct muc_room *rooms;
    size_t n_rooms;
    int64_t next_id;
    struct tick_sub *tick_sub; /* while some join waits */
};

static struct session_muc *muc_of(struct session *s)
{
    if (s->muc == NULL)
        s->muc = mem_calloc(1, sizeof(*s->muc));
    return s->muc;
}

static struct muc_room *room_find(const struct session *s, const char *room)
{
    if (s->muc == NULL || room == NULL)
        return NULL;
    for (struct muc_room *r = s->muc->rooms; r != NULL; r = r->next) {
        if (xmpp_jid_bare_equal(r->jid, room))
            return r;
    }
    return NULL;
}

static size_t occupant_bytes(const struct muc_occupant *o)
{
    return strlen(o->nick) + (o->jid ? strlen(o->jid) : 0);
}

static void occupant_free(struct muc_occupant *o)
{
    mem_free(o->nick);
    mem_free(o->jid);
    mem_free(o);
}

static void occupants_clear(struct muc_room *r)
{
    while (r->occupants != NULL) {
        struct muc_occupant *o = r->occupants;
        r->occupants = o->next;
        occupant_free(o);
    }
    r->n_occupants = 0;
    r->occ_bytes = 0;
}

/* Fails (status < 0, err optional) or completes (0) every waiter of r. Callbacks may call back
 * into this file, so the list is detached first. */
static void room_finish_waiters(struct session *s, struct muc_room *r, int status,
                                const struct xmpp_stanza *err)
{
    struct muc_join_waiter *w = r->waiters;
    r->waiters = NULL;
    while (w != NULL) {
        struct muc_join_waiter *next = w->next;
        w->cb(s, status, err, w->data);
        mem_free(w);
        w = next;
    }
}

static void room_unlink(struct session *s, struct muc_room *r)
{
    for (struct muc_room **pp = &s->muc->rooms; *pp; pp = &(*pp)->next) {
        if (*pp == r) {
            *pp = r->next;
            s->muc->n_rooms--;
            return;
        }
    }
}

/* The bytes an entry of the discussion history holds: its text, sender and id. */
static size_t hist_entry_bytes(const char *id, const char *from, const char *body)
{
    return strlen(body) + strlen(from) + (id ? strlen(id) : 0);
}

static void hist_entry_clear(struct muc_room *r, struct muc_hist *h)
{
    r->hist_bytes -= hist_entry_bytes(h->id, h->from, h->body);
    mem_free(h->id);
    mem_free(h->from);
    mem_free(h->body);
    memset(h, 0, sizeof(*h));
}

static void room_free(struct muc_room *r)
{
    for (size_t i = 0; r->hist != NULL && i < SESSION_MUC_HISTORY; i++) {
        if (r->hist[i].body != NULL)
            hist_entry_clear(r, &r->hist[i]);
    }
    mem_free(r->hist);
    occupants_clear(r);
    mem_free(r->jid);
    mem_free(r->nick);
    if (r->password != NULL) {
        memset(r->password, 0, strlen(r->password));
        mem_free(r->password);
    }
    mem_free(r);
}

/* Removes r, failing its waiters with status first. */
static void room_drop(struct session *s, struct muc_room *r, int status,
                      const struct xmpp_stanza *err)
{
    room_unlink(s, r);
    room_finish_waiters(s, r, status, err);
    room_free(r);
}

static bool any_waiter(const struct session *s)
{
    for (struct muc_room *r = s->muc ? s->muc->rooms : NULL; r != NULL; r = r->next) {
        if (r->waiters != NULL || r->retry_at_ms != 0 || (r->state == MUC_JOINING && !r->rejoining))
            return true;
    }
    return false;
}

static int send_join(struct session *s, const struct muc_room *r, int history_max,
                     const char *since);

/* Our unavailable presence to room/nick (leaving, or giving up a join). */
static int send_unavailable(struct session *s, const struct muc_room *r)
{
    char to[3200];
    snprintf(to, sizeof(to), "%s/%s", r->jid, r->nick);
    struct xmpp_stanza *p = xmpp_stanza_new("presence", XMPP_NS_CLIENT);
    xmpp_stanza_set_attr(p, "to", to);
    xmpp_stanza_set_attr(p, "type", "unavailable");
    int rc = session_send(s, p);
    xmpp_stanza_unref(p);
    return rc;
}

static void on_tick(struct tick *t, uint64_t now_ms, void *data)
{
    (void)t;
    struct session *s = data;
    for (struct muc_room *r = s->muc->rooms, *next; r != NULL; r = next) {
        next = r->next;
        if (r->retry_at_ms != 0 && r->retry_at_ms <= now_ms && s->state == SESSION_ONLINE) {
            r->retry_at_ms = 0;
            r->join_deadline_ms = now_ms + s->mgr->o.iq_timeout_ms;
            send_join(s, r, r->since[0] ? -1 : 0, r->since[0] ? r->since : NULL);
        }
        for (struct muc_join_waiter **pp = &r->waiters; *pp;) {
            struct muc_join_waiter *w = *pp;
            if (w->deadline_ms > now_ms) {
                pp = &w->next;
                continue;
            }
            *pp = w->next;
            log_info("muc_join_timeout", "jid=%s room=%s", s->bare, r->jid);
            w->cb(s, -ETIMEDOUT, NULL, w->data);
            mem_free(w);
            /* the callback may only cancel waiters (no list surgery on rooms): restart */
            pp = &r->waiters;
        }
        /* a join nobody waits for any more and the room never answered: give it up, so a
         * later join sends its presence again and the record does not hold a room slot */
        if (r->state == MUC_JOINING && !r->rejoining && r->waiters == NULL &&
            r->join_deadline_ms <= now_ms) {
            log_info("muc_join_abandoned", "jid=%s room=%s", s->bare, r->jid);
            send_unavailable(s, r);
            room_drop(s, r, -ETIMEDOUT, NULL);
        }
    }
    if (!any_waiter(s)) {
        tick_remove(s->mgr->o.tick, s->muc->tick_sub);
        s->muc->tick_sub = NULL;
    }
}

/* The join presence: <presence to=room/nick><x xmlns=muc>[<password/>][<history/>]</x>. */
static int send_join(struct session *s, const struct muc_room *r, int history_max,
                     const char *since)
{
    char to[3200];
    if ((size_t)snprintf(to, sizeof(to), "%s/%s", r->jid, r->nick) >= sizeof(to))
        return -EINVAL;
    struct xmpp_stanza *p = xmpp_stanza_new("presence", XMPP_NS_CLIENT);
    xmpp_stanza_set_attr(p, "to", to);
    struct xmpp_stanza *x = xmpp_stanza_add_child(p, "x", NS_MUC);
    if (r->password != NULL)
        xmpp_stanza_add_text_child(x, "password", NULL, r->password);
    if (history_max >= 0 || since != NULL) {
        struct xmpp_stanza *h = xmpp_stanza_add_child(x, "history", NULL);
        char n[16];
        if (since != NULL) {
            xmpp_stanza_set_attr(h, "since", since);
        } else {
            snprintf(n, sizeof(n), "%d", history_max);
            xmpp_stanza_set_attr(h, "maxstanzas", n);
        }
    }
    int rc = session_send(s, p);
    xmpp_stanza_unref(p);
    return rc;
}

int64_t session_muc_join(struct session *s, const char *room, const char *nick,
                         const char *password, int history_max, uint64_t timeout_ms,
                         session_muc_join_cb *cb, void *data)
{
    if (!session__alive(s))
        return -ENOTCONN;
    struct xmpp_jid j;
    if (room == NULL || nick == NULL || nick[0] == '\0' || strlen(nick) > 1023 ||
        xmpp_jid_parse(&j, room) < 0)
        return -EINVAL;
    bool ok = j.local != NULL && j.resource == NULL;
    xmpp_jid_cleanup(&j);
    if (!ok)
        return -EINVAL;
    struct session_muc *m = muc_of(s);
    struct muc_room *r = room_find(s, room);
    if (r != NULL && r->state == MUC_JOINED)
        return 0;
    uint64_t now = tick_now(s->mgr->o.tick);
    if (r != NULL && r->join_deadline_ms <= now && r->retry_at_ms == 0 &&
        s->state == SESSION_ONLINE) {
        /* still entering, and the room did not answer in time: ask again */
        log_info("muc_join_resent", "jid=%s room=%s", s->bare, r->jid);
        send_join(s, r, history_max, NULL);
    }
    if (r == NULL) {
        if (m->n_rooms >= SESSION_MUC_MAX_ROOMS)
            return -ENOSPC;
        r = mem_calloc(1, sizeof(*r));
        char *bare = xmpp_jid_bare_of(room);
        r->jid = bare ? bare : mem_strdup(room);
        r->nick = mem_strdup(nick);
        r->password = password && password[0] ? mem_strdup(password) : NULL;
        r->state = MUC_JOINING;
        int rc = send_join(s, r, history_max, NULL);
        if (rc < 0) {
            room_free(r);
            return rc;
        }
        r->next = m->rooms;
        m->rooms = r;
        m->n_rooms++;
        log_info("muc_join", "jid=%s room=%s", s->bare, r->jid);
    }
    struct muc_join_waiter *w = mem_calloc(1, sizeof(*w));
    w->id = ++m->next_id;
    w->deadline_ms = now + (timeout_ms ? timeout_ms : s->mgr->o.iq_timeout_ms);
    if (w->deadline_ms > r->join_deadline_ms)
        r->join_deadline_ms = w->deadline_ms;
    w->cb = cb;
    w->data = data;
    w->next = r->waiters;
    r->waiters = w;
    if (m->tick_sub == NULL)
        m->tick_sub = tick_add(s->mgr->o.tick, on_tick, s);
    return w->id;
}

void session_muc_join_cancel(struct session *s, int64_t id)
{
    for (struct muc_room *r = s->muc ? s->muc->rooms : NULL; r != NULL; r = r->next) {
        for (struct muc_join_waiter **pp = &r->waiters; *pp; pp = &(*pp)->next) {
            if ((*pp)->id == id) {
                struct muc_join_waiter *w = *pp;
                *pp = w->next;
                mem_free(w);
                return;
            }
        }
    }
}

int session_muc_leave(struct session *s, const char *room)
{
    struct muc_room *r = room_find(s, room);
    if (r == NULL)
        return -ENOENT;
    int rc = send_unavailable(s, r);
    log_info("muc_leave", "jid=%s room=%s", s->bare, r->jid);
    room_drop(s, r, -ECANCELED, NULL);
    return rc;
}

bool session_muc_joined(const struct session *s, const char *room)
{
    const struct muc_room *r = room_find(s, room);
    return r != NULL && r->state == MUC_JOINED;
}

const char *session_muc_nick(const struct session *s, const char *room)
{
    const struct muc_room *r = room_find(s, room);
    return r != NULL && r->state == MUC_JOINED ? r->nick : NULL;
}

size_t session_muc_rooms(const struct session *s, session_muc_room_cb *cb, void *data)
{
    size_t n = 0;
    for (const struct muc_room *r = s->muc ? s->muc->rooms : NULL; r != NULL; r = r->next) {
        if (r->state != MUC_JOINED)
            continue;
        n++;
        if (cb != NULL)
            cb(r->jid, r->nick, data);
    }
    return n;
}

int session_muc_occupants(const struct session *s, const char *room, session_muc_occupant_cb *cb,
                          void *data)
{
    const struct muc_room *r = room_find(s, room);
    if (r == NULL || r->state != MUC_JOINED)
        return -ENOENT;
    /* the list is newest first; hand it out in arrival order */
    const struct muc_occupant *v[SESSION_MUC_MAX_OCCUPANTS];
    size_t n = 0;
    for (const struct muc_occupant *o = r->occupants; o && n < SESSION_MUC_MAX_OCCUPANTS;
         o = o->next)
        v[n++] = o;
    for (size_t i = n; i-- > 0;) {
        struct session_muc_occupant so = { v[i]->nick, v[i]->jid, v[i]->role, v[i]->affiliation };
        cb(r->jid, &so, data);
    }
    return (int)n;
}

/* ---- inbound presences ---------------------------------------------------------------------- */

static bool has_status(const struct xmpp_stanza *x, const char *code)
{
    for (const struct xmpp_stanza *c = xmpp_stanza_first_child(x); c; c = xmpp_stanza_next(c)) {
        const char *v = xmpp_stanza_attr(c, "code");
        if (strcmp(xmpp_stanza_name(c), "status") == 0 && v && strcmp(v, code) == 0)
            return true;
    }
    return false;
}

/* The last <x xmlns=muc#user> of st: a room that does not strip an occupant's own <x> puts
 * its <x> after it (XEP-0045 §7.2.3), so the last one is the room's. */
static const struct xmpp_stanza *muc_user_x(const struct xmpp_stanza *st)
{
    const struct xmpp_stanza *x = NULL;
    for (const struct xmpp_stanza *c = xmpp_stanza_first_child(st); c; c = xmpp_stanza_next(c)) {
        const char *ns = xmpp_stanza_ns(c);
        if (strcmp(xmpp_stanza_name(c), "x") == 0 && ns != NULL && strcmp(ns, NS_MUC_USER) == 0)
            x = c;
    }
    return x;
}

/* Tells the user's pages that a room was given up after refused re-entries: sparkgate.muc
 * {"type":"roomLost","room":...,"reason":<the error condition>}. */
static void room_lost_event(struct session *s, const struct muc_room *r,
                            const struct xmpp_stanza *err)
{
    const struct xmpp_stanza *e = err ? xmpp_stanza_child(err, "error", NULL) : NULL;
    const char *reason = "refused";
    for (const struct xmpp_stanza *c = e ? xmpp_stanza_first_child(e) : NULL; c;
         c = xmpp_stanza_next(c)) {
        const char *ns = xmpp_stanza_ns(c);
        const char *name = xmpp_stanza_name(c);
        if (ns != NULL && strcmp(ns, "urn:ietf:params:xml:ns:xmpp-stanzas") == 0 &&
            strcmp(name, "text") != 0 && strlen(name) < 64 &&
            strspn(name, "abcdefghijklmnopqrstuvwxyz-") == strlen(name)) {
            reason = name;
            break;
        }
    }
    if (s->log != NULL)
        events_log_push(
            s->log, "sparkgate.muc",
            json_pack("{s:s, s:s, s:s}", "type", "roomLost", "room", r->jid, "reason", reason));
}

static void copy_word(char *out, size_t size, const char *v, const char *dflt)
{
    if (v == NULL || strlen(v) >= size || strspn(v, "abcdefghijklmnopqrstuvwxyz") != strlen(v))
        v = dflt;
    snprintf(out, size, "%s", v);
}

static struct muc_occupant *occupant_find(struct muc_room *r, const char *nick,
                                          struct muc_occupant ***where)
{
    for (struct muc_occupant **pp = &r->occupants; *pp; pp = &(*pp)->next) {
        if (strcmp((*pp)->nick, nick) == 0) {
            if (where)
                *where = pp;
            return *pp;
        }
    }
    return NULL;
}

static void occupant_update(struct session *s, struct muc_room *r, const char *nick,
                            const struct xmpp_stanza *item, bool available)
{
    struct muc_occupant **where = NULL;
    struct muc_occupant *o = occupant_find(r, nick, &where);
    if (!available) {
        if (o != NULL) {
            *where = o->next;
            r->occ_bytes -= occupant_bytes(o);
            occupant_free(o);
            r->n_occupants--;
        }
        return;
    }
    if (o == NULL) {
        if (r->n_occupants >= SESSION_MUC_MAX_OCCUPANTS ||
            r->occ_bytes + strlen(nick) > OCC_BYTES_MAX) {
            log_debug("muc_occupants_full", "jid=%s room=%s", s->bare, r->jid);
            return;
        }
        o = mem_calloc(1, sizeof(*o));
        o->nick = mem_strdup(nick);
        o->next = r->occupants;
        r->occupants = o;
        r->n_occupants++;
        r->occ_bytes += strlen(o->nick);
    }
    const char *real = item ? xmpp_stanza_attr(item, "jid") : NULL;
    struct xmpp_jid j;
    if (o->jid != NULL) {
        r->occ_bytes -= strlen(o->jid);
        mem_free(o->jid);
        o->jid = NULL;
    }
    if (real != NULL && strlen(real) <= OCC_JID_MAX && xmpp_jid_parse(&j, real) == 0) {
        char *full = xmpp_jid_full(&j);
        xmpp_jid_cleanup(&j);
        size_t n = full ? strlen(full) : 0;
        if (full != NULL && n <= OCC_JID_MAX && r->occ_bytes + n <= OCC_BYTES_MAX) {
            o->jid = full;
            r->occ_bytes += n;
        } else {
            mem_free(full);
        }
    }
    copy_word(o->role, sizeof(o->role), item ? xmpp_stanza_attr(item, "role") : NULL, "none");
    copy_word(o->affiliation, sizeof(o->affiliation),
              item ? xmpp_stanza_attr(item, "affiliation") : NULL, "none");
}

/* The room's answer to the instant-room request: the room is open (or refused to be
 * configured, and stays as the server made it); the join is complete either way. */
static void instant_room_answered(struct session *s, int status, const struct xmpp_stanza *reply,
                                  void *data)
{
    (void)status, (void)reply;
    char *jid = data;
    struct muc_room *r = room_find(s, jid); /* NULL when left or the session ended */
    if (r != NULL && r->state == MUC_JOINED)
        room_finish_waiters(s, r, 0, NULL);
    mem_free(jid);
}

/* A new room (status 201): accept the default configuration so it opens (XEP-0045 §10.1.2);
 * the waiters are answered once the room confirmed it, so the room is listed by then. false
 * when the request could not be sent. */
static bool accept_instant_room(struct session *s, const struct muc_room *r)
{
    struct xmpp_stanza *iq = xmpp_stanza_new("iq", XMPP_NS_CLIENT);
    xmpp_stanza_set_attr(iq, "type", "set");
    xmpp_stanza_set_attr(iq, "to", r->jid);
    struct xmpp_stanza *q = xmpp_stanza_add_child(iq, "query", NS_MUC_OWNER);
    struct xmpp_stanza *x = xmpp_stanza_add_child(q, "x", NS_DATA);
    xmpp_stanza_set_attr(x, "type", "submit");
    char *jid = mem_strdup(r->jid);
    int64_t id = session_send_iq(s, iq, 0, instant_room_answered, jid);
    xmpp_stanza_unref(iq);
    if (id < 0)
        mem_free(jid);
    return id >= 0;
}

/* An error presence answering a join with item-not-found (a room locked during creation). */
static bool join_locked(const struct xmpp_stanza *st)
{
    const struct xmpp_stanza *err = xmpp_stanza_child(st, "error", NULL);
    return err != NULL && xmpp_stanza_child(err, "item-not-found", XMPP_NS_STANZAS) != NULL;
}

void session__muc_presence(struct session *s, const struct xmpp_stanza *st)
{
    const char *from = xmpp_stanza_attr(st, "from");
    if (s->muc == NULL || from == NULL)
        return;
    struct muc_room *r = room_find(s, from);
    if (r == NULL)
        return;
    const char *slash = strchr(from, '/');
    const char *nick = slash ? slash + 1 : NULL;
    const char *type = xmpp_stanza_attr(st, "type");
    if (type != NULL && strcmp(type, "error") == 0) {
        if (r->state == MUC_JOINING && r->rejoining && ++r->rejoin_tries < REJOIN_TRIES) {
            log_info("muc_rejoin_refused", "jid=%s room=%s tries=%u", s->bare, r->jid,
                     r->rejoin_tries);
            r->retry_at_ms = tick_now(s->mgr->o.tick) + REJOIN_RETRY_MS * r->rejoin_tries;
            if (s->muc->tick_sub == NULL)
                s->muc->tick_sub = tick_add(s->mgr->o.tick, on_tick, s);
        } else if (r->state == MUC_JOINING && !r->rejoining && join_locked(st) &&
                   ++r->rejoin_tries < LOCKED_TRIES) {
            log_info("muc_join_locked", "jid=%s room=%s tries=%u", s->bare, r->jid,
                     r->rejoin_tries);
            r->retry_at_ms = tick_now(s->mgr->o.tick) + LOCKED_RETRY_MS * r->rejoin_tries;
            if (s->muc->tick_sub == NULL)
                s->muc->tick_sub = tick_add(s->mgr->o.tick, on_tick, s);
        } else if (r->state == MUC_JOINING) {
            log_info("muc_join_refused", "jid=%s room=%s", s->bare, r->jid);
            if (r->rejoining)
                room_lost_event(s, r, st);
            room_drop(s, r, -EPROTO, st);
        }
        return;
    }
    if (nick == NULL || nick[0] == '\0')
        return;
    bool available = type == NULL || strcmp(type, "available") == 0;
    if (!available && strcmp(type, "unavailable") != 0)
        return;
    const struct xmpp_stanza *x = muc_user_x(st);
    const struct xmpp_stanza *item = x ? xmpp_stanza_child(x, "item", NULL) : NULL;
    /* only status 110 marks our own presence: another occupant may hold the nick we asked for
     * when the room gave us another one */
    bool self = x != NULL && has_status(x, "110");
    if (self && !available && r->state != MUC_JOINED)
        return; /* only a joined room can be left: this is the end of an earlier visit */
    if (self && !available) {
        if (x != NULL && has_status(x, "303")) { /* our nickname changed */
            const char *nn = item ? xmpp_stanza_attr(item, "nick") : NULL;
            if (nn != NULL && nn[0] != '\0' && strlen(nn) <= 1023) {
                mem_free(r->nick);
                r->nick = mem_strdup(nn);
            }
            occupant_update(s, r, nick, NULL, false);
            return;
        }
        log_info("muc_left", "jid=%s room=%s", s->bare, r->jid); /* kicked, banned, closed */
        room_drop(s, r, -ECONNABORTED, NULL);
        return;
    }
    if (!self && x != NULL && !available && has_status(x, "303")) {
        const char *nn = item ? xmpp_stanza_attr(item, "nick") : NULL;
        occupant_update(s, r, nick, NULL, false);
        (void)nn; /* the new name arrives with its own available presence */
        return;
    }
    occupant_update(s, r, nick, item, available);
    if (self && available) {
        if (strcmp(nick, r->nick) != 0) { /* the room may rewrite the nickname */
            mem_free(r->nick);
            r->nick = mem_strdup(nick);
        }
        bool configuring = false;
        if (r->state == MUC_JOINING) {
            r->state = MUC_JOINED;
            r->rejoining = false;
            r->rejoin_tries = 0;
            r->retry_at_ms = 0;
            if (x != NULL && has_status(x, "201"))
                configuring = accept_instant_room(s, r);
            log_info("muc_joined", "jid=%s room=%s created=%d", s->bare, r->jid, configuring);
        }
        if (!configuring)
            room_finish_waiters(s, r, 0, NULL);
    }
}

/* ---- reconnection and teardown -------------------------------------------------------------- */

void session__muc_rejoin(struct session *s)
{
    if (s->muc == NULL)
        return;
    char since[32];
    const char *since_p = NULL;
    if (s->down_since_ms != 0) {
        uint64_t down_s = (tick_now(s->mgr->o.tick) - s->down_since_ms) / 1000;
        time_t t = time(NULL) - (time_t)down_s - REJOIN_SLACK_S;
        struct tm tm;
        if (gmtime_r(&t, &tm) != NULL &&
            strftime(since, sizeof(since), "%Y-%m-%dT%H:%M:%SZ", &tm) > 0)
            since_p = since;
    }
    size_t n = 0;
    for (struct muc_room *r = s->muc->rooms; r != NULL; r = r->next) {
        occupants_clear(r);
        r->state = MUC_JOINING; /* waiters (if any) keep waiting for the new self-presence */
        r->rejoining = true;
        r->rejoin_tries = 0;
        r->retry_at_ms = 0;
        r->join_deadline_ms = tick_now(s->mgr->o.tick) + s->mgr->o.iq_timeout_ms;
        bool joined_before = r->waiters == NULL;
        snprintf(r->since, sizeof(r->since), "%s", joined_before && since_p ? since_p : "");
        send_join(s, r, joined_before && since_p == NULL ? 0 : -1, r->since[0] ? r->since : NULL);
        n++;
    }
    if (n > 0)
        log_info("muc_rejoin", "jid=%s rooms=%zu", s->bare, n);
}

void session__muc_free(struct session *s)
{
    if (s->muc == NULL)
        return;
    while (s->muc->rooms != NULL)
        room_drop(s, s->muc->rooms, -ECANCELED, NULL);
    if (s->muc->tick_sub != NULL)
        tick_remove(s->mgr->o.tick, s->muc->tick_sub);
    mem_free(s->muc);
    s->muc = NULL;
}

/* ---- discussion history -------------------------------------------------------------------- */

#define NS_DELAY       "urn:xmpp:delay"
#define HIST_BYTES_MAX ((size_t)256 << 10) /* message text kept per room */

/* Remembers a groupchat message with a body from a tracked room: the room's discussion
 * history for rooms without an archive (XEP-0045 §7.2.15, stamps from XEP-0203). A copy with
 * the same id and sender (history replayed on re-entry) is kept once. */
static void hist_record(struct session *s, const struct xmpp_stanza *st)
{
    const char *type = xmpp_stanza_attr(st, "type");
    const char *from = xmpp_stanza_attr(st, "from");
    if (s->muc == NULL || type == NULL || strcmp(type, "groupchat") != 0 || from == NULL ||
        strchr(from, '/') == NULL)
        return;
    struct muc_room *r = room_find(s, from);
    const struct xmpp_stanza *b = r ? xmpp_stanza_child(st, "body", NULL) : NULL;
    if (b == NULL)
        return;
    const char *id = xmpp_stanza_attr(st, "id");
    if (id != NULL && strlen(id) > HIST_ID_MAX)
        id = NULL; /* not kept, and then no duplicate check */
    if (r->hist == NULL)
        r->hist = mem_calloc(SESSION_MUC_HISTORY, sizeof(*r->hist));
    for (size_t i = 0; id != NULL && i < SESSION_MUC_HISTORY; i++) {
        const struct muc_hist *h = &r->hist[i];
        if (h->id != NULL && strcmp(h->id, id) == 0 && strcmp(h->from, from) == 0)
            return;
    }
    char *body = xmpp_stanza_text(b);
    size_t len = hist_entry_bytes(id, from, body);
    if (len > HIST_BYTES_MAX) {
        mem_free(body);
        return;
    }
    /* the oldest go first: the ring's slot, then more while the text is over its bound */
    size_t slot = (r->hist_head + r->hist_n) % SESSION_MUC_HISTORY;
    if (r->hist_n == SESSION_MUC_HISTORY) {
        hist_entry_clear(r, &r->hist[slot]);
        r->hist_head = (r->hist_head + 1) % SESSION_MUC_HISTORY;
        r->hist_n--;
    }
    while (r->hist_n > 0 && r->hist_bytes + len > HIST_BYTES_MAX) {
        hist_entry_clear(r, &r->hist[r->hist_head]);
        r->hist_head = (r->hist_head + 1) % SESSION_MUC_HISTORY;
        r->hist_n--;
    }
    struct muc_hist *h = &r->hist[(r->hist_head + r->hist_n) % SESSION_MUC_HISTORY];
    h->id = id ? mem_strdup(id) : NULL;
    h->from = mem_strdup(from);
    h->body = body;
    r->hist_bytes += len;
    r->hist_n++;
    const struct xmpp_stanza *delay = xmpp_stanza_child(st, "delay", NS_DELAY);
    const char *stamp = delay ? xmpp_stanza_attr(delay, "stamp") : NULL;
    if (stamp != NULL && strlen(stamp) < sizeof(h->stamp) &&
        strspn(stamp, "0123456789-:.TZ+") == strlen(stamp)) {
        snprintf(h->stamp, sizeof(h->stamp), "%s", stamp);
    } else {
        time_t t = time(NULL);
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(h->stamp, sizeof(h->stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
    }
}

int session_muc_history(const struct session *s, const char *room, session_muc_msg_cb *cb,
                        void *data)
{
    const struct muc_room *r = room_find(s, room);
    if (r == NULL || r->state != MUC_JOINED)
        return -ENOENT;
    for (size_t i = 0; i < r->hist_n; i++) {
        const struct muc_hist *h = &r->hist[(r->hist_head + i) % SESSION_MUC_HISTORY];
        struct session_muc_msg m = { h->from, h->body, h->stamp };
        cb(r->jid, &m, data);
    }
    return (int)r->hist_n;
}

void session__muc_message(struct session *s, const struct xmpp_stanza *st)
{
    if (s->muc != NULL && strcmp(xmpp_stanza_name(st), "message") == 0)
        hist_record(s, st);
}
