/* totp_int.h: internals of totp.c shared with its unit tests only; no other module includes it. */
#ifndef SPARKGATE_AUTH_TOTP_INT_H
#define SPARKGATE_AUTH_TOTP_INT_H

#include <stddef.h>

/* Shortest and longest secret accepted, in decoded bytes (80 bits is what older authenticator
 * enrolments used; 64 bytes is the HMAC-SHA-1 block size), and the longest base32 text read. */
#define TOTP__SECRET_MIN     10
#define TOTP__SECRET_MAX     64
#define TOTP__SECRET_B32_MAX 128

/* Quiet zone around the symbol, in modules (ISO/IEC 18004 asks for 4). */
#define TOTP__QUIET 4

/* Renders a width x width module matrix as the SVG document totp_qr_svg() returns. A module is
 * dark when bit 0 of modules[y * width + x] is set (libqrencode's QRcode->data layout). Caller
 * frees with mem_free. */
char *totp__svg_render(const unsigned char *modules, int width);

#endif
