/* chat_api.c: the chat tag: send a message (contract §1.3 C2), echoed to the user's tabs. */
#include "api/api_int.h"

#include <string.h>

#include "core/mem.h"
#include "core/rnd.h"
#include "session/session.h"
#include "xmpp/jid.h"
#include "xmpp/stanza.h"

#define LOG_MODULE "api"
#include "core/log.h"

#define NS_JIVE_PROPS "http://www.jivesoftware.com/xmlns/xmpp/properties"

/* Builds the message of C2: a JSON object body becomes Jive property "data" (the whole text)
 * plus <body> from its "body" member; any other text is a plain chat body. */
static struct xmpp_stanza *build_message(const char *to, const char *text)
{
    struct xmpp_stanza *m = xmpp_stanza_new("message", XMPP_NS_CLIENT);
    char id[25];
    rnd_hex(id, 12);
    xmpp_stanza_set_attr(m, "to", to);
    xmpp_stanza_set_attr(m, "id", id);
    json_t *j = json_loads(text, 0, NULL);
    if (json_is_object(j)) {
        const char *body = json_string_value(json_object_get(j, "body"));
        xmpp_stanza_set_attr(m, "type", body ? "chat" : "normal");
        if (body)
            xmpp_stanza_add_text_child(m, "body", NULL, body);
        struct xmpp_stanza *props = xmpp_stanza_add_child(m, "properties", NS_JIVE_PROPS);
        struct xmpp_stanza *prop = xmpp_stanza_add_child(props, "property", NULL);
        xmpp_stanza_add_text_child(prop, "name", NULL, "data");
        struct xmpp_stanza *v = xmpp_stanza_add_text_child(prop, "value", NULL, text);
        xmpp_stanza_set_attr(v, "type", "string");
    } else {
        xmpp_stanza_set_attr(m, "type", "chat");
        xmpp_stanza_add_text_child(m, "body", NULL, text);
    }
    json_decref(j);
    return m;
}

/* POST /chat/message/{to} — body: text or a JSON object. */
static void handle_message(struct http_req *req, const char *user, struct session *s,
                           struct api_deps *d)
{
    (void)user;
    (void)d;
    session_touch(s);
    const char *to = http_req_param(req, "to");
    struct xmpp_jid jid;
    if (xmpp_jid_parse(&jid, to) < 0) {
        api__error(req, 400, "invalid recipient");
        return;
    }
    bool has_local = jid.local != NULL;
    xmpp_jid_cleanup(&jid);
    if (!has_local) {
        api__error(req, 400, "invalid recipient");
        return;
    }
    size_t len;
    const char *text = http_req_body(req, &len);
    if (len == 0) {
        api__error(req, 400, "empty message");
        return;
    }
    if (memchr(text, '\0', len) != NULL || !api__xml_text_valid(text, len)) {
        api__error(req, 400, "message is not valid UTF-8 text");
        return;
    }
    struct xmpp_stanza *m = build_message(to, text);
    int rc = session_send(s, m);
    if (rc == 0)
        session_echo_sent(s, m); /* every tab of the user shows what this one sent */
    xmpp_stanza_unref(m);
    if (rc < 0) {
        api__error_errno(req, rc, "send failed");
        return;
    }
    log_debug("chat_sent", "user=%s to=%s len=%zu", session_username(s), to, len);
    http_reply_empty(req, 200);
}

int api__chat_register(struct api_deps *d)
{
    return api__route_user(d, HTTP_POST, API_PREFIX "/chat/message/{to}", handle_message,
                           API_NEED_SESSION);
}
