/* store_tokens.c: issued access and refresh tokens, written through from auth/'s in-memory
 * table so that revocation survives a restart. store_token_load runs synchronously at start-up;
 * the rest are queued (store_sqlite.c). Deleting or marking one id returns -ENOENT when the id
 * is unknown; deleting by user or family, and purging, return 0 even when nothing matched. */
#define LOG_MODULE "store"

#include "store/store.h"

#include <errno.h>
#include <string.h>

#include <openssl/crypto.h>
#include <sqlite3.h>

#include "core/mem.h"
#include "store/store_int.h"

#define TOKEN_ID_SIZE     sizeof(((struct store_token *)0)->id)
#define TOKEN_FAMILY_SIZE sizeof(((struct store_token *)0)->family)

static const char sql_purge[] = "DELETE FROM tokens WHERE exp <= ?1";

/* Deletes expired rows; the shared part of load and purge. */
static void purge_exec(struct store_db *db, struct store_job *job)
{
    sqlite3_stmt *st = store__stmt(db, job, STORE__TOKEN_PURGE, sql_purge);
    if (st != NULL && store__bound(db, job, st, sqlite3_bind_int64(st, 1, job->num)))
        job->status = store__step_done(db, job, st);
}

static bool token_from_row(sqlite3_stmt *st, struct store_token *t)
{
    if (!store__col_text(st, 0, t->id, sizeof(t->id)) ||
        !store__col_text(st, 1, t->user, sizeof(t->user)) ||
        !store__col_text(st, 2, t->family, sizeof(t->family)))
        return false;
    t->kind = sqlite3_column_int(st, 3);
    t->exp = sqlite3_column_int64(st, 4);
    t->used = sqlite3_column_int(st, 5) != 0;
    return true;
}

int store_token_load(struct store_db *db, int64_t now_s,
                     void (*row)(const struct store_token *t, void *data), void *data)
{
    if (db == NULL || row == NULL)
        return -EINVAL;
    /* A job on the stack carries the op name and status through the shared helpers. */
    struct store_job job = { .op = "token_load", .num = now_s };
    store__sync_begin(db);
    purge_exec(db, &job);
    sqlite3_stmt *st = NULL;
    if (job.status == 0)
        st = store__stmt(db, &job, STORE__TOKEN_LIST,
                         "SELECT id, user, family, kind, exp, used FROM tokens ORDER BY rowid");
    if (st != NULL) {
        struct store_token *t = mem_alloc(sizeof(*t));
        int rc;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            memset(t, 0, sizeof(*t));
            if (!token_from_row(st, t)) {
                rc = SQLITE_TOOBIG;
                break;
            }
            row(t, data);
        }
        if (rc != SQLITE_DONE)
            job.status = store__sql_error(db, job.op, rc);
        store__finish(st);
        OPENSSL_cleanse(t, sizeof(*t));
        mem_free(t);
    }
    store__sync_end(db);
    return job.status;
}

static void token_put_exec(struct store_db *db, struct store_job *job)
{
    const struct store_token *t = job->rec;
    sqlite3_stmt *st =
        store__stmt(db, job, STORE__TOKEN_PUT,
                    "INSERT INTO tokens(id, user, family, kind, exp, used) "
                    "VALUES(?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(id) DO UPDATE "
                    "SET user = excluded.user, family = excluded.family, "
                    "kind = excluded.kind, exp = excluded.exp, used = excluded.used");
    if (st == NULL)
        return;
    int rc = store__bind_text(st, 1, t->id) | store__bind_text(st, 2, t->user) |
             store__bind_text(st, 3, t->family) | sqlite3_bind_int(st, 4, t->kind) |
             sqlite3_bind_int64(st, 5, t->exp) | sqlite3_bind_int(st, 6, t->used ? 1 : 0);
    if (store__bound(db, job, st, rc))
        job->status = store__step_done(db, job, st);
}

static int token_check(const struct store_token *t)
{
    if (t == NULL || (t->kind != STORE_TOKEN_ACCESS && t->kind != STORE_TOKEN_REFRESH))
        return -EINVAL;
    int rc = store__check_str(t->id, sizeof(t->id), false);
    if (rc == 0)
        rc = store__check_str(t->user, sizeof(t->user), false);
    if (rc == 0)
        rc = store__check_str(t->family, sizeof(t->family), true);
    return rc;
}

void store_token_put(struct store_db *db, const struct store_token *t, store_done_cb *cb,
                     void *data)
{
    struct store_job *job = store__job_new("token_put", token_put_exec, store__deliver_done, data);
    job->cb.done = cb;
    job->status = token_check(t);
    if (job->status == 0) {
        job->rec = mem_alloc(sizeof(*t));
        memcpy(job->rec, t, sizeof(*t));
        job->rec_size = sizeof(*t);
    }
    store__submit(db, job);
}

/* UPDATE or DELETE keyed by job->text (or job->user); -ENOENT when nothing matched and
 * must_match. */
static void keyed_exec(struct store_db *db, struct store_job *job, enum store__stmt id,
                       const char *sql, const char *key, bool must_match)
{
    sqlite3_stmt *st = store__stmt(db, job, id, sql);
    if (st == NULL || !store__bound(db, job, st, store__bind_text(st, 1, key)))
        return;
    job->status = store__step_done(db, job, st);
    if (job->status == 0 && must_match && store__changes(db) == 0)
        job->status = -ENOENT;
}

static void mark_used_exec(struct store_db *db, struct store_job *job)
{
    keyed_exec(db, job, STORE__TOKEN_MARK_USED, "UPDATE tokens SET used = 1 WHERE id = ?1",
               job->text, true);
}

void store_token_mark_used(struct store_db *db, const char *id, store_done_cb *cb, void *data)
{
    struct store_job *job =
        store__job_new("token_mark_used", mark_used_exec, store__deliver_done, data);
    job->cb.done = cb;
    store__job_set_text(job, id, TOKEN_ID_SIZE, false);
    store__submit(db, job);
}

static void delete_exec(struct store_db *db, struct store_job *job)
{
    keyed_exec(db, job, STORE__TOKEN_DELETE, "DELETE FROM tokens WHERE id = ?1", job->text, true);
}

void store_token_delete(struct store_db *db, const char *id, store_done_cb *cb, void *data)
{
    struct store_job *job = store__job_new("token_delete", delete_exec, store__deliver_done, data);
    job->cb.done = cb;
    store__job_set_text(job, id, TOKEN_ID_SIZE, false);
    store__submit(db, job);
}

static void delete_user_exec(struct store_db *db, struct store_job *job)
{
    keyed_exec(db, job, STORE__TOKEN_DELETE_USER, "DELETE FROM tokens WHERE user = ?1", job->user,
               false);
}

void store_token_delete_user(struct store_db *db, const char *user, store_done_cb *cb, void *data)
{
    struct store_job *job =
        store__job_new("token_delete_user", delete_user_exec, store__deliver_done, data);
    job->cb.done = cb;
    store__job_set_user(job, user);
    store__submit(db, job);
}

static void delete_family_exec(struct store_db *db, struct store_job *job)
{
    keyed_exec(db, job, STORE__TOKEN_DELETE_FAMILY, "DELETE FROM tokens WHERE family = ?1",
               job->text, false);
}

void store_token_delete_family(struct store_db *db, const char *family, store_done_cb *cb,
                               void *data)
{
    struct store_job *job =
        store__job_new("token_delete_family", delete_family_exec, store__deliver_done, data);
    job->cb.done = cb;
    /* Not empty: "" is every token without a family. */
    store__job_set_text(job, family, TOKEN_FAMILY_SIZE, false);
    store__submit(db, job);
}

void store_token_purge(struct store_db *db, int64_t now_s, store_done_cb *cb, void *data)
{
    struct store_job *job = store__job_new("token_purge", purge_exec, store__deliver_done, data);
    job->cb.done = cb;
    job->num = now_s;
    store__submit(db, job);
}
