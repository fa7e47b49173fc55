/* test_xmpp_features.c: xmpp_stream_has_feature reports the stream features the server offered
 * after authentication (XEP-0352 CSI and friends), against a scripted server on a loopback
 * socket. */
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
#include "xmpp/stanza.h"
#include "xmpp/stream.h"
#include "xmpp_fake_server.h"

static const struct step csi_script[] = {
    { "<stream:stream", HDR PLAIN_ONLY },
    { "</auth>", "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>" },
    { "<stream:stream",
      HDR "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>"
          "<csi xmlns='urn:xmpp:csi:0'/><ver xmlns='urn:xmpp:features:rosterver'/>"
          "</stream:features>" },
    { "</iq>", "<iq type='result' id='sg-bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
               "<jid>alice@localhost/res</jid></bind></iq>" },
    { NULL, NULL },
};

static void stream_reports_the_features_offered_after_authentication(void **state)
{
    (void)state;
    uv_loop_init(&loop);
    struct tick *t = tick_new(&loop, 50);
    srv_start(csi_script);
    struct xmpp_stream_opts o = opts_for(t, XMPP_TLS_OFF, NULL);
    struct client c = { 0 };
    struct xmpp_stream *s = NULL;
    assert_int_equal(xmpp_stream_open(&loop, &o, &cbs, &c, &s), 0);
    assert_false(xmpp_stream_has_feature(s, "csi", "urn:xmpp:csi:0"));
    run_until(&c.ready, 1, 3000);
    assert_int_equal(c.status, 0);
    assert_true(xmpp_stream_has_feature(s, "csi", "urn:xmpp:csi:0"));
    assert_true(xmpp_stream_has_feature(s, "ver", "urn:xmpp:features:rosterver"));
    assert_true(xmpp_stream_has_feature(s, "bind", "urn:ietf:params:xml:ns:xmpp-bind"));
    assert_false(xmpp_stream_has_feature(s, "csi", "urn:xmpp:csi:1"));
    assert_false(xmpp_stream_has_feature(s, "sm", "urn:xmpp:sm:3"));
    /* the features before authentication are not the ones that count */
    assert_false(xmpp_stream_has_feature(s, "mechanisms", "urn:ietf:params:xml:ns:xmpp-sasl"));
    xmpp_stream_free(s);
    finish_loop(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(stream_reports_the_features_offered_after_authentication),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    xmpp_stream_global_cleanup();
    return rc;
}
