/* test_repfeat.c -- repeat features and product statistics on hand-built histories. */
#include "cands_util.h"
#include "harness.h"
#include "nb_err.h"
#include "repfeat.h"
#include "store.h"

#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

extern const char st_schema_text[]; /* build/gen/schema_sql.c */

#define FEQ(a, b) (fabs((double)(a) - (double)(b)) < 1e-6)

static int test_product_stats(void) {
    st_history h;
    tu_history_script(&h, TU_K_P, TU_K_USERS, tu_k_script);
    tr_product_stats s;
    char err[NB_ERRLEN];
    T_ASSERT(tr_product_stats_compute(&s, &h, err, sizeof err) == NB_OK, "%s", err);
    /* product 1: 5 prior items of user 0 (4 reordered) + 2 of user 1 (1 reordered); the
     * train orders do not count */
    T_ASSERT(s.n_items[1] == 7 && s.n_reordered[1] == 5, "product 1: %lld/%lld",
             (long long)s.n_reordered[1], (long long)s.n_items[1]);
    T_ASSERT(s.n_items[2] == 2 && s.n_reordered[2] == 1, "product 2 (train item excluded)");
    T_ASSERT(s.n_items[0] == 0 && s.reorder_rate[0] == 0 && s.log_pop[0] == 0, "unbought");
    T_ASSERT(FEQ(s.reorder_rate[1], 5.0 / 7) && FEQ(s.log_pop[1], 1.0), "rates of product 1");
    T_ASSERT(FEQ(s.log_pop[2], log(3.0) / log(8.0)), "log_pop of product 2 = %g", s.log_pop[2]);
    tr_product_stats_free(&s);
    st_history_free(&h);
    return T_PASS;
}

static int test_product_stats_sqlite(void) {
    st_history h;
    tu_history_script(&h, TU_K_P, TU_K_USERS, tu_k_script);
    tr_product_stats s, t;
    char err[NB_ERRLEN], path[512];
    T_ASSERT(tr_product_stats_compute(&s, &h, err, sizeof err) == NB_OK, "%s", err);
    snprintf(path, sizeof path, "%s/ps.db", t_tmpdir());
    sqlite3 *db;
    T_ASSERT(sqlite3_open(path, &db) == SQLITE_OK, "open");
    T_ASSERT(sqlite3_exec(db, st_schema_text, NULL, NULL, NULL) == SQLITE_OK, "schema");
    T_ASSERT(tr_product_stats_write(db, 4, &s, &h, err, sizeof err) == NB_EINVAL &&
                 strstr(err, "transaction"),
             "autocommit refused: %s", err);
    T_ASSERT(tu_begin_model(db, 4) == SQLITE_OK, "%s", sqlite3_errmsg(db));
    T_ASSERT(tr_product_stats_write(db, 4, &s, &h, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(tr_product_stats_write(db, 4, &s, &h, err, sizeof err) == NB_OK, "rewrite: %s", err);
    T_ASSERT(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK, "commit");
    T_ASSERT(tr_product_stats_load(&t, db, 4, &h, err, sizeof err) == NB_OK, "%s", err);
    for (int p = 0; p < 10; p++)
        T_ASSERT(t.n_items[p] == s.n_items[p] && t.n_reordered[p] == s.n_reordered[p] &&
                     t.reorder_rate[p] == s.reorder_rate[p] && t.log_pop[p] == s.log_pop[p],
                 "product %d loaded identically", p);
    tr_product_stats_free(&t);
    T_ASSERT(tr_product_stats_load(&t, db, 5, &h, err, sizeof err) == NB_ENOTFOUND &&
                 strstr(err, "model 5"),
             "unknown model: %s", err);
    T_ASSERT(sqlite3_exec(db, "DELETE FROM product_stats WHERE product_id = 31", NULL, NULL,
                          NULL) == SQLITE_OK,
             "delete");
    T_ASSERT(tr_product_stats_load(&t, db, 4, &h, err, sizeof err) == NB_EMISMATCH &&
                 strstr(err, "product_id 31 has no row"),
             "missing row named: %s", err);
    sqlite3_close(db);
    tr_product_stats_free(&s);
    st_history_free(&h);
    return T_PASS;
}

/* Checks one row: raw counts and every feature. */
static int check_row(const tr_features *f, int32_t p, int n_with, int n_last5, int since, int span,
                     int days, int known, const tr_product_stats *s, double ureord, char *why,
                     size_t wl) {
    int j = tr_features_find(f, p);
    if (j < 0) {
        snprintf(why, wl, "product %d not found", p);
        return 1;
    }
    const tr_rep_raw *r = &f->raw[j];
    if (r->n_with != n_with || r->n_last5 != n_last5 || r->since != since || r->span != span ||
        r->days != days || r->days_known != known) {
        snprintf(why, wl, "product %d raw: with %d last5 %d since %d span %d days %d known %d", p,
                 r->n_with, r->n_last5, r->since, r->span, r->days, r->days_known);
        return 1;
    }
    const float *v = f->feat + (size_t)j * TR_N_FEATURES;
    double n = f->n_orders;
    double want[TR_N_FEATURES] = {
        [TR_F_SHARE] = n_with / n,
        [TR_F_LAST5] = n_last5 / 5.0,
        [TR_F_RECENCY] = 1.0 / (1 + since),
        [TR_F_IN_LAST] = since == 0,
        [TR_F_DAYS] = days >= 90 ? 1.0 : days / 90.0,
        [TR_F_DAYS_KNOWN] = known,
        [TR_F_SHARE_SINCE] = (double)n_with / span,
        [TR_F_USER_REORDER] = ureord,
        [TR_F_USER_ORDERS] = log1p(n) / log1p(100.0),
        [TR_F_PROD_REORDER] = s->reorder_rate[p],
        [TR_F_PROD_POP] = s->log_pop[p],
    };
    for (int k = 0; k < TR_N_FEATURES; k++)
        if (!FEQ(v[k], want[k])) {
            snprintf(why, wl, "product %d feature %s = %g, want %g", p, tr_feature_names[k], v[k],
                     want[k]);
            return 1;
        }
    return 0;
}

static int test_features_hand(void) {
    st_history h;
    tu_history_script(&h, TU_K_P, TU_K_USERS, tu_k_script);
    tr_product_stats s;
    tr_features f;
    char err[NB_ERRLEN], why[256];
    T_ASSERT(tr_product_stats_compute(&s, &h, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(tr_features_init(&f, 10, err, sizeof err) == NB_OK, "%s", err);
    /* user 0 before the train order (6 orders; 6 of 12 items reordered) */
    int64_t end0 = h.user_order_off[0] + 6;
    T_ASSERT(tr_features_user(&f, &h, 0, end0, &s, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(f.n == 6 && f.n_orders == 6 && f.n_items == 12, "n %d orders %d items %lld", f.n,
             f.n_orders, (long long)f.n_items);
    for (int k = 0; k < 6; k++) T_ASSERT(f.prod[k] == k + 1, "products ascending");
    /*                       p  with last5 since span days known */
    T_ASSERT(!check_row(&f, 1, 5, 4, 0, 6, 0, 1, &s, 0.5, why, sizeof why), "%s", why);
    T_ASSERT(!check_row(&f, 2, 2, 1, 3, 6, 27, 1, &s, 0.5, why, sizeof why), "%s", why);
    T_ASSERT(!check_row(&f, 3, 1, 1, 4, 5, 37, 1, &s, 0.5, why, sizeof why), "%s", why);
    T_ASSERT(!check_row(&f, 4, 1, 1, 3, 4, 27, 1, &s, 0.5, why, sizeof why), "%s", why);
    T_ASSERT(!check_row(&f, 5, 2, 2, 1, 3, 4, 1, &s, 0.5, why, sizeof why), "%s", why);
    T_ASSERT(!check_row(&f, 6, 1, 1, 0, 1, 0, 1, &s, 0.5, why, sizeof why), "%s", why);
    T_ASSERT(tr_features_find(&f, 7) == -1 && tr_features_find(&f, 0) == -1, "not bought");
    /* the same user with the train order as history (the server's view): 7 orders, 14
     * items of which 8 reordered */
    T_ASSERT(tr_features_user(&f, &h, 0, h.user_order_off[1], &s, err, sizeof err) == NB_OK, "%s",
             err);
    T_ASSERT(!check_row(&f, 1, 6, 4, 0, 7, 0, 1, &s, 8.0 / 14, why, sizeof why), "%s", why);
    T_ASSERT(!check_row(&f, 2, 3, 2, 0, 7, 0, 1, &s, 8.0 / 14, why, sizeof why), "%s", why);
    T_ASSERT(!check_row(&f, 3, 1, 0, 5, 6, 45, 1, &s, 8.0 / 14, why, sizeof why), "%s", why);
    /* user 2: the NULL days_since between product 8 and the end is flagged unknown */
    T_ASSERT(tr_features_user(&f, &h, 2, h.user_order_off[3], &s, err, sizeof err) == NB_OK, "%s",
             err);
    T_ASSERT(!check_row(&f, 8, 1, 1, 2, 3, 5, 0, &s, 1.0 / 3, why, sizeof why), "%s", why);
    T_ASSERT(!check_row(&f, 9, 2, 2, 0, 2, 0, 1, &s, 1.0 / 3, why, sizeof why), "%s", why);
    /* user 3: no history */
    T_ASSERT(tr_features_user(&f, &h, 3, h.user_order_off[4], &s, err, sizeof err) == NB_OK &&
                 f.n == 0 && f.n_orders == 0,
             "empty history");
    /* bad arguments */
    T_ASSERT(tr_features_user(&f, &h, 4, 0, &s, err, sizeof err) == NB_EINVAL &&
                 strstr(err, "user index 4"),
             "bad user: %s", err);
    T_ASSERT(tr_features_user(&f, &h, 1, end0, &s, err, sizeof err) == NB_EINVAL &&
                 strstr(err, "user 103"),
             "hist_end of another user: %s", err);
    tr_features_free(&f);
    tr_product_stats_free(&s);
    st_history_free(&h);
    return T_PASS;
}

/* Random histories: every value in [0, 1], raw counts equal a direct recount, and the
 * scratch is clean between calls (a second pass gives the same bytes). */
static int test_features_random(void) {
    int P = 300, nu = 400;
    st_history h;
    tu_history_random(&h, P, nu, 30, 12, 77);
    tr_product_stats s;
    tr_features f;
    char err[NB_ERRLEN];
    T_ASSERT(tr_product_stats_compute(&s, &h, err, sizeof err) == NB_OK, "%s", err);
    T_ASSERT(tr_features_init(&f, P, err, sizeof err) == NB_OK, "%s", err);
    int64_t rows = 0;
    for (int u = 0; u < nu; u++) {
        int64_t end = h.user_order_off[u + 1] - (u % 2); /* half of them before their last */
        T_ASSERT(tr_features_user(&f, &h, u, end, &s, err, sizeof err) == NB_OK, "%s", err);
        rows += f.n;
        for (int j = 0; j < f.n; j++) {
            for (int k = 0; k < TR_N_FEATURES; k++) {
                float v = f.feat[(size_t)j * TR_N_FEATURES + k];
                T_ASSERT(v >= 0 && v <= 1, "user %d product %d %s = %g", u, f.prod[j],
                         tr_feature_names[k], v);
            }
            /* recount n_with, last order, n_last5 */
            int q = 0, n_with = 0, last = -1, n = f.n_orders, last5 = 0;
            for (int64_t o = h.user_order_off[u]; o < end; o++) {
                if (h.order_item_off[o + 1] == h.order_item_off[o]) continue;
                int in = 0;
                for (int64_t i = h.order_item_off[o]; i < h.order_item_off[o + 1]; i++)
                    in |= h.items[i] == f.prod[j];
                if (in) n_with++, last = q, last5 += q >= n - 5;
                q++;
            }
            T_ASSERT(q == n && f.raw[j].n_with == n_with && f.raw[j].since == n - 1 - last &&
                         f.raw[j].n_last5 == last5,
                     "user %d product %d: %d/%d/%d vs %d/%d/%d", u, f.prod[j], f.raw[j].n_with,
                     f.raw[j].since, f.raw[j].n_last5, n_with, n - 1 - last, last5);
        }
    }
    T_ASSERT(rows > 1000, "%lld rows", (long long)rows);
    for (int p = 0; p < P; p++) T_ASSERT(f.slot[p] == -1, "slot %d reset", p);
    tr_features_free(&f);
    tr_product_stats_free(&s);
    st_history_free(&h);
    return T_PASS;
}

int main(void) {
    T_RUN(test_product_stats);
    T_RUN(test_product_stats_sqlite);
    T_RUN(test_features_hand);
    T_RUN(test_features_random);
    return t_summary();
}
