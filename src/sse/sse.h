/* sse.h: the EventSource sink (WHATWG HTML §9.2): response headers, `id:`/`event:`/`data:`
 * framing with CRLF line ends, keep-alive comments from the shared tick, and the slow-consumer
 * bound: a stream whose queue would pass sse.max_queue is aborted (its queued bytes freed at
 * once, the connection reset); the browser reconnects with Last-Event-ID. Writers that replay
 * a backlog pace themselves with sse_stream_offer and sse_stream_on_drain instead.
 * Decides nothing about what an event is. Loop thread only. */
#ifndef SPARKGATE_SSE_SSE_H
#define SPARKGATE_SSE_SSE_H

#include <stddef.h>
#include <stdint.h>

struct event;
struct http_req;
struct sse_hub;
struct sse_stream;
struct tick;

/* The streams of the process share one tick subscription for heartbeats. */
struct sse_hub *sse_hub_new(struct tick *tick, uint64_t heartbeat_ms, size_t max_queue);
/* Closes every stream (their close callbacks run) and frees the hub. */
void sse_hub_free(struct sse_hub *hub);
size_t sse_hub_count(const struct sse_hub *hub);

/* Runs once when the stream has ended (client gone, closed by us, or too slow); the stream is
 * invalid after it returns. */
typedef void sse_closed_cb(struct sse_stream *st, void *data);

/* Turns req into an event stream: 200, Content-Type: text/event-stream; charset=utf-8,
 * Cache-Control: no-store, X-Accel-Buffering: no, and Access-Control-Allow-Origin (the
 * echoed allowed origin, else "*": the token travels in the URL, so no credentials are
 * involved). Returns the stream (never NULL). */
struct sse_stream *sse_stream_open(struct sse_hub *hub, struct http_req *req, sse_closed_cb *cb,
                                   void *data);
/* Writes one event ("id: N" when id > 0). 0; -ENOBUFS when the queue would pass max_queue:
 * the stream is aborted as too slow (the close callback follows); -EMSGSIZE when the frame
 * alone is larger than max_queue: the event is skipped and logged, the stream stays; -EPIPE
 * when the stream is closing. */
int sse_stream_send(struct sse_stream *st, uint64_t id, const char *name, const char *json,
                    size_t json_len);
int sse_stream_send_event(struct sse_stream *st, const struct event *ev);
/* As sse_stream_send, but a frame that does not fit in the queue now is not written and the
 * stream stays: -EAGAIN (offer it again from the drain callback). */
int sse_stream_offer(struct sse_stream *st, uint64_t id, const char *name, const char *json,
                     size_t json_len);
int sse_stream_offer_event(struct sse_stream *st, const struct event *ev);
/* Calls cb once when the queue has drained to half of max_queue (after a socket write). One
 * registration at a time; none after the stream started closing. */
typedef void sse_drain_cb(struct sse_stream *st, void *data);
void sse_stream_on_drain(struct sse_stream *st, sse_drain_cb *cb, void *data);
/* Ends the stream after what is queued; the close callback follows. Idempotent. */
void sse_stream_close(struct sse_stream *st);

#endif
