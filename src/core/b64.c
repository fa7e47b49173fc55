/* b64.c: base64 and base64url, table driven, strict on decode. */
#include "core/b64.h"

#include <errno.h>

#include "core/mem.h"

static const char std_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

char *b64_encode(const void *data, size_t len, enum b64_variant v, size_t *outlen)
{
    const uint8_t *in = data;
    const char *a = v == B64_URL ? url_alphabet : std_alphabet;
    char *out = mem_alloc((len + 2) / 3 * 4 + 1);
    size_t o = 0;
    size_t i = 0;
    for (; i + 3 <= len; i += 3) {
        uint32_t n = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = a[n >> 18 & 63];
        out[o++] = a[n >> 12 & 63];
        out[o++] = a[n >> 6 & 63];
        out[o++] = a[n & 63];
    }
    size_t rest = len - i;
    if (rest > 0) {
        uint32_t n = (uint32_t)in[i] << 16 | (rest == 2 ? (uint32_t)in[i + 1] << 8 : 0);
        out[o++] = a[n >> 18 & 63];
        out[o++] = a[n >> 12 & 63];
        if (rest == 2)
            out[o++] = a[n >> 6 & 63];
        if (v == B64_STD) {
            if (rest == 1)
                out[o++] = '=';
            out[o++] = '=';
        }
    }
    out[o] = '\0';
    if (outlen)
        *outlen = o;
    return out;
}

static int b64_value(char c, enum b64_variant v)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (v == B64_STD && c == '+')
        return 62;
    if (v == B64_STD && c == '/')
        return 63;
    if (v == B64_URL && c == '-')
        return 62;
    if (v == B64_URL && c == '_')
        return 63;
    return -1;
}

int b64_decode(const char *in, size_t len, enum b64_variant v, uint8_t **out, size_t *outlen)
{
    size_t pad = 0;
    while (len > 0 && in[len - 1] == '=' && pad < 2) {
        len--;
        pad++;
    }
    if (v == B64_STD && (len + pad) % 4 != 0)
        return -EINVAL;
    if (v == B64_URL && pad > 0 && (len + pad) % 4 != 0)
        return -EINVAL;
    if (len % 4 == 1)
        return -EINVAL;
    uint8_t *buf = mem_alloc(len / 4 * 3 + 3);
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        int val = b64_value(in[i], v);
        if (val < 0) {
            mem_free(buf);
            return -EINVAL;
        }
        acc = acc << 6 | (uint32_t)val;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            buf[o++] = (uint8_t)(acc >> bits);
        }
    }
    /* leftover bits must be zero (canonical encoding) */
    if (bits > 0 && (acc & ((1u << bits) - 1)) != 0) {
        mem_free(buf);
        return -EINVAL;
    }
    buf[o] = 0;
    *out = buf;
    *outlen = o;
    return 0;
}
