/* jid.h: XMPP addresses (RFC 7622): parse, validate, compare, bare form. Validation covers
 * lengths (each part 1..1023 bytes), forbidden characters in the local part
 * ("&'/:<>@ and spaces, controls), valid UTF-8 and a plausible domain part; full PRECIS
 * (Unicode normalisation) is not applied. Any thread. */
#ifndef SPARKGATE_XMPP_JID_H
#define SPARKGATE_XMPP_JID_H

#include <stdbool.h>
#include <stddef.h>

/* A parsed JID; owns its strings (free with xmpp_jid_cleanup). Absent parts are NULL. */
struct xmpp_jid {
    char *local;
    char *domain;
    char *resource;
};

/* 0, or -EINVAL for a malformed address (out is then zeroed and needs no cleanup). */
int xmpp_jid_parse(struct xmpp_jid *out, const char *s);
void xmpp_jid_cleanup(struct xmpp_jid *jid);
/* "local@domain" or "domain"; caller frees with mem_free. */
char *xmpp_jid_bare(const struct xmpp_jid *jid);
/* "local@domain/resource" with absent parts left out; caller frees with mem_free. */
char *xmpp_jid_full(const struct xmpp_jid *jid);
/* The bare JID of a JID string, or NULL when malformed; caller frees with mem_free. */
char *xmpp_jid_bare_of(const char *s);
/* True when s is a valid local part (username) by the rules above. */
bool xmpp_jid_local_valid(const char *s);
/* Compares two JID strings by bare part, case-insensitively for domain and (ASCII) local. */
bool xmpp_jid_bare_equal(const char *a, const char *b);

#endif
