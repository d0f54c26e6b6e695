/* rkdump.h -- the ranking stage's rows written out for offline analysis
 * (nb-train --ranker-dump DIR; bench/rk_explore.py reads them).
 *
 * File DIR/<name>.nbrows, in the byte order and float format of the machine that wrote it:
 *   "NBRKRW1\n" (8 bytes), int64 n_rows, n_features, n_users
 *   char name[n_features][32]      the features' names (tr_rk_feat_names), NUL-padded
 *   float x[n_rows][n_features]    NaN where missing; the model column NaN, as the trees that
 *                                  may ship see it (the model's value is its own array)
 *   float label[n_rows]            1: the product is in the target order
 *   float model[n_rows]            the CNN->GRU probability (NaN without a model)
 *   int32 product_id[n_rows]
 *   int64 user_off[n_users + 1]    user j's rows are [user_off[j], user_off[j+1])
 *   int32 user_id[n_users]
 *   int32 n_target[n_users]        distinct products of the target order (R@10's
 *                                  denominator: target items outside the candidates count)
 *   uint64 bought[n_rows]          bit k: the product is in the (k+1)-th latest order with
 *                                  items before the target (the 64 latest orders)
 * The rows are those the stage builds (its candidates and features, out-of-fold statistics
 * for the training users), so that learners and features can be compared offline on
 * exactly the stage's data.
 */
#ifndef TR_RKDUMP_H
#define TR_RKDUMP_H

#include <stddef.h>
#include <stdint.h>

#include "history.h"

#define TR_RK_DUMP_NAME 32 /* bytes per feature name */

/* One set of rows: n rows of nf features, nu users; user j's rows [off[j], off[j+1]) have
 * the history user user[j] (index in h) and target order target[j]; prod are product
 * indices. */
typedef struct {
    const float *X, *y, *model;
    const int32_t *prod;
    int64_t n;
    int nf, nu;
    const int64_t *off;
    const int32_t *user;
    const int64_t *target;
} tr_rk_dump_rows;

/* Writes r to dir/<name>.nbrows (atomic_file.h: a temporary name, fsync, rename). Returns
 * NB_OK, or NB_EIO naming the file (nothing is left under that name). The caller keeps r. */
int tr_rk_dump(const char *dir, const char *name, const st_history *h, const tr_rk_dump_rows *r,
               char *err, size_t errlen);

#endif
