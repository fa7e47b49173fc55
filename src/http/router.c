/* router.c: method + path pattern -> handler. Patterns are compiled into segments once; a
 * request is split into segments and compared against every route (the table is small: one
 * entry per REST endpoint). Literal segments beat parameters, which beat a final "{name*}". */
#define LOG_MODULE "http"

#include <errno.h>
#include <string.h>

#include "core/mem.h"
#include "http/http_int.h"

void http__router_init(struct http__router *r)
{
    r->head = NULL;
    r->tail = NULL;
}

static void route_free(struct http__route *rt)
{
    for (size_t i = 0; i < rt->n_segs; i++) {
        mem_free(rt->segs[i].lit);
        mem_free(rt->segs[i].name);
    }
    mem_free(rt->segs);
    mem_free(rt->pattern);
    mem_free(rt);
}

void http__router_cleanup(struct http__router *r)
{
    struct http__route *rt = r->head;
    while (rt) {
        struct http__route *next = rt->next;
        route_free(rt);
        rt = next;
    }
    r->head = NULL;
    r->tail = NULL;
}

static bool name_char_ok(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
}

/* Compiles one segment text [s, s+len) into seg. last says whether it is the final segment. */
static int seg_compile(struct http__seg *seg, const char *s, size_t len, bool last)
{
    if (len > 0 && s[0] == '{') {
        if (len < 3 || s[len - 1] != '}')
            return -EINVAL;
        size_t nlen = len - 2;
        const char *name = s + 1;
        if (name[nlen - 1] == '*') {
            if (!last || nlen < 2)
                return -EINVAL;
            seg->rest = true;
            nlen--;
        }
        for (size_t i = 0; i < nlen; i++) {
            if (!name_char_ok(name[i]))
                return -EINVAL;
        }
        seg->name = mem_strndup(name, nlen);
        return 0;
    }
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '{' || s[i] == '}' || s[i] == '%' || s[i] == '?')
            return -EINVAL;
    }
    seg->lit = mem_strndup(s, len);
    return 0;
}

static int route_compile(struct http__route *rt, const char *pattern)
{
    if (pattern[0] != '/')
        return -EINVAL;
    size_t n = 1;
    for (const char *p = pattern + 1; *p; p++)
        n += *p == '/';
    if (n > HTTP__MAX_SEGMENTS)
        return -EINVAL;
    rt->segs = mem_calloc(n, sizeof(*rt->segs));
    rt->n_segs = n;
    size_t n_params = 0;
    const char *s = pattern + 1;
    for (size_t i = 0; i < n; i++) {
        const char *e = strchr(s, '/');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        int rc = seg_compile(&rt->segs[i], s, len, i + 1 == n);
        if (rc < 0)
            return rc;
        if (rt->segs[i].name) {
            n_params++;
            for (size_t j = 0; j < i; j++) {
                if (rt->segs[j].name && !strcmp(rt->segs[j].name, rt->segs[i].name))
                    return -EINVAL;
            }
        }
        s = e ? e + 1 : s + len;
    }
    return n_params > HTTP__MAX_PARAMS ? -EINVAL : 0;
}

/* Same shape: same literals at the same places, parameters at the same places. */
static bool route_same_shape(const struct http__route *a, const struct http__route *b)
{
    if (a->n_segs != b->n_segs)
        return false;
    for (size_t i = 0; i < a->n_segs; i++) {
        const struct http__seg *x = &a->segs[i], *y = &b->segs[i];
        if (!!x->lit != !!y->lit || x->rest != y->rest)
            return false;
        if (x->lit && strcmp(x->lit, y->lit))
            return false;
    }
    return true;
}

int http__router_add(struct http__router *r, enum http_method m, const char *pattern,
                     http_handler_cb *cb, void *data)
{
    if (!pattern || !cb || (unsigned)m >= (unsigned)HTTP_OTHER)
        return -EINVAL;
    struct http__route *rt = mem_calloc(1, sizeof(*rt));
    rt->method = m;
    rt->cb = cb;
    rt->data = data;
    rt->pattern = mem_strdup(pattern);
    int rc = route_compile(rt, pattern);
    if (rc < 0) {
        route_free(rt);
        return rc;
    }
    for (struct http__route *o = r->head; o; o = o->next) {
        if (o->method == m && route_same_shape(o, rt)) {
            route_free(rt);
            return -EEXIST;
        }
    }
    if (r->tail)
        r->tail->next = rt;
    else
        r->head = rt;
    r->tail = rt;
    return 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int http__pct_decode(char *out, const char *in, size_t len, bool plus_space)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        char c = in[i];
        if (c == '%') {
            if (i + 2 >= len)
                return -EINVAL;
            int hi = hexval(in[i + 1]), lo = hexval(in[i + 2]);
            if (hi < 0 || lo < 0)
                return -EINVAL;
            c = (char)(hi << 4 | lo);
            if (c == '\0')
                return -EINVAL;
            i += 2;
        } else if (c == '+' && plus_space) {
            c = ' ';
        } else if (c == '\0') {
            return -EINVAL;
        }
        out[o++] = c;
    }
    out[o] = '\0';
    return (int)o;
}

char *http__query_get(const char *query, const char *name)
{
    if (!query || !name)
        return NULL;
    size_t nlen = strlen(name);
    const char *p = query;
    while (*p) {
        const char *amp = strchr(p, '&');
        size_t len = amp ? (size_t)(amp - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        size_t klen = eq ? (size_t)(eq - p) : len;
        char *key = mem_alloc(klen + 1);
        int rc = http__pct_decode(key, p, klen, true);
        bool hit = rc >= 0 && (size_t)rc == nlen && !memcmp(key, name, nlen);
        mem_free(key);
        if (hit) {
            size_t vlen = eq ? len - klen - 1 : 0;
            char *val = mem_alloc(vlen + 1);
            if (http__pct_decode(val, eq ? eq + 1 : "", vlen, true) < 0) {
                mem_free(val);
                return NULL;
            }
            return val;
        }
        p = amp ? amp + 1 : p + len;
    }
    return NULL;
}

/* Splits path into segments (pointers into a private copy). */
struct split {
    char *copy;
    size_t n;
    char *segs[HTTP__MAX_SEGMENTS + 1];
};

static int split_path(struct split *sp, const char *path, bool decoded)
{
    sp->copy = NULL;
    sp->n = 0;
    if (!path || path[0] != '/')
        return -EINVAL;
    sp->copy = mem_strdup(path + 1);
    char *s = sp->copy;
    for (;;) {
        if (sp->n == HTTP__MAX_SEGMENTS)
            return -EINVAL;
        char *e = strchr(s, '/');
        if (e)
            *e = '\0';
        if (!decoded && http__pct_decode(s, s, strlen(s), false) < 0)
            return -EINVAL;
        sp->segs[sp->n++] = s;
        if (!e)
            break;
        s = e + 1;
    }
    return 0;
}

/* Matches route rt against the split path; 0 or -ENOENT. Fills match when given. */
static int route_try(const struct http__route *rt, const struct split *sp,
                     struct http__match *match)
{
    size_t i;
    for (i = 0; i < rt->n_segs; i++) {
        const struct http__seg *sg = &rt->segs[i];
        if (i >= sp->n)
            return -ENOENT;
        if (sg->lit) {
            if (strcmp(sg->lit, sp->segs[i]))
                return -ENOENT;
            continue;
        }
        if (!sp->segs[i][0])
            return -ENOENT;
        if (sg->rest) {
            for (size_t j = i; j < sp->n; j++) {
                if (!sp->segs[j][0] && j + 1 < sp->n)
                    return -ENOENT; /* "//" inside the rest */
            }
            if (match) {
                size_t len = 0;
                for (size_t j = i; j < sp->n; j++)
                    len += strlen(sp->segs[j]) + 1;
                char *v = mem_alloc(len);
                v[0] = '\0';
                size_t o = 0;
                for (size_t j = i; j < sp->n; j++) {
                    size_t l = strlen(sp->segs[j]);
                    memcpy(v + o, sp->segs[j], l);
                    o += l;
                    v[o++] = j + 1 < sp->n ? '/' : '\0';
                }
                match->params[match->n_params].name = sg->name;
                match->params[match->n_params++].value = v;
            }
            return 0;
        }
        if (match) {
            match->params[match->n_params].name = sg->name;
            match->params[match->n_params++].value = mem_strdup(sp->segs[i]);
        }
    }
    return i == sp->n ? 0 : -ENOENT;
}

/* Negative when a is more specific than b (literal > param > rest, leftmost first). */
static int route_cmp(const struct http__route *a, const struct http__route *b)
{
    size_t n = a->n_segs < b->n_segs ? a->n_segs : b->n_segs;
    for (size_t i = 0; i < n; i++) {
        int ka = a->segs[i].lit ? 2 : a->segs[i].rest ? 0 : 1;
        int kb = b->segs[i].lit ? 2 : b->segs[i].rest ? 0 : 1;
        if (ka != kb)
            return kb - ka;
    }
    return 0;
}

static const struct http__route *best_for(const struct http__router *r, enum http_method m,
                                          const struct split *sp, unsigned *allow)
{
    const struct http__route *best = NULL;
    for (const struct http__route *rt = r->head; rt; rt = rt->next) {
        if (route_try(rt, sp, NULL) < 0)
            continue;
        *allow |= HTTP__BIT(rt->method);
        if (rt->method != m)
            continue;
        if (!best || route_cmp(rt, best) < 0)
            best = rt;
    }
    return best;
}

int http__router_match(const struct http__router *r, enum http_method m, const char *path,
                       bool decoded, struct http__match *out, unsigned *allow)
{
    struct split sp;
    memset(out, 0, sizeof(*out));
    *allow = 0;
    int rc = split_path(&sp, path, decoded);
    if (rc < 0) {
        mem_free(sp.copy);
        return rc;
    }
    const struct http__route *best = best_for(r, m, &sp, allow);
    if (!best && m == HTTP_HEAD)
        best = best_for(r, HTTP_GET, &sp, allow);
    if (best) {
        out->route = best;
        route_try(best, &sp, out);
        rc = 0;
    } else {
        rc = *allow ? -EPERM : -ENOENT;
    }
    mem_free(sp.copy);
    return rc;
}

void http__match_cleanup(struct http__match *match)
{
    for (size_t i = 0; i < match->n_params; i++)
        mem_free(match->params[i].value);
    match->n_params = 0;
    match->route = NULL;
}

const char *http__match_param(const struct http__match *match, const char *name)
{
    if (!name)
        return NULL;
    for (size_t i = 0; i < match->n_params; i++) {
        if (!strcmp(match->params[i].name, name))
            return match->params[i].value;
    }
    return NULL;
}
