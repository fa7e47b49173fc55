/* url.c: what an endpoint may be: an absolute https URL (http only for tests) whose addresses
 * are public. Parsing is libcurl's own (CURLU), so the check and the request agree on the host. */
#include "push/push.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <netinet/in.h>
#include <sys/socket.h>

#define URL_MAX 2047 /* store_push_sub.endpoint holds 2048 bytes with the NUL */

int push_url_parse(const char *url, bool allow_http, struct push_url *out)
{
    memset(out, 0, sizeof(*out));
    if (url == NULL || strlen(url) > URL_MAX)
        return -EINVAL;
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *port = NULL, *user = NULL, *pass = NULL;
    int rc = -EINVAL;
    if (u == NULL || curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK)
        goto out;
    if (curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK ||
        curl_url_get(u, CURLUPART_PASSWORD, &pass, 0) == CURLUE_OK)
        goto out; /* credentials in an endpoint: refuse */
    out->https = strcasecmp(scheme, "https") == 0;
    if (!out->https && strcasecmp(scheme, "http") != 0)
        goto out;
    if (!out->https && !allow_http) {
        rc = -EPROTONOSUPPORT;
        goto out;
    }
    size_t hl = strlen(host);
    const char *h = host;
    if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']') { /* IPv6 literal */
        h = host + 1;
        hl -= 2;
    }
    if (hl == 0 || hl >= sizeof(out->host) || strlen(port) >= sizeof(out->port))
        goto out;
    memcpy(out->host, h, hl);
    out->host[hl] = '\0';
    snprintf(out->port, sizeof(out->port), "%s", port);
    bool default_port = strcmp(port, out->https ? "443" : "80") == 0;
    int n = snprintf(out->origin, sizeof(out->origin), "%s://%s%s%s", out->https ? "https" : "http",
                     host, default_port ? "" : ":", default_port ? "" : port);
    if (n < 0 || (size_t)n >= sizeof(out->origin))
        goto out;
    rc = 0;
out:
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_free(user);
    curl_free(pass);
    curl_url_cleanup(u);
    return rc;
}

struct range {
    uint8_t prefix[16];
    unsigned bits;
};

static bool in_range(const uint8_t *a, const struct range *r)
{
    unsigned full = r->bits / 8, rem = r->bits % 8;
    if (memcmp(a, r->prefix, full) != 0)
        return false;
    if (rem == 0)
        return true;
    uint8_t mask = (uint8_t)(0xff << (8 - rem));
    return (a[full] & mask) == (r->prefix[full] & mask);
}

static bool v4_public(const uint8_t a[4])
{
    static const struct range blocked[] = {
        { { 0 }, 8 },             /* 0.0.0.0/8 "this network" */
        { { 10 }, 8 },            /* RFC 1918 */
        { { 100, 64 }, 10 },      /* CGNAT, RFC 6598 */
        { { 127 }, 8 },           /* loopback */
        { { 169, 254 }, 16 },     /* link-local */
        { { 172, 16 }, 12 },      /* RFC 1918 */
        { { 192, 0, 0 }, 24 },    /* IETF protocol assignments */
        { { 192, 0, 2 }, 24 },    /* TEST-NET-1 */
        { { 192, 88, 99 }, 24 },  /* 6to4 relay anycast */
        { { 192, 168 }, 16 },     /* RFC 1918 */
        { { 198, 18 }, 15 },      /* benchmarking */
        { { 198, 51, 100 }, 24 }, /* TEST-NET-2 */
        { { 203, 0, 113 }, 24 },  /* TEST-NET-3 */
        { { 224 }, 4 },           /* multicast */
        { { 240 }, 4 },           /* reserved, broadcast */
    };
    for (size_t i = 0; i < sizeof(blocked) / sizeof(blocked[0]); i++) {
        if (in_range(a, &blocked[i]))
            return false;
    }
    return true;
}

static bool v6_public(const uint8_t a[16])
{
    static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
    static const uint8_t nat64[12] = { 0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0 };
    if (memcmp(a, mapped, 12) == 0 || memcmp(a, nat64, 12) == 0)
        return v4_public(a + 12);
    static const struct range blocked[] = {
        { { 0 }, 96 }, /* ::/96: unspecified, loopback, IPv4-compatible */
        { { 0x00, 0x64, 0xff, 0x9b, 0x00, 0x01 }, 48 }, /* local-use NAT64 (RFC 8215) */
        { { 0x01, 0x00 }, 64 },                         /* discard-only 100::/64 */
        { { 0x20, 0x01, 0x0d, 0xb8 }, 32 },             /* documentation */
        { { 0x20, 0x02 }, 16 },                         /* 6to4: embeds an IPv4 address */
        { { 0xfc }, 7 },                                /* unique local */
        { { 0xfe, 0x80 }, 10 },                         /* link-local */
        { { 0xfe, 0xc0 }, 10 },                         /* site-local (deprecated) */
        { { 0xff }, 8 },                                /* multicast */
    };
    for (size_t i = 0; i < sizeof(blocked) / sizeof(blocked[0]); i++) {
        if (in_range(a, &blocked[i]))
            return false;
    }
    return true;
}

bool push_addr_public(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return v4_public((const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr);
    if (sa->sa_family == AF_INET6)
        return v6_public(((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr);
    return false;
}
