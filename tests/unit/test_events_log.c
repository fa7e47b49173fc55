/* test_events_log.c: event ids, the ring's bounds (length and age), resuming a stream from a
 * Last-Event-ID, and the gap cases (docs/events.md). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "events/events.h"

#define ID_LIMIT (UINT64_C(1) << 53)

static uint64_t fake_now;

static uint64_t fake_clock(void *data)
{
    (void)data;
    return fake_now;
}

static struct events_log *log_new(size_t ring_len, uint64_t max_age_ms)
{
    struct events_log_opts o = { .ring_len = ring_len, .max_age_ms = max_age_ms };
    if (max_age_ms) {
        o.clock = fake_clock;
        fake_now = 1000;
    }
    return events_log_new_opts(&o);
}

static void push_n(struct events_log *log, int n)
{
    for (int i = 0; i < n; i++)
        events_log_push(log, "e", json_integer(i));
}

static void resume_id(struct events_log *log, uint64_t id, struct events_resume *r)
{
    char text[32];
    snprintf(text, sizeof(text), "%llu", (unsigned long long)id);
    events_log_resume(log, text, r);
}

/* Collects what a catching-up stream reads after `after`. */
static int read_after(struct events_log *log, uint64_t after, uint64_t *ids, int max, bool *lost)
{
    int n = 0;
    const struct event *ev;
    while ((ev = events_log_next(log, after, lost)) != NULL) {
        assert_true(n < max);
        ids[n++] = ev->id;
        after = ev->id;
    }
    return n;
}

static void ids_are_json_safe_strictly_increasing_and_unique_across_logs(void **state)
{
    (void)state;
    struct events_log *a = log_new(8, 0), *b = log_new(8, 0);
    uint64_t ba = events_log_base(a), bb = events_log_base(b);
    assert_true(ba != bb);
    assert_int_equal(ba & 0xffffffffu, 0);
    assert_true(ba >= (UINT64_C(1) << 32));
    uint64_t prev = ba;
    for (int i = 0; i < 20; i++) {
        uint64_t id = events_log_push(a, "e", json_integer(i));
        assert_true(id > prev);
        assert_true(id < ID_LIMIT);
        prev = id;
    }
    assert_int_equal(events_log_last_id(a), ba + 20);
    assert_int_equal(events_log_last_id(b), bb);
    events_log_free(a);
    events_log_free(b);
}

static void id_parse_accepts_only_plain_decimals_below_2_pow_53(void **state)
{
    (void)state;

    static const struct {
        const char *text;
        bool ok;
        uint64_t value;
    } rows[] = {
        { "0", true, 0 },
        { "1", true, 1 },
        { "4294967297", true, 4294967297ULL },
        { "9007199254740991", true, 9007199254740991ULL },
        { "9007199254740992", false, 0 },
        { "18446744073709551616", false, 0 },
        { "99999999999999999999999999", false, 0 },
        { "", false, 0 },
        { "01", false, 0 },
        { "-1", false, 0 },
        { "+1", false, 0 },
        { " 1", false, 0 },
        { "1 ", false, 0 },
        { "1e3", false, 0 },
        { "0x10", false, 0 },
        { "abc", false, 0 },
    };

    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        uint64_t v = 12345;
        bool ok = events_id_parse(rows[i].text, &v);
        if (ok != rows[i].ok || (ok && v != rows[i].value))
            fail_msg("row %zu \"%s\": ok=%d v=%llu", i, rows[i].text, ok, (unsigned long long)v);
    }
    uint64_t v;
    assert_false(events_id_parse(NULL, &v));
}

static void resume_with_held_id_replays_exactly_what_followed(void **state)
{
    (void)state;
    struct events_log *log = log_new(16, 0);
    uint64_t base = events_log_base(log);
    push_n(log, 10);
    struct events_resume r;
    resume_id(log, base + 4, &r);
    assert_false(r.gap);
    assert_int_equal(r.cursor, base + 4);
    uint64_t ids[16];
    bool lost = true;
    int n = read_after(log, r.cursor, ids, 16, &lost);
    assert_false(lost);
    assert_int_equal(n, 6);
    for (int i = 0; i < n; i++)
        assert_int_equal(ids[i], base + 5 + (uint64_t)i);

    /* the newest id: nothing to replay; the base before any drop: everything */
    resume_id(log, base + 10, &r);
    assert_false(r.gap);
    assert_null(events_log_next(log, r.cursor, &lost));
    assert_false(lost);
    resume_id(log, base, &r);
    assert_false(r.gap);
    assert_int_equal(read_after(log, r.cursor, ids, 16, &lost), 10);
    events_log_free(log);
}

/* The ring starts small and grows as events come (wrapping first), up to ring_len. */
static void ring_grows_in_order_up_to_its_length(void **state)
{
    (void)state;
    struct events_log *log = log_new(100, 0);
    uint64_t base = events_log_base(log);
    push_n(log, 10);
    uint64_t ids[128];
    bool lost;
    assert_int_equal(read_after(log, base + 5, ids, 128, &lost), 5); /* 6..10 */
    push_n(log, 240); /* ids 1..250: grows through 16, 32, 64 to 100, then drops */
    assert_int_equal(events_log_count(log), 100);
    assert_int_equal(events_log_oldest_id(log), base + 151);
    assert_int_equal(read_after(log, base + 150, ids, 128, &lost), 100);
    for (int i = 0; i < 100; i++)
        assert_int_equal(ids[i], base + 151 + (uint64_t)i);
    events_log_free(log);
    log = log_new(20, 0); /* a length that is not a power of two */
    base = events_log_base(log);
    push_n(log, 17);
    assert_int_equal(events_log_count(log), 17);
    push_n(log, 8); /* 1..25, keeps 6..25 */
    assert_int_equal(events_log_oldest_id(log), base + 6);
    assert_int_equal(read_after(log, base + 5, ids, 128, &lost), 20);
    assert_int_equal(ids[19], base + 25);
    events_log_free(log);
}

static void resume_at_the_ring_bound_and_one_past_it(void **state)
{
    (void)state;
    struct events_log *log = log_new(4, 0);
    uint64_t base = events_log_base(log);
    push_n(log, 4); /* exactly ring_len: nothing dropped */
    assert_int_equal(events_log_count(log), 4);
    assert_int_equal(events_log_oldest_id(log), base + 1);
    struct events_resume r;
    resume_id(log, base, &r);
    assert_false(r.gap);
    push_n(log, 6); /* ids 1..10, ring keeps 7..10 */
    assert_int_equal(events_log_count(log), 4);
    assert_int_equal(events_log_oldest_id(log), base + 7);
    resume_id(log, base + 6, &r); /* every successor held */
    assert_false(r.gap);
    assert_int_equal(r.cursor, base + 6);
    resume_id(log, base + 5, &r); /* base + 6 is gone */
    assert_true(r.gap);
    assert_true(r.has_requested);
    assert_int_equal(r.requested, base + 5);
    assert_int_equal(r.oldest, base + 7);
    assert_int_equal(r.last, base + 10);
    /* what is still held follows the gap */
    assert_int_equal(r.cursor, base + 6);
    uint64_t ids[8];
    bool lost;
    assert_int_equal(read_after(log, r.cursor, ids, 8, &lost), 4);
    assert_int_equal(ids[0], base + 7);
    events_log_free(log);
}

static void garbage_future_and_foreign_ids_are_gaps_then_fresh(void **state)
{
    (void)state;
    struct events_log *log = log_new(8, 0), *other = log_new(8, 0);
    uint64_t base = events_log_base(log);
    push_n(log, 3);
    push_n(other, 3);
    struct events_resume r;

    events_log_resume(log, "not-a-number", &r);
    assert_true(r.gap);
    assert_false(r.has_requested);
    assert_int_equal(r.cursor, base); /* nothing was delivered: the stream gets all three */
    assert_int_equal(r.oldest, base + 1);
    assert_int_equal(r.last, base + 3);

    resume_id(log, base + 4, &r); /* from the future */
    assert_true(r.gap);
    assert_int_equal(r.requested, base + 4);
    assert_int_equal(r.cursor, base + 3);

    resume_id(log, events_log_last_id(other), &r); /* another log's (user, session) id */
    assert_true(r.gap);
    resume_id(log, 3, &r); /* a small number, as a restarted old gateway would have sent */
    assert_true(r.gap);
    events_log_resume(log, "99999999999999999999999", &r);
    assert_true(r.gap);
    assert_false(r.has_requested);

    events_log_resume(log, "", &r); /* empty: no id at all */
    assert_false(r.gap);
    events_log_free(log);
    events_log_free(other);
}

struct sink_rec {
    int n;
    uint64_t ids[64];
};

static void record(struct events_sink *sink, const struct event *ev, void *data)
{
    (void)sink;
    struct sink_rec *r = data;
    assert_true(r->n < 64);
    r->ids[r->n++] = ev->id;
}

static void resume_without_id_takes_over_undelivered_events(void **state)
{
    (void)state;
    struct events_log *log = log_new(8, 0);
    uint64_t base = events_log_base(log);
    push_n(log, 3); /* no stream yet */
    struct events_resume r;
    events_log_resume(log, NULL, &r);
    assert_false(r.gap);
    assert_int_equal(r.cursor, base); /* this stream replays 1..3 itself */
    /* a sink attached afterwards gets none of them again, only new events */
    struct sink_rec a = { 0 };
    struct events_sink *sa = events_log_attach(log, record, &a);
    assert_int_equal(a.n, 0);
    events_log_push(log, "e", json_integer(4));
    assert_int_equal(a.n, 1);
    assert_int_equal(a.ids[0], base + 4);
    /* the next stream without an id starts after what was delivered */
    events_log_resume(log, NULL, &r);
    assert_false(r.gap);
    assert_int_equal(r.cursor, base + 4);
    events_log_detach(log, sa);
    events_log_free(log);
}

static void undelivered_events_dropped_before_any_stream_are_a_gap(void **state)
{
    (void)state;
    struct events_log *log = log_new(2, 0);
    uint64_t base = events_log_base(log);
    push_n(log, 5); /* ring keeps 4, 5; 1..3 were never seen */
    struct events_resume r;
    events_log_resume(log, NULL, &r);
    assert_true(r.gap);
    assert_false(r.has_requested);
    assert_int_equal(r.cursor, base + 3);
    uint64_t ids[8];
    bool lost;
    assert_int_equal(read_after(log, r.cursor, ids, 8, &lost), 2);
    assert_int_equal(ids[0], base + 4);
    events_log_free(log);
}

static void ring_age_drops_old_events(void **state)
{
    (void)state;
    struct events_log *log = log_new(100, 1000);
    uint64_t base = events_log_base(log);
    push_n(log, 2); /* t = 1000 */
    fake_now = 1500;
    push_n(log, 1);  /* t = 1500 */
    fake_now = 1999; /* age 999: still held (bound - 1) */
    assert_int_equal(events_log_oldest_id(log), base + 1);
    fake_now = 2000; /* age 1000: at the bound, dropped */
    assert_int_equal(events_log_oldest_id(log), base + 3);
    struct events_resume r;
    resume_id(log, base + 1, &r);
    assert_true(r.gap);
    resume_id(log, base + 2, &r);
    assert_false(r.gap);
    fake_now = 2500;
    assert_int_equal(events_log_oldest_id(log), 0); /* nothing held */
    assert_int_equal(events_log_count(log), 0);
    resume_id(log, base + 3, &r); /* the newest id is still a valid position */
    assert_false(r.gap);
    assert_int_equal(r.oldest, 0);
    events_log_free(log);
}

static void next_reports_lost_when_the_ring_moved_on(void **state)
{
    (void)state;
    struct events_log *log = log_new(4, 0);
    uint64_t base = events_log_base(log);
    push_n(log, 2);
    bool lost;
    const struct event *ev = events_log_next(log, base + 1, &lost);
    assert_non_null(ev);
    assert_int_equal(ev->id, base + 2);
    push_n(log, 6); /* 1..8, ring keeps 5..8: a stream at 2 fell behind */
    assert_null(events_log_next(log, base + 2, &lost));
    assert_true(lost);
    assert_null(events_log_next(log, base + 9, &lost)); /* beyond the newest */
    assert_true(lost);
    assert_non_null(events_log_next(log, events_log_oldest_id(log) - 1, &lost));
    assert_false(lost);
    events_log_free(log);
}

static void gap_payload_has_the_documented_shape(void **state)
{
    (void)state;
    json_t *p = events_gap_payload(4294967297ULL, 4294967300ULL, false, 0);
    char *text = json_dumps(p, JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(text, "{\"last\":4294967300,\"oldest\":4294967297,\"requested\":null}");
    free(text);
    json_decref(p);
    p = events_gap_payload(0, 9007199254740991ULL, true, 7);
    text = json_dumps(p, JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(text, "{\"last\":9007199254740991,\"oldest\":0,\"requested\":7}");
    free(text);
    json_decref(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ids_are_json_safe_strictly_increasing_and_unique_across_logs),
        cmocka_unit_test(id_parse_accepts_only_plain_decimals_below_2_pow_53),
        cmocka_unit_test(resume_with_held_id_replays_exactly_what_followed),
        cmocka_unit_test(resume_at_the_ring_bound_and_one_past_it),
        cmocka_unit_test(garbage_future_and_foreign_ids_are_gaps_then_fresh),
        cmocka_unit_test(resume_without_id_takes_over_undelivered_events),
        cmocka_unit_test(undelivered_events_dropped_before_any_stream_are_a_gap),
        cmocka_unit_test(ring_age_drops_old_events),
        cmocka_unit_test(ring_grows_in_order_up_to_its_length),
        cmocka_unit_test(next_reports_lost_when_the_ring_moved_on),
        cmocka_unit_test(gap_payload_has_the_documented_shape),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
