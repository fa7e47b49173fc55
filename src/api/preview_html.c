/* preview_html.c: the small, tolerant HTML scanner behind link previews (K10). One pass over
 * the bytes, no tree and no allocation per tag: comments, <script>, <style> and other raw-text
 * elements are skipped; <title>, <meta property|name=... content=...> and <img src> are read;
 * every captured value is bounded, has its common character references decoded, its white space
 * collapsed and is returned as valid UTF-8 (bytes that are not UTF-8 are read as Latin-1). */
#include "api/api_int.h"

#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "core/buf.h"
#include "core/mem.h"

#define VALUE_MAX 2048 /* bytes of one attribute or title kept before decoding */
#define TEXT_MAX  1024 /* bytes of a decoded title or description */
#define URL_MAX   2048

enum slot {
    S_OG_TITLE,
    S_TW_TITLE,
    S_TITLE,
    S_OG_DESC,
    S_TW_DESC,
    S_DESC,
    S_OG_IMAGE,
    S_TW_IMAGE,
    S_IMG,
    S_COUNT,
};

struct scan {
    const char *p, *end;
    char *v[S_COUNT];
    bool want_img;
};

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f';
}

/* True when [p, end) starts with s, ASCII case-insensitively. */
static bool starts_ci(const char *p, const char *end, const char *s)
{
    size_t n = strlen(s);
    return (size_t)(end - p) >= n && strncasecmp(p, s, n) == 0;
}

/* The position of s (case-insensitive) at or after p, or end. */
static const char *find_ci(const char *p, const char *end, const char *s)
{
    size_t n = strlen(s);
    for (; (size_t)(end - p) >= n; p++) {
        if (strncasecmp(p, s, n) == 0)
            return p;
    }
    return end;
}

static void put_utf8(struct buf *b, uint32_t cp)
{
    char o[4];
    size_t n;
    if (cp < 0x80) {
        o[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        o[0] = (char)(0xF0 | (cp >> 18));
        o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    buf_append(b, o, n);
}

/* Length of a valid UTF-8 sequence at s (at most n bytes), 0 when invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    if (s[0] < 0x80)
        return 1;
    size_t len;
    uint32_t cp;
    if ((s[0] & 0xE0) == 0xC0) {
        len = 2;
        cp = s[0] & 0x1F;
    } else if ((s[0] & 0xF0) == 0xE0) {
        len = 3;
        cp = s[0] & 0x0F;
    } else if ((s[0] & 0xF8) == 0xF0) {
        len = 4;
        cp = s[0] & 0x07;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return len;
}

static const struct {
    const char *name;
    uint32_t cp;
} entities[] = {
    { "amp", '&' },       { "lt", '<' },       { "gt", '>' },       { "quot", '"' },
    { "apos", '\'' },     { "nbsp", 0xA0 },    { "copy", 0xA9 },    { "reg", 0xAE },
    { "hellip", 0x2026 }, { "mdash", 0x2014 }, { "ndash", 0x2013 }, { "lsquo", 0x2018 },
    { "rsquo", 0x2019 },  { "ldquo", 0x201C }, { "rdquo", 0x201D }, { "middot", 0xB7 },
    { "laquo", 0xAB },    { "raquo", 0xBB },   { "euro", 0x20AC },  { "trade", 0x2122 },
    { "bull", 0x2022 },   { "deg", 0xB0 },     { "times", 0xD7 },   { "szlig", 0xDF },
    { "agrave", 0xE0 },   { "aacute", 0xE1 },  { "acirc", 0xE2 },   { "auml", 0xE4 },
    { "ccedil", 0xE7 },   { "egrave", 0xE8 },  { "eacute", 0xE9 },  { "ecirc", 0xEA },
    { "euml", 0xEB },     { "iacute", 0xED },  { "icirc", 0xEE },   { "iuml", 0xEF },
    { "ntilde", 0xF1 },   { "oacute", 0xF3 },  { "ocirc", 0xF4 },   { "ouml", 0xF6 },
    { "uacute", 0xFA },   { "ugrave", 0xF9 },  { "ucirc", 0xFB },   { "uuml", 0xFC },
    { "Agrave", 0xC0 },   { "Aacute", 0xC1 },  { "Auml", 0xC4 },    { "Ccedil", 0xC7 },
    { "Egrave", 0xC8 },   { "Eacute", 0xC9 },  { "Ouml", 0xD6 },    { "Uuml", 0xDC },
};

/* Decodes a character reference at s ('&' at s[0], n bytes available). Returns the bytes
 * consumed (0: not a reference, the '&' is literal) and the code point in *cp. */
static size_t entity(const char *s, size_t n, uint32_t *cp)
{
    if (n < 3)
        return 0;
    if (s[1] == '#') {
        size_t i = 2;
        bool hex = i < n && (s[i] == 'x' || s[i] == 'X');
        if (hex)
            i++;
        uint32_t v = 0;
        size_t digits = 0;
        for (; i < n && digits < 8; i++, digits++) {
            char c = s[i];
            int d;
            if (c >= '0' && c <= '9')
                d = c - '0';
            else if (hex && c >= 'a' && c <= 'f')
                d = c - 'a' + 10;
            else if (hex && c >= 'A' && c <= 'F')
                d = c - 'A' + 10;
            else
                break;
            v = v * (hex ? 16 : 10) + (uint32_t)d;
        }
        if (digits == 0)
            return 0;
        if (i < n && s[i] == ';')
            i++;
        if (v == 0 || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
            v = 0xFFFD;
        *cp = v;
        return i;
    }
    for (size_t k = 0; k < sizeof(entities) / sizeof(entities[0]); k++) {
        size_t l = strlen(entities[k].name);
        if (n >= l + 2 && memcmp(s + 1, entities[k].name, l) == 0 && s[l + 1] == ';') {
            *cp = entities[k].cp;
            return l + 2;
        }
    }
    return 0;
}

/* The cleaned value of raw text: references decoded, control characters dropped, white space
 * collapsed and trimmed, cut at max bytes on a character boundary. NULL when empty. */
static char *clean(const char *s, size_t n, size_t max)
{
    struct buf b;
    buf_init(&b, max + 8);
    bool space = false;
    for (size_t i = 0; i < n && b.len < max;) {
        unsigned char c = (unsigned char)s[i];
        uint32_t cp;
        size_t used;
        if (c == '&' && (used = entity(s + i, n - i, &cp)) > 0) {
            i += used;
        } else if (c < 0x80) {
            cp = c;
            i++;
        } else if ((used = utf8_len((const unsigned char *)s + i, n - i)) > 0) {
            cp = 0;
            for (size_t k = 0; k < used; k++) /* decode to filter; re-encode below */
                cp = k == 0 ? (uint32_t)(c & (used == 2   ? 0x1F
                                              : used == 3 ? 0x0F
                                                          : 0x07))
                            : (cp << 6) | ((unsigned char)s[i + k] & 0x3F);
            i += used;
        } else {
            cp = c; /* Latin-1 */
            i++;
        }
        if (cp == ' ' || cp == '\t' || cp == '\n' || cp == '\r' || cp == '\f' || cp == 0xA0) {
            space = b.len > 0;
            continue;
        }
        if (cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp < 0xA0) || cp == 0xFFFE || cp == 0xFFFF)
            continue;
        if (space)
            buf_append(&b, " ", 1);
        space = false;
        put_utf8(&b, cp);
    }
    if (b.len == 0) {
        buf_cleanup(&b);
        return NULL;
    }
    return buf_steal(&b);
}

static void set_slot(struct scan *sc, enum slot k, const char *s, size_t n, size_t max)
{
    if (sc->v[k] != NULL || n == 0)
        return;
    sc->v[k] = clean(s, n > VALUE_MAX ? VALUE_MAX : n, max);
}

/* One attribute of a tag; name/value point into the page. */
struct attr {
    const char *name, *value;
    size_t name_len, value_len;
};

/* Reads the next attribute at sc->p (inside a tag). false at the tag's end ('>' consumed) or
 * the input's. */
static bool next_attr(struct scan *sc, struct attr *a)
{
    const char *p = sc->p, *end = sc->end;
    while (p < end && (is_space(*p) || *p == '/'))
        p++;
    if (p >= end || *p == '>') {
        sc->p = p < end ? p + 1 : end;
        return false;
    }
    a->name = p;
    while (p < end && !is_space(*p) && *p != '=' && *p != '>' && *p != '/')
        p++;
    if (p == a->name) /* a stray character such as '=': skip it */
        p++;
    a->name_len = (size_t)(p - a->name);
    a->value = "";
    a->value_len = 0;
    const char *q = p;
    while (q < end && is_space(*q))
        q++;
    if (q < end && *q == '=') {
        q++;
        while (q < end && is_space(*q))
            q++;
        if (q < end && (*q == '"' || *q == '\'')) {
            char quote = *q++;
            const char *v = q;
            while (q < end && *q != quote)
                q++;
            a->value = v;
            a->value_len = (size_t)(q - v);
            if (q < end)
                q++;
        } else {
            const char *v = q;
            while (q < end && !is_space(*q) && *q != '>')
                q++;
            a->value = v;
            a->value_len = (size_t)(q - v);
        }
        p = q;
    }
    sc->p = p;
    return true;
}

static bool attr_is(const struct attr *a, const char *name)
{
    return a->name_len == strlen(name) && strncasecmp(a->name, name, a->name_len) == 0;
}

static bool value_is(const char *v, size_t n, const char *s)
{
    return n == strlen(s) && strncasecmp(v, s, n) == 0;
}

static void read_meta(struct scan *sc)
{
    struct attr a;
    const char *key = NULL, *content = NULL;
    size_t key_len = 0, content_len = 0;
    while (next_attr(sc, &a)) {
        if ((attr_is(&a, "property") || attr_is(&a, "name") || attr_is(&a, "itemprop")) &&
            key == NULL) {
            key = a.value;
            key_len = a.value_len;
        } else if (attr_is(&a, "content")) {
            content = a.value;
            content_len = a.value_len;
        }
    }
    if (key == NULL || content == NULL)
        return;

    static const struct {
        const char *key;
        enum slot slot;
        size_t max;
    } map[] = {
        { "og:title", S_OG_TITLE, TEXT_MAX },      { "twitter:title", S_TW_TITLE, TEXT_MAX },
        { "og:description", S_OG_DESC, TEXT_MAX }, { "twitter:description", S_TW_DESC, TEXT_MAX },
        { "description", S_DESC, TEXT_MAX },       { "og:image", S_OG_IMAGE, URL_MAX },
        { "og:image:url", S_OG_IMAGE, URL_MAX },   { "og:image:secure_url", S_OG_IMAGE, URL_MAX },
        { "twitter:image", S_TW_IMAGE, URL_MAX },  { "twitter:image:src", S_TW_IMAGE, URL_MAX },
    };

    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        if (value_is(key, key_len, map[i].key)) {
            set_slot(sc, map[i].slot, content, content_len, map[i].max);
            return;
        }
    }
}

static void read_img(struct scan *sc)
{
    struct attr a;
    while (next_attr(sc, &a)) {
        if (attr_is(&a, "src") && sc->want_img)
            set_slot(sc, S_IMG, a.value, a.value_len, URL_MAX);
    }
}

/* Skips the rest of a tag (attributes included, quotes respected). */
static void skip_tag(struct scan *sc)
{
    struct attr a;
    while (next_attr(sc, &a))
        ;
}

/* At '<': handles one markup construct and advances sc->p past it. */
static void markup(struct scan *sc)
{
    const char *p = sc->p + 1, *end = sc->end;
    if (starts_ci(p, end, "!--")) {
        const char *e = find_ci(p + 3, end, "-->");
        sc->p = e < end ? e + 3 : end;
        return;
    }
    if (p < end && (*p == '!' || *p == '?')) { /* doctype, processing instruction */
        const char *e = memchr(p, '>', (size_t)(end - p));
        sc->p = e ? e + 1 : end;
        return;
    }
    bool closing = p < end && *p == '/';
    if (closing)
        p++;
    const char *name = p;
    while (p < end && ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                       (*p >= '0' && *p <= '9') || *p == '-' || *p == ':'))
        p++;
    size_t nl = (size_t)(p - name);
    if (nl == 0) { /* a lone '<' in text */
        sc->p = sc->p + 1;
        return;
    }
    sc->p = p;
    if (closing) {
        skip_tag(sc);
        return;
    }
    if (value_is(name, nl, "meta")) {
        read_meta(sc);
    } else if (value_is(name, nl, "img")) {
        read_img(sc);
    } else if (value_is(name, nl, "title") || value_is(name, nl, "script") ||
               value_is(name, nl, "style") || value_is(name, nl, "textarea") ||
               value_is(name, nl, "noscript") || value_is(name, nl, "template")) {
        bool is_title = value_is(name, nl, "title");
        skip_tag(sc);
        char close[16] = "</";
        memcpy(close + 2, name, nl); /* nl <= 8 here */
        close[2 + nl] = '\0';
        const char *e = find_ci(sc->p, end, close);
        if (is_title)
            set_slot(sc, S_TITLE, sc->p, (size_t)(e - sc->p), TEXT_MAX);
        sc->p = e;
    } else {
        skip_tag(sc);
    }
}

void api__html_meta(const char *html, size_t len, bool want_img, struct api_html_meta *out)
{
    struct scan sc = { .p = html, .end = html + len, .want_img = want_img };
    while (sc.p < sc.end) {
        const char *lt = memchr(sc.p, '<', (size_t)(sc.end - sc.p));
        if (lt == NULL)
            break;
        sc.p = lt;
        markup(&sc);
    }

    static const enum slot title[] = { S_OG_TITLE, S_TW_TITLE, S_TITLE };

    static const enum slot desc[] = { S_OG_DESC, S_TW_DESC, S_DESC };

    static const enum slot image[] = { S_OG_IMAGE, S_TW_IMAGE, S_IMG };

    char **dst[3] = { &out->title, &out->description, &out->image };

    const enum slot *order[3] = { title, desc, image };

    for (int f = 0; f < 3; f++) {
        *dst[f] = NULL;
        for (int i = 0; i < 3 && *dst[f] == NULL; i++) {
            *dst[f] = sc.v[order[f][i]];
            sc.v[order[f][i]] = NULL;
        }
    }
    for (int k = 0; k < S_COUNT; k++)
        mem_free(sc.v[k]);
}

void api__html_meta_cleanup(struct api_html_meta *m)
{
    mem_free(m->title);
    mem_free(m->description);
    mem_free(m->image);
    m->title = m->description = m->image = NULL;
}
