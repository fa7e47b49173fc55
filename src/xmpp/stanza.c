/* stanza.c: reference-counted XML element trees: build, query, serialise, parse a fragment. */
#include "xmpp/stanza.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>

#include <expat.h>

#include "core/buf.h"
#include "core/mem.h"
#include "xmpp/xmpp_int.h"

struct xmpp_attr {
    char *name;
    char *value;
};

struct xmpp_stanza {
    int refs;
    bool is_text;
    char *name; /* element name, or the text of a text node */
    size_t text_len;
    size_t text_cap;
    char *ns; /* own namespace or NULL (inherit) */
    struct xmpp_attr *attrs;
    size_t n_attrs;
    size_t cap_attrs;
    struct xmpp_stanza *parent;
    struct xmpp_stanza *first;
    struct xmpp_stanza *last;
    struct xmpp_stanza *next_sib;
};

#define SASL2_NS     "urn:xmpp:sasl:2"
#define FAST_NS      "urn:xmpp:fast:0"
#define XMLNS_NS     "http://www.w3.org/2000/xmlns/"
#define REDACTED     "[redacted]"
#define TO_STR_LIMIT ((size_t)1 << 30)

struct xmpp_stanza *xmpp_stanza_new(const char *name, const char *ns)
{
    struct xmpp_stanza *st = mem_calloc(1, sizeof(*st));
    st->refs = 1;
    st->name = mem_strdup(name);
    st->ns = ns ? mem_strdup(ns) : NULL;
    return st;
}

struct xmpp_stanza *xmpp_stanza_ref(struct xmpp_stanza *st)
{
    st->refs++;
    return st;
}

void xmpp_stanza_unref(struct xmpp_stanza *st)
{
    if (st == NULL || --st->refs > 0)
        return;
    struct xmpp_stanza *c = st->first;
    while (c != NULL) {
        struct xmpp_stanza *n = c->next_sib;
        c->parent = NULL;
        c->next_sib = NULL;
        xmpp_stanza_unref(c);
        c = n;
    }
    for (size_t i = 0; i < st->n_attrs; i++) {
        mem_free(st->attrs[i].name);
        mem_free(st->attrs[i].value);
    }
    mem_free(st->attrs);
    mem_free(st->name);
    mem_free(st->ns);
    mem_free(st);
}

const char *xmpp_stanza_name(const struct xmpp_stanza *st)
{
    return st->name;
}

const char *xmpp_stanza_ns(const struct xmpp_stanza *st)
{
    for (; st != NULL; st = st->parent) {
        if (st->ns != NULL)
            return st->ns;
    }
    return NULL;
}

const char *xmpp_stanza_attr(const struct xmpp_stanza *st, const char *name)
{
    for (size_t i = 0; i < st->n_attrs; i++) {
        if (strcmp(st->attrs[i].name, name) == 0)
            return st->attrs[i].value;
    }
    return NULL;
}

static void attr_append(struct xmpp_stanza *st, char *name, char *value)
{
    if (st->n_attrs == st->cap_attrs) {
        st->cap_attrs = st->cap_attrs ? st->cap_attrs * 2 : 4;
        st->attrs = mem_realloc(st->attrs, st->cap_attrs * sizeof(*st->attrs));
    }
    st->attrs[st->n_attrs].name = name;
    st->attrs[st->n_attrs].value = value;
    st->n_attrs++;
}

void xmpp_stanza_set_attr(struct xmpp_stanza *st, const char *name, const char *value)
{
    for (size_t i = 0; i < st->n_attrs; i++) {
        if (strcmp(st->attrs[i].name, name) != 0)
            continue;
        mem_free(st->attrs[i].value);
        if (value != NULL) {
            st->attrs[i].value = mem_strdup(value);
            return;
        }
        mem_free(st->attrs[i].name);
        memmove(&st->attrs[i], &st->attrs[i + 1], (st->n_attrs - i - 1) * sizeof(*st->attrs));
        st->n_attrs--;
        return;
    }
    if (value != NULL)
        attr_append(st, mem_strdup(name), mem_strdup(value));
}

static struct xmpp_stanza *next_element(struct xmpp_stanza *c)
{
    while (c != NULL && c->is_text)
        c = c->next_sib;
    return c;
}

struct xmpp_stanza *xmpp_stanza_first_child(const struct xmpp_stanza *st)
{
    return next_element(st->first);
}

struct xmpp_stanza *xmpp_stanza_next(const struct xmpp_stanza *st)
{
    return next_element(st->next_sib);
}

struct xmpp_stanza *xmpp_stanza_parent(const struct xmpp_stanza *st)
{
    return st->parent;
}

struct xmpp_stanza *xmpp_stanza_child(const struct xmpp_stanza *st, const char *name,
                                      const char *ns)
{
    for (struct xmpp_stanza *c = xmpp_stanza_first_child(st); c; c = xmpp_stanza_next(c)) {
        if (name != NULL && strcmp(c->name, name) != 0)
            continue;
        if (ns != NULL) {
            const char *cns = xmpp_stanza_ns(c);
            if (cns == NULL || strcmp(cns, ns) != 0)
                continue;
        }
        return c;
    }
    return NULL;
}

char *xmpp_stanza_text(const struct xmpp_stanza *st)
{
    size_t total = 0;
    for (struct xmpp_stanza *c = st->first; c; c = c->next_sib) {
        if (c->is_text)
            total += c->text_len;
    }
    char *r = mem_alloc(total + 1);
    size_t o = 0;
    for (struct xmpp_stanza *c = st->first; c; c = c->next_sib) {
        if (c->is_text) {
            memcpy(r + o, c->name, c->text_len);
            o += c->text_len;
        }
    }
    r[o] = '\0';
    return r;
}

char *xmpp_stanza_child_text(const struct xmpp_stanza *st, const char *name, const char *ns)
{
    struct xmpp_stanza *c = xmpp_stanza_child(st, name, ns);
    return c ? xmpp_stanza_text(c) : NULL;
}

static void link_child(struct xmpp_stanza *st, struct xmpp_stanza *child)
{
    child->parent = st;
    child->next_sib = NULL;
    if (st->last)
        st->last->next_sib = child;
    else
        st->first = child;
    st->last = child;
}

struct xmpp_stanza *xmpp_stanza_add_child(struct xmpp_stanza *st, const char *name, const char *ns)
{
    struct xmpp_stanza *c = xmpp_stanza_new(name, ns);
    link_child(st, c);
    return c;
}

void xmpp_stanza_adopt_child(struct xmpp_stanza *st, struct xmpp_stanza *child)
{
    link_child(st, child);
}

void xmpp_stanza_add_text(struct xmpp_stanza *st, const char *text, size_t len)
{
    struct xmpp_stanza *t = st->last;
    if (t == NULL || !t->is_text) {
        t = mem_calloc(1, sizeof(*t));
        t->refs = 1;
        t->is_text = true;
        link_child(st, t);
    }
    if (t->text_len + len + 1 > t->text_cap) {
        size_t cap = t->text_cap ? t->text_cap : 16;
        while (cap < t->text_len + len + 1)
            cap *= 2;
        t->name = mem_realloc(t->name, cap);
        t->text_cap = cap;
    }
    memcpy(t->name + t->text_len, text, len);
    t->text_len += len;
    t->name[t->text_len] = '\0';
}

struct xmpp_stanza *xmpp_stanza_add_text_child(struct xmpp_stanza *st, const char *name,
                                               const char *ns, const char *text)
{
    struct xmpp_stanza *c = xmpp_stanza_add_child(st, name, ns);
    if (text != NULL && text[0] != '\0')
        xmpp_stanza_add_text(c, text, strlen(text));
    return c;
}

static struct xmpp_stanza *copy_rec(const struct xmpp_stanza *st, const char *ns)
{
    struct xmpp_stanza *r = xmpp_stanza_new(st->name, ns);
    for (size_t i = 0; i < st->n_attrs; i++)
        attr_append(r, mem_strdup(st->attrs[i].name), mem_strdup(st->attrs[i].value));
    for (struct xmpp_stanza *c = st->first; c; c = c->next_sib) {
        if (c->is_text)
            xmpp_stanza_add_text(r, c->name, c->text_len);
        else
            link_child(r, copy_rec(c, c->ns));
    }
    return r;
}

struct xmpp_stanza *xmpp_stanza_copy(const struct xmpp_stanza *st)
{
    /* the copy is a root: it keeps the inherited namespace explicitly */
    return copy_rec(st, xmpp_stanza_ns(st));
}

/* --- serialisation --- */

/* Appends s[0..len) escaped; invalid UTF-8 and characters XML 1.0 cannot carry become U+FFFD so
 * the output always parses. */
static int escape(struct buf *out, const char *s, size_t len, bool attr)
{
    size_t run = 0, i = 0;
    int rc = 0;
    while (i < len && rc == 0) {
        unsigned char c = (unsigned char)s[i];
        const char *rep = NULL;
        size_t n = 1;
        if (c < 0x80) {
            switch (c) {
            case '&':
                rep = "&amp;";
                break;
            case '<':
                rep = "&lt;";
                break;
            case '>':
                rep = "&gt;";
                break;
            case '\r':
                rep = "&#13;";
                break;
            case '"':
                rep = attr ? "&quot;" : NULL;
                break;
            case '\'':
                rep = attr ? "&apos;" : NULL;
                break;
            case '\n':
                rep = attr ? "&#10;" : NULL;
                break;
            case '\t':
                rep = attr ? "&#9;" : NULL;
                break;
            default:
                rep = (c < 0x20 || c == 0x7f) ? "\xef\xbf\xbd" : NULL;
                break;
            }
        } else {
            n = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
            if (n > len - i || xmpp__utf8_valid_prefix(s + i, n) != n) {
                rep = "\xef\xbf\xbd";
                n = 1;
            } else if (n == 3 && c == 0xef && (unsigned char)s[i + 1] == 0xbf &&
                       (unsigned char)s[i + 2] >= 0xbe) {
                rep = "\xef\xbf\xbd"; /* U+FFFE, U+FFFF */
            }
        }
        if (rep == NULL) {
            i += n;
            continue;
        }
        if (i > run)
            rc = buf_append(out, s + run, i - run);
        if (rc == 0)
            rc = buf_appends(out, rep);
        i += n;
        run = i;
    }
    if (rc == 0 && i > run)
        rc = buf_append(out, s + run, i - run);
    return rc;
}

static bool redact_element(const struct xmpp_stanza *st, const char *ns)
{
    const char *n = st->name;
    if (ns != NULL && strcmp(ns, XMPP__NS_SASL) == 0)
        return strcmp(n, "auth") == 0 || strcmp(n, "response") == 0 ||
               strcmp(n, "challenge") == 0 || strcmp(n, "success") == 0;
    if (ns != NULL && strcmp(ns, SASL2_NS) == 0)
        return true;
    if (strcmp(n, "password") == 0)
        return true;
    if (st->parent != NULL && strcmp(st->parent->name, "message") == 0)
        return strcmp(n, "body") == 0 || strcmp(n, "html") == 0;
    return false;
}

/* XEP-0484 carries the FAST token in an attribute: <token xmlns='urn:xmpp:fast:0' token=.../> */
static bool redact_attr(const struct xmpp_stanza *st, const char *ns, const char *name)
{
    return ns != NULL && strcmp(ns, FAST_NS) == 0 && strcmp(st->name, "token") == 0 &&
           strcmp(name, "token") == 0;
}

static int ser_attrs(const struct xmpp_stanza *st, const char *ns, bool redact_on, struct buf *out)
{
    int rc = 0;
    unsigned pfx = 0;
    for (size_t i = 0; i < st->n_attrs && rc == 0; i++) {
        const char *name = st->attrs[i].name;
        if (strcmp(name, "xmlns") == 0)
            continue;
        const char *sep = strchr(name, XMPP__NS_SEP);
        if (sep != NULL) { /* foreign-namespace attribute: declare a prefix for it */
            rc = buf_appendf(out, " xmlns:ns%u='", pfx);
            if (rc == 0)
                rc = escape(out, name, (size_t)(sep - name), true);
            if (rc == 0)
                rc = buf_appendf(out, "' ns%u:%s='", pfx++, sep + 1);
        } else {
            rc = buf_appendf(out, " %s='", name);
        }
        if (rc == 0 && redact_on && redact_attr(st, ns, name))
            rc = buf_appends(out, REDACTED);
        else if (rc == 0)
            rc = escape(out, st->attrs[i].value, strlen(st->attrs[i].value), true);
        if (rc == 0)
            rc = buf_append(out, "'", 1);
    }
    return rc;
}

static int ser(const struct xmpp_stanza *st, const char *parent_ns, bool top, bool redact_on,
               bool redacting, struct buf *out)
{
    const char *ns = st->ns ? st->ns : parent_ns;
    if (top)
        ns = xmpp_stanza_ns(st);
    int rc = buf_appendf(out, "<%s", st->name);
    if (rc == 0 && ns != NULL && (top || (parent_ns == NULL || strcmp(ns, parent_ns) != 0))) {
        rc = buf_appends(out, " xmlns='");
        if (rc == 0)
            rc = escape(out, ns, strlen(ns), true);
        if (rc == 0)
            rc = buf_append(out, "'", 1);
    }
    if (rc == 0)
        rc = ser_attrs(st, ns, redact_on, out);
    if (rc < 0)
        return rc;
    if (st->first == NULL)
        return buf_appends(out, "/>");
    if (redact_on && !redacting)
        redacting = redact_element(st, ns);
    rc = buf_append(out, ">", 1);
    for (struct xmpp_stanza *c = st->first; c != NULL && rc == 0; c = c->next_sib) {
        if (!c->is_text)
            rc = ser(c, ns, false, redact_on, redacting, out);
        else if (redacting)
            rc = c->text_len ? buf_appends(out, REDACTED) : 0;
        else
            rc = escape(out, c->name, c->text_len, false);
    }
    if (rc == 0)
        rc = buf_appendf(out, "</%s>", st->name);
    return rc;
}

int xmpp_stanza_serialize(const struct xmpp_stanza *st, struct buf *out)
{
    size_t old = out->len;
    int rc = ser(st, NULL, true, false, false, out);
    if (rc < 0 && out->ptr != NULL) { /* leave the contents unchanged, as buf_* does */
        out->len = old;
        out->ptr[old] = '\0';
    }
    return rc;
}

char *xmpp_stanza_to_string(const struct xmpp_stanza *st)
{
    struct buf b;
    buf_init(&b, TO_STR_LIMIT);
    if (ser(st, NULL, true, false, false, &b) < 0)
        buf_reset(&b);
    return buf_steal(&b);
}

char *xmpp_stanza_redacted(const struct xmpp_stanza *st)
{
    struct buf b;
    buf_init(&b, TO_STR_LIMIT);
    if (ser(st, NULL, true, true, false, &b) < 0)
        buf_reset(&b);
    return buf_steal(&b);
}

/* --- parsing --- */

struct xmpp_stanza *xmpp__stanza_from_expat(const char *name, const char **attrs,
                                            const char *default_ns)
{
    const char *sep = strchr(name, XMPP__NS_SEP);
    /* elements in the reserved xml/xmlns namespaces cannot be written back out */
    if (sep != NULL && (strncmp(name, XMPP_NS_XML "\x01", strlen(XMPP_NS_XML) + 1) == 0 ||
                        strncmp(name, XMLNS_NS "\x01", strlen(XMLNS_NS) + 1) == 0))
        return NULL;
    struct xmpp_stanza *st = mem_calloc(1, sizeof(*st));
    st->refs = 1;
    if (sep != NULL) {
        st->ns = mem_strndup(name, (size_t)(sep - name));
        st->name = mem_strdup(sep + 1);
    } else {
        st->ns = default_ns ? mem_strdup(default_ns) : NULL;
        st->name = mem_strdup(name);
    }
    for (size_t i = 0; attrs[i] != NULL && attrs[i + 1] != NULL; i += 2) {
        const char *an = attrs[i];
        const char *asep = strchr(an, XMPP__NS_SEP);
        char *aname;
        if (asep != NULL && (size_t)(asep - an) == strlen(XMPP_NS_XML) &&
            memcmp(an, XMPP_NS_XML, strlen(XMPP_NS_XML)) == 0) {
            size_t ll = strlen(asep + 1);
            aname = mem_alloc(ll + 5);
            memcpy(aname, "xml:", 4);
            memcpy(aname + 4, asep + 1, ll + 1);
        } else {
            aname = mem_strdup(an);
        }
        attr_append(st, aname, mem_strdup(attrs[i + 1]));
    }
    return st;
}

struct frag {
    struct xmpp__xp_base base; /* first: the restriction handlers use it */
    const char *default_ns;
    struct xmpp_stanza *root;
    struct xmpp_stanza *cur;
    int depth;
};

static void xp_fail(void *ud, int err, const char *why)
{
    struct xmpp__xp_base *b = ud;
    if (b->err == 0) {
        b->err = err;
        b->why = why;
    }
    XML_StopParser(b->xp, XML_FALSE);
}

static void XMLCALL frag_start(void *ud, const char *name, const char **attrs)
{
    struct frag *f = ud;
    if (f->base.err != 0)
        return;
    if (f->root != NULL && f->cur == NULL) {
        xp_fail(f, -EINVAL, "multiple roots");
        return;
    }
    if (++f->depth > XMPP__MAX_DEPTH) {
        xp_fail(f, -EINVAL, "too deep");
        return;
    }
    struct xmpp_stanza *st = xmpp__stanza_from_expat(name, attrs, f->default_ns);
    if (st == NULL) {
        xp_fail(f, -EINVAL, "reserved namespace");
        return;
    }
    if (f->cur != NULL) {
        link_child(f->cur, st);
    } else {
        f->root = st;
    }
    f->cur = st;
}

static void XMLCALL frag_end(void *ud, const char *name)
{
    (void)name;
    struct frag *f = ud;
    if (f->base.err != 0)
        return;
    f->depth--;
    f->cur = f->cur ? f->cur->parent : NULL;
}

static void XMLCALL frag_text(void *ud, const char *s, int len)
{
    struct frag *f = ud;
    if (f->base.err != 0)
        return;
    if (f->cur != NULL)
        xmpp_stanza_add_text(f->cur, s, (size_t)len);
}

static void XMLCALL frag_doctype(void *ud, const char *name, const char *sysid, const char *pubid,
                                 int has_internal_subset)
{
    (void)name, (void)sysid, (void)pubid, (void)has_internal_subset;
    xp_fail(ud, -EINVAL, "doctype");
}

static void XMLCALL frag_entity(void *ud, const char *name, int is_param, const char *value,
                                int value_len, const char *base, const char *sysid,
                                const char *pubid, const char *notation)
{
    (void)name, (void)is_param, (void)value, (void)value_len, (void)base, (void)sysid;
    (void)pubid, (void)notation;
    xp_fail(ud, -EINVAL, "entity declaration");
}

static void XMLCALL frag_xmldecl(void *ud, const char *version, const char *encoding,
                                 int standalone)
{
    (void)version, (void)encoding, (void)standalone;
    xp_fail(ud, -EINVAL, "xml declaration");
}

static void XMLCALL frag_pi(void *ud, const char *target, const char *data)
{
    (void)target, (void)data;
    xp_fail(ud, -EINVAL, "processing instruction");
}

static void XMLCALL frag_comment(void *ud, const char *data)
{
    (void)data;
    xp_fail(ud, -EINVAL, "comment");
}

void xmpp__expat_restrict(XML_Parser xp, bool allow_xmldecl)
{
    XML_SetStartDoctypeDeclHandler(xp, frag_doctype);
    XML_SetEntityDeclHandler(xp, frag_entity);
    if (!allow_xmldecl)
        XML_SetXmlDeclHandler(xp, frag_xmldecl);
    XML_SetProcessingInstructionHandler(xp, frag_pi);
    XML_SetCommentHandler(xp, frag_comment);
    XML_SetParamEntityParsing(xp, XML_PARAM_ENTITY_PARSING_NEVER);
}

struct xmpp_stanza *xmpp_stanza_parse(const char *xml, size_t len, const char *default_ns,
                                      size_t max_len, int *err)
{
    int dummy;
    if (err == NULL)
        err = &dummy;
    *err = 0;
    if (len > max_len || len > INT_MAX) {
        *err = -EMSGSIZE;
        return NULL;
    }
    struct frag f = { .default_ns = default_ns };
    XML_Parser xp = XML_ParserCreateNS("UTF-8", XMPP__NS_SEP);
    if (xp == NULL) {
        *err = -ENOMEM;
        return NULL;
    }
    f.base.xp = xp;
    XML_SetUserData(xp, &f);
    XML_SetElementHandler(xp, frag_start, frag_end);
    XML_SetCharacterDataHandler(xp, frag_text);
    xmpp__expat_restrict(xp, false);
    enum XML_Status s = XML_Parse(xp, xml, (int)len, XML_TRUE);
    XML_ParserFree(xp);
    if (s != XML_STATUS_OK || f.base.err != 0 || f.root == NULL || f.cur != NULL) {
        *err = f.base.err ? f.base.err : -EINVAL;
        xmpp_stanza_unref(f.root);
        return NULL;
    }
    return f.root;
}
