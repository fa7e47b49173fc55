/* main.c: loads the settings, wires the modules together on one libuv loop, runs it, and shuts
 * down gracefully on SIGINT/SIGTERM. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <uv.h>

#include "api/api.h"
#include "auth/auth.h"
#include "auth/ratelimit.h"
#include "core/config.h"
#include "core/mem.h"
#include "core/tick.h"
#include "events/events.h"
#include "http/http.h"
#include "push/push.h"
#include "session/session.h"
#include "sse/sse.h"
#include "store/store.h"
#include "xmpp/stream.h"

#define LOG_MODULE "main"
#include "core/log.h"

#ifndef SG_VERSION
#define SG_VERSION "0.1.0"
#endif
#ifndef SG_DEFAULT_DOCS_ASSETS
#define SG_DEFAULT_DOCS_ASSETS "node_modules/swagger-ui-dist"
#endif
#ifndef SG_DEFAULT_WEB_ROOT
#define SG_DEFAULT_WEB_ROOT "web"
#endif

#define TICK_MS 250

extern char **environ;

struct app {
    uv_loop_t loop;
    struct config *cfg;
    struct tick *tick;
    struct xmpp_tls *tls;
    struct auth *auth;
    struct session_mgr *sessions;
    struct http_server *http;
    struct sse_hub *sse;
    struct push *push;
    struct push_client *fetch; /* link previews (K10) */
    struct api_deps deps;
    struct store_db *db;
    struct ratelimit *ratelimit, *ratelimit_ip, *ratelimit_starts;
    char rp_id[256];
    char origins[1024];
    uint8_t ua_seed[32];
    struct tick_sub *housekeeping;
    uint64_t next_prune_ms;
    uv_signal_t sigint, sigterm;
    int stopping;
    char meet_base[1024]; /* events' invitation URL base: outlives app_start's issuer */
};

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: sparkgate [--config FILE] [--help] [--version]\n\n"
            "Sparkgate gives web pages a REST + Server-Sent Events interface to an XMPP server,\n"
            "with one shared XMPP session per user. Settings come from the INI file and from\n"
            "SPARKGATE_<SECTION>_<NAME> environment variables (which win).\n\n");
    config_print_help(f);
}

static void on_sessions_freed(void *data)
{
    struct app *app = data;
    if (app->housekeeping)
        tick_remove(app->tick, app->housekeeping);
    app->housekeeping = NULL;
    tick_free(app->tick);
    app->tick = NULL;
    uv_close((uv_handle_t *)&app->sigint, NULL);
    uv_close((uv_handle_t *)&app->sigterm, NULL);
}

static void on_http_freed(void *data)
{
    struct app *app = data;
    app->http = NULL;
    push_fetch_client_close(app->fetch); /* after the requests that used it are gone */
    app->fetch = NULL;
    session_mgr_free(app->sessions, on_sessions_freed, app);
    app->sessions = NULL;
}

static void on_signal(uv_signal_t *h, int signum)
{
    struct app *app = h->data;
    if (app->stopping++) {
        log_warn("shutdown_forced", "signal=%d", signum);
        exit(1);
    }
    log_info("shutdown", "signal=%d sessions=%zu", signum, session_mgr_count(app->sessions));
    sse_hub_free(app->sse);
    app->sse = NULL;
    push_close(app->push);
    http_server_free(app->http, on_http_freed, app);
}

static char *public_url(const struct config *cfg)
{
    const char *pu = config_str(cfg, "http.public_url");
    size_t n = strlen(pu) + strlen(config_str(cfg, "http.listen")) + 16;
    char *out = mem_alloc(n);
    if (*pu)
        snprintf(out, n, "%s", pu);
    else
        snprintf(out, n, "%s://%s", *config_str(cfg, "http.tls_cert") ? "https" : "http",
                 config_str(cfg, "http.listen"));
    return out;
}

/* ---- the token table's journal: write-through to the store ---- */

static void j_put(const struct auth_token_rec *r, void *data)
{
    struct store_token t = { .kind = r->kind, .exp = r->exp, .used = r->used };
    snprintf(t.id, sizeof(t.id), "%s", r->id);
    snprintf(t.user, sizeof(t.user), "%s", r->user);
    snprintf(t.family, sizeof(t.family), "%s", r->family);
    store_token_put(data, &t, NULL, NULL);
}

static void j_used(const char *id, void *data)
{
    store_token_mark_used(data, id, NULL, NULL);
}

static void j_del(const char *id, void *data)
{
    store_token_delete(data, id, NULL, NULL);
}

static void j_del_user(const char *user, void *data)
{
    store_token_delete_user(data, user, NULL, NULL);
}

static void j_del_family(const char *family, void *data)
{
    store_token_delete_family(data, family, NULL, NULL);
}

static void token_loaded(const struct store_token *t, void *data)
{
    struct auth_token_rec r = { .id = t->id,
                                .user = t->user,
                                .family = t->family,
                                .kind = t->kind,
                                .exp = t->exp,
                                .used = t->used };
    auth_token_restore(data, &r);
}

/* Every 10 minutes: expired tokens leave the table and the database. */
static void housekeeping(struct tick *t, uint64_t now_ms, void *data)
{
    struct app *app = data;
    (void)t;
    if (now_ms < app->next_prune_ms)
        return;
    app->next_prune_ms = now_ms + 10 * 60 * 1000;
    int64_t now_s = (int64_t)time(NULL);
    size_t n = auth_token_prune(app->auth, now_s);
    store_token_purge(app->db, now_s, NULL, NULL);
    if (n > 0)
        log_info("tokens_pruned", "count=%zu", n);
}

/* The Web Push sender, with its VAPID key pair made at first start (store/vapid.key). */
static int push_start(struct app *app, const char *store)
{
    struct config *cfg = app->cfg;
    uint8_t vapid[32];
    int created = 0;
    char err[512];
    if (store_secret_load_or_create(store, "vapid", vapid, sizeof(vapid), &created, err,
                                    sizeof(err)) < 0) {
        log_error("store_failed", "path=%s msg=\"%s\"", store, err);
        return -EIO;
    }
    if (created)
        log_info("vapid_key_created", "path=%s/vapid.key", store);
    char subject[1024];
    const char *sub = config_str(cfg, "push.subject");
    if (*sub)
        snprintf(subject, sizeof(subject), "%s", sub);
    else
        snprintf(subject, sizeof(subject), "mailto:admin@%s", config_str(cfg, "xmpp.domain"));
    struct push_opts po = {
        .loop = &app->loop,
        .tick = app->tick,
        .db = app->db,
        .vapid_private = vapid,
        .subject = subject,
        .ttl_s = config_ms(cfg, "push.ttl") / 1000,
        .vapid_lifetime_s = config_ms(cfg, "push.vapid_lifetime") / 1000,
        .timeout_ms = config_ms(cfg, "push.timeout"),
        .retries = (unsigned)config_int(cfg, "push.retries"),
        .retry_base_ms = config_ms(cfg, "push.retry_base"),
        .retry_max_ms = config_ms(cfg, "push.retry_max"),
        .max_queue = (size_t)config_int(cfg, "push.max_queue"),
        .max_inflight = (unsigned)config_int(cfg, "push.max_inflight"),
        .max_subs = (size_t)config_int(cfg, "push.max_subscriptions"),
        .allow_http = config_bool(cfg, "push.allow_http"),
        .allow_private = config_bool(cfg, "push.allow_private"),
        .ca_file = config_str(cfg, "push.ca_file"),
    };
    app->push = push_new(&po, err, sizeof(err));
    OPENSSL_cleanse(vapid, sizeof(vapid));
    if (app->push == NULL) {
        log_error("push_failed", "path=%s/vapid.key msg=\"%s\"", store, err);
        return -EINVAL;
    }
    if (po.allow_http || po.allow_private)
        log_warn("push_unsafe", "allow_http=%d allow_private=%d msg=\"for tests only\"",
                 po.allow_http, po.allow_private);
    return 0;
}

static uint64_t loop_now_ms(void *data)
{
    return tick_now(data);
}

/* WebAuthn's RP id and origins: configured, else from the public URL. */
static void webauthn_rp(struct app *app, const char *issuer)
{
    const char *rp = config_str(app->cfg, "webauthn.rp_id");
    const char *origins = config_str(app->cfg, "webauthn.origins");
    /* origin = scheme://host[:port] of the public URL */
    char origin[512];
    snprintf(origin, sizeof(origin), "%s", issuer);
    char *hs = strstr(origin, "://");
    char *path = hs ? strchr(hs + 3, '/') : NULL;
    if (path)
        *path = '\0';
    snprintf(app->origins, sizeof(app->origins), "%s", *origins ? origins : origin);
    if (*rp) {
        snprintf(app->rp_id, sizeof(app->rp_id), "%s", rp);
        return;
    }
    const char *host = hs ? hs + 3 : origin;
    size_t hl = strcspn(host, ":/");
    if (host[0] == '[') /* an IPv6 literal cannot be an RP id; fall back to the domain */
        hl = 0;
    if (hl == 0 || hl >= sizeof(app->rp_id))
        snprintf(app->rp_id, sizeof(app->rp_id), "%s", config_str(app->cfg, "xmpp.domain"));
    else
        snprintf(app->rp_id, sizeof(app->rp_id), "%.*s", (int)hl, host);
}

static int app_start(struct app *app)
{
    struct config *cfg = app->cfg;
    char err[512];
    enum xmpp_tls_mode tls_mode;
    xmpp_tls_mode_parse(config_str(cfg, "xmpp.tls"), &tls_mode);
    if (tls_mode != XMPP_TLS_OFF) {
        app->tls = xmpp_tls_new(config_str(cfg, "xmpp.ca_file"),
                                config_bool(cfg, "xmpp.tls_verify"), err, sizeof(err));
        if (app->tls == NULL) {
            log_error("tls_failed", "msg=\"%s\"", err);
            return -EINVAL;
        }
    }

    const char *store = config_str(cfg, "store.path");
    uint8_t key[AUTH_KEY_LEN];
    int created = 0;
    if (store_open_dir(store, err, sizeof(err)) < 0 ||
        store_secret_load_or_create(store, "jwt", key, sizeof(key), &created, err, sizeof(err)) <
            0) {
        log_error("store_failed", "path=%s msg=\"%s\"", store, err);
        return -EIO;
    }
    if (created)
        log_info("signing_key_created", "path=%s/jwt.key", store);
    int vcreated = 0, ucreated = 0;
    if (store_secret_load_or_create(store, "vault", app->deps.vault_key,
                                    sizeof(app->deps.vault_key), &vcreated, err, sizeof(err)) < 0 ||
        store_secret_load_or_create(store, "agent", app->ua_seed, sizeof(app->ua_seed), &ucreated,
                                    err, sizeof(err)) < 0) {
        log_error("store_failed", "path=%s msg=\"%s\"", store, err);
        return -EIO;
    }
    if (vcreated)
        log_info("vault_key_created", "path=%s/vault.key", store);
    int rc = store_db_open(&app->loop, store, &app->db, err, sizeof(err));
    if (rc < 0) {
        log_error("store_failed", "path=%s msg=\"%s\"", store, err);
        return rc;
    }
    log_info("store_open", "path=%s/sparkgate.db schema=%d", store,
             store_db_schema_version(app->db));
    rc = push_start(app, store);
    if (rc < 0)
        return rc;

    char *issuer = public_url(cfg);
    snprintf(app->meet_base, sizeof(app->meet_base), "%s", issuer);
    static struct auth_journal journal = { .put = j_put,
                                           .mark_used = j_used,
                                           .del = j_del,
                                           .del_user = j_del_user,
                                           .del_family = j_del_family };
    journal.data = app->db;
    struct auth_opts ao = { .domain = config_str(cfg, "xmpp.domain"),
                            .issuer = issuer,
                            .lifetime_ms = config_ms(cfg, "auth.token_lifetime"),
                            .refresh_lifetime_ms = config_ms(cfg, "auth.refresh_lifetime"),
                            .journal = &journal };
    memcpy(ao.key, key, sizeof(key));
    OPENSSL_cleanse(key, sizeof(key));
    app->auth = auth_new(&ao);
    OPENSSL_cleanse(ao.key, sizeof(ao.key));
    if (store_token_load(app->db, (int64_t)time(NULL), token_loaded, app->auth) < 0)
        log_warn("tokens_not_loaded", "path=%s", store);
    log_info("tokens_loaded", "access=%zu", auth_token_count(app->auth));
    struct ratelimit_opts ro = {
        .free_failures = (unsigned)config_int(cfg, "auth.rate_free_failures"),
        .base_ms = config_ms(cfg, "auth.rate_base"),
        .max_ms = config_ms(cfg, "auth.rate_max"),
    };
    app->ratelimit = ratelimit_new(&ro);
    app->next_prune_ms = tick_now(app->tick) + 10 * 60 * 1000;
    app->housekeeping = tick_add(app->tick, housekeeping, app);
    ro.free_failures *= 10; /* one address may carry many users (NAT, proxies) */
    app->ratelimit_ip = ratelimit_new(&ro);
    /* unauthenticated passkey challenges: 30 per address in a burst, then back-off until the
     * address has been quiet for a minute (bounds the pending-ceremony table) */
    struct ratelimit_opts so_ = {
        .free_failures = 30, .base_ms = 1000, .max_ms = 60 * 1000, .forget_ms = 60 * 1000
    };
    app->ratelimit_starts = ratelimit_new(&so_);
    webauthn_rp(app, issuer);

    /* every user's event log: ring age on the loop's clock (ring length: session_mgr_opts) */
    events_log_set_defaults(config_ms(cfg, "events.ring_age"), loop_now_ms, app->tick);
    const char *host = config_str(cfg, "xmpp.host");
    struct session_mgr_opts so = {
        .loop = &app->loop,
        .tick = app->tick,
        .tls = app->tls,
        .host = *host ? host : config_str(cfg, "xmpp.domain"),
        .port = (uint16_t)config_int(cfg, "xmpp.port"),
        .domain = config_str(cfg, "xmpp.domain"),
        .tls_mode = tls_mode,
        .connect_timeout_ms = config_ms(cfg, "xmpp.connect_timeout"),
        .max_stanza = config_size(cfg, "xmpp.max_stanza"),
        .resource_prefix = config_str(cfg, "xmpp.resource_prefix"),
        .linger_ms = config_ms(cfg, "session.linger"),
        .idle_timeout_ms = config_ms(cfg, "session.idle_timeout"),
        .iq_timeout_ms = config_ms(cfg, "session.iq_timeout"),
        .max_sessions = (size_t)config_int(cfg, "session.max_sessions"),
        .ring_len = (size_t)config_int(cfg, "events.ring_len"),
        .events = { .meet_base = app->meet_base },
        .on_session_end = api_on_session_end,
        .on_credential = api_on_credential,
        .on_unseen = api_on_unseen,
        .reconnect_max_ms = config_ms(cfg, "session.reconnect_max"),
        .reconnect_rate = (unsigned)config_int(cfg, "session.reconnect_rate"),
        .reconnect_queue = (size_t)config_int(cfg, "session.reconnect_queue"),
        .get_credential = api_get_credential,
        .on_credential_refused = api_on_credential_refused,
        .request_fast = true,
        .ua_seed = app->ua_seed,
        .ua_seed_len = sizeof(app->ua_seed),
        .data = &app->deps,
    };
    app->sessions = session_mgr_new(&so);

    const char *web_root = config_str(cfg, "http.web_root");
    const char *docs_assets = config_str(cfg, "http.docs_assets");
    struct http_server_opts ho = {
        .loop = &app->loop,
        .listen = config_str(cfg, "http.listen"),
        .tls_cert = config_str(cfg, "http.tls_cert"),
        .tls_key = config_str(cfg, "http.tls_key"),
        .max_body = config_size(cfg, "http.max_body"),
        .cors_origins = config_str(cfg, "http.cors_origins"),
        .web_root = *web_root ? web_root : SG_DEFAULT_WEB_ROOT,
        .docs_assets = *docs_assets ? docs_assets : SG_DEFAULT_DOCS_ASSETS,
    };
    app->http = http_server_new(&ho, err, sizeof(err));
    if (app->http == NULL) {
        log_error("http_failed", "listen=%s msg=\"%s\"", ho.listen, err);
        mem_free(issuer);
        return -EADDRINUSE;
    }
    app->sse =
        sse_hub_new(app->tick, config_ms(cfg, "sse.heartbeat"), config_size(cfg, "sse.max_queue"));
    struct api_deps *d = &app->deps; /* vault_key was filled above */
    d->http = app->http;
    d->auth = app->auth;
    d->sessions = app->sessions;
    d->sse = app->sse;
    d->db = app->db;
    d->tick = app->tick;
    d->ratelimit = app->ratelimit;
    d->ratelimit_ip = app->ratelimit_ip;
    d->ratelimit_starts = app->ratelimit_starts;
    d->max_streams_per_user = (unsigned)config_int(cfg, "sse.max_streams_per_user");
    d->sse_ticket_ms = config_ms(cfg, "sse.ticket_lifetime");
    d->sse_max_tickets = (size_t)config_int(cfg, "sse.max_tickets");
    d->domain = config_str(cfg, "xmpp.domain");
    d->muc_service = config_str(cfg, "xmpp.muc_service");
    d->pubsub_service = config_str(cfg, "xmpp.pubsub_service");
    d->upload_service = config_str(cfg, "xmpp.upload_service");
    d->store_password = config_bool(cfg, "vault.store_password");
    d->totp_single_factor = config_bool(cfg, "auth.totp_single_factor");
    d->totp_issuer = config_str(cfg, "auth.totp_issuer");
    d->basic_cache_ms = config_ms(cfg, "auth.basic_cache");
    d->trusted_proxies = config_str(cfg, "http.trusted_proxies");
    d->rp_id = app->rp_id;
    d->rp_name = config_str(cfg, "webauthn.rp_name");
    d->origins = app->origins;
    d->user_verification = config_str(cfg, "webauthn.user_verification");
    d->push = app->push;
    d->push_auto = config_bool(cfg, "push.auto");
    d->push_include_body = config_bool(cfg, "push.include_body");
    d->push_admins = config_str(cfg, "push.admins");
    d->push_token_ms = config_ms(cfg, "push.action_token_lifetime");
    d->logout_tab = strcmp(config_str(cfg, "session.logout"), "tab") == 0;
    d->max_raw_stanza = config_size(cfg, "api.max_raw_stanza");
    d->meet_url_template = config_str(cfg, "meet.url_template");
    d->meet_jitsi_url = config_str(cfg, "meet.jitsi_url");
    d->meet_galene_url = config_str(cfg, "meet.galene_url");
    if (config_bool(cfg, "preview.enabled"))
        d->fetch = app->fetch = push_fetch_client_new(&app->loop, NULL);
    d->preview_allow_private = config_bool(cfg, "preview.allow_private");
    d->preview_allow_addresses = config_str(cfg, "preview.allow_addresses");
    d->preview_max_bytes = config_size(cfg, "preview.max_bytes");
    d->preview_timeout_ms = config_ms(cfg, "preview.timeout");
    d->preview_max_redirects = (unsigned)config_int(cfg, "preview.max_redirects");
    d->preview_rate = (unsigned)config_int(cfg, "preview.rate");
    d->preview_cache_ms = config_ms(cfg, "preview.cache_ttl");
    d->preview_cache_size = (size_t)config_int(cfg, "preview.cache_size");
    if (d->preview_allow_private)
        log_warn("preview_unsafe",
                 "allow_private=1 msg=\"link previews may reach private addresses\"");
    rc = api_register_all(d);
    if (rc < 0) {
        log_error("routes_failed", "err=%s", log_errname(rc));
        mem_free(issuer);
        return rc;
    }
    log_info("webauthn", "rp_id=%s origins=%s", app->rp_id, app->origins);
    unsigned char ip[16];
    if (inet_pton(AF_INET, app->rp_id, ip) == 1)
        log_warn("webauthn_rp_is_ip",
                 "rp_id=%s msg=\"browsers refuse an IP address as the RP id: "
                 "set http.public_url to a host name (e.g. http://localhost:8080) or "
                 "webauthn.rp_id\"",
                 app->rp_id);
    log_info("listening", "http=%s port=%d xmpp=%s:%d domain=%s tls=%s web_root=%s version=%s",
             ho.listen, http_server_port(app->http), so.host, so.port, so.domain,
             config_str(cfg, "xmpp.tls"), ho.web_root, SG_VERSION);
    mem_free(issuer);
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option long_opts[] = {
        { "config", required_argument, NULL, 'c' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    const char *config_path = NULL;
    int opt;
    while ((opt = getopt_long(argc, argv, "c:hV", long_opts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            config_path = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            printf("sparkgate %s\n", SG_VERSION);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        usage(stderr);
        return 2;
    }

    struct app app;
    memset(&app, 0, sizeof(app));
    app.cfg = config_new();
    char err[512];
    if ((config_path && config_load_file(app.cfg, config_path, err, sizeof(err)) < 0) ||
        config_load_env(app.cfg, environ, err, sizeof(err)) < 0) {
        fprintf(stderr, "sparkgate: configuration error: %s\n", err);
        config_free(app.cfg);
        return 2;
    }
    enum log_level lvl = LOG_LEVEL_INFO;
    log_level_parse(config_str(app.cfg, "log.level"), &lvl);
    log_set_level(lvl);
    config_log(app.cfg);

    signal(SIGPIPE, SIG_IGN);
    uv_loop_init(&app.loop);
    app.tick = tick_new(&app.loop, TICK_MS);
    uv_signal_init(&app.loop, &app.sigint);
    uv_signal_init(&app.loop, &app.sigterm);
    app.sigint.data = app.sigterm.data = &app;
    uv_signal_start(&app.sigint, on_signal, SIGINT);
    uv_signal_start(&app.sigterm, on_signal, SIGTERM);

    int rc = app_start(&app);
    if (rc < 0) {
        /* unwind what exists, then let the loop close the handles */
        if (app.sse)
            sse_hub_free(app.sse);
        push_close(app.push);
        if (app.http)
            http_server_free(app.http, on_http_freed, &app);
        else if (app.sessions)
            session_mgr_free(app.sessions, on_sessions_freed, &app);
        else
            on_sessions_freed(&app);
    }
    uv_run(&app.loop, UV_RUN_DEFAULT);
    api_free(&app.deps);
    store_db_close(app.db); /* runs what is still queued (token writes) */
    uv_run(&app.loop, UV_RUN_DEFAULT);
    int crc = uv_loop_close(&app.loop);
    ratelimit_free(app.ratelimit);
    ratelimit_free(app.ratelimit_ip);
    ratelimit_free(app.ratelimit_starts);
    OPENSSL_cleanse(app.deps.vault_key, sizeof(app.deps.vault_key));
    OPENSSL_cleanse(app.ua_seed, sizeof(app.ua_seed));
    if (crc != 0)
        log_warn("loop_not_closed", "err=%s", log_errname(crc));
    push_free(app.push);
    auth_free(app.auth);
    xmpp_tls_free(app.tls);
    xmpp_stream_global_cleanup();
    config_free(app.cfg);
    log_info("stopped", "status=%d", rc < 0 ? 1 : 0);
    return rc < 0 ? 1 : 0;
}
