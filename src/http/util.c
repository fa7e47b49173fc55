/* util.c: small pure helpers of the http module: method names, Allow lists, the CORS
 * allow-list, errno -> status mapping, static file mapping and content types. */
#define LOG_MODULE "http"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "http/http_int.h"

static const char *const method_names[] = {
    [HTTP_GET] = "GET",         [HTTP_POST] = "POST",   [HTTP_PUT] = "PUT",
    [HTTP_DELETE] = "DELETE",   [HTTP_PATCH] = "PATCH", [HTTP_HEAD] = "HEAD",
    [HTTP_OPTIONS] = "OPTIONS", [HTTP_OTHER] = "OTHER",
};

const char *http_method_str(enum http_method m)
{
    if ((unsigned)m > (unsigned)HTTP_OTHER)
        return "OTHER";
    return method_names[m];
}

enum http_method http__method_parse(const char *s)
{
    for (unsigned i = 0; i < (unsigned)HTTP_OTHER; i++) {
        if (s && !strcmp(s, method_names[i]))
            return (enum http_method)i;
    }
    return HTTP_OTHER;
}

void http__allow_str(unsigned allow, char *out, size_t outlen)
{
    static const enum http_method order[] = { HTTP_GET,   HTTP_HEAD,   HTTP_POST,   HTTP_PUT,
                                              HTTP_PATCH, HTTP_DELETE, HTTP_OPTIONS };

    if (allow & HTTP__BIT(HTTP_GET))
        allow |= HTTP__BIT(HTTP_HEAD);
    allow |= HTTP__BIT(HTTP_OPTIONS);
    size_t o = 0;
    out[0] = '\0';
    for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
        if (!(allow & HTTP__BIT(order[i])))
            continue;
        int n = snprintf(out + o, outlen - o, "%s%s", o ? ", " : "", method_names[order[i]]);
        if (n < 0 || (size_t)n >= outlen - o)
            break;
        o += (size_t)n;
    }
}

bool http__cors_allowed(const char *list, const char *origin)
{
    if (!list || !origin || !origin[0])
        return false;
    size_t olen = strlen(origin);
    const char *p = list;
    while (*p) {
        while (*p == ' ' || *p == ',')
            p++;
        const char *e = p;
        while (*e && *e != ',')
            e++;
        const char *t = e;
        while (t > p && t[-1] == ' ')
            t--;
        size_t len = (size_t)(t - p);
        if ((len == 1 && *p == '*') || (len == olen && !strncasecmp(p, origin, len)))
            return true;
        p = e;
    }
    return false;
}

int http_status_from_errno(int err)
{
    switch (err) {
    case 0:
        return 200;
    case -EINVAL:
    case -EPROTO:
    case -EBADMSG:
        return 400;
    case -EACCES:
        return 401;
    case -EPERM:
        return 403;
    case -ENOENT:
        return 404;
    case -EEXIST:
        return 409;
    case -EMSGSIZE:
    case -E2BIG:
        return 413;
    case -ENOSYS:
    case -EOPNOTSUPP:
        return 501;
    case -ECONNRESET:
    case -ENOTCONN:
    case -ECONNREFUSED:
    case -EHOSTUNREACH:
    case -EPIPE:
        return 502;
    case -EAGAIN:
    case -ENOBUFS:
    case -ECANCELED:
    case -ESHUTDOWN:
        return 503;
    case -ETIMEDOUT:
        return 504;
    default:
        return 500;
    }
}

int http__static_map(const char *root, const char *path, char *out, size_t outlen)
{
    if (!root || !root[0] || !path || path[0] != '/')
        return -ENOENT;
    const char *rest = path + 1;
    if (!strncmp(rest, "sparkweb/", 9))
        rest += 9;
    else if (!strcmp(rest, "sparkweb"))
        rest += 8;
    /* reject "..", and anything hidden or odd, segment by segment */
    const char *s = rest;
    while (*s) {
        const char *e = strchr(s, '/');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        if (len > 0 && s[0] == '.')
            return -ENOENT;
        if (memchr(s, '\\', len))
            return -ENOENT;
        s += len;
        if (*s == '/')
            s++;
    }
    size_t rlen = strlen(root);
    while (rlen > 1 && root[rlen - 1] == '/')
        rlen--;
    int n = snprintf(out, outlen, "%.*s/%s", (int)rlen, root, rest);
    if (n < 0 || (size_t)n >= outlen)
        return -ENAMETOOLONG;
    return 0;
}

const char *http__mime_type(const char *file)
{
    static const struct {
        const char *ext;
        const char *type;
    } types[] = {
        { "html", "text/html; charset=utf-8" },
        { "htm", "text/html; charset=utf-8" },
        { "js", "text/javascript; charset=utf-8" },
        { "mjs", "text/javascript; charset=utf-8" },
        { "css", "text/css; charset=utf-8" },
        { "json", "application/json" },
        { "svg", "image/svg+xml" },
        { "png", "image/png" },
        { "ico", "image/x-icon" },
        { "txt", "text/plain; charset=utf-8" },
        { "webmanifest", "application/manifest+json" },
        { "map", "application/json" },
    };

    const char *slash = strrchr(file, '/');
    const char *dot = strrchr(slash ? slash : file, '.');
    if (dot) {
        for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
            if (!strcasecmp(dot + 1, types[i].ext))
                return types[i].type;
        }
    }
    return "application/octet-stream";
}
