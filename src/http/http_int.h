/* http_int.h: internals shared by the files of src/http/ (router, server, replies, streams,
 * static files). No other module includes this header. The router is pure (no sockets), so
 * tests/unit/test_http_router.c drives it directly. */
#ifndef SPARKGATE_HTTP_HTTP_INT_H
#define SPARKGATE_HTTP_HTTP_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "http/http.h"

/* Limits that bound the router's work per request. */
#define HTTP__MAX_PARAMS   8
#define HTTP__MAX_SEGMENTS 32

/* One segment of a compiled pattern: a literal, a "{name}" or a final "{name*}". */
struct http__seg {
    char *lit;  /* literal text, NULL for a parameter */
    char *name; /* parameter name, NULL for a literal */
    bool rest;  /* "{name*}": matches every remaining segment (at least one) */
};

struct http__route {
    struct http__route *next;
    enum http_method method;
    char *pattern;
    size_t n_segs;
    struct http__seg *segs;
    http_handler_cb *cb;
    void *data;
};

struct http__router {
    struct http__route *head;
    struct http__route *tail;
};

struct http__param {
    const char *name; /* borrowed from the route */
    char *value;      /* decoded, owned by the match */
};

struct http__match {
    const struct http__route *route;
    size_t n_params;
    struct http__param params[HTTP__MAX_PARAMS];
};

void http__router_init(struct http__router *r);
void http__router_cleanup(struct http__router *r);
/* 0, -EINVAL (malformed pattern or method), -EEXIST (same method and same pattern shape). */
int http__router_add(struct http__router *r, enum http_method m, const char *pattern,
                     http_handler_cb *cb, void *data);
/* Finds the route for method + path. `decoded` says whether the path's segments are already
 * percent-decoded (libwebsockets decodes the request line itself); otherwise each segment is
 * decoded here. HEAD falls back to GET routes. Returns 0 (out filled; release it with
 * http__match_cleanup), -ENOENT (no pattern matches the path), -EPERM (some pattern matches
 * but not for this method; *allow gets the bit mask of methods that would match), or -EINVAL
 * (path not starting with '/', too many segments, bad percent-encoding or an encoded NUL). */
int http__router_match(const struct http__router *r, enum http_method m, const char *path,
                       bool decoded, struct http__match *out, unsigned *allow);
void http__match_cleanup(struct http__match *match);
const char *http__match_param(const struct http__match *match, const char *name);

/* Percent-decodes in[0..len) into out (room for len + 1 bytes), NUL-terminating it. With
 * plus_space, '+' becomes ' ' (query strings). Returns the decoded length, or -EINVAL on a
 * malformed escape or an encoded NUL. */
int http__pct_decode(char *out, const char *in, size_t len, bool plus_space);
/* Finds name in a raw query string ("a=1&b=x%20y") and returns its decoded value (caller
 * frees with mem_free), or NULL when absent or malformed. A name without '=' has value "". */
char *http__query_get(const char *query, const char *name);

/* Bit for a method in an allow mask. */
#define HTTP__BIT(m) (1u << (unsigned)(m))
/* Writes "GET, HEAD, POST, OPTIONS"-style text for an allow mask (HEAD follows GET, OPTIONS is
 * always listed). */
void http__allow_str(unsigned allow, char *out, size_t outlen);
/* Parses a method name ("GET"...); HTTP_OTHER when unknown. */
enum http_method http__method_parse(const char *s);

/* CORS allow-list: "*" = any, "" or NULL = none. Returns the origin to echo or NULL. */
bool http__cors_allowed(const char *list, const char *origin);

/* Static files: maps a decoded URL path to a file under root (rejecting ".." segments) into out.
 * 0, -ENOENT (no mapping), -ENAMETOOLONG. Does not touch the file system. */
int http__static_map(const char *root, const char *path, char *out, size_t outlen);
/* Content type by file extension; "application/octet-stream" when unknown. */
const char *http__mime_type(const char *file);

#endif
