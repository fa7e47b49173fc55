/* auto.c: which unseen events become pushes, and the notification they become (contract §4.4,
 * §4.5). Privacy by default: without push.include_body the push service and the lock screen see
 * the sender and a generic text, never the message. */
#include "push/push.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "core/b64.h"
#include "core/mem.h"
#include "core/rnd.h"
#include "xmpp/stanza.h"

#define NS_DELAY     "urn:xmpp:delay"
#define NS_REFERENCE "urn:xmpp:reference:0"
#define NS_CARBONS   "urn:xmpp:carbons:2"
#define BODY_MAX     1000 /* bytes of a message body shown in a notification */
#define STANZA_MAX   (256 * 1024)

/* A Topic per conversation, keyed with a per-process secret so the push service cannot map
 * topics back to JIDs. 16 bytes of HMAC-SHA-256 -> 22 base64url characters. */
static void make_topic(const char *user, const char *peer, char *topic)
{
    static uint8_t key[32];
    static bool have_key;
    if (!have_key) {
        rnd_bytes(key, sizeof(key));
        have_key = true;
    }
    char in[2 * PUSH_PEER_MAX + 2];
    int n = snprintf(in, sizeof(in), "%s\n%s", user, peer);
    uint8_t mac[32];
    unsigned int ml = sizeof(mac);
    HMAC(EVP_sha256(), key, sizeof(key), (const uint8_t *)in, n > 0 ? (size_t)n : 0, mac, &ml);
    char *t = b64_encode(mac, 16, B64_URL, NULL);
    snprintf(topic, PUSH_TOPIC_MAX + 1, "%s", t);
    mem_free(t);
}

/* The bare JID of jid into out; the local part alone when the domain is ours. */
static void label_of(const char *jid, const char *domain, char *bare, size_t bl, char *label,
                     size_t ll)
{
    size_t n = strcspn(jid, "/");
    snprintf(bare, bl, "%.*s", (int)n, jid);
    const char *at = memchr(bare, '@', strlen(bare));
    if (at != NULL && strcasecmp(at + 1, domain) == 0)
        snprintf(label, ll, "%.*s", (int)(at - bare), bare);
    else
        snprintf(label, ll, "%s", bare);
}

/* text cut to at most BODY_MAX bytes on a UTF-8 boundary, with an ellipsis when cut. */
static json_t *short_text(const char *text)
{
    size_t n = strlen(text);
    if (n <= BODY_MAX)
        return json_string(text);
    size_t cut = BODY_MAX;
    while (cut > 0 && ((unsigned char)text[cut] & 0xc0) == 0x80)
        cut--;
    char *s = mem_alloc(cut + 4);
    memcpy(s, text, cut);
    memcpy(s + cut, "\xe2\x80\xa6", 4); /* U+2026 and the NUL */
    json_t *j = json_string(s);
    mem_free(s);
    return j;
}

static json_t *notification(const char *subject, json_t *body, const char *data, bool reply)
{
    json_t *n = json_object();
    json_object_set_new(n, "subject", json_string(subject));
    json_object_set_new(n, "body", body);
    json_object_set_new(n, "requireInteraction", json_false());
    json_object_set_new(n, "persistent", json_false());
    json_object_set_new(n, "sticky", json_false());
    json_object_set_new(n, "data", json_string(data));
    if (reply)
        json_object_set_new(n, "actions",
                            json_pack("[{s:s, s:s, s:s}]", "action", "webpush.message", "type",
                                      "text", "title", "Reply"));
    return n;
}

/* True when word occurs in text as a whole word (ASCII case-insensitive). */
static bool has_word(const char *text, const char *word)
{
    size_t wl = strlen(word);
    if (wl == 0)
        return false;
    for (const char *p = text; (p = strcasestr(p, word)) != NULL; p++) {
        unsigned char before = p == text ? ' ' : (unsigned char)p[-1];
        unsigned char after = (unsigned char)p[wl];
        bool b = !(before >= 0x80 || before == '_' || (before >= '0' && before <= '9') ||
                   ((before | 0x20) >= 'a' && (before | 0x20) <= 'z'));
        bool a = !(after >= 0x80 || after == '_' || (after >= '0' && after <= '9') ||
                   ((after | 0x20) >= 'a' && (after | 0x20) <= 'z'));
        if (b && a)
            return true;
    }
    return false;
}

static bool references_user(const struct xmpp_stanza *st, const struct push_auto_opts *o)
{
    char uri[PUSH_PEER_MAX + 16];
    snprintf(uri, sizeof(uri), "xmpp:%s@%s", o->user, o->domain);
    for (struct xmpp_stanza *c = st ? xmpp_stanza_first_child(st) : NULL; c != NULL;
         c = xmpp_stanza_next(c)) {
        const char *ns = xmpp_stanza_ns(c);
        const char *u = xmpp_stanza_attr(c, "uri");
        if (strcmp(xmpp_stanza_name(c), "reference") == 0 && ns != NULL &&
            strcmp(ns, NS_REFERENCE) == 0 && u != NULL && strcasecmp(u, uri) == 0)
            return true;
    }
    return false;
}

static json_t *chat(json_t *payload, const struct push_auto_opts *o, char *peer, char *topic)
{
    const char *type = json_string_value(json_object_get(payload, "type"));
    const char *body = json_string_value(json_object_get(payload, "body"));
    const char *from = json_string_value(json_object_get(payload, "from"));
    if (type == NULL || body == NULL || *body == '\0' || from == NULL ||
        (strcmp(type, "chat") != 0 && strcmp(type, "normal") != 0))
        return NULL;
    char bare[PUSH_PEER_MAX], label[PUSH_PEER_MAX];
    label_of(from, o->domain, bare, sizeof(bare), label, sizeof(label));
    bool local = strchr(label, '@') == NULL;
    snprintf(peer, PUSH_PEER_MAX, "%s", local ? label : "");
    make_topic(o->user, bare, topic);
    return notification(label, o->include_body ? short_text(body) : json_string("New message"),
                        label, local);
}

static json_t *groupchat(json_t *payload, const struct xmpp_stanza *st,
                         const struct push_auto_opts *o, char *topic)
{
    const char *body = json_string_value(json_object_get(payload, "body"));
    const char *from = json_string_value(json_object_get(payload, "from"));
    if (body == NULL || from == NULL || (!has_word(body, o->user) && !references_user(st, o)))
        return NULL;
    const char *slash = strchr(from, '/');
    char room[PUSH_PEER_MAX], subject[PUSH_PEER_MAX + 64];
    snprintf(room, sizeof(room), "%.*s", (int)(slash ? slash - from : (long)strlen(from)), from);
    snprintf(subject, sizeof(subject), "%s in %.*s", slash ? slash + 1 : "someone",
             (int)strcspn(room, "@"), room);
    make_topic(o->user, room, topic);
    return notification(subject,
                        o->include_body ? short_text(body) : json_string("You were mentioned"),
                        room, false);
}

static json_t *invitation(json_t *payload, const struct push_auto_opts *o, char *topic)
{
    const char *room = json_string_value(json_object_get(payload, "room"));
    const char *inviter = json_string_value(json_object_get(payload, "inviter"));
    const char *reason = json_string_value(json_object_get(payload, "reason"));
    if (room == NULL || strcmp(room, "null") == 0)
        return NULL;
    char bare[PUSH_PEER_MAX], label[PUSH_PEER_MAX], subject[PUSH_PEER_MAX + 32];
    label_of(inviter && strcmp(inviter, "null") != 0 ? inviter : "someone", o->domain, bare,
             sizeof(bare), label, sizeof(label));
    snprintf(subject, sizeof(subject), "Invitation to %.*s", (int)strcspn(room, "@"), room);
    char text[2 * PUSH_PEER_MAX + BODY_MAX + 32];
    if (o->include_body && reason != NULL && *reason && strcmp(reason, "null") != 0)
        snprintf(text, sizeof(text), "%s invites you to %s: %.*s", label, room, BODY_MAX, reason);
    else
        snprintf(text, sizeof(text), "%s invites you to %s", label, room);
    make_topic(o->user, room, topic);
    return notification(subject, json_string(text), room, false);
}

json_t *push_auto_notification(const char *name, json_t *payload, const char *stanza,
                               const struct push_auto_opts *o, char *peer, char *topic)
{
    peer[0] = '\0';
    topic[0] = '\0';
    if (!json_is_object(payload))
        return NULL;
    struct xmpp_stanza *st = NULL;
    if (stanza != NULL) {
        int err = 0;
        st = xmpp_stanza_parse(stanza, strlen(stanza), XMPP_NS_CLIENT, STANZA_MAX, &err);
    }
    json_t *n = NULL;
    /* history, offline messages flushed at login, and copies of what the user sent elsewhere
     * are never pushed */
    if (st != NULL && (xmpp_stanza_child(st, "delay", NS_DELAY) != NULL ||
                       xmpp_stanza_child(st, "sent", NS_CARBONS) != NULL))
        goto out;
    const char *type = json_string_value(json_object_get(payload, "type"));
    if (strcmp(name, "chatapi.chat") == 0)
        n = chat(payload, o, peer, topic);
    else if (strcmp(name, "chatapi.muc") == 0 && type != NULL && strcmp(type, "groupchat") == 0)
        n = groupchat(payload, st, o, topic);
    else if (strcmp(name, "chatapi.muc") == 0 && type != NULL &&
             strcmp(type, "invitationReceived") == 0)
        n = invitation(payload, o, topic);
out:
    xmpp_stanza_unref(st);
    return n;
}
