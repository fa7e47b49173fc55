/* tick.c: one uv_timer fanning out to a list of subscribers. */
#include "core/tick.h"

#include <stdbool.h>

#include "core/mem.h"

struct tick_sub {
    struct tick_sub *next;
    tick_cb *cb;
    void *data;
    bool removed;
};

struct tick {
    uv_timer_t timer;
    struct tick_sub *subs;
    bool running; /* inside the fan-out: removals are deferred */
    bool dirty;
};

static void tick_sweep(struct tick *t)
{
    struct tick_sub **pp = &t->subs;
    while (*pp != NULL) {
        struct tick_sub *s = *pp;
        if (s->removed) {
            *pp = s->next;
            mem_free(s);
        } else {
            pp = &s->next;
        }
    }
    t->dirty = false;
}

static void tick_on_timer(uv_timer_t *h)
{
    struct tick *t = container_of(h, struct tick, timer);
    uint64_t now = uv_now(h->loop);
    t->running = true;
    for (struct tick_sub *s = t->subs; s != NULL; s = s->next) {
        if (!s->removed)
            s->cb(t, now, s->data);
    }
    t->running = false;
    if (t->dirty)
        tick_sweep(t);
}

struct tick *tick_new(uv_loop_t *loop, uint64_t interval_ms)
{
    struct tick *t = mem_calloc(1, sizeof(*t));
    uv_timer_init(loop, &t->timer);
    uv_timer_start(&t->timer, tick_on_timer, interval_ms, interval_ms);
    return t;
}

static void tick_on_close(uv_handle_t *h)
{
    struct tick *t = container_of((uv_timer_t *)h, struct tick, timer);
    for (struct tick_sub *s = t->subs; s != NULL;) {
        struct tick_sub *n = s->next;
        mem_free(s);
        s = n;
    }
    mem_free(t);
}

void tick_free(struct tick *t)
{
    if (t == NULL)
        return;
    uv_timer_stop(&t->timer);
    uv_close((uv_handle_t *)&t->timer, tick_on_close);
}

struct tick_sub *tick_add(struct tick *t, tick_cb *cb, void *data)
{
    struct tick_sub *s = mem_calloc(1, sizeof(*s));
    s->cb = cb;
    s->data = data;
    s->next = t->subs;
    t->subs = s;
    return s;
}

void tick_remove(struct tick *t, struct tick_sub *sub)
{
    if (sub == NULL)
        return;
    sub->removed = true;
    t->dirty = true;
    if (!t->running)
        tick_sweep(t);
}

uint64_t tick_now(const struct tick *t)
{
    return uv_now(t->timer.loop);
}

uv_loop_t *tick_loop(const struct tick *t)
{
    return t->timer.loop;
}
