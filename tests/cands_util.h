/* cands_util.h -- hand-built st_history values for the candidate / feature / explanation
 * tests (header-only, static functions; the loader lives on the storage branch and these
 * tests must not depend on it). */
#ifndef NB_CANDS_UTIL_H
#define NB_CANDS_UTIL_H

#include <stdlib.h>
#include <string.h>

#include "history.h"
#include "nb_err.h"
#include "rng.h"
#include "store.h"

/* Frees the arrays of a history built by the helpers below. */
static void tu_history_free(st_history *h) {
    free(h->product_ids);
    free(h->product_aisle);
    free(h->product_dept);
    free(h->user_ids);
    free(h->user_order_off);
    free(h->order_ids);
    free(h->eval_set);
    free(h->dow);
    free(h->hour);
    free(h->days_since);
    free(h->order_item_off);
    free(h->items);
    free(h->reordered);
    memset(h, 0, sizeof *h);
}

/* A history of n_users users, catalogue of P products (product_id = 10 * index + 1).
 * Orders are described by a flat "script": for each user, its number of orders, then for
 * each order: eval_set, days_since (-1 = NULL), item count, the item indices. reordered
 * flags are computed (1 when the user bought the product in an earlier order). */
static void tu_history_script(st_history *h, int P, int n_users, const int *script) {
    memset(h, 0, sizeof *h);
    h->n_products = P;
    h->product_ids = nb_xmalloc((size_t)P * sizeof(int32_t));
    h->product_aisle = nb_xcalloc((size_t)P, sizeof(int32_t));
    h->product_dept = nb_xcalloc((size_t)P, sizeof(int32_t));
    for (int p = 0; p < P; p++) h->product_ids[p] = 10 * p + 1;
    /* count */
    int64_t no = 0, ni = 0;
    const int *s = script;
    for (int u = 0; u < n_users; u++) {
        int k = *s++;
        no += k;
        for (int o = 0; o < k; o++) {
            s += 2;
            int m = *s++;
            ni += m;
            s += m;
        }
    }
    h->n_users = n_users;
    h->user_ids = nb_xmalloc((size_t)(n_users + 1) * sizeof(int32_t));
    h->user_order_off = nb_xmalloc((size_t)(n_users + 1) * sizeof(int64_t));
    h->n_orders = no;
    h->order_ids = nb_xmalloc((size_t)(no + 1) * sizeof(int32_t));
    h->eval_set = nb_xmalloc((size_t)(no + 1));
    h->dow = nb_xcalloc((size_t)(no + 1), 1);
    h->hour = nb_xcalloc((size_t)(no + 1), 1);
    h->days_since = nb_xmalloc((size_t)(no + 1) * sizeof(int16_t));
    h->order_item_off = nb_xmalloc((size_t)(no + 1) * sizeof(int64_t));
    h->n_items = ni;
    h->items = nb_xmalloc((size_t)(ni + 1) * sizeof(int32_t));
    h->reordered = nb_xmalloc((size_t)(ni + 1));
    uint8_t *seen = nb_xcalloc((size_t)P, 1);
    s = script;
    int64_t o = 0, i = 0;
    h->order_item_off[0] = 0;
    for (int u = 0; u < n_users; u++) {
        h->user_ids[u] = 100 + 3 * u;
        h->user_order_off[u] = o;
        int64_t ui0 = i;
        int k = *s++;
        for (int q = 0; q < k; q++, o++) {
            h->order_ids[o] = (int32_t)(1000 + o);
            h->eval_set[o] = (uint8_t)*s++;
            h->days_since[o] = (int16_t)*s++;
            int m = *s++;
            for (int j = 0; j < m; j++, i++) {
                h->items[i] = *s++;
                h->reordered[i] = seen[h->items[i]];
            }
            for (int64_t j = i - m; j < i; j++) seen[h->items[j]] = 1;
            h->order_item_off[o + 1] = i;
        }
        for (int64_t j = ui0; j < i; j++) seen[h->items[j]] = 0;
    }
    h->user_order_off[n_users] = o;
    free(seen);
}

/* A random history: n_users users with 1..max_orders prior orders of 1..max_items items
 * drawn from a skewed distribution over P products, then (for every user but every 7th) one
 * ST_TRAIN order with items. Every 11th user has only a ST_TEST order (cold start). */
static void tu_history_random(st_history *h, int P, int n_users, int max_orders, int max_items,
                              uint64_t seed) {
    nb_rng r;
    nb_rng_seed(&r, seed);
    size_t cap = 1024, n = 0;
    int *sc = nb_xmalloc(cap * sizeof *sc);
#define TU_PUSH(v)                                            \
    do {                                                      \
        if (n == cap) sc = nb_xrealloc(sc, (cap *= 2) * sizeof *sc); \
        sc[n++] = (v);                                        \
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

#endif
