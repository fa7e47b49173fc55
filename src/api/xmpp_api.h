/* xmpp_api.h: what the REST handlers that talk XMPP share (api/ internal):
 * - waiting for one IQ answer on behalf of an HTTP request (the client may leave meanwhile; the
 *   server may never answer, or the session may end),
 * - the one table that maps XMPP stanza errors (RFC 6120 §8.3.3) to HTTP statuses,
 * - reading JIDs, usernames and room names from paths and queries (RFC 7622),
 * - XEP-0030 discovery of the server's MUC, pubsub and upload services, cached per gateway,
 *   overridable by configuration (xmpp.muc_service, xmpp.pubsub_service, xmpp.upload_service).
 * Loop thread only. */
#ifndef SPARKGATE_API_XMPP_API_H
#define SPARKGATE_API_XMPP_API_H

#include <stdbool.h>
#include <stdint.h>

#include "api/api_int.h"

struct session;
struct xmpp_stanza;

/* ---- one IQ per step of a request ---- */

/* The server's answer to api__iq: type "result" (or "error" with API_IQ_ERRORS), borrowed for
 * the call. The callback owns data from here on and must answer req, or pass req and data on to
 * another api__iq / api__service step. */
typedef void api_iq_cb(struct http_req *req, struct session *s, const struct xmpp_stanza *reply,
                       void *data);

enum {
    API_IQ_ERRORS = 1,  /* error answers go to the callback too (e.g. item-not-found = empty) */
    API_IQ_TIMEOUT = 2, /* no answer in time: the callback gets reply NULL instead of a 504 */
};

/* Sends iq (type, to and payload set by the caller; its id is replaced; not consumed) from s,
 * marks the session active, and calls cb with the answer. Failures are answered here, never
 * reaching cb, and release data with free_data (when not NULL):
 *   - an error IQ: the status of api__xmpp_error_status and its condition as the resource;
 *   - no answer within timeout_ms (0: the session's xmpp.iq_timeout): 504;
 *   - the session ended (503 "xmpp session closed") or its upstream was lost and the answer
 *     with it (503 "xmpp connection lost");
 *   - the client left: the waiter is cancelled, nothing is answered.
 * Returns 0, or a negative errno when the IQ could not be sent; the error has then been
 * answered and data released too, so callers simply return. */
int api__iq(struct http_req *req, struct session *s, struct xmpp_stanza *iq, uint64_t timeout_ms,
            int flags, api_iq_cb *cb, void (*free_data)(void *), void *data);

/* Builds <iq type=type to=to id=...> with one child <name xmlns=ns/>; *payload (optional) gets
 * that child for the caller to fill. to NULL: the user's own account. */
struct xmpp_stanza *api__iq_new(const char *type, const char *to, const char *name, const char *ns,
                                struct xmpp_stanza **payload);

/* ---- stanza errors ---- */

/* Answers req for a waiter that ended without an answer (status < 0 from session_send_iq or
 * session_mam_query): -ETIMEDOUT 504 "xmpp server did not answer", -ECONNRESET 503 "xmpp
 * connection lost", anything else 503 "xmpp session closed". */
void api__iq_failed(struct http_req *req, int status);
/* True for a stanza of type "error" (NULL: false). */
bool api__is_error(const struct xmpp_stanza *st);
/* True when a disco#info <query/> (NULL: false) lists <feature var=var/>. */
bool api__disco_feature(const struct xmpp_stanza *query, const char *var);

/* The HTTP status for an error stanza (iq/message/presence type="error"), by its defined
 * condition: bad-request, jid-malformed, not-acceptable, unexpected-request 400;
 * not-authorized, forbidden, not-allowed, policy-violation, registration-required,
 * subscription-required 403; item-not-found, recipient-unavailable, remote-server-not-found 404;
 * conflict 409; gone 410; feature-not-implemented 501; service-unavailable,
 * resource-constraint 503; remote-server-timeout 504; internal-server-error,
 * undefined-condition, redirect and anything unknown 502. *condition (optional) gets the
 * condition's element name ("undefined-condition" when there is none; borrowed from the
 * stanza or static). */
int api__xmpp_error_status(const struct xmpp_stanza *st, const char **condition);
/* Answers req with that status and ErrorResponse, resource "<condition>" or
 * "<condition>: <text>" (the server's <text>, at most 200 bytes, cut on a UTF-8 boundary). */
void api__xmpp_error(struct http_req *req, const struct xmpp_stanza *st);

/* ---- addresses from paths and queries ---- */

/* A contact or target given as a path parameter: a JID ("bob@example.org", "example.org",
 * "bob@example.org/phone") or a bare username ("bob": no '@' and no '.', completed with
 * d->domain). Returns the normalised full or bare JID (mem_free), or NULL when invalid.
 * need_local: a domain alone is refused. */
char *api__jid_arg(const struct api_deps *d, const char *arg, bool need_local);

/* True for a room name usable as a MUC local part (RFC 7622 localpart rules, 1..256 bytes). */
bool api__room_name_valid(const char *room);

/* The MUC service named by a request's serviceName/service query value (contract §0.8):
 * "conference" and "conference." -> "conference.<domain>"; a value with a dot inside (not only
 * at the end) -> that service JID as given. Sets *out (mem_free) and returns true; *out is NULL
 * when the value is NULL or "" (the caller then uses api__service(API_SVC_MUC)). false for an
 * invalid value. */
bool api__muc_service_arg(const struct api_deps *d, const char *service, char **out);

/* ---- services (XEP-0030) ---- */

enum api_service_kind {
    API_SVC_MUC,    /* identity conference/text */
    API_SVC_PUBSUB, /* identity pubsub/service */
    API_SVC_UPLOAD, /* feature urn:xmpp:http:upload:0 */
    API_SVC_COUNT,
};

/* jid: the service's address (borrowed for the call); info: its disco#info result (borrowed;
 * NULL when the service came from configuration). As api_iq_cb, cb owns data and must answer. */
typedef void api_service_cb(struct http_req *req, struct session *s, const char *jid,
                            const struct xmpp_stanza *info, void *data);

/* Finds the server's service of kind: the configured JID when set (d->muc_service,
 * d->pubsub_service, d->upload_service non-empty), else the
 * one discovered with disco#items on the domain and disco#info on each item (cached for 10
 * minutes for every user). No such service: 501 "<kind> service not available on this server".
 * Errors are answered and data released as api__iq does. Returns 0 or a negative errno. */
int api__service(struct api_deps *d, struct http_req *req, struct session *s,
                 enum api_service_kind kind, api_service_cb *cb, void (*free_data)(void *),
                 void *data);

/* Frees the discovery cache (api_free). */
void api__service_free(struct api_deps *d);

#endif
