/* test_api_preview.c: the link-preview HTML scanner (api__html_meta): precedence of og:,
 * twitter: and plain tags, skipped comments and raw-text elements, character references,
 * white space, bounds and bytes that are not UTF-8. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "api/api_int.h"
#include "core/mem.h"

static struct api_html_meta scan(const char *html, bool want_img)
{
    struct api_html_meta m;
    api__html_meta(html, strlen(html), want_img, &m);
    return m;
}

static void test_precedence(void **state)
{
    (void)state;
    struct api_html_meta m = scan("<title>plain</title><meta name='twitter:title' content='tw'>"
                                  "<meta property=\"og:title\" content=\"og\">"
                                  "<meta name=description content=d1>"
                                  "<meta name=twitter:description content=d2>"
                                  "<img src=a.png><meta name=twitter:image content=t.png>",
                                  true);
    assert_string_equal(m.title, "og");
    assert_string_equal(m.description, "d2");
    assert_string_equal(m.image, "t.png");
    api__html_meta_cleanup(&m);
    m = scan("<TITLE lang=en>Only</TITLE><IMG SRC='x.jpg'>", true);
    assert_string_equal(m.title, "Only");
    assert_null(m.description);
    assert_string_equal(m.image, "x.jpg");
    api__html_meta_cleanup(&m);
    m = scan("<title>Only</title><img src='x.jpg'>", false);
    assert_null(m.image);
    api__html_meta_cleanup(&m);
}

static void test_skipped(void **state)
{
    (void)state;
    struct api_html_meta m = scan("<!-- <title>c</title> --><script>x='<title>s</title>'</script>"
                                  "<style>/* <meta property=og:title content=st> */</style>"
                                  "<textarea><title>t</title></textarea><title>real</title>",
                                  true);
    assert_string_equal(m.title, "real");
    api__html_meta_cleanup(&m);
    m = scan("<title>unterminated", true);
    assert_string_equal(m.title, "unterminated");
    api__html_meta_cleanup(&m);
    m = scan("<script>never closed <title>x</title>", true);
    assert_null(m.title);
    api__html_meta_cleanup(&m);
    m = scan("<meta property='og:title' content='unterminated", true);
    assert_string_equal(m.title, "unterminated");
    api__html_meta_cleanup(&m);
}

static void test_text(void **state)
{
    (void)state;
    struct api_html_meta m =
        scan("<title>\n  A &amp; B &lt;c&gt; &#233;&#xE9; &eacute; &bogus; &#0; &#xD800;\t</title>",
             true);
    assert_string_equal(m.title,
                        "A & B <c> \xc3\xa9\xc3\xa9 \xc3\xa9 &bogus; \xef\xbf\xbd \xef\xbf\xbd");
    api__html_meta_cleanup(&m);
    m = scan("<title>Caf\xe9\x01\x7f ok</title>", true); /* Latin-1, controls dropped */
    assert_string_equal(m.title, "Caf\xc3\xa9 ok");
    api__html_meta_cleanup(&m);
    m = scan("<title>   </title><meta name=description content=''>", true);
    assert_null(m.title);
    assert_null(m.description);
    api__html_meta_cleanup(&m);
    char big[5000];
    memcpy(big, "<title>", 7);
    memset(big + 7, 'a', sizeof(big) - 8);
    big[sizeof(big) - 1] = '\0';
    m = scan(big, true);
    assert_true(strlen(m.title) <= 1024);
    api__html_meta_cleanup(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_precedence),
        cmocka_unit_test(test_skipped),
        cmocka_unit_test(test_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
