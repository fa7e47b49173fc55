/* session_sync.c: keeping a user's tabs and other clients in step. XEP-0280 carbons (enabled
 * after bind when the server offers them, so messages the user's other clients send or receive
 * reach the tabs; events/ unwraps them), the echo of messages sent through the gateway, XEP-0352
 * client state (inactive while no sink is attached) and the per-tab logout. */
#include "session/session_int.h"

#include <errno.h>
#include <string.h>

#include "core/mem.h"
#include "xmpp/stanza.h"

#define LOG_MODULE "session"
#include "core/log.h"

#define NS_DISCO_INFO   "http://jabber.org/protocol/disco#info"
#define NS_CARBONS      "urn:xmpp:carbons:2"
#define NS_CSI          "urn:xmpp:csi:0"
#define SYNC_TIMEOUT_MS 5000 /* disco#info and carbons enable hold the login no longer */

/* ---- carbons ---- */

static bool has_feature(const struct xmpp_stanza *query, const char *var)
{
    for (struct xmpp_stanza *f = xmpp_stanza_first_child(query); f; f = xmpp_stanza_next(f)) {
        const char *v = xmpp_stanza_attr(f, "var");
        if (strcmp(xmpp_stanza_name(f), "feature") == 0 && v != NULL && strcmp(v, var) == 0)
            return true;
    }
    return false;
}

static bool is_result(const struct xmpp_stanza *reply)
{
    const char *type = xmpp_stanza_attr(reply, "type");
    return type != NULL && strcmp(type, "result") == 0;
}

static void on_carbons_enabled(struct session *s, int status, const struct xmpp_stanza *reply,
                               void *data)
{
    (void)data;
    if (status == -ECANCELED)
        return;
    s->carbons = status == 0 && is_result(reply);
    if (!s->carbons)
        log_info("carbons_refused", "jid=%s err=%s", s->bare,
                 status != 0 ? log_errname(status) : "iq-error");
    session__setup_done(s);
}

static void on_server_info(struct session *s, int status, const struct xmpp_stanza *reply,
                           void *data)
{
    (void)data;
    if (status == -ECANCELED)
        return;
    const struct xmpp_stanza *q =
        status == 0 && is_result(reply) ? xmpp_stanza_child(reply, "query", NS_DISCO_INFO) : NULL;
    if (q == NULL || !has_feature(q, NS_CARBONS)) {
        log_debug("carbons_unavailable", "jid=%s", s->bare);
        session__setup_done(s);
        return;
    }
    struct xmpp_stanza *iq = xmpp_stanza_new("iq", XMPP_NS_CLIENT);
    xmpp_stanza_set_attr(iq, "type", "set");
    xmpp_stanza_add_child(iq, "enable", NS_CARBONS);
    if (session_send_iq(s, iq, SYNC_TIMEOUT_MS, on_carbons_enabled, NULL) < 0)
        session__setup_done(s);
    xmpp_stanza_unref(iq);
}

void session__sync_start(struct session *s)
{
    s->carbons = false;
    s->csi_inactive = false; /* a new stream starts active (XEP-0352 §4) */
    struct xmpp_stanza *iq = xmpp_stanza_new("iq", XMPP_NS_CLIENT);
    xmpp_stanza_set_attr(iq, "type", "get");
    xmpp_stanza_set_attr(iq, "to", s->mgr->domain);
    xmpp_stanza_add_child(iq, "query", NS_DISCO_INFO);
    if (session_send_iq(s, iq, SYNC_TIMEOUT_MS, on_server_info, NULL) > 0)
        s->setup_pending++;
    xmpp_stanza_unref(iq);
}

/* ---- own messages ---- */

void session_echo_sent(struct session *s, const struct xmpp_stanza *msg)
{
    json_t *p = events_sent_message(msg, session_jid(s));
    if (p != NULL)
        events_log_push(s->log, "chatapi.chat", p);
}

/* ---- client state indication ---- */

void session__csi_update(struct session *s)
{
    if (s->state != SESSION_ONLINE || s->stream == NULL ||
        !xmpp_stream_has_feature(s->stream, "csi", NS_CSI))
        return;
    bool inactive = s->n_sinks == 0;
    if (inactive == s->csi_inactive)
        return;
    struct xmpp_stanza *st = xmpp_stanza_new(inactive ? "inactive" : "active", NS_CSI);
    int rc = xmpp_stream_send(s->stream, st);
    xmpp_stanza_unref(st);
    if (rc < 0) {
        log_debug("csi_failed", "jid=%s err=%s", s->bare, log_errname(rc));
        return;
    }
    s->csi_inactive = inactive;
    log_debug("csi", "jid=%s state=%s sinks=%zu", s->bare, inactive ? "inactive" : "active",
              s->n_sinks);
}

/* ---- tabs ---- */

void session_sink_set_tag(struct session *s, struct events_sink *sink, const char *tag)
{
    for (struct session_sinkref *r = s->sinks; r; r = r->next) {
        if (r->sink == sink) {
            mem_free(r->tag);
            r->tag = tag != NULL && *tag != '\0' ? mem_strdup(tag) : NULL;
            return;
        }
    }
}

size_t session_logout_tab(struct session *s, const char *tag)
{
    if (s->state == SESSION_CLOSING)
        return 0;
    size_t closed = 0;
    struct session_sinkref **pp = &s->sinks;
    while (*pp) {
        struct session_sinkref *r = *pp;
        if (tag == NULL || *tag == '\0' || r->tag == NULL || strcmp(r->tag, tag) != 0) {
            pp = &r->next;
            continue;
        }
        *pp = r->next;
        s->n_sinks--;
        closed++;
        json_t *p = json_object();
        json_object_set_new(p, "reason", json_string("logout"));
        events_log_send_to(s->log, r->sink, "onDisconnect", p);
        events_log_detach(s->log, r->sink);
        r->closed(s, "logout", r->data);
        mem_free(r->tag);
        mem_free(r);
    }
    log_info("logout_tab", "jid=%s closed=%zu sinks=%zu", s->bare, closed, s->n_sinks);
    if (s->n_sinks == 0) {
        session_logout(s); /* that was the last tab: as with session.logout = all */
        return 0;
    }
    return s->n_sinks;
}
