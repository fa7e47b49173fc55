/* pubsub_api.c: the collaboration tag's publish-subscribe calls (contract §1.4 K1-K7):
 * XEP-0060 against the discovered pubsub service (nodes, create, subscribe, publish, owner
 * subscriptions) and XEP-0163 PEP on the user's own bare JID (nodes, publish). Payloads are
 * XEP-0335 <json xmlns='urn:xmpp:json:0'>; inbound items become SSE pubsub.item in events/. */
#include "api/api_int.h"
#include "api/xmpp_api.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/mem.h"
#include "session/session.h"
#include "xmpp/jid.h"
#include "xmpp/stanza.h"

#define LOG_MODULE "api"
#include "core/log.h"

#define NS_PUBSUB       "http://jabber.org/protocol/pubsub"
#define NS_PUBSUB_OWNER "http://jabber.org/protocol/pubsub#owner"
#define NS_DISCO_INFO   "http://jabber.org/protocol/disco#info"
#define NS_DISCO_ITEMS  "http://jabber.org/protocol/disco#items"
#define NS_DATA         "jabber:x:data"
#define NS_JSON         "urn:xmpp:json:0"

#define NODE_MAX    256          /* bytes of a node name */
#define PAYLOAD_MAX (128 * 1024) /* bytes of a published JSON object */
#define LIST_MAX    256          /* nodes listed */
#define META_MAX    64           /* nodes whose meta-data is fetched (one IQ each) */

struct ps_call {
    struct api_deps *d;
    char *node;
    char *body;    /* publish: the JSON object text */
    char *target;  /* listing: the JID asked (service or own bare JID) */
    json_t *nodes; /* listing: the answer being built */
    size_t next;   /* listing: next entry of nodes to describe */
    bool pep;
};

static void call_free(void *p)
{
    struct ps_call *c = p;
    mem_free(c->node);
    mem_free(c->body);
    mem_free(c->target);
    json_decref(c->nodes);
    mem_free(c);
}

/* Node names: non-empty, at most NODE_MAX bytes, UTF-8 text XML allows. */
static bool node_valid(const char *node)
{
    size_t len = node ? strlen(node) : 0;
    return len > 0 && len <= NODE_MAX && api__xml_text_valid(node, len);
}

static struct ps_call *call_new(struct http_req *req, struct api_deps *d, bool need_node)
{
    const char *node = http_req_param(req, "node");
    if (need_node && !node_valid(node)) {
        api__error(req, 400, "invalid node name");
        return NULL;
    }
    struct ps_call *c = mem_calloc(1, sizeof(*c));
    c->d = d;
    c->node = need_node ? mem_strdup(node) : NULL;
    return c;
}

/* The publish body: a JSON object, valid text, at most PAYLOAD_MAX bytes. Answers 400/413. */
static char *json_object_body(struct http_req *req)
{
    size_t len;
    const char *text = http_req_body(req, &len);
    if (len > PAYLOAD_MAX) {
        api__error(req, 413, "payload too large");
        return NULL;
    }
    if (len == 0 || memchr(text, '\0', len) != NULL || !api__xml_text_valid(text, len)) {
        api__error(req, 400, "body must be a JSON object");
        return NULL;
    }
    json_error_t err;
    json_t *j = json_loadb(text, len, 0, &err);
    bool ok = json_is_object(j);
    json_decref(j);
    if (!ok) {
        api__error(req, 400, "body must be a JSON object");
        return NULL;
    }
    return mem_strndup(text, len);
}

/* ---- listing (K1, K6) ---------------------------------------------------------------------- */

/* The values of field var in a data form (NULL when absent). */
static const struct xmpp_stanza *form_field(const struct xmpp_stanza *x, const char *var)
{
    for (const struct xmpp_stanza *f = xmpp_stanza_first_child(x); f; f = xmpp_stanza_next(f)) {
        const char *v = xmpp_stanza_attr(f, "var");
        if (strcmp(xmpp_stanza_name(f), "field") == 0 && v != NULL && strcmp(v, var) == 0)
            return f;
    }
    return NULL;
}

static void set_text_member(json_t *o, const char *key, char *text)
{
    if (text != NULL && text[0] != '\0')
        json_object_set_new(o, key, json_string(text));
    mem_free(text);
}

/* Fills description (and name when the item had none) and owners from a meta-data form. */
static void apply_meta(json_t *entry, const struct xmpp_stanza *reply)
{
    const struct xmpp_stanza *q = xmpp_stanza_child(reply, "query", NS_DISCO_INFO);
    for (const struct xmpp_stanza *x = q ? xmpp_stanza_first_child(q) : NULL; x;
         x = xmpp_stanza_next(x)) {
        const char *ns = xmpp_stanza_ns(x);
        if (strcmp(xmpp_stanza_name(x), "x") != 0 || ns == NULL || strcmp(ns, NS_DATA) != 0)
            continue;
        const struct xmpp_stanza *f;
        if (json_object_get(entry, "name") == NULL && (f = form_field(x, "pubsub#title")))
            set_text_member(entry, "name", xmpp_stanza_child_text(f, "value", NULL));
        if ((f = form_field(x, "pubsub#description")))
            set_text_member(entry, "description", xmpp_stanza_child_text(f, "value", NULL));
        if ((f = form_field(x, "pubsub#owner"))) {
            json_t *owners = json_object_get(entry, "owners");
            for (const struct xmpp_stanza *v = xmpp_stanza_first_child(f); v;
                 v = xmpp_stanza_next(v)) {
                if (strcmp(xmpp_stanza_name(v), "value") != 0)
                    continue;
                char *t = xmpp_stanza_text(v);
                if (t != NULL && t[0] != '\0')
                    json_array_append_new(owners, json_string(t));
                mem_free(t);
            }
        }
    }
}

static void meta_next(struct http_req *req, struct session *s, struct ps_call *c);

static void meta_answered(struct http_req *req, struct session *s, const struct xmpp_stanza *reply,
                          void *data)
{
    struct ps_call *c = data;
    const char *type = xmpp_stanza_attr(reply, "type");
    if (type != NULL && strcmp(type, "result") == 0)
        apply_meta(json_array_get(c->nodes, c->next - 1), reply);
    meta_next(req, s, c);
}

static void meta_next(struct http_req *req, struct session *s, struct ps_call *c)
{
    if (c->next < json_array_size(c->nodes) && c->next < META_MAX) {
        json_t *entry = json_array_get(c->nodes, c->next++);
        struct xmpp_stanza *q;
        struct xmpp_stanza *iq = api__iq_new("get", c->target, "query", NS_DISCO_INFO, &q);
        xmpp_stanza_set_attr(q, "node", json_string_value(json_object_get(entry, "id")));
        api__iq(req, s, iq, 0, API_IQ_ERRORS, meta_answered, call_free, c);
        xmpp_stanza_unref(iq);
        return;
    }
    json_t *body = json_object();
    json_object_set(body, "nodes", c->nodes);
    call_free(c);
    http_reply_json(req, 200, body);
}

static void items_answered(struct http_req *req, struct session *s, const struct xmpp_stanza *reply,
                           void *data)
{
    struct ps_call *c = data;
    const char *type = xmpp_stanza_attr(reply, "type");
    const struct xmpp_stanza *q = xmpp_stanza_child(reply, "query", NS_DISCO_ITEMS);
    c->nodes = json_array();
    if (type == NULL || strcmp(type, "result") != 0) {
        /* an account without PEP nodes may answer item-not-found: that is an empty list */
        int status = api__xmpp_error_status(reply, NULL);
        if (status != 404) {
            api__xmpp_error(req, reply);
            call_free(c);
            return;
        }
    }
    for (const struct xmpp_stanza *it = q ? xmpp_stanza_first_child(q) : NULL;
         it != NULL && json_array_size(c->nodes) < LIST_MAX; it = xmpp_stanza_next(it)) {
        const char *node = xmpp_stanza_attr(it, "node");
        const char *name = xmpp_stanza_attr(it, "name");
        if (strcmp(xmpp_stanza_name(it), "item") != 0 || !node_valid(node))
            continue;
        json_t *e = json_object();
        json_object_set_new(e, "id", json_string(node));
        if (name != NULL && name[0] != '\0' && api__xml_text_valid(name, strlen(name)))
            json_object_set_new(e, "name", json_string(name));
        json_object_set_new(e, "owners", json_array());
        if (c->pep)
            json_array_append_new(json_object_get(e, "owners"), json_string(c->target));
        json_array_append_new(c->nodes, e);
    }
    meta_next(req, s, c);
}

static void list_on(struct http_req *req, struct session *s, const char *jid,
                    const struct xmpp_stanza *info, void *data)
{
    (void)info;
    struct ps_call *c = data;
    c->target = mem_strdup(jid);
    struct xmpp_stanza *iq = api__iq_new("get", jid, "query", NS_DISCO_ITEMS, NULL);
    api__iq(req, s, iq, 0, API_IQ_ERRORS, items_answered, call_free, c);
    xmpp_stanza_unref(iq);
}

/* GET /pubsub/nodes */
static void handle_nodes(struct http_req *req, const char *user, struct session *s,
                         struct api_deps *d)
{
    (void)user;
    struct ps_call *c = call_new(req, d, false);
    api__service(d, req, s, API_SVC_PUBSUB, list_on, call_free, c);
}

/* GET /pep/nodes */
static void handle_pep_nodes(struct http_req *req, const char *user, struct session *s,
                             struct api_deps *d)
{
    (void)user;
    struct ps_call *c = call_new(req, d, false);
    c->pep = true;
    char *bare = xmpp_jid_bare_of(session_jid(s));
    if (bare == NULL) {
        call_free(c);
        api__error(req, 503, "xmpp session not bound");
        return;
    }
    list_on(req, s, bare, NULL, c);
    mem_free(bare);
}

/* ---- create, subscribe, publish (K2, K3, K4, K7) ----------------------------------------- */

static void empty_answered(struct http_req *req, struct session *s, const struct xmpp_stanza *reply,
                           void *data)
{
    (void)s;
    (void)reply;
    struct ps_call *c = data;
    log_debug("pubsub_done", "node_len=%zu", strlen(c->node));
    call_free(c);
    http_reply_empty(req, 200);
}

static void add_form_field(struct xmpp_stanza *x, const char *var, const char *type,
                           const char *value)
{
    struct xmpp_stanza *f = xmpp_stanza_add_child(x, "field", NULL);
    xmpp_stanza_set_attr(f, "var", var);
    if (type != NULL)
        xmpp_stanza_set_attr(f, "type", type);
    xmpp_stanza_add_text_child(f, "value", NULL, value);
}

static void create_on(struct http_req *req, struct session *s, const char *jid,
                      const struct xmpp_stanza *info, void *data)
{
    (void)info;
    struct ps_call *c = data;
    struct xmpp_stanza *ps;
    struct xmpp_stanza *iq = api__iq_new("set", jid, "pubsub", NS_PUBSUB, &ps);
    struct xmpp_stanza *cr = xmpp_stanza_add_child(ps, "create", NULL);
    xmpp_stanza_set_attr(cr, "node", c->node);
    struct xmpp_stanza *x =
        xmpp_stanza_add_child(xmpp_stanza_add_child(ps, "configure", NULL), "x", NS_DATA);
    xmpp_stanza_set_attr(x, "type", "submit");
    add_form_field(x, "FORM_TYPE", "hidden", NS_PUBSUB "#node_config");
    add_form_field(x, "pubsub#max_items", NULL, "1");
    api__iq(req, s, iq, 0, 0, empty_answered, call_free, c);
    xmpp_stanza_unref(iq);
}

static void subscribe_on(struct http_req *req, struct session *s, const char *jid,
                         const struct xmpp_stanza *info, void *data)
{
    (void)info;
    struct ps_call *c = data;
    struct xmpp_stanza *ps;
    struct xmpp_stanza *iq = api__iq_new("set", jid, "pubsub", NS_PUBSUB, &ps);
    struct xmpp_stanza *sub = xmpp_stanza_add_child(ps, "subscribe", NULL);
    xmpp_stanza_set_attr(sub, "node", c->node);
    char *bare = xmpp_jid_bare_of(session_jid(s));
    if (bare == NULL) {
        xmpp_stanza_unref(iq);
        call_free(c);
        api__error(req, 503, "xmpp session not bound");
        return;
    }
    xmpp_stanza_set_attr(sub, "jid", bare);
    mem_free(bare);
    api__iq(req, s, iq, 0, 0, empty_answered, call_free, c);
    xmpp_stanza_unref(iq);
}

/* Publishes item "<node>-<epoch ms>" with the JSON payload to jid (NULL: own PEP). */
static void publish_on(struct http_req *req, struct session *s, const char *jid,
                       const struct xmpp_stanza *info, void *data)
{
    (void)info;
    struct ps_call *c = data;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    char id[NODE_MAX + 32];
    snprintf(id, sizeof(id), "%s-%lld", c->node,
             (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
    struct xmpp_stanza *ps;
    struct xmpp_stanza *iq = api__iq_new("set", jid, "pubsub", NS_PUBSUB, &ps);
    struct xmpp_stanza *pub = xmpp_stanza_add_child(ps, "publish", NULL);
    xmpp_stanza_set_attr(pub, "node", c->node);
    struct xmpp_stanza *item = xmpp_stanza_add_child(pub, "item", NULL);
    xmpp_stanza_set_attr(item, "id", id);
    xmpp_stanza_add_text_child(item, "json", NS_JSON, c->body);
    api__iq(req, s, iq, 0, 0, empty_answered, call_free, c);
    xmpp_stanza_unref(iq);
}

/* POST /pubsub/create/{node} */
static void handle_create(struct http_req *req, const char *user, struct session *s,
                          struct api_deps *d)
{
    (void)user;
    struct ps_call *c = call_new(req, d, true);
    if (c != NULL)
        api__service(d, req, s, API_SVC_PUBSUB, create_on, call_free, c);
}

/* POST /pubsub/subscribe/{node} */
static void handle_subscribe(struct http_req *req, const char *user, struct session *s,
                             struct api_deps *d)
{
    (void)user;
    struct ps_call *c = call_new(req, d, true);
    if (c != NULL)
        api__service(d, req, s, API_SVC_PUBSUB, subscribe_on, call_free, c);
}

/* POST /pubsub/publish/{node} and POST /pep/publish/{node} */
static void publish(struct http_req *req, struct session *s, struct api_deps *d, bool pep)
{
    struct ps_call *c = call_new(req, d, true);
    if (c == NULL)
        return;
    c->body = json_object_body(req);
    if (c->body == NULL) {
        call_free(c);
        return;
    }
    if (pep)
        publish_on(req, s, NULL, NULL, c);
    else
        api__service(d, req, s, API_SVC_PUBSUB, publish_on, call_free, c);
}

static void handle_publish(struct http_req *req, const char *user, struct session *s,
                           struct api_deps *d)
{
    (void)user;
    publish(req, s, d, false);
}

static void handle_pep_publish(struct http_req *req, const char *user, struct session *s,
                               struct api_deps *d)
{
    (void)user;
    publish(req, s, d, true);
}

/* ---- subscribers (K5) -------------------------------------------------------------------- */

static void subscribers_answered(struct http_req *req, struct session *s,
                                 const struct xmpp_stanza *reply, void *data)
{
    (void)s;
    struct ps_call *c = data;
    const char *type = xmpp_stanza_attr(reply, "type");
    json_t *users = json_array();
    if (type == NULL || strcmp(type, "result") != 0) {
        if (api__xmpp_error_status(reply, NULL) != 404) { /* unknown node: an empty list */
            json_decref(users);
            api__xmpp_error(req, reply);
            call_free(c);
            return;
        }
    }
    const struct xmpp_stanza *ps = xmpp_stanza_child(reply, "pubsub", NS_PUBSUB_OWNER);
    const struct xmpp_stanza *subs = ps ? xmpp_stanza_child(ps, "subscriptions", NULL) : NULL;
    for (const struct xmpp_stanza *e = subs ? xmpp_stanza_first_child(subs) : NULL; e;
         e = xmpp_stanza_next(e)) {
        const char *jid = xmpp_stanza_attr(e, "jid");
        const char *state = xmpp_stanza_attr(e, "subscription");
        if (strcmp(xmpp_stanza_name(e), "subscription") != 0 || jid == NULL ||
            (state != NULL && strcmp(state, "subscribed") != 0))
            continue;
        struct xmpp_jid j;
        if (xmpp_jid_parse(&j, jid) < 0)
            continue;
        /* local subscribers only, each once (several resources may be subscribed) */
        bool local = j.local != NULL && c->d->domain != NULL && strcmp(j.domain, c->d->domain) == 0;
        bool seen = false;
        for (size_t i = 0; local && i < json_array_size(users); i++) {
            const char *u =
                json_string_value(json_object_get(json_array_get(users, i), "username"));
            seen = seen || (u != NULL && strcmp(u, j.local) == 0);
        }
        if (local && !seen && json_array_size(users) < 10000) {
            json_t *u = json_object();
            json_object_set_new(u, "username", json_string(j.local));
            json_array_append_new(users, u);
        }
        xmpp_jid_cleanup(&j);
    }
    call_free(c);
    json_t *body = json_object();
    json_object_set_new(body, "users", users);
    http_reply_json(req, 200, body);
}

static void subscribers_on(struct http_req *req, struct session *s, const char *jid,
                           const struct xmpp_stanza *info, void *data)
{
    (void)info;
    struct ps_call *c = data;
    struct xmpp_stanza *ps;
    struct xmpp_stanza *iq = api__iq_new("get", jid, "pubsub", NS_PUBSUB_OWNER, &ps);
    xmpp_stanza_set_attr(xmpp_stanza_add_child(ps, "subscriptions", NULL), "node", c->node);
    api__iq(req, s, iq, 0, API_IQ_ERRORS, subscribers_answered, call_free, c);
    xmpp_stanza_unref(iq);
}

/* GET /pubsub/subscribers/{node} */
static void handle_subscribers(struct http_req *req, const char *user, struct session *s,
                               struct api_deps *d)
{
    (void)user;
    struct ps_call *c = call_new(req, d, true);
    if (c != NULL)
        api__service(d, req, s, API_SVC_PUBSUB, subscribers_on, call_free, c);
}

int api__pubsub_register(struct api_deps *d)
{
    static const struct api_route_def routes[] = {
        { HTTP_GET, API_PREFIX "/pubsub/nodes", handle_nodes, API_NEED_SESSION },
        { HTTP_POST, API_PREFIX "/pubsub/create/{node}", handle_create, API_NEED_SESSION },
        { HTTP_POST, API_PREFIX "/pubsub/subscribe/{node}", handle_subscribe, API_NEED_SESSION },
        { HTTP_POST, API_PREFIX "/pubsub/publish/{node}", handle_publish, API_NEED_SESSION },
        { HTTP_GET, API_PREFIX "/pubsub/subscribers/{node}", handle_subscribers, API_NEED_SESSION },
        { HTTP_GET, API_PREFIX "/pep/nodes", handle_pep_nodes, API_NEED_SESSION },
        { HTTP_POST, API_PREFIX "/pep/publish/{node}", handle_pep_publish, API_NEED_SESSION },
    };
    return API_ROUTE_TABLE(d, routes);
}
