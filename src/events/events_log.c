/* events_log.c: per-user event ids, the ring of recent events (bounded in length and age),
 * resuming streams from a Last-Event-ID, and the sinks. */
#include "events/events.h"

#include <string.h>
#include <time.h>

#include "core/mem.h"
#include "core/rnd.h"

#define SERIAL_BITS 21
#define SERIAL_MAX  ((UINT64_C(1) << SERIAL_BITS) - 1)
#define ID_LIMIT    (UINT64_C(1) << 53) /* JSON / JavaScript safe integers stay below */

struct event_rc {
    struct event ev; /* first: (const struct event *) converts back */
    size_t refs;
    uint64_t at_ms; /* when it was pushed (for the age limit) */
};

struct events_sink {
    struct events_sink *next;
    events_deliver_cb *cb;
    void *data;
    bool detached;
};

/* Invariant: the ring holds exactly the ids (dropped_id, last_id], oldest first from
 * (head - count), since events leave only from the old end. */
struct events_log {
    struct event_rc **ring; /* ring_len slots, newest at (head - 1) */
    size_t ring_len;
    size_t head;
    size_t count;
    uint64_t base;         /* serial << 32: the id before the first event */
    uint64_t last_id;      /* newest id pushed (base when none) */
    uint64_t delivered_id; /* newest id handed to (or taken over by) at least one stream */
    uint64_t dropped_id;   /* newest id that left the ring (base when none) */
    uint64_t max_age_ms;
    events_clock_cb *clock;
    void *clock_data;
    struct events_sink *sinks;
    int delivering; /* nesting depth of fan-outs; detaches are deferred meanwhile */
    size_t max_len; /* configured ring length; ring_len grows to it as events come */
};

/* Slots a new ring starts with: most users never hold many events, and 1,024 slots per user
 * up front were 8 KiB of the gateway's memory per session (bench/README.md). */
#define EVENTS__RING_START 16

/* Process-wide: the next log serial and the defaults of events_log_new. Loop thread only. */
static uint64_t next_serial;
static uint64_t default_max_age_ms;
static events_clock_cb *default_clock;
static void *default_clock_data;

static uint64_t take_serial(void)
{
    if (next_serial == 0) {
        uint32_t r;
        rnd_bytes(&r, sizeof(r));
        next_serial = r % SERIAL_MAX + 1; /* [1, 2^21 - 1] */
    }
    uint64_t s = next_serial;
    next_serial = next_serial % SERIAL_MAX + 1;
    return s;
}

static uint64_t monotonic_ms(void *data)
{
    (void)data;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

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

void events_log_set_defaults(uint64_t max_age_ms, events_clock_cb *clock, void *clock_data)
{
    default_max_age_ms = max_age_ms;
    default_clock = clock;
    default_clock_data = clock_data;
}

struct events_log *events_log_new_opts(const struct events_log_opts *opts)
{
    struct events_log *log = mem_calloc(1, sizeof(*log));
    log->max_len = opts->ring_len ? opts->ring_len : 1;
    log->ring_len = log->max_len < EVENTS__RING_START ? log->max_len : EVENTS__RING_START;
    log->ring = mem_calloc(log->ring_len, sizeof(*log->ring));
    log->base = take_serial() << 32;
    log->last_id = log->delivered_id = log->dropped_id = log->base;
    log->max_age_ms = opts->max_age_ms;
    log->clock = opts->clock ? opts->clock : monotonic_ms;
    log->clock_data = opts->clock ? opts->clock_data : NULL;
    return log;
}

struct events_log *events_log_new(size_t ring_len)
{
    struct events_log_opts o = { .ring_len = ring_len,
                                 .max_age_ms = default_max_age_ms,
                                 .clock = default_clock,
                                 .clock_data = default_clock_data };
    return events_log_new_opts(&o);
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

static size_t oldest_index(const struct events_log *log)
{
    return (log->head + log->ring_len - log->count) % log->ring_len;
}

/* Removes the oldest held event. */
static void drop_oldest(struct events_log *log)
{
    size_t idx = oldest_index(log);
    struct event_rc *e = log->ring[idx];
    log->dropped_id = e->ev.id;
    log->ring[idx] = NULL;
    log->count--;
    events_unref(&e->ev);
}

/* Drops the events older than max_age_ms. */
static void expire(struct events_log *log)
{
    if (log->max_age_ms == 0 || log->count == 0)
        return;
    uint64_t now = log->clock(log->clock_data);
    while (log->count > 0) {
        const struct event_rc *e = log->ring[oldest_index(log)];
        if (now < e->at_ms || now - e->at_ms < log->max_age_ms)
            break;
        drop_oldest(log);
    }
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

/* Doubles the ring (up to max_len), oldest event first at slot 0. */
static void grow(struct events_log *log)
{
    size_t n = log->ring_len * 2 < log->max_len ? log->ring_len * 2 : log->max_len;
    struct event_rc **ring = mem_calloc(n, sizeof(*ring));
    size_t old = oldest_index(log);
    for (size_t i = 0; i < log->count; i++)
        ring[i] = log->ring[(old + i) % log->ring_len];
    mem_free(log->ring);
    log->ring = ring;
    log->ring_len = n;
    log->head = log->count % n;
}

uint64_t events_log_push(struct events_log *log, const char *name, json_t *payload)
{
    expire(log);
    if (log->count == log->ring_len && log->ring_len < log->max_len)
        grow(log);
    if (log->count == log->ring_len)
        drop_oldest(log);
    struct event_rc *e = mem_calloc(1, sizeof(*e));
    e->refs = 1; /* the ring's */
    e->at_ms = log->clock(log->clock_data);
    e->ev.id = ++log->last_id;
    e->ev.name = mem_strdup(name);
    char *text = json_dumps(payload, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(payload);
    e->ev.json = mem_strdup(text ? text : "null");
    free(text);
    e->ev.json_len = strlen(e->ev.json);

    log->ring[log->head] = e;
    log->head = (log->head + 1) % log->ring_len;
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
    expire(log);
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

uint64_t events_log_oldest_id(struct events_log *log)
{
    expire(log);
    return log->count ? log->dropped_id + 1 : 0;
}

uint64_t events_log_base(const struct events_log *log)
{
    return log->base;
}

size_t events_log_count(const struct events_log *log)
{
    return log->count;
}

bool events_id_parse(const char *text, uint64_t *out)
{
    if (text == NULL || *text == '\0' || (text[0] == '0' && text[1] != '\0'))
        return false;
    uint64_t v = 0;
    for (const char *p = text; *p; p++) {
        if (*p < '0' || *p > '9')
            return false;
        v = v * 10 + (uint64_t)(*p - '0');
        if (v >= ID_LIMIT)
            return false;
    }
    *out = v;
    return true;
}

void events_log_resume(struct events_log *log, const char *last_event_id, struct events_resume *r)
{
    expire(log);
    memset(r, 0, sizeof(*r));
    r->last = log->last_id;
    r->oldest = log->count ? log->dropped_id + 1 : 0;
    /* without a usable id: after what some stream already has, or after what is gone */
    uint64_t fresh = log->delivered_id > log->dropped_id ? log->delivered_id : log->dropped_id;
    if (last_event_id != NULL && *last_event_id != '\0') {
        uint64_t id;
        r->has_requested = events_id_parse(last_event_id, &id);
        r->requested = r->has_requested ? id : 0;
        if (r->has_requested && id >= log->dropped_id && id <= log->last_id) {
            r->cursor = id; /* dropped_id >= base, so the id is of this log */
        } else if (r->has_requested && id >= log->base && id < log->dropped_id) {
            r->gap = true; /* this log's, too old: what is still held follows the gap */
            r->cursor = log->dropped_id;
        } else {
            r->gap = true;
            r->cursor = fresh;
        }
    } else {
        r->gap = log->delivered_id < log->dropped_id;
        r->cursor = fresh;
    }
    log->delivered_id = log->last_id;
}

const struct event *events_log_next(struct events_log *log, uint64_t after, bool *lost)
{
    expire(log);
    *lost = false;
    if (after == log->last_id)
        return NULL;
    if (after < log->dropped_id || after > log->last_id) {
        *lost = true;
        return NULL;
    }
    uint64_t back = log->last_id - (after + 1); /* 0 for the newest */
    size_t idx = (log->head + log->ring_len - 1 - (size_t)back) % log->ring_len;
    return &log->ring[idx]->ev;
}

json_t *events_gap_payload(uint64_t oldest, uint64_t last, bool has_requested, uint64_t requested)
{
    return json_pack("{s:I, s:I, s:o}", "oldest", (json_int_t)oldest, "last", (json_int_t)last,
                     "requested",
                     has_requested ? json_integer((json_int_t)requested) : json_null());
}
