/* ratelimit.h: back-off for credential checks, keyed by any string ("u:alice", "ip:192.0.2.1").
 * Each key may fail `free_failures` times; after that each further failure blocks the key for
 * base_ms * 2^(k) (k = failures beyond the free ones, minus one), capped at max_ms. A success
 * clears the key; a key untouched for forget_ms is forgotten. Memory is bounded: with
 * max_entries keys held, the least recently touched one is dropped. Loop thread only; time is
 * passed in so tests control it. */
#ifndef SPARKGATE_AUTH_RATELIMIT_H
#define SPARKGATE_AUTH_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

struct ratelimit;

struct ratelimit_opts {
    unsigned free_failures; /* default 5 when 0 */
    uint64_t base_ms;       /* default 1000 when 0 */
    uint64_t max_ms;        /* default 15 min when 0 */
    uint64_t forget_ms;     /* default 1 h when 0 */
    size_t max_entries;     /* default 100000 when 0 */
};

struct ratelimit *ratelimit_new(const struct ratelimit_opts *opts);
void ratelimit_free(struct ratelimit *rl);

/* 0 when key may try now, else how many ms it must still wait. */
uint64_t ratelimit_check(struct ratelimit *rl, const char *key, uint64_t now_ms);
/* Records a failed attempt of key at now_ms. Returns the wait now imposed (0 if none). */
uint64_t ratelimit_fail(struct ratelimit *rl, const char *key, uint64_t now_ms);
/* Records a success: the key starts afresh. */
void ratelimit_success(struct ratelimit *rl, const char *key);
/* Keys held (for tests and metrics). */
size_t ratelimit_count(const struct ratelimit *rl);

#endif
