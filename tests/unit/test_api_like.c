/* test_api_like.c: the LIKE matcher of the U1 property search (api__like). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "api/api_int.h"

static void test_like_semantics(void **state)
{
    (void)state;
    assert_true(api__like("", ""));
    assert_true(api__like("", "%"));
    assert_true(api__like("", "%%%"));
    assert_false(api__like("", "_"));
    assert_false(api__like("a", ""));
    assert_true(api__like("abc", "abc"));
    assert_false(api__like("abc", "abd"));
    assert_false(api__like("abc", "ab"));
    assert_false(api__like("ab", "abc"));
    assert_true(api__like("abc", "a_c"));
    assert_true(api__like("abc", "%"));
    assert_true(api__like("abc", "a%"));
    assert_true(api__like("abc", "%c"));
    assert_true(api__like("abc", "%b%"));
    assert_true(api__like("abc", "a%%c"));
    assert_true(api__like("abc", "%_%"));
    assert_false(api__like("abc", "%d%"));
    assert_true(api__like("aXbXc", "a%b%c"));
    assert_true(api__like("abcbc", "a%bc"));
    assert_false(api__like("abcbd", "a%bc"));
    assert_true(api__like("mississippi", "m%issip%"));
    assert_true(api__like("mississippi", "%ss%ss%"));
    assert_false(api__like("mississippi", "%ss%ss%ss%"));
    assert_false(api__like("Abc", "abc")); /* case-sensitive */
    assert_true(api__like("a%b", "a%b"));
    assert_false(api__like("ab", "a__"));
}

/* The DoS of the recursive matcher: a 256-byte key of 'a' against "%a%a...%b" (no match) was
 * exponential in the number of '%'. Now it must finish at once. */
static void test_like_pathological_is_fast(void **state)
{
    (void)state;
    char s[257], p[257];
    memset(s, 'a', 256);
    s[256] = '\0';
    size_t n = 0;
    while (n + 2 < 256) {
        p[n++] = '%';
        p[n++] = 'a';
    }
    p[n++] = 'b';
    p[n] = '\0';
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < 100; i++)
        assert_false(api__like(s, p));
    memset(p, '%', 255);
    p[255] = 'b';
    p[256] = '\0';
    for (int i = 0; i < 100; i++)
        assert_false(api__like(s, p));
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    assert_true(ms < 1000.0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_like_semantics),
        cmocka_unit_test(test_like_pathological_is_fast),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
