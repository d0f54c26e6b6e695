/* prodstats.h -- global product statistics for the repeat features (infer/repfeat.h):
 * counts over every ST_PRIOR order of the training history, computed ONCE by nb-train and
 * stored with the model (table product_stats, written in the same transaction as the
 * models row), so that nb-serve loads the exact same numbers. The tr_ prefix is historical
 * (the functions began in train/) and kept so that branches calling them still merge.
 */
#ifndef ST_PRODSTATS_H
#define ST_PRODSTATS_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

#include "history.h"

/* ---- global product statistics --------------------------------------------------------- */
typedef struct {
    int n_products;
    int64_t *n_items;     /* [P] items of the product in ST_PRIOR orders */
    int64_t *n_reordered; /* [P] of which flagged reordered */
    float *reorder_rate;  /* [P] n_reordered / n_items (0 when n_items = 0) */
    float *log_pop;       /* [P] log1p(n_items) / log1p(max n_items) (0 when max = 0) */
} tr_product_stats;

/* Counts over every ST_PRIOR order of h. Returns NB_OK. s owns its arrays;
 * free with tr_product_stats_free (safe on a zeroed s). */
int tr_product_stats_compute(tr_product_stats *s, const st_history *h, char *err, size_t errlen);
void tr_product_stats_free(tr_product_stats *s);
/* Writes s into table product_stats for model_id (one row per product, keyed by
 * product_id = catalog->product_ids[i]), replacing that model's rows. Like tr_cands_write it
 * MUST run inside the caller's open transaction (NB_EINVAL in autocommit mode).
 * Returns NB_OK, NB_EINVAL, NB_EMISMATCH (s and catalog differ in size) or NB_EDB. */
int tr_product_stats_write(sqlite3 *db, int64_t model_id, const tr_product_stats *s,
                           const st_history *catalog, char *err, size_t errlen);
/* Loads model_id's stats for the products of catalog (every product must have a row and
 * no other row may exist). Returns NB_OK, NB_ENOTFOUND (no rows for the model),
 * NB_EMISMATCH (product lists differ, message names the product_id), NB_EFORMAT or NB_EDB.
 * s owns its arrays afterwards. */
int tr_product_stats_load(tr_product_stats *s, sqlite3 *db, int64_t model_id,
                          const st_history *catalog, char *err, size_t errlen);

#endif
