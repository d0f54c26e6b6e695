/* prodstats.c -- global product statistics: computed from a history, stored with a model
 * in table product_stats, loaded by the server (see prodstats.h). */
#include "prodstats.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "models.h"
#include "nb_err.h"
#include "store.h"

void tr_product_stats_free(tr_product_stats *s) {
    if (!s) return;
    free(s->n_items);
    free(s->n_reordered);
    free(s->reorder_rate);
    free(s->log_pop);
    memset(s, 0, sizeof *s);
}

/* Allocates s for P products (counts zeroed). */
static void ps_alloc(tr_product_stats *s, int P) {
    memset(s, 0, sizeof *s);
    s->n_products = P;
    size_t n = (size_t)(P > 0 ? P : 1);
    s->n_items = nb_xcalloc(n, sizeof *s->n_items);
    s->n_reordered = nb_xcalloc(n, sizeof *s->n_reordered);
    s->reorder_rate = nb_xcalloc(n, sizeof *s->reorder_rate);
    s->log_pop = nb_xcalloc(n, sizeof *s->log_pop);
}

/* The derived rates from the counts: the one formula for training and serving. */
static void ps_derive(tr_product_stats *s) {
    int64_t mx = 0;
    for (int p = 0; p < s->n_products; p++)
        if (s->n_items[p] > mx) mx = s->n_items[p];
    double lmx = log1p((double)mx);
    for (int p = 0; p < s->n_products; p++) {
        s->reorder_rate[p] =
            s->n_items[p] ? (float)((double)s->n_reordered[p] / (double)s->n_items[p]) : 0.0f;
        s->log_pop[p] = mx ? (float)(log1p((double)s->n_items[p]) / lmx) : 0.0f;
    }
}

int tr_product_stats_compute(tr_product_stats *s, const st_history *h, char *err, size_t errlen) {
    (void)err;
    (void)errlen;
    ps_alloc(s, h->n_products);
    for (int64_t o = 0; o < h->n_orders; o++) {
        if (h->eval_set[o] != ST_PRIOR) continue;
        for (int64_t i = h->order_item_off[o]; i < h->order_item_off[o + 1]; i++) {
            s->n_items[h->items[i]]++;
            s->n_reordered[h->items[i]] += h->reordered[i] != 0;
        }
    }
    ps_derive(s);
    return NB_OK;
}

/* tr_product_stats_write's rows: product p's counts. */
typedef struct {
    const tr_product_stats *s;
    const st_history *catalog;
} stats_rows;

/* An st_row_bind_fn over stats_rows. */
static void bind_stats(void *ctx, sqlite3_stmt *ins, int p, int32_t *key) {
    const stats_rows *r = ctx;
    sqlite3_bind_int(ins, 2, r->catalog->product_ids[p]);
    sqlite3_bind_int64(ins, 3, r->s->n_items[p]);
    sqlite3_bind_int64(ins, 4, r->s->n_reordered[p]);
    *key = r->catalog->product_ids[p];
}

/* See prodstats.h: one row per product, through st_model_rows_replace. */
int tr_product_stats_write(sqlite3 *db, int64_t model_id, const tr_product_stats *s,
                           const st_history *catalog, char *err, size_t errlen) {
    if (s->n_products != catalog->n_products)
        return nb_err(err, errlen, NB_EMISMATCH, "product stats for %d products, catalogue has %d",
                      s->n_products, catalog->n_products);
    stats_rows r = {s, catalog};
    return st_model_rows_replace(db, model_id, "product_stats",
                                 "INSERT INTO product_stats (model_id, product_id, n_items, "
                                 "n_reordered) VALUES (?1, ?2, ?3, ?4)",
                                 s->n_products, bind_stats, &r, "product", err, errlen);
}

/* See prodstats.h: one query in product_id order, checked against catalog. */
int tr_product_stats_load(tr_product_stats *s, sqlite3 *db, int64_t model_id,
                          const st_history *catalog, char *err, size_t errlen) {
    int rc = NB_OK, P = catalog->n_products, p = 0;
    sqlite3_stmt *q = NULL;
    ps_alloc(s, P);
    if (sqlite3_prepare_v2(db,
                           "SELECT product_id, n_items, n_reordered FROM product_stats "
                           "WHERE model_id = ?1 ORDER BY product_id",
                           -1, &q, NULL) != SQLITE_OK) {
        rc = nb_err(err, errlen, NB_EDB, "reading product_stats: %s", sqlite3_errmsg(db));
        goto done;
    }
    sqlite3_bind_int64(q, 1, model_id);
    int st;
    while ((st = sqlite3_step(q)) == SQLITE_ROW) {
        int32_t id = sqlite3_column_int(q, 0);
        if (p >= P || catalog->product_ids[p] != id) {
            rc = nb_err(err, errlen, NB_EMISMATCH, "product_stats of model %lld: product_id %d %s",
                        (long long)model_id,
                        (int)(p < P && catalog->product_ids[p] < id ? catalog->product_ids[p] : id),
                        p < P && catalog->product_ids[p] < id ? "has no row"
                                                              : "is not in the catalogue");
            goto done;
        }
        int64_t n = sqlite3_column_int64(q, 1), r = sqlite3_column_int64(q, 2);
        if (n < 0 || r < 0 || r > n) {
            rc = nb_err(err, errlen, NB_EFORMAT,
                        "product_stats of model %lld, product %d: bad counts %lld / %lld",
                        (long long)model_id, (int)id, (long long)r, (long long)n);
            goto done;
        }
        s->n_items[p] = n;
        s->n_reordered[p] = r;
        p++;
    }
    if (st != SQLITE_DONE) {
        rc = nb_err(err, errlen, NB_EDB, "reading product_stats of model %lld: %s",
                    (long long)model_id, sqlite3_errmsg(db));
        goto done;
    }
    if (p == 0 && P > 0) {
        rc = nb_err(err, errlen, NB_ENOTFOUND, "no product_stats for model %lld",
                    (long long)model_id);
        goto done;
    }
    if (p < P) {
        rc = nb_err(err, errlen, NB_EMISMATCH,
                    "product_stats of model %lld: product_id %d has no row", (long long)model_id,
                    (int)catalog->product_ids[p]);
        goto done;
    }
    ps_derive(s);
done:
    sqlite3_finalize(q);
    if (rc != NB_OK) tr_product_stats_free(s);
    return rc;
}
