/* store_fixture.h: shared by test_store*.c: a temporary directory with an open store db and a
 * real libuv loop, callback recorders, and a second SQLite connection to inspect the file. */
#ifndef SPARKGATE_TESTS_STORE_FIXTURE_H
#define SPARKGATE_TESTS_STORE_FIXTURE_H

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <sqlite3.h>
#include <uv.h>

#include "core/log.h"
#include "core/mem.h"
#include "store/store.h"

/* Not every test file uses every helper. */
#define STORE_TEST_HELPER static __attribute__((unused))

struct fixture {
    char dir[64];
    uv_loop_t loop;
    struct store_db *db;
};

static int seq; /* order in which callbacks fired, across a test */

struct rec {
    int calls;
    int status;
    int seq;
};

STORE_TEST_HELPER void on_done(int status, void *data)
{
    struct rec *r = data;
    r->calls++;
    r->status = status;
    r->seq = ++seq;
}

#define CB on_done, &r_

/* Submits one operation whose callback is CB, checks that the callback did not fire inside the
 * call, runs the loop and checks it fired once with `expected`. */
#define EXPECT_STATUS(f, expected, submit)       \
    do {                                         \
        struct rec r_ = { 0 };                   \
        submit;                                  \
        assert_int_equal(r_.calls, 0);           \
        uv_run(&(f)->loop, UV_RUN_DEFAULT);      \
        assert_int_equal(r_.calls, 1);           \
        assert_int_equal(r_.status, (expected)); \
    } while (0)

STORE_TEST_HELPER void db_open(struct fixture *f)
{
    char err[256] = "";
    int rc = store_db_open(&f->loop, f->dir, &f->db, err, sizeof(err));
    if (rc != 0)
        fail_msg("store_db_open: %d %s", rc, err);
}

/* Closes the db and lets the loop finish a request that close detached. */
STORE_TEST_HELPER void db_close(struct fixture *f)
{
    store_db_close(f->db);
    f->db = NULL;
    uv_run(&f->loop, UV_RUN_DEFAULT);
}

STORE_TEST_HELPER int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/sg_store_XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    assert_int_equal(uv_loop_init(&f->loop), 0);
    seq = 0;
    db_open(f);
    *state = f;
    return 0;
}

STORE_TEST_HELPER int teardown(void **state)
{
    struct fixture *f = *state;
    db_close(f);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    static const char *const files[] = { "sparkgate.db", "sparkgate.db-wal", "sparkgate.db-shm" };
    char path[128];
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", f->dir, files[i]);
        unlink(path);
    }
    assert_int_equal(rmdir(f->dir), 0);
    free(f);
    return 0;
}

/* A second connection to inspect or disturb the file. */
STORE_TEST_HELPER sqlite3 *raw_open(const struct fixture *f)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/sparkgate.db", f->dir);
    sqlite3 *sql = NULL;
    assert_int_equal(sqlite3_open_v2(path, &sql, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    sqlite3_busy_timeout(sql, 5000);
    return sql;
}

STORE_TEST_HELPER void raw_exec(const struct fixture *f, const char *q)
{
    sqlite3 *sql = raw_open(f);
    assert_int_equal(sqlite3_exec(sql, q, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(sql);
}

/* The integer a one-row query returns. */
STORE_TEST_HELPER int64_t raw_int(const struct fixture *f, const char *q)
{
    sqlite3 *sql = raw_open(f);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(sql, q, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(sql);
    return v;
}

/* ---- result capture ---- */

struct totp_rec {
    int calls;
    int status;
    struct store_totp t;
};

STORE_TEST_HELPER void on_totp(int status, const struct store_totp *t, void *data)
{
    struct totp_rec *r = data;
    r->calls++;
    r->status = status;
    if (status == 0)
        r->t = *t;
    else
        assert_null(t);
}

STORE_TEST_HELPER struct totp_rec totp_get(struct fixture *f, const char *user)
{
    struct totp_rec r = { 0 };
    store_totp_get(f->db, user, on_totp, &r);
    assert_int_equal(r.calls, 0);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(r.calls, 1);
    return r;
}

#define MAX_ROWS 4

struct vault_rec {
    int calls;
    int status;
    size_t n;
    char kind[MAX_ROWS][32];
    uint8_t blob[MAX_ROWS][64];
    size_t len[MAX_ROWS];
    int seq;
};

STORE_TEST_HELPER void on_vault(int status, const struct store_vault_entry *e, size_t n, void *data)
{
    struct vault_rec *r = data;
    r->calls++;
    r->status = status;
    r->n = n;
    r->seq = ++seq;
    assert_true(n <= MAX_ROWS);
    for (size_t i = 0; i < n; i++) {
        snprintf(r->kind[i], sizeof(r->kind[i]), "%s", e[i].kind);
        assert_true(e[i].blob_len <= sizeof(r->blob[i]));
        memcpy(r->blob[i], e[i].blob, e[i].blob_len);
        r->len[i] = e[i].blob_len;
        assert_true(e[i].updated > 0);
    }
}

STORE_TEST_HELPER struct vault_rec vault_get(struct fixture *f, const char *user)
{
    struct vault_rec r = { 0 };
    store_vault_get(f->db, user, on_vault, &r);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(r.calls, 1);
    return r;
}

struct token_rows {
    int n;
    struct store_token t[4];
};

STORE_TEST_HELPER void on_token_row(const struct store_token *t, void *data)
{
    struct token_rows *rows = data;
    assert_true(rows->n < 4);
    rows->t[rows->n++] = *t;
}

STORE_TEST_HELPER void put_token(struct fixture *f, const char *id, const char *user,
                                 const char *family, int kind, int64_t exp)
{
    struct store_token t = { .kind = kind, .exp = exp };
    snprintf(t.id, sizeof(t.id), "%s", id);
    snprintf(t.user, sizeof(t.user), "%s", user);
    snprintf(t.family, sizeof(t.family), "%s", family);
    EXPECT_STATUS(f, 0, store_token_put(f->db, &t, CB));
}

STORE_TEST_HELPER struct store_webauthn_cred make_cred(const char *user, uint8_t id_byte,
                                                       int64_t created)
{
    static uint8_t cose[] = { 0xa5, 0x01, 0x02, 0x03, 0x26 };
    struct store_webauthn_cred c = { .alg = -7, .cose_key = cose, .cose_key_len = sizeof(cose) };
    snprintf(c.user, sizeof(c.user), "%s", user);
    memset(c.id, id_byte, 16);
    c.id_len = 16;
    memset(c.user_handle, 0x55, 32);
    c.user_handle_len = 32;
    c.created = created;
    return c;
}

STORE_TEST_HELPER void put_push(struct fixture *f, const char *user, const char *endpoint,
                                const char *resource)
{
    static struct store_push_sub s;
    memset(&s, 0, sizeof(s));
    snprintf(s.user, sizeof(s.user), "%s", user);
    snprintf(s.endpoint, sizeof(s.endpoint), "%s", endpoint);
    snprintf(s.resource, sizeof(s.resource), "%s", resource);
    snprintf(s.p256dh, sizeof(s.p256dh), "BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA");
    snprintf(s.auth, sizeof(s.auth), "tBHItJI5svbpez7KI4CCXg");
    EXPECT_STATUS(f, 0, store_push_put(f->db, &s, CB));
}

static const uint8_t blob1[] = "ciphertext-one";
static const uint8_t blob2[] = "ciphertext-two!";
#define SECRET "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"

#endif
