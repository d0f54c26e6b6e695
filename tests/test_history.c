/* test_history.c -- st_history_load and st_userq_load against each other and against the
 * CSV files read independently (tests/history_dump.py, Python's csv module), on the real
 * data sets in ../shared/data (skipped when absent) and on a hand-made one. */
#include "harness.h"
#include "history.h"
#include "import.h"
#include "nb_err.h"
#include "store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Writes h in history_dump.py's text form. Returns 0 or -1. */
static int dump_history(const st_history *h, const char *path) {
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    for (int p = 0; p < h->n_products; p++)
        fprintf(f, "P %d %d %d\n", h->product_ids[p], h->product_aisle[p], h->product_dept[p]);
    for (int u = 0; u < h->n_users; u++) {
        fprintf(f, "U %d\n", h->user_ids[u]);
        for (int64_t o = h->user_order_off[u]; o < h->user_order_off[u + 1]; o++) {
            fprintf(f, "O %d %d %d %d %d :", h->order_ids[o], h->eval_set[o], h->dow[o], h->hour[o],
                    h->days_since[o]);
            for (int64_t i = h->order_item_off[o]; i < h->order_item_off[o + 1]; i++)
                fprintf(f, " %d/%d", h->product_ids[h->items[i]], h->reordered[i]);
            fputc('\n', f);
        }
    }
    return fclose(f) == 0 ? 0 : -1;
}

/* 1 when the two files have identical bytes. */
static int same_file(const char *a, const char *b) {
    char cmd[2600];
    snprintf(cmd, sizeof cmd, "cmp -s '%s' '%s'", a, b);
    return system(cmd) == 0;
}

/* Compares user u of the whole history h with a one-user history q (borrowing h's catalogue).
 * Returns NULL or a description of the first difference (static buffer). */
static const char *same_user(const st_history *h, int u, const st_history *q) {
    static char why[256];
    int64_t o0 = h->user_order_off[u], no = h->user_order_off[u + 1] - o0;
    if (q->n_users != 1 || q->user_ids[0] != h->user_ids[u]) return "user id";
    if (q->user_order_off[0] != 0 || q->user_order_off[1] != no || q->n_orders != no)
        return "order count";
    if (q->product_ids != h->product_ids || q->n_products != h->n_products)
        return "catalogue not borrowed";
    for (int64_t k = 0; k < no; k++) {
        int64_t o = o0 + k;
        if (q->order_ids[k] != h->order_ids[o] || q->eval_set[k] != h->eval_set[o] ||
            q->dow[k] != h->dow[o] || q->hour[k] != h->hour[o] ||
            q->days_since[k] != h->days_since[o]) {
            snprintf(why, sizeof why, "order %lld of user %d", (long long)k, h->user_ids[u]);
            return why;
        }
        int64_t n = h->order_item_off[o + 1] - h->order_item_off[o];
        if (q->order_item_off[k + 1] - q->order_item_off[k] != n) return "basket size";
        for (int64_t i = 0; i < n; i++)
            if (q->items[q->order_item_off[k] + i] != h->items[h->order_item_off[o] + i] ||
                q->reordered[q->order_item_off[k] + i] != h->reordered[h->order_item_off[o] + i])
                return "item";
    }
    return NULL;
}

/* Imports dir (catalogue from cat) and checks history vs CSV and userq vs history for every
 * user. Returns T_PASS / T_FAIL. */
static int check_data_set(const char *name, const char *dir, const char *cat) {
    char db_path[512], got[512], want[512], cmd[2048], err[NB_ERRLEN];
    snprintf(db_path, sizeof db_path, "%s/%s.db", t_tmpdir(), name);
    snprintf(got, sizeof got, "%s/%s.got", t_tmpdir(), name);
    snprintf(want, sizeof want, "%s/%s.want", t_tmpdir(), name);
    T_ASSERT(st_import(dir, cat, db_path, 0, NULL, err, sizeof err) == NB_OK, "%s", err);
    sqlite3 *db = NULL;
    T_ASSERT(st_open(&db, db_path, 1, err, sizeof err) == NB_OK, "%s", err);
    st_history h, q;
    T_ASSERT(st_history_load(&h, db, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(dump_history(&h, got) == 0, "writing %s", got);
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 tests/history_dump.py '%s' '%s' > '%s'", dir,
             cat ? cat : dir, want);
    T_ASSERT(system(cmd) == 0, "%s failed", cmd);
    T_ASSERT(same_file(got, want), "%s: history differs from the CSV files (diff %s %s)", name, got,
             want);
    st_userq *uq = NULL;
    T_ASSERT(st_userq_open(&uq, db, err, sizeof err) == NB_OK, "%s", err);
    for (int u = 0; u < h.n_users; u++) {
        T_ASSERT(st_userq_load(uq, &h, h.user_ids[u], &q, err, sizeof err) == NB_OK, "%s", err);
        const char *d = same_user(&h, u, &q);
        T_ASSERT(d == NULL, "%s: userq differs for user %d: %s", name, h.user_ids[u], d);
    }
    int32_t missing = h.user_ids[h.n_users - 1] + 1;
    T_ASSERT(st_userq_load(uq, &h, missing, &q, err, sizeof err) == NB_ENOTFOUND, "unknown user");
    T_ASSERT(strstr(err, "no such user") != NULL, "%s", err);
    T_ASSERT(st_user_index(&h, h.user_ids[3]) == 3 && st_user_index(&h, missing) == -1,
             "user index");
    T_ASSERT(st_product_index(&h, h.product_ids[7]) == 7, "product index");
    st_history c;
    T_ASSERT(st_catalog_load(&c, db, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(c.n_products == h.n_products && c.n_users == 0 && c.n_orders == 0, "catalogue only");
    T_ASSERT(memcmp(c.product_ids, h.product_ids, (size_t)h.n_products * 4) == 0, "same products");
    st_history_free(&c);
    st_userq_free(uq);
    st_history_free(&h);
    sqlite3_close(db);
    return T_PASS;
}

static int test_history_sample64(void) {
    const char *d = t_data_dir();
    if (!d) T_SKIP("../shared/data absent");
    char dir[512], cat[512];
    snprintf(dir, sizeof dir, "%s/instacart-sample64", d);
    snprintf(cat, sizeof cat, "%s/instacart-catalog", d);
    return check_data_set("sample64", dir, cat);
}

static int test_history_tafeng(void) {
    const char *d = t_data_dir();
    if (!d) T_SKIP("../shared/data absent");
    char dir[512];
    snprintf(dir, sizeof dir, "%s/tafeng", d);
    return check_data_set("tafeng", dir, NULL);
}

/* A hand-made set where file order differs from history order: users, order numbers, order
 * ids and cart positions all appear shuffled; product ids are sparse (binary-search path). */
static int test_history_shuffled(void) {
    char dir[512], db_path[600], got[600], want[600], cmd[2048], err[NB_ERRLEN];
    snprintf(dir, sizeof dir, "%s/shuf", t_tmpdir());
    mkdir(dir, 0777);
    t_put(dir, "departments.csv", "department_id,department\n1,a\n2,b\n");
    t_put(dir, "aisles.csv", "aisle_id,aisle\n7,x\n3,y\n");
    t_put(dir, "products.csv",
          "product_id,product_name,aisle_id,department_id\n900000,\"Big, "
          "\"\"one\"\"\",7,2\n5,small,3,1\n40,mid,3,2\n");
    t_put(dir, "orders.csv",
          "order_id,user_id,eval_set,order_number,order_dow,order_hour_of_day,days_since_prior_"
          "order\n"
          "50,9,prior,2,1,10,3.0\n10,9,prior,1,0,9,\n30,2,train,3,6,23,30\n20,2,prior,1,2,0,\n"
          "40,2,prior,2,3,4,0\n60,9,test,3,5,5,7\n");
    t_put(dir, "order_products__prior.csv",
          "order_id,product_id,add_to_cart_order,reordered\n40,5,2,1\n10,900000,1,0\n40,40,1,0\n50,"
          "900000,1,1\n"
          "20,5,1,0\n50,5,3,0\n50,40,2,0\n");
    t_put(dir, "order_products__train.csv",
          "order_id,product_id,add_to_cart_order,reordered\n30,40,1,1\n");
    snprintf(db_path, sizeof db_path, "%s/shuf.db", t_tmpdir());
    snprintf(got, sizeof got, "%s/shuf.got", t_tmpdir());
    snprintf(want, sizeof want, "%s/shuf.want", t_tmpdir());
    st_import_stats s;
    T_ASSERT(st_import(dir, NULL, db_path, 0, &s, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(s.users == 2 && s.orders == 6 && s.items == 8 && s.products == 3, "stats");
    sqlite3 *db = NULL;
    T_ASSERT(st_open(&db, db_path, 1, err, sizeof err) == NB_OK, "%s", err);
    st_history h;
    T_ASSERT(st_history_load(&h, db, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(h.n_users == 2 && h.user_ids[0] == 2 && h.user_ids[1] == 9, "users ascending");
    T_ASSERT(h.order_ids[0] == 20 && h.order_ids[1] == 40 && h.order_ids[2] == 30,
             "order_number order");
    T_ASSERT(h.product_ids[0] == 5 && h.product_ids[2] == 900000, "products ascending");
    /* order 40: cart 1 = product 40 (index 1), cart 2 = product 5 (index 0) */
    T_ASSERT(h.items[h.order_item_off[1]] == 1 && h.items[h.order_item_off[1] + 1] == 0,
             "cart order");
    T_ASSERT(h.days_since[0] == -1 && h.days_since[4] == 3, "days: NULL -> -1, 3.0 -> 3");
    T_ASSERT(h.order_item_off[6] - h.order_item_off[5] == 0 && h.eval_set[5] == 2,
             "test order has no items");
    T_ASSERT(dump_history(&h, got) == 0, "dump");
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 tests/history_dump.py '%s' > '%s'", dir, want);
    T_ASSERT(system(cmd) == 0, "%s", cmd);
    T_ASSERT(same_file(got, want), "history differs from CSV (diff %s %s)", got, want);
    st_userq *uq = NULL;
    st_history q;
    T_ASSERT(st_userq_open(&uq, db, err, sizeof err) == NB_OK, "%s", err);
    for (int u = 0; u < h.n_users; u++) {
        T_ASSERT(st_userq_load(uq, &h, h.user_ids[u], &q, err, sizeof err) == NB_OK, "%s", err);
        const char *d = same_user(&h, u, &q);
        T_ASSERT(d == NULL, "user %d: %s", h.user_ids[u], d);
    }
    st_userq_free(uq);
    st_history_free(&h);
    sqlite3_close(db);
    return T_PASS;
}

int main(void) {
    T_RUN(test_history_shuffled);
    T_RUN(test_history_sample64);
    T_RUN(test_history_tafeng);
    return t_summary();
}
