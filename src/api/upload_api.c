/* upload_api.c: K9 GET /upload/{fileName}/{fileSize}: an HTTP upload slot (XEP-0363) from the
 * server's upload service (discovered with XEP-0030 or configured), answered as
 * {"get","put"} plus "headers" when the slot asks for some (contract §1.4 K9, §6). */
#include "api/api_int.h"
#include "api/xmpp_api.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/mem.h"
#include "session/session.h"
#include "xmpp/stanza.h"

#define LOG_MODULE "api"
#include "core/log.h"

#define NS_UPLOAD     "urn:xmpp:http:upload:0"
#define NS_XDATA      "jabber:x:data"
#define FILE_NAME_MAX 255
#define CTYPE_MAX     255
#define URL_MAX       4096

struct upload {
    char *name;
    char *ctype; /* NULL: none given */
    uint64_t size;
};

static void upload_free(void *p)
{
    struct upload *u = p;
    mem_free(u->name);
    mem_free(u->ctype);
    mem_free(u);
}

/* The service's max-file-size from its disco#info x-data form (XEP-0363 §2), 0 when absent. */
static uint64_t max_file_size(const struct xmpp_stanza *info)
{
    const struct xmpp_stanza *q = info ? xmpp_stanza_first_child(info) : NULL;
    for (const struct xmpp_stanza *x = q ? xmpp_stanza_first_child(q) : NULL; x;
         x = xmpp_stanza_next(x)) {
        const char *ns = xmpp_stanza_ns(x);
        if (strcmp(xmpp_stanza_name(x), "x") != 0 || ns == NULL || strcmp(ns, NS_XDATA) != 0)
            continue;
        bool ours = false;
        uint64_t max = 0;
        for (const struct xmpp_stanza *f = xmpp_stanza_first_child(x); f; f = xmpp_stanza_next(f)) {
            const char *var = xmpp_stanza_attr(f, "var");
            if (var == NULL || strcmp(xmpp_stanza_name(f), "field") != 0)
                continue;
            char *v = xmpp_stanza_child_text(f, "value", NULL);
            if (v == NULL)
                continue;
            if (strcmp(var, "FORM_TYPE") == 0 && strcmp(v, NS_UPLOAD) == 0)
                ours = true;
            else if (strcmp(var, "max-file-size") == 0) {
                char *end;
                unsigned long long n = strtoull(v, &end, 10);
                if (end != v && *end == '\0')
                    max = n;
            }
            mem_free(v);
        }
        if (ours)
            return max;
    }
    return 0;
}

/* Only the headers XEP-0363 §5 allows; the value must be one line. */
static bool header_allowed(const char *name, const char *value)
{
    if (strcasecmp(name, "Authorization") != 0 && strcasecmp(name, "Cookie") != 0 &&
        strcasecmp(name, "Expires") != 0)
        return false;
    return strpbrk(value, "\r\n") == NULL && strlen(value) <= 4096;
}

static bool url_ok(const char *url)
{
    return url != NULL && strlen(url) <= URL_MAX &&
           (strncmp(url, "https://", 8) == 0 || strncmp(url, "http://", 7) == 0) &&
           api__xml_text_valid(url, strlen(url));
}

static void slot_answered(struct http_req *req, struct session *s, const struct xmpp_stanza *reply,
                          void *data)
{
    (void)s;
    struct upload *u = data;
    const char *type = xmpp_stanza_attr(reply, "type");
    if (type != NULL && strcmp(type, "error") == 0) {
        const struct xmpp_stanza *err = xmpp_stanza_child(reply, "error", NULL);
        if (err != NULL && xmpp_stanza_child(err, "file-too-large", NS_UPLOAD) != NULL)
            api__error(req, 413, "file too large for the upload service");
        else
            api__xmpp_error(req, reply);
        upload_free(u);
        return;
    }
    const struct xmpp_stanza *slot = xmpp_stanza_child(reply, "slot", NS_UPLOAD);
    const struct xmpp_stanza *put = slot ? xmpp_stanza_child(slot, "put", NULL) : NULL;
    const struct xmpp_stanza *get = slot ? xmpp_stanza_child(slot, "get", NULL) : NULL;
    const char *put_url = put ? xmpp_stanza_attr(put, "url") : NULL;
    const char *get_url = get ? xmpp_stanza_attr(get, "url") : NULL;
    if (!url_ok(put_url) || !url_ok(get_url)) {
        api__error(req, 502, "upload service sent no usable slot");
        upload_free(u);
        return;
    }
    json_t *out = json_object();
    json_object_set_new(out, "get", json_string(get_url));
    json_object_set_new(out, "put", json_string(put_url));
    json_t *headers = json_object();
    for (const struct xmpp_stanza *h = xmpp_stanza_first_child(put); h; h = xmpp_stanza_next(h)) {
        const char *name = xmpp_stanza_attr(h, "name");
        if (strcmp(xmpp_stanza_name(h), "header") != 0 || name == NULL)
            continue;
        char *value = xmpp_stanza_text(h);
        if (header_allowed(name, value) && api__xml_text_valid(value, strlen(value)))
            json_object_set_new(headers, name, json_string(value));
        mem_free(value);
    }
    if (json_object_size(headers) > 0)
        json_object_set_new(out, "headers", headers);
    else
        json_decref(headers);
    log_debug("upload_slot", "user=%s size=%" PRIu64, session_username(s), u->size);
    upload_free(u);
    http_reply_json(req, 200, out);
}

static void service_found(struct http_req *req, struct session *s, const char *jid,
                          const struct xmpp_stanza *info, void *data)
{
    struct upload *u = data;
    uint64_t max = max_file_size(info);
    if (max > 0 && u->size > max) {
        char text[96];
        snprintf(text, sizeof(text),
                 "file too large (the upload service takes at most %" PRIu64 " bytes)", max);
        api__error(req, 413, text);
        upload_free(u);
        return;
    }
    struct xmpp_stanza *rq;
    struct xmpp_stanza *iq = api__iq_new("get", jid, "request", NS_UPLOAD, &rq);
    char size[24];
    snprintf(size, sizeof(size), "%" PRIu64, u->size);
    xmpp_stanza_set_attr(rq, "filename", u->name);
    xmpp_stanza_set_attr(rq, "size", size);
    if (u->ctype != NULL)
        xmpp_stanza_set_attr(rq, "content-type", u->ctype);
    api__iq(req, s, iq, 0, API_IQ_ERRORS, slot_answered, upload_free, u);
    xmpp_stanza_unref(iq);
}

/* A MIME type token/token with optional parameters: printable ASCII, no control characters. */
static bool ctype_valid(const char *c)
{
    size_t len = strlen(c);
    if (len == 0 || len > CTYPE_MAX || strchr(c, '/') == NULL)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)c[i];
        if (ch < 0x20 || ch > 0x7e)
            return false;
    }
    return true;
}

/* GET /upload/{fileName}/{fileSize}[?contentType=] */
static void handle_upload(struct http_req *req, const char *user, struct session *s,
                          struct api_deps *d)
{
    (void)user;
    const char *name = http_req_param(req, "fileName");
    const char *size_s = http_req_param(req, "fileSize");
    size_t nl = name ? strlen(name) : 0;
    if (nl == 0 || nl > FILE_NAME_MAX || strchr(name, '/') != NULL || strchr(name, '\\') != NULL ||
        strcmp(name, ".") == 0 || strcmp(name, "..") == 0 || !api__xml_text_valid(name, nl)) {
        api__error(req, 400, "invalid file name");
        return;
    }
    char *end = NULL;
    errno = 0;
    unsigned long long size = size_s ? strtoull(size_s, &end, 10) : 0;
    if (size_s == NULL || size_s[0] < '1' || size_s[0] > '9' || *end != '\0' || errno != 0 ||
        size == 0) {
        api__error(req, 400, "invalid file size");
        return;
    }
    const char *ctype = http_req_query(req, "contentType");
    if (ctype == NULL)
        ctype = http_req_query(req, "content-type");
    if (ctype != NULL && ctype[0] != '\0' && !ctype_valid(ctype)) {
        api__error(req, 400, "invalid content type");
        return;
    }
    struct upload *u = mem_calloc(1, sizeof(*u));
    u->name = mem_strdup(name);
    u->size = size;
    u->ctype = ctype && ctype[0] ? mem_strdup(ctype) : NULL;
    session_touch(s);
    api__service(d, req, s, API_SVC_UPLOAD, service_found, upload_free, u);
}

int api__upload_register(struct api_deps *d)
{
    return api__route_user(d, HTTP_GET, API_PREFIX "/upload/{fileName}/{fileSize}", handle_upload,
                           API_NEED_SESSION);
}
