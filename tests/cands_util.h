/* cands_util.h -- hand-built st_history values for the candidate / feature / explanation
 * tests (header-only, static inline functions, built with hist_fixture.h). */
#ifndef NB_CANDS_UTIL_H
#define NB_CANDS_UTIL_H

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hist_fixture.h"
#include "history.h"
#include "nb_err.h"
#include "rng.h"
#include "store.h"

/* A history of n_users users, catalogue of P products (product_id = 10 * index + 1, user_id
 * = 100 + 3 * index, order_id = 1000 + index). Orders are described by a flat "script": for
 * each user, its number of orders, then for each order: eval_set, days_since (-1 = NULL),
 * item count, the item indices. reordered flags are computed (1 when the user bought the
 * product in an earlier order). Free with st_history_free. */
static inline void tu_history_script(st_history *h, int P, int n_users, const int *script) {
    hf_build b;
    hf_begin(&b, h, P, 1, 10);
    const int *s = script;
    for (int u = 0; u < n_users; u++) {
        hf_user(&b, 100 + 3 * u);
        int k = *s++;
        for (int q = 0; q < k; q++) {
            hf_order(&b, (int32_t)(1000 + h->n_orders), s[0], s[1]);
            int m = s[2];
            s += 3;
            for (int j = 0; j < m; j++) hf_item(&b, *s++);
        }
    }
    hf_end(&b);
    hf_mark_reordered(h);
}

/* The hand-built store of test_repfeat.c and test_explain.c (tu_history_script, 10 products,
 * 4 users). */
static const int tu_k_script[] = {
    /* user 0 (id 100): 6 prior orders, then the train order */
    7,
    ST_PRIOR,
    -1,
    2,
    1,
    2,
    ST_PRIOR,
    7,
    2,
    1,
    3,
    ST_PRIOR,
    10,
    3,
    2,
    1,
    4,
    ST_PRIOR,
    3,
    1,
    5,
    ST_PRIOR,
    20,
    2,
    1,
    5,
    ST_PRIOR,
    4,
    2,
    1,
    6,
    ST_TRAIN,
    8,
    2,
    1,
    2,
    /* user 1 (id 103) */
    3,
    ST_PRIOR,
    -1,
    2,
    1,
    7,
    ST_PRIOR,
    5,
    2,
    7,
    1,
    ST_TRAIN,
    6,
    1,
    7,
    /* user 2 (id 106): a NULL days_since after the first order */
    3,
    ST_PRIOR,
    -1,
    1,
    8,
    ST_PRIOR,
    -1,
    1,
    9,
    ST_PRIOR,
    5,
    1,
    9,
    /* user 3 (id 109): no history */
    1,
    ST_TEST,
    -1,
    0,
};
#define TU_K_P 10
#define TU_K_USERS 4

/* A random history: n_users users with 1..max_orders prior orders of 1..max_items items
 * drawn from a skewed distribution over P products, then (for every user but every 7th) one
 * ST_TRAIN order with items. Every 11th user has only a ST_TEST order (cold start). */
static inline void tu_history_random(st_history *h, int P, int n_users, int max_orders,
                                     int max_items, uint64_t seed) {
    nb_rng r;
    nb_rng_seed(&r, seed);
    size_t cap = 1024, n = 0;
    int *sc = nb_xmalloc(cap * sizeof *sc);
#define TU_PUSH(v)                                                   \
    do {                                                             \
        if (n == cap) sc = nb_xrealloc(sc, (cap *= 2) * sizeof *sc); \
        sc[n++] = (v);                                               \
    } while (0)
    for (int u = 0; u < n_users; u++) {
        if (u % 11 == 10) {
            TU_PUSH(1);
            TU_PUSH(ST_TEST);
            TU_PUSH(-1);
            TU_PUSH(0);
            continue;
        }
        int k = 1 + (int)nb_rng_below(&r, (uint64_t)max_orders);
        int has_train = u % 7 != 3;
        TU_PUSH(k + has_train);
        for (int q = 0; q < k + has_train; q++) {
            TU_PUSH(q == k ? ST_TRAIN : ST_PRIOR);
            TU_PUSH(q == 0 ? -1 : (int)nb_rng_below(&r, 31));
            int m = 1 + (int)nb_rng_below(&r, (uint64_t)max_items);
            TU_PUSH(m);
            for (int j = 0; j < m; j++) {
                /* skewed: square of a uniform */
                double x = nb_rng_uniform(&r);
                TU_PUSH((int)(x * x * P));
            }
        }
    }
#undef TU_PUSH
    tu_history_script(h, P, n_users, sc);
    free(sc);
}

/* Opens a transaction on db and inserts a placeholder models row model_id, which the
 * candidate / product-statistics rows written next refer to. Returns sqlite3_exec's code
 * (SQLITE_OK, or an error readable with sqlite3_errmsg(db)). */
static inline int tu_begin_model(sqlite3 *db, int model_id) {
    char sql[256];
    snprintf(sql, sizeof sql,
             "BEGIN; INSERT INTO models (model_id, path, checksum, hyper_params, metrics) "
             "VALUES (%d, 'm.nbw', '00000000', '{}', '{}');",
             model_id);
    return sqlite3_exec(db, sql, NULL, NULL, NULL);
}

#endif
