/* xmpp_live.c: checks the xmpp stream against a real Prosody (not part of ctest).
 *
 *   tests/xmpp_live/prosody.sh /tmp/sgx 25222 &        # users alice, bob / "secret"
 *   tests/xmpp_live/prosody.sh /tmp/sgf 25223 fast &   # IBR on, SASL2 + FAST modules
 *   build/xmpp_live 127.0.0.1 25222 /tmp/sgx/localhost.crt [n [25223 /tmp/sgf/localhost.crt]]
 *
 * Scenarios: SCRAM-SHA-1 login without TLS, wrong password, STARTTLS trusted via ca_file,
 * STARTTLS with an untrusted certificate, bind + XEP-0198, a message from a second stream,
 * auth_only, a silent server (timeout), a refused port, an oversized inbound stanza, freeing
 * from inside callbacks and while connecting, polite close, and N concurrent logins.
 * Credentials: a SCRAM credential captured at a password login logs in alone, and is stale
 * (-ESTALE) after a password change. With fast_port: XEP-0077 registration (created, -EEXIST,
 * -EPERM where registration is off, cancel), SASL2 + FAST token grant, token login with
 * rotation, the previous token refused, FAST over STARTTLS, and the fallbacks on a server
 * without SASL2 (request_fast: plain SASL; a token: -ENOTSUP). SG_ONLY=creds runs only these. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <uv.h>

#include "core/log.h"
#include "core/mem.h"
#include "core/tick.h"
#include "xmpp/stanza.h"
#include "xmpp/stream.h"

static uv_loop_t *loop;
static struct tick *tick;
static struct xmpp_tls *tls_trusted, *tls_untrusted, *tls_fast;
static const char *host;
static uint16_t port;
static uint16_t fast_port; /* the "fast" Prosody variant, 0: none */
static int failures;

#define CHECK(cond, ...)                                         \
    do {                                                         \
        if (!(cond)) {                                           \
            failures++;                                          \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
            fprintf(stderr, __VA_ARGS__);                        \
            fputc('\n', stderr);                                 \
        }                                                        \
    } while (0)

struct probe {
    struct xmpp_stream *s;
    int ready;  /* on_ready count */
    int status; /* last on_ready status */
    int closed; /* on_closed count */
    int close_status;
    char reason[64];
    int stanzas;
    char body[256];
    char iq_type[16]; /* of the last iq received */
    char iq_id[32];
    bool free_in_ready;
    bool free_in_stanza;
};

static void p_ready(struct xmpp_stream *s, int status, void *data)
{
    struct probe *p = data;
    p->ready++;
    p->status = status;
    if (p->free_in_ready) {
        xmpp_stream_free(s);
        p->s = NULL;
    }
}

static void p_stanza(struct xmpp_stream *s, struct xmpp_stanza *st, void *data)
{
    struct probe *p = data;
    p->stanzas++;
    if (strcmp(xmpp_stanza_name(st), "iq") == 0) {
        const char *t = xmpp_stanza_attr(st, "type"), *id = xmpp_stanza_attr(st, "id");
        snprintf(p->iq_type, sizeof(p->iq_type), "%s", t ? t : "");
        snprintf(p->iq_id, sizeof(p->iq_id), "%s", id ? id : "");
    }
    char *b = xmpp_stanza_child_text(st, "body", NULL);
    if (b != NULL) {
        snprintf(p->body, sizeof(p->body), "%s", b);
        mem_free(b);
    }
    if (p->free_in_stanza) {
        xmpp_stream_free(s);
        p->s = NULL;
    }
}

static void p_closed(struct xmpp_stream *s, int status, const char *reason, void *data)
{
    (void)s;
    struct probe *p = data;
    p->closed++;
    p->close_status = status;
    snprintf(p->reason, sizeof(p->reason), "%s", reason ? reason : "");
}

static const struct xmpp_stream_cbs cbs = { p_ready, p_stanza, p_closed };

static struct xmpp_stream_opts base_opts(const char *user, const char *pass, enum xmpp_tls_mode m,
                                         struct xmpp_tls *ctx)
{
    struct xmpp_stream_opts o = {
        .host = host,
        .port = port,
        .domain = "localhost",
        .username = user,
        .password = pass,
        .resource = NULL,
        .tls = m,
        .tls_ctx = ctx,
        .tick = tick,
        .connect_timeout_ms = 10000,
        .max_stanza = 65536,
        .sm = true,
    };
    return o;
}

static void open_probe(struct probe *p, const struct xmpp_stream_opts *o)
{
    memset(p, 0, sizeof(*p));
    int rc = xmpp_stream_open(loop, o, &cbs, p, &p->s);
    CHECK(rc == 0, "open rc=%d", rc);
}

static void run_until(const int *counter, int want, uint64_t timeout_ms)
{
    uint64_t end = uv_now(loop) + timeout_ms;
    while (*counter < want && uv_now(loop) < end)
        uv_run(loop, UV_RUN_ONCE);
}

static void release(struct probe *p)
{
    xmpp_stream_free(p->s);
    p->s = NULL;
}

static void test_plain_scram(void)
{
    struct xmpp_stream_opts o = base_opts("alice", "secret", XMPP_TLS_OFF, NULL);
    o.resource = "plain";
    struct probe p;
    open_probe(&p, &o);
    CHECK(p.ready == 0, "on_ready inside open");
    run_until(&p.ready, 1, 10000);
    CHECK(p.ready == 1 && p.status == 0, "plain login: ready=%d status=%d", p.ready, p.status);
    const char *mech = xmpp_stream_mechanism(p.s);
    CHECK(mech && strcmp(mech, "SCRAM-SHA-1") == 0, "mechanism %s", mech ? mech : "-");
    const char *jid = xmpp_stream_jid(p.s);
    CHECK(jid && strcmp(jid, "alice@localhost/plain") == 0, "jid %s", jid ? jid : "-");
    CHECK(xmpp_stream_sm_enabled(p.s), "sm not enabled");
    xmpp_stream_close(p.s);
    run_until(&p.closed, 1, 5000);
    CHECK(p.closed == 1 && p.close_status == 0, "close: closed=%d status=%d", p.closed,
          p.close_status);
    release(&p);
    printf("ok plain SCRAM-SHA-1 login, bind, sm, polite close\n");
}

static void test_wrong_password(void)
{
    struct xmpp_stream_opts o = base_opts("alice", "wrong", XMPP_TLS_OFF, NULL);
    struct probe p;
    open_probe(&p, &o);
    run_until(&p.ready, 1, 10000);
    CHECK(p.ready == 1 && p.status == -EACCES, "wrong password: status=%d", p.status);
    release(&p);
    printf("ok wrong password -> -EACCES\n");
}

static void test_starttls(void)
{
    struct xmpp_stream_opts o = base_opts("bob", "secret", XMPP_TLS_REQUIRED, tls_trusted);
    struct probe p;
    open_probe(&p, &o);
    run_until(&p.ready, 1, 10000);
    CHECK(p.ready == 1 && p.status == 0, "starttls: status=%d", p.status);
    release(&p);
    printf("ok STARTTLS with ca_file\n");

    o.tls_ctx = tls_untrusted;
    open_probe(&p, &o);
    run_until(&p.ready, 1, 10000);
    CHECK(p.ready == 1 && p.status == -EPROTO, "untrusted: status=%d", p.status);
    release(&p);
    printf("ok STARTTLS untrusted certificate -> -EPROTO\n");
}

static void test_message(void)
{
    struct xmpp_stream_opts oa = base_opts("alice", "secret", XMPP_TLS_REQUIRED, tls_trusted);
    struct xmpp_stream_opts ob = base_opts("bob", "secret", XMPP_TLS_REQUIRED, tls_trusted);
    struct probe a, b;
    open_probe(&a, &oa);
    open_probe(&b, &ob);
    run_until(&a.ready, 1, 10000);
    run_until(&b.ready, 1, 10000);
    CHECK(a.status == 0 && b.status == 0, "message: a=%d b=%d", a.status, b.status);
    struct xmpp_stanza *pres = xmpp_stanza_new("presence", NULL);
    CHECK(xmpp_stream_send(a.s, pres) == 0, "send presence");
    xmpp_stanza_unref(pres);
    /* wait for alice's own presence to come back: then the server knows she is available */
    run_until(&a.stanzas, 1, 5000);
    int before = a.stanzas;
    const char *text = "h\xc3\xa9llo <&> \"quoted\" \xf0\x9f\x98\x80";
    struct xmpp_stanza *m = xmpp_stanza_new("message", NULL);
    xmpp_stanza_set_attr(m, "to", "alice@localhost");
    xmpp_stanza_set_attr(m, "type", "chat");
    xmpp_stanza_add_text_child(m, "body", NULL, text);
    CHECK(xmpp_stream_send(b.s, m) == 0, "send message");
    xmpp_stanza_unref(m);
    run_until(&a.stanzas, before + 1, 5000);
    CHECK(strcmp(a.body, text) == 0, "received body '%s'", a.body);
    printf("ok message from a second stream received (%d stanzas)\n", a.stanzas);

    release(&a);

    /* an inbound stanza above carol's max_stanza closes her stream with policy-violation
     * (carol, so the server's re-delivery of the unacked stanza bothers nobody else) */
    struct xmpp_stream_opts oc = base_opts("carol", "secret", XMPP_TLS_REQUIRED, tls_trusted);
    oc.max_stanza = 4096;
    open_probe(&a, &oc);
    run_until(&a.ready, 1, 10000);
    char big[6000];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    m = xmpp_stanza_new("message", NULL);
    xmpp_stanza_set_attr(m, "to", xmpp_stream_jid(a.s));
    xmpp_stanza_add_text_child(m, "body", NULL, big);
    CHECK(xmpp_stream_send(b.s, m) == 0, "send big message");
    xmpp_stanza_unref(m);
    run_until(&a.closed, 1, 5000);
    CHECK(a.closed == 1 && a.close_status == -EPROTO && strcmp(a.reason, "policy-violation") == 0,
          "oversize: closed=%d status=%d reason=%s", a.closed, a.close_status, a.reason);
    CHECK(xmpp_stream_send_raw(a.s, "<presence/>", 11) == -ENOTCONN, "send after close");
    printf("ok oversized inbound stanza -> on_closed(-EPROTO, policy-violation)\n");
    release(&a);

    /* free from inside on_stanza */
    struct probe c;
    open_probe(&c, &oc);
    c.free_in_stanza = true;
    run_until(&c.ready, 1, 10000);
    pres = xmpp_stanza_new("presence", NULL);
    xmpp_stream_send(c.s, pres);
    xmpp_stanza_unref(pres);
    run_until(&c.stanzas, 1, 5000);
    CHECK(c.stanzas == 1 && c.s == NULL && c.closed == 0, "free in on_stanza");
    release(&b);
    printf("ok free inside on_stanza\n");
}

static void test_auth_only_and_free_paths(void)
{
    struct xmpp_stream_opts o = base_opts("alice", "secret", XMPP_TLS_OFF, NULL);
    o.auth_only = true;
    struct probe p;
    open_probe(&p, &o);
    run_until(&p.ready, 1, 10000);
    CHECK(p.status == 0 && xmpp_stream_jid(p.s) == NULL, "auth_only status=%d", p.status);
    run_until(&p.closed, 1, 500);
    CHECK(p.closed == 0, "auth_only fired on_closed");
    release(&p);
    printf("ok auth_only\n");

    o.auth_only = false;
    open_probe(&p, &o);
    p.free_in_ready = true;
    run_until(&p.ready, 1, 10000);
    CHECK(p.ready == 1 && p.s == NULL, "free in on_ready");
    /* freed while resolving / connecting: no callback at all */
    for (int i = 0; i < 3; i++) {
        open_probe(&p, &o);
        for (int k = 0; k < i; k++)
            uv_run(loop, UV_RUN_NOWAIT);
        release(&p);
    }
    run_until(&p.ready, 1, 300);
    CHECK(p.ready == 0, "callback after free");
    /* close before ready: on_ready(-ECANCELED) later, not inside the call */
    open_probe(&p, &o);
    xmpp_stream_close(p.s);
    CHECK(p.ready == 0, "on_ready inside close");
    run_until(&p.ready, 1, 2000);
    CHECK(p.ready == 1 && p.status == -ECANCELED, "close before ready: %d", p.status);
    release(&p);
    printf("ok free inside on_ready, free while connecting, close before ready\n");
}

static void on_silent_conn(uv_stream_t *server, int status)
{
    if (status < 0)
        return;
    uv_tcp_t *c = mem_alloc(sizeof(*c));
    uv_tcp_init(loop, c);
    if (uv_accept(server, (uv_stream_t *)c) != 0)
        uv_close((uv_handle_t *)c, (uv_close_cb)mem_free);
    server->data = c;
}

static void test_timeout_and_refused(void)
{
    uv_tcp_t srv;
    uv_tcp_init(loop, &srv);
    srv.data = NULL;
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", 0, &a);
    uv_tcp_bind(&srv, (struct sockaddr *)&a, 0);
    uv_listen((uv_stream_t *)&srv, 8, on_silent_conn);
    struct sockaddr_in bound;
    int len = sizeof(bound);
    uv_tcp_getsockname(&srv, (struct sockaddr *)&bound, &len);

    struct xmpp_stream_opts o = base_opts("alice", "secret", XMPP_TLS_OFF, NULL);
    o.host = "127.0.0.1";
    o.port = ntohs(bound.sin_port);
    o.connect_timeout_ms = 600;
    struct probe p;
    uint64_t t0 = uv_now(loop);
    open_probe(&p, &o);
    run_until(&p.ready, 1, 3000);
    CHECK(p.status == -ETIMEDOUT, "silent server: %d", p.status);
    printf("ok silent server -> -ETIMEDOUT after %llu ms\n",
           (unsigned long long)(uv_now(loop) - t0));
    release(&p);
    if (srv.data)
        uv_close((uv_handle_t *)srv.data, (uv_close_cb)mem_free);
    uv_close((uv_handle_t *)&srv, NULL);

    o.port = 1; /* nothing listens there */
    open_probe(&p, &o);
    run_until(&p.ready, 1, 3000);
    CHECK(p.status == UV_ECONNREFUSED, "refused: %d", p.status);
    release(&p);
    o.host = "no-such-host.invalid";
    open_probe(&p, &o);
    run_until(&p.ready, 1, 5000);
    CHECK(p.status == UV_EAI_NONAME || p.status == UV_EAI_AGAIN, "dns: %s", uv_err_name(p.status));
    release(&p);
    printf("ok refused -> ECONNREFUSED, unknown host -> %s\n", uv_err_name(p.status));
}

/* --- credentials: SCRAM credential, XEP-0077, SASL2 + FAST --- */

#define UA_ID "5b0e8a4c-6a53-4c8e-9d0e-2f7f1c3b9a10"

struct reg_probe {
    int fired;
    int status;
};

static void on_registered(int status, void *data)
{
    struct reg_probe *r = data;
    r->fired++;
    r->status = status;
}

static int register_user(uint16_t p, const char *user, const char *pass)
{
    struct xmpp_stream_opts o = base_opts(user, pass, XMPP_TLS_OFF, NULL);
    o.port = p;
    struct reg_probe r = { 0 };
    struct xmpp_register *reg = NULL;
    int rc = xmpp_register(loop, &o, on_registered, &r, &reg);
    CHECK(rc == 0, "xmpp_register rc=%d", rc);
    CHECK(r.fired == 0, "register cb inside the call");
    run_until(&r.fired, 1, 10000);
    CHECK(r.fired == 1, "register cb fired %d times", r.fired);
    return r.status;
}

/* Logs in and returns on_ready's status; the stream stays in p (release it). */
static int login(struct probe *p, const struct xmpp_stream_opts *o)
{
    open_probe(p, o);
    run_until(&p->ready, 1, 10000);
    CHECK(p->ready == 1, "no on_ready");
    return p->status;
}

/* XEP-0077 password change on a logged-in stream. */
static void change_password(struct probe *p, const char *user, const char *pass)
{
    struct xmpp_stanza *iq = xmpp_stanza_new("iq", NULL);
    xmpp_stanza_set_attr(iq, "type", "set");
    xmpp_stanza_set_attr(iq, "id", "pwchange");
    struct xmpp_stanza *q = xmpp_stanza_add_child(iq, "query", "jabber:iq:register");
    xmpp_stanza_add_text_child(q, "username", NULL, user);
    xmpp_stanza_add_text_child(q, "password", NULL, pass);
    CHECK(xmpp_stream_send(p->s, iq) == 0, "send password change");
    xmpp_stanza_unref(iq);
    uint64_t end = uv_now(loop) + 5000;
    while (strcmp(p->iq_id, "pwchange") != 0 && uv_now(loop) < end)
        uv_run(loop, UV_RUN_ONCE);
    CHECK(strcmp(p->iq_type, "result") == 0, "password change: type=%s", p->iq_type);
}

static void test_scram_cred(uint16_t p, const char *user, const char *pass, const char *newpass)
{
    struct xmpp_stream_opts o = base_opts(user, pass, XMPP_TLS_OFF, NULL);
    o.port = p;
    struct probe pr;
    struct xmpp_scram_cred cred, again;
    CHECK(login(&pr, &o) == 0, "password login: %d", pr.status);
    CHECK(xmpp_stream_scram_cred(pr.s, &cred) == 0, "no SCRAM credential captured");
    release(&pr);
    CHECK(strcmp(cred.mech, "SCRAM-SHA-1") == 0 && cred.salted_len == 20 && cred.iterations > 0,
          "cred mech=%s len=%zu i=%u", cred.mech, cred.salted_len, cred.iterations);
    printf("ok password login captured a SCRAM credential (%s, i=%u, salt %zu chars)\n", cred.mech,
           cred.iterations, strlen(cred.salt));

    o.password = NULL;
    o.scram = &cred;
    CHECK(login(&pr, &o) == 0, "cred login: %d", pr.status);
    const char *mech = xmpp_stream_mechanism(pr.s);
    CHECK(mech && strcmp(mech, "SCRAM-SHA-1") == 0, "cred mech %s", mech ? mech : "-");
    CHECK(xmpp_stream_jid(pr.s) != NULL, "cred login not bound");
    CHECK(xmpp_stream_scram_cred(pr.s, &again) == -ENOENT, "cred login returned a credential");
    release(&pr);
    printf("ok login with only the SCRAM credential (no password)\n");

    struct xmpp_scram_cred bad = cred;
    bad.salted_password[0] ^= 1;
    o.scram = &bad;
    CHECK(login(&pr, &o) == -EACCES, "wrong SaltedPassword: %d", pr.status);
    release(&pr);
    printf("ok a wrong SaltedPassword -> -EACCES\n");
    if (newpass == NULL) {
        OPENSSL_cleanse(&cred, sizeof(cred));
        return;
    }

    o = base_opts(user, pass, XMPP_TLS_OFF, NULL);
    o.port = p;
    CHECK(login(&pr, &o) == 0, "login for password change: %d", pr.status);
    change_password(&pr, user, newpass);
    release(&pr);
    o.password = NULL;
    o.scram = &cred;
    CHECK(login(&pr, &o) == -ESTALE, "cred after password change: %d", pr.status);
    release(&pr);
    o.password = newpass;
    o.scram = NULL;
    CHECK(login(&pr, &o) == 0, "new password: %d", pr.status);
    release(&pr);
    printf("ok after a password change the credential is stale -> -ESTALE; new password works\n");
    OPENSSL_cleanse(&cred, sizeof(cred));
}

static void test_register(const char *user, const char *pass)
{
    int rc = register_user(fast_port, user, pass);
    CHECK(rc == 0, "register: %d", rc);
    printf("ok XEP-0077 registration created %s\n", user);
    rc = register_user(fast_port, user, pass);
    CHECK(rc == -EEXIST, "register again: %d", rc);
    printf("ok registering %s again -> -EEXIST\n", user);
    rc = register_user(port, "nobody", pass);
    CHECK(rc == -EPERM, "register with allow_registration=false: %d", rc);
    printf("ok registration where allow_registration = false -> -EPERM\n");
    /* cancelled at once and while connected: no callback */
    struct xmpp_stream_opts o = base_opts("cancelled", pass, XMPP_TLS_OFF, NULL);
    o.port = fast_port;
    struct reg_probe r = { 0 };
    for (int i = 0; i < 2; i++) {
        struct xmpp_register *reg = NULL;
        CHECK(xmpp_register(loop, &o, on_registered, &r, &reg) == 0, "register");
        for (int k = 0; k < i * 3; k++)
            uv_run(loop, UV_RUN_NOWAIT);
        xmpp_register_cancel(reg);
    }
    run_until(&r.fired, 1, 500);
    CHECK(r.fired == 0, "callback after cancel");
    printf("ok cancelled registrations stay silent\n");
}

static void test_fast(const char *user, const char *pass)
{
    struct xmpp_stream_opts o = base_opts(user, pass, XMPP_TLS_OFF, NULL);
    o.port = fast_port;
    o.request_fast = true;
    o.user_agent_id = UA_ID;
    o.resource = "fast";
    struct probe p;
    struct xmpp_fast_token t1, t2, t3;
    struct xmpp_scram_cred cred;
    CHECK(login(&p, &o) == 0, "password + request_fast: %d", p.status);
    CHECK(xmpp_stream_fast_token(p.s, &t1) == 0, "no FAST token granted");
    CHECK(xmpp_stream_scram_cred(p.s, &cred) == 0, "no SCRAM credential over SASL2");
    const char *jid = xmpp_stream_jid(p.s);
    CHECK(jid != NULL && strstr(jid, "/fast") != NULL, "bound %s", jid ? jid : "-");
    CHECK(xmpp_stream_sm_enabled(p.s), "sm after SASL2");
    time_t now = time(NULL);
    CHECK(t1.expiry > now + 86400 && strcmp(t1.mech, "HT-SHA-256-NONE") == 0,
          "token mech=%s expiry=%lld", t1.mech, (long long)t1.expiry);
    printf("ok SASL2 %s login + request_fast: token granted (%zu chars, expires in %lld d), "
           "bound %s, sm on\n",
           xmpp_stream_mechanism(p.s), strlen(t1.token), (long long)(t1.expiry - now) / 86400,
           jid ? jid : "-");
    release(&p);

    o.password = NULL;
    o.request_fast = false;
    o.fast = &t1;
    CHECK(login(&p, &o) == 0, "FAST login: %d", p.status);
    const char *mech = xmpp_stream_mechanism(p.s);
    CHECK(mech && strcmp(mech, "HT-SHA-256-NONE") == 0, "fast mech %s", mech ? mech : "-");
    CHECK(xmpp_stream_fast_token(p.s, &t2) == 0, "no rotated token");
    CHECK(strcmp(t1.token, t2.token) != 0, "token not rotated");
    CHECK(xmpp_stream_jid(p.s) != NULL, "FAST login not bound");
    release(&p);
    printf("ok login with the FAST token (HT-SHA-256-NONE, server proof checked) "
           "yields a rotated token\n");

    o.fast = &t2;
    CHECK(login(&p, &o) == 0, "login with the rotated token: %d", p.status);
    CHECK(xmpp_stream_fast_token(p.s, &t3) == 0 && strcmp(t3.token, t2.token) != 0, "t3");
    release(&p);
    o.fast = &t1;
    CHECK(login(&p, &o) == -EACCES, "superseded token: %d", p.status);
    release(&p);
    struct xmpp_fast_token bad = t3;
    bad.token[strlen(bad.token) - 1] ^= 1;
    o.fast = &bad;
    CHECK(login(&p, &o) == -EACCES, "wrong token: %d", p.status);
    release(&p);
    printf("ok rotated token logs in; the superseded and a wrong token -> -EACCES\n");

    o.tls = XMPP_TLS_REQUIRED;
    o.tls_ctx = tls_fast;
    o.fast = &t3;
    CHECK(login(&p, &o) == 0, "FAST over STARTTLS: %d", p.status);
    CHECK(xmpp_stream_fast_token(p.s, &t1) == 0, "no token over STARTTLS");
    release(&p);
    printf("ok FAST over STARTTLS\n");

    /* a SCRAM credential over SASL2, asking for a token too */
    o = base_opts(user, NULL, XMPP_TLS_OFF, NULL);
    o.port = fast_port;
    o.scram = &cred;
    o.request_fast = true;
    o.user_agent_id = UA_ID;
    CHECK(login(&p, &o) == 0, "SCRAM cred over SASL2: %d", p.status);
    CHECK(xmpp_stream_fast_token(p.s, &t3) == 0, "no token for the SCRAM cred login");
    release(&p);
    printf("ok SCRAM credential login over SASL2 with a token request\n");

    /* the base server has no SASL2: request_fast falls back, a token cannot be used */
    o = base_opts("alice", "secret", XMPP_TLS_OFF, NULL);
    o.request_fast = true;
    o.user_agent_id = UA_ID;
    CHECK(login(&p, &o) == 0, "request_fast without SASL2: %d", p.status);
    CHECK(xmpp_stream_fast_token(p.s, &t3) == -ENOENT, "token without SASL2");
    release(&p);
    o.password = NULL;
    o.fast = &t1;
    CHECK(login(&p, &o) == -ENOTSUP, "token without FAST: %d", p.status);
    release(&p);
    printf("ok no SASL2 on the server: request_fast falls back to SASL, a token -> -ENOTSUP\n");
    OPENSSL_cleanse(&t1, sizeof(t1));
    OPENSSL_cleanse(&t2, sizeof(t2));
    OPENSSL_cleanse(&t3, sizeof(t3));
    OPENSSL_cleanse(&cred, sizeof(cred));
}

static void test_credentials(void)
{
    test_scram_cred(port, "alice", "secret", NULL);
    if (fast_port == 0) {
        printf("skip registration and FAST: no fast_port\n");
        return;
    }
    char user[64];
    snprintf(user, sizeof(user), "u%ld%d", (long)time(NULL), (int)getpid());
    const char *pass = "p&<w>'1";
    test_register(user, pass);
    test_scram_cred(fast_port, user, pass, "second'<&>");
    test_fast(user, "second'<&>");
}

static long max_rss_kb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

static void test_concurrent(int n, enum xmpp_tls_mode mode)
{
    struct probe *ps = mem_calloc((size_t)n, sizeof(*ps));
    long rss0 = max_rss_kb();
    uint64_t t0 = uv_now(loop);
    uv_update_time(loop);
    t0 = uv_now(loop);
    char res[32];
    int ready = 0, ok = 0;
    for (int i = 0; i < n; i++) {
        struct xmpp_stream_opts o = base_opts(i % 2 ? "bob" : "alice", "secret", mode,
                                              mode == XMPP_TLS_OFF ? NULL : tls_trusted);
        snprintf(res, sizeof(res), "c%d", i);
        o.resource = res;
        o.connect_timeout_ms = 60000;
        open_probe(&ps[i], &o);
    }
    uint64_t end = uv_now(loop) + 90000;
    while (ready < n && uv_now(loop) < end) {
        uv_run(loop, UV_RUN_ONCE);
        ready = ok = 0;
        for (int i = 0; i < n; i++) {
            ready += ps[i].ready;
            ok += ps[i].ready && ps[i].status == 0;
        }
    }
    uint64_t ms = uv_now(loop) - t0;
    long rss1 = max_rss_kb();
    CHECK(ok == n, "concurrent: %d of %d ready", ok, n);
    printf("ok %d concurrent logins (%s): %d ok in %llu ms; max RSS %ld -> %ld KiB (~%ld KiB "
           "per stream)\n",
           n, mode == XMPP_TLS_OFF ? "plain" : "STARTTLS", ok, (unsigned long long)ms, rss0, rss1,
           (rss1 - rss0) / n);
    for (int i = 0; i < n; i++)
        xmpp_stream_close(ps[i].s);
    int closed = 0;
    end = uv_now(loop) + 10000;
    while (closed < ok && uv_now(loop) < end) {
        uv_run(loop, UV_RUN_ONCE);
        closed = 0;
        for (int i = 0; i < n; i++)
            closed += ps[i].closed && ps[i].close_status == 0;
    }
    CHECK(closed == ok, "closed %d of %d", closed, ok);
    for (int i = 0; i < n; i++)
        release(&ps[i]);
    mem_free(ps);
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: %s HOST PORT CA_FILE [N [FAST_PORT [FAST_CA_FILE]]]\n", argv[0]);
        return 2;
    }
    host = argv[1];
    port = (uint16_t)strtol(argv[2], NULL, 10);
    int n = argc > 4 ? (int)strtol(argv[4], NULL, 10) : 200;
    fast_port = argc > 5 ? (uint16_t)strtol(argv[5], NULL, 10) : 0;
    const char *fast_ca = argc > 6 ? argv[6] : argv[3];
    enum log_level lvl;
    if (getenv("SG_LOG") && log_level_parse(getenv("SG_LOG"), &lvl) == 0)
        log_set_level(lvl);
    loop = uv_default_loop();
    tick = tick_new(loop, 250);
    char err[256];
    tls_trusted = xmpp_tls_new(argv[3], true, err, sizeof(err));
    tls_untrusted = xmpp_tls_new(NULL, true, err, sizeof(err));
    tls_fast = xmpp_tls_new(fast_ca, true, err, sizeof(err));
    if (!tls_trusted || !tls_untrusted || !tls_fast) {
        fprintf(stderr, "tls: %s\n", err);
        return 1;
    }
    const char *only = getenv("SG_ONLY");
    if (only && strcmp(only, "message") == 0) {
        test_message();
        goto out;
    }
    if (only && strcmp(only, "creds") == 0) {
        test_credentials();
        goto out;
    }
    test_plain_scram();
    test_wrong_password();
    test_starttls();
    test_message();
    test_auth_only_and_free_paths();
    test_credentials();
    test_timeout_and_refused();
    test_concurrent(n, XMPP_TLS_OFF);
    test_concurrent(n, XMPP_TLS_REQUIRED);

out:
    tick_free(tick);
    xmpp_tls_free(tls_trusted);
    xmpp_tls_free(tls_untrusted);
    xmpp_tls_free(tls_fast);
    uv_run(loop, UV_RUN_DEFAULT);
    int lc = uv_loop_close(loop);
    CHECK(lc == 0, "uv_loop_close: %s", uv_err_name(lc));
    xmpp_stream_global_cleanup();
    printf("%s (%d failures)\n", failures ? "FAILED" : "PASSED", failures);
    return failures ? 1 : 0;
}
