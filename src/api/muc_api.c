/* muc_api.c: the group chat tag (contract §1.6 G1–G10) on XEP-0045: room list and information
 * (XEP-0030 disco#items/#info with the XEP-0128 muc#roominfo form, muc#admin affiliation lists),
 * occupants and participants (the session's joined rooms, else disco#items on the room), room
 * history and archive search (XEP-0313 on the room JID, XEP-0059 paging, XEP-0431 full text
 * search when the room offers it), join, leave, post, and invitations (mediated XEP-0045 and
 * direct XEP-0249). */
#include "api/api_int.h"
#include "api/xmpp_api.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/mem.h"
#include "core/rnd.h"
#include "core/tick.h"
#include "session/session.h"
#include "xmpp/jid.h"
#include "xmpp/stanza.h"

#define LOG_MODULE "api"
#include "core/log.h"

#define NS_DISCO_INFO  "http://jabber.org/protocol/disco#info"
#define NS_DISCO_ITEMS "http://jabber.org/protocol/disco#items"
#define NS_MUC_USER    "http://jabber.org/protocol/muc#user"
#define NS_MUC_ADMIN   "http://jabber.org/protocol/muc#admin"
#define NS_DATA        "jabber:x:data"
#define NS_MAM         "urn:xmpp:mam:2"
#define NS_RSM         "http://jabber.org/protocol/rsm"
#define NS_FORWARD     "urn:xmpp:forward:0"
#define NS_DELAY       "urn:xmpp:delay"
#define NS_FULLTEXT    "urn:xmpp:fulltext:0"
#define NS_CONFERENCE  "jabber:x:conference"

#define MUC_ROOMS_MAX         100   /* rooms described per G2 answer */
#define MUC_ROOMS_DEADLINE_MS 10000 /* G2 asks the rooms for their description this long */
#define MUC_PAGE_DEFAULT      50
#define MUC_PAGE_MAX          500
#define MUC_MAM_MAX_BYTES     ((size_t)4 << 20)
#define MUC_NICK_MAX          1023
#define MUC_TEXT_MAX          ((size_t)64 << 10)
#define MUC_REASON_MAX        1024
#define MUC_HISTORY_MAX       1000
#define MUC_IDLE_MS           (10 * 60 * 1000) /* a conversation ends after this gap (Openfire) */
#define MUC_CONV_MAX_MS       (60 * 60 * 1000) /* or after this long */

enum muc_op {
    OP_MESSAGES,
    OP_ROOMS,
    OP_INFO,
    OP_PARTICIPANTS,
    OP_OCCUPANTS,
    OP_HISTORY,
    OP_JOIN,
    OP_LEAVE,
    OP_POST,
    OP_INVITE,
};

/* One REST call, through its XMPP steps. */
struct muc_call {
    struct api_deps *d;
    struct http_req *req;
    struct session *s;
    enum muc_op op;
    char *room;     /* room local part ("" for G2 and G1 without room) */
    char *room_jid; /* room@service */
    char *service;
    /* G7 */
    char *nick, *password;
    int history;
    int64_t wait_id;
    /* G2, G3 */
    json_t *out;
    json_t *entity;
    int aff_step;
    char *search;
    char **items;
    size_t n_items, next_item;
    uint64_t until_ms; /* G2: the room descriptions asked until then */
    /* G1, G6 */
    char *keywords;
    int64_t start_ms, end_ms; /* -1: none */
    char *before, *after;
    int max;
    bool fulltext;
    bool multi;        /* G1 over the joined rooms */
    bool all_complete; /* every room's page was complete */
    size_t spent;      /* serialised bytes of the archive results kept (MUC_MAM_MAX_BYTES in all) */
};

static void call_free(void *p)
{
    struct muc_call *c = p;
    if (c == NULL)
        return;
    mem_free(c->room);
    mem_free(c->room_jid);
    mem_free(c->service);
    mem_free(c->nick);
    if (c->password != NULL) {
        memset(c->password, 0, strlen(c->password));
        mem_free(c->password);
    }
    json_decref(c->out);
    json_decref(c->entity);
    mem_free(c->search);
    for (size_t i = 0; i < c->n_items; i++)
        mem_free(c->items[i]);
    mem_free(c->items);
    mem_free(c->keywords);
    mem_free(c->before);
    mem_free(c->after);
    mem_free(c);
}

static void room_not_found(struct http_req *req, const char *room)
{
    http_reply_error(req, 404, room, "Chat room does not exist or is not accessible.",
                     "RoomNotFoundException");
}

static void service_not_found(struct http_req *req, const char *service)
{
    http_reply_error(req, 404, service, "Chat service does not exist or is not accessible.",
                     "MUCServiceNotFoundException");
}

static bool error_is(const struct xmpp_stanza *st, const char *cond)
{
    const char *c = NULL;
    api__xmpp_error_status(st, &c);
    return c != NULL && strcmp(c, cond) == 0;
}

/* A room error answer: item-not-found is the contract's RoomNotFoundException. */
static void room_error(struct muc_call *c, const struct xmpp_stanza *st)
{
    if (error_is(st, "item-not-found"))
        room_not_found(c->req, c->room);
    else
        api__xmpp_error(c->req, st);
}

/* One get query (disco#info, disco#items) of a step; errors reach cb (API_IQ_ERRORS). */
static void query_get(struct http_req *req, struct session *s, struct muc_call *c, const char *to,
                      const char *ns, api_iq_cb *cb)
{
    struct xmpp_stanza *iq = api__iq_new("get", to, "query", ns, NULL);
    api__iq(req, s, iq, 0, API_IQ_ERRORS, cb, call_free, c);
    xmpp_stanza_unref(iq);
}

/* A text query value or body: valid UTF-8 XML text without NUL, at most max bytes. */
static bool text_ok(const char *v, size_t len, size_t max)
{
    return len <= max && memchr(v, '\0', len) == NULL && api__xml_text_valid(v, len);
}

/* ---- dates -------------------------------------------------------------------------------------
 */

/* A date of C1/G1: with 'T' an ISO-8601 instant, else MM/dd/yy in local time. start is moved 5
 * minutes earlier, end to the end of that day (+1 day - 1 ms). Unparseable: no bound (-1). */
static int64_t query_date(const char *v, bool end)
{
    int64_t ms;
    if (v == NULL || v[0] == '\0' || strlen(v) > 64 || !api__parse_date_arg(v, &ms))
        return -1;
    if (end)
        ms += 24 * 3600 * 1000 - 1;
    else
        ms -= 5 * 60 * 1000;
    return ms < 0 ? 0 : ms;
}

/* ---- data forms and room entities ------------------------------------------------------------ */

static const struct xmpp_stanza *form_of(const struct xmpp_stanza *q)
{
    for (const struct xmpp_stanza *x = xmpp_stanza_first_child(q); x; x = xmpp_stanza_next(x)) {
        const char *ns = xmpp_stanza_ns(x);
        if (strcmp(xmpp_stanza_name(x), "x") == 0 && ns && strcmp(ns, NS_DATA) == 0)
            return x;
    }
    return NULL;
}

/* The first value of field var (mem_free), or NULL. */
static char *form_value(const struct xmpp_stanza *form, const char *var)
{
    for (const struct xmpp_stanza *f = form ? xmpp_stanza_first_child(form) : NULL; f;
         f = xmpp_stanza_next(f)) {
        const char *v = xmpp_stanza_attr(f, "var");
        if (strcmp(xmpp_stanza_name(f), "field") == 0 && v && strcmp(v, var) == 0)
            return xmpp_stanza_child_text(f, "value", NULL);
    }
    return NULL;
}

/* A JSON string from server text, when it is valid (NULL otherwise: the key is omitted). */
static json_t *jstr(const char *v)
{
    if (v == NULL || !api__xml_text_valid(v, strlen(v)))
        return NULL;
    return json_string(v);
}

static void set_form_bool(json_t *e, const char *key, const struct xmpp_stanza *form,
                          const char *var, bool dflt)
{
    char *v = form_value(form, var);
    bool b = dflt;
    if (v != NULL)
        b = strcmp(v, "1") == 0 || strcmp(v, "true") == 0;
    mem_free(v);
    json_object_set_new(e, key, json_boolean(b));
}

/* MUCRoomEntity (§1.10) from a room's disco#info query; affiliation lists start empty. */
static json_t *room_entity(const char *room, const struct xmpp_stanza *q)
{
    json_t *e = json_object();
    const struct xmpp_stanza *form = form_of(q);
    json_object_set_new(e, "roomName", json_string(room));
    const struct xmpp_stanza *id = xmpp_stanza_child(q, "identity", NULL);
    const char *name = id ? xmpp_stanza_attr(id, "name") : NULL;
    char *title = form_value(form, "muc#roomconfig_roomname");
    json_t *nat = jstr(title ? title : name);
    json_object_set_new(e, "naturalName", nat ? nat : json_string(room));
    mem_free(title);
    char *desc = form_value(form, "muc#roominfo_description");
    json_t *jd = jstr(desc);
    if (jd)
        json_object_set_new(e, "description", jd);
    mem_free(desc);
    char *subj = form_value(form, "muc#roominfo_subject");
    json_t *js = jstr(subj);
    if (js)
        json_object_set_new(e, "subject", js);
    mem_free(subj);
    char *maxu = form_value(form, "muc#roomconfig_maxusers");
    if (maxu == NULL)
        maxu = form_value(form, "muc#roominfo_maxusers");
    long mu = maxu ? strtol(maxu, NULL, 10) : 0;
    json_object_set_new(e, "maxUsers", json_integer(mu > 0 && mu < 1000000 ? mu : 0));
    mem_free(maxu);
    json_object_set_new(e, "persistent", json_boolean(api__disco_feature(q, "muc_persistent")));
    json_object_set_new(
        e, "publicRoom",
        json_boolean(api__disco_feature(q, "muc_public") || !api__disco_feature(q, "muc_hidden")));
    json_object_set_new(e, "registrationEnabled", json_true());
    json_object_set_new(e, "canAnyoneDiscoverJID",
                        json_boolean(api__disco_feature(q, "muc_nonanonymous")));
    char *cs = form_value(form, "muc#roominfo_changesubject");
    if (cs == NULL)
        cs = form_value(form, "muc#roomconfig_changesubject");
    json_object_set_new(e, "canOccupantsChangeSubject",
                        json_boolean(cs && (strcmp(cs, "1") == 0 || strcmp(cs, "true") == 0)));
    mem_free(cs);
    set_form_bool(e, "canOccupantsInvite", form, "muc#roomconfig_allowinvites", false);
    json_object_set_new(e, "canChangeNickname", json_true());
    json_object_set_new(e, "logEnabled", json_boolean(api__disco_feature(q, NS_MAM)));
    json_object_set_new(e, "loginRestrictedToNickname", json_false());
    json_object_set_new(e, "membersOnly", json_boolean(api__disco_feature(q, "muc_membersonly")));
    json_object_set_new(e, "moderated", json_boolean(api__disco_feature(q, "muc_moderated")));
    json_object_set_new(e, "passwordProtected",
                        json_boolean(api__disco_feature(q, "muc_passwordprotected")));
    char *pm = form_value(form, "muc#roomconfig_allowpm");
    const char *allow = "anyone";
    if (pm != NULL && (strcmp(pm, "participants") == 0 || strcmp(pm, "moderators") == 0 ||
                       strcmp(pm, "none") == 0))
        allow = pm;
    else if (pm != NULL && strcmp(pm, "0") == 0)
        allow = "none";
    json_object_set_new(e, "allowPM", json_string(allow));
    mem_free(pm);
    json_t *roles = json_array();
    json_array_append_new(roles, json_string("moderator"));
    json_array_append_new(roles, json_string("participant"));
    json_array_append_new(roles, json_string("visitor"));
    json_object_set_new(e, "broadcastPresenceRoles", roles);
    static const char *const lists[] = { "owners",  "ownerGroups",  "admins",   "adminGroups",
                                         "members", "memberGroups", "outcasts", "outcastGroups" };
    for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++)
        json_object_set_new(e, lists[i], json_array());
    return e;
}

/* ---- G3 room information --------------------------------------------------------------------- */

static const char *const aff_names[] = { "owner", "admin", "member", "outcast" };
static const char *const aff_keys[] = { "owners", "admins", "members", "outcasts" };

static void aff_next(struct http_req *req, struct session *s, struct muc_call *c);

static void aff_answered(struct http_req *req, struct session *s, const struct xmpp_stanza *reply,
                         void *data)
{
    struct muc_call *c = data;
    const struct xmpp_stanza *q = xmpp_stanza_child(reply, "query", NS_MUC_ADMIN);
    json_t *list = json_object_get(c->entity, aff_keys[c->aff_step]);
    /* a user who may not read the list gets an error: the list stays empty */
    for (const struct xmpp_stanza *it = !api__is_error(reply) && q ? xmpp_stanza_first_child(q)
                                                                   : NULL;
         it != NULL && json_array_size(list) < 1000; it = xmpp_stanza_next(it)) {
        const char *jid = xmpp_stanza_attr(it, "jid");
        char *bare = jid ? xmpp_jid_bare_of(jid) : NULL;
        if (bare != NULL && strcmp(xmpp_stanza_name(it), "item") == 0)
            json_array_append_new(list, json_string(bare));
        mem_free(bare);
    }
    c->aff_step++;
    aff_next(req, s, c);
}

static void aff_next(struct http_req *req, struct session *s, struct muc_call *c)
{
    if (c->aff_step >= 4) {
        http_reply_json(req, 200, c->entity);
        c->entity = NULL;
        call_free(c);
        return;
    }
    struct xmpp_stanza *q;
    struct xmpp_stanza *iq = api__iq_new("get", c->room_jid, "query", NS_MUC_ADMIN, &q);
    struct xmpp_stanza *it = xmpp_stanza_add_child(q, "item", NULL);
    xmpp_stanza_set_attr(it, "affiliation", aff_names[c->aff_step]);
    api__iq(req, s, iq, 0, API_IQ_ERRORS, aff_answered, call_free, c);
    xmpp_stanza_unref(iq);
}

static void info_answered(struct http_req *req, struct session *s, const struct xmpp_stanza *reply,
                          void *data)
{
    struct muc_call *c = data;
    const struct xmpp_stanza *q = xmpp_stanza_child(reply, "query", NS_DISCO_INFO);
    if (api__is_error(reply) || q == NULL) {
        if (q == NULL && !api__is_error(reply))
            room_not_found(req, c->room);
        else
            room_error(c, reply);
        call_free(c);
        return;
    }
    c->entity = room_entity(c->room, q);
    aff_next(req, s, c);
}

/* ---- G2 room list ---------------------------------------------------------------------------- */

static bool contains_ci(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (const char *p = hay; *p; p++) {
        if (strncasecmp(p, needle, n) == 0)
            return true;
    }
    return n == 0;
}

static void rooms_next(struct http_req *req, struct session *s, struct muc_call *c);

/* Lists the room jid (room@service) described by its disco#info query q, or by name only
 * (q NULL), when it matches the search. */
static void room_add(struct muc_call *c, const char *jid, const struct xmpp_stanza *q)
{
    struct xmpp_stanza *empty = q ? NULL : xmpp_stanza_new("query", NS_DISCO_INFO);
    char *local = mem_strndup(jid, (size_t)(strchr(jid, '@') - jid));
    json_t *e = room_entity(local, q ? q : empty);
    /* search also matches the natural name, known only now */
    const char *nat = json_string_value(json_object_get(e, "naturalName"));
    if (c->search == NULL || contains_ci(local, c->search) || (nat && contains_ci(nat, c->search)))
        json_array_append_new(c->out, e);
    else
        json_decref(e);
    mem_free(local);
    if (empty != NULL)
        xmpp_stanza_unref(empty);
}

static void room_info_answered(struct http_req *req, struct session *s,
                               const struct xmpp_stanza *reply, void *data)
{
    struct muc_call *c = data;
    const char *jid = c->items[c->next_item - 1];
    if (reply == NULL) /* no answer in time: the name only */
        room_add(c, jid, NULL);
    else if (!api__is_error(reply) && xmpp_stanza_child(reply, "query", NS_DISCO_INFO) != NULL)
        room_add(c, jid, xmpp_stanza_child(reply, "query", NS_DISCO_INFO));
    rooms_next(req, s, c);
}

static void rooms_next(struct http_req *req, struct session *s, struct muc_call *c)
{
    uint64_t now = tick_now(c->d->tick);
    if (c->next_item < c->n_items && now < c->until_ms) {
        /* one at a time, each within what is left of the overall deadline */
        const char *to = c->items[c->next_item++];
        struct xmpp_stanza *iq = api__iq_new("get", to, "query", NS_DISCO_INFO, NULL);
        api__iq(req, s, iq, c->until_ms - now, API_IQ_ERRORS | API_IQ_TIMEOUT, room_info_answered,
                call_free, c);
        xmpp_stanza_unref(iq);
        return;
    }
    while (c->next_item < c->n_items) /* out of time: the rest by name */
        room_add(c, c->items[c->next_item++], NULL);
    json_t *body = json_object();
    json_object_set_new(body, "chatRooms", c->out);
    c->out = NULL;
    http_reply_json(req, 200, body);
    call_free(c);
}

static void items_answered(struct http_req *req, struct session *s, const struct xmpp_stanza *reply,
                           void *data)
{
    struct muc_call *c = data;
    if (api__is_error(reply)) {
        /* "does not exist or is not accessible": also a remote domain the server will not
         * reach (Prosody without s2s answers not-allowed) */
        if (error_is(reply, "item-not-found") || error_is(reply, "remote-server-not-found") ||
            error_is(reply, "service-unavailable") || error_is(reply, "not-allowed"))
            service_not_found(req, c->service);
        else
            api__xmpp_error(req, reply);
        call_free(c);
        return;
    }
    const struct xmpp_stanza *q = xmpp_stanza_child(reply, "query", NS_DISCO_ITEMS);
    c->items = mem_calloc(MUC_ROOMS_MAX, sizeof(*c->items));
    for (const struct xmpp_stanza *it = q ? xmpp_stanza_first_child(q) : NULL;
         it != NULL && c->n_items < MUC_ROOMS_MAX; it = xmpp_stanza_next(it)) {
        const char *jid = xmpp_stanza_attr(it, "jid");
        struct xmpp_jid j;
        if (strcmp(xmpp_stanza_name(it), "item") != 0 || jid == NULL || xmpp_jid_parse(&j, jid) < 0)
            continue;
        const char *name = xmpp_stanza_attr(it, "name");
        /* search: skip rooms whose name and listed title both miss (saves their disco#info) */
        bool wanted = c->search == NULL || (j.local && contains_ci(j.local, c->search)) ||
                      (name && contains_ci(name, c->search));
        if (wanted && j.local != NULL && j.resource == NULL &&
            xmpp_jid_bare_equal(j.domain, c->service))
            c->items[c->n_items++] = xmpp_jid_bare(&j);
        xmpp_jid_cleanup(&j);
    }
    c->out = json_array();
    c->until_ms = tick_now(c->d->tick) + MUC_ROOMS_DEADLINE_MS;
    rooms_next(req, s, c);
}

/* ---- G4 / G5 occupants ----------------------------------------------------------------------- */

struct occ_ctx {
    json_t *list;
    bool participants;
};

static void occupant_json(const char *room, const struct session_muc_occupant *o, void *data)
{
    struct occ_ctx *x = data;
    if (x->participants && strcmp(o->role, "participant") != 0)
        return;
    json_t *e = json_object();
    char jid[3200];
    snprintf(jid, sizeof(jid), "%s/%s", room, o->nick);
    json_t *j = jstr(jid);
    json_object_set_new(e, "jid", j ? j : json_string(room));
    if (!x->participants && o->jid != NULL)
        json_object_set_new(e, "userAddress", json_string(o->jid));
    json_object_set_new(e, "role", json_string(o->role));
    json_object_set_new(e, "affiliation", json_string(o->affiliation));
    json_array_append_new(x->list, e);
}

static void occupants_reply(struct muc_call *c, json_t *list)
{
    json_t *body = json_object();
    json_object_set_new(body, c->op == OP_PARTICIPANTS ? "participants" : "occupants", list);
    http_reply_json(c->req, 200, body);
}

static void room_items_answered(struct http_req *req, struct session *s,
                                const struct xmpp_stanza *reply, void *data)
{
    (void)s;
    struct muc_call *c = data;
    c->req = req;
    if (api__is_error(reply)) {
        room_error(c, reply);
        call_free(c);
        return;
    }
    json_t *list = json_array();
    const struct xmpp_stanza *q = xmpp_stanza_child(reply, "query", NS_DISCO_ITEMS);
    /* roles are unknown from disco#items: participants stay [], occupants get their jid */
    for (const struct xmpp_stanza *it = q && c->op == OP_OCCUPANTS ? xmpp_stanza_first_child(q)
                                                                   : NULL;
         it != NULL && json_array_size(list) < SESSION_MUC_MAX_OCCUPANTS;
         it = xmpp_stanza_next(it)) {
        const char *jid = xmpp_stanza_attr(it, "jid");
        if (strcmp(xmpp_stanza_name(it), "item") != 0 || jid == NULL ||
            !xmpp_jid_bare_equal(jid, c->room_jid) || strchr(jid, '/') == NULL)
            continue;
        json_t *j = jstr(jid);
        if (j == NULL)
            continue;
        json_t *e = json_object();
        json_object_set_new(e, "jid", j);
        json_array_append_new(list, e);
    }
    occupants_reply(c, list);
    call_free(c);
}

/* ---- G1 / G6 archive ------------------------------------------------------------------------- */

struct arch_msg {
    int64_t ms;
    const char *from, *to; /* borrowed from the item; from is valid text */
    char *body;            /* valid text */
    char *real;            /* real JID from the archived muc#user item, or NULL */
};

static void arch_clear(struct arch_msg *m)
{
    mem_free(m->body);
    mem_free(m->real);
}

/* One forwarded message of a MAM result with a body and a stamp (arch_clear), or false. */
static bool arch_parse(const struct xmpp_stanza *item, struct arch_msg *m)
{
    const struct xmpp_stanza *res = xmpp_stanza_child(item, "result", NS_MAM);
    const struct xmpp_stanza *fw = res ? xmpp_stanza_child(res, "forwarded", NS_FORWARD) : NULL;
    const struct xmpp_stanza *msg = fw ? xmpp_stanza_child(fw, "message", NULL) : NULL;
    const struct xmpp_stanza *delay = fw ? xmpp_stanza_child(fw, "delay", NS_DELAY) : NULL;
    const struct xmpp_stanza *body = msg ? xmpp_stanza_child(msg, "body", NULL) : NULL;
    if (msg == NULL || body == NULL)
        return false;
    memset(m, 0, sizeof(*m));
    const char *stamp = delay ? xmpp_stanza_attr(delay, "stamp") : NULL;
    if (stamp == NULL || !api__parse_iso(stamp, &m->ms))
        return false;
    m->from = xmpp_stanza_attr(msg, "from");
    m->to = xmpp_stanza_attr(msg, "to");
    if (m->from == NULL || !api__xml_text_valid(m->from, strlen(m->from)))
        return false;
    m->body = xmpp_stanza_text(body);
    if (!api__xml_text_valid(m->body, strlen(m->body))) {
        arch_clear(m);
        return false;
    }
    const struct xmpp_stanza *x = xmpp_stanza_child(msg, "x", NS_MUC_USER);
    const struct xmpp_stanza *it = x ? xmpp_stanza_child(x, "item", NULL) : NULL;
    const char *real = it ? xmpp_stanza_attr(it, "jid") : NULL;
    m->real = real ? xmpp_jid_bare_of(real) : NULL;
    return true;
}

static void conv_participant(json_t *conv, const char *who)
{
    json_t *list = json_object_get(conv, "participantList");
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v)
    {
        if (strcmp(json_string_value(v), who) == 0)
            return;
    }
    json_t *jo = api__jid_object(who);
    if (json_is_null(jo))
        return;
    json_array_append_new(list, json_string(who));
    json_array_append_new(json_object_get(conv, "conversationParticipants"), json_string(who));
    json_array_append_new(json_object_get(conv, "participants"), jo);
}

static json_t *conv_new(const struct muc_call *c, json_int_t id, int64_t ms)
{
    json_t *conv = json_object();
    json_object_set_new(conv, "conversationID", json_integer(id));
    json_object_set_new(conv, "external", json_false());
    json_object_set_new(conv, "startDate", json_integer(ms));
    json_object_set_new(conv, "lastActivity", json_integer(ms));
    json_object_set_new(conv, "messageCount", json_integer(0));
    json_object_set_new(conv, "chatRoom", json_string(c->room_jid));
    json_object_set_new(conv, "room", api__jid_object(c->room_jid));
    json_object_set_new(conv, "participantList", json_array());
    json_object_set_new(conv, "participants", json_array());
    json_object_set_new(conv, "conversationParticipants", json_array());
    json_object_set_new(conv, "message", json_array());
    return conv;
}

/* Keeps at most c->max of the page's items (the newest when paging backward) and sets
 * "complete", "first" and "last" from what was kept (api__mam_page), so that a client paging on
 * with after=last or before=first never skips messages cut here. */
static void mam_page_info(struct muc_call *c, json_t *body, const struct xmpp_stanza *reply,
                          struct xmpp_stanza *const **items, size_t *n, bool truncated)
{
    const struct xmpp_stanza *fin = xmpp_stanza_child(reply, "fin", NS_MAM);
    const struct xmpp_stanza *set = fin ? xmpp_stanza_child(fin, "set", NS_RSM) : NULL;
    const char *complete = fin ? xmpp_stanza_attr(fin, "complete") : NULL;
    bool backward = c->after == NULL && (c->before != NULL || c->op == OP_HISTORY);
    struct api_mam_page page;
    api__mam_page(*items, *n, (size_t)c->max, backward, truncated, set, &page);
    *items += page.start;
    *n = page.n;
    bool done = complete && (strcmp(complete, "true") == 0 || strcmp(complete, "1") == 0);
    json_object_set_new(body, "complete", json_boolean(done && !page.cut));
    json_t *jf = jstr(page.first), *jl = jstr(page.last);
    if (jf)
        json_object_set_new(body, "first", jf);
    if (jl)
        json_object_set_new(body, "last", jl);
    mem_free(page.first);
    mem_free(page.last);
}

static void reply_history(struct muc_call *c, const struct xmpp_stanza *reply,
                          struct xmpp_stanza *const *items, size_t n, bool truncated)
{
    json_t *out = json_object();
    mam_page_info(c, out, reply, &items, &n, truncated);
    json_t *list = json_array();
    for (size_t i = 0; i < n; i++) {
        struct arch_msg m;
        if (!arch_parse(items[i], &m))
            continue;
        json_t *e = json_object();
        json_t *jb = json_string(m.body), *jf = json_string(m.from);
        arch_clear(&m);
        json_t *jt = jstr(m.to);
        json_object_set_new(e, "to", jt ? jt : json_string(session_jid(c->s)));
        json_object_set_new(e, "from", jf);
        json_object_set_new(e, "type", json_string("groupchat"));
        json_object_set_new(e, "body", jb);
        char stamp[40];
        api__format_iso(m.ms, stamp);
        json_object_set_new(e, "delay_stamp", json_string(stamp));
        json_object_set_new(e, "delay_from", json_string(c->room_jid));
        json_array_append_new(list, e);
    }
    json_object_set_new(out, "message", list);
    http_reply_json(c->req, 200, out);
}

/* Appends the page's messages to convs as Conversation objects of c->room_jid. */
static void add_conversations(struct muc_call *c, json_t *convs, struct xmpp_stanza *const *items,
                              size_t n)
{
    json_t *conv = NULL;
    int64_t last_ms = 0;
    for (size_t i = 0; i < n; i++) {
        struct arch_msg m;
        if (!arch_parse(items[i], &m))
            continue;
        /* without server-side full text search, keywords filter the page here */
        if (c->keywords != NULL && !c->fulltext && !api__keywords_match(m.body, c->keywords)) {
            arch_clear(&m);
            continue;
        }
        if (conv == NULL || m.ms - last_ms > MUC_IDLE_MS ||
            m.ms - json_integer_value(json_object_get(conv, "startDate")) > MUC_CONV_MAX_MS) {
            conv = conv_new(c, (json_int_t)json_array_size(convs) + 1, m.ms);
            json_array_append_new(convs, conv);
        }
        last_ms = m.ms;
        json_t *id = json_object_get(conv, "conversationID");
        json_t *e = json_object();
        json_object_set(e, "conversationID", id);
        json_object_set_new(e, "from", json_string(m.from));
        json_t *fj = api__jid_object(m.from);
        if (json_is_null(fj))
            json_decref(fj);
        else
            json_object_set_new(e, "fromJID", fj);
        json_object_set_new(e, "to", json_string(c->room_jid));
        json_object_set_new(e, "toJID", api__jid_object(c->room_jid));
        json_object_set_new(e, "sentDate", json_integer(m.ms));
        json_object_set_new(e, "body", json_string(m.body));
        json_object_set_new(e, "roomEvent", json_false());
        json_array_append_new(json_object_get(conv, "message"), e);
        json_object_set_new(conv, "lastActivity", json_integer(m.ms));
        json_object_set_new(
            conv, "messageCount",
            json_integer(json_integer_value(json_object_get(conv, "messageCount")) + 1));
        char *who = m.real ? mem_strdup(m.real) : mem_strdup(m.from);
        conv_participant(conv, who);
        mem_free(who);
        arch_clear(&m);
    }
}

struct hist_ctx {
    struct muc_call *c;
    json_t *list;
};

static void hist_json(const char *room, const struct session_muc_msg *m, void *data)
{
    struct hist_ctx *x = data;
    int64_t ms;
    json_t *jf = jstr(m->from), *jb = jstr(m->body);
    if (jf == NULL || jb == NULL || !api__parse_iso(m->stamp, &ms)) {
        json_decref(jf);
        json_decref(jb);
        return;
    }
    json_t *e = json_object();
    json_object_set_new(e, "to", json_string(session_jid(x->c->s)));
    json_object_set_new(e, "from", jf);
    json_object_set_new(e, "type", json_string("groupchat"));
    json_object_set_new(e, "body", jb);
    char stamp[40];
    api__format_iso(ms, stamp);
    json_object_set_new(e, "delay_stamp", json_string(stamp));
    json_object_set_new(e, "delay_from", json_string(room));
    json_array_append_new(x->list, e);
}

/* G6 for a room without an archive: the messages the session saw in it (the discussion
 * history the room sent on entering included), the last max of them. */
static void reply_join_history(struct muc_call *c)
{
    struct hist_ctx x = { c, json_array() };
    session_muc_history(c->s, c->room_jid, hist_json, &x);
    while (json_array_size(x.list) > (size_t)c->max)
        json_array_remove(x.list, 0);
    json_t *out = json_object();
    json_object_set_new(out, "message", x.list);
    json_object_set_new(out, "complete", json_true());
    http_reply_json(c->req, 200, out);
}

static void reply_conversations(struct muc_call *c, const struct xmpp_stanza *reply,
                                struct xmpp_stanza *const *items, size_t n, bool truncated)
{
    json_t *out = json_object();
    mam_page_info(c, out, reply, &items, &n, truncated);
    json_t *convs = json_array();
    add_conversations(c, convs, items, n);
    json_object_set_new(out, "conversation", convs);
    http_reply_json(c->req, 200, out);
}

static void mam_send(struct http_req *req, struct session *s, struct muc_call *c);

/* G1 without a room: the rooms joined in this session, one archive query each (first page from
 * start), merged; complete when every room's page was. */
static void joined_next(struct muc_call *c)
{
    if (c->next_item < c->n_items && c->spent >= MUC_MAM_MAX_BYTES) {
        c->all_complete = false; /* the byte budget is spent: the rooms left are not read */
        c->next_item = c->n_items;
    }
    if (c->next_item < c->n_items) {
        mem_free(c->room_jid);
        c->room_jid = mem_strdup(c->items[c->next_item++]);
        mam_send(c->req, c->s, c);
        return;
    }
    json_t *out = json_object();
    json_object_set_new(out, "conversation", c->out);
    c->out = NULL;
    json_object_set_new(out, "complete", json_boolean(c->all_complete));
    http_reply_json(c->req, 200, out);
    call_free(c);
}

static void joined_room(const char *room, const char *nick, void *data)
{
    (void)nick;
    struct muc_call *c = data;
    if (c->n_items < SESSION_MUC_MAX_ROOMS)
        c->items[c->n_items++] = mem_strdup(room);
}

static void mam_aborted(struct http_req *req, void *data)
{
    (void)req;
    struct muc_call *c = data;
    session_mam_cancel(c->s, c->wait_id);
    call_free(c);
}

static void mam_done(struct session *s, int status, const struct xmpp_stanza *reply,
                     struct xmpp_stanza *const *items, size_t n, bool truncated, void *data)
{
    (void)s;
    struct muc_call *c = data;
    http_req_on_abort(c->req, NULL, NULL);
    if (status < 0) {
        api__iq_failed(c->req, status);
    } else if (c->multi) { /* a room that fails (left, gone) adds nothing */
        if (!api__is_error(reply)) {
            const struct xmpp_stanza *fin = xmpp_stanza_child(reply, "fin", NS_MAM);
            const char *complete = fin ? xmpp_stanza_attr(fin, "complete") : NULL;
            if (truncated || n > (size_t)c->max || complete == NULL ||
                (strcmp(complete, "true") != 0 && strcmp(complete, "1") != 0))
                c->all_complete = false;
            if (n > (size_t)c->max)
                n = (size_t)c->max;
            for (size_t i = 0; i < n; i++) { /* the rooms share one byte budget */
                char *xml = xmpp_stanza_to_string(items[i]);
                c->spent += xml ? strlen(xml) : 0;
                mem_free(xml);
            }
            add_conversations(c, c->out, items, n);
        }
        joined_next(c);
        return;
    } else if (api__is_error(reply) && c->op == OP_HISTORY && !error_is(reply, "item-not-found") &&
               session_muc_joined(c->s, c->room_jid)) {
        reply_join_history(c); /* no archive to read: what the room sent this session */
    } else if (api__is_error(reply)) {
        room_error(c, reply);
    } else if (c->op == OP_HISTORY) {
        reply_history(c, reply, items, n, truncated);
    } else {
        reply_conversations(c, reply, items, n, truncated);
    }
    call_free(c);
}

static void mam_send(struct http_req *req, struct session *s, struct muc_call *c)
{
    char qid[25];
    rnd_hex(qid, 12);
    struct xmpp_stanza *q;
    struct xmpp_stanza *iq = api__iq_new("set", c->room_jid, "query", NS_MAM, &q);
    xmpp_stanza_set_attr(q, "queryid", qid);
    if (c->start_ms >= 0 || c->end_ms >= 0 || (c->keywords && c->fulltext)) {
        struct xmpp_stanza *form = xmpp_stanza_add_child(q, "x", NS_DATA);
        xmpp_stanza_set_attr(form, "type", "submit");
        api__form_field(form, "FORM_TYPE", NS_MAM, "hidden");
        char stamp[40];
        if (c->start_ms >= 0) {
            api__format_iso(c->start_ms, stamp);
            api__form_field(form, "start", stamp, NULL);
        }
        if (c->end_ms >= 0) {
            api__format_iso(c->end_ms, stamp);
            api__form_field(form, "end", stamp, NULL);
        }
        if (c->keywords && c->fulltext)
            api__form_field(form, "{" NS_FULLTEXT "}fulltext", c->keywords, NULL);
    }
    struct xmpp_stanza *set = xmpp_stanza_add_child(q, "set", NS_RSM);
    char max[16];
    snprintf(max, sizeof(max), "%d", c->max);
    xmpp_stanza_add_text_child(set, "max", NULL, max);
    if (c->after != NULL)
        xmpp_stanza_add_text_child(set, "after", NULL, c->after);
    else if (c->before != NULL || c->op == OP_HISTORY)
        xmpp_stanza_add_text_child(set, "before", NULL, c->before ? c->before : "");
    c->req = req;
    c->s = s;
    int64_t id =
        session_mam_query(s, iq, qid, (size_t)c->max, MUC_MAM_MAX_BYTES - c->spent, 0, mam_done, c);
    xmpp_stanza_unref(iq);
    if (id < 0) {
        api__error_errno(req, (int)id, "xmpp send failed");
        call_free(c);
        return;
    }
    c->wait_id = id;
    session_touch(s);
    http_req_on_abort(req, mam_aborted, c);
}

static void search_info_answered(struct http_req *req, struct session *s,
                                 const struct xmpp_stanza *reply, void *data)
{
    struct muc_call *c = data;
    const struct xmpp_stanza *q = xmpp_stanza_child(reply, "query", NS_DISCO_INFO);
    if (api__is_error(reply)) {
        room_error(c, reply);
        call_free(c);
        return;
    }
    c->fulltext = q != NULL && api__disco_feature(q, NS_FULLTEXT);
    mam_send(req, s, c);
}

/* G6: the room's archive when it keeps one (feature urn:xmpp:mam:2), else what the room sent
 * this session (its discussion history on entering included; nothing when not joined). */
static void history_info_answered(struct http_req *req, struct session *s,
                                  const struct xmpp_stanza *reply, void *data)
{
    struct muc_call *c = data;
    const struct xmpp_stanza *q = xmpp_stanza_child(reply, "query", NS_DISCO_INFO);
    if (api__is_error(reply)) {
        room_error(c, reply);
        call_free(c);
        return;
    }
    if (q != NULL && api__disco_feature(q, NS_MAM)) {
        mam_send(req, s, c);
        return;
    }
    c->req = req;
    c->s = s;
    reply_join_history(c);
    call_free(c);
}

/* ---- G7–G10 ---------------------------------------------------------------------------------- */

static void join_aborted(struct http_req *req, void *data)
{
    (void)req;
    struct muc_call *c = data;
    session_muc_join_cancel(c->s, c->wait_id);
    call_free(c);
}

static void join_done(struct session *s, int status, const struct xmpp_stanza *err, void *data)
{
    (void)s;
    struct muc_call *c = data;
    http_req_on_abort(c->req, NULL, NULL);
    if (status == 0)
        http_reply_empty(c->req, 200);
    else if (status == -EPROTO && err != NULL)
        api__xmpp_error(c->req, err);
    else if (status == -ETIMEDOUT)
        api__error(c->req, 504, "room did not answer");
    else if (status == -ECONNABORTED)
        api__error(c->req, 409, "removed from the room");
    else
        api__error(c->req, 503, "join room failed");
    call_free(c);
}

static void do_join(struct http_req *req, struct session *s, struct muc_call *c)
{
    c->req = req;
    c->s = s;
    int64_t id =
        session_muc_join(s, c->room_jid, c->nick, c->password, c->history, 0, join_done, c);
    if (id == 0) {
        http_reply_empty(req, 200); /* already in the room */
    } else if (id > 0) {
        c->wait_id = id;
        session_touch(s);
        http_req_on_abort(req, join_aborted, c);
        return;
    } else if (id == -EINVAL) {
        api__error(req, 400, "invalid nickname");
    } else if (id == -ENOSPC) {
        api__error(req, 400, "too many rooms joined");
    } else {
        api__error_errno(req, (int)id, "join room failed");
    }
    call_free(c);
}

static struct xmpp_stanza *message_new(const char *to, const char *type)
{
    struct xmpp_stanza *m = xmpp_stanza_new("message", XMPP_NS_CLIENT);
    char id[25];
    rnd_hex(id, 12);
    xmpp_stanza_set_attr(m, "to", to);
    xmpp_stanza_set_attr(m, "id", id);
    if (type != NULL)
        xmpp_stanza_set_attr(m, "type", type);
    return m;
}

static void send_reply(struct http_req *req, int rc)
{
    if (rc < 0)
        api__error_errno(req, rc, "send failed");
    else
        http_reply_empty(req, 200);
}

static void do_post(struct http_req *req, struct session *s, struct muc_call *c)
{
    size_t len;
    const char *text = http_req_body(req, &len);
    if (!session_muc_joined(s, c->room_jid)) {
        api__error(req, 400, "room not joined");
    } else if (len == 0) {
        api__error(req, 400, "empty message");
    } else if (!text_ok(text, len, MUC_TEXT_MAX)) {
        api__error(req, 400, "message is not valid UTF-8 text");
    } else {
        struct xmpp_stanza *m = api__build_message(c->room_jid, text, "groupchat");
        int rc = session_send(s, m);
        xmpp_stanza_unref(m);
        log_debug("muc_sent", "user=%s room=%s len=%zu", session_username(s), c->room_jid, len);
        send_reply(req, rc);
    }
    call_free(c);
}

static void do_invite(struct http_req *req, struct session *s, struct muc_call *c)
{
    size_t len;
    const char *reason = http_req_body(req, &len);
    const char *direct = http_req_query(req, "direct");
    char *to = api__jid_arg(c->d, http_req_param(req, "invitedJid"), true);
    if (to == NULL) {
        api__error(req, 400, "invalid invitee");
    } else if (!session_muc_joined(s, c->room_jid)) {
        api__error(req, 400, "room not joined");
    } else if (!text_ok(reason, len, MUC_REASON_MAX)) {
        api__error(req, 400, "reason is not valid UTF-8 text");
    } else {
        char *bare = xmpp_jid_bare_of(to);
        /* mediated (XEP-0045 §7.8.2): the room forwards it */
        struct xmpp_stanza *m = message_new(c->room_jid, NULL);
        struct xmpp_stanza *x = xmpp_stanza_add_child(m, "x", NS_MUC_USER);
        struct xmpp_stanza *inv = xmpp_stanza_add_child(x, "invite", NULL);
        xmpp_stanza_set_attr(inv, "to", bare ? bare : to);
        if (len > 0)
            xmpp_stanza_add_text_child(inv, "reason", NULL, reason);
        int rc = session_send(s, m);
        xmpp_stanza_unref(m);
        if (rc == 0 && direct != NULL && strcmp(direct, "true") == 0) {
            /* direct (XEP-0249), on request only: the invitee would see two invitations */
            m = message_new(to, NULL);
            x = xmpp_stanza_add_child(m, "x", NS_CONFERENCE);
            xmpp_stanza_set_attr(x, "jid", c->room_jid);
            if (len > 0)
                xmpp_stanza_set_attr(x, "reason", reason);
            rc = session_send(s, m);
            xmpp_stanza_unref(m);
        }
        log_info("muc_invite", "user=%s room=%s to=%s", session_username(s), c->room_jid,
                 bare ? bare : to);
        mem_free(bare);
        send_reply(req, rc);
    }
    mem_free(to);
    call_free(c);
}

/* ---- dispatch -------------------------------------------------------------------------------- */

static void with_service(struct http_req *req, struct session *s, const char *jid,
                         const struct xmpp_stanza *info, void *data)
{
    (void)info;
    struct muc_call *c = data;
    c->req = req;
    c->s = s;
    if (c->service == NULL)
        c->service = mem_strdup(jid);
    if (c->room[0] != '\0') {
        size_t n = strlen(c->room) + strlen(c->service) + 2;
        c->room_jid = mem_alloc(n);
        snprintf(c->room_jid, n, "%s@%s", c->room, c->service);
        /* lower case ASCII, as the server stores room JIDs (nodeprep) */
        for (char *p = c->room_jid; *p; p++)
            *p = (char)tolower((unsigned char)*p);
    }
    switch (c->op) {
    case OP_ROOMS:
        query_get(req, s, c, c->service, NS_DISCO_ITEMS, items_answered);
        return;
    case OP_INFO:
        query_get(req, s, c, c->room_jid, NS_DISCO_INFO, info_answered);
        return;
    case OP_PARTICIPANTS:
    case OP_OCCUPANTS: {
        struct occ_ctx x = { json_array(), c->op == OP_PARTICIPANTS };
        if (session_muc_occupants(s, c->room_jid, occupant_json, &x) >= 0) {
            occupants_reply(c, x.list);
            call_free(c);
            return;
        }
        json_decref(x.list);
        query_get(req, s, c, c->room_jid, NS_DISCO_ITEMS, room_items_answered);
        return;
    }
    case OP_MESSAGES:
        if (c->room_jid == NULL) { /* no room: the joined rooms, never every archive (§7) */
            c->items = mem_calloc(SESSION_MUC_MAX_ROOMS, sizeof(*c->items));
            session_muc_rooms(s, joined_room, c);
            c->multi = true;
            c->all_complete = true;
            mem_free(c->before); /* paging ids belong to one archive */
            mem_free(c->after);
            c->before = c->after = NULL;
            c->out = json_array();
            joined_next(c);
            return;
        }
        query_get(req, s, c, c->room_jid, NS_DISCO_INFO, search_info_answered);
        return;
    case OP_HISTORY:
        query_get(req, s, c, c->room_jid, NS_DISCO_INFO, history_info_answered);
        return;
    case OP_JOIN:
        do_join(req, s, c);
        return;
    case OP_LEAVE: {
        int rc = session_muc_leave(s, c->room_jid);
        if (rc == -ENOENT)
            api__error(req, 400, "room not joined");
        else
            send_reply(req, rc);
        call_free(c);
        return;
    }
    case OP_POST:
        do_post(req, s, c);
        return;
    case OP_INVITE:
        do_invite(req, s, c);
        return;
    }
}

/* A page size from "max": default, 1..MUC_PAGE_MAX, or -1 when invalid. */
static int page_max(const char *v)
{
    if (v == NULL || v[0] == '\0')
        return MUC_PAGE_DEFAULT;
    char *end;
    long n = strtol(v, &end, 10);
    if (*end != '\0' || n < 1 || n > MUC_PAGE_MAX)
        return -1;
    return (int)n;
}

/* An RSM id from a query (opaque, short, valid text), copied; false when invalid. */
static bool rsm_id(const char *v, char **out)
{
    *out = NULL;
    if (v == NULL)
        return true;
    size_t len = strlen(v);
    if (len > 256 || !api__xml_text_valid(v, len))
        return false;
    *out = mem_strdup(v);
    return true;
}

static void start(struct http_req *req, struct session *s, struct api_deps *d, enum muc_op op)
{
    session_touch(s);
    struct muc_call *c = mem_calloc(1, sizeof(*c));
    c->d = d;
    c->op = op;
    c->req = req;
    c->s = s;
    c->history = -1;
    c->start_ms = c->end_ms = -1;
    const char *room = op == OP_MESSAGES ? http_req_query(req, "room")
                       : op == OP_ROOMS  ? NULL
                                         : http_req_param(req, "roomName");
    if (room != NULL && room[0] == '\0' && op == OP_MESSAGES)
        room = NULL;
    if (room != NULL && !api__room_name_valid(room)) {
        api__error(req, 400, "invalid room name");
        call_free(c);
        return;
    }
    c->room = mem_strdup(room ? room : "");
    const char *svc = http_req_query(req, op == OP_MESSAGES ? "service" : "serviceName");
    if (svc == NULL && op == OP_MESSAGES)
        svc = http_req_query(req, "serviceName");
    if (!api__muc_service_arg(d, svc, &c->service)) {
        api__error(req, 400, "invalid service name");
        call_free(c);
        return;
    }
    if (op == OP_ROOMS) {
        const char *type = http_req_query(req, "type");
        const char *search = http_req_query(req, "search");
        if (search != NULL && search[0] != '\0') {
            if (strlen(search) > 256 || !api__xml_text_valid(search, strlen(search))) {
                api__error(req, 400, "invalid search");
                call_free(c);
                return;
            }
            c->search = mem_strdup(search);
        }
        if (type != NULL && type[0] != '\0' && strcmp(type, "public") != 0 &&
            strcmp(type, "all") != 0) {
            json_t *body = json_object();
            json_object_set_new(body, "chatRooms", json_array());
            http_reply_json(req, 200, body);
            call_free(c);
            return;
        }
    }
    if (op == OP_MESSAGES || op == OP_HISTORY) {
        c->max = page_max(http_req_query(req, "max"));
        const char *kw = http_req_query(req, "keywords");
        bool ok = c->max > 0 && rsm_id(http_req_query(req, "before"), &c->before) &&
                  rsm_id(http_req_query(req, "after"), &c->after);
        if (ok && kw != NULL && kw[0] != '\0') {
            ok = strlen(kw) <= 256 && api__xml_text_valid(kw, strlen(kw));
            c->keywords = ok ? mem_strdup(kw) : NULL;
        }
        if (!ok) {
            api__error(req, 400, "invalid query parameter");
            call_free(c);
            return;
        }
        c->start_ms = query_date(http_req_query(req, "start"), false);
        c->end_ms = query_date(http_req_query(req, "end"), true);
    }
    if (op == OP_JOIN) {
        const char *nick = http_req_query(req, "nick");
        size_t blen;
        const char *body = http_req_body(req, &blen);
        char *bnick = NULL;
        if (nick == NULL && blen > 0) { /* a JSON {"nick"} or plain text body */
            json_t *j = json_loadb(body, blen, 0, NULL);
            const char *jn =
                json_is_object(j) ? json_string_value(json_object_get(j, "nick")) : NULL;
            if (jn != NULL)
                bnick = mem_strdup(jn);
            else if (!json_is_object(j) && text_ok(body, blen, MUC_NICK_MAX))
                bnick = mem_strndup(body, blen);
            json_decref(j);
            nick = bnick;
        }
        if (nick == NULL || nick[0] == '\0')
            nick = session_name(s) && session_name(s)[0] ? session_name(s) : session_username(s);
        const char *pw = http_req_query(req, "password");
        const char *hist = http_req_query(req, "history");
        char *end = NULL;
        long h = hist ? strtol(hist, &end, 10) : -1;
        bool ok = strlen(nick) <= MUC_NICK_MAX && api__xml_text_valid(nick, strlen(nick)) &&
                  (hist == NULL || (*end == '\0' && h >= 0 && h <= MUC_HISTORY_MAX)) &&
                  (pw == NULL || (strlen(pw) <= 1023 && api__xml_text_valid(pw, strlen(pw))));
        if (ok) {
            c->nick = mem_strdup(nick);
            c->password = pw && pw[0] ? mem_strdup(pw) : NULL;
            c->history = (int)h;
        }
        mem_free(bnick);
        if (!ok) {
            api__error(req, 400, "invalid nickname, password or history");
            call_free(c);
            return;
        }
    }
    if (c->service != NULL)
        with_service(req, s, c->service, NULL, c);
    else
        api__service(d, req, s, API_SVC_MUC, with_service, call_free, c);
}

#define HANDLER(fn, op)                                                                           \
    static void fn(struct http_req *req, const char *user, struct session *s, struct api_deps *d) \
    {                                                                                             \
        (void)user;                                                                               \
        start(req, s, d, op);                                                                     \
    }

HANDLER(handle_messages, OP_MESSAGES)
HANDLER(handle_rooms, OP_ROOMS)
HANDLER(handle_info, OP_INFO)
HANDLER(handle_participants, OP_PARTICIPANTS)
HANDLER(handle_occupants, OP_OCCUPANTS)
HANDLER(handle_history, OP_HISTORY)
HANDLER(handle_join, OP_JOIN)
HANDLER(handle_leave, OP_LEAVE)
HANDLER(handle_post, OP_POST)
HANDLER(handle_invite, OP_INVITE)

int api__muc_register(struct api_deps *d)
{
    static const struct api_route_def routes[] = {
        { HTTP_GET, API_PREFIX "/groupchat/messages", handle_messages, API_NEED_SESSION },
        { HTTP_GET, API_PREFIX "/groupchat/rooms", handle_rooms, API_NEED_SESSION },
        { HTTP_GET, API_PREFIX "/groupchat/room/{roomName}", handle_info, API_NEED_SESSION },
        { HTTP_GET, API_PREFIX "/groupchat/room/{roomName}/participants", handle_participants,
          API_NEED_SESSION },
        { HTTP_GET, API_PREFIX "/groupchat/room/{roomName}/occupants", handle_occupants,
          API_NEED_SESSION },
        { HTTP_GET, API_PREFIX "/groupchat/room/{roomName}/chathistory", handle_history,
          API_NEED_SESSION },
        { HTTP_PUT, API_PREFIX "/groupchat/room/{roomName}", handle_join, API_NEED_SESSION },
        { HTTP_DELETE, API_PREFIX "/groupchat/room/{roomName}", handle_leave, API_NEED_SESSION },
        { HTTP_POST, API_PREFIX "/groupchat/room/{roomName}", handle_post, API_NEED_SESSION },
        { HTTP_POST, API_PREFIX "/groupchat/room/{roomName}/{invitedJid}", handle_invite,
          API_NEED_SESSION },
    };
    return API_ROUTE_TABLE(d, routes);
}
