/* test_session_muc.c: joined-room tracking (session_muc.c) against the scripted server of the
 * stream tests: a join waits for the self-presence and accepts a new room's default
 * configuration, the occupants come from the room's presences (hostile values made harmless),
 * an error presence fails the join with the stanza, an unanswered join times out, a leave
 * sends unavailable presence and forgets the room, and a room archive query collects only the
 * room's own result messages. Each test closes every handle and checks uv_loop_close() == 0. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/buf.h"
#include "core/mem.h"
#include "core/tick.h"
#include "events/events.h"
#include "session/session.h"
#include "xmpp/stanza.h"
#include "xmpp/stream.h"
#include "xmpp_fake_server.h"

#define SUCCESS "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>"
#define FEATURES \
    HDR "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>"
#define BOUND                                                                        \
    "<iq type='result' id='sg-bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>" \
    "<jid>alice@localhost/sw-1</jid></bind></iq>"
#define DISCO_REPLY                                                              \
    "<iq type='result' id='sg2' from='localhost'><query "                        \
    "xmlns='http://jabber.org/protocol/disco#info'><identity category='server' " \
    "type='im'/></query></iq>"
#define ROOM  "lobby@conf.localhost"
#define MUCU  "<x xmlns='http://jabber.org/protocol/muc#user'>"
#define ERRNS "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'"

static const struct step script[] = {
    { "<stream:stream", HDR PLAIN_ONLY },
    { "</auth>", SUCCESS },
    { "<stream:stream", FEATURES },
    { "</bind></iq>", BOUND },
    { "disco#info", DISCO_REPLY },
    { "vcard-temp", "<iq type='result' id='sg3'/>" },
    /* join: bob is there, then our self-presence of a new room */
    { "<history maxstanzas='0'/></x></presence>",
      "<presence from='" ROOM "/Bob'>" MUCU "<item role='participant' affiliation='none' "
      "jid='bob@localhost/x'/></x></presence>"
      "<presence from='" ROOM "/Evil'>" MUCU "<item role='&lt;script&gt;' "
      "affiliation='owneroooooooooooooooooooooooooo' jid='not a jid@@'/></x></presence>"
      "<presence from='" ROOM "/Al'>" MUCU "<item role='moderator' affiliation='owner'/>"
      "<status code='110'/><status code='201'/></x></presence>" },
    { "muc#owner",
      "<presence from='" ROOM "/Evil' type='unavailable'>" MUCU "</x></presence>"
      "<iq type='result' id='sg4' from='" ROOM "'/>"
      /* discussion history, a copy of it, a live message, another room's */
      "<message from='" ROOM "/Bob' type='groupchat' id='m1'><body>one</body>"
      "<delay xmlns='urn:xmpp:delay' stamp='2024-05-01T10:00:00Z'/></message>"
      "<message from='" ROOM "/Bob' type='groupchat' id='m1'><body>one</body></message>"
      "<message from='" ROOM "/Al' type='groupchat' id='m2'><body>two</body></message>"
      "<message from='x@conf.localhost/X' type='groupchat' id='m3'><body>no</body>"
      "</message>" },
    /* the second room refuses the nickname */
    { "taken@conf.localhost/Al",
      "<presence from='taken@conf.localhost/Al' type='error'><error type='cancel'><conflict " ERRNS
      "/></error></presence>" },
    /* the archive: one result from the room, one spoofed by someone else, then the end */
    { "urn:xmpp:mam:2",
      "<message from='" ROOM "'><result xmlns='urn:xmpp:mam:2' queryid='q1' id='a1'>"
      "<forwarded xmlns='urn:xmpp:forward:0'><message from='" ROOM "/Bob' type='groupchat'>"
      "<body>old</body></message></forwarded></result></message>"
      "<message from='mallory@localhost'><result xmlns='urn:xmpp:mam:2' queryid='q1' id='a2'>"
      "<forwarded xmlns='urn:xmpp:forward:0'><message from='" ROOM "/Bob' type='groupchat'>"
      "<body>fake</body></message></forwarded></result></message>"
      "<iq type='result' id='sg5' from='" ROOM "'><fin xmlns='urn:xmpp:mam:2' complete='true'/>"
      "</iq>" },
    { "type='unavailable'", NULL },
    { NULL, NULL },
};

struct ctx {
    struct session_mgr *mgr;
    struct session *s;
    int logins, login_status;
    int joins, join_status;
    char join_err[64];
    int mams, mam_status;
    size_t mam_n;
    int freed;
};

static void on_login(struct session_mgr *mgr, int status, struct session *s, void *data)
{
    (void)mgr;
    struct ctx *c = data;
    c->logins++;
    c->login_status = status;
    c->s = s;
}

static void on_join(struct session *s, int status, const struct xmpp_stanza *err, void *data)
{
    (void)s;
    struct ctx *c = data;
    c->joins++;
    c->join_status = status;
    c->join_err[0] = '\0';
    const struct xmpp_stanza *e = err ? xmpp_stanza_child(err, "error", NULL) : NULL;
    const struct xmpp_stanza *cond = e ? xmpp_stanza_first_child(e) : NULL;
    if (cond != NULL)
        snprintf(c->join_err, sizeof(c->join_err), "%s", xmpp_stanza_name(cond));
}

static void on_mam(struct session *s, int status, const struct xmpp_stanza *reply,
                   struct xmpp_stanza *const *items, size_t n, bool truncated, void *data)
{
    (void)s, (void)reply, (void)items, (void)truncated;
    struct ctx *c = data;
    c->mams++;
    c->mam_status = status;
    c->mam_n = n;
}

static void mgr_freed(void *data)
{
    struct ctx *c = data;
    c->freed = 1;
}

static void pump(const int *v, int want, uint64_t ms)
{
    uint64_t end = uv_now(&loop) + ms;
    while (*v < want && uv_now(&loop) < end)
        uv_run(&loop, UV_RUN_ONCE);
}

static void get_credential(const char *user, session_cred_cb *cb, void *arg, void *data);

/* A manager on the scripted server; reconnection on when reconnect is set. */
static struct session_mgr *mgr_new(struct tick *t, bool reconnect)
{
    struct session_mgr_opts o = {
        .loop = &loop,
        .tick = t,
        .host = "127.0.0.1",
        .port = srv.port,
        .domain = "localhost",
        .tls_mode = XMPP_TLS_OFF,
        .connect_timeout_ms = 2000,
        .resource_prefix = "sw-",
        .linger_ms = 60000,
        .idle_timeout_ms = 600000,
        .iq_timeout_ms = 5000,
        .max_sessions = 4,
        .ring_len = 64,
        .reconnect_max_ms = reconnect ? 60000 : 0,
        .reconnect_rate = 50,
        .get_credential = reconnect ? get_credential : NULL,
    };
    return session_mgr_new(&o);
}

struct occ_list {
    char text[512];
};

static void occ_cb(const char *room, const struct session_muc_occupant *o, void *data)
{
    struct occ_list *l = data;
    assert_string_equal(room, ROOM);
    size_t n = strlen(l->text);
    snprintf(l->text + n, sizeof(l->text) - n, "%s|%s|%s|%s;", o->nick, o->jid ? o->jid : "-",
             o->role, o->affiliation);
}

static void hist_cb(const char *room, const struct session_muc_msg *m, void *data)
{
    struct occ_list *l = data;
    assert_string_equal(room, ROOM);
    size_t n = strlen(l->text);
    bool live = strncmp(m->stamp, "2024", 4) != 0;
    snprintf(l->text + n, sizeof(l->text) - n, "%s|%s|%s;", m->from, m->body,
             live ? "now" : m->stamp);
}

static void joins_tracks_occupants_refuses_times_out_and_leaves(void **state)
{
    (void)state;
    uv_loop_init(&loop);
    struct tick *t = tick_new(&loop, 20);
    struct ctx c = { 0 };
    srv_start(script);
    c.mgr = mgr_new(t, false);
    assert_int_equal(session_login(c.mgr, "alice", "secret", on_login, &c, NULL), 0);
    pump(&c.logins, 1, 3000);
    assert_int_equal(c.login_status, 0);

    /* bad arguments */
    assert_int_equal(session_muc_join(c.s, "no-local.example", "Al", NULL, 0, 0, on_join, &c),
                     -EINVAL);
    assert_int_equal(session_muc_join(c.s, ROOM, "", NULL, 0, 0, on_join, &c), -EINVAL);
    assert_int_equal(session_muc_occupants(c.s, ROOM, occ_cb, NULL), -ENOENT);

    int64_t id = session_muc_join(c.s, ROOM, "Al", NULL, 0, 0, on_join, &c);
    assert_true(id > 0);
    assert_false(session_muc_joined(c.s, ROOM));
    pump(&c.joins, 1, 3000);
    assert_int_equal(c.join_status, 0);
    /* answered only after the new room accepted its default configuration */
    assert_non_null(strstr(buf_cstr(&srv.seen), "<x xmlns='jabber:x:data' type='submit'/>"));
    assert_true(session_muc_joined(c.s, "LOBBY@conf.localhost"));
    assert_string_equal(session_muc_nick(c.s, ROOM), "Al");
    /* joined again: nothing to wait for */
    assert_int_equal(session_muc_join(c.s, ROOM, "Al", NULL, 0, 0, on_join, &c), 0);
    /* the instant-room acceptance goes out; Evil leaves in answer */
    uint64_t end = uv_now(&loop) + 3000;
    while (srv.pos < 8 && uv_now(&loop) < end)
        uv_run(&loop, UV_RUN_ONCE);
    for (int i = 0; i < 5; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    struct occ_list hl = { "" };
    assert_int_equal(session_muc_history(c.s, ROOM, hist_cb, &hl), 2);
    assert_string_equal(hl.text, ROOM "/Bob|one|2024-05-01T10:00:00Z;" ROOM "/Al|two|now;");
    struct occ_list l = { "" };
    assert_int_equal(session_muc_occupants(c.s, ROOM, occ_cb, &l), 2);
    assert_string_equal(l.text, "Bob|bob@localhost/x|participant|none;Al|-|moderator|owner;");
    assert_int_equal(session_muc_rooms(c.s, NULL, NULL), 1);

    /* a refused nickname: the error presence reaches the caller; the room is forgotten */
    assert_true(session_muc_join(c.s, "taken@conf.localhost", "Al", "pw", -1, 0, on_join, &c) > 0);
    pump(&c.joins, 2, 3000);
    assert_int_equal(c.join_status, -EPROTO);
    assert_string_equal(c.join_err, "conflict");
    assert_false(session_muc_joined(c.s, "taken@conf.localhost"));
    assert_non_null(strstr(buf_cstr(&srv.seen), "<password>pw</password>"));

    /* the archive of the room: the spoofed result is not taken */
    struct xmpp_stanza *iq = xmpp_stanza_new("iq", XMPP_NS_CLIENT);
    xmpp_stanza_set_attr(iq, "type", "set");
    xmpp_stanza_set_attr(iq, "to", ROOM);
    struct xmpp_stanza *q = xmpp_stanza_add_child(iq, "query", "urn:xmpp:mam:2");
    xmpp_stanza_set_attr(q, "queryid", "q1");
    assert_true(session_mam_query(c.s, iq, "q1", 10, 1 << 20, 0, on_mam, &c) > 0);
    xmpp_stanza_unref(iq);
    pump(&c.mams, 1, 3000);
    assert_int_equal(c.mam_status, 0);
    assert_int_equal(c.mam_n, 1);

    /* nobody answers this one */
    assert_true(session_muc_join(c.s, "silent@conf.localhost", "Al", NULL, -1, 150, on_join, &c) >
                0);
    pump(&c.joins, 3, 3000);
    assert_int_equal(c.join_status, -ETIMEDOUT);

    assert_int_equal(session_muc_leave(c.s, ROOM), 0);
    assert_false(session_muc_joined(c.s, ROOM));
    assert_int_equal(session_muc_leave(c.s, ROOM), -ENOENT);
    end = uv_now(&loop) + 3000;
    while (srv.script[srv.pos].wait != NULL && uv_now(&loop) < end)
        uv_run(&loop, UV_RUN_ONCE);
    assert_null(srv.script[srv.pos].wait);

    session_mgr_free(c.mgr, mgr_freed, &c);
    pump(&c.freed, 1, 5000);
    finish_loop(t);
}

/* A join still waiting when the session ends is answered with -ECANCELED. */
static void pending_join_is_cancelled_when_the_session_ends(void **state)
{
    (void)state;
    uv_loop_init(&loop);
    struct tick *t = tick_new(&loop, 20);
    struct ctx c = { 0 };
    static const struct step short_script[] = {
        { "<stream:stream", HDR PLAIN_ONLY },
        { "</auth>", SUCCESS },
        { "<stream:stream", FEATURES },
        { "</bind></iq>", BOUND },
        { "disco#info", DISCO_REPLY },
        { "vcard-temp", "<iq type='result' id='sg3'/>" },
        { NULL, NULL },
    };
    srv_start(short_script);
    c.mgr = mgr_new(t, false);
    assert_int_equal(session_login(c.mgr, "alice", "secret", on_login, &c, NULL), 0);
    pump(&c.logins, 1, 3000);
    assert_int_equal(c.login_status, 0);
    assert_true(session_muc_join(c.s, ROOM, "Al", NULL, -1, 0, on_join, &c) > 0);
    session_logout(c.s);
    assert_int_equal(c.joins, 1);
    assert_int_equal(c.join_status, -ECANCELED);
    session_mgr_free(c.mgr, mgr_freed, &c);
    pump(&c.freed, 1, 5000);
    finish_loop(t);
}

/* ---- rejoin after a fresh reconnection ---- */

static const struct step before_loss[] = {
    { "<stream:stream", HDR PLAIN_ONLY },
    { "</auth>", SUCCESS },
    { "<stream:stream", FEATURES },
    { "</bind></iq>", BOUND },
    { "disco#info", DISCO_REPLY },
    { "vcard-temp", "<iq type='result' id='sg3'/>" },
    { "<history maxstanzas='0'/></x></presence>",
      "<presence from='" ROOM "/Al'>" MUCU "<item role='moderator' affiliation='owner'/>"
      "<status code='110'/></x></presence>" },
    { "<body>bye</body>", SRV_CLOSE },
    { NULL, NULL },
};

/* The room is refused once (locked while another occupant re-creates it), then entered. */
static const struct step after_loss[] = {
    { "<stream:stream", HDR PLAIN_ONLY },
    { "</auth>", SUCCESS },
    { "<stream:stream", FEATURES },
    { "</bind></iq>", BOUND },
    { "<history since='",
      "<presence from='" ROOM "/Al' type='error'><error type='cancel'><item-not-found " ERRNS
      "/></error></presence>" },
    { "<history since='",
      "<presence from='" ROOM "/Al'>" MUCU "<item role='moderator' affiliation='owner'/>"
      "<status code='110'/></x></presence>" },
    { NULL, NULL },
};

static struct session_cred_cb_state {
    session_cred_cb *cb;
    void *arg;
} cred_pending;

static void get_credential(const char *user, session_cred_cb *cb, void *arg, void *data)
{
    (void)user, (void)data;
    cred_pending.cb = cb;
    cred_pending.arg = arg;
}

static void rooms_are_entered_again_after_a_fresh_reconnection(void **state)
{
    (void)state;
    uv_loop_init(&loop);
    struct tick *t = tick_new(&loop, 20);
    struct ctx c = { 0 };
    srv_start(before_loss);
    c.mgr = mgr_new(t, true);
    assert_int_equal(session_login(c.mgr, "alice", "secret", on_login, &c, NULL), 0);
    pump(&c.logins, 1, 3000);
    assert_true(session_muc_join(c.s, ROOM, "Al", NULL, 0, 0, on_join, &c) > 0);
    pump(&c.joins, 1, 3000);
    assert_int_equal(c.join_status, 0);

    struct xmpp_stanza *m = xmpp_stanza_new("message", XMPP_NS_CLIENT);
    xmpp_stanza_set_attr(m, "to", "bob@localhost");
    xmpp_stanza_add_text_child(m, "body", NULL, "bye");
    assert_int_equal(session_send(c.s, m), 0);
    xmpp_stanza_unref(m);
    uint64_t end = uv_now(&loop) + 3000;
    while (!session_reconnecting(c.s) && uv_now(&loop) < end)
        uv_run(&loop, UV_RUN_ONCE);
    assert_true(session_reconnecting(c.s));
    /* still remembered while the upstream is down */
    assert_true(session_muc_joined(c.s, ROOM));
    uint16_t port = srv.port;
    srv_stop();
    uv_run(&loop, UV_RUN_NOWAIT);
    srv_start_on(after_loss, port);
    end = uv_now(&loop) + 8000;
    while (srv.script[srv.pos].wait != NULL && uv_now(&loop) < end) {
        uv_run(&loop, UV_RUN_ONCE);
        if (cred_pending.cb != NULL) {
            session_cred_cb *cb = cred_pending.cb;
            cred_pending.cb = NULL;
            struct session_cred cred = { .password = "secret" };
            cb(0, &cred, cred_pending.arg);
        }
    }
    assert_null(srv.script[srv.pos].wait);
    for (int i = 0; i < 5; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    assert_true(session_muc_joined(c.s, ROOM));
    assert_int_equal(c.joins, 1); /* nobody waited on the re-entry */
    session_mgr_free(c.mgr, mgr_freed, &c);
    pump(&c.freed, 1, 5000);
    finish_loop(t);
}

#define LOGIN_STEPS                                                                               \
    { "<stream:stream", HDR PLAIN_ONLY }, { "</auth>", SUCCESS }, { "<stream:stream", FEATURES }, \
        { "</bind></iq>", BOUND }, { "disco#info", DISCO_REPLY },                                 \
    {                                                                                             \
        "vcard-temp", "<iq type='result' id='sg3'/>"                                              \
    }

static void login(struct ctx *c, struct tick *t, const struct step *sc)
{
    srv_start(sc);
    c->mgr = mgr_new(t, false);
    assert_int_equal(session_login(c->mgr, "alice", "secret", on_login, c, NULL), 0);
    pump(&c->logins, 1, 3000);
    assert_int_equal(c->login_status, 0);
}

static void send_body(struct session *s, const char *text)
{
    struct xmpp_stanza *m = xmpp_stanza_new("message", XMPP_NS_CLIENT);
    xmpp_stanza_set_attr(m, "to", "bob@localhost");
    xmpp_stanza_add_text_child(m, "body", NULL, text);
    assert_int_equal(session_send(s, m), 0);
    xmpp_stanza_unref(m);
}

static void wait_script_done(void)
{
    uint64_t end = uv_now(&loop) + 5000;
    while (srv.script[srv.pos].wait != NULL && uv_now(&loop) < end)
        uv_run(&loop, UV_RUN_ONCE);
    assert_null(srv.script[srv.pos].wait);
    for (int i = 0; i < 5; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
}

static void finish(struct ctx *c, struct tick *t)
{
    session_mgr_free(c->mgr, mgr_freed, c);
    pump(&c->freed, 1, 5000);
    finish_loop(t);
}

/* Only status 110 in the room's own (last) muc#user <x> marks our presence: another occupant
 * holding the nick we asked for (the room gave us another) leaving does not end the join, an
 * occupant's forged <x> with 110 before the room's is not taken, and the unavailable
 * self-presence that ends an earlier visit does not fail a new join. */
static void self_presence_needs_status_110_from_the_room(void **state)
{
    (void)state;
    uv_loop_init(&loop);
    struct tick *t = tick_new(&loop, 20);
    struct ctx c = { 0 };
    static const struct step sc[] = {
        LOGIN_STEPS,
        { "<history maxstanzas='0'/></x></presence>",
          "<presence from='" ROOM "/Al' type='unavailable'>" MUCU
          "<item role='none' affiliation='none'/></x></presence>"
          "<presence from='" ROOM "/Mallory'>" MUCU "<status code='110'/></x>" MUCU
          "<item role='participant' affiliation='none'/></x></presence>"
          "<presence from='" ROOM "/Al2'>" MUCU "<item role='participant' affiliation='member'/>"
          "<status code='110'/></x></presence>" },
        { "<body>go</body>",
          "<presence from='" ROOM "/Mallory' type='unavailable'>" MUCU
          "<status code='110'/></x>" MUCU "<item role='none' affiliation='none'/></x></presence>" },
        /* left, then entered again at once: the end of the first visit comes first */
        { "type='unavailable'", NULL },
        { "<history maxstanzas='0'/></x></presence>",
          "<presence from='" ROOM "/Al2' type='unavailable'>" MUCU
          "<item role='none' affiliation='member'/><status code='110'/></x></presence>"
          "<presence from='" ROOM "/Al2'>" MUCU "<item role='participant' affiliation='member'/>"
          "<status code='110'/></x></presence>" },
        { NULL, NULL },
    };
    login(&c, t, sc);
    assert_true(session_muc_join(c.s, ROOM, "Al", NULL, 0, 0, on_join, &c) > 0);
    pump(&c.joins, 1, 3000);
    assert_int_equal(c.join_status, 0);
    assert_true(session_muc_joined(c.s, ROOM));
    assert_string_equal(session_muc_nick(c.s, ROOM), "Al2");
    struct occ_list l = { "" };
    assert_int_equal(session_muc_occupants(c.s, ROOM, occ_cb, &l), 2);
    assert_string_equal(l.text, "Mallory|-|participant|none;Al2|-|participant|member;");

    /* Mallory's forged 110 before the room's <x>: Mallory leaves, we stay */
    send_body(c.s, "go");
    uint64_t end = uv_now(&loop) + 3000;
    while (srv.pos < 8 && uv_now(&loop) < end)
        uv_run(&loop, UV_RUN_ONCE);
    for (int i = 0; i < 5; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    assert_true(session_muc_joined(c.s, ROOM));
    assert_string_equal(session_muc_nick(c.s, ROOM), "Al2");
    l.text[0] = '\0';
    assert_int_equal(session_muc_occupants(c.s, ROOM, occ_cb, &l), 1);
    assert_string_equal(l.text, "Al2|-|participant|member;");

    /* leave, then join at once */
    assert_int_equal(session_muc_leave(c.s, ROOM), 0);
    assert_true(session_muc_join(c.s, ROOM, "Al2", NULL, 0, 0, on_join, &c) > 0);
    pump(&c.joins, 2, 3000);
    assert_int_equal(c.join_status, 0);
    wait_script_done();
    assert_true(session_muc_joined(c.s, ROOM));
    finish(&c, t);
}

/* A room locked while its creator configures it answers a join with item-not-found (Prosody):
 * the join is sent again after a short pause and succeeds; a room that stays "not found" fails
 * the join after LOCKED_TRIES answers. */
static void a_join_to_a_locked_room_is_tried_again(void **state)
{
    (void)state;
    uv_loop_init(&loop);
    struct tick *t = tick_new(&loop, 20);
    struct ctx c = { 0 };
#define NOT_FOUND(room)                                                                     \
    "<presence from='" room "/Al' type='error'><error type='cancel'><item-not-found " ERRNS \
    "/></error></presence>"
    static const struct step sc[] = {
        LOGIN_STEPS,
        { "<history maxstanzas='0'/></x></presence>", NOT_FOUND(ROOM) },
        { "<history maxstanzas='0'/></x></presence>",
          "<presence from='" ROOM "/Al'>" MUCU "<item role='participant' affiliation='none'/>"
          "<status code='110'/></x></presence>" },
        { "gone@conf.localhost/Al", NOT_FOUND("gone@conf.localhost") },
        { "gone@conf.localhost/Al", NOT_FOUND("gone@conf.localhost") },
        { "gone@conf.localhost/Al", NOT_FOUND("gone@conf.localhost") },
        { NULL, NULL },
    };
#undef NOT_FOUND
    login(&c, t, sc);
    assert_true(session_muc_join(c.s, ROOM, "Al", NULL, 0, 0, on_join, &c) > 0);
    pump(&c.joins, 1, 5000);
    assert_int_equal(c.join_status, 0);
    assert_true(session_muc_joined(c.s, ROOM));
    assert_true(session_muc_join(c.s, "gone@conf.localhost", "Al", NULL, 0, 0, on_join, &c) > 0);
    pump(&c.joins, 2, 8000);
    assert_int_not_equal(c.join_status, 0);
    assert_false(session_muc_joined(c.s, "gone@conf.localhost"));
    wait_script_done();
    finish(&c, t);
}

/* A join the room never answers is given up when its last waiter timed out (unavailable
 * presence, the record dropped): the next join sends its presence again, and such rooms do not
 * fill the room limit. */
static void an_unanswered_join_is_given_up(void **state)
{
    (void)state;
    uv_loop_init(&loop);
    struct tick *t = tick_new(&loop, 20);
    struct ctx c = { 0 };
    static const struct step sc[] = { LOGIN_STEPS, { NULL, NULL } };
    login(&c, t, sc);
    assert_true(session_muc_join(c.s, "silent@conf.localhost", "Al", NULL, -1, 100, on_join, &c) >
                0);
    pump(&c.joins, 1, 3000);
    assert_int_equal(c.join_status, -ETIMEDOUT);
    uint64_t end = uv_now(&loop) + 3000;
    while (strstr(buf_cstr(&srv.seen), "to='silent@conf.localhost/Al' type='unavailable'") ==
               NULL &&
           uv_now(&loop) < end)
        uv_run(&loop, UV_RUN_ONCE);
    assert_non_null(
        strstr(buf_cstr(&srv.seen), "to='silent@conf.localhost/Al' type='unavailable'"));
    /* asked again: a second join presence */
    assert_true(session_muc_join(c.s, "silent@conf.localhost", "Al", NULL, -1, 100, on_join, &c) >
                0);
    end = uv_now(&loop) + 3000;
    const char *first = NULL;
    while (uv_now(&loop) < end) {
        first = strstr(buf_cstr(&srv.seen), "silent@conf.localhost/Al'><x");
        if (first != NULL && strstr(first + 1, "silent@conf.localhost/Al'><x") != NULL)
            break;
        uv_run(&loop, UV_RUN_ONCE);
    }
    assert_non_null(first);
    assert_non_null(strstr(first + 1, "silent@conf.localhost/Al'><x"));
    pump(&c.joins, 2, 3000);

    /* as many unanswered rooms as the limit, then one more */
    for (int i = 0; i < SESSION_MUC_MAX_ROOMS; i++) {
        char room[64];
        snprintf(room, sizeof(room), "r%d@conf.localhost", i);
        assert_true(session_muc_join(c.s, room, "Al", NULL, -1, 50, on_join, &c) > 0);
    }
    assert_int_equal(session_muc_join(c.s, "more@conf.localhost", "Al", NULL, -1, 50, on_join, &c),
                     -ENOSPC);
    pump(&c.joins, 2 + SESSION_MUC_MAX_ROOMS, 5000);
    assert_int_equal(c.joins, 2 + SESSION_MUC_MAX_ROOMS);
    for (int i = 0; i < 5; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    assert_true(session_muc_join(c.s, "more@conf.localhost", "Al", NULL, -1, 50, on_join, &c) > 0);
    pump(&c.joins, 3 + SESSION_MUC_MAX_ROOMS, 3000);
    finish(&c, t);
}

static void count_cb(const char *room, const struct session_muc_occupant *o, void *data)
{
    (void)room, (void)o;
    ++*(int *)data;
}

static void hist_count_cb(const char *room, const struct session_muc_msg *m, void *data)
{
    (void)room, (void)m;
    ++*(int *)data;
}

#define BIG_NICK 1000
#define BIG_OCC  140
#define BIG_BODY 5200
#define BIG_MSGS 50

static char *big_reply(size_t pos, const char *got)
{
    (void)got;
    struct buf b;
    buf_init(&b, 1 << 24);
    char nick[BIG_NICK + 1];
    if (pos == 6) { /* the join: occupants with long nicks, then us */
        for (int i = 0; i < BIG_OCC; i++) {
            memset(nick, 'n', BIG_NICK);
            nick[BIG_NICK] = '\0';
            char head[8];
            snprintf(head, sizeof(head), "%04d", i);
            memcpy(nick, head, 4);
            buf_appendf(&b,
                        "<presence from='" ROOM "/%s'>" MUCU "<item role='participant' "
                        "affiliation='none'/></x></presence>",
                        nick);
        }
        buf_appendf(&b, "<presence from='" ROOM "/Al'>" MUCU "<item role='participant' "
                        "affiliation='none'/><status code='110'/></x></presence>");
    } else if (pos == 7) { /* messages with long ids and senders */
        memset(nick, 'n', BIG_NICK);
        nick[BIG_NICK] = '\0';
        char *body = mem_alloc(BIG_BODY + 1);
        memset(body, 'b', BIG_BODY);
        body[BIG_BODY] = '\0';
        for (int i = 0; i < BIG_MSGS; i++) {
            char id[129];
            memset(id, 'i', 128);
            id[128] = '\0';
            char head[8];
            snprintf(head, sizeof(head), "%04d", i);
            memcpy(id, head, 4);
            buf_appendf(&b,
                        "<message from='" ROOM "/%s' type='groupchat' id='%s'><body>%s</body>"
                        "</message>",
                        nick, id, body);
        }
        mem_free(body);
        /* a 129-byte id is not kept: both copies are (no duplicate check without an id) */
        char id[130];
        memset(id, 'j', 129);
        id[129] = '\0';
        for (int i = 0; i < 2; i++)
            buf_appendf(&b,
                        "<message from='" ROOM "/Bob' type='groupchat' id='%s'><body>x</body>"
                        "</message>",
                        id);
    } else {
        buf_cleanup(&b);
        return NULL;
    }
    char *out = mem_strdup(buf_cstr(&b));
    buf_cleanup(&b);
    return out;
}

/* The occupants and the discussion history of a room are bounded in bytes, the senders and
 * ids counted with the text; a long id is not kept. */
static void occupants_and_history_are_bounded_in_bytes(void **state)
{
    (void)state;
    uv_loop_init(&loop);
    struct tick *t = tick_new(&loop, 20);
    struct ctx c = { 0 };
    static const struct step sc[] = {
        LOGIN_STEPS,
        { "<history maxstanzas='0'/></x></presence>", NULL },
        { "<body>go</body>", NULL },
        { NULL, NULL },
    };
    srv.reply = big_reply;
    login(&c, t, sc);
    srv.reply = big_reply;
    assert_true(session_muc_join(c.s, ROOM, "Al", NULL, 0, 0, on_join, &c) > 0);
    pump(&c.joins, 1, 5000);
    assert_int_equal(c.join_status, 0);
    int n = 0;
    assert_true(session_muc_occupants(c.s, ROOM, count_cb, &n) > 0);
    /* 128 KiB of nicks: 131 of the long ones, and ours */
    assert_int_equal(n, (128 << 10) / BIG_NICK + 1);

    send_body(c.s, "go");
    wait_script_done();
    n = 0;
    session_muc_history(c.s, ROOM, hist_count_cb, &n);
    size_t entry = BIG_BODY + strlen(ROOM "/") + BIG_NICK + 128;
    size_t last = 1 + strlen(ROOM "/Bob");
    /* the newest kept while the whole is within 256 KiB */
    size_t kept = ((256 << 10) - 2 * last) / entry;
    assert_int_equal(n, (int)kept + 2);
    srv.reply = NULL;
    finish(&c, t);
}

/* Every re-entry refused: the room is given up after REJOIN_TRIES and the user's pages are told
 * (sparkgate.muc roomLost with the error condition). */
#define REFUSED                                                                            \
    {                                                                                      \
        "<history since='", "<presence from='" ROOM "/Al' type='error'><error "            \
                            "type='cancel'><item-not-found " ERRNS "/></error></presence>" \
    }
static const struct step after_loss_refused[] = {
    { "<stream:stream", HDR PLAIN_ONLY },
    { "</auth>", SUCCESS },
    { "<stream:stream", FEATURES },
    { "</bind></iq>", BOUND },
    REFUSED,
    REFUSED,
    REFUSED,
    REFUSED,
    REFUSED,
    { NULL, NULL },
};

static void a_room_refused_after_reconnection_is_reported_lost(void **state)
{
    (void)state;
    uv_loop_init(&loop);
    struct tick *t = tick_new(&loop, 20);
    struct ctx c = { 0 };
    srv_start(before_loss);
    c.mgr = mgr_new(t, true);
    assert_int_equal(session_login(c.mgr, "alice", "secret", on_login, &c, NULL), 0);
    pump(&c.logins, 1, 3000);
    assert_true(session_muc_join(c.s, ROOM, "Al", NULL, 0, 0, on_join, &c) > 0);
    pump(&c.joins, 1, 3000);
    assert_int_equal(c.join_status, 0);
    send_body(c.s, "bye");
    uint64_t end = uv_now(&loop) + 3000;
    while (!session_reconnecting(c.s) && uv_now(&loop) < end)
        uv_run(&loop, UV_RUN_ONCE);
    assert_true(session_reconnecting(c.s));
    uint16_t port = srv.port;
    srv_stop();
    uv_run(&loop, UV_RUN_NOWAIT);
    srv_start_on(after_loss_refused, port);
    end = uv_now(&loop) + 20000;
    while (srv.script[srv.pos].wait != NULL && uv_now(&loop) < end) {
        uv_run(&loop, UV_RUN_ONCE);
        if (cred_pending.cb != NULL) {
            session_cred_cb *cb = cred_pending.cb;
            cred_pending.cb = NULL;
            struct session_cred cred = { .password = "secret" };
            cb(0, &cred, cred_pending.arg);
        }
    }
    assert_null(srv.script[srv.pos].wait);
    for (int i = 0; i < 5; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    assert_false(session_muc_joined(c.s, ROOM));
    assert_int_equal(session_muc_rooms(c.s, NULL, NULL), 0);
    struct events_log *log = session_events(c.s);
    int lost = 0;
    bool gone = false;
    for (const struct event *ev = events_log_next(log, events_log_oldest_id(log) - 1, &gone); ev;
         ev = events_log_next(log, ev->id, &gone)) {
        if (strcmp(ev->name, "sparkgate.muc") != 0)
            continue;
        lost++;
        assert_string_equal(ev->json, "{\"type\":\"roomLost\",\"room\":\"" ROOM
                                      "\",\"reason\":\"item-not-found\"}");
    }
    assert_int_equal(lost, 1);
    finish(&c, t);
}

int main(void)
{
    (void)cbs;
    (void)opts_for;
    (void)run_until;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(joins_tracks_occupants_refuses_times_out_and_leaves),
        cmocka_unit_test(pending_join_is_cancelled_when_the_session_ends),
        cmocka_unit_test(rooms_are_entered_again_after_a_fresh_reconnection),
        cmocka_unit_test(self_presence_needs_status_110_from_the_room),
        cmocka_unit_test(an_unanswered_join_is_given_up),
        cmocka_unit_test(occupants_and_history_are_bounded_in_bytes),
        cmocka_unit_test(a_room_refused_after_reconnection_is_reported_lost),
        cmocka_unit_test(a_join_to_a_locked_room_is_tried_again),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    xmpp_stream_global_cleanup();
    return rc;
}
