/* events.c: stanza -> SparkWeb events (contract §3.5). */
#include "events/events.h"

#include <string.h>

#include "core/b64.h"
#include "core/buf.h"
#include "core/mem.h"
#include "xmpp/jid.h"
#include "xmpp/stanza.h"

#define LOG_MODULE "events"
#include "core/log.h"

#define NS_CHATSTATES "http://jabber.org/protocol/chatstates"
#define NS_MUC_USER   "http://jabber.org/protocol/muc#user"
#define NS_CONFERENCE "jabber:x:conference"
#define NS_JIVE_PROPS "http://www.jivesoftware.com/xmlns/xmpp/properties"
#define NS_PUBSUB_EV  "http://jabber.org/protocol/pubsub#event"
#define NS_JSON       "urn:xmpp:json:0"
#define NS_CARBONS    "urn:xmpp:carbons:2"
#define NS_FORWARD    "urn:xmpp:forward:0"

/* Largest stanza re-serialised for chatapi.xmpp; bigger ones are refused upstream already. */
#define XMPP_EVENT_MAX (16u * 1024 * 1024)

static const char *const chat_states[] = {
    "active", "composing", "paused", "inactive", "gone", NULL
};

/* A string attribute as the reference shows it: the value, or the literal "null". */
static json_t *str_or_null(const char *s)
{
    return json_string(s != NULL ? s : "null");
}

/* Adds key: text (or "null"), taking ownership of text. */
static void set_text(json_t *o, const char *key, char *text)
{
    json_object_set_new(o, key, str_or_null(text));
    mem_free(text);
}

static void emit_xmpp(const struct xmpp_stanza *st, events_emit_cb *emit, void *data)
{
    struct buf b;
    buf_init(&b, XMPP_EVENT_MAX);
    if (xmpp_stanza_serialize(st, &b) == 0) {
        char *enc = b64_encode(b.ptr ? b.ptr : "", b.len, B64_STD, NULL);
        json_t *p = json_object();
        json_object_set_new(p, "xmpp", json_string(enc));
        emit("chatapi.xmpp", p, data);
        json_decref(p);
        mem_free(enc);
    }
    buf_cleanup(&b);
}

static void emit_presence(const struct xmpp_stanza *st, events_emit_cb *emit, void *data)
{
    json_t *p = json_object();
    const char *type = xmpp_stanza_attr(st, "type");
    char *show = xmpp_stanza_child_text(st, "show", NULL);
    json_object_set_new(p, "type", json_string("presence"));
    json_object_set_new(p, "to", str_or_null(xmpp_stanza_attr(st, "to")));
    json_object_set_new(p, "from", str_or_null(xmpp_stanza_attr(st, "from")));
    set_text(p, "status", xmpp_stanza_child_text(st, "status", NULL));
    /* [Q] kept: "available" whenever there is no <show>, whatever the type */
    json_object_set_new(p, "show", json_string(show && *show ? show : "available"));
    json_object_set_new(p, "presenceType", json_string(type ? type : "available"));
    mem_free(show);
    emit("chatapi.presence", p, data);
    json_decref(p);
}

/* The Jive property "data" as JSON: parsed when it is JSON, else the text as a string;
 * NULL when absent. */
static json_t *jive_data(const struct xmpp_stanza *msg)
{
    const struct xmpp_stanza *props = xmpp_stanza_child(msg, "properties", NS_JIVE_PROPS);
    if (props == NULL)
        return NULL;
    for (struct xmpp_stanza *p = xmpp_stanza_first_child(props); p; p = xmpp_stanza_next(p)) {
        if (strcmp(xmpp_stanza_name(p), "property") != 0)
            continue;
        char *name = xmpp_stanza_child_text(p, "name", NULL);
        bool is_data = name != NULL && strcmp(name, "data") == 0;
        mem_free(name);
        if (!is_data)
            continue;
        char *value = xmpp_stanza_child_text(p, "value", NULL);
        if (value == NULL)
            return NULL;
        json_t *j = json_loads(value, JSON_DECODE_ANY, NULL);
        if (j == NULL)
            j = json_string(value);
        mem_free(value);
        return j;
    }
    return NULL;
}

static json_t *base_payload(const char *type, const struct xmpp_stanza *st)
{
    json_t *p = json_object();
    json_object_set_new(p, "type", json_string(type));
    json_object_set_new(p, "to", str_or_null(xmpp_stanza_attr(st, "to")));
    json_object_set_new(p, "from", str_or_null(xmpp_stanza_attr(st, "from")));
    return p;
}

static json_t *invite_url(const struct events_opts *opts, const char *room)
{
    const char *base = opts && opts->meet_base ? opts->meet_base : "";
    size_t ll = room ? strcspn(room, "@") : 0;
    struct buf b;
    buf_init(&b, 4096);
    if (buf_appendf(&b, "%s/meet/%.*s", base, (int)ll, room ? room : "") < 0)
        buf_reset(&b);
    json_t *j = json_string(buf_cstr(&b));
    buf_cleanup(&b);
    return j ? j : json_string("");
}

static void emit_pubsub_items(const struct xmpp_stanza *msg, events_emit_cb *emit, void *data)
{
    const struct xmpp_stanza *ev = xmpp_stanza_child(msg, "event", NS_PUBSUB_EV);
    const struct xmpp_stanza *items = ev ? xmpp_stanza_child(ev, "items", NULL) : NULL;
    if (items == NULL)
        return;
    for (struct xmpp_stanza *it = xmpp_stanza_first_child(items); it; it = xmpp_stanza_next(it)) {
        if (strcmp(xmpp_stanza_name(it), "item") != 0)
            continue;
        char *text = xmpp_stanza_child_text(it, "json", NS_JSON);
        json_t *j = text ? json_loads(text, 0, NULL) : NULL;
        mem_free(text);
        if (j != NULL) {
            emit("pubsub.item", j, data);
            json_decref(j);
        }
    }
}

static void emit_message(const struct xmpp_stanza *st, const struct events_opts *opts,
                         events_emit_cb *emit, void *data)
{
    const char *type = xmpp_stanza_attr(st, "type");
    if (type == NULL || *type == '\0')
        type = "normal";
    bool groupchat = strcmp(type, "groupchat") == 0;

    for (int i = 0; chat_states[i]; i++) {
        if (xmpp_stanza_child(st, chat_states[i], NS_CHATSTATES) != NULL) {
            json_t *p = base_payload(type, st);
            json_object_set_new(p, "state", json_string(chat_states[i]));
            emit("chatapi.chat", p, data);
            json_decref(p);
            break;
        }
    }

    char *body = xmpp_stanza_child_text(st, "body", NULL);
    json_t *jdata = jive_data(st);

    /* mediated invitation (XEP-0045 §7.8.2) */
    const struct xmpp_stanza *mucx = xmpp_stanza_child(st, "x", NS_MUC_USER);
    const struct xmpp_stanza *inv = mucx ? xmpp_stanza_child(mucx, "invite", NULL) : NULL;
    if (inv != NULL && !groupchat) {
        const char *room = xmpp_stanza_attr(st, "from");
        json_t *p = json_object();
        json_object_set_new(p, "type", json_string("invitationReceived"));
        set_text(p, "password", xmpp_stanza_child_text(mucx, "password", NULL));
        json_object_set_new(p, "room", str_or_null(room));
        json_object_set_new(p, "inviter", str_or_null(xmpp_stanza_attr(inv, "from")));
        json_object_set_new(p, "to", str_or_null(xmpp_stanza_attr(st, "to")));
        json_object_set_new(p, "from", str_or_null(room));
        json_object_set_new(p, "url", invite_url(opts, room));
        set_text(p, "reason", xmpp_stanza_child_text(inv, "reason", NULL));
        emit("chatapi.muc", p, data);
        json_decref(p);
    }

    if (body != NULL) {
        json_t *p = base_payload(type, st);
        json_object_set(p, "data", jdata ? jdata : json_null());
        json_object_set_new(p, "body", json_string(body));
        if (json_object_get(p, "body") == NULL) /* not UTF-8: cannot happen from expat */
            json_object_set_new(p, "body", json_string(""));
        emit(groupchat ? "chatapi.muc" : "chatapi.chat", p, data);
        json_decref(p);
    } else if (!groupchat && inv == NULL) {
        const struct xmpp_stanza *direct = xmpp_stanza_child(st, "x", NS_CONFERENCE);
        if (direct != NULL) {
            const char *room = xmpp_stanza_attr(direct, "jid");
            json_t *p = json_object();
            json_object_set_new(p, "type", json_string("invitationReceived"));
            json_object_set_new(p, "room", str_or_null(room));
            json_object_set_new(p, "inviter", str_or_null(xmpp_stanza_attr(st, "from")));
            json_object_set_new(p, "to", str_or_null(xmpp_stanza_attr(st, "to")));
            json_object_set_new(p, "from", str_or_null(xmpp_stanza_attr(st, "from")));
            json_object_set_new(p, "url", invite_url(opts, room));
            json_object_set_new(p, "reason", json_string("null"));
            emit("chatapi.muc", p, data);
            json_decref(p);
        } else if (jdata != NULL) {
            json_t *p = base_payload("notify", st);
            json_object_set(p, "data", jdata);
            emit("chatapi.notify", p, data);
            json_decref(p);
        }
    }
    json_decref(jdata);
    mem_free(body);
    emit_pubsub_items(st, emit, data);
}

json_t *events_sent_message(const struct xmpp_stanza *msg, const char *from)
{
    const char *type = xmpp_stanza_attr(msg, "type");
    if (type == NULL || *type == '\0')
        type = "normal";
    if (strcmp(type, "groupchat") == 0)
        return NULL;
    char *body = xmpp_stanza_child_text(msg, "body", NULL);
    if (body == NULL)
        return NULL;
    json_t *jdata = jive_data(msg);
    json_t *p = json_object();
    json_object_set_new(p, "type", json_string(type));
    json_object_set_new(p, "to", str_or_null(xmpp_stanza_attr(msg, "to")));
    json_object_set_new(p, "from", str_or_null(from));
    json_object_set_new(p, "data", jdata ? jdata : json_null());
    json_t *jb = json_string(body);
    json_object_set_new(p, "body", jb ? jb : json_string(""));
    json_object_set_new(p, "sent", json_true());
    const char *id = xmpp_stanza_attr(msg, "id");
    if (id != NULL)
        json_object_set_new(p, "id", json_string(id));
    mem_free(body);
    return p;
}

enum carbon_kind {
    CARBON_NONE,
    CARBON_RECEIVED,
    CARBON_SENT,
};

/* Whether msg is a message carbon (XEP-0280) the account may believe: its 'from' must be the
 * account's bare JID exactly (no resource), else anyone could inject "sent" messages or
 * messages from third parties (CVE-2017-5589). *fwd gets the forwarded message. */
static enum carbon_kind carbon_of(const struct xmpp_stanza *msg, const struct events_opts *opts,
                                  const struct xmpp_stanza **fwd)
{
    enum carbon_kind kind = CARBON_RECEIVED;
    const struct xmpp_stanza *c = xmpp_stanza_child(msg, "received", NS_CARBONS);
    if (c == NULL) {
        c = xmpp_stanza_child(msg, "sent", NS_CARBONS);
        kind = CARBON_SENT;
    }
    if (c == NULL)
        return CARBON_NONE;
    const char *from = xmpp_stanza_attr(msg, "from");
    bool trusted = false;
    if (opts != NULL && opts->account != NULL && from != NULL) {
        struct xmpp_jid j;
        if (xmpp_jid_parse(&j, from) == 0) {
            trusted = j.resource == NULL && xmpp_jid_bare_equal(from, opts->account);
            xmpp_jid_cleanup(&j);
        }
    }
    if (!trusted) {
        log_debug("carbon_forged", "account=%s from=%s", opts && opts->account ? opts->account : "",
                  from ? from : "");
        return CARBON_NONE;
    }
    const struct xmpp_stanza *f = xmpp_stanza_child(c, "forwarded", NS_FORWARD);
    *fwd = f ? xmpp_stanza_child(f, "message", XMPP_NS_CLIENT) : NULL;
    return *fwd != NULL ? kind : CARBON_NONE;
}

void events_from_stanza(const struct xmpp_stanza *st, const struct events_opts *opts,
                        events_emit_cb *emit, void *data)
{
    emit_xmpp(st, emit, data);
    const char *name = xmpp_stanza_name(st);
    if (strcmp(name, "presence") == 0) {
        emit_presence(st, emit, data);
        return;
    }
    if (strcmp(name, "message") != 0)
        return;
    const struct xmpp_stanza *fwd = NULL;
    switch (carbon_of(st, opts, &fwd)) {
    case CARBON_RECEIVED:
        emit_message(fwd, opts, emit, data);
        break;
    case CARBON_SENT: {
        const char *from = xmpp_stanza_attr(fwd, "from");
        json_t *p = events_sent_message(fwd, from ? from : opts->account);
        if (p != NULL) {
            emit("chatapi.chat", p, data);
            json_decref(p);
        }
        break;
    }
    case CARBON_NONE:
        emit_message(st, opts, emit, data);
        break;
    }
}

json_t *events_on_connect(const char *username, const char *name, const char *email)
{
    json_t *p = json_object();
    json_object_set_new(p, "username", json_string(username));
    if (name != NULL && *name != '\0')
        json_object_set_new(p, "name", json_string(name));
    if (email != NULL && *email != '\0')
        json_object_set_new(p, "email", json_string(email));
    return p;
}
