/* store_sqlite.c: the database connection, its numbered migrations, and the queue that runs the
 * operations of store_creds.c, store_tokens.c and store_push.c one at a time on the thread pool.
 *
 * Queue: store__submit appends a job (which owns copies of its arguments) to a FIFO. When no job
 * is in flight, the head goes to uv_queue_work inside a `struct store_run`. run_work executes the
 * SQL on a pool thread; run_done, on the loop thread, calls the user's callback, frees the job
 * and starts the next one. So jobs run strictly in submission order, one at a time (the one
 * connection is never used by two threads at once), and a callback never fires inside the call
 * that submitted it.
 *
 * Close is synchronous, but a uv_work request handed to libuv cannot be taken back: its
 * after-work callback fires on a later loop turn, after the db may be gone. So each request
 * lives in its own `struct store_run`, allocated apart from the db. store_db_close first tries
 * uv_cancel: when the pool had not started the job, the job runs here instead; otherwise it waits
 * on db->cond until run_work has set run->done (under db->lock). Either way close delivers that
 * job's callback itself and sets run->db = NULL ("detached"): run_done, whenever the loop gets to
 * it, then only frees the run, which references nothing else. (That one request keeps the loop
 * alive for one more turn, like a closing handle.) Then every queued job runs here, in order, on
 * the calling thread, and its callback fires with its real status, so writes queued before
 * shutdown (token revocations above all) are kept. Jobs submitted by those callbacks do not run;
 * they get -ECANCELED. Last, the statements are finalised and the connection closed. When close
 * is called from inside one of our callbacks, the run being delivered is detached the same way and
 * run_done returns as soon as the callback does. */
#define LOG_MODULE "store"

#include "store/store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <sqlite3.h>
#include <uv.h>

#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "store/store_int.h"

#define STORE__BUSY_TIMEOUT_MS 5000

/* One uv_work request; outlives the db when store_db_close detaches it. */
struct store_run {
    uv_work_t req;
    struct store_db *db;   /* NULL once detached: run_done then only frees the run */
    struct store_job *job; /* the job being run; NULL once handed on */
    bool done;             /* run_work finished; guarded by db->lock */
};

struct store_db {
    uv_loop_t *loop;
    sqlite3 *sql;
    int schema_version;
    struct store_job *head; /* FIFO of jobs not yet started */
    struct store_job *tail;
    size_t n_queued;
    struct store_run *inflight;   /* handed to the pool; its run_done has not run yet */
    struct store_run *delivering; /* its callback is running now */
    bool closing;                 /* in store_db_close: new jobs get -ECANCELED */
    bool sync;                    /* the loop thread is using the connection (token load) */
    uv_mutex_t lock;
    uv_cond_t cond;
    sqlite3_stmt *stmts[STORE__STMT_COUNT];
};

/* ---- schema ---- */

/* Migration n (1-based) is migrations[n - 1]. Append only: never edit a released migration. */
static const char *const migrations[] = {
    /* 1: the initial schema */
    "CREATE TABLE totp("
    " user TEXT PRIMARY KEY NOT NULL,"
    " secret TEXT NOT NULL,"
    " last_step INTEGER NOT NULL DEFAULT -1,"
    " created INTEGER NOT NULL);"
    "CREATE TABLE webauthn_cred("
    " cred_id BLOB PRIMARY KEY NOT NULL,"
    " user TEXT NOT NULL,"
    " cose_key BLOB NOT NULL,"
    " alg INTEGER NOT NULL,"
    " user_handle BLOB NOT NULL,"
    " sign_count INTEGER NOT NULL DEFAULT 0,"
    " created INTEGER NOT NULL,"
    " last_used INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX webauthn_cred_user ON webauthn_cred(user);"
    "CREATE TABLE vault("
    " user TEXT NOT NULL,"
    " kind TEXT NOT NULL,"
    " blob BLOB NOT NULL,"
    " updated INTEGER NOT NULL,"
    " PRIMARY KEY(user, kind));"
    "CREATE TABLE tokens("
    " id TEXT PRIMARY KEY NOT NULL,"
    " user TEXT NOT NULL,"
    " family TEXT NOT NULL DEFAULT '',"
    " kind INTEGER NOT NULL CHECK(kind IN (1, 2)),"
    " exp INTEGER NOT NULL,"
    " used INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX tokens_user ON tokens(user);"
    "CREATE INDEX tokens_family ON tokens(family);"
    "CREATE TABLE push_sub("
    " user TEXT NOT NULL,"
    " endpoint TEXT NOT NULL,"
    " resource TEXT NOT NULL,"
    " p256dh TEXT NOT NULL,"
    " auth TEXT NOT NULL,"
    " created INTEGER NOT NULL,"
    " PRIMARY KEY(user, endpoint));",
};

#define STORE__SCHEMA_LATEST ((int)(sizeof(migrations) / sizeof(migrations[0])))

/* Logs a failed call on connection sql. SQLite's messages name tables and columns, never
 * bound values. */
static int sql_log(sqlite3 *sql, const char *op, int rc)
{
    log_error("sqlite", "op=%s rc=%d msg=\"%s\"", op, rc,
              sql != NULL ? sqlite3_errmsg(sql) : sqlite3_errstr(rc));
    return -EIO;
}

static int open_fail(sqlite3 *sql, const char *op, int rc, char *err, size_t errlen)
{
    err_printf(err, errlen, "sqlite %s: %s", op,
               sql != NULL ? sqlite3_errmsg(sql) : sqlite3_errstr(rc));
    return sql_log(sql, op, rc);
}

/* A one-row, one-column integer query without parameters. */
static int query_int(sqlite3 *sql, const char *q, int *out)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(sql, q, -1, &st, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            *out = sqlite3_column_int(st, 0);
            rc = SQLITE_OK;
        }
    }
    sqlite3_finalize(st);
    return rc;
}

static int apply_migration(sqlite3 *sql, int version, char *err, size_t errlen)
{
    int rc = sqlite3_exec(sql, migrations[version - 1], NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return open_fail(sql, "migrate", rc, err, errlen);
    sqlite3_stmt *st = NULL;
    rc = sqlite3_prepare_v2(sql, "INSERT INTO schema_version(version, applied) VALUES(?1, ?2)", -1,
                            &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_int(st, 1, version);
        sqlite3_bind_int64(st, 2, store__now());
        rc = sqlite3_step(st);
        rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_OK ? 0 : open_fail(sql, "migrate", rc, err, errlen);
}

/* Brings the schema to STORE__SCHEMA_LATEST in one transaction; *version gets the result. */
static int migrate(sqlite3 *sql, int *version, char *err, size_t errlen)
{
    int rc = sqlite3_exec(sql, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return open_fail(sql, "begin", rc, err, errlen);
    int cur = 0;
    rc = sqlite3_exec(sql,
                      "CREATE TABLE IF NOT EXISTS schema_version("
                      "version INTEGER PRIMARY KEY NOT NULL, applied INTEGER NOT NULL)",
                      NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = query_int(sql, "SELECT coalesce(max(version), 0) FROM schema_version", &cur);
    int ret = rc == SQLITE_OK ? 0 : open_fail(sql, "schema_version", rc, err, errlen);
    if (ret == 0 && cur > STORE__SCHEMA_LATEST) {
        err_printf(err, errlen, "database schema version %d is newer than this build's %d", cur,
                   STORE__SCHEMA_LATEST);
        ret = -EPROTO;
    }
    for (int v = cur + 1; ret == 0 && v <= STORE__SCHEMA_LATEST; v++) {
        ret = apply_migration(sql, v, err, errlen);
        if (ret == 0)
            log_info("db_migrate", "version=%d", v);
    }
    if (ret == 0) {
        rc = sqlite3_exec(sql, "COMMIT", NULL, NULL, NULL);
        if (rc != SQLITE_OK)
            ret = open_fail(sql, "commit", rc, err, errlen);
    }
    if (ret != 0) {
        sqlite3_exec(sql, "ROLLBACK", NULL, NULL, NULL);
        return ret;
    }
    *version = STORE__SCHEMA_LATEST;
    return 0;
}

static int configure(sqlite3 *sql, char *err, size_t errlen)
{
    sqlite3_extended_result_codes(sql, 1);
    int rc = sqlite3_busy_timeout(sql, STORE__BUSY_TIMEOUT_MS);
    if (rc != SQLITE_OK)
        return open_fail(sql, "busy_timeout", rc, err, errlen);
    sqlite3_stmt *st = NULL;
    rc = sqlite3_prepare_v2(sql, "PRAGMA journal_mode=WAL", -1, &st, NULL);
    bool wal = false;
    if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const unsigned char *mode = sqlite3_column_text(st, 0);
        wal = mode != NULL && strcmp((const char *)mode, "wal") == 0;
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_OK)
        return open_fail(sql, "journal_mode", rc, err, errlen);
    if (!wal) {
        err_printf(err, errlen, "sqlite journal_mode: WAL is not available here");
        return -EIO;
    }
    /* secure_delete: deleted TOTP secrets and vault blobs are overwritten in the file. */
    rc = sqlite3_exec(sql,
                      "PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON; PRAGMA secure_delete=ON",
                      NULL, NULL, NULL);
    return rc == SQLITE_OK ? 0 : open_fail(sql, "pragma", rc, err, errlen);
}

/* Creates the file with mode 0600 before SQLite does (it would use 0644 less the umask; the
 * -wal and -shm files copy the database's mode), and tightens an existing file. */
static int create_file(const char *path, char *err, size_t errlen)
{
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        int e = errno;
        err_printf(err, errlen, "cannot create %s: %s", path, strerror(e));
        return -e;
    }
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) < 0 || ((st.st_mode & 077) != 0 && fchmod(fd, 0600) < 0)) {
        rc = -errno;
        err_printf(err, errlen, "cannot set mode 0600 on %s: %s", path, strerror(-rc));
    }
    close(fd);
    return rc;
}

int store_db_open(uv_loop_t *loop, const char *dir, struct store_db **out, char *err, size_t errlen)
{
    if (out != NULL)
        *out = NULL;
    if (loop == NULL || dir == NULL || dir[0] == '\0' || out == NULL) {
        err_printf(err, errlen, "store_db_open: missing argument");
        return -EINVAL;
    }
    char path[4096];
    if (snprintf(path, sizeof(path), "%s/sparkgate.db", dir) >= (int)sizeof(path)) {
        err_printf(err, errlen, "store path too long");
        return -ENAMETOOLONG;
    }
    int ret = create_file(path, err, errlen);
    if (ret < 0)
        return ret;
    sqlite3 *sql = NULL;
    int rc = sqlite3_open_v2(path, &sql,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX | SQLITE_OPEN_NOFOLLOW |
                                 SQLITE_OPEN_EXRESCODE,
                             NULL);
    int version = 0;
    if (rc != SQLITE_OK)
        ret = open_fail(sql, "open", rc, err, errlen);
    else if ((ret = configure(sql, err, errlen)) == 0)
        ret = migrate(sql, &version, err, errlen);
    if (ret < 0) {
        sqlite3_close(sql);
        return ret;
    }

    struct store_db *db = mem_calloc(1, sizeof(*db));
    db->loop = loop;
    db->sql = sql;
    db->schema_version = version;
    if (uv_mutex_init(&db->lock) != 0 || uv_cond_init(&db->cond) != 0) {
        log_error("db_open", "msg=\"cannot create the queue's mutex\"");
        abort();
    }
    *out = db;
    log_info("db_open", "path=%s schema=%d", path, version);
    return 0;
}

int store_db_schema_version(const struct store_db *db)
{
    return db->schema_version;
}

size_t store_db_pending(const struct store_db *db)
{
    return db->n_queued + (db->inflight != NULL ? 1 : 0);
}

/* ---- jobs ---- */

int64_t store__now(void)
{
    return (int64_t)time(NULL);
}

struct store_job *store__job_new(const char *op, store__exec_fn *exec, store__deliver_fn *deliver,
                                 void *data)
{
    struct store_job *job = mem_calloc(1, sizeof(*job));
    job->op = op;
    job->exec = exec;
    job->deliver = deliver;
    job->data = data;
    return job;
}

int store__check_str(const char *s, size_t size, bool empty_ok)
{
    if (s == NULL || (!empty_ok && s[0] == '\0'))
        return -EINVAL;
    return strnlen(s, size) >= size ? -EMSGSIZE : 0;
}

bool store__job_set_user(struct store_job *job, const char *user)
{
    if (job->status == 0)
        job->status = store__check_str(user, STORE_USER_MAX, false);
    if (job->status == 0)
        job->user = mem_strdup(user);
    return job->status == 0;
}

bool store__job_set_text(struct store_job *job, const char *s, size_t size, bool empty_ok)
{
    if (job->status == 0)
        job->status = store__check_str(s, size, empty_ok);
    if (job->status == 0)
        job->text = mem_strdup(s);
    return job->status == 0;
}

bool store__job_set_bytes(struct store_job *job, const uint8_t *p, size_t len, size_t min,
                          size_t max)
{
    if (job->status == 0 && ((p == NULL && len > 0) || len < min))
        job->status = -EINVAL;
    if (job->status == 0 && len > max)
        job->status = -EMSGSIZE;
    if (job->status == 0) {
        job->bytes = mem_alloc(len);
        if (len > 0)
            memcpy(job->bytes, p, len);
        job->bytes_len = len;
    }
    return job->status == 0;
}

static void wipe_free(void *p, size_t len)
{
    if (p == NULL)
        return;
    OPENSSL_cleanse(p, len);
    mem_free(p);
}

static void job_free(struct store_job *job)
{
    if (job->free_rows != NULL && job->rows != NULL)
        job->free_rows(job->rows, job->n_rows);
    mem_free(job->user);
    if (job->text != NULL)
        wipe_free(job->text, strlen(job->text));
    wipe_free(job->bytes, job->bytes_len);
    wipe_free(job->rec, job->rec_size);
    OPENSSL_cleanse(&job->totp, sizeof(job->totp));
    mem_free(job);
}

/* Runs on a pool thread, or on the closing thread. */
static void exec_job(struct store_db *db, struct store_job *job)
{
    if (job->status == 0 && job->exec != NULL)
        job->exec(db, job);
}

static void deliver_job(struct store_job *job)
{
    job->deliver(job);
    job_free(job);
}

void store__deliver_done(struct store_job *job)
{
    if (job->cb.done != NULL)
        job->cb.done(job->status, job->data);
}

static struct store_job *pop(struct store_db *db)
{
    struct store_job *job = db->head;
    if (job != NULL) {
        db->head = job->next;
        if (db->head == NULL)
            db->tail = NULL;
        db->n_queued--;
        job->next = NULL;
    }
    return job;
}

static void run_work(uv_work_t *req)
{
    struct store_run *r = container_of(req, struct store_run, req);
    struct store_db *db = r->db;
    exec_job(db, r->job);
    uv_mutex_lock(&db->lock);
    r->done = true;
    uv_cond_signal(&db->cond);
    uv_mutex_unlock(&db->lock);
}

static void kick(struct store_db *db);

static void run_done(uv_work_t *req, int status)
{
    struct store_run *r = container_of(req, struct store_run, req);
    struct store_db *db = r->db;
    if (db == NULL) { /* detached by store_db_close, which delivered the job */
        mem_free(r);
        return;
    }
    struct store_job *job = r->job;
    r->job = NULL;
    db->inflight = NULL;
    if (status != 0) /* only store_db_close cancels, and it detaches first */
        job->status = -ECANCELED;
    db->delivering = r;
    deliver_job(job);
    bool detached = r->db == NULL; /* the callback closed the db */
    mem_free(r);
    if (detached)
        return;
    db->delivering = NULL;
    kick(db);
}

/* Starts the head of the queue when nothing is in flight. */
static void kick(struct store_db *db)
{
    if (db->inflight != NULL || db->closing || db->sync || db->head == NULL)
        return;
    struct store_run *r = mem_calloc(1, sizeof(*r));
    r->db = db;
    r->job = pop(db);
    db->inflight = r;
    int rc = uv_queue_work(db->loop, &r->req, run_work, run_done);
    if (rc != 0) { /* only fails for a NULL work callback */
        log_error("queue", "err=%s", log_errname(rc));
        abort();
    }
}

void store__submit(struct store_db *db, struct store_job *job)
{
    if (db->closing && job->status == 0)
        job->status = -ECANCELED;
    if (db->tail != NULL)
        db->tail->next = job;
    else
        db->head = job;
    db->tail = job;
    db->n_queued++;
    kick(db);
}

static void wait_done(struct store_db *db, struct store_run *r)
{
    uv_mutex_lock(&db->lock);
    while (!r->done)
        uv_cond_wait(&db->cond, &db->lock);
    uv_mutex_unlock(&db->lock);
}

void store__sync_begin(struct store_db *db)
{
    db->sync = true;
    if (db->inflight != NULL)
        wait_done(db, db->inflight);
}

void store__sync_end(struct store_db *db)
{
    db->sync = false;
    kick(db);
}

void store_db_close(struct store_db *db)
{
    if (db == NULL || db->closing)
        return;
    db->closing = true;
    struct store_run *r = db->inflight;
    if (r != NULL) {
        struct store_job *job = r->job;
        if (uv_cancel((uv_req_t *)&r->req) == 0)
            exec_job(db, job); /* the pool had not started it */
        else
            wait_done(db, r);
        r->job = NULL;
        r->db = NULL;
        db->inflight = NULL;
        deliver_job(job);
    }
    if (db->delivering != NULL) {
        db->delivering->db = NULL;
        db->delivering = NULL;
    }
    struct store_job *job;
    while ((job = pop(db)) != NULL) {
        exec_job(db, job);
        deliver_job(job);
    }
    for (int i = 0; i < STORE__STMT_COUNT; i++)
        sqlite3_finalize(db->stmts[i]);
    int rc = sqlite3_close(db->sql);
    if (rc != SQLITE_OK)
        sql_log(db->sql, "close", rc);
    uv_cond_destroy(&db->cond);
    uv_mutex_destroy(&db->lock);
    mem_free(db);
}

/* ---- statement helpers for the operations ---- */

int store__sql_error(struct store_db *db, const char *op, int rc)
{
    return sql_log(db->sql, op, rc);
}

sqlite3_stmt *store__stmt(struct store_db *db, struct store_job *job, enum store__stmt id,
                          const char *sql)
{
    if (db->stmts[id] == NULL) {
        int rc =
            sqlite3_prepare_v3(db->sql, sql, -1, SQLITE_PREPARE_PERSISTENT, &db->stmts[id], NULL);
        if (rc != SQLITE_OK) {
            db->stmts[id] = NULL;
            job->status = store__sql_error(db, job->op, rc);
            return NULL;
        }
    }
    return db->stmts[id];
}

void store__finish(sqlite3_stmt *st)
{
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

bool store__bound(struct store_db *db, struct store_job *job, sqlite3_stmt *st, int rc)
{
    if (rc == SQLITE_OK)
        return true;
    job->status = store__sql_error(db, job->op, rc);
    store__finish(st);
    return false;
}

int store__step_done(struct store_db *db, struct store_job *job, sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    int ret = 0;
    if (rc == SQLITE_CONSTRAINT_PRIMARYKEY || rc == SQLITE_CONSTRAINT_UNIQUE)
        ret = -EEXIST;
    else if (rc != SQLITE_DONE)
        ret = store__sql_error(db, job->op, rc);
    store__finish(st);
    return ret;
}

int store__step_exists(struct store_db *db, struct store_job *job, sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    int ret = rc == SQLITE_ROW ? 1 : 0;
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        ret = store__sql_error(db, job->op, rc);
    store__finish(st);
    return ret;
}

int store__changes(struct store_db *db)
{
    return sqlite3_changes(db->sql);
}

int store__exec_sql(struct store_db *db, const char *op, const char *sql)
{
    int rc = sqlite3_exec(db->sql, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? 0 : store__sql_error(db, op, rc);
}

int store__bind_blob(sqlite3_stmt *st, int i, const void *p, size_t len)
{
    return sqlite3_bind_blob(st, i, len > 0 ? p : "", (int)len, SQLITE_STATIC);
}

int store__bind_text(sqlite3_stmt *st, int i, const char *s)
{
    return sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
}

bool store__col_text(sqlite3_stmt *st, int col, char *dst, size_t size)
{
    const unsigned char *s = sqlite3_column_text(st, col);
    size_t len = (size_t)sqlite3_column_bytes(st, col);
    if (len >= size)
        return false;
    if (len > 0)
        memcpy(dst, s, len);
    dst[len] = '\0';
    return true;
}

bool store__col_blob(sqlite3_stmt *st, int col, uint8_t *dst, size_t size, size_t *len)
{
    const void *p = sqlite3_column_blob(st, col);
    size_t n = (size_t)sqlite3_column_bytes(st, col);
    if (n > size)
        return false;
    if (n > 0)
        memcpy(dst, p, n);
    *len = n;
    return true;
}

void store__collect(struct store_db *db, struct store_job *job, sqlite3_stmt *st, size_t size,
                    store__row_fn *fill)
{
    uint8_t *rows = NULL;
    size_t n = 0, cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 4;
            uint8_t *grown = mem_alloc(ncap * size);
            if (n > 0) {
                memcpy(grown, rows, n * size);
                OPENSSL_cleanse(rows, n * size);
            }
            mem_free(rows);
            rows = grown;
            cap = ncap;
        }
        memset(rows + n * size, 0, size);
        if (!fill(st, job->user, rows + n * size)) {
            rc = SQLITE_TOOBIG;
            break;
        }
        n++;
    }
    if (rc != SQLITE_DONE)
        job->status = store__sql_error(db, job->op, rc);
    store__finish(st);
    job->rows = rows;
    job->n_rows = n;
}
