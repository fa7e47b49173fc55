/* meet_api.c: K8 GET /meet/{service}/{id}: an online meeting URL (contract §1.4 K8, §6).
 * When the XMPP domain advertises XEP-0483 (feature urn:xmpp:http:online-meetings:initiate:0 and
 * the service's urn:xmpp:http:online-meetings#<type> when it lists any; checked with disco#info
 * and remembered for 10 minutes) the server is asked for it (<invite><url>); otherwise
 * the URL comes from the configured templates (meet.jitsi_url, meet.galene_url,
 * meet.url_template); with neither the answer is 501. */
#include "api/api_int.h"
#include "api/xmpp_api.h"

#include <stdio.h>
#include <string.h>

#include "core/buf.h"
#include "core/mem.h"
#include "core/tick.h"
#include "session/session.h"
#include "xmpp/stanza.h"

#define LOG_MODULE "api"
#include "core/log.h"

#define NS_DISCO_INFO    "http://jabber.org/protocol/disco#info"
#define NS_MEET          "urn:xmpp:http:online-meetings:0"
#define NS_MEET_INITIATE "urn:xmpp:http:online-meetings:initiate:0"
#define NS_MEET_TYPE     "urn:xmpp:http:online-meetings#"
#define MEET_TTL_MS      (10 * 60 * 1000)
#define MEET_ID_MAX      256
#define MEET_URL_MAX     4096

struct api_meet {
    bool initiate;       /* urn:xmpp:http:online-meetings:initiate:0 */
    bool jitsi, galene;  /* urn:xmpp:http:online-meetings#<type> */
    uint64_t checked_ms; /* 0: never */
};

/* Whether the server initiates meetings of service: the initiate feature, and that service's
 * feature, or no service feature at all (then every type is assumed). */
static bool server_offers(const struct api_meet *c, const char *service)
{
    if (!c->initiate)
        return false;
    if (!c->jitsi && !c->galene)
        return true;
    return strcmp(service, "jitsi") == 0 ? c->jitsi : c->galene;
}

struct meet {
    struct api_deps *d;
    char service[8];
    char *id;
};

static void meet_free(void *p)
{
    struct meet *m = p;
    mem_free(m->id);
    mem_free(m);
}

/* Appends s percent-encoded (RFC 3986 unreserved characters kept). */
static void append_encoded(struct buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '.' || *p == '_' || *p == '~') {
            buf_append(b, (const char *)p, 1);
        } else {
            char e[3] = { '%', hex[*p >> 4], hex[*p & 15] };
            buf_append(b, e, 3);
        }
    }
}

/* The template's URL for service and id, or NULL when none is configured. mem_free. */
static char *template_url(const struct api_deps *d, const char *service, const char *id)
{
    const char *t = strcmp(service, "jitsi") == 0 ? d->meet_jitsi_url : d->meet_galene_url;
    if (t == NULL || t[0] == '\0')
        t = d->meet_url_template;
    if (t == NULL || t[0] == '\0')
        return NULL;
    struct buf b;
    buf_init(&b, MEET_URL_MAX);
    for (const char *p = t; *p;) {
        if (strncmp(p, "{id}", 4) == 0) {
            append_encoded(&b, id);
            p += 4;
        } else if (strncmp(p, "{service}", 9) == 0) {
            buf_append(&b, service, strlen(service));
            p += 9;
        } else {
            buf_append(&b, p, 1);
            p++;
        }
    }
    char *out = buf_steal(&b);
    return out;
}

static void reply_url(struct http_req *req, const char *url)
{
    json_t *out = json_object();
    json_object_set_new(out, "url", json_string(url));
    http_reply_json(req, 200, out);
}

static void answer_from_template(struct http_req *req, struct meet *m)
{
    char *url = template_url(m->d, m->service, m->id);
    if (url == NULL)
        api__error(req, 501,
                   "online meetings not available: the server offers no XEP-0483 service and no "
                   "meet.url_template is configured");
    else
        reply_url(req, url);
    mem_free(url);
    meet_free(m);
}

/* The URL in a XEP-0483 answer: <invite><url>, else <initiate><url>, else a XEP-0066 <url>
 * (the reference's plugin handlers). NULL when none. mem_free. */
static char *reply_meeting_url(const struct xmpp_stanza *reply)
{
    const struct xmpp_stanza *q = xmpp_stanza_first_child(reply);
    static const char *const wrappers[] = { "invite", "initiate" };
    for (size_t i = 0; q != NULL && i < 2; i++) {
        const struct xmpp_stanza *w = xmpp_stanza_child(q, wrappers[i], NULL);
        if (w == NULL)
            continue;
        const char *attr = xmpp_stanza_attr(w, "url");
        if (attr != NULL)
            return mem_strdup(attr);
        char *t = xmpp_stanza_child_text(w, "url", NULL);
        if (t != NULL)
            return t;
    }
    if (q != NULL) {
        char *t = xmpp_stanza_child_text(q, "url", NULL);
        if (t != NULL)
            return t;
    }
    return NULL;
}

static void meeting_answered(struct http_req *req, struct session *s,
                             const struct xmpp_stanza *reply, void *data)
{
    (void)s;
    struct meet *m = data;
    char *url = reply_meeting_url(reply);
    if (url != NULL &&
        strncmp(url, "web+", 4) == 0) { /* a protocol handler: web+jitsi:https://... */
        char *colon = strchr(url, ':');
        if (colon != NULL && strncmp(colon + 1, "http", 4) == 0)
            memmove(url, colon + 1, strlen(colon + 1) + 1);
    }
    size_t len = url ? strlen(url) : 0;
    if (url == NULL || len == 0 || len > MEET_URL_MAX || !api__xml_text_valid(url, len) ||
        (strncmp(url, "https://", 8) != 0 && strncmp(url, "http://", 7) != 0))
        api__error(req, 502, "meeting service sent no usable URL");
    else
        reply_url(req, url);
    mem_free(url);
    meet_free(m);
}

static void ask_server(struct http_req *req, struct session *s, struct meet *m)
{
    struct xmpp_stanza *q;
    struct xmpp_stanza *iq = api__iq_new("get", m->d->domain, "query", NS_MEET, &q);
    xmpp_stanza_set_attr(q, "type", m->service);
    xmpp_stanza_set_attr(q, "id", m->id);
    api__iq(req, s, iq, 0, 0, meeting_answered, meet_free, m);
    xmpp_stanza_unref(iq);
}

static void info_answered(struct http_req *req, struct session *s, const struct xmpp_stanza *reply,
                          void *data)
{
    struct meet *m = data;
    struct api_meet *c = m->d->state->meet;
    const char *type = xmpp_stanza_attr(reply, "type");
    const struct xmpp_stanza *q = xmpp_stanza_child(reply, "query", NS_DISCO_INFO);
    c->initiate = c->jitsi = c->galene = false;
    if (type != NULL && strcmp(type, "result") == 0 && q != NULL) {
        for (const struct xmpp_stanza *f = xmpp_stanza_first_child(q); f; f = xmpp_stanza_next(f)) {
            const char *var = xmpp_stanza_attr(f, "var");
            if (strcmp(xmpp_stanza_name(f), "feature") != 0 || var == NULL)
                continue;
            if (strcmp(var, NS_MEET_INITIATE) == 0)
                c->initiate = true;
            else if (strcmp(var, NS_MEET_TYPE "jitsi") == 0)
                c->jitsi = true;
            else if (strcmp(var, NS_MEET_TYPE "galene") == 0)
                c->galene = true;
        }
    }
    /* only an answer is remembered: an error (timeout, server trouble) is asked again next
     * time instead of hiding XEP-0483 from every user for MEET_TTL_MS */
    bool answered = type != NULL && strcmp(type, "result") == 0;
    c->checked_ms = answered ? tick_now(m->d->tick) : 0;
    if (answered && c->checked_ms == 0)
        c->checked_ms = 1;
    log_info("meet_discovered", "xep0483=%d jitsi=%d galene=%d", c->initiate, c->jitsi, c->galene);
    if (server_offers(c, m->service))
        ask_server(req, s, m);
    else
        answer_from_template(req, m);
}

/* GET /meet/{service}/{id} */
static void handle_meet(struct http_req *req, const char *user, struct session *s,
                        struct api_deps *d)
{
    (void)user;
    const char *service = http_req_param(req, "service");
    const char *id = http_req_param(req, "id");
    if (service == NULL || (strcmp(service, "jitsi") != 0 && strcmp(service, "galene") != 0)) {
        api__error(req, 400, "unsupported meeting service (jitsi or galene)");
        return;
    }
    size_t il = id ? strlen(id) : 0;
    if (il == 0 || il > MEET_ID_MAX || !api__xml_text_valid(id, il)) {
        api__error(req, 400, "invalid meeting id");
        return;
    }
    session_touch(s);
    struct meet *m = mem_calloc(1, sizeof(*m));
    m->d = d;
    snprintf(m->service, sizeof(m->service), "%s", service);
    m->id = mem_strdup(id);
    if (d->state->meet == NULL)
        d->state->meet = mem_calloc(1, sizeof(*d->state->meet));
    struct api_meet *c = d->state->meet;
    if (c->checked_ms != 0 && tick_now(d->tick) - c->checked_ms < MEET_TTL_MS) {
        if (server_offers(c, m->service))
            ask_server(req, s, m);
        else
            answer_from_template(req, m);
        return;
    }
    struct xmpp_stanza *iq = api__iq_new("get", d->domain, "query", NS_DISCO_INFO, NULL);
    api__iq(req, s, iq, 0, API_IQ_ERRORS, info_answered, meet_free, m);
    xmpp_stanza_unref(iq);
}

int api__meet_register(struct api_deps *d)
{
    return api__route_user(d, HTTP_GET, API_PREFIX "/meet/{service}/{id}", handle_meet,
                           API_NEED_SESSION);
}

void api__meet_free(struct api_deps *d)
{
    if (d->state != NULL) {
        mem_free(d->state->meet);
        d->state->meet = NULL;
    }
}
