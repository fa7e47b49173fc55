/* store.h: the gateway's persistent state under store.path.
 *
 * Two parts:
 *  - named secrets kept as small files of mode 0600 in a 0700 directory (store_files.c), read
 *    with blocking I/O at start-up, before the loop runs;
 *  - the database (store_sqlite.c): one SQLite file <dir>/sparkgate.db in WAL mode, its schema
 *    versioned with numbered migrations applied at open. It holds TOTP secrets, WebAuthn
 *    credentials, credential-vault entries (already encrypted by auth/), issued access and
 *    refresh tokens (so revocation survives a restart), and Web Push subscriptions.
 *
 * Threading: store_db_open/close and store_token_load run synchronously (start-up and shutdown
 * only). Every other call is asynchronous: it copies its arguments, queues the operation, and
 * returns at once; the operation runs on the libuv thread pool, and its callback fires later on
 * the loop thread (never inside the call). Operations run one at a time in submission order, so
 * a put followed by a get sees the put. Callbacks may be NULL for writes. A status is 0 or a
 * negative errno: -ENOENT (no such row), -EEXIST (unique key taken), -ESTALE (a conditional
 * update whose condition failed), -EIO (SQLite error, details logged), -EINVAL / -EMSGSIZE (a
 * missing or oversized argument, checked at submission; the callback still fires later),
 * -ECANCELED (submitted while the db was closing). Borrowed result pointers are valid only
 * during the callback. Never logs secret values (vault blobs, TOTP secrets, token ids). */
#ifndef SPARKGATE_STORE_STORE_H
#define SPARKGATE_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

/* ---- secrets in files (start-up only) ---- */

/* Creates dir (and parents) with mode 0700 when missing. 0 or -errno (message in err). */
int store_open_dir(const char *dir, char *err, size_t errlen);

/* Reads the secret `name` (len bytes, stored base64url in <dir>/<name>.key) into out, creating
 * it with random bytes when the file does not exist. 0, or -errno / -EINVAL (wrong length or
 * format) with a message in err. Sets *created to 1 when it was generated now. */
int store_secret_load_or_create(const char *dir, const char *name, uint8_t *out, size_t len,
                                int *created, char *err, size_t errlen);

/* ---- the database ---- */

struct store_db;

#define STORE_USER_MAX 1024 /* bytes of a username, NUL included */

/* Opens (creating if needed) <dir>/sparkgate.db, sets WAL, applies pending migrations.
 * Synchronous. 0 or -errno with a message in err. */
int store_db_open(uv_loop_t *loop, const char *dir, struct store_db **out, char *err,
                  size_t errlen);
/* Runs every queued operation, then closes the database. Synchronous (waits for the
 * operation in flight); call it before uv_loop_close. The callbacks of the operation in flight
 * and of the queued ones fire inside this call, in order, with their real status (queued
 * writes are kept); operations submitted from those callbacks do not run and get -ECANCELED.
 * When an operation was in flight, its thread-pool request still ends on a later loop turn:
 * run the loop once more (as for closing handles) before uv_loop_close. Safe with NULL. */
void store_db_close(struct store_db *db);
/* The schema version after migrations (for tests and the start-up log). */
int store_db_schema_version(const struct store_db *db);
/* Operations queued or running (for tests and metrics). */
size_t store_db_pending(const struct store_db *db);

typedef void store_done_cb(int status, void *data);

/* ---- TOTP ---- */

struct store_totp {
    char secret[128];  /* base32 */
    int64_t last_step; /* the newest RFC 6238 time step accepted; -1 when none yet */
    int64_t created;   /* epoch seconds */
};

typedef void store_totp_cb(int status, const struct store_totp *t, void *data);

/* Stores the user's secret unless one exists (then -EEXIST and the stored one is kept). */
void store_totp_create(struct store_db *db, const char *user, const char *secret, store_done_cb *cb,
                       void *data);
/* 0 with the row, or -ENOENT. */
void store_totp_get(struct store_db *db, const char *user, store_totp_cb *cb, void *data);
/* Replay guard, atomic: sets last_step = step only when step > last_step: 0 when it did,
 * -ESTALE when step was already used (or older), -ENOENT with no secret. */
void store_totp_use_step(struct store_db *db, const char *user, int64_t step, store_done_cb *cb,
                         void *data);
void store_totp_delete(struct store_db *db, const char *user, store_done_cb *cb, void *data);

/* ---- WebAuthn credentials ---- */

struct store_webauthn_cred {
    char user[STORE_USER_MAX];
    uint8_t id[1024]; /* credential id */
    size_t id_len;
    uint8_t *cose_key; /* COSE_Key CBOR bytes */
    size_t cose_key_len;
    int alg; /* COSE algorithm: -7, -8, -257 */
    uint8_t user_handle[64];
    size_t user_handle_len;
    uint32_t sign_count;
    int64_t created;   /* epoch seconds */
    int64_t last_used; /* epoch seconds, 0 never */
};

typedef void store_webauthn_list_cb(int status, const struct store_webauthn_cred *creds, size_t n,
                                    void *data);

/* Adds a credential (copied). -EEXIST when the credential id is already registered (to any
 * user). */
void store_webauthn_add(struct store_db *db, const struct store_webauthn_cred *c, store_done_cb *cb,
                        void *data);
/* Every credential of user, oldest first (n may be 0 with status 0). */
void store_webauthn_list(struct store_db *db, const char *user, store_webauthn_list_cb *cb,
                         void *data);
/* Clone guard, atomic: stores new_count and last_used = now when new_count > stored count, or
 * when both are 0 (authenticators without a counter). 0, -ESTALE otherwise, -ENOENT when the
 * credential is not the user's. */
void store_webauthn_use(struct store_db *db, const char *user, const uint8_t *id, size_t id_len,
                        uint32_t new_count, store_done_cb *cb, void *data);
/* Deletes one credential of user (id != NULL) or all of them (id == NULL); -ENOENT when
 * nothing matched. */
void store_webauthn_delete(struct store_db *db, const char *user, const uint8_t *id, size_t id_len,
                           store_done_cb *cb, void *data);

/* ---- credential vault (blobs are encrypted by auth/ before they get here) ---- */

struct store_vault_entry {
    char kind[32]; /* "scram", "fast", "password" */
    const uint8_t *blob;
    size_t blob_len;
    int64_t updated; /* epoch seconds */
};

typedef void store_vault_cb(int status, const struct store_vault_entry *e, size_t n, void *data);

/* Inserts or replaces (user, kind). */
void store_vault_put(struct store_db *db, const char *user, const char *kind, const uint8_t *blob,
                     size_t len, store_done_cb *cb, void *data);
/* Every entry of user (n may be 0 with status 0). */
void store_vault_get(struct store_db *db, const char *user, store_vault_cb *cb, void *data);
/* Deletes (user, kind), or every entry of user when kind == NULL. */
void store_vault_delete(struct store_db *db, const char *user, const char *kind, store_done_cb *cb,
                        void *data);

/* ---- tokens (the in-memory token table of auth/ is written through to here) ---- */

enum store_token_kind {
    STORE_TOKEN_ACCESS = 1,
    STORE_TOKEN_REFRESH = 2
};

struct store_token {
    char id[96]; /* access: the jti; refresh: hex SHA-256 of the token */
    char user[STORE_USER_MAX];
    char family[64]; /* refresh family ("" when none) */
    int kind;        /* enum store_token_kind */
    int64_t exp;     /* epoch seconds */
    bool used;       /* refresh: already rotated */
};

/* Synchronous, start-up only: deletes expired rows (exp <= now_s), then calls row() for each
 * remaining one. 0 or -EIO. */
int store_token_load(struct store_db *db, int64_t now_s,
                     void (*row)(const struct store_token *t, void *data), void *data);
/* Inserts or replaces by id. */
void store_token_put(struct store_db *db, const struct store_token *t, store_done_cb *cb,
                     void *data);
/* Marks a refresh token used. */
void store_token_mark_used(struct store_db *db, const char *id, store_done_cb *cb, void *data);
/* Deletes by id; by user (every token of the user); by family. NULL arguments are errors. */
void store_token_delete(struct store_db *db, const char *id, store_done_cb *cb, void *data);
void store_token_delete_user(struct store_db *db, const char *user, store_done_cb *cb, void *data);
void store_token_delete_family(struct store_db *db, const char *family, store_done_cb *cb,
                               void *data);
/* Deletes rows with exp <= now_s (run now and then). */
void store_token_purge(struct store_db *db, int64_t now_s, store_done_cb *cb, void *data);

/* ---- Web Push subscriptions (used by the Web Push issue) ---- */

struct store_push_sub {
    char user[STORE_USER_MAX];
    char resource[256]; /* the page's name for the subscription (contract W2) */
    char endpoint[2048];
    char p256dh[128]; /* base64url */
    char auth[64];    /* base64url */
    int64_t created;
};

typedef void store_push_list_cb(int status, const struct store_push_sub *subs, size_t n,
                                void *data);

/* Inserts or replaces by (user, endpoint). */
void store_push_put(struct store_db *db, const struct store_push_sub *s, store_done_cb *cb,
                    void *data);
void store_push_list(struct store_db *db, const char *user, store_push_list_cb *cb, void *data);
/* Deletes (user, endpoint); -ENOENT when absent. */
void store_push_delete(struct store_db *db, const char *user, const char *endpoint,
                       store_done_cb *cb, void *data);

/* Deletes everything kept for user (account deletion): TOTP, WebAuthn, vault, tokens, push. */
void store_user_forget(struct store_db *db, const char *user, store_done_cb *cb, void *data);

#endif
