/* api.c: route registration and the API's own state. */
#include "api/api_int.h"
#include "api/xmpp_api.h"

#include "core/map.h"
#include "core/mem.h"

int api_register_all(struct api_deps *d)
{
    d->state = mem_calloc(1, sizeof(*d->state));
    d->state->ceremonies = map_new();
    d->state->tickets = api__tickets_new();
    int rc = api__auth_register(d);
    if (rc == 0)
        rc = api__totp_register(d);
    if (rc == 0)
        rc = api__webauthn_register(d);
    if (rc == 0)
        rc = api__chat_register(d);
    if (rc == 0)
        rc = api__sse_register(d);
    if (rc == 0)
        rc = api__push_register(d);
    if (rc == 0)
        rc = api__ticket_register(d);
    if (rc == 0)
        rc = api__pubsub_register(d);
    if (rc == 0)
        rc = api__bookmark_register(d);
    if (rc == 0)
        rc = api__users_register(d);
    if (rc == 0)
        rc = api__roster_register(d);
    if (rc == 0)
        rc = api__xmpp_raw_register(d);
    if (rc == 0)
        rc = api__upload_register(d);
    if (rc == 0)
        rc = api__meet_register(d);
    if (rc == 0)
        rc = api__preview_register(d);
    if (rc == 0)
        rc = api__muc_register(d);
    return rc;
}

void api_free(struct api_deps *d)
{
    if (d == NULL || d->state == NULL)
        return;
    api__webauthn_free(d);
    api__push_free(d);
    api__service_free(d);
    api__users_free(d);
    api__meet_free(d);
    api__preview_free(d);
    map_free(d->state->ceremonies);
    if (d->state->queues != NULL) /* calls still running at shutdown */
        map_free(d->state->queues);
    api__tickets_free(d->state->tickets);
    while (d->state->routes) {
        struct api_route *r = d->state->routes;
        d->state->routes = *(struct api_route **)r; /* next is the first member */
        mem_free(r);
    }
    mem_free(d->state);
    d->state = NULL;
}
