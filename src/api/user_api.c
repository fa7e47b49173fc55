/* user_api.c: user management and configuration (contract §1.8 U1-U12) over standard XMPP
 * (§6): name, email and vCard from XEP-0054 vcard-temp; password change and account removal
 * by XEP-0077; groups read from the RFC 6121 roster (writes 501); the user's properties in a
 * private PEP node (XEP-0223, access model whitelist) with XEP-0049 private XML storage as the
 * fallback, namespace urn:x-sparkweb:properties:0, one <property name="k">v</property> per
 * entry. Gateway secrets (TOTP, WebAuthn, VAPID, push) live in the gateway's database and are
 * neither stored here nor ever returned. */
#include "api/api_int.h"
#include "api/xmpp_api.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "auth/auth.h"
#include "core/b64.h"
#include "core/mem.h"
#include "core/tick.h"
#include "session/session.h"
#include "store/store.h"
#include "xmpp/jid.h"
#include "xmpp/stanza.h"

#define LOG_MODULE "api"
#include "core/log.h"

#ifndef SG_VERSION
#define SG_VERSION "0.1.0"
#endif

#define NS_VCARD    "vcard-temp"
#define NS_PROPS    "urn:x-sparkweb:properties:0"
#define NS_PUBSUB   "http://jabber.org/protocol/pubsub"
#define NS_PRIVATE  "jabber:iq:private"
#define NS_REGISTER "jabber:iq:register"
#define NS_ROSTER   "jabber:iq:roster"
#define NS_VERSION  "jabber:iq:version"
#define NS_DATA     "jabber:x:data"

#define PROPS_MAX      256                /* properties per user */
#define PROP_KEY_MAX   256                /* bytes */
#define PROP_VALUE_MAX (16 * 1024)        /* bytes */
#define VCARD_MAX      ((size_t)64 << 10) /* decoded vCard XML */
#define TEXT_FIELD_MAX 1024               /* name, email */
#define VERSION_TTL_MS (10 * 60 * 1000)   /* the server's XEP-0092 answer */

/* The server's XEP-0092 software version, for U10 (public, so it cannot ask itself). */
struct api_users {
    json_t *server; /* {"name","version"} or NULL */
    uint64_t fetched_ms;
};

enum uop_kind {
    OP_USERS,      /* U1 */
    OP_GET_USER,   /* U2 */
    OP_PUT_USER,   /* U3 */
    OP_DELETE,     /* U4 */
    OP_GROUPS,     /* U5 */
    OP_CONFIG_GET, /* U11 */
    OP_CONFIG_SET, /* U12 */
};

/* Steps, run in this order (lowest bit first); reads before writes, the password last. */
enum {
    NEED_VCARD = 1 << 0,
    NEED_PROPS = 1 << 1,
    NEED_ROSTER = 1 << 2,
    NEED_VERSION = 1 << 3,
    PUT_VCARD = 1 << 4,
    PUT_PROPS = 1 << 5,
    PUT_PASSWORD = 1 << 6,
    DO_REMOVE = 1 << 7,
};

struct uop {
    struct api_queued q; /* U3, U12: the user's queue (read-modify-write of props, vCard) */
    bool queued;
    struct api_deps *d;
    enum uop_kind kind;
    unsigned todo;
    char user[API_USER_MAX];
    struct xmpp_stanza *vcard; /* the current vCard (own copy), NULL when none */
    json_t *props;             /* the caller's properties: object key -> string */
    json_t *roster;            /* [{"jid","name","groups":[...]}] */
    /* inputs */
    struct xmpp_stanza *new_vcard;    /* a vCard given whole (base64) */
    char *name, *email;               /* NULL: unchanged */
    json_t *set_props;                /* U3: the replacement set; U12: updates to merge */
    char *password;                   /* wiped at the end */
    const char *search, *pkey, *pval; /* U1 (the request's strings) */
    char *qkey;                       /* the queue's key: the session's username */
};

static void uop_free(void *data)
{
    struct uop *u = data;
    struct api_queued *next = u->queued ? api__queue_leave(u->d, &u->q) : NULL;
    xmpp_stanza_unref(u->vcard);
    xmpp_stanza_unref(u->new_vcard);
    json_decref(u->props);
    json_decref(u->roster);
    json_decref(u->set_props);
    mem_free(u->name);
    mem_free(u->email);
    if (u->password != NULL) {
        OPENSSL_cleanse(u->password, strlen(u->password));
        mem_free(u->password);
    }
    mem_free(u->qkey);
    mem_free(u);
    api__queue_run(next);
}

static void uop_next(struct http_req *req, struct session *s, struct uop *u);

static void uop_iq(struct http_req *req, struct session *s, struct uop *u, struct xmpp_stanza *iq,
                   int flags, api_iq_cb *cb)
{
    api__iq(req, s, iq, 0, flags, cb, uop_free, u);
    xmpp_stanza_unref(iq);
}

/* Keys the gateway keeps for itself (contract §1.8 U12, §6): never stored nor returned. */
static bool reserved_key(const char *k)
{
    static const char *const prefixes[] = { "totp.", "webauthn", "vapid.", "webpush.", NULL };
    for (int i = 0; prefixes[i]; i++) {
        if (strncmp(k, prefixes[i], strlen(prefixes[i])) == 0)
            return true;
    }
    return strcmp(k, "ip_address") == 0;
}

static bool text_ok(const char *s, size_t max)
{
    size_t len = strlen(s);
    return len <= max && api__xml_text_valid(s, len);
}

/* ---- vCard (XEP-0054) ---------------------------------------------------------------------- */

static char *vcard_fn(const struct xmpp_stanza *vc)
{
    return vc ? xmpp_stanza_child_text(vc, "FN", NULL) : NULL;
}

static char *vcard_email(const struct xmpp_stanza *vc)
{
    const struct xmpp_stanza *em = vc ? xmpp_stanza_child(vc, "EMAIL", NULL) : NULL;
    return em ? xmpp_stanza_child_text(em, "USERID", NULL) : NULL;
}

static char *vcard_b64(const struct xmpp_stanza *vc)
{
    char *xml = xmpp_stanza_to_string(vc);
    char *b = b64_encode(xml, strlen(xml), B64_STD, NULL);
    mem_free(xml);
    return b;
}

/* base64 of a <vCard xmlns="vcard-temp"> element, or NULL. */
static struct xmpp_stanza *vcard_parse(const char *b64)
{
    uint8_t *xml = NULL;
    size_t len = 0;
    if (b64_decode(b64, strlen(b64), B64_STD, &xml, &len) < 0)
        return NULL;
    int err = 0;
    struct xmpp_stanza *vc =
        len > 0 && len <= VCARD_MAX && api__xml_text_valid((const char *)xml, len)
            ? xmpp_stanza_parse((const char *)xml, len, NS_VCARD, VCARD_MAX, &err)
            : NULL;
    mem_free(xml);
    const char *ns = vc ? xmpp_stanza_ns(vc) : NULL;
    if (vc != NULL &&
        (strcmp(xmpp_stanza_name(vc), "vCard") != 0 || ns == NULL || strcmp(ns, NS_VCARD) != 0)) {
        xmpp_stanza_unref(vc);
        return NULL;
    }
    return vc;
}

static void add_email(struct xmpp_stanza *vc, const char *email)
{
    struct xmpp_stanza *em = xmpp_stanza_add_child(vc, "EMAIL", NULL);
    xmpp_stanza_add_child(em, "INTERNET", NULL);
    xmpp_stanza_add_child(em, "PREF", NULL);
    xmpp_stanza_add_text_child(em, "USERID", NULL, email);
}

/* A copy of base (or an empty vCard) with FN and the first EMAIL replaced when given ("" removes
 * them); every other field is kept as it is. */
static struct xmpp_stanza *vcard_merge(const struct xmpp_stanza *base, const char *name,
                                       const char *email)
{
    struct xmpp_stanza *vc = xmpp_stanza_new("vCard", NS_VCARD);
    bool fn_done = name == NULL, email_done = email == NULL;
    for (const struct xmpp_stanza *c = base ? xmpp_stanza_first_child(base) : NULL; c;
         c = xmpp_stanza_next(c)) {
        const char *n = xmpp_stanza_name(c);
        if (strcmp(n, "FN") == 0 && name != NULL) {
            if (!fn_done && *name)
                xmpp_stanza_add_text_child(vc, "FN", NULL, name);
            fn_done = true;
            continue;
        }
        if (strcmp(n, "EMAIL") == 0 && !email_done) {
            if (*email)
                add_email(vc, email);
            email_done = true;
            continue;
        }
        xmpp_stanza_adopt_child(vc, xmpp_stanza_copy(c));
    }
    if (!fn_done && *name)
        xmpp_stanza_add_text_child(vc, "FN", NULL, name);
    if (!email_done && *email)
        add_email(vc, email);
    return vc;
}

static void got_vcard(struct http_req *req, struct session *s, const struct xmpp_stanza *reply,
                      void *data)
{
    struct uop *u = data;
    const struct xmpp_stanza *vc = xmpp_stanza_child(reply, "vCard", NS_VCARD);
    if (api__is_error(reply)) {
        const char *cond;
        int status = api__xmpp_error_status(reply, &cond);
        if (status != 404 && status != 503) { /* none yet / no vCard service: empty */
            api__xmpp_error(req, reply);
            uop_free(u);
            return;
        }
    } else if (vc != NULL && xmpp_stanza_first_child(vc) != NULL) {
        u->vcard = xmpp_stanza_copy(vc);
    }
    uop_next(req, s, u);
}

static void put_vcard_done(struct http_req *req, struct session *s, const struct xmpp_stanza *reply,
                           void *data)
{
    (void)reply;
    uop_next(req, s, data);
}

static void step_put_vcard(struct http_req *req, struct session *s, struct uop *u)
{
    struct xmpp_stanza *base = u->new_vcard ? u->new_vcard : u->vcard;
    struct xmpp_stanza *vc = vcard_merge(base, u->name, u->email);
    struct xmpp_stanza *iq = xmpp_stanza_new("iq", XMPP_NS_CLIENT);
    xmpp_stanza_set_attr(iq, "type", "set");
    xmpp_stanza_adopt_child(iq, vc);
    uop_iq(req, s, u, iq, 0, put_vcard_done);
}

/* ---- properties (XEP-0223 private PEP node, XEP-0049 fallback) ------------------------------ */

/* Reads <properties xmlns=NS_PROPS> into u->props (reserved or invalid entries skipped). */
static void props_from(struct uop *u, const struct xmpp_stanza *el)
{
    json_decref(u->props);
    u->props = json_object();
    size_t n = 0;
    for (const struct xmpp_stanza *p = el ? xmpp_stanza_first_child(el) : NULL; p && n < PROPS_MAX;
         p = xmpp_stanza_next(p)) {
        const char *k = xmpp_stanza_attr(p, "name");
        if (strcmp(xmpp_stanza_name(p), "property") != 0 || k == NULL || *k == '\0' ||
            !text_ok(k, PROP_KEY_MAX) || reserved_key(k))
            continue;
        char *v = xmpp_stanza_text(p);
        if (text_ok(v, PROP_VALUE_MAX)) {
            json_object_set_new(u->props, k, json_string(v));
            n++;
        }
        mem_free(v);
    }
}

static struct xmpp_stanza *props_element(const json_t *props)
{
    struct xmpp_stanza *el = xmpp_stanza_new("properties", NS_PROPS);
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)props, k, v)
    {
        struct xmpp_stanza *p =
            xmpp_stanza_add_text_child(el, "property", NULL, json_string_value(v));
        xmpp_stanza_set_attr(p, "name", k);
    }
    return el;
}

static void got_private(struct http_req *req, struct session *s, const struct xmpp_stanza *reply,
                        void *data)
{
    struct uop *u = data;
    const struct xmpp_stanza *q = xmpp_stanza_child(reply, "query", NS_PRIVATE);
    props_from(u, api__is_error(reply) || q == NULL ? NULL
                                                    : xmpp_stanza_child(q, "properties", NS_PROPS));
    uop_next(req, s, u);
}

/* An error answer that means "no such node" or "no PEP here" (as bookmark_api.c decides):
 * only then is XEP-0049 private storage used instead. Any other error (forbidden, timeout,
 * resource-constraint, ...) must not send a read or a write elsewhere: a write to private
 * storage would shadow, and then lose, the properties kept in PEP. */
static bool pep_missing(const struct xmpp_stanza *reply)
{
    const char *cond = NULL;
    api__xmpp_error_status(reply, &cond);
    return cond != NULL &&
           (strcmp(cond, "item-not-found") == 0 || strcmp(cond, "feature-not-implemented") == 0 ||
            strcmp(cond, "service-unavailable") == 0);
}

static void got_pep(struct http_req *req, struct session *s, const struct xmpp_stanza *reply,
                    void *data)
{
    struct uop *u = data;
    const struct xmpp_stanza *ps = xmpp_stanza_child(reply, "pubsub", NS_PUBSUB);
    const struct xmpp_stanza *items = ps ? xmpp_stanza_child(ps, "items", NULL) : NULL;
    const struct xmpp_stanza *el = NULL;
    for (const struct xmpp_stanza *it = items ? xmpp_stanza_first_child(items) : NULL;
         it && el == NULL; it = xmpp_stanza_next(it))
        el = xmpp_stanza_child(it, "properties", NS_PROPS);
    if (!api__is_error(reply) && el != NULL) {
        props_from(u, el);
        uop_next(req, s, u);
        return;
    }
    if (api__is_error(reply) && !pep_missing(reply)) { /* a real failure: no fallback, no write */
        api__xmpp_error(req, reply);
        uop_free(u);
        return;
    }
    /* no PEP node (or no PEP): the private XML storage fallback */
    struct xmpp_stanza *q;
    struct xmpp_stanza *iq = api__iq_new("get", NULL, "query", NS_PRIVATE, &q);
    xmpp_stanza_add_child(q, "properties", NS_PROPS);
    uop_iq(req, s, u, iq, API_IQ_ERRORS, got_private);
}

static void step_get_props(struct http_req *req, struct session *s, struct uop *u)
{
    struct xmpp_stanza *ps;
    struct xmpp_stanza *iq = api__iq_new("get", NULL, "pubsub", NS_PUBSUB, &ps);
    struct xmpp_stanza *items = xmpp_stanza_add_child(ps, "items", NULL);
    xmpp_stanza_set_attr(items, "node", NS_PROPS);
    uop_iq(req, s, u, iq, API_IQ_ERRORS, got_pep);
}

static void put_private_done(struct http_req *req, struct session *s,
                             const struct xmpp_stanza *reply, void *data)
{
    (void)reply;
    uop_next(req, s, data);
}

static void put_pep_done(struct http_req *req, struct session *s, const struct xmpp_stanza *reply,
                         void *data)
{
    struct uop *u = data;
    if (!api__is_error(reply)) {
        uop_next(req, s, u);
        return;
    }
    const char *cond;
    api__xmpp_error_status(reply, &cond);
    log_debug("props_pep_refused", "user=%s condition=%s", u->user, cond);
    if (!pep_missing(reply)) {
        api__xmpp_error(req, reply);
        uop_free(u);
        return;
    }
    struct xmpp_stanza *q;
    struct xmpp_stanza *iq = api__iq_new("set", NULL, "query", NS_PRIVATE, &q);
    xmpp_stanza_adopt_child(q, props_element(u->props));
    uop_iq(req, s, u, iq, 0, put_private_done);
}

static void step_put_props(struct http_req *req, struct session *s, struct uop *u)
{
    if (u->kind == OP_PUT_USER) { /* replace the whole set */
        json_decref(u->props);
        u->props = json_incref(u->set_props);
    } else { /* merge */
        if (u->props == NULL)
            u->props = json_object();
        json_object_update(u->props, u->set_props);
    }
    if (json_object_size(u->props) > PROPS_MAX) {
        api__error(req, 413, "too many properties");
        uop_free(u);
        return;
    }
    struct xmpp_stanza *ps;
    struct xmpp_stanza *iq = api__iq_new("set", NULL, "pubsub", NS_PUBSUB, &ps);
    struct xmpp_stanza *pub = xmpp_stanza_add_child(ps, "publish", NULL);
    xmpp_stanza_set_attr(pub, "node", NS_PROPS);
    struct xmpp_stanza *item = xmpp_stanza_add_child(pub, "item", NULL);
    xmpp_stanza_set_attr(item, "id", "current");
    xmpp_stanza_adopt_child(item, props_element(u->props));
    struct xmpp_stanza *po = xmpp_stanza_add_child(ps, "publish-options", NULL);
    struct xmpp_stanza *x = xmpp_stanza_add_child(po, "x", NS_DATA);
    xmpp_stanza_set_attr(x, "type", "submit");
    static const char *const fields[][2] = {
        { "FORM_TYPE", "http://jabber.org/protocol/pubsub#publish-options" },
        { "pubsub#persist_items", "true" },
        { "pubsub#access_model", "whitelist" },
    };
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        struct xmpp_stanza *f = xmpp_stanza_add_child(x, "field", NULL);
        xmpp_stanza_set_attr(f, "var", fields[i][0]);
        if (i == 0)
            xmpp_stanza_set_attr(f, "type", "hidden");
        xmpp_stanza_add_text_child(f, "value", NULL, fields[i][1]);
    }
    uop_iq(req, s, u, iq, API_IQ_ERRORS, put_pep_done);
}

/* [{"key","value"}] of the caller's properties. */
static json_t *props_array(const json_t *props)
{
    json_t *a = json_array();
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)props, k, v)
    {
        json_array_append_new(a, json_pack("{s:s, s:O}", "key", k, "value", v));
    }
    return a;
}

/* ---- roster (RFC 6121) and the server's version (XEP-0092) ---------------------------------- */

static void got_roster(struct http_req *req, struct session *s, const struct xmpp_stanza *reply,
                       void *data)
{
    struct uop *u = data;
    u->roster = json_array();
    const struct xmpp_stanza *q = xmpp_stanza_child(reply, "query", NS_ROSTER);
    for (const struct xmpp_stanza *it = q ? xmpp_stanza_first_child(q) : NULL; it;
         it = xmpp_stanza_next(it)) {
        const char *jid = xmpp_stanza_attr(it, "jid");
        const char *name = xmpp_stanza_attr(it, "name");
        if (strcmp(xmpp_stanza_name(it), "item") != 0 || jid == NULL || !text_ok(jid, 3071))
            continue;
        json_t *o = json_object();
        json_object_set_new(o, "jid", json_string(jid));
        if (name != NULL && *name && text_ok(name, TEXT_FIELD_MAX))
            json_object_set_new(o, "name", json_string(name));
        json_t *groups = json_array();
        for (const struct xmpp_stanza *g = xmpp_stanza_first_child(it); g;
             g = xmpp_stanza_next(g)) {
            if (strcmp(xmpp_stanza_name(g), "group") != 0)
                continue;
            char *t = xmpp_stanza_text(g);
            if (*t && text_ok(t, TEXT_FIELD_MAX))
                json_array_append_new(groups, json_string(t));
            mem_free(t);
        }
        json_object_set_new(o, "groups", groups);
        json_array_append_new(u->roster, o);
    }
    uop_next(req, s, u);
}

static void got_version(struct http_req *req, struct session *s, const struct xmpp_stanza *reply,
                        void *data)
{
    struct uop *u = data;
    struct api_users *us = u->d->state->users;
    const struct xmpp_stanza *q = xmpp_stanza_child(reply, "query", NS_VERSION);
    if (!api__is_error(reply) && q != NULL) {
        char *name = xmpp_stanza_child_text(q, "name", NULL);
        char *version = xmpp_stanza_child_text(q, "version", NULL);
        json_t *o = json_object();
        if (name && text_ok(name, TEXT_FIELD_MAX))
            json_object_set_new(o, "name", json_string(name));
        if (version && text_ok(version, TEXT_FIELD_MAX))
            json_object_set_new(o, "version", json_string(version));
        json_decref(us->server);
        us->server = o;
        mem_free(name);
        mem_free(version);
    }
    us->fetched_ms = tick_now(u->d->tick);
    uop_next(req, s, u);
}

/* The caller's local part when jid is on our domain, else the bare JID. */
static char *user_of(const struct api_deps *d, const char *jid)
{
    struct xmpp_jid j;
    if (xmpp_jid_parse(&j, jid) < 0)
        return mem_strdup(jid);
    char *out = j.local && strcasecmp(j.domain, d->domain) == 0 ? mem_strdup(j.local)
                                                                : xmpp_jid_bare_of(jid);
    xmpp_jid_cleanup(&j);
    return out ? out : mem_strdup(jid);
}

/* ---- password change and removal (XEP-0077) ------------------------------------------------ */

static void vault_login_done(struct session_mgr *mgr, int status, struct session *s, void *data)
{
    (void)mgr;
    (void)s;
    char *user = data;
    log_info("password_vault_refresh", "user=%s status=%s", user,
             status ? log_errname(status) : "ok");
    mem_free(user);
}

static void password_done(struct http_req *req, struct session *s, const struct xmpp_stanza *reply,
                          void *data)
{
    (void)reply;
    struct uop *u = data;
    struct api_deps *d = u->d;
    /* the gateway's copies of the old password: the Basic cache and the vault. The SCRAM
     * SaltedPassword of the vault no longer matches: an authentication-only login with the
     * new password stores the new one (on_credential); until then a stale entry is refused by
     * the server and dropped as usual. */
    auth_pwcache_forget(d->auth, u->user);
    auth_pwcache_put(d->auth, u->user, u->password, tick_now(d->tick), d->basic_cache_ms);
    api__vault_password(d, u->user, u->password);
    char *user = mem_strdup(u->user);
    if (session_login(d->sessions, u->user, u->password, vault_login_done, user, NULL) < 0)
        mem_free(user);
    log_info("password_changed", "user=%s", u->user);
    uop_next(req, s, u);
}

static void step_password(struct http_req *req, struct session *s, struct uop *u)
{
    struct xmpp_stanza *q;
    struct xmpp_stanza *iq = api__iq_new("set", NULL, "query", NS_REGISTER, &q);
    xmpp_stanza_add_text_child(q, "username", NULL, u->user);
    xmpp_stanza_add_text_child(q, "password", NULL, u->password);
    uop_iq(req, s, u, iq, 0, password_done);
}

static void removed(struct http_req *req, struct session *s, const struct xmpp_stanza *reply,
                    void *data)
{
    (void)reply;
    struct uop *u = data;
    struct api_deps *d = u->d;
    size_t n = auth_token_revoke_user(d->auth, u->user);
    auth_pwcache_forget(d->auth, u->user);
    api__tickets_forget_user(d, u->user);
    if (d->db != NULL)
        store_user_forget(d->db, u->user, NULL, NULL);
    log_info("account_removed", "user=%s tokens_revoked=%zu", u->user, n);
    http_reply_empty(req, 200);
    session_logout(s); /* the server closes the stream too; no reconnection */
    uop_free(u);
}

static void step_remove(struct http_req *req, struct session *s, struct uop *u)
{
    struct xmpp_stanza *q;
    struct xmpp_stanza *iq = api__iq_new("set", NULL, "query", NS_REGISTER, &q);
    xmpp_stanza_add_child(q, "remove", NULL);
    uop_iq(req, s, u, iq, 0, removed);
}

/* ---- answers ------------------------------------------------------------------------------ */

static bool props_match(const json_t *props, const char *key, const char *value)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)props, k, v)
    {
        if (api__like(k, key) && (value == NULL || strcmp(json_string_value(v), value) == 0))
            return true;
    }
    return false;
}

static json_t *self_entity(struct uop *u, bool with_vcard)
{
    json_t *o = json_object();
    json_object_set_new(o, "username", json_string(u->user));
    char *fn = vcard_fn(u->vcard), *email = vcard_email(u->vcard);
    if (fn && *fn)
        json_object_set_new(o, "name", json_string(fn));
    if (email && *email)
        json_object_set_new(o, "email", json_string(email));
    mem_free(fn);
    mem_free(email);
    json_object_set_new(o, "properties", props_array(u->props));
    if (with_vcard && u->vcard != NULL) {
        char *b = vcard_b64(u->vcard);
        json_object_set_new(o, "vcard", json_string(b));
        mem_free(b);
    }
    return o;
}

static void reply_users(struct http_req *req, struct uop *u)
{
    json_t *users = json_array();
    if (u->search == NULL || strstr(u->user, u->search) != NULL) {
        if (u->pkey == NULL || props_match(u->props, u->pkey, u->pval))
            json_array_append_new(users, self_entity(u, false));
    }
    size_t i;
    json_t *it;
    json_array_foreach(u->roster, i, it)
    {
        if (u->pkey != NULL) /* other users' properties are not ours to read */
            break;
        char *name = user_of(u->d, json_string_value(json_object_get(it, "jid")));
        if (u->search == NULL || strstr(name, u->search) != NULL) {
            json_t *o = json_object();
            json_object_set_new(o, "username", json_string(name));
            json_t *n = json_object_get(it, "name");
            if (n)
                json_object_set(o, "name", n);
            json_array_append_new(users, o);
        }
        mem_free(name);
    }
    json_t *out = json_object();
    json_object_set_new(out, "users", users);
    http_reply_json(req, 200, out);
}

/* The distinct roster groups, in first-seen order. */
static json_t *group_names(const json_t *roster)
{
    json_t *names = json_array();
    size_t i, j;
    json_t *it, *g;
    json_array_foreach(roster, i, it)
    {
        json_array_foreach(json_object_get(it, "groups"), j, g)
        {
            bool seen = false;
            size_t k;
            json_t *x;
            json_array_foreach(names, k, x) seen = seen || json_equal(x, g);
            if (!seen)
                json_array_append(names, g);
        }
    }
    return names;
}

static void reply_config(struct http_req *req, struct uop *u)
{
    json_t *o = json_object();
    json_object_set_new(o, "domain", json_string(u->d->domain));
    if (u->vcard != NULL) {
        char *b = vcard_b64(u->vcard);
        json_object_set_new(o, "vcard", json_string(b));
        mem_free(b);
    }
    json_object_set_new(o, "username", json_string(u->user));
    char *fn = vcard_fn(u->vcard), *email = vcard_email(u->vcard);
    json_object_set_new(o, "name", json_string(fn && *fn ? fn : u->user));
    if (email && *email)
        json_object_set_new(o, "email", json_string(email));
    mem_free(fn);
    mem_free(email);
    json_object_update(o, u->props); /* properties may override the keys above (reference) */
    json_t *names = group_names(u->roster), *groups = json_array();
    size_t i, j;
    json_t *g, *it;
    json_array_foreach(names, i, g)
    {
        json_t *members = json_array();
        json_array_foreach(u->roster, j, it)
        {
            size_t k;
            json_t *x;
            bool in = false;
            json_array_foreach(json_object_get(it, "groups"), k, x) in = in || json_equal(x, g);
            if (!in)
                continue;
            char *name = user_of(u->d, json_string_value(json_object_get(it, "jid")));
            json_t *m = json_pack("{s:s}", "username", name);
            mem_free(name);
            json_t *n = json_object_get(it, "name");
            if (n)
                json_object_set(m, "name", n);
            json_array_append_new(members, m);
        }
        json_array_append_new(groups, json_pack("{s:O, s:o}", "group", g, "members", members));
    }
    json_decref(names);
    json_object_set_new(o, "groups", groups);
    http_reply_json(req, 200, o);
}

static void uop_finish(struct http_req *req, struct uop *u)
{
    switch (u->kind) {
    case OP_USERS:
        reply_users(req, u);
        break;
    case OP_GET_USER: {
        json_t *o = self_entity(u, true);
        http_reply_json(req, 200, o);
        break;
    }
    case OP_GROUPS: {
        json_t *o = json_pack("{s:o}", "groupnames", group_names(u->roster));
        http_reply_json(req, 200, o);
        break;
    }
    case OP_CONFIG_GET:
        reply_config(req, u);
        break;
    case OP_PUT_USER:
    case OP_CONFIG_SET:
    case OP_DELETE:
        http_reply_empty(req, 200);
        break;
    }
    uop_free(u);
}

static void uop_next(struct http_req *req, struct session *s, struct uop *u)
{
    unsigned step = u->todo & (~u->todo + 1); /* lowest bit */
    u->todo &= ~step;
    struct xmpp_stanza *iq;
    switch (step) {
    case 0:
        uop_finish(req, u);
        return;
    case NEED_VCARD:
        iq = api__iq_new("get", NULL, "vCard", NS_VCARD, NULL);
        uop_iq(req, s, u, iq, API_IQ_ERRORS, got_vcard);
        return;
    case NEED_PROPS:
        step_get_props(req, s, u);
        return;
    case NEED_ROSTER:
        iq = api__iq_new("get", NULL, "query", NS_ROSTER, NULL);
        uop_iq(req, s, u, iq, 0, got_roster);
        return;
    case NEED_VERSION:
        iq = api__iq_new("get", u->d->domain, "query", NS_VERSION, NULL);
        uop_iq(req, s, u, iq, API_IQ_ERRORS, got_version);
        return;
    case PUT_VCARD:
        step_put_vcard(req, s, u);
        return;
    case PUT_PROPS:
        step_put_props(req, s, u);
        return;
    case PUT_PASSWORD:
        step_password(req, s, u);
        return;
    case DO_REMOVE:
        step_remove(req, s, u);
        return;
    }
}

static struct uop *uop_new(struct api_deps *d, const char *user, enum uop_kind kind, unsigned todo)
{
    struct uop *u = mem_calloc(1, sizeof(*u));
    u->d = d;
    u->kind = kind;
    u->todo = todo;
    snprintf(u->user, sizeof(u->user), "%s", user);
    return u;
}

/* Its turn in the user's queue (q is the first member of struct uop). */
static void uop_turn(struct api_queued *q)
{
    struct uop *u = (struct uop *)q;
    /* the session may have ended (and another begun) while it waited */
    struct session *s = session_find(u->d->sessions, u->qkey);
    if (s == NULL) {
        struct http_req *req = q->req;
        uop_free(u);
        api__error(req, 503, "xmpp session closed");
        return;
    }
    uop_next(q->req, s, u);
}

static void uop_waiting_aborted(struct api_queued *q)
{
    uop_free(q);
}

/* Runs a call that writes (U3, U12) after the user's earlier writes (and bookmark calls). */
static void uop_enqueue(struct http_req *req, struct session *s, struct uop *u)
{
    u->queued = true;
    u->qkey = mem_strdup(session_username(s));
    u->q = (struct api_queued){
        .req = req, .user = u->qkey, .start = uop_turn, .aborted = uop_waiting_aborted
    };
    api__queue_enter(u->d, &u->q);
}

/* ---- handlers ------------------------------------------------------------------------------ */

/* GET /users?search&propertyKey&propertyValue — the caller and their roster contacts (no
 * XEP-0055 directory is used); properties only for the caller. */
static void handle_users(struct http_req *req, const char *user, struct session *s,
                         struct api_deps *d)
{
    const char *names[] = { "search", "propertyKey", "propertyValue" };
    const size_t max[] = { TEXT_FIELD_MAX, PROP_KEY_MAX, PROP_VALUE_MAX };
    const char *vals[3];
    for (int i = 0; i < 3; i++) {
        vals[i] = http_req_query(req, names[i]);
        if (vals[i] != NULL && !text_ok(vals[i], max[i])) {
            api__error(req, 400, "invalid query argument");
            return;
        }
    }
    struct uop *u = uop_new(d, user, OP_USERS, NEED_VCARD | NEED_PROPS | NEED_ROSTER);
    u->search = vals[0] && *vals[0] ? vals[0] : NULL;
    u->pkey = vals[1] && *vals[1] ? vals[1] : NULL;
    u->pval = u->pkey ? vals[2] : NULL;
    uop_next(req, s, u);
}

static void handle_get_user(struct http_req *req, const char *user, struct session *s,
                            struct api_deps *d)
{
    uop_next(req, s, uop_new(d, user, OP_GET_USER, NEED_VCARD | NEED_PROPS));
}

/* A properties member of PUT /user: [{"key","value"}] ("name" accepted for "key"); reserved
 * keys are dropped. NULL when malformed. */
static json_t *props_input(const json_t *arr, const char *keyname)
{
    if (!json_is_array(arr) || json_array_size(arr) > PROPS_MAX)
        return NULL;
    json_t *out = json_object();
    size_t i;
    json_t *it;
    json_array_foreach(arr, i, it)
    {
        const char *k = json_string_value(json_object_get(it, keyname));
        if (k == NULL && strcmp(keyname, "key") == 0)
            k = json_string_value(json_object_get(it, "name"));
        json_t *v = json_object_get(it, "value");
        if (!json_is_object(it) || k == NULL || !json_is_string(v) || !text_ok(k, PROP_KEY_MAX) ||
            !text_ok(json_string_value(v), PROP_VALUE_MAX)) {
            json_decref(out);
            return NULL;
        }
        if (*k == '\0' || reserved_key(k))
            continue;
        json_object_set(out, k, v);
    }
    return out;
}

/* A string member: true when absent (out NULL) or valid; false when not a string or invalid. */
static bool string_member(const json_t *o, const char *key, size_t max, char **out)
{
    json_t *v = json_object_get(o, key);
    *out = NULL;
    if (v == NULL || json_is_null(v))
        return true;
    if (!json_is_string(v) || !text_ok(json_string_value(v), max))
        return false;
    *out = mem_strdup(json_string_value(v));
    return true;
}

/* Overwrites the password string in the parsed body (ours: one reference) before it is freed.
 * The request's raw body and the parser's scratch buffers are not ours to wipe. */
static void wipe_password(json_t *in)
{
    json_t *v = json_object_get(in, "password");
    if (json_is_string(v))
        OPENSSL_cleanse((char *)json_string_value(v), json_string_length(v));
}

/* PUT /user — JSON UserEntity. */
static void handle_put_user(struct http_req *req, const char *user, struct session *s,
                            struct api_deps *d)
{
    size_t len;
    const char *body = http_req_body(req, &len);
    json_t *in = json_loadb(body, len, 0, NULL);
    if (!json_is_object(in)) {
        wipe_password(in);
        json_decref(in);
        api__error(req, 400, "body must be a JSON UserEntity");
        return;
    }
    struct uop *u = uop_new(d, user, OP_PUT_USER, 0);
    const char *bad = NULL;
    json_t *jun = json_object_get(in, "username");
    char folded[API_USER_MAX];
    if (jun != NULL && !json_is_null(jun)) {
        if (!json_is_string(jun) || !api__username(json_string_value(jun), folded))
            bad = "invalid username";
        else if (strcmp(folded, user) != 0) {
            wipe_password(in);
            json_decref(in);
            uop_free(u);
            api__error(req, 400, "renaming an account is not possible over XMPP");
            return;
        }
    }
    if (bad == NULL && !string_member(in, "name", TEXT_FIELD_MAX, &u->name))
        bad = "invalid name";
    if (bad == NULL && !string_member(in, "email", TEXT_FIELD_MAX, &u->email))
        bad = "invalid email";
    if (bad == NULL && !string_member(in, "password", API_PASS_MAX - 1, &u->password))
        bad = "invalid password";
    if (bad == NULL && u->password != NULL && *u->password == '\0')
        bad = "empty password";
    json_t *jprops = json_object_get(in, "properties");
    if (bad == NULL && jprops != NULL && !json_is_null(jprops)) {
        u->set_props = props_input(jprops, "key");
        if (u->set_props == NULL)
            bad = "invalid properties";
    }
    json_t *jvc = json_object_get(in, "vcard");
    if (bad == NULL && jvc != NULL && !json_is_null(jvc)) {
        u->new_vcard = json_is_string(jvc) ? vcard_parse(json_string_value(jvc)) : NULL;
        if (u->new_vcard == NULL) {
            wipe_password(in);
            json_decref(in);
            uop_free(u);
            api__error(req, 409, "Could not create vcard");
            return;
        }
    }
    wipe_password(in);
    json_decref(in);
    if (bad != NULL) {
        uop_free(u);
        api__error(req, 400, bad);
        return;
    }
    if (u->name != NULL || u->email != NULL || u->new_vcard != NULL)
        u->todo |= PUT_VCARD;
    if ((u->name != NULL || u->email != NULL) && u->new_vcard == NULL)
        u->todo |= NEED_VCARD; /* merge into the current vCard */
    if (u->set_props != NULL)
        u->todo |= PUT_PROPS;
    if (u->password != NULL)
        u->todo |= PUT_PASSWORD;
    uop_enqueue(req, s, u);
}

static void handle_delete_user(struct http_req *req, const char *user, struct session *s,
                               struct api_deps *d)
{
    log_info("account_remove", "user=%s", user);
    uop_next(req, s, uop_new(d, user, OP_DELETE, DO_REMOVE));
}

static void handle_groups(struct http_req *req, const char *user, struct session *s,
                          struct api_deps *d)
{
    uop_next(req, s, uop_new(d, user, OP_GROUPS, NEED_ROSTER));
}

/* U6-U9: no client-side XEP manages server groups (XEP-0140 is not deployed). */
static void handle_groups_write(struct http_req *req, const char *user, struct session *s,
                                struct api_deps *d)
{
    (void)user;
    (void)s;
    (void)d;
    http_reply_error(req, 501, "not supported", "Exception", "NotAllowedException");
}

/* GET /config/global — public. */
static void handle_global(struct http_req *req, void *data)
{
    struct api_deps *d = data;
    json_t *o = json_pack("{s:s, s:s, s:s}", "version", SG_VERSION, "about", "SparkWeb", "domain",
                          d->domain);
    struct api_users *us = d->state->users;
    if (us->server != NULL)
        json_object_set(o, "server", us->server);
    http_reply_json(req, 200, o);
}

static void handle_config_get(struct http_req *req, const char *user, struct session *s,
                              struct api_deps *d)
{
    unsigned todo = NEED_VCARD | NEED_PROPS | NEED_ROSTER;
    struct api_users *us = d->state->users;
    if (us->fetched_ms == 0 || tick_now(d->tick) - us->fetched_ms > VERSION_TTL_MS)
        todo |= NEED_VERSION; /* kept for U10 */
    uop_next(req, s, uop_new(d, user, OP_CONFIG_GET, todo));
}

/* POST /config/properties — raw text [{"name","value"}]. Bad input: 400 with an empty body
 * (the reference builds a bare 400). */
static void handle_config_set(struct http_req *req, const char *user, struct session *s,
                              struct api_deps *d)
{
    size_t len;
    const char *body = http_req_body(req, &len);
    json_t *in = json_loadb(body, len, 0, NULL);
    json_t *set = in ? props_input(in, "name") : NULL;
    if (set == NULL) {
        json_decref(in);
        http_reply_empty(req, 400);
        return;
    }
    json_decref(in);
    struct uop *u = uop_new(d, user, OP_CONFIG_SET, 0);
    /* the special names go to the vCard (reference: vcard parse errors are ignored) */
    json_t *v;
    if ((v = json_object_get(set, "name")) != NULL)
        u->name = mem_strdup(json_string_value(v));
    if ((v = json_object_get(set, "email")) != NULL)
        u->email = mem_strdup(json_string_value(v));
    if ((v = json_object_get(set, "vcard")) != NULL)
        u->new_vcard = vcard_parse(json_string_value(v));
    json_object_del(set, "name");
    json_object_del(set, "email");
    json_object_del(set, "vcard");
    if (u->name != NULL || u->email != NULL || u->new_vcard != NULL)
        u->todo |= PUT_VCARD;
    if ((u->name != NULL || u->email != NULL) && u->new_vcard == NULL)
        u->todo |= NEED_VCARD;
    if (json_object_size(set) > 0)
        u->todo |= NEED_PROPS | PUT_PROPS;
    u->set_props = set;
    uop_enqueue(req, s, u);
}

int api__users_register(struct api_deps *d)
{
    d->state->users = mem_calloc(1, sizeof(*d->state->users));

    static const struct api_route_def routes[] = {
        { HTTP_GET, API_PREFIX "/users", handle_users, API_NEED_SESSION },
        { HTTP_GET, API_PREFIX "/user", handle_get_user, API_NEED_SESSION },
        { HTTP_PUT, API_PREFIX "/user", handle_put_user, API_NEED_SESSION },
        { HTTP_DELETE, API_PREFIX "/user", handle_delete_user, API_NEED_SESSION },
        { HTTP_GET, API_PREFIX "/user/groups", handle_groups, API_NEED_SESSION },
        { HTTP_POST, API_PREFIX "/user/groups", handle_groups_write, 0 },
        { HTTP_DELETE, API_PREFIX "/user/groups", handle_groups_write, 0 },
        { HTTP_POST, API_PREFIX "/user/groups/{groupName}", handle_groups_write, 0 },
        { HTTP_DELETE, API_PREFIX "/user/groups/{groupName}", handle_groups_write, 0 },
        { HTTP_GET, API_PREFIX "/config/properties", handle_config_get, API_NEED_SESSION },
        { HTTP_POST, API_PREFIX "/config/properties", handle_config_set, API_NEED_SESSION },
    };

    int rc = http_route(d->http, HTTP_GET, API_PREFIX "/config/global", handle_global, d);
    if (rc == 0)
        rc = API_ROUTE_TABLE(d, routes);
    return rc;
}

void api__users_free(struct api_deps *d)
{
    if (d->state->users == NULL)
        return;
    json_decref(d->state->users->server);
    mem_free(d->state->users);
    d->state->users = NULL;
}
