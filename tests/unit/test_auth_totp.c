/* test_auth_totp.c: RFC 6238 vectors, the verify window, malformed input, enrolment URI and
 * the QR code SVG checked module by module against libqrencode's matrix. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <qrencode.h>

#include "auth/totp.h"
#include "auth/totp_int.h"
#include "core/mem.h"

/* "12345678901234567890" (RFC 6238 Appendix B, SHA-1) in base32. */
static const char rfc_secret[] = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

static const struct {
    int64_t time_s;
    const char *totp8; /* the RFC's 8-digit value; ours is its last 6 digits */
} rfc_vectors[] = {
    { 59, "94287082" },         { 1111111109, "07081804" }, { 1111111111, "14050471" },
    { 1234567890, "89005924" }, { 2000000000, "69279037" }, { 20000000000, "65353130" },
};

static void rfc6238_sha1_vectors_give_their_last_six_digits(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(rfc_vectors) / sizeof(rfc_vectors[0]); i++) {
        const char *want = rfc_vectors[i].totp8 + 2;
        int64_t t = rfc_vectors[i].time_s;
        char code[TOTP_DIGITS + 1];
        int rc = totp_code(rfc_secret, totp_step(t), code);
        if (rc != 0 || strcmp(code, want) != 0)
            fail_msg("row %zu (T=%lld): rc=%d code=%s want %s", i, (long long)t, rc, code, want);
        int64_t step = -1;
        rc = totp_verify(rfc_secret, want, t, 0, &step);
        if (rc != 0 || step != t / TOTP_STEP_S)
            fail_msg("row %zu (T=%lld): verify rc=%d step=%lld", i, (long long)t, rc,
                     (long long)step);
    }
}

static void step_is_the_floor_of_time_over_thirty(void **state)
{
    (void)state;
    assert_int_equal(totp_step(0), 0);
    assert_int_equal(totp_step(29), 0);
    assert_int_equal(totp_step(30), 1);
    assert_int_equal(totp_step(59), 1);
    assert_int_equal(totp_step(-1), -1);
    assert_int_equal(totp_step(-30), -1);
    assert_int_equal(totp_step(-31), -2);
}

static void window_one_accepts_neighbours_and_refuses_two_steps_away(void **state)
{
    (void)state;
    const int64_t now = 1111111111;
    const int64_t s0 = totp_step(now);
    for (int d = -2; d <= 2; d++) {
        char code[TOTP_DIGITS + 1];
        assert_int_equal(totp_code(rfc_secret, s0 + d, code), 0);
        int64_t step = -1;
        int rc = totp_verify(rfc_secret, code, now, 1, &step);
        if (d >= -1 && d <= 1) {
            if (rc != 0 || step != s0 + d)
                fail_msg("offset %d: rc=%d step=%lld", d, rc, (long long)step);
        } else if (rc != -EACCES) {
            fail_msg("offset %d: rc=%d, want -EACCES", d, rc);
        }
        /* a window of 0 takes only the current step; 2 takes them all */
        assert_int_equal(totp_verify(rfc_secret, code, now, 0, NULL), d == 0 ? 0 : -EACCES);
        step = -1;
        assert_int_equal(totp_verify(rfc_secret, code, now, 2, &step), 0);
        assert_int_equal(step, s0 + d);
    }
}

static void wrong_code_is_refused_and_step_untouched(void **state)
{
    (void)state;
    char code[TOTP_DIGITS + 1];
    assert_int_equal(totp_code(rfc_secret, totp_step(59), code), 0);
    code[5] = code[5] == '9' ? '0' : (char)(code[5] + 1);
    int64_t step = 42;
    assert_int_equal(totp_verify(rfc_secret, code, 59, 1, &step), -EACCES);
    assert_int_equal(step, 42);
}

static void malformed_codes_are_invalid(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",        "28708",
        "2870820", "28708a",
        "abcdef",  " 28708",
        "28708 ",  "+28708",
        "-28708",  "2870 2",
        "28708\n", "0x1234",
        "287082 ", "\xef\xbc\x92\xef\xbc\x98", /* full-width digits */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = totp_verify(rfc_secret, bad[i], 59, 1, NULL);
        if (rc != -EINVAL)
            fail_msg("row %zu \"%s\": rc=%d, want -EINVAL", i, bad[i], rc);
    }
    assert_int_equal(totp_verify(rfc_secret, NULL, 59, 1, NULL), -EINVAL);
    /* the valid code itself passes, so the rows above fail on form alone */
    assert_int_equal(totp_verify(rfc_secret, "287082", 59, 1, NULL), 0);
}

static void bad_secrets_are_invalid(void **state)
{
    (void)state;
    char long_secret[TOTP__SECRET_B32_MAX + 2];
    memset(long_secret, 'A', sizeof(long_secret) - 1);
    long_secret[sizeof(long_secret) - 1] = '\0';
    const char *const bad[] = {
        "",                 /* no key at all */
        "!!!!!!!!",         /* not base32 */
        "GEZDGNBVGY3TQOJ1", /* '1' is not in the alphabet */
        "ABC",              /* impossible length */
        "GEZDGNBVGY3TQOA",  /* 9 bytes: one short of the minimum */
        long_secret,        /* longer than anything we store */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char code[TOTP_DIGITS + 1];
        int rc = totp_code(bad[i], 1, code);
        if (rc != -EINVAL)
            fail_msg("row %zu: totp_code rc=%d, want -EINVAL", i, rc);
        rc = totp_verify(bad[i], "123456", 59, 1, NULL);
        if (rc != -EINVAL)
            fail_msg("row %zu: totp_verify rc=%d, want -EINVAL", i, rc);
    }
    char code[TOTP_DIGITS + 1];
    assert_int_equal(totp_code(NULL, 1, code), -EINVAL);
    assert_int_equal(totp_verify(NULL, "123456", 59, 1, NULL), -EINVAL);
    /* the bounds: 10 and 64 decoded bytes pass, 65 does not ("A" * n in base32) */
    assert_int_equal(totp_code("GEZDGNBVGY3TQOJQ", 1, code), 0);
    const char b64bytes[] =
        "IFAUCQKBIFAUCQKBIFAUCQKBIFAUCQKBIFAUCQKBIFAUCQKBIFAUCQKBIFAUCQKBIFAUCQKB"
        "IFAUCQKBIFAUCQKBIFAUCQKBIFAUCQI";
    assert_int_equal(totp_code(b64bytes, 1, code), 0);
    assert_int_equal(totp_code("IFAUCQKBIFAUCQKBIFAUCQKBIFAUCQKBIFAUCQKBIFAUCQKBIFAUCQKBIFAUCQKB"
                               "IFAUCQKBIFAUCQKBIFAUCQKBIFAUCQKBIFAUCQKB",
                               1, code),
                     -EINVAL);
    /* liboath ignores case and spaces, as authenticator apps display them */
    char a[TOTP_DIGITS + 1], b[TOTP_DIGITS + 1];
    assert_int_equal(totp_code("gezd gnbv gy3t qojq gezd gnbv gy3t qojq", 7, a), 0);
    assert_int_equal(totp_code(rfc_secret, 7, b), 0);
    assert_string_equal(a, b);
    /* a step before the epoch has no valid time */
    assert_int_equal(totp_code(rfc_secret, -1, code), -EINVAL);
}

static void new_secrets_are_32_base32_chars_and_distinct(void **state)
{
    (void)state;
    char s1[33], s2[33];
    assert_int_equal(totp_secret_new(s1, sizeof(s1)), 0);
    assert_int_equal(totp_secret_new(s2, sizeof(s2)), 0);
    assert_int_equal(strlen(s1), 32);
    assert_int_equal(strlen(s2), 32);
    assert_int_equal(strspn(s1, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"), 32);
    assert_string_not_equal(s1, s2);
    char code[TOTP_DIGITS + 1];
    assert_int_equal(totp_code(s1, totp_step(1700000000), code), 0);
    assert_int_equal(totp_verify(s1, code, 1700000000, 0, NULL), 0);
    char small[32];
    assert_int_equal(totp_secret_new(small, sizeof(small)), -ENOBUFS);
}

static void uri_percent_encodes_issuer_and_account(void **state)
{
    (void)state;
    char *uri = totp_uri("Sparkgate Demo", "alice smith@example.org", "JBSWY3DPEHPK3PXP");
    assert_string_equal(uri, "otpauth://totp/Sparkgate%20Demo:alice%20smith%40example.org"
                             "?secret=JBSWY3DPEHPK3PXP&issuer=Sparkgate%20Demo"
                             "&algorithm=SHA1&digits=6&period=30");
    mem_free(uri);
    uri = totp_uri("A&B:C", "a-b.c_d~e/f?\xc3\xa9", "JBSWY3DPEHPK3PXP");
    assert_string_equal(uri, "otpauth://totp/A%26B%3AC:a-b.c_d~e%2Ff%3F%C3%A9"
                             "?secret=JBSWY3DPEHPK3PXP&issuer=A%26B%3AC"
                             "&algorithm=SHA1&digits=6&period=30");
    mem_free(uri);
    uri = totp_uri(NULL, "bob", "JBSWY3DPEHPK3PXP");
    assert_string_equal(
        uri, "otpauth://totp/bob?secret=JBSWY3DPEHPK3PXP&algorithm=SHA1&digits=6&period=30");
    mem_free(uri);
}

/* Parses the one <path> of svg back into a size x size grid (1 = dark), checking that each run
 * is "M<x> <y>h<n>v1h-<n>z" and that runs on a row are merged (never adjacent). Returns the
 * number of dark modules, or -1 when the path is malformed. */
static long svg_modules(const char *svg, int size, unsigned char *grid)
{
    const char *p = strstr(svg, " d=\"");
    if (p == NULL || strstr(p + 1, "<path") != NULL || strstr(svg, "<path") == NULL)
        return -1;
    p += 4;
    long dark = 0;
    int prev_y = -1, prev_end = -1;
    while (*p == 'M') {
        int x, y, n, n2, used = 0;
        if (sscanf(p, "M%d %dh%dv1h-%dz%n", &x, &y, &n, &n2, &used) != 4 || used == 0)
            return -1;
        if (n <= 0 || n != n2 || x < 0 || y < 0 || x + n > size || y >= size)
            return -1;
        if (y == prev_y && x <= prev_end)
            return -1; /* unmerged or out of order */
        for (int i = 0; i < n; i++)
            grid[(size_t)y * (size_t)size + (size_t)(x + i)] = 1;
        dark += n;
        prev_y = y;
        prev_end = x + n;
        p += used;
    }
    return *p == '"' ? dark : -1;
}

static void qr_svg_shows_exactly_libqrencodes_matrix(void **state)
{
    (void)state;
    char *uri = totp_uri("Sparkgate", "alice@example.org", rfc_secret);
    char *svg = totp_qr_svg(uri);
    assert_non_null(svg);
    QRcode *qr = QRcode_encodeString(uri, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
    assert_non_null(qr);
    int size = qr->width + 2 * TOTP__QUIET;

    const char prefix[] = "<svg xmlns=\"http://www.w3.org/2000/svg\"";
    assert_memory_equal(svg, prefix, strlen(prefix));
    char want[128];
    snprintf(want, sizeof(want), "viewBox=\"0 0 %d %d\"", size, size);
    assert_non_null(strstr(svg, want));
    assert_non_null(strstr(svg, "shape-rendering=\"crispEdges\""));
    snprintf(want, sizeof(want), "<rect width=\"%d\" height=\"%d\" fill=\"#fff\"/>", size, size);
    assert_non_null(strstr(svg, want));
    size_t len = strlen(svg);
    assert_true(len > 7 && strcmp(svg + len - 7, "</svg>\n") == 0);

    unsigned char *grid = mem_calloc((size_t)size * (size_t)size, 1);
    long dark = svg_modules(svg, size, grid);
    assert_true(dark > 0);
    long want_dark = 0;
    for (int y = 0; y < size; y++) {
        for (int x = 0; x < size; x++) {
            int mx = x - TOTP__QUIET, my = y - TOTP__QUIET;
            bool inside = mx >= 0 && my >= 0 && mx < qr->width && my < qr->width;
            int is_dark = inside && (qr->data[(size_t)my * (size_t)qr->width + (size_t)mx] & 1);
            want_dark += is_dark;
            if (grid[(size_t)y * (size_t)size + (size_t)x] != is_dark)
                fail_msg("module (%d,%d): svg %d, qrencode %d", mx, my,
                         grid[(size_t)y * (size_t)size + (size_t)x], is_dark);
        }
    }
    assert_int_equal(dark, want_dark);
    mem_free(grid);
    QRcode_free(qr);
    mem_free(svg);
    mem_free(uri);
}

static void svg_render_merges_runs_of_a_small_matrix(void **state)
{
    (void)state;
    /* 3x3: row 0 "##.", row 1 ".#.", row 2 "#.#"; only bit 0 counts */
    const unsigned char m[9] = { 1, 0x81, 0x80, 0, 3, 0, 1, 0, 1 };
    char *svg = totp__svg_render(m, 3);
    assert_string_equal(svg, "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 11 11\" "
                             "shape-rendering=\"crispEdges\"><rect width=\"11\" height=\"11\" "
                             "fill=\"#fff\"/><path fill=\"#000\" d=\"M4 4h2v1h-2zM5 5h1v1h-1z"
                             "M4 6h1v1h-1zM6 6h1v1h-1z\"/></svg>\n");
    mem_free(svg);
}

static void qr_svg_refuses_text_too_long_and_null(void **state)
{
    (void)state;
    /* level M holds at most 2331 bytes in 8-bit mode (version 40) */
    size_t n = 2400;
    char *text = mem_alloc(n + 1);
    memset(text, 'a', n);
    text[n] = '\0';
    assert_null(totp_qr_svg(text));
    text[2000] = '\0';
    char *svg = totp_qr_svg(text);
    assert_non_null(svg);
    mem_free(svg);
    mem_free(text);
    assert_null(totp_qr_svg(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rfc6238_sha1_vectors_give_their_last_six_digits),
        cmocka_unit_test(step_is_the_floor_of_time_over_thirty),
        cmocka_unit_test(window_one_accepts_neighbours_and_refuses_two_steps_away),
        cmocka_unit_test(wrong_code_is_refused_and_step_untouched),
        cmocka_unit_test(malformed_codes_are_invalid),
        cmocka_unit_test(bad_secrets_are_invalid),
        cmocka_unit_test(new_secrets_are_32_base32_chars_and_distinct),
        cmocka_unit_test(uri_percent_encodes_issuer_and_account),
        cmocka_unit_test(qr_svg_shows_exactly_libqrencodes_matrix),
        cmocka_unit_test(svg_render_merges_runs_of_a_small_matrix),
        cmocka_unit_test(qr_svg_refuses_text_too_long_and_null),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
