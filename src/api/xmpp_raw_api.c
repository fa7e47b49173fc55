/* xmpp_raw_api.c: K11 POST /xmpp: one stanza written by the page to the user's own stream
 * (contract §1.4 K11, §7: 400 for unparseable XML). The gateway parses and checks it (one
 * message, presence or iq element in jabber:client, a valid `to`), drops any `from` (the server
 * stamps the session's full JID), and sends it. An IQ get/set waits for the answer, which is the
 * response (application/xml); anything else answers 200 once written. */
#include "api/api_int.h"
#include "api/xmpp_api.h"

#include <errno.h>
#include <string.h>

#include "core/mem.h"
#include "session/session.h"
#include "xmpp/jid.h"
#include "xmpp/stanza.h"

#define LOG_MODULE "api"
#include "core/log.h"

/* What an IQ's answer needs: the id the page chose (session_send_iq replaces it). */
struct raw_iq {
    char *id;
};

static void raw_iq_free(void *p)
{
    struct raw_iq *q = p;
    mem_free(q->id);
    mem_free(q);
}

/* The answer (result or error) goes back as XML with the page's own id. */
static void iq_answered(struct http_req *req, struct session *s, const struct xmpp_stanza *reply,
                        void *data)
{
    (void)s;
    struct raw_iq *q = data;
    struct xmpp_stanza *copy = xmpp_stanza_copy(reply);
    xmpp_stanza_set_attr(copy, "id", q->id);
    char *xml = xmpp_stanza_to_string(copy);
    xmpp_stanza_unref(copy);
    http_reply(req, 200, "application/xml; charset=utf-8", xml, strlen(xml));
    mem_free(xml);
    raw_iq_free(q);
}

/* Checks the element: name, namespace, type, to. NULL when acceptable, else the error text. */
static const char *check_stanza(const struct xmpp_stanza *st)
{
    const char *name = xmpp_stanza_name(st);
    const char *ns = xmpp_stanza_ns(st);
    if (ns == NULL || strcmp(ns, XMPP_NS_CLIENT) != 0)
        return "stanza must be in the jabber:client namespace";
    if (strcmp(name, "message") != 0 && strcmp(name, "presence") != 0 && strcmp(name, "iq") != 0)
        return "stanza must be message, presence or iq";
    const char *to = xmpp_stanza_attr(st, "to");
    if (to != NULL) {
        struct xmpp_jid jid;
        if (xmpp_jid_parse(&jid, to) < 0)
            return "invalid to address";
        xmpp_jid_cleanup(&jid);
    }
    if (strcmp(name, "iq") == 0) {
        const char *type = xmpp_stanza_attr(st, "type");
        if (type == NULL || (strcmp(type, "get") != 0 && strcmp(type, "set") != 0 &&
                             strcmp(type, "result") != 0 && strcmp(type, "error") != 0))
            return "iq type must be get, set, result or error";
        const char *id = xmpp_stanza_attr(st, "id");
        if (id == NULL || id[0] == '\0')
            return "iq needs an id";
        if ((strcmp(type, "get") == 0 || strcmp(type, "set") == 0) &&
            xmpp_stanza_first_child(st) == NULL)
            return "iq get/set needs one payload element";
    }
    return NULL;
}

/* POST /xmpp — body: one stanza. */
static void handle_xmpp(struct http_req *req, const char *user, struct session *s,
                        struct api_deps *d)
{
    (void)user;
    session_touch(s);
    size_t len;
    const char *body = http_req_body(req, &len);
    if (len == 0) {
        api__error(req, 400, "empty stanza");
        return;
    }
    if (len > d->max_raw_stanza) {
        api__error(req, 413, "stanza too large");
        return;
    }
    if (memchr(body, '\0', len) != NULL || !api__xml_text_valid(body, len)) {
        api__error(req, 400, "stanza is not valid UTF-8 XML text");
        return;
    }
    int err = 0;
    struct xmpp_stanza *st = xmpp_stanza_parse(body, len, XMPP_NS_CLIENT, d->max_raw_stanza, &err);
    if (st == NULL) {
        api__error(req, err == -EMSGSIZE ? 413 : 400, "stanza is not well-formed XML");
        return;
    }
    const char *bad = check_stanza(st);
    if (bad != NULL) {
        xmpp_stanza_unref(st);
        api__error(req, 400, bad);
        return;
    }
    xmpp_stanza_set_attr(st, "from", NULL); /* the server stamps the session's full JID */
    const char *name = xmpp_stanza_name(st);
    const char *type = xmpp_stanza_attr(st, "type");
    if (strcmp(name, "iq") == 0 && (strcmp(type, "get") == 0 || strcmp(type, "set") == 0)) {
        struct raw_iq *q = mem_calloc(1, sizeof(*q));
        q->id = mem_strdup(xmpp_stanza_attr(st, "id"));
        log_debug("raw_iq", "user=%s type=%s", session_username(s), type);
        api__iq(req, s, st, 0, API_IQ_ERRORS, iq_answered, raw_iq_free, q);
        xmpp_stanza_unref(st);
        return;
    }
    bool message = strcmp(name, "message") == 0;
    const char *kind = message ? "message" : strcmp(name, "iq") == 0 ? "iq" : "presence";
    int rc = session_send(s, st);
    if (rc == 0 && message)
        session_echo_sent(s, st); /* every tab shows what this one sent (bodies only) */
    xmpp_stanza_unref(st);
    if (rc < 0) {
        api__error_errno(req, rc, "send failed");
        return;
    }
    log_debug("raw_sent", "user=%s name=%s len=%zu", session_username(s), kind, len);
    http_reply_empty(req, 200);
}

int api__xmpp_raw_register(struct api_deps *d)
{
    return api__route_user(d, HTTP_POST, API_PREFIX "/xmpp", handle_xmpp, API_NEED_SESSION);
}
