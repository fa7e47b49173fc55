/* store_creds.c: TOTP secrets, WebAuthn credentials and credential-vault entries. Each
 * operation is a submit function (loop thread: checks and copies its arguments into a job) and
 * an exec function (runs the SQL where the queue runs it; see store_sqlite.c). Deletes of named
 * rows return -ENOENT when nothing matched. */
#define LOG_MODULE "store"

#include "store/store.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <sqlite3.h>

#include "core/mem.h"
#include "store/store_int.h"

#define TOTP_SECRET_SIZE sizeof(((struct store_totp *)0)->secret)
#define VAULT_KIND_SIZE  sizeof(((struct store_vault_entry *)0)->kind)
#define CRED_ID_MAX      sizeof(((struct store_webauthn_cred *)0)->id)
#define CRED_HANDLE_MAX  sizeof(((struct store_webauthn_cred *)0)->user_handle)

/* ---- TOTP ---- */

static void totp_create_exec(struct store_db *db, struct store_job *job)
{
    sqlite3_stmt *st =
        store__stmt(db, job, STORE__TOTP_INSERT,
                    "INSERT INTO totp(user, secret, last_step, created) VALUES(?1, ?2, -1, ?3)");
    if (st == NULL)
        return;
    int rc = store__bind_text(st, 1, job->user) | store__bind_text(st, 2, job->text) |
             sqlite3_bind_int64(st, 3, store__now());
    if (store__bound(db, job, st, rc))
        job->status = store__step_done(db, job, st);
}

void store_totp_create(struct store_db *db, const char *user, const char *secret, store_done_cb *cb,
                       void *data)
{
    struct store_job *job =
        store__job_new("totp_create", totp_create_exec, store__deliver_done, data);
    job->cb.done = cb;
    (void)(store__job_set_user(job, user) &&
           store__job_set_text(job, secret, TOTP_SECRET_SIZE, false));
    store__submit(db, job);
}

static void totp_get_exec(struct store_db *db, struct store_job *job)
{
    sqlite3_stmt *st = store__stmt(db, job, STORE__TOTP_GET,
                                   "SELECT secret, last_step, created FROM totp WHERE user = ?1");
    if (st == NULL || !store__bound(db, job, st, store__bind_text(st, 1, job->user)))
        return;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        if (!store__col_text(st, 0, job->totp.secret, sizeof(job->totp.secret)))
            job->status = store__sql_error(db, job->op, SQLITE_TOOBIG);
        job->totp.last_step = sqlite3_column_int64(st, 1);
        job->totp.created = sqlite3_column_int64(st, 2);
    } else if (rc == SQLITE_DONE) {
        job->status = -ENOENT;
    } else {
        job->status = store__sql_error(db, job->op, rc);
    }
    store__finish(st);
}

static void totp_get_deliver(struct store_job *job)
{
    if (job->cb.totp != NULL)
        job->cb.totp(job->status, job->status == 0 ? &job->totp : NULL, job->data);
}

void store_totp_get(struct store_db *db, const char *user, store_totp_cb *cb, void *data)
{
    struct store_job *job = store__job_new("totp_get", totp_get_exec, totp_get_deliver, data);
    job->cb.totp = cb;
    store__job_set_user(job, user);
    store__submit(db, job);
}

/* After a conditional UPDATE changed nothing: -ESTALE when the row exists, else -ENOENT. */
static int stale_or_missing(struct store_db *db, struct store_job *job, sqlite3_stmt *exists)
{
    int rc = store__step_exists(db, job, exists);
    if (rc < 0)
        return rc;
    return rc == 1 ? -ESTALE : -ENOENT;
}

static void totp_use_exec(struct store_db *db, struct store_job *job)
{
    /* One statement, so the check and the write are atomic. */
    sqlite3_stmt *st =
        store__stmt(db, job, STORE__TOTP_USE,
                    "UPDATE totp SET last_step = ?2 WHERE user = ?1 AND last_step < ?2");
    if (st == NULL)
        return;
    int rc = store__bind_text(st, 1, job->user) | sqlite3_bind_int64(st, 2, job->num);
    if (!store__bound(db, job, st, rc) || (job->status = store__step_done(db, job, st)) != 0)
        return;
    if (store__changes(db) == 1)
        return;
    st = store__stmt(db, job, STORE__TOTP_EXISTS, "SELECT 1 FROM totp WHERE user = ?1");
    if (st != NULL && store__bound(db, job, st, store__bind_text(st, 1, job->user)))
        job->status = stale_or_missing(db, job, st);
}

void store_totp_use_step(struct store_db *db, const char *user, int64_t step, store_done_cb *cb,
                         void *data)
{
    struct store_job *job =
        store__job_new("totp_use_step", totp_use_exec, store__deliver_done, data);
    job->cb.done = cb;
    job->num = step;
    store__job_set_user(job, user);
    store__submit(db, job);
}

static void totp_delete_exec(struct store_db *db, struct store_job *job)
{
    sqlite3_stmt *st = store__stmt(db, job, STORE__TOTP_DELETE, "DELETE FROM totp WHERE user = ?1");
    if (st == NULL || !store__bound(db, job, st, store__bind_text(st, 1, job->user)))
        return;
    job->status = store__step_done(db, job, st);
    if (job->status == 0 && store__changes(db) == 0)
        job->status = -ENOENT;
}

void store_totp_delete(struct store_db *db, const char *user, store_done_cb *cb, void *data)
{
    struct store_job *job =
        store__job_new("totp_delete", totp_delete_exec, store__deliver_done, data);
    job->cb.done = cb;
    store__job_set_user(job, user);
    store__submit(db, job);
}

/* ---- WebAuthn credentials ---- */

static void cred_add_exec(struct store_db *db, struct store_job *job)
{
    const struct store_webauthn_cred *c = job->rec;
    sqlite3_stmt *st = store__stmt(db, job, STORE__CRED_INSERT,
                                   "INSERT INTO webauthn_cred(cred_id, user, cose_key, alg, "
                                   "user_handle, sign_count, created, last_used) "
                                   "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)");
    if (st == NULL)
        return;
    int rc = store__bind_blob(st, 1, c->id, c->id_len) | store__bind_text(st, 2, c->user) |
             store__bind_blob(st, 3, job->bytes, job->bytes_len) | sqlite3_bind_int(st, 4, c->alg) |
             store__bind_blob(st, 5, c->user_handle, c->user_handle_len) |
             sqlite3_bind_int64(st, 6, c->sign_count) |
             sqlite3_bind_int64(st, 7, c->created != 0 ? c->created : store__now()) |
             sqlite3_bind_int64(st, 8, c->last_used);
    if (store__bound(db, job, st, rc))
        job->status = store__step_done(db, job, st);
}

static int cred_check(const struct store_webauthn_cred *c)
{
    if (c == NULL || c->id_len == 0)
        return -EINVAL;
    if (c->id_len > CRED_ID_MAX || c->user_handle_len > CRED_HANDLE_MAX)
        return -EMSGSIZE;
    return store__check_str(c->user, sizeof(c->user), false);
}

void store_webauthn_add(struct store_db *db, const struct store_webauthn_cred *c, store_done_cb *cb,
                        void *data)
{
    struct store_job *job =
        store__job_new("webauthn_add", cred_add_exec, store__deliver_done, data);
    job->cb.done = cb;
    job->status = cred_check(c);
    if (job->status == 0 &&
        store__job_set_bytes(job, c->cose_key, c->cose_key_len, 1, STORE__COSE_KEY_MAX)) {
        struct store_webauthn_cred *copy = mem_alloc(sizeof(*copy));
        memcpy(copy, c, sizeof(*copy));
        copy->cose_key = NULL; /* the job's bytes hold it */
        job->rec = copy;
        job->rec_size = sizeof(*copy);
    }
    store__submit(db, job);
}

static void creds_free(void *rows, size_t n)
{
    struct store_webauthn_cred *creds = rows;
    for (size_t i = 0; i < n; i++)
        mem_free(creds[i].cose_key);
    mem_free(creds);
}

/* Reads one row of cred_list into c (zeroed); false when a column does not fit. */
static bool cred_from_row(sqlite3_stmt *st, const char *user, struct store_webauthn_cred *c)
{
    size_t cose_len = (size_t)sqlite3_column_bytes(st, 1);
    if (!store__col_blob(st, 0, c->id, sizeof(c->id), &c->id_len) ||
        !store__col_blob(st, 3, c->user_handle, sizeof(c->user_handle), &c->user_handle_len))
        return false;
    snprintf(c->user, sizeof(c->user), "%s", user);
    c->cose_key = mem_alloc(cose_len);
    store__col_blob(st, 1, c->cose_key, cose_len, &c->cose_key_len);
    c->alg = sqlite3_column_int(st, 2);
    c->sign_count = (uint32_t)sqlite3_column_int64(st, 4);
    c->created = sqlite3_column_int64(st, 5);
    c->last_used = sqlite3_column_int64(st, 6);
    return true;
}

static bool cred_row(sqlite3_stmt *st, const char *user, void *row)
{
    return cred_from_row(st, user, row);
}

static void cred_list_exec(struct store_db *db, struct store_job *job)
{
    sqlite3_stmt *st = store__stmt(db, job, STORE__CRED_LIST,
                                   "SELECT cred_id, cose_key, alg, user_handle, sign_count, "
                                   "created, last_used FROM webauthn_cred WHERE user = ?1 "
                                   "ORDER BY created, rowid");
    if (st == NULL || !store__bound(db, job, st, store__bind_text(st, 1, job->user)))
        return;
    store__collect(db, job, st, sizeof(struct store_webauthn_cred), cred_row);
}

static void cred_list_deliver(struct store_job *job)
{
    if (job->cb.creds == NULL)
        return;
    bool ok = job->status == 0;
    job->cb.creds(job->status, ok ? job->rows : NULL, ok ? job->n_rows : 0, job->data);
}

void store_webauthn_list(struct store_db *db, const char *user, store_webauthn_list_cb *cb,
                         void *data)
{
    struct store_job *job =
        store__job_new("webauthn_list", cred_list_exec, cred_list_deliver, data);
    job->cb.creds = cb;
    job->free_rows = creds_free;
    store__job_set_user(job, user);
    store__submit(db, job);
}

static void cred_use_exec(struct store_db *db, struct store_job *job)
{
    /* One statement, so the clone check and the write are atomic. Counters only grow; an
     * authenticator without a counter reports 0 every time. */
    sqlite3_stmt *st = store__stmt(db, job, STORE__CRED_USE,
                                   "UPDATE webauthn_cred SET sign_count = ?3, last_used = ?4 "
                                   "WHERE user = ?1 AND cred_id = ?2 AND "
                                   "(sign_count < ?3 OR (sign_count = 0 AND ?3 = 0))");
    if (st == NULL)
        return;
    int rc = store__bind_text(st, 1, job->user) |
             store__bind_blob(st, 2, job->bytes, job->bytes_len) |
             sqlite3_bind_int64(st, 3, job->num) | sqlite3_bind_int64(st, 4, store__now());
    if (!store__bound(db, job, st, rc) || (job->status = store__step_done(db, job, st)) != 0)
        return;
    if (store__changes(db) == 1)
        return;
    st = store__stmt(db, job, STORE__CRED_EXISTS,
                     "SELECT 1 FROM webauthn_cred WHERE user = ?1 AND cred_id = ?2");
    if (st == NULL)
        return;
    rc = store__bind_text(st, 1, job->user) | store__bind_blob(st, 2, job->bytes, job->bytes_len);
    if (store__bound(db, job, st, rc))
        job->status = stale_or_missing(db, job, st);
}

void store_webauthn_use(struct store_db *db, const char *user, const uint8_t *id, size_t id_len,
                        uint32_t new_count, store_done_cb *cb, void *data)
{
    struct store_job *job =
        store__job_new("webauthn_use", cred_use_exec, store__deliver_done, data);
    job->cb.done = cb;
    job->num = new_count;
    (void)(store__job_set_user(job, user) &&
           store__job_set_bytes(job, id, id == NULL ? 0 : id_len, 1, CRED_ID_MAX));
    store__submit(db, job);
}

static void cred_delete_exec(struct store_db *db, struct store_job *job)
{
    bool one = job->bytes != NULL;
    sqlite3_stmt *st =
        one ? store__stmt(db, job, STORE__CRED_DELETE_ONE,
                          "DELETE FROM webauthn_cred WHERE user = ?1 AND cred_id = ?2")
            : store__stmt(db, job, STORE__CRED_DELETE_ALL,
                          "DELETE FROM webauthn_cred WHERE user = ?1");
    if (st == NULL)
        return;
    int rc = store__bind_text(st, 1, job->user);
    if (one)
        rc |= store__bind_blob(st, 2, job->bytes, job->bytes_len);
    if (!store__bound(db, job, st, rc))
        return;
    job->status = store__step_done(db, job, st);
    if (job->status == 0 && store__changes(db) == 0)
        job->status = -ENOENT;
}

void store_webauthn_delete(struct store_db *db, const char *user, const uint8_t *id, size_t id_len,
                           store_done_cb *cb, void *data)
{
    struct store_job *job =
        store__job_new("webauthn_delete", cred_delete_exec, store__deliver_done, data);
    job->cb.done = cb;
    if (store__job_set_user(job, user) && id != NULL)
        store__job_set_bytes(job, id, id_len, 1, CRED_ID_MAX);
    store__submit(db, job);
}

/* ---- credential vault ---- */

static void vault_put_exec(struct store_db *db, struct store_job *job)
{
    sqlite3_stmt *st = store__stmt(db, job, STORE__VAULT_PUT,
                                   "INSERT INTO vault(user, kind, blob, updated) "
                                   "VALUES(?1, ?2, ?3, ?4) ON CONFLICT(user, kind) DO UPDATE "
                                   "SET blob = excluded.blob, updated = excluded.updated");
    if (st == NULL)
        return;
    int rc = store__bind_text(st, 1, job->user) | store__bind_text(st, 2, job->text) |
             store__bind_blob(st, 3, job->bytes, job->bytes_len) |
             sqlite3_bind_int64(st, 4, store__now());
    if (store__bound(db, job, st, rc))
        job->status = store__step_done(db, job, st);
}

void store_vault_put(struct store_db *db, const char *user, const char *kind, const uint8_t *blob,
                     size_t len, store_done_cb *cb, void *data)
{
    struct store_job *job = store__job_new("vault_put", vault_put_exec, store__deliver_done, data);
    job->cb.done = cb;
    (void)(store__job_set_user(job, user) &&
           store__job_set_text(job, kind, VAULT_KIND_SIZE, false) &&
           store__job_set_bytes(job, blob, len, 0, STORE__VAULT_BLOB_MAX));
    store__submit(db, job);
}

static void vault_free(void *rows, size_t n)
{
    struct store_vault_entry *e = rows;
    for (size_t i = 0; i < n; i++) {
        uint8_t *blob = (uint8_t *)e[i].blob;
        OPENSSL_cleanse(blob, e[i].blob_len);
        mem_free(blob);
    }
    mem_free(e);
}

/* One vault row; the blob is copied (and wiped by vault_free). */
static bool vault_row(sqlite3_stmt *st, const char *user, void *row)
{
    struct store_vault_entry *e = row;
    (void)user;
    if (!store__col_text(st, 0, e->kind, sizeof(e->kind)))
        return false;
    size_t len = (size_t)sqlite3_column_bytes(st, 1);
    uint8_t *blob = mem_alloc(len);
    store__col_blob(st, 1, blob, len, &e->blob_len);
    e->blob = blob;
    e->updated = sqlite3_column_int64(st, 2);
    return true;
}

static void vault_get_exec(struct store_db *db, struct store_job *job)
{
    sqlite3_stmt *st =
        store__stmt(db, job, STORE__VAULT_GET,
                    "SELECT kind, blob, updated FROM vault WHERE user = ?1 ORDER BY kind");
    if (st == NULL || !store__bound(db, job, st, store__bind_text(st, 1, job->user)))
        return;
    store__collect(db, job, st, sizeof(struct store_vault_entry), vault_row);
}

static void vault_get_deliver(struct store_job *job)
{
    if (job->cb.vault == NULL)
        return;
    bool ok = job->status == 0;
    job->cb.vault(job->status, ok ? job->rows : NULL, ok ? job->n_rows : 0, job->data);
}

void store_vault_get(struct store_db *db, const char *user, store_vault_cb *cb, void *data)
{
    struct store_job *job = store__job_new("vault_get", vault_get_exec, vault_get_deliver, data);
    job->cb.vault = cb;
    job->free_rows = vault_free;
    store__job_set_user(job, user);
    store__submit(db, job);
}

static void vault_delete_exec(struct store_db *db, struct store_job *job)
{
    bool one = job->text != NULL;
    sqlite3_stmt *st =
        one ? store__stmt(db, job, STORE__VAULT_DELETE_ONE,
                          "DELETE FROM vault WHERE user = ?1 AND kind = ?2")
            : store__stmt(db, job, STORE__VAULT_DELETE_ALL, "DELETE FROM vault WHERE user = ?1");
    if (st == NULL)
        return;
    int rc = store__bind_text(st, 1, job->user);
    if (one)
        rc |= store__bind_text(st, 2, job->text);
    if (!store__bound(db, job, st, rc))
        return;
    job->status = store__step_done(db, job, st);
    if (job->status == 0 && store__changes(db) == 0)
        job->status = -ENOENT;
}

void store_vault_delete(struct store_db *db, const char *user, const char *kind, store_done_cb *cb,
                        void *data)
{
    struct store_job *job =
        store__job_new("vault_delete", vault_delete_exec, store__deliver_done, data);
    job->cb.done = cb;
    if (store__job_set_user(job, user) && kind != NULL)
        store__job_set_text(job, kind, VAULT_KIND_SIZE, false);
    store__submit(db, job);
}
