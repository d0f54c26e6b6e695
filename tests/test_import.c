/* test_import.c -- st_import as a library call: statistics, replacing a store whose
 * write-ahead log is left over or still in use, and an error keeps the old store. */
#include "harness.h"
#include "history.h"
#include "import.h"
#include "nb_err.h"
#include "store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* A small data set in t_tmpdir()/name with n_users users of two orders each. */
static const char *make_set(const char *name, int n_users) {
    static char dir[512];
    snprintf(dir, sizeof dir, "%s/%s", t_tmpdir(), name);
    mkdir(dir, 0777);
    t_put(dir, "departments.csv", "department_id,department\n1,d\n");
    t_put(dir, "aisles.csv", "aisle_id,aisle\n1,a\n");
    t_put(dir, "products.csv",
          "product_id,product_name,aisle_id,department_id\n1,p1,1,1\n2,p2,1,1\n");
    char path[600];
    snprintf(path, sizeof path, "%s/orders.csv", dir);
    FILE *o = fopen(path, "w");
    snprintf(path, sizeof path, "%s/order_products__prior.csv", dir);
    FILE *p = fopen(path, "w");
    if (!o || !p) return NULL;
    fputs("order_id,user_id,eval_set,order_number,order_dow,order_hour_of_day,days_since_prior_"
          "order\n",
          o);
    fputs("order_id,product_id,add_to_cart_order,reordered\n", p);
    for (int u = 1; u <= n_users; u++) {
        fprintf(o, "%d,%d,prior,1,1,1,\n%d,%d,test,2,1,1,5.0\n", 2 * u, u, 2 * u + 1, u);
        fprintf(p, "%d,1,1,0\n%d,2,2,0\n", 2 * u, 2 * u);
    }
    fclose(o);
    fclose(p);
    return dir;
}

static long long count(sqlite3 *db, const char *sql) {
    sqlite3_stmt *st;
    long long n = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return n;
}

static int file_size(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 ? (int)sb.st_size : -1;
}

static int copy_file(const char *from, const char *to) {
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", from, to);
    return system(cmd);
}

static int test_import_stats(void) {
    char db_path[512], err[NB_ERRLEN];
    snprintf(db_path, sizeof db_path, "%s/stats.db", t_tmpdir());
    const char *dir = make_set("stats", 7);
    T_ASSERT(dir != NULL, "data set");
    st_import_stats s;
    T_ASSERT(st_import(dir, NULL, db_path, 0, &s, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(s.users == 7 && s.orders == 14 && s.orders_prior == 7 && s.orders_test == 7 &&
                 s.orders_train == 0,
             "orders %lld users %lld", s.orders, s.users);
    T_ASSERT(s.items == 14 && s.items_prior == 14 && s.items_train == 0 && s.products == 2,
             "items %lld", s.items);
    T_ASSERT(s.seconds > 0 && s.seconds >= s.seconds_rows && s.seconds_rows >= 0, "timings");
    sqlite3 *db;
    T_ASSERT(st_open(&db, db_path, 1, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(count(db, "SELECT count(*) FROM orders WHERE days_since_prior_order = 5") == 7,
             "15.0-style days");
    T_ASSERT(count(db, "SELECT count(*) FROM orders WHERE days_since_prior_order IS NULL") == 7,
             "NULL days");
    T_ASSERT(count(db, "SELECT count(*) FROM sqlite_master WHERE name = 'orders_by_user'") == 1,
             "index rebuilt");
    sqlite3_close(db);
    return T_PASS;
}

/* A stale, non-empty WAL next to the old store (its writer crashed) must not be read as
 * the new store's log: it is checkpointed into the old store before the rename. */
static int test_import_over_stale_wal(void) {
    char db_path[512], wal[600], saved[600], err[NB_ERRLEN];
    snprintf(db_path, sizeof db_path, "%s/stale.db", t_tmpdir());
    snprintf(wal, sizeof wal, "%s-wal", db_path);
    snprintf(saved, sizeof saved, "%s/saved-wal", t_tmpdir());
    T_ASSERT(st_import(make_set("stale_a", 3), NULL, db_path, 0, NULL, err, sizeof err) == NB_OK,
             "%s", err);
    sqlite3 *db;
    T_ASSERT(st_open(&db, db_path, 0, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(sqlite3_exec(db, "PRAGMA wal_autocheckpoint=0; INSERT INTO users VALUES (999);", NULL,
                          NULL, NULL) == SQLITE_OK,
             "%s", sqlite3_errmsg(db));
    T_ASSERT(file_size(wal) > 0, "the write is in the WAL");
    T_ASSERT(copy_file(wal, saved) == 0, "save the WAL");
    sqlite3_close(db); /* checkpoints and deletes the WAL */
    T_ASSERT(copy_file(saved, wal) == 0, "put the WAL back, as a crash would have left it");
    T_ASSERT(st_import(make_set("stale_b", 5), NULL, db_path, 0, NULL, err, sizeof err) == NB_OK,
             "%s", err);
    T_ASSERT(file_size(wal) <= 0, "no WAL content left next to the new store");
    T_ASSERT(st_open(&db, db_path, 1, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(count(db, "SELECT count(*) FROM users") == 5, "the new store's users only: %lld",
             count(db, "SELECT count(*) FROM users"));
    T_ASSERT(count(db, "SELECT count(*) FROM users WHERE user_id = 999") == 0,
             "nothing from the old WAL");
    T_ASSERT(count(db, "PRAGMA integrity_check") != -1, "integrity");
    sqlite3_close(db);
    return T_PASS;
}

/* While another connection holds a read snapshot that pins un-checkpointed WAL frames, the
 * import refuses to replace the store (message names the WAL) and leaves it untouched. */
static int test_import_wal_in_use(void) {
    char db_path[512], tmp_prefix[600], err[NB_ERRLEN];
    snprintf(db_path, sizeof db_path, "%s/busy.db", t_tmpdir());
    T_ASSERT(st_import(make_set("busy_a", 3), NULL, db_path, 0, NULL, err, sizeof err) == NB_OK,
             "%s", err);
    sqlite3 *w, *r;
    T_ASSERT(st_open(&w, db_path, 0, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(st_open(&r, db_path, 1, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(sqlite3_exec(w, "PRAGMA wal_autocheckpoint=0; INSERT INTO users VALUES (999);", NULL,
                          NULL, NULL) == SQLITE_OK,
             "%s", sqlite3_errmsg(w));
    /* the reader's snapshot includes user 999; the writer then adds more frames */
    T_ASSERT(sqlite3_exec(r, "BEGIN; SELECT count(*) FROM users;", NULL, NULL, NULL) == SQLITE_OK,
             "read txn");
    T_ASSERT(sqlite3_exec(w, "INSERT INTO users VALUES (1000);", NULL, NULL, NULL) == SQLITE_OK,
             "write");
    int rc = st_import(make_set("busy_b", 5), NULL, db_path, 0, NULL, err, sizeof err);
    T_ASSERT(rc == NB_EIO, "refused while in use, got %d: %s", rc, err);
    T_ASSERT(strstr(err, "busy.db-wal") && strstr(err, "not replacing"), "message: %s", err);
    sqlite3_exec(r, "COMMIT", NULL, NULL, NULL);
    T_ASSERT(count(w, "SELECT count(*) FROM users") == 5, "old store intact (3 users + 2 added)");
    sqlite3_close(r);
    sqlite3_close(w);
    snprintf(tmp_prefix, sizeof tmp_prefix, "ls '%s' | grep -q 'busy.db.tmp'", t_tmpdir());
    T_ASSERT(system(tmp_prefix) != 0, "no temporary files left");
    /* once the writer is gone the same import goes through */
    T_ASSERT(st_import(make_set("busy_b", 5), NULL, db_path, 0, NULL, err, sizeof err) == NB_OK,
             "%s", err);
    T_ASSERT(st_open(&r, db_path, 1, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(count(r, "SELECT count(*) FROM users") == 5 &&
                 count(r, "SELECT max(user_id) FROM users") == 5,
             "new");
    sqlite3_close(r);
    return T_PASS;
}

/* Files with headers only are a valid, empty store; the history of it is empty too. */
static int test_import_empty(void) {
    char dir[512], db_path[600], err[NB_ERRLEN];
    snprintf(dir, sizeof dir, "%s/empty", t_tmpdir());
    mkdir(dir, 0777);
    t_put(dir, "departments.csv", "department_id,department\n");
    t_put(dir, "aisles.csv", "aisle_id,aisle\r\n");
    t_put(dir, "products.csv", "product_id,product_name,aisle_id,department_id");
    t_put(dir, "orders.csv",
          "order_id,user_id,eval_set,order_number,order_dow,order_hour_of_day,days_since_prior_"
          "order\n\n");
    t_put(dir, "order_products__prior.csv", "order_id,product_id,add_to_cart_order,reordered\n");
    snprintf(db_path, sizeof db_path, "%s/empty.db", t_tmpdir());
    st_import_stats s;
    T_ASSERT(st_import(dir, NULL, db_path, 0, &s, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(s.users == 0 && s.orders == 0 && s.items == 0 && s.products == 0, "all zero");
    sqlite3 *db;
    st_history h;
    T_ASSERT(st_open(&db, db_path, 1, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(st_history_load(&h, db, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(h.n_users == 0 && h.n_orders == 0 && h.n_items == 0 && h.n_products == 0,
             "empty history");
    T_ASSERT(h.user_order_off && h.user_order_off[0] == 0 && h.order_item_off &&
                 h.order_item_off[0] == 0,
             "offset arrays still have their one element");
    st_history_free(&h);
    sqlite3_close(db);
    return T_PASS;
}

int main(void) {
    T_RUN(test_import_empty);
    T_RUN(test_import_stats);
    T_RUN(test_import_over_stale_wal);
    T_RUN(test_import_wal_in_use);
    return t_summary();
}
