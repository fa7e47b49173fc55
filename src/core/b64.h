/* b64.h: base64 (RFC 4648 §4) and base64url (§5) encoding and strict decoding.
 * Any thread. */
#ifndef SPARKGATE_CORE_B64_H
#define SPARKGATE_CORE_B64_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum b64_variant {
    B64_STD, /* + / with = padding */
    B64_URL, /* - _ without padding */
};

/* Returns a NUL-terminated encoding (free with mem_free); *outlen (optional) gets its length. */
char *b64_encode(const void *data, size_t len, enum b64_variant v, size_t *outlen);

/* Decodes `len` chars of `in`. B64_STD requires correct padding; B64_URL accepts input with
 * or without padding. Whitespace and foreign characters are errors. On success returns 0 and
 * a buffer (free with mem_free; NUL-terminated for convenience) in *out, its size in *outlen.
 * -EINVAL on malformed input. */
int b64_decode(const char *in, size_t len, enum b64_variant v, uint8_t **out, size_t *outlen);

#endif
