/* test_cands_real.c -- candidates, product statistics, repeat features and explanations on
 * the real Instacart sample (../shared/data/instacart-sample64 with the real catalogue),
 * through the real import and history loader. Skips when the data is absent. */
#include "candgen.h"
#include "candidates.h"
#include "cands_util.h"
#include "explain.h"
#include "harness.h"
#include "history.h"
#include "import.h"
#include "nb_err.h"
#include "repfeat.h"
#include "rng.h"
#include "store.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char g_csv[400], g_cat[400], g_db[1024];

/* 1 when the sample and the catalogue are present (paths in g_csv, g_cat). */
static int have_data(void) {
    const char *d = t_data_dir();
    if (!d) return 0;
    snprintf(g_csv, sizeof g_csv, "%s/instacart-sample64", d);
    snprintf(g_cat, sizeof g_cat, "%s/instacart-catalog", d);
    return access(g_csv, R_OK) == 0 && access(g_cat, R_OK) == 0;
}

static int test_real_tables(void) {
    char err[NB_ERRLEN];
    if (!have_data())
        T_SKIP("instacart-sample64 or instacart-catalog absent under %s",
               getenv("NB_DATA") ? getenv("NB_DATA") : "../shared/data");
    snprintf(g_db, sizeof g_db, "%s/s64.db", t_tmpdir());
    const char *path = g_db;
    T_ASSERT(st_import(g_csv, g_cat, path, 0, NULL, err, sizeof err) == NB_OK, "import: %s", err);
    sqlite3 *db;
    st_history h;
    T_ASSERT(st_open(&db, path, 0, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(st_history_load(&h, db, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(h.n_users == 64 && h.n_products == 49688, "%d users %d products", h.n_users,
             h.n_products);
    int P = h.n_products, E = 32;
    float *emb = nb_xmalloc((size_t)P * E * sizeof *emb);
    nb_rng r;
    nb_rng_seed(&r, 11);
    for (size_t i = 0; i < (size_t)P * E; i++) emb[i] = (float)nb_rng_normal(&r);
    tr_cands c;
    T_ASSERT(tr_cands_build(&c, &h, emb, P, E, NULL, TR_CANDS_DEFAULT, 2, err, sizeof err) == NB_OK,
             "%s", err);
    /* every product bought before the next order is in; sizes max(3000, bought) */
    uint8_t *in = nb_xcalloc((size_t)P, 1);
    int32_t *cb = nb_xmalloc((size_t)P * sizeof *cb); /* a decoded set */
    for (int u = 0; u < h.n_users; u++) {
        int n;
        const int32_t *s = tr_cands_user(&c, u, cb, &n);
        for (int k = 0; k < n; k++) in[s[k]] = 1;
        int64_t end = tr_cands_default_end(&h, u);
        T_ASSERT(end == h.user_order_off[u + 1] - 1 || end == h.user_order_off[u + 1],
                 "next order of user %d is the last one", h.user_ids[u]);
        for (int64_t i = h.order_item_off[h.user_order_off[u]]; i < h.order_item_off[end]; i++)
            T_ASSERT(in[h.items[i]], "user %d: bought product %d missing", h.user_ids[u],
                     h.product_ids[h.items[i]]);
        T_ASSERT(n >= TR_CANDS_DEFAULT, "size %d", n);
        for (int k = 0; k < n; k++) in[s[k]] = 0;
    }
    free(in);
    tr_cand_recall rec;
    T_ASSERT(tr_cands_recall(&c, &h, NULL, &rec, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(rec.n_users == 37 && rec.micro > 0 && rec.micro <= 1, "recall over %d users: %g",
             rec.n_users, rec.micro);
    /* product statistics equal a direct SQL count over the prior orders */
    tr_product_stats ps, ps2;
    T_ASSERT(tr_product_stats_compute(&ps, &h, err, sizeof err) == NB_OK, "%s", err);
    sqlite3_stmt *q;
    T_ASSERT(sqlite3_prepare_v2(db,
                                "SELECT product_id, count(*), sum(reordered) FROM order_items "
                                "JOIN orders USING (order_id) WHERE eval_set = 0 "
                                "GROUP BY product_id",
                                -1, &q, NULL) == SQLITE_OK,
             "%s", sqlite3_errmsg(db));
    int64_t total = 0, rows = 0;
    while (sqlite3_step(q) == SQLITE_ROW) {
        int p = st_product_index(&h, sqlite3_column_int(q, 0));
        T_ASSERT(p >= 0 && ps.n_items[p] == sqlite3_column_int64(q, 1) &&
                     ps.n_reordered[p] == sqlite3_column_int64(q, 2),
                 "product %d", sqlite3_column_int(q, 0));
        total += ps.n_items[p];
        rows++;
    }
    sqlite3_finalize(q);
    int64_t all = 0;
    for (int p = 0; p < P; p++) all += ps.n_items[p];
    T_ASSERT(rows > 100 && all == total, "no other counts (%lld vs %lld)", (long long)all,
             (long long)total);
    /* model row, candidates and stats in one transaction */
    T_ASSERT(tu_begin_model(db, 7) == SQLITE_OK, "%s", sqlite3_errmsg(db));
    T_ASSERT(tr_cands_write(db, 7, &c, &h, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(tr_product_stats_write(db, 7, &ps, &h, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK, "%s", sqlite3_errmsg(db));
    sqlite3_close(db);
    /* the server's view: read-only */
    T_ASSERT(st_open(&db, path, 1, err, sizeof err) == NB_OK, "%s", err);
    sqlite3_stmt *st;
    T_ASSERT(st_cand_stmt(db, &st, err, sizeof err) == NB_OK, "%s", err);
    int32_t *buf = nb_xmalloc((size_t)P * sizeof *buf);
    for (int u = 0; u < h.n_users; u++) {
        int n, m;
        const int32_t *want = tr_cands_user(&c, u, cb, &m);
        T_ASSERT(st_cand_load(st, 7, h.user_ids[u], P, buf, P, &n, err, sizeof err) == NB_OK, "%s",
                 err);
        T_ASSERT(n == m && !memcmp(buf, want, (size_t)n * sizeof *buf), "user %d", h.user_ids[u]);
    }
    sqlite3_finalize(st);
    T_ASSERT(tr_product_stats_load(&ps2, db, 7, &h, err, sizeof err) == NB_OK, "%s", err);
    for (int p = 0; p < P; p++)
        T_ASSERT(ps2.reorder_rate[p] == ps.reorder_rate[p] && ps2.log_pop[p] == ps.log_pop[p],
                 "stats of product index %d", p);
    /* features and explanations: user 1 bought Soda (product 196) in all 10 prior orders */
    tr_features f;
    tr_names nm;
    T_ASSERT(tr_names_load(&nm, db, &h, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(tr_features_init(&f, P, err, sizeof err) == NB_OK, "%s", err);
    int u1 = st_user_index(&h, 1), soda = st_product_index(&h, 196);
    T_ASSERT(u1 == 0 && soda >= 0 && !strcmp(nm.name[soda], "Soda"), "user 1, Soda");
    T_ASSERT(tr_features_user(&f, &h, u1, tr_cands_default_end(&h, u1), &ps2, err, sizeof err) ==
                 NB_OK,
             "%s", err);
    int j = tr_features_find(&f, soda);
    T_ASSERT(f.n_orders == 10 && j >= 0 && f.raw[j].n_with == 10 && f.raw[j].since == 0 &&
                 f.feat[(size_t)j * TR_N_FEATURES + TR_F_SHARE] == 1.0f,
             "Soda: %d of %d orders", j >= 0 ? f.raw[j].n_with : -1, f.n_orders);
    tr_explainer x = {P, E, emb, &nm};
    char out[256];
    T_ASSERT(tr_explain(out, sizeof out, &x, &f, soda) > 0 &&
                 !strcmp(out, "bought in 5 of your last 5 orders"),
             "Soda: '%s'", out);
    /* a product user 1 never bought: the companion is one of the user's products, by name */
    int banana = st_product_index(&h, 24852);
    T_ASSERT(banana >= 0 && tr_features_find(&f, banana) < 0, "user 1 never bought bananas");
    T_ASSERT(tr_explain(out, sizeof out, &x, &f, banana) > 0 &&
                 !strncmp(out, "new for you: often bought with ", 31),
             "banana: '%s'", out);
    int found = 0;
    for (int k = 0; k < f.n; k++) found |= !strcmp(out + 31, nm.name[f.prod[k]]);
    T_ASSERT(found, "'%s' names one of user 1's products", out);
    tr_features_free(&f);
    tr_names_free(&nm);
    tr_product_stats_free(&ps);
    tr_product_stats_free(&ps2);
    sqlite3_close(db);
    free(buf);
    free(cb);
    free(emb);
    tr_cands_free(&c);
    st_history_free(&h);
    return T_PASS;
}

int main(void) {
    T_RUN(test_real_tables);
    return t_summary();
}
