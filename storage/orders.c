/* orders.c -- one completed order appended to a served store (see orders.h). */
#include "orders.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nb_err.h"
#include "rkstore.h"
#include "store.h"

/* The statements, prepared once per writer. */
enum {
    S_BEGIN,
    S_COMMIT,
    S_ROLLBACK,
    S_FIND,
    S_ITEMS,
    S_PRODUCT,
    S_ADD_USER,
    S_LAST,
    S_BOUGHT,
    S_DEMOTE,
    S_INS_ORDER,
    S_INS_ITEM,
    S_UNRANK,
    S_N
};
static const char *const sql_of[S_N] = {
    [S_BEGIN] = "BEGIN IMMEDIATE",
    [S_COMMIT] = "COMMIT",
    [S_ROLLBACK] = "ROLLBACK",
    [S_FIND] = "SELECT user_id, order_number, order_dow, order_hour_of_day, "
               "days_since_prior_order FROM orders WHERE order_id = ?1",
    [S_ITEMS] = "SELECT product_id, reordered FROM order_items WHERE order_id = ?1 "
                "ORDER BY add_to_cart_order",
    [S_PRODUCT] = "SELECT 1 FROM products WHERE product_id = ?1",
    [S_ADD_USER] = "INSERT OR IGNORE INTO users(user_id) VALUES (?1)",
    /* the user's last order: a descending step on orders_by_user */
    [S_LAST] = "SELECT order_id, order_number, eval_set FROM orders WHERE user_id = ?1 "
               "ORDER BY order_number DESC LIMIT 1",
    /* every product the user has bought (hot query 2 of schema.sql) */
    [S_BOUGHT] = "SELECT i.product_id FROM orders o JOIN order_items i ON i.order_id = o.order_id "
                 "WHERE o.user_id = ?1",
    [S_DEMOTE] = "UPDATE orders SET eval_set = 0 WHERE order_id = ?1",
    [S_INS_ORDER] = "INSERT INTO orders(order_id, user_id, eval_set, order_number, order_dow, "
                    "order_hour_of_day, days_since_prior_order) VALUES (?1, ?2, 1, ?3, ?4, ?5, ?6)",
    [S_INS_ITEM] = "INSERT INTO order_items(order_id, add_to_cart_order, product_id, reordered) "
                   "VALUES (?1, ?2, ?3, ?4)",
    /* the user's precomputed rankings (storage/userrank.h) are stale from this order on:
     * every model's, each found by its primary key */
    [S_UNRANK] = "DELETE FROM user_rankings WHERE model_id IN (SELECT model_id FROM models) "
                 "AND user_id = ?1",
};

struct st_writer {
    sqlite3 *db;
    char path[512];
    sqlite3_stmt *st[S_N];
    int32_t *buf; /* scratch: the user's bought products, then the request's sorted */
    size_t cap;
};

/* Grows w->buf to hold n ids. */
static void buf_need(st_writer *w, size_t n) {
    if (n <= w->cap) return;
    size_t cap = w->cap ? w->cap : 256;
    while (cap < n) cap *= 2;
    w->buf = nb_xrealloc(w->buf, cap * sizeof *w->buf);
    w->cap = cap;
}

static int cmp_i32(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* See orders.h. */
int st_writer_open(st_writer **out, const char *path, int busy_ms, char *err, size_t errlen) {
    st_writer *w = nb_xcalloc(1, sizeof *w);
    sqlite3_stmt *jm = NULL;
    snprintf(w->path, sizeof w->path, "%s", path);
    int rc = st_open(&w->db, path, 0, err, errlen);
    if (rc) goto done;
    sqlite3_busy_timeout(w->db, busy_ms);
    /* WAL is what lets the readers go on during an append; a store created by nb-import
     * is in WAL mode, and the mode is persistent, so anything else is a foreign store */
    if (sqlite3_prepare_v2(w->db, "PRAGMA journal_mode", -1, &jm, NULL) != SQLITE_OK ||
        sqlite3_step(jm) != SQLITE_ROW) {
        rc = nb_err(err, errlen, NB_EDB, "%s: PRAGMA journal_mode: %s", path,
                    sqlite3_errmsg(w->db));
        goto done;
    }
    const char *mode = (const char *)sqlite3_column_text(jm, 0);
    if (!mode || strcmp(mode, "wal") != 0) {
        rc = nb_err(err, errlen, NB_EDB,
                    "%s: the store is in journal mode '%s', not in WAL mode (readers would wait "
                    "for every order written); run: sqlite3 %s 'PRAGMA journal_mode=WAL'",
                    path, mode ? mode : "?", path);
        goto done;
    }
    if (sqlite3_exec(w->db, "PRAGMA synchronous=FULL", NULL, NULL, NULL) != SQLITE_OK) {
        rc = nb_err(err, errlen, NB_EDB, "%s: PRAGMA synchronous: %s", path,
                    sqlite3_errmsg(w->db));
        goto done;
    }
    /* a store trained before user_rankings existed gets it now (empty), so that the delete
     * below is always there: a later nb-train's rows are then deleted as they go stale */
    rc = st_rk_ensure_tables(w->db, err, errlen);
    for (int i = 0; i < S_N && !rc; i++) {
        if (sqlite3_prepare_v3(w->db, sql_of[i], -1, SQLITE_PREPARE_PERSISTENT, &w->st[i], NULL) !=
            SQLITE_OK)
            rc = nb_err(err, errlen, NB_EDB, "%s: preparing '%s': %s", path, sql_of[i],
                        sqlite3_errmsg(w->db));
    }
done:
    sqlite3_finalize(jm);
    if (rc) {
        st_writer_free(w);
        w = NULL;
    }
    *out = w;
    return rc;
}

/* See orders.h. */
void st_writer_free(st_writer *w) {
    if (!w) return;
    for (int i = 0; i < S_N; i++) sqlite3_finalize(w->st[i]);
    if (w->db) sqlite3_close(w->db);
    free(w->buf);
    free(w);
}

/* Reports the failed step of statement i: NB_EDB naming it, *busy set when SQLite said
 * another connection holds the lock. */
static int db_fail(st_writer *w, int i, int *busy, char *err, size_t errlen) {
    int ec = sqlite3_errcode(w->db);
    if (ec == SQLITE_BUSY || ec == SQLITE_LOCKED) *busy = 1;
    return nb_err(err, errlen, NB_EDB, "%s: %s: %s", w->path, sql_of[i], sqlite3_errmsg(w->db));
}

/* Steps statement i (parameters bound) to completion and resets it. Returns NB_OK or
 * db_fail's code. */
static int exec_st(st_writer *w, int i, int *busy, char *err, size_t errlen) {
    int s = sqlite3_step(w->st[i]);
    sqlite3_reset(w->st[i]);
    return s == SQLITE_DONE ? NB_OK : db_fail(w, i, busy, err, errlen);
}

/* The rules orders.h lists that need no store. Returns NB_OK or NB_EINVAL naming the field. */
static int check_order(st_writer *w, const st_order *o, char *err, size_t errlen) {
    if (o->order_id < 0 || o->user_id < 0)
        return nb_err(err, errlen, NB_EINVAL, "order_id %d / user_id %d: ids must be >= 0",
                      o->order_id, o->user_id);
    if (o->order_dow < 0 || o->order_dow > 6)
        return nb_err(err, errlen, NB_EINVAL, "order_dow %d: must be 0..6", o->order_dow);
    if (o->order_hour < 0 || o->order_hour > 23)
        return nb_err(err, errlen, NB_EINVAL, "order_hour_of_day %d: must be 0..23", o->order_hour);
    if (o->days_since < -1 || o->days_since > 30)
        return nb_err(err, errlen, NB_EINVAL, "days_since_prior_order %d: must be 0..30 or NULL",
                      o->days_since);
    if (o->n_products < 1 || !o->products)
        return nb_err(err, errlen, NB_EINVAL, "an order needs at least one product");
    buf_need(w, (size_t)o->n_products);
    memcpy(w->buf, o->products, (size_t)o->n_products * sizeof *w->buf);
    qsort(w->buf, (size_t)o->n_products, sizeof *w->buf, cmp_i32);
    for (int i = 1; i < o->n_products; i++)
        if (w->buf[i] == w->buf[i - 1])
            return nb_err(err, errlen, NB_EINVAL, "product_id %d appears twice in the order",
                          w->buf[i]);
    return NB_OK;
}

/* order_id exists (S_FIND has stepped to its row): compares it with o and fills r (SAME or
 * CONFLICT with why). Returns NB_OK or NB_EDB. */
static int compare_stored(st_writer *w, const st_order *o, st_order_result *r, int *busy,
                          char *err, size_t errlen) {
    sqlite3_stmt *f = w->st[S_FIND], *it = w->st[S_ITEMS];
    int32_t user = sqlite3_column_int(f, 0);
    int dow = sqlite3_column_int(f, 2), hour = sqlite3_column_int(f, 3);
    int days = sqlite3_column_type(f, 4) == SQLITE_NULL ? -1 : sqlite3_column_int(f, 4);
    r->order_number = sqlite3_column_int64(f, 1);
    r->outcome = ST_ORDER_CONFLICT;
#define DIFF(name, a, b)                                                                     \
    if ((a) != (b)) {                                                                        \
        snprintf(r->why, sizeof r->why, "it has %s %d, this request %d", name, (int)(a), \
                 (int)(b));                                                                  \
        return NB_OK;                                                                        \
    }
    DIFF("user_id", user, o->user_id);
    DIFF("order_dow", dow, o->order_dow);
    DIFF("order_hour_of_day", hour, o->order_hour);
    if (days != o->days_since) {
        char a[16] = "null", b[16] = "null";
        if (days >= 0) snprintf(a, sizeof a, "%d", days);
        if (o->days_since >= 0) snprintf(b, sizeof b, "%d", o->days_since);
        snprintf(r->why, sizeof r->why, "it has days_since_prior_order %s, this request %s", a, b);
        return NB_OK;
    }
#undef DIFF
    int n = 0, nre = 0, s, rc = NB_OK;
    sqlite3_bind_int(it, 1, o->order_id);
    while ((s = sqlite3_step(it)) == SQLITE_ROW) {
        int32_t pid = sqlite3_column_int(it, 0);
        if (n < o->n_products && pid != o->products[n] && !r->why[0])
            snprintf(r->why, sizeof r->why, "its product %d is %d, this request's %d", n + 1, pid,
                     o->products[n]);
        nre += sqlite3_column_int(it, 1) != 0;
        n++;
    }
    if (s != SQLITE_DONE) rc = db_fail(w, S_ITEMS, busy, err, errlen);
    sqlite3_reset(it);
    if (rc) return rc;
    if (!r->why[0] && n != o->n_products)
        snprintf(r->why, sizeof r->why, "it has %d products, this request %d", n, o->n_products);
    if (r->why[0]) return NB_OK;
    r->outcome = ST_ORDER_SAME;
    r->n_products = n;
    r->n_reordered = nre;
    return NB_OK;
}

/* Writes into unknown[] the product ids of o that are not in products. Returns NB_OK
 * (r->n_unknown set) or NB_EDB. */
static int find_unknown(st_writer *w, const st_order *o, st_order_result *r, int32_t *unknown,
                        int *busy, char *err, size_t errlen) {
    sqlite3_stmt *q = w->st[S_PRODUCT];
    for (int i = 0; i < o->n_products; i++) {
        sqlite3_bind_int(q, 1, o->products[i]);
        int s = sqlite3_step(q);
        sqlite3_reset(q);
        if (s == SQLITE_DONE)
            unknown[r->n_unknown++] = o->products[i];
        else if (s != SQLITE_ROW)
            return db_fail(w, S_PRODUCT, busy, err, errlen);
    }
    return NB_OK;
}

/* The append itself, inside the transaction: the user, the previous last order, the
 * reordered flags, the rows. Returns NB_OK (r filled) or NB_EDB. */
static int insert_order(st_writer *w, const st_order *o, st_order_result *r, int *busy, char *err,
                        size_t errlen) {
    sqlite3_stmt *q;
    int rc, s;
    q = w->st[S_ADD_USER];
    sqlite3_bind_int(q, 1, o->user_id);
    if ((rc = exec_st(w, S_ADD_USER, busy, err, errlen))) return rc;
    r->new_user = sqlite3_changes(w->db) > 0;
    /* the user's last order: its number, and a 'train'/'test' one becomes 'prior' */
    r->order_number = 1;
    q = w->st[S_LAST];
    sqlite3_bind_int(q, 1, o->user_id);
    s = sqlite3_step(q);
    int32_t last_id = 0;
    int last_ev = 0;
    if (s == SQLITE_ROW) {
        last_id = sqlite3_column_int(q, 0);
        r->order_number = sqlite3_column_int64(q, 1) + 1;
        last_ev = sqlite3_column_int(q, 2);
    }
    sqlite3_reset(q);
    if (s != SQLITE_ROW && s != SQLITE_DONE) return db_fail(w, S_LAST, busy, err, errlen);
    if (r->order_number > INT32_MAX)
        return nb_err(err, errlen, NB_EDB, "user_id %d: order_number would pass %d", o->user_id,
                      INT32_MAX);
    if (s == SQLITE_ROW && last_ev != 0) {
        sqlite3_bind_int(w->st[S_DEMOTE], 1, last_id);
        if ((rc = exec_st(w, S_DEMOTE, busy, err, errlen))) return rc;
    }
    /* what the user bought before, sorted, for the reordered flags */
    size_t nb = 0;
    q = w->st[S_BOUGHT];
    sqlite3_bind_int(q, 1, o->user_id);
    while ((s = sqlite3_step(q)) == SQLITE_ROW) {
        buf_need(w, nb + 1);
        w->buf[nb++] = sqlite3_column_int(q, 0);
    }
    sqlite3_reset(q);
    if (s != SQLITE_DONE) return db_fail(w, S_BOUGHT, busy, err, errlen);
    qsort(w->buf, nb, sizeof *w->buf, cmp_i32);
    q = w->st[S_INS_ORDER];
    sqlite3_bind_int(q, 1, o->order_id);
    sqlite3_bind_int(q, 2, o->user_id);
    sqlite3_bind_int64(q, 3, r->order_number);
    sqlite3_bind_int(q, 4, o->order_dow);
    sqlite3_bind_int(q, 5, o->order_hour);
    if (o->days_since >= 0)
        sqlite3_bind_int(q, 6, o->days_since);
    else
        sqlite3_bind_null(q, 6);
    if ((rc = exec_st(w, S_INS_ORDER, busy, err, errlen))) return rc;
    sqlite3_bind_int(w->st[S_UNRANK], 1, o->user_id);
    if ((rc = exec_st(w, S_UNRANK, busy, err, errlen))) return rc;
    q = w->st[S_INS_ITEM];
    for (int i = 0; i < o->n_products; i++) {
        int re = bsearch(&o->products[i], w->buf, nb, sizeof *w->buf, cmp_i32) != NULL;
        sqlite3_bind_int(q, 1, o->order_id);
        sqlite3_bind_int(q, 2, i + 1);
        sqlite3_bind_int(q, 3, o->products[i]);
        sqlite3_bind_int(q, 4, re);
        if ((rc = exec_st(w, S_INS_ITEM, busy, err, errlen))) return rc;
        r->n_reordered += re;
    }
    r->n_products = o->n_products;
    r->outcome = ST_ORDER_ADDED;
    return NB_OK;
}

/* See orders.h. One transaction; every outcome but ADDED ends in a ROLLBACK. */
int st_order_append(st_writer *w, const st_order *o, st_order_result *r, int32_t *unknown,
                    int *busy, char *err, size_t errlen) {
    memset(r, 0, sizeof *r);
    *busy = 0;
    int rc = check_order(w, o, err, errlen);
    if (rc) return rc;
    if ((rc = exec_st(w, S_BEGIN, busy, err, errlen))) return rc;
    sqlite3_stmt *f = w->st[S_FIND];
    sqlite3_bind_int(f, 1, o->order_id);
    int s = sqlite3_step(f);
    if (s == SQLITE_ROW)
        rc = compare_stored(w, o, r, busy, err, errlen);
    else if (s != SQLITE_DONE)
        rc = db_fail(w, S_FIND, busy, err, errlen);
    sqlite3_reset(f);
    if (!rc && !r->outcome) rc = find_unknown(w, o, r, unknown, busy, err, errlen);
    if (!rc && !r->outcome && r->n_unknown) r->outcome = ST_ORDER_UNKNOWN;
    if (!rc && !r->outcome) rc = insert_order(w, o, r, busy, err, errlen);
    if (!rc && r->outcome == ST_ORDER_ADDED) {
        rc = exec_st(w, S_COMMIT, busy, err, errlen);
        if (!rc) return NB_OK;
    }
    /* nothing to keep, or a failure: the transaction goes (a failed COMMIT included) */
    int b2 = 0;
    char e2[64];
    if (!sqlite3_get_autocommit(w->db)) exec_st(w, S_ROLLBACK, &b2, e2, sizeof e2);
    if (rc) memset(r, 0, sizeof *r);
    return rc;
}

/* See orders.h. */
int st_writer_prerank(st_writer *w, int64_t model_id, const st_prerank_row *row, int *written,
                      char *err, size_t errlen) {
    uint8_t wr = 0;
    /* A row can always be computed again, an order cannot: the row's commit skips the fsync
     * (WAL, synchronous=NORMAL: durable at the next synced commit or checkpoint; a crash
     * before loses the row and the user is ranked live), the orders' keep FULL. */
    int rc = sqlite3_exec(w->db, "PRAGMA synchronous=NORMAL", NULL, NULL, NULL) == SQLITE_OK
                 ? NB_OK
                 : nb_err(err, errlen, NB_EDB, "%s: PRAGMA synchronous: %s", w->path,
                          sqlite3_errmsg(w->db));
    if (rc == NB_OK) rc = st_prerank_put_batch(w->db, model_id, row, 1, &wr, err, errlen);
    if (sqlite3_exec(w->db, "PRAGMA synchronous=FULL", NULL, NULL, NULL) != SQLITE_OK && rc == NB_OK)
        rc = nb_err(err, errlen, NB_EDB, "%s: PRAGMA synchronous: %s", w->path,
                    sqlite3_errmsg(w->db));
    *written = wr;
    return rc;
}
