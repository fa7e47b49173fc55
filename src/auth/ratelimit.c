/* ratelimit.c: failure back-off per key, in a core map plus an intrusive LRU list.
 *
 * Each entry sits in the map (key -> entry) and in a doubly linked list ordered by the last
 * failure, newest at the head. A failure moves its entry to the head; inserting a new key when
 * max_entries are held drops the tail. Old entries are forgotten lazily: when a call meets one,
 * and by a short sweep of the list's tail on every call (the tail is the oldest), so no timer
 * is needed and no single call does unbounded work.
 *
 * Decisions the header leaves open:
 * - "Touched" means a failure. ratelimit_check() reads and never refreshes a key, so polling a
 *   blocked key neither extends its memory nor saves it from eviction.
 * - A key is forgotten once forget_ms have passed since its last failure *and* its block has
 *   ended, so a forget_ms shorter than the back-off cannot cut a block short.
 * - Keys longer than RATELIMIT_KEY_MAX bytes are cut to that length: keys that share such a
 *   prefix share a budget (stricter, never looser), and memory stays bounded by
 *   max_entries * RATELIMIT_KEY_MAX. */
#include "auth/ratelimit.h"

#include <assert.h>
#include <limits.h>
#include <stdbool.h>
#include <string.h>

#include "core/map.h"
#include "core/mem.h"

#define RATELIMIT_KEY_MAX 256
#define SWEEP_PER_CALL    8
#define DEF_FREE_FAILURES 5
#define DEF_BASE_MS       1000
#define DEF_MAX_MS        (15 * 60 * 1000)
#define DEF_FORGET_MS     (60 * 60 * 1000)
#define DEF_MAX_ENTRIES   100000

struct rl_entry {
    struct rl_entry *prev; /* towards the head (newer) */
    struct rl_entry *next; /* towards the tail (older) */
    uint64_t last_fail_ms;
    uint64_t blocked_until_ms;
    unsigned failures;
    char key[]; /* as stored in the map, needed to remove the entry on eviction */
};

struct ratelimit {
    struct map *map;
    struct rl_entry *head;
    struct rl_entry *tail;
    struct ratelimit_opts o;
};

struct ratelimit *ratelimit_new(const struct ratelimit_opts *opts)
{
    struct ratelimit *rl = mem_calloc(1, sizeof(*rl));
    if (opts != NULL)
        rl->o = *opts;
    if (rl->o.free_failures == 0)
        rl->o.free_failures = DEF_FREE_FAILURES;
    if (rl->o.base_ms == 0)
        rl->o.base_ms = DEF_BASE_MS;
    if (rl->o.max_ms == 0)
        rl->o.max_ms = DEF_MAX_MS;
    if (rl->o.forget_ms == 0)
        rl->o.forget_ms = DEF_FORGET_MS;
    if (rl->o.max_entries == 0)
        rl->o.max_entries = DEF_MAX_ENTRIES;
    rl->map = map_new();
    return rl;
}

void ratelimit_free(struct ratelimit *rl)
{
    if (rl == NULL)
        return;
    for (struct rl_entry *e = rl->head; e != NULL;) {
        struct rl_entry *next = e->next;
        mem_free(e);
        e = next;
    }
    map_free(rl->map);
    mem_free(rl);
}

static void list_unlink(struct ratelimit *rl, struct rl_entry *e)
{
    if (e->prev != NULL)
        e->prev->next = e->next;
    else
        rl->head = e->next;
    if (e->next != NULL)
        e->next->prev = e->prev;
    else
        rl->tail = e->prev;
    e->prev = e->next = NULL;
}

static void list_push_head(struct ratelimit *rl, struct rl_entry *e)
{
    e->prev = NULL;
    e->next = rl->head;
    if (rl->head != NULL)
        rl->head->prev = e;
    rl->head = e;
    if (rl->tail == NULL)
        rl->tail = e;
}

static void entry_drop(struct ratelimit *rl, struct rl_entry *e)
{
    list_unlink(rl, e);
    map_remove(rl->map, e->key);
    mem_free(e);
}

static bool entry_stale(const struct ratelimit *rl, const struct rl_entry *e, uint64_t now_ms)
{
    return now_ms >= e->blocked_until_ms && now_ms >= e->last_fail_ms &&
           now_ms - e->last_fail_ms >= rl->o.forget_ms;
}

/* Forgets a few stale entries from the old end of the list. It stops at the first live one:
 * an older entry can still be blocked, but it is then dropped when met or evicted. */
static void sweep(struct ratelimit *rl, uint64_t now_ms)
{
    for (int i = 0; i < SWEEP_PER_CALL && rl->tail != NULL; i++) {
        if (!entry_stale(rl, rl->tail, now_ms))
            break;
        entry_drop(rl, rl->tail);
    }
}

/* The map key for key: a copy cut to RATELIMIT_KEY_MAX bytes, in the caller's storage. */
static const char *norm_key(const char *key, char tmp[RATELIMIT_KEY_MAX + 1])
{
    assert(key != NULL);
    size_t len = strnlen(key, RATELIMIT_KEY_MAX + 1);
    if (len <= RATELIMIT_KEY_MAX)
        return key;
    memcpy(tmp, key, RATELIMIT_KEY_MAX);
    tmp[RATELIMIT_KEY_MAX] = '\0';
    return tmp;
}

/* The live entry for key, or NULL (a stale one is dropped on the way). */
static struct rl_entry *lookup(struct ratelimit *rl, const char *key, uint64_t now_ms)
{
    struct rl_entry *e = map_get(rl->map, key);
    if (e != NULL && entry_stale(rl, e, now_ms)) {
        entry_drop(rl, e);
        e = NULL;
    }
    return e;
}

uint64_t ratelimit_check(struct ratelimit *rl, const char *key, uint64_t now_ms)
{
    char tmp[RATELIMIT_KEY_MAX + 1];
    key = norm_key(key, tmp);
    sweep(rl, now_ms);
    struct rl_entry *e = lookup(rl, key, now_ms);
    if (e == NULL || now_ms >= e->blocked_until_ms)
        return 0;
    return e->blocked_until_ms - now_ms;
}

/* base_ms * 2^k capped at max_ms, without overflow. */
static uint64_t backoff_ms(const struct ratelimit *rl, unsigned k)
{
    uint64_t base = rl->o.base_ms;
    if (base >= rl->o.max_ms)
        return rl->o.max_ms;
    if (k >= 64 || base > (rl->o.max_ms >> k))
        return rl->o.max_ms;
    return base << k;
}

uint64_t ratelimit_fail(struct ratelimit *rl, const char *key, uint64_t now_ms)
{
    char tmp[RATELIMIT_KEY_MAX + 1];
    key = norm_key(key, tmp);
    sweep(rl, now_ms);
    struct rl_entry *e = lookup(rl, key, now_ms);
    if (e == NULL) {
        if (map_count(rl->map) >= rl->o.max_entries)
            entry_drop(rl, rl->tail);
        size_t kl = strlen(key);
        e = mem_calloc(1, sizeof(*e) + kl + 1);
        memcpy(e->key, key, kl + 1);
        map_put(rl->map, e->key, e);
    } else {
        list_unlink(rl, e);
    }
    list_push_head(rl, e);
    if (e->failures < UINT_MAX)
        e->failures++;
    e->last_fail_ms = now_ms;
    uint64_t wait = 0;
    if (e->failures > rl->o.free_failures)
        wait = backoff_ms(rl, e->failures - rl->o.free_failures - 1);
    e->blocked_until_ms = wait > UINT64_MAX - now_ms ? UINT64_MAX : now_ms + wait;
    return wait;
}

void ratelimit_success(struct ratelimit *rl, const char *key)
{
    char tmp[RATELIMIT_KEY_MAX + 1];
    key = norm_key(key, tmp);
    struct rl_entry *e = map_get(rl->map, key);
    if (e != NULL)
        entry_drop(rl, e);
}

size_t ratelimit_count(const struct ratelimit *rl)
{
    return map_count(rl->map);
}
