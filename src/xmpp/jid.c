/* jid.c: RFC 7622 address parsing and comparison (without PRECIS normalisation). */
#include "xmpp/jid.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "core/mem.h"
#include "xmpp/xmpp_int.h"

#define JID_PART_MAX  1023
#define JID_LABEL_MAX 63

size_t xmpp__utf8_valid_prefix(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        unsigned char c = p[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t n;
        uint32_t cp;
        if (c >= 0xc2 && c <= 0xdf) {
            n = 2;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 3;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 4;
            cp = c & 0x07;
        } else {
            return i;
        }
        if (len - i < n)
            return i;
        for (size_t k = 1; k < n; k++) {
            if ((p[i + k] & 0xc0) != 0x80)
                return i;
            cp = (cp << 6) | (p[i + k] & 0x3f);
        }
        /* overlong forms, surrogates and values past U+10FFFF */
        if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10ffff ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return i;
        i += n;
    }
    return i;
}

static bool utf8_ok_no_controls(const char *s, size_t len)
{
    if (xmpp__utf8_valid_prefix(s, len) != len)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f)
            return false;
    }
    return true;
}

static bool local_valid_n(const char *s, size_t len)
{
    if (len == 0 || len > JID_PART_MAX)
        return false;
    if (!utf8_ok_no_controls(s, len))
        return false;
    for (size_t i = 0; i < len; i++) {
        if (strchr("\"&'/:<>@ ", s[i]) != NULL)
            return false;
    }
    return true;
}

static bool domain_valid_n(const char *s, size_t len)
{
    if (len == 0 || len > JID_PART_MAX)
        return false;
    if (s[0] == '[') { /* IPv6 literal */
        if (len < 3 || s[len - 1] != ']')
            return false;
        for (size_t i = 1; i + 1 < len; i++) {
            char c = s[i];
            if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') ||
                  c == ':' || c == '.'))
                return false;
        }
        return true;
    }
    if (!utf8_ok_no_controls(s, len))
        return false;
    size_t label = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '.') {
            if (label == 0)
                return false;
            label = 0;
            continue;
        }
        if (c < 0x80 && !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
                          (c >= 'A' && c <= 'Z') || c == '-' || c == '_'))
            return false;
        if (++label > JID_LABEL_MAX)
            return false;
    }
    return label > 0;
}

static bool resource_valid_n(const char *s, size_t len)
{
    return len > 0 && len <= JID_PART_MAX && utf8_ok_no_controls(s, len);
}

int xmpp_jid_parse(struct xmpp_jid *out, const char *s)
{
    memset(out, 0, sizeof(*out));
    if (s == NULL)
        return -EINVAL;
    size_t total = strlen(s);
    const char *slash = memchr(s, '/', total);
    size_t head = slash ? (size_t)(slash - s) : total;
    const char *at = memchr(s, '@', head);
    const char *dom = at ? at + 1 : s;
    size_t dom_len = head - (size_t)(dom - s);
    /* RFC 7622 §3.2: a trailing label separator is stripped */
    if (dom_len > 1 && dom[dom_len - 1] == '.')
        dom_len--;
    if (at != NULL && !local_valid_n(s, (size_t)(at - s)))
        return -EINVAL;
    if (!domain_valid_n(dom, dom_len))
        return -EINVAL;
    if (slash != NULL && !resource_valid_n(slash + 1, total - head - 1))
        return -EINVAL;
    if (at != NULL)
        out->local = mem_strndup(s, (size_t)(at - s));
    out->domain = mem_strndup(dom, dom_len);
    for (char *p = out->domain; *p; p++) {
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    }
    if (slash != NULL)
        out->resource = mem_strdup(slash + 1);
    return 0;
}

void xmpp_jid_cleanup(struct xmpp_jid *jid)
{
    if (jid == NULL)
        return;
    mem_free(jid->local);
    mem_free(jid->domain);
    mem_free(jid->resource);
    memset(jid, 0, sizeof(*jid));
}

static char *jid_join(const struct xmpp_jid *jid, bool with_resource)
{
    size_t ll = jid->local ? strlen(jid->local) + 1 : 0;
    size_t dl = jid->domain ? strlen(jid->domain) : 0;
    size_t rl = with_resource && jid->resource ? strlen(jid->resource) + 1 : 0;
    char *r = mem_alloc(ll + dl + rl + 1);
    char *p = r;
    if (ll) {
        memcpy(p, jid->local, ll - 1);
        p[ll - 1] = '@';
        p += ll;
    }
    if (dl) {
        memcpy(p, jid->domain, dl);
        p += dl;
    }
    if (rl) {
        *p++ = '/';
        memcpy(p, jid->resource, rl - 1);
        p += rl - 1;
    }
    *p = '\0';
    return r;
}

char *xmpp_jid_bare(const struct xmpp_jid *jid)
{
    return jid_join(jid, false);
}

char *xmpp_jid_full(const struct xmpp_jid *jid)
{
    return jid_join(jid, true);
}

char *xmpp_jid_bare_of(const char *s)
{
    struct xmpp_jid j;
    if (xmpp_jid_parse(&j, s) < 0)
        return NULL;
    char *r = xmpp_jid_bare(&j);
    xmpp_jid_cleanup(&j);
    return r;
}

bool xmpp_jid_local_valid(const char *s)
{
    return s != NULL && local_valid_n(s, strlen(s));
}

bool xmpp_jid_bare_equal(const char *a, const char *b)
{
    struct xmpp_jid ja, jb;
    if (xmpp_jid_parse(&ja, a) < 0)
        return false;
    if (xmpp_jid_parse(&jb, b) < 0) {
        xmpp_jid_cleanup(&ja);
        return false;
    }
    bool eq = strcasecmp(ja.domain, jb.domain) == 0 &&
              ((ja.local == NULL && jb.local == NULL) ||
               (ja.local != NULL && jb.local != NULL && strcasecmp(ja.local, jb.local) == 0));
    xmpp_jid_cleanup(&ja);
    xmpp_jid_cleanup(&jb);
    return eq;
}
