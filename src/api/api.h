/* api.h: the SparkWeb REST surface and the event-stream endpoints, one file per contract tag
 * (auth_api.c, totp_api.c, webauthn_api.c, chat_api.c, sse_api.c...). Handlers validate input,
 * authenticate the caller (token, or Basic with a session opened on demand), call session/ and
 * answer with the contract's JSON and error model; storage goes through store/'s asynchronous
 * calls, never SQL. Loop thread only. Contract: spec/sparkweb-api.md §1-§3. */
#ifndef SPARKGATE_API_API_H
#define SPARKGATE_API_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct auth;
struct http_server;
struct ratelimit;
struct session_mgr;
struct sse_hub;
struct store_db;
struct tick;
struct api_state;
struct push;
struct xmpp_scram_cred;
struct xmpp_fast_token;
struct session_cred;
struct push_client;

struct api_deps {
    struct http_server *http;
    struct auth *auth;
    struct session_mgr *sessions;
    struct sse_hub *sse;
    struct store_db *db;
    struct tick *tick;
    struct ratelimit *ratelimit;        /* per username ("u:<user>") */
    struct ratelimit *ratelimit_ip;     /* per client address ("ip:<addr>"): more free failures,
                                           since many users may share one address (NAT) */
    struct ratelimit *ratelimit_starts; /* public ceremony starts per address (each counts) */
    unsigned max_streams_per_user;
    const char *domain;    /* xmpp.domain */
    uint8_t vault_key[32]; /* seals vault entries */
    bool store_password;   /* vault.store_password */
    bool totp_single_factor;
    const char *totp_issuer;
    uint64_t basic_cache_ms;
    const char *trusted_proxies; /* http.trusted_proxies */
    const char *rp_id;           /* resolved WebAuthn settings */
    const char *rp_name;
    const char *origins;           /* comma-separated */
    const char *user_verification; /* required|preferred|discouraged */
    struct push *push;             /* Web Push sender (NULL: W1-W6 answer 503) */
    bool push_auto;                /* push.auto */
    bool push_include_body;        /* push.include_body */
    const char *push_admins;       /* push.admins: comma-separated usernames */
    uint64_t push_token_ms;        /* push.action_token_lifetime */
    bool logout_tab;               /* session.logout = tab: logout ends one tab, not all */
    struct api_state *state;       /* set by api_register_all */

    /* xmpp.muc_service, xmpp.pubsub_service, xmpp.upload_service ("" or NULL: XEP-0030
     * discovery) */
    const char *muc_service;
    const char *pubsub_service;
    const char *upload_service;

    uint64_t sse_ticket_ms; /* sse.ticket_lifetime */
    size_t sse_max_tickets; /* sse.max_tickets */

    size_t max_raw_stanza; /* api.max_raw_stanza: largest body of POST /xmpp (K11) */
    /* meet.url_template, meet.jitsi_url, meet.galene_url ("" = none): K8 without XEP-0483 */
    const char *meet_url_template;
    const char *meet_jitsi_url;
    const char *meet_galene_url;
    /* K10 link previews: a GET client (push_fetch_client_new; NULL: 503) and its limits */
    struct push_client *fetch;
    bool preview_allow_private;          /* preview.allow_private */
    const char *preview_allow_addresses; /* preview.allow_addresses: comma-separated */
    size_t preview_max_bytes;            /* preview.max_bytes */
    uint64_t preview_timeout_ms;         /* preview.timeout */
    unsigned preview_max_redirects;      /* preview.max_redirects */
    unsigned preview_rate;               /* preview.rate: fetches per user per minute */
    uint64_t preview_cache_ms;           /* preview.cache_ttl */
    size_t preview_cache_size;           /* preview.cache_size */
};

/* Registers every route and allocates d->state. 0 or a negative errno from http_route (a
 * programming error). */
int api_register_all(struct api_deps *deps);
/* Releases d->state (pending ceremonies). */
void api_free(struct api_deps *deps);

/* For session_mgr_opts.on_session_end (data = struct api_deps *): a logout revokes the user's
 * tokens; other endings keep them (the session re-opens from the vault on next use). */
void api_on_session_end(const char *username, const char *reason, void *data);
/* For session_mgr_opts.on_credential (data = struct api_deps *): seals and stores the
 * credentials in the vault. */
void api_on_credential(const char *username, const struct xmpp_scram_cred *scram,
                       const struct xmpp_fast_token *fast, void *data);
/* For session_mgr_opts.on_unseen (data = struct api_deps *): with push.auto, an event the user
 * had no sink to see (a chat message, a mention, an invitation) goes to their Web Push
 * subscriptions (contract §4.5). */
void api_on_unseen(const char *username, const char *name, json_t *payload, void *data);
/* For session_mgr_opts.get_credential (data = struct api_deps *): the user's preferred vault
 * entry that opens (FAST token, SCRAM SaltedPassword, then the password when
 * vault.store_password is on), or -ENOKEY when there is none. */
void api_get_credential(const char *username,
                        void (*cb)(int status, const struct session_cred *cred, void *arg),
                        void *arg, void *data);
/* For session_mgr_opts.on_credential_refused (data = struct api_deps *): deletes the entry of
 * that kind. */
void api_on_credential_refused(const char *username, const char *kind, int status, void *data);

#endif
