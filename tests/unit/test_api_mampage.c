/* test_api_mampage.c: the cut of one C1 archive page (api__mam_page): which results are kept
 * when a page brings more than fits, and that the cursor names the kept ones, never the
 * server's <set/> of the whole page (the client's next after=last would skip the dropped). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "api/api_int.h"
#include "core/mem.h"
#include "xmpp/stanza.h"

static struct xmpp_stanza *parse(const char *xml)
{
    int err = 0;
    struct xmpp_stanza *st = xmpp_stanza_parse(xml, strlen(xml), XMPP_NS_CLIENT, 65536, &err);
    assert_non_null(st);
    return st;
}

/* Five results r1..r5 (r3 without an id when hole), the page's set first=r1 last=r5. */
struct page {
    struct xmpp_stanza *items[5];
    struct xmpp_stanza *set;
};

static void page_init(struct page *p, bool hole)
{
    for (int i = 0; i < 5; i++) {
        char xml[256];
        char id[16] = "";
        if (!(hole && i == 2))
            snprintf(id, sizeof(id), " id='r%d'", i + 1);
        snprintf(xml, sizeof(xml),
                 "<message><result xmlns='urn:xmpp:mam:2' queryid='q'%s><forwarded "
                 "xmlns='urn:xmpp:forward:0'/></result></message>",
                 id);
        p->items[i] = parse(xml);
    }
    p->set = parse("<set xmlns='http://jabber.org/protocol/rsm'><first>r1</first>"
                   "<last>r5</last></set>");
}

static void page_cleanup(struct page *p, struct api_mam_page *pg)
{
    for (int i = 0; i < 5; i++)
        xmpp_stanza_unref(p->items[i]);
    xmpp_stanza_unref(p->set);
    mem_free(pg->first);
    mem_free(pg->last);
}

static void test_page_fits(void **state)
{
    (void)state;
    struct page p;
    page_init(&p, false);
    struct api_mam_page pg;
    api__mam_page(p.items, 5, 5, false, false, p.set, &pg);
    assert_int_equal(pg.start, 0);
    assert_int_equal(pg.n, 5);
    assert_false(pg.cut);
    assert_string_equal(pg.first, "r1");
    assert_string_equal(pg.last, "r5");
    page_cleanup(&p, &pg);
}

/* A server that ignores <max/>: forward keeps the oldest, the cursor is theirs. */
static void test_forward_cut_keeps_head(void **state)
{
    (void)state;
    struct page p;
    page_init(&p, false);
    struct api_mam_page pg;
    api__mam_page(p.items, 5, 3, false, false, p.set, &pg);
    assert_int_equal(pg.start, 0);
    assert_int_equal(pg.n, 3);
    assert_true(pg.cut);
    assert_string_equal(pg.first, "r1");
    assert_string_equal(pg.last, "r3"); /* not the set's r5: after=r3 finds r4, r5 */
    page_cleanup(&p, &pg);
}

/* Paging backward (before): the newest of the page border on what the client has. */
static void test_backward_cut_keeps_tail(void **state)
{
    (void)state;
    struct page p;
    page_init(&p, false);
    struct api_mam_page pg;
    api__mam_page(p.items, 5, 2, true, false, p.set, &pg);
    assert_int_equal(pg.start, 3);
    assert_int_equal(pg.n, 2);
    assert_true(pg.cut);
    assert_string_equal(pg.first, "r4"); /* before=r4 finds r1..r3 */
    assert_string_equal(pg.last, "r5");
    page_cleanup(&p, &pg);
}

/* The collector's cap dropped results: cut, and the cursor from the kept ones. */
static void test_truncated_by_collector(void **state)
{
    (void)state;
    struct page p;
    page_init(&p, false);
    struct api_mam_page pg;
    api__mam_page(p.items, 2, 10, false, true, p.set, &pg);
    assert_int_equal(pg.n, 2);
    assert_true(pg.cut);
    assert_string_equal(pg.first, "r1");
    assert_string_equal(pg.last, "r2");
    page_cleanup(&p, &pg);
}

/* A result without an id: the set stands in only when nothing was cut. */
static void test_missing_id(void **state)
{
    (void)state;
    struct page p;
    page_init(&p, true);
    struct api_mam_page pg;
    api__mam_page(p.items + 2, 1, 5, false, false, p.set, &pg);
    assert_false(pg.cut);
    assert_string_equal(pg.first, "r1");
    assert_string_equal(pg.last, "r5");
    page_cleanup(&p, &pg);
    page_init(&p, true);
    api__mam_page(p.items, 5, 3, false, false, p.set, &pg);
    assert_true(pg.cut);
    assert_string_equal(pg.first, "r1");
    assert_null(pg.last); /* r3 has no id: no cursor rather than a wrong one */
    page_cleanup(&p, &pg);
    page_init(&p, false);
    api__mam_page(p.items, 0, 5, false, false, p.set, &pg);
    assert_int_equal(pg.n, 0);
    assert_null(pg.first);
    assert_null(pg.last);
    page_cleanup(&p, &pg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_page_fits),
        cmocka_unit_test(test_forward_cut_keeps_head),
        cmocka_unit_test(test_backward_cut_keeps_tail),
        cmocka_unit_test(test_truncated_by_collector),
        cmocka_unit_test(test_missing_id),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
