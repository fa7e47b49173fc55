/* test_xmpp_sasl2.c: the stream's other credentials against a scripted server (no Prosody):
 * the SCRAM credential captured at a password login (checked against PBKDF2 itself) logging in
 * alone and going stale when the server's salt changes; XEP-0388 SASL2 with a XEP-0484 FAST
 * token request and no stream restart; HT-SHA-256-NONE token logins with the server's proof
 * checked; the fallbacks; XEP-0077 registration outcomes and cancel; option checks. The SCRAM
 * server side is libgsasl's. Each test closes every handle and checks uv_loop_close() == 0. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gsasl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cmocka.h>

#include "core/b64.h"
#include "core/buf.h"
#include "core/mem.h"
#include "core/tick.h"
#include "xmpp/stanza.h"
#include "xmpp/stream.h"
#include "xmpp/xmpp_int.h"
#include "xmpp_fake_server.h"

#define UA      "0f7c2d6e-3b1a-4c59-8e2f-9a1b2c3d4e5f"
#define SASL_NS "urn:ietf:params:xml:ns:xmpp-sasl"
#define BIND_FEATURES \
    "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>"
#define BIND_RESULT                                                                  \
    "<iq type='result' id='sg-bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>" \
    "<jid>alice@localhost/res</jid></bind></iq>"
#define FAST_FEATURES                                                                       \
    "<stream:features><authentication xmlns='urn:xmpp:sasl:2'><mechanism>PLAIN</mechanism>" \
    "<mechanism>SCRAM-SHA-1</mechanism><inline><fast xmlns='urn:xmpp:fast:0'>"              \
    "<mechanism>HT-SHA-256-NONE</mechanism></fast></inline></authentication>"               \
    "<mechanisms xmlns='" SASL_NS "'><mechanism>PLAIN</mechanism></mechanisms></stream:features>"
#define OLD_TOKEN "secret-token:fast-old"
#define NEW_TOKEN "secret-token:fast-new"

static void srv_restart(const struct step *script)
{
    srv_stop();
    uv_run(&loop, UV_RUN_NOWAIT); /* runs the close callbacks before srv is reused */
    srv_start(script);
}

/* The text between the last '>' before `close` and `close` in got (mem_free), or NULL. */
static char *payload(const char *got, const char *close)
{
    const char *end = strstr(got, close);
    if (end == NULL)
        return NULL;
    const char *start = end;
    while (start > got && start[-1] != '>')
        start--;
    return mem_strndup(start, (size_t)(end - start));
}

/* --- SCRAM-SHA-1 through libgsasl's server side --- */

static Gsasl *srv_gsasl;
static Gsasl_session *srv_sess;
static const char *srv_salt; /* base64 */

static char *scram_reply(size_t pos, const char *got)
{
    char *in = payload(got, pos == 1 ? "</auth>" : "</response>");
    assert_non_null(in);
    if (pos == 1) {
        assert_int_equal(gsasl_server_start(srv_gsasl, "SCRAM-SHA-1", &srv_sess), GSASL_OK);
        gsasl_property_set(srv_sess, GSASL_PASSWORD, "secret");
        gsasl_property_set(srv_sess, GSASL_SCRAM_ITER, "4096");
        gsasl_property_set(srv_sess, GSASL_SCRAM_SALT, srv_salt);
    }
    char *out = NULL;
    int rc = gsasl_step64(srv_sess, in, &out);
    mem_free(in);
    struct buf b;
    buf_init(&b, 4096);
    if (rc == GSASL_NEEDS_MORE)
        buf_appendf(&b, "<challenge xmlns='" SASL_NS "'>%s</challenge>", out);
    else if (rc == GSASL_OK)
        buf_appendf(&b, "<success xmlns='" SASL_NS "'>%s</success>", out);
    else
        buf_appends(&b, "<failure xmlns='" SASL_NS "'><not-authorized/></failure>");
    gsasl_free(out);
    if (rc != GSASL_NEEDS_MORE) {
        gsasl_finish(srv_sess);
        srv_sess = NULL;
    }
    return buf_steal(&b);
}

static const struct step scram_script[] = {
    { "<stream:stream", HDR "<stream:features><mechanisms xmlns='" SASL_NS "'>"
                            "<mechanism>SCRAM-SHA-1</mechanism><mechanism>PLAIN</mechanism>"
                            "</mechanisms></stream:features>" },
    { "</auth>", NULL },
    { "</response>", NULL },
    { "<stream:stream", HDR BIND_FEATURES },
    { "</iq>", BIND_RESULT },
    { NULL, NULL },
};

/* Logs in to the current server; on_ready's status. */
static int login_once(const struct xmpp_stream_opts *o, struct client *c, struct xmpp_stream **s)
{
    struct xmpp_stream_opts here = *o;
    here.port = srv.port;
    memset(c, 0, sizeof(*c));
    assert_int_equal(xmpp_stream_open(&loop, &here, &cbs, c, s), 0);
    run_until(&c->ready, 1, 5000);
    assert_int_equal(c->ready, 1);
    return c->status;
}

static void scram_credential_logs_in_alone_until_the_salt_changes(void **state)
{
    (void)state;
    uv_loop_init(&loop);
    assert_int_equal(gsasl_init(&srv_gsasl), GSASL_OK);
    struct tick *t = tick_new(&loop, 50);
    srv_salt = "c2FsdHktc2FsdA=="; /* "salty-salt" */
    srv_start(scram_script);
    srv.reply = scram_reply;
    struct xmpp_stream_opts o = opts_for(t, XMPP_TLS_OFF, NULL);
    struct client c;
    struct xmpp_stream *s = NULL;
    assert_int_equal(login_once(&o, &c, &s), 0);
    assert_string_equal(xmpp_stream_mechanism(s), "SCRAM-SHA-1");
    struct xmpp_scram_cred cred;
    assert_int_equal(xmpp_stream_scram_cred(s, &cred), 0);
    xmpp_stream_free(s);
    assert_string_equal(cred.mech, "SCRAM-SHA-1");
    assert_string_equal(cred.salt, srv_salt);
    assert_int_equal(cred.iterations, 4096);
    assert_int_equal(cred.salted_len, 20);
    uint8_t want[20];
    PKCS5_PBKDF2_HMAC_SHA1("secret", 6, (const unsigned char *)"salty-salt", 10, 4096, 20, want);
    assert_memory_equal(cred.salted_password, want, 20);

    /* the credential alone (no password) */
    srv_restart(scram_script);
    srv.reply = scram_reply;
    o = opts_for(t, XMPP_TLS_OFF, NULL);
    o.password = NULL;
    o.scram = &cred;
    assert_int_equal(login_once(&o, &c, &s), 0);
    assert_string_equal(xmpp_stream_jid(s), "alice@localhost/res");
    struct xmpp_scram_cred none;
    assert_int_equal(xmpp_stream_scram_cred(s, &none), -ENOENT);
    xmpp_stream_free(s);

    /* the server re-salted (password changed): stale before any proof is sent */
    srv_restart(scram_script);
    srv.reply = scram_reply;
    srv_salt = "b3RoZXItc2FsdA==";
    assert_int_equal(login_once(&o, &c, &s), -ESTALE);
    assert_null(strstr(buf_cstr(&srv.in), "</response>"));
    xmpp_stream_free(s);
    if (srv_sess != NULL)
        gsasl_finish(srv_sess);
    srv_sess = NULL;

    /* only the credential's mechanism is offered: PLAIN is never tried */
    static const struct step plain_only[] = {
        { "<stream:stream", HDR PLAIN_ONLY },
        { NULL, NULL },
    };
    srv_restart(plain_only);
    assert_int_equal(login_once(&o, &c, &s), -EPROTO);
    xmpp_stream_free(s);
    finish_loop(t);
    gsasl_done(srv_gsasl);
}

/* --- SASL2 and FAST --- */

/* base64(HMAC-SHA-256(token, label)), prefixed by "alice\0" for the initiator. */
static char *ht(const char *token, const char *label, bool initiator)
{
    uint8_t msg[6 + 32];
    unsigned int n = 0;
    size_t pre = initiator ? 6 : 0;
    memcpy(msg, "alice", 6); /* with its NUL */
    HMAC(EVP_sha256(), token, (int)strlen(token), (const unsigned char *)label, strlen(label),
         msg + pre, &n);
    assert_int_equal(n, 32);
    return b64_encode(msg, pre + 32, B64_STD, NULL);
}

static bool bad_proof;

static char *fast_reply(size_t pos, const char *got)
{
    struct buf b;
    buf_init(&b, 8192);
    if (pos == 1) { /* <authenticate/> */
        char *init = ht(OLD_TOKEN, "Initiator", true);
        char *want;
        buf_appendf(&b,
                    "<authenticate xmlns='urn:xmpp:sasl:2' mechanism='HT-SHA-256-NONE'>"
                    "<initial-response>%s</initial-response><user-agent id='" UA "'>"
                    "<software>Sparkgate</software><device>gateway</device></user-agent>"
                    "<fast xmlns='urn:xmpp:fast:0'/><request-token xmlns='urn:xmpp:fast:0' "
                    "mechanism='HT-SHA-256-NONE'/></authenticate>",
                    init);
        want = buf_steal(&b);
        bool ok = strstr(got, want) != NULL;
        mem_free(init);
        mem_free(want);
        if (!ok)
            return mem_strdup("<failure xmlns='urn:xmpp:sasl:2'><not-authorized xmlns='" SASL_NS
                              "'/><text>bad token</text></failure>");
        char *proof = ht(bad_proof ? NEW_TOKEN : OLD_TOKEN, "Responder", false);
        buf_appendf(&b,
                    "<success xmlns='urn:xmpp:sasl:2'><additional-data>%s</additional-data>"
                    "<authorization-identifier>alice@localhost</authorization-identifier>"
                    "<token xmlns='urn:xmpp:fast:0' expiry='2026-12-13T10:00:00Z' "
                    "token='" NEW_TOKEN "'/></success>" BIND_FEATURES,
                    proof);
        mem_free(proof);
        return buf_steal(&b);
    }
    /* the bind request: SASL2 success is not followed by a stream restart */
    assert_null(strstr(got, "<stream:stream"));
    return mem_strdup(BIND_RESULT);
}

static const struct step fast_script[] = {
    { "<stream:stream", HDR FAST_FEATURES },
    { "</authenticate>", NULL },
    { "</iq>", NULL },
    { NULL, NULL },
};

static const struct step sasl2_plain_script[] = {
    { "<stream:stream", HDR FAST_FEATURES },
    /* SCRAM-SHA-1 is preferred to PLAIN over SASL2 as well */
    { "<authenticate xmlns='urn:xmpp:sasl:2' mechanism='SCRAM-SHA-1'><initial-response>",
      "<failure xmlns='urn:xmpp:sasl:2'><not-authorized xmlns='" SASL_NS "'/>"
      "<text>wrong password</text></failure>" },
    { NULL, NULL },
};

static const struct step sasl2_plain_ok_script[] = {
    { "<stream:stream",
      HDR "<stream:features><authentication xmlns='urn:xmpp:sasl:2'><mechanism>PLAIN</mechanism>"
          "<inline><fast xmlns='urn:xmpp:fast:0'><mechanism>HT-SHA-256-NONE</mechanism></fast>"
          "</inline></authentication></stream:features>" },
    /* base64("\0alice\0secret") */
    { "<authenticate xmlns='urn:xmpp:sasl:2' mechanism='PLAIN'><initial-response>"
      "AGFsaWNlAHNlY3JldA==</initial-response><user-agent id='" UA "'><software>Sparkgate"
      "</software><device>gateway</device></user-agent><request-token xmlns='urn:xmpp:fast:0' "
      "mechanism='HT-SHA-256-NONE'/></authenticate>",
      "<success xmlns='urn:xmpp:sasl:2'><authorization-identifier>alice@localhost"
      "</authorization-identifier><token xmlns='urn:xmpp:fast:0' token='" OLD_TOKEN "' "
      "expiry='2026-12-13T10:00:00.500+01:00'/></success>" BIND_FEATURES },
    { "</iq>", BIND_RESULT },
    { NULL, NULL },
};

static void sasl2_password_login_requests_a_fast_token(void **state)
{
    (void)state;
    uv_loop_init(&loop);
    struct tick *t = tick_new(&loop, 50);
    srv_start(sasl2_plain_ok_script);
    struct xmpp_stream_opts o = opts_for(t, XMPP_TLS_OFF, NULL);
    o.request_fast = true;
    o.user_agent_id = UA;
    struct client c;
    struct xmpp_stream *s = NULL;
    assert_int_equal(login_once(&o, &c, &s), 0);
    assert_string_equal(xmpp_stream_jid(s), "alice@localhost/res");
    struct xmpp_fast_token tok;
    assert_int_equal(xmpp_stream_fast_token(s, &tok), 0);
    assert_string_equal(tok.token, OLD_TOKEN);
    assert_string_equal(tok.mech, "HT-SHA-256-NONE");
    assert_int_equal(tok.expiry, 1797156000 - 3600); /* 2026-12-13T10:00:00+01:00 */
    xmpp_stream_free(s);

    /* a SASL2 failure is an authentication failure */
    srv_restart(sasl2_plain_script);
    assert_int_equal(login_once(&o, &c, &s), -EACCES);
    xmpp_stream_free(s);
    finish_loop(t);
}

static void fast_token_login_checks_the_server_and_rotates(void **state)
{
    (void)state;
    uv_loop_init(&loop);
    struct tick *t = tick_new(&loop, 50);
    struct xmpp_fast_token tok = { .mech = "HT-SHA-256-NONE", .token = OLD_TOKEN };
    struct xmpp_stream_opts o = opts_for(t, XMPP_TLS_OFF, NULL);
    o.password = NULL;
    o.fast = &tok;
    o.user_agent_id = UA;
    struct client c;
    struct xmpp_stream *s = NULL;
    struct xmpp_fast_token got;
    struct xmpp_scram_cred cred;

    const struct {
        bool bad_proof;
        const char *token;
        int want;
    } rows[] = {
        { false, OLD_TOKEN, 0 },
        { true, OLD_TOKEN, -EPROTO },         /* the server does not prove it knows the token */
        { false, "secret-token:x", -EACCES }, /* the server refuses the token */
    };

    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        if (i == 0)
            srv_start(fast_script);
        else
            srv_restart(fast_script);
        srv.reply = fast_reply;
        bad_proof = rows[i].bad_proof;
        snprintf(tok.token, sizeof(tok.token), "%s", rows[i].token);
        int rc = login_once(&o, &c, &s);
        if (rc != rows[i].want)
            fail_msg("row %zu: status %d, want %d", i, rc, rows[i].want);
        if (rc == 0) {
            assert_string_equal(xmpp_stream_mechanism(s), "HT-SHA-256-NONE");
            assert_int_equal(xmpp_stream_fast_token(s, &got), 0);
            assert_string_equal(got.token, NEW_TOKEN);
            assert_int_equal(got.expiry, 1797156000);
            assert_int_equal(xmpp_stream_scram_cred(s, &cred), -ENOENT);
        }
        xmpp_stream_free(s);
    }
    finish_loop(t);
}

static void fast_needs_the_server_to_offer_it(void **state)
{
    (void)state;
    static const struct step ready_plain[] = {
        { "<stream:stream", HDR PLAIN_ONLY },
        { "</auth>", "<success xmlns='" SASL_NS "'/>" },
        { "<stream:stream", HDR BIND_FEATURES },
        { "</iq>", BIND_RESULT },
        { NULL, NULL },
    };
    uv_loop_init(&loop);
    struct tick *t = tick_new(&loop, 50);
    srv_start(ready_plain);
    struct xmpp_stream_opts o = opts_for(t, XMPP_TLS_OFF, NULL);
    o.request_fast = true;
    o.user_agent_id = UA;
    struct client c;
    struct xmpp_stream *s = NULL;
    /* request_fast without SASL2: the ordinary login, no token */
    assert_int_equal(login_once(&o, &c, &s), 0);
    assert_string_equal(xmpp_stream_mechanism(s), "PLAIN");
    struct xmpp_fast_token tok = { .mech = "HT-SHA-256-NONE", .token = OLD_TOKEN };
    assert_int_equal(xmpp_stream_fast_token(s, &tok), -ENOENT);
    xmpp_stream_free(s);
    /* a token without FAST on offer */
    srv_restart(ready_plain);
    o.password = NULL;
    o.fast = &tok;
    assert_int_equal(login_once(&o, &c, &s), -ENOTSUP);
    xmpp_stream_free(s);
    finish_loop(t);
}

static void on_reg_unused(int status, void *data)
{
    (void)status, (void)data;
    fail_msg("registration callback for rejected options");
}

static void open_rejects_inconsistent_credentials(void **state)
{
    (void)state;
    uv_loop_init(&loop);
    struct tick *t = tick_new(&loop, 50);
    srv_start(scram_script);
    struct xmpp_scram_cred cred = {
        .mech = "SCRAM-SHA-1", .salt = "c2FsdA==", .iterations = 4096, .salted_len = 20
    };
    struct xmpp_fast_token tok = { .mech = "HT-SHA-256-NONE", .token = OLD_TOKEN };
    struct client c = { 0 };
    struct xmpp_stream *s = NULL;
    for (int row = 0; row < 9; row++) {
        struct xmpp_stream_opts o = opts_for(t, XMPP_TLS_OFF, NULL);
        struct xmpp_scram_cred cr = cred;
        struct xmpp_fast_token tk = tok;
        o.password = NULL;
        o.user_agent_id = UA;
        switch (row) {
        case 0: /* nothing */
            break;
        case 1: /* both */
            o.scram = &cr;
            o.fast = &tk;
            break;
        case 2:
            cr.salted_len = 32;
            o.scram = &cr;
            break;
        case 3:
            snprintf(cr.salt, sizeof(cr.salt), "not base64!");
            o.scram = &cr;
            break;
        case 4:
            cr.iterations = 0;
            o.scram = &cr;
            break;
        case 5:
            snprintf(tk.mech, sizeof(tk.mech), "HT-SHA-256-ENDP");
            o.fast = &tk;
            break;
        case 6:
            o.fast = &tk;
            o.user_agent_id = NULL;
            break;
        case 7:
            o.password = "secret";
            o.request_fast = true;
            o.user_agent_id = NULL;
            break;
        case 8:
            o.password = "secret";
            o.user_agent_id = "a'b";
            break;
        }
        if (xmpp_stream_open(&loop, &o, &cbs, &c, &s) != -EINVAL)
            fail_msg("row %d accepted", row);
    }
    struct xmpp_register *r = NULL;
    struct xmpp_stream_opts o = opts_for(t, XMPP_TLS_OFF, NULL);
    o.password = NULL;
    o.scram = &cred;
    assert_int_equal(xmpp_register(&loop, &o, NULL, NULL, &r), -EINVAL);
    o.scram = NULL;
    o.password = "bell\a";
    assert_int_equal(xmpp_register(&loop, &o, on_reg_unused, NULL, &r), -EINVAL);
    o.password = "";
    assert_int_equal(xmpp_register(&loop, &o, on_reg_unused, NULL, &r), -EINVAL);
    assert_null(s);
    assert_null(r);
    finish_loop(t);
}

static void datetime_parse_reads_xep0082(void **state)
{
    (void)state;

    const struct {
        const char *in;
        int64_t want;
    } rows[] = {
        { "2026-12-13T10:00:00Z", 1797156000 },
        { "2026-12-13T10:00:00.123Z", 1797156000 },
        { "2026-12-13T10:00:00-02:30", 1797156000 + 9000 },
        { "1970-01-01T00:00:00Z", 0 },
        { "2026-12-13T10:00:00", 0 },
        { "2026-13-13T10:00:00Z", 0 },
        { "2026-12-13 10:00:00Z", 0 },
        { "2026-12-13T10:00:00Zjunk", 0 },
        { "", 0 },
    };

    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        int64_t got = xmpp__datetime_parse(rows[i].in);
        if (got != rows[i].want)
            fail_msg("row %zu (%s): %lld", i, rows[i].in, (long long)got);
    }
    assert_int_equal(xmpp__datetime_parse(NULL), 0);
}

/* --- XEP-0077 --- */

struct reg_result {
    int fired, status;
};

static void on_reg(int status, void *data)
{
    struct reg_result *r = data;
    r->fired++;
    r->status = status;
}

#define REG_FEATURES                                                              \
    "<stream:features><register xmlns='http://jabber.org/features/iq-register'/>" \
    "<mechanisms xmlns='" SASL_NS "'><mechanism>PLAIN</mechanism></mechanisms></stream:features>"
#define REG_ERROR(cond)                                        \
    "<iq type='error' id='sg-reg'><error type='cancel'><" cond \
    " xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"

static void register_maps_the_server_answer(void **state)
{
    (void)state;

    const struct {
        const char *features;
        const char *answer;
        int want;
    } rows[] = {
        { REG_FEATURES, "<iq type='result' id='sg-reg'/>", 0 },
        { REG_FEATURES, REG_ERROR("conflict"), -EEXIST },
        { REG_FEATURES, REG_ERROR("not-allowed"), -EPERM },
        { REG_FEATURES, REG_ERROR("forbidden"), -EPERM },
        { REG_FEATURES, REG_ERROR("service-unavailable"), -EPERM },
        { REG_FEATURES, REG_ERROR("not-acceptable"), -EINVAL },
        { REG_FEATURES, REG_ERROR("bad-request"), -EINVAL },
        { REG_FEATURES, REG_ERROR("internal-server-error"), -EPROTO },
        { PLAIN_ONLY, NULL, -EPERM }, /* registration not offered */
    };

    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        uv_loop_init(&loop);
        struct tick *t = tick_new(&loop, 50);
        char hdr[1024];
        snprintf(hdr, sizeof(hdr), "%s%s", HDR, rows[i].features);
        const struct step script[] = {
            { "<stream:stream", hdr },
            /* the password is escaped, and nothing but the registration is sent */
            { "<iq type='set' id='sg-reg'><query xmlns='jabber:iq:register'><username>alice"
              "</username><password>p&amp;&lt;w&gt;'\"</password></query></iq>",
              rows[i].answer },
            { NULL, NULL },
        };
        srv_start(script);
        struct xmpp_stream_opts o = opts_for(t, XMPP_TLS_OFF, NULL);
        o.password = "p&<w>'\"";
        struct reg_result r = { 0 };
        struct xmpp_register *reg = NULL;
        assert_int_equal(xmpp_register(&loop, &o, on_reg, &r, &reg), 0);
        assert_int_equal(r.fired, 0);
        run_until(&r.fired, 1, 3000);
        if (r.fired != 1 || r.status != rows[i].want)
            fail_msg("row %zu: fired=%d status=%d want %d", i, r.fired, r.status, rows[i].want);
        assert_null(strstr(buf_cstr(&srv.in), "<auth"));
        finish_loop(t);
    }
}

static void register_cancel_is_silent(void **state)
{
    (void)state;
    uv_loop_init(&loop);
    struct tick *t = tick_new(&loop, 50);
    const struct step script[] = { { NULL, NULL } }; /* a server that never speaks */
    srv_start(script);
    struct xmpp_stream_opts o = opts_for(t, XMPP_TLS_OFF, NULL);
    struct reg_result r = { 0 };
    for (int i = 0; i < 3; i++) { /* at once, while connecting, while negotiating */
        struct xmpp_register *reg = NULL;
        assert_int_equal(xmpp_register(&loop, &o, on_reg, &r, &reg), 0);
        for (int k = 0; k < i * 2; k++)
            uv_run(&loop, UV_RUN_NOWAIT);
        xmpp_register_cancel(reg);
    }
    int never = 0;
    run_until(&never, 1, 200);
    assert_int_equal(r.fired, 0);
    finish_loop(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(scram_credential_logs_in_alone_until_the_salt_changes),
        cmocka_unit_test(sasl2_password_login_requests_a_fast_token),
        cmocka_unit_test(fast_token_login_checks_the_server_and_rotates),
        cmocka_unit_test(fast_needs_the_server_to_offer_it),
        cmocka_unit_test(open_rejects_inconsistent_credentials),
        cmocka_unit_test(datetime_parse_reads_xep0082),
        cmocka_unit_test(register_maps_the_server_answer),
        cmocka_unit_test(register_cancel_is_silent),
    };
    signal(SIGPIPE, SIG_IGN); /* a side that closes early must not kill the test */
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    xmpp_stream_global_cleanup();
    return rc;
}
