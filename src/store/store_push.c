/* store_push.c: Web Push subscriptions, and store_user_forget (account deletion) across every
 * table. Queued like every operation (store_sqlite.c). */
#define LOG_MODULE "store"

#include "store/store.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <sqlite3.h>

#include "core/mem.h"
#include "store/store_int.h"

#define PUSH_ENDPOINT_SIZE sizeof(((struct store_push_sub *)0)->endpoint)

/* ---- Web Push subscriptions ---- */

static void push_put_exec(struct store_db *db, struct store_job *job)
{
    const struct store_push_sub *s = job->rec;
    sqlite3_stmt *st = store__stmt(db, job, STORE__PUSH_PUT,
                                   "INSERT INTO push_sub(user, endpoint, resource, p256dh, auth, "
                                   "created) VALUES(?1, ?2, ?3, ?4, ?5, ?6) "
                                   "ON CONFLICT(user, endpoint) DO UPDATE SET "
                                   "resource = excluded.resource, p256dh = excluded.p256dh, "
                                   "auth = excluded.auth, created = excluded.created");
    if (st == NULL)
        return;
    int rc = store__bind_text(st, 1, s->user) | store__bind_text(st, 2, s->endpoint) |
             store__bind_text(st, 3, s->resource) | store__bind_text(st, 4, s->p256dh) |
             store__bind_text(st, 5, s->auth) |
             sqlite3_bind_int64(st, 6, s->created != 0 ? s->created : store__now());
    if (store__bound(db, job, st, rc))
        job->status = store__step_done(db, job, st);
}

static int push_check(const struct store_push_sub *s)
{
    if (s == NULL)
        return -EINVAL;
    int rc = store__check_str(s->user, sizeof(s->user), false);
    if (rc == 0)
        rc = store__check_str(s->endpoint, sizeof(s->endpoint), false);
    if (rc == 0)
        rc = store__check_str(s->resource, sizeof(s->resource), true);
    if (rc == 0)
        rc = store__check_str(s->p256dh, sizeof(s->p256dh), false);
    if (rc == 0)
        rc = store__check_str(s->auth, sizeof(s->auth), false);
    return rc;
}

void store_push_put(struct store_db *db, const struct store_push_sub *s, store_done_cb *cb,
                    void *data)
{
    struct store_job *job = store__job_new("push_put", push_put_exec, store__deliver_done, data);
    job->cb.done = cb;
    job->status = push_check(s);
    if (job->status == 0) {
        job->rec = mem_alloc(sizeof(*s));
        memcpy(job->rec, s, sizeof(*s));
        job->rec_size = sizeof(*s);
    }
    store__submit(db, job);
}

static void push_free(void *rows, size_t n)
{
    OPENSSL_cleanse(rows, n * sizeof(struct store_push_sub)); /* auth is a shared secret */
    mem_free(rows);
}

static bool push_from_row(sqlite3_stmt *st, const char *user, struct store_push_sub *s)
{
    snprintf(s->user, sizeof(s->user), "%s", user);
    s->created = sqlite3_column_int64(st, 4);
    return store__col_text(st, 0, s->endpoint, sizeof(s->endpoint)) &&
           store__col_text(st, 1, s->resource, sizeof(s->resource)) &&
           store__col_text(st, 2, s->p256dh, sizeof(s->p256dh)) &&
           store__col_text(st, 3, s->auth, sizeof(s->auth));
}

static bool push_row(sqlite3_stmt *st, const char *user, void *row)
{
    return push_from_row(st, user, row);
}

static void push_list_exec(struct store_db *db, struct store_job *job)
{
    sqlite3_stmt *st = store__stmt(db, job, STORE__PUSH_LIST,
                                   "SELECT endpoint, resource, p256dh, auth, created FROM push_sub "
                                   "WHERE user = ?1 ORDER BY created, rowid");
    if (st == NULL || !store__bound(db, job, st, store__bind_text(st, 1, job->user)))
        return;
    store__collect(db, job, st, sizeof(struct store_push_sub), push_row);
}

static void push_list_deliver(struct store_job *job)
{
    if (job->cb.push == NULL)
        return;
    bool ok = job->status == 0;
    job->cb.push(job->status, ok ? job->rows : NULL, ok ? job->n_rows : 0, job->data);
}

void store_push_list(struct store_db *db, const char *user, store_push_list_cb *cb, void *data)
{
    struct store_job *job = store__job_new("push_list", push_list_exec, push_list_deliver, data);
    job->cb.push = cb;
    job->free_rows = push_free;
    store__job_set_user(job, user);
    store__submit(db, job);
}

static void push_delete_exec(struct store_db *db, struct store_job *job)
{
    sqlite3_stmt *st = store__stmt(db, job, STORE__PUSH_DELETE,
                                   "DELETE FROM push_sub WHERE user = ?1 AND endpoint = ?2");
    if (st == NULL)
        return;
    int rc = store__bind_text(st, 1, job->user) | store__bind_text(st, 2, job->text);
    if (!store__bound(db, job, st, rc))
        return;
    job->status = store__step_done(db, job, st);
    if (job->status == 0 && store__changes(db) == 0)
        job->status = -ENOENT;
}

void store_push_delete(struct store_db *db, const char *user, const char *endpoint,
                       store_done_cb *cb, void *data)
{
    struct store_job *job =
        store__job_new("push_delete", push_delete_exec, store__deliver_done, data);
    job->cb.done = cb;
    (void)(store__job_set_user(job, user) &&
           store__job_set_text(job, endpoint, PUSH_ENDPOINT_SIZE, false));
    store__submit(db, job);
}

/* ---- account deletion ---- */

static const struct {
    enum store__stmt id;
    const char *sql;
} forget_sql[] = {
    { STORE__FORGET_TOTP, "DELETE FROM totp WHERE user = ?1" },
    { STORE__FORGET_CRED, "DELETE FROM webauthn_cred WHERE user = ?1" },
    { STORE__FORGET_VAULT, "DELETE FROM vault WHERE user = ?1" },
    { STORE__FORGET_TOKENS, "DELETE FROM tokens WHERE user = ?1" },
    { STORE__FORGET_PUSH, "DELETE FROM push_sub WHERE user = ?1" },
};

static void forget_exec(struct store_db *db, struct store_job *job)
{
    job->status = store__exec_sql(db, job->op, "BEGIN IMMEDIATE");
    bool begun = job->status == 0;
    for (size_t i = 0; job->status == 0 && i < sizeof(forget_sql) / sizeof(forget_sql[0]); i++) {
        sqlite3_stmt *st = store__stmt(db, job, forget_sql[i].id, forget_sql[i].sql);
        if (st != NULL && store__bound(db, job, st, store__bind_text(st, 1, job->user)))
            job->status = store__step_done(db, job, st);
    }
    if (job->status == 0)
        job->status = store__exec_sql(db, job->op, "COMMIT");
    if (job->status != 0 && begun)
        store__exec_sql(db, job->op, "ROLLBACK");
}

void store_user_forget(struct store_db *db, const char *user, store_done_cb *cb, void *data)
{
    struct store_job *job = store__job_new("user_forget", forget_exec, store__deliver_done, data);
    job->cb.done = cb;
    store__job_set_user(job, user);
    store__submit(db, job);
}
