/* api.h: the SparkWeb REST surface and the event-stream endpoints, one file per contract tag
 * (auth_api.c, chat_api.c, sse_api.c...). Handlers validate input, authenticate the caller,
 * call session/ and answer with the contract's JSON and error model; they never touch sockets
 * or storage directly. Loop thread only. Contract: spec/sparkweb-api.md §1-§3. */
#ifndef SPARKGATE_API_API_H
#define SPARKGATE_API_API_H

struct auth;
struct http_server;
struct session_mgr;
struct sse_hub;

struct api_deps {
    struct http_server *http;
    struct auth *auth;
    struct session_mgr *sessions;
    struct sse_hub *sse;
    unsigned max_streams_per_user;
};

/* Registers every route. 0 or a negative errno from http_route (a programming error). */
int api_register_all(const struct api_deps *deps);

/* For session_mgr_opts.on_session_end: revokes the user's tokens (data = struct auth *). */
void api_on_session_end(const char *username, const char *reason, void *data);

#endif
