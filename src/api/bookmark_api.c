/* bookmark_api.c: the bookmark calls (contract §1.2 B1-B7) as the caller's own bookmarks, kept
 * on the XMPP server (docs/rest-pubsub.md):
 * - every bookmark is one item of the private PEP node urn:x-sparkgate:bookmarks:0 on the
 *   user's bare JID (XEP-0223: access model whitelist, persistent), item id = bookmarkID in
 *   decimal, payload <bookmark type name value><user/><group/><property key>v</property>;
 * - a group_chat bookmark is mirrored into XEP-0402 (urn:xmpp:bookmarks:1, item id = room
 *   JID, autojoin property <-> autojoin attribute, nameasnick -> <nick>) so other clients see
 *   it; servers without XEP-0402 get it in XEP-0048 private storage (storage:bookmarks);
 * - accounts without PEP keep the whole list in one XEP-0049 private XML element
 *   <bookmarks xmlns='urn:x-sparkgate:bookmarks:0'> instead (each <bookmark> with an id).
 * Calls of one user run one at a time (a queue per user), so read-modify-write steps never
 * lose a concurrent update made through this gateway. */
#include "api/api_int.h"
#include "api/xmpp_api.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "core/rnd.h"
#include "session/session.h"
#include "xmpp/jid.h"
#include "xmpp/stanza.h"

#define LOG_MODULE "api"
#include "core/log.h"

#define NS_PUBSUB    "http://jabber.org/protocol/pubsub"
#define NS_DATA      "jabber:x:data"
#define NS_GW        "urn:x-sparkgate:bookmarks:0"
#define NS_BM2       "urn:xmpp:bookmarks:1"
#define NS_PRIVATE   "jabber:iq:private"
#define NS_BM_LEGACY "storage:bookmarks"

#define BM_MAX        256  /* bookmarks per user (Prosody's pep_max_items default) */
#define NAME_MAX_LEN  1024 /* bytes of a name, user or group */
#define VALUE_MAX_LEN 4096 /* bytes of a value (URL or room JID) or property value */
#define KEY_MAX_LEN   256  /* bytes of a property key */
#define LIST_MAX_LEN  100  /* users, groups, properties of one bookmark */
#define ID_MAX        2147483647ULL

enum bm_kind {
    BM_LIST,
    BM_GET,
    BM_CREATE,
    BM_UPDATE,
    BM_DELETE,
    BM_PROP_SET,
    BM_PROP_DEL
};

struct bm_op {
    struct api_queued q; /* first: the user's queue */
    struct api_deps *d;
    struct http_req *req;
    struct session *s;
    enum bm_kind kind;
    uint64_t id;
    json_t *input;  /* B1/B4: the validated body */
    char *key;      /* B6/B7 */
    char *value;    /* B6 */
    json_t *old;    /* the bookmark before the change (NULL: none) */
    json_t *cur;    /* the bookmark after it (NULL: deleted) */
    bool priv;      /* no PEP: the list lives in XEP-0049 private XML storage */
    json_t *all;    /* the stored bookmarks read (all, or the one asked for) */
    bool legacy;    /* the mirror goes to XEP-0048 private storage */
    bool retracted; /* the old room's XEP-0402 item is retracted */
    bool mirrored;  /* the last mirror step is done */
    char user[API_USER_MAX];
};

/* ---- the per-user queue (api_queue.c) --------------------------------------------------- */

static void op_start(struct bm_op *op);
static void op_error(struct bm_op *op, int status, const char *text);

/* free_data of every step: releases the call and starts the user's next one. */
static void op_free(void *p)
{
    struct bm_op *op = p;
    struct api_queued *next = api__queue_leave(op->d, &op->q);
    json_decref(op->input);
    json_decref(op->old);
    json_decref(op->cur);
    json_decref(op->all);
    mem_free(op->key);
    mem_free(op->value);
    mem_free(op);
    api__queue_run(next);
}

/* Its turn in the queue (q is the first member of struct bm_op). */
static void op_turn(struct api_queued *q)
{
    struct bm_op *op = (struct bm_op *)q;
    /* the session may have ended (and another begun) while it waited */
    op->s = session_find(op->d->sessions, op->user);
    if (op->s == NULL)
        op_error(op, 503, "xmpp session closed");
    else
        op_start(op);
}

static void op_waiting_aborted(struct api_queued *q)
{
    op_free(q);
}

/* Ends the call with a reply (body consumed; NULL: empty 200). */
static void op_reply(struct bm_op *op, json_t *body)
{
    struct http_req *req = op->req;
    op_free(op);
    if (body != NULL)
        http_reply_json(req, 200, body);
    else
        http_reply_empty(req, 200);
}

static void op_error(struct bm_op *op, int status, const char *text)
{
    struct http_req *req = op->req;
    op_free(op);
    api__error(req, status, text);
}

/* ---- JSON <-> item ----------------------------------------------------------------------- */

static bool text_ok(const char *s, size_t max, bool allow_empty)
{
    size_t len = s ? strlen(s) : 0;
    return s != NULL && (allow_empty || len > 0) && len <= max && api__xml_text_valid(s, len);
}

/* Recomputes propertyNames from property. */
static void finish(json_t *bm)
{
    json_t *names = json_array();
    json_t *props = json_object_get(bm, "property");
    for (size_t i = 0; i < json_array_size(props); i++)
        json_array_append(names, json_object_get(json_array_get(props, i), "key"));
    json_object_set_new(bm, "propertyNames", names);
}

static json_t *string_list(const struct xmpp_stanza *el, const char *name)
{
    json_t *a = json_array();
    for (const struct xmpp_stanza *c = xmpp_stanza_first_child(el); c; c = xmpp_stanza_next(c)) {
        if (strcmp(xmpp_stanza_name(c), name) != 0 || json_array_size(a) >= LIST_MAX_LEN)
            continue;
        char *t = xmpp_stanza_text(c);
        if (text_ok(t, NAME_MAX_LEN, false))
            json_array_append_new(a, json_string(t));
        mem_free(t);
    }
    return a;
}

/* A stored <bookmark/> (id: its item id or attribute) as a Bookmark, or NULL when it is not one
 * of ours (foreign or damaged). */
static json_t *item_to_json(const char *id, const struct xmpp_stanza *b)
{
    if (id == NULL || b == NULL || id[0] < '1' || id[0] > '9' || strlen(id) > 10 ||
        strspn(id, "0123456789") != strlen(id))
        return NULL;
    uint64_t n = strtoull(id, NULL, 10);
    const char *type = xmpp_stanza_attr(b, "type");
    const char *name = xmpp_stanza_attr(b, "name");
    const char *value = xmpp_stanza_attr(b, "value");
    if (n > ID_MAX || type == NULL ||
        (strcmp(type, "url") != 0 && strcmp(type, "group_chat") != 0) ||
        !text_ok(name, NAME_MAX_LEN, false) || !text_ok(value, VALUE_MAX_LEN, false))
        return NULL;
    json_t *bm = json_object();
    json_object_set_new(bm, "bookmarkID", json_integer((json_int_t)n));
    json_object_set_new(bm, "type", json_string(type));
    json_object_set_new(bm, "name", json_string(name));
    json_object_set_new(bm, "value", json_string(value));
    json_object_set_new(bm, "globalBookmark", json_false());
    json_object_set_new(bm, "users", string_list(b, "user"));
    json_object_set_new(bm, "groups", string_list(b, "group"));
    json_t *props = json_array();
    for (const struct xmpp_stanza *c = xmpp_stanza_first_child(b); c; c = xmpp_stanza_next(c)) {
        const char *key = xmpp_stanza_attr(c, "key");
        if (strcmp(xmpp_stanza_name(c), "property") != 0 || !text_ok(key, KEY_MAX_LEN, false) ||
            json_array_size(props) >= LIST_MAX_LEN)
            continue;
        char *v = xmpp_stanza_text(c);
        if (v != NULL && text_ok(v, VALUE_MAX_LEN, true)) {
            json_t *p = json_object();
            json_object_set_new(p, "key", json_string(key));
            json_object_set_new(p, "value", json_string(v));
            json_array_append_new(props, p);
        }
        mem_free(v);
    }
    json_object_set_new(bm, "property", props);
    finish(bm);
    return bm;
}

static const char *jstr(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static const char *prop_get(const json_t *bm, const char *key)
{
    json_t *props = json_object_get(bm, "property");
    for (size_t i = 0; i < json_array_size(props); i++) {
        json_t *p = json_array_get(props, i);
        if (strcmp(jstr(p, "key"), key) == 0)
            return jstr(p, "value");
    }
    return NULL;
}

static bool prop_true(const json_t *bm, const char *key)
{
    const char *v = prop_get(bm, key);
    return v != NULL && (strcmp(v, "true") == 0 || strcmp(v, "1") == 0);
}

static void add_field(struct xmpp_stanza *x, const char *var, const char *value)
{
    struct xmpp_stanza *f = xmpp_stanza_add_child(x, "field", NULL);
    xmpp_stanza_set_attr(f, "var", var);
    if (strcmp(var, "FORM_TYPE") == 0)
        xmpp_stanza_set_attr(f, "type", "hidden");
    xmpp_stanza_add_text_child(f, "value", NULL, value);
}

/* <iq type=set><pubsub><publish node><item id/></publish><publish-options>...; *item gets the
 * item element. Private, persistent node holding up to the server's maximum of items. */
static struct xmpp_stanza *publish_iq(const char *node, const char *id, struct xmpp_stanza **item)
{
    struct xmpp_stanza *ps;
    struct xmpp_stanza *iq = api__iq_new("set", NULL, "pubsub", NS_PUBSUB, &ps);
    struct xmpp_stanza *pub = xmpp_stanza_add_child(ps, "publish", NULL);
    xmpp_stanza_set_attr(pub, "node", node);
    *item = xmpp_stanza_add_child(pub, "item", NULL);
    xmpp_stanza_set_attr(*item, "id", id);
    struct xmpp_stanza *x =
        xmpp_stanza_add_child(xmpp_stanza_add_child(ps, "publish-options", NULL), "x", NS_DATA);
    xmpp_stanza_set_attr(x, "type", "submit");
    add_field(x, "FORM_TYPE", NS_PUBSUB "#publish-options");
    add_field(x, "pubsub#persist_items", "true");
    add_field(x, "pubsub#access_model", "whitelist");
    add_field(x, "pubsub#max_items", "max");
    add_field(x, "pubsub#send_last_published_item", "never");
    return iq;
}

static struct xmpp_stanza *retract_iq(const char *node, const char *id)
{
    struct xmpp_stanza *ps;
    struct xmpp_stanza *iq = api__iq_new("set", NULL, "pubsub", NS_PUBSUB, &ps);
    struct xmpp_stanza *r = xmpp_stanza_add_child(ps, "retract", NULL);
    xmpp_stanza_set_attr(r, "node", node);
    xmpp_stanza_set_attr(r, "notify", "true");
    xmpp_stanza_set_attr(xmpp_stanza_add_child(r, "item", NULL), "id", id);
    return iq;
}

static void id_text(uint64_t id, char out[24])
{
    snprintf(out, 24, "%llu", (unsigned long long)id);
}

static uint64_t bm_id(const json_t *bm)
{
    return (uint64_t)json_integer_value(json_object_get(bm, "bookmarkID"));
}

/* Adds <bookmark xmlns=NS_GW type name value>... for bm to parent; returns it. */
static struct xmpp_stanza *add_bookmark(struct xmpp_stanza *parent, const json_t *bm)
{
    struct xmpp_stanza *b = xmpp_stanza_add_child(parent, "bookmark", NS_GW);
    xmpp_stanza_set_attr(b, "type", jstr(bm, "type"));
    xmpp_stanza_set_attr(b, "name", jstr(bm, "name"));
    xmpp_stanza_set_attr(b, "value", jstr(bm, "value"));
    static const char *const lists[][2] = { { "users", "user" }, { "groups", "group" } };
    for (size_t l = 0; l < 2; l++) {
        json_t *a = json_object_get(bm, lists[l][0]);
        for (size_t i = 0; i < json_array_size(a); i++)
            xmpp_stanza_add_text_child(b, lists[l][1], NULL,
                                       json_string_value(json_array_get(a, i)));
    }
    json_t *props = json_object_get(bm, "property");
    for (size_t i = 0; i < json_array_size(props); i++) {
        json_t *p = json_array_get(props, i);
        struct xmpp_stanza *pe = xmpp_stanza_add_text_child(b, "property", NULL, jstr(p, "value"));
        xmpp_stanza_set_attr(pe, "key", jstr(p, "key"));
    }
    return b;
}

/* The publish of bm as item "<bookmarkID>" of the private PEP node. */
static struct xmpp_stanza *store_iq(const json_t *bm)
{
    char id[24];
    id_text(bm_id(bm), id);
    struct xmpp_stanza *item;
    struct xmpp_stanza *iq = publish_iq(NS_GW, id, &item);
    add_bookmark(item, bm);
    return iq;
}

/* XEP-0049 fallback: the whole list in one private XML element, each with an id attribute;
 * bm replaces (or, cur NULL, removes) the bookmark of id. */
static struct xmpp_stanza *private_store_iq(const json_t *all, uint64_t id, const json_t *cur)
{
    struct xmpp_stanza *q;
    struct xmpp_stanza *iq = api__iq_new("set", NULL, "query", NS_PRIVATE, &q);
    struct xmpp_stanza *list = xmpp_stanza_add_child(q, "bookmarks", NS_GW);
    bool done = false;
    for (size_t i = 0; i < json_array_size(all); i++) {
        const json_t *bm = json_array_get(all, i);
        if (bm_id(bm) == id) {
            bm = cur;
            done = true;
        }
        if (bm == NULL)
            continue;
        char text[24];
        id_text(bm_id(bm), text);
        xmpp_stanza_set_attr(add_bookmark(list, bm), "id", text);
    }
    if (!done && cur != NULL) {
        char text[24];
        id_text(bm_id(cur), text);
        xmpp_stanza_set_attr(add_bookmark(list, cur), "id", text);
    }
    return iq;
}

/* ---- the XEP-0402 / XEP-0048 mirror of group_chat bookmarks ------------------------------ */

static bool is_room(const json_t *bm)
{
    return bm != NULL && strcmp(jstr(bm, "type"), "group_chat") == 0;
}

static void fill_conference(struct xmpp_stanza *conf, const json_t *bm, struct session *s)
{
    xmpp_stanza_set_attr(conf, "name", jstr(bm, "name"));
    xmpp_stanza_set_attr(conf, "autojoin", prop_true(bm, "autojoin") ? "true" : "false");
    if (prop_true(bm, "nameasnick")) {
        const char *nick = session_name(s);
        if (nick == NULL || nick[0] == '\0')
            nick = session_username(s);
        xmpp_stanza_add_text_child(conf, "nick", NULL, nick);
    }
}

static void mirror_next(struct bm_op *op);

static void mirror_answered(struct http_req *req, struct session *s,
                            const struct xmpp_stanza *reply, void *data)
{
    (void)req;
    (void)s;
    struct bm_op *op = data;
    const char *type = xmpp_stanza_attr(reply, "type");
    if (type != NULL && strcmp(type, "error") == 0) {
        const char *cond;
        int status = api__xmpp_error_status(reply, &cond);
        log_info("bookmark_mirror_failed", "user=%s condition=%s", op->user, cond);
        if (!op->legacy && (status == 501 || status == 503)) {
            op->legacy = true; /* no XEP-0402 here: XEP-0048 in private storage */
            mirror_next(op);
            return;
        }
    }
    if (op->legacy) {
        op_reply(op, op->kind == BM_DELETE ? NULL : json_incref(op->cur));
        return;
    }
    mirror_next(op);
}

/* XEP-0048: replaces our room in the private storage:bookmarks document, keeping the rest. */
static void legacy_answered(struct http_req *req, struct session *s,
                            const struct xmpp_stanza *reply, void *data)
{
    struct bm_op *op = data;
    const char *type = xmpp_stanza_attr(reply, "type");
    const struct xmpp_stanza *q = xmpp_stanza_child(reply, "query", NS_PRIVATE);
    const struct xmpp_stanza *st = q ? xmpp_stanza_child(q, "storage", NS_BM_LEGACY) : NULL;
    if (type == NULL || strcmp(type, "result") != 0) { /* never overwrite what we cannot read */
        log_info("bookmark_mirror_failed", "user=%s condition=private-storage", op->user);
        op_reply(op, op->kind == BM_DELETE ? NULL : json_incref(op->cur));
        return;
    }
    struct xmpp_stanza *q2;
    struct xmpp_stanza *iq = api__iq_new("set", NULL, "query", NS_PRIVATE, &q2);
    struct xmpp_stanza *st2 = xmpp_stanza_add_child(q2, "storage", NS_BM_LEGACY);
    const char *drop = op->old && is_room(op->old) ? jstr(op->old, "value") : NULL;
    const char *mine = is_room(op->cur) ? jstr(op->cur, "value") : NULL;
    for (const struct xmpp_stanza *c = st ? xmpp_stanza_first_child(st) : NULL; c;
         c = xmpp_stanza_next(c)) {
        const char *jid = xmpp_stanza_attr(c, "jid");
        if (strcmp(xmpp_stanza_name(c), "conference") == 0 && jid != NULL &&
            ((drop && strcmp(jid, drop) == 0) || (mine && strcmp(jid, mine) == 0)))
            continue;
        xmpp_stanza_adopt_child(st2, xmpp_stanza_copy(c));
    }
    if (mine != NULL) {
        struct xmpp_stanza *conf = xmpp_stanza_add_child(st2, "conference", NULL);
        xmpp_stanza_set_attr(conf, "jid", mine);
        fill_conference(conf, op->cur, s);
    }
    api__iq(req, s, iq, 0, API_IQ_ERRORS, mirror_answered, op_free, op);
    xmpp_stanza_unref(iq);
}

/* The next mirror step: retract the old room when it changed or went, publish the current
 * one, then answer. */
static void mirror_next(struct bm_op *op)
{
    bool old_room = op->old != NULL && is_room(op->old);
    bool cur_room = is_room(op->cur);
    bool changed =
        old_room && (!cur_room || strcmp(jstr(op->old, "value"), jstr(op->cur, "value")) != 0);
    struct xmpp_stanza *iq = NULL;
    if ((!old_room && !cur_room) || op->mirrored) {
        op_reply(op, op->kind == BM_DELETE ? NULL : json_incref(op->cur));
        return;
    }
    if (op->legacy) {
        struct xmpp_stanza *q;
        iq = api__iq_new("get", NULL, "query", NS_PRIVATE, &q);
        xmpp_stanza_add_child(q, "storage", NS_BM_LEGACY);
        api__iq(op->req, op->s, iq, 0, API_IQ_ERRORS, legacy_answered, op_free, op);
        xmpp_stanza_unref(iq);
        return;
    }
    if (changed && !op->retracted) {
        op->retracted = true;
        op->mirrored = !cur_room;
        iq = retract_iq(NS_BM2, jstr(op->old, "value"));
    } else {
        struct xmpp_stanza *item;
        op->mirrored = true;
        iq = publish_iq(NS_BM2, jstr(op->cur, "value"), &item);
        fill_conference(xmpp_stanza_add_child(item, "conference", NS_BM2), op->cur, op->s);
    }
    api__iq(op->req, op->s, iq, 0, API_IQ_ERRORS, mirror_answered, op_free, op);
    xmpp_stanza_unref(iq);
}

/* ---- steps ------------------------------------------------------------------------------- */

static void stored(struct http_req *req, struct session *s, const struct xmpp_stanza *reply,
                   void *data)
{
    (void)req;
    (void)s;
    (void)reply;
    struct bm_op *op = data;
    log_debug("bookmark_stored", "user=%s id=%llu", op->user, (unsigned long long)op->id);
    mirror_next(op);
}

/* Publishes op->cur (or retracts op->id when cur is NULL), then mirrors. */
static void store(struct bm_op *op)
{
    struct xmpp_stanza *iq;
    if (op->priv) {
        iq = private_store_iq(op->all, op->id, op->cur);
        op->legacy = true; /* no PEP: XEP-0048 for the room mirror too */
    } else if (op->cur != NULL) {
        iq = store_iq(op->cur);
    } else {
        char id[24];
        id_text(op->id, id);
        iq = retract_iq(NS_GW, id);
    }
    api__iq(op->req, op->s, iq, 0, 0, stored, op_free, op);
    xmpp_stanza_unref(iq);
}

static void set_prop(json_t *bm, const char *key, const char *value)
{
    json_t *props = json_object_get(bm, "property");
    for (size_t i = 0; i < json_array_size(props); i++) {
        json_t *p = json_array_get(props, i);
        if (strcmp(jstr(p, "key"), key) == 0) {
            if (value != NULL)
                json_object_set_new(p, "value", json_string(value));
            else
                json_array_remove(props, i);
            finish(bm);
            return;
        }
    }
    if (value != NULL) {
        json_t *p = json_object();
        json_object_set_new(p, "key", json_string(key));
        json_object_set_new(p, "value", json_string(value));
        json_array_append_new(props, p);
    }
    finish(bm);
}

/* The stored items arrived (all of them, or the one asked for). */
static void fetched(struct http_req *req, struct session *s, const struct xmpp_stanza *reply,
                    void *data)
{
    (void)req;
    (void)s;
    struct bm_op *op = data;
    const char *type = xmpp_stanza_attr(reply, "type");
    int status =
        type != NULL && strcmp(type, "error") == 0 ? api__xmpp_error_status(reply, NULL) : 200;
    if (!op->priv && (status == 501 || status == 503)) {
        op->priv = true; /* no PEP on this account: XEP-0049 private XML storage */
        op_start(op);
        return;
    }
    if (status != 200 && status != 404) {
        struct http_req *r = op->req;
        op_free(op);
        api__xmpp_error(r, reply);
        return;
    }
    json_t *all = json_array();
    const struct xmpp_stanza *ps = xmpp_stanza_child(reply, "pubsub", NS_PUBSUB);
    const struct xmpp_stanza *items = ps ? xmpp_stanza_child(ps, "items", NULL) : NULL;
    if (op->priv) {
        const struct xmpp_stanza *q = xmpp_stanza_child(reply, "query", NS_PRIVATE);
        items = q ? xmpp_stanza_child(q, "bookmarks", NS_GW) : NULL;
    }
    for (const struct xmpp_stanza *it = items ? xmpp_stanza_first_child(items) : NULL;
         it != NULL && json_array_size(all) < BM_MAX; it = xmpp_stanza_next(it)) {
        json_t *bm = NULL;
        if (op->priv && strcmp(xmpp_stanza_name(it), "bookmark") == 0)
            bm = item_to_json(xmpp_stanza_attr(it, "id"), it);
        else if (!op->priv && strcmp(xmpp_stanza_name(it), "item") == 0)
            bm = item_to_json(xmpp_stanza_attr(it, "id"), xmpp_stanza_child(it, "bookmark", NS_GW));
        if (bm != NULL)
            json_array_append_new(all, bm);
    }
    json_decref(op->all);
    op->all = json_incref(all);
    if (op->kind == BM_LIST) {
        json_t *body = json_object();
        json_object_set_new(body, "bookmark", all);
        op_reply(op, body);
        return;
    }
    if (op->kind == BM_CREATE) {
        size_t n = json_array_size(all);
        if (n >= BM_MAX) {
            json_decref(all);
            op_error(op, 409, "too many bookmarks");
            return;
        }
        for (bool taken = true; taken;) { /* a random id no other bookmark has */
            uint64_t r;
            rnd_bytes(&r, sizeof(r));
            op->id = r % ID_MAX + 1;
            taken = false;
            for (size_t i = 0; i < n; i++)
                taken = taken || (uint64_t)json_integer_value(json_object_get(
                                     json_array_get(all, i), "bookmarkID")) == op->id;
        }
        json_decref(all);
        op->cur = json_deep_copy(op->input);
        json_object_set_new(op->cur, "bookmarkID", json_integer((json_int_t)op->id));
        store(op);
        return;
    }
    json_t *found = NULL;
    for (size_t i = 0; i < json_array_size(all) && found == NULL; i++) {
        json_t *bm = json_array_get(all, i);
        if ((uint64_t)json_integer_value(json_object_get(bm, "bookmarkID")) == op->id)
            found = json_incref(bm);
    }
    json_decref(all);
    if (found == NULL) {
        op_error(op, 404, "bookmark not found");
        return;
    }
    if (op->kind == BM_GET) {
        op_reply(op, found);
        return;
    }
    op->old = found;
    if (op->kind == BM_DELETE) {
        store(op);
        return;
    }
    op->cur = json_deep_copy(found);
    if (op->kind == BM_UPDATE) {
        static const char *const keys[] = { "type", "name", "value", "users", "groups" };
        for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
            json_object_set(op->cur, keys[i], json_object_get(op->input, keys[i]));
    } else {
        json_t *props = json_object_get(op->cur, "property");
        if (op->kind == BM_PROP_SET && prop_get(op->cur, op->key) == NULL &&
            json_array_size(props) >= LIST_MAX_LEN) {
            op_error(op, 400, "too many properties");
            return;
        }
        set_prop(op->cur, op->key, op->kind == BM_PROP_SET ? op->value : NULL);
    }
    store(op);
}

static void op_start(struct bm_op *op)
{
    if (op->priv) {
        struct xmpp_stanza *q;
        struct xmpp_stanza *iq = api__iq_new("get", NULL, "query", NS_PRIVATE, &q);
        xmpp_stanza_add_child(q, "bookmarks", NS_GW);
        api__iq(op->req, op->s, iq, 0, API_IQ_ERRORS, fetched, op_free, op);
        xmpp_stanza_unref(iq);
        return;
    }
    struct xmpp_stanza *ps;
    struct xmpp_stanza *iq = api__iq_new("get", NULL, "pubsub", NS_PUBSUB, &ps);
    struct xmpp_stanza *items = xmpp_stanza_add_child(ps, "items", NULL);
    xmpp_stanza_set_attr(items, "node", NS_GW);
    if (op->kind != BM_LIST && op->kind != BM_CREATE) {
        char id[24];
        id_text(op->id, id);
        xmpp_stanza_set_attr(xmpp_stanza_add_child(items, "item", NULL), "id", id);
    }
    api__iq(op->req, op->s, iq, 0, API_IQ_ERRORS, fetched, op_free, op);
    xmpp_stanza_unref(iq);
}

/* ---- input ------------------------------------------------------------------------------- */

static json_t *string_array(json_t *in, const char *dflt, bool *ok)
{
    json_t *a = json_array();
    if (in == NULL || json_is_null(in)) {
        if (dflt != NULL)
            json_array_append_new(a, json_string(dflt));
        return a;
    }
    if (!json_is_array(in) || json_array_size(in) > LIST_MAX_LEN)
        *ok = false;
    for (size_t i = 0; *ok && i < json_array_size(in); i++) {
        const char *v = json_string_value(json_array_get(in, i));
        if (!text_ok(v, NAME_MAX_LEN, false))
            *ok = false;
        else
            json_array_append_new(a, json_string(v));
    }
    return a;
}

/* The Bookmark of a B1/B4 body with defaults, or NULL after answering 400. */
static json_t *parse_body(struct http_req *req, const char *user)
{
    size_t len;
    const char *text = http_req_body(req, &len);
    json_t *in = len > 0 ? json_loadb(text, len, 0, NULL) : NULL;
    const char *why = NULL;
    const char *type = jstr(in, "type");
    const char *name = jstr(in, "name");
    const char *value = jstr(in, "value");
    if (!json_is_object(in))
        why = "body must be a Bookmark JSON object";
    else if (type == NULL || (strcmp(type, "url") != 0 && strcmp(type, "group_chat") != 0))
        why = "type must be url or group_chat";
    else if (!text_ok(name, NAME_MAX_LEN, false))
        why = "invalid bookmark name";
    else if (!text_ok(value, VALUE_MAX_LEN, false))
        why = "invalid bookmark value";
    char *room = NULL;
    if (why == NULL && strcmp(type, "group_chat") == 0) {
        room = xmpp_jid_bare_of(value);
        struct xmpp_jid j;
        bool bare = room != NULL && strcmp(room, value) == 0 && xmpp_jid_parse(&j, value) == 0;
        if (bare) {
            bare = j.local != NULL;
            xmpp_jid_cleanup(&j);
        }
        if (!bare)
            why = "group_chat value must be a room JID";
    }
    mem_free(room);
    bool ok = true;
    json_t *bm = NULL;
    if (why == NULL) {
        bm = json_object();
        json_object_set_new(bm, "type", json_string(type));
        json_object_set_new(bm, "name", json_string(name));
        json_object_set_new(bm, "value", json_string(value));
        json_object_set_new(bm, "globalBookmark", json_false());
        json_object_set_new(bm, "users", string_array(json_object_get(in, "users"), user, &ok));
        json_object_set_new(bm, "groups", string_array(json_object_get(in, "groups"), NULL, &ok));
        json_object_set_new(bm, "property", json_array());
        finish(bm);
        if (!ok)
            why = "users and groups must be lists of names";
    }
    json_decref(in);
    if (why != NULL) {
        json_decref(bm);
        api__error(req, 400, why);
        return NULL;
    }
    return bm;
}

/* {bookmarkID}: a decimal 1..2^31-1. */
static bool parse_id(struct http_req *req, uint64_t *id)
{
    const char *s = http_req_param(req, "bookmarkID");
    size_t len = s ? strlen(s) : 0;
    if (len == 0 || len > 10 || strspn(s, "0123456789") != len ||
        (*id = strtoull(s, NULL, 10)) == 0 || *id > ID_MAX) {
        api__error(req, 400, "invalid bookmark id");
        return false;
    }
    return true;
}

static void handle(struct http_req *req, const char *user, struct session *s, struct api_deps *d,
                   enum bm_kind kind)
{
    struct bm_op op = { .d = d, .req = req, .s = s, .kind = kind };
    if (kind != BM_LIST && kind != BM_CREATE && !parse_id(req, &op.id))
        return;
    if (kind == BM_CREATE || kind == BM_UPDATE) {
        op.input = parse_body(req, user);
        if (op.input == NULL)
            return;
    }
    if (kind == BM_PROP_SET || kind == BM_PROP_DEL) {
        const char *key = http_req_param(req, "name");
        if (!text_ok(key, KEY_MAX_LEN, false)) {
            api__error(req, 400, "invalid property name");
            return;
        }
        if (kind == BM_PROP_SET) {
            size_t len;
            const char *v = http_req_body(req, &len);
            if (len > VALUE_MAX_LEN || memchr(v, '\0', len) != NULL ||
                !api__xml_text_valid(v, len)) {
                api__error(req, 400, "invalid property value");
                return;
            }
            op.value = mem_strndup(v, len);
        }
        op.key = mem_strdup(key);
    }
    struct bm_op *p = mem_alloc(sizeof(*p));
    *p = op;
    snprintf(p->user, sizeof(p->user), "%s", session_username(s)); /* the queue's key */
    p->q = (struct api_queued){
        .req = req, .user = p->user, .start = op_turn, .aborted = op_waiting_aborted
    };
    api__queue_enter(d, &p->q);
}

#define HANDLER(fn, kind)                                                                         \
    static void fn(struct http_req *req, const char *user, struct session *s, struct api_deps *d) \
    {                                                                                             \
        handle(req, user, s, d, kind);                                                            \
    }
HANDLER(handle_list, BM_LIST)
HANDLER(handle_get, BM_GET)
HANDLER(handle_create, BM_CREATE)
HANDLER(handle_update, BM_UPDATE)
HANDLER(handle_delete, BM_DELETE)
HANDLER(handle_prop_set, BM_PROP_SET)
HANDLER(handle_prop_del, BM_PROP_DEL)

int api__bookmark_register(struct api_deps *d)
{
    static const struct api_route_def routes[] = {
        { HTTP_POST, API_PREFIX "/bookmark", handle_create, API_NEED_SESSION },
        { HTTP_GET, API_PREFIX "/bookmarks", handle_list, API_NEED_SESSION },
        { HTTP_GET, API_PREFIX "/bookmark/{bookmarkID}", handle_get, API_NEED_SESSION },
        { HTTP_PUT, API_PREFIX "/bookmark/{bookmarkID}", handle_update, API_NEED_SESSION },
        { HTTP_DELETE, API_PREFIX "/bookmark/{bookmarkID}", handle_delete, API_NEED_SESSION },
        { HTTP_POST, API_PREFIX "/bookmark/{bookmarkID}/{name}", handle_prop_set,
          API_NEED_SESSION },
        { HTTP_DELETE, API_PREFIX "/bookmark/{bookmarkID}/{name}", handle_prop_del,
          API_NEED_SESSION },
    };
    return API_ROUTE_TABLE(d, routes);
}
