/* api_int.h: helpers shared by the api/ files. */
#ifndef SPARKGATE_API_API_INT_H
#define SPARKGATE_API_API_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api/api.h"
#include "auth/auth.h"
#include "http/http.h"

#define API_PREFIX   "/sparkweb/api/rest"
#define API_USER_MAX 1024
#define API_PASS_MAX 1024

struct session;
struct xmpp_stanza;
struct map;

struct api_tickets;
struct api_disco;
struct api_users;
struct api_meet;
struct api_preview;

struct api_state {
    struct map *ceremonies;      /* "<kind>:<user>" -> struct api_ceremony (webauthn_api.c) */
    struct api_route *routes;    /* wrappers made by api__route_user, freed at api_free */
    struct api_push *push;       /* push_api.c: the unseen-stanza cache */
    struct api_tickets *tickets; /* SSE tickets (sse_ticket.c) */
    struct api_disco *disco;     /* XEP-0030 service cache (xmpp_api.c) */
    struct api_users *users;     /* user_api.c: the server's XEP-0092 version for U10 */
    struct api_meet *meet;       /* meet_api.c: whether the server offers XEP-0483 */
    struct api_preview *preview; /* preview_api.c: result cache and per-user rate */
    struct map *queues;          /* api_queue.c: user -> running struct api_queued */
};

int api__auth_register(struct api_deps *d);
int api__totp_register(struct api_deps *d);
int api__webauthn_register(struct api_deps *d);
int api__chat_register(struct api_deps *d);
int api__sse_register(struct api_deps *d);
int api__push_register(struct api_deps *d);
int api__ticket_register(struct api_deps *d);
int api__pubsub_register(struct api_deps *d);   /* pubsub_api.c */
int api__bookmark_register(struct api_deps *d); /* bookmark_api.c */
int api__roster_register(struct api_deps *d);   /* roster_api.c */
int api__xmpp_raw_register(struct api_deps *d);
int api__upload_register(struct api_deps *d);
int api__meet_register(struct api_deps *d);
int api__preview_register(struct api_deps *d);
int api__muc_register(struct api_deps *d);
void api__webauthn_free(struct api_deps *d);
void api__meet_free(struct api_deps *d);
void api__preview_free(struct api_deps *d);
void api__push_free(struct api_deps *d);
int api__users_register(struct api_deps *d);
void api__users_free(struct api_deps *d);

/* The message of C2 (type NULL: "chat", or "normal" for a JSON body without "body") or G9
 * (type "groupchat"): a JSON object body becomes Jive property "data" (the whole text) plus
 * <body> from its "body" member; any other text is a plain body (chat_api.c). */
struct xmpp_stanza *api__build_message(const char *to, const char *text, const char *type);

/* Archive helpers shared by the history calls (chat_api.c; C1, G1, G6). */
/* XEP-0082 dateTime ("2024-05-01T10:00:00Z", optional seconds and fraction, Z or +hh:mm) to
 * epoch ms. */
bool api__parse_iso(const char *v, int64_t *ms);
/* The contract's date argument: ISO-8601 when it contains 'T', else MM/dd/yy local time. */
bool api__parse_date_arg(const char *v, int64_t *ms);
/* Epoch ms as "2024-05-01T10:00:00.000Z". */
void api__format_iso(int64_t ms, char out[40]);
/* Appends <field var [type]><value>value</value></field> to a data form. */
void api__form_field(struct xmpp_stanza *x, const char *var, const char *value, const char *type);
/* {"node","domain","resource"} of a JID, JSON null when it is not one. */
json_t *api__jid_object(const char *s);
/* ASCII case-insensitive: every whitespace-separated term of kw occurs in body. */
bool api__keywords_match(const char *body, const char *kw);

/* The contract's ServiceException body: message "Exception", resource = the human text,
 * exception derived from the status (IllegalArgumentException for 400, ...). */
void api__error(struct http_req *req, int status, const char *resource);
/* Maps a negative errno from session/ or xmpp/ to a status and error body. */
void api__error_errno(struct http_req *req, int err, const char *what);

/* A handler behind authentication: user is the caller, s their online session when the route
 * asked for one (NULL otherwise). */
typedef void api_user_handler(struct http_req *req, const char *user, struct session *s,
                              struct api_deps *d);
#define API_NEED_SESSION 1
/* Registers a route whose caller must present a token (raw or Bearer) or Basic credentials.
 * Basic is checked against the XMPP server (a session is opened or its password verified),
 * then remembered for auth.basic_cache. With API_NEED_SESSION the user's session is opened
 * from the vault when a token's user has none (or from the Basic password). */
int api__route_user(struct api_deps *d, int method, const char *pattern, api_user_handler *h,
                    int flags);

/* One row of a file's route table for api__route_table. */
struct api_route_def {
    int method;
    const char *pattern;
    api_user_handler *h;
    int flags; /* API_NEED_SESSION or 0 */
};

/* Registers every row with api__route_user; stops at the first error. */
int api__route_table(struct api_deps *d, const struct api_route_def *defs, size_t n);
#define API_ROUTE_TABLE(d, defs) api__route_table((d), (defs), sizeof(defs) / sizeof((defs)[0]))

/* A handler for a request that presented a restricted token of the route's scope
 * (auth_scoped_issue): user is its subject, peer its "peer" claim ("" when none). */
typedef void api_scoped_handler(struct http_req *req, const char *user, const char *peer,
                                struct api_deps *d);
/* As api__route_user, but a restricted token of `scope` is accepted too; such requests go to hs
 * and never open a session. */
int api__route_scoped(struct api_deps *d, int method, const char *pattern, const char *scope,
                      api_scoped_handler *hs, api_user_handler *h, int flags);

/* Authenticates by token only (SSE, logout). On success returns true with the username in
 * user; otherwise it has replied 401 and returns false. */
bool api__authenticate(const struct api_deps *d, struct http_req *req, char user[API_USER_MAX]);

/* Rate limits of credential checks (per username and per client address). _check replies 429
 * with Retry-After and returns false when either key is blocked; when it lets the attempt
 * through it already charges the username as a failure, which _ok refunds (clears) on success
 * and _fail leaves (then charging the address). Capture the client address (api__client_ip)
 * while the handler runs: headers are gone after it returns. */
void api__client_ip(const struct api_deps *d, struct http_req *req, char out[64]);
bool api__rate_check(struct api_deps *d, struct http_req *req, const char *user, const char *ip);
void api__rate_fail(struct api_deps *d, const char *user, const char *ip);
void api__rate_ok(struct api_deps *d, const char *user, const char *ip);

/* A request that waits for the XMPP server or the store (password checks, ceremonies). Files
 * embed it as the first member of their own call struct, so the struct's address is the
 * call's. The abort handler cancels what is pending; a store callback cannot be cancelled, so
 * while in_store the call stays allocated until api__call_store_back sees the abort. */
struct api_call {
    struct api_deps *d;
    struct http_req *req;
    struct session_login *login;
    struct xmpp_register *reg;
    struct api_ensure *ensure;
    void (*cleanup)(struct api_call *c); /* the embedding struct's own fields; optional */
    const char *method;                  /* for the login log line ("totp", "webauthn") */
    bool in_store;                       /* a store callback will come */
    bool aborted;                        /* the client left while in_store */
    char user[API_USER_MAX];
    char password[API_PASS_MAX]; /* wiped when the call ends */
    char ip[64];
    char family[AUTH_FAMILY_LEN]; /* refresh family for the tokens issued at the end */
};

enum {
    API_CALL_USER = 1, /* validate and case-fold {username} into user */
    API_CALL_RATE = 2, /* apply the credential rate limit (user and address) */
    API_CALL_DB = 4,   /* the route needs the database (503 without one) */
};
/* Allocates a zeroed call of `size` bytes (>= sizeof(struct api_call)) and captures the client
 * address. NULL when it has already replied (400 bad username, 429, 503). */
struct api_call *api__call_new(struct api_deps *d, struct http_req *req, size_t size, int flags);
void api__call_free(struct api_call *c);
/* Registers the abort handler (call it once something is pending). */
void api__call_watch(struct api_call *c);
/* First thing in a store callback: false when the client left (c is freed then). */
bool api__call_store_back(struct api_call *c);
/* End the call with a reply (they unregister the abort handler and free c). */
void api__call_error(struct api_call *c, int status, const char *text);
void api__call_errno(struct api_call *c, int err, const char *what);
void api__call_reply(struct api_call *c, json_t *body);
/* The common start of a session_login_cb for a call that presented a password: on failure it
 * charges the address (wrong password), logs, answers and ends the call, returning false; on
 * success it refunds the rate limit, remembers the password for Basic and keeps it in the
 * vault when configured, returning true. c->login is cleared either way. */
bool api__call_password_checked(struct api_call *c, int status, const char *what);
/* An api_ensure_cb (data = the call): answers a token pair for c->user in c->family, or the
 * contract's error when the session could not be established; ends the call. */
void api__call_tokens(int status, struct session *s, void *data);

/* Replies 200 {"token","refreshToken","expiresIn"} with a new pair for user (family NULL: a new
 * family). */
void api__reply_tokens(struct api_deps *d, struct http_req *req, const char *user,
                       const char *family);

/* Gets the user's online session, opening it from the credential vault when there is none
 * (FAST token, then SCRAM credential, then a stored password; stale entries are dropped).
 * cb(status, s): 0 with the session; -ENOKEY when no usable credential exists; other errors
 * from session_open. Never calls back inside the call. Returns a handle for
 * api__ensure_cancel. */
struct api_ensure;
typedef void api_ensure_cb(int status, struct session *s, void *data);
struct api_ensure *api__ensure_session(struct api_deps *d, const char *user, api_ensure_cb *cb,
                                       void *data);
void api__ensure_cancel(struct api_ensure *e);

/* SSE tickets (sse_ticket.c): single-use credentials for /sparkweb/sse?ticket=, valid for
 * d->sse_ticket_ms, so a page's access token need not travel in a URL (server logs, proxies,
 * history). Kept in memory only, by SHA-256, at most d->sse_max_tickets at once and
 * d->max_streams_per_user per user; expired ones are dropped as new ones are made or used. */
struct api_tickets *api__tickets_new(void);
void api__tickets_free(struct api_tickets *t);
/* Drops every outstanding ticket of user (logout). */
void api__tickets_forget_user(struct api_deps *d, const char *user);
/* Spends a ticket: 0 with its user in user, the access token it was obtained with in jti (""
 * for Basic) and that token's refresh family in tab ("" for Basic; the tab tag for session.logout =
 * tab); -ENOENT when it is malformed, unknown, already used or expired; -EACCES when that access
 * token has been revoked since (logout). Never logs the ticket. */
int api__ticket_take(struct api_deps *d, const char *ticket, char user[API_USER_MAX],
                     char tab[AUTH_FAMILY_LEN], char jti[AUTH_JTI_LEN]);

/* Link previews (preview_html.c): the title, description and image a page announces, read
 * from its first bytes by a tolerant scanner. Fields are NULL when absent, else valid UTF-8
 * without control characters (mem_free; api__html_meta_cleanup). title: og:title, then
 * twitter:title, then <title>; description: og:description, twitter:description, then
 * <meta name=description>; image: og:image (or :url, :secure_url), twitter:image, then (with
 * want_img) the first <img src>, as written in the page (possibly relative). */
struct api_html_meta {
    char *title;
    char *description;
    char *image;
};

void api__html_meta(const char *html, size_t len, bool want_img, struct api_html_meta *out);
void api__html_meta_cleanup(struct api_html_meta *m);

/* Stores the password in the vault when vault.store_password is on. */
void api__vault_password(struct api_deps *d, const char *user, const char *password);

/* SQL LIKE (case-sensitive; '%' any run of bytes, '_' one byte) as the reference's property
 * search. Iterative: backtracks only to the last '%', so O(strlen(s) * strlen(p)) at worst. */
bool api__like(const char *s, const char *p);

/* A per-user queue of calls (api_queue.c): calls of one user that read-modify-write state on
 * the XMPP server run one at a time, in arrival order. Embed struct api_queued in the call and
 * fill req, user (borrowed from the call; the queue's key), start and aborted. */
struct api_queued {
    struct api_queued *next;
    struct http_req *req;
    const char *user;
    void (*start)(struct api_queued *q);   /* its turn: run the call */
    void (*aborted)(struct api_queued *q); /* the client left while it waited: end the call
                                            * (which calls api__queue_leave) without a reply */
};

/* Starts q at once when the user has no running call (q->start runs inside), else queues it
 * and watches its request for an abort. */
void api__queue_enter(struct api_deps *d, struct api_queued *q);
/* Takes q out of its user's queue (running or waiting) and returns the call to start next, or
 * NULL: pass it to api__queue_run once q's own cleanup is done. */
struct api_queued *api__queue_leave(struct api_deps *d, struct api_queued *q);
/* Starts next (NULL: nothing). */
void api__queue_run(struct api_queued *next);

/* One page of a C1 archive query (chat_api.c): of the got result messages (each
 * <message><result xmlns="urn:xmpp:mam:2" id/></message>, in time order) at most room are
 * kept, the oldest when paging forward, the newest when paging backward; cut tells that some
 * were dropped here or (truncated) by the collector. first and last (mem_free; NULL when
 * unknown) are the archive ids of the kept run's ends, from the results themselves (the
 * page's RSM set, only when nothing was cut and a result has no id). */
struct xmpp_stanza;

struct api_mam_page {
    size_t start, n; /* items[start .. start + n) are kept */
    bool cut;
    char *first, *last;
};

void api__mam_page(struct xmpp_stanza *const *items, size_t got, size_t room, bool backward,
                   bool truncated, const struct xmpp_stanza *set, struct api_mam_page *out);

/* True when s[0..len) is UTF-8 and contains only characters XML 1.0 allows. */
bool api__xml_text_valid(const char *s, size_t len);
/* Validates a username (an RFC 7622 localpart) and writes it to out with ASCII letters in
 * lower case (out may be in): the server treats "Alice" and "alice" as one account, so rate
 * limits, sessions and token subjects must too. Full nodeprep of non-ASCII letters is left to
 * the server. */
bool api__username(const char *in, char out[API_USER_MAX]);
/* A body that is a password: non-empty, valid text, no NUL, < API_PASS_MAX. Copies it into
 * out (NUL-terminated). */
bool api__password_body(struct http_req *req, char out[API_PASS_MAX]);

#endif
