/* stream_opts.c: validation of xmpp_stream_opts (credentials, names, TLS, XEP-0198 resume)
 * before a stream is allocated. */
#include <string.h>

#include "xmpp/jid.h"
#include "xmpp/xmpp_int.h"

static bool scram_valid(const struct xmpp_scram_cred *c)
{
    size_t want = strcmp(c->mech, "SCRAM-SHA-1") == 0     ? 20
                  : strcmp(c->mech, "SCRAM-SHA-256") == 0 ? 32
                                                          : 0;
    if (memchr(c->mech, '\0', sizeof(c->mech)) == NULL || want == 0 || c->salted_len != want)
        return false;
    if (c->iterations == 0 || c->iterations > XMPP__SCRAM_MAX_ITER)
        return false;
    size_t n = strnlen(c->salt, sizeof(c->salt));
    return n > 0 && n < sizeof(c->salt) &&
           strspn(c->salt, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=") ==
               n;
}

static bool fast_valid(const struct xmpp_fast_token *t)
{
    size_t n = strnlen(t->token, sizeof(t->token));
    return memchr(t->mech, '\0', sizeof(t->mech)) != NULL &&
           strcmp(t->mech, XMPP__FAST_MECH) == 0 && n > 0 && n < sizeof(t->token);
}

static bool ua_id_valid(const char *id)
{
    size_t n = strlen(id);
    return n > 0 && n <= XMPP__UA_ID_MAX &&
           strspn(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-") == n;
}

/* The credential: a password, or else exactly one of scram / fast (registration: password). */
static bool cred_valid(const struct xmpp_stream_opts *o, bool reg)
{
    if (o->user_agent_id != NULL && !ua_id_valid(o->user_agent_id))
        return false;
    if (o->request_fast && !reg && o->user_agent_id == NULL)
        return false; /* a token is bound to the user agent: it would be unusable */
    if (o->password != NULL)
        return true;
    if (reg || (o->scram == NULL) == (o->fast == NULL))
        return false;
    if (o->scram != NULL)
        return scram_valid(o->scram);
    return fast_valid(o->fast) && o->user_agent_id != NULL;
}

bool xmpp__opts_valid(const struct xmpp_stream_opts *o, const struct xmpp_stream_cbs *cbs, bool reg)
{
    if (o == NULL || cbs == NULL || cbs->on_ready == NULL || o->tick == NULL)
        return false;
    if (o->host == NULL || o->host[0] == '\0' || o->port == 0 || !cred_valid(o, reg))
        return false;
    if (!xmpp_jid_local_valid(o->username) || o->domain == NULL)
        return false;
    struct xmpp_jid j;
    if (xmpp_jid_parse(&j, o->domain) < 0)
        return false;
    bool plain_domain = j.local == NULL && j.resource == NULL && strcmp(j.domain, o->domain) == 0;
    xmpp_jid_cleanup(&j);
    if (!plain_domain)
        return false;
    if (o->resource != NULL &&
        (o->resource[0] == '\0' || strlen(o->resource) > 1023 ||
         xmpp__utf8_valid_prefix(o->resource, strlen(o->resource)) != strlen(o->resource)))
        return false;
    if ((unsigned)o->tls > XMPP_TLS_OFF || (o->tls != XMPP_TLS_OFF && o->tls_ctx == NULL))
        return false;
    if (o->resume != NULL && (!o->sm || o->auth_only || reg))
        return false;
    return true;
}
