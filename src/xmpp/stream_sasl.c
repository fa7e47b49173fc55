/* stream_sasl.c: SASL (RFC 6120 §6) through libgsasl: SCRAM-SHA-256, SCRAM-SHA-1, PLAIN. The
 * SCRAM step that derives SaltedPassword (PBKDF2) runs on the libuv thread pool; the others run
 * on the loop. Every copy of the password is wiped when authentication ends. */
#define LOG_MODULE "xmpp"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gsasl.h>
#include <openssl/crypto.h>

#include "core/b64.h"
#include "core/log.h"
#include "core/mem.h"
#include "xmpp/stanza.h"
#include "xmpp/xmpp_int.h"

struct xmpp__sasl_job {
    uv_work_t req;
    struct xmpp_stream *s;
    Gsasl_session *sasl;
    char *in;
    char *out;
    int rc;
};

static Gsasl *g_ctx;

static const char *const mech_prefs[] = { "SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN" };

static int sasl_cb(Gsasl *ctx, Gsasl_session *sctx, Gsasl_property prop)
{
    (void)ctx, (void)sctx, (void)prop;
    return GSASL_NO_CALLBACK; /* every property is set up front */
}

static Gsasl *sasl_ctx(void)
{
    if (g_ctx == NULL) {
        if (gsasl_init(&g_ctx) != GSASL_OK) {
            g_ctx = NULL;
            return NULL;
        }
        gsasl_callback_set(g_ctx, sasl_cb);
    }
    return g_ctx;
}

void xmpp__sasl_global_cleanup(void)
{
    if (g_ctx != NULL)
        gsasl_done(g_ctx);
    g_ctx = NULL;
}

static void wipe_prop(Gsasl_session *sess, Gsasl_property prop)
{
    const char *p = gsasl_property_fast(sess, prop);
    if (p != NULL)
        OPENSSL_cleanse((char *)p, strlen(p));
    gsasl_property_free(sess, prop);
}

void xmpp__sasl_cleanup(struct xmpp_stream *s)
{
    if (s->password != NULL) {
        OPENSSL_cleanse(s->password, s->password_len);
        mem_free(s->password);
        s->password = NULL;
    }
    if (s->sasl == NULL)
        return;
    if (s->work_pending) { /* the pool owns the session until the done callback runs */
        uv_cancel((uv_req_t *)&s->job->req);
        return;
    }
    wipe_prop(s->sasl, GSASL_PASSWORD);
    wipe_prop(s->sasl, GSASL_SCRAM_SALTED_PASSWORD);
    gsasl_finish(s->sasl);
    s->sasl = NULL;
}

static bool is_scram(const char *mech)
{
    return strncmp(mech, "SCRAM-", 6) == 0;
}

static void send_sasl(struct xmpp_stream *s, const char *elem, const char *b64)
{
    char head[128];
    if (strcmp(elem, "auth") == 0)
        snprintf(head, sizeof(head), "<auth xmlns='" XMPP__NS_SASL "' mechanism='%s'>", s->mech);
    else
        snprintf(head, sizeof(head), "<%s xmlns='" XMPP__NS_SASL "'>", elem);
    size_t hl = strlen(head), bl = strlen(b64), el = strlen(elem);
    char *x = mem_alloc(hl + bl + el + 5);
    memcpy(x, head, hl);
    memcpy(x + hl, b64[0] ? b64 : "=", b64[0] ? bl : 1);
    size_t o = hl + (b64[0] ? bl : 1);
    o += (size_t)sprintf(x + o, "</%s>", elem);
    if (xmpp__write(s, x, o) < 0)
        xmpp__finish(s, -ECONNRESET, "write failed", false);
    mem_free(x);
}

static bool step_ok(int rc)
{
    return rc == GSASL_OK || rc == GSASL_NEEDS_MORE;
}

static void step_failed(struct xmpp_stream *s, int rc, const char *what)
{
    log_warn("auth", "jid=%s mech=%s result=error step=%s err=%s", s->logjid, s->mech, what,
             gsasl_strerror_name(rc));
    xmpp__finish(s, -EPROTO, "sasl", false);
}

void xmpp__sasl_start(struct xmpp_stream *s, const struct xmpp_stanza *mechanisms)
{
    Gsasl *ctx = sasl_ctx();
    bool secure = s->tls_active || s->tls_mode == XMPP_TLS_OFF;
    const char *chosen = NULL;
    for (size_t i = 0; i < sizeof(mech_prefs) / sizeof(mech_prefs[0]) && !chosen; i++) {
        if (ctx == NULL || !gsasl_client_support_p(ctx, mech_prefs[i]))
            continue;
        if (strcmp(mech_prefs[i], "PLAIN") == 0 && !secure)
            continue;
        for (struct xmpp_stanza *m = xmpp_stanza_first_child(mechanisms); m && !chosen;
             m = xmpp_stanza_next(m)) {
            char *name = xmpp_stanza_text(m);
            if (strcmp(name, mech_prefs[i]) == 0)
                chosen = mech_prefs[i];
            mem_free(name);
        }
    }
    if (chosen == NULL) {
        log_warn("auth", "jid=%s result=error msg=\"no common SASL mechanism\"", s->logjid);
        xmpp__finish(s, -EPROTO, "no common SASL mechanism", false);
        return;
    }
    if (gsasl_client_start(ctx, chosen, &s->sasl) != GSASL_OK) {
        s->sasl = NULL;
        xmpp__finish(s, -EPROTO, "sasl", false);
        return;
    }
    s->mech = chosen;
    gsasl_property_set(s->sasl, GSASL_AUTHID, s->username);
    gsasl_property_set_raw(s->sasl, GSASL_PASSWORD, s->password, s->password_len);
    OPENSSL_cleanse(s->password, s->password_len); /* libgsasl holds the only copy now */
    mem_free(s->password);
    s->password = NULL;
    s->state = XMPP__ST_SASL;
    char *out = NULL;
    s->sasl_rc = gsasl_step64(s->sasl, "", &out);
    s->sasl_steps = 1;
    if (!step_ok(s->sasl_rc)) {
        gsasl_free(out);
        step_failed(s, s->sasl_rc, "initial");
        return;
    }
    send_sasl(s, "auth", out);
    gsasl_free(out);
}

/* The server-first-message's iteration count, or -1 when it cannot be read. */
static long scram_iterations(const char *b64)
{
    uint8_t *raw;
    size_t n;
    if (b64_decode(b64, strlen(b64), B64_STD, &raw, &n) < 0)
        return -1;
    long it = -1;
    for (size_t i = 0; i + 1 < n; i++) { /* raw is NUL-terminated by b64_decode */
        if ((i == 0 || raw[i - 1] == ',') && raw[i] == 'i' && raw[i + 1] == '=') {
            char *end;
            it = strtol((char *)raw + i + 2, &end, 10);
            if (end == (char *)raw + i + 2 || (*end != ',' && *end != '\0'))
                it = -1;
            break;
        }
    }
    mem_free(raw);
    return it;
}

static void work_step(uv_work_t *req)
{
    struct xmpp__sasl_job *job = container_of(req, struct xmpp__sasl_job, req);
    job->rc = gsasl_step64(job->sasl, job->in, &job->out);
}

static void work_done(uv_work_t *req, int status)
{
    struct xmpp__sasl_job *job = container_of(req, struct xmpp__sasl_job, req);
    struct xmpp_stream *s = job->s;
    s->work_pending = false;
    s->job = NULL;
    xmpp__enter(s);
    if (status == 0 && !xmpp__gone(s) && s->state == XMPP__ST_SASL) {
        s->sasl_rc = job->rc;
        s->sasl_steps++;
        if (!step_ok(job->rc))
            step_failed(s, job->rc, "server-first");
        else
            send_sasl(s, "response", job->out ? job->out : "");
    }
    if (xmpp__gone(s))
        xmpp__sasl_cleanup(s);
    if (job->out)
        gsasl_free(job->out);
    mem_free(job->in);
    mem_free(job);
    xmpp__leave(s);
}

static void on_challenge(struct xmpp_stream *s, const struct xmpp_stanza *st)
{
    char *in = xmpp_stanza_text(st);
    if (strcmp(in, "=") == 0)
        in[0] = '\0';
    if (s->sasl_rc == GSASL_OK) {
        mem_free(in);
        xmpp__finish(s, -EPROTO, "unexpected challenge", false);
        return;
    }
    if (is_scram(s->mech) && s->sasl_steps == 1) {
        long it = scram_iterations(in);
        if (it <= 0 || it > XMPP__SCRAM_MAX_ITER) {
            log_warn("auth", "jid=%s mech=%s result=error iterations=%ld", s->logjid, s->mech, it);
            mem_free(in);
            xmpp__finish(s, -EPROTO, "bad SCRAM iteration count", false);
            return;
        }
        struct xmpp__sasl_job *job = mem_calloc(1, sizeof(*job));
        job->s = s;
        job->sasl = s->sasl;
        job->in = in;
        int rc = uv_queue_work(s->loop, &job->req, work_step, work_done);
        if (rc < 0) {
            mem_free(in);
            mem_free(job);
            xmpp__finish(s, rc, "queue work", false);
            return;
        }
        s->work_pending = true;
        s->job = job;
        return;
    }
    char *out = NULL;
    s->sasl_rc = gsasl_step64(s->sasl, in, &out);
    s->sasl_steps++;
    mem_free(in);
    if (!step_ok(s->sasl_rc)) {
        gsasl_free(out);
        step_failed(s, s->sasl_rc, "challenge");
        return;
    }
    send_sasl(s, "response", out ? out : "");
    gsasl_free(out);
}

static void on_success(struct xmpp_stream *s, const struct xmpp_stanza *st)
{
    char *in = xmpp_stanza_text(st);
    if (strcmp(in, "=") == 0)
        in[0] = '\0';
    if (s->sasl_rc == GSASL_NEEDS_MORE) {
        /* SCRAM: additional data carries the server signature, which gsasl verifies */
        char *out = NULL;
        int rc = in[0] ? gsasl_step64(s->sasl, in, &out) : GSASL_MECHANISM_PARSE_ERROR;
        gsasl_free(out);
        if (rc != GSASL_OK) {
            mem_free(in);
            log_warn("auth", "jid=%s mech=%s result=error msg=\"server signature not verified\"",
                     s->logjid, s->mech);
            xmpp__finish(s, -EPROTO, "server signature", false);
            return;
        }
    }
    mem_free(in);
    s->authenticated = true;
    xmpp__sasl_cleanup(s);
    log_info("auth", "jid=%s host=%s mech=%s result=ok", s->logjid, s->host, s->mech);
    if (s->auth_only) {
        xmpp__ready(s);
        return;
    }
    xmpp__parser_restart(s->parser);
    s->state = XMPP__ST_STREAM;
    if (xmpp__send_header(s) < 0)
        xmpp__finish(s, -ECONNRESET, "write failed", false);
}

static void on_failure(struct xmpp_stream *s, const struct xmpp_stanza *st)
{
    struct xmpp_stanza *c = xmpp_stanza_first_child(st);
    const char *cond = c ? xmpp_stanza_name(c) : "none";
    bool proto = strcmp(cond, "invalid-mechanism") == 0 || strcmp(cond, "malformed-request") == 0 ||
                 strcmp(cond, "encryption-required") == 0 ||
                 strcmp(cond, "mechanism-too-weak") == 0;
    log_info("auth", "jid=%s host=%s mech=%s result=fail condition=%s", s->logjid, s->host, s->mech,
             cond);
    xmpp__sasl_cleanup(s);
    xmpp__finish(s, proto ? -EPROTO : -EACCES, proto ? "sasl failure" : "not-authorized", false);
}

void xmpp__sasl_element(struct xmpp_stream *s, const struct xmpp_stanza *st)
{
    const char *ns = xmpp_stanza_ns(st);
    const char *name = xmpp_stanza_name(st);
    if (ns == NULL || strcmp(ns, XMPP__NS_SASL) != 0 || s->work_pending) {
        xmpp__finish(s, -EPROTO, "unexpected element during SASL", false);
        return;
    }
    if (strcmp(name, "challenge") == 0)
        on_challenge(s, st);
    else if (strcmp(name, "success") == 0)
        on_success(s, st);
    else if (strcmp(name, "failure") == 0)
        on_failure(s, st);
    else
        xmpp__finish(s, -EPROTO, "unexpected SASL element", false);
}
