/* api_util.c: error replies, authentication of REST requests, text validation. */
#include "api/api_int.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "auth/auth.h"

#define LOG_MODULE "api"
#include "core/log.h"

static const char *exception_for(int status)
{
    switch (status) {
    case 400:
        return "IllegalArgumentException";
    case 401:
        return "UnauthorizedException";
    case 403:
        return "ForbiddenException";
    case 404:
        return "NotFoundException";
    case 409:
        return "ConflictException";
    case 413:
        return "PayloadTooLargeException";
    case 429:
        return "TooManyRequestsException";
    case 502:
        return "XMPPException";
    case 503:
        return "ServiceUnavailableException";
    case 504:
        return "TimeoutException";
    default:
        return "Exception";
    }
}

void api__error(struct http_req *req, int status, const char *resource)
{
    http_reply_error(req, status, resource, "Exception", exception_for(status));
}

void api__error_errno(struct http_req *req, int err, const char *what)
{
    int status;
    const char *resource = what;
    switch (err) {
    case -EACCES:
        status = 401;
        resource = "not-authorized";
        break;
    case -EAGAIN:
        status = 503;
        resource = "too many sessions";
        break;
    case -ETIMEDOUT:
        status = 504;
        resource = "xmpp server timeout";
        break;
    case -EINVAL:
        status = 400;
        break;
    case -ENOTCONN:
    case -ECANCELED:
        status = 400;
        resource = "xmpp connection not found";
        break;
    case -ENOBUFS:
        status = 503;
        resource = "xmpp connection congested";
        break;
    case -EPROTO:
        status = 502;
        resource = "xmpp protocol or tls failure";
        break;
    default:
        status = 502;
        resource = "xmpp server unreachable";
        break;
    }
    api__error(req, status, resource);
}

bool api__authenticate(const struct api_deps *d, struct http_req *req, char user[API_USER_MAX])
{
    const char *hdr = http_req_header(req, "authorization");
    const char *token = auth_token_from_header(hdr);
    if (token == NULL) {
        http_req_add_header(req, "WWW-Authenticate", "Bearer");
        api__error(req, 401, "missing credentials");
        return false;
    }
    enum jwt_status st = auth_token_check(d->auth, token, user, API_USER_MAX);
    if (st != JWT_OK) {
        log_info("auth_refused", "path=%s why=%s", http_req_path(req), jwt_status_str(st));
        http_req_add_header(req, "WWW-Authenticate", "Bearer error=\"invalid_token\"");
        api__error(req, 401, jwt_status_str(st));
        return false;
    }
    return true;
}

bool api__xml_text_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        uint32_t c = p[i];
        size_t n;
        if (c < 0x80) {
            n = 1;
        } else if ((c & 0xe0) == 0xc0) {
            n = 2;
            c &= 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            n = 3;
            c &= 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            n = 4;
            c &= 0x07;
        } else {
            return false;
        }
        if (i + n > len)
            return false;
        for (size_t k = 1; k < n; k++) {
            if ((p[i + k] & 0xc0) != 0x80)
                return false;
            c = c << 6 | (p[i + k] & 0x3f);
        }
        static const uint32_t min_for_len[] = { 0, 0, 0x80, 0x800, 0x10000 };
        if (c < min_for_len[n] || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
            return false; /* overlong, out of range, surrogate */
        /* XML 1.0 Char production */
        if ((c < 0x20 && c != 0x9 && c != 0xa && c != 0xd) || c == 0xfffe || c == 0xffff)
            return false;
        i += n;
    }
    return true;
}
