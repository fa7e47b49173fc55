/* sse_ticket.c: POST /sse/ticket and the in-memory ticket table behind /sparkweb/sse?ticket=.
 * A ticket is 32 random bytes (base64url, 43 characters), single use, valid for
 * sse.ticket_lifetime, bound to its user and, when it was obtained with an access token, to
 * that token (a logout kills it). Only its SHA-256 is kept. Docs: docs/events.md. */
#include "api/api_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "core/b64.h"
#include "core/map.h"
#include "core/mem.h"
#include "core/rnd.h"
#include "core/tick.h"

#define LOG_MODULE "api"
#include "core/log.h"

#define TICKET_BYTES 32
#define TICKET_CHARS 43 /* base64url of 32 bytes, no padding */

struct ticket {
    struct ticket *prev, *next; /* oldest first: every ticket lives equally long */
    uint64_t expires_ms;
    char key[2 * SHA256_DIGEST_LENGTH + 1];
    char jti[AUTH_JTI_LEN]; /* "" when obtained with Basic */
    char user[];
};

struct user_count {
    size_t n;
};

struct api_tickets {
    struct map *by_hash; /* hex SHA-256 -> struct ticket */
    struct map *per_user;
    struct ticket *head, *tail;
};

struct api_tickets *api__tickets_new(void)
{
    struct api_tickets *t = mem_calloc(1, sizeof(*t));
    t->by_hash = map_new();
    t->per_user = map_new();
    return t;
}

static void ticket_remove(struct api_tickets *t, struct ticket *k)
{
    if (k->prev)
        k->prev->next = k->next;
    else
        t->head = k->next;
    if (k->next)
        k->next->prev = k->prev;
    else
        t->tail = k->prev;
    map_remove(t->by_hash, k->key);
    struct user_count *uc = map_get(t->per_user, k->user);
    if (uc != NULL && --uc->n == 0)
        mem_free(map_remove(t->per_user, k->user));
    OPENSSL_cleanse(k->key, sizeof(k->key));
    mem_free(k);
}

void api__tickets_free(struct api_tickets *t)
{
    if (t == NULL)
        return;
    while (t->head)
        ticket_remove(t, t->head);
    map_free(t->by_hash);
    map_free(t->per_user);
    mem_free(t);
}

static void sweep(struct api_tickets *t, uint64_t now_ms)
{
    while (t->head && t->head->expires_ms <= now_ms)
        ticket_remove(t, t->head);
}

static void ticket_hash(const char *ticket, char out[2 * SHA256_DIGEST_LENGTH + 1])
{
    uint8_t md[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)ticket, strlen(ticket), md);
    for (size_t i = 0; i < sizeof(md); i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
    OPENSSL_cleanse(md, sizeof(md));
}

static bool ticket_wellformed(const char *s)
{
    size_t n = strlen(s);
    if (n != TICKET_CHARS)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_'))
            return false;
    }
    return true;
}

void api__tickets_forget_user(struct api_deps *d, const char *user)
{
    struct api_tickets *t = d->state->tickets;
    if (map_get(t->per_user, user) == NULL)
        return;
    for (struct ticket *k = t->head, *next; k != NULL; k = next) {
        next = k->next;
        if (strcmp(k->user, user) == 0)
            ticket_remove(t, k);
    }
}

int api__ticket_take(struct api_deps *d, const char *ticket, char user[API_USER_MAX],
                     char tab[AUTH_FAMILY_LEN], char jti[AUTH_JTI_LEN])
{
    tab[0] = '\0';
    jti[0] = '\0';
    struct api_tickets *t = d->state->tickets;
    uint64_t now = tick_now(d->tick);
    sweep(t, now);
    if (ticket == NULL || !ticket_wellformed(ticket))
        return -ENOENT;
    char key[2 * SHA256_DIGEST_LENGTH + 1];
    ticket_hash(ticket, key);
    struct ticket *k = map_get(t->by_hash, key);
    OPENSSL_cleanse(key, sizeof(key));
    if (k == NULL)
        return -ENOENT;
    bool live = k->jti[0] == '\0' || auth_jti_live(d->auth, k->jti, k->user);
    snprintf(user, API_USER_MAX, "%s", k->user);
    if (live && k->jti[0] != '\0') {
        auth_jti_family(d->auth, k->jti, tab);
        snprintf(jti, AUTH_JTI_LEN, "%s", k->jti);
    }
    ticket_remove(t, k); /* spent either way */
    return live ? 0 : -EACCES;
}

/* POST /sse/ticket (token or Basic): {"ticket": "...", "expiresIn": seconds}. */
static void handle_ticket(struct http_req *req, const char *user, struct session *s,
                          struct api_deps *d)
{
    (void)s;
    struct api_tickets *t = d->state->tickets;
    uint64_t now = tick_now(d->tick);
    sweep(t, now);
    struct user_count *uc = map_get(t->per_user, user);
    if (uc != NULL && uc->n >= d->max_streams_per_user) {
        log_info("ticket_refused", "user=%s why=per_user outstanding=%zu", user, uc->n);
        api__error(req, 429, "too many tickets");
        return;
    }
    if (map_count(t->by_hash) >= d->sse_max_tickets) {
        log_warn("ticket_refused", "user=%s why=table_full outstanding=%zu", user,
                 map_count(t->by_hash));
        api__error(req, 503, "too many tickets");
        return;
    }
    uint8_t raw[TICKET_BYTES];
    rnd_bytes(raw, sizeof(raw));
    size_t tlen;
    char *ticket = b64_encode(raw, sizeof(raw), B64_URL, &tlen);
    OPENSSL_cleanse(raw, sizeof(raw));

    size_t ul = strlen(user);
    struct ticket *k = mem_calloc(1, sizeof(*k) + ul + 1);
    memcpy(k->user, user, ul + 1);
    k->expires_ms = now + d->sse_ticket_ms;
    ticket_hash(ticket, k->key);
    const char *token = auth_token_from_header(http_req_header(req, "authorization"));
    if (token == NULL || auth_token_jti(d->auth, token, k->jti) < 0)
        k->jti[0] = '\0'; /* Basic: bound to the user only */
    k->prev = t->tail;
    if (t->tail)
        t->tail->next = k;
    else
        t->head = k;
    t->tail = k;
    map_put(t->by_hash, k->key, k);
    if (uc == NULL) {
        uc = mem_calloc(1, sizeof(*uc));
        map_put(t->per_user, user, uc);
    }
    uc->n++;

    log_debug("ticket_issued", "user=%s bound=%s outstanding=%zu", user,
              k->jti[0] ? "token" : "user", map_count(t->by_hash));
    json_t *body = json_pack("{s:s, s:I}", "ticket", ticket, "expiresIn",
                             (json_int_t)((d->sse_ticket_ms + 999) / 1000));
    OPENSSL_cleanse(ticket, tlen);
    mem_free(ticket);
    http_req_add_header(req, "Cache-Control", "no-store");
    http_reply_json(req, 200, body);
}

int api__ticket_register(struct api_deps *d)
{
    return api__route_user(d, HTTP_POST, API_PREFIX "/sse/ticket", handle_ticket, 0);
}
