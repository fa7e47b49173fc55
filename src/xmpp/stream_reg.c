/* stream_reg.c: XEP-0077 in-band registration on an unauthenticated stream. The registration
 * is a stream in an internal mode: connect and TLS as for a login, then, instead of SASL, one
 * <iq type='set'><query xmlns='jabber:iq:register'> with username and password; its answer ends
 * the stream like an auth_only login. No <iq type='get'/> first: a server that wants more than
 * username and password answers not-acceptable (-EINVAL). */
#define LOG_MODULE "xmpp"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "core/log.h"
#include "core/mem.h"
#include "xmpp/stanza.h"
#include "xmpp/xmpp_int.h"

struct xmpp_register {
    struct xmpp_stream *s;
    xmpp_register_cb *cb;
    void *data;
};

/* on_ready of the registration stream: the outcome. Frees everything, then reports. */
static void reg_ready(struct xmpp_stream *s, int status, void *data)
{
    struct xmpp_register *r = data;
    xmpp_register_cb *cb = r->cb;
    void *cb_data = r->data;
    xmpp_stream_free(s);
    mem_free(r);
    cb(status, cb_data);
}

/* The password travels as XML text: UTF-8 without the control characters XML 1.0 forbids. */
static bool password_valid(const char *pw)
{
    if (pw == NULL || pw[0] == '\0')
        return false;
    size_t n = strlen(pw);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)pw[i];
        if (c < 0x20 && c != '\t' && c != '\n' && c != '\r')
            return false;
    }
    return xmpp__utf8_valid_prefix(pw, n) == n;
}

int xmpp_register(uv_loop_t *loop, const struct xmpp_stream_opts *opts, xmpp_register_cb *cb,
                  void *data, struct xmpp_register **out)
{
    static const struct xmpp_stream_cbs cbs = { .on_ready = reg_ready };
    if (cb == NULL || out == NULL || opts == NULL || !password_valid(opts->password))
        return -EINVAL;
    struct xmpp_register *r = mem_calloc(1, sizeof(*r));
    r->cb = cb;
    r->data = data;
    int rc = xmpp__open(loop, opts, &cbs, r, true, &r->s);
    if (rc < 0) {
        mem_free(r);
        return rc;
    }
    *out = r;
    return 0;
}

/* Valid only before cb has fired (cb releases the registration). */
void xmpp_register_cancel(struct xmpp_register *r)
{
    if (r == NULL)
        return;
    xmpp_stream_free(r->s);
    mem_free(r);
}

/* Appends text with <, >, & escaped (password characters are otherwise arbitrary). */
static size_t escape_text(char *out, const char *in, size_t len)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        const char *e = in[i] == '<'   ? "&lt;"
                        : in[i] == '>' ? "&gt;"
                        : in[i] == '&' ? "&amp;"
                                       : NULL;
        if (e != NULL) {
            memcpy(out + o, e, strlen(e));
            o += strlen(e);
        } else {
            out[o++] = in[i];
        }
    }
    return o;
}

void xmpp__reg_features(struct xmpp_stream *s, const struct xmpp_stanza *features)
{
    if (xmpp_stanza_child(features, "register", XMPP__NS_REGF) == NULL) {
        log_info("register", "jid=%s host=%s result=refused msg=\"registration not offered\"",
                 s->logjid, s->host);
        xmpp__finish(s, -EPERM, "registration not offered", false);
        return;
    }
    static const char head[] =
        "<iq type='set' id='" XMPP__REG_ID "'><query xmlns='" XMPP__NS_REG "'><username>";
    static const char mid[] = "</username><password>";
    static const char tail[] = "</password></query></iq>";
    /* the local part is a valid JID local part: none of ' " & < > can occur in it */
    size_t ul = strlen(s->username);
    size_t cap = sizeof(head) + ul + sizeof(mid) + 5 * s->password_len + sizeof(tail);
    char *x = mem_alloc(cap);
    size_t o = 0;
    memcpy(x + o, head, sizeof(head) - 1);
    o += sizeof(head) - 1;
    memcpy(x + o, s->username, ul);
    o += ul;
    memcpy(x + o, mid, sizeof(mid) - 1);
    o += sizeof(mid) - 1;
    o += escape_text(x + o, s->password, s->password_len);
    memcpy(x + o, tail, sizeof(tail) - 1);
    o += sizeof(tail) - 1;
    int rc = xmpp__write(s, x, o);
    OPENSSL_cleanse(x, cap);
    mem_free(x);
    xmpp__sasl_cleanup(s); /* wipes the password: it is not needed any more */
    if (rc < 0) {
        xmpp__finish(s, -ECONNRESET, "write failed", false);
        return;
    }
    s->state = XMPP__ST_REGISTER;
}

static int map_condition(const char *cond)
{
    static const struct {
        const char *cond;
        int status;
    } map[] = {
        { "conflict", -EEXIST },
        { "not-allowed", -EPERM },
        { "forbidden", -EPERM },
        { "service-unavailable", -EPERM },
        { "registration-required", -EPERM },
        { "feature-not-implemented", -EPERM },
        { "policy-violation", -EPERM },
        { "not-acceptable", -EINVAL },
        { "bad-request", -EINVAL },
        { "jid-malformed", -EINVAL },
    };

    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        if (strcmp(cond, map[i].cond) == 0)
            return map[i].status;
    }
    return -EPROTO;
}

void xmpp__reg_result(struct xmpp_stream *s, const struct xmpp_stanza *iq)
{
    const char *type = xmpp_stanza_attr(iq, "type");
    if (type != NULL && strcmp(type, "result") == 0) {
        log_info("register", "jid=%s host=%s result=ok", s->logjid, s->host);
        xmpp__ready(s);
        return;
    }
    struct xmpp_stanza *e = xmpp_stanza_child(iq, "error", NULL);
    struct xmpp_stanza *c = e ? xmpp_stanza_child(e, NULL, XMPP_NS_STANZAS) : NULL;
    const char *cond = c ? xmpp_stanza_name(c) : "unknown";
    int status = type != NULL && strcmp(type, "error") == 0 ? map_condition(cond) : -EPROTO;
    log_info("register", "jid=%s host=%s result=fail condition=%s", s->logjid, s->host, cond);
    xmpp__finish(s, status, status == -EEXIST ? "conflict" : "registration refused", false);
}
