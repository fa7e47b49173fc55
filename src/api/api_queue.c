/* api_queue.c: one call at a time per user, for the calls that read, change and write back
 * state kept on the XMPP server (bookmarks, properties, vCard): without it two concurrent
 * calls both read the old state and the later write loses the earlier change. The queues are
 * in d->state->queues (user -> the running call, the head of a singly linked list). */
#include "api/api_int.h"

#include <stddef.h>

#include "core/map.h"

static void queued_aborted(struct http_req *req, void *data)
{
    (void)req;
    struct api_queued *q = data;
    q->aborted(q);
}

void api__queue_enter(struct api_deps *d, struct api_queued *q)
{
    struct api_state *st = d->state;
    q->next = NULL;
    if (st->queues == NULL)
        st->queues = map_new();
    struct api_queued *head = map_get(st->queues, q->user);
    if (head == NULL) {
        map_put(st->queues, q->user, q);
        q->start(q);
        return;
    }
    struct api_queued *tail = head;
    while (tail->next != NULL)
        tail = tail->next;
    tail->next = q;
    http_req_on_abort(q->req, queued_aborted, q);
}

struct api_queued *api__queue_leave(struct api_deps *d, struct api_queued *q)
{
    struct api_state *st = d->state;
    struct api_queued *head = st->queues ? map_get(st->queues, q->user) : NULL;
    struct api_queued *next = NULL;
    if (head == q) {
        next = q->next;
        if (next != NULL)
            map_put(st->queues, next->user, next);
        else
            map_remove(st->queues, q->user);
    } else {
        for (struct api_queued *p = head; p != NULL; p = p->next) {
            if (p->next == q) {
                p->next = q->next;
                break;
            }
        }
    }
    q->next = NULL;
    if (st->queues != NULL && map_count(st->queues) == 0) {
        map_free(st->queues);
        st->queues = NULL;
    }
    return next;
}

void api__queue_run(struct api_queued *next)
{
    if (next == NULL)
        return;
    http_req_on_abort(next->req, NULL, NULL); /* its start step registers its own */
    next->start(next);
}
