/* config.c: the table of settings, INI and environment loading, validation. */
#include "core/config.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <ini.h>

#include "core/err.h"
#include "core/mem.h"

#define LOG_MODULE "config"
#include "core/log.h"

struct config_key {
    const char *name; /* section.name */
    enum config_type type;
    const char *def;     /* default, as text */
    int64_t min, max;    /* for INT, DURATION (ms) and SIZE (bytes) */
    const char *choices; /* ENUM: "a|b|c" */
    const char *help;
};

#define KIB 1024LL
#define MIB (1024LL * 1024)
#define SEC 1000LL
#define DAY (86400LL * 1000)

/* Every setting. Keep docs/config.md in step (tests/unit/test_config.c checks it). */
static const struct config_key keys[] = {
    { "http.listen", CONFIG_STR, "127.0.0.1:8080", 0, 0, NULL,
      "Address and port of the HTTP listener (host:port; [v6]:port)." },
    { "http.cors_origins", CONFIG_STR, "", 0, 0, NULL,
      "Comma-separated origins allowed to call the API from other sites; * allows any. Empty: same-origin only." },
    { "http.max_body", CONFIG_SIZE, "1m", 1 * KIB, 64 * MIB, NULL,
      "Largest accepted request body; larger requests get 413." },
    { "http.web_root", CONFIG_STR, "", 0, 0, NULL,
      "Directory of static files served at / (demo pages, sparkgate.js). Empty: the built-in default." },
    { "http.docs_assets", CONFIG_STR, "", 0, 0, NULL,
      "Directory of the API docs page's renderer (the swagger-ui-dist npm package), served at "
      "/sparkweb/api/docs/assets/ for the page /sparkweb/api/docs/. Empty: "
      "node_modules/swagger-ui-dist relative to the working directory (npm ci installs it)." },
    { "http.tls_cert", CONFIG_STR, "", 0, 0, NULL,
      "PEM certificate chain for HTTPS (enables TLS and HTTP/2 on the listener)." },
    { "http.tls_key", CONFIG_STR, "", 0, 0, NULL, "PEM private key for http.tls_cert." },
    { "http.public_url", CONFIG_STR, "", 0, 0, NULL,
      "Base URL browsers use to reach the gateway (token issuer). Empty: derived from http.listen." },
    { "xmpp.domain", CONFIG_STR, "localhost", 0, 0, NULL,
      "XMPP domain of the users (the part after @)." },
    { "xmpp.host", CONFIG_STR, "", 0, 0, NULL,
      "Host name or address of the XMPP server. Empty: xmpp.domain." },
    { "xmpp.port", CONFIG_INT, "5222", 1, 65535, NULL,
      "TCP port of the XMPP server's c2s listener." },
    { "xmpp.tls", CONFIG_ENUM, "required", 0, 0, "required|starttls|direct|off",
      "required: STARTTLS must succeed; starttls: use STARTTLS when offered; direct: TLS from the first byte (port 5223); off: never (loopback tests only)." },
    { "xmpp.ca_file", CONFIG_STR, "", 0, 0, NULL,
      "PEM file of extra trusted certificates for the XMPP server (e.g. a local test CA)." },
    { "xmpp.tls_verify", CONFIG_BOOL, "true", 0, 0, NULL,
      "Verify the XMPP server's certificate chain and host name." },
    { "xmpp.connect_timeout", CONFIG_DURATION, "15s", 1 * SEC, 300 * SEC, NULL,
      "Deadline for connecting, TLS, authentication and binding of one upstream stream." },
    { "xmpp.max_stanza", CONFIG_SIZE, "256k", 4 * KIB, 16 * MIB, NULL,
      "Largest stanza accepted from the XMPP server; a larger one closes that user's stream." },
    { "xmpp.resource_prefix", CONFIG_STR, "sparkweb-", 0, 0, NULL,
      "Resource prefix of the gateway's sessions; a random suffix follows." },
    { "xmpp.muc_service", CONFIG_STR, "", 0, 0, NULL,
      "JID of the default group chat (MUC) service. Empty: discovered with XEP-0030 (identity conference/text)." },
    { "xmpp.pubsub_service", CONFIG_STR, "", 0, 0, NULL,
      "JID of the publish-subscribe service. Empty: discovered with XEP-0030 (identity pubsub/service)." },
    { "xmpp.upload_service", CONFIG_STR, "", 0, 0, NULL,
      "JID of the HTTP File Upload (XEP-0363) service. Empty: discovered with XEP-0030." },
    { "session.linger", CONFIG_DURATION, "60s", 0, DAY, NULL,
      "How long a session stays open after its last event stream closed (page reloads)." },
    { "session.idle_timeout", CONFIG_DURATION, "15m", 1 * SEC, 30 * DAY, NULL,
      "Close a session that has no event stream and no REST call for this long." },
    { "session.iq_timeout", CONFIG_DURATION, "30s", 1 * SEC, 600 * SEC, NULL,
      "Deadline for the XMPP server to answer a request made on a user's behalf." },
    { "session.max_sessions", CONFIG_INT, "100000", 1, 10000000, NULL,
      "Most concurrent user sessions; logins beyond it get 503." },
    { "session.logout", CONFIG_ENUM, "all", 0, 0, "all|tab",
      "all: POST /logout closes the user's session for every tab and revokes every token of "
      "the user (reference behaviour); tab: it revokes only the presented token and its "
      "refresh family and closes that tab's event streams, and the session stays while other "
      "streams are open (else it closes)." },
    { "session.reconnect_max", CONFIG_DURATION, "5m", 0, DAY, NULL,
      "How long a session whose XMPP stream was lost keeps reconnecting (sinks stay attached, "
      "sends are queued) before it ends with session-closed; 0 ends it at once." },
    { "session.reconnect_rate", CONFIG_INT, "50", 1, 100000, NULL,
      "Most reconnection attempts started per second, all sessions together (paces the "
      "reconnect storm after a server restart; each session also backs off 0.5 s to 30 s)." },
    { "session.reconnect_queue", CONFIG_INT, "500", 1, 100000, NULL,
      "Stanzas kept per session while it reconnects (at most 512 KiB); sends beyond get 503." },
    { "http.trusted_proxies", CONFIG_STR, "", 0, 0, NULL,
      "Comma-separated addresses or CIDR blocks of reverse proxies whose X-Forwarded-For is "
      "believed (client address for rate limits); empty: the socket peer is the client." },
    { "auth.token_lifetime", CONFIG_DURATION, "1h", 60 * SEC, 30 * DAY, NULL,
      "Lifetime of issued access tokens (exp - iat)." },
    { "auth.refresh_lifetime", CONFIG_DURATION, "30d", 60 * SEC, 365 * DAY, NULL,
      "Lifetime of a refresh token; each use rotates it (a new one with a fresh lifetime)." },
    { "auth.totp_single_factor", CONFIG_BOOL, "false", 0, 0, NULL,
      "true: a TOTP code alone logs in (the reference's behaviour); false: TOTP login also "
      "needs the password in the body or a valid token in Authorization." },
    { "auth.totp_issuer", CONFIG_STR, "Sparkgate", 0, 0, NULL,
      "Issuer shown by authenticator apps for enrolled TOTP secrets." },
    { "auth.basic_cache", CONFIG_DURATION, "10m", 0, DAY, NULL,
      "How long a password verified for Basic auth is remembered (as a salted hash, in memory) "
      "before the XMPP server is asked again; 0 asks every time a session must be opened." },
    { "auth.rate_free_failures", CONFIG_INT, "5", 1, 1000, NULL,
      "Failed credential checks allowed per username before back-off (per client address: ten "
      "times as many, since many users may share one address)." },
    { "auth.rate_base", CONFIG_DURATION, "1s", 1, 3600 * SEC, NULL,
      "First back-off after the free failures; it doubles with every further failure." },
    { "auth.rate_max", CONFIG_DURATION, "15m", 1, DAY, NULL,
      "Longest back-off imposed by the credential rate limit." },
    { "webauthn.rp_id", CONFIG_STR, "", 0, 0, NULL,
      "WebAuthn relying-party id (a registrable domain of the page's origin); empty: the host "
      "of http.public_url, else xmpp.domain." },
    { "webauthn.rp_name", CONFIG_STR, "sparkweb", 0, 0, NULL,
      "Relying-party name shown by authenticators." },
    { "webauthn.origins", CONFIG_STR, "", 0, 0, NULL,
      "Comma-separated page origins accepted in WebAuthn ceremonies; empty: the origin of "
      "http.public_url." },
    { "webauthn.user_verification", CONFIG_ENUM, "preferred", 0, 0,
      "required|preferred|discouraged",
      "User verification asked of authenticators; required also rejects responses without UV." },
    { "vault.store_password", CONFIG_BOOL, "false", 0, 0, NULL,
      "Also keep users' XMPP passwords (AES-256-GCM encrypted) to re-open sessions when the "
      "server offers neither FAST nor reusable SCRAM credentials." },
    { "push.auto", CONFIG_BOOL, "true", 0, 0, NULL,
      "Push inbound chat messages, group-chat mentions and room invitations to the user's Web "
      "Push subscriptions while no event stream, BOSH or WebSocket client of the user is attached." },
    { "push.include_body", CONFIG_BOOL, "false", 0, 0, NULL,
      "Put message bodies into automatic pushes; false shows only the sender and a generic text "
      "(the push service never sees the body, even encrypted)." },
    { "push.subject", CONFIG_STR, "", 0, 0, NULL,
      "VAPID contact (sub claim, RFC 8292): a mailto: or https: URI. Empty: mailto:admin@<xmpp.domain>." },
    { "push.ttl", CONFIG_DURATION, "28d", 0, 28 * DAY, NULL,
      "How long a push service keeps an undelivered push (the TTL header)." },
    { "push.vapid_lifetime", CONFIG_DURATION, "12h", 60 * SEC, DAY, NULL,
      "Lifetime (exp - now) of the signed VAPID token; push services refuse more than 24 h." },
    { "push.timeout", CONFIG_DURATION, "30s", 100, 300 * SEC, NULL,
      "Deadline of one request to a push service, connection included; a hung service counts as a failed attempt." },
    { "push.retries", CONFIG_INT, "3", 0, 20, NULL,
      "Further attempts after a 429, a 5xx or a network failure." },
    { "push.retry_base", CONFIG_DURATION, "2s", 10, 3600 * SEC, NULL,
      "First back-off before a retry; it doubles with every attempt. A Retry-After header wins." },
    { "push.retry_max", CONFIG_DURATION, "15m", 10, DAY, NULL,
      "Longest back-off; a Retry-After beyond it abandons the delivery." },
    { "push.max_queue", CONFIG_INT, "5000", 1, 1000000, NULL,
      "Deliveries kept at once (waiting, in flight or backing off); beyond it new ones fail." },
    { "push.max_inflight", CONFIG_INT, "64", 1, 10000, NULL,
      "Requests to push services in flight at once." },
    { "push.max_subscriptions", CONFIG_INT, "10", 1, 1000, NULL,
      "Subscriptions kept per user; a new one beyond it replaces the oldest." },
    { "push.allow_http", CONFIG_BOOL, "false", 0, 0, NULL,
      "Accept http:// push endpoints (tests only; real push services use https)." },
    { "push.allow_private", CONFIG_BOOL, "false", 0, 0, NULL,
      "Accept endpoints on loopback, private and link-local addresses (tests only)." },
    { "push.ca_file", CONFIG_STR, "", 0, 0, NULL,
      "PEM file of extra trusted certificates for push services (e.g. a local test CA)." },
    { "push.admins", CONFIG_STR, "", 0, 0, NULL,
      "Comma-separated usernames who may push to anyone; others only to contacts in their roster." },
    { "push.action_token_lifetime", CONFIG_DURATION, "24h", 60 * SEC, 30 * DAY, NULL,
      "Lifetime of the restricted token a push carries for POST /webpush/action (a click or reply)." },
    { "api.max_raw_stanza", CONFIG_SIZE, "64k", 1 * KIB, 16 * MIB, NULL,
      "Largest stanza accepted by POST /xmpp (K11); larger bodies get 413." },
    { "meet.url_template", CONFIG_STR, "", 0, 0, NULL,
      "Meeting URL when the XMPP server offers no XEP-0483 service (K8), with {service} (jitsi or galene) and {id} (percent-encoded) placeholders, e.g. https://meet.example/{service}/{id}. Empty: 501." },
    { "meet.jitsi_url", CONFIG_STR, "", 0, 0, NULL,
      "Jitsi meeting URL template with an {id} placeholder (wins over meet.url_template), e.g. https://meet.example/{id}." },
    { "meet.galene_url", CONFIG_STR, "", 0, 0, NULL,
      "Galene meeting URL template with an {id} placeholder (wins over meet.url_template), e.g. https://galene.example/group/public/{id}." },
    { "preview.enabled", CONFIG_BOOL, "true", 0, 0, NULL,
      "Serve link previews (K10): the gateway fetches the page itself. false: 501." },
    { "preview.allow_private", CONFIG_BOOL, "false", 0, 0, NULL,
      "Let link previews fetch loopback, private, link-local, ULA and metadata addresses (tests only: this opens the gateway's network to its users)." },
    { "preview.allow_addresses", CONFIG_STR, "", 0, 0, NULL,
      "Comma-separated numeric addresses link previews may fetch even though private (e.g. an intranet wiki)." },
    { "preview.max_bytes", CONFIG_SIZE, "512k", 1 * KIB, 16 * MIB, NULL,
      "Bytes of a page read for a link preview; the rest is not downloaded." },
    { "preview.timeout", CONFIG_DURATION, "5s", 100, 60 * SEC, NULL,
      "Deadline of a whole link preview (lookups, redirects and transfers); beyond it 504." },
    { "preview.max_redirects", CONFIG_INT, "3", 0, 10, NULL,
      "Redirects a link preview follows, each one checked like the first URL." },
    { "preview.rate", CONFIG_INT, "30", 1, 100000, NULL,
      "Link preview fetches per user per minute (cached answers are free); beyond it 429." },
    { "preview.cache_ttl", CONFIG_DURATION, "5m", 0, DAY, NULL,
      "How long a link preview is kept and answered again without fetching (0: no cache)." },
    { "preview.cache_size", CONFIG_INT, "256", 1, 100000, NULL,
      "Link previews kept in the cache (least recently used dropped first)." },
    { "events.ring_len", CONFIG_INT, "1024", 1, 1000000, NULL,
      "Most recent events kept per user for streams that reconnect (Last-Event-ID) or attach "
      "later; older ones are dropped and a stream that needed them gets sparkgate.gap." },
    { "events.ring_age", CONFIG_DURATION, "10m", 1 * SEC, 7 * DAY, NULL,
      "Events older than this are dropped from a user's ring (checked as events come and "
      "streams attach), so a stream resuming after a longer absence gets sparkgate.gap." },
    { "sse.heartbeat", CONFIG_DURATION, "15s", 1 * SEC, 600 * SEC, NULL,
      "Interval of the keep-alive comment on idle event streams." },
    { "sse.max_queue", CONFIG_SIZE, "1m", 4 * KIB, 256 * MIB, NULL,
      "Bytes queued for one event stream before it is closed as too slow." },
    { "sse.max_streams_per_user", CONFIG_INT, "64", 1, 10000, NULL,
      "Most simultaneous event streams of one user; more get 429. Also the most unspent SSE "
      "tickets a user may hold." },
    { "sse.ticket_lifetime", CONFIG_DURATION, "30s", 1 * SEC, 600 * SEC, NULL,
      "How long a ticket from POST /sse/ticket may be used (once) to open /sparkweb/sse?ticket=." },
    { "sse.max_tickets", CONFIG_INT, "10000", 1, 1000000, NULL,
      "Most unspent SSE tickets held at once (all users); more requests get 503 until some are "
      "used or expire." },
    { "store.path", CONFIG_STR, "./var", 0, 0, NULL,
      "Directory for the gateway's state (keys, sparkgate.db); created with mode 0700." },
    { "log.level", CONFIG_ENUM, "info", 0, 0, "error|warn|info|debug",
      "Least severe level logged." },
};

#define N_KEYS (sizeof(keys) / sizeof(keys[0]))

struct config_value {
    char *str;
    int64_t num;
};

struct config {
    struct config_value v[N_KEYS];
};

static int key_index(const char *name)
{
    for (size_t i = 0; i < N_KEYS; i++) {
        if (strcmp(keys[i].name, name) == 0)
            return (int)i;
    }
    return -1;
}

static int parse_int(const char *s, int64_t *out)
{
    if (*s == '\0')
        return -EINVAL;
    char *end;
    errno = 0;
    long long n = strtoll(s, &end, 10);
    if (errno != 0 || *end != '\0')
        return -EINVAL;
    *out = n;
    return 0;
}

/* A number followed by an optional unit from `units` (name, multiplier), NULL-terminated. */
struct unit {
    const char *name;
    int64_t mult;
};

static int parse_with_unit(const char *s, const struct unit *units, int64_t bare_mult, int64_t *out)
{
    char *end;
    errno = 0;
    if (!isdigit((unsigned char)*s))
        return -EINVAL;
    long long n = strtoll(s, &end, 10);
    if (errno != 0)
        return -EINVAL;
    int64_t mult = bare_mult;
    if (*end != '\0') {
        mult = 0;
        for (const struct unit *u = units; u->name != NULL; u++) {
            if (strcasecmp(end, u->name) == 0) {
                mult = u->mult;
                break;
            }
        }
        if (mult == 0)
            return -EINVAL;
    }
    if (n > INT64_MAX / mult)
        return -ERANGE;
    *out = n * mult;
    return 0;
}

static const struct unit duration_units[] = {
    { "ms", 1 }, { "s", SEC }, { "m", 60 * SEC }, { "h", 3600 * SEC }, { "d", DAY }, { NULL, 0 },
};

static const struct unit size_units[] = {
    { "b", 1 },    { "k", KIB },        { "kb", KIB }, { "m", MIB },
    { "mb", MIB }, { "g", 1024 * MIB }, { NULL, 0 },
};

static int parse_bool(const char *s, int64_t *out)
{
    static const char *const yes[] = { "true", "on", "yes", "1", NULL };
    static const char *const no[] = { "false", "off", "no", "0", NULL };
    for (int i = 0; yes[i]; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = 1;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = 0;
            return 0;
        }
    }
    return -EINVAL;
}

static bool enum_has(const char *choices, const char *s)
{
    size_t sl = strlen(s);
    const char *p = choices;
    while (*p) {
        const char *bar = strchr(p, '|');
        size_t l = bar ? (size_t)(bar - p) : strlen(p);
        if (l == sl && strncmp(p, s, l) == 0)
            return true;
        if (!bar)
            break;
        p = bar + 1;
    }
    return false;
}

static int set_index(struct config *c, size_t i, const char *value, char *err, size_t errlen)
{
    const struct config_key *k = &keys[i];
    int64_t num = 0;
    int rc = 0;
    switch (k->type) {
    case CONFIG_STR:
        break;
    case CONFIG_INT:
        rc = parse_int(value, &num);
        break;
    case CONFIG_BOOL:
        rc = parse_bool(value, &num);
        break;
    case CONFIG_ENUM:
        rc = enum_has(k->choices, value) ? 0 : -EINVAL;
        break;
    case CONFIG_DURATION:
        rc = parse_with_unit(value, duration_units, SEC, &num);
        break;
    case CONFIG_SIZE:
        rc = parse_with_unit(value, size_units, 1, &num);
        break;
    }
    if (rc < 0) {
        if (k->type == CONFIG_ENUM)
            err_printf(err, errlen, "%s: invalid value (expected one of %s)", k->name, k->choices);
        else
            err_printf(err, errlen, "%s: invalid value for its type", k->name);
        return -EINVAL;
    }
    bool ranged = k->type == CONFIG_INT || k->type == CONFIG_DURATION || k->type == CONFIG_SIZE;
    if (ranged && (num < k->min || num > k->max)) {
        err_printf(err, errlen, "%s: value out of range [%lld, %lld]%s", k->name, (long long)k->min,
                   (long long)k->max,
                   k->type == CONFIG_DURATION ? " ms"
                   : k->type == CONFIG_SIZE   ? " bytes"
                                              : "");
        return -ERANGE;
    }
    mem_free(c->v[i].str);
    c->v[i].str = mem_strdup(value);
    c->v[i].num = num;
    return 0;
}

int config_set(struct config *c, const char *key, const char *value, char *err, size_t errlen)
{
    int i = key_index(key);
    if (i < 0) {
        err_printf(err, errlen, "unknown key %s", key);
        return -ENOENT;
    }
    return set_index(c, (size_t)i, value, err, errlen);
}

struct config *config_new(void)
{
    struct config *c = mem_calloc(1, sizeof(*c));
    for (size_t i = 0; i < N_KEYS; i++) {
        char err[128];
        if (set_index(c, i, keys[i].def, err, sizeof(err)) < 0) {
            fprintf(stderr, "config: bad default: %s\n", err);
            abort();
        }
    }
    return c;
}

void config_free(struct config *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < N_KEYS; i++)
        mem_free(c->v[i].str);
    mem_free(c);
}

struct ini_ctx {
    struct config *c;
    char *err;
    size_t errlen;
    int rc;
};

static int config_ini_entry(void *user, const char *section, const char *name, const char *value)
{
    struct ini_ctx *ctx = user;
    char key[256];
    snprintf(key, sizeof(key), "%s.%s", section, name);
    char err[256];
    int rc = config_set(ctx->c, key, value, err, sizeof(err));
    if (rc < 0) {
        if (ctx->rc == 0) {
            err_printf(ctx->err, ctx->errlen, "%s", err);
            ctx->rc = rc;
        }
        return 0;
    }
    return 1;
}

int config_load_file(struct config *c, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        int e = errno;
        err_printf(err, errlen, "%s: %s", path, strerror(e));
        return -e;
    }
    struct ini_ctx ctx = { c, err, errlen, 0 };
    int rc = ini_parse_file(f, config_ini_entry, &ctx);
    fclose(f);
    if (ctx.rc < 0) {
        char msg[256];
        snprintf(msg, sizeof(msg), "%s", err ? err : "");
        err_printf(err, errlen, "%s: line %d: %s", path, rc, msg);
        return ctx.rc;
    }
    if (rc != 0) {
        err_printf(err, errlen, "%s: syntax error at line %d", path, rc);
        return -EINVAL;
    }
    return 0;
}

int config_load_env(struct config *c, char *const *envp, char *err, size_t errlen)
{
    static const char prefix[] = "SPARKGATE_";
    for (char *const *e = envp; *e != NULL; e++) {
        if (strncmp(*e, prefix, sizeof(prefix) - 1) != 0)
            continue;
        const char *eq = strchr(*e, '=');
        if (eq == NULL)
            continue;
        const char *name = *e + sizeof(prefix) - 1;
        size_t nl = (size_t)(eq - name);
        int found = -1;
        for (size_t i = 0; i < N_KEYS && found < 0; i++) {
            /* env form: section and name upper-cased, '.' -> '_' */
            const char *k = keys[i].name;
            if (strlen(k) != nl)
                continue;
            size_t j = 0;
            for (; j < nl; j++) {
                char kc = k[j] == '.' ? '_' : (char)toupper((unsigned char)k[j]);
                if (kc != name[j])
                    break;
            }
            if (j == nl)
                found = (int)i;
        }
        if (found < 0) {
            err_printf(err, errlen, "unknown environment variable %.*s", (int)(eq - *e), *e);
            return -ENOENT;
        }
        char e2[256];
        int rc = set_index(c, (size_t)found, eq + 1, e2, sizeof(e2));
        if (rc < 0) {
            err_printf(err, errlen, "%.*s: %s", (int)(eq - *e), *e, e2);
            return rc;
        }
    }
    return 0;
}

static size_t must_index(const char *key, enum config_type t)
{
    int i = key_index(key);
    if (i < 0 || keys[i].type != t) {
        fprintf(stderr, "config: no key %s of the requested type\n", key);
        abort();
    }
    return (size_t)i;
}

const char *config_str(const struct config *c, const char *key)
{
    int i = key_index(key);
    if (i < 0) {
        fprintf(stderr, "config: no key %s\n", key);
        abort();
    }
    return c->v[i].str;
}

int64_t config_int(const struct config *c, const char *key)
{
    return c->v[must_index(key, CONFIG_INT)].num;
}

bool config_bool(const struct config *c, const char *key)
{
    return c->v[must_index(key, CONFIG_BOOL)].num != 0;
}

uint64_t config_ms(const struct config *c, const char *key)
{
    return (uint64_t)c->v[must_index(key, CONFIG_DURATION)].num;
}

size_t config_size(const struct config *c, const char *key)
{
    return (size_t)c->v[must_index(key, CONFIG_SIZE)].num;
}

size_t config_key_count(void)
{
    return N_KEYS;
}

const char *config_key_name(size_t i)
{
    return i < N_KEYS ? keys[i].name : NULL;
}

const char *config_key_help(size_t i)
{
    return i < N_KEYS ? keys[i].help : NULL;
}

static const char *type_name(const struct config_key *k)
{
    switch (k->type) {
    case CONFIG_STR:
        return "string";
    case CONFIG_INT:
        return "integer";
    case CONFIG_BOOL:
        return "boolean";
    case CONFIG_ENUM:
        return k->choices;
    case CONFIG_DURATION:
        return "duration";
    case CONFIG_SIZE:
        return "size";
    }
    return "?";
}

void config_print_help(FILE *f)
{
    fprintf(f, "Settings (INI [section] name = value; environment SPARKGATE_SECTION_NAME):\n\n");
    for (size_t i = 0; i < N_KEYS; i++) {
        const struct config_key *k = &keys[i];
        char env[128] = "SPARKGATE_";
        size_t o = strlen(env);
        for (const char *p = k->name; *p && o + 1 < sizeof(env); p++)
            env[o++] = *p == '.' ? '_' : (char)toupper((unsigned char)*p);
        env[o] = '\0';
        fprintf(f, "  %-28s %s (default \"%s\")\n  %-28s %s\n      %s\n\n", k->name, type_name(k),
                k->def, "", env, k->help);
    }
}

void config_log(const struct config *c)
{
    for (size_t i = 0; i < N_KEYS; i++)
        log_debug("setting", "name=%s value=\"%s\"", keys[i].name, c->v[i].str);
}
