/* test_auth_ratelimit.c: free failures, doubling back-off and its cap, success and forgetting,
 * the LRU bound and independent keys, with time passed in by the test. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "auth/ratelimit.h"

static struct ratelimit *rl_new(unsigned free_failures, uint64_t base_ms, uint64_t max_ms,
                                uint64_t forget_ms, size_t max_entries)
{
    struct ratelimit_opts o = { .free_failures = free_failures,
                                .base_ms = base_ms,
                                .max_ms = max_ms,
                                .forget_ms = forget_ms,
                                .max_entries = max_entries };
    return ratelimit_new(&o);
}

static void free_failures_impose_no_wait(void **state)
{
    (void)state;
    struct ratelimit *rl = rl_new(3, 1000, 60000, 0, 0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(ratelimit_check(rl, "u:alice", 100), 0);
        assert_int_equal(ratelimit_fail(rl, "u:alice", 100), 0);
    }
    assert_int_equal(ratelimit_check(rl, "u:alice", 100), 0);
    assert_int_equal(ratelimit_count(rl), 1);
    /* bound + 1: the fourth failure is the first to cost */
    assert_int_equal(ratelimit_fail(rl, "u:alice", 100), 1000);
    ratelimit_free(rl);
}

static void failures_beyond_the_free_ones_double_the_wait(void **state)
{
    (void)state;
    struct ratelimit *rl = rl_new(2, 1000, 3600000, 0, 0);
    uint64_t now = 5000;
    ratelimit_fail(rl, "k", now);
    ratelimit_fail(rl, "k", now);
    const uint64_t want[] = { 1000, 2000, 4000, 8000, 16000 };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        uint64_t w = ratelimit_fail(rl, "k", now);
        if (w != want[i])
            fail_msg("failure %zu: wait %llu, want %llu", i + 3, (unsigned long long)w,
                     (unsigned long long)want[i]);
        assert_int_equal(ratelimit_check(rl, "k", now), want[i]);
        assert_int_equal(ratelimit_check(rl, "k", now + want[i] - 1), 1);
        assert_int_equal(ratelimit_check(rl, "k", now + want[i]), 0);
        now += want[i];
    }
    ratelimit_free(rl);
}

static void wait_is_capped_at_max_ms(void **state)
{
    (void)state;
    struct ratelimit *rl = rl_new(1, 1000, 5000, 0, 0);
    assert_int_equal(ratelimit_fail(rl, "k", 0), 0);
    assert_int_equal(ratelimit_fail(rl, "k", 0), 1000);
    assert_int_equal(ratelimit_fail(rl, "k", 0), 2000);
    assert_int_equal(ratelimit_fail(rl, "k", 0), 4000);
    assert_int_equal(ratelimit_fail(rl, "k", 0), 5000);
    /* far beyond 2^64: still the cap, no overflow */
    for (int i = 0; i < 200; i++)
        assert_int_equal(ratelimit_fail(rl, "k", 0), 5000);
    assert_int_equal(ratelimit_check(rl, "k", 1), 4999);
    ratelimit_free(rl);
}

static void defaults_apply_when_opts_are_zero(void **state)
{
    (void)state;
    struct ratelimit *rl = ratelimit_new(NULL);
    for (int i = 0; i < 5; i++)
        assert_int_equal(ratelimit_fail(rl, "k", 0), 0);
    assert_int_equal(ratelimit_fail(rl, "k", 0), 1000);
    for (int i = 0; i < 20; i++)
        ratelimit_fail(rl, "k", 0);
    assert_int_equal(ratelimit_fail(rl, "k", 0), 15 * 60 * 1000);
    ratelimit_free(rl);
}

static void success_clears_the_key(void **state)
{
    (void)state;
    struct ratelimit *rl = rl_new(1, 1000, 60000, 0, 0);
    ratelimit_fail(rl, "k", 0);
    assert_int_equal(ratelimit_fail(rl, "k", 0), 1000);
    ratelimit_success(rl, "k");
    assert_int_equal(ratelimit_count(rl), 0);
    assert_int_equal(ratelimit_check(rl, "k", 0), 0);
    /* afresh: the free failure is available again */
    assert_int_equal(ratelimit_fail(rl, "k", 0), 0);
    assert_int_equal(ratelimit_fail(rl, "k", 0), 1000);
    ratelimit_success(rl, "unknown"); /* harmless */
    assert_int_equal(ratelimit_count(rl), 1);
    ratelimit_free(rl);
}

static void key_untouched_for_forget_ms_is_forgotten(void **state)
{
    (void)state;
    struct ratelimit *rl = rl_new(1, 1000, 60000, 10000, 0);
    assert_int_equal(ratelimit_fail(rl, "k", 0), 0);
    /* bound - 1: still remembered (a second failure would cost) */
    assert_int_equal(ratelimit_check(rl, "k", 9999), 0);
    assert_int_equal(ratelimit_count(rl), 1);
    /* at the bound: forgotten lazily by the call that meets it */
    assert_int_equal(ratelimit_check(rl, "k", 10000), 0);
    assert_int_equal(ratelimit_count(rl), 0);
    assert_int_equal(ratelimit_fail(rl, "k", 10000), 0);

    /* remembered at forget_ms - 1: the failure there costs */
    assert_int_equal(ratelimit_fail(rl, "k", 19999), 1000);
    /* forgotten by fail() too: a failure after forget_ms is a first one */
    assert_int_equal(ratelimit_fail(rl, "k", 19999 + 1000 + 10000), 0);
    assert_int_equal(ratelimit_count(rl), 1);
    ratelimit_free(rl);
}

static void blocked_key_is_kept_until_its_block_ends(void **state)
{
    (void)state;
    struct ratelimit *rl = rl_new(1, 5000, 60000, 1000, 0);
    ratelimit_fail(rl, "k", 0);
    assert_int_equal(ratelimit_fail(rl, "k", 0), 5000);
    /* forget_ms has passed but the block has not */
    assert_int_equal(ratelimit_check(rl, "k", 2000), 3000);
    assert_int_equal(ratelimit_count(rl), 1);
    assert_int_equal(ratelimit_check(rl, "k", 5000), 0);
    assert_int_equal(ratelimit_count(rl), 0);
    ratelimit_free(rl);
}

static void stale_keys_are_swept_by_calls_on_other_keys(void **state)
{
    (void)state;
    struct ratelimit *rl = rl_new(5, 1000, 60000, 1000, 0);
    ratelimit_fail(rl, "a", 0);
    ratelimit_fail(rl, "b", 0);
    ratelimit_fail(rl, "c", 500);
    assert_int_equal(ratelimit_count(rl), 3);
    ratelimit_check(rl, "other", 1000);
    assert_int_equal(ratelimit_count(rl), 1); /* a and b went; c is 500 ms old */
    ratelimit_fail(rl, "d", 1500);
    assert_int_equal(ratelimit_count(rl), 1); /* c went, d came */
    ratelimit_free(rl);
}

static void entries_are_bounded_and_the_oldest_dropped(void **state)
{
    (void)state;
    const size_t max = 16;
    struct ratelimit *rl = rl_new(1, 60000, 60000, 0, max);
    char key[32];
    for (size_t i = 0; i < max + 10; i++) {
        snprintf(key, sizeof(key), "ip:192.0.2.%zu", i);
        ratelimit_fail(rl, key, i);
        assert_int_equal(ratelimit_fail(rl, key, i), 60000); /* blocked */
        assert_int_equal(ratelimit_count(rl), i + 1 < max ? i + 1 : max);
    }
    assert_int_equal(ratelimit_count(rl), max);
    for (size_t i = 0; i < max + 10; i++) {
        snprintf(key, sizeof(key), "ip:192.0.2.%zu", i);
        uint64_t w = ratelimit_check(rl, key, 100);
        if ((i < 10) != (w == 0))
            fail_msg("key %zu: wait %llu", i, (unsigned long long)w);
    }
    ratelimit_free(rl);
}

static void a_failure_makes_a_key_recent(void **state)
{
    (void)state;
    struct ratelimit *rl = rl_new(1, 1000, 60000, 0, 3);
    ratelimit_fail(rl, "a", 0);
    ratelimit_fail(rl, "b", 1);
    ratelimit_fail(rl, "c", 2);
    assert_int_equal(ratelimit_fail(rl, "a", 3), 1000); /* a is now the newest */
    ratelimit_check(rl, "b", 4);                        /* a check does not refresh b */
    ratelimit_fail(rl, "d", 5);                         /* drops b, the oldest */
    assert_int_equal(ratelimit_count(rl), 3);
    assert_int_equal(ratelimit_fail(rl, "c", 6), 1000); /* c was kept */
    assert_true(ratelimit_check(rl, "a", 6) > 0);       /* a was kept */
    assert_int_equal(ratelimit_fail(rl, "b", 7), 0);    /* b starts afresh */
    ratelimit_free(rl);
}

static void keys_are_independent(void **state)
{
    (void)state;
    struct ratelimit *rl = rl_new(1, 1000, 60000, 0, 0);
    ratelimit_fail(rl, "u:alice", 0);
    assert_int_equal(ratelimit_fail(rl, "u:alice", 0), 1000);
    assert_int_equal(ratelimit_check(rl, "u:bob", 0), 0);
    assert_int_equal(ratelimit_check(rl, "ip:192.0.2.1", 0), 0);
    assert_int_equal(ratelimit_fail(rl, "u:bob", 0), 0);
    ratelimit_success(rl, "u:bob");
    assert_int_equal(ratelimit_check(rl, "u:alice", 0), 1000);
    ratelimit_success(rl, "u:alice");
    assert_int_equal(ratelimit_check(rl, "u:alice", 0), 0);
    assert_int_equal(ratelimit_count(rl), 0);
    ratelimit_free(rl);
}

static void very_long_keys_share_their_first_256_bytes(void **state)
{
    (void)state;
    struct ratelimit *rl = rl_new(1, 1000, 60000, 0, 0);
    char a[400], b[400], c[400];
    memset(a, 'x', sizeof(a) - 1);
    a[sizeof(a) - 1] = '\0';
    memcpy(b, a, sizeof(b));
    memcpy(c, a, sizeof(c));
    b[300] = 'y'; /* differs after byte 256 */
    c[200] = 'y'; /* differs before */
    ratelimit_fail(rl, a, 0);
    assert_int_equal(ratelimit_fail(rl, b, 0), 1000);
    assert_int_equal(ratelimit_fail(rl, c, 0), 0);
    assert_int_equal(ratelimit_count(rl), 2);
    ratelimit_free(rl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(free_failures_impose_no_wait),
        cmocka_unit_test(failures_beyond_the_free_ones_double_the_wait),
        cmocka_unit_test(wait_is_capped_at_max_ms),
        cmocka_unit_test(defaults_apply_when_opts_are_zero),
        cmocka_unit_test(success_clears_the_key),
        cmocka_unit_test(key_untouched_for_forget_ms_is_forgotten),
        cmocka_unit_test(blocked_key_is_kept_until_its_block_ends),
        cmocka_unit_test(stale_keys_are_swept_by_calls_on_other_keys),
        cmocka_unit_test(entries_are_bounded_and_the_oldest_dropped),
        cmocka_unit_test(a_failure_makes_a_key_recent),
        cmocka_unit_test(keys_are_independent),
        cmocka_unit_test(very_long_keys_share_their_first_256_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
