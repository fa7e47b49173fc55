/* test_core.c: the core toolbox: buf bounds, base64 vectors, log redaction, map, config. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/b64.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/log.h"
#include "core/map.h"
#include "core/mem.h"

static void buf_append_at_limit_succeeds_and_one_past_fails(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 8);
    assert_int_equal(buf_append(&b, "12345678", 8), 0);
    assert_int_equal(buf_append(&b, "9", 1), -ENOBUFS);
    assert_string_equal(buf_cstr(&b), "12345678");
    buf_consume(&b, 3);
    assert_string_equal(buf_cstr(&b), "45678");
    assert_int_equal(buf_appendf(&b, "%d", 123), 0);
    assert_int_equal(buf_appendf(&b, "%d", 4), -ENOBUFS);
    assert_string_equal(buf_cstr(&b), "45678123");
    buf_cleanup(&b);
}

struct b64_vector {
    const char *plain;
    const char *std;
    const char *url;
};

/* RFC 4648 §10 test vectors */
static const struct b64_vector b64_vectors[] = {
    { "", "", "" },
    { "f", "Zg==", "Zg" },
    { "fo", "Zm8=", "Zm8" },
    { "foo", "Zm9v", "Zm9v" },
    { "foob", "Zm9vYg==", "Zm9vYg" },
    { "fooba", "Zm9vYmE=", "Zm9vYmE" },
    { "foobar", "Zm9vYmFy", "Zm9vYmFy" },
    { "\xfb\xff", "+/8=", "-_8" },
};

static void b64_matches_rfc4648_vectors_both_ways(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(b64_vectors) / sizeof(b64_vectors[0]); i++) {
        const struct b64_vector *v = &b64_vectors[i];
        char *s = b64_encode(v->plain, strlen(v->plain), B64_STD, NULL);
        char *u = b64_encode(v->plain, strlen(v->plain), B64_URL, NULL);
        assert_string_equal(s, v->std);
        assert_string_equal(u, v->url);
        uint8_t *d;
        size_t dl;
        assert_int_equal(b64_decode(v->std, strlen(v->std), B64_STD, &d, &dl), 0);
        assert_int_equal(dl, strlen(v->plain));
        assert_memory_equal(d, v->plain, dl);
        mem_free(d);
        assert_int_equal(b64_decode(v->url, strlen(v->url), B64_URL, &d, &dl), 0);
        assert_memory_equal(d, v->plain, dl);
        mem_free(d);
        mem_free(s);
        mem_free(u);
    }
}

static void b64_rejects_malformed_input(void **state)
{
    (void)state;
    static const char *const bad_std[] = { "Zg", "Zg=", "Z", "Zm9v!", "Zm 9v", "-_8=", "Zh==" };
    for (size_t i = 0; i < sizeof(bad_std) / sizeof(bad_std[0]); i++) {
        uint8_t *d = NULL;
        size_t dl;
        assert_int_equal(b64_decode(bad_std[i], strlen(bad_std[i]), B64_STD, &d, &dl), -EINVAL);
    }
    uint8_t *d;
    size_t dl;
    assert_int_equal(b64_decode("+/8", 3, B64_URL, &d, &dl), -EINVAL);
}

struct redact_case {
    const char *in;
    const char *out;
};

static const struct redact_case redact_cases[] = {
    { "user=alice password=hunter2 ok=1", "user=alice password=[redacted] ok=1" },
    { "path=/sparkweb/sse?token=eyJabc.def.ghi", "path=/sparkweb/sse?token=[redacted]" },
    { "url=/x?a=1&access_token=zzz&b=2", "url=/x?a=1&access_token=[redacted]&b=2" },
    { "msg=\"Authorization=Basic abc\"", "msg=\"Authorization=[redacted]\"" },
    { "body={\"password\":\"p w\",\"x\":1}", "body={\"password\":\"[redacted]\",\"x\":1}" },
    { "secret=\"a b c\" next=1", "secret=\"[redacted]\" next=1" },
    { "api_key=123", "api_key=[redacted]" },
    { "monkey=banana", "monkey=banana" },
    { "line=a\nlevel=error forged", "line=a\\nlevel=error forged" },
    { "ctl=\x01", "ctl=\\x01" },
};

static void log_sanitize_redacts_secrets_and_escapes_controls(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(redact_cases) / sizeof(redact_cases[0]); i++) {
        char out[256];
        log_sanitize(redact_cases[i].in, out, sizeof(out));
        if (strcmp(out, redact_cases[i].out) != 0)
            fail_msg("case %zu: got '%s' want '%s'", i, out, redact_cases[i].out);
    }
}

static void map_grows_and_keeps_every_entry(void **state)
{
    (void)state;
    struct map *m = map_new();
    static int vals[1000];
    char key[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        assert_null(map_put(m, key, &vals[i]));
    }
    assert_int_equal(map_count(m), 1000);
    for (int i = 0; i < 1000; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        assert_ptr_equal(map_get(m, key), &vals[i]);
    }
    assert_ptr_equal(map_remove(m, "k5"), &vals[5]);
    assert_null(map_get(m, "k5"));
    assert_null(map_remove(m, "k5"));
    assert_int_equal(map_count(m), 999);
    map_free(m);
}

static void config_env_overrides_file_and_validates(void **state)
{
    (void)state;
    struct config *c = config_new();
    char err[256];
    assert_string_equal(config_str(c, "http.listen"), "127.0.0.1:8080");
    char *env[] = { "SPARKGATE_HTTP_LISTEN=127.0.0.1:9999", "SPARKGATE_XMPP_TLS=off",
                    "SPARKGATE_SESSION_LINGER=250ms", "PATH=/bin", NULL };
    assert_int_equal(config_load_env(c, env, err, sizeof(err)), 0);
    assert_string_equal(config_str(c, "http.listen"), "127.0.0.1:9999");
    assert_string_equal(config_str(c, "xmpp.tls"), "off");
    assert_int_equal(config_ms(c, "session.linger"), 250);
    assert_int_equal(config_set(c, "xmpp.tls", "maybe", err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "xmpp.tls"));
    assert_int_equal(config_set(c, "xmpp.port", "65536", err, sizeof(err)), -ERANGE);
    assert_int_equal(config_set(c, "xmpp.port", "65535", err, sizeof(err)), 0);
    assert_int_equal(config_set(c, "http.max_body", "2m", err, sizeof(err)), 0);
    assert_int_equal(config_size(c, "http.max_body"), 2 * 1024 * 1024);
    assert_int_equal(config_set(c, "no.such", "1", err, sizeof(err)), -ENOENT);
    char *bad_env[] = { "SPARKGATE_HTTP_LISTN=x", NULL };
    assert_int_equal(config_load_env(c, bad_env, err, sizeof(err)), -ENOENT);
    config_free(c);
}

/* Every key has a "### key" section in docs/config.md and every section names a key. */
static void config_docs_list_exactly_the_keys(void **state)
{
    (void)state;
    FILE *f = fopen(SG_SOURCE_DIR "/docs/config.md", "r");
    assert_non_null(f);
    char line[512];
    size_t documented = 0;
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, "### `", 5) != 0)
            continue;
        char *end = strchr(line + 5, '`');
        assert_non_null(end);
        *end = '\0';
        bool known = false;
        for (size_t i = 0; i < config_key_count(); i++)
            known |= strcmp(config_key_name(i), line + 5) == 0;
        if (!known)
            fail_msg("docs/config.md documents unknown key %s", line + 5);
        documented++;
    }
    fclose(f);
    if (documented != config_key_count())
        fail_msg("docs/config.md documents %zu keys, the table has %zu", documented,
                 config_key_count());
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(buf_append_at_limit_succeeds_and_one_past_fails),
        cmocka_unit_test(b64_matches_rfc4648_vectors_both_ways),
        cmocka_unit_test(b64_rejects_malformed_input),
        cmocka_unit_test(log_sanitize_redacts_secrets_and_escapes_controls),
        cmocka_unit_test(map_grows_and_keeps_every_entry),
        cmocka_unit_test(config_env_overrides_file_and_validates),
        cmocka_unit_test(config_docs_list_exactly_the_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
