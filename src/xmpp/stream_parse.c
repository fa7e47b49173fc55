/* stream_parse.c: the expat streaming parser of an XMPP stream. It accepts input in chunks of
 * any size, reports the stream header, each complete depth-1 element as a stanza tree, and
 * the closing tag; it bounds each element to max_stanza bytes and supports stream restarts. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
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
    int64_t delta;      /* stream offset = expat byte index + delta (shifts after a wake) */
    char *hdr;          /* the raw stream header, replayed to wake a hibernated parser */
    size_t hdr_len;
    bool priming; /* the replayed header is being parsed: no on_open */
    bool stop;
    bool restart;
    int failed; /* sticky error until reset */
    char why[128];
};

/* Offset in the stream of the current event (the stream counts bytes given to expat since the
 * last reset; a woken parser also saw the replayed header first). */
static int64_t ev_index(const struct xmpp__parser *p)
{
    return (int64_t)XML_GetCurrentByteIndex(p->base.xp) + p->delta;
}

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
    int64_t end = ev_index(p) + XML_GetCurrentByteCount(p->base.xp);
    if (end - p->elem_start > (int64_t)p->max_stanza) {
        pfail(p, -EMSGSIZE, "stanza too large");
        return false;
    }
    return true;
}

/* Keeps the bytes of the stream header being reported (the parser can then be freed between
 * stanzas and woken by replaying them). A header too long to keep disables hibernation. */
static void keep_header(struct xmpp__parser *p)
{
    mem_free(p->hdr);
    p->hdr = NULL;
    p->hdr_len = 0;
    int offset = 0, size = 0;
    const char *buf = XML_GetInputContext(p->base.xp, &offset, &size);
    int count = XML_GetCurrentByteCount(p->base.xp);
    if (buf == NULL || count <= 0 || offset < 0 || count > size - offset ||
        count > XMPP__PARSER_HDR_MAX)
        return;
    p->hdr = mem_alloc((size_t)count);
    memcpy(p->hdr, buf + offset, (size_t)count);
    p->hdr_len = (size_t)count;
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
        p->level = 1;
        if (p->priming)
            return;
        keep_header(p);
        struct xmpp_stanza *hdr = xmpp__stanza_from_expat(name, attrs, NULL);
        p->boundary = ev_index(p) + XML_GetCurrentByteCount(p->base.xp);
        if (p->cbs.on_open)
            p->cbs.on_open(p->data, hdr);
        xmpp_stanza_unref(hdr);
        return;
    }
    if (p->level == 1)
        p->elem_start = ev_index(p);
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
    p->boundary = ev_index(p) + XML_GetCurrentByteCount(p->base.xp);
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
        p->boundary = ev_index(p) + len;
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
    if (p->base.xp != NULL)
        XML_ParserFree(p->base.xp);
    mem_free(p->hdr);
    mem_free(p);
}

void xmpp__parser_reset(struct xmpp__parser *p)
{
    xmpp_stanza_unref(p->root);
    p->root = p->cur = NULL;
    if (p->base.xp == NULL) /* hibernated */
        p->base.xp = XML_ParserCreateNS("UTF-8", XMPP__NS_SEP);
    else
        XML_ParserReset(p->base.xp, "UTF-8");
    if (p->base.xp == NULL)
        abort(); /* out of memory, as mem_alloc does */
    setup(p);
    p->base.err = 0;
    p->base.why = NULL;
    p->level = 0;
    p->fed = p->elem_start = p->boundary = p->delta = 0;
    mem_free(p->hdr);
    p->hdr = NULL;
    p->hdr_len = 0;
    p->priming = false;
    p->stop = p->restart = false;
    p->failed = 0;
    p->why[0] = '\0';
}

void xmpp__parser_stop(struct xmpp__parser *p)
{
    p->stop = true;
    if (p->base.xp != NULL)
        XML_StopParser(p->base.xp, XML_FALSE);
}

void xmpp__parser_restart(struct xmpp__parser *p)
{
    p->restart = true;
    if (p->base.xp != NULL)
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

bool xmpp__parser_hibernate(struct xmpp__parser *p)
{
    if (p->base.xp == NULL)
        return true;
    if (p->failed || p->stop || p->restart || p->base.err != 0 || p->level != 1 ||
        p->root != NULL || p->hdr == NULL || p->fed != p->boundary)
        return false;
    XML_ParserFree(p->base.xp);
    p->base.xp = NULL;
    return true;
}

bool xmpp__parser_hibernating(const struct xmpp__parser *p)
{
    return p->base.xp == NULL;
}

/* A fresh expat parser, primed with the kept stream header so that it resumes at level 1 with
 * the same namespace declarations; the stream offsets carry on from p->fed. */
static int wake(struct xmpp__parser *p)
{
    XML_Parser xp = XML_ParserCreateNS("UTF-8", XMPP__NS_SEP);
    if (xp == NULL)
        return fail_sticky(p, -ENOMEM, "out of memory");
    p->base.xp = xp;
    setup(p);
    p->level = 0;
    p->priming = true;
    enum XML_Status s = XML_Parse(xp, p->hdr, (int)p->hdr_len, XML_FALSE);
    p->priming = false;
    if (s != XML_STATUS_OK || p->base.err != 0 || p->level != 1)
        return fail_sticky(p, -EPROTO, "stream header replay failed");
    p->delta = p->fed - (int64_t)p->hdr_len;
    return 0;
}

int xmpp__parser_feed(struct xmpp__parser *p, const char *data, size_t len)
{
    if (p->failed)
        return p->failed;
    if (p->base.xp == NULL && len > 0) {
        int rc = wake(p);
        if (rc < 0)
            return rc;
    }
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
