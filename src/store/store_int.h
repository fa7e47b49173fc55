/* store_int.h: shared between the files of the store database (store_sqlite.c runs the queue
 * and the connection; store_creds.c, store_tokens.c and store_push.c define the operations).
 * No other module includes this. */
#ifndef SPARKGATE_STORE_STORE_INT_H
#define SPARKGATE_STORE_STORE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "store/store.h"

/* Bounds checked before anything is copied; over them an operation fails with -EMSGSIZE. */
#define STORE__VAULT_BLOB_MAX (64 * 1024) /* bytes of one encrypted vault entry */
#define STORE__COSE_KEY_MAX   4096        /* bytes of a COSE_Key (RSA-4096 is ~550) */

/* Cached prepared statements, one per SQL text (prepared on first use). */
enum store__stmt {
    STORE__TOTP_INSERT,
    STORE__TOTP_GET,
    STORE__TOTP_USE,
    STORE__TOTP_EXISTS,
    STORE__TOTP_DELETE,
    STORE__CRED_INSERT,
    STORE__CRED_LIST,
    STORE__CRED_USE,
    STORE__CRED_EXISTS,
    STORE__CRED_DELETE_ONE,
    STORE__CRED_DELETE_ALL,
    STORE__VAULT_PUT,
    STORE__VAULT_GET,
    STORE__VAULT_DELETE_ONE,
    STORE__VAULT_DELETE_ALL,
    STORE__TOKEN_PUT,
    STORE__TOKEN_MARK_USED,
    STORE__TOKEN_DELETE,
    STORE__TOKEN_DELETE_USER,
    STORE__TOKEN_DELETE_FAMILY,
    STORE__TOKEN_PURGE,
    STORE__TOKEN_LIST,
    STORE__PUSH_PUT,
    STORE__PUSH_LIST,
    STORE__PUSH_DELETE,
    STORE__FORGET_TOTP,
    STORE__FORGET_CRED,
    STORE__FORGET_VAULT,
    STORE__FORGET_TOKENS,
    STORE__FORGET_PUSH,
    STORE__STMT_COUNT,
};

struct store_job;

/* Runs on a pool thread (or, while closing, on the caller's): touches only the job and the
 * connection, and sets job->status (and the job's results). */
typedef void store__exec_fn(struct store_db *db, struct store_job *job);
/* Runs on the loop thread: calls the user's callback with the job's status and results. */
typedef void store__deliver_fn(struct store_job *job);
/* Wipes (where secret) and frees the job's result rows. */
typedef void store__free_rows_fn(void *rows, size_t n);

/* One queued operation. Arguments are copies owned by the job; every owned buffer is wiped
 * with OPENSSL_cleanse when the job is freed. */
struct store_job {
    struct store_job *next;
    const char *op;       /* name for the log line, e.g. "totp_create" */
    store__exec_fn *exec; /* NULL when status was decided at submission */
    store__deliver_fn *deliver;
    store__free_rows_fn *free_rows; /* NULL when the operation returns no rows */
    int status;

    union {
        store_done_cb *done;
        store_totp_cb *totp;
        store_webauthn_list_cb *creds;
        store_vault_cb *vault;
        store_push_list_cb *push;
    } cb;

    void *data;

    /* arguments */
    char *user;     /* the user, or NULL */
    char *text;     /* kind, endpoint, token id, family or TOTP secret; NULL when absent */
    uint8_t *bytes; /* vault blob or credential id; NULL when absent */
    size_t bytes_len;
    int64_t num; /* TOTP step, sign count, now_s */
    void *rec;   /* a copied struct store_webauthn_cred / store_token / store_push_sub */
    size_t rec_size;

    /* results */
    struct store_totp totp;
    void *rows;
    size_t n_rows;
};

/* A zeroed job for operation `op` with the shared fields set. */
struct store_job *store__job_new(const char *op, store__exec_fn *exec, store__deliver_fn *deliver,
                                 void *data);
/* Queues job (consumed) behind every earlier operation and starts it when the db is idle.
 * A job whose status is already nonzero is not executed; its callback still fires later. */
void store__submit(struct store_db *db, struct store_job *job);
/* Calls job->cb.done (when set) with the status. */
void store__deliver_done(struct store_job *job);

/* Argument checks at submission: 0, -EINVAL (NULL, or empty when !empty_ok) or -EMSGSIZE
 * (the string would not fit a field of `size` bytes, NUL included). */
int store__check_str(const char *s, size_t size, bool empty_ok);
/* Check and copy an argument into the job. Each does nothing once job->status is nonzero, sets
 * it on a failed check, and returns job->status == 0, so calls chain with &&. */
bool store__job_set_user(struct store_job *job, const char *user);
bool store__job_set_text(struct store_job *job, const char *s, size_t size, bool empty_ok);
/* len in [min, max] (-EINVAL below, -EMSGSIZE above); p may be NULL only when len is 0. */
bool store__job_set_bytes(struct store_job *job, const uint8_t *p, size_t len, size_t min,
                          size_t max);

/* The following run where the job executes (one thread at a time). */

/* The cached statement for id, prepared from sql on first use. On error logs, sets
 * job->status = -EIO and returns NULL. */
sqlite3_stmt *store__stmt(struct store_db *db, struct store_job *job, enum store__stmt id,
                          const char *sql);
/* rc is the OR of the bind calls' results: true when all succeeded; otherwise logs, resets the
 * statement and sets job->status = -EIO. */
bool store__bound(struct store_db *db, struct store_job *job, sqlite3_stmt *st, int rc);
/* Steps a statement that returns no rows: 0, -EEXIST (primary key or unique conflict) or -EIO
 * (logged). Resets the statement and clears its bindings. */
int store__step_done(struct store_db *db, struct store_job *job, sqlite3_stmt *st);
/* Steps a query: 1 when it returned a row, 0 when none, -EIO. Resets the statement. */
int store__step_exists(struct store_db *db, struct store_job *job, sqlite3_stmt *st);
/* Resets the statement and clears its bindings (no pointer into a job survives). */
void store__finish(sqlite3_stmt *st);
/* Rows changed by the last INSERT, UPDATE or DELETE. */
int store__changes(struct store_db *db);
/* Logs a failed SQLite call (op, rc, SQLite's message; never values) and returns -EIO. */
int store__sql_error(struct store_db *db, const char *op, int rc);
/* Runs constant SQL without parameters or rows (BEGIN, COMMIT, ROLLBACK): 0 or -EIO. */
int store__exec_sql(struct store_db *db, const char *op, const char *sql);
/* Binds without copying (the job outlives the step). A blob may be empty (a NULL pointer
 * would bind SQL NULL). */
int store__bind_text(sqlite3_stmt *st, int i, const char *s);
int store__bind_blob(sqlite3_stmt *st, int i, const void *p, size_t len);
/* Copies a column into a fixed field; false when it does not fit. */
bool store__col_text(sqlite3_stmt *st, int col, char *dst, size_t size);
bool store__col_blob(sqlite3_stmt *st, int col, uint8_t *dst, size_t size, size_t *len);

/* Fills one zeroed result-row struct from the current row of st; false when a column does not
 * fit (the row must then hold nothing to free). */
typedef bool store__row_fn(sqlite3_stmt *st, const char *user, void *row);
/* Steps a query and collects one row struct of `size` bytes per result row with fill, into
 * job->rows / job->n_rows (status -EIO, logged, on an SQLite error or a row that does not fit).
 * The array grows by copying and wiping the old one, so realloc leaves no secret behind.
 * Resets the statement. */
void store__collect(struct store_db *db, struct store_job *job, sqlite3_stmt *st, size_t size,
                    store__row_fn *fill);

/* Waits until no operation runs on a pool thread and keeps new ones from starting until
 * store__sync_end, so the loop thread may use the connection (store_token_load). */
void store__sync_begin(struct store_db *db);
void store__sync_end(struct store_db *db);

/* Seconds since the epoch. */
int64_t store__now(void);

#endif
