/* test_store.c: the store database's life cycle against a real SQLite file and a real libuv
 * loop: open and migrations, reopen, the FIFO queue, close (in flight, queued, from a callback),
 * tokens (including the synchronous load) and how SQLite errors surface. */
#include "store_fixture.h"

/* ---- open, migrations, reopen ---- */

static void open_creates_a_0600_wal_file_at_schema_version_1(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(store_db_schema_version(f->db), 1);
    assert_int_equal(store_db_pending(f->db), 0);
    char path[128];
    snprintf(path, sizeof(path), "%s/sparkgate.db", f->dir);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(raw_int(f, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND "
                                "name IN ('totp', 'webauthn_cred', 'vault', 'tokens', "
                                "'push_sub', 'schema_version')"),
                     6);
    assert_int_equal(raw_int(f, "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND "
                                "name IN ('webauthn_cred_user', 'tokens_user', 'tokens_family')"),
                     3);
    assert_int_equal(raw_int(f, "SELECT max(version) FROM schema_version"), 1);
    assert_int_equal(raw_int(f, "SELECT count(*) FROM pragma_journal_mode WHERE "
                                "journal_mode = 'wal'"),
                     1);
}

static void reopen_keeps_data_and_does_not_migrate_again(void **state)
{
    struct fixture *f = *state;
    EXPECT_STATUS(f, 0, store_totp_create(f->db, "alice", SECRET, CB));
    EXPECT_STATUS(f, 0, store_vault_put(f->db, "alice", "scram", blob1, sizeof(blob1), CB));
    db_close(f);
    db_open(f);
    assert_int_equal(store_db_schema_version(f->db), 1);
    assert_int_equal(raw_int(f, "SELECT count(*) FROM schema_version"), 1);
    struct totp_rec t = totp_get(f, "alice");
    assert_int_equal(t.status, 0);
    assert_string_equal(t.t.secret, SECRET);
    struct vault_rec v = vault_get(f, "alice");
    assert_int_equal(v.n, 1);
    assert_memory_equal(v.blob[0], blob1, sizeof(blob1));
}

static void open_refuses_a_newer_schema_and_a_missing_dir(void **state)
{
    struct fixture *f = *state;
    db_close(f);
    raw_exec(f, "INSERT INTO schema_version(version, applied) VALUES(99, 0)");
    char err[256] = "";
    struct store_db *db = (struct store_db *)1;
    assert_int_equal(store_db_open(&f->loop, f->dir, &db, err, sizeof(err)), -EPROTO);
    assert_null(db);
    assert_non_null(strstr(err, "newer"));
    raw_exec(f, "DELETE FROM schema_version WHERE version = 99");

    char missing[128];
    snprintf(missing, sizeof(missing), "%s/no/such/dir", f->dir);
    err[0] = '\0';
    assert_int_equal(store_db_open(&f->loop, missing, &db, err, sizeof(err)), -ENOENT);
    assert_non_null(strstr(err, "cannot create"));
    db_open(f);
}

/* ---- tokens ---- */

static void token_load_deletes_expired_rows_and_returns_the_rest(void **state)
{
    struct fixture *f = *state;
    put_token(f, "expired", "alice", "", STORE_TOKEN_ACCESS, 999);
    put_token(f, "expires-now", "alice", "", STORE_TOKEN_ACCESS, 1000);
    put_token(f, "live", "alice", "fam1", STORE_TOKEN_REFRESH, 1001);
    EXPECT_STATUS(f, 0, store_token_mark_used(f->db, "live", CB));
    struct token_rows rows = { 0 };
    assert_int_equal(store_token_load(f->db, 1000, on_token_row, &rows), 0);
    assert_int_equal(rows.n, 1);
    assert_string_equal(rows.t[0].id, "live");
    assert_string_equal(rows.t[0].user, "alice");
    assert_string_equal(rows.t[0].family, "fam1");
    assert_int_equal(rows.t[0].kind, STORE_TOKEN_REFRESH);
    assert_int_equal(rows.t[0].exp, 1001);
    assert_true(rows.t[0].used);
    assert_int_equal(raw_int(f, "SELECT count(*) FROM tokens"), 1);
}

static void token_delete_by_id_user_family_and_purge(void **state)
{
    struct fixture *f = *state;
    put_token(f, "a1", "alice", "", STORE_TOKEN_ACCESS, 5000);
    put_token(f, "r1", "alice", "famA", STORE_TOKEN_REFRESH, 9000);
    put_token(f, "r2", "alice", "famA", STORE_TOKEN_REFRESH, 9000);
    put_token(f, "r3", "bob", "famB", STORE_TOKEN_REFRESH, 9000);
    put_token(f, "b1", "bob", "", STORE_TOKEN_ACCESS, 100);
    put_token(f, "b2", "bob", "", STORE_TOKEN_ACCESS, 7000);
    put_token(f, "c1", "carol", "", STORE_TOKEN_ACCESS, 7000);
    EXPECT_STATUS(f, -ENOENT, store_token_mark_used(f->db, "nope", CB));
    EXPECT_STATUS(f, -ENOENT, store_token_delete(f->db, "nope", CB));
    EXPECT_STATUS(f, 0, store_token_delete(f->db, "a1", CB));
    EXPECT_STATUS(f, 0, store_token_delete_family(f->db, "famA", CB));
    assert_int_equal(raw_int(f, "SELECT count(*) FROM tokens WHERE user = 'alice'"), 0);
    EXPECT_STATUS(f, 0, store_token_purge(f->db, 100, CB));
    assert_int_equal(raw_int(f, "SELECT count(*) FROM tokens WHERE id = 'b1'"), 0);
    EXPECT_STATUS(f, 0, store_token_delete_user(f->db, "bob", CB));
    EXPECT_STATUS(f, 0, store_token_delete_user(f->db, "bob", CB)); /* nothing left: still 0 */
    assert_int_equal(raw_int(f, "SELECT count(*) FROM tokens"), 1);
    /* put replaces by id */
    put_token(f, "c1", "carol", "", STORE_TOKEN_ACCESS, 8000);
    assert_int_equal(raw_int(f, "SELECT exp FROM tokens WHERE id = 'c1'"), 8000);
}

struct load_ctx {
    struct fixture *f;
    struct token_rows rows;
    struct rec del;
};

static void on_token_row_delete(const struct store_token *t, void *data)
{
    struct load_ctx *c = data;
    on_token_row(t, &c->rows);
    store_token_delete(c->f->db, t->id, on_done, &c->del); /* queued until the load returns */
}

static void token_load_waits_for_the_operation_in_flight(void **state)
{
    struct fixture *f = *state;
    struct store_token t = { .kind = STORE_TOKEN_ACCESS, .exp = 5000 };
    snprintf(t.id, sizeof(t.id), "jti-1");
    snprintf(t.user, sizeof(t.user), "alice");
    struct rec put = { 0 };
    store_token_put(f->db, &t, on_done, &put); /* handed to the pool at once */
    struct load_ctx c = { .f = f };
    assert_int_equal(store_token_load(f->db, 1000, on_token_row_delete, &c), 0);
    assert_int_equal(c.rows.n, 1);
    assert_string_equal(c.rows.t[0].id, "jti-1");
    assert_int_equal(put.calls + c.del.calls, 0);
    assert_int_equal(store_db_pending(f->db), 2);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(put.status, 0);
    assert_int_equal(c.del.calls, 1);
    assert_int_equal(c.del.status, 0);
    assert_true(put.seq < c.del.seq);
    assert_int_equal(raw_int(f, "SELECT count(*) FROM tokens"), 0);
}

/* ---- queue ---- */

static void operations_run_in_submission_order(void **state)
{
    struct fixture *f = *state;
    struct rec put = { 0 }, del = { 0 };
    struct vault_rec get1 = { 0 }, get2 = { 0 };
    store_vault_put(f->db, "alice", "scram", blob1, sizeof(blob1), on_done, &put);
    store_vault_get(f->db, "alice", on_vault, &get1);
    store_vault_delete(f->db, "alice", "scram", on_done, &del);
    store_vault_get(f->db, "alice", on_vault, &get2);
    assert_int_equal(store_db_pending(f->db), 4);
    assert_int_equal(put.calls + get1.calls + del.calls + get2.calls, 0);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(store_db_pending(f->db), 0);
    assert_int_equal(put.seq, 1);
    assert_int_equal(get1.seq, 2);
    assert_int_equal(del.seq, 3);
    assert_int_equal(get2.seq, 4);
    assert_int_equal(put.status, 0);
    assert_int_equal(get1.n, 1);
    assert_memory_equal(get1.blob[0], blob1, sizeof(blob1));
    assert_int_equal(del.status, 0);
    assert_int_equal(get2.n, 0);
}

/* close: a callback that submits another operation while the db is closing. */
struct closing {
    struct fixture *f;
    struct rec r;
    struct totp_rec late;
};

static void on_done_submit_more(int status, void *data)
{
    struct closing *c = data;
    on_done(status, &c->r);
    store_totp_get(c->f->db, "alice", on_totp, &c->late);
    assert_int_equal(c->late.calls, 0);
}

static void close_runs_queued_operations_and_cancels_later_ones(void **state)
{
    struct fixture *f = *state;
    struct rec a = { 0 }, b = { 0 };
    struct closing c = { .f = f };
    store_vault_put(f->db, "alice", "scram", blob1, sizeof(blob1), on_done, &a);
    store_totp_create(f->db, "alice", SECRET, on_done, &b);
    store_token_delete(f->db, "nope", on_done_submit_more, &c);
    assert_int_equal(store_db_pending(f->db), 3);
    store_db_close(f->db); /* without running the loop: one job in flight, two queued */
    f->db = NULL;
    assert_int_equal(a.calls, 1);
    assert_int_equal(a.status, 0);
    assert_int_equal(b.calls, 1);
    assert_int_equal(b.status, 0);
    assert_int_equal(c.r.calls, 1);
    assert_int_equal(c.r.status, -ENOENT);
    assert_int_equal(a.seq, 1);
    assert_int_equal(b.seq, 2);
    assert_int_equal(c.r.seq, 3);
    assert_int_equal(c.late.calls, 1);
    assert_int_equal(c.late.status, -ECANCELED);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    db_open(f); /* the queued writes were kept */
    assert_int_equal(vault_get(f, "alice").n, 1);
    assert_int_equal(totp_get(f, "alice").status, 0);
}

static void on_done_close(int status, void *data)
{
    struct closing *c = data;
    on_done(status, &c->r);
    store_db_close(c->f->db);
    c->f->db = NULL;
}

static void close_from_a_callback_finishes_the_queue(void **state)
{
    struct fixture *f = *state;
    struct closing c = { .f = f };
    struct rec a = { 0 }, b = { 0 };
    store_totp_create(f->db, "alice", SECRET, on_done_close, &c);
    store_totp_use_step(f->db, "alice", 10, on_done, &a);
    store_totp_use_step(f->db, "alice", 10, on_done, &b);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_null(f->db);
    assert_int_equal(c.r.calls, 1);
    assert_int_equal(c.r.status, 0);
    assert_int_equal(a.calls, 1);
    assert_int_equal(a.status, 0);
    assert_int_equal(b.calls, 1);
    assert_int_equal(b.status, -ESTALE);
    assert_true(c.r.seq < a.seq && a.seq < b.seq);
    db_open(f);
    assert_int_equal(totp_get(f, "alice").t.last_step, 10);
}

/* The pool has one thread (main sets UV_THREADPOOL_SIZE=1); this work occupies it. */
struct blocker {
    uv_work_t req;
    uv_sem_t go;
    int done;
};

static void block_work(uv_work_t *req)
{
    struct blocker *b = container_of(req, struct blocker, req);
    uv_sem_wait(&b->go);
}

static void block_done(uv_work_t *req, int status)
{
    struct blocker *b = container_of(req, struct blocker, req);
    assert_int_equal(status, 0);
    b->done++;
}

static void close_runs_a_job_the_pool_has_not_started(void **state)
{
    struct fixture *f = *state;
    struct blocker blk = { 0 };
    assert_int_equal(uv_sem_init(&blk.go, 0), 0);
    assert_int_equal(uv_queue_work(&f->loop, &blk.req, block_work, block_done), 0);
    struct rec a = { 0 };
    store_vault_put(f->db, "alice", "scram", blob1, sizeof(blob1), on_done, &a);
    assert_int_equal(store_db_pending(f->db), 1);
    store_db_close(f->db); /* cancels the pool request and runs the job here */
    f->db = NULL;
    assert_int_equal(a.calls, 1);
    assert_int_equal(a.status, 0);
    uv_sem_post(&blk.go);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(blk.done, 1);
    uv_sem_destroy(&blk.go);
    db_open(f);
    assert_int_equal(vault_get(f, "alice").n, 1);
}

static void commit_later(void *arg)
{
    uv_sleep(300);
    assert_int_equal(sqlite3_exec(arg, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
}

static void close_waits_for_the_job_in_flight(void **state)
{
    struct fixture *f = *state;
    sqlite3 *other = raw_open(f);
    assert_int_equal(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    struct rec a = { 0 };
    store_vault_put(f->db, "alice", "scram", blob1, sizeof(blob1), on_done, &a);
    uv_sleep(50); /* the pool thread takes the job and waits for the write lock */
    uv_thread_t th;
    assert_int_equal(uv_thread_create(&th, commit_later, other), 0);
    store_db_close(f->db);
    f->db = NULL;
    assert_int_equal(a.calls, 1);
    assert_int_equal(a.status, 0);
    assert_int_equal(uv_thread_join(&th), 0);
    sqlite3_close(other);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    db_open(f);
    assert_int_equal(vault_get(f, "alice").n, 1);
}

static void close_accepts_null(void **state)
{
    (void)state;
    store_db_close(NULL);
}

/* ---- SQLite errors ---- */

static void sqlite_errors_are_eio_and_logged_without_values(void **state)
{
    struct fixture *f = *state;
    raw_exec(f, "DROP TABLE vault");
    FILE *log = tmpfile();
    assert_non_null(log);
    log_set_file(log);
    static const uint8_t secret_blob[] = "hunter2-vault-blob";
    EXPECT_STATUS(f, -EIO,
                  store_vault_put(f->db, "alice", "scram", secret_blob, sizeof(secret_blob), CB));
    log_set_file(NULL);
    char line[1024] = "";
    rewind(log);
    size_t n = fread(line, 1, sizeof(line) - 1, log);
    line[n] = '\0';
    fclose(log);
    assert_non_null(strstr(line, "level=error mod=store ev=sqlite op=vault_put rc=1 "));
    assert_non_null(strstr(line, "no such table: vault"));
    assert_null(strstr(line, "hunter2"));
    assert_null(strstr(line, "alice"));
}

int main(void)
{
    /* One pool thread, so close_runs_a_job_the_pool_has_not_started can fill the pool. */
    setenv("UV_THREADPOOL_SIZE", "1", 1);
    log_set_level(LOG_LEVEL_WARN);
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(open_creates_a_0600_wal_file_at_schema_version_1),
        T(reopen_keeps_data_and_does_not_migrate_again),
        T(open_refuses_a_newer_schema_and_a_missing_dir),
        T(token_load_deletes_expired_rows_and_returns_the_rest),
        T(token_delete_by_id_user_family_and_purge),
        T(token_load_waits_for_the_operation_in_flight),
        T(operations_run_in_submission_order),
        T(close_runs_queued_operations_and_cancels_later_ones),
        T(close_from_a_callback_finishes_the_queue),
        T(close_runs_a_job_the_pool_has_not_started),
        T(close_waits_for_the_job_in_flight),
        T(sqlite_errors_are_eio_and_logged_without_values),
        cmocka_unit_test(close_accepts_null),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
