/* fuzz_api_preview.c: the link-preview HTML scanner (api__html_meta) on arbitrary bytes. It
 * must never read past the input (which is not NUL-terminated here), and every field it
 * returns must be bounded, valid UTF-8 (jansson accepts it) and free of control characters. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "api/api_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const char *s, size_t max)
{
    if (s == NULL)
        return;
    size_t len = strlen(s);
    if (len == 0 || len > max)
        abort();
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f)
            abort();
    }
    if (s[0] == ' ' || s[len - 1] == ' ')
        abort(); /* trimmed */
    json_t *j = json_string(s);
    if (j == NULL)
        abort(); /* not valid UTF-8 */
    json_decref(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    for (int want = 0; want < 2; want++) {
        struct api_html_meta m;
        api__html_meta((const char *)data, size, want != 0, &m);
        check(m.title, 1024 + 4);
        check(m.description, 1024 + 4);
        check(m.image, 2048 + 4);
        api__html_meta_cleanup(&m);
    }
    return 0;
}
