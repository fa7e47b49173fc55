/* test_session_roster.c: the roster and presence cache of a session, against the scripted
 * server of the stream tests: the roster result of the login fills it; presences of contact
 * resources are kept (best = highest priority, then the newest) and dropped when unavailable;
 * MUC occupant presences never enter it; roster pushes change it (from the account only); and
 * the bounds hold: SESSION_ROSTER_MAX_RESOURCES per contact (a flood of resources keeps only the
 * newest), SESSION_ROSTER_MAX_PRESENCES in all, SESSION_ROSTER_MAX_ITEMS contacts. Each test
 * closes every handle and checks uv_loop_close() == 0. */
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

#define ROSTER_RESULT                                                                 \
    "<iq type='result' id='sg1'><query xmlns='jabber:iq:roster'>"                     \
    "<item jid='Bob@localhost' name='Bob' subscription='both'><group>Friends</group>" \
    "<group>Friends</group><group>Work</group></item>"                                \
    "<item jid='carol@localhost' subscription='to'/>"                                 \
    "<item jid='room@conference.localhost' subscription='to'/>"                       \
    "<item jid='bad jid@localhost' subscription='both'/>"                             \
    "</query></iq>"

struct ctx {
    struct session_mgr *mgr;
    struct session *s;
    int logins, login_status;
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

/* Sends a message whose body is `tag`: the script's cue for the next batch. */
static void cue(struct session *s, const char *tag)
{
    struct xmpp_stanza *m = xmpp_stanza_new("message", XMPP_NS_CLIENT);
    xmpp_stanza_set_attr(m, "to", "nobody@localhost");
    xmpp_stanza_add_text_child(m, "body", NULL, tag);
    assert_int_equal(session_send(s, m), 0);
    xmpp_stanza_unref(m);
}

static void login(struct ctx *c, struct tick *t, const struct step *script)
{
    srv_start(script);
    struct session_mgr_opts o = {
        .loop = &loop,
        .tick = t,
        .host = "127.0.0.1",
        .port = srv.port,
        .domain = "localhost",
        .tls_mode = XMPP_TLS_OFF,
        .connect_timeout_ms = 2000,
        .max_stanza = (size_t)4 << 20,
        .resource_prefix = "sw-",
        .linger_ms = 60000,
        .idle_timeout_ms = 600000,
        .iq_timeout_ms = 5000,
        .max_sessions = 4,
        .ring_len = 64,
        .data = c,
    };
    c->mgr = session_mgr_new(&o);
    assert_int_equal(session_login(c->mgr, "alice", "secret", on_login, c, NULL), 0);
    pump(&c->logins, 1, 5000);
    assert_int_equal(c->login_status, 0);
}

static void finish(struct ctx *c, struct tick *t)
{
    session_mgr_free(c->mgr, mgr_freed, c);
    pump(&c->freed, 1, 5000);
    assert_int_equal(c->freed, 1);
    finish_loop(t);
}

#define LOGIN_STEPS                                                                               \
    { "<stream:stream", HDR PLAIN_ONLY }, { "</auth>", SUCCESS }, { "<stream:stream", FEATURES }, \
        { "</bind></iq>", BOUND }, { "jabber:iq:roster", ROSTER_RESULT },                         \
        { "disco#info", DISCO_REPLY },                                                            \
    {                                                                                             \
        "vcard-temp", "<iq type='result' id='sg3'/>"                                              \
    }

#define P(from, inner) "<presence from='" from "'>" inner "</presence>"
#define U(from)        "<presence from='" from "' type='unavailable'/>"

static const struct step presence_script[] = {
    LOGIN_STEPS,
    { "<body>1</body>",
      P("bob@localhost/phone", "<show>away</show><status>lunch</status><priority>5</priority>")
          P("bob@localhost/laptop", "<priority>1</priority>")
              P("bob@localhost/tablet", "<show>bogus</show><priority>999</priority>")
      /* an occupant of a room that is also a roster item: not a contact presence */
      "<presence from='room@conference.localhost/nick'><x "
      "xmlns='http://jabber.org/protocol/muc#user'><item affiliation='none' "
      "role='participant'/></x></presence>"
      /* not a contact: not remembered */
      P("mallory@evil.example/x", "") },
    { "<body>2</body>", U("bob@localhost/phone") },
    { "<body>3</body>", U("Bob@localhost") },
    { "<body>4</body>",
      /* a push from the account adds dave and removes carol; a foreign one is refused */
      "<iq type='set' id='push1'><query xmlns='jabber:iq:roster'><item jid='dave@localhost' "
      "subscription='none' ask='subscribe' name='Dave'/></query></iq>"
      "<iq type='set' id='push2' from='alice@localhost'><query xmlns='jabber:iq:roster'><item "
      "jid='carol@localhost' subscription='remove'/></query></iq>"
      "<iq type='set' id='push3' from='mallory@evil.example/x'><query "
      "xmlns='jabber:iq:roster'><item jid='evil@evil.example' subscription='both'/></query></iq>"
      /* another client of the account is not the server: refused too */
      "<iq type='set' id='push4' from='alice@localhost/other'><query "
      "xmlns='jabber:iq:roster'><item jid='eve@localhost' subscription='both'/></query></iq>" },
    { "<body>5</body>", NULL },
    { NULL, NULL },
};

struct seen {
    char jids[8][64];
    int n;
};

static void collect(const struct session_roster_item *it, void *data)
{
    struct seen *x = data;
    if (x->n < 8)
        snprintf(x->jids[x->n], sizeof(x->jids[0]), "%s", it->jid);
    x->n++;
}

static void roster_and_presence_follow_the_server(void **state)
{
    (void)state;
    uv_loop_init(&loop);
    struct tick *t = tick_new(&loop, 50);
    struct ctx c = { 0 };
    login(&c, t, presence_script);
    struct session *s = c.s;

    /* the login's roster result, sorted, the malformed item left out */
    assert_true(session_roster_loaded(s));
    assert_int_equal(session_roster_count(s), 3);
    struct seen x = { 0 };
    session_roster_foreach(s, collect, &x);
    assert_int_equal(x.n, 3);
    assert_string_equal(x.jids[0], "bob@localhost");
    assert_string_equal(x.jids[1], "carol@localhost");
    assert_string_equal(x.jids[2], "room@conference.localhost");
    struct session_roster_item it;
    assert_true(session_roster_get(s, "BOB@localhost/any", &it));
    assert_string_equal(it.name, "Bob");
    assert_int_equal(it.subscription, SESSION_SUB_BOTH);
    assert_int_equal(it.n_groups, 2); /* the duplicate group is dropped */
    assert_string_equal(it.groups[0], "Friends");
    assert_string_equal(it.groups[1], "Work");
    assert_false(it.presence.available);
    assert_false(it.presence.known);
    assert_false(session_roster_get(s, "mallory@evil.example", &it));

    /* three resources: the highest priority wins; invalid show/priority are ignored */
    cue(s, "1");
    uint64_t end = uv_now(&loop) + 2000;
    while (srv.pos < 8 && uv_now(&loop) < end)
        uv_run(&loop, UV_RUN_ONCE);
    for (int i = 0; i < 20; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    assert_true(session_roster_get(s, "bob@localhost", &it));
    assert_true(it.presence.available);
    assert_string_equal(it.presence.show, "away");
    assert_string_equal(it.presence.status, "lunch");
    assert_int_equal(it.presence.priority, 5);
    /* the room occupant did not become the room's presence */
    assert_true(session_roster_get(s, "room@conference.localhost", &it));
    assert_false(it.presence.available);
    assert_false(it.presence.known);
    assert_false(session_roster_get(s, "mallory@evil.example", &it));

    /* phone leaves: the laptop (priority 1) beats the tablet (bad priority = 0) */
    cue(s, "2");
    end = uv_now(&loop) + 2000;
    while (srv.pos < 9 && uv_now(&loop) < end)
        uv_run(&loop, UV_RUN_ONCE);
    for (int i = 0; i < 20; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    assert_true(session_roster_get(s, "bob@localhost", &it));
    assert_true(it.presence.available);
    assert_null(it.presence.show);
    assert_null(it.presence.status);
    assert_int_equal(it.presence.priority, 1);

    /* unavailable from the bare JID: every resource goes, the contact is known offline */
    cue(s, "3");
    end = uv_now(&loop) + 2000;
    while (srv.pos < 10 && uv_now(&loop) < end)
        uv_run(&loop, UV_RUN_ONCE);
    for (int i = 0; i < 20; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    assert_true(session_roster_get(s, "bob@localhost", &it));
    assert_false(it.presence.available);
    assert_true(it.presence.known);

    /* pushes */
    cue(s, "4");
    cue(s, "5");
    end = uv_now(&loop) + 2000;
    while (srv.pos < 12 && uv_now(&loop) < end)
        uv_run(&loop, UV_RUN_ONCE);
    end = uv_now(&loop) + 200;
    while (uv_now(&loop) < end)
        uv_run(&loop, UV_RUN_NOWAIT);
    assert_true(session_roster_get(s, "dave@localhost", &it));
    assert_true(it.ask);
    assert_int_equal(it.subscription, SESSION_SUB_NONE);
    assert_string_equal(it.name, "Dave");
    assert_false(session_roster_get(s, "carol@localhost", &it));
    assert_false(session_roster_get(s, "evil@evil.example", &it));
    assert_int_equal(session_roster_count(s), 3);
    const char *seen = buf_cstr(&srv.seen);
    assert_non_null(strstr(seen, "<iq xmlns='jabber:client' type='result' id='push1'/>"));
    const char *refused = strstr(seen, "id='push3'");
    assert_non_null(refused);
    assert_non_null(strstr(refused, "<service-unavailable"));
    assert_false(session_roster_get(s, "eve@localhost", &it));
    const char *refused4 = strstr(seen, "id='push4'");
    assert_non_null(refused4);
    assert_non_null(strstr(refused4, "<service-unavailable"));
    assert_non_null(strstr(seen, "<iq xmlns='jabber:client' type='error'"));

    /* the own presence: what the next fresh binding announces */
    assert_int_equal(session_presence_set(s, true, "bogus", NULL, 0), -EINVAL);
    assert_int_equal(session_presence_set(s, true, "dnd", NULL, 200), -EINVAL);
    assert_int_equal(session_presence_set(s, true, "dnd", "busy", -3), 0);
    struct session_presence own;
    session_presence_own(s, &own);
    assert_true(own.available);
    assert_string_equal(own.show, "dnd");
    assert_string_equal(own.status, "busy");
    assert_int_equal(own.priority, -3);
    finish(&c, t);
}

/* ---- bounds ---- */

static struct step bounds_script[12];
static char *flood_resources, *flood_contacts, *big_roster;

/* One contact's roster of n contacts c0..c<n-1>@localhost (plus carol). */
static char *make_roster(size_t n)
{
    struct buf b;
    buf_init(&b, (size_t)8 << 20);
    buf_appends(&b, "<iq type='result' id='sg1'><query xmlns='jabber:iq:roster'>"
                    "<item jid='carol@localhost' subscription='both'/>");
    char line[128];
    for (size_t i = 0; i < n; i++) {
        snprintf(line, sizeof(line), "<item jid='c%zu@localhost' subscription='both'/>", i);
        buf_appends(&b, line);
    }
    buf_appends(&b, "</query></iq>");
    char *r = mem_strdup(buf_cstr(&b));
    buf_cleanup(&b);
    return r;
}

static void bounds_hold_against_floods(void **state)
{
    (void)state;
    /* the roster has one contact more than the cap (5001 items, ~250 KB) */
    big_roster = make_roster(SESSION_ROSTER_MAX_ITEMS);
    /* carol sends 3000 resources; then unavailable for the newest MAX_RESOURCES of them */
    struct buf b;
    buf_init(&b, (size_t)8 << 20);
    char line[160];
    for (int i = 0; i < 3000; i++) {
        snprintf(line, sizeof(line), "<presence from='carol@localhost/r%d'/>", i);
        buf_appends(&b, line);
    }
    for (int i = 3000 - SESSION_ROSTER_MAX_RESOURCES; i < 3000; i++) {
        snprintf(line, sizeof(line), "<presence from='carol@localhost/r%d' type='unavailable'/>",
                 i);
        buf_appends(&b, line);
    }
    flood_resources = mem_strdup(buf_cstr(&b));
    buf_cleanup(&b);
    /* 300 contacts with MAX_RESOURCES each: the total cap is reached part-way */
    buf_init(&b, (size_t)8 << 20);
    for (int cnt = 0; cnt < 300; cnt++) {
        for (int r = 0; r < SESSION_ROSTER_MAX_RESOURCES; r++) {
            snprintf(line, sizeof(line), "<presence from='c%d@localhost/r%d'/>", cnt, r);
            buf_appends(&b, line);
        }
    }
    flood_contacts = mem_strdup(buf_cstr(&b));
    buf_cleanup(&b);

    const struct step steps[] = {
        { "<stream:stream", HDR PLAIN_ONLY },
        { "</auth>", SUCCESS },
        { "<stream:stream", FEATURES },
        { "</bind></iq>", BOUND },
        { "jabber:iq:roster", big_roster },
        { "disco#info", DISCO_REPLY },
        { "vcard-temp", "<iq type='result' id='sg3'/>" },
        { "<body>1</body>", flood_resources },
        { "<body>2</body>", flood_contacts },
        { "<body>3</body>", NULL },
        { NULL, NULL },
    };
    memcpy(bounds_script, steps, sizeof(steps));

    uv_loop_init(&loop);
    struct tick *t = tick_new(&loop, 50);
    struct ctx c = { 0 };
    login(&c, t, bounds_script);
    struct session *s = c.s;
    assert_int_equal(session_roster_count(s), SESSION_ROSTER_MAX_ITEMS); /* bound + 1 offered */

    cue(s, "1");
    cue(s, "2");
    cue(s, "3");
    uint64_t end = uv_now(&loop) + 10000;
    while (srv.pos < 10 && uv_now(&loop) < end)
        uv_run(&loop, UV_RUN_ONCE);
    end = uv_now(&loop) + 500;
    while (uv_now(&loop) < end)
        uv_run(&loop, UV_RUN_NOWAIT);

    /* only the newest MAX_RESOURCES resources were kept: once they left, carol is offline */
    struct session_roster_item it;
    assert_true(session_roster_get(s, "carol@localhost", &it));
    assert_true(it.presence.known);
    assert_false(it.presence.available);

    /* the total: (MAX_PRESENCES / MAX_RESOURCES) contacts fit, the next ones were dropped */
    int fit = SESSION_ROSTER_MAX_PRESENCES / SESSION_ROSTER_MAX_RESOURCES;
    char jid[64];
    snprintf(jid, sizeof(jid), "c%d@localhost", fit - 1);
    assert_true(session_roster_get(s, jid, &it));
    assert_true(it.presence.available);
    snprintf(jid, sizeof(jid), "c%d@localhost", fit);
    assert_true(session_roster_get(s, jid, &it));
    assert_false(it.presence.available);
    assert_true(it.presence.known);
    finish(&c, t);
    mem_free(big_roster);
    mem_free(flood_resources);
    mem_free(flood_contacts);
}

int main(void)
{
    (void)cbs;
    (void)opts_for;
    (void)run_until;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(roster_and_presence_follow_the_server),
        cmocka_unit_test(bounds_hold_against_floods),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    xmpp_stream_global_cleanup();
    return rc;
}
