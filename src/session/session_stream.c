/* session_stream.c: what every stream of a session presents to the XMPP server (address, TLS,
 * credential, the per-user SASL2 user-agent id FAST tokens are bound to, XEP-0198), and the
 * hand-off of what a successful authentication lets the vault keep. */
#include "session/session_int.h"

#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

void session__report_credential(struct session_mgr *mgr, const char *username,
                                const struct xmpp_stream *st)
{
    if (mgr->o.on_credential == NULL || st == NULL)
        return;
    struct xmpp_scram_cred scram;
    struct xmpp_fast_token fast;
    bool have_scram = xmpp_stream_scram_cred(st, &scram) == 0;
    bool have_fast = xmpp_stream_fast_token(st, &fast) == 0;
    if (have_scram || have_fast)
        mgr->o.on_credential(username, have_scram ? &scram : NULL, have_fast ? &fast : NULL,
                             mgr->o.data);
    OPENSSL_cleanse(&scram, sizeof(scram));
    OPENSSL_cleanse(&fast, sizeof(fast));
}

/* The SASL2 user-agent id of a user: a UUID derived from the seed and the username, stable
 * across restarts (FAST tokens are bound to it). */
static void user_agent_id(const struct session_mgr *mgr, const char *user, char out[37])
{
    uint8_t md[32];
    unsigned int mdlen = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    EVP_DigestUpdate(ctx, mgr->ua_seed, sizeof(mgr->ua_seed));
    EVP_DigestUpdate(ctx, user, strlen(user));
    EVP_DigestFinal_ex(ctx, md, &mdlen);
    EVP_MD_CTX_free(ctx);
    md[6] = (uint8_t)((md[6] & 0x0f) | 0x50); /* version 5 style, variant 10 */
    md[8] = (uint8_t)((md[8] & 0x3f) | 0x80);
    static const char hex[] = "0123456789abcdef";
    char *p = out;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *p++ = '-';
        *p++ = hex[md[i] >> 4];
        *p++ = hex[md[i] & 15];
    }
    *p = '\0';
}

void session__stream_opts(struct session_mgr *mgr, struct xmpp_stream_opts *o, const char *username,
                          const struct session_cred *cred, const char *resource, bool auth_only,
                          char ua[37])
{
    memset(o, 0, sizeof(*o));
    o->host = mgr->host;
    o->port = mgr->o.port;
    o->domain = mgr->domain;
    o->username = username;
    o->password = cred->password;
    o->scram = cred->password ? NULL : cred->scram;
    o->fast = cred->password || cred->scram ? NULL : cred->fast;
    o->request_fast = mgr->o.request_fast;
    user_agent_id(mgr, username, ua);
    o->user_agent_id = ua;
    o->resource = resource;
    o->tls = mgr->o.tls_mode;
    o->tls_ctx = mgr->o.tls;
    o->tick = mgr->o.tick;
    o->connect_timeout_ms = mgr->o.connect_timeout_ms;
    o->max_stanza = mgr->o.max_stanza;
    o->auth_only = auth_only;
    o->sm = !auth_only;
}
