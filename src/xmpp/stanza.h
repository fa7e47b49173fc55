/* stanza.h: XML element trees for XMPP stanzas: build, query, serialise with correct escaping,
 * and parse a standalone fragment. Trees are reference-counted and read-only once shared
 * (more than one reference): the fan-out to events, SSE and connection-manager clients
 * shares them with xmpp_stanza_ref() instead of copying. Not thread-safe: one thread at a time
 * (the loop). */
#ifndef SPARKGATE_XMPP_STANZA_H
#define SPARKGATE_XMPP_STANZA_H

#include <stdbool.h>
#include <stddef.h>

struct buf;
struct xmpp_stanza;

#define XMPP_NS_CLIENT  "jabber:client"
#define XMPP_NS_STREAMS "http://etherx.jabber.org/streams"
#define XMPP_NS_STANZAS "urn:ietf:params:xml:ns:xmpp-stanzas"
#define XMPP_NS_XML     "http://www.w3.org/XML/1998/namespace"

/* A new element with one reference. ns may be NULL (inherits the parent's when serialised). */
struct xmpp_stanza *xmpp_stanza_new(const char *name, const char *ns);
struct xmpp_stanza *xmpp_stanza_ref(struct xmpp_stanza *st);
/* Drops one reference; frees the tree at zero. NULL is ignored. */
void xmpp_stanza_unref(struct xmpp_stanza *st);

const char *xmpp_stanza_name(const struct xmpp_stanza *st);
/* The element's namespace: its own, else inherited from its parent; NULL when none. */
const char *xmpp_stanza_ns(const struct xmpp_stanza *st);
/* Attribute value or NULL. Names are plain ("type", "id") or "xml:lang". */
const char *xmpp_stanza_attr(const struct xmpp_stanza *st, const char *name);
/* Sets (value != NULL) or removes (value == NULL) an attribute. The stanza must not be shared. */
void xmpp_stanza_set_attr(struct xmpp_stanza *st, const char *name, const char *value);

/* First element child matching name and ns (either may be NULL for "any"); borrowed. */
struct xmpp_stanza *xmpp_stanza_child(const struct xmpp_stanza *st, const char *name,
                                      const char *ns);
/* Element-children iteration (text nodes are skipped); borrowed pointers. */
struct xmpp_stanza *xmpp_stanza_first_child(const struct xmpp_stanza *st);
struct xmpp_stanza *xmpp_stanza_next(const struct xmpp_stanza *st);
struct xmpp_stanza *xmpp_stanza_parent(const struct xmpp_stanza *st);

/* Concatenation of the element's direct text content; caller frees with mem_free.
 * Never NULL ("" when there is none). */
char *xmpp_stanza_text(const struct xmpp_stanza *st);
/* Text of the first child matching name/ns, or NULL when there is no such child. */
char *xmpp_stanza_child_text(const struct xmpp_stanza *st, const char *name, const char *ns);

/* Appends a new element child and returns it (borrowed; owned by the parent). */
struct xmpp_stanza *xmpp_stanza_add_child(struct xmpp_stanza *st, const char *name, const char *ns);
/* Appends an existing tree as a child; takes over the caller's reference to child. */
void xmpp_stanza_adopt_child(struct xmpp_stanza *st, struct xmpp_stanza *child);
/* Appends text (any bytes except NUL; escaped on output). */
void xmpp_stanza_add_text(struct xmpp_stanza *st, const char *text, size_t len);
/* Convenience: adds <name xmlns=ns>text</name> and returns it (borrowed). */
struct xmpp_stanza *xmpp_stanza_add_text_child(struct xmpp_stanza *st, const char *name,
                                               const char *ns, const char *text);
/* A deep copy with one reference (for modifying a shared tree). */
struct xmpp_stanza *xmpp_stanza_copy(const struct xmpp_stanza *st);

/* Appends the XML of st to out: '<', '>', '&' escaped in text, plus '"' and '\'' in attribute
 * values; an xmlns attribute wherever an element's namespace differs from its parent's (always
 * on the top element when it has one). 0 or -ENOBUFS (out's limit). */
int xmpp_stanza_serialize(const struct xmpp_stanza *st, struct buf *out);
/* Same, into a new string (caller frees with mem_free). */
char *xmpp_stanza_to_string(const struct xmpp_stanza *st);
/* A serialisation safe for logs: SASL payloads, <password/> and message bodies are blanked. */
char *xmpp_stanza_redacted(const struct xmpp_stanza *st);

/* Parses one complete XML element (no XML declaration, no DOCTYPE/entities: rejected) of at
 * most max_len bytes. default_ns is the namespace for unprefixed elements without xmlns
 * (e.g. XMPP_NS_CLIENT), may be NULL. Returns the tree, or NULL with *err set (-EINVAL
 * malformed, -EMSGSIZE too large). */
struct xmpp_stanza *xmpp_stanza_parse(const char *xml, size_t len, const char *default_ns,
                                      size_t max_len, int *err);

#endif
