/* events_log.c: per-user event ids, the ring of recent events and the sinks. */
#include "events/events.h"

#include <string.h>

#include "core/mem.h"

struct event_rc {
    struct event ev; /* first: (const struct event *) converts back */
    size_t refs;
};

struct events_sink {
    struct events_sink *next;
    events_deliver_cb *cb;
    void *data;
    bool detached;
};

struct events_log {
    struct event_rc **ring; /* ring_len slots, newest at (head - 1) */
    size_t ring_len;
    size_t head;
    size_t count;
    uint64_t last_id;
    uint64_t delivered_id; /* newest id handed to at least one sink */
    struct events_sink *sinks;
    int delivering; /* nesting depth of fan-outs; detaches are deferred meanwhile */
};

const struct event *events_ref(const struct event *ev)
{
    ((struct event_rc *)ev)->refs++;
    return ev;
}

void events_unref(const struct event *ev)
{
    if (ev == NULL)
        return;
    struct event_rc *e = (struct event_rc *)ev;
    if (--e->refs > 0)
        return;
    mem_free((char *)e->ev.name);
    mem_free((char *)e->ev.json);
    mem_free(e);
}

struct events_log *events_log_new(size_t ring_len)
{
    struct events_log *log = mem_calloc(1, sizeof(*log));
    log->ring_len = ring_len ? ring_len : 1;
    log->ring = mem_calloc(log->ring_len, sizeof(*log->ring));
    return log;
}

void events_log_free(struct events_log *log)
{
    if (log == NULL)
        return;
    for (size_t i = 0; i < log->ring_len; i++)
        events_unref(log->ring[i] ? &log->ring[i]->ev : NULL);
    for (struct events_sink *s = log->sinks; s;) {
        struct events_sink *n = s->next;
        mem_free(s);
        s = n;
    }
    mem_free(log->ring);
    mem_free(log);
}

static void sweep_sinks(struct events_log *log)
{
    struct events_sink **pp = &log->sinks;
    while (*pp) {
        struct events_sink *s = *pp;
        if (s->detached) {
            *pp = s->next;
            mem_free(s);
        } else {
            pp = &s->next;
        }
    }
}

uint64_t events_log_push(struct events_log *log, const char *name, json_t *payload)
{
    struct event_rc *e = mem_calloc(1, sizeof(*e));
    e->refs = 1; /* the ring's */
    e->ev.id = ++log->last_id;
    e->ev.name = mem_strdup(name);
    char *text = json_dumps(payload, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(payload);
    e->ev.json = mem_strdup(text ? text : "null");
    free(text);
    e->ev.json_len = strlen(e->ev.json);

    events_unref(log->ring[log->head] ? &log->ring[log->head]->ev : NULL);
    log->ring[log->head] = e;
    log->head = (log->head + 1) % log->ring_len;
    if (log->count < log->ring_len)
        log->count++;

    events_ref(&e->ev); /* held across the fan-out */
    log->delivering++;
    for (struct events_sink *s = log->sinks; s; s = s->next) {
        if (!s->detached) {
            s->cb(s, &e->ev, s->data);
            log->delivered_id = e->ev.id;
        }
    }
    if (--log->delivering == 0)
        sweep_sinks(log);
    uint64_t id = e->ev.id;
    events_unref(&e->ev);
    return id;
}

struct events_sink *events_log_attach(struct events_log *log, events_deliver_cb *cb, void *data)
{
    struct events_sink *s = mem_calloc(1, sizeof(*s));
    s->cb = cb;
    s->data = data;
    struct events_sink **pp = &log->sinks;
    while (*pp)
        pp = &(*pp)->next;
    *pp = s;

    /* replay what no sink has seen yet, oldest first */
    log->delivering++;
    for (size_t k = log->count; k > 0 && !s->detached; k--) {
        size_t idx = (log->head + log->ring_len - k) % log->ring_len;
        struct event_rc *e = log->ring[idx];
        if (e == NULL || e->ev.id <= log->delivered_id)
            continue;
        events_ref(&e->ev);
        cb(s, &e->ev, data);
        events_unref(&e->ev);
    }
    if (!s->detached && log->last_id > log->delivered_id)
        log->delivered_id = log->last_id;
    if (--log->delivering == 0)
        sweep_sinks(log);
    return s;
}

void events_log_detach(struct events_log *log, struct events_sink *sink)
{
    if (sink == NULL)
        return;
    sink->detached = true;
    if (log->delivering == 0)
        sweep_sinks(log);
}

void events_log_send_to(struct events_log *log, struct events_sink *sink, const char *name,
                        json_t *payload)
{
    (void)log;
    char *text = json_dumps(payload, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(payload);
    struct event_rc *e = mem_calloc(1, sizeof(*e));
    e->refs = 1;
    e->ev.name = mem_strdup(name);
    e->ev.json = mem_strdup(text ? text : "null");
    e->ev.json_len = strlen(e->ev.json);
    free(text);
    if (sink != NULL && !sink->detached)
        sink->cb(sink, &e->ev, sink->data);
    events_unref(&e->ev);
}

size_t events_log_sink_count(const struct events_log *log)
{
    size_t n = 0;
    for (const struct events_sink *s = log->sinks; s; s = s->next)
        n += !s->detached;
    return n;
}

uint64_t events_log_last_id(const struct events_log *log)
{
    return log->last_id;
}
