/* stream_neg.c: what the stream does with each parsed element: stream features, STARTTLS,
 * SASL hand-off, XEP-0198 resumption or resource binding (RFC 6120 §7), legacy session,
 * XEP-0198 enable (stream_sm.c does the rest), stream errors, and delivery of stanzas once
 * ready. */
#define LOG_MODULE "xmpp"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/mem.h"
#include "xmpp/stanza.h"
#include "xmpp/xmpp_int.h"

#define BIND_ID    "sg-bind"
#define SESSION_ID "sg-sess"

const char *xmpp__state_name(enum xmpp__state st)
{
    static const char *const names[] = {
        "resolve", "connect",  "tls_direct", "stream",  "starttls", "tls_handshake",
        "sasl",    "register", "bind",       "session", "sm",       "resume",
        "ready",   "closing",  "done",
    };
    return (unsigned)st < sizeof(names) / sizeof(names[0]) ? names[st] : "?";
}

static bool is(const struct xmpp_stanza *st, const char *name, const char *ns)
{
    const char *sns = xmpp_stanza_ns(st);
    return strcmp(xmpp_stanza_name(st), name) == 0 && sns != NULL && strcmp(sns, ns) == 0;
}

static bool is_stanza(const struct xmpp_stanza *st)
{
    const char *n = xmpp_stanza_name(st);
    const char *ns = xmpp_stanza_ns(st);
    return ns != NULL && strcmp(ns, XMPP_NS_CLIENT) == 0 &&
           (strcmp(n, "message") == 0 || strcmp(n, "presence") == 0 || strcmp(n, "iq") == 0);
}

static void write_or_fail(struct xmpp_stream *s, const char *xml)
{
    if (xmpp__writes(s, xml) < 0)
        xmpp__finish(s, -ECONNRESET, "write failed", false);
}

static void send_stanza(struct xmpp_stream *s, struct xmpp_stanza *st)
{
    char *x = xmpp_stanza_to_string(st);
    write_or_fail(s, x);
    mem_free(x);
    xmpp_stanza_unref(st);
}

static void after_session(struct xmpp_stream *s)
{
    if (s->want_sm && s->f_sm) {
        xmpp__sm_enable(s);
        return;
    }
    xmpp__ready(s);
}

static void send_bind(struct xmpp_stream *s)
{
    struct xmpp_stanza *iq = xmpp_stanza_new("iq", NULL);
    xmpp_stanza_set_attr(iq, "type", "set");
    xmpp_stanza_set_attr(iq, "id", BIND_ID);
    struct xmpp_stanza *b = xmpp_stanza_add_child(iq, "bind", XMPP__NS_BIND);
    if (s->resource != NULL)
        xmpp_stanza_add_text_child(b, "resource", NULL, s->resource);
    s->state = XMPP__ST_BIND;
    send_stanza(s, iq);
}

static void on_features(struct xmpp_stream *s, const struct xmpp_stanza *f)
{
    bool want_tls = s->tls_mode == XMPP_TLS_REQUIRED || s->tls_mode == XMPP_TLS_STARTTLS;
    if (!s->tls_active && want_tls && !s->authenticated) {
        if (xmpp_stanza_child(f, "starttls", XMPP__NS_TLS) != NULL) {
            s->state = XMPP__ST_STARTTLS;
            write_or_fail(s, "<starttls xmlns='" XMPP__NS_TLS "'/>");
            return;
        }
        if (s->tls_mode == XMPP_TLS_REQUIRED) {
            log_warn("tls_fail", "jid=%s host=%s msg=\"STARTTLS required but not offered\"",
                     s->logjid, s->host);
            xmpp__finish(s, -EPROTO, "STARTTLS not offered", false);
            return;
        }
        log_warn("tls_plain",
                 "jid=%s host=%s msg=\"server offers no STARTTLS; continuing "
                 "without encryption\"",
                 s->logjid, s->host);
    }
    if (s->reg_mode) {
        xmpp__reg_features(s, f);
        return;
    }
    if (!s->authenticated) {
        xmpp__sasl_start(s, f);
        return;
    }
    if (xmpp_stanza_child(f, "bind", XMPP__NS_BIND) == NULL) {
        xmpp__finish(s, -EPROTO, "no resource binding offered", false);
        return;
    }
    xmpp__features_record(s, f);
    s->f_sm = xmpp_stanza_child(f, "sm", XMPP__NS_SM) != NULL;
    struct xmpp_stanza *sess = xmpp_stanza_child(f, "session", XMPP__NS_SESSION);
    s->f_session = sess != NULL && xmpp_stanza_child(sess, "optional", NULL) == NULL;
    if (s->resume_in != NULL && xmpp__sm_try_resume(s))
        return; /* XEP-0198 §5: resume instead of binding */
    send_bind(s);
}

static const char *error_condition(const struct xmpp_stanza *st)
{
    struct xmpp_stanza *e = xmpp_stanza_child(st, "error", NULL);
    struct xmpp_stanza *c = e ? xmpp_stanza_child(e, NULL, XMPP_NS_STANZAS) : NULL;
    return c ? xmpp_stanza_name(c) : "unknown";
}

static void on_bind_result(struct xmpp_stream *s, const struct xmpp_stanza *iq)
{
    const char *type = xmpp_stanza_attr(iq, "type");
    struct xmpp_stanza *b = xmpp_stanza_child(iq, "bind", XMPP__NS_BIND);
    char *jid = b ? xmpp_stanza_child_text(b, "jid", NULL) : NULL;
    if (type == NULL || strcmp(type, "result") != 0 || jid == NULL || jid[0] == '\0') {
        mem_free(jid);
        log_warn("bind_fail", "jid=%s condition=%s", s->logjid, error_condition(iq));
        xmpp__finish(s, -EPROTO, "bind failed", false);
        return;
    }
    s->jid = jid;
    if (s->f_session) {
        s->state = XMPP__ST_SESSION;
        write_or_fail(s, "<iq type='set' id='" SESSION_ID "'><session xmlns='" XMPP__NS_SESSION
                         "'/></iq>");
        return;
    }
    after_session(s);
}

static void keep_early(struct xmpp_stream *s, struct xmpp_stanza *st)
{
    if (s->n_early == XMPP__MAX_EARLY) {
        log_warn("drop", "jid=%s msg=\"too many stanzas before ready\"", s->logjid);
        return;
    }
    s->early[s->n_early++] = xmpp_stanza_ref(st);
}

static void dispatch(struct xmpp_stream *s, struct xmpp_stanza *st)
{
    switch (s->state) {
    case XMPP__ST_STREAM:
        if (is(st, "features", XMPP_NS_STREAMS))
            on_features(s, st);
        else
            xmpp__finish(s, -EPROTO, "expected stream features", false);
        return;
    case XMPP__ST_STARTTLS:
        if (is(st, "proceed", XMPP__NS_TLS)) {
            xmpp__parser_restart(s->parser);
            int rc = xmpp__tls_start(s);
            if (rc < 0)
                xmpp__finish(s, rc, "tls setup", false);
        } else {
            xmpp__finish(s, -EPROTO, "STARTTLS refused", false);
        }
        return;
    case XMPP__ST_SASL:
        xmpp__sasl_element(s, st);
        return;
    default:
        break;
    }
    bool sm_ns = xmpp_stanza_ns(st) && strcmp(xmpp_stanza_ns(st), XMPP__NS_SM) == 0;
    if (s->state == XMPP__ST_REGISTER && is(st, "iq", XMPP_NS_CLIENT) &&
        strcmp(xmpp_stanza_attr(st, "id") ? xmpp_stanza_attr(st, "id") : "", XMPP__REG_ID) == 0) {
        xmpp__reg_result(s, st);
    } else if (s->state == XMPP__ST_BIND && is(st, "iq", XMPP_NS_CLIENT) &&
               strcmp(xmpp_stanza_attr(st, "id") ? xmpp_stanza_attr(st, "id") : "", BIND_ID) == 0) {
        on_bind_result(s, st);
    } else if (s->state == XMPP__ST_SESSION && is(st, "iq", XMPP_NS_CLIENT) &&
               strcmp(xmpp_stanza_attr(st, "id") ? xmpp_stanza_attr(st, "id") : "", SESSION_ID) ==
                   0) {
        after_session(s); /* an error here is harmless: the session is obsolete (RFC 6121) */
    } else if (s->state == XMPP__ST_SM && sm_ns &&
               (is(st, "enabled", XMPP__NS_SM) || is(st, "failed", XMPP__NS_SM))) {
        xmpp__sm_enable_answer(s, st);
    } else if (s->state == XMPP__ST_RESUME && sm_ns &&
               (is(st, "resumed", XMPP__NS_SM) || is(st, "failed", XMPP__NS_SM))) {
        xmpp__sm_resume_answer(s, st, send_bind);
    } else if (sm_ns && s->sm_enabled) {
        xmpp__sm_element(s, st);
    } else if (is_stanza(st)) {
        if (s->sm_enabled)
            s->sm->h_in++;
        if (s->state == XMPP__ST_READY || s->state == XMPP__ST_CLOSING) {
            if (s->cbs.on_stanza)
                s->cbs.on_stanza(s, st, s->data);
        } else {
            keep_early(s, st);
        }
    } else {
        log_debug("ignored", "jid=%s element=%s state=%s", s->logjid, xmpp_stanza_name(st),
                  xmpp__state_name(s->state));
    }
}

static void neg_open(void *data, struct xmpp_stanza *hdr)
{
    struct xmpp_stream *s = data;
    const char *v = xmpp_stanza_attr(hdr, "version");
    if (v == NULL || strtol(v, NULL, 10) < 1) {
        xmpp__finish(s, -EPROTO, "server stream without version 1.0", false);
        xmpp__parser_stop(s->parser);
    }
}

static void neg_element(void *data, struct xmpp_stanza *st)
{
    struct xmpp_stream *s = data;
    if (xmpp__gone(s)) {
        xmpp__parser_stop(s->parser);
        return;
    }
    if (log__level >= LOG_LEVEL_DEBUG) {
        char *red = xmpp_stanza_redacted(st);
        log_debug("recv", "jid=%s state=%s xml=\"%s\"", s->logjid, xmpp__state_name(s->state), red);
        mem_free(red);
    }
    if (is(st, "error", XMPP_NS_STREAMS)) {
        struct xmpp_stanza *c = xmpp_stanza_child(st, NULL, XMPP__NS_SERR);
        const char *cond = c ? xmpp_stanza_name(c) : "undefined-condition";
        char reason[64];
        snprintf(reason, sizeof(reason), "%s", cond);
        log_warn("stream_error", "jid=%s host=%s state=%s condition=%s", s->logjid, s->host,
                 xmpp__state_name(s->state), reason);
        xmpp__finish(s, -EPROTO, reason, false);
    } else {
        dispatch(s, st);
    }
    if (xmpp__gone(s))
        xmpp__parser_stop(s->parser);
}

static void neg_close(void *data)
{
    struct xmpp_stream *s = data;
    if (!xmpp__gone(s)) {
        if (s->state == XMPP__ST_CLOSING)
            xmpp__finish(s, 0, NULL, false);
        else
            xmpp__finish(s, -ECONNRESET, "stream closed by server", false);
    }
    xmpp__parser_stop(s->parser);
}

const struct xmpp__parser_cbs xmpp__neg_cbs = {
    .on_open = neg_open,
    .on_element = neg_element,
    .on_close = neg_close,
};
