/* tick.h: the one shared timer that drives every deadline in the process (IQ timeouts,
 * heartbeats, linger and idle expiry). Per-connection timers are avoided on purpose: lws's are
 * O(n) sorted inserts (research/c-dependencies.md §1). A subscriber is called on every tick
 * with the loop's current time and scans its own (usually short, or sliced) list.
 * Loop thread only. */
#ifndef SPARKGATE_CORE_TICK_H
#define SPARKGATE_CORE_TICK_H

#include <stdint.h>

#include <uv.h>

struct tick;
struct tick_sub;

typedef void tick_cb(struct tick *t, uint64_t now_ms, void *data);

/* Starts a repeating timer every interval_ms on loop. Never fails (aborts on OOM). */
struct tick *tick_new(uv_loop_t *loop, uint64_t interval_ms);
/* Stops the timer and frees t once libuv has closed the handle; subscriptions must have been
 * removed. */
void tick_free(struct tick *t);
/* Adds a subscriber; returns a handle for tick_remove. cb is first called on the next tick. */
struct tick_sub *tick_add(struct tick *t, tick_cb *cb, void *data);
/* Removes a subscription; safe to call from inside any tick callback (even its own). */
void tick_remove(struct tick *t, struct tick_sub *sub);
/* uv_now() of the loop, in ms. */
uint64_t tick_now(const struct tick *t);
uv_loop_t *tick_loop(const struct tick *t);

#endif
