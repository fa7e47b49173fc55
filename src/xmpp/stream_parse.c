/* stream_parse.c: the expat streaming parser of an XMPP stream. It accepts input in chunks of
 * any size, reports the stream header, each complete depth-1 element as a stanza tree, and
 * the closing tag; it bounds each element to max_stanza bytes and supports stream restarts. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <expat.h>

#include "core/mem.h"
#include "xmpp/stanza.h"
#include "xmpp/xmpp_int.h"

/* Input is handed to expat in slices this big so the size bound is checked while expat is
 * still buffering an unfinished tag. */
#define FEED_SLICE 8192

struct xmpp__parser {
    struct xmpp__xp_base base; /* first: the restriction handlers use it */
    size_t max_stanza;
    struct xmpp__parser_cbs cbs;
    void *data;
    int level;                /* 0 outside the stream, 1 inside, 2+ inside a stanza */
    struct xmpp_stanza *root; /* the depth-1 element being built */
    struct xmpp_stanza *cur;
    int64_t fed;        /* bytes given to expat since the last reset */
    int64_t elem_start; /* offset where the current depth-1 element began */
    int64_t boundary;   /* offset after the last thing fully consumed at level 1 */
    bool stop;
    bool restart;
    int failed; /* sticky error until reset */
    char why[128];
};

static void pfail(struct xmpp__parser *p, int err, const char *why)
{
    if (p->base.err == 0) {
        p->base.err = err;
        p->base.why = why;
    }
    XML_StopParser(p->base.xp, XML_FALSE);
}

/* expat may still report events of the current token after XML_StopParser */
static bool halted(const struct xmpp__parser *p)
{
    return p->base.err != 0 || p->stop || p->restart;
}

static bool check_size(struct xmpp__parser *p)
{
    XML_Parser xp = p->base.xp;
    int64_t end = (int64_t)XML_GetCurrentByteIndex(xp) + XML_GetCurrentByteCount(xp);
    if (end - p->elem_start > (int64_t)p->max_stanza) {
        pfail(p, -EMSGSIZE, "stanza too large");
        return false;
    }
    return true;
}

static void XMLCALL on_start(void *ud, const char *name, const char **attrs)
{
    struct xmpp__parser *p = ud;
    if (halted(p))
        return;
    if (p->level == 0) {
        if (strcmp(name, XMPP_NS_STREAMS "\x01stream") != 0) {
            pfail(p, -EPROTO, "not a stream header");
            return;
        }
        struct xmpp_stanza *hdr = xmpp__stanza_from_expat(name, attrs, NULL);
        p->level = 1;
        p->boundary =
            (int64_t)XML_GetCurrentByteIndex(p->base.xp) + XML_GetCurrentByteCount(p->base.xp);
        if (p->cbs.on_open)
            p->cbs.on_open(p->data, hdr);
        xmpp_stanza_unref(hdr);
        return;
    }
    if (p->level == 1)
        p->elem_start = (int64_t)XML_GetCurrentByteIndex(p->base.xp);
    if (!check_size(p))
        return;
    if (p->level - 1 >= XMPP__MAX_DEPTH) {
        pfail(p, -EPROTO, "elements nested too deep");
        return;
    }
    struct xmpp_stanza *st = xmpp__stanza_from_expat(name, attrs, XMPP_NS_CLIENT);
    if (st == NULL) {
        pfail(p, -EPROTO, "reserved namespace");
        return;
    }
    if (p->level == 1)
        p->root = st;
    else
        xmpp_stanza_adopt_child(p->cur, st);
    p->cur = st;
    p->level++;
}

static void XMLCALL on_end(void *ud, const char *name)
{
    (void)name;
    struct xmpp__parser *p = ud;
    if (halted(p))
        return;
    if (p->level == 1) {
        p->level = 0;
        if (p->cbs.on_close)
            p->cbs.on_close(p->data);
        return;
    }
    if (!check_size(p))
        return;
    p->level--;
    if (p->level > 1) {
        p->cur = xmpp_stanza_parent(p->cur);
        return;
    }
    struct xmpp_stanza *st = p->root;
    p->root = p->cur = NULL;
    p->boundary =
        (int64_t)XML_GetCurrentByteIndex(p->base.xp) + XML_GetCurrentByteCount(p->base.xp);
    if (p->cbs.on_element)
        p->cbs.on_element(p->data, st);
    xmpp_stanza_unref(st);
}

static void XMLCALL on_text(void *ud, const char *s, int len)
{
    struct xmpp__parser *p = ud;
    if (halted(p))
        return;
    if (p->level == 1) { /* whitespace keepalives between stanzas */
        p->boundary = (int64_t)XML_GetCurrentByteIndex(p->base.xp) + len;
        return;
    }
    if (p->level < 2 || !check_size(p))
        return;
    xmpp_stanza_add_text(p->cur, s, (size_t)len);
}

static void setup(struct xmpp__parser *p)
{
    XML_Parser xp = p->base.xp;
    XML_SetUserData(xp, p);
    XML_SetElementHandler(xp, on_start, on_end);
    XML_SetCharacterDataHandler(xp, on_text);
    xmpp__expat_restrict(xp, true);
    /* deliver each stanza as soon as its bytes are in, not when more input arrives */
    XML_SetReparseDeferralEnabled(xp, XML_FALSE);
}

struct xmpp__parser *xmpp__parser_new(size_t max_stanza, const struct xmpp__parser_cbs *cbs,
                                      void *data)
{
    XML_Parser xp = XML_ParserCreateNS("UTF-8", XMPP__NS_SEP);
    if (xp == NULL)
        return NULL;
    struct xmpp__parser *p = mem_calloc(1, sizeof(*p));
    p->base.xp = xp;
    p->max_stanza = max_stanza;
    p->cbs = *cbs;
    p->data = data;
    setup(p);
    return p;
}

void xmpp__parser_free(struct xmpp__parser *p)
{
    if (p == NULL)
        return;
    xmpp_stanza_unref(p->root);
    XML_ParserFree(p->base.xp);
    mem_free(p);
}

void xmpp__parser_reset(struct xmpp__parser *p)
{
    xmpp_stanza_unref(p->root);
    p->root = p->cur = NULL;
    XML_ParserReset(p->base.xp, "UTF-8");
    setup(p);
    p->base.err = 0;
    p->base.why = NULL;
    p->level = 0;
    p->fed = p->elem_start = p->boundary = 0;
    p->stop = p->restart = false;
    p->failed = 0;
    p->why[0] = '\0';
}

void xmpp__parser_stop(struct xmpp__parser *p)
{
    p->stop = true;
    XML_StopParser(p->base.xp, XML_FALSE);
}

void xmpp__parser_restart(struct xmpp__parser *p)
{
    p->restart = true;
    XML_StopParser(p->base.xp, XML_FALSE);
}

const char *xmpp__parser_error(const struct xmpp__parser *p)
{
    return p->why;
}

static int fail_sticky(struct xmpp__parser *p, int rc, const char *why)
{
    p->failed = rc;
    snprintf(p->why, sizeof(p->why), "%s", why);
    return rc;
}

int xmpp__parser_feed(struct xmpp__parser *p, const char *data, size_t len)
{
    if (p->failed)
        return p->failed;
    while (len > 0) {
        size_t n = len < FEED_SLICE ? len : FEED_SLICE;
        enum XML_Status s = XML_Parse(p->base.xp, data, (int)n, XML_FALSE);
        p->fed += (int64_t)n;
        data += n;
        len -= n;
        if (p->restart) {
            xmpp__parser_reset(p);
            return -ECANCELED;
        }
        if (p->stop)
            return fail_sticky(p, -ECANCELED, "stopped");
        if (p->base.err != 0) {
            int rc = p->base.err == -EMSGSIZE ? -EMSGSIZE : -EPROTO;
            return fail_sticky(p, rc, p->base.why ? p->base.why : "restricted xml");
        }
        if (s != XML_STATUS_OK)
            return fail_sticky(p, -EPROTO, XML_ErrorString(XML_GetErrorCode(p->base.xp)));
        /* expat may be buffering an unfinished tag: bound what it holds */
        int64_t from = p->level >= 2 ? p->elem_start : p->boundary;
        if (p->fed - from > (int64_t)p->max_stanza)
            return fail_sticky(p, -EMSGSIZE, "stanza too large");
    }
    return 0;
}
