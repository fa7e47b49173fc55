/* api_int.h: helpers shared by the api/ files. */
#ifndef SPARKGATE_API_API_INT_H
#define SPARKGATE_API_API_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "api/api.h"
#include "http/http.h"

#define API_PREFIX      "/sparkweb/api/rest"
#define API_USER_MAX    1024

int api__auth_register(const struct api_deps *d);
int api__chat_register(const struct api_deps *d);
int api__sse_register(const struct api_deps *d);

/* The contract's ServiceException body: message "Exception", resource = the human text,
 * exception derived from the status (IllegalArgumentException for 400, ...). */
void api__error(struct http_req *req, int status, const char *resource);
/* Maps a negative errno from session/ or xmpp/ to a status and error body. */
void api__error_errno(struct http_req *req, int err, const char *what);

/* Authenticates a REST request from its Authorization header (raw token or Bearer). On success
 * returns true with the username in user; otherwise it has replied 401 and returns false. */
bool api__authenticate(const struct api_deps *d, struct http_req *req, char user[API_USER_MAX]);

/* True when s[0..len) is UTF-8 and contains only characters XML 1.0 allows. */
bool api__xml_text_valid(const char *s, size_t len);

#endif
