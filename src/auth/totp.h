/* totp.h: RFC 6238 one-time passwords (HMAC-SHA-1, 30 s steps, 6 digits, the parameters every
 * authenticator app uses) through liboath, the otpauth:// enrolment URI, and a QR code of it
 * rendered as SVG here (libqrencode gives the module matrix; the SVG writer is ours), so no
 * secret ever goes to a third-party chart service. Pure functions, any thread. */
#ifndef SPARKGATE_AUTH_TOTP_H
#define SPARKGATE_AUTH_TOTP_H

#include <stddef.h>
#include <stdint.h>

#define TOTP_STEP_S       30
#define TOTP_DIGITS       6
#define TOTP_SECRET_BYTES 20 /* 160 bits, RFC 4226 §4 recommendation */

/* Writes a new random secret as unpadded RFC 4648 base32 (32 characters) into b32.
 * 0, -ENOBUFS when len is too small (needs 33). */
int totp_secret_new(char *b32, size_t len);

/* The RFC 6238 time step of now_s (floor(now / 30)). */
int64_t totp_step(int64_t now_s);

/* The code for a step, NUL-terminated in code. 0, -EINVAL for a bad secret. */
int totp_code(const char *secret_b32, int64_t step, char code[TOTP_DIGITS + 1]);

/* Checks code against the steps now-window .. now+window. Every candidate is computed and
 * compared in constant time, whatever matches. 0 with the matching step in *step; -EACCES when
 * none matches; -EINVAL when code is not exactly 6 ASCII digits or the secret is bad. */
int totp_verify(const char *secret_b32, const char *code, int64_t now_s, unsigned window,
                int64_t *step);

/* otpauth://totp/<issuer>:<account>?secret=..&issuer=..&algorithm=SHA1&digits=6&period=30 with
 * issuer and account percent-encoded (Key Uri Format). Caller frees with mem_free. */
char *totp_uri(const char *issuer, const char *account, const char *secret_b32);

/* An SVG document (UTF-8, viewBox in modules, 4-module quiet zone, error correction M) showing
 * text as a QR code. Caller frees with mem_free. NULL when text is too long for a QR code. */
char *totp_qr_svg(const char *text);

#endif
