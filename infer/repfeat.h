/* repfeat.h -- per-(user, product) repeat features for the model's repeat term.
 * (Named repfeat.h, not features.h: with -Itrain a train/features.h would shadow glibc's
 * <features.h> and break every compilation unit.)
 *
 * For every product a user has bought in the history [user start, hist_end) -- the user's
 * orders with items that precede hist_end, as in infer/score.h -- one row of TR_N_FEATURES
 * values computed from the user's FULL history (not only the last max_orders orders).
 * Every value lies in [0, 1] by construction, so no normalisation statistics are needed.
 * With n = the user's orders with items in the history, numbered 1..n oldest first:
 *
 *   TR_F_SHARE        orders containing the product / n
 *   TR_F_LAST5        orders among the last 5 containing it / 5 (/ 5 even when n < 5)
 *   TR_F_RECENCY      1 / (1 + k), k = orders after the last one containing it (0: last order)
 *   TR_F_IN_LAST      1 if it is in the last order, else 0
 *   TR_F_DAYS         d / 90 capped at 1, d = days from the last order containing it to the
 *                     last order of the history = the sum of days_since_prior_order of the
 *                     k later orders (0 when k = 0). The days to the order being predicted
 *                     are not used: the server does not know them.
 *   TR_F_DAYS_KNOWN   1 when every one of those k days_since values is known (not NULL),
 *                     else 0 (and TR_F_DAYS counts only the known ones)
 *   TR_F_SHARE_SINCE  orders containing it / orders from its first purchase to the last
 *                     order inclusive (how consistently it is rebought once discovered)
 *   TR_F_USER_REORDER the user's reorder rate: history items flagged reordered / history items
 *   TR_F_USER_ORDERS  log(1 + n) / log(1 + 100), capped at 1
 *   TR_F_PROD_REORDER the product's global reorder rate (tr_product_stats)
 *   TR_F_PROD_POP     the product's log popularity log(1 + count) / log(1 + max count)
 *
 * The last two come from tr_product_stats, computed ONCE from all ST_PRIOR orders of the
 * training history and stored with the model (table product_stats in schema.sql, written
 * in the same transaction as the models row), so nb-serve loads the exact same numbers.
 *
 * Cost: O(history items + n_bought log n_bought) per call; the per-product scratch is
 * allocated once (tr_features_init) and reset incrementally.
 */
#ifndef TR_REPFEAT_H
#define TR_REPFEAT_H

#include <stddef.h>
#include <stdint.h>

#include "history.h"
#include "prodstats.h"

enum {
    TR_F_SHARE,
    TR_F_LAST5,
    TR_F_RECENCY,
    TR_F_IN_LAST,
    TR_F_DAYS,
    TR_F_DAYS_KNOWN,
    TR_F_SHARE_SINCE,
    TR_F_USER_REORDER,
    TR_F_USER_ORDERS,
    TR_F_PROD_REORDER,
    TR_F_PROD_POP,
    TR_N_FEATURES
};

/* Feature names, for reports and messages ("share", "last5", ...), [TR_N_FEATURES]. */
extern const char *const tr_feature_names[TR_N_FEATURES];

/* ---- one user's features --------------------------------------------------------------- */

/* The raw counts behind one row (for explanations and tests). */
typedef struct {
    int32_t n_with;     /* orders containing the product */
    int32_t n_last5;    /* of the last min(5, n) orders */
    int32_t since;      /* k: orders after the last one containing it */
    int32_t span;       /* orders from its first purchase to the last order, inclusive */
    int32_t days;       /* d (known days only) */
    int32_t days_known; /* 1 if all k days were known */
} tr_rep_raw;

typedef struct {
    /* results of the last tr_features_user call */
    int n;           /* products the user has bought */
    int n_orders;    /* the user's orders with items in the history */
    int64_t n_items; /* history items */
    int32_t *prod;   /* [n] product indices, ascending */
    float *feat;     /* [n, TR_N_FEATURES] row-major, aligned with prod */
    tr_rep_raw *raw; /* [n] */
    /* private */
    int n_products, cap;
    int32_t *slot; /* [P]: position in prod during a call, else -1 */
    void *priv;    /* accumulators (repfeat.c) */
} tr_features;

/* Allocates the scratch for a catalogue of n_products. Returns NB_OK or NB_EINVAL.
 * Free with tr_features_free (safe on a zeroed f). One tr_features per thread. */
int tr_features_init(tr_features *f, int n_products, char *err, size_t errlen);
void tr_features_free(tr_features *f);

/* Computes user u's features for the order after [user start, hist_end) into f (replacing
 * the previous call's results). ps must have ps->n_products == h->n_products ==
 * f->n_products. A user with no history item yields n = 0 and NB_OK.
 * Returns NB_OK or NB_EINVAL (u or hist_end out of range, sizes differ). */
int tr_features_user(tr_features *f, const st_history *h, int u, int64_t hist_end,
                     const tr_product_stats *ps, char *err, size_t errlen);

/* Position of product p in f->prod (binary search), or -1 if the user never bought it. */
int tr_features_find(const tr_features *f, int32_t p);

#endif
