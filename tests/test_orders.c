/* test_orders.c -- storage/orders.h: the append of one order to a served store by the
 * importer's rules (order_number, eval_set, reordered, add_to_cart_order, new users),
 * idempotence by order_id, conflicts, unknown products, nothing written on any refusal,
 * the busy timeout against another writer, and readers that are never blocked. */
#include "harness.h"
#include "history.h"
#include "import.h"
#include "nb_err.h"
#include "orders.h"
#include "reader.h"
#include "store.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Products 1..5. User 1: prior 10 {1, 2}, prior 11 {2, 3}, train 12 {1}. User 2: prior 20
 * {1}, test 21 (no items). Imported into a fresh store "<tmp>/<name>.db"; returns its path. */
static const char *make_store(const char *name) {
    static char db[600];
    char dir[512], err[NB_ERRLEN];
    snprintf(dir, sizeof dir, "%s/%s", t_tmpdir(), name);
    mkdir(dir, 0777);
    t_put(dir, "departments.csv", "department_id,department\n1,d\n");
    t_put(dir, "aisles.csv", "aisle_id,aisle\n1,a\n");
    t_put(dir, "products.csv",
          "product_id,product_name,aisle_id,department_id\n1,p1,1,1\n2,p2,1,1\n3,p3,1,1\n"
          "4,p4,1,1\n5,p5,1,1\n");
    t_put(dir, "orders.csv",
          "order_id,user_id,eval_set,order_number,order_dow,order_hour_of_day,"
          "days_since_prior_order\n"
          "10,1,prior,1,1,9,\n11,1,prior,2,2,9,7\n12,1,train,3,3,9,7\n"
          "20,2,prior,1,1,1,\n21,2,test,2,1,1,30\n");
    t_put(dir, "order_products__prior.csv",
          "order_id,product_id,add_to_cart_order,reordered\n"
          "10,1,1,0\n10,2,2,0\n11,2,1,1\n11,3,2,0\n20,1,1,0\n");
    t_put(dir, "order_products__train.csv",
          "order_id,product_id,add_to_cart_order,reordered\n12,1,1,1\n");
    snprintf(db, sizeof db, "%s.db", dir);
    if (st_import(dir, NULL, db, 0, NULL, err, sizeof err) != NB_OK) {
        fprintf(stderr, "import: %s\n", err);
        return NULL;
    }
    return db;
}

/* One integer from a query on a fresh connection (-1 on error). */
static long long q1(const char *db, const char *sql) {
    sqlite3 *d = NULL;
    sqlite3_stmt *st = NULL;
    long long v = -1;
    if (sqlite3_open_v2(db, &d, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(d, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(d);
    return v;
}

/* Every row of the three tables an append writes, as one number that changes with any of
 * them (counts and sums). */
static long long fingerprint(const char *db) {
    return q1(db, "SELECT (SELECT COUNT(*) + SUM(user_id) FROM users) * 1000003 + "
                  "(SELECT COUNT(*) + SUM(order_id * 7 + eval_set * 3 + order_number) FROM orders) "
                  "* 1009 + (SELECT COUNT(*) + SUM(order_id + product_id * 5 + reordered * 11 + "
                  "add_to_cart_order) FROM order_items)");
}

static st_order order(int32_t id, int32_t user, const int32_t *p, int n) {
    return (st_order){.order_id = id, .user_id = user, .order_dow = 4, .order_hour = 18,
                      .days_since = 6, .products = p, .n_products = n};
}

static int test_append_rules(void) {
    const char *db = make_store("rules");
    T_ASSERT(db, "store");
    st_writer *w = NULL;
    char err[NB_ERRLEN];
    T_ASSERT(st_writer_open(&w, db, 1000, err, sizeof err) == NB_OK, "%s", err);
    int32_t p[] = {4, 2, 1}, unk[3];
    st_order o = order(100, 1, p, 3);
    st_order_result r;
    int busy = 0;
    T_ASSERT(st_order_append(w, &o, &r, unk, &busy, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(r.outcome == ST_ORDER_ADDED && r.order_number == 4 && r.n_products == 3 &&
                 r.n_reordered == 2 && !r.new_user,
             "outcome %d number %lld reordered %d new %d", r.outcome, (long long)r.order_number,
             r.n_reordered, r.new_user);
    /* the new order is the user's 'train' order, the old one is history now */
    T_ASSERT(q1(db, "SELECT eval_set * 100 + order_number * 10 + order_dow FROM orders "
                    "WHERE order_id = 100") == 144,
             "new order row");
    T_ASSERT(q1(db, "SELECT eval_set FROM orders WHERE order_id = 12") == 0, "12 demoted");
    T_ASSERT(q1(db, "SELECT COUNT(*) FROM orders WHERE user_id = 1 AND eval_set <> 0") == 1,
             "one final order");
    /* cart positions and reordered flags: 4 is new, 2 and 1 were bought before */
    T_ASSERT(q1(db, "SELECT group_concat(add_to_cart_order || ':' || product_id || ':' || "
                    "reordered, ' ') = '1:4:0 2:2:1 3:1:1' FROM order_items WHERE order_id = 100") == 1,
             "items");
    /* user 2's last order is a test order (no items): it becomes prior, no days given */
    int32_t p2[] = {5};
    o = order(101, 2, p2, 1);
    o.days_since = -1;
    T_ASSERT(st_order_append(w, &o, &r, unk, &busy, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(r.outcome == ST_ORDER_ADDED && r.order_number == 3 && r.n_reordered == 0, "user 2");
    T_ASSERT(q1(db, "SELECT eval_set FROM orders WHERE order_id = 21") == 0, "test demoted");
    T_ASSERT(q1(db, "SELECT days_since_prior_order IS NULL FROM orders WHERE order_id = 101") == 1,
             "days NULL");
    /* a new user, then that user's second order */
    int32_t p3[] = {3, 5}, p4[] = {5, 2};
    o = order(102, 9, p3, 2);
    T_ASSERT(st_order_append(w, &o, &r, unk, &busy, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(r.outcome == ST_ORDER_ADDED && r.new_user && r.order_number == 1 && r.n_reordered == 0,
             "new user");
    o = order(103, 9, p4, 2);
    T_ASSERT(st_order_append(w, &o, &r, unk, &busy, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(r.outcome == ST_ORDER_ADDED && !r.new_user && r.order_number == 2 &&
                 r.n_reordered == 1,
             "second order of the new user");
    T_ASSERT(q1(db, "SELECT COUNT(*) FROM users WHERE user_id = 9") == 1, "user row");
    T_ASSERT(q1(db, "SELECT eval_set FROM orders WHERE order_id = 102") == 0, "102 demoted");
    st_writer_free(w);
    /* what the importer would accept: the store loads as a whole, and the server's
     * one-user read sees the new orders in order_number order */
    sqlite3 *d = NULL;
    st_history h = {0};
    T_ASSERT(st_open(&d, db, 1, err, sizeof err) == NB_OK, "%s", err);
    int rc = st_history_load(&h, d, err, sizeof err);
    int u = rc ? -1 : st_user_index(&h, 9);
    int ok = u >= 0 && h.user_order_off[u + 1] - h.user_order_off[u] == 2 &&
        h.order_ids[h.user_order_off[u] + 1] == 103 && h.eval_set[h.user_order_off[u] + 1] == 1;
    st_history_free(&h);
    st_close(d);
    T_ASSERT(rc == NB_OK && ok, "history of user 9 (%s)", rc ? err : "");
    return T_PASS;
}

static int test_idempotent_and_refusals(void) {
    const char *db = make_store("idem");
    T_ASSERT(db, "store");
    st_writer *w = NULL;
    char err[NB_ERRLEN];
    T_ASSERT(st_writer_open(&w, db, 1000, err, sizeof err) == NB_OK, "%s", err);
    int32_t p[] = {3, 4}, unk[4];
    st_order o = order(200, 1, p, 2);
    st_order_result r, r0;
    int busy = 0;
    T_ASSERT(st_order_append(w, &o, &r0, unk, &busy, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(r0.outcome == ST_ORDER_ADDED, "first");
    /* another order later, so that 200 is no longer the user's last: the retry still
     * describes 200 as it was added */
    int32_t q[] = {5};
    st_order o2 = order(201, 1, q, 1);
    T_ASSERT(st_order_append(w, &o2, &r, unk, &busy, err, sizeof err) == NB_OK, "%s", err);
    long long fp = fingerprint(db);
    T_ASSERT(st_order_append(w, &o, &r, unk, &busy, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(r.outcome == ST_ORDER_SAME && r.order_number == r0.order_number &&
                 r.n_products == r0.n_products && r.n_reordered == r0.n_reordered,
             "retry: outcome %d", r.outcome);
    T_ASSERT(fingerprint(db) == fp, "the retry wrote");
    /* conflicts: each field, and the products */
    struct {
        st_order o;
        const char *why;
    } cf[6];
    int32_t other[] = {4, 3}, fewer[] = {3};
    for (int i = 0; i < 6; i++) cf[i].o = o;
    cf[0].o.user_id = 2, cf[0].why = "user_id 1, this request 2";
    cf[1].o.order_dow = 5, cf[1].why = "order_dow 4, this request 5";
    cf[2].o.order_hour = 3, cf[2].why = "order_hour_of_day 18, this request 3";
    cf[3].o.days_since = -1, cf[3].why = "days_since_prior_order 6, this request null";
    cf[4].o.products = other, cf[4].why = "product 1 is 3, this request's 4";
    cf[5].o.products = fewer, cf[5].o.n_products = 1, cf[5].why = "2 products, this request 1";
    for (int i = 0; i < 6; i++) {
        T_ASSERT(st_order_append(w, &cf[i].o, &r, unk, &busy, err, sizeof err) == NB_OK, "%s",
                 err);
        T_ASSERT(r.outcome == ST_ORDER_CONFLICT && strstr(r.why, cf[i].why), "conflict %d: %d '%s'",
                 i, r.outcome, r.why);
    }
    /* an imported order under the same id is a conflict too */
    st_order o3 = order(12, 1, p, 2);
    T_ASSERT(st_order_append(w, &o3, &r, unk, &busy, err, sizeof err) == NB_OK &&
                 r.outcome == ST_ORDER_CONFLICT,
             "imported order id");
    /* unknown products: all named, in request order, nothing written */
    int32_t bad[] = {1, 77, 2, 88};
    st_order o4 = order(300, 1, bad, 4);
    T_ASSERT(st_order_append(w, &o4, &r, unk, &busy, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(r.outcome == ST_ORDER_UNKNOWN && r.n_unknown == 2 && unk[0] == 77 && unk[1] == 88,
             "unknown: %d %d", r.outcome, r.n_unknown);
    /* rule breaks: NB_EINVAL, nothing written */
    int32_t dup[] = {1, 2, 1};
    st_order inv[4] = {order(301, 1, dup, 3), order(302, 1, p, 2), order(303, 1, p, 0),
                       order(304, 1, p, 2)};
    inv[1].order_dow = 7;
    inv[3].days_since = 31;
    for (int i = 0; i < 4; i++)
        T_ASSERT(st_order_append(w, &inv[i], &r, unk, &busy, err, sizeof err) == NB_EINVAL,
                 "invalid %d accepted", i);
    T_ASSERT(strstr(err, "days_since_prior_order 31"), "message: %s", err);
    T_ASSERT(fingerprint(db) == fp, "a refusal wrote");
    st_writer_free(w);
    return T_PASS;
}

/* Another writer holds the store: the append waits busy_ms and fails with *busy, writing
 * nothing; a reader reads all along, and a reader's open snapshot never blocks the append. */
static int test_busy_and_readers(void) {
    const char *db = make_store("busy");
    T_ASSERT(db, "store");
    st_writer *w = NULL;
    st_reader *rd = NULL;
    st_history cat = {0}, uh = {0};
    sqlite3 *other = NULL, *c0 = NULL;
    char err[NB_ERRLEN];
    T_ASSERT(st_writer_open(&w, db, 100, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(sqlite3_open(db, &other) == SQLITE_OK &&
                 sqlite3_exec(other, "BEGIN IMMEDIATE; INSERT INTO users VALUES (55)", NULL, NULL,
                              NULL) == SQLITE_OK,
             "other writer");
    int32_t p[] = {1}, unk[1];
    st_order o = order(400, 1, p, 1);
    st_order_result r;
    int busy = 0;
    double t0 = nb_now();
    int rc = st_order_append(w, &o, &r, unk, &busy, err, sizeof err);
    double dt = nb_now() - t0;
    T_ASSERT(rc == NB_EDB && busy && dt >= 0.09 && dt < 2, "rc %d busy %d after %.3f s", rc, busy,
             dt);
    /* the reader is not blocked by the other writer's open transaction */
    T_ASSERT(st_open(&c0, db, 1, err, sizeof err) == NB_OK &&
                 st_catalog_load(&cat, c0, err, sizeof err) == NB_OK,
             "%s", err);
    T_ASSERT(st_reader_open(&rd, db, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(st_reader_begin(rd, err, sizeof err) == NB_OK &&
                 st_reader_user(rd, &cat, 1, &uh, err, sizeof err) == NB_OK &&
                 uh.user_order_off[1] == 3,
             "read during the other write: %s", err);
    sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL);
    /* the reader still holds its snapshot: the append goes through regardless */
    t0 = nb_now();
    rc = st_order_append(w, &o, &r, unk, &busy, err, sizeof err);
    T_ASSERT(rc == NB_OK && r.outcome == ST_ORDER_ADDED && nb_now() - t0 < 0.09,
             "append under a reader: %d", rc);
    T_ASSERT(st_reader_user(rd, &cat, 1, &uh, err, sizeof err) == NB_OK &&
                 uh.user_order_off[1] == 3,
             "the snapshot changed");
    T_ASSERT(st_reader_commit(rd, err, sizeof err) == NB_OK &&
                 st_reader_begin(rd, err, sizeof err) == NB_OK &&
                 st_reader_user(rd, &cat, 1, &uh, err, sizeof err) == NB_OK &&
                 uh.user_order_off[1] == 4 && uh.order_ids[3] == 400,
             "the next snapshot does not see the order");
    st_reader_commit(rd, err, sizeof err);
    st_reader_free(rd);
    st_history_free(&cat);
    st_close(c0);
    sqlite3_close(other);
    st_writer_free(w);
    return T_PASS;
}

static int test_not_wal(void) {
    const char *db = make_store("rollback");
    T_ASSERT(db, "store");
    sqlite3 *d = NULL;
    T_ASSERT(sqlite3_open(db, &d) == SQLITE_OK &&
                 sqlite3_exec(d, "PRAGMA journal_mode=DELETE", NULL, NULL, NULL) == SQLITE_OK,
             "journal mode");
    sqlite3_close(d);
    st_writer *w = NULL;
    char err[NB_ERRLEN];
    T_ASSERT(st_writer_open(&w, db, 100, err, sizeof err) == NB_EDB && !w &&
                 strstr(err, "not in WAL mode") && strstr(err, db),
             "%s", err);
    return T_PASS;
}

int main(void) {
    T_RUN(test_append_rules);
    T_RUN(test_idempotent_and_refusals);
    T_RUN(test_busy_and_readers);
    T_RUN(test_not_wal);
    return t_summary();
}
