/* stream_sasl.c: SASL (RFC 6120 §6, and XEP-0388 framing via stream_sasl2.c) through
 * libgsasl: SCRAM-SHA-256, SCRAM-SHA-1, PLAIN, plus FAST's HT-SHA-256-NONE. The SCRAM step that
 * derives SaltedPassword (PBKDF2) runs on the libuv thread pool; the others run on the loop.
 * A password login by SCRAM leaves a SCRAM credential (RFC 5802 SaltedPassword, salt, count)
 * that a later login can use instead of the password. Every copy of a secret is wiped when
 * authentication ends. */
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

void xmpp__cred_free(void *cred, size_t len)
{
    if (cred == NULL)
        return;
    OPENSSL_cleanse(cred, len);
    mem_free(cred);
}

static void wipe_free(char *p)
{
    if (p == NULL)
        return;
    OPENSSL_cleanse(p, strlen(p));
    gsasl_free(p);
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
    xmpp__cred_free(s->scram_in, sizeof(*s->scram_in));
    s->scram_in = NULL;
    xmpp__cred_free(s->fast_in, sizeof(*s->fast_in));
    s->fast_in = NULL;
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

/* Sends <elem>b64</elem> in the SASL (or SASL2) namespace; the copy is wiped (PLAIN carries the
 * password itself). */
static void send_sasl(struct xmpp_stream *s, const char *elem, const char *b64)
{
    const char *ns = s->sasl2 ? XMPP__NS_SASL2 : XMPP__NS_SASL;
    const char *mech = strcmp(elem, "auth") == 0 ? s->mech : NULL;
    size_t cap = strlen(b64) + strlen(ns) + 2 * strlen(elem) + 64 + (mech ? strlen(mech) : 0);
    char *x = mem_alloc(cap);
    int n = snprintf(x, cap, "<%s xmlns='%s'%s%s%s>%s</%s>", elem, ns, mech ? " mechanism='" : "",
                     mech ? mech : "", mech ? "'" : "", b64[0] ? b64 : "=", elem);
    if (n < 0 || (size_t)n >= cap || xmpp__write(s, x, (size_t)n) < 0)
        xmpp__finish(s, -ECONNRESET, "write failed", false);
    OPENSSL_cleanse(x, cap);
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

bool xmpp__mech_offered(const struct xmpp_stanza *list, const char *mech)
{
    bool hit = false;
    for (struct xmpp_stanza *m = xmpp_stanza_first_child(list); m && !hit;
         m = xmpp_stanza_next(m)) {
        if (strcmp(xmpp_stanza_name(m), "mechanism") != 0)
            continue;
        char *name = xmpp_stanza_text(m);
        hit = strcmp(name, mech) == 0;
        mem_free(name);
    }
    return hit;
}

/* Our preferred mechanism among those offered; with a SCRAM credential only its own. */
static const char *choose_mech(struct xmpp_stream *s, const struct xmpp_stanza *list)
{
    Gsasl *ctx = sasl_ctx();
    bool secure = s->tls_active || s->tls_mode == XMPP_TLS_OFF;
    for (size_t i = 0; i < sizeof(mech_prefs) / sizeof(mech_prefs[0]); i++) {
        const char *m = mech_prefs[i];
        if (ctx == NULL || !gsasl_client_support_p(ctx, m))
            continue;
        if (strcmp(m, "PLAIN") == 0 && !secure)
            continue;
        if (s->scram_in != NULL && strcmp(m, s->scram_in->mech) != 0)
            continue;
        if (xmpp__mech_offered(list, m))
            return m;
    }
    return NULL;
}

static void send_first(struct xmpp_stream *s, const char *b64)
{
    if (!s->sasl2) {
        send_sasl(s, "auth", b64);
    } else if (xmpp__sasl2_authenticate(s, b64) < 0) {
        xmpp__finish(s, -ECONNRESET, "write failed", false);
    }
}

static void start_ht(struct xmpp_stream *s)
{
    s->mech = XMPP__FAST_MECH;
    s->ht = true;
    s->state = XMPP__ST_SASL;
    s->sasl_steps = 1;
    s->sasl_rc = GSASL_NEEDS_MORE;
    char *b64 = xmpp__ht_initial(s);
    if (b64 == NULL) {
        xmpp__finish(s, -EPROTO, "hmac", false);
        return;
    }
    send_first(s, b64);
    OPENSSL_cleanse(b64, strlen(b64));
    mem_free(b64);
}

/* Hands the credential to libgsasl: the password, or the SCRAM SaltedPassword as hex. */
static void set_secret(struct xmpp_stream *s)
{
    if (s->password != NULL) {
        gsasl_property_set_raw(s->sasl, GSASL_PASSWORD, s->password, s->password_len);
        OPENSSL_cleanse(s->password, s->password_len); /* libgsasl holds the only copy now */
        mem_free(s->password);
        s->password = NULL;
        return;
    }
    static const char hexd[] = "0123456789abcdef";
    char hex[2 * sizeof(s->scram_in->salted_password) + 1];
    size_t n = s->scram_in->salted_len;
    for (size_t i = 0; i < n; i++) {
        hex[2 * i] = hexd[s->scram_in->salted_password[i] >> 4];
        hex[2 * i + 1] = hexd[s->scram_in->salted_password[i] & 15];
    }
    hex[2 * n] = '\0';
    gsasl_property_set(s->sasl, GSASL_SCRAM_SALTED_PASSWORD, hex);
    OPENSSL_cleanse(hex, sizeof(hex));
    OPENSSL_cleanse(s->scram_in->salted_password, sizeof(s->scram_in->salted_password));
}

void xmpp__sasl_start(struct xmpp_stream *s, const struct xmpp_stanza *features)
{
    const struct xmpp_stanza *list = xmpp__sasl2_pick(s, features);
    if (xmpp__gone(s))
        return;
    s->sasl2 = list != NULL;
    if (list == NULL)
        list = xmpp_stanza_child(features, "mechanisms", XMPP__NS_SASL);
    if (list == NULL) {
        xmpp__finish(s, -EPROTO, "no SASL offered", false);
        return;
    }
    if (s->fast_in != NULL) { /* xmpp__sasl2_pick checked that FAST is offered */
        start_ht(s);
        return;
    }
    const char *chosen = choose_mech(s, list);
    const struct xmpp_stanza *sasl1 = xmpp_stanza_child(features, "mechanisms", XMPP__NS_SASL);
    if (chosen == NULL && s->sasl2 && sasl1 != NULL) { /* request_fast is only a wish */
        s->sasl2 = false;
        chosen = choose_mech(s, sasl1);
    }
    if (chosen == NULL) {
        log_warn("auth", "jid=%s result=error msg=\"no common SASL mechanism\"", s->logjid);
        xmpp__finish(s, -EPROTO, "no common SASL mechanism", false);
        return;
    }
    if (gsasl_client_start(sasl_ctx(), chosen, &s->sasl) != GSASL_OK) {
        s->sasl = NULL;
        xmpp__finish(s, -EPROTO, "sasl", false);
        return;
    }
    s->mech = chosen;
    gsasl_property_set(s->sasl, GSASL_AUTHID, s->username);
    set_secret(s);
    s->state = XMPP__ST_SASL;
    char *out = NULL;
    s->sasl_rc = gsasl_step64(s->sasl, "", &out);
    s->sasl_steps = 1;
    if (!step_ok(s->sasl_rc)) {
        wipe_free(out);
        step_failed(s, s->sasl_rc, "initial");
        return;
    }
    send_first(s, out);
    wipe_free(out);
}

/* The iteration count (i=) and salt (s=) of a base64 server-first-message. 0 or -1. */
static int scram_first(const char *b64, long *iter, char *salt, size_t saltcap)
{
    uint8_t *raw;
    size_t n;
    if (b64_decode(b64, strlen(b64), B64_STD, &raw, &n) < 0)
        return -1;
    *iter = -1;
    salt[0] = '\0';
    const char *p = (const char *)raw; /* NUL-terminated by b64_decode */
    while (p != NULL && *p != '\0') {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len >= 2 && p[0] == 'i' && p[1] == '=') {
            char *e;
            *iter = strtol(p + 2, &e, 10);
            if (e == p + 2 || e != p + len)
                *iter = -1;
        } else if (len >= 2 && p[0] == 's' && p[1] == '=' && len - 2 < saltcap) {
            memcpy(salt, p + 2, len - 2);
            salt[len - 2] = '\0';
        }
        p = end ? end + 1 : NULL;
    }
    mem_free(raw);
    return *iter > 0 && salt[0] != '\0' ? 0 : -1;
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
    wipe_free(job->out);
    mem_free(job->in);
    mem_free(job);
    xmpp__leave(s);
}

/* Checks the server-first-message before any PBKDF2 runs: the count is bounded, and with a
 * stored credential the salt and count must be the ones it was derived with. */
static int check_server_first(struct xmpp_stream *s, const char *in)
{
    long it;
    char salt[sizeof(s->scram_in->salt)];
    if (scram_first(in, &it, salt, sizeof(salt)) < 0 || it > XMPP__SCRAM_MAX_ITER) {
        log_warn("auth", "jid=%s mech=%s result=error msg=\"bad server-first-message\"", s->logjid,
                 s->mech);
        xmpp__finish(s, -EPROTO, "bad SCRAM server-first-message", false);
        return -1;
    }
    if (s->scram_in != NULL &&
        (strcmp(salt, s->scram_in->salt) != 0 || (uint32_t)it != s->scram_in->iterations)) {
        log_info("auth", "jid=%s host=%s mech=%s result=stale iterations=%ld stored=%u", s->logjid,
                 s->host, s->mech, it, s->scram_in->iterations);
        xmpp__finish(s, -ESTALE, "stale SCRAM credential", false);
        return -1;
    }
    return 0;
}

static void on_challenge(struct xmpp_stream *s, const struct xmpp_stanza *st)
{
    char *in = xmpp_stanza_text(st);
    if (strcmp(in, "=") == 0)
        in[0] = '\0';
    if (s->sasl_rc == GSASL_OK || s->ht) {
        mem_free(in);
        xmpp__finish(s, -EPROTO, "unexpected challenge", false);
        return;
    }
    if (is_scram(s->mech) && s->sasl_steps == 1) {
        if (check_server_first(s, in) < 0) {
            mem_free(in);
            return;
        }
    }
    if (is_scram(s->mech) && s->sasl_steps == 1 && s->scram_in == NULL) {
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
    /* with a stored SaltedPassword the step is only a few HMACs: run it here */
    char *out = NULL;
    s->sasl_rc = gsasl_step64(s->sasl, in, &out);
    s->sasl_steps++;
    mem_free(in);
    if (!step_ok(s->sasl_rc)) {
        wipe_free(out);
        step_failed(s, s->sasl_rc, "challenge");
        return;
    }
    send_sasl(s, "response", out ? out : "");
    wipe_free(out);
}

static int unhex(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* After a verified password login by SCRAM: keeps SaltedPassword, salt and count. */
static void capture_scram(struct xmpp_stream *s)
{
    if (s->sasl == NULL || s->scram_in != NULL || s->ht || !is_scram(s->mech))
        return;
    const char *hex = gsasl_property_fast(s->sasl, GSASL_SCRAM_SALTED_PASSWORD);
    const char *salt = gsasl_property_fast(s->sasl, GSASL_SCRAM_SALT);
    const char *iter = gsasl_property_fast(s->sasl, GSASL_SCRAM_ITER);
    size_t hlen = strcmp(s->mech, "SCRAM-SHA-1") == 0 ? 20 : 32;
    struct xmpp_scram_cred *c = mem_calloc(1, sizeof(*c));
    char *end = NULL;
    unsigned long it = iter ? strtoul(iter, &end, 10) : 0;
    bool ok = hex != NULL && salt != NULL && strlen(hex) == 2 * hlen &&
              strlen(salt) < sizeof(c->salt) && end != NULL && *end == '\0' && it > 0 &&
              it <= XMPP__SCRAM_MAX_ITER;
    for (size_t i = 0; ok && i < hlen; i++) {
        int hi = unhex(hex[2 * i]), lo = unhex(hex[2 * i + 1]);
        ok = hi >= 0 && lo >= 0;
        c->salted_password[i] = (uint8_t)(hi << 4 | lo);
    }
    if (!ok) {
        log_warn("scram_cred", "jid=%s mech=%s msg=\"libgsasl left no usable SaltedPassword\"",
                 s->logjid, s->mech);
        xmpp__cred_free(c, sizeof(*c));
        return;
    }
    snprintf(c->mech, sizeof(c->mech), "%s", s->mech);
    snprintf(c->salt, sizeof(c->salt), "%s", salt);
    c->iterations = (uint32_t)it;
    c->salted_len = hlen;
    xmpp__cred_free(s->scram_out, sizeof(*s->scram_out));
    s->scram_out = c;
}

/* Verifies what the server's success carries (SCRAM ServerSignature, HT responder hash). */
static int verify_success(struct xmpp_stream *s, const char *in)
{
    if (s->ht)
        return xmpp__ht_verify(s, in);
    if (s->sasl_rc != GSASL_NEEDS_MORE)
        return 0;
    char *out = NULL;
    int rc = in[0] ? gsasl_step64(s->sasl, in, &out) : GSASL_MECHANISM_PARSE_ERROR;
    wipe_free(out);
    return rc == GSASL_OK ? 0 : -EPROTO;
}

static void on_success(struct xmpp_stream *s, const struct xmpp_stanza *st)
{
    char *in = s->sasl2 ? xmpp_stanza_child_text(st, "additional-data", XMPP__NS_SASL2)
                        : xmpp_stanza_text(st);
    if (in == NULL)
        in = mem_strdup("");
    if (strcmp(in, "=") == 0)
        in[0] = '\0';
    int rc = verify_success(s, in);
    mem_free(in);
    if (rc < 0) {
        log_warn("auth", "jid=%s mech=%s result=error msg=\"server signature not verified\"",
                 s->logjid, s->mech);
        xmpp__finish(s, -EPROTO, "server signature", false);
        return;
    }
    capture_scram(s);
    if (s->sasl2)
        xmpp__sasl2_success(s, st);
    s->authenticated = true;
    xmpp__sasl_cleanup(s);
    log_info("auth", "jid=%s host=%s mech=%s sasl2=%d result=ok", s->logjid, s->host, s->mech,
             s->sasl2);
    if (s->auth_only) {
        xmpp__ready(s);
        return;
    }
    s->state = XMPP__ST_STREAM;
    if (s->sasl2) /* XEP-0388: no restart; the server sends the new features directly */
        return;
    xmpp__parser_restart(s->parser);
    if (xmpp__send_header(s) < 0)
        xmpp__finish(s, -ECONNRESET, "write failed", false);
}

static void on_failure(struct xmpp_stream *s, const struct xmpp_stanza *st)
{
    const char *cond = "none";
    for (struct xmpp_stanza *c = xmpp_stanza_first_child(st); c; c = xmpp_stanza_next(c)) {
        if (strcmp(xmpp_stanza_name(c), "text") != 0) {
            cond = xmpp_stanza_name(c);
            break;
        }
    }
    bool proto = strcmp(cond, "invalid-mechanism") == 0 || strcmp(cond, "malformed-request") == 0 ||
                 strcmp(cond, "encryption-required") == 0 ||
                 strcmp(cond, "mechanism-too-weak") == 0;
    log_info("auth", "jid=%s host=%s mech=%s sasl2=%d result=fail condition=%s", s->logjid, s->host,
             s->mech, s->sasl2, cond);
    xmpp__sasl_cleanup(s);
    xmpp__finish(s, proto ? -EPROTO : -EACCES, proto ? "sasl failure" : "not-authorized", false);
}

void xmpp__sasl_element(struct xmpp_stream *s, const struct xmpp_stanza *st)
{
    const char *ns = xmpp_stanza_ns(st);
    const char *name = xmpp_stanza_name(st);
    if (ns == NULL || strcmp(ns, s->sasl2 ? XMPP__NS_SASL2 : XMPP__NS_SASL) != 0 ||
        s->work_pending) {
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
