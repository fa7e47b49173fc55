/* session.c: the registry, login, lifecycle, sinks and expiry of user sessions. Reconnection
 * after an upstream loss is in session_reconnect.c, IQ waiters and protocol duties in
 * session_iq.c. */
#include "session/session_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "core/mem.h"
#include "core/rnd.h"
#include "xmpp/jid.h"
#include "xmpp/stanza.h"

#define LOG_MODULE "session"
#include "core/log.h"

#define VCARD_TIMEOUT_MS   5000
#define SHUTDOWN_GRACE_MS  3000
#define LOGIN_MAX_ATTEMPTS 3

static void login_start(struct session_login *l);

bool session__alive(const struct session *s)
{
    return s->state == SESSION_ONLINE || s->state == SESSION_RECONNECTING;
}

/* ---- deferred calls ---- */

static void session_free(struct session *s);

static void defer_run(uv_idle_t *h)
{
    struct session_mgr *mgr = container_of(h, struct session_mgr, defer_idle);
    struct defer_item *list = mgr->defer_head;
    mgr->defer_head = mgr->defer_tail = NULL;
    while (list) {
        struct defer_item *d = list;
        list = d->next;
        d->fn(d->arg);
        mem_free(d);
    }
    /* sessions marked for freeing go here, never through a queued pointer, so no session
     * can be freed twice */
    if (mgr->reap_pending) {
        mgr->reap_pending = false;
        for (struct session *s = mgr->all, *next; s; s = next) {
            next = s->next;
            if (s->reap)
                session_free(s);
        }
    }
    if (mgr->defer_head == NULL && !mgr->reap_pending && !uv_is_closing((uv_handle_t *)h))
        uv_idle_stop(&mgr->defer_idle);
}

void session__defer(struct session_mgr *mgr, void (*fn)(void *arg), void *arg)
{
    struct defer_item *d = mem_calloc(1, sizeof(*d));
    d->fn = fn;
    d->arg = arg;
    if (mgr->defer_tail)
        mgr->defer_tail->next = d;
    else
        mgr->defer_head = d;
    mgr->defer_tail = d;
    uv_idle_start(&mgr->defer_idle, defer_run);
}

/* ---- logins ---- */

static void login_free(struct session_login *l)
{
    if (l->password) {
        OPENSSL_cleanse(l->password, strlen(l->password));
        mem_free(l->password);
    }
    if (l->scram) {
        OPENSSL_cleanse(l->scram, sizeof(*l->scram));
        mem_free(l->scram);
    }
    if (l->fast) {
        OPENSSL_cleanse(l->fast, sizeof(*l->fast));
        mem_free(l->fast);
    }
    if (l->verify)
        xmpp_stream_free(l->verify);
    mem_free(l->username);
    mem_free(l);
}

static void login_unwait(struct session_login *l)
{
    struct session *s = l->waiting_on;
    if (s == NULL)
        return;
    for (struct session_login **pp = &s->waiters; *pp; pp = &(*pp)->next) {
        if (*pp == l) {
            *pp = l->next;
            break;
        }
    }
    if (s->opener == l)
        s->opener = NULL;
    l->waiting_on = NULL;
    l->next = NULL;
}

static void login_finish(struct session_login *l, int status, struct session *s)
{
    login_unwait(l);
    if (status != 0)
        log_info("login_failed", "user=%s err=%s", l->username, log_errname(status));
    if (l->cb != NULL) /* NULL: cancelled while a deferred failure was queued */
        l->cb(l->mgr, status, status == 0 ? s : NULL, l->data);
    login_free(l);
}

struct login_fail {
    struct session_login *l;
    int status;
};

static void login_fail_deferred(void *arg)
{
    struct login_fail *f = arg;
    struct session_login *l = f->l;
    int status = f->status;
    mem_free(f);
    l->fail_queued = false;
    if (status != 0 || l->cb == NULL) {
        login_finish(l, status != 0 ? status : -ECANCELED, NULL);
        return;
    }
    /* status 0: a trusted open found the session online; answer with it if it still is */
    struct session *s = map_get(l->mgr->by_user, l->username);
    if (s != NULL && session__alive(s))
        login_finish(l, 0, s);
    else
        login_start(l);
}

static void login_fail_later(struct session_login *l, int status)
{
    struct login_fail *f = mem_alloc(sizeof(*f));
    l->fail_queued = true;
    f->l = l;
    f->status = status;
    session__defer(l->mgr, login_fail_deferred, f);
}

void session_login_cancel(struct session_login *l)
{
    if (l == NULL)
        return;
    login_unwait(l);
    if (l->fail_queued) {
        /* the queued failure still references l: it frees l without calling back */
        l->cb = NULL;
        return;
    }
    login_free(l); /* also frees an auth-only stream: its callback will not run */
}

static void verify_on_ready(struct xmpp_stream *st, int status, void *data)
{
    struct session_login *l = data;
    if (status == 0 && l->cb != NULL)
        session__report_credential(l->mgr, l->username, st);
    xmpp_stream_free(l->verify);
    l->verify = NULL;
    if (l->cb == NULL) { /* cancelled */
        login_free(l);
        return;
    }
    if (status != 0) {
        login_finish(l, status, NULL);
        return;
    }
    struct session *s = map_get(l->mgr->by_user, l->username);
    if (s != NULL && session__alive(s)) {
        login_finish(l, 0, s);
        return;
    }
    login_start(l); /* the session went away meanwhile: open a new one */
}

static const struct xmpp_stream_cbs verify_cbs = { .on_ready = verify_on_ready };

static void login_opts(struct session_login *l, struct xmpp_stream_opts *o, const char *resource,
                       bool auth_only, char ua[37])
{
    struct session_cred cred = { .password = l->password, .scram = l->scram, .fast = l->fast };
    session__stream_opts(l->mgr, o, l->username, &cred, resource, auth_only, ua);
}

/* Verifies the password of a login for an online (or reconnecting) session with an auth-only
 * stream. */
static void login_verify(struct session_login *l)
{
    if (l->trusted) { /* authenticated by the caller: the live session is the answer */
        struct session *s = map_get(l->mgr->by_user, l->username);
        if (s != NULL && session__alive(s)) {
            login_finish(l, 0, s);
            return;
        }
    }
    struct xmpp_stream_opts o;
    char ua[37];
    login_opts(l, &o, NULL, true, ua);
    int rc = xmpp_stream_open(l->mgr->o.loop, &o, &verify_cbs, l, &l->verify);
    if (rc < 0)
        login_fail_later(l, rc);
}

/* ---- sessions ---- */

static void stream_on_ready(struct xmpp_stream *st, int status, void *data);

static const struct xmpp_stream_cbs session_cbs = {
    .on_ready = stream_on_ready,
    .on_stanza = session__stream_on_stanza,
    .on_closed = session__stream_on_closed,
};

static void session_free(struct session *s)
{
    struct session_mgr *mgr = s->mgr;
    if (s->prev)
        s->prev->next = s->next;
    else
        mgr->all = s->next;
    if (s->next)
        s->next->prev = s->prev;
    mgr->n_all--;
    if (map_get(mgr->by_user, s->username) == s)
        map_remove(mgr->by_user, s->username);
    session__reconnect_cleanup(s);
    session__roster_free(s);
    session__mam_free(s);
    events_log_free(s->log);
    mem_free(s->resource);
    mem_free(s->jid);
    mem_free(s->username);
    mem_free(s->bare);
    mem_free(s->name);
    mem_free(s->email);
    mem_free(s);
}

/* Frees s on a later loop iteration (its stream must be gone or going). */
static void session_free_later(struct session *s)
{
    s->reap = true;
    s->mgr->reap_pending = true;
    uv_idle_start(&s->mgr->defer_idle, defer_run);
}

static struct session *session_new(struct session_mgr *mgr, const char *username)
{
    struct session *s = mem_calloc(1, sizeof(*s));
    s->mgr = mgr;
    s->username = mem_strdup(username);
    size_t bl = strlen(username) + strlen(mgr->domain) + 2;
    s->bare = mem_alloc(bl);
    snprintf(s->bare, bl, "%s@%s", username, mgr->domain);
    s->state = SESSION_CONNECTING;
    s->log = events_log_new(mgr->o.ring_len);
    s->last_activity_ms = tick_now(mgr->o.tick);
    s->next = mgr->all;
    if (mgr->all)
        mgr->all->prev = s;
    mgr->all = s;
    mgr->n_all++;
    map_put(mgr->by_user, username, s);
    return s;
}

static void login_start(struct session_login *l)
{
    struct session_mgr *mgr = l->mgr;
    if (++l->attempts > LOGIN_MAX_ATTEMPTS || mgr->freeing) {
        login_fail_later(l, mgr->freeing ? -ECANCELED : -EAGAIN);
        return;
    }
    struct session *s = map_get(mgr->by_user, l->username);
    if (s != NULL && session__alive(s)) {
        if (l->trusted)
            login_fail_later(l, 0); /* answers with the session on the next turn */
        else
            login_verify(l);
        return;
    }
    if (s != NULL) { /* connecting: wait for it, then verify (or become the opener) */
        l->waiting_on = s;
        l->next = s->waiters;
        s->waiters = l;
        return;
    }
    if (map_count(mgr->by_user) >= mgr->o.max_sessions) {
        log_warn("session_limit", "user=%s max=%zu", l->username, mgr->o.max_sessions);
        login_fail_later(l, -EAGAIN);
        return;
    }
    if (l->password == NULL && l->scram == NULL && l->fast == NULL) {
        login_fail_later(l, -ENOKEY); /* nothing to open a session with */
        return;
    }
    s = session_new(mgr, l->username);
    char resource[64];
    char rnd[17];
    rnd_hex(rnd, 8);
    snprintf(resource, sizeof(resource), "%s%s", mgr->resource_prefix, rnd);
    s->resource = mem_strdup(resource);
    struct xmpp_stream_opts o;
    char ua[37];
    login_opts(l, &o, resource, false, ua);
    int rc = xmpp_stream_open(mgr->o.loop, &o, &session_cbs, s, &s->stream);
    if (rc < 0) {
        s->stream_done = true;
        s->state = SESSION_CLOSING;
        map_remove(mgr->by_user, s->username);
        session_free_later(s);
        login_fail_later(l, rc);
        return;
    }
    log_info("session_opening", "user=%s resource=%s", l->username, resource);
    l->waiting_on = s;
    l->next = s->waiters;
    s->waiters = l;
    s->opener = l;
}

static int login_new(struct session_mgr *mgr, const char *username, const struct session_cred *cred,
                     bool trusted, session_login_cb *cb, void *data, struct session_login **out)
{
    if (!xmpp_jid_local_valid(username) || cred == NULL)
        return -EINVAL;
    int n = (cred->password != NULL) + (cred->scram != NULL) + (cred->fast != NULL);
    if (n > 1 || (n == 0 && !trusted))
        return -EINVAL;
    struct session_login *l = mem_calloc(1, sizeof(*l));
    l->mgr = mgr;
    l->username = mem_strdup(username);
    l->trusted = trusted;
    if (cred->password)
        l->password = mem_strdup(cred->password);
    if (cred->scram) {
        l->scram = mem_alloc(sizeof(*l->scram));
        *l->scram = *cred->scram;
    }
    if (cred->fast) {
        l->fast = mem_alloc(sizeof(*l->fast));
        *l->fast = *cred->fast;
    }
    l->cb = cb;
    l->data = data;
    if (out)
        *out = l;
    login_start(l);
    return 0;
}

int session_register(struct session_mgr *mgr, const char *username, const char *password,
                     void (*cb)(int status, void *data), void *data, struct xmpp_register **out)
{
    if (!xmpp_jid_local_valid(username) || password == NULL || *password == '\0')
        return -EINVAL;
    struct session_cred cred = { .password = password };
    struct xmpp_stream_opts o;
    char ua[37];
    session__stream_opts(mgr, &o, username, &cred, NULL, false, ua);
    o.request_fast = false;
    return xmpp_register(mgr->o.loop, &o, cb, data, out);
}

int session_login(struct session_mgr *mgr, const char *username, const char *password,
                  session_login_cb *cb, void *data, struct session_login **out)
{
    struct session_cred cred = { .password = password };
    return login_new(mgr, username, &cred, false, cb, data, out);
}

int session_open(struct session_mgr *mgr, const char *username, const struct session_cred *cred,
                 session_login_cb *cb, void *data, struct session_login **out)
{
    return login_new(mgr, username, cred, true, cb, data, out);
}

/* The session is bound, presence sent and vCard known: answer the waiting logins. */
static void session_go_online(struct session *s)
{
    if (s->state != SESSION_CONNECTING)
        return;
    s->state = SESSION_ONLINE;
    log_info("session_online", "jid=%s name=%s carbons=%d", xmpp_stream_jid(s->stream),
             s->name ? s->name : "", s->carbons);
    session__csi_update(s); /* inactive until a sink attaches */
    while (s->waiters) {
        struct session_login *l = s->waiters;
        bool opener = l == s->opener;
        login_unwait(l);
        if (l->cb == NULL)
            login_free(l);
        else if (opener)
            login_finish(l, 0, s);
        else
            login_verify(l);
    }
}

static void on_vcard(struct session *s, int status, const struct xmpp_stanza *reply, void *data)
{
    (void)data;
    if (status == 0 && strcmp(xmpp_stanza_attr(reply, "type"), "result") == 0) {
        const struct xmpp_stanza *vc = xmpp_stanza_child(reply, "vCard", "vcard-temp");
        if (vc) {
            char *fn = xmpp_stanza_child_text(vc, "FN", NULL);
            const struct xmpp_stanza *em = xmpp_stanza_child(vc, "EMAIL", NULL);
            char *email = em ? xmpp_stanza_child_text(em, "USERID", NULL) : NULL;
            if (fn && *fn)
                s->name = mem_strdup(fn);
            if (email && *email)
                s->email = mem_strdup(email);
            mem_free(fn);
            mem_free(email);
        }
    }
    if (status != -ECANCELED)
        session__setup_done(s);
}

void session__setup_done(struct session *s)
{
    if (s->setup_pending > 0 && --s->setup_pending == 0)
        session_go_online(s);
}

static void on_roster(struct session *s, int status, const struct xmpp_stanza *reply, void *data)
{
    (void)data;
    session__roster_result(s, status, reply); /* the roster cache (session_roster.c) */
}

void session__announce(struct session *s)
{
    /* RFC 6121: roster first, then initial presence */
    struct xmpp_stanza *iq = xmpp_stanza_new("iq", XMPP_NS_CLIENT);
    xmpp_stanza_set_attr(iq, "type", "get");
    xmpp_stanza_add_child(iq, "query", "jabber:iq:roster");
    session_send_iq(s, iq, 0, on_roster, NULL);
    xmpp_stanza_unref(iq);

    struct xmpp_stanza *pres = session__roster_announce(s); /* the own presence last set */
    if (pres != NULL)
        session_send(s, pres);
    xmpp_stanza_unref(pres);
}

static void stream_on_ready(struct xmpp_stream *st, int status, void *data)
{
    struct session *s = data;
    (void)st;
    if (status != 0) {
        log_info("session_failed", "user=%s err=%s", s->username, log_errname(status));
        xmpp_stream_free(s->stream);
        s->stream = NULL;
        s->stream_done = true;
        s->state = SESSION_CLOSING;
        map_remove(s->mgr->by_user, s->username);
        /* the opener gets the error; other waiters try again with their own password */
        while (s->waiters) {
            struct session_login *l = s->waiters;
            bool opener = l == s->opener;
            login_unwait(l);
            if (l->cb == NULL)
                login_free(l);
            else if (opener)
                login_finish(l, status, NULL);
            else
                login_start(l);
        }
        session_free_later(s);
        return;
    }
    session__report_credential(s->mgr, s->username, s->stream);
    s->jid = mem_strdup(xmpp_stream_jid(s->stream));
    s->setup_pending = 1;   /* the vCard; session__sync_start adds its own step */
    session__announce(s);   /* roster, initial presence */
    session__sync_start(s); /* carbons, client state */
    /* vCard for onConnect's name/email */
    struct xmpp_stanza *iq = xmpp_stanza_new("iq", XMPP_NS_CLIENT);
    xmpp_stanza_set_attr(iq, "type", "get");
    xmpp_stanza_add_child(iq, "vCard", "vcard-temp");
    if (session_send_iq(s, iq, VCARD_TIMEOUT_MS, on_vcard, NULL) < 0)
        session__setup_done(s);
    xmpp_stanza_unref(iq);
}

void session__stream_on_stanza(struct xmpp_stream *st, struct xmpp_stanza *stanza, void *data)
{
    (void)st;
    session__on_stanza(data, stanza);
}

void session__stream_on_closed(struct xmpp_stream *st, int status, const char *reason, void *data)
{
    struct session *s = data;
    if (s->state != SESSION_CLOSING) {
        session__upstream_lost(s, st, status, reason); /* frees the stream */
        return;
    }
    xmpp_stream_free(s->stream);
    s->stream = NULL;
    s->stream_done = true;
    session_free_later(s);
}

/* Ends a session: sinks get onDisconnect and are closed, waiters fail, the stream closes
 * (politely when graceful), the API layer is told. The memory goes once the stream is gone. */
void session__end(struct session *s, const char *reason, bool graceful)
{
    if (s->state == SESSION_CLOSING)
        return;
    struct session_mgr *mgr = s->mgr;
    bool was_online = s->state == SESSION_ONLINE;
    s->state = SESSION_CLOSING;
    if (map_get(mgr->by_user, s->username) == s)
        map_remove(mgr->by_user, s->username);
    if (was_online && graceful)
        session__drain(s); /* what still waits goes out before the unavailable presence */
    size_t undelivered = session__reconnect_cleanup(s);
    log_info("session_end", "jid=%s reason=%s sinks=%zu undelivered=%zu", s->bare, reason,
             s->n_sinks, undelivered);

    json_t *p = json_object();
    json_object_set_new(p, "reason", json_string(reason));
    if (undelivered > 0) /* messages accepted while reconnecting, or never acknowledged */
        json_object_set_new(p, "undelivered", json_integer((json_int_t)undelivered));
    events_log_push(s->log, "onDisconnect", p);
    while (s->sinks) {
        struct session_sinkref *r = s->sinks;
        s->sinks = r->next;
        s->n_sinks--;
        events_log_detach(s->log, r->sink);
        r->closed(s, reason, r->data);
        mem_free(r->tag);
        mem_free(r);
    }
    session__fail_iqs(s, -ECANCELED);
    while (s->waiters) {
        struct session_login *l = s->waiters;
        login_unwait(l);
        if (l->cb == NULL)
            login_free(l);
        else
            login_start(l);
    }
    if (!s->stream_done && s->stream != NULL) {
        if (graceful && was_online) {
            struct xmpp_stanza *u = xmpp_stanza_new("presence", XMPP_NS_CLIENT);
            xmpp_stanza_set_attr(u, "type", "unavailable");
            xmpp_stream_send(s->stream, u);
            xmpp_stanza_unref(u);
            xmpp_stream_close(s->stream); /* on_closed frees */
        } else {
            xmpp_stream_free(s->stream);
            s->stream = NULL;
            s->stream_done = true;
            session_free_later(s);
        }
    } else {
        session_free_later(s);
    }
    if (mgr->o.on_session_end)
        mgr->o.on_session_end(s->username, reason, mgr->o.data);
}

void session_logout(struct session *s)
{
    session__end(s, "logout", true);
}

/* ---- sinks ---- */

struct events_sink *session_attach(struct session *s, events_deliver_cb *deliver,
                                   session_sink_closed_cb *closed, void *data)
{
    struct session_sinkref *r = mem_calloc(1, sizeof(*r));
    r->closed = closed;
    r->data = data;
    r->next = s->sinks;
    s->sinks = r;
    s->n_sinks++;
    s->linger_deadline_ms = 0;
    s->last_activity_ms = tick_now(s->mgr->o.tick);
    r->sink = events_log_attach(s->log, deliver, data);
    log_debug("attach", "jid=%s sinks=%zu", s->bare, s->n_sinks);
    session__csi_update(s);
    return r->sink;
}

void session_detach(struct session *s, struct events_sink *sink)
{
    for (struct session_sinkref **pp = &s->sinks; *pp; pp = &(*pp)->next) {
        if ((*pp)->sink != sink)
            continue;
        struct session_sinkref *r = *pp;
        *pp = r->next;
        s->n_sinks--;
        events_log_detach(s->log, sink);
        mem_free(r->tag);
        mem_free(r);
        break;
    }
    s->last_activity_ms = tick_now(s->mgr->o.tick);
    if (s->n_sinks == 0 && s->state != SESSION_CLOSING)
        s->linger_deadline_ms = s->last_activity_ms + s->mgr->o.linger_ms;
    log_debug("detach", "jid=%s sinks=%zu", s->bare, s->n_sinks);
    session__csi_update(s);
}

size_t session_sink_count(const struct session *s)
{
    return s->n_sinks;
}

/* ---- accessors ---- */

struct session *session_find(struct session_mgr *mgr, const char *username)
{
    struct session *s = map_get(mgr->by_user, username);
    return s && session__alive(s) ? s : NULL;
}

bool session_reconnecting(const struct session *s)
{
    return s->state == SESSION_RECONNECTING;
}

const char *session_username(const struct session *s)
{
    return s->username;
}

const char *session_jid(const struct session *s)
{
    return s->jid ? s->jid : s->bare;
}

const char *session_name(const struct session *s)
{
    return s->name;
}

const char *session_email(const struct session *s)
{
    return s->email;
}

void session_touch(struct session *s)
{
    s->last_activity_ms = tick_now(s->mgr->o.tick);
}

int session_send(struct session *s, const struct xmpp_stanza *st)
{
    if (s->state == SESSION_RECONNECTING || (s->state == SESSION_ONLINE && s->outq.n > 0))
        return session__queue(s, st); /* after what waits, in order */
    if (s->state == SESSION_CLOSING || s->stream == NULL)
        return -ENOTCONN;
    return xmpp_stream_send(s->stream, st);
}

/* ---- the manager ---- */

static void mgr_maybe_done(struct session_mgr *mgr);

static void mgr_on_tick(struct tick *t, uint64_t now_ms, void *data)
{
    struct session_mgr *mgr = data;
    (void)t;
    session__pace(mgr, now_ms);
    for (struct session *s = mgr->all, *next; s; s = next) {
        next = s->next;
        if (s->iqs)
            session__expire_iqs(s, now_ms);
        if (s->state == SESSION_RECONNECTING || s->outq.n > 0)
            session__reconnect_step(s, now_ms);
        if (s->state != SESSION_ONLINE)
            continue;
        if (s->n_sinks == 0 && s->linger_deadline_ms && now_ms >= s->linger_deadline_ms)
            session__end(s, "linger-expired", true);
        else if (s->n_sinks == 0 && now_ms - s->last_activity_ms >= mgr->o.idle_timeout_ms)
            session__end(s, "idle", true);
    }
    if (mgr->freeing)
        mgr_maybe_done(mgr);
}

struct session_mgr *session_mgr_new(const struct session_mgr_opts *opts)
{
    struct session_mgr *mgr = mem_calloc(1, sizeof(*mgr));
    mgr->o = *opts;
    mgr->host = mem_strdup(opts->host);
    mgr->domain = mem_strdup(opts->domain);
    mgr->resource_prefix = mem_strdup(opts->resource_prefix);
    if (opts->ua_seed != NULL && opts->ua_seed_len > 0) {
        EVP_Digest(opts->ua_seed, opts->ua_seed_len, mgr->ua_seed, NULL, EVP_sha256(), NULL);
        mgr->o.ua_seed = NULL; /* not kept: the digest above is what user_agent_id uses */
    }
    mgr->o.host = mgr->host;
    mgr->o.domain = mgr->domain;
    mgr->o.resource_prefix = mgr->resource_prefix;
    mgr->by_user = map_new();
    uv_idle_init(opts->loop, &mgr->defer_idle);
    mgr->tick_sub = tick_add(opts->tick, mgr_on_tick, mgr);
    return mgr;
}

size_t session_mgr_count(const struct session_mgr *mgr)
{
    return map_count(mgr->by_user);
}

static void mgr_idle_closed(uv_handle_t *h)
{
    struct session_mgr *mgr = container_of((uv_idle_t *)h, struct session_mgr, defer_idle);
    while (mgr->defer_head) { /* e.g. login failures queued during shutdown */
        struct defer_item *d = mgr->defer_head;
        mgr->defer_head = d->next;
        d->fn(d->arg);
        mem_free(d);
    }
    void (*done)(void *) = mgr->free_done;
    void *data = mgr->free_data;
    map_free(mgr->by_user);
    mem_free(mgr->host);
    mem_free(mgr->domain);
    mem_free(mgr->resource_prefix);
    mem_free(mgr);
    if (done)
        done(data);
}

static void mgr_finish(void *arg)
{
    struct session_mgr *mgr = arg;
    /* force-free whatever is still closing (grace period over) */
    while (mgr->all) {
        struct session *s = mgr->all;
        if (s->stream) {
            xmpp_stream_free(s->stream);
            s->stream = NULL;
        }
        session_free(s);
    }
    tick_remove(mgr->o.tick, mgr->tick_sub);
    uv_close((uv_handle_t *)&mgr->defer_idle, mgr_idle_closed);
}

static void mgr_maybe_done(struct session_mgr *mgr)
{
    if (mgr->free_deadline_ms == 0)
        return;
    bool busy = false;
    for (struct session *s = mgr->all; s; s = s->next)
        busy |= !s->stream_done;
    if (busy && tick_now(mgr->o.tick) < mgr->free_deadline_ms)
        return;
    mgr->free_deadline_ms = 0;
    session__defer(mgr, mgr_finish, mgr);
}

void session_mgr_free(struct session_mgr *mgr, void (*done)(void *data), void *data)
{
    mgr->freeing = true;
    mgr->free_done = done;
    mgr->free_data = data;
    for (struct session *s = mgr->all, *next; s; s = next) {
        next = s->next;
        session__end(s, "shutdown", true);
    }
    mgr->free_deadline_ms = tick_now(mgr->o.tick) + SHUTDOWN_GRACE_MS;
    mgr_maybe_done(mgr);
}
