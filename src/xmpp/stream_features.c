/* stream_features.c: what the server offered in its stream features after authentication
 * (e.g. XEP-0352 CSI), kept as a short list of names for xmpp_stream_has_feature. */
#include <stdio.h>
#include <string.h>

#include "xmpp/stanza.h"
#include "xmpp/xmpp_int.h"

void xmpp__features_record(struct xmpp_stream *s, const struct xmpp_stanza *features)
{
    size_t used = 0;
    s->features[0] = '\0';
    for (struct xmpp_stanza *c = xmpp_stanza_first_child(features); c; c = xmpp_stanza_next(c)) {
        const char *ns = xmpp_stanza_ns(c) ? xmpp_stanza_ns(c) : "";
        int n = snprintf(s->features + used, sizeof(s->features) - used, "{%s}%s;", ns,
                         xmpp_stanza_name(c));
        if (n < 0 || (size_t)n >= sizeof(s->features) - used)
            s->features[used] = '\0'; /* does not fit: left out */
        else
            used += (size_t)n;
    }
}

bool xmpp_stream_has_feature(const struct xmpp_stream *s, const char *name, const char *ns)
{
    char key[XMPP__FEATURES_MAX];
    int n = snprintf(key, sizeof(key), "{%s}%s;", ns ? ns : "", name);
    return n > 0 && (size_t)n < sizeof(key) && strstr(s->features, key) != NULL;
}
