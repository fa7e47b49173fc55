/* sse.c: event-stream framing, heartbeats and slow-consumer handling. */
#include "sse/sse.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "core/buf.h"
#include "core/mem.h"
#include "core/tick.h"
#include "events/events.h"
#include "http/http.h"

#define LOG_MODULE "sse"
#include "core/log.h"

struct sse_stream {
    struct sse_hub *hub;
    struct sse_stream *prev, *next; /* hub list, least recently written first */
    struct http_stream *http;
    sse_closed_cb *cb;
    void *data;
    sse_drain_cb *drain_cb;
    void *drain_data;
    uint64_t last_write_ms;
    bool closing;
};

struct sse_hub {
    struct tick *tick;
    struct tick_sub *sub;
    uint64_t heartbeat_ms;
    size_t max_queue;
    struct sse_stream *head, *tail;
    size_t count;
};

static void list_remove(struct sse_hub *hub, struct sse_stream *st)
{
    if (st->prev)
        st->prev->next = st->next;
    else
        hub->head = st->next;
    if (st->next)
        st->next->prev = st->prev;
    else
        hub->tail = st->prev;
    st->prev = st->next = NULL;
}

static void list_append(struct sse_hub *hub, struct sse_stream *st)
{
    st->prev = hub->tail;
    st->next = NULL;
    if (hub->tail)
        hub->tail->next = st;
    else
        hub->head = st;
    hub->tail = st;
}

/* Queues bytes. A write that would pass max_queue aborts the stream (slow consumer) unless
 * `offer`, which leaves it as it is and returns -EAGAIN. */
static int stream_write(struct sse_stream *st, const char *data, size_t len, bool offer)
{
    if (st->closing)
        return -EPIPE;
    int rc = http_stream_write(st->http, data, len);
    if (rc == -ENOBUFS && offer)
        return -EAGAIN;
    if (rc == -ENOBUFS) {
        log_warn("slow_consumer", "peer=%s queued=%zu", http_stream_peer(st->http),
                 http_stream_queued(st->http));
        st->closing = true;
        http_stream_abort(st->http);
        return rc;
    }
    if (rc < 0)
        return rc;
    st->last_write_ms = tick_now(st->hub->tick);
    list_remove(st->hub, st);
    list_append(st->hub, st);
    return 0;
}

static void hub_on_tick(struct tick *t, uint64_t now_ms, void *data)
{
    struct sse_hub *hub = data;
    (void)t;
    /* oldest writes first: stop at the first stream written recently */
    while (hub->head && now_ms - hub->head->last_write_ms >= hub->heartbeat_ms) {
        struct sse_stream *st = hub->head;
        if (stream_write(st, ":\r\n\r\n", 5, false) < 0 && hub->head == st) {
            /* could not write (closing): move it out of the way until its close completes */
            list_remove(hub, st);
            list_append(hub, st);
            st->last_write_ms = now_ms;
        }
    }
}

struct sse_hub *sse_hub_new(struct tick *tick, uint64_t heartbeat_ms, size_t max_queue)
{
    struct sse_hub *hub = mem_calloc(1, sizeof(*hub));
    hub->tick = tick;
    hub->heartbeat_ms = heartbeat_ms;
    hub->max_queue = max_queue;
    hub->sub = tick_add(tick, hub_on_tick, hub);
    return hub;
}

void sse_hub_free(struct sse_hub *hub)
{
    if (hub == NULL)
        return;
    for (struct sse_stream *st = hub->head; st; st = st->next)
        sse_stream_close(st);
    tick_remove(hub->tick, hub->sub);
    /* streams still closing keep a pointer to the hub: it lives until they are gone */
    hub->sub = NULL;
    if (hub->count == 0)
        mem_free(hub);
}

size_t sse_hub_count(const struct sse_hub *hub)
{
    return hub->count;
}

static void on_http_closed(struct http_stream *hs, void *data)
{
    struct sse_stream *st = data;
    (void)hs;
    struct sse_hub *hub = st->hub;
    list_remove(hub, st);
    hub->count--;
    st->cb(st, st->data);
    mem_free(st);
    if (hub->sub == NULL && hub->count == 0)
        mem_free(hub);
}

struct sse_stream *sse_stream_open(struct sse_hub *hub, struct http_req *req, sse_closed_cb *cb,
                                   void *data)
{
    struct sse_stream *st = mem_calloc(1, sizeof(*st));
    st->hub = hub;
    st->cb = cb;
    st->data = data;
    /* an allowed Origin is echoed by the http module's CORS headers (adding it here too
     * sent two values, which browsers refuse); any other page may read the stream, since the
     * credential is in the URL (contract §3.2) */
    if (http_req_cors_origin(req) == NULL)
        http_req_add_header(req, "Access-Control-Allow-Origin", "*");
    http_req_add_header(req, "Cache-Control", "no-store");
    http_req_add_header(req, "X-Accel-Buffering", "no");
    st->http = http_req_stream(req, 200, "text/event-stream; charset=utf-8", hub->max_queue,
                               on_http_closed, st);
    st->last_write_ms = tick_now(hub->tick);
    list_append(hub, st);
    hub->count++;
    return st;
}

static int frame_write(struct sse_stream *st, uint64_t id, const char *name, const char *json,
                       size_t json_len, bool offer)
{
    if (st->closing)
        return -EPIPE;
    /* one frame per write so the queue bound applies to whole events */
    struct buf b;
    buf_init(&b, json_len * 8 + 256);
    if (id > 0)
        buf_appendf(&b, "id: %llu\r\n", (unsigned long long)id);
    buf_appendf(&b, "event: %s\r\ndata: ", name);
    /* payloads are single-line JSON; split defensively on line breaks anyway */
    size_t run = 0;
    for (size_t i = 0; i < json_len; i++) {
        if (json[i] != '\n' && json[i] != '\r')
            continue;
        buf_append(&b, json + run, i - run);
        buf_append(&b, "\r\ndata: ", 8);
        run = i + 1;
    }
    buf_append(&b, json + run, json_len - run);
    buf_append(&b, "\r\n\r\n", 4);
    int rc;
    if (b.len > st->hub->max_queue) {
        /* could never be queued: skipping it beats a reconnect loop over the same event */
        log_warn("event_too_big", "peer=%s id=%llu event=%s len=%zu max_queue=%zu",
                 http_stream_peer(st->http), (unsigned long long)id, name, b.len,
                 st->hub->max_queue);
        rc = -EMSGSIZE;
    } else {
        rc = stream_write(st, b.ptr, b.len, offer);
    }
    buf_cleanup(&b);
    return rc;
}

int sse_stream_send(struct sse_stream *st, uint64_t id, const char *name, const char *json,
                    size_t json_len)
{
    return frame_write(st, id, name, json, json_len, false);
}

int sse_stream_send_event(struct sse_stream *st, const struct event *ev)
{
    return sse_stream_send(st, ev->id, ev->name, ev->json, ev->json_len);
}

int sse_stream_offer(struct sse_stream *st, uint64_t id, const char *name, const char *json,
                     size_t json_len)
{
    return frame_write(st, id, name, json, json_len, true);
}

int sse_stream_offer_event(struct sse_stream *st, const struct event *ev)
{
    return sse_stream_offer(st, ev->id, ev->name, ev->json, ev->json_len);
}

static void on_http_drain(struct http_stream *hs, void *data)
{
    struct sse_stream *st = data;
    (void)hs;
    sse_drain_cb *cb = st->drain_cb;
    st->drain_cb = NULL;
    if (cb && !st->closing)
        cb(st, st->drain_data);
}

void sse_stream_on_drain(struct sse_stream *st, sse_drain_cb *cb, void *data)
{
    if (st->closing)
        return;
    st->drain_cb = cb;
    st->drain_data = data;
    http_stream_on_drain(st->http, st->hub->max_queue / 2, on_http_drain, st);
}

void sse_stream_close(struct sse_stream *st)
{
    if (st->closing)
        return;
    st->closing = true;
    http_stream_close(st->http);
}
