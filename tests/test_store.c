/* test_store.c -- st_create / st_open (schema version, read-only mode, WAL) and the query
 * plans of the two hot queries (no full scans). */
#include "harness.h"
#include "nb_err.h"
#include "store.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

/* ---- moved here from storage/store.c: only this test uses it ---- */

/* Creates the store at path (which must not exist), applies the schema and switches it to
 * WAL. Returns NB_OK and *db (caller closes), NB_EIO (path exists) or NB_EDB. On error *db is
 * NULL and a file SQLite created is removed. */
static int st_create(sqlite3 **db, const char *path, char *err, size_t errlen) {
    *db = NULL;
    struct stat sb;
    if (stat(path, &sb) == 0) return nb_err(err, errlen, NB_EIO, "%s: already exists", path);
    sqlite3 *d = NULL;
    int rc = NB_OK;
    char *msg = NULL;
    if (sqlite3_open_v2(path, &d, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        rc = nb_err(err, errlen, NB_EDB, "%s: cannot create store: %s", path,
                    d ? sqlite3_errmsg(d) : "out of memory");
        goto fail;
    }
    if (sqlite3_exec(d, "BEGIN", NULL, NULL, &msg) != SQLITE_OK ||
        sqlite3_exec(d, st_schema_sql(), NULL, NULL, &msg) != SQLITE_OK ||
        sqlite3_exec(d, "COMMIT", NULL, NULL, &msg) != SQLITE_OK ||
        sqlite3_exec(d, "PRAGMA journal_mode=WAL", NULL, NULL, &msg) != SQLITE_OK) {
        rc = nb_err(err, errlen, NB_EDB, "%s: applying schema.sql: %s", path,
                    msg ? msg : sqlite3_errmsg(d));
        goto fail;
    }
    sqlite3_busy_timeout(d, 5000);
    *db = d;
    return NB_OK;
fail:
    sqlite3_free(msg);
    sqlite3_close(d);
    st_remove_files(path);
    return rc;
}


/* The two hot queries, as the server and the candidate builder run them. */
static const char *const q_last_n =
    "SELECT o.order_id, o.order_number, i.add_to_cart_order, i.product_id "
    "FROM (SELECT order_id, order_number FROM orders WHERE user_id = ?1 "
    "      ORDER BY order_number DESC LIMIT ?2) o "
    "JOIN order_items i ON i.order_id = o.order_id ORDER BY o.order_number, i.add_to_cart_order";
static const char *const q_prior_items =
    "SELECT i.product_id, i.reordered FROM orders o JOIN order_items i ON i.order_id = o.order_id "
    "WHERE o.user_id = ?1 AND o.eval_set = 0";
/* st_userq's two statements (storage/history.c). */
static const char *const q_user_orders =
    "SELECT order_id, eval_set, order_dow, order_hour_of_day, days_since_prior_order "
    "FROM orders WHERE user_id = ?1 ORDER BY order_number";
static const char *const q_order_items =
    "SELECT product_id, reordered FROM order_items WHERE order_id = ?1 ORDER BY add_to_cart_order";

static int user_version(sqlite3 *db) {
    sqlite3_stmt *st;
    int v = -1;
    if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return v;
}

static int test_store_create_open(void) {
    char path[512], err[NB_ERRLEN];
    snprintf(path, sizeof path, "%s/s.db", t_tmpdir());
    sqlite3 *db = NULL;
    T_ASSERT(st_open(&db, path, 1, err, sizeof err) == NB_ENOTFOUND && db == NULL, "missing store");
    T_ASSERT(strstr(err, path) && strstr(err, "nb-import"), "message names file and fix: %s", err);
    T_ASSERT(st_create(&db, path, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(user_version(db) == ST_SCHEMA_VERSION, "user_version %d", user_version(db));
    sqlite3_stmt *st;
    T_ASSERT(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL) == SQLITE_OK &&
                 sqlite3_step(st) == SQLITE_ROW,
             "journal_mode");
    T_ASSERT(strcmp((const char *)sqlite3_column_text(st, 0), "wal") == 0, "WAL, got %s",
             sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    T_ASSERT(sqlite3_exec(db, "INSERT INTO users VALUES (7)", NULL, NULL, NULL) == SQLITE_OK,
             "writable");
    sqlite3_close(db);
    T_ASSERT(st_create(&db, path, err, sizeof err) == NB_EIO && strstr(err, "already exists"),
             "create twice: %s", err);

    T_ASSERT(st_open(&db, path, 1, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(sqlite3_exec(db, "INSERT INTO users VALUES (8)", NULL, NULL, NULL) == SQLITE_READONLY,
             "read-only");
    sqlite3_close(db);
    T_ASSERT(st_open(&db, path, 0, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL) == SQLITE_OK,
             "set version");
    sqlite3_close(db);
    T_ASSERT(st_open(&db, path, 1, err, sizeof err) == NB_EMISMATCH && db == NULL,
             "version mismatch");
    T_ASSERT(strstr(err, "99") && strstr(err, "re-import"), "hint: %s", err);

    char junk[512];
    snprintf(junk, sizeof junk, "%s/junk.db", t_tmpdir());
    FILE *f = fopen(junk, "w");
    T_ASSERT(f != NULL, "junk");
    fputs("this is not a database, just some text long enough to look like a header.....", f);
    fclose(f);
    T_ASSERT(st_open(&db, junk, 1, err, sizeof err) == NB_EDB && db == NULL, "not a database: %s",
             err);
    T_ASSERT(strstr(err, "junk.db") != NULL, "%s", err);

    char nodir[512];
    snprintf(nodir, sizeof nodir, "%s/no/such/dir/x.db", t_tmpdir());
    T_ASSERT(st_create(&db, nodir, err, sizeof err) == NB_EDB && db == NULL, "bad directory");
    T_ASSERT(strstr(st_schema_sql(), "CREATE TABLE order_items") != NULL, "schema text embedded");
    return T_PASS;
}

/* Collects the EXPLAIN QUERY PLAN detail lines of sql into buf ("|"-separated). */
static int plan(sqlite3 *db, const char *sql, char *buf, size_t n) {
    char q[2048];
    snprintf(q, sizeof q, "EXPLAIN QUERY PLAN %s", sql);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, q, -1, &st, NULL) != SQLITE_OK) return -1;
    size_t len = 0;
    buf[0] = 0;
    while (sqlite3_step(st) == SQLITE_ROW && len < n)
        len +=
            (size_t)snprintf(buf + len, n - len, "%s|", (const char *)sqlite3_column_text(st, 3));
    sqlite3_finalize(st);
    return 0;
}

/* 1 when the plan reads the table `t` with a full scan ("SCAN t" without an index). */
static int full_scan(const char *p, const char *t) {
    char pat[64];
    snprintf(pat, sizeof pat, "SCAN %s|", t);
    return strstr(p, pat) != NULL;
}

static int test_hot_query_plans(void) {
    char path[512], err[NB_ERRLEN], p[4096];
    snprintf(path, sizeof path, "%s/plans.db", t_tmpdir());
    sqlite3 *db = NULL;
    T_ASSERT(st_create(&db, path, err, sizeof err) == NB_OK, "%s", err);
    /* Rows, and statistics, so that the planner chooses by real costs. */
    T_ASSERT(
        sqlite3_exec(
            db,
            "INSERT INTO users VALUES (1),(2);"
            "INSERT INTO orders VALUES (10,1,0,1,0,0,NULL),(11,1,0,2,0,0,3),(12,2,0,1,0,0,NULL);"
            "INSERT INTO order_items VALUES (10,1,5,0),(10,2,6,0),(11,1,5,1),(12,1,7,0);"
            /* 300 more users of 10 orders of 10 items: the statistics of a real store */
            "WITH RECURSIVE n(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM n WHERE x < 2999) "
            "INSERT INTO orders SELECT 1000 + x, 100 + x / 10, 0, 1 + x % 10, 0, 0, NULL FROM n;"
            "INSERT INTO users SELECT DISTINCT user_id FROM orders WHERE user_id >= 100;"
            "WITH RECURSIVE n(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM n WHERE x < 29999) "
            "INSERT INTO order_items SELECT 1000 + x / 10, 1 + x % 10, x % 97, 0 FROM n;"
            "ANALYZE;",
            NULL, NULL, NULL) == SQLITE_OK,
        "%s", sqlite3_errmsg(db));
    T_ASSERT(plan(db, q_last_n, p, sizeof p) == 0, "%s", sqlite3_errmsg(db));
    T_ASSERT(strstr(p, "orders_by_user (user_id=?)") && strstr(p, "PRIMARY KEY (order_id=?)"),
             "last N: %s", p);
    T_ASSERT(!full_scan(p, "orders") && !full_scan(p, "order_items") && !full_scan(p, "i"),
             "last N scans: %s", p);
    T_ASSERT(plan(db, q_prior_items, p, sizeof p) == 0, "%s", sqlite3_errmsg(db));
    T_ASSERT(strstr(p, "orders_by_user (user_id=?)") && strstr(p, "PRIMARY KEY (order_id=?)"),
             "prior: %s", p);
    T_ASSERT(!full_scan(p, "o") && !full_scan(p, "i"), "prior items scans: %s", p);
    T_ASSERT(plan(db, q_user_orders, p, sizeof p) == 0, "%s", sqlite3_errmsg(db));
    T_ASSERT(strstr(p, "orders_by_user (user_id=?)") && !strstr(p, "TEMP B-TREE"),
             "user orders: %s", p);
    T_ASSERT(plan(db, q_order_items, p, sizeof p) == 0, "%s", sqlite3_errmsg(db));
    T_ASSERT(strstr(p, "PRIMARY KEY (order_id=?)") && !strstr(p, "TEMP B-TREE"), "order items: %s",
             p);

    /* and they return the right rows: the last 1 order of user 1 is order 11 with product 5 */
    sqlite3_stmt *st;
    T_ASSERT(sqlite3_prepare_v2(db, q_last_n, -1, &st, NULL) == SQLITE_OK, "prepare");
    sqlite3_bind_int(st, 1, 1);
    sqlite3_bind_int(st, 2, 1);
    T_ASSERT(sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 0) == 11 &&
                 sqlite3_column_int(st, 3) == 5,
             "last order");
    T_ASSERT(sqlite3_step(st) == SQLITE_DONE, "one item");
    sqlite3_finalize(st);
    sqlite3_close(db);
    return T_PASS;
}

int main(void) {
    T_RUN(test_store_create_open);
    T_RUN(test_hot_query_plans);
    return t_summary();
}
