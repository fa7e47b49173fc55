/* session_roster.c: the roster and presence cache of a session (RFC 6121 §2 and §4): contacts
 * from the roster result and pushes, the last presence of every contact resource, and the
 * user's own presence that each fresh binding announces. Every table is bounded
 * (SESSION_ROSTER_* in session.h), so a peer that sends thousands of resources, or a huge
 * roster, cannot grow memory without limit. */
#include "session/session_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "xmpp/jid.h"
#include "xmpp/stanza.h"

#define LOG_MODULE "session"
#include "core/log.h"

#define NS_ROSTER   "jabber:iq:roster"
#define NS_MUC_USER "http://jabber.org/protocol/muc#user"

struct roster_res {
    char *resource;   /* "" for a presence from the bare JID */
    const char *show; /* static (show_names) or NULL */
    char *status;     /* or NULL */
    int priority;
    uint64_t seq; /* recency */
};

struct roster_contact {
    char *jid; /* the key: bare, ASCII local part lower-cased */
    char *name;
    char **groups;
    size_t n_groups;
    enum session_sub sub;
    bool ask;
    bool in_roster; /* false only for the user's own bare JID (own resources) */
    bool self;
    bool known; /* a presence arrived since the last reset */
    struct roster_res res[SESSION_ROSTER_MAX_RESOURCES];
    size_t n_res;
};

struct session_roster {
    struct map *by_jid;
    size_t n_items;    /* contacts in the roster */
    size_t n_presence; /* resources of all contacts */
    uint64_t seq;
    bool loaded;
    bool warned_items, warned_presence;
    /* own presence (session_presence_set) */
    bool own_unavailable;
    const char *own_show;
    char *own_status;
    int own_priority;
};

static const char *const show_names[] = { "chat", "away", "xa", "dnd", NULL };

static const char *show_static(const char *show)
{
    for (int i = 0; show != NULL && show_names[i]; i++) {
        if (strcmp(show, show_names[i]) == 0)
            return show_names[i];
    }
    return NULL;
}

static struct session_roster *roster_of(struct session *s)
{
    if (s->roster == NULL) {
        s->roster = mem_calloc(1, sizeof(*s->roster));
        s->roster->by_jid = map_new();
    }
    return s->roster;
}

/* The cache key of a JID: its bare form with the ASCII letters of the local part in lower case
 * (the domain is lower-cased by the parser), or NULL when malformed. *resource (optional) gets
 * the resource (mem_free; NULL when none). */
static char *key_of(const char *jid, char **resource)
{
    struct xmpp_jid j;
    if (resource != NULL)
        *resource = NULL;
    if (jid == NULL || xmpp_jid_parse(&j, jid) < 0)
        return NULL;
    for (char *p = j.local; p != NULL && *p; p++) {
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    }
    char *key = xmpp_jid_bare(&j);
    if (resource != NULL) {
        *resource = j.resource;
        j.resource = NULL;
    }
    xmpp_jid_cleanup(&j);
    return key;
}

/* Cuts a UTF-8 string to at most max bytes on a character boundary. */
static void utf8_cut(char *s, size_t max)
{
    size_t len = strlen(s);
    if (len <= max)
        return;
    size_t cut = max;
    while (cut > 0 && ((unsigned char)s[cut] & 0xC0) == 0x80)
        cut--;
    s[cut] = '\0';
}

static void res_clear(struct roster_res *r)
{
    mem_free(r->resource);
    mem_free(r->status);
    memset(r, 0, sizeof(*r));
}

static void contact_forget_presence(struct session_roster *r, struct roster_contact *c)
{
    for (size_t i = 0; i < c->n_res; i++)
        res_clear(&c->res[i]);
    r->n_presence -= c->n_res;
    c->n_res = 0;
}

static void contact_free_groups(struct roster_contact *c)
{
    for (size_t i = 0; i < c->n_groups; i++)
        mem_free(c->groups[i]);
    mem_free(c->groups);
    c->groups = NULL;
    c->n_groups = 0;
}

static void contact_free(struct session_roster *r, struct roster_contact *c)
{
    contact_forget_presence(r, c);
    contact_free_groups(c);
    if (c->in_roster)
        r->n_items--;
    mem_free(c->name);
    mem_free(c->jid);
    mem_free(c);
}

static void contact_remove(struct session_roster *r, const char *key)
{
    struct roster_contact *c = map_remove(r->by_jid, key);
    if (c != NULL)
        contact_free(r, c);
}

static enum session_sub sub_code(const char *sub)
{
    if (sub == NULL)
        return SESSION_SUB_NONE;
    if (strcmp(sub, "to") == 0)
        return SESSION_SUB_TO;
    if (strcmp(sub, "from") == 0)
        return SESSION_SUB_FROM;
    if (strcmp(sub, "both") == 0)
        return SESSION_SUB_BOTH;
    return SESSION_SUB_NONE;
}

/* The <group/> names of an item: non-empty, at most SESSION_ROSTER_TEXT_MAX bytes, no
 * duplicates, at most SESSION_ROSTER_MAX_GROUPS. */
static void contact_set_groups(struct roster_contact *c, const struct xmpp_stanza *item)
{
    contact_free_groups(c);
    for (const struct xmpp_stanza *g = xmpp_stanza_first_child(item); g; g = xmpp_stanza_next(g)) {
        if (strcmp(xmpp_stanza_name(g), "group") != 0)
            continue;
        if (c->n_groups >= SESSION_ROSTER_MAX_GROUPS)
            break;
        char *name = xmpp_stanza_text(g);
        bool keep = name[0] != '\0' && strlen(name) <= SESSION_ROSTER_TEXT_MAX;
        for (size_t i = 0; keep && i < c->n_groups; i++)
            keep = strcmp(c->groups[i], name) != 0;
        if (!keep) {
            mem_free(name);
            continue;
        }
        if (c->groups == NULL)
            c->groups = mem_calloc(SESSION_ROSTER_MAX_GROUPS, sizeof(char *));
        c->groups[c->n_groups++] = name;
    }
}

/* Applies one roster <item/>: from a result or push (own_set false: the subscription state is
 * taken from it) or from a set the user made (own_set: the state stays). */
static void apply_item(struct session *s, struct session_roster *r, const struct xmpp_stanza *item,
                       bool own_set)
{
    if (strcmp(xmpp_stanza_name(item), "item") != 0)
        return;
    char *key = key_of(xmpp_stanza_attr(item, "jid"), NULL);
    if (key == NULL)
        return;
    const char *sub = xmpp_stanza_attr(item, "subscription");
    struct roster_contact *c = map_get(r->by_jid, key);
    if (sub != NULL && strcmp(sub, "remove") == 0) {
        if (c != NULL && c->self) { /* our own resources stay; only the item goes */
            if (c->in_roster)
                r->n_items--;
            c->in_roster = false;
        } else if (c != NULL) {
            contact_remove(r, key);
        }
        mem_free(key);
        return;
    }
    if (c == NULL || !c->in_roster) {
        if (r->n_items >= SESSION_ROSTER_MAX_ITEMS) {
            if (!r->warned_items)
                log_warn("roster_full", "jid=%s max=%d", s->bare, SESSION_ROSTER_MAX_ITEMS);
            r->warned_items = true;
            mem_free(key);
            return;
        }
        if (c == NULL) {
            c = mem_calloc(1, sizeof(*c));
            c->jid = mem_strdup(key);
            c->self = xmpp_jid_bare_equal(key, s->bare);
            map_put(r->by_jid, key, c);
        }
        c->in_roster = true;
        r->n_items++;
    }
    mem_free(key);
    if (!own_set) {
        c->sub = sub_code(sub);
        const char *ask = xmpp_stanza_attr(item, "ask");
        c->ask = ask != NULL && strcmp(ask, "subscribe") == 0;
    }
    const char *name = xmpp_stanza_attr(item, "name");
    mem_free(c->name);
    c->name = NULL;
    if (name != NULL && name[0] != '\0') {
        c->name = mem_strdup(name);
        utf8_cut(c->name, SESSION_ROSTER_TEXT_MAX);
    }
    contact_set_groups(c, item);
}

static int drop_unlisted(const char *key, void *value, void *data)
{
    (void)key;
    struct session_roster *r = data;
    struct roster_contact *c = value;
    if (c->in_roster || c->self)
        return 0;
    contact_free(r, c);
    return 1;
}

static int unmark(const char *key, void *value, void *data)
{
    (void)key;
    struct session_roster *r = data;
    struct roster_contact *c = value;
    if (c->in_roster)
        r->n_items--;
    c->in_roster = false;
    return 0;
}

int session_roster_load(struct session *s, const struct xmpp_stanza *reply)
{
    const char *type = reply ? xmpp_stanza_attr(reply, "type") : NULL;
    const struct xmpp_stanza *q = reply ? xmpp_stanza_child(reply, "query", NS_ROSTER) : NULL;
    if (type == NULL || strcmp(type, "result") != 0)
        return -EPROTO;
    struct session_roster *r = roster_of(s);
    /* every contact leaves unless the result lists it again (its presences stay then) */
    map_walk(r->by_jid, unmark, r);
    for (const struct xmpp_stanza *it = q ? xmpp_stanza_first_child(q) : NULL; it;
         it = xmpp_stanza_next(it)) {
        const char *sub = xmpp_stanza_attr(it, "subscription");
        if (sub == NULL || strcmp(sub, "remove") != 0)
            apply_item(s, r, it, false);
    }
    map_walk(r->by_jid, drop_unlisted, r);
    r->loaded = true;
    log_debug("roster_loaded", "jid=%s items=%zu", s->bare, r->n_items);
    return 0;
}

void session__roster_result(struct session *s, int status, const struct xmpp_stanza *reply)
{
    if (status == -ECANCELED)
        return;                                          /* the session is ending */
    if (status < 0 || session_roster_load(s, reply) < 0) /* REST fetches it on demand */
        log_info("roster_fetch_failed", "jid=%s err=%s", s->bare,
                 status < 0 ? log_errname(status) : "error-reply");
}

void session__roster_push(struct session *s, const struct xmpp_stanza *query)
{
    struct session_roster *r = roster_of(s);
    for (const struct xmpp_stanza *it = xmpp_stanza_first_child(query); it;
         it = xmpp_stanza_next(it))
        apply_item(s, r, it, false);
}

void session_roster_apply(struct session *s, const struct xmpp_stanza *item)
{
    apply_item(s, roster_of(s), item, true);
}

bool session_roster_loaded(const struct session *s)
{
    return s->roster != NULL && s->roster->loaded;
}

size_t session_roster_count(const struct session *s)
{
    return s->roster ? s->roster->n_items : 0;
}

/* ---- presence ---- */

static void best_presence(const struct roster_contact *c, struct session_presence *out)
{
    memset(out, 0, sizeof(*out));
    out->known = c->known;
    const struct roster_res *best = NULL;
    for (size_t i = 0; i < c->n_res; i++) {
        const struct roster_res *x = &c->res[i];
        if (best == NULL || x->priority > best->priority ||
            (x->priority == best->priority && x->seq > best->seq))
            best = x;
    }
    if (best == NULL)
        return;
    out->available = true;
    out->show = best->show;
    out->status = best->status;
    out->priority = best->priority;
}

static void contact_view(const struct roster_contact *c, struct session_roster_item *out)
{
    out->jid = c->jid;
    out->name = c->name;
    out->subscription = c->sub;
    out->ask = c->ask;
    out->groups = (const char *const *)c->groups;
    out->n_groups = c->n_groups;
    best_presence(c, &out->presence);
}

static void drop_resource(struct session_roster *r, struct roster_contact *c, size_t i)
{
    res_clear(&c->res[i]);
    c->res[i] = c->res[c->n_res - 1];
    memset(&c->res[c->n_res - 1], 0, sizeof(c->res[0]));
    c->n_res--;
    r->n_presence--;
}

static int parse_priority(const char *text)
{
    if (text == NULL)
        return 0;
    char *end;
    long v = strtol(text, &end, 10);
    if (end == text || *end != '\0' || v < -128 || v > 127)
        return 0;
    return (int)v;
}

/* A slot for resource in c: its own, a new one, or the oldest one's when c is full. NULL when
 * every contact together already holds SESSION_ROSTER_MAX_PRESENCES resources. */
static struct roster_res *res_slot(struct session *s, struct session_roster *r,
                                   struct roster_contact *c, const char *resource)
{
    for (size_t i = 0; i < c->n_res; i++) {
        if (strcmp(c->res[i].resource, resource) == 0)
            return &c->res[i];
    }
    if (c->n_res == SESSION_ROSTER_MAX_RESOURCES) {
        size_t oldest = 0;
        for (size_t i = 1; i < c->n_res; i++) {
            if (c->res[i].seq < c->res[oldest].seq)
                oldest = i;
        }
        drop_resource(r, c, oldest);
    } else if (r->n_presence >= SESSION_ROSTER_MAX_PRESENCES) {
        if (!r->warned_presence)
            log_warn("presence_cache_full", "jid=%s max=%d", s->bare, SESSION_ROSTER_MAX_PRESENCES);
        r->warned_presence = true;
        return NULL;
    }
    struct roster_res *x = &c->res[c->n_res++];
    r->n_presence++;
    x->resource = mem_strdup(resource);
    return x;
}

void session__roster_presence(struct session *s, const struct xmpp_stanza *st)
{
    const char *type = xmpp_stanza_attr(st, "type");
    bool unavailable = type != NULL && strcmp(type, "unavailable") == 0;
    if (type != NULL && !unavailable)
        return; /* subscriptions, probes, errors: not a contact's availability */
    if (xmpp_stanza_child(st, "x", NS_MUC_USER) != NULL)
        return; /* a room occupant, not a contact */
    char *resource;
    char *key = key_of(xmpp_stanza_attr(st, "from"), &resource);
    if (key == NULL)
        return;
    struct session_roster *r = roster_of(s);
    struct roster_contact *c = map_get(r->by_jid, key);
    if (c == NULL && xmpp_jid_bare_equal(key, s->bare)) { /* the user's other resources */
        c = mem_calloc(1, sizeof(*c));
        c->jid = mem_strdup(key);
        c->self = true;
        map_put(r->by_jid, key, c);
    }
    mem_free(key);
    if (c == NULL) { /* not a contact: nothing to remember */
        mem_free(resource);
        return;
    }
    c->known = true;
    if (unavailable) {
        for (size_t i = c->n_res; i-- > 0;) {
            if (resource == NULL || strcmp(c->res[i].resource, resource) == 0)
                drop_resource(r, c, i);
        }
        mem_free(resource);
        return;
    }
    struct roster_res *x = res_slot(s, r, c, resource ? resource : "");
    mem_free(resource);
    if (x == NULL)
        return;
    char *show = xmpp_stanza_child_text(st, "show", NULL);
    char *status = xmpp_stanza_child_text(st, "status", NULL);
    char *prio = xmpp_stanza_child_text(st, "priority", NULL);
    x->show = show_static(show);
    mem_free(x->status);
    x->status = NULL;
    if (status != NULL && status[0] != '\0') {
        utf8_cut(status, SESSION_ROSTER_TEXT_MAX);
        x->status = status;
        status = NULL;
    }
    x->priority = parse_priority(prio);
    x->seq = ++r->seq;
    mem_free(show);
    mem_free(status);
    mem_free(prio);
}

static int forget_presence(const char *key, void *value, void *data)
{
    (void)key;
    struct roster_contact *c = value;
    contact_forget_presence(data, c);
    c->known = false;
    return 0;
}

static struct xmpp_stanza *own_presence(const struct session_roster *r)
{
    struct xmpp_stanza *p = xmpp_stanza_new("presence", XMPP_NS_CLIENT);
    if (r == NULL)
        return p;
    if (r->own_unavailable) {
        xmpp_stanza_set_attr(p, "type", "unavailable");
        return p;
    }
    if (r->own_show != NULL)
        xmpp_stanza_add_text_child(p, "show", NULL, r->own_show);
    if (r->own_status != NULL)
        xmpp_stanza_add_text_child(p, "status", NULL, r->own_status);
    if (r->own_priority != 0) {
        char prio[8];
        snprintf(prio, sizeof(prio), "%d", r->own_priority);
        xmpp_stanza_add_text_child(p, "priority", NULL, prio);
    }
    return p;
}

struct xmpp_stanza *session__roster_announce(struct session *s)
{
    struct session_roster *r = s->roster;
    if (r != NULL)
        map_walk(r->by_jid, forget_presence, r);
    if (r != NULL && r->own_unavailable)
        return NULL;
    return own_presence(r);
}

int session_presence_set(struct session *s, bool available, const char *show, const char *status,
                         int priority)
{
    const char *sh = show_static(show);
    if ((show != NULL && sh == NULL) || priority < -128 || priority > 127)
        return -EINVAL;
    if (status != NULL && (strlen(status) > SESSION_ROSTER_TEXT_MAX))
        return -EINVAL;
    struct session_roster *r = roster_of(s);
    r->own_unavailable = !available;
    r->own_show = available ? sh : NULL;
    mem_free(r->own_status);
    r->own_status = status != NULL && status[0] != '\0' ? mem_strdup(status) : NULL;
    r->own_priority = available ? priority : 0;
    struct xmpp_stanza *p = own_presence(r);
    if (!available && r->own_status != NULL)
        xmpp_stanza_add_text_child(p, "status", NULL, r->own_status);
    int rc = session_send(s, p);
    xmpp_stanza_unref(p);
    if (!available) /* the server stops telling us about contacts until we are back */
        map_walk(r->by_jid, forget_presence, r);
    return rc;
}

void session_presence_own(struct session *s, struct session_presence *out)
{
    const struct session_roster *r = s->roster;
    memset(out, 0, sizeof(*out));
    out->known = true;
    out->available = r == NULL || !r->own_unavailable;
    if (r != NULL) {
        out->show = r->own_show;
        out->status = r->own_status;
        out->priority = r->own_priority;
    }
}

/* ---- lookups ---- */

bool session_roster_get(struct session *s, const char *jid, struct session_roster_item *out)
{
    if (s->roster == NULL)
        return false;
    char *key = key_of(jid, NULL);
    struct roster_contact *c = key ? map_get(s->roster->by_jid, key) : NULL;
    mem_free(key);
    if (c == NULL || !c->in_roster)
        return false;
    contact_view(c, out);
    return true;
}

struct collect_ctx {
    struct roster_contact **v;
    size_t n, cap;
};

static int collect(const char *key, void *value, void *data)
{
    (void)key;
    struct collect_ctx *x = data;
    struct roster_contact *c = value;
    if (c->in_roster && x->n < x->cap)
        x->v[x->n++] = c;
    return 0;
}

static int by_jid(const void *a, const void *b)
{
    const struct roster_contact *const *x = a, *const *y = b;
    return strcmp((*x)->jid, (*y)->jid);
}

void session_roster_foreach(struct session *s, session_roster_cb *cb, void *data)
{
    struct session_roster *r = s->roster;
    if (r == NULL || r->n_items == 0)
        return;
    struct collect_ctx x = { mem_calloc(r->n_items, sizeof(*x.v)), 0, r->n_items };
    map_walk(r->by_jid, collect, &x);
    qsort(x.v, x.n, sizeof(*x.v), by_jid);
    for (size_t i = 0; i < x.n; i++) {
        struct session_roster_item it;
        contact_view(x.v[i], &it);
        cb(&it, data);
    }
    mem_free(x.v);
}

static int free_contact(const char *key, void *value, void *data)
{
    (void)key;
    contact_free(data, value);
    return 1;
}

void session__roster_free(struct session *s)
{
    struct session_roster *r = s->roster;
    if (r == NULL)
        return;
    map_walk(r->by_jid, free_contact, r);
    map_free(r->by_jid);
    mem_free(r->own_status);
    mem_free(r);
    s->roster = NULL;
}
