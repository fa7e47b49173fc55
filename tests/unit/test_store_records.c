/* test_store_records.c: the store database's records (TOTP, WebAuthn, vault, Web Push,
 * account deletion) and argument bounds, each operation through the real queue and loop. */
#include "store_fixture.h"

#define MAX_ROWS 4

struct creds_rec {
    int calls;
    int status;
    size_t n;
    struct store_webauthn_cred c[MAX_ROWS];
    uint8_t cose[MAX_ROWS][64];
};

static void on_creds(int status, const struct store_webauthn_cred *c, size_t n, void *data)
{
    struct creds_rec *r = data;
    r->calls++;
    r->status = status;
    r->n = n;
    assert_true(n <= MAX_ROWS);
    for (size_t i = 0; i < n; i++) {
        r->c[i] = c[i];
        assert_true(c[i].cose_key_len <= sizeof(r->cose[i]));
        memcpy(r->cose[i], c[i].cose_key, c[i].cose_key_len);
        r->c[i].cose_key = NULL; /* borrowed: the bytes are in r->cose[i] */
    }
}

static struct creds_rec creds_list(struct fixture *f, const char *user)
{
    struct creds_rec r = { 0 };
    store_webauthn_list(f->db, user, on_creds, &r);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(r.calls, 1);
    return r;
}

struct push_rec {
    int calls;
    int status;
    size_t n;
    struct store_push_sub s[2];
};

static void on_push(int status, const struct store_push_sub *s, size_t n, void *data)
{
    struct push_rec *r = data;
    r->calls++;
    r->status = status;
    r->n = n;
    assert_true(n <= 2);
    for (size_t i = 0; i < n; i++)
        r->s[i] = s[i];
}

static struct push_rec *push_list(struct fixture *f, const char *user)
{
    static struct push_rec r;
    memset(&r, 0, sizeof(r));
    store_push_list(f->db, user, on_push, &r);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(r.calls, 1);
    return &r;
}

/* ---- TOTP ---- */

static void totp_create_keeps_the_first_secret_and_delete_removes_it(void **state)
{
    struct fixture *f = *state;
    EXPECT_STATUS(f, 0, store_totp_create(f->db, "alice", SECRET, CB));
    EXPECT_STATUS(f, -EEXIST, store_totp_create(f->db, "alice", "OTHERSECRET", CB));
    struct totp_rec t = totp_get(f, "alice");
    assert_int_equal(t.status, 0);
    assert_string_equal(t.t.secret, SECRET);
    assert_int_equal(t.t.last_step, -1);
    assert_true(t.t.created > 1600000000);
    assert_int_equal(totp_get(f, "bob").status, -ENOENT);
    EXPECT_STATUS(f, 0, store_totp_delete(f->db, "alice", CB));
    EXPECT_STATUS(f, -ENOENT, store_totp_delete(f->db, "alice", CB));
    assert_int_equal(totp_get(f, "alice").status, -ENOENT);
}

static void totp_use_step_accepts_only_newer_steps(void **state)
{
    struct fixture *f = *state;
    EXPECT_STATUS(f, -ENOENT, store_totp_use_step(f->db, "alice", 5, CB));
    EXPECT_STATUS(f, 0, store_totp_create(f->db, "alice", SECRET, CB));
    EXPECT_STATUS(f, 0, store_totp_use_step(f->db, "alice", 0, CB)); /* -1 < 0 */
    EXPECT_STATUS(f, 0, store_totp_use_step(f->db, "alice", 57000000, CB));
    EXPECT_STATUS(f, -ESTALE, store_totp_use_step(f->db, "alice", 57000000, CB)); /* replay */
    EXPECT_STATUS(f, -ESTALE, store_totp_use_step(f->db, "alice", 56999999, CB));
    EXPECT_STATUS(f, 0, store_totp_use_step(f->db, "alice", 57000001, CB));
    assert_int_equal(totp_get(f, "alice").t.last_step, 57000001);
}

/* ---- WebAuthn ---- */

static void webauthn_add_lists_oldest_first_and_rejects_a_taken_id(void **state)
{
    struct fixture *f = *state;
    struct creds_rec r = creds_list(f, "alice");
    assert_int_equal(r.status, 0);
    assert_int_equal(r.n, 0);
    struct store_webauthn_cred newer = make_cred("alice", 0x02, 2000);
    struct store_webauthn_cred older = make_cred("alice", 0x01, 1000);
    older.alg = -8;
    older.user_handle_len = 0;
    EXPECT_STATUS(f, 0, store_webauthn_add(f->db, &newer, CB));
    EXPECT_STATUS(f, 0, store_webauthn_add(f->db, &older, CB));
    struct store_webauthn_cred taken = make_cred("bob", 0x01, 0);
    EXPECT_STATUS(f, -EEXIST, store_webauthn_add(f->db, &taken, CB));

    r = creds_list(f, "alice");
    assert_int_equal(r.status, 0);
    assert_int_equal(r.n, 2);
    assert_int_equal(r.c[0].created, 1000);
    assert_int_equal(r.c[0].alg, -8);
    assert_int_equal(r.c[0].id_len, 16);
    assert_int_equal(r.c[0].id[0], 0x01);
    assert_int_equal(r.c[0].user_handle_len, 0);
    assert_int_equal(r.c[0].sign_count, 0);
    assert_int_equal(r.c[0].last_used, 0);
    assert_string_equal(r.c[0].user, "alice");
    assert_int_equal(r.c[1].created, 2000);
    assert_int_equal(r.c[1].id[0], 0x02);
    assert_int_equal(r.c[1].user_handle_len, 32);
    assert_memory_equal(r.c[1].user_handle, newer.user_handle, 32);
    assert_int_equal(r.c[1].cose_key_len, newer.cose_key_len);
    assert_memory_equal(r.cose[1], newer.cose_key, newer.cose_key_len);
    assert_int_equal(creds_list(f, "bob").n, 0);
}

static void webauthn_use_requires_a_growing_counter_or_both_zero(void **state)
{
    struct fixture *f = *state;
    struct store_webauthn_cred c = make_cred("alice", 0x07, 0);
    EXPECT_STATUS(f, 0, store_webauthn_add(f->db, &c, CB));
    EXPECT_STATUS(f, 0, store_webauthn_use(f->db, "alice", c.id, c.id_len, 0, CB));
    EXPECT_STATUS(f, 0, store_webauthn_use(f->db, "alice", c.id, c.id_len, 0, CB));
    EXPECT_STATUS(f, 0, store_webauthn_use(f->db, "alice", c.id, c.id_len, 5, CB));
    EXPECT_STATUS(f, -ESTALE, store_webauthn_use(f->db, "alice", c.id, c.id_len, 5, CB));
    EXPECT_STATUS(f, -ESTALE, store_webauthn_use(f->db, "alice", c.id, c.id_len, 4, CB));
    EXPECT_STATUS(f, -ESTALE, store_webauthn_use(f->db, "alice", c.id, c.id_len, 0, CB));
    EXPECT_STATUS(f, 0, store_webauthn_use(f->db, "alice", c.id, c.id_len, 4000000000u, CB));
    EXPECT_STATUS(f, -ENOENT, store_webauthn_use(f->db, "bob", c.id, c.id_len, 4000000001u, CB));
    uint8_t unknown[16] = { 0 };
    EXPECT_STATUS(f, -ENOENT, store_webauthn_use(f->db, "alice", unknown, 16, 1, CB));
    struct creds_rec r = creds_list(f, "alice");
    assert_int_equal(r.n, 1);
    assert_int_equal(r.c[0].sign_count, 4000000000u);
    assert_true(r.c[0].last_used > 1600000000);
}

static void webauthn_delete_one_or_all(void **state)
{
    struct fixture *f = *state;
    struct store_webauthn_cred a = make_cred("alice", 0x0a, 0);
    struct store_webauthn_cred b = make_cred("alice", 0x0b, 0);
    struct store_webauthn_cred c = make_cred("alice", 0x0c, 0);
    EXPECT_STATUS(f, 0, store_webauthn_add(f->db, &a, CB));
    EXPECT_STATUS(f, 0, store_webauthn_add(f->db, &b, CB));
    EXPECT_STATUS(f, 0, store_webauthn_add(f->db, &c, CB));
    EXPECT_STATUS(f, -ENOENT, store_webauthn_delete(f->db, "bob", a.id, a.id_len, CB));
    EXPECT_STATUS(f, 0, store_webauthn_delete(f->db, "alice", a.id, a.id_len, CB));
    EXPECT_STATUS(f, -ENOENT, store_webauthn_delete(f->db, "alice", a.id, a.id_len, CB));
    struct creds_rec r = creds_list(f, "alice");
    assert_int_equal(r.n, 2);
    assert_int_equal(r.c[0].id[0], 0x0b);
    EXPECT_STATUS(f, 0, store_webauthn_delete(f->db, "alice", NULL, 0, CB));
    assert_int_equal(creds_list(f, "alice").n, 0);
    EXPECT_STATUS(f, -ENOENT, store_webauthn_delete(f->db, "alice", NULL, 0, CB));
}

/* ---- vault ---- */

static void vault_put_replaces_and_delete_by_kind_or_all(void **state)
{
    struct fixture *f = *state;
    struct vault_rec v = vault_get(f, "alice");
    assert_int_equal(v.status, 0);
    assert_int_equal(v.n, 0);
    EXPECT_STATUS(f, 0, store_vault_put(f->db, "alice", "scram", blob1, sizeof(blob1), CB));
    EXPECT_STATUS(f, 0, store_vault_put(f->db, "alice", "fast", NULL, 0, CB));
    EXPECT_STATUS(f, 0, store_vault_put(f->db, "alice", "scram", blob2, sizeof(blob2), CB));
    EXPECT_STATUS(f, 0, store_vault_put(f->db, "bob", "scram", blob1, sizeof(blob1), CB));
    v = vault_get(f, "alice");
    assert_int_equal(v.n, 2);
    assert_string_equal(v.kind[0], "fast");
    assert_int_equal(v.len[0], 0);
    assert_string_equal(v.kind[1], "scram");
    assert_int_equal(v.len[1], sizeof(blob2));
    assert_memory_equal(v.blob[1], blob2, sizeof(blob2));

    EXPECT_STATUS(f, 0, store_vault_delete(f->db, "alice", "fast", CB));
    EXPECT_STATUS(f, -ENOENT, store_vault_delete(f->db, "alice", "fast", CB));
    assert_int_equal(vault_get(f, "alice").n, 1);
    EXPECT_STATUS(f, 0, store_vault_delete(f->db, "alice", NULL, CB));
    EXPECT_STATUS(f, -ENOENT, store_vault_delete(f->db, "alice", NULL, CB));
    assert_int_equal(vault_get(f, "alice").n, 0);
    assert_int_equal(vault_get(f, "bob").n, 1);
}

/* ---- arguments ---- */

static void bad_arguments_fail_in_the_callback_at_their_bounds(void **state)
{
    struct fixture *f = *state;
    static char user[STORE_USER_MAX + 1];
    memset(user, 'u', sizeof(user) - 1);
    user[STORE_USER_MAX - 1] = '\0'; /* the longest allowed */
    EXPECT_STATUS(f, 0, store_totp_create(f->db, user, SECRET, CB));
    user[STORE_USER_MAX - 1] = 'u'; /* one more */
    EXPECT_STATUS(f, -EMSGSIZE, store_totp_create(f->db, user, SECRET, CB));
    EXPECT_STATUS(f, -EINVAL, store_totp_create(f->db, NULL, SECRET, CB));
    EXPECT_STATUS(f, -EINVAL, store_totp_create(f->db, "", SECRET, CB));

    char secret[129];
    memset(secret, 'A', 128);
    secret[128] = '\0';
    EXPECT_STATUS(f, -EMSGSIZE, store_totp_create(f->db, "carol", secret, CB));
    secret[127] = '\0';
    EXPECT_STATUS(f, 0, store_totp_create(f->db, "carol", secret, CB));
    assert_int_equal(strlen(totp_get(f, "carol").t.secret), 127);

    static uint8_t big[64 * 1024 + 1];
    EXPECT_STATUS(f, 0, store_vault_put(f->db, "alice", "scram", big, sizeof(big) - 1, CB));
    EXPECT_STATUS(f, -EMSGSIZE, store_vault_put(f->db, "alice", "scram", big, sizeof(big), CB));
    EXPECT_STATUS(f, -EINVAL, store_vault_put(f->db, "alice", "scram", NULL, 3, CB));
    EXPECT_STATUS(
        f, -EMSGSIZE,
        store_vault_put(f->db, "alice", "0123456789012345678901234567890123", big, 1, CB));

    struct store_webauthn_cred c = make_cred("alice", 1, 0);
    c.id_len = 0;
    EXPECT_STATUS(f, -EINVAL, store_webauthn_add(f->db, &c, CB));
    c.id_len = sizeof(c.id) + 1;
    EXPECT_STATUS(f, -EMSGSIZE, store_webauthn_add(f->db, &c, CB));
    c.id_len = sizeof(c.id);
    EXPECT_STATUS(f, 0, store_webauthn_add(f->db, &c, CB));
    c.cose_key_len = 0;
    EXPECT_STATUS(f, -EINVAL, store_webauthn_add(f->db, &c, CB));
    EXPECT_STATUS(f, -EINVAL, store_webauthn_add(f->db, NULL, CB));

    struct store_token t = { .kind = 3, .exp = 1 };
    snprintf(t.id, sizeof(t.id), "jti");
    snprintf(t.user, sizeof(t.user), "alice");
    EXPECT_STATUS(f, -EINVAL, store_token_put(f->db, &t, CB));
    EXPECT_STATUS(f, -EINVAL, store_token_delete(f->db, NULL, CB));
    EXPECT_STATUS(f, -EINVAL, store_token_delete_family(f->db, "", CB));
    EXPECT_STATUS(f, -EINVAL, store_token_delete_user(f->db, NULL, CB));
}

/* ---- push ---- */

static void push_put_replaces_by_user_and_endpoint(void **state)
{
    struct fixture *f = *state;
    put_push(f, "alice", "https://push.example/1", "laptop");
    put_push(f, "alice", "https://push.example/2", "phone");
    put_push(f, "alice", "https://push.example/1", "laptop-2");
    put_push(f, "bob", "https://push.example/1", "bob");
    struct push_rec *r = push_list(f, "alice");
    assert_int_equal(r->status, 0);
    assert_int_equal(r->n, 2);
    int laptop = strcmp(r->s[0].endpoint, "https://push.example/1") == 0 ? 0 : 1;
    assert_string_equal(r->s[laptop].resource, "laptop-2");
    assert_string_equal(r->s[laptop].user, "alice");
    assert_string_equal(r->s[laptop].auth, "tBHItJI5svbpez7KI4CCXg");
    assert_string_equal(r->s[1 - laptop].resource, "phone");
    EXPECT_STATUS(f, 0, store_push_delete(f->db, "alice", "https://push.example/1", CB));
    EXPECT_STATUS(f, -ENOENT, store_push_delete(f->db, "alice", "https://push.example/1", CB));
    assert_int_equal(push_list(f, "alice")->n, 1);
    assert_int_equal(push_list(f, "bob")->n, 1);
    assert_int_equal(push_list(f, "carol")->n, 0);
}

/* ---- account deletion ---- */

static void user_forget_removes_every_row_of_the_user_only(void **state)
{
    struct fixture *f = *state;
    const char *users[] = { "alice", "bob" };
    for (int i = 0; i < 2; i++) {
        const char *u = users[i];
        EXPECT_STATUS(f, 0, store_totp_create(f->db, u, SECRET, CB));
        struct store_webauthn_cred c = make_cred(u, (uint8_t)(0x10 + i), 0);
        EXPECT_STATUS(f, 0, store_webauthn_add(f->db, &c, CB));
        EXPECT_STATUS(f, 0, store_vault_put(f->db, u, "scram", blob1, sizeof(blob1), CB));
        char id[32];
        snprintf(id, sizeof(id), "tok-%s", u);
        put_token(f, id, u, "fam", STORE_TOKEN_REFRESH, 9999999999);
        put_push(f, u, "https://push.example/x", "r");
    }
    EXPECT_STATUS(f, 0, store_user_forget(f->db, "alice", CB));
    static const char *const tables[] = { "totp", "webauthn_cred", "vault", "tokens", "push_sub" };
    for (size_t i = 0; i < 5; i++) {
        char q[128];
        snprintf(q, sizeof(q), "SELECT count(*) FROM %s WHERE user = 'alice'", tables[i]);
        assert_int_equal(raw_int(f, q), 0);
        snprintf(q, sizeof(q), "SELECT count(*) FROM %s WHERE user = 'bob'", tables[i]);
        assert_int_equal(raw_int(f, q), 1);
    }
    EXPECT_STATUS(f, 0, store_user_forget(f->db, "alice", CB)); /* nothing left: still 0 */
}

int main(void)
{
    log_set_level(LOG_LEVEL_WARN);
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(totp_create_keeps_the_first_secret_and_delete_removes_it),
        T(totp_use_step_accepts_only_newer_steps),
        T(webauthn_add_lists_oldest_first_and_rejects_a_taken_id),
        T(webauthn_use_requires_a_growing_counter_or_both_zero),
        T(webauthn_delete_one_or_all),
        T(vault_put_replaces_and_delete_by_kind_or_all),
        T(bad_arguments_fail_in_the_callback_at_their_bounds),
        T(push_put_replaces_by_user_and_endpoint),
        T(user_forget_removes_every_row_of_the_user_only),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
